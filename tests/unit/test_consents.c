/*
 * test_consents.c - trined's in-memory consent cache: what each mode
 * matches, expiry, the single-use claim of `always` grants (and its
 * release), revocation and the listing the daemon returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/consents.h"

#define NOW 1767225600000
#define HASH_A "aaaa"
#define HASH_B "bbbb"

static int setup(void **state)
{
    consents *c;
    if (consents_new(&c) != 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    consents_free(*state);
    return 0;
}

static void add(consents *c, int64_t id, const char *tool, const char *mode,
                const char *session, const char *hash, int64_t expires)
{
    consent_row r = {.id = id,
                     .user = "alice",
                     .agent = "claude",
                     .server = "github",
                     .tool = tool,
                     .mode = mode,
                     .session = session,
                     .args_sha256 = hash,
                     .granted_ms = NOW - 1000,
                     .expires_ms = expires,
                     .revoked_ms = -1,
                     .used_ms = -1,
                     .decision_id = id * 10};
    assert_int_equal(consents_add(c, &r), 0);
}

/* Looks up tool in mode; returns the grant id or 0 when none. */
static int64_t lookup(consents *c, const char *tool, trine_consent_mode mode,
                      const char *session, const char *hash, int64_t now)
{
    trine_consent_query q = {.user = "alice",
                             .agent = "claude",
                             .server = "github",
                             .tool = tool,
                             .mode = mode,
                             .session = session,
                             .args_hash = hash,
                             .now_ms = now};
    int64_t id = -1;
    int rc = consents_lookup(c, &q, &id);
    assert_true(rc == 0 || rc == 1);
    return rc == 1 ? id : 0;
}

static void test_session_grants(void **state)
{
    consents *c = *state;
    add(c, 1, "create_issue", "session", "s1", NULL, -1);
    assert_int_equal(
        lookup(c, "create_issue", TRINE_CONSENT_SESSION, "s1", HASH_A, NOW), 1);
    assert_int_equal(
        lookup(c, "create_issue", TRINE_CONSENT_SESSION, "s2", HASH_A, NOW), 0);
    assert_int_equal(
        lookup(c, "create_issue", TRINE_CONSENT_SESSION, NULL, HASH_A, NOW), 0);
    /* A grant counts only for the tool's own mode. */
    assert_int_equal(
        lookup(c, "create_issue", TRINE_CONSENT_ONCE, "s1", HASH_A, NOW), 0);
    assert_int_equal(
        lookup(c, "other", TRINE_CONSENT_SESSION, "s1", HASH_A, NOW), 0);
}

static void test_once_grants_expire(void **state)
{
    consents *c = *state;
    add(c, 3, "t", "once", NULL, NULL, NOW + 5000);
    add(c, 4, "t", "once", NULL, NULL, -1);
    /* The oldest live grant answers, as often as asked. */
    assert_int_equal(lookup(c, "t", TRINE_CONSENT_ONCE, NULL, NULL, NOW), 3);
    assert_int_equal(lookup(c, "t", TRINE_CONSENT_ONCE, NULL, NULL, NOW), 3);
    assert_int_equal(lookup(c, "t", TRINE_CONSENT_ONCE, NULL, NULL, NOW + 5000),
                     4);
    /* The expired grant is gone from the cache. */
    assert_int_equal(consents_count(c), 1);
}

static void test_always_grants_are_single_use(void **state)
{
    consents *c = *state;
    add(c, 5, "delete_repo", "always", NULL, HASH_A, -1);
    assert_int_equal(
        lookup(c, "delete_repo", TRINE_CONSENT_ALWAYS, NULL, HASH_B, NOW), 0);
    assert_int_equal(
        lookup(c, "delete_repo", TRINE_CONSENT_ALWAYS, NULL, HASH_A, NOW), 5);
    /* Claimed: a second check cannot use it. */
    assert_int_equal(
        lookup(c, "delete_repo", TRINE_CONSENT_ALWAYS, NULL, HASH_A, NOW), 0);
    /* Its decision was not committed: the claim is released. */
    consents_release(c, 5);
    assert_int_equal(
        lookup(c, "delete_repo", TRINE_CONSENT_ALWAYS, NULL, HASH_A, NOW), 5);
    /* Committed: the grant is used up. */
    consents_consume(c, 5);
    assert_int_equal(consents_count(c), 0);
    consents_release(c, 5);
    assert_int_equal(
        lookup(c, "delete_repo", TRINE_CONSENT_ALWAYS, NULL, HASH_A, NOW), 0);
}

static void test_revoke(void **state)
{
    consents *c = *state;
    add(c, 1, "a", "once", NULL, NULL, -1);
    add(c, 2, "b", "once", NULL, NULL, -1);
    add(c, 3, "c", "once", NULL, NULL, -1);
    consent_row bob = {.id = 4,
                       .user = "bob",
                       .agent = "claude",
                       .server = "github",
                       .tool = "a",
                       .mode = "once",
                       .granted_ms = NOW,
                       .expires_ms = -1,
                       .decision_id = -1};
    assert_int_equal(consents_add(c, &bob), 0);
    /* Adding an id twice keeps one. */
    assert_int_equal(consents_add(c, &bob), 0);
    assert_int_equal(consents_count(c), 4);
    assert_int_equal(consents_revoke(c, 2, NULL, NULL, NULL, NULL), 1);
    assert_int_equal(consents_revoke(c, 2, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(consents_revoke(c, -1, "alice", "other", NULL, NULL), 0);
    assert_int_equal(consents_revoke(c, -1, "alice", NULL, NULL, "c"), 1);
    assert_int_equal(consents_revoke(c, -1, "alice", "claude", "github", NULL),
                     1);
    assert_int_equal(lookup(c, "a", TRINE_CONSENT_ONCE, NULL, NULL, NOW), 0);
    assert_int_equal(consents_count(c), 1);
}

static void test_list(void **state)
{
    consents *c = *state;
    add(c, 9, "t", "session", "s1", NULL, NOW + 1);
    add(c, 2, "t", "always", NULL, HASH_A, -1);
    add(c, 5, "t", "once", NULL, NULL, NOW - 1);
    json_t *l = consents_list(c, "alice", NULL, NOW);
    assert_non_null(l);
    char *text = json_dumps(l, JSON_COMPACT);
    /* Oldest first; the expired grant is left out; the args hash is not
     * shown. */
    assert_string_equal(
        text,
        "{\"consents\":[{\"id\":2,\"user\":\"alice\",\"agent\":\"claude\","
        "\"server\":\"github\",\"tool\":\"t\",\"mode\":\"always\","
        "\"session\":null,\"granted_ms\":1767225599000,\"expires_ms\":null,"
        "\"used_ms\":null,\"decision_id\":20},{\"id\":9,\"user\":\"alice\","
        "\"agent\":\"claude\",\"server\":\"github\",\"tool\":\"t\","
        "\"mode\":\"session\",\"session\":\"s1\",\"granted_ms\":"
        "1767225599000,\"expires_ms\":1767225600001,\"used_ms\":null,"
        "\"decision_id\":90}]}");
    free(text);
    json_decref(l);
    l = consents_list(c, "bob", NULL, NOW);
    text = json_dumps(l, JSON_COMPACT);
    assert_string_equal(text, "{\"consents\":[]}");
    free(text);
    json_decref(l);
    l = consents_list(c, NULL, "claude", NOW + 2);
    assert_int_equal(json_array_size(json_object_get(l, "consents")), 1);
    json_decref(l);
}

static void test_unknown_mode_is_skipped_on_load(void **state)
{
    consents *c = *state;
    consent_row r = {.id = 1,
                     .user = "u",
                     .agent = "a",
                     .server = "s",
                     .tool = "t",
                     .mode = "sometimes",
                     .expires_ms = -1};
    assert_int_equal(consents_add(c, &r), TRINE_EINVAL);
    assert_int_equal(consents_load_row(c, &r), 0);
    assert_int_equal(consents_count(c), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_session_grants),
        T(test_once_grants_expire),
        T(test_always_grants_are_single_use),
        T(test_revoke),
        T(test_list),
        T(test_unknown_mode_is_skipped_on_load),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
