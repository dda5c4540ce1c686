/*
 * test_lexer.c - the policy lexer: every token kind, every escape, every
 * lexical error with its exact position and message, source validation,
 * the word forms, and inputs far larger than any real policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/diag.h"
#include "lib/lexer.h"
#include "lib/parser.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TOKS 64

/* The tokens of a source, with their decoded values copied. */
typedef struct toks {
    lex_token t[MAX_TOKS];
    char *val[MAX_TOKS];
    size_t n;
    trine_diag *diag;
    int init_rc;
} toks;

static void lex_all(toks *out, const char *src, size_t len, bool comments)
{
    memset(out, 0, sizeof *out);
    out->diag = trine_diag_new();
    assert_non_null(out->diag);
    trine_source s = {"t.trine", src, len};
    lexer lx;
    out->init_rc = lex_init(&lx, &s, out->diag, comments);
    for (;;) {
        assert_true(out->n < MAX_TOKS);
        lex_token *t = &out->t[out->n];
        assert_int_equal(lex_next(&lx, t), 0);
        out->val[out->n] = malloc(t->vlen + 1);
        assert_non_null(out->val[out->n]);
        memcpy(out->val[out->n], t->val, t->vlen);
        out->val[out->n][t->vlen] = '\0';
        out->n++;
        if (t->kind == TK_EOF)
            break;
    }
    lex_free(&lx);
}

static void lex_str(toks *out, const char *src)
{
    lex_all(out, src, strlen(src), false);
}

static void toks_free(toks *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->val[i]);
    trine_diag_free(t->diag);
}

static void assert_tok(const toks *ts, size_t i, lex_kind kind, unsigned line,
                       unsigned col, const char *val)
{
    assert_true(i < ts->n);
    assert_int_equal(ts->t[i].kind, kind);
    assert_int_equal(ts->t[i].line, line);
    assert_int_equal(ts->t[i].col, col);
    if (val != NULL)
        assert_string_equal(ts->val[i], val);
}

static void assert_diag(const trine_diag *d, size_t i, unsigned line,
                        unsigned col, const char *msg)
{
    const trine_diag_item *it = trine_diag_at(d, i);
    assert_non_null(it);
    assert_int_equal(it->level, TRINE_DIAG_ERROR);
    assert_string_equal(it->file, "t.trine");
    assert_int_equal(it->line, line);
    assert_int_equal(it->col, col);
    assert_string_equal(it->message, msg);
}

/* Lexes src and checks it yields exactly one error, at line:col, with msg. */
static void assert_one_error(const char *src, unsigned line, unsigned col,
                             const char *msg)
{
    toks ts;
    lex_str(&ts, src);
    assert_int_equal(trine_diag_count(ts.diag), 1);
    assert_diag(ts.diag, 0, line, col, msg);
    toks_free(&ts);
}

static void test_punctuation(void **state)
{
    (void)state;
    toks ts;
    lex_str(&ts, "{ } [ ] , < <= > >= *");
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_int_equal(ts.n, 11);
    assert_tok(&ts, 0, TK_LBRACE, 1, 1, "{");
    assert_tok(&ts, 1, TK_RBRACE, 1, 3, "}");
    assert_tok(&ts, 2, TK_LBRACKET, 1, 5, "[");
    assert_tok(&ts, 3, TK_RBRACKET, 1, 7, "]");
    assert_tok(&ts, 4, TK_COMMA, 1, 9, ",");
    assert_tok(&ts, 5, TK_LT, 1, 11, "<");
    assert_tok(&ts, 6, TK_LE, 1, 13, "<=");
    assert_tok(&ts, 7, TK_GT, 1, 16, ">");
    assert_tok(&ts, 8, TK_GE, 1, 18, ">=");
    assert_tok(&ts, 9, TK_STAR, 1, 21, "*");
    assert_tok(&ts, 10, TK_EOF, 1, 22, "");
    toks_free(&ts);
}

static void test_words(void **state)
{
    (void)state;
    toks ts;
    lex_str(&ts, "scope issues.* a-b_c 30m -1.5 repo.read,x{y}*z");
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_tok(&ts, 0, TK_WORD, 1, 1, "scope");
    assert_tok(&ts, 1, TK_WORD, 1, 7, "issues.*");
    assert_tok(&ts, 2, TK_WORD, 1, 16, "a-b_c");
    assert_tok(&ts, 3, TK_WORD, 1, 22, "30m");
    assert_tok(&ts, 4, TK_WORD, 1, 26, "-1.5");
    assert_tok(&ts, 5, TK_WORD, 1, 31, "repo.read");
    assert_tok(&ts, 6, TK_COMMA, 1, 40, ",");
    assert_tok(&ts, 7, TK_WORD, 1, 41, "x");
    assert_tok(&ts, 8, TK_LBRACE, 1, 42, "{");
    assert_tok(&ts, 9, TK_WORD, 1, 43, "y");
    assert_tok(&ts, 10, TK_RBRACE, 1, 44, "}");
    /* A star glued to a word is part of the word (and no valid action). */
    assert_tok(&ts, 11, TK_WORD, 1, 45, "*z");
    assert_tok(&ts, 12, TK_EOF, 1, 47, "");
    toks_free(&ts);
}

static void test_lines_and_comments(void **state)
{
    (void)state;
    toks ts;
    const char *src = "# head\r\nscope \"a\" # tail\n\n\t  {  }\n";
    lex_str(&ts, src);
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_int_equal(ts.n, 5);
    assert_tok(&ts, 0, TK_WORD, 2, 1, "scope");
    assert_int_equal(ts.t[0].nl_before, 1);
    assert_true(ts.t[0].bol);
    assert_tok(&ts, 1, TK_STRING, 2, 7, "a");
    assert_false(ts.t[1].bol);
    assert_tok(&ts, 2, TK_LBRACE, 4, 4, "{");
    assert_int_equal(ts.t[2].nl_before, 2);
    assert_true(ts.t[2].bol);
    assert_tok(&ts, 3, TK_RBRACE, 4, 7, "}");
    assert_tok(&ts, 4, TK_EOF, 5, 1, "");
    toks_free(&ts);

    /* With comments kept: their text, trailing blanks and CR dropped. */
    lex_all(&ts, src, strlen(src), true);
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_int_equal(ts.n, 7);
    assert_tok(&ts, 0, TK_COMMENT, 1, 1, "# head");
    assert_true(ts.t[0].bol);
    assert_tok(&ts, 1, TK_WORD, 2, 1, "scope");
    assert_tok(&ts, 3, TK_COMMENT, 2, 11, "# tail");
    assert_int_equal(ts.t[3].nl_before, 0);
    assert_false(ts.t[3].bol);
    assert_tok(&ts, 4, TK_LBRACE, 4, 4, "{");
    toks_free(&ts);
}

static void test_string_escapes(void **state)
{
    (void)state;
    toks ts;
    lex_str(&ts, "\"a\\\"b\\\\c\\nd\\te\\u00e9\\u20AC\\uD83D\\uDE00 raw\tx\"");
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_int_equal(ts.n, 2);
    assert_tok(&ts, 0, TK_STRING, 1, 1,
               "a\"b\\c\nd\te\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 raw\tx");
    assert_false(ts.t[0].bad);
    toks_free(&ts);

    lex_str(&ts, "\"\" \"\xc3\xa9t\xc3\xa9\"");
    assert_tok(&ts, 0, TK_STRING, 1, 1, "");
    assert_tok(&ts, 1, TK_STRING, 1, 4, "\xc3\xa9t\xc3\xa9");
    assert_int_equal(ts.t[1].len, 7);
    toks_free(&ts);
}

static void test_string_errors(void **state)
{
    (void)state;
    assert_one_error("scope \"a\\qb\"", 1, 9,
                     "invalid escape \"\\q\" in string; expected \\\" \\\\ \\n "
                     "\\t or \\uXXXX");
    assert_one_error("x\n  \"\\u12\"", 2, 4,
                     "invalid escape \"\\u12\" in string (expected four hex "
                     "digits)");
    assert_one_error("\"\\uZZZZ\"", 1, 2,
                     "invalid escape \"\\u\" in string (expected four hex "
                     "digits)");
    assert_one_error(
        "\"ab\\uD83D\"", 1, 4,
        "invalid escape \"\\uD83D\" in string (lone surrogate); expected a "
        "high surrogate \\uD800-\\uDBFF followed by a low one \\uDC00-\\uDFFF");
    assert_one_error(
        "\"\\uD83Dx\"", 1, 2,
        "invalid escape \"\\uD83D\" in string (lone surrogate); expected a "
        "high surrogate \\uD800-\\uDBFF followed by a low one \\uDC00-\\uDFFF");
    assert_one_error(
        "\"\\uD83D\\u0041\"", 1, 2,
        "invalid escape \"\\uD83D\" in string (lone surrogate); expected a "
        "high surrogate \\uD800-\\uDBFF followed by a low one \\uDC00-\\uDFFF");
    assert_one_error(
        "\"\\udE00\"", 1, 2,
        "invalid escape \"\\udE00\" in string (lone surrogate); expected a "
        "high surrogate \\uD800-\\uDBFF followed by a low one \\uDC00-\\uDFFF");
    assert_one_error("\"a\\u0000\"", 1, 3,
                     "invalid escape \"\\u0000\" in string; expected a "
                     "character other than NUL");
    assert_one_error("\"\\\xc3\xa9\"", 1, 2,
                     "invalid escape \"\\\xc3\xa9\" in string; expected \\\" "
                     "\\\\ \\n \\t or \\uXXXX");
    assert_one_error("\"\\\t\"", 1, 2,
                     "invalid escape in string: \"\\\" followed by U+0009; "
                     "expected \\\" \\\\ \\n \\t or \\uXXXX");
    assert_one_error(
        "scope \"abc\nrole", 1, 7,
        "unterminated string; expected a closing '\"' on the same line");
    assert_one_error(
        "  \"abc", 1, 3,
        "unterminated string; expected a closing '\"' on the same line");
    assert_one_error(
        "\"abc\\\nx", 1, 1,
        "unterminated string; expected a closing '\"' on the same line");
    assert_one_error(
        "\"abc\\", 1, 1,
        "unterminated string; expected a closing '\"' on the same line");

    /* A bad escape keeps the token a (bad) string; every error of a
     * string is reported. */
    toks ts;
    lex_str(&ts, "\"\\x\\y\" z");
    assert_int_equal(trine_diag_count(ts.diag), 2);
    assert_diag(ts.diag, 0, 1, 2,
                "invalid escape \"\\x\" in string; expected \\\" \\\\ \\n \\t "
                "or \\uXXXX");
    assert_diag(ts.diag, 1, 1, 4,
                "invalid escape \"\\y\" in string; expected \\\" \\\\ \\n \\t "
                "or \\uXXXX");
    assert_tok(&ts, 0, TK_STRING, 1, 1, "");
    assert_true(ts.t[0].bad);
    assert_tok(&ts, 1, TK_WORD, 1, 8, "z");
    toks_free(&ts);

    /* An unterminated string ends at its line; the next line is read. */
    lex_str(&ts, "\"abc\nrole");
    assert_tok(&ts, 0, TK_ERROR, 1, 1, NULL);
    assert_tok(&ts, 1, TK_WORD, 2, 1, "role");
    toks_free(&ts);
}

static void test_regex(void **state)
{
    (void)state;
    toks ts;
    lex_str(&ts, "/[a-z]+\\/x\\d\\\\/ /abc/i //");
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_int_equal(ts.n, 4);
    assert_tok(&ts, 0, TK_REGEX, 1, 1, "[a-z]+/x\\d\\\\");
    assert_false(ts.t[0].icase);
    assert_int_equal(ts.t[0].len, 15);
    assert_tok(&ts, 1, TK_REGEX, 1, 17, "abc");
    assert_true(ts.t[1].icase);
    assert_tok(&ts, 2, TK_REGEX, 1, 24, "");
    toks_free(&ts);

    assert_one_error(
        "arg x matches /abc\n", 1, 15,
        "unterminated regex; expected a closing \"/\" on the same line");
    assert_one_error(
        "/abc", 1, 1,
        "unterminated regex; expected a closing \"/\" on the same line");
    assert_one_error(
        "/ab\\/", 1, 1,
        "unterminated regex; expected a closing \"/\" on the same line");
    assert_one_error(
        "  /ab\\\nx", 1, 3,
        "unterminated regex; expected a closing \"/\" on the same line");
    assert_one_error("/abc/g", 1, 6,
                     "unknown regex flag \"g\"; only \"i\" is allowed");
    assert_one_error("/abc/ix", 1, 7,
                     "unknown regex flag \"x\"; only \"i\" is allowed");
    assert_one_error("/abc/ii", 1, 7, "duplicate regex flag \"i\"");

    lex_str(&ts, "/abc/g x");
    assert_tok(&ts, 0, TK_REGEX, 1, 1, "abc");
    assert_true(ts.t[0].bad);
    assert_tok(&ts, 1, TK_WORD, 1, 8, "x");
    toks_free(&ts);
}

static void test_unexpected_characters(void **state)
{
    (void)state;
    /* A run of unexpected characters is one error, quoted up to 16
     * bytes. */
    assert_one_error("arg a == 1", 1, 7,
                     "unexpected characters \"==\"; expected a name, a "
                     "string, a regex, a number or one of { } [ ] , * < <= > "
                     ">=");
    assert_one_error("x @@@@@@@@@@@@@@@@@@@@ y", 1, 3,
                     "unexpected characters \"@@@@@@@@@@@@@@@@...\"; expected "
                     "a name, a string, a regex, a number or one of { } [ ] , "
                     "* < <= > >=");
    assert_one_error("scope @", 1, 7,
                     "unexpected character \"@\"; expected a name, a string, a "
                     "regex, a number or one of { } [ ] , * < <= > >=");
    assert_one_error("a\n b = c", 2, 4,
                     "unexpected character \"=\"; expected a name, a string, a "
                     "regex, a number or one of { } [ ] , * < <= > >=");
    assert_one_error(
        "x \xc3\xa9", 1, 3,
        "unexpected character \"\xc3\xa9\"; expected a name, a string, a "
        "regex, a number or one of { } [ ] , * < <= > >=");
    assert_one_error("\x07", 1, 1,
                     "unexpected character U+0007; expected a name, a string, "
                     "a regex, a number or one of { } [ ] , * < <= > >=");
    assert_one_error("a\xc2\x85", 1, 2,
                     "unexpected character U+0085; expected a name, a string, "
                     "a regex, a number or one of { } [ ] , * < <= > >=");

    toks ts;
    lex_str(&ts, "a @ b");
    assert_tok(&ts, 0, TK_WORD, 1, 1, "a");
    assert_tok(&ts, 1, TK_ERROR, 1, 3, NULL);
    assert_tok(&ts, 2, TK_WORD, 1, 5, "b");
    toks_free(&ts);
}

static void test_source_validation(void **state)
{
    (void)state;
    toks ts;
    lex_str(&ts, "scope \"a\" {}\nro\xffle");
    assert_int_equal(ts.init_rc, TRINE_ESYNTAX);
    assert_int_equal(trine_diag_count(ts.diag), 1);
    assert_diag(ts.diag, 0, 2, 3,
                "invalid UTF-8 byte 0xff; expected UTF-8 text");
    /* Nothing is read from a rejected source. */
    assert_int_equal(ts.n, 1);
    assert_int_equal(ts.t[0].kind, TK_EOF);
    toks_free(&ts);

    lex_all(&ts, "a\n\nb\0c", 6, false);
    assert_int_equal(ts.init_rc, TRINE_ESYNTAX);
    assert_int_equal(trine_diag_count(ts.diag), 1);
    assert_diag(ts.diag, 0, 3, 2, "NUL byte in source; expected UTF-8 text");
    toks_free(&ts);

    /* The first bad byte wins, whichever kind it is. */
    lex_all(&ts, "\xc0\x80 \0", 4, false);
    assert_diag(ts.diag, 0, 1, 1,
                "invalid UTF-8 byte 0xc0; expected UTF-8 text");
    toks_free(&ts);
    lex_all(&ts, "\0 \xc0", 3, false);
    assert_diag(ts.diag, 0, 1, 1, "NUL byte in source; expected UTF-8 text");
    toks_free(&ts);

    /* A truncated sequence, a surrogate, and a byte inside a comment. */
    lex_str(&ts, "abc \xe2\x82");
    assert_diag(ts.diag, 0, 1, 5,
                "invalid UTF-8 byte 0xe2; expected UTF-8 text");
    toks_free(&ts);
    lex_str(&ts, "\"\xed\xa0\x80\"");
    assert_diag(ts.diag, 0, 1, 2,
                "invalid UTF-8 byte 0xed; expected UTF-8 text");
    toks_free(&ts);
    lex_str(&ts, "# \xfe\n");
    assert_diag(ts.diag, 0, 1, 3,
                "invalid UTF-8 byte 0xfe; expected UTF-8 text");
    toks_free(&ts);

    /* A byte-order mark at the start is skipped. */
    lex_str(&ts, "\xef\xbb\xbfscope");
    assert_int_equal(trine_diag_count(ts.diag), 0);
    assert_tok(&ts, 0, TK_WORD, 1, 1, "scope");
    toks_free(&ts);
}

static void test_describe(void **state)
{
    (void)state;
    const char *src = "allow \"repo:*\" /a+/i { \"0123456789012345678901234"
                      "567890123456789\" 0123456789012345678901234567890123"
                      "456789";
    trine_source s = {"t.trine", src, strlen(src)};
    lexer lx;
    assert_int_equal(lex_init(&lx, &s, NULL, false), 0);
    const char *want[] = {
        "\"allow\"",
        "string \"repo:*\"",
        "regex /a+/i",
        "\"{\"",
        "string \"0123456789012345678901234567890...\"",
        "\"01234567890123456789012345678901...\"",
        "end of file",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        lex_token t;
        assert_int_equal(lex_next(&lx, &t), 0);
        strbuf b;
        sb_init(&b);
        lex_describe(&lx, &t, &b);
        assert_string_equal(b.data, want[i]);
        sb_free(&b);
    }
    lex_free(&lx);
}

static void test_word_forms(void **state)
{
    (void)state;
    assert_true(lex_is_ident("a", 1));
    assert_true(lex_is_ident("_a-b9", 5));
    assert_false(lex_is_ident("9a", 2));
    assert_false(lex_is_ident("-a", 2));
    assert_false(lex_is_ident("a.b", 3));
    assert_false(lex_is_ident("", 0));

    assert_true(lex_is_path("owner", 5));
    assert_true(lex_is_path("opts.limit", 10));
    assert_false(lex_is_path("opts.", 5));
    assert_false(lex_is_path(".a", 2));
    assert_false(lex_is_path("a..b", 4));
    assert_false(lex_is_path("a.9", 3));
    assert_false(lex_is_path("a.*", 3));

    assert_true(lex_is_action("repo", 4));
    assert_true(lex_is_action("issues.create", 13));
    assert_true(lex_is_action("issues.*", 8));
    assert_true(lex_is_action("a.b-c.9_x.*", 11));
    assert_true(lex_is_action("9", 1));
    assert_false(lex_is_action("*", 1));
    assert_false(lex_is_action("issues.", 7));
    assert_false(lex_is_action(".x", 2));
    assert_false(lex_is_action("a..b", 4));
    assert_false(lex_is_action("a.*.b", 5));
    assert_false(lex_is_action("a*", 2));
    assert_false(lex_is_action("a.**", 4));
}

static void test_numbers(void **state)
{
    (void)state;
    double d;
    bool is_int;
    int64_t iv;
    assert_int_equal(lex_number("42", 2, &d, &is_int, &iv), LEX_NUM_OK);
    assert_true(is_int);
    assert_int_equal(iv, 42);
    assert_true(d == 42.0);
    assert_int_equal(lex_number("-7", 2, &d, &is_int, &iv), LEX_NUM_OK);
    assert_int_equal(iv, -7);
    assert_int_equal(lex_number("-1.25", 5, &d, &is_int, &iv), LEX_NUM_OK);
    assert_false(is_int);
    assert_true(d == -1.25);
    assert_int_equal(lex_number("9223372036854775807", 19, &d, &is_int, &iv),
                     LEX_NUM_OK);
    assert_true(iv == INT64_MAX);
    assert_int_equal(lex_number("-9223372036854775808", 20, &d, &is_int, &iv),
                     LEX_NUM_OK);
    assert_true(iv == INT64_MIN);
    assert_int_equal(lex_number("9223372036854775808", 19, &d, &is_int, &iv),
                     LEX_NUM_RANGE);
    assert_int_equal(lex_number("-9223372036854775809", 20, &d, &is_int, &iv),
                     LEX_NUM_RANGE);
    static char big[400];
    memset(big, '9', 330);
    memcpy(big + 330, ".5", 2);
    assert_int_equal(lex_number(big, 332, &d, &is_int, &iv), LEX_NUM_RANGE);
    assert_int_equal(lex_number("1.", 2, &d, &is_int, &iv), LEX_NUM_BAD);
    assert_int_equal(lex_number(".5", 2, &d, &is_int, &iv), LEX_NUM_BAD);
    assert_int_equal(lex_number("-", 1, &d, &is_int, &iv), LEX_NUM_BAD);
    assert_int_equal(lex_number("1e5", 3, &d, &is_int, &iv), LEX_NUM_BAD);
    assert_int_equal(lex_number("1.2.3", 5, &d, &is_int, &iv), LEX_NUM_BAD);
    assert_int_equal(lex_number("--1", 3, &d, &is_int, &iv), LEX_NUM_BAD);
}

static void test_durations(void **state)
{
    (void)state;
    int64_t s;
    assert_int_equal(lex_duration("30s", 3, &s), LEX_NUM_OK);
    assert_int_equal(s, 30);
    assert_int_equal(lex_duration("30m", 3, &s), LEX_NUM_OK);
    assert_int_equal(s, 1800);
    assert_int_equal(lex_duration("2h", 2, &s), LEX_NUM_OK);
    assert_int_equal(s, 7200);
    assert_int_equal(lex_duration("7d", 2, &s), LEX_NUM_OK);
    assert_int_equal(s, 604800);
    /* At most 100 years (LEX_DURATION_MAX), in any unit. */
    assert_int_equal(lex_duration("36600d", 6, &s), LEX_NUM_OK);
    assert_int_equal(s, LEX_DURATION_MAX);
    assert_int_equal(lex_duration("3162240000s", 11, &s), LEX_NUM_OK);
    assert_int_equal(lex_duration("36601d", 6, &s), LEX_NUM_RANGE);
    assert_int_equal(lex_duration("878401h", 7, &s), LEX_NUM_RANGE);
    assert_int_equal(lex_duration("3162240001s", 11, &s), LEX_NUM_RANGE);
    assert_int_equal(lex_duration("99999999999999999999s", 21, &s),
                     LEX_NUM_RANGE);
    assert_int_equal(lex_duration("d", 1, &s), LEX_NUM_BAD);
    assert_int_equal(lex_duration("30", 2, &s), LEX_NUM_BAD);
    assert_int_equal(lex_duration("30w", 3, &s), LEX_NUM_BAD);
    assert_int_equal(lex_duration("-3d", 3, &s), LEX_NUM_BAD);
    assert_int_equal(lex_duration("1.5h", 4, &s), LEX_NUM_BAD);
}

/* 10 MB on one line: one word, one string, one unterminated string. */
static void test_huge_tokens(void **state)
{
    (void)state;
    size_t n = 10u << 20;
    char *src = malloc(n + 1);
    assert_non_null(src);
    trine_source s = {"t.trine", src, n};
    lexer lx;
    lex_token t;

    memset(src, 'a', n);
    assert_int_equal(lex_init(&lx, &s, NULL, false), 0);
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_WORD);
    assert_int_equal(t.len, n);
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_EOF);
    assert_int_equal(t.col, n + 1);
    lex_free(&lx);

    src[0] = '"';
    src[n - 1] = '"';
    assert_int_equal(lex_init(&lx, &s, NULL, false), 0);
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_STRING);
    assert_int_equal(t.vlen, n - 2);
    lex_free(&lx);

    src[n - 1] = 'a';
    trine_diag *d = trine_diag_new();
    assert_int_equal(lex_init(&lx, &s, d, false), 0);
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_ERROR);
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_EOF);
    lex_free(&lx);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(
        d, 0, 1, 1,
        "unterminated string; expected a closing '\"' on the same line");
    trine_diag_free(d);

    /* The parser on the same inputs: an error, no crash. */
    d = trine_diag_new();
    ast_file *f = NULL;
    assert_int_equal(parse_source(&s, d, &f), TRINE_ESYNTAX);
    assert_null(f);
    assert_int_equal(trine_diag_count(d), 1);
    assert_diag(
        d, 0, 1, 1,
        "unterminated string; expected a closing '\"' on the same line");
    trine_diag_free(d);
    free(src);
}

static void test_many_braces(void **state)
{
    (void)state;
    size_t n = 10000;
    char *src = malloc(n);
    assert_non_null(src);
    memset(src, '{', n);
    trine_source s = {"t.trine", src, n};
    lexer lx;
    lex_token t;
    assert_int_equal(lex_init(&lx, &s, NULL, false), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lex_next(&lx, &t), 0);
        assert_int_equal(t.kind, TK_LBRACE);
    }
    assert_int_equal(lex_next(&lx, &t), 0);
    assert_int_equal(t.kind, TK_EOF);
    lex_free(&lx);
    free(src);
}

/* Every bad character is an error, but the count stops at the cap. */
static void test_error_cap(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *src = malloc(n);
    assert_non_null(src);
    /* "@ @ @ ...": a run of unexpected characters is one error, so
     * spaces keep them apart. */
    for (size_t i = 0; i < n; i++)
        src[i] = i % 2 == 0 ? '@' : ' ';
    trine_source s = {"t.trine", src, n};
    trine_diag *d = trine_diag_new();
    ast_file *f = NULL;
    assert_int_equal(parse_source(&s, d, &f), TRINE_ESYNTAX);
    assert_int_equal(trine_diag_errors(d), TRINE_DIAG_MAX + 1);
    assert_int_equal(trine_diag_count(d), TRINE_DIAG_MAX + 1);
    assert_diag(d, 0, 1, 1,
                "unexpected character \"@\"; expected a name, a string, a "
                "regex, a number or one of { } [ ] , * < <= > >=");
    assert_diag(d, TRINE_DIAG_MAX - 1, 1, 2 * TRINE_DIAG_MAX - 1,
                "unexpected character \"@\"; expected a name, a string, a "
                "regex, a number or one of { } [ ] , * < <= > >=");
    assert_diag(d, TRINE_DIAG_MAX, 1, 2 * TRINE_DIAG_MAX + 1,
                "too many errors; stopping here");
    trine_diag_free(d);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_lines_and_comments),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_unexpected_characters),
        cmocka_unit_test(test_source_validation),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_word_forms),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_huge_tokens),
        cmocka_unit_test(test_many_braces),
        cmocka_unit_test(test_error_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
