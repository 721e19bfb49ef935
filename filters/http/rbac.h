/*
 * rbac.h: envoy.filters.http.rbac (envoy.extensions.filters.http.rbac.v3.RBAC).
 *
 * Evaluates the enforced rules (and the shadow rules, which only count) on
 * request headers with the engine of proxy/rbac.h. A denied request gets
 * 403 "RBAC: access denied". Stats, as Envoy names them:
 *   http.<hcm stat_prefix>.rbac.<rules_stat_prefix>allowed / denied
 *   http.<hcm stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed / shadow_denied
 * An RBACPerRoute in typed_per_filter_config (route, virtual host or route
 * configuration) replaces the filter's config for that route; one without
 * `rbac` turns the filter off there.
 */
#ifndef MP_FILTER_HTTP_RBAC_H
#define MP_FILTER_HTTP_RBAC_H

#include "proxy/http_filter.h"

/** The filter's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_rbac;

#endif
