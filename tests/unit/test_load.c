/*
 * test_load.c - loading policies from directories and memory, the revision,
 * the reference count, and the status and tools reports (load.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/policy.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *file_a = "scope \"s\" { allow a.read on \"*\" }\n";
static const char *file_b = "role r { allow a.read on \"*\" }\n"
                            "user \"u\" { roles r }\n";

static char tmp[64];

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmp, "/tmp/trine-test-load-XXXXXX");
    return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* The expected revision, computed here on its own. */
static void expect_revision(const char **names, const char **texts, size_t n,
                            char out[72])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < n; i++) {
        EVP_DigestUpdate(md, names[i], strlen(names[i]));
        EVP_DigestUpdate(md, texts[i], strlen(texts[i]));
    }
    unsigned char h[32];
    unsigned len = 0;
    assert_int_equal(EVP_DigestFinal_ex(md, h, &len), 1);
    EVP_MD_CTX_free(md);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", h[i]);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_dir_order_and_filter(void **state)
{
    (void)state;
    write_file(tmp, "b.trine", file_b);
    write_file(tmp, "a.trine", file_a);
    write_file(tmp, "notes.txt", "not a policy {");
    write_file(tmp, ".hidden.trine", "broken {");
    write_file(tmp, "a.trine~", "broken {");
    char sub[128], link[128];
    snprintf(sub, sizeof sub, "%s/dir.trine", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(sub, "c.trine", "broken {");
    /* A symbolic link to a regular file is loaded like the file. */
    snprintf(link, sizeof link, "%s/c.trine", tmp);
    assert_int_equal(symlink("a.trine", link), 0);

    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    int64_t before = now_ms();
    int rc = trine_policy_load_dir(tmp, d, &p);
    int64_t after = now_ms();
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(trine_diag_count(d), 0);
    assert_int_equal(p->nfiles, 3);
    assert_string_equal(p->files[0], "a.trine");
    assert_string_equal(p->files[1], "b.trine");
    assert_string_equal(p->files[2], "c.trine");

    char want[72];
    const char *names[] = {"a.trine", "b.trine", "c.trine"};
    const char *texts[] = {file_a, file_b, file_a};
    expect_revision(names, texts, 3, want);
    assert_string_equal(trine_policy_revision(p), want);
    assert_true(p->loaded_at_ms >= before && p->loaded_at_ms <= after);

    /* The status report, exactly (loaded_at aside). */
    json_t *st = trine_policy_status(p);
    assert_non_null(st);
    json_t *la = json_object_get(st, "loaded_at");
    assert_true(json_is_integer(la));
    assert_int_equal(json_integer_value(la), p->loaded_at_ms);
    assert_int_equal(json_object_del(st, "loaded_at"), 0);
    char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
    char expect[512];
    snprintf(expect, sizeof expect,
             "{\"counts\":{\"agent\":0,\"forbid\":0,\"group\":0,\"role\":1,"
             "\"rules\":3,\"scope\":1,\"server\":0,\"tool\":0,\"user\":1},"
             "\"files\":[\"a.trine\",\"b.trine\",\"c.trine\"],"
             "\"revision\":\"%s\"}",
             want);
    assert_string_equal(text, expect);
    free(text);
    json_decref(st);

    trine_policy_release(p);
    trine_diag_free(d);
}

static void test_dir_matches_sources(void **state)
{
    (void)state;
    /* The same files from memory, named by full paths, give the same
     * revision: names are base names everywhere. */
    write_file(tmp, "a.trine", file_a);
    write_file(tmp, "b.trine", file_b);
    trine_policy *p1 = NULL, *p2 = NULL;
    assert_int_equal(trine_policy_load_dir(tmp, NULL, &p1), 0);
    trine_source src[] = {{"/x/y/a.trine", file_a, strlen(file_a)},
                          {"b.trine", file_b, strlen(file_b)}};
    assert_int_equal(trine_policy_load_sources(src, 2, NULL, &p2), 0);
    assert_string_equal(trine_policy_revision(p1), trine_policy_revision(p2));
    assert_string_equal(p2->files[0], "a.trine");
    /* Order matters. */
    trine_source rev[] = {src[1], src[0]};
    trine_policy *p3 = NULL;
    assert_int_equal(trine_policy_load_sources(rev, 2, NULL, &p3), 0);
    assert_string_not_equal(trine_policy_revision(p1),
                            trine_policy_revision(p3));
    assert_true(trine_policy_same_sources(p1, p2));
    assert_false(trine_policy_same_sources(p1, p3));
    trine_policy_release(p1);
    trine_policy_release(p2);
    trine_policy_release(p3);
}

static void test_revision_collision(void **state)
{
    (void)state;
    /* The revision concatenates names and bytes as DESIGN §2 says, so a
     * comment that ends one file can swallow the next file's name: these
     * two policies share a revision, yet the second forbids everything.
     * Their sources tell them apart. */
    static const char base[] = "scope \"s\" { allow a on \"*\" }\n";
    static const char swallowed[] = "#b.trineforbid * on \"*\"\n";
    static const char forbid[] = "forbid * on \"*\"\n";
    trine_source one[] = {{"a.trine", swallowed, sizeof swallowed - 1},
                          {"base.trine", base, sizeof base - 1}};
    trine_source two[] = {{"a.trine", "#", 1},
                          {"b.trine", forbid, sizeof forbid - 1},
                          {"base.trine", base, sizeof base - 1}};
    trine_policy *p1 = NULL, *p2 = NULL;
    assert_int_equal(trine_policy_load_sources(one, 2, NULL, &p1), 0);
    assert_int_equal(trine_policy_load_sources(two, 3, NULL, &p2), 0);
    assert_string_equal(trine_policy_revision(p1), trine_policy_revision(p2));
    assert_false(trine_policy_same_sources(p1, p2));
    assert_true(trine_policy_same_sources(p1, p1));
    assert_false(trine_policy_same_sources(p1, NULL));
    trine_policy_release(p1);
    trine_policy_release(p2);
}

static void test_dir_without_policy(void **state)
{
    (void)state;
    write_file(tmp, "README", "nothing here");
    trine_diag *d = trine_diag_new();
    trine_policy *p = (trine_policy *)1;
    assert_int_equal(trine_policy_load_dir(tmp, d, &p), TRINE_EPOLICY);
    assert_null(p);
    assert_int_equal(trine_diag_count(d), 1);
    const trine_diag_item *it = trine_diag_at(d, 0);
    char msg[128];
    snprintf(msg, sizeof msg, "no *.trine file in %s", tmp);
    assert_string_equal(it->message, msg);
    assert_string_equal(it->file, tmp);
    assert_int_equal(it->line, 0);
    assert_int_equal(it->level, TRINE_DIAG_ERROR);
    trine_diag_free(d);
}

/* Loading dir fails with TRINE_EIO and exactly one error, about file. */
static void expect_io_error(const char *dir, const char *file,
                            const char *message)
{
    trine_diag *d = trine_diag_new();
    trine_policy *p = (trine_policy *)1;
    assert_int_equal(trine_policy_load_dir(dir, d, &p), TRINE_EIO);
    assert_null(p);
    assert_int_equal(trine_diag_count(d), 1);
    assert_string_equal(trine_diag_at(d, 0)->file, file);
    assert_string_equal(trine_diag_at(d, 0)->message, message);
    trine_diag_free(d);
}

static void test_dir_unreadable(void **state)
{
    (void)state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none", tmp);
    expect_io_error(missing, missing,
                    "cannot open the policy directory: No such file or "
                    "directory");

    /* A file that cannot be read (here a dangling link). */
    write_file(tmp, "a.trine", file_a);
    char link[128];
    snprintf(link, sizeof link, "%s/b.trine", tmp);
    assert_int_equal(symlink("gone", link), 0);
    expect_io_error(tmp, "b.trine", "cannot read: No such file or directory");
    unlink(link);

    /* A name that is not UTF-8 is named (trine_diag_print escapes it). */
    write_file(tmp, "\xff.trine", file_a);
    expect_io_error(tmp, "\xff.trine",
                    "the file name is not valid UTF-8; rename the file");
}

static void test_dir_errors_use_base_names(void **state)
{
    (void)state;
    write_file(tmp, "a.trine", file_a);
    write_file(tmp, "z.trine", "user \"u\" { roles nope }\n");
    trine_diag *d = trine_diag_new();
    trine_policy *p = NULL;
    assert_int_equal(trine_policy_load_dir(tmp, d, &p), TRINE_EPOLICY);
    assert_int_equal(trine_diag_count(d), 1);
    assert_string_equal(trine_diag_at(d, 0)->file, "z.trine");
    assert_int_equal(trine_diag_at(d, 0)->line, 1);
    assert_int_equal(trine_diag_at(d, 0)->col, 18);
    trine_diag_free(d);
}

static void test_sources_edge_cases(void **state)
{
    (void)state;
    trine_diag *d = trine_diag_new();
    trine_policy *p = (trine_policy *)1;
    assert_int_equal(trine_policy_load_sources(NULL, 0, d, &p), TRINE_EPOLICY);
    assert_null(p);
    assert_string_equal(trine_diag_at(d, 0)->message, "no policy source given");
    assert_int_equal(trine_policy_load_sources(NULL, 1, d, &p), TRINE_EINVAL);
    assert_int_equal(trine_policy_load_sources(NULL, 0, d, NULL), TRINE_EINVAL);
    trine_diag_free(d);
    /* An empty file is an empty policy. */
    trine_source empty = {"e.trine", "", 0};
    assert_int_equal(trine_policy_load_sources(&empty, 1, NULL, &p), 0);
    assert_int_equal(p->counts.rules, 0);
    trine_policy_release(p);
    /* Sources need not be NUL-terminated. */
    char buf[64];
    memcpy(buf, file_a, strlen(file_a));
    memset(buf + strlen(file_a), '{', sizeof buf - strlen(file_a));
    trine_source s = {"a.trine", buf, strlen(file_a)};
    assert_int_equal(trine_policy_load_sources(&s, 1, NULL, &p), 0);
    trine_policy_release(p);
}

static void *retain_release(void *arg)
{
    trine_policy *p = arg;
    for (int i = 0; i < 10000; i++) {
        trine_policy_retain(p);
        trine_policy_release(p);
    }
    return NULL;
}

static void test_retain_release(void **state)
{
    (void)state;
    trine_source s = {"a.trine", file_a, strlen(file_a)};
    trine_policy *p = NULL;
    assert_int_equal(trine_policy_load_sources(&s, 1, NULL, &p), 0);
    assert_int_equal(atomic_load(&p->refs), 1);
    assert_ptr_equal(trine_policy_retain(p), p);
    assert_int_equal(atomic_load(&p->refs), 2);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, retain_release, p), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&p->refs), 2);
    trine_policy_release(p);
    assert_int_equal(atomic_load(&p->refs), 1);
    assert_int_equal(strncmp(trine_policy_revision(p), "sha256:", 7), 0);
    /* The last release frees everything (the sanitizer build checks). */
    trine_policy_release(p);
    trine_policy_release(NULL);
    assert_null(trine_policy_retain(NULL));
}

static void test_tools_report(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/design", TRINE_SOURCE_DIR);
    trine_policy *p = NULL;
    trine_diag *d = trine_diag_new();
    int rc = trine_policy_load_dir(path, d, &p);
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    trine_diag_free(d);

    json_t *t = trine_policy_tools(p, "github");
    char *text = json_dumps(t, JSON_COMPACT);
    assert_string_equal(text, "{\"tools\":[\"get_issue\",\"create_issue\","
                              "\"delete_repo\"],\"wildcard\":false}");
    free(text);
    json_decref(t);
    t = trine_policy_tools(p, "gitlab");
    text = json_dumps(t, JSON_COMPACT);
    assert_string_equal(text, "{\"tools\":[],\"wildcard\":false}");
    free(text);
    json_decref(t);

    json_t *st = trine_policy_status(p);
    json_object_del(st, "loaded_at");
    json_object_del(st, "revision");
    text = json_dumps(st, JSON_COMPACT);
    assert_string_equal(text,
                        "{\"files\":[\"github.trine\"],\"counts\":{"
                        "\"scope\":3,\"role\":2,\"user\":2,\"group\":1,"
                        "\"agent\":4,\"server\":1,\"tool\":3,\"forbid\":1,"
                        "\"rules\":11}}");
    free(text);
    json_decref(st);
    trine_policy_release(p);

    /* A wildcard tool, and tools in declaration order across files. */
    trine_source src[] = {{"a.trine",
                           "tool \"fs\" \"write\" { needs w on \"x\" }\n"
                           "tool \"fs\" * { needs r on \"x\" }\n",
                           0},
                          {"b.trine",
                           "tool \"fs\" \"read\" { needs r on \"x\" }\n"
                           "tool \"fs\" \"write\" { arg a required }\n",
                           0}};
    src[0].len = strlen(src[0].data);
    src[1].len = strlen(src[1].data);
    assert_int_equal(trine_policy_load_sources(src, 2, NULL, &p), 0);
    t = trine_policy_tools(p, "fs");
    text = json_dumps(t, JSON_COMPACT);
    assert_string_equal(text,
                        "{\"tools\":[\"write\",\"read\"],\"wildcard\":true}");
    free(text);
    json_decref(t);
    trine_policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_order_and_filter, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_matches_sources, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_without_policy, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_unreadable, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_errors_use_base_names,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_revision_collision),
        cmocka_unit_test(test_sources_edge_cases),
        cmocka_unit_test(test_retain_release),
        cmocka_unit_test(test_tools_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
