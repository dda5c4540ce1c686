/*
 * jwt_fixture.h - signing side for JWT tests: key generation, JWKs built
 * from a key's public parameters, and compact JWS tokens signed with
 * RS256, ES256 or EdDSA. Everything is static and returns NULL on failure;
 * strings are malloc'd and freed by the caller.
 */
#ifndef TRINE_JWT_FIXTURE_H
#define TRINE_JWT_FIXTURE_H

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX_UNUSED __attribute__((unused))

/* Returns a new NUL-terminated string from a printf format, or NULL. */
FX_UNUSED static char *fx_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

FX_UNUSED static char *fx_printf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Returns the unpadded base64url encoding of n bytes, or NULL. */
FX_UNUSED static char *fx_b64url(const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                              "wxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)in[i] << 16) |
                          ((unsigned long)in[i + 1] << 8) | in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned long v =
            ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8);
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

/* Returns the base64url encoding of a NUL-terminated string. */
FX_UNUSED static char *fx_b64url_str(const char *s)
{
    return fx_b64url((const unsigned char *)s, strlen(s));
}

/* Returns the base64url of a big number, left-padded with zeros to pad
 * bytes (0: its minimal length). */
FX_UNUSED static char *fx_bn_b64url(const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n + 1);
    char *out = NULL;

    if (buf != NULL && BN_bn2binpad(bn, buf, n) == n)
        out = fx_b64url(buf, (size_t)n);
    free(buf);
    return out;
}

/* Key generation: "RSA" with bits, "EC" (P-256) or "ED25519". */
FX_UNUSED static EVP_PKEY *fx_keygen_rsa(unsigned bits)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

FX_UNUSED static EVP_PKEY *fx_keygen_ec(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

FX_UNUSED static EVP_PKEY *fx_keygen_ed25519(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

/* Returns the public JWK of pkey as a JSON object text, with "kid" when kid
 * is not NULL and the raw members in extra (e.g. "\"use\":\"sig\"") when
 * extra is not NULL. */
FX_UNUSED static char *fx_jwk(EVP_PKEY *pkey, const char *kid,
                              const char *extra)
{
    char *kidm =
        kid != NULL ? fx_printf("\"kid\":\"%s\",", kid) : fx_printf("%s", "");
    char *ext = extra != NULL ? fx_printf("%s,", extra) : fx_printf("%s", "");
    char *a = NULL, *b = NULL, *out = NULL;
    BIGNUM *x = NULL, *y = NULL;

    if (kidm == NULL || ext == NULL)
        goto done;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &x) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &y) != 1)
            goto done;
        a = fx_bn_b64url(x, 0);
        b = fx_bn_b64url(y, 0);
        if (a != NULL && b != NULL)
            out = fx_printf("{%s%s\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}",
                            kidm, ext, a, b);
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
            goto done;
        a = fx_bn_b64url(x, 32);
        b = fx_bn_b64url(y, 32);
        if (a != NULL && b != NULL)
            out = fx_printf("{%s%s\"kty\":\"EC\",\"crv\":\"P-256\","
                            "\"x\":\"%s\",\"y\":\"%s\"}",
                            kidm, ext, a, b);
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        unsigned char raw[32];
        size_t rawlen = sizeof(raw);

        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
            goto done;
        a = fx_b64url(raw, rawlen);
        if (a != NULL)
            out = fx_printf("{%s%s\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                            "\"x\":\"%s\"}",
                            kidm, ext, a);
    }
done:
    BN_free(x);
    BN_free(y);
    free(a);
    free(b);
    free(kidm);
    free(ext);
    return out;
}

/* Signs the bytes in with pkey as its JWS alg wants (RS256: PKCS#1 v1.5
 * SHA-256; ES256: r || s; EdDSA: Ed25519) and returns the base64url of the
 * signature. */
FX_UNUSED static char *fx_sign_raw(EVP_PKEY *pkey, const char *in, size_t n)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_PKEY_is_a(pkey, "ED25519") ? NULL : EVP_sha256();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char *out = NULL;

    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, md, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)in, n) != 1)
        goto done;
    sig = malloc(siglen);
    if (sig == NULL ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)in, n) != 1)
        goto done;
    if (EVP_PKEY_is_a(pkey, "EC")) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        unsigned char rs[64];

        if (es == NULL)
            goto done;
        if (BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) == 32)
            out = fx_b64url(rs, 64);
        ECDSA_SIG_free(es);
    } else {
        out = fx_b64url(sig, siglen);
    }
done:
    free(sig);
    EVP_MD_CTX_free(ctx);
    return out;
}

/* Returns a compact JWS of the header and payload JSON texts (used as they
 * are, so tests can send duplicate members or odd spacing), signed with
 * pkey. */
FX_UNUSED static char *fx_token(EVP_PKEY *pkey, const char *header,
                                const char *payload)
{
    char *h = fx_b64url_str(header);
    char *p = fx_b64url_str(payload);
    char *input = NULL, *sig = NULL, *out = NULL;

    if (h == NULL || p == NULL)
        goto done;
    input = fx_printf("%s.%s", h, p);
    if (input == NULL)
        goto done;
    sig = fx_sign_raw(pkey, input, strlen(input));
    if (sig != NULL)
        out = fx_printf("%s.%s", input, sig);
done:
    free(h);
    free(p);
    free(input);
    free(sig);
    return out;
}

#endif
