/*
 * upstream.h: an HTTP request to an upstream host, over a pooled HTTP/1.1 or
 * HTTP/2 connection.
 *
 * The router asks the worker's pool for a request (mp_upstream_request_new)
 * and can send headers, body and trailers at once: what is sent before a
 * connection is ready waits in the request. Responses come back through
 * struct mp_upstream_callbacks. After mp_upstream_request_cancel, or after
 * on_complete / on_reset, no callback comes any more and the handle is gone.
 */
#ifndef MP_UPSTREAM_H
#define MP_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buffer.h"
#include "http_headers.h"
#include "worker.h"

struct mp_snapshot_cluster;
struct mp_host;
struct mp_upstream_request;

enum mp_upstream_reset_reason {
    MP_UPSTREAM_CONNECT_FAIL = 1,
    MP_UPSTREAM_CONNECT_TIMEOUT = 2,
    MP_UPSTREAM_RESET = 3, /* connection closed / RST_STREAM before the response ended */
    MP_UPSTREAM_PROTOCOL_ERROR = 4,
    MP_UPSTREAM_OVERFLOW = 5, /* circuit breaker */
    MP_UPSTREAM_REFUSED = 6,  /* REFUSED_STREAM: safe to retry */
};

struct mp_upstream_callbacks {
    /* Response headers (":status" first); h may be moved from. */
    void (*on_headers)(void *ctx, struct mp_headers *h, bool end_stream);
    /* Response body; data is moved from. */
    void (*on_data)(void *ctx, struct mp_buffer *data, bool end_stream);
    /* Response trailers; ends the response. */
    void (*on_trailers)(void *ctx, struct mp_headers *t);
    /* The request failed; nothing more will come and the handle is gone. */
    void (*on_reset)(void *ctx, enum mp_upstream_reset_reason reason);
    /* The upstream's send buffer for this request crossed its watermark. */
    void (*on_watermark)(void *ctx, bool above);
};

enum mp_upstream_proto {
    MP_UPSTREAM_PROTO_HTTP1 = 1,
    MP_UPSTREAM_PROTO_HTTP2 = 2,
};

/**
 * Starts a request to host h of cluster entry ce with protocol proto on
 * worker w's pool for that host. Returns the handle (owned by the pool until
 * the response ends, the request is reset, or it is cancelled), or NULL on
 * NOMEM / circuit-breaker overflow (*reason says which).
 */
struct mp_upstream_request *
mp_upstream_request_new(struct mp_worker *w, const struct mp_snapshot_cluster *ce,
                        const struct mp_host *h, enum mp_upstream_proto proto,
                        const struct mp_upstream_callbacks *cb, void *ctx,
                        enum mp_upstream_reset_reason *reason);

/** Sends request headers (pseudo-headers first). Call once. Returns 0 or a negative MP_ERR_*. */
int mp_upstream_send_headers(struct mp_upstream_request *r, struct mp_headers *h, bool end_stream);

/** Sends request body bytes, moved from data. */
int mp_upstream_send_data(struct mp_upstream_request *r, struct mp_buffer *data, bool end_stream);

/** Sends request trailers (ends the request). */
int mp_upstream_send_trailers(struct mp_upstream_request *r, struct mp_headers *t);

/** Stops (true) or resumes reading the response (downstream backpressure). */
void mp_upstream_read_disable(struct mp_upstream_request *r, bool disable);

/**
 * Abandons the request: no more callbacks; an HTTP/1 connection in the
 * middle of it is closed, an HTTP/2 stream is reset.
 */
void mp_upstream_request_cancel(struct mp_upstream_request *r);

/** "ip:port" of the host the request goes to (valid while r lives). */
const char *mp_upstream_request_host(const struct mp_upstream_request *r);

/** Frees every pool of the worker (shutdown). Requests still open are reset. */
void mp_upstream_pools_free(struct mp_worker *w);

/** Calls fn for each pool of w: for /clusters (cx_active per host). */
void mp_upstream_pools_foreach(struct mp_worker *w,
                               void (*fn)(void *arg, const char *cluster, const char *host,
                                          uint64_t cx_active, uint64_t rq_active),
                               void *arg);

#endif
