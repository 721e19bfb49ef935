/*
 * http2_server.c: the downstream HTTP/2 codec (nghttp2 server session).
 *
 * Request DATA arrives as slice references into the connection's input
 * (on_data_chunk_recv points into the bytes we fed). Response DATA goes out
 * with NGHTTP2_DATA_FLAG_NO_COPY: the send_data callback appends the frame
 * header and moves the payload slices into the output buffer, which is
 * written with one writev. Flow control is manual (no automatic
 * WINDOW_UPDATE): a stream's bytes are consumed only while its reader is not
 * paused, so a slow upstream slows the client down.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "http2_util.h"
#include "http_stats.h"
#include "http_stream.h"
#include "log.h"
#include "mp_common.h"
#include "tls_transport.h"
#include "xds_translate_listener.h"

struct h2c;

struct h2st {
    struct h2st *next, *prev;
    struct h2c *h;
    int32_t id;
    struct mp_http_stream *s;
    struct mp_buffer pending; /* response body waiting for nghttp2 */
    bool end_queued;
    bool trailers_queued;
    bool data_deferred;
    bool submitted; /* response headers submitted */
    bool closed;
    bool read_disabled;
    bool req_headers_done;
    size_t unconsumed;
    struct mp_deferred free_d;
};

struct h2c {
    struct mp_conn *c;
    nghttp2_session *session;
    struct h2st *streams;
    size_t n_streams;
    struct mp_slice *cur_slice; /* slice being fed to nghttp2_session_mem_recv */
    struct h2st *hdr_st;        /* stream whose header block is being received */
    struct mp_deferred send_d;
    ev_timer grace; /* between the shutdown notice and the final GOAWAY */
    bool notice_sent;
    bool goaway;
    bool dead;
};

static const struct mp_http_codec_ops h2_stream_ops;

/* Time between the shutdown notice and the final GOAWAY: more than a
 * round trip, so what the client sent meanwhile is still served. */
#define MP_H2_DRAIN_GRACE_S 1.0

static void schedule_send(struct h2c *h)
{
    if (!h->dead)
        mp_worker_defer(h->c->w, &h->send_d);
}

static void st_free(struct h2st *st)
{
    if (st->h) {
        struct h2c *h = st->h;
        if (st->prev)
            st->prev->next = st->next;
        else
            h->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        h->n_streams--;
        if (h->hdr_st == st)
            h->hdr_st = NULL;
        mp_worker_undefer(h->c->w, &st->free_d);
        if (!h->dead)
            nghttp2_session_set_stream_user_data(h->session, st->id, NULL);
    }
    if (st->s)
        mp_http_stream_free(st->s);
    mp_buffer_clear(&st->pending);
    free(st);
}

static void st_free_cb(void *arg)
{
    struct h2st *st = arg;
    struct h2c *h = st->h;
    st_free(st);
    if (h && h->goaway && h->n_streams == 0)
        schedule_send(h);
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct h2c *h = user;
    (void)session;
    (void)flags;
    if (mp_buffer_len(&h->c->out) > h->c->high_watermark)
        return NGHTTP2_ERR_WOULDBLOCK;
    return mp_h2_append_frame_bytes(&h->c->out, data, len);
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
    struct h2c *h = user;
    struct h2st *st = source->ptr;
    (void)session;
    if (mp_buffer_len(&h->c->out) > h->c->high_watermark)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (mp_h2_append_data_frame(&h->c->out, framehd, &st->pending, length, frame->data.padlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st->s && st->s->downstream_above && mp_buffer_len(&st->pending) <= h->c->high_watermark / 2)
        mp_http_stream_on_downstream_watermark(st->s, false);
    return 0;
}

static ssize_t read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct h2st *st = source->ptr;
    (void)buf;
    (void)user;
    size_t avail = mp_buffer_len(&st->pending);
    if (avail == 0 && !st->end_queued) {
        st->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = MP_MIN(avail, length);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && st->end_queued) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers_queued && st->s) {
            nghttp2_nv *nva;
            size_t nn;
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (mp_h2_nva_from_headers(&st->s->resp_trailers, &nva, &nn) == 0) {
                nghttp2_submit_trailer(session, id, nva, nn);
                free(nva);
            }
        }
    }
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct h2c *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct mp_conn *c = h->c;
    struct h2st *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->s = mp_http_stream_new(c->w, c, &h2_stream_ops, c->chain->hcm, c->w->snap, 2);
    if (!st->s) {
        free(st);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->h = h;
    st->id = frame->hd.stream_id;
    st->s->codec_data = st;
    st->s->downstream_remote = c->remote;
    st->s->downstream_local = c->local;
    st->s->downstream_peer_uri_san = c->tls ? mp_tls_transport_peer_uri_san(c->tls) : NULL;
    st->s->requested_server_name = c->tls ? mp_tls_transport_sni(c->tls) : NULL;
    st->s->downstream_tls = c->tls;
    mp_buffer_init(&st->pending);
    st->free_d.fn = st_free_cb;
    st->free_d.arg = st;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n_streams++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    h->hdr_st = st;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2c *h = user;
    (void)flags;
    /* one stream map lookup per header block, not per header */
    struct h2st *st = h->hdr_st && h->hdr_st->id == frame->hd.stream_id
                          ? h->hdr_st
                          : nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || !st->s)
        return 0;
    struct mp_headers *hd = st->req_headers_done ? &st->s->req_trailers : &st->s->req;
    const struct mp_hcm_config *hcm = h->c->chain->hcm;
    size_t limit = (size_t)(hcm->max_request_headers_kb ? hcm->max_request_headers_kb : 60) * 1024;
    if (hd->bytes + namelen + valuelen > limit ||
        hd->n >= (hcm->max_headers_count ? hcm->max_headers_count : 100)) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (mp_headers_add(hd, (const char *)name, namelen, (const char *)value, valuelen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void consume(struct h2c *h, struct h2st *st, size_t n)
{
    if (st && st->read_disabled) {
        st->unconsumed += n;
        return;
    }
    nghttp2_session_consume(h->session, st ? st->id : 0, n);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct h2c *h = user;
    struct h2st *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!st || !st->s)
        return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st->req_headers_done) {
            st->req_headers_done = true;
            struct mp_headers *r = &st->s->req;
            /* HTTP/2 has no Host: :authority; and Expect is answered by us.
             * One pass finds what is there (usually neither Host nor Expect). */
            const struct mp_header *authority = NULL, *host = NULL;
            bool expect = false;
            for (size_t i = 0; i < r->n; i++) {
                const struct mp_header *e = &r->v[i];
                if (!authority && e->name_len == 10 && memcmp(e->name, ":authority", 10) == 0)
                    authority = e;
                else if (e->name_len == 4 && memcmp(e->name, "host", 4) == 0)
                    host = host ? host : e;
                else if (e->name_len == 6 && memcmp(e->name, "expect", 6) == 0)
                    expect = true;
            }
            if (!authority && host)
                mp_headers_add(r, ":authority", 10, host->value, host->value_len);
            if (host)
                mp_headers_remove(r, "host");
            if (expect)
                mp_headers_remove(r, "expect");
            mp_headers_pseudo_first(r);
            if (h->goaway && h->c->draining) {
                /* new streams after GOAWAY are refused by nghttp2 already */
            }
            mp_http_stream_decode_headers(st->s, end);
        } else {
            mp_http_stream_decode_trailers(st->s);
        }
        break;
    case NGHTTP2_DATA:
        if (end) {
            struct mp_buffer empty = MP_BUFFER_INIT;
            mp_http_stream_decode_data(st->s, &empty, true);
        }
        break;
    default: break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2c *h = user;
    (void)flags;
    struct h2st *st = nghttp2_session_get_stream_user_data(session, id);
    if (!st || !st->s || st->s->reset) {
        nghttp2_session_consume(session, id, len);
        return 0;
    }
    struct mp_buffer b = MP_BUFFER_INIT;
    struct mp_slice *sl = h->cur_slice;
    if (sl && data >= sl->data && data + len <= sl->data + sl->used) {
        if (mp_buffer_append_ref(&b, sl, (size_t)(data - sl->data), len) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else if (mp_buffer_append_copy(&b, data, len) < 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    consume(h, st, len);
    mp_http_stream_decode_data(st->s, &b, false);
    mp_buffer_clear(&b);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    struct h2c *h = user;
    (void)error_code;
    struct h2st *st = nghttp2_session_get_stream_user_data(session, id);
    if (!st)
        return 0;
    st->closed = true;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    if (st->s && !(st->s->resp_complete && st->s->req_complete))
        mp_http_stream_on_downstream_reset(st->s);
    mp_worker_defer(h->c->w, &st->free_d);
    return 0;
}

static void do_send(void *arg)
{
    struct h2c *h = arg;
    struct mp_conn *c = h->c;
    if (h->dead || c->closed)
        return;
    int rv = nghttp2_session_send(h->session);
    if (rv != 0) {
        h->dead = true;
        mp_conn_close(c, true);
        return;
    }
    mp_conn_schedule_flush(c);
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
        mp_conn_close(c, false);
    else if (h->goaway && h->n_streams == 0 && mp_buffer_len(&c->out) == 0)
        mp_conn_close(c, false);
    else if (h->goaway && h->n_streams == 0)
        mp_conn_close(c, false);
}

static int h2_on_data(struct mp_conn *c)
{
    struct h2c *h = c->codec_data;
    while (mp_buffer_len(&c->in) > 0 && !h->dead && !c->closed) {
        struct mp_buffer_view *v = &c->in.views[c->in.head];
        h->cur_slice = v->slice;
        ssize_t n = nghttp2_session_mem_recv(h->session, v->slice->data + v->off, v->len);
        h->cur_slice = NULL;
        if (n < 0) {
            if (c->chain->hcm->stats)
                mp_counter_inc(c->chain->hcm->stats->cx_protocol_error, c->w->index, 1);
            /* nghttp2 queued a GOAWAY for protocol errors: send it, then close */
            nghttp2_session_send(h->session);
            h->dead = true;
            mp_conn_close(c, false);
            return 0;
        }
        mp_buffer_drain(&c->in, (size_t)n);
    }
    h->hdr_st = NULL; /* streams may be freed before the next read */
    schedule_send(h);
    return 0;
}

static void h2_on_writable(struct mp_conn *c)
{
    schedule_send(c->codec_data);
}

static void h2_on_eof(struct mp_conn *c)
{
    struct h2c *h = c->codec_data;
    h->dead = true;
    mp_conn_close(c, true);
}

/* The final GOAWAY: streams the client opened up to now are served, later
 * ones are refused and the client retries them on a new connection. */
static void h2_goaway(struct h2c *h)
{
    if (h->dead || h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    schedule_send(h);
}

static void grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    h2_goaway(t->data);
}

/* Drain as RFC 9113 6.8 advises: a GOAWAY with the largest stream id first,
 * so requests already on the wire are not refused, then the real one. */
static void h2_drain(struct mp_conn *c)
{
    struct h2c *h = c->codec_data;
    if (h->dead || h->notice_sent || h->goaway)
        return;
    h->notice_sent = true;
    if (nghttp2_submit_shutdown_notice(h->session) != 0) {
        h2_goaway(h);
        return;
    }
    ev_timer_init(&h->grace, grace_cb, MP_H2_DRAIN_GRACE_S, 0);
    h->grace.data = h;
    ev_timer_start(c->w->loop, &h->grace);
    schedule_send(h);
}

static void h2_destroy(struct mp_conn *c)
{
    struct h2c *h = c->codec_data;
    if (!h)
        return;
    h->dead = true;
    if (h->notice_sent)
        ev_timer_stop(c->w->loop, &h->grace);
    mp_worker_undefer(c->w, &h->send_d);
    while (h->streams) {
        struct h2st *st = h->streams;
        if (st->s && !st->s->resp_complete)
            mp_http_stream_on_downstream_reset(st->s);
        st_free(st);
    }
    nghttp2_session_del(h->session);
    free(h);
    c->codec_data = NULL;
}

const struct mp_conn_codec_ops mp_http2_server_codec = {
    .name = "http2",
    .on_data = h2_on_data,
    .on_writable = h2_on_writable,
    .on_eof = h2_on_eof,
    .drain = h2_drain,
    .destroy = h2_destroy,
};

int mp_http2_server_init(struct mp_conn *c)
{
    struct h2c *h = calloc(1, sizeof(*h));
    if (!h)
        return MP_ERR_NOMEM;
    h->c = c;
    h->send_d.fn = do_send;
    h->send_d.arg = h;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h);
        return MP_ERR_NOMEM;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    const struct mp_hcm_config *hcm = c->chain->hcm;
    nghttp2_option_set_max_send_header_block_length(opt, 256 * 1024);
    int rv = nghttp2_session_server_new2(&h->session, cbs, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        free(h);
        return MP_ERR_NOMEM;
    }
    uint32_t mcs = hcm->h2_max_concurrent_streams ? hcm->h2_max_concurrent_streams : 2147483647u;
    uint32_t sw = hcm->h2_initial_stream_window ? hcm->h2_initial_stream_window : 268435456u;
    uint32_t cw =
        hcm->h2_initial_connection_window ? hcm->h2_initial_connection_window : 268435456u;
    if (sw > MP_H2_STREAM_WINDOW_CAP)
        sw = MP_H2_STREAM_WINDOW_CAP;
    if (cw > 2147483647u)
        cw = 2147483647u;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, mcs},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, sw},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         (hcm->max_request_headers_kb ? hcm->max_request_headers_kb : 60) * 1024},
    };
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, MP_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, (int32_t)cw);
    c->codec_data = h;
    schedule_send(h);
    return 0;
}

/* ---- response encoding ---------------------------------------------------- */

static int submit_response(struct h2st *st, struct mp_headers *hd, bool end_stream)
{
    struct h2c *h = st->h;
    nghttp2_nv stack[32], *nva; /* nghttp2 copies the array */
    size_t n;
    if (mp_h2_nva_fill(hd, stack, MP_ARRAY_LEN(stack), &nva, &n) < 0)
        return MP_ERR_NOMEM;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_cb};
    int rv = nghttp2_submit_response(h->session, st->id, nva, n, end_stream ? NULL : &prd);
    if (nva != stack)
        free(nva);
    st->submitted = true;
    schedule_send(h);
    return rv == 0 ? 0 : MP_ERR_PROTO;
}

static int h2_encode_headers(void *conn, struct mp_http_stream *s, struct mp_headers *hd,
                             bool end_stream)
{
    struct mp_conn *c = conn;
    struct h2st *st = s->codec_data;
    if (c->closed || !st || st->closed || !st->h)
        return MP_ERR_CLOSED;
    (void)c;
    return submit_response(st, hd, end_stream);
}

static void resume(struct h2st *st)
{
    if (st->data_deferred && !st->closed && st->h) {
        st->data_deferred = false;
        nghttp2_session_resume_data(st->h->session, st->id);
    }
    schedule_send(st->h);
}

static int h2_encode_data(void *conn, struct mp_http_stream *s, struct mp_buffer *data,
                          bool end_stream)
{
    struct mp_conn *c = conn;
    struct h2st *st = s->codec_data;
    if (c->closed || !st || st->closed || !st->h) {
        mp_buffer_clear(data);
        return MP_ERR_CLOSED;
    }
    mp_buffer_move(&st->pending, data);
    if (end_stream)
        st->end_queued = true;
    if (mp_buffer_len(&st->pending) > c->high_watermark)
        mp_http_stream_on_downstream_watermark(s, true);
    resume(st);
    return 0;
}

static int h2_encode_trailers(void *conn, struct mp_http_stream *s, struct mp_headers *t)
{
    struct mp_conn *c = conn;
    struct h2st *st = s->codec_data;
    (void)t;
    if (c->closed || !st || st->closed || !st->h)
        return MP_ERR_CLOSED;
    st->end_queued = true;
    st->trailers_queued = true;
    resume(st);
    return 0;
}

static void h2_reset(void *conn, struct mp_http_stream *s)
{
    struct h2st *st = s->codec_data;
    (void)conn;
    if (!st || st->closed || !st->h)
        return;
    nghttp2_submit_rst_stream(st->h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    schedule_send(st->h);
}

static void h2_read_disable(void *conn, struct mp_http_stream *s, bool disable)
{
    struct h2st *st = s->codec_data;
    (void)conn;
    if (!st || !st->h)
        return;
    st->read_disabled = disable;
    if (!disable && st->unconsumed) {
        if (!st->closed)
            nghttp2_session_consume(st->h->session, st->id, st->unconsumed);
        else
            nghttp2_session_consume_connection(st->h->session, st->unconsumed);
        st->unconsumed = 0;
        schedule_send(st->h);
    }
}

static const struct mp_http_codec_ops h2_stream_ops = {
    .encode_headers = h2_encode_headers,
    .encode_data = h2_encode_data,
    .encode_trailers = h2_encode_trailers,
    .reset = h2_reset,
    .read_disable = h2_read_disable,
};
