/*
 * tls_internal.h: what tls_context.c and tls_transport.c share and nobody
 * else needs. Not for use outside proxy/tls_*.c.
 */
#ifndef MP_TLS_INTERNAL_H
#define MP_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "proxy/tls_context.h"

/* Why verification refused a peer (recorded for mp_tls_transport_error). */
enum mp_tls_verify_fail {
    MP_TLS_VERIFY_OK = 0,
    MP_TLS_VERIFY_CHAIN,   /* chain did not verify against trusted_ca */
    MP_TLS_VERIFY_SAN,     /* no SAN matched */
    MP_TLS_VERIFY_HASH,    /* certificate / SPKI hash did not match */
    MP_TLS_VERIFY_NO_CERT, /* a required certificate was not sent */
};

/*
 * Per-connection state the context's callbacks reach through SSL_get_app_data:
 * the transport embeds it as its first member.
 */
struct mp_tls_conn_state {
    struct mp_tls_context *ctx;
    struct mp_tls_stats *stats;
    struct mp_tls_session_cache *sessions; /* client resumption, or NULL */
    enum mp_tls_verify_fail verify_fail;
    int x509_error; /* X509_V_ERR_* of a chain failure */
    bool verified;  /* a validation context accepted the peer */
};

/** Relaxed increment of one counter. */
static inline void mp_tls_count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/**
 * Calls fn(type, value, len, arg) for each DNS, URI, EMAIL and IP SAN of x
 * (IPs as text); stops early when fn returns false. Returns false when fn
 * stopped it.
 */
bool mp_tls_foreach_san(X509 *x,
                        bool (*fn)(enum mp_tls_san_type type, const char *value, size_t len,
                                   void *arg),
                        void *arg);

/** Returns true when ctx verifies peers (it has a validation context). */
bool mp_tls_context_verifies(const struct mp_tls_context *ctx);

/** Client: stores a new session in the cache (takes the reference). */
void mp_tls_session_cache_put(struct mp_tls_session_cache *c, SSL_SESSION *s);

/** Client: returns a session to offer (caller owns one reference), or NULL. */
SSL_SESSION *mp_tls_session_cache_get(struct mp_tls_session_cache *c);

#endif
