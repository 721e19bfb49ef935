/*
 * lb_maglev.h: Maglev: a prime-sized lookup table filled from each host's permutation,
 * built once and shared. A request's hash picks table[hash % size].
 */
#ifndef MP_LB_MAGLEV_H
#define MP_LB_MAGLEV_H

#include "cluster.h"

/* The MAGLEV policy (see struct mp_lb_ops in cluster.h). */
extern const struct mp_lb_ops mp_lb_maglev_ops;

#endif
