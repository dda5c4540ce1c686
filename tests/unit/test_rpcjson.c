/*
 * test_rpcjson.c - the fast request reader: it reads the usual request,
 * declines what it does not take, and whatever it returns is exactly what
 * jansson returns for the same text (checked case by case, and over
 * thousands of mutations of real requests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/rpc.h"
#include "daemon/rpcjson.h"

static const int jflags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;

/* The canonical dump of v: key order and integer/real kept. */
static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER |
                             JSON_REAL_PRECISION(17));
}

/* Checks the reader against rpc_prescan and jansson on n bytes at s.
 * Returns 1 when the reader took the text, 0 when it declined. */
static int agree(const char *s, size_t n)
{
    json_t *fast = rpc_json_read(s, n);
    json_t *ref = json_loadb(s, n, jflags, NULL);
    if (fast == NULL) {
        json_decref(ref);
        return 0;
    }
    char err[128];
    if (rpc_prescan(s, n, err, sizeof err) != 0) {
        fprintf(stderr, "taken but the prescan refuses (%s): %.*s\n", err,
                (int)n, s);
        fail();
    }
    if (ref == NULL) {
        fprintf(stderr, "taken but jansson refuses: %.*s\n", (int)n, s);
        fail();
    }
    char *a = dump(fast);
    char *b = dump(ref);
    assert_non_null(a);
    assert_non_null(b);
    if (strcmp(a, b) != 0 || !json_equal(fast, ref)) {
        fprintf(stderr, "differs on %.*s:\n  %s\n  %s\n", (int)n, s, a, b);
        fail();
    }
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
    return 1;
}

static int agree_str(const char *s)
{
    return agree(s, strlen(s));
}

static const char request[] =
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"check\",\"params\":{"
    "\"server\":\"github\",\"tool\":\"create_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\","
    "\"title\":\"Crash on start\"},\"session\":\"mcp-session-4f2a\","
    "\"token\":{\"sub\":\"alice\",\"scope\":\"repo:read repo:write\","
    "\"client_id\":\"claude-desktop\",\"aud\":"
    "\"https://mcp.example.com/github\",\"exp\":1893456000,"
    "\"groups\":[\"acme-eng\"]}}}";

static void test_takes_the_usual(void **state)
{
    (void)state;
    assert_int_equal(agree_str(request), 1);
    const char *taken[] = {
        "{}",
        "[]",
        " \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , true , false , null ] } \r",
        "\"plain\"",
        "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t end\"",
        "\"\\n\"",
        "{\"k\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "123456789012345678",
        "-123456789012345678",
        "[[[[{\"a\":{\"b\":[{}]}}]]]]",
        "{\"a\":1,\"b\":{\"a\":2}}",
        "{\"\":\"\"}",
        "\"\x7f\"",
        "{\"x\":\"a\\\"b\",\"y\":\"c\\\\d\"}",
    };
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        if (agree_str(taken[i]) != 1) {
            fprintf(stderr, "declined: %s\n", taken[i]);
            fail();
        }
    }
    /* Key order is the text's, as with jansson. */
    json_t *v = rpc_json_read("{\"z\":1,\"a\":2,\"m\":3}", 19);
    assert_non_null(v);
    const char *key;
    json_t *val;
    char order[4] = "";
    size_t k = 0;
    json_object_foreach(v, key, val) order[k++] = key[0];
    assert_string_equal(order, "zam");
    json_decref(v);
}

static void test_declines_the_rest(void **state)
{
    (void)state;
    const char *declined[] = {
        /* valid, but left to jansson */
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "{\"\\n\":1}",
        "1.5",
        "1e3",
        "-0.0",
        "1234567890123456789",
        "9223372036854775807",
        /* Past 18 digits before they overflow (found by fuzz_rpc). */
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        "[1,99999999999999999999999]",
        "[1.0]",
        /* not JSON */
        "",
        "   ",
        "{",
        "}",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":1}{}",
        "{\"a\":1} x",
        "01",
        "-",
        "--1",
        "+1",
        "1x",
        "tru",
        "truex",
        "nul",
        "[true false]",
        "\"unterminated",
        "\"tab\there\"",
        "\"bad \\x escape\"",
        "\"\\",
        "{\"a\":1,\"a\":2}",
        "'single'",
        "[1 2]",
        "NaN",
        "Infinity",
    };
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        if (agree_str(declined[i]) != 0) {
            fprintf(stderr, "taken: %s\n", declined[i]);
            fail();
        }
    }
    /* Text that is not UTF-8, in a string (a bad sequence, an overlong
     * '/', a surrogate, a stray continuation byte) and outside. */
    const char *bad_utf8[] = {
        "\"\xc3\x28\"", "\"\xc0\xaf\"",         "\"\xed\xa0\x80\"",
        "\"a\x80\"",    "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"",
        "[1,\xc3\xa9]", "{\"a\\n\xff\":1}",     "[\"x\\n\xff\"]",
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        assert_null(rpc_json_read(bad_utf8[i], strlen(bad_utf8[i])));
    /* Nesting: RPC_MAX_DEPTH levels are read, one more is declined. */
    char deep[2 * RPC_MAX_DEPTH + 4];
    memset(deep, '[', RPC_MAX_DEPTH);
    memset(deep + RPC_MAX_DEPTH, ']', RPC_MAX_DEPTH);
    assert_int_equal(agree(deep, 2 * RPC_MAX_DEPTH), 1);
    memset(deep, '[', RPC_MAX_DEPTH + 1);
    memset(deep + RPC_MAX_DEPTH + 1, ']', RPC_MAX_DEPTH + 1);
    assert_null(rpc_json_read(deep, 2 * RPC_MAX_DEPTH + 2));

    /* A NUL byte, in a string and outside. */
    assert_int_equal(agree("\"a\0b\"", 5), 0);
    assert_int_equal(agree("{}\0", 3), 0);
    assert_int_equal(agree("[1\0]", 4), 0);
}

/* A small deterministic generator, so a failure repeats. */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void test_mutations_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\":,\\ \t\r\n0123456789-+.eEtrufalsn"
                                   "abxyz/u\x01\x1f\x7f\xc3\xa9\xed\xa0\xff";
    const char *seeds[] = {
        request,
        "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"method\":\"ping\"}",
        "[{\"a\":[1,-2,{\"b\":null}]},true,false,\"x\\ny\"]",
    };
    char buf[1024];
    int taken = 0;
    for (int round = 0; round < 20000; round++) {
        const char *seed = seeds[round % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits; e++) {
            uint32_t op = next_rand() % 3;
            size_t at = n > 0 ? next_rand() % n : 0;
            char c = alphabet[next_rand() % (sizeof alphabet - 1)];
            if (op == 0 && n > 0) {
                buf[at] = c;
            } else if (op == 1 && n + 1 < sizeof buf) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = c;
                n++;
            } else if (n > 0) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
        }
        taken += agree(buf, n);
    }
    /* The mutations left many requests readable, and the reader took
     * them. */
    assert_true(taken > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_the_usual),
        cmocka_unit_test(test_declines_the_rest),
        cmocka_unit_test(test_mutations_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
