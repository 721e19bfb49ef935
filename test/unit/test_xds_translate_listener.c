/* Unit tests for xds_translate_listener.c: Listener YAML -> mp_listener_config, and errors
 * that name the field at fault. */
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
#include "proxy/access_log.h"
#include "proxy/http_filter.h"
#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"
#include "proxy/route_table.h"
#include "xds/xds_translate_listener.h"

#define HCM_HEAD                                                                                   \
    "name: l\n"                                                                                    \
    "address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"                          \
    "filter_chains:\n"                                                                             \
    "- filters:\n"                                                                                 \
    "  - name: envoy.filters.network.http_connection_manager\n"                                    \
    "    typed_config:\n"                                                                          \
    "      '@type': type.googleapis.com/"                                                          \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"

#define ROUTER                                                                                     \
    "      http_filters:\n"                                                                        \
    "      - name: envoy.filters.http.router\n"                                                    \
    "        typed_config: {'@type': "                                                             \
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

static int translate(const char *yaml, struct mp_listener_config **out, char **err)
{
    ProtobufCMessage *msg = NULL;
    char *perr = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml), &envoy__config__listener__v3__listener__descriptor,
                             0, &msg, &perr);
    if (rc < 0)
        fail_msg("bad test yaml: %s", perr ? perr : "?");
    rc = mp_xds_translate_listener((Envoy__Config__Listener__V3__Listener *)msg, out, err);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

static void test_full_hcm(void **state)
{
    (void)state;
    const char *yaml =
        HCM_HEAD "      stat_prefix: ingress\n"
                 "      codec_type: HTTP2\n"
                 "      server_name: edge\n"
                 "      use_remote_address: true\n"
                 "      xff_num_trusted_hops: 2\n"
                 "      generate_request_id: false\n"
                 "      via: mesh\n"
                 "      max_request_headers_kb: 96\n"
                 "      stream_idle_timeout: 10s\n"
                 "      common_http_protocol_options: {idle_timeout: 1.5s, "
                 "max_headers_count: 50}\n"
                 "      http2_protocol_options: {max_concurrent_streams: 9, "
                 "initial_stream_window_size: 70000, "
                 "initial_connection_window_size: 200000}\n"
                 "      access_log:\n"
                 "      - name: envoy.access_loggers.file\n"
                 "        typed_config:\n"
                 "          '@type': type.googleapis.com/"
                 "envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
                 "          path: /dev/null\n"
                 "      rds: {route_config_name: routes_a, config_source: {ads: {}}}\n" ROUTER;
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    int rc = translate(yaml, &l, &err);
    if (rc < 0)
        fail_msg("%s", err);
    assert_string_equal(l->name, "l");
    assert_string_equal(l->stat_name, "127.0.0.1_8080");
    const struct sockaddr_in *in = (const struct sockaddr_in *)&l->addr;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 8080);
    assert_int_equal(l->n_chains, 1);
    const struct mp_hcm_config *h = l->chains[0].hcm;
    assert_non_null(h);
    assert_int_equal(h->codec, MP_CODEC_HTTP2);
    assert_string_equal(h->stat_prefix, "ingress");
    assert_string_equal(h->server_name, "edge");
    assert_true(h->use_remote_address);
    assert_int_equal(h->xff_num_trusted_hops, 2);
    assert_false(h->generate_request_id);
    assert_string_equal(h->via, "mesh");
    assert_int_equal(h->max_request_headers_kb, 96);
    assert_int_equal(h->stream_idle_timeout_ms, 10000);
    assert_int_equal(h->idle_timeout_ms, 1500);
    assert_int_equal(h->max_headers_count, 50);
    assert_int_equal(h->h2_max_concurrent_streams, 9);
    assert_int_equal(h->h2_initial_stream_window, 70000);
    assert_int_equal(h->h2_initial_connection_window, 200000);
    assert_string_equal(h->rds_name, "routes_a");
    assert_null(h->route_config);
    assert_int_equal(h->n_filters, 1);
    assert_string_equal(h->filters[0].ops->name, "envoy.filters.http.router");
    assert_int_equal(h->n_access_logs, 1);
    /* the chain matches a plain connection to the listener's port */
    struct mp_fc_conn conn = {.transport = "raw_buffer"};
    assert_ptr_equal(mp_listener_match_chain(l, &conn), &l->chains[0]);
    mp_listener_config_free(l);
}

static void test_defaults_and_inline_routes(void **state)
{
    (void)state;
    const char *yaml = HCM_HEAD "      stat_prefix: s\n"
                                "      route_config:\n"
                                "        virtual_hosts:\n"
                                "        - {name: v, domains: ['*'], routes: [{match: {prefix: /}, "
                                "direct_response: {status: 200}}]}\n" ROUTER;
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    if (translate(yaml, &l, &err) < 0)
        fail_msg("%s", err);
    const struct mp_hcm_config *h = l->chains[0].hcm;
    assert_int_equal(h->codec, MP_CODEC_AUTO);
    assert_string_equal(h->server_name, "meshproxy");
    assert_true(h->generate_request_id);
    assert_int_equal(h->max_request_headers_kb, 60);
    assert_int_equal(h->idle_timeout_ms, 3600000);
    assert_int_equal(h->stream_idle_timeout_ms, 300000);
    assert_non_null(h->route_config);
    assert_int_equal(h->route_config->n_vhosts, 1);
    assert_true(l->bind_to_port);
    assert_int_equal(l->per_connection_buffer_limit, 1024 * 1024);
    mp_listener_config_free(l);
}

static void test_tcp_proxy(void **state)
{
    (void)state;
    const char *yaml =
        "name: t\n"
        "address: {socket_address: {address: '::1', port_value: 9000}}\n"
        "traffic_direction: INBOUND\n"
        "filter_chains:\n"
        "- filter_chain_match: {destination_port: 9000}\n"
        "  filters:\n"
        "  - name: envoy.filters.network.tcp_proxy\n"
        "    typed_config:\n"
        "      '@type': "
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"
        "      stat_prefix: tcp\n"
        "      cluster: backend\n"
        "      idle_timeout: 30s\n";
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    if (translate(yaml, &l, &err) < 0)
        fail_msg("%s", err);
    assert_string_equal(l->stat_name, "[::1]_9000");
    assert_int_equal(l->direction, MP_TRAFFIC_INBOUND);
    assert_non_null(l->chains[0].tcp_proxy);
    assert_string_equal(l->chains[0].tcp_proxy->cluster, "backend");
    assert_int_equal(l->chains[0].tcp_proxy->idle_timeout_ms, 30000);
    assert_int_equal(l->chains[0].match.destination_port, 9000);
    mp_listener_config_free(l);
}

struct bad {
    const char *yaml;
    const char *err;
};

static void test_errors_name_the_field(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {HCM_HEAD "      stat_prefix: s\n" ROUTER,
         "filter_chains[0].filters[0].typed_config.route_specifier: one of rds or route_config"},
        {HCM_HEAD "      stat_prefix: s\n      rds: {route_config_name: r}\n",
         "filter_chains[0].filters[0].typed_config.http_filters: the last filter must be "
         "envoy.filters.http.router"},
        {HCM_HEAD "      stat_prefix: s\n      rds: {route_config_name: r}\n"
                  "      http_filters: [{name: envoy.filters.http.nope}]\n",
         "filter_chains[0].filters[0].typed_config.http_filters[0]: unknown filter "
         "envoy.filters.http.nope"},
        {HCM_HEAD "      rds: {route_config_name: r}\n" ROUTER,
         "filter_chains[0].filters[0].typed_config.stat_prefix: must not be empty"},
        {HCM_HEAD "      stat_prefix: s\n      rds: {route_config_name: r}\n"
                  "      access_log:\n"
                  "      - name: f\n"
                  "        typed_config: {'@type': type.googleapis.com/"
                  "envoy.extensions.access_loggers.file.v3.FileAccessLog, path: /x,"
                  " log_format: {text_format_source: {inline_string: '%BOGUS%'}}}\n" ROUTER,
         "filter_chains[0].filters[0].typed_config.access_log[0].typed_config.format: unknown "
         "command %BOGUS%"},
        {HCM_HEAD "      stat_prefix: s\n      rds: {route_config_name: r}\n"
                  "      http2_protocol_options: {initial_stream_window_size: 100}\n" ROUTER,
         "filter_chains[0].filters[0].typed_config.http2_protocol_options.initial_stream_window_"
         "size: must be >= 65535"},
        {"name: l\naddress: {socket_address: {address: nothost, port_value: 1}}\n"
         "filter_chains: [{filters: []}]\n",
         "address.socket_address.address: \"nothost\" is not an IP address"},
        {"name: l\naddress: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
         "filter_chains: [{filters: [{name: envoy.filters.network.redis_proxy}]}]\n",
         "filter_chains[0].filters[0]: unsupported network filter "
         "envoy.filters.network.redis_proxy"},
        {"name: l\naddress: {socket_address: {address: 127.0.0.1, port_value: 1}}\n",
         "filter_chains: at least one filter chain is required"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        struct mp_listener_config *l = NULL;
        char *err = NULL;
        int rc = translate(cases[i].yaml, &l, &err);
        if (rc >= 0)
            fail_msg("case %zu: accepted", i);
        if (!err || !strstr(err, cases[i].err))
            fail_msg("case %zu: error \"%s\", want \"%s\"", i, err ? err : "(null)", cases[i].err);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_hcm),
        cmocka_unit_test(test_defaults_and_inline_routes),
        cmocka_unit_test(test_tcp_proxy),
        cmocka_unit_test(test_errors_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
