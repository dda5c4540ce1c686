/*
 * test_match.c - globs, full-match regexes, actions (match.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/policy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static cpl_pattern glob(const char *text)
{
    cpl_pattern p = {PAT_GLOB, text, strlen(text), false, NULL};
    p.literal = strpbrk(text, "*?") == NULL;
    return p;
}

static bool gm(const char *pattern, const char *subject)
{
    cpl_pattern p = glob(pattern);
    return pattern_match(&p, subject, strlen(subject));
}

static cpl_pattern regex(const char *src, bool icase)
{
    char msg[256];
    size_t off = 99;
    pcre2_code *re =
        match_compile_regex(src, strlen(src), icase, msg, sizeof msg, &off);
    assert_non_null(re);
    cpl_pattern p = {PAT_REGEX, src, strlen(src), false, re};
    return p;
}

static bool rm(const cpl_pattern *p, const char *subject)
{
    return pattern_match(p, subject, strlen(subject));
}

static void test_glob_star(void **state)
{
    (void)state;
    assert_true(gm("*", ""));
    assert_true(gm("*", "a/b/c"));
    assert_true(gm("repo:acme/*", "repo:acme/widgets"));
    assert_true(gm("repo:acme/*", "repo:acme/a/b"));
    assert_true(gm("repo:acme/*", "repo:acme/"));
    assert_false(gm("repo:acme/*", "repo:acme"));
    assert_false(gm("repo:acme/*", "repo:acmex/w"));
    assert_true(gm("repo:*/prod-*", "repo:acme/prod-db"));
    assert_false(gm("repo:*/prod-*", "repo:acme/dev-db"));
    assert_true(gm("*.txt", "a.txt"));
    assert_false(gm("*.txt", "a.txt.bak"));
    assert_true(gm("a*b*c", "abc"));
    assert_true(gm("a*b*c", "axxbyyc"));
    assert_false(gm("a*b*c", "axxbyy"));
}

static void test_glob_question(void **state)
{
    (void)state;
    assert_true(gm("?", "a"));
    assert_true(gm("?", "/"));
    assert_false(gm("?", ""));
    assert_false(gm("?", "ab"));
    assert_true(gm("a?c", "abc"));
    assert_false(gm("a?c", "ac"));
    /* One code point, whatever its length in bytes. */
    assert_true(gm("?", "\xc3\xa9"));         /* é */
    assert_true(gm("?", "\xe2\x82\xac"));     /* € */
    assert_true(gm("?", "\xf0\x9f\x98\x80")); /* emoji */
    assert_false(gm("??", "\xf0\x9f\x98\x80"));
    assert_true(gm("a?c", "a\xc3\xa9"
                          "c"));
    assert_true(gm("*?", "\xc3\xa9"));
    assert_true(gm("*?x", "\xc3\xa9\xc3\xa9x"));
    assert_false(gm("*??x", "\xc3\xa9x"));
}

static void test_glob_literal_and_empty(void **state)
{
    (void)state;
    cpl_pattern p = glob("repo:acme/secrets");
    assert_true(p.literal);
    assert_true(rm(&p, "repo:acme/secrets"));
    assert_false(rm(&p, "repo:acme/secrets2"));
    assert_false(rm(&p, "repo:acme/secret"));
    assert_true(gm("", ""));
    assert_false(gm("", "a"));
    /* No escapes and no classes: these are literal characters. */
    assert_true(gm("[ab]", "[ab]"));
    assert_false(gm("[ab]", "a"));
    assert_true(gm("a\\*", "a\\xyz"));
    assert_false(gm("a\\*", "a*"));
}

static void test_glob_many_stars(void **state)
{
    (void)state;
    assert_true(gm("***", ""));
    assert_true(gm("**a**", "a"));
    assert_true(gm("***a***b***", "xxaxxbxx"));
    assert_false(gm("***a***b***", "xxbxxaxx"));
    assert_true(gm("*a*a*a*a*", "aaaa"));
    assert_false(gm("*a*a*a*a*", "aaa"));
}

static void test_glob_pathological(void **state)
{
    (void)state;
    /* Exponential in a naive recursive matcher; linear-ish here. */
    size_t n = 200000;
    char *s = malloc(n + 2);
    assert_non_null(s);
    memset(s, 'a', n);
    s[n] = '\0';
    cpl_pattern p = glob("*a*a*a*a*a*a*a*a*b");
    assert_false(pattern_match(&p, s, n));
    s[n] = 'b';
    s[n + 1] = '\0';
    assert_true(pattern_match(&p, s, n + 1));
    free(s);
}

static void test_regex_full_match(void **state)
{
    (void)state;
    cpl_pattern p = regex("abc", false);
    assert_true(rm(&p, "abc"));
    assert_false(rm(&p, "xabcx"));
    assert_false(rm(&p, "xabc"));
    assert_false(rm(&p, "abcx"));
    assert_false(rm(&p, "ABC"));
    pcre2_code_free(p.re);

    /* The end anchor takes part in the match: a|ab must match "ab". */
    p = regex("a|ab", false);
    assert_true(rm(&p, "ab"));
    assert_true(rm(&p, "a"));
    assert_false(rm(&p, "abb"));
    pcre2_code_free(p.re);

    p = regex("[A-Za-z0-9-]{1,39}", false);
    assert_true(rm(&p, "acme-corp"));
    assert_false(rm(&p, "acme/corp"));
    assert_false(rm(&p, ""));
    pcre2_code_free(p.re);

    /* UTF mode: '.' is one code point. */
    p = regex(".", false);
    assert_true(rm(&p, "\xc3\xa9"));
    pcre2_code_free(p.re);
}

static void test_regex_caseless(void **state)
{
    (void)state;
    cpl_pattern p = regex("[a-z]+", true);
    assert_true(rm(&p, "ABC"));
    assert_true(rm(&p, "abc"));
    assert_false(rm(&p, "AB1"));
    pcre2_code_free(p.re);
    p = regex("[a-z]+", false);
    assert_false(rm(&p, "ABC"));
    pcre2_code_free(p.re);
}

static void test_regex_match_limit(void **state)
{
    (void)state;
    /* Catastrophic backtracking: the match limit stops it, and a match
     * that cannot finish is not a match. */
    cpl_pattern p = regex("(\\w+)+b", false);
    char s[64];
    s[0] = 'b';
    memset(s + 1, 'a', 40);
    s[41] = '\0';
    assert_false(rm(&p, s));
    s[40] = 'b';
    assert_true(rm(&p, s));
    pcre2_code_free(p.re);
}

static void test_regex_compile_error(void **state)
{
    (void)state;
    char msg[256];
    size_t off = 99;
    pcre2_code *re =
        match_compile_regex("ab(c", 4, false, msg, sizeof msg, &off);
    assert_null(re);
    assert_string_equal(msg, "missing closing parenthesis");
    assert_int_equal(off, 4);
    re = match_compile_regex("a{2,1}", 6, false, msg, sizeof msg, &off);
    assert_null(re);
    assert_string_equal(msg, "numbers out of order in {} quantifier");
    /* \C could split a code point in UTF mode: refused. */
    re = match_compile_regex("a\\Cb", 4, false, msg, sizeof msg, &off);
    assert_null(re);
}

static void test_action_match(void **state)
{
    (void)state;
    cpl_action ex = {ACT_EXACT, "issues.create", 13};
    cpl_action pre = {ACT_PREFIX, "issues.", 7};
    cpl_action any = {ACT_ANY, "*", 1};
#define AM(a, s) action_match(&(a), (s), strlen(s))
    assert_true(AM(ex, "issues.create"));
    assert_false(AM(ex, "issues.created"));
    assert_false(AM(ex, "issues.creat"));
    assert_false(AM(ex, "issues"));
    assert_true(AM(pre, "issues.create"));
    assert_true(AM(pre, "issues.comment.edit"));
    assert_false(AM(pre, "issues"));
    assert_false(AM(pre, "issues."));
    assert_false(AM(pre, "issuesx.create"));
    assert_false(AM(pre, "repo.read"));
    assert_true(AM(any, "issues"));
    assert_true(AM(any, "a.b.c"));
#undef AM
}

static cpl_pattern shared_re;

static void *thread_main(void *arg)
{
    (void)arg;
    intptr_t bad = 0;
    for (int i = 0; i < 2000; i++) {
        bad += !rm(&shared_re, "repo:acme/widgets");
        bad += rm(&shared_re, "repo:acme/widgets/x");
    }
    return (void *)bad;
}

static void test_regex_threads(void **state)
{
    (void)state;
    /* One compiled pattern shared by several threads, each with its own
     * match data. */
    shared_re = regex("repo:[a-z]+/[a-z]+", false);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
    pcre2_code_free(shared_re.re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_star),
        cmocka_unit_test(test_glob_question),
        cmocka_unit_test(test_glob_literal_and_empty),
        cmocka_unit_test(test_glob_many_stars),
        cmocka_unit_test(test_glob_pathological),
        cmocka_unit_test(test_regex_full_match),
        cmocka_unit_test(test_regex_caseless),
        cmocka_unit_test(test_regex_match_limit),
        cmocka_unit_test(test_regex_compile_error),
        cmocka_unit_test(test_action_match),
        cmocka_unit_test(test_regex_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
