/*
 * test_store_files.c - the files under a writer's connection (files.c):
 * telling that the database file or its WAL was deleted or replaced,
 * removing the WAL files a replaced database leaves behind, writability by
 * path, syncing through the connection, and the size limit (store.c).
 */
#include <fcntl.h>
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

#include "store_fixture.h"

/* The fixture's file with a suffix ("-wal", "-shm", ".other"). */
static void path_with(const fixture *f, const char *suffix, char *buf,
                      size_t len)
{
    snprintf(buf, len, "%s%s", f->path, suffix);
}

static void fill_row(audit_row *r, int64_t id)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->ts_ms = 1767225600000 + id;
    r->policy_rev = "sha256:abc";
    r->server = "github";
    r->tool = "get_issue";
    r->user = "alice";
    r->agent = "claude-desktop";
    r->decision = "allow";
    r->reason = "allow";
    r->arguments = "{\"owner\":\"acme\",\"repo\":\"widgets\"}";
    r->detail = "{\"decision\":\"allow\",\"reason\":\"allow\",\"padding\":"
                "\"0123456789012345678901234567890123456789012345678901234"
                "5678901234567890123456789012345678901234567890123456789\"}";
    r->args_sha256 = "00ff";
}

static int append_one(store *s)
{
    audit_row r;
    fill_row(&r, audit_next_id(s));
    return audit_append(s, &r);
}

static void test_files_recorded_at_open(void **state)
{
    fixture *f = *state;
    const store_files *files = store_files_of(f->s);
    store_files now;
    store_files_at(f->path, &now);
    assert_true(files->db.known);
    assert_true(files->wal.known);
    assert_true(files->shm.known);
    assert_true(store_same_file(&files->db, &now.db));
    assert_true(store_same_file(&files->wal, &now.wal));
    assert_true(store_same_file(&files->shm, &now.shm));
    assert_false(store_same_file(&files->db, &files->wal));
    assert_int_equal(store_moved(f->s), 0);
}

static void test_deleted_database_is_moved(void **state)
{
    fixture *f = *state;
    assert_int_equal(append_one(f->s), 0);
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(store_moved(f->s), 1);
    assert_string_equal(store_errmsg(f->s),
                        "audit log deleted or replaced under trined");
}

static void test_replaced_database_is_moved(void **state)
{
    fixture *f = *state;
    char other[160];
    path_with(f, ".other", other, sizeof other);
    FILE *fp = fopen(other, "w");
    assert_non_null(fp);
    fputs("not a database", fp);
    fclose(fp);
    assert_int_equal(rename(other, f->path), 0);
    assert_int_equal(store_moved(f->s), 1);
    assert_string_equal(store_errmsg(f->s),
                        "audit log deleted or replaced under trined");
}

static void test_deleted_wal_is_moved(void **state)
{
    fixture *f = *state;
    char wal[160];
    path_with(f, "-wal", wal, sizeof wal);
    assert_int_equal(append_one(f->s), 0);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(store_moved(f->s), 1);
    assert_string_equal(store_errmsg(f->s), "audit log's WAL file deleted or"
                                            " replaced under trined");
}

static void test_remove_stale_only_removes_the_old_files(void **state)
{
    fixture *f = *state;
    char wal[160];
    char shm[160];
    path_with(f, "-wal", wal, sizeof wal);
    path_with(f, "-shm", shm, sizeof shm);
    store_close(f->s);
    f->s = NULL;
    /* Stand-ins for a deleted database's WAL files. */
    const char *paths[2] = {wal, shm};
    for (int i = 0; i < 2; i++) {
        FILE *fp = fopen(paths[i], "w");
        assert_non_null(fp);
        fputs("old", fp);
        fclose(fp);
    }
    store_files old;
    store_files_at(f->path, &old);
    assert_true(old.wal.known);
    assert_true(old.shm.known);
    /* The WAL is replaced by a file of a new database: it stays. The old
     * one is kept open, so the new file cannot take its inode number. */
    int pin = open(wal, O_RDONLY);
    assert_true(pin >= 0);
    assert_int_equal(unlink(wal), 0);
    FILE *fp = fopen(wal, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(store_remove_stale(f->path, &old), 1);
    close(pin);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(stat(shm, &st), -1);
    /* Nothing left to remove. */
    assert_int_equal(store_remove_stale(f->path, &old), 0);
}

static void test_writable_by_path(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    assert_int_equal(store_writable(f->s), 0);
    assert_int_equal(store_path_writable(f->path, err, sizeof err), 0);
    char missing[160];
    path_with(f, ".missing", missing, sizeof missing);
    /* A file that does not exist yet is created by the writer. */
    assert_int_equal(store_path_writable(missing, err, sizeof err), 0);
    assert_int_equal(chmod(f->path, 0444), 0);
    if (geteuid() == 0) {
        /* Root writes whatever the mode says. */
        assert_int_equal(store_writable(f->s), 0);
    } else {
        assert_int_equal(store_writable(f->s), TRINE_EIO);
        char want[256];
        snprintf(want, sizeof want,
                 "audit log is read-only (%s: Permission denied)", f->path);
        assert_string_equal(store_errmsg(f->s), want);
        assert_int_equal(store_path_writable(f->path, err, sizeof err),
                         TRINE_EIO);
        assert_string_equal(err, want);
    }
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_int_equal(store_writable(f->s), 0);
}

static void test_sync_db(void **state)
{
    fixture *f = *state;
    assert_int_equal(append_one(f->s), 0);
    assert_int_equal(store_sync_db(f->s), 0);
}

static void test_size_limit_fills_and_lifts(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_limit_bytes(f->s), 0);
    /* 40000 bytes: 9 whole pages of 4096. */
    assert_int_equal(store_set_max_bytes(f->s, 40000), 0);
    assert_int_equal(store_limit_bytes(f->s), 9 * 4096);
    int rc = 0;
    int appended = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        rc = append_one(f->s);
        if (rc == 0)
            appended++;
    }
    assert_int_equal(rc, TRINE_EIO);
    assert_true(appended > 5);
    assert_string_equal(store_errmsg(f->s), "audit log full (36864 bytes)");
    /* The failed append left nothing behind: the chain goes on from the
     * last row that was committed. */
    assert_int_equal(audit_next_id(f->s), appended + 1);
    /* Lifted: the next rows fit. */
    assert_int_equal(store_set_max_bytes(f->s, 0), 0);
    assert_int_equal(store_limit_bytes(f->s), 0);
    assert_int_equal(append_one(f->s), 0);
    assert_int_equal(audit_next_id(f->s), appended + 2);
    int64_t rows = 0;
    int64_t bad = 0;
    assert_int_equal(audit_verify(f->s, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, appended + 1);
}

static void test_size_limit_never_below_the_file(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 40; i++)
        assert_int_equal(append_one(f->s), 0);
    /* One byte asks for one page; SQLite keeps the pages in use. */
    assert_int_equal(store_set_max_bytes(f->s, 1), 0);
    int64_t limit = store_limit_bytes(f->s);
    assert_true(limit > 4096);
    /* Rows still fit in the free space of the pages it has, not more. */
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = append_one(f->s);
    assert_int_equal(rc, TRINE_EIO);
    assert_int_equal(store_limit_bytes(f->s), limit);
    char want[64];
    snprintf(want, sizeof want, "audit log full (%lld bytes)",
             (long long)limit);
    assert_string_equal(store_errmsg(f->s), want);
}

static void test_size_limit_from_open_options(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    store_opts o = {.max_bytes = 65536};
    assert_int_equal(store_open(f->path, &o, &f->s, NULL, 0), 0);
    assert_int_equal(store_limit_bytes(f->s), 65536);
    assert_int_equal(store_set_max_bytes(f->s, -1), TRINE_EINVAL);
}

static void test_reader_has_no_files(void **state)
{
    fixture *f = *state;
    store_opts ro = {.readonly = true};
    store *r = NULL;
    assert_int_equal(store_open(f->path, &ro, &r, NULL, 0), 0);
    assert_false(store_files_of(r)->db.known);
    assert_int_equal(store_moved(r), TRINE_EINVAL);
    assert_int_equal(store_set_max_bytes(r, 65536), TRINE_EINVAL);
    store_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_recorded_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleted_database_is_moved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replaced_database_is_moved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleted_wal_is_moved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_remove_stale_only_removes_the_old_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writable_by_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_fills_and_lifts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_never_below_the_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_from_open_options,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_has_no_files, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
