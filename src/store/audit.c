/*
 * audit.c - the decisions table: appending rows with their hash chain,
 * transactions, and reading rows back (one, filtered, counted).
 *
 * The hash of a row is SHA-256(prev_hash || C), where C is the canonical
 * JSON of its other columns: an object with keys sorted by byte value, text
 * as JSON strings (escaped by sb_json_str, as the library's canonical JSON
 * does), NULL as null, integers in decimal, no whitespace. The writer builds
 * C in a reused buffer: this runs for every decision.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Appends a text column: a JSON string, or null. */
static void canon_text(strbuf *b, const char *key, const char *v)
{
    sb_puts(b, key);
    if (v == NULL)
        sb_puts(b, "null");
    else
        sb_json_str(b, v, strlen(v));
}

/* Appends an integer column in decimal. */
static void canon_int(strbuf *b, const char *key, int64_t v)
{
    sb_puts(b, key);
    sb_put_i64(b, v);
}

/* Writes the canonical text of row's columns other than the hashes into b
 * (which it empties first): the thirteen other columns of DESIGN §4's
 * decisions table, keys in byte order. The facts (args_sha256, token) live
 * in their own table and are not hashed. */
static void audit_canonical(strbuf *b, const audit_row *row)
{
    sb_reset(b);
    canon_text(b, "{\"agent\":", row->agent);
    canon_text(b, ",\"arguments\":", row->arguments);
    canon_text(b, ",\"chain\":", row->chain);
    canon_text(b, ",\"decision\":", row->decision);
    canon_text(b, ",\"detail\":", row->detail);
    canon_int(b, ",\"id\":", row->id);
    canon_text(b, ",\"policy_rev\":", row->policy_rev);
    canon_text(b, ",\"reason\":", row->reason);
    canon_text(b, ",\"server\":", row->server);
    canon_text(b, ",\"session\":", row->session);
    canon_text(b, ",\"tool\":", row->tool);
    canon_int(b, ",\"ts_ms\":", row->ts_ms);
    canon_text(b, ",\"user\":", row->user);
    sb_putc(b, '}');
}

/* Hashes prev_hash and the canonical text in b with md. Returns 0, or
 * TRINE_ENOMEM when OpenSSL fails (it fails only for lack of memory). */
static int audit_digest(EVP_MD_CTX *md, const EVP_MD *sha256,
                        const unsigned char prev[32], const strbuf *b,
                        unsigned char hash[32])
{
    unsigned int n = 0;
    if (EVP_DigestInit_ex(md, sha256, NULL) != 1 ||
        EVP_DigestUpdate(md, prev, 32) != 1 ||
        EVP_DigestUpdate(md, b->data, b->len) != 1 ||
        EVP_DigestFinal_ex(md, hash, &n) != 1 || n != 32)
        return TRINE_ENOMEM;
    return 0;
}

int audit_hash_with(store *s, const audit_row *row, unsigned char hash[32])
{
    audit_canonical(&s->canon, row);
    if (s->canon.oom) {
        sb_free(&s->canon);
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    }
    if (audit_digest(s->md, s->sha256, row->prev_hash, &s->canon, hash) < 0)
        return store_failf(s, TRINE_ENOMEM, "cannot compute SHA-256");
    return 0;
}

int audit_hash_row(const audit_row *row, unsigned char hash[32])
{
    strbuf b;
    sb_init(&b);
    audit_canonical(&b, row);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = TRINE_ENOMEM;
    if (!b.oom && md != NULL)
        rc = audit_digest(md, EVP_sha256(), row->prev_hash, &b, hash);
    EVP_MD_CTX_free(md);
    sb_free(&b);
    return rc;
}

void audit_row_from_stmt(sqlite3_stmt *st, audit_row *row)
{
    const char **text[] = {
        &row->policy_rev, &row->server,    &row->tool,    &row->user,
        &row->agent,      &row->chain,     &row->session, &row->decision,
        &row->reason,     &row->arguments, &row->detail,  &row->args_sha256,
    };
    row->id = sqlite3_column_int64(st, 0);
    row->ts_ms = sqlite3_column_int64(st, 1);
    for (int i = 0; i < 12; i++)
        *text[i] = store_col_text(st, 2 + i);
    unsigned char *hashes[2] = {row->prev_hash, row->hash};
    for (int i = 0; i < 2; i++) {
        const void *h = sqlite3_column_blob(st, 14 + i);
        int n = sqlite3_column_bytes(st, 14 + i);
        memset(hashes[i], 0, 32);
        if (h != NULL && n > 0)
            memcpy(hashes[i], h, n < 32 ? (size_t)n : 32);
    }
    row->token = store_col_text(st, 16);
}

int64_t audit_next_id(store *s)
{
    if (!s->head_loaded && !s->readonly && store_load_head(s) < 0)
        return -1;
    return s->cur_id + 1;
}

/* Runs one of the cached transaction statements. Returns 0 or a negative
 * code. */
static int audit_txn_stmt(store *s, store_stmt_id id)
{
    sqlite3_stmt *st = store_stmt(s, id);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(st);
    return err;
}

int audit_begin(store *s)
{
    if (s->readonly)
        return store_failf(s, TRINE_EINVAL, "the store is read-only");
    if (s->in_txn)
        return store_failf(s, TRINE_EINVAL, "a transaction is open");
    int err = audit_txn_stmt(s, STMT_BEGIN);
    if (err < 0)
        return err;
    /* Another writer may have appended since we last looked. */
    err = store_load_head(s);
    if (err < 0) {
        audit_txn_stmt(s, STMT_ROLLBACK);
        return err;
    }
    s->in_txn = true;
    return 0;
}

void audit_rollback(store *s)
{
    if (!s->in_txn)
        return;
    /* SQLite may already have rolled back on its own (a full disk, an
     * I/O error); ROLLBACK would then fail with "no transaction". */
    if (!sqlite3_get_autocommit(s->db))
        audit_txn_stmt(s, STMT_ROLLBACK);
    s->in_txn = false;
    s->cur_id = s->head_id;
    memcpy(s->cur_hash, s->head_hash, sizeof s->cur_hash);
}

int audit_commit(store *s)
{
    if (!s->in_txn)
        return store_failf(s, TRINE_EINVAL, "no transaction is open");
    int err = audit_txn_stmt(s, STMT_COMMIT);
    if (err < 0) {
        char msg[sizeof s->errmsg];
        memcpy(msg, s->errmsg, sizeof msg);
        audit_rollback(s);
        memcpy(s->errmsg, msg, sizeof msg);
        return TRINE_EIO;
    }
    s->in_txn = false;
    s->head_id = s->cur_id;
    memcpy(s->head_hash, s->cur_hash, sizeof s->head_hash);
    return 0;
}

/* Checks the fields a row must carry. Returns 0 or TRINE_EINVAL. */
static int audit_check_row(store *s, const audit_row *row)
{
    if (row->policy_rev == NULL || row->server == NULL || row->tool == NULL ||
        row->decision == NULL || row->reason == NULL || row->detail == NULL)
        return store_failf(s, TRINE_EINVAL,
                           "a decision row needs policy_rev, server, tool,"
                           " decision, reason and detail");
    if (strcmp(row->decision, "allow") != 0 &&
        strcmp(row->decision, "deny") != 0 &&
        strcmp(row->decision, "consent_required") != 0)
        return store_failf(s, TRINE_EINVAL, "unknown decision \"%.40s\"",
                           row->decision);
    return 0;
}

/* Binds row's columns to the insert statement. Returns SQLite's code. */
static int audit_bind_row(sqlite3_stmt *st, const audit_row *row)
{
    const char *text[] = {
        row->policy_rev, row->server,    row->tool,    row->user,
        row->agent,      row->chain,     row->session, row->decision,
        row->reason,     row->arguments, row->detail,
    };
    int rc = sqlite3_bind_int64(st, 1, row->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, row->ts_ms);
    for (int i = 0; i < 11 && rc == SQLITE_OK; i++)
        rc = store_bind_text(st, 3 + i, text[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 14, row->prev_hash, 32, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 15, row->hash, 32, SQLITE_STATIC);
    return rc;
}

/* Inserts the row's facts, when it has any. Returns 0 or a negative
 * code. */
static int audit_insert_facts(store *s, const audit_row *row)
{
    if (row->args_sha256 == NULL && row->token == NULL)
        return 0;
    sqlite3_stmt *st = store_stmt(s, STMT_INSERT_FACTS);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_bind_int64(st, 1, row->id);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 2, row->args_sha256);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 3, row->token);
    return store_run(s, st, rc);
}

/* Appends inside the open transaction. */
static int audit_append_txn(store *s, audit_row *row)
{
    if (row->id != s->cur_id + 1)
        return store_failf(s, TRINE_EINVAL,
                           "row id %" PRId64 " is not the next id %" PRId64,
                           row->id, s->cur_id + 1);
    memcpy(row->prev_hash, s->cur_hash, 32);
    int err = audit_hash_with(s, row, row->hash);
    if (err < 0)
        return err;
    sqlite3_stmt *st = store_stmt(s, STMT_INSERT_DECISION);
    if (st == NULL)
        return TRINE_EIO;
    err = store_run(s, st, audit_bind_row(st, row));
    if (err == 0)
        err = audit_insert_facts(s, row);
    if (err < 0)
        return err;
    s->cur_id = row->id;
    memcpy(s->cur_hash, row->hash, 32);
    return 0;
}

int audit_append(store *s, audit_row *row)
{
    if (s->readonly)
        return store_failf(s, TRINE_EINVAL, "the store is read-only");
    int err = audit_check_row(s, row);
    if (err < 0)
        return err;
    if (s->in_txn)
        return audit_append_txn(s, row);
    err = audit_begin(s);
    if (err < 0)
        return err;
    err = audit_append_txn(s, row);
    if (err < 0) {
        audit_rollback(s);
        return err;
    }
    return audit_commit(s);
}

int audit_get(store *s, int64_t id, audit_row *out)
{
    sqlite3_stmt *st = store_stmt(s, STMT_GET_DECISION);
    if (st == NULL)
        return TRINE_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        int err = store_fail(s, rc);
        sqlite3_reset(st);
        return err;
    }
    audit_row_from_stmt(st, out);
    const char **ptrs[] = {
        &out->policy_rev, &out->server,    &out->tool,    &out->user,
        &out->agent,      &out->chain,     &out->session, &out->decision,
        &out->reason,     &out->arguments, &out->detail,  &out->args_sha256,
        &out->token,
    };
    int err = store_keep_strings(s, ptrs, sizeof ptrs / sizeof ptrs[0]);
    sqlite3_reset(st);
    return err < 0 ? err : 1;
}

/* Appends the WHERE clause of f to sql, with fixed parameter numbers:
 * ?1 since, ?2 until, ?3 user, ?4 agent, ?5 tool, ?6 decision. No value
 * is ever written into the text. */
static void audit_where(strbuf *sql, const audit_filter *f)
{
    const char *conds[6];
    size_t n = 0;
    if (f == NULL)
        return;
    if (f->since_ms != 0)
        conds[n++] = "ts_ms >= ?1";
    if (f->until_ms != 0)
        conds[n++] = "ts_ms <= ?2";
    if (f->user != NULL)
        conds[n++] = "user = ?3";
    if (f->agent != NULL)
        conds[n++] = "agent = ?4";
    if (f->tool != NULL)
        conds[n++] = "tool = ?5";
    if (f->decision != NULL)
        conds[n++] = "decision = ?6";
    for (size_t i = 0; i < n; i++) {
        sb_puts(sql, i == 0 ? " WHERE " : " AND ");
        sb_puts(sql, conds[i]);
    }
}

/* Binds the values audit_where referred to. Returns SQLite's code. */
static int audit_bind_filter(sqlite3_stmt *st, const audit_filter *f)
{
    int rc = SQLITE_OK;
    if (f == NULL)
        return rc;
    if (f->since_ms != 0)
        rc = sqlite3_bind_int64(st, 1, f->since_ms);
    if (rc == SQLITE_OK && f->until_ms != 0)
        rc = sqlite3_bind_int64(st, 2, f->until_ms);
    if (rc == SQLITE_OK && f->user != NULL)
        rc = store_bind_text(st, 3, f->user);
    if (rc == SQLITE_OK && f->agent != NULL)
        rc = store_bind_text(st, 4, f->agent);
    if (rc == SQLITE_OK && f->tool != NULL)
        rc = store_bind_text(st, 5, f->tool);
    if (rc == SQLITE_OK && f->decision != NULL)
        rc = store_bind_text(st, 6, f->decision);
    return rc;
}

/* Prepares a statement from sql (which may have run out of memory) and
 * binds f. Returns 0 with *out set, or a negative code. */
static int audit_prepare_filtered(store *s, strbuf *sql, const audit_filter *f,
                                  sqlite3_stmt **out)
{
    *out = NULL;
    if (sql->oom)
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    int rc = sqlite3_prepare_v2(s->db, sql->data, -1, out, NULL);
    if (rc == SQLITE_OK)
        rc = audit_bind_filter(*out, f);
    if (rc != SQLITE_OK) {
        int err = store_fail(s, rc);
        sqlite3_finalize(*out);
        *out = NULL;
        return err;
    }
    return 0;
}

int audit_query(store *s, const audit_filter *f, audit_row_fn fn, void *ctx)
{
    strbuf sql;
    sb_init(&sql);
    bool limited = f != NULL && f->limit > 0;
    if (limited)
        sb_puts(&sql, "SELECT * FROM (");
    sb_puts(&sql, "SELECT " AUDIT_COLUMNS " FROM " AUDIT_FROM);
    audit_where(&sql, f);
    if (limited)
        sb_puts(&sql, " ORDER BY decisions.id DESC LIMIT ?7) ORDER BY id");
    else
        sb_puts(&sql, " ORDER BY decisions.id");
    sqlite3_stmt *st = NULL;
    int err = audit_prepare_filtered(s, &sql, f, &st);
    sb_free(&sql);
    if (err < 0)
        return err;
    int rc = SQLITE_OK;
    if (limited)
        rc = sqlite3_bind_int64(st, 7, f->limit);
    if (rc != SQLITE_OK) {
        err = store_fail(s, rc);
        sqlite3_finalize(st);
        return err;
    }
    int ret = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            ret = store_fail(s, rc);
            break;
        }
        audit_row row;
        audit_row_from_stmt(st, &row);
        ret = fn(ctx, &row);
        if (ret != 0)
            break;
    }
    sqlite3_finalize(st);
    return ret;
}

/* Copies s into a new string with every byte that is not part of valid
 * UTF-8 replaced by U+FFFD, so it can be a JSON object key. Returns NULL on
 * OOM. */
static char *audit_lossy_utf8(const char *str)
{
    size_t n = strlen(str);
    strbuf b;
    sb_init(&b);
    size_t i = 0;
    while (i < n) {
        size_t good = utf8_check(str + i, n - i);
        sb_putn(&b, str + i, good);
        i += good;
        if (i < n) {
            sb_puts(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    return sb_take(&b);
}

/* Runs "SELECT col, count(*) ... GROUP BY col" for one grouping column
 * (from a fixed list) and stores the counts in a new object under key.
 * Returns 0 or a negative code. */
static int audit_stats_group(store *s, const audit_filter *f, const char *col,
                             json_t *stats)
{
    strbuf sql;
    sb_init(&sql);
    sb_printf(&sql, "SELECT %s, count(*) FROM decisions", col);
    audit_where(&sql, f);
    /* Most frequent first, as `trine audit stats` shows them. */
    sb_printf(&sql, " GROUP BY %s ORDER BY count(*) DESC, %s", col, col);
    sqlite3_stmt *st = NULL;
    int err = audit_prepare_filtered(s, &sql, f, &st);
    sb_free(&sql);
    if (err < 0)
        return err;
    json_t *group = json_object();
    if (group == NULL || json_object_set_new(stats, col, group) < 0) {
        sqlite3_finalize(st);
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    }
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = store_fail(s, rc);
            break;
        }
        const char *key = store_col_text(st, 0);
        char *safe = audit_lossy_utf8(key != NULL ? key : "");
        json_t *count = json_integer(sqlite3_column_int64(st, 1));
        /* Two values that differ only in invalid bytes share one key;
         * their counts add up. */
        json_t *prev = safe != NULL ? json_object_get(group, safe) : NULL;
        if (prev != NULL && count != NULL)
            json_integer_set(count, json_integer_value(count) +
                                        json_integer_value(prev));
        if (safe == NULL || count == NULL ||
            json_object_set_new(group, safe, count) < 0) {
            if (safe == NULL)
                json_decref(count);
            free(safe);
            err = store_failf(s, TRINE_ENOMEM, "out of memory");
            break;
        }
        free(safe);
    }
    sqlite3_finalize(st);
    return err;
}

/* Counts the rows that pass f into stats under "total". */
static int audit_stats_total(store *s, const audit_filter *f, json_t *stats)
{
    strbuf sql;
    sb_init(&sql);
    sb_puts(&sql, "SELECT count(*) FROM decisions");
    audit_where(&sql, f);
    sqlite3_stmt *st = NULL;
    int err = audit_prepare_filtered(s, &sql, f, &st);
    sb_free(&sql);
    if (err < 0)
        return err;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = store_fail(s, rc);
    } else if (json_object_set_new(stats, "total",
                                   json_integer(sqlite3_column_int64(st, 0))) <
               0) {
        err = store_failf(s, TRINE_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    return err;
}

int audit_stats(store *s, const audit_filter *f, json_t **out)
{
    static const char *const groups[] = {"decision", "reason", "tool", "agent"};
    *out = NULL;
    json_t *stats = json_object();
    if (stats == NULL)
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    /* One read transaction, so the counts agree with each other while a
     * writer appends. Inside the caller's transaction they already do. */
    bool own = sqlite3_get_autocommit(s->db) != 0;
    int err = 0;
    if (own) {
        int rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            err = store_fail(s, rc);
    }
    if (err == 0)
        err = audit_stats_total(s, f, stats);
    for (size_t i = 0; err == 0 && i < sizeof groups / sizeof groups[0]; i++)
        err = audit_stats_group(s, f, groups[i], stats);
    if (own && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (err < 0) {
        json_decref(stats);
        return err;
    }
    *out = stats;
    return 0;
}
