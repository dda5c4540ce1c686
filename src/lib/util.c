/*
 * util.c - the string buffer, pointer vector and hash map of util.h.
 */
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(strbuf *b)
{
    memset(b, 0, sizeof *b);
}

void sb_free(strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void sb_reset(strbuf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

bool sb_reserve(strbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void sb_putn(strbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_putc(strbuf *b, char c)
{
    if (!sb_reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void sb_puts(strbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

void sb_vprintf(strbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!sb_reserve(b, (size_t)n))
        return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

size_t fmt_i64(char *out, int64_t v)
{
    /* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char tmp[FMT_I64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = tmp[--n];
    return len;
}

void sb_put_i64(strbuf *b, int64_t v)
{
    char digits[FMT_I64_MAX];
    sb_putn(b, digits, fmt_i64(digits, v));
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* For each byte, 0 when it stands for itself inside a JSON string, else
 * the letter that follows the backslash of its escape ('u': \u00XX). */
static const char json_escape[256] = {
    'u', 'u', 'u', 'u', 'u', 'u',         'u',           'u', 'b',
    't', 'n', 'u', 'f', 'r', 'u',         'u',           'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u',         'u',           'u', 'u',
    'u', 'u', 'u', 'u', 'u', ['"'] = '"', ['\\'] = '\\',
};

void sb_json_str(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    if (!sb_reserve(b, n * 6 + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        /* Copy the run of bytes that need no escape in one go. */
        size_t end = i;
        while (end < n && json_escape[(unsigned char)s[end]] == 0)
            end++;
        memcpy(o, s + i, end - i);
        o += end - i;
        if (end == n)
            break;
        unsigned char c = (unsigned char)s[end];
        i = end + 1;
        *o++ = '\\';
        *o++ = json_escape[c];
        if (json_escape[c] == 'u') {
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

char *sb_take(strbuf *b)
{
    char *p = b->oom ? NULL : b->data;
    if (b->oom)
        free(b->data);
    else if (p == NULL)
        p = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return p;
}

int pv_push(ptrvec *v, void *item)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void **p = realloc(v->items, cap * sizeof *p);
        if (p == NULL)
            return -1;
        v->items = p;
        v->cap = cap;
    }
    v->items[v->len++] = item;
    return 0;
}

void pv_free(ptrvec *v)
{
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* FNV-1a, finished with a 64-bit mix so that low bits spread well. */
uint64_t strmap_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static strmap_entry *strmap_find(const strmap *m, const char *key, size_t len,
                                 uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        strmap_entry *e = &m->slots[i];
        if (e->key == NULL)
            return e;
        if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

void *strmap_getn(const strmap *m, const char *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    strmap_entry *e = strmap_find(m, key, len, strmap_hash(key, len));
    return e->key ? e->value : NULL;
}

void *strmap_get(const strmap *m, const char *key)
{
    return strmap_getn(m, key, strlen(key));
}

static int strmap_grow(strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    strmap_entry *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    strmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        strmap_entry *e = &old.slots[i];
        if (e->key != NULL)
            *strmap_find(m, e->key, e->keylen, e->hash) = *e;
    }
    free(old.slots);
    return 0;
}

int strmap_putn(strmap *m, const char *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 >= m->cap * 3 && strmap_grow(m) != 0)
        return -1;
    uint64_t h = strmap_hash(key, len);
    strmap_entry *e = strmap_find(m, key, len, h);
    if (e->key == NULL) {
        e->key = key;
        e->keylen = len;
        e->hash = h;
        m->count++;
    }
    e->value = value;
    return 0;
}

int strmap_put(strmap *m, const char *key, void *value)
{
    return strmap_putn(m, key, strlen(key), value);
}

void strmap_free(strmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

size_t utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t min, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i <= need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return n;
}

uint32_t utf8_decode(const char *str, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xe0) {
        *len = 2;
        return ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    }
    if (s[0] < 0xf0) {
        *len = 3;
        return ((uint32_t)(s[0] & 0x0f) << 12) |
               ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }
    *len = 4;
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
           ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
