/*
 * server.h - the listening socket and the event loop: accepting clients and
 * checking their credentials, reading and framing their lines, handing them
 * to the workers, writing replies back in order, signals (SIGHUP reloads,
 * SIGTERM and SIGINT stop) and watching the policy directory.
 *
 * The event loop thread does I/O and framing; parsing and evaluation
 * happen on the workers, audit writes on the writer, except for a small
 * batch at a quiet moment, which the loop answers itself (server_dispatch
 * in server.c).
 */
#ifndef TRINED_SERVER_H
#define TRINED_SERVER_H

#include "daemon/daemon.h"
#include "daemon/snapshot.h"
#include "daemon/workers.h"

#include <stddef.h>

typedef struct server server;

/* Creates the listening socket (or takes systemd's, fd 3, when LISTEN_PID
 * and LISTEN_FDS say so), the epoll set, the signalfd (SIGTERM, SIGINT and
 * SIGHUP must already be blocked in every thread) and the inotify watch on
 * the policy directory. Returns 0 with *out, or a negative code with a
 * message in err. */
int server_open(const trined_config *cfg, server **out, char *err,
                size_t errlen);

/* Runs the event loop until SIGTERM or SIGINT, then stops accepting,
 * answers every complete line already received and flushes the replies (for
 * at most a few seconds). Returns 0, or TRINE_EIO when the loop itself
 * failed. */
int server_run(server *s, daemon_ctx *ctx, workers *w, snapshot *snap);

/* Closes every connection and descriptor and removes the socket file the
 * server created. NULL is a no-op. Call after the workers and the writer
 * have stopped: jobs still on ctx's done queue are collected first. */
void server_free(server *s, daemon_ctx *ctx);

/* True when the listening socket came from systemd (socket activation). */
bool server_activated(const server *s);

/* True when uid or gid may connect under cfg (default: our own uid and
 * root). */
bool server_peer_allowed(const trined_config *cfg, uid_t uid, gid_t gid);

#endif /* TRINED_SERVER_H */
