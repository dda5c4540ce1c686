/*
 * test_config.c - trined's flags and configuration file: defaults, both
 * flag forms, the file's syntax, flags overriding the file, every bad value
 * refused with a message naming it, and the peer allow-lists.
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

#include "daemon/config.h"
#include "daemon/server.h"

/* Parses a NULL-terminated argument list (program name added). */
static int parse(trined_config *c, char *err, const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "trined";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    assert_int_equal(config_init(c), 0);
    err[0] = '\0';
    return config_parse_args(c, argc, argv, err, 256);
}

/* Writes text to a new temporary file; returns its path (static). */
static const char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/trined-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--policy", "pol", NULL), 0);
    assert_string_equal(c.policy, "pol");
    assert_string_equal(c.socket, "./trine.sock");
    assert_string_equal(c.audit, "./trine-audit.db");
    assert_int_equal(c.socket_mode, 0660);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_line, 1048576);
    assert_int_equal(c.commit_interval_ms, 2);
    assert_int_equal(c.commit_max_rows, 512);
    assert_true(c.audit_sync_normal);
    assert_int_equal(c.audit_busy_timeout_ms, 1000);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.n_allow_uid, 0);
    assert_int_equal(c.n_allow_gid, 0);
    assert_false(c.help);
    config_free(&c);
}

static void test_every_flag(void **state)
{
    (void)state;
    trined_config c;
    char err[256];
    assert_int_equal(
        parse(&c, err, "--policy=p", "--socket", "/run/t.sock", "--audit",
              "a.db", "--allow-uid", "1000,1001", "--allow-gid=50",
              "--socket-mode", "0600", "--workers", "3", "--max-line", "4096",
              "--commit-interval-ms", "0", "--commit-max-rows", "64",
              "--audit-sync", "full", "--audit-busy-timeout-ms", "250",
              "--log-level", "debug", NULL),
        0);
    assert_string_equal(c.policy, "p");
    assert_string_equal(c.socket, "/run/t.sock");
    assert_string_equal(c.audit, "a.db");
    assert_int_equal(c.n_allow_uid, 2);
    assert_int_equal(c.allow_uid[0], 1000);
    assert_int_equal(c.allow_uid[1], 1001);
    assert_int_equal(c.n_allow_gid, 1);
    assert_int_equal(c.allow_gid[0], 50);
    assert_int_equal(c.socket_mode, 0600);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.max_line, 4096);
    assert_int_equal(c.commit_interval_ms, 0);
    assert_int_equal(c.commit_max_rows, 64);
    assert_false(c.audit_sync_normal);
    assert_int_equal(c.audit_busy_timeout_ms, 250);
    assert_int_equal(c.log_level, LOG_DEBUG);
    config_free(&c);
}

static void test_audit_sync(void **state)
{
    (void)state;
    trined_config c;
    char err[256];
    assert_int_equal(
        parse(&c, err, "--policy", "p", "--audit-sync=normal", NULL), 0);
    assert_true(c.audit_sync_normal);
    config_free(&c);
    assert_int_equal(
        parse(&c, err, "--policy", "p", "--audit-sync", "full", NULL), 0);
    assert_false(c.audit_sync_normal);
    config_free(&c);
}

/* Expects argv to be refused with exactly msg. */
static void expect_usage(const char *msg, const char *a, const char *b,
                         const char *d)
{
    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--policy", "p", a, b, d, NULL),
                     CONFIG_EUSAGE);
    assert_string_equal(err, msg);
    config_free(&c);
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect_usage("unknown option --frob", "--frob", "1", NULL);
    expect_usage("unexpected argument \"extra\"", "extra", NULL, NULL);
    expect_usage("--socket needs a value", "--socket", NULL, NULL);
    expect_usage("--workers needs an integer from 1 to 256, not \"0\"",
                 "--workers", "0", NULL);
    expect_usage("--workers needs an integer from 1 to 256, not \"2x\"",
                 "--workers", "2x", NULL);
    expect_usage("--max-line needs a byte count from 256 to 1073741824, not "
                 "\"10\"",
                 "--max-line", "10", NULL);
    expect_usage("--socket-mode needs an octal mode such as 0660, not \"0890\"",
                 "--socket-mode", "0890", NULL);
    expect_usage("--socket-mode needs an octal mode such as 0660, not "
                 "\"1777\"",
                 "--socket-mode", "1777", NULL);
    expect_usage("--audit-sync needs \"full\" or \"normal\", not \"off\"",
                 "--audit-sync", "off", NULL);
    expect_usage("--log-level needs debug, info, warn or error, not \"loud\"",
                 "--log-level", "loud", NULL);
    expect_usage("--allow-uid: \"x\" is not a numeric id", "--allow-uid", "1,x",
                 NULL);
    expect_usage("--allow-uid: \"1,\" ends with a comma", "--allow-uid", "1,",
                 NULL);
    expect_usage("--allow-gid: \"-5\" is not a numeric id", "--allow-gid", "-5",
                 NULL);
    expect_usage("--audit needs a non-empty value", "--audit=", NULL, NULL);
    expect_usage("--help takes no value", "--help=1", NULL, NULL);

    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--socket", "s", NULL), CONFIG_EUSAGE);
    assert_string_equal(err, "--policy is required");
    config_free(&c);
    assert_int_equal(parse(&c, err, "--help", NULL), 0);
    assert_true(c.help);
    config_free(&c);
}

static void test_config_file(void **state)
{
    (void)state;
    const char *path = write_file(
        "# trined settings\n"
        "policy = /etc/trine/policy\n"
        "  socket=/run/trine/#1.sock   # a '#' inside a value stays\n"
        "\n"
        "audit = \"/var/lib/trine/audit log.db\"\n"
        "allow_uid = 1000\n"
        "allow-uid = 1001\n"
        "workers = 4\r\n"
        "log-level = warn\n");
    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--config", path, "--workers", "2", NULL),
                     0);
    assert_string_equal(c.config_file, path);
    assert_string_equal(c.policy, "/etc/trine/policy");
    assert_string_equal(c.socket, "/run/trine/#1.sock");
    assert_string_equal(c.audit, "/var/lib/trine/audit log.db");
    /* Repeats within the file add up. */
    assert_int_equal(c.n_allow_uid, 2);
    assert_int_equal(c.allow_uid[1], 1001);
    /* The flag wins over the file. */
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.log_level, LOG_WARN);
    config_free(&c);

    /* A list given by a flag replaces the file's list. */
    assert_int_equal(parse(&c, err, "--allow-uid", "7", "--config", path, NULL),
                     0);
    assert_int_equal(c.n_allow_uid, 1);
    assert_int_equal(c.allow_uid[0], 7);
    config_free(&c);
    unlink(path);
}

/* Expects a file holding text to be refused with msg (after the path). */
static void expect_file_error(const char *text, const char *msg)
{
    const char *path = write_file(text);
    trined_config c;
    char err[256];
    char want[256];
    assert_int_equal(parse(&c, err, "--policy", "p", "--config", path, NULL),
                     CONFIG_EFILE);
    snprintf(want, sizeof want, "%s%s", path, msg);
    assert_string_equal(err, want);
    config_free(&c);
    unlink(path);
}

static void test_bad_config_files(void **state)
{
    (void)state;
    expect_file_error("workers = 2\nnonsense\n",
                      ":2: expected \"key = value\"");
    expect_file_error("colour = blue\n", ":1: unknown setting \"colour\"");
    expect_file_error("\n\nworkers = many\n",
                      ":3: --workers needs an integer from 1 to 256, not "
                      "\"many\"");
    expect_file_error("config = other.conf\n",
                      ":1: \"config\" cannot be set in a configuration file");
    expect_file_error("help = yes\n", ":1: unknown setting \"help\"");

    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--policy", "p", "--config",
                           "/nonexistent/trined.conf", NULL),
                     CONFIG_EFILE);
    assert_string_equal(err,
                        "/nonexistent/trined.conf: No such file or directory");
    config_free(&c);
}

/* Bearer settings: defaults, and the combinations refused at start. */
static void test_bearer_settings(void **state)
{
    (void)state;
    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--policy", "p", NULL), 0);
    assert_int_equal(c.http_timeout_ms, 5000);
    assert_int_equal(c.token_cache_ttl_s, 300);
    assert_null(c.issuer);
    config_free(&c);
    assert_int_equal(
        parse(&c, err, "--policy", "p", "--issuer", "https://as.example",
              "--jwks-url", "https://as.example/jwks", "--introspection-url",
              "http://127.0.0.1:9/introspect", "--client-id", "trine",
              "--client-secret-file", "/etc/trine/secret", "--http-timeout",
              "250", "--token-cache-ttl", "0", NULL),
        0);
    assert_string_equal(c.jwks_url, "https://as.example/jwks");
    assert_string_equal(c.client_secret_file, "/etc/trine/secret");
    assert_int_equal(c.http_timeout_ms, 250);
    assert_int_equal(c.token_cache_ttl_s, 0);
    config_free(&c);

    expect_usage("--jwks-url needs --issuer: the iss every token must carry",
                 "--jwks-url", "https://as.example/jwks", NULL);
    expect_usage("--issuer needs --jwks-url: where the issuer's signing keys "
                 "are",
                 "--issuer", "https://as.example", NULL);
    expect_usage("--introspection-url needs --client-id and "
                 "--client-secret-file: the introspection endpoint "
                 "authenticates its clients",
                 "--introspection-url", "https://as.example/i", NULL);
    expect_usage("--client-id and --client-secret-file are used only with "
                 "--introspection-url",
                 "--client-id", "trine", NULL);
    expect_usage("--http-timeout needs an integer from 100 to 120000, not "
                 "\"50\"",
                 "--http-timeout", "50", NULL);
    expect_usage("--token-cache-ttl needs an integer from 0 to 86400, not "
                 "\"-1\"",
                 "--token-cache-ttl", "-1", NULL);
    assert_int_equal(parse(&c, err, "--policy", "p", "--issuer", "x",
                           "--jwks-url", "http://as.example/jwks", NULL),
                     CONFIG_EUSAGE);
    assert_string_equal(err, "--jwks-url: \"http://as.example/jwks\" must "
                             "use https (plain http is allowed only to a "
                             "loopback host)");
    config_free(&c);
}

static void test_peer_allow_lists(void **state)
{
    (void)state;
    trined_config c;
    char err[256];
    assert_int_equal(parse(&c, err, "--policy", "p", NULL), 0);
    /* Default: our own uid and root only. */
    assert_true(server_peer_allowed(&c, geteuid(), 12345));
    assert_true(server_peer_allowed(&c, 0, 12345));
    uid_t other = geteuid() == 4242 ? 4243 : 4242;
    assert_false(server_peer_allowed(&c, other, 4242));
    config_free(&c);

    assert_int_equal(parse(&c, err, "--policy", "p", "--allow-uid", "4242",
                           "--allow-gid", "77", NULL),
                     0);
    assert_true(server_peer_allowed(&c, 4242, 1));
    assert_true(server_peer_allowed(&c, 9999, 77));
    assert_false(server_peer_allowed(&c, 9999, 78));
    /* A configured list replaces the default. */
    if (geteuid() != 4242)
        assert_false(server_peer_allowed(&c, geteuid(), 1));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_audit_sync),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_bad_config_files),
        cmocka_unit_test(test_peer_allow_lists),
        cmocka_unit_test(test_bearer_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
