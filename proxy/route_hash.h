/*
 * route_hash.h: the request hash for ring_hash / maglev, from a route's
 * hash_policy list, as Envoy's HashPolicyImpl computes it.
 */
#ifndef MP_ROUTE_HASH_H
#define MP_ROUTE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/route_table.h"

/** A 64-bit hash of bytes (pass mp_lb_xxhash64 from proxy/lb_hash.h with seed 0). */
typedef uint64_t (*mp_route_hash_fn)(const void *data, size_t len, uint64_t seed);

/**
 * Computes the hash key of a request. Policies run in order; each that finds
 * its input contributes (header: all values sorted and concatenated; cookie:
 * the named cookie of the "cookie" headers; source_ip: source_ip[0..len),
 * the downstream address without port; query_parameter: its first value),
 * folded as Envoy does (rotate left 1, xor). A terminal policy that produced
 * a hash ends the list. A cookie policy whose cookie is absent contributes
 * nothing (Envoy would generate one when ttl is set; that is the router's
 * job). Returns 0 with *out set, or MP_ERR_NOTFOUND when no policy produced
 * a value (the load balancer then picks as without a hash).
 */
int mp_route_hash_request(const struct mp_route *r, const struct mp_route_request *req,
                          const char *source_ip, size_t source_ip_len, mp_route_hash_fn hash,
                          uint64_t *out);

/**
 * Finds cookie `name` in a Cookie header value ("a=1; b=2"). Returns true with
 * *value and *len pointing into header.
 */
bool mp_route_cookie_find(const char *header, size_t header_len, const char *name, size_t name_len,
                          const char **value, size_t *len);

#endif
