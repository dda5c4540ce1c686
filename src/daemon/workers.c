/*
 * workers.c - the evaluation thread pool (see workers.h).
 */
#include "daemon/workers.h"

#include "daemon/rpc.h"
#include "daemon/writer.h"

#include <pthread.h>
#include <stdlib.h>

/* The most jobs one worker takes at a time: enough to amortise the lock,
 * few enough that a burst is shared among the workers. */
#define WORKER_TAKE_MAX 64

struct workers {
    daemon_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    jobq queue;
    bool stop;
    int n;
    int started;
    pthread_t *threads;
};

static void *workers_main(void *arg)
{
    workers *w = arg;
    daemon_ctx *ctx = w->ctx;
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

        jobq replies = {0};
        jobq audited = {0};
        size_t count = mine.len;
        for (job *j = jobq_pop(&mine); j != NULL; j = jobq_pop(&mine)) {
            rpc_handle(ctx, j);
            jobq_push(j->kind == JOB_REPLY ? &replies : &audited, j);
        }
        doneq_push(&ctx->done, &replies);
        writer_submit(ctx->writer, &audited, count);

        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int workers_start(daemon_ctx *ctx, int n, workers **out)
{
    workers *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TRINE_ENOMEM;
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

void workers_submit(workers *w, jobq *batch)
{
    if (batch->head == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    jobq_append(&w->queue, batch);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
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
