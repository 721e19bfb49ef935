/*
 * Unit tests for bootstrap.c / bootstrap_validate.c: file formats,
 * --config-yaml merge semantics, node flags, and the validate checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config_corpus.h"
#include "proxy/bootstrap.h"
#include "proxy/mp_common.h"
#include "proxy/options.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

static Bootstrap *load(const char *yaml)
{
    Bootstrap *b = NULL;
    char *err = NULL;
    if (mp_bootstrap_load_yaml(yaml, strlen(yaml), 0, &b, &err) != 0)
        fail_msg("%s", err);
    return b;
}

static void merge_follows_protobuf_merge_from(void **state)
{
    (void)state;
    Bootstrap *b =
        load("node: {id: base-id, cluster: base-cluster}\n"
             "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}\n"
             "static_resources:\n"
             "  clusters:\n"
             "  - {name: a, connect_timeout: 1s, type: STATIC}\n"
             "stats_flush_interval: 5s\n");
    Bootstrap *over = load("node: {id: over-id}\n"
                           "admin: {address: {socket_address: {port_value: 9902}}}\n"
                           "static_resources:\n"
                           "  clusters:\n"
                           "  - {name: b, connect_timeout: 2s}\n"
                           "stats_flush_on_admin: true\n");
    char *err = NULL;
    assert_int_equal(mp_bootstrap_merge(&b, over, &err), 0);
    /* scalars replaced, unset ones kept */
    assert_string_equal(b->node->id, "over-id");
    assert_string_equal(b->node->cluster, "base-cluster");
    /* messages merged field by field */
    assert_string_equal(b->admin->address->socket_address->address, "127.0.0.1");
    assert_int_equal(b->admin->address->socket_address->port_value, 9902);
    /* repeated appended */
    assert_int_equal(b->static_resources->n_clusters, 2);
    assert_string_equal(b->static_resources->clusters[1]->name, "b");
    /* a oneof member replaces the other */
    assert_int_equal(b->stats_flush_case,
                     ENVOY__CONFIG__BOOTSTRAP__V3__BOOTSTRAP__STATS_FLUSH_STATS_FLUSH_ON_ADMIN);
    assert_true(b->stats_flush_interval->seconds == 5);
    mp_bootstrap_free(b);
    mp_bootstrap_free(over);
}

/* Cases protobuf-c's own wire merge gets wrong or does not do. */
static void merge_maps_oneofs_and_nested(void **state)
{
    (void)state;
    /* Node twice with its oneof unset in both: protobuf-c 1.4.1's unpack
     * merge fails here; ours must not. */
    Bootstrap *b =
        load("node: {id: a, metadata: {k1: v1, k2: [1]}}\n"
             "static_resources:\n"
             "  clusters:\n"
             "  - name: c\n"
             "    typed_extension_protocol_options:\n"
             "      x: {'@type': type.googleapis.com/google.protobuf.Duration, value: 1s}\n"
             "      y: {'@type': type.googleapis.com/google.protobuf.Duration, value: 2s}\n"
             "layered_runtime: {layers: [{name: l, static_layer: {a: 1}}]}\n");
    Bootstrap *o =
        load("node: {cluster: cc, user_agent_version: '1.0', metadata: {k2: replaced}}\n"
             "static_resources:\n"
             "  clusters:\n"
             "  - name: d\n"
             "    typed_extension_protocol_options:\n"
             "      y: {'@type': type.googleapis.com/google.protobuf.Duration, value: 9s}\n");
    char *err = NULL;
    assert_int_equal(mp_bootstrap_merge(&b, o, &err), 0);
    assert_string_equal(b->node->id, "a");
    assert_string_equal(b->node->cluster, "cc");
    assert_string_equal(b->node->user_agent_version, "1.0");
    /* Struct fields is a map: k2 replaced, k1 kept. */
    assert_int_equal(b->node->metadata->n_fields, 2);
    assert_string_equal(b->node->metadata->fields[1]->key, "k2");
    assert_string_equal(b->node->metadata->fields[1]->value->string_value, "replaced");
    assert_int_equal(b->static_resources->n_clusters, 2);
    assert_int_equal(b->layered_runtime->n_layers, 1);
    mp_bootstrap_free(o);
    /* A second merge switching the oneof member back. */
    o = load("node: {user_agent_build_version: {version: {major_number: 1}}}\n");
    assert_int_equal(mp_bootstrap_merge(&b, o, &err), 0);
    assert_int_equal(
        b->node->user_agent_version_type_case,
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_BUILD_VERSION);
    assert_int_equal(b->node->user_agent_build_version->version->major_number, 1);
    mp_bootstrap_free(o);
    mp_bootstrap_free(b);
}

static char *write_temp(const char *suffix, const void *data, size_t len)
{
    char *path = malloc(64);
    snprintf(path, 64, "/tmp/mp_bootstrap_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void loads_every_format(void **state)
{
    (void)state;
    Bootstrap *b = load("static_resources: {clusters: [{name: a, connect_timeout: 0.5s}]}\n");
    size_t n = protobuf_c_message_get_packed_size(&b->base);
    uint8_t *bin = malloc(n);
    protobuf_c_message_pack(&b->base, bin);
    char *pb = write_temp(".pb", bin, n);
    const char *json =
        "{\"staticResources\":{\"clusters\":[{\"name\":\"a\",\"connectTimeout\":\"0.500s\"}]}}";
    char *js = write_temp(".json", json, strlen(json));
    const char *yaml = "static_resources:\n  clusters:\n  - name: a\n    connect_timeout: 0.5s\n";
    char *ym = write_temp(".yaml", yaml, strlen(yaml));
    const char *paths[] = {pb, js, ym};
    for (size_t i = 0; i < 3; i++) {
        Bootstrap *got = NULL;
        char *err = NULL;
        if (mp_bootstrap_load_file(paths[i], 0, &got, &err) != 0)
            fail_msg("%s: %s", paths[i], err);
        size_t m = protobuf_c_message_get_packed_size(&got->base);
        uint8_t *gb = malloc(m);
        protobuf_c_message_pack(&got->base, gb);
        assert_int_equal(m, n);
        assert_memory_equal(gb, bin, n);
        free(gb);
        mp_bootstrap_free(got);
        unlink(paths[i]);
        free((char *)paths[i]);
    }
    /* Garbage .pb and a missing file are reported with the path. */
    char *junk = write_temp(".pb", "\xff\xff\xff", 3);
    Bootstrap *got = NULL;
    char *err = NULL;
    assert_int_equal(mp_bootstrap_load_file(junk, 0, &got, &err), MP_ERR_PARSE);
    assert_non_null(strstr(err, junk));
    free(err);
    err = NULL;
    unlink(junk);
    free(junk);
    assert_int_equal(mp_bootstrap_load_file("/nonexistent/x.yaml", 0, &got, &err), MP_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/x.yaml"));
    free(err);
    free(bin);
    mp_bootstrap_free(b);
}

static void options_drive_loading(void **state)
{
    (void)state;
    const char *yaml =
        "node: {id: file-id, cluster: c}\nstatic_resources: {clusters: [{name: a}]}\n";
    char *path = write_temp(".yaml", yaml, strlen(yaml));
    struct mp_options o;
    mp_options_init(&o);
    o.config_path = path;
    o.config_yaml = "static_resources: {clusters: [{name: b}]}";
    o.service_node = "flag-node";
    o.service_zone = "zone-a";
    Bootstrap *b = NULL;
    char *err = NULL;
    if (mp_bootstrap_from_options(&o, &b, &err) != 0)
        fail_msg("%s", err);
    assert_string_equal(b->node->id, "flag-node");
    assert_string_equal(b->node->cluster, "c");
    assert_string_equal(b->node->locality->zone, "zone-a");
    assert_int_equal(b->static_resources->n_clusters, 2);
    mp_bootstrap_free(b);
    /* Bad --config-yaml says so. */
    o.config_yaml = "static_resources: {clusters: [{nme: b}]}";
    b = NULL;
    assert_int_equal(mp_bootstrap_from_options(&o, &b, &err), MP_ERR_INVAL);
    assert_null(b);
    assert_non_null(strstr(err, "--config-yaml: static_resources.clusters[0].nme: unknown field"));
    free(err);
    err = NULL;
    /* ...unless unknown fields are allowed. */
    o.allow_unknown_static_fields = true;
    assert_int_equal(mp_bootstrap_from_options(&o, &b, &err), 0);
    mp_bootstrap_free(b);
    /* --config-yaml alone is a whole bootstrap. */
    o.config_path = NULL;
    o.config_yaml = "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}";
    assert_int_equal(mp_bootstrap_from_options(&o, &b, &err), 0);
    assert_non_null(b->admin);
    mp_bootstrap_free(b);
    o.config_yaml = NULL;
    assert_int_equal(mp_bootstrap_from_options(&o, &b, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "no configuration"));
    free(err);
    unlink(path);
    free(path);
}

static void validate_err(const char *yaml, const char *want)
{
    Bootstrap *b = load(yaml);
    char *err = NULL;
    assert_int_equal(mp_bootstrap_validate(b, &err), MP_ERR_INVAL);
    if (err == NULL || strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err ? err : "(none)", want);
    free(err);
    mp_bootstrap_free(b);
}

static void validate_ok(const char *yaml)
{
    Bootstrap *b = load(yaml);
    char *err = NULL;
    if (mp_bootstrap_validate(b, &err) != 0)
        fail_msg("%s", err);
    mp_bootstrap_free(b);
}

#define HCM_HEAD                                                                                   \
    "static_resources:\n"                                                                          \
    "  listeners:\n"                                                                               \
    "  - name: l\n"                                                                                \
    "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"                         \
    "    filter_chains:\n"                                                                         \
    "    - filters:\n"                                                                             \
    "      - name: hcm\n"                                                                          \
    "        typed_config:\n"                                                                      \
    "          '@type': type.googleapis.com/envoy.extensions.filters.network."                     \
    "http_connection_manager.v3.HttpConnectionManager\n"                                           \
    "          stat_prefix: s\n"                                                                   \
    "          http_filters:\n"                                                                    \
    "          - name: router\n"                                                                   \
    "            typed_config: {'@type': "                                                         \
    "type.googleapis.com/envoy.extensions.filters.http.router."                                    \
    "v3.Router}\n"

static void validate_checks(void **state)
{
    (void)state;
    validate_ok("{}");
    validate_err("static_resources: {listeners: [{name: x, address: {pipe: {path: /a}}}, {name: x, "
                 "address: {pipe: {path: /b}}}]}",
                 "static_resources.listeners[1].name: duplicate listener name \"x\"");
    /* Unnamed listeners are not duplicates of each other. */
    validate_ok("static_resources: {listeners: [{address: {pipe: {path: /a}}}, {address: {pipe: "
                "{path: /b}}}]}");
    validate_err("dynamic_resources: {ads_config: {api_type: GRPC, grpc_services: []}}",
                 "dynamic_resources.ads_config.grpc_services: exactly one gRPC service");
    validate_err(
        "dynamic_resources: {ads_config: {grpc_services: [{envoy_grpc: {cluster_name: x}}]}}",
        "dynamic_resources.ads_config.api_type: api_type must be set");
    validate_err(
        "dynamic_resources: {lds_config: {api_config_source: {api_type: REST, "
        "cluster_names: [nope]}}}",
        "dynamic_resources.lds_config.api_config_source.cluster_names[0]: unknown cluster");
    validate_err("dynamic_resources: {lds_config: {resource_api_version: V3}}",
                 "dynamic_resources.lds_config: config source has no ads");
    validate_ok(
        "dynamic_resources: {ads_config: {api_type: DELTA_GRPC, grpc_services: [{envoy_grpc: "
        "{cluster_name: x}}]}, lds_config: {ads: {}}}\n"
        "static_resources: {clusters: [{name: x}]}");
    /* Routes to unknown clusters: an error without CDS, fine with it. */
    const char *route = HCM_HEAD "          route_config:\n"
                                 "            virtual_hosts:\n"
                                 "            - name: v\n"
                                 "              domains: ['*']\n"
                                 "              routes:\n"
                                 "              - match: {prefix: /}\n"
                                 "                route:\n"
                                 "                  weighted_clusters:\n"
                                 "                    clusters: [{name: ghost, weight: 1}]\n";
    validate_err(route, "typed_config.route_config.virtual_hosts[0].routes[0].route.weighted_"
                        "clusters.clusters[0].name: unknown cluster \"ghost\"");
    char with_cds[4096];
    snprintf(with_cds, sizeof(with_cds),
             "%sdynamic_resources: {ads_config: {api_type: GRPC, grpc_services: [{envoy_grpc: "
             "{cluster_name: xds}}]}, cds_config: {ads: {}}}\n",
             route);
    /* The xds cluster is merged in, as --config-yaml would. */
    char *err = NULL;
    Bootstrap *b = load(with_cds);
    Bootstrap *c = load("static_resources: {clusters: [{name: xds}]}");
    assert_int_equal(mp_bootstrap_merge(&b, c, &err), 0);
    assert_int_equal(mp_bootstrap_validate(b, &err), 0);
    mp_bootstrap_free(b);
    mp_bootstrap_free(c);
    /* validate_clusters: false turns the check off. */
    char off[4096];
    snprintf(off, sizeof(off), "%s            validate_clusters: false\n", route);
    validate_ok(off);
    /* A tcp_proxy to nowhere. */
    validate_err("static_resources:\n"
                 "  listeners:\n"
                 "  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
                 "    filter_chains:\n"
                 "    - filters:\n"
                 "      - name: tcp\n"
                 "        typed_config:\n"
                 "          '@type': "
                 "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"
                 "          stat_prefix: t\n"
                 "          cluster: nowhere\n",
                 "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.cluster: "
                 "unknown cluster \"nowhere\"");
    /* A chain without the router at the end. */
    validate_err(
        "static_resources:\n"
        "  listeners:\n"
        "  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
        "    default_filter_chain:\n"
        "      filters:\n"
        "      - name: hcm\n"
        "        typed_config:\n"
        "          '@type': "
        "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
        "          stat_prefix: s\n"
        "          http_filters:\n"
        "          - name: envoy.filters.http.cors\n"
        "            typed_config: {'@type': "
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}\n",
        "static_resources.listeners[0].default_filter_chain.filters[0].typed_config."
        "http_filters[0]: the last HTTP filter must be the router");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(merge_follows_protobuf_merge_from),
        cmocka_unit_test(merge_maps_oneofs_and_nested),
        cmocka_unit_test(loads_every_format),
        cmocka_unit_test(options_drive_loading),
        cmocka_unit_test(validate_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
