/*
 * splice_pump.h: one direction of a plain TCP proxy moved with splice(2):
 * source socket -> per-direction pipe -> destination socket, never through
 * user space. A pure state machine over non-blocking fds: the caller (the
 * tcp_proxy filter) watches the fd the pump says it waits for and calls
 * mp_splice_pump_run again when it is ready.
 *
 * The pump reads from the source only while its pipe is empty, so a source
 * EAGAIN always means "no data" and a full pipe always means "the
 * destination is slow": that is the backpressure (stop reading until the
 * destination drains the pipe).
 */
#ifndef MP_SPLICE_PUMP_H
#define MP_SPLICE_PUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mp_buffer;
struct mp_stats;

/** What a pump waits for after mp_splice_pump_run. */
enum mp_splice_want {
    MP_SPLICE_WANT_READ,  /* the source to be readable (pipe empty) */
    MP_SPLICE_WANT_WRITE, /* the destination to be writable (bytes in the pipe) */
    MP_SPLICE_DONE,       /* the source sent its FIN and the pipe is drained */
    MP_SPLICE_UNSUPPORTED /* splice refused these fds (EINVAL/ENOSYS): fall back */
};

struct mp_splice_pump {
    int src, dst;       /* not owned */
    int pipe_r, pipe_w; /* owned */
    size_t pipe_cap;    /* the pipe's size (F_GETPIPE_SZ) */
    size_t in_pipe;     /* bytes spliced in and not yet out */
    bool src_eof;
    bool moved_out; /* a byte has left through the pipe (splice works here) */
};

/**
 * Sets p up to move bytes from src to dst (both non-blocking sockets, not
 * owned) through a new pipe (O_NONBLOCK|O_CLOEXEC) sized to pipe_size
 * clamped to [64 KiB, 1 MiB] (best effort: the kernel may keep it smaller).
 * Returns 0, or MP_ERR_IO when no pipe could be made (p holds nothing then).
 */
int mp_splice_pump_init(struct mp_splice_pump *p, int src, int dst, size_t pipe_size);

/**
 * Moves bytes until the source or the destination would block, the source
 * ended, or about `budget` bytes were spliced in (0: no limit), so that one
 * busy connection does not starve the worker's others. *in_bytes / *out_bytes
 * get the bytes spliced from src and to dst by this call. Returns an
 * enum mp_splice_want (>= 0), or MP_ERR_IO on a socket error (reset).
 */
int mp_splice_pump_run(struct mp_splice_pump *p, size_t budget, uint64_t *in_bytes,
                       uint64_t *out_bytes);

/**
 * Fallback: reads what still sits in the pipe into buf (as a socket read
 * would, into new slices) so the buffered path can send it. Returns the
 * bytes moved (>= 0) or MP_ERR_NOMEM / MP_ERR_IO.
 */
ssize_t mp_splice_pump_take(struct mp_splice_pump *p, struct mp_buffer *buf);

/** Closes the pump's pipe (idempotent; the sockets stay open). */
void mp_splice_pump_close(struct mp_splice_pump *p);

/** Adds one to meshproxy.splice_fallback (a connection went back to buffers). */
void mp_splice_pump_count_fallback(void);

/** The process's meshproxy.splice_fallback total. */
uint64_t mp_splice_pump_fallbacks(void);

/**
 * Publishes meshproxy.splice_fallback in stats (idempotent: registering
 * again replaces the reader). Returns 0 or a negative MP_ERR_*.
 */
int mp_splice_pump_register_stats(struct mp_stats *stats);

/**
 * Whether tcp_proxy may splice: false when the environment variable
 * MESHPROXY_NO_SPLICE is set to a non-empty value other than "0".
 */
bool mp_splice_pump_enabled(void);

#endif
