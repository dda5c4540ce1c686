/*
 * proxy.c - `trine proxy`: an MCP stdio proxy that puts trine in front of
 * any stdio MCP server (DESIGN §6, docs/cli.md).
 *
 *   trine proxy --socket PATH --server NAME [--claims FILE]
 *               [--max-message BYTES] -- CMD [ARGS...]
 *
 * It starts CMD with pipes on its stdin and stdout (its stderr is ours),
 * and relays MCP's stdio transport between our stdin/stdout (the client)
 * and the child (the server). Every tools/call is checked with trined
 * first (proxy_flow.c decides; proxy_msg.c reads and builds messages).
 * This file holds the command line, the identity, the child process,
 * signals and the poll(2) loop; proxy_io.c the buffers and the framing,
 * proxy_daemon.c the socket to trined.
 *
 * Exit status: the child's (128 + N when signal N ended it); 3 for a usage
 * error or no usable identity; 126 or 127 when CMD cannot be run; 1 when
 * the proxy itself fails (out of memory, poll failing).
 */
#include "cli/cli.h"
#include "cli/proxy.h"
#include "cli/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROXY_DEFAULT_MAX_MESSAGE (64u * 1024u * 1024u)
#define PROXY_MIN_MAX_MESSAGE 1024
#define PROXY_MAX_MAX_MESSAGE (1024u * 1024u * 1024u)
/* Reading from one side pauses while this much waits for the other. */
#define PROXY_HIGH_WATER (4u * 1024u * 1024u)
/* After the client's EOF: how long the server has to exit before SIGTERM,
 * and then before SIGKILL (the MCP stdio transport's shutdown). */
#define PROXY_TERM_AFTER_MS 5000
#define PROXY_KILL_AFTER_MS 5000
/* After the child exits: how long to wait for the rest of its output, and
 * then for the client to read ours. */
#define PROXY_DRAIN_MS 2000
#define PROXY_FLUSH_MS 3000

static const char proxy_usage[] =
    "usage: trine proxy --socket PATH --server NAME [--claims FILE]\n"
    "                   [--max-message BYTES] -- CMD [ARGS...]\n"
    "\n"
    "Runs the MCP server CMD on stdio and relays its traffic, asking trined\n"
    "(on --socket) about every tools/call first.\n"
    "  --server NAME        the server's name in the policy\n"
    "  --claims FILE        the token claims to check with (a JSON object);\n"
    "                       else $TRINE_BEARER (an access token trined\n"
    "                       verifies) or $TRINE_CLAIMS (claims as JSON)\n"
    "  --max-message BYTES  the longest message taken from the client\n"
    "                       (default 67108864)\n"
    "exit status: the server's (128+N for signal N), 3 usage error or no\n"
    "identity, 126/127 CMD cannot be run, 1 the proxy failed\n";

/* ---- Small helpers ------------------------------------------------------ */

void proxy_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs("trine proxy: ", stderr);
    cli_put_safe(stderr, msg);
    fputc('\n', stderr);
}

int64_t proxy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The command line and the identity ---------------------------------- */

typedef struct proxy_args {
    const char *socket;
    const char *server;
    const char *claims;
    const char *max_message;
    int cmd; /* index of CMD in argv; 0 when absent */
} proxy_args;

/* Parses the flags; returns 0, 1 after --help, or -1 after a message. */
static int proxy_parse_args(int argc, char **argv, proxy_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_flag(arg, "--")) {
            a->cmd = i + 1 < argc ? i + 1 : 0;
            break;
        }
        if (cli_flag(arg, "--help") || cli_flag(arg, "-h")) {
            fputs(proxy_usage, stdout);
            return 1;
        }
        if (arg[0] != '-') {
            a->cmd = i;
            break;
        }
        const char *names[] = {"--socket", "--server", "--claims",
                               "--max-message"};
        const char **dest[] = {&a->socket, &a->server, &a->claims,
                               &a->max_message};
        int r = 0;
        for (size_t k = 0; k < 4 && r == 0; k++)
            r = cli_opt_value("proxy", argc, argv, &i, names[k], dest[k]);
        if (r < 0)
            return -1;
        if (r == 0) {
            fputs("trine proxy: unknown option \"", stderr);
            cli_put_safe(stderr, arg);
            fputs("\"\n", stderr);
            fputs(proxy_usage, stderr);
            return -1;
        }
    }
    const char *missing = a->socket == NULL   ? "--socket PATH"
                          : a->server == NULL ? "--server NAME"
                          : a->cmd == 0       ? "the server command (after --)"
                                              : NULL;
    if (missing != NULL) {
        fprintf(stderr, "trine proxy: %s is required\n", missing);
        fputs(proxy_usage, stderr);
        return -1;
    }
    if (a->socket[0] == '\0' || a->server[0] == '\0') {
        fprintf(stderr, "trine proxy: %s must not be empty\n",
                a->socket[0] == '\0' ? "--socket" : "--server");
        return -1;
    }
    return 0;
}

/* Parses claims text from source (a file or an environment variable).
 * Returns the object, or NULL after a message naming the source. */
static json_t *proxy_parse_claims(const char *source, const char *text,
                                  size_t len)
{
    char err[256];
    json_t *v = cli_parse_json(text, len, err, sizeof err);
    if (v == NULL) {
        fprintf(stderr, "trine proxy: %s is not valid JSON: ", source);
        cli_put_safe(stderr, err);
        fputc('\n', stderr);
        return NULL;
    }
    if (!json_is_object(v)) {
        fprintf(stderr,
                "trine proxy: %s must be a JSON object (the token's "
                "claims)\n",
                source);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Loads the identity every check carries: --claims FILE, else
 * $TRINE_BEARER, else $TRINE_CLAIMS. Both variables are then removed from
 * the environment, so the server never sees them. Returns 0, or -1 after
 * a message. */
static int proxy_identity(proxy *px, const char *claims_path, char **bearer)
{
    const char *env_bearer = getenv("TRINE_BEARER");
    const char *env_claims = getenv("TRINE_CLAIMS");
    int rc = 0;
    if (claims_path != NULL) {
        char *buf = NULL;
        size_t len = 0;
        if (cli_read_file(claims_path, &buf, &len) != 0) {
            fputs("trine proxy: --claims: cannot read ", stderr);
            cli_put_safe(stderr, claims_path);
            fprintf(stderr, ": %s\n", strerror(errno));
            return -1;
        }
        char source[600];
        snprintf(source, sizeof source, "--claims %s", claims_path);
        px->claims = proxy_parse_claims(source, buf, len);
        free(buf);
        rc = px->claims != NULL ? 0 : -1;
    } else if (env_bearer != NULL && env_claims != NULL) {
        fputs("trine proxy: TRINE_BEARER and TRINE_CLAIMS are both set; set "
              "one of them (or give --claims FILE)\n",
              stderr);
        rc = -1;
    } else if (env_bearer != NULL) {
        if (env_bearer[0] == '\0') {
            fputs("trine proxy: TRINE_BEARER is empty\n", stderr);
            rc = -1;
        } else {
            *bearer = strdup(env_bearer);
            rc = *bearer != NULL ? 0 : -1;
            if (rc != 0)
                fputs("trine proxy: out of memory\n", stderr);
        }
    } else if (env_claims != NULL) {
        px->claims =
            proxy_parse_claims("TRINE_CLAIMS", env_claims, strlen(env_claims));
        rc = px->claims != NULL ? 0 : -1;
    } else {
        fputs("trine proxy: no identity to check calls with: give --claims "
              "FILE (token claims as a JSON object), or set TRINE_BEARER (an "
              "access token) or TRINE_CLAIMS (claims as JSON)\n",
              stderr);
        rc = -1;
    }
    unsetenv("TRINE_BEARER");
    unsetenv("TRINE_CLAIMS");
    px->who.claims = px->claims;
    px->who.bearer = *bearer;
    return rc;
}

/* Fills the session id (128 bits) and the elicitation nonce (64 bits)
 * from getrandom(2). Returns 0, or -1 after a message. */
static int proxy_random(proxy *px)
{
    unsigned char r[24];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "trine proxy: getrandom: %s\n", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < 16; i++)
        snprintf(px->session + 2 * i, 3, "%02x", r[i]);
    for (size_t i = 0; i < 8; i++)
        snprintf(px->nonce + 2 * i, 3, "%02x", r[16 + i]);
    return 0;
}

/* ---- Signals and the child ---------------------------------------------- */

static int signal_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write(signal_fd, &c, 1) < 0) {
        /* The pipe is full: a wake-up is already pending. */
    }
    errno = saved;
}

static int set_flags(int fd, int add)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | add);
}

static int set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Installs the handlers that write to the self-pipe. Returns its read end,
 * or -1. */
static int proxy_signals(void)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        if (set_cloexec(p[k]) != 0 || set_flags(p[k], O_NONBLOCK) != 0) {
            close(p[0]);
            close(p[1]);
            return -1;
        }
    }
    signal_fd = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return p[0];
}

/* Closes every descriptor from `from` up except keep, in the child before
 * exec. */
static void close_others(int from, int keep)
{
#ifdef SYS_close_range
    if ((keep <= from || syscall(SYS_close_range, (unsigned)from,
                                 (unsigned)keep - 1, 0) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = from; fd < max; fd++) {
        if (fd != keep)
            close(fd);
    }
}

/* Starts argv as the child with pipes on its stdin and stdout; its stderr
 * is ours, every other descriptor is closed. Returns 0, or the exit status
 * to end with after a message. */
static int proxy_spawn(proxy *px, char **argv)
{
    int in[2], out[2], ep[2];
    if (pipe(in) != 0 || pipe(out) != 0 || pipe(ep) != 0) {
        fprintf(stderr, "trine proxy: pipe: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    /* ep carries exec's errno back; its write end closes on a good exec. */
    set_cloexec(ep[0]);
    set_cloexec(ep[1]);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "trine proxy: fork: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (pid == 0) {
        int err = 0;
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            err = errno;
        close_others(3, ep[1]);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (err == 0) {
            execvp(argv[0], argv);
            err = errno;
        }
        if (write(ep[1], &err, sizeof err) < 0) {
            /* The parent sees the exit status alone. */
        }
        _exit(err == ENOENT ? 127 : 126);
    }
    close(in[0]);
    close(out[1]);
    close(ep[1]);
    px->child = pid;
    px->child_in = in[1];
    px->sout.fd = out[0];
    int err = 0;
    ssize_t n;
    do {
        n = read(ep[0], &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof err) {
        fputs("trine proxy: cannot run ", stderr);
        cli_put_safe(stderr, argv[0]);
        fprintf(stderr, ": %s\n", strerror(err));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        px->child_exited = true;
        return err == ENOENT ? 127 : 126;
    }
    if (set_cloexec(in[1]) != 0 || set_cloexec(out[0]) != 0 ||
        set_flags(in[1], O_NONBLOCK) != 0 ||
        set_flags(out[0], O_NONBLOCK) != 0) {
        fprintf(stderr, "trine proxy: fcntl: %s\n", strerror(errno));
        kill(pid, SIGTERM);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* Records the child's exit status when it has ended. */
static void proxy_reap(proxy *px)
{
    int st;
    pid_t r;
    do {
        r = waitpid(px->child, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != px->child)
        return;
    px->child_exited = true;
    if (WIFEXITED(st))
        px->child_status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        px->child_status = 128 + WTERMSIG(st);
    else
        px->child_status = CLI_EXIT_FAIL;
}

/* ---- The loop ----------------------------------------------------------- */

static void server_oversize(proxy *px)
{
    proxy_log("dropped a message from the server longer than "
              "--max-message (%zu bytes)",
              px->max_message);
}

/* True while reading the client should wait for the other side. Unless
 * the client is not reading, it is always read while a call waits for its
 * consent answer. */
static bool client_paused(const proxy *px)
{
    /* A client that does not read its answers is not read either. */
    if (proxy_buf_pending(&px->cout) > PROXY_HIGH_WATER)
        return true;
    if (px->head != NULL && px->head->step == STEP_ELICIT)
        return false;
    return proxy_buf_pending(&px->sin) > PROXY_HIGH_WATER ||
           px->queued_bytes > PROXY_HIGH_WATER;
}

/* Marks the client gone (input closed or output broken). */
static void client_closed(proxy *px)
{
    if (px->client_eof)
        return;
    px->client_eof = true;
    proxy_client_gone(px);
}

/* Adds a descriptor to the poll set; returns its index or -1. */
static int watch(struct pollfd *pf, nfds_t *n, int fd, short events)
{
    if (fd < 0 || events == 0)
        return -1;
    pf[*n].fd = fd;
    pf[*n].events = events;
    pf[*n].revents = 0;
    return (int)(*n)++;
}

static int64_t earliest(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Handles what the self-pipe carries: SIGCHLD reaps, the others are
 * passed on to the child. Returns the time to escalate to SIGKILL. */
static void proxy_on_signals(proxy *px, int sig_r, int64_t *kill_at)
{
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(sig_r, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGCHLD) {
                proxy_reap(px);
            } else if (!px->child_exited) {
                kill(px->child, sigs[i]);
                if (*kill_at < 0)
                    *kill_at = proxy_now_ms() + PROXY_KILL_AFTER_MS;
            }
        }
    }
    proxy_reap(px);
}

static int proxy_loop(proxy *px, int sig_r)
{
    int64_t term_at = -1, kill_at = -1, drain_at = -1;
    for (;;) {
        int64_t now = proxy_now_ms();
        if (px->fatal) {
            proxy_log("out of memory; stopping the server");
            if (!px->child_exited)
                kill(px->child, SIGTERM);
            return CLI_EXIT_FAIL;
        }
        /* The client is done and everything it sent is delivered: close
         * the server's stdin and give it time to exit. */
        if (px->client_eof && px->head == NULL && px->child_in >= 0 &&
            proxy_buf_pending(&px->sin) == 0) {
            close(px->child_in);
            px->child_in = -1;
            term_at = now + PROXY_TERM_AFTER_MS;
        }
        if (px->child_exited) {
            if (drain_at < 0)
                drain_at = now + PROXY_DRAIN_MS;
            bool drained = px->sout.eof || now >= drain_at;
            bool flushed = px->cout_dead || proxy_buf_pending(&px->cout) == 0 ||
                           now >= drain_at + PROXY_FLUSH_MS;
            if (drained && flushed)
                return px->child_status;
        } else if (term_at >= 0 && now >= term_at) {
            kill(px->child, SIGTERM);
            term_at = -1;
            kill_at = now + PROXY_KILL_AFTER_MS;
        } else if (kill_at >= 0 && now >= kill_at) {
            kill(px->child, SIGKILL);
            kill_at = -1;
        }

        struct pollfd pf[6];
        nfds_t n = 0;
        int i_sig = watch(pf, &n, sig_r, POLLIN);
        int i_cin = -1;
        if (!px->client_eof && !px->child_exited && !client_paused(px))
            i_cin = watch(pf, &n, STDIN_FILENO, POLLIN);
        int i_cout = -1;
        if (!px->cout_dead && proxy_buf_pending(&px->cout) > 0)
            i_cout = watch(pf, &n, STDOUT_FILENO, POLLOUT);
        int i_sin = -1;
        if (proxy_buf_pending(&px->sin) > 0)
            i_sin = watch(pf, &n, px->child_in, POLLOUT);
        int i_sout = -1;
        if (!px->sout.eof && proxy_buf_pending(&px->cout) < PROXY_HIGH_WATER)
            i_sout = watch(pf, &n, px->sout.fd, POLLIN);
        short dev = POLLIN;
        if (proxy_buf_pending(&px->d.out) > 0)
            dev |= POLLOUT;
        int i_d = watch(pf, &n, px->d.fd, dev);

        int64_t until = -1;
        if (px->d.waiting)
            until = px->d.deadline_ms;
        until = earliest(until, term_at);
        until = earliest(until, kill_at);
        if (drain_at >= 0)
            until = earliest(until, px->sout.eof ? drain_at + PROXY_FLUSH_MS
                                                 : drain_at);
        int timeout = -1;
        if (until >= 0)
            timeout = until > now ? (int)(until - now) : 0;
        if (poll(pf, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            proxy_log("poll: %s", strerror(errno));
            if (!px->child_exited)
                kill(px->child, SIGTERM);
            return CLI_EXIT_FAIL;
        }
        short ready = POLLIN | POLLHUP | POLLERR;
        if (i_sig >= 0 && pf[i_sig].revents != 0)
            proxy_on_signals(px, sig_r, &kill_at);
        if (i_cin >= 0 && (pf[i_cin].revents & ready) != 0) {
            if (proxy_reader_fill(px, &px->cin, proxy_client_line,
                                  proxy_client_oversize) != 0 ||
                px->cin.eof)
                client_closed(px);
        }
        if (i_sin >= 0 && pf[i_sin].revents != 0 && px->child_in >= 0) {
            if (proxy_buf_flush(&px->sin, px->child_in) != 0) {
                /* The server closed its stdin: what it was sent is
                 * lost with it. */
                close(px->child_in);
                px->child_in = -1;
                px->sin.off = px->sin.len = 0;
            }
        }
        if (i_sout >= 0 && (pf[i_sout].revents & ready) != 0) {
            if (proxy_reader_fill(px, &px->sout, proxy_server_line,
                                  server_oversize) != 0)
                px->sout.eof = true;
        }
        if (i_d >= 0 && (pf[i_d].revents & POLLOUT) != 0)
            proxy_daemon_write(px);
        if (i_d >= 0 && px->d.fd >= 0 && (pf[i_d].revents & ready) != 0)
            proxy_daemon_read(px);
        proxy_daemon_tick(px, proxy_now_ms());
        if (i_cout >= 0 || (!px->cout_dead && proxy_buf_pending(&px->cout))) {
            if (proxy_buf_flush(&px->cout, STDOUT_FILENO) != 0) {
                px->cout_dead = true;
                px->cout.off = px->cout.len = 0;
                client_closed(px);
            }
        }
    }
}

int cmd_proxy(int argc, char **argv)
{
    proxy_args a;
    memset(&a, 0, sizeof a);
    int rc = proxy_parse_args(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    /* Descriptors 0-2 must exist, or a pipe would take their place. */
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) {
            fputs("trine proxy: cannot open /dev/null\n", stderr);
            return CLI_EXIT_FAIL;
        }
    }
    proxy px;
    memset(&px, 0, sizeof px);
    px.server = a.server;
    px.max_message = PROXY_DEFAULT_MAX_MESSAGE;
    if (a.max_message != NULL) {
        int64_t v;
        if (!cli_parse_int64(a.max_message, &v) || v < PROXY_MIN_MAX_MESSAGE ||
            v > (int64_t)PROXY_MAX_MAX_MESSAGE) {
            fprintf(stderr,
                    "trine proxy: --max-message needs a number of bytes "
                    "from %d to %u\n",
                    PROXY_MIN_MAX_MESSAGE, PROXY_MAX_MAX_MESSAGE);
            return CLI_EXIT_USAGE;
        }
        px.max_message = (size_t)v;
    }
    char *bearer = NULL;
    if (proxy_identity(&px, a.claims, &bearer) != 0 || proxy_random(&px) != 0) {
        json_decref(px.claims);
        free(bearer);
        return CLI_EXIT_USAGE;
    }
    px.d.path = a.socket;
    px.d.fd = -1;
    px.d.in.fd = -1;
    px.d.in.max = PROXY_DAEMON_REPLY_MAX;
    px.cin.fd = STDIN_FILENO;
    px.cin.max = px.max_message;
    px.sout.max = px.max_message;
    px.child_in = -1;
    px.sout.fd = -1;

    int sig_r = proxy_signals();
    int fl_in = fcntl(STDIN_FILENO, F_GETFL);
    int fl_out = fcntl(STDOUT_FILENO, F_GETFL);
    if (sig_r < 0 || fl_in < 0 || fl_out < 0) {
        fprintf(stderr, "trine proxy: cannot set up: %s\n", strerror(errno));
        json_decref(px.claims);
        free(bearer);
        return CLI_EXIT_FAIL;
    }
    rc = proxy_spawn(&px, argv + a.cmd);
    if (rc == 0) {
        proxy_log("session %s for server \"%s\" (trined at %s)", px.session,
                  px.server, a.socket);
        fcntl(STDIN_FILENO, F_SETFL, fl_in | O_NONBLOCK);
        fcntl(STDOUT_FILENO, F_SETFL, fl_out | O_NONBLOCK);
        rc = proxy_loop(&px, sig_r);
        fcntl(STDIN_FILENO, F_SETFL, fl_in);
        fcntl(STDOUT_FILENO, F_SETFL, fl_out);
    }
    if (px.child_in >= 0)
        close(px.child_in);
    if (px.sout.fd >= 0)
        close(px.sout.fd);
    proxy_flow_free(&px);
    proxy_reader_free(&px.cin);
    proxy_reader_free(&px.sout);
    proxy_buf_free(&px.cout);
    proxy_buf_free(&px.sin);
    json_decref(px.claims);
    free(bearer);
    return rc;
}
