/*
 * xds_source.c: bootstrap config source -> gRPC target for the xDS client.
 */
#include "xds_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

#define DEFAULT_INITIAL_FETCH_TIMEOUT_MS 15000

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

static const Envoy__Config__Cluster__V3__Cluster *static_cluster(const Bootstrap *b,
                                                                 const char *name)
{
    if (!b->static_resources)
        return NULL;
    for (size_t i = 0; i < b->static_resources->n_clusters; i++)
        if (strcmp(b->static_resources->clusters[i]->name, name) == 0)
            return b->static_resources->clusters[i];
    return NULL;
}

/* The first endpoint address of a static cluster, as a grpc target. */
static int cluster_target(const Envoy__Config__Cluster__V3__Cluster *c, char **target, char **err)
{
    const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la = c->load_assignment;
    for (size_t i = 0; la && i < la->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *le = la->endpoints[i];
        for (size_t k = 0; k < le->n_lb_endpoints; k++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *lb = le->lb_endpoints[k];
            if (lb->host_identifier_case !=
                    ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
                !lb->endpoint || !lb->endpoint->address)
                continue;
            const Envoy__Config__Core__V3__Address *a = lb->endpoint->address;
            char buf[4200];
            if (a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE && a->pipe) {
                snprintf(buf, sizeof(buf), "unix:%s", a->pipe->path);
            } else if (a->address_case ==
                           ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS &&
                       a->socket_address) {
                const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
                bool v6 = strchr(sa->address, ':') != NULL;
                snprintf(buf, sizeof(buf), "%s%s%s:%u", v6 ? "[" : "", sa->address, v6 ? "]" : "",
                         (unsigned)sa->port_value);
            } else {
                continue;
            }
            *target = strdup(buf);
            return *target ? 0 : MP_ERR_NOMEM;
        }
    }
    return mp_set_err(
        err, "cluster_name: cluster \"%s\" has no endpoint address in load_assignment", c->name);
}

int mp_xds_source_from_api(const Bootstrap *b, const Envoy__Config__Core__V3__ApiConfigSource *api,
                           const Envoy__Config__Core__V3__ConfigSource *cs,
                           struct mp_xds_source *out, char **err)
{
    memset(out, 0, sizeof(*out));
    switch (api->api_type) {
    case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC: break;
    case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC:
        out->mode = MP_XDS_DELTA;
        break;
    case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_GRPC:
        out->aggregated = true;
        break;
    case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_DELTA_GRPC:
        out->aggregated = true;
        out->mode = MP_XDS_DELTA;
        break;
    default:
        mp_set_err(err, "api_type: only GRPC, DELTA_GRPC, AGGREGATED_GRPC and "
                        "AGGREGATED_DELTA_GRPC are supported");
        return MP_ERR_UNSUPPORTED;
    }
    out->initial_fetch_timeout_ms = DEFAULT_INITIAL_FETCH_TIMEOUT_MS;
    if (cs && cs->initial_fetch_timeout)
        out->initial_fetch_timeout_ms =
            cs->initial_fetch_timeout->seconds * 1000 + cs->initial_fetch_timeout->nanos / 1000000;
    if (api->n_grpc_services == 0)
        return mp_set_err(err, "grpc_services: a gRPC config source needs one service");
    const Envoy__Config__Core__V3__GrpcService *g = api->grpc_services[0];
    int rc;
    if (g->target_specifier_case ==
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC &&
        g->envoy_grpc) {
        const Envoy__Config__Cluster__V3__Cluster *c =
            static_cluster(b, g->envoy_grpc->cluster_name);
        if (!c)
            return mp_set_err(err,
                              "grpc_services[0].envoy_grpc.cluster_name: no static cluster "
                              "\"%s\"",
                              g->envoy_grpc->cluster_name);
        rc = cluster_target(c, &out->target, err);
        if (rc)
            mp_err_prefix(err, "grpc_services[0].envoy_grpc");
        return rc;
    }
    if (g->target_specifier_case ==
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC &&
        g->google_grpc && g->google_grpc->target_uri[0]) {
        out->target = strdup(g->google_grpc->target_uri);
        return out->target ? 0 : MP_ERR_NOMEM;
    }
    return mp_set_err(err, "grpc_services[0]: needs envoy_grpc or google_grpc.target_uri");
}

int mp_xds_source_ads(const Bootstrap *b, struct mp_xds_source *out, char **err)
{
    memset(out, 0, sizeof(*out));
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *d = b->dynamic_resources;
    if (!d || !d->ads_config)
        return MP_ERR_NOTFOUND;
    const Envoy__Config__Core__V3__ConfigSource *cs = d->cds_config ? d->cds_config : d->lds_config;
    int rc = mp_xds_source_from_api(b, d->ads_config, cs, out, err);
    if (rc)
        mp_err_prefix(err, "dynamic_resources.ads_config");
    return rc;
}

void mp_xds_source_clear(struct mp_xds_source *src)
{
    free(src->target);
    memset(src, 0, sizeof(*src));
}
