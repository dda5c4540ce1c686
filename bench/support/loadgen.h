/*
 * loadgen.h - the load generator of the daemon benchmark: N connections to
 * a Unix socket, each keeping D JSON-RPC `check` requests in flight (the
 * pipeline depth), on one or more client threads with their own epoll loop.
 * Latency is per request, from the write that sent it to the read that
 * brought its reply (replies come back in request order on a connection).
 */
#ifndef TRINE_BENCH_LOADGEN_H
#define TRINE_BENCH_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct load_opts {
    double warmup;      /* seconds of load before measuring */
    double seconds;     /* seconds measured */
    int client_threads; /* connections are split among these */
} load_opts;

typedef struct load_result {
    double rate; /* replies per second while measuring */
    double p50_us;
    double p99_us;
    uint64_t replies; /* replies received while measuring */
    uint64_t bad;     /* of those, replies without an allow decision */
} load_result;

/* Puts the load on the server at path: every request is
 * {"jsonrpc":"2.0","id":N,"method":"check","params":<params>}. With
 * expect_allow, each reply is checked to carry "decision":"allow" (others
 * are counted in r->bad). Returns 0, or -1 when a connection could not be
 * made or failed under load (r holds what was measured). */
int load_run(const load_opts *o, const char *path, const char *params,
             int nconns, int depth, bool expect_allow, load_result *r);

#endif /* TRINE_BENCH_LOADGEN_H */
