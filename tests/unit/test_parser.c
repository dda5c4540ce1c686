/*
 * test_parser.c - the policy parser: each statement form into the right
 * syntax-tree fields and positions, each parse error with its position and
 * message, several errors from one source, recovery, and pathological
 * inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/ast.h"
#include "lib/parser.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

static ast_file *parse_ok(const char *src)
{
    trine_source s = {"p.trine", src, strlen(src)};
    trine_diag *d = trine_diag_new();
    assert_non_null(d);
    ast_file *f = NULL;
    int rc = parse_source(&s, d, &f);
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(trine_diag_count(d), 0);
    assert_non_null(f);
    assert_string_equal(f->name, "p.trine");
    trine_diag_free(d);
    return f;
}

/* Parses src expecting failure; returns the diagnostics (caller frees). */
static trine_diag *parse_bad(const char *src, size_t len)
{
    trine_source s = {"p.trine", src, len};
    trine_diag *d = trine_diag_new();
    assert_non_null(d);
    ast_file *f = (ast_file *)1;
    assert_int_equal(parse_source(&s, d, &f), TRINE_ESYNTAX);
    assert_null(f);
    return d;
}

static void assert_diag(const trine_diag *d, size_t i, unsigned line,
                        unsigned col, const char *msg)
{
    const trine_diag_item *it = trine_diag_at(d, i);
    assert_non_null(it);
    assert_string_equal(it->file, "p.trine");
    assert_string_equal(it->message, msg);
    assert_int_equal(it->line, line);
    assert_int_equal(it->col, col);
}

/* src has exactly one error: line:col msg. */
static void assert_error(const char *src, unsigned line, unsigned col,
                         const char *msg)
{
    trine_diag *d = parse_bad(src, strlen(src));
    if (trine_diag_count(d) != 1)
        trine_diag_print(d, stderr);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(d, 0, line, col, msg);
    trine_diag_free(d);
}

static void assert_loc(ast_loc at, unsigned line, unsigned col)
{
    assert_string_equal(at.file, "p.trine");
    assert_int_equal(at.line, line);
    assert_int_equal(at.col, col);
}

static void test_empty(void **state)
{
    (void)state;
    ast_file *f = parse_ok("");
    assert_int_equal(f->nstmts, 0);
    ast_free(f);
    f = parse_ok("  # only a comment\n\n");
    assert_int_equal(f->nstmts, 0);
    ast_free(f);
    ast_free(NULL);
}

static void test_scope_role_agent(void **state)
{
    (void)state;
    ast_file *f = parse_ok(
        "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*\" }\n"
        "role maintainer {\n"
        "  allow repo.*, issues.* on \"repo:acme/*\", /prod-[0-9]+/i\n"
        "  deny  repo.delete      on \"repo:acme/prod-*\"\n"
        "}\n"
        "agent \"ci-bot\" { allow * on \"repo:*\" }\n"
        "agent * {}\n"
        "role empty {}\n");
    assert_int_equal(f->nstmts, 5);

    ast_stmt *s = &f->stmts[0];
    assert_int_equal(s->kind, AST_SCOPE);
    assert_loc(s->at, 1, 1);
    assert_string_equal(s->name, "repo:read");
    assert_loc(s->name_at, 1, 7);
    assert_int_equal(s->nrules, 1);
    ast_rule *r = &s->rules[0];
    assert_false(r->deny);
    assert_loc(r->at, 1, 22);
    assert_int_equal(r->nactions, 2);
    assert_string_equal(r->actions[0].text, "repo.read");
    assert_loc(r->actions[0].at, 1, 28);
    assert_string_equal(r->actions[1].text, "issues.read");
    assert_loc(r->actions[1].at, 1, 39);
    assert_int_equal(r->npatterns, 1);
    assert_string_equal(r->patterns[0].text, "repo:*");
    assert_false(r->patterns[0].is_regex);
    assert_loc(r->patterns[0].at, 1, 54);

    s = &f->stmts[1];
    assert_int_equal(s->kind, AST_ROLE);
    assert_string_equal(s->name, "maintainer");
    assert_loc(s->name_at, 2, 6);
    assert_int_equal(s->nrules, 2);
    r = &s->rules[0];
    assert_string_equal(r->actions[0].text, "repo.*");
    assert_string_equal(r->actions[1].text, "issues.*");
    assert_int_equal(r->npatterns, 2);
    assert_string_equal(r->patterns[1].text, "prod-[0-9]+");
    assert_true(r->patterns[1].is_regex);
    assert_true(r->patterns[1].icase);
    assert_loc(r->patterns[1].at, 3, 44);
    r = &s->rules[1];
    assert_true(r->deny);
    assert_loc(r->at, 4, 3);
    assert_string_equal(r->actions[0].text, "repo.delete");
    assert_loc(r->actions[0].at, 4, 9);
    assert_loc(r->patterns[0].at, 4, 29);

    s = &f->stmts[2];
    assert_int_equal(s->kind, AST_AGENT);
    assert_string_equal(s->name, "ci-bot");
    assert_string_equal(s->rules[0].actions[0].text, "*");
    assert_loc(s->rules[0].actions[0].at, 6, 24);

    s = &f->stmts[3];
    assert_int_equal(s->kind, AST_AGENT);
    assert_null(s->name);
    assert_loc(s->name_at, 7, 7);
    assert_int_equal(s->nrules, 0);

    assert_int_equal(f->stmts[4].kind, AST_ROLE);
    assert_int_equal(f->stmts[4].nrules, 0);
    ast_free(f);
}

static void test_user_group(void **state)
{
    (void)state;
    ast_file *f = parse_ok("user \"alice\" { roles maintainer }\n"
                           "group \"acme-eng\" { roles reader, x_y-z\n"
                           "  roles more }\n"
                           "user * { roles reader }\n");
    assert_int_equal(f->nstmts, 3);
    ast_stmt *s = &f->stmts[0];
    assert_int_equal(s->kind, AST_USER);
    assert_string_equal(s->name, "alice");
    assert_int_equal(s->nroles, 1);
    assert_string_equal(s->roles[0].text, "maintainer");
    assert_loc(s->roles[0].at, 1, 22);

    s = &f->stmts[1];
    assert_int_equal(s->kind, AST_GROUP);
    assert_string_equal(s->name, "acme-eng");
    assert_int_equal(s->nroles, 3);
    assert_string_equal(s->roles[0].text, "reader");
    assert_string_equal(s->roles[1].text, "x_y-z");
    assert_loc(s->roles[1].at, 2, 34);
    assert_string_equal(s->roles[2].text, "more");
    assert_loc(s->roles[2].at, 3, 9);

    s = &f->stmts[2];
    assert_int_equal(s->kind, AST_USER);
    assert_null(s->name);
    assert_loc(s->name_at, 4, 6);
    assert_string_equal(s->roles[0].text, "reader");
    ast_free(f);
}

static void test_server(void **state)
{
    (void)state;
    ast_file *f = parse_ok("server \"github\" {\n"
                           "  audience \"https://a\"\n"
                           "  audience \"https://b\"\n"
                           "  resource_metadata \"https://m\"\n"
                           "  delegation full_chain\n"
                           "  delegation current_actor\n"
                           "}\n");
    ast_stmt *s = &f->stmts[0];
    assert_int_equal(s->kind, AST_SERVER);
    assert_string_equal(s->name, "github");
    assert_int_equal(s->naudiences, 2);
    assert_string_equal(s->audiences[0].text, "https://a");
    assert_loc(s->audiences[0].at, 2, 12);
    assert_string_equal(s->audiences[1].text, "https://b");
    assert_int_equal(s->nresource_metadata, 1);
    assert_string_equal(s->resource_metadata[0].text, "https://m");
    assert_loc(s->resource_metadata[0].at, 4, 21);
    assert_int_equal(s->ndelegations, 2);
    assert_int_equal(s->delegations[0], AST_DELEG_FULL_CHAIN);
    assert_loc(s->delegation_at[0], 5, 3);
    assert_int_equal(s->delegations[1], AST_DELEG_CURRENT_ACTOR);
    assert_loc(s->delegation_at[1], 6, 3);
    ast_free(f);
}

static void test_tool(void **state)
{
    (void)state;
    ast_file *f =
        parse_ok("tool \"github\" \"create_issue\" {\n"
                 "  needs issues.create, repo.read on \"repo:{owner}/{repo}\"\n"
                 "  arg owner matches /[A-Za-z0-9-]{1,39}/\n"
                 "  arg title max_length 256\n"
                 "  arg title required\n"
                 "  arg opts.limit < 10\n"
                 "  arg opts.limit <= -2.5\n"
                 "  arg n > 0\n"
                 "  arg n >= 1.5\n"
                 "  arg kind in [\"bug\", 1, 2.5, true, false, null, -3]\n"
                 "  arg lang matches /en|de/i\n"
                 "  consent session \"Let {agent} open issues?\"\n"
                 "  consent once for 7d\n"
                 "  consent always\n"
                 "  consent once \"p\"\n"
                 "  redact body, opts.secret\n"
                 "}\n"
                 "tool \"fs\" * { needs fs.read on \"file:{path...}\" }\n");
    assert_int_equal(f->nstmts, 2);
    ast_stmt *s = &f->stmts[0];
    assert_int_equal(s->kind, AST_TOOL);
    assert_string_equal(s->name, "github");
    assert_loc(s->name_at, 1, 6);
    assert_string_equal(s->tool, "create_issue");
    assert_loc(s->tool_at, 1, 15);

    assert_int_equal(s->nneeds, 1);
    ast_needs *nd = &s->needs[0];
    assert_loc(nd->at, 2, 3);
    assert_int_equal(nd->nactions, 2);
    assert_string_equal(nd->actions[0].text, "issues.create");
    assert_loc(nd->actions[0].at, 2, 9);
    assert_string_equal(nd->actions[1].text, "repo.read");
    assert_string_equal(nd->tmpl, "repo:{owner}/{repo}");
    assert_loc(nd->tmpl_at, 2, 37);

    assert_int_equal(s->nargs, 9);
    ast_arg *a = &s->args[0];
    assert_loc(a->at, 3, 3);
    assert_string_equal(a->path, "owner");
    assert_int_equal(a->kind, AST_C_MATCHES);
    assert_string_equal(a->regex.text, "[A-Za-z0-9-]{1,39}");
    assert_true(a->regex.is_regex);
    assert_false(a->regex.icase);
    assert_loc(a->regex.at, 3, 21);
    a = &s->args[1];
    assert_int_equal(a->kind, AST_C_MAX_LENGTH);
    assert_true(a->number.is_int && a->number.i == 256);
    assert_int_equal(s->args[2].kind, AST_C_REQUIRED);
    assert_string_equal(s->args[2].path, "title");
    a = &s->args[3];
    assert_string_equal(a->path, "opts.limit");
    assert_int_equal(a->kind, AST_C_LT);
    assert_true(a->number.is_int && a->number.i == 10);
    assert_int_equal(s->args[4].kind, AST_C_LE);
    assert_false(s->args[4].number.is_int);
    assert_true(s->args[4].number.d == -2.5);
    assert_int_equal(s->args[5].kind, AST_C_GT);
    assert_true(s->args[5].number.is_int && s->args[5].number.i == 0);
    assert_int_equal(s->args[6].kind, AST_C_GE);
    assert_true(s->args[6].number.d == 1.5);

    a = &s->args[7];
    assert_int_equal(a->kind, AST_C_IN);
    assert_int_equal(a->nliterals, 7);
    assert_true(json_is_string(a->literals[0]));
    assert_string_equal(json_string_value(a->literals[0]), "bug");
    assert_true(json_is_integer(a->literals[1]));
    assert_int_equal(json_integer_value(a->literals[1]), 1);
    assert_true(json_is_real(a->literals[2]));
    assert_true(json_real_value(a->literals[2]) == 2.5);
    assert_true(json_is_true(a->literals[3]));
    assert_true(json_is_false(a->literals[4]));
    assert_true(json_is_null(a->literals[5]));
    assert_int_equal(json_integer_value(a->literals[6]), -3);
    assert_true(s->args[8].regex.icase);

    assert_int_equal(s->nconsents, 4);
    ast_consent *c = &s->consents[0];
    assert_int_equal(c->mode, AST_CONSENT_SESSION);
    assert_string_equal(c->prompt, "Let {agent} open issues?");
    assert_int_equal(c->duration_s, -1);
    assert_loc(c->at, 12, 3);
    c = &s->consents[1];
    assert_int_equal(c->mode, AST_CONSENT_ONCE);
    assert_int_equal(c->duration_s, 7 * 86400);
    assert_null(c->prompt);
    c = &s->consents[2];
    assert_int_equal(c->mode, AST_CONSENT_ALWAYS);
    assert_int_equal(c->duration_s, -1);
    assert_null(c->prompt);
    c = &s->consents[3];
    assert_int_equal(c->mode, AST_CONSENT_ONCE);
    assert_int_equal(c->duration_s, -1);
    assert_string_equal(c->prompt, "p");

    assert_int_equal(s->nredacts, 2);
    assert_string_equal(s->redacts[0].text, "body");
    assert_loc(s->redacts[0].at, 16, 10);
    assert_string_equal(s->redacts[1].text, "opts.secret");

    s = &f->stmts[1];
    assert_string_equal(s->name, "fs");
    assert_null(s->tool);
    assert_loc(s->tool_at, 18, 11);
    assert_string_equal(s->needs[0].tmpl, "file:{path...}");
    ast_free(f);
}

static void test_forbid(void **state)
{
    (void)state;
    ast_file *f = parse_ok("forbid * on \"repo:acme/secrets\"\n"
                           "  forbid repo.delete, x.* on \"a\", /b/\n");
    assert_int_equal(f->nstmts, 2);
    ast_stmt *s = &f->stmts[0];
    assert_int_equal(s->kind, AST_FORBID);
    assert_loc(s->at, 1, 1);
    assert_null(s->name);
    assert_int_equal(s->nrules, 1);
    assert_true(s->rules[0].deny);
    assert_loc(s->rules[0].at, 1, 1);
    assert_string_equal(s->rules[0].actions[0].text, "*");
    assert_string_equal(s->rules[0].patterns[0].text, "repo:acme/secrets");
    s = &f->stmts[1];
    assert_loc(s->at, 2, 3);
    assert_int_equal(s->rules[0].nactions, 2);
    assert_string_equal(s->rules[0].actions[1].text, "x.*");
    assert_int_equal(s->rules[0].npatterns, 2);
    assert_true(s->rules[0].patterns[1].is_regex);
    ast_free(f);
}

static void test_design_example(void **state)
{
    (void)state;
    /* The example of DESIGN §2.3, as a whole. */
    ast_file *f = parse_ok(
        "server \"github\" {\n"
        "  audience \"https://mcp.example.com/github\"\n"
        "  resource_metadata \"https://mcp.example.com/.well-known/"
        "oauth-protected-resource\"\n"
        "}\n"
        "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*\" }\n"
        "scope \"admin\"      { allow repo.* on \"repo:*\" }\n"
        "role reader { allow repo.read, issues.read on \"repo:acme/*\" }\n"
        "user \"alice\"     { roles maintainer }\n"
        "group \"acme-eng\" { roles reader }\n"
        "user *           { roles reader }\n"
        "agent *                { deny repo.delete on \"repo:*/prod-*\" }\n"
        "tool \"github\" \"delete_repo\" {\n"
        "  needs repo.delete on \"repo:{owner}/{repo}\"\n"
        "  consent always \"Delete {owner}/{repo}? This cannot be undone.\"\n"
        "}\n"
        "forbid * on \"repo:acme/secrets\"\n");
    assert_int_equal(f->nstmts, 10);
    static const ast_kind kinds[] = {
        AST_SERVER, AST_SCOPE, AST_SCOPE, AST_ROLE, AST_USER,
        AST_GROUP,  AST_USER,  AST_AGENT, AST_TOOL, AST_FORBID};
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(f->stmts[i].kind, kinds[i]);
    ast_free(f);
}

static void test_statement_errors(void **state)
{
    (void)state;
    assert_error("rol x { allow a on \"b\" }", 1, 1,
                 "unknown statement \"rol\"; expected one of scope, role, "
                 "user, group, agent, server, tool, forbid");
    assert_error("\n  { }", 2, 3,
                 "expected a statement (one of scope, role, user, group, "
                 "agent, server, tool, forbid), found \"{\"");
    assert_error("\"x\"", 1, 1,
                 "expected a statement (one of scope, role, user, group, "
                 "agent, server, tool, forbid), found string \"x\"");
    assert_error("scope repo {}", 1, 7,
                 "expected a string after \"scope\", found \"repo\"");
    assert_error("role \"r\" {}", 1, 6,
                 "expected an identifier after \"role\", found string \"r\"");
    assert_error("role 9r {}", 1, 6,
                 "expected an identifier after \"role\", found \"9r\"");
    assert_error("user 5 {}", 1, 6,
                 "expected a string or \"*\" after \"user\", found \"5\"");
    assert_error("group * {}", 1, 7,
                 "expected a string after \"group\", found \"*\"");
    assert_error("agent {}", 1, 7,
                 "expected a string or \"*\" after \"agent\", found \"{\"");
    assert_error("server x {}", 1, 8,
                 "expected a string after \"server\", found \"x\"");
    assert_error("tool * \"t\" {}", 1, 6,
                 "expected the server name (a string) after \"tool\", found "
                 "\"*\"");
    assert_error("tool \"s\" t {}", 1, 10,
                 "expected the tool name (a string or \"*\") after the server "
                 "name, found \"t\"");
    assert_error("scope \"repo:read\" allow repo.read on \"x\"", 1, 19,
                 "expected \"{\" after the scope name, found \"allow\"");
    assert_error("tool \"s\" \"t\"", 1, 13,
                 "expected \"{\" after the tool name, found end of file");
    assert_error("scope \"a\" {\n  allow a on \"b\"\n", 3, 1,
                 "expected \"}\" to close the scope block opened at 1:11, "
                 "found end of file");
}

static void test_rule_errors(void **state)
{
    (void)state;
    assert_error("scope \"a\" { alow x on \"y\" }", 1, 13,
                 "unknown scope item \"alow\"; expected allow, deny or \"}\"");
    assert_error("role r { \"x\" }", 1, 10,
                 "expected allow, deny or \"}\" in the role block, found "
                 "string \"x\"");
    assert_error("agent * { roles x }", 1, 11,
                 "unknown agent item \"roles\"; expected allow, deny or "
                 "\"}\"");
    assert_error(
        "scope \"a\" { allow issues. on \"x\" }", 1, 19,
        "invalid action \"issues.\"; expected segments of letters, digits, "
        "\"_\" and \"-\" joined by \".\", the last of which may be \"*\"");
    assert_error(
        "scope \"a\" { allow a.*.b on \"x\" }", 1, 19,
        "invalid action \"a.*.b\"; expected segments of letters, digits, \"_\" "
        "and \"-\" joined by \".\", the last of which may be \"*\"");
    assert_error("scope \"a\" { allow a, on \"x\" }", 1, 22,
                 "expected an action after \",\", found \"on\"");
    assert_error("scope \"a\" { deny on \"x\" }", 1, 18,
                 "expected an action after \"deny\", found \"on\"");
    assert_error("scope \"a\" { allow \"x\" }", 1, 19,
                 "expected an action after \"allow\", found string \"x\"");
    assert_error("scope \"a\" { allow a b on \"x\" }", 1, 21,
                 "expected \",\" or \"on\" after the actions, found \"b\"");
    assert_error("scope \"a\" { allow a on x }", 1, 24,
                 "expected a pattern (a string or a regex) after \"on\", "
                 "found \"x\"");
    assert_error("scope \"a\" { allow a on \"x\", }", 1, 29,
                 "expected a pattern (a string or a regex) after \",\", "
                 "found \"}\"");
    assert_error("forbid * on", 1, 12,
                 "expected a pattern (a string or a regex) after \"on\", "
                 "found end of file");
    assert_error("forbid \"x\" on \"y\"", 1, 8,
                 "expected an action after \"forbid\", found string \"x\"");
    assert_error("forbid on /y/", 1, 8,
                 "expected an action after \"forbid\", found \"on\"");
}

/* Keywords are not reserved: an action list starts with an action and goes
 * on after every ",", so "on" can name one. */
static void test_on_as_an_action(void **state)
{
    (void)state;
    ast_file *f = parse_ok("scope \"s\" { allow on, off on \"x\" }\n"
                           "forbid on on \"y\"\n"
                           "tool \"a\" \"b\" { needs a, on on \"x\" }\n");
    assert_int_equal(f->nstmts, 3);
    ast_rule *r = &f->stmts[0].rules[0];
    assert_int_equal(r->nactions, 2);
    assert_string_equal(r->actions[0].text, "on");
    assert_string_equal(r->actions[1].text, "off");
    assert_string_equal(r->patterns[0].text, "x");
    r = &f->stmts[1].rules[0];
    assert_int_equal(r->nactions, 1);
    assert_string_equal(r->actions[0].text, "on");
    ast_needs *n = &f->stmts[2].needs[0];
    assert_int_equal(n->nactions, 2);
    assert_string_equal(n->actions[1].text, "on");
    assert_string_equal(n->tmpl, "x");
    ast_free(f);
}

static void test_binding_and_server_errors(void **state)
{
    (void)state;
    assert_error("user \"u\" { roles }", 1, 18,
                 "expected a role name after \"roles\", found \"}\"");
    assert_error("user \"u\" { roles a, 9b }", 1, 21,
                 "expected a role name after \",\", found \"9b\"");
    assert_error("group \"g\" { allow a on \"x\" }", 1, 13,
                 "unknown group item \"allow\"; expected roles or \"}\"");
    assert_error("server \"s\" { audience 5 }", 1, 23,
                 "expected a string after \"audience\", found \"5\"");
    assert_error("server \"s\" { resource_metadata }", 1, 32,
                 "expected a string after \"resource_metadata\", found "
                 "\"}\"");
    assert_error("server \"s\" { delegation all }", 1, 25,
                 "expected current_actor or full_chain after \"delegation\", "
                 "found \"all\"");
    assert_error("server \"s\" { issuer \"x\" }", 1, 14,
                 "unknown server item \"issuer\"; expected audience, "
                 "resource_metadata, delegation or \"}\"");
}

static void test_empty_bindings(void **state)
{
    (void)state;
    /* DESIGN §2.2: user and group blocks hold "roles" IDENT {...}. */
    assert_error("user \"a\" {}", 1, 11,
                 "expected \"roles\" in the user block, found \"}\"");
    assert_error("user * {\n}", 2, 1,
                 "expected \"roles\" in the user block, found \"}\"");
    assert_error("group \"g\" { }", 1, 13,
                 "expected \"roles\" in the group block, found \"}\"");
    /* An item that failed is reported alone. */
    assert_error("user \"a\" { roles }", 1, 18,
                 "expected a role name after \"roles\", found \"}\"");
    /* A role may be empty (DESIGN §2.2: "{" { rule } "}"). */
    ast_file *f = parse_ok("role r {}\nagent * {}\n");
    assert_int_equal(f->nstmts, 2);
    ast_free(f);
}

static void test_tool_errors(void **state)
{
    (void)state;
    assert_error("tool \"s\" \"t\" { wat 1 }", 1, 16,
                 "unknown tool item \"wat\"; expected needs, arg, consent, "
                 "redact or \"}\"");
    assert_error("tool \"s\" \"t\" { needs a on x }", 1, 27,
                 "expected a template string after \"on\", found \"x\"");
    assert_error("tool \"s\" \"t\" { needs a on /x/ }", 1, 27,
                 "expected a template string after \"on\", found regex /x/");
    assert_error("tool \"s\" \"t\" { needs on \"x\" }", 1, 22,
                 "expected an action after \"needs\", found \"on\"");
    assert_error("tool \"s\" \"t\" { arg 1x required }", 1, 20,
                 "expected an argument path after \"arg\", found \"1x\"");
    assert_error("tool \"s\" \"t\" { arg a. required }", 1, 20,
                 "expected an argument path after \"arg\", found \"a.\"");
    assert_error("tool \"s\" \"t\" { arg a exists }", 1, 22,
                 "expected a constraint (matches, in, <, <=, >, >=, "
                 "max_length or required) after the argument path, found "
                 "\"exists\"");
    assert_error("tool \"s\" \"t\" { arg a matches \"x\" }", 1, 30,
                 "expected a regex after \"matches\", found string \"x\"");
    assert_error("tool \"s\" \"t\" { arg a in \"x\" }", 1, 25,
                 "expected \"[\" after \"in\", found string \"x\"");
    assert_error("tool \"s\" \"t\" { arg a in [] }", 1, 26,
                 "expected a literal (a string, number, true, false or "
                 "null), found \"]\"");
    assert_error("tool \"s\" \"t\" { arg a in [1 2] }", 1, 28,
                 "expected \",\" or \"]\" in the list, found \"2\"");
    assert_error("tool \"s\" \"t\" { arg a in [yes] }", 1, 26,
                 "expected a literal (a string, number, true, false or "
                 "null), found \"yes\"");
    assert_error("tool \"s\" \"t\" { arg a in [99999999999999999999] }", 1, 26,
                 "number \"99999999999999999999\" is out of range"
                 "; expected a 64-bit integer or a finite real");
    assert_error("tool \"s\" \"t\" { arg a < x }", 1, 24,
                 "expected a number after \"<\", found \"x\"");
    assert_error("tool \"s\" \"t\" { arg a <= 1.2.3 }", 1, 25,
                 "expected a number after \"<=\", found \"1.2.3\"");
    assert_error("tool \"s\" \"t\" { arg a > }", 1, 24,
                 "expected a number after \">\", found \"}\"");
    assert_error("tool \"s\" \"t\" { arg a >= \"1\" }", 1, 25,
                 "expected a number after \">=\", found string \"1\"");
    assert_error("tool \"s\" \"t\" { arg a max_length 1.5 }", 1, 33,
                 "expected a non-negative integer after \"max_length\", "
                 "found \"1.5\"");
    assert_error("tool \"s\" \"t\" { arg a max_length -1 }", 1, 33,
                 "expected a non-negative integer after \"max_length\", "
                 "found \"-1\"");
    assert_error("tool \"s\" \"t\" { arg a max_length 99999999999999999999 }",
                 1, 33,
                 "number \"99999999999999999999\" is out of range"
                 "; expected a 64-bit integer or a finite real");
    assert_error("tool \"s\" \"t\" { consent maybe }", 1, 24,
                 "expected a consent mode (always, session or once) after "
                 "\"consent\", found \"maybe\"");
    assert_error("tool \"s\" \"t\" { consent session for 3d }", 1, 32,
                 "\"for\" is only allowed after \"once\"");
    assert_error("tool \"s\" \"t\" { consent always for 3d }", 1, 31,
                 "\"for\" is only allowed after \"once\"");
    assert_error("tool \"s\" \"t\" { consent once for 3w }", 1, 33,
                 "expected a duration (such as 30m or 7d) after \"for\", "
                 "found \"3w\"");
    assert_error("tool \"s\" \"t\" { consent once for \"3d\" }", 1, 33,
                 "expected a duration (such as 30m or 7d) after \"for\", "
                 "found string \"3d\"");
    assert_error("tool \"s\" \"t\" { consent once for 99999999999999999d }", 1,
                 33,
                 "duration \"99999999999999999d\" is out of range; expected at "
                 "most 36600d (100 years)");
    assert_error("tool \"s\" \"t\" { redact }", 1, 23,
                 "expected an argument path after \"redact\", found \"}\"");
    assert_error("tool \"s\" \"t\" { redact a, b.* }", 1, 26,
                 "expected an argument path after \",\", found \"b.*\"");
}

static void test_lexer_errors_through_parser(void **state)
{
    (void)state;
    /* Reported once, by the lexer, with no "expected" echo. */
    assert_error(
        "scope \"abc {\nrole r {}", 1, 7,
        "unterminated string; expected a closing '\"' on the same line");
    assert_error("scope @ {}", 1, 7,
                 "unexpected character \"@\"; expected a name, a string, a "
                 "regex, a number or one of { } [ ] , * < <= > >=");
    assert_error("scope \"a\\q\" { allow a on \"x\" }", 1, 9,
                 "invalid escape \"\\q\" in string; expected \\\" \\\\ \\n \\t "
                 "or \\uXXXX");
    assert_error("scope \"a\" { allow a on /x/g }", 1, 27,
                 "unknown regex flag \"g\"; only \"i\" is allowed");

    /* A bad byte stops everything before parsing. */
    trine_diag *d = parse_bad("rol x\nscope \xff", 13);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(d, 0, 2, 7, "invalid UTF-8 byte 0xff; expected UTF-8 text");
    trine_diag_free(d);
    d = parse_bad("rol\0", 4);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(d, 0, 1, 4, "NUL byte in source; expected UTF-8 text");
    trine_diag_free(d);
}

static void test_many_errors_and_recovery(void **state)
{
    (void)state;
    const char *src = "rol x { allow a on \"b\" }\n"   /* 1 */
                      "scope \"a\" allow x on \"y\"\n" /* 2 */
                      "scope \"b\" {\n"                /* 3 */
                      "  allow issues. on \"x\"\n"     /* 4 */
                      "  allow ok on \"x\"\n"          /* 5 */
                      "  deny a b on \"c\"\n"          /* 6 */
                      "  allow q on /abc/g\n"          /* 7 */
                      "}\n"                            /* 8 */
                      "tool \"s\" \"t\" {\n"           /* 9 */
                      "  needs a on \"x\" \"y\"\n"     /* 10 */
                      "  arg foo bar\n"                /* 11 */
                      "  consent session for 3d\n"     /* 12 */
                      "  consent once \"hi\\q\"\n"     /* 13 */
                      "}\n"                            /* 14 */
                      "server \"x\" { audience 5 }\n"  /* 15 */
                      "role r {\n"                     /* 16 */
                      "  allow a on \"x\"\n"           /* 17 */
                      "scope \"c\" { allow \"x\" }\n"  /* 18 */
                      "user \"u\" { roles a }\n"       /* 19 */
                      "forbid * on\n";                 /* 20 */
    trine_diag *d = parse_bad(src, strlen(src));
    static const struct {
        unsigned line, col;
        const char *msg;
    } want[] = {
        {1, 1,
         "unknown statement \"rol\"; expected one of scope, role, user, "
         "group, agent, server, tool, forbid"},
        {2, 11, "expected \"{\" after the scope name, found \"allow\""},
        {4, 9,
         "invalid action \"issues.\"; expected segments of letters, digits, "
         "\"_\" and \"-\" joined by \".\", the last of which may be \"*\""},
        {6, 10, "expected \",\" or \"on\" after the actions, found \"b\""},
        {7, 19, "unknown regex flag \"g\"; only \"i\" is allowed"},
        {10, 18,
         "expected needs, arg, consent, redact or \"}\" in the tool block, "
         "found string \"y\""},
        {11, 11,
         "expected a constraint (matches, in, <, <=, >, >=, max_length or "
         "required) after the argument path, found \"bar\""},
        {12, 19, "\"for\" is only allowed after \"once\""},
        {13, 19,
         "invalid escape \"\\q\" in string; expected \\\" \\\\ \\n \\t or "
         "\\uXXXX"},
        {15, 23, "expected a string after \"audience\", found \"5\""},
        {18, 1,
         "expected \"}\" to close the role block opened at 16:8, found "
         "\"scope\""},
        {18, 19, "expected an action after \"allow\", found string \"x\""},
        {21, 1,
         "expected a pattern (a string or a regex) after \"on\", found end "
         "of file"},
    };
    size_t n = sizeof want / sizeof *want;
    if (trine_diag_count(d) != n)
        trine_diag_print(d, stderr);
    assert_int_equal(trine_diag_count(d), n);
    for (size_t i = 0; i < n; i++)
        assert_diag(d, i, want[i].line, want[i].col, want[i].msg);
    trine_diag_free(d);
}

static void test_error_cap(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    for (int i = 0; i < 200; i++)
        sb_puts(&b, "scope x { allow a on \"b\" }\n");
    assert_false(b.oom);
    trine_diag *d = parse_bad(b.data, b.len);
    assert_int_equal(trine_diag_errors(d), TRINE_DIAG_MAX + 1);
    assert_int_equal(trine_diag_count(d), TRINE_DIAG_MAX + 1);
    assert_diag(d, TRINE_DIAG_MAX - 1, TRINE_DIAG_MAX, 7,
                "expected a string after \"scope\", found \"x\"");
    assert_diag(d, TRINE_DIAG_MAX, TRINE_DIAG_MAX + 1, 7,
                "too many errors; stopping here");
    trine_diag_free(d);

    /* Without a diag the source is still refused. */
    trine_source s = {"p.trine", b.data, b.len};
    ast_file *f = NULL;
    assert_int_equal(parse_source(&s, NULL, &f), TRINE_ESYNTAX);
    assert_null(f);
    sb_free(&b);
}

static void test_nested_braces(void **state)
{
    (void)state;
    size_t n = 10000;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "scope \"a\" ");
    for (size_t i = 0; i < n; i++)
        sb_putc(&b, '{');
    assert_false(b.oom);
    trine_diag *d = parse_bad(b.data, b.len);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(d, 0, 1, 12,
                "expected allow, deny or \"}\" in the scope block, found "
                "\"{\"");
    trine_diag_free(d);

    /* At the top level, and closed again: one error, then the statement
     * after the braces is parsed (its error is found). */
    sb_reset(&b);
    for (size_t i = 0; i < n; i++)
        sb_putc(&b, '{');
    for (size_t i = 0; i < n; i++)
        sb_putc(&b, '}');
    sb_puts(&b, " role \"r\" {}");
    d = parse_bad(b.data, b.len);
    assert_int_equal(trine_diag_count(d), 2);
    assert_diag(d, 0, 1, 1,
                "expected a statement (one of scope, role, user, group, "
                "agent, server, tool, forbid), found \"{\"");
    assert_diag(d, 1, 1, 2 * (unsigned)n + 7,
                "expected an identifier after \"role\", found string \"r\"");
    trine_diag_free(d);
    sb_free(&b);
}

/* A 10 MB line: a rule with a million actions parses (in linear time); the
 * same line with a bad action at its end is one error. */
static void test_huge_line(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "scope \"a\" { allow ");
    size_t n = 1100000;
    for (size_t i = 0; i < n; i++)
        sb_puts(&b, "act.x-yz, ");
    sb_puts(&b, "last on \"x\" }");
    assert_false(b.oom);
    assert_true(b.len > 10u << 20);
    ast_file *f = parse_ok(b.data);
    assert_int_equal(f->stmts[0].rules[0].nactions, n + 1);
    assert_string_equal(f->stmts[0].rules[0].actions[n].text, "last");
    ast_free(f);

    b.data[b.len - 10] = '.';
    trine_diag *d = parse_bad(b.data, b.len);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(
        d, 0, 1, (unsigned)(b.len - 12),
        "invalid action \"las.\"; expected segments of letters, digits, \"_\" "
        "and \"-\" joined by \".\", the last of which may be \"*\"");
    trine_diag_free(d);

    /* A 10 MB string as a scope name. */
    sb_reset(&b);
    sb_puts(&b, "scope \"");
    for (size_t i = 0; i < (10u << 20); i++)
        sb_putc(&b, 'n');
    sb_puts(&b, "\" {}");
    f = parse_ok(b.data);
    assert_int_equal(strlen(f->stmts[0].name), 10u << 20);
    ast_free(f);
    sb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_scope_role_agent),
        cmocka_unit_test(test_user_group),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_tool),
        cmocka_unit_test(test_forbid),
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_statement_errors),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_binding_and_server_errors),
        cmocka_unit_test(test_on_as_an_action),
        cmocka_unit_test(test_empty_bindings),
        cmocka_unit_test(test_tool_errors),
        cmocka_unit_test(test_lexer_errors_through_parser),
        cmocka_unit_test(test_many_errors_and_recovery),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_nested_braces),
        cmocka_unit_test(test_huge_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
