/*
 * test_cli_audit.c - `trine audit`: option parsing, time values, the three
 * output formats, verify and stats, run against a real database.
 *
 * The command's own source is compiled in, so the test drives its internal
 * entry point with a fixed clock and captured output streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/cli/audit.c"
#include "../../src/cli/util.c"

/* The fixed clock: 2026-01-01T00:00:10Z. */
#define NOW 1767225610000

typedef struct fixture {
    char dir[64];
    char path[128];
    char *out, *err;
    size_t outlen, errlen;
} fixture;

static fixture *fx;

static void append(store *s, int64_t id, int64_t ts, const char *user,
                   const char *agent, const char *tool, const char *decision,
                   const char *reason, const char *arguments)
{
    audit_row r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.ts_ms = ts;
    r.policy_rev = "sha256:9f1c";
    r.server = "github";
    r.tool = tool;
    r.user = user;
    r.agent = agent;
    r.session = "s1";
    r.decision = decision;
    r.reason = reason;
    r.arguments = arguments;
    r.detail = "{\"decision\":\"allow\",\"audit_id\":1}";
    r.args_sha256 = "ab";
    if (audit_append(s, &r) != 0)
        fail_msg("append: %s", store_errmsg(s));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/trine-cliaudit-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/audit.db", f->dir);
    store *s = NULL;
    if (store_open(f->path, NULL, &s, NULL, 0) != 0)
        return -1;
    append(s, 1, 1767225600000, "alice", "claude-desktop", "get_issue", "allow",
           "allow", "{\"owner\":\"acme\",\"repo\":\"widgets\"}");
    append(s, 2, 1767225605500, "bob", "ci-bot", "delete_repo", "deny",
           "agent_denied", NULL);
    append(s, 3, 1767225609999, "alice", NULL, "create_issue",
           "consent_required", "consent_required",
           "{\"title\":\"a, \\\"b\\\"\"}");
    store_close(s);
    fx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f->out);
    free(f->err);
    free(f);
    return 0;
}

/* Runs `trine audit ARGS... --db <fixture db>` (the --db is added unless
 * nodb) and captures its output. Returns the exit status. */
static int run_args(bool nodb, int n, const char **args)
{
    char *argv[32];
    char dbopt[160];
    int argc = 0;
    argv[argc++] = "audit";
    for (int i = 0; i < n; i++)
        argv[argc++] = (char *)args[i];
    if (!nodb) {
        snprintf(dbopt, sizeof dbopt, "--db=%s", fx->path);
        argv[argc++] = dbopt;
    }
    argv[argc] = NULL;
    free(fx->out);
    free(fx->err);
    fx->out = fx->err = NULL;
    FILE *out = open_memstream(&fx->out, &fx->outlen);
    FILE *err = open_memstream(&fx->err, &fx->errlen);
    assert_non_null(out);
    assert_non_null(err);
    int rc = audit_run(argc, argv, NOW, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

#define RUN(...)                                                               \
    run_args(                                                                  \
        false,                                                                 \
        (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),   \
        (const char *[]){__VA_ARGS__})

/* ---- Times ------------------------------------------------------------ */

static void test_parse_time_values(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_true(audit_parse_time("30s", NOW, false, &t));
    assert_int_equal(t, NOW - 30000);
    assert_true(audit_parse_time("15m", NOW, false, &t));
    assert_int_equal(t, NOW - 900000);
    assert_true(audit_parse_time("1h", NOW, false, &t));
    assert_int_equal(t, NOW - 3600000);
    assert_true(audit_parse_time("7d", NOW, false, &t));
    assert_int_equal(t, NOW - 604800000);
    assert_true(audit_parse_time("1767225600", NOW, false, &t));
    assert_int_equal(t, 1767225600000);
    assert_true(audit_parse_time("2026-11-26T10:00:00Z", NOW, false, &t));
    assert_int_equal(t, 1795687200000);
    assert_true(audit_parse_time("2026-11-26", NOW, false, &t));
    assert_int_equal(t, 1795651200000);
    assert_true(audit_parse_time("2026-11-26T10:00Z", NOW, false, &t));
    assert_int_equal(t, 1795687200000);
    assert_true(audit_parse_time("2026-11-26T10:00:00.25Z", NOW, false, &t));
    assert_int_equal(t, 1795687200250);
    assert_true(audit_parse_time("2000-02-29T23:59:59Z", NOW, false, &t));
    assert_int_equal(t, 951868799000);
    /* Before 1970 is clamped to 1 ms: 0 would mean "unbounded". */
    assert_true(audit_parse_time("100000d", NOW, false, &t));
    assert_int_equal(t, 1);
    assert_true(audit_parse_time("0", NOW, false, &t));
    assert_int_equal(t, 1);
    /* As an end, a time given to the second covers that whole second;
     * one given to the millisecond, or a duration, is exact. */
    assert_true(audit_parse_time("1767225600", NOW, true, &t));
    assert_int_equal(t, 1767225600999);
    assert_true(audit_parse_time("2026-11-26T10:00:00Z", NOW, true, &t));
    assert_int_equal(t, 1795687200999);
    assert_true(audit_parse_time("2026-11-26T10:00:00.25Z", NOW, true, &t));
    assert_int_equal(t, 1795687200250);
    assert_true(audit_parse_time("30s", NOW, true, &t));
    assert_int_equal(t, NOW - 30000);

    static const char *const bad[] = {
        "",
        "1x",
        "h",
        "-5",
        "1.5h",
        "99999999999999999999",
        "1h30m",
        "2026-02-30T00:00:00Z",
        "2026-11-26T10:00:00",
        "2026-11-26T24:00:00Z",
        "2026-11-26T10:00:00+01:00",
        "2026-13-01",
        "1900-01-01",
        "2026-11-26T10:00:00.Z",
        "2027-02-29",
        "yesterday",
        "9223372036854775807d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (audit_parse_time(bad[i], NOW, false, &t))
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_format_time(void **state)
{
    (void)state;
    char buf[48];
    audit_format_time(1767225605500, buf);
    assert_string_equal(buf, "2026-01-01T00:00:05.500Z");
    audit_format_time(951868799001, buf);
    assert_string_equal(buf, "2000-02-29T23:59:59.001Z");
    audit_format_time(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    audit_format_time(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

/* ---- Usage errors ------------------------------------------------------ */

static void expect_usage(int rc, const char *first_line)
{
    assert_int_equal(rc, 3);
    const char *nl = strchr(fx->err, '\n');
    assert_non_null(nl);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(nl - fx->err), fx->err);
    assert_string_equal(line, first_line);
    assert_string_equal(fx->out, "");
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_usage(RUN("--since", "yesterday"),
                 "trine audit: --since: invalid time \"yesterday\" (expected"
                 " a duration such as 30s, 15m, 1h or 7d, unix seconds, or"
                 " an ISO-8601 UTC time such as 2026-11-26T10:00:00Z)");
    expect_usage(RUN("--until=5y"),
                 "trine audit: --until: invalid time \"5y\" (expected"
                 " a duration such as 30s, 15m, 1h or 7d, unix seconds, or"
                 " an ISO-8601 UTC time such as 2026-11-26T10:00:00Z)");
    expect_usage(RUN("--decision", "maybe"),
                 "trine audit: --decision must be allow, deny or"
                 " consent_required, not \"maybe\"");
    expect_usage(RUN("--format", "xml"),
                 "trine audit: --format must be table, json or csv, not"
                 " \"xml\"");
    expect_usage(RUN("--limit", "0"),
                 "trine audit: --limit must be a positive integer, not \"0\"");
    expect_usage(RUN("--limit", "ten"),
                 "trine audit: --limit must be a positive integer, not"
                 " \"ten\"");
    expect_usage(RUN("list"), "trine audit: unexpected argument \"list\"");
    expect_usage(RUN("verify", "stats"),
                 "trine audit: unexpected argument \"stats\"");
    expect_usage(RUN("--user", "a", "verify"),
                 "trine audit: unexpected option \"--user\"");
    expect_usage(RUN("verify", "--since", "1h"),
                 "trine audit: unexpected option \"--since\"");
    expect_usage(RUN("stats", "--limit", "3"),
                 "trine audit: unexpected option \"--limit\"");
    expect_usage(RUN("--color"), "trine audit: unexpected option \"--color\"");
    expect_usage(RUN("--since=\x1b[2J"),
                 "trine audit: --since: invalid time \"\\x1b[2J\" (expected"
                 " a duration such as 30s, 15m, 1h or 7d, unix seconds, or"
                 " an ISO-8601 UTC time such as 2026-11-26T10:00:00Z)");
    /* A flag without its value. */
    const char *args[] = {"--user"};
    assert_int_equal(run_args(true, 1, args), 3);
    assert_string_equal(fx->out, "");
    assert_non_null(strstr(fx->err, "usage: trine audit"));
}

static void test_help(void **state)
{
    (void)state;
    assert_int_equal(RUN("--help"), 0);
    assert_string_equal(fx->out, audit_usage);
    assert_string_equal(fx->err, "");
}

static void test_missing_db(void **state)
{
    (void)state;
    char opt[200];
    snprintf(opt, sizeof opt, "--db=%s/nope.db", fx->dir);
    const char *args[] = {"verify", opt};
    assert_int_equal(run_args(true, 2, args), 3);
    char want[300];
    snprintf(want, sizeof want,
             "trine audit: cannot open %s/nope.db: No such file or"
             " directory\n",
             fx->dir);
    assert_string_equal(fx->err, want);
    assert_string_equal(fx->out, "");
    const char *args2[] = {opt};
    assert_int_equal(run_args(true, 1, args2), 3);
    assert_string_equal(fx->err, want);
}

/* ---- Listing ----------------------------------------------------------- */

static void test_table(void **state)
{
    (void)state;
    assert_int_equal(run_args(false, 0, NULL), 0);
    assert_string_equal(
        fx->out,
        "ID  TIME                      DECISION          REASON"
        "            USER   AGENT           SERVER  TOOL\n"
        "1   2026-01-01T00:00:00.000Z  allow             allow"
        "             alice  claude-desktop  github  get_issue\n"
        "2   2026-01-01T00:00:05.500Z  deny              agent_denied"
        "      bob    ci-bot          github  delete_repo\n"
        "3   2026-01-01T00:00:09.999Z  consent_required  consent_required"
        "  alice  -               github  create_issue\n");
    assert_string_equal(fx->err, "");
}

static void test_table_filters(void **state)
{
    (void)state;
    assert_int_equal(RUN("--user", "alice", "--limit", "1"), 0);
    assert_string_equal(
        fx->out,
        "ID  TIME                      DECISION          REASON"
        "            USER   AGENT  SERVER  TOOL\n"
        "3   2026-01-01T00:00:09.999Z  consent_required  consent_required"
        "  alice  -      github  create_issue\n");
    /* --since 5s: from 00:00:05.000 on. */
    assert_int_equal(
        RUN("--since", "5s", "--until", "1767225609", "--decision=deny"), 0);
    assert_string_equal(fx->out,
                        "ID  TIME                      DECISION  REASON"
                        "        USER  AGENT   SERVER  TOOL\n"
                        "2   2026-01-01T00:00:05.500Z  deny      agent_denied"
                        "  bob   ci-bot  github  delete_repo\n");
    assert_int_equal(RUN("--agent", "nobody"), 0);
    assert_string_equal(fx->out, "ID  TIME  DECISION  REASON  USER  AGENT"
                                 "  SERVER  TOOL\n");
    assert_int_equal(RUN("--tool", "delete_repo", "--format", "csv"), 0);
    assert_non_null(strstr(fx->out, "\r\n2,1767225605500,"));
    assert_null(strstr(fx->out, "\r\n1,"));
}

static void test_table_escapes_control_characters(void **state)
{
    fixture *f = *state;
    store *s = NULL;
    assert_int_equal(store_open(f->path, NULL, &s, NULL, 0), 0);
    append(s, 4, 1767225610000, "ev\x1b[31mil", "\xc3\xa9t\xc3\xa9", "t\xff",
           "deny", "forbidden", NULL);
    store_close(s);
    assert_int_equal(RUN("--limit", "1"), 0);
    assert_string_equal(
        fx->out,
        "ID  TIME                      DECISION  REASON     USER"
        "          AGENT  SERVER  TOOL\n"
        "4   2026-01-01T00:00:10.000Z  deny      forbidden  ev\\x1b[31mil"
        "  \xc3\xa9t\xc3\xa9    github  t\\xff\n");
    /* JSON keeps the text (escaped the JSON way), replacing what is not
     * UTF-8. */
    assert_int_equal(RUN("--limit", "1", "--format", "json"), 0);
    assert_non_null(strstr(fx->out, "\"user\":\"ev\\u001B[31mil\""));
    assert_non_null(strstr(fx->out, "\"tool\":\"t\\\\xff\""));
}

static void test_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(RUN("--format", "json"), 0);
    /* One object per line. */
    char *lines[4] = {0};
    int n = 0;
    for (char *p = fx->out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        assert_true(n < 4);
        lines[n++] = p;
    }
    assert_int_equal(n, 3);

    store *s = NULL;
    store_opts o = {.readonly = true};
    assert_int_equal(store_open(f->path, &o, &s, NULL, 0), 0);
    audit_row r;
    assert_int_equal(audit_get(s, 1, &r), 1);
    char hex[65], prev[65];
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", r.hash[i]);
        snprintf(prev + 2 * i, 3, "%02x", r.prev_hash[i]);
    }
    store_close(s);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":1,\"ts_ms\":1767225600000,\"policy_rev\":\"sha256:9f1c\","
             "\"server\":\"github\",\"tool\":\"get_issue\",\"user\":\"alice\","
             "\"agent\":\"claude-desktop\",\"chain\":null,\"session\":\"s1\","
             "\"decision\":\"allow\",\"reason\":\"allow\","
             "\"arguments\":{\"owner\":\"acme\",\"repo\":\"widgets\"},"
             "\"detail\":{\"decision\":\"allow\",\"audit_id\":1},"
             "\"args_sha256\":\"ab\",\"prev_hash\":\"%s\",\"hash\":\"%s\","
             "\"token\":null}",
             prev, hex);
    assert_string_equal(lines[0], want);
    json_t *v = json_loads(lines[1], 0, NULL);
    assert_non_null(v);
    assert_true(json_is_null(json_object_get(v, "arguments")));
    assert_true(json_is_null(json_object_get(v, "chain")));
    json_decref(v);
    v = json_loads(lines[2], 0, NULL);
    assert_non_null(v);
    assert_true(json_is_null(json_object_get(v, "agent")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(v, "arguments"), "title")),
                        "a, \"b\"");
    json_decref(v);
}

static void test_csv(void **state)
{
    (void)state;
    assert_int_equal(RUN("--format", "csv", "--user", "alice"), 0);
    const char *header =
        "id,ts_ms,policy_rev,server,tool,user,agent,chain,session,decision,"
        "reason,arguments,detail,args_sha256,prev_hash,hash,token\r\n";
    assert_memory_equal(fx->out, header, strlen(header));
    const char *p = fx->out + strlen(header);
    const char *row1 =
        "1,1767225600000,sha256:9f1c,github,get_issue,alice,"
        "claude-desktop,,s1,allow,allow,"
        "\"{\"\"owner\"\":\"\"acme\"\",\"\"repo\"\":"
        "\"\"widgets\"\"}\","
        "\"{\"\"decision\"\":\"\"allow\"\",\"\"audit_id\"\":1}\","
        "ab,0000000000000000000000000000000000000000000000000000"
        "000000000000,";
    assert_memory_equal(p, row1, strlen(row1));
    p = strstr(p, "\r\n");
    assert_non_null(p);
    p += 2;
    const char *row3 = "3,1767225609999,sha256:9f1c,github,create_issue,alice,"
                       ",,s1,consent_required,consent_required,"
                       "\"{\"\"title\"\":\"\"a, \\\"\"b\\\"\"\"\"}\",";
    assert_memory_equal(p, row3, strlen(row3));
    p = strstr(p, "\r\n");
    assert_non_null(p);
    assert_string_equal(p, "\r\n");
}

/* ---- verify and stats ------------------------------------------------- */

static void test_verify(void **state)
{
    fixture *f = *state;
    assert_int_equal(RUN("verify"), 0);
    assert_string_equal(fx->out, "ok: 3 rows, hash chain intact\n");
    assert_string_equal(fx->err, "");

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE decisions SET decision = 'allow',"
                                  " reason = 'allow' WHERE id = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(RUN("verify"), 1);
    assert_string_equal(fx->out, "row 2: hash does not match its contents\n");
    assert_int_equal(sqlite3_exec(db, "DELETE FROM decisions WHERE id = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(RUN("verify"), 1);
    assert_string_equal(fx->out, "row 3: row 2 is missing\n");
}

static void test_stats_formats(void **state)
{
    (void)state;
    assert_int_equal(RUN("stats"), 0);
    assert_string_equal(fx->out, "total: 3\n"
                                 "decision:\n"
                                 "  allow             1\n"
                                 "  consent_required  1\n"
                                 "  deny              1\n"
                                 "reason:\n"
                                 "  agent_denied      1\n"
                                 "  allow             1\n"
                                 "  consent_required  1\n"
                                 "tool:\n"
                                 "  create_issue  1\n"
                                 "  delete_repo   1\n"
                                 "  get_issue     1\n"
                                 "agent:\n"
                                 "  -               1\n"
                                 "  ci-bot          1\n"
                                 "  claude-desktop  1\n");
    /* The subcommand may follow the options. */
    assert_int_equal(RUN("--user", "alice", "stats", "--format", "json"), 0);
    assert_string_equal(fx->out,
                        "{\"total\":2,\"decision\":{\"allow\":1,"
                        "\"consent_required\":1},\"reason\":{\"allow\":1,"
                        "\"consent_required\":1},\"tool\":{\"create_issue\":1,"
                        "\"get_issue\":1},\"agent\":{\"\":1,"
                        "\"claude-desktop\":1}}\n");
    assert_int_equal(
        RUN("stats", "--since", "2026-01-01T00:00:05Z", "--format", "csv"), 0);
    assert_string_equal(fx->out, "group,value,count\r\n"
                                 "total,,2\r\n"
                                 "decision,consent_required,1\r\n"
                                 "decision,deny,1\r\n"
                                 "reason,agent_denied,1\r\n"
                                 "reason,consent_required,1\r\n"
                                 "tool,create_issue,1\r\n"
                                 "tool,delete_repo,1\r\n"
                                 "agent,,1\r\n"
                                 "agent,ci-bot,1\r\n");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_time_values),
        T(test_format_time),
        T(test_usage_errors),
        T(test_help),
        T(test_missing_db),
        T(test_table),
        T(test_table_filters),
        T(test_table_escapes_control_characters),
        T(test_json),
        T(test_csv),
        T(test_verify),
        T(test_stats_formats),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
