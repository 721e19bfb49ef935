/* Unit tests for slice.c, buffer.c and buffer_counters.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/slice.h"

static uint32_t refs(const struct mp_slice *s)
{
    return atomic_load(&s->refcnt);
}

/* Fills p with a pattern that depends on the absolute position. */
static void pattern(uint8_t *p, size_t n, size_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((start + i) * 7 + 3);
}

static void assert_contents(const struct mp_buffer *b, size_t start, size_t n)
{
    assert_int_equal(mp_buffer_len(b), n);
    uint8_t *got = malloc(n + 1), *want = malloc(n + 1);
    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(mp_buffer_copy_out(b, 0, got, n), n);
    pattern(want, n, start);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);
}

static void slice_refcounts(void **state)
{
    (void)state;
    mp_slice_cache_trim();
    struct mp_slice *s = mp_slice_new(100);
    assert_non_null(s);
    assert_int_equal(s->cap, MP_SLICE_BLOCK);
    assert_int_equal(refs(s), 1);
    assert_ptr_equal(mp_slice_ref(s), s);
    assert_int_equal(refs(s), 2);
    mp_slice_unref(s);
    assert_int_equal(refs(s), 1);
    assert_int_equal(mp_slice_cache_count(), 0);
    mp_slice_unref(s);
    /* The block went back to this thread's free list and comes out again. */
    assert_int_equal(mp_slice_cache_count(), 1);
    struct mp_slice *again = mp_slice_new(0);
    assert_ptr_equal(again, s);
    assert_int_equal(atomic_load(&again->used), 0);
    assert_int_equal(mp_slice_cache_count(), 0);
    mp_slice_unref(again);

    struct mp_slice *big = mp_slice_new(MP_SLICE_BLOCK * 3 + 1);
    assert_non_null(big);
    assert_int_equal(big->cap, MP_SLICE_BLOCK * 3 + 1);
    size_t cached = mp_slice_cache_count();
    mp_slice_unref(big);
    assert_int_equal(mp_slice_cache_count(), cached); /* big slices are not cached */
    mp_slice_unref(NULL);
    mp_slice_cache_trim();
    assert_int_equal(mp_slice_cache_count(), 0);
}

static int ext_freed;
static void ext_free(void *data, size_t len, void *arg)
{
    assert_int_equal(len, 5);
    assert_ptr_equal(arg, &ext_freed);
    free(data);
    ext_freed++;
}

static void external_slice(void **state)
{
    (void)state;
    char *mem = strdup("hello");
    struct mp_slice *s = mp_slice_new_external(mem, 5, ext_free, &ext_freed);
    assert_non_null(s);
    struct mp_buffer b = MP_BUFFER_INIT;
    uint64_t copied = mp_buffer_thread_bytes_copied();
    assert_int_equal(mp_buffer_append_ref(&b, s, 1, 3), 0);
    assert_int_equal(mp_buffer_append_ref(&b, s, 0, 6), MP_ERR_INVAL);
    mp_slice_unref(s);
    assert_int_equal(ext_freed, 0);
    char out[4] = {0};
    struct iovec iov[2];
    assert_int_equal(mp_buffer_peek_iov(&b, iov, 2), 1);
    assert_int_equal(iov[0].iov_len, 3);
    assert_memory_equal(iov[0].iov_base, "ell", 3);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    /* The tail of an external slice is never writable: this lands in a new slice. */
    assert_int_equal(mp_buffer_append_copy(&b, "!", 1), 0);
    assert_int_equal(mp_buffer_view_count(&b), 2);
    assert_int_equal(mp_buffer_copy_out(&b, 0, out, 4), 4);
    assert_memory_equal(out, "ell!", 4);
    mp_buffer_clear(&b);
    assert_int_equal(ext_freed, 1);
}

static void append_copy_counts_and_fills_tail(void **state)
{
    (void)state;
    struct mp_buffer b;
    mp_buffer_init(&b);
    uint8_t data[40000];
    pattern(data, sizeof(data), 0);
    uint64_t before = mp_buffer_thread_bytes_copied();
    assert_int_equal(mp_buffer_append_copy(&b, data, 100), 0);
    assert_int_equal(mp_buffer_view_count(&b), 1);
    /* The next copy continues in the same slice's tail, then spills over. */
    assert_int_equal(mp_buffer_append_copy(&b, data + 100, sizeof(data) - 100), 0);
    assert_int_equal(mp_buffer_view_count(&b), 3); /* 16384 + 16384 + 7232 */
    assert_int_equal(mp_buffer_thread_bytes_copied() - before, sizeof(data));
    assert_int_equal(mp_buffer_bytes_copied() >= sizeof(data), 1);
    assert_contents(&b, 0, sizeof(data));
    mp_buffer_clear(&b);
    assert_int_equal(mp_buffer_len(&b), 0);
    assert_int_equal(mp_buffer_append_copy(&b, data, 0), 0);
    assert_int_equal(mp_buffer_view_count(&b), 0);
    mp_buffer_clear(&b);
}

static void move_is_zero_copy(void **state)
{
    (void)state;
    struct mp_buffer a = MP_BUFFER_INIT, b = MP_BUFFER_INIT;
    uint8_t data[50000];
    pattern(data, sizeof(data), 0);
    assert_int_equal(mp_buffer_append_copy(&a, data, 20000), 0);
    assert_int_equal(mp_buffer_append_copy(&b, data + 20000, 30000), 0);
    struct mp_slice *first_of_b = b.views[b.head].slice;
    uint64_t copied = mp_buffer_thread_bytes_copied();

    /* Into a non-empty buffer: views are appended, references moved. */
    assert_int_equal(mp_buffer_move(&a, &b), 0);
    assert_int_equal(mp_buffer_len(&b), 0);
    assert_int_equal(mp_buffer_view_count(&b), 0);
    assert_int_equal(refs(first_of_b), 1);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);

    /* Into an empty buffer: the arrays are swapped. */
    assert_int_equal(mp_buffer_move(&b, &a), 0);
    assert_int_equal(mp_buffer_len(&a), 0);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    assert_int_equal(mp_buffer_move(&b, &a), 0); /* empty src: nothing */
    assert_int_equal(mp_buffer_move(&b, &b), 0);
    uint64_t c2 = mp_buffer_thread_bytes_copied();
    assert_contents(&b, 0, sizeof(data));
    copied += mp_buffer_thread_bytes_copied() - c2; /* copy_out in the check counts */
    mp_buffer_clear(&a);
    mp_buffer_clear(&b);
}

static void move_n_splits_views(void **state)
{
    (void)state;
    struct mp_buffer src = MP_BUFFER_INIT, dst = MP_BUFFER_INIT;
    uint8_t data[40000];
    pattern(data, sizeof(data), 0);
    assert_int_equal(mp_buffer_append_copy(&src, data, sizeof(data)), 0);
    assert_int_equal(mp_buffer_view_count(&src), 3);
    struct mp_slice *second = src.views[src.head + 1].slice;
    uint64_t copied = mp_buffer_thread_bytes_copied();

    /* 20000 = one whole view (16384) + 3616 bytes of the second. */
    assert_int_equal(mp_buffer_move_n(&dst, &src, 20000), 0);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    assert_int_equal(mp_buffer_len(&dst), 20000);
    assert_int_equal(mp_buffer_len(&src), 20000);
    assert_int_equal(mp_buffer_view_count(&dst), 2);
    assert_int_equal(mp_buffer_view_count(&src), 2);
    assert_int_equal(refs(second), 2); /* shared by the two halves */
    assert_ptr_equal(dst.views[dst.head + 1].slice, second);
    assert_ptr_equal(src.views[src.head].slice, second);
    assert_int_equal(src.views[src.head].off, 3616);

    /* Exactly on a view boundary: no split. */
    assert_int_equal(mp_buffer_move_n(&dst, &src, MP_SLICE_BLOCK - 3616), 0);
    assert_int_equal(refs(second), 2);
    assert_int_equal(mp_buffer_view_count(&src), 1);
    assert_int_equal(mp_buffer_move_n(&dst, &src, 0), 0);
    /* n beyond the length is clamped. */
    assert_int_equal(mp_buffer_move_n(&dst, &src, 1u << 30), 0);
    assert_int_equal(mp_buffer_len(&src), 0);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    assert_contents(&dst, 0, sizeof(data));
    mp_buffer_clear(&dst);
    mp_buffer_clear(&src);
}

static void drain_releases_slices(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    uint8_t data[40000];
    pattern(data, sizeof(data), 0);
    assert_int_equal(mp_buffer_append_copy(&b, data, sizeof(data)), 0);
    struct mp_slice *first = b.views[b.head].slice;
    struct mp_slice *second = b.views[b.head + 1].slice;
    mp_slice_ref(first);
    mp_slice_ref(second);
    mp_buffer_drain(&b, 100);
    assert_int_equal(refs(first), 2);
    assert_contents(&b, 100, sizeof(data) - 100);
    mp_buffer_drain(&b, MP_SLICE_BLOCK); /* past the first view, into the second */
    assert_int_equal(refs(first), 1);
    assert_int_equal(refs(second), 2);
    assert_int_equal(mp_buffer_view_count(&b), 2);
    assert_contents(&b, 100 + MP_SLICE_BLOCK, sizeof(data) - 100 - MP_SLICE_BLOCK);
    mp_buffer_drain(&b, SIZE_MAX);
    assert_int_equal(mp_buffer_len(&b), 0);
    assert_int_equal(refs(second), 1);
    mp_slice_unref(first);
    mp_slice_unref(second);
    mp_buffer_drain(&b, 5); /* empty: no-op */
    mp_buffer_clear(&b);
}

static void peek_iov_and_range(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    uint8_t data[40000];
    pattern(data, sizeof(data), 0);
    assert_int_equal(mp_buffer_append_copy(&b, data, sizeof(data)), 0);
    struct iovec iov[4];
    assert_int_equal(mp_buffer_peek_iov(&b, iov, 4), 3);
    assert_int_equal(iov[0].iov_len + iov[1].iov_len + iov[2].iov_len, sizeof(data));
    assert_memory_equal(iov[1].iov_base, data + MP_SLICE_BLOCK, iov[1].iov_len);
    assert_int_equal(mp_buffer_peek_iov(&b, iov, 2), 2);

    /* A DATA frame's payload in the middle, straddling a slice boundary. */
    assert_int_equal(mp_buffer_peek_iov_range(&b, 16000, 1000, iov, 4), 2);
    assert_int_equal(iov[0].iov_len, MP_SLICE_BLOCK - 16000);
    assert_int_equal(iov[1].iov_len, 1000 - (MP_SLICE_BLOCK - 16000));
    assert_memory_equal(iov[0].iov_base, data + 16000, iov[0].iov_len);
    assert_memory_equal(iov[1].iov_base, data + MP_SLICE_BLOCK, iov[1].iov_len);
    assert_int_equal(mp_buffer_peek_iov_range(&b, 39990, 100, iov, 4), 1);
    assert_int_equal(iov[0].iov_len, 10);
    assert_int_equal(mp_buffer_peek_iov_range(&b, 40000, 100, iov, 4), 0);
    mp_buffer_clear(&b);
    assert_int_equal(mp_buffer_peek_iov(&b, iov, 4), 0);
}

static void shared_tail_is_claimed_once(void **state)
{
    (void)state;
    struct mp_slice *s = mp_slice_new(0);
    memcpy(s->data, "abc", 3);
    atomic_store(&s->used, 3);
    struct mp_buffer a = MP_BUFFER_INIT, b = MP_BUFFER_INIT;
    assert_int_equal(mp_buffer_append_ref(&a, s, 0, 3), 0);
    assert_int_equal(mp_buffer_append_ref(&b, s, 0, 3), 0);
    mp_slice_unref(s);
    /* Both views end at `used`; the first appender gets the tail... */
    assert_int_equal(mp_buffer_append_copy(&a, "XY", 2), 0);
    assert_int_equal(mp_buffer_view_count(&a), 1);
    /* ...and the other must not overwrite those bytes. */
    assert_int_equal(mp_buffer_append_copy(&b, "ZZ", 2), 0);
    assert_int_equal(mp_buffer_view_count(&b), 2);
    char out[5];
    mp_buffer_copy_out(&a, 0, out, 5);
    assert_memory_equal(out, "abcXY", 5);
    mp_buffer_copy_out(&b, 0, out, 5);
    assert_memory_equal(out, "abcZZ", 5);
    /* Adjacent append_ref of the same slice widens the existing view. */
    struct mp_slice *t = a.views[a.head].slice;
    assert_int_equal(mp_buffer_append_ref(&b, t, 3, 0), 0);
    mp_buffer_clear(&a);
    mp_buffer_clear(&b);
}

static void appendf_and_find(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    uint64_t copied = mp_buffer_thread_bytes_copied();
    assert_int_equal(mp_buffer_appendf(&b, "GET %s HTTP/1.1\r\n", "/x"), 0);
    char big[2000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(mp_buffer_appendf(&b, "h: %s\r\n", big), 0);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    assert_int_equal(mp_buffer_len(&b), 17 + 3 + 1999 + 2);
    assert_int_equal(mp_buffer_find_byte(&b, 0, '\n'), 16);
    assert_int_equal(mp_buffer_find_byte(&b, 17, '\n'), 17 + 3 + 1999 + 1);
    assert_int_equal(mp_buffer_find_byte(&b, 0, 'Z'), -1);
    mp_buffer_clear(&b);
}

static void find_across_views(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    static uint8_t data[MP_SLICE_BLOCK + 10];
    memset(data, 'a', sizeof(data));
    data[MP_SLICE_BLOCK + 5] = '\n';
    data[3] = '\n';
    assert_int_equal(mp_buffer_append_copy(&b, data, sizeof(data)), 0);
    assert_int_equal(mp_buffer_find_byte(&b, 0, '\n'), 3);
    assert_int_equal(mp_buffer_find_byte(&b, 4, '\n'), MP_SLICE_BLOCK + 5);
    assert_int_equal(mp_buffer_find_byte(&b, MP_SLICE_BLOCK + 6, '\n'), -1);
    mp_buffer_clear(&b);
}

static void linearize_counts_only_when_copying(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    uint8_t data[40000];
    pattern(data, sizeof(data), 0);
    assert_int_equal(mp_buffer_append_copy(&b, data, sizeof(data)), 0);
    uint64_t copied = mp_buffer_thread_bytes_copied();
    uint8_t *p = mp_buffer_linearize(&b, 1000);
    assert_non_null(p);
    assert_memory_equal(p, data, 1000);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied); /* already contiguous */

    mp_buffer_drain(&b, 16000); /* first view now has 384 bytes */
    p = mp_buffer_linearize(&b, 5000);
    assert_non_null(p);
    assert_memory_equal(p, data + 16000, 5000);
    assert_int_equal(mp_buffer_thread_bytes_copied() - copied, 5000);
    /* [5000 new] [11768 left of the second slice] [7232] */
    assert_int_equal(mp_buffer_view_count(&b), 3);
    assert_contents(&b, 16000, sizeof(data) - 16000);

    assert_null(mp_buffer_linearize(&b, 0));
    assert_null(mp_buffer_linearize(&b, sizeof(data)));
    /* Bigger than a block: one malloc'd slice. */
    p = mp_buffer_linearize(&b, mp_buffer_len(&b));
    assert_non_null(p);
    assert_memory_equal(p, data + 16000, sizeof(data) - 16000);
    assert_int_equal(mp_buffer_view_count(&b), 1);
    mp_buffer_clear(&b);
}

static void reserve_commit(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    struct iovec sp;
    assert_int_equal(mp_buffer_reserve(&b, 100, &sp), 0);
    assert_true(sp.iov_len >= 100);
    memcpy(sp.iov_base, "hello", 5);
    assert_int_equal(mp_buffer_commit(&b, 5), 0);
    assert_int_equal(mp_buffer_len(&b), 5);
    /* The next reserve continues in the same slice. */
    assert_int_equal(mp_buffer_reserve(&b, 10, &sp), 0);
    assert_int_equal(sp.iov_len, MP_SLICE_BLOCK - 5);
    memcpy(sp.iov_base, " world", 6);
    assert_int_equal(mp_buffer_commit(&b, 6), 0);
    assert_int_equal(mp_buffer_view_count(&b), 1);
    /* Nothing written: the reservation goes away. */
    assert_int_equal(mp_buffer_reserve(&b, MP_SLICE_BLOCK, &sp), 0);
    assert_int_equal(mp_buffer_view_count(&b), 2);
    assert_int_equal(mp_buffer_commit(&b, 0), 0);
    assert_int_equal(mp_buffer_view_count(&b), 1);
    assert_int_equal(mp_buffer_reserve(&b, 1, &sp), 0);
    assert_int_equal(mp_buffer_commit(&b, sp.iov_len + 1), MP_ERR_INVAL);
    assert_int_equal(mp_buffer_len(&b), 11);
    char out[11];
    mp_buffer_copy_out(&b, 0, out, 11);
    assert_memory_equal(out, "hello world", 11);
    /* The tail was given back: an append continues in place. */
    assert_int_equal(mp_buffer_append_copy(&b, "!", 1), 0);
    assert_int_equal(mp_buffer_view_count(&b), 1);

    /* Reservations never committed (a failed SSL_read) go away by themselves. */
    struct mp_buffer other = MP_BUFFER_INIT;
    assert_int_equal(mp_buffer_reserve(&b, MP_SLICE_BLOCK, &sp), 0); /* fresh slice */
    assert_int_equal(mp_buffer_view_count(&b), 2);
    assert_int_equal(mp_buffer_move(&other, &b), 0);
    assert_int_equal(mp_buffer_view_count(&other), 1);
    assert_int_equal(mp_buffer_len(&other), 12);
    assert_int_equal(mp_buffer_reserve(&other, 10, &sp), 0); /* tail of the same slice */
    mp_buffer_drain(&other, 1);
    assert_int_equal(mp_buffer_append_copy(&other, "?", 1), 0);
    assert_int_equal(mp_buffer_view_count(&other), 1); /* the tail came back */
    char out2[12];
    assert_int_equal(mp_buffer_copy_out(&other, 0, out2, 12), 12);
    assert_memory_equal(out2, "ello world!?", 12);
    mp_buffer_clear(&other);
    mp_buffer_clear(&b);
}

static void read_write_socketpair(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    int sz = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));

    struct mp_buffer out = MP_BUFFER_INIT, in = MP_BUFFER_INIT;
    assert_int_equal(mp_buffer_read_fd(&in, sv[1], 0), MP_ERR_AGAIN);
    assert_int_equal(mp_buffer_len(&in), 0);
    assert_int_equal(mp_buffer_write_fd(&out, sv[0]), 0);

    enum { TOTAL = 300000 };
    uint8_t *data = malloc(TOTAL);
    pattern(data, TOTAL, 0);
    assert_int_equal(mp_buffer_append_copy(&out, data, TOTAL), 0);
    size_t sent = 0, got = 0;
    int rounds = 0;
    uint64_t copied = mp_buffer_thread_bytes_copied();
    while (got < TOTAL && rounds++ < 10000) {
        if (mp_buffer_len(&out)) {
            ssize_t w = mp_buffer_write_fd(&out, sv[0]);
            assert_true(w > 0 || w == MP_ERR_AGAIN);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t r = mp_buffer_read_fd(&in, sv[1], 0);
        assert_true(r > 0 || r == MP_ERR_AGAIN);
        if (r > 0)
            got += (size_t)r;
    }
    assert_int_equal(sent, TOTAL);
    assert_int_equal(got, TOTAL);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied); /* readv/writev only */
    assert_contents(&in, 0, TOTAL);
    /* Small reads fill the last slice's tail rather than new slices. */
    mp_buffer_clear(&in);
    assert_int_equal(write(sv[0], "ab", 2), 2);
    assert_int_equal(mp_buffer_read_fd(&in, sv[1], 0), 2);
    assert_int_equal(write(sv[0], "cd", 2), 2);
    assert_int_equal(mp_buffer_read_fd(&in, sv[1], 0), 2);
    assert_int_equal(mp_buffer_view_count(&in), 1);
    char four[4];
    mp_buffer_copy_out(&in, 0, four, 4);
    assert_memory_equal(four, "abcd", 4);

    close(sv[0]);
    assert_int_equal(mp_buffer_read_fd(&in, sv[1], 0), MP_ERR_CLOSED);
    assert_int_equal(mp_buffer_len(&in), 4);
    mp_buffer_clear(&in);
    mp_buffer_clear(&out);
    close(sv[1]);
    assert_int_equal(mp_buffer_read_fd(&in, sv[1], 0), MP_ERR_IO);
    assert_int_equal(errno, EBADF);
    assert_int_equal(mp_buffer_append_copy(&out, "x", 1), 0);
    assert_int_equal(mp_buffer_write_fd(&out, sv[1]), MP_ERR_IO);
    assert_int_equal(mp_buffer_len(&out), 1);
    mp_buffer_clear(&out);
    mp_buffer_clear(&in);
    free(data);
}

/* A failing allocator: the countdown-th allocation from now on fails. */
static int countdown = -1;
static void *failing_malloc(size_t n)
{
    if (countdown == 0)
        return NULL;
    if (countdown > 0)
        countdown--;
    return malloc(n);
}
static void *failing_realloc(void *p, size_t n)
{
    if (countdown == 0)
        return NULL;
    if (countdown > 0)
        countdown--;
    return realloc(p, n);
}
static const struct mp_alloc_ops failing_ops = {failing_malloc, failing_realloc, free};

static void failing_allocator(void **state)
{
    (void)state;
    mp_slice_set_allocator(&failing_ops);
    uint8_t data[70000];
    pattern(data, sizeof(data), 0);
    int failures = 0;
    for (int k = 0; k < 40; k++) {
        struct mp_buffer a = MP_BUFFER_INIT, b = MP_BUFFER_INIT;
        countdown = -1;
        assert_int_equal(mp_buffer_append_copy(&a, data, 10), 0);
        assert_int_equal(mp_buffer_append_copy(&b, data, 10), 0);
        mp_buffer_drain(&b, 10);
        assert_int_equal(mp_buffer_append_copy(&b, data + 10, 5000), 0);
        countdown = k;
        int rc = mp_buffer_append_copy(&a, data + 10, sizeof(data) - 10);
        if (rc == 0) {
            assert_contents(&a, 0, sizeof(data));
        } else {
            failures++;
            assert_int_equal(rc, MP_ERR_NOMEM);
            assert_contents(&a, 0, 10); /* unchanged */
            /* Its tail was given back: a later append still continues in place. */
            countdown = -1;
            assert_int_equal(mp_buffer_append_copy(&a, data + 10, 10), 0);
            assert_int_equal(mp_buffer_view_count(&a), 1);
            assert_contents(&a, 0, 20);
        }
        size_t alen = mp_buffer_len(&a);
        countdown = k;
        rc = mp_buffer_move_n(&a, &b, 100);
        if (rc != 0) {
            assert_int_equal(rc, MP_ERR_NOMEM);
            assert_int_equal(mp_buffer_len(&a), alen);
            assert_int_equal(mp_buffer_len(&b), 5000);
        }
        countdown = k;
        void *p = mp_buffer_linearize(&a, MP_MIN(mp_buffer_len(&a), 20000));
        if (!p)
            assert_int_equal(mp_buffer_len(&a), alen + (rc == 0 ? 100 : 0));
        countdown = k;
        struct iovec sp;
        if (mp_buffer_reserve(&b, MP_SLICE_BLOCK, &sp) == 0)
            assert_int_equal(mp_buffer_commit(&b, 0), 0);
        countdown = -1;
        mp_buffer_clear(&a);
        mp_buffer_clear(&b);
    }
    assert_true(failures > 0);
    mp_slice_cache_trim(); /* cached blocks need no allocation */
    countdown = 0;
    assert_null(mp_slice_new(10));
    assert_null(mp_slice_new_external(data, 1, NULL, NULL));
    countdown = -1;
    mp_slice_set_allocator(NULL);
}

static void *proxy_thread(void *arg)
{
    (void)arg;
    mp_buffer_count_proxied(1000);
    mp_buffer_count_copied(7);
    struct mp_slice *s = mp_slice_new(1);
    mp_slice_unref(s); /* cached, freed at thread exit */
    return NULL;
}

static void counters_sum_threads(void **state)
{
    (void)state;
    uint64_t p0 = mp_buffer_bytes_proxied(), c0 = mp_buffer_bytes_copied();
    uint64_t mine = mp_buffer_thread_bytes_proxied();
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, proxy_thread, NULL), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    mp_buffer_count_proxied(5);
    assert_int_equal(mp_buffer_bytes_proxied() - p0, 3005);
    assert_int_equal(mp_buffer_bytes_copied() - c0, 21);
    assert_int_equal(mp_buffer_thread_bytes_proxied() - mine, 5);
    /* Exited threads' blocks are reused, so totals keep growing from there. */
    pthread_create(&t[0], NULL, proxy_thread, NULL);
    pthread_join(t[0], NULL);
    assert_int_equal(mp_buffer_bytes_proxied() - p0, 4005);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slice_refcounts),
        cmocka_unit_test(external_slice),
        cmocka_unit_test(append_copy_counts_and_fills_tail),
        cmocka_unit_test(move_is_zero_copy),
        cmocka_unit_test(move_n_splits_views),
        cmocka_unit_test(drain_releases_slices),
        cmocka_unit_test(peek_iov_and_range),
        cmocka_unit_test(shared_tail_is_claimed_once),
        cmocka_unit_test(appendf_and_find),
        cmocka_unit_test(find_across_views),
        cmocka_unit_test(linearize_counts_only_when_copying),
        cmocka_unit_test(reserve_commit),
        cmocka_unit_test(read_write_socketpair),
        cmocka_unit_test(failing_allocator),
        cmocka_unit_test(counters_sum_threads),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mp_slice_cache_trim();
    return rc;
}
