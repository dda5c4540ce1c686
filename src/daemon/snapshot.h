/*
 * snapshot.h - the current policy, shared by every worker, and its reload.
 *
 * A check retains the snapshot's policy when it starts and releases it when
 * its decision is freed, so a reload never pulls a policy from under a check
 * in flight: checks finish on the policy they started with. Reloads run on
 * their own thread (a large policy takes a while to compile, and neither the
 * event loop nor a worker should stall for it); requests that come while one
 * runs are folded into one more reload.
 */
#ifndef TRINED_SNAPSHOT_H
#define TRINED_SNAPSHOT_H

#include "trine.h"

typedef struct snapshot snapshot;

/* Makes a snapshot serving p (taking over the caller's reference) that
 * reloads from dir. Returns 0 or TRINE_ENOMEM. */
int snapshot_new(trine_policy *p, const char *dir, snapshot **out);

/* Stops the reload thread (if started) and frees the snapshot, dropping
 * its reference to the current policy. NULL is a no-op. */
void snapshot_free(snapshot *s);

/* Returns the current policy with a new reference (release it with
 * trine_policy_release). Thread-safe. */
trine_policy *snapshot_acquire(snapshot *s);

/* Makes p (taking over the caller's reference) the current policy and drops
 * the snapshot's reference to the old one. Thread-safe. */
void snapshot_swap(snapshot *s, trine_policy *p);

/* Loads the policy directory again. A policy that does not load is refused
 * (every error logged as event=reload_refused) and the old one keeps
 * serving; a good one is swapped in and its revision logged. Returns 0 when
 * swapped or unchanged, or the load's negative code. */
int snapshot_reload(snapshot *s);

/* A function the reload thread calls after each reload (SIGHUP, or a
 * policy file change), whether the policy loaded or not: the audit writer
 * re-reads its settings there. */
typedef void (*snapshot_hook_fn)(void *ctx);

/* Installs fn (NULL: none) to be called with ctx after each reload. When
 * it returns, a call to the previous hook is no longer running, so its ctx
 * may be freed. */
void snapshot_set_hook(snapshot *s, snapshot_hook_fn fn, void *ctx);

/* Starts the reload thread. Returns 0 or TRINE_EIO. */
int snapshot_start_reloader(snapshot *s);

/* Asks the reload thread for one reload (async-signal-unsafe: call it from
 * the event loop, not a signal handler). */
void snapshot_request_reload(snapshot *s);

#endif /* TRINED_SNAPSHOT_H */
