/*
 * rbac.h: Envoy's role-based access control engine (envoy.config.rbac.v3.RBAC),
 * with no I/O in it: the HTTP filter (filters/http/rbac.c) and the network
 * filter (filters/network/rbac.c) fill an mp_rbac_request from their stream or
 * connection and ask mp_rbac_evaluate() for the verdict.
 *
 * A policy matches when one of its permissions and one of its principals
 * match. Policies are tried in lexicographic order of their names (as Envoy
 * does), so the "matched policy" reported for a verdict is stable.
 *   ALLOW: allowed iff some policy matches;
 *   DENY:  allowed iff no policy matches;
 *   LOG:   always allowed (the match is only reported).
 *
 * Header matchers reuse the route module's HeaderMatcher and StringMatcher
 * (proxy/router_match.h), so RBAC and routing agree on every matcher detail
 * (repeated headers joined with ",", invert_match, regex full match, ...).
 *
 * A translated mp_rbac is immutable: any number of worker threads may
 * evaluate it at once without locks.
 */
#ifndef MP_RBAC_H
#define MP_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "envoy/config/rbac/v3/rbac.pb-c.h"

struct mp_route_request;
struct mp_tls_peer;
struct mp_rbac;

enum mp_rbac_action {
    MP_RBAC_ALLOW = 0,
    MP_RBAC_DENY = 1,
    MP_RBAC_LOG = 2,
};

/**
 * What the engine looks at. HTTP fields are NULL for a network filter: then
 * header matchers see an empty header list (as Envoy's network RBAC does) and
 * url_path never matches.
 */
struct mp_rbac_request {
    const struct mp_route_request *http;  /* headers (pseudo-headers included), :path; or NULL */
    const struct sockaddr *direct_remote; /* the physical peer; NULL = unknown (IP rules fail) */
    const struct sockaddr *remote;        /* downstream remote address (e.g. from x-forwarded-for);
                                             NULL = direct_remote */
    const struct sockaddr *local;         /* destination address (SO_ORIGINAL_DST when restored) */
    const char *sni;                      /* requested server name, or NULL */
    const struct mp_tls_peer *peer;       /* NULL when the connection is not TLS */
};

/** The verdict of one evaluation. */
struct mp_rbac_result {
    bool allowed;
    bool matched;       /* a policy matched */
    const char *policy; /* the first matching policy's name (borrowed from the engine), or NULL */
};

/**
 * Translates an RBAC message into a new engine (free with mp_rbac_free); it
 * keeps no pointer into pb. Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL with
 * *err naming the field at fault relative to the RBAC message, e.g.
 * `policies["p"].permissions[0].metadata: metadata matchers are not
 * supported`. Rejected (never silently ignored, since ignoring an
 * authorization rule changes who gets in): metadata, filter_state, matcher,
 * uri_template, policy condition / checked_condition, bad CIDR ranges.
 */
int mp_rbac_from_proto(const Envoy__Config__Rbac__V3__RBAC *pb, struct mp_rbac **out, char **err);

/** Frees an engine and everything it owns. NULL is a no-op. */
void mp_rbac_free(struct mp_rbac *r);

/** The engine's action. */
enum mp_rbac_action mp_rbac_action(const struct mp_rbac *r);

/** Number of policies of the engine. */
size_t mp_rbac_policy_count(const struct mp_rbac *r);

/**
 * True when some policy of r looks at the TLS identity of the connection
 * (an authenticated principal or a requested_server_name permission), so it
 * cannot be decided before the TLS handshake.
 */
bool mp_rbac_uses_tls_identity(const struct mp_rbac *r);

/**
 * Evaluates req against r and fills *res. Only reads r and req; allocates
 * nothing except what a header regex match needs (see router_match.h).
 * Returns res->allowed.
 */
bool mp_rbac_evaluate(const struct mp_rbac *r, const struct mp_rbac_request *req,
                      struct mp_rbac_result *res);

/**
 * Joins an Envoy stat prefix and a suffix as Envoy's statPrefixJoin does: a
 * '.' goes between them unless prefix is empty or already ends with one.
 * Writes into out[0..cap), NUL-terminated. Returns the length, or
 * MP_ERR_LIMIT when cap is too small.
 */
int mp_rbac_stat_prefix_join(const char *prefix, const char *suffix, char *out, size_t cap);

#endif
