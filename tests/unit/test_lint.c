/*
 * test_lint.c - trine_policy_lint (lint.c): each warning fires where it
 * should, at the position it names, and a clean policy lints clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "trine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads one source (which must load), lints it, returns the diag. */
static trine_diag *lint(const char *text, int expect_warnings)
{
    trine_source s = {"a.trine", text, strlen(text)};
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int rc = trine_policy_load_sources(&s, 1, d, &p);
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    int n = trine_policy_lint(p, d);
    if (n != expect_warnings)
        trine_diag_print(d, stderr);
    assert_int_equal(n, expect_warnings);
    assert_int_equal(trine_diag_count(d), (size_t)expect_warnings);
    assert_int_equal(trine_diag_errors(d), 0);
    trine_policy_release(p);
    return d;
}

static void assert_warning(const trine_diag *d, size_t i, unsigned line,
                           unsigned col, const char *msg)
{
    const trine_diag_item *it = trine_diag_at(d, i);
    assert_non_null(it);
    assert_int_equal(it->level, TRINE_DIAG_WARNING);
    assert_string_equal(it->file, "a.trine");
    assert_int_equal(it->line, line);
    assert_int_equal(it->col, col);
    assert_string_equal(it->message, msg);
}

/* Wraps rules into a policy where nothing else warns. */
#define BOUND "user * { roles r }\n"

static void test_clean_example(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/design", TRINE_SOURCE_DIR);
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    assert_int_equal(trine_policy_load_dir(path, d, &p), 0);
    assert_int_equal(trine_policy_lint(p, d), 0);
    assert_int_equal(trine_diag_count(d), 0);
    trine_policy_release(p);
    trine_diag_free(d);
    assert_int_equal(trine_policy_lint(NULL, NULL), 0);
}

static void test_role_bound_to_no_one(void **state)
{
    (void)state;
    trine_diag *d = lint("role r { allow a on \"*\" }\n"
                         "\n"
                         "  role orphan { allow a on \"*\" }\n"
                         "role viagroup { }\n"
                         "group \"g\" { roles viagroup }\n"
                         "role viauser { }\n"
                         "user \"u\" { roles viauser }\n" BOUND,
                         1);
    assert_warning(d, 0, 3, 3,
                   "role \"orphan\" is bound to no user or group, so its "
                   "rules never apply; bind it with \"user ... { roles "
                   "orphan }\" or \"group ... { roles orphan }\"");
    trine_diag_free(d);
}

static void test_tool_no_scope_grants(void **state)
{
    (void)state;
    trine_diag *d = lint("server \"gh\" { }\n"
                         "scope \"s\" { allow issues.*, repo.read on \"*\"\n"
                         "  deny repo.delete on \"*\" }\n"
                         "scope \"t\" { deny repo.write on \"*\" }\n"
                         "tool \"gh\" \"ok\" { needs issues.comment.edit, "
                         "repo.read on \"x\" }\n"
                         "tool \"gh\" \"bad\" {\n"
                         "  needs repo.read on \"x\"\n"
                         "  needs repo.write, repo.delete on \"y\"\n"
                         "}\n",
                         2);
    /* Only an allow counts; a deny grants nothing, and resources are not
     * compared. */
    assert_warning(d, 0, 8, 3,
                   "tool \"gh\" \"bad\" needs repo.write, which no scope "
                   "block allows, so no token can ever be granted this tool");
    assert_warning(d, 1, 8, 3,
                   "tool \"gh\" \"bad\" needs repo.delete, which no scope "
                   "block allows, so no token can ever be granted this tool");
    trine_diag_free(d);

    d = lint("server \"gh\" { }\n"
             "tool \"gh\" * { needs a on \"x\" }\n",
             1);
    assert_warning(d, 0, 2, 15,
                   "tool \"gh\" * needs a, which no scope block allows, so "
                   "no token can ever be granted this tool");
    trine_diag_free(d);

    /* `*` in a scope grants every action. */
    trine_diag_free(lint("server \"gh\" { }\n"
                         "scope \"all\" { allow * on \"*\" }\n"
                         "tool \"gh\" * { needs a on \"x\" }\n",
                         0));
}

static void test_tool_without_server_block(void **state)
{
    (void)state;
    trine_diag *d = lint("scope \"s\" { allow * on \"*\" }\n"
                         "server \"gh\" { }\n"
                         "tool \"gh\" \"x\" { needs a on \"x\" }\n"
                         "tool \"gl\" \"x\" { needs a on \"x\" }\n"
                         "tool \"gl\" * { needs a on \"x\" }\n",
                         2);
    assert_warning(d, 0, 4, 1,
                   "tool \"gl\" \"x\" is for server \"gl\", which has no "
                   "server block, so no token audience is checked for it; "
                   "add a server block with its audience");
    assert_warning(d, 1, 5, 1,
                   "tool \"gl\" * is for server \"gl\", which has no server "
                   "block, so no token audience is checked for it; add a "
                   "server block with its audience");
    trine_diag_free(d);
}

static const char *dead_msg(unsigned line, unsigned col)
{
    static char buf[256];
    snprintf(buf, sizeof buf,
             "this allow never takes effect: the deny at a.trine:%u:%u in "
             "the same block denies every action and resource it allows",
             line, col);
    return buf;
}

static void test_dead_allow(void **state)
{
    (void)state;
    /* A deny on every resource. */
    trine_diag *d = lint("role r {\n"
                         "  allow repo.read on \"repo:acme/*\"\n"
                         "  deny repo.* on \"*\"\n"
                         "}\n" BOUND,
                         1);
    assert_warning(d, 0, 2, 3, dead_msg(3, 3));
    trine_diag_free(d);

    /* An identical pattern, a deny declared first, several denies. */
    d = lint("role r {\n"
             "  deny a on \"x/*\"\n"
             "  deny * on /y+/i, \"x/*\"\n"
             "  allow a, b on \"x/*\", /y+/i\n"
             "}\n" BOUND,
             1);
    assert_warning(d, 0, 4, 3, dead_msg(2, 3));
    trine_diag_free(d);

    /* A glob that covers the allow's glob; an agent block; a literal. */
    d = lint("agent \"x\" {\n"
             "  allow issues.comment.* on \"repo:acme/*\", \"repo:b/c\"\n"
             "  deny issues.* on \"repo:*\", \"repo:?/*\"\n"
             "}\n"
             "role r { }\n" BOUND,
             1);
    assert_warning(d, 0, 2, 3, dead_msg(3, 3));
    trine_diag_free(d);

    /* A scope block. */
    d = lint("scope \"s\" { allow a on \"a?c\" deny a on \"a*\" }\n"
             "role r { }\n" BOUND,
             1);
    assert_warning(d, 0, 1, 13, dead_msg(1, 30));
    trine_diag_free(d);
}

static void test_dead_allow_not_certain(void **state)
{
    (void)state;
    /* Each allow below still grants something: no warning. */
    trine_diag_free(
        lint("role r {\n"
             "  allow repo.* on \"repo:acme/*\"\n"
             "  deny  repo.delete on \"repo:acme/prod-*\"\n" /* narrower */
             "  allow a, b on \"x\"\n"
             "  deny  a on \"*\"\n" /* one action */
             "  allow c on \"x\", \"y\"\n"
             "  deny  c on \"x\"\n" /* one pattern */
             "  allow d on /abc/i\n"
             "  deny  d on /abc/\n" /* case flag */
             "  allow e on \"a?\"\n"
             "  deny  e on \"ab\"\n" /* ? vs literal */
             "  allow f on \"a*\"\n"
             "  deny  f on \"a?*\"\n" /* * vs ? */
             "  allow g.* on \"x\"\n"
             "  deny  g.h on \"x\"\n" /* wider allow */
             "  allow * on \"z\"\n"
             "  deny  k.* on \"z\"\n" /* any action */
             "  allow m on /m.*/\n"
             "  deny  m on \"m*\"\n" /* regex allow */
             "}\n"
             "role q { deny n on \"*\" }\n"
             "role p { allow n on \"*\" }\n" /* other block */
             "user \"u\" { roles q, p }\n" BOUND,
             0));
    /* A deny glob covers a literal allow only when it matches it. */
    trine_diag_free(lint("role r {\n"
                         "  allow a on \"repo:acme/x\"\n"
                         "  deny a on \"repo:*/y\"\n"
                         "}\n" BOUND,
                         0));
}

static void test_warning_count_and_order(void **state)
{
    (void)state;
    trine_diag *d = lint("role lonely { allow a on \"x\" deny a on \"x\" }\n"
                         "tool \"s\" \"t\" { needs a on \"x\" }\n",
                         4);
    assert_string_equal(trine_diag_at(d, 0)->message,
                        "role \"lonely\" is bound to no user or group, so its "
                        "rules never apply; bind it with \"user ... { roles "
                        "lonely }\" or \"group ... { roles lonely }\"");
    assert_warning(d, 1, 1, 15, dead_msg(1, 30));
    assert_int_equal(trine_diag_at(d, 2)->line, 2);
    assert_int_equal(trine_diag_at(d, 3)->line, 2);
    /* Printed as warnings. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(trine_diag_print(d, f), 0);
    fclose(f);
    assert_non_null(strstr(buf, "a.trine:1:15: warning: this allow never"));
    free(buf);
    trine_diag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_example),
        cmocka_unit_test(test_role_bound_to_no_one),
        cmocka_unit_test(test_tool_no_scope_grants),
        cmocka_unit_test(test_tool_without_server_block),
        cmocka_unit_test(test_dead_allow),
        cmocka_unit_test(test_dead_allow_not_certain),
        cmocka_unit_test(test_warning_count_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
