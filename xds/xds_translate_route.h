/*
 * xds_translate_route.h: envoy.config.route.v3.RouteConfiguration (protobuf-c)
 * -> immutable struct mp_route_config (proxy/route_table.h).
 */
#ifndef MP_XDS_TRANSLATE_ROUTE_H
#define MP_XDS_TRANSLATE_ROUTE_H

#include "envoy/config/route/v3/route.pb-c.h"
#include "proxy/route_table.h"

/**
 * Validates and translates a RouteConfiguration. On success *out owns a new
 * config (free with mp_route_config_free()); it keeps no pointer into pb.
 * On failure returns MP_ERR_INVAL (or MP_ERR_NOMEM) and, when err is not
 * NULL, sets *err to a malloc'd message naming the field at fault, e.g.
 * `virtual_hosts[0].routes[3].match.safe_regex.regex: invalid regex "(":
 * missing closing parenthesis`; the caller frees it. Rejects what Envoy
 * rejects: duplicate virtual host names or domains, more than one "*",
 * invalid regexes, weighted clusters whose weights sum to 0, routes with no
 * action, unsupported matchers (tls_context, dynamic_metadata,
 * path_match_policy, cluster_specifier_plugin, filter_action).
 */
int mp_route_config_from_proto(const Envoy__Config__Route__V3__RouteConfiguration *pb,
                               struct mp_route_config **out, char **err);

/**
 * Same, from the serialized bytes of a RouteConfiguration (an Any's value).
 * Returns MP_ERR_PARSE with *err set when the bytes do not decode.
 */
int mp_route_config_from_bytes(const uint8_t *data, size_t len, struct mp_route_config **out,
                               char **err);

/**
 * Translates one VirtualHost into cfg's arena (cfg from mp_route_config_new()
 * or one being built), filling *out with its routes and path index. It does
 * not add the domains to cfg's lookup tables (mp_route_config_from_proto()
 * does, after checking duplicates). Errors as above, relative to the virtual
 * host ("routes[3].match..."); on failure what was taken stays in the arena
 * and goes with mp_route_config_free(cfg).
 */
int mp_vhost_from_proto(struct mp_route_config *cfg,
                        const Envoy__Config__Route__V3__VirtualHost *pb, struct mp_vhost *out,
                        char **err);

/**
 * Translates one StringMatcher into cfg's arena (regexes compiled there).
 * Other modules that match strings or headers the Envoy way (RBAC, ext_authz)
 * can hold an mp_route_config from mp_route_config_new() just as the owner
 * of these matchers. Returns 0 or MP_ERR_INVAL/MP_ERR_NOMEM with *err
 * relative to the matcher ("safe_regex.regex: invalid regex ...").
 */
int mp_string_match_from_proto(struct mp_route_config *cfg,
                               const Envoy__Type__Matcher__V3__StringMatcher *pb,
                               struct mp_string_match *out, char **err);

/** Same for a route.v3.HeaderMatcher (name lowercased; evaluate with
 *  mp_header_match_eval()). */
int mp_header_match_from_proto(struct mp_route_config *cfg,
                               const Envoy__Config__Route__V3__HeaderMatcher *pb,
                               struct mp_header_match *out, char **err);

/** Same for a route.v3.QueryParameterMatcher (mp_query_match_eval()). */
int mp_query_match_from_proto(struct mp_route_config *cfg,
                              const Envoy__Config__Route__V3__QueryParameterMatcher *pb,
                              struct mp_query_match *out, char **err);

#endif
