/*
 * workers.c - the evaluation thread pool (see workers.h).
 */
#include "daemon/workers.h"

#include "daemon/log.h"
#include "daemon/rpc.h"
#include "daemon/token.h"
#include "daemon/writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The most jobs one worker takes at a time: enough to amortise the lock,
 * few enough that a burst is shared among the workers. */
#define WORKER_TAKE_MAX 64

struct workers {
    daemon_ctx *ctx;
    bool token;     /* a pool of token threads (token_workers_start) */
    atomic_int seq; /* numbers the threads as they start */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    jobq queue;
    bool stop;
    int n;
    int started;
    pthread_t *threads;
};

/* Where a finished job goes next: replies to the event loop, checks to
 * the audit writer, bearer checks that need the network to the token
 * threads (or, when there are none, finished here without a client). */
typedef struct hand_on {
    jobq replies;
    jobq audited;
    jobq token;
} hand_on;

static void workers_sort(daemon_ctx *ctx, hand_on *h, job *j)
{
    if (j->kind == JOB_TOKEN && ctx->token_pool == NULL)
        rpc_handle_token(ctx, j, NULL);
    if (j->kind == JOB_REPLY)
        jobq_push(&h->replies, j);
    else if (j->kind == JOB_TOKEN)
        jobq_push(&h->token, j);
    else
        jobq_push(&h->audited, j);
}

/* Sends the sorted jobs on. finished is how many lines left evaluation
 * (see daemon.h). */
static void workers_send(daemon_ctx *ctx, hand_on *h, size_t finished)
{
    doneq_push(&ctx->done, &h->replies);
    if (h->token.head != NULL)
        workers_submit(ctx->token_pool, &h->token);
    writer_submit(ctx->writer, &h->audited, finished);
}

/* Answers every job of mine (counted in ctx->evaluating by the caller)
 * and sends each on. */
static void workers_process(daemon_ctx *ctx, jobq *mine)
{
    hand_on out = {0};
    size_t count = mine->len;
    for (job *j = jobq_pop(mine); j != NULL; j = jobq_pop(mine)) {
        rpc_handle(ctx, j);
        workers_sort(ctx, &out, j);
    }
    workers_send(ctx, &out, count);
}

/* A token thread: one job at a time, each with this thread's HTTP client.
 * The first thread to start fetches the issuer's key set, so the first
 * JWT need not wait for it. */
static void *workers_token_main(workers *w)
{
    daemon_ctx *ctx = w->ctx;
    const trined_config *cfg = ctx->cfg;
    http_client *h = NULL;
    int connect_ms = cfg->http_timeout_ms < HTTP_CONNECT_TIMEOUT_MS
                         ? cfg->http_timeout_ms
                         : HTTP_CONNECT_TIMEOUT_MS;
    if (http_client_new(cfg->http_timeout_ms, connect_ms,
                        token_stop_flag(ctx->tokens), &h) != 0) {
        logline l;
        if (log_begin(&l, LOG_ERROR, "token_thread_failed")) {
            log_str(&l, "error", "out of memory");
            log_end(&l);
        }
    }
    if (h != NULL && atomic_fetch_add(&w->seq, 1) == 0)
        token_prefetch(ctx->tokens, h, log_now_ms());
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->queue.head == NULL && !w->stop)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->queue.head == NULL)
            break;
        job *j = jobq_pop(&w->queue);
        if (w->queue.head != NULL)
            pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
        /* Without a client every transfer fails, and the check is
         * denied as the server being unreachable. */
        rpc_handle_token(ctx, j, h);
        hand_on out = {0};
        workers_sort(ctx, &out, j);
        workers_send(ctx, &out, 0);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    http_client_free(h);
    return NULL;
}

static void *workers_main(void *arg)
{
    workers *w = arg;
    daemon_ctx *ctx = w->ctx;
    if (w->token)
        return workers_token_main(w);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->queue.head == NULL && !w->stop)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->queue.head == NULL)
            break;
        /* Take an even share of what is queued, so a burst spreads over
         * every worker instead of landing on the first one awake. */
        size_t take = (w->queue.len + (size_t)w->n - 1) / (size_t)w->n;
        if (take > WORKER_TAKE_MAX)
            take = WORKER_TAKE_MAX;
        jobq mine = {0};
        for (size_t i = 0; i < take; i++)
            jobq_push(&mine, jobq_pop(&w->queue));
        atomic_fetch_add(&ctx->evaluating, (long)take);
        if (w->queue.head != NULL)
            pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
        workers_process(ctx, &mine);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts n threads of either kind. */
static int workers_start_pool(daemon_ctx *ctx, int n, bool token, workers **out)
{
    workers *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TRINE_ENOMEM;
    w->token = token;
    atomic_init(&w->seq, 0);
    w->threads = calloc((size_t)n, sizeof *w->threads);
    if (w->threads == NULL) {
        free(w);
        return TRINE_ENOMEM;
    }
    w->ctx = ctx;
    w->n = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, workers_main, w) != 0) {
            workers_stop(w);
            return TRINE_EIO;
        }
        w->started++;
    }
    *out = w;
    return 0;
}

int workers_start(daemon_ctx *ctx, int n, workers **out)
{
    return workers_start_pool(ctx, n, false, out);
}

int token_workers_start(daemon_ctx *ctx, int n, workers **out)
{
    return workers_start_pool(ctx, n, true, out);
}

void workers_submit(workers *w, jobq *batch)
{
    if (batch->head == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    jobq_append(&w->queue, batch);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

bool workers_idle(workers *w)
{
    pthread_mutex_lock(&w->mu);
    bool idle = w->queue.head == NULL;
    pthread_mutex_unlock(&w->mu);
    return idle && atomic_load(&w->ctx->evaluating) == 0;
}

void workers_run_here(workers *w, jobq *batch)
{
    jobq mine = *batch;
    memset(batch, 0, sizeof *batch);
    atomic_fetch_add(&w->ctx->evaluating, (long)mine.len);
    workers_process(w->ctx, &mine);
}

void workers_stop(workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->started; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    for (job *j = jobq_pop(&w->queue); j != NULL; j = jobq_pop(&w->queue))
        job_free(j);
    free(w->threads);
    free(w);
}
