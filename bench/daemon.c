/*
 * daemon.c - end-to-end throughput and latency of trined.
 *
 * A load generator: N connections, each keeping D requests in flight (the
 * pipeline depth), sending the check of DESIGN.md section 3.1 in a variant
 * that is allowed (a session consent is granted first). It measures checks
 * per second and the p50/p99 latency of each request (from the write that
 * sent it to the read that brought its reply).
 *
 * In the same run it puts the same load on two baseline servers, each on
 * its own temporary Unix socket, to show what the machine can do at all:
 *  - echo: one thread, epoll, sends every line back;
 *  - json: as many threads as trined has workers, each parses every line
 *    with jansson and writes a JSON reply of the same size as trined's.
 * and prints trined's throughput divided by each.
 *
 * trined is either started here (--trined PATH --policy DIR: a temporary
 * socket and audit database, --audit-sync full) or already running
 * (--socket PATH).
 *
 * Targets: >= 50,000 checks/s at 16 connections x depth 1 with p99 < 2 ms;
 * >= 60% of the json baseline; >= 80,000 checks/s at 16 x 16.
 */
#include "lib/util.h"
#include "support/baseline.h"
#include "support/loadgen.h"
#include "support/net.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 8

/* The params of the section 3.1 request; the session is our own so that a
 * session grant turns the decision into an allow. */
static const char *CHECK_PARAMS =
    "{\"server\":\"github\",\"tool\":\"create_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\","
    "\"title\":\"Crash on start\"},"
    "\"session\":\"mcp-session-bench\","
    "\"token\":{\"sub\":\"alice\",\"scope\":\"repo:read repo:write\","
    "\"client_id\":\"claude-desktop\","
    "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000,"
    "\"groups\":[\"acme-eng\"]}}";

/* An allowed request without consent, used if granting fails. */
static const char *FALLBACK_PARAMS =
    "{\"server\":\"github\",\"tool\":\"get_issue\","
    "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\"},"
    "\"session\":\"mcp-session-bench\","
    "\"token\":{\"sub\":\"alice\",\"scope\":\"repo:read repo:write\","
    "\"client_id\":\"claude-desktop\","
    "\"aud\":\"https://mcp.example.com/github\",\"exp\":1893456000,"
    "\"groups\":[\"acme-eng\"]}}";

typedef struct options {
    const char *socket;
    const char *trined;
    const char *policy;
    const char *sync; /* trined's --audit-sync */
    int conns[MAX_LIST];
    int nconns;
    int depths[MAX_LIST];
    int ndepths;
    double seconds;
    double warmup;
    int workers;
    int client_threads;
    bool baselines;
    bool keep;
} options;

/* ---- trined ------------------------------------------------------------ */

typedef struct trined_proc {
    pid_t pid;
    char dir[64];
    char sock[128];
    char audit[128];
    char log[128];
} trined_proc;

static int trined_start(const options *o, trined_proc *tp)
{
    strcpy(tp->dir, "/tmp/trine-bench-XXXXXX");
    if (mkdtemp(tp->dir) == NULL) {
        perror("daemon: mkdtemp");
        return -1;
    }
    snprintf(tp->sock, sizeof tp->sock, "%s/trine.sock", tp->dir);
    snprintf(tp->audit, sizeof tp->audit, "%s/audit.db", tp->dir);
    snprintf(tp->log, sizeof tp->log, "%s/trined.log", tp->dir);
    char workers[16];
    snprintf(workers, sizeof workers, "%d", o->workers);
    tp->pid = fork();
    if (tp->pid < 0) {
        perror("daemon: fork");
        return -1;
    }
    if (tp->pid == 0) {
        int fd = open(tp->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (o->workers > 0)
            execl(o->trined, o->trined, "--policy", o->policy, "--socket",
                  tp->sock, "--audit", tp->audit, "--audit-sync", o->sync,
                  "--workers", workers, (char *)NULL);
        else
            execl(o->trined, o->trined, "--policy", o->policy, "--socket",
                  tp->sock, "--audit", tp->audit, "--audit-sync", o->sync,
                  (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        int st;
        if (waitpid(tp->pid, &st, WNOHANG) == tp->pid) {
            fprintf(stderr, "daemon: trined exited at start (see %s)\n",
                    tp->log);
            tp->pid = -1;
            return -1;
        }
        int fd = bench_unix_connect(tp->sock);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        bench_sleep_s(0.01);
    }
    fprintf(stderr, "daemon: trined did not listen within 30 s\n");
    return -1;
}

/* Stops trined with SIGTERM; returns its exit status (or -1). */
static int trined_stop(const options *o, trined_proc *tp)
{
    int status = -1;
    if (tp->pid > 0) {
        kill(tp->pid, SIGTERM);
        for (int i = 0; i < 6000; i++) {
            int st;
            if (waitpid(tp->pid, &st, WNOHANG) == tp->pid) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            bench_sleep_s(0.01);
        }
        if (status < 0) {
            kill(tp->pid, SIGKILL);
            waitpid(tp->pid, NULL, 0);
        }
    }
    if (!o->keep && tp->dir[0] != '\0') {
        static const char *files[] = {"trine.sock", "audit.db", "audit.db-wal",
                                      "audit.db-shm", "trined.log"};
        char p[192];
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            snprintf(p, sizeof p, "%s/%s", tp->dir, files[i]);
            unlink(p);
        }
        rmdir(tp->dir);
    }
    return status;
}

/* Sends one request line and returns the reply (caller decrefs), or NULL. */
static json_t *rpc_call(int fd, const char *line)
{
    if (bench_write_all(fd, line, strlen(line)) != 0)
        return NULL;
    strbuf b;
    sb_init(&b);
    for (;;) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sb_free(&b);
            return NULL;
        }
        if (c == '\n')
            break;
        sb_putc(&b, c);
    }
    json_error_t err;
    json_t *r = b.oom ? NULL : json_loadb(b.data, b.len, 0, &err);
    sb_free(&b);
    return r;
}

static const char *reply_decision(json_t *r)
{
    return json_string_value(
        json_object_get(json_object_get(r, "result"), "decision"));
}

/*
 * Makes the section 3.1 request an allowed one (grants the session consent
 * that it asks for) and measures the size of trined's reply to it. Sets
 * *params to the request params to send. Returns 0 or -1.
 */
static int prepare_trined(const char *path, const char **params,
                          size_t *reply_size)
{
    int fd = bench_unix_connect(path);
    if (fd < 0) {
        fprintf(stderr, "daemon: cannot connect to %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    char line[2048];
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"check\","
             "\"params\":%s}\n",
             CHECK_PARAMS);
    json_t *r = rpc_call(fd, line);
    const char *dec = reply_decision(r);
    if (dec != NULL && strcmp(dec, "consent_required") == 0) {
        json_int_t aid = json_integer_value(
            json_object_get(json_object_get(r, "result"), "audit_id"));
        char grant[256];
        snprintf(grant, sizeof grant,
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"consent.grant\","
                 "\"params\":{\"audit_id\":%lld}}\n",
                 (long long)aid);
        json_decref(rpc_call(fd, grant));
        json_decref(r);
        r = rpc_call(fd, line);
        dec = reply_decision(r);
    }
    *params = CHECK_PARAMS;
    if (dec == NULL || strcmp(dec, "allow") != 0) {
        fprintf(stderr,
                "daemon: the 3.1 request is not allowed (%s); "
                "using get_issue instead\n",
                dec ? dec : "no decision");
        json_decref(r);
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"check\","
                 "\"params\":%s}\n",
                 FALLBACK_PARAMS);
        r = rpc_call(fd, line);
        dec = reply_decision(r);
        *params = FALLBACK_PARAMS;
        if (dec == NULL || strcmp(dec, "allow") != 0) {
            fprintf(stderr, "daemon: no allowed request; is this the "
                            "github example policy?\n");
            json_decref(r);
            close(fd);
            return -1;
        }
    }
    char *text = json_dumps(r, JSON_COMPACT);
    *reply_size = text ? strlen(text) : 300;
    free(text);
    json_decref(r);
    close(fd);
    return 0;
}

/* ---- main -------------------------------------------------------------- */

static int parse_list(const char *flag, const char *v, int *out, int *n)
{
    *n = 0;
    const char *p = v;
    while (*p != '\0') {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno != 0 || end == p || x < 1 || x > 100000 || *n == MAX_LIST ||
            (*end != ',' && *end != '\0')) {
            fprintf(stderr,
                    "daemon: %s needs positive integers, "
                    "comma-separated\n",
                    flag);
            return -1;
        }
        out[(*n)++] = (int)x;
        p = *end == ',' ? end + 1 : end;
    }
    return *n > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: daemon (--socket PATH | --trined PATH --policy DIR)\n"
               "              [--conns N[,N...]] [--depth D[,D...]]\n"
               "              [--seconds S] [--warmup S] [--workers N]\n"
               "              [--client-threads N] [--audit-sync full|normal]\n"
               "              [--no-baselines] [--keep]\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->conns[0] = 16;
    o->nconns = 1;
    o->depths[0] = 1;
    o->depths[1] = 16;
    o->ndepths = 2;
    o->seconds = 5;
    o->warmup = 1;
    o->client_threads = 1;
    o->baselines = true;
    o->sync = "full";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--no-baselines") == 0) {
            o->baselines = false;
            continue;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "daemon: unknown or incomplete option %s\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--socket") == 0) {
            o->socket = v;
        } else if (strcmp(a, "--trined") == 0) {
            o->trined = v;
        } else if (strcmp(a, "--policy") == 0) {
            o->policy = v;
        } else if (strcmp(a, "--audit-sync") == 0) {
            if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0) {
                fprintf(stderr, "daemon: --audit-sync is full or normal\n");
                return -1;
            }
            o->sync = v;
        } else if (strcmp(a, "--conns") == 0) {
            if (parse_list(a, v, o->conns, &o->nconns) != 0)
                return -1;
        } else if (strcmp(a, "--depth") == 0) {
            if (parse_list(a, v, o->depths, &o->ndepths) != 0)
                return -1;
        } else if (strcmp(a, "--seconds") == 0 || strcmp(a, "--warmup") == 0) {
            char *end;
            double x = strtod(v, &end);
            if (*end != '\0' || x < 0 || x > 3600 || (x == 0 && a[2] == 's')) {
                fprintf(stderr, "daemon: %s needs a number of seconds\n", a);
                return -1;
            }
            if (a[2] == 's')
                o->seconds = x;
            else
                o->warmup = x;
        } else if (strcmp(a, "--workers") == 0 ||
                   strcmp(a, "--client-threads") == 0) {
            int n[MAX_LIST], k;
            if (parse_list(a, v, n, &k) != 0 || k != 1)
                return -1;
            if (a[2] == 'w')
                o->workers = n[0];
            else
                o->client_threads = n[0];
        } else {
            fprintf(stderr, "daemon: unknown option %s\n", a);
            return -1;
        }
    }
    if ((o->socket == NULL) == (o->trined == NULL) ||
        (o->trined != NULL && o->policy == NULL)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static void print_result(const char *name, const load_result *r)
{
    printf("  %-16s %12.0f %10.0f %10.0f", name, r->rate, r->p50_us, r->p99_us);
    if (r->bad > 0)
        printf("   (%llu of %llu replies not allow)",
               (unsigned long long)r->bad, (unsigned long long)r->replies);
    printf("\n");
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int baseline_threads =
        o.workers > 0 ? o.workers : (int)(ncpu > 0 ? ncpu : 1);
    trined_proc tp;
    memset(&tp, 0, sizeof tp);
    const char *path = o.socket;
    int status = 0;
    if (o.trined != NULL) {
        if (trined_start(&o, &tp) != 0) {
            trined_stop(&o, &tp);
            return 1;
        }
        path = tp.sock;
    }
    const char *params = NULL;
    size_t reply_size = 0;
    if (prepare_trined(path, &params, &reply_size) != 0) {
        if (o.trined != NULL)
            trined_stop(&o, &tp);
        return 1;
    }

    baseline_server echo, js;
    char sdir[64] = "/tmp/trine-bench-srv-XXXXXX";
    bool have_servers = false;
    if (o.baselines) {
        if (mkdtemp(sdir) == NULL ||
            baseline_start(&echo, sdir, "echo", 1, BASELINE_ECHO, 0) != 0) {
            perror("daemon: echo server");
            status = 1;
            goto done;
        }
        if (baseline_start(&js, sdir, "json", baseline_threads, BASELINE_JSON,
                           reply_size) != 0) {
            perror("daemon: json server");
            baseline_stop(&echo);
            status = 1;
            goto done;
        }
        have_servers = true;
    }

    printf("trine daemon benchmark: %.1f s per measurement after %.1f s "
           "warm-up;\nrequest %zu bytes (%s), trined reply %zu bytes; "
           "json baseline threads %d\n",
           o.seconds, o.warmup, strlen(params) + 48,
           params == CHECK_PARAMS ? "3.1 create_issue with session consent"
                                  : "get_issue",
           reply_size, baseline_threads);
    if (o.trined != NULL)
        printf("trined started here with --audit-sync %s\n", o.sync);
    load_opts lo = {.warmup = o.warmup,
                    .seconds = o.seconds,
                    .client_threads = o.client_threads};
    for (int ci = 0; ci < o.nconns; ci++) {
        for (int di = 0; di < o.ndepths; di++) {
            int nc = o.conns[ci], dp = o.depths[di];
            load_result rt, re, rj;
            memset(&re, 0, sizeof re);
            memset(&rj, 0, sizeof rj);
            printf("\n%d connections x depth %d\n", nc, dp);
            printf("  %-16s %12s %10s %10s\n", "server", "requests/s", "p50 us",
                   "p99 us");
            if (load_run(&lo, path, params, nc, dp, true, &rt) != 0) {
                status = 1;
                continue;
            }
            print_result("trined", &rt);
            if (rt.bad > 0)
                status = 1;
            fflush(stdout);
            if (!have_servers)
                continue;
            if (load_run(&lo, echo.path, params, nc, dp, false, &re) == 0)
                print_result("echo baseline", &re);
            fflush(stdout);
            if (load_run(&lo, js.path, params, nc, dp, false, &rj) == 0)
                print_result("json baseline", &rj);
            printf("  trined / echo: %.2f   trined / json: %.2f\n",
                   re.rate > 0 ? rt.rate / re.rate : 0.0,
                   rj.rate > 0 ? rt.rate / rj.rate : 0.0);
            if (nc == 16 && dp == 1) {
                printf("  target >= 50,000 checks/s: %s; p99 < 2 ms: %s; "
                       ">= 60%% of json: %s\n",
                       rt.rate >= 50000 ? "PASS" : "FAIL",
                       rt.p99_us < 2000 ? "PASS" : "FAIL",
                       rj.rate > 0 && rt.rate >= 0.6 * rj.rate ? "PASS"
                                                               : "FAIL");
            } else if (nc == 16 && dp == 16) {
                printf("  target >= 80,000 checks/s: %s\n",
                       rt.rate >= 80000 ? "PASS" : "FAIL");
            }
            fflush(stdout);
        }
    }
    if (have_servers) {
        baseline_stop(&echo);
        baseline_stop(&js);
        rmdir(sdir);
    }
done:
    if (o.trined != NULL) {
        int st = trined_stop(&o, &tp);
        printf("\ntrined exited with status %d on SIGTERM%s\n", st,
               o.keep ? "" : "; temporary files removed");
        if (st != 0)
            status = 1;
    }
    return status;
}
