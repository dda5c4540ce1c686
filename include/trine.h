/*
 * trine.h - the public API of libtrine.
 *
 * libtrine parses, compiles and evaluates trine policies: given a policy and
 * a check request (server, tool, arguments, token claims), it decides whether
 * the intersection of what the user, the token's scopes and the agent may do
 * covers the tool call. See DESIGN.md for the language and the semantics.
 *
 * Conventions:
 *  - Functions return int: 0 on success, a negative TRINE_E* code on failure
 *    (trine_strerror() names it). Rich diagnostics go into a trine_diag.
 *  - Inputs are const and borrowed. Every handle has _new/_free (or
 *    _retain/_release for the shared compiled policy); freeing NULL is a
 *    no-op.
 *  - A compiled trine_policy is immutable: one serves every thread at once
 *    without locks.
 */
#ifndef TRINE_H
#define TRINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TRINE_BUILDING) && defined(__GNUC__)
#define TRINE_API __attribute__((visibility("default")))
#else
#define TRINE_API
#endif

/* ---- Errors ------------------------------------------------------------ */

/* One table: name, value, message. trine_strerror/trine_err_name come from
 * it, so a code can never lack a message. */
#define TRINE_ERRNO_MAP(X)                                                     \
    X(NOMEM, -1, "out of memory")                                              \
    X(IO, -2, "cannot read a file or directory")                               \
    X(POLICY, -3, "the policy has errors")                                     \
    X(REQUEST, -4, "the check request is invalid")                             \
    X(INVAL, -5, "invalid argument")                                           \
    X(CONSENT, -6, "the consent lookup failed")                                \
    X(SYNTAX, -7, "the source has syntax errors")

enum trine_errno {
#define TRINE_ERRNO_ENUM(name, value, msg) TRINE_E##name = (value),
    TRINE_ERRNO_MAP(TRINE_ERRNO_ENUM)
#undef TRINE_ERRNO_ENUM
};

/* Returns a static message for a TRINE_E* code ("unknown error" otherwise). */
TRINE_API const char *trine_strerror(int err);
/* Returns the static name of a TRINE_E* code, e.g. "TRINE_EPOLICY". */
TRINE_API const char *trine_err_name(int err);

/* Frees memory that a trine_* function documents as caller-owned. */
TRINE_API void trine_free(void *p);

/* ---- Diagnostics ------------------------------------------------------- */

typedef enum trine_diag_level {
    TRINE_DIAG_ERROR = 0,
    TRINE_DIAG_WARNING = 1
} trine_diag_level;

/* One diagnostic. Strings are owned by the trine_diag that holds it. line and
 * col are 1-based; 0 means "the whole file" (e.g. an empty directory). */
typedef struct trine_diag_item {
    trine_diag_level level;
    const char *file;
    unsigned line;
    unsigned col;
    const char *message;
} trine_diag_item;

/* A list of diagnostics, filled by loading, linting and formatting. It keeps
 * at most TRINE_DIAG_MAX errors, then one "too many errors" note. */
typedef struct trine_diag trine_diag;
#define TRINE_DIAG_MAX 50

TRINE_API trine_diag *trine_diag_new(void);
TRINE_API void trine_diag_free(trine_diag *d);
/* Number of items (errors and warnings). */
TRINE_API size_t trine_diag_count(const trine_diag *d);
/* Number of errors only. */
TRINE_API size_t trine_diag_errors(const trine_diag *d);
/* Returns item i (borrowed), or NULL when i is out of range. */
TRINE_API const trine_diag_item *trine_diag_at(const trine_diag *d, size_t i);
/* Prints every item, one per line: "file:line:col: message" for errors and
 * "file:line:col: warning: message" for warnings, with control characters
 * and bytes that are not UTF-8 shown as \xNN. Returns 0 or TRINE_EIO. */
TRINE_API int trine_diag_print(const trine_diag *d, FILE *out);

/* ---- Policies ---------------------------------------------------------- */

typedef struct trine_policy trine_policy;

/* One policy source held in memory: a file name (as errors will name it) and
 * its bytes, which need not be NUL-terminated. */
typedef struct trine_source {
    const char *name;
    const char *data;
    size_t len;
} trine_source;

/* Loads every *.trine file of dir (not recursive, sorted by name) as one
 * policy. On success *out holds a new policy with one reference. On failure
 * returns TRINE_EPOLICY (errors in diag, if given), TRINE_EIO or
 * TRINE_ENOMEM, and *out is NULL. Diagnostics name files by their base name
 * (as rules do). */
TRINE_API int trine_policy_load_dir(const char *dir, trine_diag *diag,
                                    trine_policy **out);

/* Same as trine_policy_load_dir, from n sources already in memory, loaded in
 * the order given. */
TRINE_API int trine_policy_load_sources(const trine_source *src, size_t n,
                                        trine_diag *diag, trine_policy **out);

/* Adds a reference; returns p. Thread-safe. */
TRINE_API trine_policy *trine_policy_retain(trine_policy *p);
/* Drops a reference; the last one frees the policy. Thread-safe. */
TRINE_API void trine_policy_release(trine_policy *p);

/* Returns "sha256:<hex>" over each file's name and bytes in load order.
 * Owned by the policy. */
TRINE_API const char *trine_policy_revision(const trine_policy *p);

/* True when a and b were loaded from the same file names with the same
 * bytes. The revision is a plain concatenation, so two different sets of
 * files can share one (a comment swallowing the next file's name); this
 * compares without that ambiguity. */
TRINE_API bool trine_policy_same_sources(const trine_policy *a,
                                         const trine_policy *b);

/* Returns a new object: {"revision", "files":[names], "loaded_at":
 * unix ms, "counts":{"scope":N,"role":N,"user":N,"group":N,"agent":N,
 * "server":N,"tool":N,"forbid":N,"rules":N}}. NULL on allocation failure. */
TRINE_API json_t *trine_policy_status(const trine_policy *p);

/* Returns a new object {"tools":[names, in declaration order],
 * "wildcard":bool} for one server (empty when the policy has none). */
TRINE_API json_t *trine_policy_tools(const trine_policy *p, const char *server);

/* Appends lint warnings to diag: a role bound to no one, a tool no scope could
 * ever grant, a rule made dead by a deny in the same block, a tool for a
 * server with no server block. Returns the number of warnings added, or
 * TRINE_ENOMEM when memory ran out (some warnings may then be missing). */
TRINE_API int trine_policy_lint(const trine_policy *p, trine_diag *diag);

/* Formats one policy source canonically (comments kept). On success *out is
 * a caller-owned NUL-terminated string (free with trine_free) and *outlen its
 * length. A source that does not parse returns TRINE_ESYNTAX with its errors
 * in diag. */
TRINE_API int trine_format(const trine_source *src, trine_diag *diag,
                           char **out, size_t *outlen);

/* ---- Checks ------------------------------------------------------------ */

typedef enum trine_consent_mode {
    TRINE_CONSENT_NONE = 0,
    TRINE_CONSENT_SESSION,
    TRINE_CONSENT_ONCE,
    TRINE_CONSENT_ALWAYS
} trine_consent_mode;

/* Returns "session", "once", "always" (or "none"). */
TRINE_API const char *trine_consent_mode_name(trine_consent_mode m);

/* Looks up the consent a tool demands: the block `tool "<server>" "<tool>"`,
 * else `tool "<server>" *`. Returns 1 with *mode and *duration_s (seconds of
 * `once for D`, -1 without a duration) set when a block applies, 0 when the
 * policy has no block for the tool (mode TRINE_CONSENT_NONE, duration -1),
 * or TRINE_EINVAL when an argument is NULL. */
TRINE_API int trine_policy_tool_consent(const trine_policy *p,
                                        const char *server, const char *tool,
                                        trine_consent_mode *mode,
                                        int64_t *duration_s);

/* What the evaluator asks the consent store (step 6). All strings borrowed
 * for the duration of the call. */
typedef struct trine_consent_query {
    const char *user;
    const char *agent; /* the token's agent (client_id, else azp) */
    const char *server;
    const char *tool;
    trine_consent_mode mode;
    const char *session;   /* NULL when the request carries none */
    const char *args_hash; /* trine_arguments_hash of the arguments for
                              TRINE_CONSENT_ALWAYS (the one mode bound to
                              the arguments); NULL for the others */
    int64_t now_ms;
} trine_consent_query;

/* Looks up a live grant. Returns 1 when one exists (writing its id to
 * *grant_id; for TRINE_CONSENT_ALWAYS the callee claims the grant, so no
 * other check can use it), 0 when none, or a negative TRINE_E* code, in which
 * case the check fails closed (deny). Called from the checking thread. */
typedef int (*trine_consent_fn)(void *ctx, const trine_consent_query *q,
                                int64_t *grant_id);

typedef struct trine_check_opts {
    int64_t now_ms;           /* evaluation time, unix milliseconds */
    trine_consent_fn consent; /* NULL: no grant exists anywhere */
    void *consent_ctx;
} trine_check_opts;

/* The outcome of one check. Immutable once made. */
typedef struct trine_decision trine_decision;

/* Evaluates one check request against p. params is the object of DESIGN
 * §3.1 ("server", "tool", "arguments", "session", "token"); it is borrowed
 * and need not outlive the call. On success *out is a new decision (free with
 * trine_decision_free). A request that is malformed returns TRINE_EREQUEST
 * with a message naming the field in err (if errlen > 0); a failed consent
 * lookup does not fail the call but yields a deny. */
TRINE_API int trine_check(const trine_policy *p, const json_t *params,
                          const trine_check_opts *opts, trine_decision **out,
                          char *err, size_t errlen);

TRINE_API void trine_decision_free(trine_decision *d);

/* "allow", "deny" or "consent_required". Static strings. */
TRINE_API const char *trine_decision_kind(const trine_decision *d);
/* The primary reason code (DESIGN §3.1). Static string. */
TRINE_API const char *trine_decision_reason(const trine_decision *d);

/* Writes the result object of DESIGN §3.1 as compact JSON into buf (at most
 * cap bytes, NUL-terminated when cap > 0), with "audit_id" when audit_id >= 0.
 * Returns the length the full text needs (excluding the NUL), like snprintf;
 * call again with a larger buffer when the return is >= cap. */
TRINE_API size_t trine_decision_write(const trine_decision *d, int64_t audit_id,
                                      char *buf, size_t cap);

/* Like trine_decision_write, the copy of the result the audit log keeps:
 * where the value of an argument the tool `redact`s was filled into a
 * resource or the consent prompt, "[redacted]" stands in its place. The
 * same text as trine_decision_write's unless trine_decision_has_redacted. */
TRINE_API size_t trine_decision_write_audit(const trine_decision *d,
                                            int64_t audit_id, char *buf,
                                            size_t cap);
/* True when some resource or the prompt of d holds a redacted value, so
 * that trine_decision_write_audit differs from trine_decision_write. */
TRINE_API bool trine_decision_has_redacted(const trine_decision *d);

/* Returns the result object (without "audit_id") as a new jansson value, or
 * NULL on allocation failure. */
TRINE_API json_t *trine_decision_result(const trine_decision *d);

/* Facts the daemon records with each decision. Strings are owned by the
 * decision; each may be NULL when the request did not carry it. */
TRINE_API const char *trine_decision_server(const trine_decision *d);
TRINE_API const char *trine_decision_tool(const trine_decision *d);
TRINE_API const char *trine_decision_user(const trine_decision *d);
TRINE_API const char *trine_decision_agent(const trine_decision *d);
TRINE_API const char *trine_decision_session(const trine_decision *d);
/* The delegation chain as a JSON array text of actor ids, outermost (the
 * current actor) first, or NULL without an `act` claim. */
TRINE_API const char *trine_decision_chain(const trine_decision *d);
/* The arguments with every `redact`ed path replaced by "[redacted]", as a
 * compact JSON text (keys sorted), or NULL when the request had none. */
TRINE_API const char *trine_decision_arguments(const trine_decision *d);
/* trine_arguments_hash of the (unredacted) arguments. */
TRINE_API const char *trine_decision_args_hash(const trine_decision *d);
/* The tool's consent mode (TRINE_CONSENT_NONE when it has none or the check
 * stopped before finding the tool), and for `once for D` the duration in
 * seconds (-1 when the mode has none). */
TRINE_API trine_consent_mode
trine_decision_consent_mode(const trine_decision *d);
TRINE_API int64_t trine_decision_consent_duration_s(const trine_decision *d);
/* The id of the grant that allowed this check (from the consent lookup), or
 * -1 when none was used. */
TRINE_API int64_t trine_decision_consent_grant(const trine_decision *d);

/* ---- Canonical JSON ---------------------------------------------------- */

/* Writes v as canonical JSON: compact, object keys sorted by byte value,
 * strings as UTF-8 with only the escapes JSON requires, integers in decimal,
 * reals in the shortest form that reads back the same. On success *out is
 * caller-owned (trine_free). Returns 0 or TRINE_ENOMEM / TRINE_EINVAL. */
TRINE_API int trine_json_canonical(const json_t *v, char **out, size_t *len);

/* Writes into hex (65 bytes with the NUL) the hash that binds an `always`
 * grant to a call's arguments (args an object, or NULL for none): the
 * lowercase hex SHA-256 of their canonical JSON in value form, where a
 * member whose value is null is left out and an integral real is written
 * as an integer, so arguments that evaluate alike ({"n":1}, {"n":1.0,
 * "x":null}) hash alike. It equals trine_decision_args_hash of a decision
 * on those arguments. Returns 0, TRINE_EINVAL or TRINE_ENOMEM. */
TRINE_API int trine_arguments_hash(const json_t *args, char hex[65]);

/* Writes the lowercase hex SHA-256 of len bytes at data into hex (65 bytes
 * with the NUL). When memory runs out hex is the empty string, never a
 * wrong digest. */
TRINE_API void trine_sha256_hex(const void *data, size_t len, char hex[65]);

#ifdef __cplusplus
}
#endif

#endif /* TRINE_H */
