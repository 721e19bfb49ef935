/*
 * http_inspector.h: tells HTTP/1.x and HTTP/2 prior knowledge from the first
 * plaintext bytes of a connection, as envoy.filters.listener.http_inspector
 * does, so filter chains can match application_protocols "http/1.1",
 * "http/1.0" or "h2c" (Istio's inbound listener does). Run it only when the
 * transport is raw_buffer (Envoy skips it for TLS). Nothing is consumed: the
 * caller peeks.
 */
#ifndef MP_HTTP_INSPECTOR_H
#define MP_HTTP_INSPECTOR_H

#include <stddef.h>
#include <stdint.h>

/* Envoy's http_inspector looks at most at this many bytes. */
#define MP_HTTP_INSPECTOR_MAX 8192u

/**
 * Inspects the first len bytes. Returns 0 with *proto set to "h2c",
 * "http/1.1", "http/1.0" (static strings) or NULL (not HTTP: no protocol is
 * set, as Envoy does), or MP_ERR_AGAIN when more bytes are needed to decide
 * (after MP_HTTP_INSPECTOR_MAX bytes it decides NULL).
 */
int mp_http_inspect(const uint8_t *data, size_t len, const char **proto);

#endif
