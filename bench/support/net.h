/*
 * net.h - small helpers shared by the benchmarks: a monotonic clock, sleeps,
 * and Unix socket plumbing.
 */
#ifndef TRINE_BENCH_NET_H
#define TRINE_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>

/* Returns CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);
/* Sleeps s seconds (resumed after signals). */
void bench_sleep_s(double s);
/* Sets O_NONBLOCK on fd. Returns 0 or -1. */
int bench_set_nonblock(int fd);
/* Connects a blocking Unix stream socket to path, with 10 s send and
 * receive timeouts so that a stuck server cannot hang a benchmark. Returns
 * the fd (the caller closes it) or -1 with errno set. */
int bench_unix_connect(const char *path);
/* Writes all len bytes to a blocking fd (no SIGPIPE). Returns 0 or -1. */
int bench_write_all(int fd, const char *p, size_t len);

#endif /* TRINE_BENCH_NET_H */
