/*
 * Unit tests for pb_json.c / pb_json_print.c / pb_json_util.c: the proto3
 * JSON mapping both ways, and exact round trips of the good config corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config_corpus.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_json_util.h"
#include "proxy/pb_yaml.h"

#define BOOTSTRAP_DESC (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define CLUSTER_DESC   (&envoy__config__cluster__v3__cluster__descriptor)

static ProtobufCMessage *json_ok(const char *text, const ProtobufCMessageDescriptor *d,
                                 unsigned flags)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    int rc = mp_pb_from_json(text, strlen(text), d, flags, &m, &err);
    if (rc != 0)
        fail_msg("%s: %s", text, err);
    return m;
}

/* The error message for text, which must fail with MP_ERR_INVAL. */
static char *json_err(const char *text, const ProtobufCMessageDescriptor *d, unsigned flags)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    int rc = mp_pb_from_json(text, strlen(text), d, flags, &m, &err);
    if (rc == 0)
        fail_msg("%s: unexpectedly parsed", text);
    assert_null(m);
    assert_non_null(err);
    return err;
}

static void expect_err(const char *text, const ProtobufCMessageDescriptor *d, const char *want)
{
    char *err = json_err(text, d, 0);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error \"%s\" does not contain \"%s\"", text, err, want);
    free(err);
}

static char *print(const ProtobufCMessage *m, unsigned flags)
{
    char *out = NULL, *err = NULL;
    size_t len = 0;
    int rc = mp_pb_to_json(m, flags, &out, &len, &err);
    if (rc != 0)
        fail_msg("print failed: %s", err);
    assert_int_equal(strlen(out), len);
    return out;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static void assert_same_bytes(const ProtobufCMessage *a, const ProtobufCMessage *b,
                              const char *what)
{
    size_t la, lb;
    uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
    if (la != lb || memcmp(pa, pb, la) != 0)
        fail_msg("%s: packed bytes differ (%zu vs %zu)", what, la, lb);
    free(pa);
    free(pb);
}

/* YAML -> proto -> JSON -> proto, for every printing style: same bytes. */
static void corpus_round_trips(void **state)
{
    (void)state;
    assert_non_null(corpus_dir());
    char **files;
    size_t n = list_dir("good", &files);
    assert_true(n >= 10);
    static const unsigned styles[] = {0, MP_PB_JSON_PRETTY, MP_PB_JSON_CAMEL_NAMES,
                                      MP_PB_JSON_PRETTY | MP_PB_JSON_CAMEL_NAMES};
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char *text = read_all(files[i], &len);
        assert_non_null(text);
        ProtobufCMessage *m = NULL;
        char *err = NULL;
        int rc = strstr(files[i], ".json")
                     ? mp_pb_from_json(text, len, BOOTSTRAP_DESC, 0, &m, &err)
                     : mp_pb_from_yaml(text, len, BOOTSTRAP_DESC, 0, &m, &err);
        if (rc != 0)
            fail_msg("%s: %s", files[i], err);
        for (size_t s = 0; s < MP_ARRAY_LEN(styles); s++) {
            char *js = print(m, styles[s]);
            ProtobufCMessage *back = NULL;
            rc = mp_pb_from_json(js, strlen(js), BOOTSTRAP_DESC, 0, &back, &err);
            if (rc != 0)
                fail_msg("%s (style %u): reparse: %s\n%s", files[i], styles[s], err, js);
            assert_same_bytes(m, back, files[i]);
            /* And printing is deterministic. */
            char *js2 = print(back, styles[s]);
            assert_string_equal(js, js2);
            free(js2);
            free(js);
            protobuf_c_message_free_unpacked(back, NULL);
        }
        /* Binary -> JSON -> proto as well (what the .pb loader feeds). */
        size_t bl;
        uint8_t *bin = pack(m, &bl);
        ProtobufCMessage *from_bin = protobuf_c_message_unpack(BOOTSTRAP_DESC, NULL, bl, bin);
        assert_non_null(from_bin);
        assert_same_bytes(m, from_bin, files[i]);
        protobuf_c_message_free_unpacked(from_bin, NULL);
        free(bin);
        protobuf_c_message_free_unpacked(m, NULL);
        free(text);
        free(files[i]);
    }
    free(files);
}

static void integers(void **state)
{
    (void)state;
    /* uint32 wrapper and int64 / uint64 fields of a Cluster. */
    Envoy__Config__Cluster__V3__Cluster *c = (Envoy__Config__Cluster__V3__Cluster *)json_ok(
        "{\"name\":\"a\",\"per_connection_buffer_limit_bytes\":4294967295,"
        "\"common_lb_config\":{\"healthy_panic_threshold\":{\"value\":\"12\"}},"
        "\"lb_subset_config\":{\"fallback_policy\":\"ANY_ENDPOINT\"},"
        "\"upstream_connection_options\":{\"tcp_keepalive\":{\"keepalive_probes\":1e1}}}",
        CLUSTER_DESC, 0);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 4294967295u);
    assert_true(c->common_lb_config->healthy_panic_threshold->value == 12.0);
    assert_int_equal(c->upstream_connection_options->tcp_keepalive->keepalive_probes->value, 10);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    expect_err("{\"per_connection_buffer_limit_bytes\":4294967296}", CLUSTER_DESC,
               "per_connection_buffer_limit_bytes: integer \"4294967296\" out of range");
    expect_err("{\"per_connection_buffer_limit_bytes\":-1}", CLUSTER_DESC, "out of range");
    expect_err("{\"per_connection_buffer_limit_bytes\":1.5}", CLUSTER_DESC, "invalid integer");
    expect_err("{\"per_connection_buffer_limit_bytes\":\"x\"}", CLUSTER_DESC, "invalid integer");
    expect_err("{\"per_connection_buffer_limit_bytes\":true}", CLUSTER_DESC, "expected an integer");

    /* int64 / uint64 wrappers: strings or numbers, full range. */
    Google__Protobuf__Int64Value *i64 = (Google__Protobuf__Int64Value *)json_ok(
        "\"-9223372036854775808\"", &google__protobuf__int64_value__descriptor, 0);
    assert_true(i64->value == INT64_MIN);
    char *js = print(&i64->base, 0);
    assert_string_equal(js, "\"-9223372036854775808\"");
    free(js);
    protobuf_c_message_free_unpacked(&i64->base, NULL);
    Google__Protobuf__UInt64Value *u64 = (Google__Protobuf__UInt64Value *)json_ok(
        "\"18446744073709551615\"", &google__protobuf__uint64_value__descriptor, 0);
    assert_true(u64->value == UINT64_MAX);
    protobuf_c_message_free_unpacked(&u64->base, NULL);
    expect_err("\"18446744073709551616\"", &google__protobuf__uint64_value__descriptor,
               "out of range");
    expect_err("\"9223372036854775808\"", &google__protobuf__int64_value__descriptor,
               "out of range");
    Google__Protobuf__Int32Value *i32 = (Google__Protobuf__Int32Value *)json_ok(
        "-2147483648", &google__protobuf__int32_value__descriptor, 0);
    assert_int_equal(i32->value, INT32_MIN);
    protobuf_c_message_free_unpacked(&i32->base, NULL);
    expect_err("2147483648", &google__protobuf__int32_value__descriptor, "out of range");
}

static void floats_and_doubles(void **state)
{
    (void)state;
    static const char *const doubles[] = {
        "0.1",     "1e308",        "-2.5e-300",     "3.141592653589793",
        "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1.5\""};
    for (size_t i = 0; i < MP_ARRAY_LEN(doubles); i++) {
        ProtobufCMessage *m = json_ok(doubles[i], &google__protobuf__double_value__descriptor, 0);
        char *js = print(m, 0);
        ProtobufCMessage *back = json_ok(js, &google__protobuf__double_value__descriptor, 0);
        assert_same_bytes(m, back, doubles[i]);
        free(js);
        protobuf_c_message_free_unpacked(m, NULL);
        protobuf_c_message_free_unpacked(back, NULL);
    }
    Google__Protobuf__DoubleValue *d = (Google__Protobuf__DoubleValue *)json_ok(
        "0.1", &google__protobuf__double_value__descriptor, 0);
    char *js = print(&d->base, 0);
    assert_string_equal(js, "0.1"); /* shortest that reads back */
    free(js);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    Google__Protobuf__FloatValue *f = (Google__Protobuf__FloatValue *)json_ok(
        "0.1", &google__protobuf__float_value__descriptor, 0);
    assert_true(f->value == 0.1f);
    js = print(&f->base, 0);
    assert_string_equal(js, "0.1");
    free(js);
    protobuf_c_message_free_unpacked(&f->base, NULL);
    expect_err("1e39", &google__protobuf__float_value__descriptor, "out of range for float");
    expect_err("1e999", &google__protobuf__double_value__descriptor, "out of range");
    expect_err("\"nan\"", &google__protobuf__double_value__descriptor, "invalid number");
    expect_err("\"0x10\"", &google__protobuf__double_value__descriptor, "invalid number");
}

static void durations(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        int64_t s;
        int32_t n;
    } ok[] = {
        {"\"1.5s\"", "\"1.500s\"", 1, 500000000},
        {"\"0.25s\"", "\"0.250s\"", 0, 250000000},
        {"\"300s\"", "\"300s\"", 300, 0},
        {"\"-0.000001s\"", "\"-0.000001s\"", 0, -1000},
        {"\"-3.000000001s\"", "\"-3.000000001s\"", -3, -1},
        {"\"315576000000s\"", "\"315576000000s\"", 315576000000LL, 0},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(ok); i++) {
        Google__Protobuf__Duration *d = (Google__Protobuf__Duration *)json_ok(
            ok[i].in, &google__protobuf__duration__descriptor, 0);
        assert_true(d->seconds == ok[i].s);
        assert_int_equal(d->nanos, ok[i].n);
        char *js = print(&d->base, 0);
        assert_string_equal(js, ok[i].out);
        free(js);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
    static const char *const bad[] = {"\"abc\"", "\"1\"",          "\"1.s\"", "\"1.0000000001s\"",
                                      "\"s\"",   "\"1.5 s\"",      "\"+1s\"", "\"315576000001s\"",
                                      "1.5",     "{\"seconds\":1}"};
    for (size_t i = 0; i < MP_ARRAY_LEN(bad); i++)
        expect_err(bad[i], &google__protobuf__duration__descriptor, "invalid duration");
    /* The path reaches the field. */
    char *err = json_err("{\"static_resources\":{\"clusters\":[{\"name\":\"a\"},{\"name\":\"b\"},"
                         "{\"name\":\"c\",\"connect_timeout\":\"abc\"}]}}",
                         BOOTSTRAP_DESC, 0);
    assert_non_null(
        strstr(err, "static_resources.clusters[2].connect_timeout: invalid duration \"abc\""));
    free(err);
    /* Printing an out-of-range duration fails cleanly. */
    Google__Protobuf__Duration bad_d = GOOGLE__PROTOBUF__DURATION__INIT;
    bad_d.seconds = 1;
    bad_d.nanos = -1;
    char *out = NULL;
    err = NULL;
    assert_int_equal(mp_pb_to_json(&bad_d.base, 0, &out, NULL, &err), MP_ERR_INVAL);
    assert_null(out);
    assert_non_null(err);
    free(err);
}

static void timestamps(void **state)
{
    (void)state;
    Google__Protobuf__Timestamp *t = (Google__Protobuf__Timestamp *)json_ok(
        "\"1972-01-01T10:00:20.021Z\"", &google__protobuf__timestamp__descriptor, 0);
    assert_true(t->seconds == 63108020);
    assert_int_equal(t->nanos, 21000000);
    char *js = print(&t->base, 0);
    assert_string_equal(js, "\"1972-01-01T10:00:20.021Z\"");
    free(js);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    t = (Google__Protobuf__Timestamp *)json_ok("\"2024-02-29T01:00:00+01:00\"",
                                               &google__protobuf__timestamp__descriptor, 0);
    js = print(&t->base, 0);
    assert_string_equal(js, "\"2024-02-29T00:00:00Z\"");
    free(js);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    t = (Google__Protobuf__Timestamp *)json_ok("\"0001-01-01T00:00:00Z\"",
                                               &google__protobuf__timestamp__descriptor, 0);
    assert_true(t->seconds == -62135596800LL);
    js = print(&t->base, 0);
    assert_string_equal(js, "\"0001-01-01T00:00:00Z\"");
    free(js);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    static const char *const bad[] = {"\"2023-02-29T00:00:00Z\"", "\"2024-13-01T00:00:00Z\"",
                                      "\"2024-01-01 00:00:00Z\"", "\"2024-01-01T00:00:00\"",
                                      "\"2024-01-01T24:00:00Z\"", "\"yesterday\""};
    for (size_t i = 0; i < MP_ARRAY_LEN(bad); i++)
        expect_err(bad[i], &google__protobuf__timestamp__descriptor, "invalid timestamp");
}

static void any_fields(void **state)
{
    (void)state;
    const char *text =
        "{\"name\":\"l\",\"filter_chains\":[{\"filters\":[{\"name\":\"hcm\",\"typed_config\":{"
        "\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager."
        "v3.HttpConnectionManager\",\"stat_prefix\":\"x\",\"http_filters\":[{\"name\":\"r\","
        "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.router.v3."
        "Router\"}}]}}]}]}";
    const ProtobufCMessageDescriptor *ld = &envoy__config__listener__v3__listener__descriptor;
    ProtobufCMessage *m = json_ok(text, ld, 0);
    char *js = print(m, 0);
    /* "@type" comes first, then the message's own fields. */
    assert_non_null(strstr(js,
                           "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network."
                           "http_connection_manager.v3.HttpConnectionManager\",\"stat_prefix\""));
    ProtobufCMessage *back = json_ok(js, ld, 0);
    assert_same_bytes(m, back, "listener with Any");
    free(js);
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(back, NULL);

    /* A well-known type inside Any sits under "value". */
    const ProtobufCMessageDescriptor *ad = &google__protobuf__any__descriptor;
    m = json_ok("{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2s\"}", ad,
                0);
    js = print(m, 0);
    assert_string_equal(
        js, "{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2s\"}");
    free(js);
    protobuf_c_message_free_unpacked(m, NULL);
    m = json_ok(
        "{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"a\":[1,\"b\"]}}",
        ad, 0);
    js = print(m, 0);
    assert_string_equal(
        js,
        "{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"a\":[1,\"b\"]}}");
    free(js);
    protobuf_c_message_free_unpacked(m, NULL);
    /* An empty Any is allowed and prints as {}. */
    m = json_ok("{}", ad, 0);
    js = print(m, 0);
    assert_string_equal(js, "{}");
    free(js);
    protobuf_c_message_free_unpacked(m, NULL);

    expect_err("{\"@type\":\"type.googleapis.com/envoy.Nope\"}", ad, "unknown type");
    expect_err("{\"stat_prefix\":\"x\"}", ad, "missing \"@type\"");
    expect_err("{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\","
               "\"bogus\":1}",
               ad, "bogus: unknown field in envoy.extensions.filters.http.router.v3.Router");
    expect_err("{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"x\"}", ad,
               "value: invalid duration");
    /* With unknowns ignored, an Any of an unknown type keeps its URL only. */
    Google__Protobuf__Any *ign = (Google__Protobuf__Any *)json_ok(
        "{\"@type\":\"type.googleapis.com/example.unknown.v1.Config\",\"type_url\":\"x\","
        "\"value\":{\"a\":1}}",
        ad, MP_PB_JSON_IGNORE_UNKNOWN);
    assert_string_equal(ign->type_url, "type.googleapis.com/example.unknown.v1.Config");
    assert_int_equal(ign->value.len, 0);
    js = print(&ign->base, 0);
    assert_string_equal(js, "{\"@type\":\"type.googleapis.com/example.unknown.v1.Config\"}");
    free(js);
    protobuf_c_message_free_unpacked(&ign->base, NULL);
    /* Printing an Any the registry does not know, with a value, fails
     * instead of guessing. */
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/x.Unknown";
    uint8_t one = 8;
    any.value.data = &one;
    any.value.len = 1;
    char *out = NULL, *err = NULL;
    assert_int_equal(mp_pb_to_json(&any.base, 0, &out, NULL, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "x.Unknown"));
    free(err);
}

static void oneofs(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *rd = &envoy__config__route__v3__route_action__descriptor;
    char *err = json_err("{\"cluster\":\"a\",\"cluster_header\":\"x-c\"}", rd, 0);
    assert_non_null(
        strstr(err, "cluster_header: oneof conflict: \"cluster\" and \"cluster_header\""));
    free(err);
    /* null does not count as set. */
    Envoy__Config__Route__V3__RouteAction *a = (Envoy__Config__Route__V3__RouteAction *)json_ok(
        "{\"cluster\":null,\"cluster_header\":\"x-c\"}", rd, 0);
    assert_int_equal(a->cluster_specifier_case,
                     ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER);
    assert_string_equal(a->cluster_header, "x-c");
    protobuf_c_message_free_unpacked(&a->base, NULL);
    /* A oneof member at its default value is still "set" and survives printing. */
    Envoy__Config__Bootstrap__V3__Bootstrap *b = (Envoy__Config__Bootstrap__V3__Bootstrap *)json_ok(
        "{\"stats_flush_on_admin\":false}", BOOTSTRAP_DESC, 0);
    assert_int_equal(b->stats_flush_case,
                     ENVOY__CONFIG__BOOTSTRAP__V3__BOOTSTRAP__STATS_FLUSH_STATS_FLUSH_ON_ADMIN);
    char *js = print(&b->base, 0);
    assert_string_equal(js, "{\"stats_flush_on_admin\":false}");
    free(js);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    /* Same oneof through a message member and a string member, with the
     * message filled first: the conflict is caught, nothing leaks. */
    err = json_err("{\"weighted_clusters\":{\"clusters\":[{\"name\":\"a\",\"weight\":1}]},"
                   "\"cluster\":\"b\"}",
                   rd, 0);
    assert_non_null(strstr(err, "oneof conflict"));
    free(err);
}

static void unknown_fields(void **state)
{
    (void)state;
    char *err = json_err(
        "{\"static_resources\":{\"clusters\":[{\"name\":\"a\",\"conect_timeout\":\"1s\"}]}}",
        BOOTSTRAP_DESC, 0);
    assert_non_null(strstr(err, "static_resources.clusters[0].conect_timeout: unknown field in "
                                "envoy.config.cluster.v3.Cluster"));
    free(err);
    Envoy__Config__Bootstrap__V3__Bootstrap *b = (Envoy__Config__Bootstrap__V3__Bootstrap *)json_ok(
        "{\"static_resources\":{\"clusters\":[{\"name\":\"a\",\"conect_timeout\":\"1s\","
        "\"lb_policy\":\"NO_SUCH_POLICY\"}]},\"bogus\":{\"x\":[1]}}",
        BOOTSTRAP_DESC, MP_PB_JSON_IGNORE_UNKNOWN);
    assert_int_equal(b->static_resources->n_clusters, 1);
    assert_string_equal(b->static_resources->clusters[0]->name, "a");
    assert_int_equal(b->static_resources->clusters[0]->lb_policy, 0);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void names_and_duplicates(void **state)
{
    (void)state;
    Envoy__Config__Cluster__V3__Cluster *c = (Envoy__Config__Cluster__V3__Cluster *)json_ok(
        "{\"name\":\"a\",\"connectTimeout\":\"1s\",\"lbPolicy\":\"MAGLEV\",\"type\":\"STRICT_"
        "DNS\"}",
        CLUSTER_DESC, 0);
    assert_true(c->connect_timeout->seconds == 1);
    assert_int_equal(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV);
    char *js = print(&c->base, MP_PB_JSON_CAMEL_NAMES);
    assert_non_null(strstr(js, "\"connectTimeout\":\"1s\""));
    assert_non_null(strstr(js, "\"lbPolicy\":\"MAGLEV\""));
    free(js);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    /* Enum by number too. */
    c = (Envoy__Config__Cluster__V3__Cluster *)json_ok("{\"lb_policy\":5}", CLUSTER_DESC, 0);
    assert_int_equal(c->lb_policy, 5);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    expect_err("{\"connect_timeout\":\"1s\",\"connectTimeout\":\"2s\"}", CLUSTER_DESC,
               "connect_timeout: field is set twice");
    expect_err("{\"lb_policy\":\"maglev\"}", CLUSTER_DESC, "unknown value \"maglev\" for enum");
    char buf[64];
    assert_string_equal(mp_pb_json_name("per_connection_buffer_limit_bytes", buf, sizeof(buf)),
                        "perConnectionBufferLimitBytes");
    assert_string_equal(mp_pb_json_name("ipv4_compat", buf, sizeof(buf)), "ipv4Compat");
}

static void structs_and_values(void **state)
{
    (void)state;
    const char *text =
        "{\"filter_metadata\":{\"istio\":{\"s\":\"x\",\"n\":-1.5,\"b\":true,\"z\":null,"
        "\"l\":[1,[2],{\"k\":null}],\"o\":{}}}}";
    const ProtobufCMessageDescriptor *md = &envoy__config__core__v3__metadata__descriptor;
    Envoy__Config__Core__V3__Metadata *m =
        (Envoy__Config__Core__V3__Metadata *)json_ok(text, md, 0);
    assert_int_equal(m->n_filter_metadata, 1);
    assert_string_equal(m->filter_metadata[0]->key, "istio");
    Google__Protobuf__Struct *s = m->filter_metadata[0]->value;
    assert_int_equal(s->n_fields, 6);
    assert_int_equal(s->fields[3]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    char *js = print(&m->base, 0);
    assert_string_equal(js, text);
    free(js);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    expect_err("{\"filter_metadata\":{\"a\":[1]}}", md,
               "filter_metadata[\"a\"]: expected an object");
    expect_err("{\"filter_metadata\":{\"a\":null}}", md, "null is not allowed as a map value");
}

static void bytes_and_wrappers(void **state)
{
    (void)state;
    Google__Protobuf__BytesValue *b = (Google__Protobuf__BytesValue *)json_ok(
        "\"aGVsbG8gd29ybGQ=\"", &google__protobuf__bytes_value__descriptor, 0);
    assert_int_equal(b->value.len, 11);
    assert_memory_equal(b->value.data, "hello world", 11);
    char *js = print(&b->base, 0);
    assert_string_equal(js, "\"aGVsbG8gd29ybGQ=\"");
    free(js);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    /* URL-safe alphabet and missing padding are accepted. */
    b = (Google__Protobuf__BytesValue *)json_ok("\"-_8\"",
                                                &google__protobuf__bytes_value__descriptor, 0);
    assert_int_equal(b->value.len, 2);
    assert_int_equal(b->value.data[0], 0xfb);
    assert_int_equal(b->value.data[1], 0xff);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    expect_err("\"a\"", &google__protobuf__bytes_value__descriptor, "invalid base64");
    /* Wrappers are bare values; null leaves them unset. */
    Envoy__Config__Cluster__V3__Cluster *c = (Envoy__Config__Cluster__V3__Cluster *)json_ok(
        "{\"respect_dns_ttl\":true,\"per_connection_buffer_limit_bytes\":null}", CLUSTER_DESC, 0);
    assert_null(c->per_connection_buffer_limit_bytes);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    expect_err("{\"per_connection_buffer_limit_bytes\":{\"value\":1}}", CLUSTER_DESC,
               "expected a bare value");
    /* Strings: escaped on output, NUL refused on input. */
    Google__Protobuf__StringValue *sv = (Google__Protobuf__StringValue *)json_ok(
        "\"a\\\"b\\n\\u0001\xc3\xa9\"", &google__protobuf__string_value__descriptor, 0);
    js = print(&sv->base, 0);
    assert_string_equal(js, "\"a\\\"b\\n\\u0001\xc3\xa9\"");
    free(js);
    protobuf_c_message_free_unpacked(&sv->base, NULL);
    expect_err("\"a\\u0000b\"", &google__protobuf__string_value__descriptor, "NUL");
}

static void repeated_and_null(void **state)
{
    (void)state;
    Envoy__Config__Bootstrap__V3__Bootstrap *b = (Envoy__Config__Bootstrap__V3__Bootstrap *)json_ok(
        "{\"node_context_params\":[\"id\",\"cluster\"],\"static_resources\":null,\"admin\":{}}",
        BOOTSTRAP_DESC, 0);
    assert_int_equal(b->n_node_context_params, 2);
    assert_string_equal(b->node_context_params[1], "cluster");
    assert_null(b->static_resources);
    assert_non_null(b->admin); /* {} is present */
    char *js = print(&b->base, 0);
    /* Fields print in tag order (admin is 12, node_context_params 26). */
    assert_string_equal(js, "{\"admin\":{},\"node_context_params\":[\"id\",\"cluster\"]}");
    free(js);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    expect_err("{\"node_context_params\":[\"id\",null]}", BOOTSTRAP_DESC,
               "node_context_params[1]: null is not allowed");
    expect_err("{\"node_context_params\":\"id\"}", BOOTSTRAP_DESC, "expected an array");
    expect_err("[]", BOOTSTRAP_DESC, "expected an object (envoy.config.bootstrap.v3.Bootstrap)");
}

static void pretty_printing(void **state)
{
    (void)state;
    ProtobufCMessage *m = json_ok("{\"name\":\"a\",\"connect_timeout\":\"1s\"}", CLUSTER_DESC, 0);
    char *js = print(m, MP_PB_JSON_PRETTY);
    assert_string_equal(js, "{\n  \"name\": \"a\",\n  \"connect_timeout\": \"1s\"\n}\n");
    free(js);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void util_helpers(void **state)
{
    (void)state;
    int64_t s;
    int32_t n;
    assert_int_equal(mp_pb_duration_parse("0.5s", &s, &n), 0);
    assert_int_equal(n, 500000000);
    char buf[48];
    assert_int_equal(mp_pb_duration_format(0, 1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "0.000000001s");
    assert_int_equal(mp_pb_timestamp_format(-1, 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
    assert_int_equal(mp_pb_timestamp_parse(buf, &s, &n), 0);
    assert_true(s == -1);
    for (size_t len = 0; len < 10; len++) {
        uint8_t in[10];
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + 200);
        char enc[32];
        mp_base64_encode(in, len, enc);
        assert_int_equal(strlen(enc), mp_base64_encoded_len(len));
        uint8_t *dec;
        size_t dl;
        assert_int_equal(mp_base64_decode(enc, strlen(enc), &dec, &dl), 0);
        assert_int_equal(dl, len);
        if (len > 0)
            assert_memory_equal(dec, in, len);
        free(dec);
    }
    assert_int_equal(mp_pb_wkt_of(&google__protobuf__any__descriptor), MP_PB_WKT_ANY);
    assert_int_equal(mp_pb_wkt_of(CLUSTER_DESC), MP_PB_WKT_NONE);
    const ProtobufCFieldDescriptor *f =
        mp_pb_field_find(&envoy__config__core__v3__metadata__descriptor, "filterMetadata");
    assert_non_null(f);
    assert_true(mp_pb_field_is_map(&envoy__config__core__v3__metadata__descriptor, f));
    assert_false(mp_pb_field_is_map(BOOTSTRAP_DESC,
                                    mp_pb_field_find(BOOTSTRAP_DESC, "node_context_params")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_round_trips),
        cmocka_unit_test(integers),
        cmocka_unit_test(floats_and_doubles),
        cmocka_unit_test(durations),
        cmocka_unit_test(timestamps),
        cmocka_unit_test(any_fields),
        cmocka_unit_test(oneofs),
        cmocka_unit_test(unknown_fields),
        cmocka_unit_test(names_and_duplicates),
        cmocka_unit_test(structs_and_values),
        cmocka_unit_test(bytes_and_wrappers),
        cmocka_unit_test(repeated_and_null),
        cmocka_unit_test(pretty_printing),
        cmocka_unit_test(util_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
