/*
 * test_compile.c - the compiler (compile.c, compile_tool.c): blocks merged
 * across repeats and files, every load error with its exact position and
 * message, the compiled fields the evaluator reads, and the action index
 * that block_match walks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads up to three named sources; returns the load's status. */
static int load(trine_diag *d, trine_policy **p, const char *n1, const char *s1,
                const char *n2, const char *s2, const char *n3, const char *s3)
{
    trine_source src[3] = {{n1, s1, s1 ? strlen(s1) : 0},
                           {n2, s2, s2 ? strlen(s2) : 0},
                           {n3, s3, s3 ? strlen(s3) : 0}};
    size_t n = n3 ? 3 : n2 ? 2 : 1;
    return trine_policy_load_sources(src, n, d, p);
}

static trine_policy *load_ok(const char *text)
{
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int rc = load(d, &p, "a.trine", text, NULL, NULL, NULL, NULL);
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(trine_diag_count(d), 0);
    trine_diag_free(d);
    return p;
}

static void assert_diag(const trine_diag *d, size_t i, const char *file,
                        unsigned line, unsigned col, const char *msg)
{
    const trine_diag_item *it = trine_diag_at(d, i);
    assert_non_null(it);
    assert_int_equal(it->level, TRINE_DIAG_ERROR);
    assert_string_equal(it->file, file);
    assert_int_equal(it->line, line);
    assert_int_equal(it->col, col);
    assert_string_equal(it->message, msg);
}

/* Loads one source that must fail with exactly one error. */
static void expect_one_error(const char *text, unsigned line, unsigned col,
                             const char *msg)
{
    trine_diag *d = trine_diag_new();
    trine_policy *p = (trine_policy *)1;
    assert_int_equal(load(d, &p, "a.trine", text, NULL, NULL, NULL, NULL),
                     TRINE_EPOLICY);
    assert_null(p);
    if (trine_diag_count(d) != 1)
        trine_diag_print(d, stderr);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(d, 0, "a.trine", line, col, msg);
    trine_diag_free(d);
}

static const cpl_block *scope(const trine_policy *p, const char *name)
{
    return strmap_get(&p->scope_by_name, name);
}

/* block_match with string arguments; returns the lines of the first allow
 * and deny (0 when none). */
static void bm(const cpl_block *b, const char *action, const char *res,
               unsigned *allow_line, unsigned *deny_line)
{
    const cpl_rule *a, *d;
    block_match(b, action, strlen(action), res, strlen(res), &a, &d);
    *allow_line = a ? a->line : 0;
    *deny_line = d ? d->line : 0;
}

/* ---- Merging ------------------------------------------------------------ */

static const char *merge_a =
    "scope \"s\" { allow a.read on \"x:*\" }\n"          /* 1 */
    "role r1 { allow a.read on \"*\" }\n"                /* 2 */
    "scope \"t\" { allow b.read on \"*\" }\n"            /* 3 */
    "scope \"s\" { deny a.read on \"x:secret\" }\n"      /* 4 */
    "agent * { deny a.delete on \"*\" }\n"               /* 5 */
    "user \"alice\" { roles r1 }\n"                      /* 6 */
    "forbid a.nuke on \"*\"\n"                           /* 7 */
    "server \"gh\" { audience \"A\" audience \"B\" }\n"; /* 8 */

static const char *merge_b =
    "role r2 { allow b.* on \"*\" }\n"                  /* 1 */
    "scope \"s\" { allow c.read on \"y:*\" }\n"         /* 2 */
    "agent * { allow * on \"*\" }\n"                    /* 3 */
    "user \"alice\" { roles r2, r1 }\n"                 /* 4 */
    "user \"alice\" { roles r2 }\n"                     /* 5 */
    "forbid b.nuke on \"*\"\n"                          /* 6 */
    "server \"gh\" { audience \"B\" audience \"C\" }\n" /* 7 */
    "group \"eng\" { roles r2 }\n";                     /* 8 */

static void test_merge_blocks(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    assert_int_equal(
        load(d, &p, "a.trine", merge_a, "b.trine", merge_b, NULL, NULL), 0);
    assert_int_equal(trine_diag_count(d), 0);

    /* Scopes keep their declaration order; repeats merge into one block
     * whose rules stay in declaration order across files. */
    assert_int_equal(p->nscopes, 2);
    assert_string_equal(p->scopes[0]->name, "s");
    assert_string_equal(p->scopes[1]->name, "t");
    assert_int_equal(p->scopes[0]->order, 0);
    assert_int_equal(p->scopes[1]->order, 1);
    const cpl_block *s = scope(p, "s");
    assert_ptr_equal(s, p->scopes[0]);
    assert_int_equal(s->kind, BLK_SCOPE);
    assert_string_equal(s->file, "a.trine");
    assert_int_equal(s->line, 1);
    assert_int_equal(s->col, 1);
    assert_int_equal(s->nrules, 3);
    assert_string_equal(s->rules[0]->file, "a.trine");
    assert_int_equal(s->rules[0]->line, 1);
    assert_int_equal(s->rules[0]->col, 13);
    assert_false(s->rules[0]->deny);
    assert_int_equal(s->rules[1]->line, 4);
    assert_true(s->rules[1]->deny);
    assert_string_equal(s->rules[2]->file, "b.trine");
    assert_int_equal(s->rules[2]->line, 2);
    assert_ptr_equal(s->rules[2]->block, s);

    /* Roles, agents, users and groups. */
    assert_int_equal(p->nroles, 2);
    assert_string_equal(p->role_list[0]->name, "r1");
    assert_string_equal(p->role_list[1]->name, "r2");
    assert_ptr_equal(strmap_get(&p->roles, "r2"), p->role_list[1]);
    assert_non_null(p->agent_any);
    assert_null(p->agent_any->name);
    assert_int_equal(p->agent_any->nrules, 2);
    assert_int_equal(p->agent_any->kind, BLK_AGENT);
    const cpl_binding *alice = strmap_get(&p->users, "alice");
    assert_non_null(alice);
    assert_string_equal(alice->name, "alice");
    assert_int_equal(alice->nroles, 2);
    assert_string_equal(alice->roles[0]->name, "r1");
    assert_string_equal(alice->roles[1]->name, "r2");
    assert_null(p->user_any);
    const cpl_binding *eng = strmap_get(&p->groups, "eng");
    assert_non_null(eng);
    assert_int_equal(eng->nroles, 1);
    assert_string_equal(eng->file, "b.trine");
    assert_int_equal(eng->line, 8);

    /* Every forbid is one rule of one block. */
    assert_non_null(p->forbids);
    assert_int_equal(p->forbids->kind, BLK_FORBID);
    assert_int_equal(p->forbids->nrules, 2);
    assert_true(p->forbids->rules[0]->deny);
    assert_string_equal(p->forbids->rules[1]->file, "b.trine");

    /* Audiences merged without duplicates. */
    const cpl_server *gh = strmap_get(&p->servers, "gh");
    assert_non_null(gh);
    assert_true(gh->declared);
    assert_int_equal(gh->naudiences, 3);
    assert_string_equal(gh->audiences[0], "A");
    assert_string_equal(gh->audiences[1], "B");
    assert_string_equal(gh->audiences[2], "C");
    assert_null(gh->resource_metadata);
    assert_false(gh->full_chain);

    const policy_counts *n = &p->counts;
    assert_int_equal(n->scope, 2);
    assert_int_equal(n->role, 2);
    assert_int_equal(n->user, 1);
    assert_int_equal(n->group, 1);
    assert_int_equal(n->agent, 1);
    assert_int_equal(n->server, 1);
    assert_int_equal(n->tool, 0);
    assert_int_equal(n->forbid, 2);
    assert_int_equal(n->rules, 10);
    assert_int_equal(p->nfiles, 2);
    assert_string_equal(p->files[0], "a.trine");
    assert_string_equal(p->files[1], "b.trine");
    trine_policy_release(p);
    trine_diag_free(d);
}

static void test_actions_and_patterns(void **state)
{
    (void)state;
    trine_policy *p = load_ok(
        "agent \"x\" { allow issues.create, issues.*, * on \"a\", \"b*\", "
        "/c+/i }\n");
    const cpl_block *b = strmap_get(&p->agents, "x");
    assert_non_null(b);
    const cpl_rule *r = b->rules[0];
    assert_int_equal(r->nactions, 3);
    assert_int_equal(r->actions[0].kind, ACT_EXACT);
    assert_string_equal(r->actions[0].text, "issues.create");
    assert_int_equal(r->actions[0].len, 13);
    assert_int_equal(r->actions[1].kind, ACT_PREFIX);
    assert_string_equal(r->actions[1].text, "issues.");
    assert_int_equal(r->actions[1].len, 7);
    assert_int_equal(r->actions[2].kind, ACT_ANY);
    assert_int_equal(r->npatterns, 3);
    assert_int_equal(r->patterns[0].kind, PAT_GLOB);
    assert_true(r->patterns[0].literal);
    assert_false(r->patterns[1].literal);
    assert_int_equal(r->patterns[2].kind, PAT_REGEX);
    assert_string_equal(r->patterns[2].text, "c+");
    assert_non_null(r->patterns[2].re);
    assert_true(pattern_match(&r->patterns[2], "CcC", 3));
    trine_policy_release(p);
}

static const char *tool_src =
    "server \"gh\" {\n"                                                 /* 1 */
    "  resource_metadata \"https://m\"\n"                               /* 2 */
    "  delegation full_chain\n"                                         /* 3 */
    "}\n"                                                               /* 4 */
    "scope \"w\" { allow issues.* on \"*\" }\n"                         /* 5 */
    "tool \"gh\" \"create\" {\n"                                        /* 6 */
    "  needs issues.create, issues.label on \"repo:{owner}/{repo}\"\n"  /* 7 */
    "  arg owner matches /[a-z\\/]+/i\n"                                /* 8 */
    "  arg title max_length 256\n"                                      /* 9 */
    "  arg opts.limit < 10.5\n"                                         /* 10 */
    "  arg kind in [\"a\", 1, true, null]\n"                            /* 11 */
    "  arg title required\n"                                            /* 12 */
    "  consent once for 7d \"Let {agent} file in {owner}/{path...}\"\n" /* 13 */
    "  redact body, opts.secret\n"                                      /* 14 */
    "}\n"                                                               /* 15 */
    "tool \"gh\" \"create\" {\n"                                        /* 16 */
    "  needs issues.read on \"{path...}\"\n"                            /* 17 */
    "  consent once for 7d \"Let {agent} file in {owner}/{path...}\"\n" /* 18 */
    "  redact body\n"                                                   /* 19 */
    "}\n"                                                               /* 20 */
    "tool \"gh\" * { needs issues.read on \"x\" }\n"                    /* 21 */
    "tool \"gh\" \"alpha\" { needs issues.read on \"\" }\n"             /* 22 */
    "tool \"other\" \"t\" { needs issues.read on \"x\" }\n";            /* 23 */

static void test_tools(void **state)
{
    (void)state;
    trine_policy *p = load_ok(tool_src);
    const cpl_server *gh = strmap_get(&p->servers, "gh");
    assert_non_null(gh);
    assert_string_equal(gh->resource_metadata, "https://m");
    assert_true(gh->full_chain);
    assert_int_equal(gh->naudiences, 0);
    assert_int_equal(gh->ntools, 2);
    assert_string_equal(gh->tool_list[0]->name, "create");
    assert_string_equal(gh->tool_list[1]->name, "alpha");
    assert_non_null(gh->wildcard);
    assert_null(gh->wildcard->name);
    assert_int_equal(gh->wildcard->line, 21);

    const cpl_tool *t = strmap_get(&gh->tools, "create");
    assert_ptr_equal(t, gh->tool_list[0]);
    assert_string_equal(t->server, "gh");
    assert_string_equal(t->file, "a.trine");
    assert_int_equal(t->line, 6);
    assert_int_equal(t->col, 1);

    /* needs from both blocks, in order, with parsed templates. */
    assert_int_equal(t->nneeds, 2);
    const cpl_needs *nd = &t->needs[0];
    assert_int_equal(nd->nactions, 2);
    assert_string_equal(nd->actions[0], "issues.create");
    assert_int_equal(nd->action_lens[0], 13);
    assert_string_equal(nd->actions[1], "issues.label");
    assert_int_equal(nd->line, 7);
    assert_int_equal(nd->col, 3);
    assert_string_equal(nd->tmpl.src, "repo:{owner}/{repo}");
    assert_int_equal(nd->tmpl.nparts, 4);
    assert_false(nd->tmpl.parts[0].is_ph);
    assert_string_equal(nd->tmpl.parts[0].text, "repo:");
    assert_int_equal(nd->tmpl.parts[0].len, 5);
    assert_true(nd->tmpl.parts[1].is_ph);
    assert_string_equal(nd->tmpl.parts[1].text, "owner");
    assert_int_equal(nd->tmpl.parts[1].npath, 1);
    assert_string_equal(nd->tmpl.parts[1].path[0], "owner");
    assert_false(nd->tmpl.parts[1].rest);
    assert_string_equal(nd->tmpl.parts[2].text, "/");
    assert_string_equal(nd->tmpl.parts[3].text, "repo");
    nd = &t->needs[1];
    assert_int_equal(nd->line, 17);
    assert_int_equal(nd->tmpl.nparts, 1);
    assert_true(nd->tmpl.parts[0].rest);
    assert_string_equal(nd->tmpl.parts[0].text, "path");

    /* Arguments, with the constraint text reasons quote. */
    assert_int_equal(t->nargs, 5);
    const cpl_arg *a = &t->args[0];
    assert_string_equal(a->path_text, "owner");
    assert_int_equal(a->kind, AST_C_MATCHES);
    assert_string_equal(a->text, "matches /[a-z\\/]+/i");
    assert_true(pattern_match(&a->regex, "AB/c", 4));
    assert_false(pattern_match(&a->regex, "AB/c1", 5));
    assert_int_equal(a->line, 8);
    assert_string_equal(t->args[1].text, "max_length 256");
    assert_true(t->args[1].number.is_int);
    assert_true(t->args[1].number.i == 256);
    a = &t->args[2];
    assert_string_equal(a->path_text, "opts.limit");
    assert_int_equal(a->npath, 2);
    assert_string_equal(a->path[0], "opts");
    assert_string_equal(a->path[1], "limit");
    assert_string_equal(a->text, "< 10.5");
    a = &t->args[3];
    assert_string_equal(a->text, "in [\"a\", 1, true, null]");
    assert_int_equal(a->nliterals, 4);
    assert_true(json_is_string(a->literals[0]));
    assert_true(json_is_null(a->literals[3]));
    assert_string_equal(t->args[4].text, "required");
    assert_int_equal(t->args[4].kind, AST_C_REQUIRED);

    /* The same consent twice is one consent. */
    assert_int_equal(t->consent, TRINE_CONSENT_ONCE);
    assert_int_equal(t->consent_duration_s, 7 * 86400);
    assert_true(t->has_prompt);
    assert_string_equal(t->consent_file, "a.trine");
    assert_int_equal(t->consent_line, 13);
    assert_int_equal(t->prompt.nparts, 6);
    assert_string_equal(t->prompt.parts[0].text, "Let ");
    assert_true(t->prompt.parts[1].is_ph);
    assert_string_equal(t->prompt.parts[1].text, "agent");
    assert_true(t->prompt.parts[5].rest);

    /* Redacted paths, merged without duplicates. */
    assert_int_equal(t->nredacts, 2);
    assert_string_equal(t->redacts[0].text, "body");
    assert_int_equal(t->redacts[1].nseg, 2);
    assert_string_equal(t->redacts[1].seg[1], "secret");

    /* A tool without consent; an empty template. */
    const cpl_tool *alpha = gh->tool_list[1];
    assert_int_equal(alpha->consent, TRINE_CONSENT_NONE);
    assert_int_equal(alpha->consent_duration_s, -1);
    assert_false(alpha->has_prompt);
    assert_int_equal(alpha->prompt.nparts, 0);
    assert_int_equal(alpha->needs[0].tmpl.nparts, 0);

    /* A tool for a server without a server block. */
    const cpl_server *other = strmap_get(&p->servers, "other");
    assert_non_null(other);
    assert_false(other->declared);
    assert_int_equal(other->ntools, 1);
    assert_int_equal(other->line, 23);
    assert_int_equal(p->nservers, 2);
    assert_ptr_equal(p->server_list[0], gh);
    assert_int_equal(p->counts.server, 1);
    assert_int_equal(p->counts.tool, 4);
    trine_policy_release(p);
}

static void test_consent_modes(void **state)
{
    (void)state;
    trine_policy *p = load_ok(
        "tool \"s\" \"a\" { needs x on \"r\" consent always }\n"
        "tool \"s\" \"b\" { needs x on \"r\" consent session \"ok?\" }\n"
        "tool \"s\" \"c\" { needs x on \"r\" consent once }\n");
    const cpl_server *s = strmap_get(&p->servers, "s");
    const cpl_tool *a = strmap_get(&s->tools, "a");
    const cpl_tool *b = strmap_get(&s->tools, "b");
    const cpl_tool *c = strmap_get(&s->tools, "c");
    assert_int_equal(a->consent, TRINE_CONSENT_ALWAYS);
    assert_false(a->has_prompt);
    assert_int_equal(a->consent_duration_s, -1);
    assert_int_equal(b->consent, TRINE_CONSENT_SESSION);
    assert_int_equal(b->prompt.nparts, 1);
    assert_string_equal(b->prompt.parts[0].text, "ok?");
    assert_int_equal(c->consent, TRINE_CONSENT_ONCE);
    assert_int_equal(c->consent_duration_s, -1);
    trine_policy_release(p);
}

/* ---- Load errors --------------------------------------------------------- */

static void test_error_undefined_role(void **state)
{
    (void)state;
    expect_one_error("role maintainer { allow a on \"*\" }\n"
                     "user \"alice\" { roles maintainer, mantainer }\n",
                     2, 34,
                     "role \"mantainer\" is not defined by any role block");
    expect_one_error("group \"g\" { roles reader }\n", 1, 19,
                     "role \"reader\" is not defined by any role block");
}

static void test_error_tool_without_needs(void **state)
{
    (void)state;
    expect_one_error("tool \"gh\" \"x\" { arg a required }\n"
                     "tool \"gh\" \"x\" { redact a }\n",
                     1, 1,
                     "tool \"gh\" \"x\" has no needs: say which actions it "
                     "needs with \"needs ACTION on TEMPLATE\"");
    expect_one_error("\n  tool \"gh\" * { }\n", 2, 3,
                     "tool \"gh\" * has no needs: say which actions it "
                     "needs with \"needs ACTION on TEMPLATE\"");
}

static void test_needs_in_any_block(void **state)
{
    (void)state;
    /* needs may sit in any block of a merged tool. */
    trine_policy *p = load_ok("tool \"gh\" \"x\" { arg a required }\n"
                              "tool \"gh\" \"x\" { needs a on \"r\" }\n");
    trine_policy_release(p);
}

static void test_error_consent_conflict(void **state)
{
    (void)state;
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\"\n"
                     "  consent session }\n"
                     "tool \"gh\" \"x\" {\n"
                     "  consent always }\n",
                     4, 3,
                     "tool \"gh\" \"x\" has two different consents: this one "
                     "and the one at a.trine:2:3; a tool has one consent");
    /* Same mode, other prompt. */
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\" consent session "
                     "\"A\" consent session \"B\" }\n",
                     1, 52,
                     "tool \"gh\" \"x\" has two different consents: this one "
                     "and the one at a.trine:1:32; a tool has one consent");
    /* Same mode, other duration. */
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\" consent once for 1h"
                     " consent once for 2h }\n",
                     1, 52,
                     "tool \"gh\" \"x\" has two different consents: this one "
                     "and the one at a.trine:1:32; a tool has one consent");
    /* A prompt against none. */
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\" consent once"
                     " consent once \"p\" }\n",
                     1, 45,
                     "tool \"gh\" \"x\" has two different consents: this one "
                     "and the one at a.trine:1:32; a tool has one consent");
}

static void test_error_server_conflicts(void **state)
{
    (void)state;
    expect_one_error("server \"gh\" { resource_metadata \"A\" }\n"
                     "server \"gh\" { resource_metadata \"A\" }\n"
                     "server \"gh\" { resource_metadata \"B\" }\n",
                     3, 33,
                     "server \"gh\" has two resource_metadata values: \"B\" "
                     "here and \"A\" at a.trine:1:33");
    expect_one_error("server \"gh\" { delegation full_chain }\n"
                     "server \"gh\" { delegation full_chain\n"
                     "  delegation current_actor }\n",
                     3, 3,
                     "server \"gh\" has two delegation values: current_actor "
                     "here and full_chain at a.trine:1:15");
}

static void test_error_regex(void **state)
{
    (void)state;
    expect_one_error("scope \"s\" {\n  allow a on \"x\", /ab(c/ }\n", 2, 19,
                     "regex does not compile: missing closing parenthesis "
                     "(at offset 4)");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\"\n"
                     "  arg owner matches /a{2,1}/ }\n",
                     2, 21,
                     "regex does not compile: numbers out of order in {} "
                     "quantifier (at offset 5)");
}

static void test_error_templates(void **state)
{
    (void)state;
    expect_one_error("tool \"gh\" \"x\" {\n  needs a on \"repo:{owner\" }\n", 2,
                     14,
                     "invalid template \"repo:{owner\": \"{\" must open a "
                     "placeholder {name} or {name...}; a literal \"{\" is "
                     "not allowed");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"a}b\" }\n", 1, 28,
                     "invalid template \"a}b\": \"}\" closes no placeholder; "
                     "a literal \"}\" is not allowed");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"{a b}\" }\n", 1, 28,
                     "invalid template \"{a b}\": \"{\" must open a "
                     "placeholder {name} or {name...}; a literal \"{\" is "
                     "not allowed");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"{a..b}\" }\n", 1, 28,
                     "invalid template \"{a..b}\": \"{\" must open a "
                     "placeholder {name} or {name...}; a literal \"{\" is "
                     "not allowed");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"{}\" }\n", 1, 28,
                     "invalid template \"{}\": \"{\" must open a "
                     "placeholder {name} or {name...}; a literal \"{\" is "
                     "not allowed");
    expect_one_error("tool \"gh\" \"x\" { needs a on \"r\"\n"
                     "  consent always \"Delete {{owner}}?\" }\n",
                     2, 3,
                     "invalid prompt \"Delete {{owner}}?\": \"{\" must open a "
                     "placeholder {name} or {name...}; a literal \"{\" is "
                     "not allowed");
    /* Valid forms: dotted paths, rest, identifiers with '-' and digits. */
    trine_policy *p =
        load_ok("tool \"gh\" \"x\" { needs a on \"{o.p-2}/{_x...}{y}\" }\n");
    const cpl_server *s = strmap_get(&p->servers, "gh");
    const cpl_tool *t = strmap_get(&s->tools, "x");
    const cpl_template *tm = &t->needs[0].tmpl;
    assert_int_equal(tm->nparts, 4);
    assert_string_equal(tm->parts[0].text, "o.p-2");
    assert_int_equal(tm->parts[0].npath, 2);
    assert_string_equal(tm->parts[0].path[1], "p-2");
    assert_string_equal(tm->parts[2].text, "_x");
    assert_true(tm->parts[2].rest);
    assert_string_equal(tm->parts[3].text, "y");
    trine_policy_release(p);
}

/* Compiles one hand-built tool statement `tool "gh" "x" { needs a on "r"
 * arg t max_length N }`: the parser already refuses what is not a
 * non-negative integer, and the compiler checks again on its own. */
static int compile_max_length(ast_number n, trine_diag *d)
{
    char file[] = "h.trine";
    ast_action act = {"a", {file, 1, 23}};
    ast_needs needs = {&act, 1, "r", {file, 1, 28}, {file, 1, 17}};
    ast_arg arg = {0};
    arg.path = "t";
    arg.kind = AST_C_MAX_LENGTH;
    arg.number = n;
    arg.at = (ast_loc){file, 2, 3};
    ast_stmt st = {0};
    st.kind = AST_TOOL;
    st.at = (ast_loc){file, 1, 1};
    st.name = "gh";
    st.tool = "x";
    st.needs = &needs;
    st.nneeds = 1;
    st.args = &arg;
    st.nargs = 1;
    ast_file f = {file, &st, 1};
    ast_file *files[] = {&f};
    trine_source src = {file, "", 0};
    trine_policy *p = NULL;
    int rc = compile_policy(files, &src, 1, d, &p);
    if (rc == 0) {
        const cpl_server *s = strmap_get(&p->servers, "gh");
        const cpl_tool *t = strmap_get(&s->tools, "x");
        assert_string_equal(t->args[0].text, "max_length 0");
        trine_policy_release(p);
    }
    return rc;
}

static void test_error_max_length(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    ast_number minus_one = {.is_int = true, .i = -1, .d = -1};
    ast_number real = {.d = 2.5};
    ast_number huge = {.d = 1e300};
    ast_number zero = {.is_int = true};
    assert_int_equal(compile_max_length(minus_one, d), TRINE_EPOLICY);
    assert_int_equal(compile_max_length(real, d), TRINE_EPOLICY);
    assert_int_equal(compile_max_length(huge, d), TRINE_EPOLICY);
    assert_int_equal(compile_max_length(zero, d), 0);
    assert_int_equal(trine_diag_count(d), 3);
    assert_diag(d, 0, "h.trine", 2, 3,
                "max_length must be a non-negative integer, not -1");
    assert_diag(d, 1, "h.trine", 2, 3,
                "max_length must be a non-negative integer, not 2.5");
    assert_diag(d, 2, "h.trine", 2, 3,
                "max_length must be a non-negative integer, not 1e+300");
    trine_diag_free(d);
}

static void test_error_needs_wildcard(void **state)
{
    (void)state;
    expect_one_error("tool \"gh\" \"x\" { needs a.b, issues.* on \"r\" }\n", 1,
                     28,
                     "a tool needs exact actions, not the wildcard "
                     "\"issues.*\": list each action the tool performs");
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int rc = load(d, &p, "a.trine",
                  "user \"u\" { roles nope }\n"
                  "scope \"s\" { allow a on /(/ }\n",
                  "b.trine",
                  "tool \"gh\" \"x\" { arg a required }\n"
                  "server \"gh\" { delegation full_chain delegation "
                  "current_actor }\n",
                  NULL, NULL);
    assert_int_equal(rc, TRINE_EPOLICY);
    assert_null(p);
    assert_int_equal(trine_diag_count(d), 4);
    assert_diag(d, 0, "a.trine", 1, 18,
                "role \"nope\" is not defined by any role block");
    assert_diag(d, 1, "a.trine", 2, 24,
                "regex does not compile: missing closing parenthesis (at "
                "offset 1)");
    assert_diag(d, 2, "b.trine", 2, 37,
                "server \"gh\" has two delegation values: current_actor here "
                "and full_chain at b.trine:2:15");
    assert_diag(d, 3, "b.trine", 1, 1,
                "tool \"gh\" \"x\" has no needs: say which actions it needs "
                "with \"needs ACTION on TEMPLATE\"");
    trine_diag_free(d);
}

static void test_syntax_errors_all_files(void **state)
{
    (void)state;
    /* Every file is parsed, so syntax errors of every file are reported,
     * and nothing is compiled. */
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int rc = load(d, &p, "a.trine", "rol x { }\n", "b.trine",
                  "user \"u\" { roles nope }\n", "c.trine", "scope { }\n");
    assert_int_equal(rc, TRINE_EPOLICY);
    assert_null(p);
    assert_int_equal(trine_diag_count(d), 2);
    assert_string_equal(trine_diag_at(d, 0)->file, "a.trine");
    assert_int_equal(trine_diag_at(d, 0)->line, 1);
    assert_string_equal(trine_diag_at(d, 1)->file, "c.trine");
    assert_int_equal(trine_diag_at(d, 1)->line, 1);
    trine_diag_free(d);
}

static void test_file_names_are_base_names(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int rc = load(d, &p, "/etc/trine/policy/a.trine",
                  "user \"u\" { roles nope }\n", NULL, NULL, NULL, NULL);
    assert_int_equal(rc, TRINE_EPOLICY);
    assert_diag(d, 0, "a.trine", 1, 18,
                "role \"nope\" is not defined by any role block");
    trine_diag_free(d);
}

/* ---- The action index ---------------------------------------------------- */

static void test_block_match_order(void **state)
{
    (void)state;
    trine_policy *p = load_ok(
        "scope \"s\" {\n"                               /* 1 */
        "  allow issues.comment.edit on \"repo:a/*\"\n" /* 2 */
        "  deny  * on \"repo:a/secret\"\n"              /* 3 */
        "  allow issues.* on \"repo:*\"\n"              /* 4 */
        "  deny  issues.comment.* on \"repo:b/*\"\n"    /* 5 */
        "  allow * on \"repo:c/*\"\n"                   /* 6 */
        "  allow issues.comment.* on \"repo:*\"\n"      /* 7 */
        "  deny  issues.comment.edit on \"repo:*\"\n"   /* 8 */
        "  allow repo.read, repo.read on \"x\"\n"       /* 9 */
        "}\n"
        "scope \"s\" { allow issues.comment.edit on \"repo:z\" }\n"); /* 11 */
    const cpl_block *s = scope(p, "s");
    unsigned a, d;
    /* Exact, prefix and any buckets merged by declaration order. */
    bm(s, "issues.comment.edit", "repo:a/w", &a, &d);
    assert_int_equal(a, 2);
    assert_int_equal(d, 8);
    bm(s, "issues.comment.edit", "repo:a/secret", &a, &d);
    assert_int_equal(a, 2);
    assert_int_equal(d, 3);
    bm(s, "issues.comment.edit", "repo:b/w", &a, &d);
    assert_int_equal(a, 4);
    assert_int_equal(d, 5);
    bm(s, "issues.comment.edit", "repo:c/w", &a, &d);
    assert_int_equal(a, 4);
    assert_int_equal(d, 8);
    bm(s, "issues.comment.edit", "repo:z", &a, &d);
    assert_int_equal(a, 4);
    assert_int_equal(d, 8);
    bm(s, "issues.comment.edit", "other", &a, &d);
    assert_int_equal(a, 0);
    assert_int_equal(d, 0);
    /* issues.* does not cover issues itself. */
    bm(s, "issues", "repo:x", &a, &d);
    assert_int_equal(a, 0);
    assert_int_equal(d, 0);
    bm(s, "issues", "repo:c/x", &a, &d);
    assert_int_equal(a, 6);
    assert_int_equal(d, 0);
    bm(s, "issues.comment", "repo:b/x", &a, &d);
    assert_int_equal(a, 4);
    assert_int_equal(d, 0);
    bm(s, "issues.comment.delete", "repo:b/x", &a, &d);
    assert_int_equal(a, 4);
    assert_int_equal(d, 5);
    bm(s, "repo.read", "x", &a, &d);
    assert_int_equal(a, 9);
    assert_int_equal(d, 0);
    bm(s, "repo.readx", "x", &a, &d);
    assert_int_equal(a, 0);

    /* Only one side asked for; a NULL block matches nothing. */
    const cpl_rule *only;
    block_match(s, "repo.read", 9, "x", 1, &only, NULL);
    assert_int_equal(only->line, 9);
    block_match(NULL, "repo.read", 9, "x", 1, &only, NULL);
    assert_null(only);

    /* The index itself: one bucket per exact action and prefix, a rule
     * listed once even when it names an action twice. */
    const rule_list *l = strmap_get(&s->exact, "issues.comment.edit");
    assert_non_null(l);
    assert_int_equal(l->len, 3);
    assert_int_equal(l->rules[0]->line, 2);
    assert_int_equal(l->rules[1]->line, 8);
    assert_int_equal(l->rules[2]->line, 11);
    l = strmap_get(&s->exact, "repo.read");
    assert_int_equal(l->len, 1);
    l = strmap_get(&s->prefix, "issues.comment.");
    assert_int_equal(l->len, 2);
    l = strmap_get(&s->prefix, "issues.");
    assert_int_equal(l->len, 1);
    assert_null(strmap_get(&s->prefix, "issues"));
    assert_int_equal(s->any.len, 2);
    trine_policy_release(p);
}

static void test_block_match_regex_fails_closed(void **state)
{
    (void)state;
    /* A deny regex that cannot finish counts as matching (the stricter
     * answer); an allow regex that cannot finish does not. */
    trine_policy *p = load_ok("role r {\n"
                              "  allow a on /(\\w+)+b/\n"
                              "  deny  b on /(\\w+)+b/\n"
                              "}\n");
    const cpl_block *r = strmap_get(&p->roles, "r");
    char res[64];
    res[0] = 'b';
    memset(res + 1, 'a', 40);
    res[41] = '\0';
    unsigned a, d;
    bm(r, "a", res, &a, &d);
    assert_int_equal(a, 0);
    bm(r, "b", res, &a, &d);
    assert_int_equal(d, 3);
    bm(r, "b", "zz", &a, &d);
    assert_int_equal(d, 0);
    trine_policy_release(p);
}

static void test_index_scale_guard(void **state)
{
    (void)state;
    /* Not a timing test: 20,000 unrelated rules, and 2,000,000 lookups of
     * one action. With the index each lookup visits one bucket; a block
     * scan would make this test run for minutes and hit its timeout. */
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "role big {\n");
    for (int i = 0; i < 20000; i++)
        sb_printf(&b, "  allow act%d.read on \"r%d/*\"\n", i, i);
    sb_puts(&b, "  deny act7.read on \"r7/x\"\n}\n");
    assert_false(b.oom);
    trine_policy *p = load_ok(b.data);
    sb_free(&b);
    const cpl_block *r = strmap_get(&p->roles, "big");
    assert_int_equal(r->nrules, 20001);
    assert_int_equal(r->exact.count, 20000);
    const rule_list *l = strmap_get(&r->exact, "act7.read");
    assert_int_equal(l->len, 2);
    unsigned a = 0, d = 0;
    for (int i = 0; i < 2000000; i++)
        bm(r, "act7.read", (i & 1) ? "r7/x" : "r7/y", &a, &d);
    assert_int_equal(a, 9);
    bm(r, "act7.read", "r7/y", &a, &d);
    assert_int_equal(d, 0);
    bm(r, "act7.read", "r7/x", &a, &d);
    assert_int_equal(d, 20002);
    trine_policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_blocks),
        cmocka_unit_test(test_actions_and_patterns),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_consent_modes),
        cmocka_unit_test(test_error_undefined_role),
        cmocka_unit_test(test_error_tool_without_needs),
        cmocka_unit_test(test_needs_in_any_block),
        cmocka_unit_test(test_error_consent_conflict),
        cmocka_unit_test(test_error_server_conflicts),
        cmocka_unit_test(test_error_regex),
        cmocka_unit_test(test_error_templates),
        cmocka_unit_test(test_error_max_length),
        cmocka_unit_test(test_error_needs_wildcard),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_syntax_errors_all_files),
        cmocka_unit_test(test_file_names_are_base_names),
        cmocka_unit_test(test_block_match_order),
        cmocka_unit_test(test_block_match_regex_fails_closed),
        cmocka_unit_test(test_index_scale_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
