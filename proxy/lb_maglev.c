/*
 * lb_maglev.c: Maglev lookup table (Eisenbud et al., NSDI '16), as Envoy
 * builds it: offset = xxHash64(key) % M, skip = xxHash64(key, seed 1) %
 * (M - 1) + 1; hosts take turns claiming their next free preferred slot,
 * heavier hosts more often. Built once per host list and shared; the table
 * holds 32-bit host numbers to halve its size.
 */
#include "lb_maglev.h"

#include <stdlib.h>
#include <string.h>

#include "lb_hash.h"
#include "mp_common.h"

#define EMPTY UINT32_MAX

struct maglev {
    struct mp_host **hosts;
    size_t n_hosts;
    uint32_t *table;
    uint64_t size;
};

struct build_entry {
    uint64_t offset;
    uint64_t skip;
    uint64_t next;
    uint64_t weight;
    uint64_t target;
};

static int maglev_create(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                         void **shared, char **err)
{
    const uint64_t m = cfg->maglev.table_size;
    if (m < 2)
        return mp_set_err(err, "maglev_lb_config.table_size: %llu is too small",
                          (unsigned long long)m);
    struct maglev *mg = calloc(1, sizeof(*mg));
    struct build_entry *be = calloc(n, sizeof(*be));
    if (mg == NULL || be == NULL)
        goto nomem;
    mg->hosts = malloc(n * sizeof(*mg->hosts));
    mg->table = malloc(m * sizeof(*mg->table));
    if (mg->hosts == NULL || mg->table == NULL)
        goto nomem;
    memcpy(mg->hosts, hosts, n * sizeof(*mg->hosts));
    mg->n_hosts = n;
    mg->size = m;
    memset(mg->table, 0xff, m * sizeof(*mg->table));

    uint64_t max_w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = cfg->use_hostname_for_hashing && hosts[i]->hostname != NULL &&
                                  hosts[i]->hostname[0] != '\0'
                              ? hosts[i]->hostname
                              : hosts[i]->addr_str;
        size_t len = strlen(key);
        be[i].offset = mp_lb_xxhash64(key, len, 0) % m;
        be[i].skip = mp_lb_xxhash64(key, len, 1) % (m - 1) + 1;
        be[i].weight = hosts[i]->weight;
        max_w = MP_MAX(max_w, be[i].weight);
    }
    /*
     * In each round a host claims a slot when round * weight has reached its
     * target; the target then grows by the largest weight, so the heaviest
     * host claims every round and a host of half its weight every other one.
     */
    uint64_t filled = 0;
    for (uint64_t round = 1; filled < m; round++) {
        for (size_t i = 0; i < n && filled < m; i++) {
            struct build_entry *e = &be[i];
            if (round * e->weight < e->target)
                continue;
            e->target += max_w;
            uint64_t c = (e->offset + e->skip * e->next) % m;
            while (mg->table[c] != EMPTY) {
                e->next++;
                c = (e->offset + e->skip * e->next) % m;
            }
            mg->table[c] = (uint32_t)i;
            e->next++;
            filled++;
        }
    }
    free(be);
    *shared = mg;
    return 0;
nomem:
    if (mg != NULL) {
        free(mg->hosts);
        free(mg->table);
        free(mg);
    }
    free(be);
    return MP_ERR_NOMEM;
}

static void maglev_destroy(void *shared)
{
    struct maglev *mg = shared;
    if (mg == NULL)
        return;
    free(mg->hosts);
    free(mg->table);
    free(mg);
}

static int maglev_worker_new(const void *shared, struct mp_lb_worker_env *env, void **state)
{
    (void)shared;
    (void)env;
    *state = NULL; /* the table is immutable: nothing per worker */
    return 0;
}

static void maglev_worker_free(void *state)
{
    (void)state;
}

static struct mp_host *maglev_pick(const void *shared, void *state, struct mp_lb_worker_env *env,
                                   const struct mp_lb_context *ctx, uint32_t attempt)
{
    (void)state;
    const struct maglev *mg = shared;
    uint64_t h = ctx != NULL && ctx->has_hash ? ctx->hash : mp_lb_random_u64(env->rng);
    if (attempt > 0) {
        /* A retry re-hashes with the attempt number to land somewhere else. */
        uint64_t buf[2] = {h, attempt};
        h = mp_lb_xxhash64(buf, sizeof(buf), 0);
    }
    return mg->hosts[mg->table[h % mg->size]];
}

const struct mp_lb_ops mp_lb_maglev_ops = {
    .name = "MAGLEV",
    .create = maglev_create,
    .destroy = maglev_destroy,
    .worker_new = maglev_worker_new,
    .worker_free = maglev_worker_free,
    .pick = maglev_pick,
};
