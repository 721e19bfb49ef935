/*
 * tls_inspector.h: reads a TLS ClientHello from the first bytes of a
 * connection, as Envoy's envoy.filters.listener.tls_inspector does.
 *
 * The caller peeks at the socket (recv with MSG_PEEK) and passes what it saw;
 * nothing is consumed, so the TLS transport later reads the same bytes. The
 * parser handles a ClientHello split over several records and stops at
 * Envoy's limit of 64 KiB.
 */
#ifndef MP_TLS_INSPECTOR_H
#define MP_TLS_INSPECTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Envoy's TlsInspector max_client_hello_size. */
#define MP_TLS_INSPECTOR_MAX_HELLO 65536u

/* ALPN entries kept (more are counted in n_alpn_dropped). */
#define MP_TLS_INSPECTOR_MAX_ALPN   16u
#define MP_TLS_INSPECTOR_ALPN_SPACE 512u

struct mp_client_hello {
    bool is_tls;           /* true: transport "tls"; false: "raw_buffer" */
    const char *transport; /* "tls" or "raw_buffer" (static) */
    char sni[256];         /* server_name host_name, lowercased; "" when none */
    const char *alpn[MP_TLS_INSPECTOR_MAX_ALPN]; /* point into alpn_space */
    size_t n_alpn;
    size_t n_alpn_dropped;
    char alpn_space[MP_TLS_INSPECTOR_ALPN_SPACE];
    uint16_t legacy_version; /* ClientHello.legacy_version, e.g. 0x0303 */
    bool offers_tls13;       /* supported_versions lists 0x0304 */
    size_t hello_len;        /* bytes of the ClientHello handshake message */
};

/**
 * Inspects the first len bytes of a connection. Returns:
 *   0            done: out->is_tls says whether a ClientHello was found (a
 *                first byte that is not a TLS handshake record, or a hello
 *                that does not parse, gives is_tls = false / "raw_buffer",
 *                like Envoy's tls_not_found);
 *   MP_ERR_AGAIN more bytes are needed (peek again after the next read event);
 *   MP_ERR_LIMIT the ClientHello is larger than MP_TLS_INSPECTOR_MAX_HELLO
 *                (Envoy's client_hello_too_large: close the connection).
 * out is always initialised.
 */
int mp_tls_inspect(const uint8_t *data, size_t len, struct mp_client_hello *out);

/*
 * Envoy's tls_inspector stats (listener.<addr>.tls_inspector.<name>), relaxed
 * atomic adds so workers may share one struct.
 */
struct mp_tls_inspector_stats {
    _Atomic uint64_t tls_found;
    _Atomic uint64_t tls_not_found;
    _Atomic uint64_t sni_found;
    _Atomic uint64_t sni_not_found;
    _Atomic uint64_t alpn_found;
    _Atomic uint64_t alpn_not_found;
    _Atomic uint64_t client_hello_too_large;
};

/**
 * Counts the outcome of one finished inspection (rc from mp_tls_inspect,
 * other than MP_ERR_AGAIN) in s. Does nothing for MP_ERR_AGAIN.
 */
void mp_tls_inspector_count(struct mp_tls_inspector_stats *s, int rc,
                            const struct mp_client_hello *ch);

/** Returns true when the hello offers protocol name (ALPN) p. */
bool mp_client_hello_has_alpn(const struct mp_client_hello *ch, const char *p);

#endif
