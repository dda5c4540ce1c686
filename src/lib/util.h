/*
 * util.h - small containers shared by every stage of libtrine: a growable
 * string buffer with a sticky out-of-memory flag, a pointer vector and a
 * string-keyed hash map. Internal; not part of the public API.
 */
#ifndef TRINE_UTIL_H
#define TRINE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable NUL-terminated byte buffer. An allocation failure sets oom and
 * turns every later append into a no-op, so callers check once at the end. */
typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} strbuf;

void sb_init(strbuf *b);
void sb_free(strbuf *b);
/* Empties the buffer, keeping its memory. */
void sb_reset(strbuf *b);
/* Ensures room for n more bytes plus the NUL. Returns false on OOM. */
bool sb_reserve(strbuf *b, size_t n);
void sb_putc(strbuf *b, char c);
void sb_putn(strbuf *b, const char *s, size_t n);
void sb_puts(strbuf *b, const char *s);
/* Writes v in decimal into out (at least FMT_I64_MAX bytes, not
 * NUL-terminated) and returns its length. What snprintf's "%" PRId64 gives,
 * without parsing a format for every number of every audit row. */
#define FMT_I64_MAX 20
size_t fmt_i64(char *out, int64_t v);
void sb_put_i64(strbuf *b, int64_t v);
void sb_printf(strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *b, const char *fmt, va_list ap);
/* Appends s (n bytes of valid UTF-8) as a JSON string literal, quotes
 * included: '"' and '\\' escaped, U+0000-U+001F as \n \t \r \b \f or
 * \u00XX, everything else (DEL and non-ASCII included) raw, as RFC 8785
 * writes strings. */
void sb_json_str(strbuf *b, const char *s, size_t n);
/* Hands the buffer's memory to the caller (NULL after OOM) and resets b. */
char *sb_take(strbuf *b);

/* A growable vector of pointers. */
typedef struct ptrvec {
    void **items;
    size_t len;
    size_t cap;
} ptrvec;

/* Returns 0, or -1 on OOM (the vector is unchanged). */
int pv_push(ptrvec *v, void *item);
void pv_free(ptrvec *v);

/* A string-keyed open-addressing hash map. Keys are borrowed: they must
 * outlive the map (in a compiled policy they live in the policy). */
typedef struct strmap_entry {
    const char *key;
    size_t keylen;
    uint64_t hash;
    void *value;
} strmap_entry;

typedef struct strmap {
    strmap_entry *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} strmap;

uint64_t strmap_hash(const char *key, size_t len);
/* Returns the value for key (len bytes), or NULL. */
void *strmap_getn(const strmap *m, const char *key, size_t len);
void *strmap_get(const strmap *m, const char *key);
/* Sets key to value, replacing any previous value. Returns 0 or -1 on OOM. */
int strmap_put(strmap *m, const char *key, void *value);
int strmap_putn(strmap *m, const char *key, size_t len, void *value);
/* Frees the table, not the keys or values. */
void strmap_free(strmap *m);

/* Checks that n bytes at s are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF). Returns the offset of the first bad
 * byte, or n when all are good. */
size_t utf8_check(const char *s, size_t n);
/* Decodes one code point of valid UTF-8 at s; stores its length in *len. */
uint32_t utf8_decode(const char *s, size_t *len);

/* strdup/strndup that return NULL on OOM (never abort). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif /* TRINE_UTIL_H */
