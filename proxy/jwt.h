/*
 * jwt.h: JSON Web Tokens (RFC 7519) as envoy.filters.http.jwt_authn checks
 * them: compact-serialization parsing (base64url header.payload.signature),
 * the registered claims, time and audience checks, and the status codes and
 * messages Envoy's jwt_verify_lib reports (the local reply bodies users see).
 * Signatures are checked against a key set in jwt_jwks.h.
 */
#ifndef MP_JWT_H
#define MP_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_json;
struct mp_json_doc;

/** Verification outcome; the names follow Envoy's JwtVerify::Status. */
enum mp_jwt_status {
    MP_JWT_OK = 0,
    MP_JWT_MISSED,
    MP_JWT_NOT_YET_VALID,
    MP_JWT_EXPIRED,
    MP_JWT_BAD_FORMAT,
    MP_JWT_HEADER_BAD_BASE64,
    MP_JWT_HEADER_BAD_JSON,
    MP_JWT_HEADER_BAD_ALG,
    MP_JWT_HEADER_NOT_IMPLEMENTED_ALG,
    MP_JWT_HEADER_BAD_KID,
    MP_JWT_PAYLOAD_BAD_BASE64,
    MP_JWT_PAYLOAD_BAD_JSON,
    MP_JWT_PAYLOAD_ISS_NOT_STRING,
    MP_JWT_PAYLOAD_SUB_NOT_STRING,
    MP_JWT_PAYLOAD_IAT_NOT_INTEGER,
    MP_JWT_PAYLOAD_NBF_NOT_INTEGER,
    MP_JWT_PAYLOAD_EXP_NOT_INTEGER,
    MP_JWT_PAYLOAD_AUD_NOT_STRING,
    MP_JWT_SIGNATURE_BAD_BASE64,
    MP_JWT_UNKNOWN_ISSUER,
    MP_JWT_AUDIENCE_NOT_ALLOWED,
    MP_JWT_VERIFICATION_FAIL,
    MP_JWT_MISSING_EXPIRATION,
    MP_JWT_LIFETIME_TOO_LONG,
    MP_JWT_JWKS_KID_ALG_MISMATCH,
    MP_JWT_JWKS_NO_VALID_KEYS,
    MP_JWT_ED25519_SIGNATURE_WRONG_LENGTH,
    MP_JWT_SUBJECT_NOT_ALLOWED,
};

/** Signature algorithms ("alg"). */
enum mp_jwt_alg {
    MP_JWT_ALG_NONE = 0, /* not accepted */
    MP_JWT_ALG_RS256,
    MP_JWT_ALG_RS384,
    MP_JWT_ALG_RS512,
    MP_JWT_ALG_PS256,
    MP_JWT_ALG_PS384,
    MP_JWT_ALG_PS512,
    MP_JWT_ALG_ES256,
    MP_JWT_ALG_ES384,
    MP_JWT_ALG_ES512,
    MP_JWT_ALG_HS256,
    MP_JWT_ALG_HS384,
    MP_JWT_ALG_HS512,
    MP_JWT_ALG_EDDSA,
};

/** A parsed token. Strings point into the token's own copies. */
struct mp_jwt {
    enum mp_jwt_alg alg;
    const char *alg_name; /* as written in the header */
    const char *kid;      /* NULL when absent */
    const char *iss;      /* NULL when absent */
    const char *sub;      /* NULL when absent */
    const char **aud;     /* aud as a list (a string aud is a list of one) */
    size_t n_aud;
    uint64_t exp, nbf, iat; /* 0 when absent */

    char *signed_part; /* "header.payload" (what the signature covers), NUL-terminated */
    size_t signed_len;
    const char *payload_b64; /* the payload segment as received (in signed_part) */
    size_t payload_b64_len;
    uint8_t *signature;
    size_t signature_len;
    struct mp_json_doc *header_doc;
    struct mp_json_doc *payload_doc; /* the claims; mp_json_doc_root() is an object */
};

/** Static message for a status, the local reply body Envoy sends ("Jwt is expired"). */
const char *mp_jwt_status_str(enum mp_jwt_status st);

/** The algorithm named name (len bytes), or MP_JWT_ALG_NONE when unsupported. */
enum mp_jwt_alg mp_jwt_alg_from_name(const char *name, size_t len);

/**
 * Decodes base64url (RFC 4648 section 5; padding '=' allowed but not
 * required; standard-alphabet '+' and '/' refused) of in[0..len) into a new
 * malloc'd buffer *out (NUL-terminated, *out_len excludes the NUL). Returns
 * 0, MP_ERR_PARSE on a bad character or length, or MP_ERR_NOMEM.
 */
int mp_base64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);

/**
 * Encodes in[0..len) as base64url, with '=' padding when pad is true, into a
 * new malloc'd NUL-terminated string. Returns NULL when out of memory.
 */
char *mp_base64url_encode(const uint8_t *in, size_t len, bool pad);

/**
 * Parses a compact JWT into *jwt (zeroed first; release with
 * mp_jwt_clear even on failure). Checks the structure and the claim types,
 * not the signature nor the times. Returns MP_JWT_OK or the status that
 * names what is wrong (MP_JWT_BAD_FORMAT, MP_JWT_HEADER_BAD_JSON, ...);
 * out of memory is reported as MP_JWT_BAD_FORMAT.
 */
enum mp_jwt_status mp_jwt_parse(const char *token, size_t len, struct mp_jwt *jwt);

/** Frees what mp_jwt_parse stored in jwt; jwt is zeroed. */
void mp_jwt_clear(struct mp_jwt *jwt);

/**
 * Checks nbf and exp against now (Unix seconds) with clock_skew seconds of
 * leeway, Envoy's way: not yet valid when now + skew < nbf; expired when
 * exp != 0 and now > exp + skew. Also require_exp (MP_JWT_MISSING_EXPIRATION
 * when exp is absent) and max_lifetime seconds (0 = unlimited: the token
 * must have exp, and exp - iat, or exp - now without iat, must not exceed
 * it). Returns MP_JWT_OK or the failing status.
 */
enum mp_jwt_status mp_jwt_check_time(const struct mp_jwt *jwt, uint64_t now, uint64_t clock_skew,
                                     bool require_exp, uint64_t max_lifetime);

/**
 * True when one of the token's audiences is in allowed[0..n) (an empty
 * allowed list accepts any token). Audiences compare with an optional
 * "http://" / "https://" scheme and trailing '/' ignored, as Envoy does.
 */
bool mp_jwt_audience_allowed(const struct mp_jwt *jwt, const char *const *allowed, size_t n);

/**
 * Finds a claim of the payload by name; a name with '.' walks nested
 * objects ("a.b" is payload["a"]["b"]) when no top-level claim has the full
 * name. Returns the node (borrowed from jwt) or NULL.
 */
const struct mp_json *mp_jwt_claim(const struct mp_jwt *jwt, const char *name);

#endif
