/*
 * checkpoint.c - the WAL checkpoint thread (see checkpoint.h).
 */
#define _GNU_SOURCE /* gettid */

#include "daemon/checkpoint.h"

#include "daemon/log.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* After a checkpoint that could not get near the end of the WAL (a reader
 * holds an old snapshot), wait this long before the next one rather than
 * copying and syncing again after every commit. */
#define CHECKPOINT_BACKOFF_MS 100

/* A pass that finds at most this many new frames leaves the rest to the
 * writer's tail checkpoint; no more than CHECKPOINT_MAX_PASSES + 1 passes
 * are made (when commits come faster than a pass copies them). */
#define CHECKPOINT_TAIL_PAGES 64
#define CHECKPOINT_MAX_PASSES 8

/* The checkpoint thread's nice value. */
#define CHECKPOINT_NICE 10

struct checkpointer {
    char *path;
    int pages; /* the WAL size that asks for a checkpoint */
    store_opts opts;
    store *st; /* the thread's own connection; NULL until opened */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    atomic_bool requested;
    atomic_bool tail; /* see checkpoint_take_tail */
    bool stop;
    bool reset;         /* checkpoint_reset waits for the connection to go */
    store_file_id db;   /* the writer's database file (checkpoint_set_db) */
    bool moved_logged;  /* the log moved: logged once until reopened */
    bool failing;       /* the last attempt failed: logged once per streak */
    int64_t not_before; /* monotonic ms: no checkpoint before this */
    pthread_t thread;
};

static int64_t checkpoint_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs the start of a failure streak. */
static void checkpoint_failed(checkpointer *c, const char *why)
{
    if (c->failing)
        return;
    c->failing = true;
    logline l;
    if (log_begin(&l, LOG_WARN, "checkpoint_failed")) {
        log_str(&l, "audit", c->path);
        log_str(&l, "error", why);
        log_end(&l);
    }
}

/* Drops the connection, to start afresh next time. */
static void checkpoint_close(checkpointer *c)
{
    store_close(c->st);
    c->st = NULL;
}

/* Opens the connection if needed, on the writer's database file only (db; any
 * file at the path while the writer has named none). Returns 0, or -1 after
 * logging why not. */
static int checkpoint_open(checkpointer *c, const store_file_id *db)
{
    char err[512];
    if (c->st != NULL && db->known &&
        !store_same_file(&store_files_of(c->st)->db, db))
        checkpoint_close(c);
    /* The open checks, before anything is read through the connection,
     * that the file at the path is the writer's (the writer reopens, and
     * says so, on its next commit). */
    c->opts.expect_db = db;
    int rc = c->st == NULL
                 ? store_open(c->path, &c->opts, &c->st, err, sizeof err)
                 : 0;
    c->opts.expect_db = NULL;
    if (rc != 0) {
        checkpoint_failed(c, err);
        return -1;
    }
    c->moved_logged = false;
    return 0;
}

/* Drops a connection whose database file or WAL is no longer the one at
 * the path (deleted or replaced under trined): checkpointing it would copy
 * into a file no one reads. Returns true when it did. */
static bool checkpoint_drop_moved(checkpointer *c)
{
    if (c->st == NULL || store_moved(c->st) != 1)
        return false;
    if (!c->moved_logged) {
        c->moved_logged = true;
        logline l;
        if (log_begin(&l, LOG_WARN, "checkpoint_file_moved")) {
            log_str(&l, "audit", c->path);
            log_str(&l, "error", store_errmsg(c->st));
            log_end(&l);
        }
    }
    checkpoint_close(c);
    return true;
}

/* The most new frames a pass may find and still leave them to the tail. */
static int checkpoint_tail_pages(const checkpointer *c)
{
    int t = c->pages / 16;
    return t < CHECKPOINT_TAIL_PAGES ? t : CHECKPOINT_TAIL_PAGES;
}

/* Copies the WAL into the database in passes, each taking what the
 * commits added during the one before, until a pass finds at most
 * checkpoint_tail_pages new frames; then syncs the database file and
 * leaves that short tail to the writer (see checkpoint.h). */
static void checkpoint_run(checkpointer *c)
{
    pthread_mutex_lock(&c->mu);
    store_file_id db = c->db;
    pthread_mutex_unlock(&c->mu);
    if (checkpoint_drop_moved(c) || checkpoint_open(c, &db) != 0)
        return;
    int64_t start = checkpoint_mono_ms();
    int prev = -1;
    int last = 0; /* the WAL's size as the last pass found it */
    int pass = 0;
    bool synced = false;
    for (;; pass++) {
        int log = 0;
        int done = 0;
        int rc = store_checkpoint(c->st, &log, &done);
        last = log;
        if (rc < 0) {
            checkpoint_failed(c, store_errmsg(c->st));
            checkpoint_close(c);
            return;
        }
        /* Busy (another checkpoint, or the database locked for a moment)
         * is not a failure: the writer asks again after a later commit. */
        if (rc != 0)
            return;
        if (log - done > checkpoint_tail_pages(c)) {
            /* A reader holds frames back (the writer's own open
             * transaction may hold a few): copying again after every
             * commit would only sync the same files over and over. */
            c->not_before = checkpoint_mono_ms() + CHECKPOINT_BACKOFF_MS;
            return;
        }
        /* The WAL started over (a pass met no commit, and one came
         * since): everything was copied and synced. */
        if (log < prev)
            break;
        if ((prev >= 0 && log - prev <= checkpoint_tail_pages(c)) ||
            pass >= CHECKPOINT_MAX_PASSES) {
            /* SQLite syncs the database file only after a checkpoint
             * that met no commit. Sync what the passes wrote now, so the
             * writer's tail has only the tail to sync; after the first,
             * long sync, one more pass takes what came meanwhile. */
            if (store_sync_db(c->st) != 0) {
                char err[512];
                snprintf(err, sizeof err, "sync %s: %s", c->path,
                         store_errmsg(c->st));
                checkpoint_failed(c, err);
                checkpoint_close(c);
                return;
            }
            if (synced || pass >= CHECKPOINT_MAX_PASSES) {
                /* The pokes that came meanwhile are answered by the
                 * tail. */
                atomic_store(&c->tail, true);
                atomic_store(&c->requested, false);
                break;
            }
            synced = true;
        }
        prev = log;
    }
    logline l;
    if (log_begin(&l, LOG_DEBUG, "checkpoint")) {
        log_int(&l, "wal_pages", last);
        log_int(&l, "passes", pass + 1);
        log_int(&l, "ms", checkpoint_mono_ms() - start);
        log_end(&l);
    }
    if (c->failing) {
        c->failing = false;
        if (log_begin(&l, LOG_INFO, "checkpoint_recovered")) {
            log_str(&l, "audit", c->path);
            log_end(&l);
        }
    }
}

/* Waits (the lock held) until a checkpoint is asked for and allowed, or
 * the thread is to stop. Returns false to stop. */
static bool checkpoint_wait(checkpointer *c)
{
    for (;;) {
        if (c->stop)
            return false;
        if (c->reset) {
            checkpoint_close(c);
            c->reset = false;
            atomic_store(&c->requested, false);
            atomic_store(&c->tail, false);
            pthread_cond_broadcast(&c->cond);
            continue;
        }
        if (atomic_load(&c->requested)) {
            int64_t now = checkpoint_mono_ms();
            if (now >= c->not_before)
                return true;
            struct timespec ts = {.tv_sec = (time_t)(c->not_before / 1000),
                                  .tv_nsec =
                                      (long)(c->not_before % 1000) * 1000000};
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
            continue;
        }
        pthread_cond_wait(&c->cond, &c->mu);
    }
}

static void *checkpoint_main(void *arg)
{
    checkpointer *c = arg;
    /* Copying the WAL is background work: on a busy machine it should
     * yield the CPU to the threads that answer requests (on Linux the
     * nice value is per thread). Raising it needs no privilege. */
    setpriority(PRIO_PROCESS, (id_t)gettid(), CHECKPOINT_NICE);
    pthread_mutex_lock(&c->mu);
    while (checkpoint_wait(c)) {
        pthread_mutex_unlock(&c->mu);
        /* Cleared before the checkpoint: a poke during it asks for one
         * more, which copies what was committed meanwhile. */
        atomic_store(&c->requested, false);
        checkpoint_run(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int checkpoint_start(const char *path, bool sync_normal, int pages,
                     checkpointer **out)
{
    checkpointer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TRINE_ENOMEM;
    size_t n = strlen(path) + 1;
    c->path = malloc(n);
    if (c->path == NULL) {
        free(c);
        return TRINE_ENOMEM;
    }
    memcpy(c->path, path, n);
    c->pages = pages;
    c->opts.checkpointer = true;
    c->opts.sync_normal = sync_normal;
    /* A passive checkpoint never waits for a lock anyway. */
    c->opts.busy_timeout_ms = -1;
    atomic_init(&c->requested, false);
    atomic_init(&c->tail, false);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c->path);
        free(c);
        return TRINE_EIO;
    }
    *out = c;
    return 0;
}

/* Asks for a checkpoint: an atomic flag, and one lock and one wake-up
 * when it was not asked for yet. */
static void checkpoint_poke(checkpointer *c)
{
    /* While a tail is waiting for the writer, a checkpoint here would
     * only contend with it. */
    if (atomic_load(&c->tail) || atomic_exchange(&c->requested, true))
        return;
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

void checkpoint_set_db(checkpointer *c, const store_file_id *db)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->db = *db;
    pthread_mutex_unlock(&c->mu);
}

void checkpoint_reset(checkpointer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->reset = true;
    pthread_cond_broadcast(&c->cond);
    while (c->reset)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* True (once) when a checkpoint has copied the bulk of the WAL but commits
 * made meanwhile kept it from finishing. */
static bool checkpoint_take_tail(checkpointer *c)
{
    /* A plain load first: the exchange (a locked instruction) is needed
     * only once per cycle. */
    return atomic_load(&c->tail) && atomic_exchange(&c->tail, false);
}

void checkpoint_after_commit(checkpointer *c, store *st)
{
    int pages = store_wal_pages(st);
    if (checkpoint_take_tail(c)) {
        /* A small WAL has started over since: nothing is left to copy.
         * A failure here is the next commit's to report; a busy or
         * partial tail only leaves the WAL to grow until the next cycle. */
        if (pages >= c->pages / 2)
            store_checkpoint(st, NULL, NULL);
        return;
    }
    if (pages >= c->pages)
        checkpoint_poke(c);
}

void checkpoint_stop(checkpointer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    checkpoint_close(c);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}
