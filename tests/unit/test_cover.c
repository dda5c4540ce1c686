/*
 * test_cover.c - step-up: the greedy set cover (ties to the scope declared
 * first, pairs no scope grants left out), what "a scope grants a pair"
 * means, and the WWW-Authenticate value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"

#include <string.h>

static void test_greedy_basic(void **state)
{
    (void)state;
    /* 3 scopes x 4 pairs. Scope 1 covers most; scope 2 finishes. */
    const unsigned char g[] = {
        1, 0, 0, 0, /* scope 0 */
        1, 1, 1, 0, /* scope 1 */
        0, 0, 0, 1, /* scope 2 */
    };
    unsigned char seen[4];
    size_t picked[3];
    size_t n = cover_greedy(g, 3, 4, seen, picked);
    assert_int_equal(n, 2);
    assert_int_equal(picked[0], 1);
    assert_int_equal(picked[1], 2);
}

static void test_greedy_tie_first_declared(void **state)
{
    (void)state;
    /* Scopes 0 and 1 grant the same pairs: the first declared wins. */
    const unsigned char g[] = {
        0, 1, /* scope 0: only pair 1 */
        1, 1, /* scope 1 */
        1, 1, /* scope 2: same as 1 */
    };
    unsigned char seen[2];
    size_t picked[3];
    size_t n = cover_greedy(g, 3, 2, seen, picked);
    assert_int_equal(n, 1);
    assert_int_equal(picked[0], 1);

    /* Equal gains in a later round also go to the earlier scope. */
    const unsigned char h[] = {
        1, 1, 0, 0, /* scope 0 */
        0, 0, 1, 0, /* scope 1 */
        0, 0, 0, 1, /* scope 2 */
        0, 0, 1, 1, /* scope 3 */
    };
    unsigned char seen4[4];
    size_t picked4[4];
    n = cover_greedy(h, 4, 4, seen4, picked4);
    assert_int_equal(n, 2);
    assert_int_equal(picked4[0], 0); /* ties 0 and 3 at 2: 0 first */
    assert_int_equal(picked4[1], 3);
}

static void test_greedy_uncoverable(void **state)
{
    (void)state;
    /* Pair 1 is granted by no scope: left out, the rest still covered. */
    const unsigned char g[] = {
        1, 0, 0, /* scope 0 */
        0, 0, 1, /* scope 1 */
    };
    unsigned char seen[3];
    size_t picked[2];
    size_t n = cover_greedy(g, 2, 3, seen, picked);
    assert_int_equal(n, 2);
    assert_int_equal(picked[0], 0);
    assert_int_equal(picked[1], 1);

    /* Nothing coverable at all. */
    const unsigned char z[] = {0, 0, 0, 0};
    unsigned char seen2[2];
    size_t picked2[2];
    assert_int_equal(cover_greedy(z, 2, 2, seen2, picked2), 0);
    assert_int_equal(cover_greedy(z, 0, 2, seen2, picked2), 0);
}

static void test_www_authenticate(void **state)
{
    (void)state;
    trine_decision *d = dec_new(NULL);
    const char *s1[] = {"repo:read", "repo:write", "repo:read"};
    const char *v = cover_www_authenticate(
        d, s1, 3, "https://mcp.example.com/.well-known/x");
    assert_string_equal(v, "Bearer error=\"insufficient_scope\", "
                           "scope=\"repo:read repo:write\", "
                           "resource_metadata=\"https://mcp.example.com/"
                           ".well-known/x\"");
    v = cover_www_authenticate(d, s1 + 1, 1, NULL);
    assert_string_equal(v, "Bearer error=\"insufficient_scope\", "
                           "scope=\"repo:write\"");
    const char *s2[] = {"we\"ird\\"};
    v = cover_www_authenticate(d, s2, 1, "a\"b");
    assert_string_equal(v, "Bearer error=\"insufficient_scope\", "
                           "scope=\"we\\\"ird\\\\\", "
                           "resource_metadata=\"a\\\"b\"");
    trine_decision_free(d);
}

static void test_grants(void **state)
{
    (void)state;
    static const char src[] =
        "scope \"a\" { allow repo.read, repo.write on \"repo:*\"\n"
        "              deny repo.write on \"repo:acme/prod-*\" }\n"
        "scope \"b\" { allow repo.* on \"repo:*\" }\n"
        "scope \"c\" { deny repo.read on \"repo:*\" }\n"
        "tool \"s\" \"t\" { needs repo.read on \"repo:{x}\" }\n";
    trine_source s = {"p.trine", src, sizeof src - 1};
    trine_diag *diag = trine_diag_new();
    trine_policy *p = NULL;
    int rc = trine_policy_load_sources(&s, 1, diag, &p);
    if (rc != 0)
        trine_diag_print(diag, stderr);
    assert_int_equal(rc, 0);
    const cpl_block *a = strmap_get(&p->scope_by_name, "a");
    const cpl_block *b = strmap_get(&p->scope_by_name, "b");
    const cpl_block *c = strmap_get(&p->scope_by_name, "c");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
#define G(blk, act, res) cover_grants(blk, act, strlen(act), res, strlen(res))
    assert_true(G(a, "repo.read", "repo:acme/w"));
    assert_true(G(a, "repo.write", "repo:acme/w"));
    assert_false(G(a, "repo.write", "repo:acme/prod-db")); /* own deny */
    assert_false(G(a, "repo.delete", "repo:acme/w"));
    assert_true(G(b, "repo.delete", "repo:acme/w"));
    assert_false(G(c, "repo.read", "repo:acme/w")); /* deny, no allow */
    assert_false(G(b, "issues.read", "repo:acme/w"));
#undef G
    trine_policy_release(p);
    trine_diag_free(diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_basic),
        cmocka_unit_test(test_greedy_tie_first_declared),
        cmocka_unit_test(test_greedy_uncoverable),
        cmocka_unit_test(test_www_authenticate),
        cmocka_unit_test(test_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
