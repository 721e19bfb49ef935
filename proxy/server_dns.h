/*
 * server_dns.h: periodic DNS refresh of STRICT_DNS / LOGICAL_DNS clusters,
 * run by the main thread.
 *
 * A cluster's names are resolved once when its snapshot is built (so it
 * serves at once), then re-resolved every dns_refresh_rate on the resolver's
 * helper thread (dns_resolver.h). When the addresses change, the main thread
 * republishes the snapshot in force with the new host set; every later
 * publication of the same cluster (xDS pushes included) carries the
 * refreshed hosts too.
 */
#ifndef MP_SERVER_DNS_H
#define MP_SERVER_DNS_H

struct mp_server;
struct mp_snapshot;
struct mp_server_dns;

/**
 * Follows the DNS clusters of snap, which is about to be published: starts
 * refreshing new ones, stops those gone, and sets each one's hosts to the
 * latest refreshed answer. *dns is created on first need (NULL until then).
 * Main thread. Returns 0 or MP_ERR_NOMEM (refresh then simply does not run).
 */
int mp_server_dns_sync(struct mp_server *server, struct mp_server_dns **dns,
                       struct mp_snapshot *snap);

/** Stops the resolver and frees *dns. NULL is a no-op. Main thread. */
void mp_server_dns_free(struct mp_server_dns *dns);

#endif
