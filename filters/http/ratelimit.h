/*
 * ratelimit.h: envoy.filters.http.ratelimit, global rate limiting.
 *
 * For each request the route's (and, per include_vh_rate_limits, the virtual
 * host's) rate_limits of the filter's stage become descriptors, sent with the
 * filter's domain to envoy.service.ratelimit.v3.RateLimitService/
 * ShouldRateLimit on rate_limit_service.grpc_service. OVER_LIMIT answers 429
 * (rate_limited_status) with x-envoy-ratelimited; errors pass unless
 * failure_mode_deny (then status_on_error, default 500). Stats:
 * cluster.<routed cluster>.ratelimit.{ok,over_limit,error,failure_mode_allowed}.
 */
#ifndef MP_FILTER_RATELIMIT_H
#define MP_FILTER_RATELIMIT_H

#include "proxy/http_filter.h"

/** The ratelimit ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_ratelimit;

#endif
