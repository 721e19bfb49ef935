/*
 * lb_hash.h: the hash and random functions load balancing relies on.
 *
 * xxHash64 and MurmurHash2-64 are bit-exact with Envoy's HashUtil::xxHash64
 * and MurmurHash::murmurHash2, so rings, Maglev tables and hash_policy keys
 * land requests on the same hosts Envoy would for the same hosts.
 */
#ifndef MP_LB_HASH_H
#define MP_LB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MP_MURMUR2_STD_SEED 0xc70f6907ULL

/** xxHash64 of data[0..len) with seed (Envoy uses seed 0). */
uint64_t mp_lb_xxhash64(const void *data, size_t len, uint64_t seed);

/** MurmurHash2 64-bit (the libstdc++ _Hash_bytes variant Envoy uses). */
uint64_t mp_lb_murmur2_64(const void *data, size_t len, uint64_t seed);

/** Seeds a xoroshiro128+ state from one 64-bit value (splitmix64). */
void mp_lb_rng_seed(uint64_t rng[2], uint64_t seed);

/** Next 64-bit value from a xoroshiro128+ state (per worker; not thread-safe). */
uint64_t mp_lb_random_u64(uint64_t rng[2]);

#endif
