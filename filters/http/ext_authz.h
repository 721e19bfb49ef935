/*
 * ext_authz.h: envoy.filters.http.ext_authz, external authorization.
 *
 * Each request is checked with an authorization server before it goes on:
 * over gRPC (envoy.service.auth.v3.Authorization/Check, grpc_service with
 * envoy_grpc or google_grpc) or over HTTP (http_service: the allowed request
 * headers go to server_uri's cluster; 200 allows). Denied requests get the
 * server's status, headers and body; allowed ones carry the server's header
 * edits upstream. Errors follow failure_mode_allow / status_on_error. Stats:
 * http.<hcm stat_prefix>.ext_authz[.<stat_prefix>].{ok,denied,error,
 * failure_mode_allowed}. with_request_body waits for the body (up to
 * max_request_bytes; 413 beyond unless allow_partial_message) and sends it
 * with the check.
 */
#ifndef MP_FILTER_EXT_AUTHZ_H
#define MP_FILTER_EXT_AUTHZ_H

#include "proxy/http_filter.h"

/** The ext_authz ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_ext_authz;

#endif
