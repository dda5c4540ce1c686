/*
 * writer.c - the audit writer: group commit, fail-closed replies, and the
 * consent operations that touch the store (see writer.h). Opening the log
 * and keeping it sane is in writer_store.c.
 */
#include "daemon/writer_int.h"

#include "daemon/checkpoint.h"
#include "daemon/consents.h"
#include "daemon/log.h"
#include "daemon/rpc.h"
#include "daemon/snapshot.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t writer_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends msg as a JSON string, with every byte that is not valid UTF-8
 * replaced by '?' (SQLite messages can carry file names). */
static void writer_json_msg(strbuf *out, const char *msg)
{
    size_t n = strlen(msg);
    if (utf8_check(msg, n) == n) {
        sb_json_str(out, msg, n);
        return;
    }
    char *copy = xstrdup(msg);
    if (copy == NULL) {
        sb_json_str(out, "?", 1);
        return;
    }
    size_t i = 0;
    while (i < n) {
        size_t bad = utf8_check(copy + i, n - i);
        if (bad == n - i)
            break;
        copy[i + bad] = '?';
        i += bad + 1;
    }
    sb_json_str(out, copy, n);
    free(copy);
}

/* Writes the result of a check that could not be audited. */
static void writer_unavailable(job *j, const char *msg)
{
    strbuf *o = &j->out;
    o->len = j->prefix_len;
    o->oom = false;
    sb_puts(o, "{\"decision\":\"deny\",\"reason\":\"audit_unavailable\","
               "\"policy_revision\":");
    const char *rev = job_col_text(j, JCOL_POLICY_REV);
    if (rev == NULL)
        rev = "";
    sb_json_str(o, rev, strlen(rev));
    sb_puts(o, ",\"reasons\":[{\"code\":\"audit_unavailable\",\"detail\":");
    writer_json_msg(o, msg);
    sb_puts(o, "}],\"matched\":[]}}\n");
}

/* Puts the n digits of an audit id in place of the placeholder in text,
 * the NUL-terminated audit copy of a result. Returns 0 or TRINE_EINVAL. */
static int writer_patch_id(char *text, const char *digits, size_t n)
{
    static const char key[] = ",\"audit_id\":" RPC_AUDIT_ID_PLACEHOLDER;
    size_t width = sizeof RPC_AUDIT_ID_PLACEHOLDER - 1;
    char *at = strstr(text, key);
    if (at == NULL)
        return TRINE_EINVAL;
    char *ph = at + sizeof key - 1 - width;
    memmove(ph + n, ph + width, strlen(ph + width) + 1);
    memcpy(ph, digits, n);
    return 0;
}

int writer_row(job *j, int64_t id, audit_row *row)
{
    strbuf *o = &j->out;
    size_t width = sizeof RPC_AUDIT_ID_PLACEHOLDER - 1;
    if (j->id_off <= j->prefix_len || j->id_off + width > o->len)
        return TRINE_EINVAL;
    char digits[FMT_I64_MAX];
    size_t n = fmt_i64(digits, id);
    size_t tail = j->id_off + width;
    memmove(o->data + j->id_off + n, o->data + tail, o->len - tail + 1);
    memcpy(o->data + j->id_off, digits, n);
    o->len -= width - n;
    j->id_off = 0;
    const char *detail = o->data + j->prefix_len;
    if (j->col[JCOL_DETAIL] != JOB_NO_COL) {
        char *copy = j->row.data + j->col[JCOL_DETAIL];
        if (writer_patch_id(copy, digits, n) != 0)
            return TRINE_EINVAL;
        detail = copy;
    }
    *row = (audit_row){
        .id = id,
        .ts_ms = j->now_ms,
        .policy_rev = job_col_text(j, JCOL_POLICY_REV),
        .server = job_col_text(j, JCOL_SERVER),
        .tool = job_col_text(j, JCOL_TOOL),
        .user = job_col_text(j, JCOL_USER),
        .agent = job_col_text(j, JCOL_AGENT),
        .chain = job_col_text(j, JCOL_CHAIN),
        .session = job_col_text(j, JCOL_SESSION),
        .decision = job_col_text(j, JCOL_DECISION),
        .reason = job_col_text(j, JCOL_REASON),
        .arguments = job_col_text(j, JCOL_ARGUMENTS),
        .detail = detail,
        .args_sha256 = job_col_text(j, JCOL_ARGS_SHA256),
        .token = job_col_text(j, JCOL_TOKEN),
    };
    return 0;
}

/* Appends and commits the rows of up to max checks in one transaction.
 * Returns 0, or a negative code with the reason in err. */
static int writer_commit_rows(writer *w, jobq *batch, char *err, size_t errlen)
{
    int rc = writer_ready(w, err, errlen);
    if (rc != 0)
        return rc;
    rc = audit_begin(w->st);
    if (rc != 0)
        goto fail;
    int64_t id = audit_next_id(w->st);
    for (job *j = batch->head; j != NULL; j = j->next, id++) {
        audit_row row;
        rc = writer_row(j, id, &row);
        if (rc != 0)
            goto fail;
        rc = audit_append(w->st, &row);
        if (rc != 0)
            goto fail;
        int64_t grant = j->claimed;
        if (grant >= 0) {
            rc = consent_mark_used(w->st, grant, j->now_ms);
            if (rc < 0)
                goto fail;
            if (rc == 0) {
                logline l;
                if (log_begin(&l, LOG_WARN, "consent_already_used")) {
                    log_int(&l, "consent_id", grant);
                    log_int(&l, "audit_id", id);
                    log_end(&l);
                }
            }
        }
    }
    rc = audit_commit(w->st);
    if (rc != 0)
        goto fail;
    /* writer_ready found the files in place before the transaction; they
     * must still be there once it is committed: a file deleted between
     * that check and the commit took these rows with it, so they are
     * answered as unwritten. A deletion after this check removes rows that
     * were in the log when their replies left, as any later one would. */
    rc = writer_still_there(w, err, errlen);
    if (rc != 0)
        return rc;
    w->last_id = audit_next_id(w->st) - 1;
    return 0;
fail:
    snprintf(err, errlen, "%s",
             rc == TRINE_ENOMEM ? "out of memory" : store_errmsg(w->st));
    if (store_at_limit(w->st)) {
        w->full_at = w->max_bytes_applied;
        snprintf(w->full_msg, sizeof w->full_msg, "%s", store_errmsg(w->st));
    }
    audit_rollback(w->st);
    /* Start from a fresh connection next time: whatever broke (a full
     * disk, a lock) is then seen anew. */
    store_close(w->st);
    w->st = NULL;
    return rc;
}

/* Takes out of batch the checks that a consent grant of a deleted or
 * replaced log may have allowed (evaluated before the consent cache was
 * emptied, within the same millisecond at the latest), and answers them
 * audit_unavailable. Their claims are not released: they name grants of
 * the old file, and ids are given out anew. */
static void writer_fence(writer *w, jobq *batch, jobq *fenced)
{
    if (w->fence_until_ms == 0 || writer_mono_ms() >= w->fence_until_ms) {
        w->fence_until_ms = 0;
        return;
    }
    trine_policy *p = snapshot_acquire(w->ctx->snap);
    jobq keep = {0};
    for (job *j = jobq_pop(batch); j != NULL; j = jobq_pop(batch)) {
        if (j->now_ms > w->fence_wall_ms || !writer_may_rest_on_grant(p, j)) {
            jobq_push(&keep, j);
            continue;
        }
        writer_unavailable(j, "audit log replaced while this check was"
                              " evaluated");
        if (j->out.oom) {
            sb_free(&j->out);
            rpc_write_error(&j->out, NULL, RPC_INTERNAL_ERROR, "out of memory");
        }
        j->kind = JOB_REPLY;
        jobq_push(fenced, j);
    }
    trine_policy_release(p);
    *batch = keep;
}

/* Audits one batch of checks and sends their replies. */
static void writer_checks(writer *w, jobq *batch)
{
    char err[512] = "";
    jobq fenced = {0};
    writer_fence(w, batch, &fenced);
    w->failed_rows += fenced.len;
    if (batch->head == NULL) {
        doneq_push(&w->ctx->done, &fenced);
        return;
    }
    int64_t t0 = writer_mono_us();
    int rc = writer_commit_rows(w, batch, err, sizeof err);
    int64_t t1 = writer_mono_us();
    w->commit_us += t1 - t0;
    w->last_commit_ms = t1 / 1000;
    int64_t avg = atomic_load(&w->batch_us);
    atomic_store(&w->batch_us, avg + (t1 - t0 - avg) / 4);
    if (rc == 0) {
        w->commits++;
        w->rows += batch->len;
    } else {
        w->failed_rows += batch->len;
    }
    daemon_ctx *ctx = w->ctx;
    for (job *j = batch->head; j != NULL; j = j->next) {
        int64_t grant = j->claimed;
        if (rc == 0) {
            sb_puts(&j->out, "}\n");
            if (grant >= 0)
                consents_consume(ctx->grants, grant);
        } else {
            writer_unavailable(j, err);
            if (grant >= 0)
                consents_release(ctx->grants, grant);
        }
        if (j->out.oom) {
            sb_free(&j->out);
            rpc_write_error(&j->out, NULL, RPC_INTERNAL_ERROR, "out of memory");
        }
        j->kind = JOB_REPLY;
    }
    logline l;
    if (rc != 0 && !w->failing) {
        w->failing = true;
        if (log_begin(&l, LOG_ERROR, "audit_unavailable")) {
            log_str(&l, "audit", ctx->cfg->audit);
            log_str(&l, "error", err);
            log_end(&l);
        }
    } else if (rc == 0 && w->failing) {
        w->failing = false;
        if (log_begin(&l, LOG_INFO, "audit_recovered")) {
            log_str(&l, "audit", ctx->cfg->audit);
            log_end(&l);
        }
    }
    jobq_append(batch, &fenced);
    doneq_push(&ctx->done, batch);
    if (rc == 0 && w->ckpt != NULL)
        checkpoint_after_commit(w->ckpt, w->st);
    /* Once the replies are out: the old files go, and the next batch
     * opens the log at the path. */
    if (w->moved)
        writer_drop_old(w, store_errmsg(w->st));
}

/* Fails a consent operation with -32603 naming the store's trouble. */
static void writer_op_unavailable(writer *w, job *j, const char *why)
{
    char msg[600];
    snprintf(msg, sizeof msg, "audit log unavailable: %s", why);
    j->out.len = j->head_len;
    rpc_write_error_tail(&j->out, RPC_INTERNAL_ERROR, msg);
    writer_after_failure(w);
}

static void writer_op_invalid(job *j, const char *msg)
{
    j->out.len = j->head_len;
    rpc_write_error_tail(&j->out, RPC_INVALID_PARAMS, msg);
}

/* Copies of the decision fields a grant binds to (audit_get's strings are
 * only valid until the next store call). */
typedef struct grant_src {
    char *user;
    char *agent;
    char *server;
    char *tool;
    char *session;
    char *args_sha256;
    char *mode;
} grant_src;

static void grant_src_free(grant_src *g)
{
    free(g->user);
    free(g->agent);
    free(g->server);
    free(g->tool);
    free(g->session);
    free(g->args_sha256);
    free(g->mode);
}

/* Reads the consent mode out of a stored result: detail.consent.mode. */
static char *writer_detail_mode(const char *detail)
{
    json_t *root = json_loads(detail, 0, NULL);
    const json_t *c = json_object_get(root, "consent");
    const json_t *m = json_object_get(c, "mode");
    char *mode = json_is_string(m) ? xstrdup(json_string_value(m)) : NULL;
    json_decref(root);
    return mode;
}

/* Reads decision audit_id and checks that a grant can be made from it,
 * filling g with copies of what the grant binds to. Returns 0, or an RPC
 * error code with the message in msg. */
static int writer_grant_source(writer *w, int64_t audit_id, grant_src *g,
                               char *msg, size_t msglen)
{
    char err[512];
    if (writer_ready(w, err, sizeof err) != 0) {
        snprintf(msg, msglen, "audit log unavailable: %s", err);
        return RPC_INTERNAL_ERROR;
    }
    /* One approval makes one grant, ever: granting again from the same
     * decision would turn a single-use `always` consent into several, or
     * bring back a grant the user revoked. The store, not the cache of live
     * grants, knows every grant ever made. */
    int64_t existing = -1;
    int found = consent_by_decision(w->st, audit_id, &existing);
    if (found < 0) {
        snprintf(msg, msglen, "audit log unavailable: %s", store_errmsg(w->st));
        return RPC_INTERNAL_ERROR;
    }
    if (found > 0) {
        snprintf(msg, msglen,
                 "params.audit_id: decision %" PRId64
                 " was already granted (consent %" PRId64
                 "); one decision makes one grant: check again for a new"
                 " consent_required decision",
                 audit_id, existing);
        return RPC_INVALID_PARAMS;
    }
    audit_row row;
    int rc = audit_get(w->st, audit_id, &row);
    if (rc < 0) {
        snprintf(msg, msglen, "audit log unavailable: %s", store_errmsg(w->st));
        return RPC_INTERNAL_ERROR;
    }
    if (rc == 0) {
        snprintf(msg, msglen, "params.audit_id: no decision with id %" PRId64,
                 audit_id);
        return RPC_INVALID_PARAMS;
    }
    if (audit_id <= w->ambiguous_max_id &&
        writer_mono_ms() < w->ambiguous_until_ms) {
        snprintf(msg, msglen,
                 "params.audit_id: decision %" PRId64
                 " may be a decision of the audit log that was replaced"
                 " (its ids ran to %" PRId64 "); check again",
                 audit_id, w->ambiguous_max_id);
        return RPC_INVALID_PARAMS;
    }
    if (strcmp(row.decision, "consent_required") != 0) {
        snprintf(msg, msglen,
                 "params.audit_id: decision %" PRId64
                 " is %s, not consent_required",
                 audit_id, row.decision);
        return RPC_INVALID_PARAMS;
    }
    /* row's strings live until the next store call: copy them. */
    bool oom = false;
    const char *const from[] = {row.user, row.agent,   row.server,
                                row.tool, row.session, row.args_sha256};
    char **to[] = {&g->user, &g->agent,   &g->server,
                   &g->tool, &g->session, &g->args_sha256};
    for (size_t i = 0; i < 6; i++) {
        if (from[i] != NULL) {
            *to[i] = xstrdup(from[i]);
            oom |= *to[i] == NULL;
        }
    }
    g->mode = writer_detail_mode(row.detail);
    if (oom) {
        snprintf(msg, msglen, "out of memory");
        return RPC_INTERNAL_ERROR;
    }
    if (g->mode == NULL || g->user == NULL || g->agent == NULL ||
        g->server == NULL || g->tool == NULL) {
        snprintf(msg, msglen,
                 "params.audit_id: decision %" PRId64
                 " names no consent mode, user or agent",
                 audit_id);
        return RPC_INVALID_PARAMS;
    }
    if (strcmp(g->mode, "session") == 0 &&
        (g->session == NULL || g->session[0] == '\0')) {
        snprintf(msg, msglen,
                 "params.audit_id: decision %" PRId64
                 " carries no session to bind a session grant to",
                 audit_id);
        return RPC_INVALID_PARAMS;
    }
    return 0;
}

/* When a grant made now expires (-1: never): for `once for D`, after the
 * tool's duration as the policy says it now; ttl seconds from now when
 * given and sooner. A ttl can shorten what the policy author allowed, never
 * lengthen it: any peer of the socket may send one. */
static int64_t writer_grant_expiry(writer *w, const grant_src *g, int64_t ttl,
                                   int64_t now)
{
    int64_t expires = ttl > 0 ? now + ttl * 1000 : -1;
    if (strcmp(g->mode, "once") != 0)
        return expires;
    trine_policy *p = snapshot_acquire(w->ctx->snap);
    trine_consent_mode mode;
    int64_t dur;
    if (trine_policy_tool_consent(p, g->server, g->tool, &mode, &dur) == 1 &&
        mode == TRINE_CONSENT_ONCE && dur > 0 &&
        (expires < 0 || now + dur * 1000 < expires))
        expires = now + dur * 1000;
    trine_policy_release(p);
    return expires;
}

/* consent.grant {audit_id, ttl?}: binds a grant to the decision's user,
 * agent, server, tool, session and arguments, in the store and then in the
 * cache the checks read. */
static void writer_grant(writer *w, job *j)
{
    int64_t audit_id =
        (int64_t)json_integer_value(json_object_get(j->params, "audit_id"));
    const json_t *ttlv = json_object_get(j->params, "ttl");
    int64_t ttl = ttlv ? (int64_t)json_integer_value(ttlv) : -1;
    char msg[600];
    grant_src g = {0};
    int code = writer_grant_source(w, audit_id, &g, msg, sizeof msg);
    if (code != 0) {
        rpc_write_error_tail(&j->out, code, msg);
        if (code == RPC_INTERNAL_ERROR && (w->st != NULL || w->moved))
            writer_after_failure(w);
        grant_src_free(&g);
        return;
    }
    int64_t now = log_now_ms();
    bool session_mode = strcmp(g.mode, "session") == 0;
    bool always_mode = strcmp(g.mode, "always") == 0;
    consent_row c = {
        .user = g.user,
        .agent = g.agent,
        .server = g.server,
        .tool = g.tool,
        .mode = g.mode,
        .session = session_mode ? g.session : NULL,
        .args_sha256 = always_mode ? g.args_sha256 : NULL,
        .granted_ms = now,
        .expires_ms = writer_grant_expiry(w, &g, ttl, now),
        .revoked_ms = -1,
        .used_ms = -1,
        .decision_id = audit_id,
    };
    int rc = consent_insert(w->st, &c);
    char err[512];
    if (rc == 0 && writer_still_there(w, err, sizeof err) != 0) {
        /* The grant went into a file no one reads: it was not made. */
        writer_op_unavailable(w, j, err);
    } else if (rc == TRINE_EINVAL) {
        snprintf(msg, sizeof msg,
                 "params.audit_id: decision %" PRId64 " cannot be granted: %s",
                 audit_id, store_errmsg(w->st));
        writer_op_invalid(j, msg);
    } else if (rc != 0) {
        writer_op_unavailable(w, j, store_errmsg(w->st));
    } else if (consents_add(w->ctx->grants, &c) != 0) {
        /* A grant the checks cannot see must not be reported as made. */
        int64_t n;
        consent_revoke(w->st, c.id, NULL, NULL, NULL, NULL, now, &n);
        rpc_write_error_tail(&j->out, RPC_INTERNAL_ERROR, "out of memory");
    } else {
        sb_printf(&j->out, "\"result\":{\"consent_id\":%" PRId64 "}}\n", c.id);
        logline l;
        if (log_begin(&l, LOG_INFO, "consent_granted")) {
            log_int(&l, "consent_id", c.id);
            log_int(&l, "audit_id", audit_id);
            log_str(&l, "mode", g.mode);
            log_end(&l);
        }
    }
    grant_src_free(&g);
}

static const char *writer_param(const job *j, const char *name)
{
    return json_string_value(json_object_get(j->params, name));
}

/* consent.revoke {consent_id} or {user, agent?, server?, tool?}. The cache
 * forgets the grants first, so no check can use them while the store is
 * updated. */
static void writer_revoke(writer *w, job *j)
{
    const json_t *idv = json_object_get(j->params, "consent_id");
    int64_t id = idv ? (int64_t)json_integer_value(idv) : -1;
    const char *user = writer_param(j, "user");
    const char *agent = writer_param(j, "agent");
    const char *server = writer_param(j, "server");
    const char *tool = writer_param(j, "tool");
    consents_revoke(w->ctx->grants, id, user, agent, server, tool);
    char err[512];
    if (writer_ready(w, err, sizeof err) != 0) {
        writer_op_unavailable(w, j, err);
        return;
    }
    int64_t count = 0;
    int rc = consent_revoke(w->st, id, user, agent, server, tool, log_now_ms(),
                            &count);
    if (rc != 0) {
        writer_op_unavailable(w, j, store_errmsg(w->st));
        return;
    }
    if (writer_still_there(w, err, sizeof err) != 0) {
        writer_op_unavailable(w, j, err);
        return;
    }
    sb_printf(&j->out, "\"result\":{\"revoked\":%" PRId64 "}}\n", count);
    logline l;
    if (log_begin(&l, LOG_INFO, "consent_revoked")) {
        log_int(&l, "count", count);
        log_end(&l);
    }
}

static void writer_op(writer *w, job *j)
{
    j->out.len = j->head_len;
    j->out.oom = false;
    if (j->kind == JOB_GRANT)
        writer_grant(w, j);
    else
        writer_revoke(w, j);
    if (j->out.oom) {
        sb_free(&j->out);
        rpc_write_error(&j->out, NULL, RPC_INTERNAL_ERROR, "out of memory");
    }
    j->kind = JOB_REPLY;
    jobq one = {0};
    jobq_push(&one, j);
    doneq_push(&w->ctx->done, &one);
}

/* Waits (the lock held) for the checks other workers are still
 * evaluating, up to the commit interval, so one transaction takes a whole
 * burst. */
static void writer_gather(writer *w)
{
    const trined_config *cfg = w->ctx->cfg;
    if (cfg->commit_interval_ms <= 0)
        return;
    int64_t now = writer_mono_ms();
    /* Under load the rows that arrive during one commit make the next
     * batch by themselves, and waiting would only leave the disk idle: the
     * window is for the first rows after a quiet spell. */
    if (now - w->last_commit_ms < cfg->commit_interval_ms)
        return;
    int64_t deadline = now + cfg->commit_interval_ms;
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000};
    w->gathering = true;
    while (w->pending_checks < (size_t)cfg->commit_max_rows &&
           atomic_load(&w->ctx->evaluating) > 0) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
            break;
    }
    w->gathering = false;
}

/* Writes one batch taken from the queue: its checks in transactions of at
 * most --commit-max-rows, then its consent operations. */
static void writer_batch(writer *w, jobq *all)
{
    size_t max_rows = (size_t)w->ctx->cfg->commit_max_rows;
    jobq checks = {0};
    jobq ops = {0};
    for (job *j = jobq_pop(all); j != NULL; j = jobq_pop(all)) {
        jobq_push(j->kind == JOB_CHECK ? &checks : &ops, j);
        if (checks.len == max_rows) {
            writer_checks(w, &checks);
            memset(&checks, 0, sizeof checks);
        }
    }
    if (checks.head != NULL)
        writer_checks(w, &checks);
    for (job *j = jobq_pop(&ops); j != NULL; j = jobq_pop(&ops))
        writer_op(w, j);
}

int writer_start(daemon_ctx *ctx, writer **out, char *err, size_t errlen)
{
    const trined_config *cfg = ctx->cfg;
    writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TRINE_ENOMEM;
    w->ctx = ctx;
    w->pin_fd = -1;
    atomic_init(&w->max_bytes, (int64_t)cfg->audit_max_size);
    atomic_init(&w->batch_us, 0);
    w->opts.sync_normal = cfg->audit_sync_normal;
    w->opts.busy_timeout_ms =
        cfg->audit_busy_timeout_ms > 0 ? cfg->audit_busy_timeout_ms : -1;
    /* The checkpoint thread is a convenience: without it, SQLite
     * checkpoints inside commits as usual. */
    w->opts.manual_checkpoint =
        checkpoint_start(cfg->audit, cfg->audit_sync_normal, CHECKPOINT_PAGES,
                         &w->ckpt) == 0;
    int rc = writer_open(w, err, errlen);
    if (rc == 0) {
        rc = consent_load_live(w->st, log_now_ms(), consents_load_row,
                               ctx->grants);
        if (rc != 0)
            snprintf(
                err, errlen, "%s: cannot load consent grants: %s", cfg->audit,
                rc == TRINE_ENOMEM ? "out of memory" : store_errmsg(w->st));
    }
    if (rc != 0) {
        checkpoint_stop(w->ckpt);
        store_close(w->st);
        if (w->pin_fd >= 0)
            close(w->pin_fd);
        free(w);
        return rc;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    if (ctx->snap != NULL)
        snapshot_set_hook(ctx->snap, writer_reload_settings, w);
    *out = w;
    return 0;
}

void writer_submit(writer *w, jobq *list, size_t finished)
{
    pthread_mutex_lock(&w->mu);
    for (job *j = list->head; j != NULL; j = j->next) {
        if (j->kind == JOB_CHECK)
            w->pending_checks++;
    }
    jobq_append(&w->pending, list);
    atomic_fetch_sub(&w->ctx->evaluating, (long)finished);
    if (w->busy) {
        /* Another worker is writing: it takes these with its next batch.
         * Wake it if it waits for them. */
        if (w->gathering)
            pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    /* This worker writes, for as long as rows keep coming: the store is
     * one connection, used by one thread at a time. */
    w->busy = true;
    while (w->pending.head != NULL) {
        writer_gather(w);
        jobq all = w->pending;
        memset(&w->pending, 0, sizeof w->pending);
        w->pending_checks = 0;
        pthread_mutex_unlock(&w->mu);
        writer_batch(w, &all);
        pthread_mutex_lock(&w->mu);
    }
    w->busy = false;
    pthread_mutex_unlock(&w->mu);
}

bool writer_quick(writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool idle = !w->busy && w->pending.head == NULL && !w->failing;
    pthread_mutex_unlock(&w->mu);
    return idle && atomic_load(&w->batch_us) < WRITER_QUICK_US;
}

void writer_stop(writer *w)
{
    if (w == NULL)
        return;
    logline l;
    if (log_begin(&l, LOG_INFO, "audit_totals")) {
        log_uint(&l, "commits", w->commits);
        log_uint(&l, "rows", w->rows);
        log_uint(&l, "failed_rows", w->failed_rows);
        log_int(&l, "commit_ms", w->commit_us / 1000);
        log_end(&l);
    }
    /* The reload thread may still run: it must not call into a freed
     * writer. This waits for a call in progress. */
    if (w->ctx->snap != NULL)
        snapshot_set_hook(w->ctx->snap, NULL, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    /* The checkpoint connection closes first: the writer's, the last one,
     * then checkpoints what is left and removes the WAL. */
    checkpoint_stop(w->ckpt);
    store_close(w->st);
    if (w->pin_fd >= 0)
        close(w->pin_fd);
    free(w);
}
