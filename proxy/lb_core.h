/*
 * lb_core.h: a cluster's load balancer: immutable shared part + per-worker part.
 *
 * struct mp_lb is built once per (lb config, host set) on the control path:
 * it computes Envoy's priority load (lb_priority.h) and builds the policy's
 * shared state (ring, table, ...) for each priority's healthy, degraded or,
 * in panic, full host list. With locality_weighted (ROUND_ROBIN,
 * LEAST_REQUEST, RANDOM), each such list is split by locality and a pick
 * first chooses a locality by EDF on Envoy's effective locality weight
 * (weight * min(1, overprovisioning * healthy share)). It is
 * reference-counted and read by all workers.
 *
 * struct mp_lb_worker is one worker's mutable state for one mp_lb: the
 * policy's per-worker state, an RNG, and the worker's in-flight request
 * count per host. Only the owning worker thread touches it, so its
 * reference count is plain. A request that picked a host keeps a
 * reference to the mp_lb_worker until it calls mp_lb_worker_rq_done, which
 * also keeps the host (and its host set) alive.
 */
#ifndef MP_LB_CORE_H
#define MP_LB_CORE_H

#include "cluster.h"
#include "lb_priority.h"

struct mp_lb;
struct mp_lb_worker;

/**
 * Builds a load balancer for hs with the policy in cfg (copied). Takes its
 * own reference on hs. On success *out holds one reference (free with
 * mp_lb_unref). Returns 0, MP_ERR_NOMEM, MP_ERR_INVAL (with *err) when the
 * policy rejects the hosts, or MP_ERR_UNSUPPORTED for CLUSTER_PROVIDED.
 */
int mp_lb_new(const struct mp_lb_config *cfg, struct mp_host_set *hs, struct mp_lb **out,
              char **err);

/** Takes another reference (any thread). Returns lb. */
struct mp_lb *mp_lb_ref(struct mp_lb *lb);

/** Drops a reference (any thread); the last one frees it. NULL is fine. */
void mp_lb_unref(struct mp_lb *lb);

/** The host set this balancer was built for (borrowed). */
struct mp_host_set *mp_lb_host_set(const struct mp_lb *lb);

/** The priority load this balancer uses (borrowed; for admin and tests). */
const struct mp_priority_load *mp_lb_priority_load(const struct mp_lb *lb);

/**
 * Makes a worker's state for lb (takes a reference on lb). seed varies the
 * worker's RNG and starting position so workers do not march in step; pass
 * e.g. the worker id mixed with time. *out has one reference. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_lb_worker_new(struct mp_lb *lb, uint64_t seed, struct mp_lb_worker **out);

/** Takes another reference (owning worker thread only). Returns w. */
struct mp_lb_worker *mp_lb_worker_ref(struct mp_lb_worker *w);

/** Drops a reference (owning worker thread only); the last frees it. NULL is fine. */
void mp_lb_worker_unref(struct mp_lb_worker *w);

/** The balancer w was made for (borrowed). */
struct mp_lb *mp_lb_worker_lb(const struct mp_lb_worker *w);

/**
 * Picks a host for a request: chooses a priority from the priority load
 * (by ctx->hash when has_hash, else at random), then asks the policy. A host
 * in ctx->avoid is re-picked up to ctx->max_attempts times in all, after
 * which the last pick is returned anyway (as Envoy does). Returns a host
 * owned by the host set, or NULL when the host set has no hosts.
 */
struct mp_host *mp_lb_pick(struct mp_lb_worker *w, const struct mp_lb_context *ctx);

/** Counts a request started on h (h must come from this worker's lb). */
void mp_lb_worker_rq_start(struct mp_lb_worker *w, const struct mp_host *h);

/** Counts a request on h as finished. */
void mp_lb_worker_rq_done(struct mp_lb_worker *w, const struct mp_host *h);

/** This worker's in-flight request count on h. */
uint32_t mp_lb_worker_rq_active(const struct mp_lb_worker *w, const struct mp_host *h);

#endif
