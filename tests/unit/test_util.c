/*
 * test_util.c - the shared containers: string buffer (growth, JSON string
 * escaping), pointer vector, string-keyed hash map, UTF-8 checking and
 * decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_strbuf_grows(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    for (int i = 0; i < 1000; i++)
        sb_printf(&b, "%d,", i);
    assert_false(b.oom);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_string_equal(b.data + b.len - 4, "999,");
    sb_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sb_putc(&b, 'x');
    sb_putn(&b, "yz", 1);
    sb_puts(&b, "!");
    char *s = sb_take(&b);
    assert_string_equal(s, "xy!");
    assert_null(b.data);
    free(s);

    /* An empty buffer still hands out an empty string, not NULL. */
    sb_init(&b);
    s = sb_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void test_strbuf_oom_is_sticky(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "abc");
    assert_false(sb_reserve(&b, SIZE_MAX / 2));
    assert_true(b.oom);
    sb_puts(&b, "def");
    assert_int_equal(b.len, 3);
    assert_null(sb_take(&b));
}

static void expect_json(const char *in, size_t n, const char *want)
{
    strbuf b;
    sb_init(&b);
    sb_json_str(&b, in, n);
    assert_false(b.oom);
    assert_string_equal(b.data, want);
    sb_free(&b);
}

static void test_json_str(void **state)
{
    (void)state;
    expect_json("", 0, "\"\"");
    expect_json("plain", 5, "\"plain\"");
    expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect_json("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
    expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    /* NUL inside the length is escaped, not a terminator. */
    expect_json("a\0b", 3, "\"a\\u0000b\"");
    /* Non-ASCII UTF-8 and '/' stay raw. */
    expect_json("\xc3\xa9/\xe2\x82\xac", 6, "\"\xc3\xa9/\xe2\x82\xac\"");
    /* Every byte value, between runs of plain text, against RFC 8259 §7
     * spelled out here. */
    for (int c = 0; c < 256; c++) {
        char in[5] = {'a', 'b', (char)c, 'c', 'd'};
        char mid[8];
        const char *named = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
        if (named != NULL)
            snprintf(mid, sizeof mid, "%s", named);
        else if (c < 0x20)
            snprintf(mid, sizeof mid, "\\u%04x", (unsigned)c);
        else
            snprintf(mid, sizeof mid, "%c", c);
        char want[16];
        snprintf(want, sizeof want, "\"ab%scd\"", mid);
        expect_json(in, sizeof in, want);
    }
}

static void expect_i64(int64_t v)
{
    char want[32];
    snprintf(want, sizeof want, "%" PRId64, v);
    char got[FMT_I64_MAX + 1];
    size_t n = fmt_i64(got, v);
    got[n] = '\0';
    assert_string_equal(got, want);
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "x");
    sb_put_i64(&b, v);
    assert_string_equal(b.data + 1, want);
    sb_free(&b);
}

static void test_fmt_i64(void **state)
{
    (void)state;
    expect_i64(0);
    expect_i64(INT64_MAX);
    expect_i64(INT64_MIN);
    expect_i64(INT64_MIN + 1);
    /* Every power of ten that fits, 10^0 to 10^18. */
    int64_t p = 1;
    for (int i = 0; i <= 18; i++) {
        expect_i64(p);
        expect_i64(p - 1);
        expect_i64(-p);
        expect_i64(-(p - 1));
        if (i < 18)
            p *= 10;
    }
    /* A spread of values from a fixed generator. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        expect_i64((int64_t)(x >> (i % 64)));
        expect_i64(-(int64_t)(x >> (1 + i % 63)));
    }
}

static void test_ptrvec(void **state)
{
    (void)state;
    ptrvec v = {0};
    int items[100];
    for (int i = 0; i < 100; i++)
        assert_int_equal(pv_push(&v, &items[i]), 0);
    assert_int_equal(v.len, 100);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(v.items[i], &items[i]);
    pv_free(&v);
    assert_null(v.items);
    assert_int_equal(v.len, 0);
}

static void test_strmap(void **state)
{
    (void)state;
    strmap m = {0};
    assert_null(strmap_get(&m, "missing"));
    enum { N = 5000 };
    char(*keys)[16] = malloc(N * sizeof *keys);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "key-%d", i);
        assert_int_equal(strmap_put(&m, keys[i], &keys[i]), 0);
    }
    assert_int_equal(m.count, N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(strmap_get(&m, keys[i]), &keys[i]);
    assert_null(strmap_get(&m, "key-5000"));
    assert_null(strmap_get(&m, "key-"));

    /* Replacing keeps the count; lookups by length see a prefix. */
    int other;
    assert_int_equal(strmap_put(&m, keys[7], &other), 0);
    assert_int_equal(m.count, N);
    assert_ptr_equal(strmap_get(&m, "key-7"), &other);
    assert_ptr_equal(strmap_getn(&m, "key-12345", 6), strmap_get(&m, "key-12"));

    /* Keys may hold any bytes, NUL included, when given a length. */
    static const char nul_key[] = {'a', '\0', 'b'};
    assert_int_equal(strmap_putn(&m, nul_key, 3, &other), 0);
    assert_ptr_equal(strmap_getn(&m, nul_key, 3), &other);
    assert_null(strmap_getn(&m, nul_key, 1));
    strmap_free(&m);
    free(keys);
}

static void test_utf8_check(void **state)
{
    (void)state;
    assert_int_equal(utf8_check("", 0), 0);
    assert_int_equal(utf8_check("abc", 3), 3);
    assert_int_equal(utf8_check("\xc3\xa9", 2), 2);
    assert_int_equal(utf8_check("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(utf8_check("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
    /* Each bad form is reported at its first byte. */
    assert_int_equal(utf8_check("ab\xff", 3), 2);
    assert_int_equal(utf8_check("a\xc0\xaf", 3), 1);        /* overlong */
    assert_int_equal(utf8_check("a\xe0\x80\xaf", 4), 1);    /* overlong */
    assert_int_equal(utf8_check("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(utf8_check("\xf4\x90\x80\x80", 4), 0); /* > 10FFFF */
    assert_int_equal(utf8_check("x\xc3", 2), 1);            /* truncated */
    assert_int_equal(utf8_check("\xe2\x82", 2), 0);         /* truncated */
    assert_int_equal(utf8_check("\x80", 1), 0);             /* stray */
    assert_int_equal(utf8_check("\xc3\x28", 2), 0);         /* bad tail */
}

static void test_utf8_decode(void **state)
{
    (void)state;
    size_t n;
    assert_int_equal(utf8_decode("A", &n), 0x41);
    assert_int_equal(n, 1);
    assert_int_equal(utf8_decode("\xc2\x80", &n), 0x80);
    assert_int_equal(n, 2);
    assert_int_equal(utf8_decode("\xe2\x82\xac", &n), 0x20ac);
    assert_int_equal(n, 3);
    assert_int_equal(utf8_decode("\xf0\x9f\x98\x80", &n), 0x1f600);
    assert_int_equal(n, 4);
}

static void test_xstrdup(void **state)
{
    (void)state;
    char *s = xstrndup("hello world", 5);
    assert_string_equal(s, "hello");
    free(s);
    s = xstrdup("");
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_grows),
        cmocka_unit_test(test_strbuf_oom_is_sticky),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_fmt_i64),
        cmocka_unit_test(test_ptrvec),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_utf8_check),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_xstrdup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
