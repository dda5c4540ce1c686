/*
 * job.h - one request line on its way through the daemon, and the queues
 * that carry it between threads.
 *
 * A job is made by the event loop from one complete line, handed (in a
 * batch per wake-up) to the worker pool, which parses and answers it or
 * passes it to the audit writer; the finished job comes back to the event
 * loop through the done queue, whose eventfd wakes the loop. At any moment
 * exactly one thread owns a job, so its fields need no lock.
 */
#ifndef TRINED_JOB_H
#define TRINED_JOB_H

#include "lib/util.h"
#include "trine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum job_kind {
    JOB_REPLY,  /* out holds the complete reply line */
    JOB_CHECK,  /* a decision waiting for its audit row */
    JOB_GRANT,  /* consent.grant, done by the writer */
    JOB_REVOKE, /* consent.revoke, done by the writer */
    JOB_TOKEN   /* a check whose bearer token needs the authorization
                   server: for the token threads (rpc_handle_token) */
} job_kind;

/* The text columns of a check's audit row (DESIGN §4), in the order of the
 * store's audit_row. */
typedef enum job_col {
    JCOL_POLICY_REV = 0,
    JCOL_SERVER,
    JCOL_TOOL,
    JCOL_USER,
    JCOL_AGENT,
    JCOL_CHAIN,
    JCOL_SESSION,
    JCOL_DECISION,
    JCOL_REASON,
    JCOL_ARGUMENTS,
    JCOL_ARGS_SHA256,
    JCOL_TOKEN,  /* how a bearer token was verified (NULL for "token") */
    JCOL_DETAIL, /* the result as the log keeps it, with the audit id's
                    placeholder, when it differs from the reply (a redacted
                    value in a resource or the prompt); NULL: the reply's */
    JCOL_COUNT
} job_col;

/* The offset of a column that is NULL. */
#define JOB_NO_COL ((size_t)-1)

typedef struct job {
    struct job *next;      /* link in whichever queue holds the job */
    struct job *conn_next; /* link in its connection's reply order */
    void *conn;            /* the connection; the event loop's business */
    job_kind kind;
    bool done;         /* back on the event loop with its reply */
    strbuf in;         /* the request line, without its '\n' */
    strbuf out;        /* the reply line, '\n'-terminated when done */
    size_t head_len;   /* bytes of out up to and including "id":ID, */
    size_t prefix_len; /* JOB_CHECK: bytes of out before the result */
    size_t id_off;     /* JOB_CHECK: where the audit id goes in out, or
                          0 when the writer writes the whole result */
    int64_t now_ms;    /* when the request was evaluated */
    /* JOB_CHECK: the audit row's text columns, copied out of the decision
     * by the worker (so the decision and the request are freed by the
     * thread that made them), each NUL-terminated in row at col[k], or
     * JOB_NO_COL for NULL. */
    strbuf row;
    size_t col[JCOL_COUNT];
    int64_t claimed;      /* JOB_CHECK: the single-use grant this check
                             claimed, or -1 */
    json_t *root;         /* JOB_GRANT/JOB_REVOKE/JOB_TOKEN: the parsed
                             request */
    const json_t *params; /* borrowed from root */
} job;

/* Returns column k of j's audit row, or NULL. */
const char *job_col_text(const job *j, job_col k);

/* Returns a new empty job, or NULL on OOM. */
job *job_new(void);

/* Drops what the job holds for one request (the parsed request) and
 * empties its buffers, keeping their memory for the next request unless it
 * has grown large. */
void job_reset(job *j);

/* Frees a job and everything it holds. NULL is a no-op. */
void job_free(job *j);

/* A singly linked FIFO of jobs. Zero-initialised is empty. */
typedef struct jobq {
    job *head;
    job *tail;
    size_t len;
} jobq;

void jobq_push(jobq *q, job *j);
/* Returns the first job (removed), or NULL. */
job *jobq_pop(jobq *q);
/* Moves every job of src to the end of dst; src becomes empty. */
void jobq_append(jobq *dst, jobq *src);

/* A free list of jobs kept by the event loop, so buffers are reused from
 * request to request. Used by one thread only. */
typedef struct jobpool {
    jobq free;
    size_t max; /* most jobs kept; extra ones are freed */
} jobpool;

/* Returns a job from the pool, or a new one; NULL on OOM. */
job *jobpool_get(jobpool *p);
/* Resets j and keeps it for reuse (or frees it when the pool is full). */
void jobpool_put(jobpool *p, job *j);
/* Frees every pooled job. */
void jobpool_free(jobpool *p);

/* The queue of finished jobs going back to the event loop. */
typedef struct doneq {
    pthread_mutex_t mu;
    jobq q;
    int efd; /* eventfd the event loop polls */
} doneq;

/* Returns 0, or TRINE_EIO when the eventfd cannot be made. */
int doneq_init(doneq *d);
void doneq_destroy(doneq *d);

/* Moves the jobs of list to the queue and wakes the event loop when the
 * queue was empty (otherwise a wake-up is already pending). */
void doneq_push(doneq *d, jobq *list);

/* Event loop side: clears the eventfd, then takes every queued job into
 * out. */
void doneq_take(doneq *d, jobq *out);

#endif /* TRINED_JOB_H */
