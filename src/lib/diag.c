/*
 * diag.c - the list of diagnostics (errors and warnings with file:line:col)
 * that loading, linting and formatting fill, and the error-code table.
 */
#include "lib/diag.h"

#include "lib/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct trine_diag {
    trine_diag_item *items;
    size_t count;
    size_t cap;
    size_t errors; /* every error reported, recorded or not */
    bool capped;   /* the "too many errors" note was added */
};

const char *trine_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define TRINE_ERRNO_MSG(name, value, msg)                                      \
    case TRINE_E##name:                                                        \
        return msg;
        TRINE_ERRNO_MAP(TRINE_ERRNO_MSG)
#undef TRINE_ERRNO_MSG
    }
    return "unknown error";
}

const char *trine_err_name(int err)
{
    switch (err) {
    case 0:
        return "TRINE_OK";
#define TRINE_ERRNO_NAME(name, value, msg)                                     \
    case TRINE_E##name:                                                        \
        return "TRINE_E" #name;
        TRINE_ERRNO_MAP(TRINE_ERRNO_NAME)
#undef TRINE_ERRNO_NAME
    }
    return "TRINE_EUNKNOWN";
}

void trine_free(void *p)
{
    free(p);
}

trine_diag *trine_diag_new(void)
{
    return calloc(1, sizeof(trine_diag));
}

void trine_diag_free(trine_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free((char *)d->items[i].file);
        free((char *)d->items[i].message);
    }
    free(d->items);
    free(d);
}

size_t trine_diag_count(const trine_diag *d)
{
    return d ? d->count : 0;
}

size_t trine_diag_errors(const trine_diag *d)
{
    return d ? d->errors : 0;
}

const trine_diag_item *trine_diag_at(const trine_diag *d, size_t i)
{
    return d != NULL && i < d->count ? &d->items[i] : NULL;
}

bool diag_full(const trine_diag *d)
{
    return d != NULL && d->errors >= TRINE_DIAG_MAX;
}

static bool diag_push(trine_diag *d, trine_diag_level level, const char *file,
                      unsigned line, unsigned col, char *message)
{
    if (message == NULL)
        return false;
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        trine_diag_item *p = realloc(d->items, cap * sizeof *p);
        if (p == NULL) {
            free(message);
            return false;
        }
        d->items = p;
        d->cap = cap;
    }
    char *f = xstrdup(file ? file : "");
    if (f == NULL) {
        free(message);
        return false;
    }
    d->items[d->count++] = (trine_diag_item){level, f, line, col, message};
    return true;
}

bool diag_add(trine_diag *d, trine_diag_level level, const char *file,
              unsigned line, unsigned col, const char *fmt, ...)
{
    if (d == NULL)
        return true;
    if (level == TRINE_DIAG_ERROR) {
        d->errors++;
        if (d->errors > TRINE_DIAG_MAX) {
            if (d->capped)
                return true;
            d->capped = true;
            return diag_push(d, TRINE_DIAG_ERROR, file, line, col,
                             xstrdup("too many errors; stopping here"));
        }
    }
    strbuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    return diag_push(d, level, file, line, col, sb_take(&b));
}

/* Writes s with every control character (Unicode Cc) and every byte that
 * is not part of valid UTF-8 as \xNN, so that no file name or policy text
 * quoted in a message can drive the terminal. Returns false on an output
 * error. */
static bool diag_put_safe(FILE *out, const char *s)
{
    size_t n = strlen(s), i = 0;
    bool ok = true;
    while (i < n && ok) {
        size_t good = i + utf8_check(s + i, n - i);
        while (i < good && ok) {
            size_t len;
            uint32_t cp = utf8_decode(s + i, &len);
            if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
                for (size_t k = 0; k < len && ok; k++)
                    ok = fprintf(out, "\\x%02x", (unsigned char)s[i + k]) > 0;
            } else {
                ok = fwrite(s + i, 1, len, out) == len;
            }
            i += len;
        }
        if (i < n && ok) {
            ok = fprintf(out, "\\x%02x", (unsigned char)s[i]) > 0;
            i++;
        }
    }
    return ok;
}

int trine_diag_print(const trine_diag *d, FILE *out)
{
    for (size_t i = 0; d != NULL && i < d->count; i++) {
        const trine_diag_item *it = &d->items[i];
        const char *lvl = it->level == TRINE_DIAG_WARNING ? "warning: " : "";
        bool ok = diag_put_safe(out, it->file);
        if (ok && it->line > 0)
            ok = fprintf(out, ":%u:%u", it->line, it->col) > 0;
        ok = ok && fprintf(out, ": %s", lvl) > 0 &&
             diag_put_safe(out, it->message) && fputc('\n', out) != EOF;
        if (!ok)
            return TRINE_EIO;
    }
    return 0;
}
