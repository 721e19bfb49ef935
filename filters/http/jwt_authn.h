/*
 * jwt_authn.h: envoy.filters.http.jwt_authn
 * (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication), the filter
 * Istio's RequestAuthentication compiles to.
 *
 * Providers with local_jwks (inline_string, inline_bytes or filename; JWKS
 * JSON or PEM), token locations (from_headers with value_prefix, from_params,
 * from_cookies; default "Authorization: Bearer" and "access_token"), issuer,
 * audiences, clock_skew_seconds, require_expiration, max_lifetime, forward,
 * forward_payload_header, payload_in_metadata, claim_to_headers. Requirements:
 * rules (RouteMatch, first match wins), requirement_map with a per-route
 * PerRouteConfig (requirement_name or disabled), provider_name,
 * provider_and_audiences, requires_any, requires_all, allow_missing,
 * allow_missing_or_failed; bypass_cors_preflight. remote_jwks is refused at
 * config time (not supported). A failure answers 401 (403 for audiences)
 * with the jwt_verify_lib message as body and a WWW-Authenticate Bearer
 * realm header. Stats http.<hcm prefix>.jwt_authn.allowed / denied /
 * cors_preflight_bypassed.
 */
#ifndef MP_FILTER_HTTP_JWT_AUTHN_H
#define MP_FILTER_HTTP_JWT_AUTHN_H

#include <stddef.h>

#include "proxy/http_filter.h"

struct mp_http_stream;
struct mp_json;

/** The filter's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_jwt_authn;

/**
 * The dynamic metadata this filter stored on stream s: the verified JWT
 * payload stored under the provider's payload_in_metadata key (Envoy's
 * metadata namespace "envoy.filters.http.jwt_authn", key `key`). For RBAC's
 * metadata matcher: walk the returned JSON object along the matcher's path.
 * Returns the payload's root object (borrowed; valid until the stream
 * ends), or NULL when the stream has no jwt_authn filter or nothing was
 * stored under key.
 */
const struct mp_json *mp_jwt_authn_metadata(const struct mp_http_stream *s, const char *key);

/**
 * mp_jwt_authn_metadata followed by path[0..n) into nested objects (the
 * MetadataMatcher path after its first key). Returns the node or NULL.
 */
const struct mp_json *mp_jwt_authn_metadata_path(const struct mp_http_stream *s, const char *key,
                                                 const char *const *path, size_t n);

#endif
