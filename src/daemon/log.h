/*
 * log.h - one-line structured logs on standard error, in logfmt:
 *
 *   ts=2026-11-26T07:05:29.123Z level=info event=listening socket=./trine.sock
 *
 * A line is built in a fixed buffer on the caller's stack and written with a
 * single write(2), so lines from different threads never interleave. Values
 * are quoted when they need it, and control characters are escaped, so text
 * taken from a request or a policy file cannot forge a log line.
 */
#ifndef TRINED_LOG_H
#define TRINED_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3
} log_level;

/* The longest line written; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 4096

/* A log line being built. */
typedef struct logline {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool cut;
} logline;

/* Sets the lowest level written (LOG_INFO until called). Not thread-safe:
 * call at startup. */
void log_set_level(log_level lvl);

/* Sends lines to fd instead of standard error (tests use a pipe). */
void log_set_fd(int fd);

/* Parses "debug", "info", "warn" or "error". Returns 0 with *out set, or -1
 * for any other text. */
int log_parse_level(const char *s, log_level *out);

/* Returns the level's name ("info"). */
const char *log_level_name(log_level lvl);

/* Starts a line with ts, level and event. Returns false (and writes nothing
 * later) when lvl is below the configured level. */
bool log_begin(logline *l, log_level lvl, const char *event);

/* Appends key=value, quoting value when it is empty or holds a space, '=',
 * '"', a backslash or a control character. A NULL value is written as
 * key= (empty, quoted). */
void log_str(logline *l, const char *key, const char *value);

/* Appends key=value for a signed or unsigned integer. */
void log_int(logline *l, const char *key, int64_t value);
void log_uint(logline *l, const char *key, uint64_t value);

/* Ends the line with '\n' and writes it. */
void log_end(logline *l);

/* Formats into buf (cap bytes, cap >= 25) the UTC time ms (unix
 * milliseconds) as 2026-11-26T07:05:29.123Z. Returns buf. */
char *log_format_time(int64_t ms, char *buf, size_t cap);

/* Returns the current unix time in milliseconds. */
int64_t log_now_ms(void);

#endif /* TRINED_LOG_H */
