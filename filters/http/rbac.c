/*
 * rbac.c: envoy.filters.http.rbac. The config (engines, stat prefixes) is
 * immutable and shared by all workers; its counters are registered by name
 * on the first request (the HCM stat prefix is only known then) and cached
 * in the config with an atomic pointer, so later requests take no lock.
 */
#include "rbac.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "filters/http/request_view.h"
#include "filters/http/route_config_cache.h"
#include "filters/rbac_engines.h"
#include "proxy/conn.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/rbac.h"
#include "proxy/stats.h"
#include "proxy/tls_transport.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

typedef Envoy__Extensions__Filters__Http__Rbac__V3__RBAC RbacPb;
typedef Envoy__Extensions__Filters__Http__Rbac__V3__RBACPerRoute RbacPerRoutePb;

#define RBAC_FILTER_NAME "envoy.filters.http.rbac"
#define PER_ROUTE_TYPE   "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"

struct rbac_config {
    struct mp_rbac_engines engines;
    char *rules_prefix;
    char *shadow_prefix;
    /* resolved on first use; the only mutable part, written once by CAS */
    _Atomic(struct mp_rbac_counters *) stats;
    struct mp_route_config_cache *routes; /* parsed RBACPerRoute configs (listener level only) */
};

/* Per-route configs this many distinct ones at most are kept; more are decoded per request. */
#define ROUTE_CACHE_SLOTS 64

static void config_clear(struct rbac_config *c)
{
    mp_rbac_engines_clear(&c->engines);
    free(c->rules_prefix);
    free(c->shadow_prefix);
    free(atomic_load(&c->stats));
    mp_route_config_cache_free(c->routes);
}

static void rbac_config_free(void *p)
{
    if (!p)
        return;
    config_clear(p);
    free(p);
}

static int config_from_pb(const RbacPb *pb, struct rbac_config *c, char **err)
{
    int rc = mp_rbac_engines_from_proto(&c->engines, pb->rules, pb->shadow_rules, pb->matcher != NULL,
                                        pb->shadow_matcher != NULL, err);
    if (rc < 0)
        return rc;
    c->rules_prefix = strdup(pb->rules_stat_prefix ? pb->rules_stat_prefix : "");
    c->shadow_prefix = strdup(pb->shadow_rules_stat_prefix ? pb->shadow_rules_stat_prefix : "");
    if (!c->rules_prefix || !c->shadow_prefix)
        return MP_ERR_NOMEM;
    return 0;
}

static int per_route_parse(const uint8_t *data, size_t len, void **out);

static int rbac_parse(const uint8_t *data, size_t len, void **out, char **err)
{
    RbacPb *pb = envoy__extensions__filters__http__rbac__v3__rbac__unpack(NULL, len, data);
    if (!pb)
        return mp_set_err(err, ": cannot decode envoy.extensions.filters.http.rbac.v3.RBAC");
    int rc = MP_ERR_NOMEM;
    struct rbac_config *c = calloc(1, sizeof(*c));
    if (c)
        rc = config_from_pb(pb, c, err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    if (rc == 0) {
        c->routes = mp_route_config_cache_new(ROUTE_CACHE_SLOTS, per_route_parse, rbac_config_free);
        if (!c->routes)
            rc = MP_ERR_NOMEM;
    }
    if (rc < 0) {
        rbac_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* This config's counters, registered on the first request (the HCM prefix is known then). */
static const struct mp_rbac_counters *config_stats(const struct rbac_config *cc,
                                                   const struct mp_http_stream *s)
{
    struct rbac_config *c = (struct rbac_config *)cc; /* only the stats cache is written */
    return mp_rbac_counters_get(&c->stats, s->worker ? s->worker->stats : NULL, c->rules_prefix,
                                c->shadow_prefix, "http.%s.rbac.",
                                s->hcm->stat_prefix ? s->hcm->stat_prefix : "");
}

/*
 * The downstream remote address as Envoy's HCM computes it: the connection
 * peer with use_remote_address and no trusted hops, else the x-forwarded-for
 * entry xff_num_trusted_hops from the right (our own append counted, which
 * is what Envoy's "hops - 1 before appending" amounts to). NULL: use the peer.
 */
static const struct sockaddr *xff_remote(const struct mp_http_stream *s,
                                         struct sockaddr_storage *ss)
{
    const struct mp_hcm_config *hcm = s->hcm;
    if (hcm->use_remote_address && hcm->xff_num_trusted_hops == 0)
        return NULL;
    const char *xff = mp_headers_value(&s->req, "x-forwarded-for");
    if (!xff)
        return NULL;
    /* walk entries from the right */
    size_t end = strlen(xff);
    uint32_t skip = hcm->xff_num_trusted_hops;
    for (;;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        if (skip == 0) {
            while (start < end && (xff[start] == ' ' || xff[start] == '\t'))
                start++;
            while (end > start && (xff[end - 1] == ' ' || xff[end - 1] == '\t'))
                end--;
            char ip[64];
            size_t n = end - start;
            if (n == 0 || n >= sizeof(ip))
                return NULL;
            memcpy(ip, xff + start, n);
            ip[n] = '\0';
            memset(ss, 0, sizeof(*ss));
            struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
            struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
            if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                return (const struct sockaddr *)ss;
            }
            if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                return (const struct sockaddr *)ss;
            }
            return NULL;
        }
        if (start == 0)
            return NULL; /* fewer entries than trusted hops */
        skip--;
        end = start - 1;
    }
}

/* An RBACPerRoute into c (zeroed); one without rbac leaves c empty: the filter is off. */
static int per_route_fill(const uint8_t *data, size_t len, struct rbac_config *c)
{
    RbacPerRoutePb *pb =
        envoy__extensions__filters__http__rbac__v3__rbacper_route__unpack(NULL, len, data);
    if (!pb)
        return MP_ERR_PARSE;
    int rc = pb->rbac ? config_from_pb(pb->rbac, c, NULL) : 0;
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    return rc;
}

static int per_route_parse(const uint8_t *data, size_t len, void **out)
{
    struct rbac_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    int rc = per_route_fill(data, len, c);
    if (rc < 0) {
        rbac_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/*
 * Per-route RBACPerRoute: *use gets the config to apply (an empty one turns
 * the filter off). Returns 0, or < 0 when the per-route config does not
 * translate (the caller fails closed).
 */
static int route_override(struct mp_http_filter_ctx *f, const struct mp_request_view *v,
                          const struct rbac_config **use, struct rbac_config *tmp)
{
    struct mp_http_stream *s = f->stream;
    const char *name = s->hcm->filters[f->index].name;
    const struct mp_typed_config *tc = mp_request_view_own_config(s, v, name, RBAC_FILTER_NAME);
    if (!tc)
        return 0;
    if (tc->disabled) {
        *use = tmp; /* empty: nothing enforced */
        return 0;
    }
    if (!mp_typed_config_type_is(tc, PER_ROUTE_TYPE))
        return 0;
    const struct rbac_config *base = f->config;
    void *cached = NULL;
    if (mp_route_config_cache_get(base->routes, tc, &cached) == 0) {
        if (!cached)
            return MP_ERR_INVAL;
        *use = cached;
        return 0;
    }
    /* the cache is full: decode for this request */
    int rc = per_route_fill(tc->value, tc->value_len, tmp);
    if (rc == 0)
        *use = tmp;
    return rc;
}

static int rbac_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                   bool end_stream)
{
    (void)end_stream;
    struct mp_http_stream *s = f->stream;
    const struct rbac_config *base = f->config;
    const struct mp_rbac_counters *st = config_stats(base, s);
    unsigned slot = s->worker ? s->worker->index : 0;

    struct mp_request_view v;
    if (mp_request_view_init(&v, headers) < 0)
        return mp_http_filter_local_reply(f, 500, "out of memory", NULL);
    const struct rbac_config *c = base;
    struct rbac_config tmp = {0};
    if (route_override(f, &v, &c, &tmp) < 0) {
        config_clear(&tmp);
        mp_request_view_clear(&v);
        /* fail closed: a broken authorization config must not let requests in */
        return mp_http_filter_local_reply(f, 403, "RBAC: access denied", "rbac_config_error");
    }
    int result = MP_FILTER_CONTINUE;
    if (!c || (!c->engines.rules && !c->engines.shadow))
        goto done;

    const struct mp_conn *conn = mp_http_stream_downstream(s);
    struct sockaddr_storage xff;
    struct mp_rbac_request rq = {
        .http = &v.rq,
        .direct_remote = (const struct sockaddr *)&conn->src,
        .remote = xff_remote(s, &xff),
        .local = (const struct sockaddr *)&conn->dst,
        .sni = conn->tls ? mp_tls_transport_sni(conn->tls) : NULL,
        .peer = conn->tls ? mp_tls_transport_peer(conn->tls) : NULL,
    };
    struct mp_rbac_result res;
    if (!mp_rbac_engines_evaluate(&c->engines, st, slot, &rq, &res))
        result = mp_http_filter_local_reply(f, 403, "RBAC: access denied",
                                            "rbac_access_denied_matched_policy");
done:
    config_clear(&tmp);
    mp_request_view_clear(&v);
    return result;
}

const struct mp_http_filter_ops mp_http_filter_rbac = {
    .name = RBAC_FILTER_NAME,
    .config_type = "envoy.extensions.filters.http.rbac.v3.RBAC",
    .parse = rbac_parse,
    .config_free = rbac_config_free,
    .on_request_headers = rbac_on_request_headers,
};
