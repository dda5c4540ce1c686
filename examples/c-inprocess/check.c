/*
 * check.c - decides one tool call in-process with libtrine, without trined.
 *
 *   example_c_inprocess POLICY_DIR REQUEST_FILE [NOW_UNIX]
 *
 * Loads every *.trine file of POLICY_DIR as one policy, reads one check
 * request (the params of DESIGN.md section 3.1: server, tool, arguments,
 * session, token) from REQUEST_FILE ("-" for standard input), evaluates it
 * at NOW_UNIX (unix seconds; the current time without it) and prints:
 *
 *   decision: <allow|deny|consent_required>
 *   reason: <primary reason code>
 *   prompt: <the consent question>              (consent_required only)
 *   required_scopes: <scope> ...                (a step-up only)
 *   www_authenticate: <header value>            (a step-up only)
 *   result: <the result object as compact JSON>
 *
 * There is no consent store here, so a tool that demands consent always
 * answers consent_required; an MCP server that keeps grants passes a
 * trine_consent_fn in trine_check_opts. The exit status is that of
 * `trine check`: 0 allow, 1 deny, 2 consent_required, 3 a usage or load
 * error.
 *
 * Only the public API (include/trine.h) and jansson are used.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <trine.h>

enum { EXIT_ALLOW = 0, EXIT_DENY = 1, EXIT_CONSENT = 2, EXIT_ERROR = 3 };

static void usage(void)
{
    fprintf(stderr,
            "usage: example_c_inprocess POLICY_DIR REQUEST_FILE [NOW_UNIX]\n");
}

/* Reads the request object; returns a new reference, or NULL after printing
 * why. */
static json_t *read_request(const char *path)
{
    json_error_t jerr;
    json_t *req;

    if (strcmp(path, "-") == 0)
        req = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
    else
        req = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL) {
        fprintf(stderr, "%s: line %d, column %d: %s\n", path, jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(req)) {
        fprintf(stderr, "%s: the request must be a JSON object\n", path);
        json_decref(req);
        return NULL;
    }
    return req;
}

/* Parses NOW_UNIX into milliseconds; returns 0, or -1 when it is not a
 * non-negative integer. */
static int parse_now(const char *text, int64_t *now_ms)
{
    char *end = NULL;
    long long secs;

    errno = 0;
    secs = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || secs < 0 ||
        secs > INT64_MAX / 1000)
        return -1;
    *now_ms = (int64_t)secs * 1000;
    return 0;
}

static int64_t current_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints the lines that depend on the kind of decision: the consent prompt,
 * or the step-up. Returns 0, or -1 when the result cannot be built. */
static int print_details(const trine_decision *d)
{
    json_t *result = trine_decision_result(d);
    const char *prompt;
    const char *www;
    json_t *scopes;
    size_t i;
    json_t *scope;

    if (result == NULL)
        return -1;
    prompt = json_string_value(
        json_object_get(json_object_get(result, "consent"), "prompt"));
    if (prompt != NULL)
        printf("prompt: %s\n", prompt);
    scopes = json_object_get(result, "required_scopes");
    if (json_is_array(scopes)) {
        printf("required_scopes:");
        json_array_foreach(scopes, i, scope)
        {
            printf(" %s", json_string_value(scope));
        }
        printf("\n");
    }
    www = json_string_value(json_object_get(result, "www_authenticate"));
    if (www != NULL)
        printf("www_authenticate: %s\n", www);
    json_decref(result);
    return 0;
}

/* Prints the result object; returns 0, or -1 when out of memory. */
static int print_result(const trine_decision *d)
{
    char small[1024];
    size_t need = trine_decision_write(d, -1, small, sizeof small);
    char *buf = small;

    if (need >= sizeof small) {
        buf = malloc(need + 1);
        if (buf == NULL)
            return -1;
        trine_decision_write(d, -1, buf, need + 1);
    }
    printf("result: %s\n", buf);
    if (buf != small)
        free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    trine_diag *diag = NULL;
    trine_policy *policy = NULL;
    trine_decision *decision = NULL;
    json_t *request = NULL;
    trine_check_opts opts = {0};
    char err[256] = "";
    const char *kind;
    int status = EXIT_ERROR;
    int rc;

    if (argc < 3 || argc > 4) {
        usage();
        return EXIT_ERROR;
    }
    opts.now_ms = current_ms();
    if (argc == 4 && parse_now(argv[3], &opts.now_ms) != 0) {
        fprintf(stderr, "NOW_UNIX must be unix seconds, not \"%s\"\n", argv[3]);
        return EXIT_ERROR;
    }

    diag = trine_diag_new();
    if (diag == NULL) {
        fprintf(stderr, "%s\n", trine_strerror(TRINE_ENOMEM));
        return EXIT_ERROR;
    }
    rc = trine_policy_load_dir(argv[1], diag, &policy);
    if (rc != 0) {
        if (trine_diag_count(diag) > 0)
            trine_diag_print(diag, stderr);
        else
            fprintf(stderr, "%s: %s\n", argv[1], trine_strerror(rc));
        goto out;
    }

    request = read_request(argv[2]);
    if (request == NULL)
        goto out;
    rc = trine_check(policy, request, &opts, &decision, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", argv[2],
                rc == TRINE_EREQUEST ? err : trine_strerror(rc));
        goto out;
    }

    kind = trine_decision_kind(decision);
    printf("decision: %s\nreason: %s\n", kind, trine_decision_reason(decision));
    if (print_details(decision) != 0 || print_result(decision) != 0) {
        fprintf(stderr, "%s\n", trine_strerror(TRINE_ENOMEM));
        goto out;
    }
    if (strcmp(kind, "allow") == 0)
        status = EXIT_ALLOW;
    else if (strcmp(kind, "consent_required") == 0)
        status = EXIT_CONSENT;
    else
        status = EXIT_DENY;

out:
    trine_decision_free(decision);
    json_decref(request);
    trine_policy_release(policy);
    trine_diag_free(diag);
    return status;
}
