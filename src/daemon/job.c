/*
 * job.c - jobs and the queues between the daemon's threads (see job.h).
 */
#include "daemon/job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Buffers larger than this are given back after a request, so one huge
 * request does not pin its memory in the job pool. */
#define JOB_KEEP_BYTES (64 * 1024)

job *job_new(void)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    sb_init(&j->in);
    sb_init(&j->out);
    sb_init(&j->row);
    j->claimed = -1;
    return j;
}

const char *job_col_text(const job *j, job_col k)
{
    size_t off = j->col[k];
    return off == JOB_NO_COL || off >= j->row.len ? NULL : j->row.data + off;
}

void job_reset(job *j)
{
    json_decref(j->root);
    j->root = NULL;
    j->params = NULL;
    if (j->in.cap > JOB_KEEP_BYTES)
        sb_free(&j->in);
    if (j->out.cap > JOB_KEEP_BYTES)
        sb_free(&j->out);
    if (j->row.cap > JOB_KEEP_BYTES)
        sb_free(&j->row);
    sb_reset(&j->in);
    sb_reset(&j->out);
    sb_reset(&j->row);
    j->claimed = -1;
    j->next = NULL;
    j->conn_next = NULL;
    j->conn = NULL;
    j->kind = JOB_REPLY;
    j->done = false;
    j->head_len = 0;
    j->prefix_len = 0;
    j->id_off = 0;
    j->now_ms = 0;
}

void job_free(job *j)
{
    if (j == NULL)
        return;
    job_reset(j);
    sb_free(&j->in);
    sb_free(&j->out);
    sb_free(&j->row);
    free(j);
}

void jobq_push(jobq *q, job *j)
{
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->len++;
}

job *jobq_pop(jobq *q)
{
    job *j = q->head;
    if (j == NULL)
        return NULL;
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->len--;
    j->next = NULL;
    return j;
}

void jobq_append(jobq *dst, jobq *src)
{
    if (src->head == NULL)
        return;
    if (dst->tail != NULL)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->len += src->len;
    memset(src, 0, sizeof *src);
}

job *jobpool_get(jobpool *p)
{
    job *j = jobq_pop(&p->free);
    return j != NULL ? j : job_new();
}

void jobpool_put(jobpool *p, job *j)
{
    if (p->free.len >= p->max) {
        job_free(j);
        return;
    }
    job_reset(j);
    jobq_push(&p->free, j);
}

void jobpool_free(jobpool *p)
{
    for (job *j = jobq_pop(&p->free); j != NULL; j = jobq_pop(&p->free))
        job_free(j);
}

int doneq_init(doneq *d)
{
    memset(d, 0, sizeof *d);
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->efd < 0)
        return TRINE_EIO;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        close(d->efd);
        d->efd = -1;
        return TRINE_EIO;
    }
    return 0;
}

void doneq_destroy(doneq *d)
{
    if (d->efd >= 0)
        close(d->efd);
    d->efd = -1;
    pthread_mutex_destroy(&d->mu);
    for (job *j = jobq_pop(&d->q); j != NULL; j = jobq_pop(&d->q))
        job_free(j);
}

void doneq_push(doneq *d, jobq *list)
{
    if (list->head == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    bool was_empty = d->q.head == NULL;
    jobq_append(&d->q, list);
    pthread_mutex_unlock(&d->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(d->efd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
        /* EAGAIN means the counter is already non-zero: the loop will
         * wake anyway. */
    }
}

void doneq_take(doneq *d, jobq *out)
{
    uint64_t v;
    ssize_t n;
    do {
        n = read(d->efd, &v, sizeof v);
    } while (n < 0 && errno == EINTR);
    pthread_mutex_lock(&d->mu);
    jobq_append(out, &d->q);
    pthread_mutex_unlock(&d->mu);
}
