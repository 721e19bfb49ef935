/*
 * test_jwt.c: JWT parsing, claims, time/audience checks and signature
 * verification with JWKS (every algorithm) and PEM keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jwt_test_keys.h"
#include "proxy/json.h"
#include "proxy/jwt.h"
#include "proxy/jwt_jwks.h"
#include "proxy/mp_common.h"

#define NOW 1700000000ull
static const char *PAYLOAD = "{\"iss\":\"https://issuer.example\",\"sub\":\"alice\","
                             "\"aud\":[\"svc-a\",\"https://svc-b/\"],\"iat\":1699999000,"
                             "\"exp\":1700003600,\"nbf\":1699999000,\"groups\":[\"x\",\"y\"],"
                             "\"nested\":{\"role\":\"admin\"}}";

static struct mp_jwks *jwks_of(const char *text)
{
    struct mp_jwks *j = NULL;
    char *err = NULL;
    int rc = mp_jwks_parse(text, strlen(text), &j, &err);
    if (rc != 0)
        fprintf(stderr, "jwks: %s\n", err ? err : "?");
    free(err);
    assert_int_equal(rc, 0);
    return j;
}

/* Signs PAYLOAD with k/alg, verifies with a JWKS holding k's public key. */
static void roundtrip(struct tkey *k, const char *alg)
{
    char *jwk = tk_jwk(k, "k1", alg);
    char set[5000];
    snprintf(set, sizeof(set), "{\"keys\":[%s]}", jwk);
    struct mp_jwks *jwks = jwks_of(set);
    assert_int_equal(mp_jwks_count(jwks), 1);
    char *tok = tk_token(k, alg, "k1", PAYLOAD);
    struct mp_jwt jwt;
    assert_int_equal(mp_jwt_parse(tok, strlen(tok), &jwt), MP_JWT_OK);
    assert_string_equal(jwt.alg_name, alg);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_OK);
    mp_jwt_clear(&jwt);

    /* one flipped signature bit fails */
    size_t tl = strlen(tok);
    char *bad = strdup(tok);
    char *sig = strrchr(bad, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    assert_int_equal(mp_jwt_parse(bad, tl, &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_VERIFICATION_FAIL);
    mp_jwt_clear(&jwt);

    /* a changed payload with the old signature fails */
    char *other = tk_token(k, alg, "k1", "{\"iss\":\"x\"}");
    char *mix = tk_xmalloc(tl + strlen(other) + 1);
    const char *od1 = strchr(other, '.'), *od2 = strrchr(other, '.');
    const char *d1 = strchr(tok, '.');
    sprintf(mix, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(od2 - od1), od1, strrchr(tok, '.'));
    assert_int_equal(mp_jwt_parse(mix, strlen(mix), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_VERIFICATION_FAIL);
    mp_jwt_clear(&jwt);

    free(mix);
    free(other);
    free(bad);
    free(tok);
    free(jwk);
    mp_jwks_free(jwks);
}

static struct tkey rsa_key;

static int setup(void **st)
{
    (void)st;
    tk_rsa(&rsa_key);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tk_free(&rsa_key);
    return 0;
}

static void test_rsa_algs(void **st)
{
    (void)st;
    roundtrip(&rsa_key, "RS256");
    roundtrip(&rsa_key, "RS384");
    roundtrip(&rsa_key, "RS512");
    roundtrip(&rsa_key, "PS256");
    roundtrip(&rsa_key, "PS384");
    roundtrip(&rsa_key, "PS512");
}

static void test_ec_algs(void **st)
{
    (void)st;
    struct tkey k;
    tk_ec(&k, NID_X9_62_prime256v1);
    roundtrip(&k, "ES256");
    tk_free(&k);
    tk_ec(&k, NID_secp384r1);
    roundtrip(&k, "ES384");
    tk_free(&k);
    tk_ec(&k, NID_secp521r1);
    roundtrip(&k, "ES512");
    tk_free(&k);
}

static void test_hmac_and_eddsa(void **st)
{
    (void)st;
    struct tkey k;
    tk_oct(&k);
    roundtrip(&k, "HS256");
    roundtrip(&k, "HS384");
    roundtrip(&k, "HS512");
    tk_ed(&k);
    roundtrip(&k, "EdDSA");
}

static void test_kid_and_alg_selection(void **st)
{
    (void)st;
    struct tkey ec;
    tk_ec(&ec, NID_X9_62_prime256v1);
    char *j1 = tk_jwk(&rsa_key, "rsa-1", NULL), *j2 = tk_jwk(&ec, "ec-1", "ES256");
    char set[6000];
    snprintf(set, sizeof(set), "{\"keys\":[%s,%s]}", j1, j2);
    struct mp_jwks *jwks = jwks_of(set);
    assert_int_equal(mp_jwks_count(jwks), 2);
    struct mp_jwt jwt;

    /* right kid */
    char *t = tk_token(&rsa_key, "RS256", "rsa-1", PAYLOAD);
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_OK);
    mp_jwt_clear(&jwt);
    free(t);
    /* no kid in the token: any key of the right type */
    t = tk_token(&ec, "ES256", NULL, PAYLOAD);
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_OK);
    mp_jwt_clear(&jwt);
    free(t);
    /* unknown kid */
    t = tk_token(&rsa_key, "RS256", "nope", PAYLOAD);
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_JWKS_KID_ALG_MISMATCH);
    mp_jwt_clear(&jwt);
    free(t);
    /* kid of the EC key on an RS256 token: the type does not fit */
    t = tk_token(&rsa_key, "RS256", "ec-1", PAYLOAD);
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_JWKS_KID_ALG_MISMATCH);
    mp_jwt_clear(&jwt);
    free(t);
    /* an HS256 token signed with the RSA modulus as secret must not pass (alg confusion) */
    t = tk_token(&rsa_key, "RS256", NULL, PAYLOAD);
    char *hs = strdup(t);
    memcpy(hs, "eyJhbGciOiJIUzI1NiJ9", 20); /* {"alg":"HS256"} */
    free(t);
    t = hs;
    char *dot = strchr(t, '.');
    memmove(t + 20, dot, strlen(dot) + 1);
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(jwt.alg, MP_JWT_ALG_HS256);
    assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_JWKS_KID_ALG_MISMATCH);
    mp_jwt_clear(&jwt);
    free(t);

    free(j1);
    free(j2);
    mp_jwks_free(jwks);
    tk_free(&ec);
}

static void test_pem_keys(void **st)
{
    (void)st;
    struct tkey ec;
    tk_ec(&ec, NID_secp384r1);
    const struct tkey *keys[2] = {&rsa_key, &ec};
    const char *algs[2] = {"RS256", "ES384"};
    for (int i = 0; i < 2; i++) {
        char *pem = tk_pem(keys[i]);
        struct mp_jwks *jwks = jwks_of(pem);
        char *t = tk_token(keys[i], algs[i], "whatever", PAYLOAD);
        struct mp_jwt jwt;
        assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
        assert_int_equal(mp_jwks_verify(jwks, &jwt), MP_JWT_OK);
        mp_jwt_clear(&jwt);
        free(t);
        free(pem);
        mp_jwks_free(jwks);
    }
    tk_free(&ec);
}

static void test_jwks_errors(void **st)
{
    (void)st;
    struct mp_jwks *j = NULL;
    char *err = NULL;
    const char *bad[] = {
        "not json",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"***\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-999\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"XYZ\"}]}",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(bad); i++) {
        assert_int_equal(mp_jwks_parse(bad[i], strlen(bad[i]), &j, &err), MP_ERR_PARSE);
        assert_non_null(err);
        free(err);
        err = NULL;
    }
    /* a bad key among good ones is skipped */
    char *good = tk_jwk(&rsa_key, NULL, "RS256");
    char set[5000];
    snprintf(set, sizeof(set), "{\"keys\":[{\"kty\":\"RSA\"},%s,{\"kty\":\"oct\"}]}", good);
    j = jwks_of(set);
    assert_int_equal(mp_jwks_count(j), 1);
    mp_jwks_free(j);
    free(good);
}

static void test_malformed_tokens(void **st)
{
    (void)st;
    struct mp_jwt jwt;
    struct {
        const char *tok;
        enum mp_jwt_status want;
    } cases[] = {
        {"abc", MP_JWT_BAD_FORMAT},
        {"a.b", MP_JWT_BAD_FORMAT},
        {"a.b.c.d", MP_JWT_BAD_FORMAT},
        {"e@@.eyJ9.AA", MP_JWT_HEADER_BAD_BASE64},
        {"bm90IGpzb24.eyJpc3MiOiJ4In0.AA", MP_JWT_HEADER_BAD_JSON},       /* "not json" */
        {"eyJ0eXAiOiJKV1QifQ.eyJpc3MiOiJ4In0.AA", MP_JWT_HEADER_BAD_ALG}, /* no alg */
        {"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", MP_JWT_HEADER_NOT_IMPLEMENTED_ALG},
        {"eyJhbGciOiJSUzI1NiJ9.e+J9.AA", MP_JWT_PAYLOAD_BAD_BASE64},
        {"eyJhbGciOiJSUzI1NiJ9.WzEsMl0.AA", MP_JWT_PAYLOAD_BAD_JSON}, /* [1,2] */
        {"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.AA", MP_JWT_PAYLOAD_ISS_NOT_STRING},
        {"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.AA", MP_JWT_PAYLOAD_EXP_NOT_INTEGER},
        {"eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsxXX0.AA", MP_JWT_PAYLOAD_AUD_NOT_STRING},
        {"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.A*", MP_JWT_SIGNATURE_BAD_BASE64},
        {"eyJhbGciOiJSUzI1NiIsImtpZCI6M30.eyJpc3MiOiJ4In0.AA", MP_JWT_HEADER_BAD_KID},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        enum mp_jwt_status got = mp_jwt_parse(cases[i].tok, strlen(cases[i].tok), &jwt);
        if (got != cases[i].want)
            fprintf(stderr, "case %zu (%s): got %s\n", i, cases[i].tok, mp_jwt_status_str(got));
        assert_int_equal(got, cases[i].want);
        mp_jwt_clear(&jwt);
    }
    assert_string_equal(mp_jwt_status_str(MP_JWT_MISSED), "Jwt is missing");
    assert_string_equal(mp_jwt_status_str(MP_JWT_VERIFICATION_FAIL), "Jwt verification fails");
}

static void test_claims_time_audience(void **st)
{
    (void)st;
    char *t = tk_token(&rsa_key, "RS256", NULL, PAYLOAD);
    struct mp_jwt jwt;
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_string_equal(jwt.iss, "https://issuer.example");
    assert_string_equal(jwt.sub, "alice");
    assert_int_equal(jwt.n_aud, 2);
    assert_int_equal(jwt.exp, 1700003600);
    assert_int_equal(mp_jwt_check_time(&jwt, NOW, 60, false, 0), MP_JWT_OK);
    /* expired, within and beyond the skew */
    assert_int_equal(mp_jwt_check_time(&jwt, 1700003600 + 60, 60, false, 0), MP_JWT_OK);
    assert_int_equal(mp_jwt_check_time(&jwt, 1700003600 + 61, 60, false, 0), MP_JWT_EXPIRED);
    /* not yet valid */
    assert_int_equal(mp_jwt_check_time(&jwt, 1699999000 - 60, 60, false, 0), MP_JWT_OK);
    assert_int_equal(mp_jwt_check_time(&jwt, 1699999000 - 61, 60, false, 0), MP_JWT_NOT_YET_VALID);
    /* lifetime 4600 s */
    assert_int_equal(mp_jwt_check_time(&jwt, NOW, 60, true, 4600), MP_JWT_OK);
    assert_int_equal(mp_jwt_check_time(&jwt, NOW, 60, true, 4599), MP_JWT_LIFETIME_TOO_LONG);
    /* audiences: exact, scheme and trailing slash ignored */
    const char *a1[] = {"svc-a"}, *a2[] = {"http://svc-b"}, *a3[] = {"svc-c", "other"};
    assert_true(mp_jwt_audience_allowed(&jwt, a1, 1));
    assert_true(mp_jwt_audience_allowed(&jwt, a2, 1));
    assert_false(mp_jwt_audience_allowed(&jwt, a3, 2));
    assert_true(mp_jwt_audience_allowed(&jwt, NULL, 0));
    /* claims, nested too */
    const struct mp_json *c = mp_jwt_claim(&jwt, "nested.role");
    assert_non_null(c);
    assert_string_equal(c->u.str.s, "admin");
    assert_null(mp_jwt_claim(&jwt, "nested.none"));
    assert_non_null(mp_jwt_claim(&jwt, "groups"));
    mp_jwt_clear(&jwt);
    free(t);

    /* no exp with require_expiration */
    t = tk_token(&rsa_key, "RS256", NULL, "{\"iss\":\"a\"}");
    assert_int_equal(mp_jwt_parse(t, strlen(t), &jwt), MP_JWT_OK);
    assert_int_equal(mp_jwt_check_time(&jwt, NOW, 60, false, 0), MP_JWT_OK);
    assert_int_equal(mp_jwt_check_time(&jwt, NOW, 60, true, 0), MP_JWT_MISSING_EXPIRATION);
    mp_jwt_clear(&jwt);
    free(t);
}

static void test_base64url(void **st)
{
    (void)st;
    uint8_t *out;
    size_t len;
    assert_int_equal(mp_base64url_decode("aGVsbG8", 7, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(mp_base64url_decode("aGVsbG8=", 8, &out, &len), 0);
    free(out);
    assert_int_equal(mp_base64url_decode("aGVsbG8==", 9, &out, &len), MP_ERR_PARSE);
    assert_int_equal(mp_base64url_decode("a", 1, &out, &len), MP_ERR_PARSE);
    assert_int_equal(mp_base64url_decode("aGVs/G8", 7, &out, &len), MP_ERR_PARSE);
    assert_int_equal(mp_base64url_decode("aGVsbG9", 7, &out, &len),
                     MP_ERR_PARSE); /* non-zero tail bits */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t n = 0; n < 10; n++) {
        char *e = mp_base64url_encode(all + 250 - n, n, n & 1);
        assert_int_equal(mp_base64url_decode(e, strlen(e), &out, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, all + 250 - n, n);
        free(out);
        free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_rsa_algs),
        cmocka_unit_test(test_ec_algs),
        cmocka_unit_test(test_hmac_and_eddsa),
        cmocka_unit_test(test_kid_and_alg_selection),
        cmocka_unit_test(test_pem_keys),
        cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_claims_time_audience),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
