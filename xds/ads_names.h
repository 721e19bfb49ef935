/*
 * ads_names.h: a sorted set of owned strings (resource names), the unit of
 * xDS subscription bookkeeping; and the name lookups that the client and the
 * control plane share (search in a sorted array, a resource's own name).
 */
#ifndef MP_ADS_NAMES_H
#define MP_ADS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct mp_ads_names {
    char **v; /* sorted by strcmp, unique, each malloc'd */
    size_t n;
    size_t cap;
};

#define MP_ADS_NAMES_INIT                                                                          \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/** Frees every name and the array; leaves s empty and reusable. */
void mp_ads_names_clear(struct mp_ads_names *s);

/** True when name is in s. */
bool mp_ads_names_has(const struct mp_ads_names *s, const char *name);

/**
 * Adds a copy of name (no-op if present). Returns 0 or MP_ERR_NOMEM
 * (s unchanged).
 */
int mp_ads_names_add(struct mp_ads_names *s, const char *name);

/** Removes name if present. Returns true when it was present. */
bool mp_ads_names_remove(struct mp_ads_names *s, const char *name);

/** True when a and b hold the same names. */
bool mp_ads_names_equal(const struct mp_ads_names *a, const struct mp_ads_names *b);

/**
 * Replaces dst with a copy of src. Returns 0 or MP_ERR_NOMEM (dst
 * unchanged).
 */
int mp_ads_names_copy(struct mp_ads_names *dst, const struct mp_ads_names *src);

/**
 * Adds every name of src to dst. Returns 0 or MP_ERR_NOMEM (dst then holds
 * a part of src).
 */
int mp_ads_names_union(struct mp_ads_names *dst, const struct mp_ads_names *src);

/**
 * Fills *out (cleared first) with the names in a that are not in b.
 * Returns 0 or MP_ERR_NOMEM (*out empty).
 */
int mp_ads_names_minus(struct mp_ads_names *out, const struct mp_ads_names *a,
                       const struct mp_ads_names *b);

/**
 * Binary search of name in an array of n elements of stride bytes each,
 * sorted by strcmp of the `char *` at byte offset name_off of each element.
 * Returns name's index, or the index it would be inserted at; *found says
 * which.
 */
size_t mp_ads_names_search(const void *base, size_t n, size_t stride, size_t name_off,
                           const char *name, bool *found);

/**
 * A resource's own name: its string field "name", or "cluster_name" for a
 * ClusterLoadAssignment. Points into msg; NULL when it has neither.
 */
const char *mp_ads_message_name(const ProtobufCMessage *msg);

#endif
