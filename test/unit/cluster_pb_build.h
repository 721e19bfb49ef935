/*
 * cluster_pb_build.h: builds Envoy Cluster / ClusterLoadAssignment protos in
 * C for the cluster unit tests, in a small arena freed by free_all().
 * Header-only; every function is static inline.
 */
#ifndef MP_CLUSTER_PB_BUILD_H
#define MP_CLUSTER_PB_BUILD_H

#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "proxy/mp_common.h"

/*
 * The generated *__INIT macros set every field, deprecated ones included
 * (and tests set deprecated fields on purpose), so files that build protos
 * with these helpers do not warn about them.
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* ---- a tiny arena so the proto trees built below are freed in one go ---- */

static void *allocs[512];
static size_t n_allocs;

static inline void *T(size_t size)
{
    assert_true(n_allocs < MP_ARRAY_LEN(allocs));
    void *p = calloc(1, size);
    allocs[n_allocs++] = p;
    return p;
}

static inline void free_all(void)
{
    while (n_allocs > 0)
        free(allocs[--n_allocs]);
}

#define NEW(type, init) ((type *)memcpy(T(sizeof(type)), &(type)init, sizeof(type)))

static inline Google__Protobuf__UInt32Value *u32(uint32_t v)
{
    Google__Protobuf__UInt32Value *w =
        NEW(Google__Protobuf__UInt32Value, GOOGLE__PROTOBUF__UINT32_VALUE__INIT);
    w->value = v;
    return w;
}

static inline Google__Protobuf__UInt64Value *u64(uint64_t v)
{
    Google__Protobuf__UInt64Value *w =
        NEW(Google__Protobuf__UInt64Value, GOOGLE__PROTOBUF__UINT64_VALUE__INIT);
    w->value = v;
    return w;
}

static inline Google__Protobuf__Duration *dur(int64_t s, int32_t ns)
{
    Google__Protobuf__Duration *d =
        NEW(Google__Protobuf__Duration, GOOGLE__PROTOBUF__DURATION__INIT);
    d->seconds = s;
    d->nanos = ns;
    return d;
}

static inline Envoy__Config__Core__V3__Address *sock(const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__SocketAddress *sa =
        NEW(Envoy__Config__Core__V3__SocketAddress, ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT);
    sa->address = (char *)ip;
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    Envoy__Config__Core__V3__Address *a =
        NEW(Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
    a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    a->socket_address = sa;
    return a;
}

static inline Envoy__Config__Core__V3__Address *pipe_addr(const char *path)
{
    Envoy__Config__Core__V3__Pipe *p =
        NEW(Envoy__Config__Core__V3__Pipe, ENVOY__CONFIG__CORE__V3__PIPE__INIT);
    p->path = (char *)path;
    Envoy__Config__Core__V3__Address *a =
        NEW(Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
    a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE;
    a->pipe = p;
    return a;
}

static inline Google__Protobuf__Struct *struct1(const char *key, const char *sval)
{
    Google__Protobuf__Value *v = NEW(Google__Protobuf__Value, GOOGLE__PROTOBUF__VALUE__INIT);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)sval;
    Google__Protobuf__Struct__FieldsEntry *e =
        NEW(Google__Protobuf__Struct__FieldsEntry, GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT);
    e->key = (char *)key;
    e->value = v;
    Google__Protobuf__Struct *s = NEW(Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
    s->n_fields = 1;
    s->fields = T(sizeof(*s->fields));
    s->fields[0] = e;
    return s;
}

/* Metadata with one filter_metadata entry: filter -> {key: sval}. */
static inline Envoy__Config__Core__V3__Metadata *metadata1(const char *filter, const char *key,
                                                           const char *sval)
{
    Envoy__Config__Core__V3__Metadata *md =
        NEW(Envoy__Config__Core__V3__Metadata, ENVOY__CONFIG__CORE__V3__METADATA__INIT);
    Envoy__Config__Core__V3__Metadata__FilterMetadataEntry *fm =
        NEW(Envoy__Config__Core__V3__Metadata__FilterMetadataEntry,
            ENVOY__CONFIG__CORE__V3__METADATA__FILTER_METADATA_ENTRY__INIT);
    fm->key = (char *)filter;
    fm->value = struct1(key, sval);
    md->n_filter_metadata = 1;
    md->filter_metadata = T(sizeof(fm));
    md->filter_metadata[0] = fm;
    return md;
}

static inline Envoy__Config__Endpoint__V3__LbEndpoint *ep(Envoy__Config__Core__V3__Address *addr,
                                                          uint32_t weight,
                                                          Envoy__Config__Core__V3__HealthStatus hs)
{
    Envoy__Config__Endpoint__V3__Endpoint *e =
        NEW(Envoy__Config__Endpoint__V3__Endpoint, ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
    e->address = addr;
    Envoy__Config__Endpoint__V3__LbEndpoint *le = NEW(
        Envoy__Config__Endpoint__V3__LbEndpoint, ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = e;
    le->health_status = hs;
    if (weight)
        le->load_balancing_weight = u32(weight);
    return le;
}

/* Adds a locality with the given endpoints to a CLA. */
static inline Envoy__Config__Endpoint__V3__LocalityLbEndpoints *
add_locality(Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla, const char *zone,
             uint32_t priority, size_t n, Envoy__Config__Endpoint__V3__LbEndpoint **eps)
{
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *l =
        NEW(Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
            ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
    Envoy__Config__Core__V3__Locality *loc =
        NEW(Envoy__Config__Core__V3__Locality, ENVOY__CONFIG__CORE__V3__LOCALITY__INIT);
    loc->region = (char *)"us-east1";
    loc->zone = (char *)zone;
    l->locality = loc;
    l->priority = priority;
    l->n_lb_endpoints = n;
    l->lb_endpoints = T(n * sizeof(*l->lb_endpoints));
    memcpy(l->lb_endpoints, eps, n * sizeof(*eps));
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints **grown =
        T((cla->n_endpoints + 1) * sizeof(*grown));
    if (cla->n_endpoints)
        memcpy(grown, cla->endpoints, cla->n_endpoints * sizeof(*grown));
    grown[cla->n_endpoints++] = l;
    cla->endpoints = grown;
    return l;
}

static inline Envoy__Config__Endpoint__V3__ClusterLoadAssignment *new_cla(const char *name)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        NEW(Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
            ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    cla->cluster_name = (char *)name;
    return cla;
}

static inline Envoy__Config__Cluster__V3__Cluster *
new_cluster(const char *name, Envoy__Config__Cluster__V3__Cluster__DiscoveryType type)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        NEW(Envoy__Config__Cluster__V3__Cluster, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT);
    c->name = (char *)name;
    c->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = type;
    return c;
}

/* Packs a message into an Any owned by the arena. */
static inline Google__Protobuf__Any *pack_any(const ProtobufCMessage *m, const char *type_url)
{
    Google__Protobuf__Any *a = NEW(Google__Protobuf__Any, GOOGLE__PROTOBUF__ANY__INIT);
    a->type_url = (char *)type_url;
    a->value.len = protobuf_c_message_get_packed_size(m);
    a->value.data = T(a->value.len + 1);
    protobuf_c_message_pack(m, a->value.data);
    return a;
}

static inline Envoy__Config__Core__V3__TransportSocket *tsock(const char *name,
                                                              Google__Protobuf__Any *cfg)
{
    Envoy__Config__Core__V3__TransportSocket *t = NEW(
        Envoy__Config__Core__V3__TransportSocket, ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT);
    t->name = (char *)name;
    if (cfg != NULL) {
        t->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
        t->typed_config = cfg;
    }
    return t;
}

#endif
