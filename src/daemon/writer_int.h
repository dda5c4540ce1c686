/*
 * writer_int.h - what the two files of the audit writer share: writer.c
 * (group commit, replies, consent operations) and writer_store.c (the
 * writer's hold on the log: opening it, checking before and after each
 * write that its files are still in place and writable, letting go of a
 * log deleted or replaced under trined, and the size limit). Nothing else
 * includes it.
 */
#ifndef TRINED_WRITER_INT_H
#define TRINED_WRITER_INT_H

#include "daemon/checkpoint.h"
#include "daemon/writer.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* After the audit log was deleted or replaced: for this long, checks
 * evaluated before the consent cache was emptied fail closed (they may
 * rest on a grant of the old file); they are all written within moments
 * of the reopen, so the bound only guards against a clock that jumps. */
#define WRITER_FENCE_MS 5000

/* After the audit log was deleted or replaced, its decision ids are given
 * out again from 1: for this long, consent.grant refuses an id the old
 * file had also used, since it may name either decision. */
#define WRITER_AMBIGUOUS_MS (10 * 60 * 1000)

struct writer {
    daemon_ctx *ctx;
    store *st; /* NULL after a failure, until reopened */
    store_opts opts;
    checkpointer *ckpt; /* NULL: SQLite checkpoints inside commits */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; wakes a gathering writer */
    jobq pending;
    size_t pending_checks;
    bool busy;      /* a worker is writing (and owns st) */
    bool gathering; /* it waits in writer_gather */
    bool failing;   /* the last batch could not be written */
    /* The files of the log the writer last opened (store_files_of), and
     * that file's last row: when the files at the path are no longer
     * these, the log was deleted or replaced under us. */
    store_files files;
    bool files_known;
    /* A descriptor on that database file, so that its inode number cannot
     * be given to a new file while we compare identities. It is closed
     * only once no connection of ours uses the file: closing a descriptor
     * drops the process's POSIX locks on the file, SQLite's included. */
    int pin_fd;
    int64_t last_id;
    bool moved;   /* the files moved under the open store: writer_drop_old */
    bool dropped; /* the old files are let go of; the next open is new */
    bool reload_pending;      /* the grants of the file opened are not loaded */
    size_t consents_dropped;  /* grants forgotten with the old file */
    int64_t fence_wall_ms;    /* see WRITER_FENCE_MS */
    int64_t fence_until_ms;   /* monotonic */
    int64_t ambiguous_max_id; /* see WRITER_AMBIGUOUS_MS */
    int64_t ambiguous_prev;   /* the replaced file's last id */
    int64_t ambiguous_until_ms; /* monotonic */
    /* The size limit: asked for (written by the reload hook) and in force
     * on the open store. */
    _Atomic int64_t max_bytes;
    int64_t max_bytes_applied;
    /* After a batch did not fit under the limit: the limit asked for then
     * (0: not full), and its message. Until another limit is asked for,
     * every write is refused with that message, without trying: a smaller
     * batch could still fit, and checks would then be allowed or refused
     * by the size of their rows. */
    int64_t full_at;
    char full_msg[64];
    /* Totals for the log line at stop. */
    uint64_t commits;
    uint64_t rows;
    uint64_t failed_rows;
    int64_t commit_us;      /* time spent appending and committing */
    int64_t last_commit_ms; /* monotonic end of the last batch */
    /* A moving average of the time one batch takes to append and commit,
     * for writer_quick. */
    _Atomic int64_t batch_us;
};

/* The message of a log deleted or replaced under trined. */
#define WRITER_MOVED_MSG "audit log deleted or replaced under trined; reopening"

/* Returns the monotonic clock in milliseconds. */
int64_t writer_mono_ms(void);

/* Opens the store if it is closed. When the database file at the path is
 * not the one last opened (deleted or replaced while the store was
 * closed), it first lets go of the old files and fails this once, so the
 * checks evaluated on the old grants fail closed. After opening a file
 * other than the last one, it loads the consent grants from it. Returns 0,
 * or a negative code with a message in err. */
int writer_open(writer *w, char *err, size_t errlen);

/* Checks, before the store is written, that the files at the path are
 * still the open store's (store_moved: when not, w->moved is set) and that
 * it may still write them, after opening it if needed and applying a new
 * size limit. On failure the store is closed, unless the files moved
 * (writer_drop_old deals with them once the replies are out) or were made
 * read-only (the same connection is checked again next time). Returns 0,
 * or a negative code with a message in err. */
int writer_ready(writer *w, char *err, size_t errlen);

/* After a write: when the files at the path are no longer the open
 * store's, sets w->moved and err. Returns 0 or TRINE_EIO. */
int writer_still_there(writer *w, char *err, size_t errlen);

/* After a failed store operation: lets go of moved files, or closes the
 * store to start from a fresh connection (whatever broke, a full disk or
 * a lock, is then seen anew); a file made read-only keeps its connection.
 */
void writer_after_failure(writer *w);

/* Lets go of the files of a log that was deleted or replaced (or whose
 * WAL was); why goes to the log. See writer_store.c. */
void writer_drop_old(writer *w, const char *why);

/* True when j may have been allowed by a consent grant: an allow for a
 * tool that asks for consent under p (in doubt, true). */
bool writer_may_rest_on_grant(const trine_policy *p, const job *j);

/* The snapshot's reload hook (arg is the writer): reads audit-max-size
 * from the configuration file again; the writer applies it before its
 * next write. */
void writer_reload_settings(void *arg);

#endif /* TRINED_WRITER_INT_H */
