/*
 * lb_ring_hash.c: ketama ring hash, built once per host list and shared.
 *
 * Entries are keyed "<addr>_<i>" and hashed with xxHash64 (or MurmurHash2)
 * as Envoy does. How many entries a host gets differs from Envoy on
 * purpose: Envoy scales entries so the lightest host gets
 * ceil(min_ring_size * w_min / W), which changes every host's count when a
 * host joins or leaves, so ~7% of keys of *surviving* hosts move when one
 * of 10 hosts is removed. Here every weight unit gets the same number of
 * entries k, a power of two with k * W >= min_ring_size: k changes only
 * when the total weight W crosses min_ring_size / 2^j, so removing a host
 * usually moves only that host's keys (consistent hashing's promise). The
 * price: when W crosses such a boundary (with min_ring_size 1024 and equal
 * weights, between 8 and 7 hosts, 4 and 3, 2 and 1) k doubles or halves
 * and about a third of the keys move once. The ring holds between
 * min_ring_size and 2 * min_ring_size entries. If W exceeds max_ring_size,
 * Envoy's fractional scaling is used.
 */
#include "lb_ring_hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_hash.h"
#include "mp_common.h"

struct ring_entry {
    uint64_t hash;
    struct mp_host *host;
};

struct ring {
    struct ring_entry *entries;
    size_t n;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct ring_entry *x = a, *y = b;
    return x->hash < y->hash ? -1 : (x->hash > y->hash);
}

static const char *hash_key(const struct mp_host *h, bool use_hostname)
{
    if (use_hostname && h->hostname != NULL && h->hostname[0] != '\0')
        return h->hostname;
    return h->addr_str;
}

static int ring_create(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                       void **shared, char **err)
{
    const struct mp_ring_hash_config *rc = &cfg->ring_hash;
    uint64_t total_weight = 0, min_weight = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        total_weight += hosts[i]->weight;
        min_weight = MP_MIN(min_weight, (uint64_t)hosts[i]->weight);
    }
    if (rc->min_ring_size > rc->max_ring_size)
        return mp_set_err(
            err, "ring_hash_lb_config: minimum_ring_size (%llu) > maximum_ring_size (%llu)",
            (unsigned long long)rc->min_ring_size, (unsigned long long)rc->max_ring_size);
    /* Entries per weight unit: power of two, >= min_ring_size overall, <= max. */
    uint64_t k = 0;
    if (total_weight <= rc->max_ring_size) {
        uint64_t want = (rc->min_ring_size + total_weight - 1) / total_weight;
        k = 1;
        while (k < want)
            k <<= 1;
        while (k > 1 && k * total_weight > rc->max_ring_size)
            k >>= 1;
    }
    double scale = 0.0; /* Envoy's fractional scaling, only when k == 0 */
    size_t ring_size;
    if (k != 0) {
        ring_size = (size_t)(k * total_weight);
    } else {
        const double min_norm = (double)min_weight / (double)total_weight;
        scale = MP_MIN(ceil(min_norm * (double)rc->min_ring_size) / min_norm,
                       (double)rc->max_ring_size);
        ring_size = (size_t)ceil(scale);
    }

    struct ring *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MP_ERR_NOMEM;
    /* Running sums can add one entry per host through rounding. */
    const size_t cap = ring_size + n + 1;
    r->entries = malloc(cap * sizeof(*r->entries));
    if (r->entries == NULL) {
        free(r);
        return MP_ERR_NOMEM;
    }
    char buf[320];
    double current = 0.0, target = 0.0;
    for (size_t i = 0; i < n; i++) {
        const char *key = hash_key(hosts[i], cfg->use_hostname_for_hashing);
        uint64_t count;
        if (k != 0) {
            count = k * hosts[i]->weight;
        } else {
            /* Envoy: running sums so fractional shares come out right overall. */
            target += scale * ((double)hosts[i]->weight / (double)total_weight);
            count = 0;
            while (current < target) {
                current += 1.0;
                count++;
            }
        }
        for (uint64_t e = 0; e < count && r->n < cap; e++) {
            int len = snprintf(buf, sizeof(buf), "%s_%llu", key, (unsigned long long)e);
            if (len < 0 || (size_t)len >= sizeof(buf))
                len = (int)sizeof(buf) - 1;
            uint64_t hv = rc->hash_function == MP_HASH_MURMUR2
                              ? mp_lb_murmur2_64(buf, (size_t)len, MP_MURMUR2_STD_SEED)
                              : mp_lb_xxhash64(buf, (size_t)len, 0);
            r->entries[r->n].hash = hv;
            r->entries[r->n].host = hosts[i];
            r->n++;
        }
    }
    qsort(r->entries, r->n, sizeof(*r->entries), entry_cmp);
    *shared = r;
    return 0;
}

static void ring_destroy(void *shared)
{
    struct ring *r = shared;
    if (r == NULL)
        return;
    free(r->entries);
    free(r);
}

static int ring_worker_new(const void *shared, struct mp_lb_worker_env *env, void **state)
{
    (void)shared;
    (void)env;
    *state = NULL; /* the ring is immutable: nothing per worker */
    return 0;
}

static void ring_worker_free(void *state)
{
    (void)state;
}

static struct mp_host *ring_pick(const void *shared, void *state, struct mp_lb_worker_env *env,
                                 const struct mp_lb_context *ctx, uint32_t attempt)
{
    (void)state;
    const struct ring *r = shared;
    const uint64_t h = ctx != NULL && ctx->has_hash ? ctx->hash : mp_lb_random_u64(env->rng);
    /* First entry whose hash is >= h, wrapping past the end to 0. */
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->entries[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->n)
        lo = 0;
    /* A retry steps along the ring, as if the first host were not on it. */
    if (attempt > 0)
        lo = (lo + attempt) % r->n;
    return r->entries[lo].host;
}

const struct mp_lb_ops mp_lb_ring_hash_ops = {
    .name = "RING_HASH",
    .create = ring_create,
    .destroy = ring_destroy,
    .worker_new = ring_worker_new,
    .worker_free = ring_worker_free,
    .pick = ring_pick,
};
