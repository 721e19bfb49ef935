/*
 * http2_util.c: helpers shared by http2_server.c and upstream_http2.c.
 */
#include "http2_util.h"

#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

/* Names are lower-case (http_headers.h). Runs for every header of every
 * message: the length picks the one or two candidates to compare. */
static bool h2_forbidden(const struct mp_header *e)
{
    switch (e->name_len) {
    case 4: return memcmp(e->name, "host", 4) == 0;
    case 7: return memcmp(e->name, "upgrade", 7) == 0;
    case 10:
        return memcmp(e->name, "connection", 10) == 0 || memcmp(e->name, "keep-alive", 10) == 0;
    case 16: return memcmp(e->name, "proxy-connection", 16) == 0;
    case 17: return memcmp(e->name, "transfer-encoding", 17) == 0;
    default: return false;
    }
}

/* Values unique to one message (a request id, a timing) would only churn
 * the peer's HPACK dynamic table: send them literal, never indexed. */
static uint8_t h2_index_flags(const struct mp_header *e)
{
    if ((e->name_len == 12 && memcmp(e->name, "x-request-id", 12) == 0) ||
        (e->name_len == 29 && memcmp(e->name, "x-envoy-upstream-service-time", 29) == 0))
        return NGHTTP2_NV_FLAG_NO_INDEX;
    return NGHTTP2_NV_FLAG_NONE;
}

int mp_h2_nva_from_headers(const struct mp_headers *h, nghttp2_nv **nva, size_t *n)
{
    return mp_h2_nva_fill(h, NULL, 0, nva, n);
}

int mp_h2_nva_fill(const struct mp_headers *h, nghttp2_nv *buf, size_t cap, nghttp2_nv **nva,
                   size_t *n)
{
    nghttp2_nv *v = h->n <= cap ? buf : malloc((h->n ? h->n : 1) * sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct mp_header *e = &h->v[i];
        if (h2_forbidden(e))
            continue;
        v[k].name = (uint8_t *)e->name;
        v[k].namelen = e->name_len;
        v[k].value = (uint8_t *)e->value;
        v[k].valuelen = e->value_len;
        v[k].flags =
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE | h2_index_flags(e);
        k++;
    }
    *nva = v;
    *n = k;
    return 0;
}

ssize_t mp_h2_append_frame_bytes(struct mp_buffer *out, const uint8_t *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec iov;
        if (mp_buffer_reserve(out, len - done, &iov) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        size_t n = MP_MIN(iov.iov_len, len - done);
        memcpy(iov.iov_base, data + done, n);
        mp_buffer_commit(out, n);
        done += n;
    }
    return (ssize_t)len;
}

int mp_h2_append_data_frame(struct mp_buffer *out, const uint8_t *framehd, struct mp_buffer *src,
                            size_t length, size_t padlen)
{
    if (mp_h2_append_frame_bytes(out, framehd, 9) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (padlen > 0) {
        uint8_t pl = (uint8_t)(padlen - 1);
        if (mp_h2_append_frame_bytes(out, &pl, 1) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (mp_buffer_move_n(out, src, length) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (padlen > 1) {
        static const uint8_t zeros[256];
        if (mp_h2_append_frame_bytes(out, zeros, padlen - 1) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}
