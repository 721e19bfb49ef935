/*
 * jwt_authn_config.h: envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
 * translated into an immutable config (providers with their parsed key sets,
 * the requirement tree, the rules), shared by all workers, and the
 * evaluation of a requirement against a request's tokens.
 */
#ifndef MP_FILTER_JWT_AUTHN_CONFIG_H
#define MP_FILTER_JWT_AUTHN_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/jwt.h"
#include "proxy/route_table.h"

struct mp_jwks;
struct mp_headers;

enum mp_jwt_loc_kind { MP_JWT_LOC_HEADER, MP_JWT_LOC_PARAM, MP_JWT_LOC_COOKIE };

/** Where a provider looks for its token. */
struct mp_jwt_location {
    enum mp_jwt_loc_kind kind;
    char *name;   /* header (lowercase), query parameter or cookie name */
    char *prefix; /* header value_prefix ("Bearer "); may be NULL */
};

struct mp_jwt_claim_header {
    char *header; /* lowercase */
    char *claim;
};

/** One JwtProvider. */
struct mp_jwt_provider {
    char *name;
    char *issuer; /* NULL: any issuer */
    char **audiences;
    size_t n_audiences;
    struct mp_jwks *jwks;
    struct mp_jwt_location *locs;
    size_t n_locs;
    struct mp_jwt_claim_header *claims;
    size_t n_claims;
    char *payload_header; /* forward_payload_header, lowercase; NULL when unset */
    char *payload_in_metadata;
    char *header_in_metadata;        /* the JWT header as metadata; NULL when unset */
    char *failed_status_in_metadata; /* {code, message} of a failure; NULL when unset */
    char **space_claims;             /* normalize_payload_in_metadata.space_delimited_claims */
    size_t n_space_claims;
    bool has_subjects;
    struct mp_string_match subjects; /* in the config's match_arena */
    bool pad_payload;
    bool forward;
    bool require_exp;
    uint32_t clock_skew;   /* seconds, default 60 */
    uint64_t max_lifetime; /* seconds, 0 = none */
};

enum mp_jwt_req_kind {
    MP_JWT_REQ_PROVIDER, /* provider_name or provider_and_audiences */
    MP_JWT_REQ_ANY,
    MP_JWT_REQ_ALL,
    MP_JWT_REQ_ALLOW_MISSING,
    MP_JWT_REQ_ALLOW_MISSING_OR_FAILED,
};

/** A JwtRequirement tree node. */
struct mp_jwt_req {
    enum mp_jwt_req_kind kind;
    const struct mp_jwt_provider *provider; /* PROVIDER */
    char **audiences; /* provider_and_audiences: replaces the provider's list */
    size_t n_audiences;
    bool has_audiences;
    struct mp_jwt_req *children; /* ANY, ALL */
    size_t n_children;
};

struct mp_jwt_rule {
    struct mp_vhost vhost;        /* one route holding the rule's RouteMatch */
    const struct mp_jwt_req *req; /* NULL: the rule requires nothing */
    struct mp_jwt_req own;        /* when the rule has `requires` */
};

struct mp_jwt_named_req {
    char *name;
    struct mp_jwt_req req;
};

struct mp_jwt_authn_stats;

struct mp_jwt_authn_config {
    struct mp_jwt_provider *providers;
    size_t n_providers;
    struct mp_jwt_rule *rules;
    size_t n_rules;
    struct mp_route_config *match_arena; /* owns the rules' matchers */
    struct mp_jwt_named_req *map;        /* requirement_map */
    size_t n_map;
    bool bypass_cors_preflight;
    bool strip_failure_response;
    _Atomic(struct mp_jwt_authn_stats *) stats; /* set on first request */
    struct mp_route_config_cache *routes;       /* parsed PerRouteConfigs */
};

/**
 * Translates the serialized JwtAuthentication in data[0..len) into *out
 * (free with mp_jwt_authn_config_free). local_jwks files are read now.
 * Returns 0, or MP_ERR_PARSE / MP_ERR_INVAL / MP_ERR_UNSUPPORTED (remote_jwks,
 * filter_state_rules) / MP_ERR_NOMEM with *err naming the field, e.g.
 * `providers["p"].local_jwks: JWKS is not valid JSON: ...`.
 */
int mp_jwt_authn_config_parse(const uint8_t *data, size_t len, struct mp_jwt_authn_config **out,
                              char **err);

/** Frees a config. NULL is allowed. */
void mp_jwt_authn_config_free(struct mp_jwt_authn_config *c);

/** The requirement_map entry named name, or NULL. */
const struct mp_jwt_req *mp_jwt_authn_config_find_req(const struct mp_jwt_authn_config *c,
                                                      const char *name);

/**
 * Applies a typed_per_filter_config entry (a PerRouteConfig) of c's filter:
 * *disabled when the route turns the filter off, else *req gets the
 * requirement_map entry it names (NULL when it names none). Parsed configs
 * are cached in c. Returns 0, MP_ERR_NOTFOUND when the named requirement is
 * not in requirement_map (Envoy answers 403), MP_ERR_PARSE or MP_ERR_NOMEM.
 */
int mp_jwt_authn_per_route(const struct mp_jwt_authn_config *c, const struct mp_typed_config *tc,
                           bool *disabled, const struct mp_jwt_req **req);

/**
 * The requirement of the first rule whose match holds for rq; NULL when no
 * rule matches or the matching rule requires nothing.
 */
const struct mp_jwt_req *mp_jwt_authn_config_match(const struct mp_jwt_authn_config *c,
                                                   const struct mp_route_request *rq);

/** One verified token, for the filter to act on (forward, payload headers, metadata). */
struct mp_jwt_verified {
    const struct mp_jwt_provider *provider;
    const struct mp_jwt_location *loc; /* where it was found */
    struct mp_jwt jwt;
};

/** The tokens a request carries and what became of them, for one evaluation. */
struct mp_jwt_eval {
    const struct mp_headers *headers; /* the request's */
    uint64_t now;                     /* Unix seconds */
    struct mp_jwt_verified *ok;       /* verified tokens (malloc'd) */
    size_t n_ok, cap_ok;
    /* the last token that failed, for failed_status_in_metadata */
    const struct mp_jwt_provider *failed_provider;
    enum mp_jwt_status failed_status;
};

/**
 * Evaluates requirement r for the request in e (tokens from e->headers as
 * each provider locates them), adding every token that verified to e->ok
 * (each token once). Returns MP_JWT_OK when the requirement is met, else the
 * status to report (MP_JWT_MISSED, MP_JWT_AUDIENCE_NOT_ALLOWED, ...).
 */
enum mp_jwt_status mp_jwt_req_eval(const struct mp_jwt_req *r, const struct mp_jwt_authn_config *c,
                                   struct mp_jwt_eval *e);

/** Frees the verified tokens of e. */
void mp_jwt_eval_clear(struct mp_jwt_eval *e);

/**
 * Finds the token at location loc of headers: the header value after its
 * prefix, the query parameter of :path, or the cookie. tok and len point into
 * headers. Returns true when found (non-empty).
 */
bool mp_jwt_location_find(const struct mp_jwt_location *loc, const struct mp_headers *headers,
                          const char **tok, size_t *len);

#endif
