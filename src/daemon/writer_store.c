/*
 * writer_store.c - the audit writer's hold on the log (see writer_int.h):
 * opening it, checking around each write that its files are still the ones
 * at the path and that it may still write them, letting go of a log
 * deleted or replaced under trined and opening the new one, and the size
 * limit with its reload.
 */
#include "daemon/writer_int.h"

#include "daemon/consents.h"
#include "daemon/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t writer_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs the loud line of a log whose files are gone from under us. */
static void writer_log_moved(writer *w, const char *why)
{
    logline l;
    if (log_begin(&l, LOG_ERROR, "audit_replaced")) {
        log_str(&l, "audit", w->ctx->cfg->audit);
        log_str(&l, "msg", WRITER_MOVED_MSG);
        log_str(&l, "error", why);
        log_end(&l);
    }
}

/* Lets go of the files of a log that was deleted or replaced (or whose WAL
 * was): the checkpoint thread's connection and the writer's are closed,
 * the writer's after copying what its WAL holds into its database file (so
 * a file renamed away, or a database whose WAL alone was removed, keeps
 * every committed row). When the database file itself is gone, the
 * consent grants cached from it go too, and its WAL and shared memory are
 * removed from the path, where SQLite would apply them to the new file.
 * The next writer_open opens (or creates) the log at the path. */
void writer_drop_old(writer *w, const char *why)
{
    const char *path = w->ctx->cfg->audit;
    writer_log_moved(w, why);
    w->moved = false;
    w->dropped = true;
    checkpoint_reset(w->ckpt);
    if (w->st != NULL) {
        int log = 0;
        int done = 0;
        if (store_checkpoint(w->st, &log, &done) != 0 || done < log) {
            logline l;
            if (log_begin(&l, LOG_WARN, "audit_wal_not_copied")) {
                log_str(&l, "audit", path);
                log_int(&l, "wal_pages", log);
                log_int(&l, "copied", done);
                log_end(&l);
            }
        }
        store_close(w->st);
        w->st = NULL;
    }
    store_files now;
    store_files_at(path, &now);
    if (w->files_known && !store_same_file(&now.db, &w->files.db)) {
        /* Checks evaluated from here on see no grant of the old file;
         * those evaluated before are fenced off in writer_checks. */
        w->consents_dropped += consents_clear(w->ctx->grants);
        w->fence_wall_ms = log_now_ms();
        w->fence_until_ms = writer_mono_ms() + WRITER_FENCE_MS;
        store_remove_stale(path, &w->files);
    }
}

/* Loads the grants of a log that replaces the one they were cached from,
 * after writer_open opened it. prev_last is the old file's last id.
 * Returns 0 or a negative code with a message in err. */
static int writer_reload_consents(writer *w, int64_t prev_last, char *err,
                                  size_t errlen)
{
    daemon_ctx *ctx = w->ctx;
    /* Normally writer_drop_old emptied the cache already, and fenced off
     * the checks evaluated before; a file replaced while it was being
     * opened is caught only here. */
    size_t n = consents_clear(ctx->grants);
    w->consents_dropped += n;
    if (n > 0)
        w->fence_wall_ms = log_now_ms();
    int rc =
        consent_load_live(w->st, log_now_ms(), consents_load_row, ctx->grants);
    if (rc != 0) {
        snprintf(err, errlen, "cannot load consent grants: %s",
                 rc == TRINE_ENOMEM ? "out of memory" : store_errmsg(w->st));
        consents_clear(ctx->grants);
        return rc;
    }
    int64_t mono = writer_mono_ms();
    w->fence_until_ms = mono + WRITER_FENCE_MS;
    if (prev_last > w->ambiguous_max_id || mono >= w->ambiguous_until_ms)
        w->ambiguous_max_id = prev_last;
    w->ambiguous_until_ms = mono + WRITER_AMBIGUOUS_MS;
    logline l;
    if (log_begin(&l, LOG_WARN, "audit_reopened")) {
        log_str(&l, "audit", ctx->cfg->audit);
        log_int(&l, "rows", w->last_id);
        log_uint(&l, "consents_dropped", w->consents_dropped);
        log_uint(&l, "consents_loaded", consents_count(ctx->grants));
        log_end(&l);
    }
    w->consents_dropped = 0;
    return 0;
}

/* Logs the size limit in force on the store. */
static void writer_log_limit(writer *w)
{
    logline l;
    if (log_begin(&l, LOG_INFO, "audit_limit")) {
        log_str(&l, "audit", w->ctx->cfg->audit);
        log_int(&l, "max_size", w->max_bytes_applied);
        log_int(&l, "limit_bytes", store_limit_bytes(w->st));
        log_end(&l);
    }
}

/* Opens path read-only when it is the file db names. Returns the
 * descriptor, or -1. */
static int writer_pin(const char *path, const store_file_id *db)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    store_file_id id = {.known = false};
    if (fstat(fd, &st) == 0) {
        id.dev = (uint64_t)st.st_dev;
        id.ino = (uint64_t)st.st_ino;
        id.known = true;
    }
    if (!store_same_file(&id, db)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens the store if it is closed. When the database file at the path is
 * not the one last opened (deleted or replaced while the store was
 * closed), it first lets go of the old files and fails this once, so the
 * checks evaluated on the old grants fail closed. Returns 0, or a negative
 * code with a message in err. */
int writer_open(writer *w, char *err, size_t errlen)
{
    if (w->st != NULL)
        return 0;
    const char *path = w->ctx->cfg->audit;
    if (w->files_known && !w->dropped) {
        store_files now;
        store_files_at(path, &now);
        if (!store_same_file(&now.db, &w->files.db)) {
            writer_drop_old(w, "the database file at the path is not the"
                               " one last opened");
            snprintf(err, errlen, "%s", WRITER_MOVED_MSG);
            return TRINE_EIO;
        }
    }
    /* SQLite would open a file it may not write read-only, and fail only
     * at the first write with a vaguer message. */
    int rc = store_path_writable(path, err, errlen);
    if (rc != 0)
        return rc;
    w->opts.max_bytes = atomic_load(&w->max_bytes);
    rc = store_open(path, &w->opts, &w->st, err, errlen);
    if (rc != 0)
        return rc;
    if (w->opts.max_bytes != w->max_bytes_applied) {
        w->max_bytes_applied = w->opts.max_bytes;
        writer_log_limit(w);
    }
    const store_files *f = store_files_of(w->st);
    bool other = w->files_known && !store_same_file(&f->db, &w->files.db);
    bool replaced = other || w->reload_pending;
    if (w->pin_fd < 0 || other) {
        int fd = writer_pin(path, &f->db);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path,
                     "the file was replaced while being opened");
            store_close(w->st);
            w->st = NULL;
            return TRINE_EIO;
        }
        /* The old file's: no connection of ours uses it any more. */
        if (w->pin_fd >= 0)
            close(w->pin_fd);
        w->pin_fd = fd;
    }
    int64_t prev_last = w->last_id;
    w->files = *f;
    w->files_known = true;
    w->dropped = false;
    w->last_id = audit_next_id(w->st) - 1;
    checkpoint_set_db(w->ckpt, &f->db);
    if (replaced) {
        if (other)
            w->ambiguous_prev = prev_last;
        rc = writer_reload_consents(w, w->ambiguous_prev, err, errlen);
        /* On failure: open afresh next time, and load the grants then. */
        w->reload_pending = rc != 0;
        if (rc != 0) {
            store_close(w->st);
            w->st = NULL;
            return rc;
        }
    }
    return 0;
}

/* Checks, before the store is written, that the files at the path are
 * still the open store's (store_moved: when not, w->moved is set) and that
 * it may still write them, after opening it if needed and applying a new
 * size limit. On failure the store is closed, unless the files moved
 * (writer_drop_old deals with them once the replies are out) or were made
 * read-only (the same connection is checked again next time). Returns 0,
 * or a negative code with a message in err. */
int writer_ready(writer *w, char *err, size_t errlen)
{
    int64_t want = atomic_load(&w->max_bytes);
    if (w->full_at != 0) {
        /* Still full: the same limit, on the same file (a log deleted or
         * replaced meanwhile is opened and tried). */
        store_files now;
        store_files_at(w->ctx->cfg->audit, &now);
        if (want == w->full_at && w->files_known &&
            store_same_file(&now.db, &w->files.db)) {
            snprintf(err, errlen, "%s", w->full_msg);
            return TRINE_EIO;
        }
        w->full_at = 0;
    }
    int rc = writer_open(w, err, errlen);
    if (rc != 0)
        return rc;
    if (want != w->max_bytes_applied) {
        rc = store_set_max_bytes(w->st, want);
        if (rc == 0) {
            w->max_bytes_applied = want;
            writer_log_limit(w);
        }
    }
    /* Files that moved are caught after the commit (writer_still_there),
     * which answers the batch exactly as a check here would: here they are
     * looked for only to tell a moved file from a read-only one. */
    if (rc == 0 && store_writable(w->st) != 0) {
        int m = store_moved(w->st);
        if (m == 1) {
            w->moved = true;
            snprintf(err, errlen, "%s", WRITER_MOVED_MSG);
            return TRINE_EIO;
        }
        if (m == 0) {
            /* The connection stays: closing it would checkpoint (write)
             * into the file the operator made read-only. */
            snprintf(err, errlen, "%s", store_errmsg(w->st));
            return TRINE_EIO;
        }
        rc = m;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", store_errmsg(w->st));
        store_close(w->st);
        w->st = NULL;
    }
    return rc;
}

/* After a write, or before a commit: when the files at the path are no
 * longer the open store's, sets w->moved and err. Returns 0 or TRINE_EIO. */
int writer_still_there(writer *w, char *err, size_t errlen)
{
    if (store_moved(w->st) == 0)
        return 0;
    w->moved = true;
    snprintf(err, errlen, "%s", WRITER_MOVED_MSG);
    return TRINE_EIO;
}

/* After a failed store operation: lets go of moved files, or closes the
 * store to start from a fresh connection (whatever broke, a full disk or
 * a lock, is then seen anew). */
void writer_after_failure(writer *w)
{
    if (w->moved) {
        writer_drop_old(w, store_errmsg(w->st));
    } else if (w->st != NULL && store_writable(w->st) == 0) {
        /* (A file made read-only keeps its connection: see writer_ready.) */
        store_close(w->st);
        w->st = NULL;
    }
}

/* True when j may have been allowed by a consent grant: an allow for a
 * tool that asks for consent (in doubt, true). */
bool writer_may_rest_on_grant(const trine_policy *p, const job *j)
{
    const char *decision = job_col_text(j, JCOL_DECISION);
    if (decision == NULL || strcmp(decision, "allow") != 0)
        return false;
    const char *server = job_col_text(j, JCOL_SERVER);
    const char *tool = job_col_text(j, JCOL_TOOL);
    trine_consent_mode mode = TRINE_CONSENT_NONE;
    int64_t dur = -1;
    if (server == NULL || tool == NULL ||
        trine_policy_tool_consent(p, server, tool, &mode, &dur) < 0)
        return true;
    return mode != TRINE_CONSENT_NONE;
}

/* The reload hook (snapshot.h), on the reload thread after SIGHUP or a
 * policy change: reads audit-max-size from the configuration file again,
 * unless the command line set it (flags override the file). The writer
 * applies a new limit before its next write. A file that no longer parses
 * keeps the limit in force. */
void writer_reload_settings(void *arg)
{
    writer *w = arg;
    const trined_config *cfg = w->ctx->cfg;
    if (cfg->config_file == NULL || cfg->audit_max_size_flag)
        return;
    trined_config fresh;
    char err[512] = "";
    int rc = config_init(&fresh);
    if (rc == 0)
        rc = config_load_file(&fresh, cfg->config_file, err, sizeof err);
    logline l;
    if (rc != 0) {
        if (log_begin(&l, LOG_WARN, "audit_limit_kept")) {
            log_str(&l, "config", cfg->config_file);
            log_str(&l, "error", rc == TRINE_ENOMEM ? "out of memory" : err);
            log_end(&l);
        }
        config_free(&fresh);
        return;
    }
    int64_t want = (int64_t)fresh.audit_max_size;
    config_free(&fresh);
    int64_t was = atomic_exchange(&w->max_bytes, want);
    if (was != want && log_begin(&l, LOG_INFO, "audit_limit_requested")) {
        log_str(&l, "audit", cfg->audit);
        log_int(&l, "max_size", want);
        log_int(&l, "previous", was);
        log_end(&l);
    }
}
