/*
 * route_index.h: a per-virtual-host index that keeps first-match-wins route
 * lookup fast with thousands of routes. Routes whose path condition pins
 * the request's first path segment (case-sensitive prefix "/seg/...", path
 * "/seg..." and path_separated_prefix "/seg...") are bucketed by that
 * segment; every other route is "wild". A request only needs to try its
 * segment's bucket and the wild routes, merged in route order, which gives
 * exactly the linear scan's answer: a route outside both can never match.
 */
#ifndef MP_ROUTE_INDEX_H
#define MP_ROUTE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/route_table.h"

struct mp_route_index_bucket {
    const char *seg; /* NULL = empty slot */
    size_t seg_len;
    const uint32_t *routes; /* ascending route indexes */
    size_t n;
};

struct mp_route_index {
    const uint32_t *wild; /* ascending route indexes */
    size_t n_wild;
    const struct mp_route_index_bucket *buckets; /* open addressing */
    size_t mask; /* number of buckets - 1 (a power of two), or 0 with none */
};

/**
 * Builds the index of routes[0..n) in cfg's arena. Returns 0 with *out set,
 * or MP_ERR_NOMEM.
 */
int mp_route_index_build(struct mp_route_config *cfg, const struct mp_route *routes, size_t n,
                         const struct mp_route_index **out);

/**
 * The first path segment of a request path ("/seg/..." -> "seg", ending at
 * '/', '?', '#' or the end). Returns false when path does not start with '/'.
 */
bool mp_route_index_request_segment(const char *path, size_t len, const char **seg,
                                    size_t *seg_len);

/**
 * The bucket for a first segment: *routes and *n get its ascending route
 * indexes (n = 0 when no route is keyed on it).
 */
void mp_route_index_lookup(const struct mp_route_index *idx, const char *seg, size_t seg_len,
                           const uint32_t **routes, size_t *n);

#endif
