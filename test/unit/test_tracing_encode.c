/*
 * Unit tests: Zipkin v2 JSON (proxy/tracing_zipkin.c), the collector POST
 * (proxy/tracing_export.c) and OTLP protobuf (proxy/tracing_otel.c) encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/json.h"
#include "proxy/mp_common.h"
#include "proxy/tracing.h"
#include "proxy/tracing_export.h"
#include "proxy/tracing_otel.h"
#include "proxy/tracing_zipkin.h"

static struct mp_span *make_span(void)
{
    struct mp_span *sp = calloc(1, sizeof(*sp));
    sp->name = strdup("svc:8080");
    sp->ctx.trace_id_high = 0x0102030405060708ull;
    sp->ctx.trace_id = 0x1112131415161718ull;
    sp->ctx.span_id = 0xa1a2a3a4a5a6a7a8ull;
    sp->ctx.parent_id = 0xb1ull;
    sp->ctx.has_parent = true;
    sp->kind = MP_SPAN_SERVER;
    sp->shared = true;
    sp->start_wall_us = 1700000000000000ll;
    sp->duration_us = 1234;
    strcpy(sp->local_ip, "10.0.0.1");
    strcpy(sp->remote_ip, "::1");
    sp->remote_port = 5555;
    mp_span_set_tag_cstr(sp, "http.method", "GET");
    mp_span_set_tag_cstr(sp, "odd", "a\"b\\c\n\x01");
    mp_span_set_tag_cstr(sp, "error", "true");
    sp->logs[0].wall_us = 1700000000000100ll;
    sp->logs[0].event = "last_downstream_rx_byte_received";
    sp->n_logs = 1;
    return sp;
}

static const char *jstr(const struct mp_json *o, const char *k)
{
    const struct mp_json *v = mp_json_object_get(o, k);
    return v && v->type == MP_JSON_STRING ? v->u.str.s : NULL;
}

static void zipkin_json(void **st)
{
    (void)st;
    struct mp_span *sp = make_span();
    struct mp_trace_buf b = {0};
    mp_trace_buf_puts(&b, "[");
    mp_zipkin_encode_span(sp, "reviews.default", &b);
    mp_trace_buf_puts(&b, ",");
    sp->kind = MP_SPAN_CLIENT;
    sp->shared = false;
    sp->ctx.has_parent = false;
    sp->ctx.trace_id_high = 0;
    sp->remote_ip[0] = '\0';
    mp_zipkin_encode_span(sp, "reviews.default", &b);
    mp_trace_buf_puts(&b, "]");
    assert_false(b.oom);
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    assert_int_equal(mp_json_parse(b.p, b.len, NULL, &doc, &err), 0);
    const struct mp_json *arr = mp_json_doc_root(doc);
    assert_int_equal(arr->type, MP_JSON_ARRAY);
    assert_int_equal(arr->u.arr.n, 2);
    const struct mp_json *s0 = arr->u.arr.items[0];
    assert_string_equal(jstr(s0, "traceId"), "01020304050607081112131415161718");
    assert_string_equal(jstr(s0, "id"), "a1a2a3a4a5a6a7a8");
    assert_string_equal(jstr(s0, "parentId"), "00000000000000b1");
    assert_string_equal(jstr(s0, "kind"), "SERVER");
    assert_string_equal(jstr(s0, "name"), "svc:8080");
    assert_string_equal(mp_json_object_get(s0, "timestamp")->u.str.s, "1700000000000000");
    assert_string_equal(mp_json_object_get(s0, "duration")->u.str.s, "1234");
    assert_true(mp_json_object_get(s0, "shared")->u.boolean);
    const struct mp_json *le = mp_json_object_get(s0, "localEndpoint");
    assert_string_equal(jstr(le, "serviceName"), "reviews.default");
    assert_string_equal(jstr(le, "ipv4"), "10.0.0.1");
    const struct mp_json *re = mp_json_object_get(s0, "remoteEndpoint");
    assert_string_equal(jstr(re, "ipv6"), "::1");
    assert_string_equal(mp_json_object_get(re, "port")->u.str.s, "5555");
    const struct mp_json *ann = mp_json_object_get(s0, "annotations");
    assert_non_null(ann);
    assert_int_equal(ann->u.arr.n, 1);
    assert_string_equal(jstr(ann->u.arr.items[0], "value"), "last_downstream_rx_byte_received");
    assert_string_equal(mp_json_object_get(ann->u.arr.items[0], "timestamp")->u.str.s,
                        "1700000000000100");
    const struct mp_json *tags = mp_json_object_get(s0, "tags");
    assert_string_equal(jstr(tags, "http.method"), "GET");
    assert_string_equal(jstr(tags, "odd"), "a\"b\\c\n\x01");
    const struct mp_json *s1 = arr->u.arr.items[1];
    assert_string_equal(jstr(s1, "kind"), "CLIENT");
    assert_string_equal(jstr(s1, "traceId"), "1112131415161718");
    assert_null(mp_json_object_get(s1, "parentId"));
    assert_null(mp_json_object_get(s1, "shared"));
    assert_null(mp_json_object_get(s1, "remoteEndpoint"));
    mp_json_doc_free(doc);
    mp_trace_buf_free(&b);
    mp_span_free(sp);
}

static void zipkin_request(void **st)
{
    (void)st;
    char *req = NULL;
    size_t len = 0;
    assert_int_equal(mp_tracing_zipkin_request("/api/v2/spans", "zipkin", "{}", 2, &req, &len), 0);
    const char *want = "POST /api/v2/spans HTTP/1.1\r\nHost: zipkin\r\nContent-Type: "
                       "application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\n[{}]";
    assert_int_equal(len, strlen(want));
    assert_string_equal(req, want);
    free(req);
}

/* ---- a minimal protobuf reader for checking the OTLP bytes ---- */
struct field {
    unsigned num, wire;
    uint64_t v;
    const uint8_t *p;
    size_t len;
};

static size_t read_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80))
            return i + 1;
    }
    return 0;
}

/* Finds the idx-th occurrence of field num in msg. */
static bool find(const uint8_t *p, size_t n, unsigned num, int idx, struct field *f)
{
    size_t o = 0;
    while (o < n) {
        uint64_t k;
        size_t r = read_varint(p + o, n - o, &k);
        assert_true(r > 0);
        o += r;
        f->num = (unsigned)(k >> 3);
        f->wire = (unsigned)(k & 7);
        if (f->wire == 0) {
            o += read_varint(p + o, n - o, &f->v);
        } else if (f->wire == 1) {
            f->v = 0;
            for (int i = 0; i < 8; i++)
                f->v |= (uint64_t)p[o + i] << (8 * i);
            o += 8;
        } else if (f->wire == 2) {
            uint64_t l;
            o += read_varint(p + o, n - o, &l);
            f->p = p + o;
            f->len = l;
            o += l;
        } else {
            fail_msg("unexpected wire type %u", f->wire);
        }
        assert_true(o <= n);
        if (f->num == num && idx-- == 0)
            return true;
    }
    return false;
}

static void otlp(void **st)
{
    (void)st;
    struct mp_span *sp = make_span();
    struct mp_trace_buf spans = {0}, req;
    mp_otel_encode_span(sp, &spans);
    sp->ctx.span_id = 0x42;
    mp_otel_encode_span(sp, &spans);
    assert_false(spans.oom);
    assert_int_equal(mp_otel_export_request(&spans, "reviews", &req), 0);
    struct field rs, res, attr, val, ss, span, f;
    assert_true(find((uint8_t *)req.p, req.len, 1, 0, &rs)); /* resource_spans */
    assert_true(find(rs.p, rs.len, 1, 0, &res));             /* resource */
    assert_true(find(res.p, res.len, 1, 0, &attr));          /* attributes[0] */
    assert_true(find(attr.p, attr.len, 1, 0, &f));           /* key */
    assert_int_equal(f.len, strlen("service.name"));
    assert_memory_equal(f.p, "service.name", f.len);
    assert_true(find(attr.p, attr.len, 2, 0, &val));
    assert_true(find(val.p, val.len, 1, 0, &f)); /* string_value */
    assert_memory_equal(f.p, "reviews", 7);
    assert_true(find(rs.p, rs.len, 2, 0, &ss)); /* scope_spans */
    assert_true(find(ss.p, ss.len, 2, 0, &span));
    assert_true(find(span.p, span.len, 1, 0, &f)); /* trace_id, big-endian */
    assert_int_equal(f.len, 16);
    assert_memory_equal(f.p, "\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18",
                        16);
    assert_true(find(span.p, span.len, 2, 0, &f));
    assert_memory_equal(f.p, "\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8", 8);
    assert_true(find(span.p, span.len, 4, 0, &f)); /* parent_span_id */
    assert_memory_equal(f.p, "\0\0\0\0\0\0\0\xb1", 8);
    assert_true(find(span.p, span.len, 5, 0, &f));
    assert_memory_equal(f.p, "svc:8080", 8);
    assert_true(find(span.p, span.len, 6, 0, &f));
    assert_int_equal(f.v, 2); /* SERVER */
    assert_true(find(span.p, span.len, 7, 0, &f));
    assert_true(f.v == 1700000000000000ull * 1000);
    assert_true(find(span.p, span.len, 8, 0, &f));
    assert_true(f.v == 1700000000000000ull * 1000 + 1234000);
    assert_true(find(span.p, span.len, 9, 2, &attr)); /* third tag: error */
    assert_true(find(span.p, span.len, 11, 0, &f));   /* events[0] */
    struct field ev;
    assert_true(find(f.p, f.len, 1, 0, &ev));
    assert_true(ev.v == 1700000000000100ull * 1000);
    assert_true(find(f.p, f.len, 2, 0, &ev));
    assert_memory_equal(ev.p, "last_downstream_rx_byte_received", ev.len);
    assert_true(find(span.p, span.len, 15, 0, &f)); /* status */
    struct field code;
    assert_true(find(f.p, f.len, 3, 0, &code));
    assert_int_equal(code.v, 2);
    /* the second span */
    assert_true(find(ss.p, ss.len, 2, 1, &span));
    assert_true(find(span.p, span.len, 2, 0, &f));
    assert_memory_equal(f.p, "\0\0\0\0\0\0\0\x42", 8);
    assert_false(find(ss.p, ss.len, 2, 2, &span));
    mp_trace_buf_free(&req);
    mp_trace_buf_free(&spans);
    mp_span_free(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zipkin_json),
        cmocka_unit_test(zipkin_request),
        cmocka_unit_test(otlp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
