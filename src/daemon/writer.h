/*
 * writer.h - the audit writer (DESIGN §4). It owns the store's only write
 * connection. Decisions reach it from the workers; it appends every
 * pending row in one transaction, commits, and only then releases the
 * replies to the event loop, so a reply never leaves before its row is
 * committed. When the log cannot be written it fails closed: the checks of
 * that batch are answered deny/audit_unavailable, and the next batch tries
 * again (reopening the store), so the daemon recovers on its own.
 *
 * The writer has no thread of its own: the worker that hands over rows
 * while no one is writing becomes the writer, and keeps writing for as
 * long as rows keep coming (those of the other workers included), then
 * goes back to evaluating. So a row costs no thread wake-up on its way to
 * the log, and the rows that arrive during one commit make up the next.
 *
 * consent.grant and consent.revoke also run here, because they read and
 * write the store.
 */
#ifndef TRINED_WRITER_H
#define TRINED_WRITER_H

#include "daemon/daemon.h"
#include "daemon/job.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct writer writer;

/* Opens the audit store named by ctx->cfg, loads its live consent grants
 * into ctx->grants and starts the checkpoint thread (checkpoint.h).
 * Returns 0 with *out, or a negative code with a message in err. */
int writer_start(daemon_ctx *ctx, writer **out, char *err, size_t errlen);

/* Worker side: queues the jobs of list (which becomes empty) and records
 * that `finished` lines have left evaluation. When no other worker is
 * writing, the caller writes every queued job before it returns. */
void writer_submit(writer *w, jobq *list, size_t finished);

/* Puts audit id `id` in the place the worker left for it in j's result
 * (see rpc.h), and fills row with the check's audit row, borrowing j's
 * text: the reply stays NUL-terminated, so its result is also the row's
 * detail. Returns 0, or TRINE_EINVAL for a job without that place. */
int writer_row(job *j, int64_t id, audit_row *row);

/* What makes a batch quick to write (writer_quick): below this, appending
 * and committing costs less than handing the batch to another thread.
 * With synchronous=NORMAL a commit writes to the WAL without waiting for
 * the disk (tens of microseconds); an fsync per commit, or a log locked by
 * another process, takes far longer. */
#define WRITER_QUICK_US 200

/* True when a batch handed to writer_submit now would be written at once
 * and quickly: no thread is writing or has rows queued, the last batch was
 * written, and recent batches took under WRITER_QUICK_US on average. */
bool writer_quick(writer *w);

/* Closes the store and frees the writer; call it once the workers have
 * stopped (every job they handed over is written by then). NULL is a
 * no-op. */
void writer_stop(writer *w);

#endif /* TRINED_WRITER_H */
