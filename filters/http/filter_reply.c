/*
 * filter_reply.c: local replies with headers (see filter_reply.h).
 */
#include "filter_reply.h"

#include <stdio.h>
#include <string.h>

#include "proxy/http_stream.h"

static bool skipped(const char *name)
{
    return name[0] == ':' || strcmp(name, "content-length") == 0 ||
           strcmp(name, "transfer-encoding") == 0 || strcmp(name, "connection") == 0;
}

int mp_filter_send_reply(struct mp_http_filter_ctx *f, int status, const struct mp_headers *extra,
                         const char *body, size_t blen, uint32_t flag)
{
    struct mp_http_stream *s = f->stream;
    /* a reply already made (idle timeout, another filter) stands */
    if (s->reset || s->local_reply)
        return MP_FILTER_LOCAL_REPLY;
    s->response_flags |= flag;
    if (s->resp_headers_sent) {
        mp_http_stream_reset(s, flag);
        return MP_FILTER_LOCAL_REPLY;
    }
    /* the request stops here: nothing more runs the request filters */
    s->local_reply = true;
    struct mp_headers h;
    mp_headers_init(&h);
    char num[24];
    snprintf(num, sizeof(num), "%d", status);
    int rc = mp_headers_add_cstr(&h, ":status", num);
    for (size_t i = 0; extra && i < extra->n && !rc; i++)
        if (!skipped(extra->v[i].name))
            rc = mp_headers_add(&h, extra->v[i].name, extra->v[i].name_len, extra->v[i].value,
                                extra->v[i].value_len);
    if (!rc && blen && !mp_headers_get(&h, "content-type"))
        rc = mp_headers_add_cstr(&h, "content-type", "text/plain");
    snprintf(num, sizeof(num), "%zu", blen);
    if (!rc)
        rc = mp_headers_add_cstr(&h, "content-length", num);
    if (rc) {
        mp_headers_clear(&h);
        mp_http_stream_reset(s, flag);
        return MP_FILTER_LOCAL_REPLY;
    }
    mp_http_stream_encode_headers(s, f->index, &h, blen == 0);
    mp_headers_clear(&h);
    if (blen && !s->reset) {
        struct mp_buffer b = MP_BUFFER_INIT;
        if (mp_buffer_append_copy(&b, body, blen) == 0)
            mp_http_stream_encode_data(s, f->index, &b, true);
        else
            mp_http_stream_reset(s, flag);
        mp_buffer_clear(&b);
    }
    return MP_FILTER_LOCAL_REPLY;
}
