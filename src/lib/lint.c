/*
 * lint.c - warnings about a policy that loads but probably does not say
 * what its author meant: a role bound to no one, a tool no scope could ever
 * grant, an allow made dead by a deny in the same block, a tool for a server
 * with no server block. Every check is conservative: it warns only when it
 * is certain, so a clean policy lints clean.
 */
#include "lib/policy.h"

#include "lib/diag.h"

#include <stdlib.h>
#include <string.h>

/* Appends s as a quoted, escaped string. */
static void lint_quote(strbuf *b, const char *s)
{
    sb_json_str(b, s, strlen(s));
}

static void lint_tool_label(strbuf *b, const cpl_tool *t)
{
    sb_puts(b, "tool ");
    lint_quote(b, t->server);
    sb_putc(b, ' ');
    if (t->name != NULL)
        lint_quote(b, t->name);
    else
        sb_putc(b, '*');
}

/* Adds one warning whose text was built in b (and frees b). Returns 1, or
 * TRINE_ENOMEM when memory ran short for the warning. */
static int lint_warn(trine_diag *diag, const char *file, unsigned line,
                     unsigned col, strbuf *b)
{
    bool ok = !b->oom && diag_add(diag, TRINE_DIAG_WARNING, file, line, col,
                                  "%s", b->data ? b->data : "");
    sb_free(b);
    return ok ? 1 : TRINE_ENOMEM;
}

/* Adds rc (warnings added, or TRINE_ENOMEM) to a running total, which
 * stays TRINE_ENOMEM once it is: a lint that lost a warning must not look
 * complete. */
static int lint_sum(int total, int rc)
{
    return total < 0 || rc < 0 ? TRINE_ENOMEM : total + rc;
}

/* ---- Roles bound to no one --------------------------------------------- */

static void lint_mark(bool *bound, const cpl_binding *bd)
{
    for (size_t i = 0; bd != NULL && i < bd->nroles; i++)
        bound[bd->roles[i]->order] = true;
}

static void lint_mark_map(bool *bound, const strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL)
            lint_mark(bound, m->slots[i].value);
    }
}

static int lint_roles(const trine_policy *p, trine_diag *diag)
{
    if (p->nroles == 0)
        return 0;
    bool *bound = calloc(p->nroles, sizeof *bound);
    if (bound == NULL)
        return TRINE_ENOMEM;
    lint_mark(bound, p->user_any);
    lint_mark_map(bound, &p->users);
    lint_mark_map(bound, &p->groups);
    int n = 0;
    for (size_t i = 0; i < p->nroles; i++) {
        const cpl_block *r = p->role_list[i];
        if (bound[r->order])
            continue;
        strbuf b;
        sb_init(&b);
        sb_puts(&b, "role ");
        lint_quote(&b, r->name);
        sb_puts(&b, " is bound to no user or group, so its rules never "
                    "apply; bind it with \"user ... { roles ");
        sb_puts(&b, r->name);
        sb_puts(&b, " }\" or \"group ... { roles ");
        sb_puts(&b, r->name);
        sb_puts(&b, " }\"");
        n = lint_sum(n, lint_warn(diag, r->file, r->line, r->col, &b));
    }
    free(bound);
    return n;
}

/* ---- Tools --------------------------------------------------------------- */

/* True when some scope block has an allow whose action covers action. */
static bool lint_scope_allows(const trine_policy *p, const char *action,
                              size_t alen)
{
    for (size_t i = 0; i < p->nscopes; i++) {
        const cpl_block *s = p->scopes[i];
        for (size_t k = 0; k < s->nrules; k++) {
            const cpl_rule *r = s->rules[k];
            for (size_t a = 0; !r->deny && a < r->nactions; a++) {
                if (action_match(&r->actions[a], action, alen))
                    return true;
            }
        }
    }
    return false;
}

static int lint_tool(const trine_policy *p, const cpl_server *s,
                     const cpl_tool *t, trine_diag *diag)
{
    int n = 0;
    if (!s->declared) {
        strbuf b;
        sb_init(&b);
        lint_tool_label(&b, t);
        sb_puts(&b, " is for server ");
        lint_quote(&b, s->name);
        sb_puts(&b, ", which has no server block, so no token audience is "
                    "checked for it; add a server block with its audience");
        n = lint_sum(n, lint_warn(diag, t->file, t->line, t->col, &b));
    }
    for (size_t i = 0; i < t->nneeds; i++) {
        const cpl_needs *nd = &t->needs[i];
        for (size_t k = 0; k < nd->nactions; k++) {
            if (lint_scope_allows(p, nd->actions[k], nd->action_lens[k]))
                continue;
            strbuf b;
            sb_init(&b);
            lint_tool_label(&b, t);
            sb_puts(&b, " needs ");
            sb_puts(&b, nd->actions[k]);
            sb_puts(&b, ", which no scope block allows, so no token can "
                        "ever be granted this tool");
            n = lint_sum(n, lint_warn(diag, nd->file, nd->line, nd->col, &b));
        }
    }
    return n;
}

static int lint_tools(const trine_policy *p, trine_diag *diag)
{
    int n = 0;
    for (size_t i = 0; i < p->nservers; i++) {
        const cpl_server *s = p->server_list[i];
        for (size_t k = 0; k < s->ntools; k++)
            n = lint_sum(n, lint_tool(p, s, s->tool_list[k], diag));
        if (s->wildcard != NULL)
            n = lint_sum(n, lint_tool(p, s, s->wildcard, diag));
    }
    return n;
}

/* ---- Allows made dead by a deny ---------------------------------------- */

/* True when the deny action d covers every action the allow action a
 * covers. */
static bool lint_action_covers(const cpl_action *d, const cpl_action *a)
{
    switch (d->kind) {
    case ACT_ANY:
        return true;
    case ACT_EXACT:
        return a->kind == ACT_EXACT && a->len == d->len &&
               memcmp(a->text, d->text, d->len) == 0;
    case ACT_PREFIX:
        if (a->kind == ACT_EXACT)
            return action_match(d, a->text, a->len);
        return a->kind == ACT_PREFIX && a->len >= d->len &&
               memcmp(a->text, d->text, d->len) == 0;
    }
    return false;
}

static size_t lint_cp_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return l < n ? l : n;
}

/* True when the glob d matches every string the glob a matches. a is read
 * as symbols (a code point, '?' or '*'); d's '*' may take any run of them,
 * d's '?' one code point or one '?', d's literal only the same literal.
 * Sound (never claims a cover that is not there), not complete. The walk is
 * the two-pointer glob match of match.c, with those symbol rules. */
static bool lint_glob_covers(const char *d, size_t dlen, const char *a,
                             size_t alen)
{
    size_t di = 0, ai = 0, star_d = SIZE_MAX, star_a = 0;
    while (ai < alen) {
        if (di < dlen && d[di] == '*') {
            while (di < dlen && d[di] == '*')
                di++;
            if (di == dlen)
                return true;
            star_d = di;
            star_a = ai;
            continue;
        }
        size_t al = lint_cp_len(a + ai, alen - ai);
        if (di < dlen && a[ai] != '*') {
            size_t dl = lint_cp_len(d + di, dlen - di);
            if (d[di] == '?') {
                di++;
                ai += al;
                continue;
            }
            if (a[ai] != '?' && dl == al && memcmp(d + di, a + ai, al) == 0) {
                di += dl;
                ai += al;
                continue;
            }
        }
        if (star_d == SIZE_MAX)
            return false;
        star_a += lint_cp_len(a + star_a, alen - star_a);
        di = star_d;
        ai = star_a;
    }
    while (di < dlen && d[di] == '*')
        di++;
    return di == dlen;
}

static uint32_t lint_regex_opts(const cpl_pattern *p)
{
    uint32_t opts = 0;
    if (p->re != NULL)
        pcre2_pattern_info(p->re, PCRE2_INFO_ARGOPTIONS, &opts);
    return opts;
}

/* True when the deny pattern d certainly matches every resource the allow
 * pattern a matches. */
static bool lint_pattern_covers(const cpl_pattern *d, const cpl_pattern *a)
{
    if (d->kind == PAT_GLOB && d->len > 0 && strspn(d->text, "*") == d->len)
        return true;
    if (d->kind == a->kind && d->len == a->len &&
        memcmp(d->text, a->text, d->len) == 0)
        return d->kind == PAT_GLOB || lint_regex_opts(d) == lint_regex_opts(a);
    if (a->kind == PAT_GLOB && a->literal)
        return pattern_match(d, a->text, a->len);
    if (a->kind == PAT_GLOB && d->kind == PAT_GLOB)
        return lint_glob_covers(d->text, d->len, a->text, a->len);
    return false;
}

/* Returns one of the n denies that covers the pair (a, pt), or NULL. */
static const cpl_rule *lint_pair_denied(const cpl_rule *const *denies, size_t n,
                                        const cpl_action *a,
                                        const cpl_pattern *pt)
{
    for (size_t i = 0; i < n; i++) {
        const cpl_rule *d = denies[i];
        bool act = false, pat = false;
        for (size_t k = 0; k < d->nactions && !act; k++)
            act = lint_action_covers(&d->actions[k], a);
        for (size_t k = 0; act && k < d->npatterns && !pat; k++)
            pat = lint_pattern_covers(&d->patterns[k], pt);
        if (act && pat)
            return d;
    }
    return NULL;
}

static int lint_block(const cpl_block *b, trine_diag *diag)
{
    if (b == NULL)
        return 0;
    /* The denies, gathered once: a block of many allows and few denies
     * (the usual shape) costs allows x denies, not allows x rules. */
    size_t ndeny = 0;
    for (size_t i = 0; i < b->nrules; i++)
        ndeny += b->rules[i]->deny;
    if (ndeny == 0)
        return 0;
    const cpl_rule **denies = malloc(ndeny * sizeof *denies);
    if (denies == NULL)
        return TRINE_ENOMEM;
    ndeny = 0;
    for (size_t i = 0; i < b->nrules; i++) {
        if (b->rules[i]->deny)
            denies[ndeny++] = b->rules[i];
    }
    int n = 0;
    for (size_t i = 0; i < b->nrules; i++) {
        const cpl_rule *r = b->rules[i];
        if (r->deny)
            continue;
        const cpl_rule *first = NULL;
        bool dead = r->nactions > 0 && r->npatterns > 0;
        for (size_t k = 0; dead && k < r->nactions; k++) {
            for (size_t m = 0; dead && m < r->npatterns; m++) {
                const cpl_rule *d = lint_pair_denied(
                    denies, ndeny, &r->actions[k], &r->patterns[m]);
                dead = d != NULL;
                if (first == NULL)
                    first = d;
            }
        }
        if (!dead)
            continue;
        strbuf msg;
        sb_init(&msg);
        sb_printf(&msg,
                  "this allow never takes effect: the deny at "
                  "%s:%u:%u in the same block denies every action and "
                  "resource it allows",
                  first->file, first->line, first->col);
        n = lint_sum(n, lint_warn(diag, r->file, r->line, r->col, &msg));
    }
    free(denies);
    return n;
}

static int lint_cmp_order(const void *x, const void *y)
{
    const cpl_block *a = *(const cpl_block *const *)x;
    const cpl_block *b = *(const cpl_block *const *)y;
    return (a->order > b->order) - (a->order < b->order);
}

static int lint_dead(const trine_policy *p, trine_diag *diag)
{
    int n = 0;
    for (size_t i = 0; i < p->nscopes; i++)
        n = lint_sum(n, lint_block(p->scopes[i], diag));
    for (size_t i = 0; i < p->nroles; i++)
        n = lint_sum(n, lint_block(p->role_list[i], diag));
    /* Agents live in a hash map: visit them in declaration order. */
    const cpl_block **agents = calloc(p->agents.count + 2, sizeof *agents);
    if (agents == NULL)
        return TRINE_ENOMEM;
    size_t na = 0;
    for (size_t i = 0; i < p->agents.cap; i++) {
        if (p->agents.slots[i].key != NULL)
            agents[na++] = p->agents.slots[i].value;
    }
    if (p->agent_any != NULL)
        agents[na++] = p->agent_any;
    qsort(agents, na, sizeof *agents, lint_cmp_order);
    for (size_t i = 0; i < na; i++)
        n = lint_sum(n, lint_block(agents[i], diag));
    free(agents);
    return n;
}

int trine_policy_lint(const trine_policy *p, trine_diag *diag)
{
    if (p == NULL)
        return 0;
    /* A regex match cut short by memory could hide a dead rule. */
    (void)match_take_nomem();
    int n = lint_roles(p, diag);
    n = lint_sum(n, lint_dead(p, diag));
    n = lint_sum(n, lint_tools(p, diag));
    return match_take_nomem() ? TRINE_ENOMEM : n;
}
