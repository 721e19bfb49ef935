/*
 * Failing-allocator run for the cluster module (translation, host sets, load
 * balancers, DNS host sets): the n-th allocation fails, for every n until a
 * run succeeds; each run must fail cleanly and leave no allocation behind.
 * The failing allocator is nomem_alloc.c's; under sanitizers the scenario
 * runs once (LeakSanitizer checks it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_pb_build.h"
#include "nomem_alloc.h"
#include "proxy/cluster_dns.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "xds/xds_translate_cluster.h"

static Envoy__Config__Cluster__V3__Cluster *static_pb, *dns_pb;

/* Built once, outside the counted region. */
static void build_protos(void)
{
    static_pb = new_cluster("outbound|80||svc",
                            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    static_pb->connect_timeout = dur(1, 0);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla = new_cla("svc");
    Envoy__Config__Endpoint__V3__LbEndpoint *p0[] = {
        ep(sock("10.0.0.1", 80), 2, 0),
        ep(sock("10.0.0.2", 80), 1, ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DEGRADED),
        ep(pipe_addr("/tmp/x.sock"), 1, 0),
    };
    Envoy__Config__Endpoint__V3__LbEndpoint *p1[] = {ep(sock("::1", 81), 0, 0)};
    add_locality(cla, "a", 0, 3, p0)->load_balancing_weight = u32(2);
    add_locality(cla, "b", 1, 1, p1);
    p0[0]->metadata = metadata1("envoy.transport_socket_match", "tlsMode", "istio");
    static_pb->load_assignment = cla;

    Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m0 =
        NEW(Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch,
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__TRANSPORT_SOCKET_MATCH__INIT);
    m0->name = (char *)"tlsMode-istio";
    m0->match = struct1("tlsMode", "istio");
    Envoy__Config__Core__V3__Http2ProtocolOptions *h2 =
        NEW(Envoy__Config__Core__V3__Http2ProtocolOptions,
            ENVOY__CONFIG__CORE__V3__HTTP2_PROTOCOL_OPTIONS__INIT);
    m0->transport_socket =
        tsock("envoy.transport_sockets.tls", pack_any(&h2->base, "type.googleapis.com/x.Y"));
    static_pb->n_transport_socket_matches = 1;
    static_pb->transport_socket_matches = T(sizeof(m0));
    static_pb->transport_socket_matches[0] = m0;

    dns_pb = new_cluster("dns", ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS);
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *dcla = new_cla("dns");
    Envoy__Config__Endpoint__V3__LbEndpoint *d0[] = {ep(sock("backend.local", 80), 0, 0),
                                                     ep(sock("other.local", 81), 0, 0)};
    add_locality(dcla, "z", 0, 2, d0);
    dns_pb->load_assignment = dcla;
}

static bool lb_round(struct mp_cluster *c, enum mp_lb_policy policy, bool localities)
{
    struct mp_lb_config cfg = c->lb;
    cfg.policy = policy;
    cfg.locality_weighted = localities;
    cfg.maglev.table_size = 211;
    struct mp_lb *lb = NULL;
    char *err = NULL;
    int rc = mp_lb_new(&cfg, c->static_hosts, &lb, &err);
    free(err);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_NOMEM);
        return false;
    }
    struct mp_lb_worker *w = NULL;
    rc = mp_lb_worker_new(lb, 3, &w);
    mp_lb_unref(lb);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_NOMEM);
        return false;
    }
    for (int i = 0; i < 20; i++) {
        struct mp_host *h = mp_lb_pick(w, NULL);
        assert_non_null(h);
        mp_lb_worker_rq_start(w, h);
    }
    mp_lb_worker_unref(w);
    return true;
}

static bool scenario(void)
{
    bool ok = true;
    struct mp_cluster *c = NULL;
    char *err = NULL;
    int rc = mp_cluster_from_proto(static_pb, &c, &err);
    free(err);
    if (rc != 0) {
        /* protobuf-c cannot tell a failed allocation from bad input: INVAL is possible. */
        assert_true(rc == MP_ERR_NOMEM || rc == MP_ERR_INVAL);
        return false;
    }
    const enum mp_lb_policy policies[] = {MP_LB_ROUND_ROBIN, MP_LB_LEAST_REQUEST, MP_LB_RANDOM,
                                          MP_LB_RING_HASH, MP_LB_MAGLEV};
    for (size_t i = 0; i < MP_ARRAY_LEN(policies); i++)
        ok = lb_round(c, policies[i], i % 2 == 0) && ok;
    assert_non_null(mp_cluster_transport_socket_for(c, &c->static_hosts->hosts[0]));
    mp_cluster_free(c);

    c = NULL;
    err = NULL;
    rc = mp_cluster_from_proto(dns_pb, &c, &err);
    free(err);
    if (rc != 0) {
        assert_true(rc == MP_ERR_NOMEM || rc == MP_ERR_INVAL);
        return false;
    }
    struct sockaddr_storage ss[2];
    socklen_t lens[2] = {sizeof(struct sockaddr_in), sizeof(struct sockaddr_in)};
    memset(ss, 0, sizeof(ss));
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss[i];
        sin->sin_family = AF_INET;
        sin->sin_port = htons(80);
        sin->sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)i);
    }
    struct mp_dns_answer a = {.addrs = ss, .addr_lens = lens, .n_addrs = 2};
    const struct mp_dns_answer *answers[2] = {&a, &a};
    struct mp_host_set *hs = NULL;
    rc = mp_host_set_from_dns(c, answers, &hs);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_NOMEM);
        ok = false;
    } else {
        assert_int_equal(hs->n_hosts, 4);
        mp_host_set_free(hs);
    }
    mp_cluster_free(c);
    return ok;
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    build_protos();
    assert_true(scenario());
    nomem_check_every_failure(scenario, NULL, 20000, 100);
    free_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
