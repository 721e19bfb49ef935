/*
 * xds_translate_route.c: RouteConfiguration (protobuf-c) -> mp_route_config.
 *
 * Each helper translates one message into the config's arena and, on error,
 * sets *err relative to that message ("regex: invalid regex ..."); its caller
 * prefixes the field it came from, so the final message carries the whole
 * path ("virtual_hosts[0].routes[3].match.safe_regex.regex: ..."). Nothing
 * needs undoing on error: the arena goes with the config.
 */
#include "xds/xds_translate_route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/route_index.h"
#include "proxy/route_regex.h"
#include "proxy/route_retry.h"

/* Envoy still accepts the deprecated fields (exact_match, max_grpc_timeout,
 * ...) and control planes still send them, so this file reads them. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define DEFAULT_TIMEOUT_MS      15000
#define DEFAULT_MAX_DIRECT_BODY 4096

typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Config__Route__V3__RouteMatch RouteMatch;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__HeaderMatcher HeaderMatcher;
typedef Envoy__Config__Route__V3__QueryParameterMatcher QueryParameterMatcher;
typedef Envoy__Config__Route__V3__RetryPolicy RetryPolicy;
typedef Envoy__Config__Route__V3__RedirectAction RedirectAction;
typedef Envoy__Config__Route__V3__DirectResponseAction DirectResponseAction;
typedef Envoy__Config__Route__V3__WeightedCluster__ClusterWeight ClusterWeight;
typedef Envoy__Config__Route__V3__RouteAction__HashPolicy HashPolicy;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;
typedef Envoy__Type__Matcher__V3__RegexMatcher RegexMatcher;
typedef Envoy__Type__Matcher__V3__RegexMatchAndSubstitute RegexMatchAndSubstitute;
typedef Envoy__Config__Core__V3__HeaderValueOption HeaderValueOption;
typedef Envoy__Config__Core__V3__DataSource DataSource;

static int nomem(char **err)
{
    mp_set_err(err, "out of memory");
    return MP_ERR_NOMEM;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Arena copy; NULL becomes "". */
static char *dup(struct mp_route_config *cfg, const char *s, bool lower)
{
    if (s == NULL)
        s = "";
    return mp_route_arena_strndup(cfg, s, strlen(s), lower);
}

/* Turns a bare message ("invalid regex ...") into "field: message". */
static void field_err(char **err, const char *field)
{
    if (err == NULL || *err == NULL)
        return;
    char *m = *err;
    *err = NULL;
    mp_set_err(err, "%s: %s", field, m);
    free(m);
}

/* Duration -> ms; durations Envoy bounds at >= 0. */
static int duration_ms(const Google__Protobuf__Duration *d, int64_t *ms, char **err)
{
    if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999)
        return mp_set_err(err, ": invalid duration (must be >= 0)");
    if (d->seconds > INT64_MAX / 1000 - 1)
        return mp_set_err(err, ": duration too large");
    *ms = d->seconds * 1000 + d->nanos / 1000000;
    return 0;
}

/* An optional Duration field: -1 when unset. */
static int opt_duration(const Google__Protobuf__Duration *d, const char *field, int64_t *ms,
                        char **err)
{
    *ms = -1;
    if (d == NULL)
        return 0;
    int rc = duration_ms(d, ms, err);
    if (rc != 0)
        mp_err_prefix(err, "%s", field);
    return rc;
}

/* ---- matchers --------------------------------------------------------------- */

static int regex_from_proto(struct mp_route_config *cfg, const RegexMatcher *pb, bool full,
                            const struct mp_regex **out, char **err)
{
    if (pb == NULL || empty(pb->regex))
        return mp_set_err(err, "regex: must not be empty");
    *out = mp_regex_compile(cfg, pb->regex, full, err);
    if (*out == NULL) {
        field_err(err, "regex");
        return MP_ERR_INVAL;
    }
    return 0;
}

static int rewrite_from_proto(struct mp_route_config *cfg, const RegexMatchAndSubstitute *pb,
                              const struct mp_regex **re, const char **subst, char **err)
{
    int rc = regex_from_proto(cfg, pb->pattern, false, re, err);
    if (rc != 0) {
        mp_err_prefix(err, "pattern");
        return rc;
    }
    *subst = mp_regex_subst_from_re2(cfg, pb->substitution ? pb->substitution : "", err);
    if (*subst == NULL) {
        field_err(err, "substitution");
        return MP_ERR_INVAL;
    }
    return 0;
}

/* A literal string matcher value: lowercased when ignore_case. */
static int literal(struct mp_route_config *cfg, struct mp_string_match *out,
                   enum mp_string_match_kind kind, const char *v, bool ignore_case,
                   bool allow_empty, const char *field, char **err)
{
    if (!allow_empty && empty(v))
        return mp_set_err(err, "%s: must not be empty", field);
    out->kind = kind;
    out->ignore_case = ignore_case;
    out->value = dup(cfg, v, ignore_case);
    if (out->value == NULL)
        return nomem(err);
    out->value_len = strlen(out->value);
    return 0;
}

int mp_string_match_from_proto(struct mp_route_config *cfg, const StringMatcher *pb,
                               struct mp_string_match *out, char **err)
{
    bool ic = pb->ignore_case;
    int rc;
    switch (pb->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        return literal(cfg, out, MP_STRING_MATCH_EXACT, pb->exact, ic, true, "exact", err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        return literal(cfg, out, MP_STRING_MATCH_PREFIX, pb->prefix, ic, false, "prefix", err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        return literal(cfg, out, MP_STRING_MATCH_SUFFIX, pb->suffix, ic, false, "suffix", err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        return literal(cfg, out, MP_STRING_MATCH_CONTAINS, pb->contains, ic, false, "contains",
                       err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
        out->kind = MP_STRING_MATCH_REGEX;
        rc = regex_from_proto(cfg, pb->safe_regex, true, &out->regex, err);
        if (rc != 0)
            mp_err_prefix(err, "safe_regex");
        return rc;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CUSTOM:
        return mp_set_err(err, "custom: custom string matchers are not supported");
    default:
        return mp_set_err(err, ": one of exact, prefix, suffix, contains, safe_regex is required");
    }
}

int mp_header_match_from_proto(struct mp_route_config *cfg, const HeaderMatcher *pb,
                               struct mp_header_match *out, char **err)
{
    if (empty(pb->name))
        return mp_set_err(err, "name: must not be empty");
    out->name = dup(cfg, pb->name, true);
    if (out->name == NULL)
        return nomem(err);
    out->name_len = strlen(out->name);
    out->invert = pb->invert_match;
    out->treat_missing_as_empty = pb->treat_missing_header_as_empty;
    out->kind = MP_HEADER_MATCH_STRING;
    int rc = 0;
    switch (pb->header_match_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
        return literal(cfg, &out->str, MP_STRING_MATCH_EXACT, pb->exact_match, false, true,
                       "exact_match", err);
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
        return literal(cfg, &out->str, MP_STRING_MATCH_PREFIX, pb->prefix_match, false, false,
                       "prefix_match", err);
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH:
        return literal(cfg, &out->str, MP_STRING_MATCH_SUFFIX, pb->suffix_match, false, false,
                       "suffix_match", err);
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_CONTAINS_MATCH:
        return literal(cfg, &out->str, MP_STRING_MATCH_CONTAINS, pb->contains_match, false, false,
                       "contains_match", err);
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH:
        out->str.kind = MP_STRING_MATCH_REGEX;
        rc = regex_from_proto(cfg, pb->safe_regex_match, true, &out->str.regex, err);
        if (rc != 0)
            mp_err_prefix(err, "safe_regex_match");
        return rc;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH:
        rc = mp_string_match_from_proto(cfg, pb->string_match, &out->str, err);
        if (rc != 0)
            mp_err_prefix(err, "string_match");
        return rc;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH:
        out->kind = MP_HEADER_MATCH_RANGE;
        out->range_start = pb->range_match->start;
        out->range_end = pb->range_match->end;
        return 0;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH:
        out->kind = MP_HEADER_MATCH_PRESENT;
        out->present = pb->present_match;
        return 0;
    default:
        /* No specifier: Envoy treats it as "header is present". */
        out->kind = MP_HEADER_MATCH_PRESENT;
        out->present = true;
        return 0;
    }
}

int mp_query_match_from_proto(struct mp_route_config *cfg, const QueryParameterMatcher *pb,
                              struct mp_query_match *out, char **err)
{
    if (empty(pb->name))
        return mp_set_err(err, "name: must not be empty");
    out->name = dup(cfg, pb->name, false);
    if (out->name == NULL)
        return nomem(err);
    out->name_len = strlen(out->name);
    if (pb->query_parameter_match_specifier_case ==
        ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH) {
        int rc = mp_string_match_from_proto(cfg, pb->string_match, &out->str, err);
        if (rc != 0)
            mp_err_prefix(err, "string_match");
        return rc;
    }
    /* present_match, or nothing: the parameter only has to be there. */
    out->present_only = true;
    return 0;
}

/* A list of header matchers; an error is prefixed "<field>[i]". */
static int header_matches(struct mp_route_config *cfg, HeaderMatcher *const *pb, size_t n,
                          const char *field, const struct mp_header_match **out, size_t *n_out,
                          char **err)
{
    struct mp_header_match *hm = mp_route_arena_alloc(cfg, n * sizeof(*hm));
    if (hm == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        int rc = mp_header_match_from_proto(cfg, pb[i], &hm[i], err);
        if (rc != 0) {
            mp_err_prefix(err, "%s[%zu]", field, i);
            return rc;
        }
    }
    *out = hm;
    *n_out = n;
    return 0;
}

/* A list of query parameter matchers; an error is prefixed "<field>[i]". */
static int query_matches(struct mp_route_config *cfg, QueryParameterMatcher *const *pb, size_t n,
                         const char *field, const struct mp_query_match **out, size_t *n_out,
                         char **err)
{
    struct mp_query_match *qm = mp_route_arena_alloc(cfg, n * sizeof(*qm));
    if (qm == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        int rc = mp_query_match_from_proto(cfg, pb[i], &qm[i], err);
        if (rc != 0) {
            mp_err_prefix(err, "%s[%zu]", field, i);
            return rc;
        }
    }
    *out = qm;
    *n_out = n;
    return 0;
}

static uint32_t denominator(Envoy__Type__V3__FractionalPercent__DenominatorType d)
{
    switch (d) {
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND: return 10000;
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION: return 1000000;
    default: return 100;
    }
}

static int match_from_proto(struct mp_route_config *cfg, const RouteMatch *pb,
                            struct mp_route_match *out, char **err)
{
    int rc;
    out->case_sensitive = pb->case_sensitive == NULL || pb->case_sensitive->value;
    const char *path = NULL;
    switch (pb->path_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
        out->kind = MP_PATH_PREFIX;
        path = pb->prefix;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
        out->kind = MP_PATH_EXACT;
        path = pb->path;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX:
        out->kind = MP_PATH_SEPARATED_PREFIX;
        path = pb->path_separated_prefix;
        /* Envoy's validation pattern: ^[^?#]+[^?#/]$ */
        if (path == NULL || strlen(path) < 2 || strpbrk(path, "?#") != NULL ||
            path[strlen(path) - 1] == '/')
            return mp_set_err(err,
                              "path_separated_prefix: \"%s\" must not contain '?' or '#' "
                              "nor end with '/'",
                              path ? path : "");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
        out->kind = MP_PATH_REGEX;
        rc = regex_from_proto(cfg, pb->safe_regex, true, &out->regex, err);
        if (rc != 0) {
            mp_err_prefix(err, "safe_regex");
            return rc;
        }
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_CONNECT_MATCHER:
        out->kind = MP_PATH_CONNECT;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_MATCH_POLICY:
        return mp_set_err(err, "path_match_policy: not supported");
    default:
        return mp_set_err(err, ": one of prefix, path, safe_regex, path_separated_prefix or "
                               "connect_matcher is required");
    }
    if (path != NULL || out->kind == MP_PATH_PREFIX || out->kind == MP_PATH_EXACT) {
        out->path = dup(cfg, path, false);
        if (out->path == NULL)
            return nomem(err);
        out->path_len = strlen(out->path);
    }
    if (pb->runtime_fraction != NULL) {
        /* No runtime here: the default value decides, as in Envoy with no
         * runtime override. */
        out->has_runtime_fraction = true;
        if (pb->runtime_fraction->default_value != NULL) {
            out->fraction_numerator = pb->runtime_fraction->default_value->numerator;
            out->fraction_denominator =
                denominator(pb->runtime_fraction->default_value->denominator);
        } else {
            out->fraction_numerator = 0;
            out->fraction_denominator = 100;
        }
    }
    out->grpc = pb->grpc != NULL;
    if (pb->tls_context != NULL)
        return mp_set_err(err, "tls_context: not supported");
    if (pb->n_dynamic_metadata > 0)
        return mp_set_err(err, "dynamic_metadata: not supported");

    rc = header_matches(cfg, pb->headers, pb->n_headers, "headers", &out->headers, &out->n_headers,
                        err);
    if (rc == 0)
        rc = query_matches(cfg, pb->query_parameters, pb->n_query_parameters, "query_parameters",
                           &out->query_params, &out->n_query_params, err);
    return rc;
}

/* ---- header mutations, per-filter config -------------------------------------- */

/* Envoy's HeaderUtility::isModifiableHeader / isRemovableHeader. */
static bool protected_header(const char *name)
{
    return name[0] == ':' || strcmp(name, "host") == 0;
}

static int header_adds(struct mp_route_config *cfg, HeaderValueOption *const *pb, size_t n,
                       const char *field, const struct mp_header_add **out, size_t *n_out,
                       char **err)
{
    struct mp_header_add *a = mp_route_arena_alloc(cfg, n * sizeof(*a));
    if (a == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        const HeaderValueOption *o = pb[i];
        if (o->header == NULL || empty(o->header->key))
            return mp_set_err(err, "%s[%zu].header.key: must not be empty", field, i);
        a[i].name = dup(cfg, o->header->key, true);
        if (a[i].name == NULL)
            return nomem(err);
        if (protected_header(a[i].name))
            return mp_set_err(err,
                              "%s[%zu].header.key: ':'-prefixed or host headers may not be "
                              "modified",
                              field, i);
        a[i].name_len = strlen(a[i].name);
        const char *v = o->header->value;
        size_t vl = v != NULL ? strlen(v) : 0;
        if (vl == 0 && o->header->raw_value.len > 0) {
            v = (const char *)o->header->raw_value.data;
            vl = o->header->raw_value.len;
        }
        a[i].value = mp_route_arena_strndup(cfg, v != NULL ? v : "", vl, false);
        if (a[i].value == NULL)
            return nomem(err);
        a[i].value_len = vl;
        if (o->append != NULL) {
            if (o->append_action !=
                ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD)
                return mp_set_err(err, "%s[%zu]: both append and append_action are set", field, i);
            a[i].append = o->append->value ? MP_HEADER_APPEND_IF_EXISTS_OR_ADD
                                           : MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD;
        } else {
            a[i].append = (enum mp_header_append)o->append_action;
        }
        a[i].keep_empty_value = o->keep_empty_value;
    }
    *out = a;
    *n_out = n;
    return 0;
}

static int header_removes(struct mp_route_config *cfg, char *const *pb, size_t n, const char *field,
                          const char *const **out, size_t *n_out, char **err)
{
    const char **r = mp_route_arena_alloc(cfg, n * sizeof(*r));
    if (r == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        if (empty(pb[i]))
            return mp_set_err(err, "%s[%zu]: must not be empty", field, i);
        char *name = dup(cfg, pb[i], true);
        if (name == NULL)
            return nomem(err);
        if (protected_header(name))
            return mp_set_err(err, "%s[%zu]: ':'-prefixed or host headers may not be removed",
                              field, i);
        r[i] = name;
    }
    *out = r;
    *n_out = n;
    return 0;
}

/* The four lists every level (config, vhost, route, weighted cluster) has;
 * each level is its own generated type, hence the macro around one function. */
static int header_ops(struct mp_route_config *cfg, HeaderValueOption *const *req_add,
                      size_t n_req_add, char *const *req_rm, size_t n_req_rm,
                      HeaderValueOption *const *resp_add, size_t n_resp_add, char *const *resp_rm,
                      size_t n_resp_rm, struct mp_header_ops *ops, char **err)
{
    int rc = header_adds(cfg, req_add, n_req_add, "request_headers_to_add", &ops->request_add,
                         &ops->n_request_add, err);
    if (rc == 0)
        rc = header_removes(cfg, req_rm, n_req_rm, "request_headers_to_remove",
                            &ops->request_remove, &ops->n_request_remove, err);
    if (rc == 0)
        rc = header_adds(cfg, resp_add, n_resp_add, "response_headers_to_add", &ops->response_add,
                         &ops->n_response_add, err);
    if (rc == 0)
        rc = header_removes(cfg, resp_rm, n_resp_rm, "response_headers_to_remove",
                            &ops->response_remove, &ops->n_response_remove, err);
    return rc;
}

#define HEADER_OPS(cfg, pb, ops, err)                                                              \
    header_ops(cfg, (pb)->request_headers_to_add, (pb)->n_request_headers_to_add,                  \
               (pb)->request_headers_to_remove, (pb)->n_request_headers_to_remove,                 \
               (pb)->response_headers_to_add, (pb)->n_response_headers_to_add,                     \
               (pb)->response_headers_to_remove, (pb)->n_response_headers_to_remove, ops, err)

/* typed_per_filter_config maps: every level has its own generated entry type
 * but all have the same {base, key, value} layout, so one function reads
 * them through the Route entry type. */
typedef Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry TpfcEntry;

static int typed_configs(struct mp_route_config *cfg, size_t n, void *const *entries,
                         struct mp_typed_configs *out, char **err)
{
    struct mp_typed_config *t = mp_route_arena_alloc(cfg, n * sizeof(*t));
    if (t == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        const TpfcEntry *e = entries[i];
        if (empty(e->key))
            return mp_set_err(err, "typed_per_filter_config: empty filter name");
        if (e->value == NULL || empty(e->value->type_url))
            return mp_set_err(err, "typed_per_filter_config[\"%s\"]: missing typed config", e->key);
        const char *type_url = e->value->type_url;
        const ProtobufCBinaryData *bytes = &e->value->value;
        Envoy__Config__Route__V3__FilterConfig *fc = NULL;
        const char *slash = strrchr(type_url, '/');
        if (strcmp(slash != NULL ? slash + 1 : type_url, "envoy.config.route.v3.FilterConfig") ==
            0) {
            fc = envoy__config__route__v3__filter_config__unpack(NULL, bytes->len, bytes->data);
            if (fc == NULL)
                return mp_set_err(err, "typed_per_filter_config[\"%s\"]: invalid FilterConfig",
                                  e->key);
            t[i].disabled = fc->disabled;
            t[i].is_optional = fc->is_optional;
            static const ProtobufCBinaryData none = {0, NULL};
            type_url = fc->config != NULL && fc->config->type_url ? fc->config->type_url : "";
            bytes = fc->config != NULL ? &fc->config->value : &none;
        }
        t[i].filter_name = dup(cfg, e->key, false);
        t[i].type_url = dup(cfg, type_url, false);
        uint8_t *v = mp_route_arena_alloc(cfg, bytes->len);
        if (v != NULL && bytes->len > 0)
            memcpy(v, bytes->data, bytes->len);
        t[i].value = v;
        t[i].value_len = bytes->len;
        if (fc != NULL)
            envoy__config__route__v3__filter_config__free_unpacked(fc, NULL);
        if (t[i].filter_name == NULL || t[i].type_url == NULL || v == NULL)
            return nomem(err);
    }
    out->items = t;
    out->n = n;
    return 0;
}

#define TYPED_CONFIGS(cfg, pb, out, err)                                                           \
    typed_configs(cfg, (pb)->n_typed_per_filter_config,                                            \
                  (void *const *)(pb)->typed_per_filter_config, out, err)

/*
 * The deprecated `cors` field of a virtual host or route action (older Istio
 * still sends it) becomes what Envoy treats it as: the CORS filter's
 * per-route policy, unless typed_per_filter_config already names one.
 */
static int legacy_cors(struct mp_route_config *cfg, const Envoy__Config__Route__V3__CorsPolicy *in,
                       struct mp_typed_configs *pf, char **err)
{
    static const char cors_name[] = "envoy.filters.http.cors";
    for (size_t i = 0; i < pf->n; i++)
        if (strcmp(pf->items[i].filter_name, cors_name) == 0)
            return 0;
    Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy p =
        ENVOY__EXTENSIONS__FILTERS__HTTP__CORS__V3__CORS_POLICY__INIT;
    p.n_allow_origin_string_match = in->n_allow_origin_string_match;
    p.allow_origin_string_match = in->allow_origin_string_match;
    p.allow_methods = in->allow_methods;
    p.allow_headers = in->allow_headers;
    p.expose_headers = in->expose_headers;
    p.max_age = in->max_age;
    p.allow_credentials = in->allow_credentials;
    if (in->enabled_specifier_case ==
        ENVOY__CONFIG__ROUTE__V3__CORS_POLICY__ENABLED_SPECIFIER_FILTER_ENABLED)
        p.filter_enabled = in->filter_enabled;
    p.shadow_enabled = in->shadow_enabled;
    p.allow_private_network_access = in->allow_private_network_access;
    p.forward_not_matching_preflights = in->forward_not_matching_preflights;
    size_t len = envoy__extensions__filters__http__cors__v3__cors_policy__get_packed_size(&p);
    uint8_t *v = mp_route_arena_alloc(cfg, len ? len : 1);
    struct mp_typed_config *t = mp_route_arena_alloc(cfg, (pf->n + 1) * sizeof(*t));
    if (v == NULL || t == NULL)
        return nomem(err);
    envoy__extensions__filters__http__cors__v3__cors_policy__pack(&p, v);
    if (pf->n)
        memcpy(t, pf->items, pf->n * sizeof(*t));
    memset(&t[pf->n], 0, sizeof(t[pf->n]));
    t[pf->n].filter_name = cors_name;
    t[pf->n].type_url = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";
    t[pf->n].value = v;
    t[pf->n].value_len = len;
    pf->items = t;
    pf->n++;
    return 0;
}

/* ---- rate limits ---------------------------------------------------------------- */

typedef Envoy__Config__Route__V3__RateLimit RateLimit;
typedef Envoy__Config__Route__V3__RateLimit__Action RateLimitAction;

static int rl_action_from_proto(struct mp_route_config *cfg, const RateLimitAction *pb,
                                struct mp_rate_limit_action *out, char **err)
{
    const char *key = NULL, *def_key = NULL, *value = NULL;
    out->expect_match = true;
    int rc;
    switch (pb->action_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_SOURCE_CLUSTER:
        out->kind = MP_RL_SOURCE_CLUSTER;
        def_key = "source_cluster";
        break;
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_DESTINATION_CLUSTER:
        out->kind = MP_RL_DESTINATION_CLUSTER;
        def_key = "destination_cluster";
        break;
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REQUEST_HEADERS:
        out->kind = MP_RL_REQUEST_HEADERS;
        if (empty(pb->request_headers->header_name))
            return mp_set_err(err, "request_headers.header_name: must not be empty");
        if (empty(pb->request_headers->descriptor_key))
            return mp_set_err(err, "request_headers.descriptor_key: must not be empty");
        if ((out->header_name = dup(cfg, pb->request_headers->header_name, true)) == NULL)
            return nomem(err);
        out->header_name_len = strlen(out->header_name);
        key = pb->request_headers->descriptor_key;
        out->skip_if_absent = pb->request_headers->skip_if_absent;
        break;
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REMOTE_ADDRESS:
        out->kind = MP_RL_REMOTE_ADDRESS;
        def_key = "remote_address";
        break;
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_MASKED_REMOTE_ADDRESS: {
        const Envoy__Config__Route__V3__RateLimit__Action__MaskedRemoteAddress *m =
            pb->masked_remote_address;
        out->kind = MP_RL_MASKED_REMOTE_ADDRESS;
        def_key = "masked_remote_address";
        out->v4_prefix_len = m->v4_prefix_mask_len ? m->v4_prefix_mask_len->value : 32;
        out->v6_prefix_len = m->v6_prefix_mask_len ? m->v6_prefix_mask_len->value : 128;
        if (out->v4_prefix_len > 32 || out->v6_prefix_len > 128)
            return mp_set_err(err, "masked_remote_address: prefix length out of range");
        break;
    }
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_GENERIC_KEY:
        out->kind = MP_RL_GENERIC_KEY;
        if (empty(pb->generic_key->descriptor_value))
            return mp_set_err(err, "generic_key.descriptor_value: must not be empty");
        key = pb->generic_key->descriptor_key;
        def_key = "generic_key";
        value = pb->generic_key->descriptor_value;
        break;
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_HEADER_VALUE_MATCH: {
        const Envoy__Config__Route__V3__RateLimit__Action__HeaderValueMatch *h =
            pb->header_value_match;
        out->kind = MP_RL_HEADER_VALUE_MATCH;
        if (empty(h->descriptor_value))
            return mp_set_err(err, "header_value_match.descriptor_value: must not be empty");
        key = h->descriptor_key;
        def_key = "header_match";
        value = h->descriptor_value;
        out->expect_match = h->expect_match == NULL || h->expect_match->value;
        rc = header_matches(cfg, h->headers, h->n_headers, "header_value_match.headers",
                            &out->headers, &out->n_headers, err);
        if (rc != 0)
            return rc;
        break;
    }
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_QUERY_PARAMETER_VALUE_MATCH: {
        const Envoy__Config__Route__V3__RateLimit__Action__QueryParameterValueMatch *q =
            pb->query_parameter_value_match;
        out->kind = MP_RL_QUERY_PARAMETER_VALUE_MATCH;
        if (empty(q->descriptor_value))
            return mp_set_err(err, "query_parameter_value_match.descriptor_value: must not be "
                                   "empty");
        key = q->descriptor_key;
        def_key = "query_match";
        value = q->descriptor_value;
        out->expect_match = q->expect_match == NULL || q->expect_match->value;
        rc = query_matches(cfg, q->query_parameters, q->n_query_parameters,
                           "query_parameter_value_match.query_parameters", &out->query_params,
                           &out->n_query_params, err);
        if (rc != 0)
            return rc;
        break;
    }
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_DYNAMIC_METADATA:
        return mp_set_err(err, "dynamic_metadata: not supported");
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_METADATA:
        return mp_set_err(err, "metadata: not supported");
    case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_EXTENSION:
        return mp_set_err(err, "extension: not supported");
    default: return mp_set_err(err, ": no action specifier");
    }
    if ((out->descriptor_key = dup(cfg, empty(key) ? def_key : key, false)) == NULL)
        return nomem(err);
    if (value != NULL && (out->descriptor_value = dup(cfg, value, false)) == NULL)
        return nomem(err);
    return 0;
}

static int rate_limits_from_proto(struct mp_route_config *cfg, RateLimit *const *pb, size_t n,
                                  const struct mp_rate_limit **out, size_t *n_out, char **err)
{
    struct mp_rate_limit *rl = mp_route_arena_alloc(cfg, n * sizeof(*rl));
    if (rl == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        if (pb[i]->stage != NULL && pb[i]->stage->value > 10)
            return mp_set_err(err, "rate_limits[%zu].stage: must be at most 10", i);
        rl[i].stage = pb[i]->stage != NULL ? pb[i]->stage->value : 0;
        if ((rl[i].disable_key = dup(cfg, pb[i]->disable_key, false)) == NULL)
            return nomem(err);
        if (pb[i]->n_actions == 0)
            return mp_set_err(err, "rate_limits[%zu].actions: at least one action is required", i);
        if (pb[i]->limit != NULL)
            return mp_set_err(err, "rate_limits[%zu].limit: not supported", i);
        struct mp_rate_limit_action *a = mp_route_arena_alloc(cfg, pb[i]->n_actions * sizeof(*a));
        if (a == NULL)
            return nomem(err);
        for (size_t j = 0; j < pb[i]->n_actions; j++) {
            int rc = rl_action_from_proto(cfg, pb[i]->actions[j], &a[j], err);
            if (rc != 0) {
                mp_err_prefix(err, "rate_limits[%zu].actions[%zu]", i, j);
                return rc;
            }
        }
        rl[i].actions = a;
        rl[i].n_actions = pb[i]->n_actions;
    }
    *out = rl;
    *n_out = n;
    return 0;
}

/* ---- mirror policies -------------------------------------------------------------- */

typedef Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy MirrorPolicy;

static int mirrors_from_proto(struct mp_route_config *cfg, MirrorPolicy *const *pb, size_t n,
                              const char *field, const struct mp_mirror_policy **out, size_t *n_out,
                              char **err)
{
    struct mp_mirror_policy *m = mp_route_arena_alloc(cfg, n * sizeof(*m));
    if (m == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        if (empty(pb[i]->cluster) && empty(pb[i]->cluster_header))
            return mp_set_err(err, "%s[%zu]: one of cluster or cluster_header is required", field,
                              i);
        if (!empty(pb[i]->cluster) && (m[i].cluster = dup(cfg, pb[i]->cluster, false)) == NULL)
            return nomem(err);
        if (empty(pb[i]->cluster) &&
            (m[i].cluster_header = dup(cfg, pb[i]->cluster_header, true)) == NULL)
            return nomem(err);
        m[i].numerator = 100;
        m[i].denominator = 100;
        if (pb[i]->runtime_fraction != NULL) {
            const Envoy__Type__V3__FractionalPercent *d = pb[i]->runtime_fraction->default_value;
            m[i].numerator = d != NULL ? d->numerator : 0;
            m[i].denominator = d != NULL ? denominator(d->denominator) : 100;
        }
        m[i].disable_shadow_host_suffix_append = pb[i]->disable_shadow_host_suffix_append;
    }
    *out = m;
    *n_out = n;
    return 0;
}

/* ---- route action ----------------------------------------------------------- */

static int retry_from_proto(struct mp_route_config *cfg, const RetryPolicy *pb,
                            struct mp_retry_policy *out, char **err)
{
    out->retry_on = dup(cfg, pb->retry_on, false);
    if (out->retry_on == NULL)
        return nomem(err);
    out->retry_on_flags = mp_retry_on_parse(out->retry_on, strlen(out->retry_on), NULL);
    out->num_retries = pb->num_retries != NULL ? pb->num_retries->value : 1;
    if (opt_duration(pb->per_try_timeout, "per_try_timeout", &out->per_try_timeout_ms, err) ||
        opt_duration(pb->per_try_idle_timeout, "per_try_idle_timeout",
                     &out->per_try_idle_timeout_ms, err))
        return MP_ERR_INVAL;
    uint32_t *codes = mp_route_arena_alloc(cfg, pb->n_retriable_status_codes * sizeof(*codes));
    if (codes == NULL)
        return nomem(err);
    for (size_t i = 0; i < pb->n_retriable_status_codes; i++)
        codes[i] = pb->retriable_status_codes[i];
    out->retriable_status_codes = codes;
    out->n_retriable_status_codes = pb->n_retriable_status_codes;
    for (size_t i = 0; i < pb->n_retry_host_predicate; i++) {
        const char *name = pb->retry_host_predicate[i]->name;
        if (name != NULL && strcmp(name, "envoy.retry_host_predicates.previous_hosts") == 0)
            out->previous_hosts = true;
    }
    out->host_selection_retry_max_attempts = pb->host_selection_retry_max_attempts;
    out->backoff_base_ms = 25;
    out->backoff_max_ms = -1;
    if (pb->retry_back_off != NULL) {
        const Envoy__Config__Route__V3__RetryPolicy__RetryBackOff *b = pb->retry_back_off;
        if (b->base_interval == NULL)
            return mp_set_err(err, "retry_back_off.base_interval: required");
        if (opt_duration(b->base_interval, "retry_back_off.base_interval", &out->backoff_base_ms,
                         err) ||
            opt_duration(b->max_interval, "retry_back_off.max_interval", &out->backoff_max_ms, err))
            return MP_ERR_INVAL;
        if (out->backoff_base_ms <= 0)
            return mp_set_err(err, "retry_back_off.base_interval: must be greater than 0");
        if (out->backoff_max_ms >= 0 && out->backoff_max_ms < out->backoff_base_ms)
            return mp_set_err(err, "retry_back_off.max_interval: must be at least base_interval");
    }
    if (out->backoff_max_ms < 0)
        out->backoff_max_ms = out->backoff_base_ms * 10;
    return 0;
}

static int hash_policies(struct mp_route_config *cfg, HashPolicy *const *pb, size_t n,
                         struct mp_route_action *out, char **err)
{
    struct mp_hash_policy *h = mp_route_arena_alloc(cfg, n * sizeof(*h));
    if (h == NULL)
        return nomem(err);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct mp_hash_policy *p = &h[k];
        p->terminal = pb[i]->terminal;
        p->cookie_ttl_ms = -1;
        const char *name = NULL;
        bool lower = false;
        switch (pb[i]->policy_specifier_case) {
        case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER:
            p->kind = MP_HASH_HEADER;
            name = pb[i]->header->header_name;
            lower = true;
            if (empty(name))
                return mp_set_err(err, "hash_policy[%zu].header.header_name: must not be empty", i);
            break;
        case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE:
            p->kind = MP_HASH_COOKIE;
            name = pb[i]->cookie->name;
            if (empty(name))
                return mp_set_err(err, "hash_policy[%zu].cookie.name: must not be empty", i);
            if (pb[i]->cookie->ttl != NULL &&
                duration_ms(pb[i]->cookie->ttl, &p->cookie_ttl_ms, err)) {
                mp_err_prefix(err, "hash_policy[%zu].cookie.ttl", i);
                return MP_ERR_INVAL;
            }
            if (!empty(pb[i]->cookie->path) &&
                (p->cookie_path = dup(cfg, pb[i]->cookie->path, false)) == NULL)
                return nomem(err);
            break;
        case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES:
            /* source_ip: false hashes nothing; Envoy skips such a policy too. */
            if (!pb[i]->connection_properties->source_ip)
                continue;
            p->kind = MP_HASH_SOURCE_IP;
            break;
        case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_QUERY_PARAMETER:
            p->kind = MP_HASH_QUERY_PARAMETER;
            name = pb[i]->query_parameter->name;
            if (empty(name))
                return mp_set_err(err, "hash_policy[%zu].query_parameter.name: must not be empty",
                                  i);
            break;
        case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_FILTER_STATE:
            return mp_set_err(err, "hash_policy[%zu].filter_state: not supported", i);
        default: return mp_set_err(err, "hash_policy[%zu]: no policy specifier", i);
        }
        if (name != NULL) {
            p->name = dup(cfg, name, lower);
            if (p->name == NULL)
                return nomem(err);
            p->name_len = strlen(p->name);
        }
        k++;
    }
    out->hash_policies = h;
    out->n_hash_policies = k;
    return 0;
}

static int weighted_from_proto(struct mp_route_config *cfg,
                               const Envoy__Config__Route__V3__WeightedCluster *pb,
                               struct mp_route_action *out, char **err)
{
    if (pb->n_clusters == 0)
        return mp_set_err(err, "clusters: at least one cluster is required");
    if (pb->random_value_specifier_case ==
        ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__RANDOM_VALUE_SPECIFIER_HEADER_NAME)
        return mp_set_err(err, "header_name: not supported");
    struct mp_weighted_cluster *w = mp_route_arena_alloc(cfg, pb->n_clusters * sizeof(*w));
    if (w == NULL)
        return nomem(err);
    uint64_t total = 0;
    for (size_t i = 0; i < pb->n_clusters; i++) {
        const ClusterWeight *c = pb->clusters[i];
        if (empty(c->name) && empty(c->cluster_header))
            return mp_set_err(err, "clusters[%zu]: one of name or cluster_header is required", i);
        if (!empty(c->name) && (w[i].name = dup(cfg, c->name, false)) == NULL)
            return nomem(err);
        if (empty(c->name) && (w[i].cluster_header = dup(cfg, c->cluster_header, true)) == NULL)
            return nomem(err);
        w[i].weight = c->weight != NULL ? c->weight->value : 0;
        total += w[i].weight;
        if (c->host_rewrite_specifier_case ==
                ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__CLUSTER_WEIGHT__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL &&
            !empty(c->host_rewrite_literal) &&
            (w[i].host_rewrite_literal = dup(cfg, c->host_rewrite_literal, false)) == NULL)
            return nomem(err);
        int rc = HEADER_OPS(cfg, c, &w[i].headers, err);
        if (rc == 0)
            rc = TYPED_CONFIGS(cfg, c, &w[i].per_filter, err);
        if (rc != 0) {
            mp_err_prefix(err, "clusters[%zu]", i);
            return rc;
        }
    }
    if (total == 0)
        return mp_set_err(err, "clusters: sum of weights must be greater than 0");
    if (total > UINT32_MAX)
        return mp_set_err(err, "clusters: sum of weights %llu exceeds %u",
                          (unsigned long long)total, UINT32_MAX);
    if (pb->total_weight != NULL && pb->total_weight->value != 0 &&
        pb->total_weight->value != total)
        return mp_set_err(err, "total_weight: sum of weights %llu must equal total_weight %u",
                          (unsigned long long)total, pb->total_weight->value);
    out->cluster_kind = MP_CLUSTER_WEIGHTED;
    out->weighted = w;
    out->n_weighted = pb->n_clusters;
    out->total_weight = total;
    return 0;
}

static int action_from_proto(struct mp_route_config *cfg, const RouteAction *pb,
                             const VirtualHost *vh_pb, struct mp_route_action *out, char **err)
{
    int rc;
    switch (pb->cluster_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
        if (empty(pb->cluster))
            return mp_set_err(err, "cluster: must not be empty");
        out->cluster_kind = MP_CLUSTER_NAME;
        if ((out->cluster = dup(cfg, pb->cluster, false)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER:
        if (empty(pb->cluster_header))
            return mp_set_err(err, "cluster_header: must not be empty");
        out->cluster_kind = MP_CLUSTER_HEADER;
        if ((out->cluster_header = dup(cfg, pb->cluster_header, true)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS:
        rc = weighted_from_proto(cfg, pb->weighted_clusters, out, err);
        if (rc != 0) {
            mp_err_prefix(err, "weighted_clusters");
            return rc;
        }
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_SPECIFIER_PLUGIN:
        return mp_set_err(err, "cluster_specifier_plugin: not supported");
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_INLINE_CLUSTER_SPECIFIER_PLUGIN:
        return mp_set_err(err, "inline_cluster_specifier_plugin: not supported");
    default:
        return mp_set_err(err, ": one of cluster, cluster_header or weighted_clusters is required");
    }
    switch (pb->cluster_not_found_response_code) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__NOT_FOUND:
        out->cluster_not_found_code = 404;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__INTERNAL_SERVER_ERROR:
        out->cluster_not_found_code = 500;
        break;
    default: out->cluster_not_found_code = 503;
    }

    if (!empty(pb->prefix_rewrite) && pb->regex_rewrite != NULL)
        return mp_set_err(err, ": specify only one of prefix_rewrite or regex_rewrite");
    if (pb->path_rewrite_policy != NULL)
        return mp_set_err(err, "path_rewrite_policy: not supported");
    if (!empty(pb->prefix_rewrite)) {
        if ((out->prefix_rewrite = dup(cfg, pb->prefix_rewrite, false)) == NULL)
            return nomem(err);
        out->prefix_rewrite_len = strlen(out->prefix_rewrite);
    }
    if (pb->regex_rewrite != NULL) {
        rc = rewrite_from_proto(cfg, pb->regex_rewrite, &out->regex_rewrite,
                                &out->regex_rewrite_subst, err);
        if (rc != 0) {
            mp_err_prefix(err, "regex_rewrite");
            return rc;
        }
    }

    switch (pb->host_rewrite_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL:
        if (!empty(pb->host_rewrite_literal) &&
            (out->host_rewrite_literal = dup(cfg, pb->host_rewrite_literal, false)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_AUTO_HOST_REWRITE:
        out->auto_host_rewrite = pb->auto_host_rewrite != NULL && pb->auto_host_rewrite->value;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_HEADER:
        if (!empty(pb->host_rewrite_header) &&
            (out->host_rewrite_header = dup(cfg, pb->host_rewrite_header, true)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_PATH_REGEX:
        return mp_set_err(err, "host_rewrite_path_regex: not supported");
    default: break;
    }

    out->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (pb->timeout != NULL && duration_ms(pb->timeout, &out->timeout_ms, err) != 0) {
        mp_err_prefix(err, "timeout");
        return MP_ERR_INVAL;
    }
    if (opt_duration(pb->idle_timeout, "idle_timeout", &out->idle_timeout_ms, err))
        return MP_ERR_INVAL;
    out->max_stream_duration_ms = out->grpc_timeout_header_max_ms = -1;
    out->grpc_timeout_header_offset_ms = -1;
    if (pb->max_stream_duration != NULL) {
        const Envoy__Config__Route__V3__RouteAction__MaxStreamDuration *m = pb->max_stream_duration;
        if (opt_duration(m->max_stream_duration, "max_stream_duration.max_stream_duration",
                         &out->max_stream_duration_ms, err) ||
            opt_duration(m->grpc_timeout_header_max, "max_stream_duration.grpc_timeout_header_max",
                         &out->grpc_timeout_header_max_ms, err) ||
            opt_duration(m->grpc_timeout_header_offset,
                         "max_stream_duration.grpc_timeout_header_offset",
                         &out->grpc_timeout_header_offset_ms, err))
            return MP_ERR_INVAL;
    }
    /* Older control planes still send the deprecated max_grpc_timeout. */
    if (out->grpc_timeout_header_max_ms < 0 &&
        opt_duration(pb->max_grpc_timeout, "max_grpc_timeout", &out->grpc_timeout_header_max_ms,
                     err))
        return MP_ERR_INVAL;
    if (out->grpc_timeout_header_offset_ms < 0 &&
        opt_duration(pb->grpc_timeout_offset, "grpc_timeout_offset",
                     &out->grpc_timeout_header_offset_ms, err))
        return MP_ERR_INVAL;

    /* A route's retry policy replaces the virtual host's whole. */
    const RetryPolicy *vhost_retry = vh_pb != NULL ? vh_pb->retry_policy : NULL;
    const RetryPolicy *retry = pb->retry_policy != NULL ? pb->retry_policy : vhost_retry;
    if (retry != NULL) {
        out->has_retry_policy = true;
        rc = retry_from_proto(cfg, retry, &out->retry, err);
        if (rc != 0) {
            mp_err_prefix(err, "retry_policy");
            return rc;
        }
    }
    rc = hash_policies(cfg, pb->hash_policy, pb->n_hash_policy, out, err);
    if (rc != 0)
        return rc;
    rc = rate_limits_from_proto(cfg, pb->rate_limits, pb->n_rate_limits, &out->rate_limits,
                                &out->n_rate_limits, err);
    if (rc != 0)
        return rc;
    out->include_vh_rate_limits =
        pb->include_vh_rate_limits != NULL && pb->include_vh_rate_limits->value;
    if (pb->n_request_mirror_policies > 0) {
        rc = mirrors_from_proto(cfg, pb->request_mirror_policies, pb->n_request_mirror_policies,
                                "request_mirror_policies", &out->mirrors, &out->n_mirrors, err);
        if (rc != 0)
            return rc;
    } else if (vh_pb != NULL && vh_pb->n_request_mirror_policies > 0) {
        /* Checked at the virtual host's own path before its routes. */
        rc = mirrors_from_proto(cfg, vh_pb->request_mirror_policies,
                                vh_pb->n_request_mirror_policies, "request_mirror_policies",
                                &out->mirrors, &out->n_mirrors, err);
        if (rc != 0)
            return rc;
    } else if (cfg->n_mirrors > 0) {
        out->mirrors = cfg->mirrors;
        out->n_mirrors = cfg->n_mirrors;
    }

    struct mp_upgrade_config *u = mp_route_arena_alloc(cfg, pb->n_upgrade_configs * sizeof(*u));
    if (u == NULL)
        return nomem(err);
    for (size_t i = 0; i < pb->n_upgrade_configs; i++) {
        const Envoy__Config__Route__V3__RouteAction__UpgradeConfig *c = pb->upgrade_configs[i];
        if (empty(c->upgrade_type))
            return mp_set_err(err, "upgrade_configs[%zu].upgrade_type: must not be empty", i);
        if ((u[i].upgrade_type = dup(cfg, c->upgrade_type, true)) == NULL)
            return nomem(err);
        u[i].enabled = c->enabled == NULL || c->enabled->value;
    }
    out->upgrades = u;
    out->n_upgrades = pb->n_upgrade_configs;
    return 0;
}

static int redirect_from_proto(struct mp_route_config *cfg, const RedirectAction *pb,
                               struct mp_redirect_action *out, char **err)
{
    if (!empty(pb->host_redirect) && (out->host = dup(cfg, pb->host_redirect, false)) == NULL)
        return nomem(err);
    if (pb->port_redirect > 65535)
        return mp_set_err(err, "port_redirect: %u is not a port", pb->port_redirect);
    out->port = pb->port_redirect;
    static const uint16_t codes[] = {301, 302, 303, 307, 308};
    if ((unsigned)pb->response_code >= MP_ARRAY_LEN(codes))
        return mp_set_err(err, "response_code: unknown value %d", (int)pb->response_code);
    out->response_code = codes[pb->response_code];
    out->strip_query = pb->strip_query;
    if (pb->scheme_rewrite_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT &&
        pb->https_redirect)
        out->scheme = "https";
    if (pb->scheme_rewrite_specifier_case ==
            ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT &&
        !empty(pb->scheme_redirect) && (out->scheme = dup(cfg, pb->scheme_redirect, true)) == NULL)
        return nomem(err);
    int rc;
    switch (pb->path_rewrite_specifier_case) {
    case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT:
        if (!empty(pb->path_redirect) && (out->path = dup(cfg, pb->path_redirect, false)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE:
        if ((out->prefix_rewrite = dup(cfg, pb->prefix_rewrite, false)) == NULL)
            return nomem(err);
        break;
    case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE:
        rc = rewrite_from_proto(cfg, pb->regex_rewrite, &out->regex_rewrite,
                                &out->regex_rewrite_subst, err);
        if (rc != 0) {
            mp_err_prefix(err, "regex_rewrite");
            return rc;
        }
        break;
    default: break;
    }
    return 0;
}

static int read_file(struct mp_route_config *cfg, const char *path, uint32_t max, const char **body,
                     size_t *len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return mp_set_err(err, "filename: cannot open \"%s\": %s", path, strerror(errno));
    /* Size the buffer by the file, not by the limit (which may be huge);
     * one byte more than allowed tells "too large" apart. */
    struct stat st;
    size_t want = (size_t)max + 1;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < want)
        want = (size_t)st.st_size + 1;
    char *buf = mp_route_arena_alloc(cfg, want + 1);
    if (buf == NULL) {
        fclose(f);
        return nomem(err);
    }
    size_t n = fread(buf, 1, want, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        return mp_set_err(err, "filename: cannot read \"%s\"", path);
    if (n > max)
        return mp_set_err(err, ": response body in \"%s\" is larger than the maximum %u bytes",
                          path, max);
    buf[n] = '\0';
    *body = buf;
    *len = n;
    return 0;
}

static int direct_from_proto(struct mp_route_config *cfg, const DirectResponseAction *pb,
                             struct mp_direct_response *out, char **err)
{
    if (pb->status < 200 || pb->status > 599)
        return mp_set_err(err, "status: %u is not in [200, 600)", pb->status);
    out->status = (uint16_t)pb->status;
    const DataSource *b = pb->body;
    if (b == NULL)
        return 0;
    uint32_t max = cfg->max_direct_response_body;
    const char *src = NULL;
    size_t len = 0;
    int rc;
    switch (b->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
        rc = read_file(cfg, b->filename ? b->filename : "", max, &out->body, &out->body_len, err);
        if (rc != 0)
            mp_err_prefix(err, "body");
        return rc;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        src = (const char *)b->inline_bytes.data;
        len = b->inline_bytes.len;
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        src = b->inline_string;
        len = src != NULL ? strlen(src) : 0;
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
        src = b->environment_variable != NULL ? getenv(b->environment_variable) : NULL;
        if (src == NULL)
            return mp_set_err(err, "body.environment_variable: \"%s\" is not set",
                              b->environment_variable ? b->environment_variable : "");
        len = strlen(src);
        break;
    default: return 0;
    }
    if (len > max)
        return mp_set_err(err, "body: response body size is %zu bytes; maximum is %u", len, max);
    out->body = mp_route_arena_strndup(cfg, src != NULL ? src : "", len, false);
    if (out->body == NULL)
        return nomem(err);
    out->body_len = len;
    return 0;
}

/* ---- routes and virtual hosts --------------------------------------------------- */

static int route_from_proto(struct mp_route_config *cfg, const Route *pb, const VirtualHost *vh_pb,
                            struct mp_route *out, char **err)
{
    int rc;
    if ((out->name = dup(cfg, pb->name, false)) == NULL)
        return nomem(err);
    if (pb->match == NULL)
        return mp_set_err(err, "match: required");
    rc = match_from_proto(cfg, pb->match, &out->match, err);
    if (rc != 0) {
        mp_err_prefix(err, "match");
        return rc;
    }
    switch (pb->action_case) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE:
        out->action_kind = MP_ROUTE_ACTION_ROUTE;
        rc = action_from_proto(cfg, pb->route, vh_pb, &out->route, err);
        if (rc != 0)
            mp_err_prefix(err, "route");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT:
        out->action_kind = MP_ROUTE_ACTION_REDIRECT;
        rc = redirect_from_proto(cfg, pb->redirect, &out->redirect, err);
        if (rc != 0)
            mp_err_prefix(err, "redirect");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE:
        out->action_kind = MP_ROUTE_ACTION_DIRECT_RESPONSE;
        rc = direct_from_proto(cfg, pb->direct_response, &out->direct, err);
        if (rc != 0)
            mp_err_prefix(err, "direct_response");
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION:
        out->action_kind = MP_ROUTE_ACTION_NON_FORWARDING;
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_FILTER_ACTION:
        return mp_set_err(err, "filter_action: not supported");
    default:
        return mp_set_err(err, ": route has no action (one of route, redirect or "
                               "direct_response is required)");
    }
    if (rc == 0)
        rc = HEADER_OPS(cfg, pb, &out->headers, err);
    if (rc == 0)
        rc = TYPED_CONFIGS(cfg, pb, &out->per_filter, err);
    if (rc == 0 && pb->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE &&
        pb->route->cors)
        rc = legacy_cors(cfg, pb->route->cors, &out->per_filter, err);
    return rc;
}

int mp_vhost_from_proto(struct mp_route_config *cfg, const VirtualHost *pb, struct mp_vhost *out,
                        char **err)
{
    int rc;
    if (empty(pb->name))
        return mp_set_err(err, "name: must not be empty");
    if ((out->name = dup(cfg, pb->name, false)) == NULL)
        return nomem(err);
    if (pb->n_domains == 0)
        return mp_set_err(err, "domains: at least one domain is required");
    const char **domains = mp_route_arena_alloc(cfg, pb->n_domains * sizeof(*domains));
    if (domains == NULL)
        return nomem(err);
    for (size_t i = 0; i < pb->n_domains; i++)
        if ((domains[i] = dup(cfg, pb->domains[i], true)) == NULL)
            return nomem(err);
    out->domains = domains;
    out->n_domains = pb->n_domains;
    if (pb->matcher != NULL)
        return mp_set_err(err, "matcher: not supported");

    if (pb->retry_policy != NULL) {
        /* Checked first, so a bad policy is reported at the virtual
         * host's path, not at the first route that inherits it. */
        struct mp_retry_policy tmp;
        rc = retry_from_proto(cfg, pb->retry_policy, &tmp, err);
        if (rc != 0) {
            mp_err_prefix(err, "retry_policy");
            return rc;
        }
    }
    if (pb->n_request_mirror_policies > 0) {
        /* Checked here so an error names the virtual host's field, not the
         * first route that inherits the policies. */
        const struct mp_mirror_policy *tmp;
        size_t n_tmp;
        rc = mirrors_from_proto(cfg, pb->request_mirror_policies, pb->n_request_mirror_policies,
                                "request_mirror_policies", &tmp, &n_tmp, err);
        if (rc != 0)
            return rc;
    }
    struct mp_route *routes = mp_route_arena_alloc(cfg, pb->n_routes * sizeof(*routes));
    if (routes == NULL)
        return nomem(err);
    for (size_t i = 0; i < pb->n_routes; i++) {
        routes[i].index = i;
        routes[i].vhost = out;
        rc = route_from_proto(cfg, pb->routes[i], pb, &routes[i], err);
        if (rc != 0) {
            mp_err_prefix(err, "routes[%zu]", i);
            return rc;
        }
    }
    out->routes = routes;
    out->n_routes = pb->n_routes;
    rc = HEADER_OPS(cfg, pb, &out->headers, err);
    if (rc == 0)
        rc = TYPED_CONFIGS(cfg, pb, &out->per_filter, err);
    if (rc == 0 && pb->cors)
        rc = legacy_cors(cfg, pb->cors, &out->per_filter, err);
    if (rc != 0)
        return rc;
    rc = rate_limits_from_proto(cfg, pb->rate_limits, pb->n_rate_limits, &out->rate_limits,
                                &out->n_rate_limits, err);
    if (rc != 0)
        return rc;
    out->require_tls = (enum mp_vhost_tls)pb->require_tls;
    out->include_request_attempt_count = pb->include_request_attempt_count;
    rc = mp_route_index_build(cfg, routes, pb->n_routes, &out->index);
    return rc != 0 ? nomem(err) : 0;
}

/* ---- domain tables ---------------------------------------------------------------- */

struct domain_ref {
    struct mp_domain_entry e;
    size_t vh, dom; /* where it was configured, for error messages */
};

static int key_cmp(const struct mp_domain_entry *a, const struct mp_domain_entry *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len ? 1 : 0;
}

static size_t pos(const struct domain_ref *r)
{
    return r->vh * 1000000 + r->dom;
}

/* Exact keys: by key, then configured position. */
static int exact_cmp(const void *pa, const void *pb)
{
    const struct domain_ref *a = pa, *b = pb;
    int c = key_cmp(&a->e, &b->e);
    return c != 0 ? c : (pos(a) < pos(b) ? -1 : 1);
}

/* Wildcard keys: longest first (the most specific wildcard wins), then key. */
static int wild_cmp(const void *pa, const void *pb)
{
    const struct domain_ref *a = pa, *b = pb;
    if (a->e.key_len != b->e.key_len)
        return a->e.key_len > b->e.key_len ? -1 : 1;
    return exact_cmp(pa, pb);
}

/* Sorts refs and copies them into the arena; a duplicate key is an error
 * reported at the later of the two (the first such in config order). */
static int domain_table(struct mp_route_config *cfg, struct domain_ref *refs, size_t n,
                        int (*cmp)(const void *, const void *), const struct mp_domain_entry **out,
                        size_t *n_out, char **err)
{
    qsort(refs, n, sizeof(*refs), cmp);
    const struct domain_ref *dup_ref = NULL, *orig = NULL;
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&refs[i].e, &refs[i - 1].e) == 0 &&
            (dup_ref == NULL || pos(&refs[i]) < pos(dup_ref))) {
            dup_ref = &refs[i];
            orig = &refs[i - 1];
            while (orig > refs && key_cmp(&orig[-1].e, &orig->e) == 0)
                orig--;
        }
    }
    if (dup_ref != NULL) {
        const struct mp_vhost *vh = &cfg->vhosts[dup_ref->vh];
        return mp_set_err(err,
                          "virtual_hosts[%zu].domains[%zu]: duplicate domain \"%s\" (also in "
                          "virtual_hosts[%zu].domains[%zu])",
                          dup_ref->vh, dup_ref->dom, vh->domains[dup_ref->dom], orig->vh,
                          orig->dom);
    }
    struct mp_domain_entry *e = mp_route_arena_alloc(cfg, n * sizeof(*e));
    if (e == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++)
        e[i] = refs[i].e;
    *out = e;
    *n_out = n;
    return 0;
}

static int build_domains(struct mp_route_config *cfg, char **err)
{
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_vhosts; i++)
        total += cfg->vhosts[i].n_domains;
    struct domain_ref *all = calloc(total + 1, sizeof(*all));
    if (all == NULL)
        return nomem(err);
    /* Three partitions of one array: exact from the front, wildcards
     * counted first so each gets its own slice. */
    size_t n_suffix = 0, n_prefix = 0, n_exact = 0;
    size_t def_vh = 0, def_dom = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->n_vhosts; i++) {
        for (size_t j = 0; j < cfg->vhosts[i].n_domains; j++) {
            const char *d = cfg->vhosts[i].domains[j];
            size_t len = strlen(d);
            if (strcmp(d, "*") == 0) {
                if (cfg->default_vhost != NULL) {
                    rc = mp_set_err(err,
                                    "virtual_hosts[%zu].domains[%zu]: only a single wildcard "
                                    "domain \"*\" is permitted (also in "
                                    "virtual_hosts[%zu].domains[%zu])",
                                    i, j, def_vh, def_dom);
                    goto out;
                }
                cfg->default_vhost = &cfg->vhosts[i];
                def_vh = i;
                def_dom = j;
            } else if (len > 0 && d[0] == '*') {
                n_suffix++;
            } else if (len > 0 && d[len - 1] == '*') {
                n_prefix++;
            } else {
                n_exact++;
            }
        }
    }
    struct domain_ref *ex = all, *sx = all + n_exact, *px = sx + n_suffix;
    size_t ie = 0, is = 0, ip = 0;
    for (size_t i = 0; i < cfg->n_vhosts; i++) {
        for (size_t j = 0; j < cfg->vhosts[i].n_domains; j++) {
            const char *d = cfg->vhosts[i].domains[j];
            size_t len = strlen(d);
            struct domain_ref r = {
                .e = {.key = d, .key_len = len, .vhost = &cfg->vhosts[i]}, .vh = i, .dom = j};
            if (strcmp(d, "*") == 0)
                continue;
            if (len > 0 && d[0] == '*') {
                r.e.key = d + 1;
                r.e.key_len = len - 1;
                sx[is++] = r;
            } else if (len > 0 && d[len - 1] == '*') {
                r.e.key_len = len - 1;
                px[ip++] = r;
            } else {
                ex[ie++] = r;
            }
        }
    }
    /* Report the first duplicate in config order across all three tables:
     * check each and keep the earliest message. */
    char *e1 = NULL, *e2 = NULL, *e3 = NULL;
    int r1 = domain_table(cfg, ex, n_exact, exact_cmp, &cfg->exact, &cfg->n_exact, &e1);
    int r2 = domain_table(cfg, sx, n_suffix, wild_cmp, &cfg->suffix, &cfg->n_suffix, &e2);
    int r3 = domain_table(cfg, px, n_prefix, wild_cmp, &cfg->prefix, &cfg->n_prefix, &e3);
    if (r1 == MP_ERR_NOMEM || r2 == MP_ERR_NOMEM || r3 == MP_ERR_NOMEM) {
        rc = nomem(err);
    } else if (r1 != 0 || r2 != 0 || r3 != 0) {
        /* Messages start "virtual_hosts[N].domains[M]": the smallest (N, M)
         * is the first in config order. */
        char *best = NULL;
        size_t best_pos = (size_t)-1;
        char *cands[3] = {e1, e2, e3};
        for (int k = 0; k < 3; k++) {
            size_t v, d;
            if (cands[k] != NULL &&
                sscanf(cands[k], "virtual_hosts[%zu].domains[%zu]", &v, &d) == 2 &&
                v * 1000000 + d < best_pos) {
                best_pos = v * 1000000 + d;
                best = cands[k];
            }
        }
        rc = mp_set_err(err, "%s", best != NULL ? best : "duplicate domain");
    }
    free(e1);
    free(e2);
    free(e3);
out:
    free(all);
    return rc;
}

int mp_route_config_from_proto(const RouteConfiguration *pb, struct mp_route_config **out,
                               char **err)
{
    *out = NULL;
    if (pb == NULL)
        return mp_set_err(err, "no RouteConfiguration");
    struct mp_route_config *cfg = mp_route_config_new();
    if (cfg == NULL)
        return nomem(err);
    int rc = 0;
    if ((cfg->name = dup(cfg, pb->name, false)) == NULL) {
        rc = nomem(err);
        goto fail;
    }
    cfg->max_direct_response_body = pb->max_direct_response_body_size_bytes != NULL
                                        ? pb->max_direct_response_body_size_bytes->value
                                        : DEFAULT_MAX_DIRECT_BODY;
    cfg->ignore_port_in_host_matching = pb->ignore_port_in_host_matching;
    cfg->most_specific_header_mutations_wins = pb->most_specific_header_mutations_wins;
    if (pb->vhds != NULL) {
        rc = mp_set_err(err, "vhds: not supported");
        goto fail;
    }

    rc = mirrors_from_proto(cfg, pb->request_mirror_policies, pb->n_request_mirror_policies,
                            "request_mirror_policies", &cfg->mirrors, &cfg->n_mirrors, err);
    if (rc != 0)
        goto fail;
    struct mp_vhost *vhosts = mp_route_arena_alloc(cfg, pb->n_virtual_hosts * sizeof(*vhosts));
    if (vhosts == NULL) {
        rc = nomem(err);
        goto fail;
    }
    cfg->vhosts = vhosts;
    for (size_t i = 0; i < pb->n_virtual_hosts; i++) {
        rc = mp_vhost_from_proto(cfg, pb->virtual_hosts[i], &vhosts[i], err);
        if (rc != 0) {
            mp_err_prefix(err, "virtual_hosts[%zu]", i);
            goto fail;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(vhosts[k].name, vhosts[i].name) == 0) {
                rc = mp_set_err(err,
                                "virtual_hosts[%zu].name: duplicate virtual host name \"%s\" "
                                "(also virtual_hosts[%zu])",
                                i, vhosts[i].name, k);
                goto fail;
            }
        }
        cfg->n_vhosts = i + 1;
    }
    rc = build_domains(cfg, err);
    if (rc != 0)
        goto fail;

    rc = HEADER_OPS(cfg, pb, &cfg->headers, err);
    if (rc != 0)
        goto fail;
    const char **internal = mp_route_arena_alloc(cfg, pb->n_internal_only_headers * sizeof(char *));
    if (internal == NULL) {
        rc = nomem(err);
        goto fail;
    }
    for (size_t i = 0; i < pb->n_internal_only_headers; i++) {
        if ((internal[i] = dup(cfg, pb->internal_only_headers[i], true)) == NULL) {
            rc = nomem(err);
            goto fail;
        }
    }
    cfg->internal_only_headers = internal;
    cfg->n_internal_only_headers = pb->n_internal_only_headers;
    rc = TYPED_CONFIGS(cfg, pb, &cfg->per_filter, err);
    if (rc != 0)
        goto fail;
    *out = cfg;
    return 0;
fail:
    mp_route_config_free(cfg);
    return rc;
}

int mp_route_config_from_bytes(const uint8_t *data, size_t len, struct mp_route_config **out,
                               char **err)
{
    *out = NULL;
    RouteConfiguration *pb = envoy__config__route__v3__route_configuration__unpack(NULL, len, data);
    if (pb == NULL) {
        mp_set_err(err, "RouteConfiguration: could not decode protobuf");
        return MP_ERR_PARSE;
    }
    int rc = mp_route_config_from_proto(pb, out, err);
    envoy__config__route__v3__route_configuration__free_unpacked(pb, NULL);
    return rc;
}
