/*
 * buffer.h: a chain of slice views; bytes move between buffers by reference.
 *
 * A buffer is an ordered list of views (slice, offset, length). Moving data
 * from one buffer to another moves the views (taking or handing over slice
 * references) and never the bytes; only the functions documented as copying
 * touch the bytes, and they add to the bytes_copied counter. The data path
 * adds what it forwards to bytes_proxied with mp_buffer_count_proxied(). Both
 * counters are per thread (no locks, no shared cache lines on the hot path)
 * and summed on read by mp_buffer_bytes_copied()/mp_buffer_bytes_proxied(),
 * which the stats module publishes as meshproxy.bytes_copied/_proxied.
 *
 * A buffer belongs to one thread at a time. Functions that can fail leave the
 * buffer as it was on failure, unless their comment says otherwise.
 */
#ifndef MP_BUFFER_H
#define MP_BUFFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "proxy/slice.h"

struct mp_buffer_view {
    struct mp_slice *slice; /* one reference held by the buffer */
    size_t off;             /* first byte in slice->data */
    size_t len;
};

/* Views live in one array; [head, head + count) are in use. */
struct mp_buffer {
    struct mp_buffer_view *views;
    uint32_t head;
    uint32_t count;
    uint32_t cap;
    size_t len;      /* total bytes */
    size_t reserved; /* tail bytes claimed by mp_buffer_reserve, not yet committed */
};

#define MP_BUFFER_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0, 0, 0, 0                                                                        \
    }

/* Default read size for mp_buffer_read_fd when hint is 0. */
#define MP_BUFFER_READ_DEFAULT (4 * MP_SLICE_BLOCK)

/** Makes buf empty. Allocates nothing. */
void mp_buffer_init(struct mp_buffer *buf);

/** Drops every view (releasing slice references) and the view array; buf is empty and reusable. */
void mp_buffer_clear(struct mp_buffer *buf);

/** Returns the number of bytes in buf. */
static inline size_t mp_buffer_len(const struct mp_buffer *buf)
{
    return buf->len;
}

/**
 * Appends slice bytes [off, off + len) by taking a new reference (no copy).
 * The caller keeps its own reference. len == 0 does nothing. Returns 0,
 * MP_ERR_INVAL when the range is outside the slice's written bytes, or
 * MP_ERR_NOMEM.
 */
int mp_buffer_append_ref(struct mp_buffer *buf, struct mp_slice *slice, size_t off, size_t len);

/**
 * Copies len bytes from data to the end of buf, filling the last slice's tail
 * first, then new pooled slices. Adds len to bytes_copied. Returns 0 or
 * MP_ERR_NOMEM (then nothing is appended).
 */
int mp_buffer_append_copy(struct mp_buffer *buf, const void *data, size_t len);

/**
 * Appends printf-formatted text (generated, not copied: bytes_copied is not
 * changed). Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL on a format error.
 */
int mp_buffer_appendf(struct mp_buffer *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Moves all of src to the end of dst by moving slice references (no bytes
 * copied); src ends empty. Returns 0 or MP_ERR_NOMEM (both unchanged).
 */
int mp_buffer_move(struct mp_buffer *dst, struct mp_buffer *src);

/**
 * Moves the first n bytes of src (n is clamped to mp_buffer_len(src)) to the
 * end of dst, splitting a view that straddles n into two views of the same
 * slice. No bytes are copied. Returns 0 or MP_ERR_NOMEM (both unchanged).
 */
int mp_buffer_move_n(struct mp_buffer *dst, struct mp_buffer *src, size_t n);

/** Drops the first n bytes (clamped to the length), releasing slices no view needs. */
void mp_buffer_drain(struct mp_buffer *buf, size_t n);

/**
 * Fills iov with up to max_iov pointers to buf's bytes from the start, for
 * writev or nghttp2. The pointers stay valid until buf changes. Returns the
 * number of entries filled (0 for an empty buffer).
 */
int mp_buffer_peek_iov(const struct mp_buffer *buf, struct iovec *iov, int max_iov);

/**
 * Like mp_buffer_peek_iov for bytes [off, off + len) of buf (clamped to the
 * buffer): e.g. an HTTP/2 DATA frame's payload. Returns the number of entries
 * filled; the bytes described may be fewer than len when max_iov runs out.
 */
int mp_buffer_peek_iov_range(const struct mp_buffer *buf, size_t off, size_t len, struct iovec *iov,
                             int max_iov);

/**
 * Returns writable space at the end of buf of at least min(want, MP_SLICE_BLOCK)
 * contiguous bytes (the last slice's tail or a new slice), in *out, so a
 * reader such as SSL_read can write straight into the buffer. Nothing is
 * added until mp_buffer_commit. want == 0 means MP_SLICE_BLOCK. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_buffer_reserve(struct mp_buffer *buf, size_t want, struct iovec *out);

/**
 * Adds n bytes written into the space of the last mp_buffer_reserve and gives
 * the rest of it back. A reservation that is not committed (say SSL_read
 * failed) is released, adding nothing, by the next operation that changes
 * buf, so commit(0) is optional. Returns 0 or MP_ERR_INVAL when n is larger
 * than the reserved space (then nothing is added and the reservation is
 * released).
 */
int mp_buffer_commit(struct mp_buffer *buf, size_t n);

/**
 * Reads up to hint bytes (0: MP_BUFFER_READ_DEFAULT) from fd with one readv
 * into the last slice's tail and fresh slices. Returns the number of bytes
 * read (> 0), MP_ERR_CLOSED at end of file, MP_ERR_AGAIN when the read would
 * block (EAGAIN/EWOULDBLOCK), MP_ERR_NOMEM, or MP_ERR_IO with errno set.
 * EINTR is retried.
 */
ssize_t mp_buffer_read_fd(struct mp_buffer *buf, int fd, size_t hint);

/**
 * Writes buf to fd with writev (up to IOV_MAX views per call, one call) and
 * drains what was written. Returns the bytes written (0 for an empty buffer),
 * MP_ERR_AGAIN when nothing could be written because fd would block, or
 * MP_ERR_IO with errno set (EPIPE etc.). EINTR is retried.
 */
ssize_t mp_buffer_write_fd(struct mp_buffer *buf, int fd);

/**
 * Makes the first n bytes of buf contiguous and returns a pointer to them,
 * for parsers that need one run of bytes. When the first view already holds
 * n bytes nothing is copied; otherwise the bytes are copied into one new
 * slice that replaces the views they came from (counted in bytes_copied).
 * The pointer is valid until buf changes. Returns NULL when n is 0 or larger
 * than the buffer, or when memory runs out (buf unchanged).
 */
void *mp_buffer_linearize(struct mp_buffer *buf, size_t n);

/**
 * Copies bytes [off, off + len) of buf into dst (clamped to the buffer) and
 * returns the number of bytes copied, which are added to bytes_copied.
 * buf is unchanged.
 */
size_t mp_buffer_copy_out(const struct mp_buffer *buf, size_t off, void *dst, size_t len);

/**
 * Returns the offset of the first byte equal to c at or after off, or -1.
 * Scans slices in place (no copy): for line parsers.
 */
ssize_t mp_buffer_find_byte(const struct mp_buffer *buf, size_t off, uint8_t c);

/** Returns the number of views (slices) in buf: for tests and writev planning. */
static inline size_t mp_buffer_view_count(const struct mp_buffer *buf)
{
    return buf->count;
}

/** Adds n to the calling thread's bytes_proxied: call when forwarding n bytes downstream/upstream.
 */
void mp_buffer_count_proxied(uint64_t n);

/** Adds n to the calling thread's bytes_copied: for code outside buffer.c that copies payload
 * bytes. */
void mp_buffer_count_copied(uint64_t n);

/** Returns bytes copied by every thread since the process started (relaxed sum, no locks). */
uint64_t mp_buffer_bytes_copied(void);

/** Returns bytes proxied by every thread since the process started. */
uint64_t mp_buffer_bytes_proxied(void);

/**
 * Returns the calling thread's bytes_copied (tests check zero-copy paths by
 * comparing it before and after; a thread may inherit the count of an exited
 * thread whose block it took over).
 */
uint64_t mp_buffer_thread_bytes_copied(void);

/** Returns bytes proxied by the calling thread alone. */
uint64_t mp_buffer_thread_bytes_proxied(void);

#endif
