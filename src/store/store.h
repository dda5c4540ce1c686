/*
 * store.h - the audit log and the consent tables (DESIGN §4, §2.4 step 6).
 *
 * This is the one place that knows the SQLite schema: the daemon writes
 * decisions and consents through it, the CLI reads and verifies through it,
 * and nothing else issues SQL. Every statement binds its values; none is
 * built from data.
 *
 * A store handle is one SQLite connection. It is not shared between threads:
 * give each thread its own handle. Readers open the file read-only and see
 * committed rows while a writer appends (the database is in WAL mode).
 *
 * Every function returns 0 on success or a negative TRINE_E* code:
 * TRINE_EIO when SQLite fails (store_errmsg() then names the cause),
 * TRINE_ENOMEM when memory runs out, TRINE_EINVAL for a bad argument. A few
 * documented functions return 1 (found) and 0 (not found) as well.
 */
#ifndef TRINE_STORE_H
#define TRINE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trine.h"

typedef struct store store;

/* How to open a store. A zeroed struct opens a writer with synchronous=FULL
 * and a 5000 ms busy timeout. */
typedef struct store_opts {
    bool readonly;       /* open with SQLITE_OPEN_READONLY; never create */
    bool sync_normal;    /* synchronous=NORMAL instead of FULL (writer) */
    int busy_timeout_ms; /* 0: the default, 5000 ms; negative: do not wait */
    /* Writer: commits never checkpoint the WAL (SQLite's automatic
     * checkpoint would run inside the commit that passes its threshold,
     * and stall it). The caller watches store_wal_pages and runs
     * store_checkpoint on a second connection. */
    bool manual_checkpoint;
    /* Open an existing database only to checkpoint it: read-write, never
     * create, no schema work; sync_normal applies to its syncs. */
    bool checkpointer;
    /* Writer: the most bytes the database may hold, 0 for no limit. See
     * store_set_max_bytes. */
    int64_t max_bytes;
    /* Checkpointer: when known, the open fails (TRINE_EIO) unless the file
     * at the path is this one, checked before anything is read: reading
     * would apply the WAL at the path, which may be another file's. */
    const struct store_file_id *expect_db;
} store_opts;

#define STORE_BUSY_TIMEOUT_DEFAULT_MS 5000

/* Opens (a writer creates) the database at path, sets its pragmas
 * (journal_mode=WAL, synchronous, busy_timeout, foreign_keys=off) and
 * creates the schema when missing. A reader checks the file holds the
 * schema. On success *out is a new handle (free with store_close). On
 * failure *out is NULL, a message naming path is written to err (when
 * errlen > 0), and TRINE_EIO, TRINE_ENOMEM or TRINE_EINVAL is returned. */
int store_open(const char *path, const store_opts *o, store **out, char *err,
               size_t errlen);

/* Rolls back any open transaction and closes the connection. NULL is a
 * no-op. */
void store_close(store *s);

/* Returns the message of the last failure on s (SQLite's, or ours).
 * Owned by s; valid until the next call on s. */
const char *store_errmsg(const store *s);

/* A writer opened with manual_checkpoint: the number of pages in the WAL
 * after its last commit (0 before the first). Other handles: 0. */
int store_wal_pages(const store *s);

/* Runs a passive checkpoint: copies what it can of the WAL into the
 * database and syncs it, without waiting for a lock and without blocking
 * the writer or readers. *wal_pages gets the WAL's size in pages and *done
 * the pages now copied (either may be NULL). Returns 0; 1 when another
 * checkpoint was running or the database was locked (try again later); or
 * a negative code. */
int store_checkpoint(store *s, int *wal_pages, int *done);

/* Limits the size of a writer's database to bytes (0: no limit): SQLite's
 * max_page_count, rounded down to whole pages, and never below the pages
 * the database already holds. A write that needs more fails as on a full
 * disk: the transaction is rolled back, TRINE_EIO is returned and
 * store_errmsg says "audit log full (N bytes)". Returns 0 or a negative
 * code. */
int store_set_max_bytes(store *s, int64_t bytes);

/* The size limit SQLite enforces on s, in bytes (0: none). */
int64_t store_limit_bytes(const store *s);

/* True when the last failure on s was a write past that size limit. */
bool store_at_limit(const store *s);

/* ---- The files under a connection (files.c) ----------------------------- */

/* Which file a path names: its device and inode, when it exists. */
typedef struct store_file_id {
    uint64_t dev;
    uint64_t ino;
    bool known; /* false: the file did not exist */
} store_file_id;

/* The three files of a database in WAL mode. */
typedef struct store_files {
    store_file_id db;
    store_file_id wal; /* PATH-wal */
    store_file_id shm; /* PATH-shm */
} store_files;

/* The files a writer or checkpointer handle found at its path when it was
 * opened (all unknown for a reader). Owned by s. */
const store_files *store_files_of(const store *s);

/* True when a and b are known and name the same file. */
bool store_same_file(const store_file_id *a, const store_file_id *b);

/* Fills *out with the files at path now. */
void store_files_at(const char *path, store_files *out);

/* Tells whether the database file or the WAL at s's path is no longer the
 * one s's connection uses: deleted, renamed away, or replaced by another
 * file. A connection in that state writes where no reader will ever look.
 * Returns 0 when both are in place, 1 when either moved (the message is
 * then in store_errmsg), or a negative code. Costs two stat calls. */
int store_moved(store *s);

/* Checks that this process may still write the database file at s's path
 * (its mode, or a read-only file system): an open connection keeps writing
 * through its descriptors after a chmod, so the check is made by path.
 * Returns 0, or TRINE_EIO with "audit log is read-only (...)" in
 * store_errmsg. */
int store_writable(store *s);

/* Like store_writable, by path alone, for a store not open yet: returns 0
 * when path can be written or does not exist (a writer creates it), else
 * TRINE_EIO with "audit log is read-only (...)" in err. */
int store_path_writable(const char *path, char *err, size_t errlen);

/* Removes PATH-wal and PATH-shm when they are the files stale names: the
 * WAL and shared memory of a database file that was deleted or replaced.
 * SQLite would otherwise apply that WAL's pages to whatever file is now at
 * path. Files that are not those (a new database's own) are left alone.
 * Call it only once no connection of this process uses the old files.
 * Returns the number of files removed. */
int store_remove_stale(const char *path, const store_files *stale);

/* Syncs the database file to disk (data only) through the connection's
 * own descriptor. A descriptor of the caller's on the same file would do,
 * but closing it would drop every POSIX lock this process holds on the
 * file, SQLite's included. Returns 0, or TRINE_EIO with the reason in
 * store_errmsg. */
int store_sync_db(store *s);

/* ---- The audit log ----------------------------------------------------- */

/* One row of the decisions table, with its facts (decision_facts).
 * policy_rev, server, tool, decision, reason and detail are required; the
 * other strings may be NULL. arguments, chain and detail hold JSON texts.
 * The facts are not hashed: args_sha256 is the hex SHA-256 of the canonical
 * JSON of the request's unredacted arguments (kept for consent_required
 * decisions); token says how a bearer token was verified. */
typedef struct audit_row {
    int64_t id;
    int64_t ts_ms;
    const char *policy_rev;
    const char *server;
    const char *tool;
    const char *user;
    const char *agent;
    const char *chain;
    const char *session;
    const char *decision; /* "allow", "deny" or "consent_required" */
    const char *reason;
    const char *arguments;
    const char *detail;
    const char *args_sha256;
    /* How a bearer token was verified: a JSON object text ({"via",
     * "outcome", "iss", "sub", "client_id", "jti"}), NULL for a check that
     * carried validated claims. */
    const char *token;
    unsigned char prev_hash[32];
    unsigned char hash[32];
} audit_row;

/* Returns the id the next audit_append will take (the last row's id + 1,
 * counting rows appended in the open transaction), so the writer can put
 * audit_id into the detail JSON before appending. Call it after audit_begin
 * to be sure no other writer got in between. Returns -1 when the chain head
 * cannot be read (store_errmsg says why). */
int64_t audit_next_id(store *s);

/* Starts a write transaction (BEGIN IMMEDIATE, waiting up to the busy
 * timeout for the lock) and reloads the chain head from the database. */
int audit_begin(store *s);

/* Appends row, which must carry row->id == audit_next_id(s) (else
 * TRINE_EINVAL). Fills row->prev_hash and row->hash, and advances the
 * in-memory chain head. Outside a transaction the row is committed on its
 * own. Inside one, a failed append leaves the transaction open: roll it
 * back. */
int audit_append(store *s, audit_row *row);

/* Commits the open transaction. On failure it rolls back, the in-memory
 * chain head returns to the last committed row, and TRINE_EIO is returned:
 * none of the rows appended since audit_begin exist. */
int audit_commit(store *s);

/* Rolls back the open transaction (if any); the chain head returns to the
 * last committed row. */
void audit_rollback(store *s);

/* Reads row id into *out. Returns 1 when found, 0 when there is no such row,
 * or a negative code. The strings in *out are owned by s and stay valid
 * until the next call on s. */
int audit_get(store *s, int64_t id, audit_row *out);

/* Which rows audit_query and audit_stats look at. Zero fields do not
 * filter: since_ms/until_ms 0 are unbounded (since is inclusive, until is
 * inclusive), NULL strings match anything, limit 0 is no limit. */
typedef struct audit_filter {
    int64_t since_ms;
    int64_t until_ms;
    const char *user;
    const char *agent;
    const char *tool;
    const char *decision;
    int64_t limit;
} audit_filter;

/* Called for each row; its strings are valid during the call only. A
 * nonzero return stops the query, and audit_query returns that value. */
typedef int (*audit_row_fn)(void *ctx, const audit_row *row);

/* Calls fn for every row that passes f (NULL: all rows), oldest first. With
 * a limit, the newest limit rows, still oldest first. Returns 0, fn's
 * nonzero return, or a negative code. */
int audit_query(store *s, const audit_filter *f, audit_row_fn fn, void *ctx);

/* Counts the rows that pass f (its limit is ignored). On success *out is a
 * new object {"total":N,"decision":{..},"reason":{..},"tool":{..},
 * "agent":{..}} mapping each value to its count (a row with no agent counts
 * under ""), owned by the caller. */
int audit_stats(store *s, const audit_filter *f, json_t **out);

/* Recomputes the hash chain over every row, oldest first. *rows gets the
 * number of rows read. Returns 0 when intact; 1 when broken, with *bad_id
 * the first bad row and why saying what is wrong ("hash does not match its
 * contents", "prev_hash does not match row N's hash", "row N is missing",
 * ...); or a negative code. Runs in one read snapshot, so a writer may keep
 * appending. */
int audit_verify(store *s, int64_t *rows, int64_t *bad_id, char *why,
                 size_t whylen);

/* Computes the hash of row from row->prev_hash and its other columns,
 * exactly as audit_append does, into hash. Returns 0 or TRINE_ENOMEM. */
int audit_hash_row(const audit_row *row, unsigned char hash[32]);

/* ---- Consents ---------------------------------------------------------- */

/* One row of the consents table. Integer fields use -1 for NULL. mode is
 * "session", "once" or "always"; session binds a session grant, and the
 * arguments of its decision (decision_id; args_sha256, read from that
 * decision's facts, not stored with the grant) an always grant. */
typedef struct consent_row {
    int64_t id;
    const char *user;
    const char *agent;
    const char *server;
    const char *tool;
    const char *mode;
    const char *session;
    const char *args_sha256;
    int64_t granted_ms;
    int64_t expires_ms;
    int64_t revoked_ms;
    int64_t used_ms;
    int64_t decision_id;
} consent_row;

/* Inserts row (its id is ignored) and sets row->id to the new id. user,
 * agent, server, tool and mode are required, mode must be a known one, a
 * session grant needs a non-empty session and an always grant a
 * decision_id and that decision's args_sha256 (else TRINE_EINVAL). */
int consent_insert(store *s, consent_row *row);

/* Looks for a live grant matching q: for the same user, agent, server and
 * tool, of mode q->mode, not revoked, not expired (expires_ms NULL or
 * > q->now_ms); a session grant must carry q->session (non-empty); an always
 * grant must be unused and bound to q->args_hash. Returns 1 with the oldest
 * such grant's id in *id, 0 when there is none, or a negative code. It does
 * not claim an always grant: see consent_mark_used. */
int consent_find(store *s, const trine_consent_query *q, int64_t *id);

/* Marks grant id used at now_ms, only if it is not used yet. Returns 1 when
 * this call marked it, 0 when it was already used or does not exist, or a
 * negative code. */
int consent_mark_used(store *s, int64_t id, int64_t now_ms);

/* Revokes live grants at now_ms: grant id when id >= 0; otherwise every live
 * grant of user (required then) and, when given, agent, server and tool.
 * *count gets the number revoked (a grant that was not live is not counted).
 * Returns 0 or a negative code. */
int consent_revoke(store *s, int64_t id, const char *user, const char *agent,
                   const char *server, const char *tool, int64_t now_ms,
                   int64_t *count);

/* Called for each grant; its strings are valid during the call only. A
 * nonzero return stops the listing and is returned. */
typedef int (*consent_row_fn)(void *ctx, const consent_row *row);

/* Calls fn for every grant live at now_ms (not revoked, not expired, not a
 * used always grant), oldest first, of user and agent when given (NULL
 * matches any). Returns 0, fn's nonzero return, or a negative code. */
int consent_list(store *s, const char *user, const char *agent, int64_t now_ms,
                 consent_row_fn fn, void *ctx);

/* Calls fn for every grant live at now_ms, oldest first, so the daemon can
 * cache them at start. Same returns as consent_list. */
int consent_load_live(store *s, int64_t now_ms, consent_row_fn fn, void *ctx);

/* Reads grant id (live or not) into *out. Returns 1 when found, 0 when not,
 * or a negative code. The strings are owned by s and stay valid until the
 * next call on s. */
int consent_get(store *s, int64_t id, consent_row *out);

/* Finds the first grant ever made (live, used, expired or revoked) from the
 * decision decision_id, writing its id to *id. Returns 1 when one exists, 0
 * when none, or a negative code. One approval makes one grant. */
int consent_by_decision(store *s, int64_t decision_id, int64_t *id);

#endif /* TRINE_STORE_H */
