/*
 * slice.h: reference-counted blocks of bytes, the unit that buffers chain.
 *
 * A slice owns `cap` bytes at `data`; `used` of them have been written. Bytes
 * below `used` never change once written, so any number of views (slice +
 * offset + length) can share them across buffers and connections. Only the
 * tail [used, cap) is writable, and only by the one view that ends at `used`
 * (see buffer.c), which lets a buffer keep appending into the last slice it
 * holds without copying or allocating.
 *
 * Slices of MP_SLICE_BLOCK bytes come from a per-thread free list, so the hot
 * path allocates without touching malloc. Bigger slices are malloc'd. The
 * reference count is atomic, so a slice may be released on a thread other
 * than the one that made it (it then lands on that thread's free list). The
 * tail may only be written by one thread at a time: the thread that holds the
 * buffer whose last view ends at `used`. Code outside buffer.c that fills a
 * slice it has shared must claim the bytes with mp_slice_claim_tail first.
 */
#ifndef MP_SLICE_H
#define MP_SLICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of a pooled slice's data area (a slice header is allocated with it). */
#define MP_SLICE_BLOCK 16384u

/* At most this many free blocks are cached per thread (4 MiB); more go to free(). */
#define MP_SLICE_CACHE_MAX 256u

/** Called when the last reference to an external slice goes (see mp_slice_new_external). */
typedef void (*mp_slice_free_fn)(void *data, size_t len, void *arg);

struct mp_slice {
    _Atomic uint32_t refcnt;
    uint32_t flags; /* internal: pooled / external */
    size_t cap;     /* bytes at data */
    /* Bytes written; [used, cap) is free tail space. Atomic because tail
     * space is claimed with a compare-and-swap (see buffer.c): two buffers
     * on two threads whose views both end at `used` cannot both win it. */
    _Atomic size_t used;
    uint8_t *data;
    mp_slice_free_fn free_fn; /* external slices only */
    void *free_arg;
};

/** Allocator hooks for slices and buffer view arrays (tests inject failures). */
struct mp_alloc_ops {
    void *(*malloc_fn)(size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
};

/**
 * Makes a slice with room for at least `size` bytes (used = 0, refcnt = 1).
 * size <= MP_SLICE_BLOCK (including 0) gives a pooled block of exactly
 * MP_SLICE_BLOCK bytes from the calling thread's free list. The caller owns
 * the reference and releases it with mp_slice_unref. Returns NULL when memory
 * runs out.
 */
struct mp_slice *mp_slice_new(size_t size);

/**
 * Wraps caller-owned memory as a read-only slice of `len` bytes (used = cap =
 * len), without copying. When the last reference goes, free_fn(data, len,
 * arg) is called (free_fn may be NULL for static data). Returns NULL when the
 * slice header cannot be allocated; free_fn is then NOT called and the caller
 * still owns data.
 */
struct mp_slice *mp_slice_new_external(void *data, size_t len, mp_slice_free_fn free_fn, void *arg);

/** Takes another reference to s and returns s. */
static inline struct mp_slice *mp_slice_ref(struct mp_slice *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}

/** Drops one reference; the last one returns the slice to the free list (or frees it). NULL is a
 * no-op. */
void mp_slice_unref(struct mp_slice *s);

/** Returns the number of bytes still free at the slice's tail. */
static inline size_t mp_slice_tail_room(const struct mp_slice *s)
{
    return s->cap - atomic_load_explicit(&s->used, memory_order_relaxed);
}

/**
 * Replaces the allocator used for slices and buffer view arrays (NULL restores
 * malloc/realloc/free). Call before any slice exists and before threads start:
 * the hooks are global and not synchronised. Empties the calling thread's
 * free list first so blocks from the old allocator are not mixed in.
 */
void mp_slice_set_allocator(const struct mp_alloc_ops *ops);

/** Frees the calling thread's cached free blocks (threads also do this on exit). */
void mp_slice_cache_trim(void);

/** Returns how many free blocks the calling thread has cached (for tests and stats). */
size_t mp_slice_cache_count(void);

/**
 * Claims n bytes of s's tail for a view that ends at `end`: succeeds only when
 * `used` is still `end` (no one else appended since). Returns true and
 * advances `used` to end + n on success. n must not exceed cap - end.
 */
static inline bool mp_slice_claim_tail(struct mp_slice *s, size_t end, size_t n)
{
    size_t expect = end;
    return atomic_compare_exchange_strong_explicit(&s->used, &expect, end + n, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/** Allocates through the current allocator (slice.c and buffer.c only); NULL on failure. */
void *mp_slice_alloc_mem(size_t size);

/** Reallocates through the current allocator; NULL on failure (ptr is then kept). */
void *mp_slice_realloc_mem(void *ptr, size_t size);

/** Frees memory from mp_slice_alloc_mem/mp_slice_realloc_mem. */
void mp_slice_free_mem(void *ptr);

#endif
