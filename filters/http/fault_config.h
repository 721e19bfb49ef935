/*
 * fault_config.h: envoy.extensions.filters.http.fault.v3.HTTPFault,
 * translated, and the decisions the fault filter takes from it (which
 * requests qualify, whether a delay or abort is injected, for how long or
 * with which status). Pure: no I/O, no clock, randomness passed in, so the
 * percentage logic is unit-tested exactly.
 *
 * Envoy's semantics:
 *   - percentage is a FractionalPercent; unset means 0 (never);
 *   - a fixed delay/abort uses the configured percentage; a header-controlled
 *     one (header_delay / header_abort) takes its value from
 *     x-envoy-fault-delay-request (milliseconds) / x-envoy-fault-abort-request
 *     (HTTP status in [200, 600)) / x-envoy-fault-abort-grpc-request, and its
 *     percentage from x-envoy-fault-{delay,abort}-request-percentage, capped
 *     at the configured numerator (the configured denominator is kept);
 *   - headers (all must match) and downstream_nodes
 *     (x-envoy-downstream-service-node) restrict which requests qualify;
 *   - max_active_faults caps faults in progress (unset: no cap).
 * Runtime overrides (*_runtime keys) are not read: meshproxy has no runtime
 * layer, so the configured values always apply.
 */
#ifndef MP_FILTER_FAULT_CONFIG_H
#define MP_FILTER_FAULT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"

struct mp_route_config;
struct mp_route_request;
struct mp_header_match;

/** A FractionalPercent: hit when random % denominator < numerator. */
struct mp_fault_percent {
    uint32_t numerator;
    uint32_t denominator; /* 100, 10000 or 1000000 */
};

enum mp_fault_delay_kind {
    MP_FAULT_DELAY_NONE = 0,
    MP_FAULT_DELAY_FIXED,
    MP_FAULT_DELAY_HEADER,
};

enum mp_fault_abort_kind {
    MP_FAULT_ABORT_NONE = 0,
    MP_FAULT_ABORT_HTTP,
    MP_FAULT_ABORT_GRPC,
    MP_FAULT_ABORT_HEADER,
};

struct mp_fault_config {
    enum mp_fault_delay_kind delay;
    uint64_t delay_ms; /* FIXED */
    struct mp_fault_percent delay_percent;
    enum mp_fault_abort_kind abort;
    uint32_t http_status; /* HTTP */
    uint32_t grpc_status; /* GRPC */
    struct mp_fault_percent abort_percent;
    const char *upstream_cluster; /* NULL: any */
    const struct mp_header_match *headers;
    size_t n_headers;
    const char *const *downstream_nodes;
    size_t n_downstream_nodes;
    bool has_max_active;
    uint64_t max_active_faults;
    struct mp_route_config *arena; /* owns the matchers and strings */
};

/** What to inject into one request. */
struct mp_fault_abort {
    uint32_t http_status; /* 0 when only a gRPC status applies */
    bool has_grpc;
    uint32_t grpc_status;
};

/**
 * Translates an HTTPFault. Returns 0 and *out (free with
 * mp_fault_config_free), or MP_ERR_NOMEM / MP_ERR_INVAL with *err naming the
 * field ("abort.http_status: 700 is not in [200, 600)"). Rejected as not
 * supported: response_rate_limit, an abort or delay without its specifier.
 */
int mp_fault_config_from_proto(const Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *pb,
                               struct mp_fault_config **out, char **err);

/** Same from the serialized bytes (NULL/0: an empty HTTPFault). MP_ERR_PARSE when undecodable. */
int mp_fault_config_from_bytes(const uint8_t *data, size_t len, struct mp_fault_config **out,
                               char **err);

/** Frees a config; NULL is a no-op. */
void mp_fault_config_free(struct mp_fault_config *c);

/** True when random % denominator < numerator (a denominator of 0 never hits). */
bool mp_fault_percent_hit(struct mp_fault_percent p, uint64_t random);

/**
 * Envoy's header percentage: header (may be NULL) parsed as an unsigned
 * numerator, capped at cfg's numerator, over cfg's denominator; cfg itself
 * when the header is absent or not a number.
 */
struct mp_fault_percent mp_fault_header_percent(struct mp_fault_percent cfg, const char *header);

/**
 * Whether the request qualifies for faults at all: every header matcher
 * matches and, when downstream_nodes is set, x-envoy-downstream-service-node
 * is one of them. (upstream_cluster is checked by the filter, which knows the
 * route.)
 */
bool mp_fault_request_qualifies(const struct mp_fault_config *c, const struct mp_route_request *rq);

/**
 * Decides the delay for rq with random. Returns true and *ms (> 0) when a
 * delay is injected.
 */
bool mp_fault_decide_delay(const struct mp_fault_config *c, const struct mp_route_request *rq,
                           uint64_t random, uint64_t *ms);

/**
 * Decides the abort for rq with random. Returns true and fills *a when the
 * request is aborted.
 */
bool mp_fault_decide_abort(const struct mp_fault_config *c, const struct mp_route_request *rq,
                           uint64_t random, struct mp_fault_abort *a);

/**
 * Returns the value of the first header called name (lowercase) in rq, or
 * NULL. The value is NUL-terminated when rq's views point into mp_headers.
 */
const char *mp_fault_header(const struct mp_route_request *rq, const char *name);

#endif
