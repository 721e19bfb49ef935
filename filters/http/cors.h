/*
 * cors.h: envoy.filters.http.cors (envoy.extensions.filters.http.cors.v3.Cors),
 * driven by per-route typed_per_filter_config CorsPolicy (see cors.c).
 */
#ifndef MP_FILTER_HTTP_CORS_H
#define MP_FILTER_HTTP_CORS_H

#include "proxy/http_filter.h"

/** The filter's ops table (registered in filters/filter_registry.c). */
extern const struct mp_http_filter_ops mp_http_filter_cors;

#endif
