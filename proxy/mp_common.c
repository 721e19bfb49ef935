/* mp_common.c: error names and error-message formatting. */
#include "mp_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mp_strerror(int err)
{
    switch (err) {
    case MP_OK: return "ok";
    case MP_ERR_NOMEM: return "out of memory";
    case MP_ERR_INVAL: return "invalid argument";
    case MP_ERR_PARSE: return "parse error";
    case MP_ERR_IO: return "i/o error";
    case MP_ERR_AGAIN: return "try again";
    case MP_ERR_NOTFOUND: return "not found";
    case MP_ERR_LIMIT: return "limit exceeded";
    case MP_ERR_CLOSED: return "connection closed";
    case MP_ERR_PROTO: return "protocol error";
    case MP_ERR_TIMEOUT: return "timeout";
    case MP_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int mp_set_err(char **err, const char *fmt, ...)
{
    if (err == NULL)
        return MP_ERR_INVAL;
    va_list ap;
    va_start(ap, fmt);
    free(*err);
    *err = vformat(fmt, ap);
    va_end(ap);
    return MP_ERR_INVAL;
}

void mp_err_prefix(char **err, const char *fmt, ...)
{
    if (err == NULL || *err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *prefix = vformat(fmt, ap);
    va_end(ap);
    if (prefix == NULL)
        return;
    /* "[3]" attaches without a dot; a message starting with "[" or ":" too. */
    const char *sep = ((*err)[0] == '[' || (*err)[0] == ':') ? "" : ".";
    size_t n = strlen(prefix) + strlen(sep) + strlen(*err) + 1;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "%s%s%s", prefix, sep, *err);
        free(*err);
        *err = s;
    }
    free(prefix);
}
