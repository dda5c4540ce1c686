/*
 * introspect.h - OAuth 2.0 token introspection (RFC 7662) for opaque bearer
 * tokens (DESIGN §5): the request body, reading the response, and the cache
 * of active results.
 *
 * The cache is keyed by the SHA-256 of the token, never the token itself,
 * and holds the claims of active tokens only, each until its `exp` or the
 * configured TTL, whichever comes first. It is bounded: when full, the
 * oldest entry goes. Its claims objects are shared read-only between threads
 * (jansson's reference counts are atomic); nobody modifies one once cached.
 */
#ifndef TRINED_INTROSPECT_H
#define TRINED_INTROSPECT_H

#include "lib/util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The most entries the cache holds by default, and the most bytes of
 * response text (the sum of each entry's size) it accounts for. */
#define INTROSPECT_CACHE_MAX 10000
#define INTROSPECT_CACHE_BYTES (16 * 1024 * 1024)

typedef struct icache icache;

/* Makes a cache of at most max entries (max >= 1) and max_bytes of
 * accounted size. Returns 0 with *out, or TRINE_ENOMEM. */
int icache_new(size_t max, size_t max_bytes, icache **out);

/* Frees the cache and drops its references. NULL is a no-op. */
void icache_free(icache *c);

/* Returns a new reference to the claims cached under key when they are
 * still valid at now_s (the caller decrefs), else NULL; an expired entry is
 * dropped. Thread-safe. */
json_t *icache_get(icache *c, const unsigned char key[32], int64_t now_s);

/* Caches claims (taking a new reference) under key until expires_s,
 * replacing an entry with the same key. size is what the entry counts
 * against the byte budget (the response's length). While the cache is full
 * (entries or bytes) the oldest entry is evicted. An entry larger than the
 * whole budget is not cached. Returns 0 or TRINE_ENOMEM. Thread-safe. */
int icache_put(icache *c, const unsigned char key[32], json_t *claims,
               int64_t expires_s, size_t size);

/* Returns the number of entries (expired ones not yet dropped included). */
size_t icache_count(icache *c);

/* Returns until when active claims may be cached: min(exp, now_s + ttl_s),
 * with exp the claims' `exp` (a number; without one, now_s + ttl_s). Returns
 * -1 when they must not be cached: ttl_s <= 0, or that time is not after
 * now_s (an expired token), or exp is present and not a number. */
int64_t introspect_expiry(const json_t *claims, int64_t now_s, int ttl_s);

/* Writes the request body of RFC 7662 §2.1 into b (emptied first):
 * "token=<form-urlencoded token>&token_type_hint=access_token". Returns 0
 * or TRINE_ENOMEM. */
int introspect_body(strbuf *b, const char *token, size_t len);

typedef enum introspect_status {
    INTROSPECT_ACTIVE = 0, /* *claims holds the response object */
    INTROSPECT_INACTIVE,   /* "active": false */
    INTROSPECT_BAD         /* not 200, not a JSON object, or no boolean
                              "active": why says which */
} introspect_status;

/* Reads an introspection response (RFC 7662 §2.2): HTTP status and body.
 * On INTROSPECT_ACTIVE *claims gets a new reference to the response object
 * (its members are the token's claims); otherwise *claims is NULL and why
 * (whylen bytes) says what was wrong. */
introspect_status introspect_parse(long status, const char *body, size_t len,
                                   json_t **claims, char *why, size_t whylen);

#endif /* TRINED_INTROSPECT_H */
