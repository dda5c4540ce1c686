/*
 * result.c - the trine_decision: its arena, its getters, and the result
 * object of DESIGN §3.1 written straight into a caller's buffer.
 *
 * A decision is one allocation in the common case: small inline arrays for
 * reasons and matched rules and an inline arena for the strings a check
 * copies, spilling into extra chunks only for unusual requests. The
 * argument hash, the redacted arguments and the chain text are computed on
 * first use, since many callers never ask for them.
 */
#include "lib/decision.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_ALIGN (alignof(max_align_t))
#define DEC_CHUNK_MIN 4096

/* The chunk header padded so that the data after it is aligned. */
#define DEC_CHUNK_HDR                                                          \
    ((sizeof(dec_chunk) + DEC_ALIGN - 1) / DEC_ALIGN * DEC_ALIGN)

trine_decision *dec_new(const trine_policy *p)
{
    trine_decision *d = malloc(sizeof *d);
    if (d == NULL)
        return NULL;
    /* Only the header is cleared: the inline arrays and arena are written
     * before they are read. */
    memset(d, 0, offsetof(trine_decision, reasons_inline));
    d->policy = trine_policy_retain((trine_policy *)p);
    d->kind = "deny";
    d->reason = "token_invalid";
    d->consent_duration_s = -1;
    d->grant_id = -1;
    d->reasons = d->reasons_inline;
    d->reasons_cap = DEC_INLINE_REASONS;
    d->matched = d->matched_inline;
    d->matched_cap = DEC_INLINE_MATCHED;
    d->arena_cur = d->arena_inline;
    d->arena_left = DEC_ARENA_INLINE;
    return d;
}

void trine_decision_free(trine_decision *d)
{
    if (d == NULL)
        return;
    dec_chunk *c = d->chunks;
    while (c != NULL) {
        dec_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d->redacted);
    free(d->chain_text);
    json_decref(d->args);
    trine_policy_release(d->policy);
    free(d);
}

void *dec_alloc(trine_decision *d, size_t n)
{
    size_t need = (n + DEC_ALIGN - 1) / DEC_ALIGN * DEC_ALIGN;
    if (need < n)
        return NULL;
    if (need <= d->arena_left) {
        void *p = d->arena_cur;
        d->arena_cur += need;
        d->arena_left -= need;
        return p;
    }
    size_t size = need > DEC_CHUNK_MIN ? need : DEC_CHUNK_MIN;
    if (size > SIZE_MAX - DEC_CHUNK_HDR)
        return NULL;
    dec_chunk *c = malloc(DEC_CHUNK_HDR + size);
    if (c == NULL)
        return NULL;
    c->next = d->chunks;
    d->chunks = c;
    char *data = (char *)c + DEC_CHUNK_HDR;
    /* Keep bumping in whichever block has more room left. */
    if (size - need > d->arena_left) {
        d->arena_cur = data + need;
        d->arena_left = size - need;
    }
    return data;
}

char *dec_strndup(trine_decision *d, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = dec_alloc(d, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *dec_printf(trine_decision *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = dec_alloc(d, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Grows an arena array of n items of size sz to twice its capacity. */
static void *grow(trine_decision *d, void *items, size_t n, size_t sz,
                  size_t *cap)
{
    if (*cap > SIZE_MAX / 2 / sz)
        return NULL;
    void *p = dec_alloc(d, *cap * 2 * sz);
    if (p == NULL)
        return NULL;
    memcpy(p, items, n * sz);
    *cap *= 2;
    return p;
}

dec_reason *dec_add_reason(trine_decision *d, const dec_reason *r)
{
    if (d->nreasons == d->reasons_cap) {
        dec_reason *p =
            grow(d, d->reasons, d->nreasons, sizeof *p, &d->reasons_cap);
        if (p == NULL)
            return NULL;
        d->reasons = p;
    }
    d->reasons[d->nreasons] = *r;
    if (r->resource_audit == r->resource)
        d->reasons[d->nreasons].resource_audit = NULL;
    else if (r->resource_audit != NULL)
        d->has_redacted = true;
    return &d->reasons[d->nreasons++];
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int dec_add_match(trine_decision *d, const char *set, const char *agent,
                  const char *file, unsigned line)
{
    for (size_t i = 0; i < d->nmatched; i++) {
        const dec_match *m = &d->matched[i];
        if (m->line == line && same_str(m->set, set) &&
            same_str(m->agent, agent) && same_str(m->file, file))
            return 0;
    }
    if (d->nmatched == d->matched_cap) {
        dec_match *p =
            grow(d, d->matched, d->nmatched, sizeof *p, &d->matched_cap);
        if (p == NULL)
            return TRINE_ENOMEM;
        d->matched = p;
    }
    d->matched[d->nmatched++] = (dec_match){set, agent, file, line};
    return 0;
}

int dec_args_hash(trine_decision *d)
{
    if (d->hash_done)
        return 0;
    int rc = canon_args_sha256(d->args, d->args_hash);
    d->hash_done = rc == 0;
    return rc;
}

/* ---- Getters ----------------------------------------------------------- */

const char *trine_consent_mode_name(trine_consent_mode m)
{
    switch (m) {
    case TRINE_CONSENT_SESSION:
        return "session";
    case TRINE_CONSENT_ONCE:
        return "once";
    case TRINE_CONSENT_ALWAYS:
        return "always";
    case TRINE_CONSENT_NONE:
        break;
    }
    return "none";
}

const char *trine_decision_kind(const trine_decision *d)
{
    return d != NULL ? d->kind : "deny";
}

const char *trine_decision_reason(const trine_decision *d)
{
    return d != NULL ? d->reason : "token_invalid";
}

const char *trine_decision_server(const trine_decision *d)
{
    return d != NULL ? d->server : NULL;
}

const char *trine_decision_tool(const trine_decision *d)
{
    return d != NULL ? d->tool : NULL;
}

const char *trine_decision_user(const trine_decision *d)
{
    return d != NULL ? d->user : NULL;
}

const char *trine_decision_agent(const trine_decision *d)
{
    return d != NULL ? d->agent : NULL;
}

const char *trine_decision_session(const trine_decision *d)
{
    return d != NULL ? d->session : NULL;
}

trine_consent_mode trine_decision_consent_mode(const trine_decision *d)
{
    return d != NULL ? d->consent_mode : TRINE_CONSENT_NONE;
}

int64_t trine_decision_consent_duration_s(const trine_decision *d)
{
    return d != NULL ? d->consent_duration_s : -1;
}

int64_t trine_decision_consent_grant(const trine_decision *d)
{
    return d != NULL ? d->grant_id : -1;
}

/* The lazy getters fill caches in a decision that is const to its callers
 * only: it was allocated writable, and one thread uses it at a time. */

const char *trine_decision_args_hash(const trine_decision *cd)
{
    trine_decision *d = (trine_decision *)cd;
    if (d == NULL || dec_args_hash(d) != 0)
        return NULL;
    return d->args_hash;
}

const char *trine_decision_arguments(const trine_decision *cd)
{
    trine_decision *d = (trine_decision *)cd;
    if (d == NULL || d->args == NULL)
        return NULL;
    if (!d->redacted_done) {
        const cpl_path *paths = NULL;
        size_t n = 0;
        if (d->tool_blk != NULL) {
            paths = d->tool_blk->redacts;
            n = d->tool_blk->nredacts;
        }
        strbuf b;
        sb_init(&b);
        if (canon_write(&b, d->args, paths, n) != 0) {
            sb_free(&b);
            return NULL;
        }
        d->redacted = sb_take(&b);
        d->redacted_done = d->redacted != NULL;
    }
    return d->redacted;
}

const char *trine_decision_chain(const trine_decision *cd)
{
    trine_decision *d = (trine_decision *)cd;
    if (d == NULL || !d->has_chain)
        return NULL;
    if (!d->chain_done) {
        strbuf b;
        sb_init(&b);
        sb_putc(&b, '[');
        for (size_t i = 0; i < d->nactors; i++) {
            if (i > 0)
                sb_putc(&b, ',');
            if (d->actors[i].id != NULL)
                sb_json_str(&b, d->actors[i].id, strlen(d->actors[i].id));
            else
                sb_puts(&b, "null");
        }
        sb_putc(&b, ']');
        d->chain_text = sb_take(&b);
        d->chain_done = d->chain_text != NULL;
    }
    return d->chain_text;
}

/* ---- The result object ------------------------------------------------- */

/* A writer into a fixed buffer that keeps counting past its end, so the
 * caller learns the length the whole text needs (like snprintf). */
typedef struct jw {
    char *buf;
    size_t cap;
    size_t len;
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - 1 - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void jw_lit(jw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

/* Writes n bytes at s escaped for the inside of a JSON string: '"', '\\'
 * and C0 controls escaped, bytes that are not valid UTF-8 replaced by
 * U+FFFD (strings come from parsed JSON, but a caller may build values that
 * skipped the check). */
static void jw_esc(jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending run of plain bytes */
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (len <= n - i && utf8_check(s + i, len) == len) {
                i += len;
                continue;
            }
            jw_raw(w, s + run, i - run);
            jw_raw(w, "\xef\xbf\xbd", 3);
            run = ++i;
            continue;
        }
        jw_raw(w, s + run, i - run);
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        jw_raw(w, esc, elen);
        run = ++i;
    }
    jw_raw(w, s + run, n - run);
}

static void jw_strn(jw *w, const char *s, size_t n)
{
    jw_raw(w, "\"", 1);
    jw_esc(w, s, n);
    jw_raw(w, "\"", 1);
}

static void jw_str(jw *w, const char *s)
{
    jw_strn(w, s, strlen(s));
}

/* Writes ,"key":"value" (the comma only when not first). */
static void jw_member(jw *w, const char *key, const char *value, bool first)
{
    if (!first)
        jw_raw(w, ",", 1);
    jw_str(w, key);
    jw_raw(w, ":", 1);
    jw_str(w, value);
}

/* Writes v in decimal; snprintf costs more than the rest of a rule. */
static void jw_u64(jw *w, uint64_t v)
{
    char num[20];
    size_t i = sizeof num;
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    jw_raw(w, num + i, sizeof num - i);
}

/* Writes "file:line" as one string. */
static void jw_rule(jw *w, const char *file, unsigned line)
{
    jw_raw(w, "\"", 1);
    jw_esc(w, file, strlen(file));
    jw_raw(w, ":", 1);
    jw_u64(w, line);
    jw_raw(w, "\"", 1);
}

/* Writes one reason; audit picks the audit log's copy of the resource. */
static void write_reason(jw *w, const dec_reason *r, bool audit)
{
    jw_member(w, "code", r->code, true);
    if (r->set != NULL)
        jw_member(w, "set", r->set, false);
    if (r->action != NULL)
        jw_member(w, "action", r->action, false);
    if (r->resource != NULL)
        jw_member(w, "resource",
                  audit && r->resource_audit != NULL ? r->resource_audit
                                                     : r->resource,
                  false);
    if (r->agent != NULL)
        jw_member(w, "agent", r->agent, false);
    if (r->argument != NULL)
        jw_member(w, "argument", r->argument, false);
    if (r->rule_file != NULL) {
        jw_lit(w, ",\"rule\":");
        jw_rule(w, r->rule_file, r->rule_line);
    }
    if (r->detail != NULL)
        jw_member(w, "detail", r->detail, false);
}

/* trine_decision_write, and with audit the audit log's copy. */
static size_t decision_write(const trine_decision *d, int64_t audit_id,
                             bool audit, char *buf, size_t cap)
{
    jw w = {buf, buf != NULL ? cap : 0, 0};
    if (d == NULL)
        return 0;
    jw_lit(&w, "{\"decision\":");
    jw_str(&w, d->kind);
    jw_lit(&w, ",\"reason\":");
    jw_str(&w, d->reason);
    if (audit_id >= 0) {
        jw_lit(&w, ",\"audit_id\":");
        jw_u64(&w, (uint64_t)audit_id);
    }
    jw_lit(&w, ",\"policy_revision\":");
    jw_str(&w, trine_policy_revision(d->policy));
    if (d->prompt != NULL) {
        jw_lit(&w, ",\"consent\":{\"mode\":");
        jw_str(&w, trine_consent_mode_name(d->consent_mode));
        jw_lit(&w, ",\"prompt\":");
        if (audit && d->prompt_audit != NULL)
            jw_strn(&w, d->prompt_audit, d->prompt_audit_len);
        else
            jw_strn(&w, d->prompt, d->prompt_len);
        jw_lit(&w, "}");
    }
    jw_lit(&w, ",\"reasons\":[");
    for (size_t i = 0; i < d->nreasons; i++) {
        jw_lit(&w, i > 0 ? ",{" : "{");
        write_reason(&w, &d->reasons[i], audit);
        jw_lit(&w, "}");
    }
    jw_lit(&w, "],\"matched\":[");
    for (size_t i = 0; i < d->nmatched; i++) {
        const dec_match *m = &d->matched[i];
        jw_lit(&w, i > 0 ? ",{" : "{");
        jw_member(&w, "set", m->set, true);
        if (m->agent != NULL)
            jw_member(&w, "agent", m->agent, false);
        jw_lit(&w, ",\"rule\":");
        jw_rule(&w, m->file, m->line);
        jw_lit(&w, "}");
    }
    jw_lit(&w, "]");
    if (d->has_required) {
        jw_lit(&w, ",\"required_scopes\":[");
        for (size_t i = 0; i < d->nrequired; i++) {
            if (i > 0)
                jw_lit(&w, ",");
            jw_str(&w, d->required[i]);
        }
        jw_lit(&w, "]");
    }
    if (d->www_auth != NULL) {
        jw_lit(&w, ",\"www_authenticate\":");
        jw_str(&w, d->www_auth);
    }
    jw_lit(&w, "}");
    if (w.cap > 0)
        w.buf[w.len < w.cap ? w.len : w.cap - 1] = '\0';
    return w.len;
}

size_t trine_decision_write(const trine_decision *d, int64_t audit_id,
                            char *buf, size_t cap)
{
    return decision_write(d, audit_id, false, buf, cap);
}

size_t trine_decision_write_audit(const trine_decision *d, int64_t audit_id,
                                  char *buf, size_t cap)
{
    return decision_write(d, audit_id, true, buf, cap);
}

bool trine_decision_has_redacted(const trine_decision *d)
{
    return d != NULL && d->has_redacted;
}

/* ---- The result as a jansson value ------------------------------------- */

/* The result is built with jansson's constructors, each of which reports
 * running out of memory, rather than by parsing the text above: jansson's
 * parser can drop a byte of a string when an allocation fails and still
 * return a value. */

/* A string of n bytes, every byte that is not valid UTF-8 replaced by
 * U+FFFD as jw_esc does. NULL on OOM. */
static json_t *rv_strn(const char *s, size_t n)
{
    if (utf8_check(s, n) == n)
        return json_stringn(s, n);
    strbuf b;
    sb_init(&b);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (len == 1 || (len <= n - i && utf8_check(s + i, len) == len)) {
            sb_putn(&b, s + i, len);
            i += len;
            continue;
        }
        sb_puts(&b, "\xef\xbf\xbd");
        i++;
    }
    json_t *v = b.oom ? NULL : json_stringn(b.data ? b.data : "", b.len);
    sb_free(&b);
    return v;
}

static json_t *rv_str(const char *s)
{
    return rv_strn(s, strlen(s));
}

/* "file:line" as a string. NULL on OOM. */
static json_t *rv_rule(const char *file, unsigned line)
{
    strbuf b;
    sb_init(&b);
    sb_printf(&b, "%s:%u", file, line);
    json_t *v = b.oom ? NULL : rv_strn(b.data, b.len);
    sb_free(&b);
    return v;
}

/* Sets key of obj to v (stolen, NULL allowed). Returns false on failure. */
static bool rv_set(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0;
}

/* Sets key to the string s unless s is NULL. */
static bool rv_opt(json_t *obj, const char *key, const char *s)
{
    return s == NULL || rv_set(obj, key, rv_str(s));
}

/* Appends a new object to arr and returns it, or NULL on OOM. */
static json_t *rv_push(json_t *arr)
{
    json_t *o = json_object();
    return json_array_append_new(arr, o) == 0 ? o : NULL;
}

static bool rv_reason(json_t *o, const dec_reason *r)
{
    bool ok = o != NULL && rv_set(o, "code", rv_str(r->code)) &&
              rv_opt(o, "set", r->set) && rv_opt(o, "action", r->action) &&
              rv_opt(o, "resource", r->resource) &&
              rv_opt(o, "agent", r->agent) &&
              rv_opt(o, "argument", r->argument);
    if (ok && r->rule_file != NULL)
        ok = rv_set(o, "rule", rv_rule(r->rule_file, r->rule_line));
    return ok && rv_opt(o, "detail", r->detail);
}

json_t *trine_decision_result(const trine_decision *d)
{
    if (d == NULL)
        return NULL;
    json_t *v = json_object();
    bool ok =
        v != NULL && rv_set(v, "decision", rv_str(d->kind)) &&
        rv_set(v, "reason", rv_str(d->reason)) &&
        rv_set(v, "policy_revision", rv_str(trine_policy_revision(d->policy)));
    if (ok && d->prompt != NULL) {
        json_t *c = json_object();
        ok = rv_set(v, "consent", c) &&
             rv_set(c, "mode",
                    rv_str(trine_consent_mode_name(d->consent_mode))) &&
             rv_set(c, "prompt", rv_strn(d->prompt, d->prompt_len));
    }
    json_t *rs = ok ? json_array() : NULL; /* set_new steals it */
    ok = ok && rv_set(v, "reasons", rs);
    for (size_t i = 0; ok && i < d->nreasons; i++)
        ok = rv_reason(rv_push(rs), &d->reasons[i]);
    json_t *ms = ok ? json_array() : NULL; /* set_new steals it */
    ok = ok && rv_set(v, "matched", ms);
    for (size_t i = 0; ok && i < d->nmatched; i++) {
        const dec_match *m = &d->matched[i];
        json_t *o = rv_push(ms);
        ok = o != NULL && rv_set(o, "set", rv_str(m->set)) &&
             rv_opt(o, "agent", m->agent) &&
             rv_set(o, "rule", rv_rule(m->file, m->line));
    }
    if (ok && d->has_required) {
        json_t *req = json_array();
        ok = rv_set(v, "required_scopes", req);
        for (size_t i = 0; ok && i < d->nrequired; i++)
            ok = json_array_append_new(req, rv_str(d->required[i])) == 0;
    }
    ok = ok && rv_opt(v, "www_authenticate", d->www_auth);
    if (!ok) {
        json_decref(v);
        return NULL;
    }
    return v;
}
