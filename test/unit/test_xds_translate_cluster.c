/*
 * Unit tests for xds_translate_cluster.c: Envoy-shaped Cluster and
 * ClusterLoadAssignment protos (as istiod and Envoy's docs write them)
 * translate to the right structs, and bad ones fail with exact field paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "proxy/cluster.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "xds/xds_translate_cluster.h"
#include "cluster_pb_build.h"

/*
 * The generated *__INIT macros set every field, deprecated ones included, and
 * one test sets the deprecated Cluster.http2_protocol_options on purpose.
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* Runs the translator expecting failure; checks the exact message. */
static void expect_cluster_err(const Envoy__Config__Cluster__V3__Cluster *pb, const char *want)
{
    struct mp_cluster *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, &err), MP_ERR_INVAL);
    assert_null(c);
    assert_non_null(err);
    assert_string_equal(err, want);
    free(err);
}

/* ---- tests ---- */

/* What istiod sends for an outbound service cluster. */
static void istio_outbound_eds_cluster(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("outbound|9080||reviews.default.svc.cluster.local",
                    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *eds =
        NEW(Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__EDS_CLUSTER_CONFIG__INIT);
    eds->eds_config =
        NEW(Envoy__Config__Core__V3__ConfigSource, ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT);
    eds->service_name = (char *)"outbound|9080||reviews.default.svc.cluster.local";
    pb->eds_cluster_config = eds;
    pb->connect_timeout = dur(10, 0);
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;

    Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
        NEW(Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds,
            ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__THRESHOLDS__INIT);
    th->max_connections = u32(4294967295u);
    th->max_pending_requests = u32(4294967295u);
    th->max_requests = u32(4294967295u);
    th->max_retries = u32(4294967295u);
    th->track_remaining = 1;
    pb->circuit_breakers = NEW(Envoy__Config__Cluster__V3__CircuitBreakers,
                               ENVOY__CONFIG__CLUSTER__V3__CIRCUIT_BREAKERS__INIT);
    pb->circuit_breakers->n_thresholds = 1;
    pb->circuit_breakers->thresholds = T(sizeof(th));
    pb->circuit_breakers->thresholds[0] = th;

    Envoy__Config__Cluster__V3__Cluster__CommonLbConfig *cl =
        NEW(Envoy__Config__Cluster__V3__Cluster__CommonLbConfig,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__INIT);
    cl->healthy_panic_threshold = NEW(Envoy__Type__V3__Percent, ENVOY__TYPE__V3__PERCENT__INIT);
    pb->common_lb_config = cl;

    /* typed_extension_protocol_options: explicit HTTP/2 with Istio's stream limit. */
    Envoy__Config__Core__V3__Http2ProtocolOptions *h2 =
        NEW(Envoy__Config__Core__V3__Http2ProtocolOptions,
            ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT);
    h2->max_concurrent_streams = u32(1073741824);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig *ex = NEW(
        Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig,
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__INIT);
    ex->protocol_config_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
    ex->http2_protocol_options = h2;
    Envoy__Config__Core__V3__HttpProtocolOptions *common =
        NEW(Envoy__Config__Core__V3__HttpProtocolOptions,
            ENVOY__CONFIG__CORE__V3__HTTP_PROTOCOL_OPTIONS__INIT);
    common->idle_timeout = dur(3600, 0);
    common->max_requests_per_connection = u32(100);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo =
        NEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions,
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__INIT);
    hpo->upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
    hpo->explicit_http_config = ex;
    hpo->common_http_protocol_options = common;
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *ent =
        NEW(Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT);
    ent->key = (char *)"envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    ent->value = pack_any(
        &hpo->base, "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    pb->n_typed_extension_protocol_options = 1;
    pb->typed_extension_protocol_options = T(sizeof(ent));
    pb->typed_extension_protocol_options[0] = ent;

    /* Istio's mTLS switch: tlsMode=istio endpoints get TLS, the rest plaintext. */
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *tls =
        NEW(Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT);
    tls->sni = (char *)"outbound_.9080_._.reviews.default.svc.cluster.local";
    Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m0 =
        NEW(Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TRANSPORT_SOCKET_MATCH__INIT);
    m0->name = (char *)"tlsMode-istio";
    m0->match = struct1("tlsMode", "istio");
    m0->transport_socket = tsock(
        "envoy.transport_sockets.tls",
        pack_any(
            &tls->base,
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"));
    Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m1 =
        NEW(Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TRANSPORT_SOCKET_MATCH__INIT);
    m1->name = (char *)"tlsMode-disabled";
    m1->match = NEW(Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
    m1->transport_socket = tsock("envoy.transport_sockets.raw_buffer", NULL);
    pb->n_transport_socket_matches = 2;
    pb->transport_socket_matches = T(2 * sizeof(m0));
    pb->transport_socket_matches[0] = m0;
    pb->transport_socket_matches[1] = m1;

    struct mp_cluster *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, &err), 0);
    assert_null(err);
    assert_string_equal(c->name, "outbound|9080||reviews.default.svc.cluster.local");
    assert_int_equal(c->type, MP_CLUSTER_EDS);
    assert_string_equal(c->eds_service_name, "outbound|9080||reviews.default.svc.cluster.local");
    assert_int_equal(c->connect_timeout_ms, 10000);
    assert_int_equal(c->lb.policy, MP_LB_LEAST_REQUEST);
    assert_int_equal(c->lb.healthy_panic_threshold, 0);
    assert_int_equal(c->circuit_breakers[MP_ROUTING_DEFAULT].max_requests, 4294967295u);
    assert_true(c->circuit_breakers[MP_ROUTING_DEFAULT].track_remaining);
    assert_int_equal(c->circuit_breakers[MP_ROUTING_HIGH].max_requests, 1024); /* default */
    assert_int_equal(c->upstream_protocol, MP_UPSTREAM_HTTP2);
    assert_int_equal(c->http2.max_concurrent_streams, 1073741824);
    assert_int_equal(c->http2.initial_stream_window_size, 268435456);
    assert_int_equal(c->idle_timeout_ms, 3600000);
    assert_int_equal(c->max_requests_per_connection, 100);
    assert_null(c->static_hosts);
    assert_null(c->transport_socket.name);
    assert_int_equal(c->n_transport_socket_matches, 2);

    /* Per-host transport socket: by the endpoint's envoy.transport_socket_match metadata. */
    struct mp_host h_mtls = {0}, h_plain = {0};
    struct mp_kv md = {(char *)"envoy.transport_socket_match", (char *)"tlsMode",
                       (char *)"s:istio"};
    h_mtls.metadata = &md;
    h_mtls.n_metadata = 1;
    const struct mp_transport_socket *ts = mp_cluster_transport_socket_for(c, &h_mtls);
    assert_string_equal(ts->name, "envoy.transport_sockets.tls");
    assert_string_equal(
        ts->typed_config.type_url,
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *back =
        envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__unpack(
            NULL, ts->typed_config.len, ts->typed_config.data);
    assert_non_null(back);
    assert_string_equal(back->sni, "outbound_.9080_._.reviews.default.svc.cluster.local");
    protobuf_c_message_free_unpacked(&back->base, NULL);
    assert_null(mp_cluster_transport_socket_for(c, &h_plain)->name); /* raw_buffer = plaintext */

    mp_cluster_free(c);
    free_all();
}

/* A STATIC cluster as in Envoy's front-proxy examples, plus a pipe and priorities. */
static void static_cluster_hosts(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("service_backend", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    pb->connect_timeout = dur(0, 250000000);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = new_cla("service_backend");
    Envoy__Config__Endpoint__V3__LbEndpoint *p0[] = {
        ep(sock("10.1.2.3", 8080), 3, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY),
        ep(sock("2001:db8::1", 80), 0, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY),
    };
    Envoy__Config__Endpoint__V3__LbEndpoint *p1[] = {
        ep(pipe_addr("/var/run/backend.sock"), 0, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DEGRADED),
    };
    add_locality(cla, "b", 1, 1, p1); /* listed first, but priority 1 */
    add_locality(cla, "a", 0, 2, p0)->load_balancing_weight = u32(7);
    p0[0]->metadata = metadata1("istio", "workload", "backend;default");
    pb->load_assignment = cla;

    struct mp_cluster *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, &err), 0);
    assert_int_equal(c->connect_timeout_ms, 250);
    struct mp_host_set *hs = c->static_hosts;
    assert_non_null(hs);
    assert_int_equal(hs->n_hosts, 3);
    assert_int_equal(hs->n_priorities, 2);
    assert_int_equal(hs->priorities[0].n_hosts, 2);
    assert_int_equal(hs->priorities[0].n_healthy, 1);
    assert_int_equal(hs->priorities[1].n_degraded, 1);
    assert_string_equal(hs->hosts[0].addr_str, "10.1.2.3:8080");
    assert_int_equal(hs->hosts[0].weight, 3);
    assert_string_equal(mp_host_metadata_get(&hs->hosts[0], "istio", "workload"),
                        "s:backend;default");
    assert_null(mp_host_metadata_get(&hs->hosts[0], "istio", "nope"));
    assert_string_equal(hs->hosts[1].addr_str, "[2001:db8::1]:80");
    assert_int_equal(hs->hosts[1].health, MP_HOST_UNHEALTHY);
    assert_int_equal(hs->hosts[1].weight, 1);
    assert_string_equal(hs->hosts[2].addr_str, "/var/run/backend.sock");
    assert_int_equal(hs->hosts[2].addr.ss_family, AF_UNIX);
    assert_int_equal(hs->hosts[2].priority, 1);
    assert_string_equal(hs->localities[hs->hosts[0].locality_index].locality.zone, "a");
    assert_int_equal(hs->localities[hs->hosts[0].locality_index].weight, 7);
    for (size_t i = 0; i < hs->n_hosts; i++)
        assert_int_equal(hs->hosts[i].index, i);

    /* The host set drives a load balancer directly. */
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&c->lb, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 1, &w), 0);
    /*
     * P0 is half healthy (70% load, 50% is not below the panic threshold) and
     * P1's degraded host takes the other 30%: the unhealthy host never serves.
     */
    int on_p0 = 0;
    for (int i = 0; i < 1000; i++) {
        struct mp_host *h = mp_lb_pick(w, NULL);
        assert_ptr_not_equal(h, &hs->hosts[1]);
        on_p0 += h == &hs->hosts[0];
    }
    assert_in_range(on_p0, 600, 800);
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_cluster_free(c);
    free_all();
}

static void cla_errors_name_the_field(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("s", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = new_cla("s");
    Envoy__Config__Endpoint__V3__LbEndpoint *eps[] = {
        ep(sock("10.0.0.1", 80), 0, 0),
        ep(sock("10.0.0.2", 70000), 0, 0),
    };
    add_locality(cla, "a", 0, 2, eps);
    pb->load_assignment = cla;
    expect_cluster_err(pb, "load_assignment.endpoints[0].lb_endpoints[1].endpoint.address."
                           "socket_address.port_value: port 70000 out of range");

    /* STATIC with a host name: Envoy's wording. */
    eps[1]->endpoint->address = sock("backend.example.com", 80);
    expect_cluster_err(pb, "load_assignment.endpoints[0].lb_endpoints[1].endpoint.address."
                           "socket_address.address: malformed IP address: backend.example.com. "
                           "Consider setting resolver_name or setting cluster type to "
                           "'STRICT_DNS' or 'LOGICAL_DNS'");

    /* The same CLA through EDS: the path starts at the CLA. */
    eps[1]->endpoint->address = sock("10.0.0.2", 80);
    eps[1]->load_balancing_weight = u32(0);
    struct mp_host_set *hs = NULL;
    char *err = NULL;
    assert_int_equal(mp_host_set_from_cla(cla, &hs, &err), MP_ERR_INVAL);
    assert_string_equal(err, "endpoints[0].lb_endpoints[1].load_balancing_weight: value must be "
                             "greater than or equal to 1");
    free(err);
    err = NULL;
    eps[1]->load_balancing_weight = NULL;
    eps[1]->endpoint->address = NULL;
    assert_int_equal(mp_host_set_from_cla(cla, &hs, &err), MP_ERR_INVAL);
    assert_string_equal(err, "endpoints[0].lb_endpoints[1].endpoint.address: must be set");
    free(err);
    err = NULL;
    eps[1]->endpoint->address = pipe_addr("");
    assert_int_equal(mp_host_set_from_cla(cla, &hs, &err), MP_ERR_INVAL);
    assert_string_equal(
        err, "endpoints[0].lb_endpoints[1].endpoint.address.pipe.path: must not be empty");
    free(err);
    err = NULL;
    eps[1]->endpoint->address = sock("10.0.0.2", 80);
    cla->policy = NEW(Envoy__Config__Endpoint__V3__ClusterLoadAssignment__Policy,
                      ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__POLICY__INIT);
    cla->policy->overprovisioning_factor = u32(200);
    assert_int_equal(mp_host_set_from_cla(cla, &hs, &err), 0);
    assert_int_equal(hs->overprovisioning_factor, 200);
    assert_int_equal(hs->n_hosts, 2);
    mp_host_set_free(hs);
    free_all();
}

static void cluster_errors_name_the_field(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("c", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    pb->connect_timeout = dur(0, 0);
    expect_cluster_err(pb, "connect_timeout: must be greater than 0s");
    pb->connect_timeout = dur(-1, 0);
    expect_cluster_err(pb, "connect_timeout: must not be negative");
    pb->connect_timeout = NULL;

    pb->lb_policy = (Envoy__Config__Cluster__V3__Cluster__LbPolicy)42;
    expect_cluster_err(pb, "lb_policy: unknown load balancing policy 42");
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;

    Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig *rh =
        NEW(Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__RING_HASH_LB_CONFIG__INIT);
    rh->minimum_ring_size = u64(4096);
    rh->maximum_ring_size = u64(1024);
    pb->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG;
    pb->ring_hash_lb_config = rh;
    expect_cluster_err(pb,
                       "ring_hash_lb_config: minimum_ring_size (4096) > maximum_ring_size (1024)");
    rh->maximum_ring_size = u64(16777216);
    expect_cluster_err(
        pb, "ring_hash_lb_config.maximum_ring_size: value must be less than or equal to 8388608");

    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV;
    Envoy__Config__Cluster__V3__Cluster__MaglevLbConfig *mg =
        NEW(Envoy__Config__Cluster__V3__Cluster__MaglevLbConfig,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__MAGLEV_LB_CONFIG__INIT);
    mg->table_size = u64(65536);
    pb->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG;
    pb->maglev_lb_config = mg;
    expect_cluster_err(pb, "maglev_lb_config.table_size: the table size of maglev must be prime "
                           "number, got 65536");
    mg->table_size = u64(65521);
    struct mp_cluster *c = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->lb.policy, MP_LB_MAGLEV);
    assert_int_equal(c->lb.maglev.table_size, 65521);
    mp_cluster_free(c);
    pb->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG__NOT_SET;

    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
    pb->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST;
    expect_cluster_err(pb, "lb_policy: LB policy ROUND_ROBIN is not valid for Cluster type "
                           "ORIGINAL_DST. Only 'CLUSTER_PROVIDED' is allowed with cluster type "
                           "'ORIGINAL_DST'");
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0); /* Istio's PassthroughCluster */
    assert_int_equal(c->type, MP_CLUSTER_ORIGINAL_DST);
    mp_cluster_free(c);
    pb->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    expect_cluster_err(pb, "lb_policy: LB policy CLUSTER_PROVIDED is not valid for Cluster type "
                           "STATIC. 'CLUSTER_PROVIDED' is allowed only with cluster type "
                           "'ORIGINAL_DST'");
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;

    /* load_balancing_policy: the first policy this build knows wins. */
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LOAD_BALANCING_POLICY_CONFIG;
    expect_cluster_err(pb, "load_balancing_policy: must be set when lb_policy is "
                           "LOAD_BALANCING_POLICY_CONFIG");
    Envoy__Config__Cluster__V3__LoadBalancingPolicy *lbp =
        NEW(Envoy__Config__Cluster__V3__LoadBalancingPolicy,
            ENVOY__CONFIG__CLUSTER__V3__LOAD_BALANCING_POLICY__INIT);
    const char *types[] = {"type.googleapis.com/envoy.extensions.load_balancing_policies."
                           "client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin",
                           "type.googleapis.com/envoy.extensions.load_balancing_policies.maglev."
                           "v3.Maglev"};
    lbp->n_policies = 2;
    lbp->policies = T(2 * sizeof(*lbp->policies));
    for (int i = 0; i < 2; i++) {
        Envoy__Config__Cluster__V3__LoadBalancingPolicy__Policy *pol =
            NEW(Envoy__Config__Cluster__V3__LoadBalancingPolicy__Policy,
                ENVOY__CONFIG__CLUSTER__V3__LOAD_BALANCING_POLICY__POLICY__INIT);
        pol->typed_extension_config = NEW(Envoy__Config__Core__V3__TypedExtensionConfig,
                                          ENVOY__CONFIG__CORE__V3__TYPED_EXTENSION_CONFIG__INIT);
        pol->typed_extension_config->name = (char *)"p";
        pol->typed_extension_config->typed_config =
            NEW(Google__Protobuf__Any, GOOGLE__PROTOBUF__ANY__INIT);
        pol->typed_extension_config->typed_config->type_url = (char *)types[i];
        lbp->policies[i] = pol;
    }
    pb->load_balancing_policy = lbp;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->lb.policy, MP_LB_MAGLEV);
    mp_cluster_free(c);
    lbp->n_policies = 1;
    expect_cluster_err(pb, "load_balancing_policy: no supported policy found");
    pb->load_balancing_policy = NULL;
    pb->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;

    pb->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    expect_cluster_err(pb,
                       "eds_cluster_config: cannot create an EDS cluster without an EDS config");
    pb->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;

    pb->name = (char *)"";
    expect_cluster_err(pb, "name: value length must be at least 1 characters");
    pb->name = (char *)"c";

    /* Unknown protocol-options extension, and a bad HTTP/2 window inside the known one. */
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *ent =
        NEW(Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT);
    ent->key = (char *)"envoy.filters.network.thrift_proxy";
    pb->n_typed_extension_protocol_options = 1;
    pb->typed_extension_protocol_options = T(sizeof(ent));
    pb->typed_extension_protocol_options[0] = ent;
    expect_cluster_err(pb,
                       "typed_extension_protocol_options[\"envoy.filters.network.thrift_proxy\"]: "
                       "no protocol options implementation for this name");
    Envoy__Config__Core__V3__Http2ProtocolOptions *h2 =
        NEW(Envoy__Config__Core__V3__Http2ProtocolOptions,
            ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT);
    h2->initial_stream_window_size = u32(1000);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__UseDownstreamHttpConfig *ud = NEW(
        Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__UseDownstreamHttpConfig,
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__USE_DOWNSTREAM_HTTP_CONFIG__INIT);
    ud->http2_protocol_options = h2;
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo =
        NEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions,
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__INIT);
    hpo->upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG;
    hpo->use_downstream_protocol_config = ud;
    ent->key = (char *)"envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    ent->value = pack_any(
        &hpo->base, "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    expect_cluster_err(pb, "typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                           "HttpProtocolOptions\"].use_downstream_protocol_config."
                           "http2_protocol_options.initial_stream_window_size: 1000 out of range "
                           "[65535, 2147483647]");
    h2->initial_stream_window_size = u32(65536);
    ent->value = pack_any(
        &hpo->base, "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->upstream_protocol, MP_UPSTREAM_USE_DOWNSTREAM);
    assert_int_equal(c->http2.initial_stream_window_size, 65536);
    mp_cluster_free(c);
    ent->value->type_url = (char *)"type.googleapis.com/google.protobuf.Empty";
    expect_cluster_err(pb, "typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                           "HttpProtocolOptions\"].type_url: expected type.googleapis.com/envoy."
                           "extensions.upstreams.http.v3.HttpProtocolOptions, got "
                           "\"type.googleapis.com/google.protobuf.Empty\"");
    free_all();
}

/* Envoy's legacy field still selects HTTP/2 (older control planes send it). */
static void legacy_http2_protocol_options(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("xds-grpc", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    pb->http2_protocol_options = NEW(Envoy__Config__Core__V3__Http2ProtocolOptions,
                                     ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = new_cla("xds-grpc");
    Envoy__Config__Endpoint__V3__LbEndpoint *eps[] = {ep(pipe_addr("./etc/istio/proxy/XDS"), 0, 0)};
    add_locality(cla, "", 0, 1, eps);
    pb->load_assignment = cla;
    struct mp_cluster *c = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->upstream_protocol, MP_UPSTREAM_HTTP2);
    assert_string_equal(c->static_hosts->hosts[0].addr_str, "./etc/istio/proxy/XDS");
    mp_cluster_free(c);

    /* Not together with the typed extension options. */
    Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *ent =
        NEW(Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TYPED_EXTENSION_PROTOCOL_OPTIONS_ENTRY__INIT);
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *hpo =
        NEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions,
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__INIT);
    hpo->upstream_protocol_options_case =
        ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_AUTO_CONFIG;
    hpo->auto_config =
        NEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__AutoHttpConfig,
            ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__AUTO_HTTP_CONFIG__INIT);
    ent->key = (char *)"envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    ent->value = pack_any(
        &hpo->base, "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    pb->n_typed_extension_protocol_options = 1;
    pb->typed_extension_protocol_options = T(sizeof(ent));
    pb->typed_extension_protocol_options[0] = ent;
    expect_cluster_err(pb, "typed_extension_protocol_options: cannot be combined with the "
                           "deprecated http_protocol_options, http2_protocol_options or "
                           "common_http_protocol_options fields");
    pb->http2_protocol_options = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->upstream_protocol, MP_UPSTREAM_AUTO);
    mp_cluster_free(c);
    free_all();
}

static void dns_clusters_keep_names(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("zipkin", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS);
    pb->dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
    pb->dns_refresh_rate = dur(30, 0);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = new_cla("zipkin");
    Envoy__Config__Endpoint__V3__LbEndpoint *eps[] = {
        ep(sock("zipkin.istio-system", 9411), 2, 0),
        ep(sock("localhost", 9412), 0, 0),
    };
    add_locality(cla, "z", 0, 2, eps);
    pb->load_assignment = cla;
    struct mp_cluster *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, &err), 0);
    assert_int_equal(c->type, MP_CLUSTER_STRICT_DNS);
    assert_int_equal(c->dns_family, MP_DNS_V4_ONLY);
    assert_int_equal(c->dns_refresh_ms, 30000);
    assert_null(c->static_hosts);
    assert_int_equal(c->n_dns_targets, 2);
    assert_string_equal(c->dns_targets[0].hostname, "zipkin.istio-system");
    assert_int_equal(c->dns_targets[0].port, 9411);
    assert_int_equal(c->dns_targets[0].weight, 2);
    assert_string_equal(c->dns_targets[1].locality.zone, "z");
    mp_cluster_free(c);

    pb->dns_refresh_rate = dur(0, 1000000);
    expect_cluster_err(pb, "dns_refresh_rate: must be greater than 1ms");
    pb->dns_refresh_rate = NULL;

    /* LOGICAL_DNS takes exactly one endpoint. */
    pb->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
    expect_cluster_err(pb, "load_assignment: LOGICAL_DNS clusters must have a single "
                           "locality_lb_endpoint and a single lb_endpoint");
    cla->endpoints[0]->n_lb_endpoints = 1;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->n_dns_targets, 1);
    mp_cluster_free(c);
    eps[0]->endpoint->address->socket_address->port_value = 65536;
    expect_cluster_err(pb, "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address."
                           "socket_address.port_value: port 65536 out of range");
    free_all();
}

static void defaults_match_envoy(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *pb =
        new_cluster("bare", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    struct mp_cluster *c = NULL;
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_int_equal(c->per_connection_buffer_limit, 1048576);
    assert_int_equal(c->lb.policy, MP_LB_ROUND_ROBIN);
    assert_int_equal(c->lb.healthy_panic_threshold, 50);
    assert_int_equal(c->lb.maglev.table_size, 65537);
    assert_int_equal(c->lb.ring_hash.min_ring_size, 1024);
    assert_int_equal(c->upstream_protocol, MP_UPSTREAM_HTTP1);
    assert_int_equal(c->circuit_breakers[0].max_connections, 1024);
    assert_int_equal(c->circuit_breakers[0].max_retries, 3);
    assert_int_equal(c->dns_refresh_ms, 5000);
    assert_false(c->outlier.enabled);
    assert_non_null(c->static_hosts);
    assert_int_equal(c->static_hosts->n_hosts, 0);
    /* Clusters are shared by reference. */
    struct mp_cluster *again = mp_cluster_ref(c);
    mp_cluster_unref(c);
    assert_string_equal(again->name, "bare");
    mp_cluster_free(again);

    Envoy__Config__Cluster__V3__OutlierDetection *od =
        NEW(Envoy__Config__Cluster__V3__OutlierDetection,
            ENVOY__CONFIG__CLUSTER__V3__OUTLIER_DETECTION__INIT);
    od->consecutive_5xx = u32(7);
    od->interval = dur(5, 0);
    od->max_ejection_percent = u32(101);
    pb->outlier_detection = od;
    expect_cluster_err(
        pb, "outlier_detection.max_ejection_percent: value must be less than or equal to 100");
    od->max_ejection_percent = u32(100);
    assert_int_equal(mp_cluster_from_proto(pb, &c, NULL), 0);
    assert_true(c->outlier.enabled);
    assert_int_equal(c->outlier.consecutive_5xx, 7);
    assert_int_equal(c->outlier.interval_ms, 5000);
    assert_int_equal(c->outlier.base_ejection_time_ms, 30000);
    mp_cluster_free(c);
    free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(istio_outbound_eds_cluster),
        cmocka_unit_test(static_cluster_hosts),
        cmocka_unit_test(cla_errors_name_the_field),
        cmocka_unit_test(cluster_errors_name_the_field),
        cmocka_unit_test(legacy_http2_protocol_options),
        cmocka_unit_test(dns_clusters_keep_names),
        cmocka_unit_test(defaults_match_envoy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
