/*
 * rbac.h (network): envoy.filters.network.rbac
 * (envoy.extensions.filters.network.rbac.v3.RBAC).
 *
 * Evaluated once per connection when it starts (proxy/network_filter.h): a
 * denied connection is closed before its terminal filter (tcp_proxy or HTTP
 * connection manager) starts. The engine sees the peer and local addresses;
 * header matchers see no headers, url_path never matches (as in Envoy's
 * network filter). Stats, as Envoy names them:
 *   <stat_prefix>.rbac.allowed / denied
 *   <stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed / shadow_denied
 *
 * The hook runs before the TLS handshake, so no peer certificate or SNI is
 * known yet. Rules that depend on them (authenticated principals,
 * requested_server_name) on a TLS filter chain cannot be decided: such
 * connections are closed (fail closed, counted as denied) rather than judged
 * without the identity. On a plaintext chain they are evaluated as Envoy
 * does for a connection without TLS (authenticated never matches, SNI "").
 * enforcement_type CONTINUOUS is treated as ONE_TIME_ON_FIRST_BYTE.
 */
#ifndef MP_FILTER_NETWORK_RBAC_H
#define MP_FILTER_NETWORK_RBAC_H

#include "proxy/network_filter.h"

/** The filter's ops table (registered in filters/network_registry.c). */
extern const struct mp_network_filter_ops mp_network_filter_rbac;

#endif
