/*
 * diag.h - how the stages of libtrine report diagnostics into a trine_diag.
 */
#ifndef TRINE_DIAG_H
#define TRINE_DIAG_H

#include "trine.h"

#include <stdbool.h>

/* Appends one diagnostic (message formatted printf-style). d may be NULL, in
 * which case nothing is recorded. Past TRINE_DIAG_MAX errors, one "too many
 * errors" note is kept and later errors are dropped from the list but still
 * counted. Returns false only when recording failed for lack of memory. */
bool diag_add(trine_diag *d, trine_diag_level level, const char *file,
              unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* True once the error cap is reached: a stage may stop early. */
bool diag_full(const trine_diag *d);

#endif /* TRINE_DIAG_H */
