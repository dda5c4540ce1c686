/*
 * snapshot.c - the current policy and its reload thread (see snapshot.h).
 */
#include "daemon/snapshot.h"

#include "daemon/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
    pthread_mutex_t mu; /* guards cur */
    trine_policy *cur;
    char *dir;

    pthread_mutex_t rmu; /* guards the reload requests below */
    pthread_cond_t rcond;
    bool pending;
    bool stop;
    bool started;
    pthread_t thread;

    pthread_mutex_t hmu; /* guards the hook, and is held while it runs */
    snapshot_hook_fn hook;
    void *hook_ctx;
};

int snapshot_new(trine_policy *p, const char *dir, snapshot **out)
{
    snapshot *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TRINE_ENOMEM;
    s->dir = strdup(dir);
    if (s->dir == NULL) {
        free(s);
        return TRINE_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_mutex_init(&s->hmu, NULL);
    pthread_cond_init(&s->rcond, NULL);
    s->cur = p;
    *out = s;
    return 0;
}

void snapshot_free(snapshot *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->rmu);
        s->stop = true;
        pthread_cond_signal(&s->rcond);
        pthread_mutex_unlock(&s->rmu);
        pthread_join(s->thread, NULL);
    }
    trine_policy_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->hmu);
    pthread_cond_destroy(&s->rcond);
    free(s->dir);
    free(s);
}

trine_policy *snapshot_acquire(snapshot *s)
{
    pthread_mutex_lock(&s->mu);
    trine_policy *p = trine_policy_retain(s->cur);
    pthread_mutex_unlock(&s->mu);
    return p;
}

void snapshot_swap(snapshot *s, trine_policy *p)
{
    pthread_mutex_lock(&s->mu);
    trine_policy *old = s->cur;
    s->cur = p;
    pthread_mutex_unlock(&s->mu);
    /* Checks still running on the old policy hold their own references;
     * it is freed when the last of them ends. */
    trine_policy_release(old);
}

/* Logs every item of a refused policy as its own line. */
static void snapshot_log_refusal(const trine_diag *diag, int rc)
{
    size_t n = diag ? trine_diag_count(diag) : 0;
    size_t logged = 0;
    for (size_t i = 0; i < n; i++) {
        const trine_diag_item *it = trine_diag_at(diag, i);
        if (it == NULL || it->level != TRINE_DIAG_ERROR)
            continue;
        char msg[1024];
        if (it->line > 0)
            snprintf(msg, sizeof msg, "%s:%u:%u: %s", it->file, it->line,
                     it->col, it->message);
        else
            snprintf(msg, sizeof msg, "%s: %s", it->file, it->message);
        logline l;
        if (log_begin(&l, LOG_ERROR, "reload_refused")) {
            log_str(&l, "error", msg);
            log_end(&l);
        }
        logged++;
    }
    if (logged == 0) {
        logline l;
        if (log_begin(&l, LOG_ERROR, "reload_refused")) {
            log_str(&l, "error", trine_strerror(rc));
            log_end(&l);
        }
    }
}

int snapshot_reload(snapshot *s)
{
    trine_diag *diag = trine_diag_new();
    trine_policy *p = NULL;
    int rc = diag ? trine_policy_load_dir(s->dir, diag, &p) : TRINE_ENOMEM;
    if (rc != 0) {
        snapshot_log_refusal(diag, rc);
        logline l;
        trine_policy *cur = snapshot_acquire(s);
        if (log_begin(&l, LOG_WARN, "policy_kept")) {
            log_str(&l, "revision", trine_policy_revision(cur));
            log_end(&l);
        }
        trine_policy_release(cur);
        trine_diag_free(diag);
        return rc;
    }
    trine_diag_free(diag);
    trine_policy *cur = snapshot_acquire(s);
    bool same = trine_policy_same_sources(cur, p);
    logline l;
    if (same) {
        if (log_begin(&l, LOG_INFO, "policy_unchanged")) {
            log_str(&l, "revision", trine_policy_revision(cur));
            log_end(&l);
        }
        trine_policy_release(p);
    } else {
        if (log_begin(&l, LOG_INFO, "policy_reloaded")) {
            log_str(&l, "revision", trine_policy_revision(p));
            log_str(&l, "previous", trine_policy_revision(cur));
            log_end(&l);
        }
        snapshot_swap(s, p);
    }
    trine_policy_release(cur);
    return 0;
}

static void *snapshot_thread(void *arg)
{
    snapshot *s = arg;
    pthread_mutex_lock(&s->rmu);
    for (;;) {
        while (!s->pending && !s->stop)
            pthread_cond_wait(&s->rcond, &s->rmu);
        if (s->stop)
            break;
        s->pending = false;
        pthread_mutex_unlock(&s->rmu);
        snapshot_reload(s);
        pthread_mutex_lock(&s->hmu);
        if (s->hook != NULL)
            s->hook(s->hook_ctx);
        pthread_mutex_unlock(&s->hmu);
        pthread_mutex_lock(&s->rmu);
    }
    pthread_mutex_unlock(&s->rmu);
    return NULL;
}

void snapshot_set_hook(snapshot *s, snapshot_hook_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->hmu);
    s->hook = fn;
    s->hook_ctx = ctx;
    pthread_mutex_unlock(&s->hmu);
}

int snapshot_start_reloader(snapshot *s)
{
    if (pthread_create(&s->thread, NULL, snapshot_thread, s) != 0)
        return TRINE_EIO;
    s->started = true;
    return 0;
}

void snapshot_request_reload(snapshot *s)
{
    pthread_mutex_lock(&s->rmu);
    s->pending = true;
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rmu);
}
