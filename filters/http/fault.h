/*
 * fault.h: envoy.filters.http.fault (envoy.extensions.filters.http.fault.v3.HTTPFault).
 *
 * On request headers, a qualifying request (fault_config.h) may be delayed
 * (the filter stops iteration and arms a timer on the worker's loop; the
 * chain resumes when it fires) and/or aborted with a local reply
 * ("fault filter abort", response flag FI; a gRPC status is sent as a
 * trailers-only gRPC response to gRPC requests, as Envoy's local replies do).
 * A delay comes first; the abort decision is taken when it ends.
 *
 * An HTTPFault in typed_per_filter_config (route, virtual host or route
 * configuration, keyed by the filter's name) replaces the filter's config for
 * that route, as Istio's VirtualService fault injection writes it; it is
 * decoded per request that hits such a route.
 *
 * Stats (Envoy's names): http.<hcm stat_prefix>.fault.delays_injected,
 * aborts_injected, faults_overflow (counters) and active_faults (gauge).
 */
#ifndef MP_FILTER_HTTP_FAULT_H
#define MP_FILTER_HTTP_FAULT_H

#include "proxy/http_filter.h"

/** The filter's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_fault;

#endif
