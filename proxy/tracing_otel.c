/*
 * tracing_otel.c: OTLP protobuf encoding of spans (wire format by hand: the
 * OTLP protos are not compiled into the tree).
 */
#include "tracing_otel.h"

#include <string.h>

#include "mp_common.h"

static void varint(struct mp_trace_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    mp_trace_buf_append(b, t, n);
}

static void key(struct mp_trace_buf *b, unsigned field, unsigned wire)
{
    varint(b, ((uint64_t)field << 3) | wire);
}

static void bytes_field(struct mp_trace_buf *b, unsigned field, const void *p, size_t n)
{
    key(b, field, 2);
    varint(b, n);
    mp_trace_buf_append(b, p, n);
}

static void string_field(struct mp_trace_buf *b, unsigned field, const char *s)
{
    bytes_field(b, field, s, strlen(s));
}

static void fixed64_field(struct mp_trace_buf *b, unsigned field, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    key(b, field, 1);
    mp_trace_buf_append(b, t, 8);
}

static void be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* a KeyValue{key, AnyValue{string_value}} as field `field` */
static void kv(struct mp_trace_buf *b, unsigned field, const char *k, const char *v)
{
    struct mp_trace_buf any = {0}, m = {0};
    string_field(&any, 1, v);
    string_field(&m, 1, k);
    if (!any.oom)
        bytes_field(&m, 2, any.p, any.len);
    if (any.oom || m.oom)
        b->oom = true;
    else
        bytes_field(b, field, m.p, m.len);
    mp_trace_buf_free(&any);
    mp_trace_buf_free(&m);
}

void mp_otel_encode_span(const struct mp_span *sp, struct mp_trace_buf *b)
{
    struct mp_trace_buf m = {0};
    uint8_t tid[16], id[8];
    be64(tid, sp->ctx.trace_id_high);
    be64(tid + 8, sp->ctx.trace_id);
    bytes_field(&m, 1, tid, 16);
    be64(id, sp->ctx.span_id);
    bytes_field(&m, 2, id, 8);
    if (sp->ctx.tracestate[0])
        string_field(&m, 3, sp->ctx.tracestate);
    if (sp->ctx.has_parent) {
        be64(id, sp->ctx.parent_id);
        bytes_field(&m, 4, id, 8);
    }
    string_field(&m, 5, sp->name);
    key(&m, 6, 0);
    varint(&m, sp->kind == MP_SPAN_CLIENT ? 3 : 2); /* SPAN_KIND_CLIENT / SPAN_KIND_SERVER */
    uint64_t start = (uint64_t)sp->start_wall_us * 1000;
    fixed64_field(&m, 7, start);
    fixed64_field(&m, 8, start + (uint64_t)(sp->duration_us > 0 ? sp->duration_us : 0) * 1000);
    for (size_t i = 0; i < sp->n_tags; i++)
        kv(&m, 9, sp->tags[i].key, sp->tags[i].value);
    for (size_t i = 0; i < sp->n_logs; i++) {
        struct mp_trace_buf ev = {0}; /* Span.Event{time_unix_nano, name} */
        fixed64_field(&ev, 1, (uint64_t)sp->logs[i].wall_us * 1000);
        string_field(&ev, 2, sp->logs[i].event);
        if (ev.oom)
            m.oom = true;
        else
            bytes_field(&m, 11, ev.p, ev.len);
        mp_trace_buf_free(&ev);
    }
    const char *err = mp_span_tag(sp, "error");
    if (err && strcmp(err, "true") == 0) {
        struct mp_trace_buf st = {0};
        key(&st, 3, 0);
        varint(&st, 2); /* STATUS_CODE_ERROR */
        if (st.oom)
            m.oom = true;
        else
            bytes_field(&m, 15, st.p, st.len);
        mp_trace_buf_free(&st);
    }
    if (m.oom)
        b->oom = true;
    else
        bytes_field(b, 2, m.p, m.len); /* ScopeSpans.spans */
    mp_trace_buf_free(&m);
}

int mp_otel_export_request(const struct mp_trace_buf *spans, const char *service,
                           struct mp_trace_buf *out)
{
    struct mp_trace_buf scope = {0}, scope_spans = {0}, resource = {0}, rs = {0};
    memset(out, 0, sizeof(*out));
    string_field(&scope, 1, "meshproxy");
    if (!scope.oom)
        bytes_field(&scope_spans, 1, scope.p, scope.len);
    mp_trace_buf_append(&scope_spans, spans->p, spans->len);
    kv(&resource, 1, "service.name", service);
    if (!resource.oom)
        bytes_field(&rs, 1, resource.p, resource.len);
    if (!scope_spans.oom)
        bytes_field(&rs, 2, scope_spans.p, scope_spans.len);
    if (!rs.oom && !scope.oom && !scope_spans.oom && !resource.oom)
        bytes_field(out, 1, rs.p, rs.len);
    int rc =
        (scope.oom || scope_spans.oom || resource.oom || rs.oom || out->oom) ? MP_ERR_NOMEM : 0;
    mp_trace_buf_free(&scope);
    mp_trace_buf_free(&scope_spans);
    mp_trace_buf_free(&resource);
    mp_trace_buf_free(&rs);
    if (rc)
        mp_trace_buf_free(out);
    return rc;
}
