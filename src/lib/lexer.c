/*
 * lexer.c - the policy lexer (DESIGN §2.1): source validation, tokens,
 * string escapes, regex literals, and the word forms the parser checks.
 */
#include "lib/lexer.h"

#include "lib/diag.h"
#include "lib/number.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How much of a long token a "found ..." message shows. */
#define LEX_DESCRIBE_MAX 32

/* Characters that make up a word: identifiers, actions, paths, numbers and
 * durations are all runs of these. */
static bool is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == '*';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_segment_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned clamp_unsigned(size_t v)
{
    return v > 0xffffffffu ? 0xffffffffu : (unsigned)v;
}

/* The 1-based column of byte offset off on the current line. */
static unsigned col_of(const lexer *lx, size_t off)
{
    return clamp_unsigned(off - lx->line_start + 1);
}

/* What each kind of lexical error expected instead, said once. */
#define LEX_ESCAPES "expected \\\" \\\\ \\n \\t or \\uXXXX"
#define LEX_SURROGATES                                                         \
    "(lone surrogate); expected a high surrogate \\uD800-\\uDBFF followed "    \
    "by a low one \\uDC00-\\uDFFF"
#define LEX_UNTERMINATED_REGEX                                                 \
    "unterminated regex; expected a closing \"/\" on the same line"
#define LEX_TOKENS                                                             \
    "expected a name, a string, a regex, a number or one of { } [ ] , * < "    \
    "<= > >="

void lex_error(lexer *lx, unsigned line, unsigned col, const char *fmt, ...)
{
    strbuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    /* Without memory for the text, still count the error: the source is
     * rejected either way. */
    diag_add(lx->diag, TRINE_DIAG_ERROR, lx->file, line, col, "%s",
             b.oom || b.data == NULL ? "syntax error" : b.data);
    sb_free(&b);
    lx->nerrors++;
}

bool lex_should_stop(const lexer *lx)
{
    /* One error past the cap, so the diag holds its "too many errors"
     * note. */
    return lx->nerrors > TRINE_DIAG_MAX ||
           trine_diag_errors(lx->diag) > TRINE_DIAG_MAX;
}

int lex_init(lexer *lx, const trine_source *src, trine_diag *diag,
             bool keep_comments)
{
    memset(lx, 0, sizeof *lx);
    sb_init(&lx->val);
    lx->src = src->data != NULL ? src->data : "";
    lx->len = src->data != NULL ? src->len : 0;
    lx->file = src->name != NULL ? src->name : "<input>";
    lx->line = 1;
    lx->keep_comments = keep_comments;
    lx->diag = diag;

    /* Validate everything before reading anything: a NUL or a bad byte
     * anywhere rejects the whole source, and nothing later has to wonder
     * about either. */
    size_t bad = utf8_check(lx->src, lx->len);
    const char *nul = memchr(lx->src, '\0', bad);
    if (nul != NULL)
        bad = (size_t)(nul - lx->src);
    if (bad < lx->len) {
        unsigned line = 1;
        size_t ls = 0;
        const char *p = lx->src;
        const char *nl;
        while ((size_t)(p - lx->src) < bad) {
            nl = memchr(p, '\n', bad - (size_t)(p - lx->src));
            if (nl == NULL)
                break;
            line++;
            ls = (size_t)(nl - lx->src) + 1;
            p = nl + 1;
        }
        unsigned col = clamp_unsigned(bad - ls + 1);
        unsigned char c = (unsigned char)lx->src[bad];
        if (c == 0)
            lex_error(lx, line, col, "NUL byte in source; expected UTF-8 text");
        else
            lex_error(lx, line, col,
                      "invalid UTF-8 byte 0x%02x; expected UTF-8 text", c);
        lx->pos = lx->len;
        return TRINE_ESYNTAX;
    }
    /* A leading byte-order mark carries no meaning here. */
    if (lx->len >= 3 && memcmp(lx->src, "\xef\xbb\xbf", 3) == 0) {
        lx->pos = 3;
        lx->line_start = 3;
    }
    return 0;
}

void lex_free(lexer *lx)
{
    sb_free(&lx->val);
}

/* Appends code point cp (valid, not a surrogate) to b as UTF-8. */
static void put_utf8(strbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sb_putn(b, u, n);
}

/* Reads the hex digits (at most four) at p; returns how many there are and
 * their value in *v. */
static size_t read_hex4(const lexer *lx, size_t p, uint32_t *v)
{
    size_t k = 0;
    *v = 0;
    while (k < 4 && p + k < lx->len) {
        int h = hex_value((unsigned char)lx->src[p + k]);
        if (h < 0)
            break;
        *v = (*v << 4) | (uint32_t)h;
        k++;
    }
    return k;
}

/* Decodes the \u escape whose backslash is at lx->pos, appending the code
 * point to the value. Returns false after reporting an error. */
static bool lex_unicode_escape(lexer *lx)
{
    size_t bs = lx->pos;
    unsigned col = col_of(lx, bs);
    uint32_t cp;
    size_t k = read_hex4(lx, bs + 2, &cp);
    const char *esc = lx->src + bs;
    if (k < 4) {
        lx->pos = bs + 2 + k;
        lex_error(lx, lx->line, col,
                  "invalid escape \"%.*s\" in string (expected four hex "
                  "digits)",
                  (int)(k + 2), esc);
        return false;
    }
    lx->pos = bs + 6;
    if (cp == 0) {
        lex_error(lx, lx->line, col,
                  "invalid escape \"%.6s\" in string; expected a character "
                  "other than NUL",
                  esc);
        return false;
    }
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        lex_error(lx, lx->line, col,
                  "invalid escape \"%.6s\" in string " LEX_SURROGATES, esc);
        return false;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo = 0;
        size_t p = lx->pos;
        if (p + 1 < lx->len && lx->src[p] == '\\' && lx->src[p + 1] == 'u' &&
            read_hex4(lx, p + 2, &lo) == 4 && lo >= 0xdc00 && lo <= 0xdfff) {
            lx->pos = p + 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else {
            lex_error(lx, lx->line, col,
                      "invalid escape \"%.6s\" in string " LEX_SURROGATES, esc);
            return false;
        }
    }
    put_utf8(&lx->val, cp);
    return true;
}

/* STRING = '"' { char | escape } '"' on one line. The opening quote is at
 * lx->pos. Sets t's kind: STRING (bad when an escape was wrong), or ERROR
 * when the string does not end on its line. */
static void lex_string(lexer *lx, lex_token *t)
{
    lx->pos++;
    sb_reset(&lx->val);
    for (;;) {
        size_t run = lx->pos;
        while (run < lx->len && lx->src[run] != '"' && lx->src[run] != '\\' &&
               lx->src[run] != '\n')
            run++;
        sb_putn(&lx->val, lx->src + lx->pos, run - lx->pos);
        lx->pos = run;
        if (lx->pos >= lx->len || lx->src[lx->pos] == '\n')
            break;
        if (lx->src[lx->pos] == '"') {
            lx->pos++;
            t->kind = TK_STRING;
            return;
        }
        /* A backslash. */
        size_t e = lx->pos + 1;
        if (e >= lx->len || lx->src[e] == '\n') {
            lx->pos = e;
            break;
        }
        unsigned char c = (unsigned char)lx->src[e];
        switch (c) {
        case '"':
        case '\\':
            sb_putc(&lx->val, (char)c);
            lx->pos = e + 1;
            continue;
        case 'n':
            sb_putc(&lx->val, '\n');
            lx->pos = e + 1;
            continue;
        case 't':
            sb_putc(&lx->val, '\t');
            lx->pos = e + 1;
            continue;
        case 'u':
            if (!lex_unicode_escape(lx))
                t->bad = true;
            continue;
        default:
            break;
        }
        size_t clen;
        uint32_t cp = utf8_decode(lx->src + e, &clen);
        unsigned col = col_of(lx, lx->pos);
        if (cp > 0x20 && cp < 0x7f)
            lex_error(lx, lx->line, col,
                      "invalid escape \"\\%c\" in string; " LEX_ESCAPES,
                      (char)cp);
        else if (cp >= 0xa0)
            lex_error(lx, lx->line, col,
                      "invalid escape \"\\%.*s\" in string; " LEX_ESCAPES,
                      (int)clen, lx->src + e);
        else
            lex_error(lx, lx->line, col,
                      "invalid escape in string: \"\\\" followed by "
                      "U+%04X; " LEX_ESCAPES,
                      (unsigned)cp);
        t->bad = true;
        lx->pos = e + clen;
    }
    lex_error(lx, t->line, t->col,
              "unterminated string; expected a closing '\"' on the same line");
    t->kind = TK_ERROR;
}

/* REGEX = '/' { char | '\' char } '/' [ 'i' ] on one line. The opening
 * slash is at lx->pos. */
static void lex_regex(lexer *lx, lex_token *t)
{
    lx->pos++;
    sb_reset(&lx->val);
    for (;;) {
        size_t run = lx->pos;
        while (run < lx->len && lx->src[run] != '/' && lx->src[run] != '\\' &&
               lx->src[run] != '\n')
            run++;
        sb_putn(&lx->val, lx->src + lx->pos, run - lx->pos);
        lx->pos = run;
        if (lx->pos >= lx->len || lx->src[lx->pos] == '\n') {
            lex_error(lx, t->line, t->col, LEX_UNTERMINATED_REGEX);
            t->kind = TK_ERROR;
            return;
        }
        if (lx->src[lx->pos] == '/') {
            lx->pos++;
            break;
        }
        /* A backslash: \/ is a slash, anything else stays for PCRE2. */
        size_t e = lx->pos + 1;
        if (e >= lx->len || lx->src[e] == '\n') {
            lx->pos = e;
            lex_error(lx, t->line, t->col, LEX_UNTERMINATED_REGEX);
            t->kind = TK_ERROR;
            return;
        }
        if (lx->src[e] == '/')
            sb_putc(&lx->val, '/');
        else
            sb_putn(&lx->val, lx->src + lx->pos, 2);
        lx->pos = e + 1;
    }
    t->kind = TK_REGEX;
    /* Flags: letters, digits and '_' right after the closing slash. */
    size_t f = lx->pos;
    while (lx->pos < lx->len && (is_alpha((unsigned char)lx->src[lx->pos]) ||
                                 is_digit((unsigned char)lx->src[lx->pos])))
        lx->pos++;
    for (size_t i = f; i < lx->pos && !t->bad; i++) {
        char c = lx->src[i];
        if (c == 'i' && !t->icase) {
            t->icase = true;
            continue;
        }
        if (c == 'i')
            lex_error(lx, lx->line, col_of(lx, i),
                      "duplicate regex flag \"i\"");
        else
            lex_error(lx, lx->line, col_of(lx, i),
                      "unknown regex flag \"%c\"; only \"i\" is allowed", c);
        t->bad = true;
    }
}

/* Skips whitespace (and comments unless they are kept), counting line
 * breaks. */
static unsigned skip_space(lexer *lx)
{
    unsigned nl = 0;
    while (lx->pos < lx->len) {
        char c = lx->src[lx->pos];
        if (c == ' ' || c == '\t' || c == '\r') {
            lx->pos++;
        } else if (c == '\n') {
            lx->pos++;
            lx->line++;
            lx->line_start = lx->pos;
            nl++;
        } else if (c == '#' && !lx->keep_comments) {
            const char *e = memchr(lx->src + lx->pos, '\n', lx->len - lx->pos);
            lx->pos = e != NULL ? (size_t)(e - lx->src) : lx->len;
        } else {
            break;
        }
    }
    return nl;
}

/* How many of the n bytes at s an error message quotes: at most 16, cut
 * on a character boundary. */
static size_t lex_shown(const char *s, size_t n)
{
    if (n <= 16)
        return n;
    size_t k = 16;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return k;
}

/* True when c can begin a token, a comment or white space: where a run of
 * unexpected characters ends. */
static bool starts_token(unsigned char c)
{
    return is_word_char(c) || c <= 0x20 || c == 0x7f ||
           strchr("{}[],<>\"/#", c) != NULL;
}

int lex_next(lexer *lx, lex_token *t)
{
    unsigned nl = skip_space(lx);
    memset(t, 0, sizeof *t);
    t->line = lx->line;
    t->col = col_of(lx, lx->pos);
    t->off = lx->pos;
    t->nl_before = nl;
    t->bol = nl > 0 || !lx->seen_token;
    lx->seen_token = true;
    if (lx->pos >= lx->len) {
        t->kind = TK_EOF;
        t->val = lx->src + lx->len;
        return 0;
    }
    unsigned char c = (unsigned char)lx->src[lx->pos];
    bool decoded = false;
    switch (c) {
    case '{':
        t->kind = TK_LBRACE;
        lx->pos++;
        break;
    case '}':
        t->kind = TK_RBRACE;
        lx->pos++;
        break;
    case '[':
        t->kind = TK_LBRACKET;
        lx->pos++;
        break;
    case ']':
        t->kind = TK_RBRACKET;
        lx->pos++;
        break;
    case ',':
        t->kind = TK_COMMA;
        lx->pos++;
        break;
    case '<':
    case '>':
        lx->pos++;
        if (lx->pos < lx->len && lx->src[lx->pos] == '=') {
            lx->pos++;
            t->kind = c == '<' ? TK_LE : TK_GE;
        } else {
            t->kind = c == '<' ? TK_LT : TK_GT;
        }
        break;
    case '"':
        lex_string(lx, t);
        decoded = t->kind == TK_STRING;
        break;
    case '/':
        lex_regex(lx, t);
        decoded = t->kind == TK_REGEX;
        break;
    case '#': {
        const char *e = memchr(lx->src + lx->pos, '\n', lx->len - lx->pos);
        lx->pos = e != NULL ? (size_t)(e - lx->src) : lx->len;
        t->kind = TK_COMMENT;
        break;
    }
    default:
        if (is_word_char(c)) {
            while (lx->pos < lx->len &&
                   is_word_char((unsigned char)lx->src[lx->pos]))
                lx->pos++;
            t->kind = lx->pos - t->off == 1 && c == '*' ? TK_STAR : TK_WORD;
        } else {
            size_t clen;
            uint32_t cp = utf8_decode(lx->src + lx->pos, &clen);
            /* A run of such characters ("==") is one mistake: one error. */
            size_t run = clen;
            while (lx->pos + run < lx->len &&
                   !starts_token((unsigned char)lx->src[lx->pos + run])) {
                size_t more;
                (void)utf8_decode(lx->src + lx->pos + run, &more);
                run += more;
            }
            if (cp > 0x20 && cp < 0x7f && run == 1)
                lex_error(lx, t->line, t->col,
                          "unexpected character \"%c\"; " LEX_TOKENS, (char)cp);
            else if ((cp > 0x20 && cp < 0x7f) || cp >= 0xa0)
                lex_error(lx, t->line, t->col,
                          "unexpected %s \"%.*s%s\"; " LEX_TOKENS,
                          run == clen ? "character" : "characters",
                          (int)lex_shown(lx->src + lx->pos, run),
                          lx->src + lx->pos,
                          lex_shown(lx->src + lx->pos, run) < run ? "..." : "");
            else
                lex_error(lx, t->line, t->col,
                          "unexpected character U+%04X; " LEX_TOKENS,
                          (unsigned)cp);
            lx->pos += run;
            t->kind = TK_ERROR;
        }
        break;
    }
    t->len = lx->pos - t->off;
    if (decoded) {
        if (lx->val.oom)
            return TRINE_ENOMEM;
        t->val = lx->val.data != NULL ? lx->val.data : "";
        t->vlen = lx->val.len;
    } else {
        t->val = lx->src + t->off;
        t->vlen = t->len;
        if (t->kind == TK_COMMENT) {
            /* A comment's value is its text without trailing blanks. */
            while (t->vlen > 0 &&
                   (t->val[t->vlen - 1] == ' ' || t->val[t->vlen - 1] == '\t' ||
                    t->val[t->vlen - 1] == '\r'))
                t->vlen--;
        }
    }
    return 0;
}

/* The length of the longest prefix of s (n bytes) that is at most max bytes
 * and does not split a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return k;
}

void lex_describe(const lexer *lx, const lex_token *t, strbuf *b)
{
    const char *raw = lx->src + t->off;
    size_t n = t->len;
    size_t k = cut_utf8(raw, n, LEX_DESCRIBE_MAX);
    const char *more = k < n ? "..." : "";
    switch (t->kind) {
    case TK_EOF:
        sb_puts(b, "end of file");
        return;
    case TK_ERROR:
        sb_puts(b, "an invalid token");
        return;
    case TK_COMMENT:
        sb_puts(b, "a comment");
        return;
    case TK_STRING:
        sb_printf(b, "string %.*s%s", (int)k, raw, k < n ? "...\"" : "");
        return;
    case TK_REGEX:
        sb_printf(b, "regex %.*s%s", (int)k, raw, more);
        return;
    default:
        sb_printf(b, "\"%.*s%s\"", (int)k, raw, more);
        return;
    }
}

bool lex_is_ident(const char *s, size_t n)
{
    if (n == 0 || !is_alpha((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_segment_char((unsigned char)s[i]))
            return false;
    return true;
}

bool lex_is_path(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!lex_is_ident(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

bool lex_is_action(const char *s, size_t n)
{
    size_t start = 0;
    size_t nseg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        size_t len = i - start;
        nseg++;
        if (len == 1 && s[start] == '*') {
            /* "*" only as the last of two or more segments. */
            if (i != n || nseg < 2)
                return false;
        } else {
            if (len == 0)
                return false;
            for (size_t k = start; k < i; k++)
                if (!is_segment_char((unsigned char)s[k]))
                    return false;
        }
        start = i + 1;
    }
    return true;
}

int lex_number(const char *s, size_t n, double *d, bool *is_int, int64_t *ival)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    size_t int_start = i;
    while (i < n && is_digit((unsigned char)s[i]))
        i++;
    if (i == int_start)
        return LEX_NUM_BAD;
    size_t int_end = i;
    bool frac = false;
    if (i < n && s[i] == '.') {
        i++;
        size_t fs = i;
        while (i < n && is_digit((unsigned char)s[i]))
            i++;
        if (i == fs)
            return LEX_NUM_BAD;
        frac = true;
    }
    if (i != n)
        return LEX_NUM_BAD;
    if (!frac) {
        /* Accumulate negatively so INT64_MIN fits. */
        int64_t v = 0;
        for (size_t k = int_start; k < int_end; k++) {
            int dgt = s[k] - '0';
            if (v < (INT64_MIN + dgt) / 10)
                return LEX_NUM_RANGE;
            v = v * 10 - dgt;
        }
        if (!neg) {
            if (v == INT64_MIN)
                return LEX_NUM_RANGE;
            v = -v;
        }
        *is_int = true;
        *ival = v;
        *d = (double)v;
        return LEX_NUM_OK;
    }
    /* A real, read the same in every locale (number.h): a program that
     * embeds the library and sets a locale with a decimal comma must not
     * see "2.5" in a policy read as 2. A text too long to convert counts
     * as out of range. */
    double v;
    if (num_parse(s, n, &v) != 0 || !isfinite(v))
        return LEX_NUM_RANGE;
    *is_int = false;
    *ival = 0;
    *d = v;
    return LEX_NUM_OK;
}

int lex_duration(const char *s, size_t n, int64_t *secs)
{
    if (n < 2)
        return LEX_NUM_BAD;
    int64_t mult;
    switch (s[n - 1]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    default:
        return LEX_NUM_BAD;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return LEX_NUM_BAD;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > LEX_DURATION_MAX)
            return LEX_NUM_RANGE;
    }
    if (v > LEX_DURATION_MAX / mult)
        return LEX_NUM_RANGE;
    *secs = v * mult;
    return LEX_NUM_OK;
}
