/*
 * test_diag.c - the diagnostics list (levels, counts, the error cap, the
 * printed form) and the error-code table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_items(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    assert_non_null(d);
    assert_true(diag_add(d, TRINE_DIAG_ERROR, "a.trine", 3, 7,
                         "expected %s, found %s", "\"{\"", "\"allow\""));
    assert_true(diag_add(d, TRINE_DIAG_WARNING, "b.trine", 1, 1,
                         "role %s is bound to no one", "x"));
    assert_int_equal(trine_diag_count(d), 2);
    assert_int_equal(trine_diag_errors(d), 1);
    const trine_diag_item *it = trine_diag_at(d, 0);
    assert_int_equal(it->level, TRINE_DIAG_ERROR);
    assert_string_equal(it->file, "a.trine");
    assert_int_equal(it->line, 3);
    assert_int_equal(it->col, 7);
    assert_string_equal(it->message, "expected \"{\", found \"allow\"");
    assert_null(trine_diag_at(d, 2));
    trine_diag_free(d);

    /* A NULL list records nothing and does not fail. */
    assert_true(diag_add(NULL, TRINE_DIAG_ERROR, "x", 1, 1, "ignored"));
    assert_int_equal(trine_diag_count(NULL), 0);
    trine_diag_free(NULL);
}

static void test_cap(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    for (int i = 1; i <= TRINE_DIAG_MAX + 20; i++) {
        assert_int_equal(diag_full(d), i > TRINE_DIAG_MAX);
        diag_add(d, TRINE_DIAG_ERROR, "f.trine", (unsigned)i, 1, "error %d", i);
    }
    /* The cap keeps TRINE_DIAG_MAX errors and one note; it still counts. */
    assert_int_equal(trine_diag_count(d), TRINE_DIAG_MAX + 1);
    assert_int_equal(trine_diag_errors(d), TRINE_DIAG_MAX + 20);
    const trine_diag_item *last = trine_diag_at(d, TRINE_DIAG_MAX);
    assert_string_equal(last->message, "too many errors; stopping here");
    /* Warnings are not capped. */
    diag_add(d, TRINE_DIAG_WARNING, "f.trine", 9, 9, "still here");
    assert_int_equal(trine_diag_count(d), TRINE_DIAG_MAX + 2);
    trine_diag_free(d);
}

static void test_print(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    diag_add(d, TRINE_DIAG_ERROR, "a.trine", 2, 5, "unterminated string");
    diag_add(d, TRINE_DIAG_WARNING, "a.trine", 9, 1,
             "role x is bound to no one");
    diag_add(d, TRINE_DIAG_ERROR, "dir", 0, 0, "no *.trine file in dir");
    /* Nothing from a file name or the policy reaches the terminal raw:
     * control characters (C0, DEL, C1) and bytes that are not UTF-8. */
    diag_add(d, TRINE_DIAG_ERROR, "\033[31mred.trine", 1, 2,
             "found string \"\033]0;x\007\xc2\x9b\xff\xc3\xa9\"");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(trine_diag_print(d, f), 0);
    fclose(f);
    assert_string_equal(buf, "a.trine:2:5: unterminated string\n"
                             "a.trine:9:1: warning: role x is bound to no one\n"
                             "dir: no *.trine file in dir\n"
                             "\\x1b[31mred.trine:1:2: found string "
                             "\"\\x1b]0;x\\x07\\xc2\\x9b\\xff\xc3\xa9\"\n");
    free(buf);
    trine_diag_free(d);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(trine_strerror(0), "success");
    assert_string_equal(trine_strerror(TRINE_ENOMEM), "out of memory");
    assert_string_equal(trine_strerror(TRINE_EPOLICY), "the policy has errors");
    assert_string_equal(trine_strerror(12345), "unknown error");
    assert_string_equal(trine_err_name(TRINE_EREQUEST), "TRINE_EREQUEST");
    assert_string_equal(trine_err_name(0), "TRINE_OK");
    assert_string_equal(trine_err_name(-999), "TRINE_EUNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
