/*
 * lb_round_robin.h: Weighted round robin: plain rotation when all weights are equal, else an
 * earliest-deadline-first schedule (Envoy's EdfScheduler). Each worker starts
 * at its own random offset.
 */
#ifndef MP_LB_ROUND_ROBIN_H
#define MP_LB_ROUND_ROBIN_H

#include "cluster.h"

/* The ROUND_ROBIN policy (see struct mp_lb_ops in cluster.h). */
extern const struct mp_lb_ops mp_lb_round_robin_ops;

#endif
