/*
 * policy.h - the compiled, immutable form of a policy: what compile.c builds
 * from the syntax trees and what eval.c reads. Everything the evaluator looks
 * up is indexed (tools by server and name, rules by action, bindings by user
 * and group), so the cost of a check does not grow with the number of
 * unrelated roles, scopes and tools.
 *
 * Ownership: the trine_policy owns every node and string below it. After
 * compile returns, nothing is written again (bar the reference count), so one
 * policy serves every thread without locks.
 */
#ifndef TRINE_POLICY_H
#define TRINE_POLICY_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/ast.h"
#include "lib/util.h"
#include "trine.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Matching (match.c) ------------------------------------------------ */

typedef enum pat_kind { PAT_GLOB, PAT_REGEX } pat_kind;

/* A resource pattern. Globs: '*' any run of characters ('/' included), '?'
 * one character (code point); no escapes, no classes. Regexes always match
 * the whole subject. */
typedef struct cpl_pattern {
    pat_kind kind;
    const char *text; /* glob text, or regex source */
    size_t len;
    bool literal;   /* a glob with neither '*' nor '?' */
    pcre2_code *re; /* PAT_REGEX: compiled (JIT when available) */
} cpl_pattern;

/* Returns true when the pattern matches all of subject (len bytes of valid
 * UTF-8). A regex that hits PCRE2's match limit does not match. */
bool pattern_match(const cpl_pattern *p, const char *subject, size_t len);

/* Returns true, and clears the flag, when a regex match on the calling
 * thread could not finish for lack of memory since the last call. Such a
 * match counts as no match for an allow and as a match for a deny; a caller
 * that must not answer from it clears the flag first and checks it after. */
bool match_take_nomem(void);

/* Compiles a regex source as a full-match pattern (with PCRE2_UTF, and
 * PCRE2_CASELESS when icase). Returns NULL and writes PCRE2's message and
 * the 0-based offset of the error into msg/offset on failure; *offset is
 * MATCH_NOMEM when the failure was running out of memory. */
#define MATCH_NOMEM SIZE_MAX
pcre2_code *match_compile_regex(const char *src, size_t len, bool icase,
                                char *msg, size_t msglen, size_t *offset);

typedef enum act_kind { ACT_EXACT, ACT_PREFIX, ACT_ANY } act_kind;

/* A rule's action: "issues.create" (EXACT), "issues.*" (PREFIX, text holds
 * "issues." with the dot), or "*" (ANY). */
typedef struct cpl_action {
    act_kind kind;
    const char *text;
    size_t len;
} cpl_action;

/* True when the rule action a covers the needed action (alen bytes). */
bool action_match(const cpl_action *a, const char *action, size_t alen);

/* ---- Rules and blocks -------------------------------------------------- */

typedef enum blk_kind { BLK_SCOPE, BLK_ROLE, BLK_AGENT, BLK_FORBID } blk_kind;

struct cpl_block;

typedef struct cpl_rule {
    bool deny; /* deny, or forbid */
    cpl_action *actions;
    size_t nactions;
    cpl_pattern *patterns;
    size_t npatterns;
    const char *file; /* base name, owned by the policy */
    unsigned line;
    unsigned col;
    const struct cpl_block *block;
} cpl_rule;

/* The rules of one action index bucket. */
typedef struct rule_list {
    const cpl_rule **rules;
    size_t len;
} rule_list;

/* A scope, role or agent block with every repeat merged, or the one block
 * that holds every forbid. */
typedef struct cpl_block {
    blk_kind kind;
    const char *name; /* NULL for `agent *` and the forbid block */
    const char *file; /* where it was first declared */
    unsigned line;
    unsigned col;           /* of the first declaration's keyword */
    unsigned order;         /* declaration order among blocks of its kind */
    const cpl_rule **rules; /* declaration order, across repeats */
    size_t nrules;
    /* The action index: rules whose actions include an exact action (key
     * "issues.create"), a prefix (key "issues." for issues.*), or `*`. */
    strmap exact;  /* key -> rule_list* */
    strmap prefix; /* key -> rule_list* */
    rule_list any;
} cpl_block;

/* Finds, in b, the first (in declaration order) allow rule and the first
 * deny rule that match (action, resource). Either out-pointer is set to NULL
 * when none matches. Uses the action index: cost depends on the rules about
 * this action, not on the size of the block. */
void block_match(const cpl_block *b, const char *action, size_t alen,
                 const char *res, size_t rlen, const cpl_rule **allow,
                 const cpl_rule **deny);

/* ---- Bindings ---------------------------------------------------------- */

/* The roles bound by `user "<sub>"`, `user *` or `group "<g>"`, merged. */
typedef struct cpl_binding {
    const char *name; /* NULL for `user *` */
    const cpl_block **roles;
    size_t nroles;
    const char *file; /* first declaration */
    unsigned line;
    unsigned col;
} cpl_binding;

/* ---- Tools ------------------------------------------------------------- */

/* One piece of a template or prompt: literal text, or a placeholder. */
typedef struct tmpl_part {
    bool is_ph;
    const char *text; /* literal text, or the placeholder's dotted path */
    size_t len;
    const char **path; /* placeholder path segments */
    size_t npath;
    bool rest;     /* {p...} */
    bool redacted; /* a `redact` path of the tool covers the placeholder:
                      the audit log's copy shows "[redacted]" */
} tmpl_part;

typedef struct cpl_template {
    const char *src; /* as written */
    tmpl_part *parts;
    size_t nparts;
    bool any_redacted; /* some part is redacted */
} cpl_template;

typedef struct cpl_needs {
    const char **actions; /* needed actions, as written */
    size_t *action_lens;
    size_t nactions;
    cpl_template tmpl;
    const char *file;
    unsigned line;
    unsigned col; /* of the `needs` keyword */
} cpl_needs;

typedef struct cpl_arg {
    const char *path_text; /* "opts.limit" */
    const char **path;     /* {"opts", "limit"} */
    size_t npath;
    ast_constraint_kind kind;
    cpl_pattern regex; /* AST_C_MATCHES */
    json_t **literals; /* AST_C_IN, owned references */
    size_t nliterals;
    ast_number number; /* comparisons and max_length */
    const char *text;  /* the constraint as written, for reasons */
    const char *file;
    unsigned line;
} cpl_arg;

typedef struct cpl_path {
    const char *text;
    const char **seg;
    size_t nseg;
} cpl_path;

typedef struct cpl_tool {
    const char *server;
    const char *name; /* NULL for `tool "<server>" *` */
    const char *file; /* first declaration */
    unsigned line;
    unsigned col;
    cpl_needs *needs;
    size_t nneeds;
    cpl_arg *args;
    size_t nargs;
    trine_consent_mode consent; /* TRINE_CONSENT_NONE when absent */
    int64_t consent_duration_s; /* -1 when absent */
    cpl_template prompt;        /* nparts == 0 when absent */
    bool has_prompt;
    const char *consent_file;
    unsigned consent_line;
    cpl_path *redacts;
    size_t nredacts;
} cpl_tool;

typedef struct cpl_server {
    const char *name;
    bool declared;    /* a `server` block exists */
    const char *file; /* first server block, else first tool */
    unsigned line;
    unsigned col;
    const char **audiences;
    size_t naudiences;
    const char *resource_metadata; /* NULL when absent */
    bool full_chain;               /* delegation full_chain */
    strmap tools;                  /* name -> cpl_tool* */
    const cpl_tool **tool_list;    /* named tools, declaration order */
    size_t ntools;
    const cpl_tool *wildcard; /* tool "<server>" *, or NULL */
} cpl_server;

/* ---- The policy -------------------------------------------------------- */

typedef struct policy_counts {
    unsigned scope, role, user, group, agent, server, tool, forbid, rules;
} policy_counts;

struct trine_policy {
    atomic_long refs;
    char revision[7 + 64 + 1];
    /* SHA-256 over each file's name and bytes, each preceded by its
     * length: unlike the revision, no two sets of files share it. */
    unsigned char sources_digest[32];
    char **files; /* base names, load order */
    size_t nfiles;
    int64_t loaded_at_ms;
    policy_counts counts;

    strmap servers; /* name -> cpl_server* */
    const cpl_server **server_list;
    size_t nservers;

    const cpl_block **scopes; /* declaration order (for set-cover ties) */
    size_t nscopes;
    strmap scope_by_name; /* name -> cpl_block* */

    strmap roles; /* name -> cpl_block* */
    const cpl_block **role_list;
    size_t nroles;

    strmap users;                /* sub -> cpl_binding* */
    const cpl_binding *user_any; /* user *, or NULL */
    strmap groups;               /* group -> cpl_binding* */

    strmap agents;              /* client id -> cpl_block* */
    const cpl_block *agent_any; /* agent *, or NULL */

    const cpl_block *forbids; /* every forbid rule, or NULL */

    void *arena; /* compile.c's allocations, freed at once */
};

/* Compiles n parsed files (in load order) into a policy with one reference.
 * srcs gives the raw bytes for the revision hash. Returns 0, TRINE_EPOLICY
 * with every error in diag, or TRINE_ENOMEM. */
int compile_policy(ast_file *const *files, const trine_source *srcs, size_t n,
                   trine_diag *diag, trine_policy **out);

#endif /* TRINE_POLICY_H */
