/*
 * tracing_context.c: B3 and W3C trace context in HTTP headers.
 */
#include "tracing_context.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_headers.h"
#include "mp_common.h"

int mp_trace_parse_hex64(const char *s, size_t len, uint64_t *v)
{
    if (len == 0 || len > 16)
        return MP_ERR_INVAL;
    uint64_t r = 0;
    for (size_t i = 0; i < len; i++) {
        int d = mp_hex_value(s[i]);
        if (d < 0)
            return MP_ERR_INVAL;
        r = (r << 4) | (uint64_t)d;
    }
    *v = r;
    return 0;
}

int mp_trace_parse_trace_id(const char *s, size_t len, uint64_t *high, uint64_t *low)
{
    if (len == 32) {
        if (mp_trace_parse_hex64(s, 16, high) < 0 || mp_trace_parse_hex64(s + 16, 16, low) < 0)
            return MP_ERR_INVAL;
        return 0;
    }
    *high = 0;
    return mp_trace_parse_hex64(s, len, low);
}

void mp_trace_hex64(uint64_t v, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
    out[16] = '\0';
}

static void ctx_reset(struct mp_trace_context *out)
{
    memset(out, 0, sizeof(*out));
    out->sampled = -1;
}

/* B3 sampling state: "1"/"true"/"d" (debug) sample, "0"/"false" do not. */
static int parse_sampled(const char *v, size_t n, bool *debug)
{
    if ((n == 1 && v[0] == '1') || (n == 4 && strncasecmp(v, "true", 4) == 0))
        return 1;
    if ((n == 1 && v[0] == '0') || (n == 5 && strncasecmp(v, "false", 5) == 0))
        return 0;
    if (n == 1 && v[0] == 'd') {
        *debug = true;
        return 1;
    }
    return MP_ERR_INVAL;
}

static int extract_b3_single(const char *v, size_t n, struct mp_trace_context *out)
{
    /* lone sampling state */
    if (n <= 5 && !memchr(v, '-', n)) {
        int s = parse_sampled(v, n, &out->debug);
        if (s < 0)
            return MP_ERR_INVAL;
        out->sampled = s;
        return 0;
    }
    const char *part[4];
    size_t plen[4];
    size_t np = 0;
    const char *p = v, *end = v + n;
    while (p <= end && np < 4) {
        const char *dash = memchr(p, '-', (size_t)(end - p));
        const char *e = dash ? dash : end;
        part[np] = p;
        plen[np++] = (size_t)(e - p);
        if (!dash)
            break;
        p = dash + 1;
        if (p == end)
            return MP_ERR_INVAL; /* trailing dash */
    }
    if (np < 2)
        return MP_ERR_INVAL;
    if (np == 4 && part[3] + plen[3] != end)
        return MP_ERR_INVAL;
    if ((plen[0] != 16 && plen[0] != 32) || plen[1] != 16)
        return MP_ERR_INVAL;
    if (mp_trace_parse_trace_id(part[0], plen[0], &out->trace_id_high, &out->trace_id) < 0 ||
        mp_trace_parse_hex64(part[1], 16, &out->span_id) < 0)
        return MP_ERR_INVAL;
    if (np >= 3) {
        int s = parse_sampled(part[2], plen[2], &out->debug);
        if (s < 0)
            return MP_ERR_INVAL;
        out->sampled = s;
    }
    if (np == 4) {
        if (plen[3] != 16 || mp_trace_parse_hex64(part[3], 16, &out->parent_id) < 0)
            return MP_ERR_INVAL;
        out->has_parent = true;
    }
    if (out->trace_id == 0 && out->trace_id_high == 0)
        return MP_ERR_INVAL;
    return 1;
}

int mp_trace_context_extract_b3(const struct mp_headers *h, struct mp_trace_context *out)
{
    ctx_reset(out);
    const struct mp_header *sampled = mp_headers_get(h, "x-b3-sampled");
    const struct mp_header *flags = mp_headers_get(h, "x-b3-flags");
    if (flags && flags->value_len == 1 && flags->value[0] == '1') {
        out->debug = true;
        out->sampled = 1;
    }
    if (sampled && out->sampled < 0) {
        int s = parse_sampled(sampled->value, sampled->value_len, &out->debug);
        if (s < 0)
            return MP_ERR_INVAL;
        out->sampled = s;
    }
    const struct mp_header *tid = mp_headers_get(h, "x-b3-traceid");
    const struct mp_header *sid = mp_headers_get(h, "x-b3-spanid");
    if (tid && sid) {
        if (mp_trace_parse_trace_id(tid->value, tid->value_len, &out->trace_id_high,
                                    &out->trace_id) < 0 ||
            mp_trace_parse_hex64(sid->value, sid->value_len, &out->span_id) < 0)
            return MP_ERR_INVAL;
        const struct mp_header *pid = mp_headers_get(h, "x-b3-parentspanid");
        if (pid) {
            if (mp_trace_parse_hex64(pid->value, pid->value_len, &out->parent_id) < 0)
                return MP_ERR_INVAL;
            out->has_parent = true;
        }
        if (out->trace_id == 0 && out->trace_id_high == 0)
            return MP_ERR_INVAL;
        return 1;
    }
    if (tid || sid)
        return MP_ERR_INVAL; /* half a context */
    const struct mp_header *single = mp_headers_get(h, "b3");
    if (single)
        return extract_b3_single(single->value, single->value_len, out);
    return 0;
}

int mp_trace_context_extract_w3c(const struct mp_headers *h, struct mp_trace_context *out)
{
    ctx_reset(out);
    const struct mp_header *tp = mp_headers_get(h, "traceparent");
    if (!tp)
        return 0;
    const char *v = tp->value;
    /* version 00 is exactly 55 characters; later versions may append fields */
    if (tp->value_len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return MP_ERR_INVAL;
    uint64_t ver, flags;
    if (mp_trace_parse_hex64(v, 2, &ver) < 0 || ver == 0xff)
        return MP_ERR_INVAL;
    if (ver == 0 && tp->value_len != 55)
        return MP_ERR_INVAL;
    if (tp->value_len > 55 && v[55] != '-')
        return MP_ERR_INVAL;
    if (mp_trace_parse_trace_id(v + 3, 32, &out->trace_id_high, &out->trace_id) < 0 ||
        mp_trace_parse_hex64(v + 36, 16, &out->span_id) < 0 ||
        mp_trace_parse_hex64(v + 53, 2, &flags) < 0)
        return MP_ERR_INVAL;
    if ((out->trace_id == 0 && out->trace_id_high == 0) || out->span_id == 0)
        return MP_ERR_INVAL;
    out->sampled = (flags & 1) ? 1 : 0;
    const struct mp_header *ts = mp_headers_get(h, "tracestate");
    if (ts && ts->value_len < sizeof(out->tracestate)) {
        memcpy(out->tracestate, ts->value, ts->value_len);
        out->tracestate[ts->value_len] = '\0';
    }
    return 1;
}

int mp_trace_context_inject_b3(const struct mp_trace_context *ctx, struct mp_headers *h)
{
    char tid[33], sid[17], pid[17];
    if (ctx->trace_id_high) {
        mp_trace_hex64(ctx->trace_id_high, tid);
        mp_trace_hex64(ctx->trace_id, tid + 16);
    } else {
        mp_trace_hex64(ctx->trace_id, tid);
    }
    mp_trace_hex64(ctx->span_id, sid);
    mp_headers_remove(h, "b3");
    if (mp_headers_set_cstr(h, "x-b3-traceid", tid) < 0 ||
        mp_headers_set_cstr(h, "x-b3-spanid", sid) < 0)
        return MP_ERR_NOMEM;
    if (ctx->has_parent) {
        mp_trace_hex64(ctx->parent_id, pid);
        if (mp_headers_set_cstr(h, "x-b3-parentspanid", pid) < 0)
            return MP_ERR_NOMEM;
    } else {
        mp_headers_remove(h, "x-b3-parentspanid");
    }
    if (mp_headers_set_cstr(h, "x-b3-sampled", ctx->sampled > 0 ? "1" : "0") < 0)
        return MP_ERR_NOMEM;
    if (ctx->debug) {
        if (mp_headers_set_cstr(h, "x-b3-flags", "1") < 0)
            return MP_ERR_NOMEM;
    } else {
        mp_headers_remove(h, "x-b3-flags");
    }
    return 0;
}

int mp_trace_context_inject_w3c(const struct mp_trace_context *ctx, struct mp_headers *h)
{
    char tp[56], hi[17], lo[17], sid[17];
    mp_trace_hex64(ctx->trace_id_high, hi);
    mp_trace_hex64(ctx->trace_id, lo);
    mp_trace_hex64(ctx->span_id, sid);
    snprintf(tp, sizeof(tp), "00-%s%s-%s-%s", hi, lo, sid, ctx->sampled > 0 ? "01" : "00");
    if (mp_headers_set_cstr(h, "traceparent", tp) < 0)
        return MP_ERR_NOMEM;
    if (ctx->tracestate[0] && mp_headers_set_cstr(h, "tracestate", ctx->tracestate) < 0)
        return MP_ERR_NOMEM;
    return 0;
}
