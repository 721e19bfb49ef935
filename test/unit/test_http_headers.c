/* Unit tests for http_headers.c: the header list and Envoy's header transforms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/http_headers.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"

static void test_add_get_set_remove(void **state)
{
    (void)state;
    struct mp_headers h;
    mp_headers_init(&h);
    assert_int_equal(mp_headers_add_cstr(&h, "X-Mixed-Case", "v1"), 0);
    assert_int_equal(mp_headers_add_cstr(&h, "x-mixed-case", "v2"), 0);
    assert_int_equal(mp_headers_add_cstr(&h, "other", "o"), 0);
    assert_string_equal(h.v[0].name, "x-mixed-case"); /* stored lower-case */
    assert_string_equal(mp_headers_value(&h, "X-MIXED-CASE"), "v1");
    assert_int_equal(mp_headers_count(&h, "x-mixed-case"), 2);
    assert_int_equal(mp_headers_set_cstr(&h, "x-mixed-case", "only"), 0);
    assert_int_equal(mp_headers_count(&h, "x-mixed-case"), 1);
    assert_string_equal(h.v[0].value, "only"); /* replaced in place */
    assert_int_equal(h.bytes, strlen("x-mixed-case") + 4 + strlen("other") + 1);
    assert_int_equal(mp_headers_remove(&h, "OTHER"), 1);
    assert_int_equal(h.n, 1);
    assert_int_equal(mp_headers_set_cstr(&h, "new", "n"), 0); /* set appends when absent */
    assert_string_equal(mp_headers_value(&h, "new"), "n");
    struct mp_headers c;
    mp_headers_init(&c);
    assert_int_equal(mp_headers_copy(&c, &h), 0);
    assert_int_equal(c.n, h.n);
    assert_ptr_not_equal(c.v[0].name, h.v[0].name);
    mp_headers_clear(&c);
    mp_headers_clear(&h);
    assert_int_equal(h.n, 0);
}

static void test_pseudo_first_is_stable(void **state)
{
    (void)state;
    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_add_cstr(&h, "a", "1");
    mp_headers_add_cstr(&h, ":method", "GET");
    mp_headers_add_cstr(&h, "b", "2");
    mp_headers_add_cstr(&h, ":path", "/");
    mp_headers_pseudo_first(&h);
    const char *want[] = {":method", ":path", "a", "b"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(h.v[i].name, want[i]);
    mp_headers_clear(&h);
}

static void test_hop_by_hop(void **state)
{
    (void)state;
    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_add_cstr(&h, "connection", "keep-alive, X-Private, host");
    mp_headers_add_cstr(&h, "x-private", "secret");
    mp_headers_add_cstr(&h, "keep-alive", "timeout=5");
    mp_headers_add_cstr(&h, "proxy-connection", "keep-alive");
    mp_headers_add_cstr(&h, "transfer-encoding", "chunked");
    mp_headers_add_cstr(&h, "upgrade", "h2c");
    mp_headers_add_cstr(&h, "te", "gzip");
    mp_headers_add_cstr(&h, "host", "kept");
    mp_headers_add_cstr(&h, "x-end", "kept");
    mp_headers_strip_hop_by_hop(&h);
    assert_int_equal(h.n, 2);
    assert_string_equal(mp_headers_value(&h, "host"), "kept");
    assert_string_equal(mp_headers_value(&h, "x-end"), "kept");
    mp_headers_clear(&h);
    /* te: trailers survives (gRPC needs it) */
    mp_headers_add_cstr(&h, "te", "trailers");
    mp_headers_strip_hop_by_hop(&h);
    assert_string_equal(mp_headers_value(&h, "te"), "trailers");
    mp_headers_clear(&h);
}

static void test_token_list(void **state)
{
    (void)state;
    const char *v = " keep-alive ,Close,  upgrade";
    assert_true(mp_http_token_list_has(v, strlen(v), "close"));
    assert_true(mp_http_token_list_has(v, strlen(v), "UPGRADE"));
    assert_true(mp_http_token_list_has(v, strlen(v), "keep-alive"));
    assert_false(mp_http_token_list_has(v, strlen(v), "clos"));
    assert_false(mp_http_token_list_has("", 0, "close"));
}

static void test_uuid_and_flags(void **state)
{
    (void)state;
    char a[37], b[37];
    mp_uuid4(a);
    mp_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
    char buf[64];
    assert_string_equal(mp_http_response_flags_str(0, buf, sizeof(buf)), "-");
    assert_string_equal(
        mp_http_response_flags_str(MP_RF_UPSTREAM_CONNECT_FAIL | MP_RF_NO_ROUTE, buf, sizeof(buf)),
        "UF,NR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_set_remove), cmocka_unit_test(test_pseudo_first_is_stable),
        cmocka_unit_test(test_hop_by_hop),         cmocka_unit_test(test_token_list),
        cmocka_unit_test(test_uuid_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
