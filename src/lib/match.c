/*
 * match.c - resource patterns (globs and full-match regexes), rule actions,
 * and the lookup of a block's action index (block_match).
 *
 * A compiled policy is shared read-only by every checking thread, so
 * nothing here writes to a pattern or a block. PCRE2 needs two things that
 * are not shared: the match data, which is per thread (cached in thread-local
 * storage and freed when the thread exits), and the match context, which is
 * created once for the process and only read afterwards. Creating it is
 * retried until it succeeds: an allocation that failed once must not leave
 * the process unable to use regexes for good.
 */
#include "lib/policy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* A hostile subject must not hang a checking thread: these bound the work
 * of one regex match (the interpreter honours all three; JIT code honours
 * the match limit and its own fixed stack). */
#define MATCH_LIMIT 100000
#define MATCH_DEPTH_LIMIT 10000
#define MATCH_HEAP_LIMIT_KIB 8192

static pthread_once_t match_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t match_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(pcre2_match_context *) match_ctx;
static pthread_key_t match_key;
static bool match_key_ok;
static _Thread_local pcre2_match_data *match_tl_data;
static _Thread_local bool match_nomem;

bool match_take_nomem(void)
{
    bool v = match_nomem;
    match_nomem = false;
    return v;
}

/* Frees a thread's cached match data when the thread exits. */
static void match_data_destroy(void *md)
{
    pcre2_match_data_free(md);
    match_tl_data = NULL;
}

static void match_init(void)
{
    match_key_ok = pthread_key_create(&match_key, match_data_destroy) == 0;
}

/* Returns the shared match context, creating it on first use; NULL only
 * when it could not be allocated (the next call tries again). */
static const pcre2_match_context *match_context(void)
{
    pcre2_match_context *mc =
        atomic_load_explicit(&match_ctx, memory_order_acquire);
    if (mc != NULL)
        return mc;
    pthread_mutex_lock(&match_ctx_lock);
    mc = atomic_load_explicit(&match_ctx, memory_order_relaxed);
    if (mc == NULL) {
        mc = pcre2_match_context_create(NULL);
        if (mc != NULL) {
            pcre2_set_match_limit(mc, MATCH_LIMIT);
            pcre2_set_depth_limit(mc, MATCH_DEPTH_LIMIT);
            pcre2_set_heap_limit(mc, MATCH_HEAP_LIMIT_KIB);
            atomic_store_explicit(&match_ctx, mc, memory_order_release);
        }
    }
    pthread_mutex_unlock(&match_ctx_lock);
    return mc;
}

/* Returns this thread's match data (one ovector pair: only whether the whole
 * subject matched is of interest), or NULL on allocation failure. */
static pcre2_match_data *match_data(void)
{
    if (match_tl_data != NULL)
        return match_tl_data;
    pthread_once(&match_once, match_init);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return NULL;
    /* Without the key the data would outlive its thread; it is still
     * correct to use it, it is only not freed at thread exit. */
    if (match_key_ok)
        (void)pthread_setspecific(match_key, md);
    match_tl_data = md;
    return md;
}

pcre2_code *match_compile_regex(const char *src, size_t len, bool icase,
                                char *msg, size_t msglen, size_t *offset)
{
    if (msglen > 0)
        msg[0] = '\0';
    *offset = 0;
    /* The match context is needed by every later match: make sure it can
     * exist before accepting a regex at all. */
    if (match_context() == NULL) {
        if (msglen > 0)
            snprintf(msg, msglen, "out of memory");
        *offset = MATCH_NOMEM;
        return NULL;
    }
    uint32_t opts = PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                    PCRE2_NEVER_BACKSLASH_C;
    if (icase)
        opts |= PCRE2_CASELESS;
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)src, len, opts, &code, &off, NULL);
    if (re == NULL) {
        if (msglen > 0 &&
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, msglen) < 0 &&
            msg[0] == '\0')
            snprintf(msg, msglen, "PCRE2 error %d", code);
        /* Running out of memory says nothing about the regex. */
        *offset = code == PCRE2_ERROR_HEAP_FAILED ? MATCH_NOMEM : off;
        return NULL;
    }
    /* JIT is an optimisation: without it (not built in, or out of
     * executable memory) the interpreter gives the same answers. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* Returns the length of the code point that starts at s (at most n). */
static size_t match_cp_len(const unsigned char *s, size_t n)
{
    size_t l = 1;
    if (s[0] >= 0xf0)
        l = 4;
    else if (s[0] >= 0xe0)
        l = 3;
    else if (s[0] >= 0xc0)
        l = 2;
    return l < n ? l : n;
}

/* Glob matching, '*' any run (including '/') and '?' one code point. The
 * classic two-pointer walk: on a mismatch, return to the last star and let
 * it swallow one more code point. Only the last star matters (an earlier
 * star can absorb whatever a later one would have to give back), so the
 * cost is at most pattern length times subject length, never exponential. */
static bool match_glob(const char *pattern, size_t plen, const char *subject,
                       size_t slen)
{
    const unsigned char *p = (const unsigned char *)pattern;
    const unsigned char *s = (const unsigned char *)subject;
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0;

    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*')
                pi++;
            if (pi == plen)
                return true;
            star_p = pi;
            star_s = si;
            continue;
        }
        if (pi < plen && p[pi] == '?') {
            pi++;
            si += match_cp_len(s + si, slen - si);
            continue;
        }
        if (pi < plen && p[pi] == s[si]) {
            pi++;
            si++;
            continue;
        }
        if (star_p == SIZE_MAX)
            return false;
        star_s += match_cp_len(s + star_s, slen - star_s);
        pi = star_p;
        si = star_s;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

/* Returns 1 when p matches all of subject, 0 when it does not, and -1 when a
 * regex match could not finish (a limit was hit, or memory ran out). */
static int match_status(const cpl_pattern *p, const char *subject, size_t len)
{
    if (p->kind == PAT_GLOB) {
        if (p->literal)
            return p->len == len && memcmp(p->text, subject, len) == 0;
        return match_glob(p->text, p->len, subject, len);
    }
    const pcre2_match_context *mc = match_context();
    pcre2_match_data *md = match_data();
    if (mc == NULL || md == NULL)
        match_nomem = true;
    if (p->re == NULL || mc == NULL || md == NULL)
        return -1;
    int rc = pcre2_match(p->re, (PCRE2_SPTR)subject, len, 0, 0, md,
                         (pcre2_match_context *)mc);
    /* 0 means a match whose captures did not fit the one-pair ovector. */
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == PCRE2_ERROR_NOMEMORY)
        match_nomem = true;
    return -1;
}

bool pattern_match(const cpl_pattern *p, const char *subject, size_t len)
{
    return match_status(p, subject, len) == 1;
}

bool action_match(const cpl_action *a, const char *action, size_t alen)
{
    switch (a->kind) {
    case ACT_EXACT:
        return alen == a->len && memcmp(a->text, action, alen) == 0;
    case ACT_PREFIX:
        return alen > a->len && memcmp(a->text, action, a->len) == 0;
    case ACT_ANY:
        return true;
    }
    return false;
}

/* True when some pattern of r matches the resource. For a deny (and a
 * forbid) a regex that cannot finish counts as a match, for an allow as no
 * match: a hostile resource can only make the answer stricter. */
static bool match_rule_resource(const cpl_rule *r, const char *res, size_t rlen)
{
    for (size_t i = 0; i < r->npatterns; i++) {
        int st = match_status(&r->patterns[i], res, rlen);
        if (st == 1 || (st < 0 && r->deny))
            return true;
    }
    return false;
}

/* What one block_match call is looking for and has found so far. */
typedef struct match_search {
    const char *res;
    size_t rlen;
    bool want_allow, want_deny;
    const cpl_rule *allow, *deny;
} match_search;

/* Scans one index bucket. The rules of a block live in one array in
 * declaration order and each bucket lists them in that order, so pointer
 * order is declaration order: a rule after both current answers cannot
 * improve either, and the scan stops there. */
static void match_scan(match_search *m, const rule_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->len; i++) {
        const cpl_rule *r = l->rules[i];
        bool allow_open = m->want_allow && (m->allow == NULL || r < m->allow);
        bool deny_open = m->want_deny && (m->deny == NULL || r < m->deny);
        if (!allow_open && !deny_open)
            return;
        if (r->deny ? !deny_open : !allow_open)
            continue;
        if (!match_rule_resource(r, m->res, m->rlen))
            continue;
        if (r->deny)
            m->deny = r;
        else
            m->allow = r;
    }
}

void block_match(const cpl_block *b, const char *action, size_t alen,
                 const char *res, size_t rlen, const cpl_rule **allow,
                 const cpl_rule **deny)
{
    match_search m = {res, rlen, allow != NULL, deny != NULL, NULL, NULL};
    if (b != NULL) {
        match_scan(&m, strmap_getn(&b->exact, action, alen));
        /* Every proper prefix that ends at a dot: "a.b.c" looks up "a."
         * and "a.b.". */
        if (b->prefix.count > 0) {
            for (size_t i = 0; i + 1 < alen; i++) {
                if (action[i] == '.')
                    match_scan(&m, strmap_getn(&b->prefix, action, i + 1));
            }
        }
        match_scan(&m, &b->any);
    }
    if (allow != NULL)
        *allow = m.allow;
    if (deny != NULL)
        *deny = m.deny;
}
