/*
 * request_view.h: the route module's view of a request (struct
 * mp_route_request: pseudo-headers and a header array) built over a stream's
 * header list without copying a byte, so HTTP filters can use the route
 * module's HeaderMatcher / StringMatcher / route lookup on live requests.
 */
#ifndef MP_FILTER_REQUEST_VIEW_H
#define MP_FILTER_REQUEST_VIEW_H

#include <stdbool.h>

#include "proxy/http_headers.h"
#include "proxy/route_table.h"

struct mp_http_stream;

struct mp_request_view {
    struct mp_route_request rq;      /* points into the headers given to init */
    struct mp_header_view views[32]; /* used when the request has at most 32 headers */
    struct mp_header_view *heap;     /* else malloc'd here */
};

/**
 * Fills v over h (borrowed: h must stay unchanged while v is used).
 * Returns 0, or MP_ERR_NOMEM (v then needs no clear).
 */
int mp_request_view_init(struct mp_request_view *v, const struct mp_headers *h);

/** Frees what init took. */
void mp_request_view_clear(struct mp_request_view *v);

/**
 * The stream's route configuration: its HCM's inline one, else its RDS one
 * by name from the stream's snapshot. Returns it (borrowed: it lives as long
 * as the stream's snapshot), or NULL when there is none.
 */
const struct mp_route_config *mp_request_view_route_config(const struct mp_http_stream *s);

/**
 * Finds the route that the request in v matches in the stream's route
 * configuration (the HCM's inline one, or its RDS one from the stream's
 * snapshot). Returns it (borrowed; *rc, when rc is not NULL, gets its route
 * configuration), or NULL when there is no configuration or no route matches.
 */
const struct mp_route *mp_request_view_route(const struct mp_http_stream *s,
                                             const struct mp_request_view *v,
                                             const struct mp_route_config **rc);

/**
 * Finds the typed_per_filter_config entry for filter_name on the route that
 * req matches in the stream's route configuration (the HCM's inline one or
 * its RDS one), most specific first (route, virtual host, route config).
 * Returns a borrowed entry (it lives in the stream's snapshot), or NULL when
 * no route matches or none of the levels configures the filter.
 */
const struct mp_typed_config *mp_request_view_filter_config(const struct mp_http_stream *s,
                                                            const struct mp_request_view *v,
                                                            const char *filter_name);

/**
 * mp_request_view_filter_config for a filter instance: the entry keyed by
 * the instance's configured name, else (when that differs) by canon, the
 * filter's well-known name ("envoy.filters.http.rbac"), as Envoy falls back.
 * Returns a borrowed entry, or NULL.
 */
const struct mp_typed_config *mp_request_view_own_config(const struct mp_http_stream *s,
                                                         const struct mp_request_view *v,
                                                         const char *name, const char *canon);

/**
 * Whether tc's type_url names the message type `type` (the part after the
 * type URL's last '/', e.g. "envoy.extensions.filters.http.rbac.v3.RBACPerRoute").
 * False when tc has no type_url.
 */
bool mp_typed_config_type_is(const struct mp_typed_config *tc, const char *type);

#endif
