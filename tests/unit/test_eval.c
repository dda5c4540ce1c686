/*
 * test_eval.c - trine_check, step by step (DESIGN §2.4) and edge rule by
 * edge rule (§2.5): request validation, token, tool lookup, arguments and
 * templates, forbid, the three sets with delegation, step-up, consent.
 *
 * Requests are written with single quotes for readability; req() turns
 * them into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DESIGN §2.3, line for line; the numbers are the lines rules name. */
/* clang-format off */
static const char github_src[] =
    /*  1 */ "server \"github\" {\n"
    /*  2 */ "  audience \"https://mcp.example.com/github\"\n"
    /*  3 */ "  resource_metadata \"https://mcp.example.com/.well-known/oauth-"
             "protected-resource\"\n"
    /*  4 */ "}\n"
    /*  5 */ "\n"
    /*  6 */ "# S: what each OAuth scope grants\n"
    /*  7 */ "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*"
             "\" }\n"
    /*  8 */ "scope \"repo:write\" { allow repo.read, repo.write, issues.* on "
             "\"repo:*\" }\n"
    /*  9 */ "scope \"admin\"      { allow repo.* on \"repo:*\" }\n"
    /* 10 */ "\n"
    /* 11 */ "# U: what users may do\n"
    /* 12 */ "role maintainer {\n"
    /* 13 */ "  allow repo.*, issues.* on \"repo:acme/*\"\n"
    /* 14 */ "  deny  repo.delete      on \"repo:acme/prod-*\"\n"
    /* 15 */ "}\n"
    /* 16 */ "role reader { allow repo.read, issues.read on \"repo:acme/*\" }"
             "\n"
    /* 17 */ "user \"alice\"     { roles maintainer }\n"
    /* 18 */ "group \"acme-eng\" { roles reader }\n"
    /* 19 */ "user *           { roles reader }\n"
    /* 20 */ "\n"
    /* 21 */ "# A: what each agent may do (the `*` block applies to every agen"
             "t as well)\n"
    /* 22 */ "agent \"claude-desktop\" { allow repo.read, repo.write, issues.r"
             "ead, issues.create on \"repo:*\" }\n"
    /* 23 */ "agent \"ops-console\"    { allow repo.*, issues.* on \"repo:*\" "
             "}\n"
    /* 24 */ "agent \"ci-bot\"         { allow repo.read on \"repo:*\" }\n"
    /* 25 */ "agent *                { deny repo.delete on \"repo:*/prod-*\" }"
             "\n"
    /* 26 */ "\n"
    /* 27 */ "# What each tool call needs\n"
    /* 28 */ "tool \"github\" \"get_issue\" {\n"
    /* 29 */ "  needs issues.read on \"repo:{owner}/{repo}\"\n"
    /* 30 */ "}\n"
    /* 31 */ "tool \"github\" \"create_issue\" {\n"
    /* 32 */ "  needs issues.create on \"repo:{owner}/{repo}\"\n"
    /* 33 */ "  arg owner matches /[A-Za-z0-9-]{1,39}/\n"
    /* 34 */ "  arg title max_length 256\n"
    /* 35 */ "  arg title required\n"
    /* 36 */ "  consent session \"Let {agent} open issues in {owner}/{repo} fo"
             "r this session?\"\n"
    /* 37 */ "  redact body\n"
    /* 38 */ "}\n"
    /* 39 */ "tool \"github\" \"delete_repo\" {\n"
    /* 40 */ "  needs repo.delete on \"repo:{owner}/{repo}\"\n"
    /* 41 */ "  consent always \"Delete {owner}/{repo}? This cannot be undone."
             "\"\n"
    /* 42 */ "}\n"
    /* 43 */ "\n"
    /* 44 */ "# Absolute limits\n"
    /* 45 */ "forbid * on \"repo:acme/secrets\"\n";

/* Features the example lacks: full_chain delegation, cover ties, argument
 * constraints, consent modes. */
static const char extra_src[] =
    /*  1 */ "server \"fs\" {\n"
    /*  2 */ "  delegation full_chain\n"
    /*  3 */ "  resource_metadata \"https://fs.example/rm\"\n"
    /*  4 */ "}\n"
    /*  5 */ "scope \"files:read\"  { allow file.read on \"file:*\" }\n"
    /*  6 */ "scope \"files:write\" { allow file.read, file.write on \"file:*"
             "\" }\n"
    /*  7 */ "scope \"files:all\"   { allow file.* on \"file:*\" }\n"
    /*  8 */ "scope \"tmp\"         { allow file.write on \"file:/tmp/*\" }\n"
    /*  9 */ "scope \"nodel\"       { deny file.delete on \"file:*\" }\n"
    /* 10 */ "scope \"data\"        { allow data.* on \"data:*\" }\n"
    /* 11 */ "role files { allow file.*, net.* on \"file:*\", \"net:*\" }\n"
    /* 12 */ "role data { allow data.* on \"data:*\" }\n"
    /* 13 */ "role nodata { deny data.write on \"data:locked\" }\n"
    /* 14 */ "user * { roles files }\n"
    /* 15 */ "group \"analysts\" { roles data }\n"
    /* 16 */ "group \"locked\" { roles nodata }\n"
    /* 17 */ "agent * {\n"
    /* 18 */ "  allow file.*, net.*, data.* on \"file:*\", \"net:*\", \"data:*"
             "\"\n"
    /* 19 */ "  deny file.delete on \"file:/etc/*\"\n"
    /* 20 */ "}\n"
    /* 21 */ "agent \"bad\" { deny file.* on \"file:*\" }\n"
    /* 22 */ "tool \"fs\" \"read\" { needs file.read on \"file:{path...}\" }\n"
    /* 23 */ "tool \"fs\" \"write\" { needs file.write on \"file:{path...}\" }"
             "\n"
    /* 24 */ "tool \"fs\" \"move\" {\n"
    /* 25 */ "  needs file.read, file.delete on \"file:{from...}\"\n"
    /* 26 */ "  needs file.write on \"file:{to...}\"\n"
    /* 27 */ "}\n"
    /* 28 */ "tool \"fs\" \"fetch\" { needs file.read, net.open on \"net:{host"
             "}\" }\n"
    /* 29 */ "tool \"fs\" \"fetch2\" {\n"
    /* 30 */ "  needs file.read on \"file:{path...}\"\n"
    /* 31 */ "  needs net.open on \"net:{host}\"\n"
    /* 32 */ "}\n"
    /* 33 */ "tool \"fs\" * { needs file.read on \"file:/any/{name}\" }\n"
    /* 34 */ "tool \"plain\" \"args\" {\n"
    /* 35 */ "  needs data.read on \"data:{id}\"\n"
    /* 36 */ "  arg n < 10\n"
    /* 37 */ "  arg n >= 0\n"
    /* 38 */ "  arg mode in [\"a\", 1, true]\n"
    /* 39 */ "  arg name max_length 3\n"
    /* 40 */ "  arg code matches /[a-z]+/\n"
    /* 41 */ "  arg opts.level <= 2.5\n"
    /* 42 */ "  arg opts.level > -1\n"
    /* 43 */ "}\n"
    /* 44 */ "tool \"plain\" \"write\" { needs data.write on \"data:{id}\" }\n"
    /* 45 */ "tool \"plain\" \"once\" {\n"
    /* 46 */ "  needs data.read on \"data:{id}\"\n"
    /* 47 */ "  consent once for 7d\n"
    /* 48 */ "}\n"
    /* 49 */ "tool \"plain\" \"always\" {\n"
    /* 50 */ "  needs data.read on \"data:{id}\"\n"
    /* 51 */ "  consent always \"Really {id} as {user} via {agent} on {server}"
             "/{tool}? {n}\"\n"
    /* 52 */ "}\n"
    /* 53 */ "tool \"plain\" \"sess\" {\n"
    /* 54 */ "  needs data.read on \"data:{id}\"\n"
    /* 55 */ "  consent session\n"
    /* 56 */ "}\n";
/* clang-format on */

static trine_policy *github;
static trine_policy *extra;

/* 2030-01-01, before the example token's exp. */
#define NOW_S INT64_C(1893456000)

static trine_policy *load(const char *name, const char *src)
{
    trine_source s = {name, src, strlen(src)};
    trine_diag *diag = trine_diag_new();
    trine_policy *p = NULL;
    int rc = trine_policy_load_sources(&s, 1, diag, &p);
    if (rc != 0)
        trine_diag_print(diag, stderr);
    trine_diag_free(diag);
    return rc == 0 ? p : NULL;
}

static int setup(void **state)
{
    (void)state;
    github = load("github.trine", github_src);
    extra = load("extra.trine", extra_src);
    return github != NULL && extra != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    trine_policy_release(github);
    trine_policy_release(extra);
    return 0;
}

/* Parses a request written with ' for ". */
static json_t *req(const char *text)
{
    char *t = strdup(text);
    assert_non_null(t);
    for (char *c = t; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    json_error_t e;
    json_t *v = json_loads(t, JSON_ALLOW_NUL, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", e.text, t);
    free(t);
    return v;
}

/* Checks a request at time now_s; the decision must be made. */
static trine_decision *check_at(const trine_policy *p, const char *text,
                                int64_t now_s, const trine_check_opts *o)
{
    json_t *r = req(text);
    trine_check_opts def = {now_s * 1000, NULL, NULL};
    trine_decision *d = NULL;
    char err[256];
    int rc = trine_check(p, r, o != NULL ? o : &def, &d, err, sizeof err);
    json_decref(r);
    if (rc != 0)
        fail_msg("trine_check failed: %d %s", rc, err);
    assert_non_null(d);
    return d;
}

static trine_decision *check(const trine_policy *p, const char *text)
{
    return check_at(p, text, NOW_S, NULL);
}

/* The result JSON, in a static buffer. */
static const char *json_of(const trine_decision *d)
{
    static char buf[16384];
    size_t n = trine_decision_write(d, -1, buf, sizeof buf);
    assert_true(n < sizeof buf);
    return buf;
}

/* Asserts the decision and reason, prints the result when they differ. */
static void expect(const trine_decision *d, const char *kind,
                   const char *reason)
{
    if (strcmp(trine_decision_kind(d), kind) != 0 ||
        strcmp(trine_decision_reason(d), reason) != 0)
        fail_msg("want %s/%s, got %s", kind, reason, json_of(d));
}

/* Asserts that the result JSON contains piece. */
static void has(const trine_decision *d, const char *piece)
{
    const char *j = json_of(d);
    if (strstr(j, piece) == NULL)
        fail_msg("missing %s in %s", piece, j);
}

static void lacks(const trine_decision *d, const char *piece)
{
    const char *j = json_of(d);
    if (strstr(j, piece) != NULL)
        fail_msg("unexpected %s in %s", piece, j);
}

/* Checks one request and frees it, asserting kind/reason. */
static void verdict(const trine_policy *p, const char *text, const char *kind,
                    const char *reason)
{
    trine_decision *d = check(p, text);
    expect(d, kind, reason);
    trine_decision_free(d);
}

#define AUD "'aud':'https://mcp.example.com/github'"
#define ALICE "'sub':'alice','client_id':'claude-desktop'," AUD
#define ISSUE "'arguments':{'owner':'acme','repo':'widgets'}"

/* ---- Requests ---------------------------------------------------------- */

static void expect_invalid(const char *text, const char *msg)
{
    json_t *r = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(r);
    trine_check_opts o = {NOW_S * 1000, NULL, NULL};
    trine_decision *d = (trine_decision *)1;
    char err[128] = "junk";
    assert_int_equal(trine_check(github, r, &o, &d, err, sizeof err),
                     TRINE_EREQUEST);
    assert_null(d);
    assert_string_equal(err, msg);
    json_decref(r);
}

static void test_request_validation(void **state)
{
    (void)state;
    expect_invalid("[]", "params must be an object");
    expect_invalid("\"x\"", "params must be an object");
    expect_invalid("{\"tool\":\"t\",\"token\":{}}",
                   "params.server must be a string");
    expect_invalid("{\"server\":1,\"tool\":\"t\",\"token\":{}}",
                   "params.server must be a string");
    expect_invalid("{\"server\":\"s\",\"tool\":null,\"token\":{}}",
                   "params.tool must be a string");
    expect_invalid("{\"server\":\"s\",\"tool\":\"t\",\"arguments\":[],"
                   "\"token\":{}}",
                   "params.arguments must be an object");
    expect_invalid("{\"server\":\"s\",\"tool\":\"t\",\"arguments\":\"x\","
                   "\"token\":{}}",
                   "params.arguments must be an object");
    expect_invalid("{\"server\":\"s\",\"tool\":\"t\"}",
                   "params.token is required");
    expect_invalid("{\"server\":\"s\",\"tool\":\"t\",\"token\":\"jwt\"}",
                   "params.token must be an object");
    expect_invalid("{\"server\":\"s\",\"tool\":\"t\",\"token\":{},"
                   "\"session\":5}",
                   "params.session must be a string or null");
    expect_invalid("{\"server\":\"s\\u0000x\",\"tool\":\"t\",\"token\":{}}",
                   "params.server must not contain a NUL character");

    /* No err buffer is fine too. */
    json_t *r = json_loads("[]", 0, NULL);
    trine_decision *d = NULL;
    assert_int_equal(trine_check(github, r, NULL, &d, NULL, 0), TRINE_EREQUEST);
    json_decref(r);
    assert_int_equal(trine_check(NULL, r, NULL, &d, NULL, 0), TRINE_EINVAL);
    assert_int_equal(trine_check(github, r, NULL, NULL, NULL, 0), TRINE_EINVAL);

    /* Absent arguments are {}; a null session is no session. */
    d = check(extra, "{'server':'fs','tool':'x','session':null,"
                     "'token':{'sub':'u','client_id':'c','scope':"
                     "'files:read'}}");
    expect(d, "deny", "argument_invalid");
    has(d, "\"argument\":\"name\",\"rule\":\"extra.trine:33\","
           "\"detail\":\"{name} is missing\"");
    assert_null(trine_decision_session(d));
    assert_null(trine_decision_arguments(d));
    assert_string_equal(trine_decision_args_hash(d),
                        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c"
                        "060f61caaff8a");
    trine_decision_free(d);
}

/* ---- Step 1: the token ------------------------------------------------- */

static void test_token_expiry(void **state)
{
    (void)state;
    const char *r = "{'server':'github','tool':'get_issue'," ISSUE
                    ",'token':{" ALICE ",'scope':'repo:read','exp':1000}}";
    /* now == exp + 60 is still fine; any later is expired. */
    trine_decision *d = check_at(github, r, 1060, NULL);
    expect(d, "allow", "allow");
    trine_decision_free(d);
    trine_check_opts o = {1060500, NULL, NULL};
    d = check_at(github, r, 0, &o);
    expect(d, "deny", "token_expired");
    trine_decision_free(d);
    d = check_at(github, r, 1061, NULL);
    expect(d, "deny", "token_expired");
    assert_string_equal(json_of(d) + strlen(json_of(d)) -
                            strlen("\"reasons\":[{\"code\":\"token_expired\","
                                   "\"detail\":\"the token expired at 1000 "
                                   "(60 s leeway)\"}],\"matched\":[]}"),
                        "\"reasons\":[{\"code\":\"token_expired\","
                        "\"detail\":\"the token expired at 1000 (60 s "
                        "leeway)\"}],\"matched\":[]}");
    trine_decision_free(d);

    /* A real exp works; no exp means no expiry check. */
    d = check_at(github,
                 "{'server':'github','tool':'get_issue'," ISSUE
                 ",'token':{" ALICE ",'scope':'repo:read','exp':1000.5}}",
                 1060, NULL);
    expect(d, "allow", "allow");
    trine_decision_free(d);
    d = check_at(github,
                 "{'server':'github','tool':'get_issue'," ISSUE
                 ",'token':{" ALICE ",'scope':'repo:read'}}",
                 INT64_C(9000000000), NULL);
    expect(d, "allow", "allow");
    trine_decision_free(d);
}

static void test_token_invalid(void **state)
{
    (void)state;
    static const char *const bad_exp[] = {"'1893456000'", "null", "true",
                                          "[1]"};
    for (size_t i = 0; i < 4; i++) {
        char r[512];
        snprintf(r, sizeof r,
                 "{'server':'github','tool':'get_issue'," ISSUE
                 ",'token':{" ALICE ",'scope':'repo:read','exp':%s}}",
                 bad_exp[i]);
        trine_decision *d = check(github, r);
        expect(d, "deny", "token_invalid");
        has(d, "\"detail\":\"exp must be a number\"");
        trine_decision_free(d);
    }
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{" AUD "}}");
    expect(d, "deny", "token_invalid");
    has(d, "[{\"code\":\"token_invalid\",\"detail\":\"the token has no "
           "sub\"}]");
    assert_null(trine_decision_user(d));
    trine_decision_free(d);
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'sub':''," AUD "}}",
            "deny", "token_invalid");
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'sub':['alice']," AUD "}}",
            "deny", "token_invalid");
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'sub':'al\\u0000ice'," AUD "}}",
            "deny", "token_invalid");
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'sub':'alice','client_id':'c\\u0000d'," AUD "}}",
            "deny", "token_invalid");
}

static void test_token_order(void **state)
{
    (void)state;
    /* exp first, then aud, then sub. */
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'exp':1,'aud':'wrong'}}",
            "deny", "token_expired");
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'exp':'x','aud':'wrong'}}",
            "deny", "token_invalid");
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'aud':'wrong'}}",
            "deny", "audience_mismatch");
    /* The token is judged before the tool is looked up. */
    verdict(github, "{'server':'github','tool':'nope','token':{'exp':1}}",
            "deny", "token_expired");
}

static void test_audience(void **state)
{
    (void)state;
    const char *base = "{'server':'github','tool':'get_issue'," ISSUE
                       ",'token':{'sub':'alice','client_id':'claude-desktop',"
                       "'scope':'repo:read'%s}}";
    static const struct {
        const char *aud;
        const char *reason;
    } cases[] = {
        {",'aud':'https://mcp.example.com/github'", "allow"},
        {",'aud':['x','https://mcp.example.com/github']", "allow"},
        {",'aud':['x','y']", "audience_mismatch"},
        {",'aud':[]", "audience_mismatch"},
        {",'aud':'https://mcp.example.com/github/'", "audience_mismatch"},
        {",'aud':{'https://mcp.example.com/github':1}", "audience_mismatch"},
        {"", "audience_mismatch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].aud);
        trine_decision *d = check(github, r);
        expect(d, strcmp(cases[i].reason, "allow") == 0 ? "allow" : "deny",
               cases[i].reason);
        if (strcmp(cases[i].reason, "allow") != 0)
            has(d, "[{\"code\":\"audience_mismatch\",\"rule\":"
                   "\"github.trine:1\",\"detail\":\"aud names no audience "
                   "of server \\\"github\\\"\"}]");
        trine_decision_free(d);
    }
    /* A server without audiences, or with no server block, checks none. */
    verdict(extra,
            "{'server':'fs','tool':'read','arguments':{'path':'/a'},"
            "'token':{'sub':'u','client_id':'c','scope':'files:read',"
            "'aud':'elsewhere'}}",
            "allow", "allow");
    verdict(extra,
            "{'server':'plain','tool':'args','arguments':{'id':'x'},"
            "'token':{'sub':'u','client_id':'c','scope':'data',"
            "'groups':['analysts'],'aud':'elsewhere'}}",
            "allow", "allow");
    verdict(extra, "{'server':'nowhere','tool':'t','token':{'sub':'u'}}",
            "deny", "unknown_tool");
}

/* ---- Step 2: the tool -------------------------------------------------- */

static void test_tool_lookup(void **state)
{
    (void)state;
    trine_decision *d =
        check(github, "{'server':'github','tool':'close_issue'," ISSUE
                      ",'token':{" ALICE ",'scope':'admin'}}");
    expect(d, "deny", "unknown_tool");
    has(d, "\"reasons\":[{\"code\":\"unknown_tool\",\"detail\":\"no tool "
           "\\\"close_issue\\\" on server \\\"github\\\"\"}]");
    assert_int_equal(trine_decision_consent_mode(d), TRINE_CONSENT_NONE);
    trine_decision_free(d);

    /* The exact tool first, then the wildcard. */
    d = check(extra, "{'server':'fs','tool':'read','arguments':{'path':'/x',"
                     "'name':'n'},'token':{'sub':'u','client_id':'c',"
                     "'scope':'files:read'}}");
    expect(d, "allow", "allow");
    has(d, "[{\"code\":\"allow\",\"rule\":\"extra.trine:22\"}]");
    trine_decision_free(d);
    d = check(extra, "{'server':'fs','tool':'anything','arguments':{'name':"
                     "'n'},'token':{'sub':'u','client_id':'c','scope':"
                     "'files:read'}}");
    expect(d, "allow", "allow");
    has(d, "[{\"code\":\"allow\",\"rule\":\"extra.trine:33\"}]");
    trine_decision_free(d);
    /* Names are exact. */
    verdict(github,
            "{'server':'github','tool':'Get_issue'," ISSUE ",'token':{" ALICE
            ",'scope':'admin'}}",
            "deny", "unknown_tool");
    verdict(github,
            "{'server':'GitHub','tool':'get_issue'," ISSUE ",'token':{" ALICE
            ",'scope':'admin'}}",
            "deny", "unknown_tool");
}

/* ---- Step 3: arguments ------------------------------------------------- */

/* Checks plain/args with the given extra arguments (id is always there). */
static trine_decision *args_check(const char *more)
{
    char r[1024];
    snprintf(r, sizeof r,
             "{'server':'plain','tool':'args','arguments':{'id':'x'%s},"
             "'token':{'sub':'u','client_id':'c','scope':'data','groups':"
             "'analysts'}}",
             more);
    return check(extra, r);
}

static void arg_ok(const char *more)
{
    trine_decision *d = args_check(more);
    expect(d, "allow", "allow");
    trine_decision_free(d);
}

static void arg_bad(const char *more, const char *reason)
{
    trine_decision *d = args_check(more);
    expect(d, "deny", "argument_invalid");
    has(d, reason);
    trine_decision_free(d);
}

static void test_arg_comparisons(void **state)
{
    (void)state;
    arg_ok("");
    arg_ok(",'n':0");
    arg_ok(",'n':9.99");
    arg_ok(",'n':null"); /* null is absent */
    arg_bad(",'n':10", "{\"code\":\"argument_invalid\",\"argument\":\"n\","
                       "\"rule\":\"extra.trine:36\",\"detail\":\"n must be "
                       "< 10\"}");
    arg_bad(",'n':-1", "\"rule\":\"extra.trine:37\",\"detail\":\"n must be "
                       ">= 0\"");
    arg_bad(",'n':true", "\"detail\":\"n must be a number (< 10)\"");
    arg_bad(",'n':'5'", "\"detail\":\"n must be a number (< 10)\"");
    arg_ok(",'opts':{'level':2.5}");
    arg_ok(",'opts':{'level':-0.5}");
    arg_bad(",'opts':{'level':2.6}",
            "\"argument\":\"opts.level\",\"rule\":\"extra.trine:41\","
            "\"detail\":\"opts.level must be <= 2.5\"");
    arg_bad(",'opts':{'level':-1}", "\"detail\":\"opts.level must be > -1\"");
    arg_ok(",'opts':5"); /* the path leads nowhere: absent */
}

static void test_arg_in(void **state)
{
    (void)state;
    arg_ok(",'mode':'a'");
    arg_ok(",'mode':1");
    arg_ok(",'mode':1.0"); /* numbers by value */
    arg_ok(",'mode':true");
    arg_bad(",'mode':'A'", "\"argument\":\"mode\",\"rule\":"
                           "\"extra.trine:38\",\"detail\":\"mode is not one "
                           "of the allowed values\"");
    arg_bad(",'mode':'a '", "\"detail\":\"mode is not one");
    arg_bad(",'mode':1.5", "\"detail\":\"mode is not one");
    arg_bad(",'mode':false", "\"detail\":\"mode is not one");
    arg_bad(",'mode':['a']", "\"detail\":\"mode is not one");
    arg_bad(",'mode':{}", "\"detail\":\"mode is not one");
}

/* One call of a tool of the "x" server with argument v, and the reason it
 * must get. */
typedef struct arg_case {
    const char *tool, *v, *reason;
} arg_case;

static void expect_arg_cases(const trine_policy *p, const arg_case *cases,
                             size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char r[512];
        snprintf(r, sizeof r,
                 "{'server':'x','tool':'%s','arguments':{'id':'i','v':%s},"
                 "'token':{'sub':'u','client_id':'c','scope':'s'}}",
                 cases[i].tool, cases[i].v);
        trine_decision *d = check(p, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("%s %s: %s", cases[i].tool, cases[i].v, json_of(d));
        trine_decision_free(d);
    }
}

static void test_arg_in_bool_vs_number(void **state)
{
    (void)state;
    /* true never equals 1, 1 never equals true. */
    static const char src[] =
        "scope \"s\" { allow a.b on \"*\" }\n"
        "role r { allow a.b on \"*\" }\n"
        "user * { roles r }\n"
        "agent * { allow a.b on \"*\" }\n"
        "tool \"x\" \"ones\" { needs a.b on \"r:{id}\"\n arg v in [1] }\n"
        "tool \"x\" \"trues\" { needs a.b on \"r:{id}\"\n arg v in [true] }\n"
        "tool \"x\" \"reals\" { needs a.b on \"r:{id}\"\n arg v in [2.0] }\n";
    trine_policy *p = load("in.trine", src);
    assert_non_null(p);
    static const arg_case cases[] = {
        {"ones", "1", "allow"},
        {"ones", "1.0", "allow"},
        {"ones", "true", "argument_invalid"},
        {"ones", "'1'", "argument_invalid"},
        {"trues", "true", "allow"},
        {"trues", "1", "argument_invalid"},
        {"trues", "1.0", "argument_invalid"},
        {"reals", "2", "allow"},
        {"reals", "2.0", "allow"},
        {"reals", "2.000001", "argument_invalid"},
    };
    expect_arg_cases(p, cases, sizeof cases / sizeof cases[0]);
    trine_policy_release(p);
}

static void test_arg_comparisons_exact(void **state)
{
    (void)state;
    /* Bounds and values past 2^53 compare exactly, as integers: a double
     * would round 2^53 + 1 down to 2^53 and let it through. */
    static const char src[] = "scope \"s\" { allow a.b on \"*\" }\n"
                              "role r { allow a.b on \"*\" }\n"
                              "user * { roles r }\n"
                              "agent * { allow a.b on \"*\" }\n"
                              "tool \"x\" \"ge\" { needs a.b on \"r\"\n"
                              " arg v >= 9007199254740993 }\n"
                              "tool \"x\" \"le\" { needs a.b on \"r\"\n"
                              " arg v <= 9223372036854775806 }\n"
                              "tool \"x\" \"lt\" { needs a.b on \"r\"\n"
                              " arg v < 9007199254740993 }\n";
    trine_policy *p = load("big.trine", src);
    assert_non_null(p);
    static const arg_case cases[] = {
        {"ge", "9007199254740993", "allow"},
        {"ge", "9007199254740992", "argument_invalid"},
        {"ge", "9007199254740994.0", "allow"},
        {"le", "9223372036854775806", "allow"},
        {"le", "9223372036854775807", "argument_invalid"},
        {"lt", "9007199254740992", "allow"},
        {"lt", "9007199254740993", "argument_invalid"},
    };
    expect_arg_cases(p, cases, sizeof cases / sizeof cases[0]);
    /* The bound reads in a reason as written. */
    trine_decision *d =
        check(p, "{'server':'x','tool':'ge','arguments':{'v':1},"
                 "'token':{'sub':'u','client_id':'c','scope':'s'}}");
    has(d, "\"detail\":\"v must be >= 9007199254740993\"");
    trine_decision_free(d);
    trine_policy_release(p);
}

static void test_arg_strings(void **state)
{
    (void)state;
    /* max_length counts code points: 3 two-byte characters fit. */
    arg_ok(",'name':'\\u00e9\\u00e9\\u00e9'");
    arg_ok(",'name':'\\ud83d\\ude00ab'");
    arg_ok(",'name':''");
    arg_bad(",'name':'abcd'", "\"argument\":\"name\",\"rule\":"
                              "\"extra.trine:39\",\"detail\":\"name is longer "
                              "than 3 code points\"");
    arg_bad(",'name':3", "\"detail\":\"name must be a string (max_length "
                         "3)\"");
    /* matches is a full match and needs a string. */
    arg_ok(",'code':'abc'");
    arg_bad(",'code':'abc1'", "\"argument\":\"code\",\"rule\":"
                              "\"extra.trine:40\",\"detail\":\"code does not "
                              "match /[a-z]+/\"");
    arg_bad(",'code':'Xabc'", "\"detail\":\"code does not match");
    arg_bad(",'code':7", "\"detail\":\"code must be a string to match "
                         "/[a-z]+/\"");
}

/* A failed `matches` names the regex as written: its "\/" and its flag. */
static void test_arg_regex_as_written(void **state)
{
    (void)state;
    trine_policy *p = load("re.trine", "scope \"s\" { allow * on \"*\" }\n"
                                       "role r { allow * on \"*\" }\n"
                                       "user * { roles r }\n"
                                       "agent * { allow * on \"*\" }\n"
                                       "tool \"s\" \"t\" {\n"
                                       "  needs a.b on \"x\"\n"
                                       "  arg p matches /a\\/b/i\n"
                                       "}\n");
    static const char req[] =
        "{'server':'s','tool':'t','arguments':{'p':%s},"
        "'token':{'sub':'u','scope':'s','client_id':'c'}}";
    char r[256];
    snprintf(r, sizeof r, req, "'A/B'");
    trine_decision *d = check(p, r);
    expect(d, "allow", "allow");
    trine_decision_free(d);
    snprintf(r, sizeof r, req, "'a/c'");
    d = check(p, r);
    expect(d, "deny", "argument_invalid");
    has(d, "\"detail\":\"p does not match /a\\\\/b/i\"");
    trine_decision_free(d);
    snprintf(r, sizeof r, req, "1");
    d = check(p, r);
    has(d, "\"detail\":\"p must be a string to match /a\\\\/b/i\"");
    trine_decision_free(d);
    trine_policy_release(p);
}

static void test_arg_required_and_all_listed(void **state)
{
    (void)state;
    trine_decision *d =
        check(github, "{'server':'github','tool':'create_issue','arguments':"
                      "{'owner':'bad owner!','repo':'a/b','title':null},"
                      "'token':{" ALICE ",'scope':'repo:write'}}");
    expect(d, "deny", "argument_invalid");
    /* Every failure, constraints first, then templates. */
    has(d, "\"reasons\":[{\"code\":\"argument_invalid\",\"argument\":"
           "\"owner\",\"rule\":\"github.trine:33\",\"detail\":\"owner does "
           "not match /[A-Za-z0-9-]{1,39}/\"},{\"code\":\"argument_invalid\","
           "\"argument\":\"title\",\"rule\":\"github.trine:35\",\"detail\":"
           "\"title is required\"},{\"code\":\"argument_invalid\","
           "\"argument\":\"repo\",\"rule\":\"github.trine:32\",\"detail\":"
           "\"{repo} must not contain '/'\"}],\"matched\":[]");
    trine_decision_free(d);
}

/* Counts the occurrences of piece in the result JSON. */
static int count_of(const trine_decision *d, const char *piece)
{
    int n = 0;
    for (const char *j = strstr(json_of(d), piece); j != NULL;
         j = strstr(j + 1, piece))
        n++;
    return n;
}

static void test_placeholder_reported_once(void **state)
{
    (void)state;
    static const char src[] =
        "scope \"s\" { allow a.b on \"*\" }\n"
        "tool \"x\" \"dup\" { needs a.b, a.c on \"r:{id}/{id}\"\n"
        "  needs a.d on \"q:{id}\" }\n";
    trine_policy *p = load("dup.trine", src);
    assert_non_null(p);
    trine_decision *d =
        check(p, "{'server':'x','tool':'dup','arguments':{'id':'a/b'},"
                 "'token':{'sub':'u','client_id':'c','scope':'s'}}");
    expect(d, "deny", "argument_invalid");
    /* Once per template that uses it, not once per use. */
    assert_int_equal(count_of(d, "\"code\":\"argument_invalid\""), 2);
    has(d, "\"argument\":\"id\",\"rule\":\"dup.trine:2\"");
    has(d, "\"argument\":\"id\",\"rule\":\"dup.trine:3\"");
    trine_decision_free(d);
    trine_policy_release(p);
}

static void tmpl_case(const char *tool, const char *args, const char *reason,
                      const char *piece)
{
    char r[1024];
    snprintf(r, sizeof r,
             "{'server':'fs','tool':'%s','arguments':%s,'token':{'sub':'u',"
             "'client_id':'c','scope':'files:all'}}",
             tool, args);
    trine_decision *d = check(extra, r);
    if (strcmp(trine_decision_reason(d), reason) != 0)
        fail_msg("%s %s: want %s, got %s", tool, args, reason, json_of(d));
    if (piece != NULL)
        has(d, piece);
    trine_decision_free(d);
}

static void test_templates(void **state)
{
    (void)state;
    /* {p}: the wildcard tool's {name}. */
    tmpl_case("w", "{'name':'ok'}", "allow", "\"matched\":[{\"set\":\"user\"");
    tmpl_case("w", "{'name':7}", "allow", NULL);
    tmpl_case("w", "{'name':7.0}", "argument_invalid",
              "\"argument\":\"name\",\"rule\":\"extra.trine:33\","
              "\"detail\":\"{name} must be a string or an integer\"");
    tmpl_case("w", "{'name':true}", "argument_invalid",
              "{name} must be a string or an integer");
    tmpl_case("w", "{'name':''}", "argument_invalid",
              "{name} must not be empty");
    tmpl_case("w", "{'name':'*'}", "argument_invalid",
              "{name} must not contain '*' or '?'");
    tmpl_case("w", "{'name':'a?'}", "argument_invalid",
              "{name} must not contain '*' or '?'");
    tmpl_case("w", "{'name':'a\\tb'}", "argument_invalid",
              "{name} must not contain a control character");
    tmpl_case("w", "{'name':'a\\u0085b'}", "argument_invalid",
              "{name} must not contain a control character");
    tmpl_case("w", "{'name':'a/b'}", "argument_invalid",
              "{name} must not contain '/'");
    tmpl_case("w", "{'name':'..'}", "argument_invalid",
              "{name} must not be '.' or '..'");
    tmpl_case("w", "{'name':'.'}", "argument_invalid",
              "{name} must not be '.' or '..'");
    tmpl_case("w", "{}", "argument_invalid", "{name} is missing");
    tmpl_case("w", "{'name':null}", "argument_invalid", "{name} is missing");

    /* {p...}: the read tool's {path...}. */
    tmpl_case("read", "{'path':'/'}", "allow", NULL);
    tmpl_case("read", "{'path':'/etc/passwd'}", "allow", NULL);
    tmpl_case("read", "{'path':'a/b/'}", "allow", NULL);
    tmpl_case("read", "{'path':12}", "allow", NULL);
    tmpl_case("read", "{'path':1.5}", "argument_invalid",
              "\"argument\":\"path\",\"rule\":\"extra.trine:22\","
              "\"detail\":\"{path...} must be a string or an integer\"");
    tmpl_case("read", "{'path':''}", "argument_invalid",
              "{path...} must not be empty");
    tmpl_case("read", "{'path':'/a/*'}", "argument_invalid",
              "{path...} must not contain '*' or '?'");
    tmpl_case("read", "{'path':'/a\\u0000'}", "argument_invalid",
              "{path...} must not contain a control character");
    tmpl_case("read", "{'path':'/a/../etc'}", "argument_invalid",
              "{path...} must not contain a '.' or '..' segment");
    tmpl_case("read", "{'path':'./a'}", "argument_invalid",
              "{path...} must not contain a '.' or '..' segment");
    tmpl_case("read", "{'path':'/a//b'}", "argument_invalid",
              "{path...} must not contain an empty segment");

    /* Both templates of one tool are reported. */
    tmpl_case("move", "{'from':'a//b','to':'..'}", "argument_invalid",
              "\"argument\":\"from\",\"rule\":\"extra.trine:25\",\"detail\":"
              "\"{from...} must not contain an empty segment\"},{\"code\":"
              "\"argument_invalid\",\"argument\":\"to\",\"rule\":"
              "\"extra.trine:26\",\"detail\":\"{to...} must not contain a "
              "'.' or '..' segment\"}");
}

static void test_resources_are_data(void **state)
{
    (void)state;
    /* A literal '*' in a value never reaches the matcher... */
    verdict(github,
            "{'server':'github','tool':'get_issue','arguments':{'owner':"
            "'acme','repo':'*'},'token':{" ALICE ",'scope':'repo:read'}}",
            "deny", "argument_invalid");
    /* ...and a glob in the policy matches the filled text only. */
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue','arguments':"
                      "{'owner':'evil','repo':'x'},'token':{" ALICE
                      ",'scope':'repo:read'}}");
    expect(d, "deny", "user_denied");
    has(d, "\"resource\":\"repo:evil/x\"");
    trine_decision_free(d);
}

/* ---- Step 4: forbid ---------------------------------------------------- */

static void test_forbid(void **state)
{
    (void)state;
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue','arguments':"
                      "{'owner':'acme','repo':'secrets'},'token':{" ALICE
                      ",'scope':'repo:read'}}");
    expect(d, "deny", "forbidden");
    has(d, "\"reasons\":[{\"code\":\"forbidden\",\"action\":\"issues.read\","
           "\"resource\":\"repo:acme/secrets\",\"rule\":\"github.trine:45\","
           "\"detail\":\"an absolute limit of the policy forbids it\"}],"
           "\"matched\":[]");
    trine_decision_free(d);

    /* Forbid beats everything: even an admin with every grant. */
    verdict(github,
            "{'server':'github','tool':'delete_repo','arguments':{'owner':"
            "'acme','repo':'secrets'},'token':{'sub':'alice','client_id':"
            "'ops-console','scope':'admin'," AUD "}}",
            "deny", "forbidden");
}

/* ---- Step 5: the three sets -------------------------------------------- */

static void test_sets_example(void **state)
{
    (void)state;
    /* Alice may read through claude-desktop with repo:read. */
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{" ALICE ",'scope':'repo:read'}}");
    expect(d, "allow", "allow");
    has(d, "\"matched\":[{\"set\":\"user\",\"rule\":\"github.trine:13\"},"
           "{\"set\":\"scope\",\"rule\":\"github.trine:7\"},{\"set\":"
           "\"agent\",\"rule\":\"github.trine:22\"}]");
    trine_decision_free(d);

    /* Bob (user * -> reader) may read acme, not other owners. */
    verdict(github,
            "{'server':'github','tool':'get_issue'," ISSUE
            ",'token':{'sub':'bob','client_id':'claude-desktop',"
            "'scope':'repo:read'," AUD "}}",
            "allow", "allow");
    /* Deny overrides allow inside U: maintainer denies prod-* deletes. */
    d = check(github,
              "{'server':'github','tool':'delete_repo','arguments':"
              "{'owner':'acme','repo':'prod-db'},'token':{'sub':"
              "'alice','client_id':'ops-console','scope':'admin'," AUD "}}");
    expect(d, "deny", "user_denied");
    has(d, "{\"code\":\"user_denied\",\"set\":\"user\",\"action\":"
           "\"repo.delete\",\"resource\":\"repo:acme/prod-db\",\"rule\":"
           "\"github.trine:14\",\"detail\":\"denied by role maintainer\"}");
    /* ... and inside A: agent * denies prod-* deletes for everyone. */
    has(d, "{\"code\":\"agent_denied\",\"set\":\"agent\",\"action\":"
           "\"repo.delete\",\"resource\":\"repo:acme/prod-db\",\"agent\":"
           "\"ops-console\",\"rule\":\"github.trine:25\",\"detail\":\"agent "
           "ops-console is denied by agent block *\"}");
    lacks(d, "required_scopes");
    trine_decision_free(d);
}

static void test_groups_and_roles_claims(void **state)
{
    (void)state;
    const char *base = "{'server':'plain','tool':'write','arguments':{'id':"
                       "'%s'},'token':{'sub':'u','client_id':'c','scope':"
                       "'data'%s}}";
    static const struct {
        const char *id, *claims, *reason;
    } cases[] = {
        {"x", "", "user_denied"},
        {"x", ",'groups':['analysts']", "allow"},
        {"x", ",'groups':'analysts'", "allow"}, /* a lone string */
        {"x", ",'roles':['analysts']", "allow"},
        {"x", ",'roles':'analysts'", "allow"},
        {"x", ",'groups':[5,{},'analysts']", "allow"},
        {"x", ",'groups':'analysts locked'", "user_denied"},
        {"x", ",'groups':{'analysts':true}", "user_denied"},
        /* Deny in any role wins over allow in another. */
        {"locked", ",'groups':['analysts','locked']", "user_denied"},
        {"locked", ",'groups':['analysts'],'roles':['locked']", "user_denied"},
        {"open", ",'groups':['analysts','locked']", "allow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].id, cases[i].claims);
        trine_decision *d = check(extra, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("case %zu: want %s, got %s", i, cases[i].reason,
                     json_of(d));
        trine_decision_free(d);
    }
    trine_decision *d =
        check(extra, "{'server':'plain','tool':'write','arguments':{'id':"
                     "'locked'},'token':{'sub':'u','client_id':'c','scope':"
                     "'data','groups':['analysts','locked']}}");
    has(d, "\"reasons\":[{\"code\":\"user_denied\",\"set\":\"user\","
           "\"action\":\"data.write\",\"resource\":\"data:locked\",\"rule\":"
           "\"extra.trine:13\",\"detail\":\"denied by role nodata\"}]");
    trine_decision_free(d);
}

static void test_scope_claims(void **state)
{
    (void)state;
    const char *base = "{'server':'github','tool':'get_issue'," ISSUE
                       ",'token':{" ALICE "%s}}";
    static const struct {
        const char *claims, *reason;
    } cases[] = {
        {",'scope':'repo:read'", "allow"},
        {",'scope':'other repo:read'", "allow"},
        {",'scp':['repo:read']", "allow"},
        {",'scp':'x repo:read'", "allow"},
        /* scope wins over scp when present. */
        {",'scope':'other','scp':['repo:read']", "scope_missing"},
        {",'scope':'','scp':['repo:read']", "scope_missing"},
        {",'scope':['repo:read'],'scp':['repo:read']", "scope_missing"},
        {",'scope':'repo:read','scp':[]", "allow"},
        {"", "scope_missing"},
        {",'scope':'Repo:read'", "scope_missing"},
        {",'scope':'repo:read repo:read'", "allow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].claims);
        trine_decision *d = check(github, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("case %zu: want %s, got %s", i, cases[i].reason,
                     json_of(d));
        trine_decision_free(d);
    }
}

static void test_agents(void **state)
{
    (void)state;
    const char *base =
        "{'server':'github','tool':'get_issue'," ISSUE
        ",'token':{'sub':'alice','scope':'repo:read'," AUD "%s}}";
    static const struct {
        const char *claims, *reason;
    } cases[] = {
        {",'client_id':'claude-desktop'", "allow"},
        {",'azp':'claude-desktop'", "allow"},
        {",'client_id':'ci-bot','azp':'claude-desktop'", "agent_denied"},
        {",'client_id':7,'azp':'claude-desktop'", "agent_denied"},
        {",'client_id':null,'azp':'claude-desktop'", "allow"},
        {"", "agent_denied"},
        {",'client_id':''", "agent_denied"},
        {",'client_id':'unknown'", "agent_denied"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].claims);
        trine_decision *d = check(github, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("case %zu: want %s, got %s", i, cases[i].reason,
                     json_of(d));
        trine_decision_free(d);
    }
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{'sub':'alice','scope':"
                      "'repo:read'," AUD "}}");
    has(d, "\"reasons\":[{\"code\":\"agent_denied\",\"set\":\"agent\","
           "\"action\":\"issues.read\",\"resource\":\"repo:acme/widgets\","
           "\"detail\":\"the token names no agent (no client_id or azp)\"}]");
    assert_null(trine_decision_agent(d));
    trine_decision_free(d);
    d = check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{'sub':'alice','client_id':'ci-bot','scope':"
                      "'repo:read'," AUD "}}");
    has(d, "\"agent\":\"ci-bot\",\"detail\":\"no agent block allows agent "
           "ci-bot to do it\"}");
    trine_decision_free(d);
}

static void test_delegation_current_actor(void **state)
{
    (void)state;
    const char *base = "{'server':'github','tool':'get_issue'," ISSUE
                       ",'token':{" ALICE ",'scope':'repo:read'%s}}";
    static const struct {
        const char *claims, *reason, *chain;
    } cases[] = {
        {"", "allow", NULL},
        {",'act':null", "allow", NULL},
        {",'act':{'client_id':'ops-console'}", "allow", "[\"ops-console\"]"},
        {",'act':{'sub':'ops-console'}", "allow", "[\"ops-console\"]"},
        {",'act':{'client_id':'ci-bot'}", "agent_denied", "[\"ci-bot\"]"},
        {",'act':{'client_id':'x','sub':'ops-console'}", "agent_denied",
         "[\"x\"]"},
        {",'act':'ops-console'", "agent_denied", "[null]"},
        {",'act':{'iss':'x'}", "agent_denied", "[null]"},
        {",'act':{'client_id':''}", "agent_denied", "[null]"},
        /* A prior actor is informational only in current_actor mode. */
        {",'act':{'client_id':'ops-console','act':{'client_id':'ci-bot'}}",
         "allow", "[\"ops-console\",\"ci-bot\"]"},
        {",'act':{'client_id':'ops-console','act':7}", "allow",
         "[\"ops-console\",null]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].claims);
        trine_decision *d = check(github, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("case %zu: want %s, got %s", i, cases[i].reason,
                     json_of(d));
        const char *chain = trine_decision_chain(d);
        if (cases[i].chain == NULL)
            assert_null(chain);
        else
            assert_string_equal(chain, cases[i].chain);
        trine_decision_free(d);
    }
    trine_decision *d =
        check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{" ALICE ",'scope':'repo:read','act':"
                      "{'client_id':'ops-console'}}}");
    has(d, "{\"set\":\"agent\",\"rule\":\"github.trine:22\"},{\"set\":"
           "\"agent\",\"agent\":\"ops-console\",\"rule\":"
           "\"github.trine:23\"}]");
    trine_decision_free(d);
    d = check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{" ALICE ",'scope':'repo:read','act':[1]}}");
    has(d, "\"reasons\":[{\"code\":\"agent_denied\",\"set\":\"agent\","
           "\"action\":\"issues.read\",\"resource\":\"repo:acme/widgets\","
           "\"detail\":\"actor 1 of the delegation chain: act is not an "
           "object\"}]");
    trine_decision_free(d);
}

static void test_delegation_full_chain(void **state)
{
    (void)state;
    const char *base = "{'server':'fs','tool':'read','arguments':{'path':"
                       "'/a'},'token':{'sub':'u','client_id':'c','scope':"
                       "'files:read'%s}}";
    static const struct {
        const char *claims, *reason;
    } cases[] = {
        {",'act':{'client_id':'x','act':{'sub':'y'}}", "allow"},
        {",'act':{'client_id':'x','act':{'client_id':'bad'}}", "agent_denied"},
        {",'act':{'client_id':'bad','act':{'client_id':'x'}}", "agent_denied"},
        {",'act':{'client_id':'x','act':'y'}", "agent_denied"},
        {",'act':{'client_id':'x','act':{'iss':'y'}}", "agent_denied"},
        {",'act':{'client_id':'x','act':null}", "allow"},
        {",'act':null", "allow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char r[512];
        snprintf(r, sizeof r, base, cases[i].claims);
        trine_decision *d = check(extra, r);
        if (strcmp(trine_decision_reason(d), cases[i].reason) != 0)
            fail_msg("case %zu: want %s, got %s", i, cases[i].reason,
                     json_of(d));
        trine_decision_free(d);
    }
    trine_decision *d =
        check(extra, "{'server':'fs','tool':'read','arguments':{'path':'/a'},"
                     "'token':{'sub':'u','client_id':'c','scope':"
                     "'files:read','act':{'client_id':'x','act':{"
                     "'client_id':'bad','act':{'sub':'z'}}}}}");
    assert_string_equal(json_of(d) + strcspn(json_of(d), "["),
                        "[{\"code\":\"agent_denied\",\"set\":\"agent\","
                        "\"action\":\"file.read\",\"resource\":\"file:/a\","
                        "\"agent\":\"bad\",\"rule\":\"extra.trine:21\","
                        "\"detail\":\"actor bad (actor 2 of the delegation "
                        "chain) is denied by agent block "
                        "bad\"}],\"matched\":[{\"set\":\"user\",\"rule\":"
                        "\"extra.trine:11\"},{\"set\":\"scope\",\"rule\":"
                        "\"extra.trine:5\"},{\"set\":\"agent\",\"rule\":"
                        "\"extra.trine:18\"},{\"set\":\"agent\",\"agent\":"
                        "\"x\",\"rule\":\"extra.trine:18\"},{\"set\":"
                        "\"agent\",\"agent\":\"z\",\"rule\":"
                        "\"extra.trine:18\"}]}");
    assert_string_equal(trine_decision_chain(d), "[\"x\",\"bad\",\"z\"]");
    trine_decision_free(d);

    /* A chain deeper than trine follows fails closed in full_chain. */
    char deep[4096] = "{'server':'fs','tool':'read','arguments':{'path':"
                      "'/a'},'token':{'sub':'u','client_id':'c','scope':"
                      "'files:read'";
    for (int i = 0; i < CLAIMS_MAX_ACTORS + 1; i++)
        strcat(deep, ",'act':{'sub':'s'");
    for (int i = 0; i < CLAIMS_MAX_ACTORS + 1; i++)
        strcat(deep, "}");
    strcat(deep, "}}");
    d = check(extra, deep);
    expect(d, "deny", "agent_denied");
    has(d, "\"detail\":\"actor 17 of the delegation chain: the chain is "
           "deeper than trine follows\"");
    trine_decision_free(d);
}

static void test_primary_and_every_failure(void **state)
{
    (void)state;
    /* U, A and S all fail: user_denied leads, every failure is listed in
     * the order user, agent, scope, and there is no step-up. */
    trine_decision *d =
        check(github, "{'server':'github','tool':'delete_repo','arguments':"
                      "{'owner':'acme','repo':'prod-db'},'token':{'sub':"
                      "'bob','client_id':'ci-bot','scope':'repo:read'," AUD
                      ",'act':{'client_id':'ops-console'}}}");
    expect(d, "deny", "user_denied");
    const char *j = json_of(d);
    const char *u = strstr(j, "\"code\":\"user_denied\"");
    const char *a1 = strstr(j, "\"agent\":\"ci-bot\"");
    const char *a2 = strstr(j, "\"agent\":\"ops-console\"");
    const char *s = strstr(j, "\"code\":\"scope_missing\"");
    assert_non_null(u);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(s);
    assert_true(u < a1 && a1 < a2 && a2 < s);
    lacks(d, "required_scopes");
    lacks(d, "www_authenticate");
    trine_decision_free(d);

    /* A and S fail: agent_denied, still no step-up. */
    d = check(github, "{'server':'github','tool':'get_issue'," ISSUE
                      ",'token':{'sub':'alice','client_id':'ci-bot'," AUD "}}");
    expect(d, "deny", "agent_denied");
    has(d, "\"code\":\"scope_missing\"");
    lacks(d, "required_scopes");
    trine_decision_free(d);
}

/* ---- Step-up ----------------------------------------------------------- */

static void test_step_up(void **state)
{
    (void)state;
    /* Example: alice with repo:read creating an issue. */
    trine_decision *d =
        check(github, "{'server':'github','tool':'create_issue','arguments':"
                      "{'owner':'acme','repo':'widgets','title':'t'},"
                      "'token':{" ALICE ",'scope':'repo:read'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"repo:write\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"repo:write"
           "\\\", resource_metadata=\\\"https://mcp.example.com/"
           ".well-known/oauth-protected-resource\\\"\"}");
    trine_decision_free(d);

    /* Tie between files:write and files:all: the first declared wins. */
    d = check(extra, "{'server':'fs','tool':'write','arguments':{'path':"
                     "'/tmp/x'},'token':{'sub':'u','client_id':'c'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"files:write\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"files:write"
           "\\\", resource_metadata=\\\"https://fs.example/rm\\\"\"}");
    trine_decision_free(d);

    /* The biggest gain first: files:all covers all three pairs. */
    d = check(extra, "{'server':'fs','tool':'move','arguments':{'from':'/a',"
                     "'to':'/b'},'token':{'sub':'u','client_id':'c'}}");
    has(d, "\"required_scopes\":[\"files:all\"]");
    trine_decision_free(d);

    /* Token scopes that grant a needed pair come first, in token order. */
    d = check(extra, "{'server':'fs','tool':'move','arguments':{'from':'/a',"
                     "'to':'/tmp/x'},'token':{'sub':'u','client_id':'c',"
                     "'scope':'tmp data files:read'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"files:all\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"tmp "
           "files:read files:all\\\", resource_metadata=\\\"https://"
           "fs.example/rm\\\"\"}");
    trine_decision_free(d);

    /* Without resource_metadata, the header has no such part. */
    d = check(extra, "{'server':'plain','tool':'write','arguments':{'id':"
                     "'x'},'token':{'sub':'u','client_id':'c','groups':"
                     "'analysts'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"data\"],\"www_authenticate\":\"Bearer "
           "error=\\\"insufficient_scope\\\", scope=\\\"data\\\"\"}");
    trine_decision_free(d);
}

static void test_step_up_uncoverable(void **state)
{
    (void)state;
    /* No scope grants anything on net:*: [] and no header. */
    trine_decision *d =
        check(extra, "{'server':'fs','tool':'fetch','arguments':{'host':"
                     "'h'},'token':{'sub':'u','client_id':'c','scope':"
                     "'files:all'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[]}");
    lacks(d, "www_authenticate");
    trine_decision_free(d);

    /* The coverable pair is covered, the other left out. */
    d = check(extra, "{'server':'fs','tool':'fetch2','arguments':{'host':'h',"
                     "'path':'/p'},'token':{'sub':'u','client_id':'c'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"files:read\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"files:read"
           "\\\", resource_metadata=\\\"https://fs.example/rm\\\"\"}");
    trine_decision_free(d);

    /* A pair that a held scope denies still failed S, and is covered by
     * the scope blocks that grant it on their own (DESIGN §2.5), here one
     * the token holds: the header then names it once. */
    d = check(extra, "{'server':'fs','tool':'move','arguments':{'from':'/a',"
                     "'to':'/b'},'token':{'sub':'u','client_id':'c','scope':"
                     "'files:all nodel'}}");
    expect(d, "deny", "scope_missing");
    has(d, "{\"code\":\"scope_missing\",\"set\":\"scope\",\"action\":"
           "\"file.delete\",\"resource\":\"file:/a\",\"rule\":"
           "\"extra.trine:9\",\"detail\":\"denied by scope nodel\"}");
    has(d, "\"required_scopes\":[\"files:all\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"files:all"
           "\\\", resource_metadata=\\\"https://fs.example/rm\\\"\"}");
    trine_decision_free(d);

    /* The same with a token whose other scopes grant only part of the
     * call: held granting scopes first (token order), then the cover. */
    d = check(extra, "{'server':'fs','tool':'move','arguments':{'from':'/a',"
                     "'to':'/tmp/b'},'token':{'sub':'u','client_id':'c',"
                     "'scope':'nodel tmp files:read'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"files:all\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"tmp "
           "files:read files:all\\\", resource_metadata=\\\"https://"
           "fs.example/rm\\\"\"}");
    trine_decision_free(d);
}

/* A pair needed twice is one pair of the cover: it must not outweigh a
 * scope that covers two distinct pairs (found by test_property). */
static void test_step_up_repeated_pair(void **state)
{
    (void)state;
    static const char src[] = "scope \"one\" { allow a.b on \"*\" }\n"
                              "scope \"two\" { allow a.c, a.d on \"r:*\" }\n"
                              "role any { allow * on \"*\" }\n"
                              "user * { roles any }\n"
                              "agent * { allow * on \"*\" }\n"
                              "tool \"s\" \"t\" {\n"
                              "  needs a.b, a.b on \"x\"\n"
                              "  needs a.c, a.d on \"r:x\"\n"
                              "}\n";
    trine_policy *p = load("dup.trine", src);
    assert_non_null(p);
    trine_decision *d = check(
        p, "{'server':'s','tool':'t','token':{'sub':'u','client_id':'c'}}");
    expect(d, "deny", "scope_missing");
    has(d, "\"required_scopes\":[\"two\",\"one\"],\"www_authenticate\":"
           "\"Bearer error=\\\"insufficient_scope\\\", scope=\\\"two one"
           "\\\"\"}");
    /* And one reason: the pair a.b on x is listed once. */
    has(d, "\"reasons\":[{\"code\":\"scope_missing\",\"set\":\"scope\","
           "\"action\":\"a.b\",\"resource\":\"x\",\"detail\":\"no scope of "
           "the token allows it\"},{\"code\":\"scope_missing\",\"set\":"
           "\"scope\",\"action\":\"a.c\"");
    trine_decision_free(d);
    trine_policy_release(p);
}

/* ---- Step 6: consent --------------------------------------------------- */

typedef struct fake_store {
    int calls;
    int answer;
    int64_t grant;
    trine_consent_query last;
    char user[64], agent[64], server[64], tool[64], session[64], hash[65];
    bool had_session;
} fake_store;

static int fake_lookup(void *ctx, const trine_consent_query *q,
                       int64_t *grant_id)
{
    fake_store *f = ctx;
    f->calls++;
    f->last = *q;
    snprintf(f->user, sizeof f->user, "%s", q->user ? q->user : "(null)");
    snprintf(f->agent, sizeof f->agent, "%s", q->agent ? q->agent : "(null)");
    snprintf(f->server, sizeof f->server, "%s", q->server);
    snprintf(f->tool, sizeof f->tool, "%s", q->tool);
    f->had_session = q->session != NULL;
    snprintf(f->session, sizeof f->session, "%s", q->session ? q->session : "");
    snprintf(f->hash, sizeof f->hash, "%s",
             q->args_hash ? q->args_hash : "(null)");
    if (f->answer == 1)
        *grant_id = f->grant;
    return f->answer;
}

#define CREATE                                                                 \
    "{'server':'github','tool':'create_issue','arguments':{'owner':'acme',"    \
    "'repo':'widgets','title':'Crash','body':'secret'}%s,'token':{" ALICE      \
    ",'scope':'repo:write'}}"

static trine_decision *consent_check(const char *fmt, const char *session,
                                     fake_store *f)
{
    char r[1024];
    snprintf(r, sizeof r, fmt, session);
    trine_check_opts o = {NOW_S * 1000, fake_lookup, f};
    return check_at(github, r, 0, &o);
}

static void test_consent_session(void **state)
{
    (void)state;
    fake_store f = {0};
    /* No grant: consent_required with the filled prompt. */
    trine_decision *d = consent_check(CREATE, ",'session':'s1'", &f);
    expect(d, "consent_required", "consent_required");
    assert_int_equal(f.calls, 1);
    assert_string_equal(f.user, "alice");
    assert_string_equal(f.agent, "claude-desktop");
    assert_string_equal(f.server, "github");
    assert_string_equal(f.tool, "create_issue");
    assert_string_equal(f.session, "s1");
    assert_int_equal(f.last.mode, TRINE_CONSENT_SESSION);
    assert_true(f.last.now_ms == NOW_S * 1000);
    /* Only `always` grants are bound to the arguments. */
    assert_string_equal(f.hash, "(null)");
    has(d, "\"consent\":{\"mode\":\"session\",\"prompt\":\"Let "
           "claude-desktop open issues in acme/widgets for this session?\"},"
           "\"reasons\":[{\"code\":\"consent_required\",\"rule\":"
           "\"github.trine:36\"}]");
    assert_int_equal(trine_decision_consent_grant(d), -1);
    trine_decision_free(d);

    /* A grant: allow, and the grant id is recorded. */
    f = (fake_store){.answer = 1, .grant = 77};
    d = consent_check(CREATE, ",'session':'s1'", &f);
    expect(d, "allow", "allow");
    assert_int_equal(trine_decision_consent_grant(d), 77);
    lacks(d, "\"consent\"");
    trine_decision_free(d);

    /* No session, a null one or an empty one: never a grant, no lookup. */
    static const char *const none[] = {"", ",'session':null", ",'session':''"};
    for (size_t i = 0; i < 3; i++) {
        f = (fake_store){.answer = 1, .grant = 77};
        d = consent_check(CREATE, none[i], &f);
        expect(d, "consent_required", "consent_required");
        assert_int_equal(f.calls, 0);
        trine_decision_free(d);
    }

    /* A failed lookup fails closed. */
    f = (fake_store){.answer = TRINE_ECONSENT};
    d = consent_check(CREATE, ",'session':'s1'", &f);
    expect(d, "deny", "audit_unavailable");
    has(d, "\"reasons\":[{\"code\":\"audit_unavailable\",\"detail\":\"the "
           "consent store (in the audit database) could not be read\"}]");
    lacks(d, "\"consent\"");
    trine_decision_free(d);

    /* Without a lookup function no grant exists anywhere. */
    verdict(github,
            "{'server':'github','tool':'create_issue','arguments':{'owner':"
            "'acme','repo':'widgets','title':'Crash'},'session':'s1',"
            "'token':{" ALICE ",'scope':'repo:write'}}",
            "consent_required", "consent_required");
}

static void test_consent_modes(void **state)
{
    (void)state;
    const char *base = "{'server':'plain','tool':'%s','arguments':{'id':'x',"
                       "'n':4.5}%s,'token':{'sub':'u','client_id':'c',"
                       "'scope':'data','groups':'analysts'}}";
    char r[512];
    fake_store f = {0};
    trine_check_opts o = {NOW_S * 1000, fake_lookup, &f};

    /* once: a session is not needed; the default prompt. */
    snprintf(r, sizeof r, base, "once", "");
    trine_decision *d = check_at(extra, r, 0, &o);
    expect(d, "consent_required", "consent_required");
    assert_int_equal(f.calls, 1);
    assert_false(f.had_session);
    assert_string_equal(f.hash, "(null)");
    assert_int_equal(f.last.mode, TRINE_CONSENT_ONCE);
    assert_int_equal(trine_decision_consent_mode(d), TRINE_CONSENT_ONCE);
    assert_int_equal(trine_decision_consent_duration_s(d), 7 * 86400);
    has(d, "\"consent\":{\"mode\":\"once\",\"prompt\":\"Allow c to call once "
           "on plain for u?\"},\"reasons\":[{\"code\":\"consent_required\","
           "\"rule\":\"extra.trine:47\"}]");
    trine_decision_free(d);

    /* always: the query carries the hash of the exact arguments. */
    f = (fake_store){0};
    snprintf(r, sizeof r, base, "always", ",'session':'s'");
    d = check_at(extra, r, 0, &o);
    expect(d, "consent_required", "consent_required");
    assert_int_equal(f.last.mode, TRINE_CONSENT_ALWAYS);
    assert_string_equal(f.session, "s");
    char hex[65];
    trine_sha256_hex("{\"id\":\"x\",\"n\":4.5}", 18, hex);
    assert_string_equal(f.hash, hex);
    assert_int_equal(trine_decision_consent_duration_s(d), -1);
    has(d, "\"prompt\":\"Really x as u via c on plain/always? 4.5\"");
    trine_decision_free(d);

    /* session without a prompt: the default prompt. */
    f = (fake_store){0};
    snprintf(r, sizeof r, base, "sess", "");
    d = check_at(extra, r, 0, &o);
    expect(d, "consent_required", "consent_required");
    assert_int_equal(f.calls, 0);
    has(d, "\"consent\":{\"mode\":\"session\",\"prompt\":\"Allow c to call "
           "sess on plain for u?\"}");
    trine_decision_free(d);

    /* Consent comes last: a deny earlier never asks the store. */
    f = (fake_store){.answer = 1, .grant = 3};
    snprintf(r, sizeof r, base, "always", "");
    char *p = strstr(r, "'scope':'data'");
    memcpy(p, "'scope':'xxxx'", 14);
    d = check_at(extra, r, 0, &o);
    expect(d, "deny", "scope_missing");
    assert_int_equal(f.calls, 0);
    trine_decision_free(d);
}

/* ---- Facts for the audit log ------------------------------------------- */

/* Writes d with trine_decision_write (audit false) or _write_audit into a
 * new string (free it). */
static char *written(const trine_decision *d, bool audit)
{
    size_t n = audit ? trine_decision_write_audit(d, 7, NULL, 0)
                     : trine_decision_write(d, 7, NULL, 0);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    if (audit)
        trine_decision_write_audit(d, 7, buf, n + 1);
    else
        trine_decision_write(d, 7, buf, n + 1);
    return buf;
}

/* A redacted value that a template or the prompt fills: the reply has it,
 * the audit copy has "[redacted]" in its place, and nothing else differs. */
static void test_redacted_text_in_the_audit_copy(void **state)
{
    (void)state;
    trine_policy *p =
        load("v.trine",
             "scope \"s\" { allow * on \"*\" }\n"
             "role r { allow * on \"*\" }\n"
             "user \"u\" { roles r }\n"
             "agent * { allow * on \"*\" }\n"
             "tool \"v\" \"read\" {\n"
             "  needs s.read on \"secret:{team}/{k.name}\"\n"
             "  consent session \"{tool} {k.name} as {user}, pin {pin}?\"\n"
             "  redact k, pin, user\n"
             "}\n"
             "tool \"v\" \"plain\" { needs s.read on \"x:{team}\" }\n");
    /* Denied: the resource of every reason. */
    trine_decision *d =
        check(p, "{'server':'v','tool':'read','arguments':{'team':'ops',"
                 "'k':{'name':'pw9'},'pin':4711,'user':'x'},"
                 "'token':{'sub':'nobody','scope':'s','client_id':'c'}}");
    expect(d, "deny", "user_denied");
    assert_true(trine_decision_has_redacted(d));
    char *reply = written(d, false);
    char *audit = written(d, true);
    assert_non_null(strstr(reply, "\"resource\":\"secret:ops/pw9\""));
    assert_null(strstr(audit, "pw9"));
    assert_non_null(strstr(audit, "\"resource\":\"secret:ops/[redacted]\""));
    free(reply);
    free(audit);
    trine_decision_free(d);

    /* consent_required: the prompt; {user} is the reserved name, not the
     * redacted argument "user". */
    d = check(p, "{'server':'v','tool':'read','arguments':{'team':'ops',"
                 "'k':{'name':'pw9'},'pin':4711,'user':'x'},'session':'s1',"
                 "'token':{'sub':'u','scope':'s','client_id':'c'}}");
    expect(d, "consent_required", "consent_required");
    reply = written(d, false);
    audit = written(d, true);
    assert_non_null(strstr(reply, "\"prompt\":\"read pw9 as u, pin 4711?\""));
    assert_non_null(
        strstr(audit, "\"prompt\":\"read [redacted] as u, pin [redacted]?\""));
    assert_null(strstr(audit, "4711"));
    free(reply);
    free(audit);
    trine_decision_free(d);

    /* Nothing redacted is filled: one text. */
    d = check(p, "{'server':'v','tool':'plain','arguments':{'team':'ops'},"
                 "'token':{'sub':'nobody','scope':'s','client_id':'c'}}");
    expect(d, "deny", "user_denied");
    assert_false(trine_decision_has_redacted(d));
    reply = written(d, false);
    audit = written(d, true);
    assert_string_equal(reply, audit);
    free(reply);
    free(audit);
    trine_decision_free(d);
    trine_policy_release(p);
}

static void test_facts(void **state)
{
    (void)state;
    trine_decision *d = check(
        github, "{'server':'github','tool':'create_issue','arguments':{"
                "'title':'T','owner':'acme','repo':'widgets','body':'secret'},"
                "'session':'s9','token':{" ALICE ",'scope':'repo:write',"
                "'act':{'client_id':'ops-console','act':{'sub':'root'}}}}");
    assert_string_equal(trine_decision_server(d), "github");
    assert_string_equal(trine_decision_tool(d), "create_issue");
    assert_string_equal(trine_decision_user(d), "alice");
    assert_string_equal(trine_decision_agent(d), "claude-desktop");
    assert_string_equal(trine_decision_session(d), "s9");
    assert_string_equal(trine_decision_chain(d), "[\"ops-console\",\"root\"]");
    /* Cached: the same pointer twice. */
    assert_ptr_equal(trine_decision_chain(d), trine_decision_chain(d));
    assert_string_equal(trine_decision_arguments(d),
                        "{\"body\":\"[redacted]\",\"owner\":\"acme\","
                        "\"repo\":\"widgets\",\"title\":\"T\"}");
    /* The hash is over the unredacted arguments. */
    const char *canon = "{\"body\":\"secret\",\"owner\":\"acme\",\"repo\":"
                        "\"widgets\",\"title\":\"T\"}";
    char hex[65];
    trine_sha256_hex(canon, strlen(canon), hex);
    assert_string_equal(trine_decision_args_hash(d), hex);
    assert_int_equal(trine_decision_consent_mode(d), TRINE_CONSENT_SESSION);
    trine_decision_free(d);

    /* The decision outlives the request and the caller's policy ref. */
    trine_policy *p = load("github.trine", github_src);
    json_t *r = req("{'server':'github','tool':'get_issue'," ISSUE
                    ",'token':{" ALICE ",'scope':'repo:read'}}");
    trine_check_opts o = {NOW_S * 1000, NULL, NULL};
    assert_int_equal(trine_check(p, r, &o, &d, NULL, 0), 0);
    json_decref(r);
    trine_policy_release(p);
    expect(d, "allow", "allow");
    assert_string_equal(trine_decision_user(d), "alice");
    assert_string_equal(trine_decision_arguments(d),
                        "{\"owner\":\"acme\",\"repo\":\"widgets\"}");
    has(d, "\"reasons\":[{\"code\":\"allow\",\"rule\":\"github.trine:28\"}]");
    trine_decision_free(d);
    trine_decision_free(NULL);
}

/* A check that stops at the token step still hides what the tool's redact
 * paths name: the audit log must not learn a secret from a bad token. */
static void test_redact_applies_before_the_tool_step(void **state)
{
    (void)state;
    static const char *const tokens[] = {
        "{'sub':'alice','client_id':'claude-desktop','exp':1}",
        "{'client_id':'claude-desktop'," AUD "}",
        "{'sub':'alice','client_id':'claude-desktop','aud':'elsewhere'}",
    };
    static const char *const reasons[] = {"token_expired", "token_invalid",
                                          "audience_mismatch"};
    for (size_t i = 0; i < 3; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{'server':'github','tool':'create_issue','arguments':{"
                 "'title':'T','owner':'acme','repo':'widgets',"
                 "'body':'secret'},'token':%s}",
                 tokens[i]);
        trine_decision *d = check(github, text);
        expect(d, "deny", reasons[i]);
        assert_string_equal(trine_decision_arguments(d),
                            "{\"body\":\"[redacted]\",\"owner\":\"acme\","
                            "\"repo\":\"widgets\",\"title\":\"T\"}");
        trine_decision_free(d);
    }
}

static void test_many_pairs_and_big_claims(void **state)
{
    (void)state;
    /* A huge scope and groups claim stays linear and correct. */
    size_t n = 200000;
    char *big = malloc(n * 20 + 1024);
    assert_non_null(big);
    strcpy(big, "{'server':'plain','tool':'args','arguments':{'id':'x'},"
                "'token':{'sub':'u','client_id':'c','scope':'");
    size_t at = strlen(big);
    for (size_t i = 0; i < n; i++) {
        const char *s = i % 2 ? "data " : "zz ";
        memcpy(big + at, s, strlen(s));
        at += strlen(s);
    }
    strcpy(big + at, "','groups':[");
    at += strlen("','groups':[");
    for (size_t i = 0; i < n; i++) {
        memcpy(big + at, "'analysts',", 11);
        at += 11;
    }
    strcpy(big + at, "'x']}}");
    trine_decision *d = check(extra, big);
    expect(d, "allow", "allow");
    has(d, "\"matched\":[{\"set\":\"user\",\"rule\":\"extra.trine:12\"},"
           "{\"set\":\"scope\",\"rule\":\"extra.trine:10\"},{\"set\":"
           "\"agent\",\"rule\":\"extra.trine:18\"}]");
    trine_decision_free(d);
    free(big);
}

static void test_hostile_requests(void **state)
{
    (void)state;
    /* Every claim and argument of the wrong type: a decision, never a
     * crash, and never an allow. */
    static const char *const reqs[] = {
        "{'server':'github','tool':'get_issue','arguments':{'owner':{},"
        "'repo':[]},'token':{'sub':{},'scope':{},'scp':7,'groups':[[]],"
        "'roles':{},'client_id':[],'azp':{},'act':[],'aud':7,'exp':{}}}",
        "{'server':'github','tool':'get_issue','arguments':{},'token':{}}",
        "{'server':'','tool':'','arguments':{},'token':{'sub':'x'}}",
        "{'server':'github','tool':'create_issue','arguments':{'owner':"
        "'\\u00ff\\u0000','repo':'x','title':{'a':1}},'session':'',"
        "'token':{'sub':'alice','aud':['https://mcp.example.com/github'],"
        "'scope':'   ','scp':['repo:write'],'client_id':'claude-desktop',"
        "'act':{'act':{'act':null}}}}",
        "{'server':'fs','tool':'move','arguments':{'from':'/','to':'//'},"
        "'token':{'sub':'u','client_id':'c','scope':'files:all','act':"
        "{'client_id':'c','act':{'client_id':'c','act':7}}}}",
        "{'server':'plain','tool':'args','arguments':{'id':'x','n':1e308,"
        "'mode':-0.0,'name':'\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"
        "\\ud83d\\ude00','code':'','opts':{'level':[1]}},'token':{'sub':"
        "'u','client_id':'c','scope':'data','groups':'analysts'}}",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        const trine_policy *p = strstr(reqs[i], "'github'") ? github : extra;
        trine_decision *d = check(p, reqs[i]);
        if (strcmp(trine_decision_kind(d), "allow") == 0)
            fail_msg("case %zu allowed: %s", i, json_of(d));
        json_t *v = trine_decision_result(d);
        assert_non_null(v);
        json_decref(v);
        (void)trine_decision_arguments(d);
        (void)trine_decision_args_hash(d);
        (void)trine_decision_chain(d);
        trine_decision_free(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_validation),
        cmocka_unit_test(test_token_expiry),
        cmocka_unit_test(test_token_invalid),
        cmocka_unit_test(test_token_order),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_tool_lookup),
        cmocka_unit_test(test_arg_comparisons),
        cmocka_unit_test(test_arg_comparisons_exact),
        cmocka_unit_test(test_arg_in),
        cmocka_unit_test(test_arg_in_bool_vs_number),
        cmocka_unit_test(test_arg_strings),
        cmocka_unit_test(test_arg_regex_as_written),
        cmocka_unit_test(test_arg_required_and_all_listed),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_placeholder_reported_once),
        cmocka_unit_test(test_resources_are_data),
        cmocka_unit_test(test_forbid),
        cmocka_unit_test(test_sets_example),
        cmocka_unit_test(test_groups_and_roles_claims),
        cmocka_unit_test(test_scope_claims),
        cmocka_unit_test(test_agents),
        cmocka_unit_test(test_delegation_current_actor),
        cmocka_unit_test(test_delegation_full_chain),
        cmocka_unit_test(test_primary_and_every_failure),
        cmocka_unit_test(test_step_up),
        cmocka_unit_test(test_step_up_uncoverable),
        cmocka_unit_test(test_step_up_repeated_pair),
        cmocka_unit_test(test_consent_session),
        cmocka_unit_test(test_consent_modes),
        cmocka_unit_test(test_redacted_text_in_the_audit_copy),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_redact_applies_before_the_tool_step),
        cmocka_unit_test(test_many_pairs_and_big_claims),
        cmocka_unit_test(test_hostile_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
