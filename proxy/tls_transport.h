/*
 * tls_transport.h: one connection's TLS engine, with no sockets inside.
 *
 * The connection code owns the socket. It reads ciphertext into an
 * mp_buffer and hands it over with mp_tls_transport_feed (slice references
 * move, no copy), calls mp_tls_transport_read to get plaintext (decrypted
 * straight into fresh slices of the caller's buffer, so plaintext then moves
 * on by reference), gives plaintext to mp_tls_transport_write, and sends
 * whatever mp_tls_transport_take_output hands back. Nothing blocks: a call
 * that needs more ciphertext returns MP_ERR_AGAIN.
 *
 * Typical loop (server or client):
 *
 *     on readable:  mp_buffer_read_fd(&raw, fd, 0); mp_tls_transport_feed(t, &raw);
 *                   if (!mp_tls_transport_handshake_done(t)) rc = mp_tls_transport_handshake(t);
 *                   then while ((n = mp_tls_transport_read(t, &plain)) > 0) ...;
 *     always after: mp_tls_transport_take_output(t, &out); write out to fd.
 *
 * A transport is used by one thread at a time. It holds a reference to its
 * mp_tls_context, so the context may be swapped for new connections at any
 * time.
 */
#ifndef MP_TLS_TRANSPORT_H
#define MP_TLS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/buffer.h"
#include "proxy/tls_context.h"

struct ssl_st; /* SSL */
struct mp_tls_transport;
struct mp_tls_session_cache;

/** Per-connection choices; every field may be left zero. */
struct mp_tls_transport_opts {
    const char *sni;         /* client: overrides the config's sni (auto_sni) */
    const char *const *alpn; /* client: overrides the config's ALPN list */
    size_t n_alpn;
    struct mp_tls_stats *stats;            /* where to count; NULL = the context's own */
    struct mp_tls_session_cache *sessions; /* client: resumption cache, or NULL */
};

/** Verified identity of the peer, filled when the handshake completes. */
struct mp_tls_peer {
    bool presented;  /* the peer sent a certificate */
    bool verified;   /* ...and it passed the validation context (false when none configured) */
    char **uri_sans; /* e.g. "spiffe://cluster.local/ns/default/sa/web" */
    size_t n_uri_sans;
    char **dns_sans;
    size_t n_dns_sans;
    char *subject;   /* RFC 2253 form, e.g. "CN=web,O=mesh", or NULL */
    char *issuer;    /* RFC 2253 form, or NULL */
    char *serial;    /* lowercase hex, or NULL */
    char sha256[65]; /* hex digest of the DER certificate; "" when none */
};

/**
 * Makes a transport for one connection using ctx (a reference is taken).
 * The side (server/client) comes from ctx. Returns 0 and *out, or
 * MP_ERR_NOMEM / MP_ERR_INVAL (an SNI or ALPN the library refuses).
 */
int mp_tls_transport_new(struct mp_tls_context *ctx, const struct mp_tls_transport_opts *opts,
                         struct mp_tls_transport **out);

/** Frees the transport, its SSL and buffers, and drops its context reference. NULL is a no-op. */
void mp_tls_transport_free(struct mp_tls_transport *t);

/**
 * Takes all ciphertext in cipher (read from the socket) by moving its slice
 * references; cipher ends empty. Returns 0 or MP_ERR_NOMEM (cipher unchanged).
 */
int mp_tls_transport_feed(struct mp_tls_transport *t, struct mp_buffer *cipher);

/** Copies len ciphertext bytes in (for callers that hold plain arrays). Returns 0 or MP_ERR_NOMEM.
 */
int mp_tls_transport_feed_bytes(struct mp_tls_transport *t, const void *data, size_t len);

/** Tells the transport the peer closed its write side (TCP FIN): pending reads end. */
void mp_tls_transport_feed_eof(struct mp_tls_transport *t);

/**
 * Advances the handshake with the ciphertext fed so far. Returns 0 when the
 * handshake is complete (also on later calls), MP_ERR_AGAIN when more
 * ciphertext is needed (check mp_tls_transport_take_output: there may be a
 * flight to send), or MP_ERR_PROTO when it failed (the reason is in
 * mp_tls_transport_error; an alert may be waiting in the output; the failure
 * has been counted).
 */
int mp_tls_transport_handshake(struct mp_tls_transport *t);

/** Returns true once the handshake has completed. */
bool mp_tls_transport_handshake_done(const struct mp_tls_transport *t);

/**
 * Decrypts as much plaintext as the fed ciphertext holds into plain (appended
 * in fresh slices; no extra copy). Drives the handshake first if needed.
 * Returns the number of bytes appended (> 0), MP_ERR_AGAIN when no whole
 * record is available, MP_ERR_CLOSED when the peer sent close_notify (or EOF
 * was fed), MP_ERR_PROTO on a TLS error, or MP_ERR_NOMEM.
 */
ssize_t mp_tls_transport_read(struct mp_tls_transport *t, struct mp_buffer *plain);

/**
 * Encrypts plaintext from the front of plain and drains what it took; the
 * records go to the output. Views under 4 KiB are gathered into full records
 * (many small HTTP/2 frames cost one record, not one each); larger views are
 * encrypted where they lie. Returns the bytes consumed (all of plain unless an
 * error), MP_ERR_AGAIN when the handshake is not complete yet (nothing
 * consumed), MP_ERR_PROTO, MP_ERR_CLOSED after shutdown, or MP_ERR_NOMEM.
 */
ssize_t mp_tls_transport_write(struct mp_tls_transport *t, struct mp_buffer *plain);

/** Like mp_tls_transport_write for a byte array; returns bytes consumed or an error. */
ssize_t mp_tls_transport_write_bytes(struct mp_tls_transport *t, const void *data, size_t len);

/**
 * Moves all pending ciphertext (handshake flights, records, alerts,
 * close_notify) to the end of out by reference. Returns the number of bytes
 * moved (0 when none) or MP_ERR_NOMEM.
 */
ssize_t mp_tls_transport_take_output(struct mp_tls_transport *t, struct mp_buffer *out);

/** Returns the number of ciphertext bytes waiting to be taken. */
size_t mp_tls_transport_pending_output(const struct mp_tls_transport *t);

/**
 * Queues a close_notify alert in the output (once). Returns 0, or
 * MP_ERR_PROTO when the handshake never completed (nothing to close cleanly).
 */
int mp_tls_transport_shutdown(struct mp_tls_transport *t);

/** Returns true once the peer's close_notify has been read. */
bool mp_tls_transport_peer_closed(const struct mp_tls_transport *t);

/** Negotiated ALPN protocol ("h2", ...) or NULL; valid for the transport's life. */
const char *mp_tls_transport_alpn(const struct mp_tls_transport *t);

/** SNI: the one the client sent (server side) or the one we sent (client); NULL when none. */
const char *mp_tls_transport_sni(const struct mp_tls_transport *t);

/** Negotiated version ("TLSv1.3") or NULL before the handshake. */
const char *mp_tls_transport_version(const struct mp_tls_transport *t);

/** Negotiated cipher's standard name ("TLS_AES_128_GCM_SHA256") or NULL. */
const char *mp_tls_transport_cipher(const struct mp_tls_transport *t);

/** Returns true when the session was resumed. */
bool mp_tls_transport_session_reused(const struct mp_tls_transport *t);

/**
 * Returns the peer's identity (after the handshake; borrowed, valid for the
 * transport's life), or NULL before the handshake completes. URI SANs feed
 * %DOWNSTREAM_PEER_URI_SAN% and RBAC principals.
 */
const struct mp_tls_peer *mp_tls_transport_peer(const struct mp_tls_transport *t);

/** Returns the first URI SAN of the peer, or NULL: %DOWNSTREAM_PEER_URI_SAN%. */
const char *mp_tls_transport_peer_uri_san(const struct mp_tls_transport *t);

/** Returns a static description of why the handshake or a record failed, or NULL. */
const char *mp_tls_transport_error(const struct mp_tls_transport *t);

/** Returns the SSL object (borrowed) for callers that need BoringSSL directly. */
struct ssl_st *mp_tls_transport_ssl(const struct mp_tls_transport *t);

/**
 * Makes a client session cache keeping up to max sessions (Envoy's
 * max_session_keys; 0 disables resumption). One cache belongs to one thread
 * (a worker keeps one per upstream cluster), so it needs no lock. Returns
 * NULL when memory runs out.
 */
struct mp_tls_session_cache *mp_tls_session_cache_new(uint32_t max);

/** Frees the cache and the sessions in it. NULL is a no-op. */
void mp_tls_session_cache_free(struct mp_tls_session_cache *c);

#endif
