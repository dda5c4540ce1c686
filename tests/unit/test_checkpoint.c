/*
 * test_checkpoint.c - the WAL checkpoint thread: commits never checkpoint,
 * the thread and the writer's tail keep the WAL near its threshold (it
 * starts over again and again), every row survives, a checkpoint that
 * cannot be made is logged, retried and recovers, and a file replaced under
 * the thread is dropped, never checkpointed into.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/checkpoint.h"
#include "daemon/log.h"
#include "store/store.h"

/* A small threshold, so a test makes many cycles quickly. */
#define TEST_PAGES 200

typedef struct fixture {
    char dir[64];
    char path[128];
    char other[128];
    char logpath[128];
} fixture;

static void remove_db(const char *path)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/trine-ckpt-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/audit.db", f->dir);
    snprintf(f->other, sizeof f->other, "%s/other.db", f->dir);
    snprintf(f->logpath, sizeof f->logpath, "%s/log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    log_set_fd(STDERR_FILENO);
    remove_db(f->path);
    remove_db(f->other);
    unlink(f->logpath);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Appends rows first..last in one transaction. */
static void append_rows(store *s, int64_t first, int64_t last)
{
    assert_int_equal(audit_begin(s), 0);
    for (int64_t id = first; id <= last; id++) {
        audit_row r;
        memset(&r, 0, sizeof r);
        r.id = id;
        r.ts_ms = 1767225600000 + id;
        r.policy_rev = "sha256:abc";
        r.server = "github";
        r.tool = "create_issue";
        r.user = "alice";
        r.agent = "claude-desktop";
        r.decision = "allow";
        r.reason = "allow";
        r.arguments = "{\"owner\":\"acme\",\"repo\":\"widgets\"}";
        r.detail = "{\"decision\":\"allow\",\"reason\":\"allow\",\"matched\":"
                   "[{\"set\":\"user\",\"rule\":\"github.trine:17\"}]}";
        r.args_sha256 = "00ff";
        assert_int_equal(audit_append(s, &r), 0);
    }
    assert_int_equal(audit_commit(s), 0);
}

static store *open_writer(const char *path)
{
    store_opts o = {.sync_normal = true, .manual_checkpoint = true};
    store *s = NULL;
    assert_int_equal(store_open(path, &o, &s, NULL, 0), 0);
    return s;
}

static void test_wal_stays_bounded(void **state)
{
    fixture *f = *state;
    store *w = open_writer(f->path);
    checkpointer *c = NULL;
    assert_int_equal(checkpoint_start(f->path, true, TEST_PAGES, &c), 0);

    int restarts = 0;
    int prev = store_wal_pages(w);
    int most = 0;
    int64_t id = 1;
    for (int commit = 0; commit < 3000; commit++, id += 5) {
        append_rows(w, id, id + 4);
        checkpoint_after_commit(c, w);
        int pages = store_wal_pages(w);
        if (pages < prev)
            restarts++;
        if (pages > most)
            most = pages;
        prev = pages;
        /* Give the thread a moment once it has work, as the commits of a
         * real load give it, and more when a busy machine left it behind:
         * the test is about the cycle, not a race. */
        if (pages >= TEST_PAGES)
            sleep_ms(pages >= 2 * TEST_PAGES ? 50 : 1);
    }
    /* Without checkpoints the WAL would hold every page ever written:
     * thousands. It started over again and again instead. */
    assert_true(restarts >= 5);
    assert_true(most < 4 * TEST_PAGES);
    checkpoint_stop(c);

    /* Every row is there, in one unbroken chain. */
    int64_t rows = 0, bad = 0;
    assert_int_equal(audit_verify(w, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, id - 1);
    store_close(w);
    store_opts ro = {.readonly = true};
    store *r = NULL;
    assert_int_equal(store_open(f->path, &ro, &r, NULL, 0), 0);
    assert_int_equal(audit_verify(r, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, id - 1);
    store_close(r);
}

/* Reads the log file written so far. */
static char *read_log(const fixture *f)
{
    static char buf[8192];
    int fd = open(f->logpath, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_failure_logged_and_recovered(void **state)
{
    fixture *f = *state;
    int fd = open(f->logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    log_set_fd(fd);

    /* The thread checkpoints f->path, which does not exist yet; the WAL
     * that asks for it is another file's. */
    checkpointer *c = NULL;
    assert_int_equal(checkpoint_start(f->path, true, TEST_PAGES, &c), 0);
    store *w = open_writer(f->other);
    int64_t id = 1;
    while (store_wal_pages(w) < TEST_PAGES) {
        append_rows(w, id, id + 9);
        id += 10;
    }
    checkpoint_after_commit(c, w);
    for (int i = 0;
         i < 2000 && strstr(read_log(f), "checkpoint_failed") == NULL; i++)
        sleep_ms(5);
    const char *log = read_log(f);
    assert_non_null(strstr(log, "level=warn event=checkpoint_failed"));
    /* The file is not created by the checkpoint connection. */
    assert_int_equal(access(f->path, F_OK), -1);

    /* Once the file exists, the next request succeeds and says so. */
    store *p = open_writer(f->path);
    append_rows(w, id, id + 9);
    checkpoint_after_commit(c, w);
    for (int i = 0;
         i < 2000 && strstr(read_log(f), "checkpoint_recovered") == NULL; i++)
        sleep_ms(5);
    log = read_log(f);
    assert_non_null(strstr(log, "level=info event=checkpoint_recovered"));
    /* Logged once per streak. */
    const char *first = strstr(log, "checkpoint_failed");
    assert_null(strstr(first + 1, "checkpoint_failed"));
    checkpoint_stop(c);
    store_close(p);
    store_close(w);
    log_set_fd(STDERR_FILENO);
    close(fd);
}

/* Appends to w and asks for checkpoints until the log holds what, giving
 * the thread time; *id is the next row id. */
static void poke_until(const fixture *f, store *w, checkpointer *c, int64_t *id,
                       const char *what)
{
    for (int i = 0; i < 2000 && strstr(read_log(f), what) == NULL; i++) {
        append_rows(w, *id, *id + 9);
        *id += 10;
        checkpoint_after_commit(c, w);
        sleep_ms(5);
    }
    assert_non_null(strstr(read_log(f), what));
}

static void test_replaced_file_dropped_until_the_writer_names_it(void **state)
{
    fixture *f = *state;
    int fd = open(f->logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    log_set_fd(fd);
    log_set_level(LOG_DEBUG);

    store *w = open_writer(f->path);
    checkpointer *c = NULL;
    assert_int_equal(checkpoint_start(f->path, true, TEST_PAGES, &c), 0);
    checkpoint_set_db(c, &store_files_of(w)->db);
    int64_t id = 1;
    poke_until(f, w, c, &id, "event=checkpoint ");

    /* Another database is moved onto the path: the thread's connection is
     * on a file no one reads any more. */
    store *o = open_writer(f->other);
    append_rows(o, 1, 3);
    store_close(o);
    assert_int_equal(rename(f->other, f->path), 0);
    poke_until(f, w, c, &id, "level=warn event=checkpoint_file_moved");
    /* It does not open the new file while the writer names the old one. */
    poke_until(f, w, c, &id, "is not the writer's");
    /* As the writer does: every connection to the old file closed, its
     * WAL files are removed from the path. */
    checkpoint_reset(c);
    store_files old = *store_files_of(w);
    store_close(w);
    assert_int_equal(store_remove_stale(f->path, &old), 2);

    /* The writer opens the new file and names it: checkpoints resume, on
     * that file. */
    store *n = open_writer(f->path);
    checkpoint_set_db(c, &store_files_of(n)->db);
    id = 4;
    poke_until(f, n, c, &id, "level=info event=checkpoint_recovered");
    checkpoint_stop(c);
    int64_t rows = 0, bad = 0;
    assert_int_equal(audit_verify(n, &rows, &bad, NULL, 0), 0);
    assert_int_equal(rows, id - 1);
    store_close(n);
    log_set_level(LOG_INFO);
    log_set_fd(STDERR_FILENO);
    close(fd);
}

static void test_reset_idle_and_null(void **state)
{
    fixture *f = *state;
    checkpointer *c = NULL;
    assert_int_equal(checkpoint_start(f->path, false, TEST_PAGES, &c), 0);
    checkpoint_reset(c);
    checkpoint_reset(c);
    checkpoint_reset(NULL);
    checkpoint_set_db(NULL, NULL);
    checkpoint_stop(c);
}

static void test_stop_idle_and_null(void **state)
{
    fixture *f = *state;
    checkpointer *c = NULL;
    assert_int_equal(checkpoint_start(f->path, false, TEST_PAGES, &c), 0);
    checkpoint_stop(c);
    checkpoint_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failure_logged_and_recovered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replaced_file_dropped_until_the_writer_names_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_reset_idle_and_null, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_idle_and_null, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
