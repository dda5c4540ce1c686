/*
 * fuzz_check.h - the invariant check of the fuzz targets: when cond is
 * false, name the broken invariant with its file:line and abort, which
 * libFuzzer reports as a crash and keeps the input for.
 */
#ifndef TRINE_FUZZ_CHECK_H
#define TRINE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, what)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", what, __FILE__,  \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif /* TRINE_FUZZ_CHECK_H */
