/* cluster_dns.c: DNS answers -> the host set of a STRICT_DNS / LOGICAL_DNS cluster. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_dns.h"
#include "mp_common.h"

static int copy_locality(struct mp_locality *dst, const struct mp_locality *src)
{
    dst->region = strdup(src->region != NULL ? src->region : "");
    dst->zone = strdup(src->zone != NULL ? src->zone : "");
    dst->sub_zone = strdup(src->sub_zone != NULL ? src->sub_zone : "");
    return dst->region && dst->zone && dst->sub_zone ? 0 : MP_ERR_NOMEM;
}

int mp_host_set_from_dns(const struct mp_cluster *c, const struct mp_dns_answer *const *answers,
                         struct mp_host_set **out)
{
    const bool logical = c->type == MP_CLUSTER_LOGICAL_DNS;
    struct mp_host_set *hs = mp_host_set_new();
    if (hs == NULL)
        return MP_ERR_NOMEM;
    hs->overprovisioning_factor = c->overprovisioning_factor;
    size_t n = 0;
    for (size_t i = 0; i < c->n_dns_targets; i++) {
        const struct mp_dns_answer *a = answers != NULL ? answers[i] : NULL;
        if (a != NULL && a->status == 0)
            n += logical ? MP_MIN(a->n_addrs, (size_t)1) : a->n_addrs;
    }
    hs->hosts = calloc(n ? n : 1, sizeof(*hs->hosts));
    hs->localities = calloc(c->n_dns_targets ? c->n_dns_targets : 1, sizeof(*hs->localities));
    if (hs->hosts == NULL || hs->localities == NULL)
        goto nomem;
    for (size_t i = 0; i < c->n_dns_targets; i++) {
        const struct mp_dns_target *t = &c->dns_targets[i];
        struct mp_host_locality *loc = &hs->localities[hs->n_localities++];
        if (copy_locality(&loc->locality, &t->locality) != 0)
            goto nomem;
        loc->weight = t->locality_weight;
        loc->priority = t->priority;
        const struct mp_dns_answer *a = answers != NULL ? answers[i] : NULL;
        if (a == NULL || a->status != 0)
            continue;
        size_t take = logical ? MP_MIN(a->n_addrs, (size_t)1) : a->n_addrs;
        for (size_t k = 0; k < take; k++) {
            struct mp_host *h = &hs->hosts[hs->n_hosts++];
            char buf[160];
            h->addr = a->addrs[k];
            h->addr_len = a->addr_lens[k];
            h->addr_str = strdup(mp_host_addr_format(&h->addr, buf, sizeof(buf)));
            h->hostname = strdup(t->hostname);
            if (h->addr_str == NULL || h->hostname == NULL)
                goto nomem;
            h->weight = t->weight ? t->weight : 1;
            h->health = t->health;
            h->priority = t->priority;
            h->locality_index = (uint32_t)i;
        }
    }
    if (mp_host_set_finish(hs) != 0)
        goto nomem;
    *out = hs;
    return 0;
nomem:
    mp_host_set_free(hs);
    return MP_ERR_NOMEM;
}

/* The last good answer of one target. */
struct target_state {
    uint64_t query_id;
    bool answered;
    struct mp_dns_answer last; /* status 0 with addresses, or empty */
};

struct mp_cluster_dns {
    struct mp_dns_resolver *r;
    struct mp_cluster *c;
    mp_cluster_dns_update_fn cb;
    void *arg;
    struct target_state *t;
    size_t n;
};

int mp_cluster_dns_new(struct mp_dns_resolver *r, struct mp_cluster *c, mp_cluster_dns_update_fn cb,
                       void *arg, struct mp_cluster_dns **out)
{
    if (c->type != MP_CLUSTER_STRICT_DNS && c->type != MP_CLUSTER_LOGICAL_DNS)
        return MP_ERR_INVAL;
    struct mp_cluster_dns *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return MP_ERR_NOMEM;
    d->t = calloc(c->n_dns_targets ? c->n_dns_targets : 1, sizeof(*d->t));
    if (d->t == NULL) {
        free(d);
        return MP_ERR_NOMEM;
    }
    d->r = r;
    d->c = mp_cluster_ref(c);
    d->cb = cb;
    d->arg = arg;
    for (size_t i = 0; i < c->n_dns_targets; i++) {
        const struct mp_dns_target *t = &c->dns_targets[i];
        int rc = mp_dns_resolver_add(r, t->hostname, t->port, c->dns_family, c->dns_refresh_ms,
                                     &d->t[i].query_id);
        if (rc != 0) {
            mp_cluster_dns_free(d);
            return rc;
        }
        d->n++;
    }
    *out = d;
    return 0;
}

void mp_cluster_dns_free(struct mp_cluster_dns *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        mp_dns_resolver_remove(d->r, d->t[i].query_id);
        mp_dns_answer_clear(&d->t[i].last);
    }
    free(d->t);
    mp_cluster_unref(d->c);
    free(d);
}

static bool same_addrs(const struct mp_dns_answer *a, const struct mp_dns_answer *b)
{
    if (a->n_addrs != b->n_addrs)
        return false;
    for (size_t i = 0; i < a->n_addrs; i++)
        if (a->addr_lens[i] != b->addr_lens[i] ||
            memcmp(&a->addrs[i], &b->addrs[i], a->addr_lens[i]) != 0)
            return false;
    return true;
}

static int copy_answer(struct mp_dns_answer *dst, const struct mp_dns_answer *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->query_id = src->query_id;
    size_t n = src->n_addrs ? src->n_addrs : 1;
    dst->addrs = malloc(n * sizeof(*dst->addrs));
    dst->addr_lens = malloc(n * sizeof(*dst->addr_lens));
    if (dst->addrs == NULL || dst->addr_lens == NULL) {
        mp_dns_answer_clear(dst);
        return MP_ERR_NOMEM;
    }
    memcpy(dst->addrs, src->addrs, src->n_addrs * sizeof(*dst->addrs));
    memcpy(dst->addr_lens, src->addr_lens, src->n_addrs * sizeof(*dst->addr_lens));
    dst->n_addrs = src->n_addrs;
    return 0;
}

bool mp_cluster_dns_on_answer(struct mp_cluster_dns *d, const struct mp_dns_answer *a)
{
    size_t i = 0;
    while (i < d->n && d->t[i].query_id != a->query_id)
        i++;
    if (i == d->n)
        return false;
    struct target_state *t = &d->t[i];
    bool first = !t->answered;
    t->answered = true;
    bool changed = false;
    if (a->status == 0 && !same_addrs(a, &t->last)) {
        struct mp_dns_answer copy;
        if (copy_answer(&copy, a) == 0) {
            mp_dns_answer_clear(&t->last);
            t->last = copy;
            changed = true;
        }
    }
    /* The first answer of the last target completes warming even if it failed. */
    if (!changed && !(first && mp_cluster_dns_ready(d)))
        return true;
    if (!mp_cluster_dns_ready(d))
        return true; /* publish once every target has had its say */
    const struct mp_dns_answer **answers = calloc(d->n ? d->n : 1, sizeof(*answers));
    if (answers == NULL)
        return true;
    for (size_t k = 0; k < d->n; k++)
        answers[k] = d->t[k].last.n_addrs > 0 ? &d->t[k].last : NULL;
    struct mp_host_set *hs;
    if (mp_host_set_from_dns(d->c, answers, &hs) == 0) {
        if (d->cb != NULL)
            d->cb(d->arg, d->c, hs);
        else
            mp_host_set_free(hs);
    }
    free(answers);
    return true;
}

bool mp_cluster_dns_ready(const struct mp_cluster_dns *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (!d->t[i].answered)
            return false;
    return true;
}

int mp_cluster_dns_resolve_now(const struct mp_cluster *c, struct mp_host_set **out,
                               size_t *n_failed)
{
    size_t n = c->n_dns_targets;
    *out = NULL;
    *n_failed = 0;
    if (n == 0)
        return 0;
    struct mp_dns_answer *answers = calloc(n, sizeof(*answers));
    const struct mp_dns_answer **ptrs = calloc(n, sizeof(*ptrs));
    int rc = MP_ERR_NOMEM;
    if (!answers || !ptrs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (mp_dns_resolve(c->dns_targets[i].hostname, c->dns_targets[i].port, c->dns_family,
                           &answers[i]) == 0)
            ptrs[i] = &answers[i];
        else
            (*n_failed)++;
    }
    rc = mp_host_set_from_dns(c, ptrs, out);
    for (size_t i = 0; i < n; i++)
        mp_dns_answer_clear(&answers[i]);
out:
    free(answers);
    free(ptrs);
    return rc;
}
