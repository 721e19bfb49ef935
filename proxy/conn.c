/*
 * conn.c: downstream connection plumbing shared by the codecs.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_stats.h"
#include "http_stream.h"
#include "filters/listener/http_inspector.h"
#include "log.h"
#include "tls_inspector.h"
#include "tls_transport.h"
#include "mp_common.h"
#include "snapshot.h"
#include "xds_translate_listener.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

uint16_t mp_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(buf, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, cap, "-");
    }
    return port;
}

static void conn_free_cb(void *arg)
{
    struct mp_conn *c = arg;
    if (c->codec && c->codec->destroy)
        c->codec->destroy(c);
    mp_tls_transport_free(c->tls);
    mp_buffer_clear(&c->raw_in);
    mp_buffer_clear(&c->raw_out);
    mp_buffer_clear(&c->in);
    mp_buffer_clear(&c->out);
    mp_snapshot_unref(c->snap);
    free(c);
}

static void conn_do_close(struct mp_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    struct mp_worker *w = c->w;
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->idle);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->n_conns--;
    if (c->listener->stats)
        mp_gauge_sub(c->listener->stats->cx_active, w->index, 1);
    if (c->chain && c->chain->hcm && c->chain->hcm->stats) {
        mp_gauge_sub(c->chain->hcm->stats->cx_active, w->index, 1);
        mp_histogram_record(c->chain->hcm->stats->cx_length, w->index,
                            (uint64_t)(mp_now_us() - c->start_us));
    }
    mp_worker_defer(w, &c->free_d);
}

static void update_watermark(struct mp_conn *c)
{
    size_t len = mp_buffer_len(&c->out) + mp_buffer_len(&c->raw_out);
    if (!c->above_high && len > c->high_watermark) {
        c->above_high = true;
    } else if (c->above_high && len <= c->high_watermark / 2) {
        c->above_high = false;
        if (c->codec && c->codec->on_writable && !c->closed)
            c->codec->on_writable(c);
    }
}

/* TLS: encrypts what the codec queued (once the handshake is done) and
 * collects every pending record into raw_out. */
static int tls_encrypt(struct mp_conn *c)
{
    if (mp_buffer_len(&c->out) > 0 && mp_tls_transport_handshake_done(c->tls)) {
        ssize_t n = mp_tls_transport_write(c->tls, &c->out);
        if (n < 0 && n != MP_ERR_AGAIN)
            return (int)n;
    }
    if (c->closing && mp_buffer_len(&c->out) == 0 && !c->tls_shutdown &&
        mp_tls_transport_handshake_done(c->tls)) {
        c->tls_shutdown = true;
        mp_tls_transport_shutdown(c->tls);
    }
    return mp_tls_transport_take_output(c->tls, &c->raw_out) < 0 ? MP_ERR_NOMEM : 0;
}

static void conn_flush(struct mp_conn *c)
{
    if (c->closed)
        return;
    struct mp_buffer *wbuf = &c->out;
    if (c->tls) {
        if (tls_encrypt(c) < 0) {
            conn_do_close(c);
            return;
        }
        wbuf = &c->raw_out;
    }
    while (mp_buffer_len(wbuf) > 0) {
        ssize_t n = mp_buffer_write_fd(wbuf, c->fd);
        if (n == MP_ERR_AGAIN)
            break;
        if (n < 0) {
            conn_do_close(c);
            return;
        }
    }
    if (mp_buffer_len(wbuf) > 0) {
        if (!ev_is_active(&c->wio))
            ev_io_start(c->w->loop, &c->wio);
    } else {
        ev_io_stop(c->w->loop, &c->wio);
        /* with TLS, plaintext may wait for the handshake: not done yet */
        if (c->closing && mp_buffer_len(&c->out) == 0) {
            /* half-close first so the peer reads everything before the FIN */
            shutdown(c->fd, SHUT_WR);
            conn_do_close(c);
            return;
        }
    }
    update_watermark(c);
}

static void flush_cb(void *arg)
{
    conn_flush(arg);
}

void mp_conn_schedule_flush(struct mp_conn *c)
{
    if (c->closed)
        return;
    if (mp_buffer_len(&c->out) > c->high_watermark && !c->above_high)
        c->above_high = true;
    mp_worker_defer(c->w, &c->flush_d);
}

void mp_conn_close(struct mp_conn *c, bool now)
{
    if (c->closed)
        return;
    if (now || mp_buffer_len(&c->out) == 0) {
        if (!now) {
            c->closing = true;
            mp_worker_defer(c->w, &c->flush_d);
            return;
        }
        conn_do_close(c);
        return;
    }
    c->closing = true;
    mp_conn_read_disable(c, true);
    mp_worker_defer(c->w, &c->flush_d);
}

void mp_conn_read_disable(struct mp_conn *c, bool disable)
{
    if (c->closed)
        return;
    c->read_disabled = disable;
    if (disable)
        ev_io_stop(c->w->loop, &c->rio);
    else if (!c->eof && !c->closing) {
        ev_io_start(c->w->loop, &c->rio);
        /* bytes already buffered would otherwise wait for the next packet */
        if (mp_buffer_len(&c->in) > 0)
            ev_feed_event(c->w->loop, &c->rio, EV_READ);
    }
}

void mp_conn_touch(struct mp_conn *c)
{
    if (c->idle_timeout_ms && !c->closed)
        ev_timer_again(c->w->loop, &c->idle);
}

static int pick_codec(struct mp_conn *c)
{
    const struct mp_hcm_config *hcm = c->chain->hcm;
    enum mp_codec_type t = hcm->codec;
    if (t == MP_CODEC_AUTO) {
        size_t len = mp_buffer_len(&c->in);
        size_t cmp = MP_MIN(len, sizeof(h2_preface) - 1);
        char head[sizeof(h2_preface)];
        mp_buffer_copy_out(&c->in, 0, head, cmp);
        /* copy_out counts as copied bytes; these are protocol bytes, not payload */
        mp_buffer_count_copied(0);
        if (memcmp(head, h2_preface, cmp) != 0)
            t = MP_CODEC_HTTP1;
        else if (cmp == sizeof(h2_preface) - 1)
            t = MP_CODEC_HTTP2;
        else
            return 0; /* need more bytes */
    }
    int rc;
    if (t == MP_CODEC_HTTP2) {
        c->codec = &mp_http2_server_codec;
        rc = mp_http2_server_init(c);
        if (hcm->stats)
            mp_counter_inc(hcm->stats->cx_http2_total, c->w->index, 1);
    } else {
        c->codec = &mp_http1_server_codec;
        rc = mp_http1_server_init(c);
        if (hcm->stats)
            mp_counter_inc(hcm->stats->cx_http1_total, c->w->index, 1);
    }
    if (rc < 0)
        c->codec = NULL;
    return rc;
}

/* TLS: feeds what was read, advances the handshake and decrypts into c->in.
 * Returns 0, or a negative MP_ERR_* after closing the connection. */
static int tls_decrypt(struct mp_conn *c)
{
    if (mp_buffer_len(&c->raw_in) > 0 && mp_tls_transport_feed(c->tls, &c->raw_in) < 0) {
        conn_do_close(c);
        return MP_ERR_NOMEM;
    }
    if (c->eof)
        mp_tls_transport_feed_eof(c->tls);
    for (int i = 0; i < 64; i++) {
        ssize_t r = mp_tls_transport_read(c->tls, &c->in);
        if (r > 0)
            continue;
        if (r == MP_ERR_CLOSED) {
            c->eof = true;
            break;
        }
        if (r != MP_ERR_AGAIN) {
            /* a failed handshake may have an alert to send first */
            mp_tls_transport_take_output(c->tls, &c->raw_out);
            mp_buffer_write_fd(&c->raw_out, c->fd);
            conn_do_close(c);
            return MP_ERR_PROTO;
        }
        break;
    }
    /* handshake flights, and plaintext that waited for the handshake */
    mp_conn_schedule_flush(c);
    /* the peer is verified: network filters that judge by it (RBAC
     * principals) decide before any decrypted byte goes on */
    if (!c->tls_filters_done && c->chain && c->chain->n_network_filters &&
        mp_tls_transport_handshake_done(c->tls)) {
        c->tls_filters_done = true;
        if (mp_network_filters_on_tls_established(c->chain->network_filters,
                                                  c->chain->n_network_filters,
                                                  c) != MP_NETWORK_FILTER_CONTINUE) {
            conn_do_close(c);
            return MP_ERR_LIMIT;
        }
    }
    return 0;
}

static void inspect(struct mp_conn *c, bool force);

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct mp_conn *c = io->data;
    (void)loop;
    (void)revents;
    if (c->closed)
        return;
    /* a fed event may find nothing new on the socket: parse what is buffered */
    ssize_t n = 0;
    struct mp_buffer *rbuf = c->tls ? &c->raw_in : &c->in;
    for (int i = 0; i < 4; i++) {
        n = mp_buffer_read_fd(rbuf, c->fd, 0);
        if (n <= 0)
            break;
        if (n < (ssize_t)MP_BUFFER_READ_DEFAULT)
            break;
    }
    if (n == MP_ERR_CLOSED) {
        c->eof = true;
        ev_io_stop(c->w->loop, &c->rio);
    } else if (n < 0 && n != MP_ERR_AGAIN) {
        conn_do_close(c);
        return;
    }
    mp_conn_touch(c);
    if (c->tls && tls_decrypt(c) < 0)
        return;
    if (c->inspecting) {
        inspect(c, false);
        if (c->inspecting || c->closed)
            return;
        if (c->tls && tls_decrypt(c) < 0)
            return;
        if (c->chain && c->chain->tcp_proxy) {
            /* the bytes read while inspecting go upstream */
            if (mp_buffer_len(&c->in) > 0 && c->codec->on_data(c) < 0)
                mp_conn_close(c, false);
            return;
        }
    }
    if (!c->codec && mp_buffer_len(&c->in) > 0) {
        if (pick_codec(c) < 0) {
            conn_do_close(c);
            return;
        }
    }
    if (c->codec && mp_buffer_len(&c->in) > 0) {
        if (c->codec->on_data(c) < 0) {
            mp_conn_close(c, false);
            return;
        }
    }
    if (c->eof && !c->closed) {
        if (c->codec && c->codec->on_eof)
            c->codec->on_eof(c);
        else
            conn_do_close(c);
    }
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    conn_flush(io->data);
}

static void idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_conn *c = t->data;
    if (c->inspecting) {
        /* listener_filters_timeout */
        if (c->listener->filters.continue_on_timeout) {
            inspect(c, true);
            if (!c->closed)
                ev_feed_event(c->w->loop, &c->rio, EV_READ); /* serve what was read */
        } else
            conn_do_close(c);
        return;
    }
    if (c->codec && c->codec->drain) {
        c->codec->drain(c);
        return;
    }
    conn_do_close(c);
}

/* Sets the connection up for its filter chain (found by listener filter data). */
static int setup_chain(struct mp_conn *c, const char *sni, const char *transport,
                       const char *const *alpn, size_t n_alpn)
{
    struct mp_worker *w = c->w;
    const struct mp_listener_config *l = c->listener;
    struct mp_fc_conn fcc = {
        .dst = (const struct sockaddr *)&c->dst,
        .src = (const struct sockaddr *)&c->src,
        .sni = sni,
        .transport = transport ? transport : "raw_buffer",
        .alpn = alpn,
        .n_alpn = n_alpn,
    };
    c->chain = mp_listener_match_chain(l, &fcc);
    if (!c->chain) {
        if (l->stats)
            mp_counter_inc(l->stats->no_filter_chain_match, w->index, 1);
        conn_do_close(c);
        return MP_ERR_NOTFOUND;
    }
    ev_timer_stop(w->loop, &c->idle);
    if (c->chain->tls_config && !c->chain->tls) {
        /* warming: its certificate (SDS) has not arrived */
        conn_do_close(c);
        return MP_ERR_NOTFOUND;
    }
    /* non-terminal network filters (local_ratelimit, rbac) may refuse the connection */
    if (c->chain->n_network_filters &&
        mp_network_filters_on_new_connection(c->chain->network_filters,
                                             c->chain->n_network_filters,
                                             c) != MP_NETWORK_FILTER_CONTINUE) {
        conn_do_close(c);
        return MP_ERR_LIMIT;
    }
    if (c->chain->tls) {
        /* count in listener.<addr>.ssl.*, which outlives the context */
        struct mp_tls_transport_opts o = {.stats = l->stats ? &l->stats->ssl : NULL};
        if (mp_tls_transport_new(c->chain->tls, &o, &c->tls) < 0) {
            conn_do_close(c);
            return MP_ERR_NOMEM;
        }
        /* what the inspectors read is ciphertext */
        mp_buffer_move(&c->raw_in, &c->in);
    }
    if (c->chain->tcp_proxy) {
        c->idle_timeout_ms = c->chain->tcp_proxy->idle_timeout_ms;
        if (c->idle_timeout_ms) {
            c->idle.repeat = (double)c->idle_timeout_ms / 1000.0;
            ev_timer_again(w->loop, &c->idle);
        }
        c->codec = &mp_tcp_proxy_codec;
        int rc = mp_tcp_proxy_init(c);
        if (rc < 0) {
            /* what init took (upstream socket, state) goes, and the failed
             * connection is access-logged with its flags, as Envoy does */
            if (c->codec->destroy)
                c->codec->destroy(c);
            c->codec = NULL;
            conn_do_close(c);
            return rc;
        }
        return 0;
    }
    const struct mp_hcm_config *hcm = c->chain->hcm;
    if (hcm->stats) {
        mp_counter_inc(hcm->stats->cx_total, w->index, 1);
        mp_gauge_add(hcm->stats->cx_active, w->index, 1);
    }
    c->idle_timeout_ms = hcm->idle_timeout_ms;
    if (c->idle_timeout_ms) {
        c->idle.repeat = (double)c->idle_timeout_ms / 1000.0;
        ev_timer_again(w->loop, &c->idle);
    }
    if (hcm->codec == MP_CODEC_HTTP1 && pick_codec(c) < 0) {
        conn_do_close(c);
        return MP_ERR_NOMEM;
    }
    return 0;
}

/*
 * Runs the listener's tls_inspector / http_inspector over the bytes read so
 * far (they stay in c->in for the codec). Finishes with a chain match when
 * every inspector has decided, when the data stops growing usefully, or when
 * forced (listener_filters_timeout with continue_on_listener_filters_timeout).
 */
static void inspect(struct mp_conn *c, bool force)
{
    const struct mp_listener_filters *lf = &c->listener->filters;
    uint16_t port = c->local_port;
    const struct mp_listener_filter *tls = mp_listener_filters_find(lf, MP_LF_TLS_INSPECTOR);
    const struct mp_listener_filter *http = mp_listener_filters_find(lf, MP_LF_HTTP_INSPECTOR);
    bool use_tls = tls && mp_listener_filter_enabled(tls, port);
    bool use_http = http && mp_listener_filter_enabled(http, port);
    size_t len = mp_buffer_len(&c->in);
    if (len == 0 && c->eof) {
        /* closed before sending a byte (a port probe): no chain to match,
         * as Envoy's listener_filter_remote_close is not no_filter_chain_match */
        conn_do_close(c);
        return;
    }
    size_t cap = use_tls ? tls->initial_read_buffer : 4096;
    if (cap < 4096)
        cap = 4096;
    size_t n = MP_MIN(len, cap);
    uint8_t *head = n ? malloc(n) : NULL;
    if (n && !head) {
        conn_do_close(c);
        return;
    }
    /* inspection reads protocol bytes, not payload: copy without counting */
    for (size_t off = 0, i = c->in.head; off < n; i++) {
        const struct mp_buffer_view *v = &c->in.views[i];
        size_t k = MP_MIN(v->len, n - off);
        memcpy(head + off, v->slice->data + v->off, k);
        off += k;
    }
    struct mp_client_hello ch;
    memset(&ch, 0, sizeof(ch));
    const char *transport = "raw_buffer";
    const char *sni = NULL;
    const char *alpn[8];
    size_t n_alpn = 0;
    bool need_more = false;
    if (use_tls) {
        int rc = mp_tls_inspect(head, n, &ch);
        if (rc == MP_ERR_AGAIN && !force && n < cap && !c->eof) {
            need_more = true;
        } else if (rc == 0 && ch.is_tls) {
            transport = "tls";
            sni = ch.sni[0] ? ch.sni : NULL;
            for (size_t i = 0; i < ch.n_alpn && n_alpn < MP_ARRAY_LEN(alpn); i++)
                alpn[n_alpn++] = ch.alpn[i];
        }
    }
    if (!need_more && use_http && strcmp(transport, "raw_buffer") == 0) {
        const char *proto = NULL;
        int rc = mp_http_inspect(head, n, &proto);
        if (rc == MP_ERR_AGAIN && !force && n < cap && !c->eof)
            need_more = true;
        else if (rc == 0 && proto && n_alpn < MP_ARRAY_LEN(alpn))
            alpn[n_alpn++] = proto;
    }
    if (need_more) {
        free(head);
        return;
    }
    c->inspecting = false;
    setup_chain(c, sni, transport, alpn, n_alpn);
    free(head);
}

int mp_conn_start(struct mp_worker *w, int fd, const struct mp_listener_config *l,
                  struct mp_snapshot *snap)
{
    socklen_t llen = sizeof(struct sockaddr_storage), rlen = sizeof(struct sockaddr_storage);
    struct mp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return MP_ERR_NOMEM;
    }
    c->w = w;
    c->fd = fd;
    c->listener = l;
    c->snap = mp_snapshot_ref(snap);
    c->start_us = mp_now_us();
    mp_buffer_init(&c->in);
    mp_buffer_init(&c->out);
    mp_buffer_init(&c->raw_in);
    mp_buffer_init(&c->raw_out);
    if (getpeername(fd, (struct sockaddr *)&c->src, &rlen) == 0)
        mp_sockaddr_format((struct sockaddr *)&c->src, c->remote, sizeof(c->remote));
    else
        snprintf(c->remote, sizeof(c->remote), "-");
    if (getsockname(fd, (struct sockaddr *)&c->dst, &llen) < 0)
        memset(&c->dst, 0, sizeof(c->dst));
    const struct mp_listener_filter *od = mp_listener_filters_find(&l->filters, MP_LF_ORIGINAL_DST);
    if ((od || l->use_original_dst) && c->dst.ss_family == AF_INET) {
        /* iptables REDIRECT: the address the client meant to reach */
        struct sockaddr_storage orig;
        socklen_t olen = sizeof(struct sockaddr_in);
        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) == 0)
            c->dst = orig;
    }
    if (l->use_original_dst) {
        /* Istio's virtualOutbound: the listener for that address (usually
         * bind_to_port: false) takes the connection over, its own listener
         * filters included; none found, this one serves it */
        const struct mp_listener_config *to = mp_snapshot_find_listener_by_addr(snap, &c->dst);
        if (to && to != l) {
            c->listener = l = to;
            od = mp_listener_filters_find(&l->filters, MP_LF_ORIGINAL_DST);
        }
    }
    c->local_port = mp_sockaddr_format((struct sockaddr *)&c->dst, c->local, sizeof(c->local));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->high_watermark = l->per_connection_buffer_limit ? l->per_connection_buffer_limit : 1u << 20;
    c->flush_d.fn = flush_cb;
    c->flush_d.arg = c;
    c->free_d.fn = conn_free_cb;
    c->free_d.arg = c;
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    c->rio.data = c;
    c->wio.data = c;
    ev_init(&c->idle, idle_cb);
    c->idle.data = c;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    if (l->stats) {
        mp_counter_inc(l->stats->cx_total, w->index, 1);
        mp_gauge_add(l->stats->cx_active, w->index, 1);
    }
    const struct mp_listener_filter *tls =
        mp_listener_filters_find(&l->filters, MP_LF_TLS_INSPECTOR);
    const struct mp_listener_filter *http =
        mp_listener_filters_find(&l->filters, MP_LF_HTTP_INSPECTOR);
    if ((tls && mp_listener_filter_enabled(tls, c->local_port)) ||
        (http && mp_listener_filter_enabled(http, c->local_port))) {
        c->inspecting = true;
        if (l->filters.timeout_ms) {
            c->idle.repeat = (double)l->filters.timeout_ms / 1000.0;
            ev_timer_again(w->loop, &c->idle);
        }
        ev_io_start(w->loop, &c->rio);
        return 0;
    }
    int rc = setup_chain(c, NULL, "raw_buffer", NULL, 0);
    if (rc < 0)
        return rc;
    ev_io_start(w->loop, &c->rio);
    return 0;
}

void mp_conn_drain_all(struct mp_worker *w)
{
    struct mp_conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        c->draining = true;
        if (c->codec && c->codec->drain)
            c->codec->drain(c);
        else
            conn_do_close(c);
    }
}

void mp_conn_drain_stale(struct mp_worker *w, const struct mp_snapshot *snap)
{
    struct mp_conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->draining || !c->codec || !c->codec->drain)
            continue; /* TCP proxying runs to its end: nothing to finish gracefully */
        bool current = false;
        for (size_t i = 0; snap && i < snap->n_listeners && !current; i++)
            current = snap->listeners[i] == c->listener ||
                      (c->listener->config_id &&
                       snap->listeners[i]->config_id == c->listener->config_id);
        if (current)
            continue;
        c->draining = true;
        if (strcmp(c->codec->name, "http1") == 0) {
            /* an idle keep-alive connection is not closed under a client
             * that may be sending on it: its next response says
             * Connection: close, and an idle one closes after a short time */
            if (!c->idle_timeout_ms || c->idle_timeout_ms > MP_CONN_DRAIN_IDLE_MS)
                c->idle_timeout_ms = MP_CONN_DRAIN_IDLE_MS;
            c->idle.repeat = (double)c->idle_timeout_ms / 1000.0;
            mp_conn_touch(c);
        } else {
            c->codec->drain(c);
        }
    }
}

void mp_conn_close_all(struct mp_worker *w)
{
    while (w->conns)
        conn_do_close(w->conns);
}
