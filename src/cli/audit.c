/*
 * audit.c - `trine audit`: read, count and verify the audit log (DESIGN §6).
 *
 *   trine audit [--db FILE] [--since T] [--until T] [--user U] [--agent A]
 *               [--tool T] [--decision D] [--limit N]
 *               [--format table|json|csv]
 *   trine audit verify [--db FILE]
 *   trine audit stats  [--db FILE] [--since T] [--until T] [filters]
 *                      [--format table|json|csv]
 *
 * The database is opened read-only, so this works while trined writes.
 * Exit status: 0 success, 1 a broken hash chain, 3 usage error or a database
 * that cannot be read.
 */
#include "cli/cli.h"
#include "cli/util.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_DEFAULT_DB "./trine-audit.db"

static const char audit_usage[] =
    "usage: trine audit [--db FILE] [--since T] [--until T] [--user U]\n"
    "                   [--agent A] [--tool T] [--decision D] [--limit N]\n"
    "                   [--format table|json|csv]\n"
    "       trine audit verify [--db FILE]\n"
    "       trine audit stats [--db FILE] [--since T] [--until T] [--user U]\n"
    "                   [--agent A] [--tool T] [--decision D]\n"
    "                   [--format table|json|csv]\n"
    "\n"
    "  --db FILE        the audit database (default " AUDIT_DEFAULT_DB ")\n"
    "  --since/--until  a duration back from now (30s, 15m, 1h, 7d), unix\n"
    "                   seconds, or an ISO-8601 UTC time "
    "(2026-11-26T10:00:00Z);\n"
    "                   both ends are inclusive\n"
    "  --decision D     allow, deny or consent_required\n"
    "  --limit N        only the newest N decisions (still oldest first)\n"
    "exit status: 0 success, 1 hash chain broken, 3 usage error or "
    "unreadable\n"
    "database\n";

typedef enum audit_format { FMT_TABLE, FMT_JSON, FMT_CSV } audit_format;

typedef struct audit_args {
    const char *sub; /* NULL to list, "verify" or "stats" */
    const char *db;
    audit_filter filter;
    audit_format format;
} audit_args;

/* ---- Times ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm). */
static int64_t audit_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of audit_days_from_civil. */
static void audit_civil_from_days(int64_t z, int64_t *y, unsigned *m,
                                  unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Writes ts_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (48 bytes: room for
 * any year an int64 can name). */
static void audit_format_time(int64_t ts_ms, char buf[48])
{
    int64_t secs = ts_ms / 1000, ms = ts_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    audit_civil_from_days(days, &y, &m, &d);
    snprintf(buf, 48, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)ms);
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool audit_digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Parses "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fff]]Z" (UTC) into unix
 * milliseconds. Returns false on anything else, or a date that does not
 * exist. */
static bool audit_parse_iso(const char *s, int64_t *out)
{
    const char *p = s;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!audit_digits(&p, 4, &y) || *p++ != '-' || !audit_digits(&p, 2, &mo) ||
        *p++ != '-' || !audit_digits(&p, 2, &d))
        return false;
    if (*p == 'T') {
        p++;
        if (!audit_digits(&p, 2, &h) || *p++ != ':' ||
            !audit_digits(&p, 2, &mi))
            return false;
        if (*p == ':') {
            p++;
            if (!audit_digits(&p, 2, &sec))
                return false;
            if (*p == '.') {
                p++;
                int n = 0;
                unsigned scale = 100;
                while (*p >= '0' && *p <= '9') {
                    /* Digits past milliseconds are dropped. */
                    if (n < 3)
                        ms += (unsigned)(*p - '0') * scale;
                    scale /= 10;
                    n++;
                    p++;
                }
                if (n == 0)
                    return false;
            }
        }
        if (*p++ != 'Z')
            return false;
    }
    if (*p != '\0')
        return false;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
        return false;
    int64_t days = audit_days_from_civil(y, mo, d);
    *out = ((days * 86400) + h * 3600 + mi * 60 + sec) * 1000 + ms;
    return true;
}

/* Parses a --since/--until value: a duration back from now_ms ("30s",
 * "15m", "1h", "7d"), unix seconds, or an ISO-8601 UTC time. A time before
 * 1970 becomes 1 ms (0 would mean "unbounded"). A time given to the second
 * (unix seconds, an ISO time without a fraction) stands for that whole
 * second: with end set, its last millisecond, so `--since T --until T`
 * shows the decisions of second T. Returns false on a bad value. */
static bool audit_parse_time(const char *v, int64_t now_ms, bool end,
                             int64_t *out)
{
    size_t n = strlen(v);
    size_t digits = strspn(v, "0123456789");
    if (n == 0 || n > 32)
        return false;
    if (digits == n || (digits + 1 == n && digits > 0)) {
        int64_t unit = 1000;
        if (digits + 1 == n) {
            switch (v[n - 1]) {
            case 's':
                unit = 1000;
                break;
            case 'm':
                unit = 60 * 1000;
                break;
            case 'h':
                unit = 3600 * 1000;
                break;
            case 'd':
                unit = 86400 * 1000;
                break;
            default:
                return false;
            }
        }
        char num[33];
        memcpy(num, v, digits);
        num[digits] = '\0';
        int64_t k;
        if (!cli_parse_int64(num, &k) || k > INT64_MAX / unit)
            return false;
        int64_t t = digits == n ? k * unit : now_ms - k * unit;
        if (digits == n && end && t <= INT64_MAX - 999)
            t += 999;
        *out = t > 0 ? t : 1;
        return true;
    }
    if (!audit_parse_iso(v, out))
        return false;
    if (end && strchr(v, '.') == NULL)
        *out += 999;
    if (*out <= 0)
        *out = 1;
    return true;
}

/* ---- Arguments --------------------------------------------------------- */

/* Prints "trine audit: " and a message, then the usage, on err. Returns 3. */
static int audit_usage_error(FILE *err, const char *msg, const char *what)
{
    fputs("trine audit: ", err);
    fputs(msg, err);
    if (what != NULL) {
        fputs(" \"", err);
        cli_put_safe(err, what);
        fputc('"', err);
    }
    fputc('\n', err);
    fputs(audit_usage, err);
    return CLI_EXIT_USAGE;
}

/* Parses the value of one option that takes one. Returns 0, or an exit
 * status after printing why. */
static int audit_set_option(const char *name, const char *v, int64_t now_ms,
                            audit_args *a, FILE *err)
{
    audit_filter *f = &a->filter;
    if (strcmp(name, "--since") == 0 || strcmp(name, "--until") == 0) {
        bool until = name[2] == 'u';
        int64_t *dst = until ? &f->until_ms : &f->since_ms;
        if (!audit_parse_time(v, now_ms, until, dst)) {
            fprintf(err, "trine audit: %s: invalid time \"", name);
            cli_put_safe(err, v);
            fputs("\" (expected a duration such as 30s, 15m, 1h or 7d, unix"
                  " seconds, or an ISO-8601 UTC time such as"
                  " 2026-11-26T10:00:00Z)\n",
                  err);
            fputs(audit_usage, err);
            return CLI_EXIT_USAGE;
        }
    } else if (strcmp(name, "--limit") == 0) {
        if (!cli_parse_int64(v, &f->limit) || f->limit < 1)
            return audit_usage_error(
                err, "--limit must be a positive integer, not", v);
    } else if (strcmp(name, "--decision") == 0) {
        if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0 &&
            strcmp(v, "consent_required") != 0)
            return audit_usage_error(
                err, "--decision must be allow, deny or consent_required, not",
                v);
        f->decision = v;
    } else if (strcmp(name, "--format") == 0) {
        if (strcmp(v, "table") == 0)
            a->format = FMT_TABLE;
        else if (strcmp(v, "json") == 0)
            a->format = FMT_JSON;
        else if (strcmp(v, "csv") == 0)
            a->format = FMT_CSV;
        else
            return audit_usage_error(
                err, "--format must be table, json or csv, not", v);
    } else if (strcmp(name, "--db") == 0) {
        a->db = v;
    } else if (strcmp(name, "--user") == 0) {
        f->user = v;
    } else if (strcmp(name, "--agent") == 0) {
        f->agent = v;
    } else if (strcmp(name, "--tool") == 0) {
        f->tool = v;
    }
    return 0;
}

/* Which options each form takes: "verify" takes only --db, "stats" has no
 * --limit. */
static bool audit_option_allowed(const char *sub, const char *name)
{
    if (sub == NULL)
        return true;
    if (strcmp(sub, "verify") == 0)
        return strcmp(name, "--db") == 0;
    return strcmp(name, "--limit") != 0;
}

/* Parses argv (argv[0] is "audit"). Returns 0, -1 after --help (printed on
 * out), or an exit status after a usage message on err. */
static int audit_parse_args(int argc, char **argv, int64_t now_ms,
                            audit_args *a, FILE *out, FILE *err)
{
    static const char *const names[] = {"--db",       "--since", "--until",
                                        "--user",     "--agent", "--tool",
                                        "--decision", "--limit", "--format"};
    bool seen[sizeof names / sizeof names[0]] = {false};
    memset(a, 0, sizeof *a);
    a->db = AUDIT_DEFAULT_DB;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_flag(arg, "--help") || cli_flag(arg, "-h")) {
            fputs(audit_usage, out);
            return -1;
        }
        /* The subcommand may come before or after the options
         * (`trine audit --db F stats`). */
        if (arg[0] != '-') {
            if (a->sub != NULL ||
                (strcmp(arg, "verify") != 0 && strcmp(arg, "stats") != 0))
                return audit_usage_error(err, "unexpected argument", arg);
            a->sub = arg;
            continue;
        }
        int r = 0;
        const char *value = NULL;
        size_t k = 0;
        for (; k < sizeof names / sizeof names[0] && r == 0; k++)
            r = cli_opt_value("audit", argc, argv, &i, names[k], &value);
        if (r < 0) {
            fputs(audit_usage, err);
            return CLI_EXIT_USAGE;
        }
        if (r == 0)
            return audit_usage_error(err, "unexpected option", arg);
        seen[k - 1] = true;
        int st = audit_set_option(names[k - 1], value, now_ms, a, err);
        if (st != 0)
            return st;
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (seen[k] && !audit_option_allowed(a->sub, names[k]))
            return audit_usage_error(err, "unexpected option", names[k]);
    }
    return 0;
}

/* ---- Output ------------------------------------------------------------ */

/* Returns s made safe for a terminal (cli_put_safe's escapes) as a new
 * string, "-" for NULL; NULL on OOM. */
static char *audit_safe_text(const char *s)
{
    if (s == NULL)
        s = "-";
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m == NULL)
        return NULL;
    cli_put_safe(m, s);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Counts the code points of valid UTF-8 text: its width in columns. */
static size_t audit_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xC0) != 0x80;
    return w;
}

#define TABLE_COLS 8

/* Every cell of the table, kept until the widths are known. */
typedef struct audit_table {
    char **cells; /* TABLE_COLS per row, row-major */
    size_t rows;
    size_t cap;
    bool oom;
} audit_table;

/* audit_row_fn: keeps one row's cells. */
static int audit_table_add(void *ctx, const audit_row *row)
{
    audit_table *t = ctx;
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **cells = realloc(t->cells, cap * TABLE_COLS * sizeof *cells);
        if (cells == NULL) {
            t->oom = true;
            return 1;
        }
        t->cells = cells;
        t->cap = cap;
    }
    char id[24], when[48];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    audit_format_time(row->ts_ms, when);
    const char *src[TABLE_COLS] = {id,          when,      row->decision,
                                   row->reason, row->user, row->agent,
                                   row->server, row->tool};
    char **dst = t->cells + t->rows * TABLE_COLS;
    for (int c = 0; c < TABLE_COLS; c++) {
        dst[c] = audit_safe_text(src[c]);
        if (dst[c] == NULL)
            t->oom = true;
    }
    t->rows++;
    return t->oom ? 1 : 0;
}

/* Prints one table line: every cell padded to its column's width but the
 * last. */
static void audit_table_line(FILE *out, char *const *cells, const size_t *width)
{
    for (int c = 0; c < TABLE_COLS; c++) {
        fputs(cells[c], out);
        if (c + 1 < TABLE_COLS) {
            size_t pad = width[c] - audit_width(cells[c]) + 2;
            fprintf(out, "%*s", (int)pad, "");
        }
    }
    fputc('\n', out);
}

static void audit_table_print(FILE *out, const audit_table *t)
{
    static char *const header[TABLE_COLS] = {
        "ID", "TIME", "DECISION", "REASON", "USER", "AGENT", "SERVER", "TOOL"};
    size_t width[TABLE_COLS];
    for (int c = 0; c < TABLE_COLS; c++)
        width[c] = audit_width(header[c]);
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < TABLE_COLS; c++) {
            size_t w = audit_width(t->cells[r * TABLE_COLS + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    audit_table_line(out, header, width);
    for (size_t r = 0; r < t->rows; r++)
        audit_table_line(out, t->cells + r * TABLE_COLS, width);
}

static void audit_table_free(audit_table *t)
{
    for (size_t i = 0; i < t->rows * TABLE_COLS; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* Returns text as a JSON string, or as the value it holds when embed is set
 * and it parses as JSON. Text that is not valid UTF-8 is escaped first. */
static json_t *audit_json_text(const char *text, bool embed)
{
    if (text == NULL)
        return json_null();
    if (embed) {
        json_t *v =
            json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (v != NULL)
            return v;
    }
    json_t *v = json_string(text);
    if (v == NULL) {
        char *safe = audit_safe_text(text);
        v = safe != NULL ? json_string(safe) : NULL;
        free(safe);
    }
    return v;
}

/* Returns 32 bytes as a new JSON string of lowercase hex. */
static json_t *audit_json_hex(const unsigned char h[32])
{
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return json_string(hex);
}

/* audit_row_fn: prints one row as a JSON object on its own line. */
static int audit_print_json(void *ctx, const audit_row *row)
{
    FILE *out = ctx;
    json_t *o = json_object();
    if (o == NULL)
        return 1;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_integer(row->id));
    bad |= json_object_set_new(o, "ts_ms", json_integer(row->ts_ms));
    const struct {
        const char *key;
        const char *text;
        bool embed;
    } cols[] = {
        {"policy_rev", row->policy_rev, false},
        {"server", row->server, false},
        {"tool", row->tool, false},
        {"user", row->user, false},
        {"agent", row->agent, false},
        {"chain", row->chain, true},
        {"session", row->session, false},
        {"decision", row->decision, false},
        {"reason", row->reason, false},
        {"arguments", row->arguments, true},
        {"detail", row->detail, true},
        {"args_sha256", row->args_sha256, false},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        bad |= json_object_set_new(
            o, cols[i].key, audit_json_text(cols[i].text, cols[i].embed));
    bad |= json_object_set_new(o, "prev_hash", audit_json_hex(row->prev_hash));
    bad |= json_object_set_new(o, "hash", audit_json_hex(row->hash));
    bad |= json_object_set_new(o, "token", audit_json_text(row->token, true));
    if (bad == 0)
        bad = json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (bad != 0)
        return 1;
    fputc('\n', out);
    return 0;
}

/* Writes one CSV field with RFC 4180 quoting: in quotes (quotes doubled)
 * when it holds a comma, a quote, CR or LF. NULL is an empty field. */
static void audit_csv_field(FILE *out, const char *s, bool last)
{
    if (s != NULL && strpbrk(s, ",\"\r\n") != NULL) {
        fputc('"', out);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    } else if (s != NULL) {
        fputs(s, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

static const char audit_csv_header[] =
    "id,ts_ms,policy_rev,server,tool,user,agent,chain,session,decision,"
    "reason,arguments,detail,args_sha256,prev_hash,hash,token\r\n";

/* audit_row_fn: prints one row as a CSV record. */
static int audit_print_csv(void *ctx, const audit_row *row)
{
    FILE *out = ctx;
    char id[24], ts[24], prev[65], hash[65];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    snprintf(ts, sizeof ts, "%" PRId64, row->ts_ms);
    for (int i = 0; i < 32; i++) {
        snprintf(prev + 2 * i, 3, "%02x", row->prev_hash[i]);
        snprintf(hash + 2 * i, 3, "%02x", row->hash[i]);
    }
    const char *fields[] = {id,
                            ts,
                            row->policy_rev,
                            row->server,
                            row->tool,
                            row->user,
                            row->agent,
                            row->chain,
                            row->session,
                            row->decision,
                            row->reason,
                            row->arguments,
                            row->detail,
                            row->args_sha256,
                            prev,
                            hash,
                            row->token};
    size_t n = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < n; i++)
        audit_csv_field(out, fields[i], i + 1 == n);
    return 0;
}

/* ---- The three forms --------------------------------------------------- */

/* Opens the database read-only, or prints why not. */
static store *audit_open(const audit_args *a, FILE *err)
{
    store_opts o = {.readonly = true};
    store *s = NULL;
    char msg[512];
    if (store_open(a->db, &o, &s, msg, sizeof msg) < 0) {
        fputs("trine audit: ", err);
        cli_put_safe(err, msg);
        fputc('\n', err);
        return NULL;
    }
    return s;
}

/* Prints a failure of the store on s. Returns 3. */
static int audit_store_error(FILE *err, store *s)
{
    fputs("trine audit: ", err);
    cli_put_safe(err, store_errmsg(s));
    fputc('\n', err);
    return CLI_EXIT_USAGE;
}

static int audit_list(const audit_args *a, store *s, FILE *out, FILE *err)
{
    int rc;
    if (a->format == FMT_JSON) {
        rc = audit_query(s, &a->filter, audit_print_json, out);
    } else if (a->format == FMT_CSV) {
        fputs(audit_csv_header, out);
        rc = audit_query(s, &a->filter, audit_print_csv, out);
    } else {
        audit_table t = {0};
        rc = audit_query(s, &a->filter, audit_table_add, &t);
        if (rc >= 0 && !t.oom)
            audit_table_print(out, &t);
        audit_table_free(&t);
        if (t.oom) {
            fputs("trine audit: out of memory\n", err);
            return CLI_EXIT_USAGE;
        }
    }
    if (rc < 0)
        return audit_store_error(err, s);
    if (rc > 0) {
        fputs("trine audit: out of memory\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int audit_verify_cmd(store *s, FILE *out, FILE *err)
{
    int64_t rows = 0, bad = -1;
    char why[160];
    int rc = audit_verify(s, &rows, &bad, why, sizeof why);
    if (rc < 0)
        return audit_store_error(err, s);
    if (rc == 1) {
        fprintf(out, "row %" PRId64 ": %s\n", bad, why);
        return CLI_EXIT_FAIL;
    }
    fprintf(out, "ok: %" PRId64 " rows, hash chain intact\n", rows);
    return CLI_EXIT_OK;
}

/* One (value, count) of a stats group, for sorting. */
typedef struct audit_count {
    const char *key;
    json_int_t n;
} audit_count;

/* Orders by count, largest first, then by value. */
static int audit_count_cmp(const void *x, const void *y)
{
    const audit_count *a = x, *b = y;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* Prints one group of stats ("decision", ...) in the chosen format. */
static int audit_stats_group_print(FILE *out, const char *name, json_t *group,
                                   audit_format fmt)
{
    size_t n = json_object_size(group), i = 0;
    audit_count *v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL)
        return -1;
    const char *key;
    json_t *val;
    json_object_foreach(group, key, val)
    {
        v[i].key = key;
        v[i].n = json_integer_value(val);
        i++;
    }
    qsort(v, n, sizeof *v, audit_count_cmp);
    size_t width = 0;
    for (i = 0; i < n; i++) {
        size_t w = audit_width(v[i].key[0] ? v[i].key : "-");
        width = w > width ? w : width;
    }
    if (fmt == FMT_TABLE)
        fprintf(out, "%s:\n", name);
    for (i = 0; i < n; i++) {
        if (fmt == FMT_CSV) {
            audit_csv_field(out, name, false);
            audit_csv_field(out, v[i].key, false);
            fprintf(out, "%" JSON_INTEGER_FORMAT "\r\n", v[i].n);
            continue;
        }
        /* A row with no agent counts under "": shown as "-". */
        const char *shown = v[i].key[0] ? v[i].key : "-";
        fputs("  ", out);
        cli_put_safe(out, shown);
        fprintf(out, "%*s%" JSON_INTEGER_FORMAT "\n",
                (int)(width - audit_width(shown) + 2), "", v[i].n);
    }
    free(v);
    return 0;
}

static int audit_stats_cmd(const audit_args *a, store *s, FILE *out, FILE *err)
{
    static const char *const groups[] = {"decision", "reason", "tool", "agent"};
    json_t *stats = NULL;
    if (audit_stats(s, &a->filter, &stats) < 0)
        return audit_store_error(err, s);
    int rc = 0;
    if (a->format == FMT_JSON) {
        rc = json_dumpf(stats, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', out);
    } else {
        json_int_t total = json_integer_value(json_object_get(stats, "total"));
        if (a->format == FMT_CSV)
            fprintf(out,
                    "group,value,count\r\ntotal,,%" JSON_INTEGER_FORMAT "\r\n",
                    total);
        else
            fprintf(out, "total: %" JSON_INTEGER_FORMAT "\n", total);
        for (size_t i = 0; rc == 0 && i < 4; i++)
            rc = audit_stats_group_print(
                out, groups[i], json_object_get(stats, groups[i]), a->format);
    }
    json_decref(stats);
    if (rc != 0) {
        fputs("trine audit: out of memory\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Runs `trine audit` with the clock at now_ms, printing on out and err.
 * Returns the exit status. */
static int audit_run(int argc, char **argv, int64_t now_ms, FILE *out,
                     FILE *err)
{
    audit_args a;
    int rc = audit_parse_args(argc, argv, now_ms, &a, out, err);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    store *s = audit_open(&a, err);
    if (s == NULL)
        return CLI_EXIT_USAGE;
    if (a.sub == NULL)
        rc = audit_list(&a, s, out, err);
    else if (strcmp(a.sub, "verify") == 0)
        rc = audit_verify_cmd(s, out, err);
    else
        rc = audit_stats_cmd(&a, s, out, err);
    store_close(s);
    if (fflush(out) != 0 && rc == CLI_EXIT_OK) {
        fputs("trine audit: cannot write the output\n", err);
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return audit_run(argc, argv, now_ms, stdout, stderr);
}
