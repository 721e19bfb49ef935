/* Unit tests for filters/istio_ext.c (and the TypedStruct handling in
 * xds_translate_listener.c): the extensions istiod configures on a sidecar
 * are found by type and by name, TypedStruct wrappers are read, istio.alpn's
 * wire format is checked, and a TypedStruct is refused for filters whose
 * config matters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "filters/istio_ext.h"
#include "proxy/cluster.h"
#include "proxy/http_filter.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_yaml.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "xds/type/v3/typed_struct.pb-c.h"
#include "xds/xds_translate_cluster.h"
#include "xds/xds_translate_listener.h"

static void test_found_by_type_and_name(void **state)
{
    (void)state;
    static const struct {
        const char *name, *type;
        const struct mp_http_filter_ops *ops;
    } cases[] = {
        {"istio.metadata_exchange", "type.googleapis.com/io.istio.http.peer_metadata.Config",
         &mp_http_filter_istio_metadata_exchange},
        {"istio.stats", "type.googleapis.com/stats.PluginConfig", &mp_http_filter_istio_stats},
        {"envoy.filters.http.grpc_stats",
         "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
         &mp_http_filter_grpc_stats},
        {"istio.alpn",
         "type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
         &mp_http_filter_istio_alpn},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        assert_ptr_equal(mp_http_filter_find("x", cases[i].type), cases[i].ops);
        assert_ptr_equal(mp_http_filter_find(cases[i].name, NULL), cases[i].ops);
    }
    assert_ptr_equal(mp_network_filter_find("x", "type.googleapis.com/stats.PluginConfig"),
                     &mp_network_filter_istio_stats);
    assert_ptr_equal(
        mp_network_filter_find(
            "x", "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"),
        &mp_network_filter_istio_metadata_exchange);
}

static void test_typed_struct_inner_type(void **state)
{
    (void)state;
    Udpa__Type__V1__TypedStruct u = UDPA__TYPE__V1__TYPED_STRUCT__INIT;
    u.type_url = "type.googleapis.com/io.istio.http.peer_metadata.Config";
    uint8_t buf[256];
    size_t n = udpa__type__v1__typed_struct__pack(&u, buf);
    char *inner = NULL, *err = NULL;
    assert_int_equal(mp_istio_ext_typed_struct_type("type.googleapis.com/udpa.type.v1.TypedStruct",
                                                    buf, n, &inner, &err),
                     1);
    assert_string_equal(inner, u.type_url);
    free(inner);

    Xds__Type__V3__TypedStruct x = XDS__TYPE__V3__TYPED_STRUCT__INIT;
    x.type_url = "type.googleapis.com/stats.PluginConfig";
    n = xds__type__v3__typed_struct__pack(&x, buf);
    assert_int_equal(
        mp_istio_ext_typed_struct_type("xds.type.v3.TypedStruct", buf, n, &inner, &err), 1);
    assert_string_equal(inner, "type.googleapis.com/stats.PluginConfig");
    free(inner);

    /* not a TypedStruct: nothing to unwrap */
    assert_int_equal(mp_istio_ext_typed_struct_type("type.googleapis.com/stats.PluginConfig", buf,
                                                    n, &inner, &err),
                     0);
    assert_null(inner);

    /* a TypedStruct naming nothing, and bytes that do not decode */
    Udpa__Type__V1__TypedStruct empty = UDPA__TYPE__V1__TYPED_STRUCT__INIT;
    n = udpa__type__v1__typed_struct__pack(&empty, buf);
    assert_int_equal(
        mp_istio_ext_typed_struct_type("udpa.type.v1.TypedStruct", buf, n, &inner, &err),
        MP_ERR_INVAL);
    assert_non_null(strstr(err, "type_url is required"));
    free(err);
    err = NULL;
    static const uint8_t junk[] = {0x0a, 0x7f, 'x'};
    assert_int_equal(mp_istio_ext_typed_struct_type("udpa.type.v1.TypedStruct", junk, sizeof(junk),
                                                    &inner, &err),
                     MP_ERR_INVAL);
    assert_null(inner);
    free(err);

    assert_true(mp_istio_ext_takes_typed_struct("stats.PluginConfig"));
    assert_false(
        mp_istio_ext_takes_typed_struct("envoy.extensions.filters.http.fault.v3.HTTPFault"));
}

static void test_alpn_wire_format(void **state)
{
    (void)state;
    /* FilterConfig{alpn_override: [{upstream_protocol: HTTP11, alpn_override:
     * ["istio-http/1.1", "istio"]}]} as istiod encodes it */
    static const uint8_t ok[] = {0x0a, 0x19, 0x08, 0x01, 0x12, 0x0e, 'i', 's', 't',
                                 'i',  'o',  '-',  'h',  't',  't',  'p', '/', '1',
                                 '.',  '1',  0x12, 0x05, 'i',  's',  't', 'i', 'o'};
    void *cfg = NULL;
    char *err = NULL;
    const struct mp_http_filter_ops *ops = &mp_http_filter_istio_alpn;
    assert_int_equal(ops->parse(ok, sizeof(ok), &cfg, &err), 0);
    assert_non_null(cfg);
    ops->config_free(cfg);
    assert_int_equal(ops->parse(NULL, 0, &cfg, &err), 0);
    ops->config_free(cfg);

    /* truncated inside the override */
    assert_int_equal(ops->parse(ok, sizeof(ok) - 3, &cfg, &err), MP_ERR_INVAL);
    assert_non_null(err);
    free(err);
    err = NULL;
    /* upstream_protocol 7 does not exist */
    static const uint8_t bad_proto[] = {0x0a, 0x02, 0x08, 0x07};
    assert_int_equal(ops->parse(bad_proto, sizeof(bad_proto), &cfg, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "alpn_override[0].upstream_protocol"));
    free(err);
    err = NULL;
    /* an empty protocol name */
    static const uint8_t empty[] = {0x0a, 0x02, 0x12, 0x00};
    assert_int_equal(ops->parse(empty, sizeof(empty), &cfg, &err), MP_ERR_INVAL);
    free(err);
}

#define HCM_HEAD                                                                                   \
    "name: l\n"                                                                                    \
    "address: {socket_address: {address: 127.0.0.1, port_value: 9080}}\n"                          \
    "filter_chains:\n"                                                                             \
    "- filters:\n"                                                                                 \
    "  - name: istio.stats\n"                                                                      \
    "    typed_config: {'@type': type.googleapis.com/udpa.type.v1.TypedStruct,\n"                  \
    "                   type_url: type.googleapis.com/stats.PluginConfig, value: {}}\n"            \
    "  - name: envoy.filters.network.http_connection_manager\n"                                    \
    "    typed_config:\n"                                                                          \
    "      '@type': type.googleapis.com/"                                                          \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"          \
    "      stat_prefix: outbound_0.0.0.0_9080\n"                                                   \
    "      route_config: {name: r}\n"                                                              \
    "      http_filters:\n"

#define ROUTER                                                                                     \
    "      - name: envoy.filters.http.router\n"                                                    \
    "        typed_config: {'@type': "                                                             \
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

static int translate(const char *yaml, struct mp_listener_config **out, char **err)
{
    ProtobufCMessage *msg = NULL;
    char *perr = NULL;
    /* unknown Any types (Istio's own) stay as type URLs, as a binary
     * message from istiod would carry them */
    int rc = mp_pb_from_yaml(yaml, strlen(yaml), &envoy__config__listener__v3__listener__descriptor,
                             MP_PB_JSON_IGNORE_UNKNOWN, &msg, &perr);
    if (rc < 0)
        fail_msg("bad test yaml: %s", perr ? perr : "?");
    rc = mp_xds_translate_listener((Envoy__Config__Listener__V3__Listener *)msg, out, err);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

static void test_istio_chain_translates(void **state)
{
    (void)state;
    const char *yaml =
        HCM_HEAD "      - name: istio.metadata_exchange\n"
                 "        typed_config:\n"
                 "          '@type': type.googleapis.com/udpa.type.v1.TypedStruct\n"
                 "          type_url: type.googleapis.com/io.istio.http.peer_metadata.Config\n"
                 "          value: {upstream_discovery: [{istio_headers: {}}]}\n"
                 "      - name: istio.alpn\n"
                 "        typed_config: {'@type': type.googleapis.com/"
                 "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig}\n"
                 "      - name: envoy.filters.http.cors\n"
                 "        typed_config: {'@type': "
                 "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}\n"
                 "      - name: istio.stats\n"
                 "        typed_config: {'@type': type.googleapis.com/stats.PluginConfig}\n" ROUTER;
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    assert_int_equal(translate(yaml, &l, &err), 0);
    assert_null(err);
    const struct mp_filter_chain *c = &l->chains[0];
    assert_int_equal(c->n_network_filters, 1);
    assert_ptr_equal(c->network_filters[0].ops, &mp_network_filter_istio_stats);
    assert_int_equal(c->hcm->n_filters, 5);
    assert_ptr_equal(c->hcm->filters[0].ops, &mp_http_filter_istio_metadata_exchange);
    assert_ptr_equal(c->hcm->filters[1].ops, &mp_http_filter_istio_alpn);
    assert_string_equal(c->hcm->filters[2].ops->name, "envoy.filters.http.cors");
    assert_ptr_equal(c->hcm->filters[3].ops, &mp_http_filter_istio_stats);
    mp_listener_config_free(l);
}

static void test_typed_struct_refused_where_config_matters(void **state)
{
    (void)state;
    const char *yaml =
        HCM_HEAD "      - name: envoy.filters.http.fault\n"
                 "        typed_config:\n"
                 "          '@type': type.googleapis.com/udpa.type.v1.TypedStruct\n"
                 "          type_url: type.googleapis.com/envoy.extensions.filters.http.fault.v3."
                 "HTTPFault\n"
                 "          value: {abort: {http_status: 503}}\n" ROUTER;
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    assert_int_equal(translate(yaml, &l, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "http_filters[0].typed_config"));
    assert_non_null(strstr(err, "not a TypedStruct"));
    free(err);
    err = NULL;
    /* an unknown extension in a TypedStruct is named by its inner type */
    yaml = HCM_HEAD "      - name: acme.magic\n"
                    "        typed_config:\n"
                    "          '@type': type.googleapis.com/udpa.type.v1.TypedStruct\n"
                    "          type_url: type.googleapis.com/acme.Magic\n" ROUTER;
    assert_int_equal(translate(yaml, &l, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "unknown filter acme.magic of type acme.Magic"));
    free(err);
}

static int cluster(const char *yaml, char **err)
{
    ProtobufCMessage *msg = NULL;
    char *perr = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml), &envoy__config__cluster__v3__cluster__descriptor,
                             MP_PB_JSON_IGNORE_UNKNOWN, &msg, &perr);
    if (rc < 0)
        fail_msg("bad test yaml: %s", perr ? perr : "?");
    struct mp_cluster *c = NULL;
    rc = mp_cluster_from_proto((Envoy__Config__Cluster__V3__Cluster *)msg, &c, err);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (c)
        mp_cluster_free(c);
    return rc;
}

static void test_cluster_upstream_filters(void **state)
{
    (void)state;
    char *err = NULL;
    /* as istiod sends it on outbound and passthrough clusters */
    assert_int_equal(cluster("name: PassthroughCluster\n"
                             "type: ORIGINAL_DST\n"
                             "lb_policy: CLUSTER_PROVIDED\n"
                             "filters:\n"
                             "- name: istio.metadata_exchange\n"
                             "  typed_config: {'@type': type.googleapis.com/"
                             "envoy.tcp.metadataexchange.config.MetadataExchange}\n",
                             &err),
                     0);
    assert_null(err);
    /* anything else would change upstream bytes: refused with its name */
    assert_int_equal(cluster("name: c\n"
                             "type: STATIC\n"
                             "filters:\n"
                             "- name: acme.upstream_codec\n"
                             "  typed_config: {'@type': type.googleapis.com/acme.Codec}\n",
                             &err),
                     MP_ERR_INVAL);
    assert_non_null(strstr(err, "filters[0]: unsupported upstream network filter "
                                "acme.upstream_codec of type acme.Codec"));
    free(err);
}

static void test_cluster_bind_config(void **state)
{
    (void)state;
    ProtobufCMessage *msg = NULL;
    char *perr = NULL, *err = NULL;
    const char *yaml = "name: inbound|9080||\n"
                       "type: STATIC\n"
                       "upstream_bind_config: {source_address: {address: 127.0.0.6, "
                       "port_value: 0}}\n";
    assert_int_equal(mp_pb_from_yaml(yaml, strlen(yaml),
                                     &envoy__config__cluster__v3__cluster__descriptor, 0, &msg,
                                     &perr),
                     0);
    struct mp_cluster *c = NULL;
    assert_int_equal(mp_cluster_from_proto((Envoy__Config__Cluster__V3__Cluster *)msg, &c, &err),
                     0);
    protobuf_c_message_free_unpacked(msg, NULL);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&c->source_addr;
    assert_int_equal(c->source_addr_len, sizeof(*in));
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000006);
    mp_cluster_free(c);

    assert_int_equal(cluster("name: c\ntype: STATIC\n"
                             "upstream_bind_config: {source_address: {address: 127.0.0.6}, "
                             "freebind: true}\n",
                             &err),
                     MP_ERR_INVAL);
    assert_non_null(strstr(err, "upstream_bind_config: only source_address is supported"));
    free(err);
    err = NULL;
    assert_int_equal(cluster("name: c\ntype: STATIC\n"
                             "upstream_bind_config: {source_address: {address: pod.local}}\n",
                             &err),
                     MP_ERR_INVAL);
    assert_non_null(strstr(err, "upstream_bind_config.source_address.address"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_by_type_and_name),
        cmocka_unit_test(test_typed_struct_inner_type),
        cmocka_unit_test(test_alpn_wire_format),
        cmocka_unit_test(test_istio_chain_translates),
        cmocka_unit_test(test_typed_struct_refused_where_config_matters),
        cmocka_unit_test(test_cluster_upstream_filters),
        cmocka_unit_test(test_cluster_bind_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
