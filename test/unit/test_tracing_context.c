/* Unit tests: B3 / W3C trace context extraction and injection (proxy/tracing_context.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http_headers.h"
#include "proxy/mp_common.h"
#include "proxy/tracing_context.h"

static void b3_multi(void **st)
{
    (void)st;
    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_add_cstr(&h, "x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
    mp_headers_add_cstr(&h, "x-b3-spanid", "a2fb4a1d1a96d312");
    mp_headers_add_cstr(&h, "x-b3-parentspanid", "0020000000000001");
    mp_headers_add_cstr(&h, "x-b3-sampled", "1");
    struct mp_trace_context c;
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 1);
    assert_true(c.trace_id_high == 0x463ac35c9f6413adull);
    assert_true(c.trace_id == 0x48485a3953bb6124ull);
    assert_true(c.span_id == 0xa2fb4a1d1a96d312ull);
    assert_true(c.has_parent);
    assert_true(c.parent_id == 0x0020000000000001ull);
    assert_int_equal(c.sampled, 1);
    assert_false(c.debug);
    mp_headers_clear(&h);

    /* 64-bit trace id, no parent, flags=1 (debug) */
    mp_headers_add_cstr(&h, "x-b3-traceid", "48485a3953bb6124");
    mp_headers_add_cstr(&h, "x-b3-spanid", "48485a3953bb6124");
    mp_headers_add_cstr(&h, "x-b3-flags", "1");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 1);
    assert_true(c.trace_id_high == 0);
    assert_false(c.has_parent);
    assert_true(c.debug);
    assert_int_equal(c.sampled, 1);
    mp_headers_clear(&h);

    /* half a context and bad hex are invalid */
    mp_headers_add_cstr(&h, "x-b3-traceid", "48485a3953bb6124");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), MP_ERR_INVAL);
    mp_headers_add_cstr(&h, "x-b3-spanid", "zz485a3953bb6124");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), MP_ERR_INVAL);
    mp_headers_clear(&h);

    /* lone sampling decision */
    mp_headers_add_cstr(&h, "x-b3-sampled", "0");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 0);
    assert_int_equal(c.sampled, 0);
    mp_headers_clear(&h);
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 0);
    assert_int_equal(c.sampled, -1);
}

static void b3_single(void **st)
{
    (void)st;
    struct mp_headers h;
    mp_headers_init(&h);
    struct mp_trace_context c;
    mp_headers_add_cstr(&h, "b3",
                        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 1);
    assert_true(c.trace_id_high == 0x80f198ee56343ba8ull);
    assert_true(c.trace_id == 0x64fe8b2a57d3eff7ull);
    assert_true(c.span_id == 0xe457b5a2e4d86bd1ull);
    assert_int_equal(c.sampled, 1);
    assert_true(c.has_parent && c.parent_id == 0x05e3ac9a4f6e3b90ull);
    mp_headers_clear(&h);

    mp_headers_add_cstr(&h, "b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 1);
    assert_int_equal(c.sampled, -1);
    assert_false(c.has_parent);
    mp_headers_clear(&h);

    mp_headers_add_cstr(&h, "b3", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-d");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 1);
    assert_true(c.debug);
    assert_int_equal(c.sampled, 1);
    mp_headers_clear(&h);

    mp_headers_add_cstr(&h, "b3", "0");
    assert_int_equal(mp_trace_context_extract_b3(&h, &c), 0);
    assert_int_equal(c.sampled, 0);
    mp_headers_clear(&h);

    static const char *const bad[] = {
        "64fe8b2a57d3eff7",                                        /* no span id */
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-",                      /* trailing dash */
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-x",                     /* bad sampled */
        "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-00", /* too many parts */
        "64fe8b2a57d3eff7-e457b5a2e4d86bd-1",                      /* short span id */
        "0000000000000000-e457b5a2e4d86bd1",                       /* zero trace id */
        "maybe",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mp_headers_add_cstr(&h, "b3", bad[i]);
        assert_int_equal(mp_trace_context_extract_b3(&h, &c), MP_ERR_INVAL);
        mp_headers_clear(&h);
    }
}

static void b3_inject(void **st)
{
    (void)st;
    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_add_cstr(&h, "b3", "1");
    mp_headers_add_cstr(&h, "x-b3-flags", "1");
    struct mp_trace_context c = {.trace_id_high = 0x1122334455667788ull,
                                 .trace_id = 0x99aabbccddeeff00ull,
                                 .span_id = 0xabcull,
                                 .parent_id = 0x5ull,
                                 .has_parent = true,
                                 .sampled = 1};
    assert_int_equal(mp_trace_context_inject_b3(&c, &h), 0);
    assert_string_equal(mp_headers_value(&h, "x-b3-traceid"), "112233445566778899aabbccddeeff00");
    assert_string_equal(mp_headers_value(&h, "x-b3-spanid"), "0000000000000abc");
    assert_string_equal(mp_headers_value(&h, "x-b3-parentspanid"), "0000000000000005");
    assert_string_equal(mp_headers_value(&h, "x-b3-sampled"), "1");
    assert_null(mp_headers_get(&h, "b3"));
    assert_null(mp_headers_get(&h, "x-b3-flags"));
    /* round trip */
    struct mp_trace_context back;
    assert_int_equal(mp_trace_context_extract_b3(&h, &back), 1);
    assert_true(back.trace_id_high == c.trace_id_high && back.trace_id == c.trace_id &&
                back.span_id == c.span_id && back.parent_id == c.parent_id);
    c.has_parent = false;
    c.sampled = 0;
    c.trace_id_high = 0;
    assert_int_equal(mp_trace_context_inject_b3(&c, &h), 0);
    assert_null(mp_headers_get(&h, "x-b3-parentspanid"));
    assert_string_equal(mp_headers_value(&h, "x-b3-sampled"), "0");
    assert_string_equal(mp_headers_value(&h, "x-b3-traceid"), "99aabbccddeeff00");
    assert_int_equal(mp_headers_count(&h, "x-b3-traceid"), 1);
    mp_headers_clear(&h);
}

static void w3c(void **st)
{
    (void)st;
    struct mp_headers h;
    mp_headers_init(&h);
    struct mp_trace_context c;
    assert_int_equal(mp_trace_context_extract_w3c(&h, &c), 0);
    mp_headers_add_cstr(&h, "traceparent",
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    mp_headers_add_cstr(&h, "tracestate", "congo=t61rcWkgMzE");
    assert_int_equal(mp_trace_context_extract_w3c(&h, &c), 1);
    assert_true(c.trace_id_high == 0x0af7651916cd43ddull);
    assert_true(c.trace_id == 0x8448eb211c80319cull);
    assert_true(c.span_id == 0xb7ad6b7169203331ull);
    assert_int_equal(c.sampled, 1);
    assert_string_equal(c.tracestate, "congo=t61rcWkgMzE");
    mp_headers_clear(&h);

    static const char *const bad[] = {
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", /* v00 is exact */
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",       /* version ff */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",       /* zero trace */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",       /* zero span */
        "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mp_headers_add_cstr(&h, "traceparent", bad[i]);
        assert_int_equal(mp_trace_context_extract_w3c(&h, &c), MP_ERR_INVAL);
        mp_headers_clear(&h);
    }
    /* a later version may carry more fields */
    mp_headers_add_cstr(&h, "traceparent",
                        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-x");
    assert_int_equal(mp_trace_context_extract_w3c(&h, &c), 1);
    assert_int_equal(c.sampled, 0);
    mp_headers_clear(&h);

    struct mp_trace_context o = {.trace_id_high = 1, .trace_id = 2, .span_id = 3, .sampled = 1};
    strcpy(o.tracestate, "a=b");
    assert_int_equal(mp_trace_context_inject_w3c(&o, &h), 0);
    assert_string_equal(mp_headers_value(&h, "traceparent"),
                        "00-00000000000000010000000000000002-0000000000000003-01");
    assert_string_equal(mp_headers_value(&h, "tracestate"), "a=b");
    mp_headers_clear(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b3_multi),
        cmocka_unit_test(b3_single),
        cmocka_unit_test(b3_inject),
        cmocka_unit_test(w3c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
