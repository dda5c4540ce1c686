/*
 * test_audit.c - the decisions table: appends and the hash chain,
 * transactions, reading rows back, filters, stats and verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "store_fixture.h"

/* The rows the tests append: (user, agent, tool, decision, reason). */
static const struct {
    const char *user, *agent, *tool, *decision, *reason;
} sample[] = {
    {"alice", "claude-desktop", "get_issue", "allow", "allow"},
    {"bob", "claude-desktop", "create_issue", "consent_required",
     "consent_required"},
    {"alice", "ci-bot", "delete_repo", "deny", "agent_denied"},
    {"carol", NULL, "get_issue", "deny", "agent_denied"},
    {"alice", "claude-desktop", "create_issue", "allow", "allow"},
    {"bob", "ops-console", "get_issue", "deny", "scope_missing"},
};
#define NSAMPLE ((int)(sizeof sample / sizeof sample[0]))

static void fill_row(audit_row *r, int64_t id)
{
    int k = (int)((id - 1) % NSAMPLE);
    memset(r, 0, sizeof *r);
    r->id = id;
    r->ts_ms = 1767225600000 + id * 1000;
    r->policy_rev = "sha256:9f1c";
    r->server = "github";
    r->tool = sample[k].tool;
    r->user = sample[k].user;
    r->agent = sample[k].agent;
    r->chain = id == 3 ? "[\"ci-bot\",\"deploy\"]" : NULL;
    r->session = "s1";
    r->decision = sample[k].decision;
    r->reason = sample[k].reason;
    r->arguments = "{\"owner\":\"acme\",\"repo\":\"widgets\"}";
    r->detail = "{\"decision\":\"x\"}";
    r->args_sha256 = "5e3c";
}

/* Appends rows first..last in one transaction. */
static void append_rows(store *s, int64_t first, int64_t last)
{
    assert_int_equal(audit_begin(s), 0);
    for (int64_t id = first; id <= last; id++) {
        audit_row r;
        assert_int_equal(audit_next_id(s), id);
        fill_row(&r, id);
        assert_int_equal(audit_append(s, &r), 0);
    }
    assert_int_equal(audit_commit(s), 0);
}

static void exec_ok(store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* Expects the first column of the one row sql returns to read want. */
static void expect_text(sqlite3 *db, const char *sql, const char *want)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
}

static void expect_broken(store *s, int64_t bad_id, const char *why)
{
    int64_t rows = 0, bad = 0;
    char got[160];
    assert_int_equal(audit_verify(s, &rows, &bad, got, sizeof got), 1);
    assert_string_equal(got, why);
    assert_int_equal(bad, bad_id);
}

static void expect_intact(store *s, int64_t nrows)
{
    int64_t rows = -1, bad = 0;
    char why[160];
    assert_int_equal(audit_verify(s, &rows, &bad, why, sizeof why), 0);
    assert_int_equal(rows, nrows);
    assert_int_equal(bad, -1);
}

/* SHA-256(prev || canon), computed here independently of audit.c. */
static void chain_hash(const unsigned char prev[32], const char *canon,
                       unsigned char out[32])
{
    size_t len = strlen(canon);
    unsigned char *input = malloc(32 + len);
    assert_non_null(input);
    memcpy(input, prev, 32);
    memcpy(input + 32, canon, len);
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(input, 32 + len, out, &n, EVP_sha256(), NULL),
                     1);
    assert_int_equal(n, 32);
    free(input);
}

/* ---- The hash --------------------------------------------------------- */

static void test_hash_matches_hand_computed(void **state)
{
    fixture *f = *state;
    audit_row r;
    memset(&r, 0, sizeof r);
    r.id = 1;
    r.ts_ms = 1767225600123;
    r.policy_rev = "sha256:9f1c";
    r.server = "github";
    r.tool = "create_issue";
    r.user = "al\"ice\n";
    r.agent = "claude-desktop";
    r.chain = NULL;
    r.session = "s\x01";
    r.decision = "consent_required";
    r.reason = "consent_required";
    r.arguments = "{\"title\":\"caf\xc3\xa9\"}";
    r.detail = "{\"a\":1}";
    r.args_sha256 = "ab12";
    assert_int_equal(audit_append(f->s, &r), 0);

    /* The canonical text, written out by hand: the thirteen other columns
     * of DESIGN §4, keys in byte order, text escaped, NULL as null,
     * integers in decimal. The facts (args_sha256) are not in it. */
    static const char canon[] =
        "{\"agent\":\"claude-desktop\","
        "\"arguments\":\"{\\\"title\\\":\\\"caf\xc3\xa9\\\"}\","
        "\"chain\":null,\"decision\":\"consent_required\","
        "\"detail\":\"{\\\"a\\\":1}\",\"id\":1,"
        "\"policy_rev\":\"sha256:9f1c\",\"reason\":\"consent_required\","
        "\"server\":\"github\",\"session\":\"s\\u0001\","
        "\"tool\":\"create_issue\",\"ts_ms\":1767225600123,"
        "\"user\":\"al\\\"ice\\n\"}";
    static const unsigned char zero[32];
    unsigned char want[32];
    chain_hash(zero, canon, want);
    assert_memory_equal(r.prev_hash, zero, 32);
    assert_memory_equal(r.hash, want, 32);

    /* What is stored is what was computed. */
    audit_row got;
    assert_int_equal(audit_get(f->s, 1, &got), 1);
    assert_memory_equal(got.hash, want, 32);
    assert_memory_equal(got.prev_hash, zero, 32);
    assert_string_equal(got.user, "al\"ice\n");
    assert_null(got.chain);
    assert_string_equal(got.args_sha256, "ab12");
    unsigned char again[32];
    assert_int_equal(audit_hash_row(&got, again), 0);
    assert_memory_equal(again, want, 32);

    /* The second row chains on the first. */
    audit_row r2;
    fill_row(&r2, 2);
    assert_int_equal(audit_append(f->s, &r2), 0);
    assert_memory_equal(r2.prev_hash, want, 32);
    expect_intact(f->s, 2);
}

/* The facts (args_sha256, token) go to decision_facts, only for a row
 * that has some, and are not hashed: the chain covers exactly the columns
 * of DESIGN §4's decisions table. */
static void test_facts_kept_beside_the_chain(void **state)
{
    fixture *f = *state;
    audit_row r;
    memset(&r, 0, sizeof r);
    r.id = 1;
    r.ts_ms = 5;
    r.policy_rev = "p";
    r.server = "s";
    r.tool = "t";
    r.decision = "deny";
    r.reason = "token_invalid";
    r.detail = "{}";
    r.token = "{\"via\":\"jwt\",\"outcome\":\"expired\"}";
    assert_int_equal(audit_append(f->s, &r), 0);
    static const char canon[] =
        "{\"agent\":null,\"arguments\":null,"
        "\"chain\":null,\"decision\":\"deny\",\"detail\":\"{}\",\"id\":1,"
        "\"policy_rev\":\"p\",\"reason\":\"token_invalid\","
        "\"server\":\"s\",\"session\":null,\"tool\":\"t\",\"ts_ms\":5,"
        "\"user\":null}";
    static const unsigned char zero[32];
    unsigned char want[32];
    chain_hash(zero, canon, want);
    assert_memory_equal(r.hash, want, 32);

    /* A row without facts hashes the same way and has no facts row. */
    r.id = 2;
    r.token = NULL;
    assert_int_equal(audit_append(f->s, &r), 0);
    audit_row got;
    assert_int_equal(audit_get(f->s, 1, &got), 1);
    assert_string_equal(got.token, "{\"via\":\"jwt\",\"outcome\":\"expired\"}");
    assert_null(got.args_sha256);
    assert_int_equal(audit_get(f->s, 2, &got), 1);
    assert_null(got.token);
    expect_text(f->s->db,
                "SELECT group_concat(decision_id) FROM decision_facts", "1");
    expect_intact(f->s, 2);

    /* decisions has the contract's fifteen columns, no more. */
    expect_text(f->s->db,
                "SELECT group_concat(name, ' ') FROM"
                " pragma_table_info('decisions')",
                "id ts_ms policy_rev server tool user agent chain session "
                "decision reason arguments detail prev_hash hash");
}

/* A file of an earlier development layout (args_sha256 and token in
 * decisions, and in the hash) is refused by writers and readers alike,
 * with a message that says what to do, and left as it was. */
static void test_old_layout_refused(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    unlink(f->path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE decisions (id INTEGER PRIMARY KEY,"
                     " ts_ms INTEGER NOT NULL, policy_rev TEXT NOT NULL,"
                     " server TEXT NOT NULL, tool TEXT NOT NULL, user TEXT,"
                     " agent TEXT, chain TEXT, session TEXT, decision TEXT"
                     " NOT NULL, reason TEXT NOT NULL, arguments TEXT,"
                     " detail TEXT NOT NULL, prev_hash BLOB NOT NULL,"
                     " hash BLOB NOT NULL, args_sha256 TEXT, token TEXT);"
                     "CREATE TABLE consents (id INTEGER PRIMARY KEY);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    char err[300];
    store *s = NULL;
    assert_int_equal(store_open(f->path, NULL, &s, err, sizeof err), TRINE_EIO);
    assert_non_null(strstr(err, "earlier development version"));
    assert_non_null(strstr(err, "move it aside"));
    store_opts ro = {.readonly = true};
    assert_int_equal(store_open(f->path, &ro, &s, err, sizeof err), TRINE_EIO);
    assert_non_null(strstr(err, "earlier development version"));
    /* The writer created nothing in it. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    expect_text(db,
                "SELECT count(*) FROM sqlite_master"
                " WHERE name = 'decision_facts'",
                "0");
    sqlite3_close(db);
}

/* ---- Appends and transactions ---------------------------------------- */

static void test_reopen_continues_chain(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 3);
    audit_row last;
    assert_int_equal(audit_get(f->s, 3, &last), 1);
    unsigned char last_hash[32];
    memcpy(last_hash, last.hash, 32);
    store_close(f->s);

    assert_int_equal(store_open(f->path, NULL, &f->s, NULL, 0), 0);
    assert_int_equal(audit_next_id(f->s), 4);
    audit_row r;
    fill_row(&r, 4);
    assert_int_equal(audit_append(f->s, &r), 0);
    assert_memory_equal(r.prev_hash, last_hash, 32);
    expect_intact(f->s, 4);
}

static void test_rollback_restores_head(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 2);
    audit_row two;
    assert_int_equal(audit_get(f->s, 2, &two), 1);
    unsigned char head[32];
    memcpy(head, two.hash, 32);

    assert_int_equal(audit_begin(f->s), 0);
    audit_row r;
    fill_row(&r, 3);
    assert_int_equal(audit_append(f->s, &r), 0);
    fill_row(&r, 4);
    assert_int_equal(audit_append(f->s, &r), 0);
    assert_int_equal(audit_next_id(f->s), 5);
    audit_rollback(f->s);
    assert_int_equal(audit_next_id(f->s), 3);
    assert_int_equal(audit_get(f->s, 3, &r), 0);

    fill_row(&r, 3);
    assert_int_equal(audit_append(f->s, &r), 0);
    assert_memory_equal(r.prev_hash, head, 32);
    expect_intact(f->s, 3);
}

static void test_failed_append_and_commit(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 1);
    /* A trigger makes one insert fail inside the transaction. */
    exec_ok(f->s, "CREATE TRIGGER boom BEFORE INSERT ON decisions"
                  " WHEN NEW.tool = 'boom' BEGIN"
                  " SELECT RAISE(ABORT, 'boom refused'); END");
    assert_int_equal(audit_begin(f->s), 0);
    audit_row r;
    fill_row(&r, 2);
    assert_int_equal(audit_append(f->s, &r), 0);
    fill_row(&r, 3);
    r.tool = "boom";
    assert_int_equal(audit_append(f->s, &r), TRINE_EIO);
    assert_string_equal(store_errmsg(f->s), "boom refused");
    /* The failed row did not advance the head. */
    assert_int_equal(audit_next_id(f->s), 3);
    audit_rollback(f->s);
    assert_int_equal(audit_next_id(f->s), 2);

    /* A commit that fails (a deferred foreign key is violated) rolls back
     * and returns the head to the last committed row. */
    exec_ok(f->s, "PRAGMA foreign_keys=ON");
    exec_ok(f->s, "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                  "CREATE TABLE child (p INTEGER REFERENCES parent(id)"
                  " DEFERRABLE INITIALLY DEFERRED)");
    assert_int_equal(audit_begin(f->s), 0);
    fill_row(&r, 2);
    assert_int_equal(audit_append(f->s, &r), 0);
    exec_ok(f->s, "INSERT INTO child VALUES (42)");
    assert_int_equal(audit_commit(f->s), TRINE_EIO);
    assert_string_equal(store_errmsg(f->s), "FOREIGN KEY constraint failed");
    assert_int_equal(audit_next_id(f->s), 2);
    assert_int_equal(audit_get(f->s, 2, &r), 0);
    exec_ok(f->s, "PRAGMA foreign_keys=OFF");

    /* Autocommit append after all that still chains on row 1. */
    audit_row one;
    assert_int_equal(audit_get(f->s, 1, &one), 1);
    unsigned char h1[32];
    memcpy(h1, one.hash, 32);
    fill_row(&r, 2);
    assert_int_equal(audit_append(f->s, &r), 0);
    assert_memory_equal(r.prev_hash, h1, 32);
    expect_intact(f->s, 2);
}

static void test_append_validates(void **state)
{
    fixture *f = *state;
    audit_row r;
    fill_row(&r, 2);
    assert_int_equal(audit_append(f->s, &r), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s), "row id 2 is not the next id 1");
    fill_row(&r, 1);
    r.decision = "maybe";
    assert_int_equal(audit_append(f->s, &r), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s), "unknown decision \"maybe\"");
    fill_row(&r, 1);
    r.detail = NULL;
    assert_int_equal(audit_append(f->s, &r), TRINE_EINVAL);
    assert_int_equal(audit_commit(f->s), TRINE_EINVAL);
    assert_int_equal(audit_begin(f->s), 0);
    assert_int_equal(audit_begin(f->s), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s), "a transaction is open");
    audit_rollback(f->s);
    assert_int_equal(audit_next_id(f->s), 1);
    expect_intact(f->s, 0);
}

/* ---- Verification ---------------------------------------------------- */

static void test_verify_detects_edit(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 5);
    expect_intact(f->s, 5);
    exec_ok(f->s, "UPDATE decisions SET decision = 'allow', reason = 'allow'"
                  " WHERE id = 3");
    expect_broken(f->s, 3, "hash does not match its contents");
}

static void test_verify_detects_edit_of_each_column(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 3);
    static const char *const edits[] = {
        "ts_ms = ts_ms + 1", "policy_rev = 'sha256:0'", "server = 'gitlab'",
        "tool = 'x'",        "user = 'mallory'",        "agent = NULL",
        "chain = '[]'",      "session = 's2'",          "reason = 'forbidden'",
        "arguments = '{}'",  "detail = '{}'",
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char sql[160];
        exec_ok(f->s, "SAVEPOINT edit");
        snprintf(sql, sizeof sql, "UPDATE decisions SET %s WHERE id = 3",
                 edits[i]);
        exec_ok(f->s, sql);
        int64_t rows = 0, bad = 0;
        char why[160];
        assert_int_equal(audit_verify(f->s, &rows, &bad, why, sizeof why), 1);
        assert_int_equal(bad, 3);
        assert_string_equal(why, "hash does not match its contents");
        exec_ok(f->s, "ROLLBACK TO edit; RELEASE edit");
    }
    expect_intact(f->s, 3);
}

static void test_verify_detects_type_and_nul_tricks(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 3);
    exec_ok(f->s, "SAVEPOINT e");
    exec_ok(f->s, "UPDATE decisions SET tool = CAST(tool AS BLOB)"
                  " WHERE id = 2");
    expect_broken(f->s, 2, "tool is not text");
    exec_ok(f->s, "ROLLBACK TO e");
    exec_ok(f->s, "UPDATE decisions SET user = user || char(0) || 'x'"
                  " WHERE id = 2");
    expect_broken(f->s, 2, "user holds a NUL byte");
    exec_ok(f->s, "ROLLBACK TO e");
    exec_ok(f->s, "UPDATE decisions SET hash = x'00' WHERE id = 2");
    expect_broken(f->s, 2, "hash is not 32 bytes");
    exec_ok(f->s, "ROLLBACK TO e");
    exec_ok(f->s, "UPDATE decisions SET ts_ms = '1' WHERE id = 1");
    /* The column's INTEGER affinity turns '1' back into 1: an edit. */
    expect_broken(f->s, 1, "hash does not match its contents");
    exec_ok(f->s, "ROLLBACK TO e");
    exec_ok(f->s, "UPDATE decisions SET ts_ms = 'soon' WHERE id = 1");
    expect_broken(f->s, 1, "ts_ms is not an integer");
    exec_ok(f->s, "ROLLBACK TO e; RELEASE e");
    expect_intact(f->s, 3);
}

static void test_verify_detects_deleted_row(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 5);
    exec_ok(f->s, "DELETE FROM decisions WHERE id = 3");
    expect_broken(f->s, 4, "row 3 is missing");
    exec_ok(f->s, "DELETE FROM decisions WHERE id = 1");
    expect_broken(f->s, 2, "row 1 is missing");
}

/* Swaps the contents of rows a and b (every column but id). */
static void swap_rows(store *s, int a, int b)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE swap AS SELECT * FROM decisions"
             " WHERE id IN (%d, %d);"
             "UPDATE temp.swap SET id = CASE id WHEN %d THEN %d ELSE %d END;"
             "DELETE FROM decisions WHERE id IN (%d, %d);"
             "INSERT INTO decisions SELECT * FROM temp.swap;"
             "DROP TABLE temp.swap",
             a, b, a, b, a, a, b);
    exec_ok(s, sql);
}

static void test_verify_detects_reordered_chain(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 4);
    /* Moving rows: their hashes cover their ids. */
    swap_rows(f->s, 2, 3);
    expect_broken(f->s, 2, "hash does not match its contents");
}

static void test_verify_detects_rehashed_reorder(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 4);
    swap_rows(f->s, 2, 3);
    /* Someone recomputes each moved row's own hash but cannot repair the
     * links without rewriting every later row: the next link breaks. */
    for (int64_t id = 2; id <= 3; id++) {
        audit_row r;
        assert_int_equal(audit_get(f->s, id, &r), 1);
        unsigned char h[32];
        assert_int_equal(audit_hash_row(&r, h), 0);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(f->s->db,
                                            "UPDATE decisions SET hash = ?1"
                                            " WHERE id = ?2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(st, 1, h, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, id);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
    expect_broken(f->s, 2, "prev_hash does not match row 1's hash");
}

static void test_verify_first_row_prev_hash(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 2);
    exec_ok(f->s, "UPDATE decisions SET prev_hash = randomblob(32)"
                  " WHERE id = 1");
    /* prev_hash is part of the hashed input, so the row hash fails first. */
    expect_broken(f->s, 1, "hash does not match its contents");
}

static void test_verify_empty_log(void **state)
{
    fixture *f = *state;
    expect_intact(f->s, 0);
}

/* ---- Reading back ---------------------------------------------------- */

typedef struct collected {
    int64_t ids[64];
    int n;
    int stop_after;
} collected;

static int collect(void *ctx, const audit_row *row)
{
    collected *c = ctx;
    c->ids[c->n++] = row->id;
    if (c->stop_after > 0 && c->n == c->stop_after)
        return 7;
    return 0;
}

/* Runs a query and compares the ids it returned with want (0-terminated). */
static void expect_ids(store *s, const audit_filter *flt, const int64_t *want)
{
    collected c = {.n = 0};
    assert_int_equal(audit_query(s, flt, collect, &c), 0);
    int n = 0;
    while (want[n] != 0)
        n++;
    assert_int_equal(c.n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(c.ids[i], want[i]);
}

static void test_query_filters(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 6);
    expect_ids(f->s, NULL, (const int64_t[]){1, 2, 3, 4, 5, 6, 0});
    audit_filter flt = {.user = "alice"};
    expect_ids(f->s, &flt, (const int64_t[]){1, 3, 5, 0});
    flt = (audit_filter){.agent = "claude-desktop"};
    expect_ids(f->s, &flt, (const int64_t[]){1, 2, 5, 0});
    flt = (audit_filter){.tool = "get_issue", .decision = "deny"};
    expect_ids(f->s, &flt, (const int64_t[]){4, 6, 0});
    flt = (audit_filter){.decision = "consent_required"};
    expect_ids(f->s, &flt, (const int64_t[]){2, 0});
    /* Both time bounds are inclusive. */
    flt = (audit_filter){.since_ms = 1767225602000, .until_ms = 1767225604000};
    expect_ids(f->s, &flt, (const int64_t[]){2, 3, 4, 0});
    /* The newest N, still oldest first. */
    flt = (audit_filter){.limit = 2};
    expect_ids(f->s, &flt, (const int64_t[]){5, 6, 0});
    flt = (audit_filter){.user = "alice", .limit = 2};
    expect_ids(f->s, &flt, (const int64_t[]){3, 5, 0});
    flt = (audit_filter){.user = "nobody"};
    expect_ids(f->s, &flt, (const int64_t[]){0});
    /* A value is data, never SQL. */
    flt = (audit_filter){.user = "alice' OR '1'='1"};
    expect_ids(f->s, &flt, (const int64_t[]){0});

    collected c = {.stop_after = 2};
    assert_int_equal(audit_query(f->s, NULL, collect, &c), 7);
    assert_int_equal(c.n, 2);
}

static void test_query_rows_carry_columns(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 3);
    audit_row r;
    assert_int_equal(audit_get(f->s, 3, &r), 1);
    assert_int_equal(r.id, 3);
    assert_int_equal(r.ts_ms, 1767225603000);
    assert_string_equal(r.policy_rev, "sha256:9f1c");
    assert_string_equal(r.server, "github");
    assert_string_equal(r.tool, "delete_repo");
    assert_string_equal(r.user, "alice");
    assert_string_equal(r.agent, "ci-bot");
    assert_string_equal(r.chain, "[\"ci-bot\",\"deploy\"]");
    assert_string_equal(r.session, "s1");
    assert_string_equal(r.decision, "deny");
    assert_string_equal(r.reason, "agent_denied");
    assert_string_equal(r.arguments,
                        "{\"owner\":\"acme\",\"repo\":\"widgets\"}");
    assert_string_equal(r.detail, "{\"decision\":\"x\"}");
    assert_string_equal(r.args_sha256, "5e3c");
    assert_int_equal(audit_get(f->s, 99, &r), 0);
}

static void test_stats(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 6);
    json_t *st = NULL;
    assert_int_equal(audit_stats(f->s, NULL, &st), 0);
    char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        text, "{\"agent\":{\"\":1,\"ci-bot\":1,\"claude-desktop\":3,"
              "\"ops-console\":1},"
              "\"decision\":{\"allow\":2,\"consent_required\":1,\"deny\":3},"
              "\"reason\":{\"agent_denied\":2,\"allow\":2,"
              "\"consent_required\":1,\"scope_missing\":1},"
              "\"tool\":{\"create_issue\":2,\"delete_repo\":1,"
              "\"get_issue\":3},\"total\":6}");
    free(text);
    json_decref(st);

    audit_filter flt = {.since_ms = 1767225605000, .user = "bob"};
    assert_int_equal(audit_stats(f->s, &flt, &st), 0);
    text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"agent\":{\"ops-console\":1},"
                              "\"decision\":{\"deny\":1},"
                              "\"reason\":{\"scope_missing\":1},"
                              "\"tool\":{\"get_issue\":1},\"total\":1}");
    free(text);
    json_decref(st);
}

static void test_stats_invalid_utf8_key(void **state)
{
    fixture *f = *state;
    append_rows(f->s, 1, 1);
    exec_ok(f->s, "UPDATE decisions SET tool = 'a' || CAST(x'ff' AS TEXT)");
    json_t *st = NULL;
    assert_int_equal(audit_stats(f->s, NULL, &st), 0);
    json_t *tool = json_object_get(st, "tool");
    assert_int_equal(json_integer_value(json_object_get(tool, "a\xef\xbf\xbd")),
                     1);
    json_decref(st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_hash_matches_hand_computed),
        T(test_facts_kept_beside_the_chain),
        T(test_old_layout_refused),
        T(test_reopen_continues_chain),
        T(test_rollback_restores_head),
        T(test_failed_append_and_commit),
        T(test_append_validates),
        T(test_verify_detects_edit),
        T(test_verify_detects_edit_of_each_column),
        T(test_verify_detects_type_and_nul_tricks),
        T(test_verify_detects_deleted_row),
        T(test_verify_detects_reordered_chain),
        T(test_verify_detects_rehashed_reorder),
        T(test_verify_first_row_prev_hash),
        T(test_verify_empty_log),
        T(test_query_filters),
        T(test_query_rows_carry_columns),
        T(test_stats),
        T(test_stats_invalid_utf8_key),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
