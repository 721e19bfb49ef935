/*
 * jwt_jwks.h: JSON Web Key Sets (RFC 7517) and JWT signature verification
 * with BoringSSL: RSA (RS256/384/512, PS256/384/512), EC (ES256/384/512 on
 * P-256/P-384/P-521), oct (HS256/384/512) and OKP Ed25519 (EdDSA). A key set
 * can also be given as a PEM public key, as Envoy accepts. A parsed set is
 * immutable and can be shared by threads.
 */
#ifndef MP_JWT_JWKS_H
#define MP_JWT_JWKS_H

#include <stddef.h>

#include "jwt.h"

struct mp_jwks;

/**
 * Parses a key set from text: a JWKS JSON object ({"keys": [...]}), a single
 * JWK object, or a PEM "PUBLIC KEY" / "RSA PUBLIC KEY". Keys that do not
 * parse or that have an unsupported kty are skipped, as Envoy does; a set
 * with no usable key fails. Returns 0 with *out (free with mp_jwks_free), or
 * MP_ERR_PARSE / MP_ERR_NOMEM with a malloc'd message in *err (may be NULL).
 */
int mp_jwks_parse(const char *text, size_t len, struct mp_jwks **out, char **err);

/** Frees a key set. NULL is allowed. */
void mp_jwks_free(struct mp_jwks *jwks);

/** Number of usable keys in the set. */
size_t mp_jwks_count(const struct mp_jwks *jwks);

/**
 * Verifies jwt's signature with the keys of jwks whose kid (when both the
 * token and the key have one) and alg (when the key has one) and type match
 * the token. Returns MP_JWT_OK when one key verifies it,
 * MP_JWT_JWKS_KID_ALG_MISMATCH when no key fits the token,
 * MP_JWT_ED25519_SIGNATURE_WRONG_LENGTH, or MP_JWT_VERIFICATION_FAIL.
 */
enum mp_jwt_status mp_jwks_verify(const struct mp_jwks *jwks, const struct mp_jwt *jwt);

#endif
