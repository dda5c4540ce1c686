/*
 * accept.c - taking new connections (see server_int.h).
 */
#define _GNU_SOURCE /* struct ucred */

#include "daemon/server_int.h"

#include "daemon/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

bool server_peer_allowed(const trined_config *cfg, uid_t uid, gid_t gid)
{
    if (cfg->n_allow_uid == 0 && (uid == geteuid() || uid == 0))
        return true;
    for (size_t i = 0; i < cfg->n_allow_uid; i++) {
        if (cfg->allow_uid[i] == uid)
            return true;
    }
    for (size_t i = 0; i < cfg->n_allow_gid; i++) {
        if (cfg->allow_gid[i] == gid)
            return true;
    }
    return false;
}

/* Makes a connection of an accepted socket and registers it. Returns it,
 * or NULL (the socket closed) on failure. */
static conn *server_add_conn(server *s, int fd, const struct ucred *cr,
                             uint32_t events)
{
    conn *c = conn_new(fd, ++s->next_id, s->cfg->max_line);
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (c == NULL || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        server_log_errno(LOG_ERROR, "accept_failed", "register");
        if (c != NULL)
            conn_free(c);
        else
            close(fd);
        return NULL;
    }
    c->events = events;
    conn_set_limits(c, s->cfg->max_pending_bytes,
                    (size_t)s->cfg->max_pending_replies);
    c->active_ms = s->now_ms;
    c->uid = cr->uid;
    c->gid = cr->gid;
    c->pid = cr->pid;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->nopen++;
    return c;
}

/* Answers a refused peer with one error line; the connection then takes
 * no request and closes (after lingering, so the peer reads the line). */
static void server_refuse(server *s, int fd, const struct ucred *cr)
{
    logline l;
    if (log_begin(&l, LOG_WARN, "peer_refused")) {
        log_uint(&l, "uid", cr->uid);
        log_uint(&l, "gid", cr->gid);
        log_int(&l, "pid", cr->pid);
        log_end(&l);
    }
    conn *c = server_add_conn(s, fd, cr, 0);
    if (c == NULL)
        return;
    char msg[64];
    snprintf(msg, sizeof msg, "peer uid %u is not allowed", (unsigned)cr->uid);
    rpc_write_error(&c->out, NULL, RPC_INVALID_REQUEST, msg);
    c->eof = true;
    if (c->out.oom)
        c->closing = true;
    server_mark_dirty(s, c);
}

static void server_pause_accept(server *s)
{
    if (s->accept_paused || s->lfd < 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
    s->accept_paused = true;
    s->accept_resume_ms = server_mono_ms() + SERVER_ACCEPT_PAUSE_MS;
}

void server_log_shed(server *s, bool force)
{
    listen_log_shed(&s->shed, s->now_ms, SERVER_TICK_MS, force, s->nopen,
                    s->cfg->max_connections);
}

static void server_shed(server *s, listen_shed_reason why)
{
    s->shed.n[why]++;
    server_log_shed(s, false);
}

void server_accept(server *s)
{
    for (;;) {
        int fd = listen_accept(s->lfd, &s->reserve_fd);
        if (fd == LISTEN_SHED) {
            server_shed(s, LISTEN_SHED_NOFD);
            continue;
        }
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* Out of descriptors with no reserve, or out of memory: stop
             * accepting for a moment instead of spinning on a listening
             * socket that stays readable. */
            server_log_errno(LOG_ERROR, "accept_failed", "accept");
            server_pause_accept(s);
            return;
        }
        /* Over the limit, the peer is closed at once: it sees EOF rather
         * than hang in the backlog, and costs no memory. */
        if (s->nopen >= (size_t)s->cfg->max_connections) {
            listen_shed(fd);
            server_shed(s, LISTEN_SHED_LIMIT);
            continue;
        }
        struct ucred cr;
        socklen_t len = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
            server_log_errno(LOG_WARN, "peer_unknown", "SO_PEERCRED");
            close(fd);
            continue;
        }
        if (!server_peer_allowed(s->cfg, cr.uid, cr.gid)) {
            server_refuse(s, fd, &cr);
            continue;
        }
        conn *c = server_add_conn(s, fd, &cr, EPOLLIN);
        if (c == NULL)
            continue;
        logline l;
        if (log_begin(&l, LOG_DEBUG, "conn_open")) {
            log_uint(&l, "conn", c->id);
            log_uint(&l, "uid", cr.uid);
            log_int(&l, "pid", cr.pid);
            log_end(&l);
        }
    }
}
