/*
 * http2_util.h: pieces the HTTP/2 server and client codecs share.
 */
#ifndef MP_HTTP2_UTIL_H
#define MP_HTTP2_UTIL_H

#include <nghttp2/nghttp2.h>

#include "buffer.h"
#include "http_headers.h"

/*
 * A stream's flow-control window is what a peer may send before we must
 * stop it, so it is also what we may have to buffer for a slow reader on the
 * other side. Envoy's default (256 MiB) would let one slow client pin that
 * much memory; stream windows are capped here (configured values below the
 * cap are used as they are).
 */
#define MP_H2_STREAM_WINDOW_CAP (16u * 1024 * 1024)

/**
 * Builds an nghttp2 name/value array pointing into h's strings (no copy;
 * valid while h is unchanged). skip_hop drops headers HTTP/2 forbids
 * (connection-specific ones). Returns 0 and a malloc'd array in *nva (caller
 * frees), or MP_ERR_NOMEM.
 */
int mp_h2_nva_from_headers(const struct mp_headers *h, nghttp2_nv **nva, size_t *n);

/**
 * mp_h2_nva_from_headers into buf (room for cap entries) when h has at most
 * cap headers, so a message's headers need no allocation: *nva is then buf,
 * else a malloc'd array the caller frees (free it when *nva != buf).
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_h2_nva_fill(const struct mp_headers *h, nghttp2_nv *buf, size_t cap, nghttp2_nv **nva,
                   size_t *n);

/**
 * Appends serialized frame bytes nghttp2 produced to out (reserve + commit:
 * protocol bytes, not payload, so not counted as copied). Returns len or
 * NGHTTP2_ERR_CALLBACK_FAILURE.
 */
ssize_t mp_h2_append_frame_bytes(struct mp_buffer *out, const uint8_t *data, size_t len);

/**
 * Appends one DATA frame to out: the 9-byte frame header, then length payload
 * bytes moved (by reference) from the front of src, then padding. Returns 0
 * or NGHTTP2_ERR_CALLBACK_FAILURE.
 */
int mp_h2_append_data_frame(struct mp_buffer *out, const uint8_t *framehd, struct mp_buffer *src,
                            size_t length, size_t padlen);

#endif
