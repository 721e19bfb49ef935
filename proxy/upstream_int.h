/*
 * upstream_int.h: internals shared by upstream.c (pools, requests, sockets)
 * and the protocol files pool_http1.c and pool_http2.c. Not for other modules.
 */
#ifndef MP_UPSTREAM_INT_H
#define MP_UPSTREAM_INT_H

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buffer.h"
#include "http1_parse.h"
#include "http_headers.h"
#include "upstream.h"
#include "worker.h"

struct mp_cluster_stats;
struct mp_host_stats;
struct mp_tls_context;
struct mp_tls_transport;
struct mp_tls_session_cache;
struct upconn;
struct mp_pool;

struct upconn_ops {
    int (*init)(struct upconn *u);    /* connected: set up the codec */
    int (*on_data)(struct upconn *u); /* bytes in u->in */
    void (*on_eof)(struct upconn *u); /* peer closed */
    void (*fail_all)(struct upconn *u, enum mp_upstream_reset_reason why); /* conn is going */
    bool (*has_capacity)(const struct upconn *u);
    int (*attach)(struct upconn *u, struct mp_upstream_request *r);
    void (*request_updated)(struct upconn *u, struct mp_upstream_request *r);
    void (*cancel)(struct upconn *u, struct mp_upstream_request *r);
    void (*read_disable)(struct upconn *u, struct mp_upstream_request *r, bool disable);
    void (*on_writable)(struct upconn *u);
    void (*destroy)(struct upconn *u);
};

struct mp_pool {
    struct mp_pool *next;
    struct mp_worker *w;
    char *cluster_name;
    char host_str[64];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    enum mp_upstream_proto proto;
    const struct upconn_ops *ops;
    uint64_t connect_timeout_ms;
    struct sockaddr_storage source_addr; /* the cluster's upstream_bind_config */
    socklen_t source_addr_len;           /* 0: no bind */
    uint64_t idle_timeout_ms;
    uint32_t max_requests_per_conn;
    uint32_t max_connections;
    uint32_t max_pending;
    uint32_t h2_max_streams;
    uint32_t h2_stream_window;
    uint32_t h2_conn_window;
    size_t buffer_limit;
    struct mp_cluster_stats *stats;
    struct mp_host_stats *hstats; /* may be NULL */
    struct mp_tls_context *tls;   /* one reference; NULL = plaintext */
    /* TLS sessions to resume with this host (max_session_keys), or NULL */
    struct mp_tls_session_cache *tls_sessions;
    struct upconn *conns;
    uint32_t n_conns;
    uint32_t n_connecting;
    struct mp_upstream_request *pending_head, *pending_tail;
    uint32_t n_pending;
    uint64_t rq_active;
    struct mp_deferred dispatch_d;
};

struct upconn {
    struct upconn *next, *prev;
    struct mp_pool *pool;
    int fd;
    ev_io rio, wio;
    ev_timer timer; /* connect timeout, then idle timeout */
    struct mp_buffer in, out;
    int64_t connect_start_us;
    bool connected;
    bool closed;
    bool eof;
    bool read_disabled;
    bool above_high;
    bool connect_failed;              /* connect() failed at once; the timer reports it */
    struct mp_tls_transport *tls;     /* or NULL */
    struct mp_buffer raw_in, raw_out; /* ciphertext, when tls */
    uint32_t n_requests;              /* requests started on this connection */
    struct mp_deferred flush_d;
    struct mp_deferred free_d;
    /* HTTP/1 */
    struct mp_http1_parser parser;
    struct mp_upstream_request *active;
    bool keep_alive;
    /* HTTP/2 */
    nghttp2_session *session;
    struct mp_slice *cur_slice;
    struct mp_upstream_request *hdr_req; /* HTTP/2: request whose header block is being received */
    int32_t hdr_id;
    uint32_t n_streams;
    struct mp_upstream_request *reqs; /* requests attached to this session (next/prev) */
    bool goaway;
    struct mp_deferred send_d;
};

struct mp_upstream_request {
    struct mp_upstream_request *next, *prev; /* pending queue */
    struct mp_pool *pool;
    struct upconn *conn;
    const struct mp_upstream_callbacks *cb;
    void *ctx;
    struct mp_headers headers;
    struct mp_headers trailers;
    struct mp_buffer body;
    struct mp_headers resp; /* response headers/trailers being received (HTTP/2) */
    bool headers_set;
    bool headers_sent;
    bool end_set; /* the request's end is known (end_stream given) */
    bool has_trailers;
    bool request_sent; /* all of the request is on the wire */
    bool head_method;
    bool chunked; /* HTTP/1 request body chunked */
    bool resp_headers_done;
    bool done;    /* finished: no more callbacks */
    bool pending; /* in the pool's pending queue */
    bool failed;  /* ended by a reset */
    bool read_disabled;
    bool above;
    bool data_deferred;
    bool stream_open; /* HTTP/2: nghttp2 still knows the stream; freed at its close */
    bool linked;      /* HTTP/2: in conn->reqs */
    int32_t stream_id;
    size_t unconsumed;
    struct mp_deferred free_d;
};

extern const struct upconn_ops mp_pool_http1_ops;
extern const struct upconn_ops mp_pool_http2_ops;

/* upstream.c helpers for the protocol files */
void mp_upconn_schedule_flush(struct upconn *u);
void mp_upconn_close(struct upconn *u, enum mp_upstream_reset_reason why);
void mp_upconn_read_disable(struct upconn *u, bool disable);
/** The connection can take requests again (response done / settings): run the pool queue. */
void mp_pool_schedule_dispatch(struct mp_pool *p);
/** Starts u's idle timer (no requests on it). */
void mp_upconn_idle_start(struct upconn *u);
/** Stops u's idle timer. */
void mp_upconn_idle_stop(struct upconn *u);

/* Request completion helpers: run the callback unless cancelled, then free. */
void mp_upreq_deliver_headers(struct mp_upstream_request *r, struct mp_headers *h, bool end);
void mp_upreq_deliver_data(struct mp_upstream_request *r, struct mp_buffer *b, bool end);
void mp_upreq_deliver_trailers(struct mp_upstream_request *r, struct mp_headers *t);
void mp_upreq_fail(struct mp_upstream_request *r, enum mp_upstream_reset_reason why);
/**
 * Marks r finished (no more callbacks) and queues its free, unless an HTTP/2
 * stream still refers to it: then the stream's close frees it.
 */
void mp_upreq_finish(struct mp_upstream_request *r);

#endif
