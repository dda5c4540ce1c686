/*
 * util.h - what the subcommands of `trine` share: reading a file (or stdin)
 * into memory, parsing flags and numbers, printing untrusted text safely, and
 * the in-memory consent grants that `trine check --consents` and `trine test`
 * seed. Uses only the public API.
 */
#ifndef TRINE_CLI_UTIL_H
#define TRINE_CLI_UTIL_H

#include "trine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses shared by every subcommand (DESIGN §6). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_CONSENT = 2,
    CLI_EXIT_USAGE = 3
};

/* The largest file the CLI reads into memory (policy sources, requests,
 * test files): anything larger is refused rather than exhausting memory. */
#define CLI_MAX_FILE (64u * 1024u * 1024u)

/* Reads all of path ("-" means standard input) into a new NUL-terminated
 * buffer. Returns 0 with *out (caller-owned, free()) and *len set, or -1
 * with errno set (EFBIG past CLI_MAX_FILE, ENOMEM, or the system's error). */
int cli_read_file(const char *path, char **out, size_t *len);

/* Returns the part of path after its last '/' (a pointer into path). */
const char *cli_basename(const char *path);

/* Matches argv[*i] against the long option name ("--policy"), in either
 * form "--policy VALUE" or "--policy=VALUE". Returns 1 and sets *value
 * (advancing *i past a separate value) when it matches, 0 when argv[*i] is
 * another option, or -1 after printing "trine CMD: NAME needs a value" when
 * the value is missing. */
int cli_opt_value(const char *cmd, int argc, char **argv, int *i,
                  const char *name, const char **value);

/* True when arg is exactly the flag name (flags take no "=VALUE"). */
bool cli_flag(const char *arg, const char *name);

/* Parses a whole decimal integer (optional '-', digits only). Returns true
 * with *out set, false on anything else or on overflow. */
bool cli_parse_int64(const char *s, int64_t *out);

/* Writes s to out with every control character (U+0000-U+001F, U+007F,
 * U+0080-U+009F) and every invalid UTF-8 byte shown as \xNN, so that text
 * taken from a request or a test file cannot drive the terminal. */
void cli_put_safe(FILE *out, const char *s);

/* Writes v as compact JSON (any value, not only objects) on out, through
 * cli_put_safe. Writes "(absent)" for NULL. */
void cli_put_json(FILE *out, const json_t *v);

/* Parses buf (len bytes) as JSON, refusing duplicate object keys. On
 * failure returns NULL and writes "line L, column C: message" into err. */
json_t *cli_parse_json(const char *buf, size_t len, char *err, size_t errlen);

/* Loads the policy directory dir into *out, its diagnostics into diag. On
 * failure prints them to stderr, and when the loader placed none (an I/O
 * error it could not pin on a file), one line "trine CMD: DIR: why". Returns
 * the loader's code. */
int cli_load_policy(const char *cmd, const char *dir, trine_diag *diag,
                    trine_policy **out);

/* Connects a blocking, close-on-exec Unix stream socket to path (the
 * daemon's socket). Returns the descriptor (the caller closes it), or -1
 * with "cannot connect to PATH: <reason>" (or why the path is unusable) in
 * err. */
int cli_unix_connect(const char *path, char *err, size_t errlen);

/* ---- Seeded consent grants --------------------------------------------- */

/* Live consent grants held in memory: the consent store of `trine check
 * --consents` and of each `trine test` case. */
typedef struct cli_seeds cli_seeds;

/* Builds seeds from a JSON array of grants:
 *   {"user", "agent", "server", "tool", "mode": "session"|"once"|"always",
 *    "session"?, "arguments"?, "expires"?}
 * `session` (a string or null, in any mode) binds a session grant (one
 * without a non-empty session never counts); `arguments` only with always
 * mode (the grant then binds to the canonical
 * hash of those arguments; without it, to any arguments); `expires` (unix
 * seconds) makes a grant stop counting at that time. NULL arr means no
 * grant. Returns 0 with *out (free with cli_seeds_free), TRINE_EINVAL with
 * a message naming the offending element in err, or TRINE_ENOMEM. */
int cli_seeds_new(const json_t *arr, cli_seeds **out, char *err, size_t errlen);

void cli_seeds_free(cli_seeds *s);

/* The trine_consent_fn over seeds (ctx is a cli_seeds *): returns 1 with
 * *grant_id (the grant's 1-based position) when a live grant matches the
 * query, else 0. A matching `always` grant is consumed. */
int cli_seeds_lookup(void *ctx, const trine_consent_query *q,
                     int64_t *grant_id);

#endif /* TRINE_CLI_UTIL_H */
