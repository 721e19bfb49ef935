/* Unit tests for ads_sotw.c and ads_session.c: the state-of-the-world
 * xDS state machine, driven without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ads_test_util.h"

#define NODE_ID "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local"

static struct mp_ads_session *new_session(struct rec *r)
{
    return ads_test_session_new(MP_XDS_SOTW, NODE_ID, "app", r);
}

/* A new session whose stream started and whose first requests were taken. */
static struct mp_ads_session *started_session(struct rec *r)
{
    struct mp_ads_session *s = new_session(r);
    mp_ads_session_stream_start(s);
    ads_test_drain(s);
    return s;
}

static void expect_request(struct mp_ads_session *s, const char *type_url, const char *version,
                           const char *nonce, const char *names, int has_node, const char *error)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest *q = pop_sotw(s);
    assert_non_null(q);
    assert_string_equal(q->type_url, type_url);
    assert_string_equal(q->version_info, version);
    assert_string_equal(q->response_nonce, nonce);
    char *n = joined(q->resource_names, q->n_resource_names);
    assert_string_equal(n, names);
    free(n);
    ads_test_expect_node_and_error(q->node, q->error_detail, has_node ? NODE_ID : NULL, error);
    req_free(q);
}

static void first_requests_are_wildcard_with_node_once(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = new_session(&r);
    assert_false(mp_ads_session_has_request(s));
    assert_int_equal(mp_ads_session_stream_start(s), 0);
    /* CDS then LDS; EDS and RDS have no names yet, so nothing for them. */
    expect_request(s, MP_XDS_TYPE_CLUSTER, "", "", "", 1, NULL);
    expect_request(s, MP_XDS_TYPE_LISTENER, "", "", "", 0, NULL);
    assert_null(pop_sotw(s));
    assert_true(mp_ads_session_type_waiting(s, 0));
    assert_false(mp_ads_session_type_waiting(s, 1));
    mp_ads_session_free(s);
}

static void ack_carries_version_and_nonce_and_eds_follows_cds(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = new_session(&r);
    mp_ads_session_stream_start(s);
    req_free(pop_sotw(s));
    req_free(pop_sotw(s));
    Google__Protobuf__Any *a[] = {make_cluster("a", 1, NULL), make_cluster("b", 1, "b-svc"),
                                  make_cluster("c", 0, NULL)};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "v1", "n1", a, 3), 0);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.names[0], "a,b,c");
    assert_string_equal(r.versions[0], "v1,v1,v1");
    assert_string_equal(r.removed[0], "");
    expect_request(s, MP_XDS_TYPE_CLUSTER, "v1", "n1", "", 0, NULL);
    /* EDS subscription: cluster name, or eds service_name; STATIC adds none */
    expect_request(s, MP_XDS_TYPE_ENDPOINT, "", "", "a,b-svc", 0, NULL);
    assert_null(pop_sotw(s));
    assert_string_equal(mp_ads_session_version(s, MP_XDS_TYPE_CLUSTER), "v1");
    assert_int_equal(mp_ads_session_held_count(s, MP_XDS_TYPE_CLUSTER), 3);

    char **pending;
    size_t np;
    assert_int_equal(mp_ads_session_pending_names(s, MP_XDS_TYPE_ENDPOINT, &pending, &np), 0);
    char *pj = joined(pending, np);
    assert_string_equal(pj, "a,b-svc");
    free(pj);
    mp_xds_names_free(pending, np);

    /* EDS: a server may send more than asked; only subscribed names count */
    Google__Protobuf__Any *e[] = {make_cla("a"), make_cla("zzz")};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_ENDPOINT, "e1", "n2", e, 2), 0);
    assert_string_equal(r.names[1], "a");
    assert_true(r.complete[0]);  /* CDS: the full set */
    assert_false(r.complete[1]); /* EDS: only what was named */
    expect_request(s, MP_XDS_TYPE_ENDPOINT, "e1", "n2", "a,b-svc", 0, NULL);
    assert_int_equal(mp_ads_session_pending_names(s, MP_XDS_TYPE_ENDPOINT, &pending, &np), 0);
    assert_int_equal(np, 1);
    assert_string_equal(pending[0], "b-svc");
    mp_xds_names_free(pending, np);
    rec_free(&r);
    mp_ads_session_free(s);
}

static void absent_cds_resources_are_removed_and_eds_unsubscribed(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("a", 1, NULL), make_cluster("b", 1, NULL)};
    feed_sotw(s, MP_XDS_TYPE_CLUSTER, "1", "n1", a, 2);
    Google__Protobuf__Any *e[] = {make_cla("a"), make_cla("b")};
    feed_sotw(s, MP_XDS_TYPE_ENDPOINT, "1", "n2", e, 2);
    ads_test_drain(s);
    assert_int_equal(r.calls, 2);

    Google__Protobuf__Any *a2[] = {make_cluster("a", 1, NULL)};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "2", "n3", a2, 1), 0);
    assert_string_equal(r.names[2], "a");
    assert_string_equal(r.removed[2], "b");
    /* then the client drops the CLA nothing refers to any more */
    assert_int_equal(r.kind[3], MP_XDS_UPDATE_UNSUBSCRIBED);
    assert_string_equal(r.type_url[3], MP_XDS_TYPE_ENDPOINT);
    assert_string_equal(r.removed[3], "b");
    expect_request(s, MP_XDS_TYPE_CLUSTER, "2", "n3", "", 0, NULL);
    expect_request(s, MP_XDS_TYPE_ENDPOINT, "1", "n2", "a", 0, NULL);
    assert_null(mp_ads_session_held_version(s, MP_XDS_TYPE_CLUSTER, "b"));
    assert_null(mp_ads_session_held_version(s, MP_XDS_TYPE_ENDPOINT, "b"));
    assert_string_equal(mp_ads_session_held_version(s, MP_XDS_TYPE_ENDPOINT, "a"), "1");

    /* an empty LDS/CDS response removes everything */
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "3", "n4", NULL, 0), 0);
    assert_string_equal(r.removed[4], "a");
    expect_request(s, MP_XDS_TYPE_CLUSTER, "3", "n4", "", 0, NULL);
    /* EDS now wants nothing: an empty subscription goes out */
    expect_request(s, MP_XDS_TYPE_ENDPOINT, "1", "n2", "", 0, NULL);
    rec_free(&r);
    mp_ads_session_free(s);
}

static void nack_keeps_last_good_version(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("a", 0, NULL)};
    feed_sotw(s, MP_XDS_TYPE_CLUSTER, "1", "n1", a, 1);
    req_free(pop_sotw(s));

    r.nack_with = "Cluster \"b\": connect_timeout: must be positive";
    Google__Protobuf__Any *b[] = {make_cluster("a", 0, NULL), make_cluster("b", 0, NULL)};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "2", "n2", b, 2), 0);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "1", "n2", "", 0,
                   "Cluster \"b\": connect_timeout: must be positive");
    assert_null(pop_sotw(s));
    assert_string_equal(mp_ads_session_version(s, MP_XDS_TYPE_CLUSTER), "1");
    assert_null(mp_ads_session_held_version(s, MP_XDS_TYPE_CLUSTER, "b"));

    /* the next good response is ACKed as usual */
    Google__Protobuf__Any *c[] = {make_cluster("a", 0, NULL)};
    feed_sotw(s, MP_XDS_TYPE_CLUSTER, "3", "n3", c, 1);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "3", "n3", "", 0, NULL);
    rec_free(&r);
    mp_ads_session_free(s);
}

static void duplicate_names_and_bad_types_are_nacked_before_the_watcher(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("x", 0, NULL), make_cluster("x", 0, NULL)};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "1", "n1", a, 2), 0);
    assert_int_equal(r.calls, 0);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "", "n1", "", 0, "duplicate resource name \"x\"");

    Google__Protobuf__Any *b[] = {make_cluster("x", 0, NULL), make_cla("y")};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "2", "n2", b, 2), 0);
    assert_int_equal(r.calls, 0);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "", "n2", "", 0, "resources[1]: type_url");

    /* undecodable bytes inside the Any */
    Google__Protobuf__Any *bad = make_cluster("x", 0, NULL);
    bad->value.data[0] = 0xff;
    bad->value.data[1] = 0xff;
    Google__Protobuf__Any *c[] = {bad};
    assert_int_equal(feed_sotw(s, MP_XDS_TYPE_CLUSTER, "3", "n3", c, 1), 0);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "", "n3", "", 0, "resources[0]: malformed");

    /* a response that is not a DiscoveryResponse at all resets the stream */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(mp_ads_session_on_message(s, junk, sizeof(junk)), MP_ERR_PROTO);
    /* an unknown type is ignored */
    assert_int_equal(feed_sotw(s, "type.googleapis.com/foo.Bar", "1", "n9", NULL, 0), 0);
    assert_null(pop_sotw(s));
    rec_free(&r);
    mp_ads_session_free(s);
}

static void reconnect_resends_versions_without_nonces(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *a[] = {make_cluster("a", 1, NULL)};
    feed_sotw(s, MP_XDS_TYPE_CLUSTER, "7", "n1", a, 1);
    Google__Protobuf__Any *e[] = {make_cla("a")};
    feed_sotw(s, MP_XDS_TYPE_ENDPOINT, "8", "n2", e, 1);
    Google__Protobuf__Any *l[] = {make_listener("l1", "r1")};
    feed_sotw(s, MP_XDS_TYPE_LISTENER, "9", "n3", l, 1);
    ads_test_drain(s);

    mp_ads_session_stream_end(s);
    assert_int_equal(mp_ads_session_stream_start(s), 0);
    expect_request(s, MP_XDS_TYPE_CLUSTER, "7", "", "", 1, NULL);
    expect_request(s, MP_XDS_TYPE_ENDPOINT, "8", "", "a", 0, NULL);
    expect_request(s, MP_XDS_TYPE_LISTENER, "9", "", "", 0, NULL);
    expect_request(s, MP_XDS_TYPE_ROUTE, "", "", "r1", 0, NULL);
    assert_null(pop_sotw(s));
    rec_free(&r);
    mp_ads_session_free(s);
}

static void lds_names_routes_and_explicit_names_add(void **state)
{
    (void)state;
    struct rec r = {0};
    struct mp_ads_session *s = started_session(&r);
    Google__Protobuf__Any *l[] = {make_listener("l1", "r1"), make_listener("l2", "r0")};
    feed_sotw(s, MP_XDS_TYPE_LISTENER, "1", "n1", l, 2);
    expect_request(s, MP_XDS_TYPE_LISTENER, "1", "n1", "", 0, NULL);
    expect_request(s, MP_XDS_TYPE_ROUTE, "", "", "r0,r1", 0, NULL);

    const char *extra[] = {"r9"};
    assert_int_equal(mp_ads_session_set_names(s, MP_XDS_TYPE_ROUTE, extra, 1), 0);
    expect_request(s, MP_XDS_TYPE_ROUTE, "", "", "r0,r1,r9", 0, NULL);
    /* setting the same names again sends nothing */
    assert_int_equal(mp_ads_session_set_names(s, MP_XDS_TYPE_ROUTE, extra, 1), 0);
    assert_null(pop_sotw(s));
    assert_int_equal(mp_ads_session_set_names(s, "type.googleapis.com/x.Y", extra, 1),
                     MP_ERR_NOTFOUND);

    Google__Protobuf__Any *rt[] = {make_route("r1"), make_route("r9")};
    feed_sotw(s, MP_XDS_TYPE_ROUTE, "5", "n2", rt, 2);
    assert_string_equal(r.names[1], "r1,r9");
    expect_request(s, MP_XDS_TYPE_ROUTE, "5", "n2", "r0,r1,r9", 0, NULL);
    rec_free(&r);
    mp_ads_session_free(s);
}

static void config_errors(void **state)
{
    (void)state;
    struct rec r = {0};
    const char *dup[] = {MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_CLUSTER};
    struct mp_ads_session_config cfg = {
        .type_urls = dup, .n_type_urls = 2, .ops = &rec_ops, .ctx = &r};
    struct mp_ads_session *s = NULL;
    char *err = NULL;
    assert_int_equal(mp_ads_session_new(&cfg, &s, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "listed twice"));
    free(err);
    err = NULL;
    cfg.n_type_urls = 0;
    assert_int_equal(mp_ads_session_new(&cfg, &s, &err), MP_ERR_INVAL);
    free(err);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_requests_are_wildcard_with_node_once),
        cmocka_unit_test(ack_carries_version_and_nonce_and_eds_follows_cds),
        cmocka_unit_test(absent_cds_resources_are_removed_and_eds_unsubscribed),
        cmocka_unit_test(nack_keeps_last_good_version),
        cmocka_unit_test(duplicate_names_and_bad_types_are_nacked_before_the_watcher),
        cmocka_unit_test(reconnect_resends_versions_without_nonces),
        cmocka_unit_test(lds_names_routes_and_explicit_names_add),
        cmocka_unit_test(config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
