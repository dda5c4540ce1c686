/*
 * token.c - the bearer token verifier: routing, the key set cache and its
 * refetch policy, introspection with its cache, and outcomes (see token.h).
 */
#include "daemon/token.h"

#include "daemon/introspect.h"
#include "daemon/jwks.h"
#include "daemon/jwt.h"
#include "daemon/log.h"
#include "trine.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An immutable key set and when it expires, shared by reference. */
typedef struct keyset {
    atomic_long refs;
    jwks *keys;
    int64_t expires_s;
    uint64_t gen; /* which fetch made it */
} keyset;

struct token_verifier {
    char *issuer;
    char *jwks_url;
    char *introspection_url;
    char *client_id;
    char *client_secret;
    char *authorization; /* "Basic ..." for introspection */
    int ttl_s;
    token_transport tr;
    atomic_bool stop;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* a key set fetch ended */
    keyset *keys;        /* NULL until the first successful fetch */
    uint64_t gen;        /* of the newest key set */
    token_fetch_state fs;
    char jwks_error[256];  /* why the last fetch failed */
    int64_t intro_retry_s; /* no introspection before (after a failure) */
    char intro_error[256]; /* why the last one failed */
    icache *cache;         /* NULL when results are not cached */
};

/* ---- Small pieces ------------------------------------------------------ */

static keyset *keyset_retain(keyset *k)
{
    if (k != NULL)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

static void keyset_release(keyset *k)
{
    if (k != NULL && atomic_fetch_sub(&k->refs, 1) == 1) {
        jwks_free(k->keys);
        free(k);
    }
}

bool token_fetch_due(const token_fetch_state *st, token_need need,
                     int64_t now_s)
{
    if (st->fetching || now_s < st->retry_after_s)
        return false;
    switch (need) {
    case TOKEN_NEED_KEYS:
        return true;
    case TOKEN_NEED_REFRESH:
        return now_s >= st->expires_s;
    case TOKEN_NEED_KID:
        return st->last_kid_refetch_s == INT64_MIN ||
               now_s - st->last_kid_refetch_s >= TOKEN_KID_REFETCH_S;
    }
    return false;
}

int64_t token_jwks_lifetime(int64_t max_age_s)
{
    if (max_age_s < 0)
        return TOKEN_JWKS_DEFAULT_AGE_S;
    if (max_age_s < TOKEN_JWKS_MIN_AGE_S)
        return TOKEN_JWKS_MIN_AGE_S;
    if (max_age_s > TOKEN_JWKS_MAX_AGE_S)
        return TOKEN_JWKS_MAX_AGE_S;
    return max_age_s;
}

bool token_syntax_ok(const char *token, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = token[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || c == '+' || c == '/')
            i++;
        else
            break;
    }
    if (i == 0)
        return false;
    while (i < len && token[i] == '=')
        i++;
    return i == len;
}

/* Replaces every byte of s that is not part of valid UTF-8 with '?', so a
 * message cut by snprintf (or quoting a header) stays a valid JSON string
 * once written. */
static void token_fix_utf8(char *s)
{
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        size_t ok = utf8_check(s + i, n - i);
        if (ok == n - i)
            break;
        s[i + ok] = '?';
        i += ok + 1;
    }
}

void token_result_clear(token_result *r)
{
    json_decref(r->claims);
    memset(r, 0, sizeof *r);
}

static void token_verified(token_result *r, token_via via, json_t *claims)
{
    r->via = via;
    r->outcome = "verified";
    r->claims = claims;
    r->reason = NULL;
    r->detail[0] = '\0';
}

static void token_fail(token_result *r, token_via via, const char *outcome,
                       const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void token_fail(token_result *r, token_via via, const char *outcome,
                       const char *reason, const char *fmt, ...)
{
    r->via = via;
    r->outcome = outcome;
    r->claims = NULL;
    r->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    token_fix_utf8(r->detail);
}

/* Fills r from a JWT verification. */
static void token_jwt_result(token_result *r, jwt_status st, json_t *claims,
                             const char *detail)
{
    if (st == JWT_OK) {
        token_verified(r, TOKEN_VIA_JWT, claims);
        return;
    }
    const char *name = jwt_status_name(st);
    char words[48];
    snprintf(words, sizeof words, "%s", name);
    for (char *p = words; *p; p++) {
        if (*p == '_')
            *p = ' ';
    }
    const char *reason = "token_invalid";
    if (st == JWT_BAD_AUDIENCE)
        reason = "audience_mismatch";
    else if (st == JWT_EXPIRED)
        reason = "token_expired";
    if (detail != NULL && detail[0] != '\0')
        token_fail(r, TOKEN_VIA_JWT, name, reason, "bearer token: %s (%s)",
                   words, detail);
    else
        token_fail(r, TOKEN_VIA_JWT, name, reason, "bearer token: %s", words);
    /* Signed by the issuer, but expired or for another server: the claims
     * are authentic, so the evaluator decides (step 1 gives the same reason
     * and rule as for "token") and the audit row names who sent it. */
    if (st == JWT_EXPIRED || st == JWT_BAD_AUDIENCE)
        r->claims = claims;
    else
        json_decref(claims);
}

static void token_unreachable(token_result *r, token_via via, const char *why)
{
    token_fail(r, via, "unreachable", "token_invalid",
               "authorization server unreachable: %s", why);
}

static void token_log_failure(const char *event, const char *url,
                              const char *error)
{
    logline l;
    if (log_begin(&l, LOG_WARN, event)) {
        log_str(&l, "url", url);
        log_str(&l, "error", error);
        log_end(&l);
    }
}

/* ---- The verifier ------------------------------------------------------ */

static int token_default_get(void *ctx, http_client *h, const char *url,
                             http_response *r, char *err, size_t errlen)
{
    if (h == NULL) {
        snprintf(err, errlen, "no HTTP client on this thread");
        return TRINE_EIO;
    }
    return http_get(h, url, r, err, errlen);
}

static int token_default_post(void *ctx, http_client *h, const char *url,
                              const char *body, size_t len,
                              const char *authorization, http_response *r,
                              char *err, size_t errlen)
{
    if (h == NULL) {
        snprintf(err, errlen, "no HTTP client on this thread");
        return TRINE_EIO;
    }
    return http_post_form(h, url, body, len, authorization, r, err, errlen);
}

/* Copies s (NULL stays NULL) into *out. Returns false on OOM. */
static bool token_copy(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return true;
    *out = xstrdup(s);
    return *out != NULL;
}

int token_verifier_new(const token_settings *s, token_verifier **out)
{
    *out = NULL;
    token_verifier *v = calloc(1, sizeof *v);
    if (v == NULL)
        return TRINE_ENOMEM;
    atomic_init(&v->stop, false);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->tr.get = token_default_get;
    v->tr.post = token_default_post;
    v->ttl_s = s->cache_ttl_s;
    v->fs.last_kid_refetch_s = INT64_MIN;
    v->fs.retry_after_s = INT64_MIN;
    v->fs.expires_s = INT64_MIN;
    v->intro_retry_s = INT64_MIN;
    bool ok = token_copy(s->issuer, &v->issuer) &&
              token_copy(s->jwks_url, &v->jwks_url) &&
              token_copy(s->introspection_url, &v->introspection_url) &&
              token_copy(s->client_id, &v->client_id) &&
              token_copy(s->client_secret, &v->client_secret);
    if (ok && v->introspection_url != NULL) {
        strbuf auth;
        sb_init(&auth);
        ok = http_basic_auth(&auth, v->client_id ? v->client_id : "",
                             v->client_secret ? v->client_secret : "") == 0;
        v->authorization = sb_take(&auth);
        ok = ok && v->authorization != NULL;
        if (ok && s->cache_ttl_s > 0)
            ok = icache_new(s->cache_max > 0 ? s->cache_max
                                             : INTROSPECT_CACHE_MAX,
                            INTROSPECT_CACHE_BYTES, &v->cache) == 0;
    }
    if (!ok) {
        token_verifier_free(v);
        return TRINE_ENOMEM;
    }
    *out = v;
    return 0;
}

/* Overwrites a secret string and frees it. */
static void token_free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void token_verifier_free(token_verifier *v)
{
    if (v == NULL)
        return;
    keyset_release(v->keys);
    icache_free(v->cache);
    free(v->issuer);
    free(v->jwks_url);
    free(v->introspection_url);
    free(v->client_id);
    token_free_secret(v->client_secret);
    token_free_secret(v->authorization);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cond);
    free(v);
}

void token_set_transport(token_verifier *v, const token_transport *t)
{
    v->tr = *t;
}

bool token_has_jwt(const token_verifier *v)
{
    return v != NULL && v->jwks_url != NULL && v->issuer != NULL;
}

bool token_has_introspection(const token_verifier *v)
{
    return v != NULL && v->introspection_url != NULL;
}

void token_stop(token_verifier *v)
{
    pthread_mutex_lock(&v->mu);
    atomic_store(&v->stop, true);
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->mu);
}

const atomic_bool *token_stop_flag(const token_verifier *v)
{
    return &v->stop;
}

/* ---- JWT --------------------------------------------------------------- */

/* Downloads and parses the key set. Returns 0 with *out and *max_age, or a
 * negative code with the reason in err. */
static int jwks_download(token_verifier *v, http_client *h, jwks **out,
                         int64_t *max_age, char *err, size_t errlen)
{
    *out = NULL;
    http_response resp;
    http_response_init(&resp);
    int rc = v->tr.get(v->tr.ctx, h, v->jwks_url, &resp, err, errlen);
    if (rc == 0 && resp.status != 200) {
        snprintf(err, errlen, "the JWKS URL answered HTTP %ld", resp.status);
        rc = TRINE_EIO;
    }
    if (rc == 0) {
        char why[200] = "";
        rc = jwks_parse(resp.body.data ? resp.body.data : "", resp.body.len,
                        out, why, sizeof why);
        if (rc == TRINE_ENOMEM)
            snprintf(err, errlen, "out of memory");
        else if (rc != 0)
            snprintf(err, errlen, "the key set is invalid: %s", why);
    }
    if (rc == 0 && jwks_count(*out) == 0) {
        /* A set without a usable key cannot verify anything: more likely
         * a fault than a rotation, so the keys held keep serving. */
        snprintf(err, errlen, "the key set has no usable key (%zu skipped)",
                 jwks_skipped(*out));
        jwks_free(*out);
        *out = NULL;
        rc = TRINE_EINVAL;
    }
    *max_age = resp.max_age_s;
    http_response_free(&resp);
    token_fix_utf8(err);
    return rc;
}

/* Fetches the key set for need. Called with v->mu held and a fetch due;
 * returns with it held, the new key set installed (or the old one kept and
 * the error recorded), and every waiter woken. */
static void jwks_fetch_locked(token_verifier *v, http_client *h,
                              token_need need, int64_t now_s)
{
    v->fs.fetching = true;
    if (need == TOKEN_NEED_KID)
        v->fs.last_kid_refetch_s = now_s;
    pthread_mutex_unlock(&v->mu);

    char err[256] = "";
    jwks *keys = NULL;
    int64_t max_age = -1;
    int rc = jwks_download(v, h, &keys, &max_age, err, sizeof err);
    keyset *ks = NULL;
    if (rc == 0) {
        ks = calloc(1, sizeof *ks);
        if (ks == NULL) {
            jwks_free(keys);
            snprintf(err, sizeof err, "out of memory");
            rc = TRINE_ENOMEM;
        } else {
            atomic_init(&ks->refs, 1);
            ks->keys = keys;
            ks->expires_s = now_s + token_jwks_lifetime(max_age);
        }
    }
    logline l;
    if (rc == 0 && log_begin(&l, LOG_INFO, "jwks_fetched")) {
        log_str(&l, "url", v->jwks_url);
        log_uint(&l, "keys", jwks_count(keys));
        log_uint(&l, "skipped", jwks_skipped(keys));
        log_int(&l, "max_age", token_jwks_lifetime(max_age));
        log_str(&l, "why",
                need == TOKEN_NEED_KID       ? "unknown_kid"
                : need == TOKEN_NEED_REFRESH ? "expired"
                                             : "first_use");
        log_end(&l);
    } else if (rc != 0) {
        token_log_failure("jwks_fetch_failed", v->jwks_url, err);
    }

    pthread_mutex_lock(&v->mu);
    if (rc == 0) {
        ks->gen = ++v->gen;
        keyset *old = v->keys;
        v->keys = ks;
        v->fs.expires_s = ks->expires_s;
        v->fs.retry_after_s = INT64_MIN;
        v->jwks_error[0] = '\0';
        keyset_release(old);
    } else {
        v->fs.retry_after_s = now_s + TOKEN_RETRY_S;
        snprintf(v->jwks_error, sizeof v->jwks_error, "%s", err);
    }
    v->fs.fetching = false;
    pthread_cond_broadcast(&v->cond);
}

/* Verifies the token against one key set. */
static jwt_status jwt_against(const token_verifier *v, const keyset *ks,
                              const char *tok, size_t len,
                              const token_request *q, json_t **claims,
                              char *detail, size_t dlen)
{
    jwt_params p = {
        .issuer = v->issuer,
        .audiences = q->audiences,
        .n_audiences = q->n_audiences,
        .now_s = q->now_ms / 1000,
        .leeway_s = TOKEN_LEEWAY_S,
        .max_len = TOKEN_MAX_LEN,
        .check_claims = true,
    };
    char kid[128];
    *claims = NULL;
    detail[0] = '\0';
    return jwt_verify(tok, len, ks->keys, &p, claims, kid, sizeof kid, detail,
                      dlen);
}

static int jwt_local(token_verifier *v, const char *tok, size_t len,
                     const token_request *q, token_result *r)
{
    int64_t now = q->now_ms / 1000;
    char err[256] = "";
    pthread_mutex_lock(&v->mu);
    keyset *ks = keyset_retain(v->keys);
    bool remote;
    if (ks == NULL) {
        remote =
            v->fs.fetching || token_fetch_due(&v->fs, TOKEN_NEED_KEYS, now);
        if (!remote)
            snprintf(err, sizeof err, "%s", v->jwks_error);
    } else {
        /* Expired keys serve while another thread fetches new ones. */
        remote = token_fetch_due(&v->fs, TOKEN_NEED_REFRESH, now);
    }
    pthread_mutex_unlock(&v->mu);
    if (remote) {
        keyset_release(ks);
        return TOKEN_NEEDS_NETWORK;
    }
    if (ks == NULL) {
        token_unreachable(r, TOKEN_VIA_JWT, err);
        return TOKEN_DONE;
    }
    json_t *claims = NULL;
    char detail[200];
    jwt_status st =
        jwt_against(v, ks, tok, len, q, &claims, detail, sizeof detail);
    if (st == JWT_UNKNOWN_KID) {
        pthread_mutex_lock(&v->mu);
        bool again = v->gen != ks->gen || v->fs.fetching ||
                     token_fetch_due(&v->fs, TOKEN_NEED_KID, now);
        pthread_mutex_unlock(&v->mu);
        if (again) {
            keyset_release(ks);
            return TOKEN_NEEDS_NETWORK;
        }
    }
    keyset_release(ks);
    token_jwt_result(r, st, claims, detail);
    return TOKEN_DONE;
}

/* Waits (v->mu held) for a fetch in progress to end. Returns false when the
 * daemon is stopping. */
static bool jwks_wait(token_verifier *v)
{
    while (v->fs.fetching && !atomic_load(&v->stop))
        pthread_cond_wait(&v->cond, &v->mu);
    return !atomic_load(&v->stop);
}

static void jwt_remote(token_verifier *v, http_client *h, const char *tok,
                       size_t len, const token_request *q, token_result *r)
{
    int64_t now = q->now_ms / 1000;
    keyset *ks = NULL;
    bool kid_tried = false; /* the one retry after an unknown kid */
    bool kid_fetch_failed = false;
    char err[256] = "";
    json_t *claims = NULL;
    char detail[200] = "";
    jwt_status st = JWT_MALFORMED;

    pthread_mutex_lock(&v->mu);
    for (;;) {
        /* Here v->mu is held. */
        if (!jwks_wait(v)) {
            pthread_mutex_unlock(&v->mu);
            keyset_release(ks);
            token_unreachable(r, TOKEN_VIA_JWT, "the daemon is stopping");
            return;
        }
        keyset_release(ks);
        ks = keyset_retain(v->keys);
        token_need need = ks == NULL ? TOKEN_NEED_KEYS : TOKEN_NEED_REFRESH;
        if (token_fetch_due(&v->fs, need, now)) {
            jwks_fetch_locked(v, h, need, now);
            continue;
        }
        if (ks == NULL) {
            snprintf(err, sizeof err, "%s", v->jwks_error);
            pthread_mutex_unlock(&v->mu);
            token_unreachable(r, TOKEN_VIA_JWT, err);
            return;
        }
        pthread_mutex_unlock(&v->mu);

        st = jwt_against(v, ks, tok, len, q, &claims, detail, sizeof detail);
        if (st != JWT_UNKNOWN_KID || kid_tried)
            break;
        kid_tried = true;
        pthread_mutex_lock(&v->mu);
        if (!jwks_wait(v))
            continue; /* reports the stop above */
        if (v->gen != ks->gen)
            continue; /* newer keys arrived meanwhile: try them */
        if (token_fetch_due(&v->fs, TOKEN_NEED_KID, now)) {
            uint64_t before = v->gen;
            jwks_fetch_locked(v, h, TOKEN_NEED_KID, now);
            if (v->gen == before) {
                kid_fetch_failed = true;
                snprintf(err, sizeof err, "%s", v->jwks_error);
            }
            continue;
        }
        pthread_mutex_unlock(&v->mu);
        break;
    }
    keyset_release(ks);
    if (st == JWT_UNKNOWN_KID && kid_fetch_failed) {
        token_unreachable(r, TOKEN_VIA_JWT, err);
        return;
    }
    token_jwt_result(r, st, claims, detail);
}

void token_prefetch(token_verifier *v, http_client *h, int64_t now_ms)
{
    if (!token_has_jwt(v))
        return;
    int64_t now = now_ms / 1000;
    pthread_mutex_lock(&v->mu);
    if (v->keys == NULL && token_fetch_due(&v->fs, TOKEN_NEED_KEYS, now))
        jwks_fetch_locked(v, h, TOKEN_NEED_KEYS, now);
    pthread_mutex_unlock(&v->mu);
}

/* ---- Introspection ----------------------------------------------------- */

static void token_sha256(const char *tok, size_t len, unsigned char key[32])
{
    unsigned int n = 0;
    if (EVP_Digest(tok, len, key, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        /* Only an allocation failure inside OpenSSL gets here; a key no
         * token hashes to keeps the cache from matching anything. */
        memset(key, 0, 32);
    }
}

/* Fails r at once while the endpoint is known to be failing. Returns true
 * when it did. */
static bool intro_breaker(token_verifier *v, int64_t now, token_result *r)
{
    char err[256] = "";
    pthread_mutex_lock(&v->mu);
    bool open = now < v->intro_retry_s;
    if (open)
        snprintf(err, sizeof err, "%s", v->intro_error);
    pthread_mutex_unlock(&v->mu);
    if (open)
        token_unreachable(r, TOKEN_VIA_INTROSPECTION, err);
    return open;
}

static int intro_local(token_verifier *v, const char *tok, size_t len,
                       const token_request *q, token_result *r)
{
    int64_t now = q->now_ms / 1000;
    if (v->cache != NULL) {
        unsigned char key[32];
        token_sha256(tok, len, key);
        json_t *claims = icache_get(v->cache, key, now);
        if (claims != NULL) {
            token_verified(r, TOKEN_VIA_INTROSPECTION, claims);
            return TOKEN_DONE;
        }
    }
    if (intro_breaker(v, now, r))
        return TOKEN_DONE;
    return TOKEN_NEEDS_NETWORK;
}

static void intro_remote(token_verifier *v, http_client *h, const char *tok,
                         size_t len, const token_request *q, token_result *r)
{
    int64_t now = q->now_ms / 1000;
    unsigned char key[32];
    token_sha256(tok, len, key);
    if (v->cache != NULL) {
        /* Another thread may have introspected the same token meanwhile. */
        json_t *claims = icache_get(v->cache, key, now);
        if (claims != NULL) {
            token_verified(r, TOKEN_VIA_INTROSPECTION, claims);
            return;
        }
    }
    if (intro_breaker(v, now, r))
        return;

    strbuf body;
    sb_init(&body);
    http_response resp;
    http_response_init(&resp);
    char err[256] = "";
    int rc = introspect_body(&body, tok, len);
    if (rc == 0)
        rc = v->tr.post(v->tr.ctx, h, v->introspection_url, body.data, body.len,
                        v->authorization, &resp, err, sizeof err);
    else
        snprintf(err, sizeof err, "out of memory");
    if (body.data != NULL)
        explicit_bzero(body.data, body.cap);
    sb_free(&body);

    json_t *claims = NULL;
    introspect_status st = INTROSPECT_BAD;
    if (rc == 0)
        st = introspect_parse(resp.status, resp.body.data ? resp.body.data : "",
                              resp.body.len, &claims, err, sizeof err);
    token_fix_utf8(err);
    bool down = rc != 0 || (st == INTROSPECT_BAD && resp.status >= 500);
    if (down) {
        token_log_failure("introspection_failed", v->introspection_url, err);
        pthread_mutex_lock(&v->mu);
        v->intro_retry_s = now + TOKEN_RETRY_S;
        snprintf(v->intro_error, sizeof v->intro_error, "%s", err);
        pthread_mutex_unlock(&v->mu);
        token_unreachable(r, TOKEN_VIA_INTROSPECTION, err);
    } else if (st == INTROSPECT_BAD) {
        token_log_failure("introspection_failed", v->introspection_url, err);
        if (resp.status == 200)
            token_fail(
                r, TOKEN_VIA_INTROSPECTION, "bad_response", "token_invalid",
                "authorization server gave an invalid response: %s", err);
        else if (resp.status == 401 || resp.status == 403)
            token_fail(r, TOKEN_VIA_INTROSPECTION, "unreachable",
                       "token_invalid",
                       "authorization server refused trined: %s", err);
        else
            token_unreachable(r, TOKEN_VIA_INTROSPECTION, err);
    } else if (st == INTROSPECT_INACTIVE) {
        token_fail(r, TOKEN_VIA_INTROSPECTION, "inactive", "token_invalid",
                   "bearer token: not active (introspection)");
    } else {
        int64_t until = introspect_expiry(claims, now, v->ttl_s);
        if (v->cache != NULL && until > now)
            icache_put(v->cache, key, claims, until, resp.body.len);
        token_verified(r, TOKEN_VIA_INTROSPECTION, claims);
    }
    http_response_free(&resp);
}

/* ---- Checks ------------------------------------------------------------ */

/* Decides which way the token goes. Returns the way, or TOKEN_VIA_NONE
 * after filling r with the reason none applies. */
static token_via token_route(const token_verifier *v, const char *tok,
                             size_t len, token_result *r)
{
    if (len == 0) {
        token_fail(r, TOKEN_VIA_NONE, "malformed", "token_invalid",
                   "bearer token: empty");
        return TOKEN_VIA_NONE;
    }
    if (len > TOKEN_MAX_LEN) {
        token_fail(r, TOKEN_VIA_NONE, "malformed", "token_invalid",
                   "bearer token: longer than %d bytes", TOKEN_MAX_LEN);
        return TOKEN_VIA_NONE;
    }
    if (!token_syntax_ok(tok, len)) {
        token_fail(r, TOKEN_VIA_NONE, "malformed", "token_invalid",
                   "bearer token: not a bearer token (RFC 6750 b64token "
                   "syntax)");
        return TOKEN_VIA_NONE;
    }
    if (jwt_is_jws(tok, len) && token_has_jwt(v))
        return TOKEN_VIA_JWT;
    if (token_has_introspection(v))
        return TOKEN_VIA_INTROSPECTION;
    token_fail(r, TOKEN_VIA_NONE, "unsupported", "token_invalid",
               "bearer token: not a JWT, and no introspection endpoint is "
               "configured");
    return TOKEN_VIA_NONE;
}

int token_check_local(token_verifier *v, const char *token, size_t len,
                      const token_request *q, token_result *r)
{
    memset(r, 0, sizeof *r);
    switch (token_route(v, token, len, r)) {
    case TOKEN_VIA_JWT:
        return jwt_local(v, token, len, q, r);
    case TOKEN_VIA_INTROSPECTION:
        return intro_local(v, token, len, q, r);
    default:
        return TOKEN_DONE;
    }
}

void token_check_remote(token_verifier *v, http_client *h, const char *token,
                        size_t len, const token_request *q, token_result *r)
{
    memset(r, 0, sizeof *r);
    switch (token_route(v, token, len, r)) {
    case TOKEN_VIA_JWT:
        jwt_remote(v, h, token, len, q, r);
        break;
    case TOKEN_VIA_INTROSPECTION:
        intro_remote(v, h, token, len, q, r);
        break;
    default:
        break;
    }
}

int token_audit_json(const token_result *r, strbuf *b)
{
    static const char *const vias[] = {"none", "jwt", "introspection"};
    static const char *const keys[] = {"iss", "sub", "client_id", "jti"};
    sb_puts(b, "{\"via\":\"");
    sb_puts(b, vias[r->via <= TOKEN_VIA_INTROSPECTION ? r->via : 0]);
    sb_puts(b, "\",\"outcome\":");
    const char *o = r->outcome != NULL ? r->outcome : "unknown";
    sb_json_str(b, o, strlen(o));
    for (size_t i = 0; r->claims != NULL && i < 4; i++) {
        const json_t *s = json_object_get(r->claims, keys[i]);
        if (!json_is_string(s))
            continue;
        const char *text = json_string_value(s);
        size_t n = json_string_length(s);
        /* A NUL inside would end the column's C string early. */
        if (memchr(text, '\0', n) != NULL)
            continue;
        sb_printf(b, ",\"%s\":", keys[i]);
        sb_json_str(b, text, n);
    }
    sb_putc(b, '}');
    return b->oom ? TRINE_ENOMEM : 0;
}
