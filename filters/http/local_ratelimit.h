/*
 * local_ratelimit.h (HTTP): envoy.filters.http.local_ratelimit
 * (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit).
 *
 * Each request takes one token from the filter config's bucket, which every
 * worker shares (lock free, proxy/token_bucket.h). Supported: token_bucket
 * (absent: every request is allowed), filter_enabled / filter_enforced
 * (RuntimeFractionalPercent default_value; absent means 0%, as in Envoy),
 * status (default 429), response_headers_to_add (on the rate-limited
 * response), request_headers_to_add_when_not_enforced,
 * enable_x_ratelimit_headers (DRAFT_VERSION_03: x-ratelimit-limit,
 * -remaining and -reset on every response the bucket decided), and stats
 * <stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}.
 * A rate-limited request gets a local reply "local_rate_limited" with
 * x-envoy-ratelimited: true and the RL response flag.
 *
 * typed_per_filter_config (route, virtual host or route configuration,
 * keyed by the filter's name) replaces the listener-level config for the
 * requests of that route, with its own bucket and stats; FilterConfig
 * disabled turns the filter off there. Per-route configs are parsed on first
 * use and kept, with their buckets, for the life of the listener-level config
 * (keyed by the route entry and its bytes, so a route configuration update
 * with the same per-route bytes keeps the bucket).
 *
 * Not supported (rejected by parse): descriptors,
 * local_rate_limit_per_downstream_connection, local_cluster_rate_limit.
 */
#ifndef MP_FILTERS_HTTP_LOCAL_RATELIMIT_H
#define MP_FILTERS_HTTP_LOCAL_RATELIMIT_H

#include "proxy/http_filter.h"
#include "proxy/token_bucket.h"

/** The filter's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_local_ratelimit;

/**
 * Test hook: the clock new buckets read (NULL restores CLOCK_MONOTONIC).
 * Set it before parsing; not thread-safe against concurrent parses.
 */
void mp_http_local_ratelimit_set_clock(mp_token_bucket_clock_fn clock, void *arg);

#endif
