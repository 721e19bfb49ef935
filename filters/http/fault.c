/*
 * fault.c: envoy.filters.http.fault on a stream: per-route override,
 * delay timer on the worker's loop, abort replies, active-fault accounting.
 * The decisions themselves live in fault_config.c.
 */
#include "fault.h"

#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/http/fault_config.h"
#include "filters/http/request_view.h"
#include "filters/http/route_config_cache.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/rand.h"
#include "proxy/route_table.h"
#include "proxy/router_match.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

#define FAULT_FILTER_NAME "envoy.filters.http.fault"
#define FAULT_TYPE        "envoy.extensions.filters.http.fault.v3.HTTPFault"
#define ABORT_BODY        "fault filter abort"

struct fault_stats {
    struct mp_counter *delays, *aborts, *overflow;
    struct mp_gauge *active;
};

struct fault_filter_config {
    struct mp_fault_config *cfg;
    /* faults in progress on all workers (max_active_faults); an atomic, not a lock */
    _Atomic uint64_t active;
    _Atomic(struct fault_stats *) stats;  /* resolved on first use */
    struct mp_route_config_cache *routes; /* parsed per-route HTTPFaults */
};

/* Per-route configs this many distinct ones at most are kept; more are decoded per request. */
#define ROUTE_CACHE_SLOTS 256

struct fault_state {
    struct mp_http_filter_ctx *f;
    struct mp_fault_config *route_cfg; /* a per-route HTTPFault decoded for this request only
                                          (when the cache is full) */
    const struct mp_fault_config *cfg; /* the config in force */
    const struct fault_stats *stats;
    ev_timer timer;
    bool timer_armed;
    bool active; /* counted in active faults */
};

static void fault_config_free(void *p)
{
    struct fault_filter_config *c = p;
    if (!c)
        return;
    mp_fault_config_free(c->cfg);
    mp_route_config_cache_free(c->routes);
    free(atomic_load(&c->stats));
    free(c);
}

static int route_parse(const uint8_t *data, size_t len, void **out)
{
    struct mp_fault_config *c = NULL;
    int rc = mp_fault_config_from_bytes(data, len, &c, NULL);
    if (rc < 0)
        return rc;
    *out = c;
    return 0;
}

static void route_free(void *cfg)
{
    mp_fault_config_free(cfg);
}

static int fault_parse(const uint8_t *data, size_t len, void **out, char **err)
{
    struct fault_filter_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    int rc = mp_fault_config_from_bytes(data, len, &c->cfg, err);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->routes = mp_route_config_cache_new(ROUTE_CACHE_SLOTS, route_parse, route_free);
    if (!c->routes) {
        fault_config_free(c);
        return MP_ERR_NOMEM;
    }
    *out = c;
    return 0;
}

static const struct fault_stats *config_stats(const struct fault_filter_config *cc,
                                              const struct mp_http_stream *s)
{
    struct fault_filter_config *c = (struct fault_filter_config *)cc; /* the cache only */
    struct fault_stats *st = atomic_load_explicit(&c->stats, memory_order_acquire);
    if (st || !s->worker || !s->worker->stats)
        return st;
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    struct mp_stats *reg = s->worker->stats;
    const char *hp = s->hcm->stat_prefix ? s->hcm->stat_prefix : "";
    st->delays = mp_stats_counterf(reg, "http.%s.fault.delays_injected", hp);
    st->aborts = mp_stats_counterf(reg, "http.%s.fault.aborts_injected", hp);
    st->overflow = mp_stats_counterf(reg, "http.%s.fault.faults_overflow", hp);
    st->active = mp_stats_gaugef(reg, "http.%s.fault.active_faults", hp);
    struct fault_stats *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->stats, &expected, st)) {
        free(st);
        return expected;
    }
    return st;
}

static unsigned slot_of(const struct mp_http_stream *s)
{
    return s->worker ? s->worker->index : 0;
}

/* Envoy's tryIncActiveFaults: one count per stream, refused beyond max_active_faults. */
static bool try_inc_active(struct fault_state *st)
{
    if (st->active)
        return true;
    const struct fault_filter_config *fc = st->f->config;
    struct fault_filter_config *c = (struct fault_filter_config *)fc;
    unsigned slot = slot_of(st->f->stream);
    if (st->cfg->has_max_active) {
        uint64_t cur = atomic_load_explicit(&c->active, memory_order_relaxed);
        do {
            if (cur >= st->cfg->max_active_faults) {
                if (st->stats)
                    mp_counter_inc(st->stats->overflow, slot, 1);
                return false;
            }
        } while (!atomic_compare_exchange_weak_explicit(
            &c->active, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
    } else {
        atomic_fetch_add_explicit(&c->active, 1, memory_order_relaxed);
    }
    st->active = true;
    if (st->stats)
        mp_gauge_add(st->stats->active, slot, 1);
    return true;
}

/* Envoy's Grpc::Utility::httpToGrpcStatus. */
static uint32_t http_to_grpc(uint32_t http)
{
    switch (http) {
    case 400: return 13; /* INTERNAL */
    case 401: return 16; /* UNAUTHENTICATED */
    case 403: return 7;  /* PERMISSION_DENIED */
    case 404: return 12; /* UNIMPLEMENTED */
    case 429:
    case 502:
    case 503:
    case 504: return 14; /* UNAVAILABLE */
    default: return 2;   /* UNKNOWN */
    }
}

static bool is_grpc_request(const struct mp_http_stream *s)
{
    const char *ct = mp_headers_value(&s->req, "content-type");
    return ct && strncmp(ct, "application/grpc", 16) == 0;
}

static int do_abort(struct fault_state *st, const struct mp_fault_abort *a)
{
    struct mp_http_filter_ctx *f = st->f;
    struct mp_http_stream *s = f->stream;
    if (st->stats)
        mp_counter_inc(st->stats->aborts, slot_of(s), 1);
    if (!is_grpc_request(s) || s->resp_headers_sent || s->reset) {
        /* only a gRPC status configured: plain HTTP clients get 503 */
        int status = a->http_status ? (int)a->http_status : 503;
        mp_http_stream_send_local_reply(s, status, ABORT_BODY, MP_RF_FAULT_INJECTED);
        return MP_FILTER_LOCAL_REPLY;
    }
    /* gRPC: a trailers-only response carrying the status */
    uint32_t gs = a->has_grpc ? a->grpc_status : http_to_grpc(a->http_status);
    char num[16];
    snprintf(num, sizeof(num), "%u", gs);
    struct mp_headers h;
    mp_headers_init(&h);
    if (mp_headers_add_cstr(&h, ":status", "200") < 0 ||
        mp_headers_add_cstr(&h, "content-type", "application/grpc") < 0 ||
        mp_headers_add_cstr(&h, "grpc-status", num) < 0 ||
        mp_headers_add_cstr(&h, "grpc-message", ABORT_BODY) < 0) {
        mp_headers_clear(&h);
        mp_http_stream_send_local_reply(s, 500, "out of memory", MP_RF_FAULT_INJECTED);
        return MP_FILTER_LOCAL_REPLY;
    }
    s->response_flags |= MP_RF_FAULT_INJECTED;
    s->local_reply = true;
    mp_http_stream_encode_headers(s, f->index, &h, true);
    mp_headers_clear(&h);
    return MP_FILTER_LOCAL_REPLY;
}

static void delay_done(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct fault_state *st = t->data;
    ev_timer_stop(loop, t);
    st->timer_armed = false;
    struct mp_http_filter_ctx *f = st->f;
    struct mp_http_stream *s = f->stream;
    if (s->reset || s->local_reply)
        return;
    /* the abort decision comes after the delay, as in Envoy */
    struct mp_request_view v;
    struct mp_fault_abort a;
    if (mp_request_view_init(&v, &s->req) == 0) {
        bool hit = mp_fault_decide_abort(st->cfg, &v.rq, mp_rand_u64(), &a);
        mp_request_view_clear(&v);
        if (hit && try_inc_active(st)) {
            do_abort(st, &a);
            return;
        }
    }
    mp_http_filter_continue_request(f);
}

/* A per-route HTTPFault replaces the filter's config; *off when disabled there. */
static void route_override(struct fault_state *st, const struct mp_request_view *v, bool *off)
{
    struct mp_http_filter_ctx *f = st->f;
    struct mp_http_stream *s = f->stream;
    const char *name = s->hcm->filters[f->index].name;
    const struct mp_typed_config *tc = mp_request_view_own_config(s, v, name, FAULT_FILTER_NAME);
    if (!tc)
        return;
    if (tc->disabled) {
        *off = true;
        return;
    }
    if (!mp_typed_config_type_is(tc, FAULT_TYPE))
        return;
    /* A per-route config that does not translate injects nothing (it was accepted with
     * the route configuration, which does not validate filter configs). */
    const struct fault_filter_config *fc = f->config;
    void *cached = NULL;
    if (mp_route_config_cache_get(fc->routes, tc, &cached) == 0) {
        if (cached)
            st->cfg = cached;
        else
            *off = true;
        return;
    }
    /* the cache is full: decode for this request */
    if (mp_fault_config_from_bytes(tc->value, tc->value_len, &st->route_cfg, NULL) < 0) {
        *off = true;
        return;
    }
    st->cfg = st->route_cfg;
}

static bool cluster_matches(const struct mp_http_stream *s, const struct mp_request_view *v,
                            const char *cluster)
{
    const struct mp_route *r = mp_request_view_route(s, v, NULL);
    if (!r || r->action_kind != MP_ROUTE_ACTION_ROUTE)
        return false;
    const char *name = NULL;
    size_t len = 0;
    if (mp_route_pick_cluster(r, &v->rq, mp_rand_u64(), &name, &len) < 0)
        return false;
    return strlen(cluster) == len && memcmp(cluster, name, len) == 0;
}

static int fault_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                    bool end_stream)
{
    (void)end_stream;
    struct fault_state *st = f->state;
    struct mp_http_stream *s = f->stream;
    const struct fault_filter_config *fc = f->config;
    st->f = f;
    st->cfg = fc->cfg;
    st->stats = config_stats(fc, s);

    struct mp_request_view v;
    if (mp_request_view_init(&v, headers) < 0)
        return MP_FILTER_CONTINUE; /* no memory to look: inject nothing */
    int result = MP_FILTER_CONTINUE;
    bool off = false;
    route_override(st, &v, &off);
    if (off || !mp_fault_request_qualifies(st->cfg, &v.rq))
        goto done;
    if (st->cfg->upstream_cluster && !cluster_matches(s, &v, st->cfg->upstream_cluster))
        goto done;

    uint64_t ms;
    if (mp_fault_decide_delay(st->cfg, &v.rq, mp_rand_u64(), &ms) && try_inc_active(st)) {
        if (st->stats)
            mp_counter_inc(st->stats->delays, slot_of(s), 1);
        ev_timer_init(&st->timer, delay_done, (double)ms / 1000.0, 0.);
        st->timer.data = st;
        ev_timer_start(s->worker->loop, &st->timer);
        st->timer_armed = true;
        result = MP_FILTER_STOP;
        goto done;
    }
    struct mp_fault_abort a;
    if (mp_fault_decide_abort(st->cfg, &v.rq, mp_rand_u64(), &a) && try_inc_active(st))
        result = do_abort(st, &a);
done:
    mp_request_view_clear(&v);
    return result;
}

static void fault_destroy(struct mp_http_filter_ctx *f)
{
    struct fault_state *st = f->state;
    if (!st || !st->f)
        return;
    struct mp_http_stream *s = f->stream;
    if (st->timer_armed) {
        ev_timer_stop(s->worker->loop, &st->timer);
        st->timer_armed = false;
    }
    if (st->active) {
        struct fault_filter_config *c = (struct fault_filter_config *)f->config;
        atomic_fetch_sub_explicit(&c->active, 1, memory_order_relaxed);
        if (st->stats)
            mp_gauge_sub(st->stats->active, slot_of(s), 1);
        st->active = false;
    }
    mp_fault_config_free(st->route_cfg);
    st->route_cfg = NULL;
}

const struct mp_http_filter_ops mp_http_filter_fault = {
    .name = FAULT_FILTER_NAME,
    .config_type = FAULT_TYPE,
    .parse = fault_parse,
    .config_free = fault_config_free,
    .state_size = sizeof(struct fault_state),
    .on_request_headers = fault_on_request_headers,
    .destroy = fault_destroy,
};
