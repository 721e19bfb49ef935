/*
 * tls_context.h: a BoringSSL SSL_CTX built from a struct mp_tls_config plus
 * the SDS secrets it names, shared by every worker.
 *
 * A context is immutable once built and reference counted. Rotation (a new
 * SDS certificate, a new config) builds a new context and swaps the pointer
 * the listener or cluster hands to NEW connections; each connection's
 * mp_tls_transport keeps a reference to the context it started with, so old
 * connections finish on the old certificates.
 *
 * Peer verification (when the config has a validation context): the chain is
 * verified against trusted_ca (unless ACCEPT_UNTRUSTED), optionally allowing
 * expired certificates, then the leaf's SANs are matched against the SAN
 * matchers and the certificate/SPKI hashes are checked. Failures are counted
 * in struct mp_tls_stats (Envoy's ssl.* names) and refuse the handshake.
 */
#ifndef MP_TLS_CONTEXT_H
#define MP_TLS_CONTEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/tls_config.h"

struct ssl_ctx_st; /* SSL_CTX */

/*
 * TLS counters, named after Envoy's `ssl.*` stats (listener.<addr>.ssl.* /
 * cluster.<name>.ssl.*). Increments are relaxed atomic adds, so one struct
 * may be shared by workers, or each worker may keep its own and the stats
 * code add them up with mp_tls_stats_merge when it renders.
 */
struct mp_tls_stats {
    _Atomic uint64_t handshake;             /* ssl.handshake: completed handshakes */
    _Atomic uint64_t connection_error;      /* ssl.connection_error: failed handshakes/records */
    _Atomic uint64_t fail_verify_error;     /* ssl.fail_verify_error: chain verification failed */
    _Atomic uint64_t fail_verify_san;       /* ssl.fail_verify_san: no SAN matched */
    _Atomic uint64_t fail_verify_cert_hash; /* ssl.fail_verify_cert_hash */
    _Atomic uint64_t fail_verify_no_cert;   /* ssl.fail_verify_no_cert: required cert missing */
    _Atomic uint64_t no_certificate;        /* ssl.no_certificate: handshakes without a peer cert */
    _Atomic uint64_t session_reused;        /* ssl.session_reused */
};

/* Names of the fields above, in order, without the "ssl." prefix. */
#define MP_TLS_STATS_NAMES                                                                         \
    {                                                                                              \
        "handshake", "connection_error", "fail_verify_error", "fail_verify_san",                   \
            "fail_verify_cert_hash", "fail_verify_no_cert", "no_certificate", "session_reused"     \
    }
#define MP_TLS_STATS_COUNT 8

/** Adds every counter of src to dst (relaxed). */
void mp_tls_stats_merge(struct mp_tls_stats *dst, const struct mp_tls_stats *src);

/** Returns counter i (0 .. MP_TLS_STATS_COUNT-1, in MP_TLS_STATS_NAMES order) of s. */
uint64_t mp_tls_stats_get(const struct mp_tls_stats *s, unsigned i);

struct mp_stats;

/**
 * Publishes the counters of s in the stats registry as "<prefix>ssl.<name>"
 * (prefix e.g. "listener.0.0.0.0_15006." or "cluster.outbound|9080||reviews.",
 * ending in '.'), read from s whenever stats are rendered. s must outlive the
 * registration: keep it with the listener or cluster (which outlives config
 * swaps), not with a context. Registering the same prefix again points the
 * names at the new s. Returns 0, MP_ERR_NOMEM or MP_ERR_INVAL.
 */
int mp_tls_stats_register(struct mp_stats *reg, const char *prefix, struct mp_tls_stats *s);

/** Finds an SDS secret by name for mp_tls_context_new; returns NULL when it is not (yet) known. */
typedef const struct mp_tls_secret *(*mp_tls_secret_lookup_fn)(void *arg, const char *name);

struct mp_tls_context;

/**
 * Builds a context from cfg (a reference is taken; cfg is not changed). The
 * SDS secrets cfg names (cert_sds, validation_sds, ticket_keys_sds) are
 * resolved through lookup(arg, name) and their bytes used now (lookup may be
 * NULL when cfg names none). A combined validation context merges the SDS one
 * into cfg->validation as Envoy does (repeated fields appended, booleans ORed).
 *
 * Returns 0 and *out (one reference, mp_tls_context_unref), MP_ERR_NOTFOUND
 * with *err naming the missing secret (the caller keeps warming), or
 * MP_ERR_INVAL / MP_ERR_NOMEM with *err set (bad PEM, key not matching the
 * certificate, unknown cipher or curve, ...).
 */
int mp_tls_context_new(struct mp_tls_config *cfg, mp_tls_secret_lookup_fn lookup, void *arg,
                       struct mp_tls_context **out, char **err);

/** Takes a reference (any thread) and returns ctx. */
struct mp_tls_context *mp_tls_context_ref(struct mp_tls_context *ctx);

/** Drops a reference; the last one frees the SSL_CTX. NULL is a no-op. */
void mp_tls_context_unref(struct mp_tls_context *ctx);

/** Returns the config the context was built from (borrowed). */
const struct mp_tls_config *mp_tls_context_config(const struct mp_tls_context *ctx);

/** Returns true for a server (downstream) context. */
bool mp_tls_context_is_server(const struct mp_tls_context *ctx);

/**
 * Returns the context's own counters, used by transports that were given no
 * stats struct of their own. Borrowed; valid while ctx is.
 */
struct mp_tls_stats *mp_tls_context_stats(struct mp_tls_context *ctx);

/** Returns the default SSL_CTX (borrowed), for callers that need BoringSSL directly. */
struct ssl_ctx_st *mp_tls_context_ssl_ctx(const struct mp_tls_context *ctx);

/**
 * Returns the not-after time (seconds since the epoch) of the soonest-expiring
 * local certificate, or 0 when the context has none: for the admin
 * /certs view and the ssl expiry gauges.
 */
int64_t mp_tls_context_cert_expiry(const struct mp_tls_context *ctx);

#endif
