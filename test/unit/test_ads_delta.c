/* Unit tests for ads_delta.c: the incremental xDS state machine, driven
 * without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ads_test_util.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest DeltaReq;

static struct mp_ads_session *new_session(struct rec *r)
{
    return ads_test_session_new(MP_XDS_DELTA, "node-1", NULL, r);
}

/* A new session whose stream started and whose first requests were taken. */
static struct mp_ads_session *started_session(struct rec *r)
{
    struct mp_ads_session *s = new_session(r);
    mp_ads_session_stream_start(s);
    ads_test_drain(s);
    return s;
}

/* irv: "name=version,..." of initial_resource_versions, sorted by name */
static char *irv_string(const DeltaReq *q)
{
    char *out = calloc(1, 1024);
    for (size_t i = 0; i < q->n_initial_resource_versions; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, q->initial_resource_versions[i]->key);
        strcat(out, "=");
        strcat(out, q->initial_resource_versions[i]->value);
    }
    return out;
}

static void expect_delta(struct mp_ads_session *s, const char *type_url, const char *nonce,
                         const char *sub, const char *unsub, const char *irv, int has_node,
                         const char *error)
{
    DeltaReq *q = pop_delta(s);
    assert_non_null(q);
    assert_string_equal(q->type_url, type_url);
    assert_string_equal(q->response_nonce, nonce);
    char *x = joined(q->resource_names_subscribe, q->n_resource_names_subscribe);
    assert_string_equal(x, sub);
    free(x);
    x = joined(q->resource_names_unsubscribe, q->n_resource_names_unsubscribe);
    assert_string_equal(x, unsub);
    free(x);
    x = irv_string(q);
    assert_string_equal(x, irv);
    free(x);
    ads_test_expect_node_and_error(q->node, q->error_detail, has_node ? "node-1" : NULL, error);
    req_free(q);
}

static void first_requests_are_legacy_wildcard(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = new_session(&r);
    assert_int_equal(mp_ads_session_stream_start(s), 0);
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "", "", "", "", 1, NULL);
    expect_delta(s, MP_XDS_TYPE_LISTENER, "", "", "", "", 0, NULL);
    assert_null(pop_delta(s));
    mp_ads_session_free(s);
}

static void ack_subscribe_and_removal(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("a", 1, NULL), make_cluster("b", 1, "b-svc")};
    const char *va[] = {"1", "4"};
    assert_int_equal(feed_delta(s, MP_XDS_TYPE_CLUSTER, "n1", a, va, 2, NULL, 0), 0);
    assert_string_equal(r.names[0], "a,b");
    assert_string_equal(r.versions[0], "1,4");
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "n1", "", "", "", 0, NULL);
    expect_delta(s, MP_XDS_TYPE_ENDPOINT, "", "a,b-svc", "", "", 0, NULL);
    assert_null(pop_delta(s));
    assert_string_equal(mp_ads_session_held_version(s, MP_XDS_TYPE_CLUSTER, "b"), "4");

    /* a changed resource alone: the others stay */
    Google__Protobuf__Any *a2[] = {make_cluster("a", 1, NULL)};
    const char *va2[] = {"2"};
    feed_delta(s, MP_XDS_TYPE_CLUSTER, "n2", a2, va2, 1, NULL, 0);
    assert_string_equal(r.removed[1], "");
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "n2", "", "", "", 0, NULL);
    assert_null(pop_delta(s)); /* EDS names unchanged */
    assert_int_equal(mp_ads_session_held_count(s, MP_XDS_TYPE_CLUSTER), 2);

    /* removal: only names the client holds are reported */
    const char *rm[] = {"b", "never-had"};
    feed_delta(s, MP_XDS_TYPE_CLUSTER, "n3", NULL, NULL, 0, rm, 2);
    assert_string_equal(r.removed[2], "b");
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "n3", "", "", "", 0, NULL);
    expect_delta(s, MP_XDS_TYPE_ENDPOINT, "", "", "b-svc", "", 0, NULL);
    assert_null(mp_ads_session_held_version(s, MP_XDS_TYPE_CLUSTER, "b"));
    rec_free(&r);
    mp_ads_session_free(s);
}

static void nack_and_duplicates(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    r.nack_with = "Listener \"l\": address: missing";
    Google__Protobuf__Any *l[] = {make_listener("l", "r1")};
    const char *v[] = {"1"};
    feed_delta(s, MP_XDS_TYPE_LISTENER, "n1", l, v, 1, NULL, 0);
    expect_delta(s, MP_XDS_TYPE_LISTENER, "n1", "", "", "", 0, "Listener \"l\": address: missing");
    assert_null(pop_delta(s)); /* rejected: no RDS subscription */
    assert_int_equal(mp_ads_session_held_count(s, MP_XDS_TYPE_LISTENER), 0);

    Google__Protobuf__Any *d[] = {make_cluster("x", 0, NULL), make_cluster("x", 0, NULL)};
    const char *vd[] = {"1", "2"};
    feed_delta(s, MP_XDS_TYPE_CLUSTER, "n2", d, vd, 2, NULL, 0);
    assert_int_equal(r.calls, 1);
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "n2", "", "", "", 0, "duplicate resource name \"x\"");
    rec_free(&r);
    mp_ads_session_free(s);
}

static void reconnect_sends_initial_versions(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("a", 1, NULL), make_cluster("c", 0, NULL)};
    const char *va[] = {"1", "9"};
    feed_delta(s, MP_XDS_TYPE_CLUSTER, "n1", a, va, 2, NULL, 0);
    Google__Protobuf__Any *e[] = {make_cla("a"), make_cla("other")};
    const char *ve[] = {"5", "6"};
    feed_delta(s, MP_XDS_TYPE_ENDPOINT, "n2", e, ve, 2, NULL, 0);
    assert_string_equal(r.names[1], "a"); /* "other" was not subscribed */
    ads_test_drain(s);

    mp_ads_session_stream_end(s);
    mp_ads_session_stream_start(s);
    expect_delta(s, MP_XDS_TYPE_CLUSTER, "", "", "", "a=1,c=9", 1, NULL);
    expect_delta(s, MP_XDS_TYPE_ENDPOINT, "", "a", "", "a=5", 0, NULL);
    expect_delta(s, MP_XDS_TYPE_LISTENER, "", "", "", "", 0, NULL);
    assert_null(pop_delta(s));
    rec_free(&r);
    mp_ads_session_free(s);
}

static void explicit_names_diff(void **state)
{
    (void)state;
    struct rec r = {0};
    const char *t[] = {MP_XDS_TYPE_SECRET};
    struct mp_ads_session_config cfg = {
        .mode = MP_XDS_DELTA, .type_urls = t, .n_type_urls = 1, .ops = &rec_ops, .ctx = &r};
    struct mp_ads_session *s = NULL;
    assert_int_equal(mp_ads_session_new(&cfg, &s, NULL), 0);
    mp_ads_session_stream_start(s);
    assert_null(pop_delta(s)); /* SDS is named: nothing to ask yet */
    const char *n1[] = {"default", "ROOTCA"};
    mp_ads_session_set_names(s, MP_XDS_TYPE_SECRET, n1, 2);
    DeltaReq *q = pop_delta(s);
    assert_non_null(q);
    assert_non_null(q->node); /* the first request of the stream */
    char *x = joined(q->resource_names_subscribe, q->n_resource_names_subscribe);
    assert_string_equal(x, "ROOTCA,default");
    free(x);
    req_free(q);
    const char *n2[] = {"default", "other"};
    mp_ads_session_set_names(s, MP_XDS_TYPE_SECRET, n2, 2);
    q = pop_delta(s);
    x = joined(q->resource_names_subscribe, q->n_resource_names_subscribe);
    assert_string_equal(x, "other");
    free(x);
    x = joined(q->resource_names_unsubscribe, q->n_resource_names_unsubscribe);
    assert_string_equal(x, "ROOTCA");
    free(x);
    assert_null(q->node);
    req_free(q);
    rec_free(&r);
    mp_ads_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_requests_are_legacy_wildcard),
        cmocka_unit_test(ack_subscribe_and_removal),
        cmocka_unit_test(nack_and_duplicates),
        cmocka_unit_test(reconnect_sends_initial_versions),
        cmocka_unit_test(explicit_names_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
