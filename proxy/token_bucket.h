/*
 * token_bucket.h: a lock-free token bucket shared by every worker, as
 * Envoy's local rate limit keeps one bucket per filter config.
 *
 * The bucket holds at most max_tokens and starts full; every fill_interval
 * (counted from creation) tokens_per_fill are added, capped at max_tokens.
 * Fills are not driven by a timer: the count of whole intervals elapsed is
 * computed from a monotonic clock when a token is asked for, so an idle
 * bucket costs nothing.
 *
 * The whole state is one atomic 64-bit "debt" D, in tokens: with F the
 * number of fills so far and p = min(tokens_per_fill, max_tokens),
 *     available = min(max_tokens, F * p - D).
 * Taking n tokens moves D to max(D, F * p - max_tokens) + n with one
 * compare-and-swap, so concurrent takers never take more than is there and
 * nothing ever locks. D starts at -max_tokens (a full bucket). The 64-bit
 * counters run out after 2^62 tokens' worth of fills (centuries at any
 * realistic rate).
 *
 * The clock is injectable so tests can drive time.
 */
#ifndef MP_TOKEN_BUCKET_H
#define MP_TOKEN_BUCKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** A monotonic clock in nanoseconds; arg is the clock_arg given at init. */
typedef uint64_t (*mp_token_bucket_clock_fn)(void *arg);

struct mp_token_bucket {
    uint64_t max_tokens;
    uint64_t tokens_per_fill; /* effective: min(configured, max_tokens) */
    uint64_t fill_interval_ns;
    uint64_t start_ns;
    mp_token_bucket_clock_fn clock;
    void *clock_arg;
    _Atomic int64_t debt; /* D above */
};

/**
 * Initialises b full. clock NULL means CLOCK_MONOTONIC
 * (mp_token_bucket_monotonic_ns). Returns 0, or MP_ERR_INVAL when
 * max_tokens is 0 or above 2^32, tokens_per_fill is 0, or fill_interval_ns
 * is 0. Nothing to free.
 */
int mp_token_bucket_init(struct mp_token_bucket *b, uint64_t max_tokens, uint64_t tokens_per_fill,
                         uint64_t fill_interval_ns, mp_token_bucket_clock_fn clock,
                         void *clock_arg);

/**
 * Takes n tokens if n are available now (all or nothing). Any thread, lock
 * free. Returns true when taken; false (nothing taken) otherwise, and always
 * when n is 0 or above max_tokens.
 */
bool mp_token_bucket_try_take(struct mp_token_bucket *b, uint64_t n);

/** Tokens available now (any thread; may be stale by the time it returns). */
uint64_t mp_token_bucket_available(struct mp_token_bucket *b);

/** Nanoseconds until the next fill (1 .. fill_interval_ns). */
uint64_t mp_token_bucket_next_fill_ns(struct mp_token_bucket *b);

/** CLOCK_MONOTONIC in nanoseconds (arg unused): the default clock. */
uint64_t mp_token_bucket_monotonic_ns(void *arg);

#endif
