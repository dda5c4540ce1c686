/*
 * ast.h - the syntax tree the parser builds from one policy source and the
 * compiler merges across sources. Every node carries its position so that
 * compile errors and decisions can name file:line:col.
 *
 * Ownership: an ast_file owns every node and string below it; ast_free
 * releases all of it. Strings are NUL-terminated, valid UTF-8, with escapes
 * already decoded; a string literal that decodes to bytes containing NUL is
 * rejected by the lexer, so C strings lose nothing.
 */
#ifndef TRINE_AST_H
#define TRINE_AST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A position in a source. file points at the ast_file's name. */
typedef struct ast_loc {
    const char *file;
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based, in bytes */
} ast_loc;

/* An action as written: "issues.create", "issues.*" or "*". */
typedef struct ast_action {
    char *text;
    ast_loc at;
} ast_action;

/* A resource pattern: a glob string, or a regex (/.../ with optional i). */
typedef struct ast_pattern {
    char *text; /* the glob, or the regex source without slashes */
    bool is_regex;
    bool icase; /* the regex had the `i` flag */
    ast_loc at;
} ast_pattern;

/* allow/deny ACTIONS on PATTERNS; forbid uses the same shape. */
typedef struct ast_rule {
    bool deny;
    ast_action *actions;
    size_t nactions;
    ast_pattern *patterns;
    size_t npatterns;
    ast_loc at; /* position of the allow/deny/forbid keyword */
} ast_rule;

/* A name with its position: a role in a `roles` list, an audience. */
typedef struct ast_name {
    char *text;
    ast_loc at;
} ast_name;

typedef enum ast_constraint_kind {
    AST_C_MATCHES,
    AST_C_IN,
    AST_C_LT,
    AST_C_LE,
    AST_C_GT,
    AST_C_GE,
    AST_C_MAX_LENGTH,
    AST_C_REQUIRED
} ast_constraint_kind;

/* A NUMBER as written: an integer is kept exactly (a double would round
 * integers past 2^53), a real as a double. */
typedef struct ast_number {
    bool is_int;
    int64_t i; /* is_int */
    double d;  /* the value as a double, integer or not */
} ast_number;

/* arg PATH constraint */
typedef struct ast_arg {
    char *path; /* dotted path, e.g. "owner" or "opts.limit" */
    ast_constraint_kind kind;
    ast_pattern regex; /* AST_C_MATCHES */
    json_t **literals; /* AST_C_IN: owned references (string, number,
                          true, false, null) */
    size_t nliterals;
    ast_number number; /* comparisons and max_length */
    ast_loc at;        /* position of the `arg` keyword */
} ast_arg;

/* needs ACTIONS on TEMPLATE */
typedef struct ast_needs {
    ast_action *actions;
    size_t nactions;
    char *tmpl;      /* the template string, placeholders unparsed */
    ast_loc tmpl_at; /* position of the template string */
    ast_loc at;      /* position of the `needs` keyword */
} ast_needs;

typedef enum ast_consent_mode {
    AST_CONSENT_ALWAYS = 1,
    AST_CONSENT_SESSION,
    AST_CONSENT_ONCE
} ast_consent_mode;

/* consent MODE [for DURATION] [PROMPT] */
typedef struct ast_consent {
    ast_consent_mode mode;
    int64_t duration_s; /* `once for D`; -1 when absent */
    char *prompt;       /* NULL when absent */
    ast_loc at;
} ast_consent;

typedef enum ast_delegation {
    AST_DELEG_UNSET = 0,
    AST_DELEG_CURRENT_ACTOR,
    AST_DELEG_FULL_CHAIN
} ast_delegation;

typedef enum ast_kind {
    AST_SCOPE,
    AST_ROLE,
    AST_USER,
    AST_GROUP,
    AST_AGENT,
    AST_SERVER,
    AST_TOOL,
    AST_FORBID
} ast_kind;

/* One top-level statement. Which members are used depends on kind:
 *   scope/role/agent: name, rules
 *   user/group:       name, roles
 *   server:           name, audiences, resource_metadata, delegation
 *   tool:             name (the server), tool (NULL for `*`), needs, args,
 *                     consents, redacts
 *   forbid:           rules (exactly one, deny = true)
 * name is NULL for `user *` and `agent *`. */
typedef struct ast_stmt {
    ast_kind kind;
    ast_loc at; /* position of the keyword */
    char *name;
    ast_loc name_at;
    char *tool;
    ast_loc tool_at;

    ast_rule *rules;
    size_t nrules;

    ast_name *roles;
    size_t nroles;

    ast_name *audiences;
    size_t naudiences;
    ast_name *resource_metadata; /* every occurrence, in order */
    size_t nresource_metadata;
    ast_delegation *delegations; /* every occurrence, in order */
    ast_loc *delegation_at;
    size_t ndelegations;

    ast_needs *needs;
    size_t nneeds;
    ast_arg *args;
    size_t nargs;
    ast_consent *consents; /* every occurrence, in order */
    size_t nconsents;
    ast_name *redacts;
    size_t nredacts;
} ast_stmt;

/* One parsed source. */
typedef struct ast_file {
    char *name; /* the file name errors use */
    ast_stmt *stmts;
    size_t nstmts;
} ast_file;

void ast_free(ast_file *f);

#endif /* TRINE_AST_H */
