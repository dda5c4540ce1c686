/*
 * jwks.h - JSON Web Key Sets (RFC 7517 §5) for verifying bearer JWTs
 * (DESIGN §5). Parsing is pure: no network, no clock. The network side
 * fetches the document and hands its bytes to jwks_parse.
 */
#ifndef TRINED_JWKS_H
#define TRINED_JWKS_H

#include <openssl/types.h>
#include <stddef.h>

/* An immutable parsed key set. Once built it is only read, so one key set
 * may be shared by many threads without locks. */
typedef struct jwks jwks;

/*
 * Parses a JWKS document: {"keys":[...]}. Usable keys are kty RSA (n, e;
 * RS256), kty EC crv P-256 (x, y; ES256) and kty OKP crv Ed25519 (x;
 * EdDSA). A key is skipped (counted, not fatal) when its "use" is not
 * "sig", its "alg" does not fit its kty/crv, it carries private members
 * ("d", "p", "q", "dp", "dq", "qi", "oth", "k"), a member is bad base64url,
 * a coordinate has the wrong length (P-256 x/y 32 bytes, Ed25519 x 32
 * bytes), the point is not on the curve, an RSA modulus is under 2048 bits,
 * or its kty/crv is unknown. A document that is not a JSON object with a
 * "keys" array is an error.
 *
 * Returns 0 and sets *out to a new key set (free it with jwks_free);
 * TRINE_EINVAL with a message in err (NUL-terminated, at most errlen bytes,
 * err may be NULL when errlen is 0); or TRINE_ENOMEM. On failure *out is
 * NULL.
 */
int jwks_parse(const char *json, size_t len, jwks **out, char *err,
               size_t errlen);

/* Frees a key set. NULL is a no-op. */
void jwks_free(jwks *k);

/* Returns the number of usable keys (0 for NULL). */
size_t jwks_count(const jwks *k);

/* Returns the number of keys that were skipped (0 for NULL). */
size_t jwks_skipped(const jwks *k);

/* The key types this verifier uses; each fits exactly one JWS alg. */
typedef enum jwks_kty {
    JWKS_KTY_RSA = 1, /* kty RSA: RS256 */
    JWKS_KTY_EC_P256, /* kty EC, crv P-256: ES256 */
    JWKS_KTY_ED25519, /* kty OKP, crv Ed25519: EdDSA */
} jwks_kty;

/* One usable key, owned by its key set and read-only. */
typedef struct jwks_key {
    char *kid;      /* NUL-terminated; NULL when the JWK has no kid */
    size_t kid_len; /* bytes in kid, 0 when none */
    jwks_kty kty;
    EVP_PKEY *pkey; /* the public key, built once at parse time */
} jwks_key;

/* Returns the i-th usable key (in document order), borrowed from k, or NULL
 * when i >= jwks_count(k). */
const jwks_key *jwks_key_at(const jwks *k, size_t i);

#endif
