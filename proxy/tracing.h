/*
 * tracing.h: HTTP connection manager tracing, as Envoy does it.
 *
 * An HCM with `tracing` set gets a struct mp_tracing_config (translated from
 * HttpConnectionManager.Tracing plus its provider: envoy.tracers.zipkin or
 * envoy.tracers.opentelemetry). Per request the stream asks for a span
 * (mp_tracing_stream_start): the sampling decision follows Envoy's
 * (x-request-id carries the decision so every hop agrees; x-client-trace-id,
 * x-envoy-force-trace, random/overall sampling), the incoming context (B3
 * multi or single header, W3C traceparent) is extracted, and the span's
 * context is injected into the upstream request by the router
 * (mp_tracing_stream_inject). When the stream is logged the span is finished
 * (mp_tracing_stream_finish): tags are recorded and the span is encoded and
 * queued on the worker's buffer (tracing_export.h), which is flushed off the
 * request path.
 *
 * Types shared by the tracer's files live here; the provider encoders are in
 * tracing_zipkin.h / tracing_otel.h, context propagation in
 * tracing_context.h, the per-worker buffer in tracing_export.h.
 */
#ifndef MP_TRACING_H
#define MP_TRACING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "envoy/config/trace/v3/http_tracer.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

struct mp_headers;
struct mp_http_stream;

enum mp_tracing_provider {
    MP_TRACING_ZIPKIN = 1,
    MP_TRACING_OTEL = 2,
};

enum mp_tracing_tag_kind {
    MP_TRACING_TAG_LITERAL = 0,
    MP_TRACING_TAG_HEADER = 1,
    MP_TRACING_TAG_ENV = 2,
};

/** One custom_tags entry. */
struct mp_tracing_custom_tag {
    char *tag;
    enum mp_tracing_tag_kind kind;
    char *value;         /* literal value, or the header name (lower case) */
    char *default_value; /* header / environment default; NULL when unset */
    char *env_value;     /* environment: the variable's value at translation (as Envoy reads
                            it once), or NULL when unset */
};

/** The HCM's tracing, translated; immutable, shared by all workers. */
struct mp_tracing_config {
    enum mp_tracing_provider provider;
    /* sampling, in 1/10000ths (Envoy rounds Percent to a TEN_THOUSAND fraction) */
    uint32_t client_sampling;  /* default 10000 */
    uint32_t random_sampling;  /* default 10000 */
    uint32_t overall_sampling; /* default 10000 */
    bool verbose;
    uint32_t max_path_tag_length; /* default 256 */
    bool spawn_upstream_span;     /* default false */
    bool egress;                  /* span kind CLIENT (traffic_direction OUTBOUND), else SERVER */
    struct mp_tracing_custom_tag *custom_tags;
    size_t n_custom_tags;

    /* where spans go: a cluster (zipkin collector_cluster, or the
     * opentelemetry grpc_service's envoy_grpc.cluster_name) or a target
     * ("ip:port", google_grpc.target_uri) */
    char *collector_cluster;
    char *collector_endpoint; /* zipkin: "/api/v2/spans" */
    char *collector_hostname; /* zipkin: Host header; default the cluster name */
    bool trace_id_128bit;     /* zipkin */
    bool shared_span_context; /* zipkin: default true */
    char *service_name;       /* span's localEndpoint / resource service.name */
    uint64_t timeout_ms;      /* export timeout; default 5000 (otel grpc_service.timeout) */
};

/** A span's identity as it travels between hops. */
struct mp_trace_context {
    uint64_t trace_id_high; /* 0 for 64-bit trace ids */
    uint64_t trace_id;
    uint64_t span_id;
    uint64_t parent_id; /* valid when has_parent */
    bool has_parent;
    int sampled;          /* -1 not stated, 0 or 1 */
    bool debug;           /* x-b3-flags: 1 / b3 "d" */
    char tracestate[256]; /* W3C tracestate, passed through; "" when none */
};

enum mp_span_kind {
    MP_SPAN_SERVER = 0,
    MP_SPAN_CLIENT = 1,
};

/** A tag recorded on a span (key and value owned by the span). */
struct mp_span_tag {
    char *key;
    char *value;
};

/** A timed event on a span (verbose tracing): a Zipkin annotation, an OTLP span event. */
struct mp_span_log {
    int64_t wall_us;
    const char *event; /* a static string, e.g. "last_downstream_rx_byte_received" */
};

#define MP_SPAN_MAX_LOGS 4

/** A finished or running span. */
struct mp_span {
    const struct mp_tracing_config *cfg;
    struct mp_trace_context ctx; /* trace id, this span's id, parent */
    enum mp_span_kind kind;
    bool sampled;
    bool shared; /* zipkin shared span context: the span id came from upstream hop */
    char *name;  /* operation name, e.g. "example.com:8080" or "egress foo" */
    int64_t start_wall_us;
    int64_t start_mono_us;
    int64_t duration_us;
    struct mp_span_tag *tags;
    size_t n_tags;
    size_t cap_tags;
    char local_ip[64]; /* localEndpoint ipv4/ipv6; "" when unknown */
    char remote_ip[64];
    uint16_t remote_port;
    struct mp_span *child; /* spawn_upstream_span: the upstream CLIENT span, until finished */
    struct mp_span_log logs[MP_SPAN_MAX_LOGS];
    size_t n_logs;
    bool name_from_header;    /* ingress: x-envoy-decorator-operation named the span */
    bool propagate_operation; /* egress: send the route decorator's name upstream */
};

/** A growable byte buffer for span encoders; oom sticks once an append failed. */
struct mp_trace_buf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

/** Sampling decision reasons, as stored in the x-request-id (Envoy's TraceStatus). */
enum mp_trace_status {
    MP_TRACE_NO_TRACE = 0,
    MP_TRACE_SAMPLED = 1,
    MP_TRACE_CLIENT = 2,
    MP_TRACE_FORCED = 3,
};

/**
 * Translates HttpConnectionManager.Tracing. provider is pb->provider, or,
 * when that is unset, bootstrap_http (the bootstrap's tracing.http; may be
 * NULL). egress picks CLIENT spans (listener traffic_direction OUTBOUND).
 * Returns 0 and *out (free with mp_tracing_config_free), 0 and *out = NULL
 * when no provider is set anywhere (Envoy then traces nothing), or a negative
 * MP_ERR_* with *err naming the field ("provider.typed_config: ...").
 */
int mp_tracing_config_from_pb(
    const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing
        *pb,
    const Envoy__Config__Trace__V3__Tracing__Http *bootstrap_http, bool egress,
    struct mp_tracing_config **out, char **err);

/** Frees a config from mp_tracing_config_from_pb. NULL is a no-op. */
void mp_tracing_config_free(struct mp_tracing_config *cfg);

/**
 * Sets what spans report about this proxy (node.id, node.cluster,
 * node.locality.zone; copied). Call once on the main thread before workers
 * start; NULL leaves a field empty. Returns 0 or MP_ERR_NOMEM.
 */
int mp_tracing_set_local_node(const char *node_id, const char *node_cluster, const char *zone);

/**
 * Sets the bootstrap's tracing.http provider (deep-copied) used by HCMs whose
 * tracing has no provider. Main thread, before listeners are translated;
 * NULL clears it. Returns 0 or MP_ERR_NOMEM.
 */
int mp_tracing_set_bootstrap_provider(const Envoy__Config__Trace__V3__Tracing__Http *http);

/** The bootstrap provider set with mp_tracing_set_bootstrap_provider, or NULL. */
const Envoy__Config__Trace__V3__Tracing__Http *mp_tracing_bootstrap_provider(void);

/**
 * Envoy's sampling decision for a request: reads the decision already stored
 * in x-request-id (a UUID's version nibble: '9' sampled, 'a' forced, 'b'
 * client, '4' none), applies x-client-trace-id (client_sampling),
 * x-envoy-force-trace and random_sampling (request id mod 10000), then
 * overall_sampling, and writes a changed decision back into x-request-id.
 * A missing or non-UUID x-request-id means no trace (as Envoy).
 */
enum mp_trace_status mp_tracing_decide(const struct mp_tracing_config *cfg, struct mp_headers *req);

/**
 * Starts the stream's span if its HCM traces (s->hcm->tracing) and stores it
 * in s->span. Call after the HCM header rules (x-request-id exists). A span
 * is made for unsampled requests too, so that the context (sampled=0) still
 * propagates; it is never exported. No-op on NOMEM.
 */
void mp_tracing_stream_start(struct mp_http_stream *s);

/**
 * Injects the context the upstream must see into the upstream request
 * headers h (router, before sending): the span's own context, or with
 * spawn_upstream_span a child CLIENT span recorded beside it. No-op when the
 * stream has no span.
 */
void mp_tracing_stream_inject(struct mp_http_stream *s, struct mp_headers *h);

/**
 * Finishes the stream's span (tags from the response, flags, sizes) and hands
 * it to the worker's export buffer when sampled; frees it either way. Called
 * once when the stream is logged.
 */
void mp_tracing_stream_finish(struct mp_http_stream *s);

/**
 * Frees this thread's cache of http.<prefix>.tracing.* counter handles
 * (mp_tracing_thread_exit calls it).
 */
void mp_tracing_stats_thread_exit(void);

/**
 * The route's decorator (Route.decorator.operation) names the stream's span,
 * as in Envoy: unless an ingress request's x-envoy-decorator-operation header
 * already did; on egress with propagate, the router's inject then sends the
 * name upstream in x-envoy-decorator-operation. Call before
 * mp_tracing_stream_inject. No-op without a span; on NOMEM the name stays.
 */
void mp_tracing_stream_set_operation(struct mp_http_stream *s, const char *operation,
                                     bool propagate);

/** Frees a span and its tags. NULL is a no-op. */
void mp_span_free(struct mp_span *sp);

/**
 * Sets tag key to value[0..len) (copied; a later set of the same key
 * replaces it). Returns 0 or MP_ERR_NOMEM.
 */
int mp_span_set_tag(struct mp_span *sp, const char *key, const char *value, size_t len);

/** mp_span_set_tag with a NUL-terminated value. */
int mp_span_set_tag_cstr(struct mp_span *sp, const char *key, const char *value);

/** Returns the value of tag key, or NULL. */
const char *mp_span_tag(const struct mp_span *sp, const char *key);

/** Appends n bytes to b (on NOMEM sets b->oom and leaves b as it was). */
void mp_trace_buf_append(struct mp_trace_buf *b, const void *data, size_t n);

/** mp_trace_buf_append of a NUL-terminated string. */
void mp_trace_buf_puts(struct mp_trace_buf *b, const char *s);

/** Frees b's bytes; b is empty and reusable afterwards. */
void mp_trace_buf_free(struct mp_trace_buf *b);

/** The service name spans report (node.cluster, or "meshproxy"). Borrowed. */
const char *mp_tracing_local_service(void);

/** A random non-zero 64-bit id (per-thread generator). */
uint64_t mp_tracing_random_id(void);

#endif
