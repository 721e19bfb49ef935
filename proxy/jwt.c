/*
 * jwt.c: JWT compact serialization, claims, time and audience checks.
 * Status messages are jwt_verify_lib's, since Envoy sends them as the body of
 * its 401 and clients (and Istio's tests) look at them.
 */
#include "jwt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mp_common.h"

const char *mp_jwt_status_str(enum mp_jwt_status st)
{
    switch (st) {
    case MP_JWT_OK: return "OK";
    case MP_JWT_MISSED: return "Jwt is missing";
    case MP_JWT_NOT_YET_VALID: return "Jwt not yet valid";
    case MP_JWT_EXPIRED: return "Jwt is expired";
    case MP_JWT_BAD_FORMAT:
        return "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
    case MP_JWT_HEADER_BAD_BASE64: return "Jwt header is an invalid Base64url encoded";
    case MP_JWT_HEADER_BAD_JSON: return "Jwt header is an invalid JSON";
    case MP_JWT_HEADER_BAD_ALG: return "Jwt header [alg] field is required and must be a string";
    case MP_JWT_HEADER_NOT_IMPLEMENTED_ALG: return "Jwt header [alg] is not supported";
    case MP_JWT_HEADER_BAD_KID: return "Jwt header [kid] field is not a string";
    case MP_JWT_PAYLOAD_BAD_BASE64: return "Jwt payload is an invalid Base64url encoded";
    case MP_JWT_PAYLOAD_BAD_JSON: return "Jwt payload is an invalid JSON";
    case MP_JWT_PAYLOAD_ISS_NOT_STRING: return "Jwt payload [iss] field is not a string";
    case MP_JWT_PAYLOAD_SUB_NOT_STRING: return "Jwt payload [sub] field is not a string";
    case MP_JWT_PAYLOAD_IAT_NOT_INTEGER: return "Jwt payload [iat] field is not an integer";
    case MP_JWT_PAYLOAD_NBF_NOT_INTEGER: return "Jwt payload [nbf] field is not an integer";
    case MP_JWT_PAYLOAD_EXP_NOT_INTEGER: return "Jwt payload [exp] field is not an integer";
    case MP_JWT_PAYLOAD_AUD_NOT_STRING:
        return "Jwt payload [aud] field is not a string or string list";
    case MP_JWT_SIGNATURE_BAD_BASE64: return "Jwt signature is an invalid Base64url encoded";
    case MP_JWT_UNKNOWN_ISSUER: return "Jwt issuer is not configured";
    case MP_JWT_AUDIENCE_NOT_ALLOWED: return "Audiences in Jwt are not allowed";
    case MP_JWT_VERIFICATION_FAIL: return "Jwt verification fails";
    case MP_JWT_MISSING_EXPIRATION: return "Jwt doesn't have expiration time";
    case MP_JWT_LIFETIME_TOO_LONG: return "Jwt lifetime is longer than the configured max_lifetime";
    case MP_JWT_JWKS_KID_ALG_MISMATCH: return "Jwks doesn't have key to match kid or alg from Jwt";
    case MP_JWT_JWKS_NO_VALID_KEYS: return "Jwks doesn't have any valid public key";
    case MP_JWT_ED25519_SIGNATURE_WRONG_LENGTH: return "Jwt ED25519 signature is wrong length";
    case MP_JWT_SUBJECT_NOT_ALLOWED: return "Jwt subject is not allowed";
    }
    return "Jwt verification fails";
}

static const struct {
    const char *name;
    enum mp_jwt_alg alg;
} alg_names[] = {
    {"RS256", MP_JWT_ALG_RS256}, {"RS384", MP_JWT_ALG_RS384}, {"RS512", MP_JWT_ALG_RS512},
    {"PS256", MP_JWT_ALG_PS256}, {"PS384", MP_JWT_ALG_PS384}, {"PS512", MP_JWT_ALG_PS512},
    {"ES256", MP_JWT_ALG_ES256}, {"ES384", MP_JWT_ALG_ES384}, {"ES512", MP_JWT_ALG_ES512},
    {"HS256", MP_JWT_ALG_HS256}, {"HS384", MP_JWT_ALG_HS384}, {"HS512", MP_JWT_ALG_HS512},
    {"EdDSA", MP_JWT_ALG_EDDSA},
};

enum mp_jwt_alg mp_jwt_alg_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < MP_ARRAY_LEN(alg_names); i++)
        if (strlen(alg_names[i].name) == len && memcmp(alg_names[i].name, name, len) == 0)
            return alg_names[i].alg;
    return MP_JWT_ALG_NONE;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int mp_base64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    /* padding is optional; when present it must complete the last quantum */
    size_t pad = 0;
    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad && (len + pad) % 4 != 0)
        return MP_ERR_PARSE;
    if (len % 4 == 1)
        return MP_ERR_PARSE;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return MP_ERR_NOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return MP_ERR_PARSE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* leftover bits of the last character must be zero (canonical encoding) */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return MP_ERR_PARSE;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

char *mp_base64url_encode(const uint8_t *in, size_t len, bool pad)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

void mp_jwt_clear(struct mp_jwt *jwt)
{
    free(jwt->signed_part);
    free(jwt->signature);
    free((void *)jwt->aud);
    mp_json_doc_free(jwt->header_doc);
    mp_json_doc_free(jwt->payload_doc);
    memset(jwt, 0, sizeof(*jwt));
}

/* Decodes one segment and parses it as a JSON object. */
static enum mp_jwt_status segment_json(const char *seg, size_t len, struct mp_json_doc **doc,
                                       enum mp_jwt_status bad_b64, enum mp_jwt_status bad_json)
{
    uint8_t *raw;
    size_t raw_len;
    int rc = mp_base64url_decode(seg, len, &raw, &raw_len);
    if (rc == MP_ERR_NOMEM)
        return MP_JWT_BAD_FORMAT;
    if (rc < 0)
        return bad_b64;
    /* a token is attacker input: keep its JSON small and shallow */
    struct mp_json_limits lim = {.max_bytes = 64 * 1024, .max_depth = 32, .max_nodes = 8192};
    rc = mp_json_parse((const char *)raw, raw_len, &lim, doc, NULL);
    free(raw);
    if (rc < 0 || mp_json_doc_root(*doc)->type != MP_JSON_OBJECT)
        return bad_json;
    return MP_JWT_OK;
}

/* A NumericDate claim: a non-negative integer (a JSON number with no fraction). */
static int numeric_date(const struct mp_json *v, uint64_t *out)
{
    if (!v)
        return 0;
    if (v->type != MP_JSON_NUMBER)
        return -1;
    char *end;
    double d = strtod(v->u.str.s, &end);
    if (*end != '\0' || !isfinite(d) || d < 0 || d > 18446744073709549568.0 || floor(d) != d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static enum mp_jwt_status parse_claims(struct mp_jwt *jwt)
{
    const struct mp_json *h = mp_json_doc_root(jwt->header_doc);
    const struct mp_json *alg = mp_json_object_get(h, "alg");
    if (!alg || alg->type != MP_JSON_STRING)
        return MP_JWT_HEADER_BAD_ALG;
    jwt->alg_name = alg->u.str.s;
    jwt->alg = mp_jwt_alg_from_name(alg->u.str.s, alg->u.str.len);
    if (jwt->alg == MP_JWT_ALG_NONE)
        return MP_JWT_HEADER_NOT_IMPLEMENTED_ALG;
    const struct mp_json *kid = mp_json_object_get(h, "kid");
    if (kid && kid->type != MP_JSON_STRING)
        return MP_JWT_HEADER_BAD_KID;
    jwt->kid = kid ? kid->u.str.s : NULL;

    const struct mp_json *p = mp_json_doc_root(jwt->payload_doc);
    const struct mp_json *v = mp_json_object_get(p, "iss");
    if (v && v->type != MP_JSON_STRING)
        return MP_JWT_PAYLOAD_ISS_NOT_STRING;
    jwt->iss = v ? v->u.str.s : NULL;
    v = mp_json_object_get(p, "sub");
    if (v && v->type != MP_JSON_STRING)
        return MP_JWT_PAYLOAD_SUB_NOT_STRING;
    jwt->sub = v ? v->u.str.s : NULL;
    if (numeric_date(mp_json_object_get(p, "iat"), &jwt->iat) < 0)
        return MP_JWT_PAYLOAD_IAT_NOT_INTEGER;
    if (numeric_date(mp_json_object_get(p, "nbf"), &jwt->nbf) < 0)
        return MP_JWT_PAYLOAD_NBF_NOT_INTEGER;
    if (numeric_date(mp_json_object_get(p, "exp"), &jwt->exp) < 0)
        return MP_JWT_PAYLOAD_EXP_NOT_INTEGER;

    v = mp_json_object_get(p, "aud");
    if (!v)
        return MP_JWT_OK;
    if (v->type == MP_JSON_STRING) {
        jwt->aud = malloc(sizeof(char *));
        if (!jwt->aud)
            return MP_JWT_BAD_FORMAT;
        jwt->aud[0] = v->u.str.s;
        jwt->n_aud = 1;
        return MP_JWT_OK;
    }
    if (v->type != MP_JSON_ARRAY)
        return MP_JWT_PAYLOAD_AUD_NOT_STRING;
    if (v->u.arr.n == 0)
        return MP_JWT_OK;
    jwt->aud = malloc(v->u.arr.n * sizeof(char *));
    if (!jwt->aud)
        return MP_JWT_BAD_FORMAT;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        if (v->u.arr.items[i]->type != MP_JSON_STRING)
            return MP_JWT_PAYLOAD_AUD_NOT_STRING;
        jwt->aud[jwt->n_aud++] = v->u.arr.items[i]->u.str.s;
    }
    return MP_JWT_OK;
}

enum mp_jwt_status mp_jwt_parse(const char *token, size_t len, struct mp_jwt *jwt)
{
    memset(jwt, 0, sizeof(*jwt));
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return MP_JWT_BAD_FORMAT;
    const char *rest = dot1 + 1;
    const char *dot2 = memchr(rest, '.', len - (size_t)(rest - token));
    if (!dot2)
        return MP_JWT_BAD_FORMAT;
    const char *sig = dot2 + 1;
    size_t sig_len = len - (size_t)(sig - token);
    if (memchr(sig, '.', sig_len))
        return MP_JWT_BAD_FORMAT;

    enum mp_jwt_status st = segment_json(token, (size_t)(dot1 - token), &jwt->header_doc,
                                         MP_JWT_HEADER_BAD_BASE64, MP_JWT_HEADER_BAD_JSON);
    if (st != MP_JWT_OK)
        return st;
    st = segment_json(rest, (size_t)(dot2 - rest), &jwt->payload_doc, MP_JWT_PAYLOAD_BAD_BASE64,
                      MP_JWT_PAYLOAD_BAD_JSON);
    if (st != MP_JWT_OK)
        return st;
    int rc = mp_base64url_decode(sig, sig_len, &jwt->signature, &jwt->signature_len);
    if (rc == MP_ERR_NOMEM)
        return MP_JWT_BAD_FORMAT;
    if (rc < 0)
        return MP_JWT_SIGNATURE_BAD_BASE64;

    jwt->signed_len = (size_t)(dot2 - token);
    jwt->signed_part = malloc(jwt->signed_len + 1);
    if (!jwt->signed_part)
        return MP_JWT_BAD_FORMAT;
    memcpy(jwt->signed_part, token, jwt->signed_len);
    jwt->signed_part[jwt->signed_len] = '\0';
    jwt->payload_b64 = jwt->signed_part + (rest - token);
    jwt->payload_b64_len = (size_t)(dot2 - rest);
    return parse_claims(jwt);
}

enum mp_jwt_status mp_jwt_check_time(const struct mp_jwt *jwt, uint64_t now, uint64_t clock_skew,
                                     bool require_exp, uint64_t max_lifetime)
{
    if (jwt->nbf && now + clock_skew < jwt->nbf)
        return MP_JWT_NOT_YET_VALID;
    if (jwt->exp && now > jwt->exp + clock_skew)
        return MP_JWT_EXPIRED;
    if ((require_exp || max_lifetime) && jwt->exp == 0)
        return MP_JWT_MISSING_EXPIRATION;
    if (max_lifetime) {
        uint64_t from = jwt->iat ? jwt->iat : now;
        if (jwt->exp > from && jwt->exp - from > max_lifetime)
            return MP_JWT_LIFETIME_TOO_LONG;
    }
    return MP_JWT_OK;
}

/* The audience without an http(s):// scheme and a trailing '/'. */
static void aud_norm(const char *a, const char **s, size_t *len)
{
    if (strncmp(a, "https://", 8) == 0)
        a += 8;
    else if (strncmp(a, "http://", 7) == 0)
        a += 7;
    size_t n = strlen(a);
    if (n > 0 && a[n - 1] == '/')
        n--;
    *s = a;
    *len = n;
}

bool mp_jwt_audience_allowed(const struct mp_jwt *jwt, const char *const *allowed, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < jwt->n_aud; i++) {
        const char *a;
        size_t al;
        aud_norm(jwt->aud[i], &a, &al);
        for (size_t j = 0; j < n; j++) {
            const char *b;
            size_t bl;
            aud_norm(allowed[j], &b, &bl);
            if (al == bl && memcmp(a, b, al) == 0)
                return true;
        }
    }
    return false;
}

const struct mp_json *mp_jwt_claim(const struct mp_jwt *jwt, const char *name)
{
    if (!jwt->payload_doc)
        return NULL;
    const struct mp_json *node = mp_json_doc_root(jwt->payload_doc);
    const struct mp_json *v = mp_json_object_get(node, name);
    if (v || !strchr(name, '.'))
        return v;
    const char *p = name;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char key[256];
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        node = mp_json_object_get(node, key);
        p = dot ? dot + 1 : p + n;
    }
    return node;
}
