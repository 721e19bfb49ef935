/*
 * http1_parse.h: HTTP/1.x message parsing on top of http-parser, shared by
 * the downstream server (requests) and the upstream client (responses).
 *
 * The parser reads from an mp_buffer and hands body bytes back as slice
 * references (no copy). It stops after each complete message, so pipelined
 * requests are processed one at a time. Request heads are validated against
 * smuggling: Content-Length with Transfer-Encoding, repeated or malformed
 * Content-Length, a Transfer-Encoding other than "chunked", bad chunk sizes
 * and missing Host in HTTP/1.1 all fail with 400 (501 for an unsupported
 * transfer coding) and the message is never forwarded.
 */
#ifndef MP_HTTP1_PARSE_H
#define MP_HTTP1_PARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"
#include "http_headers.h"

enum {
    MP_H1_EV_HEADERS = 1u << 0,  /* head complete: headers are in p->headers */
    MP_H1_EV_BODY = 1u << 1,     /* body bytes are in p->body */
    MP_H1_EV_TRAILERS = 1u << 2, /* chunked trailers are in p->trailers */
    MP_H1_EV_DONE = 1u << 3,     /* message complete; parsing paused until resume */
};

struct mp_http1_parser {
    http_parser hp;
    bool is_request;
    /* limits */
    size_t max_header_bytes; /* total name + value bytes; default 60 KiB */
    size_t max_headers;      /* default 100 */
    /* the message being parsed */
    struct mp_headers
        headers; /* pseudo-headers first: :method :scheme :authority :path / :status */
    struct mp_headers trailers;
    struct mp_buffer body; /* body bytes parsed by the last execute call */
    bool headers_done;
    bool message_done;
    bool chunked;
    bool keep_alive; /* http_should_keep_alive at head completion */
    bool expect_continue;
    bool upgrade;
    bool skip_body; /* responses: the request was HEAD (set before parsing) */
    int http_minor;
    unsigned content_length_count;
    /* error */
    int error_status;       /* 400, 413, 431, 501, 502 ... */
    const char *error_text; /* static description */
    /* internal */
    char *field;
    size_t field_len, field_cap;
    char *value;
    size_t value_len, value_cap;
    bool in_value;
    char *url;
    size_t url_len, url_cap;
    unsigned events;
    struct mp_slice *cur_slice;
    const char *cur_base;
    size_t head_bytes;
};

/** Prepares a parser for requests (is_request) or responses. Allocates nothing. */
void mp_http1_parser_init(struct mp_http1_parser *p, bool is_request);

/** Frees what the parser holds. */
void mp_http1_parser_free(struct mp_http1_parser *p);

/**
 * Parses bytes from the front of in (draining what was consumed) until the
 * buffer is empty or a message completes. Sets *events to a mask of
 * MP_H1_EV_*. After MP_H1_EV_DONE the caller handles the message, then calls
 * mp_http1_parser_next before parsing again. Returns 0, or MP_ERR_PROTO with
 * p->error_status / p->error_text set (the connection must close), or
 * MP_ERR_NOMEM.
 */
int mp_http1_parser_execute(struct mp_http1_parser *p, struct mp_buffer *in, unsigned *events);

/**
 * Tells the parser the peer closed the connection (responses without length
 * end at EOF). Returns 0 (sets MP_H1_EV_DONE in *events when that ended a
 * message) or MP_ERR_PROTO when a message was cut short.
 */
int mp_http1_parser_eof(struct mp_http1_parser *p, unsigned *events);

/** Forgets the finished message and gets ready for the next one on the connection. */
void mp_http1_parser_next(struct mp_http1_parser *p);

/** Returns the standard reason phrase of a status code ("OK", "Not Found"), or "Unknown". */
const char *mp_http_reason(int status);

#endif
