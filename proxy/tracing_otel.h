/*
 * tracing_otel.h: spans as OTLP protobuf (opentelemetry.proto), hand-encoded:
 * the OpenTelemetry collector protos are not among the compiled Envoy API
 * protos, and the few messages needed are simple.
 */
#ifndef MP_TRACING_OTEL_H
#define MP_TRACING_OTEL_H

#include "tracing.h"

/** The gRPC method spans are exported with. */
#define MP_OTLP_EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

/**
 * Appends sp to b as one serialized opentelemetry.proto.trace.v1.Span
 * (trace_id, span_id, trace_state, parent_span_id, name, kind SERVER/CLIENT,
 * start/end time, tags as string attributes, verbose span logs as events,
 * status ERROR when the span has
 * error=true), framed as field 2 of ScopeSpans (tag and length), so that a
 * flush concatenates spans. Failure shows as b->oom.
 */
void mp_otel_encode_span(const struct mp_span *sp, struct mp_trace_buf *b);

/**
 * Wraps spans (the concatenation of mp_otel_encode_span outputs) into an
 * ExportTraceServiceRequest with one ResourceSpans (resource attribute
 * service.name = service) and one ScopeSpans (scope "meshproxy"). Returns 0
 * with *out filled (caller frees with mp_trace_buf_free) or MP_ERR_NOMEM.
 */
int mp_otel_export_request(const struct mp_trace_buf *spans, const char *service,
                           struct mp_trace_buf *out);

#endif
