/*
 * consents.c - the in-memory cache of live consent grants (see consents.h).
 *
 * Grants are kept twice, both in id order (oldest first): in one array of
 * every grant, for listing and for finding a grant by id, and in a group per
 * (user, agent, server, tool), for the lookup a check makes. Expired grants
 * are dropped as lookups and listings come across them.
 */
#include "daemon/consents.h"

#include "lib/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct grant {
    int64_t id;
    char *user;
    char *agent;
    char *server;
    char *tool;
    char *session;     /* NULL when none */
    char *args_sha256; /* NULL when none */
    trine_consent_mode mode;
    int64_t granted_ms;
    int64_t expires_ms; /* -1: never */
    int64_t decision_id;
    bool claimed; /* an always grant some check is using */
} grant;

/* The grants of one (user, agent, server, tool). Groups live as long as
 * the cache (the map cannot delete), and are small. */
typedef struct grant_group {
    char *key;
    size_t keylen;
    grant **items;
    size_t len;
    size_t cap;
} grant_group;

struct consents {
    pthread_mutex_t mu;
    strmap groups;     /* key -> grant_group* */
    ptrvec group_list; /* every group, for freeing */
    grant **all;       /* every grant, id order */
    size_t len;
    size_t cap;
};

static trine_consent_mode consents_mode(const char *s)
{
    if (s == NULL)
        return TRINE_CONSENT_NONE;
    if (strcmp(s, "session") == 0)
        return TRINE_CONSENT_SESSION;
    if (strcmp(s, "once") == 0)
        return TRINE_CONSENT_ONCE;
    if (strcmp(s, "always") == 0)
        return TRINE_CONSENT_ALWAYS;
    return TRINE_CONSENT_NONE;
}

int consents_new(consents **out)
{
    consents *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TRINE_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return TRINE_ENOMEM;
    }
    *out = c;
    return 0;
}

static void grant_free(grant *g)
{
    if (g == NULL)
        return;
    free(g->user);
    free(g->agent);
    free(g->server);
    free(g->tool);
    free(g->session);
    free(g->args_sha256);
    free(g);
}

void consents_free(consents *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->len; i++)
        grant_free(c->all[i]);
    free(c->all);
    for (size_t i = 0; i < c->group_list.len; i++) {
        grant_group *g = c->group_list.items[i];
        free(g->key);
        free(g->items);
        free(g);
    }
    pv_free(&c->group_list);
    strmap_free(&c->groups);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Builds the group key "user\0agent\0server\0tool" into buf (cap bytes) or
 * a new allocation (*heap, to free). Returns the key, NULL on OOM. */
static char *consents_key(const char *user, const char *agent,
                          const char *server, const char *tool, char *buf,
                          size_t cap, size_t *len, char **heap)
{
    const char *parts[4] = {user, agent, server, tool};
    size_t lens[4];
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        lens[i] = strlen(parts[i]);
        total += lens[i] + 1;
    }
    *heap = NULL;
    char *k = buf;
    if (total > cap) {
        *heap = malloc(total);
        if (*heap == NULL)
            return NULL;
        k = *heap;
    }
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(k + off, parts[i], lens[i]);
        off += lens[i];
        k[off++] = '\0';
    }
    *len = total;
    return k;
}

/* Position of the first grant in arr with id >= id (binary search). */
static size_t consents_pos(grant *const *arr, size_t len, int64_t id)
{
    size_t lo = 0;
    size_t hi = len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (arr[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts g into the id-ordered array at its place. Returns 0 or -1. */
static int consents_insert(grant ***arr, size_t *len, size_t *cap, grant *g)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        grant **n = realloc(*arr, ncap * sizeof *n);
        if (n == NULL)
            return -1;
        *arr = n;
        *cap = ncap;
    }
    size_t at = consents_pos(*arr, *len, g->id);
    memmove(*arr + at + 1, *arr + at, (*len - at) * sizeof **arr);
    (*arr)[at] = g;
    (*len)++;
    return 0;
}

static void consents_remove_from(grant **arr, size_t *len, const grant *g)
{
    size_t at = consents_pos(arr, *len, g->id);
    if (at < *len && arr[at] == g) {
        memmove(arr + at, arr + at + 1, (*len - at - 1) * sizeof *arr);
        (*len)--;
    }
}

static grant_group *consents_group(consents *c, const grant *g, bool create)
{
    char buf[512];
    char *heap;
    size_t klen;
    char *key = consents_key(g->user, g->agent, g->server, g->tool, buf,
                             sizeof buf, &klen, &heap);
    if (key == NULL)
        return NULL;
    grant_group *grp = strmap_getn(&c->groups, key, klen);
    if (grp == NULL && create) {
        grp = calloc(1, sizeof *grp);
        char *owned = malloc(klen);
        if (grp == NULL || owned == NULL || pv_push(&c->group_list, grp) != 0) {
            free(grp);
            free(owned);
            free(heap);
            return NULL;
        }
        memcpy(owned, key, klen);
        grp->key = owned;
        grp->keylen = klen;
        if (strmap_putn(&c->groups, owned, klen, grp) != 0) {
            /* The group stays on group_list and is freed with the cache. */
            free(heap);
            return NULL;
        }
    }
    free(heap);
    return grp;
}

/* Unlinks g from the cache and frees it. Called with the lock held. */
static void consents_drop(consents *c, grant *g)
{
    grant_group *grp = consents_group(c, g, false);
    if (grp != NULL)
        consents_remove_from(grp->items, &grp->len, g);
    consents_remove_from(c->all, &c->len, g);
    grant_free(g);
}

static char *consents_dup(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = xstrdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

int consents_add(consents *c, const consent_row *row)
{
    trine_consent_mode mode = consents_mode(row->mode);
    if (mode == TRINE_CONSENT_NONE || row->user == NULL || row->agent == NULL ||
        row->server == NULL || row->tool == NULL)
        return TRINE_EINVAL;
    grant *g = calloc(1, sizeof *g);
    if (g == NULL)
        return TRINE_ENOMEM;
    bool oom = false;
    g->id = row->id;
    g->user = consents_dup(row->user, &oom);
    g->agent = consents_dup(row->agent, &oom);
    g->server = consents_dup(row->server, &oom);
    g->tool = consents_dup(row->tool, &oom);
    g->session = consents_dup(row->session, &oom);
    g->args_sha256 = consents_dup(row->args_sha256, &oom);
    g->mode = mode;
    g->granted_ms = row->granted_ms;
    g->expires_ms = row->expires_ms;
    g->decision_id = row->decision_id;
    if (oom) {
        grant_free(g);
        return TRINE_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    size_t at = consents_pos(c->all, c->len, g->id);
    if (at < c->len && c->all[at]->id == g->id) {
        pthread_mutex_unlock(&c->mu);
        grant_free(g);
        return 0;
    }
    grant_group *grp = consents_group(c, g, true);
    int rc = 0;
    if (grp == NULL ||
        consents_insert(&grp->items, &grp->len, &grp->cap, g) != 0) {
        rc = TRINE_ENOMEM;
    } else if (consents_insert(&c->all, &c->len, &c->cap, g) != 0) {
        consents_remove_from(grp->items, &grp->len, g);
        rc = TRINE_ENOMEM;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0)
        grant_free(g);
    return rc;
}

int consents_load_row(void *ctx, const consent_row *row)
{
    int rc = consents_add(ctx, row);
    /* A row the cache cannot hold (an unknown mode) is skipped: it could
     * never match a lookup. */
    return rc == TRINE_ENOMEM ? rc : 0;
}

static bool grant_expired(const grant *g, int64_t now_ms)
{
    return g->expires_ms >= 0 && g->expires_ms <= now_ms;
}

int consents_lookup(void *ctx, const trine_consent_query *q, int64_t *grant_id)
{
    consents *c = ctx;
    if (q->user == NULL || q->agent == NULL || q->server == NULL ||
        q->tool == NULL)
        return 0;
    char buf[512];
    char *heap;
    size_t klen;
    char *key = consents_key(q->user, q->agent, q->server, q->tool, buf,
                             sizeof buf, &klen, &heap);
    if (key == NULL)
        return TRINE_ENOMEM;
    int found = 0;
    pthread_mutex_lock(&c->mu);
    grant_group *grp = strmap_getn(&c->groups, key, klen);
    for (size_t i = 0; grp != NULL && i < grp->len && !found;) {
        grant *g = grp->items[i];
        if (grant_expired(g, q->now_ms) && !g->claimed) {
            consents_drop(c, g);
            continue;
        }
        i++;
        if (g->mode != q->mode)
            continue;
        if (g->mode == TRINE_CONSENT_SESSION &&
            (g->session == NULL || q->session == NULL ||
             q->session[0] == '\0' || strcmp(g->session, q->session) != 0))
            continue;
        if (g->mode == TRINE_CONSENT_ALWAYS &&
            (g->claimed || g->args_sha256 == NULL || q->args_hash == NULL ||
             strcmp(g->args_sha256, q->args_hash) != 0))
            continue;
        if (g->mode == TRINE_CONSENT_ALWAYS)
            g->claimed = true;
        *grant_id = g->id;
        found = 1;
    }
    pthread_mutex_unlock(&c->mu);
    free(heap);
    return found;
}

/* Returns the grant with this id, or NULL. Called with the lock held. */
static grant *consents_by_id(consents *c, int64_t id)
{
    size_t at = consents_pos(c->all, c->len, id);
    return at < c->len && c->all[at]->id == id ? c->all[at] : NULL;
}

void consents_release(consents *c, int64_t id)
{
    pthread_mutex_lock(&c->mu);
    grant *g = consents_by_id(c, id);
    if (g != NULL)
        g->claimed = false;
    pthread_mutex_unlock(&c->mu);
}

void consents_consume(consents *c, int64_t id)
{
    pthread_mutex_lock(&c->mu);
    grant *g = consents_by_id(c, id);
    if (g != NULL)
        consents_drop(c, g);
    pthread_mutex_unlock(&c->mu);
}

size_t consents_revoke(consents *c, int64_t id, const char *user,
                       const char *agent, const char *server, const char *tool)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    if (id >= 0) {
        grant *g = consents_by_id(c, id);
        if (g != NULL) {
            consents_drop(c, g);
            n = 1;
        }
    } else if (user != NULL) {
        for (size_t i = 0; i < c->len;) {
            grant *g = c->all[i];
            if (strcmp(g->user, user) == 0 &&
                (agent == NULL || strcmp(g->agent, agent) == 0) &&
                (server == NULL || strcmp(g->server, server) == 0) &&
                (tool == NULL || strcmp(g->tool, tool) == 0)) {
                consents_drop(c, g);
                n++;
            } else {
                i++;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Sets key to a new string (or null for NULL) / integer (or null for -1).
 * Returns false on OOM. */
static bool consents_set_str(json_t *o, const char *key, const char *v)
{
    json_t *j = v ? json_string(v) : json_null();
    return j != NULL && json_object_set_new(o, key, j) == 0;
}

static bool consents_set_int(json_t *o, const char *key, int64_t v)
{
    json_t *j = v >= 0 ? json_integer((json_int_t)v) : json_null();
    return j != NULL && json_object_set_new(o, key, j) == 0;
}

static json_t *grant_json(const grant *g)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = consents_set_int(o, "id", g->id) &&
              consents_set_str(o, "user", g->user) &&
              consents_set_str(o, "agent", g->agent) &&
              consents_set_str(o, "server", g->server) &&
              consents_set_str(o, "tool", g->tool) &&
              consents_set_str(o, "mode", trine_consent_mode_name(g->mode)) &&
              consents_set_str(o, "session", g->session) &&
              consents_set_int(o, "granted_ms", g->granted_ms) &&
              consents_set_int(o, "expires_ms", g->expires_ms) &&
              consents_set_int(o, "used_ms", -1) &&
              consents_set_int(o, "decision_id", g->decision_id);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *consents_list(consents *c, const char *user, const char *agent,
                      int64_t now_ms)
{
    json_t *arr = json_array();
    json_t *res = json_object();
    if (arr == NULL || res == NULL) {
        json_decref(arr);
        json_decref(res);
        return NULL;
    }
    bool ok = true;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; ok && i < c->len;) {
        grant *g = c->all[i];
        if (grant_expired(g, now_ms) && !g->claimed) {
            consents_drop(c, g);
            continue;
        }
        i++;
        if ((user != NULL && strcmp(g->user, user) != 0) ||
            (agent != NULL && strcmp(g->agent, agent) != 0))
            continue;
        json_t *o = grant_json(g);
        ok = o != NULL && json_array_append_new(arr, o) == 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        json_decref(arr);
        json_decref(res);
        return NULL;
    }
    /* json_object_set_new takes arr even when it fails. */
    if (json_object_set_new(res, "consents", arr) != 0) {
        json_decref(res);
        return NULL;
    }
    return res;
}

size_t consents_clear(consents *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->len;
    /* The groups stay (the map cannot delete), empty. */
    for (size_t i = 0; i < c->group_list.len; i++)
        ((grant_group *)c->group_list.items[i])->len = 0;
    for (size_t i = 0; i < c->len; i++)
        grant_free(c->all[i]);
    c->len = 0;
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t consents_count(consents *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->len;
    pthread_mutex_unlock(&c->mu);
    return n;
}
