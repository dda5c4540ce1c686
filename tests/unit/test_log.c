/*
 * test_log.c - trined's logfmt lines: the fixed prefix, levels, quoting and
 * escaping (text from a client must not be able to forge a line), and
 * cutting of over-long lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/log.h"

static int fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(fds) != 0)
        return -1;
    log_set_fd(fds[1]);
    log_set_level(LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

/* Reads what was logged, without the timestamp ("ts=... " is checked for
 * shape and cut off). */
static char *take(void)
{
    static char buf[LOG_LINE_MAX + 64];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    /* ts=2026-11-26T07:05:29.123Z */
    assert_memory_equal(buf, "ts=", 3);
    assert_int_equal(buf[7], '-');
    assert_int_equal(buf[13], 'T');
    assert_int_equal(buf[26], 'Z');
    assert_int_equal(buf[27], ' ');
    return buf + 28;
}

static void test_line_shape(void **state)
{
    (void)state;
    logline l;
    assert_true(log_begin(&l, LOG_INFO, "listening"));
    log_str(&l, "socket", "./trine.sock");
    log_int(&l, "workers", -2);
    log_uint(&l, "conns", 18446744073709551615ULL);
    log_end(&l);
    assert_string_equal(take(), "level=info event=listening "
                                "socket=./trine.sock workers=-2 "
                                "conns=18446744073709551615\n");
}

static void test_quoting(void **state)
{
    (void)state;
    logline l;
    assert_true(log_begin(&l, LOG_ERROR, "reload_refused"));
    log_str(&l, "error", "a.trine:3:5: expected \"on\"\nlevel=info");
    log_str(&l, "empty", "");
    log_str(&l, "none", NULL);
    log_str(&l, "eq", "a=b");
    log_str(&l, "ctl", "\x01\x7f\\");
    log_end(&l);
    assert_string_equal(take(),
                        "level=error event=reload_refused error=\"a.trine:3:5:"
                        " expected \\\"on\\\"\\nlevel=info\" empty=\"\" "
                        "none=\"\" eq=\"a=b\" ctl=\"\\u0001\\u007f\\\\\"\n");
}

static void test_levels(void **state)
{
    (void)state;
    logline l;
    assert_false(log_begin(&l, LOG_DEBUG, "conn_open"));
    log_set_level(LOG_ERROR);
    assert_false(log_begin(&l, LOG_WARN, "peer_refused"));
    assert_true(log_begin(&l, LOG_ERROR, "x"));
    log_end(&l);
    assert_string_equal(take(), "level=error event=x\n");
    log_level lv;
    assert_int_equal(log_parse_level("warn", &lv), 0);
    assert_int_equal(lv, LOG_WARN);
    assert_int_equal(log_parse_level("debug", &lv), 0);
    assert_int_equal(lv, LOG_DEBUG);
    assert_int_equal(log_parse_level("verbose", &lv), -1);
    assert_string_equal(log_level_name(LOG_INFO), "info");
    log_set_level(LOG_INFO);
}

static void test_long_lines_are_cut(void **state)
{
    (void)state;
    char *big = malloc(2 * LOG_LINE_MAX);
    assert_non_null(big);
    memset(big, 'x', 2 * LOG_LINE_MAX - 1);
    big[2 * LOG_LINE_MAX - 1] = '\0';
    logline l;
    assert_true(log_begin(&l, LOG_INFO, "big"));
    log_str(&l, "v", big);
    log_int(&l, "after", 1);
    log_end(&l);
    free(big);
    char *s = take();
    size_t n = strlen(s);
    assert_int_equal(n + 28, LOG_LINE_MAX - 1);
    assert_string_equal(s + n - 6, "xx...\n");
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(log_format_time(1795676729123, buf, sizeof buf),
                        "2026-11-26T07:05:29.123Z");
    assert_string_equal(log_format_time(0, buf, sizeof buf),
                        "1970-01-01T00:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_long_lines_are_cut),
        cmocka_unit_test(test_time_format),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
