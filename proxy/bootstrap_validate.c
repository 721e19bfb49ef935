/*
 * bootstrap_validate.c: the cheap, certain checks of `--mode validate`.
 *
 * Only what is wrong whatever the control plane later sends: names, missing
 * addresses, xDS sources pointing at clusters that do not exist. Deep checks
 * of routes and clusters belong to the xds_translate_* modules.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "mp_common.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;
typedef Envoy__Config__Core__V3__ApiConfigSource ApiConfigSource;
typedef Envoy__Config__Core__V3__ConfigSource ConfigSource;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;

#define HCM_TYPE       "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TCP_PROXY_TYPE "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define ROUTER_TYPE    "envoy.extensions.filters.http.router.v3.Router"

struct names {
    const char **v; /* sorted */
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool names_has(const struct names *s, const char *name)
{
    return s->n > 0 && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static bool type_is(const Google__Protobuf__Any *any, const char *full_name)
{
    if (any == NULL || any->type_url == NULL)
        return false;
    const char *slash = strrchr(any->type_url, '/');
    return strcmp(slash != NULL ? slash + 1 : any->type_url, full_name) == 0;
}

static int check_clusters(const Bootstrap *b, struct names *set, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    size_t n = sr != NULL ? sr->n_clusters : 0;
    set->v = n > 0 ? calloc(n, sizeof(*set->v)) : NULL;
    if (n > 0 && set->v == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = sr->clusters[i]->name;
        if (name == NULL || name[0] == '\0')
            return mp_set_err(err, "static_resources.clusters[%zu].name: cluster has no name", i);
        /* Linear back-scan names the first occurrence; fine for bootstrap
         * sizes, and the sorted set below serves the many lookups. */
        for (size_t k = 0; k < i; k++)
            if (strcmp(sr->clusters[k]->name, name) == 0)
                return mp_set_err(err,
                                  "static_resources.clusters[%zu].name: duplicate cluster name "
                                  "\"%s\" (also clusters[%zu])",
                                  i, name, k);
        set->v[set->n++] = name;
    }
    if (set->n > 1)
        qsort(set->v, set->n, sizeof(*set->v), cmp_str);
    return 0;
}

static int check_listeners(const Bootstrap *b, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    size_t n = sr != NULL ? sr->n_listeners : 0;
    for (size_t i = 0; i < n; i++) {
        const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];
        const char *name = l->name != NULL ? l->name : "";
        if (l->address == NULL && l->api_listener == NULL &&
            l->listener_specifier_case !=
                ENVOY__CONFIG__LISTENER__V3__LISTENER__LISTENER_SPECIFIER_INTERNAL_LISTENER)
            return mp_set_err(
                err, "static_resources.listeners[%zu].address: listener \"%s\" has no address", i,
                name);
        if (name[0] == '\0')
            continue;
        for (size_t k = 0; k < i; k++)
            if (strcmp(sr->listeners[k]->name, name) == 0)
                return mp_set_err(err,
                                  "static_resources.listeners[%zu].name: duplicate listener name "
                                  "\"%s\" (also listeners[%zu])",
                                  i, name, k);
    }
    return 0;
}

/* An xDS API source must reach the control plane through a static cluster. */
static int check_api_source(const ApiConfigSource *api, const struct names *clusters,
                            const char *path, char **err)
{
    int t = api->api_type;
    bool grpc = t == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC ||
                t == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC ||
                t == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_GRPC ||
                t == ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_DELTA_GRPC;
    if (t ==
        ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE)
        return mp_set_err(err, "%s.api_type: api_type must be set (GRPC, DELTA_GRPC or REST)",
                          path);
    if (grpc) {
        if (api->n_grpc_services != 1)
            return mp_set_err(err,
                              "%s.grpc_services: exactly one gRPC service is required, got %zu",
                              path, api->n_grpc_services);
        if (api->n_cluster_names != 0)
            return mp_set_err(
                err, "%s.cluster_names: a gRPC api_type takes grpc_services, not cluster_names",
                path);
        const Envoy__Config__Core__V3__GrpcService *g = api->grpc_services[0];
        if (g->target_specifier_case ==
                ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC &&
            !names_has(clusters, g->envoy_grpc->cluster_name))
            return mp_set_err(err,
                              "%s.grpc_services[0].envoy_grpc.cluster_name: unknown cluster \"%s\" "
                              "(it must be a static cluster)",
                              path, g->envoy_grpc->cluster_name);
        return 0;
    }
    for (size_t i = 0; i < api->n_cluster_names; i++)
        if (!names_has(clusters, api->cluster_names[i]))
            return mp_set_err(err,
                              "%s.cluster_names[%zu]: unknown cluster \"%s\" (it must be a static "
                              "cluster)",
                              path, i, api->cluster_names[i]);
    return 0;
}

static int check_config_source(const ConfigSource *cs, const Bootstrap *b,
                               const struct names *clusters, const char *path, char **err)
{
    char sub[256];
    switch (cs->config_source_specifier_case) {
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS:
        if (b->dynamic_resources == NULL || b->dynamic_resources->ads_config == NULL)
            return mp_set_err(
                err, "%s.ads: ads is used but dynamic_resources.ads_config is not set", path);
        return 0;
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE:
        snprintf(sub, sizeof(sub), "%s.api_config_source", path);
        return check_api_source(cs->api_config_source, clusters, sub, err);
    case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER__NOT_SET:
        return mp_set_err(err, "%s: config source has no ads, api_config_source or path", path);
    default: return 0;
    }
}

static int check_dynamic(const Bootstrap *b, const struct names *clusters, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *d = b->dynamic_resources;
    if (d == NULL)
        return 0;
    int rc;
    if (d->ads_config != NULL &&
        (rc = check_api_source(d->ads_config, clusters, "dynamic_resources.ads_config", err)) != 0)
        return rc;
    if (d->lds_config != NULL &&
        (rc = check_config_source(d->lds_config, b, clusters, "dynamic_resources.lds_config",
                                  err)) != 0)
        return rc;
    if (d->cds_config != NULL &&
        (rc = check_config_source(d->cds_config, b, clusters, "dynamic_resources.cds_config",
                                  err)) != 0)
        return rc;
    return 0;
}

/* EDS clusters need a source for their endpoints, reachable like any other. */
static int check_eds(const Bootstrap *b, const struct names *clusters, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    for (size_t i = 0; sr != NULL && i < sr->n_clusters; i++) {
        const Envoy__Config__Cluster__V3__Cluster *c = sr->clusters[i];
        if (c->cluster_discovery_type_case !=
                ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE ||
            c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
            continue;
        if (c->eds_cluster_config == NULL || c->eds_cluster_config->eds_config == NULL)
            return mp_set_err(err,
                              "static_resources.clusters[%zu].eds_cluster_config.eds_config: EDS "
                              "cluster \"%s\" has no eds_config",
                              i, c->name);
        char path[128];
        snprintf(path, sizeof(path), "static_resources.clusters[%zu].eds_cluster_config.eds_config",
                 i);
        int rc = check_config_source(c->eds_cluster_config->eds_config, b, clusters, path, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_route_clusters(const Envoy__Config__Route__V3__RouteConfiguration *rc,
                                const struct names *clusters, const char *path, char **err)
{
    if (rc->validate_clusters != NULL && !rc->validate_clusters->value)
        return 0;
    for (size_t v = 0; v < rc->n_virtual_hosts; v++) {
        const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[v];
        for (size_t r = 0; r < vh->n_routes; r++) {
            const Envoy__Config__Route__V3__Route *route = vh->routes[r];
            if (route->action_case != ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE)
                continue;
            const Envoy__Config__Route__V3__RouteAction *a = route->route;
            if (a->cluster_specifier_case ==
                    ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER &&
                !names_has(clusters, a->cluster))
                return mp_set_err(err,
                                  "%s.virtual_hosts[%zu].routes[%zu].route.cluster: unknown "
                                  "cluster \"%s\"",
                                  path, v, r, a->cluster);
            if (a->cluster_specifier_case ==
                ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
                for (size_t w = 0; w < a->weighted_clusters->n_clusters; w++) {
                    const char *name = a->weighted_clusters->clusters[w]->name;
                    if (!names_has(clusters, name))
                        return mp_set_err(err,
                                          "%s.virtual_hosts[%zu].routes[%zu].route.weighted_"
                                          "clusters.clusters[%zu].name: unknown cluster \"%s\"",
                                          path, v, r, w, name);
                }
            }
        }
    }
    return 0;
}

static int check_hcm(const Google__Protobuf__Any *any, const struct names *clusters, bool have_cds,
                     const char *path, char **err)
{
    Hcm *h = (Hcm *)protobuf_c_message_unpack(
        &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
        NULL, any->value.len, any->value.data);
    if (h == NULL)
        return mp_set_err(err, "%s: typed_config does not decode as " HCM_TYPE, path);
    int rc = 0;
    /* The router is terminal: it must be last, and only last. */
    for (size_t i = 0; i < h->n_http_filters && rc == 0; i++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f =
            h->http_filters[i];
        bool router =
            f->config_type_case ==
                ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG &&
            type_is(f->typed_config, ROUTER_TYPE);
        bool last = i + 1 == h->n_http_filters;
        if (router && !last)
            rc = mp_set_err(err,
                            "%s.http_filters[%zu]: the router filter is terminal and must be the "
                            "last HTTP filter",
                            path, i);
        else if (!router && last)
            rc = mp_set_err(err,
                            "%s.http_filters[%zu]: the last HTTP filter must be the router "
                            "(envoy.filters.http.router), got \"%s\"",
                            path, i, f->name);
    }
    if (rc == 0 && !have_cds &&
        h->route_specifier_case ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG) {
        char sub[512];
        snprintf(sub, sizeof(sub), "%s.route_config", path);
        rc = check_route_clusters(h->route_config, clusters, sub, err);
    }
    protobuf_c_message_free_unpacked(&h->base, NULL);
    return rc;
}

static int check_tcp_proxy(const Google__Protobuf__Any *any, const struct names *clusters,
                           const char *path, char **err)
{
    TcpProxy *t = (TcpProxy *)protobuf_c_message_unpack(
        &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, NULL,
        any->value.len, any->value.data);
    if (t == NULL)
        return mp_set_err(err, "%s: typed_config does not decode as " TCP_PROXY_TYPE, path);
    int rc = 0;
    if (t->cluster_specifier_case ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER &&
        !names_has(clusters, t->cluster))
        rc = mp_set_err(err, "%s.cluster: unknown cluster \"%s\"", path, t->cluster);
    else if (
        t->cluster_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS)
        for (size_t i = 0; i < t->weighted_clusters->n_clusters && rc == 0; i++)
            if (!names_has(clusters, t->weighted_clusters->clusters[i]->name))
                rc = mp_set_err(err,
                                "%s.weighted_clusters.clusters[%zu].name: unknown cluster \"%s\"",
                                path, i, t->weighted_clusters->clusters[i]->name);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    return rc;
}

static int check_chain(const Envoy__Config__Listener__V3__FilterChain *fc,
                       const struct names *clusters, bool have_cds, const char *path, char **err)
{
    for (size_t f = 0; f < fc->n_filters; f++) {
        const Envoy__Config__Listener__V3__Filter *filter = fc->filters[f];
        if (filter->config_type_case !=
            ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
            continue;
        char sub[384];
        snprintf(sub, sizeof(sub), "%s.filters[%zu].typed_config", path, f);
        int rc = 0;
        if (type_is(filter->typed_config, HCM_TYPE))
            rc = check_hcm(filter->typed_config, clusters, have_cds, sub, err);
        else if (type_is(filter->typed_config, TCP_PROXY_TYPE) && !have_cds)
            rc = check_tcp_proxy(filter->typed_config, clusters, sub, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_filters(const Bootstrap *b, const struct names *clusters, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    if (sr == NULL)
        return 0;
    /* With CDS, a route may name a cluster that arrives later. */
    bool have_cds = b->dynamic_resources != NULL && b->dynamic_resources->cds_config != NULL;
    for (size_t i = 0; i < sr->n_listeners; i++) {
        const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];
        char path[128];
        for (size_t c = 0; c < l->n_filter_chains; c++) {
            snprintf(path, sizeof(path), "static_resources.listeners[%zu].filter_chains[%zu]", i,
                     c);
            int rc = check_chain(l->filter_chains[c], clusters, have_cds, path, err);
            if (rc != 0)
                return rc;
        }
        if (l->default_filter_chain != NULL) {
            snprintf(path, sizeof(path), "static_resources.listeners[%zu].default_filter_chain", i);
            int rc = check_chain(l->default_filter_chain, clusters, have_cds, path, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int mp_bootstrap_validate(const Bootstrap *b, char **err)
{
    struct names clusters = {0};
    int rc = check_clusters(b, &clusters, err);
    if (rc == MP_ERR_NOMEM)
        mp_set_err(err, "out of memory");
    if (rc == 0)
        rc = check_listeners(b, err);
    if (rc == 0)
        rc = check_dynamic(b, &clusters, err);
    if (rc == 0)
        rc = check_eds(b, &clusters, err);
    if (rc == 0)
        rc = check_filters(b, &clusters, err);
    free(clusters.v);
    return rc;
}
