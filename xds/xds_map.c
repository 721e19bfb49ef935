/*
 * xds_map.c: chained hash map keyed by strings (FNV-1a), doubled at a load
 * factor of 1.
 */
#include "xds_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct mp_xds_map_entry **slot(const struct mp_xds_map *m, const char *key)
{
    struct mp_xds_map_entry **pp = &m->buckets[hash_key(key) & (m->n_buckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *mp_xds_map_get(const struct mp_xds_map *m, const char *key)
{
    if (m->n_buckets == 0)
        return NULL;
    struct mp_xds_map_entry *e = *slot(m, key);
    return e ? e->value : NULL;
}

static int grow(struct mp_xds_map *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 16;
    struct mp_xds_map_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct mp_xds_map_entry *e = m->buckets[i];
        while (e) {
            struct mp_xds_map_entry *next = e->next;
            size_t k = hash_key(e->key) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
    return 0;
}

int mp_xds_map_put(struct mp_xds_map *m, const char *key, void *value, void **old)
{
    if (old)
        *old = NULL;
    if (m->count >= m->n_buckets && grow(m) < 0)
        return MP_ERR_NOMEM;
    struct mp_xds_map_entry **pp = slot(m, key);
    if (*pp) {
        if (old)
            *old = (*pp)->value;
        (*pp)->value = value;
        return 0;
    }
    struct mp_xds_map_entry *e = malloc(sizeof(*e));
    char *k = strdup(key);
    if (!e || !k) {
        free(e);
        free(k);
        return MP_ERR_NOMEM;
    }
    e->key = k;
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
    return 0;
}

void *mp_xds_map_del(struct mp_xds_map *m, const char *key)
{
    if (m->n_buckets == 0)
        return NULL;
    struct mp_xds_map_entry **pp = slot(m, key);
    struct mp_xds_map_entry *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

void mp_xds_map_each(const struct mp_xds_map *m,
                     void (*fn)(void *arg, const char *key, void *value), void *arg)
{
    for (size_t i = 0; i < m->n_buckets; i++)
        for (struct mp_xds_map_entry *e = m->buckets[i]; e; e = e->next)
            fn(arg, e->key, e->value);
}

void mp_xds_map_clear(struct mp_xds_map *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct mp_xds_map_entry *e = m->buckets[i];
        while (e) {
            struct mp_xds_map_entry *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}
