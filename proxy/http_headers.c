/*
 * http_headers.c: ordered header list with lower-case names.
 */
#include "http_headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp_common.h"

void mp_headers_init(struct mp_headers *h)
{
    memset(h, 0, sizeof(*h));
}

/*
 * Entry blocks ("name\0value\0") are carved from chunks the list owns, so a
 * request's headers cost a couple of allocations instead of one each; a
 * removed or replaced entry's bytes stay in their chunk until the list is
 * cleared (a replaced value is overwritten in place when it fits, so a list
 * that is set over and over does not grow).
 */
struct mp_headers_chunk {
    struct mp_headers_chunk *next;
    size_t used;
    size_t cap;
    char data[];
};

/* A first chunk of 1 KiB with its header (one jemalloc size class) holds
 * the entry array and a typical request's or response's entries. */
#define CHUNK_MIN (1024u - sizeof(struct mp_headers_chunk))
#define CHUNK_MAX 16384u
/* The first INLINE_CAP entries' array lives in the first chunk too. */
#define INLINE_CAP 16u

void mp_headers_clear(struct mp_headers *h)
{
    struct mp_headers_chunk *c = h->chunks;
    while (c) {
        struct mp_headers_chunk *next = c->next;
        free(c);
        c = next;
    }
    if (h->cap > INLINE_CAP) /* else the array lived in a chunk */
        free(h->v);
    memset(h, 0, sizeof(*h));
}

/* Makes room for n more bytes of entry blocks in the current chunk. */
static int reserve(struct mp_headers *h, size_t n)
{
    struct mp_headers_chunk *c = h->chunks;
    if (c && c->cap - c->used >= n)
        return 0;
    size_t cap = c ? (c->cap < CHUNK_MAX / 2 ? c->cap * 2 : CHUNK_MAX) : CHUNK_MIN;
    if (cap < n)
        cap = n;
    struct mp_headers_chunk *fresh = malloc(sizeof(*fresh) + cap);
    if (!fresh)
        return MP_ERR_NOMEM;
    fresh->next = c;
    fresh->used = 0;
    fresh->cap = cap;
    h->chunks = fresh;
    return 0;
}

/* Lower-cases the ASCII letters of the eight bytes at src into dst: the
 * bytes in 'A'..'Z' get bit 0x20, other bytes are kept. */
static void lower8(char *dst, const char *src)
{
    uint64_t x;
    memcpy(&x, src, 8);
    uint64_t low7 = x & 0x7f7f7f7f7f7f7f7full;
    uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3full; /* high bit: byte >= 'A' */
    uint64_t gt_z = low7 + 0x2525252525252525ull; /* high bit: byte > 'Z' */
    x |= (~x & (ge_a ^ gt_z) & 0x8080808080808080ull) >> 2;
    memcpy(dst, &x, 8);
}

/* lower8 for four bytes. */
static void lower4(char *dst, const char *src)
{
    uint32_t x;
    memcpy(&x, src, 4);
    uint32_t low7 = x & 0x7f7f7f7fu;
    uint32_t ge_a = low7 + 0x3f3f3f3fu;
    uint32_t gt_z = low7 + 0x25252525u;
    x |= (~x & (ge_a ^ gt_z) & 0x80808080u) >> 2;
    memcpy(dst, &x, 4);
}

static void lower_copy(char *dst, const char *name, size_t name_len)
{
    /* Every header of every message comes through here: whole words, and
     * a last word that overlaps the one before (lower-casing the same
     * source bytes twice writes the same result) instead of a byte loop. */
    if (name_len >= 8) {
        size_t i = 0;
        for (; i + 8 <= name_len; i += 8)
            lower8(dst + i, name + i);
        if (i < name_len)
            lower8(dst + name_len - 8, name + name_len - 8);
    } else if (name_len >= 4) {
        lower4(dst, name);
        lower4(dst + name_len - 4, name + name_len - 4);
    } else {
        for (size_t i = 0; i < name_len; i++) {
            unsigned char c = (unsigned char)name[i];
            dst[i] = (char)(c | (((unsigned)(c - 'A') < 26u) << 5));
        }
    }
}

static int make_entry(struct mp_headers *h, struct mp_header *e, const char *name,
                      size_t name_len, const char *value, size_t value_len)
{
    size_t need = name_len + value_len + 2;
    if (reserve(h, need) < 0)
        return MP_ERR_NOMEM;
    char *block = h->chunks->data + h->chunks->used;
    h->chunks->used += need;
    lower_copy(block, name, name_len);
    block[name_len] = '\0';
    memcpy(block + name_len + 1, value, value_len);
    block[name_len + 1 + value_len] = '\0';
    e->name = block;
    e->value = block + name_len + 1;
    e->name_len = (uint32_t)name_len;
    e->value_len = (uint32_t)value_len;
    return 0;
}

/* Carves the first entry array (INLINE_CAP entries) from the chunks. */
static int inline_array(struct mp_headers *h, size_t extra)
{
    size_t bytes = INLINE_CAP * sizeof(*h->v);
    if (reserve(h, bytes + extra + 7) < 0)
        return MP_ERR_NOMEM;
    struct mp_headers_chunk *c = h->chunks;
    size_t off = (c->used + 7) & ~(size_t)7;
    h->v = (struct mp_header *)(void *)(c->data + off);
    c->used = off + bytes;
    h->cap = INLINE_CAP;
    return 0;
}

static int grow(struct mp_headers *h)
{
    if (h->n < h->cap)
        return 0;
    if (h->cap == 0)
        return inline_array(h, 0);
    size_t cap = h->cap * 2;
    struct mp_header *v;
    if (h->cap == INLINE_CAP) {
        v = malloc(cap * sizeof(*v));
        if (v)
            memcpy(v, h->v, h->n * sizeof(*v));
    } else {
        v = realloc(h->v, cap * sizeof(*v));
    }
    if (!v)
        return MP_ERR_NOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

int mp_headers_add(struct mp_headers *h, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    if (grow(h) < 0)
        return MP_ERR_NOMEM;
    if (make_entry(h, &h->v[h->n], name, name_len, value, value_len) < 0)
        return MP_ERR_NOMEM;
    h->n++;
    h->bytes += name_len + value_len;
    return 0;
}

int mp_headers_add_cstr(struct mp_headers *h, const char *name, const char *value)
{
    return mp_headers_add(h, name, strlen(name), value, strlen(value));
}

static bool name_eq(const struct mp_header *e, const char *name, size_t len)
{
    /* Lists are scanned for every lookup: the length and then the first byte
     * (equal up to ASCII case, bit 0x20) rule most entries out cheaply. */
    if (e->name_len != len)
        return false;
    /* stored names are lower-case: fold only the caller's bytes */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((unsigned char)e->name[i] != (c | (((unsigned)(c - 'A') < 26u) << 5)))
            return false;
    }
    return true;
}

static void remove_at(struct mp_headers *h, size_t i)
{
    h->bytes -= h->v[i].name_len + h->v[i].value_len;
    memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof(h->v[0]));
    h->n--;
}

int mp_headers_set(struct mp_headers *h, const char *name, const char *value, size_t value_len)
{
    size_t len = strlen(name);
    size_t first = 0;
    while (first < h->n && !name_eq(&h->v[first], name, len))
        first++;
    if (first == h->n) {
        if (grow(h) < 0)
            return MP_ERR_NOMEM;
        if (make_entry(h, &h->v[h->n], name, len, value, value_len) < 0)
            return MP_ERR_NOMEM;
        h->n++;
        h->bytes += len + value_len;
        return 0;
    }
    struct mp_header *old = &h->v[first];
    if (value_len <= old->value_len) {
        /* fits in the old block: overwrite (value may point into it) */
        memmove(old->value, value, value_len);
        old->value[value_len] = '\0';
        h->bytes -= old->value_len - value_len;
        old->value_len = (uint32_t)value_len;
    } else {
        struct mp_header e;
        if (make_entry(h, &e, name, len, value, value_len) < 0)
            return MP_ERR_NOMEM;
        h->bytes += value_len - old->value_len;
        *old = e;
    }
    /* later duplicates go (their bytes stay in the chunk: value may be one) */
    for (size_t i = first + 1; i < h->n;) {
        if (name_eq(&h->v[i], name, len))
            remove_at(h, i);
        else
            i++;
    }
    return 0;
}

int mp_headers_set_cstr(struct mp_headers *h, const char *name, const char *value)
{
    return mp_headers_set(h, name, value, strlen(value));
}

const struct mp_header *mp_headers_get(const struct mp_headers *h, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < h->n; i++)
        if (name_eq(&h->v[i], name, len))
            return &h->v[i];
    return NULL;
}

const char *mp_headers_value(const struct mp_headers *h, const char *name)
{
    const struct mp_header *e = mp_headers_get(h, name);
    return e ? e->value : NULL;
}

size_t mp_headers_count(const struct mp_headers *h, const char *name)
{
    size_t len = strlen(name), c = 0;
    for (size_t i = 0; i < h->n; i++)
        if (name_eq(&h->v[i], name, len))
            c++;
    return c;
}

size_t mp_headers_remove(struct mp_headers *h, const char *name)
{
    size_t len = strlen(name), c = 0;
    for (size_t i = 0; i < h->n;) {
        if (name_eq(&h->v[i], name, len)) {
            remove_at(h, i);
            c++;
        } else {
            i++;
        }
    }
    return c;
}

size_t mp_headers_remove_prefix(struct mp_headers *h, const char *prefix)
{
    size_t len = strlen(prefix), c = 0;
    for (size_t i = 0; i < h->n;) {
        if (h->v[i].name_len >= len && strncasecmp(h->v[i].name, prefix, len) == 0) {
            remove_at(h, i);
            c++;
        } else {
            i++;
        }
    }
    return c;
}

int mp_headers_copy(struct mp_headers *dst, const struct mp_headers *src)
{
    mp_headers_clear(dst);
    if (src->n == 0)
        return 0;
    /* The router copies every request: one entry array and one chunk, and
     * the blocks copied as they are (names are lower-case already). */
    size_t total = 0;
    for (size_t i = 0; i < src->n; i++)
        total += src->v[i].name_len + src->v[i].value_len + 2;
    if (src->n <= INLINE_CAP) {
        if (inline_array(dst, total) < 0)
            return MP_ERR_NOMEM;
    } else {
        /* cap > INLINE_CAP: mp_headers_clear frees the array */
        dst->v = malloc(src->n * sizeof(*dst->v));
        if (!dst->v || reserve(dst, total) < 0) {
            mp_headers_clear(dst);
            return MP_ERR_NOMEM;
        }
        dst->cap = src->n;
    }
    char *p = dst->chunks->data + dst->chunks->used;
    dst->chunks->used += total;
    for (size_t i = 0; i < src->n; i++) {
        const struct mp_header *e = &src->v[i];
        struct mp_header *d = &dst->v[i];
        memcpy(p, e->name, e->name_len + 1);
        d->name = p;
        p += e->name_len + 1;
        memcpy(p, e->value, e->value_len + 1);
        d->value = p;
        p += e->value_len + 1;
        d->name_len = e->name_len;
        d->value_len = e->value_len;
    }
    dst->n = src->n;
    dst->bytes = src->bytes;
    return 0;
}

void mp_headers_pseudo_first(struct mp_headers *h)
{
    /* Usually in order already (codecs add pseudo-headers first): skip
     * the ones at the front. Then a stable partition by insertion. */
    size_t out = 0;
    while (out < h->n && h->v[out].name[0] == ':')
        out++;
    for (size_t i = out; i < h->n; i++) {
        if (h->v[i].name[0] == ':') {
            struct mp_header e = h->v[i];
            memmove(&h->v[out + 1], &h->v[out], (i - out) * sizeof(e));
            h->v[out++] = e;
        }
    }
}

bool mp_http_token_list_has(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(value + start, token, tlen) == 0)
            return true;
    }
    return false;
}

/* keep-alive, proxy-connection, transfer-encoding, upgrade, http2-settings,
 * and TE unless it is "trailers". */
static bool is_fixed_hop_by_hop(const struct mp_header *e)
{
    switch (e->name_len) {
    case 2:
        return memcmp(e->name, "te", 2) == 0 &&
               !(e->value_len == 8 && strncasecmp(e->value, "trailers", 8) == 0);
    case 7: return memcmp(e->name, "upgrade", 7) == 0;
    case 10: return memcmp(e->name, "keep-alive", 10) == 0;
    case 14: return memcmp(e->name, "http2-settings", 14) == 0;
    case 16: return memcmp(e->name, "proxy-connection", 16) == 0;
    case 17: return memcmp(e->name, "transfer-encoding", 17) == 0;
    default: return false;
    }
}

void mp_headers_strip_hop_by_hop(struct mp_headers *h)
{
    /* Headers the Connection header names are hop-by-hop too (RFC 9110 7.6.1). */
    const struct mp_header *conn;
    while ((conn = mp_headers_get(h, "connection")) != NULL) {
        char *copy = strdup(conn->value);
        mp_headers_remove(h, "connection");
        if (!copy)
            break;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            /* never let Connection strip end-to-end essentials */
            if (tok[0] == ':' || strcasecmp(tok, "host") == 0 || strcasecmp(tok, "te") == 0)
                continue;
            mp_headers_remove(h, tok);
        }
        free(copy);
    }
    /* One pass for the fixed hop-by-hop names (this runs on every request
     * and response; names are stored lower-case). */
    for (size_t i = 0; i < h->n;) {
        if (is_fixed_hop_by_hop(&h->v[i])) {
            remove_at(h, i);
            continue;
        }
        i++;
    }
}
