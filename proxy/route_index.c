/* route_index.c: first-path-segment buckets over a virtual host's routes. */
#include "proxy/route_index.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"

static uint64_t seg_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool has_query_or_fragment(const char *s, size_t n)
{
    return memchr(s, '?', n) != NULL || memchr(s, '#', n) != NULL;
}

/* The first segment every request this route can match must have; false
 * when the route's path condition does not pin it. Other conditions
 * (headers, query) only narrow a match further, so they do not matter. */
static bool route_key(const struct mp_route *r, const char **key, size_t *key_len)
{
    const struct mp_route_match *m = &r->match;
    if (!m->case_sensitive || m->path == NULL || m->path_len < 1 || m->path[0] != '/')
        return false;
    const char *p = m->path + 1;
    size_t n = m->path_len - 1;
    const char *slash = memchr(p, '/', n);
    switch (m->kind) {
    case MP_PATH_PREFIX:
        /* "/api" also matches "/apix": only a prefix that closes its first
         * segment with '/' pins it. A request's segment ends at '?' or '#',
         * so a prefix with those inside its first segment is left wild. */
        if (slash == NULL || has_query_or_fragment(p, (size_t)(slash - p)))
            return false;
        *key = p;
        *key_len = (size_t)(slash - p);
        return true;
    case MP_PATH_EXACT:
    case MP_PATH_SEPARATED_PREFIX:
        /* Compared with the path minus its query: a key holding '?' or '#'
         * cannot match a request and cannot be found by one either. */
        *key = p;
        *key_len = slash != NULL ? (size_t)(slash - p) : n;
        return true;
    case MP_PATH_REGEX:
    case MP_PATH_CONNECT: return false;
    }
    return false;
}

bool mp_route_index_request_segment(const char *path, size_t len, const char **seg, size_t *seg_len)
{
    if (path == NULL || len < 1 || path[0] != '/')
        return false;
    size_t i = 1;
    while (i < len && path[i] != '/' && path[i] != '?' && path[i] != '#')
        i++;
    *seg = path + 1;
    *seg_len = i - 1;
    return true;
}

static struct mp_route_index_bucket *find_slot(struct mp_route_index_bucket *b, size_t mask,
                                               const char *seg, size_t n)
{
    size_t i = seg_hash(seg, n) & mask;
    while (b[i].seg != NULL && (b[i].seg_len != n || memcmp(b[i].seg, seg, n) != 0))
        i = (i + 1) & mask;
    return &b[i];
}

static size_t table_size(size_t keys)
{
    size_t nb = 4;
    while (nb < keys * 2)
        nb <<= 1;
    return nb;
}

int mp_route_index_build(struct mp_route_config *cfg, const struct mp_route *routes, size_t n,
                         const struct mp_route_index **out)
{
    struct mp_route_index *idx = mp_route_arena_alloc(cfg, sizeof(*idx));
    if (idx == NULL)
        return MP_ERR_NOMEM;
    size_t n_keyed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (route_key(&routes[i], &k, &kl))
            n_keyed++;
    }
    uint32_t *wild = mp_route_arena_alloc(cfg, (n - n_keyed + 1) * sizeof(*wild));
    if (wild == NULL)
        return MP_ERR_NOMEM;
    struct mp_route_index_bucket *b = NULL;
    size_t nb = 0;
    if (n_keyed > 0) {
        /* Count each segment's routes in a scratch table sized for the
         * worst case, then keep a table sized for the distinct segments:
         * many routes often share few first segments. */
        size_t tnb = table_size(n_keyed);
        struct mp_route_index_bucket *tmp = calloc(tnb, sizeof(*tmp));
        if (tmp == NULL)
            return MP_ERR_NOMEM;
        size_t distinct = 0;
        for (size_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            if (!route_key(&routes[i], &k, &kl))
                continue;
            struct mp_route_index_bucket *s = find_slot(tmp, tnb - 1, k, kl);
            if (s->seg == NULL) {
                s->seg = k;
                s->seg_len = kl;
                distinct++;
            }
            s->n++;
        }
        nb = table_size(distinct);
        b = mp_route_arena_alloc(cfg, nb * sizeof(*b));
        for (size_t j = 0; b != NULL && j < tnb; j++) {
            if (tmp[j].seg == NULL)
                continue;
            struct mp_route_index_bucket *s = find_slot(b, nb - 1, tmp[j].seg, tmp[j].seg_len);
            s->seg = tmp[j].seg;
            s->seg_len = tmp[j].seg_len;
            /* n counts up again while filling; size the array now. */
            s->routes = mp_route_arena_alloc(cfg, tmp[j].n * sizeof(uint32_t));
            if (s->routes == NULL)
                b = NULL;
        }
        free(tmp);
        if (b == NULL)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (!route_key(&routes[i], &k, &kl)) {
            wild[idx->n_wild++] = (uint32_t)i;
            continue;
        }
        struct mp_route_index_bucket *s = find_slot(b, nb - 1, k, kl);
        ((uint32_t *)s->routes)[s->n++] = (uint32_t)i;
    }
    idx->wild = wild;
    idx->buckets = b;
    idx->mask = nb > 0 ? nb - 1 : 0;
    *out = idx;
    return 0;
}

void mp_route_index_lookup(const struct mp_route_index *idx, const char *seg, size_t seg_len,
                           const uint32_t **routes, size_t *n)
{
    *routes = NULL;
    *n = 0;
    if (idx->buckets == NULL)
        return;
    size_t i = seg_hash(seg, seg_len) & idx->mask;
    const struct mp_route_index_bucket *b = idx->buckets;
    while (b[i].seg != NULL) {
        if (b[i].seg_len == seg_len && memcmp(b[i].seg, seg, seg_len) == 0) {
            *routes = b[i].routes;
            *n = b[i].n;
            return;
        }
        i = (i + 1) & idx->mask;
    }
}
