/* lb_priority.c: Envoy's per-priority load, panic and priority choice. */
#include "lb_priority.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "mp_common.h"

void mp_lb_priority_load_clear(struct mp_priority_load *l)
{
    free(l->healthy);
    free(l->degraded);
    free(l->panic);
    memset(l, 0, sizeof(*l));
}

/* Healthy / degraded / total of one level, by count or by host weight. */
static void level_weights(const struct mp_priority *p, bool weighted, uint64_t *healthy,
                          uint64_t *degraded, uint64_t *total)
{
    if (!weighted) {
        *healthy = p->n_healthy;
        *degraded = p->n_degraded;
        *total = p->n_hosts;
        return;
    }
    *healthy = *degraded = *total = 0;
    for (size_t i = 0; i < p->n_hosts; i++) {
        const struct mp_host *h = &p->hosts[i];
        *total += h->weight;
        if (h->health == MP_HOST_HEALTHY)
            *healthy += h->weight;
        else if (h->health == MP_HOST_DEGRADED)
            *degraded += h->weight;
    }
}

/*
 * Hands out total_load to levels in order, each taking at most its
 * availability scaled to the normalized total. Returns what is left and
 * the first level with any availability (-1 if none), as Envoy's
 * distributeLoad does.
 */
static uint32_t distribute(uint32_t *load, const uint32_t *avail, size_t n, uint32_t total_load,
                           uint32_t normalized_total, long *first)
{
    *first = -1;
    for (size_t i = 0; i < n; i++) {
        if (*first < 0 && avail[i] > 0)
            *first = (long)i;
        load[i] = MP_MIN(total_load, avail[i] * 100 / normalized_total);
        total_load -= load[i];
    }
    return total_load;
}

int mp_lb_priority_load_compute(const struct mp_host_set *hs, uint32_t panic_threshold,
                                struct mp_priority_load *out)
{
    size_t n = MP_MAX(hs->n_priorities, (size_t)1);
    memset(out, 0, sizeof(*out));
    uint32_t *health = calloc(n, sizeof(*health));
    uint32_t *deg_avail = calloc(n, sizeof(*deg_avail));
    out->healthy = calloc(n, sizeof(*out->healthy));
    out->degraded = calloc(n, sizeof(*out->degraded));
    out->panic = calloc(n, sizeof(*out->panic));
    out->n = n;
    if (health == NULL || deg_avail == NULL || out->healthy == NULL || out->degraded == NULL ||
        out->panic == NULL) {
        free(health);
        free(deg_avail);
        mp_lb_priority_load_clear(out);
        return MP_ERR_NOMEM;
    }

    uint64_t factor = hs->overprovisioning_factor;
    uint64_t sum = 0;
    for (size_t i = 0; i < hs->n_priorities; i++) {
        uint64_t hw, dw, tw;
        level_weights(&hs->priorities[i], hs->weighted_priority_health, &hw, &dw, &tw);
        if (tw == 0)
            continue;
        health[i] = (uint32_t)MP_MIN((uint64_t)100, factor * hw / tw);
        deg_avail[i] = (uint32_t)MP_MIN((uint64_t)100, factor * dw / tw);
        sum += (uint64_t)health[i] + deg_avail[i];
    }
    uint32_t normalized_total = (uint32_t)MP_MIN(sum, (uint64_t)100);

    if (normalized_total > 0) {
        long first_h, first_d;
        uint32_t left = distribute(out->healthy, health, n, 100, normalized_total, &first_h);
        left = distribute(out->degraded, deg_avail, n, left, normalized_total, &first_d);
        /* Rounding leftovers go to the first available level. */
        if (left != 0) {
            if (first_h >= 0)
                out->healthy[first_h] += left;
            else
                out->degraded[first_d] += left;
        }
    }

    if (panic_threshold == 0 && normalized_total == 0) {
        /* Panic disabled and nothing available: P0 takes the load and finds no host. */
        out->healthy[0] = 100;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (normalized_total == 0) {
            out->panic[i] = true;
            continue;
        }
        const struct mp_priority *p = i < hs->n_priorities ? &hs->priorities[i] : NULL;
        size_t cnt = p != NULL ? p->n_hosts : 0;
        double avail_pct = cnt == 0 ? 0.0 : 100.0 * (double)(p->n_healthy + p->n_degraded) / cnt;
        out->panic[i] = avail_pct < (double)MP_MIN(panic_threshold, 100u);
    }
    if (normalized_total == 0) {
        /* Total panic: split by host count; the rest to the first non-empty level. */
        out->total_panic = true;
        if (hs->n_hosts == 0) {
            out->healthy[0] = 100;
            goto done;
        }
        uint32_t left = 100;
        long first = -1;
        for (size_t i = 0; i < hs->n_priorities; i++) {
            size_t cnt = hs->priorities[i].n_hosts;
            if (first < 0 && cnt != 0)
                first = (long)i;
            out->healthy[i] = (uint32_t)(100 * cnt / hs->n_hosts);
            out->degraded[i] = 0;
            left -= out->healthy[i];
        }
        out->healthy[first] += left;
    }
done:
    free(health);
    free(deg_avail);
    return 0;
}

uint32_t mp_lb_priority_choose(const struct mp_priority_load *l, uint64_t hash, bool *degraded)
{
    const uint32_t h = (uint32_t)(hash % 100);
    uint32_t acc = 0;
    *degraded = false;
    for (size_t i = 0; i < l->n; i++) {
        acc += l->healthy[i];
        if (h < acc)
            return (uint32_t)i;
    }
    for (size_t i = 0; i < l->n; i++) {
        acc += l->degraded[i];
        if (h < acc) {
            *degraded = true;
            return (uint32_t)i;
        }
    }
    /* Unreachable when loads sum to 100; fall back to P0 healthy. */
    return 0;
}
