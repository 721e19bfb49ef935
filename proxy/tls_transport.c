/* tls_transport.c: per-connection TLS over the connection's own buffers. */
#include "proxy/tls_transport.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "proxy/mp_common.h"
#include "proxy/tls_internal.h"

struct mp_tls_transport {
    struct mp_tls_conn_state cs; /* first: SSL_get_app_data points here */
    SSL *ssl;
    struct mp_buffer in;  /* ciphertext fed, not yet read by BoringSSL */
    struct mp_buffer out; /* ciphertext written by BoringSSL, not yet taken */
    bool eof;
    bool handshake_done;
    bool failed;
    bool shutdown_sent;
    bool peer_closed;
    const char *error;
    char *sni;      /* client: what we sent */
    char alpn[256]; /* negotiated protocol, NUL-terminated (BoringSSL's is not) */
    struct mp_tls_peer peer;
};

struct mp_tls_session_cache {
    uint32_t max;
    uint32_t n;
    SSL_SESSION **s; /* oldest first */
};

/* ---- the BIO: BoringSSL reads t->in and writes t->out --------------------- */

/* Made on first use and kept for the process; a failed attempt is retried. */
static _Atomic(BIO_METHOD *) bio_method;

/* Copies ciphertext into BoringSSL's record buffer. Not counted in
 * bytes_copied: decryption must read every byte anyway, as the kernel copy is
 * not counted for plain connections. */
static int bio_read(BIO *b, char *dst, int len)
{
    struct mp_tls_transport *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (mp_buffer_len(&t->in) == 0) {
        if (t->eof)
            return 0;
        BIO_set_retry_read(b);
        return -1;
    }
    size_t want = MP_MIN((size_t)len, mp_buffer_len(&t->in)), got = 0;
    struct iovec iov[16];
    int n = mp_buffer_peek_iov(&t->in, iov, (int)MP_ARRAY_LEN(iov));
    for (int i = 0; i < n && got < want; i++) {
        size_t c = MP_MIN(iov[i].iov_len, want - got);
        memcpy(dst + got, iov[i].iov_base, c);
        got += c;
    }
    mp_buffer_drain(&t->in, got);
    return (int)got;
}

/* Appends records to t->out in pooled slices; they then leave by reference. */
static int bio_write(BIO *b, const char *src, int len)
{
    struct mp_tls_transport *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t done = 0;
    while (done < (size_t)len) {
        struct iovec iov;
        if (mp_buffer_reserve(&t->out, (size_t)len - done, &iov) != 0)
            return done > 0 ? (int)done : -1;
        size_t c = MP_MIN(iov.iov_len, (size_t)len - done);
        memcpy(iov.iov_base, src + done, c);
        mp_buffer_commit(&t->out, c);
        done += c;
    }
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct mp_tls_transport *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return (long)MP_MIN(mp_buffer_len(&t->in), (size_t)LONG_MAX);
    case BIO_CTRL_WPENDING: return 0;
    default: return 0;
    }
}

static BIO_METHOD *get_bio_method(void)
{
    BIO_METHOD *m = atomic_load_explicit(&bio_method, memory_order_acquire);
    if (m != NULL)
        return m;
    m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "mp_tls_buffer");
    if (m == NULL)
        return NULL;
    if (!BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return NULL;
    }
    BIO_METHOD *prev = NULL;
    if (!atomic_compare_exchange_strong(&bio_method, &prev, m)) {
        BIO_meth_free(m); /* another thread won */
        m = prev;
    }
    return m;
}

/* ---- session cache (client) ---------------------------------------------- */

struct mp_tls_session_cache *mp_tls_session_cache_new(uint32_t max)
{
    struct mp_tls_session_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->max = max;
    if (max > 0 && (c->s = calloc(max, sizeof(*c->s))) == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void mp_tls_session_cache_free(struct mp_tls_session_cache *c)
{
    if (c == NULL)
        return;
    for (uint32_t i = 0; i < c->n; i++)
        SSL_SESSION_free(c->s[i]);
    free(c->s);
    free(c);
}

void mp_tls_session_cache_put(struct mp_tls_session_cache *c, SSL_SESSION *s)
{
    if (c->max == 0) {
        SSL_SESSION_free(s);
        return;
    }
    if (c->n == c->max) {
        SSL_SESSION_free(c->s[0]);
        memmove(c->s, c->s + 1, (c->n - 1) * sizeof(*c->s));
        c->n--;
    }
    c->s[c->n++] = s;
}

SSL_SESSION *mp_tls_session_cache_get(struct mp_tls_session_cache *c)
{
    if (c == NULL || c->n == 0)
        return NULL;
    SSL_SESSION *s = c->s[c->n - 1];
    /* A TLS 1.3 ticket should be used once (it lets an observer link connections). */
    if (SSL_SESSION_should_be_single_use(s))
        c->n--;
    else
        SSL_SESSION_up_ref(s);
    return s;
}

/* ---- lifetime ------------------------------------------------------------ */

int mp_tls_transport_new(struct mp_tls_context *ctx, const struct mp_tls_transport_opts *opts,
                         struct mp_tls_transport **out)
{
    static const struct mp_tls_transport_opts none;
    *out = NULL;
    if (opts == NULL)
        opts = &none;
    BIO_METHOD *method = get_bio_method();
    if (method == NULL)
        return MP_ERR_NOMEM;
    struct mp_tls_transport *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MP_ERR_NOMEM;
    mp_buffer_init(&t->in);
    mp_buffer_init(&t->out);
    t->cs.ctx = mp_tls_context_ref(ctx);
    t->cs.stats = opts->stats != NULL ? opts->stats : mp_tls_context_stats(ctx);
    t->cs.sessions = opts->sessions;
    int rc = MP_ERR_NOMEM;
    const struct mp_tls_config *cfg = mp_tls_context_config(ctx);
    t->ssl = SSL_new(mp_tls_context_ssl_ctx(ctx));
    BIO *bio = BIO_new(method);
    if (t->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        goto fail;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio); /* the SSL owns the one reference */
    SSL_set_app_data(t->ssl, &t->cs);
    if (mp_tls_context_is_server(ctx)) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        const char *sni = opts->sni != NULL ? opts->sni : cfg->sni;
        if (sni != NULL && sni[0] != 0) {
            if ((t->sni = strdup(sni)) == NULL)
                goto fail;
            if (!SSL_set_tlsext_host_name(t->ssl, sni)) {
                rc = MP_ERR_INVAL;
                goto fail;
            }
        }
        if (opts->n_alpn > 0) {
            size_t len = 0;
            uint8_t wire[1024];
            for (size_t i = 0; i < opts->n_alpn; i++) {
                size_t l = strlen(opts->alpn[i]);
                if (l == 0 || l > 255 || len + 1 + l > sizeof(wire)) {
                    rc = MP_ERR_INVAL;
                    goto fail;
                }
                wire[len++] = (uint8_t)l;
                memcpy(wire + len, opts->alpn[i], l);
                len += l;
            }
            if (SSL_set_alpn_protos(t->ssl, wire, len) != 0) /* 0 on success */
                goto fail;
        }
        if (cfg->allow_renegotiation)
            SSL_set_renegotiate_mode(t->ssl, ssl_renegotiate_freely);
        SSL_SESSION *sess = mp_tls_session_cache_get(opts->sessions);
        if (sess != NULL) {
            SSL_set_session(t->ssl, sess); /* takes its own reference */
            SSL_SESSION_free(sess);
        }
    }
    *out = t;
    return 0;
fail:
    mp_tls_transport_free(t);
    ERR_clear_error();
    return rc;
}

static void peer_clear(struct mp_tls_peer *p)
{
    for (size_t i = 0; i < p->n_uri_sans; i++)
        free(p->uri_sans[i]);
    free(p->uri_sans);
    for (size_t i = 0; i < p->n_dns_sans; i++)
        free(p->dns_sans[i]);
    free(p->dns_sans);
    free(p->subject);
    free(p->issuer);
    free(p->serial);
    memset(p, 0, sizeof(*p));
}

void mp_tls_transport_free(struct mp_tls_transport *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    mp_buffer_clear(&t->in);
    mp_buffer_clear(&t->out);
    mp_tls_context_unref(t->cs.ctx);
    peer_clear(&t->peer);
    free(t->sni);
    free(t);
}

/* ---- input --------------------------------------------------------------- */

int mp_tls_transport_feed(struct mp_tls_transport *t, struct mp_buffer *cipher)
{
    return mp_buffer_move(&t->in, cipher);
}

int mp_tls_transport_feed_bytes(struct mp_tls_transport *t, const void *data, size_t len)
{
    return mp_buffer_append_copy(&t->in, data, len);
}

void mp_tls_transport_feed_eof(struct mp_tls_transport *t)
{
    t->eof = true;
}

/* ---- handshake ----------------------------------------------------------- */

static bool collect_san(enum mp_tls_san_type type, const char *value, size_t len, void *arg)
{
    struct mp_tls_peer *p = arg;
    char ***v;
    size_t *n;
    if (type == MP_TLS_SAN_URI)
        v = &p->uri_sans, n = &p->n_uri_sans;
    else if (type == MP_TLS_SAN_DNS)
        v = &p->dns_sans, n = &p->n_dns_sans;
    else
        return true;
    if (memchr(value, 0, len) != NULL)
        return true; /* never hand an embedded-NUL name to RBAC */
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (nv == NULL)
        return false;
    *v = nv;
    if ((nv[*n] = strndup(value, len)) == NULL)
        return false;
    (*n)++;
    return true;
}

static char *name_text(X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return NULL;
    char *s = NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        const uint8_t *p;
        size_t len;
        /* The BIO's bytes are not NUL-terminated: copy exactly len of them
         * (strndup may scan for a NUL past them; ASan strict_string_checks
         * reports that). len 0 is an empty subject, as Istio's certs have. */
        if (BIO_mem_contents(b, &p, &len) && (s = malloc(len + 1)) != NULL) {
            if (len > 0)
                memcpy(s, p, len);
            s[len] = '\0';
        }
    }
    BIO_free(b);
    return s;
}

static int fill_peer(struct mp_tls_transport *t)
{
    struct mp_tls_peer *p = &t->peer;
    X509 *x = SSL_get_peer_certificate(t->ssl);
    if (x == NULL)
        return 0;
    p->presented = true;
    /* A resumed session skips verification; it was verified when it was made,
     * under the same session id context (see tls_context.c). */
    p->verified =
        t->cs.verified || (SSL_session_reused(t->ssl) && mp_tls_context_verifies(t->cs.ctx));
    int rc = MP_ERR_NOMEM;
    if (!mp_tls_foreach_san(x, collect_san, p))
        goto out;
    p->subject = name_text(X509_get_subject_name(x));
    p->issuer = name_text(X509_get_issuer_name(x));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (hex != NULL) {
        p->serial = strdup(hex);
        for (char *c = p->serial; c != NULL && *c != 0; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
        OPENSSL_free(hex);
    }
    uint8_t *der = NULL;
    int len = i2d_X509(x, &der);
    if (len > 0) {
        uint8_t md[32];
        SHA256(der, (size_t)len, md);
        for (int i = 0; i < 32; i++)
            snprintf(p->sha256 + 2 * i, 3, "%02x", md[i]);
    }
    OPENSSL_free(der);
    rc = 0;
out:
    X509_free(x);
    return rc;
}

static const char *verify_reason(enum mp_tls_verify_fail f)
{
    switch (f) {
    case MP_TLS_VERIFY_CHAIN: return "peer certificate failed chain verification";
    case MP_TLS_VERIFY_SAN: return "peer certificate SAN did not match";
    case MP_TLS_VERIFY_HASH: return "peer certificate hash did not match";
    case MP_TLS_VERIFY_NO_CERT: return "peer did not send a required certificate";
    default: return NULL;
    }
}

/* Records a failure once: reason, counters. */
static int fail(struct mp_tls_transport *t)
{
    if (t->failed)
        return MP_ERR_PROTO;
    t->failed = true;
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE &&
        t->cs.verify_fail == MP_TLS_VERIFY_OK) {
        t->cs.verify_fail = MP_TLS_VERIFY_NO_CERT;
        mp_tls_count(&t->cs.stats->fail_verify_no_cert);
    }
    t->error = verify_reason(t->cs.verify_fail);
    if (t->error == NULL && e != 0)
        t->error = ERR_reason_error_string(e);
    if (t->error == NULL)
        t->error = "TLS error";
    ERR_clear_error();
    /* Envoy's connection_error leaves out refusals already counted as
     * fail_verify_* (the peer that got our alert counts its own error). */
    if (t->cs.verify_fail == MP_TLS_VERIFY_OK)
        mp_tls_count(&t->cs.stats->connection_error);
    return MP_ERR_PROTO;
}

static int handshake_finished(struct mp_tls_transport *t)
{
    t->handshake_done = true;
    struct mp_tls_stats *st = t->cs.stats;
    const uint8_t *alpn;
    unsigned alpn_len;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    if (alpn_len > 0 && alpn_len < sizeof(t->alpn)) {
        memcpy(t->alpn, alpn, alpn_len);
        t->alpn[alpn_len] = 0;
    }
    mp_tls_count(&st->handshake);
    if (SSL_session_reused(t->ssl))
        mp_tls_count(&st->session_reused);
    if (fill_peer(t) != 0)
        return MP_ERR_NOMEM;
    if (!t->peer.presented)
        mp_tls_count(&st->no_certificate);
    return 0;
}

int mp_tls_transport_handshake(struct mp_tls_transport *t)
{
    if (t->handshake_done)
        return 0;
    if (t->failed)
        return MP_ERR_PROTO;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return handshake_finished(t);
    int e = SSL_get_error(t->ssl, r);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && !t->eof)
        return MP_ERR_AGAIN;
    if (t->eof && t->cs.verify_fail == MP_TLS_VERIFY_OK && ERR_peek_error() == 0) {
        /* The peer left before the handshake ended (SSL_ERROR_SYSCALL with an
         * empty queue): a TCP probe or port check, not a TLS error; Envoy's
         * connection_error skips it too. */
        t->failed = true;
        t->error = "connection closed during the TLS handshake";
        return MP_ERR_PROTO;
    }
    return fail(t);
}

bool mp_tls_transport_handshake_done(const struct mp_tls_transport *t)
{
    return t->handshake_done;
}

/* ---- records ------------------------------------------------------------- */

ssize_t mp_tls_transport_read(struct mp_tls_transport *t, struct mp_buffer *plain)
{
    if (!t->handshake_done) {
        int rc = mp_tls_transport_handshake(t);
        if (rc != 0)
            return rc;
    }
    if (t->failed)
        return MP_ERR_PROTO;
    if (t->peer_closed)
        return MP_ERR_CLOSED;
    size_t total = 0;
    for (;;) {
        struct iovec iov;
        if (mp_buffer_reserve(plain, 0, &iov) != 0)
            return total > 0 ? (ssize_t)total : MP_ERR_NOMEM;
        int n = SSL_read(t->ssl, iov.iov_base, (int)MP_MIN(iov.iov_len, (size_t)INT_MAX));
        if (n > 0) {
            mp_buffer_commit(plain, (size_t)n);
            total += (size_t)n;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return total > 0 ? (ssize_t)total : MP_ERR_AGAIN;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && t->eof)) {
            /* close_notify, or a bare FIN (truncation; treated as a close, as Envoy does) */
            t->peer_closed = true;
            ERR_clear_error();
            return total > 0 ? (ssize_t)total : MP_ERR_CLOSED;
        }
        int rc = fail(t);
        return total > 0 ? (ssize_t)total : rc;
    }
}

ssize_t mp_tls_transport_write_bytes(struct mp_tls_transport *t, const void *data, size_t len)
{
    if (t->failed)
        return MP_ERR_PROTO;
    if (t->shutdown_sent)
        return MP_ERR_CLOSED;
    if (!t->handshake_done)
        return MP_ERR_AGAIN;
    size_t done = 0;
    while (done < len) {
        int n = SSL_write(t->ssl, (const uint8_t *)data + done,
                          (int)MP_MIN(len - done, (size_t)INT_MAX));
        if (n <= 0) {
            int e = SSL_get_error(t->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break; /* only with a renegotiation in progress */
            if (done > 0)
                break;
            return fail(t);
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Views smaller than this are gathered into one record instead of one record
 * each: many small HTTP/2 frames would otherwise cost a record header, an AEAD
 * call and a tag apiece. Bigger views go to SSL_write as they are. */
#define SMALL_VIEW 4096u
#define STAGE_SIZE 16384u /* one full TLS record */

/* Writes the stage; returns false (and sets *rc on error) unless all of it went. */
static bool flush_stage(struct mp_tls_transport *t, const uint8_t *stage, size_t *staged,
                        size_t *written, ssize_t *rc)
{
    if (*staged == 0)
        return true;
    ssize_t n = mp_tls_transport_write_bytes(t, stage, *staged);
    if (n < 0) {
        *rc = n;
        return false;
    }
    *written += (size_t)n;
    bool all = (size_t)n == *staged;
    *staged = 0;
    return all;
}

ssize_t mp_tls_transport_write(struct mp_tls_transport *t, struct mp_buffer *plain)
{
    uint8_t stage[STAGE_SIZE];
    /* Invariant: bytes [0, written) of plain went out, [written, written +
     * staged) are copied in stage, and off = written + staged. */
    size_t written = 0, staged = 0, off = 0, len = mp_buffer_len(plain);
    ssize_t rc = 0;
    bool go = true;
    while (go && off < len) {
        struct iovec iov[32];
        int n = mp_buffer_peek_iov_range(plain, off, len - off, iov, (int)MP_ARRAY_LEN(iov));
        if (n <= 0)
            break;
        for (int i = 0; go && i < n; i++) {
            size_t l = iov[i].iov_len;
            if (l < SMALL_VIEW) {
                if (staged + l > STAGE_SIZE &&
                    !(go = flush_stage(t, stage, &staged, &written, &rc)))
                    break;
                memcpy(stage + staged, iov[i].iov_base, l);
                staged += l;
                off += l;
                continue;
            }
            if (!(go = flush_stage(t, stage, &staged, &written, &rc)))
                break;
            ssize_t w = mp_tls_transport_write_bytes(t, iov[i].iov_base, l);
            if (w < 0) {
                rc = w;
                go = false;
                break;
            }
            written += (size_t)w;
            off += (size_t)w;
            go = (size_t)w == l;
        }
    }
    if (go)
        flush_stage(t, stage, &staged, &written, &rc);
    mp_buffer_drain(plain, written);
    if (written == 0 && rc < 0)
        return rc;
    return (ssize_t)written;
}

ssize_t mp_tls_transport_take_output(struct mp_tls_transport *t, struct mp_buffer *out)
{
    size_t n = mp_buffer_len(&t->out);
    if (n == 0)
        return 0;
    if (mp_buffer_move(out, &t->out) != 0)
        return MP_ERR_NOMEM;
    return (ssize_t)n;
}

size_t mp_tls_transport_pending_output(const struct mp_tls_transport *t)
{
    return mp_buffer_len(&t->out);
}

int mp_tls_transport_shutdown(struct mp_tls_transport *t)
{
    if (!t->handshake_done || t->failed)
        return MP_ERR_PROTO;
    if (!t->shutdown_sent) {
        t->shutdown_sent = true;
        SSL_shutdown(t->ssl); /* writes close_notify; we do not wait for the peer's */
        ERR_clear_error();
    }
    return 0;
}

bool mp_tls_transport_peer_closed(const struct mp_tls_transport *t)
{
    return t->peer_closed;
}

/* ---- what was negotiated ------------------------------------------------- */

const char *mp_tls_transport_alpn(const struct mp_tls_transport *t)
{
    return t->alpn[0] != 0 ? t->alpn : NULL;
}

const char *mp_tls_transport_sni(const struct mp_tls_transport *t)
{
    if (t->sni != NULL)
        return t->sni;
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *mp_tls_transport_version(const struct mp_tls_transport *t)
{
    return t->handshake_done ? SSL_get_version(t->ssl) : NULL;
}

const char *mp_tls_transport_cipher(const struct mp_tls_transport *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    return c != NULL ? SSL_CIPHER_standard_name(c) : NULL;
}

bool mp_tls_transport_session_reused(const struct mp_tls_transport *t)
{
    return t->handshake_done && SSL_session_reused(t->ssl);
}

const struct mp_tls_peer *mp_tls_transport_peer(const struct mp_tls_transport *t)
{
    return t->handshake_done ? &t->peer : NULL;
}

const char *mp_tls_transport_peer_uri_san(const struct mp_tls_transport *t)
{
    return t->handshake_done && t->peer.n_uri_sans > 0 ? t->peer.uri_sans[0] : NULL;
}

const char *mp_tls_transport_error(const struct mp_tls_transport *t)
{
    return t->error;
}

struct ssl_st *mp_tls_transport_ssl(const struct mp_tls_transport *t)
{
    return t->ssl;
}
