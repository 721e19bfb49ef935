/*
 * http1_parse.c: http-parser driven HTTP/1.x parsing with smuggling defenses.
 */
#include "http1_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp_common.h"

static int append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (nc < *len + n + 1)
            nc *= 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -1;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int fail(struct mp_http1_parser *p, int status, const char *text)
{
    if (!p->error_status) {
        p->error_status = status;
        p->error_text = text;
    }
    return -1;
}

/* RFC 9110 token characters: anything else in a field name (a space before
 * the colon, a control byte) is a smuggling vector and is refused. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    /* the punctuation tchars, without a strchr per '-' of every name */
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

static int finish_pair(struct mp_http1_parser *p)
{
    if (!p->in_value && p->field_len == 0)
        return 0;
    if (p->field_len == 0)
        return fail(p, 400, "empty header name");
    for (size_t i = 0; i < p->field_len; i++)
        if (!is_tchar((unsigned char)p->field[i]))
            return fail(p, 400, "invalid header name");
    for (size_t i = 0; i < p->value_len; i++) {
        unsigned char c = (unsigned char)p->value[i];
        if (c == 0 || c == '\r' || c == '\n')
            return fail(p, 400, "invalid header value");
    }
    struct mp_headers *h = p->headers_done ? &p->trailers : &p->headers;
    /* trim optional whitespace at the end of the value (http-parser strips the front) */
    while (p->value_len > 0 &&
           (p->value[p->value_len - 1] == ' ' || p->value[p->value_len - 1] == '\t'))
        p->value_len--;
    if (h->n >= p->max_headers)
        return fail(p, 431, "too many headers");
    p->head_bytes += p->field_len + p->value_len;
    if (p->head_bytes > p->max_header_bytes)
        return fail(p, 431, "headers too large");
    if (mp_headers_add(h, p->field ? p->field : "", p->field_len, p->value ? p->value : "",
                       p->value_len) < 0)
        return fail(p, 500, "out of memory");
    p->field_len = 0;
    p->value_len = 0;
    p->in_value = false;
    return 0;
}

static struct mp_http1_parser *P(http_parser *hp)
{
    return MP_CONTAINER_OF(hp, struct mp_http1_parser, hp);
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct mp_http1_parser *p = P(hp);
    if (p->url_len + n > 65536)
        return fail(p, 414, "uri too long");
    if (append(&p->url, &p->url_len, &p->url_cap, at, n) < 0)
        return fail(p, 500, "out of memory");
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    struct mp_http1_parser *p = P(hp);
    if (p->in_value && finish_pair(p) < 0)
        return -1;
    if (p->field_len + n > p->max_header_bytes)
        return fail(p, 431, "header name too large");
    if (append(&p->field, &p->field_len, &p->field_cap, at, n) < 0)
        return fail(p, 500, "out of memory");
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    struct mp_http1_parser *p = P(hp);
    p->in_value = true;
    if (p->value_len + n > p->max_header_bytes)
        return fail(p, 431, "header value too large");
    if (append(&p->value, &p->value_len, &p->value_cap, at, n) < 0)
        return fail(p, 500, "out of memory");
    return 0;
}

/* Splits an absolute-form target into authority and path. */
static int set_target(struct mp_http1_parser *p, struct mp_headers *out, const char **authority,
                      size_t *alen)
{
    const char *u = p->url ? p->url : "";
    size_t n = p->url_len;
    if (p->hp.method == HTTP_CONNECT) {
        *authority = u;
        *alen = n;
        return 0;
    }
    if (n >= 7 && (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0)) {
        size_t skip = u[4] == ':' ? 7 : 8;
        const char *host = u + skip;
        const char *slash = memchr(host, '/', n - skip);
        const char *q = memchr(host, '?', n - skip);
        const char *end = slash ? slash : q ? q : u + n;
        *authority = host;
        *alen = (size_t)(end - host);
        if (slash)
            return mp_headers_add(out, ":path", 5, slash, (size_t)(u + n - slash));
        if (q) {
            /* "http://h?x" means "/?x" */
            char tmp[4096];
            size_t ql = (size_t)(u + n - q);
            if (ql + 1 >= sizeof(tmp))
                return fail(p, 414, "uri too long");
            tmp[0] = '/';
            memcpy(tmp + 1, q, ql);
            return mp_headers_add(out, ":path", 5, tmp, ql + 1);
        }
        return mp_headers_add(out, ":path", 5, "/", 1);
    }
    if (n == 0 || (u[0] != '/' && !(n == 1 && u[0] == '*')))
        return fail(p, 400, "invalid request target");
    return mp_headers_add(out, ":path", 5, u, n);
}

static int validate_request(struct mp_http1_parser *p)
{
    struct mp_headers *h = &p->headers;
    size_t n_cl = 0, n_te = 0, n_host = 0;
    const struct mp_header *te = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const struct mp_header *e = &h->v[i];
        /* names are lower-case; the length picks the candidate */
        if (e->name_len == 14 && memcmp(e->name, "content-length", 14) == 0)
            n_cl++;
        else if (e->name_len == 17 && memcmp(e->name, "transfer-encoding", 17) == 0) {
            n_te++;
            te = e;
        } else if (e->name_len == 4 && memcmp(e->name, "host", 4) == 0)
            n_host++;
        else if (e->name_len == 6 && memcmp(e->name, "expect", 6) == 0 &&
                 strcasecmp(e->value, "100-continue") == 0)
            p->expect_continue = true;
    }
    if (n_cl > 1)
        return fail(p, 400, "multiple content-length headers");
    if (n_cl && n_te)
        return fail(p, 400, "both content-length and transfer-encoding");
    if (n_te > 1)
        return fail(p, 400, "multiple transfer-encoding headers");
    if (te && strcasecmp(te->value, "chunked") != 0)
        return fail(p, 501, "unsupported transfer-encoding");
    if (n_host > 1)
        return fail(p, 400, "multiple host headers");
    if (n_cl) {
        const char *v = mp_headers_value(h, "content-length");
        if (!*v)
            return fail(p, 400, "invalid content-length");
        for (const char *c = v; *c; c++)
            if (*c < '0' || *c > '9')
                return fail(p, 400, "invalid content-length");
    }
    if (p->hp.http_major == 1 && p->hp.http_minor >= 1 && n_host == 0 &&
        p->hp.method != HTTP_CONNECT) {
        /* an absolute-form target carries the authority itself */
        if (!(p->url_len > 7 && strncasecmp(p->url, "http", 4) == 0))
            return fail(p, 400, "missing host header");
    }
    if (p->hp.http_major != 1)
        return fail(p, 505, "unsupported http version");
    return 0;
}

static int build_request_head(struct mp_http1_parser *p)
{
    if (validate_request(p) < 0)
        return -1;
    /* The pseudo-headers are appended to the parsed list and moved to the
     * front (a stable partition keeps both orders), Host goes: the same
     * list as building a new one, without copying every header again.
     * Field names cannot start with ':' (is_tchar), so nothing else moves. */
    struct mp_headers *h = &p->headers;
    const char *method = http_method_str((enum http_method)p->hp.method);
    const char *authority = NULL;
    size_t alen = 0;
    if (mp_headers_add(h, ":method", 7, method, strlen(method)) < 0 ||
        mp_headers_add(h, ":scheme", 7, "http", 4) < 0)
        return fail(p, 500, "out of memory");
    if (set_target(p, h, &authority, &alen) < 0)
        return fail(p, 500, "out of memory");
    if (!authority) {
        const struct mp_header *host = mp_headers_get(h, "host");
        if (host) {
            authority = host->value;
            alen = host->value_len;
        }
    }
    /* authority may point into Host's block, which stays valid until the
     * list is cleared (http_headers.h) */
    if (authority && mp_headers_add(h, ":authority", 10, authority, alen) < 0)
        return fail(p, 500, "out of memory");
    mp_headers_remove(h, "host");
    mp_headers_pseudo_first(h);
    return 0;
}

static int build_response_head(struct mp_http1_parser *p)
{
    struct mp_headers out;
    mp_headers_init(&out);
    char st[8];
    int n = snprintf(st, sizeof(st), "%u", p->hp.status_code);
    if (mp_headers_add(&out, ":status", 7, st, (size_t)n) < 0)
        goto nomem;
    size_t n_cl = 0, n_te = 0;
    for (size_t i = 0; i < p->headers.n; i++) {
        const struct mp_header *e = &p->headers.v[i];
        if (strcmp(e->name, "content-length") == 0)
            n_cl++;
        if (strcmp(e->name, "transfer-encoding") == 0)
            n_te++;
        if (mp_headers_add(&out, e->name, e->name_len, e->value, e->value_len) < 0)
            goto nomem;
    }
    mp_headers_clear(&p->headers);
    p->headers = out;
    if (n_cl > 1 || (n_cl && n_te))
        return fail(p, 502, "invalid upstream framing");
    return 0;
nomem:
    mp_headers_clear(&out);
    return fail(p, 500, "out of memory");
}

static int on_headers_complete(http_parser *hp)
{
    struct mp_http1_parser *p = P(hp);
    if (p->in_value && finish_pair(p) < 0)
        return -1;
    p->headers_done = true;
    p->chunked = (hp->flags & F_CHUNKED) != 0;
    p->keep_alive = http_should_keep_alive(hp) != 0;
    p->http_minor = hp->http_minor;
    p->upgrade = hp->upgrade != 0;
    int rc = p->is_request ? build_request_head(p) : build_response_head(p);
    if (rc < 0)
        return -1;
    p->events |= MP_H1_EV_HEADERS;
    if (!p->is_request && p->skip_body)
        return 1;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct mp_http1_parser *p = P(hp);
    size_t off = (size_t)((const uint8_t *)at - p->cur_slice->data);
    if (mp_buffer_append_ref(&p->body, p->cur_slice, off, n) < 0)
        return fail(p, 500, "out of memory");
    p->events |= MP_H1_EV_BODY;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct mp_http1_parser *p = P(hp);
    if (p->in_value && finish_pair(p) < 0)
        return -1;
    if (p->trailers.n)
        p->events |= MP_H1_EV_TRAILERS;
    p->message_done = true;
    p->events |= MP_H1_EV_DONE;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void mp_http1_parser_init(struct mp_http1_parser *p, bool is_request)
{
    memset(p, 0, sizeof(*p));
    p->is_request = is_request;
    p->max_header_bytes = 60 * 1024;
    p->max_headers = 100;
    http_parser_init(&p->hp, is_request ? HTTP_REQUEST : HTTP_RESPONSE);
    mp_headers_init(&p->headers);
    mp_headers_init(&p->trailers);
    mp_buffer_init(&p->body);
}

void mp_http1_parser_free(struct mp_http1_parser *p)
{
    mp_headers_clear(&p->headers);
    mp_headers_clear(&p->trailers);
    mp_buffer_clear(&p->body);
    free(p->field);
    free(p->value);
    free(p->url);
    p->field = p->value = p->url = NULL;
}

static int map_errno(struct mp_http1_parser *p)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (p->error_status)
        return MP_ERR_PROTO;
    switch (e) {
    case HPE_INVALID_CHUNK_SIZE: return fail(p, 400, "invalid chunk size"), MP_ERR_PROTO;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return fail(p, 400, "conflicting content-length / transfer-encoding"), MP_ERR_PROTO;
    case HPE_INVALID_CONTENT_LENGTH: return fail(p, 400, "invalid content-length"), MP_ERR_PROTO;
    case HPE_INVALID_TRANSFER_ENCODING:
        return fail(p, 501, "unsupported transfer-encoding"), MP_ERR_PROTO;
    case HPE_HEADER_OVERFLOW: return fail(p, 431, "headers too large"), MP_ERR_PROTO;
    case HPE_INVALID_VERSION: return fail(p, 400, "invalid http version"), MP_ERR_PROTO;
    default: return fail(p, p->is_request ? 400 : 502, http_errno_description(e)), MP_ERR_PROTO;
    }
}

int mp_http1_parser_execute(struct mp_http1_parser *p, struct mp_buffer *in, unsigned *events)
{
    p->events = 0;
    *events = 0;
    if (p->message_done)
        return 0;
    while (mp_buffer_len(in) > 0 && !p->message_done) {
        struct mp_buffer_view *v = &in->views[in->head];
        p->cur_slice = v->slice;
        const char *data = (const char *)v->slice->data + v->off;
        size_t len = v->len;
        size_t n = http_parser_execute(&p->hp, &settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
        if (e == HPE_PAUSED) {
            http_parser_pause(&p->hp, 0);
            /* our pause is only at message end; the bytes so far belong to it */
        } else if (e != HPE_OK) {
            *events = p->events;
            return map_errno(p);
        }
        mp_buffer_drain(in, n);
        if (n < len && !p->message_done) {
            *events = p->events;
            return fail(p, 400, "parse stalled"), MP_ERR_PROTO;
        }
    }
    p->cur_slice = NULL;
    *events = p->events;
    return 0;
}

int mp_http1_parser_eof(struct mp_http1_parser *p, unsigned *events)
{
    p->events = 0;
    *events = 0;
    if (p->message_done)
        return 0;
    http_parser_execute(&p->hp, &settings, NULL, 0);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e == HPE_PAUSED)
        http_parser_pause(&p->hp, 0);
    else if (e != HPE_OK)
        return map_errno(p);
    *events = p->events;
    if (!p->message_done)
        return p->headers_done || p->url_len || p->field_len ? fail(p, 400, "truncated"),
               MP_ERR_PROTO                                  : MP_ERR_CLOSED;
    return 0;
}

void mp_http1_parser_next(struct mp_http1_parser *p)
{
    mp_headers_clear(&p->headers);
    mp_headers_clear(&p->trailers);
    mp_buffer_clear(&p->body);
    p->headers_done = p->message_done = p->chunked = p->keep_alive = false;
    p->expect_continue = p->upgrade = p->skip_body = false;
    p->content_length_count = 0;
    p->field_len = p->value_len = p->url_len = 0;
    p->in_value = false;
    p->head_bytes = 0;
    p->events = 0;
    /* http-parser starts its next message by itself after a completed one */
}

const char *mp_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
