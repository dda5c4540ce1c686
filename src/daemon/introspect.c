/*
 * introspect.c - token introspection requests, responses and the cache of
 * active results (see introspect.h).
 */
#include "daemon/introspect.h"

#include "daemon/http.h"
#include "trine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The cache --------------------------------------------------------- */

typedef struct ientry {
    unsigned char key[32];
    json_t *claims;
    int64_t expires_s;
    size_t size;
    struct ientry *chain; /* next in its bucket */
    struct ientry *older; /* insertion order: toward the oldest */
    struct ientry *newer;
} ientry;

struct icache {
    pthread_mutex_t mu;
    ientry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t bytes;
    size_t max;
    size_t max_bytes;
    ientry *oldest;
    ientry *newest;
};

int icache_new(size_t max, size_t max_bytes, icache **out)
{
    *out = NULL;
    if (max == 0)
        max = 1;
    icache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TRINE_ENOMEM;
    /* About two buckets per entry, so chains stay short. */
    size_t nb = 16;
    while (nb < 2 * max && nb < ((size_t)1 << 24))
        nb <<= 1;
    c->buckets = calloc(nb, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return TRINE_ENOMEM;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return TRINE_ENOMEM;
    }
    c->nbuckets = nb;
    c->max = max;
    c->max_bytes = max_bytes;
    *out = c;
    return 0;
}

void icache_free(icache *c)
{
    if (c == NULL)
        return;
    ientry *e = c->oldest;
    while (e != NULL) {
        ientry *next = e->newer;
        json_decref(e->claims);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

/* The key is already a SHA-256: its first bytes are as good a hash as
 * any. */
static size_t icache_slot(const icache *c, const unsigned char key[32])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)(h & (c->nbuckets - 1));
}

static ientry **icache_find(icache *c, const unsigned char key[32])
{
    ientry **p = &c->buckets[icache_slot(c, key)];
    while (*p != NULL && memcmp((*p)->key, key, 32) != 0)
        p = &(*p)->chain;
    return p;
}

/* Unlinks and frees the entry *p points at (a bucket link). */
static void icache_drop(icache *c, ientry **p)
{
    ientry *e = *p;
    *p = e->chain;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->count--;
    c->bytes -= e->size;
    json_decref(e->claims);
    free(e);
}

json_t *icache_get(icache *c, const unsigned char key[32], int64_t now_s)
{
    json_t *claims = NULL;
    pthread_mutex_lock(&c->mu);
    ientry **p = icache_find(c, key);
    if (*p != NULL) {
        if (now_s < (*p)->expires_s)
            claims = json_incref((*p)->claims);
        else
            icache_drop(c, p);
    }
    pthread_mutex_unlock(&c->mu);
    return claims;
}

int icache_put(icache *c, const unsigned char key[32], json_t *claims,
               int64_t expires_s, size_t size)
{
    if (size > c->max_bytes)
        return 0;
    ientry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return TRINE_ENOMEM;
    memcpy(e->key, key, 32);
    e->claims = json_incref(claims);
    e->expires_s = expires_s;
    e->size = size;
    pthread_mutex_lock(&c->mu);
    ientry **p = icache_find(c, key);
    if (*p != NULL)
        icache_drop(c, p);
    while (c->oldest != NULL &&
           (c->count >= c->max || c->bytes + size > c->max_bytes))
        icache_drop(c, icache_find(c, c->oldest->key));
    p = &c->buckets[icache_slot(c, key)];
    e->chain = *p;
    *p = e;
    e->older = c->newest;
    if (c->newest != NULL)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->count++;
    c->bytes += size;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

size_t icache_count(icache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- Requests and responses -------------------------------------------- */

int64_t introspect_expiry(const json_t *claims, int64_t now_s, int ttl_s)
{
    if (ttl_s <= 0)
        return -1;
    int64_t until = now_s + ttl_s;
    const json_t *exp = json_object_get(claims, "exp");
    if (exp != NULL) {
        if (!json_is_number(exp))
            return -1;
        double e = json_number_value(exp);
        if (e < (double)until)
            until = (int64_t)e;
    }
    return until > now_s ? until : -1;
}

int introspect_body(strbuf *b, const char *token, size_t len)
{
    sb_reset(b);
    sb_puts(b, "token=");
    http_form_encode(b, token, len);
    sb_puts(b, "&token_type_hint=access_token");
    return b->oom ? TRINE_ENOMEM : 0;
}

introspect_status introspect_parse(long status, const char *body, size_t len,
                                   json_t **claims, char *why, size_t whylen)
{
    *claims = NULL;
    if (status == 401 || status == 403) {
        /* RFC 7662 §2.1: the endpoint authenticates trined itself. */
        snprintf(why, whylen,
                 "the introspection endpoint answered HTTP %ld: it refused "
                 "trined's client credentials (--client-id, "
                 "--client-secret-file)",
                 status);
        return INTROSPECT_BAD;
    }
    if (status != 200) {
        snprintf(why, whylen, "the introspection endpoint answered HTTP %ld",
                 status);
        return INTROSPECT_BAD;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(why, whylen, "the introspection response is not JSON");
        return INTROSPECT_BAD;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(why, whylen,
                 "the introspection response is not a JSON object");
        return INTROSPECT_BAD;
    }
    const json_t *active = json_object_get(root, "active");
    if (!json_is_boolean(active)) {
        json_decref(root);
        snprintf(why, whylen,
                 "the introspection response has no boolean \"active\"");
        return INTROSPECT_BAD;
    }
    if (!json_is_true(active)) {
        json_decref(root);
        snprintf(why, whylen, "the token is not active");
        return INTROSPECT_INACTIVE;
    }
    *claims = root;
    return INTROSPECT_ACTIVE;
}
