/*
 * tracing_export.h: finished spans leave the request path here.
 *
 * Each worker thread keeps its own buffers (one per collector: provider,
 * cluster, endpoint), so queuing a span takes no lock. A buffer is flushed
 * when it holds min_flush_spans (5) spans or when the worker's flush timer
 * (5 s) fires, as Envoy's defaults; and on worker exit. Zipkin: one HTTP/1.1
 * POST of a JSON v2 array to a host of collector_cluster, on a non-blocking
 * socket driven by the worker's loop. OpenTelemetry: one OTLP
 * ExportTraceServiceRequest per flush through the grpc thread
 * (filters/http/grpc_call.h). Spans that cannot be sent (no host, too many
 * exports in flight, no memory) are dropped and counted.
 */
#ifndef MP_TRACING_EXPORT_H
#define MP_TRACING_EXPORT_H

#include <stdint.h>

#include "tracing.h"

/** Envoy's defaults (runtime tracing.zipkin.min_flush_spans / flush_interval_ms). */
#define MP_TRACING_MIN_FLUSH_SPANS   5
#define MP_TRACING_FLUSH_INTERVAL_MS 5000

/**
 * Queues a finished span of stream s on this worker's buffer for its
 * collector; takes ownership of sp (encoded, then freed). Worker thread (a
 * stream without a worker only frees sp).
 */
void mp_tracing_export_span(struct mp_http_stream *s, struct mp_span *sp);

/**
 * Worker exit: sends what this thread still buffers (Zipkin: blocking,
 * bounded by one second per collector; OpenTelemetry: handed to the grpc
 * thread, its answer ignored: best effort, since the server stops the grpc
 * thread right after the workers, often before a fresh channel connects),
 * ends exports in flight and frees the thread's
 * tracing state. Call from the worker thread while its loop still exists.
 */
void mp_tracing_thread_exit(void);

/** Spans this thread dropped (no collector host, overload, NOMEM); for tests and stats. */
uint64_t mp_tracing_thread_dropped(void);

/**
 * Builds the Zipkin HTTP request for a JSON array body: "POST {endpoint}
 * HTTP/1.1" with Host, Content-Type application/json, Content-Length and
 * Connection: close. Returns 0 with *out (malloc'd, caller frees) and *len,
 * or MP_ERR_NOMEM.
 */
int mp_tracing_zipkin_request(const char *endpoint, const char *host, const char *body,
                              size_t body_len, char **out, size_t *len);

#endif
