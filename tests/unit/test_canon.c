/*
 * test_canon.c - canonical JSON (key order, escapes, numbers, redaction) and
 * SHA-256 in hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"

#include <stdlib.h>
#include <string.h>

/* Parses text (JSON_DECODE_ANY, NULs allowed) and returns its canonical
 * form, caller-owned. */
static char *canon_of(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    assert_non_null(v);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(trine_json_canonical(v, &out, &len), 0);
    assert_int_equal(len, strlen(out));
    json_decref(v);
    return out;
}

static void expect_canon(const char *in, const char *want)
{
    char *got = canon_of(in);
    assert_string_equal(got, want);
    trine_free(got);
}

static void test_sorted_compact(void **state)
{
    (void)state;
    expect_canon("{ \"b\" : 1, \"a\" : [ true, false, null ], \"c\": {} }",
                 "{\"a\":[true,false,null],\"b\":1,\"c\":{}}");
    /* Byte order: uppercase before lowercase, a prefix first. */
    expect_canon("{\"ab\":1,\"a\":2,\"B\":3,\"\xc3\xa9\":4,\"z\":5}",
                 "{\"B\":3,\"a\":2,\"ab\":1,\"z\":5,\"\xc3\xa9\":4}");
    expect_canon("{\"o\":{\"y\":1,\"x\":{\"q\":2,\"p\":3}}}",
                 "{\"o\":{\"x\":{\"p\":3,\"q\":2},\"y\":1}}");
    expect_canon("[]", "[]");
    expect_canon("{}", "{}");
}

static void test_many_keys(void **state)
{
    (void)state;
    /* More keys than the inline sort buffer holds. */
    json_t *o = json_object();
    for (int i = 39; i >= 0; i--) {
        char k[8];
        snprintf(k, sizeof k, "k%02d", i);
        json_object_set_new(o, k, json_integer(i));
    }
    char *out = NULL;
    assert_int_equal(trine_json_canonical(o, &out, NULL), 0);
    assert_true(strncmp(out, "{\"k00\":0,\"k01\":1,", 17) == 0);
    assert_non_null(strstr(out, "\"k38\":38,\"k39\":39}"));
    trine_free(out);
    json_decref(o);
}

static void test_strings(void **state)
{
    (void)state;
    expect_canon("\"a\\\"b\\\\c\\/d\"", "\"a\\\"b\\\\c/d\"");
    expect_canon("\"\\b\\f\\n\\r\\t\\u0001\\u001f\"",
                 "\"\\b\\f\\n\\r\\t\\u0001\\u001f\"");
    /* DEL and non-ASCII stay raw (RFC 8785); \u escapes decode to UTF-8. */
    expect_canon("\"\\u007f\\u00e9\\u20ac\\ud83d\\ude00\"",
                 "\"\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    expect_canon("\"a\\u0000b\"", "\"a\\u0000b\"");

    /* A key holding a NUL sorts after its prefix and keeps its NUL. */
    json_t *o = json_object();
    json_object_setn_new_nocheck(o, "k\0x", 3, json_integer(1));
    json_object_set_new(o, "k", json_integer(2));
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(trine_json_canonical(o, &out, &len), 0);
    assert_int_equal(len, 20);
    assert_memory_equal(out, "{\"k\":2,\"k\\u0000x\":1}", 20);
    trine_free(out);
    json_decref(o);
}

static void test_numbers(void **state)
{
    (void)state;
    expect_canon("[0,-1,9223372036854775807,-9223372036854775808]",
                 "[0,-1,9223372036854775807,-9223372036854775808]");
    /* The shortest %g precision that reads back wins, except that integral
     * values below 1e15 keep plain notation (100.0, not 1e+02). */
    expect_canon("[1.0,1.5,0.1,-0.0,100.0,1e20,1.5e-7,3.141592653589793]",
                 "[1.0,1.5,0.1,-0.0,100.0,1e+20,1.5e-07,3.141592653589793]");
    expect_canon("[0.30000000000000004,123456789012.0]",
                 "[0.30000000000000004,123456789012.0]");
}

static void test_real_text(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(canon_real(1.0, buf), 3);
    assert_string_equal(buf, "1.0");
    canon_real(2.5, buf);
    assert_string_equal(buf, "2.5");
    canon_real(1e300, buf);
    assert_string_equal(buf, "1e+300");
    canon_real(5e-324, buf);
    assert_string_equal(buf, "5e-324");
    canon_real(1.7976931348623157e308, buf);
    assert_string_equal(buf, "1.7976931348623157e+308");
}

static void test_redact(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"body\":\"secret\",\"opts\":{\"token\":\"t\","
                           "\"n\":1},\"list\":[{\"body\":1}],\"title\":\"x\"}",
                           0, NULL);
    assert_non_null(v);
    const char *seg_body[] = {"body"};
    const char *seg_tok[] = {"opts", "token"};
    const char *seg_missing[] = {"nope", "deeper"};
    cpl_path paths[] = {{"body", seg_body, 1},
                        {"opts.token", seg_tok, 2},
                        {"nope.deeper", seg_missing, 2}};
    strbuf b;
    sb_init(&b);
    assert_int_equal(canon_write(&b, v, paths, 3), 0);
    /* Paths go through objects only: the body inside the array stays. */
    assert_string_equal(b.data,
                        "{\"body\":\"[redacted]\",\"list\":[{\"body\":1}],"
                        "\"opts\":{\"n\":1,\"token\":\"[redacted]\"},"
                        "\"title\":\"x\"}");
    sb_free(&b);

    /* Redacting a whole object. */
    const char *seg_opts[] = {"opts"};
    cpl_path whole[] = {{"opts", seg_opts, 1}};
    sb_init(&b);
    assert_int_equal(canon_write(&b, v, whole, 1), 0);
    assert_string_equal(b.data, "{\"body\":\"secret\",\"list\":[{\"body\":1}],"
                                "\"opts\":\"[redacted]\",\"title\":\"x\"}");
    sb_free(&b);
    json_decref(v);
}

static void test_too_deep(void **state)
{
    (void)state;
    json_t *root = json_array();
    json_t *cur = root;
    for (int i = 0; i < 3000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    char *out = (char *)1;
    assert_int_equal(trine_json_canonical(root, &out, NULL), TRINE_EINVAL);
    assert_null(out);
    json_decref(root);
    assert_int_equal(trine_json_canonical(NULL, &out, NULL), TRINE_EINVAL);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    trine_sha256_hex("", 0, hex);
    assert_string_equal(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    trine_sha256_hex("abc", 3, hex);
    assert_string_equal(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    trine_sha256_hex("{}", 2, hex);
    assert_string_equal(
        hex,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
}

/* trine_arguments_hash of the JSON text args (an object), as hex. */
static void args_hash(const char *args, char hex[65])
{
    json_error_t e;
    json_t *v = json_loads(args, 0, &e);
    assert_non_null(v);
    assert_int_equal(trine_arguments_hash(v, hex), 0);
    json_decref(v);
}

static void test_arguments_hash(void **state)
{
    (void)state;
    char a[65], b[65];
    /* The hash of the value form: what evaluates alike hashes alike... */
    static const char *const same[][2] = {
        {"{\"n\":1,\"r\":\"w\"}", "{\"r\":\"w\",\"n\":1.0}"},
        {"{\"o\":{\"n\":-0.0}}", "{\"o\":{\"n\":0}}"},
        {"{\"x\":null,\"o\":{\"y\":null}}", "{\"o\":{}}"},
        {"{\"n\":1e3}", "{\"n\":1000}"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        args_hash(same[i][0], a);
        args_hash(same[i][1], b);
        if (strcmp(a, b) != 0)
            fail_msg("%s and %s hash apart", same[i][0], same[i][1]);
    }
    /* ...and nothing else does: other values, types, array positions. */
    static const char *const apart[][2] = {
        {"{\"r\":\"widgets\"}", "{\"r\":\"gadgets\"}"},
        {"{\"n\":1}", "{\"n\":1.5}"},
        {"{\"n\":1}", "{\"n\":\"1\"}"},
        {"{\"n\":1}", "{\"n\":true}"},
        {"{\"a\":[null]}", "{\"a\":[]}"},
        {"{\"n\":9007199254740993}", "{\"n\":9007199254740992}"},
    };
    for (size_t i = 0; i < sizeof apart / sizeof apart[0]; i++) {
        args_hash(apart[i][0], a);
        args_hash(apart[i][1], b);
        if (strcmp(a, b) == 0)
            fail_msg("%s and %s hash alike", apart[i][0], apart[i][1]);
    }
    /* No arguments hash as {}; anything but an object is refused. */
    assert_int_equal(trine_arguments_hash(NULL, a), 0);
    args_hash("{}", b);
    assert_string_equal(a, b);
    assert_string_equal(
        a, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    json_t *arr = json_array();
    assert_int_equal(trine_arguments_hash(arr, a), TRINE_EINVAL);
    assert_string_equal(a, "");
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_compact), cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_strings),        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_real_text),      cmocka_unit_test(test_redact),
        cmocka_unit_test(test_too_deep),       cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_arguments_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
