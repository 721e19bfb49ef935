/*
 * tls_config.h: the immutable, translated form of an Envoy TLS context
 * (DownstreamTlsContext / UpstreamTlsContext) and of an SDS Secret.
 *
 * xds/xds_translate_tls.c fills these from protos; proxy/tls_context.c turns
 * them into a BoringSSL SSL_CTX. Every byte a certificate, key or CA needs is
 * read at translation time (files included), so building a context never
 * touches the file system and a bad file is a config error, not a handshake
 * failure. A config is reference counted so that a TLS context (and through
 * it every live connection) can keep it while a newer one replaces it.
 */
#ifndef MP_TLS_CONFIG_H
#define MP_TLS_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which end of the handshake a config is for. */
enum mp_tls_side {
    MP_TLS_SERVER = 0, /* DownstreamTlsContext: we accept */
    MP_TLS_CLIENT = 1, /* UpstreamTlsContext: we connect */
};

/** Bytes loaded from a DataSource; origin names the source for messages. */
struct mp_tls_data {
    uint8_t *data; /* NUL-terminated too, so PEM can be parsed as a string */
    size_t len;
    char *origin; /* file name, or "<inline>" */
};

/** One certificate chain with its private key (PEM). */
struct mp_tls_cert {
    struct mp_tls_data chain;
    struct mp_tls_data key;
    struct mp_tls_data password; /* private key password; len 0 when none */
};

/** envoy.type.matcher.v3.StringMatcher, as needed for SAN matching. */
enum mp_tls_str_kind {
    MP_TLS_STR_EXACT,
    MP_TLS_STR_PREFIX,
    MP_TLS_STR_SUFFIX,
    MP_TLS_STR_CONTAINS,
    MP_TLS_STR_REGEX, /* whole-string match, like RE2 FullMatch */
};

struct mp_tls_str_matcher {
    enum mp_tls_str_kind kind;
    bool ignore_case; /* not for REGEX (as in Envoy) */
    char *value;      /* pattern text (the regex source for REGEX) */
    void *regex;      /* pcre2_code *, compiled; REGEX only */
};

/* SAN kinds; values follow SubjectAltNameMatcher.SanType. */
enum mp_tls_san_type {
    MP_TLS_SAN_ANY = 0, /* deprecated match_subject_alt_names: any of DNS/URI/EMAIL/IP */
    MP_TLS_SAN_EMAIL = 1,
    MP_TLS_SAN_DNS = 2,
    MP_TLS_SAN_URI = 3,
    MP_TLS_SAN_IP = 4,
};

struct mp_tls_san_matcher {
    enum mp_tls_san_type type;
    struct mp_tls_str_matcher str;
};

/** CertificateValidationContext, translated. */
struct mp_tls_validation {
    struct mp_tls_data trusted_ca; /* PEM bundle; len 0 = no chain verification */
    struct mp_tls_data crl;        /* PEM CRLs; len 0 = none */
    bool only_verify_leaf_cert_crl;
    struct mp_tls_san_matcher *sans; /* any one must match; none = no SAN check */
    size_t n_sans;
    uint8_t (*cert_hashes)[32]; /* verify_certificate_hash, SHA-256 of DER */
    size_t n_cert_hashes;
    uint8_t (*spki_hashes)[32]; /* verify_certificate_spki, SHA-256 of SPKI */
    size_t n_spki_hashes;
    bool allow_expired;        /* allow_expired_certificate */
    bool accept_untrusted;     /* trust_chain_verification: ACCEPT_UNTRUSTED */
    uint32_t max_verify_depth; /* 0 = library default */
};

/** A reference to a secret delivered by SDS (SdsSecretConfig). */
struct mp_tls_sds_ref {
    char *name;
    bool ads;       /* sds_config: {ads: {}} (or no sds_config: static secret) */
    bool is_static; /* no sds_config: look in bootstrap static_resources.secrets */
    char *cluster; /* api_config_source: first grpc_services envoy_grpc cluster, or cluster_names[0]
                    */
};

/** DownstreamTlsContext / UpstreamTlsContext, translated. */
struct mp_tls_config {
    _Atomic uint32_t refs;
    enum mp_tls_side side;
    uint16_t min_version; /* TLS1_2_VERSION etc. (0x0303); default 1.2 */
    uint16_t max_version; /* default 1.3 server, 1.2 client (Envoy's defaults) */
    char *cipher_suites;  /* ':'-joined, or NULL for Envoy's default list */
    char *ecdh_curves;    /* ':'-joined, or NULL for the default */
    char *sigalgs;        /* ':'-joined signature_algorithms, or NULL */
    char **alpn;          /* alpn_protocols, in preference order */
    size_t n_alpn;
    char *sni;                       /* upstream only: SNI to send, or NULL */
    bool allow_renegotiation;        /* upstream only */
    bool require_client_certificate; /* downstream only */
    struct mp_tls_cert *certs;       /* inline tls_certificates (chain+key loaded) */
    size_t n_certs;
    struct mp_tls_sds_ref *cert_sds; /* tls_certificate_sds_secret_configs */
    size_t n_cert_sds;
    struct mp_tls_validation *validation;  /* static validation_context, or the
                                              combined context's default; NULL = none */
    struct mp_tls_sds_ref *validation_sds; /* validation_context_sds_secret_config, or NULL */
    /* session resumption */
    bool session_tickets;       /* downstream: issue tickets (!disable_stateless...) */
    bool session_cache;         /* downstream: stateful cache (!disable_stateful...) */
    uint32_t session_timeout_s; /* 0 = library default */
    uint8_t (*ticket_keys)[80]; /* session_ticket_keys, 80 bytes each; first encrypts */
    size_t n_ticket_keys;
    struct mp_tls_sds_ref *ticket_keys_sds; /* session_ticket_keys_sds_secret_config */
    uint32_t max_session_keys; /* upstream: sessions kept for resumption; default 1, 0 = off */
};

/* Kinds of Secret (SDS resource). */
enum mp_tls_secret_kind {
    MP_TLS_SECRET_CERT = 1,
    MP_TLS_SECRET_VALIDATION = 2,
    MP_TLS_SECRET_TICKET_KEYS = 3,
    MP_TLS_SECRET_GENERIC = 4,
};

/** A translated Secret; immutable and reference counted like a config. */
struct mp_tls_secret {
    _Atomic uint32_t refs;
    char *name;
    enum mp_tls_secret_kind kind;
    struct mp_tls_cert cert;              /* CERT */
    struct mp_tls_validation *validation; /* VALIDATION */
    uint8_t (*ticket_keys)[80];           /* TICKET_KEYS */
    size_t n_ticket_keys;
    struct mp_tls_data generic; /* GENERIC */
};

/** Makes an empty config for side with Envoy's defaults, one reference; NULL on NOMEM. */
struct mp_tls_config *mp_tls_config_new(enum mp_tls_side side);

/** Takes a reference (any thread) and returns cfg. */
struct mp_tls_config *mp_tls_config_ref(struct mp_tls_config *cfg);

/** Drops a reference; the last one frees everything. NULL is a no-op. */
void mp_tls_config_unref(struct mp_tls_config *cfg);

/** Makes an empty secret with one reference; NULL on NOMEM. */
struct mp_tls_secret *mp_tls_secret_new(void);

/** Takes a reference and returns s. */
struct mp_tls_secret *mp_tls_secret_ref(struct mp_tls_secret *s);

/** Drops a reference; the last one frees everything (key bytes are wiped). NULL is a no-op. */
void mp_tls_secret_unref(struct mp_tls_secret *s);

/** Frees a validation context and everything in it. NULL is a no-op. */
void mp_tls_validation_free(struct mp_tls_validation *v);

/**
 * Makes a deep copy of v (regexes recompiled), so a merged context can own
 * its parts. Returns NULL when memory runs out.
 */
struct mp_tls_validation *mp_tls_validation_dup(const struct mp_tls_validation *v);

/** Releases the bytes of d (wiping them first) and zeroes it. */
void mp_tls_data_clear(struct mp_tls_data *d);

/** Releases what a string matcher holds. */
void mp_tls_str_matcher_clear(struct mp_tls_str_matcher *m);

/**
 * Compiles pattern into m for kind (a REGEX is compiled with PCRE2, JIT when
 * available). Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL with *err naming the
 * regex error as ": invalid regex ..." (the caller prefixes the field path).
 */
int mp_tls_str_matcher_init(struct mp_tls_str_matcher *m, enum mp_tls_str_kind kind,
                            bool ignore_case, const char *pattern, char **err);

/** Returns true when value (len bytes) matches m. */
bool mp_tls_str_match(const struct mp_tls_str_matcher *m, const char *value, size_t len);

/**
 * Returns true when one SAN of the given type matches one of v's matchers
 * (MP_TLS_SAN_ANY matchers accept every type). A validation context with no
 * SAN matchers accepts everything.
 */
bool mp_tls_san_accept(const struct mp_tls_validation *v, enum mp_tls_san_type type,
                       const char *value, size_t len);

#endif
