/*
 * test_ratelimit_request.c: rate limit descriptors from route actions, the
 * RateLimitRequest on the wire, and RateLimitResponse reading
 * (filters/http/ratelimit_request.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/service/ratelimit/v3/rls.pb-c.h"
#include "filters/http/ratelimit_request.h"
#include "proxy/mp_common.h"

static struct mp_headers hdrs;

static int setup(void **state)
{
    (void)state;
    mp_headers_init(&hdrs);
    mp_headers_add_cstr(&hdrs, ":method", "GET");
    mp_headers_add_cstr(&hdrs, ":path", "/cart?item=7&debug=1");
    mp_headers_add_cstr(&hdrs, ":authority", "shop");
    mp_headers_add_cstr(&hdrs, "x-user", "alice");
    mp_headers_add_cstr(&hdrs, "x-tier", "gold");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mp_headers_clear(&hdrs);
    return 0;
}

static const struct mp_rl_request_info info = {
    .headers = &hdrs,
    .remote_address = "10.20.30.40",
    .destination_cluster = "backend",
    .source_cluster = "frontend",
};

static struct mp_rate_limit_action act(enum mp_rate_limit_action_kind kind, const char *key,
                                       const char *value)
{
    struct mp_rate_limit_action a = {
        .kind = kind, .descriptor_key = key, .descriptor_value = value, .expect_match = true};
    return a;
}

static struct mp_rate_limit_action header_act(const char *name, const char *key, bool skip)
{
    struct mp_rate_limit_action a = act(MP_RL_REQUEST_HEADERS, key, NULL);
    a.header_name = name;
    a.header_name_len = strlen(name);
    a.skip_if_absent = skip;
    return a;
}

static void assert_entry(const struct mp_rl_descriptor *d, size_t i, const char *k, const char *v)
{
    assert_true(i < d->n);
    assert_string_equal(d->entries[i].key, k);
    assert_string_equal(d->entries[i].value, v);
}

static void test_basic_actions(void **state)
{
    (void)state;
    struct mp_rate_limit_action a[] = {
        act(MP_RL_SOURCE_CLUSTER, "source_cluster", NULL),
        act(MP_RL_DESTINATION_CLUSTER, "destination_cluster", NULL),
        header_act("x-user", "user", false),
        act(MP_RL_REMOTE_ADDRESS, "remote_address", NULL),
        act(MP_RL_GENERIC_KEY, "generic_key", "checkout"),
        header_act(":path", "path", false),
    };
    struct mp_rate_limit rl = {.actions = a, .n_actions = MP_ARRAY_LEN(a)};
    struct mp_rl_descriptors d = {0};
    assert_int_equal(mp_rl_descriptors_build(&rl, 1, 0, &info, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].n, 6);
    assert_entry(&d.v[0], 0, "source_cluster", "frontend");
    assert_entry(&d.v[0], 1, "destination_cluster", "backend");
    assert_entry(&d.v[0], 2, "user", "alice");
    assert_entry(&d.v[0], 3, "remote_address", "10.20.30.40");
    assert_entry(&d.v[0], 4, "generic_key", "checkout");
    assert_entry(&d.v[0], 5, "path", "/cart?item=7&debug=1");
    mp_rl_descriptors_clear(&d);
}

static void test_missing_header_and_stage(void **state)
{
    (void)state;
    struct mp_rate_limit_action drop[] = {act(MP_RL_GENERIC_KEY, "k", "v"),
                                          header_act("x-absent", "a", false)};
    struct mp_rate_limit_action skip[] = {act(MP_RL_GENERIC_KEY, "k", "v"),
                                          header_act("x-absent", "a", true)};
    struct mp_rate_limit_action only_absent[] = {header_act("x-absent", "a", true)};
    struct mp_rate_limit_action staged[] = {act(MP_RL_GENERIC_KEY, "stage", "one")};
    struct mp_rate_limit rl[] = {
        {.actions = drop, .n_actions = 2},
        {.actions = skip, .n_actions = 2},
        {.actions = only_absent, .n_actions = 1},
        {.stage = 1, .actions = staged, .n_actions = 1},
    };
    struct mp_rl_descriptors d = {0};
    assert_int_equal(mp_rl_descriptors_build(rl, 4, 0, &info, &d), 0);
    /* drop: the missing header drops it; skip: the entry alone is skipped;
     * only_absent: nothing left; staged: another stage */
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].n, 1);
    assert_entry(&d.v[0], 0, "k", "v");
    /* a second build appends (route limits, then the virtual host's) */
    assert_int_equal(mp_rl_descriptors_build(rl, 4, 1, &info, &d), 0);
    assert_int_equal(d.n, 2);
    assert_entry(&d.v[1], 0, "stage", "one");
    mp_rl_descriptors_clear(&d);

    /* no remote address, no destination: those descriptors are dropped */
    struct mp_rate_limit_action ra[] = {act(MP_RL_REMOTE_ADDRESS, "remote_address", NULL)};
    struct mp_rate_limit r1 = {.actions = ra, .n_actions = 1};
    struct mp_rl_request_info bare = {.headers = &hdrs};
    assert_int_equal(mp_rl_descriptors_build(&r1, 1, 0, &bare, &d), 0);
    assert_int_equal(d.n, 0);
}

static void test_value_matches_and_mask(void **state)
{
    (void)state;
    struct mp_header_match gold = {
        .name = "x-tier",
        .name_len = 6,
        .kind = MP_HEADER_MATCH_STRING,
        .str = {.kind = MP_STRING_MATCH_EXACT, .value = "gold", .value_len = 4},
    };
    struct mp_query_match debug = {
        .name = "debug",
        .name_len = 5,
        .str = {.kind = MP_STRING_MATCH_EXACT, .value = "1", .value_len = 1},
    };
    struct mp_rate_limit_action hm = act(MP_RL_HEADER_VALUE_MATCH, "header_match", "gold-tier");
    hm.headers = &gold;
    hm.n_headers = 1;
    struct mp_rate_limit_action hm_not = hm;
    hm_not.expect_match = false;
    hm_not.descriptor_value = "not-gold";
    struct mp_rate_limit_action qm = act(MP_RL_QUERY_PARAMETER_VALUE_MATCH, "query_match", "dbg");
    qm.query_params = &debug;
    qm.n_query_params = 1;
    struct mp_rate_limit_action mask =
        act(MP_RL_MASKED_REMOTE_ADDRESS, "masked_remote_address", NULL);
    mask.v4_prefix_len = 16;
    mask.v6_prefix_len = 64;
    struct mp_rate_limit_action a1[] = {hm, qm, mask};
    struct mp_rate_limit_action a2[] = {hm_not};
    struct mp_rate_limit rl[] = {{.actions = a1, .n_actions = 3}, {.actions = a2, .n_actions = 1}};
    struct mp_rl_descriptors d = {0};
    assert_int_equal(mp_rl_descriptors_build(rl, 2, 0, &info, &d), 0);
    assert_int_equal(d.n, 1); /* expect_match false on a matching header: dropped */
    assert_entry(&d.v[0], 0, "header_match", "gold-tier");
    assert_entry(&d.v[0], 1, "query_match", "dbg");
    assert_entry(&d.v[0], 2, "masked_remote_address", "10.20.0.0/16");
    mp_rl_descriptors_clear(&d);

    struct mp_rl_request_info v6 = info;
    v6.remote_address = "2001:db8:1:2:3:4:5:6";
    struct mp_rate_limit r1 = {.actions = &mask, .n_actions = 1};
    assert_int_equal(mp_rl_descriptors_build(&r1, 1, 0, &v6, &d), 0);
    assert_int_equal(d.n, 1);
    assert_entry(&d.v[0], 0, "masked_remote_address", "2001:db8:1:2::/64");
    mp_rl_descriptors_clear(&d);
}

static void test_request_on_the_wire(void **state)
{
    (void)state;
    struct mp_rate_limit_action a1[] = {header_act("x-user", "user", false)};
    struct mp_rate_limit_action a2[] = {act(MP_RL_GENERIC_KEY, "generic_key", "g"),
                                        act(MP_RL_REMOTE_ADDRESS, "remote_address", NULL)};
    struct mp_rate_limit rl[] = {{.actions = a1, .n_actions = 1}, {.actions = a2, .n_actions = 2}};
    struct mp_rl_descriptors d = {0};
    assert_int_equal(mp_rl_descriptors_build(rl, 2, 0, &info, &d), 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(mp_rl_request_pack("edge", &d, &buf, &len), 0);
    mp_rl_descriptors_clear(&d);
    Envoy__Service__Ratelimit__V3__RateLimitRequest *req =
        envoy__service__ratelimit__v3__rate_limit_request__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(req);
    assert_string_equal(req->domain, "edge");
    assert_int_equal(req->n_descriptors, 2);
    assert_int_equal(req->descriptors[0]->n_entries, 1);
    assert_string_equal(req->descriptors[0]->entries[0]->key, "user");
    assert_string_equal(req->descriptors[0]->entries[0]->value, "alice");
    assert_int_equal(req->descriptors[1]->n_entries, 2);
    assert_string_equal(req->descriptors[1]->entries[1]->key, "remote_address");
    assert_string_equal(req->descriptors[1]->entries[1]->value, "10.20.30.40");
    envoy__service__ratelimit__v3__rate_limit_request__free_unpacked(req, NULL);
}

static void test_response(void **state)
{
    (void)state;
    Envoy__Service__Ratelimit__V3__RateLimitResponse r =
        ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_RESPONSE__INIT;
    Envoy__Config__Core__V3__HeaderValue h1 = ENVOY__CONFIG__CORE__V3__HEADER_VALUE__INIT, h2 = h1;
    h1.key = "x-ratelimit-remaining";
    h1.value = "0";
    h2.key = "x-rl-request";
    h2.value = "seen";
    Envoy__Config__Core__V3__HeaderValue *p1 = &h1, *p2 = &h2;
    r.overall_code = ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_RESPONSE__CODE__OVER_LIMIT;
    r.response_headers_to_add = &p1;
    r.n_response_headers_to_add = 1;
    r.request_headers_to_add = &p2;
    r.n_request_headers_to_add = 1;
    size_t len = envoy__service__ratelimit__v3__rate_limit_response__get_packed_size(&r);
    uint8_t *buf = malloc(len);
    envoy__service__ratelimit__v3__rate_limit_response__pack(&r, buf);
    struct mp_rl_result res;
    mp_rl_result_init(&res);
    assert_int_equal(mp_rl_response_parse(buf, len, &res), 0);
    assert_int_equal(res.code, MP_RL_OVER_LIMIT);
    assert_string_equal(mp_headers_value(&res.response_headers, "x-ratelimit-remaining"), "0");
    assert_string_equal(mp_headers_value(&res.request_headers, "x-rl-request"), "seen");
    mp_rl_result_clear(&res);
    free(buf);

    r.overall_code = ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_RESPONSE__CODE__OK;
    r.n_response_headers_to_add = 0;
    r.n_request_headers_to_add = 0;
    len = envoy__service__ratelimit__v3__rate_limit_response__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    envoy__service__ratelimit__v3__rate_limit_response__pack(&r, buf);
    assert_int_equal(mp_rl_response_parse(buf, len, &res), 0);
    assert_int_equal(res.code, MP_RL_OK);
    mp_rl_result_clear(&res);
    free(buf);

    /* UNKNOWN (an empty message) is reported as such: the filter treats it as an error */
    assert_int_equal(mp_rl_response_parse((const uint8_t *)"", 0, &res), 0);
    assert_int_equal(res.code, MP_RL_UNKNOWN);
    static const uint8_t junk[] = {0x08, 0xff, 0xff};
    assert_int_equal(mp_rl_response_parse(junk, sizeof(junk), &res), MP_ERR_PARSE);
    mp_rl_result_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_header_and_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_matches_and_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_on_the_wire, setup, teardown),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
