/*
 * conn.c - line framing, reply order, output and backpressure of one client
 * connection (see conn.h).
 */
#define _GNU_SOURCE /* memmem */

#include "daemon/conn.h"

#include "daemon/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The first buffer a connection gets, and the size above which an idle
 * buffer is given back. */
#define FRAMER_MIN 4096
#define FRAMER_KEEP (64 * 1024)
/* How much each read asks for. */
#define CONN_READ_CHUNK (16 * 1024)
/* Output buffers above this are freed once empty. */
#define CONN_OUT_KEEP (256 * 1024)

/* Sent when a reply could not be built for lack of memory. */
static const char conn_oom_reply[] =
    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
    "\"message\":\"out of memory\"}}\n";

void framer_init(framer *f, size_t max_line)
{
    memset(f, 0, sizeof *f);
    f->max_line = max_line;
}

void framer_free(framer *f)
{
    free(f->buf);
    size_t max = f->max_line;
    memset(f, 0, sizeof *f);
    f->max_line = max;
}

char *framer_space(framer *f, size_t want, size_t *avail)
{
    if (f->start == f->len && f->cap > FRAMER_KEEP)
        framer_free(f);
    if (f->start > 0 && (f->start == f->len || f->cap - f->len < want)) {
        memmove(f->buf, f->buf + f->start, f->len - f->start);
        f->len -= f->start;
        f->start = 0;
    }
    if (f->cap - f->len < want) {
        size_t ncap = f->cap ? f->cap : FRAMER_MIN;
        while (ncap - f->len < want)
            ncap *= 2;
        char *p = realloc(f->buf, ncap);
        if (p == NULL)
            return NULL;
        f->buf = p;
        f->cap = ncap;
    }
    *avail = f->cap - f->len;
    return f->buf + f->len;
}

void framer_commit(framer *f, size_t n)
{
    f->len += n;
}

frame_status framer_next(framer *f, const char **line, size_t *len)
{
    size_t have = f->len - f->start;
    if (f->scan < have) {
        char *from = f->buf + f->start + f->scan;
        char *nl = memchr(from, '\n', have - f->scan);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (f->buf + f->start));
            if (n > f->max_line)
                return FRAME_OVERSIZE;
            *line = f->buf + f->start;
            *len = n;
            f->start += n + 1;
            f->scan = 0;
            return FRAME_LINE;
        }
        f->scan = have;
    }
    /* No '\n' yet: once more than max_line bytes wait, no line can end in
     * time, so there is no need to wait for one. */
    if (have > f->max_line)
        return FRAME_OVERSIZE;
    return FRAME_NONE;
}

size_t framer_pending(const framer *f)
{
    return f->len - f->start;
}

void framer_clear(framer *f)
{
    f->start = 0;
    f->len = 0;
    f->scan = 0;
    if (f->cap > FRAMER_KEEP)
        framer_free(f);
}

conn *conn_new(int fd, uint64_t id, size_t max_line)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->id = id;
    c->max_out = CONN_OUT_CAP;
    c->max_jobs = CONN_MAX_JOBS;
    framer_init(&c->in, max_line);
    sb_init(&c->out);
    return c;
}

void conn_free(conn *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    framer_free(&c->in);
    sb_free(&c->out);
    free(c);
}

void conn_set_limits(conn *c, size_t max_out, size_t max_jobs)
{
    c->max_out = max_out > 0 ? max_out : 1;
    c->max_jobs = max_jobs > 0 ? max_jobs : 1;
}

/* Lists j as c's newest job. */
static void conn_enqueue(conn *c, job *j)
{
    j->conn = c;
    j->conn_next = NULL;
    if (c->fifo_tail != NULL)
        c->fifo_tail->conn_next = j;
    else
        c->fifo_head = j;
    c->fifo_tail = j;
    c->njobs++;
}

/* Answers an oversized line with -32700 (after every earlier reply) and
 * stops reading: the rest of the stream cannot be framed. */
static int conn_oversize(conn *c, jobpool *pool)
{
    job *j = jobpool_get(pool);
    if (j == NULL)
        return -1;
    char msg[64];
    snprintf(msg, sizeof msg, "line exceeds %zu bytes", c->in.max_line);
    rpc_write_error(&j->out, NULL, RPC_PARSE_ERROR, msg);
    j->done = true;
    conn_enqueue(c, j);
    c->eof = true;
    framer_clear(&c->in);
    return 0;
}

/* Queues one line as a job: behind a pending consent barrier, or in this
 * wake-up's batch. Returns 0, or -1 when out of memory. */
static int conn_take_line(conn *c, jobpool *pool, jobq *batch, const char *line,
                          size_t len)
{
    job *j = jobpool_get(pool);
    if (j == NULL)
        return -1;
    sb_putn(&j->in, line, len);
    if (j->in.oom) {
        jobpool_put(pool, j);
        return -1;
    }
    conn_enqueue(c, j);
    if (c->barrier != NULL) {
        jobq_push(&c->held, j);
    } else {
        jobq_push(batch, j);
        if (conn_is_barrier(line, len))
            c->barrier = j;
    }
    c->queued += len;
    conn_update_pause(c);
    return 0;
}

/* Makes a job of every complete buffered line, until c pauses. */
static int conn_frame(conn *c, jobpool *pool, jobq *batch)
{
    while (!c->eof && !c->closing && !c->paused) {
        const char *line;
        size_t len;
        frame_status fs = framer_next(&c->in, &line, &len);
        if (fs == FRAME_NONE)
            return 0;
        if (fs == FRAME_OVERSIZE)
            return conn_oversize(c, pool);
        if (conn_take_line(c, pool, batch, line, len) != 0)
            return -1;
    }
    return 0;
}

/* The peer will send no more. Bytes after the last '\n' are one last
 * line: a request whose newline never came still gets its answer (trine
 * never drops input silently); a peer that vanished mid-line gets a parse
 * error it will not read. Blank leftovers are ignored. */
static int conn_take_last_line(conn *c, jobpool *pool, jobq *batch)
{
    size_t n = framer_pending(&c->in);
    const char *line = c->in.buf + c->in.start;
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    int rc = 0;
    if (i < n && n <= c->in.max_line)
        rc = conn_take_line(c, pool, batch, line, n);
    framer_clear(&c->in);
    return rc;
}

conn_status conn_read(conn *c, jobpool *pool, jobq *batch, size_t budget)
{
    if (conn_frame(c, pool, batch) != 0)
        return CONN_ERR;
    size_t got = 0;
    while (!c->eof && !c->closing && !c->paused && got < budget) {
        size_t avail;
        char *p = framer_space(&c->in, CONN_READ_CHUNK, &avail);
        if (p == NULL)
            return CONN_ERR;
        /* Framing after every read keeps the buffer at most one read
         * above max_line (see CONN_READ_MAX), however large the buffer
         * has grown. */
        size_t want = avail < CONN_READ_MAX ? avail : CONN_READ_MAX;
        ssize_t n = read(c->fd, p, want);
        if (n > 0) {
            framer_commit(&c->in, (size_t)n);
            got += (size_t)n;
            if (conn_frame(c, pool, batch) != 0)
                return CONN_ERR;
            /* A short read drained the socket: skip the read that would
             * only say EAGAIN. */
            if ((size_t)n < want)
                break;
            continue;
        }
        if (n == 0) {
            /* The peer is done sending; every line it sent is answered. */
            int rc = conn_take_last_line(c, pool, batch);
            c->eof = true;
            c->peer_eof = true;
            return rc != 0 ? CONN_ERR : CONN_EOF;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        return CONN_ERR;
    }
    return CONN_OK;
}

bool conn_is_barrier(const char *line, size_t len)
{
    return memmem(line, len, "consent.", 8) != NULL;
}

void conn_job_done(conn *c, job *j, jobq *batch)
{
    j->done = true;
    if (c->barrier != j)
        return;
    c->barrier = NULL;
    while (c->held.head != NULL && c->barrier == NULL) {
        job *h = jobq_pop(&c->held);
        jobq_push(batch, h);
        if (conn_is_barrier(h->in.data, h->in.len))
            c->barrier = h;
    }
}

void conn_collect(conn *c, jobpool *pool)
{
    while (c->fifo_head != NULL && c->fifo_head->done) {
        job *j = c->fifo_head;
        c->fifo_head = j->conn_next;
        if (c->fifo_head == NULL)
            c->fifo_tail = NULL;
        if (!c->closing) {
            if (j->out.len == 0 || j->out.oom)
                sb_putn(&c->out, conn_oom_reply, sizeof conn_oom_reply - 1);
            else
                sb_putn(&c->out, j->out.data, j->out.len);
        }
        c->queued -= j->in.len < c->queued ? j->in.len : c->queued;
        c->njobs--;
        jobpool_put(pool, j);
    }
    /* Replies that cannot be buffered cannot be sent in order: give up on
     * the connection rather than skip one. */
    if (c->out.oom)
        c->closing = true;
}

size_t conn_out_pending(const conn *c)
{
    return c->out.len - c->out_off;
}

conn_status conn_flush(conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return CONN_ERR;
    }
    if (c->out_off == c->out.len) {
        if (c->out.cap > CONN_OUT_KEEP)
            sb_free(&c->out);
        else
            sb_reset(&c->out);
        c->out_off = 0;
    } else if (c->out_off >= 64 * 1024) {
        memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out.data[c->out.len] = '\0';
        c->out_off = 0;
    }
    return CONN_OK;
}

bool conn_update_pause(conn *c)
{
    size_t pending = conn_out_pending(c);
    bool over = pending > c->max_out || c->njobs >= c->max_jobs ||
                c->queued >= CONN_MAX_QUEUED;
    bool under = pending <= c->max_out / 2 && c->njobs <= c->max_jobs / 2 &&
                 c->queued <= CONN_MAX_QUEUED / 2;
    bool was = c->paused;
    if (over)
        c->paused = true;
    else if (under)
        c->paused = false;
    return was != c->paused;
}

bool conn_finished(const conn *c)
{
    return c->eof && c->fifo_head == NULL && conn_out_pending(c) == 0;
}

bool conn_is_idle(const conn *c)
{
    return !c->eof && !c->closing && !c->lingering && c->fifo_head == NULL &&
           conn_out_pending(c) == 0;
}

int conn_end_idle(conn *c, jobpool *pool, unsigned idle_s)
{
    size_t n = framer_pending(&c->in);
    const char *rest = c->in.buf + c->in.start;
    size_t i = 0;
    while (i < n && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\r'))
        i++;
    if (i < n) {
        job *j = jobpool_get(pool);
        if (j == NULL)
            return -1;
        char msg[80];
        snprintf(msg, sizeof msg, "line not completed within %u s", idle_s);
        rpc_write_error(&j->out, NULL, RPC_PARSE_ERROR, msg);
        /* Out of memory building it, the reply becomes -32603 when
         * collected. */
        j->done = true;
        conn_enqueue(c, j);
    }
    c->eof = true;
    framer_clear(&c->in);
    return 0;
}
