/* lb_round_robin.c: weighted round robin (rotation or EDF), per-worker position. */
#include "lb_round_robin.h"

#include <stdlib.h>

#include "lb_edf.h"
#include "lb_hash.h"
#include "lb_hosts.h"
#include "mp_common.h"

struct rr_shared {
    struct mp_host **hosts;
    size_t n;
    bool weighted; /* some weights differ: use EDF */
};

struct rr_worker {
    size_t next;          /* unweighted: rotation index */
    struct mp_lb_edf edf; /* weighted */
};

static int rr_create(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                     void **shared, char **err)
{
    (void)cfg;
    (void)err;
    struct rr_shared *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MP_ERR_NOMEM;
    if (mp_lb_hosts_copy(hosts, n, &s->hosts) != 0) {
        free(s);
        return MP_ERR_NOMEM;
    }
    s->n = n;
    s->weighted = mp_lb_hosts_weighted(hosts, n);
    *shared = s;
    return 0;
}

static void rr_destroy(void *shared)
{
    struct rr_shared *s = shared;
    if (s == NULL)
        return;
    free(s->hosts);
    free(s);
}

static int rr_worker_new(const void *shared, struct mp_lb_worker_env *env, void **state)
{
    const struct rr_shared *s = shared;
    struct rr_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MP_ERR_NOMEM;
    /* A random start keeps workers (and proxies) from all hitting host 0 first. */
    uint64_t offset = mp_lb_random_u64(env->rng) % s->n;
    if (!s->weighted) {
        w->next = (size_t)offset;
    } else {
        if (mp_lb_edf_init(&w->edf, s->n) != 0) {
            free(w);
            return MP_ERR_NOMEM;
        }
        for (size_t i = 0; i < s->n; i++)
            mp_lb_edf_add(&w->edf, (uint32_t)i, s->hosts[i]->weight);
        for (uint64_t i = 0; i < offset; i++) {
            uint32_t slot = mp_lb_edf_pop(&w->edf);
            mp_lb_edf_add(&w->edf, slot, s->hosts[slot]->weight);
        }
    }
    *state = w;
    return 0;
}

static void rr_worker_free(void *state)
{
    struct rr_worker *w = state;
    if (w == NULL)
        return;
    mp_lb_edf_clear(&w->edf);
    free(w);
}

static struct mp_host *rr_pick(const void *shared, void *state, struct mp_lb_worker_env *env,
                               const struct mp_lb_context *ctx, uint32_t attempt)
{
    (void)env;
    (void)ctx;
    (void)attempt;
    const struct rr_shared *s = shared;
    struct rr_worker *w = state;
    if (!s->weighted) {
        struct mp_host *h = s->hosts[w->next % s->n];
        w->next = (w->next + 1) % s->n;
        return h;
    }
    uint32_t slot = mp_lb_edf_pop(&w->edf);
    mp_lb_edf_add(&w->edf, slot, s->hosts[slot]->weight);
    return s->hosts[slot];
}

const struct mp_lb_ops mp_lb_round_robin_ops = {
    .name = "ROUND_ROBIN",
    .create = rr_create,
    .destroy = rr_destroy,
    .worker_new = rr_worker_new,
    .worker_free = rr_worker_free,
    .pick = rr_pick,
};
