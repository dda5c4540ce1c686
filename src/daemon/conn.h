/*
 * conn.h - one client connection: line framing of its input, the order of
 * its replies, its output buffer, and backpressure.
 *
 * Everything here runs on the event loop thread. A connection lists its
 * jobs in request order; a job's reply is copied to the output buffer only
 * once every job before it has its own, so replies leave in request order
 * however the workers and the audit writer finish them.
 */
#ifndef TRINED_CONN_H
#define TRINED_CONN_H

#include "daemon/job.h"
#include "lib/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Line framing ------------------------------------------------------ */

/* Splits a byte stream into '\n'-terminated lines of at most max_line
 * bytes (the '\n' not counted). Bytes are read straight into its buffer. */
typedef struct framer {
    char *buf;
    size_t cap;
    size_t start; /* first byte not yet handed out */
    size_t len;   /* bytes in buf */
    size_t scan;  /* bytes after start already searched for '\n' */
    size_t max_line;
} framer;

typedef enum frame_status {
    FRAME_NONE = 0,     /* no complete line yet */
    FRAME_LINE = 1,     /* a line */
    FRAME_OVERSIZE = -1 /* a line passed max_line: the stream is unusable */
} frame_status;

void framer_init(framer *f, size_t max_line);
void framer_free(framer *f);

/* Returns room for at least want more bytes at the end of the buffer
 * (moving or growing it), with the actual room in *avail; NULL on OOM.
 * Lines handed out earlier are invalid after this call. */
char *framer_space(framer *f, size_t want, size_t *avail);

/* Records that n bytes were written into the space. */
void framer_commit(framer *f, size_t n);

/* Hands out the next complete line (without its '\n'; a '\r' before it is
 * kept, and is JSON whitespace) in *line and *len, valid until the next
 * framer_space. */
frame_status framer_next(framer *f, const char **line, size_t *len);

/* Bytes of an incomplete line held. */
size_t framer_pending(const framer *f);

/* Drops whatever is held, keeping a small buffer. */
void framer_clear(framer *f);

/* ---- Connections ------------------------------------------------------- */

/* Backpressure. Reading from a client stops while it has more than
 * max_out bytes of replies unsent, max_jobs requests in progress, or
 * CONN_MAX_QUEUED bytes of request lines in progress, and resumes once
 * each is at most half of its limit. The defaults of the first two (set
 * by conn_new, changed by conn_set_limits) are these. */
#define CONN_OUT_CAP (4u * 1024u * 1024u)
#define CONN_MAX_JOBS 1024u
#define CONN_MAX_QUEUED (8u * 1024u * 1024u)
/* The most bytes one read takes from a socket. Reading stops while complete
 * lines wait to be framed, and an incomplete line longer than max_line ends
 * the stream, so a connection's buffered input never exceeds max_line +
 * CONN_READ_MAX bytes. */
#define CONN_READ_MAX (64u * 1024u)

typedef struct conn {
    int fd;
    uint64_t id;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    framer in;
    strbuf out;     /* replies not yet written */
    size_t out_off; /* bytes of out already written */
    job *fifo_head; /* every job of this connection, request order */
    job *fifo_tail;
    size_t njobs;
    size_t queued; /* bytes of request lines not answered yet */
    /* A consent request in progress, and the later lines held back until
     * it is done: consent.grant, consent.revoke and consent.list take
     * effect in request order with the checks around them. */
    job *barrier;
    jobq held;
    bool eof;             /* no more input: answer what came, then close */
    bool peer_eof;        /* the peer closed its sending side */
    bool lingering;       /* answered and shut down for writing; input is
                             read and dropped until the peer closes */
    int64_t linger_until; /* monotonic ms when lingering gives up */
    bool closing;         /* close now; pending replies are dropped */
    bool paused;          /* reading stopped for backpressure */
    size_t max_out;       /* backpressure limits (see CONN_OUT_CAP) */
    size_t max_jobs;
    /* Monotonic ms of the last event or progress, for the idle timeout;
     * kept by the event loop. */
    int64_t active_ms;
    bool dirty;      /* on the loop's list of connections to flush */
    uint32_t events; /* epoll interest registered now */
    struct conn *dirty_next;
    struct conn *prev; /* the server's list of connections */
    struct conn *next;
} conn;

/* Returns a new connection on fd (not yet registered anywhere), or NULL on
 * OOM. */
conn *conn_new(int fd, uint64_t id, size_t max_line);

/* Frees a connection whose job list is empty; closes fd if still open. */
void conn_free(conn *c);

/* Sets c's backpressure limits: reading pauses above max_out bytes of
 * unsent replies or max_jobs requests in progress (each at least 1). */
void conn_set_limits(conn *c, size_t max_out, size_t max_jobs);

typedef enum conn_status {
    CONN_OK = 0,
    CONN_EOF = 1, /* the peer closed its side */
    CONN_ERR = -1 /* a read error or OOM: close now */
} conn_status;

/* Frames the lines already buffered, then reads what the socket has (at
 * most budget bytes) and frames those, making one job per line (from pool,
 * listed on c and pushed on batch). Stops early when c becomes paused. An
 * oversized line queues a finished -32700 job and sets eof. */
conn_status conn_read(conn *c, jobpool *pool, jobq *batch, size_t budget);

/* True when a request line may be a consent request (it mentions
 * "consent."): lines after it wait until it is answered. A check that
 * merely mentions the word is only held back, never changed. */
bool conn_is_barrier(const char *line, size_t len);

/* Records that job j of c came back: when it was c's barrier, the lines
 * held behind it go on batch, up to the next barrier. */
void conn_job_done(conn *c, job *j, jobq *batch);

/* Moves the replies of finished jobs at the head of the list to the output
 * buffer (or, when closing, drops them) and recycles the jobs. */
void conn_collect(conn *c, jobpool *pool);

/* Writes as much pending output as the socket takes. Returns CONN_OK or
 * CONN_ERR. */
conn_status conn_flush(conn *c);

/* Bytes of output not yet written. */
size_t conn_out_pending(const conn *c);

/* Recomputes c->paused from its backlog. Returns true when it changed. */
bool conn_update_pause(conn *c);

/* True once an eof connection has answered and written everything. */
bool conn_finished(const conn *c);

/* True when c is open for requests and has none in progress and no reply
 * unsent: closing it would lose nothing but a partial line. */
bool conn_is_idle(const conn *c);

/* Ends an idle connection's input: an incomplete line it holds is answered
 * with a -32700 error naming idle_s (the timeout, in seconds) rather than
 * dropped silently, and c becomes eof, so it closes once that is written.
 * Returns 0, or -1 when out of memory (close c then). */
int conn_end_idle(conn *c, jobpool *pool, unsigned idle_s);

#endif /* TRINED_CONN_H */
