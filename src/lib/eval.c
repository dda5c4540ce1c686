/*
 * eval.c - trine_check: one check request against a compiled policy, in the
 * order of DESIGN §2.4 (token, tool, arguments, forbid, the three sets,
 * consent), with the edge rules of §2.5.
 *
 * Every step fails closed. The first step that fails decides, but a failing
 * step lists every failure it finds (every bad argument, every forbidden
 * pair, every (set, pair, agent) that fell short), so a deny is precise
 * enough to act on.
 *
 * The allow path does no allocation beyond the decision itself: lookups go
 * through the policy's hash maps and action indexes, filled resources and
 * copied strings go into the decision's arena.
 */
#include "lib/blockvec.h"
#include "lib/decision.h"
#include "lib/number.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- The check --------------------------------------------------------- */

/* What one set decided for one pair: the first allow and the first deny
 * that matched (the pair passes with an allow and no deny). */
typedef struct set_result {
    const cpl_rule *allow;
    const cpl_rule *deny;
} set_result;

#define EVAL_INLINE_PAIRS 8

typedef struct eval_ctx {
    const trine_policy *p;
    const trine_check_opts *opts;
    int64_t now_ms;
    trine_decision *d;
    eval_req req;
    claims c;
    const cpl_server *server;
    const cpl_tool *tool;
    eval_pair *pairs;
    size_t npairs;
    eval_pair pairs_inline[EVAL_INLINE_PAIRS];
    blockvec roles;
    blockvec scopes;
} eval_ctx;

/* Step results: 0 go on, 1 decided, < 0 a TRINE_E* error. */
#define STEP_NEXT 0
#define STEP_DONE 1

static int decide(eval_ctx *x, const char *kind, const char *reason)
{
    x->d->kind = kind;
    x->d->reason = reason;
    return STEP_DONE;
}

static int add_reason(eval_ctx *x, const dec_reason *r)
{
    return dec_add_reason(x->d, r) != NULL ? 0 : TRINE_ENOMEM;
}

/* Denies with one reason. detail NULL means allocation failed. */
static int deny_one(eval_ctx *x, const char *code, const char *file,
                    unsigned line, const char *detail)
{
    if (detail == NULL)
        return TRINE_ENOMEM;
    dec_reason r = {0};
    r.code = code;
    r.rule_file = file;
    r.rule_line = line;
    r.detail = detail;
    int rc = add_reason(x, &r);
    return rc != 0 ? rc : decide(x, "deny", code);
}

/* Step 1: the token. */
static int step_token(eval_ctx *x)
{
    const claims *c = &x->c;
    trine_decision *d = x->d;
    if (c->exp_state == CLAIM_EXP_BAD)
        return deny_one(x, "token_invalid", NULL, 0, "exp must be a number");
    if (c->exp_state == CLAIM_EXP_SET) {
        double now = (double)x->now_ms / 1000.0;
        if (now > c->exp + 60.0) {
            char num[NUM_BUF];
            num_readable(c->exp, num);
            return deny_one(
                x, "token_expired", NULL, 0,
                dec_printf(d, "the token expired at %s (60 s leeway)", num));
        }
    }
    const cpl_server *s = x->server;
    if (s != NULL && s->naudiences > 0 &&
        !claims_aud_match(c, s->audiences, s->naudiences))
        return deny_one(
            x, "audience_mismatch", s->file, s->line,
            dec_printf(d, "aud names no audience of server \"%s\"", s->name));
    if (c->sub == NULL)
        return deny_one(x, "token_invalid", NULL, 0, c->sub_problem);
    if (c->agent_nul)
        return deny_one(x, "token_invalid", NULL, 0,
                        "client_id/azp must not contain a NUL character");
    return STEP_NEXT;
}

/* Returns the tool block a request names: the exact name first, then the
 * server's wildcard; NULL when there is none. */
static const cpl_tool *lookup_tool(const eval_ctx *x)
{
    const cpl_tool *t = NULL;
    if (x->server != NULL) {
        t = strmap_getn(&x->server->tools, x->req.tool, x->req.tool_len);
        if (t == NULL)
            t = x->server->wildcard;
    }
    return t;
}

/* Step 2: the tool. */
static int step_tool(eval_ctx *x)
{
    const cpl_tool *t = lookup_tool(x);
    if (t == NULL)
        return deny_one(x, "unknown_tool", NULL, 0,
                        dec_printf(x->d, "no tool \"%s\" on server \"%s\"",
                                   x->d->tool, x->d->server));
    x->tool = t;
    x->d->tool_blk = t;
    x->d->consent_mode = t->consent;
    x->d->consent_duration_s = t->consent_duration_s;
    return STEP_NEXT;
}

/* Records an argument_invalid reason unless the same (argument, rule) is
 * already listed (a placeholder used twice in one template). */
static int arg_reason(eval_ctx *x, const char *argument, const char *file,
                      unsigned line, const char *detail)
{
    if (argument == NULL || detail == NULL)
        return TRINE_ENOMEM;
    trine_decision *d = x->d;
    for (size_t i = 0; i < d->nreasons; i++) {
        const dec_reason *r = &d->reasons[i];
        if (r->rule_line == line && r->rule_file == file &&
            strcmp(r->argument, argument) == 0)
            return 0;
    }
    dec_reason r = {0};
    r.code = "argument_invalid";
    r.argument = argument;
    r.rule_file = file;
    r.rule_line = line;
    r.detail = detail;
    return add_reason(x, &r);
}

/* True when (action, res) is already among the needed pairs. */
static bool pair_known(const eval_ctx *x, const char *action, size_t alen,
                       const char *res, size_t rlen)
{
    for (size_t i = 0; i < x->npairs; i++) {
        const eval_pair *p = &x->pairs[i];
        if (p->alen == alen && p->rlen == rlen &&
            memcmp(p->action, action, alen) == 0 &&
            memcmp(p->res, res, rlen) == 0)
            return true;
    }
    return false;
}

#define EVAL_INLINE_PARTS 16

/* Looks up and checks every placeholder of one needs template, recording a
 * reason for each unsafe value; fills the template and adds its pairs when
 * all are safe. Returns 0 or TRINE_ENOMEM. */
static int needs_fill(eval_ctx *x, const cpl_needs *n)
{
    trine_decision *d = x->d;
    const cpl_template *t = &n->tmpl;
    const json_t *vals_inline[EVAL_INLINE_PARTS];
    const json_t **vals = vals_inline;
    if (t->nparts > EVAL_INLINE_PARTS) {
        vals = dec_alloc(d, t->nparts * sizeof *vals);
        if (vals == NULL)
            return TRINE_ENOMEM;
    }
    bool bad = false;
    for (size_t k = 0; k < t->nparts; k++) {
        const tmpl_part *ph = &t->parts[k];
        vals[k] = NULL;
        if (!ph->is_ph)
            continue;
        vals[k] = tmpl_lookup(x->req.args, ph->path, ph->npath);
        const char *problem = tmpl_value_problem(vals[k], ph->rest);
        if (problem == NULL)
            continue;
        bad = true;
        const char *name = dec_strndup(d, ph->text, ph->len);
        const char *detail = name == NULL
                                 ? NULL
                                 : dec_printf(d, "{%s%s} %s", name,
                                              ph->rest ? "..." : "", problem);
        int rc = arg_reason(x, name, n->file, n->line, detail);
        if (rc != 0)
            return rc;
    }
    if (bad)
        return 0;
    const char *res;
    size_t rlen;
    int rc = tmpl_fill_values(d, t, vals, false, &res, &rlen);
    if (rc != 0)
        return rc;
    /* The audit log's copy, without the values the tool redacts. */
    const char *res_audit = res;
    if (t->any_redacted) {
        size_t alen;
        rc = tmpl_fill_values(d, t, vals, true, &res_audit, &alen);
        if (rc != 0)
            return rc;
    }
    for (size_t k = 0; k < n->nactions; k++) {
        /* A pair needed twice (`needs a, a on ...`, or two templates that
         * fill alike) is judged, and reported, once. */
        if (pair_known(x, n->actions[k], n->action_lens[k], res, rlen))
            continue;
        eval_pair *pr = &x->pairs[x->npairs++];
        pr->action = n->actions[k];
        pr->alen = n->action_lens[k];
        pr->res = res;
        pr->rlen = rlen;
        pr->res_audit = res_audit;
    }
    return 0;
}

/* Step 3: every arg constraint, then every needs template; on success the
 * needed pairs are filled in. */
static int step_args(eval_ctx *x)
{
    const cpl_tool *t = x->tool;
    trine_decision *d = x->d;
    int rc;

    for (size_t i = 0; i < t->nargs; i++) {
        const cpl_arg *a = &t->args[i];
        const char *why = NULL;
        rc = eval_check_arg(x->d, a,
                            tmpl_lookup(x->req.args, a->path, a->npath), &why);
        if (rc == 1)
            rc = arg_reason(x, a->path_text, a->file, a->line, why);
        if (rc != 0)
            return rc;
    }

    size_t npairs = 0;
    for (size_t i = 0; i < t->nneeds; i++)
        npairs += t->needs[i].nactions;
    x->pairs = x->pairs_inline;
    if (npairs > EVAL_INLINE_PAIRS) {
        x->pairs = dec_alloc(d, npairs * sizeof *x->pairs);
        if (x->pairs == NULL)
            return TRINE_ENOMEM;
    }
    for (size_t i = 0; i < t->nneeds; i++) {
        rc = needs_fill(x, &t->needs[i]);
        if (rc != 0)
            return rc;
    }
    return d->nreasons > 0 ? decide(x, "deny", "argument_invalid") : STEP_NEXT;
}

/* Step 4: forbid overrides everything. */
static int step_forbid(eval_ctx *x)
{
    const cpl_block *f = x->p->forbids;
    if (f == NULL)
        return STEP_NEXT;
    bool any = false;
    for (size_t i = 0; i < x->npairs; i++) {
        const eval_pair *pr = &x->pairs[i];
        const cpl_rule *allow = NULL;
        const cpl_rule *deny = NULL;
        block_match(f, pr->action, pr->alen, pr->res, pr->rlen, &allow, &deny);
        if (deny == NULL)
            continue;
        dec_reason r = {0};
        r.code = "forbidden";
        r.action = pr->action;
        r.resource = pr->res;
        r.resource_audit = pr->res_audit;
        r.rule_file = deny->file;
        r.rule_line = deny->line;
        r.detail = "an absolute limit of the policy forbids it";
        int rc = add_reason(x, &r);
        if (rc != 0)
            return rc;
        any = true;
    }
    return any ? decide(x, "deny", "forbidden") : STEP_NEXT;
}

/* Judges one pair against a list of blocks: the first allow and the first
 * deny (any deny settles it). */
static set_result judge(const cpl_block *const *blocks, size_t n,
                        const eval_pair *pr)
{
    set_result out = {NULL, NULL};
    for (size_t i = 0; i < n; i++) {
        const cpl_rule *allow = NULL;
        const cpl_rule *deny = NULL;
        block_match(blocks[i], pr->action, pr->alen, pr->res, pr->rlen, &allow,
                    &deny);
        if (deny != NULL) {
            out.deny = deny;
            return out;
        }
        if (out.allow == NULL)
            out.allow = allow;
    }
    return out;
}

static bool passed(const set_result *r)
{
    return r->allow != NULL && r->deny == NULL;
}

/* The name of the block a rule sits in, for messages. */
static const char *block_name(const cpl_rule *r)
{
    if (r->block == NULL || r->block->name == NULL)
        return "*";
    return r->block->name;
}

/* The user's roles: bound by `user "<sub>"`, `user *`, and `group "<g>"`
 * for every value of the groups and roles claims. */
static int resolve_roles(eval_ctx *x)
{
    const trine_policy *p = x->p;
    const cpl_binding *bind[2] = {
        strmap_getn(&p->users, x->c.sub, x->c.sub_len), p->user_any};
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; bind[i] != NULL && k < bind[i]->nroles; k++) {
            if (bv_add(&x->roles, bind[i]->roles[k]) != 0)
                return TRINE_ENOMEM;
        }
    }
    const json_t *claims_src[2] = {x->c.groups, x->c.roles};
    for (size_t i = 0; i < 2; i++) {
        claim_iter it;
        const char *g;
        size_t glen;
        claims_iter_init(&it, claims_src[i], false);
        while (claims_iter_next(&it, &g, &glen)) {
            const cpl_binding *b = strmap_getn(&p->groups, g, glen);
            for (size_t k = 0; b != NULL && k < b->nroles; k++) {
                if (bv_add(&x->roles, b->roles[k]) != 0)
                    return TRINE_ENOMEM;
            }
        }
    }
    return 0;
}

/* The scope blocks the token's scopes name, in token order, each once. */
static int resolve_scopes(eval_ctx *x)
{
    claim_iter it;
    const char *s;
    size_t len;
    claims_iter_init(&it, x->c.scopes, true);
    while (claims_iter_next(&it, &s, &len)) {
        if (bv_add(&x->scopes, strmap_getn(&x->p->scope_by_name, s, len)) != 0)
            return TRINE_ENOMEM;
    }
    return 0;
}

/* Judges U for every pair. Returns the number of failing pairs, or a
 * negative TRINE_E* code. */
static int judge_user(eval_ctx *x)
{
    trine_decision *d = x->d;
    int fails = 0;
    for (size_t i = 0; i < x->npairs; i++) {
        const eval_pair *pr = &x->pairs[i];
        set_result r = judge(x->roles.v, x->roles.n, pr);
        if (passed(&r)) {
            if (dec_add_match(d, "user", NULL, r.allow->file, r.allow->line) !=
                0)
                return TRINE_ENOMEM;
            continue;
        }
        dec_reason e = {0};
        e.code = "user_denied";
        e.set = "user";
        e.action = pr->action;
        e.resource = pr->res;
        e.resource_audit = pr->res_audit;
        if (r.deny != NULL) {
            e.rule_file = r.deny->file;
            e.rule_line = r.deny->line;
            e.detail = dec_printf(d, "denied by role %s", block_name(r.deny));
        } else if (x->roles.n == 0) {
            e.detail = dec_printf(d, "user %s has no role", d->user);
        } else {
            e.detail = dec_printf(d, "no role of user %s allows it", d->user);
        }
        if (e.detail == NULL || add_reason(x, &e) != 0)
            return TRINE_ENOMEM;
        fails++;
    }
    return fails;
}

/* One hop of A: the token's agent (actor < 0) or an actor of the chain. */
static int judge_hop(eval_ctx *x, const char *id, const char *why,
                     bool is_actor, size_t depth)
{
    trine_decision *d = x->d;
    const trine_policy *p = x->p;
    const cpl_block *blocks[2];
    size_t nb = 0;
    if (id != NULL) {
        const cpl_block *named = strmap_get(&p->agents, id);
        if (named != NULL)
            blocks[nb++] = named;
        if (p->agent_any != NULL)
            blocks[nb++] = p->agent_any;
    }
    int fails = 0;
    for (size_t i = 0; i < x->npairs; i++) {
        const eval_pair *pr = &x->pairs[i];
        set_result r = {NULL, NULL};
        if (id != NULL)
            r = judge(blocks, nb, pr);
        if (passed(&r)) {
            if (dec_add_match(d, "agent", is_actor ? id : NULL, r.allow->file,
                              r.allow->line) != 0)
                return TRINE_ENOMEM;
            continue;
        }
        dec_reason e = {0};
        e.code = "agent_denied";
        e.set = "agent";
        e.action = pr->action;
        e.resource = pr->res;
        e.resource_audit = pr->res_audit;
        e.agent = id;
        const char *who = is_actor ? "actor" : "agent";
        /* A prior actor (full_chain) is named with its place in the chain,
         * so an actor that appears twice fails twice, distinctly. */
        const char *name = id;
        if (id != NULL && is_actor && depth > 0) {
            name = dec_printf(d, "%s (actor %zu of the delegation chain)", id,
                              depth + 1);
            if (name == NULL)
                return TRINE_ENOMEM;
        }
        if (id == NULL && !is_actor) {
            e.detail = x->c.agent_problem;
        } else if (id == NULL) {
            e.detail = dec_printf(d, "actor %zu of the delegation chain: %s",
                                  depth + 1, why);
        } else if (r.deny != NULL) {
            e.rule_file = r.deny->file;
            e.rule_line = r.deny->line;
            e.detail = dec_printf(d, "%s %s is denied by agent block %s", who,
                                  name, block_name(r.deny));
        } else {
            e.detail = dec_printf(d, "no agent block allows %s %s to do it",
                                  who, name);
        }
        if (e.detail == NULL || add_reason(x, &e) != 0)
            return TRINE_ENOMEM;
        fails++;
    }
    return fails;
}

/* Judges A: the agent, then the current actor (current_actor) or every
 * actor (full_chain). */
static int judge_agents(eval_ctx *x)
{
    trine_decision *d = x->d;
    int fails = judge_hop(x, d->agent, NULL, false, 0);
    if (fails < 0)
        return fails;
    size_t n = d->nactors;
    bool full = x->server != NULL && x->server->full_chain;
    if (!full && n > 1)
        n = 1;
    for (size_t i = 0; i < n; i++) {
        int f = judge_hop(x, d->actors[i].id, d->actors[i].why, true, i);
        if (f < 0)
            return f;
        fails += f;
    }
    if (full && d->chain_truncated) {
        int f = judge_hop(x, NULL, "the chain is deeper than trine follows",
                          true, CLAIMS_MAX_ACTORS);
        if (f < 0)
            return f;
        fails += f;
    }
    return fails;
}

/* Works out required_scopes and www_authenticate for a deny where only S
 * fell short. sres holds S's result for every pair. */
static int step_up(eval_ctx *x, const set_result *sres)
{
    /* The pairs to cover: every pair that failed S (DESIGN §2.4 step 5),
     * a pair that a held scope denies included. Which scope blocks grant a
     * pair is judged for each block on its own (§2.5 "Step-up"), so such a
     * pair is covered by the blocks that grant it on their own, which may
     * be held ones (the header then names them once). Only pairs that no
     * scope block grants are left out, by the cover itself. */
    size_t nf = 0;
    size_t *fail = malloc((x->npairs + 1) * sizeof *fail);
    if (fail == NULL)
        return TRINE_ENOMEM;
    /* The pairs are a set (needs_fill keeps each once), so none weighs
     * twice in the greedy choice. */
    for (size_t i = 0; i < x->npairs; i++) {
        if (!passed(&sres[i]))
            fail[nf++] = i;
    }
    const char *rm = x->server != NULL ? x->server->resource_metadata : NULL;
    int rc = cover_step_up(x->d, x->p, x->pairs, x->npairs, fail, nf,
                           x->scopes.v, x->scopes.n, rm);
    free(fail);
    return rc;
}

/* Step 5: U, S and A for every needed pair. */
static int step_sets(eval_ctx *x)
{
    trine_decision *d = x->d;
    int rc = resolve_roles(x);
    if (rc == 0)
        rc = resolve_scopes(x);
    if (rc != 0)
        return rc;

    int ufail = judge_user(x);
    if (ufail < 0)
        return ufail;

    /* S is judged now (so its matched rules come before A's), and its
     * reasons are listed after A's, in the order of the primary reason. */
    set_result sres_inline[EVAL_INLINE_PAIRS];
    set_result *sres = sres_inline;
    if (x->npairs > EVAL_INLINE_PAIRS) {
        sres = dec_alloc(d, x->npairs * sizeof *sres);
        if (sres == NULL)
            return TRINE_ENOMEM;
    }
    int sfail = 0;
    for (size_t i = 0; i < x->npairs; i++) {
        sres[i] = judge(x->scopes.v, x->scopes.n, &x->pairs[i]);
        if (!passed(&sres[i])) {
            sfail++;
            continue;
        }
        if (dec_add_match(d, "scope", NULL, sres[i].allow->file,
                          sres[i].allow->line) != 0)
            return TRINE_ENOMEM;
    }

    int afail = judge_agents(x);
    if (afail < 0)
        return afail;

    for (size_t i = 0; i < x->npairs; i++) {
        if (passed(&sres[i]))
            continue;
        const eval_pair *pr = &x->pairs[i];
        dec_reason e = {0};
        e.code = "scope_missing";
        e.set = "scope";
        e.action = pr->action;
        e.resource = pr->res;
        e.resource_audit = pr->res_audit;
        if (sres[i].deny != NULL) {
            e.rule_file = sres[i].deny->file;
            e.rule_line = sres[i].deny->line;
            e.detail =
                dec_printf(d, "denied by scope %s", block_name(sres[i].deny));
        } else {
            e.detail = "no scope of the token allows it";
        }
        if (e.detail == NULL || add_reason(x, &e) != 0)
            return TRINE_ENOMEM;
    }

    if (ufail > 0)
        return decide(x, "deny", "user_denied");
    if (afail > 0)
        return decide(x, "deny", "agent_denied");
    if (sfail > 0) {
        rc = step_up(x, sres);
        return rc != 0 ? rc : decide(x, "deny", "scope_missing");
    }
    return STEP_NEXT;
}

/* Step 6: consent. The consent store lives in the audit database, so a
 * lookup that fails means the log is unavailable: deny. */
static int step_consent(eval_ctx *x)
{
    const cpl_tool *t = x->tool;
    trine_decision *d = x->d;
    if (t->consent == TRINE_CONSENT_NONE)
        return STEP_NEXT;

    const char *session =
        d->session != NULL && d->session[0] != '\0' ? d->session : NULL;
    int found = 0;
    int64_t grant = -1;
    /* A session grant needs the request's own non-empty session. */
    bool can_find = t->consent != TRINE_CONSENT_SESSION || session != NULL;
    if (can_find && x->opts != NULL && x->opts->consent != NULL) {
        /* Only an `always` grant is bound to the arguments; hashing them
         * for the other modes would cost more than the rest of the check. */
        const char *hash = NULL;
        if (t->consent == TRINE_CONSENT_ALWAYS) {
            int rc = dec_args_hash(d);
            if (rc == TRINE_ENOMEM)
                return rc;
            if (rc != 0)
                return deny_one(x, "argument_invalid", NULL, 0,
                                "the arguments cannot be written as "
                                "canonical JSON");
            hash = d->args_hash;
        }
        trine_consent_query q = {.user = d->user,
                                 .agent = d->agent,
                                 .server = d->server,
                                 .tool = d->tool,
                                 .mode = t->consent,
                                 .session = session,
                                 .args_hash = hash,
                                 .now_ms = x->now_ms};
        found = x->opts->consent(x->opts->consent_ctx, &q, &grant);
    }
    if (found < 0) {
        return deny_one(x, "audit_unavailable", NULL, 0,
                        "the consent store (in the audit database) could "
                        "not be read");
    }
    if (found > 0) {
        d->grant_id = grant;
        return STEP_NEXT;
    }

    tmpl_vars vars = {d->agent, d->user, d->server, d->tool};
    const cpl_template *pt = t->has_prompt ? &t->prompt : NULL;
    int rc = tmpl_fill_prompt(d, pt, x->req.args, &vars, false, &d->prompt,
                              &d->prompt_len);
    if (rc == 0 && pt != NULL && pt->any_redacted) {
        rc = tmpl_fill_prompt(d, pt, x->req.args, &vars, true, &d->prompt_audit,
                              &d->prompt_audit_len);
        d->has_redacted = true;
    }
    if (rc != 0)
        return rc;
    dec_reason r = {0};
    r.code = "consent_required";
    r.rule_file = t->consent_file;
    r.rule_line = t->consent_line;
    rc = add_reason(x, &r);
    return rc != 0 ? rc : decide(x, "consent_required", "consent_required");
}

/* Copies the request's facts into the decision. */
static int record_facts(eval_ctx *x)
{
    trine_decision *d = x->d;
    const eval_req *r = &x->req;
    const claims *c = &x->c;
    d->server = dec_strndup(d, r->server, r->server_len);
    d->tool = dec_strndup(d, r->tool, r->tool_len);
    if (d->server == NULL || d->tool == NULL)
        return TRINE_ENOMEM;
    if (r->session != NULL) {
        d->session = dec_strndup(d, r->session, r->session_len);
        if (d->session == NULL)
            return TRINE_ENOMEM;
    }
    if (c->sub != NULL) {
        d->user = dec_strndup(d, c->sub, c->sub_len);
        if (d->user == NULL)
            return TRINE_ENOMEM;
    }
    if (c->agent != NULL) {
        d->agent = dec_strndup(d, c->agent, c->agent_len);
        if (d->agent == NULL)
            return TRINE_ENOMEM;
    }
    if (r->args != NULL)
        d->args = json_incref((json_t *)r->args);
    d->has_chain = c->has_act || c->truncated;
    d->chain_truncated = c->truncated;
    if (c->nactors > 0) {
        d->actors = dec_alloc(d, c->nactors * sizeof *d->actors);
        if (d->actors == NULL)
            return TRINE_ENOMEM;
        for (size_t i = 0; i < c->nactors; i++) {
            const claim_actor *a = &c->actors[i];
            d->actors[i].why = a->why;
            d->actors[i].id = NULL;
            if (a->id != NULL) {
                d->actors[i].id = dec_strndup(d, a->id, a->len);
                if (d->actors[i].id == NULL)
                    return TRINE_ENOMEM;
            }
        }
        d->nactors = c->nactors;
    }
    return 0;
}

static int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the steps in order; the first that decides ends the check. */
static int run_steps(eval_ctx *x)
{
    static int (*const steps[])(eval_ctx *) = {
        step_token, step_tool, step_args, step_forbid, step_sets, step_consent};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc = steps[i](x);
        if (rc != STEP_NEXT)
            return rc < 0 ? rc : 0;
    }
    /* Step 7: allow. */
    dec_reason r = {0};
    r.code = "allow";
    r.rule_file = x->tool->file;
    r.rule_line = x->tool->line;
    int rc = add_reason(x, &r);
    if (rc != 0)
        return rc;
    decide(x, "allow", "allow");
    return 0;
}

int trine_check(const trine_policy *p, const json_t *params,
                const trine_check_opts *opts, trine_decision **out, char *err,
                size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return TRINE_EINVAL;
    *out = NULL;
    if (p == NULL)
        return TRINE_EINVAL;

    eval_ctx x;
    x.p = p;
    x.opts = opts;
    x.now_ms = opts != NULL ? opts->now_ms : clock_now_ms();
    x.server = NULL;
    x.tool = NULL;
    x.pairs = x.pairs_inline;
    x.npairs = 0;
    int rc = eval_read_request(params, &x.req, err, errlen);
    if (rc != 0)
        return rc;
    claims_read(&x.c, x.req.token);
    x.d = dec_new(p);
    if (x.d == NULL) {
        eval_req_error(err, errlen, "out of memory");
        return TRINE_ENOMEM;
    }
    bv_init(&x.roles);
    bv_init(&x.scopes);
    x.server = strmap_getn(&p->servers, x.req.server, x.req.server_len);
    /* The tool's redact paths apply to the audited arguments whatever step
     * decides: a check denied for its token must not log what the policy
     * hides. */
    x.d->tool_blk = lookup_tool(&x);

    /* A regex match cut short by memory would decide as a limit does (fail
     * closed); a decision must not rest on that, so it is an error. */
    (void)match_take_nomem();
    rc = record_facts(&x);
    if (rc == 0)
        rc = run_steps(&x);
    if (match_take_nomem() && rc == 0)
        rc = TRINE_ENOMEM;
    bv_free(&x.roles);
    bv_free(&x.scopes);
    if (rc != 0) {
        trine_decision_free(x.d);
        if (rc == TRINE_ENOMEM)
            eval_req_error(err, errlen, "out of memory");
        return rc;
    }
    *out = x.d;
    return 0;
}
