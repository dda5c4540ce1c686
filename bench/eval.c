/*
 * eval.c - the cost of one evaluation.
 *
 * Measures nanoseconds per trine_check (and per trine_check followed by
 * trine_decision_write, which is what the daemon does for every request) on
 * the GitHub example policy and on generated policies of 100, 1,000 and
 * 10,000 rules, and prints a table.
 *
 * Method: a batch of calls is timed as a whole (a clock read costs about
 * as much as the thing measured), giving one ns-per-call sample per batch;
 * a run takes many batches and reports their 10th, 50th and 90th
 * percentiles; the table shows the median of each percentile over several
 * runs. The request is parsed once, outside the timing: the daemon parses
 * each request once too, and that cost belongs to the daemon benchmark.
 *
 * Targets: at most 1 us median on the example (check only), and the
 * 10,000-rule policy at most twice the 100-rule figure.
 *
 * Usage: eval [--policy DIR] [--runs N] [--batches N] [--batch N]
 */
#include "lib/util.h"
#include "trine.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef TRINE_SOURCE_DIR
#define TRINE_SOURCE_DIR "."
#endif

/* The request of DESIGN.md section 3.1. With the consent callback below
 * (which finds a grant for every query), it is allowed. */
static const char *EXAMPLE_ALLOW =
    "{\"server\":\"github\",\"tool\":\"create_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\","
    "\"title\":\"Crash on start\"},"
    "\"session\":\"mcp-session-4f2a\","
    "\"token\":{\"sub\":\"alice\",\"scope\":\"repo:read repo:write\","
    "\"client_id\":\"claude-desktop\","
    "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000,"
    "\"groups\":[\"acme-eng\"]}}";

/* The same call through an agent that may not open issues: agent_denied. */
static const char *EXAMPLE_DENY =
    "{\"server\":\"github\",\"tool\":\"create_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\","
    "\"title\":\"Crash on start\"},"
    "\"session\":\"mcp-session-4f2a\","
    "\"token\":{\"sub\":\"alice\",\"scope\":\"repo:read repo:write\","
    "\"client_id\":\"ci-bot\","
    "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000,"
    "\"groups\":[\"acme-eng\"]}}";

/* A token whose scope grants nothing the tool needs: scope_missing, with
 * the set cover and the WWW-Authenticate value computed. */
static const char *EXAMPLE_STEP_UP =
    "{\"server\":\"github\",\"tool\":\"get_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\"},"
    "\"token\":{\"sub\":\"alice\",\"scope\":\"admin\","
    "\"client_id\":\"claude-desktop\","
    "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000}}";

typedef struct options {
    const char *policy_dir;
    int runs;
    int batches;
    int batch;
} options;

typedef struct stats {
    double p10, p50, p90;
} stats;

/* One benchmark row: a policy, a parsed request, and its expected answer. */
typedef struct bench_case {
    const char *policy_name;
    const char *request_name;
    const trine_policy *policy;
    json_t *params;
    const char *expect_kind;
    const char *expect_reason;
} bench_case;

/* Finds a grant for every query, as a seeded consent store would. */
static int consent_yes(void *ctx, const trine_consent_query *q,
                       int64_t *grant_id)
{
    (void)ctx;
    (void)q;
    *grant_id = 1;
    return 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Returns the q-th quantile (0..1) of n sorted values. */
static double quantile(const double *sorted, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* Runs one batch of calls; returns its ns per call, or a negative value
 * when a call failed or gave an unexpected answer. */
static double run_batch(const bench_case *bc, const trine_check_opts *opts,
                        bool write, char *buf, size_t cap, int n)
{
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        trine_decision *d = NULL;
        char err[128];
        if (trine_check(bc->policy, bc->params, opts, &d, err, sizeof err) !=
            0) {
            fprintf(stderr, "eval: %s/%s: trine_check failed: %s\n",
                    bc->policy_name, bc->request_name, err);
            return -1;
        }
        if (write) {
            size_t len = trine_decision_write(d, 1042, buf, cap);
            if (len >= cap) {
                fprintf(stderr, "eval: result of %zu bytes too long\n", len);
                trine_decision_free(d);
                return -1;
            }
        }
        trine_decision_free(d);
    }
    return (double)(now_ns() - t0) / n;
}

/* Checks once that the case gives the answer it is meant to measure. */
static int verify_case(const bench_case *bc, const trine_check_opts *opts)
{
    trine_decision *d = NULL;
    char err[256] = "";
    int rc = trine_check(bc->policy, bc->params, opts, &d, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "eval: %s/%s: %s (%s)\n", bc->policy_name,
                bc->request_name, trine_strerror(rc), err);
        return -1;
    }
    const char *kind = trine_decision_kind(d);
    const char *reason = trine_decision_reason(d);
    bool ok = strcmp(kind, bc->expect_kind) == 0 &&
              strcmp(reason, bc->expect_reason) == 0;
    if (!ok) {
        char buf[4096];
        trine_decision_write(d, -1, buf, sizeof buf);
        fprintf(stderr, "eval: %s/%s: expected %s/%s, got %s\n",
                bc->policy_name, bc->request_name, bc->expect_kind,
                bc->expect_reason, buf);
    }
    trine_decision_free(d);
    return ok ? 0 : -1;
}

/* Measures one case: the median over runs of each run's percentiles. */
static int measure(const bench_case *bc, const options *o, bool write,
                   stats *out)
{
    trine_check_opts opts = {
        .now_ms = wall_ms(), .consent = consent_yes, .consent_ctx = NULL};
    double *samples = calloc((size_t)o->batches, sizeof *samples);
    double *p10 = calloc((size_t)o->runs, sizeof *p10);
    double *p50 = calloc((size_t)o->runs, sizeof *p50);
    double *p90 = calloc((size_t)o->runs, sizeof *p90);
    char *buf = malloc(16384);
    int rc = -1;
    if (samples == NULL || p10 == NULL || p50 == NULL || p90 == NULL ||
        buf == NULL) {
        fprintf(stderr, "eval: out of memory\n");
        goto done;
    }
    /* Warm the caches and the allocator. */
    if (run_batch(bc, &opts, write, buf, 16384, o->batch) < 0)
        goto done;
    for (int r = 0; r < o->runs; r++) {
        for (int b = 0; b < o->batches; b++) {
            samples[b] = run_batch(bc, &opts, write, buf, 16384, o->batch);
            if (samples[b] < 0)
                goto done;
        }
        qsort(samples, (size_t)o->batches, sizeof *samples, cmp_double);
        p10[r] = quantile(samples, (size_t)o->batches, 0.10);
        p50[r] = quantile(samples, (size_t)o->batches, 0.50);
        p90[r] = quantile(samples, (size_t)o->batches, 0.90);
    }
    qsort(p10, (size_t)o->runs, sizeof *p10, cmp_double);
    qsort(p50, (size_t)o->runs, sizeof *p50, cmp_double);
    qsort(p90, (size_t)o->runs, sizeof *p90, cmp_double);
    out->p10 = quantile(p10, (size_t)o->runs, 0.5);
    out->p50 = quantile(p50, (size_t)o->runs, 0.5);
    out->p90 = quantile(p90, (size_t)o->runs, 0.5);
    rc = 0;
done:
    free(samples);
    free(p10);
    free(p50);
    free(p90);
    free(buf);
    return rc;
}

/*
 * Generates a policy of about nrules rules. A quarter each are scope, role,
 * agent and forbid rules, every one about its own action and resource, so
 * that a check touches a handful of them; there is one tool and one user
 * binding per role. The checked request (see gen_request) names the middle
 * entries, so a linear scan would show. Returns the source text (caller
 * frees) or NULL on allocation failure.
 */
static char *gen_policy(int nrules)
{
    int k = nrules / 4;
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "server \"gen\" { audience \"https://gen.example.com\" }\n");
    for (int i = 0; i < k; i++) {
        sb_printf(&b,
                  "scope \"s%d\" { allow svc%d.read, svc%d.write on "
                  "\"res%d:*\" }\n",
                  i, i, i, i);
        sb_printf(&b, "role r%d { allow svc%d.* on \"res%d:team-%d/*\" }\n", i,
                  i, i, i);
        sb_printf(&b, "user \"u%d\" { roles r%d }\n", i, i);
        sb_printf(&b, "agent \"ag%d\" { allow svc%d.read on \"res%d:*\" }\n", i,
                  i, i);
        sb_printf(&b, "forbid svc%d.write on \"res%d:*/secret-*\"\n", i, i);
        sb_printf(&b,
                  "tool \"gen\" \"t%d\" {\n"
                  "  needs svc%d.read on \"res%d:{team}/{doc}\"\n"
                  "  arg doc max_length 64\n"
                  "}\n",
                  i, i, i);
    }
    if (b.oom) {
        sb_free(&b);
        return NULL;
    }
    return sb_take(&b);
}

/* The request checked against a generated policy of k blocks of each kind:
 * allowed, touching entry k/2 only. */
static json_t *gen_request(int nrules)
{
    int m = nrules / 8;
    char team[32], doc[32], sub[32], scope[32], agent[32], tool[32];
    snprintf(team, sizeof team, "team-%d", m);
    snprintf(doc, sizeof doc, "doc-%d", m);
    snprintf(sub, sizeof sub, "u%d", m);
    snprintf(scope, sizeof scope, "s%d", m);
    snprintf(agent, sizeof agent, "ag%d", m);
    snprintf(tool, sizeof tool, "t%d", m);
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:I}}",
                     "server", "gen", "tool", tool, "arguments", "team", team,
                     "doc", doc, "token", "sub", sub, "scope", scope,
                     "client_id", agent, "aud", "https://gen.example.com",
                     "exp", (json_int_t)1893456000);
}

static int load_generated(int nrules, trine_policy **out, double *load_ms)
{
    char *text = gen_policy(nrules);
    if (text == NULL)
        return TRINE_ENOMEM;
    trine_source src = {.name = "gen.trine", .data = text, .len = strlen(text)};
    trine_diag *diag = trine_diag_new();
    int64_t t0 = now_ns();
    int rc = trine_policy_load_sources(&src, 1, diag, out);
    *load_ms = (double)(now_ns() - t0) / 1e6;
    if (rc != 0) {
        fprintf(stderr, "eval: generated policy of %d rules: %s\n", nrules,
                trine_strerror(rc));
        trine_diag_print(diag, stderr);
    }
    trine_diag_free(diag);
    free(text);
    return rc;
}

static int parse_int(const char *flag, const char *v, int min, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > 100000000) {
        fprintf(stderr, "eval: %s needs an integer >= %d\n", flag, min);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    o->policy_dir = TRINE_SOURCE_DIR "/policy-examples/github";
    o->runs = 5;
    o->batches = 200;
    o->batch = 500;
    /* Every option takes a value: they go in pairs. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: eval [--policy DIR] [--runs N] [--batches N] "
                   "[--batch N]\n");
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "eval: unknown or incomplete option %s\n", a);
            return -1;
        }
        int rc = 0;
        if (strcmp(a, "--policy") == 0)
            o->policy_dir = v;
        else if (strcmp(a, "--runs") == 0)
            rc = parse_int(a, v, 1, &o->runs);
        else if (strcmp(a, "--batches") == 0)
            rc = parse_int(a, v, 1, &o->batches);
        else if (strcmp(a, "--batch") == 0)
            rc = parse_int(a, v, 1, &o->batch);
        else {
            fprintf(stderr, "eval: unknown option %s\n", a);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void print_row(const bench_case *bc, const stats *c, const stats *w)
{
    printf("%-15s %-20s %8.0f %8.0f %8.0f   %8.0f %8.0f %8.0f\n",
           bc->policy_name, bc->request_name, c->p10, c->p50, c->p90, w->p10,
           w->p50, w->p90);
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;

    enum { NGEN = 3, NCASES = 3 + NGEN };
    static const int gen_sizes[NGEN] = {100, 1000, 10000};
    static const char *gen_names[NGEN] = {"generated-100", "generated-1k",
                                          "generated-10k"};
    trine_policy *example = NULL;
    trine_policy *gen[NGEN] = {NULL};
    double gen_load_ms[NGEN] = {0};
    bench_case cases[NCASES];
    stats check[NCASES], write[NCASES];
    int status = 1;
    memset(cases, 0, sizeof cases);

    trine_diag *diag = trine_diag_new();
    int rc = trine_policy_load_dir(o.policy_dir, diag, &example);
    if (rc != 0) {
        fprintf(stderr, "eval: cannot load %s: %s\n", o.policy_dir,
                trine_strerror(rc));
        trine_diag_print(diag, stderr);
        trine_diag_free(diag);
        return 1;
    }
    trine_diag_free(diag);
    for (int i = 0; i < NGEN; i++) {
        if (load_generated(gen_sizes[i], &gen[i], &gen_load_ms[i]) != 0)
            goto done;
    }

    json_error_t jerr;
    cases[0] = (bench_case){"github", "allow (3.1+consent)",
                            example,  json_loads(EXAMPLE_ALLOW, 0, &jerr),
                            "allow",  "allow"};
    cases[1] = (bench_case){"github", "deny (agent_denied)",
                            example,  json_loads(EXAMPLE_DENY, 0, &jerr),
                            "deny",   "agent_denied"};
    cases[2] = (bench_case){"github", "deny (scope_missing)",
                            example,  json_loads(EXAMPLE_STEP_UP, 0, &jerr),
                            "deny",   "scope_missing"};
    for (int i = 0; i < NGEN; i++)
        cases[3 + i] = (bench_case){gen_names[i], "allow",
                                    gen[i],       gen_request(gen_sizes[i]),
                                    "allow",      "allow"};
    trine_check_opts vopts = {.now_ms = wall_ms(), .consent = consent_yes};
    for (int i = 0; i < NCASES; i++) {
        if (cases[i].params == NULL) {
            fprintf(stderr, "eval: out of memory\n");
            goto done;
        }
        if (verify_case(&cases[i], &vopts) != 0)
            goto done;
    }

    printf("trine eval benchmark: ns per call; %d runs x %d batches x %d "
           "calls;\np10/median/p90 over batches, median over runs\n\n",
           o.runs, o.batches, o.batch);
    printf("%-15s %-20s %26s   %26s\n", "policy", "request",
           "check (p10 median p90)", "check+write (p10 median p90)");
    for (int i = 0; i < NCASES; i++) {
        if (measure(&cases[i], &o, false, &check[i]) != 0 ||
            measure(&cases[i], &o, true, &write[i]) != 0)
            goto done;
        print_row(&cases[i], &check[i], &write[i]);
        fflush(stdout);
    }

    double ratio_c = check[NCASES - 1].p50 / check[3].p50;
    double ratio_w = write[NCASES - 1].p50 / write[3].p50;
    printf("\npolicy load: 100 rules %.1f ms, 1k rules %.1f ms, 10k rules "
           "%.1f ms\n",
           gen_load_ms[0], gen_load_ms[1], gen_load_ms[2]);
    printf("ratio 10,000 / 100 rules (median): check %.2f, check+write "
           "%.2f\n",
           ratio_c, ratio_w);
    bool t1 = check[0].p50 <= 1000.0;
    bool t2 = ratio_c <= 2.0;
    printf("target: example allow check median <= 1000 ns: %.0f ns %s\n",
           check[0].p50, t1 ? "PASS" : "FAIL");
    printf("target: 10,000-rule median <= 2 x 100-rule median: %.2f %s\n",
           ratio_c, t2 ? "PASS" : "FAIL");
    status = 0;
done:
    for (int i = 0; i < NCASES; i++)
        json_decref(cases[i].params);
    for (int i = 0; i < NGEN; i++)
        trine_policy_release(gen[i]);
    trine_policy_release(example);
    return status;
}
