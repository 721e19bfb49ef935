/*
 * filter_route.h: the route a request will take, for HTTP filters that run
 * before the router and need route-level configuration (typed_per_filter_config,
 * rate_limits): the same match the router makes, on the same snapshot.
 */
#ifndef MP_FILTER_ROUTE_H
#define MP_FILTER_ROUTE_H

#include "proxy/route_table.h"

struct mp_http_stream;
struct mp_worker;
struct mp_snapshot;

/**
 * Matches the stream's request headers against its HCM's route
 * configuration (inline, or RDS by name in the stream's snapshot). *rc, when
 * not NULL, receives the configuration. Returns the route (borrowed from the
 * snapshot the stream holds), or NULL when nothing matches.
 */
const struct mp_route *mp_filter_route_match(struct mp_http_stream *s,
                                             const struct mp_route_config **rc);

/**
 * The most specific typed_per_filter_config entry named filter_name for
 * route r: the route's, else its virtual host's, else rc's. NULL when none.
 */
const struct mp_typed_config *mp_filter_route_config(const struct mp_route *r,
                                                     const struct mp_route_config *rc,
                                                     const char *filter_name);

/**
 * The cluster r routes to for the stream's request (a weighted pick is made
 * with random), as a NUL-terminated copy in out[0..cap). Returns 0 or
 * MP_ERR_NOTFOUND.
 */
int mp_filter_route_cluster(const struct mp_route *r, struct mp_http_stream *s, uint64_t random,
                            char *out, size_t cap);

/**
 * Picks a host of cluster `cluster` of snap with the cluster's load balancer
 * on worker w and copies its address string ("ip:port", "[v6]:port" or a
 * pipe path: a gRPC target) into out[0..cap). Worker thread. Returns 0,
 * MP_ERR_NOTFOUND when the cluster is unknown or has no host, or
 * MP_ERR_INVAL when out is too small.
 */
int mp_filter_cluster_target(struct mp_worker *w, const struct mp_snapshot *snap,
                             const char *cluster, char *out, size_t cap);

#endif
