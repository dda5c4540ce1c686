/*
 * test_consent.c - the consents table: each mode's matching rules, expiry,
 * single use, revocation and listing.
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

#include "store_fixture.h"

#define NOW 1767225600000

/* A grant for alice through claude-desktop on github/tool. */
static consent_row grant(const char *tool, const char *mode)
{
    consent_row r = {.id = 0,
                     .user = "alice",
                     .agent = "claude-desktop",
                     .server = "github",
                     .tool = tool,
                     .mode = mode,
                     .session = NULL,
                     .args_sha256 = NULL,
                     .granted_ms = NOW,
                     .expires_ms = -1,
                     .revoked_ms = -1,
                     .used_ms = -1,
                     .decision_id = -1};
    return r;
}

static trine_consent_query query(const char *tool, trine_consent_mode mode)
{
    trine_consent_query q = {.user = "alice",
                             .agent = "claude-desktop",
                             .server = "github",
                             .tool = tool,
                             .mode = mode,
                             .session = NULL,
                             .args_hash = NULL,
                             .now_ms = NOW + 1000};
    return q;
}

/* Records the arguments' hash of decision id (its decision_facts row),
 * which an always grant of that decision binds to. */
static void decision_args(store *s, int64_t id, const char *hash)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(s->db,
                                        "INSERT INTO decision_facts"
                                        " (decision_id, args_sha256)"
                                        " VALUES (?1, ?2)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* An always grant of decision id, whose arguments hash to hash. */
static consent_row always(store *s, int64_t id, const char *hash)
{
    decision_args(s, id, hash);
    consent_row r = grant("delete_repo", "always");
    r.decision_id = id;
    r.args_sha256 = hash;
    return r;
}

/* Returns consent_find's result, with the id found in *id. */
static int find(store *s, const trine_consent_query *q, int64_t *id)
{
    *id = -7;
    return consent_find(s, q, id);
}

static void test_session_grants(void **state)
{
    fixture *f = *state;
    consent_row g = grant("create_issue", "session");
    g.session = "s1";
    g.decision_id = 12;
    assert_int_equal(consent_insert(f->s, &g), 0);
    assert_int_equal(g.id, 1);

    int64_t id;
    trine_consent_query q = query("create_issue", TRINE_CONSENT_SESSION);
    q.session = "s1";
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, 1);
    /* Another session, no session, an empty one: no grant. */
    q.session = "s2";
    assert_int_equal(find(f->s, &q, &id), 0);
    assert_int_equal(id, -1);
    q.session = NULL;
    assert_int_equal(find(f->s, &q, &id), 0);
    q.session = "";
    assert_int_equal(find(f->s, &q, &id), 0);
    /* Same session, but another user, agent, server, tool or mode. */
    q = query("create_issue", TRINE_CONSENT_SESSION);
    q.session = "s1";
    trine_consent_query other = q;
    other.user = "bob";
    assert_int_equal(find(f->s, &other, &id), 0);
    other = q;
    other.agent = "ci-bot";
    assert_int_equal(find(f->s, &other, &id), 0);
    other = q;
    other.server = "gitlab";
    assert_int_equal(find(f->s, &other, &id), 0);
    other = q;
    other.tool = "delete_repo";
    assert_int_equal(find(f->s, &other, &id), 0);
    other = q;
    other.mode = TRINE_CONSENT_ONCE;
    assert_int_equal(find(f->s, &other, &id), 0);

    /* A session grant is not consumed by use. */
    assert_int_equal(find(f->s, &q, &id), 1);

    consent_row got;
    assert_int_equal(consent_get(f->s, 1, &got), 1);
    assert_string_equal(got.mode, "session");
    assert_string_equal(got.session, "s1");
    assert_null(got.args_sha256);
    assert_int_equal(got.granted_ms, NOW);
    assert_int_equal(got.expires_ms, -1);
    assert_int_equal(got.decision_id, 12);
    assert_int_equal(consent_get(f->s, 2, &got), 0);
}

static void test_once_grants_expire(void **state)
{
    fixture *f = *state;
    consent_row g = grant("get_issue", "once");
    g.expires_ms = NOW + 60000;
    assert_int_equal(consent_insert(f->s, &g), 0);
    consent_row forever = grant("list_issues", "once");
    assert_int_equal(consent_insert(f->s, &forever), 0);

    int64_t id;
    trine_consent_query q = query("get_issue", TRINE_CONSENT_ONCE);
    q.now_ms = NOW + 59999;
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, g.id);
    /* Expiry is exclusive: at expires_ms the grant is gone. */
    q.now_ms = NOW + 60000;
    assert_int_equal(find(f->s, &q, &id), 0);

    /* Without a duration it lasts until revoked; the session does not
     * matter. */
    q = query("list_issues", TRINE_CONSENT_ONCE);
    q.now_ms = NOW + 86400000LL * 365;
    q.session = "whatever";
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, forever.id);
    /* Using it does not consume it. */
    assert_int_equal(find(f->s, &q, &id), 1);
}

static void test_always_grants_single_use_and_bound(void **state)
{
    fixture *f = *state;
    const char *h1 =
        "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 =
        "2222222222222222222222222222222222222222222222222222222222222222";
    consent_row g = always(f->s, 1, h1);
    assert_int_equal(consent_insert(f->s, &g), 0);

    int64_t id;
    trine_consent_query q = query("delete_repo", TRINE_CONSENT_ALWAYS);
    /* Consent to delete one repository is not consent to delete another. */
    q.args_hash = h2;
    assert_int_equal(find(f->s, &q, &id), 0);
    q.args_hash = NULL;
    assert_int_equal(find(f->s, &q, &id), 0);
    q.args_hash = h1;
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, g.id);

    /* Claimed once; then gone. */
    assert_int_equal(consent_mark_used(f->s, g.id, NOW + 5), 1);
    assert_int_equal(consent_mark_used(f->s, g.id, NOW + 6), 0);
    assert_int_equal(find(f->s, &q, &id), 0);
    consent_row got;
    assert_int_equal(consent_get(f->s, g.id, &got), 1);
    assert_int_equal(got.used_ms, NOW + 5);
    assert_string_equal(got.args_sha256, h1);
    assert_int_equal(consent_mark_used(f->s, 999, NOW), 0);

    /* Two grants for the same arguments: the oldest is found first. */
    consent_row a = always(f->s, 2, h2);
    consent_row b = always(f->s, 3, h2);
    assert_int_equal(consent_insert(f->s, &a), 0);
    assert_int_equal(consent_insert(f->s, &b), 0);
    q.args_hash = h2;
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, a.id);
    assert_int_equal(consent_mark_used(f->s, a.id, NOW), 1);
    assert_int_equal(find(f->s, &q, &id), 1);
    assert_int_equal(id, b.id);
}

static void test_revoked_grants_do_not_count(void **state)
{
    fixture *f = *state;
    consent_row g = grant("get_issue", "once");
    g.revoked_ms = NOW - 1;
    assert_int_equal(consent_insert(f->s, &g), 0);
    int64_t id;
    trine_consent_query q = query("get_issue", TRINE_CONSENT_ONCE);
    assert_int_equal(find(f->s, &q, &id), 0);
    q.mode = TRINE_CONSENT_NONE;
    assert_int_equal(find(f->s, &q, &id), TRINE_EINVAL);
}

static void test_grant_by_decision(void **state)
{
    fixture *f = *state;
    int64_t id = -1;
    assert_int_equal(consent_by_decision(f->s, 41, &id), 0);
    /* A used single-use grant and a revoked one still count: one approval
     * makes one grant, ever. */
    consent_row used = always(
        f->s, 41,
        "1111111111111111111111111111111111111111111111111111111111111111");
    assert_int_equal(consent_insert(f->s, &used), 0);
    assert_int_equal(consent_mark_used(f->s, used.id, NOW), 1);
    consent_row revoked = grant("get_issue", "once");
    revoked.decision_id = 42;
    revoked.revoked_ms = NOW;
    assert_int_equal(consent_insert(f->s, &revoked), 0);
    assert_int_equal(consent_by_decision(f->s, 41, &id), 1);
    assert_int_equal(id, used.id);
    assert_int_equal(consent_by_decision(f->s, 42, &id), 1);
    assert_int_equal(id, revoked.id);
    assert_int_equal(consent_by_decision(f->s, 43, &id), 0);
}

static void test_insert_validates(void **state)
{
    fixture *f = *state;
    consent_row g = grant("t", "forever");
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s), "unknown consent mode \"forever\"");
    g = grant("t", "session");
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s), "a session grant needs a session");
    g.session = "";
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    g = grant("t", "always");
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s),
                        "an always grant needs its decision and its "
                        "args_sha256");
    g.args_sha256 = "aa";
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    g = grant(NULL, "once");
    assert_int_equal(consent_insert(f->s, &g), TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s),
                        "a grant needs user, agent, server, tool and mode");
}

/* consent_row_fn: records ids. */
typedef struct ids {
    int64_t v[32];
    int n;
} ids;

static int collect(void *ctx, const consent_row *row)
{
    ids *c = ctx;
    c->v[c->n++] = row->id;
    return 0;
}

static void expect_list(store *s, const char *user, const char *agent,
                        int64_t now, const int64_t *want, int n)
{
    ids c = {.n = 0};
    assert_int_equal(consent_list(s, user, agent, now, collect, &c), 0);
    assert_int_equal(c.n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(c.v[i], want[i]);
}

/* Inserts the grants the revoke and list tests use:
 * 1 alice/claude github create_issue session   live
 * 2 alice/claude github get_issue   once      expires NOW+10s
 * 3 alice/ci-bot github get_issue   once      live
 * 4 alice/claude gitlab get_issue   once      live
 * 5 bob/claude   github get_issue   once      live
 * 6 alice/claude github delete_repo always    used
 * 7 alice/claude github delete_repo always    live
 * 8 alice/claude github get_issue   once      revoked */
static void seed(store *s)
{
    consent_row g[8];
    g[0] = grant("create_issue", "session");
    g[0].session = "s1";
    g[1] = grant("get_issue", "once");
    g[1].expires_ms = NOW + 10000;
    g[2] = grant("get_issue", "once");
    g[2].agent = "ci-bot";
    g[3] = grant("get_issue", "once");
    g[3].server = "gitlab";
    g[4] = grant("get_issue", "once");
    g[4].user = "bob";
    g[5] = always(s, 5, "aa");
    g[5].used_ms = NOW;
    g[6] = always(s, 6, "bb");
    g[7] = grant("get_issue", "once");
    g[7].revoked_ms = NOW;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(consent_insert(s, &g[i]), 0);
        assert_int_equal(g[i].id, i + 1);
    }
}

static void test_list_live_only(void **state)
{
    fixture *f = *state;
    seed(f->s);
    expect_list(f->s, NULL, NULL, NOW, (const int64_t[]){1, 2, 3, 4, 5, 7}, 6);
    /* After grant 2 expires. */
    expect_list(f->s, NULL, NULL, NOW + 10000, (const int64_t[]){1, 3, 4, 5, 7},
                5);
    expect_list(f->s, "alice", NULL, NOW, (const int64_t[]){1, 2, 3, 4, 7}, 5);
    expect_list(f->s, "alice", "ci-bot", NOW, (const int64_t[]){3}, 1);
    expect_list(f->s, NULL, "claude-desktop", NOW,
                (const int64_t[]){1, 2, 4, 5, 7}, 5);
    expect_list(f->s, "nobody", NULL, NOW, NULL, 0);

    ids c = {.n = 0};
    assert_int_equal(consent_load_live(f->s, NOW, collect, &c), 0);
    assert_int_equal(c.n, 6);
}

static void test_revoke_by_id(void **state)
{
    fixture *f = *state;
    seed(f->s);
    int64_t n = -1;
    assert_int_equal(
        consent_revoke(f->s, 3, NULL, NULL, NULL, NULL, NOW + 1, &n), 0);
    assert_int_equal(n, 1);
    /* Already revoked, used, or expired: nothing more to revoke. */
    assert_int_equal(
        consent_revoke(f->s, 3, NULL, NULL, NULL, NULL, NOW + 2, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(consent_revoke(f->s, 6, NULL, NULL, NULL, NULL, NOW, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(
        consent_revoke(f->s, 2, NULL, NULL, NULL, NULL, NOW + 10000, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(consent_revoke(f->s, 42, NULL, NULL, NULL, NULL, NOW, &n),
                     0);
    assert_int_equal(n, 0);

    consent_row got;
    assert_int_equal(consent_get(f->s, 3, &got), 1);
    assert_int_equal(got.revoked_ms, NOW + 1);
    int64_t id;
    trine_consent_query q = query("get_issue", TRINE_CONSENT_ONCE);
    q.agent = "ci-bot";
    assert_int_equal(find(f->s, &q, &id), 0);
}

static void test_revoke_by_user_filter(void **state)
{
    fixture *f = *state;
    seed(f->s);
    int64_t n = -1;
    assert_int_equal(consent_revoke(f->s, -1, NULL, NULL, NULL, NULL, NOW, &n),
                     TRINE_EINVAL);
    assert_string_equal(store_errmsg(f->s),
                        "revoking needs a grant id or a user");
    /* alice's github get_issue grants through claude: only 2 is live. */
    assert_int_equal(consent_revoke(f->s, -1, "alice", "claude-desktop",
                                    "github", "get_issue", NOW, &n),
                     0);
    assert_int_equal(n, 1);
    /* Every remaining live grant of alice on github. */
    assert_int_equal(
        consent_revoke(f->s, -1, "alice", NULL, "github", NULL, NOW, &n), 0);
    assert_int_equal(n, 3);
    expect_list(f->s, NULL, NULL, NOW, (const int64_t[]){4, 5}, 2);
    assert_int_equal(
        consent_revoke(f->s, -1, "alice", NULL, NULL, NULL, NOW, &n), 0);
    assert_int_equal(n, 1);
    expect_list(f->s, NULL, NULL, NOW, (const int64_t[]){5}, 1);
}

static void test_consent_in_audit_transaction(void **state)
{
    fixture *f = *state;
    /* Grants written inside the writer's transaction share its fate. */
    assert_int_equal(audit_begin(f->s), 0);
    consent_row g = grant("get_issue", "once");
    assert_int_equal(consent_insert(f->s, &g), 0);
    audit_rollback(f->s);
    consent_row got;
    assert_int_equal(consent_get(f->s, g.id, &got), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_session_grants),
        T(test_once_grants_expire),
        T(test_always_grants_single_use_and_bound),
        T(test_revoked_grants_do_not_count),
        T(test_grant_by_decision),
        T(test_insert_validates),
        T(test_list_live_only),
        T(test_revoke_by_id),
        T(test_revoke_by_user_filter),
        T(test_consent_in_audit_transaction),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
