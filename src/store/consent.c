/*
 * consent.c - the consents table (DESIGN §2.4 step 6): recording grants,
 * finding a live one for a check, consuming single-use grants, revoking and
 * listing.
 *
 * A grant is live while it is not revoked, not expired (expires_ms NULL or
 * later than now) and, for an `always` grant, not used. It counts only for
 * its own mode: a `session` grant for the same non-empty session, an
 * `always` grant for the exact arguments it was given for.
 */
#include <inttypes.h>
#include <string.h>

#include "store/store_int.h"

/* Returns true for the three modes a grant can have. */
static bool consent_mode_known(const char *mode)
{
    return strcmp(mode, "session") == 0 || strcmp(mode, "once") == 0 ||
           strcmp(mode, "always") == 0;
}

/* Fills row from a statement selecting CONSENT_COLUMNS. Its strings point
 * into the statement. */
static void consent_row_from_stmt(sqlite3_stmt *st, consent_row *row)
{
    row->id = sqlite3_column_int64(st, 0);
    row->user = store_col_text(st, 1);
    row->agent = store_col_text(st, 2);
    row->server = store_col_text(st, 3);
    row->tool = store_col_text(st, 4);
    row->mode = store_col_text(st, 5);
    row->session = store_col_text(st, 6);
    row->args_sha256 = store_col_text(st, 7);
    row->granted_ms = store_col_opt_int(st, 8);
    row->expires_ms = store_col_opt_int(st, 9);
    row->revoked_ms = store_col_opt_int(st, 10);
    row->used_ms = store_col_opt_int(st, 11);
    row->decision_id = store_col_opt_int(st, 12);
}

int consent_insert(store *s, consent_row *row)
{
    if (s->readonly)
        return store_failf(s, TRINE_EINVAL, "the store is read-only");
    if (row->user == NULL || row->agent == NULL || row->server == NULL ||
        row->tool == NULL || row->mode == NULL)
        return store_failf(s, TRINE_EINVAL,
                           "a grant needs user, agent, server, tool and mode");
    if (!consent_mode_known(row->mode))
        return store_failf(s, TRINE_EINVAL, "unknown consent mode \"%.40s\"",
                           row->mode);
    if (strcmp(row->mode, "session") == 0 &&
        (row->session == NULL || row->session[0] == '\0'))
        return store_failf(s, TRINE_EINVAL, "a session grant needs a session");
    /* An always grant is bound to its decision's arguments through
     * decision_id (decision_facts.args_sha256), which must be row's. */
    if (strcmp(row->mode, "always") == 0 &&
        (row->args_sha256 == NULL || row->decision_id <= 0))
        return store_failf(s, TRINE_EINVAL,
                           "an always grant needs its decision and its "
                           "args_sha256");
    if (row->granted_ms < 0)
        return store_failf(s, TRINE_EINVAL, "a grant needs granted_ms");
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_INSERT);
    if (st == NULL)
        return TRINE_EIO;
    const char *text[] = {row->user, row->agent, row->server,
                          row->tool, row->mode,  row->session};
    int rc = SQLITE_OK;
    for (int i = 0; i < 6 && rc == SQLITE_OK; i++)
        rc = store_bind_text(st, 1 + i, text[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 7, row->granted_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_opt_int(st, 8, row->expires_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_opt_int(st, 9, row->revoked_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_opt_int(st, 10, row->used_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_opt_int(st, 11, row->decision_id);
    int err = store_run(s, st, rc);
    if (err < 0)
        return err;
    row->id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

/* Runs a bound statement that selects grant ids (rc: the result of the
 * binds) and writes the first id to *id. Returns 1 when a row came back, 0
 * when none, or a negative code; the statement is reset either way. */
static int consent_first_id(store *s, sqlite3_stmt *st, int rc, int64_t *id)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = store_fail(s, rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int consent_find(store *s, const trine_consent_query *q, int64_t *id)
{
    *id = -1;
    const char *mode;
    switch (q->mode) {
    case TRINE_CONSENT_SESSION:
        /* A grant never matches a request without a session. */
        if (q->session == NULL || q->session[0] == '\0')
            return 0;
        mode = "session";
        break;
    case TRINE_CONSENT_ONCE:
        mode = "once";
        break;
    case TRINE_CONSENT_ALWAYS:
        if (q->args_hash == NULL)
            return 0;
        mode = "always";
        break;
    default:
        return store_failf(s, TRINE_EINVAL, "no consent mode to look up");
    }
    if (q->user == NULL || q->agent == NULL || q->server == NULL ||
        q->tool == NULL)
        return 0;
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_FIND);
    if (st == NULL)
        return TRINE_EIO;
    const char *text[] = {q->user, q->agent, q->server, q->tool, mode};
    int rc = SQLITE_OK;
    for (int i = 0; i < 5 && rc == SQLITE_OK; i++)
        rc = store_bind_text(st, 1 + i, text[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 6, q->now_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 7, q->session);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 8, q->args_hash);
    return consent_first_id(s, st, rc, id);
}

int consent_mark_used(store *s, int64_t id, int64_t now_ms)
{
    if (s->readonly)
        return store_failf(s, TRINE_EINVAL, "the store is read-only");
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_MARK_USED);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, now_ms);
    int err = store_run(s, st, rc);
    if (err < 0)
        return err;
    return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

int consent_revoke(store *s, int64_t id, const char *user, const char *agent,
                   const char *server, const char *tool, int64_t now_ms,
                   int64_t *count)
{
    *count = 0;
    if (s->readonly)
        return store_failf(s, TRINE_EINVAL, "the store is read-only");
    sqlite3_stmt *st;
    int rc;
    if (id >= 0) {
        st = store_stmt(s, STMT_CONSENT_REVOKE_ID);
        if (st == NULL)
            return TRINE_EIO;
        rc = sqlite3_bind_int64(st, 1, id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 2, now_ms);
    } else {
        if (user == NULL)
            return store_failf(s, TRINE_EINVAL,
                               "revoking needs a grant id or a user");
        st = store_stmt(s, STMT_CONSENT_REVOKE_USER);
        if (st == NULL)
            return TRINE_EIO;
        rc = sqlite3_bind_int64(st, 1, now_ms);
        const char *text[] = {user, agent, server, tool};
        for (int i = 0; i < 4 && rc == SQLITE_OK; i++)
            rc = store_bind_text(st, 2 + i, text[i]);
    }
    int err = store_run(s, st, rc);
    if (err < 0)
        return err;
    *count = sqlite3_changes(s->db);
    return 0;
}

int consent_list(store *s, const char *user, const char *agent, int64_t now_ms,
                 consent_row_fn fn, void *ctx)
{
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_LIST);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_bind_int64(st, 1, now_ms);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 2, user);
    if (rc == SQLITE_OK)
        rc = store_bind_text(st, 3, agent);
    int ret = 0;
    if (rc != SQLITE_OK)
        ret = store_fail(s, rc);
    while (ret == 0) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            ret = store_fail(s, rc);
            break;
        }
        consent_row row;
        consent_row_from_stmt(st, &row);
        ret = fn(ctx, &row);
    }
    /* Reset before returning: an open statement would pin a read
     * snapshot and keep the WAL from being checkpointed. */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int consent_load_live(store *s, int64_t now_ms, consent_row_fn fn, void *ctx)
{
    return consent_list(s, NULL, NULL, now_ms, fn, ctx);
}

int consent_get(store *s, int64_t id, consent_row *out)
{
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_GET);
    if (st == NULL)
        return TRINE_EIO;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        int err = store_fail(s, rc);
        sqlite3_reset(st);
        return err;
    }
    consent_row_from_stmt(st, out);
    const char **ptrs[] = {&out->user,       &out->agent, &out->server,
                           &out->tool,       &out->mode,  &out->session,
                           &out->args_sha256};
    int err = store_keep_strings(s, ptrs, sizeof ptrs / sizeof ptrs[0]);
    sqlite3_reset(st);
    return err < 0 ? err : 1;
}

int consent_by_decision(store *s, int64_t decision_id, int64_t *id)
{
    sqlite3_stmt *st = store_stmt(s, STMT_CONSENT_BY_DECISION);
    if (st == NULL)
        return TRINE_EIO;
    return consent_first_id(s, st, sqlite3_bind_int64(st, 1, decision_id), id);
}
