/*
 * ads_backoff.h: jittered exponential backoff for xDS stream reconnects.
 */
#ifndef MP_ADS_BACKOFF_H
#define MP_ADS_BACKOFF_H

#include <stdint.h>

struct mp_backoff {
    int64_t base_ms;
    int64_t max_ms;
    unsigned attempt;
    uint64_t rng; /* xorshift64 state, never 0 */
};

/**
 * Sets up b: delays start around base_ms and double up to max_ms. seed 0
 * picks one from the clock. base_ms <= 0 means 500, max_ms < base_ms means
 * 30000 (or base_ms if that is larger).
 */
void mp_backoff_init(struct mp_backoff *b, int64_t base_ms, int64_t max_ms, uint64_t seed);

/**
 * Returns the next delay: with ceiling = min(base_ms * 2^attempt, max_ms),
 * a uniform value in [ceiling / 2, ceiling], so that clients that lost the
 * same control plane do not come back at once, and never 0. Each call
 * doubles the ceiling until max_ms.
 */
int64_t mp_backoff_next(struct mp_backoff *b);

/** Starts over from base_ms (after the stream got a response). */
void mp_backoff_reset(struct mp_backoff *b);

#endif
