/*
 * listen.c - the listening socket: systemd's (socket activation), or one we
 * create with exactly the configured mode, replacing a stale socket file
 * and refusing to start next to a live daemon; and accepting on it within
 * the descriptor limit (see listen.h).
 */
#define _GNU_SOURCE /* accept4 */

#include "daemon/listen.h"

#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Takes systemd's listening socket when LISTEN_PID and LISTEN_FDS hand us
 * one. Returns the fd, -1 when not activated, or -2 with err set. */
static int listen_systemd_fd(char *err, size_t errlen)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL)
        return -1;
    char *end;
    long p = strtol(pid, &end, 10);
    if (*end != '\0' || p != (long)getpid())
        return -1;
    long n = strtol(fds, &end, 10);
    if (*end != '\0' || n < 1)
        return -1;
    /* The variables are for us only, not for anything we might start. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    int fd = 3;
    int type = 0;
    int domain = 0;
    int listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain,
                   &(socklen_t){sizeof domain}) != 0 ||
        domain != AF_UNIX ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
                   &(socklen_t){sizeof listening}) != 0 ||
        !listening) {
        snprintf(err, errlen,
                 "systemd passed fd 3, which is not a listening Unix stream "
                 "socket");
        return -2;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot set up fd 3: %s", strerror(errno));
        return -2;
    }
    return fd;
}

/* Removes a socket file left by a daemon that is gone; refuses to touch a
 * live one or anything that is not a socket. Returns 0 or -1 with err. */
static int listen_clear_path(const char *path, const struct sockaddr_un *sa,
                             char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot use socket %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    int saved = errno;
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "another trined is listening on %s", path);
        return -1;
    }
    if (saved != ECONNREFUSED) {
        snprintf(err, errlen, "cannot probe socket %s: %s", path,
                 strerror(saved));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove stale socket %s: %s", path,
                 strerror(errno));
        return -1;
    }
    logline l;
    if (log_begin(&l, LOG_INFO, "stale_socket_removed")) {
        log_str(&l, "socket", path);
        log_end(&l);
    }
    return 0;
}

/* Creates, binds and listens on the configured socket path with exactly
 * the configured mode. Returns the fd, or -1 with err set. */
static int listen_bind(const trined_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(cfg->socket) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path %s is longer than %zu bytes",
                 cfg->socket, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, cfg->socket, strlen(cfg->socket));
    if (listen_clear_path(cfg->socket, &sa, err, errlen) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* The umask makes bind create the file with no wider mode than asked
     * for, so there is no moment when others could connect; chmod then
     * sets the exact mode (the umask can only take bits away). */
    mode_t old = umask((mode_t)(~cfg->socket_mode & 0777));
    int rc = bind(fd, (const struct sockaddr *)&sa, sizeof sa);
    int saved = errno;
    umask(old);
    if (rc != 0) {
        if (saved == EADDRINUSE)
            snprintf(err, errlen, "another trined is listening on %s",
                     cfg->socket);
        else
            snprintf(err, errlen, "cannot bind %s: %s", cfg->socket,
                     strerror(saved));
        close(fd);
        return -1;
    }
    if (chmod(cfg->socket, (mode_t)cfg->socket_mode) != 0 ||
        listen(fd, 4096) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->socket,
                 strerror(errno));
        unlink(cfg->socket);
        close(fd);
        return -1;
    }
    return fd;
}

int listen_open(const trined_config *cfg, bool *activated, char *err,
                size_t errlen)
{
    *activated = false;
    int fd = listen_systemd_fd(err, errlen);
    if (fd >= 0) {
        *activated = true;
        return fd;
    }
    if (fd == -2)
        return -1;
    return listen_bind(cfg, err, errlen);
}

/* Descriptors the daemon needs besides its connections: epoll, signalfd,
 * timerfds, inotify, eventfd, the reserve, and the audit log's SQLite
 * connections (each a database, a WAL and a shared-memory file). */
#define LISTEN_FD_OVERHEAD 64

int listen_reserve_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int listen_accept(int lfd, int *reserve)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if ((errno != EMFILE && errno != ENFILE) || *reserve < 0)
            return -1;
        /* Out of descriptors: the listening socket stays readable, so
         * returning would spin, and pausing would leave the peer hanging
         * in the backlog. Free the reserve, take the connection and close
         * it, so the peer learns at once that it is not served.
         * (accept4 fails with EMFILE before it looks at the backlog, so
         * only this second call says whether anyone is waiting.) */
        int saved = errno;
        close(*reserve);
        *reserve = -1;
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int err = errno;
        if (fd >= 0)
            listen_shed(fd);
        *reserve = listen_reserve_open();
        if (fd >= 0)
            return LISTEN_SHED;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO)
            continue;
        errno = err == EMFILE || err == ENFILE ? saved : err;
        return -1;
    }
}

void listen_shed(int fd)
{
    /* A few reads at most: a peer that keeps writing gets its reset. */
    char sink[4096];
    for (int i = 0; i < 4 && read(fd, sink, sizeof sink) > 0; i++)
        ;
    close(fd);
}

void listen_log_shed(listen_shed_count *sc, int64_t now_ms, int64_t period_ms,
                     bool force, size_t open, int max)
{
    if (!force && sc->logged && now_ms - sc->logged_ms < period_ms)
        return;
    static const char *const why[LISTEN_SHED_KINDS] = {"max_connections",
                                                       "descriptors"};
    for (int k = 0; k < LISTEN_SHED_KINDS; k++) {
        if (sc->n[k] == 0)
            continue;
        logline l;
        if (log_begin(&l, LOG_WARN, "conn_refused")) {
            log_str(&l, "reason", why[k]);
            log_uint(&l, "count", sc->n[k]);
            log_uint(&l, "open", open);
            log_int(&l, "max_connections", max);
            log_end(&l);
        }
        sc->n[k] = 0;
        sc->logged = true;
        sc->logged_ms = now_ms;
    }
}

long listen_fit_nofile(size_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rlim_t need = (rlim_t)max_conns + LISTEN_FD_OVERHEAD;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need
                            ? need
                            : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        logline l;
        if (log_begin(&l, LOG_WARN, "nofile_limit")) {
            log_uint(&l, "soft", rl.rlim_cur);
            log_uint(&l, "hard", rl.rlim_max);
            log_uint(&l, "max_connections", max_conns);
            log_uint(&l, "needed", need);
            log_end(&l);
        }
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX
               ? LONG_MAX
               : (long)rl.rlim_cur;
}
