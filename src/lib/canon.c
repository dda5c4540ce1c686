/*
 * canon.c - canonical JSON and SHA-256.
 *
 * Canonical JSON is what the argument hash of a decision and the audit hash
 * chain are computed over, so two equal values must always give the same
 * bytes: compact, object keys sorted by their bytes, strings with only the
 * escapes JSON requires (", \ and the C0 controls), integers in decimal,
 * reals in the shortest form that reads back the same and always with a '.'
 * or an 'e' (so a real never reads back as an integer).
 *
 * The arguments hash that binds an `always` grant (canon_args_sha256) is
 * over the value form of the same: a member whose value is null is left
 * out (a null argument is absent) and an integral real is written as an
 * integer (1.0 is 1), so arguments that evaluate alike hash alike.
 */
#include "lib/decision.h"
#include "lib/number.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper values are refused rather than risk the stack; the JSON parser
 * stops well before this. */
#define CANON_MAX_DEPTH 2048
#define CANON_INLINE_KEYS 16
#define CANON_INLINE_PATH 16

typedef struct canon_key {
    const char *key;
    size_t len;
    const json_t *value;
} canon_key;

typedef struct canon_ctx {
    strbuf *b;
    bool by_value; /* the arguments' value form (canon_args_sha256) */
    const cpl_path *redact;
    size_t nredact;
    size_t maxseg;      /* the longest redact path */
    const char **stack; /* keys from the root, while only objects */
    size_t *stack_len;
} canon_ctx;

size_t canon_real(double x, char buf[32])
{
    /* The text is hashed (argument hashes, the audit chain), so it must not
     * depend on the locale: number.c writes it with a '.' always. */
    int n = (int)num_shortest(x, buf);
    /* An integral value within the exactly representable range reads best
     * in plain notation: 100.0, not 1e+02. */
    if (n > 0 && x > -1e15 && x < 1e15 && x == (double)(long long)x) {
        n = num_format(buf, 32, "%.1f", x);
        if (n <= 0 || n >= 32)
            n = 0;
    }
    if (n > 0 && strpbrk(buf, ".eEn") == NULL && n + 2 < 32) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return (size_t)n;
}

static int key_cmp(const void *a, const void *b)
{
    const canon_key *x = a;
    const canon_key *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* True when the member key (at object depth `depth`, with the keys above it
 * on the stack) ends a redact path. */
static bool redacted(const canon_ctx *cx, size_t depth, const char *key,
                     size_t len)
{
    for (size_t i = 0; i < cx->nredact; i++) {
        const cpl_path *p = &cx->redact[i];
        if (p->nseg != depth + 1)
            continue;
        bool same = strlen(p->seg[depth]) == len &&
                    memcmp(p->seg[depth], key, len) == 0;
        for (size_t k = 0; same && k < depth; k++) {
            same = strlen(p->seg[k]) == cx->stack_len[k] &&
                   memcmp(p->seg[k], cx->stack[k], cx->stack_len[k]) == 0;
        }
        if (same)
            return true;
    }
    return false;
}

/* Writes v. depth counts every level; odepth is the object depth from the
 * root while every ancestor is an object (SIZE_MAX otherwise: no redact
 * path can reach through an array). */
static int write_value(canon_ctx *cx, const json_t *v, size_t depth,
                       size_t odepth);

static int write_object(canon_ctx *cx, const json_t *v, size_t depth,
                        size_t odepth)
{
    size_t n = json_object_size(v);
    canon_key inline_keys[CANON_INLINE_KEYS];
    canon_key *keys = inline_keys;
    if (n > CANON_INLINE_KEYS) {
        keys = malloc(n * sizeof *keys);
        if (keys == NULL)
            return TRINE_ENOMEM;
    }
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)v); it != NULL && i < n;
         it = json_object_iter_next((json_t *)v, it)) {
        keys[i].value = json_object_iter_value(it);
        /* In the value form a null member is absent, as for arguments. */
        if (cx->by_value && json_is_null(keys[i].value))
            continue;
        keys[i].key = json_object_iter_key(it);
        keys[i].len = json_object_iter_key_len(it);
        i++;
    }
    n = i;
    qsort(keys, n, sizeof *keys, key_cmp);

    int rc = 0;
    sb_putc(cx->b, '{');
    for (i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            sb_putc(cx->b, ',');
        sb_json_str(cx->b, keys[i].key, keys[i].len);
        sb_putc(cx->b, ':');
        if (odepth < cx->maxseg &&
            redacted(cx, odepth, keys[i].key, keys[i].len)) {
            sb_puts(cx->b, "\"[redacted]\"");
            continue;
        }
        size_t next = SIZE_MAX;
        if (odepth < cx->maxseg) {
            cx->stack[odepth] = keys[i].key;
            cx->stack_len[odepth] = keys[i].len;
            next = odepth + 1;
        }
        rc = write_value(cx, keys[i].value, depth + 1, next);
    }
    sb_putc(cx->b, '}');
    if (keys != inline_keys)
        free(keys);
    return rc;
}

static int write_value(canon_ctx *cx, const json_t *v, size_t depth,
                       size_t odepth)
{
    char num[32];
    if (depth > CANON_MAX_DEPTH)
        return TRINE_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return write_object(cx, v, depth, odepth);
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        sb_putc(cx->b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                sb_putc(cx->b, ',');
            int rc = write_value(cx, json_array_get(v, i), depth + 1, SIZE_MAX);
            if (rc != 0)
                return rc;
        }
        sb_putc(cx->b, ']');
        return 0;
    }
    case JSON_STRING:
        sb_json_str(cx->b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        sb_printf(cx->b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_REAL: {
        double x = json_real_value(v);
        /* In the value form a number is its value: 1.0 is written as 1. */
        if (cx->by_value && x > -9.2e18 && x < 9.2e18 &&
            x == (double)(int64_t)x) {
            sb_printf(cx->b, "%" PRId64, (int64_t)x);
            return 0;
        }
        sb_putn(cx->b, num, canon_real(x, num));
        return 0;
    }
    case JSON_TRUE:
        sb_puts(cx->b, "true");
        return 0;
    case JSON_FALSE:
        sb_puts(cx->b, "false");
        return 0;
    case JSON_NULL:
        sb_puts(cx->b, "null");
        return 0;
    }
    return TRINE_EINVAL;
}

/* canon_write and the value form of canon_args_sha256. */
static int canon_write_form(strbuf *b, const json_t *v, bool by_value,
                            const cpl_path *redact, size_t n)
{
    if (v == NULL)
        return TRINE_EINVAL;
    canon_ctx cx = {b, by_value, redact, n, 0, NULL, NULL};
    for (size_t i = 0; i < n; i++) {
        if (redact[i].nseg > cx.maxseg)
            cx.maxseg = redact[i].nseg;
    }
    const char *stack_inline[CANON_INLINE_PATH];
    size_t len_inline[CANON_INLINE_PATH];
    cx.stack = stack_inline;
    cx.stack_len = len_inline;
    if (cx.maxseg > CANON_INLINE_PATH) {
        cx.stack = malloc(cx.maxseg * sizeof *cx.stack);
        cx.stack_len = malloc(cx.maxseg * sizeof *cx.stack_len);
        if (cx.stack == NULL || cx.stack_len == NULL) {
            free(cx.stack);
            free(cx.stack_len);
            return TRINE_ENOMEM;
        }
    }
    int rc = write_value(&cx, v, 0, 0);
    if (cx.stack != stack_inline) {
        free(cx.stack);
        free(cx.stack_len);
    }
    if (rc == 0 && b->oom)
        rc = TRINE_ENOMEM;
    return rc;
}

int canon_write(strbuf *b, const json_t *v, const cpl_path *redact, size_t n)
{
    return canon_write_form(b, v, false, redact, n);
}

int canon_args_sha256(const json_t *args, char hex[65])
{
    strbuf b;
    sb_init(&b);
    int rc = args != NULL ? canon_write_form(&b, args, true, NULL, 0)
                          : (sb_puts(&b, "{}"), b.oom ? TRINE_ENOMEM : 0);
    if (rc == 0)
        rc = canon_sha256_hex(b.data, b.len, hex);
    sb_free(&b);
    return rc;
}

int trine_arguments_hash(const json_t *args, char hex[65])
{
    if (hex == NULL)
        return TRINE_EINVAL;
    hex[0] = '\0';
    if (args != NULL && !json_is_object(args))
        return TRINE_EINVAL;
    return canon_args_sha256(args, hex);
}

int trine_json_canonical(const json_t *v, char **out, size_t *len)
{
    if (out == NULL)
        return TRINE_EINVAL;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    strbuf b;
    sb_init(&b);
    int rc = canon_write(&b, v, NULL, 0);
    if (rc != 0) {
        sb_free(&b);
        return rc;
    }
    size_t n = b.len;
    *out = sb_take(&b);
    if (*out == NULL)
        return TRINE_ENOMEM;
    if (len != NULL)
        *len = n;
    return 0;
}

/* The SHA-256 implementation, fetched once: OpenSSL 3 otherwise looks it
 * up in its provider tables on every one-shot call, which costs more than
 * hashing a short text. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int canon_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    hex[0] = '\0';
    if (data == NULL) {
        data = "";
        len = 0;
    }
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int mdlen = 0;
    if (sha256_md == NULL ||
        EVP_Digest(data, len, md, &mdlen, sha256_md, NULL) != 1 ||
        mdlen != SHA256_DIGEST_LENGTH) {
        /* The slow path, which allocates too: when it fails as well there
         * is no digest, and md must not be read. */
        if (SHA256(data, len, md) == NULL)
            return TRINE_ENOMEM;
    }
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

void trine_sha256_hex(const void *data, size_t len, char hex[65])
{
    (void)canon_sha256_hex(data, len, hex);
}
