/* tls_context.c: mp_tls_config + secrets -> shared BoringSSL SSL_CTX(s). */
#include "proxy/tls_context.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "proxy/mp_common.h"
#include "proxy/tls_internal.h"

/* Envoy's default cipher list (non-FIPS) for TLS 1.2; TLS 1.3 suites are fixed. */
#define DEFAULT_CIPHERS                                                                            \
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]:"                               \
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define DEFAULT_CURVES "X25519:P-256"

struct mp_tls_context {
    _Atomic uint32_t refs;
    struct mp_tls_config *cfg;
    /* One SSL_CTX per local certificate (a server picks one by SNI); at least one. */
    SSL_CTX **ssl_ctx;
    size_t n_ssl_ctx;
    char ***cert_names; /* per SSL_CTX: lowercased DNS SANs (or CN) of its cert */
    size_t *n_cert_names;
    struct mp_tls_validation *validation; /* merged; owned; NULL = no peer verification */
    uint8_t (*ticket_keys)[80];
    size_t n_ticket_keys;
    int64_t expiry;
    struct mp_tls_stats stats;
};

/* ---- stats --------------------------------------------------------------- */

static _Atomic uint64_t *stat_cell(const struct mp_tls_stats *s, unsigned i)
{
    _Atomic uint64_t *cells[MP_TLS_STATS_COUNT] = {
        (_Atomic uint64_t *)&s->handshake,
        (_Atomic uint64_t *)&s->connection_error,
        (_Atomic uint64_t *)&s->fail_verify_error,
        (_Atomic uint64_t *)&s->fail_verify_san,
        (_Atomic uint64_t *)&s->fail_verify_cert_hash,
        (_Atomic uint64_t *)&s->fail_verify_no_cert,
        (_Atomic uint64_t *)&s->no_certificate,
        (_Atomic uint64_t *)&s->session_reused,
    };
    return i < MP_TLS_STATS_COUNT ? cells[i] : NULL;
}

uint64_t mp_tls_stats_get(const struct mp_tls_stats *s, unsigned i)
{
    _Atomic uint64_t *c = stat_cell(s, i);
    return c != NULL ? atomic_load_explicit(c, memory_order_relaxed) : 0;
}

void mp_tls_stats_merge(struct mp_tls_stats *dst, const struct mp_tls_stats *src)
{
    for (unsigned i = 0; i < MP_TLS_STATS_COUNT; i++)
        atomic_fetch_add_explicit(stat_cell(dst, i), mp_tls_stats_get(src, i),
                                  memory_order_relaxed);
}

/* ---- SANs ---------------------------------------------------------------- */

bool mp_tls_foreach_san(X509 *x, bool (*fn)(enum mp_tls_san_type, const char *, size_t, void *),
                        void *arg)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names == NULL)
        return true;
    bool go_on = true;
    for (size_t i = 0; go_on && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const ASN1_STRING *s;
        enum mp_tls_san_type type;
        switch (gn->type) {
        case GEN_DNS: type = MP_TLS_SAN_DNS, s = gn->d.dNSName; break;
        case GEN_URI: type = MP_TLS_SAN_URI, s = gn->d.uniformResourceIdentifier; break;
        case GEN_EMAIL: type = MP_TLS_SAN_EMAIL, s = gn->d.rfc822Name; break;
        case GEN_IPADD: {
            char text[INET6_ADDRSTRLEN];
            s = gn->d.iPAddress;
            int len = ASN1_STRING_length(s);
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af != 0 && inet_ntop(af, ASN1_STRING_get0_data(s), text, sizeof(text)) != NULL)
                go_on = fn(MP_TLS_SAN_IP, text, strlen(text), arg);
            continue;
        }
        default: continue;
        }
        go_on =
            fn(type, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), arg);
    }
    GENERAL_NAMES_free(names);
    return go_on;
}

struct san_check {
    const struct mp_tls_validation *v;
    bool matched;
};

static bool san_check_one(enum mp_tls_san_type type, const char *value, size_t len, void *arg)
{
    struct san_check *sc = arg;
    if (mp_tls_san_accept(sc->v, type, value, len)) {
        sc->matched = true;
        return false;
    }
    return true;
}

/* ---- peer verification --------------------------------------------------- */

static int allow_expired_cb(int ok, X509_STORE_CTX *sctx)
{
    int e = X509_STORE_CTX_get_error(sctx);
    if (!ok && (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID))
        return 1;
    return ok;
}

static bool hash_matches(const struct mp_tls_validation *v, X509 *leaf)
{
    if (v->n_cert_hashes == 0 && v->n_spki_hashes == 0)
        return true;
    uint8_t md[32];
    uint8_t *der = NULL;
    int len = i2d_X509(leaf, &der);
    if (len > 0) {
        SHA256(der, (size_t)len, md);
        for (size_t i = 0; i < v->n_cert_hashes; i++)
            if (memcmp(md, v->cert_hashes[i], 32) == 0) {
                OPENSSL_free(der);
                return true;
            }
    }
    OPENSSL_free(der);
    der = NULL;
    EVP_PKEY *pk = X509_get_pubkey(leaf);
    len = pk != NULL ? i2d_PUBKEY(pk, &der) : 0;
    EVP_PKEY_free(pk);
    bool ok = false;
    if (len > 0) {
        SHA256(der, (size_t)len, md);
        for (size_t i = 0; !ok && i < v->n_spki_hashes; i++)
            ok = memcmp(md, v->spki_hashes[i], 32) == 0;
    }
    OPENSSL_free(der);
    return ok;
}

/* Replaces X509_verify_cert for the handshake: chain, then SANs, then hashes
 * (Envoy's order), counting the reason a peer is refused. */
static int cert_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
    struct mp_tls_context *ctx = arg;
    const struct mp_tls_validation *v = ctx->validation;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct mp_tls_conn_state *cs = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    struct mp_tls_stats *st = cs != NULL && cs->stats != NULL ? cs->stats : &ctx->stats;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
    if (leaf == NULL || v == NULL)
        return v == NULL;

    bool chain_ok = true;
    if (v->trusted_ca.len > 0) {
        if (v->allow_expired)
            X509_STORE_CTX_set_verify_cb(sctx, allow_expired_cb);
        chain_ok = X509_verify_cert(sctx) == 1;
        if (!chain_ok && !v->accept_untrusted) {
            if (cs != NULL) {
                cs->verify_fail = MP_TLS_VERIFY_CHAIN;
                cs->x509_error = X509_STORE_CTX_get_error(sctx);
            }
            mp_tls_count(&st->fail_verify_error);
            return 0;
        }
    }
    struct san_check sc = {v, v->n_sans == 0};
    if (!sc.matched)
        mp_tls_foreach_san(leaf, san_check_one, &sc);
    if (!sc.matched) {
        if (cs != NULL)
            cs->verify_fail = MP_TLS_VERIFY_SAN;
        mp_tls_count(&st->fail_verify_san);
        if (!v->accept_untrusted) {
            X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
            return 0;
        }
    }
    if (!hash_matches(v, leaf)) {
        if (cs != NULL)
            cs->verify_fail = MP_TLS_VERIFY_HASH;
        mp_tls_count(&st->fail_verify_cert_hash);
        if (!v->accept_untrusted) {
            X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
            return 0;
        }
    }
    if (cs != NULL)
        cs->verified = chain_ok && sc.matched && v->trusted_ca.len > 0;
    /* ACCEPT_UNTRUSTED lets the handshake go on; the result stays in cs->verified. */
    X509_STORE_CTX_set_error(sctx, X509_V_OK);
    return 1;
}

/* ---- ALPN (server) ------------------------------------------------------- */

static int alpn_select_cb(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                          unsigned in_len, void *arg)
{
    const struct mp_tls_config *cfg = arg;
    /* The server's order decides, as in Envoy. */
    for (size_t i = 0; i < cfg->n_alpn; i++) {
        size_t plen = strlen(cfg->alpn[i]);
        for (unsigned off = 0; off < in_len;) {
            unsigned l = in[off];
            if (off + 1 + l > in_len)
                break;
            if (l == plen && memcmp(in + off + 1, cfg->alpn[i], plen) == 0) {
                *out = in + off + 1;
                *out_len = (uint8_t)l;
                return SSL_TLSEXT_ERR_OK;
            }
            off += 1 + l;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* ---- session tickets (server, configured keys) --------------------------- */

/* Envoy's 80-byte key: name[16] | hmac[32] | aes[32]. */
static int ticket_key_cb(SSL *ssl, uint8_t *key_name, uint8_t *iv, EVP_CIPHER_CTX *cctx,
                         HMAC_CTX *hctx, int enc)
{
    struct mp_tls_context *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (ctx == NULL || ctx->n_ticket_keys == 0)
        return -1;
    if (enc) {
        const uint8_t *k = ctx->ticket_keys[0];
        if (!RAND_bytes(iv, EVP_MAX_IV_LENGTH < 16 ? EVP_MAX_IV_LENGTH : 16))
            return -1;
        memcpy(key_name, k, 16);
        if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv) ||
            !HMAC_Init_ex(hctx, k + 16, 32, EVP_sha256(), NULL))
            return -1;
        return 1;
    }
    for (size_t i = 0; i < ctx->n_ticket_keys; i++) {
        const uint8_t *k = ctx->ticket_keys[i];
        if (memcmp(key_name, k, 16) != 0)
            continue;
        if (!HMAC_Init_ex(hctx, k + 16, 32, EVP_sha256(), NULL) ||
            !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k + 48, iv))
            return -1;
        return i == 0 ? 1 : 2; /* 2: renew the ticket under the current key */
    }
    return 0; /* unknown key: full handshake */
}

/* ---- client sessions ----------------------------------------------------- */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct mp_tls_conn_state *cs = SSL_get_app_data(ssl);
    if (cs == NULL || cs->sessions == NULL)
        return 0;
    mp_tls_session_cache_put(cs->sessions, sess);
    return 1; /* we took the reference */
}

/* ---- server certificate selection by SNI --------------------------------- */

static bool name_matches(const char *pattern, const char *host)
{
    if (strcasecmp(pattern, host) == 0)
        return true;
    /* "*.example.com" covers exactly one label, as in RFC 6125. */
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot != NULL && dot != host && strcasecmp(dot, pattern + 1) == 0;
    }
    return false;
}

static bool client_hello_sni(const SSL_CLIENT_HELLO *ch, char *out, size_t cap)
{
    const uint8_t *p;
    size_t len;
    if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_server_name, &p, &len) || len < 2)
        return false;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list + 2 > len)
        return false;
    for (size_t off = 2; off + 3 <= 2 + list;) {
        uint8_t type = p[off];
        size_t n = (size_t)p[off + 1] << 8 | p[off + 2];
        if (off + 3 + n > 2 + list)
            return false;
        if (type == 0) {
            if (n == 0 || n >= cap)
                return false;
            memcpy(out, p + off + 3, n);
            out[n] = 0;
            return memchr(out, 0, n) == NULL;
        }
        off += 3 + n;
    }
    return false;
}

static enum ssl_select_cert_result_t select_cert_cb(const SSL_CLIENT_HELLO *ch)
{
    SSL *ssl = ch->ssl;
    struct mp_tls_context *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    char sni[256];
    if (ctx == NULL || ctx->n_ssl_ctx < 2 || !client_hello_sni(ch, sni, sizeof(sni)))
        return ssl_select_cert_success;
    for (size_t i = 0; i < ctx->n_ssl_ctx; i++)
        for (size_t j = 0; j < ctx->n_cert_names[i]; j++)
            if (name_matches(ctx->cert_names[i][j], sni)) {
                if (i != 0)
                    SSL_set_SSL_CTX(ssl, ctx->ssl_ctx[i]);
                return ssl_select_cert_success;
            }
    return ssl_select_cert_success; /* no match: the first certificate */
}

/* ---- building ------------------------------------------------------------ */

static int ssl_err(char **err, const char *what)
{
    char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "unknown error");
    ERR_clear_error();
    return mp_set_err(err, "%s: %s", what, buf);
}

static bool collect_dns(enum mp_tls_san_type type, const char *value, size_t len, void *arg)
{
    void **a = arg;
    char ***names = a[0];
    size_t *n = a[1];
    if (type != MP_TLS_SAN_DNS || memchr(value, 0, len) != NULL)
        return true;
    char **nv = realloc(*names, (*n + 1) * sizeof(*nv));
    if (nv == NULL)
        return false;
    *names = nv;
    if ((nv[*n] = strndup(value, len)) == NULL)
        return false;
    (*n)++;
    return true;
}

static void note_expiry(struct mp_tls_context *ctx, X509 *x)
{
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        return;
    int64_t t = (int64_t)time(NULL) + (int64_t)days * 86400 + secs;
    if (ctx->expiry == 0 || t < ctx->expiry)
        ctx->expiry = t;
}

/* Loads a PEM chain (leaf first) and key into sctx; records names and expiry. */
static int load_cert(struct mp_tls_context *ctx, SSL_CTX *sctx, const struct mp_tls_cert *c,
                     size_t idx, char **err)
{
    int rc = 0;
    BIO *b = BIO_new_mem_buf(c->chain.data, (int)c->chain.len);
    if (b == NULL)
        return MP_ERR_NOMEM;
    X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (leaf == NULL || !SSL_CTX_use_certificate(sctx, leaf)) {
        rc = ssl_err(err, "certificate_chain");
        goto out;
    }
    note_expiry(ctx, leaf);
    X509 *extra;
    while ((extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!SSL_CTX_add0_chain_cert(sctx, extra)) {
            X509_free(extra);
            rc = ssl_err(err, "certificate_chain");
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    b = BIO_new_mem_buf(c->key.data, (int)c->key.len);
    EVP_PKEY *key =
        b != NULL
            ? PEM_read_bio_PrivateKey(b, NULL, NULL, c->password.len > 0 ? c->password.data : NULL)
            : NULL;
    if (key == NULL || !SSL_CTX_use_PrivateKey(sctx, key) || !SSL_CTX_check_private_key(sctx)) {
        EVP_PKEY_free(key);
        rc = ssl_err(err, "private_key");
        goto out;
    }
    EVP_PKEY_free(key);
    void *a[2] = {&ctx->cert_names[idx], &ctx->n_cert_names[idx]};
    if (!mp_tls_foreach_san(leaf, collect_dns, a)) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
out:
    X509_free(leaf);
    BIO_free(b);
    return rc;
}

static int load_ca(X509_STORE *store, const struct mp_tls_validation *v, char **err)
{
    BIO *b = BIO_new_mem_buf(v->trusted_ca.data, (int)v->trusted_ca.len);
    if (b == NULL)
        return MP_ERR_NOMEM;
    X509 *x;
    int n = 0;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (!ok) {
            BIO_free(b);
            return ssl_err(err, "trusted_ca");
        }
        n++;
    }
    BIO_free(b);
    ERR_clear_error();
    if (n == 0)
        return mp_set_err(err, "trusted_ca: no PEM certificate in %s", v->trusted_ca.origin);
    if (v->crl.len > 0) {
        b = BIO_new_mem_buf(v->crl.data, (int)v->crl.len);
        if (b == NULL)
            return MP_ERR_NOMEM;
        X509_CRL *crl;
        int ncrl = 0;
        while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
            int ok = X509_STORE_add_crl(store, crl);
            X509_CRL_free(crl);
            if (!ok) {
                BIO_free(b);
                return ssl_err(err, "crl");
            }
            ncrl++;
        }
        BIO_free(b);
        ERR_clear_error();
        if (ncrl == 0)
            return mp_set_err(err, "crl: no PEM CRL in %s", v->crl.origin);
        X509_STORE_set_flags(store,
                             X509_V_FLAG_CRL_CHECK |
                                 (v->only_verify_leaf_cert_crl ? 0 : X509_V_FLAG_CRL_CHECK_ALL));
    }
    /* Envoy: depth 1 allows the leaf and one CA; BoringSSL's store depth
     * counts the same way (checked in test_tls_handshake: test_verify_depth). */
    if (v->max_verify_depth > 0)
        X509_STORE_set_depth(store, (int)MP_MIN(v->max_verify_depth, (uint32_t)INT32_MAX));
    return 0;
}

/* Appends b's array to a's (Envoy's MergeFrom on repeated fields). */
static int append_hashes(uint8_t (**a)[32], size_t *na, uint8_t (*b)[32], size_t nb)
{
    if (nb == 0)
        return 0;
    uint8_t(*n)[32] = realloc(*a, (*na + nb) * 32);
    if (n == NULL)
        return MP_ERR_NOMEM;
    memcpy(n[*na], b, nb * 32);
    *a = n;
    *na += nb;
    return 0;
}

static int data_replace(struct mp_tls_data *dst, const struct mp_tls_data *src)
{
    if (src->len == 0)
        return 0;
    struct mp_tls_data d = {malloc(src->len + 1), src->len,
                            strdup(src->origin != NULL ? src->origin : "<sds>")};
    if (d.data == NULL || d.origin == NULL) {
        mp_tls_data_clear(&d);
        return MP_ERR_NOMEM;
    }
    memcpy(d.data, src->data, src->len);
    d.data[src->len] = 0;
    mp_tls_data_clear(dst);
    *dst = d;
    return 0;
}

/* Merges the SDS validation context into the static default as Envoy's
 * combined_validation_context does: singular fields overwritten, repeated
 * fields appended, booleans ORed. */
static int merge_validation(const struct mp_tls_validation *def,
                            const struct mp_tls_validation *dyn, struct mp_tls_validation **out)
{
    *out = NULL;
    if (def == NULL && dyn == NULL)
        return 0;
    struct mp_tls_validation *m = mp_tls_validation_dup(def != NULL ? def : dyn);
    if (m == NULL)
        return MP_ERR_NOMEM;
    if (def == NULL || dyn == NULL) {
        *out = m;
        return 0;
    }
    struct mp_tls_validation *d = mp_tls_validation_dup(dyn); /* for its compiled matchers */
    if (d == NULL)
        goto nomem;
    if (data_replace(&m->trusted_ca, &d->trusted_ca) != 0 || data_replace(&m->crl, &d->crl) != 0)
        goto nomem;
    if (d->n_sans > 0) {
        struct mp_tls_san_matcher *s = realloc(m->sans, (m->n_sans + d->n_sans) * sizeof(*s));
        if (s == NULL)
            goto nomem;
        memcpy(s + m->n_sans, d->sans, d->n_sans * sizeof(*s));
        m->sans = s;
        m->n_sans += d->n_sans;
        d->n_sans = 0; /* moved */
    }
    if (append_hashes(&m->cert_hashes, &m->n_cert_hashes, d->cert_hashes, d->n_cert_hashes) ||
        append_hashes(&m->spki_hashes, &m->n_spki_hashes, d->spki_hashes, d->n_spki_hashes))
        goto nomem;
    m->allow_expired |= d->allow_expired;
    m->only_verify_leaf_cert_crl |= d->only_verify_leaf_cert_crl;
    if (d->accept_untrusted)
        m->accept_untrusted = true;
    if (d->max_verify_depth != 0)
        m->max_verify_depth = d->max_verify_depth;
    mp_tls_validation_free(d);
    *out = m;
    return 0;
nomem:
    mp_tls_validation_free(d);
    mp_tls_validation_free(m);
    return MP_ERR_NOMEM;
}

static int alpn_wire(char **protos, size_t n, uint8_t **out, size_t *out_len)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += 1 + strlen(protos[i]);
    uint8_t *w = malloc(len + 1), *p = w;
    if (w == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);
        *p++ = (uint8_t)l;
        memcpy(p, protos[i], l);
        p += l;
    }
    *out = w;
    *out_len = len;
    return 0;
}

/* Builds one SSL_CTX with everything but the local certificate. */
static int build_ssl_ctx(struct mp_tls_context *ctx, const uint8_t sid[32], SSL_CTX **out,
                         char **err)
{
    const struct mp_tls_config *cfg = ctx->cfg;
    bool server = cfg->side == MP_TLS_SERVER;
    SSL_CTX *s = SSL_CTX_new(TLS_method());
    if (s == NULL)
        return MP_ERR_NOMEM;
    int rc = 0;
    SSL_CTX_set_app_data(s, ctx);
    if (!SSL_CTX_set_min_proto_version(s, cfg->min_version) ||
        !SSL_CTX_set_max_proto_version(s, cfg->max_version)) {
        rc = ssl_err(err, "tls_params");
        goto fail;
    }
    if (!SSL_CTX_set_strict_cipher_list(s, cfg->cipher_suites ? cfg->cipher_suites
                                                              : DEFAULT_CIPHERS)) {
        rc = ssl_err(err, "tls_params.cipher_suites");
        goto fail;
    }
    if (!SSL_CTX_set1_curves_list(s, cfg->ecdh_curves ? cfg->ecdh_curves : DEFAULT_CURVES)) {
        rc = ssl_err(err, "tls_params.ecdh_curves");
        goto fail;
    }
    if (cfg->sigalgs != NULL && !SSL_CTX_set1_sigalgs_list(s, cfg->sigalgs)) {
        rc = ssl_err(err, "tls_params.signature_algorithms");
        goto fail;
    }
    /* Records go out as soon as they are written: the transport batches. */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);

    const struct mp_tls_validation *v = ctx->validation;
    if (v != NULL) {
        if (v->trusted_ca.len > 0 && (rc = load_ca(SSL_CTX_get_cert_store(s), v, err)) != 0)
            goto fail;
        int mode = SSL_VERIFY_PEER;
        if (server && cfg->require_client_certificate)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(s, mode, NULL);
        SSL_CTX_set_cert_verify_callback(s, cert_verify_cb, ctx);
    } else {
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
    }

    if (server) {
        if (cfg->n_alpn > 0)
            SSL_CTX_set_alpn_select_cb(s, alpn_select_cb, ctx->cfg);
        SSL_CTX_set_select_certificate_cb(s, select_cert_cb);
        if (!SSL_CTX_set_session_id_context(s, sid, 32)) {
            rc = ssl_err(err, "session_id_context");
            goto fail;
        }
        SSL_CTX_set_session_cache_mode(s, cfg->session_cache ? SSL_SESS_CACHE_SERVER
                                                             : SSL_SESS_CACHE_OFF);
        if (!cfg->session_tickets)
            SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
        else if (ctx->n_ticket_keys > 0)
            SSL_CTX_set_tlsext_ticket_key_cb(s, ticket_key_cb);
        if (cfg->session_timeout_s > 0) {
            SSL_CTX_set_timeout(s, cfg->session_timeout_s);
            SSL_CTX_set_session_psk_dhe_timeout(s, cfg->session_timeout_s);
        }
    } else {
        if (cfg->n_alpn > 0) {
            uint8_t *w;
            size_t wl;
            if ((rc = alpn_wire(cfg->alpn, cfg->n_alpn, &w, &wl)) != 0)
                goto fail;
            int bad = SSL_CTX_set_alpn_protos(s, w, wl); /* 0 on success */
            free(w);
            if (bad) {
                rc = ssl_err(err, "alpn_protocols");
                goto fail;
            }
        }
        if (cfg->max_session_keys > 0) {
            SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
            SSL_CTX_sess_set_new_cb(s, new_session_cb);
        } else {
            SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
        }
    }
    *out = s;
    return 0;
fail:
    SSL_CTX_free(s);
    return rc;
}

static void context_free(struct mp_tls_context *ctx)
{
    for (size_t i = 0; i < ctx->n_ssl_ctx; i++) {
        SSL_CTX_free(ctx->ssl_ctx[i]);
        for (size_t j = 0; j < ctx->n_cert_names[i]; j++)
            free(ctx->cert_names[i][j]);
        free(ctx->cert_names[i]);
    }
    free(ctx->ssl_ctx);
    free(ctx->cert_names);
    free(ctx->n_cert_names);
    mp_tls_validation_free(ctx->validation);
    if (ctx->ticket_keys != NULL) {
        volatile uint8_t *p = (uint8_t *)ctx->ticket_keys;
        for (size_t i = 0; i < ctx->n_ticket_keys * 80; i++)
            p[i] = 0;
        free(ctx->ticket_keys);
    }
    mp_tls_config_unref(ctx->cfg);
    free(ctx);
}

static const struct mp_tls_secret *find_secret(mp_tls_secret_lookup_fn lookup, void *arg,
                                               const struct mp_tls_sds_ref *ref,
                                               enum mp_tls_secret_kind kind, const char *field,
                                               int *rc, char **err)
{
    const struct mp_tls_secret *s = lookup != NULL ? lookup(arg, ref->name) : NULL;
    if (s == NULL) {
        mp_set_err(err, "%s: secret \"%s\" is not available yet", field, ref->name);
        *rc = MP_ERR_NOTFOUND;
    } else if (s->kind != kind) {
        *rc = mp_set_err(err, "%s: secret \"%s\" is of the wrong kind", field, ref->name);
        s = NULL;
    }
    return s;
}

/* A session made under one context is not resumed under another: derive the
 * session id context from what decides who may connect. */
static void session_id_context(const struct mp_tls_context *ctx,
                               const struct mp_tls_cert *const *certs, size_t n, uint8_t sid[32])
{
    SHA256_CTX h;
    SHA256_Init(&h);
    for (size_t i = 0; i < n; i++)
        SHA256_Update(&h, certs[i]->chain.data, certs[i]->chain.len);
    const struct mp_tls_validation *v = ctx->validation;
    if (v != NULL) {
        SHA256_Update(&h, v->trusted_ca.data, v->trusted_ca.len);
        for (size_t i = 0; i < v->n_sans; i++) {
            uint8_t t[2] = {(uint8_t)v->sans[i].type, (uint8_t)v->sans[i].str.kind};
            SHA256_Update(&h, t, 2);
            SHA256_Update(&h, v->sans[i].str.value, strlen(v->sans[i].str.value) + 1);
        }
        SHA256_Update(&h, v->cert_hashes, v->n_cert_hashes * 32);
        SHA256_Update(&h, v->spki_hashes, v->n_spki_hashes * 32);
    }
    SHA256_Final(sid, &h);
}

int mp_tls_context_new(struct mp_tls_config *cfg, mp_tls_secret_lookup_fn lookup, void *arg,
                       struct mp_tls_context **out, char **err)
{
    *out = NULL;
    struct mp_tls_context *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return MP_ERR_NOMEM;
    atomic_init(&ctx->refs, 1);
    ctx->cfg = mp_tls_config_ref(cfg);
    int rc = 0;
    const struct mp_tls_cert **certs = NULL;

    /* Resolve SDS references. */
    size_t n_certs = cfg->n_certs > 0 ? cfg->n_certs : cfg->n_cert_sds;
    certs = calloc(n_certs > 0 ? n_certs : 1, sizeof(*certs));
    if (certs == NULL) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_certs; i++) {
        if (cfg->n_certs > 0) {
            certs[i] = &cfg->certs[i];
            continue;
        }
        char field[64];
        snprintf(field, sizeof(field), "tls_certificate_sds_secret_configs[%zu]", i);
        const struct mp_tls_secret *s =
            find_secret(lookup, arg, &cfg->cert_sds[i], MP_TLS_SECRET_CERT, field, &rc, err);
        if (s == NULL)
            goto fail;
        certs[i] = &s->cert;
    }
    if (cfg->side == MP_TLS_SERVER && n_certs == 0) {
        rc = mp_set_err(err, "a server context needs a certificate");
        goto fail;
    }
    const struct mp_tls_validation *dyn = NULL;
    if (cfg->validation_sds != NULL) {
        const struct mp_tls_secret *s =
            find_secret(lookup, arg, cfg->validation_sds, MP_TLS_SECRET_VALIDATION,
                        "validation_context_sds_secret_config", &rc, err);
        if (s == NULL)
            goto fail;
        dyn = s->validation;
    }
    if ((rc = merge_validation(cfg->validation, dyn, &ctx->validation)) != 0)
        goto fail;
    if (ctx->validation != NULL && ctx->validation->trusted_ca.len == 0 &&
        !ctx->validation->accept_untrusted &&
        (ctx->validation->n_sans > 0 || cfg->require_client_certificate)) {
        rc = mp_set_err(err, "validation_context: SAN or client certificate verification "
                             "without trusted_ca is insecure and not allowed");
        goto fail;
    }
    if (cfg->n_ticket_keys > 0 || cfg->ticket_keys_sds != NULL) {
        uint8_t(*keys)[80] = cfg->ticket_keys;
        size_t n = cfg->n_ticket_keys;
        if (cfg->ticket_keys_sds != NULL) {
            const struct mp_tls_secret *s =
                find_secret(lookup, arg, cfg->ticket_keys_sds, MP_TLS_SECRET_TICKET_KEYS,
                            "session_ticket_keys_sds_secret_config", &rc, err);
            if (s == NULL)
                goto fail;
            keys = s->ticket_keys, n = s->n_ticket_keys;
        }
        if ((ctx->ticket_keys = malloc(n * 80)) == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        memcpy(ctx->ticket_keys, keys, n * 80);
        ctx->n_ticket_keys = n;
    }

    uint8_t sid[32];
    session_id_context(ctx, certs, n_certs, sid);
    size_t n_ctx = n_certs > 0 ? n_certs : 1;
    ctx->ssl_ctx = calloc(n_ctx, sizeof(*ctx->ssl_ctx));
    ctx->cert_names = calloc(n_ctx, sizeof(*ctx->cert_names));
    ctx->n_cert_names = calloc(n_ctx, sizeof(*ctx->n_cert_names));
    if (ctx->ssl_ctx == NULL || ctx->cert_names == NULL || ctx->n_cert_names == NULL) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n_ctx; i++) {
        if ((rc = build_ssl_ctx(ctx, sid, &ctx->ssl_ctx[i], err)) != 0)
            goto fail;
        ctx->n_ssl_ctx = i + 1;
        if (n_certs > 0 && (rc = load_cert(ctx, ctx->ssl_ctx[i], certs[i], i, err)) != 0) {
            mp_err_prefix(err, "tls_certificates[%zu]", i);
            goto fail;
        }
    }
    free(certs);
    *out = ctx;
    return 0;
fail:
    if (rc == MP_ERR_NOMEM && err != NULL && *err == NULL)
        mp_set_err(err, "out of memory");
    free(certs);
    context_free(ctx);
    return rc;
}

struct mp_tls_context *mp_tls_context_ref(struct mp_tls_context *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void mp_tls_context_unref(struct mp_tls_context *ctx)
{
    if (ctx != NULL && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        context_free(ctx);
}

const struct mp_tls_config *mp_tls_context_config(const struct mp_tls_context *ctx)
{
    return ctx->cfg;
}

bool mp_tls_context_is_server(const struct mp_tls_context *ctx)
{
    return ctx->cfg->side == MP_TLS_SERVER;
}

struct mp_tls_stats *mp_tls_context_stats(struct mp_tls_context *ctx)
{
    return &ctx->stats;
}

struct ssl_ctx_st *mp_tls_context_ssl_ctx(const struct mp_tls_context *ctx)
{
    return ctx->ssl_ctx[0];
}

int64_t mp_tls_context_cert_expiry(const struct mp_tls_context *ctx)
{
    return ctx->expiry;
}

bool mp_tls_context_verifies(const struct mp_tls_context *ctx)
{
    return ctx->validation != NULL;
}
