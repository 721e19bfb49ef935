/*
 * lb_ring_hash.h: Ring hash (ketama): a sorted ring of host hashes, built once and shared.
 * A request's hash picks the first ring entry at or after it.
 */
#ifndef MP_LB_RING_HASH_H
#define MP_LB_RING_HASH_H

#include "cluster.h"

/* The RING_HASH policy (see struct mp_lb_ops in cluster.h). */
extern const struct mp_lb_ops mp_lb_ring_hash_ops;

#endif
