/*
 * jwks.c - parsing a JSON Web Key Set (RFC 7517 §5) into public keys that
 * jwt.c verifies signatures with. Every key the document offers is judged
 * on its own: one that this verifier cannot or must not use is skipped and
 * counted, never fatal, so an issuer that publishes an encryption key or a
 * new key type next to its signing keys keeps working. Only a document that
 * is not a key set at all is an error.
 */
#include "daemon/jwks.h"

#include "daemon/jwt.h"
#include "trine.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RSA moduli outside these bounds are skipped: under 2048 bits is too weak
 * (RFC 7518 §3.3), and over 16384 bits OpenSSL refuses them anyway while a
 * verify would cost an attacker-chosen amount of time. */
#define JWKS_RSA_MIN_BITS 2048
#define JWKS_RSA_MAX_BITS 16384
/* The largest public exponent accepted, in bytes (64 bits, as OpenSSL
 * enforces for large moduli). */
#define JWKS_RSA_MAX_E_BYTES 8
/* The largest base64url member read from a key: a 16384-bit modulus. */
#define JWKS_MAX_MEMBER_B64 2732

struct jwks {
    jwks_key *keys;
    size_t n;
    size_t skipped;
};

/* What parse_key and the functions it calls return, besides 0 and TRINE_ENOMEM,
 * for a key that is skipped: not fatal, only counted. */
enum { KEY_SKIPPED = 1 };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Returns true when obj's member name holds exactly the string want. */
static bool member_is(const json_t *obj, const char *name, const char *want)
{
    const json_t *v = json_object_get(obj, name);

    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* Decodes the base64url string member name of obj into a new buffer.
 * Returns 0 with *out (caller frees) and *outlen; KEY_SKIPPED when the
 * member is missing, not a string, too long or not strict base64url; or
 * TRINE_ENOMEM. */
static int member_bytes(const json_t *obj, const char *name,
                        unsigned char **out, size_t *outlen)
{
    const json_t *v = json_object_get(obj, name);
    const char *s;
    size_t len;
    unsigned char *buf;
    ssize_t n;

    *out = NULL;
    *outlen = 0;
    if (!json_is_string(v))
        return KEY_SKIPPED;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > JWKS_MAX_MEMBER_B64)
        return KEY_SKIPPED;
    buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL)
        return TRINE_ENOMEM;
    n = jwt_b64url_decode(s, len, buf);
    if (n <= 0) {
        free(buf);
        return KEY_SKIPPED;
    }
    *out = buf;
    *outlen = (size_t)n;
    return 0;
}

/* Returns the number of significant bits in a big-endian unsigned integer
 * whose leading zero bytes have been stripped (first byte non-zero). */
static size_t uint_bits(const unsigned char *b, size_t n)
{
    unsigned char top = b[0];
    size_t bits = (n - 1) * 8;

    while (top != 0) {
        bits++;
        top >>= 1;
    }
    return bits;
}

/* Strips leading zero bytes of a big-endian integer in place (by moving the
 * start pointer). RFC 7518 §6.3.1.1 forbids them, yet some issuers emit one
 * before a modulus with its top bit set; the value is the same. */
static void strip_zeros(const unsigned char **b, size_t *n)
{
    while (*n > 0 && (*b)[0] == 0) {
        (*b)++;
        (*n)--;
    }
}

/* Builds a public key from OSSL_PARAMs of the named key type. Returns 0 with
 * *out, KEY_SKIPPED when OpenSSL rejects the parameters (a point off the
 * curve, say), or TRINE_ENOMEM. */
static int pkey_fromdata(const char *type, OSSL_PARAM *params, EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    int rc = KEY_SKIPPED;

    *out = NULL;
    if (ctx == NULL)
        return TRINE_ENOMEM;
    if (EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1) {
        *out = pkey;
        rc = 0;
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* Returns 0 when pkey passes OpenSSL's public-key check (for an EC key: the
 * point is on the curve and not the point at infinity), else KEY_SKIPPED
 * (or TRINE_ENOMEM). */
static int pkey_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    if (ctx == NULL)
        return TRINE_ENOMEM;
    ok = EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    return ok == 1 ? 0 : KEY_SKIPPED;
}

/* Builds an RSA public key from the JWK's n and e. Returns 0 with *out,
 * KEY_SKIPPED, or TRINE_ENOMEM. */
static int rsa_key(const json_t *jwk, EVP_PKEY **out)
{
    unsigned char *nb = NULL, *eb = NULL;
    size_t nlen, elen, bits;
    const unsigned char *n, *e;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    int rc;

    *out = NULL;
    rc = member_bytes(jwk, "n", &nb, &nlen);
    if (rc == 0)
        rc = member_bytes(jwk, "e", &eb, &elen);
    if (rc != 0)
        goto done;
    n = nb;
    e = eb;
    strip_zeros(&n, &nlen);
    strip_zeros(&e, &elen);
    rc = KEY_SKIPPED;
    if (nlen == 0 || elen == 0 || elen > JWKS_RSA_MAX_E_BYTES)
        goto done;
    bits = uint_bits(n, nlen);
    if (bits < JWKS_RSA_MIN_BITS || bits > JWKS_RSA_MAX_BITS)
        goto done;
    /* An even exponent or 1 is never a valid RSA public exponent. */
    if ((e[elen - 1] & 1) == 0 || (elen == 1 && e[0] == 1))
        goto done;
    rc = TRINE_ENOMEM;
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL)
        goto done;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL)
        goto done;
    rc = pkey_fromdata("RSA", params, out);
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(nb);
    free(eb);
    return rc;
}

/* Builds a P-256 public key from the JWK's x and y (32 bytes each, RFC 7518
 * §6.2.1.2). Returns 0 with *out, KEY_SKIPPED (including for a point that
 * is not on the curve), or TRINE_ENOMEM. */
static int ec_key(const json_t *jwk, EVP_PKEY **out)
{
    unsigned char *xb = NULL, *yb = NULL;
    size_t xlen, ylen;
    unsigned char point[65];
    OSSL_PARAM params[3];
    int rc;

    *out = NULL;
    rc = member_bytes(jwk, "x", &xb, &xlen);
    if (rc == 0)
        rc = member_bytes(jwk, "y", &yb, &ylen);
    if (rc != 0)
        goto done;
    rc = KEY_SKIPPED;
    if (xlen != 32 || ylen != 32)
        goto done;
    /* The uncompressed SEC 1 encoding: 0x04 || x || y. */
    point[0] = 0x04;
    memcpy(point + 1, xb, 32);
    memcpy(point + 33, yb, 32);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)"prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();
    rc = pkey_fromdata("EC", params, out);
    if (rc == 0) {
        rc = pkey_check(*out);
        if (rc != 0) {
            EVP_PKEY_free(*out);
            *out = NULL;
        }
    }
done:
    free(xb);
    free(yb);
    return rc;
}

/* Builds an Ed25519 public key from the JWK's x (32 bytes, RFC 8037 §2).
 * Returns 0 with *out, KEY_SKIPPED, or TRINE_ENOMEM. */
static int ed25519_key(const json_t *jwk, EVP_PKEY **out)
{
    unsigned char *xb = NULL;
    size_t xlen;
    int rc;

    *out = NULL;
    rc = member_bytes(jwk, "x", &xb, &xlen);
    if (rc != 0)
        return rc;
    rc = KEY_SKIPPED;
    if (xlen == 32) {
        *out = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, xb, 32);
        rc = *out != NULL ? 0 : KEY_SKIPPED;
    }
    free(xb);
    return rc;
}

/* Returns true when the JWK's optional "alg" fits kty. Each key type this
 * verifier uses signs with exactly one algorithm; an Ed25519 key may also
 * say "Ed25519", the fully specified name of RFC 9864. */
static bool alg_fits(const json_t *jwk, jwks_kty kty)
{
    const json_t *alg = json_object_get(jwk, "alg");
    const char *a;

    if (alg == NULL)
        return true;
    if (!json_is_string(alg))
        return false;
    a = json_string_value(alg);
    switch (kty) {
    case JWKS_KTY_RSA:
        return strcmp(a, "RS256") == 0;
    case JWKS_KTY_EC_P256:
        return strcmp(a, "ES256") == 0;
    case JWKS_KTY_ED25519:
        return strcmp(a, "EdDSA") == 0 || strcmp(a, "Ed25519") == 0;
    }
    return false;
}

/* Returns true when the JWK may be used to verify signatures: "use", when
 * present, is "sig" (RFC 7517 §4.2), and "key_ops", when present, is an
 * array that lists "verify" (§4.3). */
static bool use_fits(const json_t *jwk)
{
    const json_t *use = json_object_get(jwk, "use");
    const json_t *ops = json_object_get(jwk, "key_ops");
    size_t i;
    const json_t *op;

    if (use != NULL && !member_is(jwk, "use", "sig"))
        return false;
    if (ops == NULL)
        return true;
    if (!json_is_array(ops))
        return false;
    json_array_foreach(ops, i, op)
    {
        if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
            return true;
    }
    return false;
}

/* Returns true when the JWK carries private or symmetric key material. A
 * key set is public; one that leaks a private key is not to be trusted with
 * that key, and a symmetric "k" would invite HMAC confusion. */
static bool has_private_members(const json_t *jwk)
{
    static const char *const names[] = {"d",  "p",  "q",   "dp",
                                        "dq", "qi", "oth", "k"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (json_object_get(jwk, names[i]) != NULL)
            return true;
    }
    return false;
}

/* Judges one entry of "keys". Returns 0 with *key filled (kid and pkey
 * owned by the caller), KEY_SKIPPED, or TRINE_ENOMEM. */
static int parse_key(const json_t *jwk, jwks_key *key)
{
    const json_t *kid;
    jwks_kty kty;
    int rc;

    memset(key, 0, sizeof(*key));
    if (!json_is_object(jwk))
        return KEY_SKIPPED;
    if (member_is(jwk, "kty", "RSA"))
        kty = JWKS_KTY_RSA;
    else if (member_is(jwk, "kty", "EC") && member_is(jwk, "crv", "P-256"))
        kty = JWKS_KTY_EC_P256;
    else if (member_is(jwk, "kty", "OKP") && member_is(jwk, "crv", "Ed25519"))
        kty = JWKS_KTY_ED25519;
    else
        return KEY_SKIPPED;
    if (!use_fits(jwk) || !alg_fits(jwk, kty) || has_private_members(jwk))
        return KEY_SKIPPED;
    kid = json_object_get(jwk, "kid");
    if (kid != NULL && !json_is_string(kid))
        return KEY_SKIPPED;

    if (kty == JWKS_KTY_RSA)
        rc = rsa_key(jwk, &key->pkey);
    else if (kty == JWKS_KTY_EC_P256)
        rc = ec_key(jwk, &key->pkey);
    else
        rc = ed25519_key(jwk, &key->pkey);
    /* A rejected key leaves reasons on this thread's OpenSSL error queue;
     * they say nothing the skip count does not. */
    ERR_clear_error();
    if (rc != 0)
        return rc;
    key->kty = kty;
    if (kid != NULL) {
        key->kid_len = json_string_length(kid);
        key->kid = malloc(key->kid_len + 1);
        if (key->kid == NULL) {
            EVP_PKEY_free(key->pkey);
            key->pkey = NULL;
            return TRINE_ENOMEM;
        }
        memcpy(key->kid, json_string_value(kid), key->kid_len + 1);
    }
    return 0;
}

int jwks_parse(const char *json, size_t len, jwks **out, char *err,
               size_t errlen)
{
    json_t *doc, *keys;
    json_error_t jerr;
    jwks *set;
    size_t i, n;
    int rc = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return TRINE_EINVAL;
    *out = NULL;
    if (json == NULL) {
        set_err(err, errlen, "no JWKS document");
        return TRINE_EINVAL;
    }
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        set_err(err, errlen, "JWKS is not valid JSON: %s (line %d)", jerr.text,
                jerr.line);
        return TRINE_EINVAL;
    }
    keys = json_object_get(doc, "keys");
    if (!json_is_object(doc) || !json_is_array(keys)) {
        set_err(err, errlen,
                json_is_object(doc) ? "JWKS has no \"keys\" array"
                                    : "JWKS is not a JSON object");
        json_decref(doc);
        return TRINE_EINVAL;
    }
    set = calloc(1, sizeof(*set));
    n = json_array_size(keys);
    if (set != NULL && n > 0)
        set->keys = calloc(n, sizeof(*set->keys));
    if (set == NULL || (n > 0 && set->keys == NULL)) {
        free(set);
        json_decref(doc);
        return TRINE_ENOMEM;
    }
    for (i = 0; i < n && rc == 0; i++) {
        rc = parse_key(json_array_get(keys, i), &set->keys[set->n]);
        if (rc == 0)
            set->n++;
        else if (rc == KEY_SKIPPED) {
            set->skipped++;
            rc = 0;
        }
    }
    json_decref(doc);
    if (rc != 0) {
        jwks_free(set);
        set_err(err, errlen, "out of memory");
        return TRINE_ENOMEM;
    }
    *out = set;
    return 0;
}

void jwks_free(jwks *k)
{
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < k->n; i++) {
        free(k->keys[i].kid);
        EVP_PKEY_free(k->keys[i].pkey);
    }
    free(k->keys);
    free(k);
}

size_t jwks_count(const jwks *k)
{
    return k != NULL ? k->n : 0;
}

size_t jwks_skipped(const jwks *k)
{
    return k != NULL ? k->skipped : 0;
}

const jwks_key *jwks_key_at(const jwks *k, size_t i)
{
    if (k == NULL || i >= k->n)
        return NULL;
    return &k->keys[i];
}
