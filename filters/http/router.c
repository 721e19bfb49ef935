/*
 * router.c: envoy.filters.http.router.
 *
 * On request headers: find the route, answer direct responses and redirects
 * locally, pick the cluster (weighted clusters too) and a host from this
 * worker's load balancer, rewrite what the route asks (prefix, host, header
 * mutations) and start an upstream request on the worker's pool. Body and
 * trailers stream through as they come; the upstream's send buffer and the
 * downstream's pause each other's reads. The route timeout (default 15 s)
 * starts when the downstream request is complete and answers 504.
 */
#include "router.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "proxy/cluster.h"
#include "proxy/http_stats.h"
#include "proxy/http_stream.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "proxy/rand.h"
#include "proxy/route_table.h"
#include "proxy/router_match.h"
#include "proxy/snapshot.h"
#include "proxy/tracing.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

struct router_config {
    bool suppress_envoy_headers;
};

struct router_state {
    struct mp_http_filter_ctx *f;
    struct mp_upstream_request *up;
    const struct mp_snapshot_cluster *ce;
    struct mp_lb_worker *lbw;
    const struct mp_host *host;
    const struct mp_route *route;
    const struct mp_route_config *rc;
    const struct mp_weighted_cluster *wc;
    ev_timer timer;
    int64_t timeout_ms;
    int64_t start_us;
    bool timer_armed;
    bool resp_started;
    bool finished;
    bool initialized;
    bool lbw_ref; /* we hold a reference on lbw */
    /* retries (route retry_policy): the request is kept (by reference) to replay it */
    bool retry_enabled;
    bool saved_end;
    bool saved_has_trailers;
    bool backoff_armed;
    uint32_t retry_on;
    uint32_t retries_left;
    uint32_t attempt;
    struct mp_headers saved_headers;
    struct mp_buffer saved_body;
    struct mp_headers saved_trailers;
    const struct mp_host *prev_hosts[8];
    uint32_t n_prev_hosts;
    enum mp_upstream_reset_reason last_reset;
    ev_timer backoff;
    struct mp_host orig_host; /* ORIGINAL_DST clusters: the host built for this request */
    char orig_addr[64];
};

enum {
    RETRY_5XX = 1u << 0,
    RETRY_GATEWAY_ERROR = 1u << 1,
    RETRY_CONNECT_FAILURE = 1u << 2,
    RETRY_REFUSED_STREAM = 1u << 3,
    RETRY_RESET = 1u << 4,
    RETRY_STATUS_CODES = 1u << 5,
    RETRY_GRPC_UNAVAILABLE = 1u << 6,
    RETRY_GRPC_CANCELLED = 1u << 7,
};

/* Envoy's retry budget for replaying a request body. */
#define RETRY_BUFFER_LIMIT (1024u * 1024u)

static uint32_t parse_retry_on(const char *v)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } names[] = {
        {"5xx", RETRY_5XX},
        {"gateway-error", RETRY_GATEWAY_ERROR},
        {"connect-failure", RETRY_CONNECT_FAILURE},
        {"refused-stream", RETRY_REFUSED_STREAM},
        {"reset", RETRY_RESET},
        {"retriable-status-codes", RETRY_STATUS_CODES},
        {"unavailable", RETRY_GRPC_UNAVAILABLE},
        {"cancelled", RETRY_GRPC_CANCELLED},
    };
    uint32_t bits = 0;
    size_t len = v ? strlen(v) : 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (mp_http_token_list_has(v ? v : "", len, names[i].name))
            bits |= names[i].bit;
    return bits;
}

static int router_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    struct router_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    if (data && len) {
        Envoy__Extensions__Filters__Http__Router__V3__Router *pb =
            envoy__extensions__filters__http__router__v3__router__unpack(NULL, len, data);
        if (!pb) {
            free(c);
            return mp_set_err(err, "cannot decode Router");
        }
        c->suppress_envoy_headers = pb->suppress_envoy_headers;
        envoy__extensions__filters__http__router__v3__router__free_unpacked(pb, NULL);
    }
    *config = c;
    return 0;
}

static void router_config_free(void *config)
{
    free(config);
}

int mp_router_apply_header_ops(struct mp_headers *h, const struct mp_header_ops *ops, bool request)
{
    const char *const *rm = request ? ops->request_remove : ops->response_remove;
    size_t n_rm = request ? ops->n_request_remove : ops->n_response_remove;
    for (size_t i = 0; i < n_rm; i++)
        mp_headers_remove(h, rm[i]);
    const struct mp_header_add *add = request ? ops->request_add : ops->response_add;
    size_t n_add = request ? ops->n_request_add : ops->n_response_add;
    for (size_t i = 0; i < n_add; i++) {
        const struct mp_header_add *a = &add[i];
        if (a->value_len == 0 && !a->keep_empty_value)
            continue;
        bool exists = mp_headers_get(h, a->name) != NULL;
        int rc = 0;
        switch (a->append) {
        case MP_HEADER_APPEND_IF_EXISTS_OR_ADD:
            rc = mp_headers_add(h, a->name, a->name_len, a->value, a->value_len);
            break;
        case MP_HEADER_ADD_IF_ABSENT:
            if (!exists)
                rc = mp_headers_add(h, a->name, a->name_len, a->value, a->value_len);
            break;
        case MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD:
            rc = mp_headers_set(h, a->name, a->value, a->value_len);
            break;
        case MP_HEADER_OVERWRITE_IF_EXISTS:
            if (exists)
                rc = mp_headers_set(h, a->name, a->value, a->value_len);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Applies route, virtual host and route configuration header mutations, most
 * specific last so it wins (Envoy's default order). */
static void apply_all_header_ops(struct router_state *st, struct mp_headers *h, bool request)
{
    if (st->wc)
        mp_router_apply_header_ops(h, &st->wc->headers, request);
    if (st->route) {
        if (st->rc)
            mp_router_apply_header_ops(h, &st->rc->headers, request);
        mp_router_apply_header_ops(h, &st->route->vhost->headers, request);
        mp_router_apply_header_ops(h, &st->route->headers, request);
    }
}

static struct mp_http_stream *S(struct router_state *st)
{
    return st->f->stream;
}

static void finish(struct router_state *st, int status)
{
    if (st->finished)
        return;
    st->finished = true;
    struct mp_http_stream *s = S(st);
    if (st->timer_armed) {
        ev_timer_stop(s->worker->loop, &st->timer);
        st->timer_armed = false;
    }
    if (st->lbw && st->host) {
        mp_lb_worker_rq_done(st->lbw, st->host);
    }
    if (st->ce && st->ce->stats) {
        unsigned slot = s->worker->index;
        int cls = mp_http_status_class(status);
        if (cls)
            mp_counter_inc(st->ce->stats->rq_xx[cls], slot, 1);
        if (status)
            mp_histogram_record(st->ce->stats->rq_time, slot,
                                (uint64_t)(mp_now_us() - st->start_us));
    }
}

/* Appends references to every byte of src to dst (no copy). */
static int buffer_ref_all(struct mp_buffer *dst, const struct mp_buffer *src)
{
    for (uint32_t i = 0; i < src->count; i++) {
        const struct mp_buffer_view *v = &src->views[src->head + i];
        if (mp_buffer_append_ref(dst, v->slice, v->off, v->len) < 0)
            return MP_ERR_NOMEM;
    }
    return 0;
}

static void start_retry(struct router_state *st);

static bool retriable_status(const struct router_state *st, int status, const struct mp_headers *h)
{
    if ((st->retry_on & RETRY_5XX) && status >= 500)
        return true;
    if ((st->retry_on & RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
        return true;
    if (st->retry_on & RETRY_STATUS_CODES) {
        const struct mp_retry_policy *rp = &st->route->route.retry;
        for (size_t i = 0; i < rp->n_retriable_status_codes; i++)
            if ((int)rp->retriable_status_codes[i] == status)
                return true;
    }
    if (st->retry_on & (RETRY_GRPC_UNAVAILABLE | RETRY_GRPC_CANCELLED)) {
        /* trailers-only gRPC answers carry grpc-status in the headers */
        const char *g = mp_headers_value(h, "grpc-status");
        if (g && (((st->retry_on & RETRY_GRPC_UNAVAILABLE) && strcmp(g, "14") == 0) ||
                  ((st->retry_on & RETRY_GRPC_CANCELLED) && strcmp(g, "1") == 0)))
            return true;
    }
    return false;
}

static bool retriable_reset(const struct router_state *st, enum mp_upstream_reset_reason why)
{
    switch (why) {
    case MP_UPSTREAM_CONNECT_FAIL:
    case MP_UPSTREAM_CONNECT_TIMEOUT:
        return (st->retry_on & (RETRY_CONNECT_FAILURE | RETRY_5XX | RETRY_GATEWAY_ERROR)) != 0;
    case MP_UPSTREAM_REFUSED:
        return (st->retry_on & (RETRY_REFUSED_STREAM | RETRY_RESET | RETRY_5XX)) != 0;
    case MP_UPSTREAM_RESET:
    case MP_UPSTREAM_PROTOCOL_ERROR: return (st->retry_on & (RETRY_RESET | RETRY_5XX)) != 0;
    default: return false;
    }
}

static void release_host(struct router_state *st)
{
    if (st->lbw && st->host) {
        mp_lb_worker_rq_done(st->lbw, st->host);
        if (st->n_prev_hosts < sizeof(st->prev_hosts) / sizeof(st->prev_hosts[0]))
            st->prev_hosts[st->n_prev_hosts++] = st->host;
    }
    st->host = NULL;
}

static void backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct router_state *st = t->data;
    st->backoff_armed = false;
    start_retry(st);
}

/* Decides to retry: drops the attempt in flight and waits a jittered backoff. */
static bool maybe_retry(struct router_state *st)
{
    if (!st->retry_enabled || st->retries_left == 0 || st->resp_started || st->finished)
        return false;
    struct mp_http_stream *s = S(st);
    st->retries_left--;
    st->attempt++;
    if (st->up) {
        mp_upstream_request_cancel(st->up);
        st->up = NULL;
    }
    release_host(st);
    if (st->ce && st->ce->stats)
        mp_counter_inc(st->ce->stats->rq_retry, s->worker->index, 1);
    const struct mp_retry_policy *rp = &st->route->route.retry;
    int64_t base = rp->backoff_base_ms > 0 ? rp->backoff_base_ms : 25;
    int64_t max = rp->backoff_max_ms > 0 ? rp->backoff_max_ms : base * 10;
    int64_t cap = base << (st->attempt < 10 ? st->attempt : 10);
    if (cap > max)
        cap = max;
    double delay = (double)(mp_rand_u64() % (uint64_t)(cap > 0 ? cap : 1)) / 1000.0;
    ev_timer_init(&st->backoff, backoff_cb, delay, 0.);
    st->backoff.data = st;
    ev_timer_start(s->worker->loop, &st->backoff);
    st->backoff_armed = true;
    return true;
}

/* ---- upstream callbacks --------------------------------------------------- */

/* :status as a number: three digits take the fast path (every response);
 * anything else goes through atoi as before. */
static int status_of(const char *v)
{
    if (v && v[0] >= '0' && v[0] <= '9' && v[1] >= '0' && v[1] <= '9' && v[2] >= '0' &&
        v[2] <= '9' && v[3] == '\0')
        return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    return v ? atoi(v) : 0;
}

/* Decimal text of v in buf (at least 21 bytes); returns its length. */
static size_t format_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* Bounded string copy for the per-request host text (snprintf("%s") costs
 * more than the copy). */
static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void up_headers(void *ctx, struct mp_headers *h, bool end)
{
    struct router_state *st = ctx;
    struct mp_http_stream *s = S(st);
    const struct router_config *cfg = st->f->config;
    int status = status_of(mp_headers_value(h, ":status"));
    if (st->retry_enabled && st->retries_left && retriable_status(st, status, h) && maybe_retry(st))
        return;
    st->resp_started = true;
    if (!cfg || !cfg->suppress_envoy_headers) {
        char ms[32];
        int64_t elapsed = (mp_now_us() - st->start_us) / 1000;
        size_t n = format_u64(ms, elapsed > 0 ? (uint64_t)elapsed : 0);
        mp_headers_set(h, "x-envoy-upstream-service-time", ms, n);
    }
    apply_all_header_ops(st, h, false);
    if (end) {
        st->up = NULL;
        finish(st, status);
    } else {
        /* remember the status for the stats at the end */
        st->start_us = st->start_us; /* keep */
    }
    s->status = status;
    mp_http_stream_encode_headers(s, st->f->index, h, end);
}

static void up_data(void *ctx, struct mp_buffer *b, bool end)
{
    struct router_state *st = ctx;
    struct mp_http_stream *s = S(st);
    if (end) {
        st->up = NULL;
        finish(st, s->status);
    }
    mp_http_stream_encode_data(s, st->f->index, b, end);
}

static void up_trailers(void *ctx, struct mp_headers *t)
{
    struct router_state *st = ctx;
    struct mp_http_stream *s = S(st);
    st->up = NULL;
    finish(st, s->status);
    mp_http_stream_encode_trailers(s, st->f->index, t);
}

static void up_reset(void *ctx, enum mp_upstream_reset_reason why)
{
    struct router_state *st = ctx;
    struct mp_http_stream *s = S(st);
    st->up = NULL;
    st->last_reset = why;
    if (!st->resp_started && retriable_reset(st, why) && maybe_retry(st))
        return;
    if (st->resp_started) {
        finish(st, s->status);
        mp_http_stream_reset(s, MP_RF_UPSTREAM_RESET);
        return;
    }
    uint32_t flag;
    const char *reason;
    int status = 503;
    switch (why) {
    case MP_UPSTREAM_CONNECT_FAIL:
    case MP_UPSTREAM_CONNECT_TIMEOUT:
        flag = MP_RF_UPSTREAM_CONNECT_FAIL;
        reason = "upstream connect error or disconnect/reset before headers. reset reason: "
                 "connection failure";
        break;
    case MP_UPSTREAM_OVERFLOW:
        flag = MP_RF_OVERFLOW;
        reason = "upstream connect error or disconnect/reset before headers. reset reason: "
                 "overflow";
        break;
    case MP_UPSTREAM_PROTOCOL_ERROR:
        flag = MP_RF_UPSTREAM_PROTOCOL_ERROR;
        status = 502;
        reason = "upstream connect error or disconnect/reset before headers. reset reason: "
                 "protocol error";
        break;
    default:
        flag = MP_RF_UPSTREAM_RESET;
        reason = "upstream connect error or disconnect/reset before headers. reset reason: "
                 "connection termination";
        break;
    }
    finish(st, status);
    mp_http_stream_send_local_reply(s, status, reason, flag);
}

static void up_watermark(void *ctx, bool above)
{
    struct router_state *st = ctx;
    mp_http_stream_read_disable(S(st), above);
}

static const struct mp_upstream_callbacks up_cbs = {
    .on_headers = up_headers,
    .on_data = up_data,
    .on_trailers = up_trailers,
    .on_reset = up_reset,
    .on_watermark = up_watermark,
};

static enum mp_upstream_proto pick_protocol(const struct mp_cluster *c,
                                            const struct mp_http_stream *s);

static void start_retry(struct router_state *st)
{
    struct mp_http_stream *s = S(st);
    if (st->finished || s->reset)
        return;
    const struct mp_retry_policy *rp = &st->route->route.retry;
    struct mp_lb_context lbc = {0};
    if (rp->previous_hosts) {
        lbc.avoid = st->prev_hosts;
        lbc.n_avoid = st->n_prev_hosts;
        if (rp->host_selection_retry_max_attempts > 0)
            lbc.max_attempts = (uint32_t)rp->host_selection_retry_max_attempts + 1;
    }
    st->host = st->lbw ? mp_lb_pick(st->lbw, &lbc) : NULL;
    if (!st->host) {
        finish(st, 503);
        mp_http_stream_send_local_reply(s, 503, "no healthy upstream", MP_RF_NO_HEALTHY_UPSTREAM);
        return;
    }
    mp_lb_worker_rq_start(st->lbw, st->host);
    copy_cstr(s->upstream_host, sizeof(s->upstream_host), st->host->addr_str);
    enum mp_upstream_reset_reason why;
    st->up = mp_upstream_request_new(s->worker, st->ce, st->host, pick_protocol(st->ce->cluster, s),
                                     &up_cbs, st, &why);
    if (!st->up) {
        finish(st, 503);
        mp_http_stream_send_local_reply(s, 503, "upstream overflow", MP_RF_OVERFLOW);
        return;
    }
    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_copy(&h, &st->saved_headers);
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%u", st->attempt + 1);
    if (st->route->vhost->include_request_attempt_count)
        mp_headers_set_cstr(&h, "x-envoy-attempt-count", attempt);
    bool has_body = mp_buffer_len(&st->saved_body) > 0;
    mp_upstream_send_headers(st->up, &h, st->saved_end && !has_body && !st->saved_has_trailers);
    mp_headers_clear(&h);
    if (has_body) {
        struct mp_buffer b = MP_BUFFER_INIT;
        buffer_ref_all(&b, &st->saved_body);
        mp_upstream_send_data(st->up, &b, st->saved_end && !st->saved_has_trailers);
        mp_buffer_clear(&b);
    }
    if (st->saved_has_trailers) {
        struct mp_headers t;
        mp_headers_init(&t);
        mp_headers_copy(&t, &st->saved_trailers);
        mp_upstream_send_trailers(st->up, &t);
        mp_headers_clear(&t);
    }
}

static void down_watermark(void *arg, bool above)
{
    struct router_state *st = arg;
    if (st->up)
        mp_upstream_read_disable(st->up, above);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct router_state *st = t->data;
    struct mp_http_stream *s = S(st);
    st->timer_armed = false;
    if (st->backoff_armed) {
        ev_timer_stop(s->worker->loop, &st->backoff);
        st->backoff_armed = false;
    }
    if (st->ce && st->ce->stats)
        mp_counter_inc(st->ce->stats->rq_timeout, s->worker->index, 1);
    if (st->up) {
        mp_upstream_request_cancel(st->up);
        st->up = NULL;
    }
    if (st->resp_started) {
        finish(st, s->status);
        mp_http_stream_reset(s, MP_RF_UPSTREAM_TIMEOUT);
        return;
    }
    finish(st, 504);
    mp_http_stream_send_local_reply(s, 504, "upstream request timeout", MP_RF_UPSTREAM_TIMEOUT);
}

static void arm_timer(struct router_state *st)
{
    if (st->timer_armed || st->finished || st->timeout_ms <= 0)
        return;
    struct mp_http_stream *s = S(st);
    ev_timer_init(&st->timer, timeout_cb, (double)st->timeout_ms / 1000.0, 0.);
    st->timer.data = st;
    ev_timer_start(s->worker->loop, &st->timer);
    st->timer_armed = true;
}

/* ---- request path ----------------------------------------------------------- */

static const struct mp_route_config *find_route_config(struct mp_http_stream *s)
{
    if (s->hcm->route_config)
        return s->hcm->route_config;
    if (s->hcm->rds_name && s->snap)
        return mp_snapshot_find_route_config(s->snap, s->hcm->rds_name);
    return NULL;
}

static int local(struct router_state *st, int status, const char *body, uint32_t flag)
{
    struct mp_http_stream *s = S(st);
    mp_http_stream_send_local_reply(s, status, body, flag);
    return MP_FILTER_LOCAL_REPLY;
}

static enum mp_upstream_proto pick_protocol(const struct mp_cluster *c,
                                            const struct mp_http_stream *s)
{
    switch (c->upstream_protocol) {
    case MP_UPSTREAM_HTTP2: return MP_UPSTREAM_PROTO_HTTP2;
    case MP_UPSTREAM_USE_DOWNSTREAM:
        return s->protocol == 2 ? MP_UPSTREAM_PROTO_HTTP2 : MP_UPSTREAM_PROTO_HTTP1;
    default: return MP_UPSTREAM_PROTO_HTTP1;
    }
}

static int send_redirect(struct router_state *st, const struct mp_route_request *rq)
{
    struct mp_http_stream *s = S(st);
    char loc[4096];
    size_t n = 0;
    if (mp_route_redirect_location(st->route, rq, loc, sizeof(loc), &n) < 0)
        return local(st, 500, "redirect location too long", 0);
    if (s->hcm->stats)
        mp_counter_inc(s->hcm->stats->rq_redirect, s->worker->index, 1);
    struct mp_headers h;
    mp_headers_init(&h);
    char code[8];
    snprintf(code, sizeof(code), "%u",
             st->route->redirect.response_code ? st->route->redirect.response_code : 301);
    mp_headers_add_cstr(&h, ":status", code);
    mp_headers_add(&h, "location", 8, loc, n);
    mp_headers_add_cstr(&h, "content-length", "0");
    s->local_reply = true;
    apply_all_header_ops(st, &h, false);
    mp_http_stream_encode_headers(s, st->f->index, &h, true);
    mp_headers_clear(&h);
    return MP_FILTER_LOCAL_REPLY;
}

static int send_direct(struct router_state *st)
{
    struct mp_http_stream *s = S(st);
    const struct mp_direct_response *d = &st->route->direct;
    if (s->hcm->stats)
        mp_counter_inc(s->hcm->stats->rq_direct_response, s->worker->index, 1);
    struct mp_headers h;
    mp_headers_init(&h);
    char num[24];
    snprintf(num, sizeof(num), "%u", d->status);
    mp_headers_add_cstr(&h, ":status", num);
    if (d->body && d->body_len)
        mp_headers_add_cstr(&h, "content-type", "text/plain");
    snprintf(num, sizeof(num), "%zu", d->body ? d->body_len : 0);
    mp_headers_add_cstr(&h, "content-length", num);
    apply_all_header_ops(st, &h, false);
    s->local_reply = true;
    bool has_body = d->body && d->body_len;
    mp_http_stream_encode_headers(s, st->f->index, &h, !has_body);
    mp_headers_clear(&h);
    if (has_body) {
        struct mp_buffer b = MP_BUFFER_INIT;
        if (mp_buffer_append_copy(&b, d->body, d->body_len) == 0)
            mp_http_stream_encode_data(s, st->f->index, &b, true);
        mp_buffer_clear(&b);
    }
    return MP_FILTER_LOCAL_REPLY;
}

static int router_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *h,
                                     bool end_stream)
{
    struct router_state *st = f->state;
    struct mp_http_stream *s = f->stream;
    st->f = f;
    st->initialized = true;
    st->start_us = mp_now_us();
    s->watermark_cb = down_watermark;
    s->watermark_arg = st;
    unsigned slot = s->worker->index;

    st->rc = find_route_config(s);
    if (!st->rc) {
        if (s->hcm->stats)
            mp_counter_inc(s->hcm->stats->no_route, slot, 1);
        return local(st, 404, NULL, MP_RF_NO_ROUTE);
    }
    /* the route matcher reads its own view of the headers */
    struct mp_header_view stackv[32];
    struct mp_header_view *views = stackv;
    if (h->n > MP_ARRAY_LEN(stackv)) {
        views = malloc(h->n * sizeof(*views));
        if (!views)
            return local(st, 500, "out of memory", 0);
    }
    for (size_t i = 0; i < h->n; i++) {
        views[i].name = h->v[i].name;
        views[i].name_len = h->v[i].name_len;
        views[i].value = h->v[i].value;
        views[i].value_len = h->v[i].value_len;
    }
    /* the pseudo-headers in one pass (they come first; the codecs order them) */
    const struct mp_header *auth_h = NULL, *path_h = NULL, *method_h = NULL, *scheme_h = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const struct mp_header *e = &h->v[i];
        if (e->name[0] != ':')
            continue;
        if (!auth_h && e->name_len == 10 && memcmp(e->name, ":authority", 10) == 0)
            auth_h = e;
        else if (!path_h && e->name_len == 5 && memcmp(e->name, ":path", 5) == 0)
            path_h = e;
        else if (!method_h && e->name_len == 7 && memcmp(e->name, ":method", 7) == 0)
            method_h = e;
        else if (!scheme_h && e->name_len == 7 && memcmp(e->name, ":scheme", 7) == 0)
            scheme_h = e;
    }
    const char *path = path_h ? path_h->value : NULL;
    struct mp_route_request rq = {
        .authority = auth_h ? auth_h->value : "",
        .authority_len = auth_h ? auth_h->value_len : 0,
        .path = path ? path : "",
        .path_len = path_h ? path_h->value_len : 0,
        .method = method_h ? method_h->value : "",
        .method_len = method_h ? method_h->value_len : 0,
        .scheme = scheme_h ? scheme_h->value : NULL,
        .scheme_len = scheme_h ? scheme_h->value_len : 0,
        .headers = views,
        .n_headers = h->n,
        .random = mp_rand_u64(),
    };
    int result = MP_FILTER_CONTINUE;
    st->route = mp_route_config_match(st->rc, &rq);
    if (!st->route) {
        if (s->hcm->stats)
            mp_counter_inc(s->hcm->stats->no_route, slot, 1);
        result = local(st, 404, NULL, MP_RF_NO_ROUTE);
        goto out;
    }
    s->route_name = st->route->name;
    if (st->route->action_kind == MP_ROUTE_ACTION_DIRECT_RESPONSE) {
        result = send_direct(st);
        goto out;
    }
    if (st->route->action_kind == MP_ROUTE_ACTION_REDIRECT) {
        result = send_redirect(st, &rq);
        goto out;
    }
    if (st->route->action_kind != MP_ROUTE_ACTION_ROUTE) {
        result = local(st, 404, NULL, MP_RF_NO_ROUTE);
        goto out;
    }
    const struct mp_route_action *ra = &st->route->route;
    const char *cname = NULL;
    size_t clen = 0;
    if (ra->cluster_kind == MP_CLUSTER_WEIGHTED)
        st->wc = mp_route_pick_weighted(st->route, rq.random);
    if (mp_route_pick_cluster(st->route, &rq, rq.random, &cname, &clen) < 0) {
        result = local(st, ra->cluster_not_found_code ? ra->cluster_not_found_code : 503, NULL,
                       MP_RF_NO_CLUSTER);
        goto out;
    }
    st->ce = mp_snapshot_find_cluster_entry(s->snap, cname, clen);
    if (!st->ce) {
        if (s->hcm->stats)
            mp_counter_inc(s->hcm->stats->no_cluster, slot, 1);
        result = local(st, ra->cluster_not_found_code ? ra->cluster_not_found_code : 503, NULL,
                       MP_RF_NO_CLUSTER);
        goto out;
    }
    s->cluster_name = st->ce->cluster->name;
    if (st->ce->tls_error) {
        result = local(st, 503,
                       "upstream connect error or disconnect/reset before headers. reset "
                       "reason: TLS configuration error",
                       MP_RF_UPSTREAM_CONNECT_FAIL);
        goto out;
    }
    if (st->ce->stats)
        mp_counter_inc(st->ce->stats->rq_total, slot, 1);
    if (st->ce->cluster->type == MP_CLUSTER_ORIGINAL_DST) {
        /* the host is where the client meant to go: a header, or the connection's
         * original destination (iptables REDIRECT, read by original_dst) */
        const struct mp_cluster *cl = st->ce->cluster;
        const char *target = NULL;
        if (cl->original_dst_use_http_header)
            target = mp_headers_value(h, cl->original_dst_http_header_name
                                             ? cl->original_dst_http_header_name
                                             : "x-envoy-original-dst-host");
        else
            target = s->downstream_local;
        struct mp_host *oh = &st->orig_host;
        if (!target || mp_parse_ip_port(target, &oh->addr, &oh->addr_len) < 0) {
            finish(st, 503);
            result = local(st, 503, "no healthy upstream", MP_RF_NO_HEALTHY_UPSTREAM);
            goto out;
        }
        if (cl->original_dst_port_override) {
            if (oh->addr.ss_family == AF_INET)
                ((struct sockaddr_in *)&oh->addr)->sin_port =
                    htons((uint16_t)cl->original_dst_port_override);
            else
                ((struct sockaddr_in6 *)&oh->addr)->sin6_port =
                    htons((uint16_t)cl->original_dst_port_override);
        }
        mp_host_addr_format(&oh->addr, st->orig_addr, sizeof(st->orig_addr));
        oh->addr_str = st->orig_addr;
        oh->hostname = (char *)"";
        oh->weight = 1;
        st->host = oh;
        st->lbw = NULL;
    } else {
        st->lbw = st->ce->lb ? mp_worker_lb(s->worker, st->ce->lb) : NULL;
        struct mp_lb_context lbc = {0};
        st->host = st->lbw ? mp_lb_pick(st->lbw, &lbc) : NULL;
    }
    if (!st->host) {
        if (st->ce->stats)
            mp_counter_inc(st->ce->stats->cx_none_healthy, slot, 1);
        st->lbw = NULL;
        finish(st, 503);
        result = local(st, 503, "no healthy upstream", MP_RF_NO_HEALTHY_UPSTREAM);
        goto out;
    }
    if (st->lbw) {
        mp_lb_worker_ref(st->lbw);
        st->lbw_ref = true;
        mp_lb_worker_rq_start(st->lbw, st->host);
    }
    copy_cstr(s->upstream_host, sizeof(s->upstream_host), st->host->addr_str);

    /* the upstream's copy of the request headers */
    struct mp_headers uh;
    mp_headers_init(&uh);
    if (mp_headers_copy(&uh, h) < 0) {
        result = local(st, 500, "out of memory", 0);
        goto out;
    }
    char rewritten[8192];
    size_t rlen = 0;
    if (path && mp_route_rewrite_path(st->route, path, strlen(path), rewritten, sizeof(rewritten),
                                      &rlen) == 0) {
        mp_headers_set_cstr(&uh, "x-envoy-original-path", path);
        mp_headers_set(&uh, ":path", rewritten, rlen);
    }
    const char *host_rw = (st->wc && st->wc->host_rewrite_literal) ? st->wc->host_rewrite_literal
                                                                   : ra->host_rewrite_literal;
    if (host_rw)
        mp_headers_set_cstr(&uh, ":authority", host_rw);
    mp_headers_set_cstr(&uh, ":scheme", "http");
    apply_all_header_ops(st, &uh, true);
    mp_tracing_stream_inject(s, &uh); /* before saved_headers: retries carry it too */
    mp_headers_pseudo_first(&uh);
    st->timeout_ms = ra->timeout_ms;
    if (ra->has_retry_policy && ra->retry.num_retries > 0 && st->lbw) {
        st->retry_on = parse_retry_on(ra->retry.retry_on);
        if (st->retry_on && mp_headers_copy(&st->saved_headers, &uh) == 0) {
            st->retry_enabled = true;
            st->retries_left = ra->retry.num_retries;
            st->saved_end = end_stream;
        }
    }

    enum mp_upstream_reset_reason why;
    st->up = mp_upstream_request_new(s->worker, st->ce, st->host, pick_protocol(st->ce->cluster, s),
                                     &up_cbs, st, &why);
    if (!st->up) {
        mp_headers_clear(&uh);
        finish(st, 503);
        result = local(st, 503,
                       why == MP_UPSTREAM_OVERFLOW
                           ? "upstream connect error or disconnect/reset before headers. reset "
                             "reason: overflow"
                           : "out of memory",
                       why == MP_UPSTREAM_OVERFLOW ? MP_RF_OVERFLOW : 0);
        goto out;
    }
    mp_upstream_send_headers(st->up, &uh, end_stream);
    mp_headers_clear(&uh);
    if (end_stream)
        arm_timer(st);
out:
    if (views != stackv)
        free(views);
    return result;
}

static int router_on_request_body(struct mp_http_filter_ctx *f, struct mp_buffer *data,
                                  bool end_stream)
{
    struct router_state *st = f->state;
    if (st->retry_enabled) {
        if (end_stream)
            st->saved_end = true;
        if (mp_buffer_len(&st->saved_body) + mp_buffer_len(data) > RETRY_BUFFER_LIMIT && st->up) {
            /* too big to replay: this attempt is the only one */
            st->retry_enabled = false;
            mp_buffer_clear(&st->saved_body);
        } else if (buffer_ref_all(&st->saved_body, data) < 0 && st->up) {
            st->retry_enabled = false;
            mp_buffer_clear(&st->saved_body);
        }
    }
    if (st->up)
        mp_upstream_send_data(st->up, data, end_stream);
    else
        mp_buffer_clear(data);
    if (end_stream)
        arm_timer(st);
    return MP_FILTER_CONTINUE;
}

static int router_on_request_trailers(struct mp_http_filter_ctx *f, struct mp_headers *t)
{
    struct router_state *st = f->state;
    if (st->retry_enabled) {
        st->saved_end = true;
        st->saved_has_trailers = mp_headers_copy(&st->saved_trailers, t) == 0;
    }
    if (st->up)
        mp_upstream_send_trailers(st->up, t);
    arm_timer(st);
    return MP_FILTER_CONTINUE;
}

static void router_destroy(struct mp_http_filter_ctx *f)
{
    struct router_state *st = f->state;
    if (!st->initialized)
        return;
    if (st->up) {
        mp_upstream_request_cancel(st->up);
        st->up = NULL;
    }
    if (st->backoff_armed)
        ev_timer_stop(f->stream->worker->loop, &st->backoff);
    st->backoff_armed = false;
    finish(st, 0);
    if (st->lbw_ref)
        mp_lb_worker_unref(st->lbw);
    st->lbw = NULL;
    mp_headers_clear(&st->saved_headers);
    mp_headers_clear(&st->saved_trailers);
    mp_buffer_clear(&st->saved_body);
}

const struct mp_http_filter_ops mp_http_filter_router = {
    .name = "envoy.filters.http.router",
    .config_type = "envoy.extensions.filters.http.router.v3.Router",
    .parse = router_parse,
    .config_free = router_config_free,
    .state_size = sizeof(struct router_state),
    .on_request_headers = router_on_request_headers,
    .on_request_body = router_on_request_body,
    .on_request_trailers = router_on_request_trailers,
    .destroy = router_destroy,
};
