/*
 * router_match.h: matching a request against an immutable mp_route_config,
 * as Envoy's router does (virtual host by :authority, then first matching
 * route), plus the per-request helpers a matched route needs (weighted
 * cluster pick, path rewrite, redirect location).
 *
 * All functions only read the config: any number of worker threads may call
 * them at once on the same config. Nothing here allocates except a regex
 * match's per-thread pcre2 match data (see mp_regex_thread_cleanup()) and,
 * rarely, a buffer to join repeated headers.
 */
#ifndef MP_ROUTER_MATCH_H
#define MP_ROUTER_MATCH_H

#include "proxy/route_table.h"

/**
 * Finds the route for a request: the virtual host chosen by
 * mp_route_config_find_vhost(), then its first matching route.
 * Returns the route (borrowed from cfg; route->vhost is its virtual host), or
 * NULL when no virtual host or no route matches (Envoy answers 404).
 */
const struct mp_route *mp_route_config_match(const struct mp_route_config *cfg,
                                             const struct mp_route_request *req);

/**
 * Chooses the virtual host for an :authority as Envoy does: exact domain,
 * then the longest "*suffix" wildcard, then the longest "prefix*" wildcard,
 * then "*". Host comparison ignores ASCII case. The authority is tried with
 * its port first and, when that finds no domain other than "*", again
 * without the port (":80" in "foo:80"; IPv6 "[::1]:80" keeps its brackets);
 * with ignore_port_in_host_matching only the port-less form is tried.
 * Returns a borrowed vhost, or NULL when nothing matches and there is no "*".
 */
const struct mp_vhost *mp_route_config_find_vhost(const struct mp_route_config *cfg,
                                                  const char *authority, size_t len);

/**
 * First route of vh that matches req, using vh's path index. Returns NULL
 * when none matches. Same answer as mp_vhost_match_linear(), faster.
 */
const struct mp_route *mp_vhost_match(const struct mp_vhost *vh,
                                      const struct mp_route_request *req);

/** First route of vh that matches req, trying every route in order. */
const struct mp_route *mp_vhost_match_linear(const struct mp_vhost *vh,
                                             const struct mp_route_request *req);

/** Whether one route's match conditions (path, headers, query, ...) hold. */
bool mp_route_matches(const struct mp_route *r, const struct mp_route_request *req);

/** Evaluates a StringMatcher on s[0..len). */
bool mp_string_match_eval(const struct mp_string_match *m, const char *s, size_t len);

/**
 * Evaluates a HeaderMatcher against the request headers, Envoy's way:
 * repeated headers are joined with ",", a missing header fails the match
 * (unless treat_missing_as_empty) except for present_match false, and
 * invert_match negates the result. Returns true on match.
 */
bool mp_header_match_eval(const struct mp_header_match *m, const struct mp_route_request *req);

/**
 * Evaluates a QueryParameterMatcher against the query string of path (the
 * first value of the named parameter, not percent-decoded, as Envoy).
 */
bool mp_query_match_eval(const struct mp_query_match *m, const char *path, size_t path_len);

/**
 * Picks a weighted cluster with a caller-supplied random number: entry i is
 * chosen when random % total_weight falls in its share, in config order.
 * Returns a borrowed entry, or NULL when the route is not weighted.
 */
const struct mp_weighted_cluster *mp_route_pick_weighted(const struct mp_route *r, uint64_t random);

/**
 * Resolves the upstream cluster name of a ROUTE action: the cluster, the
 * picked weighted cluster (with random), or the value of the cluster header
 * (first occurrence in req). *name and *len point into the config or into req.
 * Returns 0, MP_ERR_NOTFOUND when a cluster header is missing or empty (Envoy
 * then answers cluster_not_found_code), MP_ERR_INVAL when r does not route.
 */
int mp_route_pick_cluster(const struct mp_route *r, const struct mp_route_request *req,
                          uint64_t random, const char **name, size_t *len);

/**
 * Applies the route's prefix_rewrite or regex_rewrite to path (the request's
 * :path with query) into out[0..cap), NUL-terminated: prefix_rewrite
 * replaces the matched prefix (the whole path for a path match); regex_rewrite
 * replaces every match in the path minus the query, keeping the query.
 * *out_len gets the rewritten length (the needed length, without the NUL,
 * when cap is too small). Returns 0, MP_ERR_NOTFOUND when the route has no
 * rewrite (keep the path), MP_ERR_LIMIT when cap is too small, MP_ERR_INVAL
 * on a regex failure (e.g. match limit hit).
 */
int mp_route_rewrite_path(const struct mp_route *r, const char *path, size_t path_len, char *out,
                          size_t cap, size_t *out_len);

/**
 * Builds the Location of a REDIRECT route for req into out[0..cap),
 * NUL-terminated, as Envoy's RedirectAction: scheme (configured, else
 * req->scheme, else "http") "://" host (host_redirect, else the request's
 * authority, whose port is dropped when port_redirect is set or when the
 * scheme changes and the port is the old scheme's default) [":" port_redirect]
 * path (path_redirect, which keeps the request's query unless it has its own;
 * else the prefix/regex rewrite of the request path; else the request path),
 * without the query when strip_query. *out_len gets the length, or when cap
 * is too small a length that is enough. Returns 0, MP_ERR_INVAL when r is
 * not a redirect (or a regex fails), MP_ERR_LIMIT when cap is too small.
 */
int mp_route_redirect_location(const struct mp_route *r, const struct mp_route_request *req,
                               char *out, size_t cap, size_t *out_len);

/**
 * Finds typed_per_filter_config for filter_name, most specific first:
 * weighted cluster (wc may be NULL), route, virtual host, route config.
 * Returns a borrowed entry or NULL.
 */
const struct mp_typed_config *mp_route_find_filter_config(const struct mp_route_config *cfg,
                                                          const struct mp_route *r,
                                                          const struct mp_weighted_cluster *wc,
                                                          const char *filter_name);

#endif
