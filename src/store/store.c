/*
 * store.c - opening a store: the connection, its pragmas, the schema, and
 * the cache of prepared statements every other file of the store uses.
 *
 * The SQL of every cached statement is in this file, next to the schema it
 * depends on, so a schema change is made in one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* DESIGN §4 exactly, and decision_facts: what a few decisions need beside
 * their row, kept out of `decisions` so that its columns, and the hash
 * chain over them, are the contract's and nothing else. args_sha256 is the
 * hex SHA-256 of the canonical JSON of the request's unredacted arguments,
 * recorded for consent_required decisions: it binds a single-use `always`
 * grant (through consents.decision_id) to the exact arguments it answers.
 * token says how a bearer token was verified. A decision without either
 * has no facts row, so the common path writes one row per decision. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS decisions ("
    " id           INTEGER PRIMARY KEY,"
    " ts_ms        INTEGER NOT NULL,"
    " policy_rev   TEXT    NOT NULL,"
    " server       TEXT    NOT NULL,"
    " tool         TEXT    NOT NULL,"
    " user         TEXT,"
    " agent        TEXT,"
    " chain        TEXT,"
    " session      TEXT,"
    " decision     TEXT    NOT NULL"
    "   CHECK (decision IN ('allow','deny','consent_required')),"
    " reason       TEXT    NOT NULL,"
    " arguments    TEXT,"
    " detail       TEXT    NOT NULL,"
    " prev_hash    BLOB    NOT NULL,"
    " hash         BLOB    NOT NULL"
    ");"
    "CREATE TABLE IF NOT EXISTS consents ("
    " id INTEGER PRIMARY KEY, user TEXT NOT NULL, agent TEXT NOT NULL,"
    " server TEXT NOT NULL, tool TEXT NOT NULL, mode TEXT NOT NULL,"
    " session TEXT, granted_ms INTEGER NOT NULL, expires_ms INTEGER,"
    " revoked_ms INTEGER, used_ms INTEGER, decision_id INTEGER"
    ");"
    "CREATE TABLE IF NOT EXISTS decision_facts ("
    " decision_id  INTEGER PRIMARY KEY,"
    " args_sha256  TEXT,"
    " token        TEXT"
    ");"
    "CREATE INDEX IF NOT EXISTS decisions_ts_ms ON decisions (ts_ms);"
    "CREATE INDEX IF NOT EXISTS consents_key"
    " ON consents (user, agent, server, tool);";

/* The args_sha256 of a consent's decision. */
#define CONSENT_ARGS                                                           \
    "(SELECT args_sha256 FROM decision_facts"                                  \
    " WHERE decision_facts.decision_id = consents.decision_id)"

#define CONSENT_COLUMNS                                                        \
    "id, user, agent, server, tool, mode, session, " CONSENT_ARGS              \
    ", granted_ms, expires_ms, revoked_ms, used_ms, decision_id"

/* A grant is live at ?N when it is not revoked, not expired, and not an
 * always grant already consumed. */
#define CONSENT_LIVE(n)                                                        \
    "revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?" n ")"       \
    " AND NOT (mode = 'always' AND used_ms IS NOT NULL)"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_HEAD] = "SELECT id, hash FROM decisions ORDER BY id DESC LIMIT 1",
    [STMT_INSERT_DECISION] =
        "INSERT INTO decisions (id, ts_ms, policy_rev, server, tool, user,"
        " agent, chain, session, decision, reason, arguments, detail,"
        " prev_hash, hash)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15)",
    [STMT_INSERT_FACTS] = "INSERT INTO decision_facts (decision_id,"
                          " args_sha256, token) VALUES (?1, ?2, ?3)",
    [STMT_GET_DECISION] =
        "SELECT " AUDIT_COLUMNS " FROM " AUDIT_FROM " WHERE decisions.id = ?1",
    [STMT_CONSENT_INSERT] =
        "INSERT INTO consents (user, agent, server, tool, mode, session,"
        " granted_ms, expires_ms, revoked_ms, used_ms, decision_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [STMT_CONSENT_FIND] =
        "SELECT id FROM consents"
        " WHERE user = ?1 AND agent = ?2 AND server = ?3 AND tool = ?4"
        " AND mode = ?5 AND revoked_ms IS NULL"
        " AND (expires_ms IS NULL OR expires_ms > ?6)"
        " AND (?5 <> 'session' OR (session = ?7 AND session <> ''))"
        " AND (?5 <> 'always' OR (used_ms IS NULL AND " CONSENT_ARGS " = ?8))"
        " ORDER BY id LIMIT 1",
    [STMT_CONSENT_MARK_USED] =
        "UPDATE consents SET used_ms = ?2 WHERE id = ?1 AND used_ms IS NULL",
    [STMT_CONSENT_REVOKE_ID] =
        "UPDATE consents SET revoked_ms = ?2 WHERE id = ?1"
        " AND " CONSENT_LIVE("2"),
    [STMT_CONSENT_REVOKE_USER] =
        "UPDATE consents SET revoked_ms = ?1 WHERE user = ?2"
        " AND (?3 IS NULL OR agent = ?3) AND (?4 IS NULL OR server = ?4)"
        " AND (?5 IS NULL OR tool = ?5) AND " CONSENT_LIVE("1"),
    [STMT_CONSENT_LIST] =
        "SELECT " CONSENT_COLUMNS " FROM consents WHERE " CONSENT_LIVE(
            "1") " AND (?2 IS NULL OR user = ?2) AND (?3 IS NULL OR agent = ?3)"
                 " ORDER BY id",
    [STMT_CONSENT_GET] =
        "SELECT " CONSENT_COLUMNS " FROM consents WHERE id = ?1",
    [STMT_CONSENT_BY_DECISION] =
        "SELECT id FROM consents WHERE decision_id = ?1 ORDER BY id LIMIT 1",
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
};

/* Names the size limit as the cause of SQLITE_FULL when one is set: the
 * operator then knows which knob to turn. Returns true when it did. */
static bool store_full_msg(store *s, int rc)
{
    if ((rc & 0xff) != SQLITE_FULL || s->limit_bytes <= 0)
        return false;
    snprintf(s->errmsg, sizeof s->errmsg, "audit log full (%lld bytes)",
             (long long)s->limit_bytes);
    return true;
}

int store_fail(store *s, int rc)
{
    const char *msg =
        s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (!store_full_msg(s, rc))
        snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
    s->last_rc = rc;
    return (rc & 0xff) == SQLITE_NOMEM ? TRINE_ENOMEM : TRINE_EIO;
}

int store_failf(store *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *store_errmsg(const store *s)
{
    if (s == NULL)
        return "no store";
    return s->errmsg;
}

int store_wal_pages(const store *s)
{
    return s != NULL ? s->wal_pages : 0;
}

/* SQLite calls this after each commit of a manual_checkpoint writer with
 * the WAL's size in pages. Installing it also replaces SQLite's automatic
 * checkpoint, which is itself a WAL hook. */
static int store_wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((store *)ctx)->wal_pages = pages;
    return SQLITE_OK;
}

int store_checkpoint(store *s, int *wal_pages, int *done)
{
    int log = 0;
    int ckpt = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &ckpt);
    if (wal_pages != NULL)
        *wal_pages = log;
    if (done != NULL)
        *done = ckpt;
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        store_fail(s, rc);
        return 1;
    }
    return store_fail(s, rc);
}

sqlite3_stmt *store_stmt(store *s, store_stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    if (st == NULL) {
        const char *sql = stmt_sql[id];
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &st, NULL);
        if (rc != SQLITE_OK) {
            store_fail(s, rc);
            return NULL;
        }
        s->stmt[id] = st;
        return st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

int store_run(store *s, sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

int store_bind_text(sqlite3_stmt *st, int i, const char *str)
{
    if (str == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, str, -1, SQLITE_STATIC);
}

int store_bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == -1)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_int64(st, i, v);
}

const char *store_col_text(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, i);
    /* NULL here means SQLite ran out of memory converting the value; an
     * empty string is the safest stand-in a reader can get. */
    return t != NULL ? (const char *)t : "";
}

int64_t store_col_opt_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return -1;
    return sqlite3_column_int64(st, i);
}

int store_keep_strings(store *s, const char **ptrs[], size_t n)
{
    size_t off[32];
    if (n > sizeof off / sizeof off[0])
        return TRINE_EINVAL;
    sb_reset(&s->rowbuf);
    for (size_t k = 0; k < n; k++) {
        off[k] = s->rowbuf.len;
        if (*ptrs[k] != NULL) {
            /* The terminating NUL is kept, so each copy is a C string. */
            sb_putn(&s->rowbuf, *ptrs[k], strlen(*ptrs[k]) + 1);
        }
    }
    if (s->rowbuf.oom) {
        sb_free(&s->rowbuf);
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        if (*ptrs[k] != NULL)
            *ptrs[k] = s->rowbuf.data + off[k];
    }
    return 0;
}

/* Runs a statement that returns no rows (a pragma setter, the schema).
 * Returns 0 or a negative code. */
static int store_exec(store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (!store_full_msg(s, rc))
            snprintf(s->errmsg, sizeof s->errmsg, "%s",
                     msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        s->last_rc = rc;
        return (rc & 0xff) == SQLITE_NOMEM ? TRINE_ENOMEM : TRINE_EIO;
    }
    return 0;
}

/* Runs a pragma that yields one integer into *out. Returns 0 or a
 * negative code. */
static int store_pragma_int(store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = store_fail(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
        sqlite3_finalize(st);
        return err;
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int store_set_max_bytes(store *s, int64_t bytes)
{
    if (s == NULL || s->db == NULL || s->readonly || bytes < 0)
        return TRINE_EINVAL;
    int64_t page_size = 0;
    int err = store_pragma_int(s, "PRAGMA page_size", &page_size);
    if (err < 0)
        return err;
    if (page_size <= 0)
        return store_failf(s, TRINE_EIO, "page size %lld",
                           (long long)page_size);
    int64_t pages = s->default_max_pages;
    if (bytes > 0) {
        pages = bytes / page_size;
        if (pages < 1)
            pages = 1;
    }
    if (pages > 0xfffffffeLL)
        pages = 0xfffffffeLL;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", (long long)pages);
    int64_t got = 0;
    err = store_pragma_int(s, sql, &got);
    if (err < 0)
        return err;
    /* SQLite never sets the limit below the pages in use: the log is then
     * full from the next write on, and the message names that size. */
    s->limit_bytes = bytes > 0 ? got * page_size : 0;
    return 0;
}

int64_t store_limit_bytes(const store *s)
{
    return s != NULL ? s->limit_bytes : 0;
}

bool store_at_limit(const store *s)
{
    return s != NULL && s->limit_bytes > 0 &&
           (s->last_rc & 0xff) == SQLITE_FULL;
}

/* Switches the database to WAL and checks that it took: on a file system
 * where WAL cannot work SQLite silently keeps the old mode, and readers
 * would then block the writer. Returns 0 or a negative code. */
static int store_set_wal(store *s)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = store_fail(s, rc);
        sqlite3_finalize(st);
        return err;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    int ok = mode != NULL && strcmp(mode, "wal") == 0;
    int err = ok ? 0
                 : store_failf(s, TRINE_EIO,
                               "cannot switch to WAL journal mode (got %s)",
                               mode != NULL ? mode : "nothing");
    sqlite3_finalize(st);
    return err;
}

/* Refuses a file whose decisions table has columns beside the contract's:
 * development versions kept args_sha256 and token there, and hashed them
 * into the chain, so this version could neither verify nor extend it.
 * Returns 0 or a negative code. */
static int store_check_layout(store *s)
{
    int64_t n = 0;
    int err = store_pragma_int(s,
                               "SELECT count(*) FROM pragma_table_info("
                               "'decisions') WHERE name = 'args_sha256'",
                               &n);
    if (err == 0 && n > 0)
        err = store_failf(s, TRINE_EIO,
                          "the file has the layout of an earlier development "
                          "version (decisions.args_sha256), which this "
                          "version cannot verify or extend; move it aside");
    return err;
}

/* Checks that a database opened read-only holds both tables. Returns 0 or a
 * negative code with a message. */
static int store_check_schema(store *s)
{
    int err = store_check_layout(s);
    if (err < 0)
        return err;
    int64_t n = 0;
    err = store_pragma_int(s,
                           "SELECT count(*) FROM sqlite_master"
                           " WHERE type = 'table' AND name IN"
                           " ('decisions', 'consents', 'decision_facts')",
                           &n);
    if (err < 0)
        return err;
    if (n != 3)
        return store_failf(s, TRINE_EIO, "not a trine audit database");
    return 0;
}

/* Loads the last committed row's id and hash as the chain head. Returns 0
 * or a negative code. */
int store_load_head(store *s)
{
    sqlite3_stmt *st = store_stmt(s, STMT_HEAD);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_step(st);
    s->head_id = 0;
    memset(s->head_hash, 0, sizeof s->head_hash);
    if (rc == SQLITE_ROW) {
        s->head_id = sqlite3_column_int64(st, 0);
        const void *h = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        if (h != NULL && n > 0)
            memcpy(s->head_hash, h, n < 32 ? (size_t)n : 32);
    } else if (rc != SQLITE_DONE) {
        int err = store_fail(s, rc);
        sqlite3_reset(st);
        return err;
    }
    sqlite3_reset(st);
    s->cur_id = s->head_id;
    memcpy(s->cur_hash, s->head_hash, sizeof s->cur_hash);
    s->head_loaded = true;
    return 0;
}

/* Writes "file:" and path percent-encoded, then "?immutable=1", into b:
 * the URI that opens path without its WAL index. */
static void store_immutable_uri(strbuf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    sb_puts(b, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || strchr("/-._~", *p) != NULL) {
            sb_putc(b, (char)*p);
        } else {
            sb_putc(b, '%');
            sb_putc(b, hex[*p >> 4]);
            sb_putc(b, hex[*p & 15]);
        }
    }
    sb_puts(b, "?immutable=1");
}

/* Reopens a database that a reader could not read because, with no writer
 * running, its WAL files are gone and the reader may not create them in a
 * directory it cannot write. With no writer there is nothing to coordinate
 * with, so it is opened immutable. Returns 0 or a negative code. */
static int store_reopen_immutable(store *s, const char *path)
{
    strbuf uri;
    sb_init(&uri);
    store_immutable_uri(&uri, path);
    if (uri.oom)
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    sqlite3_close_v2(s->db);
    s->db = NULL;
    int rc = sqlite3_open_v2(
        uri.data, &s->db,
        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    sb_free(&uri);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    return 0;
}

/* Opens the connection and prepares it; the caller closes s on failure. */
static int store_setup(store *s, const char *path, const store_opts *o)
{
    int flags = SQLITE_OPEN_NOMUTEX;
    if (o->readonly) {
        /* SQLite's "unable to open database file" does not say why; the
         * file system does. */
        struct stat sta;
        if (stat(path, &sta) != 0)
            return store_failf(s, TRINE_EIO, "%s", strerror(errno));
        flags |= SQLITE_OPEN_READONLY;
    } else if (o->checkpointer) {
        flags |= SQLITE_OPEN_READWRITE;
    } else {
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        /* A new log is made owner read-write, group read (the umask may
         * take more away): its arguments are nobody else's business.
         * SQLite gives the -wal and -shm files the mode of the database. */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0)
            close(fd);
    }
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    sqlite3_extended_result_codes(s->db, 0);
    int timeout = o->busy_timeout_ms;
    if (timeout == 0)
        timeout = STORE_BUSY_TIMEOUT_DEFAULT_MS;
    rc = sqlite3_busy_timeout(s->db, timeout < 0 ? 0 : timeout);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    if (o->checkpointer) {
        /* Before anything is read (a pragma that loads the schema reads
         * the WAL at the path, and the last connection to close would copy
         * it into this file): is this the file the writer uses? */
        int moved = store_files_record(s, path);
        if (moved < 0)
            return moved;
        if (moved > 0 || (o->expect_db != NULL && o->expect_db->known &&
                          !store_same_file(&s->files.db, o->expect_db)))
            return store_failf(s, TRINE_EIO,
                               "the file at the path is not the writer's");
    }
    if (o->readonly) {
        int err = store_check_schema(s);
        int code = s->last_rc & 0xff;
        if (err < 0 && (code == SQLITE_READONLY || code == SQLITE_CANTOPEN)) {
            s->errmsg[0] = '\0';
            s->last_rc = 0;
            err = store_reopen_immutable(s, path);
            if (err == 0)
                err = store_check_schema(s);
        }
        if (err < 0)
            return err;
    }
    int err = store_exec(s, "PRAGMA foreign_keys=OFF");
    if (err < 0)
        return err;
    if (o->readonly)
        return store_exec(s, "PRAGMA query_only=ON");
    err = store_exec(s, o->sync_normal ? "PRAGMA synchronous=NORMAL"
                                       : "PRAGMA synchronous=FULL");
    if (err < 0 || o->checkpointer)
        return err;
    err = store_set_wal(s);
    if (err < 0)
        return err;
    /* SQLite evaluates the schema's CHECK (decision IN (...)) by building
     * a temporary b-tree of the three values for every insert, which cost
     * a third of an append. audit_append checks the value itself before
     * every insert (audit_check_row); the constraint stays in the schema
     * for every other connection that writes the file. */
    err = store_exec(s, "PRAGMA ignore_check_constraints=ON");
    if (err < 0)
        return err;
    if (o->manual_checkpoint)
        sqlite3_wal_hook(s->db, store_wal_hook, s);
    err = store_exec(s, "BEGIN IMMEDIATE");
    if (err < 0)
        return err;
    err = store_check_layout(s);
    if (err == 0)
        err = store_exec(s, schema_sql);
    if (err == 0)
        err = store_exec(s, "COMMIT");
    if (err < 0) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
    err = store_load_head(s);
    if (err < 0)
        return err;
    /* The WAL exists now (the schema transaction opened it): record the
     * files, so that their deletion or replacement can be told later. */
    err = store_files_record(s, path);
    if (err > 0)
        return store_failf(s, TRINE_EIO,
                           "the file was replaced while being opened");
    if (err < 0)
        return err;
    err = store_pragma_int(s, "PRAGMA max_page_count", &s->default_max_pages);
    if (err == 0 && o->max_bytes > 0)
        err = store_set_max_bytes(s, o->max_bytes);
    return err;
}

/* Process-wide SQLite settings, made once before the first connection. */
static void store_configure(void)
{
    /* Memory statistics take a global mutex around every allocation
     * SQLite makes; nothing here reads them. This fails harmlessly when
     * SQLite was already initialised by someone else. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, const store_opts *o, store **out, char *err,
               size_t errlen)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, store_configure);
    static const store_opts defaults = {0};
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "no database path given");
        return TRINE_EINVAL;
    }
    if (o == NULL)
        o = &defaults;
    store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "cannot open %s: out of memory", path);
        return TRINE_ENOMEM;
    }
    s->readonly = o->readonly;
    sb_init(&s->canon);
    sb_init(&s->rowbuf);
    int rc = 0;
    s->md = EVP_MD_CTX_new();
    s->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (s->md == NULL || s->sha256 == NULL)
        rc = store_failf(s, TRINE_ENOMEM, "out of memory");
    else
        rc = store_setup(s, path, o);
    if (rc < 0) {
        if (errlen > 0)
            snprintf(err, errlen, "cannot open %s: %s", path, s->errmsg);
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db != NULL) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(s->db);
    }
    EVP_MD_CTX_free(s->md);
    EVP_MD_free(s->sha256);
    free(s->path);
    free(s->wal_path);
    sb_free(&s->canon);
    sb_free(&s->rowbuf);
    free(s);
}
