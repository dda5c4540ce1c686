/*
 * fuzz_jwt.c - a libFuzzer target for what a bearer token and a JWKS
 * document can hold (DESIGN §5): any bytes go to jwt_verify,
 * jwt_verify_signature, jwks_parse or jwt_b64url_decode.
 *
 * The first byte picks the mode:
 *   0  the rest is a token: jwt_verify with every claim check;
 *   1  the rest is a token: jwt_verify without claim checks, and
 *      jwt_verify_signature, which must agree with it;
 *   2  the rest is a JWKS document: jwks_parse, then the seed tokens are
 *      verified against whatever key set it gives;
 *   3  the rest is base64url: jwt_b64url_decode, whose output must encode
 *      back to exactly the input;
 *   4  the next byte picks a key, and the rest is a header and a payload
 *      JSON text split by a 0xff byte: the target signs them itself, so
 *      the claim checks behind a good signature are reached, and checks
 *      the status against its own reading of the header and claims.
 * Every mode also checks what holds for every input: jwt_is_jws says
 * "exactly two dots", a detail never holds the token, the kid buffer is
 * NUL-terminated, JWT_OK comes only with claims that pass RFC 9068, and
 * claims come back only with JWT_OK, JWT_EXPIRED or JWT_BAD_AUDIENCE.
 *
 * The key set is fixed: an RSA key (under two kids), a P-256 key and an
 * Ed25519 key, built at start-up from the test keys of fuzz_keys.h, plus a
 * symmetric key the parser must skip. With the environment
 * variable TRINE_FUZZ_SEEDS set to a directory, the target writes its seed
 * inputs there (signed tokens among them) and exits; scripts/fuzz does
 * that before a run.
 */
#include "fuzz_check.h"
#include "fuzz_keys.h"
#include "daemon/jwks.h"
#include "daemon/jwt.h"
#include "trine.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600
#define ISSUER "https://issuer.example"
#define AUDIENCE "https://mcp.example.com/github"

static const char *const audiences[] = {"https://other.example", AUDIENCE};

/* The signing keys of mode 4, with the alg and kid the key set gives
 * them. */
typedef struct signer {
    const char *pem;
    const char *alg;
    const char *kid;
    EVP_PKEY *pkey;
} signer;

static signer signers[] = {
    {fuzz_rsa_pem, "RS256", "rsa1", NULL},
    {fuzz_ec_pem, "ES256", "ec1", NULL},
    {fuzz_ed_pem, "EdDSA", "ed1", NULL},
};
#define NSIGNERS (sizeof signers / sizeof signers[0])

static jwks *keyset;
static char *keyset_doc;
/* Tokens that pass every check, one per key: verified again against every
 * key set mode 2 parses. */
static char *good_tokens[NSIGNERS];

static const char good_payload[] =
    "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\",\"aud\":\"" AUDIENCE "\","
    "\"client_id\":\"claude-desktop\",\"scope\":\"repo:read\","
    "\"exp\":1767229200,\"iat\":1767225500,\"nbf\":1767225500}";

/* Returns the header JSON of a token signed by s (typ given or omitted). */
static char *header_for(const signer *s, const char *typ)
{
    if (typ == NULL)
        return fx_printf("{\"alg\":\"%s\",\"kid\":\"%s\"}", s->alg, s->kid);
    return fx_printf("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"%s\"}", s->alg,
                     s->kid, typ);
}

static void init(void)
{
    char *jwk[NSIGNERS + 1] = {0};
    for (size_t i = 0; i < NSIGNERS; i++) {
        signers[i].pkey = fuzz_key_load(signers[i].pem);
        CHECK(signers[i].pkey != NULL, "a test key loads");
        jwk[i] = fx_jwk(signers[i].pkey, signers[i].kid, "\"use\":\"sig\"");
        CHECK(jwk[i] != NULL, "a JWK is made");
    }
    /* The RSA key once more under a second kid: a token without a kid
     * then has two RSA keys to choose from. */
    jwk[NSIGNERS] = fx_jwk(signers[0].pkey, "rsa2", NULL);
    CHECK(jwk[NSIGNERS] != NULL, "a JWK is made");
    keyset_doc =
        fx_printf("{\"keys\":[%s,%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"hmac\","
                  "\"k\":\"c2VjcmV0\"}]}",
                  jwk[0], jwk[1], jwk[2], jwk[3]);
    CHECK(keyset_doc != NULL, "the key set document is made");
    char err[256] = "";
    int rc =
        jwks_parse(keyset_doc, strlen(keyset_doc), &keyset, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "jwks_parse: %s\n", err);
    CHECK(rc == 0 && jwks_count(keyset) == 4 && jwks_skipped(keyset) == 1,
          "the fixed key set parses");
    for (size_t i = 0; i <= NSIGNERS; i++)
        free(jwk[i]);
    for (size_t i = 0; i < NSIGNERS; i++) {
        char *h = header_for(&signers[i], "at+jwt");
        good_tokens[i] =
            h != NULL ? fx_token(signers[i].pkey, h, good_payload) : NULL;
        free(h);
        CHECK(good_tokens[i] != NULL, "a token is signed");
    }
}

static jwt_params params(bool check_claims)
{
    jwt_params p = {ISSUER, audiences, 2, NOW, 60, 0, check_claims};
    return p;
}

/* ---- What holds for every call ----------------------------------------- */

/* Checks the out-parameters of one call on token (n bytes). */
static void check_outputs(const char *token, size_t n, jwt_status st,
                          const char *kid, size_t kid_len, const char *detail,
                          size_t detail_len)
{
    CHECK(strcmp(jwt_status_name(st), "unknown") != 0, "a known status");
    CHECK(memchr(kid, '\0', kid_len) != NULL, "kid is NUL-terminated");
    CHECK(memchr(detail, '\0', detail_len) != NULL, "detail is NUL-terminated");
    CHECK((st == JWT_OK) == (detail[0] == '\0'),
          "a detail exactly when refused");
    if (st != JWT_UNKNOWN_KID)
        CHECK(kid[0] == '\0', "kid is only given for an unknown kid");
    /* The detail must not leak the token, nor its signature segment. */
    if (n >= 8) {
        char *t = malloc(n + 1);
        CHECK(t != NULL, "out of memory");
        memcpy(t, token, n);
        t[n] = '\0';
        if (strlen(t) == n)
            CHECK(strstr(detail, t) == NULL, "the detail holds the token");
        const char *dot = strrchr(t, '.');
        if (dot != NULL && strlen(dot + 1) >= 16)
            CHECK(strstr(detail, dot + 1) == NULL,
                  "the detail holds the signature");
        free(t);
    }
}

/* Reads an optional NumericDate: 1 and *v when a number, 0 when absent,
 * -1 otherwise. */
static int date_claim(const json_t *c, const char *name, double *v)
{
    const json_t *x = json_object_get(c, name);
    if (x == NULL)
        return 0;
    if (!json_is_number(x))
        return -1;
    *v = json_number_value(x);
    return 1;
}

static bool aud_ok(const json_t *aud)
{
    for (size_t k = 0; k < 2; k++) {
        if (json_is_string(aud) &&
            strcmp(json_string_value(aud), audiences[k]) == 0)
            return true;
        size_t i;
        const json_t *v;
        json_array_foreach(aud, i, v)
        {
            if (json_is_string(v) &&
                strcmp(json_string_value(v), audiences[k]) == 0)
                return true;
        }
    }
    return false;
}

/* RFC 9068 and DESIGN §5 on the claims of an accepted token, read here
 * independently: what the status must be for this payload. */
static jwt_status claims_status(const json_t *c)
{
    double exp = 0, nbf = 0, iat = 0;
    int he = date_claim(c, "exp", &exp);
    int hn = date_claim(c, "nbf", &nbf);
    int hi = date_claim(c, "iat", &iat);
    const json_t *iss = json_object_get(c, "iss");
    if (he < 0 || hn < 0 || hi < 0)
        return JWT_MALFORMED;
    if (!json_is_string(iss) || strcmp(json_string_value(iss), ISSUER) != 0)
        return JWT_BAD_ISSUER;
    /* RFC 9068 requires exp: a token without one is malformed (not
     * expired, which would tell the client to refresh). */
    if (he == 0)
        return JWT_MALFORMED;
    /* Expiry before audience, as DESIGN §2.4 step 1 orders them. */
    if ((double)NOW > exp + 60)
        return JWT_EXPIRED;
    if (!aud_ok(json_object_get(c, "aud")))
        return JWT_BAD_AUDIENCE;
    if ((hn == 1 && nbf > (double)NOW + 60) ||
        (hi == 1 && iat > (double)NOW + 60))
        return JWT_NOT_YET_VALID;
    return JWT_OK;
}

static bool typ_ok(const json_t *typ)
{
    if (!json_is_string(typ))
        return false;
    const char *t = json_string_value(typ);
    size_t n = json_string_length(typ);
    return (n == 6 && strncasecmp(t, "at+jwt", 6) == 0) ||
           (n == 18 && strncasecmp(t, "application/at+jwt", 18) == 0);
}

/* ---- The modes ----------------------------------------------------------- */

static jwt_status verify(const char *t, size_t n, const jwks *keys,
                         bool check_claims, json_t **claims)
{
    jwt_params p = params(check_claims);
    char kid[16], detail[128];
    memset(kid, 'x', sizeof kid);
    memset(detail, 'x', sizeof detail);
    jwt_status st = jwt_verify(t, n, keys, &p, claims, kid, sizeof kid, detail,
                               sizeof detail);
    check_outputs(t, n, st, kid, sizeof kid, detail, sizeof detail);
    bool authentic =
        st == JWT_OK || st == JWT_EXPIRED || st == JWT_BAD_AUDIENCE;
    CHECK(authentic == (*claims != NULL),
          "claims exactly when the signature verified and the claims are "
          "only expired or for another audience");
    CHECK(*claims == NULL || json_is_object(*claims), "claims are an object");
    if (st == JWT_OK && check_claims)
        CHECK(claims_status(*claims) == JWT_OK,
              "an accepted token has good claims");
    return st;
}

static void mode_token(const char *t, size_t n, bool check_claims)
{
    size_t dots = 0;
    for (size_t i = 0; i < n; i++)
        dots += t[i] == '.';
    CHECK(jwt_is_jws(t, n) == (dots == 2), "jwt_is_jws counts two dots");
    json_t *claims = NULL;
    jwt_status st = verify(t, n, keyset, check_claims, &claims);
    json_decref(claims);
    if (check_claims)
        return;
    /* jwt_verify runs exactly the steps of jwt_verify_signature first. */
    jwt_params p = params(false);
    char kid[16], detail[128];
    jwt_status sig = jwt_verify_signature(t, n, keyset, &p, kid, sizeof kid,
                                          detail, sizeof detail);
    check_outputs(t, n, sig, kid, sizeof kid, detail, sizeof detail);
    CHECK(sig == JWT_OK ? (st == JWT_OK || st == JWT_MALFORMED) : st == sig,
          "jwt_verify_signature agrees with jwt_verify");
}

static void mode_jwks(const char *doc, size_t n)
{
    jwks *k = NULL;
    char err[128];
    memset(err, 'x', sizeof err);
    int rc = jwks_parse(doc, n, &k, err, sizeof err);
    CHECK(rc == 0 || rc == TRINE_EINVAL || rc == TRINE_ENOMEM,
          "jwks_parse returns a known code");
    CHECK((rc == 0) == (k != NULL), "a key set exactly on success");
    if (rc != 0) {
        CHECK(rc != TRINE_EINVAL ||
                  (memchr(err, '\0', sizeof err) != NULL && err[0] != '\0'),
              "a failure says why");
        return;
    }
    size_t count = jwks_count(k);
    for (size_t i = 0; i < count; i++) {
        const jwks_key *key = jwks_key_at(k, i);
        CHECK(key != NULL && key->pkey != NULL, "every usable key is there");
        CHECK(key->kid == NULL ? key->kid_len == 0
                               : key->kid[key->kid_len] == '\0',
              "kid_len measures kid");
        CHECK(key->kty == JWKS_KTY_RSA || key->kty == JWKS_KTY_EC_P256 ||
                  key->kty == JWKS_KTY_ED25519,
              "a usable key type");
    }
    CHECK(jwks_key_at(k, count) == NULL, "no key past the count");
    for (size_t i = 0; i < NSIGNERS; i++) {
        json_t *claims = NULL;
        (void)verify(good_tokens[i], strlen(good_tokens[i]), k, true, &claims);
        json_decref(claims);
    }
    jwks_free(k);
}

static void mode_b64(const char *in, size_t n)
{
    unsigned char *out = malloc(n * 3 / 4 + 1);
    CHECK(out != NULL, "out of memory");
    ssize_t got = jwt_b64url_decode(in, n, out);
    if (got >= 0) {
        CHECK(out[got] == '\0', "the output is NUL-terminated");
        char *back = fx_b64url(out, (size_t)got);
        CHECK(back != NULL, "out of memory");
        CHECK(strlen(back) == n && memcmp(back, in, n) == 0,
              "strict base64url encodes back to its input");
        free(back);
    }
    free(out);
}

/* Mode 4: a header and a payload signed here with a key of the set. */
static void mode_signed(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    const signer *s = &signers[data[0] % NSIGNERS];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memchr(rest, 0xff, n);
    size_t hlen = sep != NULL ? (size_t)(sep - rest) : n;
    const char *payload = sep != NULL ? sep + 1 : "";
    size_t plen = sep != NULL ? n - hlen - 1 : 0;
    char *h64 = fx_b64url((const unsigned char *)rest, hlen);
    char *p64 = fx_b64url((const unsigned char *)payload, plen);
    char *input = h64 && p64 ? fx_printf("%s.%s", h64, p64) : NULL;
    char *sig = input ? fx_sign_raw(s->pkey, input, strlen(input)) : NULL;
    char *token = sig ? fx_printf("%s.%s", input, sig) : NULL;
    free(h64);
    free(p64);
    free(input);
    free(sig);
    CHECK(token != NULL, "a token is signed");

    json_t *claims = NULL;
    jwt_status st = verify(token, strlen(token), keyset, true, &claims);
    json_decref(claims);

    /* What the status must be when the header is one this key set takes
     * (so the signature is good) and the token is within the size cap. */
    json_t *hdr = json_loadb(rest, hlen, JSON_REJECT_DUPLICATES, NULL);
    json_t *body = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, NULL);
    const json_t *alg = json_object_get(hdr, "alg");
    const json_t *kid = json_object_get(hdr, "kid");
    bool header_ok =
        json_is_object(hdr) && json_is_string(alg) &&
        strcmp(json_string_value(alg), s->alg) == 0 &&
        json_object_get(hdr, "crit") == NULL &&
        typ_ok(json_object_get(hdr, "typ")) &&
        ((json_is_string(kid) && strcmp(json_string_value(kid), s->kid) == 0) ||
         /* The RSA key is in the set under a second kid too. */
         (json_is_string(kid) && s->pkey == signers[0].pkey &&
          strcmp(json_string_value(kid), "rsa2") == 0) ||
         (kid == NULL && s->pkey != signers[0].pkey));
    if (header_ok && plen > 0 && strlen(token) <= JWT_DEFAULT_MAX_LEN) {
        jwt_status want =
            json_is_object(body) ? claims_status(body) : JWT_MALFORMED;
        if (st != want)
            fprintf(stderr, "fuzz_jwt: status %s, expected %s\n%s\n",
                    jwt_status_name(st), jwt_status_name(want), token);
        CHECK(st == want, "a well-signed token gets the status its claims "
                          "call for");
    }
    /* And the other way: nothing with a header this key set does not take
     * is accepted. */
    if (st == JWT_OK)
        CHECK(header_ok, "an accepted token has an acceptable header");
    json_decref(hdr);
    json_decref(body);
    free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keyset == NULL)
        init();
    if (size == 0)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        mode_token(rest, n, true);
        break;
    case 1:
        mode_token(rest, n, false);
        break;
    case 2:
        mode_jwks(rest, n);
        break;
    case 3:
        mode_b64(rest, n);
        break;
    default:
        mode_signed(data + 1, n);
        break;
    }
    return 0;
}

/* ---- Seeds --------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, char mode,
                       const char *body, size_t n)
{
    char *path = fx_printf("%s/%s", dir, name);
    FILE *f = path != NULL ? fopen(path, "wb") : NULL;
    CHECK(f != NULL, "a seed file opens");
    CHECK(fputc(mode, f) != EOF && fwrite(body, 1, n, f) == n && fclose(f) == 0,
          "a seed is written");
    free(path);
}

static void write_token_seed(const char *dir, const char *name, const signer *s,
                             const char *header, const char *payload)
{
    char *t = fx_token(s->pkey, header, payload);
    CHECK(t != NULL, "a token is signed");
    write_seed(dir, name, 0, t, strlen(t));
    free(t);
}

/* Writes the seed inputs of every mode into dir. */
static void write_seeds(const char *dir)
{
    static const char *const payloads[] = {
        good_payload,
        "{\"iss\":\"" ISSUER "\",\"aud\":[\"x\",\"" AUDIENCE "\"],"
        "\"exp\":1767225000}",
        "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":\"soon\"}",
        "{\"iss\":\"https://evil.example\",\"aud\":\"" AUDIENCE "\","
        "\"exp\":1767229200}",
        "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":1767229200,"
        "\"nbf\":1767229200}",
        "{\"iss\":\"" ISSUER "\",\"iss\":\"" ISSUER "\"}",
        "[1,2]",
        "Example of Ed25519 signing",
    };
    char name[64];
    for (size_t i = 0; i < NSIGNERS; i++) {
        const signer *s = &signers[i];
        char *h = header_for(s, "at+jwt");
        char *h2 = header_for(s, "application/AT+JWT");
        char *h3 = header_for(s, NULL);
        CHECK(h != NULL && h2 != NULL && h3 != NULL, "out of memory");
        for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
            snprintf(name, sizeof name, "token-%s-%zu", s->kid, k);
            write_token_seed(dir, name, s, h, payloads[k]);
            /* The same for mode 4: header 0xff payload. */
            char *both =
                fx_printf("%c%s\xff%s", (char)('0' + i), h, payloads[k]);
            CHECK(both != NULL, "out of memory");
            snprintf(name, sizeof name, "signed-%s-%zu", s->kid, k);
            write_seed(dir, name, 4, both, strlen(both));
            free(both);
        }
        snprintf(name, sizeof name, "token-%s-typ", s->kid);
        write_token_seed(dir, name, s, h2, good_payload);
        snprintf(name, sizeof name, "token-%s-notyp", s->kid);
        write_token_seed(dir, name, s, h3, good_payload);
        snprintf(name, sizeof name, "unchecked-%s", s->kid);
        write_seed(dir, name, 1, good_tokens[i], strlen(good_tokens[i]));
        free(h);
        free(h2);
        free(h3);
    }
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"HS256\",\"kid\":\"rsa1\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"RS256\",\"kid\":\"ec1\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"ES256\",\"kid\":\"nope\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"ES256\",\"kid\":7,\"typ\":\"at+jwt\"}",
    };
    for (size_t k = 0; k < sizeof headers / sizeof headers[0]; k++) {
        char *both = fx_printf("%c%s\xff%s", (char)('0' + k % NSIGNERS),
                               headers[k], good_payload);
        CHECK(both != NULL, "out of memory");
        snprintf(name, sizeof name, "signed-header-%zu", k);
        write_seed(dir, name, 4, both, strlen(both));
        free(both);
    }
    write_seed(dir, "jwks", 2, keyset_doc, strlen(keyset_doc));
    static const char empty_set[] = "{\"keys\":[]}";
    write_seed(dir, "jwks-empty", 2, empty_set, sizeof empty_set - 1);
    static const char b64[] = "eyJhbGciOiJFZERTQSJ9";
    write_seed(dir, "b64", 3, b64, sizeof b64 - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("TRINE_FUZZ_SEEDS");
    if (dir == NULL)
        return 0;
    init();
    write_seeds(dir);
    exit(0);
}
