/* Unit tests for xds_source.c: bootstrap config sources -> grpc targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"
#include "xds/xds_source.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

static Bootstrap *parse(const char *yaml)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml),
                             &envoy__config__bootstrap__v3__bootstrap__descriptor, 0, &m, &err);
    if (rc)
        fail_msg("bootstrap: %s", err ? err : "?");
    return (Bootstrap *)m;
}

static const char *const ISTIO = "dynamic_resources:\n"
                                 "  ads_config:\n"
                                 "    api_type: DELTA_GRPC\n"
                                 "    transport_api_version: V3\n"
                                 "    grpc_services: [{envoy_grpc: {cluster_name: xds-grpc}}]\n"
                                 "  cds_config: {ads: {}, initial_fetch_timeout: 0s}\n"
                                 "  lds_config: {ads: {}, initial_fetch_timeout: 0s}\n"
                                 "static_resources:\n"
                                 "  clusters:\n"
                                 "  - name: xds-grpc\n"
                                 "    type: STATIC\n"
                                 "    load_assignment:\n"
                                 "      cluster_name: xds-grpc\n"
                                 "      endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: "
                                 "{path: ./etc/istio/proxy/XDS}}}}]}]\n";

static void istio_unix_socket(void **state)
{
    (void)state;
    Bootstrap *b = parse(ISTIO);
    struct mp_xds_source src;
    assert_int_equal(mp_xds_source_ads(b, &src, NULL), 0);
    assert_string_equal(src.target, "unix:./etc/istio/proxy/XDS");
    assert_int_equal(src.mode, MP_XDS_DELTA);
    assert_false(src.aggregated); /* DELTA_GRPC as Istio writes it for ADS */
    assert_int_equal(src.initial_fetch_timeout_ms, 0);
    mp_xds_source_clear(&src);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void tcp_and_v6_and_google_grpc(void **state)
{
    (void)state;
    Bootstrap *b = parse("dynamic_resources:\n"
                         "  ads_config:\n"
                         "    api_type: AGGREGATED_GRPC\n"
                         "    grpc_services: [{envoy_grpc: {cluster_name: cp}}]\n"
                         "static_resources:\n"
                         "  clusters:\n"
                         "  - name: cp\n"
                         "    load_assignment:\n"
                         "      cluster_name: cp\n"
                         "      endpoints: [{lb_endpoints: [{endpoint: {address: "
                         "{socket_address: {address: '::1', port_value: 18000}}}}]}]\n");
    struct mp_xds_source src;
    assert_int_equal(mp_xds_source_ads(b, &src, NULL), 0);
    assert_string_equal(src.target, "[::1]:18000");
    assert_int_equal(src.mode, MP_XDS_SOTW);
    assert_true(src.aggregated);
    assert_int_equal(src.initial_fetch_timeout_ms, 15000);
    mp_xds_source_clear(&src);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    b = parse("dynamic_resources:\n"
              "  ads_config:\n"
              "    api_type: GRPC\n"
              "    grpc_services: [{google_grpc: {target_uri: '127.0.0.1:9', stat_prefix: x}}]\n");
    assert_int_equal(mp_xds_source_ads(b, &src, NULL), 0);
    assert_string_equal(src.target, "127.0.0.1:9");
    mp_xds_source_clear(&src);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void errors_name_the_field(void **state)
{
    (void)state;
    struct mp_xds_source src;
    char *err = NULL;
    Bootstrap *b = parse("node: {id: x}\n");
    assert_int_equal(mp_xds_source_ads(b, &src, &err), MP_ERR_NOTFOUND);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    b = parse("dynamic_resources:\n"
              "  ads_config:\n"
              "    api_type: GRPC\n"
              "    grpc_services: [{envoy_grpc: {cluster_name: missing}}]\n");
    assert_int_equal(mp_xds_source_ads(b, &src, &err), MP_ERR_INVAL);
    assert_string_equal(err, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc."
                             "cluster_name: no static cluster \"missing\"");
    free(err);
    err = NULL;
    protobuf_c_message_free_unpacked(&b->base, NULL);

    b = parse("dynamic_resources:\n"
              "  ads_config: {api_type: REST, cluster_names: [a]}\n");
    assert_int_equal(mp_xds_source_ads(b, &src, &err), MP_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "dynamic_resources.ads_config.api_type"));
    free(err);
    err = NULL;
    protobuf_c_message_free_unpacked(&b->base, NULL);

    b = parse("dynamic_resources:\n"
              "  ads_config:\n"
              "    api_type: GRPC\n"
              "    grpc_services: [{envoy_grpc: {cluster_name: cp}}]\n"
              "static_resources:\n"
              "  clusters: [{name: cp}]\n");
    assert_int_equal(mp_xds_source_ads(b, &src, &err), MP_ERR_INVAL);
    assert_string_equal(err, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc."
                             "cluster_name: cluster \"cp\" has no endpoint address in "
                             "load_assignment");
    free(err);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(istio_unix_socket),
        cmocka_unit_test(tcp_and_v6_and_google_grpc),
        cmocka_unit_test(errors_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
