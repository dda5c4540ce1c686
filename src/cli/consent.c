/*
 * consent.c - `trine consent list|grant|revoke`: manages consent grants
 * through the daemon's socket (the daemon owns the consent store and its
 * in-memory cache, so grants never go around it).
 *
 *   trine consent list   [--socket PATH] [--user U] [--agent A] [--json]
 *   trine consent grant  (--audit-id N | N) [--ttl SECONDS] [--socket PATH]
 *                        [--json]
 *   trine consent revoke (--id N | N | --user U [--agent A] [--server S]
 *                        [--tool T]) [--socket PATH] [--json]
 *
 * A bare number is the decision's audit id (grant) or the grant's id
 * (revoke); --consent-id is another name for --id, after the RPC parameter.
 *
 * Exit status: 0 success, 1 the daemon answered with an error (or an
 * unreadable reply), 3 usage error or no daemon to talk to.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CONSENT_DEFAULT_SOCKET "./trine.sock"
/* How long to wait for the daemon. */
#define CONSENT_TIMEOUT_S 30
/* The longest reply read (a long consent list is still far below). */
#define CONSENT_REPLY_MAX (64u * 1024u * 1024u)

static const char consent_usage[] =
    "usage: trine consent list   [--socket PATH] [--user U] [--agent A] "
    "[--json]\n"
    "       trine consent grant  (--audit-id N | N) [--ttl SECONDS] "
    "[--socket PATH]\n"
    "                            [--json]\n"
    "       trine consent revoke (--id N | N | --user U [--agent A] "
    "[--server S]\n"
    "                            [--tool T]) [--socket PATH] [--json]\n"
    "\n"
    "Talks to trined over its socket (default ./trine.sock). --consent-id "
    "is\n"
    "another name for --id; --ttl takes seconds, or a duration such as 30m,\n"
    "12h or 7d.\n"
    "exit status: 0 success, 1 the daemon refused, 3 usage error or no "
    "daemon\n";

typedef struct consent_args {
    const char *socket;
    const char *user;
    const char *agent;
    const char *server;
    const char *tool;
    int64_t id;  /* --id, --audit-id; -1 when absent */
    int64_t ttl; /* -1 when absent */
    bool json;
} consent_args;

static int consent_usage_error(const char *msg)
{
    fputs("trine consent: ", stderr);
    cli_put_safe(stderr, msg);
    fputs("\n", stderr);
    fputs(consent_usage, stderr);
    return CLI_EXIT_USAGE;
}

/* Parses a positive whole number for flag name. */
static bool consent_positive(const char *name, const char *value, int64_t *out)
{
    int64_t v;
    if (!cli_parse_int64(value, &v) || v <= 0) {
        fprintf(stderr, "trine consent: %s needs a positive integer, not \"",
                name);
        cli_put_safe(stderr, value);
        fputs("\"\n", stderr);
        return false;
    }
    *out = v;
    return true;
}

/* Parses a --ttl value: whole seconds, or a duration with a unit s, m, h or
 * d (as in the policy language). Returns false on anything else. */
static bool consent_ttl(const char *value, int64_t *out)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t n = strlen(value);
    int64_t mult = 1;
    char num[32];
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, value, n + 1);
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        if (n > 1 && num[n - 1] == units[k].unit) {
            num[n - 1] = '\0';
            mult = units[k].secs;
        }
    }
    int64_t v;
    if (!cli_parse_int64(num, &v) || v <= 0 || v > INT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

/* Parses the flags of one action; `allowed` lists the flags it takes.
 * Returns 0 or CLI_EXIT_USAGE. */
static int consent_parse(int argc, char **argv, const char *allowed,
                         consent_args *a)
{
    static const char *const string_flags[] = {"--socket", "--user", "--agent",
                                               "--server", "--tool"};
    memset(a, 0, sizeof *a);
    a->socket = CONSENT_DEFAULT_SOCKET;
    a->id = -1;
    a->ttl = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_flag(arg, "--json") && strstr(allowed, "--json ")) {
            a->json = true;
            continue;
        }
        /* A bare number stands for the action's id: the decision's audit
         * id for grant, the grant's id for revoke. */
        if (arg[0] != '-' &&
            (strstr(allowed, "--audit-id ") || strstr(allowed, "--id "))) {
            if (a->id > 0) {
                fputs("trine consent: the id is given twice\n", stderr);
                fputs(consent_usage, stderr);
                return CLI_EXIT_USAGE;
            }
            if (!consent_positive("the id", arg, &a->id))
                return CLI_EXIT_USAGE;
            continue;
        }
        const char *value = NULL;
        const char *matched = NULL;
        int rc = 0;
        static const char *const all[] = {
            "--socket", "--user",     "--agent", "--server",    "--tool",
            "--id",     "--audit-id", "--ttl",   "--consent-id"};
        for (size_t k = 0; k < sizeof all / sizeof all[0] && rc == 0; k++) {
            char key[24];
            /* --consent-id is allowed where --id is. */
            snprintf(key, sizeof key, "%s ",
                     strcmp(all[k], "--consent-id") == 0 ? "--id" : all[k]);
            if (strstr(allowed, key) == NULL)
                continue;
            rc = cli_opt_value("consent", argc, argv, &i, all[k], &value);
            if (rc == 1)
                matched = all[k];
        }
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (matched == NULL) {
            fputs(arg[0] == '-' ? "trine consent: unknown option \""
                                : "trine consent: unexpected argument \"",
                  stderr);
            cli_put_safe(stderr, arg);
            fputs("\"\n", stderr);
            fputs(consent_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        const char **slots[] = {&a->socket, &a->user, &a->agent, &a->server,
                                &a->tool};
        bool done = false;
        for (size_t k = 0; k < 5; k++) {
            if (strcmp(matched, string_flags[k]) == 0) {
                if (*value == '\0')
                    return consent_usage_error("an option value is empty");
                *slots[k] = value;
                done = true;
            }
        }
        if (done)
            continue;
        if (strcmp(matched, "--ttl") == 0) {
            if (!consent_ttl(value, &a->ttl)) {
                fputs("trine consent: --ttl needs a positive number of "
                      "seconds or a duration such as 30m, 12h or 7d, not \"",
                      stderr);
                cli_put_safe(stderr, value);
                fputs("\"\n", stderr);
                return CLI_EXIT_USAGE;
            }
            continue;
        }
        if (a->id > 0) {
            fputs("trine consent: the id is given twice\n", stderr);
            fputs(consent_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        if (!consent_positive(matched, value, &a->id))
            return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Connects to the daemon, with send and receive timeouts. Returns the
 * socket, or -1 after a message. */
static int consent_connect(const char *path)
{
    char err[512];
    int fd = cli_unix_connect(path, err, sizeof err);
    if (fd < 0) {
        fputs("trine consent: ", stderr);
        cli_put_safe(stderr, err);
        fputs(" (is trined running?)\n", stderr);
        return -1;
    }
    struct timeval tv = {.tv_sec = CONSENT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends one request and reads its reply line. Returns the parsed reply,
 * or NULL after a message with *status set (3: no daemon, 1: bad reply). */
static json_t *consent_call(const char *path, const char *method,
                            json_t *params, int *status)
{
    *status = CLI_EXIT_FAIL;
    json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1,
                            "method", method, "params", params);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL) {
        fputs("trine consent: out of memory\n", stderr);
        return NULL;
    }
    int fd = consent_connect(path);
    if (fd < 0) {
        free(text);
        *status = CLI_EXIT_USAGE;
        return NULL;
    }
    size_t len = strlen(text);
    text[len] = '\n';
    size_t off = 0;
    while (off < len + 1) {
        ssize_t n = send(fd, text + off, len + 1 - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "trine consent: cannot send to the daemon: %s\n",
                    strerror(errno));
            free(text);
            close(fd);
            return NULL;
        }
        off += (size_t)n;
    }
    free(text);

    char *buf = NULL;
    size_t blen = 0;
    size_t cap = 0;
    char *nl = NULL;
    while (nl == NULL) {
        if (cap - blen < 4096) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *p = ncap <= CONSENT_REPLY_MAX ? realloc(buf, ncap) : NULL;
            if (p == NULL) {
                fputs("trine consent: the reply is too large\n", stderr);
                break;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + blen, cap - blen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "trine consent: %s\n",
                    n == 0 ? "the daemon closed the connection without a "
                             "reply"
                           : strerror(errno));
            break;
        }
        nl = memchr(buf + blen, '\n', (size_t)n);
        blen += (size_t)n;
    }
    close(fd);
    json_t *reply = NULL;
    if (nl != NULL) {
        char err[256];
        reply = cli_parse_json(buf, (size_t)(nl - buf), err, sizeof err);
        if (reply == NULL)
            fprintf(stderr, "trine consent: unreadable reply: %s\n", err);
    }
    free(buf);
    return reply;
}

/* Returns the reply's result, or NULL after printing its error. */
static const json_t *consent_result(const json_t *reply)
{
    const json_t *res = json_object_get(reply, "result");
    if (json_is_object(res))
        return res;
    const json_t *e = json_object_get(reply, "error");
    const json_t *msg = json_object_get(e, "message");
    fprintf(stderr, "trine consent: the daemon refused (%lld): ",
            (long long)json_integer_value(json_object_get(e, "code")));
    cli_put_safe(stderr,
                 json_is_string(msg) ? json_string_value(msg) : "no message");
    fputs("\n", stderr);
    return NULL;
}

static void consent_put_time(const json_t *ms)
{
    if (!json_is_integer(ms)) {
        fputs("never", stdout);
        return;
    }
    time_t secs = (time_t)(json_integer_value(ms) / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&secs, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fputs(buf, stdout);
}

static void consent_put_field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cli_put_safe(stdout, json_is_string(v) ? json_string_value(v) : "-");
}

static void consent_print_list(const json_t *res)
{
    const json_t *arr = json_object_get(res, "consents");
    if (json_array_size(arr) == 0) {
        puts("no live consent grants");
        return;
    }
    puts("ID\tUSER\tAGENT\tSERVER\tTOOL\tMODE\tSESSION\tGRANTED\tEXPIRES");
    size_t i;
    const json_t *g;
    json_array_foreach(arr, i, g)
    {
        printf("%lld\t",
               (long long)json_integer_value(json_object_get(g, "id")));
        static const char *const keys[] = {"user", "agent", "server",
                                           "tool", "mode",  "session"};
        for (size_t k = 0; k < 6; k++) {
            consent_put_field(g, keys[k]);
            fputc('\t', stdout);
        }
        consent_put_time(json_object_get(g, "granted_ms"));
        fputc('\t', stdout);
        consent_put_time(json_object_get(g, "expires_ms"));
        fputc('\n', stdout);
    }
}

static int consent_run(const consent_args *a, const char *method,
                       json_t *params, const char *action)
{
    int status;
    json_t *reply = consent_call(a->socket, method, params, &status);
    if (reply == NULL)
        return status;
    const json_t *res = consent_result(reply);
    if (res == NULL) {
        json_decref(reply);
        return CLI_EXIT_FAIL;
    }
    if (a->json) {
        cli_put_json(stdout, res);
        fputc('\n', stdout);
    } else if (strcmp(action, "list") == 0) {
        consent_print_list(res);
    } else if (strcmp(action, "grant") == 0) {
        printf(
            "granted consent %lld\n",
            (long long)json_integer_value(json_object_get(res, "consent_id")));
    } else {
        long long n =
            (long long)json_integer_value(json_object_get(res, "revoked"));
        printf("revoked %lld consent grant%s\n", n, n == 1 ? "" : "s");
    }
    json_decref(reply);
    return CLI_EXIT_OK;
}

/* Adds key: value to o when value is given. Returns false on OOM. */
static bool consent_put(json_t *o, const char *key, const char *value)
{
    if (value == NULL)
        return true;
    return json_object_set_new(o, key, json_string(value)) == 0;
}

int cmd_consent(int argc, char **argv)
{
    if (argc < 2) {
        fputs(consent_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = argv[1];
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            fputs(consent_usage, stdout);
            return CLI_EXIT_OK;
        }
    }
    consent_args a;
    json_t *params = json_object();
    if (params == NULL) {
        fputs("trine consent: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    int rc;
    bool ok = true;
    const char *method;
    if (strcmp(action, "list") == 0) {
        rc = consent_parse(argc - 1, argv + 1,
                           "--socket --user --agent --json ", &a);
        if (rc != 0)
            goto usage;
        ok = consent_put(params, "user", a.user) &&
             consent_put(params, "agent", a.agent);
        method = "consent.list";
    } else if (strcmp(action, "grant") == 0) {
        rc = consent_parse(argc - 1, argv + 1,
                           "--socket --audit-id --ttl --json ", &a);
        if (rc != 0)
            goto usage;
        if (a.id < 0) {
            json_decref(params);
            return consent_usage_error("grant needs --audit-id N");
        }
        ok = json_object_set_new(params, "audit_id", json_integer(a.id)) == 0;
        if (a.ttl > 0)
            ok = ok &&
                 json_object_set_new(params, "ttl", json_integer(a.ttl)) == 0;
        method = "consent.grant";
    } else if (strcmp(action, "revoke") == 0) {
        rc = consent_parse(argc - 1, argv + 1,
                           "--socket --id --user --agent --server --tool "
                           "--json ",
                           &a);
        if (rc != 0)
            goto usage;
        const char *why = NULL;
        if (a.id > 0 && a.user != NULL)
            why = "revoke takes --id or --user, not both";
        else if (a.id < 0 && a.user == NULL)
            why = "revoke needs --id N or --user U";
        else if (a.id > 0 && (a.agent || a.server || a.tool))
            why = "--agent, --server and --tool narrow --user, not --id";
        if (why != NULL) {
            json_decref(params);
            return consent_usage_error(why);
        }
        if (a.id > 0)
            ok = json_object_set_new(params, "consent_id",
                                     json_integer(a.id)) == 0;
        else
            ok = consent_put(params, "user", a.user) &&
                 consent_put(params, "agent", a.agent) &&
                 consent_put(params, "server", a.server) &&
                 consent_put(params, "tool", a.tool);
        method = "consent.revoke";
    } else {
        json_decref(params);
        fputs("trine consent: unknown action \"", stderr);
        cli_put_safe(stderr, action);
        fputs("\"\n", stderr);
        fputs(consent_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!ok) {
        json_decref(params);
        fputs("trine consent: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    /* consent_call takes params. */
    return consent_run(&a, method, params, action);
usage:
    json_decref(params);
    return rc;
}
