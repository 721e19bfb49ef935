/*
 * lb_least_request.h: Least request: with equal weights, power of N choices (default 2) on this
 * worker's in-flight counts; with unequal weights, EDF on
 * weight / (active + 1)^active_request_bias, as Envoy does.
 */
#ifndef MP_LB_LEAST_REQUEST_H
#define MP_LB_LEAST_REQUEST_H

#include "cluster.h"

/* The LEAST_REQUEST policy (see struct mp_lb_ops in cluster.h). */
extern const struct mp_lb_ops mp_lb_least_request_ops;

#endif
