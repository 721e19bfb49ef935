/*
 * mp_common.h: error codes and small helpers every meshproxy file uses.
 */
#ifndef MP_COMMON_H
#define MP_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Functions return 0 on success or one of these negative codes. */
enum mp_err {
    MP_OK = 0,
    MP_ERR_NOMEM = -1,    /* allocation failed */
    MP_ERR_INVAL = -2,    /* invalid argument or input */
    MP_ERR_PARSE = -3,    /* malformed input (config, protocol) */
    MP_ERR_IO = -4,       /* system call failed; errno is set */
    MP_ERR_AGAIN = -5,    /* would block; retry when ready */
    MP_ERR_NOTFOUND = -6, /* lookup found nothing */
    MP_ERR_LIMIT = -7,    /* a configured limit was exceeded */
    MP_ERR_CLOSED = -8,   /* peer closed the connection */
    MP_ERR_PROTO = -9,    /* protocol violation by the peer */
    MP_ERR_TIMEOUT = -10, /* deadline passed */
    MP_ERR_UNSUPPORTED = -11, /* valid but not implemented here */
};

/** Returns a static, human-readable name for an mp_err code. */
const char *mp_strerror(int err);

/**
 * Formats an error message into a newly malloc'd string, stored in *err when
 * err is not NULL (the caller frees it). Always returns MP_ERR_INVAL so
 * callers can write `return mp_set_err(err, "...", ...);`.
 */
int mp_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Prefixes an existing *err with "prefix" (e.g. a field path component):
 * "clusters[2]" + "connect_timeout: bad" -> "clusters[2].connect_timeout: bad".
 * Does nothing when err or *err is NULL.
 */
void mp_err_prefix(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The value of hexadecimal digit c (either case), or -1 when c is none. */
static inline int mp_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#define MP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MP_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
