/*
 * http_stats.c: name -> handle caches for the data path's stats.
 */
#include "http_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

struct cache_entry {
    struct cache_entry *next;
    int kind;
    char *name;
    void *stats;
};

/* A chained hash of (kind, name): a publication resolves every cluster, so
 * with a list a push of n clusters cost O(n^2) under host_mu, which workers
 * take when they make a pool. */
static struct cache_entry **buckets;
static size_t n_buckets, n_cached;
/* the caches are read by workers too (host stats): one mutex, never per request */
static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t cache_hash(int kind, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

static void *cache_find(int kind, const char *name)
{
    if (!n_buckets)
        return NULL;
    for (struct cache_entry *e = buckets[cache_hash(kind, name) & (n_buckets - 1)]; e; e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e->stats;
    return NULL;
}

static int cache_grow(void)
{
    size_t n = n_buckets ? n_buckets * 2 : 256;
    struct cache_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n_buckets; i++) {
        while (buckets[i]) {
            struct cache_entry *e = buckets[i];
            buckets[i] = e->next;
            size_t j = cache_hash(e->kind, e->name) & (n - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(buckets);
    buckets = b;
    n_buckets = n;
    return 0;
}

static int cache_put(int kind, const char *name, void *stats)
{
    /* a failed grow only makes the chains longer, once there is a table */
    if (n_cached >= n_buckets && cache_grow() < 0 && !n_buckets)
        return MP_ERR_NOMEM;
    struct cache_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return MP_ERR_NOMEM;
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return MP_ERR_NOMEM;
    }
    e->kind = kind;
    e->stats = stats;
    size_t j = cache_hash(kind, name) & (n_buckets - 1);
    e->next = buckets[j];
    buckets[j] = e;
    n_cached++;
    return 0;
}

/* <kind>.<name>.ssl.*: the cells live in the cached struct, which outlives
 * every snapshot, so counts survive config and certificate changes. A
 * failed registration only leaves the names out (the cells stay valid). */
static void register_ssl(struct mp_stats *st, const char *kind, const char *name,
                         struct mp_tls_stats *ssl)
{
    char prefix[400];
    if ((size_t)snprintf(prefix, sizeof(prefix), "%s.%s.", kind, name) < sizeof(prefix))
        (void)mp_tls_stats_register(st, prefix, ssl);
}

static struct mp_hcm_stats *mp_http_stats_hcm_locked(struct mp_stats *st, const char *p)
{
    struct mp_hcm_stats *s = cache_find(0, p);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rq_total = mp_stats_counterf(st, "http.%s.downstream_rq_total", p);
    for (int i = 1; i <= 5; i++)
        s->rq_xx[i] = mp_stats_counterf(st, "http.%s.downstream_rq_%dxx", p, i);
    s->rq_http1_total = mp_stats_counterf(st, "http.%s.downstream_rq_http1_total", p);
    s->rq_http2_total = mp_stats_counterf(st, "http.%s.downstream_rq_http2_total", p);
    s->cx_total = mp_stats_counterf(st, "http.%s.downstream_cx_total", p);
    s->cx_http1_total = mp_stats_counterf(st, "http.%s.downstream_cx_http1_total", p);
    s->cx_http2_total = mp_stats_counterf(st, "http.%s.downstream_cx_http2_total", p);
    s->cx_active = mp_stats_gaugef(st, "http.%s.downstream_cx_active", p);
    s->rq_active = mp_stats_gaugef(st, "http.%s.downstream_rq_active", p);
    s->cx_protocol_error = mp_stats_counterf(st, "http.%s.downstream_cx_protocol_error", p);
    s->rq_timeout = mp_stats_counterf(st, "http.%s.downstream_rq_timeout", p);
    s->rx_reset = mp_stats_counterf(st, "http.%s.downstream_rq_rx_reset", p);
    s->tx_reset = mp_stats_counterf(st, "http.%s.downstream_rq_tx_reset", p);
    s->no_route = mp_stats_counterf(st, "http.%s.no_route", p);
    s->no_cluster = mp_stats_counterf(st, "http.%s.no_cluster", p);
    s->rq_direct_response = mp_stats_counterf(st, "http.%s.rq_direct_response", p);
    s->rq_redirect = mp_stats_counterf(st, "http.%s.rq_redirect", p);
    s->rq_time = mp_stats_histogramf(st, MP_HIST_MS_FROM_US, "http.%s.downstream_rq_time", p);
    s->cx_length =
        mp_stats_histogramf(st, MP_HIST_MS_FROM_US, "http.%s.downstream_cx_length_ms", p);
    if (cache_put(0, p, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static struct mp_listener_stats *mp_http_stats_listener_locked(struct mp_stats *st, const char *n)
{
    struct mp_listener_stats *s = cache_find(1, n);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cx_total = mp_stats_counterf(st, "listener.%s.downstream_cx_total", n);
    s->cx_active = mp_stats_gaugef(st, "listener.%s.downstream_cx_active", n);
    s->no_filter_chain_match = mp_stats_counterf(st, "listener.%s.no_filter_chain_match", n);
    register_ssl(st, "listener", n, &s->ssl);
    if (cache_put(1, n, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static struct mp_cluster_stats *mp_http_stats_cluster_locked(struct mp_stats *st, const char *n)
{
    struct mp_cluster_stats *s = cache_find(2, n);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rq_total = mp_stats_counterf(st, "cluster.%s.upstream_rq_total", n);
    for (int i = 1; i <= 5; i++)
        s->rq_xx[i] = mp_stats_counterf(st, "cluster.%s.upstream_rq_%dxx", n, i);
    s->cx_total = mp_stats_counterf(st, "cluster.%s.upstream_cx_total", n);
    s->cx_connect_fail = mp_stats_counterf(st, "cluster.%s.upstream_cx_connect_fail", n);
    s->cx_connect_timeout = mp_stats_counterf(st, "cluster.%s.upstream_cx_connect_timeout", n);
    s->cx_destroy = mp_stats_counterf(st, "cluster.%s.upstream_cx_destroy", n);
    s->cx_http1_total = mp_stats_counterf(st, "cluster.%s.upstream_cx_http1_total", n);
    s->cx_http2_total = mp_stats_counterf(st, "cluster.%s.upstream_cx_http2_total", n);
    s->cx_active = mp_stats_gaugef(st, "cluster.%s.upstream_cx_active", n);
    s->rq_active = mp_stats_gaugef(st, "cluster.%s.upstream_rq_active", n);
    s->rq_timeout = mp_stats_counterf(st, "cluster.%s.upstream_rq_timeout", n);
    s->rq_pending_total = mp_stats_counterf(st, "cluster.%s.upstream_rq_pending_total", n);
    s->rq_cancelled = mp_stats_counterf(st, "cluster.%s.upstream_rq_cancelled", n);
    s->rq_reset = mp_stats_counterf(st, "cluster.%s.upstream_rq_rx_reset", n);
    s->cx_none_healthy = mp_stats_counterf(st, "cluster.%s.upstream_cx_none_healthy", n);
    s->rq_per_try_timeout = mp_stats_counterf(st, "cluster.%s.upstream_rq_per_try_timeout", n);
    s->rq_retry = mp_stats_counterf(st, "cluster.%s.upstream_rq_retry", n);
    s->rq_time = mp_stats_histogramf(st, MP_HIST_MS_FROM_US, "cluster.%s.upstream_rq_time", n);
    s->cx_connect_ms =
        mp_stats_histogramf(st, MP_HIST_MS_FROM_US, "cluster.%s.upstream_cx_connect_ms", n);
    register_ssl(st, "cluster", n, &s->ssl);
    if (cache_put(2, n, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static struct mp_host_stats *host_stats(const char *cluster, const char *addr, bool create)
{
    char key[512];
    snprintf(key, sizeof(key), "%s|%s", cluster, addr);
    pthread_mutex_lock(&host_mu);
    struct mp_host_stats *s = cache_find(3, key);
    if (!s && create) {
        s = calloc(1, sizeof(*s));
        if (s && cache_put(3, key, s) < 0) {
            free(s);
            s = NULL;
        }
    }
    pthread_mutex_unlock(&host_mu);
    return s;
}

struct mp_hcm_stats *mp_http_stats_hcm(struct mp_stats *st, const char *name)
{
    pthread_mutex_lock(&host_mu);
    struct mp_hcm_stats *s = mp_http_stats_hcm_locked(st, name);
    pthread_mutex_unlock(&host_mu);
    return s;
}

struct mp_listener_stats *mp_http_stats_listener(struct mp_stats *st, const char *name)
{
    pthread_mutex_lock(&host_mu);
    struct mp_listener_stats *s = mp_http_stats_listener_locked(st, name);
    pthread_mutex_unlock(&host_mu);
    return s;
}

struct mp_cluster_stats *mp_http_stats_cluster(struct mp_stats *st, const char *name)
{
    pthread_mutex_lock(&host_mu);
    struct mp_cluster_stats *s = mp_http_stats_cluster_locked(st, name);
    pthread_mutex_unlock(&host_mu);
    return s;
}

struct mp_tcp_stats *mp_http_stats_tcp(struct mp_stats *st, const char *p)
{
    pthread_mutex_lock(&host_mu);
    struct mp_tcp_stats *s = cache_find(4, p);
    if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
        s->cx_total = mp_stats_counterf(st, "tcp.%s.downstream_cx_total", p);
        s->rx_bytes = mp_stats_counterf(st, "tcp.%s.downstream_cx_rx_bytes_total", p);
        s->tx_bytes = mp_stats_counterf(st, "tcp.%s.downstream_cx_tx_bytes_total", p);
        s->no_route = mp_stats_counterf(st, "tcp.%s.downstream_cx_no_route", p);
        s->cx_active = mp_stats_gaugef(st, "tcp.%s.downstream_cx_active", p);
        if (cache_put(4, p, s) < 0) {
            free(s);
            s = NULL;
        }
    }
    pthread_mutex_unlock(&host_mu);
    return s;
}

struct mp_host_stats *mp_http_stats_host(const char *cluster, const char *addr)
{
    return host_stats(cluster, addr, true);
}

struct mp_host_stats *mp_http_stats_host_find(const char *cluster, const char *addr)
{
    return host_stats(cluster, addr, false);
}

void mp_http_stats_free_all(void)
{
    pthread_mutex_lock(&host_mu);
    for (size_t i = 0; i < n_buckets; i++) {
        while (buckets[i]) {
            struct cache_entry *e = buckets[i];
            buckets[i] = e->next;
            free(e->stats);
            free(e->name);
            free(e);
        }
    }
    free(buckets);
    buckets = NULL;
    n_buckets = n_cached = 0;
    pthread_mutex_unlock(&host_mu);
}
