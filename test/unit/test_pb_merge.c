/* Unit tests for pb_merge.c: MergeFrom semantics and deep copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_merge.h"

static ProtobufCMessage *from(const char *json, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    if (mp_pb_from_json(json, strlen(json), d, 0, &m, &err) != 0)
        fail_msg("%s: %s", json, err);
    return m;
}

/* Merges src into dst and compares the result's JSON with want. */
static void merge_expect(const char *dst_json, const char *src_json, const char *want,
                         const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *dst = from(dst_json, d), *src = from(src_json, d);
    assert_int_equal(mp_pb_merge(dst, src), 0);
    char *js = NULL;
    assert_int_equal(mp_pb_to_json(dst, 0, &js, NULL, NULL), 0);
    if (strcmp(js, want) != 0)
        fail_msg("merge of %s into %s:\n got  %s\n want %s", src_json, dst_json, js, want);
    free(js);
    protobuf_c_message_free_unpacked(dst, NULL);
    protobuf_c_message_free_unpacked(src, NULL);
}

static void scalars_messages_repeated(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *cd = &envoy__config__cluster__v3__cluster__descriptor;
    /* set scalars win; defaults in src do not erase; repeated appends. A
     * Duration is a message, so it merges field by field as in C++'s
     * MergeFrom (and so in Envoy): 1s merged with 0.5s is 1.5s. */
    merge_expect("{\"name\":\"a\",\"type\":\"STRICT_DNS\",\"dns_lookup_family\":\"V4_ONLY\","
                 "\"connect_timeout\":\"1s\",\"health_checks\":[{\"timeout\":\"1s\"}]}",
                 "{\"name\":\"b\",\"connect_timeout\":\"0.500s\",\"health_checks\":[{\"timeout\":"
                 "\"2s\"}],\"respect_dns_ttl\":true}",
                 "{\"name\":\"b\",\"type\":\"STRICT_DNS\",\"connect_timeout\":\"1.500s\","
                 "\"health_checks\":[{\"timeout\":\"1s\"},{\"timeout\":\"2s\"}],"
                 "\"dns_lookup_family\":\"V4_ONLY\",\"respect_dns_ttl\":true}",
                 cd);
}

static void oneofs_switch_and_merge(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *rd = &envoy__config__route__v3__route_action__descriptor;
    /* a different member replaces (and frees) the old one */
    merge_expect("{\"weighted_clusters\":{\"clusters\":[{\"name\":\"a\",\"weight\":1}]}}",
                 "{\"cluster\":\"b\"}", "{\"cluster\":\"b\"}", rd);
    merge_expect("{\"cluster\":\"b\"}", "{\"cluster_header\":\"x\"}", "{\"cluster_header\":\"x\"}",
                 rd);
    /* the same message member merges */
    merge_expect("{\"weighted_clusters\":{\"clusters\":[{\"name\":\"a\",\"weight\":1}]}}",
                 "{\"weighted_clusters\":{\"clusters\":[{\"name\":\"b\",\"weight\":2}]}}",
                 "{\"weighted_clusters\":{\"clusters\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
                 "\"b\",\"weight\":2}]}}",
                 rd);
    /* a oneof member set to its default still counts */
    const ProtobufCMessageDescriptor *vd = &google__protobuf__value__descriptor;
    merge_expect("\"x\"", "false", "false", vd);
}

static void maps_replace_by_key(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *md = &envoy__config__core__v3__metadata__descriptor;
    merge_expect("{\"filter_metadata\":{\"a\":{\"x\":1},\"b\":{\"y\":2}}}",
                 "{\"filter_metadata\":{\"b\":{\"z\":3},\"c\":{}}}",
                 "{\"filter_metadata\":{\"a\":{\"x\":1},\"b\":{\"z\":3},\"c\":{}}}", md);
}

static void copies_are_deep(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *cd = &envoy__config__cluster__v3__cluster__descriptor;
    ProtobufCMessage *m = from("{\"name\":\"a\",\"metadata\":{\"filter_metadata\":{\"k\":{\"v\":[1,"
                               "\"s\"]}}},\"connect_timeout\":\"2s\"}",
                               cd);
    ProtobufCMessage *c = mp_pb_copy(m);
    assert_non_null(c);
    assert_ptr_not_equal(c, m);
    Envoy__Config__Cluster__V3__Cluster *mc = (Envoy__Config__Cluster__V3__Cluster *)m;
    Envoy__Config__Cluster__V3__Cluster *cc = (Envoy__Config__Cluster__V3__Cluster *)c;
    assert_ptr_not_equal(mc->name, cc->name);
    assert_ptr_not_equal(mc->metadata, cc->metadata);
    protobuf_c_message_free_unpacked(m, NULL); /* the copy must not care */
    char *js = NULL;
    assert_int_equal(mp_pb_to_json(c, 0, &js, NULL, NULL), 0);
    assert_string_equal(js, "{\"name\":\"a\",\"connect_timeout\":\"2s\",\"metadata\":{\"filter_"
                            "metadata\":{\"k\":{\"v\":[1,\"s\"]}}}}");
    free(js);
    /* Different types do not merge. */
    ProtobufCMessage *other = from("{}", &envoy__config__core__v3__metadata__descriptor);
    assert_int_equal(mp_pb_merge(c, other), MP_ERR_INVAL);
    protobuf_c_message_free_unpacked(other, NULL);
    protobuf_c_message_free_unpacked(c, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_messages_repeated),
        cmocka_unit_test(oneofs_switch_and_merge),
        cmocka_unit_test(maps_replace_by_key),
        cmocka_unit_test(copies_are_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
