/* rand.c: per-thread xorshift64, one state per thread so workers share no
 * cache line and take no lock. */
#include "rand.h"

#include <sys/random.h>
#include <time.h>

uint64_t mp_rand_u64(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        if (getrandom(&s, sizeof(s), 0) != sizeof(s)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            s = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)&s;
            s *= 0x9e3779b97f4a7c15ull;
        }
        /* xorshift never leaves 0: keep the state odd. */
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}
