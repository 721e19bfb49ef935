/*
 * xds_store_out.c: what the store hands to other threads: snapshots, the
 * secret set for TLS context builds, the resource list for /config_dump,
 * and the SDS names to subscribe.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "mp_common.h"
#include "route_table.h"
#include "snapshot.h"
#include "tls_config.h"
#include "xds_store.h"
#include "xds_store_int.h"
#include "xds_translate_listener.h"

/* ---- snapshot ------------------------------------------------------------------- */

struct build_ctx {
    struct mp_xds_store *st;
    struct mp_snapshot *snap;
    int rc;
};

static void add_cluster_v(void *arg, const char *key, void *value)
{
    (void)key;
    struct build_ctx *b = arg;
    const struct xs_cluster *c = value;
    if (b->rc < 0)
        return;
    struct mp_host_set *hs = NULL;
    if (c->cluster->type == MP_CLUSTER_EDS) {
        const char *en = c->cluster->eds_service_name && *c->cluster->eds_service_name
                             ? c->cluster->eds_service_name
                             : c->cluster->name;
        const struct xs_simple *e = mp_xds_map_get(&b->st->endpoints, en);
        hs = e ? mp_host_set_ref(e->obj) : NULL;
    } else if (c->dns) {
        hs = mp_host_set_ref(c->dns);
    }
    b->rc = mp_snapshot_add_cluster_unique(b->snap, mp_cluster_ref(c->cluster), hs);
}

static void add_route_v(void *arg, const char *key, void *value)
{
    struct build_ctx *b = arg;
    const struct xs_simple *e = value;
    if (b->rc == 0)
        b->rc = mp_snapshot_add_route_config(b->snap, key, mp_route_config_ref(e->obj));
}

static void add_listener_v(void *arg, const char *key, void *value)
{
    (void)key;
    struct build_ctx *b = arg;
    const struct xs_listener *l = value;
    if (b->rc == 0)
        b->rc = mp_snapshot_add_listener(b->snap, mp_listener_config_ref(l->l));
}

int mp_xds_store_build(struct mp_xds_store *st, struct mp_snapshot **out)
{
    struct build_ctx b = {.st = st, .snap = mp_snapshot_new()};
    if (!b.snap)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < st->n_base_clusters && b.rc == 0; i++) {
        const struct xs_base_cluster *c = &st->base_clusters[i];
        b.rc = mp_snapshot_add_cluster_unique(b.snap, mp_cluster_ref(c->cluster),
                                              c->hosts ? mp_host_set_ref(c->hosts) : NULL);
    }
    mp_xds_map_each(&st->clusters, add_cluster_v, &b);
    mp_xds_map_each(&st->routes, add_route_v, &b);
    for (size_t i = 0; i < st->n_base_listeners && b.rc == 0; i++)
        b.rc = mp_snapshot_add_listener(b.snap, mp_listener_config_ref(st->base_listeners[i]));
    mp_xds_map_each(&st->listeners, add_listener_v, &b);
    if (b.rc < 0) {
        mp_snapshot_unref(b.snap);
        return b.rc;
    }
    mp_snapshot_seal(b.snap);
    *out = b.snap;
    return 0;
}

/* ---- SDS names ------------------------------------------------------------------------ */

struct names_ctx {
    const char *cluster; /* wanted source; NULL = ADS */
    bool sources;        /* collect source clusters instead of names */
    char **v;
    size_t n;
    struct mp_xds_map seen; /* the names in v: 10,000 EDS names stay O(n) */
    int rc;
};

static int names_add(struct names_ctx *nc, const char *s)
{
    if (mp_xds_map_get(&nc->seen, s))
        return 0;
    int rc = mp_xds_names_push(&nc->v, &nc->n, s);
    if (rc == 0)
        rc = mp_xds_map_put(&nc->seen, s, nc, NULL);
    return rc;
}

/* Hands the collected names over (or frees them when collecting failed). */
static int names_done(struct names_ctx *nc, char ***names, size_t *n)
{
    mp_xds_map_clear(&nc->seen);
    if (nc->rc < 0) {
        mp_xds_names_free(nc->v, nc->n);
        return nc->rc;
    }
    *names = nc->v;
    *n = nc->n;
    return 0;
}

static void names_from_refs(struct names_ctx *nc, const struct xs_sds_refs *refs)
{
    for (size_t i = 0; i < refs->n && nc->rc == 0; i++) {
        const struct xs_sds_ref *r = &refs->v[i];
        if (nc->sources) {
            if (r->cluster)
                nc->rc = names_add(nc, r->cluster);
        } else if ((!nc->cluster && !r->cluster) ||
                   (nc->cluster && r->cluster && strcmp(nc->cluster, r->cluster) == 0)) {
            nc->rc = names_add(nc, r->name);
        }
    }
}

static void names_cluster_v(void *arg, const char *key, void *value)
{
    (void)key;
    names_from_refs(arg, &((const struct xs_cluster *)value)->sds);
}

static void names_listener_v(void *arg, const char *key, void *value)
{
    (void)key;
    names_from_refs(arg, &((const struct xs_listener *)value)->sds);
}

static int collect_names(const struct mp_xds_store *st, struct names_ctx *nc, char ***names,
                         size_t *n)
{
    mp_xds_map_each(&st->clusters, names_cluster_v, nc);
    mp_xds_map_each(&st->clusters_warming, names_cluster_v, nc);
    mp_xds_map_each(&st->listeners, names_listener_v, nc);
    mp_xds_map_each(&st->listeners_warming, names_listener_v, nc);
    return names_done(nc, names, n);
}

int mp_xds_store_secret_names(const struct mp_xds_store *st, const char *sds_cluster,
                              char ***names, size_t *n)
{
    struct names_ctx nc = {.cluster = sds_cluster};
    return collect_names(st, &nc, names, n);
}

int mp_xds_store_secret_sources(const struct mp_xds_store *st, char ***names, size_t *n)
{
    struct names_ctx nc = {.sources = true};
    return collect_names(st, &nc, names, n);
}

static void eds_name_v(void *arg, const char *key, void *value)
{
    (void)key;
    struct names_ctx *nc = arg;
    const struct mp_cluster *c = ((const struct xs_cluster *)value)->cluster;
    if (nc->rc == 0 && c->type == MP_CLUSTER_EDS)
        nc->rc = names_add(nc, c->eds_service_name && *c->eds_service_name ? c->eds_service_name
                                                                            : c->name);
}

static void rds_name_v(void *arg, const char *key, void *value)
{
    (void)key;
    struct names_ctx *nc = arg;
    const struct xs_listener *l = value;
    for (size_t i = 0; i < l->n_rds && nc->rc == 0; i++)
        nc->rc = names_add(nc, l->rds[i]);
}

int mp_xds_store_eds_names(const struct mp_xds_store *st, char ***names, size_t *n)
{
    struct names_ctx nc = {0};
    mp_xds_map_each(&st->clusters, eds_name_v, &nc);
    mp_xds_map_each(&st->clusters_warming, eds_name_v, &nc);
    return names_done(&nc, names, n);
}

int mp_xds_store_rds_names(const struct mp_xds_store *st, char ***names, size_t *n)
{
    struct names_ctx nc = {0};
    mp_xds_map_each(&st->listeners, rds_name_v, &nc);
    mp_xds_map_each(&st->listeners_warming, rds_name_v, &nc);
    return names_done(&nc, names, n);
}

/* ---- secret set ------------------------------------------------------------------------ */

struct secrets_ctx {
    struct mp_xds_secret_set *set;
};

static void add_secret_v(void *arg, const char *key, void *value)
{
    struct mp_xds_secret_set *set = ((struct secrets_ctx *)arg)->set;
    const struct xs_simple *e = value;
    char *name = strdup(key);
    if (!name)
        return; /* out of memory: the secret is missing, its chain keeps warming */
    set->names[set->n] = name;
    set->secrets[set->n] = mp_tls_secret_ref(e->obj);
    set->n++;
}

static int cmp_secret(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct mp_xds_secret_set *mp_xds_store_secrets(struct mp_xds_store *st)
{
    struct mp_xds_secret_set *set = calloc(1, sizeof(*set));
    size_t cap = st->secrets.count ? st->secrets.count : 1;
    if (set) {
        atomic_init(&set->refs, 1);
        set->names = calloc(cap, sizeof(*set->names));
        set->secrets = calloc(cap, sizeof(*set->secrets));
    }
    if (!set || !set->names || !set->secrets) {
        mp_xds_secret_set_unref(set);
        return NULL;
    }
    struct secrets_ctx c = {set};
    mp_xds_map_each(&st->secrets, add_secret_v, &c);
    /* sort names and secrets together: sort indexes by name */
    for (size_t i = 1; i < set->n; i++)
        for (size_t j = i; j > 0 && cmp_secret(&set->names[j - 1], &set->names[j]) > 0; j--) {
            char *tn = set->names[j];
            set->names[j] = set->names[j - 1];
            set->names[j - 1] = tn;
            struct mp_tls_secret *ts = set->secrets[j];
            set->secrets[j] = set->secrets[j - 1];
            set->secrets[j - 1] = ts;
        }
    return set;
}

const struct mp_tls_secret *mp_xds_secret_set_find(const struct mp_xds_secret_set *set,
                                                   const char *name)
{
    if (!set)
        return NULL;
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, set->names[mid]);
        if (c == 0)
            return set->secrets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void mp_xds_secret_set_unref(struct mp_xds_secret_set *set)
{
    if (!set || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->names[i]);
        mp_tls_secret_unref(set->secrets[i]);
    }
    free(set->names);
    free(set->secrets);
    free(set);
}

/* ---- dump --------------------------------------------------------------------------------- */

struct dump_ctx {
    struct mp_xds_dump *d;
    size_t cap;
    bool warming;
};

static void dump_blob(struct dump_ctx *c, struct mp_xds_blob *b)
{
    if (c->d->n < c->cap) {
        c->d->warming[c->d->n] = c->warming;
        c->d->blobs[c->d->n++] = mp_xds_blob_ref(b);
    }
}

static void dump_cluster_v(void *arg, const char *key, void *value)
{
    (void)key;
    dump_blob(arg, ((struct xs_cluster *)value)->blob);
}

static void dump_listener_v(void *arg, const char *key, void *value)
{
    (void)key;
    dump_blob(arg, ((struct xs_listener *)value)->blob);
}

static void dump_simple_v(void *arg, const char *key, void *value)
{
    (void)key;
    dump_blob(arg, ((struct xs_simple *)value)->blob);
}

struct mp_xds_dump *mp_xds_store_dump(struct mp_xds_store *st)
{
    struct mp_xds_dump *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    atomic_init(&d->refs, 1);
    struct dump_ctx c = {.d = d,
                         .cap = st->clusters.count + st->clusters_warming.count +
                                st->endpoints.count + st->listeners.count +
                                st->listeners_warming.count + st->routes.count + 1};
    d->blobs = calloc(c.cap, sizeof(*d->blobs));
    d->warming = calloc(c.cap, sizeof(*d->warming));
    if (!d->blobs || !d->warming) {
        mp_xds_dump_unref(d);
        return NULL;
    }
    for (int i = 0; i < 5; i++)
        if (st->versions[i] && !(d->versions[i] = strdup(st->versions[i]))) {
            mp_xds_dump_unref(d);
            return NULL;
        }
    /* secrets are never dumped: they carry private keys */
    mp_xds_map_each(&st->clusters, dump_cluster_v, &c);
    c.warming = true;
    mp_xds_map_each(&st->clusters_warming, dump_cluster_v, &c);
    c.warming = false;
    mp_xds_map_each(&st->endpoints, dump_simple_v, &c);
    mp_xds_map_each(&st->listeners, dump_listener_v, &c);
    c.warming = true;
    mp_xds_map_each(&st->listeners_warming, dump_listener_v, &c);
    c.warming = false;
    mp_xds_map_each(&st->routes, dump_simple_v, &c);
    return d;
}

void mp_xds_dump_unref(struct mp_xds_dump *d)
{
    if (!d || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < d->n; i++)
        mp_xds_blob_unref(d->blobs[i]);
    for (int i = 0; i < 5; i++)
        free(d->versions[i]);
    free(d->blobs);
    free(d->warming);
    free(d);
}

void mp_xds_store_counts(const struct mp_xds_store *st, struct mp_xds_store_counts *out)
{
    out->clusters = st->clusters.count + st->n_base_clusters;
    out->clusters_warming = st->clusters_warming.count;
    out->endpoints = st->endpoints.count;
    out->listeners = st->listeners.count + st->n_base_listeners;
    out->listeners_warming = st->listeners_warming.count;
    out->routes = st->routes.count;
    out->secrets = st->secrets.count;
}
