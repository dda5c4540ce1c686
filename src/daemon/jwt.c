/*
 * jwt.c - verification of JWT access tokens (RFC 9068) in the JWS compact
 * serialization (RFC 7515 §7.1), signed with RS256, ES256 or EdDSA (RFC
 * 7518 §3.3 and §3.4, RFC 8037 §3.1), against a parsed key set.
 *
 * The order of the checks is part of the contract, because it decides which
 * status a token with several faults gets: size, shape and base64url first
 * (JWT_MALFORMED), then the header (alg and crit, then typ), then the key,
 * then the signature, and only then the payload and its claims. A payload
 * is never parsed before its signature has been checked, so a changed byte
 * in a signed token is always JWT_BAD_SIGNATURE.
 *
 * Nothing here keeps state: one const key set serves every thread, and each
 * call makes its own EVP_MD_CTX.
 */
#include "daemon/jwt.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decoded parts of a token; the buffers are owned. */
typedef struct jws_parts {
    const char *signing_input; /* header_b64 '.' payload_b64, in the token */
    size_t signing_len;
    unsigned char *header;
    size_t header_len;
    unsigned char *payload;
    size_t payload_len;
    unsigned char *sig;
    size_t sig_len;
} jws_parts;

static const signed char b64url_value[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,
    ['G'] = 7,  ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* Returns the 6-bit value of a base64url character, or -1. The table holds
 * value + 1 so that its zero entries mean "not in the alphabet". */
static int b64url_char(unsigned char c)
{
    return b64url_value[c] - 1;
}

ssize_t jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    size_t i, o = 0;
    uint32_t acc = 0;
    int bits = 0, v;

    if (in == NULL || out == NULL || len % 4 == 1)
        return -1;
    for (i = 0; i < len; i++) {
        v = b64url_char((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero: otherwise two encodings would decode
     * to the same bytes (RFC 4648 §3.5), and a signature could be altered
     * without changing what it verifies. */
    if (acc != 0)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}

int jwt_is_jws(const char *token, size_t len)
{
    size_t i, dots = 0;

    if (token == NULL)
        return 0;
    for (i = 0; i < len; i++) {
        if (token[i] == '.')
            dots++;
    }
    return dots == 2;
}

const char *jwt_status_name(jwt_status s)
{
    switch (s) {
    case JWT_OK:
        return "ok";
    case JWT_MALFORMED:
        return "malformed";
    case JWT_BAD_TYP:
        return "bad_typ";
    case JWT_BAD_ALG:
        return "bad_alg";
    case JWT_UNKNOWN_KID:
        return "unknown_kid";
    case JWT_KEY_MISMATCH:
        return "key_mismatch";
    case JWT_BAD_SIGNATURE:
        return "bad_signature";
    case JWT_BAD_ISSUER:
        return "bad_issuer";
    case JWT_BAD_AUDIENCE:
        return "bad_audience";
    case JWT_EXPIRED:
        return "expired";
    case JWT_NOT_YET_VALID:
        return "not_yet_valid";
    }
    return "unknown";
}

/* Writes a reason into detail. Reasons are fixed text: values from the token
 * are attacker-chosen and may go to logs, so they are never echoed. */
static jwt_status fail(jwt_status st, char *detail, size_t detail_len,
                       const char *why)
{
    if (detail != NULL && detail_len > 0)
        snprintf(detail, detail_len, "%s", why);
    return st;
}

static void parts_free(jws_parts *pp)
{
    free(pp->header);
    free(pp->payload);
    free(pp->sig);
}

/* Decodes one segment into a new buffer. Returns 0, or -1 when it is not
 * strict base64url or memory runs out (both fail closed). */
static int decode_segment(const char *s, size_t n, unsigned char **out,
                          size_t *outlen)
{
    ssize_t got;

    *out = malloc(n * 3 / 4 + 1);
    if (*out == NULL)
        return -1;
    got = jwt_b64url_decode(s, n, *out);
    if (got < 0)
        return -1;
    *outlen = (size_t)got;
    return 0;
}

/* Splits and decodes a compact JWS. The header and payload segments must
 * not be empty; the signature segment may be (an unsecured "alg":"none"
 * token ends in '.'), so that such a token is refused for its alg. */
static jwt_status split_token(const char *token, size_t len, jws_parts *pp,
                              char *detail, size_t detail_len)
{
    const char *d1, *d2;

    d1 = memchr(token, '.', len);
    d2 =
        d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d1 == NULL || d2 == NULL ||
        memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token is not three dot-separated segments");
    if (d1 == token || d2 == d1 + 1)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token has an empty header or payload segment");
    pp->signing_input = token;
    pp->signing_len = (size_t)(d2 - token);
    if (decode_segment(token, (size_t)(d1 - token), &pp->header,
                       &pp->header_len) != 0 ||
        decode_segment(d1 + 1, (size_t)(d2 - d1 - 1), &pp->payload,
                       &pp->payload_len) != 0 ||
        decode_segment(d2 + 1, len - (size_t)(d2 + 1 - token), &pp->sig,
                       &pp->sig_len) != 0)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token segment is not strict base64url");
    return JWT_OK;
}

/* Returns true when s equals want, ASCII case-insensitively. */
static bool ascii_caseeq(const char *s, size_t n, const char *want)
{
    size_t i;

    if (n != strlen(want))
        return false;
    for (i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)want[i];

        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* Maps a header alg to the one key type that may verify it; 0 when the alg
 * is not accepted. */
static jwks_kty alg_kty(const json_t *alg)
{
    const char *a;

    if (!json_is_string(alg))
        return 0;
    a = json_string_value(alg);
    if (strcmp(a, "RS256") == 0)
        return JWKS_KTY_RSA;
    if (strcmp(a, "ES256") == 0)
        return JWKS_KTY_EC_P256;
    if (strcmp(a, "EdDSA") == 0)
        return JWKS_KTY_ED25519;
    return 0;
}

/* Chooses the verification key. With a kid, only keys with exactly that kid
 * are candidates, and they must be of the alg's key type; without one, the
 * set must hold exactly one key of that type. Returns JWT_OK with *out. */
static jwt_status choose_key(const jwks *keys, jwks_kty want, const json_t *kid,
                             const jwks_key **out, char *detail,
                             size_t detail_len)
{
    const jwks_key *k, *found = NULL;
    size_t i, named = 0, fitting = 0;

    *out = NULL;
    for (i = 0; i < jwks_count(keys); i++) {
        k = jwks_key_at(keys, i);
        if (kid != NULL &&
            (k->kid == NULL || k->kid_len != json_string_length(kid) ||
             memcmp(k->kid, json_string_value(kid), k->kid_len) != 0))
            continue;
        named++;
        if (k->kty != want)
            continue;
        fitting++;
        if (found == NULL)
            found = k;
    }
    if (kid != NULL && named == 0)
        return fail(JWT_UNKNOWN_KID, detail, detail_len,
                    "no key in the key set has the token's kid");
    if (kid != NULL && fitting == 0)
        return fail(JWT_KEY_MISMATCH, detail, detail_len,
                    "the key named by kid does not fit the token's alg");
    if (kid == NULL && fitting != 1)
        return fail(JWT_UNKNOWN_KID, detail, detail_len,
                    fitting == 0 ? "token has no kid and no key fits its alg"
                                 : "token has no kid and several keys fit "
                                   "its alg");
    *out = found;
    return JWT_OK;
}

/* Converts a JOSE ECDSA signature (r || s, 32 bytes each, RFC 7518 §3.4)
 * into the DER form OpenSSL verifies. Returns a new buffer (caller frees
 * with OPENSSL_free) and its length in *der_len, or NULL. */
static unsigned char *es256_to_der(const unsigned char *sig, size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int n;

    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    /* ECDSA_SIG_set0 took r and s. */
    n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *der_len = (size_t)n;
    return der;
}

/* Returns true when sig is a good signature by key over the signing input. */
static bool signature_ok(const jwks_key *key, const jws_parts *pp)
{
    EVP_MD_CTX *ctx = NULL;
    unsigned char *der = NULL;
    const unsigned char *sig = pp->sig;
    size_t sig_len = pp->sig_len;
    const EVP_MD *md = NULL;
    bool ok = false;

    switch (key->kty) {
    case JWKS_KTY_RSA:
        /* RSASSA-PKCS1-v1_5 signatures are exactly the modulus size. */
        if (sig_len == 0 || sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
            return false;
        md = EVP_sha256();
        break;
    case JWKS_KTY_EC_P256:
        if (sig_len != 64)
            return false;
        der = es256_to_der(sig, &sig_len);
        if (der == NULL)
            goto done;
        sig = der;
        md = EVP_sha256();
        break;
    case JWKS_KTY_ED25519:
        /* Ed25519 hashes internally: no digest (RFC 8032 §5.1). */
        if (sig_len != 64)
            return false;
        break;
    default:
        return false;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        goto done;
    if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, key->pkey) != 1)
        goto done;
    ok = EVP_DigestVerify(ctx, sig, sig_len,
                          (const unsigned char *)pp->signing_input,
                          pp->signing_len) == 1;
done:
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    /* A failed verify leaves reasons on this thread's error queue; they must
     * not leak into whatever OpenSSL call this thread makes next. */
    ERR_clear_error();
    return ok;
}

/* Copies the header's kid (or "") into kid for the caller's refetch. */
static void copy_kid(const json_t *hkid, char *kid, size_t kid_len)
{
    size_t n;

    if (kid == NULL || kid_len == 0)
        return;
    kid[0] = '\0';
    if (!json_is_string(hkid))
        return;
    n = json_string_length(hkid);
    if (n >= kid_len)
        n = kid_len - 1;
    memcpy(kid, json_string_value(hkid), n);
    kid[n] = '\0';
}

/* The JWS layer: everything but the claims. On JWT_OK pp holds the decoded
 * parts (the caller frees them with parts_free in every case). */
static jwt_status verify_jws(const char *token, size_t len, const jwks *keys,
                             const jwt_params *p, jws_parts *pp, char *kid,
                             size_t kid_len, char *detail, size_t detail_len)
{
    size_t max_len = p->max_len != 0 ? p->max_len : JWT_DEFAULT_MAX_LEN;
    json_t *hdr, *hkid, *typ;
    json_error_t jerr;
    const jwks_key *key;
    jwks_kty want;
    jwt_status st;

    if (len > max_len)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token is larger than the size limit");
    st = split_token(token, len, pp, detail, detail_len);
    if (st != JWT_OK)
        return st;
    hdr = json_loadb((const char *)pp->header, pp->header_len,
                     JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token header is not a JSON object");
    }
    want = alg_kty(json_object_get(hdr, "alg"));
    if (want == 0) {
        st = fail(JWT_BAD_ALG, detail, detail_len,
                  "token alg is not RS256, ES256 or EdDSA");
        goto done;
    }
    /* No extension is understood, so any crit header must be refused (RFC
     * 7515 §4.1.11). */
    if (json_object_get(hdr, "crit") != NULL) {
        st = fail(JWT_BAD_ALG, detail, detail_len,
                  "token header has a crit member");
        goto done;
    }
    typ = json_object_get(hdr, "typ");
    if (p->check_claims &&
        (!json_is_string(typ) ||
         (!ascii_caseeq(json_string_value(typ), json_string_length(typ),
                        "at+jwt") &&
          !ascii_caseeq(json_string_value(typ), json_string_length(typ),
                        "application/at+jwt")))) {
        st = fail(JWT_BAD_TYP, detail, detail_len,
                  "token typ is not at+jwt (RFC 9068)");
        goto done;
    }
    hkid = json_object_get(hdr, "kid");
    if (hkid != NULL && !json_is_string(hkid)) {
        st = fail(JWT_MALFORMED, detail, detail_len,
                  "token kid is not a string");
        goto done;
    }
    st = choose_key(keys, want, hkid, &key, detail, detail_len);
    if (st == JWT_UNKNOWN_KID)
        copy_kid(hkid, kid, kid_len);
    if (st != JWT_OK)
        goto done;
    if (!signature_ok(key, pp))
        st = fail(JWT_BAD_SIGNATURE, detail, detail_len,
                  "token signature does not verify");
done:
    json_decref(hdr);
    return st;
}

jwt_status jwt_verify_signature(const char *token, size_t len, const jwks *keys,
                                const jwt_params *p, char *kid, size_t kid_len,
                                char *detail, size_t detail_len)
{
    jws_parts parts = {0};
    jwt_status st;

    if (kid != NULL && kid_len > 0)
        kid[0] = '\0';
    if (detail != NULL && detail_len > 0)
        detail[0] = '\0';
    if (token == NULL || p == NULL)
        return fail(JWT_MALFORMED, detail, detail_len, "no token");
    st = verify_jws(token, len, keys, p, &parts, kid, kid_len, detail,
                    detail_len);
    parts_free(&parts);
    return st;
}

/* Reads an optional NumericDate claim (RFC 7519 §2). Returns 1 with *out
 * when present and a number, 0 when absent, -1 when of another type. */
static int numeric_date(const json_t *claims, const char *name, double *out)
{
    const json_t *v = json_object_get(claims, name);

    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 1;
}

/* Returns true when now lies past t + leeway. Doubles hold every unix time
 * of this era exactly, and no integer overflow can happen on the way. */
static bool past(double now, double t, double leeway)
{
    return now > t + leeway;
}

/* Returns true when the aud claim (a string or an array of strings) holds
 * one of the audiences. */
static bool audience_ok(const json_t *aud, const jwt_params *p)
{
    size_t i, j;
    const json_t *v;

    for (j = 0; j < p->n_audiences; j++) {
        const char *want = p->audiences[j];

        if (want == NULL)
            continue;
        if (json_is_string(aud) && strcmp(json_string_value(aud), want) == 0)
            return true;
        if (!json_is_array(aud))
            continue;
        json_array_foreach(aud, i, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
                return true;
        }
    }
    return false;
}

/* Checks the RFC 9068 claims. Type errors come first (JWT_MALFORMED: a
 * token whose exp is a string is broken, not expired), then iss, exp, aud,
 * and nbf/iat. */
static jwt_status check_claims(const json_t *claims, const jwt_params *p,
                               char *detail, size_t detail_len)
{
    const json_t *iss = json_object_get(claims, "iss");
    double exp = 0, nbf = 0, iat = 0;
    double now = (double)p->now_s;
    double leeway = p->leeway_s > 0 ? (double)p->leeway_s : 0;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    int has_iat = numeric_date(claims, "iat", &iat);

    if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token exp, nbf or iat is not a number");
    if (p->issuer == NULL || !json_is_string(iss) ||
        strcmp(json_string_value(iss), p->issuer) != 0)
        return fail(JWT_BAD_ISSUER, detail, detail_len,
                    "token iss is not the configured issuer");
    /* Without exp the token is malformed, not expired: token_expired
     * would tell a client to refresh, and the issuer would send the same
     * kind of token again. */
    if (has_exp == 0)
        return fail(JWT_MALFORMED, detail, detail_len,
                    "token has no exp (RFC 9068 requires it)");
    /* exp before aud, in the order of DESIGN §2.4 step 1. */
    if (past(now, exp, leeway))
        return fail(JWT_EXPIRED, detail, detail_len, "token has expired");
    if (p->n_audiences > 0 && !audience_ok(json_object_get(claims, "aud"), p))
        return fail(JWT_BAD_AUDIENCE, detail, detail_len,
                    "token aud does not name this server");
    if (has_nbf == 1 && past(nbf, now, leeway))
        return fail(JWT_NOT_YET_VALID, detail, detail_len,
                    "token nbf is in the future");
    if (has_iat == 1 && past(iat, now, leeway))
        return fail(JWT_NOT_YET_VALID, detail, detail_len,
                    "token iat is in the future");
    return JWT_OK;
}

jwt_status jwt_verify(const char *token, size_t len, const jwks *keys,
                      const jwt_params *p, json_t **claims, char *kid,
                      size_t kid_len, char *detail, size_t detail_len)
{
    jws_parts parts = {0};
    json_t *payload = NULL;
    json_error_t jerr;
    jwt_status st;

    if (claims != NULL)
        *claims = NULL;
    if (kid != NULL && kid_len > 0)
        kid[0] = '\0';
    if (detail != NULL && detail_len > 0)
        detail[0] = '\0';
    if (token == NULL || p == NULL)
        return fail(JWT_MALFORMED, detail, detail_len, "no token");
    st = verify_jws(token, len, keys, p, &parts, kid, kid_len, detail,
                    detail_len);
    if (st != JWT_OK)
        goto done;
    payload = json_loadb((const char *)parts.payload, parts.payload_len,
                         JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(payload)) {
        st = fail(JWT_MALFORMED, detail, detail_len,
                  "token payload is not a JSON object");
        goto done;
    }
    if (p->check_claims)
        st = check_claims(payload, p, detail, detail_len);
    /* Expired or for another audience, the claims are still authentic:
     * the caller gets them, to decide and audit as it sees fit. */
    bool authentic =
        st == JWT_OK || st == JWT_EXPIRED || st == JWT_BAD_AUDIENCE;
    if (claims != NULL && authentic) {
        *claims = payload;
        payload = NULL;
    }
done:
    json_decref(payload);
    parts_free(&parts);
    return st;
}
