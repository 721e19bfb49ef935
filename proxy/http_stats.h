/*
 * http_stats.h: the data path's stat handles, resolved by name once (at
 * snapshot publication, on the main thread) so workers only ever bump
 * counters through cached pointers.
 */
#ifndef MP_HTTP_STATS_H
#define MP_HTTP_STATS_H

#include "stats.h"
#include "tls_context.h"

/** http.<stat_prefix>.* */
struct mp_hcm_stats {
    struct mp_counter *rq_total, *rq_xx[6]; /* downstream_rq_total, [1..5] = 1xx..5xx */
    struct mp_counter *rq_http1_total, *rq_http2_total;
    struct mp_counter *cx_total, *cx_http1_total, *cx_http2_total;
    struct mp_gauge *cx_active, *rq_active;
    struct mp_counter *cx_protocol_error, *rq_timeout, *rx_reset, *tx_reset;
    struct mp_counter *no_route, *no_cluster, *rq_direct_response, *rq_redirect;
    struct mp_histogram *rq_time, *cx_length;
};

/** tcp.<stat_prefix>.* (tcp_proxy) */
struct mp_tcp_stats {
    struct mp_counter *cx_total, *rx_bytes, *tx_bytes, *no_route;
    struct mp_gauge *cx_active;
};

/** listener.<addr>.* */
struct mp_listener_stats {
    struct mp_counter *cx_total;
    struct mp_gauge *cx_active;
    struct mp_counter *no_filter_chain_match;
    struct mp_tls_stats ssl; /* listener.<addr>.ssl.*, bumped by the TLS transports */
};

/** cluster.<name>.* */
struct mp_cluster_stats {
    struct mp_counter *rq_total, *rq_xx[6];
    struct mp_counter *cx_total, *cx_connect_fail, *cx_connect_timeout, *cx_destroy;
    struct mp_counter *cx_http1_total, *cx_http2_total;
    struct mp_gauge *cx_active, *rq_active;
    struct mp_counter *rq_timeout, *rq_pending_total, *rq_cancelled, *rq_reset;
    struct mp_counter *cx_none_healthy; /* upstream_cx_none_healthy */
    struct mp_counter *rq_per_try_timeout, *rq_retry;
    struct mp_histogram *rq_time, *cx_connect_ms;
    struct mp_tls_stats ssl; /* cluster.<name>.ssl.*, bumped by the TLS transports */
};

/** Per upstream host counters, for /clusters (atomics: any worker may update them). */
struct mp_host_stats {
    _Atomic uint64_t cx_total, cx_active, cx_connect_fail;
    _Atomic uint64_t rq_total, rq_active, rq_success, rq_error, rq_timeout;
};

/**
 * Returns the counters of host addr in cluster (created at 0 on first use;
 * lives until mp_http_stats_free_all). Any thread: takes a mutex, so call it
 * when a pool is made, not per request. NULL on NOMEM.
 */
struct mp_host_stats *mp_http_stats_host(const char *cluster, const char *addr);

/**
 * Returns the counters of host addr in cluster without creating them, or NULL.
 */
struct mp_host_stats *mp_http_stats_host_find(const char *cluster, const char *addr);

/**
 * Returns the stats of HTTP connection manager stat_prefix, registering them
 * on first use; the result is cached for the process life (main thread only).
 * Returns NULL on NOMEM.
 */
struct mp_hcm_stats *mp_http_stats_hcm(struct mp_stats *stats, const char *stat_prefix);

/** Like mp_http_stats_hcm for tcp.<stat_prefix> (tcp_proxy). */
struct mp_tcp_stats *mp_http_stats_tcp(struct mp_stats *stats, const char *stat_prefix);

/** Like mp_http_stats_hcm for listener.<stat_name>. */
struct mp_listener_stats *mp_http_stats_listener(struct mp_stats *stats, const char *stat_name);

/** Like mp_http_stats_hcm for cluster.<name>. */
struct mp_cluster_stats *mp_http_stats_cluster(struct mp_stats *stats, const char *name);

/** Frees the caches (at exit, before mp_stats_free). */
void mp_http_stats_free_all(void);

/** Returns the status class index 1..5 of an HTTP status (0 for out of range). */
static inline int mp_http_status_class(int status)
{
    return (status >= 100 && status < 600) ? status / 100 : 0;
}

#endif
