/*
 * jwt_authn.c: envoy.filters.http.jwt_authn on the request path. Everything
 * is decided on request headers with local key sets, so the filter never
 * stops the chain: it continues, or answers 401/403 itself.
 */
#include "jwt_authn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/http/filter_reply.h"
#include "filters/http/jwt_authn_config.h"
#include "filters/http/request_view.h"
#include "proxy/http_stream.h"
#include "proxy/json.h"
#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

#define JWT_FILTER_NAME "envoy.filters.http.jwt_authn"
#define PER_ROUTE_TYPE  "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"

struct mp_jwt_authn_stats {
    struct mp_counter *allowed, *denied, *cors_bypassed;
};

/* One payload stored as dynamic metadata (payload_in_metadata). */
struct jwt_meta {
    const char *key; /* the provider's payload_in_metadata (config) */
    struct mp_json_doc *doc;
};

/* Per-stream state: what later filters may read. */
struct jwt_state {
    struct jwt_meta *meta;
    size_t n_meta;
};

static int jwt_parse(const uint8_t *data, size_t len, void **out, char **err)
{
    struct mp_jwt_authn_config *c = NULL;
    int rc = mp_jwt_authn_config_parse(data, len, &c, err);
    if (rc < 0)
        return rc;
    *out = c;
    return 0;
}

static void jwt_config_free(void *p)
{
    mp_jwt_authn_config_free(p);
}

static const struct mp_jwt_authn_stats *config_stats(const struct mp_jwt_authn_config *cc,
                                                     const struct mp_http_stream *s)
{
    struct mp_jwt_authn_config *c = (struct mp_jwt_authn_config *)cc; /* only the stats cache */
    struct mp_jwt_authn_stats *st = atomic_load_explicit(&c->stats, memory_order_acquire);
    if (st || !s->worker || !s->worker->stats)
        return st;
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    struct mp_stats *reg = s->worker->stats;
    const char *hp = s->hcm->stat_prefix ? s->hcm->stat_prefix : "";
    st->allowed = mp_stats_counterf(reg, "http.%s.jwt_authn.allowed", hp);
    st->denied = mp_stats_counterf(reg, "http.%s.jwt_authn.denied", hp);
    st->cors_bypassed = mp_stats_counterf(reg, "http.%s.jwt_authn.cors_preflight_bypassed", hp);
    struct mp_jwt_authn_stats *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->stats, &expected, st)) {
        free(st);
        return expected;
    }
    return st;
}

static void count(struct mp_counter *c, const struct mp_http_stream *s)
{
    if (c)
        mp_counter_inc(c, s->worker ? s->worker->index : 0, 1);
}

static bool is_cors_preflight(const struct mp_headers *h)
{
    const char *m = mp_headers_value(h, ":method");
    const char *origin = mp_headers_value(h, "origin");
    const char *acrm = mp_headers_value(h, "access-control-request-method");
    return m && strcmp(m, "OPTIONS") == 0 && origin && *origin && acrm && *acrm;
}

/*
 * The requirement for this request: a PerRouteConfig on its route first,
 * else the first matching rule. Returns 0 (with *req possibly NULL: nothing
 * required), 1 when the filter is off for the route, or < 0 when the route
 * names a requirement that does not exist.
 */
static int find_requirement(struct mp_http_filter_ctx *f, const struct mp_request_view *v,
                            const struct mp_jwt_req **req)
{
    const struct mp_jwt_authn_config *c = f->config;
    struct mp_http_stream *s = f->stream;
    const char *name = s->hcm->filters[f->index].name;
    const struct mp_typed_config *tc = mp_request_view_own_config(s, v, name, JWT_FILTER_NAME);
    if (tc) {
        if (tc->disabled)
            return 1;
        if (mp_typed_config_type_is(tc, PER_ROUTE_TYPE)) {
            bool disabled = false;
            int rc = mp_jwt_authn_per_route(c, tc, &disabled, req);
            if (rc < 0)
                return rc;
            if (disabled)
                return 1;
            if (*req)
                return 0;
        }
    }
    *req = mp_jwt_authn_config_match(c, &v->rq);
    return 0;
}

/* Envoy's realm: the request's URI without its query. */
static int www_authenticate(const struct mp_headers *h, enum mp_jwt_status st,
                            struct mp_headers *out)
{
    const char *scheme = mp_headers_value(h, ":scheme");
    const char *host = mp_headers_value(h, ":authority");
    const char *path = mp_headers_value(h, ":path");
    if (!host)
        host = mp_headers_value(h, "host");
    size_t plen = path ? strcspn(path, "?") : 0;
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "Bearer realm=\"%s://%s%.*s\"%s", scheme ? scheme : "http",
                     host ? host : "", (int)MP_MIN(plen, 512), path ? path : "",
                     st == MP_JWT_MISSED ? "" : ", error=\"invalid_token\"");
    if (n < 0)
        return MP_ERR_INVAL;
    return mp_headers_add(out, "www-authenticate", 16, buf, MP_MIN((size_t)n, sizeof(buf) - 1));
}

static int deny(struct mp_http_filter_ctx *f, const struct mp_headers *req, enum mp_jwt_status st)
{
    const struct mp_jwt_authn_config *c = f->config;
    int code = st == MP_JWT_AUDIENCE_NOT_ALLOWED ? 403 : 401;
    const char *body = c->strip_failure_response ? "" : mp_jwt_status_str(st);
    struct mp_headers extra;
    mp_headers_init(&extra);
    if (!c->strip_failure_response)
        (void)www_authenticate(req, st, &extra); /* out of memory: reply without it */
    int r = mp_filter_send_reply(f, code, &extra, body, strlen(body), MP_RF_UNAUTHORIZED);
    mp_headers_clear(&extra);
    return r;
}

/* A claim as a header value: strings as they are, numbers and bools as written,
 * arrays of those joined with ','. Returns the length written, or -1. */
static int claim_text(const struct mp_json *v, char *buf, size_t cap)
{
    size_t o = 0;
    const struct mp_json *one[1] = {v};
    const struct mp_json *const *items = one;
    size_t n = 1;
    if (v->type == MP_JSON_ARRAY) {
        items = (const struct mp_json *const *)v->u.arr.items;
        n = v->u.arr.n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mp_json *it = items[i];
        const char *s;
        size_t l;
        if (it->type == MP_JSON_STRING || it->type == MP_JSON_NUMBER) {
            s = it->u.str.s;
            l = it->u.str.len;
        } else if (it->type == MP_JSON_BOOL) {
            s = it->u.boolean ? "true" : "false";
            l = strlen(s);
        } else {
            return -1;
        }
        if (memchr(s, '\r', l) || memchr(s, '\n', l) || memchr(s, '\0', l))
            return -1; /* never let a claim split a header */
        if (o + l + 1 >= cap)
            return -1;
        if (i)
            buf[o++] = ',';
        memcpy(buf + o, s, l);
        o += l;
    }
    buf[o] = '\0';
    return (int)o;
}

/* Stores doc under key on the stream (taking it; freed here on failure). */
static int meta_put(struct jwt_state *state, const char *key, struct mp_json_doc *doc)
{
    struct jwt_meta *m = realloc(state->meta, (state->n_meta + 1) * sizeof(*m));
    if (!m) {
        mp_json_doc_free(doc);
        return MP_ERR_NOMEM;
    }
    state->meta = m;
    m[state->n_meta++] = (struct jwt_meta){key, doc};
    return 0;
}

/*
 * normalize_payload_in_metadata: a space-delimited string claim ("scope":
 * "a b") becomes a list (["a", "b"]) so that metadata matchers can match
 * one entry. The payload doc is this stream's own, so its nodes can change.
 */
static int normalize_claims(const struct mp_jwt_provider *p, struct mp_json_doc *doc)
{
    struct mp_json *root = (struct mp_json *)mp_json_doc_root(doc);
    for (size_t i = 0; i < p->n_space_claims; i++) {
        for (size_t k = 0; k < root->u.obj.n; k++) {
            struct mp_json_member *mem = &root->u.obj.members[k];
            if (strcmp(mem->key, p->space_claims[i]) != 0 || mem->value->type != MP_JSON_STRING)
                continue;
            const char *v = mem->value->u.str.s;
            struct mp_json *arr = mp_json_node_new(doc, MP_JSON_ARRAY, NULL, 0, 0);
            if (!arr)
                return MP_ERR_NOMEM;
            for (size_t at = 0; v[at];) {
                while (v[at] == ' ')
                    at++;
                size_t n = strcspn(v + at, " ");
                if (n == 0)
                    break;
                struct mp_json *it = mp_json_node_new(doc, MP_JSON_STRING, v + at, n, 0);
                if (!it || mp_json_array_append(doc, arr, it) < 0)
                    return MP_ERR_NOMEM;
                at += n;
            }
            mem->value = arr;
        }
    }
    return 0;
}

/* failed_status_in_metadata: {"code": <status>, "message": "<text>"}. */
static int put_failed_status(struct jwt_state *state, const struct mp_jwt_eval *e)
{
    const struct mp_jwt_provider *p = e->failed_provider;
    if (!state || !p || !p->failed_status_in_metadata)
        return 0;
    char text[256];
    int n = snprintf(text, sizeof(text), "{\"code\":%d,\"message\":\"%s\"}", (int)e->failed_status,
                     mp_jwt_status_str(e->failed_status));
    struct mp_json_doc *doc;
    if (n < 0 || (size_t)n >= sizeof(text) || mp_json_parse(text, (size_t)n, NULL, &doc, NULL) < 0)
        return MP_ERR_NOMEM;
    return meta_put(state, p->failed_status_in_metadata, doc);
}

/* Forwards what the verified tokens carry, and keeps their payloads as metadata. */
static int apply_outputs(struct mp_http_filter_ctx *f, struct mp_headers *h, struct mp_jwt_eval *e)
{
    struct jwt_state *state = f->state;
    for (size_t i = 0; i < e->n_ok; i++) {
        struct mp_jwt_verified *v = &e->ok[i];
        const struct mp_jwt_provider *p = v->provider;
        int rc = 0;
        if (p->payload_header) {
            size_t l = v->jwt.payload_b64_len;
            char *val = malloc(l + 3);
            if (!val)
                return MP_ERR_NOMEM;
            memcpy(val, v->jwt.payload_b64, l);
            while (p->pad_payload && l % 4)
                val[l++] = '=';
            rc = mp_headers_set(h, p->payload_header, val, l);
            free(val);
        }
        for (size_t k = 0; k < p->n_claims && rc == 0; k++) {
            const struct mp_json *cl = mp_jwt_claim(&v->jwt, p->claims[k].claim);
            char buf[4096];
            int n = cl ? claim_text(cl, buf, sizeof(buf)) : -1;
            if (n >= 0)
                rc = mp_headers_set(h, p->claims[k].header, buf, (size_t)n);
        }
        if (rc < 0)
            return rc;
        if (p->payload_in_metadata && state) {
            if ((rc = normalize_claims(p, v->jwt.payload_doc)) < 0)
                return rc;
            /* the stream owns the payload now */
            struct mp_json_doc *doc = v->jwt.payload_doc;
            v->jwt.payload_doc = NULL;
            if ((rc = meta_put(state, p->payload_in_metadata, doc)) < 0)
                return rc;
        }
        if (p->header_in_metadata && state) {
            struct mp_json_doc *doc = v->jwt.header_doc;
            v->jwt.header_doc = NULL;
            if ((rc = meta_put(state, p->header_in_metadata, doc)) < 0)
                return rc;
        }
    }
    /* token headers go last: the tokens themselves were copied at parse time */
    for (size_t i = 0; i < e->n_ok; i++) {
        const struct mp_jwt_verified *v = &e->ok[i];
        if (!v->provider->forward && v->loc->kind == MP_JWT_LOC_HEADER)
            mp_headers_remove(h, v->loc->name);
    }
    return 0;
}

static int jwt_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                  bool end_stream)
{
    (void)end_stream;
    struct mp_http_stream *s = f->stream;
    const struct mp_jwt_authn_config *c = f->config;
    const struct mp_jwt_authn_stats *st = config_stats(c, s);

    if (c->bypass_cors_preflight && is_cors_preflight(headers)) {
        count(st ? st->cors_bypassed : NULL, s);
        return MP_FILTER_CONTINUE;
    }
    struct mp_request_view v;
    if (mp_request_view_init(&v, headers) < 0)
        return mp_http_filter_local_reply(f, 500, "out of memory", NULL);
    const struct mp_jwt_req *req = NULL;
    int found = find_requirement(f, &v, &req);
    mp_request_view_clear(&v);
    if (found == 1)
        return MP_FILTER_CONTINUE; /* disabled on this route */
    if (found < 0) {
        count(st ? st->denied : NULL, s);
        static const char msg[] = "Failed JWT authentication: requirement_name not found";
        return mp_filter_send_reply(f, 403, NULL, msg, sizeof(msg) - 1, MP_RF_UNAUTHORIZED);
    }
    if (!req) {
        count(st ? st->allowed : NULL, s);
        return MP_FILTER_CONTINUE;
    }
    struct mp_jwt_eval e = {.headers = headers, .now = (uint64_t)(mp_wall_us() / 1000000)};
    enum mp_jwt_status status = mp_jwt_req_eval(req, c, &e);
    int result = MP_FILTER_CONTINUE;
    if ((status == MP_JWT_OK && apply_outputs(f, headers, &e) < 0) ||
        put_failed_status(f->state, &e) < 0) {
        mp_jwt_eval_clear(&e);
        return mp_http_filter_local_reply(f, 500, "out of memory", NULL);
    }
    mp_jwt_eval_clear(&e);
    if (status == MP_JWT_OK) {
        count(st ? st->allowed : NULL, s);
    } else {
        count(st ? st->denied : NULL, s);
        result = deny(f, headers, status);
    }
    return result;
}

static void jwt_destroy(struct mp_http_filter_ctx *f)
{
    struct jwt_state *state = f->state;
    if (!state)
        return;
    for (size_t i = 0; i < state->n_meta; i++)
        mp_json_doc_free(state->meta[i].doc);
    free(state->meta);
    state->meta = NULL;
    state->n_meta = 0;
}

const struct mp_http_filter_ops mp_http_filter_jwt_authn = {
    .name = JWT_FILTER_NAME,
    .config_type = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    .parse = jwt_parse,
    .config_free = jwt_config_free,
    .state_size = sizeof(struct jwt_state),
    .on_request_headers = jwt_on_request_headers,
    .destroy = jwt_destroy,
};

const struct mp_json *mp_jwt_authn_metadata(const struct mp_http_stream *s, const char *key)
{
    if (!s || !s->hcm || !s->filters)
        return NULL;
    for (uint32_t i = 0; i < s->n_filters && i < s->hcm->n_filters; i++) {
        if (s->hcm->filters[i].ops != &mp_http_filter_jwt_authn)
            continue;
        const struct jwt_state *state = s->filters[i].state;
        /* the last payload stored under a key wins, as a metadata write would */
        for (size_t k = state ? state->n_meta : 0; k-- > 0;)
            if (strcmp(state->meta[k].key, key) == 0)
                return mp_json_doc_root(state->meta[k].doc);
    }
    return NULL;
}

const struct mp_json *mp_jwt_authn_metadata_path(const struct mp_http_stream *s, const char *key,
                                                 const char *const *path, size_t n)
{
    const struct mp_json *node = mp_jwt_authn_metadata(s, key);
    for (size_t i = 0; node && i < n; i++)
        node = mp_json_object_get(node, path[i]);
    return node;
}
