/*
 * proxy.h - the state of `trine proxy`, shared by its parts: the command,
 * the child and the poll loop (proxy.c), buffers and line framing
 * (proxy_io.c), the connection to trined (proxy_daemon.c) and the
 * decisions on each message (proxy_flow.c; the messages themselves are
 * read and built by proxy_msg.c).
 *
 * One process, one thread: poll(2) over standard input (the MCP client),
 * standard output, the child's stdin and stdout (the MCP server), the
 * daemon's socket and a self-pipe for signals. Every write goes through a
 * buffer, so no side waits on another.
 */
#ifndef TRINE_CLI_PROXY_H
#define TRINE_CLI_PROXY_H

#include "cli/proxy_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long the daemon may take to answer one request, in milliseconds. */
#define PROXY_DAEMON_TIMEOUT_MS 30000
/* The longest reply line read from the daemon. */
#define PROXY_DAEMON_REPLY_MAX (16u * 1024u * 1024u)
/* How many tools/list requests may wait for the server's answer at once. */
#define PROXY_MAX_LISTS 1024

/* Bytes waiting to be written to one descriptor: data[off, len). */
typedef struct proxy_buf {
    char *data;
    size_t off;
    size_t len;
    size_t cap;
} proxy_buf;

/* A newline-delimited stream being read. */
typedef struct proxy_reader {
    int fd;
    char *data;
    size_t len; /* bytes held */
    size_t cap;
    size_t scan;   /* bytes of data already searched for '\n' */
    size_t max;    /* the longest line kept (the '\n' not counted) */
    bool skipping; /* dropping the rest of a line longer than max */
    bool eof;
} proxy_reader;

/* Where the decision on a queued client line stands. */
typedef enum proxy_step {
    STEP_NEXT,   /* nothing asked: take the next message of the line */
    STEP_CHECK,  /* waiting for the daemon's check */
    STEP_ELICIT, /* waiting for the client's answer to our elicitation */
    STEP_GRANT,  /* waiting for the daemon's consent.grant */
    STEP_TOOLS   /* waiting for the daemon's policy.tools */
} proxy_step;

/* One line from the client, queued until each of its messages is decided:
 * forwarded to the server, or answered by the proxy. */
typedef struct proxy_job {
    struct proxy_job *next;
    char *raw; /* the line as it came, with its '\n' */
    size_t rawlen;
    pmsg_line line;
    bool *keep;      /* per message: forward it */
    json_t *replies; /* the proxy's own answers, in order */
    size_t cur;      /* the message being decided */
    proxy_step step;
    json_t *check;      /* the check params of the current call */
    json_t *result;     /* the last check result of the current call */
    bool rechecked;     /* the current call was checked again after a grant */
    bool cancelled;     /* the client cancelled the current call */
    char elicit_id[64]; /* our elicitation's id (STEP_ELICIT) */
} proxy_job;

/* A tools/list the server has still to answer, with what the policy has. */
typedef struct proxy_list {
    json_t *id;
    json_t *tools;
    bool wildcard;
} proxy_list;

/* The connection to trined: one request in flight at a time. */
typedef struct proxy_daemon {
    const char *path;
    int fd; /* -1: not connected (connect on the next request) */
    proxy_buf out;
    proxy_reader in;
    bool waiting;
    int64_t id; /* the id of the request in flight */
    int64_t next_id;
    int64_t deadline_ms; /* when the request in flight fails */
    json_t *reply;       /* its reply, read and not yet handled */
    bool oversize;       /* a reply line was longer than the limit */
} proxy_daemon;

typedef struct proxy {
    /* Configuration. */
    const char *server;
    size_t max_message;
    pmsg_ident who;
    json_t *claims;   /* owned; who.claims points here */
    char session[33]; /* 128 random bits, hex */
    char nonce[17];   /* 64 random bits, hex: part of our elicitation ids */

    /* The child (the MCP server). */
    pid_t child;
    bool child_exited;
    int child_status;  /* our exit status once child_exited */
    int child_in;      /* its stdin; -1 once closed */
    proxy_reader sout; /* its stdout */
    proxy_buf sin;     /* bytes for its stdin */

    /* The client: our stdin and stdout. */
    proxy_reader cin;
    proxy_buf cout;
    bool client_eof; /* stdin closed, or stdout broken */
    bool cout_dead;  /* stdout broken: its bytes are dropped */

    proxy_daemon d;

    /* Client lines waiting for decisions, oldest first. */
    proxy_job *head;
    proxy_job *tail;
    size_t queued_bytes;
    bool elicits;                /* the client declared elicitation */
    unsigned long long elicit_n; /* our elicitation requests so far */

    proxy_list lists[PROXY_MAX_LISTS];
    size_t nlists;

    bool fatal; /* out of memory: stop */
} proxy;

/* ---- proxy_io.c: buffers, framing, messages to either side -------------- */

/* Appends n bytes to b. Returns 0 or TRINE_ENOMEM. */
int proxy_buf_put(proxy_buf *b, const char *s, size_t n);

/* Bytes of b not yet written. */
size_t proxy_buf_pending(const proxy_buf *b);

void proxy_buf_free(proxy_buf *b);

/* Writes what b holds to fd without blocking. Returns 0 (all written, or
 * the descriptor is full) or the errno of a failed write. */
int proxy_buf_flush(proxy_buf *b, int fd);

/* Reads available bytes from r->fd and calls on_line for each complete
 * line and on_oversize once for each line longer than r->max; at end of
 * input, bytes after the last newline are a last line. Returns 0, or -1
 * with errno set on a read error. */
int proxy_reader_fill(proxy *px, proxy_reader *r,
                      void (*on_line)(proxy *, const char *, size_t),
                      void (*on_oversize)(proxy *));

void proxy_reader_free(proxy_reader *r);

/* Writes one message (any JSON value) to the client as a line; a message
 * that cannot be built marks the proxy fatal. Takes msg. */
void proxy_to_client(proxy *px, json_t *msg);

/* Queues bytes for the client (dropped once its output is broken). */
void proxy_to_client_raw(proxy *px, const char *s, size_t n);

/* Queues bytes for the server's stdin (dropped once it has exited). */
void proxy_to_server(proxy *px, const char *s, size_t n);

/* ---- proxy.c: the command, the child, the loop -------------------------- */

/* Writes "trine proxy: MESSAGE" on stderr. */
void proxy_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds of the monotonic clock. */
int64_t proxy_now_ms(void);

/* ---- proxy_daemon.c: the connection to trined --------------------------- */

/* Sends one request to the daemon, connecting first when needed. Takes
 * params. Returns 0 (the reply, or the failure, comes to
 * proxy_flow_reply), or -1 with why when it cannot be sent. */
int proxy_daemon_send(proxy *px, const char *method, json_t *params, char *why,
                      size_t whylen);

/* Reads what the daemon sent; call when its socket is readable. */
void proxy_daemon_read(proxy *px);

/* Writes what is queued for the daemon; call when its socket is
 * writable. */
void proxy_daemon_write(proxy *px);

/* Fails the request in flight when its deadline has passed. */
void proxy_daemon_tick(proxy *px, int64_t now_ms);

/* Drops the connection (the next request connects again). */
void proxy_daemon_close(proxy *px);

/* ---- proxy_flow.c: the decisions ---------------------------------------- */

/* Handles one complete line from the client (len bytes, no newline). */
void proxy_client_line(proxy *px, const char *line, size_t len);

/* Answers a client line longer than --max-message. */
void proxy_client_oversize(proxy *px);

/* Handles one complete line from the server: filters the result of a
 * tools/list the client asked for, forwards everything else unchanged. */
void proxy_server_line(proxy *px, const char *line, size_t len);

/* The client has gone: a pending elicitation can no longer be answered. */
void proxy_client_gone(proxy *px);

/* Takes the daemon's reply to the request in flight (borrowed), or its
 * failure (reply NULL, why set). */
void proxy_flow_reply(proxy *px, const json_t *reply, const char *why);

/* Frees the queue, the pending lists and the daemon connection. */
void proxy_flow_free(proxy *px);

#endif /* TRINE_CLI_PROXY_H */
