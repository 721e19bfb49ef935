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

void mp_headers_clear(struct mp_headers *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].name);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

static int make_entry(struct mp_header *e, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    char *block = malloc(name_len + value_len + 2);
    if (!block)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        block[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    block[name_len] = '\0';
    memcpy(block + name_len + 1, value, value_len);
    block[name_len + 1 + value_len] = '\0';
    e->name = block;
    e->value = block + name_len + 1;
    e->name_len = (uint32_t)name_len;
    e->value_len = (uint32_t)value_len;
    return 0;
}

static int grow(struct mp_headers *h)
{
    if (h->n < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 16;
    struct mp_header *v = realloc(h->v, cap * sizeof(*v));
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
    if (make_entry(&h->v[h->n], name, name_len, value, value_len) < 0)
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
    return e->name_len == len && strncasecmp(e->name, name, len) == 0;
}

static void remove_at(struct mp_headers *h, size_t i)
{
    h->bytes -= h->v[i].name_len + h->v[i].value_len;
    free(h->v[i].name);
    memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof(h->v[0]));
    h->n--;
}

int mp_headers_set(struct mp_headers *h, const char *name, const char *value, size_t value_len)
{
    size_t len = strlen(name);
    struct mp_header e;
    if (make_entry(&e, name, len, value, value_len) < 0)
        return MP_ERR_NOMEM;
    size_t first = h->n;
    for (size_t i = 0; i < h->n;) {
        if (name_eq(&h->v[i], name, len)) {
            if (first == h->n) {
                first = i;
                h->bytes -= h->v[i].name_len + h->v[i].value_len;
                free(h->v[i].name);
                h->v[i] = e;
                h->bytes += e.name_len + e.value_len;
                i++;
                continue;
            }
            remove_at(h, i);
            continue;
        }
        i++;
    }
    if (first != h->n)
        return 0;
    if (grow(h) < 0) {
        free(e.name);
        return MP_ERR_NOMEM;
    }
    h->v[h->n++] = e;
    h->bytes += e.name_len + e.value_len;
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
    for (size_t i = 0; i < src->n; i++) {
        const struct mp_header *e = &src->v[i];
        if (mp_headers_add(dst, e->name, e->name_len, e->value, e->value_len) < 0) {
            mp_headers_clear(dst);
            return MP_ERR_NOMEM;
        }
    }
    return 0;
}

void mp_headers_pseudo_first(struct mp_headers *h)
{
    /* Stable partition by insertion: lists are short. */
    size_t out = 0;
    for (size_t i = 0; i < h->n; i++) {
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
    static const char *const hop[] = {"keep-alive", "proxy-connection", "transfer-encoding",
                                      "upgrade", "http2-settings"};
    for (size_t i = 0; i < MP_ARRAY_LEN(hop); i++)
        mp_headers_remove(h, hop[i]);
    for (size_t i = 0; i < h->n;) {
        struct mp_header *e = &h->v[i];
        if (e->name_len == 2 && memcmp(e->name, "te", 2) == 0 &&
            !(e->value_len == 8 && strncasecmp(e->value, "trailers", 8) == 0)) {
            remove_at(h, i);
            continue;
        }
        i++;
    }
}
