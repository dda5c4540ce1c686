/*
 * token.h - verifying bearer tokens in trined (DESIGN §5): which way a token
 * goes (JWT against the issuer's JWKS, or RFC 7662 introspection), the
 * cache of the key set and its refetch policy, the cache of introspection
 * results, and the outcome a check is decided on.
 *
 * A check is verified in two halves. token_check_local runs on an
 * evaluation worker and never touches the network: a JWT whose key is
 * cached, or an opaque token whose introspection is cached, is answered
 * there. Whatever needs the authorization server (no keys yet, expired
 * keys, an unknown kid that may be refetched, an introspection miss) is
 * answered TOKEN_NEEDS_NETWORK, and the check moves to one of a few token
 * threads, which call token_check_remote with their own HTTP client. So a
 * slow or unreachable server stalls only the checks that need it.
 *
 * The key set is an immutable, reference-counted snapshot: swapped under a
 * mutex when a fetch succeeds, retained by every reader for the length of
 * one verification. One fetch at a time (others wait for its result). Keys
 * live for the response's Cache-Control max-age, clamped to
 * [TOKEN_JWKS_MIN_AGE_S, TOKEN_JWKS_MAX_AGE_S], TOKEN_JWKS_DEFAULT_AGE_S
 * without one; expired keys are refetched on next use and keep serving when
 * that fetch fails. An unknown kid triggers a refetch at most once per
 * TOKEN_KID_REFETCH_S (for all kids together), then one retry. After a
 * failed fetch no other is started for TOKEN_RETRY_S; meanwhile a check
 * that has no usable keys fails at once, naming the last error.
 *
 * The raw token never leaves the request: the introspection cache is keyed
 * by its SHA-256, logs and audit rows never see it.
 */
#ifndef TRINED_TOKEN_H
#define TRINED_TOKEN_H

#include "daemon/http.h"
#include "lib/util.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Key set lifetimes, in seconds. */
#define TOKEN_JWKS_MIN_AGE_S 60
#define TOKEN_JWKS_MAX_AGE_S 86400
#define TOKEN_JWKS_DEFAULT_AGE_S 3600
/* The shortest interval between two refetches for unknown kids. */
#define TOKEN_KID_REFETCH_S 30
/* After a failed fetch or introspection, how long no new attempt is made. */
#define TOKEN_RETRY_S 5
/* Clock skew allowed on exp, nbf and iat. */
#define TOKEN_LEEWAY_S 60
/* The longest bearer token accepted. */
#define TOKEN_MAX_LEN 16384

/* What the verifier is configured with. Strings are copied. */
typedef struct token_settings {
    const char *issuer; /* with jwks_url: JWT verification */
    const char *jwks_url;
    const char *introspection_url; /* introspection, with client_id and */
    const char *client_id;         /* client_secret (the secret itself) */
    const char *client_secret;
    int http_timeout_ms;
    int connect_timeout_ms;
    int cache_ttl_s;  /* introspection results; 0: not cached */
    size_t cache_max; /* introspection cache entries */
} token_settings;

typedef struct token_verifier token_verifier;

/* How the verifier reaches the authorization server. The default is the
 * libcurl client of http.h; tests put their own in. Both functions return
 * as http_get. */
typedef struct token_transport {
    int (*get)(void *ctx, http_client *h, const char *url, http_response *r,
               char *err, size_t errlen);
    int (*post)(void *ctx, http_client *h, const char *url, const char *body,
                size_t len, const char *authorization, http_response *r,
                char *err, size_t errlen);
    void *ctx;
} token_transport;

/* Makes a verifier. Returns 0 with *out, or TRINE_ENOMEM. */
int token_verifier_new(const token_settings *s, token_verifier **out);

/* Frees the verifier: its key set, its cache and its copy of the secret
 * (overwritten first). NULL is a no-op. */
void token_verifier_free(token_verifier *v);

/* Replaces the transport (tests). Call before any check. */
void token_set_transport(token_verifier *v, const token_transport *t);

/* True when JWT verification (issuer and JWKS URL) is configured. */
bool token_has_jwt(const token_verifier *v);

/* True when introspection is configured. */
bool token_has_introspection(const token_verifier *v);

/* Makes every wait and transfer in progress give up soon ("the daemon is
 * stopping"), for a quick shutdown. The flag is what http clients watch. */
void token_stop(token_verifier *v);
const atomic_bool *token_stop_flag(const token_verifier *v);

/* The verdict on one bearer token. */
typedef enum token_via {
    TOKEN_VIA_NONE = 0, /* rejected before either way was tried */
    TOKEN_VIA_JWT,
    TOKEN_VIA_INTROSPECTION
} token_via;

typedef struct token_result {
    token_via via;
    /* "verified", a jwt_status_name() ("bad_signature", "expired", ...),
     * "inactive", "unreachable", "bad_response", "malformed" or
     * "unsupported". Static. */
    const char *outcome;
    /* On "verified", and on "expired" and "bad_audience" (a JWT whose
     * signature and issuer verified): a reference to the claims, which the
     * caller must not modify (they may be shared with the cache). NULL
     * otherwise. */
    json_t *claims;
    /* Unless "verified", the decision's reason ("token_invalid",
     * "token_expired", "audience_mismatch"; static) and a detail for its
     * reasons entry. */
    const char *reason;
    char detail[384];
} token_result;

/* Drops r's reference to the claims. */
void token_result_clear(token_result *r);

/* What a check brings to the verification. */
typedef struct token_request {
    const char *const *audiences; /* the server block's audience values */
    size_t n_audiences;           /* 0: no audience check */
    int64_t now_ms;               /* unix ms */
} token_request;

enum { TOKEN_DONE = 0, TOKEN_NEEDS_NETWORK = 1 };

/* Verifies len bytes of token without the network. Returns TOKEN_DONE with
 * r filled, or TOKEN_NEEDS_NETWORK (r untouched beyond being cleared):
 * call token_check_remote on a token thread. */
int token_check_local(token_verifier *v, const char *token, size_t len,
                      const token_request *q, token_result *r);

/* Verifies len bytes of token, fetching keys or introspecting through h
 * as needed (waiting at most about the HTTP timeout). Fills r. */
void token_check_remote(token_verifier *v, http_client *h, const char *token,
                        size_t len, const token_request *q, token_result *r);

/* Fetches the key set if none is held yet (startup). A failure is logged
 * and is not fatal. */
void token_prefetch(token_verifier *v, http_client *h, int64_t now_ms);

/* Appends the audit `token` column for r: a JSON object {"via", "outcome",
 * and "iss", "sub", "client_id", "jti" when r's claims carry them as
 * strings}. Returns 0 or TRINE_ENOMEM. */
int token_audit_json(const token_result *r, strbuf *b);

/* ---- Pieces exposed for the unit tests --------------------------------- */

/* Why a key set fetch is wanted. */
typedef enum token_need {
    TOKEN_NEED_KEYS = 0, /* no key set yet */
    TOKEN_NEED_REFRESH,  /* the key set expired */
    TOKEN_NEED_KID       /* a token names a kid the key set lacks */
} token_need;

/* The bookkeeping that decides whether a fetch may start. */
typedef struct token_fetch_state {
    bool fetching;              /* a fetch is in progress */
    int64_t expires_s;          /* of the held key set */
    int64_t last_kid_refetch_s; /* INT64_MIN: never */
    int64_t retry_after_s;      /* no fetch before (after a failure) */
} token_fetch_state;

/* True when a fetch for need may start at now_s under st. */
bool token_fetch_due(const token_fetch_state *st, token_need need,
                     int64_t now_s);

/* Returns how long a fetched key set lives: max_age_s (-1: none given)
 * clamped to [TOKEN_JWKS_MIN_AGE_S, TOKEN_JWKS_MAX_AGE_S], or
 * TOKEN_JWKS_DEFAULT_AGE_S without one. */
int64_t token_jwks_lifetime(int64_t max_age_s);

/* True when len bytes of token have the syntax of RFC 6750 §2.1's
 * b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
 * *"=". */
bool token_syntax_ok(const char *token, size_t len);

#endif /* TRINED_TOKEN_H */
