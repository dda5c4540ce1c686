/*
 * log.c - logfmt lines on standard error (see log.h).
 */
#include "daemon/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level log_min = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level lvl)
{
    log_min = lvl;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

int log_parse_level(const char *s, log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, log_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(log_level lvl)
{
    if ((int)lvl < 0 || (int)lvl > 3)
        return "info";
    return log_names[lvl];
}

int64_t log_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *log_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
    return buf;
}

/* Appends n raw bytes, keeping room for the "...\n" a cut line ends with. */
static void log_put(logline *l, const char *s, size_t n)
{
    const size_t room = LOG_LINE_MAX - 5;
    if (l->cut)
        return;
    if (n > room - l->len) {
        n = room - l->len;
        l->cut = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void log_putc(logline *l, char c)
{
    log_put(l, &c, 1);
}

bool log_begin(logline *l, log_level lvl, const char *event)
{
    if (lvl < log_min)
        return false;
    char ts[32];
    l->len = 0;
    l->cut = false;
    log_put(l, "ts=", 3);
    log_format_time(log_now_ms(), ts, sizeof ts);
    log_put(l, ts, strlen(ts));
    log_put(l, " level=", 7);
    log_put(l, log_level_name(lvl), strlen(log_level_name(lvl)));
    log_str(l, "event", event);
    return true;
}

static bool log_needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

void log_str(logline *l, const char *key, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    if (value == NULL)
        value = "";
    log_putc(l, ' ');
    log_put(l, key, strlen(key));
    log_putc(l, '=');
    if (!log_needs_quotes(value)) {
        log_put(l, value, strlen(value));
        return;
    }
    log_putc(l, '"');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            log_put(l, esc, 2);
        } else if (c == '\n') {
            log_put(l, "\\n", 2);
        } else if (c == '\t') {
            log_put(l, "\\t", 2);
        } else if (c == '\r') {
            log_put(l, "\\r", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            log_put(l, esc, 6);
        } else {
            log_putc(l, (char)c);
        }
    }
    log_putc(l, '"');
}

void log_int(logline *l, const char *key, int64_t value)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", (long long)value);
    log_putc(l, ' ');
    log_put(l, key, strlen(key));
    log_putc(l, '=');
    log_put(l, num, (size_t)n);
}

void log_uint(logline *l, const char *key, uint64_t value)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)value);
    log_putc(l, ' ');
    log_put(l, key, strlen(key));
    log_putc(l, '=');
    log_put(l, num, (size_t)n);
}

void log_end(logline *l)
{
    if (l->cut) {
        memcpy(l->buf + l->len, "...", 3);
        l->len += 3;
    }
    l->buf[l->len++] = '\n';
    size_t off = 0;
    while (off < l->len) {
        ssize_t n = write(log_fd, l->buf + off, l->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}
