/*
 * baseline.c - the echo and json baseline servers (see baseline.h).
 */
#include "support/baseline.h"
#include "support/net.h"

#include <jansson.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One client connection of a server thread. Closed connections are marked
 * with fd -1 and freed after the event batch that closed them. */
typedef struct srv_conn {
    int fd;
    strbuf in;
    strbuf out;
    size_t out_off;
    bool want_out;
    struct srv_conn *next;
} srv_conn;

static void echo_line(const baseline_server *s, const char *line, size_t len,
                      strbuf *out)
{
    (void)s;
    sb_putn(out, line, len);
    sb_putc(out, '\n');
}

static void json_line(const baseline_server *s, const char *line, size_t len,
                      strbuf *out)
{
    json_error_t err;
    json_t *req = json_loadb(line, len, 0, &err);
    json_t *id = req ? json_object_get(req, "id") : NULL;
    json_t *params = req ? json_object_get(req, "params") : NULL;
    const char *tool = json_string_value(json_object_get(params, "tool"));
    long aid = atomic_fetch_add_explicit((atomic_long *)&s->audit_id, 1,
                                         memory_order_relaxed);
    json_t *reply = json_pack(
        "{s:s, s:O?, s:{s:s, s:s, s:I, s:s, s:[{s:s, s:s}], s:[], s:s}}",
        "jsonrpc", "2.0", "id", id, "result", "decision", "allow", "reason",
        "allow", "audit_id", (json_int_t)aid, "policy_revision",
        "sha256:0000000000000000000000000000000000000000000000000000000000000"
        "000",
        "matched", "set", "user", "tool", tool ? tool : "?", "reasons", "pad",
        s->pad);
    if (reply != NULL) {
        size_t need = json_dumpb(reply, NULL, 0, JSON_COMPACT);
        if (sb_reserve(out, need + 1)) {
            json_dumpb(reply, out->data + out->len, need, JSON_COMPACT);
            out->len += need;
            out->data[out->len] = '\0';
        }
        json_decref(reply);
    }
    sb_putc(out, '\n');
    json_decref(req);
}

static void srv_conn_free(srv_conn *c)
{
    close(c->fd);
    sb_free(&c->in);
    sb_free(&c->out);
    free(c);
}

/* Sends what is pending; returns -1 when the peer is gone. */
static int srv_flush(int ep, srv_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out.len) {
        sb_reset(&c->out);
        c->out_off = 0;
    }
    bool want = c->out.len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                                 .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

/* Reads what is available and answers every complete line. Returns -1 when
 * the connection should close. */
static int srv_read(const baseline_server *s, int ep, srv_conn *c)
{
    for (;;) {
        if (!sb_reserve(&c->in, 65536))
            return -1;
        ssize_t n = recv(c->fd, c->in.data + c->in.len, 65536, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->in.len += (size_t)n;
        if ((size_t)n < 65536)
            break;
    }
    size_t start = 0;
    for (;;) {
        char *nl = memchr(c->in.data + start, '\n', c->in.len - start);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (c->in.data + start));
        s->on_line(s, c->in.data + start, len, &c->out);
        start += len + 1;
    }
    memmove(c->in.data, c->in.data + start, c->in.len - start);
    c->in.len -= start;
    if (c->out.oom)
        return -1;
    return srv_flush(ep, c);
}

static void *server_thread(void *arg)
{
    baseline_server *s = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    srv_conn *all = NULL;
    if (ep < 0)
        return NULL;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
                             .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->lfd, &ev);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &s->stop_fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->stop_fd, &sev);
    bool running = true;
    while (running) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->stop_fd) {
                running = false;
            } else if (p == NULL) {
                for (;;) {
                    int fd = accept(s->lfd, NULL, NULL);
                    if (fd < 0)
                        break;
                    if (bench_set_nonblock(fd) != 0) {
                        close(fd);
                        continue;
                    }
                    srv_conn *c = calloc(1, sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    sb_init(&c->in);
                    sb_init(&c->out);
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    c->next = all;
                    all = c;
                }
            } else {
                srv_conn *c = p;
                int rc = 0;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    rc = srv_read(s, ep, c);
                if (rc == 0 && (evs[i].events & EPOLLOUT))
                    rc = srv_flush(ep, c);
                if (rc != 0) {
                    /* Closed connections are unlinked and freed below,
                     * never while later events of this batch may name
                     * them: mark with fd -1 and reap after the batch. */
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }
        for (srv_conn **pp = &all; *pp != NULL;) {
            srv_conn *c = *pp;
            if (c->fd == -1) {
                *pp = c->next;
                sb_free(&c->in);
                sb_free(&c->out);
                free(c);
            } else {
                pp = &c->next;
            }
        }
    }
    while (all != NULL) {
        srv_conn *next = all->next;
        srv_conn_free(all);
        all = next;
    }
    close(ep);
    return NULL;
}

int baseline_start(baseline_server *s, const char *dir, const char *name,
                   int nthreads, baseline_kind kind, size_t reply_size)
{
    baseline_line_fn fn = kind == BASELINE_JSON ? json_line : echo_line;
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s/%s.sock", dir, name);
    s->on_line = fn;
    s->nthreads = nthreads < 1 ? 1 : nthreads > 64 ? 64 : nthreads;
    s->reply_size = reply_size;
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, s->path);
    unlink(s->path);
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 4096) != 0 || bench_set_nonblock(s->lfd) != 0) {
        close(s->lfd);
        return -1;
    }
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stop_fd < 0) {
        close(s->lfd);
        return -1;
    }
    if (fn == json_line) {
        /* Pad the reply to trined's size: measure it once without pad. */
        strbuf probe;
        sb_init(&probe);
        const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"check\","
                          "\"params\":{\"tool\":\"create_issue\"}}";
        json_line(s, req, strlen(req), &probe);
        size_t base = probe.len - 1; /* without the newline */
        size_t pad = reply_size > base ? reply_size - base : 0;
        if (pad >= sizeof s->pad)
            pad = sizeof s->pad - 1;
        memset(s->pad, 'x', pad);
        s->pad[pad] = '\0';
        sb_free(&probe);
    }
    for (int i = 0; i < s->nthreads; i++) {
        if (pthread_create(&s->threads[i], NULL, server_thread, s) != 0) {
            s->nthreads = i;
            return -1;
        }
    }
    return 0;
}

void baseline_stop(baseline_server *s)
{
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof one) < 0)
        perror("baseline: eventfd");
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    close(s->stop_fd);
    close(s->lfd);
    unlink(s->path);
}
