/*
 * jwt.h - verification of JWT access tokens (RFC 9068) signed with RS256,
 * ES256 or EdDSA (RFC 7515, RFC 7518, RFC 8037), against a parsed JWKS
 * (DESIGN §5). Pure crypto: no network and no clock of its own.
 */
#ifndef TRINED_JWT_H
#define TRINED_JWT_H

#include "daemon/jwks.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Why a token was refused. The names (jwt_status_name) go into audit rows
 * and must stay stable. */
typedef enum jwt_status {
    JWT_OK = 0,
    /* Not three base64url segments, bad base64url, header or payload not a
     * JSON object (or with duplicate members), too large, or a claim of the
     * wrong type (exp, nbf or iat not a number). */
    JWT_MALFORMED,
    /* typ missing or not at+jwt / application/at+jwt (case-insensitive). */
    JWT_BAD_TYP,
    /* alg not RS256, ES256 or EdDSA (none, HS*, PS*, ...), or a crit header
     * present. */
    JWT_BAD_ALG,
    /* No key in the set with that kid (or, without kid, no single key fitting
     * the alg). */
    JWT_UNKNOWN_KID,
    /* The kid names a key whose kty/crv/alg does not fit the token's alg. */
    JWT_KEY_MISMATCH,
    JWT_BAD_SIGNATURE,
    /* iss missing, not a string, or not equal to the configured issuer. */
    JWT_BAD_ISSUER,
    /* aud (string or array of strings) contains none of the audiences. */
    JWT_BAD_AUDIENCE,
    /* exp missing, or now > exp + leeway. */
    JWT_EXPIRED,
    /* nbf > now + leeway, or iat > now + leeway. */
    JWT_NOT_YET_VALID,
} jwt_status;

typedef struct jwt_params {
    const char *issuer;           /* required when check_claims */
    const char *const *audiences; /* the server's audience values */
    size_t n_audiences;           /* 0: no aud check */
    int64_t now_s;                /* unix seconds */
    int64_t leeway_s;             /* 60 in the daemon */
    size_t max_len;               /* token size cap in bytes; 0: 16384 */
    bool check_claims; /* false only for fixed vectors: skips typ, iss, aud,
                          exp, nbf, iat */
} jwt_params;

/* The token size cap used when jwt_params.max_len is 0. */
#define JWT_DEFAULT_MAX_LEN 16384

/* Returns 1 when token has the shape of a JWS compact serialization (exactly
 * two '.'), else 0: how the daemon tells a JWT from an opaque token. */
int jwt_is_jws(const char *token, size_t len);

/*
 * Verifies token (len bytes, need not be NUL-terminated) against keys and p.
 * On JWT_OK, and on JWT_EXPIRED and JWT_BAD_AUDIENCE (the signature
 * verified: the claims are authentic, only not acceptable here), *claims
 * gets a new reference to the payload object (the caller decrefs). On
 * other failures *claims is NULL and, when kid is non-NULL and the
 * status is JWT_UNKNOWN_KID, the header's kid is copied into kid (kid_len
 * bytes, NUL-terminated, "" if none) so the caller can refetch the key set
 * once and retry. detail (may be NULL) receives a short human-readable
 * reason that never contains the token itself. Safe to call from many
 * threads at once on one shared key set. Never crashes on any input.
 */
jwt_status jwt_verify(const char *token, size_t len, const jwks *keys,
                      const jwt_params *p, json_t **claims, char *kid,
                      size_t kid_len, char *detail, size_t detail_len);

/*
 * Checks the JWS layer only: size, shape, base64url, the header (alg, crit,
 * and typ when p->check_claims), the key choice and the signature. The
 * payload is decoded but not parsed, so this also verifies tokens whose
 * payload is not JSON (RFC 8037 Appendix A.4). Returns JWT_OK when the
 * signature is good; kid and detail as for jwt_verify. jwt_verify runs
 * exactly these steps before it looks at the claims.
 */
jwt_status jwt_verify_signature(const char *token, size_t len, const jwks *keys,
                                const jwt_params *p, char *kid, size_t kid_len,
                                char *detail, size_t detail_len);

/* Returns the stable lower-case name of a status, e.g. "bad_signature",
 * "expired"; "unknown" for a value outside the enum. */
const char *jwt_status_name(jwt_status s);

/*
 * Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no whitespace,
 * no '+', '/' or '=', and non-canonical trailing bits are rejected. Returns
 * the decoded length, or -1. out must hold (len * 3) / 4 + 1 bytes: on
 * success the decoded bytes are followed by a NUL.
 */
ssize_t jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
