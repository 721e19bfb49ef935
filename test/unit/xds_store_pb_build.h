/*
 * xds_store_pb_build.h: real Envoy xDS resources built in C (clusters,
 * CLAs, routes, listeners with HCM/RDS/SDS TLS, secrets), serialized and
 * unpacked again into struct mp_xds_resource as the xDS client hands them
 * to the store, for the xDS store unit tests. PEM certificates are made per
 * run by the openssl CLI (pem_setup), never committed. Header-only; every
 * function is static inline. Include it after <cmocka.h>: it asserts.
 */
#ifndef MP_XDS_STORE_PB_BUILD_H
#define MP_XDS_STORE_PB_BUILD_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "proxy/cluster.h"
#include "proxy/snapshot.h"
#include "proxy/type_registry.h"
#include "xds/xds_client.h"
#include "xds/xds_translate_cluster.h"
#include "xds/xds_translate_listener.h"

/* protobuf-c's __INIT macros fill deprecated fields too; clang warns on each use. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* ---- an arena for the proto trees built below (freed after packing) ---------- */

struct arena_block {
    struct arena_block *next;
    max_align_t data[];
};
static struct arena_block *arena;

static inline void *A(size_t size)
{
    struct arena_block *b = calloc(1, sizeof(*b) + size);
    assert_non_null(b);
    b->next = arena;
    arena = b;
    return b->data;
}

static inline void arena_free(void)
{
    while (arena) {
        struct arena_block *next = arena->next;
        free(arena);
        arena = next;
    }
}

#define NEW(type, init) ((type *)memcpy(A(sizeof(type)), &(type)init, sizeof(type)))

static inline char *S(const char *s)
{
    return strcpy(A(strlen(s) + 1), s);
}

/* An array of n pointers in the arena, filled from the arguments. */
static inline void **V(size_t n, ...)
{
    void **v = A(n * sizeof(*v));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        v[i] = va_arg(ap, void *);
    va_end(ap);
    return v;
}

static inline Google__Protobuf__Any *any_of(const char *type_url, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *a = NEW(Google__Protobuf__Any, GOOGLE__PROTOBUF__ANY__INIT);
    a->type_url = S(type_url);
    a->value.len = protobuf_c_message_get_packed_size(m);
    a->value.data = A(a->value.len + 1);
    protobuf_c_message_pack(m, a->value.data);
    return a;
}

/* ---- PEM certificates, made per run by the openssl CLI (never committed) ------ */

static char certdir[64];
static char *pem[4]; /* a.crt, a.key, b.crt, b.key */
enum { A_CRT, A_KEY, B_CRT, B_KEY };

static inline char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 8192);
    size_t n = buf ? fread(buf, 1, 8191, f) : 0;
    fclose(f);
    if (buf && n == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static inline int pem_setup(void)
{
    snprintf(certdir, sizeof(certdir), "/tmp/mp-store-test-XXXXXX");
    if (!mkdtemp(certdir))
        return -1;
    char cmd[512];
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                 "-nodes -keyout %c.key -out %c.crt -days 3650 -subj /CN=workload-%c "
                 ">/dev/null 2>&1",
                 certdir, 'a' + i, 'a' + i, 'a' + i);
        if (system(cmd) != 0)
            return -1;
    }
    static const char *const files[4] = {"a.crt", "a.key", "b.crt", "b.key"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof(cmd), "%s/%s", certdir, files[i]);
        if (!(pem[i] = slurp(cmd)))
            return -1;
    }
    return 0;
}

static inline void pem_teardown(void)
{
    for (int i = 0; i < 4; i++)
        free(pem[i]);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", certdir);
}

/* ---- updates: resources serialized, then unpacked as the client does ---------- */

struct batch {
    const char *type_url;
    struct mp_xds_resource *r;
    size_t n, cap;
};

/* Adds m, sent under name: serialized, then unpacked with the type
 * registry's descriptor (what the client sets as .msg). m lives in the arena,
 * which is freed here: build the next resource afresh. */
static inline void batch_add(struct batch *b, const char *name, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = mp_type_registry_find(b->type_url);
    assert_non_null(d);
    assert_ptr_equal(d, m->descriptor);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *data = malloc(len + 1);
    assert_non_null(data);
    assert_int_equal(protobuf_c_message_pack(m, data), len);
    ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, len, data);
    assert_non_null(u);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->r = realloc(b->r, b->cap * sizeof(*b->r));
        assert_non_null(b->r);
    }
    char *nm = strdup(name);
    assert_non_null(nm);
    b->r[b->n++] = (struct mp_xds_resource){
        .name = nm, .type_url = b->type_url, .data = data, .len = len, .msg = u};
    arena_free();
}

static inline void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->r[i].name);
        free((uint8_t *)b->r[i].data);
        if (b->r[i].msg)
            protobuf_c_message_free_unpacked((ProtobufCMessage *)b->r[i].msg, NULL);
    }
    free(b->r);
    memset(b, 0, sizeof(*b));
}

/* ---- Envoy protos ---------------------------------------------------------------- */

static inline Envoy__Config__Core__V3__ConfigSource *ads_source(void)
{
    Envoy__Config__Core__V3__ConfigSource *cs =
        NEW(Envoy__Config__Core__V3__ConfigSource, ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT);
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs->ads = NEW(Envoy__Config__Core__V3__AggregatedConfigSource,
                  ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT);
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    return cs;
}

/* cluster NULL: over ADS; else an api_config_source with one envoy_grpc service. */
static inline Envoy__Config__Core__V3__ConfigSource *sds_source(const char *cluster)
{
    if (!cluster)
        return ads_source();
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc *eg =
        NEW(Envoy__Config__Core__V3__GrpcService__EnvoyGrpc,
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT);
    eg->cluster_name = S(cluster);
    Envoy__Config__Core__V3__GrpcService *gs =
        NEW(Envoy__Config__Core__V3__GrpcService, ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT);
    gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs->envoy_grpc = eg;
    Envoy__Config__Core__V3__ApiConfigSource *api = NEW(
        Envoy__Config__Core__V3__ApiConfigSource, ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT);
    api->api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    api->n_grpc_services = 1;
    api->grpc_services = (Envoy__Config__Core__V3__GrpcService **)V(1, gs);
    Envoy__Config__Core__V3__ConfigSource *cs =
        NEW(Envoy__Config__Core__V3__ConfigSource, ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT);
    cs->config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs->api_config_source = api;
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    return cs;
}

static inline Envoy__Config__Core__V3__Address *sock_addr(const char *ip, uint32_t port)
{
    Envoy__Config__Core__V3__SocketAddress *sa =
        NEW(Envoy__Config__Core__V3__SocketAddress, ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT);
    sa->address = S(ip);
    sa->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    sa->port_value = port;
    Envoy__Config__Core__V3__Address *a =
        NEW(Envoy__Config__Core__V3__Address, ENVOY__CONFIG__CORE__V3__ADDRESS__INIT);
    a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    a->socket_address = sa;
    return a;
}

/* A ClusterLoadAssignment with one endpoint ip:port. */
static inline Envoy__Config__Endpoint__V3__ClusterLoadAssignment *
cla_msg(const char *name, const char *ip, uint32_t port)
{
    Envoy__Config__Endpoint__V3__Endpoint *e =
        NEW(Envoy__Config__Endpoint__V3__Endpoint, ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT);
    e->address = sock_addr(ip, port);
    Envoy__Config__Endpoint__V3__LbEndpoint *le = NEW(
        Envoy__Config__Endpoint__V3__LbEndpoint, ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = e;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *loc =
        NEW(Envoy__Config__Endpoint__V3__LocalityLbEndpoints,
            ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT);
    loc->n_lb_endpoints = 1;
    loc->lb_endpoints = (Envoy__Config__Endpoint__V3__LbEndpoint **)V(1, le);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla =
        NEW(Envoy__Config__Endpoint__V3__ClusterLoadAssignment,
            ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT);
    cla->cluster_name = S(name);
    cla->n_endpoints = 1;
    cla->endpoints = (Envoy__Config__Endpoint__V3__LocalityLbEndpoints **)V(1, loc);
    return cla;
}

static inline void add_cla(struct batch *b, const char *name, const char *ip, uint32_t port)
{
    batch_add(b, name, &cla_msg(name, ip, port)->base);
}

static inline Envoy__Config__Cluster__V3__Cluster *cluster_msg(const char *name, int type,
                                                               int64_t timeout_s)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        NEW(Envoy__Config__Cluster__V3__Cluster, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT);
    c->name = S(name);
    c->cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c->type = type;
    c->connect_timeout = NEW(Google__Protobuf__Duration, GOOGLE__PROTOBUF__DURATION__INIT);
    c->connect_timeout->seconds = timeout_s;
    return c;
}

/* An EDS cluster; service NULL: its CLA is named like the cluster. */
static inline void add_eds_cluster(struct batch *b, const char *name, const char *service)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        cluster_msg(name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS, 1);
    c->eds_cluster_config = NEW(Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
                                ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT);
    c->eds_cluster_config->eds_config = ads_source();
    if (service)
        c->eds_cluster_config->service_name = S(service);
    batch_add(b, name, &c->base);
}

/* A STATIC cluster with one endpoint (active at once: nothing to warm). */
static inline Envoy__Config__Cluster__V3__Cluster *
static_cluster_msg(const char *name, uint32_t port, int64_t timeout_s)
{
    Envoy__Config__Cluster__V3__Cluster *c =
        cluster_msg(name, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC, timeout_s);
    c->load_assignment = cla_msg(name, "127.0.0.1", port);
    return c;
}

static inline void add_static_cluster(struct batch *b, const char *name, uint32_t port,
                                      int64_t timeout_s)
{
    batch_add(b, name, &static_cluster_msg(name, port, timeout_s)->base);
}

/* A cluster with an UpstreamTlsContext whose certificate comes by SDS. */
static inline void add_tls_cluster(struct batch *b, const char *name, const char *secret,
                                   const char *sds_cluster)
{
    Envoy__Config__Cluster__V3__Cluster *c = static_cluster_msg(name, 8443, 1);
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT);
    sc->name = S(secret);
    sc->sds_config = sds_source(sds_cluster);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *common =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    common->n_tls_certificate_sds_secret_configs = 1;
    common->tls_certificate_sds_secret_configs =
        (Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig **)V(1, sc);
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *up =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT);
    up->common_tls_context = common;
    up->sni = S("backend.example");
    Envoy__Config__Core__V3__TransportSocket *ts = NEW(
        Envoy__Config__Core__V3__TransportSocket, ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT);
    ts->name = S("envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config =
        any_of("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
               &up->base);
    c->transport_socket = ts;
    batch_add(b, name, &c->base);
}

/* A RouteConfiguration: one virtual host "*", one route to cluster, matching
 * prefix "/" or, when regex is set, that safe_regex. */
static inline Envoy__Config__Route__V3__RouteConfiguration *
route_msg(const char *name, const char *cluster, const char *regex)
{
    Envoy__Config__Route__V3__RouteMatch *m =
        NEW(Envoy__Config__Route__V3__RouteMatch, ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__INIT);
    if (regex) {
        m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
        m->safe_regex = NEW(Envoy__Type__Matcher__V3__RegexMatcher,
                            ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT);
        m->safe_regex->regex = S(regex);
    } else {
        m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
        m->prefix = S("/");
    }
    Envoy__Config__Route__V3__RouteAction *ra =
        NEW(Envoy__Config__Route__V3__RouteAction, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INIT);
    ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    ra->cluster = S(cluster);
    Envoy__Config__Route__V3__Route *r =
        NEW(Envoy__Config__Route__V3__Route, ENVOY__CONFIG__ROUTE__V3__ROUTE__INIT);
    r->match = m;
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = ra;
    Envoy__Config__Route__V3__VirtualHost *vh =
        NEW(Envoy__Config__Route__V3__VirtualHost, ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__INIT);
    vh->name = S("vh");
    vh->n_domains = 1;
    vh->domains = (char **)V(1, S("*"));
    vh->n_routes = 1;
    vh->routes = (Envoy__Config__Route__V3__Route **)V(1, r);
    Envoy__Config__Route__V3__RouteConfiguration *rc =
        NEW(Envoy__Config__Route__V3__RouteConfiguration,
            ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT);
    rc->name = S(name);
    rc->n_virtual_hosts = 1;
    rc->virtual_hosts = (Envoy__Config__Route__V3__VirtualHost **)V(1, vh);
    return rc;
}

static inline void add_route(struct batch *b, const char *name, const char *cluster,
                             const char *regex)
{
    batch_add(b, name, &route_msg(name, cluster, regex)->base);
}

/* Secrets a listener's DownstreamTlsContext names: the certificate and the
 * validation context, each over ADS (source NULL) or from an SDS cluster. */
struct tls_refs {
    const char *cert, *cert_source;
    const char *ca, *ca_source;
};

static inline Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *
sds_ref(const char *name, const char *source)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT);
    sc->name = S(name);
    sc->sds_config = sds_source(source);
    return sc;
}

static inline Envoy__Config__Core__V3__TransportSocket *downstream_tls(const struct tls_refs *t)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *common =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT);
    common->n_tls_certificate_sds_secret_configs = 1;
    common->tls_certificate_sds_secret_configs =
        (Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig **)V(
            1, sds_ref(t->cert, t->cert_source));
    if (t->ca) {
        common->validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
        common->validation_context_sds_secret_config = sds_ref(t->ca, t->ca_source);
    }
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dc =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__INIT);
    dc->common_tls_context = common;
    Envoy__Config__Core__V3__TransportSocket *ts = NEW(
        Envoy__Config__Core__V3__TransportSocket, ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT);
    ts->name = S("envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config =
        any_of("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
               &dc->base);
    return ts;
}

/* A listener on 127.0.0.1:port with one HCM chain: its routes by RDS (rds
 * set) or inline (a route to cluster "web"); TLS from SDS when tls is set. */
static inline Envoy__Config__Listener__V3__Listener *
listener_msg(const char *name, uint32_t port, const char *rds, const struct tls_refs *tls)
{
    Envoy__Extensions__Filters__Http__Router__V3__Router *router =
        NEW(Envoy__Extensions__Filters__Http__Router__V3__Router,
            ENVOY__EXTENSIONS__FILTERS__HTTP__ROUTER__V3__ROUTER__INIT);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
        NEW(Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__INIT);
    hf->name = S("envoy.filters.http.router");
    hf->config_type_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    hf->typed_config =
        any_of("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", &router->base);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *hcm = NEW(
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager,
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__INIT);
    hcm->stat_prefix = S("ingress");
    hcm->n_http_filters = 1;
    hcm->http_filters =
        (Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter **)V(1, hf);
    if (rds) {
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds *r =
            NEW(Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
                ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__RDS__INIT);
        r->config_source = ads_source();
        r->route_config_name = S(rds);
        hcm->route_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
        hcm->rds = r;
    } else {
        hcm->route_specifier_case =
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
        hcm->route_config = route_msg("inline", "web", NULL);
    }
    Envoy__Config__Listener__V3__Filter *f =
        NEW(Envoy__Config__Listener__V3__Filter, ENVOY__CONFIG__LISTENER__V3__FILTER__INIT);
    f->name = S("envoy.filters.network.http_connection_manager");
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = any_of("type.googleapis.com/envoy.extensions.filters.network."
                             "http_connection_manager.v3.HttpConnectionManager",
                             &hcm->base);
    Envoy__Config__Listener__V3__FilterChain *fc = NEW(
        Envoy__Config__Listener__V3__FilterChain, ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->n_filters = 1;
    fc->filters = (Envoy__Config__Listener__V3__Filter **)V(1, f);
    if (tls)
        fc->transport_socket = downstream_tls(tls);
    Envoy__Config__Listener__V3__Listener *l =
        NEW(Envoy__Config__Listener__V3__Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
    l->name = S(name);
    l->address = sock_addr("127.0.0.1", port);
    l->n_filter_chains = 1;
    l->filter_chains = (Envoy__Config__Listener__V3__FilterChain **)V(1, fc);
    return l;
}

static inline void add_listener(struct batch *b, const char *name, uint32_t port, const char *rds,
                                const struct tls_refs *tls)
{
    batch_add(b, name, &listener_msg(name, port, rds, tls)->base);
}

static inline Envoy__Config__Core__V3__DataSource *inline_string(const char *s)
{
    Envoy__Config__Core__V3__DataSource *d =
        NEW(Envoy__Config__Core__V3__DataSource, ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT);
    d->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    d->inline_string = S(s);
    return d;
}

/* An SDS tls_certificate secret. */
static inline void add_cert_secret(struct batch *b, const char *name, const char *crt,
                                   const char *key)
{
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT);
    tc->certificate_chain = inline_string(crt);
    tc->private_key = inline_string(key);
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__Secret,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
    s->name = S(name);
    s->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    s->tls_certificate = tc;
    batch_add(b, name, &s->base);
}

/* An SDS validation_context secret (Istio's ROOTCA). */
static inline void add_ca_secret(struct batch *b, const char *name, const char *crt)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT);
    vc->trusted_ca = inline_string(crt);
    Envoy__Extensions__TransportSockets__Tls__V3__Secret *s =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__Secret,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT);
    s->name = S(name);
    s->type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    s->validation_context = vc;
    batch_add(b, name, &s->base);
}

/* ---- stores, snapshots ------------------------------------------------------------ */

#define BATCH(t) ((struct batch){.type_url = (t)})

/* The bootstrap's static resources: cluster "xds-grpc" (the control plane)
 * and a tcp_proxy listener "static-in" to it. */
static inline struct mp_snapshot *base_snapshot(void)
{
    struct mp_snapshot *snap = mp_snapshot_new();
    assert_non_null(snap);
    struct mp_cluster *c = NULL;
    char *err = NULL;
    if (mp_cluster_from_proto(static_cluster_msg("xds-grpc", 15010, 1), &c, &err) < 0)
        fail_msg("%s", err);
    assert_int_equal(mp_snapshot_add_cluster(snap, c), 0);

    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
        NEW(Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy,
            ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__INIT);
    tp->stat_prefix = S("tcp");
    tp->cluster_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
    tp->cluster = S("xds-grpc");
    Envoy__Config__Listener__V3__Filter *f =
        NEW(Envoy__Config__Listener__V3__Filter, ENVOY__CONFIG__LISTENER__V3__FILTER__INIT);
    f->name = S("envoy.filters.network.tcp_proxy");
    f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f->typed_config = any_of(
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", &tp->base);
    Envoy__Config__Listener__V3__FilterChain *fc = NEW(
        Envoy__Config__Listener__V3__FilterChain, ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN__INIT);
    fc->n_filters = 1;
    fc->filters = (Envoy__Config__Listener__V3__Filter **)V(1, f);
    Envoy__Config__Listener__V3__Listener *l =
        NEW(Envoy__Config__Listener__V3__Listener, ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT);
    l->name = S("static-in");
    l->address = sock_addr("127.0.0.1", 15001);
    l->n_filter_chains = 1;
    l->filter_chains = (Envoy__Config__Listener__V3__FilterChain **)V(1, fc);
    struct mp_listener_config *lc = NULL;
    if (mp_xds_translate_listener(l, &lc, &err) < 0)
        fail_msg("%s", err);
    assert_int_equal(mp_snapshot_add_listener(snap, lc), 0);
    arena_free();
    mp_snapshot_seal(snap);
    return snap;
}

#endif
