/*
 * http_stream.h: one HTTP request/response exchange on a downstream
 * connection, and the filter chain it runs.
 *
 * The downstream codec (http1_server.c, http2_server.c) creates a stream per
 * request and feeds it with mp_http_stream_decode_*; the stream runs the
 * HTTP connection manager's filters in order (the router last) and hands the
 * response back through the codec's mp_http_codec_ops. A stream is freed only
 * by its codec (mp_http_stream_free), at a point where no callback of it is
 * on the stack: codecs defer frees to the worker's prepare watcher.
 */
#ifndef MP_HTTP_STREAM_H
#define MP_HTTP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <sys/socket.h>

#include "buffer.h"
#include "http_filter.h"
#include "http_headers.h"

struct mp_http_stream;
struct mp_worker;
struct mp_snapshot;
struct mp_hcm_config;
struct mp_hcm_stats;
struct mp_tls_transport;
struct mp_span;

/** What a downstream codec does for its streams. */
struct mp_http_codec_ops {
    /* Sends response headers (":status" first). Returns 0 or a negative MP_ERR_*. */
    int (*encode_headers)(void *conn, struct mp_http_stream *s, struct mp_headers *h,
                          bool end_stream);
    /* Sends body bytes, moving them out of data (no copy). */
    int (*encode_data)(void *conn, struct mp_http_stream *s, struct mp_buffer *data,
                       bool end_stream);
    /* Sends trailers; ends the response. */
    int (*encode_trailers)(void *conn, struct mp_http_stream *s, struct mp_headers *t);
    /* Aborts the stream (RST_STREAM, or closes an HTTP/1 connection). */
    void (*reset)(void *conn, struct mp_http_stream *s);
    /* Stops (true) or resumes reading request body for this stream. */
    void (*read_disable)(void *conn, struct mp_http_stream *s, bool disable);
};

/* Response flags (Envoy's short names, for the access log). */
enum {
    MP_RF_NO_HEALTHY_UPSTREAM = 1u << 0,       /* UH */
    MP_RF_UPSTREAM_CONNECT_FAIL = 1u << 1,     /* UF */
    MP_RF_UPSTREAM_TIMEOUT = 1u << 2,          /* UT */
    MP_RF_NO_ROUTE = 1u << 3,                  /* NR */
    MP_RF_UPSTREAM_RESET = 1u << 4,            /* UR */
    MP_RF_DOWNSTREAM_RESET = 1u << 5,          /* DR */
    MP_RF_LOCAL_RESET = 1u << 6,               /* LR */
    MP_RF_NO_CLUSTER = 1u << 7,                /* NC */
    MP_RF_DOWNSTREAM_PROTOCOL_ERROR = 1u << 8, /* DPE */
    MP_RF_UPSTREAM_PROTOCOL_ERROR = 1u << 9,   /* UPE */
    MP_RF_STREAM_IDLE_TIMEOUT = 1u << 10,      /* SI */
    MP_RF_OVERFLOW = 1u << 11,                 /* UO */
    MP_RF_RATE_LIMITED = 1u << 12,             /* RL */
    MP_RF_UNAUTHORIZED = 1u << 13,             /* UAEX */
    MP_RF_FAULT_INJECTED = 1u << 14,           /* FI */
};

/** Called when the downstream's send buffer crosses its watermarks (router: pause upstream reads).
 */
typedef void (*mp_http_stream_watermark_fn)(void *arg, bool above);

struct mp_http_stream {
    struct mp_worker *worker;
    void *conn; /* the codec's connection: the downstream struct mp_conn (both server codecs) */
    const struct mp_http_codec_ops *codec;
    void *codec_data; /* the codec's per-stream data */
    const struct mp_hcm_config *hcm;
    struct mp_snapshot *snap; /* one reference, held for the stream's life */
    uint64_t id;
    int protocol; /* 1 = HTTP/1.1, 2 = HTTP/2 (10 = HTTP/1.0) */

    struct mp_headers req;
    struct mp_headers req_trailers;
    struct mp_headers resp;
    struct mp_headers resp_trailers;

    /* filter chain */
    uint32_t n_filters;
    struct mp_http_filter_ctx *filters;
    uint32_t req_stopped_at; /* index + 1 of the filter that stopped requests; 0 = running */
    uint32_t resp_stopped_at;
    uint8_t req_stop_stage; /* 0 headers, 1 body, 2 trailers */
    uint8_t resp_stop_stage;
    struct mp_buffer req_held; /* request body held while iteration is stopped */
    struct mp_buffer resp_held;
    bool req_held_end;
    bool req_held_trailers;
    bool resp_held_end;
    bool resp_held_trailers;

    bool req_headers_done;
    bool req_complete;      /* the downstream sent all of the request */
    bool resp_headers_sent; /* encode_headers was called */
    bool resp_complete;     /* the response was handed to the codec fully */
    bool local_reply;       /* the response is a local reply */
    bool reset;             /* the stream was reset (either side) */
    bool logged;
    bool in_chain; /* guard against re-entering the chain */

    /* for stats and the access log */
    int status;
    uint32_t response_flags;
    int64_t start_mono_us;
    int64_t start_wall_us;
    int64_t req_done_us;
    int64_t first_resp_us;
    uint64_t bytes_received;
    uint64_t bytes_sent;
    char upstream_host[64];
    const char *cluster_name; /* lives in the snapshot */
    const char *route_name;
    const char *downstream_remote; /* lives in the connection */
    const char *downstream_local;
    /* TLS: the client certificate's URI SAN and the SNI; NULL when none; they
     * live in the connection */
    const char *downstream_peer_uri_san;
    const char *requested_server_name;
    const struct mp_tls_transport *downstream_tls; /* the connection's TLS, or NULL */

    ev_timer idle_timer; /* stream_idle_timeout */
    mp_http_stream_watermark_fn watermark_cb;
    void *watermark_arg;
    bool downstream_above; /* downstream send buffer above high watermark */
    struct mp_span *span; /* tracing (proxy/tracing.h); NULL when the HCM does not trace */
};

struct mp_conn;

/**
 * The downstream connection the stream arrived on (addresses, TLS peer and
 * SNI), for filters such as RBAC. Borrowed; it outlives the stream.
 */
static inline struct mp_conn *mp_http_stream_downstream(const struct mp_http_stream *s)
{
    return (struct mp_conn *)s->conn;
}

/**
 * Makes a stream for a new request on conn. hcm and snap are borrowed for the
 * stream's life (snap gets a new reference). Returns NULL on NOMEM.
 */
struct mp_http_stream *mp_http_stream_new(struct mp_worker *w, void *conn,
                                          const struct mp_http_codec_ops *codec,
                                          const struct mp_hcm_config *hcm, struct mp_snapshot *snap,
                                          int protocol);

/**
 * Frees the stream: logs it (access log, stats) if not done yet, calls every
 * filter's destroy, drops the snapshot reference. Only the codec calls it,
 * never from inside a stream callback.
 */
void mp_http_stream_free(struct mp_http_stream *s);

/**
 * The codec has parsed request headers into s->req (with pseudo-headers
 * ":method", ":path", ":scheme", ":authority"). Applies the HCM header
 * rules (x-forwarded-for, x-request-id, x-forwarded-proto, hop-by-hop
 * removal) and runs the request filters.
 */
void mp_http_stream_decode_headers(struct mp_http_stream *s, bool end_stream);

/** Request body bytes arrived; they are moved out of data. */
void mp_http_stream_decode_data(struct mp_http_stream *s, struct mp_buffer *data, bool end_stream);

/** Request trailers arrived (already in s->req_trailers); the request is complete. */
void mp_http_stream_decode_trailers(struct mp_http_stream *s);

/**
 * The downstream went away or reset the stream: filters and the router are
 * told (upstream request reset); the codec frees the stream afterwards.
 */
void mp_http_stream_on_downstream_reset(struct mp_http_stream *s);

/** The codec's send buffer for this stream crossed its high (true) / low (false) watermark. */
void mp_http_stream_on_downstream_watermark(struct mp_http_stream *s, bool above);

/**
 * Response path, called by the router (filter index `from`; pass
 * s->n_filters - 1 for the router): runs the response filters before `from`
 * in reverse order, then the codec. headers is moved into s->resp.
 */
void mp_http_stream_encode_headers(struct mp_http_stream *s, uint32_t from,
                                   struct mp_headers *headers, bool end_stream);

/** Response body, through the response filters before `from`, then the codec. */
void mp_http_stream_encode_data(struct mp_http_stream *s, uint32_t from, struct mp_buffer *data,
                                bool end_stream);

/** Response trailers (moved into s->resp_trailers). */
void mp_http_stream_encode_trailers(struct mp_http_stream *s, uint32_t from,
                                    struct mp_headers *trailers);

/**
 * Sends a locally generated response (status, text body, optional extra
 * headers) straight to the codec, or resets the stream when a response has
 * already started. Records details in the response flags.
 */
void mp_http_stream_send_local_reply(struct mp_http_stream *s, int status, const char *body,
                                     uint32_t response_flag);

/** Resets the stream from inside (router: upstream reset after the response started). */
void mp_http_stream_reset(struct mp_http_stream *s, uint32_t response_flag);

/** Asks the codec to stop/resume reading this stream's request body (backpressure). */
void mp_http_stream_read_disable(struct mp_http_stream *s, bool disable);

/** Returns the response flags as Envoy's short string ("UF,URX" or "-") into buf. */
const char *mp_http_response_flags_str(uint32_t flags, char *buf, size_t cap);

/**
 * Parses "1.2.3.4:80" or "[::1]:80" into ss/len. Returns 0, or MP_ERR_INVAL
 * when text is not an IP literal with a port.
 */
int mp_parse_ip_port(const char *text, struct sockaddr_storage *ss, socklen_t *len);

/** Microseconds on CLOCK_MONOTONIC. */
int64_t mp_now_us(void);

/** Microseconds on CLOCK_REALTIME. */
int64_t mp_wall_us(void);

/** Writes a random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") into out[37]. */
void mp_uuid4(char out[37]);

#endif
