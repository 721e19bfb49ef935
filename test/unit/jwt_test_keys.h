/*
 * jwt_test_keys.h: keys generated at test time with BoringSSL (no private
 * key is ever committed), their public JWKs, and tokens signed with them.
 */
#ifndef MP_TEST_JWT_TEST_KEYS_H
#define MP_TEST_JWT_TEST_KEYS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "proxy/jwt.h"

static inline void *tk_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

enum tk_type { TK_RSA, TK_EC, TK_OCT, TK_ED };

struct tkey {
    enum tk_type type;
    EVP_PKEY *pkey;      /* RSA, EC */
    uint8_t ed_priv[64]; /* Ed25519 */
    uint8_t ed_pub[32];
    uint8_t secret[32]; /* oct */
};

static inline void tk_rsa(struct tkey *k)
{
    memset(k, 0, sizeof(*k));
    k->type = TK_RSA;
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    BN_set_word(e, RSA_F4);
    if (!RSA_generate_key_ex(rsa, 2048, e, NULL))
        abort();
    BN_free(e);
    k->pkey = EVP_PKEY_new();
    EVP_PKEY_assign_RSA(k->pkey, rsa);
}

static inline void tk_ec(struct tkey *k, int nid)
{
    memset(k, 0, sizeof(*k));
    k->type = TK_EC;
    EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
    if (!ec || !EC_KEY_generate_key(ec))
        abort();
    k->pkey = EVP_PKEY_new();
    EVP_PKEY_assign_EC_KEY(k->pkey, ec);
}

static inline void tk_ed(struct tkey *k)
{
    memset(k, 0, sizeof(*k));
    k->type = TK_ED;
    ED25519_keypair(k->ed_pub, k->ed_priv);
}

static inline void tk_oct(struct tkey *k)
{
    memset(k, 0, sizeof(*k));
    k->type = TK_OCT;
    RAND_bytes(k->secret, sizeof(k->secret));
}

static inline void tk_free(struct tkey *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

static inline char *tk_bn(const BIGNUM *bn, size_t width)
{
    size_t n = width ? width : BN_num_bytes(bn);
    uint8_t *buf = tk_xmalloc(n);
    BN_bn2bin_padded(buf, n, bn);
    char *s = mp_base64url_encode(buf, n, false);
    free(buf);
    return s;
}

/* The public JWK of k as a JSON object; kid/alg may be NULL. Caller frees. */
static inline char *tk_jwk(const struct tkey *k, const char *kid, const char *alg)
{
    char extra[256] = "";
    if (kid)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ",\"kid\":\"%s\"", kid);
    if (alg)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ",\"alg\":\"%s\"", alg);
    char *out = tk_xmalloc(4096);
    switch (k->type) {
    case TK_RSA: {
        const RSA *rsa = EVP_PKEY_get0_RSA(k->pkey);
        char *n = tk_bn(RSA_get0_n(rsa), 0), *e = tk_bn(RSA_get0_e(rsa), 0);
        snprintf(out, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n, e, extra);
        free(n);
        free(e);
        break;
    }
    case TK_EC: {
        const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->pkey);
        const EC_GROUP *g = EC_KEY_get0_group(ec);
        BIGNUM *x = BN_new(), *y = BN_new();
        EC_POINT_get_affine_coordinates_GFp(g, EC_KEY_get0_public_key(ec), x, y, NULL);
        size_t w = (EC_GROUP_get_degree(g) + 7) / 8;
        char *xs = tk_bn(x, w), *ys = tk_bn(y, w);
        int nid = EC_GROUP_get_curve_name(g);
        const char *crv = nid == NID_X9_62_prime256v1 ? "P-256"
                          : nid == NID_secp384r1      ? "P-384"
                                                      : "P-521";
        snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", crv, xs,
                 ys, extra);
        free(xs);
        free(ys);
        BN_free(x);
        BN_free(y);
        break;
    }
    case TK_OCT: {
        char *s = mp_base64url_encode(k->secret, sizeof(k->secret), false);
        snprintf(out, 4096, "{\"kty\":\"oct\",\"k\":\"%s\"%s}", s, extra);
        free(s);
        break;
    }
    case TK_ED: {
        char *s = mp_base64url_encode(k->ed_pub, sizeof(k->ed_pub), false);
        snprintf(out, 4096, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"%s}", s, extra);
        free(s);
        break;
    }
    }
    return out;
}

/* The public key of k (RSA or EC) as PEM. Caller frees. */
static inline char *tk_pem(const struct tkey *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k->pkey);
    const uint8_t *data;
    size_t len;
    BIO_mem_contents(b, &data, &len);
    /* BIO bytes are not NUL-terminated: copy exactly len (no strndup). */
    char *s = malloc(len + 1);
    if (s != NULL) {
        memcpy(s, data, len);
        s[len] = '\0';
    }
    BIO_free(b);
    return s;
}

static inline const EVP_MD *tk_md(const char *alg)
{
    if (strstr(alg, "384"))
        return EVP_sha384();
    if (strstr(alg, "512"))
        return EVP_sha512();
    return EVP_sha256();
}

/* A compact token: header {"alg":alg[,"kid":kid]} (or hdr_json when given),
 * payload_json, signed by k. Caller frees. */
static inline char *tk_token(const struct tkey *k, const char *alg, const char *kid,
                             const char *payload_json)
{
    char hdr[256];
    if (kid)
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    char *h = mp_base64url_encode((const uint8_t *)hdr, strlen(hdr), false);
    char *p = mp_base64url_encode((const uint8_t *)payload_json, strlen(payload_json), false);
    size_t sl = strlen(h) + 1 + strlen(p);
    char *signing = tk_xmalloc(sl + 1);
    snprintf(signing, sl + 1, "%s.%s", h, p);
    uint8_t sig[1024];
    size_t siglen = sizeof(sig);
    const EVP_MD *md = tk_md(alg);
    if (k->type == TK_RSA) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx;
        EVP_DigestSignInit(ctx, &pctx, md, NULL, k->pkey);
        if (alg[0] == 'P') {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
        }
        if (!EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)signing, sl))
            abort();
        EVP_MD_CTX_free(ctx);
    } else if (k->type == TK_EC) {
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned dl;
        EVP_Digest(signing, sl, d, &dl, md, NULL);
        const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->pkey);
        ECDSA_SIG *es = ECDSA_do_sign(d, dl, ec);
        size_t w = (EC_GROUP_get_degree(EC_KEY_get0_group(ec)) + 7) / 8;
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2bin_padded(sig, w, r);
        BN_bn2bin_padded(sig + w, w, s);
        siglen = 2 * w;
        ECDSA_SIG_free(es);
    } else if (k->type == TK_OCT) {
        unsigned ml;
        HMAC(md, k->secret, sizeof(k->secret), (const uint8_t *)signing, sl, sig, &ml);
        siglen = ml;
    } else {
        ED25519_sign(sig, (const uint8_t *)signing, sl, k->ed_priv);
        siglen = 64;
    }
    char *s = mp_base64url_encode(sig, siglen, false);
    size_t tl = sl + 1 + strlen(s);
    char *tok = tk_xmalloc(tl + 1);
    snprintf(tok, tl + 1, "%s.%s", signing, s);
    free(h);
    free(p);
    free(s);
    free(signing);
    return tok;
}

#endif
