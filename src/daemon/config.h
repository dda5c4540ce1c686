/*
 * config.h - trined's settings: command-line flags and the configuration
 * file (DESIGN §6). The file holds `key = value` lines whose keys are the
 * long flag names without their leading dashes ("socket-mode = 0660"); `#`
 * starts a comment. Flags given on the command line override the file.
 */
#ifndef TRINED_CONFIG_H
#define TRINED_CONFIG_H

#include "daemon/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* What config_parse_args and config_load_file return besides 0. */
enum {
    CONFIG_EUSAGE = -100, /* bad command line: print usage, exit 2 */
    CONFIG_EFILE = -101   /* bad or unreadable configuration file: exit 1 */
};

#define CONFIG_MAX_IDS 64

typedef struct trined_config {
    char *policy;      /* required */
    char *socket;      /* default ./trine.sock */
    char *audit;       /* default ./trine-audit.db */
    char *config_file; /* NULL when none */
    uid_t allow_uid[CONFIG_MAX_IDS];
    size_t n_allow_uid; /* 0: the daemon's own uid and 0 */
    gid_t allow_gid[CONFIG_MAX_IDS];
    size_t n_allow_gid;
    unsigned socket_mode; /* default 0660 */
    int workers;          /* 0: the number of CPUs */
    size_t max_line;      /* default 1 MiB */
    int commit_interval_ms;
    int commit_max_rows;
    bool audit_sync_normal;
    int audit_busy_timeout_ms;
    size_t audit_max_size;    /* bytes; 0: no limit */
    bool audit_max_size_flag; /* set on the command line: kept on SIGHUP */
    log_level log_level;
    /* Resource limits (docs/daemon.md, "Limits"). */
    int max_connections;      /* open client connections; default 1024 */
    size_t max_pending_bytes; /* unsent reply bytes of one connection
                                 before reading it pauses; default 4 MiB */
    int max_pending_replies;  /* requests of one connection in progress
                                 before reading it pauses; default 1024 */
    int idle_timeout;         /* seconds; 0: never; default 300 */
    /* Bearer token verification (DESIGN §5, token.h): JWTs with issuer
     * and jwks_url, opaque tokens by introspection with client_id and the
     * secret in client_secret_file. */
    char *issuer;
    char *jwks_url;
    char *introspection_url;
    char *client_id;
    char *client_secret_file;
    int http_timeout_ms;   /* each request to the server; default 5000 */
    int token_cache_ttl_s; /* introspection results; default 300 */
    bool help;
    /* Where settings come from while parsing: a list setting (allow-uid,
     * allow-gid) given again by a later source replaces the earlier list,
     * and repeats within one source add to it. */
    int source;
    int uid_source;
    int gid_source;
} trined_config;

/* Fills c with the defaults. Returns 0 or TRINE_ENOMEM. */
int config_init(trined_config *c);

/* Frees the strings c owns (not c itself). */
void config_free(trined_config *c);

/* Sets one setting by its key (a long flag name without dashes, '_'
 * accepted for '-'). Returns 0; CONFIG_EUSAGE with a message in err for an
 * unknown key or a bad value; TRINE_ENOMEM. */
int config_set(trined_config *c, const char *key, const char *value, char *err,
               size_t errlen);

/* Reads a configuration file into c. Returns 0; CONFIG_EFILE with
 * "PATH:LINE: message" (or "PATH: reason") in err; TRINE_ENOMEM. */
int config_load_file(trined_config *c, const char *path, char *err,
                     size_t errlen);

/* Parses argv (argv[0] is the program): first finds --config and loads that
 * file, then applies every flag, so flags override the file. Sets c->help
 * for --help (and stops). Returns 0; CONFIG_EUSAGE or CONFIG_EFILE with a
 * message in err; TRINE_ENOMEM. A missing --policy is CONFIG_EUSAGE. */
int config_parse_args(trined_config *c, int argc, char **argv, char *err,
                      size_t errlen);

/* Checks that the bearer settings go together: --issuer with --jwks-url,
 * --introspection-url with --client-id and --client-secret-file (and
 * neither of those two without it), and that every URL is https (or http
 * to a loopback host). Returns 0, or CONFIG_EUSAGE with a message in err.
 * config_parse_args calls it. */
int config_check_tokens(const trined_config *c, char *err, size_t errlen);

/* Writes the usage text to f. */
void config_usage(FILE *f);

#endif /* TRINED_CONFIG_H */
