/*
 * http_filter.h: the HTTP filter interface.
 *
 * A filter is a `static const struct mp_http_filter_ops` of callbacks,
 * registered by its Envoy extension name in filters/filter_registry.c (one
 * line a filter). Its config is parsed once from the typed_config Any bytes
 * into an immutable struct shared by all workers; its per-stream state is
 * `state_size` zeroed bytes owned by the stream.
 *
 * Request callbacks run in configuration order, response callbacks in reverse
 * order. A callback returns:
 *   MP_FILTER_CONTINUE  the next filter runs;
 *   MP_FILTER_STOP      iteration stops here; the filter later calls
 *                       mp_http_filter_continue_request/_response once (body
 *                       data arriving meanwhile is buffered by the stream);
 *   MP_FILTER_LOCAL_REPLY the filter called mp_http_filter_local_reply; the
 *                       stream stops running request filters.
 */
#ifndef MP_HTTP_FILTER_H
#define MP_HTTP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_headers.h"

struct mp_buffer;
struct mp_http_stream;

enum mp_filter_status {
    MP_FILTER_CONTINUE = 0,
    MP_FILTER_STOP = 1,
    MP_FILTER_LOCAL_REPLY = 2,
};

/** What a filter callback receives: its stream, its config, its state. */
struct mp_http_filter_ctx {
    struct mp_http_stream *stream;
    const void *config; /* from ops->parse; immutable, shared across workers */
    void *state;        /* ops->state_size zeroed bytes, per stream; NULL if 0 */
    uint32_t index;     /* position in the chain (internal) */
};

struct mp_http_filter_ops {
    const char *name;        /* "envoy.filters.http.router" */
    const char *config_type; /* "envoy.extensions.filters.http.router.v3.Router" */
    /*
     * Turns typed_config's Any value bytes into *config (owned by the caller,
     * freed with config_free). NULL data with len 0 means "no typed_config".
     * Returns 0, or a negative MP_ERR_* with *err set to a message (the
     * caller prefixes the field path).
     */
    int (*parse)(const uint8_t *data, size_t len, void **config, char **err);
    void (*config_free)(void *config);
    size_t state_size;

    int (*on_request_headers)(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                              bool end_stream);
    int (*on_request_body)(struct mp_http_filter_ctx *f, struct mp_buffer *data, bool end_stream);
    int (*on_request_trailers)(struct mp_http_filter_ctx *f, struct mp_headers *trailers);
    int (*on_response_headers)(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                               bool end_stream);
    int (*on_response_body)(struct mp_http_filter_ctx *f, struct mp_buffer *data, bool end_stream);
    int (*on_response_trailers)(struct mp_http_filter_ctx *f, struct mp_headers *trailers);
    /* Called once when the stream ends (complete or reset); frees what state holds. */
    void (*destroy)(struct mp_http_filter_ctx *f);
};

/** One configured filter of an HTTP connection manager's chain. */
struct mp_http_filter_config {
    const struct mp_http_filter_ops *ops;
    void *config; /* owned; freed with ops->config_free */
    char *name;   /* the name the user gave (http_filters[i].name) */
};

/**
 * Finds a registered filter by extension name or by typed_config type URL /
 * full message name. Returns a static table entry, or NULL.
 */
const struct mp_http_filter_ops *mp_http_filter_find(const char *name, const char *type_url);

/** Number of filters in the registry (filters/filter_registry.c). */
size_t mp_http_filter_registry_size(void);

/** Returns registry entry i (i < mp_http_filter_registry_size()). */
const struct mp_http_filter_ops *mp_http_filter_registry_at(size_t i);

/**
 * Resumes request iteration after the filter f returned MP_FILTER_STOP:
 * the next filter's callbacks run with whatever arrived meanwhile.
 */
void mp_http_filter_continue_request(struct mp_http_filter_ctx *f);

/** Resumes response iteration after f returned MP_FILTER_STOP. */
void mp_http_filter_continue_response(struct mp_http_filter_ctx *f);

/**
 * Sends a local reply (status, optional body, content-type text/plain) to the
 * downstream instead of the upstream's response, and ends the stream's request
 * processing. details is recorded as the response flag / details for stats
 * and the access log (may be NULL). Returns MP_FILTER_LOCAL_REPLY so callers
 * can `return mp_http_filter_local_reply(...)`.
 */
int mp_http_filter_local_reply(struct mp_http_filter_ctx *f, int status, const char *body,
                               const char *details);

#endif
