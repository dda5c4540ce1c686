/*
 * proxy_daemon.c - the connection of `trine proxy` to trined: one JSON-RPC
 * request in flight at a time, on a non-blocking Unix socket that is
 * opened on the first request and again after any failure. Every reply (or
 * failure) goes to proxy_flow_reply.
 */
#include "cli/proxy.h"
#include "cli/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- The connection ----------------------------------------------------- */

void proxy_daemon_close(proxy *px)
{
    if (px->d.fd >= 0)
        close(px->d.fd);
    px->d.fd = -1;
    px->d.in.fd = -1;
    px->d.in.len = 0;
    px->d.in.scan = 0;
    px->d.in.skipping = false;
    px->d.in.eof = false;
    px->d.out.off = 0;
    px->d.out.len = 0;
}

/* Documented in proxy.h. */
int proxy_daemon_send(proxy *px, const char *method, json_t *params, char *why,
                      size_t whylen)
{
    if (px->d.fd < 0) {
        int fd = cli_unix_connect(px->d.path, why, whylen);
        if (fd < 0) {
            json_decref(params);
            return -1;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            snprintf(why, whylen, "cannot use the socket: %s", strerror(errno));
            close(fd);
            json_decref(params);
            return -1;
        }
        px->d.fd = fd;
        px->d.in.fd = fd;
    }
    int64_t id = ++px->d.next_id;
    json_t *req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id",
                            (json_int_t)id, "method", method, "params", params);
    size_t len = 0;
    char *text = req != NULL ? pmsg_dump(req, &len) : NULL;
    json_decref(req);
    if (text == NULL || proxy_buf_put(&px->d.out, text, len) != 0) {
        free(text);
        px->fatal = true;
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    free(text);
    px->d.waiting = true;
    px->d.id = id;
    px->d.deadline_ms = proxy_now_ms() + PROXY_DAEMON_TIMEOUT_MS;
    return 0;
}

/* Fails the request in flight (if any) with why and drops the connection;
 * the next request connects again. */
static void daemon_fail(proxy *px, const char *why)
{
    bool waiting = px->d.waiting;
    proxy_daemon_close(px);
    px->d.waiting = false;
    if (waiting)
        proxy_flow_reply(px, NULL, why);
}

static void daemon_on_line(proxy *px, const char *line, size_t len)
{
    json_t *reply = NULL;
    char err[256];
    if (!px->d.waiting || px->d.reply != NULL)
        return;
    if (pmsg_parse_reply(line, len, &reply, err, sizeof err) != 0) {
        /* Keep the reason: the request fails with it. */
        px->d.reply = json_pack("{s:{s:i, s:s}}", "error", "code",
                                PMSG_PARSE_ERROR, "message", err);
        if (px->d.reply == NULL)
            px->fatal = true;
        return;
    }
    const json_t *id = json_object_get(reply, "id");
    /* One request is in flight, so the reply is its own; an error the
     * daemon could not tie to a request (id null) is its too. */
    if (json_is_null(id) ||
        (json_is_integer(id) && json_integer_value(id) == px->d.id)) {
        px->d.reply = reply;
        return;
    }
    json_decref(reply);
}

static void daemon_on_oversize(proxy *px)
{
    px->d.oversize = true;
}

void proxy_daemon_read(proxy *px)
{
    int rc =
        proxy_reader_fill(px, &px->d.in, daemon_on_line, daemon_on_oversize);
    int err = errno;
    json_t *reply = px->d.reply;
    px->d.reply = NULL;
    if (reply != NULL && px->d.waiting) {
        px->d.waiting = false;
        proxy_flow_reply(px, reply, NULL);
    }
    json_decref(reply);
    if (rc != 0 || px->d.in.eof || px->d.oversize) {
        char why[256];
        if (px->d.oversize)
            snprintf(why, sizeof why, "trined sent a reply over %u bytes",
                     PROXY_DAEMON_REPLY_MAX);
        else if (rc != 0)
            snprintf(why, sizeof why, "reading from trined: %s", strerror(err));
        else
            snprintf(why, sizeof why,
                     "trined closed the connection without a reply");
        px->d.oversize = false;
        daemon_fail(px, why);
    }
}

void proxy_daemon_write(proxy *px)
{
    proxy_buf *b = &px->d.out;
    while (proxy_buf_pending(b) > 0) {
        ssize_t n = send(px->d.fd, b->data + b->off, proxy_buf_pending(b),
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            char why[256];
            snprintf(why, sizeof why, "writing to trined: %s", strerror(errno));
            daemon_fail(px, why);
            return;
        }
        b->off += (size_t)n;
    }
    b->off = 0;
    b->len = 0;
}

void proxy_daemon_tick(proxy *px, int64_t now_ms)
{
    if (px->d.waiting && now_ms >= px->d.deadline_ms) {
        char why[128];
        snprintf(why, sizeof why, "trined did not answer within %d seconds",
                 PROXY_DAEMON_TIMEOUT_MS / 1000);
        daemon_fail(px, why);
    }
}
