/*
 * server.c - the listening socket and the event loop (see server.h and
 * server_int.h).
 */

#include "daemon/server_int.h"

#include "daemon/rpc.h"
#include "daemon/writer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int64_t server_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void server_log_errno(log_level lvl, const char *event, const char *what)
{
    logline l;
    if (log_begin(&l, lvl, event)) {
        log_str(&l, "op", what);
        log_str(&l, "error", strerror(errno));
        log_end(&l);
    }
}

bool server_activated(const server *s)
{
    return s->activated;
}

static int server_watch(server *s, int fd, uint64_t tag, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int server_open(const trined_config *cfg, server **out, char *err,
                size_t errlen)
{
    server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return TRINE_ENOMEM;
    }
    s->cfg = cfg;
    s->lfd = s->sigfd = s->inofd = s->tfd = s->tickfd = -1;
    s->pool.max = SERVER_POOL_MAX;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        free(s);
        return TRINE_EIO;
    }
    s->lfd = listen_open(cfg, &s->activated, err, errlen);
    if (s->lfd < 0)
        goto fail;
    s->created = !s->activated;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    s->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->sigfd < 0 || s->tfd < 0 || s->tickfd < 0) {
        snprintf(err, errlen, "signalfd/timerfd: %s", strerror(errno));
        goto fail;
    }
    struct timespec tick = {.tv_sec = SERVER_TICK_MS / 1000,
                            .tv_nsec = (SERVER_TICK_MS % 1000) * 1000000L};
    struct itimerspec its = {.it_interval = tick, .it_value = tick};
    if (timerfd_settime(s->tickfd, 0, &its, NULL) != 0) {
        snprintf(err, errlen, "timerfd_settime: %s", strerror(errno));
        goto fail;
    }
    if (server_watch(s, s->lfd, TAG_LISTEN, EPOLLIN) != 0 ||
        server_watch(s, s->sigfd, TAG_SIGNAL, EPOLLIN) != 0 ||
        server_watch(s, s->tfd, TAG_TIMER, EPOLLIN) != 0 ||
        server_watch(s, s->tickfd, TAG_TICK, EPOLLIN) != 0) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    /* A descriptor held back, so that a client past the descriptor limit
     * is still accepted and told (by EOF) that it is not served. */
    s->reserve_fd = listen_reserve_open();
    if (s->reserve_fd < 0) {
        snprintf(err, errlen, "cannot open /dev/null: %s", strerror(errno));
        goto fail;
    }
    listen_fit_nofile((size_t)cfg->max_connections);

    /* Watching the policy directory is a convenience (SIGHUP always
     * works), so failing to is only a warning. */
    s->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->inofd < 0 ||
        inotify_add_watch(s->inofd, cfg->policy,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                              IN_MOVED_FROM) < 0 ||
        server_watch(s, s->inofd, TAG_INOTIFY, EPOLLIN) != 0) {
        server_log_errno(LOG_WARN, "policy_watch_failed", "inotify");
        if (s->inofd >= 0)
            close(s->inofd);
        s->inofd = -1;
    }
    *out = s;
    return 0;
fail:
    if (s->created)
        unlink(cfg->socket);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->tfd >= 0)
        close(s->tfd);
    if (s->tickfd >= 0)
        close(s->tickfd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    close(s->epfd);
    free(s);
    return TRINE_EIO;
}

void server_mark_dirty(server *s, conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = s->dirty;
    s->dirty = c;
}

/* Reads from c as far as it allows, counting the jobs it makes. */
static conn_status server_read(server *s, conn *c, size_t budget)
{
    size_t before = c->njobs;
    conn_status st = conn_read(c, &s->pool, &s->batch, budget);
    s->inflight += c->njobs - before;
    return st;
}

/* Reads and drops a lingering connection's input. Returns true once the
 * peer has closed (or failed). */
static bool server_discard(conn *c)
{
    char sink[16384];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    return false;
}

static void server_conn_event(server *s, conn *c, uint32_t ev)
{
    if (c->closing)
        return;
    c->active_ms = s->now_ms;
    if (c->lingering) {
        if (server_discard(c) || (ev & (EPOLLHUP | EPOLLERR)))
            c->closing = true;
        server_mark_dirty(s, c);
        return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->eof && !c->paused) {
        if (server_read(s, c, SERVER_READ_BUDGET) == CONN_ERR)
            c->closing = true;
    }
    /* The peer closed both ways: its replies cannot be delivered. Its
     * requests already read are still evaluated and audited. */
    if (ev & (EPOLLHUP | EPOLLERR))
        c->closing = true;
    server_mark_dirty(s, c);
}

static void server_update_events(server *s, conn *c)
{
    uint32_t want = 0;
    if ((!c->eof && !c->paused) || c->lingering)
        want |= EPOLLIN;
    if (conn_out_pending(c) > 0)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        c->closing = true;
        server_mark_dirty(s, c);
        return;
    }
    c->events = want;
}

/* Closes c's socket after an orderly end: the peer gets EOF after the last
 * reply, and what it still had in flight is read and dropped so that the
 * close does not turn into a reset it would see before our replies. */
static void server_shutdown_fd(conn *c)
{
    shutdown(c->fd, SHUT_WR);
    char sink[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
}

static void server_unlink_conn(server *s, conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
}

static void server_close_fd(server *s, conn *c, bool orderly)
{
    if (c->fd < 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (orderly)
        server_shutdown_fd(c);
    if (c->lingering) {
        c->lingering = false;
        s->nlinger--;
    }
    close(c->fd);
    c->fd = -1;
    s->nopen--;
    framer_free(&c->in);
    sb_free(&c->out);
    c->out_off = 0;
    logline l;
    if (log_begin(&l, LOG_DEBUG, "conn_closed")) {
        log_uint(&l, "conn", c->id);
        log_uint(&l, "pending_jobs", c->njobs);
        log_end(&l);
    }
}

/* Looks at every connection something happened to: collects finished
 * replies, writes, closes and frees, and re-arms epoll. */
static void server_process_dirty(server *s)
{
    while (s->dirty != NULL) {
        conn *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        c->active_ms = s->now_ms;

        size_t before = c->njobs;
        conn_collect(c, &s->pool);
        s->inflight -= before - c->njobs;
        if (!c->closing && conn_out_pending(c) > 0 && conn_flush(c) != CONN_OK)
            c->closing = true;
        bool orderly = !c->closing && !c->lingering && conn_finished(c);
        if (orderly && !c->peer_eof && !s->stopping) {
            /* Everything is answered but the peer may still be sending:
             * signal EOF and wait for it to close. */
            shutdown(c->fd, SHUT_WR);
            c->lingering = true;
            c->linger_until = server_mono_ms() + SERVER_LINGER_MS;
            s->nlinger++;
            server_update_events(s, c);
            continue;
        }
        if (orderly)
            c->closing = true;
        if (c->closing) {
            server_close_fd(s, c, orderly);
            /* Jobs still in flight come back later; the connection waits
             * for them without its socket. */
            if (c->njobs == 0) {
                server_unlink_conn(s, c);
                conn_free(c);
            }
            continue;
        }
        if (conn_update_pause(c) && !c->paused) {
            /* Lines already buffered get no new epoll event: frame them
             * now. */
            if (server_read(s, c, 0) == CONN_ERR) {
                c->closing = true;
                server_mark_dirty(s, c);
                continue;
            }
        }
        server_update_events(s, c);
    }
}

/* Closes lingering connections whose peers did not close in time. */
static void server_sweep_lingering(server *s, int64_t now)
{
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->lingering && !c->closing && now >= c->linger_until) {
            c->closing = true;
            server_mark_dirty(s, c);
        }
    }
}

/* Ends the connections that were idle for the idle timeout: each gets EOF
 * (after a -32700 for a partial line it holds), through the orderly close
 * of server_process_dirty. */
static void server_sweep_idle(server *s)
{
    int timeout = s->cfg->idle_timeout;
    if (timeout <= 0 || s->stopping)
        return;
    int64_t limit_ms = (int64_t)timeout * 1000;
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->fd < 0 || !conn_is_idle(c) ||
            s->now_ms - c->active_ms < limit_ms)
            continue;
        logline l;
        if (log_begin(&l, LOG_DEBUG, "conn_idle")) {
            log_uint(&l, "conn", c->id);
            log_int(&l, "idle_ms", s->now_ms - c->active_ms);
            log_uint(&l, "partial_bytes", framer_pending(&c->in));
            log_end(&l);
        }
        size_t before = c->njobs;
        if (conn_end_idle(c, &s->pool, (unsigned)timeout) != 0)
            c->closing = true;
        s->inflight += c->njobs - before;
        server_mark_dirty(s, c);
    }
}

static void server_tick(server *s)
{
    uint64_t expirations;
    if (read(s->tickfd, &expirations, sizeof expirations) !=
        (ssize_t)sizeof expirations)
        return;
    server_sweep_idle(s);
    server_log_shed(s, false);
}

static void server_begin_stop(server *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_deadline = server_mono_ms() + SERVER_DRAIN_MS;
    logline l;
    if (log_begin(&l, LOG_INFO, "stopping")) {
        log_str(&l, "signal", why);
        log_uint(&l, "connections", s->nconns);
        log_uint(&l, "in_flight", s->inflight);
        log_end(&l);
    }
    if (s->lfd >= 0) {
        if (!s->accept_paused)
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
        close(s->lfd);
        s->lfd = -1;
    }
    if (s->created) {
        unlink(s->cfg->socket);
        s->created = false;
    }
    /* Every complete line already received is answered, backpressure or
     * not; nothing more is read. */
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->lingering)
            c->closing = true;
        while (!c->eof && !c->closing) {
            c->paused = false;
            size_t before = c->njobs;
            if (server_read(s, c, 0) == CONN_ERR)
                c->closing = true;
            if (c->njobs == before)
                break;
        }
        c->eof = true;
        framer_clear(&c->in);
        server_mark_dirty(s, c);
    }
}

static void server_signal(server *s, snapshot *snap)
{
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(s->sigfd, &si, sizeof si);
        if (n != (ssize_t)sizeof si)
            return;
        if (si.ssi_signo == SIGHUP) {
            logline l;
            if (log_begin(&l, LOG_INFO, "reload_requested")) {
                log_str(&l, "source", "SIGHUP");
                log_end(&l);
            }
            snapshot_request_reload(snap);
        } else {
            server_begin_stop(s, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        }
    }
}

static bool server_is_policy_file(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, ".trine") == 0 && name[0] != '.';
}

/* Policy directory events start (or restart) the debounce timer, so a
 * burst of writes leads to one reload once the files are quiet. */
static void server_inotify(server *s)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool relevant = false;
    for (;;) {
        ssize_t n = read(s->inofd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if ((ev->mask & IN_Q_OVERFLOW) ||
                (ev->len > 0 && server_is_policy_file(ev->name)))
                relevant = true;
            if (ev->mask & IN_IGNORED) {
                logline l;
                if (log_begin(&l, LOG_WARN, "policy_watch_lost")) {
                    log_str(&l, "policy", s->cfg->policy);
                    log_end(&l);
                }
            }
            p += sizeof *ev + ev->len;
        }
    }
    if (!relevant)
        return;
    struct itimerspec its = {
        .it_value = {.tv_sec = 0, .tv_nsec = SERVER_DEBOUNCE_MS * 1000000L}};
    timerfd_settime(s->tfd, 0, &its, NULL);
}

static void server_timer(server *s, snapshot *snap)
{
    uint64_t expirations;
    ssize_t n = read(s->tfd, &expirations, sizeof expirations);
    if (n != (ssize_t)sizeof expirations)
        return;
    logline l;
    if (log_begin(&l, LOG_INFO, "reload_requested")) {
        log_str(&l, "source", "inotify");
        log_end(&l);
    }
    snapshot_request_reload(snap);
}

static void server_done(server *s, daemon_ctx *ctx)
{
    jobq done = {0};
    doneq_take(&ctx->done, &done);
    for (job *j = jobq_pop(&done); j != NULL; j = jobq_pop(&done)) {
        conn *c = j->conn;
        conn_job_done(c, j, &s->batch);
        server_mark_dirty(s, c);
    }
}

/* Hands on this wake-up's requests. A small batch, while no worker is
 * busy and the audit writer is idle and quick, is answered right here,
 * evaluation and audit commit included: on these machines waking another
 * thread and being woken by it costs more than the work itself, so at
 * moderate load this is faster and, at the same throughput, cheaper. Under
 * heavier load, or when commits are slow (an fsync each, a locked log), the
 * workers take it and the loop keeps reading. Returns true when the
 * replies are ready to be written. */
static bool server_dispatch(server *s, daemon_ctx *ctx, workers *w)
{
    if (s->batch.head == NULL)
        return false;
    size_t bytes = 0;
    for (const job *j = s->batch.head; j != NULL; j = j->next)
        bytes += j->in.len;
    if (s->batch.len > SERVER_INLINE_MAX || bytes > SERVER_INLINE_MAX_BYTES ||
        !workers_idle(w) || !writer_quick(ctx->writer)) {
        workers_submit(w, &s->batch);
        return false;
    }
    workers_run_here(w, &s->batch);
    server_done(s, ctx);
    return true;
}

int server_run(server *s, daemon_ctx *ctx, workers *w, snapshot *snap)
{
    if (server_watch(s, ctx->done.efd, TAG_DONE, EPOLLIN) != 0) {
        server_log_errno(LOG_ERROR, "loop_failed", "epoll_ctl");
        return TRINE_EIO;
    }
    struct epoll_event evs[SERVER_MAX_EVENTS];
    for (;;) {
        int timeout =
            s->stopping || s->accept_paused || s->nlinger > 0 ? 50 : -1;
        int n = epoll_wait(s->epfd, evs, SERVER_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            server_log_errno(LOG_ERROR, "loop_failed", "epoll_wait");
            return TRINE_EIO;
        }
        s->now_ms = server_mono_ms();
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag >= TAG_LAST) {
                server_conn_event(s, evs[i].data.ptr, evs[i].events);
                continue;
            }
            switch (tag) {
            case TAG_LISTEN:
                if (!s->stopping)
                    server_accept(s);
                break;
            case TAG_SIGNAL:
                server_signal(s, snap);
                break;
            case TAG_INOTIFY:
                server_inotify(s);
                break;
            case TAG_TIMER:
                server_timer(s, snap);
                break;
            case TAG_DONE:
                server_done(s, ctx);
                break;
            case TAG_TICK:
                server_tick(s);
                break;
            default:
                break;
            }
        }
        int64_t now = server_mono_ms();
        if (s->nlinger > 0)
            server_sweep_lingering(s, now);
        /* One handoff per wake-up, before the writes, so evaluation
         * starts while replies go out; what the loop answered itself is
         * written at once. */
        server_dispatch(s, ctx, w);
        server_process_dirty(s);
        if (server_dispatch(s, ctx, w))
            server_process_dirty(s);

        if (s->accept_paused && !s->stopping && now >= s->accept_resume_ms) {
            if (s->reserve_fd < 0)
                s->reserve_fd = listen_reserve_open();
            if (server_watch(s, s->lfd, TAG_LISTEN, EPOLLIN) == 0)
                s->accept_paused = false;
            else
                s->accept_resume_ms = now + SERVER_ACCEPT_PAUSE_MS;
        }
        if (s->stopping) {
            if (s->nconns == 0 && s->inflight == 0)
                break;
            if (now >= s->stop_deadline) {
                logline l;
                if (log_begin(&l, LOG_WARN, "drain_timeout")) {
                    log_uint(&l, "connections", s->nconns);
                    log_uint(&l, "in_flight", s->inflight);
                    log_end(&l);
                }
                break;
            }
        }
    }
    return 0;
}

void server_free(server *s, daemon_ctx *ctx)
{
    if (s == NULL)
        return;
    /* Jobs that came back after the loop ended. */
    if (ctx != NULL)
        server_done(s, ctx);
    s->dirty = NULL;
    conn *c = s->conns;
    while (c != NULL) {
        conn *next = c->next;
        /* Every job is back by now (the workers and the writer have
         * stopped), so each is done and can be recycled. */
        c->closing = true;
        conn_collect(c, &s->pool);
        if (c->fifo_head != NULL) {
            logline l;
            if (log_begin(&l, LOG_ERROR, "jobs_lost")) {
                log_uint(&l, "conn", c->id);
                log_end(&l);
            }
        } else {
            conn_free(c);
        }
        c = next;
    }
    jobpool_free(&s->pool);
    for (job *j = jobq_pop(&s->batch); j != NULL; j = jobq_pop(&s->batch))
        job_free(j);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->created)
        unlink(s->cfg->socket);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->inofd >= 0)
        close(s->inofd);
    if (s->tfd >= 0)
        close(s->tfd);
    if (s->tickfd >= 0)
        close(s->tickfd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    s->now_ms = server_mono_ms();
    server_log_shed(s, true);
    close(s->epfd);
    free(s);
}
