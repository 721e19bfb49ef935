/*
 * route_config_cache.h: parsed typed_per_filter_config entries of one HTTP
 * filter, kept for the life of the filter's (listener-level) config so a
 * per-route config is decoded once, not per request.
 *
 * Entries are found by their bytes (the mp_typed_config pointer is only a
 * hint where to look): a route configuration pushed again with the same
 * per-route bytes finds the same parsed config. The cache is a fixed array
 * of atomic slots filled by compare-and-swap, so workers share it without a
 * lock; when it is full, callers parse for the request at hand instead.
 */
#ifndef MP_FILTER_ROUTE_CONFIG_CACHE_H
#define MP_FILTER_ROUTE_CONFIG_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct mp_typed_config;
struct mp_route_config_cache;

/** Parses a per-route Any value into *out (0), or fails (< 0). */
typedef int (*mp_route_config_parse_fn)(const uint8_t *data, size_t len, void **out);
typedef void (*mp_route_config_free_fn)(void *cfg);

/**
 * Makes a cache of `slots` entries whose configs parse_fn makes and free_fn
 * frees. Returns NULL when out of memory. Free with mp_route_config_cache_free.
 */
struct mp_route_config_cache *mp_route_config_cache_new(size_t slots,
                                                        mp_route_config_parse_fn parse_fn,
                                                        mp_route_config_free_fn free_fn);

/** Frees the cache and every config in it. NULL is a no-op. */
void mp_route_config_cache_free(struct mp_route_config_cache *c);

/**
 * The parsed config of tc's bytes: found, or parsed now and published. Any
 * worker thread. Returns 0 with *cfg (owned by the cache, valid until the
 * cache is freed; NULL when the bytes did not parse), MP_ERR_LIMIT when the
 * cache is full, or MP_ERR_NOMEM.
 */
int mp_route_config_cache_get(struct mp_route_config_cache *c, const struct mp_typed_config *tc,
                              void **cfg);

#endif
