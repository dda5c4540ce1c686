/*
 * test_claims.c - reading token claims: exp, aud, sub, scopes (scope before
 * scp), groups and roles, the agent, and the delegation chain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"

#include <string.h>

static json_t *tok(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s", e.text);
    return v;
}

/* Joins every value of an iterator with '|'. */
static void joined(const json_t *src, bool split, char *out, size_t cap)
{
    claim_iter it;
    const char *s;
    size_t len;
    size_t at = 0;
    out[0] = '\0';
    claims_iter_init(&it, src, split);
    while (claims_iter_next(&it, &s, &len)) {
        assert_true(at + len + 2 < cap);
        if (at > 0)
            out[at++] = '|';
        memcpy(out + at, s, len);
        at += len;
        out[at] = '\0';
    }
}

static void test_exp(void **state)
{
    (void)state;
    claims c;
    json_t *t = tok("{\"sub\":\"a\"}");
    claims_read(&c, t);
    assert_int_equal(c.exp_state, CLAIM_EXP_NONE);
    json_decref(t);

    t = tok("{\"exp\":1893456000}");
    claims_read(&c, t);
    assert_int_equal(c.exp_state, CLAIM_EXP_SET);
    assert_true(c.exp == 1893456000.0);
    json_decref(t);

    t = tok("{\"exp\":1.5}");
    claims_read(&c, t);
    assert_int_equal(c.exp_state, CLAIM_EXP_SET);
    assert_true(c.exp == 1.5);
    json_decref(t);

    static const char *const bad[] = {"{\"exp\":\"1893456000\"}",
                                      "{\"exp\":null}", "{\"exp\":true}",
                                      "{\"exp\":[1]}", "{\"exp\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = tok(bad[i]);
        claims_read(&c, t);
        assert_int_equal(c.exp_state, CLAIM_EXP_BAD);
        json_decref(t);
    }
}

static void test_sub(void **state)
{
    (void)state;
    claims c;
    json_t *t = tok("{\"sub\":\"alice\"}");
    claims_read(&c, t);
    assert_non_null(c.sub);
    assert_int_equal(c.sub_len, 5);
    assert_memory_equal(c.sub, "alice", 5);
    json_decref(t);

    t = tok("{}");
    claims_read(&c, t);
    assert_null(c.sub);
    assert_string_equal(c.sub_problem, "the token has no sub");
    json_decref(t);

    t = tok("{\"sub\":\"\"}");
    claims_read(&c, t);
    assert_null(c.sub);
    assert_string_equal(c.sub_problem, "sub must be a non-empty string");
    json_decref(t);

    t = tok("{\"sub\":42}");
    claims_read(&c, t);
    assert_null(c.sub);
    assert_string_equal(c.sub_problem, "sub must be a non-empty string");
    json_decref(t);

    t = tok("{\"sub\":\"al\\u0000ice\"}");
    claims_read(&c, t);
    assert_null(c.sub);
    assert_string_equal(c.sub_problem, "sub must not contain a NUL character");
    json_decref(t);
}

static void test_aud(void **state)
{
    (void)state;
    const char *const auds[] = {"https://a", "https://b"};
    claims c;
    json_t *t = tok("{\"aud\":\"https://b\"}");
    claims_read(&c, t);
    assert_true(claims_aud_match(&c, auds, 2));
    assert_false(claims_aud_match(&c, auds, 1));
    json_decref(t);

    t = tok("{\"aud\":[\"x\",7,\"https://a\"]}");
    claims_read(&c, t);
    assert_true(claims_aud_match(&c, auds, 1));
    json_decref(t);

    t = tok("{\"aud\":[\"x\",\"https://a/\"]}");
    claims_read(&c, t);
    assert_false(claims_aud_match(&c, auds, 2));
    json_decref(t);

    t = tok("{}");
    claims_read(&c, t);
    assert_false(claims_aud_match(&c, auds, 2));
    json_decref(t);

    t = tok("{\"aud\":{\"https://a\":1}}");
    claims_read(&c, t);
    assert_false(claims_aud_match(&c, auds, 2));
    json_decref(t);

    /* A NUL makes a different string. */
    t = tok("{\"aud\":\"https://a\\u0000\"}");
    claims_read(&c, t);
    assert_false(claims_aud_match(&c, auds, 2));
    json_decref(t);
}

static void test_scopes(void **state)
{
    (void)state;
    char buf[256];
    claims c;
    json_t *t = tok("{\"scope\":\"  repo:read  repo:write \",\"scp\":[\"x\"]}");
    claims_read(&c, t);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "repo:read|repo:write");
    json_decref(t);

    /* scp as an array, and as a space-separated string. */
    t = tok("{\"scp\":[\"a b\",1,\"c\",null]}");
    claims_read(&c, t);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "a b|c");
    json_decref(t);

    t = tok("{\"scp\":\"a c\"}");
    claims_read(&c, t);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "a|c");
    json_decref(t);

    /* A `scope` that is not a string grants nothing (no fallback). */
    t = tok("{\"scope\":[\"a\"],\"scp\":\"b\"}");
    claims_read(&c, t);
    assert_null(c.scopes);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "");
    json_decref(t);

    /* A null `scope` is absent: scp counts. */
    t = tok("{\"scope\":null,\"scp\":[\"b\"]}");
    claims_read(&c, t);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "b");
    json_decref(t);

    t = tok("{\"scope\":\"\"}");
    claims_read(&c, t);
    joined(c.scopes, true, buf, sizeof buf);
    assert_string_equal(buf, "");
    json_decref(t);
}

static void test_groups_roles(void **state)
{
    (void)state;
    char buf[256];
    claims c;
    json_t *t = tok("{\"groups\":\"acme eng\",\"roles\":[\"r1\",{},\"r2\"]}");
    claims_read(&c, t);
    joined(c.groups, false, buf, sizeof buf);
    assert_string_equal(buf, "acme eng"); /* a lone string is one value */
    joined(c.roles, false, buf, sizeof buf);
    assert_string_equal(buf, "r1|r2");
    json_decref(t);

    t = tok("{\"groups\":7}");
    claims_read(&c, t);
    joined(c.groups, false, buf, sizeof buf);
    assert_string_equal(buf, "");
    assert_null(c.roles);
    json_decref(t);
}

static void test_agent(void **state)
{
    (void)state;
    claims c;
    json_t *t = tok("{\"client_id\":\"cd\",\"azp\":\"other\"}");
    claims_read(&c, t);
    assert_int_equal(c.agent_len, 2);
    assert_memory_equal(c.agent, "cd", 2);
    json_decref(t);

    t = tok("{\"azp\":\"other\"}");
    claims_read(&c, t);
    assert_memory_equal(c.agent, "other", 5);
    json_decref(t);

    /* A client_id that is there decides: malformed, it names no agent
     * rather than handing the decision to azp. null is absent. */
    t = tok("{\"client_id\":5,\"azp\":\"other\"}");
    claims_read(&c, t);
    assert_null(c.agent);
    assert_string_equal(c.agent_problem,
                        "client_id must be a non-empty string");
    json_decref(t);

    t = tok("{\"client_id\":null,\"azp\":\"other\"}");
    claims_read(&c, t);
    assert_memory_equal(c.agent, "other", 5);
    json_decref(t);

    t = tok("{\"azp\":[\"other\"]}");
    claims_read(&c, t);
    assert_null(c.agent);
    assert_string_equal(c.agent_problem, "azp must be a non-empty string");
    json_decref(t);

    t = tok("{\"client_id\":\"\"}");
    claims_read(&c, t);
    assert_null(c.agent);
    assert_false(c.agent_nul);
    json_decref(t);

    t = tok("{}");
    claims_read(&c, t);
    assert_null(c.agent);
    assert_string_equal(c.agent_problem,
                        "the token names no agent (no client_id or azp)");
    json_decref(t);

    t = tok("{\"client_id\":\"c\\u0000d\",\"azp\":\"other\"}");
    claims_read(&c, t);
    assert_null(c.agent);
    assert_true(c.agent_nul);
    json_decref(t);
}

static void test_act(void **state)
{
    (void)state;
    claims c;
    json_t *t = tok("{}");
    claims_read(&c, t);
    assert_false(c.has_act);
    assert_int_equal(c.nactors, 0);
    json_decref(t);

    t = tok("{\"act\":null}");
    claims_read(&c, t);
    assert_false(c.has_act);
    assert_int_equal(c.nactors, 0);
    json_decref(t);

    t = tok("{\"act\":\"bot\"}");
    claims_read(&c, t);
    assert_true(c.has_act);
    assert_int_equal(c.nactors, 1);
    assert_null(c.actors[0].id);
    assert_string_equal(c.actors[0].why, "act is not an object");
    json_decref(t);

    t = tok("{\"act\":{\"client_id\":\"a1\",\"sub\":\"s1\",\"act\":{\"sub\":"
            "\"s2\",\"act\":{\"iss\":\"x\",\"act\":null}}}}");
    claims_read(&c, t);
    assert_true(c.has_act);
    assert_int_equal(c.nactors, 3);
    assert_memory_equal(c.actors[0].id, "a1", 2);
    assert_memory_equal(c.actors[1].id, "s2", 2);
    assert_null(c.actors[2].id);
    assert_string_equal(c.actors[2].why, "the actor has no client_id or sub");
    assert_false(c.truncated);
    json_decref(t);

    /* An actor's malformed client_id fails it; its sub does not stand in. */
    t = tok("{\"act\":{\"client_id\":\"\",\"sub\":\"s1\","
            "\"act\":{\"client_id\":null,\"sub\":\"s2\"}}}");
    claims_read(&c, t);
    assert_int_equal(c.nactors, 2);
    assert_null(c.actors[0].id);
    assert_string_equal(c.actors[0].why,
                        "the actor's client_id must be a non-empty string");
    assert_memory_equal(c.actors[1].id, "s2", 2);
    json_decref(t);

    /* Deeper than the cap: truncated, never unbounded. */
    json_t *root = json_object();
    json_t *cur = root;
    for (int i = 0; i < CLAIMS_MAX_ACTORS + 5; i++) {
        json_t *a = json_pack("{s:s}", "sub", "x");
        json_object_set_new(cur, "act", a);
        cur = a;
    }
    claims_read(&c, root);
    assert_int_equal(c.nactors, CLAIMS_MAX_ACTORS);
    assert_true(c.truncated);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),          cmocka_unit_test(test_sub),
        cmocka_unit_test(test_aud),          cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_groups_roles), cmocka_unit_test(test_agent),
        cmocka_unit_test(test_act),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
