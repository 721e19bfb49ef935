/*
 * http_headers.h: an ordered HTTP header list, shared by the HTTP/1 and HTTP/2
 * codecs, the filter chain and the router.
 *
 * Names are stored lower-case (HTTP/2 requires it and HTTP/1 names are
 * case-insensitive). Request pseudo-headers (":method", ":path", ":scheme",
 * ":authority") and the response ":status" live in the same list, first, so
 * one structure describes a request or response whatever the codec. Each
 * entry is one block holding "name\0value\0", carved from chunks the list
 * owns (freed together by mp_headers_clear): an entry's pointers stay valid
 * until the entry is removed or replaced, or the list is cleared.
 */
#ifndef MP_HTTP_HEADERS_H
#define MP_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_header {
    char *name; /* lower-case, NUL-terminated; value follows in the same block */
    char *value;
    uint32_t name_len;
    uint32_t value_len;
};

struct mp_headers {
    struct mp_header *v;
    size_t n;
    size_t cap;
    size_t bytes; /* sum of name_len + value_len, for header-size limits */
    struct mp_headers_chunk *chunks; /* where the entries' blocks live (http_headers.c) */
};

/** Initialises an empty list (no allocation). */
void mp_headers_init(struct mp_headers *h);

/** Frees every entry and the array; the list is empty and reusable afterwards. */
void mp_headers_clear(struct mp_headers *h);

/**
 * Appends a header, copying name (lower-cased) and value.
 * Returns 0, or MP_ERR_NOMEM (the list is unchanged).
 */
int mp_headers_add(struct mp_headers *h, const char *name, size_t name_len, const char *value,
                   size_t value_len);

/** mp_headers_add for NUL-terminated strings. */
int mp_headers_add_cstr(struct mp_headers *h, const char *name, const char *value);

/**
 * Replaces every header called name with one entry holding value (appended
 * at the place of the first match, or at the end). Returns 0 or MP_ERR_NOMEM.
 */
int mp_headers_set(struct mp_headers *h, const char *name, const char *value, size_t value_len);

/** mp_headers_set for a NUL-terminated value. */
int mp_headers_set_cstr(struct mp_headers *h, const char *name, const char *value);

/**
 * Returns the first header named name (case-insensitive), or NULL. The
 * pointer is valid until the list is next changed.
 */
const struct mp_header *mp_headers_get(const struct mp_headers *h, const char *name);

/** Returns the value of the first header named name, or NULL. */
const char *mp_headers_value(const struct mp_headers *h, const char *name);

/** Counts headers named name. */
size_t mp_headers_count(const struct mp_headers *h, const char *name);

/** Removes every header named name; returns how many were removed. */
size_t mp_headers_remove(struct mp_headers *h, const char *name);

/** Removes every header whose name starts with prefix; returns how many. */
size_t mp_headers_remove_prefix(struct mp_headers *h, const char *prefix);

/**
 * Deep-copies src into dst (dst is cleared first). Returns 0 or MP_ERR_NOMEM
 * (dst is then empty).
 */
int mp_headers_copy(struct mp_headers *dst, const struct mp_headers *src);

/**
 * Moves pseudo-headers (names starting with ':') to the front, keeping the
 * relative order of both groups (HTTP/2 requires pseudo-headers first).
 */
void mp_headers_pseudo_first(struct mp_headers *h);

/**
 * Removes the hop-by-hop headers a proxy must not forward (connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade, and any header
 * named in a Connection header), and "te" unless its value is "trailers".
 */
void mp_headers_strip_hop_by_hop(struct mp_headers *h);

/**
 * True when the comma-separated list value contains token (case-insensitive,
 * whitespace around tokens ignored), e.g. Connection: keep-alive, close.
 */
bool mp_http_token_list_has(const char *value, size_t len, const char *token);

#endif
