/*
 * slice.c: refcounted byte blocks with a per-thread free list.
 */
#include "proxy/slice.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define MP_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MP_HAVE_ASAN 1
#endif
#endif
#ifdef MP_HAVE_ASAN
#include <sanitizer/asan_interface.h>
/* Cached blocks are poisoned so a stale view that reads a recycled block is
 * reported by ASan as it would be after free(). */
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum {
    SLICE_POOLED = 1u << 0,   /* MP_SLICE_BLOCK data right after the header */
    SLICE_EXTERNAL = 1u << 1, /* data owned by the caller, released by free_fn */
};

static struct mp_alloc_ops alloc_ops = {malloc, realloc, free};

/* The calling thread's free blocks, linked through free_arg. */
struct slice_cache {
    struct mp_slice *head;
    size_t count;
    int registered;
};

static _Thread_local struct slice_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

void *mp_slice_alloc_mem(size_t size)
{
    return alloc_ops.malloc_fn(size);
}

void *mp_slice_realloc_mem(void *ptr, size_t size)
{
    return alloc_ops.realloc_fn(ptr, size);
}

void mp_slice_free_mem(void *ptr)
{
    alloc_ops.free_fn(ptr);
}

void mp_slice_cache_trim(void)
{
    struct mp_slice *s = cache.head;
    while (s) {
        UNPOISON(s->data, MP_SLICE_BLOCK);
        struct mp_slice *next = s->free_arg;
        alloc_ops.free_fn(s);
        s = next;
    }
    cache.head = NULL;
    cache.count = 0;
}

size_t mp_slice_cache_count(void)
{
    return cache.count;
}

/* Thread exit: give the cached blocks back to the allocator. */
static void cache_destroy(void *unused)
{
    (void)unused;
    mp_slice_cache_trim();
}

static void cache_key_init(void)
{
    /* Without the key, blocks cached by a thread would leak at its exit;
     * caching then stays off (see cache_register). */
    if (pthread_key_create(&cache_key, cache_destroy) != 0)
        cache.registered = -1;
}

/* Returns 1 when this thread's cache will be freed at thread exit. */
static int cache_register(void)
{
    if (cache.registered)
        return cache.registered > 0;
    pthread_once(&cache_key_once, cache_key_init);
    if (cache.registered == 0)
        cache.registered = pthread_setspecific(cache_key, &cache) == 0 ? 1 : -1;
    return cache.registered > 0;
}

void mp_slice_set_allocator(const struct mp_alloc_ops *ops)
{
    mp_slice_cache_trim();
    if (ops) {
        alloc_ops = *ops;
    } else {
        alloc_ops.malloc_fn = malloc;
        alloc_ops.realloc_fn = realloc;
        alloc_ops.free_fn = free;
    }
}

static struct mp_slice *pooled_new(void)
{
    struct mp_slice *s = cache.head;
    if (s) {
        cache.head = s->free_arg;
        cache.count--;
        UNPOISON(s->data, MP_SLICE_BLOCK);
    } else {
        s = alloc_ops.malloc_fn(sizeof(*s) + MP_SLICE_BLOCK);
        if (!s)
            return NULL;
        s->data = (uint8_t *)(s + 1);
        s->cap = MP_SLICE_BLOCK;
        s->flags = SLICE_POOLED;
        s->free_fn = NULL;
    }
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->used, 0);
    s->free_arg = NULL;
    return s;
}

struct mp_slice *mp_slice_new(size_t size)
{
    if (size <= MP_SLICE_BLOCK)
        return pooled_new();
    if (size > SIZE_MAX - sizeof(struct mp_slice))
        return NULL;
    struct mp_slice *s = alloc_ops.malloc_fn(sizeof(*s) + size);
    if (!s)
        return NULL;
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->used, 0);
    s->flags = 0;
    s->cap = size;
    s->data = (uint8_t *)(s + 1);
    s->free_fn = NULL;
    s->free_arg = NULL;
    return s;
}

struct mp_slice *mp_slice_new_external(void *data, size_t len, mp_slice_free_fn free_fn, void *arg)
{
    struct mp_slice *s = alloc_ops.malloc_fn(sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refcnt, 1);
    atomic_init(&s->used, len);
    s->flags = SLICE_EXTERNAL;
    s->cap = len;
    s->data = data;
    s->free_fn = free_fn;
    s->free_arg = arg;
    return s;
}

void mp_slice_unref(struct mp_slice *s)
{
    if (!s)
        return;
    /* acq_rel: the last owner must see every other owner's writes before the
     * block is reused or freed. */
    if (atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    if (s->flags & SLICE_POOLED) {
        if (cache.count < MP_SLICE_CACHE_MAX && cache_register()) {
            s->free_arg = cache.head;
            cache.head = s;
            cache.count++;
            POISON(s->data, MP_SLICE_BLOCK);
            return;
        }
    } else if (s->flags & SLICE_EXTERNAL) {
        if (s->free_fn)
            s->free_fn(s->data, s->cap, s->free_arg);
    }
    alloc_ops.free_fn(s);
}
