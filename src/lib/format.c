/*
 * format.c - trine_format: the canonical layout of one policy source.
 *
 * The source is parsed first (a source with errors is refused), then laid
 * out again from its token stream with the comments kept. Working on tokens
 * rather than on the syntax tree keeps every comment where it was and every
 * word exactly as written; the walk below follows the grammar of parser.c,
 * which the source is known to satisfy by then.
 *
 * Layout:
 *  - 2-space indent inside blocks; one space between tokens; "a, b" for
 *    lists; ["a", "b"] for `in` lists; strings with canonical escapes.
 *  - A block whose body is a single item goes on one line when it fits in
 *    80 columns ({} for an empty one); any other block has one item per
 *    line. Statements and items are never wrapped otherwise.
 *  - An own-line comment stays on its own line before what it preceded,
 *    re-indented; a trailing comment stays at the end of its line after one
 *    space, and a comment inside a block makes that block multi-line. A
 *    comment in the middle of a statement or item ends the line, and the
 *    rest continues on the next line, indented by four more spaces.
 *  - At most one blank line is kept between statements and items (an
 *    own-line comment counts as one); none at the start of a block or file.
 *  - The output ends with exactly one newline (an empty policy stays empty).
 * Formatting its own output changes nothing.
 */
#include "lib/lexer.h"
#include "lib/parser.h"
#include "lib/util.h"
#include "trine.h"

#include <stdlib.h>
#include <string.h>

#define FMT_WIDTH 80
#define FMT_INDENT 2
#define FMT_CONTINUE 4

/* One token, kept for the layout pass. */
typedef struct ftok {
    lex_kind kind;
    bool icase;
    unsigned nl_before;
    size_t off, len;   /* raw text in the source */
    size_t voff, vlen; /* STRING: decoded value in fmt.vals; COMMENT: the
                          raw text without trailing blanks is (off, vlen) */
} ftok;

typedef struct fmt {
    const char *src;
    ftok *t;
    size_t n;    /* tokens, the last one TK_EOF */
    size_t i;    /* the next token to lay out */
    strbuf vals; /* decoded string values */
    strbuf out;
    size_t line_start; /* offset in out of the current line */
    bool need_nl;      /* the next text starts a new line */
    bool blank;        /* ... after a blank line */
    unsigned indent;   /* indentation of the next new line */
    lex_kind prev;     /* the last token written */
    size_t ncomments;  /* comments written so far */
} fmt;

/* What a one-line attempt may have to undo. */
typedef struct fmt_mark {
    size_t out_len, line_start, i, ncomments;
    bool need_nl, blank;
    unsigned indent;
    lex_kind prev;
} fmt_mark;

static fmt_mark fmt_save(const fmt *f)
{
    return (fmt_mark){f->out.len, f->line_start, f->i,      f->ncomments,
                      f->need_nl, f->blank,      f->indent, f->prev};
}

static void fmt_restore(fmt *f, const fmt_mark *m)
{
    f->out.len = m->out_len;
    if (f->out.data != NULL)
        f->out.data[f->out.len] = '\0';
    f->line_start = m->line_start;
    f->i = m->i;
    f->ncomments = m->ncomments;
    f->need_nl = m->need_nl;
    f->blank = m->blank;
    f->indent = m->indent;
    f->prev = m->prev;
}

static bool line_empty(const fmt *f)
{
    return f->out.len == f->line_start;
}

/* Width of the current output line in code points. */
static size_t line_width(const fmt *f)
{
    size_t w = 0;
    for (size_t k = f->line_start; k < f->out.len; k++)
        if (((unsigned char)f->out.data[k] & 0xc0) != 0x80)
            w++;
    return w;
}

/* Starts a new line if one is pending, then indents an empty line. */
static void begin_text(fmt *f)
{
    if (f->need_nl && !line_empty(f)) {
        sb_putc(&f->out, '\n');
        if (f->blank)
            sb_putc(&f->out, '\n');
        f->line_start = f->out.len;
    }
    f->need_nl = false;
    f->blank = false;
    if (line_empty(f))
        for (unsigned k = 0; k < f->indent; k++)
            sb_putc(&f->out, ' ');
}

/* Appends a string value with the canonical escapes: \" \\ \n \t, and
 * \u00XX for every other control character (C0, DEL and C1). */
static void put_string(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    sb_putc(b, '"');
    size_t run = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        unsigned cp = c;
        size_t clen = 1;
        if (c == 0xc2 && k + 1 < n && (unsigned char)s[k + 1] < 0xa0) {
            cp = (unsigned char)s[k + 1]; /* U+0080..U+009F */
            clen = 2;
        }
        const char *esc = NULL;
        char u[7];
        if (cp == '"')
            esc = "\\\"";
        else if (cp == '\\')
            esc = "\\\\";
        else if (cp == '\n')
            esc = "\\n";
        else if (cp == '\t')
            esc = "\\t";
        else if (cp < 0x20 || cp == 0x7f || clen == 2) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[cp >> 4];
            u[5] = hex[cp & 15];
            u[6] = '\0';
            esc = u;
        }
        if (esc == NULL)
            continue;
        sb_putn(b, s + run, k - run);
        sb_puts(b, esc);
        k += clen - 1;
        run = k + 1;
    }
    sb_putn(b, s + run, n - run);
    sb_putc(b, '"');
}

/* Writes the code token t with the spacing rules: none before "," or "]"
 * or after "[", one space otherwise. */
static void put_code(fmt *f, const ftok *t)
{
    begin_text(f);
    bool tight =
        t->kind == TK_COMMA || t->kind == TK_RBRACKET || f->prev == TK_LBRACKET;
    if (!line_empty(f) && f->out.data[f->out.len - 1] != ' ' && !tight)
        sb_putc(&f->out, ' ');
    if (t->kind == TK_STRING)
        put_string(&f->out, f->vals.data + t->voff, t->vlen);
    else
        sb_putn(&f->out, f->src + t->off, t->len);
    f->prev = t->kind;
}

/* A comment that shared its line with the token before it: it stays at the
 * end of the line. */
static void put_trailing(fmt *f, const ftok *t)
{
    sb_putc(&f->out, ' ');
    sb_putn(&f->out, f->src + t->off, t->vlen);
    f->need_nl = true;
    f->ncomments++;
}

/* A comment on its own line, at the current indentation. */
static void put_own_line(fmt *f, const ftok *t, bool blank)
{
    f->need_nl = true;
    f->blank = blank;
    begin_text(f);
    sb_putn(&f->out, f->src + t->off, t->vlen);
    f->need_nl = true;
    f->ncomments++;
}

static bool is_trailing(const fmt *f, const ftok *t)
{
    return t->nl_before == 0 && t != f->t;
}

/* Lays out the comments in the middle of a statement or item. */
static void flush_comments(fmt *f)
{
    while (f->i < f->n && f->t[f->i].kind == TK_COMMENT) {
        const ftok *t = &f->t[f->i++];
        if (is_trailing(f, t))
            put_trailing(f, t);
        else
            put_own_line(f, t, false);
    }
}

/* The next code token, comments skipped (the TK_EOF at the end at worst). */
static const ftok *peek(const fmt *f)
{
    size_t k = f->i;
    while (k + 1 < f->n && f->t[k].kind == TK_COMMENT)
        k++;
    return &f->t[k];
}

static bool ftok_is(const fmt *f, const ftok *t, const char *word)
{
    size_t n = strlen(word);
    return t->kind == TK_WORD && t->len == n &&
           memcmp(f->src + t->off, word, n) == 0;
}

/* Writes the next code token, after the comments before it. Returns
 * TRINE_EINVAL when the stream ends early (which a parsed source never
 * does). */
static int code(fmt *f)
{
    flush_comments(f);
    if (f->i >= f->n || f->t[f->i].kind == TK_EOF)
        return TRINE_EINVAL;
    put_code(f, &f->t[f->i++]);
    return 0;
}

/* elem { "," elem } */
static int list(fmt *f)
{
    int rc = code(f);
    while (rc == 0 && peek(f)->kind == TK_COMMA) {
        rc = code(f);
        if (rc == 0)
            rc = code(f);
    }
    return rc;
}

/* One item of a block, keyword first (see parser.c for the grammar). */
static int item(fmt *f, unsigned base)
{
    const ftok *kw = peek(f);
    int rc = code(f);
    f->indent = base + FMT_CONTINUE;
    if (rc != 0)
        return rc;
    if (ftok_is(f, kw, "allow") || ftok_is(f, kw, "deny") ||
        ftok_is(f, kw, "needs")) {
        rc = list(f);
        if (rc == 0)
            rc = code(f); /* on */
        if (rc == 0)
            rc = list(f);
    } else if (ftok_is(f, kw, "roles") || ftok_is(f, kw, "redact")) {
        rc = list(f);
    } else if (ftok_is(f, kw, "arg")) {
        rc = code(f); /* the path */
        const ftok *c = peek(f);
        if (rc != 0)
            return rc;
        if (ftok_is(f, c, "in")) {
            rc = code(f);
            if (rc == 0)
                rc = code(f); /* [ */
            if (rc == 0)
                rc = list(f);
            if (rc == 0)
                rc = code(f); /* ] */
        } else if (ftok_is(f, c, "required")) {
            rc = code(f);
        } else {
            rc = code(f);
            if (rc == 0)
                rc = code(f);
        }
    } else if (ftok_is(f, kw, "consent")) {
        rc = code(f); /* the mode */
        if (rc == 0 && ftok_is(f, peek(f), "for")) {
            rc = code(f);
            if (rc == 0)
                rc = code(f);
        }
        if (rc == 0 && peek(f)->kind == TK_STRING)
            rc = code(f);
    } else {
        /* audience, resource_metadata, delegation: one value. */
        rc = code(f);
    }
    return rc;
}

static int level(fmt *f, unsigned base, lex_kind end);

/* "{" { item } "}" on one line when the block holds a single item, no
 * comment, and fits; else multi-line. The "{" is the next token. */
static int block(fmt *f, unsigned base)
{
    flush_comments(f);
    fmt_mark m = fmt_save(f);
    int rc = code(f);
    if (rc != 0)
        return rc;
    const ftok *t = &f->t[f->i];
    if (t->kind == TK_RBRACE) {
        sb_putc(&f->out, '}');
        f->prev = TK_RBRACE;
        f->i++;
        return 0;
    }
    if (t->kind != TK_COMMENT) {
        rc = item(f, base);
        if (rc != 0)
            return rc;
        if (f->t[f->i].kind == TK_RBRACE && f->ncomments == m.ncomments) {
            code(f);
            if (line_width(f) <= FMT_WIDTH && !f->out.oom)
                return 0;
        }
    }
    fmt_restore(f, &m);
    rc = code(f);
    if (rc == 0)
        rc = level(f, base + FMT_INDENT, TK_RBRACE);
    if (rc != 0)
        return rc;
    f->need_nl = true;
    f->indent = base;
    return code(f);
}

/* One statement: "forbid" actions "on" patterns, or a keyword, its names
 * and a block. */
static int statement(fmt *f, unsigned base)
{
    const ftok *kw = peek(f);
    int rc = code(f);
    f->indent = base + FMT_CONTINUE;
    if (rc != 0)
        return rc;
    if (ftok_is(f, kw, "forbid")) {
        rc = list(f);
        if (rc == 0)
            rc = code(f); /* on */
        if (rc == 0)
            rc = list(f);
        return rc;
    }
    while (rc == 0 && peek(f)->kind != TK_LBRACE) {
        if (peek(f)->kind == TK_EOF)
            return TRINE_EINVAL;
        rc = code(f);
    }
    return rc == 0 ? block(f, base) : rc;
}

/* A sequence of statements (end TK_EOF) or items (end TK_RBRACE) at one
 * indentation, with the comments between them. Stops before end. */
static int level(fmt *f, unsigned base, lex_kind end)
{
    bool first = true;
    for (;;) {
        const ftok *t = &f->t[f->i];
        if (t->kind == TK_COMMENT) {
            f->i++;
            if (is_trailing(f, t)) {
                put_trailing(f, t);
                continue;
            }
            f->indent = base;
            put_own_line(f, t, !first && t->nl_before >= 2);
            first = false;
            continue;
        }
        if (t->kind == end)
            return 0;
        if (t->kind == TK_EOF)
            return TRINE_EINVAL;
        f->need_nl = true;
        f->blank = !first && t->nl_before >= 2;
        f->indent = base;
        int rc = end == TK_EOF ? statement(f, base) : item(f, base);
        if (rc != 0)
            return rc;
        first = false;
    }
}

/* Reads every token of src, comments included, into f. */
static int collect(fmt *f, const trine_source *src)
{
    lexer lx;
    size_t cap = 0;
    int rc = lex_init(&lx, src, NULL, true);
    f->src = lx.src;
    while (rc == 0) {
        lex_token t;
        rc = lex_next(&lx, &t);
        if (rc != 0)
            break;
        if (lx.nerrors > 0) {
            rc = TRINE_ESYNTAX;
            break;
        }
        if (f->n == cap) {
            size_t nc = cap != 0 ? cap * 2 : 256;
            ftok *p = realloc(f->t, nc * sizeof *p);
            if (p == NULL) {
                rc = TRINE_ENOMEM;
                break;
            }
            f->t = p;
            cap = nc;
        }
        ftok *ft = &f->t[f->n++];
        *ft = (ftok){t.kind, t.icase, t.nl_before, t.off, t.len, 0, t.vlen};
        if (t.kind == TK_STRING) {
            ft->voff = f->vals.len;
            sb_putn(&f->vals, t.val, t.vlen);
            if (f->vals.oom)
                rc = TRINE_ENOMEM;
        }
        if (t.kind == TK_EOF)
            break;
    }
    if (rc == 0 && lx.nerrors > 0)
        rc = TRINE_ESYNTAX;
    lex_free(&lx);
    return rc;
}

int trine_format(const trine_source *src, trine_diag *diag, char **out,
                 size_t *outlen)
{
    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (src == NULL || out == NULL)
        return TRINE_EINVAL;

    ast_file *ast = NULL;
    int rc = parse_source(src, diag, &ast);
    ast_free(ast);
    if (rc != 0)
        return rc;

    fmt f;
    memset(&f, 0, sizeof f);
    sb_init(&f.vals);
    sb_init(&f.out);
    f.prev = TK_EOF;
    rc = collect(&f, src);
    if (rc == 0)
        rc = level(&f, 0, TK_EOF);
    if (rc == 0 && !line_empty(&f))
        sb_putc(&f.out, '\n');
    if (rc == 0 && f.out.oom)
        rc = TRINE_ENOMEM;
    free(f.t);
    sb_free(&f.vals);
    if (rc != 0) {
        sb_free(&f.out);
        return rc;
    }
    size_t len = f.out.len;
    *out = sb_take(&f.out);
    if (*out == NULL)
        return TRINE_ENOMEM;
    if (outlen != NULL)
        *outlen = len;
    return 0;
}
