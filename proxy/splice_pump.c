/*
 * splice_pump.c: socket -> pipe -> socket with splice(2) (see splice_pump.h).
 */
#include "splice_pump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffer.h"
#include "mp_common.h"
#include "stats.h"

#define PIPE_MIN (64u * 1024u)
#define PIPE_MAX (1024u * 1024u)

/* Fallbacks are rare (an fd type splice refuses): one shared atomic is enough. */
static _Atomic uint64_t fallbacks;

int mp_splice_pump_init(struct mp_splice_pump *p, int src, int dst, size_t pipe_size)
{
    memset(p, 0, sizeof(*p));
    p->src = src;
    p->dst = dst;
    p->pipe_r = p->pipe_w = -1;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return MP_ERR_IO;
    p->pipe_r = fds[0];
    p->pipe_w = fds[1];
    size_t want = pipe_size < PIPE_MIN ? PIPE_MIN : pipe_size > PIPE_MAX ? PIPE_MAX : pipe_size;
    /* may fail over pipe-max-size or the user's pipe page quota: keep the default */
    (void)fcntl(p->pipe_w, F_SETPIPE_SZ, (int)want);
    int got = fcntl(p->pipe_w, F_GETPIPE_SZ);
    p->pipe_cap = got > 0 ? (size_t)got : 65536;
    return 0;
}

static bool unsupported(int err)
{
    return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP;
}

int mp_splice_pump_run(struct mp_splice_pump *p, size_t budget, uint64_t *in_bytes,
                       uint64_t *out_bytes)
{
    uint64_t in = 0, out = 0;
    int rc;
    for (;;) {
        if (p->in_pipe > 0) {
            ssize_t n = splice(p->pipe_r, NULL, p->dst, NULL, p->in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                p->in_pipe -= (size_t)n;
                out += (uint64_t)n;
                p->moved_out = true;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                rc = MP_SPLICE_WANT_WRITE;
                break;
            }
            if (n < 0 && unsupported(errno) && !p->moved_out) {
                /* the bytes wait in the pipe for mp_splice_pump_take */
                rc = MP_SPLICE_UNSUPPORTED;
                break;
            }
            rc = MP_ERR_IO; /* EPIPE, ECONNRESET: the destination is gone */
            break;
        }
        if (p->src_eof) {
            rc = MP_SPLICE_DONE;
            break;
        }
        if (budget && in >= budget) {
            /* the source is level-triggered: it wakes us again */
            rc = MP_SPLICE_WANT_READ;
            break;
        }
        ssize_t n =
            splice(p->src, NULL, p->pipe_w, NULL, p->pipe_cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->in_pipe += (size_t)n;
            in += (uint64_t)n;
            continue;
        }
        if (n == 0) {
            p->src_eof = true;
            continue;
        }
        if (errno == EINTR)
            continue;
        /* the pipe is empty here, so EAGAIN is the source's */
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = MP_SPLICE_WANT_READ;
            break;
        }
        if (unsupported(errno)) {
            rc = MP_SPLICE_UNSUPPORTED;
            break;
        }
        rc = MP_ERR_IO;
        break;
    }
    *in_bytes = in;
    *out_bytes = out;
    return rc;
}

ssize_t mp_splice_pump_take(struct mp_splice_pump *p, struct mp_buffer *buf)
{
    size_t total = 0;
    while (p->in_pipe > 0 && p->pipe_r >= 0) {
        ssize_t n = mp_buffer_read_fd(buf, p->pipe_r, p->in_pipe);
        if (n == MP_ERR_AGAIN || n == MP_ERR_CLOSED)
            break; /* in_pipe overcounted: nothing more is there */
        if (n < 0)
            return n;
        p->in_pipe -= MP_MIN((size_t)n, p->in_pipe);
        total += (size_t)n;
    }
    p->in_pipe = 0;
    return (ssize_t)total;
}

void mp_splice_pump_close(struct mp_splice_pump *p)
{
    if (p->pipe_r >= 0)
        close(p->pipe_r);
    if (p->pipe_w >= 0)
        close(p->pipe_w);
    p->pipe_r = p->pipe_w = -1;
    p->in_pipe = 0;
}

void mp_splice_pump_count_fallback(void)
{
    atomic_fetch_add_explicit(&fallbacks, 1, memory_order_relaxed);
}

uint64_t mp_splice_pump_fallbacks(void)
{
    return atomic_load_explicit(&fallbacks, memory_order_relaxed);
}

static uint64_t fallbacks_fn(void *arg)
{
    (void)arg;
    return mp_splice_pump_fallbacks();
}

int mp_splice_pump_register_stats(struct mp_stats *stats)
{
    return mp_stats_register_fn(stats, "meshproxy.splice_fallback", false, fallbacks_fn, NULL);
}

bool mp_splice_pump_enabled(void)
{
    const char *v = getenv("MESHPROXY_NO_SPLICE");
    return !v || !*v || strcmp(v, "0") == 0;
}
