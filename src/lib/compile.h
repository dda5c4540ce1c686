/*
 * compile.h - what the files of the compiler share: the arena that owns a
 * compiled policy's memory, the compile context, and the tool compiler that
 * compile_tool.c provides to compile.c. Internal to the compiler and to
 * load.c (which frees policies); the evaluator reads only policy.h.
 */
#ifndef TRINE_COMPILE_H
#define TRINE_COMPILE_H

#include "lib/ast.h"
#include "lib/policy.h"
#include "lib/util.h"

#include <stdbool.h>
#include <stddef.h>

/* A bump allocator plus the list of things that need their own free:
 * compiled regexes, JSON literals and hash maps. */
typedef struct compile_arena compile_arena;

/* Returns a new empty arena, or NULL on OOM. */
compile_arena *compile_arena_new(void);
/* Frees every allocation, regex, JSON value and map the arena holds. */
void compile_arena_free(compile_arena *a);
/* Returns n zeroed bytes (suitably aligned) owned by the arena, or NULL. */
void *compile_alloc(compile_arena *a, size_t n);
/* Returns an arena copy of n bytes at s, NUL-terminated, or NULL. */
char *compile_strndup(compile_arena *a, const char *s, size_t n);
char *compile_strdup(compile_arena *a, const char *s);
/* Hand a regex, a JSON reference or a map to the arena, which frees it with
 * the policy. Return 0, or TRINE_ENOMEM (the object is then freed at once,
 * except a map, which the caller still owns). */
int compile_keep_code(compile_arena *a, pcre2_code *re);
int compile_keep_json(compile_arena *a, json_t *v);
int compile_keep_map(compile_arena *a, strmap *m);

/* Frees a policy and everything it owns (no reference counting). */
void compile_policy_free(trine_policy *p);

/* The state of one compile_policy call. */
typedef struct compile_ctx {
    trine_policy *p;
    compile_arena *a;
    trine_diag *diag;
    unsigned nerrors;
    const char *file; /* the interned name of the file being read */

    ptrvec blocks;        /* every scope/role/agent/forbid builder */
    ptrvec binds;         /* every user/group builder */
    ptrvec servers;       /* every server builder, first-seen order */
    ptrvec tools;         /* every tool builder, first-seen order */
    ptrvec scopes, roles; /* cpl_block*, declaration order */
    unsigned nagents;
    struct compile_block *agent_any;
    struct compile_block *forbid;
    struct compile_bind *user_any;
} compile_ctx;

/* Records a load error at loc (printf-style message). */
void compile_error(compile_ctx *c, const ast_loc *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends s as a JSON string literal (quoted, escaped) to b: how messages
 * quote names and templates that may hold any character. */
void compile_quote(strbuf *b, const char *s);

/* Formats "file:line:col" of loc into buf. */
void compile_where(char *buf, size_t len, const ast_loc *at);

/* Compiles an action as written into *out. A malformed action is recorded
 * as an error (and *out left inert). Returns 0 or TRINE_ENOMEM. */
int compile_action(compile_ctx *c, const ast_action *in, cpl_action *out);

/* Compiles a glob or regex into *out; a regex that does not compile is
 * recorded as an error at its position with PCRE2's message. Returns 0 or
 * TRINE_ENOMEM. */
int compile_pattern(compile_ctx *c, const ast_pattern *in, cpl_pattern *out);

/* Server and tool statements (compile_tool.c). The first pass sizes every
 * server and tool (creating the servers that only tools name); the second
 * fills them; the last checks what only a merged tool can tell (a tool with
 * no needs) and lays out the servers. Each records load errors in c and
 * returns 0, or TRINE_ENOMEM. */
int compile_tool_count(compile_ctx *c, const ast_stmt *s);
int compile_tool_fill(compile_ctx *c, const ast_stmt *s);
int compile_tool_finish(compile_ctx *c);

#endif /* TRINE_COMPILE_H */
