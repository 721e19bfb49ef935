/*
 * tracing.c: the tracer core: Envoy's sampling decision, spans and their
 * tags, and the stream hooks (start, inject into the upstream request,
 * finish).
 */
#include "tracing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http_headers.h"
#include "http_stream.h"
#include "mp_common.h"
#include "stats.h"
#include "tracing_context.h"
#include "tracing_export.h"
#include "worker.h"
#include "xds_translate_listener.h"

/* node identity: set on the main thread before workers start */
static char *node_id, *node_cluster, *node_zone;

static int set_str(char **dst, const char *v)
{
    char *c = v && *v ? strdup(v) : NULL;
    if (v && *v && !c)
        return MP_ERR_NOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

int mp_tracing_set_local_node(const char *id, const char *cluster, const char *zone)
{
    if (set_str(&node_id, id) < 0 || set_str(&node_cluster, cluster) < 0 ||
        set_str(&node_zone, zone) < 0)
        return MP_ERR_NOMEM;
    return 0;
}

const char *mp_tracing_local_service(void)
{
    return node_cluster ? node_cluster : "meshproxy";
}

/* Ids need to be unique, not secret: a per-thread xorshift seeded once. */
static _Thread_local uint64_t rng[2];

uint64_t mp_tracing_random_id(void)
{
    if (rng[0] == 0 && rng[1] == 0) {
        if (getrandom(rng, sizeof(rng), 0) != sizeof(rng)) {
            rng[0] = (uint64_t)mp_wall_us() | 1;
            rng[1] = (uint64_t)(uintptr_t)&rng ^ 0x9e3779b97f4a7c15ull;
        }
    }
    uint64_t v;
    do {
        uint64_t s1 = rng[0];
        const uint64_t s0 = rng[1];
        rng[0] = s0;
        s1 ^= s1 << 23;
        rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        v = rng[1] + s0;
    } while (v == 0);
    return v;
}

/* ---- sampling --------------------------------------------------------------- */

/* Envoy's UUID request id: the 15th character (the UUID version) carries
 * the trace decision, so that every hop that sees the id agrees. */
#define TRACE_POS 14

static enum mp_trace_status rid_status(const struct mp_header *rid)
{
    if (!rid || rid->value_len != 36)
        return MP_TRACE_NO_TRACE;
    switch (rid->value[TRACE_POS]) {
    case '9': return MP_TRACE_SAMPLED;
    case 'a': return MP_TRACE_FORCED;
    case 'b': return MP_TRACE_CLIENT;
    default: return MP_TRACE_NO_TRACE;
    }
}

/* Envoy's modBy: the first 8 hex digits of the id, mod m. */
static bool rid_mod(const struct mp_header *rid, uint64_t m, uint64_t *out)
{
    uint64_t v;
    if (!rid || rid->value_len < 8 || mp_trace_parse_hex64(rid->value, 8, &v) < 0)
        return false;
    *out = v % m;
    return true;
}

enum mp_trace_status mp_tracing_decide(const struct mp_tracing_config *cfg, struct mp_headers *req)
{
    const struct mp_header *rid = mp_headers_get(req, "x-request-id");
    uint64_t r;
    if (!rid_mod(rid, 10000, &r))
        return MP_TRACE_NO_TRACE;
    enum mp_trace_status cur = rid_status(rid), fin = cur;
    if (cur == MP_TRACE_NO_TRACE) {
        /* client_sampling is a plain random draw in Envoy (featureEnabled without a
         * stable value); random_sampling uses the id so hops agree */
        if (mp_headers_get(req, "x-client-trace-id") &&
            mp_tracing_random_id() % 10000 < cfg->client_sampling)
            fin = MP_TRACE_CLIENT;
        else if (mp_headers_get(req, "x-envoy-force-trace"))
            fin = MP_TRACE_FORCED;
        else if (r < cfg->random_sampling)
            fin = MP_TRACE_SAMPLED;
    }
    if (!(r < cfg->overall_sampling))
        fin = MP_TRACE_NO_TRACE;
    if (fin != cur && rid->value_len == 36) {
        static const char c[] = {'4', '9', 'b', 'a'};
        char id[37];
        memcpy(id, rid->value, 36);
        id[36] = '\0';
        id[TRACE_POS] = c[fin];
        mp_headers_set(req, "x-request-id", id, 36); /* on NOMEM the old id stays */
    }
    return fin;
}

/* ---- spans ------------------------------------------------------------------ */

void mp_span_free(struct mp_span *sp)
{
    if (!sp)
        return;
    for (size_t i = 0; i < sp->n_tags; i++) {
        free(sp->tags[i].key);
        free(sp->tags[i].value);
    }
    free(sp->tags);
    free(sp->name);
    free(sp);
}

int mp_span_set_tag(struct mp_span *sp, const char *key, const char *value, size_t len)
{
    char *v = malloc(len + 1);
    if (!v)
        return MP_ERR_NOMEM;
    memcpy(v, value, len);
    v[len] = '\0';
    for (size_t i = 0; i < sp->n_tags; i++) {
        if (strcmp(sp->tags[i].key, key) == 0) {
            free(sp->tags[i].value);
            sp->tags[i].value = v;
            return 0;
        }
    }
    if (sp->n_tags == sp->cap_tags) {
        size_t cap = sp->cap_tags ? sp->cap_tags * 2 : 16;
        struct mp_span_tag *t = realloc(sp->tags, cap * sizeof(*t));
        if (!t) {
            free(v);
            return MP_ERR_NOMEM;
        }
        sp->tags = t;
        sp->cap_tags = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return MP_ERR_NOMEM;
    }
    sp->tags[sp->n_tags].key = k;
    sp->tags[sp->n_tags++].value = v;
    return 0;
}

int mp_span_set_tag_cstr(struct mp_span *sp, const char *key, const char *value)
{
    return mp_span_set_tag(sp, key, value, strlen(value));
}

const char *mp_span_tag(const struct mp_span *sp, const char *key)
{
    for (size_t i = 0; i < sp->n_tags; i++)
        if (strcmp(sp->tags[i].key, key) == 0)
            return sp->tags[i].value;
    return NULL;
}

/* "1.2.3.4:80" / "[::1]:80" -> ip and port */
static void split_addr(const char *a, char *ip, size_t cap, uint16_t *port)
{
    ip[0] = '\0';
    *port = 0;
    if (!a)
        return;
    const char *colon = strrchr(a, ':');
    size_t n = colon ? (size_t)(colon - a) : strlen(a);
    if (n >= 2 && a[0] == '[') {
        a++;
        n -= 2;
    }
    if (n >= cap)
        return;
    memcpy(ip, a, n);
    ip[n] = '\0';
    if (colon)
        *port = (uint16_t)strtoul(colon + 1, NULL, 10);
}

static struct mp_span *span_new(const struct mp_tracing_config *cfg, const char *name)
{
    struct mp_span *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return NULL;
    sp->cfg = cfg;
    sp->name = strdup(name);
    if (!sp->name) {
        free(sp);
        return NULL;
    }
    sp->start_wall_us = mp_wall_us();
    sp->start_mono_us = mp_now_us();
    return sp;
}

/* Envoy's http.<stat_prefix>.tracing.* counters, by decision. Handles are
 * cached per worker by stat_prefix (registration takes the registry's mutex:
 * once per HCM and worker, never per request). */
struct decision_stats {
    const char *prefix; /* the HCM's string (the cache key) */
    char *copy;         /* and its text: an address reused by another HCM must not match */
    struct mp_counter *c[4];
};
static _Thread_local struct decision_stats dstats[32];

static void count_decision(struct mp_http_stream *s, enum mp_trace_status st)
{
    const char *prefix = s->hcm->stat_prefix;
    if (!s->worker || !s->worker->stats || !prefix)
        return;
    struct decision_stats *d = &dstats[((uintptr_t)prefix >> 4) % MP_ARRAY_LEN(dstats)];
    if (d->prefix != prefix || !d->copy || strcmp(d->copy, prefix) != 0) {
        static const char *const names[] = {"not_traceable", "random_sampling", "client_enabled",
                                            "service_forced"};
        char *copy = strdup(prefix);
        if (!copy)
            return;
        free(d->copy);
        d->copy = copy;
        for (int i = 0; i < 4; i++)
            d->c[i] = mp_stats_counterf(s->worker->stats, "http.%s.tracing.%s", prefix, names[i]);
        d->prefix = prefix;
    }
    mp_counter_inc(d->c[st], s->worker->index, 1);
}

void mp_tracing_stats_thread_exit(void)
{
    for (size_t i = 0; i < MP_ARRAY_LEN(dstats); i++) {
        free(dstats[i].copy);
        memset(&dstats[i], 0, sizeof(dstats[i]));
    }
}

void mp_tracing_stream_start(struct mp_http_stream *s)
{
    const struct mp_tracing_config *cfg = s->hcm->tracing;
    if (!cfg || s->span)
        return;
    enum mp_trace_status st = mp_tracing_decide(cfg, &s->req);
    count_decision(s, st);
    struct mp_trace_context in;
    int have = cfg->provider == MP_TRACING_ZIPKIN ? mp_trace_context_extract_b3(&s->req, &in)
                                                  : mp_trace_context_extract_w3c(&s->req, &in);
    const char *host = mp_headers_value(&s->req, ":authority");
    const char *name = host ? host : "-";
    char opname[64];
    if (cfg->provider == MP_TRACING_OTEL) {
        /* Envoy's OpenTelemetry spans are named by the HCM direction */
        snprintf(opname, sizeof(opname), "%s", cfg->egress ? "egress" : "ingress");
        name = opname;
    }
    struct mp_span *sp = span_new(cfg, name);
    if (!sp)
        return;
    sp->kind = cfg->egress ? MP_SPAN_CLIENT : MP_SPAN_SERVER;
    /* Envoy: the span starts with the stream (its first byte), not at our decision */
    sp->start_wall_us = s->start_wall_us;
    sp->start_mono_us = s->start_mono_us;
    bool traced = st != MP_TRACE_NO_TRACE;
    if (have == 1) {
        sp->ctx = in;
        /* the upstream hop's decision wins, as in Envoy's B3 / W3C extractors */
        sp->sampled = in.sampled >= 0 ? in.sampled == 1 : traced;
        if (cfg->provider == MP_TRACING_ZIPKIN && !cfg->egress && cfg->shared_span_context) {
            /* shared span: the client's span id is ours, its parent stays */
            sp->shared = true;
        } else {
            sp->ctx.parent_id = in.span_id;
            sp->ctx.has_parent = true;
            sp->ctx.span_id = mp_tracing_random_id();
        }
    } else {
        sp->sampled = have == 0 && in.sampled >= 0 ? in.sampled == 1 : traced;
        sp->ctx.span_id = mp_tracing_random_id();
        sp->ctx.trace_id = sp->ctx.span_id;
        sp->ctx.trace_id_high =
            (cfg->trace_id_128bit || cfg->provider == MP_TRACING_OTEL) ? mp_tracing_random_id() : 0;
        sp->ctx.has_parent = false;
        sp->ctx.debug = have == 0 && in.debug;
        sp->ctx.tracestate[0] = '\0';
    }
    sp->ctx.sampled = sp->sampled ? 1 : 0;
    /* Envoy: the downstream proxy's route decorator names an ingress span */
    const char *op = cfg->egress ? NULL : mp_headers_value(&s->req, "x-envoy-decorator-operation");
    if (op && *op) {
        char *n = strdup(op);
        if (n) {
            free(sp->name);
            sp->name = n;
            sp->name_from_header = true;
        }
    }
    split_addr(s->downstream_local, sp->local_ip, sizeof(sp->local_ip), &(uint16_t){0});
    s->span = sp;
}

void mp_tracing_stream_set_operation(struct mp_http_stream *s, const char *operation,
                                     bool propagate)
{
    struct mp_span *sp = s->span;
    if (!sp || !operation || !*operation || sp->name_from_header)
        return;
    char *n = strdup(operation);
    if (!n)
        return;
    free(sp->name);
    sp->name = n;
    sp->propagate_operation = sp->cfg->egress && propagate;
}

static int inject(const struct mp_span *sp, struct mp_headers *h)
{
    return sp->cfg->provider == MP_TRACING_ZIPKIN ? mp_trace_context_inject_b3(&sp->ctx, h)
                                                  : mp_trace_context_inject_w3c(&sp->ctx, h);
}

void mp_tracing_stream_inject(struct mp_http_stream *s, struct mp_headers *h)
{
    struct mp_span *sp = s->span;
    if (!sp)
        return;
    if (sp->cfg->spawn_upstream_span && !sp->child) {
        struct mp_span *c = span_new(sp->cfg, sp->name);
        if (c) {
            c->kind = MP_SPAN_CLIENT;
            c->sampled = sp->sampled;
            c->ctx = sp->ctx;
            c->ctx.parent_id = sp->ctx.span_id;
            c->ctx.has_parent = true;
            c->ctx.span_id = mp_tracing_random_id();
            memcpy(c->local_ip, sp->local_ip, sizeof(c->local_ip));
            sp->child = c;
        }
    }
    inject(sp->child ? sp->child : sp, h);
    if (sp->propagate_operation)
        mp_headers_set_cstr(h, "x-envoy-decorator-operation", sp->name);
}

static void tag_u64(struct mp_span *sp, const char *key, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    mp_span_set_tag(sp, key, b, (size_t)n);
}

static const char *or_dash(const char *v)
{
    return v && *v ? v : "-";
}

/* Tags Envoy's HttpTracerUtility records on the downstream span. */
static void downstream_tags(struct mp_span *sp, struct mp_http_stream *s)
{
    const struct mp_tracing_config *cfg = sp->cfg;
    const struct mp_headers *rq = &s->req;
    mp_span_set_tag_cstr(sp, "component", "proxy");
    if (node_id)
        mp_span_set_tag_cstr(sp, "node_id", node_id);
    if (node_zone)
        mp_span_set_tag_cstr(sp, "zone", node_zone);
    const char *rid = mp_headers_value(rq, "x-request-id");
    if (rid)
        mp_span_set_tag_cstr(sp, "guid:x-request-id", rid);
    const char *cid = mp_headers_value(rq, "x-client-trace-id");
    if (cid)
        mp_span_set_tag_cstr(sp, "guid:x-client-trace-id", cid);
    /* http.url: scheme://host/path, truncated to max_path_tag_length */
    const char *scheme = mp_headers_value(rq, "x-forwarded-proto");
    const char *path = mp_headers_value(rq, "x-envoy-original-path");
    if (!path)
        path = mp_headers_value(rq, ":path");
    char *url = NULL;
    size_t plen = path ? strlen(path) : 0;
    if (plen > cfg->max_path_tag_length)
        plen = cfg->max_path_tag_length;
    const char *host = or_dash(mp_headers_value(rq, ":authority"));
    size_t ulen = strlen(scheme ? scheme : "http") + 3 + strlen(host) + plen + 1;
    if ((url = malloc(ulen)) != NULL) {
        int n = snprintf(url, ulen, "%s://%s%.*s", scheme ? scheme : "http", host, (int)plen,
                         path ? path : "");
        mp_span_set_tag(sp, "http.url", url, (size_t)n);
        free(url);
    }
    mp_span_set_tag_cstr(sp, "http.method", or_dash(mp_headers_value(rq, ":method")));
    mp_span_set_tag_cstr(sp, "downstream_cluster",
                         or_dash(mp_headers_value(rq, "x-envoy-downstream-service-cluster")));
    mp_span_set_tag_cstr(sp, "user_agent", or_dash(mp_headers_value(rq, "user-agent")));
    mp_span_set_tag_cstr(sp, "http.protocol",
                         s->protocol == 2    ? "HTTP/2"
                         : s->protocol == 10 ? "HTTP/1.0"
                                             : "HTTP/1.1");
    char ip[64];
    uint16_t port;
    split_addr(s->downstream_remote, ip, sizeof(ip), &port);
    if (ip[0]) {
        mp_span_set_tag_cstr(sp, "peer.address", ip);
        if (sp->kind == MP_SPAN_SERVER) {
            memcpy(sp->remote_ip, ip, sizeof(sp->remote_ip));
            sp->remote_port = port;
        }
    }
    tag_u64(sp, "request_size", s->bytes_received);
    tag_u64(sp, "response_size", s->bytes_sent);
    if (s->cluster_name) {
        mp_span_set_tag_cstr(sp, "upstream_cluster", s->cluster_name);
        mp_span_set_tag_cstr(sp, "upstream_cluster.name", s->cluster_name);
    }
    if (s->upstream_host[0])
        mp_span_set_tag_cstr(sp, "upstream_address", s->upstream_host);
    char flags[64];
    mp_span_set_tag_cstr(sp, "response_flags",
                         mp_http_response_flags_str(s->response_flags, flags, sizeof(flags)));
    for (size_t i = 0; i < cfg->n_custom_tags; i++) {
        const struct mp_tracing_custom_tag *t = &cfg->custom_tags[i];
        const char *v = NULL;
        if (t->kind == MP_TRACING_TAG_LITERAL)
            v = t->value;
        else if (t->kind == MP_TRACING_TAG_HEADER)
            v = mp_headers_value(rq, t->value);
        else
            v = t->env_value;
        if (!v)
            v = t->default_value;
        if (v)
            mp_span_set_tag_cstr(sp, t->tag, v);
    }
}

static void status_tags(struct mp_span *sp, const struct mp_http_stream *s)
{
    if (s->status > 0)
        tag_u64(sp, "http.status_code", (uint64_t)s->status);
    else
        mp_span_set_tag_cstr(sp, "http.status_code", "0");
    if (s->status >= 500 || s->status == 0)
        mp_span_set_tag_cstr(sp, "error", "true");
}

static void span_log(struct mp_span *sp, const struct mp_http_stream *s, int64_t mono_us,
                     const char *event)
{
    if (mono_us < 0 || sp->n_logs >= MP_SPAN_MAX_LOGS)
        return;
    sp->logs[sp->n_logs].wall_us = s->start_wall_us + (mono_us - s->start_mono_us);
    sp->logs[sp->n_logs++].event = event;
}

void mp_tracing_stream_finish(struct mp_http_stream *s)
{
    struct mp_span *sp = s->span;
    if (!sp)
        return;
    s->span = NULL;
    struct mp_span *child = sp->child;
    sp->child = NULL;
    int64_t now = mp_now_us();
    sp->duration_us = now - sp->start_mono_us;
    if (!sp->sampled) {
        mp_span_free(child);
        mp_span_free(sp);
        return;
    }
    downstream_tags(sp, s);
    status_tags(sp, s);
    if (sp->cfg->verbose) {
        /* Envoy's verbose span logs, from the stream's timestamps */
        span_log(sp, s, s->req_done_us, "last_downstream_rx_byte_received");
        span_log(sp, s, s->first_resp_us, "first_downstream_tx_byte_sent");
        if (s->resp_complete)
            span_log(sp, s, now, "last_downstream_tx_byte_sent");
    }
    if (child) {
        child->duration_us = now - child->start_mono_us;
        mp_span_set_tag_cstr(child, "component", "proxy");
        if (s->cluster_name)
            mp_span_set_tag_cstr(child, "upstream_cluster", s->cluster_name);
        if (s->upstream_host[0]) {
            mp_span_set_tag_cstr(child, "upstream_address", s->upstream_host);
            split_addr(s->upstream_host, child->remote_ip, sizeof(child->remote_ip),
                       &child->remote_port);
        }
        mp_span_set_tag_cstr(child, "http.method", or_dash(mp_headers_value(&s->req, ":method")));
        status_tags(child, s);
        mp_tracing_export_span(s, child);
    }
    mp_tracing_export_span(s, sp);
}

/* ---- encoder buffer ----------------------------------------------------------- */

void mp_trace_buf_append(struct mp_trace_buf *b, const void *data, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void mp_trace_buf_puts(struct mp_trace_buf *b, const char *s)
{
    mp_trace_buf_append(b, s, strlen(s));
}

void mp_trace_buf_free(struct mp_trace_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}
