/*
 * buffer_counters.c: bytes copied / bytes proxied, counted per thread.
 *
 * Each thread adds to its own block with relaxed load + store (it is the only
 * writer, so no locked instruction and no shared cache line on the hot path).
 * Blocks sit on a global list that readers sum. A block is never freed: when
 * its thread exits it is marked free and the next new thread adopts it, so
 * totals stay monotonic and the list stays as long as the most threads ever
 * alive at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "proxy/buffer.h"

struct counters {
    /* Aligned so two threads' blocks never share a cache line. */
    _Alignas(64) _Atomic uint64_t copied;
    _Atomic uint64_t proxied;
    atomic_int in_use;
    struct counters *next; /* immutable once published */
};

static _Atomic(struct counters *) all_counters;
/* Threads that could not get a block of their own share this one with RMW adds. */
static struct counters shared_block;
static _Thread_local struct counters *mine;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;

static void release_block(void *p)
{
    struct counters *c = p;
    atomic_store_explicit(&c->in_use, 0, memory_order_release);
}

static void exit_key_init(void)
{
    exit_key_ok = pthread_key_create(&exit_key, release_block) == 0;
}

static struct counters *attach(void)
{
    pthread_once(&exit_key_once, exit_key_init);
    struct counters *c;
    for (c = atomic_load_explicit(&all_counters, memory_order_acquire); c; c = c->next) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&c->in_use, &expect, 1))
            break;
    }
    if (!c) {
        /* Plain libc: the blocks outlive any test allocator. */
        c = aligned_alloc(_Alignof(struct counters), sizeof(*c));
        if (!c)
            return &shared_block;
        atomic_init(&c->copied, 0);
        atomic_init(&c->proxied, 0);
        atomic_init(&c->in_use, 1);
        struct counters *head = atomic_load_explicit(&all_counters, memory_order_relaxed);
        do {
            c->next = head;
        } while (!atomic_compare_exchange_weak_explicit(
            &all_counters, &head, c, memory_order_release, memory_order_relaxed));
    }
    if (exit_key_ok)
        pthread_setspecific(exit_key, c);
    return c;
}

static inline struct counters *my_block(void)
{
    if (!mine)
        mine = attach();
    return mine;
}

static inline void add(_Atomic uint64_t *p, uint64_t n, int shared)
{
    if (shared)
        atomic_fetch_add_explicit(p, n, memory_order_relaxed);
    else
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

void mp_buffer_count_copied(uint64_t n)
{
    struct counters *c = my_block();
    add(&c->copied, n, c == &shared_block);
}

void mp_buffer_count_proxied(uint64_t n)
{
    struct counters *c = my_block();
    add(&c->proxied, n, c == &shared_block);
}

static uint64_t sum(size_t field)
{
    uint64_t total = 0;
    struct counters *c = atomic_load_explicit(&all_counters, memory_order_acquire);
    for (; c; c = c->next)
        total += atomic_load_explicit(field ? &c->proxied : &c->copied, memory_order_relaxed);
    return total + atomic_load_explicit(field ? &shared_block.proxied : &shared_block.copied,
                                        memory_order_relaxed);
}

uint64_t mp_buffer_bytes_copied(void)
{
    return sum(0);
}

uint64_t mp_buffer_bytes_proxied(void)
{
    return sum(1);
}

uint64_t mp_buffer_thread_bytes_copied(void)
{
    return atomic_load_explicit(&my_block()->copied, memory_order_relaxed);
}

uint64_t mp_buffer_thread_bytes_proxied(void)
{
    return atomic_load_explicit(&my_block()->proxied, memory_order_relaxed);
}
