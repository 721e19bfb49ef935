/* tls_xfcc.c: this hop's x-forwarded-client-cert element, as Envoy writes it. */
#include "tls_xfcc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "mp_common.h"
#include "tls_internal.h"
#include "tls_transport.h"

/* Every write goes to one memory BIO; a failed one marks the builder failed. */
struct sb {
    BIO *b;
    bool failed;
    bool first;
};

static void put(struct sb *s, const char *p, size_t n)
{
    if (!s->failed && n > 0 && BIO_write(s->b, p, (int)n) != (int)n)
        s->failed = true;
}

static void puts_(struct sb *s, const char *p)
{
    put(s, p, strlen(p));
}

/* Starts one "Key=" element, with the ';' between elements. */
static void key(struct sb *s, const char *k)
{
    if (!s->first)
        put(s, ";", 1);
    s->first = false;
    puts_(s, k);
    put(s, "=", 1);
}

static bool put_local_uri(enum mp_tls_san_type type, const char *value, size_t len, void *arg)
{
    struct sb *s = arg;
    if (type == MP_TLS_SAN_URI && memchr(value, 0, len) == NULL) {
        key(s, "By");
        put(s, value, len);
    }
    return !s->failed;
}

/* PEM with the characters Envoy escapes ("\n", " ", "+", "/", "=") percent-encoded. */
static void put_pem(struct sb *s, X509 *x)
{
    BIO *pem = BIO_new(BIO_s_mem());
    const uint8_t *p;
    size_t len;
    if (pem == NULL || !PEM_write_bio_X509(pem, x) || !BIO_mem_contents(pem, &p, &len)) {
        s->failed = true;
        BIO_free(pem);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        switch (p[i]) {
        case '\n': esc = "%0A"; break;
        case ' ': esc = "%20"; break;
        case '+': esc = "%2B"; break;
        case '/': esc = "%2F"; break;
        case '=': esc = "%3D"; break;
        }
        if (esc != NULL)
            put(s, esc, 3);
        else
            put(s, (const char *)p + i, 1);
    }
    BIO_free(pem);
}

int mp_tls_xfcc_build(const struct mp_tls_transport *t, unsigned details, char **out)
{
    const struct mp_tls_peer *peer = mp_tls_transport_peer(t);
    if (peer == NULL || !peer->presented)
        return MP_ERR_NOTFOUND;
    SSL *ssl = mp_tls_transport_ssl(t);
    struct sb s = {.b = BIO_new(BIO_s_mem()), .first = true};
    if (s.b == NULL)
        return MP_ERR_NOMEM;
    X509 *local = SSL_get_certificate(ssl); /* borrowed */
    if (local != NULL)
        mp_tls_foreach_san(local, put_local_uri, &s);
    if (peer->sha256[0]) {
        key(&s, "Hash");
        puts_(&s, peer->sha256);
    }
    /* Envoy's order: Cert, Chain, Subject, URI, DNS */
    if (details & MP_XFCC_CERT) {
        X509 *leaf = SSL_get_peer_certificate(ssl);
        if (leaf != NULL) {
            key(&s, "Cert");
            put(&s, "\"", 1);
            put_pem(&s, leaf);
            put(&s, "\"", 1);
            X509_free(leaf);
        }
    }
    if (details & MP_XFCC_CHAIN) {
        STACK_OF(X509) *chain = SSL_get_peer_full_cert_chain(ssl); /* borrowed, leaf first */
        if (chain != NULL && sk_X509_num(chain) > 0) {
            key(&s, "Chain");
            put(&s, "\"", 1);
            for (size_t i = 0; i < sk_X509_num(chain); i++)
                put_pem(&s, sk_X509_value(chain, i));
            put(&s, "\"", 1);
        }
    }
    if (details & MP_XFCC_SUBJECT) {
        /* the key stays even when the subject is empty, as in Envoy */
        key(&s, "Subject");
        put(&s, "\"", 1);
        puts_(&s, peer->subject ? peer->subject : "");
        put(&s, "\"", 1);
    }
    if (details & MP_XFCC_URI) {
        if (peer->n_uri_sans == 0)
            key(&s, "URI");
        for (size_t i = 0; i < peer->n_uri_sans; i++) {
            key(&s, "URI");
            puts_(&s, peer->uri_sans[i]);
        }
    }
    if (details & MP_XFCC_DNS) {
        for (size_t i = 0; i < peer->n_dns_sans; i++) {
            key(&s, "DNS");
            puts_(&s, peer->dns_sans[i]);
        }
    }
    const uint8_t *p;
    size_t len;
    int rc = MP_ERR_NOMEM;
    /* The BIO's bytes are not NUL-terminated: copy exactly len of them
     * (strndup may scan past them; ASan strict_string_checks reports that). */
    if (!s.failed && BIO_mem_contents(s.b, &p, &len) && (*out = malloc(len + 1)) != NULL) {
        if (len > 0)
            memcpy(*out, p, len);
        (*out)[len] = '\0';
        rc = 0;
    }
    BIO_free(s.b);
    return rc;
}
