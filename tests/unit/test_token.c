/*
 * test_token.c - bearer token verification in trined: the refetch policy
 * of the key set cache (first use, expiry with Cache-Control clamped,
 * unknown kids at most once per 30 s, old keys kept through an outage),
 * introspection (request, outcomes, the cache of active results, the pause
 * after a failure), the routing and syntax of tokens, the audit column, the
 * client secret file, and a bearer check through rpc_handle and
 * rpc_handle_token. The authorization server is a fake transport, and time
 * is passed in, so every interval is exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/consents.h"
#include "daemon/introspect.h"
#include "daemon/rpc.h"
#include "daemon/snapshot.h"
#include "daemon/secret.h"
#include "daemon/token.h"
#include "jwt_fixture.h"

#define T0 1767225600LL /* 2026-01-01T00:00:00Z */
#define ISSUER "https://as.example"
#define AUD "https://mcp.example.com/github"

/* ---- A fake authorization server --------------------------------------- */

typedef struct fake {
    int gets;
    int posts;
    bool down; /* every request fails as a refused connection */
    long status;
    const char *jwks;
    int64_t max_age;
    long intro_status;
    const char *intro_body;
    char last_body[512];
    char last_auth[256];
} fake;

static int fake_get(void *ctx, http_client *h, const char *url,
                    http_response *r, char *err, size_t errlen)
{
    fake *f = ctx;
    f->gets++;
    if (f->down) {
        snprintf(err, errlen, "Failed to connect: Connection refused");
        return TRINE_EIO;
    }
    r->status = f->status;
    r->max_age_s = f->max_age;
    sb_puts(&r->body, f->jwks != NULL ? f->jwks : "");
    return 0;
}

static int fake_post(void *ctx, http_client *h, const char *url,
                     const char *body, size_t len, const char *authorization,
                     http_response *r, char *err, size_t errlen)
{
    fake *f = ctx;
    f->posts++;
    snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)len, body);
    snprintf(f->last_auth, sizeof f->last_auth, "%s",
             authorization ? authorization : "");
    if (f->down) {
        snprintf(err, errlen, "Operation timed out after 5000 milliseconds");
        return TRINE_EIO;
    }
    r->status = f->intro_status;
    sb_puts(&r->body, f->intro_body != NULL ? f->intro_body : "");
    return 0;
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    f->status = 200;
    f->max_age = -1;
    f->intro_status = 200;
}

static token_verifier *jwt_verifier(fake *f)
{
    token_settings s = {.issuer = ISSUER,
                        .jwks_url = "https://as.example/jwks",
                        .http_timeout_ms = 5000,
                        .connect_timeout_ms = 2000};
    token_verifier *v = NULL;
    assert_int_equal(token_verifier_new(&s, &v), 0);
    token_transport t = {fake_get, fake_post, f};
    token_set_transport(v, &t);
    return v;
}

static token_verifier *intro_verifier(fake *f, int ttl)
{
    token_settings s = {.introspection_url = "https://as.example/introspect",
                        .client_id = "trine",
                        .client_secret = "s3cret",
                        .http_timeout_ms = 5000,
                        .connect_timeout_ms = 2000,
                        .cache_ttl_s = ttl};
    token_verifier *v = NULL;
    assert_int_equal(token_verifier_new(&s, &v), 0);
    token_transport t = {fake_get, fake_post, f};
    token_set_transport(v, &t);
    return v;
}

/* ---- Keys and tokens --------------------------------------------------- */

static EVP_PKEY *keys[4];

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        keys[i] = fx_keygen_ec();
        if (keys[i] == NULL)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* A JWKS document with the public keys k[0..n) named "k<index>". */
static char *jwks_doc(const int *idx, size_t n)
{
    char *doc = fx_printf("%s", "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        char kid[8];
        snprintf(kid, sizeof kid, "k%d", idx[i]);
        char *jwk = fx_jwk(keys[idx[i]], kid, NULL);
        char *next = fx_printf("%s%s%s", doc, i ? "," : "", jwk);
        free(doc);
        free(jwk);
        doc = next;
    }
    char *out = fx_printf("%s]}", doc);
    free(doc);
    return out;
}

/* An ES256 access token signed with keys[key], its header naming kid, with
 * the given payload (NULL: the usual claims, exp an hour after exp_base). */
static char *token_with(int key, const char *kid, const char *payload,
                        int64_t exp_base)
{
    char *hdr =
        fx_printf("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    char *pl =
        payload != NULL
            ? fx_printf("%s", payload)
            : fx_printf("{\"iss\":\"" ISSUER "\",\"sub\":\"alice\","
                        "\"aud\":\"" AUD "\",\"exp\":%lld,"
                        "\"client_id\":\"claude\",\"scope\":\"repo:read\","
                        "\"jti\":\"j-1\"}",
                        (long long)exp_base + 3600);
    char *tok = fx_token(keys[key], hdr, pl);
    free(hdr);
    free(pl);
    assert_non_null(tok);
    return tok;
}

static const char *const auds[] = {AUD};

static token_request req_at(int64_t now_s)
{
    token_request q = {
        .audiences = auds, .n_audiences = 1, .now_ms = now_s * 1000};
    return q;
}

static int local(token_verifier *v, const char *tok, int64_t now_s,
                 token_result *r)
{
    token_request q = req_at(now_s);
    return token_check_local(v, tok, strlen(tok), &q, r);
}

static void remote(token_verifier *v, const char *tok, int64_t now_s,
                   token_result *r)
{
    token_request q = req_at(now_s);
    token_check_remote(v, NULL, tok, strlen(tok), &q, r);
}

static void expect_verified(token_result *r)
{
    assert_string_equal(r->outcome, "verified");
    assert_non_null(r->claims);
    assert_null(r->reason);
    token_result_clear(r);
}

static void expect_failed(token_result *r, const char *outcome,
                          const char *reason, const char *detail)
{
    assert_string_equal(r->outcome, outcome);
    assert_null(r->claims);
    assert_string_equal(r->reason, reason);
    assert_string_equal(r->detail, detail);
    token_result_clear(r);
}

/* A JWT signed by the issuer but expired or for another server: refused,
 * with the authentic claims kept for the evaluator and the audit row. */
static void expect_refused(token_result *r, const char *outcome,
                           const char *reason, const char *detail)
{
    assert_true(json_is_object(r->claims));
    json_decref(r->claims);
    r->claims = NULL;
    expect_failed(r, outcome, reason, detail);
}

static void expect_audit(const token_result *r, const char *want)
{
    strbuf b;
    sb_init(&b);
    assert_int_equal(token_audit_json(r, &b), 0);
    assert_string_equal(b.data, want);
    sb_free(&b);
}

/* ---- Pure pieces ------------------------------------------------------- */

static void test_fetch_due(void **state)
{
    (void)state;
    token_fetch_state st = {.fetching = false,
                            .expires_s = 1000,
                            .last_kid_refetch_s = INT64_MIN,
                            .retry_after_s = INT64_MIN};
    assert_true(token_fetch_due(&st, TOKEN_NEED_KEYS, 0));
    assert_false(token_fetch_due(&st, TOKEN_NEED_REFRESH, 999));
    assert_true(token_fetch_due(&st, TOKEN_NEED_REFRESH, 1000));
    assert_true(token_fetch_due(&st, TOKEN_NEED_KID, 0));
    st.last_kid_refetch_s = 500;
    assert_false(token_fetch_due(&st, TOKEN_NEED_KID, 529));
    assert_true(token_fetch_due(&st, TOKEN_NEED_KID, 530));
    /* After a failure nothing starts until the pause is over. */
    st.retry_after_s = 1005;
    assert_false(token_fetch_due(&st, TOKEN_NEED_KEYS, 1004));
    assert_false(token_fetch_due(&st, TOKEN_NEED_REFRESH, 1004));
    assert_false(token_fetch_due(&st, TOKEN_NEED_KID, 1004));
    assert_true(token_fetch_due(&st, TOKEN_NEED_REFRESH, 1005));
    /* One fetch at a time. */
    st.fetching = true;
    assert_false(token_fetch_due(&st, TOKEN_NEED_KEYS, 5000));
}

static void test_jwks_lifetime(void **state)
{
    (void)state;
    assert_int_equal(token_jwks_lifetime(-1), 3600);
    assert_int_equal(token_jwks_lifetime(0), 60);
    assert_int_equal(token_jwks_lifetime(59), 60);
    assert_int_equal(token_jwks_lifetime(60), 60);
    assert_int_equal(token_jwks_lifetime(600), 600);
    assert_int_equal(token_jwks_lifetime(86400), 86400);
    assert_int_equal(token_jwks_lifetime(86401), 86400);
}

static void test_syntax(void **state)
{
    (void)state;
#define OK(s) token_syntax_ok(s, strlen(s))
    assert_true(OK("abc"));
    assert_true(OK("a-b.c_d~e+f/g=="));
    assert_true(OK("eyJ.eyJ.sig"));
    assert_false(OK(""));
    assert_false(OK("=="));
    assert_false(OK("a b"));
    assert_false(OK("a=b"));
    assert_false(OK("tok\"en"));
    assert_false(OK("t\xc3\xa9"));
#undef OK
}

static void test_introspect_pieces(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    assert_int_equal(introspect_body(&b, "a+b/c=", 6), 0);
    assert_string_equal(b.data,
                        "token=a%2Bb%2Fc%3D&token_type_hint=access_token");
    sb_free(&b);

    json_t *c = NULL;
    char why[160];
    assert_int_equal(introspect_parse(401, "{}", 2, &c, why, sizeof why),
                     INTROSPECT_BAD);
    assert_string_equal(why, "the introspection endpoint answered HTTP 401: "
                             "it refused trined's client credentials "
                             "(--client-id, --client-secret-file)");
    assert_int_equal(introspect_parse(200, "nope", 4, &c, why, sizeof why),
                     INTROSPECT_BAD);
    assert_string_equal(why, "the introspection response is not JSON");
    assert_int_equal(introspect_parse(200, "[true]", 6, &c, why, sizeof why),
                     INTROSPECT_BAD);
    assert_string_equal(why, "the introspection response is not a JSON object");
    const char *bad = "{\"active\":\"true\"}";
    assert_int_equal(
        introspect_parse(200, bad, strlen(bad), &c, why, sizeof why),
        INTROSPECT_BAD);
    assert_string_equal(why,
                        "the introspection response has no boolean \"active\"");
    const char *dup = "{\"active\":false,\"active\":true}";
    assert_int_equal(
        introspect_parse(200, dup, strlen(dup), &c, why, sizeof why),
        INTROSPECT_BAD);
    const char *off = "{\"active\":false}";
    assert_int_equal(
        introspect_parse(200, off, strlen(off), &c, why, sizeof why),
        INTROSPECT_INACTIVE);
    assert_null(c);
    const char *on = "{\"active\":true,\"sub\":\"alice\",\"exp\":100}";
    assert_int_equal(introspect_parse(200, on, strlen(on), &c, why, sizeof why),
                     INTROSPECT_ACTIVE);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "alice");

    /* Until min(exp, now + ttl); never for an expired token or ttl 0. */
    assert_int_equal(introspect_expiry(c, 50, 300), 100);
    assert_int_equal(introspect_expiry(c, 50, 10), 60);
    assert_int_equal(introspect_expiry(c, 100, 300), -1);
    assert_int_equal(introspect_expiry(c, 50, 0), -1);
    json_decref(c);
    json_t *noexp = json_pack("{s:b}", "active", 1);
    assert_int_equal(introspect_expiry(noexp, 50, 300), 350);
    json_object_set_new(noexp, "exp", json_string("soon"));
    assert_int_equal(introspect_expiry(noexp, 50, 300), -1);
    json_decref(noexp);
}

static void key_of(int i, unsigned char k[32])
{
    memset(k, 0, 32);
    k[0] = (unsigned char)i;
    k[31] = (unsigned char)(i >> 8);
}

static void test_icache(void **state)
{
    (void)state;
    icache *c = NULL;
    assert_int_equal(icache_new(3, 1000, &c), 0);
    json_t *v[5];
    unsigned char k[5][32];
    for (int i = 0; i < 5; i++) {
        v[i] = json_pack("{s:i}", "n", i);
        key_of(i, k[i]);
    }
    assert_int_equal(icache_put(c, k[0], v[0], 100, 10), 0);
    assert_int_equal(icache_put(c, k[1], v[1], 200, 10), 0);
    json_t *got = icache_get(c, k[0], 99);
    assert_ptr_equal(got, v[0]);
    json_decref(got);
    /* Expired at 100: dropped. */
    assert_null(icache_get(c, k[0], 100));
    assert_int_equal(icache_count(c), 1);
    /* Full at three: the oldest goes. */
    icache_put(c, k[2], v[2], 300, 10);
    icache_put(c, k[3], v[3], 300, 10);
    assert_int_equal(icache_count(c), 3);
    icache_put(c, k[4], v[4], 300, 10);
    assert_int_equal(icache_count(c), 3);
    assert_null(icache_get(c, k[1], 0));
    got = icache_get(c, k[4], 0);
    assert_ptr_equal(got, v[4]);
    json_decref(got);
    /* Replacing a key keeps one entry. */
    icache_put(c, k[4], v[0], 400, 10);
    assert_int_equal(icache_count(c), 3);
    got = icache_get(c, k[4], 350);
    assert_ptr_equal(got, v[0]);
    json_decref(got);
    /* The byte budget: a big entry evicts the oldest until it fits, and
     * one larger than the whole budget is not kept. */
    icache_put(c, k[1], v[1], 500, 985);
    assert_int_equal(icache_count(c), 2);
    assert_null(icache_get(c, k[2], 0));
    assert_null(icache_get(c, k[3], 0));
    icache_put(c, k[2], v[2], 500, 1001);
    assert_null(icache_get(c, k[2], 0));
    icache_free(c);
    for (int i = 0; i < 5; i++)
        json_decref(v[i]);
}

static char tmpdir[64];

static char *write_file(const char *name, const char *text, mode_t mode)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/trine-token-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    char *path = fx_printf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static void test_read_secret(void **state)
{
    (void)state;
    char err[256];
    char *s = NULL;
    bool world = true;
    char *p = write_file("a", "s3cret\n", 0600);
    assert_int_equal(secret_read_file(p, &s, &world, err, sizeof err), 0);
    assert_string_equal(s, "s3cret");
    assert_false(world);
    free(s);
    unlink(p);
    free(p);
    p = write_file("b", "s3cret\r\n", 0644);
    assert_int_equal(secret_read_file(p, &s, &world, err, sizeof err), 0);
    assert_string_equal(s, "s3cret");
    assert_true(world);
    free(s);
    unlink(p);
    free(p);
    /* Only one trailing newline goes; inner spaces stay. */
    p = write_file("c", "a b\n\n", 0600);
    assert_int_equal(secret_read_file(p, &s, &world, err, sizeof err), 0);
    assert_string_equal(s, "a b\n");
    free(s);
    unlink(p);
    free(p);
    p = write_file("d", "\n", 0600);
    assert_int_equal(secret_read_file(p, &s, &world, err, sizeof err),
                     TRINE_EINVAL);
    char *want = fx_printf("%s: the client secret is empty", p);
    assert_string_equal(err, want);
    assert_null(s);
    free(want);
    unlink(p);
    free(p);
    p = fx_printf("%s/missing", tmpdir);
    assert_int_equal(secret_read_file(p, &s, &world, err, sizeof err),
                     TRINE_EIO);
    want = fx_printf("%s: No such file or directory", p);
    assert_string_equal(err, want);
    free(want);
    free(p);
    assert_int_equal(secret_read_file(tmpdir, &s, &world, err, sizeof err),
                     TRINE_EINVAL);
    rmdir(tmpdir);
}

/* ---- Routing ----------------------------------------------------------- */

static void test_routing_and_malformed(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    token_verifier *v = jwt_verifier(&f);
    token_result r;
    assert_int_equal(local(v, "", T0, &r), TOKEN_DONE);
    expect_failed(&r, "malformed", "token_invalid", "bearer token: empty");
    assert_int_equal(local(v, "a b.c.d", T0, &r), TOKEN_DONE);
    expect_failed(&r, "malformed", "token_invalid",
                  "bearer token: not a bearer token (RFC 6750 b64token "
                  "syntax)");
    char *big = malloc(TOKEN_MAX_LEN + 2);
    memset(big, 'a', TOKEN_MAX_LEN + 1);
    big[TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(local(v, big, T0, &r), TOKEN_DONE);
    expect_failed(&r, "malformed", "token_invalid",
                  "bearer token: longer than 16384 bytes");
    free(big);
    /* Opaque, and no introspection configured. */
    assert_int_equal(local(v, "opaque-token", T0, &r), TOKEN_DONE);
    expect_audit(&r, "{\"via\":\"none\",\"outcome\":\"unsupported\"}");
    expect_failed(&r, "unsupported", "token_invalid",
                  "bearer token: not a JWT, and no introspection endpoint "
                  "is configured");
    assert_int_equal(f.gets + f.posts, 0);
    assert_true(token_has_jwt(v));
    assert_false(token_has_introspection(v));
    token_verifier_free(v);
}

/* ---- The key set cache ------------------------------------------------- */

/* Starts f as an authorization server whose key set holds key 0, kid
 * "k0". Returns that key set's document, for the caller to free. */
static char *fake_with_k0(fake *f)
{
    fake_init(f);
    int k0[] = {0};
    char *doc = jwks_doc(k0, 1);
    f->jwks = doc;
    return doc;
}

static void test_first_use_then_cached(void **state)
{
    (void)state;
    fake f;
    char *doc = fake_with_k0(&f);
    token_verifier *v = jwt_verifier(&f);
    char *tok = token_with(0, "k0", NULL, T0);
    token_result r;
    assert_int_equal(local(v, tok, T0, &r), TOKEN_NEEDS_NETWORK);
    assert_int_equal(f.gets, 0);
    remote(v, tok, T0, &r);
    assert_int_equal(f.gets, 1);
    expect_audit(&r, "{\"via\":\"jwt\",\"outcome\":\"verified\",\"iss\":"
                     "\"https://as.example\",\"sub\":\"alice\","
                     "\"client_id\":\"claude\",\"jti\":\"j-1\"}");
    assert_string_equal(json_string_value(json_object_get(r.claims, "scope")),
                        "repo:read");
    expect_verified(&r);
    /* Cached: no network, no fetch. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(local(v, tok, T0 + i, &r), TOKEN_DONE);
        expect_verified(&r);
    }
    assert_int_equal(f.gets, 1);
    token_verifier_free(v);
    free(tok);
    free(doc);
}

static void test_unknown_kid_refetch_rate_limited(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    int k0[] = {0};
    int k01[] = {0, 1};
    char *doc0 = jwks_doc(k0, 1);
    char *doc01 = jwks_doc(k01, 2);
    f.jwks = doc0;
    token_verifier *v = jwt_verifier(&f);
    char *t0 = token_with(0, "k0", NULL, T0);
    char *t1 = token_with(1, "k1", NULL, T0);
    char *t2 = token_with(2, "k2", NULL, T0);
    char *t3 = token_with(3, "k3", NULL, T0);
    token_result r;
    remote(v, t0, T0, &r);
    expect_verified(&r);
    assert_int_equal(f.gets, 1);

    /* Rotation: a new kid is picked up by exactly one refetch. */
    f.jwks = doc01;
    assert_int_equal(local(v, t1, T0 + 1, &r), TOKEN_NEEDS_NETWORK);
    remote(v, t1, T0 + 1, &r);
    expect_verified(&r);
    assert_int_equal(f.gets, 2);
    assert_int_equal(local(v, t1, T0 + 2, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(local(v, t0, T0 + 2, &r), TOKEN_DONE);
    expect_verified(&r);

    /* Within 30 s of that refetch, unknown kids fetch nothing. */
    const char *unknown = "bearer token: unknown kid (no key in the key set "
                          "has the token's kid)";
    assert_int_equal(local(v, t2, T0 + 2, &r), TOKEN_DONE);
    expect_failed(&r, "unknown_kid", "token_invalid", unknown);
    assert_int_equal(local(v, t3, T0 + 30, &r), TOKEN_DONE);
    expect_failed(&r, "unknown_kid", "token_invalid", unknown);
    /* A token thread reaching the same point fetches nothing either. */
    remote(v, t2, T0 + 30, &r);
    expect_failed(&r, "unknown_kid", "token_invalid", unknown);
    assert_int_equal(f.gets, 2);

    /* 30 s later: one refetch, one retry, still unknown. */
    assert_int_equal(local(v, t2, T0 + 31, &r), TOKEN_NEEDS_NETWORK);
    remote(v, t2, T0 + 31, &r);
    expect_failed(&r, "unknown_kid", "token_invalid", unknown);
    assert_int_equal(f.gets, 3);
    assert_int_equal(local(v, t3, T0 + 32, &r), TOKEN_DONE);
    expect_failed(&r, "unknown_kid", "token_invalid", unknown);
    assert_int_equal(f.gets, 3);

    token_verifier_free(v);
    free(t0);
    free(t1);
    free(t2);
    free(t3);
    free(doc0);
    free(doc01);
}

static void test_expiry_and_outage_keep_old_keys(void **state)
{
    (void)state;
    fake f;
    char *doc = fake_with_k0(&f);
    f.max_age = 120;
    token_verifier *v = jwt_verifier(&f);
    char *tok = token_with(0, "k0", NULL, T0 + 5000);
    token_result r;
    remote(v, tok, T0, &r);
    expect_verified(&r);
    assert_int_equal(local(v, tok, T0 + 119, &r), TOKEN_DONE);
    expect_verified(&r);
    /* Expired: refetched on next use. */
    assert_int_equal(local(v, tok, T0 + 120, &r), TOKEN_NEEDS_NETWORK);
    /* The server is down: the old keys keep working. */
    f.down = true;
    remote(v, tok, T0 + 120, &r);
    expect_verified(&r);
    assert_int_equal(f.gets, 2);
    /* No new attempt for 5 s; the old keys serve meanwhile. */
    assert_int_equal(local(v, tok, T0 + 124, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(f.gets, 2);
    assert_int_equal(local(v, tok, T0 + 125, &r), TOKEN_NEEDS_NETWORK);
    /* Back up, with a max-age below the floor: 60 s. */
    f.down = false;
    f.max_age = 10;
    remote(v, tok, T0 + 125, &r);
    expect_verified(&r);
    assert_int_equal(f.gets, 3);
    assert_int_equal(local(v, tok, T0 + 184, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(local(v, tok, T0 + 185, &r), TOKEN_NEEDS_NETWORK);
    /* Without max-age: an hour. */
    f.max_age = -1;
    remote(v, tok, T0 + 185, &r);
    expect_verified(&r);
    assert_int_equal(local(v, tok, T0 + 185 + 3599, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(local(v, tok, T0 + 185 + 3600, &r), TOKEN_NEEDS_NETWORK);
    token_verifier_free(v);
    free(tok);
    free(doc);
}

static void test_no_keys_server_failing(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    token_verifier *v = jwt_verifier(&f);
    char *tok = token_with(0, "k0", NULL, T0);
    token_result r;
    f.down = true;
    remote(v, tok, T0, &r);
    expect_audit(&r, "{\"via\":\"jwt\",\"outcome\":\"unreachable\"}");
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: Failed to connect: "
                  "Connection refused");
    assert_int_equal(f.gets, 1);
    /* Answered at once, without the network, until the pause is over. */
    assert_int_equal(local(v, tok, T0 + 4, &r), TOKEN_DONE);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: Failed to connect: "
                  "Connection refused");
    assert_int_equal(local(v, tok, T0 + 5, &r), TOKEN_NEEDS_NETWORK);
    f.down = false;
    f.status = 500;
    remote(v, tok, T0 + 5, &r);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: the JWKS URL answered "
                  "HTTP 500");
    f.status = 200;
    f.jwks = "not json";
    remote(v, tok, T0 + 10, &r);
    assert_string_equal(r.outcome, "unreachable");
    assert_non_null(strstr(r.detail, "authorization server unreachable: "
                                     "the key set is invalid: "));
    token_result_clear(&r);
    f.jwks = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}";
    remote(v, tok, T0 + 15, &r);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: the key set has no "
                  "usable key (1 skipped)");
    assert_int_equal(f.gets, 4);
    token_verifier_free(v);
    free(tok);
}

static void test_jwt_outcomes(void **state)
{
    (void)state;
    fake f;
    char *doc = fake_with_k0(&f);
    token_verifier *v = jwt_verifier(&f);
    char *good = token_with(0, "k0", NULL, T0);
    token_result r;
    remote(v, good, T0, &r);
    expect_verified(&r);

    char *aud = token_with(0, "k0",
                           "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\","
                           "\"aud\":\"https://elsewhere\",\"exp\":1767229200}",
                           0);
    assert_int_equal(local(v, aud, T0, &r), TOKEN_DONE);
    expect_audit(&r, "{\"via\":\"jwt\",\"outcome\":\"bad_audience\","
                     "\"iss\":\"" ISSUER "\",\"sub\":\"alice\"}");
    expect_refused(&r, "bad_audience", "audience_mismatch",
                   "bearer token: bad audience (token aud does not name this "
                   "server)");
    /* No audience configured for the server: no audience check. */
    token_request q = {.now_ms = T0 * 1000};
    token_check_local(v, aud, strlen(aud), &q, &r);
    expect_verified(&r);

    char *old = token_with(0, "k0", NULL, T0 - 7200);
    assert_int_equal(local(v, old, T0, &r), TOKEN_DONE);
    expect_refused(&r, "expired", "token_expired",
                   "bearer token: expired (token has expired)");
    /* 60 s of leeway. */
    char *edge = token_with(0, "k0", NULL, T0 - 3600 - 60);
    local(v, edge, T0, &r);
    expect_verified(&r);

    char *iss = token_with(0, "k0",
                           "{\"iss\":\"https://evil\",\"sub\":\"alice\","
                           "\"aud\":\"" AUD "\",\"exp\":1767229200}",
                           0);
    local(v, iss, T0, &r);
    expect_failed(&r, "bad_issuer", "token_invalid",
                  "bearer token: bad issuer (token iss is not the "
                  "configured issuer)");

    /* Signed by another key under k0's name. */
    char *forged = token_with(1, "k0", NULL, T0);
    local(v, forged, T0, &r);
    expect_failed(&r, "bad_signature", "token_invalid",
                  "bearer token: bad signature (token signature does not "
                  "verify)");

    char *hdr = fx_b64url_str("{\"alg\":\"none\",\"typ\":\"at+jwt\"}");
    char *pl = fx_b64url_str("{\"iss\":\"" ISSUER "\",\"sub\":\"alice\"}");
    char *none = fx_printf("%s.%s.", hdr, pl);
    local(v, none, T0, &r);
    assert_string_equal(r.outcome, "bad_alg");
    assert_string_equal(r.reason, "token_invalid");
    token_result_clear(&r);
    assert_int_equal(f.gets, 1);

    token_verifier_free(v);
    free(good);
    free(aud);
    free(old);
    free(edge);
    free(iss);
    free(forged);
    free(hdr);
    free(pl);
    free(none);
    free(doc);
}

/* ---- Introspection ----------------------------------------------------- */

static void test_introspection(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    token_verifier *v = intro_verifier(&f, 300);
    assert_true(token_has_introspection(v));
    assert_false(token_has_jwt(v));
    char *active = fx_printf(
        "{\"active\":true,\"iss\":\"" ISSUER "\",\"sub\":\"alice\","
        "\"client_id\":\"claude\",\"scope\":\"repo:read\",\"jti\":\"j-9\","
        "\"exp\":%lld}",
        T0 + 100);
    f.intro_body = active;
    token_result r;
    assert_int_equal(local(v, "opaque+1/x=", T0, &r), TOKEN_NEEDS_NETWORK);
    remote(v, "opaque+1/x=", T0, &r);
    assert_int_equal(f.posts, 1);
    assert_string_equal(f.last_body,
                        "token=opaque%2B1%2Fx%3D&token_type_hint=access_token");
    /* base64("trine:s3cret") */
    assert_string_equal(f.last_auth, "Basic dHJpbmU6czNjcmV0");
    expect_audit(&r, "{\"via\":\"introspection\",\"outcome\":\"verified\","
                     "\"iss\":\"https://as.example\",\"sub\":\"alice\","
                     "\"client_id\":\"claude\",\"jti\":\"j-9\"}");
    expect_verified(&r);
    /* Cached until exp. */
    assert_int_equal(local(v, "opaque+1/x=", T0 + 99, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(f.posts, 1);
    assert_int_equal(local(v, "opaque+1/x=", T0 + 100, &r),
                     TOKEN_NEEDS_NETWORK);

    /* A JWT-shaped token goes to introspection when only it is set up. */
    assert_int_equal(local(v, "a.b.c", T0, &r), TOKEN_NEEDS_NETWORK);

    /* Inactive: token_invalid, and not cached. */
    f.intro_body = "{\"active\":false}";
    remote(v, "opaque-2", T0, &r);
    expect_audit(&r, "{\"via\":\"introspection\",\"outcome\":\"inactive\"}");
    expect_failed(&r, "inactive", "token_invalid",
                  "bearer token: not active (introspection)");
    assert_int_equal(local(v, "opaque-2", T0, &r), TOKEN_NEEDS_NETWORK);

    /* Active but expired: verified (the evaluator says token_expired),
     * not cached. */
    char *expired = fx_printf("{\"active\":true,\"sub\":\"alice\","
                              "\"exp\":%lld}",
                              T0 - 1000);
    f.intro_body = expired;
    remote(v, "opaque-3", T0, &r);
    expect_verified(&r);
    assert_int_equal(local(v, "opaque-3", T0, &r), TOKEN_NEEDS_NETWORK);

    /* A 200 that is not an introspection response. */
    f.intro_body = "<html>";
    remote(v, "opaque-4", T0, &r);
    expect_failed(&r, "bad_response", "token_invalid",
                  "authorization server gave an invalid response: the "
                  "introspection response is not JSON");
    assert_int_equal(local(v, "opaque-4", T0, &r), TOKEN_NEEDS_NETWORK);

    /* A server error: unreachable, and no request for 5 s. */
    f.intro_body = active;
    remote(v, "opaque-7", T0, &r);
    expect_verified(&r);
    int posts = f.posts;
    f.intro_status = 503;
    remote(v, "opaque-5", T0, &r);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: the introspection "
                  "endpoint answered HTTP 503");
    assert_int_equal(local(v, "opaque-6", T0 + 4, &r), TOKEN_DONE);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: the introspection "
                  "endpoint answered HTTP 503");
    remote(v, "opaque-6", T0 + 4, &r);
    token_result_clear(&r);
    assert_int_equal(f.posts, posts + 1);
    /* Cached results keep working meanwhile. */
    assert_int_equal(local(v, "opaque-7", T0 + 4, &r), TOKEN_DONE);
    expect_verified(&r);
    assert_int_equal(local(v, "opaque-6", T0 + 5, &r), TOKEN_NEEDS_NETWORK);
    f.intro_status = 200;
    f.down = true;
    remote(v, "opaque-6", T0 + 5, &r);
    expect_failed(&r, "unreachable", "token_invalid",
                  "authorization server unreachable: Operation timed out "
                  "after 5000 milliseconds");
    token_verifier_free(v);

    /* TTL 0: nothing is cached. */
    fake_init(&f);
    f.intro_body = active;
    v = intro_verifier(&f, 0);
    remote(v, "opaque-1", T0, &r);
    expect_verified(&r);
    assert_int_equal(local(v, "opaque-1", T0, &r), TOKEN_NEEDS_NETWORK);
    token_verifier_free(v);
    free(active);
    free(expired);
}

/* ---- Through the RPC layer --------------------------------------------- */

static const char policy_src[] =
    "server \"github\" { audience \"" AUD "\" }\n"
    "scope \"repo:read\" { allow issues.read on \"repo:*\" }\n"
    "role reader { allow issues.read on \"repo:*\" }\n"
    "user \"alice\" { roles reader }\n"
    "agent \"claude\" { allow issues.read on \"repo:*\" }\n"
    "tool \"github\" \"get_issue\" { needs issues.read on "
    "\"repo:{owner}/{repo}\"\n redact body }\n";

typedef struct rfix {
    daemon_ctx ctx;
    snapshot *snap;
    consents *grants;
    trined_config cfg;
    fake f;
    char *doc;
} rfix;

static int rpc_setup(void **state)
{
    rfix *x = calloc(1, sizeof *x);
    if (x == NULL)
        return -1;
    trine_source src = {"github.trine", policy_src, sizeof policy_src - 1};
    trine_policy *p = NULL;
    if (trine_policy_load_sources(&src, 1, NULL, &p) != 0)
        return -1;
    if (snapshot_new(p, "/nonexistent", &x->snap) != 0 ||
        consents_new(&x->grants) != 0 || config_init(&x->cfg) != 0)
        return -1;
    fake_init(&x->f);
    int k0[] = {0};
    x->doc = jwks_doc(k0, 1);
    x->f.jwks = x->doc;
    x->ctx.cfg = &x->cfg;
    x->ctx.snap = x->snap;
    x->ctx.grants = x->grants;
    x->ctx.tokens = jwt_verifier(&x->f);
    *state = x;
    return 0;
}

static int rpc_teardown(void **state)
{
    rfix *x = *state;
    token_verifier_free(x->ctx.tokens);
    snapshot_free(x->snap);
    consents_free(x->grants);
    config_free(&x->cfg);
    free(x->doc);
    free(x);
    return 0;
}

static job *rpc_line(rfix *x, const char *params)
{
    job *j = job_new();
    assert_non_null(j);
    sb_printf(&j->in,
              "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"check\","
              "\"params\":%s}",
              params);
    rpc_handle(&x->ctx, j);
    return j;
}

static bool all_zero(const strbuf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] != '\0')
            return false;
    }
    return true;
}

static void test_rpc_bearer(void **state)
{
    rfix *x = *state;
    char *tok = token_with(0, "k0", NULL, (int64_t)time(NULL));
    char *params = fx_printf("{\"server\":\"github\",\"tool\":\"get_issue\","
                             "\"arguments\":{\"owner\":\"acme\",\"repo\":"
                             "\"w\",\"body\":\"private\"},\"bearer\":\"%s\"}",
                             tok);
    /* No keys yet: the check goes to a token thread. */
    job *j = rpc_line(x, params);
    assert_int_equal(j->kind, JOB_TOKEN);
    assert_non_null(j->root);
    assert_int_equal(x->f.gets, 0);
    rpc_handle_token(&x->ctx, j, NULL);
    assert_int_equal(x->f.gets, 1);
    assert_int_equal(j->kind, JOB_CHECK);
    assert_null(j->root);
    assert_true(all_zero(&j->in));
    assert_non_null(strstr(j->out.data, "\"decision\":\"allow\""));
    assert_string_equal(job_col_text(j, JCOL_USER), "alice");
    assert_string_equal(job_col_text(j, JCOL_AGENT), "claude");
    assert_string_equal(job_col_text(j, JCOL_TOKEN),
                        "{\"via\":\"jwt\",\"outcome\":\"verified\",\"iss\":"
                        "\"https://as.example\",\"sub\":\"alice\","
                        "\"client_id\":\"claude\",\"jti\":\"j-1\"}");
    assert_null(strstr(j->out.data, tok));
    job_free(j);

    /* Keys cached: answered on the worker. */
    j = rpc_line(x, params);
    assert_int_equal(j->kind, JOB_CHECK);
    assert_true(all_zero(&j->in));
    assert_non_null(strstr(j->out.data, "\"decision\":\"allow\""));
    job_free(j);
    assert_int_equal(x->f.gets, 1);
    free(params);
    free(tok);

    /* A forged token: deny with the verifier's detail, redacted
     * arguments, no user. */
    tok = token_with(1, "k0", NULL, (int64_t)time(NULL));
    params = fx_printf("{\"server\":\"github\",\"tool\":\"get_issue\","
                       "\"arguments\":{\"owner\":\"acme\",\"repo\":\"w\","
                       "\"body\":\"private\"},\"session\":\"s1\","
                       "\"bearer\":\"%s\"}",
                       tok);
    j = rpc_line(x, params);
    assert_int_equal(j->kind, JOB_CHECK);
    const char *want_tail =
        "\"result\":{\"decision\":\"deny\",\"reason\":\"token_invalid\"";
    assert_non_null(strstr(j->out.data, want_tail));
    assert_non_null(strstr(j->out.data,
                           "\"reasons\":[{\"code\":\"token_invalid\","
                           "\"detail\":\"bearer token: bad signature "
                           "(token signature does not verify)\"}]"));
    assert_string_equal(job_col_text(j, JCOL_REASON), "token_invalid");
    assert_null(job_col_text(j, JCOL_USER));
    assert_string_equal(job_col_text(j, JCOL_SESSION), "s1");
    assert_string_equal(job_col_text(j, JCOL_ARGUMENTS),
                        "{\"body\":\"[redacted]\",\"owner\":\"acme\","
                        "\"repo\":\"w\"}");
    assert_string_equal(job_col_text(j, JCOL_TOKEN),
                        "{\"via\":\"jwt\",\"outcome\":\"bad_signature\"}");
    job_free(j);
    free(params);
    free(tok);

    /* The wrong audience: audience_mismatch naming the server block. */
    tok = token_with(0, "k0",
                     "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\","
                     "\"aud\":\"https://elsewhere\",\"exp\":4102444800}",
                     0);
    params = fx_printf("{\"server\":\"github\",\"tool\":\"get_issue\","
                       "\"bearer\":\"%s\"}",
                       tok);
    j = rpc_line(x, params);
    assert_int_equal(j->kind, JOB_CHECK);
    /* Decided by the evaluator, as the same claims sent as "token". */
    assert_non_null(strstr(
        j->out.data, "\"reasons\":[{\"code\":\"audience_mismatch\","
                     "\"rule\":\"github.trine:1\",\"detail\":\"aud names no "
                     "audience of server \\\"github\\\"\"}"));
    assert_string_equal(job_col_text(j, JCOL_TOKEN),
                        "{\"via\":\"jwt\",\"outcome\":\"bad_audience\","
                        "\"iss\":\"" ISSUER "\",\"sub\":\"alice\"}");
    job_free(j);
    free(params);
    free(tok);
    assert_int_equal(x->f.gets, 1);
}

static void test_rpc_bearer_invalid_params(void **state)
{
    rfix *x = *state;
    static const struct {
        const char *params;
        const char *msg;
    } cases[] = {
        {"{\"server\":\"github\",\"tool\":\"get_issue\",\"bearer\":\"a.b.c\","
         "\"token\":{}}",
         "params: give token or bearer, not both"},
        {"{\"server\":\"github\",\"tool\":\"get_issue\",\"bearer\":7}",
         "params.bearer must be a string"},
        {"{\"server\":\"github\",\"tool\":1,\"bearer\":\"a.b.c\"}",
         "params.tool must be a string"},
        {"{\"server\":\"github\",\"tool\":\"t\",\"arguments\":[],"
         "\"bearer\":\"a.b.c\"}",
         "params.arguments must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job *j = rpc_line(x, cases[i].params);
        assert_int_equal(j->kind, JOB_REPLY);
        char *want = fx_printf("{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{"
                               "\"code\":-32602,\"message\":\"%s\"}}\n",
                               cases[i].msg);
        assert_string_equal(j->out.data, want);
        free(want);
        job_free(j);
    }
    assert_int_equal(x->f.gets, 0);

    /* Without a verifier, a bearer is refused as before. */
    token_verifier *v = x->ctx.tokens;
    x->ctx.tokens = NULL;
    job *j = rpc_line(x, "{\"server\":\"github\",\"tool\":\"get_issue\","
                         "\"bearer\":\"a.b.c\"}");
    char *want = fx_printf("{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{"
                           "\"code\":-32602,\"message\":\"%s\"}}\n",
                           RPC_BEARER_MSG);
    assert_string_equal(j->out.data, want);
    free(want);
    job_free(j);
    x->ctx.tokens = v;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_due),
        cmocka_unit_test(test_jwks_lifetime),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_introspect_pieces),
        cmocka_unit_test(test_icache),
        cmocka_unit_test(test_read_secret),
        cmocka_unit_test(test_routing_and_malformed),
        cmocka_unit_test(test_first_use_then_cached),
        cmocka_unit_test(test_unknown_kid_refetch_rate_limited),
        cmocka_unit_test(test_expiry_and_outage_keep_old_keys),
        cmocka_unit_test(test_no_keys_server_failing),
        cmocka_unit_test(test_jwt_outcomes),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test_setup_teardown(test_rpc_bearer, rpc_setup,
                                        rpc_teardown),
        cmocka_unit_test_setup_teardown(test_rpc_bearer_invalid_params,
                                        rpc_setup, rpc_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
