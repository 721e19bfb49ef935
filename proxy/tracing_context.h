/*
 * tracing_context.h: trace context propagation in HTTP headers.
 *
 * B3 (Zipkin): x-b3-traceid / x-b3-spanid / x-b3-parentspanid /
 * x-b3-sampled / x-b3-flags, or the single "b3" header
 * ({traceid}-{spanid}[-{sampled}[-{parentspanid}]], or just the sampling
 * state). W3C trace context (OpenTelemetry): traceparent
 * (00-{32 hex}-{16 hex}-{2 hex flags}) and tracestate.
 */
#ifndef MP_TRACING_CONTEXT_H
#define MP_TRACING_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracing.h"

/**
 * Reads a B3 context from h (multi headers first, then "b3"). Returns 1 with
 * *out filled (span_id is the caller's span; sampled may be -1), 0 when h
 * carries no trace id (out->sampled may still be set by a lone sampling
 * header, e.g. "b3: 0"), or MP_ERR_INVAL when the headers are malformed
 * (Envoy then starts a new trace).
 */
int mp_trace_context_extract_b3(const struct mp_headers *h, struct mp_trace_context *out);

/**
 * Reads a W3C traceparent (and tracestate) from h. Returns 1 with *out
 * filled, 0 when absent, MP_ERR_INVAL when malformed (version ff, all-zero
 * ids, bad hex or length).
 */
int mp_trace_context_extract_w3c(const struct mp_headers *h, struct mp_trace_context *out);

/**
 * Replaces the B3 multi headers in h with ctx (x-b3-traceid 16 or 32 hex,
 * x-b3-spanid, x-b3-parentspanid when ctx has a parent, x-b3-sampled 1/0,
 * x-b3-flags 1 when debug) and removes a "b3" single header. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_trace_context_inject_b3(const struct mp_trace_context *ctx, struct mp_headers *h);

/**
 * Replaces traceparent (and tracestate when ctx carries one) in h with ctx.
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_trace_context_inject_w3c(const struct mp_trace_context *ctx, struct mp_headers *h);

/** Writes v as 16 lower-case hex digits and a NUL into out[17]. */
void mp_trace_hex64(uint64_t v, char out[17]);

/**
 * Parses exactly len (1..16) hex digits into *v. Returns 0 or MP_ERR_INVAL.
 */
int mp_trace_parse_hex64(const char *s, size_t len, uint64_t *v);

/**
 * Parses a trace id of 16 or 32 hex digits (shorter ones are accepted as 64
 * bit, as B3 allows). Returns 0 or MP_ERR_INVAL.
 */
int mp_trace_parse_trace_id(const char *s, size_t len, uint64_t *high, uint64_t *low);

#endif
