/*
 * tls_xfcc.h: the x-forwarded-client-cert (XFCC) header of Envoy's HTTP
 * connection manager (forward_client_cert_details and
 * set_current_client_cert_details), built from a downstream mTLS connection.
 */
#ifndef MP_TLS_XFCC_H
#define MP_TLS_XFCC_H

struct mp_tls_transport;

/* forward_client_cert_details; the numbers are the proto enum's. */
enum mp_xfcc_mode {
    MP_XFCC_SANITIZE = 0,            /* default: never send XFCC on */
    MP_XFCC_FORWARD_ONLY = 1,        /* mTLS: forward what the client sent */
    MP_XFCC_APPEND_FORWARD = 2,      /* mTLS: append this hop's element */
    MP_XFCC_SANITIZE_SET = 3,        /* mTLS: replace with this hop's element */
    MP_XFCC_ALWAYS_FORWARD_ONLY = 4, /* forward what the client sent, mTLS or not */
};

/* set_current_client_cert_details, as bits. */
enum {
    MP_XFCC_SUBJECT = 1u << 0,
    MP_XFCC_CERT = 1u << 1,
    MP_XFCC_CHAIN = 1u << 2,
    MP_XFCC_DNS = 1u << 3,
    MP_XFCC_URI = 1u << 4,
};

/**
 * Builds this hop's XFCC element for the peer of t (a server-side transport
 * whose handshake is done), in Envoy's order: By=<each local URI SAN>;
 * Hash=<SHA-256 of the peer certificate>, then as details ask Cert="<url-encoded
 * PEM>", Chain="...", Subject="<RFC 2253>", URI=<each peer URI SAN>,
 * DNS=<each peer DNS SAN>, joined by ';'. Returns 0 and *out (malloc'd, the
 * caller frees it), MP_ERR_NOTFOUND when the peer presented no certificate,
 * or MP_ERR_NOMEM.
 */
int mp_tls_xfcc_build(const struct mp_tls_transport *t, unsigned details, char **out);

#endif
