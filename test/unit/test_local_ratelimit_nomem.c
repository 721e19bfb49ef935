/*
 * Failing-allocator run over the translation of listeners that use the
 * local rate limit filters (HTTP, with per-route and response headers;
 * network, with and without share_key) and tcp_proxy weighted_clusters:
 * every allocation failure must come back as an error and leave nothing
 * allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "nomem_alloc.h"
#include "proxy/pb_yaml.h"
#include "xds/xds_translate_listener.h"

static const char *const yamls[] = {
    "name: l7\n"
    "address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
    "filter_chains:\n"
    "- filters:\n"
    "  - name: envoy.filters.network.local_ratelimit\n"
    "    typed_config:\n"
    "      '@type': type.googleapis.com/"
    "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit\n"
    "      stat_prefix: conns\n"
    "      token_bucket: {max_tokens: 10, fill_interval: 1s}\n"
    "  - name: envoy.filters.network.http_connection_manager\n"
    "    typed_config:\n"
    "      '@type': type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
    "      stat_prefix: ingress\n"
    "      route_config:\n"
    "        virtual_hosts:\n"
    "        - name: vh\n"
    "          domains: ['*']\n"
    "          routes:\n"
    "          - match: {prefix: /}\n"
    "            direct_response: {status: 200}\n"
    "      http_filters:\n"
    "      - name: lrl\n"
    "        typed_config:\n"
    "          '@type': type.googleapis.com/"
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\n"
    "          stat_prefix: http_lrl\n"
    "          token_bucket: {max_tokens: 3, fill_interval: 5s}\n"
    "          filter_enabled: {default_value: {numerator: 100}}\n"
    "          filter_enforced: {default_value: {numerator: 100}}\n"
    "          response_headers_to_add:\n"
    "          - header: {key: x-a, value: '1'}\n"
    "          - header: {key: x-b, value: '2'}\n"
    "          request_headers_to_add_when_not_enforced:\n"
    "          - header: {key: x-c, value: '3'}\n"
    "      - name: envoy.filters.http.router\n"
    "        typed_config: {'@type': "
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n",

    "name: l4\n"
    "address: {socket_address: {address: 127.0.0.1, port_value: 9000}}\n"
    "filter_chains:\n"
    "- filters:\n"
    "  - name: envoy.filters.network.local_ratelimit\n"
    "    typed_config:\n"
    "      '@type': type.googleapis.com/"
    "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit\n"
    "      stat_prefix: shared\n"
    "      share_key: k\n"
    "      token_bucket: {max_tokens: 10, fill_interval: 1s}\n"
    "  - name: envoy.filters.network.local_ratelimit\n"
    "    typed_config:\n"
    "      '@type': type.googleapis.com/"
    "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit\n"
    "      stat_prefix: own\n"
    "      token_bucket: {max_tokens: 5, fill_interval: 1s}\n"
    "  - name: envoy.filters.network.tcp_proxy\n"
    "    typed_config:\n"
    "      '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"
    "      stat_prefix: w\n"
    "      weighted_clusters: {clusters: [{name: a, weight: 3}, {name: b, weight: 1}]}\n",
};

#define N_YAMLS (sizeof(yamls) / sizeof(yamls[0]))

static ProtobufCMessage *msgs[N_YAMLS];

static bool scenario(void)
{
    bool ok = true;
    for (size_t i = 0; i < N_YAMLS; i++) {
        struct mp_listener_config *l = NULL;
        char *err = NULL;
        int rc =
            mp_xds_translate_listener((Envoy__Config__Listener__V3__Listener *)msgs[i], &l, &err);
        free(err);
        if (rc < 0) {
            ok = false;
            continue;
        }
        if (l->n_chains != 1 || l->chains[0].n_network_filters < 1)
            ok = false;
        mp_listener_config_free(l);
    }
    return ok;
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_YAMLS; i++) {
        char *err = NULL;
        if (mp_pb_from_yaml(yamls[i], strlen(yamls[i]),
                            &envoy__config__listener__v3__listener__descriptor, 0, &msgs[i],
                            &err) < 0)
            fail_msg("bad test yaml %zu: %s", i, err ? err : "?");
    }
    assert_true(scenario());
    nomem_check_every_failure(scenario, NULL, 20000, 20);
    for (size_t i = 0; i < N_YAMLS; i++)
        protobuf_c_message_free_unpacked(msgs[i], NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
