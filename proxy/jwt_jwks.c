/*
 * jwt_jwks.c: key sets and signature checks with BoringSSL. Keys become
 * EVP_PKEYs (or raw HMAC secrets) once, at config time; verification only
 * reads them, so workers share a set without locks.
 */
#include "jwt_jwks.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "json.h"
#include "mp_common.h"

#define MAX_PEM (1u << 20)

enum key_type { KEY_RSA, KEY_EC, KEY_OCT, KEY_OKP };

struct jwk {
    enum key_type type;
    char *kid;           /* NULL: none */
    enum mp_jwt_alg alg; /* MP_JWT_ALG_NONE: any fitting alg */
    int curve_nid;       /* EC */
    EVP_PKEY *pkey;      /* RSA, EC */
    uint8_t *secret;     /* oct */
    size_t secret_len;
    uint8_t ed25519[32]; /* OKP */
};

struct mp_jwks {
    struct jwk *keys;
    size_t n;
};

static void jwk_clear(struct jwk *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
}

void mp_jwks_free(struct mp_jwks *jwks)
{
    if (!jwks)
        return;
    for (size_t i = 0; i < jwks->n; i++)
        jwk_clear(&jwks->keys[i]);
    free(jwks->keys);
    free(jwks);
}

size_t mp_jwks_count(const struct mp_jwks *jwks)
{
    return jwks ? jwks->n : 0;
}

/* The string member name of obj, or NULL. */
static const char *str_member(const struct mp_json *obj, const char *name, size_t *len)
{
    const struct mp_json *v = mp_json_object_get(obj, name);
    if (!v || v->type != MP_JSON_STRING)
        return NULL;
    if (len)
        *len = v->u.str.len;
    return v->u.str.s;
}

static BIGNUM *b64_bn(const struct mp_json *obj, const char *name)
{
    size_t len;
    const char *s = str_member(obj, name, &len);
    uint8_t *raw;
    size_t raw_len;
    if (!s || mp_base64url_decode(s, len, &raw, &raw_len) < 0)
        return NULL;
    BIGNUM *bn = raw_len ? BN_bin2bn(raw, raw_len, NULL) : NULL;
    free(raw);
    return bn;
}

static int jwk_rsa(const struct mp_json *o, struct jwk *k)
{
    if (k->alg != MP_JWT_ALG_NONE && !(k->alg >= MP_JWT_ALG_RS256 && k->alg <= MP_JWT_ALG_PS512))
        return MP_ERR_PARSE;
    BIGNUM *n = b64_bn(o, "n"), *e = b64_bn(o, "e");
    RSA *rsa = RSA_new();
    if (!n || !e || !rsa || !RSA_set0_key(rsa, n, e, NULL)) {
        BN_free(n);
        BN_free(e);
        RSA_free(rsa);
        return MP_ERR_PARSE;
    }
    k->pkey = EVP_PKEY_new();
    if (!k->pkey || !EVP_PKEY_assign_RSA(k->pkey, rsa)) {
        RSA_free(rsa);
        return MP_ERR_NOMEM;
    }
    k->type = KEY_RSA;
    return 0;
}

static int curve_of_name(const char *crv)
{
    if (!crv)
        return NID_undef;
    if (strcmp(crv, "P-256") == 0)
        return NID_X9_62_prime256v1;
    if (strcmp(crv, "P-384") == 0)
        return NID_secp384r1;
    if (strcmp(crv, "P-521") == 0)
        return NID_secp521r1;
    return NID_undef;
}

static int curve_of_alg(enum mp_jwt_alg alg)
{
    switch (alg) {
    case MP_JWT_ALG_ES256: return NID_X9_62_prime256v1;
    case MP_JWT_ALG_ES384: return NID_secp384r1;
    case MP_JWT_ALG_ES512: return NID_secp521r1;
    default: return NID_undef;
    }
}

static int jwk_ec(const struct mp_json *o, struct jwk *k)
{
    if (k->alg != MP_JWT_ALG_NONE && curve_of_alg(k->alg) == NID_undef)
        return MP_ERR_PARSE;
    const char *crv = str_member(o, "crv", NULL);
    int nid = crv ? curve_of_name(crv) : curve_of_alg(k->alg);
    /* a crv that contradicts alg is a broken key */
    if (nid == NID_undef || (k->alg != MP_JWT_ALG_NONE && curve_of_alg(k->alg) != nid))
        return MP_ERR_PARSE;
    BIGNUM *x = b64_bn(o, "x"), *y = b64_bn(o, "y");
    EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
    int rc = MP_ERR_PARSE;
    if (!x || !y || !ec || !EC_KEY_set_public_key_affine_coordinates(ec, x, y))
        goto out;
    k->pkey = EVP_PKEY_new();
    if (!k->pkey || !EVP_PKEY_assign_EC_KEY(k->pkey, ec)) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    ec = NULL;
    k->type = KEY_EC;
    k->curve_nid = nid;
    rc = 0;
out:
    BN_free(x);
    BN_free(y);
    EC_KEY_free(ec);
    return rc;
}

static int jwk_oct(const struct mp_json *o, struct jwk *k)
{
    if (k->alg != MP_JWT_ALG_NONE && !(k->alg >= MP_JWT_ALG_HS256 && k->alg <= MP_JWT_ALG_HS512))
        return MP_ERR_PARSE;
    size_t len;
    const char *s = str_member(o, "k", &len);
    if (!s)
        return MP_ERR_PARSE;
    int rc = mp_base64url_decode(s, len, &k->secret, &k->secret_len);
    if (rc < 0)
        return rc;
    if (k->secret_len == 0)
        return MP_ERR_PARSE;
    k->type = KEY_OCT;
    return 0;
}

static int jwk_okp(const struct mp_json *o, struct jwk *k)
{
    if (k->alg != MP_JWT_ALG_NONE && k->alg != MP_JWT_ALG_EDDSA)
        return MP_ERR_PARSE;
    const char *crv = str_member(o, "crv", NULL);
    size_t len;
    const char *x = str_member(o, "x", &len);
    if (!crv || strcmp(crv, "Ed25519") != 0 || !x)
        return MP_ERR_PARSE;
    uint8_t *raw;
    size_t raw_len;
    int rc = mp_base64url_decode(x, len, &raw, &raw_len);
    if (rc < 0)
        return rc;
    if (raw_len != sizeof(k->ed25519)) {
        free(raw);
        return MP_ERR_PARSE;
    }
    memcpy(k->ed25519, raw, raw_len);
    free(raw);
    k->type = KEY_OKP;
    return 0;
}

/* One JWK into k (zeroed). < 0: skip the key. */
static int jwk_parse(const struct mp_json *o, struct jwk *k)
{
    if (o->type != MP_JSON_OBJECT)
        return MP_ERR_PARSE;
    const char *kty = str_member(o, "kty", NULL);
    if (!kty)
        return MP_ERR_PARSE;
    const struct mp_json *alg = mp_json_object_get(o, "alg");
    if (alg) {
        if (alg->type != MP_JSON_STRING)
            return MP_ERR_PARSE;
        k->alg = mp_jwt_alg_from_name(alg->u.str.s, alg->u.str.len);
        if (k->alg == MP_JWT_ALG_NONE)
            return MP_ERR_PARSE;
    }
    const struct mp_json *kid = mp_json_object_get(o, "kid");
    if (kid) {
        if (kid->type != MP_JSON_STRING)
            return MP_ERR_PARSE;
        k->kid = strdup(kid->u.str.s);
        if (!k->kid)
            return MP_ERR_NOMEM;
    }
    if (strcmp(kty, "RSA") == 0)
        return jwk_rsa(o, k);
    if (strcmp(kty, "EC") == 0)
        return jwk_ec(o, k);
    if (strcmp(kty, "oct") == 0)
        return jwk_oct(o, k);
    if (strcmp(kty, "OKP") == 0)
        return jwk_okp(o, k);
    return MP_ERR_PARSE;
}

static int parse_json(const char *text, size_t len, struct mp_jwks *set, char **err)
{
    struct mp_json_doc *doc;
    char *jerr = NULL;
    int rc = mp_json_parse(text, len, NULL, &doc, &jerr);
    if (rc < 0) {
        mp_set_err(err, "JWKS is not valid JSON: %s", jerr ? jerr : mp_strerror(rc));
        free(jerr);
        return rc == MP_ERR_NOMEM ? rc : MP_ERR_PARSE;
    }
    const struct mp_json *root = mp_json_doc_root(doc);
    const struct mp_json *const *items = &root;
    size_t n = 1;
    const struct mp_json *keys = mp_json_object_get(root, "keys");
    if (root->type != MP_JSON_OBJECT) {
        mp_set_err(err, "JWKS must be a JSON object");
        rc = MP_ERR_PARSE;
        goto out;
    }
    if (keys) {
        if (keys->type != MP_JSON_ARRAY) {
            mp_set_err(err, "JWKS \"keys\" must be an array");
            rc = MP_ERR_PARSE;
            goto out;
        }
        items = (const struct mp_json *const *)keys->u.arr.items;
        n = keys->u.arr.n;
    }
    set->keys = calloc(n ? n : 1, sizeof(*set->keys));
    if (!set->keys) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct jwk *k = &set->keys[set->n];
        rc = jwk_parse(items[i], k);
        if (rc == MP_ERR_NOMEM) {
            jwk_clear(k);
            goto out;
        }
        if (rc < 0) {
            jwk_clear(k);
            memset(k, 0, sizeof(*k));
            continue;
        }
        set->n++;
    }
    rc = 0;
out:
    mp_json_doc_free(doc);
    return rc;
}

static int parse_pem(const char *text, size_t len, struct mp_jwks *set)
{
    if (len > MAX_PEM)
        return MP_ERR_PARSE;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio)
        return MP_ERR_NOMEM;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        /* PKCS#1 "RSA PUBLIC KEY" */
        BIO_free(bio);
        bio = BIO_new_mem_buf(text, (int)len);
        if (!bio)
            return MP_ERR_NOMEM;
        RSA *rsa = PEM_read_bio_RSAPublicKey(bio, NULL, NULL, NULL);
        if (rsa) {
            pkey = EVP_PKEY_new();
            if (!pkey || !EVP_PKEY_assign_RSA(pkey, rsa)) {
                RSA_free(rsa);
                EVP_PKEY_free(pkey);
                pkey = NULL;
            }
        }
    }
    BIO_free(bio);
    if (!pkey)
        return MP_ERR_PARSE;
    struct jwk k = {.pkey = pkey};
    int rc = MP_ERR_PARSE;
    switch (EVP_PKEY_id(pkey)) {
    case EVP_PKEY_RSA:
        k.type = KEY_RSA;
        rc = 0;
        break;
    case EVP_PKEY_EC:
        k.type = KEY_EC;
        k.curve_nid = EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pkey)));
        rc = (k.curve_nid == NID_X9_62_prime256v1 || k.curve_nid == NID_secp384r1 ||
              k.curve_nid == NID_secp521r1)
                 ? 0
                 : MP_ERR_PARSE;
        break;
    case EVP_PKEY_ED25519: {
        size_t l = sizeof(k.ed25519);
        if (EVP_PKEY_get_raw_public_key(pkey, k.ed25519, &l) && l == sizeof(k.ed25519)) {
            k.type = KEY_OKP;
            rc = 0;
        }
        EVP_PKEY_free(pkey);
        k.pkey = NULL;
        break;
    }
    default: break;
    }
    if (rc < 0) {
        jwk_clear(&k);
        return rc;
    }
    set->keys = calloc(1, sizeof(*set->keys));
    if (!set->keys) {
        jwk_clear(&k);
        return MP_ERR_NOMEM;
    }
    set->keys[0] = k;
    set->n = 1;
    return 0;
}

int mp_jwks_parse(const char *text, size_t len, struct mp_jwks **out, char **err)
{
    struct mp_jwks *set = calloc(1, sizeof(*set));
    if (!set)
        return MP_ERR_NOMEM;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    int rc;
    if (i < len && text[i] == '-') {
        rc = parse_pem(text, len, set);
        if (rc == MP_ERR_PARSE)
            mp_set_err(err, "JWKS PEM: not an RSA, EC (P-256/384/521) or Ed25519 public key");
    } else {
        rc = parse_json(text, len, set, err);
    }
    if (rc == 0 && set->n == 0) {
        mp_set_err(err, "%s", mp_jwt_status_str(MP_JWT_JWKS_NO_VALID_KEYS));
        rc = MP_ERR_PARSE;
    }
    if (rc < 0) {
        mp_jwks_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

/* ---- verification --------------------------------------------------------- */

static const EVP_MD *alg_md(enum mp_jwt_alg alg)
{
    switch (alg) {
    case MP_JWT_ALG_RS256:
    case MP_JWT_ALG_PS256:
    case MP_JWT_ALG_ES256:
    case MP_JWT_ALG_HS256: return EVP_sha256();
    case MP_JWT_ALG_RS384:
    case MP_JWT_ALG_PS384:
    case MP_JWT_ALG_ES384:
    case MP_JWT_ALG_HS384: return EVP_sha384();
    case MP_JWT_ALG_RS512:
    case MP_JWT_ALG_PS512:
    case MP_JWT_ALG_ES512:
    case MP_JWT_ALG_HS512: return EVP_sha512();
    default: return NULL;
    }
}

static bool key_fits(const struct jwk *k, const struct mp_jwt *jwt)
{
    if (k->alg != MP_JWT_ALG_NONE && k->alg != jwt->alg)
        return false;
    switch (jwt->alg) {
    case MP_JWT_ALG_RS256:
    case MP_JWT_ALG_RS384:
    case MP_JWT_ALG_RS512:
    case MP_JWT_ALG_PS256:
    case MP_JWT_ALG_PS384:
    case MP_JWT_ALG_PS512: return k->type == KEY_RSA;
    case MP_JWT_ALG_ES256:
    case MP_JWT_ALG_ES384:
    case MP_JWT_ALG_ES512: return k->type == KEY_EC && k->curve_nid == curve_of_alg(jwt->alg);
    case MP_JWT_ALG_HS256:
    case MP_JWT_ALG_HS384:
    case MP_JWT_ALG_HS512: return k->type == KEY_OCT;
    case MP_JWT_ALG_EDDSA: return k->type == KEY_OKP;
    default: return false;
    }
}

static bool verify_rsa(const struct jwk *k, const struct mp_jwt *jwt, bool pss)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = false;
    if (!ctx || !EVP_DigestVerifyInit(ctx, &pctx, alg_md(jwt->alg), NULL, k->pkey))
        goto out;
    if (pss && (!EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ||
                !EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1 /* salt length = digest length */)))
        goto out;
    ok = EVP_DigestVerify(ctx, jwt->signature, jwt->signature_len,
                          (const uint8_t *)jwt->signed_part, jwt->signed_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JWS ECDSA signatures are raw r || s, each the curve's size (RFC 7518 3.4). */
static bool verify_ec(const struct jwk *k, const struct mp_jwt *jwt)
{
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->pkey);
    size_t half = (EC_GROUP_get_degree(EC_KEY_get0_group(ec)) + 7) / 8;
    if (jwt->signature_len != 2 * half)
        return false;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen;
    if (!EVP_Digest(jwt->signed_part, jwt->signed_len, digest, &dlen, alg_md(jwt->alg), NULL))
        return false;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(jwt->signature, half, NULL);
    BIGNUM *s = BN_bin2bn(jwt->signature + half, half, NULL);
    bool ok = false;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
        r = s = NULL; /* owned by sig now */
        ok = ECDSA_do_verify(digest, dlen, sig, ec) == 1;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return ok;
}

static bool verify_hmac(const struct jwk *k, const struct mp_jwt *jwt)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mlen;
    if (!HMAC(alg_md(jwt->alg), k->secret, k->secret_len, (const uint8_t *)jwt->signed_part,
              jwt->signed_len, mac, &mlen))
        return false;
    return mlen == jwt->signature_len && CRYPTO_memcmp(mac, jwt->signature, mlen) == 0;
}

enum mp_jwt_status mp_jwks_verify(const struct mp_jwks *jwks, const struct mp_jwt *jwt)
{
    bool fitted = false;
    if (jwt->alg == MP_JWT_ALG_EDDSA && jwt->signature_len != 64)
        return MP_JWT_ED25519_SIGNATURE_WRONG_LENGTH;
    for (size_t i = 0; jwks && i < jwks->n; i++) {
        const struct jwk *k = &jwks->keys[i];
        /* a kid on both sides must agree; a missing kid on either side matches */
        if (jwt->kid && k->kid && strcmp(jwt->kid, k->kid) != 0)
            continue;
        if (!key_fits(k, jwt))
            continue;
        fitted = true;
        bool ok = false;
        switch (k->type) {
        case KEY_RSA: ok = verify_rsa(k, jwt, jwt->alg >= MP_JWT_ALG_PS256); break;
        case KEY_EC: ok = verify_ec(k, jwt); break;
        case KEY_OCT: ok = verify_hmac(k, jwt); break;
        case KEY_OKP:
            ok = ED25519_verify((const uint8_t *)jwt->signed_part, jwt->signed_len, jwt->signature,
                                k->ed25519) == 1;
            break;
        }
        if (ok)
            return MP_JWT_OK;
    }
    return fitted ? MP_JWT_VERIFICATION_FAIL : MP_JWT_JWKS_KID_ALG_MISMATCH;
}
