/*
 * filter_reply.h: a reply made by an HTTP filter that carries headers of its
 * own (ext_authz's denied response, ratelimit's 429), sent the way Envoy
 * sends local replies: through the response filters before this one, then
 * the codec.
 */
#ifndef MP_FILTER_REPLY_H
#define MP_FILTER_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct mp_http_filter_ctx;
struct mp_headers;

/**
 * Ends the request at filter f with a response of status, the headers of
 * extra (pseudo-headers, content-length, transfer-encoding and connection
 * left out; NULL for none) and body[0..blen) (content-type text/plain unless
 * extra names one). flag goes into the stream's response flags (MP_RF_*).
 * When the response has already started the stream is reset instead (on
 * out-of-memory too); when the stream is reset or already has a local reply,
 * nothing happens. Returns MP_FILTER_LOCAL_REPLY.
 */
int mp_filter_send_reply(struct mp_http_filter_ctx *f, int status, const struct mp_headers *extra,
                         const char *body, size_t blen, uint32_t flag);

#endif
