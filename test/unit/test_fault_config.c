/* Unit tests for filters/http/fault_config.c: HTTPFault translation, the
 * percentage arithmetic, header-controlled faults and request qualification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/http/fault_config.h"
#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"
#include "proxy/route_table.h"

static int translate(const char *yaml, struct mp_fault_config **out, char **err)
{
    ProtobufCMessage *m = NULL;
    char *perr = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml),
                             &envoy__extensions__filters__http__fault__v3__httpfault__descriptor, 0,
                             &m, &perr);
    if (rc != 0)
        fprintf(stderr, "yaml: %s\n", perr ? perr : "?");
    free(perr);
    assert_int_equal(rc, 0);
    rc = mp_fault_config_from_proto((Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *)m,
                                    out, err);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

static struct mp_fault_config *load(const char *yaml)
{
    struct mp_fault_config *c = NULL;
    char *err = NULL;
    int rc = translate(yaml, &c, &err);
    if (rc != 0)
        fprintf(stderr, "fault: %s\n", err ? err : "?");
    free(err);
    assert_int_equal(rc, 0);
    return c;
}

static void expect_error(const char *yaml, const char *needle)
{
    struct mp_fault_config *c = NULL;
    char *err = NULL;
    assert_true(translate(yaml, &c, &err) < 0);
    assert_null(c);
    assert_non_null(err);
    if (!strstr(err, needle))
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, needle);
    assert_non_null(strstr(err, needle));
    free(err);
}

static struct mp_header_view g_hv[8];

/* A request; varargs are header name/value pairs, then NULL. */
static struct mp_route_request req(const char *first, ...)
{
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    const char *name = first;
    while (name) {
        const char *value = va_arg(ap, const char *);
        g_hv[n++] = (struct mp_header_view){name, strlen(name), value, strlen(value)};
        name = va_arg(ap, const char *);
    }
    va_end(ap);
    return (struct mp_route_request){.path = "/",
                                     .path_len = 1,
                                     .method = "GET",
                                     .method_len = 3,
                                     .headers = g_hv,
                                     .n_headers = n};
}

static void test_percent_hit(void **state)
{
    (void)state;
    struct mp_fault_percent p = {25, 100};
    unsigned hits = 0;
    for (uint64_t r = 0; r < 1000; r++)
        hits += mp_fault_percent_hit(p, r);
    assert_int_equal(hits, 250); /* exactly r % 100 < 25 */
    assert_true(mp_fault_percent_hit(p, 24));
    assert_false(mp_fault_percent_hit(p, 25));
    assert_true(mp_fault_percent_hit(p, 124));

    struct mp_fault_percent m = {1, 1000000};
    assert_true(mp_fault_percent_hit(m, 0));
    assert_true(mp_fault_percent_hit(m, 3000000));
    assert_false(mp_fault_percent_hit(m, 1));
    assert_false(mp_fault_percent_hit((struct mp_fault_percent){0, 100}, 0));
    /* a numerator beyond the denominator is 100% */
    assert_true(mp_fault_percent_hit((struct mp_fault_percent){150, 100}, 99));
    assert_false(mp_fault_percent_hit((struct mp_fault_percent){5, 0}, 0));
}

static void test_header_percent(void **state)
{
    (void)state;
    struct mp_fault_percent cfg = {50, 10000};
    struct mp_fault_percent p = mp_fault_header_percent(cfg, "20");
    assert_int_equal(p.numerator, 20);
    assert_int_equal(p.denominator, 10000);
    p = mp_fault_header_percent(cfg, "80"); /* capped at the configured numerator */
    assert_int_equal(p.numerator, 50);
    p = mp_fault_header_percent(cfg, NULL);
    assert_int_equal(p.numerator, 50);
    p = mp_fault_header_percent(cfg, "x1");
    assert_int_equal(p.numerator, 50);
    p = mp_fault_header_percent(cfg, "-1");
    assert_int_equal(p.numerator, 50);
    p = mp_fault_header_percent(cfg, "99999999999");
    assert_int_equal(p.numerator, 50);
    p = mp_fault_header_percent(cfg, "0");
    assert_int_equal(p.numerator, 0);
}

static void test_fixed_abort_and_delay(void **state)
{
    (void)state;
    struct mp_fault_config *c =
        load("abort: { http_status: 503, percentage: { numerator: 30, denominator: HUNDRED } }\n"
             "delay: { fixed_delay: 1.5s, percentage: { numerator: 10 } }\n"
             "max_active_faults: 7\n");
    assert_int_equal(c->abort, MP_FAULT_ABORT_HTTP);
    assert_int_equal(c->http_status, 503);
    assert_int_equal(c->delay, MP_FAULT_DELAY_FIXED);
    assert_int_equal(c->delay_ms, 1500);
    assert_true(c->has_max_active);
    assert_int_equal(c->max_active_faults, 7);
    struct mp_route_request rq = req(NULL);
    assert_true(mp_fault_request_qualifies(c, &rq));

    unsigned aborts = 0, delays = 0;
    for (uint64_t r = 0; r < 10000; r++) {
        struct mp_fault_abort a;
        uint64_t ms = 0;
        if (mp_fault_decide_abort(c, &rq, r, &a)) {
            aborts++;
            assert_int_equal(a.http_status, 503);
            assert_false(a.has_grpc);
        }
        if (mp_fault_decide_delay(c, &rq, r, &ms)) {
            delays++;
            assert_int_equal(ms, 1500);
        }
    }
    assert_int_equal(aborts, 3000);
    assert_int_equal(delays, 1000);
    /* fixed faults ignore the percentage headers */
    rq = req("x-envoy-fault-abort-request-percentage", "0", NULL);
    struct mp_fault_abort a;
    assert_true(mp_fault_decide_abort(c, &rq, 5, &a));
    mp_fault_config_free(c);

    /* no percentage: never (Envoy's FractionalPercent default is 0) */
    c = load("abort: { http_status: 500 }\ndelay: { fixed_delay: 0.001s }\n");
    uint64_t ms;
    rq = req(NULL);
    for (uint64_t r = 0; r < 200; r++) {
        assert_false(mp_fault_decide_abort(c, &rq, r, &a));
        assert_false(mp_fault_decide_delay(c, &rq, r, &ms));
    }
    assert_false(c->has_max_active);
    mp_fault_config_free(c);

    c = load("abort: { grpc_status: 14, percentage: { numerator: 100 } }\n");
    assert_true(mp_fault_decide_abort(c, &rq, 77, &a));
    assert_true(a.has_grpc);
    assert_int_equal(a.grpc_status, 14);
    assert_int_equal(a.http_status, 0);
    mp_fault_config_free(c);
}

static void test_header_faults(void **state)
{
    (void)state;
    struct mp_fault_config *c =
        load("abort: { header_abort: {}, percentage: { numerator: 100 } }\n"
             "delay: { header_delay: {}, percentage: { numerator: 50 } }\n");
    struct mp_fault_abort a;
    uint64_t ms;
    struct mp_route_request rq = req(NULL);
    assert_false(mp_fault_decide_abort(c, &rq, 0, &a)); /* no header: no fault */
    assert_false(mp_fault_decide_delay(c, &rq, 0, &ms));

    rq = req("x-envoy-fault-abort-request", "429", "x-envoy-fault-delay-request", "250", NULL);
    assert_true(mp_fault_decide_abort(c, &rq, 0, &a));
    assert_int_equal(a.http_status, 429);
    assert_true(mp_fault_decide_delay(c, &rq, 49, &ms));
    assert_int_equal(ms, 250);
    assert_false(mp_fault_decide_delay(c, &rq, 50, &ms)); /* 50% configured */

    /* the percentage header lowers the configured share */
    rq = req("x-envoy-fault-abort-request", "503", "x-envoy-fault-abort-request-percentage", "10",
             NULL);
    unsigned hits = 0;
    for (uint64_t r = 0; r < 100; r++)
        hits += mp_fault_decide_abort(c, &rq, r, &a);
    assert_int_equal(hits, 10);

    /* statuses out of [200, 600) and garbage are ignored */
    rq = req("x-envoy-fault-abort-request", "600", NULL);
    assert_false(mp_fault_decide_abort(c, &rq, 0, &a));
    rq = req("x-envoy-fault-abort-request", "abc", NULL);
    assert_false(mp_fault_decide_abort(c, &rq, 0, &a));
    rq = req("x-envoy-fault-delay-request", "0", NULL);
    assert_false(mp_fault_decide_delay(c, &rq, 0, &ms));

    /* a gRPC status from its header */
    rq = req("x-envoy-fault-abort-grpc-request", "8", NULL);
    assert_true(mp_fault_decide_abort(c, &rq, 0, &a));
    assert_true(a.has_grpc);
    assert_int_equal(a.grpc_status, 8);
    assert_int_equal(a.http_status, 0);
    mp_fault_config_free(c);
}

static void test_qualifies(void **state)
{
    (void)state;
    struct mp_fault_config *c =
        load("abort: { http_status: 503, percentage: { numerator: 100 } }\n"
             "headers:\n- { name: x-canary, string_match: { exact: 'yes' } }\n"
             "downstream_nodes: [ node-a, node-b ]\n");
    struct mp_route_request rq = req("x-canary", "yes", NULL);
    assert_false(mp_fault_request_qualifies(c, &rq)); /* node header missing */
    rq = req("x-canary", "yes", "x-envoy-downstream-service-node", "node-b", NULL);
    assert_true(mp_fault_request_qualifies(c, &rq));
    rq = req("x-canary", "yes", "x-envoy-downstream-service-node", "node-c", NULL);
    assert_false(mp_fault_request_qualifies(c, &rq));
    rq = req("x-canary", "no", "x-envoy-downstream-service-node", "node-a", NULL);
    assert_false(mp_fault_request_qualifies(c, &rq));
    mp_fault_config_free(c);

    c = load("upstream_cluster: backend\n");
    assert_string_equal(c->upstream_cluster, "backend");
    rq = req(NULL);
    assert_true(mp_fault_request_qualifies(c, &rq));
    mp_fault_config_free(c);

    /* an empty config injects nothing */
    c = NULL;
    char *err = NULL;
    assert_int_equal(mp_fault_config_from_bytes(NULL, 0, &c, &err), 0);
    struct mp_fault_abort a;
    uint64_t ms;
    assert_false(mp_fault_decide_abort(c, &rq, 0, &a));
    assert_false(mp_fault_decide_delay(c, &rq, 0, &ms));
    mp_fault_config_free(c);
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(mp_fault_config_from_bytes(junk, sizeof(junk), &c, &err), MP_ERR_PARSE);
    assert_non_null(err);
    free(err);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("abort: { http_status: 700 }\n", "abort.http_status: 700 is not in [200, 600)");
    expect_error("abort: { percentage: { numerator: 1 } }\n", "abort: one of http_status");
    expect_error("delay: { percentage: { numerator: 1 } }\n", "delay: one of fixed_delay");
    expect_error("delay: { fixed_delay: 0s }\n", "delay.fixed_delay: must be greater than 0");
    expect_error("response_rate_limit: { fixed_limit: { limit_kbps: 1 } }\n",
                 "response_rate_limit: not supported");
    expect_error("headers:\n- { name: '' }\n", "headers[0].name: must not be empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_hit),
        cmocka_unit_test(test_header_percent),
        cmocka_unit_test(test_fixed_abort_and_delay),
        cmocka_unit_test(test_header_faults),
        cmocka_unit_test(test_qualifies),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
