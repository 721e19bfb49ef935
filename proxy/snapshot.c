/*
 * snapshot.c: immutable, refcounted configuration sets.
 */
#include "snapshot.h"

#include <stdbool.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "lb_core.h"
#include "mp_common.h"
#include "route_table.h"
#include "tls_context.h"
#include "xds_translate_listener.h"

struct mp_snapshot *mp_snapshot_new(void)
{
    struct mp_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    return s;
}

int mp_snapshot_add_listener(struct mp_snapshot *snap, struct mp_listener_config *l)
{
    if (snap->sealed || mp_snapshot_find_listener(snap, l->name)) {
        mp_listener_config_free(l);
        return MP_ERR_INVAL;
    }
    struct mp_listener_config **v = realloc(snap->listeners, (snap->n_listeners + 1) * sizeof(*v));
    if (!v) {
        mp_listener_config_free(l);
        return MP_ERR_NOMEM;
    }
    snap->listeners = v;
    v[snap->n_listeners++] = l;
    return 0;
}

int mp_snapshot_add_route_config(struct mp_snapshot *snap, const char *name,
                                 struct mp_route_config *rc)
{
    if (snap->sealed) {
        mp_route_config_free(rc);
        return MP_ERR_INVAL;
    }
    for (size_t i = 0; i < snap->n_routes; i++) {
        if (strcmp(snap->routes[i].name, name) == 0) {
            mp_route_config_free(rc);
            return MP_ERR_INVAL;
        }
    }
    struct mp_snapshot_route *v = realloc(snap->routes, (snap->n_routes + 1) * sizeof(*v));
    char *n = strdup(name);
    if (!v || !n) {
        if (v)
            snap->routes = v;
        free(n);
        mp_route_config_free(rc);
        return MP_ERR_NOMEM;
    }
    snap->routes = v;
    v[snap->n_routes].name = n;
    v[snap->n_routes].config = rc;
    snap->n_routes++;
    return 0;
}

static int push_cluster(struct mp_snapshot *snap, struct mp_cluster *c, struct mp_host_set *hs)
{
    if (snap->n_clusters == snap->cap_clusters) {
        size_t cap = snap->cap_clusters ? snap->cap_clusters * 2 : 8;
        struct mp_snapshot_cluster *v = realloc(snap->clusters, cap * sizeof(*v));
        if (!v) {
            mp_host_set_unref(hs);
            mp_cluster_unref(c);
            return MP_ERR_NOMEM;
        }
        snap->clusters = v;
        snap->cap_clusters = cap;
    }
    struct mp_snapshot_cluster *e = &snap->clusters[snap->n_clusters++];
    memset(e, 0, sizeof(*e));
    e->cluster = c;
    e->hosts = hs ? hs : c->static_hosts ? mp_host_set_ref(c->static_hosts) : NULL;
    return 0;
}

int mp_snapshot_add_cluster(struct mp_snapshot *snap, struct mp_cluster *c)
{
    bool dup = false;
    for (size_t i = 0; i < snap->n_clusters && !dup; i++)
        dup = strcmp(snap->clusters[i].cluster->name, c->name) == 0;
    if (snap->sealed || dup) {
        mp_cluster_unref(c);
        return MP_ERR_INVAL;
    }
    return push_cluster(snap, c, NULL);
}

int mp_snapshot_add_cluster_unique(struct mp_snapshot *snap, struct mp_cluster *c,
                                   struct mp_host_set *hs)
{
    if (snap->sealed) {
        mp_host_set_unref(hs);
        mp_cluster_unref(c);
        return MP_ERR_INVAL;
    }
    return push_cluster(snap, c, hs);
}

int mp_snapshot_set_hosts(struct mp_snapshot *snap, const char *cluster_name,
                          struct mp_host_set *hs)
{
    if (snap->sealed) {
        mp_host_set_unref(hs);
        return MP_ERR_INVAL;
    }
    for (size_t i = 0; i < snap->n_clusters; i++) {
        if (strcmp(snap->clusters[i].cluster->name, cluster_name) == 0) {
            mp_host_set_unref(snap->clusters[i].hosts);
            snap->clusters[i].hosts = hs;
            return 0;
        }
    }
    mp_host_set_unref(hs);
    return MP_ERR_NOTFOUND;
}

struct mp_tls_context *mp_snapshot_cluster_tls(const struct mp_snapshot_cluster *e,
                                               const struct mp_host *h, int *error)
{
    const struct mp_cluster *c = e->cluster;
    if (c->n_transport_socket_matches > 0) {
        const struct mp_transport_socket *ts = mp_cluster_transport_socket_for(c, h);
        if (ts != &c->transport_socket) {
            /* ts is the socket member of one matches entry: find which */
            size_t k;
            for (k = 0; k < c->n_transport_socket_matches; k++)
                if (&c->transport_socket_matches[k].socket == ts)
                    break;
            if (k < c->n_transport_socket_matches) {
                *error = e->match_tls_error ? e->match_tls_error[k] : MP_ERR_INVAL;
                return e->match_tls ? e->match_tls[k] : NULL;
            }
        }
    }
    *error = e->tls_error;
    return e->tls;
}

struct mp_snapshot *mp_snapshot_clone(const struct mp_snapshot *snap)
{
    struct mp_snapshot *n = mp_snapshot_new();
    if (!n)
        return NULL;
    int rc = 0;
    for (size_t i = 0; i < snap->n_listeners && rc == 0; i++)
        rc = mp_snapshot_add_listener(n, mp_listener_config_ref(snap->listeners[i]));
    for (size_t i = 0; i < snap->n_routes && rc == 0; i++)
        rc = mp_snapshot_add_route_config(n, snap->routes[i].name,
                                          mp_route_config_ref(snap->routes[i].config));
    for (size_t i = 0; i < snap->n_clusters && rc == 0; i++) {
        const struct mp_snapshot_cluster *e = &snap->clusters[i];
        rc = mp_snapshot_add_cluster_unique(n, mp_cluster_ref(e->cluster),
                                            e->hosts ? mp_host_set_ref(e->hosts) : NULL);
    }
    if (rc < 0) {
        mp_snapshot_unref(n);
        return NULL;
    }
    return n;
}

static int cmp_route(const void *a, const void *b)
{
    return strcmp(((const struct mp_snapshot_route *)a)->name,
                  ((const struct mp_snapshot_route *)b)->name);
}

static int cmp_cluster(const void *a, const void *b)
{
    return strcmp(((const struct mp_snapshot_cluster *)a)->cluster->name,
                  ((const struct mp_snapshot_cluster *)b)->cluster->name);
}

void mp_snapshot_seal(struct mp_snapshot *snap)
{
    if (snap->sealed)
        return;
    if (snap->n_routes)
        qsort(snap->routes, snap->n_routes, sizeof(snap->routes[0]), cmp_route);
    if (snap->n_clusters)
        qsort(snap->clusters, snap->n_clusters, sizeof(snap->clusters[0]), cmp_cluster);
    snap->sealed = 1;
}

struct mp_route_config *mp_snapshot_find_route_config(const struct mp_snapshot *snap,
                                                      const char *name)
{
    size_t lo = 0, hi = snap->n_routes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, snap->routes[mid].name);
        if (c == 0)
            return snap->routes[mid].config;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* strcmp of a (len bytes, not terminated) against NUL-terminated b */
static int cmp_n(const char *a, size_t len, const char *b)
{
    int c = strncmp(a, b, len);
    if (c != 0)
        return c;
    return b[len] == '\0' ? 0 : -1;
}

const struct mp_snapshot_cluster *mp_snapshot_find_cluster_entry(const struct mp_snapshot *snap,
                                                                 const char *name, size_t len)
{
    if (!snap)
        return NULL;
    size_t lo = 0, hi = snap->n_clusters;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_n(name, len, snap->clusters[mid].cluster->name);
        if (c == 0)
            return &snap->clusters[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

struct mp_cluster *mp_snapshot_find_cluster(const struct mp_snapshot *snap, const char *name)
{
    const struct mp_snapshot_cluster *e = mp_snapshot_find_cluster_entry(snap, name, strlen(name));
    return e ? e->cluster : NULL;
}

static uint16_t addr_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return 0;
}

static bool addr_any(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
    return false;
}

static bool addr_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

const struct mp_listener_config *mp_snapshot_find_listener_by_addr(
    const struct mp_snapshot *snap, const struct sockaddr_storage *dst)
{
    const struct mp_listener_config *wild = NULL;
    uint16_t port = addr_port(dst);
    for (size_t i = 0; snap && port && i < snap->n_listeners; i++) {
        const struct mp_listener_config *l = snap->listeners[i];
        if (addr_port(&l->addr) != port)
            continue;
        if (addr_same_ip(&l->addr, dst))
            return l;
        if (!wild && addr_any(&l->addr) && l->addr.ss_family == dst->ss_family)
            wild = l;
    }
    return wild;
}

struct mp_listener_config *mp_snapshot_find_listener(const struct mp_snapshot *snap,
                                                     const char *name)
{
    for (size_t i = 0; i < snap->n_listeners; i++)
        if (strcmp(snap->listeners[i]->name, name) == 0)
            return snap->listeners[i];
    return NULL;
}

struct mp_snapshot *mp_snapshot_ref(struct mp_snapshot *snap)
{
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

static _Thread_local void (*release_fn)(void *arg, struct mp_snapshot *snap);
static _Thread_local void *release_arg;

void mp_snapshot_set_release_hook(void (*fn)(void *arg, struct mp_snapshot *snap), void *arg)
{
    release_fn = fn;
    release_arg = arg;
}

void mp_snapshot_unref(struct mp_snapshot *snap)
{
    if (!snap)
        return;
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (release_fn)
        release_fn(release_arg, snap);
    else
        mp_snapshot_free(snap);
}

void mp_snapshot_free(struct mp_snapshot *snap)
{
    if (!snap)
        return;
    for (size_t i = 0; i < snap->n_listeners; i++)
        mp_listener_config_free(snap->listeners[i]);
    free(snap->listeners);
    for (size_t i = 0; i < snap->n_routes; i++) {
        free(snap->routes[i].name);
        mp_route_config_free(snap->routes[i].config);
    }
    free(snap->routes);
    for (size_t i = 0; i < snap->n_clusters; i++) {
        if (snap->clusters[i].lb)
            mp_lb_unref(snap->clusters[i].lb);
        mp_tls_context_unref(snap->clusters[i].tls);
        for (size_t k = 0; snap->clusters[i].match_tls &&
                           k < snap->clusters[i].cluster->n_transport_socket_matches;
             k++)
            mp_tls_context_unref(snap->clusters[i].match_tls[k]);
        free(snap->clusters[i].match_tls);
        free(snap->clusters[i].match_tls_error);
        mp_host_set_unref(snap->clusters[i].hosts);
        mp_cluster_unref(snap->clusters[i].cluster);
    }
    free(snap->clusters);
    free(snap);
}
