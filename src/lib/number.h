/*
 * number.h - reading and writing decimal numbers the same way in every
 * locale.
 *
 * strtod and printf's %g and %f follow the locale's LC_NUMERIC: in a
 * program that calls setlocale(LC_ALL, "") under, say, de_DE, "2.5" reads
 * as 2 and 2.5 prints as "2,5". libtrine may be embedded in such a program,
 * and the numbers it reads (policy sources) and writes (canonical JSON,
 * whose bytes are hashed into the audit chain and consent grants) must not
 * change with it. Every conversion of a double to or from text in the
 * library goes through here and uses the "C" locale, for the calling thread
 * only and only for the duration of the call.
 */
#ifndef TRINE_NUMBER_H
#define TRINE_NUMBER_H

#include <stddef.h>

/* Room for any text num_shortest or num_format writes for a double. */
#define NUM_BUF 32

/* Reads all n bytes at s as one number, as strtod does in the "C" locale.
 * Returns 0 with *out set, or -1 when the text is not a number in full,
 * longer than 511 bytes, or the "C" locale cannot be had (out of memory). */
int num_parse(const char *s, size_t n, double *out);

/* Writes the shortest "%.<p>g" form of x (p from 1 to 17) that reads back
 * as x, with '.' as the decimal point, into buf. Returns its length. */
size_t num_shortest(double x, char buf[NUM_BUF]);

/* Writes x for a person to read into buf: an integral value below 1e17 in
 * full ("1700000000", not "1.7e+09"), anything else as num_shortest does.
 * Returns its length. */
size_t num_readable(double x, char buf[NUM_BUF]);

/* snprintf for one number (fmt holds one conversion of a double or an
 * integer), with '.' as the decimal point whatever the locale. Returns what
 * snprintf returns. */
int num_format(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TRINE_NUMBER_H */
