/*
 * xds_store.c: applying xDS updates to the store: translation (validation),
 * all-or-nothing commit, removal and make-before-break warming.
 */
#include "xds_store.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_dns.h"
#include "http_stream.h" /* mp_wall_us */
#include "log.h"
#include "mp_common.h"
#include "route_table.h"
#include "snapshot.h"
#include "tls_config.h"
#include "xds_store_int.h"
#include "xds_translate_cluster.h"
#include "xds_translate_listener.h"
#include "xds_translate_route.h"
#include "xds_translate_tls.h"

int mp_xds_store_type_index(const char *t)
{
    static const char *const types[5] = {MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_ENDPOINT,
                                         MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE,
                                         MP_XDS_TYPE_SECRET};
    for (int i = 0; i < 5; i++)
        if (strcmp(t, types[i]) == 0)
            return i;
    return -1;
}

/* ---- blobs ---------------------------------------------------------------------- */

struct mp_xds_blob *mp_xds_blob_ref(struct mp_xds_blob *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void mp_xds_blob_unref(struct mp_xds_blob *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(b->name);
    free(b->version);
    free(b->data);
    free(b);
}

static struct mp_xds_blob *blob_new(const struct mp_xds_update *up, const struct mp_xds_resource *r)
{
    struct mp_xds_blob *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    static const char *const types[5] = {MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_ENDPOINT,
                                         MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE,
                                         MP_XDS_TYPE_SECRET};
    b->type_url = types[mp_xds_store_type_index(up->type_url)];
    b->name = strdup(r->name);
    b->version = strdup(r->version ? r->version : "");
    b->data = malloc(r->len ? r->len : 1);
    b->len = r->len;
    b->last_updated_wall_us = mp_wall_us();
    if (!b->name || !b->version || !b->data) {
        mp_xds_blob_unref(b);
        return NULL;
    }
    memcpy(b->data, r->data, r->len);
    return b;
}

static bool blob_same(const struct mp_xds_blob *b, const struct mp_xds_resource *r)
{
    return b && b->len == r->len && memcmp(b->data, r->data, r->len) == 0;
}

/* ---- entries -------------------------------------------------------------------- */

static void sds_refs_clear(struct xs_sds_refs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].cluster);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int sds_refs_add(struct xs_sds_refs *s, const struct mp_tls_sds_ref *r)
{
    if (!r || !r->name || r->is_static)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, r->name) == 0 &&
            ((!s->v[i].cluster && !r->cluster) ||
             (s->v[i].cluster && r->cluster && strcmp(s->v[i].cluster, r->cluster) == 0)))
            return 0;
    struct xs_sds_ref *v = realloc(s->v, (s->n + 1) * sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    s->v = v;
    v[s->n].name = strdup(r->name);
    v[s->n].cluster = !r->ads && r->cluster ? strdup(r->cluster) : NULL;
    /* a lost source name would silently turn into "over ADS" */
    if (!v[s->n].name || (!r->ads && r->cluster && !v[s->n].cluster)) {
        free(v[s->n].name);
        free(v[s->n].cluster);
        return MP_ERR_NOMEM;
    }
    s->n++;
    return 0;
}

static int sds_refs_from_tls(struct xs_sds_refs *s, const struct mp_tls_config *tc)
{
    int rc = 0;
    for (size_t i = 0; tc && i < tc->n_cert_sds && rc == 0; i++)
        rc = sds_refs_add(s, &tc->cert_sds[i]);
    if (tc && rc == 0)
        rc = sds_refs_add(s, tc->validation_sds);
    if (tc && rc == 0)
        rc = sds_refs_add(s, tc->ticket_keys_sds);
    return rc;
}

static bool sds_refs_has(const struct xs_sds_refs *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return true;
    return false;
}

static void xs_cluster_free(struct xs_cluster *c)
{
    if (!c)
        return;
    mp_xds_blob_unref(c->blob);
    mp_cluster_unref(c->cluster);
    mp_host_set_unref(c->dns);
    sds_refs_clear(&c->sds);
    free(c);
}

static void xs_listener_free(struct xs_listener *l)
{
    if (!l)
        return;
    mp_xds_blob_unref(l->blob);
    mp_listener_config_free(l->l);
    for (size_t i = 0; i < l->n_rds; i++)
        free(l->rds[i]);
    free(l->rds);
    sds_refs_clear(&l->sds);
    free(l);
}

static void obj_free(int type, void *obj)
{
    if (!obj)
        return;
    if (type == XS_EDS)
        mp_host_set_unref(obj);
    else if (type == XS_RDS)
        mp_route_config_unref(obj);
    else
        mp_tls_secret_unref(obj);
}

static void xs_simple_free(int type, struct xs_simple *e)
{
    if (!e)
        return;
    mp_xds_blob_unref(e->blob);
    obj_free(type, e->obj);
    free(e);
}

/* ---- translation (validation) ------------------------------------------------ */

static const char *type_name(int t)
{
    static const char *const n[5] = {"Cluster", "ClusterLoadAssignment", "Listener",
                                     "RouteConfiguration", "Secret"};
    return n[t];
}

static bool is_base_cluster(const struct mp_xds_store *st, const char *name)
{
    for (size_t i = 0; i < st->n_base_clusters; i++)
        if (strcmp(st->base_clusters[i].cluster->name, name) == 0)
            return true;
    return false;
}

/* A dynamic listener may not take a static one's name: the two could not
 * share a snapshot (mp_snapshot_add_listener refuses the second), so every
 * later build would fail. Envoy refuses it too. */
static bool is_base_listener(const struct mp_xds_store *st, const char *name)
{
    for (size_t i = 0; i < st->n_base_listeners; i++)
        if (st->base_listeners[i]->name && strcmp(st->base_listeners[i]->name, name) == 0)
            return true;
    return false;
}

static int translate_cluster(struct mp_xds_store *st, const struct mp_xds_resource *r,
                             struct xs_cluster **out, char **err)
{
    if (is_base_cluster(st, r->name))
        return mp_set_err(err, "cluster name is a static cluster of the bootstrap");
    struct xs_cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    int rc = mp_cluster_from_proto((const Envoy__Config__Cluster__V3__Cluster *)r->msg,
                                   &c->cluster, err);
    if (rc < 0)
        goto fail;
    c->cluster->added_via_api = true;
    if (strcmp(c->cluster->name, r->name) != 0) {
        rc = mp_set_err(err, "name: \"%s\" differs from the resource name", c->cluster->name);
        goto fail;
    }
    /* the secrets of transport_socket and of every transport_socket_matches
     * entry (Istio's tlsMode-istio mTLS is one) */
    for (size_t i = 0; i <= c->cluster->n_transport_socket_matches; i++) {
        const struct mp_transport_socket *ts =
            i == 0 ? &c->cluster->transport_socket
                   : &c->cluster->transport_socket_matches[i - 1].socket;
        if (!ts->name || !ts->typed_config.type_url ||
            strcmp(ts->name, "envoy.transport_sockets.raw_buffer") == 0)
            continue;
        struct mp_tls_config *tc = NULL;
        rc = mp_xds_translate_tls_any(ts->typed_config.type_url, ts->typed_config.data,
                                      ts->typed_config.len, MP_TLS_CLIENT, &tc, err);
        if (rc < 0) {
            if (i == 0)
                mp_err_prefix(err, "transport_socket.typed_config");
            else
                mp_err_prefix(err, "transport_socket_matches[%zu].transport_socket.typed_config",
                              i - 1);
            goto fail;
        }
        rc = sds_refs_from_tls(&c->sds, tc);
        mp_tls_config_unref(tc);
        if (rc < 0)
            goto fail;
    }
    if (c->cluster->type == MP_CLUSTER_STRICT_DNS || c->cluster->type == MP_CLUSTER_LOGICAL_DNS) {
        /* resolved here, on the grpc thread; refreshes are not wired yet */
        size_t failed = 0;
        rc = mp_cluster_dns_resolve_now(c->cluster, &c->dns, &failed);
        if (rc < 0)
            goto fail;
        if (failed)
            MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "cluster %s: %zu of %zu DNS names did not resolve",
                   r->name, failed, c->cluster->n_dns_targets);
    }
    *out = c;
    return 0;
fail:
    xs_cluster_free(c);
    return rc;
}

static int add_name(char ***v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], name) == 0)
            return 0;
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return MP_ERR_NOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(name)))
        return MP_ERR_NOMEM;
    (*n)++;
    return 0;
}

int mp_xds_names_push(char ***v, size_t *n, const char *name)
{
    if (*n == 0 || (*n >= 8 && (*n & (*n - 1)) == 0)) {
        char **nv = realloc(*v, (*n ? *n * 2 : 8) * sizeof(*nv));
        if (!nv)
            return MP_ERR_NOMEM;
        *v = nv;
    }
    if (!((*v)[*n] = strdup(name)))
        return MP_ERR_NOMEM;
    (*n)++;
    return 0;
}

/* RDS names and SDS references of a translated listener. */
static int listener_deps(struct xs_listener *x)
{
    const struct mp_listener_config *l = x->l;
    int rc = 0;
    for (size_t j = 0; j <= l->n_chains && rc == 0; j++) {
        const struct mp_filter_chain *c = j < l->n_chains ? &l->chains[j] : l->default_chain;
        if (!c)
            continue;
        if (c->hcm && c->hcm->rds_name)
            rc = add_name(&x->rds, &x->n_rds, c->hcm->rds_name);
        if (rc == 0)
            rc = sds_refs_from_tls(&x->sds, c->tls_config);
    }
    return rc;
}

static int translate_listener_blob(const struct mp_xds_blob *b, struct mp_listener_config **out,
                                   char **err)
{
    const ProtobufCMessageDescriptor *d = &envoy__config__listener__v3__listener__descriptor;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, b->len, b->data);
    if (!m)
        return mp_set_err(err, "does not decode");
    int rc = mp_xds_translate_listener((const Envoy__Config__Listener__V3__Listener *)m, out, err);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static int translate_listener(struct mp_xds_store *st, const struct mp_xds_resource *r,
                              struct xs_listener **out, char **err)
{
    if (is_base_listener(st, r->name))
        return mp_set_err(err, "listener name is a static listener of the bootstrap");
    struct xs_listener *x = calloc(1, sizeof(*x));
    if (!x)
        return MP_ERR_NOMEM;
    int rc = mp_xds_translate_listener((const Envoy__Config__Listener__V3__Listener *)r->msg,
                                       &x->l, err);
    if (rc == 0 && strcmp(x->l->name, r->name) != 0)
        rc = mp_set_err(err, "name: \"%s\" differs from the resource name", x->l->name);
    if (rc == 0)
        rc = listener_deps(x);
    if (rc < 0) {
        xs_listener_free(x);
        return rc;
    }
    x->l->config_id = ++st->last_listener_id;
    *out = x;
    return 0;
}

static int translate_simple(int type, const struct mp_xds_resource *r, void **obj, char **err)
{
    switch (type) {
    case XS_EDS: {
        const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
            (const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *)r->msg;
        if (cla->cluster_name && *cla->cluster_name && strcmp(cla->cluster_name, r->name) != 0)
            return mp_set_err(err, "cluster_name: \"%s\" differs from the resource name",
                              cla->cluster_name);
        return mp_host_set_from_cla(cla, (struct mp_host_set **)obj, err);
    }
    case XS_RDS:
        return mp_route_config_from_proto(
            (const Envoy__Config__Route__V3__RouteConfiguration *)r->msg,
            (struct mp_route_config **)obj, err);
    default:
        return mp_xds_translate_secret(
            (const Envoy__Extensions__TransportSockets__Tls__V3__Secret *)r->msg,
            (struct mp_tls_secret **)obj, err);
    }
}

/* ---- warming --------------------------------------------------------------------- */

static const char *eds_name(const struct mp_cluster *c)
{
    return c->eds_service_name && *c->eds_service_name ? c->eds_service_name : c->name;
}

/* Every SDS secret the resource names has arrived (Envoy's listeners and
 * clusters wait for their secrets as for their RDS/EDS: a TLS context cannot
 * be built without them). */
static bool secrets_warm(const struct mp_xds_store *st, const struct xs_sds_refs *s,
                         unsigned waived)
{
    if (waived & (1u << XS_SDS))
        return true;
    for (size_t i = 0; i < s->n; i++)
        if (!mp_xds_map_get(&st->secrets, s->v[i].name))
            return false;
    return true;
}

static bool cluster_warm(const struct mp_xds_store *st, const struct xs_cluster *c)
{
    if (!secrets_warm(st, &c->sds, c->waived))
        return false;
    return c->cluster->type != MP_CLUSTER_EDS || (c->waived & (1u << XS_EDS)) ||
           mp_xds_map_get(&st->endpoints, eds_name(c->cluster)) != NULL;
}

static bool listener_warm(const struct mp_xds_store *st, const struct xs_listener *l)
{
    if (!secrets_warm(st, &l->sds, l->waived))
        return false;
    if (l->waived & (1u << XS_RDS))
        return true;
    for (size_t i = 0; i < l->n_rds; i++)
        if (!mp_xds_map_get(&st->routes, l->rds[i]))
            return false;
    return true;
}

/* Puts an accepted cluster where it belongs: active when warm, else warming
 * (the active version, if any, keeps serving until then). */
static int place_cluster(struct mp_xds_store *st, struct xs_cluster *c)
{
    void *old = NULL;
    const char *name = c->blob->name;
    if (cluster_warm(st, c)) {
        if (mp_xds_map_put(&st->clusters, name, c, &old) < 0)
            return MP_ERR_NOMEM;
        xs_cluster_free(old);
        xs_cluster_free(mp_xds_map_del(&st->clusters_warming, name));
    } else {
        if (mp_xds_map_put(&st->clusters_warming, name, c, &old) < 0)
            return MP_ERR_NOMEM;
        xs_cluster_free(old);
    }
    return 0;
}

static int place_listener(struct mp_xds_store *st, struct xs_listener *l)
{
    void *old = NULL;
    const char *name = l->blob->name;
    if (listener_warm(st, l)) {
        if (mp_xds_map_put(&st->listeners, name, l, &old) < 0)
            return MP_ERR_NOMEM;
        xs_listener_free(old);
        xs_listener_free(mp_xds_map_del(&st->listeners_warming, name));
    } else {
        if (mp_xds_map_put(&st->listeners_warming, name, l, &old) < 0)
            return MP_ERR_NOMEM;
        xs_listener_free(old);
    }
    return 0;
}

struct promote_ctx {
    struct mp_xds_store *st;
    char **ready;
    size_t n_ready;
    int rc;
};

static void collect_warm_cluster(void *arg, const char *key, void *value)
{
    struct promote_ctx *p = arg;
    if (p->rc == 0 && cluster_warm(p->st, value))
        p->rc = mp_xds_names_push(&p->ready, &p->n_ready, key);
}

static void collect_warm_listener(void *arg, const char *key, void *value)
{
    struct promote_ctx *p = arg;
    if (p->rc == 0 && listener_warm(p->st, value))
        p->rc = mp_xds_names_push(&p->ready, &p->n_ready, key);
}

/* Moves warming clusters (or listeners) whose dependencies have arrived to
 * active. Returns the number moved, or MP_ERR_NOMEM. */
static int promote(struct mp_xds_store *st, bool listeners)
{
    struct mp_xds_map *warming = listeners ? &st->listeners_warming : &st->clusters_warming;
    if (warming->count == 0)
        return 0;
    struct promote_ctx p = {.st = st};
    mp_xds_map_each(warming, listeners ? collect_warm_listener : collect_warm_cluster, &p);
    int moved = 0;
    for (size_t i = 0; i < p.n_ready; i++) {
        void *e = mp_xds_map_del(warming, p.ready[i]);
        if (e && p.rc == 0) {
            int rc = listeners ? place_listener(st, e) : place_cluster(st, e);
            if (rc < 0)
                p.rc = rc;
            else
                moved++;
            if (rc < 0)
                listeners ? xs_listener_free(e) : xs_cluster_free(e);
        } else if (e) {
            /* out of memory earlier: put it back untouched */
            void *old = NULL;
            if (mp_xds_map_put(warming, p.ready[i], e, &old) < 0)
                listeners ? xs_listener_free(e) : xs_cluster_free(e);
        }
        free(p.ready[i]);
    }
    free(p.ready);
    return p.rc < 0 ? p.rc : moved;
}

static void check_initialized(struct mp_xds_store *st)
{
    if (st->initialized)
        return;
    /* a fetch timeout has promoted what waited for that type already; what
     * still warms waits for something else (a secret, say) */
    bool cds = !st->cfg.want_cds || (st->received[XS_CDS] && st->clusters_warming.count == 0);
    bool lds = !st->cfg.want_lds || (st->received[XS_LDS] && st->listeners_warming.count == 0);
    st->initialized = cds && lds;
}

bool mp_xds_store_initialized(const struct mp_xds_store *st)
{
    return st->initialized;
}

static void waive_cluster(void *arg, const char *key, void *value)
{
    (void)key;
    ((struct xs_cluster *)value)->waived |= *(unsigned *)arg;
}

static void waive_listener(void *arg, const char *key, void *value)
{
    (void)key;
    ((struct xs_listener *)value)->waived |= *(unsigned *)arg;
}

int mp_xds_store_fetch_timeout(struct mp_xds_store *st, const char *type_url)
{
    int t = mp_xds_store_type_index(type_url);
    if (t < 0 || st->received[t])
        return 0;
    bool before = st->initialized;
    st->received[t] = true;
    /* What warms now stops waiting for this type (also once what else it
     * waits for arrives); what comes later warms as usual. A store-wide flag
     * would let every later EDS cluster (RDS listener, SDS user) skip
     * warming for good, and a new version of an active cluster replace it
     * before its endpoints are in, just because one first fetch was slow. */
    unsigned bit = 1u << t;
    if (t == XS_EDS || t == XS_SDS)
        mp_xds_map_each(&st->clusters_warming, waive_cluster, &bit);
    if (t == XS_RDS || t == XS_SDS)
        mp_xds_map_each(&st->listeners_warming, waive_listener, &bit);
    MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "initial fetch of %s timed out: not waiting for it",
           type_name(t));
    /* warming that waited for this type goes ahead; what moved to active
     * must be published even when initialisation is not complete yet (an
     * SDS timeout after it, say) */
    int moved = 0;
    if (t == XS_EDS || t == XS_SDS)
        moved += promote(st, false) > 0;
    if (t == XS_RDS || t == XS_SDS)
        moved += promote(st, true) > 0;
    check_initialized(st);
    return (!before && st->initialized) || moved ? 1 : 0;
}

/* ---- removal --------------------------------------------------------------------- */

struct absent_ctx {
    const struct mp_xds_map *present; /* names in the update */
    char **names;
    size_t n;
    int rc;
};

static void collect_absent(void *arg, const char *key, void *value)
{
    (void)value;
    struct absent_ctx *a = arg;
    /* a name both active and warming is listed twice: the second removal
     * finds nothing */
    if (a->rc == 0 && !mp_xds_map_get(a->present, key))
        a->rc = mp_xds_names_push(&a->names, &a->n, key);
}

static bool remove_name(struct mp_xds_store *st, int t, const char *name)
{
    switch (t) {
    case XS_CDS: {
        struct xs_cluster *a = mp_xds_map_del(&st->clusters, name);
        struct xs_cluster *w = mp_xds_map_del(&st->clusters_warming, name);
        xs_cluster_free(a);
        xs_cluster_free(w);
        return a || w;
    }
    case XS_LDS: {
        struct xs_listener *a = mp_xds_map_del(&st->listeners, name);
        struct xs_listener *w = mp_xds_map_del(&st->listeners_warming, name);
        xs_listener_free(a);
        xs_listener_free(w);
        return a || w;
    }
    default: {
        struct mp_xds_map *m = t == XS_EDS ? &st->endpoints
                               : t == XS_RDS ? &st->routes
                                             : &st->secrets;
        struct xs_simple *e = mp_xds_map_del(m, name);
        xs_simple_free(t, e);
        return e != NULL;
    }
    }
}

/* ---- SDS: listeners whose secrets changed are translated again ------------------- */

struct retranslate_ctx {
    char **changed;
    size_t n_changed;
    char **names; /* listeners to redo */
    size_t n;
    int rc;
};

static void collect_secret_users(void *arg, const char *key, void *value)
{
    struct retranslate_ctx *r = arg;
    const struct xs_listener *l = value;
    for (size_t i = 0; i < r->n_changed && r->rc == 0; i++)
        if (sds_refs_has(&l->sds, r->changed[i])) {
            r->rc = mp_xds_names_push(&r->names, &r->n, key);
            return;
        }
}

/* A listener object is shared by the snapshots in force, which built its TLS
 * contexts once; a fresh translation makes the next publication build them
 * with the new secret. */
static int retranslate_listeners(struct mp_xds_store *st, char **changed, size_t n_changed)
{
    struct retranslate_ctx r = {.changed = changed, .n_changed = n_changed};
    mp_xds_map_each(&st->listeners, collect_secret_users, &r);
    for (size_t i = 0; i < r.n; i++) {
        struct xs_listener *x = mp_xds_map_get(&st->listeners, r.names[i]);
        struct mp_listener_config *nl = NULL;
        char *err = NULL;
        if (r.rc == 0 && x && translate_listener_blob(x->blob, &nl, &err) == 0) {
            nl->config_id = x->l->config_id; /* same resource: no drain */
            mp_listener_config_free(x->l);
            x->l = nl;
        } else if (err) {
            MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "listener %s: %s", r.names[i], err);
        }
        free(err);
        free(r.names[i]);
    }
    free(r.names);
    return r.rc;
}

/* ---- apply --------------------------------------------------------------------- */

struct pending {
    const struct mp_xds_resource *r;
    struct mp_xds_blob *blob;
    void *obj; /* xs_cluster / xs_listener / translated object */
};

static void pending_free(int t, struct pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t == XS_CDS)
            xs_cluster_free(p[i].obj);
        else if (t == XS_LDS)
            xs_listener_free(p[i].obj);
        else
            obj_free(t, p[i].obj);
        mp_xds_blob_unref(p[i].blob);
    }
    free(p);
}

/* The entry a resource of type t named name has now, active or warming. */
static const struct mp_xds_blob *current_blob(const struct mp_xds_store *st, int t,
                                              const char *name)
{
    const struct xs_cluster *c;
    const struct xs_listener *l;
    const struct xs_simple *e;
    switch (t) {
    case XS_CDS:
        c = mp_xds_map_get(&st->clusters_warming, name);
        if (!c)
            c = mp_xds_map_get(&st->clusters, name);
        return c ? c->blob : NULL;
    case XS_LDS:
        l = mp_xds_map_get(&st->listeners_warming, name);
        if (!l)
            l = mp_xds_map_get(&st->listeners, name);
        return l ? l->blob : NULL;
    default:
        e = mp_xds_map_get(t == XS_EDS ? &st->endpoints : t == XS_RDS ? &st->routes : &st->secrets,
                           name);
        return e ? e->blob : NULL;
    }
}

/* Translates every changed resource of the update; nothing is committed.
 * present gets the names of all the update's resources (the caller clears
 * it, also on failure). */
static int translate_all(struct mp_xds_store *st, int t, const struct mp_xds_update *up,
                         struct mp_xds_map *present, struct pending **out, size_t *n_out,
                         char **err)
{
    struct pending *p = calloc(up->n_resources ? up->n_resources : 1, sizeof(*p));
    if (!p)
        return MP_ERR_NOMEM;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < up->n_resources; i++) {
        const struct mp_xds_resource *r = &up->resources[i];
        void *twice = NULL;
        if (mp_xds_map_put(present, r->name, (void *)r, &twice) < 0) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        if (twice) {
            rc = mp_set_err(err, "%s \"%s\": listed twice in one response", type_name(t), r->name);
            goto fail;
        }
        /* SotW resends everything: an unchanged resource keeps its translation */
        if (blob_same(current_blob(st, t, r->name), r))
            continue;
        if (!r->msg) {
            rc = mp_set_err(err, "%s \"%s\": does not decode", type_name(t), r->name);
            goto fail;
        }
        struct pending *pe = &p[n++];
        pe->r = r;
        pe->blob = blob_new(up, r);
        if (!pe->blob) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        if (t == XS_CDS) {
            struct xs_cluster *c = NULL;
            rc = translate_cluster(st, r, &c, err);
            if (c)
                c->blob = mp_xds_blob_ref(pe->blob);
            pe->obj = c;
        } else if (t == XS_LDS) {
            struct xs_listener *l = NULL;
            rc = translate_listener(st, r, &l, err);
            if (l)
                l->blob = mp_xds_blob_ref(pe->blob);
            pe->obj = l;
        } else {
            rc = translate_simple(t, r, &pe->obj, err);
        }
        if (rc < 0) {
            char *inner = *err;
            *err = NULL;
            mp_set_err(err, "%s \"%s\": %s", type_name(t), r->name,
                       inner ? inner : mp_strerror(rc));
            free(inner);
            goto fail;
        }
    }
    *out = p;
    *n_out = n;
    return 0;
fail:
    pending_free(t, p, n);
    return rc < 0 ? rc : MP_ERR_INVAL;
}

static int set_version(struct mp_xds_store *st, int t, const char *v)
{
    char *nv = strdup(v ? v : "");
    if (!nv)
        return MP_ERR_NOMEM;
    free(st->versions[t]);
    st->versions[t] = nv;
    return 0;
}

int mp_xds_store_apply(struct mp_xds_store *st, const struct mp_xds_update *up, char **err)
{
    int t = mp_xds_store_type_index(up->type_url);
    if (t < 0)
        return mp_set_err(err, "type %s is not supported", up->type_url);
    int changed = 0;
    if (up->kind == MP_XDS_UPDATE_UNSUBSCRIBED) {
        for (size_t i = 0; i < up->n_removed; i++)
            changed |= remove_name(st, t, up->removed[i]);
        return changed;
    }
    struct pending *p = NULL;
    size_t n = 0;
    struct mp_xds_map present = {0};
    int rc = translate_all(st, t, up, &present, &p, &n, err);
    if (rc < 0) {
        mp_xds_map_clear(&present);
        return rc;
    }
    /* commit: removals first, then the new versions */
    struct absent_ctx absent = {.present = &present};
    if (up->complete && (t == XS_CDS || t == XS_LDS)) {
        mp_xds_map_each(t == XS_CDS ? &st->clusters : &st->listeners, collect_absent, &absent);
        mp_xds_map_each(t == XS_CDS ? &st->clusters_warming : &st->listeners_warming,
                        collect_absent, &absent);
    }
    if (absent.rc < 0) {
        rc = absent.rc;
        goto out;
    }
    for (size_t i = 0; i < absent.n; i++)
        changed |= remove_name(st, t, absent.names[i]);
    for (size_t i = 0; i < up->n_removed; i++)
        changed |= remove_name(st, t, up->removed[i]);
    char **changed_secrets = NULL;
    size_t n_changed_secrets = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        void *obj = p[i].obj;
        p[i].obj = NULL;
        if (t == XS_CDS) {
            rc = place_cluster(st, obj);
            if (rc < 0)
                xs_cluster_free(obj);
        } else if (t == XS_LDS) {
            rc = place_listener(st, obj);
            if (rc < 0)
                xs_listener_free(obj);
        } else {
            struct xs_simple *e = malloc(sizeof(*e));
            void *old = NULL;
            struct mp_xds_map *m = t == XS_EDS   ? &st->endpoints
                                   : t == XS_RDS ? &st->routes
                                                 : &st->secrets;
            if (e) {
                e->blob = mp_xds_blob_ref(p[i].blob);
                e->obj = obj;
            }
            if (!e || mp_xds_map_put(m, p[i].r->name, e, &old) < 0) {
                if (e)
                    xs_simple_free(t, e);
                else
                    obj_free(t, obj);
                rc = MP_ERR_NOMEM;
                break;
            }
            /* new or changed: an active listener may use it (its TLS
             * context was built without it after an SDS fetch timeout) */
            if (t == XS_SDS)
                rc = add_name(&changed_secrets, &n_changed_secrets, p[i].r->name);
            xs_simple_free(t, old);
        }
        changed = 1;
    }
    /* active listeners first: those promoted below are fresh already */
    if (rc == 0 && n_changed_secrets)
        rc = retranslate_listeners(st, changed_secrets, n_changed_secrets);
    if (rc == 0 && (t == XS_EDS || t == XS_SDS))
        rc = promote(st, false) < 0 ? MP_ERR_NOMEM : 0;
    if (rc == 0 && (t == XS_RDS || t == XS_SDS))
        rc = promote(st, true) < 0 ? MP_ERR_NOMEM : 0;
    for (size_t i = 0; i < n_changed_secrets; i++)
        free(changed_secrets[i]);
    free(changed_secrets);
    if (rc == 0)
        rc = set_version(st, t, up->version_info);
    if (rc == 0) {
        st->received[t] = true;
        check_initialized(st);
    }
out:
    for (size_t i = 0; i < absent.n; i++)
        free(absent.names[i]);
    free(absent.names);
    mp_xds_map_clear(&present);
    pending_free(t, p, n);
    if (rc < 0) {
        mp_set_err(err, "%s update: out of memory", type_name(t));
        return MP_ERR_NOMEM;
    }
    return changed ? 1 : 0;
}

/* ---- life cycle ------------------------------------------------------------------- */

int mp_xds_store_new(const struct mp_xds_store_config *cfg, struct mp_xds_store **out)
{
    struct mp_xds_store *st = calloc(1, sizeof(*st));
    if (!st)
        return MP_ERR_NOMEM;
    st->cfg = *cfg;
    st->cfg.base = NULL;
    const struct mp_snapshot *b = cfg->base;
    if (b && b->n_clusters) {
        st->base_clusters = calloc(b->n_clusters, sizeof(*st->base_clusters));
        if (!st->base_clusters)
            goto nomem;
        for (size_t i = 0; i < b->n_clusters; i++) {
            st->base_clusters[i].cluster = mp_cluster_ref(b->clusters[i].cluster);
            st->base_clusters[i].hosts =
                b->clusters[i].hosts ? mp_host_set_ref(b->clusters[i].hosts) : NULL;
            st->n_base_clusters = i + 1;
        }
    }
    if (b && b->n_listeners) {
        st->base_listeners = calloc(b->n_listeners, sizeof(*st->base_listeners));
        if (!st->base_listeners)
            goto nomem;
        for (size_t i = 0; i < b->n_listeners; i++)
            st->base_listeners[st->n_base_listeners++] = mp_listener_config_ref(b->listeners[i]);
    }
    *out = st;
    return 0;
nomem:
    mp_xds_store_free(st);
    return MP_ERR_NOMEM;
}

static void free_cluster_v(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    xs_cluster_free(value);
}

static void free_listener_v(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    xs_listener_free(value);
}

static void free_simple_v(void *arg, const char *key, void *value)
{
    (void)key;
    xs_simple_free(*(int *)arg, value);
}

void mp_xds_store_free(struct mp_xds_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_base_clusters; i++) {
        mp_cluster_unref(st->base_clusters[i].cluster);
        mp_host_set_unref(st->base_clusters[i].hosts);
    }
    free(st->base_clusters);
    for (size_t i = 0; i < st->n_base_listeners; i++)
        mp_listener_config_free(st->base_listeners[i]);
    free(st->base_listeners);
    mp_xds_map_each(&st->clusters, free_cluster_v, NULL);
    mp_xds_map_each(&st->clusters_warming, free_cluster_v, NULL);
    mp_xds_map_each(&st->listeners, free_listener_v, NULL);
    mp_xds_map_each(&st->listeners_warming, free_listener_v, NULL);
    int t = XS_EDS;
    mp_xds_map_each(&st->endpoints, free_simple_v, &t);
    t = XS_RDS;
    mp_xds_map_each(&st->routes, free_simple_v, &t);
    t = XS_SDS;
    mp_xds_map_each(&st->secrets, free_simple_v, &t);
    struct mp_xds_map *maps[] = {&st->clusters,  &st->clusters_warming,  &st->endpoints,
                                 &st->listeners, &st->listeners_warming, &st->routes,
                                 &st->secrets};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        mp_xds_map_clear(maps[i]);
    for (int i = 0; i < 5; i++)
        free(st->versions[i]);
    free(st);
}
