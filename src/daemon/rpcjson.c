/*
 * rpcjson.c - the fast reader for the JSON of ordinary requests (see
 * rpcjson.h). Every function returns NULL (or -1) to decline; declining is
 * never an error here, only a hand-over to jansson.
 */
#include "daemon/rpcjson.h"

#include "daemon/rpc.h"
#include "lib/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The most digits of an integer taken: 10^18 - 1 fits in json_int_t with
 * room to spare, so no overflow check is needed. */
#define RPCJSON_MAX_DIGITS 18

typedef struct reader {
    const char *p;   /* the next byte */
    const char *end; /* one past the last byte */
    strbuf buf;      /* unescaped string values */
} reader;

static json_t *read_value(reader *r, int depth);

static void skip_ws(reader *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool is_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/* Checks that the bytes between from and to are valid UTF-8 (jansson's
 * rule too). */
static bool utf8_ok(const char *from, const char *to)
{
    size_t n = (size_t)(to - from);
    return utf8_check(from, n) == n;
}

/* string = '"' { plain byte | simple escape } '"'. At '"'. Sets *s and *n
 * to the string's bytes: in the text itself when it has no escape (then
 * *escaped is false), else in r->buf, valid until the next string. */
static int read_string(reader *r, const char **s, size_t *n, bool *escaped)
{
    const char *start = ++r->p;
    const char *q = start;
    unsigned char high = 0; /* any byte past ASCII: check the UTF-8 */
    while (q < r->end && is_plain((unsigned char)*q))
        high |= (unsigned char)*q++;
    if (q >= r->end || (unsigned char)*q < 0x20)
        return -1;
    if (*q == '"') {
        if ((high & 0x80) && !utf8_ok(start, q))
            return -1;
        *s = start;
        *n = (size_t)(q - start);
        *escaped = false;
        r->p = q + 1;
        return 0;
    }
    sb_reset(&r->buf);
    sb_putn(&r->buf, start, (size_t)(q - start));
    while (q < r->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            /* Escapes only replace ASCII with ASCII. */
            if (r->buf.oom || !utf8_ok(r->buf.data, r->buf.data + r->buf.len))
                return -1;
            *s = r->buf.data;
            *n = r->buf.len;
            *escaped = true;
            r->p = q + 1;
            return 0;
        }
        if (c == '\\') {
            if (r->end - q < 2)
                return -1;
            char e;
            switch (q[1]) {
            case '"':
                e = '"';
                break;
            case '\\':
                e = '\\';
                break;
            case '/':
                e = '/';
                break;
            case 'b':
                e = '\b';
                break;
            case 'f':
                e = '\f';
                break;
            case 'n':
                e = '\n';
                break;
            case 'r':
                e = '\r';
                break;
            case 't':
                e = '\t';
                break;
            default:
                return -1; /* \u, and whatever is not an escape */
            }
            sb_putc(&r->buf, e);
            q += 2;
            continue;
        }
        if (c < 0x20)
            return -1;
        const char *run = q;
        while (q < r->end && is_plain((unsigned char)*q))
            q++;
        sb_putn(&r->buf, run, (size_t)(q - run));
    }
    return -1;
}

/* integer = [ '-' ] ( '0' | digit1-9 { digit } ), at most 18 digits, not
 * followed by a fraction or an exponent. */
static json_t *read_integer(reader *r)
{
    const char *q = r->p;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    const char *digits = q;
    json_int_t v = 0;
    while (q < r->end && *q >= '0' && *q <= '9') {
        /* Counted before the digit is taken in: a nineteenth digit could
         * overflow v. */
        if (q - digits >= RPCJSON_MAX_DIGITS)
            return NULL;
        v = v * 10 + (*q - '0');
        q++;
    }
    size_t nd = (size_t)(q - digits);
    if (nd == 0 || (nd > 1 && *digits == '0'))
        return NULL;
    if (q < r->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return NULL;
    r->p = q;
    return json_integer(neg ? -v : v);
}

/* Matches the literal word w (true, false, null). The byte after it is
 * checked by whatever follows, as for every value. */
static bool read_word(reader *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

/* object = '{' [ key ':' value { ',' key ':' value } ] '}'. At '{'. */
static json_t *read_object(reader *r, int depth)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return obj;
    }
    for (;;) {
        if (r->p >= r->end || *r->p != '"')
            break;
        const char *key;
        size_t klen;
        bool escaped;
        /* A key with an escape would live in r->buf, which the value may
         * reuse; such keys are rare enough to leave to jansson. */
        if (read_string(r, &key, &klen, &escaped) != 0 || escaped)
            break;
        /* jansson names duplicates as an error. */
        if (json_object_getn(obj, key, klen) != NULL)
            break;
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':')
            break;
        r->p++;
        skip_ws(r);
        json_t *v = read_value(r, depth);
        if (v == NULL)
            break;
        /* This steals v, even when it fails. */
        if (json_object_setn_new_nocheck(obj, key, klen, v) != 0)
            break;
        skip_ws(r);
        if (r->p >= r->end)
            break;
        if (*r->p == '}') {
            r->p++;
            return obj;
        }
        if (*r->p != ',')
            break;
        r->p++;
        skip_ws(r);
    }
    json_decref(obj);
    return NULL;
}

/* array = '[' [ value { ',' value } ] ']'. At '['. */
static json_t *read_array(reader *r, int depth)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return arr;
    }
    for (;;) {
        json_t *v = read_value(r, depth);
        /* This steals v, even when it fails. */
        if (v == NULL || json_array_append_new(arr, v) != 0)
            break;
        skip_ws(r);
        if (r->p >= r->end)
            break;
        if (*r->p == ']') {
            r->p++;
            return arr;
        }
        if (*r->p != ',')
            break;
        r->p++;
        skip_ws(r);
    }
    json_decref(arr);
    return NULL;
}

/* value = object | array | string | integer | true | false | null. */
static json_t *read_value(reader *r, int depth)
{
    if (r->p >= r->end)
        return NULL;
    switch (*r->p) {
    case '{':
        return depth < RPC_MAX_DEPTH ? read_object(r, depth + 1) : NULL;
    case '[':
        return depth < RPC_MAX_DEPTH ? read_array(r, depth + 1) : NULL;
    case '"': {
        const char *s;
        size_t n;
        bool escaped;
        if (read_string(r, &s, &n, &escaped) != 0)
            return NULL;
        return json_stringn_nocheck(s, n);
    }
    case 't':
        return read_word(r, "true", 4) ? json_true() : NULL;
    case 'f':
        return read_word(r, "false", 5) ? json_false() : NULL;
    case 'n':
        return read_word(r, "null", 4) ? json_null() : NULL;
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return read_integer(r);
        return NULL;
    }
}

json_t *rpc_json_read(const char *text, size_t n)
{
    reader r = {.p = text, .end = text + n};
    sb_init(&r.buf);
    skip_ws(&r);
    json_t *v = read_value(&r, 0);
    if (v != NULL) {
        skip_ws(&r);
        if (r.p != r.end) {
            json_decref(v);
            v = NULL;
        }
    }
    sb_free(&r.buf);
    return v;
}
