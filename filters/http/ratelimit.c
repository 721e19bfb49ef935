/*
 * ratelimit.c: envoy.filters.http.ratelimit (see ratelimit.h).
 *
 * On request headers: the route's descriptors (ratelimit_request.h) go to
 * the rate limit service over the grpc thread (grpc_call.h) and the filter
 * stops; the answer continues the request, or replies 429. A stream reset
 * meanwhile cancels the call in destroy.
 */
#include "ratelimit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/status.h>

#include "envoy/extensions/filters/http/ratelimit/v3/rate_limit.pb-c.h"
#include "filter_reply.h"
#include "filter_route.h"
#include "grpc_call.h"
#include "proxy/http_stream.h"
#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "proxy/server.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "ratelimit_request.h"
#include "xds/xds_translate_listener.h"

#define SHOULD_RATE_LIMIT_METHOD "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
#define DEFAULT_TIMEOUT_MS       20

typedef Envoy__Extensions__Filters__Http__Ratelimit__V3__RateLimit RateLimitPb;

/* cluster.<name>.ratelimit.* of one routed cluster */
struct rl_stats {
    struct rl_stats *next;
    const struct mp_stats *reg;
    struct mp_counter *ok, *over_limit, *error, *failure_mode_allowed;
    char cluster[];
};

struct rl_config {
    char *domain;
    uint32_t stage;
    int64_t timeout_ms;
    bool failure_mode_deny;
    bool rate_limited_as_resource_exhausted;
    bool disable_x_envoy_ratelimited_header;
    int rate_limited_status;
    int status_on_error;
    char *cluster; /* envoy_grpc.cluster_name */
    char *target;  /* google_grpc.target_uri */
    struct mp_headers response_headers_to_add;
    /* grows lock-free (push with CAS), freed with the config */
    _Atomic(struct rl_stats *) stats;
};

struct rl_state {
    struct mp_http_filter_ctx *f;
    struct mp_grpc_call *call;
    bool waiting;
    struct rl_stats *stats;
    struct mp_headers resp_add; /* response_headers_to_add of an OK answer */
};

/* ---- config --------------------------------------------------------------- */

static void config_free(void *p)
{
    struct rl_config *c = p;
    if (!c)
        return;
    free(c->domain);
    free(c->cluster);
    free(c->target);
    mp_headers_clear(&c->response_headers_to_add);
    struct rl_stats *st = atomic_load(&c->stats);
    while (st) {
        struct rl_stats *next = st->next;
        free(st);
        st = next;
    }
    free(c);
}

static int http_status_of(const Envoy__Type__V3__HttpStatus *s, int def, int min, const char *field,
                          char **err)
{
    if (!s || !s->code)
        return def;
    if ((int)s->code < min || s->code > 599) {
        mp_set_err(err, "%s.code: %d is out of range", field, (int)s->code);
        return -1;
    }
    return (int)s->code;
}

static int parse(const uint8_t *data, size_t len, void **out, char **err)
{
    if (!data && len == 0)
        return mp_set_err(err, "typed_config: RateLimit config is required");
    RateLimitPb *pb =
        envoy__extensions__filters__http__ratelimit__v3__rate_limit__unpack(NULL, len, data);
    if (!pb)
        return mp_set_err(err, "malformed RateLimit (protobuf decoding failed)");
    int rc = MP_ERR_NOMEM;
    struct rl_config *c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    mp_headers_init(&c->response_headers_to_add);
    if (!pb->domain || !pb->domain[0]) {
        rc = mp_set_err(err, "domain: must not be empty");
        goto out;
    }
    if (pb->stage > 10) {
        rc = mp_set_err(err, "stage: must be at most 10");
        goto out;
    }
    if (pb->request_type && pb->request_type[0] && strcmp(pb->request_type, "both") != 0 &&
        strcmp(pb->request_type, "external") != 0 && strcmp(pb->request_type, "internal") != 0) {
        rc = mp_set_err(err, "request_type: must be internal, external or both");
        goto out;
    }
    if (pb->enable_x_ratelimit_headers) {
        rc = mp_set_err(err, "enable_x_ratelimit_headers: not supported");
        goto out;
    }
    c->stage = pb->stage;
    c->failure_mode_deny = pb->failure_mode_deny;
    c->rate_limited_as_resource_exhausted = pb->rate_limited_as_resource_exhausted;
    c->disable_x_envoy_ratelimited_header = pb->disable_x_envoy_ratelimited_header;
    c->rate_limited_status =
        http_status_of(pb->rate_limited_status, 429, 400, "rate_limited_status", err);
    c->status_on_error = http_status_of(pb->status_on_error, 500, 100, "status_on_error", err);
    if (c->rate_limited_status < 0 || c->status_on_error < 0) {
        rc = MP_ERR_INVAL;
        goto out;
    }
    c->timeout_ms = pb->timeout ? pb->timeout->seconds * 1000 + pb->timeout->nanos / 1000000
                                : DEFAULT_TIMEOUT_MS;
    const Envoy__Config__Core__V3__GrpcService *g =
        pb->rate_limit_service ? pb->rate_limit_service->grpc_service : NULL;
    if (!g) {
        rc = mp_set_err(err, "rate_limit_service.grpc_service: is required");
        goto out;
    }
    if (g->n_initial_metadata) {
        rc = mp_set_err(err, "rate_limit_service.grpc_service.initial_metadata: not supported");
        goto out;
    }
    if (g->target_specifier_case ==
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC) {
        if (!g->envoy_grpc->cluster_name || !g->envoy_grpc->cluster_name[0]) {
            rc = mp_set_err(err, "rate_limit_service.grpc_service.envoy_grpc.cluster_name: must "
                                 "not be empty");
            goto out;
        }
        c->cluster = strdup(g->envoy_grpc->cluster_name);
        if (!c->cluster)
            goto out;
    } else if (g->target_specifier_case ==
               ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC) {
        if (!g->google_grpc->target_uri || !g->google_grpc->target_uri[0]) {
            rc = mp_set_err(err, "rate_limit_service.grpc_service.google_grpc.target_uri: must "
                                 "not be empty");
            goto out;
        }
        c->target = strdup(g->google_grpc->target_uri);
        if (!c->target)
            goto out;
    } else {
        rc = mp_set_err(err, "rate_limit_service.grpc_service: envoy_grpc or google_grpc is "
                             "required");
        goto out;
    }
    for (size_t i = 0; i < pb->n_response_headers_to_add; i++) {
        const Envoy__Config__Core__V3__HeaderValueOption *o = pb->response_headers_to_add[i];
        if (!o->header || !o->header->key || !o->header->key[0]) {
            rc = mp_set_err(err, "response_headers_to_add[%zu].header.key: must not be empty", i);
            goto out;
        }
        if (mp_headers_add_cstr(&c->response_headers_to_add, o->header->key,
                                o->header->value ? o->header->value : ""))
            goto out;
    }
    c->domain = strdup(pb->domain);
    if (!c->domain)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (rc == MP_ERR_NOMEM && err && !*err)
        mp_set_err(err, "out of memory");
    config_free(c);
    envoy__extensions__filters__http__ratelimit__v3__rate_limit__free_unpacked(pb, NULL);
    return rc;
}

/* ---- stats ------------------------------------------------------------- */

static struct rl_stats *stats_for(struct rl_config *c, struct mp_stats *reg, const char *cluster)
{
    struct rl_stats *head = atomic_load_explicit(&c->stats, memory_order_acquire);
    for (struct rl_stats *st = head; st; st = st->next)
        if (st->reg == reg && strcmp(st->cluster, cluster) == 0)
            return st;
    /* a cluster this filter has not seen: register (a short registry mutex,
     * once per cluster); a racing worker adds a twin with the same handles */
    size_t n = strlen(cluster) + 1;
    struct rl_stats *st = calloc(1, sizeof(*st) + n);
    if (!st)
        return NULL;
    memcpy(st->cluster, cluster, n);
    st->reg = reg;
    st->ok = mp_stats_counterf(reg, "cluster.%s.ratelimit.ok", cluster);
    st->over_limit = mp_stats_counterf(reg, "cluster.%s.ratelimit.over_limit", cluster);
    st->error = mp_stats_counterf(reg, "cluster.%s.ratelimit.error", cluster);
    st->failure_mode_allowed =
        mp_stats_counterf(reg, "cluster.%s.ratelimit.failure_mode_allowed", cluster);
    st->next = head;
    while (!atomic_compare_exchange_weak(&c->stats, &st->next, st)) {
    }
    return st;
}

enum stat_kind { ST_OK, ST_OVER_LIMIT, ST_ERROR, ST_FAILURE_MODE_ALLOWED };

static void count(struct rl_state *r, enum stat_kind which)
{
    struct mp_http_stream *s = r->f->stream;
    if (!r->stats || !s->worker)
        return;
    struct mp_counter *c = which == ST_OK           ? r->stats->ok
                           : which == ST_OVER_LIMIT ? r->stats->over_limit
                           : which == ST_ERROR      ? r->stats->error
                                                    : r->stats->failure_mode_allowed;
    if (c)
        mp_counter_inc(c, s->worker->index, 1);
}

/* ---- outcomes ------------------------------------------------------------ */

static void resume(struct rl_state *r)
{
    if (!r->waiting)
        return;
    r->waiting = false;
    mp_http_filter_continue_request(r->f);
}

static void on_error(struct rl_state *r)
{
    const struct rl_config *c = r->f->config;
    count(r, ST_ERROR);
    if (c->failure_mode_deny) {
        r->waiting = false;
        mp_filter_send_reply(r->f, c->status_on_error, NULL, NULL, 0, 0);
        return;
    }
    count(r, ST_FAILURE_MODE_ALLOWED);
    resume(r);
}

static void over_limit(struct rl_state *r, const struct mp_headers *from_service)
{
    const struct rl_config *c = r->f->config;
    count(r, ST_OVER_LIMIT);
    r->waiting = false;
    struct mp_headers h;
    mp_headers_init(&h);
    int rc = 0;
    if (!c->disable_x_envoy_ratelimited_header)
        rc = mp_headers_add_cstr(&h, "x-envoy-ratelimited", "true");
    for (size_t i = 0; from_service && i < from_service->n && !rc; i++)
        rc = mp_headers_add(&h, from_service->v[i].name, from_service->v[i].name_len,
                            from_service->v[i].value, from_service->v[i].value_len);
    for (size_t i = 0; i < c->response_headers_to_add.n && !rc; i++)
        rc = mp_headers_add(
            &h, c->response_headers_to_add.v[i].name, c->response_headers_to_add.v[i].name_len,
            c->response_headers_to_add.v[i].value, c->response_headers_to_add.v[i].value_len);
    mp_filter_send_reply(r->f, c->rate_limited_status, &h, NULL, 0, MP_RF_RATE_LIMITED);
    mp_headers_clear(&h);
}

static void call_done(void *arg, int status, const char *message, const uint8_t *resp, size_t len)
{
    struct rl_state *r = arg;
    r->call = NULL;
    if (status != GRPC_STATUS_OK) {
        MP_LOG_DEBUG_(MP_LOG_FILTER, "ratelimit: call failed: grpc status %d %s", status, message);
        on_error(r);
        return;
    }
    struct mp_rl_result res;
    mp_rl_result_init(&res);
    if (mp_rl_response_parse(resp, len, &res) != 0 || res.code == MP_RL_UNKNOWN) {
        mp_rl_result_clear(&res);
        on_error(r);
        return;
    }
    if (res.code == MP_RL_OVER_LIMIT) {
        over_limit(r, &res.response_headers);
        mp_rl_result_clear(&res);
        return;
    }
    count(r, ST_OK);
    struct mp_http_stream *s = r->f->stream;
    for (size_t i = 0; i < res.request_headers.n; i++)
        mp_headers_set(&s->req, res.request_headers.v[i].name, res.request_headers.v[i].value,
                       res.request_headers.v[i].value_len);
    /* the OK answer's response headers wait for the response */
    mp_headers_clear(&r->resp_add);
    r->resp_add = res.response_headers;
    mp_headers_init(&res.response_headers);
    mp_rl_result_clear(&res);
    resume(r);
}

/* ---- filter callbacks ------------------------------------------------------ */

/* "1.2.3.4:5678" / "[::1]:5678" -> ip */
static const char *remote_ip(const char *remote, char *buf, size_t cap)
{
    if (!remote)
        return NULL;
    const char *colon = strrchr(remote, ':');
    size_t n = colon ? (size_t)(colon - remote) : strlen(remote);
    if (n >= 2 && remote[0] == '[' && remote[n - 1] == ']') {
        remote++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(buf, remote, n);
    buf[n] = '\0';
    return buf;
}

static int on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                              bool end_stream)
{
    (void)end_stream;
    struct rl_state *r = f->state;
    struct mp_http_stream *s = f->stream;
    struct rl_config *c = (struct rl_config *)f->config;
    r->f = f;
    mp_headers_init(&r->resp_add);
    if (!s->worker)
        return MP_FILTER_CONTINUE;
    const struct mp_route *route = mp_filter_route_match(s, NULL);
    if (!route || route->action_kind != MP_ROUTE_ACTION_ROUTE)
        return MP_FILTER_CONTINUE;
    const struct mp_route_action *ra = &route->route;
    char cluster[256];
    bool have_cluster = mp_filter_route_cluster(route, s, 0, cluster, sizeof(cluster)) == 0;
    char ipbuf[64];
    struct mp_rl_request_info info = {
        .headers = headers,
        .remote_address = remote_ip(s->downstream_remote, ipbuf, sizeof(ipbuf)),
        .destination_cluster = have_cluster ? cluster : NULL,
    };
    struct mp_rl_descriptors d = {0};
    int rc = mp_rl_descriptors_build(ra->rate_limits, ra->n_rate_limits, c->stage, &info, &d);
    /* the virtual host's limits apply unless the route has its own, or
     * when the route asks for them (include_vh_rate_limits) */
    if (!rc && route->vhost && (ra->n_rate_limits == 0 || ra->include_vh_rate_limits))
        rc = mp_rl_descriptors_build(route->vhost->rate_limits, route->vhost->n_rate_limits,
                                     c->stage, &info, &d);
    if (!rc && d.n == 0) {
        mp_rl_descriptors_clear(&d);
        return MP_FILTER_CONTINUE;
    }
    if (have_cluster && s->worker->stats)
        r->stats = stats_for(c, s->worker->stats, cluster);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!rc)
        rc = mp_rl_request_pack(c->domain, &d, &buf, &len);
    mp_rl_descriptors_clear(&d);
    char target[300];
    if (!rc) {
        if (c->target) {
            if (strlen(c->target) < sizeof(target))
                strcpy(target, c->target);
            else
                rc = MP_ERR_INVAL;
        } else {
            rc = mp_filter_cluster_target(s->worker, s->snap, c->cluster, target, sizeof(target));
        }
    }
    if (!rc) {
        struct mp_grpc_thread *gt = mp_server_grpc_thread(s->worker->server);
        rc = mp_grpc_call_start(s->worker->loop, gt, target, SHOULD_RATE_LIMIT_METHOD, buf, len,
                                c->timeout_ms, call_done, r, &r->call);
    }
    free(buf);
    if (rc) {
        /* the service cannot be asked: the failure mode decides now */
        count(r, ST_ERROR);
        if (c->failure_mode_deny)
            return mp_filter_send_reply(f, c->status_on_error, NULL, NULL, 0, 0);
        count(r, ST_FAILURE_MODE_ALLOWED);
        return MP_FILTER_CONTINUE;
    }
    r->waiting = true;
    return MP_FILTER_STOP;
}

static int on_response_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                               bool end_stream)
{
    (void)end_stream;
    struct rl_state *r = f->state;
    if (!r->f)
        return MP_FILTER_CONTINUE;
    for (size_t i = 0; i < r->resp_add.n; i++)
        mp_headers_add(headers, r->resp_add.v[i].name, r->resp_add.v[i].name_len,
                       r->resp_add.v[i].value, r->resp_add.v[i].value_len);
    return MP_FILTER_CONTINUE;
}

static void destroy(struct mp_http_filter_ctx *f)
{
    struct rl_state *r = f->state;
    if (!r->f)
        return;
    if (r->call) {
        mp_grpc_call_cancel(r->call);
        r->call = NULL;
    }
    mp_headers_clear(&r->resp_add);
}

const struct mp_http_filter_ops mp_http_filter_ratelimit = {
    .name = "envoy.filters.http.ratelimit",
    .config_type = "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
    .parse = parse,
    .config_free = config_free,
    .state_size = sizeof(struct rl_state),
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
    .destroy = destroy,
};
