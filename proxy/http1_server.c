/*
 * http1_server.c: the downstream HTTP/1.1 codec. One request at a time:
 * pipelined requests wait in the connection's input buffer until the
 * response to the one before is complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "http1_parse.h"
#include "http_stream.h"
#include "http_stats.h"
#include "mp_common.h"
#include "snapshot.h"
#include "tls_transport.h"
#include "xds_translate_listener.h"

struct h1s {
    struct mp_conn *c;
    struct mp_http1_parser parser;
    struct mp_http_stream *stream;
    bool keep_alive;
    bool head_request;
    bool resp_chunked;
    bool resp_no_body;
    bool resp_done;
    bool close_after;
    struct mp_deferred finish_d;
};

static const struct mp_http_codec_ops h1_stream_ops;

static void send_error_and_close(struct h1s *h, int status, const char *text)
{
    struct mp_conn *c = h->c;
    const char *reason = mp_http_reason(status);
    size_t tl = strlen(text);
    mp_buffer_appendf(&c->out,
                      "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
                      "server: %s\r\nconnection: close\r\n\r\n%s",
                      status, reason, tl,
                      (c->chain->hcm->server_name ? c->chain->hcm->server_name : "meshproxy"),
                      text);
    mp_conn_close(c, false);
}

static void finish_stream(void *arg)
{
    struct h1s *h = arg;
    struct mp_conn *c = h->c;
    if (!h->stream)
        return;
    mp_http_stream_free(h->stream);
    h->stream = NULL;
    mp_http1_parser_next(&h->parser);
    h->resp_done = false;
    if (c->closed)
        return;
    if (h->close_after || !h->keep_alive || c->draining) {
        mp_conn_close(c, false);
        return;
    }
    mp_conn_read_disable(c, false);
    if (mp_buffer_len(&c->in) > 0 && c->codec->on_data(c) < 0)
        mp_conn_close(c, false);
}

static void maybe_finish(struct h1s *h)
{
    if (h->stream && h->resp_done && h->parser.message_done)
        mp_worker_defer(h->c->w, &h->finish_d);
}

static int h1_on_data(struct mp_conn *c)
{
    struct h1s *h = c->codec_data;
    for (int guard = 0; guard < 64; guard++) {
        if (c->closed || c->closing)
            return 0;
        if (h->parser.message_done) {
            /* pipelined bytes wait; stop reading when too much piles up */
            if (mp_buffer_len(&c->in) > 65536)
                mp_conn_read_disable(c, true);
            return 0;
        }
        if (mp_buffer_len(&c->in) == 0)
            return 0;
        unsigned ev = 0;
        int rc = mp_http1_parser_execute(&h->parser, &c->in, &ev);
        if (rc < 0) {
            const struct mp_hcm_config *hcm = c->chain->hcm;
            if (hcm->stats)
                mp_counter_inc(hcm->stats->cx_protocol_error, c->w->index, 1);
            if (h->stream) {
                if (!h->stream->resp_headers_sent) {
                    h->close_after = true;
                    mp_http_stream_send_local_reply(h->stream, h->parser.error_status,
                                                    h->parser.error_text,
                                                    MP_RF_DOWNSTREAM_PROTOCOL_ERROR);
                    return 0;
                }
                mp_http_stream_on_downstream_reset(h->stream);
                mp_conn_close(c, true);
                return 0;
            }
            send_error_and_close(h, h->parser.error_status, h->parser.error_text);
            return 0;
        }
        bool done = (ev & MP_H1_EV_DONE) != 0;
        bool ended = false;
        if (ev & MP_H1_EV_HEADERS) {
            struct mp_http_stream *s =
                mp_http_stream_new(c->w, c, &h1_stream_ops, c->chain->hcm, c->w->snap,
                                   h->parser.http_minor == 0 ? 10 : 1);
            if (!s)
                return MP_ERR_NOMEM;
            h->stream = s;
            s->downstream_remote = c->remote;
            s->downstream_local = c->local;
            s->downstream_peer_uri_san = c->tls ? mp_tls_transport_peer_uri_san(c->tls) : NULL;
            s->requested_server_name = c->tls ? mp_tls_transport_sni(c->tls) : NULL;
            s->downstream_tls = c->tls;
            s->req = h->parser.headers;
            mp_headers_init(&h->parser.headers);
            h->keep_alive = h->parser.keep_alive;
            const char *m = mp_headers_value(&s->req, ":method");
            h->head_request = m && strcmp(m, "HEAD") == 0;
            if (h->parser.expect_continue) {
                /* Envoy answers 100-continue itself and does not forward Expect */
                mp_headers_remove(&s->req, "expect");
                if (!done)
                    mp_buffer_appendf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                mp_conn_schedule_flush(c);
            }
            ended = done && !(ev & (MP_H1_EV_BODY | MP_H1_EV_TRAILERS));
            mp_http_stream_decode_headers(s, ended);
        }
        if ((ev & MP_H1_EV_BODY) && h->stream) {
            bool end = done && !(ev & MP_H1_EV_TRAILERS);
            ended = ended || end;
            mp_http_stream_decode_data(h->stream, &h->parser.body, end);
        }
        mp_buffer_clear(&h->parser.body);
        if ((ev & MP_H1_EV_TRAILERS) && h->stream) {
            h->stream->req_trailers = h->parser.trailers;
            mp_headers_init(&h->parser.trailers);
            ended = true;
            mp_http_stream_decode_trailers(h->stream);
        }
        if (done && !ended && h->stream) {
            struct mp_buffer empty = MP_BUFFER_INIT;
            mp_http_stream_decode_data(h->stream, &empty, true);
        }
        if (done) {
            maybe_finish(h);
            return 0;
        }
    }
    return 0;
}

static void h1_on_writable(struct mp_conn *c)
{
    struct h1s *h = c->codec_data;
    if (h->stream)
        mp_http_stream_on_downstream_watermark(h->stream, false);
}

static void h1_on_eof(struct mp_conn *c)
{
    struct h1s *h = c->codec_data;
    if (h->stream && !h->resp_done)
        mp_http_stream_on_downstream_reset(h->stream);
    mp_conn_close(c, !h->stream || !h->resp_done);
}

static void h1_drain(struct mp_conn *c)
{
    struct h1s *h = c->codec_data;
    if (!h->stream)
        mp_conn_close(c, false);
    else
        h->close_after = true;
}

static void h1_destroy(struct mp_conn *c)
{
    struct h1s *h = c->codec_data;
    if (!h)
        return;
    if (h->stream) {
        if (!h->stream->resp_complete)
            mp_http_stream_on_downstream_reset(h->stream);
        mp_http_stream_free(h->stream);
    }
    mp_http1_parser_free(&h->parser);
    free(h);
    c->codec_data = NULL;
}

const struct mp_conn_codec_ops mp_http1_server_codec = {
    .name = "http1",
    .on_data = h1_on_data,
    .on_writable = h1_on_writable,
    .on_eof = h1_on_eof,
    .drain = h1_drain,
    .destroy = h1_destroy,
};

int mp_http1_server_init(struct mp_conn *c)
{
    struct h1s *h = calloc(1, sizeof(*h));
    if (!h)
        return MP_ERR_NOMEM;
    h->c = c;
    mp_http1_parser_init(&h->parser, true);
    const struct mp_hcm_config *hcm = c->chain->hcm;
    if (hcm->max_request_headers_kb)
        h->parser.max_header_bytes = (size_t)hcm->max_request_headers_kb * 1024;
    if (hcm->max_headers_count)
        h->parser.max_headers = hcm->max_headers_count;
    h->finish_d.fn = finish_stream;
    h->finish_d.arg = h;
    c->codec_data = h;
    return 0;
}

/* ---- response encoding ---------------------------------------------------- */

static void check_watermark(struct mp_conn *c, struct mp_http_stream *s)
{
    if (mp_buffer_len(&c->out) > c->high_watermark)
        mp_http_stream_on_downstream_watermark(s, true);
}

static void response_done(struct h1s *h)
{
    h->resp_done = true;
    if (!h->parser.message_done) {
        /* the rest of the request is not worth reading: close after the response */
        h->close_after = true;
        h->parser.message_done = true;
    }
    maybe_finish(h);
}

/* Appends generated protocol bytes (reserve + commit, as mp_buffer_appendf
 * does: not payload, so not counted as copied). Returns 0 or MP_ERR_NOMEM. */
static int append_head(struct mp_buffer *out, const char *data, size_t len)
{
    while (len > 0) {
        struct iovec iov;
        if (mp_buffer_reserve(out, len, &iov) < 0)
            return MP_ERR_NOMEM;
        size_t n = MP_MIN(iov.iov_len, len);
        memcpy(iov.iov_base, data, n);
        mp_buffer_commit(out, n);
        data += n;
        len -= n;
    }
    return 0;
}

static int h1_encode_headers(void *conn, struct mp_http_stream *s, struct mp_headers *hd,
                             bool end_stream)
{
    struct mp_conn *c = conn;
    struct h1s *h = c->codec_data;
    if (c->closed)
        return MP_ERR_CLOSED;
    const char *st = mp_headers_value(hd, ":status");
    int status;
    /* three digits (every response) without atoi's strtol */
    if (st && st[0] >= '0' && st[0] <= '9' && st[1] >= '0' && st[1] <= '9' && st[2] >= '0' &&
        st[2] <= '9' && st[3] == '\0')
        status = (st[0] - '0') * 100 + (st[1] - '0') * 10 + (st[2] - '0');
    else
        status = st ? atoi(st) : 500;
    if (status < 100 || status > 999)
        status = 502;
    bool no_body = h->head_request || status == 204 || status == 304 || status < 200;
    h->resp_no_body = no_body;
    if (h->close_after || c->draining)
        h->keep_alive = false;
    const char *reason = mp_http_reason(status);
    size_t reason_len = strlen(reason);
    bool has_cl = false;
    /* status line + CRLF, then each header "name: value\r\n" */
    size_t need = 15 + reason_len;
    for (size_t i = 0; i < hd->n; i++) {
        const struct mp_header *e = &hd->v[i];
        if (e->name[0] == ':')
            continue;
        if (e->name_len == 14 && memcmp(e->name, "content-length", 14) == 0)
            has_cl = true;
        need += e->name_len + e->value_len + 4;
    }
    const char *framing = NULL; /* content-length: 0 / transfer-encoding: chunked */
    h->resp_chunked = false;
    if (!has_cl && !no_body) {
        if (end_stream)
            framing = "content-length: 0\r\n";
        else if (s->protocol == 10)
            h->keep_alive = false; /* HTTP/1.0: the body ends at close */
        else {
            h->resp_chunked = true;
            framing = "transfer-encoding: chunked\r\n";
        }
    }
    const char *conn_hdr = !h->keep_alive      ? "connection: close\r\n"
                           : s->protocol == 10 ? "connection: keep-alive\r\n"
                                               : NULL;
    need += 64 + 2; /* framing, connection, final CRLF */
    /* The head is written in one piece (no printf: this runs for every
     * response), on the stack unless it is unusually large. */
    char stack[2048];
    char *head = need <= sizeof(stack) ? stack : malloc(need);
    if (!head)
        return MP_ERR_NOMEM;
    char *p = head;
    memcpy(p, s->protocol == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
    p += 9;
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    memcpy(p, reason, reason_len);
    p += reason_len;
    *p++ = '\r';
    *p++ = '\n';
    for (size_t i = 0; i < hd->n; i++) {
        const struct mp_header *e = &hd->v[i];
        if (e->name[0] == ':')
            continue;
        if ((e->name_len == 10 && memcmp(e->name, "connection", 10) == 0) ||
            (e->name_len == 17 && memcmp(e->name, "transfer-encoding", 17) == 0))
            continue;
        memcpy(p, e->name, e->name_len);
        p += e->name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, e->value, e->value_len);
        p += e->value_len;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (framing) {
        memcpy(p, framing, strlen(framing));
        p += strlen(framing);
    }
    if (conn_hdr) {
        memcpy(p, conn_hdr, strlen(conn_hdr));
        p += strlen(conn_hdr);
    }
    *p++ = '\r';
    *p++ = '\n';
    int rc = append_head(&c->out, head, (size_t)(p - head));
    if (head != stack)
        free(head);
    if (rc < 0)
        return rc;
    mp_conn_schedule_flush(c);
    if (end_stream)
        response_done(h);
    return 0;
}

static int h1_encode_data(void *conn, struct mp_http_stream *s, struct mp_buffer *data,
                          bool end_stream)
{
    struct mp_conn *c = conn;
    struct h1s *h = c->codec_data;
    if (c->closed) {
        mp_buffer_clear(data);
        return MP_ERR_CLOSED;
    }
    size_t n = mp_buffer_len(data);
    if (h->resp_no_body) {
        mp_buffer_clear(data);
    } else if (h->resp_chunked) {
        if (n) {
            mp_buffer_appendf(&c->out, "%zx\r\n", n);
            mp_buffer_move(&c->out, data);
            mp_buffer_appendf(&c->out, "\r\n");
        }
        if (end_stream)
            mp_buffer_appendf(&c->out, "0\r\n\r\n");
    } else {
        mp_buffer_move(&c->out, data);
    }
    mp_conn_schedule_flush(c);
    check_watermark(c, s);
    if (end_stream) {
        if (!h->resp_chunked && !h->resp_no_body && s->protocol == 10)
            h->close_after = true;
        response_done(h);
    }
    return 0;
}

static int h1_encode_trailers(void *conn, struct mp_http_stream *s, struct mp_headers *t)
{
    struct mp_conn *c = conn;
    struct h1s *h = c->codec_data;
    if (c->closed)
        return MP_ERR_CLOSED;
    if (h->resp_chunked) {
        mp_buffer_appendf(&c->out, "0\r\n");
        for (size_t i = 0; i < t->n; i++)
            if (t->v[i].name[0] != ':')
                mp_buffer_appendf(&c->out, "%s: %s\r\n", t->v[i].name, t->v[i].value);
        mp_buffer_appendf(&c->out, "\r\n");
    }
    mp_conn_schedule_flush(c);
    (void)s;
    response_done(h);
    return 0;
}

static void h1_reset(void *conn, struct mp_http_stream *s)
{
    struct mp_conn *c = conn;
    (void)s;
    /* HTTP/1 has no stream reset: the connection goes */
    mp_conn_close(c, true);
}

static void h1_read_disable(void *conn, struct mp_http_stream *s, bool disable)
{
    (void)s;
    mp_conn_read_disable(conn, disable);
}

static const struct mp_http_codec_ops h1_stream_ops = {
    .encode_headers = h1_encode_headers,
    .encode_data = h1_encode_data,
    .encode_trailers = h1_encode_trailers,
    .reset = h1_reset,
    .read_disable = h1_read_disable,
};
