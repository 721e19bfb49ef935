/*
 * tracing_zipkin.c: Zipkin v2 JSON encoding of spans.
 */
#include "tracing_zipkin.h"

#include <stdio.h>
#include <string.h>

#include "tracing_context.h"

void mp_zipkin_json_string(struct mp_trace_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    mp_trace_buf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        mp_trace_buf_append(b, run, (size_t)(p - run));
        char esc[7];
        size_t n = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        mp_trace_buf_append(b, esc, n);
        run = p + 1;
    }
    mp_trace_buf_puts(b, run);
    mp_trace_buf_append(b, "\"", 1);
}

static void endpoint(struct mp_trace_buf *b, const char *service, const char *ip, uint16_t port)
{
    bool first = true;
    mp_trace_buf_puts(b, "{");
    if (service) {
        mp_trace_buf_puts(b, "\"serviceName\":");
        mp_zipkin_json_string(b, service);
        first = false;
    }
    if (ip && *ip) {
        mp_trace_buf_puts(b, first ? "" : ",");
        mp_trace_buf_puts(b, strchr(ip, ':') ? "\"ipv6\":" : "\"ipv4\":");
        mp_zipkin_json_string(b, ip);
        first = false;
    }
    if (port) {
        char n[16];
        snprintf(n, sizeof(n), "%s\"port\":%u", first ? "" : ",", (unsigned)port);
        mp_trace_buf_puts(b, n);
    }
    mp_trace_buf_puts(b, "}");
}

void mp_zipkin_encode_span(const struct mp_span *sp, const char *service, struct mp_trace_buf *b)
{
    char tid[33], id[17], num[64];
    if (sp->ctx.trace_id_high) {
        mp_trace_hex64(sp->ctx.trace_id_high, tid);
        mp_trace_hex64(sp->ctx.trace_id, tid + 16);
    } else {
        mp_trace_hex64(sp->ctx.trace_id, tid);
    }
    mp_trace_buf_puts(b, "{\"traceId\":\"");
    mp_trace_buf_puts(b, tid);
    mp_trace_hex64(sp->ctx.span_id, id);
    mp_trace_buf_puts(b, "\",\"id\":\"");
    mp_trace_buf_puts(b, id);
    mp_trace_buf_puts(b, "\"");
    if (sp->ctx.has_parent) {
        mp_trace_hex64(sp->ctx.parent_id, id);
        mp_trace_buf_puts(b, ",\"parentId\":\"");
        mp_trace_buf_puts(b, id);
        mp_trace_buf_puts(b, "\"");
    }
    mp_trace_buf_puts(b,
                      sp->kind == MP_SPAN_CLIENT ? ",\"kind\":\"CLIENT\"" : ",\"kind\":\"SERVER\"");
    mp_trace_buf_puts(b, ",\"name\":");
    mp_zipkin_json_string(b, sp->name);
    snprintf(num, sizeof(num), ",\"timestamp\":%lld,\"duration\":%lld",
             (long long)sp->start_wall_us, (long long)(sp->duration_us > 0 ? sp->duration_us : 1));
    mp_trace_buf_puts(b, num);
    mp_trace_buf_puts(b, ",\"localEndpoint\":");
    endpoint(b, service, sp->local_ip, 0);
    if (sp->remote_ip[0]) {
        mp_trace_buf_puts(b, ",\"remoteEndpoint\":");
        endpoint(b, NULL, sp->remote_ip, sp->remote_port);
    }
    if (sp->shared)
        mp_trace_buf_puts(b, ",\"shared\":true");
    if (sp->ctx.debug)
        mp_trace_buf_puts(b, ",\"debug\":true");
    if (sp->n_logs) {
        mp_trace_buf_puts(b, ",\"annotations\":[");
        for (size_t i = 0; i < sp->n_logs; i++) {
            snprintf(num, sizeof(num), "%s{\"timestamp\":%lld,\"value\":", i ? "," : "",
                     (long long)sp->logs[i].wall_us);
            mp_trace_buf_puts(b, num);
            mp_zipkin_json_string(b, sp->logs[i].event);
            mp_trace_buf_puts(b, "}");
        }
        mp_trace_buf_puts(b, "]");
    }
    mp_trace_buf_puts(b, ",\"tags\":{");
    for (size_t i = 0; i < sp->n_tags; i++) {
        if (i)
            mp_trace_buf_puts(b, ",");
        mp_zipkin_json_string(b, sp->tags[i].key);
        mp_trace_buf_puts(b, ":");
        mp_zipkin_json_string(b, sp->tags[i].value);
    }
    mp_trace_buf_puts(b, "}}");
}
