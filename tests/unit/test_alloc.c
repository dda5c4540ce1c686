/*
 * test_alloc.c - the library when memory runs out.
 *
 * This program is linked with --wrap for malloc, calloc, realloc, strdup and
 * strndup, and for the PCRE2 and OpenSSL calls the library makes (see
 * tests/CMakeLists.txt); jansson's allocator is routed to the same counter.
 * So every allocation the library's own code asks for, directly or through
 * those libraries' entry points, passes through one counter that can be
 * told to fail the Nth one.
 *
 * For N = 1, 2, ... each operation runs with its Nth allocation failing
 * (then, in a second pass, with the Nth and every later one failing) until
 * it runs without reaching N. Every run must either report the failure the
 * way its API says (TRINE_ENOMEM, an error with diagnostics, NULL) or
 * succeed with exactly the output of a run without failures, and a run
 * without failures right after must succeed again: a failure must leave no
 * state behind. Leaks are LeakSanitizer's to find in the sanitizer build.
 *
 * What the wrappers cannot reach: allocations inside libc (opendir, qsort),
 * inside PCRE2, OpenSSL and jansson beyond their entry points (an entry
 * point failing stands for any failure inside it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/util.h"
#include "trine.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
#include <execinfo.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- The counter ------------------------------------------------------- */

typedef enum fail_mode {
    FAIL_ONE, /* only the Nth allocation fails */
    FAIL_FROM /* the Nth and every later one fail */
} fail_mode;

static struct {
    bool armed;
    fail_mode mode;
    long fail_at; /* 1-based; 0 never */
    long count;
    bool injected; /* a failure was handed out in this run */
} alloc;

/* TRINE_ALLOC_TRACE=N prints the call stack of every allocation numbered N
 * (in every run), to find where a failure came from. */
static long alloc_trace;

static void alloc_print_stack(void)
{
    void *frames[32];
    int n = backtrace(frames, 32);
    fprintf(stderr, "allocation %ld (failing %ld):\n", alloc.count,
            alloc.fail_at);
    backtrace_symbols_fd(frames, n, 2);
}

/* Counts one allocation; true when it must fail. */
static bool alloc_fails(void)
{
    if (!alloc.armed)
        return false;
    alloc.count++;
    if (alloc.count == alloc_trace) {
        alloc.armed = false; /* backtrace may allocate */
        alloc_print_stack();
        alloc.armed = true;
    }
    if (alloc.fail_at <= 0)
        return false;
    bool fail = alloc.mode == FAIL_ONE ? alloc.count == alloc.fail_at
                                       : alloc.count >= alloc.fail_at;
    alloc.injected |= fail;
    return fail;
}

/* Starts counting for one run of an operation's library calls. */
static void alloc_begin(void)
{
    alloc.count = 0;
    alloc.injected = false;
    alloc.armed = true;
}

static void alloc_end(void)
{
    alloc.armed = false;
}

/* The wrapped functions and the real ones behind them. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return alloc_fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return alloc_fails() ? NULL : __real_strndup(s, n);
}

/* jansson allocates through these once main has set them. */
static void *json_counted_malloc(size_t n)
{
    return __wrap_malloc(n);
}

static void json_counted_free(void *p)
{
    free(p);
}

/* PCRE2: compiling, match contexts and data, matching, JIT. */
pcre2_code *__real_pcre2_compile_8(PCRE2_SPTR, PCRE2_SIZE, uint32_t, int *,
                                   PCRE2_SIZE *, pcre2_compile_context *);
pcre2_code *__wrap_pcre2_compile_8(PCRE2_SPTR, PCRE2_SIZE, uint32_t, int *,
                                   PCRE2_SIZE *, pcre2_compile_context *);
pcre2_match_data *__real_pcre2_match_data_create_8(uint32_t,
                                                   pcre2_general_context *);
pcre2_match_data *__wrap_pcre2_match_data_create_8(uint32_t,
                                                   pcre2_general_context *);
pcre2_match_context *
__real_pcre2_match_context_create_8(pcre2_general_context *);
pcre2_match_context *
__wrap_pcre2_match_context_create_8(pcre2_general_context *);
int __real_pcre2_match_8(const pcre2_code *, PCRE2_SPTR, PCRE2_SIZE, PCRE2_SIZE,
                         uint32_t, pcre2_match_data *, pcre2_match_context *);
int __wrap_pcre2_match_8(const pcre2_code *, PCRE2_SPTR, PCRE2_SIZE, PCRE2_SIZE,
                         uint32_t, pcre2_match_data *, pcre2_match_context *);
int __real_pcre2_jit_compile_8(pcre2_code *, uint32_t);
int __wrap_pcre2_jit_compile_8(pcre2_code *, uint32_t);

pcre2_code *__wrap_pcre2_compile_8(PCRE2_SPTR pat, PCRE2_SIZE len,
                                   uint32_t opts, int *err, PCRE2_SIZE *off,
                                   pcre2_compile_context *cc)
{
    if (alloc_fails()) {
        *err = PCRE2_ERROR_HEAP_FAILED;
        *off = 0;
        return NULL;
    }
    return __real_pcre2_compile_8(pat, len, opts, err, off, cc);
}

pcre2_match_data *__wrap_pcre2_match_data_create_8(uint32_t n,
                                                   pcre2_general_context *g)
{
    return alloc_fails() ? NULL : __real_pcre2_match_data_create_8(n, g);
}

pcre2_match_context *
__wrap_pcre2_match_context_create_8(pcre2_general_context *g)
{
    return alloc_fails() ? NULL : __real_pcre2_match_context_create_8(g);
}

int __wrap_pcre2_match_8(const pcre2_code *re, PCRE2_SPTR s, PCRE2_SIZE len,
                         PCRE2_SIZE start, uint32_t opts, pcre2_match_data *md,
                         pcre2_match_context *mc)
{
    if (alloc_fails())
        return PCRE2_ERROR_NOMEMORY;
    return __real_pcre2_match_8(re, s, len, start, opts, md, mc);
}

int __wrap_pcre2_jit_compile_8(pcre2_code *re, uint32_t opts)
{
    if (alloc_fails())
        return PCRE2_ERROR_NOMEMORY;
    return __real_pcre2_jit_compile_8(re, opts);
}

/* OpenSSL: the digest calls of the revision and the argument hash. */
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);
int __real_EVP_DigestInit_ex(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
int __wrap_EVP_DigestInit_ex(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
int __real_EVP_Digest(const void *, size_t, unsigned char *, unsigned int *,
                      const EVP_MD *, ENGINE *);
int __wrap_EVP_Digest(const void *, size_t, unsigned char *, unsigned int *,
                      const EVP_MD *, ENGINE *);
EVP_MD *__real_EVP_MD_fetch(OSSL_LIB_CTX *, const char *, const char *);
EVP_MD *__wrap_EVP_MD_fetch(OSSL_LIB_CTX *, const char *, const char *);
unsigned char *__real_SHA256(const unsigned char *, size_t, unsigned char *);
unsigned char *__wrap_SHA256(const unsigned char *, size_t, unsigned char *);

EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void)
{
    return alloc_fails() ? NULL : __real_EVP_MD_CTX_new();
}

int __wrap_EVP_DigestInit_ex(EVP_MD_CTX *c, const EVP_MD *t, ENGINE *e)
{
    return alloc_fails() ? 0 : __real_EVP_DigestInit_ex(c, t, e);
}

int __wrap_EVP_Digest(const void *d, size_t n, unsigned char *md,
                      unsigned int *len, const EVP_MD *t, ENGINE *e)
{
    return alloc_fails() ? 0 : __real_EVP_Digest(d, n, md, len, t, e);
}

EVP_MD *__wrap_EVP_MD_fetch(OSSL_LIB_CTX *c, const char *a, const char *p)
{
    return alloc_fails() ? NULL : __real_EVP_MD_fetch(c, a, p);
}

unsigned char *__wrap_SHA256(const unsigned char *d, size_t n,
                             unsigned char *md)
{
    return alloc_fails() ? NULL : __real_SHA256(d, n, md);
}

/* ---- Running an operation to exhaustion -------------------------------- */

/* One operation: runs its library calls between alloc_begin and alloc_end,
 * checks that a failure was reported the way the API says (failing the
 * test otherwise), and returns true with *out (malloc'd, built after
 * alloc_end) on success, or false on a reported failure. */
typedef bool (*op_fn)(const void *arg, char **out);

static unsigned long total_runs;

static void exhaust_mode(const char *what, op_fn op, const void *arg,
                         const char *base, fail_mode mode)
{
    for (long n = 1;; n++) {
        alloc.mode = mode;
        alloc.fail_at = n;
        char *out = NULL;
        bool ok = op(arg, &out);
        bool injected = alloc.injected;
        alloc.fail_at = 0;
        total_runs++;
        if (ok && strcmp(out, base) != 0) {
            fprintf(stderr, "--- want ---\n%s\n--- got ---\n%s\n", base, out);
            fail_msg("%s: allocation %ld failed (%s) and the operation "
                     "succeeded with different output",
                     what, n, mode == FAIL_ONE ? "alone" : "and all later");
        }
        free(out);
        if (!ok && !injected)
            fail_msg("%s: failed with no allocation failing", what);
        if (!injected)
            return; /* the operation makes fewer than n allocations */
        /* Nothing may stick: the same operation must now succeed. */
        char *again = NULL;
        if (!op(arg, &again))
            fail_msg("%s: fails without failing allocations after "
                     "allocation %ld failed (%s)",
                     what, n, mode == FAIL_ONE ? "alone" : "and all later");
        if (strcmp(again, base) != 0) {
            fprintf(stderr, "--- want ---\n%s\n--- got ---\n%s\n", base, again);
            fail_msg("%s: output changed after allocation %ld failed", what, n);
        }
        free(again);
    }
}

/* Runs op with no failure, then to exhaustion in both modes. base, when
 * given, receives the output of the run without failures. */
static void exhaust(const char *what, op_fn op, const void *arg, char **base)
{
    alloc.fail_at = 0;
    char *b = NULL;
    if (!op(arg, &b))
        fail_msg("%s: fails with no allocation failing", what);
    exhaust_mode(what, op, arg, b, FAIL_ONE);
    exhaust_mode(what, op, arg, b, FAIL_FROM);
    if (base != NULL)
        *base = b;
    else
        free(b);
}

/* ---- The policy examples ----------------------------------------------- */

#define MAX_EXAMPLES 16
#define MAX_FILES 8

typedef struct example {
    char name[64];
    char dir[512];
    size_t nsrc;
    trine_source src[MAX_FILES];
    char files[MAX_FILES][128];
    json_t *cases; /* the *.tests.json cases, all files together */
    trine_policy *policy;
} example;

static example examples[MAX_EXAMPLES];
static size_t nexamples;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    strbuf b;
    sb_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_putn(&b, chunk, n);
    fclose(f);
    assert_false(b.oom);
    *len = b.len;
    return sb_take(&b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Reads one example directory: its sources, sorted by name, and the cases
 * of its test files. */
static void read_example(example *ex, const char *root, const char *name)
{
    snprintf(ex->name, sizeof ex->name, "%s", name);
    snprintf(ex->dir, sizeof ex->dir, "%s/%s", root, name);
    DIR *d = opendir(ex->dir);
    assert_non_null(d);
    char tests[MAX_FILES][128];
    size_t ntests = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (ends_with(e->d_name, ".trine") && ex->nsrc < MAX_FILES)
            snprintf(ex->files[ex->nsrc++], 128, "%.127s", e->d_name);
        else if (ends_with(e->d_name, ".tests.json") && ntests < MAX_FILES)
            snprintf(tests[ntests++], 128, "%.127s", e->d_name);
    }
    closedir(d);
    qsort(ex->files, ex->nsrc, 128, cmp_str);
    qsort(tests, ntests, 128, cmp_str);
    char path[1024];
    for (size_t i = 0; i < ex->nsrc; i++) {
        snprintf(path, sizeof path, "%s/%s", ex->dir, ex->files[i]);
        ex->src[i].name = ex->files[i];
        ex->src[i].data = read_file(path, &ex->src[i].len);
    }
    ex->cases = json_array();
    for (size_t i = 0; i < ntests; i++) {
        snprintf(path, sizeof path, "%s/%s", ex->dir, tests[i]);
        json_error_t err;
        json_t *a = json_load_file(path, 0, &err);
        if (a == NULL)
            fail_msg("%s: %s", path, err.text);
        json_array_extend(ex->cases, a);
        json_decref(a);
    }
    trine_diag *diag = trine_diag_new();
    assert_int_equal(
        trine_policy_load_sources(ex->src, ex->nsrc, diag, &ex->policy), 0);
    trine_diag_free(diag);
}

static int setup(void **state)
{
    (void)state;
    const char *root = TRINE_SOURCE_DIR "/policy-examples";
    DIR *d = opendir(root);
    if (d == NULL)
        return -1;
    char names[MAX_EXAMPLES][64];
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nexamples < MAX_EXAMPLES) {
        if (e->d_name[0] != '.' && e->d_type == DT_DIR)
            snprintf(names[nexamples++], 64, "%.63s", e->d_name);
    }
    closedir(d);
    qsort(names, nexamples, 64, cmp_str);
    for (size_t i = 0; i < nexamples; i++)
        read_example(&examples[i], root, names[i]);
    return nexamples > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nexamples; i++) {
        for (size_t k = 0; k < examples[i].nsrc; k++)
            free((char *)examples[i].src[k].data);
        json_decref(examples[i].cases);
        trine_policy_release(examples[i].policy);
    }
    return 0;
}

/* ---- Loading ----------------------------------------------------------- */

/* How many of an example's cases a loaded policy is checked with, to show
 * that a policy loaded despite a failure decides like the real one. */
#define LOAD_PROBE_CASES 6

static void put_json(strbuf *b, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_non_null(t);
    sb_puts(b, t);
    sb_putc(b, '\n');
    free(t);
}

/* A consent store seeded with a case's "consents"; NULL ctx: none. */
static int seeded_lookup(void *ctx, const trine_consent_query *q,
                         int64_t *grant_id)
{
    const json_t *cs = ctx;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        const json_t *c = json_array_get(cs, i);
        const char *f[] = {"user", "agent", "server", "tool", "mode"};
        const char *v[] = {q->user, q->agent, q->server, q->tool,
                           trine_consent_mode_name(q->mode)};
        bool same = true;
        for (size_t k = 0; k < 5 && same; k++) {
            const char *s = json_string_value(json_object_get(c, f[k]));
            same = s != NULL && v[k] != NULL && strcmp(s, v[k]) == 0;
        }
        const char *sess = json_string_value(json_object_get(c, "session"));
        if (same && q->mode == TRINE_CONSENT_SESSION)
            same = sess != NULL && q->session != NULL &&
                   strcmp(sess, q->session) == 0;
        if (same) {
            *grant_id = 100 + (int64_t)i;
            return 1;
        }
    }
    return 0;
}

/* A consent store that cannot be read. */
static int broken_lookup(void *ctx, const trine_consent_query *q,
                         int64_t *grant_id)
{
    (void)ctx;
    (void)q;
    (void)grant_id;
    return TRINE_ECONSENT;
}

/* Writes what a decision says, every getter included. */
static void put_decision(strbuf *b, const trine_decision *d, const json_t *res,
                         const char *args, const char *chain, const char *hash)
{
    char buf[16384];
    size_t n = trine_decision_write(d, 42, buf, sizeof buf);
    assert_true(n < sizeof buf);
    sb_printf(b, "%s\n", buf);
    put_json(b, res);
    sb_printf(b, "%s %s %s %s %s\n", trine_decision_kind(d),
              trine_decision_reason(d), args ? args : "-", chain ? chain : "-",
              hash ? hash : "-");
    sb_printf(b, "%s %s %s %s %s %s %" PRId64 " %" PRId64 "\n",
              trine_decision_server(d), trine_decision_tool(d),
              trine_decision_user(d) ? trine_decision_user(d) : "-",
              trine_decision_agent(d) ? trine_decision_agent(d) : "-",
              trine_decision_session(d) ? trine_decision_session(d) : "-",
              trine_consent_mode_name(trine_decision_consent_mode(d)),
              trine_decision_consent_duration_s(d),
              trine_decision_consent_grant(d));
}

static trine_check_opts case_opts(const json_t *c, bool broken)
{
    trine_check_opts o = {0, seeded_lookup, NULL};
    o.now_ms = (int64_t)json_integer_value(json_object_get(c, "now")) * 1000;
    o.consent_ctx = json_object_get(c, "consents");
    if (broken)
        o.consent = broken_lookup;
    return o;
}

/* Checks a case with no failing allocation and appends what it decided. */
static void put_case(strbuf *b, const trine_policy *p, const json_t *c)
{
    trine_check_opts o = case_opts(c, false);
    trine_decision *d = NULL;
    assert_int_equal(
        trine_check(p, json_object_get(c, "request"), &o, &d, NULL, 0), 0);
    json_t *res = trine_decision_result(d);
    put_decision(b, d, res, trine_decision_arguments(d),
                 trine_decision_chain(d), trine_decision_args_hash(d));
    json_decref(res);
    trine_decision_free(d);
}

/* What a loaded policy says about itself and decides. */
static char *describe_policy(const example *ex, const trine_policy *p,
                             json_t *status, json_t *tools)
{
    strbuf b;
    sb_init(&b);
    json_object_del(status, "loaded_at");
    put_json(&b, status);
    put_json(&b, tools);
    for (size_t i = 0; i < json_array_size(ex->cases) && i < LOAD_PROBE_CASES;
         i++)
        put_case(&b, p, json_array_get(ex->cases, i));
    assert_false(b.oom);
    return sb_take(&b);
}

/* The server of an example's first case, for trine_policy_tools. */
static const char *first_server(const example *ex)
{
    const json_t *c = json_array_get(ex->cases, 0);
    const char *s = json_string_value(
        json_object_get(json_object_get(c, "request"), "server"));
    return s != NULL ? s : "none";
}

/* A failed load must say so with TRINE_ENOMEM and leave *out NULL. */
static bool finish_load(const example *ex, int rc, trine_policy *p,
                        json_t *status, json_t *tools, trine_diag *diag,
                        char **out)
{
    if (rc != 0) {
        if (rc != TRINE_ENOMEM || p != NULL) {
            trine_diag_print(diag, stderr);
            fail_msg("%s: a load that ran out of memory returned %s", ex->name,
                     trine_err_name(rc));
        }
        trine_diag_free(diag);
        return false;
    }
    trine_diag_free(diag);
    bool ok = status != NULL && tools != NULL;
    if (ok)
        *out = describe_policy(ex, p, status, tools);
    json_decref(status);
    json_decref(tools);
    trine_policy_release(p);
    return ok;
}

static bool op_load_sources(const void *arg, char **out)
{
    const example *ex = arg;
    trine_diag *diag = trine_diag_new();
    assert_non_null(diag);
    trine_policy *p = NULL;
    json_t *status = NULL, *tools = NULL;
    alloc_begin();
    int rc = trine_policy_load_sources(ex->src, ex->nsrc, diag, &p);
    if (rc == 0) {
        status = trine_policy_status(p);
        tools = trine_policy_tools(p, first_server(ex));
    }
    alloc_end();
    return finish_load(ex, rc, p, status, tools, diag, out);
}

static bool op_load_dir(const void *arg, char **out)
{
    const example *ex = arg;
    trine_diag *diag = trine_diag_new();
    assert_non_null(diag);
    trine_policy *p = NULL;
    json_t *status = NULL, *tools = NULL;
    alloc_begin();
    int rc = trine_policy_load_dir(ex->dir, diag, &p);
    if (rc == 0) {
        status = trine_policy_status(p);
        tools = trine_policy_tools(p, first_server(ex));
    }
    alloc_end();
    return finish_load(ex, rc, p, status, tools, diag, out);
}

static void test_load(void **state)
{
    (void)state;
    for (size_t i = 0; i < nexamples; i++) {
        char what[128];
        snprintf(what, sizeof what, "load %.63s from sources",
                 examples[i].name);
        exhaust(what, op_load_sources, &examples[i], NULL);
        snprintf(what, sizeof what, "load %.63s from its directory",
                 examples[i].name);
        exhaust(what, op_load_dir, &examples[i], NULL);
    }
}

/* ---- Checking ---------------------------------------------------------- */

typedef struct check_arg {
    const example *ex;
    const json_t *c; /* the case */
    bool broken;     /* the consent store cannot be read */
} check_arg;

static bool op_check(const void *arg, char **out)
{
    const check_arg *a = arg;
    trine_check_opts o = case_opts(a->c, a->broken);
    trine_decision *d = (trine_decision *)1;
    char err[128];
    json_t *res = NULL;
    const char *args = NULL, *chain = NULL, *hash = NULL;
    alloc_begin();
    int rc = trine_check(a->ex->policy, json_object_get(a->c, "request"), &o,
                         &d, err, sizeof err);
    if (rc == 0) {
        res = trine_decision_result(d);
        args = trine_decision_arguments(d);
        chain = trine_decision_chain(d);
        hash = trine_decision_args_hash(d);
    }
    bool injected = alloc.injected;
    alloc_end();
    if (rc != 0) {
        if (rc != TRINE_ENOMEM || d != NULL ||
            strcmp(err, "out of memory") != 0)
            fail_msg("%s: a check that ran out of memory returned %s (%s)",
                     a->ex->name, trine_err_name(rc), err);
        return false;
    }
    /* A getter answers NULL when it cannot allocate; a result is only
     * complete when every one that should answer did. */
    bool ok = res != NULL && hash != NULL &&
              !(injected && (args == NULL || chain == NULL));
    if (ok) {
        strbuf b;
        sb_init(&b);
        put_decision(&b, d, res, args, chain, hash);
        assert_false(b.oom);
        *out = sb_take(&b);
    } else if (!injected) {
        fail_msg("%s: a getter failed with no allocation failing", a->ex->name);
    }
    json_decref(res);
    trine_decision_free(d);
    return ok;
}

static const char *const all_reasons[] = {"allow",
                                          "token_expired",
                                          "token_invalid",
                                          "audience_mismatch",
                                          "unknown_tool",
                                          "argument_invalid",
                                          "forbidden",
                                          "user_denied",
                                          "agent_denied",
                                          "scope_missing",
                                          "consent_required",
                                          "audit_unavailable"};

static void test_check(void **state)
{
    (void)state;
    bool seen[sizeof all_reasons / sizeof all_reasons[0]] = {false};
    for (size_t i = 0; i < nexamples; i++) {
        const example *ex = &examples[i];
        for (size_t k = 0; k < json_array_size(ex->cases); k++) {
            check_arg a = {ex, json_array_get(ex->cases, k), false};
            char what[256];
            snprintf(what, sizeof what, "check %.63s case %zu (%.100s)",
                     ex->name, k,
                     json_string_value(json_object_get(a.c, "name")));
            char *base = NULL;
            exhaust(what, op_check, &a, &base);
            bool consent = strstr(base, "\"consent_required\"") != NULL;
            for (size_t r = 0; r < sizeof all_reasons / sizeof all_reasons[0];
                 r++) {
                char key[64];
                snprintf(key, sizeof key, "\"reason\":\"%s\"", all_reasons[r]);
                seen[r] |= strstr(base, key) != NULL;
            }
            free(base);
            if (!consent)
                continue;
            /* The consent store failing: audit_unavailable. */
            a.broken = true;
            strcat(what, " with a broken consent store");
            exhaust(what, op_check, &a, &base);
            seen[11] |= strstr(base, "\"audit_unavailable\"") != NULL;
            free(base);
        }
    }
    for (size_t r = 0; r < sizeof all_reasons / sizeof all_reasons[0]; r++) {
        if (!seen[r])
            fail_msg("no case decides %s", all_reasons[r]);
    }
}

/* ---- Formatting -------------------------------------------------------- */

static bool op_format(const void *arg, char **out)
{
    const trine_source *src = arg;
    trine_diag *diag = trine_diag_new();
    assert_non_null(diag);
    char *text = (char *)1;
    size_t len = 0;
    alloc_begin();
    int rc = trine_format(src, diag, &text, &len);
    alloc_end();
    trine_diag_free(diag);
    if (rc != 0) {
        if (rc != TRINE_ENOMEM || text != NULL)
            fail_msg("%s: formatting that ran out of memory returned %s",
                     src->name, trine_err_name(rc));
        return false;
    }
    assert_int_equal(strlen(text), len);
    *out = text; /* trine_free is free */
    return true;
}

/* A policy with a warning of every kind lint knows. */
static const char lint_src[] =
    "scope \"read\" { allow x.read on \"r:*\" }\n"
    "role unused { allow x.read on \"r:*\" }\n"
    "role used {\n"
    "  deny x.* on \"*\"\n"
    "  allow x.read on \"r:*\"\n"
    "  deny x.read on /r:.*/\n"
    "  allow x.read on /r:a.*/\n"
    "}\n"
    "user * { roles used }\n"
    "agent * {\n"
    "  deny * on \"*\"\n"
    "  allow x.read on \"r:?\"\n"
    "}\n"
    "agent \"a\" { deny x.read on \"r:*\"\n allow x.read on \"r:a\" }\n"
    "tool \"s\" \"t\" { needs x.write on \"r:{id}\" }\n"
    "tool \"s\" \"u\" { needs x.read on \"r:{id}\" }\n"
    "tool \"other\" * { needs x.read on \"r:{id...}\" }\n";

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < nexamples; i++) {
        for (size_t k = 0; k < examples[i].nsrc; k++) {
            char what[256];
            snprintf(what, sizeof what, "format %.63s/%.127s", examples[i].name,
                     examples[i].src[k].name);
            exhaust(what, op_format, &examples[i].src[k], NULL);
        }
    }
    trine_source s = {"lint.trine", lint_src, sizeof lint_src - 1};
    exhaust("format lint.trine", op_format, &s, NULL);
}

/* ---- Linting ----------------------------------------------------------- */

static bool op_lint(const void *arg, char **out)
{
    const trine_policy *p = arg;
    trine_diag *diag = trine_diag_new();
    assert_non_null(diag);
    alloc_begin();
    int n = trine_policy_lint(p, diag);
    alloc_end();
    if (n < 0) {
        if (n != TRINE_ENOMEM)
            fail_msg("lint that ran out of memory returned %s",
                     trine_err_name(n));
        trine_diag_free(diag);
        return false;
    }
    strbuf b;
    sb_init(&b);
    sb_printf(&b, "%d warnings\n", n);
    for (size_t i = 0; i < trine_diag_count(diag); i++) {
        const trine_diag_item *it = trine_diag_at(diag, i);
        sb_printf(&b, "%s:%u:%u: %d %s\n", it->file, it->line, it->col,
                  (int)it->level, it->message);
    }
    trine_diag_free(diag);
    assert_false(b.oom);
    *out = sb_take(&b);
    return true;
}

static void test_lint(void **state)
{
    (void)state;
    trine_source s = {"lint.trine", lint_src, sizeof lint_src - 1};
    trine_policy *p = NULL;
    assert_int_equal(trine_policy_load_sources(&s, 1, NULL, &p), 0);
    char *base = NULL;
    exhaust("lint lint.trine", op_lint, p, &base);
    /* Every kind of warning is there to fail. */
    assert_non_null(strstr(base, "bound to no user or group"));
    assert_non_null(strstr(base, "no server block"));
    printf("lint.trine: %.*s", (int)strcspn(base, "\n") + 1, base);
    free(base);
    trine_policy_release(p);
    for (size_t i = 0; i < nexamples; i++) {
        char what[128];
        snprintf(what, sizeof what, "lint %.63s", examples[i].name);
        exhaust(what, op_lint, examples[i].policy, NULL);
    }
}

/* ---- Canonical JSON ---------------------------------------------------- */

static bool op_canonical(const void *arg, char **out)
{
    const json_t *v = arg;
    char *text = (char *)1;
    size_t len = 0;
    alloc_begin();
    int rc = trine_json_canonical(v, &text, &len);
    alloc_end();
    if (rc != 0) {
        if (rc != TRINE_ENOMEM || text != NULL)
            fail_msg("canonical JSON that ran out of memory returned %s",
                     trine_err_name(rc));
        return false;
    }
    assert_int_equal(strlen(text), len);
    *out = text;
    return true;
}

static void test_canonical(void **state)
{
    (void)state;
    /* Many keys (past the inline key array), reals, escapes, nesting. */
    json_t *big = json_object();
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%02d", 39 - i);
        json_object_set_new(big, k, json_real(i + 0.25));
    }
    json_object_set_new(big, "s", json_stringn("\xc3\xa9\x00\x01\"\\/", 7));
    json_t *deep = json_array();
    json_t *at = deep;
    for (int i = 0; i < 40; i++) {
        json_t *next = json_object();
        json_array_append_new(at, json_integer(i));
        json_t *arr = json_array();
        json_object_set_new(next, "a", arr);
        json_array_append_new(at, next);
        at = arr;
    }
    json_object_set_new(big, "deep", deep);
    exhaust("canonical JSON of a big value", op_canonical, big, NULL);
    json_decref(big);
    for (size_t i = 0; i < nexamples; i++) {
        for (size_t k = 0; k < json_array_size(examples[i].cases); k++) {
            exhaust("canonical JSON of a request", op_canonical,
                    json_object_get(json_array_get(examples[i].cases, k),
                                    "request"),
                    NULL);
        }
    }
    printf("%lu runs with a failing allocation so far\n", total_runs);
}

/* ---- A cold start ------------------------------------------------------ */

/* Policy with a regex, checked with an `always` consent (the argument
 * hash), so the one-time set-up of regex matching and of SHA-256 is on
 * the path. */
static const char cold_src[] = "scope \"s\" { allow a.b on /r:[a-z]+/ }\n"
                               "role r { allow a.b on \"r:*\" }\n"
                               "user * { roles r }\n"
                               "agent * { allow a.b on /r:.*/ }\n"
                               "tool \"srv\" \"t\" {\n"
                               "  needs a.b on \"r:{x}\"\n"
                               "  arg x matches /[a-z]+/\n"
                               "  consent always\n"
                               "}\n";

static bool op_cold(const void *arg, char **out)
{
    (void)arg;
    trine_source s = {"cold.trine", cold_src, sizeof cold_src - 1};
    json_t *req =
        json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:s,s:s}}", "server", "srv", "tool",
                  "t", "arguments", "x", "abc", "token", "sub", "u",
                  "client_id", "c", "scope", "s");
    assert_non_null(req);
    trine_check_opts o = {0, seeded_lookup, NULL};
    trine_policy *p = NULL;
    trine_decision *d = NULL;
    const char *hash = NULL;
    alloc_begin();
    int rc = trine_policy_load_sources(&s, 1, NULL, &p);
    if (rc == 0)
        rc = trine_check(p, req, &o, &d, NULL, 0);
    if (rc == 0)
        hash = trine_decision_args_hash(d);
    alloc_end();
    json_decref(req);
    bool ok = rc == 0 && hash != NULL;
    if (ok) {
        strbuf b;
        sb_init(&b);
        sb_printf(&b, "%s %s %s", trine_decision_kind(d),
                  trine_decision_reason(d), hash);
        *out = sb_take(&b);
    }
    trine_decision_free(d);
    trine_policy_release(p);
    return ok;
}

/* One-time set-up that fails must be tried again later, not remembered:
 * a fresh process (a child, forked before anything ran) fails its Nth
 * allocation, and must then succeed with the same answer. */
static void test_cold_start(void **state)
{
    (void)state;
    char *want = NULL;
    long n;
    for (n = 1; n < 1000; n++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            alloc.mode = FAIL_ONE;
            alloc.fail_at = n;
            char *out = NULL;
            bool ok = op_cold(NULL, &out);
            bool injected = alloc.injected;
            alloc.fail_at = 0;
            free(out);
            out = NULL;
            if (!op_cold(NULL, &out))
                _exit(3);
            ssize_t w = write(fds[1], out, strlen(out));
            _exit(w < 0 ? 4 : !injected ? 0 : ok ? 1 : 2);
        }
        close(fds[1]);
        char got[256] = "";
        ssize_t r = read(fds[0], got, sizeof got - 1);
        close(fds[0]);
        got[r > 0 ? r : 0] = '\0';
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 3)
            fail_msg("a fresh process still fails after its allocation %ld "
                     "failed once",
                     n);
        assert_true(WEXITSTATUS(st) <= 2);
        if (want == NULL)
            want = strdup(got);
        assert_string_equal(got, want);
        if (WEXITSTATUS(st) == 0)
            break; /* the child got through without reaching n */
    }
    printf("cold start: %ld allocations\n", n - 1);
    free(want);
}

int main(void)
{
    json_set_alloc_funcs(json_counted_malloc, json_counted_free);
    const char *trace = getenv("TRINE_ALLOC_TRACE");
    if (trace != NULL)
        alloc_trace = strtol(trace, NULL, 10);
    /* The cold start runs first, before anything has set anything up. */
    const struct CMUnitTest cold[] = {cmocka_unit_test(test_cold_start)};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),      cmocka_unit_test(test_check),
        cmocka_unit_test(test_format),    cmocka_unit_test(test_lint),
        cmocka_unit_test(test_canonical),
    };
    int rc = cmocka_run_group_tests_name("cold", cold, NULL, NULL);
    rc |= cmocka_run_group_tests_name("alloc", tests, setup, teardown);
    return rc;
}
