/*
 * route_retry.h: Envoy's retry_on condition names <-> enum mp_retry_on bits,
 * for the route's retry_policy and the x-envoy-retry-on /
 * x-envoy-retry-grpc-on request headers.
 */
#ifndef MP_ROUTE_RETRY_H
#define MP_ROUTE_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/route_table.h"

/**
 * Parses a comma-separated retry_on list (HTTP and gRPC names alike;
 * spaces around names are ignored). Unknown names are skipped, as Envoy
 * does; *all_known (may be NULL) says whether every name was known.
 * Returns the enum mp_retry_on bits.
 */
uint32_t mp_retry_on_parse(const char *s, size_t len, bool *all_known);

#endif
