/* cluster.c: cluster and host set lifetime, defaults and small lookups. */
#include "cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "lb_least_request.h"
#include "lb_maglev.h"
#include "lb_random.h"
#include "lb_ring_hash.h"
#include "lb_round_robin.h"
#include "mp_common.h"

const struct mp_lb_ops *mp_lb_ops_get(enum mp_lb_policy policy)
{
    switch (policy) {
    case MP_LB_ROUND_ROBIN: return &mp_lb_round_robin_ops;
    case MP_LB_LEAST_REQUEST: return &mp_lb_least_request_ops;
    case MP_LB_RANDOM: return &mp_lb_random_ops;
    case MP_LB_RING_HASH: return &mp_lb_ring_hash_ops;
    case MP_LB_MAGLEV: return &mp_lb_maglev_ops;
    case MP_LB_CLUSTER_PROVIDED:
    case MP_LB_POLICY_COUNT: break;
    }
    return NULL;
}

const char *mp_lb_policy_name(enum mp_lb_policy policy)
{
    switch (policy) {
    case MP_LB_ROUND_ROBIN: return "ROUND_ROBIN";
    case MP_LB_LEAST_REQUEST: return "LEAST_REQUEST";
    case MP_LB_RANDOM: return "RANDOM";
    case MP_LB_RING_HASH: return "RING_HASH";
    case MP_LB_MAGLEV: return "MAGLEV";
    case MP_LB_CLUSTER_PROVIDED: return "CLUSTER_PROVIDED";
    case MP_LB_POLICY_COUNT: break;
    }
    return "UNKNOWN";
}

static void cluster_destroy(struct mp_cluster *c);

static void circuit_breaker_defaults(struct mp_circuit_breakers *cb)
{
    cb->max_connections = 1024;
    cb->max_pending_requests = 1024;
    cb->max_requests = 1024;
    cb->max_retries = 3;
    cb->track_remaining = false;
}

static void outlier_defaults(struct mp_outlier_detection *o)
{
    memset(o, 0, sizeof(*o));
    o->consecutive_5xx = 5;
    o->interval_ms = 10000;
    o->base_ejection_time_ms = 30000;
    o->max_ejection_time_ms = 300000;
    o->max_ejection_percent = 10;
    o->enforcing_consecutive_5xx = 100;
    o->enforcing_success_rate = 100;
    o->success_rate_minimum_hosts = 5;
    o->success_rate_request_volume = 100;
    o->success_rate_stdev_factor = 1900;
    o->consecutive_gateway_failure = 5;
    o->enforcing_consecutive_gateway_failure = 0;
    o->consecutive_local_origin_failure = 5;
    o->failure_percentage_threshold = 85;
    o->enforcing_failure_percentage = 0;
    o->failure_percentage_minimum_hosts = 5;
    o->failure_percentage_request_volume = 50;
}

struct mp_cluster *mp_cluster_new(const char *name)
{
    struct mp_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->name = strdup(name != NULL ? name : "");
    c->alt_stat_name = strdup("");
    c->eds_service_name = strdup("");
    c->original_dst_http_header_name = strdup("x-envoy-original-dst-host");
    if (c->name == NULL || c->alt_stat_name == NULL || c->eds_service_name == NULL ||
        c->original_dst_http_header_name == NULL) {
        cluster_destroy(c);
        return NULL;
    }
    c->type = MP_CLUSTER_STATIC;
    c->connect_timeout_ms = 5000;
    c->per_connection_buffer_limit = 1024 * 1024;
    c->lb.policy = MP_LB_ROUND_ROBIN;
    c->lb.ring_hash.min_ring_size = 1024;
    c->lb.ring_hash.max_ring_size = 8 * 1024 * 1024;
    c->lb.ring_hash.hash_function = MP_HASH_XX;
    c->lb.maglev.table_size = 65537;
    c->lb.least_request.choice_count = 2;
    c->lb.least_request.active_request_bias = 1.0;
    c->lb.healthy_panic_threshold = 50;
    c->upstream_protocol = MP_UPSTREAM_HTTP1;
    c->http2.hpack_table_size = 4096;
    c->http2.max_concurrent_streams = 2147483647u;
    c->http2.initial_stream_window_size = 268435456u;
    c->http2.initial_connection_window_size = 268435456u;
    c->idle_timeout_ms = 3600 * 1000;
    c->max_headers_count = 100;
    for (int i = 0; i < MP_ROUTING_PRIORITIES; i++)
        circuit_breaker_defaults(&c->circuit_breakers[i]);
    outlier_defaults(&c->outlier);
    c->dns_family = MP_DNS_AUTO;
    c->dns_refresh_ms = 5000;
    c->cleanup_interval_ms = 5000;
    c->overprovisioning_factor = 140;
    atomic_init(&c->refs, 1);
    return c;
}

struct mp_cluster *mp_cluster_ref(struct mp_cluster *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

static void transport_socket_clear(struct mp_transport_socket *ts)
{
    free(ts->name);
    free(ts->typed_config.type_url);
    free(ts->typed_config.data);
    memset(ts, 0, sizeof(*ts));
}

static void kv_free(struct mp_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].filter);
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void locality_clear(struct mp_locality *l)
{
    free(l->region);
    free(l->zone);
    free(l->sub_zone);
}

static void cluster_destroy(struct mp_cluster *c)
{
    free(c->name);
    free(c->alt_stat_name);
    free(c->eds_service_name);
    free(c->original_dst_http_header_name);
    transport_socket_clear(&c->transport_socket);
    for (size_t i = 0; i < c->n_transport_socket_matches; i++) {
        struct mp_transport_socket_match *m = &c->transport_socket_matches[i];
        free(m->name);
        kv_free(m->match, m->n_match);
        transport_socket_clear(&m->socket);
    }
    free(c->transport_socket_matches);
    for (size_t i = 0; i < c->n_dns_targets; i++) {
        free(c->dns_targets[i].hostname);
        locality_clear(&c->dns_targets[i].locality);
    }
    free(c->dns_targets);
    mp_host_set_unref(c->static_hosts);
    free(c);
}

void mp_cluster_unref(struct mp_cluster *c)
{
    if (c == NULL)
        return;
    /* acq_rel: the freeing thread must see every other holder's last reads. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        cluster_destroy(c);
}

void mp_cluster_free(struct mp_cluster *c)
{
    mp_cluster_unref(c);
}

static bool match_subset(const struct mp_transport_socket_match *m, const struct mp_host *h)
{
    for (size_t i = 0; i < m->n_match; i++) {
        const char *v = mp_host_metadata_get(h, m->match[i].filter, m->match[i].key);
        if (v == NULL || strcmp(v, m->match[i].value) != 0)
            return false;
    }
    return true;
}

const struct mp_transport_socket *mp_cluster_transport_socket_for(const struct mp_cluster *c,
                                                                  const struct mp_host *h)
{
    for (size_t i = 0; i < c->n_transport_socket_matches; i++) {
        if (h == NULL ? c->transport_socket_matches[i].n_match == 0
                      : match_subset(&c->transport_socket_matches[i], h))
            return &c->transport_socket_matches[i].socket;
    }
    return &c->transport_socket;
}

struct mp_host_set *mp_host_set_new(void)
{
    struct mp_host_set *hs = calloc(1, sizeof(*hs));
    if (hs == NULL)
        return NULL;
    hs->overprovisioning_factor = 140;
    atomic_init(&hs->refs, 1);
    return hs;
}

struct mp_host_set *mp_host_set_ref(struct mp_host_set *hs)
{
    atomic_fetch_add_explicit(&hs->refs, 1, memory_order_relaxed);
    return hs;
}

static void host_set_destroy(struct mp_host_set *hs)
{
    for (size_t i = 0; i < hs->n_hosts; i++) {
        free(hs->hosts[i].addr_str);
        free(hs->hosts[i].hostname);
        kv_free(hs->hosts[i].metadata, hs->hosts[i].n_metadata);
    }
    free(hs->hosts);
    free(hs->priorities);
    for (size_t i = 0; i < hs->n_localities; i++)
        locality_clear(&hs->localities[i].locality);
    free(hs->localities);
    free(hs);
}

void mp_host_set_unref(struct mp_host_set *hs)
{
    if (hs == NULL)
        return;
    if (atomic_fetch_sub_explicit(&hs->refs, 1, memory_order_acq_rel) == 1)
        host_set_destroy(hs);
}

void mp_host_set_free(struct mp_host_set *hs)
{
    mp_host_set_unref(hs);
}

static int host_priority_cmp(const void *a, const void *b)
{
    const struct mp_host *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    /* index holds the original position until finish: keeps the sort stable. */
    return x->index < y->index ? -1 : (x->index > y->index);
}

int mp_host_set_finish(struct mp_host_set *hs)
{
    uint32_t max_prio = 0;
    for (size_t i = 0; i < hs->n_hosts; i++) {
        hs->hosts[i].index = (uint32_t)i;
        max_prio = MP_MAX(max_prio, hs->hosts[i].priority);
    }
    for (size_t i = 0; i < hs->n_localities; i++)
        max_prio = MP_MAX(max_prio, hs->localities[i].priority);
    if (hs->n_hosts > 1)
        qsort(hs->hosts, hs->n_hosts, sizeof(hs->hosts[0]), host_priority_cmp);
    size_t n_prio = (size_t)max_prio + 1;
    struct mp_priority *p = calloc(n_prio, sizeof(*p));
    if (p == NULL)
        return MP_ERR_NOMEM;
    free(hs->priorities);
    hs->priorities = p;
    hs->n_priorities = n_prio;
    for (size_t i = 0; i < hs->n_hosts; i++) {
        struct mp_host *h = &hs->hosts[i];
        struct mp_priority *lvl = &p[h->priority];
        h->index = (uint32_t)i;
        if (lvl->n_hosts == 0)
            lvl->hosts = h;
        lvl->n_hosts++;
        if (h->health == MP_HOST_HEALTHY)
            lvl->n_healthy++;
        else if (h->health == MP_HOST_DEGRADED)
            lvl->n_degraded++;
    }
    return 0;
}

char *mp_host_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (len == 0)
        return buf;
    buf[0] = '\0';
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
        /* Abstract sockets (leading NUL) print as "@name", as Envoy does. */
        if (sun->sun_path[0] == '\0')
            snprintf(buf, len, "@%.*s", (int)sizeof(sun->sun_path) - 1, sun->sun_path + 1);
        else
            snprintf(buf, len, "%.*s", (int)sizeof(sun->sun_path), sun->sun_path);
        break;
    }
    default: snprintf(buf, len, "unknown"); break;
    }
    return buf;
}

const char *mp_host_metadata_get(const struct mp_host *h, const char *filter, const char *key)
{
    for (size_t i = 0; i < h->n_metadata; i++) {
        if (strcmp(h->metadata[i].filter, filter) == 0 && strcmp(h->metadata[i].key, key) == 0)
            return h->metadata[i].value;
    }
    return NULL;
}
