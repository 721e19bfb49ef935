/*
 * ads_backoff.c: jittered exponential backoff (the "equal jitter" variant:
 * half the ceiling fixed, half random, so a delay is never near zero).
 */
#include "ads_backoff.h"

#include <time.h>

#define DEFAULT_BASE_MS 500
#define DEFAULT_MAX_MS  30000

void mp_backoff_init(struct mp_backoff *b, int64_t base_ms, int64_t max_ms, uint64_t seed)
{
    if (base_ms <= 0)
        base_ms = DEFAULT_BASE_MS;
    if (max_ms < base_ms)
        max_ms = base_ms > DEFAULT_MAX_MS ? base_ms : DEFAULT_MAX_MS;
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)b;
    }
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

int64_t mp_backoff_next(struct mp_backoff *b)
{
    int64_t ceiling = b->base_ms;
    for (unsigned i = 0; i < b->attempt && ceiling < b->max_ms; i++)
        ceiling *= 2;
    if (ceiling > b->max_ms)
        ceiling = b->max_ms;
    if (ceiling < b->max_ms)
        b->attempt++;
    int64_t half = ceiling / 2;
    int64_t span = ceiling - half + 1;
    int64_t d = half + (int64_t)(xorshift64(&b->rng) % (uint64_t)span);
    return d > 0 ? d : 1;
}

void mp_backoff_reset(struct mp_backoff *b)
{
    b->attempt = 0;
}
