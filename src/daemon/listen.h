/*
 * listen.h - trined's listening socket.
 */
#ifndef TRINED_LISTEN_H
#define TRINED_LISTEN_H

#include "daemon/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns a non-blocking, close-on-exec listening socket: fd 3 when systemd
 * hands it over (LISTEN_PID is our pid and LISTEN_FDS >= 1; *activated is
 * then true and the variables are removed from the environment), else a
 * new socket bound at cfg->socket with mode cfg->socket_mode, which the
 * caller removes when done. A stale socket file (nothing answers on it) is
 * replaced; a live one, or a path that is not a socket, is refused. Returns
 * -1 with a message in err on failure. */
int listen_open(const trined_config *cfg, bool *activated, char *err,
                size_t errlen);

/* What listen_accept returns when it accepted a connection and closed it
 * at once for lack of descriptors. */
#define LISTEN_SHED (-2)

/* Returns a descriptor held in reserve (on /dev/null) for listen_accept, or
 * -1 when none can be opened. */
int listen_reserve_open(void);

/* Accepts one connection on lfd, non-blocking and close-on-exec, retrying
 * EINTR and connections aborted before they were taken. Returns the new fd;
 * -1 with errno EAGAIN when no connection waits; LISTEN_SHED when the
 * process is out of descriptors (EMFILE, ENFILE): the reserve *reserve is
 * closed to make room, the connection accepted and closed at once (its
 * peer sees EOF instead of waiting in the backlog), and the reserve opened
 * again (-1 in *reserve if that failed); -1 with errno set when accepting
 * must pause (out of descriptors with no reserve, out of memory). */
int listen_accept(int lfd, int *reserve);

/* Closes a connection that is not served (over the connection limit): what
 * the peer already sent is read and dropped first, so that the peer sees
 * EOF rather than a reset. */
void listen_shed(int fd);

/* Why a client was closed as soon as it was accepted. */
typedef enum listen_shed_reason {
    LISTEN_SHED_LIMIT = 0, /* --max-connections were open */
    LISTEN_SHED_NOFD = 1,  /* out of descriptors */
    LISTEN_SHED_KINDS = 2
} listen_shed_reason;

/* Clients closed at once since the last summary, by reason. Zero is a
 * fresh count. */
typedef struct listen_shed_count {
    uint64_t n[LISTEN_SHED_KINDS];
    int64_t logged_ms; /* when the last summary was logged */
    bool logged;       /* one was */
} listen_shed_count;

/* Logs event=conn_refused (warn) with the count of each reason that has
 * one, and resets it; at most once per period_ms of now_ms (a monotonic
 * time) unless force. open and max go in the line. */
void listen_log_shed(listen_shed_count *sc, int64_t now_ms, int64_t period_ms,
                     bool force, size_t open, int max);

/* Makes room for max_conns connections: raises the soft limit on open
 * files towards the hard limit when it is below max_conns plus what the
 * daemon itself needs, and logs event=nofile_limit (warn) when even the
 * hard limit is too low (connections past it are shed by listen_accept).
 * Returns the soft limit in effect. */
long listen_fit_nofile(size_t max_conns);

#endif /* TRINED_LISTEN_H */
