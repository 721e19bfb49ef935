/*
 * upstream.c: per-worker connection pools (one per cluster, host and
 * protocol), upstream sockets and the request handle the router uses. The
 * protocol-specific parts are in pool_http1.c and pool_http2.c.
 */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "http_stats.h"
#include "http_stream.h"
#include "mp_common.h"
#include "snapshot.h"
#include "tls_context.h"
#include "tls_transport.h"
#include "upstream_bind.h"
#include "upstream_int.h"

struct mp_pool_set {
    struct mp_pool *pools;
};

/* ---- requests ----------------------------------------------------------- */

static void upreq_free_cb(void *arg)
{
    struct mp_upstream_request *r = arg;
    mp_headers_clear(&r->headers);
    mp_headers_clear(&r->trailers);
    mp_headers_clear(&r->resp);
    mp_buffer_clear(&r->body);
    free(r);
}

static void pending_remove(struct mp_upstream_request *r)
{
    struct mp_pool *p = r->pool;
    if (!r->pending)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        p->pending_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        p->pending_tail = r->prev;
    r->next = r->prev = NULL;
    r->pending = false;
    p->n_pending--;
}

void mp_upreq_finish(struct mp_upstream_request *r)
{
    pending_remove(r);
    if (!r->done) {
        r->done = true;
        r->cb = NULL;
        if (r->pool->rq_active)
            r->pool->rq_active--;
        if (r->pool->stats)
            mp_gauge_sub(r->pool->stats->rq_active, r->pool->w->index, 1);
        if (r->pool->hstats) {
            atomic_fetch_sub_explicit(&r->pool->hstats->rq_active, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(r->failed ? &r->pool->hstats->rq_error
                                                : &r->pool->hstats->rq_success,
                                      1, memory_order_relaxed);
        }
    }
    if (r->stream_open || r->free_d.queued)
        return;
    if (r->linked && r->conn) {
        struct upconn *u = r->conn;
        if (r->prev)
            r->prev->next = r->next;
        else
            u->reqs = r->next;
        if (r->next)
            r->next->prev = r->prev;
        r->next = r->prev = NULL;
        r->linked = false;
    }
    r->conn = NULL;
    mp_worker_defer(r->pool->w, &r->free_d);
}

void mp_upreq_deliver_headers(struct mp_upstream_request *r, struct mp_headers *h, bool end)
{
    if (r->done || !r->cb)
        return;
    r->resp_headers_done = true;
    r->cb->on_headers(r->ctx, h, end);
}

void mp_upreq_deliver_data(struct mp_upstream_request *r, struct mp_buffer *b, bool end)
{
    if (r->done || !r->cb) {
        mp_buffer_clear(b);
        return;
    }
    r->cb->on_data(r->ctx, b, end);
}

void mp_upreq_deliver_trailers(struct mp_upstream_request *r, struct mp_headers *t)
{
    if (r->done || !r->cb)
        return;
    r->cb->on_trailers(r->ctx, t);
}

void mp_upreq_fail(struct mp_upstream_request *r, enum mp_upstream_reset_reason why)
{
    if (r->done)
        return;
    const struct mp_upstream_callbacks *cb = r->cb;
    void *ctx = r->ctx;
    r->failed = true;
    mp_upreq_finish(r);
    if (cb)
        cb->on_reset(ctx, why);
}

/* ---- connections ---------------------------------------------------------- */

static void upconn_free_cb(void *arg)
{
    struct upconn *u = arg;
    struct mp_pool *p = u->pool;
    mp_worker_undefer(p->w, &u->flush_d);
    mp_worker_undefer(p->w, &u->send_d);
    if (p->ops->destroy)
        p->ops->destroy(u);
    mp_tls_transport_free(u->tls);
    mp_buffer_clear(&u->raw_in);
    mp_buffer_clear(&u->raw_out);
    mp_buffer_clear(&u->in);
    mp_buffer_clear(&u->out);
    free(u);
}

void mp_upconn_close(struct upconn *u, enum mp_upstream_reset_reason why)
{
    if (u->closed)
        return;
    struct mp_pool *p = u->pool;
    struct mp_worker *w = p->w;
    u->closed = true;
    ev_io_stop(w->loop, &u->rio);
    ev_io_stop(w->loop, &u->wio);
    ev_timer_stop(w->loop, &u->timer);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->prev)
        u->prev->next = u->next;
    else
        p->conns = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    p->n_conns--;
    if (!u->connected && p->n_connecting)
        p->n_connecting--;
    if (p->stats) {
        mp_gauge_sub(p->stats->cx_active, w->index, 1);
        mp_counter_inc(p->stats->cx_destroy, w->index, 1);
    }
    if (p->hstats)
        atomic_fetch_sub_explicit(&p->hstats->cx_active, 1, memory_order_relaxed);
    if (u->connected)
        p->ops->fail_all(u, why);
    else {
        /* requests waiting for a connection fail only when no other attempt is in flight */
        if (p->n_connecting == 0 && p->n_conns == 0) {
            while (p->pending_head)
                mp_upreq_fail(p->pending_head, why);
        }
    }
    mp_worker_defer(w, &u->free_d);
    mp_pool_schedule_dispatch(p);
}

static void upconn_flush(struct upconn *u)
{
    if (u->closed || !u->connected)
        return;
    struct mp_buffer *wbuf = &u->out;
    if (u->tls) {
        /* plaintext waits in out until the handshake is done */
        if (mp_buffer_len(&u->out) > 0 && mp_tls_transport_handshake_done(u->tls)) {
            ssize_t n = mp_tls_transport_write(u->tls, &u->out);
            if (n < 0 && n != MP_ERR_AGAIN) {
                mp_upconn_close(u, MP_UPSTREAM_RESET);
                return;
            }
        }
        mp_tls_transport_take_output(u->tls, &u->raw_out);
        wbuf = &u->raw_out;
    }
    while (mp_buffer_len(wbuf) > 0) {
        ssize_t n = mp_buffer_write_fd(wbuf, u->fd);
        if (n == MP_ERR_AGAIN)
            break;
        if (n < 0) {
            mp_upconn_close(u, MP_UPSTREAM_RESET);
            return;
        }
    }
    if (mp_buffer_len(wbuf) > 0) {
        if (!ev_is_active(&u->wio))
            ev_io_start(u->pool->w->loop, &u->wio);
    } else {
        ev_io_stop(u->pool->w->loop, &u->wio);
    }
    size_t len = mp_buffer_len(&u->out) + mp_buffer_len(&u->raw_out);
    if (!u->above_high && len > u->pool->buffer_limit) {
        u->above_high = true;
    } else if (u->above_high && len <= u->pool->buffer_limit / 2) {
        u->above_high = false;
        if (u->pool->ops->on_writable)
            u->pool->ops->on_writable(u);
    }
}

static void flush_cb(void *arg)
{
    upconn_flush(arg);
}

void mp_upconn_schedule_flush(struct upconn *u)
{
    if (!u->closed)
        mp_worker_defer(u->pool->w, &u->flush_d);
}

void mp_upconn_read_disable(struct upconn *u, bool disable)
{
    if (u->closed || !u->connected)
        return;
    u->read_disabled = disable;
    if (disable)
        ev_io_stop(u->pool->w->loop, &u->rio);
    else if (!u->eof) {
        ev_io_start(u->pool->w->loop, &u->rio);
        if (mp_buffer_len(&u->in) > 0)
            ev_feed_event(u->pool->w->loop, &u->rio, EV_READ);
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct upconn *u = t->data;
    (void)loop;
    (void)revents;
    if (!u->connected) {
        struct mp_pool *p = u->pool;
        if (p->stats && !u->connect_failed)
            mp_counter_inc(p->stats->cx_connect_timeout, p->w->index, 1);
        if (p->stats)
            mp_counter_inc(p->stats->cx_connect_fail, p->w->index, 1);
        if (p->hstats)
            atomic_fetch_add_explicit(&p->hstats->cx_connect_fail, 1, memory_order_relaxed);
        mp_upconn_close(u,
                        u->connect_failed ? MP_UPSTREAM_CONNECT_FAIL : MP_UPSTREAM_CONNECT_TIMEOUT);
        return;
    }
    /* idle timeout: nothing in flight */
    mp_upconn_close(u, MP_UPSTREAM_RESET);
}

void mp_upconn_idle_start(struct upconn *u)
{
    if (u->closed || !u->pool->idle_timeout_ms)
        return;
    ev_timer_stop(u->pool->w->loop, &u->timer);
    ev_timer_set(&u->timer, (double)u->pool->idle_timeout_ms / 1000.0, 0.);
    ev_timer_start(u->pool->w->loop, &u->timer);
}

void mp_upconn_idle_stop(struct upconn *u)
{
    if (u->connected)
        ev_timer_stop(u->pool->w->loop, &u->timer);
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct upconn *u = io->data;
    (void)loop;
    (void)revents;
    if (u->closed)
        return;
    ssize_t n = 0;
    struct mp_buffer *rbuf = u->tls ? &u->raw_in : &u->in;
    for (int i = 0; i < 4; i++) {
        n = mp_buffer_read_fd(rbuf, u->fd, 0);
        if (n < (ssize_t)MP_BUFFER_READ_DEFAULT)
            break;
    }
    if (n == MP_ERR_CLOSED) {
        u->eof = true;
        ev_io_stop(u->pool->w->loop, &u->rio);
    } else if (n < 0 && n != MP_ERR_AGAIN) {
        mp_upconn_close(u, MP_UPSTREAM_RESET);
        return;
    }
    if (u->tls) {
        if (mp_buffer_len(&u->raw_in) > 0)
            mp_tls_transport_feed(u->tls, &u->raw_in);
        if (u->eof)
            mp_tls_transport_feed_eof(u->tls);
        for (int i = 0; i < 64; i++) {
            ssize_t r = mp_tls_transport_read(u->tls, &u->in);
            if (r > 0)
                continue;
            if (r == MP_ERR_CLOSED)
                u->eof = true;
            else if (r != MP_ERR_AGAIN) {
                /* tell the server why (bad_certificate ...) before closing */
                mp_tls_transport_take_output(u->tls, &u->raw_out);
                mp_buffer_write_fd(&u->raw_out, u->fd);
                mp_upconn_close(u, MP_UPSTREAM_CONNECT_FAIL);
                return;
            }
            break;
        }
        /* handshake flights and plaintext that waited for the handshake */
        mp_upconn_schedule_flush(u);
    }
    if (mp_buffer_len(&u->in) > 0 && u->pool->ops->on_data(u) < 0) {
        mp_upconn_close(u, MP_UPSTREAM_PROTOCOL_ERROR);
        return;
    }
    if (u->eof && !u->closed)
        u->pool->ops->on_eof(u);
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct upconn *u = io->data;
    (void)loop;
    (void)revents;
    if (u->closed)
        return;
    if (!u->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        struct mp_pool *p = u->pool;
        if (err != 0) {
            if (p->stats)
                mp_counter_inc(p->stats->cx_connect_fail, p->w->index, 1);
            if (p->hstats)
                atomic_fetch_add_explicit(&p->hstats->cx_connect_fail, 1, memory_order_relaxed);
            mp_upconn_close(u, MP_UPSTREAM_CONNECT_FAIL);
            return;
        }
        u->connected = true;
        p->n_connecting--;
        ev_timer_stop(p->w->loop, &u->timer);
        if (p->stats)
            mp_histogram_record(p->stats->cx_connect_ms, p->w->index,
                                (uint64_t)(mp_now_us() - u->connect_start_us));
        ev_io_stop(p->w->loop, &u->wio);
        ev_io_start(p->w->loop, &u->rio);
        if (p->tls) {
            static const char *const h2[] = {"h2"};
            static const char *const h1[] = {"http/1.1"};
            /* count in cluster.<name>.ssl.*, which outlives the context */
            struct mp_tls_transport_opts o = {.stats = p->stats ? &p->stats->ssl : NULL};
            uint32_t max_sessions = mp_tls_context_config(p->tls)->max_session_keys;
            if (!p->tls_sessions && max_sessions > 0)
                p->tls_sessions = mp_tls_session_cache_new(max_sessions); /* NULL: no resumption */
            o.sessions = p->tls_sessions;
            if (mp_tls_context_config(p->tls)->n_alpn == 0) {
                o.alpn = p->proto == MP_UPSTREAM_PROTO_HTTP2 ? h2 : h1;
                o.n_alpn = 1;
            }
            if (mp_tls_transport_new(p->tls, &o, &u->tls) < 0 ||
                mp_tls_transport_handshake(u->tls) == MP_ERR_PROTO) {
                mp_upconn_close(u, MP_UPSTREAM_CONNECT_FAIL);
                return;
            }
        }
        if (p->ops->init(u) < 0) {
            mp_upconn_close(u, MP_UPSTREAM_PROTOCOL_ERROR);
            return;
        }
        mp_pool_schedule_dispatch(p);
        mp_upconn_schedule_flush(u);
        return;
    }
    upconn_flush(u);
}

static struct upconn *upconn_new(struct mp_pool *p)
{
    struct upconn *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->pool = p;
    u->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        free(u);
        return NULL;
    }
    if (p->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (mp_upstream_bind_source(u->fd, &p->source_addr, p->source_addr_len, &p->addr) < 0) {
        close(u->fd);
        free(u);
        return NULL;
    }
    mp_buffer_init(&u->in);
    mp_buffer_init(&u->out);
    mp_buffer_init(&u->raw_in);
    mp_buffer_init(&u->raw_out);
    u->flush_d.fn = flush_cb;
    u->flush_d.arg = u;
    u->free_d.fn = upconn_free_cb;
    u->free_d.arg = u;
    ev_io_init(&u->rio, read_cb, u->fd, EV_READ);
    ev_io_init(&u->wio, write_cb, u->fd, EV_WRITE);
    u->rio.data = u->wio.data = u;
    ev_init(&u->timer, timer_cb);
    u->timer.data = u;
    u->connect_start_us = mp_now_us();
    u->next = p->conns;
    if (p->conns)
        p->conns->prev = u;
    p->conns = u;
    p->n_conns++;
    p->n_connecting++;
    if (p->stats) {
        mp_counter_inc(p->stats->cx_total, p->w->index, 1);
        mp_counter_inc(p->proto == MP_UPSTREAM_PROTO_HTTP2 ? p->stats->cx_http2_total
                                                           : p->stats->cx_http1_total,
                       p->w->index, 1);
        mp_gauge_add(p->stats->cx_active, p->w->index, 1);
    }
    if (p->hstats) {
        atomic_fetch_add_explicit(&p->hstats->cx_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->hstats->cx_active, 1, memory_order_relaxed);
    }
    int rc = connect(u->fd, (struct sockaddr *)&p->addr, p->addr_len);
    if (rc < 0 && errno != EINPROGRESS) {
        u->connect_failed = true;
        /* report from the loop, not from inside the caller's request setup */
        ev_timer_set(&u->timer, 0., 0.);
        ev_timer_start(p->w->loop, &u->timer);
        return u;
    }
    ev_io_start(p->w->loop, &u->wio);
    if (p->connect_timeout_ms) {
        ev_timer_set(&u->timer, (double)p->connect_timeout_ms / 1000.0, 0.);
        ev_timer_start(p->w->loop, &u->timer);
    }
    return u;
}

/* ---- pools ------------------------------------------------------------------ */

static void dispatch(void *arg)
{
    struct mp_pool *p = arg;
    /* bounded: each pass attaches a request or opens a connection */
    for (int guard = 0; guard < 100000 && p->pending_head; guard++) {
        struct upconn *best = NULL;
        for (struct upconn *u = p->conns; u; u = u->next) {
            if (u->connected && !u->closed && p->ops->has_capacity(u)) {
                best = u;
                break;
            }
        }
        if (best) {
            struct mp_upstream_request *r = p->pending_head;
            pending_remove(r);
            r->conn = best;
            best->n_requests++;
            mp_upconn_idle_stop(best);
            if (p->ops->attach(best, r) < 0)
                mp_upreq_fail(r, MP_UPSTREAM_PROTOCOL_ERROR);
            continue;
        }
        /* no room: open another connection if the queue outgrows those connecting */
        uint32_t per_conn =
            p->proto == MP_UPSTREAM_PROTO_HTTP2 ? MP_MIN(p->h2_max_streams, 100u) : 1u;
        if (per_conn == 0)
            per_conn = 1;
        if ((uint64_t)p->n_connecting * per_conn < p->n_pending &&
            p->n_conns < p->max_connections) {
            if (!upconn_new(p)) {
                mp_upreq_fail(p->pending_head, MP_UPSTREAM_CONNECT_FAIL);
                continue;
            }
            continue;
        }
        break;
    }
}

void mp_pool_schedule_dispatch(struct mp_pool *p)
{
    mp_worker_defer(p->w, &p->dispatch_d);
}

static struct mp_pool *pool_get(struct mp_worker *w, const struct mp_snapshot_cluster *ce,
                                const struct mp_host *h, enum mp_upstream_proto proto)
{
    if (!w->pools) {
        w->pools = calloc(1, sizeof(*w->pools));
        if (!w->pools)
            return NULL;
    }
    const struct mp_cluster *c = ce->cluster;
    int tls_error = 0;
    struct mp_tls_context *tls = mp_snapshot_cluster_tls(ce, h, &tls_error);
    if (tls_error)
        return NULL; /* never plaintext where TLS was configured */
    for (struct mp_pool *p = w->pools->pools; p; p = p->next) {
        if (p->proto == proto && strcmp(p->cluster_name, c->name) == 0 &&
            strcmp(p->host_str, h->addr_str) == 0) {
            /* cluster settings may have changed with a new snapshot */
            p->connect_timeout_ms = c->connect_timeout_ms;
            memcpy(&p->source_addr, &c->source_addr, sizeof(p->source_addr));
            p->source_addr_len = c->source_addr_len;
            p->idle_timeout_ms = c->idle_timeout_ms;
            p->stats = ce->stats;
            if (p->tls != tls) {
                /* new connections use the new TLS settings */
                mp_tls_context_unref(p->tls);
                p->tls = tls ? mp_tls_context_ref(tls) : NULL;
                /* a resumed session skips verification: never under new settings */
                mp_tls_session_cache_free(p->tls_sessions);
                p->tls_sessions = NULL;
            }
            return p;
        }
    }
    struct mp_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cluster_name = strdup(c->name);
    if (!p->cluster_name) {
        free(p);
        return NULL;
    }
    p->w = w;
    snprintf(p->host_str, sizeof(p->host_str), "%s", h->addr_str);
    memcpy(&p->addr, &h->addr, sizeof(p->addr));
    p->addr_len = h->addr_len;
    p->proto = proto;
    p->ops = proto == MP_UPSTREAM_PROTO_HTTP2 ? &mp_pool_http2_ops : &mp_pool_http1_ops;
    p->connect_timeout_ms = c->connect_timeout_ms;
    memcpy(&p->source_addr, &c->source_addr, sizeof(p->source_addr));
    p->source_addr_len = c->source_addr_len;
    p->idle_timeout_ms = c->idle_timeout_ms;
    p->max_requests_per_conn = c->max_requests_per_connection;
    p->max_connections = c->circuit_breakers[0].max_connections;
    if (p->max_connections == 0)
        p->max_connections = 1024;
    p->max_pending = c->circuit_breakers[0].max_pending_requests;
    if (p->max_pending == 0)
        p->max_pending = 1024;
    p->h2_max_streams = c->http2.max_concurrent_streams ? c->http2.max_concurrent_streams : 100;
    p->h2_stream_window = c->http2.initial_stream_window_size;
    p->h2_conn_window = c->http2.initial_connection_window_size;
    p->buffer_limit = c->per_connection_buffer_limit ? c->per_connection_buffer_limit : 1u << 20;
    p->stats = ce->stats;
    p->hstats = mp_http_stats_host(c->name, h->addr_str);
    p->tls = tls ? mp_tls_context_ref(tls) : NULL;
    p->dispatch_d.fn = dispatch;
    p->dispatch_d.arg = p;
    p->next = w->pools->pools;
    w->pools->pools = p;
    return p;
}

struct mp_upstream_request *
mp_upstream_request_new(struct mp_worker *w, const struct mp_snapshot_cluster *ce,
                        const struct mp_host *h, enum mp_upstream_proto proto,
                        const struct mp_upstream_callbacks *cb, void *ctx,
                        enum mp_upstream_reset_reason *reason)
{
    *reason = MP_UPSTREAM_CONNECT_FAIL;
    struct mp_pool *p = pool_get(w, ce, h, proto);
    if (!p)
        return NULL;
    if (p->n_pending >= p->max_pending) {
        *reason = MP_UPSTREAM_OVERFLOW;
        return NULL;
    }
    struct mp_upstream_request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->pool = p;
    r->cb = cb;
    r->ctx = ctx;
    mp_headers_init(&r->headers);
    mp_headers_init(&r->trailers);
    mp_headers_init(&r->resp);
    mp_buffer_init(&r->body);
    r->free_d.fn = upreq_free_cb;
    r->free_d.arg = r;
    r->pending = true;
    r->prev = p->pending_tail;
    if (p->pending_tail)
        p->pending_tail->next = r;
    else
        p->pending_head = r;
    p->pending_tail = r;
    p->n_pending++;
    p->rq_active++;
    if (p->hstats) {
        atomic_fetch_add_explicit(&p->hstats->rq_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->hstats->rq_active, 1, memory_order_relaxed);
    }
    if (p->stats) {
        mp_counter_inc(p->stats->rq_pending_total, w->index, 1);
        mp_gauge_add(p->stats->rq_active, w->index, 1);
    }
    mp_pool_schedule_dispatch(p);
    return r;
}

int mp_upstream_send_headers(struct mp_upstream_request *r, struct mp_headers *h, bool end_stream)
{
    if (r->done)
        return MP_ERR_CLOSED;
    mp_headers_clear(&r->headers);
    r->headers = *h;
    mp_headers_init(h);
    r->headers_set = true;
    const char *m = mp_headers_value(&r->headers, ":method");
    r->head_method = m && strcmp(m, "HEAD") == 0;
    if (end_stream)
        r->end_set = true;
    if (r->conn)
        r->pool->ops->request_updated(r->conn, r);
    return 0;
}

int mp_upstream_send_data(struct mp_upstream_request *r, struct mp_buffer *data, bool end_stream)
{
    if (r->done) {
        mp_buffer_clear(data);
        return MP_ERR_CLOSED;
    }
    mp_buffer_count_proxied(mp_buffer_len(data));
    mp_buffer_move(&r->body, data);
    if (end_stream)
        r->end_set = true;
    if (r->conn)
        r->pool->ops->request_updated(r->conn, r);
    else if (!r->above && mp_buffer_len(&r->body) > r->pool->buffer_limit) {
        r->above = true;
        if (r->cb && r->cb->on_watermark)
            r->cb->on_watermark(r->ctx, true);
    }
    return 0;
}

int mp_upstream_send_trailers(struct mp_upstream_request *r, struct mp_headers *t)
{
    if (r->done)
        return MP_ERR_CLOSED;
    mp_headers_clear(&r->trailers);
    r->trailers = *t;
    mp_headers_init(t);
    r->has_trailers = true;
    r->end_set = true;
    if (r->conn)
        r->pool->ops->request_updated(r->conn, r);
    return 0;
}

void mp_upstream_read_disable(struct mp_upstream_request *r, bool disable)
{
    if (r->done)
        return;
    r->read_disabled = disable;
    if (r->conn)
        r->pool->ops->read_disable(r->conn, r, disable);
}

void mp_upstream_request_cancel(struct mp_upstream_request *r)
{
    if (!r || r->done)
        return;
    struct upconn *u = r->conn;
    r->cb = NULL;
    if (r->pool->stats)
        mp_counter_inc(r->pool->stats->rq_cancelled, r->pool->w->index, 1);
    if (u)
        r->pool->ops->cancel(u, r);
    mp_upreq_finish(r);
}

const char *mp_upstream_request_host(const struct mp_upstream_request *r)
{
    return r->pool->host_str;
}

void mp_upstream_pools_free(struct mp_worker *w)
{
    if (!w->pools)
        return;
    struct mp_pool *p = w->pools->pools;
    while (p) {
        struct mp_pool *next = p->next;
        while (p->conns)
            mp_upconn_close(p->conns, MP_UPSTREAM_RESET);
        while (p->pending_head)
            mp_upreq_fail(p->pending_head, MP_UPSTREAM_RESET);
        mp_worker_undefer(w, &p->dispatch_d);
        p = next;
    }
    /* run the frees the closes queued before the pools go */
    mp_worker_run_deferred(w);
    p = w->pools->pools;
    while (p) {
        struct mp_pool *next = p->next;
        mp_tls_context_unref(p->tls);
        mp_tls_session_cache_free(p->tls_sessions);
        free(p->cluster_name);
        free(p);
        p = next;
    }
    free(w->pools);
    w->pools = NULL;
}

void mp_upstream_pools_foreach(struct mp_worker *w,
                               void (*fn)(void *arg, const char *cluster, const char *host,
                                          uint64_t cx_active, uint64_t rq_active),
                               void *arg)
{
    if (!w->pools)
        return;
    for (struct mp_pool *p = w->pools->pools; p; p = p->next)
        fn(arg, p->cluster_name, p->host_str, p->n_conns, p->rq_active);
}
