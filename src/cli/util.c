/*
 * util.c - file reading, flag parsing, safe printing and seeded consent
 * grants for the subcommands of `trine`.
 */
#include "cli/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cli_read_file(const char *path, char **out, size_t *len)
{
    bool own = strcmp(path, "-") != 0;
    int fd = STDIN_FILENO;
    if (own) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
    }
    size_t cap = 4096, n = 0;
    struct stat st;
    /* Size the buffer once for a regular file; pipes grow as they go. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (unsigned long long)st.st_size < CLI_MAX_FILE)
        cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    if (buf == NULL) {
        if (own)
            close(fd);
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= CLI_MAX_FILE + 1) {
                free(buf);
                if (own)
                    close(fd);
                errno = EFBIG;
                return -1;
            }
            size_t ncap =
                cap * 2 > CLI_MAX_FILE + 1 ? CLI_MAX_FILE + 1 : cap * 2;
            char *p = realloc(buf, ncap);
            if (p == NULL) {
                free(buf);
                if (own)
                    close(fd);
                errno = ENOMEM;
                return -1;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            free(buf);
            if (own)
                close(fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (own)
        close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

const char *cli_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

int cli_opt_value(const char *cmd, int argc, char **argv, int *i,
                  const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "trine %s: %s needs a value\n", cmd, name);
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

bool cli_flag(const char *arg, const char *name)
{
    return strcmp(arg, name) == 0;
}

bool cli_parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return false;
    for (const char *q = p; *q != '\0'; q++) {
        if (*q < '0' || *q > '9')
            return false;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

/* Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when the
 * bytes there are not one. *cp receives the code point. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return n;
}

void cli_put_safe(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp = 0;
        size_t n = utf8_seq(p, &cp);
        if (n == 0) {
            fprintf(out, "\\x%02x", *p);
            p++;
            continue;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            for (size_t i = 0; i < n; i++)
                fprintf(out, "\\x%02x", p[i]);
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
}

void cli_put_json(FILE *out, const json_t *v)
{
    if (v == NULL) {
        fputs("(absent)", out);
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL) {
        fputs("(out of memory)", out);
        return;
    }
    cli_put_safe(out, text);
    free(text);
}

json_t *cli_parse_json(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(
        buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
        &e);
    if (v == NULL)
        snprintf(err, errlen, "line %d, column %d: %s", e.line, e.column,
                 e.text);
    return v;
}

int cli_load_policy(const char *cmd, const char *dir, trine_diag *diag,
                    trine_policy **out)
{
    int rc = trine_policy_load_dir(dir, diag, out);
    if (rc == 0)
        return 0;
    trine_diag_print(diag, stderr);
    if (trine_diag_count(diag) == 0) {
        fprintf(stderr, "trine %s: ", cmd);
        cli_put_safe(stderr, dir);
        fprintf(stderr, ": %s\n", trine_strerror(rc));
    }
    return rc;
}

int cli_unix_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa.sun_path) {
        snprintf(err, errlen, "cannot connect to %s: the socket path is %s",
                 path, n == 0 ? "empty" : "too long");
        return -1;
    }
    memcpy(sa.sun_path, path, n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: socket: %s", path,
                 strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- Seeded consent grants --------------------------------------------- */

typedef struct seed {
    const char *user;
    const char *agent;
    const char *server;
    const char *tool;
    trine_consent_mode mode;
    const char *session; /* session mode only */
    bool any_args;       /* always mode without "arguments" */
    char args_hash[65];
    bool has_expiry;
    int64_t expires_ms;
    bool used; /* an always grant already consumed */
} seed;

struct cli_seeds {
    json_t *arr; /* a reference: the seeds borrow its strings */
    seed *items;
    size_t n;
};

void cli_seeds_free(cli_seeds *s)
{
    if (s == NULL)
        return;
    json_decref(s->arr);
    free(s->items);
    free(s);
}

/* Every key a grant may have; the first five are its required strings, in
 * the order seed_parse reads them. */
static const char *const seed_keys[] = {"user",      "agent",   "server",
                                        "tool",      "mode",    "session",
                                        "arguments", "expires", NULL};

/* Reads the required non-empty string member key of grant i. */
static int seed_string(const json_t *g, size_t i, const char *key,
                       const char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(g, key);
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(err, errlen, "consents[%zu].%s must be a non-empty string", i,
                 key);
        return TRINE_EINVAL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "consents[%zu].%s must not contain NUL", i, key);
        return TRINE_EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

/* Fills one seed from grant i; returns 0, TRINE_EINVAL or TRINE_ENOMEM. */
static int seed_parse(const json_t *g, size_t i, seed *sd, char *err,
                      size_t errlen)
{
    if (!json_is_object(g)) {
        snprintf(err, errlen, "consents[%zu] must be an object", i);
        return TRINE_EINVAL;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)g, key, val)
    {
        size_t k = 0;
        while (seed_keys[k] != NULL && strcmp(seed_keys[k], key) != 0)
            k++;
        if (seed_keys[k] == NULL) {
            snprintf(err, errlen, "consents[%zu]: unknown key \"%s\"", i, key);
            return TRINE_EINVAL;
        }
    }
    const char *mode = NULL;
    const char **dest[] = {&sd->user, &sd->agent, &sd->server, &sd->tool,
                           &mode};
    int rc = 0;
    for (size_t k = 0; k < 5; k++) {
        rc = seed_string(g, i, seed_keys[k], dest[k], err, errlen);
        if (rc != 0)
            return rc;
    }
    if (strcmp(mode, "session") == 0) {
        sd->mode = TRINE_CONSENT_SESSION;
    } else if (strcmp(mode, "once") == 0) {
        sd->mode = TRINE_CONSENT_ONCE;
    } else if (strcmp(mode, "always") == 0) {
        sd->mode = TRINE_CONSENT_ALWAYS;
    } else {
        snprintf(err, errlen,
                 "consents[%zu].mode must be \"session\", \"once\" or "
                 "\"always\"",
                 i);
        return TRINE_EINVAL;
    }
    /* DESIGN §6.1 gives every grant a session, as the daemon records one
     * with every grant; only a session grant is bound to it. A string or
     * null is accepted in any mode; an absent, null or empty session makes
     * a session grant that no request can use (a session grant needs the
     * request's own non-empty session, §2.5). */
    const json_t *session = json_object_get(g, "session");
    if (session != NULL && !json_is_null(session)) {
        if (!json_is_string(session)) {
            snprintf(err, errlen,
                     "consents[%zu].session must be a string or null", i);
            return TRINE_EINVAL;
        }
        if (strlen(json_string_value(session)) != json_string_length(session)) {
            snprintf(err, errlen, "consents[%zu].session must not contain NUL",
                     i);
            return TRINE_EINVAL;
        }
        if (json_string_length(session) > 0)
            sd->session = json_string_value(session);
    }
    const json_t *args = json_object_get(g, "arguments");
    sd->any_args = args == NULL;
    if (args != NULL) {
        if (sd->mode != TRINE_CONSENT_ALWAYS) {
            snprintf(err, errlen,
                     "consents[%zu].arguments is only for always mode", i);
            return TRINE_EINVAL;
        }
        if (!json_is_object(args)) {
            snprintf(err, errlen, "consents[%zu].arguments must be an object",
                     i);
            return TRINE_EINVAL;
        }
        rc = trine_arguments_hash(args, sd->args_hash);
        if (rc != 0) {
            snprintf(err, errlen, "consents[%zu].arguments: %s", i,
                     trine_strerror(rc));
            return rc;
        }
    }
    const json_t *exp = json_object_get(g, "expires");
    if (exp != NULL) {
        if (!json_is_integer(exp) ||
            json_integer_value(exp) > INT64_MAX / 1000 ||
            json_integer_value(exp) < 0) {
            snprintf(err, errlen,
                     "consents[%zu].expires must be unix seconds (an "
                     "integer)",
                     i);
            return TRINE_EINVAL;
        }
        sd->has_expiry = true;
        sd->expires_ms = (int64_t)json_integer_value(exp) * 1000;
    }
    return 0;
}

int cli_seeds_new(const json_t *arr, cli_seeds **out, char *err, size_t errlen)
{
    *out = NULL;
    if (arr != NULL && !json_is_array(arr)) {
        snprintf(err, errlen, "consents must be an array");
        return TRINE_EINVAL;
    }
    cli_seeds *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TRINE_ENOMEM;
    size_t n = arr != NULL ? json_array_size(arr) : 0;
    if (n > 0) {
        s->items = calloc(n, sizeof *s->items);
        if (s->items == NULL) {
            free(s);
            return TRINE_ENOMEM;
        }
    }
    s->n = n;
    s->arr = json_incref((json_t *)arr);
    for (size_t i = 0; i < n; i++) {
        int rc =
            seed_parse(json_array_get(arr, i), i, &s->items[i], err, errlen);
        if (rc != 0) {
            cli_seeds_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

/* True when a and b are both present and equal. */
static bool same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

int cli_seeds_lookup(void *ctx, const trine_consent_query *q, int64_t *grant_id)
{
    cli_seeds *s = ctx;
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        seed *sd = &s->items[i];
        if (sd->mode != q->mode || !same(sd->user, q->user) ||
            !same(sd->agent, q->agent) || !same(sd->server, q->server) ||
            !same(sd->tool, q->tool))
            continue;
        if (sd->has_expiry && q->now_ms >= sd->expires_ms)
            continue;
        if (sd->mode == TRINE_CONSENT_SESSION && !same(sd->session, q->session))
            continue;
        if (sd->mode == TRINE_CONSENT_ALWAYS) {
            if (sd->used)
                continue;
            if (!sd->any_args && !same(sd->args_hash, q->args_hash))
                continue;
            sd->used = true;
        }
        *grant_id = (int64_t)i + 1;
        return 1;
    }
    return 0;
}
