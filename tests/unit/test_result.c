/*
 * test_result.c - the result object of DESIGN §3.1: golden texts (key order,
 * audit_id placement, escaping), the snprintf-like contract of
 * trine_decision_write, trine_decision_result, and the decision arena.
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

static const char policy_src[] =
    "server \"github\" {\n"
    "  audience \"https://mcp.example.com/github\"\n"
    "  resource_metadata \"https://mcp.example.com/rm\"\n"
    "}\n"
    "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*\" }\n"
    "scope \"repo:write\" { allow repo.read, repo.write, issues.* on "
    "\"repo:*\" }\n"
    "role maintainer { allow repo.*, issues.* on \"repo:acme/*\" }\n"
    "role reader { allow repo.read, issues.read on \"repo:acme/*\" }\n"
    "user \"alice\" { roles maintainer }\n"
    "group \"acme-eng\" { roles reader }\n"
    "agent \"claude-desktop\" { allow repo.read, issues.* on \"repo:*\" }\n"
    "tool \"github\" \"get_issue\" {\n"
    "  needs issues.read on \"repo:{owner}/{repo}\"\n"
    "}\n"
    "tool \"github\" \"create_issue\" {\n"
    "  needs issues.create on \"repo:{owner}/{repo}\"\n"
    "  arg title required\n"
    "  consent session \"Let {agent} open issues in {owner}/{repo} for this "
    "session?\"\n"
    "}\n"
    "tool \"github\" \"echo\" {\n"
    "  needs issues.read on \"repo:{owner}/{repo}\"\n"
    "  consent once \"Say \\\"{text}\\\"\"\n"
    "}\n";

static trine_policy *pol;
static char rev[80];

static int setup(void **state)
{
    (void)state;
    trine_source s = {"github.trine", policy_src, strlen(policy_src)};
    trine_diag *diag = trine_diag_new();
    int rc = trine_policy_load_sources(&s, 1, diag, &pol);
    if (rc != 0)
        trine_diag_print(diag, stderr);
    trine_diag_free(diag);
    if (rc != 0)
        return -1;
    snprintf(rev, sizeof rev, "%s", trine_policy_revision(pol));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    trine_policy_release(pol);
    return 0;
}

static trine_decision *run(const char *text)
{
    char *t = strdup(text);
    for (char *c = t; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    json_error_t e;
    json_t *r = json_loads(t, JSON_ALLOW_NUL, &e);
    if (r == NULL)
        fail_msg("bad JSON in test: %s", e.text);
    free(t);
    trine_check_opts o = {INT64_C(1767225600000), NULL, NULL};
    trine_decision *d = NULL;
    assert_int_equal(trine_check(pol, r, &o, &d, NULL, 0), 0);
    json_decref(r);
    return d;
}

/* Compares the written result with want, where "@REV@" stands for the
 * policy revision. */
static void golden(const trine_decision *d, int64_t audit_id, const char *want)
{
    char expect[8192];
    const char *at = strstr(want, "@REV@");
    assert_non_null(at);
    snprintf(expect, sizeof expect, "%.*s%s%s", (int)(at - want), want, rev,
             at + 5);
    char buf[8192];
    size_t n = trine_decision_write(d, audit_id, buf, sizeof buf);
    assert_string_equal(buf, expect);
    assert_int_equal(n, strlen(expect));
}

#define TOKEN                                                                  \
    "'token':{'sub':'alice','scope':'repo:read repo:write','client_id':"       \
    "'claude-desktop','aud':'https://mcp.example.com/github','exp':"           \
    "1893456000,'groups':['acme-eng']}"

static void test_golden_consent_required(void **state)
{
    (void)state;
    /* The §3.1 example, audit_id after reason. */
    trine_decision *d =
        run("{'server':'github','tool':'create_issue','arguments':{'owner':"
            "'acme','repo':'widgets','title':'Crash on start'},'session':"
            "'mcp-session-4f2a'," TOKEN "}");
    golden(d, 1042,
           "{\"decision\":\"consent_required\",\"reason\":"
           "\"consent_required\",\"audit_id\":1042,\"policy_revision\":"
           "\"@REV@\",\"consent\":{\"mode\":\"session\",\"prompt\":\"Let "
           "claude-desktop open issues in acme/widgets for this session?\"},"
           "\"reasons\":[{\"code\":\"consent_required\",\"rule\":"
           "\"github.trine:18\"}],\"matched\":[{\"set\":\"user\",\"rule\":"
           "\"github.trine:7\"},{\"set\":\"scope\",\"rule\":"
           "\"github.trine:6\"},{\"set\":\"agent\",\"rule\":"
           "\"github.trine:11\"}]}");
    /* Without audit_id (any negative id). */
    golden(d, -1,
           "{\"decision\":\"consent_required\",\"reason\":"
           "\"consent_required\",\"policy_revision\":\"@REV@\",\"consent\":"
           "{\"mode\":\"session\",\"prompt\":\"Let claude-desktop open "
           "issues in acme/widgets for this session?\"},\"reasons\":[{"
           "\"code\":\"consent_required\",\"rule\":\"github.trine:18\"}],"
           "\"matched\":[{\"set\":\"user\",\"rule\":\"github.trine:7\"},{"
           "\"set\":\"scope\",\"rule\":\"github.trine:6\"},{\"set\":"
           "\"agent\",\"rule\":\"github.trine:11\"}]}");
    golden(d, 0,
           "{\"decision\":\"consent_required\",\"reason\":"
           "\"consent_required\",\"audit_id\":0,\"policy_revision\":"
           "\"@REV@\",\"consent\":{\"mode\":\"session\",\"prompt\":"
           "\"Let claude-desktop open issues in acme/widgets for this "
           "session?\"},\"reasons\":[{\"code\":\"consent_required\","
           "\"rule\":\"github.trine:18\"}],\"matched\":[{\"set\":"
           "\"user\",\"rule\":\"github.trine:7\"},{\"set\":\"scope\","
           "\"rule\":\"github.trine:6\"},{\"set\":\"agent\",\"rule\":"
           "\"github.trine:11\"}]}");
    trine_decision_free(d);
}

static void test_golden_allow(void **state)
{
    (void)state;
    trine_decision *d =
        run("{'server':'github','tool':'get_issue',"
            "'arguments':{'owner':'acme','repo':'w'}," TOKEN "}");
    golden(d, 5,
           "{\"decision\":\"allow\",\"reason\":\"allow\",\"audit_id\":5,"
           "\"policy_revision\":\"@REV@\",\"reasons\":[{\"code\":\"allow\","
           "\"rule\":\"github.trine:12\"}],\"matched\":[{\"set\":\"user\","
           "\"rule\":\"github.trine:7\"},{\"set\":\"scope\",\"rule\":"
           "\"github.trine:5\"},{\"set\":\"agent\",\"rule\":"
           "\"github.trine:11\"}]}");
    trine_decision_free(d);
}

static void test_golden_scope_missing(void **state)
{
    (void)state;
    trine_decision *d =
        run("{'server':'github','tool':'create_issue','arguments':{'owner':"
            "'acme','repo':'w','title':'t'},'token':{'sub':'alice','scope':"
            "'repo:read','client_id':'claude-desktop','aud':"
            "'https://mcp.example.com/github'}}");
    golden(d, -1,
           "{\"decision\":\"deny\",\"reason\":\"scope_missing\","
           "\"policy_revision\":\"@REV@\",\"reasons\":[{\"code\":"
           "\"scope_missing\",\"set\":\"scope\",\"action\":\"issues.create\","
           "\"resource\":\"repo:acme/w\",\"detail\":\"no scope of the token "
           "allows it\"}],\"matched\":[{\"set\":\"user\",\"rule\":"
           "\"github.trine:7\"},{\"set\":\"agent\",\"rule\":"
           "\"github.trine:11\"}],\"required_scopes\":[\"repo:write\"],"
           "\"www_authenticate\":\"Bearer error=\\\"insufficient_scope\\\", "
           "scope=\\\"repo:write\\\", resource_metadata=\\\""
           "https://mcp.example.com/rm\\\"\"}");
    trine_decision_free(d);
}

static void test_golden_denies(void **state)
{
    (void)state;
    trine_decision *d =
        run("{'server':'github','tool':'create_issue','arguments':{'owner':"
            "'acme','repo':'w'},'token':{'sub':'alice','aud':"
            "'https://mcp.example.com/github'}}");
    golden(d, 9,
           "{\"decision\":\"deny\",\"reason\":\"argument_invalid\","
           "\"audit_id\":9,\"policy_revision\":\"@REV@\",\"reasons\":[{"
           "\"code\":\"argument_invalid\",\"argument\":\"title\",\"rule\":"
           "\"github.trine:17\",\"detail\":\"title is required\"}],"
           "\"matched\":[]}");
    trine_decision_free(d);

    d = run("{'server':'github','tool':'get_issue','arguments':{},'token':{"
            "'sub':'alice','exp':1700000000}}");
    golden(d, -1,
           "{\"decision\":\"deny\",\"reason\":\"token_expired\","
           "\"policy_revision\":\"@REV@\",\"reasons\":[{\"code\":"
           "\"token_expired\",\"detail\":\"the token expired at 1700000000 "
           "(60 s leeway)\"}],\"matched\":[]}");
    trine_decision_free(d);
}

static void test_escaping(void **state)
{
    (void)state;
    /* A prompt built from argument text: quotes, controls, NUL. */
    trine_decision *d = run(
        "{'server':'github','tool':'echo','arguments':{'owner':'acme',"
        "'repo':'w','text':'a\\\\b\\u0000c\\n\\u001f\\u007f\\u00e9/'}," TOKEN
        "}");
    char buf[4096];
    trine_decision_write(d, -1, buf, sizeof buf);
    const char *want = "\"consent\":{\"mode\":\"once\",\"prompt\":\"Say "
                       "\\\"a\\\\b\\u0000c\\n\\u001f\x7f\xc3\xa9/\\\"\"}";
    if (strstr(buf, want) == NULL)
        fail_msg("%s", buf);
    /* The result object reads it back, NUL included. */
    json_t *v = trine_decision_result(d);
    assert_non_null(v);
    json_t *prompt = json_object_get(json_object_get(v, "consent"), "prompt");
    assert_int_equal(json_string_length(prompt), 17);
    assert_memory_equal(json_string_value(prompt),
                        "Say \"a\\b\0c\n\x1f\x7f\xc3\xa9/\"", 17);
    json_decref(v);
    trine_decision_free(d);
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    /* Values built without UTF-8 checks cannot break the output. */
    json_t *r = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:o},s:{s:s,s:s,s:s,s:s}}", "server", "github",
        "tool", "echo", "arguments", "owner", "acme", "repo", "w", "text",
        json_stringn_nocheck("x\xff\xc3(y\xe2\x82", 7), "token", "sub", "alice",
        "client_id", "claude-desktop", "scope", "repo:read", "aud",
        "https://mcp.example.com/github");
    assert_non_null(r);
    trine_check_opts o = {0, NULL, NULL};
    trine_decision *d = NULL;
    assert_int_equal(trine_check(pol, r, &o, &d, NULL, 0), 0);
    json_decref(r);
    char buf[4096];
    trine_decision_write(d, -1, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"prompt\":\"Say \\\"x\xef\xbf\xbd\xef\xbf"
                                "\xbd(y\xef\xbf\xbd\xef\xbf\xbd\\\"\""));
    json_t *v = trine_decision_result(d);
    assert_non_null(v);
    json_decref(v);
    trine_decision_free(d);
}

static void test_write_contract(void **state)
{
    (void)state;
    trine_decision *d =
        run("{'server':'github','tool':'get_issue',"
            "'arguments':{'owner':'acme','repo':'w'}," TOKEN "}");
    char full[4096];
    size_t n = trine_decision_write(d, 123, full, sizeof full);
    assert_int_equal(n, strlen(full));
    /* Measuring needs no buffer. */
    assert_int_equal(trine_decision_write(d, 123, NULL, 0), n);
    /* Every smaller buffer gets a NUL-terminated prefix, same length. */
    for (size_t cap = 1; cap <= n + 1; cap++) {
        char *b = malloc(cap + 8);
        memset(b, 'Z', cap + 8);
        assert_int_equal(trine_decision_write(d, 123, b, cap), n);
        assert_int_equal(strlen(b), cap - 1 < n ? cap - 1 : n);
        assert_memory_equal(b, full, strlen(b));
        assert_int_equal(b[cap], 'Z'); /* nothing past cap */
        free(b);
    }
    trine_decision_free(d);
}

static void test_result_object(void **state)
{
    (void)state;
    trine_decision *d =
        run("{'server':'github','tool':'create_issue','arguments':{'owner':"
            "'acme','repo':'w','title':'t'},'token':{'sub':'alice','scope':"
            "'repo:read','client_id':'claude-desktop','aud':"
            "'https://mcp.example.com/github'}}");
    json_t *v = trine_decision_result(d);
    assert_non_null(v);
    assert_null(json_object_get(v, "audit_id"));
    assert_string_equal(json_string_value(json_object_get(v, "decision")),
                        "deny");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(v, "required_scopes"), 0)),
                        "repo:write");
    /* The same text as trine_decision_write, byte for byte. */
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char buf[4096];
    trine_decision_write(d, -1, buf, sizeof buf);
    assert_string_equal(text, buf);
    free(text);
    json_decref(v);
    trine_decision_free(d);

    assert_null(trine_decision_result(NULL));
    assert_int_equal(trine_decision_write(NULL, 1, buf, sizeof buf), 0);
}

static void test_mode_names(void **state)
{
    (void)state;
    assert_string_equal(trine_consent_mode_name(TRINE_CONSENT_NONE), "none");
    assert_string_equal(trine_consent_mode_name(TRINE_CONSENT_SESSION),
                        "session");
    assert_string_equal(trine_consent_mode_name(TRINE_CONSENT_ONCE), "once");
    assert_string_equal(trine_consent_mode_name(TRINE_CONSENT_ALWAYS),
                        "always");
    assert_string_equal(trine_consent_mode_name((trine_consent_mode)42),
                        "none");
}

static void test_arena_and_lists(void **state)
{
    (void)state;
    trine_decision *d = dec_new(pol);
    assert_non_null(d);
    /* Past the inline block: chunks, each allocation aligned and intact. */
    char *ptrs[300];
    for (int i = 0; i < 300; i++) {
        ptrs[i] = dec_printf(d, "string number %d", i);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % alignof(max_align_t), 0);
    }
    char *huge = dec_alloc(d, 100000);
    assert_non_null(huge);
    memset(huge, 1, 100000);
    for (int i = 0; i < 300; i++) {
        char want[32];
        snprintf(want, sizeof want, "string number %d", i);
        assert_string_equal(ptrs[i], want);
    }
    /* Reasons and matched grow past their inline arrays. */
    for (int i = 0; i < 50; i++) {
        dec_reason r = {0};
        r.code = "user_denied";
        r.detail = ptrs[i];
        assert_non_null(dec_add_reason(d, &r));
        assert_int_equal(dec_add_match(d, "user", NULL, "f.trine", (unsigned)i),
                         0);
        /* A repeat is kept once. */
        assert_int_equal(dec_add_match(d, "user", NULL, "f.trine", (unsigned)i),
                         0);
    }
    assert_int_equal(d->nreasons, 50);
    assert_int_equal(d->nmatched, 50);
    assert_string_equal(d->reasons[49].detail, "string number 49");
    assert_int_equal(d->matched[49].line, 49);
    assert_int_equal(dec_add_match(d, "agent", "x", "f.trine", 1), 0);
    assert_int_equal(dec_add_match(d, "agent", "y", "f.trine", 1), 0);
    assert_int_equal(d->nmatched, 52);
    char buf[16384];
    size_t n = trine_decision_write(d, -1, buf, sizeof buf);
    assert_true(n < sizeof buf);
    assert_non_null(strstr(buf, "{\"set\":\"agent\",\"agent\":\"y\",\"rule\":"
                                "\"f.trine:1\"}]}"));
    trine_decision_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_consent_required),
        cmocka_unit_test(test_golden_allow),
        cmocka_unit_test(test_golden_scope_missing),
        cmocka_unit_test(test_golden_denies),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_write_contract),
        cmocka_unit_test(test_result_object),
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_arena_and_lists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
