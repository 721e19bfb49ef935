/*
 * token_bucket.c: lazily filled, lock-free token bucket (see token_bucket.h
 * for the one-word state it keeps).
 */
#include "token_bucket.h"

#include <time.h>

#include "mp_common.h"

/* The counters stay well below INT64_MAX so "supply - max" and "debt + n"
 * never overflow. */
#define SUPPLY_CAP ((uint64_t)1 << 62)

uint64_t mp_token_bucket_monotonic_ns(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mp_token_bucket_init(struct mp_token_bucket *b, uint64_t max_tokens, uint64_t tokens_per_fill,
                         uint64_t fill_interval_ns, mp_token_bucket_clock_fn clock, void *clock_arg)
{
    if (max_tokens == 0 || max_tokens > ((uint64_t)1 << 32) || tokens_per_fill == 0 ||
        fill_interval_ns == 0)
        return MP_ERR_INVAL;
    b->max_tokens = max_tokens;
    /* a fill can never add more than a full bucket */
    b->tokens_per_fill = tokens_per_fill < max_tokens ? tokens_per_fill : max_tokens;
    b->fill_interval_ns = fill_interval_ns;
    b->clock = clock ? clock : mp_token_bucket_monotonic_ns;
    b->clock_arg = clock_arg;
    b->start_ns = b->clock(b->clock_arg);
    atomic_init(&b->debt, -(int64_t)max_tokens);
    return 0;
}

/* Tokens added since creation: whole intervals elapsed times tokens_per_fill. */
static int64_t supply_at(const struct mp_token_bucket *b, uint64_t now)
{
    if (now <= b->start_ns)
        return 0;
    uint64_t fills = (now - b->start_ns) / b->fill_interval_ns;
    if (fills > SUPPLY_CAP / b->tokens_per_fill)
        return (int64_t)SUPPLY_CAP;
    return (int64_t)(fills * b->tokens_per_fill);
}

static uint64_t available_at(int64_t supply, int64_t debt, uint64_t max)
{
    int64_t floor = supply - (int64_t)max;
    int64_t base = debt > floor ? debt : floor;
    return supply > base ? (uint64_t)(supply - base) : 0;
}

bool mp_token_bucket_try_take(struct mp_token_bucket *b, uint64_t n)
{
    if (n == 0 || n > b->max_tokens)
        return false;
    int64_t supply = supply_at(b, b->clock(b->clock_arg));
    int64_t floor = supply - (int64_t)b->max_tokens;
    /* Only this one word is shared and nothing else is published through it,
     * so relaxed ordering is enough: the CAS alone makes takes exclusive. */
    int64_t debt = atomic_load_explicit(&b->debt, memory_order_relaxed);
    for (;;) {
        /* tokens beyond max_tokens were never in the bucket: lift the debt to the cap */
        int64_t base = debt > floor ? debt : floor;
        if (supply - base < (int64_t)n)
            return false;
        if (atomic_compare_exchange_weak_explicit(&b->debt, &debt, base + (int64_t)n,
                                                  memory_order_relaxed, memory_order_relaxed))
            return true;
    }
}

uint64_t mp_token_bucket_available(struct mp_token_bucket *b)
{
    int64_t supply = supply_at(b, b->clock(b->clock_arg));
    return available_at(supply, atomic_load_explicit(&b->debt, memory_order_relaxed),
                        b->max_tokens);
}

uint64_t mp_token_bucket_next_fill_ns(struct mp_token_bucket *b)
{
    uint64_t now = b->clock(b->clock_arg);
    if (now < b->start_ns)
        return b->start_ns - now + b->fill_interval_ns;
    return b->fill_interval_ns - (now - b->start_ns) % b->fill_interval_ns;
}
