/*
 * router.h: envoy.filters.http.router, the terminal HTTP filter: route
 * match -> cluster -> load balancer -> connection pool -> upstream request.
 */
#ifndef MP_FILTER_ROUTER_H
#define MP_FILTER_ROUTER_H

#include "proxy/http_filter.h"

/** The router's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_router;

struct mp_headers;
struct mp_header_ops;

/**
 * Applies one level of headers_to_add / headers_to_remove (request side when
 * request is true) to h, Envoy's way (append actions, keep_empty_value).
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_router_apply_header_ops(struct mp_headers *h, const struct mp_header_ops *ops, bool request);

#endif
