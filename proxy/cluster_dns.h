/*
 * cluster_dns.h: turning DNS answers into a STRICT_DNS / LOGICAL_DNS
 * cluster's host set. The owner subscribes each of c->dns_targets to the
 * resolver (dns_resolver.h), keeps the last good answer per target (Envoy
 * keeps serving the previous hosts when a refresh fails), and on each new
 * answer builds a new host set and a new mp_lb from it.
 */
#ifndef MP_CLUSTER_DNS_H
#define MP_CLUSTER_DNS_H

#include "cluster.h"
#include "dns_resolver.h"

/**
 * Builds the host set of a STRICT_DNS / LOGICAL_DNS cluster from one answer
 * per c->dns_targets[i] (answers[i] NULL or failed: that target has no hosts).
 * LOGICAL_DNS keeps only the first address, as Envoy does. *out has one
 * reference. Returns 0 or MP_ERR_NOMEM.
 */
int mp_host_set_from_dns(const struct mp_cluster *c, const struct mp_dns_answer *const *answers,
                         struct mp_host_set **out);

/**
 * Resolves every dns_target of c once, synchronously, on the calling thread
 * (never a worker): the bootstrap's and xDS's DNS clusters at acceptance.
 * Targets that fail are left out and counted in *n_failed (for the
 * caller's log). *out (one reference) is NULL when c has no targets.
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_cluster_dns_resolve_now(const struct mp_cluster *c, struct mp_host_set **out,
                               size_t *n_failed);

struct mp_cluster_dns;

/*
 * Called on the owner's thread with a new host set (one reference, now the
 * callee's) whenever a DNS cluster's resolved addresses change.
 */
typedef void (*mp_cluster_dns_update_fn)(void *arg, struct mp_cluster *c, struct mp_host_set *hs);

/**
 * Subscribes every dns_target of c (STRICT_DNS or LOGICAL_DNS) to r with
 * c->dns_refresh_ms and c->dns_family. Takes a reference on c. *out is owned
 * by the caller (mp_cluster_dns_free). Returns 0, MP_ERR_NOMEM, or
 * MP_ERR_INVAL when c is not a DNS cluster.
 */
int mp_cluster_dns_new(struct mp_dns_resolver *r, struct mp_cluster *c, mp_cluster_dns_update_fn cb,
                       void *arg, struct mp_cluster_dns **out);

/** Unsubscribes, drops the cluster reference and frees. NULL is fine. */
void mp_cluster_dns_free(struct mp_cluster_dns *d);

/**
 * Feeds one answer drained from the resolver. Returns false when the answer
 * is not for this cluster. A failed answer keeps the target's previous
 * addresses (as Envoy does); a changed set of addresses builds a new host set
 * and calls the update callback. Call on the owner's thread only.
 */
bool mp_cluster_dns_on_answer(struct mp_cluster_dns *d, const struct mp_dns_answer *a);

/** True once every target has been answered at least once (Envoy's warming). */
bool mp_cluster_dns_ready(const struct mp_cluster_dns *d);

#endif
