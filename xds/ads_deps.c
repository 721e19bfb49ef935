/*
 * ads_deps.c: names a resource refers to, so that the client can keep the
 * RDS and EDS subscriptions equal to what the accepted LDS and CDS need,
 * as Envoy does.
 */
#include "ads_deps.h"

#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "mp_common.h"
#include "xds_client.h"

#define HCM_FULL_NAME                                                                              \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

const char *mp_ads_deps_child_type(const char *type_url)
{
    if (strcmp(type_url, MP_XDS_TYPE_LISTENER) == 0)
        return MP_XDS_TYPE_ROUTE;
    if (strcmp(type_url, MP_XDS_TYPE_CLUSTER) == 0)
        return MP_XDS_TYPE_ENDPOINT;
    return NULL;
}

static bool is_hcm(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    return strcmp(slash ? slash + 1 : type_url, HCM_FULL_NAME) == 0;
}

static int hcm_routes(const Google__Protobuf__Any *any, struct mp_ads_names *out)
{
    if (!any || !is_hcm(any->type_url))
        return 0;
    Hcm *hcm =
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
            NULL, any->value.len, any->value.data);
    if (!hcm)
        return 0;
    int rc = 0;
    if (hcm->route_specifier_case ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS &&
        hcm->rds && hcm->rds->route_config_name[0])
        rc = mp_ads_names_add(out, hcm->rds->route_config_name);
    protobuf_c_message_free_unpacked(&hcm->base, NULL);
    return rc;
}

static int chain_routes(const Envoy__Config__Listener__V3__FilterChain *fc,
                        struct mp_ads_names *out)
{
    if (!fc)
        return 0;
    for (size_t i = 0; i < fc->n_filters; i++) {
        const Envoy__Config__Listener__V3__Filter *f = fc->filters[i];
        if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
            continue;
        int rc = hcm_routes(f->typed_config, out);
        if (rc)
            return rc;
    }
    return 0;
}

static int listener_deps(const Envoy__Config__Listener__V3__Listener *l, struct mp_ads_names *out)
{
    int rc = 0;
    for (size_t i = 0; i < l->n_filter_chains && !rc; i++)
        rc = chain_routes(l->filter_chains[i], out);
    if (!rc)
        rc = chain_routes(l->default_filter_chain, out);
    if (!rc && l->api_listener)
        rc = hcm_routes(l->api_listener->api_listener, out);
    return rc;
}

static int cluster_deps(const Envoy__Config__Cluster__V3__Cluster *c, struct mp_ads_names *out)
{
    if (c->cluster_discovery_type_case !=
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE ||
        c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
        return 0;
    const char *svc = c->eds_cluster_config && c->eds_cluster_config->service_name[0]
                          ? c->eds_cluster_config->service_name
                          : c->name;
    return svc[0] ? mp_ads_names_add(out, svc) : 0;
}

int mp_ads_deps_collect(const char *type_url, const ProtobufCMessage *msg, struct mp_ads_names *out)
{
    if (!msg)
        return 0;
    if (msg->descriptor == &envoy__config__listener__v3__listener__descriptor)
        return listener_deps((const Envoy__Config__Listener__V3__Listener *)msg, out);
    if (msg->descriptor == &envoy__config__cluster__v3__cluster__descriptor)
        return cluster_deps((const Envoy__Config__Cluster__V3__Cluster *)msg, out);
    (void)type_url;
    return 0;
}
