/*
 * checkpoint.h - the audit log's WAL checkpoints, run on a thread of their
 * own with a connection of their own.
 *
 * SQLite's automatic checkpoint runs inside the commit that takes the WAL
 * past its threshold: that commit (and every reply waiting for it) then
 * pays for copying the whole WAL into the database and syncing both. The
 * writer instead opens its connection with manual_checkpoint, and:
 *
 *  1. after a commit that leaves the WAL at CHECKPOINT_PAGES or more, it
 *     wakes this thread, which runs a passive checkpoint: the bulk of the
 *     WAL is copied while the writer keeps committing, and the database
 *     file is synced here as well;
 *  2. the commits made meanwhile keep that checkpoint from finishing (a
 *     WAL starts over from its beginning only once every frame in it is
 *     in the database), so after its next commit the writer copies that
 *     short tail itself (checkpoint_take_tail), with no commit in
 *     between. Its next transaction then starts the WAL over.
 *
 * So the WAL stays near CHECKPOINT_PAGES, and commits pay only for the
 * tail, once per cycle, instead of for the whole copy.
 */
#ifndef TRINED_CHECKPOINT_H
#define TRINED_CHECKPOINT_H

#include "store/store.h"

#include <stdbool.h>

/* The WAL size, in pages, that asks for a checkpoint: 64 MiB with 4 KiB
 * pages. A cycle ends with a short pause of the writer (the tail), so
 * fewer, longer cycles keep those pauses rare. */
#define CHECKPOINT_PAGES 16000

typedef struct checkpointer checkpointer;

/* Starts the checkpoint thread for the audit database at path (which must
 * exist by the first checkpoint), checkpointing once the WAL holds pages
 * pages (CHECKPOINT_PAGES in trined). sync_normal is the writer's setting,
 * so the checkpoint syncs as the commits do. Returns 0 with *out,
 * TRINE_ENOMEM, or TRINE_EIO when the thread cannot start. The connection
 * is opened on the first checkpoint; failures there are logged and retried
 * at the next one asked for. */
int checkpoint_start(const char *path, bool sync_normal, int pages,
                     checkpointer **out);

/* The writer, after a commit on st (its connection, opened with
 * manual_checkpoint) once that commit's replies are on their way: wakes
 * the thread when the WAL has grown to the threshold, or copies on st the
 * tail its last checkpoint left. Cheap otherwise (two atomic loads). */
void checkpoint_after_commit(checkpointer *c, store *st);

/* The writer, after each open of the audit log: db names the database
 * file its connection writes. The thread checkpoints only that file: it
 * opens a connection only when the file at the path is this one, and
 * drops its connection when the file at the path is no longer the one it
 * opened (deleted or replaced under trined), so it never copies a WAL into
 * a file that is not the writer's. */
void checkpoint_set_db(checkpointer *c, const store_file_id *db);

/* Makes the thread close its connection, and waits until it has (after a
 * checkpoint in progress ends). The writer calls it before it reopens a
 * log whose files were deleted or replaced: SQLite shares a file's locks
 * and shared memory among the connections of a process, so no old one may
 * stay open. The thread reopens at the next checkpoint asked for. NULL is
 * a no-op. */
void checkpoint_reset(checkpointer *c);

/* Stops the thread (after a checkpoint in progress ends), closes its
 * connection and frees c. NULL is a no-op. */
void checkpoint_stop(checkpointer *c);

#endif /* TRINED_CHECKPOINT_H */
