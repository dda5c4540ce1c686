/*
 * rpc.c - JSON-RPC 2.0 requests: validation, replies, and the methods of
 * DESIGN §3 as answered on a worker thread (see rpc.h).
 */
#include "daemon/rpc.h"

#include "daemon/consents.h"
#include "daemon/log.h"
#include "daemon/rpcjson.h"
#include "daemon/snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest method name quoted back in a -32601 message. */
#define RPC_METHOD_ECHO_MAX 64

int rpc_prescan(const char *line, size_t len, char *err, size_t errlen)
{
    size_t bad = utf8_check(line, len);
    if (bad != len) {
        snprintf(err, errlen, "invalid UTF-8 at byte %zu", bad);
        return RPC_PARSE_ERROR;
    }
    /* Count nesting outside strings; a malformed text that this count
     * misreads is rejected by the parser anyway. */
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            depth++;
            if (depth > RPC_MAX_DEPTH) {
                snprintf(err, errlen, "nesting deeper than %d levels",
                         RPC_MAX_DEPTH);
                return RPC_PARSE_ERROR;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

static int rpc_validate(rpc_request *req, char *err, size_t errlen);

/* jansson quotes the text near an error byte for byte, and may cut a
 * character in two: replaces every byte of msg that is not valid UTF-8 with
 * '?', so the error reply stays valid JSON. */
static void rpc_fix_utf8(char *msg)
{
    size_t n = strlen(msg);
    size_t i = 0;
    while (i < n) {
        size_t ok = utf8_check(msg + i, n - i);
        if (ok == n - i)
            break;
        msg[i + ok] = '?';
        i += ok + 1;
    }
}

int rpc_parse(const char *line, size_t len, rpc_request *req, char *err,
              size_t errlen)
{
    memset(req, 0, sizeof *req);
    /* The fast reader takes the usual request (which would pass the
     * prescan: it checks the same); jansson reads whatever it declines,
     * after the prescan, and names the error when there is one. */
    req->root = rpc_json_read(line, len);
    if (req->root != NULL)
        return rpc_validate(req, err, errlen);
    int rc = rpc_prescan(line, len, err, errlen);
    if (rc != 0)
        return rc;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
        k++;
    if (k == len) {
        snprintf(err, errlen, "empty line: expected a JSON-RPC request");
        return RPC_PARSE_ERROR;
    }
    json_error_t je;
    req->root =
        json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (req->root == NULL) {
        snprintf(err, errlen, "invalid JSON at byte %d: %s", je.position,
                 je.text);
        rpc_fix_utf8(err);
        return RPC_PARSE_ERROR;
    }
    return rpc_validate(req, err, errlen);
}

/* Checks the parsed request in req->root against JSON-RPC 2.0 and fills
 * req. Returns 0, or an error code with a message in err. */
static int rpc_validate(rpc_request *req, char *err, size_t errlen)
{
    if (!json_is_object(req->root)) {
        snprintf(err, errlen, "request must be a JSON object");
        return RPC_INVALID_REQUEST;
    }
    const json_t *id = json_object_get(req->root, "id");
    if (id != NULL && !json_is_string(id) && !json_is_number(id) &&
        !json_is_null(id)) {
        snprintf(err, errlen, "id must be a string, a number or null");
        return RPC_INVALID_REQUEST;
    }
    req->id = id;
    const json_t *v = json_object_get(req->root, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        snprintf(err, errlen, "jsonrpc must be \"2.0\"");
        return RPC_INVALID_REQUEST;
    }
    const json_t *m = json_object_get(req->root, "method");
    if (!json_is_string(m)) {
        snprintf(err, errlen, "method must be a string");
        return RPC_INVALID_REQUEST;
    }
    req->method = json_string_value(m);
    const json_t *p = json_object_get(req->root, "params");
    if (p != NULL && !json_is_object(p)) {
        snprintf(err, errlen, "params must be an object");
        return RPC_INVALID_REQUEST;
    }
    req->params = p;
    /* A request without an id is a JSON-RPC notification, which gets no
     * reply; trine never drops a request silently, so it is refused. */
    if (id == NULL) {
        snprintf(err, errlen, "id is required");
        return RPC_INVALID_REQUEST;
    }
    return 0;
}

void rpc_request_free(rpc_request *req)
{
    json_decref(req->root);
    memset(req, 0, sizeof *req);
}

/* Appends any JSON value compactly. */
static void rpc_put_json(strbuf *out, const json_t *v)
{
    size_t avail = out->cap > out->len ? out->cap - out->len - 1 : 0;
    size_t need = json_dumpb(v, avail ? out->data + out->len : NULL, avail,
                             JSON_COMPACT | JSON_ENCODE_ANY);
    if (need == 0) {
        out->oom = true;
        return;
    }
    if (need > avail) {
        if (!sb_reserve(out, need))
            return;
        need = json_dumpb(v, out->data + out->len, need,
                          JSON_COMPACT | JSON_ENCODE_ANY);
        if (need == 0) {
            out->oom = true;
            return;
        }
    }
    out->len += need;
    out->data[out->len] = '\0';
}

void rpc_write_head(strbuf *out, const json_t *id)
{
    sb_puts(out, "{\"jsonrpc\":\"2.0\",\"id\":");
    if (id == NULL || json_is_null(id)) {
        sb_puts(out, "null");
    } else if (json_is_string(id)) {
        sb_json_str(out, json_string_value(id), json_string_length(id));
    } else if (json_is_integer(id)) {
        sb_printf(out, "%" PRId64, (int64_t)json_integer_value(id));
    } else {
        rpc_put_json(out, id);
    }
    sb_putc(out, ',');
}

void rpc_write_error_tail(strbuf *out, int code, const char *msg)
{
    sb_printf(out, "\"error\":{\"code\":%d,\"message\":", code);
    sb_json_str(out, msg, strlen(msg));
    sb_puts(out, "}}\n");
}

void rpc_write_error(strbuf *out, const json_t *id, int code, const char *msg)
{
    rpc_write_head(out, id);
    rpc_write_error_tail(out, code, msg);
}

/* Completes a reply whose head is written with a result value. */
static void rpc_write_result(strbuf *out, const json_t *result)
{
    sb_puts(out, "\"result\":");
    rpc_put_json(out, result);
    sb_puts(out, "}\n");
}

/* Replaces whatever follows the head with an error. */
static void rpc_fail(job *j, int code, const char *msg)
{
    j->out.len = j->head_len;
    j->out.oom = false;
    rpc_write_error_tail(&j->out, code, msg);
    j->kind = JOB_REPLY;
}

static void rpc_fail_code(job *j, int err)
{
    if (err == TRINE_ENOMEM)
        rpc_fail(j, RPC_INTERNAL_ERROR, "out of memory");
    else
        rpc_fail(j, RPC_INTERNAL_ERROR, trine_strerror(err));
}

/* Checks that params.name is absent or a string; sets *out (NULL when
 * absent). Returns false after failing j. */
static bool rpc_opt_string(job *j, const json_t *params, const char *name,
                           const char **out)
{
    *out = NULL;
    const json_t *v = params ? json_object_get(params, name) : NULL;
    if (v == NULL)
        return true;
    if (!json_is_string(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "params.%s must be a string", name);
        rpc_fail(j, RPC_INVALID_PARAMS, msg);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* Reads params.name as a positive integer into *out (-1 when absent).
 * Returns false after failing j when it is present and not one, or absent
 * and required. */
static bool rpc_positive(job *j, const json_t *params, const char *name,
                         bool required, int64_t *out)
{
    *out = -1;
    const json_t *v = params ? json_object_get(params, name) : NULL;
    if (v == NULL && !required)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "params.%s must be a positive integer", name);
        rpc_fail(j, RPC_INVALID_PARAMS, msg);
        return false;
    }
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* Writes the check's result after the reply's prefix with a placeholder
 * audit id, and records where the id's digits are, so the writer (one
 * thread for every connection) only puts the real id in. Returns 0, or
 * TRINE_ENOMEM when the result cannot be written. */
static int rpc_render_result(job *j, const trine_decision *d)
{
    static const char key[] = ",\"audit_id\":" RPC_AUDIT_ID_PLACEHOLDER;
    strbuf *o = &j->out;
    if (!sb_reserve(o, 1024))
        return TRINE_ENOMEM;
    size_t cap = o->cap - o->len;
    size_t need = trine_decision_write(d, INT64_MAX, o->data + o->len, cap);
    if (need >= cap) {
        if (!sb_reserve(o, need + 1))
            return TRINE_ENOMEM;
        cap = o->cap - o->len;
        need = trine_decision_write(d, INT64_MAX, o->data + o->len, cap);
        if (need >= cap)
            return TRINE_ENOMEM;
    }
    /* Inside a JSON string every '"' is escaped, so ,"audit_id": can only
     * be the key itself; the first one is the result's own, and the
     * library always writes it when given an id. */
    const char *at = strstr(o->data + o->len, key);
    if (at == NULL ||
        (at[sizeof key - 1] != ',' && at[sizeof key - 1] != '}')) {
        o->data[o->len] = '\0';
        return TRINE_EINVAL;
    }
    j->id_off = (size_t)(at - o->data) + sizeof key - 1 -
                (sizeof RPC_AUDIT_ID_PLACEHOLDER - 1);
    o->len += need;
    return 0;
}

/* Copies the audit row's text columns out of d into j (see job.h), so the
 * writer needs neither the decision nor the policy. Returns 0 or
 * TRINE_ENOMEM. */
static int rpc_copy_row(job *j, const trine_policy *p, const trine_decision *d)
{
    const char *v[JCOL_COUNT] = {
        [JCOL_POLICY_REV] = trine_policy_revision(p),
        [JCOL_SERVER] = trine_decision_server(d),
        [JCOL_TOOL] = trine_decision_tool(d),
        [JCOL_USER] = trine_decision_user(d),
        [JCOL_AGENT] = trine_decision_agent(d),
        [JCOL_CHAIN] = trine_decision_chain(d),
        [JCOL_SESSION] = trine_decision_session(d),
        [JCOL_DECISION] = trine_decision_kind(d),
        [JCOL_REASON] = trine_decision_reason(d),
        [JCOL_ARGUMENTS] = trine_decision_arguments(d),
        [JCOL_ARGS_SHA256] = trine_decision_args_hash(d),
    };
    /* The table requires a server and a tool; a check that names neither
     * still gets its row. */
    if (v[JCOL_SERVER] == NULL)
        v[JCOL_SERVER] = "";
    if (v[JCOL_TOOL] == NULL)
        v[JCOL_TOOL] = "";
    strbuf *r = &j->row;
    sb_reset(r);
    for (int k = 0; k < JCOL_COUNT; k++) {
        if (v[k] == NULL) {
            j->col[k] = JOB_NO_COL;
            continue;
        }
        j->col[k] = r->len;
        /* The NUL is copied too: each column is a C string in place. */
        sb_putn(r, v[k], strlen(v[k]) + 1);
    }
    return r->oom ? TRINE_ENOMEM : 0;
}

/* check: evaluates on the current snapshot and hands the row and the
 * reply (with a placeholder audit id) to the audit writer, which puts the
 * id in once the row is committed. The decision, the policy reference and
 * the parsed request are all dropped here, on the thread that made them. */
static void rpc_check(daemon_ctx *ctx, job *j, const json_t *params)
{
    if (params == NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS, "params is required");
        return;
    }
    if (json_object_get(params, "token") == NULL &&
        json_object_get(params, "bearer") != NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS, RPC_BEARER_MSG);
        return;
    }
    trine_policy *p = snapshot_acquire(ctx->snap);
    trine_check_opts opts = {.now_ms = log_now_ms(),
                             .consent = consents_lookup,
                             .consent_ctx = ctx->grants};
    trine_decision *d = NULL;
    char err[512] = "";
    int rc = trine_check(p, params, &opts, &d, err, sizeof err);
    if (rc != 0) {
        trine_policy_release(p);
        if (rc == TRINE_EREQUEST)
            rpc_fail(j, RPC_INVALID_PARAMS,
                     err[0] ? err : "params are invalid");
        else
            rpc_fail_code(j, rc);
        return;
    }
    int64_t grant = trine_decision_consent_grant(d);
    bool claimed =
        grant >= 0 && trine_decision_consent_mode(d) == TRINE_CONSENT_ALWAYS;
    sb_puts(&j->out, "\"result\":");
    j->prefix_len = j->out.len;
    rc = rpc_render_result(j, d);
    if (rc == 0)
        rc = rpc_copy_row(j, p, d);
    trine_decision_free(d);
    trine_policy_release(p);
    if (rc != 0 || j->out.oom) {
        /* Nothing was decided as far as anyone can see: no row, no
         * result. A single-use grant it claimed stays usable. */
        if (claimed)
            consents_release(ctx->grants, grant);
        j->id_off = 0;
        j->prefix_len = 0;
        rpc_fail_code(j, rc != 0 ? rc : TRINE_ENOMEM);
        return;
    }
    j->kind = JOB_CHECK;
    j->now_ms = opts.now_ms;
    j->claimed = claimed ? grant : -1;
}

static void rpc_policy_status(daemon_ctx *ctx, job *j)
{
    trine_policy *p = snapshot_acquire(ctx->snap);
    json_t *st = trine_policy_status(p);
    trine_policy_release(p);
    if (st == NULL) {
        rpc_fail_code(j, TRINE_ENOMEM);
        return;
    }
    rpc_write_result(&j->out, st);
    json_decref(st);
}

static void rpc_policy_tools(daemon_ctx *ctx, job *j, const json_t *params)
{
    const json_t *server = params ? json_object_get(params, "server") : NULL;
    if (!json_is_string(server)) {
        rpc_fail(j, RPC_INVALID_PARAMS, "params.server must be a string");
        return;
    }
    trine_policy *p = snapshot_acquire(ctx->snap);
    json_t *tools = trine_policy_tools(p, json_string_value(server));
    trine_policy_release(p);
    if (tools == NULL) {
        rpc_fail_code(j, TRINE_ENOMEM);
        return;
    }
    rpc_write_result(&j->out, tools);
    json_decref(tools);
}

static void rpc_consent_list(daemon_ctx *ctx, job *j, const json_t *params)
{
    const char *user;
    const char *agent;
    if (!rpc_opt_string(j, params, "user", &user) ||
        !rpc_opt_string(j, params, "agent", &agent))
        return;
    json_t *list = consents_list(ctx->grants, user, agent, log_now_ms());
    if (list == NULL) {
        rpc_fail_code(j, TRINE_ENOMEM);
        return;
    }
    rpc_write_result(&j->out, list);
    json_decref(list);
}

/* consent.grant: the parameters are checked here; the store work (reading
 * the decision, inserting the grant) is the writer's. */
static bool rpc_consent_grant(job *j, const json_t *params)
{
    int64_t audit_id;
    int64_t ttl;
    if (!rpc_positive(j, params, "audit_id", true, &audit_id) ||
        !rpc_positive(j, params, "ttl", false, &ttl))
        return false;
    /* A century is more than any grant needs, and keeps the expiry time
     * far from overflow. */
    if (ttl > (int64_t)100 * 366 * 86400) {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params.ttl must be at most 3162240000 seconds");
        return false;
    }
    j->kind = JOB_GRANT;
    return true;
}

static bool rpc_consent_revoke(job *j, const json_t *params)
{
    int64_t id;
    const char *user;
    const char *agent;
    const char *server;
    const char *tool;
    if (!rpc_positive(j, params, "consent_id", false, &id) ||
        !rpc_opt_string(j, params, "user", &user) ||
        !rpc_opt_string(j, params, "agent", &agent) ||
        !rpc_opt_string(j, params, "server", &server) ||
        !rpc_opt_string(j, params, "tool", &tool))
        return false;
    if (id > 0 && user != NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params: give consent_id or user, not both");
        return false;
    }
    /* agent, server and tool narrow a revocation by user. Beside a
     * consent_id they would be ignored, and a caller who meant them as a
     * condition would revoke a grant it did not mean to. */
    if (id > 0 && (agent != NULL || server != NULL || tool != NULL)) {
        const char *name = "tool";
        if (agent != NULL)
            name = "agent";
        else if (server != NULL)
            name = "server";
        char msg[96];
        snprintf(msg, sizeof msg,
                 "params.%s narrows params.user, not params.consent_id", name);
        rpc_fail(j, RPC_INVALID_PARAMS, msg);
        return false;
    }
    if (id < 0 && user == NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params.consent_id or params.user is required");
        return false;
    }
    if (user != NULL && user[0] == '\0') {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params.user must be a non-empty string");
        return false;
    }
    j->kind = JOB_REVOKE;
    return true;
}

void rpc_handle(daemon_ctx *ctx, job *j)
{
    rpc_request req;
    char err[512];
    sb_reset(&j->out);
    j->kind = JOB_REPLY;
    int rc = rpc_parse(j->in.data ? j->in.data : "", j->in.len, &req, err,
                       sizeof err);
    rpc_write_head(&j->out, req.id);
    j->head_len = j->out.len;
    if (rc != 0) {
        rpc_write_error_tail(&j->out, rc, err);
        rpc_request_free(&req);
        return;
    }
    const char *m = req.method;
    const json_t *params = req.params;
    if (strcmp(m, "check") == 0) {
        rpc_check(ctx, j, params);
    } else if (strcmp(m, "ping") == 0) {
        sb_puts(&j->out, "\"result\":{\"pong\":true}}\n");
    } else if (strcmp(m, "policy.status") == 0) {
        rpc_policy_status(ctx, j);
    } else if (strcmp(m, "policy.tools") == 0) {
        rpc_policy_tools(ctx, j, params);
    } else if (strcmp(m, "consent.list") == 0) {
        rpc_consent_list(ctx, j, params);
    } else if (strcmp(m, "consent.grant") == 0 ||
               strcmp(m, "consent.revoke") == 0) {
        bool ok = m[8] == 'g' ? rpc_consent_grant(j, params)
                              : rpc_consent_revoke(j, params);
        if (ok) {
            /* The writer reads the parameters from the request. */
            j->root = req.root;
            j->params = params;
            req.root = NULL;
        }
    } else {
        char msg[128];
        size_t n = strlen(m);
        if (n > RPC_METHOD_ECHO_MAX) {
            /* Cut on a character boundary. */
            n = RPC_METHOD_ECHO_MAX;
            while (n > 0 && ((unsigned char)m[n] & 0xc0) == 0x80)
                n--;
        }
        snprintf(msg, sizeof msg, "unknown method \"%.*s%s\"", (int)n, m,
                 n < strlen(m) ? "..." : "");
        rpc_fail(j, RPC_METHOD_NOT_FOUND, msg);
    }
    if (j->out.oom && j->kind == JOB_REPLY) {
        sb_free(&j->out);
        sb_puts(&j->out, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":"
                         "{\"code\":-32603,\"message\":\"out of memory\"}}\n");
    }
    rpc_request_free(&req);
}
