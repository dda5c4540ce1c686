/*
 * test_proxy_msg.c - the messages of `trine proxy`: reading and
 * classifying client lines, the daemon's check params, the proxy's own
 * answers (isError results, JSON-RPC errors, elicitation requests, their
 * texts), elicitation answers and tools/list filtering.
 *
 * The module's source is compiled in (the CLI is an executable, not a
 * library).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/cli/proxy_msg.c"

/* Parses JSON text that the test itself wrote. */
static json_t *js(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return v;
}

/* Asserts that v serializes (keys sorted, compact) to exactly want. */
static void assert_json(const json_t *v, const char *want)
{
    assert_non_null(v);
    char *got = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_t *w = js(want);
    char *exp = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_string_equal(got, exp);
    free(got);
    free(exp);
    json_decref(w);
}

/* Parses line and returns the kind of its first message. */
static pmsg_kind kind_of(const char *line)
{
    pmsg_line pl;
    char err[256];
    assert_int_equal(pmsg_parse_line(line, strlen(line), &pl, err, sizeof err),
                     0);
    assert_int_equal(pl.n, 1);
    pmsg_kind k = pl.items[0].kind;
    pmsg_line_free(&pl);
    return k;
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                             "\"tools/call\",\"params\":{}}"),
                     PMSG_CALL);
    assert_int_equal(kind_of("{\"id\":\"a\",\"method\":\"tools/call\"}"),
                     PMSG_CALL);
    assert_int_equal(kind_of("{\"method\":\"tools/call\"}"), PMSG_CALL_NOTIFY);
    /* MCP ids are strings or integers: a call must be answerable. */
    assert_int_equal(kind_of("{\"id\":null,\"method\":\"tools/call\"}"),
                     PMSG_INVALID);
    assert_int_equal(kind_of("{\"id\":1.5,\"method\":\"tools/call\"}"),
                     PMSG_INVALID);
    assert_int_equal(kind_of("{\"id\":7,\"method\":\"tools/list\"}"),
                     PMSG_LIST);
    assert_int_equal(kind_of("{\"method\":\"tools/list\"}"), PMSG_OTHER);
    assert_int_equal(kind_of("{\"id\":0,\"method\":\"initialize\"}"),
                     PMSG_INITIALIZE);
    assert_int_equal(kind_of("{\"method\":\"notifications/cancelled\","
                             "\"params\":{\"requestId\":3}}"),
                     PMSG_CANCEL);
    assert_int_equal(kind_of("{\"id\":1,\"method\":\"ping\"}"), PMSG_OTHER);
    assert_int_equal(kind_of("{\"method\":\"notifications/initialized\"}"),
                     PMSG_OTHER);
    assert_int_equal(kind_of("{\"id\":5,\"result\":{}}"), PMSG_RESPONSE);
    assert_int_equal(kind_of("{\"id\":null,\"error\":{\"code\":-32700}}"),
                     PMSG_RESPONSE);
    assert_int_equal(kind_of("{\"id\":\"trine-proxy-1-00\",\"result\":{}}"),
                     PMSG_OWN_RESPONSE);
    assert_int_equal(kind_of("{\"id\":\"trine-proxy\",\"result\":{}}"),
                     PMSG_RESPONSE);
    assert_int_equal(kind_of("{\"id\":1}"), PMSG_INVALID);
    assert_int_equal(kind_of("{\"result\":{}}"), PMSG_INVALID);
    assert_int_equal(kind_of("{\"id\":{},\"method\":\"ping\"}"), PMSG_INVALID);
    assert_int_equal(kind_of("{\"id\":1,\"method\":7}"), PMSG_INVALID);
    assert_int_equal(kind_of("42"), PMSG_INVALID);
    assert_int_equal(kind_of("\"text\""), PMSG_INVALID);
}

static void test_parse_batch(void **state)
{
    (void)state;
    const char *line = "[{\"id\":1,\"method\":\"tools/call\"},"
                       "{\"method\":\"notifications/x\"},7]";
    pmsg_line pl;
    char err[256];
    assert_int_equal(pmsg_parse_line(line, strlen(line), &pl, err, sizeof err),
                     0);
    assert_true(pl.batch);
    assert_int_equal(pl.n, 3);
    assert_int_equal(pl.items[0].kind, PMSG_CALL);
    assert_int_equal(pl.items[1].kind, PMSG_OTHER);
    assert_int_equal(pl.items[2].kind, PMSG_INVALID);
    assert_ptr_equal(pl.items[1].msg, json_array_get(pl.root, 1));
    pmsg_line_free(&pl);
    pmsg_line_free(&pl); /* a freed line is zeroed */

    assert_int_equal(pmsg_parse_line("[]", 2, &pl, err, sizeof err), 0);
    assert_true(pl.batch);
    assert_int_equal(pl.n, 0);
    assert_null(pl.items);
    pmsg_line_free(&pl);
}

static void test_parse_errors(void **state)
{
    (void)state;
    pmsg_line pl;
    char err[256];
    assert_int_equal(pmsg_parse_line("nope", 4, &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
    assert_string_equal(err, "invalid JSON at byte 4: invalid token near "
                             "'nope'");
    assert_null(pl.root);
    assert_int_equal(pmsg_parse_line("", 0, &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
    assert_string_equal(err,
                        "invalid JSON at byte 0: unexpected token near end "
                        "of file");
    /* Two names: the proxy would check one and the server run the other. */
    const char *dup = "{\"id\":1,\"method\":\"tools/call\",\"params\":"
                      "{\"name\":\"a\",\"name\":\"b\"}}";
    assert_int_equal(pmsg_parse_line(dup, strlen(dup), &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
    assert_string_equal(err, "invalid JSON at byte 57: duplicate object key "
                             "near '\"name\"'");
    /* A NUL byte inside the line is not JSON. */
    assert_int_equal(pmsg_parse_line("{}\0{}", 5, &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
    /* Trailing garbage is refused. */
    assert_int_equal(pmsg_parse_line("{} {}", 5, &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
    /* Trailing CR (a CRLF line) is whitespace. */
    assert_int_equal(pmsg_parse_line("{\"id\":1,\"method\":\"ping\"}\r", 25,
                                     &pl, err, sizeof err),
                     0);
    pmsg_line_free(&pl);
    /* A CR anywhere else is refused, though JSON takes it as whitespace: a
     * server whose reader ends lines at a bare CR would find the call
     * inside this ping, and run it unchecked. */
    const char *smuggled =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":"
        "{\"x\":\r{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\","
        "\"params\":{\"name\":\"w\",\"arguments\":{}}}\r}}";
    assert_int_equal(
        pmsg_parse_line(smuggled, strlen(smuggled), &pl, err, sizeof err),
        PMSG_PARSE_ERROR);
    assert_string_equal(err, "carriage return at byte 54: a message holds no "
                             "line break before its end");
    assert_null(pl.root);
    assert_int_equal(pmsg_parse_line("\r{}\r", 4, &pl, err, sizeof err),
                     PMSG_PARSE_ERROR);
}

static void test_check_params(void **state)
{
    (void)state;
    json_t *claims = js("{\"sub\":\"alice\"}");
    pmsg_ident who = {.claims = claims};
    json_t *call = js("{\"id\":1,\"method\":\"tools/call\",\"params\":{"
                      "\"name\":\"read_text_file\",\"arguments\":{\"path\":"
                      "\"/a\"},\"_meta\":{\"progressToken\":1}}}");
    json_t *p = NULL;
    char err[256];
    assert_int_equal(
        pmsg_check_params(call, "filesystem", &who, "s1", &p, err, sizeof err),
        0);
    assert_json(p, "{\"server\":\"filesystem\",\"tool\":\"read_text_file\","
                   "\"arguments\":{\"path\":\"/a\"},\"session\":\"s1\","
                   "\"token\":{\"sub\":\"alice\"}}");
    assert_string_equal(pmsg_call_tool(call), "read_text_file");
    json_decref(p);
    json_decref(call);

    /* No arguments, or null: an empty object. A bearer instead of claims. */
    pmsg_ident bearer = {.bearer = "tok"};
    const char *bare[] = {
        "{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\"}}",
        "{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\","
        "\"arguments\":null}}"};
    for (size_t i = 0; i < 2; i++) {
        call = js(bare[i]);
        assert_int_equal(
            pmsg_check_params(call, "srv", &bearer, "s2", &p, err, sizeof err),
            0);
        assert_json(p, "{\"server\":\"srv\",\"tool\":\"t\",\"arguments\":{},"
                       "\"session\":\"s2\",\"bearer\":\"tok\"}");
        json_decref(p);
        json_decref(call);
    }

    static const struct {
        const char *call;
        const char *err;
    } bad[] = {
        {"{\"id\":1,\"method\":\"tools/call\"}", "params must be an object"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":[]}",
         "params must be an object"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{}}",
         "params.name must be a non-empty string"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\"}}",
         "params.name must be a non-empty string"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":3}}",
         "params.name must be a non-empty string"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
         "\"a\\u0000b\"}}",
         "params.name must be a non-empty string"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\","
         "\"arguments\":[1]}}",
         "params.arguments must be an object"},
        {"{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\","
         "\"arguments\":\"x\"}}",
         "params.arguments must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t e;
        call = json_loads(bad[i].call, JSON_ALLOW_NUL, &e);
        assert_non_null(call);
        p = (json_t *)1;
        assert_int_equal(
            pmsg_check_params(call, "srv", &who, "s", &p, err, sizeof err),
            PMSG_INVALID_PARAMS);
        assert_null(p);
        assert_string_equal(err, bad[i].err);
        json_decref(call);
    }
    json_decref(claims);
}

static void test_answers(void **state)
{
    (void)state;
    json_t *id = json_integer(9);
    json_t *r = pmsg_tool_error(id, "no");
    assert_json(r, "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"content\":"
                   "[{\"type\":\"text\",\"text\":\"no\"}],\"isError\":true}}");
    size_t len = 0;
    char *line = pmsg_dump(r, &len);
    assert_int_equal(len, strlen(line));
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    free(line);
    json_decref(r);

    r = pmsg_rpc_error(NULL, PMSG_PARSE_ERROR, "parse error: x");
    assert_json(r, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
                   "-32700,\"message\":\"parse error: x\"}}");
    json_decref(r);
    r = pmsg_rpc_error(id, PMSG_INVALID_PARAMS, "m");
    assert_json(r, "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32602,"
                   "\"message\":\"m\"}}");
    json_decref(r);
    json_decref(id);

    /* A multi-line text stays one line on the wire. */
    json_t *sid = json_string("a");
    r = pmsg_tool_error(sid, "one\ntwo");
    line = pmsg_dump(r, &len);
    assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{"
                              "\"content\":[{\"type\":\"text\",\"text\":"
                              "\"one\\ntwo\"}],\"isError\":true}}\n");
    free(line);
    json_decref(r);
    json_decref(sid);
}

/* Asserts the text pmsg_decision_text makes for result (JSON text). */
static void assert_text(const char *result, const char *note, const char *want)
{
    json_t *res = js(result);
    char *t = pmsg_decision_text(res, "filesystem", "write_file", note);
    assert_non_null(t);
    assert_string_equal(t, want);
    free(t);
    json_decref(res);
}

static void test_decision_text(void **state)
{
    (void)state;
    assert_text("{\"decision\":\"deny\",\"reason\":\"forbidden\",\"audit_id\":"
                "12,\"reasons\":[{\"code\":\"forbidden\",\"detail\":\"an "
                "absolute limit of the policy forbids it\"}]}",
                NULL,
                "trine denied this call (filesystem/write_file): forbidden.\n"
                "Why: an absolute limit of the policy forbids it.\n"
                "Fix: the resource is off limits to everyone; no role, scope "
                "or agent can unlock it.\n"
                "Audit id: 12");
    /* A detail that ends its sentence is not given a second period. */
    assert_text("{\"reason\":\"user_denied\",\"reasons\":[{\"detail\":"
                "\"no role allows it.\"}]}",
                NULL,
                "trine denied this call (filesystem/write_file): "
                "user_denied.\n"
                "Why: no role allows it.\n"
                "Fix: the signed-in user may not do this; an administrator "
                "must give the user a role that allows it.");
    assert_text(
        "{\"decision\":\"deny\",\"reason\":\"scope_missing\",\"audit_id\":3,"
        "\"reasons\":[{\"code\":\"scope_missing\",\"detail\":\"no scope of "
        "the token allows it\"}],\"required_scopes\":[\"files:write\","
        "\"files:delete\"],\"www_authenticate\":\"Bearer error="
        "\\\"insufficient_scope\\\", scope=\\\"files:write files:delete\\\"\"}",
        NULL,
        "trine denied this call (filesystem/write_file): scope_missing.\n"
        "Why: no scope of the token allows it.\n"
        "Fix: the access token lacks a scope; sign in again with the scopes "
        "files:write, files:delete.\n"
        "WWW-Authenticate: Bearer error=\"insufficient_scope\", "
        "scope=\"files:write files:delete\"\n"
        "Audit id: 3");
    assert_text("{\"reason\":\"scope_missing\",\"required_scopes\":[]}", NULL,
                "trine denied this call (filesystem/write_file): "
                "scope_missing.\n"
                "Fix: no scope can grant this call, so stepping up the token "
                "will not help.");
    assert_text("{\"decision\":\"consent_required\",\"reason\":"
                "\"consent_required\",\"audit_id\":40,\"consent\":{\"mode\":"
                "\"session\",\"prompt\":\"Let a write?\"}}",
                NULL,
                "trine needs consent before this call "
                "(filesystem/write_file): consent_required.\n"
                "Prompt: Let a write?\n"
                "This client cannot ask for consent (it did not declare "
                "form-mode elicitation): grant it with `trine consent grant "
                "40`, then call the tool again.\n"
                "Audit id: 40");
    assert_text("{\"reason\":\"consent_required\",\"audit_id\":41,"
                "\"consent\":{\"prompt\":\"Let a write?\"}}",
                "The user declined, so the call was not made.",
                "trine needs consent before this call "
                "(filesystem/write_file): consent_required.\n"
                "Prompt: Let a write?\n"
                "The user declined, so the call was not made.\n"
                "Audit id: 41");
    /* A reason the proxy does not know is still named, without advice. */
    assert_text("{\"reason\":\"something_new\"}", NULL,
                "trine denied this call (filesystem/write_file): "
                "something_new.");
    assert_text("{}", NULL,
                "trine denied this call (filesystem/write_file): unknown.");

    char *t = pmsg_unavailable_text("cannot connect to /s: No such file");
    assert_string_equal(t, "authorization unavailable: cannot connect to /s: "
                           "No such file. The call was not made: trine "
                           "fails closed when it cannot decide.");
    free(t);
}

static void test_elicitation(void **state)
{
    (void)state;
    static const struct {
        const char *init;
        bool elicits;
    } caps[] = {
        {"{\"params\":{\"capabilities\":{\"elicitation\":{}}}}", true},
        {"{\"params\":{\"capabilities\":{\"elicitation\":{\"form\":{}}}}}",
         true},
        {"{\"params\":{\"capabilities\":{\"elicitation\":{\"form\":{},"
         "\"url\":{}}}}}",
         true},
        {"{\"params\":{\"capabilities\":{\"elicitation\":{\"url\":{}}}}}",
         false},
        {"{\"params\":{\"capabilities\":{\"elicitation\":true}}}", false},
        {"{\"params\":{\"capabilities\":{}}}", false},
        {"{\"params\":{}}", false},
        {"{}", false},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        json_t *init = js(caps[i].init);
        assert_int_equal(pmsg_client_elicits(init), caps[i].elicits);
        json_decref(init);
    }

    json_t *req = pmsg_elicit_request("trine-proxy-1-ab", "Let x write?");
    assert_json(req, "{\"jsonrpc\":\"2.0\",\"id\":\"trine-proxy-1-ab\","
                     "\"method\":\"elicitation/create\",\"params\":{"
                     "\"message\":\"Let x write?\",\"requestedSchema\":{"
                     "\"type\":\"object\",\"properties\":{}}}}");
    json_decref(req);

    static const struct {
        const char *resp;
        pmsg_answer want;
        const char *err;
    } answers[] = {
        {"{\"result\":{\"action\":\"accept\",\"content\":{}}}",
         PMSG_ANSWER_ACCEPT, NULL},
        {"{\"result\":{\"action\":\"accept\"}}", PMSG_ANSWER_ACCEPT, NULL},
        {"{\"result\":{\"action\":\"decline\"}}", PMSG_ANSWER_DECLINE, NULL},
        {"{\"result\":{\"action\":\"cancel\"}}", PMSG_ANSWER_CANCEL, NULL},
        {"{\"result\":{\"action\":\"ACCEPT\"}}", PMSG_ANSWER_ERROR,
         "the client's answer has no valid result.action"},
        {"{\"result\":{}}", PMSG_ANSWER_ERROR,
         "the client's answer has no valid result.action"},
        {"{\"error\":{\"code\":-32602,\"message\":\"nope\"}}",
         PMSG_ANSWER_ERROR, "the client answered error -32602: nope"},
        {"{\"error\":{},\"result\":{\"action\":\"accept\"}}", PMSG_ANSWER_ERROR,
         "the client answered error 0: (no message)"},
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        json_t *resp = js(answers[i].resp);
        char err[256] = "";
        assert_int_equal(pmsg_elicit_answer(resp, err, sizeof err),
                         answers[i].want);
        if (answers[i].err != NULL)
            assert_string_equal(err, answers[i].err);
        json_decref(resp);
    }
}

static void test_filter_tools(void **state)
{
    (void)state;
    json_t *tools = js("[\"read\",\"write\"]");
    json_t *resp = js("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":["
                      "{\"name\":\"read\",\"inputSchema\":{}},"
                      "{\"name\":\"secret\"},{\"name\":\"write\"},"
                      "{\"name\":7},{},\"x\"],\"nextCursor\":\"c\"}}");
    assert_int_equal(pmsg_filter_tools(resp, tools, false), 4);
    assert_json(resp, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":["
                      "{\"name\":\"read\",\"inputSchema\":{}},"
                      "{\"name\":\"write\"}],\"nextCursor\":\"c\"}}");
    /* Nothing more to remove: unchanged. */
    assert_int_equal(pmsg_filter_tools(resp, tools, false), 0);
    json_decref(resp);

    resp = js("{\"id\":2,\"result\":{\"tools\":[{\"name\":\"other\"}]}}");
    assert_int_equal(pmsg_filter_tools(resp, tools, true), 0);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(resp, "result"), "tools")),
                     1);
    json_decref(resp);

    /* A name with a NUL cannot be the policy's. */
    json_error_t e;
    resp = json_loads("{\"id\":2,\"result\":{\"tools\":[{\"name\":"
                      "\"read\\u0000x\"}]}}",
                      JSON_ALLOW_NUL, &e);
    assert_non_null(resp);
    assert_int_equal(pmsg_filter_tools(resp, tools, false), 1);
    json_decref(resp);

    static const char *const no_list[] = {
        "{\"id\":2,\"error\":{\"code\":1}}",
        "{\"id\":2,\"result\":{}}",
        "{\"id\":2,\"result\":{\"tools\":{}}}",
        "{\"id\":2,\"result\":[]}",
    };
    for (size_t i = 0; i < sizeof no_list / sizeof no_list[0]; i++) {
        resp = js(no_list[i]);
        assert_int_equal(pmsg_filter_tools(resp, tools, false), -1);
        json_decref(resp);
    }
    json_decref(tools);
}

static void test_parse_reply(void **state)
{
    (void)state;
    json_t *r = NULL;
    char err[256];
    const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
    assert_int_equal(pmsg_parse_reply(ok, strlen(ok), &r, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    assert_int_equal(pmsg_parse_reply("{\"a\":", 5, &r, err, sizeof err), -1);
    assert_string_equal(err, "an unreadable reply from trined: unexpected "
                             "token near end of file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_parse_batch),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_check_params),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_decision_text),
        cmocka_unit_test(test_elicitation),
        cmocka_unit_test(test_filter_tools),
        cmocka_unit_test(test_parse_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
