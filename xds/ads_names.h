/*
 * ads_names.h: a sorted set of owned strings (resource names), the unit of
 * xDS subscription bookkeeping.
 */
#ifndef MP_ADS_NAMES_H
#define MP_ADS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
