/*
 * tcp_proxy.c: envoy.filters.network.tcp_proxy: a downstream connection
 * joined to one upstream connection of the configured cluster. Bytes move
 * between the two as slice references; each side stops reading while the
 * other side's send buffer is above the connection buffer limit. A cluster
 * with a TLS transport_socket gets TLS on the upstream side (mesh mTLS).
 * With no TLS on either side, once the bytes buffered before the upstream
 * connected are sent, both directions switch to splice(2) through a pipe
 * each (splice_pump.h) and never enter user space.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "cluster.h"
#include "conn.h"
#include "http_stats.h"
#include "http_stream.h"
#include "lb_core.h"
#include "mp_common.h"
#include "snapshot.h"
#include "splice_pump.h"
#include "tls_context.h"
#include "tls_transport.h"
#include "upstream_bind.h"
#include "xds_translate_listener.h"

struct tcpp {
    struct mp_conn *c;
    const struct mp_tcp_proxy_config *cfg;
    const char *cluster; /* picked for this connection (weighted_clusters); owned by cfg */
    const struct mp_snapshot_cluster *ce;
    struct mp_lb_worker *lbw;
    const struct mp_host *host;
    int fd;
    ev_io rio, wio;
    ev_timer timer;
    struct mp_buffer out; /* to the upstream */
    bool connected;
    bool up_eof;
    bool down_eof;
    bool closed;
    uint32_t flags;
    uint64_t rx, tx;
    int64_t start_us, start_wall_us;
    struct mp_host orig_host; /* ORIGINAL_DST: the connection's original destination */
    char orig_addr[64];
    /* the host's transport_socket TLS (Istio's mTLS for TCP services), or NULL;
     * the context lives in the connection's snapshot */
    struct mp_tls_context *tls_ctx;
    struct mp_tls_transport *tls;
    struct mp_buffer raw_in, raw_out; /* ciphertext, when tls */
    bool tls_shutdown;
    /* splice mode: sp[0] downstream -> upstream, sp[1] upstream -> downstream;
     * rio/wio then drive the upstream side and drio/dwio the downstream's
     * (the connection's own watchers stay stopped) */
    bool splicing;
    bool splice_failed; /* fell back once: buffers for the rest of its life */
    struct mp_splice_pump sp[2];
    ev_io drio, dwio;
};

/* Bytes one pump run may splice in before yielding to other connections. */
#define SPLICE_BUDGET (1u << 20)

/* Leaves splice mode: watchers of the downstream fd, then the pipes. */
static void splice_stop(struct tcpp *t)
{
    if (!t->splicing)
        return;
    t->splicing = false;
    struct ev_loop *loop = t->c->w->loop;
    ev_io_stop(loop, &t->drio);
    ev_io_stop(loop, &t->dwio);
    mp_splice_pump_close(&t->sp[0]);
    mp_splice_pump_close(&t->sp[1]);
}

static void up_close(struct tcpp *t)
{
    splice_stop(t);
    if (t->fd < 0)
        return;
    struct ev_loop *loop = t->c->w->loop;
    ev_io_stop(loop, &t->rio);
    ev_io_stop(loop, &t->wio);
    ev_timer_stop(loop, &t->timer);
    close(t->fd);
    t->fd = -1;
    if (t->ce && t->ce->stats)
        mp_gauge_sub(t->ce->stats->cx_active, t->c->w->index, 1);
}

/* Ends both sides: what is queued for the downstream is still written. */
static void finish(struct tcpp *t)
{
    if (t->closed)
        return;
    t->closed = true;
    up_close(t);
    mp_conn_close(t->c, false);
}

/* Bytes queued for the upstream, plaintext and (TLS) ciphertext. */
static size_t up_pending(const struct tcpp *t)
{
    return mp_buffer_len(&t->out) + mp_buffer_len(&t->raw_out);
}

/* TLS: encrypts what waits for the upstream (once the handshake is done),
 * then close_notify after the downstream's half-close, into raw_out. */
static int up_encrypt(struct tcpp *t)
{
    if (mp_buffer_len(&t->out) > 0 && mp_tls_transport_handshake_done(t->tls)) {
        ssize_t n = mp_tls_transport_write(t->tls, &t->out);
        if (n < 0 && n != MP_ERR_AGAIN)
            return (int)n;
    }
    if (t->down_eof && mp_buffer_len(&t->out) == 0 && !t->tls_shutdown &&
        mp_tls_transport_handshake_done(t->tls)) {
        t->tls_shutdown = true;
        mp_tls_transport_shutdown(t->tls);
    }
    return mp_tls_transport_take_output(t->tls, &t->raw_out) < 0 ? MP_ERR_NOMEM : 0;
}

static void up_flush(struct tcpp *t)
{
    struct mp_buffer *wbuf = t->tls ? &t->raw_out : &t->out;
    if (t->tls && up_encrypt(t) < 0) {
        finish(t);
        return;
    }
    while (mp_buffer_len(wbuf) > 0) {
        ssize_t n = mp_buffer_write_fd(wbuf, t->fd);
        if (n == MP_ERR_AGAIN)
            break;
        if (n < 0) {
            finish(t);
            return;
        }
    }
    struct ev_loop *loop = t->c->w->loop;
    if (mp_buffer_len(wbuf) > 0) {
        ev_io_start(loop, &t->wio);
    } else {
        ev_io_stop(loop, &t->wio);
        /* with TLS, plaintext may still wait for the handshake */
        if (t->down_eof && mp_buffer_len(&t->out) == 0)
            shutdown(t->fd, SHUT_WR); /* pass the half-close on */
    }
    /* downstream reads resume once the upstream drained */
    if (up_pending(t) <= t->c->high_watermark / 2 && t->c->read_disabled && !t->down_eof)
        mp_conn_read_disable(t->c, false);
}

/* TLS: feeds what was read (eof: the upstream's FIN), advances the
 * handshake and decrypts into the downstream's out; *closed tells that the
 * upstream has ended its stream. Returns the plaintext bytes added (>= 0), or
 * MP_ERR_PROTO after finishing the connection on a TLS error. */
static ssize_t up_decrypt(struct tcpp *t, bool eof, bool *closed)
{
    struct mp_buffer *plain = &t->c->out;
    size_t before = mp_buffer_len(plain);
    *closed = false;
    if (mp_tls_transport_feed(t->tls, &t->raw_in) < 0) {
        finish(t);
        return MP_ERR_PROTO;
    }
    if (eof)
        mp_tls_transport_feed_eof(t->tls);
    for (int i = 0; i < 64; i++) {
        ssize_t r = mp_tls_transport_read(t->tls, plain);
        if (r > 0)
            continue;
        if (r == MP_ERR_CLOSED)
            *closed = true;
        else if (r != MP_ERR_AGAIN) {
            /* a refused certificate: the alert goes out first */
            mp_tls_transport_take_output(t->tls, &t->raw_out);
            mp_buffer_write_fd(&t->raw_out, t->fd);
            if (!mp_tls_transport_handshake_done(t->tls)) {
                t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
                if (t->ce->stats)
                    mp_counter_inc(t->ce->stats->cx_connect_fail, t->c->w->index, 1);
            }
            finish(t);
            return MP_ERR_PROTO;
        }
        break;
    }
    /* handshake flights, and bytes that waited for the handshake */
    up_flush(t);
    if (t->closed)
        return MP_ERR_PROTO;
    return (ssize_t)(mp_buffer_len(plain) - before);
}

/* Counts bytes spliced in: dir 0 from the downstream, 1 from the upstream. */
static void splice_account(struct tcpp *t, int dir, uint64_t n)
{
    struct mp_conn *c = t->c;
    mp_buffer_count_proxied(n);
    if (dir == 0) {
        t->rx += n;
        if (t->cfg->stats)
            mp_counter_inc(t->cfg->stats->rx_bytes, c->w->index, n);
    } else {
        t->tx += n;
        if (t->cfg->stats)
            mp_counter_inc(t->cfg->stats->tx_bytes, c->w->index, n);
    }
}

/*
 * splice refused these sockets: the connection goes on with buffers. Bytes
 * still in a pipe move to the buffer of their direction (already counted);
 * a FIN a pump saw is seen again by the next read, which is sticky.
 */
static void splice_fallback(struct tcpp *t)
{
    struct mp_conn *c = t->c;
    struct ev_loop *loop = c->w->loop;
    mp_splice_pump_count_fallback();
    t->splice_failed = true;
    ev_io_stop(loop, &t->rio);
    ev_io_stop(loop, &t->wio);
    if (mp_splice_pump_take(&t->sp[0], &t->out) < 0 ||
        mp_splice_pump_take(&t->sp[1], &c->out) < 0) {
        finish(t);
        return;
    }
    splice_stop(t);
    if (mp_buffer_len(&c->out) > 0)
        mp_conn_schedule_flush(c);
    up_flush(t);
    if (t->closed)
        return;
    if (up_pending(t) <= c->high_watermark && !t->down_eof)
        mp_conn_read_disable(c, false);
    if (mp_buffer_len(&c->out) <= c->high_watermark && !t->up_eof)
        ev_io_start(loop, &t->rio);
}

/* Runs one direction's pump and watches what it waits for. */
static void splice_pump_dir(struct tcpp *t, int dir)
{
    struct mp_conn *c = t->c;
    struct ev_loop *loop = c->w->loop;
    if (!t->splicing || t->closed)
        return;
    if (c->closed) {
        /* the worker closed the downstream fd under us (shutdown) */
        finish(t);
        return;
    }
    uint64_t in = 0, out = 0;
    int rc = mp_splice_pump_run(&t->sp[dir], SPLICE_BUDGET, &in, &out);
    if (in > 0)
        splice_account(t, dir, in);
    if (in > 0 || out > 0)
        mp_conn_touch(c);
    ev_io *rd = dir == 0 ? &t->drio : &t->rio;
    ev_io *wr = dir == 0 ? &t->wio : &t->dwio;
    switch (rc) {
    case MP_SPLICE_WANT_READ:
        ev_io_stop(loop, wr);
        ev_io_start(loop, rd);
        return;
    case MP_SPLICE_WANT_WRITE:
        /* backpressure: the pipe holds what the destination did not take */
        ev_io_stop(loop, rd);
        ev_io_start(loop, wr);
        return;
    case MP_SPLICE_DONE:
        ev_io_stop(loop, rd);
        ev_io_stop(loop, wr);
        if (dir == 0) {
            /* the downstream's half-close goes on; the upstream may still answer */
            t->down_eof = true;
            shutdown(t->fd, SHUT_WR);
        } else {
            t->up_eof = true;
            finish(t);
        }
        return;
    case MP_SPLICE_UNSUPPORTED:
        splice_fallback(t);
        return;
    default:
        finish(t); /* a reset on either side */
        return;
    }
}

static void splice_down_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    splice_pump_dir(io->data, 0);
}

static void splice_down_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    splice_pump_dir(io->data, 1);
}

/*
 * Switches a plain TCP connection to splice once nothing waits in user
 * space: what listener filters read and what came before the upstream
 * connected went out through the buffers first.
 */
static void splice_maybe_start(struct tcpp *t)
{
    struct mp_conn *c = t->c;
    if (t->splicing || t->splice_failed || t->closed || t->tls_ctx || c->tls || t->down_eof ||
        t->up_eof || c->eof || c->closing || up_pending(t) > 0 || mp_buffer_len(&c->out) > 0 ||
        mp_buffer_len(&c->in) > 0 || !mp_splice_pump_enabled())
        return;
    if (mp_splice_pump_init(&t->sp[0], c->fd, t->fd, c->high_watermark) < 0) {
        mp_splice_pump_count_fallback();
        t->splice_failed = true;
        return;
    }
    if (mp_splice_pump_init(&t->sp[1], t->fd, c->fd, c->high_watermark) < 0) {
        mp_splice_pump_close(&t->sp[0]);
        mp_splice_pump_count_fallback();
        t->splice_failed = true;
        return;
    }
    struct ev_loop *loop = c->w->loop;
    t->splicing = true;
    mp_conn_read_disable(c, true);
    ev_io_stop(loop, &t->wio);
    ev_io_init(&t->drio, splice_down_read_cb, c->fd, EV_READ);
    ev_io_init(&t->dwio, splice_down_write_cb, c->fd, EV_WRITE);
    t->drio.data = t->dwio.data = t;
    ev_io_start(loop, &t->drio);
    ev_io_start(loop, &t->rio);
}

static void up_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct tcpp *t = io->data;
    struct mp_conn *c = t->c;
    if (t->splicing) {
        splice_pump_dir(t, 1);
        return;
    }
    ssize_t n = mp_buffer_read_fd(t->tls ? &t->raw_in : &c->out, t->fd, 0);
    bool ended = n != MP_ERR_AGAIN && n <= 0; /* FIN or error */
    if (t->tls && (n > 0 || n == MP_ERR_CLOSED)) {
        /* n becomes plaintext bytes; close_notify also ends the stream */
        n = up_decrypt(t, n == MP_ERR_CLOSED, &ended);
        if (n < 0)
            return; /* finished on a TLS error */
        if (n == 0 && !ended)
            return; /* handshake, or a partial record */
    }
    if (n > 0) {
        t->tx += (uint64_t)n;
        mp_buffer_count_proxied((uint64_t)n);
        if (t->cfg->stats)
            mp_counter_inc(t->cfg->stats->tx_bytes, c->w->index, (uint64_t)n);
        mp_conn_touch(c);
        mp_conn_schedule_flush(c);
        /* the downstream is slow: stop reading the upstream until it drains */
        if (!ended && mp_buffer_len(&c->out) > c->high_watermark)
            ev_io_stop(loop, &t->rio);
        if (!ended)
            return;
    }
    if (n == MP_ERR_AGAIN)
        return;
    t->up_eof = true;
    finish(t);
}

static void up_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct tcpp *t = io->data;
    if (t->splicing) {
        splice_pump_dir(t, 0);
        return;
    }
    if (!t->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
            if (t->ce->stats)
                mp_counter_inc(t->ce->stats->cx_connect_fail, t->c->w->index, 1);
            finish(t);
            return;
        }
        t->connected = true;
        ev_timer_stop(loop, &t->timer);
        ev_io_start(loop, &t->rio);
        if (t->tls_ctx) {
            /* ClientHello now; bytes from the downstream wait for the handshake */
            struct mp_tls_transport_opts o = {.stats = t->ce->stats ? &t->ce->stats->ssl : NULL};
            if (mp_tls_transport_new(t->tls_ctx, &o, &t->tls) < 0 ||
                mp_tls_transport_handshake(t->tls) == MP_ERR_PROTO) {
                t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
                finish(t);
                return;
            }
        }
    }
    up_flush(t);
    if (!t->closed)
        splice_maybe_start(t);
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *tm, int revents)
{
    (void)loop;
    (void)revents;
    struct tcpp *t = tm->data;
    t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
    if (t->ce->stats) {
        mp_counter_inc(t->ce->stats->cx_connect_fail, t->c->w->index, 1);
        mp_counter_inc(t->ce->stats->cx_connect_timeout, t->c->w->index, 1);
    }
    finish(t);
}

static int tcpp_on_data(struct mp_conn *c)
{
    struct tcpp *t = c->codec_data;
    size_t n = mp_buffer_len(&c->in);
    t->rx += n;
    mp_buffer_count_proxied(n);
    if (t->cfg->stats)
        mp_counter_inc(t->cfg->stats->rx_bytes, c->w->index, n);
    if (t->closed || t->fd < 0) {
        mp_buffer_clear(&c->in);
        return 0;
    }
    if (mp_buffer_move(&t->out, &c->in) < 0)
        return MP_ERR_NOMEM;
    if (t->connected)
        up_flush(t);
    if (up_pending(t) > c->high_watermark)
        mp_conn_read_disable(c, true);
    else if (t->connected && !t->closed)
        splice_maybe_start(t);
    return 0;
}

static void tcpp_on_writable(struct mp_conn *c)
{
    struct tcpp *t = c->codec_data;
    if (t->connected && !t->closed && t->fd >= 0 && !t->up_eof && !t->splicing)
        ev_io_start(c->w->loop, &t->rio);
}

static void tcpp_on_eof(struct mp_conn *c)
{
    struct tcpp *t = c->codec_data;
    t->down_eof = true;
    if (!t->connected || t->fd < 0) {
        finish(t);
        return;
    }
    if (t->tls)
        up_flush(t); /* close_notify, then the FIN */
    else if (mp_buffer_len(&t->out) == 0)
        shutdown(t->fd, SHUT_WR);
}

static void tcpp_drain(struct mp_conn *c)
{
    /* a raw byte stream has no safe point to stop: close at idle or drain end */
    finish(c->codec_data);
}

static void tcpp_destroy(struct mp_conn *c)
{
    struct tcpp *t = c->codec_data;
    if (!t)
        return;
    up_close(t);
    if (t->cfg->stats)
        mp_gauge_sub(t->cfg->stats->cx_active, c->w->index, 1);
    if (t->cfg->n_access_logs) {
        char flags[32];
        struct mp_al_record rec = {
            .start_us = t->start_wall_us,
            .duration_us = mp_now_us() - t->start_us,
            .request_duration_us = -1,
            .response_duration_us = -1,
            .protocol = NULL,
            .response_flags = mp_http_response_flags_str(t->flags, flags, sizeof(flags)),
            .bytes_received = t->rx,
            .bytes_sent = t->tx,
            .upstream_host = t->host ? t->host->addr_str : NULL,
            .upstream_cluster = t->cluster,
            .downstream_remote = c->remote,
            .downstream_local = c->local,
            .downstream_peer_uri_san = c->tls ? mp_tls_transport_peer_uri_san(c->tls) : NULL,
            .requested_server_name = c->tls ? mp_tls_transport_sni(c->tls) : NULL,
        };
        for (size_t i = 0; i < t->cfg->n_access_logs; i++)
            mp_access_log_emit(t->cfg->access_logs[i], &rec);
    }
    if (t->lbw && t->host)
        mp_lb_worker_rq_done(t->lbw, t->host);
    if (t->lbw)
        mp_lb_worker_unref(t->lbw);
    mp_tls_transport_free(t->tls);
    mp_buffer_clear(&t->raw_in);
    mp_buffer_clear(&t->raw_out);
    mp_buffer_clear(&t->out);
    free(t);
    c->codec_data = NULL;
}

const struct mp_conn_codec_ops mp_tcp_proxy_codec = {
    .name = "tcp_proxy",
    .on_data = tcpp_on_data,
    .on_writable = tcpp_on_writable,
    .on_eof = tcpp_on_eof,
    .drain = tcpp_drain,
    .destroy = tcpp_destroy,
};

/* Per-thread xorshift for the weighted cluster pick (no lock, no syscall per connection). */
static uint64_t pick_random(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        if (getrandom(&s, sizeof(s), 0) != sizeof(s))
            s = (uint64_t)mp_now_us() * 0x9e3779b97f4a7c15ull;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

int mp_tcp_proxy_init(struct mp_conn *c)
{
    struct tcpp *t = calloc(1, sizeof(*t));
    if (!t)
        return MP_ERR_NOMEM;
    t->c = c;
    t->fd = -1;
    t->cfg = c->chain->tcp_proxy;
    t->start_us = mp_now_us();
    t->start_wall_us = mp_wall_us();
    mp_buffer_init(&t->out);
    mp_buffer_init(&t->raw_in);
    mp_buffer_init(&t->raw_out);
    c->codec_data = t;
    unsigned slot = c->w->index;
    if (t->cfg->stats) {
        mp_counter_inc(t->cfg->stats->cx_total, slot, 1);
        mp_gauge_add(t->cfg->stats->cx_active, slot, 1);
    }
    t->cluster = mp_tcp_proxy_pick_cluster(t->cfg, pick_random());
    t->ce = mp_snapshot_find_cluster_entry(c->snap, t->cluster, strlen(t->cluster));
    if (!t->ce) {
        if (t->cfg->stats)
            mp_counter_inc(t->cfg->stats->no_route, slot, 1);
        t->flags |= MP_RF_NO_CLUSTER;
        return MP_ERR_NOTFOUND;
    }
    struct mp_lb_worker *lbw = NULL;
    if (t->ce->cluster->type == MP_CLUSTER_ORIGINAL_DST) {
        /* Istio's PassthroughCluster: go where the client was going */
        struct mp_host *oh = &t->orig_host;
        memcpy(&oh->addr, &c->dst, sizeof(oh->addr));
        oh->addr_len =
            c->dst.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (t->ce->cluster->original_dst_port_override) {
            uint16_t p = htons((uint16_t)t->ce->cluster->original_dst_port_override);
            if (oh->addr.ss_family == AF_INET)
                ((struct sockaddr_in *)&oh->addr)->sin_port = p;
            else
                ((struct sockaddr_in6 *)&oh->addr)->sin6_port = p;
        }
        mp_host_addr_format(&oh->addr, t->orig_addr, sizeof(t->orig_addr));
        oh->addr_str = t->orig_addr;
        if (oh->addr.ss_family == AF_INET || oh->addr.ss_family == AF_INET6)
            t->host = oh;
    } else {
        lbw = t->ce->lb ? mp_worker_lb(c->w, t->ce->lb) : NULL;
        struct mp_lb_context lbc = {0};
        t->host = lbw ? mp_lb_pick(lbw, &lbc) : NULL;
    }
    if (!t->host) {
        if (t->ce->stats)
            mp_counter_inc(t->ce->stats->cx_none_healthy, slot, 1);
        t->flags |= MP_RF_NO_HEALTHY_UPSTREAM;
        return MP_ERR_NOTFOUND;
    }
    int tls_error = 0;
    t->tls_ctx = mp_snapshot_cluster_tls(t->ce, t->host, &tls_error);
    if (tls_error) {
        /* its TLS settings failed (or wait for a secret): never plaintext instead */
        t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
        return MP_ERR_PROTO;
    }
    if (lbw) {
        t->lbw = mp_lb_worker_ref(lbw);
        mp_lb_worker_rq_start(t->lbw, t->host);
    }
    t->fd = socket(t->host->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0)
        return MP_ERR_IO;
    if (t->host->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (mp_upstream_bind_source(t->fd, &t->ce->cluster->source_addr,
                                t->ce->cluster->source_addr_len, &t->host->addr) < 0) {
        t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
        return MP_ERR_IO;
    }
    if (t->ce->stats) {
        mp_counter_inc(t->ce->stats->cx_total, slot, 1);
        mp_gauge_add(t->ce->stats->cx_active, slot, 1);
    }
    ev_io_init(&t->rio, up_read_cb, t->fd, EV_READ);
    ev_io_init(&t->wio, up_write_cb, t->fd, EV_WRITE);
    t->rio.data = t->wio.data = t;
    ev_timer_init(
        &t->timer, connect_timeout_cb,
        (double)(t->ce->cluster->connect_timeout_ms ? t->ce->cluster->connect_timeout_ms : 5000) /
            1000.0,
        0.);
    t->timer.data = t;
    if (connect(t->fd, (const struct sockaddr *)&t->host->addr, t->host->addr_len) < 0 &&
        errno != EINPROGRESS) {
        t->flags |= MP_RF_UPSTREAM_CONNECT_FAIL;
        if (t->ce->stats)
            mp_counter_inc(t->ce->stats->cx_connect_fail, slot, 1);
        return MP_ERR_IO;
    }
    ev_io_start(c->w->loop, &t->wio);
    ev_timer_start(c->w->loop, &t->timer);
    return 0;
}
