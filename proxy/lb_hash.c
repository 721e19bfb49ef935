/* lb_hash.c: xxHash64, MurmurHash2-64 and the per-worker RNG. */
#include "lb_hash.h"

#include <string.h>

#define XXH_P1 0x9E3779B185EBCA87ULL
#define XXH_P2 0xC2B2AE3D27D4EB4FULL
#define XXH_P3 0x165667B19E3779F9ULL
#define XXH_P4 0x85EBCA77C2B2AE63ULL
#define XXH_P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian loads via memcpy: no alignment traps, and x86/arm64 are LE. */
static inline uint64_t read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    acc += input * XXH_P2;
    acc = rotl64(acc, 31);
    return acc * XXH_P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
    acc ^= xxh_round(0, val);
    return acc * XXH_P1 + XXH_P4;
}

uint64_t mp_lb_xxhash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    const uint8_t *end = p + len;
    uint64_t h;

    if (len >= 32) {
        const uint8_t *limit = end - 32;
        uint64_t v1 = seed + XXH_P1 + XXH_P2;
        uint64_t v2 = seed + XXH_P2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - XXH_P1;
        do {
            v1 = xxh_round(v1, read64(p));
            v2 = xxh_round(v2, read64(p + 8));
            v3 = xxh_round(v3, read64(p + 16));
            v4 = xxh_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + XXH_P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= xxh_round(0, read64(p));
        h = rotl64(h, 27) * XXH_P1 + XXH_P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)read32(p) * XXH_P1;
        h = rotl64(h, 23) * XXH_P2 + XXH_P3;
        p += 4;
    }
    while (p < end) {
        h ^= (*p) * XXH_P5;
        h = rotl64(h, 11) * XXH_P1;
        p++;
    }
    h ^= h >> 33;
    h *= XXH_P2;
    h ^= h >> 29;
    h *= XXH_P3;
    h ^= h >> 32;
    return h;
}

static inline uint64_t shift_mix(uint64_t v)
{
    return v ^ (v >> 47);
}

uint64_t mp_lb_murmur2_64(const void *data, size_t len, uint64_t seed)
{
    static const uint64_t mul = 0xc6a4a7935bd1e995ULL;
    const uint8_t *buf = data;
    const size_t len_aligned = len & ~(size_t)0x7;
    const uint8_t *end = buf + len_aligned;
    uint64_t hash = seed ^ ((uint64_t)len * mul);
    for (const uint8_t *p = buf; p != end; p += 8) {
        const uint64_t d = shift_mix(read64(p) * mul) * mul;
        hash ^= d;
        hash *= mul;
    }
    if ((len & 0x7) != 0) {
        /* The tail is read as a little-endian integer of len & 7 bytes. */
        uint64_t d = 0;
        for (size_t n = len & 0x7; n > 0; n--)
            d = (d << 8) + end[n - 1];
        hash ^= d;
        hash *= mul;
    }
    hash = shift_mix(hash) * mul;
    hash = shift_mix(hash);
    return hash;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void mp_lb_rng_seed(uint64_t rng[2], uint64_t seed)
{
    rng[0] = splitmix64(&seed);
    rng[1] = splitmix64(&seed);
    if (rng[0] == 0 && rng[1] == 0)
        rng[1] = 1; /* the all-zero state is a fixed point */
}

uint64_t mp_lb_random_u64(uint64_t rng[2])
{
    const uint64_t s0 = rng[0];
    uint64_t s1 = rng[1];
    const uint64_t result = s0 + s1;
    s1 ^= s0;
    rng[0] = rotl64(s0, 24) ^ s1 ^ (s1 << 16);
    rng[1] = rotl64(s1, 37);
    return result;
}
