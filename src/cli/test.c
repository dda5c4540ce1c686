/*
 * test.c - `trine test DIR`: run a policy's test cases (DESIGN §6.1).
 *
 * Every *.tests.json file in DIR (sorted by name) holds a JSON array of
 * cases:
 *
 *   {"name": "...", "now": UNIX?, "request": {...}, "consents": [...]?,
 *    "expect": {"decision"?, "reason"?, "required_scopes"?,
 *               "www_authenticate"?}}
 *
 * An expected null means the result must not have the field.
 *
 * Each case is checked against the policy with its own seeded consent
 * grants. Every failing case prints one line naming what differed, then a
 * summary "N passed, N failed". A case or file that is malformed counts as a
 * failure: unknown keys, an empty "expect", or a file with no case at all
 * are refused, because a test that checks nothing must not pass.
 *
 * Exit status: 0 every case passed, 1 a failure, a policy error, a
 * malformed or missing tests file, 3 usage error.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <dirent.h>
#include <errno.h>
#include <math.h> /* isfinite, a macro: no libm needed */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char test_usage[] =
    "usage: trine test DIR\n"
    "\n"
    "Loads the policy in DIR and runs every case of every *.tests.json file\n"
    "in DIR.\n"
    "exit status: 0 all passed, 1 a failure (or no tests), 3 usage\n";

#define TESTS_SUFFIX ".tests.json"

typedef struct test_run {
    const trine_policy *policy;
    int64_t now_ms; /* for cases without "now" */
    unsigned passed;
    unsigned failed;
} test_run;

static const char *const case_keys[] = {"name",     "now",    "request",
                                        "consents", "expect", NULL};
static const char *const expect_keys[] = {
    "decision", "reason", "required_scopes", "www_authenticate", NULL};

/* Returns true when key is one of the NULL-terminated keys. */
static bool key_known(const char *const *keys, const char *key)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (strcmp(keys[i], key) == 0)
            return true;
    }
    return false;
}

/* Prints the start of a failure line for case i of file: "FAIL file: name: "
 * or, before the name is known, "FAIL file: case N: ". */
static void fail_head(const char *file, size_t i, const char *name)
{
    fputs("FAIL ", stdout);
    cli_put_safe(stdout, file);
    fputs(": ", stdout);
    if (name != NULL)
        cli_put_safe(stdout, name);
    else
        printf("case %zu", i + 1);
    fputs(": ", stdout);
}

/* Checks the shape of "expect". Returns NULL when it is good, else a static
 * description of the problem (with the key in *bad when one is named). */
static const char *expect_problem(const json_t *exp, const char **bad)
{
    *bad = NULL;
    if (!json_is_object(exp))
        return "\"expect\" must be an object";
    if (json_object_size(exp) == 0)
        return "\"expect\" is empty: a case must expect something";
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)exp, key, v)
    {
        *bad = key;
        if (!key_known(expect_keys, key))
            return "unknown key in \"expect\"; expected decision, reason, "
                   "required_scopes or www_authenticate";
        /* null expects the field to be absent (no step-up). */
        if (json_is_null(v))
            continue;
        if (strcmp(key, "required_scopes") == 0) {
            size_t i;
            json_t *s;
            if (!json_is_array(v))
                return "must be an array of strings";
            json_array_foreach(v, i, s)
            {
                if (!json_is_string(s))
                    return "must be an array of strings";
            }
        } else if (!json_is_string(v)) {
            return "must be a string";
        }
    }
    *bad = NULL;
    return NULL;
}

/* Validates the case's own fields. Returns NULL when they are good, else a
 * static description (and *bad the key it is about, when there is one). */
static const char *case_problem(const json_t *c, const char **bad)
{
    *bad = NULL;
    if (!json_is_object(c))
        return "a case must be an object";
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c, key, v)
    {
        if (!key_known(case_keys, key)) {
            *bad = key;
            return "unknown key; expected name, now, request, consents or "
                   "expect";
        }
    }
    const json_t *name = json_object_get(c, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return "\"name\" must be a non-empty string";
    const json_t *now = json_object_get(c, "now");
    if (now != NULL) {
        double s = json_number_value(now);
        if (!json_is_number(now) || !isfinite(s) || s < 0 ||
            s > (double)(INT64_MAX / 1000))
            return "\"now\" must be unix seconds (a non-negative number)";
    }
    if (json_object_get(c, "request") == NULL)
        return "\"request\" is required";
    return expect_problem(json_object_get(c, "expect"), bad);
}

/* Compares each expected field with the result; prints the failure line
 * (after fail_head) and returns false when anything differs. */
static bool case_compare(const char *file, size_t i, const char *name,
                         const json_t *expect, const json_t *res)
{
    bool ok = true;
    for (size_t k = 0; expect_keys[k] != NULL; k++) {
        const json_t *want = json_object_get(expect, expect_keys[k]);
        if (want == NULL)
            continue;
        const json_t *got = json_object_get(res, expect_keys[k]);
        if (json_is_null(want) ? got == NULL
                               : got != NULL && json_equal(want, got))
            continue;
        if (ok)
            fail_head(file, i, name);
        else
            fputs("; ", stdout);
        ok = false;
        printf("%s: expected ", expect_keys[k]);
        cli_put_json(stdout, want);
        fputs(", got ", stdout);
        cli_put_json(stdout, got);
    }
    if (!ok)
        fputc('\n', stdout);
    return ok;
}

/* Runs case i of file. Returns true when it passed; prints why when not. */
static bool run_case(test_run *run, const char *file, size_t i, const json_t *c)
{
    const char *bad = NULL;
    const char *problem = case_problem(c, &bad);
    const json_t *jname = json_object_get(c, "name");
    const char *name = json_is_string(jname) && json_string_length(jname) > 0
                           ? json_string_value(jname)
                           : NULL;
    if (problem != NULL) {
        fail_head(file, i, name);
        if (bad != NULL) {
            fputc('"', stdout);
            cli_put_safe(stdout, bad);
            fputs("\": ", stdout);
        }
        printf("%s\n", problem);
        return false;
    }
    cli_seeds *seeds = NULL;
    char err[512] = "";
    int rc =
        cli_seeds_new(json_object_get(c, "consents"), &seeds, err, sizeof err);
    if (rc != 0) {
        fail_head(file, i, name);
        cli_put_safe(stdout, rc == TRINE_ENOMEM ? "out of memory" : err);
        fputc('\n', stdout);
        return false;
    }
    trine_check_opts opts = {run->now_ms, cli_seeds_lookup, seeds};
    const json_t *now = json_object_get(c, "now");
    if (now != NULL) {
        /* Rounds to the nearest millisecond ("now" is never negative). */
        opts.now_ms = (int64_t)(json_number_value(now) * 1000.0 + 0.5);
    }
    trine_decision *d = NULL;
    rc = trine_check(run->policy, json_object_get(c, "request"), &opts, &d, err,
                     sizeof err);
    bool ok = false;
    if (rc != 0) {
        fail_head(file, i, name);
        if (rc == TRINE_EREQUEST && err[0] != '\0') {
            fputs("invalid request: ", stdout);
            cli_put_safe(stdout, err);
        } else {
            fputs(trine_strerror(rc), stdout);
        }
        fputc('\n', stdout);
    } else {
        json_t *res = trine_decision_result(d);
        if (res == NULL) {
            fail_head(file, i, name);
            fputs("out of memory\n", stdout);
        } else {
            ok = case_compare(file, i, name, json_object_get(c, "expect"), res);
            json_decref(res);
        }
        trine_decision_free(d);
    }
    cli_seeds_free(seeds);
    return ok;
}

/* Prints a problem with a whole tests file and counts it as one failure. */
static void file_fail(test_run *run, const char *file, const char *what,
                      const char *more)
{
    fputs("FAIL ", stdout);
    cli_put_safe(stdout, file);
    fputs(": ", stdout);
    fputs(what, stdout);
    if (more != NULL)
        cli_put_safe(stdout, more);
    fputc('\n', stdout);
    run->failed++;
}

/* Runs every case of one tests file (path; name for messages). */
static void run_file(test_run *run, const char *path, const char *name)
{
    char *buf = NULL;
    size_t len = 0;
    if (cli_read_file(path, &buf, &len) != 0) {
        file_fail(run, name, "cannot read: ", strerror(errno));
        return;
    }
    char err[256];
    json_t *cases = cli_parse_json(buf, len, err, sizeof err);
    free(buf);
    if (cases == NULL) {
        file_fail(run, name, "not valid JSON: ", err);
        return;
    }
    if (!json_is_array(cases)) {
        file_fail(run, name, "must hold a JSON array of cases", NULL);
    } else if (json_array_size(cases) == 0) {
        file_fail(run, name, "holds no case", NULL);
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c)
        {
            if (run_case(run, name, i, c))
                run->passed++;
            else
                run->failed++;
        }
    }
    json_decref(cases);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.tests.json regular files of dir, sorted. Returns 0 with
 * *names (each and the array free()d by the caller) and *n, or -1 with
 * errno set. */
static int list_tests(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    char **v = NULL;
    size_t len = 0, cap = 0;
    size_t slen = strlen(TESTS_SUFFIX);
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL)
            break;
        size_t nlen = strlen(e->d_name);
        if (nlen <= slen || e->d_name[0] == '.' ||
            strcmp(e->d_name + nlen - slen, TESTS_SUFFIX) != 0)
            continue;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **p = realloc(v, ncap * sizeof *p);
            if (p == NULL) {
                rc = -1;
                break;
            }
            v = p;
            cap = ncap;
        }
        v[len] = strdup(e->d_name);
        if (v[len] == NULL) {
            rc = -1;
            break;
        }
        len++;
    }
    int saved = rc != 0 ? ENOMEM : errno;
    closedir(d);
    if (rc != 0 || saved != 0) {
        for (size_t i = 0; i < len; i++)
            free(v[i]);
        free(v);
        errno = saved;
        return -1;
    }
    if (len > 1)
        qsort(v, len, sizeof *v, cmp_names);
    *names = v;
    *n = len;
    return 0;
}

/* Loads the policy of dir; prints its errors and returns NULL on failure. */
static trine_policy *test_load_policy(const char *dir)
{
    trine_diag *diag = trine_diag_new();
    if (diag == NULL) {
        fputs("trine test: out of memory\n", stderr);
        return NULL;
    }
    trine_policy *p = NULL;
    if (cli_load_policy("test", dir, diag, &p) != 0)
        p = NULL;
    trine_diag_free(diag);
    return p;
}

/* Runs every tests file of dir against p; returns the exit status. */
static int test_dir(const char *dir, const trine_policy *p)
{
    char **names = NULL;
    size_t n = 0;
    if (list_tests(dir, &names, &n) != 0) {
        fputs("trine test: cannot list ", stderr);
        cli_put_safe(stderr, dir);
        fprintf(stderr, ": %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (n == 0) {
        fputs("trine test: no *.tests.json in ", stderr);
        cli_put_safe(stderr, dir);
        fputc('\n', stderr);
        printf("0 passed, 0 failed\n");
        return CLI_EXIT_FAIL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    test_run run = {p, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 0, 0};
    size_t dlen = strlen(dir);
    for (size_t i = 0; i < n; i++) {
        size_t plen = dlen + 1 + strlen(names[i]) + 1;
        char *path = malloc(plen);
        if (path == NULL) {
            file_fail(&run, names[i], "out of memory", NULL);
        } else {
            snprintf(path, plen, "%s/%s", dir, names[i]);
            run_file(&run, path, names[i]);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    printf("%u passed, %u failed\n", run.passed, run.failed);
    return run.failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_test(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            fputs(test_usage, stdout);
            return CLI_EXIT_OK;
        }
        if ((argv[i][0] == '-' && argv[i][1] != '\0') || dir != NULL) {
            fputs("trine test: unexpected argument \"", stderr);
            cli_put_safe(stderr, argv[i]);
            fputs("\"\n", stderr);
            fputs(test_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        dir = argv[i];
    }
    if (dir == NULL) {
        fputs("trine test: a policy directory is required\n", stderr);
        fputs(test_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    trine_policy *p = test_load_policy(dir);
    if (p == NULL)
        return CLI_EXIT_FAIL;
    int status = test_dir(dir, p);
    trine_policy_release(p);
    return status;
}
