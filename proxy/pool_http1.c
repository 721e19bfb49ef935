/*
 * pool_http1.c: HTTP/1.1 upstream connections: one request at a time,
 * kept alive and reused when both sides allow it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_stream.h"
#include "mp_common.h"
#include "upstream_int.h"

static int h1_init(struct upconn *u)
{
    mp_http1_parser_init(&u->parser, false);
    u->parser.max_header_bytes = 96 * 1024;
    u->parser.max_headers = 200;
    return 0;
}

static bool h1_has_capacity(const struct upconn *u)
{
    const struct mp_pool *p = u->pool;
    if (u->active || u->eof || u->closed)
        return false;
    if (p->max_requests_per_conn && u->n_requests >= p->max_requests_per_conn)
        return false;
    return true;
}

/* Writes whatever of r is ready: head once, then body, then the end. */
static void write_request(struct upconn *u, struct mp_upstream_request *r)
{
    struct mp_buffer *out = &u->out;
    if (!r->headers_set)
        return;
    if (!r->headers_sent) {
        const char *method = mp_headers_value(&r->headers, ":method");
        const char *path = mp_headers_value(&r->headers, ":path");
        const char *auth = mp_headers_value(&r->headers, ":authority");
        mp_buffer_appendf(out, "%s %s HTTP/1.1\r\n", method ? method : "GET", path ? path : "/");
        if (auth)
            mp_buffer_appendf(out, "host: %s\r\n", auth);
        bool has_cl = false;
        for (size_t i = 0; i < r->headers.n; i++) {
            const struct mp_header *e = &r->headers.v[i];
            if (e->name[0] == ':' || strcmp(e->name, "host") == 0 ||
                strcmp(e->name, "transfer-encoding") == 0 || strcmp(e->name, "connection") == 0)
                continue;
            if (strcmp(e->name, "content-length") == 0)
                has_cl = true;
            mp_buffer_appendf(out, "%s: %s\r\n", e->name, e->value);
        }
        bool body_method = method && (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                                      strcmp(method, "PATCH") == 0);
        if (!has_cl) {
            if (r->end_set && !r->has_trailers) {
                /* the whole body is here: send its length rather than chunks */
                size_t len = mp_buffer_len(&r->body);
                if (len > 0 || body_method)
                    mp_buffer_appendf(out, "content-length: %zu\r\n", len);
            } else {
                r->chunked = true;
                mp_buffer_appendf(out, "transfer-encoding: chunked\r\n");
            }
        }
        mp_buffer_appendf(out, "\r\n");
        r->headers_sent = true;
    }
    size_t n = mp_buffer_len(&r->body);
    if (n > 0) {
        if (r->chunked) {
            mp_buffer_appendf(out, "%zx\r\n", n);
            mp_buffer_move(out, &r->body);
            mp_buffer_appendf(out, "\r\n");
        } else {
            mp_buffer_move(out, &r->body);
        }
    }
    if (r->end_set && !r->request_sent) {
        if (r->chunked) {
            mp_buffer_appendf(out, "0\r\n");
            for (size_t i = 0; i < r->trailers.n; i++)
                mp_buffer_appendf(out, "%s: %s\r\n", r->trailers.v[i].name, r->trailers.v[i].value);
            mp_buffer_appendf(out, "\r\n");
        }
        r->request_sent = true;
    }
    mp_upconn_schedule_flush(u);
    if (!r->above && mp_buffer_len(out) > u->pool->buffer_limit) {
        r->above = true;
        if (r->cb && r->cb->on_watermark)
            r->cb->on_watermark(r->ctx, true);
    }
}

static int h1_attach(struct upconn *u, struct mp_upstream_request *r)
{
    u->active = r;
    mp_http1_parser_next(&u->parser);
    u->parser.skip_body = r->head_method;
    u->keep_alive = true;
    if (r->read_disabled)
        mp_upconn_read_disable(u, true);
    write_request(u, r);
    return 0;
}

static void h1_request_updated(struct upconn *u, struct mp_upstream_request *r)
{
    if (u->active == r)
        write_request(u, r);
}

static void release(struct upconn *u, bool reuse)
{
    u->active = NULL;
    if (!reuse || u->closed) {
        mp_upconn_close(u, MP_UPSTREAM_RESET);
        return;
    }
    mp_upconn_read_disable(u, false);
    mp_upconn_idle_start(u);
    mp_pool_schedule_dispatch(u->pool);
}

static int h1_on_data(struct upconn *u)
{
    for (int guard = 0; guard < 16 && mp_buffer_len(&u->in) > 0 && !u->closed; guard++) {
        struct mp_upstream_request *r = u->active;
        if (!r) {
            /* bytes nobody asked for: the connection cannot be trusted */
            return MP_ERR_PROTO;
        }
        unsigned ev = 0;
        int rc = mp_http1_parser_execute(&u->parser, &u->in, &ev);
        if (rc < 0) {
            mp_upreq_fail(r, MP_UPSTREAM_PROTOCOL_ERROR);
            u->active = NULL;
            return MP_ERR_PROTO;
        }
        bool done = (ev & MP_H1_EV_DONE) != 0;
        if ((ev & MP_H1_EV_HEADERS) && u->parser.hp.status_code < 200) {
            /* 100 Continue and other interim responses are not forwarded */
            mp_http1_parser_next(&u->parser);
            u->parser.skip_body = r->head_method;
            continue;
        }
        if (ev & MP_H1_EV_HEADERS) {
            u->keep_alive = u->parser.keep_alive;
            bool end = done && !(ev & (MP_H1_EV_BODY | MP_H1_EV_TRAILERS));
            mp_upreq_deliver_headers(r, &u->parser.headers, end);
            if (end)
                goto complete;
        }
        if (ev & MP_H1_EV_BODY) {
            bool end = done && !(ev & MP_H1_EV_TRAILERS);
            mp_upreq_deliver_data(r, &u->parser.body, end);
            mp_buffer_clear(&u->parser.body);
            if (end)
                goto complete;
        }
        if (ev & MP_H1_EV_TRAILERS) {
            mp_upreq_deliver_trailers(r, &u->parser.trailers);
            goto complete;
        }
        if (done) {
            struct mp_buffer empty = MP_BUFFER_INIT;
            mp_upreq_deliver_data(r, &empty, true);
            goto complete;
        }
        continue;
    complete : {
        bool reuse = u->keep_alive && r->request_sent && !u->eof;
        mp_upreq_finish(r);
        release(u, reuse);
        return 0;
    }
    }
    return 0;
}

static void h1_on_eof(struct upconn *u)
{
    struct mp_upstream_request *r = u->active;
    if (r && r->resp_headers_done) {
        /* a response without length ends at close */
        unsigned ev = 0;
        if (mp_http1_parser_eof(&u->parser, &ev) == 0 && (ev & MP_H1_EV_DONE)) {
            mp_upreq_deliver_data(r, &u->parser.body, true);
            mp_buffer_clear(&u->parser.body);
            mp_upreq_finish(r);
            u->active = NULL;
        }
    }
    mp_upconn_close(u, MP_UPSTREAM_RESET);
}

static void h1_fail_all(struct upconn *u, enum mp_upstream_reset_reason why)
{
    if (u->active) {
        struct mp_upstream_request *r = u->active;
        u->active = NULL;
        mp_upreq_fail(r, why);
    }
}

static void h1_cancel(struct upconn *u, struct mp_upstream_request *r)
{
    if (u->active != r)
        return;
    u->active = NULL;
    /* a request cut off mid-way leaves the connection in an unknown state */
    mp_upconn_close(u, MP_UPSTREAM_RESET);
}

static void h1_read_disable(struct upconn *u, struct mp_upstream_request *r, bool disable)
{
    if (u->active == r)
        mp_upconn_read_disable(u, disable);
}

static void h1_on_writable(struct upconn *u)
{
    struct mp_upstream_request *r = u->active;
    if (r && r->above) {
        r->above = false;
        if (r->cb && r->cb->on_watermark)
            r->cb->on_watermark(r->ctx, false);
    }
}

static void h1_destroy(struct upconn *u)
{
    mp_http1_parser_free(&u->parser);
}

const struct upconn_ops mp_pool_http1_ops = {
    .init = h1_init,
    .on_data = h1_on_data,
    .on_eof = h1_on_eof,
    .fail_all = h1_fail_all,
    .has_capacity = h1_has_capacity,
    .attach = h1_attach,
    .request_updated = h1_request_updated,
    .cancel = h1_cancel,
    .read_disable = h1_read_disable,
    .on_writable = h1_on_writable,
    .destroy = h1_destroy,
};
