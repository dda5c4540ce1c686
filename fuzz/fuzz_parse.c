/*
 * fuzz_parse.c - a libFuzzer target for the policy source: any bytes go to
 * parse_source and trine_format.
 *
 * Besides crashes and sanitizer reports, it checks what must hold for every
 * input: a failed parse reports at least one error and returns no tree; a
 * source formats exactly when it parses; the formatted text parses to as
 * many statements, and formatting it again changes nothing.
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON, then seed it with the .trine
 * files of policy-examples, e.g. `./fuzz_parse corpus/ seeds/` where seeds/
 * holds copies of them.
 */
#include "lib/ast.h"
#include "lib/parser.h"
#include "trine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_statements(const char *text, size_t len, int *rc)
{
    trine_source src = {"fuzz.trine", text, len};
    ast_file *f = NULL;
    *rc = parse_source(&src, NULL, &f);
    size_t n = f != NULL ? f->nstmts : 0;
    ast_free(f);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trine_source src = {"fuzz.trine", (const char *)data, size};
    trine_diag *diag = trine_diag_new();
    if (diag == NULL)
        return 0;
    ast_file *f = NULL;
    int rc = parse_source(&src, diag, &f);
    if ((rc == 0) != (f != NULL))
        abort();
    if (rc == TRINE_ESYNTAX && trine_diag_errors(diag) == 0)
        abort();
    size_t nstmts = f != NULL ? f->nstmts : 0;
    ast_free(f);
    trine_diag_free(diag);

    char *out = NULL;
    size_t outlen = 0;
    int frc = trine_format(&src, NULL, &out, &outlen);
    if (rc == TRINE_ENOMEM || frc == TRINE_ENOMEM) {
        free(out);
        return 0;
    }
    if ((frc == 0) != (rc == 0))
        abort();
    if (frc != 0)
        return 0;
    if (strlen(out) != outlen)
        abort();

    int rc2;
    if (count_statements(out, outlen, &rc2) != nstmts || rc2 != 0)
        abort();
    trine_source again = {"fuzz.trine", out, outlen};
    char *out2 = NULL;
    size_t outlen2 = 0;
    if (trine_format(&again, NULL, &out2, &outlen2) == 0 &&
        (outlen2 != outlen || memcmp(out, out2, outlen) != 0))
        abort();
    free(out2);
    free(out);
    return 0;
}
