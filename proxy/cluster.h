/*
 * cluster.h: upstream clusters, their hosts, and the load-balancer interface.
 *
 * Three kinds of object, as in Envoy:
 *   - struct mp_cluster: a translated CDS Cluster. Immutable once built,
 *     reference-counted, shared by every worker.
 *   - struct mp_host_set: the endpoints of a cluster (from EDS, an inline
 *     load_assignment, or DNS answers), grouped by priority. Immutable,
 *     reference-counted; a change of endpoints or health is a new host set.
 *   - load balancing: struct mp_lb (lb_core.h) binds a cluster's policy to a
 *     host set and holds the immutable shared state (rings, tables); each
 *     worker makes its own struct mp_lb_worker holding the mutable state
 *     (round-robin position, active request counts, RNG). No locks, no
 *     shared writes on the request path.
 *
 * A policy is a table of callbacks (struct mp_lb_ops, one file each:
 * lb_round_robin.c, lb_least_request.c, lb_random.c, lb_ring_hash.c,
 * lb_maglev.c). The policy sees one list of hosts (one priority's healthy,
 * degraded or, in panic, all hosts); priority choice is lb_priority.c.
 */
#ifndef MP_CLUSTER_H
#define MP_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* Enums                                                               */

enum mp_cluster_type {
    MP_CLUSTER_STATIC = 0,
    MP_CLUSTER_STRICT_DNS,
    MP_CLUSTER_LOGICAL_DNS, /* resolved like STRICT_DNS, one target */
    MP_CLUSTER_EDS,
    MP_CLUSTER_ORIGINAL_DST,
};

enum mp_lb_policy {
    MP_LB_ROUND_ROBIN = 0,
    MP_LB_LEAST_REQUEST,
    MP_LB_RANDOM,
    MP_LB_RING_HASH,
    MP_LB_MAGLEV,
    MP_LB_CLUSTER_PROVIDED, /* ORIGINAL_DST: the host is the original destination */
    MP_LB_POLICY_COUNT,
};

/* Which HTTP version to speak upstream. */
enum mp_upstream_protocol {
    MP_UPSTREAM_HTTP1 = 0,
    MP_UPSTREAM_HTTP2,
    MP_UPSTREAM_USE_DOWNSTREAM, /* use_downstream_protocol_config */
    MP_UPSTREAM_AUTO,           /* auto_config: ALPN decides (h2 if offered), else HTTP/1.1 */
};

enum mp_hash_function {
    MP_HASH_XX = 0,  /* xxHash64, seed 0 (Envoy's default) */
    MP_HASH_MURMUR2, /* MurmurHash2 64-bit, seed 0xc70f6907 */
};

enum mp_dns_family {
    MP_DNS_AUTO = 0, /* v6 first, fall back to v4 (Envoy AUTO) */
    MP_DNS_V4_ONLY,
    MP_DNS_V6_ONLY,
    MP_DNS_V4_PREFERRED,
    MP_DNS_ALL,
};

/* Host health as the load balancer sees it (Envoy's coarse health). */
enum mp_host_health {
    MP_HOST_HEALTHY = 0, /* EDS UNKNOWN or HEALTHY */
    MP_HOST_DEGRADED,    /* EDS DEGRADED */
    MP_HOST_UNHEALTHY,   /* EDS UNHEALTHY, DRAINING, TIMEOUT */
};

/* Envoy's RoutingPriority: index of circuit breaker thresholds. */
enum mp_routing_priority {
    MP_ROUTING_DEFAULT = 0,
    MP_ROUTING_HIGH = 1,
    MP_ROUTING_PRIORITIES = 2,
};

/* ------------------------------------------------------------------ */
/* Cluster configuration pieces                                        */

/* google.protobuf.Any kept undecoded, for modules that parse it later (TLS). */
struct mp_raw_any {
    char *type_url; /* NULL when absent */
    uint8_t *data;
    size_t len;
};

/* A transport socket ("envoy.transport_sockets.tls" ...). name NULL = plaintext. */
struct mp_transport_socket {
    char *name;
    struct mp_raw_any typed_config;
};

/*
 * One metadata entry, flattened: filter_metadata[filter].key = value.
 * value is canonical text so equality is string equality: strings as
 * "s:<text>", bools "b:true"/"b:false", numbers "n:%.17g", null "null",
 * structs and lists "x:<n>" (compared by presence only).
 */
struct mp_kv {
    char *filter; /* e.g. "envoy.transport_socket_match", "istio", "envoy.lb" */
    char *key;
    char *value;
};

/* Cluster.transport_socket_matches[i]. */
struct mp_transport_socket_match {
    char *name;
    struct mp_kv *match; /* filter is "envoy.transport_socket_match" */
    size_t n_match;
    struct mp_transport_socket socket;
};

struct mp_http2_settings {
    uint32_t hpack_table_size;               /* default 4096 */
    uint32_t max_concurrent_streams;         /* default 2147483647 */
    uint32_t initial_stream_window_size;     /* default 268435456 */
    uint32_t initial_connection_window_size; /* default 268435456 */
    bool allow_connect;
};

struct mp_circuit_breakers {
    uint32_t max_connections;      /* default 1024 */
    uint32_t max_pending_requests; /* default 1024 */
    uint32_t max_requests;         /* default 1024 */
    uint32_t max_retries;          /* default 3 */
    bool track_remaining;
};

/* Outlier detection settings (stored; ejection is not implemented yet). */
struct mp_outlier_detection {
    bool enabled;                                   /* Cluster.outlier_detection was present */
    uint32_t consecutive_5xx;                       /* 5 */
    uint64_t interval_ms;                           /* 10000 */
    uint64_t base_ejection_time_ms;                 /* 30000 */
    uint64_t max_ejection_time_ms;                  /* 300000 */
    uint32_t max_ejection_percent;                  /* 10 */
    uint32_t enforcing_consecutive_5xx;             /* 100 */
    uint32_t enforcing_success_rate;                /* 100 */
    uint32_t success_rate_minimum_hosts;            /* 5 */
    uint32_t success_rate_request_volume;           /* 100 */
    uint32_t success_rate_stdev_factor;             /* 1900 */
    uint32_t consecutive_gateway_failure;           /* 5 */
    uint32_t enforcing_consecutive_gateway_failure; /* 0 */
    bool split_external_local_origin_errors;
    uint32_t consecutive_local_origin_failure;  /* 5 */
    uint32_t failure_percentage_threshold;      /* 85 */
    uint32_t enforcing_failure_percentage;      /* 0 */
    uint32_t failure_percentage_minimum_hosts;  /* 5 */
    uint32_t failure_percentage_request_volume; /* 50 */
};

struct mp_ring_hash_config {
    uint64_t min_ring_size; /* default 1024 */
    uint64_t max_ring_size; /* default 8M */
    enum mp_hash_function hash_function;
};

struct mp_maglev_config {
    uint64_t table_size; /* prime; default 65537 */
};

struct mp_least_request_config {
    uint32_t choice_count;      /* default 2, >= 2 */
    double active_request_bias; /* default 1.0 (weighted hosts only) */
};

/* Everything a policy may read. */
struct mp_lb_config {
    enum mp_lb_policy policy;
    struct mp_ring_hash_config ring_hash;
    struct mp_maglev_config maglev;
    struct mp_least_request_config least_request;
    uint32_t healthy_panic_threshold; /* percent 0..100, default 50; 0 disables panic */
    bool locality_weighted;           /* locality_weighted_lb_config set (not for hash policies) */
    bool use_hostname_for_hashing;    /* consistent_hashing_lb_config */
};

struct mp_locality {
    char *region; /* never NULL ("" when unset) */
    char *zone;
    char *sub_zone;
};

/* An endpoint of a STRICT_DNS / LOGICAL_DNS cluster, before resolution. */
struct mp_dns_target {
    char *hostname;
    uint16_t port;
    uint32_t weight; /* load_balancing_weight, default 1 */
    uint32_t priority;
    uint32_t locality_weight; /* 0 = unset */
    enum mp_host_health health;
    struct mp_locality locality;
};

/*
 * A translated Cluster. All fields are filled with Envoy's defaults when the
 * proto leaves them unset. Immutable after mp_cluster_from_proto.
 */
struct mp_cluster {
    char *name;
    char *alt_stat_name; /* "" when unset */
    enum mp_cluster_type type;
    char *eds_service_name; /* EDS: resource name to subscribe to (cluster name if unset) */
    bool added_via_api;     /* from CDS, not the bootstrap (set before the cluster is shared) */

    uint64_t connect_timeout_ms;          /* default 5000 */
    uint32_t per_connection_buffer_limit; /* default 1 MiB */
    /* upstream_bind_config.source_address: upstream sockets bind here first
     * (Istio: 127.0.0.6 for inbound clusters); source_addr_len 0 = none */
    struct sockaddr_storage source_addr;
    socklen_t source_addr_len;

    struct mp_lb_config lb;

    enum mp_upstream_protocol upstream_protocol;
    struct mp_http2_settings http2;
    uint64_t idle_timeout_ms;             /* default 3600000 (1 h); 0 = none */
    uint64_t max_connection_duration_ms;  /* 0 = none */
    uint64_t max_stream_duration_ms;      /* 0 = none */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    uint32_t max_headers_count;           /* default 100 */

    struct mp_circuit_breakers circuit_breakers[MP_ROUTING_PRIORITIES];
    struct mp_outlier_detection outlier;

    struct mp_transport_socket transport_socket; /* name NULL = plaintext */
    struct mp_transport_socket_match *transport_socket_matches;
    size_t n_transport_socket_matches;

    /* STRICT_DNS / LOGICAL_DNS */
    enum mp_dns_family dns_family;
    uint64_t dns_refresh_ms; /* default 5000 */
    bool respect_dns_ttl;
    struct mp_dns_target *dns_targets;
    size_t n_dns_targets;

    /* ORIGINAL_DST */
    uint64_t cleanup_interval_ms; /* default 5000 */
    bool original_dst_use_http_header;
    char *original_dst_http_header_name; /* "x-envoy-original-dst-host" by default */
    uint32_t original_dst_port_override; /* 0 = none */

    /*
     * STATIC: the hosts, from load_assignment. EDS, DNS and ORIGINAL_DST
     * clusters have NULL here: their host sets come from EDS / DNS / the
     * connection. Owned (one reference).
     */
    struct mp_host_set *static_hosts;
    uint32_t overprovisioning_factor; /* from load_assignment.policy, default 140 */

    atomic_uint refs;
};

/* ------------------------------------------------------------------ */
/* Hosts                                                               */

struct mp_host {
    struct sockaddr_storage addr; /* AF_INET, AF_INET6 or AF_UNIX (pipe) */
    socklen_t addr_len;
    char *addr_str;  /* "10.0.0.1:80", "[::1]:80", "/path/to.sock" (Envoy's asString) */
    char *hostname;  /* Endpoint.hostname or the DNS name; "" when unset */
    uint32_t weight; /* >= 1 */
    enum mp_host_health health;
    uint32_t eds_health; /* the raw envoy.config.core.v3.HealthStatus, for admin */
    uint32_t priority;
    uint32_t locality_index; /* into mp_host_set.localities */
    uint32_t index;          /* position in mp_host_set.hosts, for per-worker arrays */
    struct mp_kv *metadata;  /* flattened LbEndpoint.metadata.filter_metadata */
    size_t n_metadata;
};

struct mp_host_locality {
    struct mp_locality locality;
    uint32_t weight; /* LocalityLbEndpoints.load_balancing_weight; 0 = unset */
    uint32_t priority;
};

/* One priority level: a contiguous slice of mp_host_set.hosts. */
struct mp_priority {
    struct mp_host *hosts;
    size_t n_hosts;
    size_t n_healthy;
    size_t n_degraded;
};

struct mp_host_set {
    struct mp_host *hosts; /* sorted by priority, stable within one */
    size_t n_hosts;
    struct mp_priority *priorities; /* [0 .. max priority], gaps are empty levels */
    size_t n_priorities;
    struct mp_host_locality *localities;
    size_t n_localities;
    uint32_t overprovisioning_factor; /* percent, default 140 */
    bool weighted_priority_health;
    atomic_uint refs;
};

/* ------------------------------------------------------------------ */
/* Load balancer interface                                             */

/*
 * What the caller knows about the request when picking a host.
 * Zero-initialise and set what applies.
 */
struct mp_lb_context {
    bool has_hash;                      /* route hash_policy produced a key */
    uint64_t hash;                      /* ... and this is its hash (mp_lb_hash_key, lb_hash.h) */
    const struct mp_host *const *avoid; /* retry: previous hosts (previous_hosts predicate) */
    size_t n_avoid;
    uint32_t max_attempts; /* host_selection_retry_max_attempts + 1; 0 means 2 */
};

/*
 * Per-worker state every policy may use, owned by struct mp_lb_worker.
 * rq_active is indexed by mp_host.index and counts this worker's in-flight
 * requests on each host of the host set.
 */
struct mp_lb_worker_env {
    uint64_t rng[2]; /* xoroshiro128+ state; see mp_lb_random_u64 */
    const uint32_t *rq_active;
};

/*
 * A load-balancing policy. create() builds the immutable shared state from
 * one list of hosts (all with the same priority and health class); workers
 * then each call worker_new() and pick() with their own state.
 */
struct mp_lb_ops {
    const char *name; /* "ROUND_ROBIN", ... as in Cluster.LbPolicy */
    /** Builds shared state for hosts[0..n) (n >= 1). Returns 0, or MP_ERR_* with *err set. */
    int (*create)(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                  void **shared, char **err);
    /** Frees what create() built. */
    void (*destroy)(void *shared);
    /** Makes one worker's mutable state (may set *state = NULL when none is needed). */
    int (*worker_new)(const void *shared, struct mp_lb_worker_env *env, void **state);
    /** Frees worker_new()'s state; state may be NULL. */
    void (*worker_free)(void *state);
    /**
     * Picks a host. attempt counts re-picks after the caller rejected a host
     * (0 first): hash policies use it to step off the first choice.
     */
    struct mp_host *(*pick)(const void *shared, void *state, struct mp_lb_worker_env *env,
                            const struct mp_lb_context *ctx, uint32_t attempt);
};

/* ------------------------------------------------------------------ */
/* Functions (cluster.c)                                               */

/** Returns the ops table for a policy, or NULL for MP_LB_CLUSTER_PROVIDED. */
const struct mp_lb_ops *mp_lb_ops_get(enum mp_lb_policy policy);

/** Returns "ROUND_ROBIN", "LEAST_REQUEST", ... for stats and admin. */
const char *mp_lb_policy_name(enum mp_lb_policy policy);

/**
 * Allocates a cluster with every field at Envoy's default and one reference.
 * name is copied. Returns NULL when out of memory.
 */
struct mp_cluster *mp_cluster_new(const char *name);

/** Takes another reference (any thread). Returns c. */
struct mp_cluster *mp_cluster_ref(struct mp_cluster *c);

/** Drops a reference (any thread); the last one frees everything. NULL is fine. */
void mp_cluster_unref(struct mp_cluster *c);

/** Same as mp_cluster_unref: drops the reference mp_cluster_from_proto gave. */
void mp_cluster_free(struct mp_cluster *c);

/**
 * Picks the transport socket for a host: the first transport_socket_matches
 * entry whose every key/value appears in the host's
 * "envoy.transport_socket_match" metadata, else the cluster's
 * transport_socket. Never NULL; name NULL means plaintext. The result is
 * owned by the cluster.
 */
const struct mp_transport_socket *mp_cluster_transport_socket_for(const struct mp_cluster *c,
                                                                  const struct mp_host *h);

/**
 * Allocates an empty host set (no hosts, no priorities) with one reference
 * and the default overprovisioning factor. Returns NULL when out of memory.
 */
struct mp_host_set *mp_host_set_new(void);

/** Takes another reference (any thread). Returns hs. */
struct mp_host_set *mp_host_set_ref(struct mp_host_set *hs);

/** Drops a reference (any thread); the last one frees the hosts. NULL is fine. */
void mp_host_set_unref(struct mp_host_set *hs);

/** Same as mp_host_set_unref: drops the reference the creating function gave. */
void mp_host_set_free(struct mp_host_set *hs);

/**
 * Builds host set indexes after hosts[] is filled: sorts hosts by priority
 * (stably), sets each host's index and fills priorities[] with health
 * counts. Used by the translators and the DNS path. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_host_set_finish(struct mp_host_set *hs);

/**
 * Formats an address as Envoy prints it ("1.2.3.4:80", "[::1]:80", or the
 * socket path) into buf. Returns buf.
 */
char *mp_host_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len);

/**
 * Looks up host metadata filter_metadata[filter][key]. Returns the canonical
 * value string (see struct mp_kv) owned by the host, or NULL.
 */
const char *mp_host_metadata_get(const struct mp_host *h, const char *filter, const char *key);

#endif
