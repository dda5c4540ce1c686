/*
 * rpc.c - JSON-RPC 2.0 requests: validation, replies, and the methods of
 * DESIGN §3 as answered on a worker thread (see rpc.h).
 */
#include "daemon/rpc.h"

#include "daemon/consents.h"
#include "daemon/log.h"
#include "daemon/rpcjson.h"
#include "daemon/snapshot.h"
#include "daemon/token.h"
#include "lib/decision.h"

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
    req->root = json_loadb(
        line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
        &je);
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
    if (!json_is_string(v) || json_string_length(v) != 3 ||
        strcmp(json_string_value(v), "2.0") != 0) {
        snprintf(err, errlen, "jsonrpc must be \"2.0\"");
        return RPC_INVALID_REQUEST;
    }
    /* Strings may hold "\u0000" (an argument with a control character is
     * a decision, argument_invalid); a name compared as a C string must
     * not, or "check\u0000x" would be read as "check". */
    const json_t *m = json_object_get(req->root, "method");
    if (m == NULL) {
        snprintf(err, errlen, "method is required");
        return RPC_INVALID_REQUEST;
    }
    if (!json_is_string(m) ||
        strlen(json_string_value(m)) != json_string_length(m)) {
        snprintf(err, errlen, "method must be a string without NUL");
        return RPC_INVALID_REQUEST;
    }
    req->method = json_string_value(m);
    /* JSON-RPC 2.0 allows by-position (array) params, so an array is a
     * valid request whose params this server's methods cannot take: that
     * is -32602, given once the method is known (rpc_handle). Any other
     * non-object is not a valid request at all. */
    const json_t *p = json_object_get(req->root, "params");
    if (p != NULL && !json_is_object(p) && !json_is_array(p)) {
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
        sb_put_i64(out, (int64_t)json_integer_value(id));
    } else {
        /* A real, in the shortest text that reads back as the same number
         * (0.1 stays "0.1"; jansson would write 0.10000000000000001). */
        char buf[32];
        sb_putn(out, buf, canon_real(json_real_value(id), buf));
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

/* Checks that params.name is absent (or null) or a string; sets *out (NULL
 * when absent). Returns false after failing j. */
static bool rpc_opt_string(job *j, const json_t *params, const char *name,
                           const char **out)
{
    *out = NULL;
    const json_t *v = params ? json_object_get(params, name) : NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "params.%s must be a string without NUL",
                 name);
        rpc_fail(j, RPC_INVALID_PARAMS, msg);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* Like rpc_opt_string, and an empty string fails too: as a filter it
 * could match nothing, and would hide a caller's mistake. */
static bool rpc_nonempty_string(job *j, const json_t *params, const char *name,
                                const char **out)
{
    if (!rpc_opt_string(j, params, name, out))
        return false;
    if (*out != NULL && (*out)[0] == '\0') {
        char msg[96];
        snprintf(msg, sizeof msg, "params.%s must be a non-empty string", name);
        rpc_fail(j, RPC_INVALID_PARAMS, msg);
        return false;
    }
    return true;
}

/* Fails j unless every key of params is one of the NULL-terminated names:
 * a misspelt filter of consent.list or consent.revoke would otherwise be
 * dropped, and the call would list or revoke more than was meant. */
static bool rpc_only_params(job *j, const json_t *params, const char *method,
                            const char *const *names)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        size_t i = 0;
        while (names[i] != NULL && strcmp(names[i], key) != 0)
            i++;
        if (names[i] == NULL) {
            char msg[160];
            snprintf(msg, sizeof msg, "params.%.64s%s is not a parameter of %s",
                     key, strlen(key) > 64 ? "..." : "", method);
            rpc_fix_utf8(msg);
            rpc_fail(j, RPC_INVALID_PARAMS, msg);
            return false;
        }
    }
    return true;
}

/* Reads params.name as a positive integer into *out (-1 when absent or
 * null).
 * Returns false after failing j when it is present and not one, or absent
 * and required. */
static bool rpc_positive(job *j, const json_t *params, const char *name,
                         bool required, int64_t *out)
{
    *out = -1;
    const json_t *v = params ? json_object_get(params, name) : NULL;
    if ((v == NULL || json_is_null(v)) && !required)
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
 * writer needs neither the decision nor the policy. token is the row's
 * token fact (NULL for a check that carried claims). Returns 0 or
 * TRINE_ENOMEM. */
static int rpc_copy_row(job *j, const trine_policy *p, const trine_decision *d,
                        const char *token)
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
        [JCOL_TOKEN] = token,
    };
    /* Only a consent_required decision needs its arguments' hash kept (a
     * grant of it binds to them), and a row without facts costs one
     * insert less. */
    if (strcmp(trine_decision_kind(d), "consent_required") == 0)
        v[JCOL_ARGS_SHA256] = trine_decision_args_hash(d);
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
    if (trine_decision_has_redacted(d) && !r->oom) {
        /* The log's copy of the result, rendered like the reply's. */
        size_t at = r->len;
        size_t need = trine_decision_write_audit(d, INT64_MAX, NULL, 0);
        if (!sb_reserve(r, need + 1))
            return TRINE_ENOMEM;
        trine_decision_write_audit(d, INT64_MAX, r->data + at, need + 1);
        r->len = at + need + 1;
        j->col[JCOL_DETAIL] = at;
    }
    return r->oom ? TRINE_ENOMEM : 0;
}

/* Renders decision d (made on p at now_ms) into j and hands the job on to
 * the audit writer (with a placeholder audit id it puts in once the row is
 * committed). token is the row's token fact, or NULL. Frees d. */
static void rpc_emit(daemon_ctx *ctx, job *j, const trine_policy *p,
                     trine_decision *d, int64_t now_ms, const char *token)
{
    int64_t grant = trine_decision_consent_grant(d);
    bool claimed =
        grant >= 0 && trine_decision_consent_mode(d) == TRINE_CONSENT_ALWAYS;
    sb_puts(&j->out, "\"result\":");
    j->prefix_len = j->out.len;
    int rc = rpc_render_result(j, d);
    if (rc == 0)
        rc = rpc_copy_row(j, p, d, token);
    trine_decision_free(d);
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
    j->now_ms = now_ms;
    j->claimed = claimed ? grant : -1;
}

/* ---- Bearer tokens ----------------------------------------------------- */

/* Finds the block that decides a tool, as the evaluator does: the exact
 * name, else the server's wildcard. NULL when there is none. */
static const cpl_tool *rpc_tool_block(const cpl_server *s, const eval_req *r)
{
    if (s == NULL)
        return NULL;
    const cpl_tool *t = strmap_getn(&s->tools, r->tool, r->tool_len);
    return t != NULL ? t : s->wildcard;
}

/* Makes the deny for a bearer token that did not verify: the request's
 * facts and one reason with the verifier's detail. The tool block is
 * looked up so that its `redact` paths apply to the audited arguments.
 * Returns 0 with *out, TRINE_EREQUEST or TRINE_ENOMEM. */
static int rpc_token_deny(const trine_policy *p, const json_t *params,
                          const token_result *res, trine_decision **out)
{
    eval_req req;
    int rc = eval_read_request(params, &req, NULL, 0);
    if (rc != 0)
        return rc;
    trine_decision *d = dec_new(p);
    if (d == NULL)
        return TRINE_ENOMEM;
    const cpl_server *srv =
        strmap_getn(&p->servers, req.server, req.server_len);
    d->tool_blk = rpc_tool_block(srv, &req);
    d->server = dec_strndup(d, req.server, req.server_len);
    d->tool = dec_strndup(d, req.tool, req.tool_len);
    bool ok = d->server != NULL && d->tool != NULL;
    if (ok && req.session != NULL) {
        d->session = dec_strndup(d, req.session, req.session_len);
        ok = d->session != NULL;
    }
    if (req.args != NULL)
        d->args = json_incref((json_t *)req.args);
    dec_reason r = {0};
    r.code = res->reason;
    r.detail = ok ? dec_strndup(d, res->detail, strlen(res->detail)) : NULL;
    if (srv != NULL && strcmp(res->reason, "audience_mismatch") == 0) {
        r.rule_file = srv->file;
        r.rule_line = srv->line;
    }
    if (r.detail == NULL || dec_add_reason(d, &r) == NULL) {
        trine_decision_free(d);
        return TRINE_ENOMEM;
    }
    d->kind = "deny";
    d->reason = res->reason;
    *out = d;
    return 0;
}

/* Evaluates params on p at now_ms and emits the decision (rpc_emit).
 * refused: a bearer token whose claims are authentic but which the
 * verifier refused (expired, another audience), or NULL. The evaluator
 * decides such a token as it would the same "token"; should it not deny,
 * the verifier's own deny stands. */
static void rpc_evaluate(daemon_ctx *ctx, job *j, const trine_policy *p,
                         const json_t *params, int64_t now_ms,
                         const char *token, const token_result *refused)
{
    trine_check_opts opts = {.now_ms = now_ms,
                             .consent = consents_lookup,
                             .consent_ctx = ctx->grants};
    trine_decision *d = NULL;
    char err[512] = "";
    int rc = trine_check(p, params, &opts, &d, err, sizeof err);
    if (rc != 0) {
        if (rc == TRINE_EREQUEST)
            rpc_fail(j, RPC_INVALID_PARAMS,
                     err[0] ? err : "params are invalid");
        else
            rpc_fail_code(j, rc);
        return;
    }
    if (refused != NULL && strcmp(d->kind, "deny") != 0) {
        trine_decision_free(d);
        d = NULL;
        rc = rpc_token_deny(p, params, refused, &d);
        if (rc != 0) {
            rpc_fail_code(j, rc);
            return;
        }
    }
    rpc_emit(ctx, j, p, d, now_ms, token);
}

/* Decides a bearer check from the verifier's verdict: authentic claims are
 * evaluated exactly as a "token" would be; anything else is a deny with
 * the verifier's reason. The raw token leaves params here. */
static void rpc_bearer_finish(daemon_ctx *ctx, job *j, const trine_policy *p,
                              json_t *params, const token_result *res,
                              int64_t now_ms)
{
    strbuf col;
    sb_init(&col);
    int rc = token_audit_json(res, &col);
    /* The request owns the string: overwrite it before jansson frees it,
     * so the raw token does not linger in freed memory. */
    const json_t *bearer = json_object_get(params, "bearer");
    if (json_is_string(bearer))
        explicit_bzero((char *)json_string_value(bearer),
                       json_string_length(bearer));
    json_object_del(params, "bearer");
    if (rc == 0 && res->claims != NULL) {
        if (json_object_set(params, "token", res->claims) != 0)
            rc = TRINE_ENOMEM;
        else
            rpc_evaluate(ctx, j, p, params, now_ms, col.data,
                         res->reason != NULL ? res : NULL);
    } else if (rc == 0) {
        trine_decision *d = NULL;
        rc = rpc_token_deny(p, params, res, &d);
        if (rc == 0)
            rpc_emit(ctx, j, p, d, now_ms, col.data);
    }
    sb_free(&col);
    if (rc != 0)
        rpc_fail_code(j, rc);
}

/* Reads the request's fields as the evaluator does (its "token" being a
 * placeholder until the claims are known) and sets q's audiences: the
 * server block's, in p. Returns 0 or TRINE_EREQUEST with a message in
 * err. */
static int rpc_audiences(const trine_policy *p, const json_t *params,
                         token_request *q, char *err, size_t errlen)
{
    eval_req req;
    int rc = eval_read_request(params, &req, err, errlen);
    if (rc != 0)
        return rc;
    const cpl_server *s = strmap_getn(&p->servers, req.server, req.server_len);
    q->audiences = s != NULL ? s->audiences : NULL;
    q->n_audiences = s != NULL ? s->naudiences : 0;
    return 0;
}

/* Reads what a bearer check needs: the token (checked to be a string) and
 * the request's other fields, checked before anything is verified. Returns
 * false after failing j. */
static bool rpc_bearer_read(job *j, const trine_policy *p, json_t *params,
                            const json_t **bearer, token_request *q)
{
    *bearer = json_object_get(params, "bearer");
    if (!json_is_string(*bearer)) {
        rpc_fail(j, RPC_INVALID_PARAMS, "params.bearer must be a string");
        return false;
    }
    if (json_object_set_new(params, "token", json_object()) != 0) {
        rpc_fail_code(j, TRINE_ENOMEM);
        return false;
    }
    char err[256] = "";
    if (rpc_audiences(p, params, q, err, sizeof err) != 0) {
        rpc_fail(j, RPC_INVALID_PARAMS, err[0] ? err : "params are invalid");
        return false;
    }
    return true;
}

/* Forgets the request line of a bearer check, which holds the raw token:
 * the buffer is kept for later requests, so it is overwritten now. */
static void rpc_scrub_line(job *j)
{
    if (j->in.data != NULL)
        explicit_bzero(j->in.data, j->in.len);
}

/* A check with "bearer": verified here when no network is needed (cached
 * keys, a cached introspection), else handed to the token threads as
 * JOB_TOKEN with the request kept in the job. */
static void rpc_bearer(daemon_ctx *ctx, job *j, json_t *params)
{
    if (json_object_get(params, "token") != NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params: give token or bearer, not both");
        rpc_scrub_line(j);
        return;
    }
    if (ctx->tokens == NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS, RPC_BEARER_MSG);
        rpc_scrub_line(j);
        return;
    }
    trine_policy *p = snapshot_acquire(ctx->snap);
    const json_t *bearer;
    token_request q = {.now_ms = log_now_ms()};
    if (rpc_bearer_read(j, p, params, &bearer, &q)) {
        token_result res;
        int rc = token_check_local(ctx->tokens, json_string_value(bearer),
                                   json_string_length(bearer), &q, &res);
        if (rc == TOKEN_NEEDS_NETWORK) {
            trine_policy_release(p);
            j->kind = JOB_TOKEN;
            return;
        }
        rpc_bearer_finish(ctx, j, p, params, &res, q.now_ms);
        token_result_clear(&res);
    }
    trine_policy_release(p);
    rpc_scrub_line(j);
}

void rpc_handle_token(daemon_ctx *ctx, job *j, http_client *h)
{
    json_t *params = (json_t *)j->params;
    const json_t *bearer = json_object_get(params, "bearer");
    trine_policy *p = snapshot_acquire(ctx->snap);
    j->kind = JOB_REPLY;
    token_request q = {.now_ms = log_now_ms()};
    if (!json_is_string(bearer) || rpc_audiences(p, params, &q, NULL, 0) != 0) {
        /* rpc_bearer checked both before handing the job over. */
        rpc_fail_code(j, TRINE_EINVAL);
    } else {
        token_result res;
        token_check_remote(ctx->tokens, h, json_string_value(bearer),
                           json_string_length(bearer), &q, &res);
        rpc_bearer_finish(ctx, j, p, params, &res, q.now_ms);
        token_result_clear(&res);
    }
    trine_policy_release(p);
    json_decref(j->root);
    j->root = NULL;
    j->params = NULL;
    rpc_scrub_line(j);
    if (j->out.oom && j->kind == JOB_REPLY) {
        sb_free(&j->out);
        sb_puts(&j->out, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":"
                         "{\"code\":-32603,\"message\":\"out of memory\"}}\n");
    }
}

/* check: a request carrying claims ("token") is evaluated on the current
 * snapshot and handed to the audit writer (rpc_emit); one carrying a
 * "bearer" token is verified first. The decision, the policy reference and
 * the parsed request are all dropped on the thread that made them. */
static void rpc_check(daemon_ctx *ctx, job *j, const json_t *params)
{
    if (params == NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS, "params is required");
        return;
    }
    /* "bearer": null is no bearer, as "session": null is no session. */
    const json_t *bearer = json_object_get(params, "bearer");
    if (bearer != NULL && !json_is_null(bearer)) {
        /* The request object is this job's own: adding the claims to it
         * is safe. */
        rpc_bearer(ctx, j, (json_t *)params);
        return;
    }
    trine_policy *p = snapshot_acquire(ctx->snap);
    rpc_evaluate(ctx, j, p, params, log_now_ms(), NULL, NULL);
    trine_policy_release(p);
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
    const char *server;
    if (!rpc_opt_string(j, params, "server", &server))
        return;
    if (server == NULL) {
        rpc_fail(j, RPC_INVALID_PARAMS, "params.server is required");
        return;
    }
    trine_policy *p = snapshot_acquire(ctx->snap);
    json_t *tools = trine_policy_tools(p, server);
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
    static const char *const names[] = {"user", "agent", NULL};
    const char *user;
    const char *agent;
    if (!rpc_only_params(j, params, "consent.list", names) ||
        !rpc_nonempty_string(j, params, "user", &user) ||
        !rpc_nonempty_string(j, params, "agent", &agent))
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
    static const char *const names[] = {"audit_id", "ttl", NULL};
    int64_t audit_id;
    int64_t ttl;
    if (!rpc_only_params(j, params, "consent.grant", names) ||
        !rpc_positive(j, params, "audit_id", true, &audit_id) ||
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
    static const char *const names[] = {"consent_id", "user", "agent",
                                        "server",     "tool", NULL};
    if (!rpc_only_params(j, params, "consent.revoke", names) ||
        !rpc_positive(j, params, "consent_id", false, &id) ||
        !rpc_nonempty_string(j, params, "user", &user) ||
        !rpc_nonempty_string(j, params, "agent", &agent) ||
        !rpc_nonempty_string(j, params, "server", &server) ||
        !rpc_nonempty_string(j, params, "tool", &tool))
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
    j->kind = JOB_REVOKE;
    return true;
}

/* True when m names a method of DESIGN §3. */
static bool rpc_method_known(const char *m)
{
    static const char *const methods[] = {
        "check",        "ping",          "policy.status",  "policy.tools",
        "consent.list", "consent.grant", "consent.revoke",
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(m, methods[i]) == 0)
            return true;
    }
    return false;
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
    if (json_is_array(params) && rpc_method_known(m)) {
        rpc_fail(j, RPC_INVALID_PARAMS,
                 "params must be an object of named parameters, not an array");
    } else if (strcmp(m, "check") == 0) {
        rpc_check(ctx, j, params);
        if (j->kind == JOB_TOKEN) {
            /* The token thread reads the request from the job. */
            j->root = req.root;
            j->params = params;
            req.root = NULL;
        }
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
