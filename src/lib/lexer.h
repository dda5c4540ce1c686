/*
 * lexer.h - the policy lexer: turns one source into tokens for the parser
 * and the formatter.
 *
 * The lexer is deliberately loose about words: every run of the characters
 * [A-Za-z0-9_.*-] is one WORD (or STAR when it is exactly "*"), and the parser
 * decides, in context, whether it wanted an identifier, an action, a path, a
 * number or a duration. That way a malformed action such as "issues." is
 * reported as one precise error instead of a cascade of odd tokens.
 *
 * Errors are recorded in the caller's trine_diag as they are found and the
 * lexer keeps going, so one pass reports every error of a source.
 */
#ifndef TRINE_LEXER_H
#define TRINE_LEXER_H

#include "lib/util.h"
#include "trine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lex_kind {
    TK_EOF = 0,
    TK_ERROR,    /* a lexical error, already reported */
    TK_WORD,     /* [A-Za-z0-9_.*-]+ other than "*" */
    TK_STAR,     /* "*" */
    TK_STRING,   /* "...", value decoded */
    TK_REGEX,    /* /.../ with optional i, value with \/ turned into / */
    TK_LBRACE,   /* { */
    TK_RBRACE,   /* } */
    TK_LBRACKET, /* [ */
    TK_RBRACKET, /* ] */
    TK_COMMA,    /* , */
    TK_LT,       /* < */
    TK_LE,       /* <= */
    TK_GT,       /* > */
    TK_GE,       /* >= */
    TK_COMMENT   /* # to end of line; only with keep_comments */
} lex_kind;

/* One token. val/vlen hold the decoded value of a STRING (escapes resolved)
 * or REGEX (the pattern without its slashes, \/ turned into /); for every
 * other kind they point at the raw text. A decoded value lives in the lexer
 * and is valid only until the next lex_next call; copy what you keep. */
typedef struct lex_token {
    lex_kind kind;
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based, in bytes */
    size_t off;    /* raw text: src->data + off, len bytes */
    size_t len;
    const char *val;
    size_t vlen;
    bool icase;         /* REGEX: the `i` flag */
    bool bad;           /* STRING/REGEX with a reported error inside */
    bool bol;           /* the first token on its line */
    unsigned nl_before; /* line breaks between the previous token and this */
} lex_token;

typedef struct lexer {
    const char *src;
    size_t len;
    size_t pos;
    const char *file;
    unsigned line;
    size_t line_start; /* offset of the current line's first byte */
    bool keep_comments;
    bool seen_token; /* some token was returned already */
    trine_diag *diag;
    unsigned nerrors; /* errors this lexer (and its parser) reported */
    strbuf val;       /* the decoded value of the current token */
} lexer;

/* Prepares lx to read src (borrowed: it must outlive lx). Checks the whole
 * source first: a NUL byte or invalid UTF-8 is reported at its line:col and
 * the call returns TRINE_ESYNTAX (lx then yields only TK_EOF). Returns 0 on
 * success. keep_comments makes lex_next return TK_COMMENT tokens. Always
 * call lex_free afterwards. */
int lex_init(lexer *lx, const trine_source *src, trine_diag *diag,
             bool keep_comments);

/* Releases the lexer's buffers. */
void lex_free(lexer *lx);

/* Reads the next token into *t. Lexical errors are reported to the diag and
 * come back as TK_ERROR (or a STRING/REGEX with bad set); after the end,
 * every call yields TK_EOF. Returns 0, or TRINE_ENOMEM. */
int lex_next(lexer *lx, lex_token *t);

/* Reports an error at line:col of lx's file and counts it. */
void lex_error(lexer *lx, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True when enough errors were reported that parsing should stop: the
 * diag went past its cap (and holds its "too many errors" note), or this
 * lexer's own count did (which also covers running without a diag). */
bool lex_should_stop(const lexer *lx);

/* Appends a short description of t for "found ..." messages: `"allow"`,
 * `string "repo:*"`, `regex /a+/`, `"{"` or `end of file`. Long texts are
 * cut to a few dozen bytes and end with "...". */
void lex_describe(const lexer *lx, const lex_token *t, strbuf *b);

/* Word forms, for the parser. Each checks n bytes at s. */
/* [A-Za-z_][A-Za-z0-9_-]* */
bool lex_is_ident(const char *s, size_t n);
/* IDENT { "." IDENT } */
bool lex_is_path(const char *s, size_t n);
/* What lex_is_action accepts, for the errors that find otherwise. */
#define LEX_ACTION_FORM                                                        \
    "expected segments of letters, digits, \"_\" and \"-\" joined by \".\", "  \
    "the last of which may be \"*\""

/* Segments of [A-Za-z0-9_-]+ joined by ".", the last of which may be "*"
 * when there are at least two ("issues.*"); the bare "*" is a STAR token. */
bool lex_is_action(const char *s, size_t n);

/* Results of lex_number and lex_duration. */
#define LEX_NUM_OK 0
#define LEX_NUM_BAD (-1)   /* not of the expected form */
#define LEX_NUM_RANGE (-2) /* of the form, but out of range */

/* Reads a number: an optional "-", digits, and an optional fraction
 * (".digits"). An integer (no fraction) must fit in int64 and sets
 * *is_int and *ival; every number sets *d (which must be finite). Returns
 * LEX_NUM_OK, LEX_NUM_BAD or LEX_NUM_RANGE. */
int lex_number(const char *s, size_t n, double *d, bool *is_int, int64_t *ival);

/* The longest duration: 100 years of 366 days. A consent lasting longer
 * is a consent without an end (`once` alone), and the bound keeps every
 * time computed from a duration (milliseconds from now) far from
 * overflow. */
#define LEX_DURATION_MAX ((int64_t)36600 * 86400)

/* Reads a duration: digits immediately followed by one of s m h d, into
 * seconds. Returns LEX_NUM_OK, LEX_NUM_BAD or LEX_NUM_RANGE (more than
 * LEX_DURATION_MAX seconds). */
int lex_duration(const char *s, size_t n, int64_t *secs);

#endif /* TRINE_LEXER_H */
