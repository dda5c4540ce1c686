/*
 * proxy_msg.c - reading, classifying and building the messages of `trine
 * proxy` (see proxy_msg.h). No I/O: every function takes and returns
 * memory, so each can be fed hostile input alone.
 */
#include "cli/proxy_msg.h"

#include "trine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Reading lines ------------------------------------------------------ */

const json_t *pmsg_id(const json_t *msg)
{
    return json_is_object(msg) ? json_object_get(msg, "id") : NULL;
}

bool pmsg_valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

/* True when id is a string the proxy could have used for its own request. */
static bool pmsg_own_id(const json_t *id)
{
    size_t n = sizeof PMSG_OWN_ID_PREFIX - 1;
    return json_is_string(id) && json_string_length(id) >= n &&
           memcmp(json_string_value(id), PMSG_OWN_ID_PREFIX, n) == 0;
}

/* Classifies a message that has a string method. */
static pmsg_kind pmsg_classify_method(const char *method, const json_t *id)
{
    bool has_id = id != NULL;
    if (strcmp(method, "tools/call") == 0) {
        if (!has_id)
            return PMSG_CALL_NOTIFY;
        return pmsg_valid_id(id) ? PMSG_CALL : PMSG_INVALID;
    }
    if (strcmp(method, "tools/list") == 0 && has_id)
        return pmsg_valid_id(id) ? PMSG_LIST : PMSG_INVALID;
    if (strcmp(method, "initialize") == 0 && has_id)
        return PMSG_INITIALIZE;
    if (strcmp(method, "notifications/cancelled") == 0 && !has_id)
        return PMSG_CANCEL;
    return PMSG_OTHER;
}

pmsg_kind pmsg_classify(const json_t *msg)
{
    if (!json_is_object(msg))
        return PMSG_INVALID;
    const json_t *id = json_object_get(msg, "id");
    /* JSON-RPC ids are strings, numbers or null; anything else cannot be
     * answered or matched. */
    if (id != NULL && !json_is_string(id) && !json_is_number(id) &&
        !json_is_null(id))
        return PMSG_INVALID;
    const json_t *method = json_object_get(msg, "method");
    if (method != NULL) {
        if (!json_is_string(method))
            return PMSG_INVALID;
        return pmsg_classify_method(json_string_value(method), id);
    }
    if (id == NULL || (json_object_get(msg, "result") == NULL &&
                       json_object_get(msg, "error") == NULL))
        return PMSG_INVALID;
    return pmsg_own_id(id) ? PMSG_OWN_RESPONSE : PMSG_RESPONSE;
}

void pmsg_line_free(pmsg_line *line)
{
    if (line == NULL)
        return;
    json_decref(line->root);
    free(line->items);
    memset(line, 0, sizeof *line);
}

int pmsg_parse_line(const char *buf, size_t len, pmsg_line *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* A carriage return is JSON whitespace, but many line readers (Python's
     * text streams, Node's readline, Java's readLine) end a line at a bare
     * one: a server reading that way would see a second message inside
     * this one, one the proxy never checked. MCP's stdio transport allows
     * no embedded line break, so only a CRLF's CR at the very end passes. */
    const char *cr = memchr(buf, '\r', len);
    if (cr != NULL && cr != buf + len - 1) {
        snprintf(err, errlen,
                 "carriage return at byte %td: a message holds no line "
                 "break before its end",
                 cr - buf);
        return PMSG_PARSE_ERROR;
    }
    json_error_t e;
    /* Duplicate keys are refused: a call checked with one "name" and run
     * with the other would bypass the policy. */
    json_t *root =
        json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (root == NULL) {
        snprintf(err, errlen, "invalid JSON at byte %d: %s", e.position,
                 e.text);
        return PMSG_PARSE_ERROR;
    }
    out->root = root;
    out->batch = json_is_array(root);
    out->n = out->batch ? json_array_size(root) : 1;
    if (out->n > 0) {
        out->items = calloc(out->n, sizeof *out->items);
        if (out->items == NULL) {
            pmsg_line_free(out);
            return TRINE_ENOMEM;
        }
    }
    for (size_t i = 0; i < out->n; i++) {
        json_t *m = out->batch ? json_array_get(root, i) : root;
        out->items[i].msg = m;
        out->items[i].kind = pmsg_classify(m);
    }
    return 0;
}

/* ---- Checks ------------------------------------------------------------- */

const char *pmsg_call_tool(const json_t *call)
{
    const json_t *params = json_object_get(call, "params");
    const json_t *name = json_object_get(params, "name");
    return json_is_string(name) ? json_string_value(name) : NULL;
}

int pmsg_check_params(const json_t *call, const char *server,
                      const pmsg_ident *who, const char *session, json_t **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    const json_t *params = json_object_get(call, "params");
    if (!json_is_object(params)) {
        snprintf(err, errlen, "params must be an object");
        return PMSG_INVALID_PARAMS;
    }
    const json_t *name = json_object_get(params, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        strlen(json_string_value(name)) != json_string_length(name)) {
        snprintf(err, errlen, "params.name must be a non-empty string");
        return PMSG_INVALID_PARAMS;
    }
    json_t *args = json_object_get(params, "arguments");
    bool own_args = args == NULL || json_is_null(args);
    if (own_args) {
        args = json_object();
        if (args == NULL)
            return TRINE_ENOMEM;
    } else if (!json_is_object(args)) {
        snprintf(err, errlen, "params.arguments must be an object");
        return PMSG_INVALID_PARAMS;
    }
    json_t *p = json_object();
    bool ok = p != NULL &&
              json_object_set_new(p, "server", json_string(server)) == 0 &&
              json_object_set(p, "tool", (json_t *)name) == 0 &&
              json_object_set(p, "arguments", args) == 0 &&
              json_object_set_new(p, "session", json_string(session)) == 0;
    if (ok && who->bearer != NULL)
        ok = json_object_set_new(p, "bearer", json_string(who->bearer)) == 0;
    else if (ok)
        ok = json_object_set(p, "token", (json_t *)who->claims) == 0;
    if (own_args)
        json_decref(args);
    if (!ok) {
        json_decref(p);
        return TRINE_ENOMEM;
    }
    *out = p;
    return 0;
}

/* ---- Building answers --------------------------------------------------- */

/* Starts a JSON-RPC response object for id (null when NULL). */
static json_t *pmsg_response(const json_t *id)
{
    json_t *r = json_object();
    if (r == NULL)
        return NULL;
    json_t *idv = id != NULL ? json_incref((json_t *)id) : json_null();
    if (json_object_set_new(r, "jsonrpc", json_string("2.0")) != 0 ||
        json_object_set_new(r, "id", idv) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *pmsg_tool_error(const json_t *id, const char *text)
{
    json_t *r = pmsg_response(id);
    json_t *res = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text",
                            "text", text, "isError", 1);
    if (r == NULL || res == NULL ||
        json_object_set_new(r, "result", res) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *pmsg_rpc_error(const json_t *id, int code, const char *message)
{
    json_t *r = pmsg_response(id);
    json_t *e = json_pack("{s:i, s:s}", "code", code, "message", message);
    if (r == NULL || e == NULL || json_object_set_new(r, "error", e) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

char *pmsg_dump(const json_t *msg, size_t *len)
{
    char *text = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (line == NULL) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

/* Returns string member key of obj, or NULL. */
static const char *pmsg_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* What would fix a denial, by reason code. */
static const char *pmsg_hint(const char *reason)
{
    static const struct {
        const char *code;
        const char *hint;
    } hints[] = {
        {"token_expired", "the access token has expired; sign in again."},
        {"token_invalid", "the access token's claims are missing or "
                          "malformed; sign in again."},
        {"audience_mismatch", "the access token was issued for another "
                              "resource; get one for this server."},
        {"unknown_tool", "the policy has no rule for this tool, so trine "
                         "refuses it; an administrator must add a tool "
                         "block for it."},
        {"argument_invalid", "change the argument named above so that it "
                             "satisfies the policy."},
        {"forbidden", "the resource is off limits to everyone; no role, "
                      "scope or agent can unlock it."},
        {"user_denied", "the signed-in user may not do this; an "
                        "administrator must give the user a role that "
                        "allows it."},
        {"agent_denied", "this agent (OAuth client) may not do this; use "
                         "an agent the policy allows."},
        {"audit_unavailable", "trine cannot write its audit log and refuses "
                              "every call until it can; try again later."},
    };
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        if (strcmp(reason, hints[i].code) == 0)
            return hints[i].hint;
    }
    return NULL;
}

/* Writes the step-up advice of a scope_missing result. */
static void pmsg_put_step_up(FILE *f, const json_t *result)
{
    const json_t *scopes = json_object_get(result, "required_scopes");
    if (json_array_size(scopes) == 0) {
        fputs("Fix: no scope can grant this call, so stepping up the "
              "token will not help.\n",
              f);
        return;
    }
    fputs("Fix: the access token lacks a scope; sign in again with ", f);
    fputs(json_array_size(scopes) == 1 ? "the scope " : "the scopes ", f);
    size_t i;
    const json_t *s;
    json_array_foreach(scopes, i, s)
    {
        if (i > 0)
            fputs(", ", f);
        fputs(json_is_string(s) ? json_string_value(s) : "?", f);
    }
    fputs(".\n", f);
    const char *www = pmsg_str(result, "www_authenticate");
    if (www != NULL)
        fprintf(f, "WWW-Authenticate: %s\n", www);
}

char *pmsg_decision_text(const json_t *result, const char *server,
                         const char *tool, const char *consent_note)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    const char *reason = pmsg_str(result, "reason");
    if (reason == NULL)
        reason = "unknown";
    const json_t *first = json_array_get(json_object_get(result, "reasons"), 0);
    const char *detail = pmsg_str(first, "detail");
    const json_t *audit = json_object_get(result, "audit_id");
    bool consent = strcmp(reason, "consent_required") == 0;
    if (consent)
        fprintf(f, "trine needs consent before this call (%s/%s): %s.\n",
                server, tool, reason);
    else
        fprintf(f, "trine denied this call (%s/%s): %s.\n", server, tool,
                reason);
    if (detail != NULL) {
        size_t n = strlen(detail);
        fprintf(f, "Why: %s%s\n", detail,
                n > 0 && detail[n - 1] == '.' ? "" : ".");
    }
    if (consent) {
        const char *prompt =
            pmsg_str(json_object_get(result, "consent"), "prompt");
        if (prompt != NULL)
            fprintf(f, "Prompt: %s\n", prompt);
        if (consent_note != NULL)
            fprintf(f, "%s\n", consent_note);
        else if (json_is_integer(audit))
            fprintf(f,
                    "This client cannot ask for consent (it did not declare "
                    "form-mode elicitation): grant it with `trine "
                    "consent grant %lld`, then call the tool again.\n",
                    (long long)json_integer_value(audit));
    } else if (strcmp(reason, "scope_missing") == 0) {
        pmsg_put_step_up(f, result);
    } else if (pmsg_hint(reason) != NULL) {
        fprintf(f, "Fix: %s\n", pmsg_hint(reason));
    }
    if (json_is_integer(audit))
        fprintf(f, "Audit id: %lld\n", (long long)json_integer_value(audit));
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    /* No trailing newline in a tool result's text. */
    if (len > 0 && text[len - 1] == '\n')
        text[len - 1] = '\0';
    return text;
}

char *pmsg_unavailable_text(const char *why)
{
    const char *fmt = "authorization unavailable: %s. The call was not made: "
                      "trine fails closed when it cannot decide.";
    int n = snprintf(NULL, 0, fmt, why);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (text != NULL)
        snprintf(text, (size_t)n + 1, fmt, why);
    return text;
}

/* ---- Elicitation -------------------------------------------------------- */

bool pmsg_client_elicits(const json_t *initialize)
{
    const json_t *params = json_object_get(initialize, "params");
    const json_t *caps = json_object_get(params, "capabilities");
    const json_t *el = json_object_get(caps, "elicitation");
    if (!json_is_object(el))
        return false;
    /* MCP 2025-11-25: an empty object means form mode (the older form);
     * otherwise form mode must be named. URL mode alone is of no use. */
    bool form = json_object_get(el, "form") != NULL;
    bool url = json_object_get(el, "url") != NULL;
    return form || !url;
}

json_t *pmsg_elicit_request(const char *id, const char *prompt)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s, s:{}}}}", "jsonrpc",
                     "2.0", "id", id, "method", "elicitation/create", "params",
                     "message", prompt, "requestedSchema", "type", "object",
                     "properties");
}

pmsg_answer pmsg_elicit_answer(const json_t *response, char *err, size_t errlen)
{
    const json_t *e = json_object_get(response, "error");
    if (e != NULL) {
        const char *msg = pmsg_str(e, "message");
        snprintf(err, errlen, "the client answered error %lld: %s",
                 (long long)json_integer_value(json_object_get(e, "code")),
                 msg != NULL ? msg : "(no message)");
        return PMSG_ANSWER_ERROR;
    }
    const char *action =
        pmsg_str(json_object_get(response, "result"), "action");
    if (action != NULL && strcmp(action, "accept") == 0)
        return PMSG_ANSWER_ACCEPT;
    if (action != NULL && strcmp(action, "decline") == 0)
        return PMSG_ANSWER_DECLINE;
    if (action != NULL && strcmp(action, "cancel") == 0)
        return PMSG_ANSWER_CANCEL;
    snprintf(err, errlen, "the client's answer has no valid result.action");
    return PMSG_ANSWER_ERROR;
}

/* ---- Daemon replies and tools/list -------------------------------------- */

int pmsg_parse_reply(const char *buf, size_t len, json_t **out, char *err,
                     size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL) {
        snprintf(err, errlen, "an unreadable reply from trined: %s", e.text);
        return -1;
    }
    *out = v;
    return 0;
}

/* True when tools (an array of strings) holds name. */
static bool pmsg_has_tool(const json_t *tools, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), name) == 0)
            return true;
    }
    return false;
}

long pmsg_filter_tools(json_t *response, const json_t *tools, bool wildcard)
{
    json_t *result = json_object_get(response, "result");
    json_t *list = json_object_get(result, "tools");
    if (!json_is_array(list))
        return -1;
    if (wildcard)
        return 0;
    long removed = 0;
    size_t i = 0;
    while (i < json_array_size(list)) {
        const json_t *name = json_object_get(json_array_get(list, i), "name");
        /* A name with a NUL in it could never match a policy block. */
        if (json_is_string(name) &&
            strlen(json_string_value(name)) == json_string_length(name) &&
            pmsg_has_tool(tools, json_string_value(name))) {
            i++;
            continue;
        }
        if (json_array_remove(list, i) != 0)
            return -1;
        removed++;
    }
    return removed;
}
