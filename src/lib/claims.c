/*
 * claims.c - reading what a check needs from its request: the fields of the
 * params object (DESIGN §2.5 "Requests"), and from the access token's
 * claims: exp, aud, sub, the scopes (`scope`, else `scp`), groups and roles,
 * the agent (`client_id`, else `azp`) and the delegation chain (`act`, RFC
 * 8693).
 *
 * The request is hostile input: every member may have any JSON type. Nothing
 * here allocates; everything points into the request.
 */
#include "lib/decision.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Returns true when v is a non-empty string without NUL bytes, storing it
 * in *s and *len. *nul is set when it is a string that holds a NUL. */
static bool usable_id(const json_t *v, const char **s, size_t *len, bool *nul)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    const char *t = json_string_value(v);
    if (n == 0)
        return false;
    if (memchr(t, '\0', n) != NULL) {
        if (nul != NULL)
            *nul = true;
        return false;
    }
    *s = t;
    *len = n;
    return true;
}

/* Reads one actor object: its id is its client_id, else its sub. */
static void read_actor(claim_actor *a, const json_t *act)
{
    a->id = NULL;
    a->len = 0;
    a->why = NULL;
    if (!json_is_object(act)) {
        a->why = "act is not an object";
        return;
    }
    /* A client_id that is there decides, as for the agent (claims_read). */
    const json_t *cid = json_object_get(act, "client_id");
    if (cid != NULL && !json_is_null(cid)) {
        if (!usable_id(cid, &a->id, &a->len, NULL))
            a->why = "the actor's client_id must be a non-empty string";
        return;
    }
    if (usable_id(json_object_get(act, "sub"), &a->id, &a->len, NULL))
        return;
    a->why = "the actor has no client_id or sub";
}

static void read_chain(claims *c, const json_t *act)
{
    /* act: null is no actor; anything else present is one. Nested acts are
     * prior actors, outermost (current) first. */
    while (act != NULL && !json_is_null(act)) {
        if (c->nactors == CLAIMS_MAX_ACTORS) {
            c->truncated = true;
            return;
        }
        c->has_act = true;
        read_actor(&c->actors[c->nactors++], act);
        if (!json_is_object(act))
            return;
        act = json_object_get(act, "act");
    }
}

/* True when the key (len bytes) is the NUL-terminated name. */
static bool key_is(const char *key, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(key, name, len) == 0;
}

/* ---- The request ------------------------------------------------------- */

int eval_req_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return TRINE_EREQUEST;
}

/* A string field that must hold no NUL: the decision reports it as a C
 * string, and the audit log must record exactly what was checked. */
static bool clean_string(const json_t *v, const char **s, size_t *len)
{
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return memchr(*s, '\0', *len) == NULL;
}

int eval_read_request(const json_t *params, eval_req *r, char *err,
                      size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(params))
        return eval_req_error(err, errlen, "params must be an object");

    /* One pass over the members instead of a hash lookup per field. */
    const json_t *server = NULL, *tool = NULL, *session = NULL;
    json_t *pm = (json_t *)params; /* jansson's iterators take non-const */
    for (void *it = json_object_iter(pm); it != NULL;
         it = json_object_iter_next(pm, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        const json_t *v = json_object_iter_value(it);
        if (key_is(k, n, "server"))
            server = v;
        else if (key_is(k, n, "tool"))
            tool = v;
        else if (key_is(k, n, "arguments"))
            r->args = v;
        else if (key_is(k, n, "session"))
            session = v;
        else if (key_is(k, n, "token"))
            r->token = v;
    }

    if (!json_is_string(server))
        return eval_req_error(err, errlen, "params.server must be a string");
    if (!clean_string(server, &r->server, &r->server_len))
        return eval_req_error(err, errlen,
                              "params.server must not contain a NUL character");
    if (!json_is_string(tool))
        return eval_req_error(err, errlen, "params.tool must be a string");
    if (!clean_string(tool, &r->tool, &r->tool_len))
        return eval_req_error(err, errlen,
                              "params.tool must not contain a NUL character");
    if (r->args != NULL && !json_is_object(r->args))
        return eval_req_error(err, errlen,
                              "params.arguments must be an object");
    if (session != NULL && !json_is_null(session)) {
        if (!json_is_string(session))
            return eval_req_error(err, errlen,
                                  "params.session must be a string or null");
        if (!clean_string(session, &r->session, &r->session_len))
            return eval_req_error(err, errlen,
                                  "params.session must not contain a NUL "
                                  "character");
    }
    if (r->token == NULL)
        return eval_req_error(err, errlen, "params.token is required");
    if (!json_is_object(r->token))
        return eval_req_error(err, errlen, "params.token must be an object");
    return 0;
}

/* ---- The token's claims ------------------------------------------------ */

/* The claims a check reads, found in one pass over the token's members:
 * cheaper than a hash lookup per claim, since tokens carry few members. */
typedef struct claim_src {
    const json_t *exp, *aud, *sub, *client_id, *azp, *scope, *scp, *groups,
        *roles, *act;
} claim_src;

static void find_claims(const json_t *token, claim_src *f)
{
    memset(f, 0, sizeof *f);
    json_t *t = (json_t *)token; /* jansson's iterators take non-const */
    for (void *it = json_object_iter(t); it != NULL;
         it = json_object_iter_next(t, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        const json_t *v = json_object_iter_value(it);
        switch (n) {
        case 3:
            if (key_is(k, n, "exp"))
                f->exp = v;
            else if (key_is(k, n, "aud"))
                f->aud = v;
            else if (key_is(k, n, "sub"))
                f->sub = v;
            else if (key_is(k, n, "scp"))
                f->scp = v;
            else if (key_is(k, n, "act"))
                f->act = v;
            else if (key_is(k, n, "azp"))
                f->azp = v;
            break;
        case 5:
            if (key_is(k, n, "scope"))
                f->scope = v;
            else if (key_is(k, n, "roles"))
                f->roles = v;
            break;
        case 6:
            if (key_is(k, n, "groups"))
                f->groups = v;
            break;
        case 9:
            if (key_is(k, n, "client_id"))
                f->client_id = v;
            break;
        default:
            break;
        }
    }
}

void claims_read(claims *c, const json_t *token)
{
    /* Everything but the actor array, which is filled as far as used. */
    memset(c, 0, offsetof(claims, actors));
    c->nactors = 0;
    c->truncated = false;

    claim_src f;
    find_claims(token, &f);

    if (f.exp != NULL) {
        if (json_is_number(f.exp)) {
            c->exp_state = CLAIM_EXP_SET;
            c->exp = json_number_value(f.exp);
        } else {
            c->exp_state = CLAIM_EXP_BAD;
        }
    }

    c->aud = f.aud;

    bool nul = false;
    if (!usable_id(f.sub, &c->sub, &c->sub_len, &nul)) {
        c->sub = NULL;
        if (f.sub == NULL)
            c->sub_problem = "the token has no sub";
        else if (nul)
            c->sub_problem = "sub must not contain a NUL character";
        else
            c->sub_problem = "sub must be a non-empty string";
    }

    /* The agent is client_id, else azp: azp is read only when client_id is
     * absent (or null), as `scp` only without `scope`. A client_id that is
     * there but not a non-empty string names no agent (every pair fails
     * A) rather than handing the decision to another claim. One holding a
     * NUL is flagged, since it would name an agent the audit log could
     * not record faithfully. */
    const json_t *id_src =
        f.client_id != NULL && !json_is_null(f.client_id) ? f.client_id : f.azp;
    if (!usable_id(id_src, &c->agent, &c->agent_len, &c->agent_nul)) {
        c->agent = NULL;
        c->agent_len = 0;
        if (id_src == NULL || json_is_null(id_src))
            c->agent_problem = "the token names no agent (no client_id or azp)";
        else if (id_src == f.client_id)
            c->agent_problem = "client_id must be a non-empty string";
        else
            c->agent_problem = "azp must be a non-empty string";
    }

    /* `scope` decides when present and not null (a space-separated string
     * per RFC 9068; any other type grants nothing); `scp` is the
     * fallback, as azp is for client_id. */
    if (f.scope != NULL && !json_is_null(f.scope))
        c->scopes = json_is_string(f.scope) ? f.scope : NULL;
    else
        c->scopes = f.scp;

    c->groups = f.groups;
    c->roles = f.roles;

    read_chain(c, f.act);
}

static bool str_eq(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

bool claims_aud_match(const claims *c, const char *const *aud, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (json_is_string(c->aud)) {
            if (str_eq(c->aud, aud[i]))
                return true;
        } else if (json_is_array(c->aud)) {
            size_t m = json_array_size(c->aud);
            for (size_t k = 0; k < m; k++) {
                if (str_eq(json_array_get(c->aud, k), aud[i]))
                    return true;
            }
        }
    }
    return false;
}

void claims_iter_init(claim_iter *it, const json_t *src, bool split)
{
    it->src = src;
    it->split = split;
    it->idx = 0;
    it->pos = 0;
    it->str = NULL;
    it->len = 0;
    if (json_is_string(src)) {
        it->str = json_string_value(src);
        it->len = json_string_length(src);
    }
}

bool claims_iter_next(claim_iter *it, const char **s, size_t *len)
{
    if (it->str != NULL) {
        const char *t = it->str;
        size_t n = it->len;
        if (!it->split) {
            if (it->pos > 0)
                return false;
            it->pos = 1;
            *s = t;
            *len = n;
            return true;
        }
        while (it->pos < n && t[it->pos] == ' ')
            it->pos++;
        if (it->pos >= n)
            return false;
        size_t start = it->pos;
        const char *sp = memchr(t + start, ' ', n - start);
        it->pos = sp != NULL ? (size_t)(sp - t) : n;
        *s = t + start;
        *len = it->pos - start;
        return true;
    }
    if (json_is_array(it->src)) {
        size_t m = json_array_size(it->src);
        while (it->idx < m) {
            const json_t *v = json_array_get(it->src, it->idx++);
            if (json_is_string(v)) {
                *s = json_string_value(v);
                *len = json_string_length(v);
                return true;
            }
        }
    }
    return false;
}
