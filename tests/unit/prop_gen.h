/*
 * prop_gen.h - random policies and check requests for the property tests
 * of test_property.c: a small policy model, its rendering as policy source
 * text (so every check runs through the lexer, the parser and the compiler),
 * the edits the monotonicity laws make to it, and random requests over the
 * same small alphabets of actions, resources and argument values.
 *
 * The model is plain data. Its meaning is given by DESIGN.md §2.4 and §2.5
 * alone: the reference evaluator in test_property.c reads the model, never
 * the compiled policy.
 */
#ifndef PROP_GEN_H
#define PROP_GEN_H

#include "lib/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- The generator's randomness ---------------------------------------- */

/* xorshift64*, seeded through splitmix64 so that nearby seeds give
 * unrelated streams. */
typedef struct prng {
    uint64_t s;
} prng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void prng_seed(prng *r, uint64_t seed)
{
    uint64_t x = seed;
    r->s = splitmix64(&x);
    if (r->s == 0)
        r->s = 1;
}

static uint64_t prng_next(prng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* A uniform pick in [0, n). */
static unsigned pick(prng *r, unsigned n)
{
    return (unsigned)(prng_next(r) % n);
}

/* True with pct percent probability. */
static bool chance(prng *r, unsigned pct)
{
    return pick(r, 100) < pct;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- The alphabets ----------------------------------------------------- */

/* Actions a tool needs (always exact), and actions rules name. */
static const char *const g_need_actions[] = {"a.b", "a.c", "b.a", "a.b.c"};
static const char *const g_rule_actions[] = {"a.b", "a.c", "b.a",   "a.b.c",
                                             "a.*", "b.*", "a.b.*", "*"};

/* The regexes the generator uses; the reference gives each its meaning by
 * hand (test_property.c), so no regex engine judges itself. */
enum g_regex {
    RE_NONE = 0,
    RE_XY,      /* /r:[xy]/ */
    RE_XDOT,    /* /r:x.*\/ */
    RE_ICASE,   /* /R:X/i */
    RE_NOSLASH, /* /r:[^\/]+/ */
    RE_XYPLUS,  /* /r:(x|y)+/ */
    RE_ARG_XY,  /* /[xy]+/, for arguments */
    RE_ARG_X_I  /* /X/i, for arguments */
};

/* A resource pattern: a glob (regex == RE_NONE) or one of the regexes. */
typedef struct g_pattern {
    const char *src; /* as written in the policy */
    enum g_regex regex;
    const char *glob; /* the glob's text */
} g_pattern;

static const g_pattern g_globs[] = {
    {"\"r:x\"", RE_NONE, "r:x"},     {"\"r:y\"", RE_NONE, "r:y"},
    {"\"r:xy\"", RE_NONE, "r:xy"},   {"\"r:*\"", RE_NONE, "r:*"},
    {"\"r:?\"", RE_NONE, "r:?"},     {"\"r:x*\"", RE_NONE, "r:x*"},
    {"\"r:*y\"", RE_NONE, "r:*y"},   {"\"r:*/*\"", RE_NONE, "r:*/*"},
    {"\"r:x/*\"", RE_NONE, "r:x/*"}, {"\"*\"", RE_NONE, "*"},
    {"\"r:??\"", RE_NONE, "r:??"},   {"\"r:/*\"", RE_NONE, "r:/*"},
    {"\"?:x\"", RE_NONE, "?:x"},     {"\"r:*x*\"", RE_NONE, "r:*x*"},
    {"\"r:1\"", RE_NONE, "r:1"},     {"\"x/*\"", RE_NONE, "x/*"},
    {"\"*/y\"", RE_NONE, "*/y"},     {"\"r:\xc3\xa9\"", RE_NONE, "r:\xc3\xa9"},
    {"\"r:x/y\"", RE_NONE, "r:x/y"}, {"\"r:-2\"", RE_NONE, "r:-2"},
    {"\"r:*/z\"", RE_NONE, "r:*/z"}, {"\"r:x?\"", RE_NONE, "r:x?"},
};

static const g_pattern g_regexes[] = {
    {"/r:[xy]/", RE_XY, NULL},       {"/r:x.*/", RE_XDOT, NULL},
    {"/R:X/i", RE_ICASE, NULL},      {"/r:[^\\/]+/", RE_NOSLASH, NULL},
    {"/r:(x|y)+/", RE_XYPLUS, NULL},
};

/* Resource templates of `needs`. */
static const char *const g_templates[] = {
    "r:{x}",   "r:{y}",    "r:{x}/{y}",  "r:{p...}", "{p...}", "r:x",
    "r:{o.x}", "r:{x}{y}", "r:{p...}/z", "r:{n}",    "x/{y}",  "r:{x}/{p...}"};

/* Argument constraints. */
enum g_ckind { C_REQ, C_MAXLEN, C_IN, C_MATCH, C_LT, C_LE, C_GT, C_GE };

typedef struct g_constraint {
    const char *path;
    enum g_ckind kind;
    double num;         /* C_MAXLEN and the comparisons */
    const char *lits;   /* C_IN: the literals, as a JSON array */
    enum g_regex regex; /* C_MATCH */
    const char *re_src; /* C_MATCH: as written */
} g_constraint;

static const g_constraint g_constraints[] = {
    {"x", C_REQ, 0, NULL, RE_NONE, NULL},
    {"x", C_MAXLEN, 1, NULL, RE_NONE, NULL},
    {"x", C_MAXLEN, 2, NULL, RE_NONE, NULL},
    {"x", C_IN, 0, "[\"x\", \"y\", 1]", RE_NONE, NULL},
    {"x", C_MATCH, 0, NULL, RE_ARG_XY, "/[xy]+/"},
    {"y", C_MATCH, 0, NULL, RE_ARG_X_I, "/X/i"},
    {"n", C_LT, 3, NULL, RE_NONE, NULL},
    {"n", C_GE, 0, NULL, RE_NONE, NULL},
    {"n", C_LE, 1.5, NULL, RE_NONE, NULL},
    {"n", C_GT, -1, NULL, RE_NONE, NULL},
    {"n", C_IN, 0, "[1, 2.0, true]", RE_NONE, NULL},
    {"o.x", C_REQ, 0, NULL, RE_NONE, NULL},
    {"y", C_MAXLEN, 1, NULL, RE_NONE, NULL},
    {"p", C_MAXLEN, 3, NULL, RE_NONE, NULL},
};

static const char *const g_scope_names[] = {"s1", "s2:w", "s3", "s4"};
static const char *const g_role_names[] = {"r1", "r2", "r3"};
static const char *const g_agent_names[] = {"ag1", "ag2", "ag3"};
static const char *const g_group_names[] = {"g1", "g2", "g3"};

#define G_SERVER "srv"
#define G_AUX "aux" /* a server with tools but no server block */
#define G_RM "https://rm.example/srv"

/* ---- The model --------------------------------------------------------- */

#define G_MAX_ACT 3
#define G_MAX_PAT 3
#define G_MAX_RULES 8

typedef struct g_rule {
    bool deny;
    unsigned nact;
    unsigned npat;
    const char *act[G_MAX_ACT];
    const g_pattern *pat[G_MAX_PAT];
} g_rule;

/* A scope, role or agent block, every repeat merged. The rules from split
 * on (when split > 0) are written in a second statement of the same block,
 * at the end of the policy (in the second file when there are two). */
typedef struct g_block {
    const char *name; /* NULL for `agent *` */
    unsigned nrules;
    g_rule rules[G_MAX_RULES];
    unsigned split;
} g_block;

/* A `user` or `group` binding; roles index g_policy.roles. */
typedef struct g_bind {
    const char *name; /* NULL for `user *` */
    bool group;
    unsigned nroles;
    unsigned roles[3];
} g_bind;

enum g_deleg { DELEG_NONE, DELEG_CURRENT, DELEG_FULL };

typedef struct g_server {
    bool present;
    unsigned naud;
    const char *aud[2];
    bool rm;
    enum g_deleg deleg;
} g_server;

typedef struct g_needs {
    unsigned nact;
    const char *act[3];
    const char *tmpl;
} g_needs;

enum g_consent {
    CONSENT_NONE,
    CONSENT_SESSION,
    CONSENT_ONCE,
    CONSENT_ONCE_FOR,
    CONSENT_ALWAYS
};

typedef struct g_tool {
    const char *server;
    const char *name; /* NULL for `tool "<server>" *` */
    unsigned nneeds;
    g_needs needs[3];
    unsigned nargs;
    const g_constraint *args[3];
    enum g_consent consent;
    bool prompt;
    bool split; /* the last needs go in a second statement */
} g_tool;

typedef struct g_policy {
    unsigned nscopes;
    g_block scopes[4]; /* declaration order */
    unsigned nroles;
    g_block roles[3];
    unsigned nagents;
    g_block agents[4];
    unsigned nbinds;
    g_bind binds[6];
    g_server server;
    unsigned ntools;
    g_tool tools[4];
    unsigned nforbids;
    g_rule forbids[4];
    bool two_files;
    bool lax; /* permissive: requests are mostly well-formed too */
} g_policy;

/* ---- Generating a policy ----------------------------------------------- */

static const g_pattern *gen_pattern(prng *r)
{
    if (chance(r, 12))
        return &g_regexes[pick(r, COUNT(g_regexes))];
    /* Broad globs half the time, so that allows are common enough. */
    if (chance(r, 35))
        return &g_globs[chance(r, 50) ? 3 : 9]; /* "r:*" or "*" */
    return &g_globs[pick(r, COUNT(g_globs))];
}

static const char *gen_rule_action(prng *r)
{
    if (chance(r, 30))
        return g_rule_actions[4 + pick(r, 4)]; /* a wildcard */
    return g_rule_actions[pick(r, COUNT(g_rule_actions))];
}

static void gen_rule(prng *r, g_rule *out, unsigned deny_pct)
{
    memset(out, 0, sizeof *out);
    out->deny = chance(r, deny_pct);
    out->nact = 1 + pick(r, 2);
    for (unsigned i = 0; i < out->nact; i++)
        out->act[i] = gen_rule_action(r);
    out->npat = 1 + (chance(r, 30) ? 1 : 0);
    for (unsigned i = 0; i < out->npat; i++)
        out->pat[i] = gen_pattern(r);
}

/* A broad allow, so that checks get through the three sets often enough
 * for allow and consent_required to be common outcomes. */
static void gen_broad_allow(prng *r, g_rule *out)
{
    static const char *const acts[] = {"*", "*", "a.*", "b.*"};
    memset(out, 0, sizeof *out);
    out->nact = 1 + pick(r, 2);
    for (unsigned i = 0; i < out->nact; i++)
        out->act[i] = acts[pick(r, COUNT(acts))];
    out->npat = 1;
    out->pat[0] = &g_globs[chance(r, 25) ? 3 : 9]; /* "r:*" or "*" */
}

/* A block of up to maxrules rules, each a deny with deny_pct percent
 * probability; broad_pct percent of blocks get a broad allow, and past 90
 * percent most of those allow everything. */
static void gen_block(prng *r, g_block *b, const char *name, unsigned maxrules,
                      unsigned deny_pct, unsigned broad_pct)
{
    memset(b, 0, sizeof *b);
    b->name = name;
    b->nrules = chance(r, 10) ? 0 : 1 + pick(r, maxrules);
    for (unsigned i = 0; i < b->nrules; i++)
        gen_rule(r, &b->rules[i], deny_pct);
    if (b->nrules > 0 && deny_pct < 30 && chance(r, broad_pct)) {
        g_rule *rl = &b->rules[pick(r, b->nrules)];
        gen_broad_allow(r, rl);
        if (broad_pct > 90 && chance(r, 75)) {
            rl->nact = 1;
            rl->act[0] = "*";
            rl->pat[0] = &g_globs[9]; /* "*" */
        }
    }
    if (b->nrules >= 2 && chance(r, 20))
        b->split = 1 + pick(r, b->nrules - 1);
}

/* Shuffles the first n entries of an array of pointers. */
static void gen_shuffle(prng *r, const char **v, unsigned n)
{
    for (unsigned i = n; i > 1; i--) {
        unsigned k = pick(r, i);
        const char *t = v[i - 1];
        v[i - 1] = v[k];
        v[k] = t;
    }
}

static void gen_binds(prng *r, g_policy *p)
{
    static const char *const users[] = {"alice", "bob"};
    p->nbinds = 0;
    for (unsigned i = 0; i < 2 + COUNT(g_group_names) + 1; i++) {
        if (!chance(r, i == 0 ? 85 : i == 2 + COUNT(g_group_names) ? 70 : 55))
            continue;
        g_bind *b = &p->binds[p->nbinds++];
        memset(b, 0, sizeof *b);
        if (i < 2) {
            b->name = users[i];
        } else if (i < 2 + COUNT(g_group_names)) {
            b->name = g_group_names[i - 2];
            b->group = true;
        } /* else `user *` */
        b->nroles = 1 + pick(r, 2);
        for (unsigned k = 0; k < b->nroles; k++)
            b->roles[k] = pick(r, p->nroles);
    }
}

static void gen_server(prng *r, g_server *s)
{
    memset(s, 0, sizeof *s);
    s->present = chance(r, 85);
    if (!s->present)
        return;
    static const char *const auds[] = {"aud1", "aud2"};
    s->naud = chance(r, 50) ? 0 : 1 + pick(r, 2);
    for (unsigned i = 0; i < s->naud; i++)
        s->aud[i] = auds[i];
    s->rm = chance(r, 60);
    s->deleg = (enum g_deleg)pick(r, 3);
}

static void gen_tool(prng *r, g_tool *t, const char *server, const char *name)
{
    memset(t, 0, sizeof *t);
    t->server = server;
    t->name = name;
    t->nneeds = 1 + (chance(r, 35) ? 1 + pick(r, 2) : 0);
    for (unsigned i = 0; i < t->nneeds; i++) {
        g_needs *n = &t->needs[i];
        n->nact = 1 + (chance(r, 30) ? 1 : 0);
        for (unsigned k = 0; k < n->nact; k++)
            n->act[k] = g_need_actions[pick(r, COUNT(g_need_actions))];
        n->tmpl = g_templates[pick(r, COUNT(g_templates))];
    }
    t->nargs = chance(r, 30) ? 1 + pick(r, 2) : 0;
    for (unsigned i = 0; i < t->nargs; i++)
        t->args[i] = &g_constraints[pick(r, COUNT(g_constraints))];
    t->consent =
        chance(r, 65) ? CONSENT_NONE : (enum g_consent)(1 + pick(r, 4));
    t->prompt = t->consent != CONSENT_NONE && chance(r, 50);
    t->split = t->nneeds >= 2 && chance(r, 30);
}

/* A random policy that loads: every bound role is defined, every tool
 * needs something, every single-valued setting is given once. */
static void gen_policy(prng *r, g_policy *p)
{
    memset(p, 0, sizeof *p);
    /* A third of the policies are permissive (broad allows nearly
     * everywhere, few denies), so that checks often get through the three
     * sets to consent and allow. */
    bool lax = chance(r, 35);
    p->lax = lax;
    unsigned broad = lax ? 92 : 45;
    unsigned div = lax ? 4 : 1;
    const char *names[4];
    memcpy(names, g_scope_names, sizeof names);
    gen_shuffle(r, names, 4);
    p->nscopes = 1 + pick(r, 4);
    for (unsigned i = 0; i < p->nscopes; i++)
        gen_block(r, &p->scopes[i], names[i], 3, 10 / div, broad);

    p->nroles = 1 + pick(r, 3);
    for (unsigned i = 0; i < p->nroles; i++)
        gen_block(r, &p->roles[i], g_role_names[i], 3, 12 / div, broad);
    gen_binds(r, p);

    p->nagents = 0;
    for (unsigned i = 0; i < COUNT(g_agent_names); i++) {
        if (chance(r, 65))
            gen_block(r, &p->agents[p->nagents++], g_agent_names[i], 3,
                      10 / div, broad);
    }
    if (chance(r, lax ? 85 : 50))
        gen_block(r, &p->agents[p->nagents++], NULL, 2, lax ? 5 : 40, broad);

    gen_server(r, &p->server);
    static const char *const tools[] = {"t1", "t2", "t3"};
    p->ntools = 1 + pick(r, 3);
    for (unsigned i = 0; i < p->ntools; i++)
        gen_tool(r, &p->tools[i], chance(r, 10) ? G_AUX : G_SERVER, tools[i]);
    if (chance(r, 25))
        gen_tool(r, &p->tools[p->ntools++], G_SERVER, NULL);

    p->nforbids = chance(r, 30) ? 1 + pick(r, 2) : 0;
    for (unsigned i = 0; i < p->nforbids; i++)
        gen_rule(r, &p->forbids[i], 100);
    p->two_files = chance(r, 30);
}

/* ---- Rendering a policy as source -------------------------------------- */

static void put_rule(strbuf *b, const g_rule *rl, bool forbid)
{
    sb_puts(b, forbid ? "forbid " : rl->deny ? "  deny " : "  allow ");
    for (unsigned i = 0; i < rl->nact; i++)
        sb_printf(b, "%s%s", i > 0 ? ", " : "", rl->act[i]);
    sb_puts(b, " on ");
    for (unsigned i = 0; i < rl->npat; i++)
        sb_printf(b, "%s%s", i > 0 ? ", " : "", rl->pat[i]->src);
    sb_putc(b, '\n');
}

/* Writes rules [from, to) of a block as one statement. */
static void put_block(strbuf *b, const char *kw, const g_block *blk,
                      unsigned from, unsigned to)
{
    if (blk->name == NULL)
        sb_printf(b, "%s * {\n", kw);
    else if (strcmp(kw, "role") == 0)
        sb_printf(b, "%s %s {\n", kw, blk->name);
    else
        sb_printf(b, "%s \"%s\" {\n", kw, blk->name);
    for (unsigned i = from; i < to; i++)
        put_rule(b, &blk->rules[i], false);
    sb_puts(b, "}\n");
}

/* Writes a block's first statement to b and its split-off rules to later. */
static void put_split_block(strbuf *b, strbuf *later, const char *kw,
                            const g_block *blk)
{
    unsigned cut = blk->split > 0 ? blk->split : blk->nrules;
    put_block(b, kw, blk, 0, cut);
    if (blk->split > 0)
        put_block(later, kw, blk, cut, blk->nrules);
}

static void put_needs(strbuf *b, const g_needs *n)
{
    sb_puts(b, "  needs ");
    for (unsigned i = 0; i < n->nact; i++)
        sb_printf(b, "%s%s", i > 0 ? ", " : "", n->act[i]);
    sb_printf(b, " on \"%s\"\n", n->tmpl);
}

static void put_constraint(strbuf *b, const g_constraint *c)
{
    static const char *const ops[] = {
        [C_LT] = "<", [C_LE] = "<=", [C_GT] = ">", [C_GE] = ">="};
    sb_printf(b, "  arg %s ", c->path);
    switch (c->kind) {
    case C_REQ:
        sb_puts(b, "required\n");
        break;
    case C_MAXLEN:
        sb_printf(b, "max_length %g\n", c->num);
        break;
    case C_IN:
        sb_printf(b, "in %s\n", c->lits);
        break;
    case C_MATCH:
        sb_printf(b, "matches %s\n", c->re_src);
        break;
    default:
        sb_printf(b, "%s %g\n", ops[c->kind], c->num);
        break;
    }
}

static void put_tool(strbuf *b, strbuf *later, const g_tool *t)
{
    char head[64];
    if (t->name != NULL)
        snprintf(head, sizeof head, "tool \"%s\" \"%s\" {\n", t->server,
                 t->name);
    else
        snprintf(head, sizeof head, "tool \"%s\" * {\n", t->server);
    unsigned cut = t->split ? t->nneeds - 1 : t->nneeds;
    sb_puts(b, head);
    for (unsigned i = 0; i < cut; i++)
        put_needs(b, &t->needs[i]);
    for (unsigned i = 0; i < t->nargs; i++)
        put_constraint(b, t->args[i]);
    static const char *const modes[] = {"", "session", "once", "once for 1h",
                                        "always"};
    if (t->consent != CONSENT_NONE) {
        sb_printf(b, "  consent %s", modes[t->consent]);
        if (t->prompt)
            sb_puts(b, " \"Let {agent} use {x} on {o.x} for {user}?\"");
        sb_putc(b, '\n');
    }
    sb_puts(b, "}\n");
    if (t->split) {
        sb_puts(later, head);
        put_needs(later, &t->needs[cut]);
        sb_puts(later, "}\n");
    }
}

/* Renders the policy into one or two files (src[1] is empty with one).
 * Every statement's first part is in the first file, in model order, so
 * scope blocks are declared in model order. */
static void gen_render(const g_policy *p, strbuf src[2])
{
    strbuf *b = &src[0];
    strbuf *later = &src[1];
    const g_server *s = &p->server;
    if (s->present) {
        sb_puts(b, "server \"" G_SERVER "\" {\n");
        for (unsigned i = 0; i < s->naud; i++)
            sb_printf(b, "  audience \"%s\"\n", s->aud[i]);
        if (s->rm)
            sb_puts(b, "  resource_metadata \"" G_RM "\"\n");
        if (s->deleg != DELEG_NONE)
            sb_printf(b, "  delegation %s\n",
                      s->deleg == DELEG_FULL ? "full_chain" : "current_actor");
        sb_puts(b, "}\n");
    }
    for (unsigned i = 0; i < p->nscopes; i++)
        put_split_block(b, later, "scope", &p->scopes[i]);
    for (unsigned i = 0; i < p->nroles; i++)
        put_split_block(b, later, "role", &p->roles[i]);
    for (unsigned i = 0; i < p->nbinds; i++) {
        const g_bind *bd = &p->binds[i];
        if (bd->name == NULL)
            sb_puts(b, "user * { roles ");
        else
            sb_printf(b, "%s \"%s\" { roles ", bd->group ? "group" : "user",
                      bd->name);
        for (unsigned k = 0; k < bd->nroles; k++)
            sb_printf(b, "%s%s", k > 0 ? ", " : "",
                      p->roles[bd->roles[k]].name);
        sb_puts(b, " }\n");
    }
    for (unsigned i = 0; i < p->nagents; i++)
        put_split_block(b, later, "agent", &p->agents[i]);
    for (unsigned i = 0; i < p->ntools; i++)
        put_tool(b, later, &p->tools[i]);
    for (unsigned i = 0; i < p->nforbids; i++)
        put_rule(b, &p->forbids[i], true);
}

/* ---- The edits of the monotonicity laws -------------------------------- */

/* Removes role k from binding i (the binding itself when it held only that
 * role). */
static void gen_unbind(g_policy *p, unsigned i, unsigned k)
{
    g_bind *b = &p->binds[i];
    memmove(&b->roles[k], &b->roles[k + 1],
            (b->nroles - k - 1) * sizeof b->roles[0]);
    b->nroles--;
    if (b->nroles > 0)
        return;
    memmove(&p->binds[i], &p->binds[i + 1],
            (p->nbinds - i - 1) * sizeof p->binds[0]);
    p->nbinds--;
}

/* Removes rule k of a block, keeping the split where it was. */
static void gen_remove_rule(g_block *b, unsigned k)
{
    memmove(&b->rules[k], &b->rules[k + 1],
            (b->nrules - k - 1) * sizeof b->rules[0]);
    b->nrules--;
    if (b->split > k)
        b->split--;
    if (b->split == 0 || b->split >= b->nrules)
        b->split = 0;
}

/* ---- Generating a request ---------------------------------------------- */

#define G_NOW_S INT64_C(1893456000)

static json_t *gen_str(const char *s)
{
    return json_string(s);
}

/* A small number, mostly an integer. */
static json_t *gen_num(prng *r)
{
    if (chance(r, 15))
        return json_real(chance(r, 50) ? 1.5 : 2.0);
    return json_integer((json_int_t)pick(r, 5) - 2 + (chance(r, 20) ? 10 : 0));
}

/* A random argument value: mostly small safe strings, then strings that
 * are unsafe in a template, then other JSON types. */
static json_t *gen_value(prng *r)
{
    static const char *const safe[] = {"x", "y",         "xy", "1", "\xc3\xa9",
                                       "X", "x\xc3\xa9", "-2", "z"};
    static const char *const unsafe[] = {"..",   ".",  "",   "*",
                                         "?",    "x*", "\n", "\xc2\x85",
                                         "\x7f", "\t", "x?", "\xc2\xa0"};
    static const char *const paths[] = {"x/y",    "/x/", "/",     "x//y",
                                        "x/../y", "/x",  "x/",    "//",
                                        "./x",    "x/.", "a/b/c", "/x/y/"};
    unsigned k = pick(r, 100);
    if (k < 84)
        return gen_str(safe[pick(r, COUNT(safe))]);
    if (k < 88)
        return gen_num(r);
    if (k < 92)
        return gen_str(unsafe[pick(r, COUNT(unsafe))]);
    if (k < 97)
        return gen_str(paths[pick(r, COUNT(paths))]);
    switch (pick(r, 7)) {
    case 0:
        return json_real(1.0);
    case 1:
        return json_real(1.5);
    case 2:
        return json_true();
    case 3:
        return json_null();
    case 4:
        return json_object();
    case 5:
        return json_array();
    default:
        return json_real(2.0);
    }
}

/* Arguments that fill every template of the generator safely. */
static json_t *gen_friendly_arguments(prng *r)
{
    static const char *const safe[] = {"x", "y", "xy", "1"};
    static const char *const paths[] = {"x", "x/y", "/x/", "y/1"};
    json_t *a = json_object();
    json_t *o = json_object();
    json_object_set_new(a, "x", gen_str(safe[pick(r, COUNT(safe))]));
    json_object_set_new(a, "y", gen_str(safe[pick(r, COUNT(safe))]));
    json_object_set_new(a, "p", gen_str(paths[pick(r, COUNT(paths))]));
    json_object_set_new(a, "n", json_integer((json_int_t)pick(r, 3)));
    json_object_set_new(o, "x", gen_str(safe[pick(r, COUNT(safe))]));
    json_object_set_new(a, "o", o);
    return a;
}

static json_t *gen_arguments(prng *r, bool lax)
{
    if (chance(r, lax ? 70 : 25))
        return gen_friendly_arguments(r);
    json_t *a = json_object();
    static const char *const keys[] = {"x", "y", "p", "n"};
    for (unsigned i = 0; i < COUNT(keys); i++) {
        if (!chance(r, 93))
            continue;
        /* n is mostly a number: the comparisons are about it. */
        bool num = i == 3 && chance(r, 70);
        json_object_set_new(a, keys[i], num ? gen_num(r) : gen_value(r));
    }
    if (chance(r, 90)) {
        if (chance(r, 90)) {
            json_t *o = json_object();
            if (chance(r, 92))
                json_object_set_new(o, "x", gen_value(r));
            json_object_set_new(a, "o", o);
        } else {
            json_object_set_new(a, "o", gen_value(r));
        }
    }
    return a;
}

/* A space-separated list of 0-3 scope names (one without a block). */
static json_t *gen_scope_string(prng *r)
{
    strbuf b;
    sb_init(&b);
    unsigned n = pick(r, 4);
    if (chance(r, 10))
        sb_putc(&b, ' ');
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            sb_puts(&b, chance(r, 15) ? "  " : " ");
        sb_puts(&b, chance(r, 10) ? "s9" : g_scope_names[pick(r, 4)]);
    }
    json_t *v = json_string(b.data != NULL ? b.data : "");
    sb_free(&b);
    return v;
}

static json_t *gen_scp_array(prng *r)
{
    json_t *a = json_array();
    unsigned n = pick(r, 4);
    for (unsigned i = 0; i < n; i++) {
        if (chance(r, 8))
            json_array_append_new(a, json_integer(3));
        else
            json_array_append_new(
                a, gen_str(chance(r, 10) ? "s9" : g_scope_names[pick(r, 4)]));
    }
    return a;
}

/* A groups or roles claim: an array, a lone string, or another type. */
static json_t *gen_groups(prng *r)
{
    if (chance(r, 15))
        return gen_str(g_group_names[pick(r, 3)]);
    if (chance(r, 5))
        return json_integer(1);
    json_t *a = json_array();
    unsigned n = pick(r, 3);
    for (unsigned i = 0; i < n; i++) {
        if (chance(r, 10))
            json_array_append_new(a, json_true());
        else
            json_array_append_new(a, gen_str(g_group_names[pick(r, 3)]));
    }
    return a;
}

static const char *gen_agent_id(prng *r)
{
    return chance(r, 12) ? "ag9" : g_agent_names[pick(r, 3)];
}

/* One actor of a delegation chain, with deeper actors behind it. */
static json_t *gen_actor(prng *r, unsigned depth)
{
    unsigned k = pick(r, 100);
    if (k < 5)
        return gen_str("someone");
    json_t *a = json_object();
    if (k < 60) {
        json_object_set_new(a, "client_id", gen_str(gen_agent_id(r)));
        if (chance(r, 20))
            json_object_set_new(a, "sub", gen_str("ag1"));
    } else if (k < 90) {
        json_object_set_new(a, "sub", gen_str(gen_agent_id(r)));
    } /* else an actor with no id */
    if (depth < 3 && chance(r, 40))
        json_object_set_new(a, "act", gen_actor(r, depth + 1));
    else if (chance(r, 5))
        json_object_set_new(a, "act", json_null());
    return a;
}

static json_t *gen_token(prng *r, const g_policy *p)
{
    json_t *t = json_object();
    unsigned k = pick(r, 100);
    if (k < 95) {
        static const char *const subs[] = {"alice", "alice", "bob", "carol",
                                           "dave"};
        json_object_set_new(t, "sub", gen_str(subs[pick(r, COUNT(subs))]));
    } else if (k < 97) {
        json_object_set_new(t, "sub", gen_str(""));
    } else if (k < 98) {
        json_object_set_new(t, "sub", json_integer(7));
    } /* else no sub */

    k = pick(r, 100);
    if (k < 50) {
        /* no exp */
    } else if (k < 86) {
        json_object_set_new(t, "exp", json_integer(G_NOW_S + 3600));
    } else if (k < 90) {
        json_object_set_new(t, "exp", json_integer(G_NOW_S - 30));
    } else if (k < 94) {
        json_object_set_new(t, "exp", json_integer(G_NOW_S - 60));
    } else if (k < 96) {
        json_object_set_new(t, "exp", json_integer(G_NOW_S - 61));
    } else if (k < 98) {
        json_object_set_new(t, "exp", json_real((double)G_NOW_S - 60.5));
    } else if (k < 99) {
        json_object_set_new(t, "exp", gen_str("soon"));
    } else {
        json_object_set_new(t, "exp",
                            chance(r, 50) ? json_null() : json_true());
    }

    if (p->server.naud > 0 || chance(r, 30)) {
        k = pick(r, 100);
        const char *aud = p->server.naud > 0
                              ? p->server.aud[pick(r, p->server.naud)]
                              : "aud1";
        if (k < 65) {
            json_object_set_new(t, "aud", gen_str(aud));
        } else if (k < 90) {
            json_t *a = json_array();
            json_array_append_new(a, gen_str("other"));
            if (chance(r, 20))
                json_array_append_new(a, json_integer(5));
            json_array_append_new(a, gen_str(aud));
            json_object_set_new(t, "aud", a);
        } else if (k < 96) {
            json_object_set_new(t, "aud", gen_str("aud3"));
        } /* else no aud */
    }

    k = pick(r, 100);
    if (k < (p->lax ? 60 : 12)) {
        /* Every scope the policy declares. */
        strbuf b;
        sb_init(&b);
        for (unsigned i = 0; i < p->nscopes; i++)
            sb_printf(&b, "%s%s", i > 0 ? " " : "", p->scopes[i].name);
        json_object_set_new(t, "scope", json_string(b.data ? b.data : ""));
        sb_free(&b);
    } else if (k < 65) {
        json_object_set_new(t, "scope", gen_scope_string(r));
        if (chance(r, 10))
            json_object_set_new(t, "scp", gen_scp_array(r));
    } else if (k < 85) {
        json_object_set_new(t, "scp", gen_scp_array(r));
    } else if (k < 93) {
        json_object_set_new(t, "scp", gen_scope_string(r));
    } else if (k < 96) {
        json_object_set_new(t, "scope", json_integer(1));
        json_object_set_new(t, "scp", gen_scp_array(r));
    } /* else no scopes */

    if (chance(r, 40))
        json_object_set_new(t, "groups", gen_groups(r));
    if (chance(r, 15))
        json_object_set_new(t, "roles", gen_groups(r));

    k = pick(r, 100);
    if (k < 75) {
        json_object_set_new(t, "client_id", gen_str(gen_agent_id(r)));
        if (chance(r, 20))
            json_object_set_new(t, "azp", gen_str(gen_agent_id(r)));
    } else if (k < 92) {
        json_object_set_new(t, "azp", gen_str(gen_agent_id(r)));
    } /* else no agent */

    k = pick(r, 100);
    if (k < 25)
        json_object_set_new(t, "act", gen_actor(r, 1));
    else if (k < 30)
        json_object_set_new(t, "act", json_null());
    return t;
}

/* A random check request (the params of DESIGN §3.1) for policy p. */
static json_t *gen_request(prng *r, const g_policy *p)
{
    json_t *q = json_object();
    static const char *const servers[] = {G_SERVER, G_AUX, "none"};
    static const char *const tools[] = {"t1", "t2", "t3", "t9"};
    const char *server = servers[pick(r, 3)];
    const char *tool = tools[pick(r, 4)];
    if (chance(r, 88)) {
        /* Mostly a tool the policy has (a wildcard takes any name). */
        const g_tool *t = &p->tools[pick(r, p->ntools)];
        server = t->server;
        if (t->name != NULL)
            tool = t->name;
    }
    json_object_set_new(q, "server", gen_str(server));
    json_object_set_new(q, "tool", gen_str(tool));
    unsigned k;
    if (chance(r, 92))
        json_object_set_new(q, "arguments", gen_arguments(r, p->lax));
    k = pick(r, 100);
    if (k < 50)
        json_object_set_new(q, "session", gen_str("sess-1"));
    else if (k < 55)
        json_object_set_new(q, "session", gen_str(""));
    else if (k < 60)
        json_object_set_new(q, "session", json_null());
    json_object_set_new(q, "token", gen_token(r, p));
    return q;
}

#endif /* PROP_GEN_H */
