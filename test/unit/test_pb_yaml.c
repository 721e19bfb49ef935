/*
 * Unit tests for pb_yaml.c: YAML -> DOM -> protobuf, the bad config corpus,
 * plain-scalar typing, anchors, merge keys and limits.
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
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "proxy/bootstrap.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_yaml.h"

#define BOOTSTRAP_DESC (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define CLUSTER_DESC   (&envoy__config__cluster__v3__cluster__descriptor)

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

static ProtobufCMessage *yaml_ok(const char *text, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    if (mp_pb_from_yaml(text, strlen(text), d, 0, &m, &err) != 0)
        fail_msg("%s\n--> %s", text, err);
    return m;
}

static void yaml_err(const char *text, const ProtobufCMessageDescriptor *d, const char *want)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    if (mp_pb_from_yaml(text, strlen(text), d, 0, &m, &err) == 0)
        fail_msg("%s\n--> unexpectedly parsed", text);
    assert_null(m);
    assert_non_null(err);
    if (strstr(err, want) == NULL)
        fail_msg("%s\n--> error \"%s\" does not contain \"%s\"", text, err, want);
    free(err);
}

/* The expectation of a bad file: its "# expect: " first line, or <file>.expect. */
static char *expectation(const char *path, const char *text)
{
    const char *tag = "# expect: ";
    if (strncmp(text, tag, strlen(tag)) == 0) {
        const char *s = text + strlen(tag);
        size_t n = strcspn(s, "\n");
        char *e = malloc(n + 1);
        memcpy(e, s, n);
        e[n] = '\0';
        return e;
    }
    char side[4200];
    snprintf(side, sizeof(side), "%s.expect", path);
    size_t len;
    char *e = read_all(side, &len);
    if (e == NULL)
        fail_msg("%s: no '# expect:' line and no .expect file", path);
    e[strcspn(e, "\n")] = '\0';
    return e;
}

/* Every bad file fails to load or validate, naming the expected path. */
static void bad_corpus_names_paths(void **state)
{
    (void)state;
    assert_non_null(corpus_dir());
    char **files;
    size_t n = list_dir("bad", &files);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char *text = read_all(files[i], &len);
        assert_non_null(text);
        char *want = expectation(files[i], text);
        Bootstrap *b = NULL;
        char *err = NULL;
        int rc = mp_bootstrap_load_file(files[i], 0, &b, &err);
        if (rc == 0) {
            rc = mp_bootstrap_validate(b, &err);
            mp_bootstrap_free(b);
        }
        if (rc == 0)
            fail_msg("%s: accepted", files[i]);
        if (err == NULL || strstr(err, want) == NULL)
            fail_msg("%s: error \"%s\" does not name \"%s\"", files[i], err ? err : "(none)", want);
        free(err);
        free(want);
        free(text);
        free(files[i]);
    }
    free(files);
}

/* Every good file loads and passes the cheap checks. */
static void good_corpus_validates(void **state)
{
    (void)state;
    char **files;
    size_t n = list_dir("good", &files);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        Bootstrap *b = NULL;
        char *err = NULL;
        if (mp_bootstrap_load_file(files[i], 0, &b, &err) != 0 ||
            mp_bootstrap_validate(b, &err) != 0)
            fail_msg("%s: %s", files[i], err);
        mp_bootstrap_free(b);
        free(files[i]);
    }
    free(files);
}

static void plain_scalars_follow_the_field(void **state)
{
    (void)state;
    /* Plain scalars take the field's type; quoted ones are strings. */
    Cluster *c = (Cluster *)yaml_ok("name: 1.0\n"
                                    "alt_stat_name: yes\n"
                                    "respect_dns_ttl: True\n"
                                    "per_connection_buffer_limit_bytes: 0x10\n"
                                    "common_lb_config:\n"
                                    "  healthy_panic_threshold: { value: .inf }\n"
                                    "dns_lookup_family: 1\n",
                                    CLUSTER_DESC);
    assert_string_equal(c->name, "1.0");
    assert_string_equal(c->alt_stat_name, "yes"); /* YAML 1.2: not a bool */
    assert_true(c->respect_dns_ttl);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 16);
    assert_true(isinf(c->common_lb_config->healthy_panic_threshold->value));
    assert_int_equal(c->dns_lookup_family, 1);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    c = (Cluster *)yaml_ok(
        "per_connection_buffer_limit_bytes: 0o17\nname: ~\nalt_stat_name: \"~\"\n", CLUSTER_DESC);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 15);
    assert_string_equal(c->name, ""); /* ~ is null: unset */
    assert_string_equal(c->alt_stat_name, "~");
    protobuf_c_message_free_unpacked(&c->base, NULL);

    yaml_err("respect_dns_ttl: \"true\"\n", CLUSTER_DESC,
             "respect_dns_ttl: expected true or false");
    yaml_err("respect_dns_ttl: yes\n", CLUSTER_DESC, "expected true or false");
    yaml_err("per_connection_buffer_limit_bytes: '12'x\n", CLUSTER_DESC, "line 1");
    /* Quoted numbers are still numbers for numeric fields (proto3 JSON). */
    c = (Cluster *)yaml_ok("per_connection_buffer_limit_bytes: '12'\n", CLUSTER_DESC);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 12);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    /* Explicit tags: !!str forces a string, !!bool/!!int untype a quoted one. */
    c = (Cluster *)yaml_ok("name: !!str 12\nrespect_dns_ttl: !!bool \"true\"\n"
                           "per_connection_buffer_limit_bytes: !!int \"0x20\"\n",
                           CLUSTER_DESC);
    assert_string_equal(c->name, "12");
    assert_true(c->respect_dns_ttl);
    assert_int_equal(c->per_connection_buffer_limit_bytes->value, 32);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    /* Block scalars are strings. */
    c = (Cluster *)yaml_ok("name: |\n  two\n  lines\n", CLUSTER_DESC);
    assert_string_equal(c->name, "two\nlines\n");
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void struct_values_resolve_core_schema(void **state)
{
    (void)state;
    Google__Protobuf__Struct *s = (Google__Protobuf__Struct *)yaml_ok(
        "a: 1\nb: 2.5\nc: true\nd: ~\ne: hello\nf: '1'\ng: [x, 2]\nh: {k: v}\ni: .nan\nj: yes\n",
        &google__protobuf__struct__descriptor);
    assert_int_equal(s->n_fields, 10);
    assert_int_equal(s->fields[0]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_true(s->fields[1]->value->number_value == 2.5);
    assert_int_equal(s->fields[2]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    assert_int_equal(s->fields[3]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    assert_string_equal(s->fields[4]->value->string_value, "hello");
    assert_string_equal(s->fields[5]->value->string_value, "1");
    assert_int_equal(s->fields[6]->value->list_value->n_values, 2);
    assert_int_equal(s->fields[7]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    assert_true(isnan(s->fields[8]->value->number_value));
    assert_string_equal(s->fields[9]->value->string_value, "yes");
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void anchors_and_merge_keys(void **state)
{
    (void)state;
    Bootstrap *b = (Bootstrap *)yaml_ok("static_resources:\n"
                                        "  clusters:\n"
                                        "  - &c\n"
                                        "    name: one\n"
                                        "    connect_timeout: 1s\n"
                                        "    type: STATIC\n"
                                        "  - <<: *c\n"
                                        "    name: two\n"
                                        "  - name: three\n"
                                        "    <<: [{connect_timeout: 3s, name: ignored}, *c]\n"
                                        "  - *c\n",
                                        BOOTSTRAP_DESC);
    Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    assert_int_equal(sr->n_clusters, 4);
    assert_string_equal(sr->clusters[1]->name, "two"); /* explicit key wins */
    assert_true(sr->clusters[1]->connect_timeout->seconds == 1);
    assert_int_equal(sr->clusters[1]->type,
                     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC);
    assert_string_equal(sr->clusters[2]->name, "three");
    assert_true(sr->clusters[2]->connect_timeout->seconds == 3); /* earlier source wins */
    assert_string_equal(sr->clusters[3]->name, "one");
    protobuf_c_message_free_unpacked(&b->base, NULL);

    yaml_err("name: *nope\n", CLUSTER_DESC, "unknown anchor \"nope\"");
    yaml_err("a: &a [*a]\n", &google__protobuf__struct__descriptor, "unknown anchor \"a\"");
    yaml_err("<<: 5\nname: x\n", CLUSTER_DESC, "merge key");
    yaml_err("name: a\nname: b\n", CLUSTER_DESC, "line 2 column 1: duplicate key \"name\"");
    yaml_err("? [a]\n: b\n", CLUSTER_DESC, "mapping keys must be scalars");
}

static void alias_bombs_stop_at_the_limit(void **state)
{
    (void)state;
    /* Nine levels of ten-fold aliases: a billion nodes if expanded. */
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        n += (size_t)snprintf(
            text + n, sizeof(text) - n,
            "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1,
            i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    assert_int_equal(mp_yaml_parse(text, n, NULL, &doc, &err), MP_ERR_LIMIT);
    assert_null(doc);
    assert_non_null(strstr(err, "too many nodes"));
    free(err);
    /* Depth through aliases counts too. */
    struct mp_json_limits lim = {.max_depth = 4};
    err = NULL;
    assert_int_equal(mp_yaml_parse("a: &x [[1]]\nb: [[*x]]\n", 22, &lim, &doc, &err), MP_ERR_LIMIT);
    free(err);
}

static void documents_and_errors(void **state)
{
    (void)state;
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    assert_int_equal(mp_yaml_parse("a: 1\n---\nb: 2\n", 14, NULL, &doc, &err), MP_ERR_PARSE);
    assert_non_null(strstr(err, "more than one YAML document"));
    free(err);
    err = NULL;
    assert_int_equal(mp_yaml_parse("a: [1, 2\n", 9, NULL, &doc, &err), MP_ERR_PARSE);
    assert_non_null(strstr(err, "line 2"));
    free(err);
    /* Empty input is a null document. */
    assert_int_equal(mp_yaml_parse("", 0, NULL, &doc, NULL), 0);
    assert_int_equal(mp_json_doc_root(doc)->type, MP_JSON_NULL);
    mp_json_doc_free(doc);
    yaml_err("", BOOTSTRAP_DESC, "expected an object");
    /* JSON is YAML. */
    Cluster *c = (Cluster *)yaml_ok("{\"name\": \"j\", \"connectTimeout\": \"2s\"}", CLUSTER_DESC);
    assert_string_equal(c->name, "j");
    protobuf_c_message_free_unpacked(&c->base, NULL);
    /* Errors carry the YAML line of the bad value. */
    yaml_err("name: a\n\n\nconnect_timeout: 5\n", CLUSTER_DESC,
             "connect_timeout: invalid duration \"5\" (expected a string like \"1.5s\") (line 4)");
    yaml_err("name: a\nbogus:\n  x: 1\n", CLUSTER_DESC,
             "bogus: unknown field in envoy.config.cluster.v3.Cluster (line 2)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_corpus_names_paths),
        cmocka_unit_test(good_corpus_validates),
        cmocka_unit_test(plain_scalars_follow_the_field),
        cmocka_unit_test(struct_values_resolve_core_schema),
        cmocka_unit_test(anchors_and_merge_keys),
        cmocka_unit_test(alias_bombs_stop_at_the_limit),
        cmocka_unit_test(documents_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
