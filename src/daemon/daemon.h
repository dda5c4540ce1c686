/*
 * daemon.h - what the threads of trined share: the settings, the current
 * policy, the consent cache, the audit writer and the queue of finished
 * jobs. main.c builds one daemon_ctx and hands it to every part.
 */
#ifndef TRINED_DAEMON_H
#define TRINED_DAEMON_H

#include "daemon/config.h"
#include "daemon/job.h"

#include <stdatomic.h>

struct snapshot;
struct consents;
struct writer;
struct token_verifier;
struct workers;

typedef struct daemon_ctx {
    const trined_config *cfg;
    struct snapshot *snap;
    struct consents *grants;
    struct writer *writer;
    /* Bearer token verification (token.h): NULL when not configured. The
     * token threads take the checks that need the authorization server. */
    struct token_verifier *tokens;
    struct workers *token_pool;
    doneq done;
    /* Lines a worker has taken and not finished yet. The writer waits for
     * these (up to the commit interval) before committing, so one
     * transaction takes every check of a burst. */
    atomic_long evaluating;
} daemon_ctx;

#endif /* TRINED_DAEMON_H */
