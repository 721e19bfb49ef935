/*
 * lb_random.h: Random: a uniformly random host (weights are not used, as in Envoy).
 */
#ifndef MP_LB_RANDOM_H
#define MP_LB_RANDOM_H

#include "cluster.h"

/* The RANDOM policy (see struct mp_lb_ops in cluster.h). */
extern const struct mp_lb_ops mp_lb_random_ops;

#endif
