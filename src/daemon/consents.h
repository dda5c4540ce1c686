/*
 * consents.h - the in-memory cache of live consent grants (DESIGN §2.4 step
 * 6) that the evaluator's consent lookup reads on every worker.
 *
 * The cache is loaded from the store at start and kept in step by the audit
 * writer, the only thread that changes the store: it adds grants it
 * inserts, removes grants it revokes, and consumes single-use `always`
 * grants once the decision that used them is committed. Lookups claim an
 * `always` grant under the cache's lock, so two concurrent checks can never
 * both use it; the writer releases the claim if that decision's transaction
 * fails.
 */
#ifndef TRINED_CONSENTS_H
#define TRINED_CONSENTS_H

#include "store/store.h"
#include "trine.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct consents consents;

/* Returns 0 with a new empty cache in *out, or TRINE_ENOMEM. */
int consents_new(consents **out);

void consents_free(consents *c);

/* Adds a copy of a live grant (row's strings are copied). Returns 0 or
 * TRINE_ENOMEM. A grant whose id is already cached is not added twice. */
int consents_add(consents *c, const consent_row *row);

/* The store callback for consent_load_live: ctx is a consents *. */
int consents_load_row(void *ctx, const consent_row *row);

/* The trine_consent_fn over the cache (ctx is a consents *): returns 1 with
 * the oldest matching live grant's id in *grant_id, or 0. A matching
 * `always` grant is claimed: no other lookup sees it until it is released.
 */
int consents_lookup(void *ctx, const trine_consent_query *q, int64_t *grant_id);

/* Undoes the claim on grant id (its decision was not committed). */
void consents_release(consents *c, int64_t id);

/* Removes grant id (a used `always` grant, now committed as used). */
void consents_consume(consents *c, int64_t id);

/* Removes grant id when id >= 0, else every grant of user narrowed by
 * agent, server and tool when given (NULL matches any). Returns the number
 * removed. */
size_t consents_revoke(consents *c, int64_t id, const char *user,
                       const char *agent, const char *server, const char *tool);

/* Returns a new {"consents":[...]} of the grants live at now_ms, oldest
 * first, of user and agent when given; each element {id, user, agent,
 * server, tool, mode, session, granted_ms, expires_ms, used_ms,
 * decision_id} with null for what a grant lacks. NULL on OOM. */
json_t *consents_list(consents *c, const char *user, const char *agent,
                      int64_t now_ms);

/* Forgets every cached grant, claimed ones included (their claims then
 * refer to nothing: releasing or consuming them is a no-op). The writer
 * calls it when the audit log it loaded them from is gone. Returns the
 * number of grants forgotten. */
size_t consents_clear(consents *c);

/* Returns the number of cached grants (live or expired but not pruned). */
size_t consents_count(consents *c);

#endif /* TRINED_CONSENTS_H */
