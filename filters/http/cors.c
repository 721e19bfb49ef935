/*
 * cors.c: envoy.filters.http.cors (envoy.extensions.filters.http.cors.v3.Cors).
 *
 * The filter's own config is empty; the policy is a per-route
 * typed_per_filter_config CorsPolicy (route, else virtual host, else route
 * configuration), which is how istiod sends a VirtualService corsPolicy.
 * As in Envoy:
 *   - no policy, no Origin header, or filter_enabled says off: nothing;
 *   - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *     from an allowed origin is answered here, 200 with the allow headers;
 *     from another origin it goes upstream (forward_not_matching_preflights,
 *     default true) or gets 403;
 *   - any other request from an allowed origin gets
 *     access-control-allow-origin (+ credentials, expose headers) on its
 *     response.
 * The deprecated VirtualHost.cors / RouteAction.cors fields are refused
 * where routes are translated, so no policy goes unnoticed.
 */
#include "filters/http/cors.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "filters/http/filter_reply.h"
#include "filters/http/request_view.h"
#include "filters/http/route_config_cache.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/rand.h"
#include "xds/xds_translate_listener.h"

#define CORS_NAME         "envoy.filters.http.cors"
#define POLICY_TYPE       "envoy.extensions.filters.http.cors.v3.CorsPolicy"
#define ROUTE_CACHE_SLOTS 64

typedef Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy CorsPolicy;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;

struct cors_config {
    struct mp_route_config_cache *routes; /* parsed per-route policies */
};

/* A decoded CorsPolicy with its regex origins compiled (re[i] for matcher i). */
struct cors_policy {
    CorsPolicy *pb;
    pcre2_code **re;
};

struct cors_state {
    const struct cors_policy *pol; /* set when the response gets CORS headers */
    struct cors_policy *owned;     /* decoded for this request only (cache full) */
    char *origin;                  /* the allowed Origin, echoed back */
};

static void policy_free(void *p)
{
    struct cors_policy *pol = p;
    if (!pol)
        return;
    if (pol->re) {
        for (size_t i = 0; i < pol->pb->n_allow_origin_string_match; i++)
            pcre2_code_free(pol->re[i]);
        free(pol->re);
    }
    envoy__extensions__filters__http__cors__v3__cors_policy__free_unpacked(pol->pb, NULL);
    free(pol);
}

static int policy_parse(const uint8_t *data, size_t len, void **out)
{
    *out = NULL;
    struct cors_policy *pol = calloc(1, sizeof(*pol));
    if (!pol)
        return MP_ERR_NOMEM;
    pol->pb = envoy__extensions__filters__http__cors__v3__cors_policy__unpack(NULL, len, data);
    if (!pol->pb) {
        free(pol);
        return MP_ERR_INVAL;
    }
    size_t n = pol->pb->n_allow_origin_string_match;
    pol->re = calloc(n ? n : 1, sizeof(*pol->re));
    if (!pol->re) {
        policy_free(pol);
        return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const StringMatcher *m = pol->pb->allow_origin_string_match[i];
        if (m->match_pattern_case !=
            ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX)
            continue;
        if (!m->safe_regex || !m->safe_regex->regex) {
            policy_free(pol);
            return MP_ERR_INVAL;
        }
        int code;
        PCRE2_SIZE off;
        pol->re[i] =
            pcre2_compile((PCRE2_SPTR)m->safe_regex->regex, PCRE2_ZERO_TERMINATED,
                          PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &code, &off, NULL);
        if (!pol->re[i]) {
            policy_free(pol);
            return MP_ERR_INVAL;
        }
    }
    *out = pol;
    return 0;
}

static bool ends_with(const char *s, size_t n, const char *suf, bool icase)
{
    size_t m = strlen(suf);
    return m <= n && (icase ? strncasecmp(s + n - m, suf, m) : strncmp(s + n - m, suf, m)) == 0;
}

static bool contains(const char *s, size_t n, const char *needle, bool icase)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if ((icase ? strncasecmp(s + i, needle, m) : strncmp(s + i, needle, m)) == 0)
            return true;
    return false;
}

static bool origin_matches(const StringMatcher *m, const pcre2_code *re, const char *o, size_t n)
{
    bool ic = m->ignore_case;
    switch (m->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        return strlen(m->exact) == n &&
               (ic ? strncasecmp(o, m->exact, n) : strncmp(o, m->exact, n)) == 0;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX: {
        size_t p = strlen(m->prefix);
        return p <= n && (ic ? strncasecmp(o, m->prefix, p) : strncmp(o, m->prefix, p)) == 0;
    }
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        return ends_with(o, n, m->suffix, ic);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        return contains(o, n, m->contains, ic);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX: {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md)
            return false; /* no memory: not allowed, the safe side */
        int rc = pcre2_match(re, (PCRE2_SPTR)o, n, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return rc >= 0;
    }
    default: return false; /* custom matchers: nothing is allowed by them */
    }
}

static bool origin_allowed(const struct cors_policy *pol, const char *o, size_t n)
{
    for (size_t i = 0; i < pol->pb->n_allow_origin_string_match; i++)
        if (origin_matches(pol->pb->allow_origin_string_match[i], pol->re[i], o, n))
            return true;
    return false;
}

/* filter_enabled (default: on for everyone). The runtime key is not looked
 * up: meshproxy's runtime has no such keys, so its default value applies. */
static bool enabled(const CorsPolicy *pb)
{
    if (!pb->filter_enabled || !pb->filter_enabled->default_value)
        return true;
    const Envoy__Type__V3__FractionalPercent *fp = pb->filter_enabled->default_value;
    uint64_t den =
        fp->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION ? 1000000
        : fp->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND
            ? 10000
            : 100;
    return fp->numerator >= den || mp_rand_u64() % den < fp->numerator;
}

static int cors_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err; /* Cors has no fields */
    struct cors_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    c->routes = mp_route_config_cache_new(ROUTE_CACHE_SLOTS, policy_parse, policy_free);
    if (!c->routes) {
        free(c);
        return MP_ERR_NOMEM;
    }
    *config = c;
    return 0;
}

static void cors_config_free(void *config)
{
    struct cors_config *c = config;
    if (!c)
        return;
    mp_route_config_cache_free(c->routes);
    free(c);
}

/* The policy for this request's route, or NULL. */
static const struct cors_policy *route_policy(struct mp_http_filter_ctx *f,
                                              const struct mp_request_view *v)
{
    struct mp_http_stream *s = f->stream;
    struct cors_state *st = f->state;
    const char *name = s->hcm->filters[f->index].name;
    const struct mp_typed_config *tc = mp_request_view_own_config(s, v, name, CORS_NAME);
    if (!tc || tc->disabled || !mp_typed_config_type_is(tc, POLICY_TYPE))
        return NULL;
    const struct cors_config *c = f->config;
    void *cached = NULL;
    if (mp_route_config_cache_get(c->routes, tc, &cached) == 0)
        return cached; /* NULL: the bytes did not decode */
    if (policy_parse(tc->value, tc->value_len, &cached) < 0)
        return NULL;
    st->owned = cached;
    return cached;
}

static int add_nonempty(struct mp_headers *h, const char *name, const char *value)
{
    return value && *value ? mp_headers_set_cstr(h, name, value) : 0;
}

static int preflight_reply(struct mp_http_filter_ctx *f, const CorsPolicy *pb, const char *origin)
{
    struct mp_headers h;
    mp_headers_init(&h);
    int rc = mp_headers_set_cstr(&h, "access-control-allow-origin", origin);
    if (rc == 0 && pb->allow_credentials && pb->allow_credentials->value)
        rc = mp_headers_set_cstr(&h, "access-control-allow-credentials", "true");
    if (rc == 0)
        rc = add_nonempty(&h, "access-control-allow-methods", pb->allow_methods);
    if (rc == 0)
        rc = add_nonempty(&h, "access-control-allow-headers", pb->allow_headers);
    if (rc == 0)
        rc = add_nonempty(&h, "access-control-max-age", pb->max_age);
    /* out of memory: the reply goes without its headers and the browser
     * refuses it, which is the safe failure */
    int r = mp_filter_send_reply(f, 200, &h, "", 0, 0);
    mp_headers_clear(&h);
    return r;
}

static int cors_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                   bool end_stream)
{
    (void)end_stream;
    struct cors_state *st = f->state;
    const char *origin = mp_headers_value(headers, "origin");
    if (!origin || !*origin)
        return MP_FILTER_CONTINUE;
    struct mp_request_view v;
    if (mp_request_view_init(&v, headers) < 0)
        return MP_FILTER_CONTINUE; /* no memory: no CORS headers, the browser refuses */
    int result = MP_FILTER_CONTINUE;
    const struct cors_policy *pol = route_policy(f, &v);
    if (!pol || !enabled(pol->pb))
        goto done;
    const char *method = mp_headers_value(headers, ":method");
    const char *acrm = mp_headers_value(headers, "access-control-request-method");
    bool preflight = method && strcmp(method, "OPTIONS") == 0 && acrm && *acrm;
    bool allowed = origin_allowed(pol, origin, strlen(origin));
    if (preflight) {
        if (allowed)
            result = preflight_reply(f, pol->pb, origin);
        else if (pol->pb->forward_not_matching_preflights &&
                 !pol->pb->forward_not_matching_preflights->value)
            result = mp_filter_send_reply(f, 403, NULL, "", 0, 0);
        goto done;
    }
    if (allowed && (st->origin = strdup(origin)) != NULL)
        st->pol = pol;
done:
    mp_request_view_clear(&v);
    return result;
}

static int cors_on_response_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                    bool end_stream)
{
    (void)end_stream;
    struct cors_state *st = f->state;
    if (!st->pol)
        return MP_FILTER_CONTINUE;
    const CorsPolicy *pb = st->pol->pb;
    /* out of memory on one of these: the browser refuses the response */
    mp_headers_set_cstr(headers, "access-control-allow-origin", st->origin);
    if (pb->allow_credentials && pb->allow_credentials->value)
        mp_headers_set_cstr(headers, "access-control-allow-credentials", "true");
    add_nonempty(headers, "access-control-expose-headers", pb->expose_headers);
    return MP_FILTER_CONTINUE;
}

static void cors_destroy(struct mp_http_filter_ctx *f)
{
    struct cors_state *st = f->state;
    free(st->origin);
    policy_free(st->owned);
    memset(st, 0, sizeof(*st));
}

const struct mp_http_filter_ops mp_http_filter_cors = {
    .name = CORS_NAME,
    .config_type = "envoy.extensions.filters.http.cors.v3.Cors",
    .parse = cors_parse,
    .config_free = cors_config_free,
    .state_size = sizeof(struct cors_state),
    .on_request_headers = cors_on_request_headers,
    .on_response_headers = cors_on_response_headers,
    .destroy = cors_destroy,
};
