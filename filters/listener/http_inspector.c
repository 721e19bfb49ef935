/* http_inspector.c: HTTP/1.x request line or HTTP/2 preface from peeked bytes. */
#include "filters/listener/http_inspector.h"

#include <string.h>

#include "proxy/mp_common.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* RFC 9110 token characters (a method is a token). */
static int is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Parses "METHOD SP target SP HTTP/1.x" (line without CRLF). */
static const char *request_line(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return NULL;
    size_t t = ++i;
    while (i < n && p[i] > ' ' && p[i] != 0x7f)
        i++;
    if (i == t || i == n || p[i] != ' ')
        return NULL;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0)
        return NULL;
    if (p[i + 7] == '1')
        return "http/1.1";
    if (p[i + 7] == '0')
        return "http/1.0";
    return NULL;
}

int mp_http_inspect(const uint8_t *data, size_t len, const char **proto)
{
    *proto = NULL;
    size_t plen = sizeof(h2_preface) - 1;
    size_t cmp = MP_MIN(len, plen);
    if (memcmp(data, h2_preface, cmp) == 0) {
        /* "PRI * HTTP/2.0" is also a syntactically valid HTTP/1 line start:
         * wait for the whole preface before deciding. */
        if (len < plen)
            return MP_ERR_AGAIN;
        *proto = "h2c";
        return 0;
    }
    /* A method is a token: anything else cannot be HTTP/1, decide at once. */
    for (size_t i = 0; i < len; i++) {
        if (data[i] == ' ')
            break;
        if (!is_tchar(data[i]))
            return 0;
    }
    size_t scan = MP_MIN(len, (size_t)MP_HTTP_INSPECTOR_MAX);
    for (size_t i = 0; i < scan; i++) {
        /* http-parser (Envoy's parser here) also ends a line at a bare LF */
        if (data[i] == '\n') {
            *proto = request_line(data, i > 0 && data[i - 1] == '\r' ? i - 1 : i);
            return 0;
        }
        if (data[i] == 0)
            return 0;
    }
    return len >= MP_HTTP_INSPECTOR_MAX ? 0 : MP_ERR_AGAIN;
}
