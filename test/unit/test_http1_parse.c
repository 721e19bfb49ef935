/* Unit tests for http1_parse.c: request heads, pipelining and smuggling defenses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/buffer.h"
#include "proxy/http1_parse.h"
#include "proxy/mp_common.h"

struct run {
    int rc;
    unsigned events;
    int status;
};

/* Feeds text (split into chunks of `step` bytes, 0 = one go) to p until done or error. */
static struct run feed(struct mp_http1_parser *p, struct mp_buffer *in, const char *text,
                       size_t step)
{
    struct run r = {0};
    size_t len = strlen(text), off = 0;
    if (step == 0)
        step = len ? len : 1;
    while (off < len) {
        size_t n = MP_MIN(step, len - off);
        assert_int_equal(mp_buffer_append_copy(in, text + off, n), 0);
        off += n;
        unsigned ev = 0;
        r.rc = mp_http1_parser_execute(p, in, &ev);
        r.events |= ev;
        if (r.rc < 0 || (ev & MP_H1_EV_DONE))
            break;
    }
    r.status = p->error_status;
    return r;
}

static void test_simple_get(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    struct run r = feed(&p, &in, "GET /a?b=1 HTTP/1.1\r\nHost: Example.com\r\nX-Y: z  \r\n\r\n", 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.events & MP_H1_EV_HEADERS);
    assert_true(r.events & MP_H1_EV_DONE);
    assert_string_equal(mp_headers_value(&p.headers, ":method"), "GET");
    assert_string_equal(mp_headers_value(&p.headers, ":path"), "/a?b=1");
    assert_string_equal(mp_headers_value(&p.headers, ":authority"), "Example.com");
    assert_string_equal(mp_headers_value(&p.headers, ":scheme"), "http");
    assert_null(mp_headers_value(&p.headers, "host"));
    assert_string_equal(mp_headers_value(&p.headers, "x-y"), "z"); /* trailing OWS trimmed */
    assert_string_equal(p.headers.v[0].name, ":method");
    assert_true(p.keep_alive);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_byte_by_byte_body_is_referenced(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    const char *req = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    size_t len = strlen(req);
    unsigned all = 0;
    size_t body = 0;
    for (size_t i = 0; i < len; i++) {
        mp_buffer_append_copy(&in, req + i, 1);
        unsigned ev = 0;
        assert_int_equal(mp_http1_parser_execute(&p, &in, &ev), 0);
        all |= ev;
        body += mp_buffer_len(&p.body);
        mp_buffer_clear(&p.body);
    }
    assert_int_equal(body, 5);
    assert_true(all & MP_H1_EV_DONE);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_pipelined_one_at_a_time(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    const char *two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    mp_buffer_append_copy(&in, two, strlen(two));
    unsigned ev;
    assert_int_equal(mp_http1_parser_execute(&p, &in, &ev), 0);
    assert_true(ev & MP_H1_EV_DONE);
    assert_string_equal(mp_headers_value(&p.headers, ":path"), "/1");
    /* the second request waits until the first is done */
    assert_int_equal(mp_buffer_len(&in), strlen(two) / 2);
    assert_int_equal(mp_http1_parser_execute(&p, &in, &ev), 0);
    assert_int_equal(ev, 0);
    mp_http1_parser_next(&p);
    assert_int_equal(mp_http1_parser_execute(&p, &in, &ev), 0);
    assert_true(ev & MP_H1_EV_DONE);
    assert_string_equal(mp_headers_value(&p.headers, ":path"), "/2");
    assert_int_equal(mp_buffer_len(&in), 0);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_chunked_with_trailers(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    struct run r = feed(&p, &in,
                        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 42\r\n\r\n",
                        7);
    assert_int_equal(r.rc, 0);
    assert_true(r.events & MP_H1_EV_TRAILERS);
    assert_true(p.chunked);
    assert_string_equal(mp_headers_value(&p.trailers, "x-checksum"), "42");
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_absolute_form_target(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    struct run r =
        feed(&p, &in, "GET http://svc.local:8080/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(mp_headers_value(&p.headers, ":authority"), "svc.local:8080");
    assert_string_equal(mp_headers_value(&p.headers, ":path"), "/x/y?q");
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_expect_continue_and_http10(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    struct run r =
        feed(&p, &in,
             "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", 0);
    assert_int_equal(r.rc, 0);
    assert_true(p.expect_continue);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
    mp_http1_parser_init(&p, true);
    r = feed(&p, &in, "GET / HTTP/1.0\r\n\r\n", 0);
    assert_int_equal(r.rc, 0); /* HTTP/1.0 may omit Host */
    assert_int_equal(p.http_minor, 0);
    assert_false(p.keep_alive);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

struct bad {
    const char *text;
    int status;
};

static void test_smuggling_rejected(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET nothing HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        for (size_t step = 0; step <= 3; step += 3) {
            struct mp_http1_parser p;
            struct mp_buffer in = MP_BUFFER_INIT;
            mp_http1_parser_init(&p, true);
            struct run r = feed(&p, &in, cases[i].text, step);
            if (r.rc != MP_ERR_PROTO || r.status != cases[i].status)
                fail_msg("case %zu (step %zu): rc %d status %d, want %d", i, step, r.rc, r.status,
                         cases[i].status);
            /* a rejected head never reaches the stream */
            if (step == 0 && (r.events & MP_H1_EV_HEADERS) && cases[i].status != 400)
                fail_msg("case %zu: headers event despite error", i);
            mp_buffer_clear(&in);
            mp_http1_parser_free(&p);
        }
    }
}

static void test_header_limits(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, true);
    p.max_headers = 3;
    struct run r = feed(&p, &in, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0);
    assert_int_equal(r.rc, MP_ERR_PROTO);
    assert_int_equal(r.status, 431);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
    mp_http1_parser_init(&p, true);
    p.max_header_bytes = 64;
    char big[256];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: %0100d\r\n\r\n", 1);
    r = feed(&p, &in, big, 0);
    assert_int_equal(r.status, 431);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
}

static void test_responses(void **state)
{
    (void)state;
    struct mp_http1_parser p;
    struct mp_buffer in = MP_BUFFER_INIT;
    mp_http1_parser_init(&p, false);
    struct run r = feed(&p, &in, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(mp_headers_value(&p.headers, ":status"), "404");
    assert_int_equal(mp_buffer_len(&p.body), 2);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
    /* HEAD: a Content-Length but no body */
    mp_http1_parser_init(&p, false);
    p.skip_body = true;
    r = feed(&p, &in, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.events & MP_H1_EV_DONE);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
    /* body until close */
    mp_http1_parser_init(&p, false);
    r = feed(&p, &in, "HTTP/1.0 200 OK\r\n\r\nabc", 0);
    assert_int_equal(r.rc, 0);
    assert_false(r.events & MP_H1_EV_DONE);
    unsigned ev;
    assert_int_equal(mp_http1_parser_eof(&p, &ev), 0);
    assert_true(ev & MP_H1_EV_DONE);
    mp_buffer_clear(&in);
    mp_http1_parser_free(&p);
    assert_string_equal(mp_http_reason(503), "Service Unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_byte_by_byte_body_is_referenced),
        cmocka_unit_test(test_pipelined_one_at_a_time),
        cmocka_unit_test(test_chunked_with_trailers),
        cmocka_unit_test(test_absolute_form_target),
        cmocka_unit_test(test_expect_continue_and_http10),
        cmocka_unit_test(test_smuggling_rejected),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
