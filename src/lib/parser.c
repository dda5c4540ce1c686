/*
 * parser.c - the policy parser (DESIGN §2.2): one source in, one syntax tree
 * (ast.h) out, with every error of the source reported at its file:line:col.
 *
 * The grammar nests only statement > block > item > list, so the parser is a
 * plain loop per level and never recurses per brace: ten thousand `{` cost
 * ten thousand token reads and nothing more. After an error it resynchronises
 * (see sync_top and sync_block) and goes on, so one run reports every error
 * up to the diagnostics cap.
 */
#include "lib/parser.h"

#include "lib/lexer.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    lexer lx;
    lex_token tok; /* the current token */
    ast_file *f;
    int err;     /* TRINE_ENOMEM once memory ran out, else 0 */
    strbuf desc; /* the current token described, for messages */
    size_t stmts_cap;
    /* Capacities of the arrays of the statement being built. */
    size_t rules_cap, roles_cap, aud_cap, rm_cap, deleg_cap, deleg_at_cap;
    size_t needs_cap, args_cap, consents_cap, redacts_cap;
} parser;

/* The outcome of resynchronising inside a block. */
typedef enum sync_result {
    SYNC_CLOSED, /* the block's "}" was consumed */
    SYNC_ITEM,   /* at an item keyword that starts a line */
    SYNC_ABANDON /* at a statement keyword starting a line, or the end */
} sync_result;

/* What a number must look like, for the error that finds otherwise. */
#define PARSE_NUMBER_RANGE "expected a 64-bit integer or a finite real"
#define STMT_LIST "scope, role, user, group, agent, server, tool, forbid"

/* What each statement holds: its keyword (also its name in messages), the
 * form of its name, and the items of its block. */
typedef struct block_info {
    const char *name;
    const char *items[4];
    const char *list;      /* the items, for messages */
    bool ident;            /* named by an IDENT, not a STRING */
    bool star_ok;          /* or by "*" */
    const char *name_what; /* what a bad name is reported as missing */
} block_info;

static const block_info block_infos[] = {
    [AST_SCOPE] = {"scope",
                   {"allow", "deny"},
                   "allow, deny",
                   false,
                   false,
                   "a string after \"scope\""},
    [AST_ROLE] = {"role",
                  {"allow", "deny"},
                  "allow, deny",
                  true,
                  false,
                  "an identifier after \"role\""},
    [AST_USER] = {"user",
                  {"roles"},
                  "roles",
                  false,
                  true,
                  "a string or \"*\" after \"user\""},
    [AST_GROUP] =
        {"group", {"roles"}, "roles", false, false, "a string after \"group\""},
    [AST_AGENT] = {"agent",
                   {"allow", "deny"},
                   "allow, deny",
                   false,
                   true,
                   "a string or \"*\" after \"agent\""},
    [AST_SERVER] = {"server",
                    {"audience", "resource_metadata", "delegation"},
                    "audience, resource_metadata, delegation",
                    false,
                    false,
                    "a string after \"server\""},
    [AST_TOOL] = {"tool",
                  {"needs", "arg", "consent", "redact"},
                  "needs, arg, consent, redact",
                  false,
                  false,
                  "the server name (a string) after \"tool\""},
    [AST_FORBID] = {"forbid", {NULL}, "", false, false, ""},
};

/* ---- Tokens -------------------------------------------------------- */

static void advance(parser *p)
{
    if (p->err != 0)
        return;
    if (lex_next(&p->lx, &p->tok) != 0) {
        p->err = TRINE_ENOMEM;
        p->tok.kind = TK_EOF;
    }
}

static bool tok_is(const lex_token *t, const char *word)
{
    size_t n = strlen(word);
    return t->kind == TK_WORD && t->len == n && memcmp(t->val, word, n) == 0;
}

static ast_loc tok_loc(const parser *p)
{
    return (ast_loc){p->f->name, p->tok.line, p->tok.col};
}

/* Returns a copy of the current token's value, or NULL (memory noted). */
static char *tok_copy(parser *p)
{
    char *s = xstrndup(p->tok.val, p->tok.vlen);
    if (s == NULL)
        p->err = TRINE_ENOMEM;
    return s;
}

/* Returns the statement kind the token names, or -1. */
static int stmt_kind(const lex_token *t)
{
    for (int k = AST_SCOPE; k <= AST_FORBID; k++)
        if (tok_is(t, block_infos[k].name))
            return k;
    return -1;
}

static bool is_stmt_keyword(const lex_token *t)
{
    return stmt_kind(t) >= 0;
}

static bool is_item_keyword(const lex_token *t, ast_kind kind)
{
    const block_info *b = &block_infos[kind];
    for (size_t i = 0; i < 4 && b->items[i] != NULL; i++)
        if (tok_is(t, b->items[i]))
            return true;
    return false;
}

/* ---- Errors -------------------------------------------------------- */

/* Returns the current token described for a message ("allow", string
 * "x", end of file...), valid until the next call. */
static const char *found(parser *p)
{
    sb_reset(&p->desc);
    lex_describe(&p->lx, &p->tok, &p->desc);
    return p->desc.oom || p->desc.data == NULL ? "a token" : p->desc.data;
}

/* Reports an error (printf-style) at the current token. Returns
 * TRINE_ESYNTAX. */
static int error_here(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int error_here(parser *p, const char *fmt, ...)
{
    strbuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    lex_error(&p->lx, p->tok.line, p->tok.col, "%s",
              b.oom || b.data == NULL ? "syntax error" : b.data);
    sb_free(&b);
    return TRINE_ESYNTAX;
}

/* Reports "expected <what>, found <the current token>", what formatted
 * printf-style, and returns TRINE_ESYNTAX (or TRINE_ENOMEM once memory ran
 * out). An invalid token was reported by the lexer already, so it is not
 * reported twice. */
static int expected(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int expected(parser *p, const char *fmt, ...)
{
    if (p->err != 0)
        return p->err;
    if (p->tok.kind == TK_ERROR)
        return TRINE_ESYNTAX;
    strbuf what;
    sb_init(&what);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&what, fmt, ap);
    va_end(ap);
    error_here(p, "expected %s, found %s",
               what.oom || what.data == NULL ? "more" : what.data, found(p));
    sb_free(&what);
    return TRINE_ESYNTAX;
}

/* ---- Arrays -------------------------------------------------------- */

/* Returns arr with room for len + 1 elements of elsz bytes (growing *cap
 * geometrically), or NULL on OOM, in which case arr is untouched. */
static void *grow(void *arr, size_t len, size_t *cap, size_t elsz)
{
    if (len < *cap)
        return arr;
    size_t nc = *cap != 0 ? *cap * 2 : 4;
    if (nc > SIZE_MAX / elsz)
        return NULL;
    void *q = realloc(arr, nc * elsz);
    if (q == NULL)
        return NULL;
    *cap = nc;
    return q;
}

/* Appends a zeroed element to an array member and sets slot to it. The
 * count goes up at once, so a half-built element is still freed. */
#define PUSH(p, arr, n, cap, slot)                                             \
    do {                                                                       \
        void *grown_ = grow((arr), (n), &(cap), sizeof *(arr));                \
        if (grown_ == NULL) {                                                  \
            (p)->err = TRINE_ENOMEM;                                           \
            return TRINE_ENOMEM;                                               \
        }                                                                      \
        (arr) = grown_;                                                        \
        (slot) = &(arr)[(n)++];                                                \
        memset((slot), 0, sizeof *(slot));                                     \
    } while (0)

/* ---- Lists --------------------------------------------------------- */

/* actions = ACTION { "," ACTION } ;
 * ACTION is a WORD of action form, or "*". Keywords are not reserved: the
 * list starts with an action and goes on after every ",", so an action may
 * be called "on" (`allow on, off on "x"`). */
static int parse_actions(parser *p, const char *after, ast_action **out,
                         size_t *n)
{
    size_t cap = 0;
    for (;;) {
        if (p->tok.kind != TK_STAR && p->tok.kind != TK_WORD)
            return expected(p, "an action after %s", after);
        if (p->tok.kind == TK_WORD && !lex_is_action(p->tok.val, p->tok.vlen))
            return error_here(p, "invalid action %s; " LEX_ACTION_FORM,
                              found(p));
        ast_action *a;
        PUSH(p, *out, *n, cap, a);
        a->at = tok_loc(p);
        a->text = tok_copy(p);
        if (a->text == NULL)
            return TRINE_ENOMEM;
        advance(p);
        if (p->tok.kind != TK_COMMA)
            break;
        after = "\",\"";
        advance(p);
    }
    return p->err;
}

/* Expects the word "on" that ends the n actions of a list that followed
 * the keyword kw. */
static int expect_on(parser *p, const char *kw, const ast_action *acts,
                     size_t n)
{
    if (tok_is(&p->tok, "on")) {
        advance(p);
        return p->err;
    }
    /* `allow on "x"` and `allow a, on "x"` read "on" as the last action,
     * where an action is missing: say so there. */
    const ast_action *last = &acts[n - 1];
    if (p->err == 0 && strcmp(last->text, "on") == 0 &&
        (p->tok.kind == TK_STRING || p->tok.kind == TK_REGEX)) {
        lex_error(&p->lx, last->at.line, last->at.col,
                  "expected an action after %s, found \"on\"",
                  n == 1 ? kw : "\",\"");
        return TRINE_ESYNTAX;
    }
    return expected(p, "\",\" or \"on\" after the actions");
}

/* patterns = pattern { "," pattern } ;
 * pattern  = STRING | REGEX ; */
static int parse_patterns(parser *p, ast_pattern **out, size_t *n)
{
    size_t cap = 0;
    const char *what = "a pattern (a string or a regex) after \"on\"";
    for (;;) {
        if (p->tok.kind != TK_STRING && p->tok.kind != TK_REGEX)
            return expected(p, "%s", what);
        ast_pattern *pat;
        PUSH(p, *out, *n, cap, pat);
        pat->at = tok_loc(p);
        pat->is_regex = p->tok.kind == TK_REGEX;
        pat->icase = p->tok.icase;
        pat->text = tok_copy(p);
        if (pat->text == NULL)
            return TRINE_ENOMEM;
        advance(p);
        if (p->tok.kind != TK_COMMA)
            break;
        what = "a pattern (a string or a regex) after \",\"";
        advance(p);
    }
    return p->err;
}

/* A list of names: IDENT { "," IDENT } for roles, PATH { "," PATH } for
 * redact. what_first/what_next name what is expected for messages. */
static int parse_names(parser *p, bool paths, const char *what_first,
                       const char *what_next, ast_name **out, size_t *n,
                       size_t *cap)
{
    const char *what = what_first;
    for (;;) {
        bool ok = p->tok.kind == TK_WORD &&
                  (paths ? lex_is_path(p->tok.val, p->tok.vlen)
                         : lex_is_ident(p->tok.val, p->tok.vlen));
        if (!ok)
            return expected(p, "%s", what);
        ast_name *nm;
        PUSH(p, *out, *n, *cap, nm);
        nm->at = tok_loc(p);
        nm->text = tok_copy(p);
        if (nm->text == NULL)
            return TRINE_ENOMEM;
        advance(p);
        if (p->tok.kind != TK_COMMA)
            break;
        what = what_next;
        advance(p);
    }
    return p->err;
}

/* ---- Numbers ------------------------------------------------------- */

/* NUMBER, read from the current WORD. what names the expectation. */
static int parse_number(parser *p, const char *what, ast_number *num)
{
    if (p->tok.kind != TK_WORD)
        return expected(p, "%s", what);
    int rc =
        lex_number(p->tok.val, p->tok.vlen, &num->d, &num->is_int, &num->i);
    if (rc == LEX_NUM_BAD)
        return expected(p, "%s", what);
    if (rc == LEX_NUM_RANGE)
        return error_here(p, "number %s is out of range; " PARSE_NUMBER_RANGE,
                          found(p));
    advance(p);
    return p->err;
}

/* literal = STRING | NUMBER | "true" | "false" | "null" ;
 * Stores a new reference in *out. */
static int parse_literal(parser *p, const char *what, json_t **out)
{
    json_t *v;
    if (p->tok.kind == TK_STRING) {
        v = json_stringn(p->tok.val, p->tok.vlen);
    } else if (tok_is(&p->tok, "true")) {
        v = json_true();
    } else if (tok_is(&p->tok, "false")) {
        v = json_false();
    } else if (tok_is(&p->tok, "null")) {
        v = json_null();
    } else {
        /* A number; parse_number moves past it. */
        ast_number num;
        int rc = parse_number(p, what, &num);
        if (rc != 0)
            return rc;
        v = num.is_int ? json_integer((json_int_t)num.i) : json_real(num.d);
        if (v == NULL) {
            p->err = TRINE_ENOMEM;
            return p->err;
        }
        *out = v;
        return 0;
    }
    if (v == NULL) {
        p->err = TRINE_ENOMEM;
        return p->err;
    }
    *out = v;
    advance(p);
    return p->err;
}

/* ---- Items --------------------------------------------------------- */

/* rule = ("allow" | "deny") actions "on" patterns ; */
static int parse_rule(parser *p, ast_stmt *s)
{
    ast_rule *r;
    PUSH(p, s->rules, s->nrules, p->rules_cap, r);
    r->deny = tok_is(&p->tok, "deny");
    r->at = tok_loc(p);
    const char *after = r->deny ? "\"deny\"" : "\"allow\"";
    advance(p);
    int rc = parse_actions(p, after, &r->actions, &r->nactions);
    if (rc == 0)
        rc = expect_on(p, after, r->actions, r->nactions);
    if (rc == 0)
        rc = parse_patterns(p, &r->patterns, &r->npatterns);
    return rc;
}

/* "needs" actions "on" TEMPLATE ; */
static int parse_needs(parser *p, ast_stmt *s)
{
    ast_needs *nd;
    PUSH(p, s->needs, s->nneeds, p->needs_cap, nd);
    nd->at = tok_loc(p);
    advance(p);
    int rc = parse_actions(p, "\"needs\"", &nd->actions, &nd->nactions);
    if (rc == 0)
        rc = expect_on(p, "\"needs\"", nd->actions, nd->nactions);
    if (rc != 0)
        return rc;
    if (p->tok.kind != TK_STRING)
        return expected(p, "a template string after \"on\"");
    nd->tmpl_at = tok_loc(p);
    nd->tmpl = tok_copy(p);
    if (nd->tmpl == NULL)
        return TRINE_ENOMEM;
    advance(p);
    return p->err;
}

/* "in" "[" literal { "," literal } "]" */
static int parse_in_list(parser *p, ast_arg *a)
{
    size_t cap = 0;
    if (p->tok.kind != TK_LBRACKET)
        return expected(p, "\"[\" after \"in\"");
    advance(p);
    const char *what = "a literal (a string, number, true, false or null)";
    for (;;) {
        json_t **slot;
        PUSH(p, a->literals, a->nliterals, cap, slot);
        int rc = parse_literal(p, what, slot);
        if (rc != 0) {
            a->nliterals--; /* the slot holds no reference */
            return rc;
        }
        if (p->tok.kind == TK_RBRACKET)
            break;
        if (p->tok.kind != TK_COMMA)
            return expected(p, "\",\" or \"]\" in the list");
        advance(p);
    }
    advance(p);
    return p->err;
}

/* "arg" PATH constraint ;
 * constraint = "matches" REGEX | "in" "[" literal { "," literal } "]"
 *            | ("<" | "<=" | ">" | ">=") NUMBER | "max_length" NUMBER
 *            | "required" ; */
static int parse_arg(parser *p, ast_stmt *s)
{
    ast_arg *a;
    PUSH(p, s->args, s->nargs, p->args_cap, a);
    a->at = tok_loc(p);
    advance(p);
    if (p->tok.kind != TK_WORD || !lex_is_path(p->tok.val, p->tok.vlen))
        return expected(p, "an argument path after \"arg\"");
    a->path = tok_copy(p);
    if (a->path == NULL)
        return TRINE_ENOMEM;
    advance(p);

    lex_kind op = p->tok.kind;
    if (tok_is(&p->tok, "matches")) {
        a->kind = AST_C_MATCHES;
        advance(p);
        if (p->tok.kind != TK_REGEX)
            return expected(p, "a regex after \"matches\"");
        a->regex.at = tok_loc(p);
        a->regex.is_regex = true;
        a->regex.icase = p->tok.icase;
        a->regex.text = tok_copy(p);
        if (a->regex.text == NULL)
            return TRINE_ENOMEM;
        advance(p);
        return p->err;
    }
    if (tok_is(&p->tok, "in")) {
        a->kind = AST_C_IN;
        advance(p);
        return parse_in_list(p, a);
    }
    if (op == TK_LT || op == TK_LE || op == TK_GT || op == TK_GE) {
        static const char *const what[] = {
            [TK_LT] = "a number after \"<\"",
            [TK_LE] = "a number after \"<=\"",
            [TK_GT] = "a number after \">\"",
            [TK_GE] = "a number after \">=\"",
        };
        a->kind = op == TK_LT   ? AST_C_LT
                  : op == TK_LE ? AST_C_LE
                  : op == TK_GT ? AST_C_GT
                                : AST_C_GE;
        advance(p);
        return parse_number(p, what[op], &a->number);
    }
    if (tok_is(&p->tok, "max_length")) {
        a->kind = AST_C_MAX_LENGTH;
        advance(p);
        const char *what = "a non-negative integer after \"max_length\"";
        if (p->tok.kind != TK_WORD || p->tok.val[0] == '-')
            return expected(p, "%s", what);
        int rc = lex_number(p->tok.val, p->tok.vlen, &a->number.d,
                            &a->number.is_int, &a->number.i);
        if (rc == LEX_NUM_RANGE)
            return error_here(
                p, "number %s is out of range; " PARSE_NUMBER_RANGE, found(p));
        if (rc != LEX_NUM_OK || !a->number.is_int)
            return expected(p, "%s", what);
        advance(p);
        return p->err;
    }
    if (tok_is(&p->tok, "required")) {
        a->kind = AST_C_REQUIRED;
        advance(p);
        return p->err;
    }
    return expected(p, "a constraint (matches, in, <, <=, >, >=, max_length "
                       "or required) after the argument path");
}

/* "consent" ("always" | "session" | "once" ["for" DURATION]) [STRING] ; */
static int parse_consent(parser *p, ast_stmt *s)
{
    ast_consent *c;
    PUSH(p, s->consents, s->nconsents, p->consents_cap, c);
    c->at = tok_loc(p);
    c->duration_s = -1;
    advance(p);
    if (tok_is(&p->tok, "always"))
        c->mode = AST_CONSENT_ALWAYS;
    else if (tok_is(&p->tok, "session"))
        c->mode = AST_CONSENT_SESSION;
    else if (tok_is(&p->tok, "once"))
        c->mode = AST_CONSENT_ONCE;
    else
        return expected(p, "a consent mode (always, session or once) after "
                           "\"consent\"");
    advance(p);
    if (tok_is(&p->tok, "for")) {
        if (c->mode != AST_CONSENT_ONCE)
            return error_here(p, "\"for\" is only allowed after \"once\"");
        advance(p);
        const char *what = "a duration (such as 30m or 7d) after \"for\"";
        if (p->tok.kind != TK_WORD)
            return expected(p, "%s", what);
        int rc = lex_duration(p->tok.val, p->tok.vlen, &c->duration_s);
        if (rc == LEX_NUM_BAD)
            return expected(p, "%s", what);
        if (rc == LEX_NUM_RANGE)
            return error_here(p,
                              "duration %s is out of range; expected at most "
                              "36600d (100 years)",
                              found(p));
        advance(p);
    }
    if (p->tok.kind == TK_STRING) {
        c->prompt = tok_copy(p);
        if (c->prompt == NULL)
            return TRINE_ENOMEM;
        advance(p);
    }
    return p->err;
}

/* "audience" STRING | "resource_metadata" STRING
 * | "delegation" ("current_actor" | "full_chain") */
static int parse_server_item(parser *p, ast_stmt *s)
{
    ast_name *nm;
    if (tok_is(&p->tok, "delegation")) {
        ast_delegation *d;
        ast_loc *at;
        PUSH(p, s->delegation_at, s->ndelegations, p->deleg_at_cap, at);
        s->ndelegations--; /* counted once both arrays have room */
        PUSH(p, s->delegations, s->ndelegations, p->deleg_cap, d);
        *at = tok_loc(p);
        *d = AST_DELEG_UNSET;
        advance(p);
        if (tok_is(&p->tok, "current_actor"))
            *d = AST_DELEG_CURRENT_ACTOR;
        else if (tok_is(&p->tok, "full_chain"))
            *d = AST_DELEG_FULL_CHAIN;
        else
            return expected(p, "current_actor or full_chain after "
                               "\"delegation\"");
        advance(p);
        return p->err;
    }
    bool aud = tok_is(&p->tok, "audience");
    if (aud)
        PUSH(p, s->audiences, s->naudiences, p->aud_cap, nm);
    else
        PUSH(p, s->resource_metadata, s->nresource_metadata, p->rm_cap, nm);
    nm->at = tok_loc(p);
    advance(p);
    if (p->tok.kind != TK_STRING)
        return expected(p, "%s",
                        aud ? "a string after \"audience\""
                            : "a string after \"resource_metadata\"");
    nm->at = tok_loc(p);
    nm->text = tok_copy(p);
    if (nm->text == NULL)
        return TRINE_ENOMEM;
    advance(p);
    return p->err;
}

/* item      = rule                                 (scope, role, agent)
 *           | "roles" IDENT { "," IDENT }            (user, group)
 *           | server item                            (server)
 *           | tool_item ;                            (tool)
 * tool_item = "needs" ... | "arg" ... | "consent" ... | "redact" PATH
 *             { "," PATH } ;
 * The current token is the item's keyword, valid for the block. */
static int parse_item(parser *p, ast_stmt *s)
{
    switch (s->kind) {
    case AST_SCOPE:
    case AST_ROLE:
    case AST_AGENT:
        return parse_rule(p, s);
    case AST_USER:
    case AST_GROUP:
        advance(p);
        return parse_names(p, false, "a role name after \"roles\"",
                           "a role name after \",\"", &s->roles, &s->nroles,
                           &p->roles_cap);
    case AST_SERVER:
        return parse_server_item(p, s);
    case AST_TOOL:
        if (tok_is(&p->tok, "needs"))
            return parse_needs(p, s);
        if (tok_is(&p->tok, "arg"))
            return parse_arg(p, s);
        if (tok_is(&p->tok, "consent"))
            return parse_consent(p, s);
        advance(p);
        return parse_names(p, true, "an argument path after \"redact\"",
                           "an argument path after \",\"", &s->redacts,
                           &s->nredacts, &p->redacts_cap);
    case AST_FORBID:
        break;
    }
    return TRINE_ESYNTAX;
}

/* ---- Recovery ------------------------------------------------------ */

/* After an error at the top level: skips to the next statement keyword that
 * is outside braces or starts a line. */
static void sync_top(parser *p)
{
    size_t depth = 0;
    while (p->tok.kind != TK_EOF && p->err == 0 && !lex_should_stop(&p->lx)) {
        if (is_stmt_keyword(&p->tok) && (depth == 0 || p->tok.bol))
            return;
        if (p->tok.kind == TK_LBRACE)
            depth++;
        else if (p->tok.kind == TK_RBRACE && depth > 0)
            depth--;
        advance(p);
    }
}

/* After an error inside a block of the given kind: skips past the block's
 * closing "}", or to an item keyword that starts a line (the next item), or
 * to a statement keyword that starts a line (the block was never closed). */
static sync_result sync_block(parser *p, ast_kind kind)
{
    size_t depth = 0;
    while (p->tok.kind != TK_EOF && p->err == 0 && !lex_should_stop(&p->lx)) {
        if (p->tok.bol && is_stmt_keyword(&p->tok))
            return SYNC_ABANDON;
        if (p->tok.bol && depth == 0 && is_item_keyword(&p->tok, kind))
            return SYNC_ITEM;
        if (p->tok.kind == TK_LBRACE) {
            depth++;
        } else if (p->tok.kind == TK_RBRACE) {
            if (depth == 0) {
                advance(p);
                return SYNC_CLOSED;
            }
            depth--;
        }
        advance(p);
    }
    return SYNC_ABANDON;
}

/* ---- Statements ---------------------------------------------------- */

/* "{" { item } "}" for a statement of kind s->kind; the "{" is current.
 * Returns 0 once the "}" is consumed (errors inside were reported and
 * recovered from), TRINE_ESYNTAX when the block never closed, or
 * TRINE_ENOMEM. */
static int parse_block(parser *p, ast_stmt *s)
{
    const block_info *bi = &block_infos[s->kind];
    unsigned open_line = p->tok.line, open_col = p->tok.col;
    bool failed = false;
    advance(p);
    for (;;) {
        if (p->err != 0)
            return p->err;
        if (lex_should_stop(&p->lx))
            return TRINE_ESYNTAX;
        int rc;
        /* user and group blocks bind at least one role (DESIGN §2.2:
         * "{" "roles" IDENT ... "}"): an empty one binds nothing, which
         * is a mistake in waiting. */
        if (p->tok.kind == TK_RBRACE && !failed && s->nroles == 0 &&
            (s->kind == AST_USER || s->kind == AST_GROUP)) {
            rc = expected(p, "\"roles\" in the %s block", bi->name);
            advance(p);
            return p->err != 0 ? p->err : rc;
        }
        if (p->tok.kind == TK_RBRACE) {
            advance(p);
            return p->err;
        }
        /* The end, or a statement keyword where no item can start: the
         * block was left open. */
        if (p->tok.kind == TK_EOF || (p->tok.bol && is_stmt_keyword(&p->tok) &&
                                      !is_item_keyword(&p->tok, s->kind))) {
            return expected(p, "\"}\" to close the %s block opened at %u:%u",
                            bi->name, open_line, open_col);
        }
        if (is_item_keyword(&p->tok, s->kind)) {
            rc = parse_item(p, s);
        } else if (p->tok.kind == TK_WORD) {
            rc = error_here(p, "unknown %s item %s; expected %s or \"}\"",
                            bi->name, found(p), bi->list);
        } else {
            rc = expected(p, "%s or \"}\" in the %s block", bi->list, bi->name);
        }
        if (rc == TRINE_ENOMEM)
            return rc;
        if (rc != 0) {
            failed = true;
            sync_result r = sync_block(p, s->kind);
            if (r == SYNC_CLOSED)
                return p->err;
            if (r == SYNC_ABANDON)
                return p->err != 0 ? p->err : TRINE_ESYNTAX;
        }
    }
}

/* name = STRING | IDENT | "*" ;   (which ones, the statement decides)
 * The name after a statement keyword: an IDENT when ident, else a STRING;
 * or "*" when star_ok. Sets *name (NULL for "*") and *at. */
static int parse_name(parser *p, bool ident, bool star_ok, const char *what,
                      char **name, ast_loc *at)
{
    *at = tok_loc(p);
    if (star_ok && p->tok.kind == TK_STAR) {
        advance(p);
        return p->err;
    }
    bool ok =
        ident ? p->tok.kind == TK_WORD && lex_is_ident(p->tok.val, p->tok.vlen)
              : p->tok.kind == TK_STRING;
    if (!ok)
        return expected(p, "%s", what);
    *name = tok_copy(p);
    if (*name == NULL)
        return TRINE_ENOMEM;
    advance(p);
    return p->err;
}

/* statement = scope | role | user | group | agent | tool | server | forbid ;
 * scope  = "scope"  STRING        "{" { rule } "}" ;
 * role   = "role"   IDENT         "{" { rule } "}" ;
 * user   = "user"   (STRING|"*")  "{" "roles" IDENT { "," IDENT } "}" ;
 * group  = "group"  STRING        "{" "roles" IDENT { "," IDENT } "}" ;
 * agent  = "agent"  (STRING|"*")  "{" { rule } "}" ;
 * server = "server" STRING        "{" { server item } "}" ;
 * tool   = "tool"   STRING (STRING|"*") "{" { tool_item } "}" ;
 * forbid = "forbid" actions "on" patterns ; */
static int parse_statement(parser *p)
{
    int k = stmt_kind(&p->tok);
    if (k < 0 && p->tok.kind == TK_WORD)
        return error_here(p, "unknown statement %s; expected one of " STMT_LIST,
                          found(p));
    if (k < 0)
        return expected(p, "a statement (one of " STMT_LIST ")");

    const block_info *bi = &block_infos[k];
    ast_file *f = p->f;
    ast_stmt *s;
    PUSH(p, f->stmts, f->nstmts, p->stmts_cap, s);
    p->rules_cap = p->roles_cap = p->aud_cap = p->rm_cap = 0;
    p->deleg_cap = p->deleg_at_cap = p->needs_cap = p->args_cap = 0;
    p->consents_cap = p->redacts_cap = 0;
    s->kind = (ast_kind)k;
    s->at = tok_loc(p);
    advance(p);

    int rc;
    if (s->kind == AST_FORBID) {
        ast_rule *r;
        PUSH(p, s->rules, s->nrules, p->rules_cap, r);
        r->deny = true;
        r->at = s->at;
        rc = parse_actions(p, "\"forbid\"", &r->actions, &r->nactions);
        if (rc == 0)
            rc = expect_on(p, "\"forbid\"", r->actions, r->nactions);
        if (rc == 0)
            rc = parse_patterns(p, &r->patterns, &r->npatterns);
        return rc;
    }
    rc = parse_name(p, bi->ident, bi->star_ok, bi->name_what, &s->name,
                    &s->name_at);
    if (rc == 0 && s->kind == AST_TOOL)
        rc = parse_name(p, false, true,
                        "the tool name (a string or \"*\") after the server "
                        "name",
                        &s->tool, &s->tool_at);
    if (rc != 0)
        return rc;
    if (p->tok.kind != TK_LBRACE)
        return expected(p, "\"{\" after the %s name", bi->name);
    return parse_block(p, s);
}

/* policy = { statement } ; */
int parse_source(const trine_source *src, trine_diag *diag, ast_file **out)
{
    *out = NULL;
    parser p;
    memset(&p, 0, sizeof p);
    p.f = calloc(1, sizeof *p.f);
    if (p.f == NULL)
        return TRINE_ENOMEM;
    p.f->name = xstrdup(src->name != NULL ? src->name : "<input>");
    if (p.f->name == NULL) {
        free(p.f);
        return TRINE_ENOMEM;
    }
    if (lex_init(&p.lx, src, diag, false) != 0) {
        lex_free(&p.lx);
        ast_free(p.f);
        return TRINE_ESYNTAX;
    }
    advance(&p);
    while (p.tok.kind != TK_EOF && p.err == 0 && !lex_should_stop(&p.lx)) {
        size_t before = p.tok.off;
        int rc = parse_statement(&p);
        if (rc == TRINE_ENOMEM || p.err != 0)
            break;
        if (rc != 0)
            sync_top(&p);
        /* Every round must consume something; a statement keyword that
         * failed without doing so is skipped. */
        if (p.tok.off == before && p.tok.kind != TK_EOF)
            advance(&p);
    }
    int rc = p.err != 0 ? p.err : p.lx.nerrors > 0 ? TRINE_ESYNTAX : 0;
    lex_free(&p.lx);
    sb_free(&p.desc);
    if (rc != 0) {
        ast_free(p.f);
        return rc;
    }
    *out = p.f;
    return 0;
}
