/*
 * test_jwt.c - JWT access-token verification: the published RFC 7515 and
 * RFC 8037 examples, strict base64url, every refusal (alg none, HS256 keyed
 * with the RSA public key, algorithm confusion through kid, bad shapes, typ,
 * iss, aud, exp, nbf, iat, crit, size, duplicate members), tokens signed
 * here with fresh keys, and concurrent use of one key set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "daemon/jwks.h"
#include "daemon/jwt.h"
#include "jwt_fixture.h"

/* RFC 7515 Appendix A.2: RS256. */
#define A2_HEADER "eyJhbGciOiJSUzI1NiJ9"
#define A_PAYLOAD                                                              \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"         \
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A2_SIG                                                                 \
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"         \
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"         \
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"         \
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"         \
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"         \
    "p0igcN_IoypGlUPQGe77Rw"
#define A2_TOKEN A2_HEADER "." A_PAYLOAD "." A2_SIG
#define A2_JWK                                                                 \
    "{\"kty\":\"RSA\","                                                        \
    "\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"       \
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"               \
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"               \
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"               \
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"               \
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\","                  \
    "\"e\":\"AQAB\"}"

/* RFC 7515 Appendix A.3: ES256 (same payload). */
#define A3_HEADER "eyJhbGciOiJFUzI1NiJ9"
#define A3_SIG                                                                 \
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxf"   \
    "KTUJqPP3-Kg6NU1Q"
#define A3_TOKEN A3_HEADER "." A_PAYLOAD "." A3_SIG
#define A3_JWK                                                                 \
    "{\"kty\":\"EC\",\"crv\":\"P-256\","                                       \
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","                   \
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"

/* RFC 8037 Appendix A.4: Ed25519; the payload is the text "Example of
 * Ed25519 signing", not JSON. */
#define A4_TOKEN                                                               \
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."                \
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5B"         \
    "hVsPt9g7sVvpAr_MuM0KAg"
#define A4_JWK                                                                 \
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","                                    \
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"

#define NOW 1767225600
#define ISSUER "https://issuer.example"
#define AUDIENCE "https://mcp.example.com/github"

static const char *const audiences[] = {"https://other.example", AUDIENCE};

/* Keys made once for the whole run. */
static EVP_PKEY *rsa_key, *rsa_key2, *ec_key, *ed_key;
static jwks *keyset;

static char kid_out[64];
static char detail[128];

static jwt_params params(void)
{
    jwt_params p = {
        .issuer = ISSUER,
        .audiences = audiences,
        .n_audiences = 2,
        .now_s = NOW,
        .leeway_s = 60,
        .max_len = 0,
        .check_claims = true,
    };
    return p;
}

static jwt_params vector_params(void)
{
    jwt_params p = params();
    p.check_claims = false;
    return p;
}

static jwks *parse_keys(const char *doc)
{
    jwks *k = NULL;
    char err[128];

    assert_int_equal(jwks_parse(doc, strlen(doc), &k, err, sizeof(err)), 0);
    assert_non_null(k);
    return k;
}

/* Verifies a NUL-terminated token; when the claims are authentic (JWT_OK,
 * JWT_EXPIRED, JWT_BAD_AUDIENCE) checks that they came back and drops
 * them, else that they did not. */
static jwt_status verify(const char *tok, const jwks *keys, const jwt_params *p)
{
    json_t *claims = (json_t *)&claims; /* must be overwritten */
    jwt_status st = jwt_verify(tok, strlen(tok), keys, p, &claims, kid_out,
                               sizeof(kid_out), detail, sizeof(detail));

    if (st == JWT_OK || st == JWT_EXPIRED || st == JWT_BAD_AUDIENCE) {
        assert_true(json_is_object(claims));
        json_decref(claims);
    } else {
        assert_null(claims);
    }
    return st;
}

/* Returns a copy of tok with the character at pos replaced by c. */
static char *with_char(const char *tok, size_t pos, char c)
{
    char *s = strdup(tok);

    assert_non_null(s);
    assert_true(pos < strlen(s));
    assert_true(s[pos] != c);
    s[pos] = c;
    return s;
}

/* Returns the offset of segment i (0, 1, 2) of a token. */
static size_t seg(const char *tok, int i)
{
    const char *p = tok;

    while (i-- > 0) {
        p = strchr(p, '.');
        assert_non_null(p);
        p++;
    }
    return (size_t)(p - tok);
}

/* The usual claims of a good access token, with extra members appended. */
static char *claims_with(const char *extra)
{
    char *s =
        fx_printf("{\"iss\":\"" ISSUER "\",\"sub\":\"alice\","
                  "\"aud\":\"" AUDIENCE "\",\"exp\":%d,\"iat\":%d,"
                  "\"client_id\":\"claude-desktop\","
                  "\"scope\":\"repo:read\"%s%s}",
                  NOW + 3600, NOW - 10, extra[0] != '\0' ? "," : "", extra);
    assert_non_null(s);
    return s;
}

/* Signs a token with pkey; header and payload are JSON texts. */
static char *token(EVP_PKEY *pkey, const char *header, const char *payload)
{
    char *t = fx_token(pkey, header, payload);

    assert_non_null(t);
    return t;
}

/* Signs a token with pkey and checks that verifying it under keys gives
 * want (its detail is then in `detail`). */
static void expect_token(const jwt_params *p, const jwks *keys, jwt_status want,
                         EVP_PKEY *pkey, const char *header,
                         const char *payload)
{
    char *t = token(pkey, header, payload);
    assert_int_equal(verify(t, keys, p), want);
    free(t);
}

/* Signs a good RS256 access token whose payload is claims_with(extra). */
static char *rs_token(const char *extra)
{
    char *payload = claims_with(extra);
    char *t = token(rsa_key,
                    "{\"alg\":\"RS256\",\"typ\":\"at+jwt\","
                    "\"kid\":\"rsa1\"}",
                    payload);
    free(payload);
    return t;
}

static int setup(void **state)
{
    char *j1, *j2, *j3, *doc;

    (void)state;
    rsa_key = fx_keygen_rsa(2048);
    rsa_key2 = fx_keygen_rsa(2048);
    ec_key = fx_keygen_ec();
    ed_key = fx_keygen_ed25519();
    if (rsa_key == NULL || rsa_key2 == NULL || ec_key == NULL || ed_key == NULL)
        return -1;
    j1 = fx_jwk(rsa_key, "rsa1", "\"use\":\"sig\",\"alg\":\"RS256\"");
    j2 = fx_jwk(ec_key, "ec1", NULL);
    j3 = fx_jwk(ed_key, "ed1", "\"alg\":\"EdDSA\"");
    doc = fx_printf("{\"keys\":[%s,%s,%s]}", j1, j2, j3);
    free(j1);
    free(j2);
    free(j3);
    if (doc == NULL || jwks_parse(doc, strlen(doc), &keyset, NULL, 0) != 0 ||
        jwks_count(keyset) != 3) {
        free(doc);
        return -1;
    }
    free(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jwks_free(keyset);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ed_key);
    return 0;
}

static void test_b64url(void **state)
{
    unsigned char out[16];

    (void)state;
    assert_int_equal(jwt_b64url_decode("", 0, out), 0);
    assert_int_equal(jwt_b64url_decode("Zg", 2, out), 1);
    assert_memory_equal(out, "f", 1);
    assert_int_equal(jwt_b64url_decode("Zm8", 3, out), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(jwt_b64url_decode("Zm9v", 4, out), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(jwt_b64url_decode("-_-_", 4, out), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);

    /* Padding, the standard alphabet's '+' and '/', whitespace. */
    assert_int_equal(jwt_b64url_decode("Zg==", 4, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm8=", 4, out), -1);
    assert_int_equal(jwt_b64url_decode("+_-_", 4, out), -1);
    assert_int_equal(jwt_b64url_decode("-/-_", 4, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm 9v", 5, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm9v\n", 5, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm\0v", 4, out), -1);
    /* A length no encoding has. */
    assert_int_equal(jwt_b64url_decode("Z", 1, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm9vY", 5, out), -1);
    /* Non-canonical last characters: the unused bits must be zero. */
    assert_int_equal(jwt_b64url_decode("Zh", 2, out), -1);
    assert_int_equal(jwt_b64url_decode("Zv", 2, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm9", 3, out), -1);
    assert_int_equal(jwt_b64url_decode("Zm-", 3, out), -1);
    assert_int_equal(jwt_b64url_decode(NULL, 0, out), -1);
}

static void test_is_jws(void **state)
{
    (void)state;
    assert_int_equal(jwt_is_jws("a.b.c", 5), 1);
    assert_int_equal(jwt_is_jws("..", 2), 1);
    assert_int_equal(jwt_is_jws(A2_TOKEN, strlen(A2_TOKEN)), 1);
    assert_int_equal(jwt_is_jws("a.b", 3), 0);
    assert_int_equal(jwt_is_jws("a.b.c.d", 7), 0);
    assert_int_equal(jwt_is_jws("2YotnFZFEjr1zCsicMWpAA", 22), 0);
    assert_int_equal(jwt_is_jws("", 0), 0);
    assert_int_equal(jwt_is_jws(NULL, 0), 0);
    /* Only the given length counts. */
    assert_int_equal(jwt_is_jws("a.b.c.d", 5), 1);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(jwt_status_name(JWT_OK), "ok");
    assert_string_equal(jwt_status_name(JWT_MALFORMED), "malformed");
    assert_string_equal(jwt_status_name(JWT_BAD_TYP), "bad_typ");
    assert_string_equal(jwt_status_name(JWT_BAD_ALG), "bad_alg");
    assert_string_equal(jwt_status_name(JWT_UNKNOWN_KID), "unknown_kid");
    assert_string_equal(jwt_status_name(JWT_KEY_MISMATCH), "key_mismatch");
    assert_string_equal(jwt_status_name(JWT_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(jwt_status_name(JWT_BAD_ISSUER), "bad_issuer");
    assert_string_equal(jwt_status_name(JWT_BAD_AUDIENCE), "bad_audience");
    assert_string_equal(jwt_status_name(JWT_EXPIRED), "expired");
    assert_string_equal(jwt_status_name(JWT_NOT_YET_VALID), "not_yet_valid");
    assert_string_equal(jwt_status_name((jwt_status)99), "unknown");
}

static void test_rfc7515_a2_rs256(void **state)
{
    jwks *k = parse_keys("{\"keys\":[" A2_JWK "]}");
    jwt_params p = vector_params();
    json_t *claims = NULL;
    char *t;

    (void)state;
    assert_int_equal(jwt_verify(A2_TOKEN, strlen(A2_TOKEN), k, &p, &claims,
                                NULL, 0, NULL, 0),
                     JWT_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")),
                        "joe");
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
                     1300819380);
    assert_true(json_is_true(json_object_get(claims, "http://example.com/"
                                                     "is_root")));
    json_decref(claims);

    /* One byte of the payload changed ('c' of "eyJpc3" to 'd'). */
    t = with_char(A2_TOKEN, seg(A2_TOKEN, 1) + 5, 'd');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    assert_string_equal(detail, "token signature does not verify");
    free(t);
    /* One byte of the signature changed, still canonical base64url. */
    t = with_char(A2_TOKEN, seg(A2_TOKEN, 2) + 10, 'A');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    /* The signature's last character made non-canonical ('w' to 'x'). */
    t = with_char(A2_TOKEN, strlen(A2_TOKEN) - 1, 'x');
    assert_int_equal(verify(t, k, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token segment is not strict base64url");
    free(t);
    /* The vector's typ is missing, its exp long past: with claims checked
     * it is refused for its typ first. */
    p.check_claims = true;
    assert_int_equal(verify(A2_TOKEN, k, &p), JWT_BAD_TYP);
    jwks_free(k);
}

static void test_rfc7515_a3_es256(void **state)
{
    jwks *k = parse_keys("{\"keys\":[" A3_JWK "]}");
    jwt_params p = vector_params();
    char *t;

    (void)state;
    assert_int_equal(verify(A3_TOKEN, k, &p), JWT_OK);
    t = with_char(A3_TOKEN, seg(A3_TOKEN, 1) + 20, 'A');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    /* In r, then in s. */
    t = with_char(A3_TOKEN, seg(A3_TOKEN, 2) + 3, 'A');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    t = with_char(A3_TOKEN, seg(A3_TOKEN, 2) + 60, 'A');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    /* The RS256 vector's key cannot check it, nor can its own header be
     * swapped for RS256's. */
    t = fx_printf("%s.%s.%s", A2_HEADER, A_PAYLOAD, A3_SIG);
    assert_int_equal(verify(t, k, &p), JWT_UNKNOWN_KID);
    free(t);
    jwks_free(k);
}

static void test_rfc8037_a4_ed25519(void **state)
{
    jwks *k = parse_keys("{\"keys\":[" A4_JWK "]}");
    jwt_params p = vector_params();
    char *t;

    (void)state;
    assert_int_equal(jwt_verify_signature(A4_TOKEN, strlen(A4_TOKEN), k, &p,
                                          NULL, 0, detail, sizeof(detail)),
                     JWT_OK);
    assert_string_equal(detail, "");
    /* The signature is good, but a token's payload must be JSON claims. */
    assert_int_equal(verify(A4_TOKEN, k, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token payload is not a JSON object");

    t = with_char(A4_TOKEN, seg(A4_TOKEN, 1) + 4, 'A');
    assert_int_equal(jwt_verify_signature(t, strlen(t), k, &p, NULL, 0, detail,
                                          sizeof(detail)),
                     JWT_BAD_SIGNATURE);
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    t = with_char(A4_TOKEN, seg(A4_TOKEN, 2) + 30, 'A');
    assert_int_equal(verify(t, k, &p), JWT_BAD_SIGNATURE);
    free(t);
    jwks_free(k);
}

static void test_rfc_vectors_in_one_set(void **state)
{
    jwks *k = parse_keys("{\"keys\":[" A2_JWK "," A3_JWK "," A4_JWK "]}");
    jwt_params p = vector_params();

    (void)state;
    assert_int_equal(jwks_count(k), 3);
    /* No kid: each alg has exactly one key of its type. */
    assert_int_equal(verify(A2_TOKEN, k, &p), JWT_OK);
    assert_int_equal(verify(A3_TOKEN, k, &p), JWT_OK);
    assert_int_equal(jwt_verify_signature(A4_TOKEN, strlen(A4_TOKEN), k, &p,
                                          NULL, 0, NULL, 0),
                     JWT_OK);
    jwks_free(k);
}

static void test_signed_tokens_verify(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    const char *hdrs[] = {
        "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
        "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec1\"}",
        "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"ed1\"}",
        /* Without kid: the one key of the alg's type. */
        "{\"alg\":\"ES256\",\"typ\":\"application/at+jwt\"}",
        "{\"typ\":\"AT+JWT\",\"alg\":\"EdDSA\"}",
        "{\"alg\":\"RS256\",\"typ\":\"Application/At+Jwt\"}",
    };
    EVP_PKEY *signers[] = {rsa_key, ec_key, ed_key, ec_key, ed_key, rsa_key};
    json_t *claims = NULL;
    size_t i;
    char *t;

    (void)state;
    for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        t = token(signers[i], hdrs[i], payload);
        assert_int_equal(jwt_verify(t, strlen(t), keyset, &p, &claims, kid_out,
                                    sizeof(kid_out), detail, sizeof(detail)),
                         JWT_OK);
        assert_string_equal(detail, "");
        assert_string_equal(json_string_value(json_object_get(claims, "sub")),
                            "alice");
        assert_string_equal(
            json_string_value(json_object_get(claims, "client_id")),
            "claude-desktop");
        json_decref(claims);
        free(t);
    }
    /* A NULL claims pointer is allowed: the verdict alone. */
    t = token(ec_key, hdrs[1], payload);
    assert_int_equal(
        jwt_verify(t, strlen(t), keyset, &p, NULL, NULL, 0, NULL, 0), JWT_OK);
    /* The token need not be NUL-terminated: len decides. */
    {
        size_t n = strlen(t);
        char *copy = malloc(n);

        assert_non_null(copy);
        memcpy(copy, t, n);
        assert_int_equal(
            jwt_verify(copy, n, keyset, &p, NULL, NULL, 0, NULL, 0), JWT_OK);
        /* One byte short cuts the signature. */
        assert_int_not_equal(
            jwt_verify(copy, n - 1, keyset, &p, NULL, NULL, 0, NULL, 0),
            JWT_OK);
        free(copy);
    }
    free(t);
    free(payload);
}

static void test_alg_none(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    char *h = fx_b64url_str("{\"alg\":\"none\",\"typ\":\"at+jwt\"}");
    char *b = fx_b64url_str(payload);
    char *t;

    (void)state;
    /* The unsecured form: an empty signature. */
    t = fx_printf("%s.%s.", h, b);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    assert_string_equal(detail, "token alg is not RS256, ES256 or EdDSA");
    free(t);
    /* With a signature segment attached anyway. */
    t = fx_printf("%s.%s.%s", h, b, "c2ln");
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    free(t);
    /* And for fixed vectors, where typ and claims are not checked. */
    p.check_claims = false;
    t = fx_printf("%s.%s.", h, b);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    free(t);
    free(h);
    free(b);
    free(payload);
}

static void test_other_algs(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    const char *hdrs[] = {
        "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"PS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
        "{\"alg\":\"RS512\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
        "{\"alg\":\"rs256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
        "{\"alg\":\"ES384\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"Ed25519\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"NONE\",\"typ\":\"at+jwt\"}",
        "{\"alg\":256,\"typ\":\"at+jwt\"}",
        "{\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
        "{\"alg\":[\"RS256\"],\"typ\":\"at+jwt\"}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        expect_token(&p, keyset, JWT_BAD_ALG, rsa_key, hdrs[i], payload);
    }
    free(payload);
}

/* Returns an HS256 token keyed with key (the classic attack: the verifier's
 * RSA public key used as an HMAC secret). */
static char *hs256_token(const unsigned char *key, size_t keylen,
                         const char *header, const char *payload)
{
    char *h = fx_b64url_str(header);
    char *b = fx_b64url_str(payload);
    char *input = fx_printf("%s.%s", h, b);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *sig, *t;

    assert_non_null(input);
    assert_non_null(HMAC(EVP_sha256(), key, (int)keylen,
                         (const unsigned char *)input, strlen(input), mac,
                         &maclen));
    assert_int_equal(maclen, 32);
    sig = fx_b64url(mac, maclen);
    t = fx_printf("%s.%s", input, sig);
    free(h);
    free(b);
    free(input);
    free(sig);
    return t;
}

static void test_hs256_with_rsa_public_key(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *der = NULL;
    char *pem = NULL;
    long pemlen;
    int derlen;
    char *t;

    (void)state;
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa_key), 1);
    pemlen = BIO_get_mem_data(bio, &pem);
    assert_true(pemlen > 0);
    derlen = i2d_PUBKEY(rsa_key, &der);
    assert_true(derlen > 0);

    /* PEM text of the public key, with and without the RSA key's kid. */
    t = hs256_token((const unsigned char *)pem, (size_t)pemlen,
                    "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
                    payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    free(t);
    t = hs256_token((const unsigned char *)pem, (size_t)pemlen,
                    "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    free(t);
    /* DER bytes of the public key. */
    t = hs256_token(der, (size_t)derlen,
                    "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
                    payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ALG);
    free(t);
    OPENSSL_free(der);
    BIO_free(bio);
    free(payload);
}

static void test_key_choice(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    char small[4];
    char *t, *j1, *j2, *doc;
    jwks *two;

    (void)state;
    /* Algorithm confusion through kid: an RS256 token naming the EC key,
     * and every other pairing. */
    t = token(rsa_key, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"ec1\"}",
              payload);
    assert_int_equal(verify(t, keyset, &p), JWT_KEY_MISMATCH);
    assert_string_equal(detail,
                        "the key named by kid does not fit the token's alg");
    assert_string_equal(kid_out, "");
    free(t);
    expect_token(&p, keyset, JWT_KEY_MISMATCH, ec_key,
                 "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
                 payload);
    expect_token(&p, keyset, JWT_KEY_MISMATCH, ed_key,
                 "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"ec1\"}",
                 payload);

    /* An unknown kid is handed back for a refetch. */
    t = token(rsa_key,
              "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"2026-rot\"}",
              payload);
    assert_int_equal(verify(t, keyset, &p), JWT_UNKNOWN_KID);
    assert_string_equal(kid_out, "2026-rot");
    assert_string_equal(detail, "no key in the key set has the token's kid");
    /* Truncated to the caller's buffer. */
    assert_int_equal(jwt_verify(t, strlen(t), keyset, &p, NULL, small,
                                sizeof(small), NULL, 0),
                     JWT_UNKNOWN_KID);
    assert_string_equal(small, "202");
    free(t);
    /* kid matching is exact. */
    t = token(rsa_key,
              "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"RSA1\"}",
              payload);
    assert_int_equal(verify(t, keyset, &p), JWT_UNKNOWN_KID);
    assert_string_equal(kid_out, "RSA1");
    free(t);
    /* A kid that is not a string. */
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":1}", payload);
    assert_string_equal(detail, "token kid is not a string");

    /* Signed by another RSA key than the one its kid names. */
    expect_token(&p, keyset, JWT_BAD_SIGNATURE, rsa_key2,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}",
                 payload);
    /* A key embedded in the header is never used. */
    j1 = fx_jwk(rsa_key2, "rsa1", NULL);
    doc = fx_printf("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\","
                    "\"jwk\":%s}",
                    j1);
    expect_token(&p, keyset, JWT_BAD_SIGNATURE, rsa_key2, doc, payload);
    free(doc);
    free(j1);

    /* Without kid and two RSA keys in the set, none is guessed. */
    j1 = fx_jwk(rsa_key, "a", NULL);
    j2 = fx_jwk(rsa_key2, "b", NULL);
    doc = fx_printf("{\"keys\":[%s,%s]}", j1, j2);
    two = parse_keys(doc);
    t = token(rsa_key, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    assert_int_equal(verify(t, two, &p), JWT_UNKNOWN_KID);
    assert_string_equal(kid_out, "");
    assert_string_equal(detail,
                        "token has no kid and several keys fit its alg");
    /* An empty set, or no set at all. */
    assert_int_equal(verify(t, NULL, &p), JWT_UNKNOWN_KID);
    assert_string_equal(detail, "token has no kid and no key fits its alg");
    free(t);
    expect_token(&p, two, JWT_BAD_SIGNATURE, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"b\"}",
                 payload);
    jwks_free(two);
    free(doc);
    free(j1);
    free(j2);

    /* One key published under two kids (as during a rotation) verifies
     * under either. */
    j1 = fx_jwk(rsa_key, "a", NULL);
    j2 = fx_jwk(rsa_key, "rot", NULL);
    doc = fx_printf("{\"keys\":[%s,%s]}", j1, j2);
    two = parse_keys(doc);
    expect_token(&p, two, JWT_OK, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rot\"}",
                 payload);
    jwks_free(two);
    free(doc);
    free(j1);
    free(j2);
    free(payload);
}

static void test_bad_shapes(void **state)
{
    jwt_params p = params();
    char *good = rs_token("");
    size_t s1 = seg(good, 1), s2 = seg(good, 2);
    char *t;

    (void)state;
    assert_int_equal(verify(good, keyset, &p), JWT_OK);

    /* Extra segments. */
    t = fx_printf("%s.%s", good, "c2ln");
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token is not three dot-separated segments");
    free(t);
    t = fx_printf("%s..", good);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    assert_int_equal(verify("a.b.c.d.e", keyset, &p), JWT_MALFORMED);
    assert_int_equal(verify("abcd", keyset, &p), JWT_MALFORMED);
    assert_int_equal(verify("", keyset, &p), JWT_MALFORMED);
    /* Two dots, empty parts. */
    assert_int_equal(verify("..", keyset, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token has an empty header or payload segment");
    t = fx_printf("%.*s%s", (int)s1, good, good + s2 - 1);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED); /* "h..sig" */
    assert_string_equal(detail, "token has an empty header or payload segment");
    free(t);
    t = strdup(good + s1 - 1); /* ".payload.sig" */
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    /* The signature segment left empty. */
    t = fx_printf("%.*s", (int)s2, good);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_SIGNATURE);
    free(t);

    /* Bad base64url in each segment: padding, '+', '/', whitespace. */
    t = fx_printf("%.*s=%s", (int)(s1 - 1), good, good + s1 - 1);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token segment is not strict base64url");
    free(t);
    t = fx_printf("%s==", good);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    t = with_char(good, s1 + 3, '+');
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    t = with_char(good, s2 + 3, '/');
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    t = with_char(good, 2, ' ');
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    t = fx_printf("%.*s\n%s", (int)s2, good, good + s2);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    t = fx_printf(" %s", good);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    /* A NUL inside the given length. */
    {
        char *z = strdup(good);

        assert_non_null(z);
        z[s1 + 2] = '\0';
        assert_int_equal(
            jwt_verify(z, strlen(good), keyset, &p, NULL, NULL, 0, NULL, 0),
            JWT_MALFORMED);
        free(z);
    }
    free(good);

    /* A non-canonical last character: a 256-byte RSA signature is 342
     * characters, so its last one carries 4 unused bits. */
    good = rs_token("");
    {
        size_t n = strlen(good);
        char last = good[n - 1];
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_";
        size_t v = (size_t)(strchr(abc, last) - abc);

        assert_int_equal((n - s2) % 4, 2);
        assert_int_equal(v & 15, 0);
        t = with_char(good, n - 1, abc[v | 1]);
        assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
        free(t);
    }
    free(good);
    /* Null arguments. */
    assert_int_equal(
        jwt_verify(NULL, 0, keyset, &p, NULL, NULL, 0, detail, sizeof(detail)),
        JWT_MALFORMED);
    assert_int_equal(
        jwt_verify("a.b.c", 5, keyset, NULL, NULL, NULL, 0, NULL, 0),
        JWT_MALFORMED);
}

static void test_header_and_payload_json(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");

    (void)state;
    /* Duplicate members in the header: which alg would count? */
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\","
                 "\"alg\":\"none\"}",
                 payload);
    assert_string_equal(detail, "token header is not a JSON object");
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\","
                 "\"kid\":\"ec1\"}",
                 payload);
    /* Headers that are not objects. */
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key, "[\"RS256\"]", payload);
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key, "{\"alg\":\"RS256\"",
                 payload);
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"} x", payload);
    /* Not UTF-8. */
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"x\":\"\xff\"}",
                 payload);

    /* Signed payloads that are not a JSON object, or repeat a member. */
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
                 "[\"sub\",\"alice\"]");
    assert_string_equal(detail, "token payload is not a JSON object");
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
                 "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\",\"exp\":1893456000,"
                 "\"sub\":\"admin\"}");
    expect_token(&p, keyset, JWT_MALFORMED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", "\"x\"");
    free(payload);
}

static void test_crit_and_typ(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    char *t;

    (void)state;
    expect_token(&p, keyset, JWT_BAD_ALG, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\","
                 "\"crit\":[\"exp\"],\"exp\":1}",
                 payload);
    assert_string_equal(detail, "token header has a crit member");
    /* Even an empty or malformed crit. */
    expect_token(&p, keyset, JWT_BAD_ALG, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"crit\":[]}", payload);
    /* b64:false (RFC 7797) needs crit, and so is refused. */
    expect_token(&p, keyset, JWT_BAD_ALG, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"b64\":false,"
                 "\"crit\":[\"b64\"]}",
                 payload);

    /* typ missing, "JWT", close misses, not a string. */
    t = token(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_TYP);
    assert_string_equal(detail, "token typ is not at+jwt (RFC 9068)");
    /* Without claim checks (fixed vectors) typ is not looked at. */
    {
        jwt_params v = vector_params();
        assert_int_equal(verify(t, keyset, &v), JWT_OK);
    }
    free(t);
    expect_token(&p, keyset, JWT_BAD_TYP, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload);
    expect_token(&p, keyset, JWT_BAD_TYP, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt \"}", payload);
    expect_token(&p, keyset, JWT_BAD_TYP, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"application/jwt\"}", payload);
    expect_token(&p, keyset, JWT_BAD_TYP, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":[\"at+jwt\"]}", payload);
    free(payload);
}

static void test_issuer_and_audience(void **state)
{
    jwt_params p = params();
    char *payload, *t;

    (void)state;
    /* Wrong, missing, not a string, or a prefix of the issuer. */
    payload = fx_printf("{\"iss\":\"https://evil.example\",\"sub\":\"a\","
                        "\"aud\":\"" AUDIENCE "\",\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_ISSUER, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    assert_string_equal(detail, "token iss is not the configured issuer");
    free(payload);
    payload = fx_printf("{\"sub\":\"a\",\"aud\":\"" AUDIENCE "\",\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_ISSUER, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    payload = fx_printf("{\"iss\":[\"" ISSUER "\"],\"aud\":\"" AUDIENCE
                        "\",\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_ISSUER, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    payload = fx_printf("{\"iss\":\"" ISSUER "/\",\"aud\":\"" AUDIENCE
                        "\",\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_ISSUER, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    /* No configured issuer fails closed. */
    t = rs_token("");
    p.issuer = NULL;
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_ISSUER);
    p = params();
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    free(t);

    /* aud: a string naming another server, an array missing this one, an
     * array holding it among others, missing, not strings. */
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":\"https://x\","
                        "\"exp\":%d}",
                        NOW + 60);
    t = token(rsa_key, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_AUDIENCE);
    assert_string_equal(detail, "token aud does not name this server");
    /* With no audiences configured aud is not checked. */
    p.n_audiences = 0;
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    p = params();
    free(t);
    free(payload);
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":[\"https://x\","
                        "\"https://y\"],\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_AUDIENCE, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":[\"https://x\","
                        "\"" AUDIENCE "\"],\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_OK, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"exp\":%d}", NOW + 60);
    t = token(rsa_key, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    assert_int_equal(verify(t, keyset, &p), JWT_BAD_AUDIENCE);
    p.n_audiences = 0;
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    p = params();
    free(t);
    free(payload);
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":[[\"" AUDIENCE
                        "\"],{\"a\":\"" AUDIENCE "\"}],\"exp\":%d}",
                        NOW + 60);
    expect_token(&p, keyset, JWT_BAD_AUDIENCE, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
    /* Expired and for another server: expired, as DESIGN §2.4 step 1
     * checks exp before aud. */
    payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":\"https://x\","
                        "\"exp\":%d}",
                        NOW - 61);
    expect_token(&p, keyset, JWT_EXPIRED, rsa_key,
                 "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", payload);
    free(payload);
}

/* Verifies a good RS256 token with the given time claims (JSON members). */
static jwt_status with_times(const char *times)
{
    jwt_params p = params();
    char *payload =
        fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"%s%s}",
                  times[0] != '\0' ? "," : "", times);
    char *t = token(ed_key, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\"}", payload);
    jwt_status st = verify(t, keyset, &p);

    free(t);
    free(payload);
    return st;
}

static void test_times(void **state)
{
    char m[128];

    (void)state;
    snprintf(m, sizeof(m), "\"exp\":%d", NOW - 61);
    assert_int_equal(with_times(m), JWT_EXPIRED);
    assert_string_equal(detail, "token has expired");
    snprintf(m, sizeof(m), "\"exp\":%d", NOW - 60);
    assert_int_equal(with_times(m), JWT_OK);
    /* Fractional NumericDates (RFC 7519 §2) count exactly. */
    snprintf(m, sizeof(m), "\"exp\":%d.5", NOW - 61);
    assert_int_equal(with_times(m), JWT_EXPIRED);
    snprintf(m, sizeof(m), "\"exp\":%d.5", NOW - 60);
    assert_int_equal(with_times(m), JWT_OK);
    /* No exp is malformed (token_invalid), not expired: a client would
     * refresh and get the same kind of token. */
    assert_int_equal(with_times(""), JWT_MALFORMED);
    assert_string_equal(detail, "token has no exp (RFC 9068 requires it)");
    assert_int_equal(with_times("\"exp\":\"1893456000\""), JWT_MALFORMED);
    assert_string_equal(detail, "token exp, nbf or iat is not a number");
    assert_int_equal(with_times("\"exp\":null"), JWT_MALFORMED);
    assert_int_equal(with_times("\"exp\":true"), JWT_MALFORMED);
    /* Far ends of the number range neither overflow nor pass. */
    assert_int_equal(with_times("\"exp\":9223372036854775807"), JWT_OK);
    assert_int_equal(with_times("\"exp\":1e308"), JWT_OK);
    assert_int_equal(with_times("\"exp\":-9223372036854775807"), JWT_EXPIRED);
    assert_int_equal(with_times("\"exp\":-1e308"), JWT_EXPIRED);

    snprintf(m, sizeof(m), "\"exp\":%d,\"nbf\":%d", NOW + 600, NOW + 61);
    assert_int_equal(with_times(m), JWT_NOT_YET_VALID);
    assert_string_equal(detail, "token nbf is in the future");
    snprintf(m, sizeof(m), "\"exp\":%d,\"nbf\":%d", NOW + 600, NOW + 60);
    assert_int_equal(with_times(m), JWT_OK);
    snprintf(m, sizeof(m), "\"exp\":%d,\"iat\":%d", NOW + 600, NOW + 61);
    assert_int_equal(with_times(m), JWT_NOT_YET_VALID);
    assert_string_equal(detail, "token iat is in the future");
    snprintf(m, sizeof(m), "\"exp\":%d,\"iat\":%d,\"nbf\":%d", NOW + 600,
             NOW - 3600, NOW - 3600);
    assert_int_equal(with_times(m), JWT_OK);
    snprintf(m, sizeof(m), "\"exp\":%d,\"nbf\":\"now\"", NOW + 600);
    assert_int_equal(with_times(m), JWT_MALFORMED);
    snprintf(m, sizeof(m), "\"exp\":%d,\"iat\":[1]", NOW + 600);
    assert_int_equal(with_times(m), JWT_MALFORMED);
    /* A type error counts before an expiry. */
    snprintf(m, sizeof(m), "\"exp\":%d,\"iat\":{}", NOW - 6000);
    assert_int_equal(with_times(m), JWT_MALFORMED);
    /* Expired and not yet valid at once (exp < nbf): expiry wins. */
    snprintf(m, sizeof(m), "\"exp\":%d,\"nbf\":%d", NOW - 600, NOW + 600);
    assert_int_equal(with_times(m), JWT_EXPIRED);
    {
        /* A negative leeway counts as none. */
        jwt_params p = params();
        char *payload = fx_printf("{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
                                  "\",\"exp\":%d}",
                                  NOW - 1);
        char *t =
            token(ec_key, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", payload);

        assert_int_equal(verify(t, keyset, &p), JWT_OK);
        p.leeway_s = 0;
        assert_int_equal(verify(t, keyset, &p), JWT_EXPIRED);
        p.leeway_s = -100;
        assert_int_equal(verify(t, keyset, &p), JWT_EXPIRED);
        p.leeway_s = 0;
        p.now_s = NOW - 1;
        assert_int_equal(verify(t, keyset, &p), JWT_OK);
        free(t);
        free(payload);
    }
}

static void test_size_cap(void **state)
{
    jwt_params p = params();
    char *pad = malloc(13001);
    char *extra, *t;
    size_t n;

    (void)state;
    assert_non_null(pad);
    memset(pad, 'x', 13000);
    pad[13000] = '\0';
    extra = fx_printf("\"pad\":\"%s\"", pad);
    t = rs_token(extra);
    n = strlen(t);
    assert_true(n > JWT_DEFAULT_MAX_LEN);
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token is larger than the size limit");
    /* A larger configured cap lets it through. */
    p.max_len = n;
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    p.max_len = n - 1;
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    free(t);
    free(extra);

    /* Under the default cap. */
    pad[10000] = '\0';
    extra = fx_printf("\"pad\":\"%s\"", pad);
    t = rs_token(extra);
    assert_true(strlen(t) < JWT_DEFAULT_MAX_LEN);
    p = params();
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    /* The cap is checked before anything else: even garbage of that size is
     * refused for its size. */
    free(t);
    free(extra);
    t = malloc(JWT_DEFAULT_MAX_LEN + 2);
    assert_non_null(t);
    memset(t, '.', JWT_DEFAULT_MAX_LEN + 1);
    t[JWT_DEFAULT_MAX_LEN + 1] = '\0';
    assert_int_equal(verify(t, keyset, &p), JWT_MALFORMED);
    assert_string_equal(detail, "token is larger than the size limit");
    free(t);
    free(pad);
}

static void test_es256_signature_forms(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    char *t = token(ec_key, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", payload);
    size_t s2 = seg(t, 2);
    unsigned char rs[65];
    unsigned char zero[64] = {0};
    char *sig, *bad;

    (void)state;
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    assert_int_equal(jwt_b64url_decode(t + s2, strlen(t + s2), rs), 64);
    /* 63 and 65 bytes, and r = s = 0. */
    sig = fx_b64url(rs, 63);
    bad = fx_printf("%.*s%s", (int)s2, t, sig);
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(sig);
    {
        unsigned char longer[65];

        memcpy(longer, rs, 64);
        longer[64] = 0;
        sig = fx_b64url(longer, 65);
    }
    bad = fx_printf("%.*s%s", (int)s2, t, sig);
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(sig);
    sig = fx_b64url(zero, 64);
    bad = fx_printf("%.*s%s", (int)s2, t, sig);
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(sig);
    /* r and s swapped. */
    {
        unsigned char sw[64];

        memcpy(sw, rs + 32, 32);
        memcpy(sw + 32, rs, 32);
        sig = fx_b64url(sw, 64);
    }
    bad = fx_printf("%.*s%s", (int)s2, t, sig);
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(sig);
    free(t);
    /* EdDSA and RS256 signatures of the wrong length. */
    t = token(ed_key, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\"}", payload);
    s2 = seg(t, 2);
    bad = fx_printf("%.*s%s", (int)s2, t, "AAAA");
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(t);
    t = rs_token("");
    s2 = seg(t, 2);
    {
        unsigned char rsig[300];

        assert_int_equal(jwt_b64url_decode(t + s2, strlen(t + s2), rsig), 256);
        sig = fx_b64url(rsig, 255);
    }
    bad = fx_printf("%.*s%s", (int)s2, t, sig);
    assert_int_equal(verify(bad, keyset, &p), JWT_BAD_SIGNATURE);
    free(bad);
    free(sig);
    free(t);
    free(payload);
}

/* Every single-character change of a good token is refused, and none
 * crashes. */
static void test_every_byte_changed(void **state)
{
    jwt_params p = params();
    char *payload = claims_with("");
    char *t = token(ec_key, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", payload);
    const char repl[] = {'A', '_', '.', '=', '\0', '\xff'};
    size_t i, j, n = strlen(t);

    (void)state;
    for (i = 0; i < n; i++) {
        for (j = 0; j < sizeof(repl); j++) {
            char saved = t[i];

            if (saved == repl[j])
                continue;
            t[i] = repl[j];
            assert_int_not_equal(
                jwt_verify(t, n, keyset, &p, NULL, NULL, 0, NULL, 0), JWT_OK);
            t[i] = saved;
        }
    }
    assert_int_equal(verify(t, keyset, &p), JWT_OK);
    free(t);
    free(payload);
}

typedef struct thread_arg {
    const char *tokens[3];
    int failures;
} thread_arg;

static void *verify_many(void *arg)
{
    thread_arg *a = arg;
    jwt_params p = params();
    int i;

    for (i = 0; i < 150; i++) {
        const char *t = a->tokens[i % 3];
        json_t *claims = NULL;

        if (jwt_verify(t, strlen(t), keyset, &p, &claims, NULL, 0, NULL, 0) !=
            JWT_OK)
            a->failures++;
        json_decref(claims);
    }
    return NULL;
}

static void test_threads_share_one_key_set(void **state)
{
    char *payload = claims_with("");
    char *t[3];
    thread_arg args[4];
    pthread_t th[4];
    int i;

    (void)state;
    t[0] = rs_token("");
    t[1] = token(ec_key, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", payload);
    t[2] = token(ed_key, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\"}", payload);
    for (i = 0; i < 4; i++) {
        args[i].tokens[0] = t[i % 3];
        args[i].tokens[1] = t[(i + 1) % 3];
        args[i].tokens[2] = t[(i + 2) % 3];
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]),
                         0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    for (i = 0; i < 3; i++)
        free(t[i]);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_is_jws),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_rfc7515_a2_rs256),
        cmocka_unit_test(test_rfc7515_a3_es256),
        cmocka_unit_test(test_rfc8037_a4_ed25519),
        cmocka_unit_test(test_rfc_vectors_in_one_set),
        cmocka_unit_test(test_signed_tokens_verify),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_other_algs),
        cmocka_unit_test(test_hs256_with_rsa_public_key),
        cmocka_unit_test(test_key_choice),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_header_and_payload_json),
        cmocka_unit_test(test_crit_and_typ),
        cmocka_unit_test(test_issuer_and_audience),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_es256_signature_forms),
        cmocka_unit_test(test_every_byte_changed),
        cmocka_unit_test(test_threads_share_one_key_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
