/*
 * conn.h: a downstream connection on a worker: the socket, its read and
 * write buffers, and the codec (HTTP/1, HTTP/2, TCP proxy) that runs on it.
 *
 * Writes are batched: codecs append to `out` and call mp_conn_schedule_flush;
 * the worker writes every dirty connection once per loop iteration (prepare
 * phase), so one writev carries everything produced by the events of that
 * iteration. A connection is freed through the worker's deferred list, never
 * from inside one of its own callbacks.
 */
#ifndef MP_CONN_H
#define MP_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buffer.h"
#include "worker.h"

struct mp_conn;
struct mp_filter_chain;
struct mp_listener_config;
struct mp_snapshot;
struct mp_tls_transport;

/** What a connection's codec does. */
struct mp_conn_codec_ops {
    const char *name;
    /* New bytes are in c->in. Returns 0, or a negative MP_ERR_* to close. */
    int (*on_data)(struct mp_conn *c);
    /* c->out fell below the low watermark after a write. */
    void (*on_writable)(struct mp_conn *c);
    /* The peer closed its side (read returned 0). */
    void (*on_eof)(struct mp_conn *c);
    /* Drain: GOAWAY / close when idle. */
    void (*drain)(struct mp_conn *c);
    /* Frees the codec state; streams still open are reset. */
    void (*destroy)(struct mp_conn *c);
};

struct mp_conn {
    struct mp_conn *next, *prev; /* the worker's list */
    struct mp_worker *w;
    int fd;
    ev_io rio, wio;
    ev_timer idle;
    struct mp_buffer in, out;
    struct mp_snapshot *snap; /* reference held for the connection's life */
    const struct mp_listener_config *listener;
    const struct mp_filter_chain *chain;
    const struct mp_conn_codec_ops *codec;
    void *codec_data;
    char remote[64]; /* "ip:port" */
    char local[64];
    uint16_t local_port;
    int64_t start_us;
    uint64_t idle_timeout_ms;
    size_t high_watermark; /* out buffer limit (per_connection_buffer_limit) */
    struct mp_deferred flush_d;
    struct mp_deferred free_d;
    bool read_disabled;
    bool closing;    /* close once out is written */
    bool closed;     /* fd closed, waiting for the deferred free */
    bool above_high; /* out is above the high watermark */
    bool eof;
    bool draining;
    bool inspecting;                  /* listener filters are still reading the first bytes */
    struct mp_tls_transport *tls;     /* TLS on this connection, or NULL */
    struct mp_buffer raw_in, raw_out; /* ciphertext, when tls */
    bool tls_shutdown;
    bool tls_filters_done; /* network filters' on_tls_established ran */
    struct sockaddr_storage dst; /* local address, or SO_ORIGINAL_DST with original_dst */
    struct sockaddr_storage src;
};

/**
 * Takes an accepted socket (non-blocking) and starts serving it with the
 * chain's codec. On failure the fd is closed. Returns 0 or a negative MP_ERR_*.
 */
int mp_conn_start(struct mp_worker *w, int fd, const struct mp_listener_config *l,
                  struct mp_snapshot *snap);

/** Queues a write of c->out for this loop iteration. */
void mp_conn_schedule_flush(struct mp_conn *c);

/** Closes the connection after what is in c->out has been written (or at once when now). */
void mp_conn_close(struct mp_conn *c, bool now);

/** Stops (true) or resumes reading from the socket. */
void mp_conn_read_disable(struct mp_conn *c, bool disable);

/** Restarts the idle timer (activity on the connection). */
void mp_conn_touch(struct mp_conn *c);

/** Asks every connection of w to drain (worker thread). */
void mp_conn_drain_all(struct mp_worker *w);

/* How long an HTTP/1 connection of a replaced listener may stay idle (Envoy's
 * HCM drain_timeout default). */
#define MP_CONN_DRAIN_IDLE_MS 5000

/**
 * Drains (GOAWAY, or Connection: close on the next response) the
 * HTTP connections accepted by a listener config that snap no longer has: a
 * listener updated or removed over LDS. TCP-proxied connections run to their
 * end. Worker thread, after the snapshot swap.
 */
void mp_conn_drain_stale(struct mp_worker *w, const struct mp_snapshot *snap);

/** Closes every connection of w at once (worker shutdown). */
void mp_conn_close_all(struct mp_worker *w);

/** Codec tables (http1_server.c, http2_server.c, tcp_proxy.c). */
extern const struct mp_conn_codec_ops mp_http1_server_codec;
extern const struct mp_conn_codec_ops mp_http2_server_codec;

extern const struct mp_conn_codec_ops mp_tcp_proxy_codec;

/**
 * Sets up the tcp_proxy filter on c: picks a host of the chain's cluster and
 * connects to it; bytes then flow both ways by reference. Returns 0 or a
 * negative MP_ERR_* (the caller closes c).
 */
int mp_tcp_proxy_init(struct mp_conn *c);

/** Sets up HTTP/1 on c (codec_data). Returns 0 or MP_ERR_NOMEM. */
int mp_http1_server_init(struct mp_conn *c);

/** Sets up HTTP/2 on c; bytes already in c->in are fed to it. Returns 0 or negative MP_ERR_*. */
int mp_http2_server_init(struct mp_conn *c);

/** Formats a socket address as "ip:port" ("[v6]:port") into buf; returns the port. */
uint16_t mp_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap);

#endif
