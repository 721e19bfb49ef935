/*
 * snapshot.h: an immutable, reference-counted set of configuration.
 *
 * A snapshot holds the listeners, route configurations (by name) and clusters
 * (by name) in force at one moment. It is built on the main thread (from the
 * bootstrap's static_resources, or by the xDS client from accepted resources),
 * then published with mp_snapshot_publish(): every worker swaps its pointer
 * between events. A request takes a reference to the snapshot it started with
 * and keeps it to the end, so it sees one consistent configuration; the old
 * snapshot is freed when its last reference goes. Once published a snapshot
 * never changes.
 */
#ifndef MP_SNAPSHOT_H
#define MP_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct mp_listener_config; /* xds/xds_translate_listener.h */
struct mp_route_config;    /* proxy/route_table.h */
struct mp_cluster;         /* proxy/cluster.h */
struct mp_server;          /* proxy/server.h */

struct mp_snapshot_route {
    char *name;
    struct mp_route_config *config; /* one reference owned by the snapshot */
};

struct mp_host_set;      /* proxy/cluster.h */
struct mp_cluster_stats; /* proxy/http_stats.h */

/** A cluster as the data path uses it: config, endpoints in force, LB, stats. */
struct mp_snapshot_cluster {
    struct mp_cluster *cluster; /* one reference */
    struct mp_host_set *hosts;  /* one reference; static_hosts or EDS; may be NULL */
    void *lb;                   /* struct mp_lb (lb_core.h), built at publication; may be NULL */
    struct mp_cluster_stats *stats; /* resolved at publication */
    struct mp_tls_context *tls;     /* transport_socket TLS (client side), built at publication */
    int tls_error;                  /* building it failed: requests get 503, never plaintext */
    /* per transport_socket_matches entry (Istio's tlsMode): its TLS context,
     * NULL for plaintext entries; *_error set when building it failed */
    struct mp_tls_context **match_tls;
    int *match_tls_error;
};

struct mp_snapshot {
    _Atomic uint32_t refs;
    uint64_t version; /* set by mp_snapshot_publish: 1, 2, ... */
    struct mp_listener_config **listeners;
    size_t n_listeners;
    struct mp_snapshot_route *routes; /* sorted by name after mp_snapshot_seal */
    size_t n_routes;
    struct mp_snapshot_cluster *clusters; /* sorted by name after mp_snapshot_seal */
    size_t n_clusters;
    size_t cap_clusters;
    int sealed;
    struct mp_snapshot *release_next; /* on the main thread's release list */
};

/** Makes an empty snapshot with one reference owned by the caller; NULL on NOMEM. */
struct mp_snapshot *mp_snapshot_new(void);

/**
 * Adds a listener; the snapshot takes ownership of l (also on failure, when l
 * is freed). Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL when sealed or when a
 * listener of the same name is already there.
 */
int mp_snapshot_add_listener(struct mp_snapshot *snap, struct mp_listener_config *l);

/**
 * Adds a route configuration under name, taking over one reference of rc
 * (released on failure too). Returns 0, MP_ERR_NOMEM or MP_ERR_INVAL
 * (duplicate name, or sealed).
 */
int mp_snapshot_add_route_config(struct mp_snapshot *snap, const char *name,
                                 struct mp_route_config *rc);

/**
 * Adds a cluster (named by its own name), taking over one reference of c
 * (released on failure too). Returns 0, MP_ERR_NOMEM or MP_ERR_INVAL.
 */
int mp_snapshot_add_cluster(struct mp_snapshot *snap, struct mp_cluster *c);

/**
 * Adds a cluster whose name the caller guarantees is not in the snapshot yet
 * (the xDS store's names are unique), with its endpoints: O(1), where
 * mp_snapshot_add_cluster checks every name. Takes over one reference of c
 * and of hs (hs may be NULL: c->static_hosts is used), released on failure
 * too. Returns 0, MP_ERR_NOMEM or MP_ERR_INVAL (sealed).
 */
int mp_snapshot_add_cluster_unique(struct mp_snapshot *snap, struct mp_cluster *c,
                                   struct mp_host_set *hs);
/**
 * Sets the endpoints of the cluster called name (EDS, or DNS answers),
 * taking over one reference of hs (released on failure too). Returns 0,
 * MP_ERR_NOTFOUND when no such cluster was added, MP_ERR_INVAL when sealed.
 */
int mp_snapshot_set_hosts(struct mp_snapshot *snap, const char *cluster_name,
                          struct mp_host_set *hs);

/**
 * A new unsealed snapshot sharing snap's listeners, route configurations,
 * clusters and endpoints (references taken; load balancers and TLS contexts
 * are not copied: publication shares or rebuilds them). NULL on NOMEM.
 */
struct mp_snapshot *mp_snapshot_clone(const struct mp_snapshot *snap);

/** Sorts the tables for lookup and forbids further changes. Idempotent. */
void mp_snapshot_seal(struct mp_snapshot *snap);

/** Finds a route configuration by name (snapshot must be sealed); NULL if absent. */
struct mp_route_config *mp_snapshot_find_route_config(const struct mp_snapshot *snap,
                                                      const char *name);

/** Finds a cluster by name (snapshot must be sealed); NULL if absent. */
struct mp_cluster *mp_snapshot_find_cluster(const struct mp_snapshot *snap, const char *name);

/** Finds a cluster's entry (config, hosts, LB, stats) by name; NULL if absent. */
const struct mp_snapshot_cluster *mp_snapshot_find_cluster_entry(const struct mp_snapshot *snap,
                                                                 const char *name, size_t len);

struct mp_host;
/**
 * The TLS context for connections to host h of cluster entry e: the first
 * transport_socket_matches entry h's metadata matches, else the cluster's
 * transport_socket. NULL means plaintext; *error is set (nonzero) when that
 * socket's TLS could not be built, and the host must not be used.
 */
struct mp_tls_context *mp_snapshot_cluster_tls(const struct mp_snapshot_cluster *e,
                                               const struct mp_host *h, int *error);

/**
 * Finds the listener for a connection's original destination, as Envoy's
 * use_original_dst hand-off does: the listener bound to exactly that
 * address, else the one on 0.0.0.0 (or [::]) with that port. NULL if none.
 */
const struct mp_listener_config *mp_snapshot_find_listener_by_addr(
    const struct mp_snapshot *snap, const struct sockaddr_storage *dst);

/** Finds a listener by name; NULL if absent. */
struct mp_listener_config *mp_snapshot_find_listener(const struct mp_snapshot *snap,
                                                     const char *name);

/** Takes a reference (any thread) and returns snap. */
struct mp_snapshot *mp_snapshot_ref(struct mp_snapshot *snap);

/**
 * Frees snap and everything it holds, whatever its count: for the receiver
 * of a release hook (mp_snapshot_set_release_hook). NULL is a no-op.
 */
void mp_snapshot_free(struct mp_snapshot *snap);

/**
 * Sets the calling thread's release hook: when this thread drops the last
 * reference of a snapshot, fn(arg, snap) takes it over (and must have it
 * mp_snapshot_free'd) instead of mp_snapshot_unref freeing it in place.
 * Workers hand snapshots to the main thread this way, so freeing the
 * thousands of clusters a push removed never holds up a worker's loop.
 * fn NULL: freed in place (the default).
 */
void mp_snapshot_set_release_hook(void (*fn)(void *arg, struct mp_snapshot *snap), void *arg);

/**
 * A release hook for worker threads (arg: the server): queues snap, without
 * a lock, for the main thread to free on its next loop turn (or at exit).
 */
void mp_server_release_snapshot(void *arg, struct mp_snapshot *snap);

/**
 * Drops a reference (any thread); the last one frees everything it holds
 * (or gives the snapshot to the thread's release hook). NULL is a no-op.
 */
void mp_snapshot_unref(struct mp_snapshot *snap);

/**
 * Makes snap the configuration in force: seals it, gives it the next version,
 * opens sockets for new listeners and closes removed ones, and hands it to
 * every worker (ev_async). Call on the main thread. Takes over the caller's
 * reference whatever the result. Returns 0, or a negative MP_ERR_* when a new
 * listener's socket cannot be opened (the previous snapshot stays in force;
 * *err, when err is not NULL, names the listener).
 */
int mp_snapshot_publish(struct mp_server *server, struct mp_snapshot *snap, char **err);

/**
 * Resolves the stats of snap's clusters ahead of mp_snapshot_publish, which
 * then keeps them: registering the stats of thousands of new clusters takes
 * a while, and this lets the thread that built snap (the xDS grpc thread) do
 * it instead of the main thread. Any thread (the stats registry and caches
 * have their own locks); snap must not be published yet. A stat that cannot
 * be registered (NOMEM) is left for mp_snapshot_publish to try again.
 */
void mp_snapshot_prepare_stats(struct mp_server *server, struct mp_snapshot *snap);

/** Returns a new reference to the snapshot now in force (main thread), or NULL. */
struct mp_snapshot *mp_server_current_snapshot(struct mp_server *server);

#endif
