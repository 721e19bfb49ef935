/*
 * route_config_cache.c: a lock-free, fill-only table of parsed per-route
 * filter configs (open addressing over atomic slots).
 */
#include "route_config_cache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/route_table.h"

struct entry {
    uint8_t *bytes;
    size_t len;
    void *cfg; /* NULL: the bytes did not parse */
};

struct mp_route_config_cache {
    size_t n;
    mp_route_config_parse_fn parse;
    mp_route_config_free_fn free_cfg;
    _Atomic(struct entry *) slots[];
};

struct mp_route_config_cache *mp_route_config_cache_new(size_t slots,
                                                        mp_route_config_parse_fn parse_fn,
                                                        mp_route_config_free_fn free_fn)
{
    if (slots == 0)
        slots = 1;
    struct mp_route_config_cache *c = calloc(1, sizeof(*c) + slots * sizeof(c->slots[0]));
    if (!c)
        return NULL;
    c->n = slots;
    c->parse = parse_fn;
    c->free_cfg = free_fn;
    for (size_t i = 0; i < slots; i++)
        atomic_init(&c->slots[i], NULL);
    return c;
}

static void entry_free(const struct mp_route_config_cache *c, struct entry *e)
{
    if (!e)
        return;
    if (e->cfg)
        c->free_cfg(e->cfg);
    free(e->bytes);
    free(e);
}

void mp_route_config_cache_free(struct mp_route_config_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(c, atomic_load(&c->slots[i]));
    free(c);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int mp_route_config_cache_get(struct mp_route_config_cache *c, const struct mp_typed_config *tc,
                              void **cfg)
{
    size_t start = (size_t)(hash_bytes(tc->value, tc->value_len) % c->n);
    struct entry *mine = NULL;
    for (size_t i = 0; i < c->n; i++) {
        _Atomic(struct entry *) *slot = &c->slots[(start + i) % c->n];
        struct entry *e = atomic_load_explicit(slot, memory_order_acquire);
        if (!e) {
            if (!mine) {
                mine = calloc(1, sizeof(*mine));
                if (!mine)
                    return MP_ERR_NOMEM;
                mine->len = tc->value_len;
                mine->bytes = malloc(tc->value_len ? tc->value_len : 1);
                if (!mine->bytes) {
                    free(mine);
                    return MP_ERR_NOMEM;
                }
                if (tc->value_len)
                    memcpy(mine->bytes, tc->value, tc->value_len);
                if (c->parse(tc->value, tc->value_len, &mine->cfg) < 0)
                    mine->cfg = NULL;
            }
            if (atomic_compare_exchange_strong_explicit(slot, &e, mine, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                *cfg = mine->cfg;
                return 0;
            }
            /* another worker filled this slot first: e is its entry */
        }
        if (e->len == tc->value_len && (e->len == 0 || memcmp(e->bytes, tc->value, e->len) == 0)) {
            entry_free(c, mine);
            *cfg = e->cfg;
            return 0;
        }
    }
    entry_free(c, mine);
    return MP_ERR_LIMIT;
}
