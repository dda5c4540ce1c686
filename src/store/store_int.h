/*
 * store_int.h - what the files of the store share and nothing else sees:
 * the handle, its cached statements and its error helpers.
 */
#ifndef TRINE_STORE_INT_H
#define TRINE_STORE_INT_H

#include <openssl/evp.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "store/store.h"

/* The statements a handle prepares once and keeps. Each name's SQL lives in
 * store.c, next to the schema it depends on. */
typedef enum store_stmt_id {
    STMT_HEAD = 0,
    STMT_INSERT_DECISION,
    STMT_INSERT_FACTS,
    STMT_GET_DECISION,
    STMT_CONSENT_INSERT,
    STMT_CONSENT_FIND,
    STMT_CONSENT_MARK_USED,
    STMT_CONSENT_REVOKE_ID,
    STMT_CONSENT_REVOKE_USER,
    STMT_CONSENT_LIST,
    STMT_CONSENT_GET,
    STMT_CONSENT_BY_DECISION,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_COUNT
} store_stmt_id;

struct store {
    sqlite3 *db;
    bool readonly;
    bool in_txn; /* between audit_begin and commit/rollback */
    char errmsg[256];
    int last_rc; /* SQLite's code of the last failure */
    sqlite3_stmt *stmt[STMT_COUNT];

    /* The chain head: the last committed row, and the last appended one
     * (equal outside a transaction). */
    int64_t head_id;
    unsigned char head_hash[32];
    int64_t cur_id;
    unsigned char cur_hash[32];
    bool head_loaded;
    int wal_pages; /* WAL size after the last commit (manual_checkpoint) */

    /* Writers and checkpointers: the database's path, its WAL's, and the
     * files found there at open (files.c). */
    char *path;
    char *wal_path;
    store_files files;
    int64_t default_max_pages; /* max_page_count before any limit */
    int64_t limit_bytes;       /* the size limit in force; 0: none */

    strbuf canon;   /* the canonical text of the row being hashed */
    strbuf rowbuf;  /* the strings audit_get and consent_get hand out */
    EVP_MD_CTX *md; /* reused for every row hash */
    EVP_MD *sha256; /* fetched once: an implicit fetch per row is slow */
};

/* Returns the cached statement id, preparing it on first use, reset and with
 * its bindings cleared; NULL on failure (the message in s->errmsg). */
sqlite3_stmt *store_stmt(store *s, store_stmt_id id);

/* Loads the last committed row's id and hash as the chain head (a writer
 * only). Returns 0 or a negative code. */
int store_load_head(store *s);

/* Records SQLite's message for rc on s and returns the matching code:
 * TRINE_ENOMEM for SQLITE_NOMEM, TRINE_EIO otherwise. SQLITE_FULL under a
 * size limit is recorded as "audit log full (N bytes)". */
int store_fail(store *s, int rc);

/* Records the paths of a writer or checkpointer and the files found there
 * (files.c). Returns 0, 1 when the database file at path is not the one
 * the connection opened (replaced meanwhile), or a negative code. */
int store_files_record(store *s, const char *path);

/* Records a formatted message of our own on s and returns code. */
int store_failf(store *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Steps a bound INSERT or UPDATE (rc: the result of its binds) to
 * completion, then resets it and drops its bindings (they point at the
 * caller's memory). Returns 0 or a negative code. */
int store_run(store *s, sqlite3_stmt *st, int rc);

/* Binds s (NULL binds SQL NULL) as text to parameter i. Returns SQLite's
 * code. */
int store_bind_text(sqlite3_stmt *st, int i, const char *s);

/* Binds v, or NULL when v is -1. Returns SQLite's code. */
int store_bind_opt_int(sqlite3_stmt *st, int i, int64_t v);

/* Returns column i as text, or NULL when the column is NULL. */
const char *store_col_text(sqlite3_stmt *st, int i);

/* Returns column i as an integer, or -1 when the column is NULL. */
int64_t store_col_opt_int(sqlite3_stmt *st, int i);

/* Copies n strings (any may be NULL) into s->rowbuf and points each of
 * *ptrs[k] at its copy, so they outlive the statement they came from.
 * Returns 0 or TRINE_ENOMEM. */
int store_keep_strings(store *s, const char **ptrs[], size_t n);

/* Computes SHA-256(prev_hash || canonical row) with the handle's buffers
 * (audit.c). Returns 0 or a negative code. */
int audit_hash_with(store *s, const audit_row *row, unsigned char hash[32]);

/* Fills row from the current result row of a statement selecting
 * AUDIT_COLUMNS (audit.c). Its strings point into the statement. */
void audit_row_from_stmt(sqlite3_stmt *st, audit_row *row);

/* A decision with its facts (decision_facts), for reading. */
#define AUDIT_FROM                                                             \
    "decisions LEFT JOIN decision_facts"                                       \
    " ON decision_facts.decision_id = decisions.id"

/* The columns of AUDIT_FROM in the order audit_row_from_stmt reads them. */
#define AUDIT_COLUMNS                                                          \
    "decisions.id, ts_ms, policy_rev, server, tool, user, agent, chain, "      \
    "session, decision, reason, arguments, detail, "                           \
    "decision_facts.args_sha256, prev_hash, hash, decision_facts.token"

/* The same from decisions alone, NULL standing in for the facts: what the
 * hash chain covers, for verifying it. */
#define AUDIT_CHAIN_COLUMNS                                                    \
    "id, ts_ms, policy_rev, server, tool, user, agent, chain, session, "       \
    "decision, reason, arguments, detail, NULL, prev_hash, hash, NULL"

#endif /* TRINE_STORE_INT_H */
