/*
 * lb_core.c: priority levels x health classes (x localities, when locality
 * weighted), each a unit with the policy's shared state.
 */
#include "lb_core.h"

#include <stdlib.h>
#include <string.h>

#include "lb_edf.h"
#include "lb_hash.h"
#include "mp_common.h"

enum { SRC_HEALTHY = 0, SRC_DEGRADED = 1, SRC_COUNT = 2 };

/* A list of hosts with the policy's shared state built over it. */
struct lb_unit {
    struct mp_host **hosts;
    size_t n;
    void *shared;
};

/*
 * One priority level x health class (in panic, SRC_HEALTHY holds all the
 * level's hosts). Normally one unit; with locality weighting, one unit per
 * locality and an EDF choice between them by effective locality weight.
 */
struct lb_source {
    size_t first_unit;
    size_t n_units;
    double *weights; /* per unit, by_locality only */
    bool by_locality;
};

struct mp_lb {
    atomic_uint refs;
    struct mp_lb_config cfg;
    const struct mp_lb_ops *ops;
    struct mp_host_set *hs;
    struct mp_priority_load load;
    struct lb_source *src; /* [level * SRC_COUNT + class] */
    size_t n_src;
    struct lb_unit *units;
    size_t n_units;
    struct mp_host **ptrs; /* backing store for every unit's host list */
};

struct mp_lb_worker {
    unsigned refs;
    struct mp_lb *lb;
    struct mp_lb_worker_env env;
    uint32_t *rq_active;   /* by mp_host.index */
    void **state;          /* per unit */
    struct mp_lb_edf *edf; /* per source; used by by_locality sources */
};

static void lb_destroy(struct mp_lb *lb)
{
    for (size_t i = 0; lb->units != NULL && i < lb->n_units; i++)
        if (lb->units[i].shared != NULL)
            lb->ops->destroy(lb->units[i].shared);
    for (size_t i = 0; lb->src != NULL && i < lb->n_src; i++)
        free(lb->src[i].weights);
    free(lb->src);
    free(lb->units);
    free(lb->ptrs);
    mp_lb_priority_load_clear(&lb->load);
    mp_host_set_unref(lb->hs);
    free(lb);
}

static int by_locality_cmp(const void *a, const void *b)
{
    const struct mp_host *x = *(struct mp_host *const *)a, *y = *(struct mp_host *const *)b;
    if (x->locality_index != y->locality_index)
        return x->locality_index < y->locality_index ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Hosts of level p with locality index loc (eligible or not). */
static size_t locality_size(const struct mp_priority *lvl, uint32_t loc)
{
    size_t n = 0;
    for (size_t i = 0; i < lvl->n_hosts; i++)
        n += lvl->hosts[i].locality_index == loc;
    return n;
}

/*
 * Splits hosts[0..n) (one source of level lvl) into per-locality units with
 * Envoy's effective weight: locality weight * min(1, overprovisioning *
 * eligible / all hosts of that locality). Localities without weight are left
 * out; when none has any, the source stays one unit (Envoy then ignores
 * localities too). Returns 0 or MP_ERR_NOMEM.
 */
static int split_by_locality(struct mp_lb *lb, const struct mp_priority *lvl, struct lb_source *src,
                             struct mp_host **hosts, size_t n)
{
    const struct mp_host_set *hs = lb->hs;
    qsort(hosts, n, sizeof(*hosts), by_locality_cmp);
    src->weights = calloc(n, sizeof(*src->weights));
    if (src->weights == NULL)
        return MP_ERR_NOMEM;
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        uint32_t loc = hosts[i]->locality_index;
        size_t k = i;
        while (k < n && hosts[k]->locality_index == loc)
            k++;
        double w = loc < hs->n_localities ? hs->localities[loc].weight : 0;
        double avail = (double)hs->overprovisioning_factor / 100.0 * (double)(k - i) /
                       (double)locality_size(lvl, loc);
        w *= avail < 1.0 ? avail : 1.0;
        if (w > 0) {
            struct lb_unit *u = &lb->units[src->first_unit + units];
            u->hosts = hosts + i;
            u->n = k - i;
            src->weights[units++] = w;
        }
        i = k;
    }
    if (units == 0) {
        free(src->weights);
        src->weights = NULL;
        struct lb_unit *u = &lb->units[src->first_unit];
        u->hosts = hosts;
        u->n = n;
        src->n_units = 1;
        return 0;
    }
    src->by_locality = true;
    src->n_units = units;
    return 0;
}

int mp_lb_new(const struct mp_lb_config *cfg, struct mp_host_set *hs, struct mp_lb **out,
              char **err)
{
    const struct mp_lb_ops *ops = mp_lb_ops_get(cfg->policy);
    if (ops == NULL) {
        mp_set_err(err, "lb_policy: %s has no load balancer", mp_lb_policy_name(cfg->policy));
        return MP_ERR_UNSUPPORTED;
    }
    struct mp_lb *lb = calloc(1, sizeof(*lb));
    if (lb == NULL)
        return MP_ERR_NOMEM;
    atomic_init(&lb->refs, 1);
    lb->cfg = *cfg;
    lb->ops = ops;
    lb->hs = mp_host_set_ref(hs);
    int rc = mp_lb_priority_load_compute(hs, cfg->healthy_panic_threshold, &lb->load);
    if (rc != 0)
        goto fail;
    rc = MP_ERR_NOMEM;
    lb->src = calloc(lb->load.n * SRC_COUNT, sizeof(*lb->src));
    if (lb->src == NULL)
        goto fail;
    lb->n_src = lb->load.n * SRC_COUNT;
    /* Each host lands in at most one unit, and every unit has a host. */
    const size_t cap = hs->n_hosts ? hs->n_hosts : 1;
    lb->ptrs = malloc(cap * sizeof(*lb->ptrs));
    lb->units = calloc(cap, sizeof(*lb->units));
    if (lb->ptrs == NULL || lb->units == NULL)
        goto fail;
    /* Hash policies map keys to hosts; Envoy scales their weights instead (not done here). */
    const bool localities =
        cfg->locality_weighted && cfg->policy != MP_LB_RING_HASH && cfg->policy != MP_LB_MAGLEV;

    size_t used = 0;
    for (size_t p = 0; p < lb->load.n && p < hs->n_priorities; p++) {
        const struct mp_priority *lvl = &hs->priorities[p];
        for (int cls = 0; cls < SRC_COUNT; cls++) {
            struct lb_source *src = &lb->src[p * SRC_COUNT + cls];
            struct mp_host **hosts = lb->ptrs + used;
            size_t n = 0;
            for (size_t i = 0; i < lvl->n_hosts; i++) {
                const struct mp_host *h = &lvl->hosts[i];
                bool take = cls == SRC_HEALTHY
                                ? lb->load.panic[p] || h->health == MP_HOST_HEALTHY
                                : !lb->load.panic[p] && h->health == MP_HOST_DEGRADED;
                if (take)
                    hosts[n++] = &lvl->hosts[i];
            }
            used += n;
            if (n == 0)
                continue;
            src->first_unit = lb->n_units;
            /* Envoy balances a panicking level over all hosts, localities aside. */
            if (localities && !lb->load.panic[p]) {
                rc = split_by_locality(lb, lvl, src, hosts, n);
                if (rc != 0)
                    goto fail;
            } else {
                lb->units[lb->n_units].hosts = hosts;
                lb->units[lb->n_units].n = n;
                src->n_units = 1;
            }
            lb->n_units += src->n_units;
        }
    }
    for (size_t i = 0; i < lb->n_units; i++) {
        rc = ops->create(lb->units[i].hosts, lb->units[i].n, cfg, &lb->units[i].shared, err);
        if (rc != 0)
            goto fail;
    }
    *out = lb;
    return 0;
fail:
    lb_destroy(lb);
    return rc;
}

struct mp_lb *mp_lb_ref(struct mp_lb *lb)
{
    atomic_fetch_add_explicit(&lb->refs, 1, memory_order_relaxed);
    return lb;
}

void mp_lb_unref(struct mp_lb *lb)
{
    if (lb == NULL)
        return;
    if (atomic_fetch_sub_explicit(&lb->refs, 1, memory_order_acq_rel) == 1)
        lb_destroy(lb);
}

struct mp_host_set *mp_lb_host_set(const struct mp_lb *lb)
{
    return lb->hs;
}

const struct mp_priority_load *mp_lb_priority_load(const struct mp_lb *lb)
{
    return &lb->load;
}

static void worker_destroy(struct mp_lb_worker *w)
{
    if (w->state != NULL)
        for (size_t i = 0; i < w->lb->n_units; i++)
            if (w->state[i] != NULL)
                w->lb->ops->worker_free(w->state[i]);
    if (w->edf != NULL)
        for (size_t i = 0; i < w->lb->n_src; i++)
            mp_lb_edf_clear(&w->edf[i]);
    free(w->edf);
    free(w->state);
    free(w->rq_active);
    mp_lb_unref(w->lb);
    free(w);
}

int mp_lb_worker_new(struct mp_lb *lb, uint64_t seed, struct mp_lb_worker **out)
{
    struct mp_lb_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MP_ERR_NOMEM;
    w->refs = 1;
    w->lb = mp_lb_ref(lb);
    mp_lb_rng_seed(w->env.rng, seed);
    w->rq_active = calloc(lb->hs->n_hosts ? lb->hs->n_hosts : 1, sizeof(*w->rq_active));
    w->state = calloc(lb->n_units ? lb->n_units : 1, sizeof(*w->state));
    w->edf = calloc(lb->n_src ? lb->n_src : 1, sizeof(*w->edf));
    if (w->rq_active == NULL || w->state == NULL || w->edf == NULL)
        goto nomem;
    w->env.rq_active = w->rq_active;
    for (size_t i = 0; i < lb->n_units; i++)
        if (lb->ops->worker_new(lb->units[i].shared, &w->env, &w->state[i]) != 0)
            goto nomem;
    for (size_t i = 0; i < lb->n_src; i++) {
        const struct lb_source *src = &lb->src[i];
        if (!src->by_locality)
            continue;
        if (mp_lb_edf_init(&w->edf[i], src->n_units) != 0)
            goto nomem;
        for (size_t k = 0; k < src->n_units; k++)
            mp_lb_edf_add(&w->edf[i], (uint32_t)k, src->weights[k]);
        /* Start each worker at its own point of the locality schedule. */
        for (uint64_t k = mp_lb_random_u64(w->env.rng) % src->n_units; k > 0; k--) {
            uint32_t slot = mp_lb_edf_pop(&w->edf[i]);
            mp_lb_edf_add(&w->edf[i], slot, src->weights[slot]);
        }
    }
    *out = w;
    return 0;
nomem:
    worker_destroy(w);
    return MP_ERR_NOMEM;
}

struct mp_lb_worker *mp_lb_worker_ref(struct mp_lb_worker *w)
{
    w->refs++;
    return w;
}

void mp_lb_worker_unref(struct mp_lb_worker *w)
{
    if (w != NULL && --w->refs == 0)
        worker_destroy(w);
}

struct mp_lb *mp_lb_worker_lb(const struct mp_lb_worker *w)
{
    return w->lb;
}

static bool avoided(const struct mp_lb_context *ctx, const struct mp_host *h)
{
    if (ctx == NULL)
        return false;
    for (size_t i = 0; i < ctx->n_avoid; i++)
        if (ctx->avoid[i] == h)
            return true;
    return false;
}

struct mp_host *mp_lb_pick(struct mp_lb_worker *w, const struct mp_lb_context *ctx)
{
    const struct mp_lb *lb = w->lb;
    if (lb->hs->n_hosts == 0)
        return NULL;
    uint32_t attempts = ctx != NULL && ctx->max_attempts != 0 ? ctx->max_attempts : 2;
    struct mp_host *h = NULL;
    for (uint32_t attempt = 0; attempt < attempts; attempt++) {
        uint64_t hv = ctx != NULL && ctx->has_hash ? ctx->hash : mp_lb_random_u64(w->env.rng);
        bool degraded;
        uint32_t p = mp_lb_priority_choose(&lb->load, hv, &degraded);
        size_t i = (size_t)p * SRC_COUNT + (degraded ? SRC_DEGRADED : SRC_HEALTHY);
        const struct lb_source *src = &lb->src[i];
        if (src->n_units == 0)
            return NULL; /* panic disabled and nothing healthy */
        size_t u = src->first_unit;
        if (src->by_locality) {
            uint32_t slot = mp_lb_edf_pop(&w->edf[i]);
            mp_lb_edf_add(&w->edf[i], slot, src->weights[slot]);
            u += slot;
        }
        h = lb->ops->pick(lb->units[u].shared, w->state[u], &w->env, ctx, attempt);
        if (!avoided(ctx, h))
            break;
    }
    return h;
}

static bool owns(const struct mp_lb_worker *w, const struct mp_host *h)
{
    const struct mp_host_set *hs = w->lb->hs;
    return h->index < hs->n_hosts && &hs->hosts[h->index] == h;
}

void mp_lb_worker_rq_start(struct mp_lb_worker *w, const struct mp_host *h)
{
    if (owns(w, h))
        w->rq_active[h->index]++;
}

void mp_lb_worker_rq_done(struct mp_lb_worker *w, const struct mp_host *h)
{
    if (owns(w, h) && w->rq_active[h->index] > 0)
        w->rq_active[h->index]--;
}

uint32_t mp_lb_worker_rq_active(const struct mp_lb_worker *w, const struct mp_host *h)
{
    return owns(w, h) ? w->rq_active[h->index] : 0;
}
