/*
 * check.c - `trine check`: evaluate one request's params against a policy
 * directory, without a daemon (DESIGN §6).
 *
 *   trine check --policy DIR (--request FILE|-) [--now UNIX] [--json]
 *               [--consents FILE]
 *
 * Exit status: 0 allow, 1 deny, 2 consent_required, 3 usage error, policy
 * load error or invalid request.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char check_usage[] =
    "usage: trine check --policy DIR (--request FILE|-) [--now UNIX] "
    "[--json]\n"
    "                   [--consents FILE]\n"
    "\n"
    "Evaluates the check params object in FILE (\"-\": standard input).\n"
    "  --now UNIX        evaluation time in unix seconds (default: now)\n"
    "  --json            print the result object as JSON\n"
    "  --consents FILE   live consent grants, as in a test case's "
    "\"consents\"\n"
    "exit status: 0 allow, 1 deny, 2 consent_required, 3 usage, load error\n"
    "or invalid request\n";

typedef struct check_args {
    const char *policy;
    const char *request;
    const char *consents;
    const char *now;
    bool json;
} check_args;

/* Parses the flags; returns 0, 1 after --help, or -1 after a usage message. */
static int check_parse_args(int argc, char **argv, check_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int r = 0;
        if (cli_flag(arg, "--help") || cli_flag(arg, "-h")) {
            fputs(check_usage, stdout);
            return 1;
        }
        if (cli_flag(arg, "--json")) {
            a->json = true;
            continue;
        }
        const char *names[] = {"--policy", "--request", "--consents", "--now"};
        const char **dest[] = {&a->policy, &a->request, &a->consents, &a->now};
        for (size_t k = 0; k < 4 && r == 0; k++) {
            r = cli_opt_value("check", argc, argv, &i, names[k], dest[k]);
        }
        if (r < 0)
            return -1;
        if (r == 0) {
            fputs("trine check: unexpected argument \"", stderr);
            cli_put_safe(stderr, arg);
            fputs("\"\n", stderr);
            fputs(check_usage, stderr);
            return -1;
        }
    }
    if (a->policy == NULL || a->request == NULL) {
        fprintf(stderr, "trine check: %s is required\n",
                a->policy == NULL ? "--policy" : "--request");
        fputs(check_usage, stderr);
        return -1;
    }
    return 0;
}

/* Reads and parses a JSON file for flag what; prints the problem and returns
 * NULL on failure. */
static json_t *check_load_json(const char *what, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    if (cli_read_file(path, &buf, &len) != 0) {
        fprintf(stderr, "trine check: %s: cannot read ", what);
        if (strcmp(path, "-") == 0)
            fputs("standard input", stderr);
        else
            cli_put_safe(stderr, path);
        fprintf(stderr, ": %s\n", strerror(errno));
        return NULL;
    }
    char err[256];
    json_t *v = cli_parse_json(buf, len, err, sizeof err);
    free(buf);
    if (v == NULL) {
        fprintf(stderr, "trine check: %s is not valid JSON: ", what);
        cli_put_safe(stderr, err);
        fputc('\n', stderr);
    }
    return v;
}

/* Prints string member key of obj as "prefix<value>", if present. */
static void put_member(const json_t *obj, const char *key, const char *prefix)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return;
    fputs(prefix, stdout);
    cli_put_safe(stdout, json_string_value(v));
}

/* Prints the result object as a short summary for people. */
static void check_print_human(const json_t *res)
{
    put_member(res, "decision", "decision: ");
    put_member(res, "reason", "\nreason:   ");
    fputc('\n', stdout);
    const json_t *consent = json_object_get(res, "consent");
    if (json_is_object(consent)) {
        put_member(consent, "mode", "consent:  ");
        put_member(consent, "prompt", ": ");
        fputc('\n', stdout);
    }
    const json_t *reasons = json_object_get(res, "reasons");
    size_t i;
    const json_t *r;
    if (json_array_size(reasons) > 0)
        fputs("reasons:\n", stdout);
    json_array_foreach(reasons, i, r)
    {
        put_member(r, "code", "  - ");
        put_member(r, "set", " [");
        if (json_is_string(json_object_get(r, "set")))
            fputc(']', stdout);
        put_member(r, "action", " ");
        put_member(r, "resource", " on ");
        put_member(r, "agent", " by ");
        put_member(r, "argument", " argument ");
        put_member(r, "rule", " at ");
        put_member(r, "detail", ": ");
        fputc('\n', stdout);
    }
    const json_t *matched = json_object_get(res, "matched");
    if (json_array_size(matched) > 0)
        fputs("matched:\n", stdout);
    json_array_foreach(matched, i, r)
    {
        put_member(r, "set", "  - ");
        put_member(r, "rule", ": ");
        put_member(r, "agent", " (actor ");
        if (json_is_string(json_object_get(r, "agent")))
            fputc(')', stdout);
        fputc('\n', stdout);
    }
    const json_t *req = json_object_get(res, "required_scopes");
    if (json_is_array(req)) {
        fputs("required_scopes:", stdout);
        json_array_foreach(req, i, r)
        {
            if (json_is_string(r)) {
                fputc(' ', stdout);
                cli_put_safe(stdout, json_string_value(r));
            }
        }
        fputc('\n', stdout);
    }
    if (json_is_string(json_object_get(res, "www_authenticate"))) {
        put_member(res, "www_authenticate", "www_authenticate: ");
        fputc('\n', stdout);
    }
    put_member(res, "policy_revision", "policy_revision: ");
    fputc('\n', stdout);
}

/* Prints the decision as the compact result JSON of DESIGN §3.1 plus a
 * newline. Returns 0 or -1 on allocation failure. */
static int check_print_json(const trine_decision *d)
{
    char small[2048];
    size_t need = trine_decision_write(d, -1, small, sizeof small);
    if (need < sizeof small) {
        fwrite(small, 1, need, stdout);
        fputc('\n', stdout);
        return 0;
    }
    char *big = malloc(need + 1);
    if (big == NULL)
        return -1;
    trine_decision_write(d, -1, big, need + 1);
    fwrite(big, 1, need, stdout);
    fputc('\n', stdout);
    free(big);
    return 0;
}

/* Returns the exit status for a decision kind. */
static int check_status(const char *kind)
{
    if (strcmp(kind, "allow") == 0)
        return CLI_EXIT_OK;
    if (strcmp(kind, "consent_required") == 0)
        return CLI_EXIT_CONSENT;
    return CLI_EXIT_FAIL;
}

/* Loads the policy; prints its errors and returns NULL on failure. */
static trine_policy *check_load_policy(const char *dir)
{
    trine_diag *diag = trine_diag_new();
    if (diag == NULL) {
        fputs("trine check: out of memory\n", stderr);
        return NULL;
    }
    trine_policy *p = NULL;
    if (cli_load_policy("check", dir, diag, &p) != 0)
        p = NULL;
    trine_diag_free(diag);
    return p;
}

/* Evaluates and prints; returns the exit status. */
static int check_run(const check_args *a, trine_policy *policy,
                     const json_t *params, cli_seeds *seeds, int64_t now_ms)
{
    trine_check_opts opts = {now_ms, NULL, NULL};
    if (seeds != NULL) {
        opts.consent = cli_seeds_lookup;
        opts.consent_ctx = seeds;
    }
    trine_decision *d = NULL;
    char err[512] = "";
    int rc = trine_check(policy, params, &opts, &d, err, sizeof err);
    if (rc != 0) {
        fputs("trine check: ", stderr);
        if (rc == TRINE_EREQUEST && err[0] != '\0') {
            fputs("invalid request: ", stderr);
            cli_put_safe(stderr, err);
        } else {
            fputs(trine_strerror(rc), stderr);
        }
        fputc('\n', stderr);
        return CLI_EXIT_USAGE;
    }
    int status = check_status(trine_decision_kind(d));
    if (a->json) {
        if (check_print_json(d) != 0) {
            fputs("trine check: out of memory\n", stderr);
            status = CLI_EXIT_USAGE;
        }
    } else {
        json_t *res = trine_decision_result(d);
        if (res == NULL) {
            fputs("trine check: out of memory\n", stderr);
            status = CLI_EXIT_USAGE;
        } else {
            check_print_human(res);
            json_decref(res);
        }
    }
    trine_decision_free(d);
    return status;
}

/* Returns the current time in unix milliseconds. */
static int64_t check_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_check(int argc, char **argv)
{
    check_args a = {0};
    int r = check_parse_args(argc, argv, &a);
    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;

    int64_t now_ms = check_clock_ms();
    if (a.now != NULL) {
        int64_t s = 0;
        if (!cli_parse_int64(a.now, &s) || s < 0 || s > INT64_MAX / 1000) {
            fputs("trine check: --now must be unix seconds (a non-negative "
                  "integer)\n",
                  stderr);
            return CLI_EXIT_USAGE;
        }
        now_ms = s * 1000;
    }
    if (strcmp(a.request, "-") == 0 && a.consents != NULL &&
        strcmp(a.consents, "-") == 0) {
        fputs("trine check: --request and --consents cannot both read "
              "standard input\n",
              stderr);
        return CLI_EXIT_USAGE;
    }

    int status = CLI_EXIT_USAGE;
    json_t *params = NULL, *grants = NULL;
    cli_seeds *seeds = NULL;
    trine_policy *policy = check_load_policy(a.policy);
    if (policy == NULL)
        goto out;
    params = check_load_json("--request", a.request);
    if (params == NULL)
        goto out;
    if (a.consents != NULL) {
        grants = check_load_json("--consents", a.consents);
        if (grants == NULL)
            goto out;
        char err[256] = "";
        int rc = cli_seeds_new(grants, &seeds, err, sizeof err);
        if (rc != 0) {
            fputs("trine check: --consents: ", stderr);
            cli_put_safe(stderr, rc == TRINE_ENOMEM ? "out of memory" : err);
            fputc('\n', stderr);
            goto out;
        }
    }
    status = check_run(&a, policy, params, seeds, now_ms);
out:
    cli_seeds_free(seeds);
    json_decref(grants);
    json_decref(params);
    trine_policy_release(policy);
    return status;
}
