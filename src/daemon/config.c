/*
 * config.c - trined's flags and configuration file (see config.h).
 */
#include "daemon/config.h"

#include "daemon/http.h"
#include "trine.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The largest configuration file read. */
#define CONFIG_FILE_MAX (1024 * 1024)

typedef enum opt_type {
    OPT_STR,
    OPT_IDS_UID,
    OPT_IDS_GID,
    OPT_MODE,
    OPT_INT,
    OPT_SIZE,
    OPT_SYNC,
    OPT_LEVEL
} opt_type;

typedef struct opt_spec {
    const char *name;
    opt_type type;
    size_t off;    /* offset of the field in trined_config */
    long long min; /* OPT_INT and OPT_SIZE bounds */
    long long max;
} opt_spec;

#define OFF(f) offsetof(trined_config, f)

static const opt_spec opt_table[] = {
    {"policy", OPT_STR, OFF(policy), 0, 0},
    {"socket", OPT_STR, OFF(socket), 0, 0},
    {"audit", OPT_STR, OFF(audit), 0, 0},
    {"allow-uid", OPT_IDS_UID, 0, 0, 0},
    {"allow-gid", OPT_IDS_GID, 0, 0, 0},
    {"socket-mode", OPT_MODE, OFF(socket_mode), 0, 0},
    {"workers", OPT_INT, OFF(workers), 1, 256},
    {"max-line", OPT_SIZE, OFF(max_line), 256, 1024LL * 1024 * 1024},
    {"commit-interval-ms", OPT_INT, OFF(commit_interval_ms), 0, 1000},
    {"commit-max-rows", OPT_INT, OFF(commit_max_rows), 1, 100000},
    {"audit-sync", OPT_SYNC, OFF(audit_sync_normal), 0, 0},
    {"audit-busy-timeout-ms", OPT_INT, OFF(audit_busy_timeout_ms), 0, 600000},
    {"audit-max-size", OPT_SIZE, OFF(audit_max_size), 0, 1LL << 50},
    {"log-level", OPT_LEVEL, OFF(log_level), 0, 0},
    {"max-connections", OPT_INT, OFF(max_connections), 1, 1000000},
    {"max-pending-bytes", OPT_SIZE, OFF(max_pending_bytes), 65536,
     1024LL * 1024 * 1024},
    {"max-pending-replies", OPT_INT, OFF(max_pending_replies), 1, 65536},
    {"idle-timeout", OPT_INT, OFF(idle_timeout), 0, 604800},
    {"issuer", OPT_STR, OFF(issuer), 0, 0},
    {"jwks-url", OPT_STR, OFF(jwks_url), 0, 0},
    {"introspection-url", OPT_STR, OFF(introspection_url), 0, 0},
    {"client-id", OPT_STR, OFF(client_id), 0, 0},
    {"client-secret-file", OPT_STR, OFF(client_secret_file), 0, 0},
    {"http-timeout", OPT_INT, OFF(http_timeout_ms), 100, 120000},
    {"token-cache-ttl", OPT_INT, OFF(token_cache_ttl_s), 0, 86400},
};

#define OPT_COUNT (sizeof opt_table / sizeof opt_table[0])

static void config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int config_init(trined_config *c)
{
    memset(c, 0, sizeof *c);
    c->socket = strdup("./trine.sock");
    c->audit = strdup("./trine-audit.db");
    if (c->socket == NULL || c->audit == NULL) {
        config_free(c);
        return TRINE_ENOMEM;
    }
    c->socket_mode = 0660;
    c->workers = 0;
    c->max_line = 1048576;
    c->commit_interval_ms = 2;
    c->commit_max_rows = 512;
    /* WAL with synchronous=NORMAL loses no committed row when trined
     * crashes or is killed (DESIGN §7); only a power loss or a kernel
     * crash can take the last commits. --audit-sync full closes that gap
     * at the price of a sync per commit (docs/audit.md). */
    c->audit_sync_normal = true;
    c->audit_busy_timeout_ms = 1000;
    c->log_level = LOG_INFO;
    c->http_timeout_ms = 5000;
    c->token_cache_ttl_s = 300;
    c->max_connections = 1024;
    c->max_pending_bytes = 4u * 1024u * 1024u;
    c->max_pending_replies = 1024;
    c->idle_timeout = 300;
    c->uid_source = -1;
    c->gid_source = -1;
    return 0;
}

void config_free(trined_config *c)
{
    free(c->policy);
    free(c->socket);
    free(c->audit);
    free(c->config_file);
    free(c->issuer);
    free(c->jwks_url);
    free(c->introspection_url);
    free(c->client_id);
    free(c->client_secret_file);
    memset(c, 0, sizeof *c);
}

/* Finds a setting by name (n bytes); '_' matches '-'. */
static const opt_spec *config_find(const char *name, size_t n)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *o = opt_table[i].name;
        if (strlen(o) != n)
            continue;
        size_t k = 0;
        while (k < n && (name[k] == o[k] || (name[k] == '_' && o[k] == '-')))
            k++;
        if (k == n)
            return &opt_table[i];
    }
    return NULL;
}

/* Parses a whole decimal number within [min, max]. */
static bool config_number(const char *s, long long min, long long max,
                          long long *out)
{
    if (*s == '\0' || strlen(s) > 18)
        return false;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Parses "1000,1001" into ids (appending), at most CONFIG_MAX_IDS. */
static int config_ids(const char *name, const char *value, unsigned *ids,
                      size_t *n, char *err, size_t errlen)
{
    const char *p = value;
    if (*p == '\0') {
        config_err(err, errlen, "--%s needs a comma-separated list of ids",
                   name);
        return CONFIG_EUSAGE;
    }
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char num[24];
        long long v;
        if (len == 0 || len >= sizeof num) {
            config_err(err, errlen, "--%s: \"%s\" is not a list of ids", name,
                       value);
            return CONFIG_EUSAGE;
        }
        memcpy(num, p, len);
        num[len] = '\0';
        if (!config_number(num, 0, (long long)UINT_MAX - 1, &v)) {
            config_err(err, errlen, "--%s: \"%s\" is not a numeric id", name,
                       num);
            return CONFIG_EUSAGE;
        }
        if (*n >= CONFIG_MAX_IDS) {
            config_err(err, errlen, "--%s: at most %d ids", name,
                       CONFIG_MAX_IDS);
            return CONFIG_EUSAGE;
        }
        ids[(*n)++] = (unsigned)v;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                config_err(err, errlen, "--%s: \"%s\" ends with a comma", name,
                           value);
                return CONFIG_EUSAGE;
            }
        }
    }
    return 0;
}

int config_set(trined_config *c, const char *key, const char *value, char *err,
               size_t errlen)
{
    const opt_spec *o = config_find(key, strlen(key));
    if (o == NULL) {
        config_err(err, errlen, "unknown setting \"%s\"", key);
        return CONFIG_EUSAGE;
    }
    char *base = (char *)c;
    long long v;
    switch (o->type) {
    case OPT_STR: {
        char **field = (char **)(void *)(base + o->off);
        if (*value == '\0') {
            config_err(err, errlen, "--%s needs a non-empty value", o->name);
            return CONFIG_EUSAGE;
        }
        char *copy = strdup(value);
        if (copy == NULL)
            return TRINE_ENOMEM;
        free(*field);
        *field = copy;
        return 0;
    }
    case OPT_IDS_UID:
        if (c->uid_source != c->source) {
            c->n_allow_uid = 0;
            c->uid_source = c->source;
        }
        return config_ids(o->name, value, (unsigned *)c->allow_uid,
                          &c->n_allow_uid, err, errlen);
    case OPT_IDS_GID:
        if (c->gid_source != c->source) {
            c->n_allow_gid = 0;
            c->gid_source = c->source;
        }
        return config_ids(o->name, value, (unsigned *)c->allow_gid,
                          &c->n_allow_gid, err, errlen);
    case OPT_MODE: {
        unsigned m = 0;
        size_t len = strlen(value);
        bool ok = len >= 1 && len <= 4;
        for (size_t i = 0; ok && i < len; i++) {
            if (value[i] < '0' || value[i] > '7')
                ok = false;
            else
                m = m * 8 + (unsigned)(value[i] - '0');
        }
        if (!ok || m > 0777) {
            config_err(err, errlen,
                       "--socket-mode needs an octal mode such as 0660, not "
                       "\"%s\"",
                       value);
            return CONFIG_EUSAGE;
        }
        c->socket_mode = m;
        return 0;
    }
    case OPT_INT:
        if (!config_number(value, o->min, o->max, &v)) {
            config_err(err, errlen,
                       "--%s needs an integer from %lld to %lld, not \"%s\"",
                       o->name, o->min, o->max, value);
            return CONFIG_EUSAGE;
        }
        *(int *)(void *)(base + o->off) = (int)v;
        return 0;
    case OPT_SIZE:
        if (!config_number(value, o->min, o->max, &v)) {
            config_err(err, errlen,
                       "--%s needs a byte count from %lld to %lld, not "
                       "\"%s\"",
                       o->name, o->min, o->max, value);
            return CONFIG_EUSAGE;
        }
        *(size_t *)(void *)(base + o->off) = (size_t)v;
        return 0;
    case OPT_SYNC:
        if (strcmp(value, "full") == 0) {
            c->audit_sync_normal = false;
        } else if (strcmp(value, "normal") == 0) {
            c->audit_sync_normal = true;
        } else {
            config_err(err, errlen,
                       "--audit-sync needs \"full\" or \"normal\", not \"%s\"",
                       value);
            return CONFIG_EUSAGE;
        }
        return 0;
    case OPT_LEVEL:
        if (log_parse_level(value, &c->log_level) != 0) {
            config_err(err, errlen,
                       "--log-level needs debug, info, warn or error, not "
                       "\"%s\"",
                       value);
            return CONFIG_EUSAGE;
        }
        return 0;
    }
    return CONFIG_EUSAGE;
}

/* Trims spaces and tabs at both ends of s in place; returns the start. */
static char *config_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Handles one line of a configuration file. */
static int config_line(trined_config *c, char *line, const char *path,
                       unsigned lineno, char *err, size_t errlen)
{
    /* A '#' at the start, or after a space, begins a comment; inside a
     * value such as a path it is an ordinary character. */
    for (char *p = line; *p; p++) {
        if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    char *s = config_trim(line);
    if (*s == '\0')
        return 0;
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        config_err(err, errlen, "%s:%u: expected \"key = value\"", path,
                   lineno);
        return CONFIG_EFILE;
    }
    *eq = '\0';
    char *key = config_trim(s);
    char *value = config_trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    if (strcmp(key, "config") == 0) {
        config_err(err, errlen,
                   "%s:%u: \"config\" cannot be set in a configuration file",
                   path, lineno);
        return CONFIG_EFILE;
    }
    if (strcmp(key, "help") == 0 || *key == '\0') {
        config_err(err, errlen, "%s:%u: unknown setting \"%s\"", path, lineno,
                   key);
        return CONFIG_EFILE;
    }
    char msg[256];
    int rc = config_set(c, key, value, msg, sizeof msg);
    if (rc == CONFIG_EUSAGE) {
        config_err(err, errlen, "%s:%u: %s", path, lineno, msg);
        return CONFIG_EFILE;
    }
    return rc;
}

int config_load_file(trined_config *c, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        config_err(err, errlen, "%s: %s", path, strerror(errno));
        return CONFIG_EFILE;
    }
    c->source++;
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    size_t total = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) {
            if (errno == ENOMEM) {
                rc = TRINE_ENOMEM;
            } else if (ferror(f)) {
                config_err(err, errlen, "%s: %s", path, strerror(errno));
                rc = CONFIG_EFILE;
            }
            break;
        }
        lineno++;
        total += (size_t)n;
        if (total > CONFIG_FILE_MAX) {
            config_err(err, errlen, "%s: larger than %d bytes", path,
                       CONFIG_FILE_MAX);
            rc = CONFIG_EFILE;
            break;
        }
        if ((size_t)n != strlen(line)) {
            config_err(err, errlen, "%s:%u: NUL byte in line", path, lineno);
            rc = CONFIG_EFILE;
            break;
        }
        if (n > 0 && line[n - 1] == '\n')
            line[n - 1] = '\0';
        rc = config_line(c, line, path, lineno, err, errlen);
        if (rc != 0)
            break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Splits argv[*i] ("--name" or "--name=value") and finds its value.
 * Returns 0 with *name, *namelen and *value (NULL for a flag without one),
 * or CONFIG_EUSAGE. */
static int config_arg(int argc, char **argv, int *i, const char **name,
                      size_t *namelen, const char **value, char *err,
                      size_t errlen)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        config_err(err, errlen, "unexpected argument \"%s\"", a);
        return CONFIG_EUSAGE;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    *name = a;
    *namelen = eq ? (size_t)(eq - a) : strlen(a);
    *value = NULL;
    bool is_help = *namelen == 4 && strncmp(a, "help", 4) == 0;
    bool is_config = *namelen == 6 && strncmp(a, "config", 6) == 0;
    if (is_help) {
        if (eq != NULL) {
            config_err(err, errlen, "--help takes no value");
            return CONFIG_EUSAGE;
        }
        return 0;
    }
    if (!is_config && config_find(a, *namelen) == NULL) {
        config_err(err, errlen, "unknown option --%.*s", (int)*namelen, a);
        return CONFIG_EUSAGE;
    }
    if (eq != NULL) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        config_err(err, errlen, "--%.*s needs a value", (int)*namelen, a);
        return CONFIG_EUSAGE;
    }
    return 0;
}

int config_parse_args(trined_config *c, int argc, char **argv, char *err,
                      size_t errlen)
{
    const char *name;
    const char *value;
    size_t namelen;
    int rc;

    /* First pass: syntax, --help and --config. */
    for (int i = 1; i < argc; i++) {
        rc = config_arg(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (rc != 0)
            return rc;
        if (value == NULL) {
            c->help = true;
            return 0;
        }
        if (namelen == 6 && strncmp(name, "config", 6) == 0) {
            if (*value == '\0') {
                config_err(err, errlen, "--config needs a file name");
                return CONFIG_EUSAGE;
            }
            char *copy = strdup(value);
            if (copy == NULL)
                return TRINE_ENOMEM;
            free(c->config_file);
            c->config_file = copy;
        }
    }
    if (c->config_file != NULL) {
        rc = config_load_file(c, c->config_file, err, errlen);
        if (rc != 0)
            return rc;
    }

    /* Second pass: the flags, over whatever the file set. */
    c->source++;
    for (int i = 1; i < argc; i++) {
        rc = config_arg(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (rc != 0)
            return rc;
        if (namelen == 6 && strncmp(name, "config", 6) == 0)
            continue;
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)namelen, name);
        rc = config_set(c, key, value, err, errlen);
        if (rc != 0)
            return rc;
        /* Flags override the file, on SIGHUP too (writer.c). */
        const char *set = config_find(key, strlen(key))->name;
        if (strcmp(set, "audit-max-size") == 0)
            c->audit_max_size_flag = true;
    }
    if (c->policy == NULL) {
        config_err(err, errlen, "--policy is required");
        return CONFIG_EUSAGE;
    }
    return config_check_tokens(c, err, errlen);
}

int config_check_tokens(const trined_config *c, char *err, size_t errlen)
{
    if (c->jwks_url != NULL && c->issuer == NULL) {
        config_err(err, errlen,
                   "--jwks-url needs --issuer: the iss every token must "
                   "carry");
        return CONFIG_EUSAGE;
    }
    if (c->issuer != NULL && c->jwks_url == NULL) {
        config_err(err, errlen,
                   "--issuer needs --jwks-url: where the issuer's signing "
                   "keys are");
        return CONFIG_EUSAGE;
    }
    if (c->introspection_url != NULL &&
        (c->client_id == NULL || c->client_secret_file == NULL)) {
        config_err(err, errlen,
                   "--introspection-url needs --client-id and "
                   "--client-secret-file: the introspection endpoint "
                   "authenticates its clients");
        return CONFIG_EUSAGE;
    }
    if (c->introspection_url == NULL &&
        (c->client_id != NULL || c->client_secret_file != NULL)) {
        config_err(err, errlen,
                   "--client-id and --client-secret-file are used only with "
                   "--introspection-url");
        return CONFIG_EUSAGE;
    }
    const char *urls[2] = {c->jwks_url, c->introspection_url};
    const char *names[2] = {"--jwks-url", "--introspection-url"};
    for (int i = 0; i < 2; i++) {
        char msg[256];
        if (urls[i] == NULL)
            continue;
        int rc = http_url_check(urls[i], msg, sizeof msg);
        if (rc == TRINE_ENOMEM)
            return rc;
        if (rc != 0) {
            config_err(err, errlen, "%s: %s", names[i], msg);
            return CONFIG_EUSAGE;
        }
    }
    return 0;
}

void config_usage(FILE *f)
{
    fputs("usage: trined --policy DIR [--socket PATH] [--audit FILE]\n"
          "              [--config FILE] [--allow-uid UID,...] "
          "[--allow-gid GID,...]\n"
          "              [--socket-mode OCTAL] [--workers N] [--max-line "
          "BYTES]\n"
          "              [--commit-interval-ms MS] [--commit-max-rows N]\n"
          "              [--audit-sync full|normal] [--audit-busy-timeout-ms "
          "MS]\n"
          "              [--audit-max-size BYTES] "
          "[--log-level debug|info|warn|error]\n"
          "              [--max-connections N] [--max-pending-bytes BYTES]\n"
          "              [--max-pending-replies N] [--idle-timeout S]\n"
          "              [--issuer URL --jwks-url URL]\n"
          "              [--introspection-url URL --client-id ID\n"
          "               --client-secret-file FILE]\n"
          "              [--http-timeout MS] [--token-cache-ttl S]\n"
          "\n"
          "  --policy DIR              policy directory (every *.trine file)\n"
          "  --socket PATH             Unix socket to listen on "
          "(./trine.sock)\n"
          "  --audit FILE              SQLite audit log (./trine-audit.db)\n"
          "  --config FILE             settings file: \"key = value\" lines, "
          "keys are\n"
          "                            the long flag names; flags override "
          "it\n"
          "  --allow-uid UID,...       peer uids allowed to connect (default: "
          "our own\n"
          "                            uid and 0)\n"
          "  --allow-gid GID,...       peer gids allowed to connect\n"
          "  --socket-mode OCTAL       socket file mode (0660)\n"
          "  --workers N               evaluation threads (number of CPUs)\n"
          "  --max-line BYTES          longest request line (1048576)\n"
          "  --commit-interval-ms MS   longest wait to group audit rows (2)\n"
          "  --commit-max-rows N       most rows in one audit transaction "
          "(512)\n"
          "  --audit-sync full|normal  SQLite synchronous setting (normal;"
          " full\n"
          "                            also survives power loss)\n"
          "  --audit-busy-timeout-ms MS  wait for a locked audit log (1000)\n"
          "  --audit-max-size BYTES    largest audit log; 0: no limit (0);\n"
          "                            the file's value applies on SIGHUP\n"
          "  --log-level LEVEL         lowest level logged (info)\n"
          "  --issuer URL              bearer JWTs: the iss they must carry\n"
          "  --jwks-url URL            bearer JWTs: the issuer's key set "
          "(https)\n"
          "  --introspection-url URL   opaque bearer tokens: RFC 7662 "
          "endpoint\n"
          "  --client-id ID            our client id at that endpoint\n"
          "  --client-secret-file FILE our client secret, read from FILE\n"
          "  --http-timeout MS         each request to the authorization "
          "server\n"
          "                            (5000; connecting: 2000 at most)\n"
          "  --token-cache-ttl S       cache introspection results this "
          "long at\n"
          "                            most; 0: never (300)\n"
          "  --max-connections N       open client connections; more are "
          "closed at\n"
          "                            once (1024)\n"
          "  --max-pending-bytes BYTES unsent replies of one client before "
          "its\n"
          "                            requests are no longer read "
          "(4194304)\n"
          "  --max-pending-replies N   requests of one client in progress "
          "before\n"
          "                            its requests are no longer read "
          "(1024)\n"
          "  --idle-timeout S          close a connection idle this long; 0: "
          "never\n"
          "                            (300)\n"
          "  --help                    print this text\n",
          f);
}
