/*
 * lb_least_request.c: least request on this worker's in-flight counts.
 *
 * Counts are per worker (struct mp_lb_worker_env.rq_active), so no counter
 * is written by two threads; with several workers each balances its own
 * share of the load, which is what power-of-two-choices needs.
 */
#include "lb_least_request.h"

#include <math.h>
#include <stdlib.h>

#include "lb_edf.h"
#include "lb_hash.h"
#include "lb_hosts.h"
#include "mp_common.h"

struct lr_shared {
    struct mp_host **hosts;
    size_t n;
    bool weighted;
    uint32_t choice_count;
    double bias;
};

struct lr_worker {
    struct mp_lb_edf edf; /* weighted only */
};

static int lr_create(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                     void **shared, char **err)
{
    (void)err;
    struct lr_shared *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MP_ERR_NOMEM;
    if (mp_lb_hosts_copy(hosts, n, &s->hosts) != 0) {
        free(s);
        return MP_ERR_NOMEM;
    }
    s->n = n;
    s->weighted = mp_lb_hosts_weighted(hosts, n);
    s->choice_count = cfg->least_request.choice_count >= 2 ? cfg->least_request.choice_count : 2;
    s->bias = cfg->least_request.active_request_bias;
    *shared = s;
    return 0;
}

static void lr_destroy(void *shared)
{
    struct lr_shared *s = shared;
    if (s == NULL)
        return;
    free(s->hosts);
    free(s);
}

static double effective_weight(const struct lr_shared *s, const struct mp_lb_worker_env *env,
                               uint32_t slot)
{
    const struct mp_host *h = s->hosts[slot];
    double active = env->rq_active != NULL ? env->rq_active[h->index] : 0;
    if (s->bias == 0.0)
        return h->weight;
    if (s->bias == 1.0)
        return h->weight / (active + 1.0);
    return h->weight / pow(active + 1.0, s->bias);
}

static int lr_worker_new(const void *shared, struct mp_lb_worker_env *env, void **state)
{
    const struct lr_shared *s = shared;
    if (!s->weighted) {
        *state = NULL;
        return 0;
    }
    struct lr_worker *w = calloc(1, sizeof(*w));
    if (w == NULL || mp_lb_edf_init(&w->edf, s->n) != 0) {
        free(w);
        return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->n; i++)
        mp_lb_edf_add(&w->edf, (uint32_t)i, effective_weight(s, env, (uint32_t)i));
    *state = w;
    return 0;
}

static void lr_worker_free(void *state)
{
    struct lr_worker *w = state;
    if (w == NULL)
        return;
    mp_lb_edf_clear(&w->edf);
    free(w);
}

static struct mp_host *lr_pick(const void *shared, void *state, struct mp_lb_worker_env *env,
                               const struct mp_lb_context *ctx, uint32_t attempt)
{
    (void)ctx;
    (void)attempt;
    const struct lr_shared *s = shared;
    struct lr_worker *w = state;
    if (s->weighted) {
        /* The weight is refreshed from the active count each time the host is re-queued. */
        uint32_t slot = mp_lb_edf_pop(&w->edf);
        struct mp_host *h = s->hosts[slot];
        /* Re-queue as if the request just picked is already active. */
        const double active = env->rq_active != NULL ? env->rq_active[h->index] + 1.0 : 1.0;
        double weight = s->bias == 0.0 ? h->weight : h->weight / pow(active + 1.0, s->bias);
        mp_lb_edf_add(&w->edf, slot, weight);
        return h;
    }
    struct mp_host *best = NULL;
    uint32_t best_active = 0;
    for (uint32_t i = 0; i < s->choice_count; i++) {
        struct mp_host *h = s->hosts[mp_lb_random_u64(env->rng) % s->n];
        uint32_t active = env->rq_active != NULL ? env->rq_active[h->index] : 0;
        if (best == NULL || active < best_active) {
            best = h;
            best_active = active;
        }
    }
    return best;
}

const struct mp_lb_ops mp_lb_least_request_ops = {
    .name = "LEAST_REQUEST",
    .create = lr_create,
    .destroy = lr_destroy,
    .worker_new = lr_worker_new,
    .worker_free = lr_worker_free,
    .pick = lr_pick,
};
