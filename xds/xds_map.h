/*
 * xds_map.h: a string-keyed hash map for the xDS resource store, where a
 * push can carry 10,000 clusters and every lookup must stay O(1).
 *
 * Keys are copied; values are opaque pointers the caller owns (the map never
 * frees a value). Not thread-safe: the store uses it on the grpc thread only.
 */
#ifndef MP_XDS_MAP_H
#define MP_XDS_MAP_H

#include <stddef.h>

struct mp_xds_map_entry {
    char *key;
    void *value;
    struct mp_xds_map_entry *next; /* bucket chain */
};

struct mp_xds_map {
    struct mp_xds_map_entry **buckets;
    size_t n_buckets; /* a power of two, or 0 before the first put */
    size_t count;
};

/** Looks name up; returns its value or NULL. */
void *mp_xds_map_get(const struct mp_xds_map *m, const char *key);

/**
 * Sets key to value, replacing (and returning in *old, when old is not NULL)
 * any previous value. Returns 0 or MP_ERR_NOMEM (the map is unchanged).
 */
int mp_xds_map_put(struct mp_xds_map *m, const char *key, void *value, void **old);

/** Removes key; returns its value, or NULL when absent. */
void *mp_xds_map_del(struct mp_xds_map *m, const char *key);

/**
 * Calls fn(arg, key, value) for every entry, in no particular order. fn must
 * not change the map.
 */
void mp_xds_map_each(const struct mp_xds_map *m,
                     void (*fn)(void *arg, const char *key, void *value), void *arg);

/** Frees the map's own memory (keys, buckets); values are the caller's. */
void mp_xds_map_clear(struct mp_xds_map *m);

#endif
