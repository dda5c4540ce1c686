/*
 * test_rpc.c - JSON-RPC request validation and the replies trined's
 * workers write: error codes and exact messages for malformed, invalid and
 * unknown requests, ids echoed as given, and method parameters checked
 * before any work is done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/consents.h"
#include "daemon/rpc.h"
#include "daemon/snapshot.h"

static const char policy_src[] =
    "server \"github\" { audience \"https://mcp.example.com/github\" }\n"
    "scope \"repo:read\" { allow issues.read on \"repo:*\" }\n"
    "role reader { allow issues.read on \"repo:*\" }\n"
    "user \"alice\" { roles reader }\n"
    "agent \"claude\" { allow issues.read on \"repo:*\" }\n"
    "tool \"github\" \"get_issue\" { needs issues.read on "
    "\"repo:{owner}/{repo}\" }\n";

/* Parses line and expects error code with message msg. */
static void expect_parse_error(const char *line, int code, const char *msg)
{
    rpc_request req;
    char err[256] = "";
    int rc = rpc_parse(line, strlen(line), &req, err, sizeof err);
    assert_int_equal(rc, code);
    assert_string_equal(err, msg);
    rpc_request_free(&req);
}

static void test_prescan(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(rpc_prescan("{\"a\":\"\xc3\xa9\"}", 9, err, sizeof err),
                     0);
    assert_int_equal(rpc_prescan("{\"a\":\"\xc3\x28\"}", 9, err, sizeof err),
                     RPC_PARSE_ERROR);
    assert_string_equal(err, "invalid UTF-8 at byte 6");
    /* An overlong encoding of '/' and a lone surrogate. */
    assert_int_equal(rpc_prescan("\"\xc0\xaf\"", 4, err, sizeof err),
                     RPC_PARSE_ERROR);
    assert_string_equal(err, "invalid UTF-8 at byte 1");
    assert_int_equal(rpc_prescan("\"\xed\xa0\x80\"", 5, err, sizeof err),
                     RPC_PARSE_ERROR);

    char deep[2 * RPC_MAX_DEPTH + 4];
    memset(deep, '[', RPC_MAX_DEPTH);
    memset(deep + RPC_MAX_DEPTH, ']', RPC_MAX_DEPTH);
    assert_int_equal(rpc_prescan(deep, 2 * RPC_MAX_DEPTH, err, sizeof err), 0);
    memset(deep, '[', RPC_MAX_DEPTH + 1);
    memset(deep + RPC_MAX_DEPTH + 1, ']', RPC_MAX_DEPTH + 1);
    assert_int_equal(rpc_prescan(deep, 2 * RPC_MAX_DEPTH + 2, err, sizeof err),
                     RPC_PARSE_ERROR);
    assert_string_equal(err, "nesting deeper than 64 levels");

    /* Brackets inside strings (with escaped quotes) do not nest. */
    char str[300];
    size_t n = 0;
    str[n++] = '"';
    str[n++] = '\\';
    str[n++] = '"';
    for (int i = 0; i < 200; i++)
        str[n++] = '[';
    str[n++] = '"';
    assert_int_equal(rpc_prescan(str, n, err, sizeof err), 0);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("garbage", RPC_PARSE_ERROR,
                       "invalid JSON at byte 7: invalid token near "
                       "'garbage'");
    expect_parse_error("", RPC_PARSE_ERROR,
                       "empty line: expected a JSON-RPC request");
    expect_parse_error(" \r", RPC_PARSE_ERROR,
                       "empty line: expected a JSON-RPC request");
    expect_parse_error("{\"a\":1} x", RPC_PARSE_ERROR,
                       "invalid JSON at byte 9: end of file expected near "
                       "'x'");
    expect_parse_error("{\"id\":1,\"id\":2}", RPC_PARSE_ERROR,
                       "invalid JSON at byte 12: duplicate object key near "
                       "'\"id\"'");
    expect_parse_error("[1,2]", RPC_INVALID_REQUEST,
                       "request must be a JSON object");
    expect_parse_error("7", RPC_INVALID_REQUEST,
                       "request must be a JSON object");
    expect_parse_error("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}",
                       RPC_INVALID_REQUEST,
                       "id must be a string, a number or null");
    expect_parse_error("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
                       RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    expect_parse_error("{\"id\":1,\"method\":\"ping\"}", RPC_INVALID_REQUEST,
                       "jsonrpc must be \"2.0\"");
    expect_parse_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":3}",
                       RPC_INVALID_REQUEST,
                       "method must be a string without NUL");
    /* "check\u0000x" must not be read as "check", nor "2.0\u0000" as
     * "2.0". */
    expect_parse_error(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"check\\u0000x\"}",
        RPC_INVALID_REQUEST, "method must be a string without NUL");
    expect_parse_error(
        "{\"jsonrpc\":\"2.0\\u0000\",\"id\":1,\"method\":\"ping\"}",
        RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    expect_parse_error(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":5}",
        RPC_INVALID_REQUEST, "params must be an object");
    expect_parse_error(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":null}",
        RPC_INVALID_REQUEST, "params must be an object");
    /* A notification is refused, not ignored. */
    expect_parse_error("{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}",
                       RPC_INVALID_REQUEST, "id is required");
    /* jansson quotes the text near the error byte for byte and cuts the
     * two-byte character after a bad escape in half; the message stays
     * UTF-8, so the error reply is valid JSON. */
    expect_parse_error("{\"id\":\"a\\\xde\x9d\"}", RPC_PARSE_ERROR,
                       "invalid JSON at byte 10: invalid escape near "
                       "'\"a\\?'");
}

static void test_valid_request(void **state)
{
    (void)state;
    const char *line = "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"check\","
                       "\"params\":{\"x\":1}}";
    rpc_request req;
    char err[64];
    assert_int_equal(rpc_parse(line, strlen(line), &req, err, sizeof err), 0);
    assert_string_equal(req.method, "check");
    assert_string_equal(json_string_value(req.id), "a");
    assert_int_equal(json_integer_value(json_object_get(req.params, "x")), 1);
    rpc_request_free(&req);
}

static void test_error_lines_echo_ids(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    json_t *ids[] = {
        json_integer(-42), json_string("q\"\n"), json_null(), json_real(1.5),
        json_real(0.1),    json_real(1e300),     NULL};
    const char *want[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":-42,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":\"q\\\"\\n\",\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        /* The shortest text that reads back as the id. */
        "{\"jsonrpc\":\"2.0\",\"id\":0.1,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1e+300,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32601,"
        "\"message\":\"m\"}}\n"};
    for (int i = 0; i < 7; i++) {
        sb_reset(&b);
        rpc_write_error(&b, ids[i], RPC_METHOD_NOT_FOUND, "m");
        assert_string_equal(b.data, want[i]);
        json_decref(ids[i]);
    }
    sb_free(&b);
}

/* A daemon context with a policy and an empty consent cache. */
typedef struct fixture {
    daemon_ctx ctx;
    snapshot *snap;
    consents *grants;
    trined_config cfg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    trine_source src = {"github.trine", policy_src, sizeof policy_src - 1};
    trine_policy *p = NULL;
    if (trine_policy_load_sources(&src, 1, NULL, &p) != 0)
        return -1;
    if (snapshot_new(p, "/nonexistent", &f->snap) != 0 ||
        consents_new(&f->grants) != 0 || config_init(&f->cfg) != 0)
        return -1;
    f->ctx.cfg = &f->cfg;
    f->ctx.snap = f->snap;
    f->ctx.grants = f->grants;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    snapshot_free(f->snap);
    consents_free(f->grants);
    config_free(&f->cfg);
    free(f);
    return 0;
}

/* Runs one line through rpc_handle. The job is the caller's to free. */
static job *handle(fixture *f, const char *line)
{
    job *j = job_new();
    assert_non_null(j);
    sb_puts(&j->in, line);
    rpc_handle(&f->ctx, j);
    return j;
}

/* Expects line to be answered at once with exactly want. */
static void expect_reply(fixture *f, const char *line, const char *want)
{
    job *j = handle(f, line);
    assert_int_equal(j->kind, JOB_REPLY);
    assert_string_equal(j->out.data, want);
    job_free(j);
}

/* Expects an error reply for id 1 with this code and message. */
static void expect_error(fixture *f, const char *method, const char *params,
                         int code, const char *msg)
{
    char line[1024];
    char want[1024];
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"%s%s}", method,
             params ? ",\"params\":" : "", params ? params : "");
    snprintf(want, sizeof want,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":%d,"
             "\"message\":\"%s\"}}\n",
             code, msg);
    expect_reply(f, line, want);
}

static void test_ping_and_unknown_method(void **state)
{
    fixture *f = *state;
    expect_reply(f, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}",
                 "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"result\":{\"pong\":"
                 "true}}\n");
    expect_error(f, "frobnicate", NULL, RPC_METHOD_NOT_FOUND,
                 "unknown method \\\"frobnicate\\\"");
    expect_reply(f, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"\\u0001\"}",
                 "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32601,"
                 "\"message\":\"unknown method \\\"\\u0001\\\"\"}}\n");
    /* An id holding \u0000 is echoed as it came, escaped (a fuzzing
     * regression: the reply stays valid JSON). */
    expect_reply(f, "{\"jsonrpc\":\"2.0\",\"id\":\"p\\u0000\"}",
                 "{\"jsonrpc\":\"2.0\",\"id\":\"p\\u0000\",\"error\":{"
                 "\"code\":-32600,\"message\":\"method is required\"}}\n");
    /* Parse errors answer with id null. */
    expect_reply(f, "{",
                 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
                 "-32700,\"message\":\"invalid JSON at byte 1: "
                 "string or '}' expected near end of file\"}}\n");
}

static void test_method_params(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *method, *params;
        int code;
        const char *msg;
    } cases[] = {
        {"check", NULL, RPC_INVALID_PARAMS, "params is required"},
        {"check", "{\"bearer\":\"eyJ...\"}", RPC_INVALID_PARAMS,
         RPC_BEARER_MSG},
        /* Both, whether or not bearer tokens are configured. */
        {"check", "{\"bearer\":\"eyJ...\",\"token\":{}}", RPC_INVALID_PARAMS,
         "params: give token or bearer, not both"},
        {"policy.tools", "{}", RPC_INVALID_PARAMS, "params.server is required"},
        {"policy.tools", "{\"server\":\"github\\u0000x\"}", RPC_INVALID_PARAMS,
         "params.server must be a string without NUL"},
        /* By-position params are valid JSON-RPC that no method takes. */
        {"ping", "[]", RPC_INVALID_PARAMS,
         "params must be an object of named parameters, not an array"},
        {"check", "[{}]", RPC_INVALID_PARAMS,
         "params must be an object of named parameters, not an array"},
        {"frobnicate", "[]", RPC_METHOD_NOT_FOUND,
         "unknown method \\\"frobnicate\\\""},
        /* A misspelt filter is refused, not dropped. */
        {"consent.list", "{\"server\":\"github\"}", RPC_INVALID_PARAMS,
         "params.server is not a parameter of consent.list"},
        {"consent.list", "{\"user\":\"\"}", RPC_INVALID_PARAMS,
         "params.user must be a non-empty string"},
        {"consent.revoke", "{\"user\":\"a\",\"sesion\":\"s\"}",
         RPC_INVALID_PARAMS,
         "params.sesion is not a parameter of consent.revoke"},
        {"consent.revoke", "{\"user\":\"alice\\u0000x\"}", RPC_INVALID_PARAMS,
         "params.user must be a string without NUL"},
        {"consent.grant", "{\"audit_id\":3,\"session\":\"s\"}",
         RPC_INVALID_PARAMS,
         "params.session is not a parameter of consent.grant"},
        {"consent.list", "{\"user\":1}", RPC_INVALID_PARAMS,
         "params.user must be a string without NUL"},
        {"consent.list", "{\"agent\":[]}", RPC_INVALID_PARAMS,
         "params.agent must be a string without NUL"},
        {"consent.grant", NULL, RPC_INVALID_PARAMS,
         "params.audit_id must be a positive integer"},
        {"consent.grant", "{\"audit_id\":\"7\"}", RPC_INVALID_PARAMS,
         "params.audit_id must be a positive integer"},
        {"consent.grant", "{\"audit_id\":0}", RPC_INVALID_PARAMS,
         "params.audit_id must be a positive integer"},
        {"consent.grant", "{\"audit_id\":3,\"ttl\":1.5}", RPC_INVALID_PARAMS,
         "params.ttl must be a positive integer"},
        {"consent.grant", "{\"audit_id\":3,\"ttl\":-1}", RPC_INVALID_PARAMS,
         "params.ttl must be a positive integer"},
        {"consent.grant", "{\"audit_id\":3,\"ttl\":9999999999999}",
         RPC_INVALID_PARAMS, "params.ttl must be at most 3162240000 seconds"},
        {"consent.revoke", "{}", RPC_INVALID_PARAMS,
         "params.consent_id or params.user is required"},
        /* null is absent. */
        {"consent.revoke", "{\"consent_id\":null,\"user\":null}",
         RPC_INVALID_PARAMS, "params.consent_id or params.user is required"},
        {"consent.grant", "{\"audit_id\":null,\"ttl\":null}",
         RPC_INVALID_PARAMS, "params.audit_id must be a positive integer"},
        {"consent.revoke", "{\"consent_id\":\"x\"}", RPC_INVALID_PARAMS,
         "params.consent_id must be a positive integer"},
        {"consent.revoke", "{\"consent_id\":2,\"user\":\"a\"}",
         RPC_INVALID_PARAMS, "params: give consent_id or user, not both"},
        {"consent.revoke", "{\"user\":\"\"}", RPC_INVALID_PARAMS,
         "params.user must be a non-empty string"},
        {"consent.revoke", "{\"user\":\"a\",\"tool\":5}", RPC_INVALID_PARAMS,
         "params.tool must be a string without NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(f, cases[i].method, cases[i].params, cases[i].code,
                     cases[i].msg);
}

static void test_check_goes_to_the_writer(void **state)
{
    fixture *f = *state;
    /* A request the evaluator refuses never reaches the audit log. */
    expect_error(f, "check", "{\"server\":1}", RPC_INVALID_PARAMS,
                 "params.server must be a string");

    job *j = handle(
        f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"check\",\"params\":{"
           "\"server\":\"github\",\"tool\":\"get_issue\",\"arguments\":{"
           "\"owner\":\"acme\",\"repo\":\"w\"},\"token\":{\"sub\":\"alice\","
           "\"scope\":\"repo:read\",\"client_id\":\"claude\",\"aud\":"
           "\"https://mcp.example.com/github\"}}}");
    assert_int_equal(j->kind, JOB_CHECK);
    /* The audit row's columns were copied out of the decision, which is
     * already freed: the writer needs neither it nor the policy. */
    assert_string_equal(job_col_text(j, JCOL_DECISION), "allow");
    assert_string_equal(job_col_text(j, JCOL_REASON), "allow");
    assert_string_equal(job_col_text(j, JCOL_SERVER), "github");
    assert_string_equal(job_col_text(j, JCOL_TOOL), "get_issue");
    assert_string_equal(job_col_text(j, JCOL_USER), "alice");
    assert_string_equal(job_col_text(j, JCOL_AGENT), "claude");
    assert_null(job_col_text(j, JCOL_CHAIN));
    assert_null(job_col_text(j, JCOL_SESSION));
    assert_string_equal(job_col_text(j, JCOL_ARGUMENTS),
                        "{\"owner\":\"acme\",\"repo\":\"w\"}");
    /* Only a consent_required decision keeps its arguments' hash. */
    assert_null(job_col_text(j, JCOL_ARGS_SHA256));
    assert_null(job_col_text(j, JCOL_DETAIL));
    assert_memory_equal(job_col_text(j, JCOL_POLICY_REV), "sha256:", 7);
    assert_int_equal(j->claimed, -1);
    /* The worker wrote the result with a placeholder id, which the writer
     * replaces with the real one. */
    const char *want =
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"decision\":\"allow\","
        "\"reason\":\"allow\",\"audit_id\":9223372036854775807,";
    assert_memory_equal(j->out.data, want, strlen(want));
    assert_int_equal(j->prefix_len,
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":"));
    assert_int_equal(j->id_off, strlen(want) - 20);
    assert_memory_equal(j->out.data + j->id_off, RPC_AUDIT_ID_PLACEHOLDER, 19);
    assert_int_equal(j->out.data[j->out.len - 1], '}');
    assert_int_equal(strlen(j->out.data), j->out.len);
    assert_true(j->now_ms > 0);
    job_free(j);

    j = handle(f, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"consent.grant\","
                  "\"params\":{\"audit_id\":3,\"ttl\":60}}");
    assert_int_equal(j->kind, JOB_GRANT);
    assert_non_null(j->root);
    assert_int_equal(json_integer_value(json_object_get(j->params, "audit_id")),
                     3);
    assert_int_equal(j->head_len, strlen("{\"jsonrpc\":\"2.0\",\"id\":6,"));
    job_free(j);
}

/* The same check read by the fast reader and, once it holds what only
 * jansson reads (a \u escape, a real number, a long integer), by jansson:
 * the same decision and the same audit row either way. */
static void test_both_readers_agree(void **state)
{
    fixture *f = *state;
    const char *fast =
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"check\",\"params\":{"
        "\"server\":\"github\",\"tool\":\"get_issue\",\"arguments\":{"
        "\"owner\":\"acme\",\"repo\":\"caf\xc3\xa9\"},\"token\":{\"sub\":"
        "\"alice\",\"scope\":\"repo:read\",\"client_id\":\"claude\","
        "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000}}}";
    const char *slow =
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"check\",\"params\":{"
        "\"server\":\"github\",\"tool\":\"get_issue\",\"arguments\":{"
        "\"owner\":\"acme\",\"repo\":\"caf\\u00e9\"},\"token\":{\"sub\":"
        "\"alice\",\"scope\":\"repo:read\",\"client_id\":\"claude\","
        "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000.0,"
        "\"n\":1234567890123456789}}}";
    job *a = handle(f, fast);
    job *b = handle(f, slow);
    assert_int_equal(a->kind, JOB_CHECK);
    assert_int_equal(b->kind, JOB_CHECK);
    assert_string_equal(a->out.data, b->out.data);
    for (int k = 0; k < JCOL_COUNT; k++) {
        const char *x = job_col_text(a, (job_col)k);
        const char *y = job_col_text(b, (job_col)k);
        if (x == NULL || y == NULL)
            assert_ptr_equal(x, y);
        else
            assert_string_equal(x, y);
    }
    assert_string_equal(job_col_text(a, JCOL_ARGUMENTS),
                        "{\"owner\":\"acme\",\"repo\":\"caf\xc3\xa9\"}");
    job_free(a);
    job_free(b);
}

static void test_policy_methods(void **state)
{
    fixture *f = *state;
    expect_reply(f,
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"policy.tools\","
                 "\"params\":{\"server\":\"github\"}}",
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":["
                 "\"get_issue\"],\"wildcard\":false}}\n");
    job *j = handle(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
                       "\"policy.status\"}");
    assert_int_equal(j->kind, JOB_REPLY);
    trine_policy *p = snapshot_acquire(f->snap);
    char want[256];
    snprintf(want, sizeof want,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"revision\":\"%s\"",
             trine_policy_revision(p));
    trine_policy_release(p);
    assert_memory_equal(j->out.data, want, strlen(want));
    job_free(j);
    expect_reply(f,
                 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"consent.list\"}",
                 "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"consents\":[]}}"
                 "\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prescan),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_error_lines_echo_ids),
        cmocka_unit_test_setup_teardown(test_ping_and_unknown_method, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_method_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_goes_to_the_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_both_readers_agree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_policy_methods, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
