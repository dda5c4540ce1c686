/*
 * workers.h - the evaluation thread pool. The event loop hands each
 * wake-up's new lines over in one batch; a worker takes a share of the
 * queue at a time, parses and answers each line (rpc_handle), sends replies
 * that need no audit row straight back to the event loop and hands the rest
 * to the audit writer (becoming the writer itself when no other worker is:
 * see writer.h).
 */
#ifndef TRINED_WORKERS_H
#define TRINED_WORKERS_H

#include "daemon/daemon.h"
#include "daemon/job.h"

#include <stdbool.h>

typedef struct workers workers;

/* Starts n worker threads over ctx. Returns 0 with *out, TRINE_ENOMEM or
 * TRINE_EIO (a thread could not start). */
int workers_start(daemon_ctx *ctx, int n, workers **out);

/* Starts n token threads over ctx (ctx->tokens must be set): a pool like
 * the workers' whose threads take JOB_TOKEN jobs one at a time, each thread
 * with its own HTTP client (http.h), verify their bearer tokens
 * (rpc_handle_token) and hand them on as the workers do. Returns as
 * workers_start; stop them with workers_stop. */
int token_workers_start(daemon_ctx *ctx, int n, workers **out);

/* Queues every job of batch (which becomes empty) with one lock and one
 * wake-up. Event loop thread (workers), or any thread (token threads). */
void workers_submit(workers *w, jobq *batch);

/* True when no job is queued for the workers and none is being evaluated.
 * Event loop thread. */
bool workers_idle(workers *w);

/* Answers every job of batch (which becomes empty) on the calling thread,
 * exactly as a worker would: replies to the event loop's done queue, checks
 * to the audit writer (written before this returns when no worker is
 * writing). Event loop thread. */
void workers_run_here(workers *w, jobq *batch);

/* Lets the workers finish every queued job, then joins and frees them.
 * NULL is a no-op. */
void workers_stop(workers *w);

#endif /* TRINED_WORKERS_H */
