/*
 * test_template.c - the safety rules for needs template values ({p} and
 * {p...}), filling templates, and filling consent prompts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"

#include <stdlib.h>
#include <string.h>

/* A hand-built template: the test splits "{a.b}" and "{p...}" itself, so
 * these tests do not depend on the compiler. */
typedef struct test_tmpl {
    cpl_template t;
    tmpl_part parts[32];
    const char *segs[32][4];
    char text[32][64];
} test_tmpl;

static void build(test_tmpl *tt, const char *src)
{
    memset(tt, 0, sizeof *tt);
    tt->t.src = src;
    tt->t.parts = tt->parts;
    const char *s = src;
    while (*s != '\0') {
        tmpl_part *p = &tt->parts[tt->t.nparts];
        size_t idx = tt->t.nparts++;
        assert_true(idx < 32);
        if (*s != '{') {
            const char *e = strchr(s, '{');
            size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
            p->text = s;
            p->len = n;
            s += n;
            continue;
        }
        const char *e = strchr(s, '}');
        assert_non_null(e);
        size_t n = (size_t)(e - s - 1);
        memcpy(tt->text[idx], s + 1, n);
        tt->text[idx][n] = '\0';
        p->is_ph = true;
        if (n > 3 && strcmp(tt->text[idx] + n - 3, "...") == 0) {
            p->rest = true;
            tt->text[idx][n - 3] = '\0';
        }
        p->text = tt->text[idx];
        p->len = strlen(p->text);
        /* Split the path in a second copy. */
        static char segbuf[32][64];
        strcpy(segbuf[idx], p->text);
        p->path = tt->segs[idx];
        char *save = NULL;
        for (char *tokp = strtok_r(segbuf[idx], ".", &save); tokp != NULL;
             tokp = strtok_r(NULL, ".", &save))
            tt->segs[idx][p->npath++] = tokp;
        s = e + 1;
    }
}

static json_t *args(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &e);
    if (v == NULL)
        fail_msg("bad JSON in test: %s", e.text);
    return v;
}

/* The problem of a value given as JSON text (NULL text: missing). */
static const char *problem(const char *value, bool rest)
{
    static char buf[128];
    if (value == NULL)
        return tmpl_value_problem(NULL, rest);
    json_t *v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    const char *p = tmpl_value_problem(v, rest);
    json_decref(v);
    if (p == NULL)
        return NULL;
    snprintf(buf, sizeof buf, "%s", p);
    return buf;
}

static void test_types(void **state)
{
    (void)state;
    for (int rest = 0; rest < 2; rest++) {
        assert_null(problem("\"acme\"", rest));
        assert_null(problem("42", rest));
        assert_null(problem("-7", rest));
        assert_string_equal(problem(NULL, rest), "is missing");
        assert_string_equal(problem("4.0", rest),
                            "must be a string or an integer");
        assert_string_equal(problem("4.5", rest),
                            "must be a string or an integer");
        assert_string_equal(problem("true", rest),
                            "must be a string or an integer");
        assert_string_equal(problem("[\"a\"]", rest),
                            "must be a string or an integer");
        assert_string_equal(problem("{}", rest),
                            "must be a string or an integer");
        assert_string_equal(problem("\"\"", rest), "must not be empty");
    }
}

static void test_wildcards_and_controls(void **state)
{
    (void)state;
    for (int rest = 0; rest < 2; rest++) {
        assert_string_equal(problem("\"a*\"", rest),
                            "must not contain '*' or '?'");
        assert_string_equal(problem("\"?\"", rest),
                            "must not contain '*' or '?'");
        assert_string_equal(problem("\"a\\u0000b\"", rest),
                            "must not contain a control character");
        assert_string_equal(problem("\"a\\nb\"", rest),
                            "must not contain a control character");
        assert_string_equal(problem("\"\\u001f\"", rest),
                            "must not contain a control character");
        assert_string_equal(problem("\"a\\u007f\"", rest),
                            "must not contain a control character");
        assert_string_equal(problem("\"\\u0080\"", rest),
                            "must not contain a control character");
        assert_string_equal(problem("\"x\\u009fy\"", rest),
                            "must not contain a control character");
        /* Just outside Cc: U+00A0 and U+0020 are fine. */
        assert_null(problem("\"a\\u00a0b\"", rest));
        assert_null(problem("\"a b\"", rest));
        assert_null(problem("\"\\u00e9t\\u00e9\"", rest));
    }
}

static void test_single_segment(void **state)
{
    (void)state;
    assert_string_equal(problem("\"a/b\"", false), "must not contain '/'");
    assert_string_equal(problem("\"/\"", false), "must not contain '/'");
    assert_string_equal(problem("\".\"", false), "must not be '.' or '..'");
    assert_string_equal(problem("\"..\"", false), "must not be '.' or '..'");
    assert_null(problem("\"...\"", false));
    assert_null(problem("\".hidden\"", false));
    assert_null(problem("\"a..b\"", false));
}

static void test_rest(void **state)
{
    (void)state;
    assert_null(problem("\"a/b/c\"", true));
    assert_null(problem("\"/\"", true));
    assert_null(problem("\"/etc/x\"", true));
    assert_null(problem("\"dir/\"", true));
    assert_null(problem("\"/abs/dir/\"", true));
    assert_null(problem("\"a/.../b\"", true));
    assert_null(problem("\"a/.x/b\"", true));
    assert_string_equal(problem("\"a//b\"", true),
                        "must not contain an empty segment");
    assert_string_equal(problem("\"//\"", true),
                        "must not contain an empty segment");
    assert_string_equal(problem("\"//a\"", true),
                        "must not contain an empty segment");
    assert_string_equal(problem("\"a//\"", true),
                        "must not contain an empty segment");
    assert_string_equal(problem("\"a/../b\"", true),
                        "must not contain a '.' or '..' segment");
    assert_string_equal(problem("\"./a\"", true),
                        "must not contain a '.' or '..' segment");
    assert_string_equal(problem("\"a/.\"", true),
                        "must not contain a '.' or '..' segment");
    assert_string_equal(problem("\"..\"", true),
                        "must not contain a '.' or '..' segment");
    assert_string_equal(problem("\"/..\"", true),
                        "must not contain a '.' or '..' segment");
}

static void test_lookup(void **state)
{
    (void)state;
    json_t *a = args("{\"o\":{\"p\":{\"q\":1}},\"n\":null,\"s\":\"x\"}");
    const char *p1[] = {"o", "p", "q"};
    const char *p2[] = {"n"};
    const char *p3[] = {"s", "deeper"};
    const char *p4[] = {"missing"};
    const json_t *v = tmpl_lookup(a, p1, 3);
    assert_true(json_is_integer(v) && json_integer_value(v) == 1);
    assert_null(tmpl_lookup(a, p2, 1)); /* null is absent */
    assert_null(tmpl_lookup(a, p3, 2));
    assert_null(tmpl_lookup(a, p4, 1));
    assert_null(tmpl_lookup(NULL, p4, 1));
    json_decref(a);
}

static void test_fill_needs(void **state)
{
    (void)state;
    trine_decision *d = dec_new(NULL);
    assert_non_null(d);
    test_tmpl tt;
    build(&tt, "repo:{owner}/{repo}#{n}");
    json_t *a = args("{\"owner\":\"acme\",\"repo\":\"w\",\"n\":-12}");
    const char *out;
    size_t len;
    assert_int_equal(tmpl_fill_needs(d, &tt.t, a, &out, &len), 0);
    assert_string_equal(out, "repo:acme/w#-12");
    assert_int_equal(len, 15);
    json_decref(a);

    build(&tt, "file:{path...}");
    a = args("{\"path\":\"/\"}");
    assert_int_equal(tmpl_fill_needs(d, &tt.t, a, &out, &len), 0);
    assert_string_equal(out, "file:/");
    json_decref(a);

    /* A nested path, and a value too long for the inline arena. */
    build(&tt, "x:{opts.name}");
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    a = json_pack("{s:{s:s}}", "opts", "name", big);
    assert_int_equal(tmpl_fill_needs(d, &tt.t, a, &out, &len), 0);
    assert_int_equal(len, 2 + sizeof big - 1);
    assert_memory_equal(out, "x:zzz", 5);
    json_decref(a);

    /* Unsafe after all: refused, not filled. */
    build(&tt, "repo:{owner}");
    a = args("{\"owner\":\"*\"}");
    assert_int_equal(tmpl_fill_needs(d, &tt.t, a, &out, &len), TRINE_EINVAL);
    json_decref(a);
    trine_decision_free(d);
}

static void test_fill_prompt(void **state)
{
    (void)state;
    trine_decision *d = dec_new(NULL);
    test_tmpl tt;
    build(&tt, "Let {agent} open issues in {owner}/{repo} for {user} on "
               "{server}/{tool}? n={n} r={r} b={b} m={missing} o={o} "
               "d={deep.x}");
    json_t *a = args("{\"owner\":\"acme\",\"repo\":\"a*b\",\"n\":3,\"r\":2.5,"
                     "\"b\":true,\"o\":{},\"deep\":{\"x\":\"y\"}}");
    tmpl_vars vars = {"claude-desktop", "alice", "github", "create_issue"};
    const char *out;
    size_t len;
    assert_int_equal(tmpl_fill_prompt(d, &tt.t, a, &vars, false, &out, &len),
                     0);
    assert_string_equal(out,
                        "Let claude-desktop open issues in acme/a*b for alice "
                        "on github/create_issue? n=3 r=2.5 b= m= o= "
                        "d=y");
    assert_int_equal(len, strlen(out));

    /* Reserved names win over arguments of the same name; a missing
     * reserved value is empty. */
    build(&tt, "{agent}|{user}|{tool}");
    json_t *b = args("{\"agent\":\"spoof\",\"user\":\"spoof\"}");
    tmpl_vars none = {NULL, "alice", "s", "t"};
    assert_int_equal(tmpl_fill_prompt(d, &tt.t, b, &none, false, &out, &len),
                     0);
    assert_string_equal(out, "|alice|t");

    /* The default prompt. */
    assert_int_equal(tmpl_fill_prompt(d, NULL, NULL, &vars, false, &out, &len),
                     0);
    assert_string_equal(
        out, "Allow claude-desktop to call create_issue on github for "
             "alice?");
    assert_string_equal(tmpl_default_prompt,
                        "Allow {agent} to call {tool} on {server} for "
                        "{user}?");

    /* Argument strings go in as they are, NUL bytes included. */
    build(&tt, "[{v}]");
    json_t *c = args("{\"v\":\"a\\u0000b\"}");
    assert_int_equal(tmpl_fill_prompt(d, &tt.t, c, &vars, false, &out, &len),
                     0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "[a\0b]", 5);

    json_decref(a);
    json_decref(b);
    json_decref(c);
    trine_decision_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_wildcards_and_controls),
        cmocka_unit_test(test_single_segment),
        cmocka_unit_test(test_rest),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_fill_needs),
        cmocka_unit_test(test_fill_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
