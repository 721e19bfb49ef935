/*
 * jwt_authn_config.c: JwtAuthentication -> struct mp_jwt_authn_config, and
 * requirement evaluation. Rule matchers are translated by the route module
 * (one single-route virtual host per rule) so that prefix/path/safe_regex/
 * headers/query_parameters match exactly as routes do.
 */
#include "jwt_authn_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "filters/http/route_config_cache.h"
#include "proxy/http_headers.h"
#include "proxy/jwt_jwks.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"
#include "xds/xds_translate_route.h"

typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtAuthentication AuthnPb;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider ProviderPb;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtRequirement RequirementPb;
typedef Envoy__Extensions__Filters__Http__JwtAuthn__V3__RequirementRule RulePb;

#define MAX_JWKS_FILE (4u << 20)
#define MAX_REQ_DEPTH 16

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

static int strv_dup(char **src, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **v = calloc(n, sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if ((v[i] = strdup(src[i])) == NULL) {
            strv_free(v, i);
            return MP_ERR_NOMEM;
        }
    *out = v;
    return 0;
}

static void provider_clear(struct mp_jwt_provider *p)
{
    free(p->name);
    free(p->issuer);
    strv_free(p->audiences, p->n_audiences);
    mp_jwks_free(p->jwks);
    for (size_t i = 0; i < p->n_locs; i++) {
        free(p->locs[i].name);
        free(p->locs[i].prefix);
    }
    free(p->locs);
    for (size_t i = 0; i < p->n_claims; i++) {
        free(p->claims[i].header);
        free(p->claims[i].claim);
    }
    free(p->claims);
    free(p->payload_header);
    free(p->payload_in_metadata);
    free(p->header_in_metadata);
    free(p->failed_status_in_metadata);
    strv_free(p->space_claims, p->n_space_claims);
}

static void req_clear(struct mp_jwt_req *r)
{
    for (size_t i = 0; i < r->n_children; i++)
        req_clear(&r->children[i]);
    free(r->children);
    strv_free(r->audiences, r->n_audiences);
    memset(r, 0, sizeof(*r));
}

void mp_jwt_authn_config_free(struct mp_jwt_authn_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_providers; i++)
        provider_clear(&c->providers[i]);
    free(c->providers);
    for (size_t i = 0; i < c->n_rules; i++)
        req_clear(&c->rules[i].own);
    free(c->rules);
    mp_route_config_free(c->match_arena);
    for (size_t i = 0; i < c->n_map; i++) {
        free(c->map[i].name);
        req_clear(&c->map[i].req);
    }
    free(c->map);
    free(atomic_load(&c->stats));
    mp_route_config_cache_free(c->routes);
    free(c);
}

/* Prepends to *err as is (mp_err_prefix would add a '.'): for messages that
 * start with '.' or ':' already. */
static void __attribute__((format(printf, 2, 3))) prefix_raw(char **err, const char *fmt, ...)
{
    if (!err || !*err)
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    char *m = NULL;
    mp_set_err(&m, "%s%s", what, *err);
    if (m) {
        free(*err);
        *err = m;
    }
}

/* ---- providers ------------------------------------------------------------ */

static int read_file(const char *path, char **out, size_t *len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mp_set_err(err, ": cannot open \"%s\": %s", path, strerror(errno));
    char *buf = malloc(MAX_JWKS_FILE + 1);
    if (!buf) {
        fclose(f);
        return MP_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, MAX_JWKS_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_JWKS_FILE) {
        free(buf);
        return mp_set_err(err, ": cannot read \"%s\"%s", path, bad ? "" : ": larger than 4 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int local_jwks(const Envoy__Config__Core__V3__DataSource *ds, struct mp_jwks **out,
                      char **err)
{
    const char *text = NULL;
    size_t len = 0;
    char *owned = NULL;
    int rc;
    switch (ds->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        text = ds->inline_string;
        len = strlen(text);
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        text = (const char *)ds->inline_bytes.data;
        len = ds->inline_bytes.len;
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
        rc = read_file(ds->filename, &owned, &len, err);
        if (rc < 0) {
            mp_err_prefix(err, "filename");
            return rc;
        }
        text = owned;
        break;
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
        text = getenv(ds->environment_variable);
        if (!text)
            return mp_set_err(err, "environment_variable: \"%s\" is not set",
                              ds->environment_variable);
        len = strlen(text);
        break;
    default: return mp_set_err(err, ": one of inline_string, inline_bytes or filename is required");
    }
    rc = mp_jwks_parse(text ? text : "", len, out, err);
    free(owned);
    if (rc < 0)
        prefix_raw(err, "%s", ": ");
    return rc;
}

static int provider_locations(const ProviderPb *pb, struct mp_jwt_provider *p, char **err)
{
    size_t n = pb->n_from_headers + pb->n_from_params + pb->n_from_cookies;
    bool dflt = n == 0;
    if (dflt)
        n = 2; /* Authorization: Bearer, and ?access_token= */
    p->locs = calloc(n, sizeof(*p->locs));
    if (!p->locs)
        return MP_ERR_NOMEM;
    if (dflt) {
        p->locs[0] =
            (struct mp_jwt_location){MP_JWT_LOC_HEADER, strdup("authorization"), strdup("Bearer ")};
        p->locs[1] = (struct mp_jwt_location){MP_JWT_LOC_PARAM, strdup("access_token"), NULL};
        p->n_locs = 2;
        if (!p->locs[0].name || !p->locs[0].prefix || !p->locs[1].name)
            return MP_ERR_NOMEM;
        return 0;
    }
    for (size_t i = 0; i < pb->n_from_headers; i++) {
        const char *name = pb->from_headers[i]->name;
        if (!name || !*name)
            return mp_set_err(err, "from_headers[%zu].name: must not be empty", i);
        struct mp_jwt_location *l = &p->locs[p->n_locs++];
        l->kind = MP_JWT_LOC_HEADER;
        l->name = lower_dup(name);
        const char *pre = pb->from_headers[i]->value_prefix;
        if (pre && *pre && (l->prefix = strdup(pre)) == NULL)
            return MP_ERR_NOMEM;
        if (!l->name)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_from_params; i++) {
        struct mp_jwt_location *l = &p->locs[p->n_locs++];
        l->kind = MP_JWT_LOC_PARAM;
        if ((l->name = strdup(pb->from_params[i])) == NULL)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_from_cookies; i++) {
        struct mp_jwt_location *l = &p->locs[p->n_locs++];
        l->kind = MP_JWT_LOC_COOKIE;
        if ((l->name = strdup(pb->from_cookies[i])) == NULL)
            return MP_ERR_NOMEM;
    }
    return 0;
}

static int opt_dup(const char *s, char **out)
{
    if (!s || !*s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : MP_ERR_NOMEM;
}

static int provider_from_pb(struct mp_jwt_authn_config *c, const char *name, const ProviderPb *pb,
                            struct mp_jwt_provider *p, char **err)
{
    int rc;
    if ((p->name = strdup(name)) == NULL)
        return MP_ERR_NOMEM;
    if (pb->jwks_source_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_REMOTE_JWKS) {
        mp_set_err(err, "remote_jwks: fetching JWKS over HTTP is not supported by meshproxy; "
                        "use local_jwks (istiod inlines JWKS by default)");
        return MP_ERR_UNSUPPORTED;
    }
    if (pb->jwks_source_specifier_case !=
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_PROVIDER__JWKS_SOURCE_SPECIFIER_LOCAL_JWKS)
        return mp_set_err(err, "local_jwks: a JWKS source (local_jwks) is required");
    rc = local_jwks(pb->local_jwks, &p->jwks, err);
    if (rc < 0) {
        mp_err_prefix(err, "local_jwks");
        return rc;
    }
    if (pb->subjects) {
        rc = mp_string_match_from_proto(c->match_arena, pb->subjects, &p->subjects, err);
        if (rc < 0) {
            mp_err_prefix(err, "subjects");
            return rc;
        }
        p->has_subjects = true;
    }
    if (pb->normalize_payload_in_metadata) {
        const Envoy__Extensions__Filters__Http__JwtAuthn__V3__JwtProvider__NormalizePayload *np =
            pb->normalize_payload_in_metadata;
        if (strv_dup(np->space_delimited_claims, np->n_space_delimited_claims, &p->space_claims) <
            0)
            return MP_ERR_NOMEM;
        p->n_space_claims = np->n_space_delimited_claims;
    }
    if (opt_dup(pb->header_in_metadata, &p->header_in_metadata) < 0 ||
        opt_dup(pb->failed_status_in_metadata, &p->failed_status_in_metadata) < 0)
        return MP_ERR_NOMEM;
    if (pb->issuer && *pb->issuer && (p->issuer = strdup(pb->issuer)) == NULL)
        return MP_ERR_NOMEM;
    if (strv_dup(pb->audiences, pb->n_audiences, &p->audiences) < 0)
        return MP_ERR_NOMEM;
    p->n_audiences = pb->n_audiences;
    if ((rc = provider_locations(pb, p, err)) < 0)
        return rc;
    if (pb->forward_payload_header && *pb->forward_payload_header &&
        (p->payload_header = lower_dup(pb->forward_payload_header)) == NULL)
        return MP_ERR_NOMEM;
    if (pb->payload_in_metadata && *pb->payload_in_metadata &&
        (p->payload_in_metadata = strdup(pb->payload_in_metadata)) == NULL)
        return MP_ERR_NOMEM;
    if (pb->n_claim_to_headers) {
        p->claims = calloc(pb->n_claim_to_headers, sizeof(*p->claims));
        if (!p->claims)
            return MP_ERR_NOMEM;
        for (size_t i = 0; i < pb->n_claim_to_headers; i++) {
            const char *h = pb->claim_to_headers[i]->header_name;
            const char *cl = pb->claim_to_headers[i]->claim_name;
            if (!h || !*h || !cl || !*cl)
                return mp_set_err(err,
                                  "claim_to_headers[%zu]: header_name and claim_name are "
                                  "required",
                                  i);
            p->claims[i].header = lower_dup(h);
            p->claims[i].claim = strdup(cl);
            p->n_claims++;
            if (!p->claims[i].header || !p->claims[i].claim)
                return MP_ERR_NOMEM;
        }
    }
    p->pad_payload = pb->pad_forward_payload_header;
    p->forward = pb->forward;
    p->require_exp = pb->require_expiration;
    /* 0 in the proto means unset: Envoy's default skew is 60 s */
    p->clock_skew = pb->clock_skew_seconds ? pb->clock_skew_seconds : 60;
    if (pb->max_lifetime) {
        if (pb->max_lifetime->seconds < 0)
            return mp_set_err(err, "max_lifetime: must not be negative");
        p->max_lifetime = (uint64_t)pb->max_lifetime->seconds + (pb->max_lifetime->nanos > 0);
    }
    return 0;
}

/* ---- requirements --------------------------------------------------------- */

static const struct mp_jwt_provider *find_provider(const struct mp_jwt_authn_config *c,
                                                   const char *name)
{
    for (size_t i = 0; i < c->n_providers; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

static int req_from_pb(const struct mp_jwt_authn_config *c, const RequirementPb *pb,
                       struct mp_jwt_req *r, unsigned depth, char **err)
{
    if (depth > MAX_REQ_DEPTH)
        return mp_set_err(err, ": requirements nested deeper than %d", MAX_REQ_DEPTH);
    const char *pname = NULL;
    size_t n = 0;
    RequirementPb **kids = NULL;
    switch (pb->requires_type_case) {
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_PROVIDER_NAME:
        pname = pb->provider_name;
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_PROVIDER_AND_AUDIENCES:
        pname = pb->provider_and_audiences->provider_name;
        r->has_audiences = true;
        if (strv_dup(pb->provider_and_audiences->audiences, pb->provider_and_audiences->n_audiences,
                     &r->audiences) < 0)
            return MP_ERR_NOMEM;
        r->n_audiences = pb->provider_and_audiences->n_audiences;
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ANY:
        r->kind = MP_JWT_REQ_ANY;
        n = pb->requires_any->n_requirements;
        kids = pb->requires_any->requirements;
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_REQUIRES_ALL:
        r->kind = MP_JWT_REQ_ALL;
        n = pb->requires_all->n_requirements;
        kids = pb->requires_all->requirements;
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_ALLOW_MISSING:
        r->kind = MP_JWT_REQ_ALLOW_MISSING;
        return 0;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__JWT_REQUIREMENT__REQUIRES_TYPE_ALLOW_MISSING_OR_FAILED:
        r->kind = MP_JWT_REQ_ALLOW_MISSING_OR_FAILED;
        return 0;
    default: return mp_set_err(err, ": a requirement type is required");
    }
    if (pname) {
        r->kind = MP_JWT_REQ_PROVIDER;
        r->provider = find_provider(c, pname);
        if (!r->provider)
            return mp_set_err(err, ".provider_name: unknown provider \"%s\"", pname);
        return 0;
    }
    const char *field = r->kind == MP_JWT_REQ_ANY ? "requires_any" : "requires_all";
    if (n < 2)
        return mp_set_err(err, ".%s.requirements: at least 2 are required", field);
    r->children = calloc(n, sizeof(*r->children));
    if (!r->children)
        return MP_ERR_NOMEM;
    r->n_children = n;
    for (size_t i = 0; i < n; i++) {
        int rc = req_from_pb(c, kids[i], &r->children[i], depth + 1, err);
        if (rc < 0) {
            prefix_raw(err, ".%s.requirements[%zu]", field, i);
            return rc;
        }
    }
    return 0;
}

const struct mp_jwt_req *mp_jwt_authn_config_find_req(const struct mp_jwt_authn_config *c,
                                                      const char *name)
{
    for (size_t i = 0; i < c->n_map; i++)
        if (strcmp(c->map[i].name, name) == 0)
            return &c->map[i].req;
    return NULL;
}

static int rule_from_pb(struct mp_jwt_authn_config *c, const RulePb *pb, struct mp_jwt_rule *rule,
                        char **err)
{
    if (!pb->match)
        return mp_set_err(err, "match: required");
    /* a one-route virtual host makes the route module translate the RouteMatch */
    /* the _init functions, not the INIT macros: those name deprecated fields */
    Envoy__Config__Route__V3__DirectResponseAction dr;
    envoy__config__route__v3__direct_response_action__init(&dr);
    dr.status = 200;
    Envoy__Config__Route__V3__Route route;
    envoy__config__route__v3__route__init(&route);
    route.match = pb->match;
    route.action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    route.direct_response = &dr;
    Envoy__Config__Route__V3__Route *routes[1] = {&route};
    Envoy__Config__Route__V3__VirtualHost vh;
    envoy__config__route__v3__virtual_host__init(&vh);
    char name[] = "jwt_rule", star[] = "*";
    char *domains[1] = {star};
    vh.name = name;
    vh.n_domains = 1;
    vh.domains = domains;
    vh.n_routes = 1;
    vh.routes = routes;
    int rc = mp_vhost_from_proto(c->match_arena, &vh, &rule->vhost, err);
    if (rc < 0) {
        /* "routes[0].match.x" -> "match.x" */
        if (err && *err && strncmp(*err, "routes[0].", 10) == 0)
            memmove(*err, *err + 10, strlen(*err + 10) + 1);
        return rc;
    }
    switch (pb->requirement_type_case) {
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__REQUIREMENT_RULE__REQUIREMENT_TYPE_REQUIRES:
        rc = req_from_pb(c, pb->requires, &rule->own, 0, err);
        if (rc < 0) {
            prefix_raw(err, "%s", "requires");
            return rc;
        }
        rule->req = &rule->own;
        break;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__REQUIREMENT_RULE__REQUIREMENT_TYPE_REQUIREMENT_NAME:
        rule->req = mp_jwt_authn_config_find_req(c, pb->requirement_name);
        if (!rule->req)
            return mp_set_err(err, "requirement_name: \"%s\" is not in requirement_map",
                              pb->requirement_name);
        break;
    default: rule->req = NULL; /* no requirement: the request passes unverified */
    }
    return 0;
}

static int per_route_parse(const uint8_t *data, size_t len, void **out);
static void per_route_free(void *p);

static int config_from_pb(const AuthnPb *pb, struct mp_jwt_authn_config *c, char **err)
{
    int rc;
    if (pb->filter_state_rules) {
        mp_set_err(err, "filter_state_rules: not supported by meshproxy");
        return MP_ERR_UNSUPPORTED;
    }
    c->bypass_cors_preflight = pb->bypass_cors_preflight;
    c->strip_failure_response = pb->strip_failure_response;
    /* owns the rules' matchers and the providers' subjects matchers */
    if ((c->match_arena = mp_route_config_new()) == NULL)
        return MP_ERR_NOMEM;
    if (pb->n_providers) {
        c->providers = calloc(pb->n_providers, sizeof(*c->providers));
        if (!c->providers)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_providers; i++) {
        const char *key = pb->providers[i]->key;
        c->n_providers++;
        if (!pb->providers[i]->value)
            return mp_set_err(err, "providers[\"%s\"]: no provider", key);
        rc = provider_from_pb(c, key, pb->providers[i]->value, &c->providers[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "providers[\"%s\"]", key);
            return rc;
        }
    }
    if (pb->n_requirement_map) {
        c->map = calloc(pb->n_requirement_map, sizeof(*c->map));
        if (!c->map)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_requirement_map; i++) {
        const char *key = pb->requirement_map[i]->key;
        struct mp_jwt_named_req *e = &c->map[i];
        c->n_map++;
        if ((e->name = strdup(key)) == NULL)
            return MP_ERR_NOMEM;
        if (!pb->requirement_map[i]->value)
            return mp_set_err(err, "requirement_map[\"%s\"]: no requirement", key);
        rc = req_from_pb(c, pb->requirement_map[i]->value, &e->req, 0, err);
        if (rc < 0) {
            prefix_raw(err, "requirement_map[\"%s\"]", key);
            return rc;
        }
    }
    if (pb->n_rules) {
        c->rules = calloc(pb->n_rules, sizeof(*c->rules));
        if (!c->rules)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_rules; i++) {
        c->n_rules++;
        rc = rule_from_pb(c, pb->rules[i], &c->rules[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "rules[%zu]", i);
            return rc;
        }
    }
    c->routes = mp_route_config_cache_new(64, per_route_parse, per_route_free);
    return c->routes ? 0 : MP_ERR_NOMEM;
}

int mp_jwt_authn_config_parse(const uint8_t *data, size_t len, struct mp_jwt_authn_config **out,
                              char **err)
{
    AuthnPb *pb = envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__unpack(
        NULL, len, data);
    if (!pb) {
        mp_set_err(err, ": cannot decode "
                        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication");
        return MP_ERR_PARSE;
    }
    int rc = MP_ERR_NOMEM;
    struct mp_jwt_authn_config *c = calloc(1, sizeof(*c));
    if (c)
        rc = config_from_pb(pb, c, err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    if (rc < 0) {
        mp_jwt_authn_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* PerRouteConfig, cached as a small struct: the name is looked up per request. */
struct per_route {
    bool disabled;
    char *requirement_name; /* NULL when disabled */
};

static void per_route_free(void *p)
{
    struct per_route *r = p;
    if (r)
        free(r->requirement_name);
    free(r);
}

static int per_route_parse(const uint8_t *data, size_t len, void **out)
{
    Envoy__Extensions__Filters__Http__JwtAuthn__V3__PerRouteConfig *pb =
        envoy__extensions__filters__http__jwt_authn__v3__per_route_config__unpack(NULL, len, data);
    if (!pb)
        return MP_ERR_PARSE;
    int rc = 0;
    struct per_route *r = calloc(1, sizeof(*r));
    if (!r)
        rc = MP_ERR_NOMEM;
    else if (
        pb->requirement_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__HTTP__JWT_AUTHN__V3__PER_ROUTE_CONFIG__REQUIREMENT_SPECIFIER_REQUIREMENT_NAME) {
        r->requirement_name = strdup(pb->requirement_name);
        if (!r->requirement_name)
            rc = MP_ERR_NOMEM;
    } else {
        r->disabled = pb->disabled;
    }
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    if (rc < 0) {
        per_route_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int mp_jwt_authn_per_route(const struct mp_jwt_authn_config *c, const struct mp_typed_config *tc,
                           bool *disabled, const struct mp_jwt_req **req)
{
    void *cached = NULL;
    int rc = mp_route_config_cache_get(c->routes, tc, &cached);
    struct per_route *tmp = NULL;
    if (rc == MP_ERR_LIMIT) {
        /* the cache is full: decode for this request */
        rc = per_route_parse(tc->value, tc->value_len, &cached);
        tmp = cached;
    }
    if (rc < 0)
        return rc;
    const struct per_route *r = cached;
    if (!r)
        return MP_ERR_PARSE;
    *disabled = r->disabled;
    *req = NULL;
    if (r->requirement_name) {
        *req = mp_jwt_authn_config_find_req(c, r->requirement_name);
        if (!*req)
            rc = MP_ERR_NOTFOUND;
    }
    per_route_free(tmp);
    return rc;
}

const struct mp_jwt_req *mp_jwt_authn_config_match(const struct mp_jwt_authn_config *c,
                                                   const struct mp_route_request *rq)
{
    for (size_t i = 0; i < c->n_rules; i++)
        if (mp_route_matches(&c->rules[i].vhost.routes[0], rq))
            return c->rules[i].req;
    return NULL;
}

/* ---- token locations ------------------------------------------------------- */

/* The value of name in a "k=v&k=v" list (query) or "k=v; k=v" list (cookies). */
static bool find_pair(const char *s, size_t len, char sep, const char *name, const char **val,
                      size_t *vlen)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || (sep == ';' && s[i] == '\t')))
            i++;
        size_t start = i;
        while (i < len && s[i] != sep)
            i++;
        size_t end = i;
        if (i < len)
            i++;
        const char *eq = memchr(s + start, '=', end - start);
        if (eq && (size_t)(eq - (s + start)) == nl && memcmp(s + start, name, nl) == 0) {
            *val = eq + 1;
            *vlen = (size_t)(s + end - (eq + 1));
            return *vlen > 0;
        }
    }
    return false;
}

/* base64url, the dots, and what a padded or standard-alphabet token may hold */
static bool jwt_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '=' || c == '+' || c == '/';
}

bool mp_jwt_location_find(const struct mp_jwt_location *loc, const struct mp_headers *headers,
                          const char **tok, size_t *len)
{
    switch (loc->kind) {
    case MP_JWT_LOC_HEADER:
        for (size_t i = 0; i < headers->n; i++) {
            const struct mp_header *h = &headers->v[i];
            if (strcmp(h->name, loc->name) != 0)
                continue;
            const char *v = h->value;
            size_t vl = h->value_len;
            if (loc->prefix) {
                /* Envoy looks for the prefix anywhere in the value (case-sensitive) */
                const char *p = strstr(v, loc->prefix);
                if (!p)
                    continue;
                vl -= (size_t)(p - v) + strlen(loc->prefix);
                v = p + strlen(loc->prefix);
                /* the token is the run of JWT characters after the prefix */
                size_t e = 0;
                while (e < vl && jwt_char((unsigned char)v[e]))
                    e++;
                vl = e;
            }
            if (vl > 0) {
                *tok = v;
                *len = vl;
                return true;
            }
        }
        return false;
    case MP_JWT_LOC_PARAM: {
        const char *path = mp_headers_value(headers, ":path");
        const char *q = path ? strchr(path, '?') : NULL;
        if (!q)
            return false;
        q++;
        size_t ql = strcspn(q, "#");
        return find_pair(q, ql, '&', loc->name, tok, len);
    }
    case MP_JWT_LOC_COOKIE:
        for (size_t i = 0; i < headers->n; i++) {
            const struct mp_header *h = &headers->v[i];
            if (strcmp(h->name, "cookie") == 0 &&
                find_pair(h->value, h->value_len, ';', loc->name, tok, len))
                return true;
        }
        return false;
    }
    return false;
}

/* ---- evaluation ------------------------------------------------------------ */

void mp_jwt_eval_clear(struct mp_jwt_eval *e)
{
    for (size_t i = 0; i < e->n_ok; i++)
        mp_jwt_clear(&e->ok[i].jwt);
    free(e->ok);
    e->ok = NULL;
    e->n_ok = e->cap_ok = 0;
}

static bool already_verified(const struct mp_jwt_eval *e, const struct mp_jwt_provider *p,
                             const char *tok, size_t len)
{
    for (size_t i = 0; i < e->n_ok; i++) {
        const struct mp_jwt *j = &e->ok[i].jwt;
        if (e->ok[i].provider == p && j->signed_len < len &&
            memcmp(j->signed_part, tok, j->signed_len) == 0)
            return true;
    }
    return false;
}

/* Verifies one token with provider p; keeps it in e->ok when it passes. */
static enum mp_jwt_status verify_token(const struct mp_jwt_provider *p,
                                       const struct mp_jwt_location *loc, const char *tok,
                                       size_t len, const char *const *aud, size_t n_aud,
                                       struct mp_jwt_eval *e)
{
    if (already_verified(e, p, tok, len))
        return MP_JWT_OK;
    struct mp_jwt jwt;
    enum mp_jwt_status st = mp_jwt_parse(tok, len, &jwt);
    if (st == MP_JWT_OK && p->issuer && (!jwt.iss || strcmp(jwt.iss, p->issuer) != 0))
        st = MP_JWT_UNKNOWN_ISSUER;
    if (st == MP_JWT_OK)
        st = mp_jwt_check_time(&jwt, e->now, p->clock_skew, p->require_exp, p->max_lifetime);
    if (st == MP_JWT_OK && p->has_subjects &&
        (!jwt.sub || !mp_string_match_eval(&p->subjects, jwt.sub, strlen(jwt.sub))))
        st = MP_JWT_SUBJECT_NOT_ALLOWED;
    if (st == MP_JWT_OK && !mp_jwt_audience_allowed(&jwt, aud, n_aud))
        st = MP_JWT_AUDIENCE_NOT_ALLOWED;
    if (st == MP_JWT_OK)
        st = mp_jwks_verify(p->jwks, &jwt);
    if (st == MP_JWT_OK && e->n_ok == e->cap_ok) {
        size_t cap = e->cap_ok ? 2 * e->cap_ok : 2;
        struct mp_jwt_verified *v = realloc(e->ok, cap * sizeof(*v));
        if (!v)
            st = MP_JWT_VERIFICATION_FAIL; /* out of memory fails closed */
        else {
            e->ok = v;
            e->cap_ok = cap;
        }
    }
    if (st != MP_JWT_OK) {
        mp_jwt_clear(&jwt);
        e->failed_provider = p;
        e->failed_status = st;
        return st;
    }
    e->ok[e->n_ok++] = (struct mp_jwt_verified){.provider = p, .loc = loc, .jwt = jwt};
    return MP_JWT_OK;
}

static enum mp_jwt_status eval_provider(const struct mp_jwt_req *r, struct mp_jwt_eval *e)
{
    const struct mp_jwt_provider *p = r->provider;
    for (size_t i = 0; i < p->n_locs; i++) {
        const char *tok;
        size_t len;
        if (!mp_jwt_location_find(&p->locs[i], e->headers, &tok, &len))
            continue;
        const char *const *aud =
            (const char *const *)(r->has_audiences ? r->audiences : p->audiences);
        size_t n_aud = r->has_audiences ? r->n_audiences : p->n_audiences;
        return verify_token(p, &p->locs[i], tok, len, aud, n_aud, e);
    }
    return MP_JWT_MISSED;
}

/*
 * allow_missing(_or_failed): the first token found at any provider's location
 * is checked by the provider of its issuer (one that has that location).
 */
static enum mp_jwt_status eval_any_provider(const struct mp_jwt_authn_config *c,
                                            struct mp_jwt_eval *e)
{
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct mp_jwt_provider *p = &c->providers[i];
        for (size_t j = 0; j < p->n_locs; j++) {
            const char *tok;
            size_t len;
            if (!mp_jwt_location_find(&p->locs[j], e->headers, &tok, &len))
                continue;
            struct mp_jwt jwt;
            enum mp_jwt_status st = mp_jwt_parse(tok, len, &jwt);
            const char *iss = st == MP_JWT_OK ? jwt.iss : NULL;
            const struct mp_jwt_provider *use = NULL;
            /* the issuer's provider, among those reading this location */
            for (size_t k = 0; st == MP_JWT_OK && k < c->n_providers && !use; k++) {
                const struct mp_jwt_provider *q = &c->providers[k];
                if (q->issuer && (!iss || strcmp(q->issuer, iss) != 0))
                    continue;
                for (size_t l = 0; l < q->n_locs; l++)
                    if (q->locs[l].kind == p->locs[j].kind &&
                        strcmp(q->locs[l].name, p->locs[j].name) == 0) {
                        use = q;
                        break;
                    }
            }
            mp_jwt_clear(&jwt);
            if (st == MP_JWT_OK && !use)
                st = MP_JWT_UNKNOWN_ISSUER;
            if (st != MP_JWT_OK) {
                e->failed_provider = p;
                e->failed_status = st;
                return st;
            }
            const struct mp_jwt_location *loc = &p->locs[j];
            return verify_token(use, loc, tok, len, (const char *const *)use->audiences,
                                use->n_audiences, e);
        }
    }
    return MP_JWT_MISSED;
}

enum mp_jwt_status mp_jwt_req_eval(const struct mp_jwt_req *r, const struct mp_jwt_authn_config *c,
                                   struct mp_jwt_eval *e)
{
    enum mp_jwt_status st;
    switch (r->kind) {
    case MP_JWT_REQ_PROVIDER: return eval_provider(r, e);
    case MP_JWT_REQ_ALLOW_MISSING:
        st = eval_any_provider(c, e);
        return st == MP_JWT_MISSED ? MP_JWT_OK : st;
    case MP_JWT_REQ_ALLOW_MISSING_OR_FAILED: (void)eval_any_provider(c, e); return MP_JWT_OK;
    case MP_JWT_REQ_ALL:
        for (size_t i = 0; i < r->n_children; i++)
            if ((st = mp_jwt_req_eval(&r->children[i], c, e)) != MP_JWT_OK)
                return st;
        return MP_JWT_OK;
    case MP_JWT_REQ_ANY: {
        /* missing (or a token of another issuer) only counts when nothing else failed */
        enum mp_jwt_status final = MP_JWT_MISSED;
        for (size_t i = 0; i < r->n_children; i++) {
            st = mp_jwt_req_eval(&r->children[i], c, e);
            if (st == MP_JWT_OK)
                return MP_JWT_OK;
            if (st != MP_JWT_MISSED && st != MP_JWT_UNKNOWN_ISSUER)
                final = st;
        }
        return final;
    }
    }
    return MP_JWT_VERIFICATION_FAIL;
}
