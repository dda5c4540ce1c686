/*
 * test_property.c - differential and property tests of trine_check.
 *
 * Random small policies (prop_gen.h) are rendered as source text and loaded,
 * random requests are checked against them, and every decision is compared
 * with a deliberately naive reference evaluator written from DESIGN.md §2.4
 * and §2.5 alone: it reads the policy model, enumerates every rule of every
 * block for every pair, and uses no index. Then four monotonicity laws are
 * checked on fresh cases: taking a scope from the token, a role from a
 * binding or an allow from an agent block, or adding a forbid, never turns a
 * deny into an allow or a consent_required.
 *
 * TRINE_PROP_SEED picks the seed (default fixed) and TRINE_PROP_CASES the
 * number of cases per property (default 10000). A failure prints the seed,
 * the case's policy source and request, and both answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prop_gen.h"
#include "trine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQS_PER_POLICY 6

/* ---- The reference evaluator's answer ---------------------------------- */

#define REF_MAX_KEYS 128
#define REF_KEY 256

/* A decision as the reference sees it: kind, primary reason, every entry of
 * "reasons" as a key "code|action|resource|agent|argument", and the
 * step-up when the reason is scope_missing. */
typedef struct ref_out {
    const char *kind;
    const char *reason;
    unsigned nkeys;
    char keys[REF_MAX_KEYS][REF_KEY];
    bool has_required;
    unsigned nrequired;
    const char *required[8];
    bool has_www;
    char www[512];
} ref_out;

static void ref_key(ref_out *o, const char *code, const char *act,
                    const char *res, const char *agent, const char *arg)
{
    if (o->nkeys == REF_MAX_KEYS)
        fail_msg("reference: too many reasons");
    snprintf(o->keys[o->nkeys++], REF_KEY, "%s|%s|%s|%s|%s", code,
             act ? act : "", res ? res : "", agent ? agent : "",
             arg ? arg : "");
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorts keys and drops repeats: the comparison is of sets. */
static unsigned sort_keys(char (*keys)[REF_KEY], unsigned n)
{
    qsort(keys, n, REF_KEY, cmp_key);
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        if (m == 0 || strcmp(keys[m - 1], keys[i]) != 0)
            memmove(keys[m++], keys[i], REF_KEY);
    }
    return m;
}

/* ---- Matching, from §2.1 and §2.5 -------------------------------------- */

/* Length of the UTF-8 sequence that starts with byte c. */
static size_t ref_cplen(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static uint32_t ref_cp(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    *len = ref_cplen(u[0]);
    if (*len == 1)
        return u[0];
    uint32_t cp = u[0] & (0xff >> (*len + 1));
    for (size_t i = 1; i < *len; i++)
        cp = (cp << 6) | (u[i] & 0x3f);
    return cp;
}

/* `*` any run of characters, `?` exactly one; nothing else is special. */
static bool ref_glob(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*') {
        for (const char *t = s;; t += ref_cplen((unsigned char)*t)) {
            if (ref_glob(p + 1, t))
                return true;
            if (*t == '\0')
                return false;
        }
    }
    if (*s == '\0')
        return false;
    if (*p == '?')
        return ref_glob(p + 1, s + ref_cplen((unsigned char)*s));
    return *p == *s && ref_glob(p + 1, s + 1);
}

static bool all_of(const char *s, const char *set)
{
    return *s != '\0' && strspn(s, set) == strlen(s);
}

/* The generator's regexes, each meaning spelled out (full match). */
static bool ref_regex(enum g_regex re, const char *s)
{
    bool r_ = strncmp(s, "r:", 2) == 0;
    switch (re) {
    case RE_XY:
        return strcmp(s, "r:x") == 0 || strcmp(s, "r:y") == 0;
    case RE_XDOT:
        return strncmp(s, "r:x", 3) == 0 && strchr(s, '\n') == NULL;
    case RE_ICASE:
        return strlen(s) == 3 && (s[0] == 'r' || s[0] == 'R') && s[1] == ':' &&
               (s[2] == 'x' || s[2] == 'X');
    case RE_NOSLASH:
        return r_ && s[2] != '\0' && strchr(s + 2, '/') == NULL &&
               strchr(s + 2, '\n') == NULL;
    case RE_XYPLUS:
        return r_ && all_of(s + 2, "xy");
    case RE_ARG_XY:
        return all_of(s, "xy");
    case RE_ARG_X_I:
        return strcmp(s, "x") == 0 || strcmp(s, "X") == 0;
    case RE_NONE:
        break;
    }
    return false;
}

static bool ref_pattern(const g_pattern *p, const char *res)
{
    return p->regex == RE_NONE ? ref_glob(p->glob, res)
                               : ref_regex(p->regex, res);
}

/* `*` is every action; `a.*` every action below a (not a itself). */
static bool ref_action(const char *rule, const char *need)
{
    size_t n = strlen(rule);
    if (strcmp(rule, "*") == 0)
        return true;
    if (n >= 2 && rule[n - 1] == '*')
        return strlen(need) > n - 1 && strncmp(need, rule, n - 1) == 0;
    return strcmp(rule, need) == 0;
}

static bool ref_rule(const g_rule *r, const char *act, const char *res)
{
    bool a = false, p = false;
    for (unsigned i = 0; i < r->nact && !a; i++)
        a = ref_action(r->act[i], act);
    for (unsigned i = 0; i < r->npat && !p; i++)
        p = ref_pattern(r->pat[i], res);
    return a && p;
}

/* A list of blocks judges a pair: some allow matches and no deny does. */
static bool ref_judge(const g_block *const *blocks, unsigned n, const char *act,
                      const char *res)
{
    bool allow = false;
    for (unsigned b = 0; b < n; b++) {
        for (unsigned i = 0; i < blocks[b]->nrules; i++) {
            const g_rule *r = &blocks[b]->rules[i];
            if (!ref_rule(r, act, res))
                continue;
            if (r->deny)
                return false;
            allow = true;
        }
    }
    return allow;
}

/* ---- Claims, from §2.5 ------------------------------------------------- */

#define REF_MAX_VALS 16

typedef struct ref_claims {
    bool exp_bad;
    double exp;
    bool has_exp;
    const json_t *aud;
    const char *sub;
    unsigned nscopes;
    char scopes[REF_MAX_VALS][32];
    unsigned ngroups;
    const char *groups[REF_MAX_VALS];
    const char *agent;
    unsigned nactors;
    const char *actors[8]; /* NULL: an actor with no id */
} ref_claims;

static const char *ref_id(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v)
                                                          : NULL;
}

static void ref_add_scope(ref_claims *c, const char *s, size_t n)
{
    if (n == 0 || n >= 32)
        return;
    for (unsigned i = 0; i < c->nscopes; i++) {
        if (strlen(c->scopes[i]) == n && memcmp(c->scopes[i], s, n) == 0)
            return;
    }
    if (c->nscopes < REF_MAX_VALS) {
        memcpy(c->scopes[c->nscopes], s, n);
        c->scopes[c->nscopes++][n] = '\0';
    }
}

static void ref_split_scopes(ref_claims *c, const char *s)
{
    while (*s != '\0') {
        size_t n = strcspn(s, " ");
        ref_add_scope(c, s, n);
        s += n;
        s += strspn(s, " ");
    }
}

static void ref_add_groups(ref_claims *c, const json_t *v)
{
    if (json_is_string(v) && c->ngroups < REF_MAX_VALS)
        c->groups[c->ngroups++] = json_string_value(v);
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (json_is_string(e) && c->ngroups < REF_MAX_VALS)
            c->groups[c->ngroups++] = json_string_value(e);
    }
}

static void ref_read_claims(const json_t *t, ref_claims *c)
{
    memset(c, 0, sizeof *c);
    const json_t *exp = json_object_get(t, "exp");
    if (exp != NULL) {
        c->has_exp = true;
        c->exp_bad = !json_is_number(exp);
        c->exp = json_number_value(exp);
    }
    c->aud = json_object_get(t, "aud");
    c->sub = ref_id(json_object_get(t, "sub"));

    const json_t *scope = json_object_get(t, "scope");
    const json_t *scp = json_object_get(t, "scp");
    if (scope != NULL) {
        if (json_is_string(scope))
            ref_split_scopes(c, json_string_value(scope));
    } else if (json_is_string(scp)) {
        ref_split_scopes(c, json_string_value(scp));
    } else {
        for (size_t i = 0; json_is_array(scp) && i < json_array_size(scp);
             i++) {
            const json_t *e = json_array_get(scp, i);
            if (json_is_string(e))
                ref_add_scope(c, json_string_value(e), json_string_length(e));
        }
    }
    ref_add_groups(c, json_object_get(t, "groups"));
    ref_add_groups(c, json_object_get(t, "roles"));

    c->agent = ref_id(json_object_get(t, "client_id"));
    if (c->agent == NULL)
        c->agent = ref_id(json_object_get(t, "azp"));

    const json_t *act = json_object_get(t, "act");
    while (act != NULL && !json_is_null(act) && c->nactors < 8) {
        if (!json_is_object(act)) {
            c->actors[c->nactors++] = NULL;
            break;
        }
        const char *id = ref_id(json_object_get(act, "client_id"));
        if (id == NULL)
            id = ref_id(json_object_get(act, "sub"));
        c->actors[c->nactors++] = id;
        act = json_object_get(act, "act");
    }
}

static bool ref_aud_ok(const g_server *s, const json_t *aud)
{
    for (unsigned i = 0; i < s->naud; i++) {
        if (json_is_string(aud) &&
            strcmp(json_string_value(aud), s->aud[i]) == 0)
            return true;
        for (size_t k = 0; json_is_array(aud) && k < json_array_size(aud);
             k++) {
            const json_t *e = json_array_get(aud, k);
            if (json_is_string(e) &&
                strcmp(json_string_value(e), s->aud[i]) == 0)
                return true;
        }
    }
    return false;
}

/* ---- Arguments, from §2.4 step 3 and §2.5 ------------------------------ */

/* The argument at a dotted path; NULL when absent or null. */
static const json_t *ref_arg(const json_t *args, const char *path)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = args;
    for (char *seg = strtok(buf, "."); seg != NULL; seg = strtok(NULL, ".")) {
        if (!json_is_object(v))
            return NULL;
        v = json_object_get(v, seg);
    }
    return v == NULL || json_is_null(v) ? NULL : v;
}

static bool ref_json_eq(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b),
                      json_string_length(a)) == 0;
    return json_typeof(a) == json_typeof(b) && json_equal(a, b);
}

static size_t ref_cps(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i += ref_cplen((unsigned char)s[i]))
        k++;
    return k;
}

static bool ref_constraint(const g_constraint *c, const json_t *args)
{
    const json_t *v = ref_arg(args, c->path);
    if (c->kind == C_REQ)
        return v != NULL;
    if (v == NULL)
        return true;
    switch (c->kind) {
    case C_MAXLEN:
        return json_is_string(v) &&
               (double)ref_cps(json_string_value(v), json_string_length(v)) <=
                   c->num;
    case C_MATCH:
        return json_is_string(v) && ref_regex(c->regex, json_string_value(v));
    case C_IN: {
        json_t *lits = json_loads(c->lits, 0, NULL);
        assert_non_null(lits);
        bool found = false;
        for (size_t i = 0; i < json_array_size(lits) && !found; i++)
            found = ref_json_eq(v, json_array_get(lits, i));
        json_decref(lits);
        return found;
    }
    default:
        break;
    }
    if (!json_is_number(v))
        return false;
    double x = json_number_value(v);
    return c->kind == C_LT   ? x < c->num
           : c->kind == C_LE ? x <= c->num
           : c->kind == C_GT ? x > c->num
                             : x >= c->num;
}

static bool ref_dots(const char *s, size_t n)
{
    return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* The text a placeholder takes, or false when the value is missing or
 * unsafe. */
static bool ref_value(const json_t *v, bool rest, char *text, size_t cap)
{
    if (json_is_integer(v)) {
        snprintf(text, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = ref_cp(s + i, &len);
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == '*' || cp == '?')
            return false;
        i += len;
    }
    if (!rest && (memchr(s, '/', n) != NULL || ref_dots(s, n)))
        return false;
    if (rest) {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && s[i] != '/')
                continue;
            if (ref_dots(s + start, i - start))
                return false;
            if (i == start && start != 0 && i != n)
                return false;
            start = i + 1;
        }
    }
    snprintf(text, cap, "%s", s);
    return true;
}

/* Fills a template; records every bad placeholder and returns false when
 * there is one. */
static bool ref_fill(const char *tmpl, const json_t *args, char *out,
                     size_t cap, ref_out *o)
{
    bool ok = true;
    size_t at = 0;
    out[0] = '\0';
    for (const char *s = tmpl; *s != '\0';) {
        if (*s != '{') {
            if (at + 1 < cap) {
                out[at++] = *s;
                out[at] = '\0';
            }
            s++;
            continue;
        }
        const char *end = strchr(s, '}');
        char path[64];
        size_t n = (size_t)(end - s - 1);
        bool rest = n > 3 && strncmp(end - 3, "...", 3) == 0;
        if (rest)
            n -= 3;
        snprintf(path, sizeof path, "%.*s", (int)n, s + 1);
        char text[128];
        if (ref_value(ref_arg(args, path), rest, text, sizeof text)) {
            at += (size_t)snprintf(out + at, cap - at, "%s", text);
        } else {
            ref_key(o, "argument_invalid", NULL, NULL, NULL, path);
            ok = false;
        }
        s = end + 1;
    }
    return ok;
}

/* ---- The reference evaluator ------------------------------------------- */

typedef struct ref_pair {
    const char *act;
    char res[160];
} ref_pair;

static void ref_decide(ref_out *o, const char *kind, const char *reason)
{
    o->kind = kind;
    o->reason = reason;
}

static const g_block *ref_scope(const g_policy *p, const char *name)
{
    for (unsigned i = 0; i < p->nscopes; i++) {
        if (strcmp(p->scopes[i].name, name) == 0)
            return &p->scopes[i];
    }
    return NULL;
}

/* The blocks that judge one hop of A: agent "<id>" merged with agent *. */
static unsigned ref_agent_blocks(const g_policy *p, const char *id,
                                 const g_block **out)
{
    unsigned n = 0;
    for (unsigned i = 0; id != NULL && i < p->nagents; i++) {
        const char *name = p->agents[i].name;
        if (name == NULL || strcmp(name, id) == 0)
            out[n++] = &p->agents[i];
    }
    return n;
}

/* Step-up (§2.4 step 5, §2.5): greedy cover of the pairs that failed S. */
static void ref_step_up(const g_policy *p, const ref_claims *c, bool server_blk,
                        const ref_pair *pairs, unsigned npairs,
                        const bool *sfail, ref_out *o)
{
    /* The failing pairs as a set. */
    const ref_pair *todo[16];
    unsigned ntodo = 0;
    for (unsigned i = 0; i < npairs; i++) {
        bool dup = false;
        for (unsigned k = 0; k < ntodo && !dup; k++)
            dup = strcmp(todo[k]->act, pairs[i].act) == 0 &&
                  strcmp(todo[k]->res, pairs[i].res) == 0;
        if (sfail[i] && !dup)
            todo[ntodo++] = &pairs[i];
    }
    bool covered[16] = {false};
    o->has_required = true;
    for (;;) {
        unsigned best = 0, best_gain = 0;
        for (unsigned s = 0; s < p->nscopes; s++) {
            const g_block *b = &p->scopes[s];
            unsigned gain = 0;
            for (unsigned k = 0; k < ntodo; k++)
                gain +=
                    !covered[k] && ref_judge(&b, 1, todo[k]->act, todo[k]->res);
            if (gain > best_gain) {
                best_gain = gain;
                best = s;
            }
        }
        if (best_gain == 0)
            break;
        const g_block *b = &p->scopes[best];
        o->required[o->nrequired++] = b->name;
        for (unsigned k = 0; k < ntodo; k++)
            covered[k] |= ref_judge(&b, 1, todo[k]->act, todo[k]->res);
    }
    if (o->nrequired == 0)
        return;
    const char *names[32];
    unsigned nn = 0;
    for (unsigned i = 0; i < c->nscopes; i++) {
        const g_block *b = ref_scope(p, c->scopes[i]);
        bool grants = false;
        for (unsigned k = 0; b != NULL && k < npairs && !grants; k++)
            grants = ref_judge(&b, 1, pairs[k].act, pairs[k].res);
        if (grants)
            names[nn++] = b->name;
    }
    for (unsigned i = 0; i < o->nrequired; i++)
        names[nn++] = o->required[i];
    strbuf w;
    sb_init(&w);
    sb_puts(&w, "Bearer error=\"insufficient_scope\", scope=\"");
    unsigned written = 0;
    for (unsigned i = 0; i < nn; i++) {
        bool dup = false;
        for (unsigned k = 0; k < i && !dup; k++)
            dup = strcmp(names[k], names[i]) == 0;
        if (!dup)
            sb_printf(&w, "%s%s", written++ > 0 ? " " : "", names[i]);
    }
    sb_putc(&w, '"');
    if (server_blk && p->server.rm)
        sb_puts(&w, ", resource_metadata=\"" G_RM "\"");
    o->has_www = true;
    snprintf(o->www, sizeof o->www, "%s", w.data);
    sb_free(&w);
}

/* Step 5: U, S and A for every pair. Returns true when all pass. */
static bool ref_sets(const g_policy *p, const ref_claims *c, bool server_blk,
                     const ref_pair *pairs, unsigned npairs, ref_out *o)
{
    /* U: roles bound by user "<sub>", user *, and group "<g>" for every
     * value of the groups and roles claims. */
    const g_block *roles[3];
    unsigned nroles = 0;
    for (unsigned r = 0; r < p->nroles; r++) {
        bool bound = false;
        for (unsigned i = 0; i < p->nbinds && !bound; i++) {
            const g_bind *b = &p->binds[i];
            bool applies = false;
            if (!b->group)
                applies = b->name == NULL || strcmp(b->name, c->sub) == 0;
            for (unsigned g = 0; b->group && g < c->ngroups && !applies; g++)
                applies = strcmp(b->name, c->groups[g]) == 0;
            for (unsigned k = 0; applies && k < b->nroles && !bound; k++)
                bound = b->roles[k] == r;
        }
        if (bound)
            roles[nroles++] = &p->roles[r];
    }
    const g_block *held[REF_MAX_VALS];
    unsigned nheld = 0;
    for (unsigned i = 0; i < c->nscopes; i++) {
        const g_block *b = ref_scope(p, c->scopes[i]);
        if (b != NULL)
            held[nheld++] = b;
    }
    /* A: the agent, then the current actor, or every actor with
     * full_chain on the request's server. */
    const char *hops[9];
    unsigned nhops = 0;
    hops[nhops++] = c->agent;
    bool full = server_blk && p->server.deleg == DELEG_FULL;
    for (unsigned i = 0; i < c->nactors && (full || i == 0); i++)
        hops[nhops++] = c->actors[i];

    bool ufail = false, afail = false, sfail_any = false;
    bool sfail[16];
    for (unsigned i = 0; i < npairs; i++) {
        const char *a = pairs[i].act, *r = pairs[i].res;
        if (!ref_judge(roles, nroles, a, r)) {
            ufail = true;
            ref_key(o, "user_denied", a, r, NULL, NULL);
        }
        sfail[i] = !ref_judge(held, nheld, a, r);
        if (sfail[i]) {
            sfail_any = true;
            ref_key(o, "scope_missing", a, r, NULL, NULL);
        }
        for (unsigned h = 0; h < nhops; h++) {
            const g_block *blocks[4];
            unsigned nb = ref_agent_blocks(p, hops[h], blocks);
            if (hops[h] == NULL || !ref_judge(blocks, nb, a, r)) {
                afail = true;
                ref_key(o, "agent_denied", a, r, hops[h], NULL);
            }
        }
    }
    if (ufail)
        ref_decide(o, "deny", "user_denied");
    else if (afail)
        ref_decide(o, "deny", "agent_denied");
    else if (sfail_any) {
        ref_decide(o, "deny", "scope_missing");
        ref_step_up(p, c, server_blk, pairs, npairs, sfail, o);
    }
    return !ufail && !afail && !sfail_any;
}

/* Evaluates request q against policy p at now_s, DESIGN §2.4 steps 1-7
 * (step 6 with a consent lookup that never grants). */
static void ref_eval(const g_policy *p, const json_t *q, ref_out *o)
{
    memset(o, 0, sizeof *o);
    const char *server = json_string_value(json_object_get(q, "server"));
    const char *tool = json_string_value(json_object_get(q, "tool"));
    const json_t *args = json_object_get(q, "arguments");
    ref_claims c;
    ref_read_claims(json_object_get(q, "token"), &c);
    bool server_blk = p->server.present && strcmp(server, G_SERVER) == 0;

    /* 1. The token. */
    if (c.has_exp && c.exp_bad) {
        ref_key(o, "token_invalid", NULL, NULL, NULL, NULL);
        ref_decide(o, "deny", "token_invalid");
        return;
    }
    if (c.has_exp && (double)G_NOW_S > c.exp + 60) {
        ref_key(o, "token_expired", NULL, NULL, NULL, NULL);
        ref_decide(o, "deny", "token_expired");
        return;
    }
    if (server_blk && p->server.naud > 0 && !ref_aud_ok(&p->server, c.aud)) {
        ref_key(o, "audience_mismatch", NULL, NULL, NULL, NULL);
        ref_decide(o, "deny", "audience_mismatch");
        return;
    }
    if (c.sub == NULL) {
        ref_key(o, "token_invalid", NULL, NULL, NULL, NULL);
        ref_decide(o, "deny", "token_invalid");
        return;
    }

    /* 2. The tool: the exact name, then the server's wildcard. */
    const g_tool *t = NULL;
    for (unsigned i = 0; i < p->ntools && t == NULL; i++) {
        const g_tool *x = &p->tools[i];
        if (strcmp(x->server, server) == 0 && x->name != NULL &&
            strcmp(x->name, tool) == 0)
            t = x;
    }
    for (unsigned i = 0; i < p->ntools && t == NULL; i++) {
        if (strcmp(p->tools[i].server, server) == 0 && p->tools[i].name == NULL)
            t = &p->tools[i];
    }
    if (t == NULL) {
        ref_key(o, "unknown_tool", NULL, NULL, NULL, NULL);
        ref_decide(o, "deny", "unknown_tool");
        return;
    }

    /* 3. The arguments: every constraint, then every template. */
    bool ok = true;
    for (unsigned i = 0; i < t->nargs; i++) {
        if (!ref_constraint(t->args[i], args)) {
            ref_key(o, "argument_invalid", NULL, NULL, NULL, t->args[i]->path);
            ok = false;
        }
    }
    ref_pair pairs[16];
    unsigned npairs = 0;
    for (unsigned i = 0; i < t->nneeds; i++) {
        char res[160];
        if (!ref_fill(t->needs[i].tmpl, args, res, sizeof res, o)) {
            ok = false;
            continue;
        }
        for (unsigned k = 0; k < t->needs[i].nact; k++) {
            pairs[npairs].act = t->needs[i].act[k];
            snprintf(pairs[npairs++].res, sizeof pairs[0].res, "%s", res);
        }
    }
    if (!ok) {
        ref_decide(o, "deny", "argument_invalid");
        return;
    }

    /* 4. Forbid. */
    bool forbidden = false;
    for (unsigned i = 0; i < npairs; i++) {
        for (unsigned f = 0; f < p->nforbids; f++) {
            if (ref_rule(&p->forbids[f], pairs[i].act, pairs[i].res)) {
                ref_key(o, "forbidden", pairs[i].act, pairs[i].res, NULL, NULL);
                forbidden = true;
                break;
            }
        }
    }
    if (forbidden) {
        ref_decide(o, "deny", "forbidden");
        return;
    }

    /* 5. The three sets. */
    if (!ref_sets(p, &c, server_blk, pairs, npairs, o))
        return;

    /* 6. Consent, which is never granted here; 7. allow. */
    if (t->consent != CONSENT_NONE) {
        ref_key(o, "consent_required", NULL, NULL, NULL, NULL);
        ref_decide(o, "consent_required", "consent_required");
        return;
    }
    ref_key(o, "allow", NULL, NULL, NULL, NULL);
    ref_decide(o, "allow", "allow");
}

/* ---- Running cases ----------------------------------------------------- */

static uint64_t prop_seed = UINT64_C(0x7472696e65); /* "trine" */
static unsigned long prop_cases = 10000;

/* What a consent lookup saw that it should not have, if anything. */
static const char *consent_problem;

/* A consent store with no grant in it. It checks the query it is given. */
static int never_grants(void *ctx, const trine_consent_query *q,
                        int64_t *grant_id)
{
    (void)ctx;
    (void)grant_id;
    if (q->user == NULL || q->server == NULL || q->tool == NULL)
        consent_problem = "a consent query without user, server or tool";
    else if ((q->mode == TRINE_CONSENT_ALWAYS) != (q->args_hash != NULL))
        consent_problem = "args_hash must be given for always, only";
    else if (q->mode == TRINE_CONSENT_SESSION &&
             (q->session == NULL || q->session[0] == '\0'))
        consent_problem = "a session lookup without a session";
    return 0;
}

/* One property run: its own stream of policies and requests. */
typedef struct prop_state {
    const char *name;
    uint64_t seed;
    prng r;
    size_t policy_no;
    unsigned long cases;
    unsigned long excused;
} prop_state;

/* A loaded policy and the model and source it came from. */
typedef struct prop_policy {
    g_policy m;
    strbuf src[2];
    trine_policy *pol;
} prop_policy;

static void prop_begin(prop_state *st, const char *name, uint64_t salt)
{
    memset(st, 0, sizeof *st);
    st->name = name;
    st->seed = prop_seed;
    prng_seed(&st->r, prop_seed ^ (salt * 0x9e3779b97f4a7c15ULL));
}

static void print_source(const prop_policy *pp, const char *label)
{
    fprintf(stderr, "--- %spolicy: a.trine ---\n%s", label,
            pp->src[0].data ? pp->src[0].data : "");
    if (pp->m.two_files)
        fprintf(stderr, "--- %spolicy: b.trine ---\n%s", label,
                pp->src[1].data ? pp->src[1].data : "");
}

static void print_json(const char *label, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fprintf(stderr, "--- %s ---\n%s\n", label, t ? t : "(null)");
    free(t);
}

static void print_header(const prop_state *st, const char *what)
{
    fprintf(stderr,
            "\nproperty \"%s\" failed: %s\n"
            "reproduce: TRINE_PROP_SEED=%" PRIu64
            " (policy #%zu of this property)\n",
            st->name, what, st->seed, st->policy_no);
}

/* Renders and loads a model; a policy that does not load fails the run. */
static void prop_load(prop_state *st, prop_policy *pp)
{
    sb_init(&pp->src[0]);
    sb_init(&pp->src[1]);
    gen_render(&pp->m, pp->src);
    if (!pp->m.two_files && pp->src[1].len > 0) {
        sb_putn(&pp->src[0], pp->src[1].data, pp->src[1].len);
        sb_reset(&pp->src[1]);
    }
    assert_false(pp->src[0].oom || pp->src[1].oom);
    trine_source s[2] = {
        {"a.trine", pp->src[0].data, pp->src[0].len},
        {"b.trine", pp->src[1].data ? pp->src[1].data : "", pp->src[1].len}};
    trine_diag *diag = trine_diag_new();
    assert_non_null(diag);
    pp->pol = NULL;
    int rc =
        trine_policy_load_sources(s, pp->m.two_files ? 2 : 1, diag, &pp->pol);
    if (rc != 0) {
        print_header(st, "a generated policy does not load");
        print_source(pp, "");
        trine_diag_print(diag, stderr);
        trine_diag_free(diag);
        fail_msg("load failed: %s", trine_strerror(rc));
    }
    trine_diag_free(diag);
}

static void prop_unload(prop_policy *pp)
{
    trine_policy_release(pp->pol);
    pp->pol = NULL;
    sb_free(&pp->src[0]);
    sb_free(&pp->src[1]);
}

static void print_ref(const ref_out *o)
{
    fprintf(stderr, "--- reference ---\n%s / %s\n", o->kind, o->reason);
    for (unsigned i = 0; i < o->nkeys; i++)
        fprintf(stderr, "  reason %s\n", o->keys[i]);
    if (o->has_required) {
        fprintf(stderr, "  required_scopes [");
        for (unsigned i = 0; i < o->nrequired; i++)
            fprintf(stderr, "%s\"%s\"", i ? "," : "", o->required[i]);
        fprintf(stderr, "]\n");
    }
    if (o->has_www)
        fprintf(stderr, "  www_authenticate %s\n", o->www);
}

/* The reasons of a result as sorted, deduplicated keys. */
static unsigned impl_keys(const json_t *res, char (*keys)[REF_KEY])
{
    static const char *const f[] = {"code", "action", "resource", "agent",
                                    "argument"};
    const json_t *rs = json_object_get(res, "reasons");
    unsigned n = 0;
    for (size_t i = 0; i < json_array_size(rs) && n < REF_MAX_KEYS; i++) {
        const json_t *r = json_array_get(rs, i);
        size_t at = 0;
        for (size_t k = 0; k < COUNT(f); k++) {
            const char *v = json_string_value(json_object_get(r, f[k]));
            at += (size_t)snprintf(keys[n] + at, REF_KEY - at, "%s%s",
                                   k > 0 ? "|" : "", v ? v : "");
            if (at >= REF_KEY)
                at = REF_KEY - 1;
        }
        n++;
    }
    return sort_keys(keys, n);
}

/* Where the library and the reference differ, or NULL. */
static const char *differs(const trine_decision *d, const json_t *res,
                           ref_out *o)
{
    static char impl[REF_MAX_KEYS][REF_KEY];
    if (strcmp(trine_decision_kind(d), o->kind) != 0)
        return "the decision differs";
    if (strcmp(trine_decision_reason(d), o->reason) != 0)
        return "the primary reason differs";
    o->nkeys = sort_keys(o->keys, o->nkeys);
    unsigned n = impl_keys(res, impl);
    if (n != o->nkeys)
        return "the list of reasons differs";
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(impl[i], o->keys[i]) != 0)
            return "the list of reasons differs";
    }
    const json_t *req = json_object_get(res, "required_scopes");
    if (!o->has_required)
        return req == NULL ? NULL : "unexpected required_scopes";
    if (json_array_size(req) != o->nrequired || !json_is_array(req))
        return "required_scopes differs";
    for (unsigned i = 0; i < o->nrequired; i++) {
        const char *s = json_string_value(json_array_get(req, i));
        if (s == NULL || strcmp(s, o->required[i]) != 0)
            return "required_scopes differs";
    }
    const char *www =
        json_string_value(json_object_get(res, "www_authenticate"));
    if (o->has_www != (www != NULL) || (www && strcmp(www, o->www) != 0))
        return "www_authenticate differs";
    return NULL;
}

/* The decision and primary reason of one check (static strings). */
typedef struct verdict {
    const char *kind;
    const char *reason;
} verdict;

/* Checks q against pp with trine_check and with the reference, and fails
 * the run when they differ. */
static verdict check_both(prop_state *st, const prop_policy *pp,
                          const json_t *q)
{
    trine_check_opts opts = {G_NOW_S * 1000, NULL, NULL};
    if (chance(&st->r, 50))
        opts.consent = never_grants;
    trine_decision *d = NULL;
    char err[256];
    consent_problem = NULL;
    int rc = trine_check(pp->pol, q, &opts, &d, err, sizeof err);
    if (rc != 0) {
        print_header(st, "trine_check returned an error");
        print_source(pp, "");
        print_json("request", q);
        fail_msg("trine_check: %s: %s", trine_err_name(rc), err);
    }
    json_t *res = trine_decision_result(d);
    assert_non_null(res);
    ref_out *o = malloc(sizeof *o);
    assert_non_null(o);
    ref_eval(&pp->m, q, o);
    const char *why = differs(d, res, o);
    if (why == NULL && consent_problem != NULL)
        why = consent_problem;
    if (why != NULL) {
        print_header(st, why);
        print_source(pp, "");
        print_json("request", q);
        print_json("trine_check", res);
        print_ref(o);
        fail_msg("%s", why);
    }
    /* Both are static strings of the library. */
    verdict v = {trine_decision_kind(d), trine_decision_reason(d)};
    free(o);
    json_decref(res);
    trine_decision_free(d);
    return v;
}

/* ---- The differential property ----------------------------------------- */

static const char *const all_reasons[] = {
    "allow",        "token_expired",    "token_invalid",   "audience_mismatch",
    "unknown_tool", "argument_invalid", "forbidden",       "user_denied",
    "agent_denied", "scope_missing",    "consent_required"};

static void prop_summary(const prop_state *st)
{
    printf("%s: %lu cases on %zu policies (seed %" PRIu64 ")", st->name,
           st->cases, st->policy_no, st->seed);
    if (st->excused > 0)
        printf("; %lu allowed by removing a deny rule, as DESIGN §2.4 says",
               st->excused);
    printf("\n");
}

/* trine_check and the reference agree on decision, primary reason, every
 * listed failure, and the step-up. */
static void test_differential(void **state)
{
    (void)state;
    prop_state st;
    prop_begin(&st, "differential", 1);
    unsigned long hist[COUNT(all_reasons)] = {0};
    while (st.cases < prop_cases) {
        prop_policy pp;
        gen_policy(&st.r, &pp.m);
        prop_load(&st, &pp);
        for (unsigned j = 0; j < REQS_PER_POLICY; j++) {
            json_t *q = gen_request(&st.r, &pp.m);
            verdict v = check_both(&st, &pp, q);
            for (size_t i = 0; i < COUNT(all_reasons); i++)
                hist[i] += strcmp(v.reason, all_reasons[i]) == 0;
            json_decref(q);
            st.cases++;
        }
        prop_unload(&pp);
        st.policy_no++;
    }
    prop_summary(&st);
    for (size_t i = 0; i < COUNT(all_reasons); i++)
        printf("  %-17s %lu\n", all_reasons[i], hist[i]);
    /* The generator must reach every reason, or the property says little
     * about it. */
    for (size_t i = 0; i < COUNT(all_reasons) && prop_cases >= 1000; i++)
        assert_true(hist[i] > 0);
}

/* ---- The monotonicity laws --------------------------------------------- */

static bool block_has_deny(const g_block *b)
{
    for (unsigned i = 0; i < b->nrules; i++) {
        if (b->rules[i].deny)
            return true;
    }
    return false;
}

/* A deny must stay a deny, unless the edit took away a deny rule (which
 * DESIGN §2.4 lets decide: deny overrides allow inside each set). */
static void law_verdict(prop_state *st, verdict before, verdict after,
                        bool excused, const prop_policy *pa,
                        const prop_policy *pb, const json_t *qa,
                        const json_t *qb)
{
    st->cases++;
    if (strcmp(before.kind, "deny") != 0 || strcmp(after.kind, "deny") == 0)
        return;
    if (excused) {
        st->excused++;
        return;
    }
    print_header(st, "a deny became a non-deny");
    print_source(pa, "before: ");
    if (pb != pa)
        print_source(pb, "after: ");
    print_json("request before", qa);
    if (qb != qa)
        print_json("request after", qb);
    fprintf(stderr, "before: %s/%s, after: %s/%s\n", before.kind, before.reason,
            after.kind, after.reason);
    fail_msg("%s: deny became %s", st->name, after.kind);
}

/* Rebuilds a space-separated scope string without name. */
static json_t *without_scope(const char *s, const char *name)
{
    strbuf b;
    sb_init(&b);
    size_t nlen = strlen(name);
    while (*s != '\0') {
        size_t n = strcspn(s, " ");
        if (n > 0 && !(n == nlen && memcmp(s, name, n) == 0)) {
            if (b.len > 0)
                sb_putc(&b, ' ');
            sb_putn(&b, s, n);
        }
        s += n;
        s += strspn(s, " ");
    }
    json_t *v = json_string(b.data != NULL ? b.data : "");
    sb_free(&b);
    return v;
}

/* Takes every occurrence of a scope name off the token. */
static void drop_scope(json_t *token, const char *name)
{
    json_t *scope = json_object_get(token, "scope");
    json_t *scp = json_object_get(token, "scp");
    if (scope != NULL) {
        json_object_set_new(token, "scope",
                            without_scope(json_string_value(scope), name));
    } else if (json_is_string(scp)) {
        json_object_set_new(token, "scp",
                            without_scope(json_string_value(scp), name));
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(scp); i++) {
            json_t *e = json_array_get(scp, i);
            if (!json_is_string(e) || strcmp(json_string_value(e), name) != 0)
                json_array_append(a, e);
        }
        json_object_set_new(token, "scp", a);
    }
}

static void test_law_scope_removal(void **state)
{
    (void)state;
    prop_state st;
    prop_begin(&st, "removing a scope from the token", 2);
    while (st.cases < prop_cases) {
        prop_policy pp;
        gen_policy(&st.r, &pp.m);
        prop_load(&st, &pp);
        for (unsigned j = 0; j < REQS_PER_POLICY; j++) {
            json_t *q = gen_request(&st.r, &pp.m);
            ref_claims c;
            ref_read_claims(json_object_get(q, "token"), &c);
            if (c.nscopes == 0) {
                json_decref(q);
                continue;
            }
            const char *name = c.scopes[pick(&st.r, c.nscopes)];
            json_t *q2 = json_deep_copy(q);
            assert_non_null(q2);
            drop_scope(json_object_get(q2, "token"), name);
            ref_claims c2;
            ref_read_claims(json_object_get(q2, "token"), &c2);
            assert_int_equal(c2.nscopes, c.nscopes - 1);

            verdict a = check_both(&st, &pp, q);
            verdict b = check_both(&st, &pp, q2);
            const g_block *blk = ref_scope(&pp.m, name);
            law_verdict(&st, a, b, blk != NULL && block_has_deny(blk), &pp, &pp,
                        q, q2);
            json_decref(q2);
            json_decref(q);
        }
        prop_unload(&pp);
        st.policy_no++;
    }
    prop_summary(&st);
}

/* An edit of a policy model for a law: fills *out from m and returns true,
 * or returns false when the edit does not apply to m. */
typedef bool (*law_edit)(prng *r, const g_policy *m, g_policy *out,
                         bool *excused);

static void run_policy_law(const char *name, uint64_t salt, law_edit edit)
{
    prop_state st;
    prop_begin(&st, name, salt);
    while (st.cases < prop_cases) {
        prop_policy pa, pb;
        gen_policy(&st.r, &pa.m);
        bool excused = false;
        if (!edit(&st.r, &pa.m, &pb.m, &excused)) {
            st.policy_no++;
            continue;
        }
        prop_load(&st, &pa);
        prop_load(&st, &pb);
        for (unsigned j = 0; j < REQS_PER_POLICY; j++) {
            json_t *q = gen_request(&st.r, &pa.m);
            verdict a = check_both(&st, &pa, q);
            verdict b = check_both(&st, &pb, q);
            law_verdict(&st, a, b, excused, &pa, &pb, q, q);
            /* A forbid only ever adds a deny of its own. */
            if (salt == 5 && strcmp(a.reason, b.reason) != 0 &&
                strcmp(b.reason, "forbidden") != 0) {
                print_header(&st, "an added forbid changed a decision");
                print_source(&pa, "before: ");
                print_source(&pb, "after: ");
                print_json("request", q);
                fail_msg("%s became %s", a.reason, b.reason);
            }
            json_decref(q);
        }
        prop_unload(&pa);
        prop_unload(&pb);
        st.policy_no++;
    }
    prop_summary(&st);
}

static bool edit_unbind(prng *r, const g_policy *m, g_policy *out,
                        bool *excused)
{
    if (m->nbinds == 0)
        return false;
    *out = *m;
    unsigned i = pick(r, m->nbinds);
    unsigned k = pick(r, m->binds[i].nroles);
    *excused = block_has_deny(&m->roles[m->binds[i].roles[k]]);
    gen_unbind(out, i, k);
    return true;
}

static bool edit_agent_allow(prng *r, const g_policy *m, g_policy *out,
                             bool *excused)
{
    unsigned cand[64][2];
    unsigned n = 0;
    for (unsigned a = 0; a < m->nagents; a++) {
        for (unsigned i = 0; i < m->agents[a].nrules; i++) {
            if (!m->agents[a].rules[i].deny) {
                cand[n][0] = a;
                cand[n++][1] = i;
            }
        }
    }
    if (n == 0)
        return false;
    *out = *m;
    unsigned c = pick(r, n);
    gen_remove_rule(&out->agents[cand[c][0]], cand[c][1]);
    *excused = false;
    return true;
}

static bool edit_add_forbid(prng *r, const g_policy *m, g_policy *out,
                            bool *excused)
{
    if (m->nforbids == COUNT(m->forbids))
        return false;
    *out = *m;
    gen_rule(r, &out->forbids[out->nforbids++], 100);
    *excused = false;
    return true;
}

static void test_law_unbind(void **state)
{
    (void)state;
    run_policy_law("removing a role binding", 3, edit_unbind);
}

static void test_law_agent_allow(void **state)
{
    (void)state;
    run_policy_law("removing an agent's allow rule", 4, edit_agent_allow);
}

static void test_law_forbid(void **state)
{
    (void)state;
    run_policy_law("adding a forbid", 5, edit_add_forbid);
}

int main(void)
{
    const char *seed = getenv("TRINE_PROP_SEED");
    const char *cases = getenv("TRINE_PROP_CASES");
    if (seed != NULL && *seed != '\0')
        prop_seed = strtoull(seed, NULL, 0);
    if (cases != NULL && *cases != '\0')
        prop_cases = strtoul(cases, NULL, 0);
    printf("property tests: TRINE_PROP_SEED=%" PRIu64
           ", TRINE_PROP_CASES=%lu\n",
           prop_seed, prop_cases);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_law_scope_removal),
        cmocka_unit_test(test_law_unbind),
        cmocka_unit_test(test_law_agent_allow),
        cmocka_unit_test(test_law_forbid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
