/*
 * listen.h - trined's listening socket.
 */
#ifndef TRINED_LISTEN_H
#define TRINED_LISTEN_H

#include "daemon/config.h"

#include <stdbool.h>
#include <stddef.h>

/* Returns a non-blocking, close-on-exec listening socket: fd 3 when systemd
 * hands it over (LISTEN_PID is our pid and LISTEN_FDS >= 1; *activated is
 * then true and the variables are removed from the environment), else a
 * new socket bound at cfg->socket with mode cfg->socket_mode, which the
 * caller removes when done. A stale socket file (nothing answers on it) is
 * replaced; a live one, or a path that is not a socket, is refused. Returns
 * -1 with a message in err on failure. */
int listen_open(const trined_config *cfg, bool *activated, char *err,
                size_t errlen);

#endif /* TRINED_LISTEN_H */
