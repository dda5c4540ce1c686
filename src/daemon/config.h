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
    log_level log_level;
    /* Bearer verification settings (DESIGN §5). Parsed so that a
     * deployment naming them gets a clear refusal rather than an unknown
     * flag; this daemon does not verify tokens itself. */
    char *issuer;
    char *jwks_url;
    char *introspection_url;
    char *client_id;
    char *client_secret_file;
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

/* Writes the usage text to f. */
void config_usage(FILE *f);

#endif /* TRINED_CONFIG_H */
