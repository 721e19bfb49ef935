/*
 * tracing_zipkin.h: spans as Zipkin API v2 JSON (collector_endpoint_version
 * HTTP_JSON), the body Envoy's Zipkin tracer POSTs to /api/v2/spans.
 */
#ifndef MP_TRACING_ZIPKIN_H
#define MP_TRACING_ZIPKIN_H

#include "tracing.h"

/**
 * Appends sp as one Zipkin v2 span object to b: traceId (16 or 32 hex), id,
 * parentId, kind (SERVER / CLIENT, Envoy's sr/ss and cs/cr annotations in
 * v2 form), name, timestamp and duration (µs), localEndpoint (serviceName,
 * ipv4/ipv6), remoteEndpoint, shared (a server span sharing its client's
 * id), debug, annotations (verbose span logs), tags. Failure shows as b->oom.
 */
void mp_zipkin_encode_span(const struct mp_span *sp, const char *service, struct mp_trace_buf *b);

/** Appends s as a JSON string (quoted, escaped) to b. */
void mp_zipkin_json_string(struct mp_trace_buf *b, const char *s);

#endif
