/*
 * rand.h: a fast per-thread pseudo-random source for sampling decisions
 * (fault percentages, weighted cluster picks, runtime fractions). Not for
 * anything secret: use BoringSSL's RAND_bytes for that.
 */
#ifndef MP_RAND_H
#define MP_RAND_H

#include <stdint.h>

/**
 * Returns the next 64-bit value of the calling thread's xorshift64 generator,
 * seeded from getrandom(2) on the thread's first call (from the clock and the
 * state's address when getrandom fails). Never returns 0 and never fails;
 * takes no lock, so it is fit for the request path.
 */
uint64_t mp_rand_u64(void);

#endif
