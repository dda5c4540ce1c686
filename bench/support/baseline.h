/*
 * baseline.h - the baseline servers of the daemon benchmark, which take the
 * same load as trined to show what the machine can do at all:
 *  - echo: one thread that writes every line back;
 *  - json: N threads that parse every line with jansson and write a JSON
 *    reply padded to a given size (trined's reply to the same request).
 * Each server thread runs its own epoll loop; they share one non-blocking
 * listening socket (EPOLLEXCLUSIVE wakes one of them per connection), and a
 * connection stays on the thread that accepted it.
 */
#ifndef TRINE_BENCH_BASELINE_H
#define TRINE_BENCH_BASELINE_H

#include "lib/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef enum baseline_kind { BASELINE_ECHO, BASELINE_JSON } baseline_kind;

typedef struct baseline_server baseline_server;

/* Appends the reply to one request line (without its newline) to out. */
typedef void (*baseline_line_fn)(const baseline_server *s, const char *line,
                                 size_t len, strbuf *out);

struct baseline_server {
    char path[108]; /* the socket, in the directory given */
    int lfd;
    int stop_fd; /* an eventfd: written once to stop */
    int nthreads;
    pthread_t threads[64];
    baseline_line_fn on_line;
    size_t reply_size;    /* json: the size to pad each reply to */
    char pad[4096];       /* json: the padding string */
    atomic_long audit_id; /* json: a counter, as trined's audit ids */
};

/* Starts a server of this kind with nthreads threads (1..64) listening on
 * a new socket "<dir>/<name>.sock"; for BASELINE_JSON, replies are padded
 * to reply_size bytes (without the newline). Returns 0, or -1 with errno
 * set. */
int baseline_start(baseline_server *s, const char *dir, const char *name,
                   int nthreads, baseline_kind kind, size_t reply_size);

/* Stops the threads, closes every connection and removes the socket. */
void baseline_stop(baseline_server *s);

#endif /* TRINE_BENCH_BASELINE_H */
