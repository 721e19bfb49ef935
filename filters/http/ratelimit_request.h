/*
 * ratelimit_request.h: the messages of envoy.service.ratelimit.v3's
 * RateLimitService: descriptors built from a route's rate_limits actions,
 * the RateLimitRequest, and reading the RateLimitResponse. Pure functions,
 * tested on their own.
 */
#ifndef MP_FILTER_RATELIMIT_REQUEST_H
#define MP_FILTER_RATELIMIT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http_headers.h"
#include "proxy/route_table.h"

/** One descriptor entry (key, value). */
struct mp_rl_entry {
    char *key;
    char *value;
};

/** One RateLimitDescriptor: its entries, in action order. */
struct mp_rl_descriptor {
    struct mp_rl_entry *entries;
    size_t n;
};

/** The descriptors of one request. Owns everything. */
struct mp_rl_descriptors {
    struct mp_rl_descriptor *v;
    size_t n;
};

/** What the actions may read about the request. */
struct mp_rl_request_info {
    const struct mp_headers *headers; /* request headers, pseudo-headers included */
    const char *remote_address;       /* downstream ip (no port); may be NULL */
    const char *destination_cluster;  /* the routed cluster; may be NULL */
    const char *source_cluster;       /* the local cluster name; may be NULL */
};

/**
 * Appends to out one descriptor per rate limit of limits[0..n) whose stage
 * is `stage` and whose every action yields an entry (Envoy: an action that
 * cannot produce its entry, e.g. a missing header without skip_if_absent,
 * drops the whole descriptor). Actions supported: source_cluster,
 * destination_cluster, request_headers, remote_address,
 * masked_remote_address, generic_key, header_value_match,
 * query_parameter_value_match. Returns 0 or MP_ERR_NOMEM.
 */
int mp_rl_descriptors_build(const struct mp_rate_limit *limits, size_t n, uint32_t stage,
                            const struct mp_rl_request_info *info, struct mp_rl_descriptors *out);

/** Frees what d holds; d is empty afterwards. */
void mp_rl_descriptors_clear(struct mp_rl_descriptors *d);

/**
 * Serializes a RateLimitRequest {domain, descriptors, hits_addend 0} into
 * *out (malloc'd, freed by the caller). Returns 0 or MP_ERR_NOMEM.
 */
int mp_rl_request_pack(const char *domain, const struct mp_rl_descriptors *d, uint8_t **out,
                       size_t *len);

enum mp_rl_code {
    MP_RL_UNKNOWN = 0,
    MP_RL_OK = 1,
    MP_RL_OVER_LIMIT = 2,
};

/** A RateLimitResponse, read. Owns its header lists. */
struct mp_rl_result {
    enum mp_rl_code code;
    struct mp_headers response_headers; /* response_headers_to_add */
    struct mp_headers request_headers;  /* request_headers_to_add */
};

/** Makes r empty. */
void mp_rl_result_init(struct mp_rl_result *r);

/** Frees what r holds. */
void mp_rl_result_clear(struct mp_rl_result *r);

/**
 * Reads a serialized RateLimitResponse into r. Returns 0, MP_ERR_PARSE when
 * it does not decode, or MP_ERR_NOMEM.
 */
int mp_rl_response_parse(const uint8_t *data, size_t len, struct mp_rl_result *r);

#endif
