/*
 * pool_http2.c: HTTP/2 upstream connections (nghttp2 client sessions).
 * Requests are multiplexed up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS
 * (and the cluster's own limit); the pool opens another connection when
 * every one is full. Request DATA goes out with NGHTTP2_DATA_FLAG_NO_COPY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http2_util.h"
#include "http_stream.h"
#include "mp_common.h"
#include "upstream_int.h"

static void complete(struct upconn *u, struct mp_upstream_request *r);

static void do_send(void *arg)
{
    struct upconn *u = arg;
    if (u->closed || !u->session)
        return;
    if (nghttp2_session_send(u->session) != 0) {
        mp_upconn_close(u, MP_UPSTREAM_PROTOCOL_ERROR);
        return;
    }
    mp_upconn_schedule_flush(u);
    if (!nghttp2_session_want_read(u->session) && !nghttp2_session_want_write(u->session) &&
        u->n_streams == 0)
        mp_upconn_close(u, MP_UPSTREAM_RESET);
}

static void schedule_send(struct upconn *u)
{
    if (!u->closed)
        mp_worker_defer(u->pool->w, &u->send_d);
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct upconn *u = user;
    (void)session;
    (void)flags;
    if (mp_buffer_len(&u->out) > u->pool->buffer_limit)
        return NGHTTP2_ERR_WOULDBLOCK;
    return mp_h2_append_frame_bytes(&u->out, data, len);
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
    struct upconn *u = user;
    struct mp_upstream_request *r = source->ptr;
    (void)session;
    if (mp_buffer_len(&u->out) > u->pool->buffer_limit)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (mp_h2_append_data_frame(&u->out, framehd, &r->body, length, frame->data.padlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (r->above && mp_buffer_len(&r->body) <= u->pool->buffer_limit / 2) {
        r->above = false;
        if (r->cb && r->cb->on_watermark)
            r->cb->on_watermark(r->ctx, false);
    }
    return 0;
}

static ssize_t read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct mp_upstream_request *r = source->ptr;
    (void)buf;
    (void)user;
    size_t avail = mp_buffer_len(&r->body);
    if (avail == 0 && !r->end_set) {
        r->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = MP_MIN(avail, length);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && r->end_set) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        r->request_sent = true;
        if (r->has_trailers) {
            nghttp2_nv *nva;
            size_t nn;
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (mp_h2_nva_from_headers(&r->trailers, &nva, &nn) == 0) {
                nghttp2_submit_trailer(session, id, nva, nn);
                free(nva);
            }
        }
    }
    return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct upconn *u = user;
    /* one stream map lookup per header block, not per header */
    u->hdr_req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    u->hdr_id = frame->hd.stream_id;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    struct upconn *u = user;
    struct mp_upstream_request *r =
        u->hdr_req && u->hdr_id == frame->hd.stream_id
            ? u->hdr_req
            : nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!r || r->done)
        return 0;
    if (r->resp.bytes + namelen + valuelen > 96 * 1024)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (mp_headers_add(&r->resp, (const char *)name, namelen, (const char *)value, valuelen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct upconn *u = user;
    if (frame->hd.type == NGHTTP2_SETTINGS || frame->hd.type == NGHTTP2_GOAWAY) {
        if (frame->hd.type == NGHTTP2_GOAWAY)
            u->goaway = true;
        mp_pool_schedule_dispatch(u->pool);
        return 0;
    }
    struct mp_upstream_request *r =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!r || r->done)
        return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        if (!r->resp_headers_done) {
            const char *st = mp_headers_value(&r->resp, ":status");
            if (st && st[0] == '1' && !end) {
                mp_headers_clear(&r->resp); /* interim response */
                return 0;
            }
            struct mp_headers h = r->resp;
            mp_headers_init(&r->resp);
            mp_upreq_deliver_headers(r, &h, end);
            mp_headers_clear(&h);
            if (end)
                complete(u, r);
        } else {
            struct mp_headers t = r->resp;
            mp_headers_init(&r->resp);
            mp_upreq_deliver_trailers(r, &t);
            mp_headers_clear(&t);
            complete(u, r);
        }
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
        struct mp_buffer empty = MP_BUFFER_INIT;
        mp_upreq_deliver_data(r, &empty, true);
        complete(u, r);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct upconn *u = user;
    (void)flags;
    struct mp_upstream_request *r = nghttp2_session_get_stream_user_data(session, id);
    if (!r || r->done) {
        nghttp2_session_consume(session, id, len);
        return 0;
    }
    struct mp_buffer b = MP_BUFFER_INIT;
    struct mp_slice *sl = u->cur_slice;
    if (sl && data >= sl->data && data + len <= sl->data + sl->used) {
        if (mp_buffer_append_ref(&b, sl, (size_t)(data - sl->data), len) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else if (mp_buffer_append_copy(&b, data, len) < 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (r->read_disabled)
        r->unconsumed += len;
    else
        nghttp2_session_consume(session, id, len);
    mp_upreq_deliver_data(r, &b, false);
    mp_buffer_clear(&b);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    struct upconn *u = user;
    struct mp_upstream_request *r = nghttp2_session_get_stream_user_data(session, id);
    if (u->n_streams)
        u->n_streams--;
    if (u->hdr_req == r)
        u->hdr_req = NULL;
    if (r) {
        nghttp2_session_set_stream_user_data(session, id, NULL);
        if (r->unconsumed)
            nghttp2_session_consume_connection(session, r->unconsumed);
        r->unconsumed = 0;
        r->stream_open = false;
        if (!r->done && !(r->resp_headers_done && error_code == NGHTTP2_NO_ERROR))
            mp_upreq_fail(r, error_code == NGHTTP2_REFUSED_STREAM ? MP_UPSTREAM_REFUSED
                                                                  : MP_UPSTREAM_RESET);
        else
            mp_upreq_finish(r);
    }
    if (u->n_streams == 0)
        mp_upconn_idle_start(u);
    mp_pool_schedule_dispatch(u->pool);
    return 0;
}

/* The response is complete: stop the request side too if it is still going. */
static void complete(struct upconn *u, struct mp_upstream_request *r)
{
    if (r->stream_open && !r->request_sent)
        nghttp2_submit_rst_stream(u->session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_NO_ERROR);
    mp_upreq_finish(r);
    schedule_send(u);
}

static int h2_init(struct upconn *u)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return MP_ERR_NOMEM;
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
    int rv = nghttp2_session_client_new2(&u->session, cbs, u, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return MP_ERR_NOMEM;
    u->send_d.fn = do_send;
    u->send_d.arg = u;
    struct mp_pool *p = u->pool;
    uint32_t sw = p->h2_stream_window ? p->h2_stream_window : 268435456u;
    uint32_t cw = p->h2_conn_window ? p->h2_conn_window : 268435456u;
    if (sw > MP_H2_STREAM_WINDOW_CAP)
        sw = MP_H2_STREAM_WINDOW_CAP;
    if (cw > 2147483647u)
        cw = 2147483647u;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, sw},
    };
    nghttp2_submit_settings(u->session, NGHTTP2_FLAG_NONE, iv, MP_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(u->session, NGHTTP2_FLAG_NONE, 0, (int32_t)cw);
    schedule_send(u);
    return 0;
}

static bool h2_has_capacity(const struct upconn *u)
{
    if (!u->session || u->goaway || u->eof || u->closed)
        return false;
    const struct mp_pool *p = u->pool;
    uint32_t peer =
        nghttp2_session_get_remote_settings(u->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    uint32_t limit = MP_MIN(peer, p->h2_max_streams ? p->h2_max_streams : 2147483647u);
    if (u->n_streams >= limit)
        return false;
    if (p->max_requests_per_conn && u->n_requests > p->max_requests_per_conn)
        return false;
    if (!nghttp2_session_check_request_allowed(u->session))
        return false;
    return true;
}

static int submit(struct upconn *u, struct mp_upstream_request *r)
{
    nghttp2_nv stack[32], *nva; /* nghttp2 copies the array */
    size_t n;
    mp_headers_pseudo_first(&r->headers);
    if (mp_h2_nva_fill(&r->headers, stack, MP_ARRAY_LEN(stack), &nva, &n) < 0)
        return MP_ERR_NOMEM;
    bool end = r->end_set && mp_buffer_len(&r->body) == 0 && !r->has_trailers;
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = read_cb};
    int32_t id = nghttp2_submit_request(u->session, NULL, nva, n, end ? NULL : &prd, r);
    if (nva != stack)
        free(nva);
    if (id < 0)
        return MP_ERR_PROTO;
    r->stream_id = id;
    r->stream_open = true;
    r->headers_sent = true;
    if (end)
        r->request_sent = true;
    schedule_send(u);
    return 0;
}

static int h2_attach(struct upconn *u, struct mp_upstream_request *r)
{
    u->n_streams++;
    r->next = u->reqs;
    r->prev = NULL;
    if (u->reqs)
        u->reqs->prev = r;
    u->reqs = r;
    r->linked = true;
    if (r->headers_set && submit(u, r) < 0) {
        u->n_streams--;
        return MP_ERR_PROTO;
    }
    return 0;
}

static void h2_request_updated(struct upconn *u, struct mp_upstream_request *r)
{
    if (!r->headers_sent) {
        if (r->headers_set && submit(u, r) < 0)
            mp_upreq_fail(r, MP_UPSTREAM_PROTOCOL_ERROR);
        return;
    }
    if (r->data_deferred) {
        r->data_deferred = false;
        nghttp2_session_resume_data(u->session, r->stream_id);
    }
    schedule_send(u);
}

static void h2_cancel(struct upconn *u, struct mp_upstream_request *r)
{
    if (r->stream_open) {
        nghttp2_submit_rst_stream(u->session, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
        schedule_send(u);
    } else if (u->n_streams) {
        u->n_streams--; /* attached but never submitted */
    }
}

static void h2_read_disable(struct upconn *u, struct mp_upstream_request *r, bool disable)
{
    if (!disable && r->unconsumed && r->stream_id > 0) {
        nghttp2_session_consume(u->session, r->stream_id, r->unconsumed);
        r->unconsumed = 0;
        schedule_send(u);
    }
}

static int h2_on_data(struct upconn *u)
{
    while (mp_buffer_len(&u->in) > 0 && !u->closed) {
        struct mp_buffer_view *v = &u->in.views[u->in.head];
        u->cur_slice = v->slice;
        ssize_t n = nghttp2_session_mem_recv(u->session, v->slice->data + v->off, v->len);
        u->cur_slice = NULL;
        if (n < 0)
            return MP_ERR_PROTO;
        mp_buffer_drain(&u->in, (size_t)n);
    }
    u->hdr_req = NULL; /* requests may be freed before the next read */
    schedule_send(u);
    return 0;
}

static void h2_on_eof(struct upconn *u)
{
    mp_upconn_close(u, MP_UPSTREAM_RESET);
}

static void h2_fail_all(struct upconn *u, enum mp_upstream_reset_reason why)
{
    /* every request on the session loses its stream */
    while (u->reqs) {
        struct mp_upstream_request *r = u->reqs;
        if (u->session && r->stream_id > 0)
            nghttp2_session_set_stream_user_data(u->session, r->stream_id, NULL);
        r->stream_open = false;
        if (r->done)
            mp_upreq_finish(r);
        else
            mp_upreq_fail(r, why);
        if (u->reqs == r) {
            /* not unlinked (finish deferred for another reason): unlink by hand */
            u->reqs = r->next;
            if (u->reqs)
                u->reqs->prev = NULL;
            r->next = r->prev = NULL;
            r->linked = false;
        }
    }
}

static void h2_on_writable(struct upconn *u)
{
    schedule_send(u);
}

static void h2_destroy(struct upconn *u)
{
    if (u->session)
        nghttp2_session_del(u->session);
    u->session = NULL;
}

const struct upconn_ops mp_pool_http2_ops = {
    .init = h2_init,
    .on_data = h2_on_data,
    .on_eof = h2_on_eof,
    .fail_all = h2_fail_all,
    .has_capacity = h2_has_capacity,
    .attach = h2_attach,
    .request_updated = h2_request_updated,
    .cancel = h2_cancel,
    .read_disable = h2_read_disable,
    .on_writable = h2_on_writable,
    .destroy = h2_destroy,
};
