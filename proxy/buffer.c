/*
 * buffer.c: chains of slice views; moves are by reference.
 */
#include "proxy/buffer.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/mp_common.h"

/* Views handed to one writev: 64 x 16 KiB = 1 MiB, plenty per syscall. */
#define WRITE_IOV_MAX 64
/* Fresh slices one readv may fill. */
#define READ_IOV_MAX 8

void mp_buffer_init(struct mp_buffer *buf)
{
    memset(buf, 0, sizeof(*buf));
}

static inline struct mp_buffer_view *first_view(const struct mp_buffer *buf)
{
    return &buf->views[buf->head];
}

static inline struct mp_buffer_view *last_view(const struct mp_buffer *buf)
{
    return buf->count ? &buf->views[buf->head + buf->count - 1] : NULL;
}

/* Releases a reservation its caller did not commit (e.g. a failed SSL_read),
 * so every other operation sees only committed views. */
static inline void settle(struct mp_buffer *buf)
{
    if (buf->reserved)
        mp_buffer_commit(buf, 0);
}

void mp_buffer_clear(struct mp_buffer *buf)
{
    settle(buf); /* gives a claimed tail back to a slice others may share */
    for (uint32_t i = 0; i < buf->count; i++)
        mp_slice_unref(buf->views[buf->head + i].slice);
    mp_slice_free_mem(buf->views);
    mp_buffer_init(buf);
}

/* Makes room for `extra` more views at the end. */
static int ensure_room(struct mp_buffer *buf, uint32_t extra)
{
    if (buf->head + buf->count + extra <= buf->cap)
        return 0;
    if (extra > UINT32_MAX / 4 - buf->count)
        return MP_ERR_NOMEM;
    uint32_t need = buf->count + extra;
    if (need <= buf->cap && buf->head > 0) {
        /* Drained views left room at the front: slide instead of growing. */
        memmove(buf->views, buf->views + buf->head, buf->count * sizeof(*buf->views));
        buf->head = 0;
        return 0;
    }
    uint32_t cap = buf->cap ? buf->cap * 2 : 4;
    while (cap < need)
        cap *= 2;
    struct mp_buffer_view *v = mp_slice_alloc_mem(cap * sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    if (buf->count)
        memcpy(v, buf->views + buf->head, buf->count * sizeof(*v));
    mp_slice_free_mem(buf->views);
    buf->views = v;
    buf->cap = cap;
    buf->head = 0;
    return 0;
}

/* Appends a view whose reference the buffer already owns. Room must exist. */
static inline void push_view(struct mp_buffer *buf, struct mp_slice *s, size_t off, size_t len)
{
    struct mp_buffer_view *v = &buf->views[buf->head + buf->count++];
    v->slice = s;
    v->off = off;
    v->len = len;
    buf->len += len;
}

int mp_buffer_append_ref(struct mp_buffer *buf, struct mp_slice *slice, size_t off, size_t len)
{
    settle(buf);
    if (len == 0)
        return 0;
    size_t used = atomic_load_explicit(&slice->used, memory_order_relaxed);
    if (off > used || len > used - off)
        return MP_ERR_INVAL;
    struct mp_buffer_view *last = last_view(buf);
    if (last && last->slice == slice && last->off + last->len == off) {
        /* Adjacent bytes of the same slice: widen the view we already hold. */
        last->len += len;
        buf->len += len;
        return 0;
    }
    if (ensure_room(buf, 1) != 0)
        return MP_ERR_NOMEM;
    push_view(buf, mp_slice_ref(slice), off, len);
    return 0;
}

/*
 * Claims up to `want` bytes of the last view's slice tail. Returns the bytes
 * claimed (0 when the tail belongs to someone else or is full) and the write
 * position in *dst.
 */
static size_t claim_last_tail(struct mp_buffer *buf, size_t want, uint8_t **dst)
{
    struct mp_buffer_view *last = last_view(buf);
    if (!last || want == 0)
        return 0;
    struct mp_slice *s = last->slice;
    size_t end = last->off + last->len;
    if (end >= s->cap)
        return 0;
    size_t n = MP_MIN(want, s->cap - end);
    if (!mp_slice_claim_tail(s, end, n))
        return 0;
    *dst = s->data + end;
    return n;
}

/* Copies data into the buffer without counting (shared by the copy paths). */
static int append_bytes(struct mp_buffer *buf, const void *data, size_t len)
{
    settle(buf);
    const uint8_t *p = data;
    if (len == 0)
        return 0;
    uint8_t *dst;
    size_t tail = claim_last_tail(buf, len, &dst);
    size_t rest = len - tail;
    /* Take every slice and view slot first so failure leaves buf unchanged. */
    size_t nslices = (rest + MP_SLICE_BLOCK - 1) / MP_SLICE_BLOCK;
    struct mp_slice *stack_slices[8];
    struct mp_slice **slices = stack_slices;
    int rc = MP_ERR_NOMEM;
    if (nslices > MP_ARRAY_LEN(stack_slices)) {
        if (nslices > SIZE_MAX / sizeof(*slices))
            goto undo_tail;
        slices = malloc(nslices * sizeof(*slices));
        if (!slices)
            goto undo_tail;
    }
    size_t got = 0;
    for (; got < nslices; got++) {
        slices[got] = mp_slice_new(MP_SLICE_BLOCK);
        if (!slices[got])
            goto fail;
    }
    if (nslices && ensure_room(buf, (uint32_t)nslices) != 0)
        goto fail;
    if (tail) {
        memcpy(dst, p, tail);
        struct mp_buffer_view *last = last_view(buf);
        last->len += tail;
        buf->len += tail;
        p += tail;
    }
    for (size_t i = 0; i < nslices; i++) {
        size_t n = MP_MIN(rest, (size_t)MP_SLICE_BLOCK);
        memcpy(slices[i]->data, p, n);
        atomic_store_explicit(&slices[i]->used, n, memory_order_relaxed);
        push_view(buf, slices[i], 0, n);
        p += n;
        rest -= n;
    }
    if (slices != stack_slices)
        free(slices);
    return 0;
fail:
    while (got > 0)
        mp_slice_unref(slices[--got]);
    if (slices != stack_slices)
        free(slices);
undo_tail:
    if (tail) {
        /* No one else can have claimed past our claim: give it back. */
        struct mp_buffer_view *last = last_view(buf);
        atomic_store_explicit(&last->slice->used, last->off + last->len, memory_order_relaxed);
    }
    return rc;
}

int mp_buffer_append_copy(struct mp_buffer *buf, const void *data, size_t len)
{
    int rc = append_bytes(buf, data, len);
    if (rc == 0)
        mp_buffer_count_copied(len);
    return rc;
}

int mp_buffer_appendf(struct mp_buffer *buf, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return MP_ERR_INVAL;
    if ((size_t)n < sizeof(small))
        return append_bytes(buf, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return MP_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = append_bytes(buf, big, (size_t)n);
    free(big);
    return rc;
}

int mp_buffer_move(struct mp_buffer *dst, struct mp_buffer *src)
{
    settle(dst);
    settle(src);
    if (src == dst || src->count == 0)
        return 0;
    if (dst->count == 0) {
        /* Swap the arrays: no allocation, no per-view work. */
        struct mp_buffer tmp = *dst;
        *dst = *src;
        tmp.count = 0;
        tmp.head = 0;
        tmp.len = 0;
        *src = tmp;
        return 0;
    }
    if (ensure_room(dst, src->count) != 0)
        return MP_ERR_NOMEM;
    memcpy(dst->views + dst->head + dst->count, src->views + src->head,
           src->count * sizeof(*src->views));
    dst->count += src->count;
    dst->len += src->len;
    src->head = 0;
    src->count = 0;
    src->len = 0;
    return 0;
}

int mp_buffer_move_n(struct mp_buffer *dst, struct mp_buffer *src, size_t n)
{
    settle(dst);
    settle(src);
    if (n >= src->len)
        return mp_buffer_move(dst, src);
    if (n == 0 || src == dst)
        return 0;
    /* Count the whole views that go, and whether one is split. */
    uint32_t whole = 0;
    size_t left = n;
    while (left >= src->views[src->head + whole].len) {
        left -= src->views[src->head + whole].len;
        whole++;
    }
    uint32_t nviews = whole + (left > 0);
    if (ensure_room(dst, nviews) != 0)
        return MP_ERR_NOMEM;
    memcpy(dst->views + dst->head + dst->count, src->views + src->head,
           whole * sizeof(*src->views));
    dst->count += whole;
    src->head += whole;
    src->count -= whole;
    if (left > 0) {
        /* Split: both halves reference the same slice; the tail half stays
         * in src (and keeps any right to append into the slice's tail). */
        struct mp_buffer_view *v = first_view(src);
        push_view(dst, mp_slice_ref(v->slice), v->off, left);
        dst->len -= left; /* counted below with the whole views */
        v->off += left;
        v->len -= left;
    }
    dst->len += n;
    src->len -= n;
    return 0;
}

void mp_buffer_drain(struct mp_buffer *buf, size_t n)
{
    settle(buf);
    if (n >= buf->len) {
        for (uint32_t i = 0; i < buf->count; i++)
            mp_slice_unref(buf->views[buf->head + i].slice);
        buf->head = 0;
        buf->count = 0;
        buf->len = 0;
        return;
    }
    buf->len -= n;
    while (n > 0) {
        struct mp_buffer_view *v = first_view(buf);
        if (n < v->len) {
            v->off += n;
            v->len -= n;
            return;
        }
        n -= v->len;
        mp_slice_unref(v->slice);
        buf->head++;
        buf->count--;
    }
}

int mp_buffer_peek_iov(const struct mp_buffer *buf, struct iovec *iov, int max_iov)
{
    return mp_buffer_peek_iov_range(buf, 0, buf->len, iov, max_iov);
}

int mp_buffer_peek_iov_range(const struct mp_buffer *buf, size_t off, size_t len, struct iovec *iov,
                             int max_iov)
{
    int n = 0;
    if (off >= buf->len)
        return 0;
    len = MP_MIN(len, buf->len - off);
    for (uint32_t i = 0; i < buf->count && n < max_iov && len > 0; i++) {
        const struct mp_buffer_view *v = &buf->views[buf->head + i];
        if (off >= v->len) {
            off -= v->len;
            continue;
        }
        size_t take = MP_MIN(v->len - off, len);
        iov[n].iov_base = v->slice->data + v->off + off;
        iov[n].iov_len = take;
        n++;
        len -= take;
        off = 0;
    }
    return n;
}

int mp_buffer_reserve(struct mp_buffer *buf, size_t want, struct iovec *out)
{
    settle(buf);
    if (want == 0 || want > MP_SLICE_BLOCK)
        want = MP_SLICE_BLOCK;
    struct mp_buffer_view *last = last_view(buf);
    if (last) {
        size_t end = last->off + last->len;
        size_t room = last->slice->cap > end ? last->slice->cap - end : 0;
        /* Use the tail when it holds what was asked for; claim all of it so
         * a reader can take more than it asked. */
        if (room >= want && mp_slice_claim_tail(last->slice, end, room)) {
            out->iov_base = last->slice->data + end;
            out->iov_len = room;
            buf->reserved = room;
            return 0;
        }
    }
    if (ensure_room(buf, 1) != 0)
        return MP_ERR_NOMEM;
    struct mp_slice *s = mp_slice_new(want);
    if (!s)
        return MP_ERR_NOMEM;
    /* An empty view holds the fresh slice until commit sizes it. */
    atomic_store_explicit(&s->used, s->cap, memory_order_relaxed);
    push_view(buf, s, 0, 0);
    out->iov_base = s->data;
    out->iov_len = s->cap;
    buf->reserved = s->cap;
    return 0;
}

int mp_buffer_commit(struct mp_buffer *buf, size_t n)
{
    struct mp_buffer_view *last = last_view(buf);
    if (!last || buf->reserved == 0)
        return n == 0 ? 0 : MP_ERR_INVAL;
    int rc = 0;
    if (n > buf->reserved) {
        rc = MP_ERR_INVAL;
        n = 0;
    }
    buf->reserved = 0;
    last->len += n;
    buf->len += n;
    atomic_store_explicit(&last->slice->used, last->off + last->len, memory_order_relaxed);
    if (last->len == 0) {
        mp_slice_unref(last->slice);
        buf->count--;
    }
    return rc;
}

ssize_t mp_buffer_read_fd(struct mp_buffer *buf, int fd, size_t hint)
{
    settle(buf);
    if (hint == 0)
        hint = MP_BUFFER_READ_DEFAULT;
    struct iovec iov[READ_IOV_MAX + 1];
    struct mp_slice *fresh[READ_IOV_MAX];
    int niov = 0, nfresh = 0;
    uint8_t *tail_dst;
    size_t tail = claim_last_tail(buf, hint, &tail_dst);
    if (tail) {
        iov[niov].iov_base = tail_dst;
        iov[niov].iov_len = tail;
        niov++;
    }
    size_t want = hint - tail;
    ssize_t rc = MP_ERR_NOMEM;
    while (want > 0 && nfresh < READ_IOV_MAX) {
        struct mp_slice *s = mp_slice_new(MP_SLICE_BLOCK);
        if (!s)
            break;
        fresh[nfresh++] = s;
        iov[niov].iov_base = s->data;
        iov[niov].iov_len = MP_MIN(want, s->cap);
        want -= iov[niov].iov_len;
        niov++;
    }
    if (niov == 0 || ensure_room(buf, (uint32_t)nfresh) != 0)
        goto out;
    ssize_t got;
    do {
        got = readv(fd, iov, niov);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        rc = (errno == EAGAIN || errno == EWOULDBLOCK) ? MP_ERR_AGAIN : MP_ERR_IO;
        goto out;
    }
    if (got == 0) {
        rc = MP_ERR_CLOSED;
        goto out;
    }
    rc = got;
    size_t left = (size_t)got;
    if (tail) {
        size_t n = MP_MIN(left, tail);
        struct mp_buffer_view *last = last_view(buf);
        last->len += n;
        buf->len += n;
        left -= n;
        atomic_store_explicit(&last->slice->used, last->off + last->len, memory_order_relaxed);
        tail = 0;
    }
    for (int i = 0; i < nfresh && left > 0; i++) {
        size_t n = MP_MIN(left, fresh[i]->cap);
        atomic_store_explicit(&fresh[i]->used, n, memory_order_relaxed);
        push_view(buf, fresh[i], 0, n);
        fresh[i] = NULL;
        left -= n;
    }
out:
    if (tail) {
        struct mp_buffer_view *last = last_view(buf);
        atomic_store_explicit(&last->slice->used, last->off + last->len, memory_order_relaxed);
    }
    for (int i = 0; i < nfresh; i++)
        mp_slice_unref(fresh[i]);
    return rc;
}

ssize_t mp_buffer_write_fd(struct mp_buffer *buf, int fd)
{
    struct iovec iov[WRITE_IOV_MAX];
    int n = mp_buffer_peek_iov(buf, iov, WRITE_IOV_MAX);
    if (n == 0)
        return 0;
    ssize_t got;
    do {
        got = writev(fd, iov, n);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? MP_ERR_AGAIN : MP_ERR_IO;
    mp_buffer_drain(buf, (size_t)got);
    return got;
}

void *mp_buffer_linearize(struct mp_buffer *buf, size_t n)
{
    settle(buf);
    if (n == 0 || n > buf->len)
        return NULL;
    struct mp_buffer_view *v = first_view(buf);
    if (v->len >= n)
        return v->slice->data + v->off;
    struct mp_slice *s = mp_slice_new(n);
    if (!s)
        return NULL;
    if (ensure_room(buf, 1) != 0) {
        mp_slice_unref(s);
        return NULL;
    }
    mp_buffer_copy_out(buf, 0, s->data, n);
    atomic_store_explicit(&s->used, n, memory_order_relaxed);
    mp_buffer_drain(buf, n);
    /* Put the new slice in front; ensure_room left room at the end. */
    if (buf->head == 0) {
        memmove(buf->views + 1, buf->views, buf->count * sizeof(*buf->views));
        buf->head = 1;
    }
    buf->head--;
    buf->count++;
    buf->len += n;
    v = first_view(buf);
    v->slice = s;
    v->off = 0;
    v->len = n;
    return s->data;
}

size_t mp_buffer_copy_out(const struct mp_buffer *buf, size_t off, void *dst, size_t len)
{
    uint8_t *p = dst;
    size_t done = 0;
    if (off >= buf->len)
        return 0;
    len = MP_MIN(len, buf->len - off);
    for (uint32_t i = 0; i < buf->count && done < len; i++) {
        const struct mp_buffer_view *v = &buf->views[buf->head + i];
        if (off >= v->len) {
            off -= v->len;
            continue;
        }
        size_t take = MP_MIN(v->len - off, len - done);
        memcpy(p + done, v->slice->data + v->off + off, take);
        done += take;
        off = 0;
    }
    mp_buffer_count_copied(done);
    return done;
}

ssize_t mp_buffer_find_byte(const struct mp_buffer *buf, size_t off, uint8_t c)
{
    size_t base = 0;
    for (uint32_t i = 0; i < buf->count; i++) {
        const struct mp_buffer_view *v = &buf->views[buf->head + i];
        if (off < base + v->len) {
            size_t start = off > base ? off - base : 0;
            const uint8_t *hit = memchr(v->slice->data + v->off + start, c, v->len - start);
            if (hit)
                return (ssize_t)(base + (size_t)(hit - (v->slice->data + v->off)));
        }
        base += v->len;
    }
    return -1;
}
