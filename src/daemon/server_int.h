/*
 * server_int.h - what the two files of the event loop share: server.c (the
 * loop, connections, signals, the policy watch, stopping) and accept.c
 * (taking new connections: peer credentials, the connection limit, running
 * out of descriptors). Nothing else includes it.
 */
#ifndef TRINED_SERVER_INT_H
#define TRINED_SERVER_INT_H

#include "daemon/conn.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/server.h"

#include <stdbool.h>
#include <stdint.h>

/* epoll data of the descriptors that are not connections (a connection's
 * is its pointer, never this small). */
enum {
    TAG_LISTEN = 1,
    TAG_SIGNAL,
    TAG_INOTIFY,
    TAG_TIMER,
    TAG_DONE,
    TAG_TICK,
    TAG_LAST = 16
};

#define SERVER_MAX_EVENTS 256
/* Bytes read from one connection per wake-up, so one busy client cannot
 * starve the others (level-triggered epoll brings it back). */
#define SERVER_READ_BUDGET (256 * 1024)
/* How long a stopping daemon waits for replies to drain. */
#define SERVER_DRAIN_MS 5000
/* Quiet time after the last policy file event before reloading. */
#define SERVER_DEBOUNCE_MS 100
/* Pause before accepting again when out of descriptors. */
#define SERVER_ACCEPT_PAUSE_MS 100
/* Idle jobs kept for reuse. */
#define SERVER_POOL_MAX 4096
/* How long a connection we are done with waits for its peer to close:
 * closing a socket with unread input would reset it, and the peer could
 * lose the last reply, or fail a send it made just before. */
#define SERVER_LINGER_MS 2000
/* The period of the housekeeping tick: idle connections, and the summary
 * of refused connections (logged at most once per period). */
#define SERVER_TICK_MS 1000
/* The most requests, and request bytes, of one wake-up the event loop
 * answers itself (see server_dispatch): enough for a wake-up's worth at
 * moderate load, few enough that the other connections wait no more than
 * about a millisecond. */
#define SERVER_INLINE_MAX 32
#define SERVER_INLINE_MAX_BYTES (64 * 1024)

struct server {
    const trined_config *cfg;
    int epfd;
    int lfd;
    int sigfd;
    int inofd;
    int tfd;
    int tickfd;     /* timerfd: the housekeeping tick */
    int reserve_fd; /* kept to accept (and close) when out of fds */
    bool activated; /* systemd's socket: not ours to remove */
    bool created;   /* we made the socket file and remove it */
    bool accept_paused;
    int64_t accept_resume_ms;
    conn *conns; /* open connections, and closed ones whose jobs
                    are still in flight */
    size_t nconns;
    size_t nopen;           /* connections whose socket is open */
    size_t nlinger;         /* connections lingering */
    listen_shed_count shed; /* connections closed at once */
    int64_t now_ms;         /* monotonic time of this wake-up */
    conn *dirty;            /* connections to look at after this wake-up */
    jobpool pool;
    jobq batch; /* new lines of this wake-up, for the workers */
    uint64_t next_id;
    size_t inflight; /* jobs made and not yet collected */
    bool stopping;
    int64_t stop_deadline;
};

/* Returns the monotonic clock in milliseconds. */
int64_t server_mono_ms(void);

/* Logs event at lvl with what failed (op) and errno's message. */
void server_log_errno(log_level lvl, const char *event, const char *what);

/* Queues c to be looked at after this wake-up (replies to write, a close to
 * finish). */
void server_mark_dirty(server *s, conn *c);

/* Accepts every pending connection: over the limit or without a
 * descriptor, closes it at once; from a peer not allowed, answers one
 * error line and closes. */
void server_accept(server *s);

/* Logs the connections closed at once, at most once per tick unless
 * force. */
void server_log_shed(server *s, bool force);

#endif /* TRINED_SERVER_INT_H */
