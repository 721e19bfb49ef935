/*
 * local_ratelimit.h (network): envoy.filters.network.local_ratelimit.
 *
 * Each new connection on the filter chain takes one token from the filter's
 * bucket; when the bucket is empty the connection is closed at once, without
 * running the rest of the chain, and local_rate_limit.<stat_prefix>.rate_limited
 * counts it (the name Envoy's code registers; its docs say "local_ratelimit."). One bucket per filter config, shared by all
 * workers; filters with the same share_key and the same token_bucket share one
 * bucket across filter chains and across configuration updates, as in Envoy.
 * runtime_enabled is honoured through its default_value (no runtime layer).
 */
#ifndef MP_FILTERS_NETWORK_LOCAL_RATELIMIT_H
#define MP_FILTERS_NETWORK_LOCAL_RATELIMIT_H

#include "proxy/network_filter.h"
#include "proxy/token_bucket.h"

/** The filter's ops table (registered in filters/network_registry.c). */
extern const struct mp_network_filter_ops mp_network_filter_local_ratelimit;

/**
 * Test hook: the clock new buckets read (NULL restores CLOCK_MONOTONIC).
 * Set it before parsing; not thread-safe against concurrent parses.
 */
void mp_network_local_ratelimit_set_clock(mp_token_bucket_clock_fn clock, void *arg);

#endif
