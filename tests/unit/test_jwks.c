/*
 * test_jwks.c - JWKS parsing: the three usable key types, every rule that
 * skips a key (use, key_ops, alg, private members, base64url, coordinate
 * lengths, points off the curve, RSA sizes and exponents, unknown types),
 * exact counts, and the documents that are errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/jwks.h"
#include "daemon/jwt.h"
#include "jwt_fixture.h"
#include "trine.h"

/* RFC 7515 Appendix A.2 (RSA 2048), A.3 (P-256) and RFC 8037 Appendix A
 * (Ed25519) public keys, member by member. */
#define A2_N                                                                   \
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"               \
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"               \
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"               \
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"               \
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"               \
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A4_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

#define RSA_JWK(extra)                                                         \
    "{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAB\"" extra "}"
#define EC_JWK(extra)                                                          \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y       \
    "\"" extra "}"
#define ED_JWK(extra)                                                          \
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" A4_X "\"" extra "}"

/* The RFC 7515 A.2 token, to show a parsed key really verifies. */
#define A2_TOKEN                                                               \
    "eyJhbGciOiJSUzI1NiJ9."                                                    \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"         \
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."                                          \
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"         \
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"         \
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"         \
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"         \
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"         \
    "p0igcN_IoypGlUPQGe77Rw"

/* Parses a document that must parse; returns the usable and skipped counts
 * as usable * 100 + skipped, so one assertion checks both. */
static int counts(const char *doc)
{
    jwks *k = NULL;
    char err[128] = "unset";
    int r;

    assert_int_equal(jwks_parse(doc, strlen(doc), &k, err, sizeof(err)), 0);
    assert_non_null(k);
    assert_string_equal(err, "");
    r = (int)(jwks_count(k) * 100 + jwks_skipped(k));
    jwks_free(k);
    return r;
}

/* Counts for a document holding exactly one key. */
static int one(const char *jwk)
{
    char *doc = fx_printf("{\"keys\":[%s]}", jwk);
    int r;

    assert_non_null(doc);
    r = counts(doc);
    free(doc);
    return r;
}

#define USED 100
#define SKIPPED 1

/* Parses a document that must be refused; returns its message (static). */
static const char *refused(const char *doc, size_t len)
{
    static char err[160];
    jwks *k = (jwks *)err; /* must be overwritten */

    assert_int_equal(jwks_parse(doc, len, &k, err, sizeof(err)), TRINE_EINVAL);
    assert_null(k);
    return err;
}

static void test_usable_keys(void **state)
{
    const char *doc = "{\"keys\":[" RSA_JWK(",\"kid\":\"r\"") "," EC_JWK(
        ",\"kid\":\"e\",\"use\":\"sig\"") "," ED_JWK("") "]}";
    jwks *k = NULL;
    const jwks_key *key;

    (void)state;
    assert_int_equal(jwks_parse(doc, strlen(doc), &k, NULL, 0), 0);
    assert_int_equal(jwks_count(k), 3);
    assert_int_equal(jwks_skipped(k), 0);
    key = jwks_key_at(k, 0);
    assert_non_null(key);
    assert_int_equal(key->kty, JWKS_KTY_RSA);
    assert_string_equal(key->kid, "r");
    assert_int_equal(key->kid_len, 1);
    assert_int_equal(EVP_PKEY_get_bits(key->pkey), 2048);
    key = jwks_key_at(k, 1);
    assert_int_equal(key->kty, JWKS_KTY_EC_P256);
    assert_string_equal(key->kid, "e");
    key = jwks_key_at(k, 2);
    assert_int_equal(key->kty, JWKS_KTY_ED25519);
    assert_null(key->kid);
    assert_int_equal(key->kid_len, 0);
    assert_null(jwks_key_at(k, 3));
    jwks_free(k);

    /* An empty set is a set. */
    assert_int_equal(counts("{\"keys\":[]}"), 0);
    /* Other members of the document and of keys are ignored. */
    assert_int_equal(counts("{\"issuer\":\"x\",\"keys\":[" RSA_JWK(
                         ",\"x5t\":\"abc\",\"ext\":true") "]}"),
                     USED);
}

static void test_use_and_key_ops(void **state)
{
    (void)state;
    assert_int_equal(one(RSA_JWK(",\"use\":\"sig\"")), USED);
    assert_int_equal(one(RSA_JWK(",\"use\":\"enc\"")), SKIPPED);
    assert_int_equal(one(EC_JWK(",\"use\":\"enc\"")), SKIPPED);
    assert_int_equal(one(ED_JWK(",\"use\":\"SIG\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"use\":null")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"use\":[\"sig\"]")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":[\"verify\"]")), USED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":[\"sign\",\"verify\"]")), USED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":[\"sign\"]")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":[\"encrypt\"]")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":[]")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"key_ops\":\"verify\"")), SKIPPED);
}

static void test_alg_must_fit(void **state)
{
    (void)state;
    assert_int_equal(one(RSA_JWK(",\"alg\":\"RS256\"")), USED);
    assert_int_equal(one(EC_JWK(",\"alg\":\"ES256\"")), USED);
    assert_int_equal(one(ED_JWK(",\"alg\":\"EdDSA\"")), USED);
    assert_int_equal(one(ED_JWK(",\"alg\":\"Ed25519\"")), USED);

    assert_int_equal(one(RSA_JWK(",\"alg\":\"ES256\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":\"PS256\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":\"RS384\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":\"RSA-OAEP\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":\"HS256\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":\"rs256\"")), SKIPPED);
    assert_int_equal(one(EC_JWK(",\"alg\":\"RS256\"")), SKIPPED);
    assert_int_equal(one(EC_JWK(",\"alg\":\"ES384\"")), SKIPPED);
    assert_int_equal(one(EC_JWK(",\"alg\":\"ECDH-ES\"")), SKIPPED);
    assert_int_equal(one(ED_JWK(",\"alg\":\"ES256\"")), SKIPPED);
    assert_int_equal(one(ED_JWK(",\"alg\":\"Ed448\"")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":256")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"alg\":null")), SKIPPED);
}

static void test_private_members(void **state)
{
    static const char *const names[] = {"d",  "p",  "q",   "dp",
                                        "dq", "qi", "oth", "k"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *j = fx_printf(RSA_JWK(",\"%s\":\"AQAB\""), names[i]);

        assert_int_equal(one(j), SKIPPED);
        free(j);
        j = fx_printf(EC_JWK(",\"%s\":\"AQAB\""), names[i]);
        assert_int_equal(one(j), SKIPPED);
        free(j);
    }
    /* The RFC 8037 A.1 private key, as published. */
    assert_int_equal(
        one(ED_JWK(",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\"")),
        SKIPPED);
    /* Even a null private member marks the key as not a public one. */
    assert_int_equal(one(RSA_JWK(",\"d\":null")), SKIPPED);
}

static void test_bad_base64url(void **state)
{
    (void)state;
    /* '+' and '/' of the standard alphabet, padding, whitespace, and a
     * non-canonical last character ('U' to 'V' leaves a low bit set). */
    assert_int_equal(
        one("{\"kty\":\"RSA\",\"n\":\"+" A2_N "\",\"e\":\"AQAB\"}"), SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAB=\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQ/B\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
                         "=\",\"y\":\"" A3_Y "\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
                         "\",\"y\":\" " A3_Y "\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                         "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEV\","
                         "\"y\":\"" A3_Y "\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                         "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\\n\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                         "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp\"}"),
                     SKIPPED);
    /* Empty, missing, not a string. */
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"e\":\"AQAB\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":65537}"),
                     SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}"), SKIPPED);
}

/* Re-encodes a base64url value with n bytes: the decoded value truncated,
 * or zero-extended at the end. */
static char *resized(const char *b64, size_t n)
{
    unsigned char buf[600] = {0};
    ssize_t got = jwt_b64url_decode(b64, strlen(b64), buf);

    assert_true(got > 0);
    assert_true(n < sizeof(buf));
    return fx_b64url(buf, n);
}

static void test_coordinate_lengths(void **state)
{
    const size_t sizes[] = {0, 31, 33, 64};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *x = resized(A3_X, sizes[i]);
        char *y = resized(A3_Y, sizes[i]);
        char *e = resized(A4_X, sizes[i]);
        char *j;

        j = fx_printf("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                      "\"y\":\"" A3_Y "\"}",
                      x);
        assert_int_equal(one(j), SKIPPED);
        free(j);
        j = fx_printf("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\","
                      "\"y\":\"%s\"}",
                      y);
        assert_int_equal(one(j), SKIPPED);
        free(j);
        j = fx_printf("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", e);
        assert_int_equal(one(j), SKIPPED);
        free(j);
        free(x);
        free(y);
        free(e);
    }
    /* The point is on the curve only with its own y: one changed byte of
     * y ("x_FE" to "x_FF") puts it off. */
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
                         "\",\"y\":\"x_FFzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a"
                         "0\"}"),
                     SKIPPED);
    /* x and y swapped. */
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_Y
                         "\",\"y\":\"" A3_X "\"}"),
                     SKIPPED);
}

static void test_rsa_sizes_and_exponents(void **state)
{
    unsigned char n[600];
    ssize_t nlen = jwt_b64url_decode(A2_N, strlen(A2_N), n);
    unsigned char big[2100];
    EVP_PKEY *small;
    char *b, *j;

    (void)state;
    assert_int_equal(nlen, 256);
    assert_true(n[0] & 0x80);

    /* A generated 1024-bit key. */
    small = fx_keygen_rsa(1024);
    assert_non_null(small);
    j = fx_jwk(small, "old", NULL);
    assert_int_equal(one(j), SKIPPED);
    free(j);
    EVP_PKEY_free(small);

    /* 2047 bits: the top byte 0x7f. */
    n[0] = 0x7f;
    b = fx_b64url(n, 256);
    j = fx_printf("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", b);
    assert_int_equal(one(j), SKIPPED);
    free(j);
    free(b);
    nlen = jwt_b64url_decode(A2_N, strlen(A2_N), n);
    assert_int_equal(nlen, 256);

    /* A leading zero byte is tolerated: still 2048 bits, and the key
     * verifies the RFC token. */
    {
        unsigned char z[257];
        jwks *k = NULL;
        jwt_params p = {.check_claims = false};

        z[0] = 0;
        memcpy(z + 1, n, 256);
        b = fx_b64url(z, 257);
        j = fx_printf("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
                      "\"e\":\"AAEAAQ\"}]}",
                      b);
        assert_int_equal(jwks_parse(j, strlen(j), &k, NULL, 0), 0);
        assert_int_equal(jwks_count(k), 1);
        assert_int_equal(jwt_verify(A2_TOKEN, strlen(A2_TOKEN), k, &p, NULL,
                                    NULL, 0, NULL, 0),
                         JWT_OK);
        jwks_free(k);
        free(j);
        free(b);
    }

    /* Over 16384 bits. */
    memset(big, 0xc5, sizeof(big));
    b = fx_b64url(big, 2049);
    j = fx_printf("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", b);
    assert_int_equal(one(j), SKIPPED);
    free(j);
    free(b);

    /* Exponents: 3 is fine; even, 1, 0 and over 64 bits are not. */
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"Aw\"}"),
                     USED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAA\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQ\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AA\"}"),
                     SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAAAAAAAAAB\"}"),
        SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AAAAAAAAAAAAAQAB\"}"),
        USED);
}

static void test_unknown_types(void **state)
{
    (void)state;
    assert_int_equal(one("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"oct\",\"kid\":\"h\"}"), SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"RSA-PSS\",\"n\":\"" A2_N "\",\"e\":\"AQAB\"}"),
        SKIPPED);
    assert_int_equal(one("{\"kty\":\"rsa\",\"n\":\"" A2_N "\",\"e\":\"AQAB\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"n\":\"" A2_N "\",\"e\":\"AQAB\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":1}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X
                         "\",\"y\":\"" A3_Y "\"}"),
                     SKIPPED);
    assert_int_equal(one("{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"" A3_X
                         "\",\"y\":\"" A3_Y "\"}"),
                     SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}"), SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" A4_X "\"}"),
        SKIPPED);
    assert_int_equal(
        one("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"" A4_X "\"}"), SKIPPED);
    assert_int_equal(one("{\"kty\":\"OKP\",\"x\":\"" A4_X "\"}"), SKIPPED);
    /* Entries that are not objects. */
    assert_int_equal(one("\"" A2_N "\""), SKIPPED);
    assert_int_equal(one("null"), SKIPPED);
    assert_int_equal(one("[]"), SKIPPED);
    assert_int_equal(one("42"), SKIPPED);
    /* A kid that is not a string. */
    assert_int_equal(one(RSA_JWK(",\"kid\":7")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"kid\":null")), SKIPPED);
    assert_int_equal(one(RSA_JWK(",\"kid\":\"\"")), USED);
}

static void test_exact_counts(void **state)
{
    static const char *const entries[] = {
        "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
        RSA_JWK(",\"kid\":\"a\""),
        RSA_JWK(",\"use\":\"enc\""),
        EC_JWK(",\"kid\":\"b\""),
        EC_JWK(",\"alg\":\"RS256\""),
        ED_JWK(",\"kid\":\"c\""),
        ED_JWK(",\"d\":\"AA\""),
        "null",
        "{\"kty\":\"EC\",\"crv\":\"P-521\"}",
    };
    jwks *k = NULL;
    char *doc = fx_printf("{\"keys\":[%s,%s,%s,%s,%s,%s,%s,%s,%s]}", entries[0],
                          entries[1], entries[2], entries[3], entries[4],
                          entries[5], entries[6], entries[7], entries[8]);

    (void)state;
    assert_non_null(doc);
    assert_int_equal(jwks_parse(doc, strlen(doc), &k, NULL, 0), 0);
    assert_int_equal(jwks_count(k), 3);
    assert_int_equal(jwks_skipped(k), 6);
    /* The usable keys keep their document order. */
    assert_string_equal(jwks_key_at(k, 0)->kid, "a");
    assert_string_equal(jwks_key_at(k, 1)->kid, "b");
    assert_string_equal(jwks_key_at(k, 2)->kid, "c");
    jwks_free(k);
    free(doc);

    /* Shared kids are kept: choosing between them is the verifier's job. */
    assert_int_equal(counts("{\"keys\":[" RSA_JWK(",\"kid\":\"x\"") "," EC_JWK(
                         ",\"kid\":\"x\"") "]}"),
                     200);

    /* NULL handles. */
    jwks_free(NULL);
    assert_int_equal(jwks_count(NULL), 0);
    assert_int_equal(jwks_skipped(NULL), 0);
    assert_null(jwks_key_at(NULL, 0));
}

static void test_documents_refused(void **state)
{
    const char *m;
    jwks *k = NULL;
    static const char nul_doc[] = "{\"keys\":[]}\0";

    (void)state;
    m = refused("", 0);
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: ", 24), 0);
    m = refused("{\"keys\":[", 9);
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: ", 24), 0);
    m = refused("{\"keys\":[]} x", 13);
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: ", 24), 0);
    m = refused(nul_doc, sizeof(nul_doc) - 1);
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: ", 24), 0);
    m = refused("{\"keys\":[],\"keys\":[]}", 21);
    assert_string_equal(m, "JWKS is not valid JSON: duplicate object key "
                           "near '\"keys\"' (line 1)");
    m = refused("[{\"keys\":[]}]", 13);
    assert_string_equal(m, "JWKS is not a JSON object");
    m = refused("{}", 2);
    assert_string_equal(m, "JWKS has no \"keys\" array");
    m = refused("{\"keys\":{}}", 11);
    assert_string_equal(m, "JWKS has no \"keys\" array");
    m = refused("{\"keys\":null}", 13);
    assert_string_equal(m, "JWKS has no \"keys\" array");
    m = refused("{\"Keys\":[]}", 11);
    assert_string_equal(m, "JWKS has no \"keys\" array");
    /* A single JWK is not a set. */
    m = refused(RSA_JWK(""), strlen(RSA_JWK("")));
    assert_string_equal(m, "JWKS has no \"keys\" array");
    /* Duplicates inside a key make the whole document ambiguous. */
    m = refused("{\"keys\":[" RSA_JWK(",\"e\":\"Aw\"") "]}",
                strlen("{\"keys\":[" RSA_JWK(",\"e\":\"Aw\"") "]}"));
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: duplicate", 33), 0);
    /* Only the given length counts. */
    assert_int_equal(jwks_parse("{\"keys\":[]}xyz", 11, &k, NULL, 0), 0);
    jwks_free(k);
    m = refused("{\"keys\":[]}", 10);
    assert_int_equal(strncmp(m, "JWKS is not valid JSON: ", 24), 0);

    /* Bad arguments. */
    m = refused(NULL, 5);
    assert_string_equal(m, "no JWKS document");
    assert_int_equal(jwks_parse("{\"keys\":[]}", 11, NULL, NULL, 0),
                     TRINE_EINVAL);
    /* A tiny message buffer is truncated, not overrun. */
    {
        char err[8];
        assert_int_equal(jwks_parse("{}", 2, &k, err, sizeof(err)),
                         TRINE_EINVAL);
        assert_string_equal(err, "JWKS ha");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usable_keys),
        cmocka_unit_test(test_use_and_key_ops),
        cmocka_unit_test(test_alg_must_fit),
        cmocka_unit_test(test_private_members),
        cmocka_unit_test(test_bad_base64url),
        cmocka_unit_test(test_coordinate_lengths),
        cmocka_unit_test(test_rsa_sizes_and_exponents),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_exact_counts),
        cmocka_unit_test(test_documents_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
