/*
 * ext_authz.c: envoy.filters.http.ext_authz (see ext_authz.h).
 *
 * On request headers the filter asks the authorization server and stops;
 * the answer comes back on the worker's loop (grpc: grpc_call.h; http: an
 * upstream request on the worker's pool) and the filter continues, denies,
 * or applies failure_mode_allow. A stream reset meanwhile cancels the call
 * in destroy, so a late answer never touches a freed stream.
 */
#include "ext_authz.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/status.h>

#include "envoy/extensions/filters/http/ext_authz/v3/ext_authz.pb-c.h"
#include "ext_authz_check.h"
#include "filter_reply.h"
#include "filter_route.h"
#include "grpc_call.h"
#include "proxy/cluster.h"
#include "proxy/conn.h"
#include "proxy/http_stream.h"
#include "proxy/log.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"
#include "proxy/tls_transport.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"
#include "xds/xds_translate_route.h"

#define CHECK_METHOD       "/envoy.service.auth.v3.Authorization/Check"
#define DEFAULT_TIMEOUT_MS 200
#define MAX_DENIED_BODY    (64 * 1024)

typedef Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthz ExtAuthzPb;
typedef Envoy__Type__Matcher__V3__ListStringMatcher ListPb;

struct matchers {
    struct mp_string_match *v;
    size_t n;
    bool set;
};

struct authz_stats {
    struct mp_counter *ok, *denied, *error, *failure_mode_allowed;
};

struct authz_config {
    bool http; /* http_service; else grpc_service */
    char *cluster;
    char *target; /* google_grpc.target_uri */
    int64_t timeout_ms;
    bool failure_mode_allow;
    bool failure_mode_allow_header_add;
    int status_on_error;
    bool include_tls_session;
    uint32_t enabled_per_million; /* filter_enabled: share of requests checked */
    bool with_body;               /* with_request_body */
    uint32_t max_body;
    bool allow_partial;
    bool body_as_bytes;
    struct mp_ext_authz_header_filter hfilter;
    struct mp_route_config *arena; /* owns the matchers and their regexes */
    char *stat_prefix;             /* "ext_authz" or "ext_authz.<stat_prefix>" */
    /* http_service */
    char *authority;
    char *path_prefix;
    struct mp_headers headers_to_add;
    struct matchers allowed_upstream, allowed_upstream_append, allowed_client,
        allowed_client_on_success;
    _Atomic(struct authz_stats *) stats; /* resolved on first use */
};

struct authz_state {
    struct mp_http_filter_ctx *f;
    struct mp_grpc_call *call;
    struct mp_upstream_request *up;
    ev_timer timer;
    bool timer_armed;
    bool waiting;
    struct mp_headers resp_add; /* response_headers_to_add / allowed_client_headers_on_success */
    /* http_service answer */
    int http_status;
    struct mp_headers http_headers;
    struct mp_buffer http_body;
    bool http_failed;
    struct mp_deferred finish_d;
    /* with_request_body: the body is awaited before the check */
    ev_prepare body_watch;
    bool body_watching;
    const struct mp_typed_config *per_route; /* lives in the stream's snapshot */
};

/* The request body that goes with a check (with_request_body). */
struct check_body {
    bool present;
    const char *data;
    size_t len;
    bool partial;
};

/* ---- config ------------------------------------------------------------- */

static void config_free(void *p)
{
    struct authz_config *c = p;
    if (!c)
        return;
    free(c->cluster);
    free(c->target);
    free(c->stat_prefix);
    free(c->authority);
    free(c->path_prefix);
    mp_headers_clear(&c->headers_to_add);
    if (c->arena)
        mp_route_config_free(c->arena);
    free(atomic_load(&c->stats));
    free(c);
}

static int list_from_proto(struct authz_config *c, const ListPb *pb, const char *field,
                           struct matchers *out, char **err)
{
    if (!pb)
        return 0;
    out->set = true;
    if (pb->n_patterns == 0)
        return 0;
    out->v = mp_route_arena_alloc(c->arena, pb->n_patterns * sizeof(*out->v));
    if (!out->v)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < pb->n_patterns; i++) {
        char *e = NULL;
        int rc = mp_string_match_from_proto(c->arena, pb->patterns[i], &out->v[i], &e);
        if (rc) {
            mp_set_err(err, "%s.patterns[%zu].%s", field, i, e ? e : "invalid");
            free(e);
            return rc;
        }
    }
    out->n = pb->n_patterns;
    return 0;
}

static int64_t duration_ms(const Google__Protobuf__Duration *d, int64_t def)
{
    if (!d)
        return def;
    return d->seconds * 1000 + d->nanos / 1000000;
}

/* "http://host:port/path" -> "host:port" */
static char *uri_authority(const char *uri)
{
    const char *p = strstr(uri, "://");
    p = p ? p + 3 : uri;
    size_t n = strcspn(p, "/?#");
    return strndup(p, n);
}

static int parse_grpc_service(struct authz_config *c, const Envoy__Config__Core__V3__GrpcService *g,
                              char **err)
{
    c->timeout_ms = duration_ms(g->timeout, DEFAULT_TIMEOUT_MS);
    if (g->n_initial_metadata)
        return mp_set_err(err, "grpc_service.initial_metadata: not supported");
    switch (g->target_specifier_case) {
    case ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC:
        if (!g->envoy_grpc->cluster_name || !g->envoy_grpc->cluster_name[0])
            return mp_set_err(err, "grpc_service.envoy_grpc.cluster_name: must not be empty");
        c->cluster = strdup(g->envoy_grpc->cluster_name);
        return c->cluster ? 0 : MP_ERR_NOMEM;
    case ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC:
        if (!g->google_grpc->target_uri || !g->google_grpc->target_uri[0])
            return mp_set_err(err, "grpc_service.google_grpc.target_uri: must not be empty");
        if (g->google_grpc->channel_credentials || g->google_grpc->n_call_credentials)
            return mp_set_err(err, "grpc_service.google_grpc: credentials are not supported");
        c->target = strdup(g->google_grpc->target_uri);
        return c->target ? 0 : MP_ERR_NOMEM;
    default: return mp_set_err(err, "grpc_service: envoy_grpc or google_grpc is required");
    }
}

static int parse_http_service(struct authz_config *c,
                              const Envoy__Extensions__Filters__Http__ExtAuthz__V3__HttpService *h,
                              ListPb *allowed_headers, char **err)
{
    c->http = true;
    const Envoy__Config__Core__V3__HttpUri *u = h->server_uri;
    if (!u || !u->uri || !u->uri[0])
        return mp_set_err(err, "http_service.server_uri.uri: must not be empty");
    if (u->http_upstream_type_case !=
            ENVOY__CONFIG__CORE__V3__HTTP_URI__HTTP_UPSTREAM_TYPE_CLUSTER ||
        !u->cluster || !u->cluster[0])
        return mp_set_err(err, "http_service.server_uri.cluster: must not be empty");
    if (!u->timeout)
        return mp_set_err(err, "http_service.server_uri.timeout: is required");
    c->timeout_ms = duration_ms(u->timeout, DEFAULT_TIMEOUT_MS);
    c->cluster = strdup(u->cluster);
    c->authority = uri_authority(u->uri);
    c->path_prefix = strdup(h->path_prefix ? h->path_prefix : "");
    if (!c->cluster || !c->authority || !c->path_prefix)
        return MP_ERR_NOMEM;
    if (c->path_prefix[0] && c->path_prefix[0] != '/')
        return mp_set_err(err, "http_service.path_prefix: must start with '/'");
    int rc = 0;
    const Envoy__Extensions__Filters__Http__ExtAuthz__V3__AuthorizationRequest *ar =
        h->authorization_request;
    if (ar) {
        for (size_t i = 0; i < ar->n_headers_to_add && !rc; i++) {
            const Envoy__Config__Core__V3__HeaderValue *hv = ar->headers_to_add[i];
            if (!hv->key || !hv->key[0])
                return mp_set_err(err,
                                  "http_service.authorization_request.headers_to_add[%zu]"
                                  ".key: must not be empty",
                                  i);
            rc = mp_headers_add_cstr(&c->headers_to_add, hv->key, hv->value ? hv->value : "");
        }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        /* the deprecated place of allowed_headers, still common in configs */
        if (!rc && !allowed_headers && ar->allowed_headers) {
            struct matchers m = {0};
            rc = list_from_proto(c, ar->allowed_headers,
                                 "http_service.authorization_request.allowed_headers", &m, err);
            c->hfilter.allowed = m.v;
            c->hfilter.n_allowed = m.n;
            c->hfilter.has_allowed = true;
        }
#pragma GCC diagnostic pop
    }
    const Envoy__Extensions__Filters__Http__ExtAuthz__V3__AuthorizationResponse *rs =
        h->authorization_response;
    if (rs && !rc) {
        rc = list_from_proto(c, rs->allowed_upstream_headers,
                             "http_service.authorization_response.allowed_upstream_headers",
                             &c->allowed_upstream, err);
        if (!rc)
            rc = list_from_proto(
                c, rs->allowed_upstream_headers_to_append,
                "http_service.authorization_response.allowed_upstream_headers_to_append",
                &c->allowed_upstream_append, err);
        if (!rc)
            rc = list_from_proto(c, rs->allowed_client_headers,
                                 "http_service.authorization_response.allowed_client_headers",
                                 &c->allowed_client, err);
        if (!rc)
            rc = list_from_proto(
                c, rs->allowed_client_headers_on_success,
                "http_service.authorization_response.allowed_client_headers_on_success",
                &c->allowed_client_on_success, err);
    }
    return rc;
}

static int parse(const uint8_t *data, size_t len, void **out, char **err)
{
    if (!data && len == 0)
        return mp_set_err(err, "typed_config: ExtAuthz config is required");
    ExtAuthzPb *pb =
        envoy__extensions__filters__http__ext_authz__v3__ext_authz__unpack(NULL, len, data);
    if (!pb)
        return mp_set_err(err, "malformed ExtAuthz (protobuf decoding failed)");
    struct authz_config *c = calloc(1, sizeof(*c));
    int rc = MP_ERR_NOMEM;
    if (!c)
        goto out;
    mp_headers_init(&c->headers_to_add);
    c->arena = mp_route_config_new();
    if (!c->arena)
        goto out;
    c->failure_mode_allow = pb->failure_mode_allow;
    c->failure_mode_allow_header_add = pb->failure_mode_allow_header_add;
    c->include_tls_session = pb->include_tls_session;
    c->status_on_error = 403;
    if (pb->status_on_error && pb->status_on_error->code) {
        if (pb->status_on_error->code < 100 || pb->status_on_error->code > 599) {
            rc = mp_set_err(err, "status_on_error.code: %d is not an HTTP status",
                            (int)pb->status_on_error->code);
            goto out;
        }
        c->status_on_error = (int)pb->status_on_error->code;
    }
    if (pb->filter_enabled_metadata || pb->deny_at_disable || pb->decoder_header_mutation_rules) {
        rc = mp_set_err(err, "%s: not supported",
                        pb->filter_enabled_metadata ? "filter_enabled_metadata"
                        : pb->deny_at_disable       ? "deny_at_disable"
                                                    : "decoder_header_mutation_rules");
        goto out;
    }
    if (pb->with_request_body) {
        if (pb->with_request_body->max_request_bytes == 0) {
            rc = mp_set_err(err, "with_request_body.max_request_bytes: must be greater than 0");
            goto out;
        }
        c->with_body = true;
        c->max_body = pb->with_request_body->max_request_bytes;
        c->allow_partial = pb->with_request_body->allow_partial_message;
        c->body_as_bytes = pb->with_request_body->pack_as_bytes;
    }
    c->enabled_per_million = 1000000;
    if (pb->filter_enabled) {
        /* runtime_key has no runtime to read here: the default applies
         * (an unset default_value is numerator 0) */
        const Envoy__Type__V3__FractionalPercent *fp = pb->filter_enabled->default_value;
        uint64_t scale =
            !fp                                                                                 ? 0
            : fp->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION ? 1
            : fp->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND
                ? 100
                : 10000;
        uint64_t v = fp ? (uint64_t)fp->numerator * scale : 0;
        c->enabled_per_million = v > 1000000 ? 1000000 : (uint32_t)v;
    }
    size_t plen = strlen("ext_authz.") + (pb->stat_prefix ? strlen(pb->stat_prefix) : 0) + 1;
    c->stat_prefix = malloc(plen);
    if (!c->stat_prefix)
        goto out;
    snprintf(c->stat_prefix, plen, "ext_authz%s%s",
             pb->stat_prefix && pb->stat_prefix[0] ? "." : "",
             pb->stat_prefix ? pb->stat_prefix : "");
    struct matchers allowed = {0}, disallowed = {0};
    rc = list_from_proto(c, pb->allowed_headers, "allowed_headers", &allowed, err);
    if (!rc)
        rc = list_from_proto(c, pb->disallowed_headers, "disallowed_headers", &disallowed, err);
    if (rc)
        goto out;
    c->hfilter.allowed = allowed.v;
    c->hfilter.n_allowed = allowed.n;
    c->hfilter.has_allowed = allowed.set;
    c->hfilter.disallowed = disallowed.v;
    c->hfilter.n_disallowed = disallowed.n;
    switch (pb->services_case) {
    case ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_GRPC_SERVICE:
        rc = parse_grpc_service(c, pb->grpc_service, err);
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ__SERVICES_HTTP_SERVICE:
        rc = parse_http_service(c, pb->http_service, pb->allowed_headers, err);
        break;
    default: rc = mp_set_err(err, "grpc_service or http_service is required"); break;
    }
    if (rc)
        goto out;
    if (c->http && !c->hfilter.has_allowed) {
        /* an HTTP authorization server gets only the always-sent headers */
        c->hfilter.has_allowed = true;
    }
    *out = c;
    c = NULL;
out:
    if (rc == MP_ERR_NOMEM && err && !*err)
        mp_set_err(err, "out of memory");
    config_free(c);
    envoy__extensions__filters__http__ext_authz__v3__ext_authz__free_unpacked(pb, NULL);
    return rc;
}

/* ---- stats ----------------------------------------------------------- */

static struct authz_stats *stats_get(struct authz_config *c, struct mp_http_stream *s)
{
    struct authz_stats *st = atomic_load_explicit(&c->stats, memory_order_acquire);
    if (st || !s->worker || !s->worker->stats)
        return st;
    /* first request of this config: register once (a short registry mutex);
     * a racing worker gets the same handles and frees its copy */
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    const char *hp = s->hcm->stat_prefix ? s->hcm->stat_prefix : "";
    struct mp_stats *reg = s->worker->stats;
    st->ok = mp_stats_counterf(reg, "http.%s.%s.ok", hp, c->stat_prefix);
    st->denied = mp_stats_counterf(reg, "http.%s.%s.denied", hp, c->stat_prefix);
    st->error = mp_stats_counterf(reg, "http.%s.%s.error", hp, c->stat_prefix);
    st->failure_mode_allowed =
        mp_stats_counterf(reg, "http.%s.%s.failure_mode_allowed", hp, c->stat_prefix);
    struct authz_stats *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->stats, &expected, st)) {
        free(st);
        st = expected;
    }
    return st;
}

enum stat_kind { ST_OK, ST_DENIED, ST_ERROR, ST_FAILURE_MODE_ALLOWED };

static void count(struct authz_state *a, enum stat_kind which)
{
    struct mp_http_stream *s = a->f->stream;
    struct authz_stats *st = stats_get((struct authz_config *)a->f->config, s);
    if (!st || !s->worker)
        return;
    struct mp_counter *c = which == ST_OK       ? st->ok
                           : which == ST_DENIED ? st->denied
                           : which == ST_ERROR  ? st->error
                                                : st->failure_mode_allowed;
    if (c)
        mp_counter_inc(c, s->worker->index, 1);
}

/* ---- outcomes ------------------------------------------------------------ */

static void send_reply(struct authz_state *a, int status, const struct mp_headers *extra,
                       const char *body, size_t blen, uint32_t flag)
{
    mp_filter_send_reply(a->f, status, extra, body, blen, flag);
}

static void resume(struct authz_state *a)
{
    if (!a->waiting)
        return;
    a->waiting = false;
    mp_http_filter_continue_request(a->f);
}

/* The server could not be asked or did not answer usably. */
static void on_error(struct authz_state *a)
{
    const struct authz_config *c = a->f->config;
    struct mp_http_stream *s = a->f->stream;
    count(a, ST_ERROR);
    if (c->failure_mode_allow) {
        count(a, ST_FAILURE_MODE_ALLOWED);
        if (c->failure_mode_allow_header_add)
            mp_headers_set_cstr(&s->req, "x-envoy-auth-failure-mode-allowed", "true");
        resume(a);
        return;
    }
    a->waiting = false;
    send_reply(a, c->status_on_error, NULL, NULL, 0, MP_RF_UNAUTHORIZED);
}

static void grpc_done(void *arg, int status, const char *message, const uint8_t *resp, size_t len)
{
    struct authz_state *a = arg;
    a->call = NULL;
    if (status != GRPC_STATUS_OK) {
        MP_LOG_DEBUG_(MP_LOG_FILTER, "ext_authz: call failed: grpc status %d %s", status, message);
        on_error(a);
        return;
    }
    struct mp_ext_authz_result r;
    mp_ext_authz_result_init(&r);
    int rc = mp_ext_authz_check_response_parse(resp, len, &r);
    struct mp_http_stream *s = a->f->stream;
    if (rc) {
        mp_ext_authz_result_clear(&r);
        on_error(a);
        return;
    }
    if (r.verdict == MP_EXT_AUTHZ_OK) {
        count(a, ST_OK);
        if (mp_ext_authz_apply_upstream(&r, &s->req) == 0) {
            for (size_t i = 0; i < r.client.n; i++)
                mp_headers_add(&a->resp_add, r.client.v[i].name, r.client.v[i].name_len,
                               r.client.v[i].value, r.client.v[i].value_len);
        }
        mp_ext_authz_result_clear(&r);
        resume(a);
        return;
    }
    count(a, ST_DENIED);
    a->waiting = false;
    int st = r.http_status ? r.http_status : 403;
    send_reply(a, st, &r.client, r.body, r.body ? strlen(r.body) : 0, MP_RF_UNAUTHORIZED);
    mp_ext_authz_result_clear(&r);
}

/* ---- gRPC check ----------------------------------------------------------- */

static void fill_attrs(struct mp_http_stream *s, const struct authz_config *c,
                       const struct mp_typed_config *per_route_unused,
                       struct mp_ext_authz_attrs *at)
{
    (void)per_route_unused;
    memset(at, 0, sizeof(*at));
    at->headers = &s->req;
    at->source = s->downstream_remote;
    at->destination = s->downstream_local;
    at->protocol = s->protocol == 2 ? "HTTP/2" : s->protocol == 10 ? "HTTP/1.0" : "HTTP/1.1";
    at->time_us = s->start_wall_us;
    at->filter = &c->hfilter;
    struct mp_conn *conn = s->conn;
    if (conn && conn->tls) {
        const struct mp_tls_peer *p = mp_tls_transport_peer(conn->tls);
        if (p && p->presented)
            at->source_principal = p->n_uri_sans ? p->uri_sans[0] : p->subject;
        if (c->include_tls_session)
            at->sni = mp_tls_transport_sni(conn->tls);
    }
}

static int start_grpc(struct authz_state *a, const char *const *ext, size_t n_ext,
                      const struct check_body *body)
{
    const struct authz_config *c = a->f->config;
    struct mp_http_stream *s = a->f->stream;
    char target[300];
    if (c->target) {
        if (strlen(c->target) >= sizeof(target))
            return MP_ERR_INVAL;
        strcpy(target, c->target);
    } else {
        int rc = mp_filter_cluster_target(s->worker, s->snap, c->cluster, target, sizeof(target));
        if (rc)
            return rc;
    }
    struct mp_ext_authz_attrs at;
    fill_attrs(s, c, NULL, &at);
    at.context_extensions = ext;
    at.n_context_extensions = n_ext;
    if (body->present) {
        at.with_body = true;
        at.body = body->data;
        at.body_len = body->len;
        at.body_partial = body->partial;
        at.body_as_bytes = c->body_as_bytes;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mp_ext_authz_check_request_pack(&at, &buf, &len);
    if (rc)
        return rc;
    struct mp_grpc_thread *gt = mp_server_grpc_thread(s->worker->server);
    rc = mp_grpc_call_start(s->worker->loop, gt, target, CHECK_METHOD, buf, len, c->timeout_ms,
                            grpc_done, a, &a->call);
    free(buf);
    return rc;
}

/* ---- HTTP check ----------------------------------------------------------- */

static bool list_match(const struct matchers *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (mp_string_match_eval(&m->v[i], name, len))
            return true;
    return false;
}

static void http_cancel(struct authz_state *a)
{
    struct mp_http_stream *s = a->f->stream;
    if (a->up) {
        mp_upstream_request_cancel(a->up);
        a->up = NULL;
    }
    if (a->timer_armed && s->worker) {
        ev_timer_stop(s->worker->loop, &a->timer);
        a->timer_armed = false;
    }
}

/* Runs from the worker's prepare phase, never inside an upstream callback. */
static void http_finish(void *arg)
{
    struct authz_state *a = arg;
    const struct authz_config *c = a->f->config;
    struct mp_http_stream *s = a->f->stream;
    http_cancel(a);
    if (a->http_failed || a->http_status >= 500 || a->http_status == 0) {
        on_error(a);
        return;
    }
    const struct mp_headers *h = &a->http_headers;
    if (a->http_status == 200) {
        count(a, ST_OK);
        for (size_t i = 0; i < h->n; i++) {
            const struct mp_header *x = &h->v[i];
            if (x->name[0] == ':')
                continue;
            if (list_match(&c->allowed_upstream, x->name, x->name_len))
                mp_headers_set(&s->req, x->name, x->value, x->value_len);
            else if (list_match(&c->allowed_upstream_append, x->name, x->name_len))
                mp_headers_add(&s->req, x->name, x->name_len, x->value, x->value_len);
            if (list_match(&c->allowed_client_on_success, x->name, x->name_len))
                mp_headers_add(&a->resp_add, x->name, x->name_len, x->value, x->value_len);
        }
        resume(a);
        return;
    }
    count(a, ST_DENIED);
    a->waiting = false;
    /* denied: the server's answer goes to the client (allowed_client_headers
     * when set, else every header but Host / :authority) */
    struct mp_headers out;
    mp_headers_init(&out);
    for (size_t i = 0; i < h->n; i++) {
        const struct mp_header *x = &h->v[i];
        if (x->name[0] == ':' || strcmp(x->name, "host") == 0)
            continue;
        if (c->allowed_client.set && !list_match(&c->allowed_client, x->name, x->name_len) &&
            strcmp(x->name, "www-authenticate") != 0 && strcmp(x->name, "location") != 0)
            continue;
        mp_headers_add(&out, x->name, x->name_len, x->value, x->value_len);
    }
    size_t blen = mp_buffer_len(&a->http_body);
    char *body = blen ? malloc(blen) : NULL;
    if (body)
        mp_buffer_copy_out(&a->http_body, 0, body, blen);
    send_reply(a, a->http_status, &out, body, body ? blen : 0, MP_RF_UNAUTHORIZED);
    free(body);
    mp_headers_clear(&out);
}

static void http_done_soon(struct authz_state *a)
{
    struct mp_http_stream *s = a->f->stream;
    a->up = NULL; /* the pool has let go of it */
    if (a->timer_armed) {
        /* answered: a timeout before http_finish runs must not turn it into an error */
        ev_timer_stop(s->worker->loop, &a->timer);
        a->timer_armed = false;
    }
    mp_worker_defer(s->worker, &a->finish_d);
}

static void up_headers(void *ctx, struct mp_headers *h, bool end_stream)
{
    struct authz_state *a = ctx;
    const char *st = mp_headers_value(h, ":status");
    a->http_status = st ? atoi(st) : 0;
    mp_headers_clear(&a->http_headers);
    a->http_headers = *h;
    mp_headers_init(h);
    if (end_stream)
        http_done_soon(a);
}

static void up_data(void *ctx, struct mp_buffer *data, bool end_stream)
{
    struct authz_state *a = ctx;
    if (mp_buffer_len(&a->http_body) + mp_buffer_len(data) <= MAX_DENIED_BODY)
        mp_buffer_move(&a->http_body, data);
    else
        mp_buffer_clear(data);
    if (end_stream)
        http_done_soon(a);
}

static void up_trailers(void *ctx, struct mp_headers *t)
{
    (void)t;
    http_done_soon(ctx);
}

static void up_reset(void *ctx, enum mp_upstream_reset_reason reason)
{
    struct authz_state *a = ctx;
    (void)reason;
    a->http_failed = true;
    http_done_soon(a);
}

static void up_watermark(void *ctx, bool above)
{
    (void)ctx;
    (void)above;
}

static const struct mp_upstream_callbacks up_cbs = {
    .on_headers = up_headers,
    .on_data = up_data,
    .on_trailers = up_trailers,
    .on_reset = up_reset,
    .on_watermark = up_watermark,
};

static void http_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct authz_state *a = t->data;
    a->timer_armed = false;
    if (a->up) {
        mp_upstream_request_cancel(a->up);
        a->up = NULL;
    }
    a->http_failed = true;
    mp_worker_defer(a->f->stream->worker, &a->finish_d);
}

/* Headers Envoy always sends to an HTTP authorization server. */
static bool always_sent(const char *name)
{
    return strcmp(name, "authorization") == 0 || strcmp(name, "content-length") == 0 ||
           strcmp(name, "host") == 0;
}

static int start_http(struct authz_state *a, const struct check_body *body)
{
    const struct authz_config *c = a->f->config;
    struct mp_http_stream *s = a->f->stream;
    const struct mp_snapshot_cluster *ce =
        mp_snapshot_find_cluster_entry(s->snap, c->cluster, strlen(c->cluster));
    if (!ce || !ce->lb)
        return MP_ERR_NOTFOUND;
    struct mp_lb_worker *lbw = mp_worker_lb(s->worker, ce->lb);
    struct mp_lb_context lbc = {0};
    const struct mp_host *host = lbw ? mp_lb_pick(lbw, &lbc) : NULL;
    if (!host)
        return MP_ERR_NOTFOUND;
    struct mp_headers h;
    mp_headers_init(&h);
    const char *method = mp_headers_value(&s->req, ":method");
    const char *path = mp_headers_value(&s->req, ":path");
    size_t plen = strlen(c->path_prefix) + (path ? strlen(path) : 1) + 1;
    char *full = malloc(plen);
    int rc = full ? 0 : MP_ERR_NOMEM;
    if (!rc) {
        snprintf(full, plen, "%s%s", c->path_prefix, path ? path : "/");
        rc = mp_headers_add_cstr(&h, ":method", method ? method : "GET");
    }
    if (!rc)
        rc = mp_headers_add_cstr(&h, ":scheme", "http");
    if (!rc)
        rc = mp_headers_add_cstr(&h, ":authority", c->authority);
    if (!rc)
        rc = mp_headers_add_cstr(&h, ":path", full);
    free(full);
    for (size_t i = 0; i < s->req.n && !rc; i++) {
        const struct mp_header *x = &s->req.v[i];
        if (x->name[0] == ':' || strcmp(x->name, "content-length") == 0)
            continue;
        if (!always_sent(x->name) &&
            !mp_ext_authz_header_allowed(&c->hfilter, x->name, x->name_len))
            continue;
        rc = mp_headers_add(&h, x->name, x->name_len, x->value, x->value_len);
    }
    for (size_t i = 0; i < c->headers_to_add.n && !rc; i++)
        rc = mp_headers_set(&h, c->headers_to_add.v[i].name, c->headers_to_add.v[i].value,
                            c->headers_to_add.v[i].value_len);
    char num[24];
    snprintf(num, sizeof(num), "%zu", body->present ? body->len : 0);
    if (!rc)
        rc = mp_headers_set_cstr(&h, "content-length", num);
    if (!rc && body->present)
        rc = mp_headers_set_cstr(&h, "x-envoy-auth-partial-body", body->partial ? "true" : "false");
    if (rc) {
        mp_headers_clear(&h);
        return rc;
    }
    enum mp_upstream_reset_reason reason;
    enum mp_upstream_proto proto = ce->cluster->upstream_protocol == MP_UPSTREAM_HTTP2
                                       ? MP_UPSTREAM_PROTO_HTTP2
                                       : MP_UPSTREAM_PROTO_HTTP1;
    a->up = mp_upstream_request_new(s->worker, ce, host, proto, &up_cbs, a, &reason);
    if (!a->up) {
        mp_headers_clear(&h);
        return MP_ERR_NOMEM;
    }
    ev_timer_init(&a->timer, http_timeout, (double)c->timeout_ms / 1000.0, 0.0);
    a->timer.data = a;
    if (c->timeout_ms > 0) {
        ev_timer_start(s->worker->loop, &a->timer);
        a->timer_armed = true;
    }
    bool has_data = body->present && body->len > 0;
    rc = mp_upstream_send_headers(a->up, &h, !has_data);
    mp_headers_clear(&h);
    if (!rc && has_data) {
        struct mp_buffer b = MP_BUFFER_INIT;
        rc = mp_buffer_append_copy(&b, body->data, body->len);
        if (!rc)
            rc = mp_upstream_send_data(a->up, &b, true);
        mp_buffer_clear(&b);
    }
    return rc;
}

/* filter_enabled: true for per_million of a million requests (a per-thread
 * xorshift; no shared state on the request path). */
static bool sampled(uint32_t per_million)
{
    static __thread uint64_t x;
    if (per_million >= 1000000)
        return true;
    if (per_million == 0)
        return false;
    if (!x)
        x = (uint64_t)(uintptr_t)&x ^ (uint64_t)mp_now_us() ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % 1000000 < per_million;
}

/* ---- filter callbacks ------------------------------------------------------ */

/* Parses a->per_route (ExtAuthzPerRoute); NULL when absent or unreadable. */
static Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthzPerRoute *
per_route(const struct authz_state *a)
{
    const struct mp_typed_config *tc = a->per_route;
    if (!tc || !tc->value_len)
        return NULL;
    return envoy__extensions__filters__http__ext_authz__v3__ext_authz_per_route__unpack(
        NULL, tc->value_len, tc->value);
}

static const Envoy__Extensions__Filters__Http__ExtAuthz__V3__CheckSettings *
check_settings(const Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthzPerRoute *pr)
{
    if (pr &&
        pr->override_case ==
            ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ_PER_ROUTE__OVERRIDE_CHECK_SETTINGS)
        return pr->check_settings;
    return NULL;
}

/* Asks the server (with the route's context_extensions). Returns 0 when a
 * call is in flight, or the error that kept it from starting. */
static int begin_check(struct authz_state *a, const struct check_body *body)
{
    const struct authz_config *c = a->f->config;
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthzPerRoute *pr = per_route(a);
    const Envoy__Extensions__Filters__Http__ExtAuthz__V3__CheckSettings *cs = check_settings(pr);
    const char *ext_stack[16];
    const char **ext = ext_stack;
    size_t n_ext = 0;
    int rc = 0;
    if (cs && cs->n_context_extensions) {
        size_t n = cs->n_context_extensions;
        if (2 * n > MP_ARRAY_LEN(ext_stack))
            ext = malloc(2 * n * sizeof(*ext));
        if (!ext)
            rc = MP_ERR_NOMEM;
        for (size_t i = 0; ext && i < n; i++) {
            ext[2 * i] = cs->context_extensions[i]->key;
            ext[2 * i + 1] = cs->context_extensions[i]->value;
        }
        n_ext = n;
    }
    if (!rc)
        rc = c->http ? start_http(a, body) : start_grpc(a, ext, n_ext, body);
    if (ext != ext_stack)
        free(ext);
    if (pr)
        envoy__extensions__filters__http__ext_authz__v3__ext_authz_per_route__free_unpacked(pr,
                                                                                            NULL);
    if (rc) {
        http_cancel(a);
        if (a->call) {
            mp_grpc_call_cancel(a->call);
            a->call = NULL;
        }
    }
    return rc;
}

static void body_watch_stop(struct authz_state *a)
{
    if (!a->body_watching)
        return;
    ev_prepare_stop(a->f->stream->worker->loop, &a->body_watch);
    a->body_watching = false;
}

/*
 * with_request_body: runs before each wait of the worker's loop while the
 * body is awaited; the stream holds what arrived (iteration is stopped
 * here). Starts the check once the body is complete or max_request_bytes
 * are in, or answers 413 when the body is too long and partial bodies are
 * not allowed.
 */
static void body_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct authz_state *a = w->data;
    const struct authz_config *c = a->f->config;
    struct mp_http_stream *s = a->f->stream;
    if (s->reset || s->local_reply) {
        body_watch_stop(a);
        return;
    }
    size_t held = mp_buffer_len(&s->req_held);
    bool complete = s->req_complete;
    bool partial = held > c->max_body || (held == c->max_body && !complete);
    if (!complete && !(partial && c->allow_partial) && held <= c->max_body)
        return; /* more to come */
    body_watch_stop(a);
    if (partial && !c->allow_partial) {
        a->waiting = false;
        send_reply(a, 413, NULL, "Payload Too Large", 17, 0);
        return;
    }
    size_t n = held < c->max_body ? held : c->max_body;
    char *data = malloc(n ? n : 1);
    struct check_body body = {.present = true, .data = data, .len = n, .partial = partial};
    int rc = data ? 0 : MP_ERR_NOMEM;
    if (!rc) {
        mp_buffer_copy_out(&s->req_held, 0, data, n);
        rc = begin_check(a, &body);
    }
    free(data);
    if (rc)
        on_error(a);
}

static int on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                              bool end_stream)
{
    (void)headers;
    struct authz_state *a = f->state;
    struct mp_http_stream *s = f->stream;
    const struct authz_config *c = f->config;
    a->f = f;
    mp_headers_init(&a->resp_add);
    mp_headers_init(&a->http_headers);
    mp_buffer_init(&a->http_body);
    a->finish_d.fn = http_finish;
    a->finish_d.arg = a;
    if (!s->worker || !sampled(c->enabled_per_million))
        return MP_FILTER_CONTINUE;

    /* typed_per_filter_config: ExtAuthzPerRoute (disabled / check_settings) */
    const struct mp_route_config *rc_cfg = NULL;
    const struct mp_route *route = mp_filter_route_match(s, &rc_cfg);
    const char *fname = s->hcm->filters[f->index].name;
    a->per_route = route ? mp_filter_route_config(route, rc_cfg,
                                                  fname ? fname : "envoy.filters.http.ext_authz")
                         : NULL;
    if (a->per_route && a->per_route->disabled)
        return MP_FILTER_CONTINUE;
    Envoy__Extensions__Filters__Http__ExtAuthz__V3__ExtAuthzPerRoute *pr = per_route(a);
    bool disabled =
        pr &&
        pr->override_case ==
            ENVOY__EXTENSIONS__FILTERS__HTTP__EXT_AUTHZ__V3__EXT_AUTHZ_PER_ROUTE__OVERRIDE_DISABLED &&
        pr->disabled;
    const Envoy__Extensions__Filters__Http__ExtAuthz__V3__CheckSettings *cs = check_settings(pr);
    bool buffer_body = c->with_body && !end_stream && !(cs && cs->disable_request_body_buffering);
    if (pr)
        envoy__extensions__filters__http__ext_authz__v3__ext_authz_per_route__free_unpacked(pr,
                                                                                            NULL);
    if (disabled)
        return MP_FILTER_CONTINUE;

    if (buffer_body) {
        /* the body the stream holds while we are stopped is looked at
         * before each wait of the loop (body_check) */
        ev_prepare_init(&a->body_watch, body_check);
        a->body_watch.data = a;
        ev_prepare_start(s->worker->loop, &a->body_watch);
        a->body_watching = true;
        a->waiting = true;
        return MP_FILTER_STOP;
    }
    struct check_body body = {.present = c->with_body && end_stream};
    int rc = begin_check(a, &body);
    if (rc) {
        /* could not even ask: the failure mode decides at once */
        count(a, ST_ERROR);
        if (c->failure_mode_allow) {
            count(a, ST_FAILURE_MODE_ALLOWED);
            if (c->failure_mode_allow_header_add)
                mp_headers_set_cstr(&s->req, "x-envoy-auth-failure-mode-allowed", "true");
            return MP_FILTER_CONTINUE;
        }
        send_reply(a, c->status_on_error, NULL, NULL, 0, MP_RF_UNAUTHORIZED);
        return MP_FILTER_LOCAL_REPLY;
    }
    a->waiting = true;
    return MP_FILTER_STOP;
}

static int on_response_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                               bool end_stream)
{
    (void)end_stream;
    struct authz_state *a = f->state;
    if (!a->f)
        return MP_FILTER_CONTINUE;
    for (size_t i = 0; i < a->resp_add.n; i++)
        mp_headers_add(headers, a->resp_add.v[i].name, a->resp_add.v[i].name_len,
                       a->resp_add.v[i].value, a->resp_add.v[i].value_len);
    return MP_FILTER_CONTINUE;
}

static void destroy(struct mp_http_filter_ctx *f)
{
    struct authz_state *a = f->state;
    if (!a->f)
        return; /* headers never reached this filter */
    if (a->call) {
        mp_grpc_call_cancel(a->call);
        a->call = NULL;
    }
    http_cancel(a);
    if (f->stream->worker) {
        body_watch_stop(a);
        mp_worker_undefer(f->stream->worker, &a->finish_d);
    }
    mp_headers_clear(&a->resp_add);
    mp_headers_clear(&a->http_headers);
    mp_buffer_clear(&a->http_body);
}

const struct mp_http_filter_ops mp_http_filter_ext_authz = {
    .name = "envoy.filters.http.ext_authz",
    .config_type = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    .parse = parse,
    .config_free = config_free,
    .state_size = sizeof(struct authz_state),
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
    .destroy = destroy,
};
