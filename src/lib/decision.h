/*
 * decision.h - the evaluator's internal interface: the trine_decision that a
 * check produces (result.c), the token claims it reads (claims.c), template
 * and prompt filling (template.c), canonical JSON (canon.c) and the step-up
 * set cover (cover.c). eval.c ties them together in trine_check.
 *
 * A decision is built by one thread and then only read. It holds a reference
 * to the compiled policy (so rules, files and tool blocks it points at stay
 * alive) and a reference to the request's arguments object (read lazily for
 * the argument hash and the redacted arguments; callers must not modify that
 * object while the decision lives). Every other string is copied into the
 * decision's own arena, so the request itself need not outlive trine_check.
 */
#ifndef TRINE_DECISION_H
#define TRINE_DECISION_H

#include "lib/policy.h"
#include "lib/util.h"
#include "trine.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The decision (result.c) ------------------------------------------- */

/* One entry of "reasons". Unused members are NULL (rule_file NULL: no
 * rule). Strings live in the decision's arena or in the policy. */
typedef struct dec_reason {
    const char *code; /* static */
    const char *set;  /* "user", "scope", "agent", or NULL */
    const char *action;
    const char *resource;
    const char *resource_audit; /* the audit log's copy of resource, when
                                   it differs (a redacted value in it) */
    const char *agent;
    const char *argument;
    const char *rule_file;
    unsigned rule_line;
    const char *detail;
} dec_reason;

/* One entry of "matched": a rule that decided a set that passed. agent is
 * set only for a delegation actor. */
typedef struct dec_match {
    const char *set;
    const char *agent;
    const char *file;
    unsigned line;
} dec_match;

/* One actor of the delegation chain, outermost first. id is NULL when the
 * actor has no usable id (it then fails A); why says what was wrong. */
typedef struct dec_actor {
    const char *id;
    const char *why;
} dec_actor;

/* A chunk of arena memory past the decision's inline block. */
typedef struct dec_chunk {
    struct dec_chunk *next;
} dec_chunk;

#define DEC_INLINE_REASONS 2
#define DEC_INLINE_MATCHED 4
#define DEC_ARENA_INLINE 384

struct trine_decision {
    trine_policy *policy; /* one reference, released on free */
    const char *kind;     /* static */
    const char *reason;   /* static */

    /* Facts of the request, NULL when absent. */
    const char *server;
    const char *tool;
    const char *user;
    const char *agent;
    const char *session;
    json_t *args;             /* a reference, NULL when absent */
    const cpl_tool *tool_blk; /* the tool the request names (its redact
                                 paths apply whatever step decided), or
                                 NULL */
    trine_consent_mode consent_mode;
    int64_t consent_duration_s;
    int64_t grant_id;

    /* The delegation chain (every actor, outermost first). */
    bool has_chain;
    bool chain_truncated;
    dec_actor *actors;
    size_t nactors;

    /* The result. */
    const char *prompt; /* consent_required only */
    size_t prompt_len;
    const char *prompt_audit; /* the audit log's copy of prompt, when it
                                 differs (a redacted value in it) */
    size_t prompt_audit_len;
    bool has_redacted; /* some resource or the prompt has an audit copy */
    dec_reason *reasons;
    size_t nreasons;
    size_t reasons_cap;
    dec_match *matched;
    size_t nmatched;
    size_t matched_cap;
    bool has_required; /* "required_scopes" is present */
    const char **required;
    size_t nrequired;
    const char *www_auth; /* NULL: no "www_authenticate" */

    /* Lazily computed by the const getters (the decision is used by one
     * thread at a time, so filling these caches needs no lock). */
    bool hash_done;
    char args_hash[65];
    bool redacted_done;
    char *redacted; /* malloc'd */
    bool chain_done;
    char *chain_text; /* malloc'd */

    /* The arena: a bump allocator over the inline block, then chunks. */
    char *arena_cur;
    size_t arena_left;
    dec_chunk *chunks;

    dec_reason reasons_inline[DEC_INLINE_REASONS];
    dec_match matched_inline[DEC_INLINE_MATCHED];
    alignas(max_align_t) char arena_inline[DEC_ARENA_INLINE];
};

/* Returns a new empty decision holding a reference to p, or NULL on OOM. */
trine_decision *dec_new(const trine_policy *p);

/* Returns n bytes of arena memory aligned for any type, or NULL on OOM. The
 * memory lives until the decision is freed. */
void *dec_alloc(trine_decision *d, size_t n);

/* Copies n bytes at s into the arena with a NUL after them. Returns the copy
 * or NULL on OOM. */
char *dec_strndup(trine_decision *d, const char *s, size_t n);

/* Formats into the arena. Returns the text or NULL on OOM. */
char *dec_printf(trine_decision *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a reasons entry (copied; its strings are not). Returns the entry
 * in the decision, or NULL on OOM. */
dec_reason *dec_add_reason(trine_decision *d, const dec_reason *r);

/* Appends a matched entry unless the same (set, agent, rule) is already
 * there. Returns 0 or TRINE_ENOMEM. */
int dec_add_match(trine_decision *d, const char *set, const char *agent,
                  const char *file, unsigned line);

/* Ensures d->args_hash holds the hash of the canonical arguments ({} when
 * absent). Returns 0 or TRINE_ENOMEM. */
int dec_args_hash(trine_decision *d);

/* ---- The request and its token claims (claims.c) ----------------------- */

/* The fields of a check request, borrowed from params. */
typedef struct eval_req {
    const char *server;
    size_t server_len;
    const char *tool;
    size_t tool_len;
    const json_t *args; /* NULL when absent */
    const json_t *token;
    const char *session; /* NULL when absent or null */
    size_t session_len;
} eval_req;

/* Reads and validates the params of a check request (DESIGN §2.5
 * "Requests"). Returns 0, or TRINE_EREQUEST with a message naming the field
 * in err (when errlen > 0). */
int eval_read_request(const json_t *params, eval_req *r, char *err,
                      size_t errlen);

/* Writes msg into err (when errlen > 0). Returns TRINE_EREQUEST. */
int eval_req_error(char *err, size_t errlen, const char *msg);

#define CLAIMS_MAX_ACTORS 16

typedef enum claim_exp {
    CLAIM_EXP_NONE = 0, /* no exp: no expiry check */
    CLAIM_EXP_SET,      /* exp holds the claim */
    CLAIM_EXP_BAD       /* present but not a number */
} claim_exp;

/* One actor as read from the token: id is borrowed from the token (NULL
 * when the actor has no usable id; why then says what is wrong). */
typedef struct claim_actor {
    const char *id;
    size_t len;
    const char *why;
} claim_actor;

/* What a check needs from the token's claims. Every pointer is borrowed from
 * the token object; nothing is allocated. */
typedef struct claims {
    claim_exp exp_state;
    double exp;
    const json_t *aud;
    const char *sub; /* NULL when missing or not usable */
    size_t sub_len;
    const char *sub_problem; /* static detail when sub is NULL */
    const char *agent;       /* client_id, else azp; NULL when none */
    size_t agent_len;
    bool agent_nul;            /* the agent id holds a NUL character */
    const char *agent_problem; /* static detail when agent is NULL */
    const json_t *scopes;      /* the scope source: string, array or NULL */
    const json_t *groups;
    const json_t *roles;
    bool has_act; /* an actor exists (act present, not null) */
    claim_actor actors[CLAIMS_MAX_ACTORS];
    size_t nactors;
    bool truncated; /* the chain was deeper than the cap */
} claims;

/* Reads the claims of token (a JSON object). Never fails. */
void claims_read(claims *c, const json_t *token);

/* True when the token's aud (a string or an array of strings) contains one
 * of the n audiences. */
bool claims_aud_match(const claims *c, const char *const *aud, size_t n);

/* Iterates over the values of a string-or-array claim: a space-separated
 * string (split = true) or a lone string (split = false) yields its parts,
 * an array yields its string elements (each whole); anything else nothing.
 */
typedef struct claim_iter {
    const json_t *src;
    bool split;
    size_t idx;
    size_t pos;
    const char *str; /* src's text when it is a string, else NULL */
    size_t len;
} claim_iter;

void claims_iter_init(claim_iter *it, const json_t *src, bool split);
/* Stores the next value in *s and *len and returns true, or returns false at
 * the end. Empty parts of a split string are skipped. */
bool claims_iter_next(claim_iter *it, const char **s, size_t *len);

/* ---- Templates (template.c) -------------------------------------------- */

/* Returns the argument at path (npath segments) in args, or NULL when it is
 * absent, null, or a segment leads through a non-object. */
const json_t *tmpl_lookup(const json_t *args, const char *const *path,
                          size_t npath);

/* Returns NULL when v is safe to fill into a needs placeholder ({p}, or
 * {p...} when rest), else a static phrase saying why not ("must not contain
 * '/'"). v NULL means the argument is missing. */
const char *tmpl_value_problem(const json_t *v, bool rest);

/* Fills a needs template into the arena from vals, the value of each part
 * (NULL for literal parts), every one of which has passed
 * tmpl_value_problem. With mask, a redacted placeholder is filled with
 * "[redacted]" (the audit log's copy). Returns 0 with *out and *len set,
 * TRINE_EINVAL when a value is not a string or an integer after all, or
 * TRINE_ENOMEM. */
int tmpl_fill_values(trine_decision *d, const cpl_template *t,
                     const json_t *const *vals, bool mask, const char **out,
                     size_t *len);

/* Looks every placeholder of t up in args, checks it, and fills t into the
 * arena. Returns 0 with *out and *len set, TRINE_EINVAL when a value is
 * missing or unsafe, or TRINE_ENOMEM. */
int tmpl_fill_needs(trine_decision *d, const cpl_template *t,
                    const json_t *args, const char **out, size_t *len);

/* The values of the reserved prompt names; any may be NULL (empty). */
typedef struct tmpl_vars {
    const char *agent;
    const char *user;
    const char *server;
    const char *tool;
} tmpl_vars;

/* Fills a consent prompt (t NULL: the default prompt) into the arena:
 * reserved names from vars; any other placeholder is an argument, a string
 * as is, a number as its JSON text, anything else empty; with mask, a
 * redacted argument is "[redacted]". Returns 0 with
 * *out and *len set (the text may hold NUL bytes from argument strings), or
 * TRINE_ENOMEM. */
int tmpl_fill_prompt(trine_decision *d, const cpl_template *t,
                     const json_t *args, const tmpl_vars *vars, bool mask,
                     const char **out, size_t *len);

/* The default prompt, as written. */
extern const char tmpl_default_prompt[];

/* Checks one `arg` constraint against v (NULL: absent or null; only
 * `required` applies then). Returns 0 when it holds, 1 when it fails (with
 * a detail in the arena in *why), or TRINE_ENOMEM. */
int eval_check_arg(trine_decision *d, const cpl_arg *a, const json_t *v,
                   const char **why);

/* ---- Canonical JSON (canon.c) ------------------------------------------ */

/* Appends the canonical JSON of v to b. Values at the n redact paths are
 * written as "[redacted]" (paths may be NULL when n is 0). Returns 0,
 * TRINE_ENOMEM, or TRINE_EINVAL for a value nested too deeply or not JSON. */
int canon_write(strbuf *b, const json_t *v, const cpl_path *redact, size_t n);

/* Writes into hex the SHA-256 of the value form of the arguments (NULL:
 * none, as {}): canonical JSON without null members, integral reals as
 * integers. Returns 0, TRINE_EINVAL (too deep) or TRINE_ENOMEM. */
int canon_args_sha256(const json_t *args, char hex[65]);

/* Writes the shortest text of x that reads back as x, always with a '.' or
 * an 'e' ("1.0", "1e+20"), into buf. Returns its length. */
size_t canon_real(double x, char buf[32]);

/* Writes the lowercase hex SHA-256 of len bytes at data into hex. Returns 0,
 * or TRINE_ENOMEM (hex is then the empty string) when OpenSSL could not
 * allocate what hashing needs. */
int canon_sha256_hex(const void *data, size_t len, char hex[65]);

/* ---- Step-up (cover.c) ------------------------------------------------- */

/* A needed (action, resource) pair of a check. */
typedef struct eval_pair {
    const char *action;
    size_t alen;
    const char *res;
    size_t rlen;
    const char *res_audit; /* res as the audit log keeps it: res itself
                              unless the template fills a redacted value */
} eval_pair;

/* Fills in required_scopes and www_authenticate of d for a deny where only
 * S fell short: the greedy cover, over p's scope blocks, of the nfail pairs
 * whose indexes are in fail; then the header's scope list (the nheld held
 * scope blocks that grant any of the npairs needed pairs, in token order,
 * then the required ones). With nothing to cover, required_scopes is empty
 * and there is no header. Returns 0 or TRINE_ENOMEM. */
int cover_step_up(trine_decision *d, const trine_policy *p,
                  const eval_pair *pairs, size_t npairs, const size_t *fail,
                  size_t nfail, const cpl_block *const *held, size_t nheld,
                  const char *resource_metadata);

/* True when scope block b, on its own, grants (action, resource): one of
 * its allows matches and none of its denies does. */
bool cover_grants(const cpl_block *b, const char *action, size_t alen,
                  const char *res, size_t rlen);

/* Greedy set cover. grants is an nscopes x npairs matrix (row-major, nonzero
 * where scope i grants pair j). Each round picks the scope that grants the
 * most still-uncovered pairs (ties to the lowest index) until no scope adds
 * anything; pairs no scope grants stay uncovered. Writes the picked indices
 * in pick order to picked (room for nscopes) and returns how many. Needs
 * npairs bytes of scratch in seen. */
size_t cover_greedy(const unsigned char *grants, size_t nscopes, size_t npairs,
                    unsigned char *seen, size_t *picked);

/* Builds the WWW-Authenticate value
 *   Bearer error="insufficient_scope", scope="<S>"[, resource_metadata="<rm>"]
 * where S is the n scope names in order with repeats dropped, space-separated.
 * Quotes and backslashes in names are escaped. Returns the text in the arena
 * or NULL on OOM. */
const char *cover_www_authenticate(trine_decision *d, const char *const *scopes,
                                   size_t n, const char *resource_metadata);

#endif /* TRINE_DECISION_H */
