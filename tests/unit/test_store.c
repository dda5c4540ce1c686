/*
 * test_store.c - opening a store: pragmas, schema, read-only handles, what
 * a reader sees while a writer appends, and checkpoints made apart from
 * commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_int.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/trine-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/audit.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    unlink(other);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Returns the single integer a query yields, or -999. */
static int64_t query_int(store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -999;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Copies the single text a query yields into buf. */
static const char *query_text(store *s, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    snprintf(buf, len, "(none)");
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static void fill_row(audit_row *r, int64_t id, const char *user)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->ts_ms = 1767225600000 + id;
    r->policy_rev = "sha256:abc";
    r->server = "github";
    r->tool = "get_issue";
    r->user = user;
    r->agent = "claude-desktop";
    r->decision = "allow";
    r->reason = "allow";
    r->arguments = "{\"owner\":\"acme\"}";
    r->detail = "{\"decision\":\"allow\"}";
    r->args_sha256 = "00ff";
}

/* audit_row_fn: counts rows. */
static int count_rows(void *ctx, const audit_row *row)
{
    (void)row;
    ++*(int *)ctx;
    return 0;
}

static void test_create_sets_pragmas_and_schema(void **state)
{
    fixture *f = *state;
    store *s = NULL;
    char err[256] = "";
    assert_int_equal(store_open(f->path, NULL, &s, err, sizeof err), 0);
    assert_non_null(s);
    char buf[64];
    char big[512];
    assert_string_equal(query_text(s, "PRAGMA journal_mode", buf, sizeof buf),
                        "wal");
    /* FULL is 2, NORMAL is 1. */
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 2);
    assert_int_equal(query_int(s, "PRAGMA busy_timeout"), 5000);
    assert_int_equal(query_int(s, "PRAGMA foreign_keys"), 0);
    /* DESIGN §4's two tables exactly, column for column, and the facts
     * beside them. */
    assert_string_equal(
        query_text(
            s,
            "SELECT group_concat(name || ':' || type || ':' || \"notnull\""
            " || ':' || pk, ' ') FROM pragma_table_info('decisions')",
            big, sizeof big),
        "id:INTEGER:0:1 ts_ms:INTEGER:1:0 policy_rev:TEXT:1:0 "
        "server:TEXT:1:0 tool:TEXT:1:0 user:TEXT:0:0 agent:TEXT:0:0 "
        "chain:TEXT:0:0 session:TEXT:0:0 decision:TEXT:1:0 reason:TEXT:1:0 "
        "arguments:TEXT:0:0 detail:TEXT:1:0 prev_hash:BLOB:1:0 "
        "hash:BLOB:1:0");
    assert_string_equal(
        query_text(
            s,
            "SELECT group_concat(name || ':' || type || ':' || \"notnull\""
            " || ':' || pk, ' ') FROM pragma_table_info('consents')",
            big, sizeof big),
        "id:INTEGER:0:1 user:TEXT:1:0 agent:TEXT:1:0 server:TEXT:1:0 "
        "tool:TEXT:1:0 mode:TEXT:1:0 session:TEXT:0:0 granted_ms:INTEGER:1:0 "
        "expires_ms:INTEGER:0:0 revoked_ms:INTEGER:0:0 used_ms:INTEGER:0:0 "
        "decision_id:INTEGER:0:0");
    assert_string_equal(query_text(s,
                                   "SELECT group_concat(name, ' ')"
                                   " FROM pragma_table_info('decision_facts')",
                                   big, sizeof big),
                        "decision_id args_sha256 token");
    /* Decisions keep only the time index: each index is written with
     * every row. */
    assert_int_equal(query_int(s, "SELECT count(*) FROM sqlite_master"
                                  " WHERE type = 'index' AND name IN"
                                  " ('decisions_ts_ms', 'consents_key')"),
                     2);
    assert_int_equal(query_int(s, "SELECT count(*) FROM sqlite_master"
                                  " WHERE type = 'index'"
                                  " AND tbl_name = 'decisions'"),
                     1);
    assert_int_equal(audit_next_id(s), 1);
    store_close(s);

    /* Opening again keeps what is there. */
    store_opts o = {.sync_normal = true, .busy_timeout_ms = 250};
    assert_int_equal(store_open(f->path, &o, &s, err, sizeof err), 0);
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 1);
    assert_int_equal(query_int(s, "PRAGMA busy_timeout"), 250);
    store_close(s);
}

static void append_rows(store *s, int64_t first, int64_t last)
{
    assert_int_equal(audit_begin(s), 0);
    for (int64_t id = first; id <= last; id++) {
        audit_row row;
        fill_row(&row, id, "alice");
        assert_int_equal(audit_append(s, &row), 0);
    }
    assert_int_equal(audit_commit(s), 0);
}

static void test_manual_checkpoint(void **state)
{
    fixture *f = *state;
    store *w = NULL, *c = NULL;
    store_opts wo = {.sync_normal = true, .manual_checkpoint = true};
    assert_int_equal(store_open(f->path, &wo, &w, NULL, 0), 0);
    /* Creating the schema was the first commit. */
    assert_true(store_wal_pages(w) > 0);

    /* Commits never checkpoint: the WAL only grows, past SQLite's own
     * threshold of 1000 pages. */
    int before = 0;
    for (int64_t id = 1; id <= 6000; id += 10) {
        append_rows(w, id, id + 9);
        assert_true(store_wal_pages(w) > before);
        before = store_wal_pages(w);
    }
    assert_true(before > 1000);

    /* The checkpoint connection opens the existing file only. */
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    store_opts co = {.checkpointer = true, .sync_normal = true};
    assert_int_equal(store_open(other, &co, &c, NULL, 0), TRINE_EIO);
    assert_null(c);
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(store_open(f->path, &co, &c, NULL, 0), 0);
    assert_int_equal(query_int(c, "PRAGMA synchronous"), 1);

    int log = -1, done = -1;
    assert_int_equal(store_checkpoint(c, &log, &done), 0);
    assert_int_equal(log, before);
    assert_int_equal(done, before);
    /* Everything was copied: the writer's next commit starts the WAL over
     * from its beginning. */
    append_rows(w, 6001, 6001);
    assert_true(store_wal_pages(w) < 10);

    /* A checkpoint on the writer's own connection works as well. */
    append_rows(w, 6002, 6100);
    int pages = store_wal_pages(w);
    assert_int_equal(store_checkpoint(w, &log, &done), 0);
    assert_int_equal(log, pages);
    assert_int_equal(done, pages);

    int64_t rows = 0, bad = 0;
    assert_int_equal(audit_verify(c, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, 6100);
    store_close(c);
    store_close(w);

    /* Without manual_checkpoint, SQLite checkpoints inside commits and
     * store_wal_pages says nothing. */
    assert_int_equal(store_open(f->path, NULL, &w, NULL, 0), 0);
    append_rows(w, 6101, 6200);
    assert_int_equal(store_wal_pages(w), 0);
    store_close(w);
}

static void test_decision_check_constraint(void **state)
{
    fixture *f = *state;
    store *s = NULL;
    assert_int_equal(store_open(f->path, NULL, &s, NULL, 0), 0);
    /* The table itself refuses a decision outside the three to any other
     * connection (the store's own skips the check: audit_append makes it,
     * see test_audit.c's test_append_validates). */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    int rc = sqlite3_exec(db,
                          "INSERT INTO decisions (id, ts_ms, policy_rev,"
                          " server, tool, decision, reason, detail,"
                          " prev_hash, hash) VALUES (1, 0, 'r', 's', 't',"
                          " 'maybe', 'x', '{}', x'00', x'00')",
                          NULL, NULL, NULL);
    assert_int_equal(rc, SQLITE_CONSTRAINT);
    sqlite3_close(db);
    store_close(s);
}

static void test_readonly_missing_file(void **state)
{
    fixture *f = *state;
    store *s = (store *)1;
    char err[256] = "";
    store_opts o = {.readonly = true};
    assert_int_equal(store_open(f->path, &o, &s, err, sizeof err), TRINE_EIO);
    assert_null(s);
    char want[300];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory",
             f->path);
    assert_string_equal(err, want);
    /* And it did not create one. */
    struct stat st;
    assert_int_not_equal(stat(f->path, &st), 0);
}

static void test_readonly_not_a_trine_db(void **state)
{
    fixture *f = *state;
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store *s = NULL;
    char err[256] = "";
    store_opts o = {.readonly = true};
    assert_int_equal(store_open(other, &o, &s, err, sizeof err), TRINE_EIO);
    char want[300];
    snprintf(want, sizeof want, "cannot open %s: not a trine audit database",
             other);
    assert_string_equal(err, want);

    /* A file that is not SQLite at all. */
    FILE *fp = fopen(other, "w");
    assert_non_null(fp);
    fputs("this is not a database, not even close; padding padding padding "
          "padding padding padding padding padding padding padding\n",
          fp);
    fclose(fp);
    assert_int_equal(store_open(other, &o, &s, err, sizeof err), TRINE_EIO);
    snprintf(want, sizeof want, "cannot open %s: file is not a database",
             other);
    assert_string_equal(err, want);
}

static void test_readonly_refuses_writes(void **state)
{
    fixture *f = *state;
    store *w = NULL, *r = NULL;
    assert_int_equal(store_open(f->path, NULL, &w, NULL, 0), 0);
    store_close(w);
    store_opts o = {.readonly = true};
    assert_int_equal(store_open(f->path, &o, &r, NULL, 0), 0);
    audit_row row;
    fill_row(&row, 1, "alice");
    assert_int_equal(audit_append(r, &row), TRINE_EINVAL);
    assert_string_equal(store_errmsg(r), "the store is read-only");
    assert_int_equal(audit_begin(r), TRINE_EINVAL);
    consent_row c = {.user = "alice",
                     .agent = "a",
                     .server = "s",
                     .tool = "t",
                     .mode = "once",
                     .granted_ms = 1,
                     .expires_ms = -1,
                     .revoked_ms = -1,
                     .used_ms = -1,
                     .decision_id = -1};
    assert_int_equal(consent_insert(r, &c), TRINE_EINVAL);
    /* Even raw SQL cannot write through it. */
    assert_int_not_equal(
        sqlite3_exec(r->db, "DELETE FROM decisions", NULL, NULL, NULL),
        SQLITE_OK);
    store_close(r);
}

static void test_reader_sees_writer_rows_in_wal(void **state)
{
    fixture *f = *state;
    store *w = NULL, *r = NULL;
    assert_int_equal(store_open(f->path, NULL, &w, NULL, 0), 0);
    store_opts o = {.readonly = true};
    assert_int_equal(store_open(f->path, &o, &r, NULL, 0), 0);

    audit_row row;
    fill_row(&row, 1, "alice");
    assert_int_equal(audit_append(w, &row), 0);

    int n = 0;
    assert_int_equal(audit_query(r, NULL, count_rows, &n), 0);
    assert_int_equal(n, 1);

    /* While the writer holds an open write transaction, the reader is not
     * blocked and sees only committed rows. */
    assert_int_equal(audit_begin(w), 0);
    fill_row(&row, 2, "bob");
    assert_int_equal(audit_append(w, &row), 0);
    n = 0;
    assert_int_equal(audit_query(r, NULL, count_rows, &n), 0);
    assert_int_equal(n, 1);
    int64_t rows = 0, bad = 0;
    assert_int_equal(audit_verify(r, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, 1);
    assert_int_equal(audit_commit(w), 0);
    n = 0;
    assert_int_equal(audit_query(r, NULL, count_rows, &n), 0);
    assert_int_equal(n, 2);

    audit_row got;
    assert_int_equal(audit_get(r, 2, &got), 1);
    assert_string_equal(got.user, "bob");
    assert_memory_equal(got.hash, row.hash, 32);
    store_close(r);
    store_close(w);
}

static void test_second_writer_continues_chain(void **state)
{
    fixture *f = *state;
    store *a = NULL, *b = NULL;
    assert_int_equal(store_open(f->path, NULL, &a, NULL, 0), 0);
    assert_int_equal(store_open(f->path, NULL, &b, NULL, 0), 0);
    audit_row row;
    fill_row(&row, 1, "alice");
    assert_int_equal(audit_append(a, &row), 0);
    /* b's head is stale, but audit_begin reloads it. */
    assert_int_equal(audit_begin(b), 0);
    assert_int_equal(audit_next_id(b), 2);
    audit_row row2;
    fill_row(&row2, 2, "bob");
    assert_int_equal(audit_append(b, &row2), 0);
    assert_memory_equal(row2.prev_hash, row.hash, 32);
    assert_int_equal(audit_commit(b), 0);
    int64_t rows = 0, bad = 0;
    assert_int_equal(audit_verify(a, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, 2);
    store_close(a);
    store_close(b);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    store *s = (store *)1;
    char err[64] = "";
    assert_int_equal(store_open(NULL, NULL, &s, err, sizeof err), TRINE_EINVAL);
    assert_null(s);
    assert_string_equal(err, "no database path given");
    store_close(NULL);
    assert_string_equal(store_errmsg(NULL), "no store");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_sets_pragmas_and_schema,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_decision_check_constraint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readonly_missing_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readonly_not_a_trine_db, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readonly_refuses_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_writer_rows_in_wal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_continues_chain,
                                        setup, teardown),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
