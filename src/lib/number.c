/*
 * number.c - locale-independent number conversions (see number.h).
 *
 * The calling thread switches to the "C" locale with uselocale for the
 * duration of one conversion and then back to whatever it had, so neither
 * the process's locale nor other threads are touched. The "C" locale object
 * is made once and kept for the life of the process.
 */
#include "lib/number.h"

#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer number texts than this are refused: no policy needs them. */
#define NUM_TEXT_MAX 512

static pthread_once_t num_once = PTHREAD_ONCE_INIT;
static locale_t num_c_locale;

static void num_init(void)
{
    num_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Switches the calling thread to the "C" locale. Returns the locale to go
 * back to with num_leave, or (locale_t)0 when the switch could not be made
 * (the thread's locale is then unchanged). */
static locale_t num_enter(void)
{
    pthread_once(&num_once, num_init);
    if (num_c_locale == (locale_t)0)
        return (locale_t)0;
    return uselocale(num_c_locale);
}

static void num_leave(locale_t old)
{
    if (old != (locale_t)0)
        uselocale(old);
}

/* Rewrites, in place, a number that printf wrote under some other locale:
 * the decimal point, whatever bytes it is made of, becomes '.'. Digits,
 * signs, exponent letters and the letters of inf and nan stay. */
static int num_normalize(char *buf, int n)
{
    if (n <= 0)
        return n;
    int w = 0;
    bool in_point = false;
    for (int r = 0; r < n && buf[r] != '\0'; r++) {
        unsigned char c = (unsigned char)buf[r];
        bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                    (c >= 'A' && c <= 'Z') || c == '+' || c == '-';
        if (keep) {
            buf[w++] = (char)c;
            in_point = false;
        } else if (!in_point) {
            buf[w++] = '.';
            in_point = true;
        }
    }
    buf[w] = '\0';
    return w;
}

int num_parse(const char *s, size_t n, double *out)
{
    char buf[NUM_TEXT_MAX];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    locale_t old = num_enter();
    if (old == (locale_t)0)
        return -1;
    char *end = NULL;
    double v = strtod(buf, &end);
    num_leave(old);
    if (end != buf + n)
        return -1;
    *out = v;
    return 0;
}

size_t num_shortest(double x, char buf[NUM_BUF])
{
    locale_t old = num_enter();
    int n = 0;
    /* Written and read back in the same locale, so the round trip holds
     * even when the "C" locale could not be had; only the point is then
     * rewritten afterwards. */
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, NUM_BUF, "%.*g", prec, x);
        if (n > 0 && n < NUM_BUF && strtod(buf, NULL) == x)
            break;
    }
    if (n <= 0 || n >= NUM_BUF) {
        n = snprintf(buf, NUM_BUF, "%.17g", x);
        if (n <= 0 || n >= NUM_BUF) {
            buf[0] = '\0';
            n = 0;
        }
    }
    if (old != (locale_t)0)
        num_leave(old);
    else
        n = num_normalize(buf, n);
    return (size_t)n;
}

size_t num_readable(double x, char buf[NUM_BUF])
{
    if (x == (double)(int64_t)x && x > -1e17 && x < 1e17) {
        int n = snprintf(buf, NUM_BUF, "%" PRId64, (int64_t)x);
        return n > 0 ? (size_t)n : 0;
    }
    return num_shortest(x, buf);
}

int num_format(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    locale_t old = num_enter();
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (old != (locale_t)0)
        num_leave(old);
    else if (r >= 0 && (size_t)r < n)
        r = num_normalize(buf, r);
    return r;
}
