/*
 * proxy_flow.c - what `trine proxy` decides for each client message, and
 * what it does with each server message.
 *
 * Ordering. Client lines are decided one at a time, in the order they
 * came: a line waits in the queue until every message in it is decided
 * (forwarded, or answered by the proxy), and the lines behind it wait for
 * it. So the server sees the client's requests and notifications in the
 * client's order, minus what was refused. Three kinds of client message do
 * not queue, because the line at the head may be waiting for them: a
 * response to a server request (forwarded at once), the answer to our own
 * elicitation (taken at once, never forwarded), and a
 * notifications/cancelled for the call at the head (taken at once). The
 * server's lines are never held: they go to the client as they come, a
 * tools/list result filtered on the way.
 *
 * One request to the daemon is in flight at a time (the head line's), so a
 * consent granted for one call is seen by the check of the next.
 */
#include "cli/proxy.h"

#include "trine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The queue ---------------------------------------------------------- */

static void job_free(proxy_job *j)
{
    if (j == NULL)
        return;
    free(j->raw);
    pmsg_line_free(&j->line);
    free(j->keep);
    json_decref(j->replies);
    json_decref(j->check);
    json_decref(j->result);
    free(j);
}

static pmsg_item *job_item(proxy_job *j)
{
    return &j->line.items[j->cur];
}

/* The current message is decided: forwarded (keep) or not. */
static void item_done(proxy_job *j, bool keep)
{
    j->keep[j->cur] = keep;
    j->cur++;
    j->step = STEP_NEXT;
    json_decref(j->check);
    json_decref(j->result);
    j->check = NULL;
    j->result = NULL;
    j->rechecked = false;
    j->cancelled = false;
    j->elicit_id[0] = '\0';
}

/* Adds the proxy's answer (taken) to the current message. */
static void job_reply(proxy *px, proxy_job *j, json_t *msg)
{
    if (msg == NULL || json_array_append_new(j->replies, msg) != 0)
        px->fatal = true;
}

/* Answers the current call with an isError result of text (taken). */
static void job_tool_error(proxy *px, proxy_job *j, char *text)
{
    if (text == NULL) {
        px->fatal = true;
        return;
    }
    job_reply(px, j, pmsg_tool_error(pmsg_id(job_item(j)->msg), text));
    free(text);
    item_done(j, false);
}

static const char *job_tool(proxy_job *j)
{
    const char *t = pmsg_call_tool(job_item(j)->msg);
    return t != NULL ? t : "?";
}

/* Answers the current call with the text of its last check result. */
static void job_decision(proxy *px, proxy_job *j, const char *note)
{
    job_tool_error(
        px, j, pmsg_decision_text(j->result, px->server, job_tool(j), note));
}

static void job_unavailable(proxy *px, proxy_job *j, const char *why)
{
    job_tool_error(px, j, pmsg_unavailable_text(why));
}

/* Sends the current call's check. */
static void call_check(proxy *px, proxy_job *j)
{
    char why[512];
    if (proxy_daemon_send(px, "check", json_incref(j->check), why,
                          sizeof why) != 0) {
        job_unavailable(px, j, why);
        return;
    }
    j->step = STEP_CHECK;
}

static void call_start(proxy *px, proxy_job *j)
{
    char err[256];
    json_t *params = NULL;
    int rc = pmsg_check_params(job_item(j)->msg, px->server, &px->who,
                               px->session, &params, err, sizeof err);
    if (rc == TRINE_ENOMEM) {
        px->fatal = true;
        return;
    }
    if (rc != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid params: %s", err);
        job_reply(px, j,
                  pmsg_rpc_error(pmsg_id(job_item(j)->msg), PMSG_INVALID_PARAMS,
                                 msg));
        item_done(j, false);
        return;
    }
    j->check = params;
    call_check(px, j);
}

/* Asks the client for consent to the current call. */
static void call_elicit(proxy *px, proxy_job *j)
{
    const json_t *consent = json_object_get(j->result, "consent");
    const json_t *prompt = json_object_get(consent, "prompt");
    snprintf(j->elicit_id, sizeof j->elicit_id, "%s%llu-%s", PMSG_OWN_ID_PREFIX,
             ++px->elicit_n, px->nonce);
    json_t *req = pmsg_elicit_request(
        j->elicit_id, json_is_string(prompt) ? json_string_value(prompt)
                                             : "Allow this tool call?");
    if (req == NULL) {
        px->fatal = true;
        return;
    }
    proxy_to_client(px, req);
    j->step = STEP_ELICIT;
}

static void call_on_check(proxy *px, proxy_job *j, const json_t *reply,
                          const char *why)
{
    if (j->cancelled) {
        /* A cancelled request gets no response. */
        item_done(j, false);
        return;
    }
    if (reply == NULL) {
        job_unavailable(px, j, why);
        return;
    }
    const json_t *err = json_object_get(reply, "error");
    const json_t *res = json_object_get(reply, "result");
    const json_t *dec = json_object_get(res, "decision");
    if (err != NULL || !json_is_string(dec)) {
        const json_t *m = json_object_get(err, "message");
        char text[512];
        snprintf(text, sizeof text, "trined refused the check (%s)",
                 json_is_string(m) ? json_string_value(m)
                                   : "an unreadable reply");
        job_unavailable(px, j, text);
        return;
    }
    const char *d = json_string_value(dec);
    if (strcmp(d, "allow") == 0) {
        item_done(j, true);
        return;
    }
    json_decref(j->result);
    j->result = json_incref((json_t *)res);
    if (strcmp(d, "consent_required") != 0) {
        job_decision(px, j, NULL);
    } else if (j->rechecked) {
        job_decision(px, j,
                     "Consent was granted, but trine still asks for it, "
                     "so the call was not made.");
    } else if (px->elicits && !px->client_eof) {
        call_elicit(px, j);
    } else if (px->elicits) {
        char note[200];
        snprintf(note, sizeof note,
                 "The client closed its input, so it could not be asked: "
                 "grant it with `trine consent grant %lld`, then call the "
                 "tool again.",
                 (long long)json_integer_value(
                     json_object_get(j->result, "audit_id")));
        job_decision(px, j, note);
    } else {
        job_decision(px, j, NULL);
    }
}

static void call_on_grant(proxy *px, proxy_job *j, const json_t *reply,
                          const char *why)
{
    if (j->cancelled) {
        item_done(j, false);
        return;
    }
    const json_t *err = json_object_get(reply, "error");
    if (reply == NULL || err != NULL) {
        const json_t *m = json_object_get(err, "message");
        char note[640];
        snprintf(note, sizeof note,
                 "The user accepted, but trine could not record the grant "
                 "(%s), so the call was not made.",
                 reply == NULL       ? why
                 : json_is_string(m) ? json_string_value(m)
                                     : "an unreadable reply");
        job_decision(px, j, note);
        return;
    }
    j->rechecked = true;
    call_check(px, j);
}

static void list_start(proxy *px, proxy_job *j)
{
    const json_t *id = pmsg_id(job_item(j)->msg);
    if (px->nlists >= PROXY_MAX_LISTS) {
        job_reply(px, j,
                  pmsg_rpc_error(id, PMSG_INTERNAL_ERROR,
                                 "too many tools/list requests are waiting "
                                 "for the server"));
        item_done(j, false);
        return;
    }
    char why[512];
    json_t *params = json_pack("{s:s}", "server", px->server);
    if (params == NULL) {
        px->fatal = true;
        return;
    }
    if (proxy_daemon_send(px, "policy.tools", params, why, sizeof why) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "authorization unavailable: %s", why);
        job_reply(px, j, pmsg_rpc_error(id, PMSG_INTERNAL_ERROR, msg));
        item_done(j, false);
        return;
    }
    j->step = STEP_TOOLS;
}

/* A tools/list is forwarded only with the policy's tools in hand, so the
 * server's answer can be filtered when it comes. Without them (trined
 * unreachable), the client gets a JSON-RPC error and the server is not
 * asked: an error says what happened, where an empty list would say the
 * server has no tools. */
static void list_on_tools(proxy *px, proxy_job *j, const json_t *reply,
                          const char *why)
{
    const json_t *id = pmsg_id(job_item(j)->msg);
    const json_t *res = json_object_get(reply, "result");
    json_t *tools = json_object_get(res, "tools");
    const json_t *wild = json_object_get(res, "wildcard");
    if (!json_is_array(tools) || !json_is_boolean(wild)) {
        const json_t *m =
            json_object_get(json_object_get(reply, "error"), "message");
        char msg[600];
        snprintf(msg, sizeof msg, "authorization unavailable: %s",
                 reply == NULL       ? why
                 : json_is_string(m) ? json_string_value(m)
                                     : "an unreadable reply from trined");
        job_reply(px, j, pmsg_rpc_error(id, PMSG_INTERNAL_ERROR, msg));
        item_done(j, false);
        return;
    }
    proxy_list *l = &px->lists[px->nlists++];
    l->id = json_incref((json_t *)id);
    l->tools = json_incref(tools);
    l->wildcard = json_is_true(wild);
    item_done(j, true);
}

/* Starts deciding the current message of j: either decides it now or
 * leaves j waiting (j->step). */
static void item_start(proxy *px, proxy_job *j)
{
    pmsg_item *it = job_item(j);
    switch (it->kind) {
    case PMSG_CALL:
        call_start(px, j);
        break;
    case PMSG_LIST:
        list_start(px, j);
        break;
    case PMSG_CALL_NOTIFY:
        /* A tools/call without an id gets no answer, and forwarding it
         * unchecked would run the tool: it is dropped. */
        proxy_log("dropped a tools/call notification (a call needs an id)");
        item_done(j, false);
        break;
    case PMSG_INITIALIZE:
        px->elicits = pmsg_client_elicits(it->msg);
        item_done(j, true);
        break;
    case PMSG_INVALID: {
        const json_t *id = pmsg_id(it->msg);
        if (id != NULL && !json_is_string(id) && !json_is_number(id))
            id = NULL;
        job_reply(px, j,
                  pmsg_rpc_error(id, PMSG_INVALID_REQUEST,
                                 "invalid request: not a JSON-RPC 2.0 "
                                 "request, notification or response"));
        item_done(j, false);
        break;
    }
    case PMSG_OWN_RESPONSE:
        /* Taken when the line came. */
        item_done(j, false);
        break;
    default:
        item_done(j, true);
        break;
    }
}

/* Sends what j decided: the kept messages to the server (the line as it
 * came when all are kept), the proxy's answers to the client. */
static void job_finish(proxy *px, proxy_job *j)
{
    size_t kept = 0;
    for (size_t i = 0; i < j->line.n; i++)
        kept += j->keep[i] ? 1 : 0;
    if (kept == j->line.n) {
        proxy_to_server(px, j->raw, j->rawlen);
    } else if (kept > 0) {
        /* A batch loses its refused calls; the rest go as a smaller
         * batch (serialized anew: the bytes of each kept message may
         * differ from the client's, their JSON does not). */
        json_t *arr = json_array();
        for (size_t i = 0; i < j->line.n && arr != NULL; i++) {
            if (j->keep[i] &&
                json_array_append(arr, j->line.items[i].msg) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        size_t len = 0;
        char *text = arr != NULL ? pmsg_dump(arr, &len) : NULL;
        json_decref(arr);
        if (text == NULL) {
            px->fatal = true;
            return;
        }
        proxy_to_server(px, text, len);
        free(text);
    }
    size_t nr = json_array_size(j->replies);
    if (nr > 0 && !j->line.batch)
        proxy_to_client(px, json_incref(json_array_get(j->replies, 0)));
    else if (nr > 0)
        proxy_to_client(px, json_incref(j->replies));
}

/* Decides queued lines until one has to wait. */
static void flow_advance(proxy *px)
{
    proxy_job *j;
    while ((j = px->head) != NULL && !px->fatal) {
        while (j->step == STEP_NEXT && j->cur < j->line.n && !px->fatal)
            item_start(px, j);
        if (j->step != STEP_NEXT || px->fatal)
            return;
        job_finish(px, j);
        px->head = j->next;
        if (px->head == NULL)
            px->tail = NULL;
        px->queued_bytes -= j->rawlen;
        job_free(j);
    }
}

void proxy_flow_reply(proxy *px, const json_t *reply, const char *why)
{
    proxy_job *j = px->head;
    if (j == NULL)
        return;
    switch (j->step) {
    case STEP_CHECK:
        call_on_check(px, j, reply, why);
        break;
    case STEP_GRANT:
        call_on_grant(px, j, reply, why);
        break;
    case STEP_TOOLS:
        list_on_tools(px, j, reply, why);
        break;
    default:
        return;
    }
    flow_advance(px);
}

/* ---- Client lines ------------------------------------------------------- */

/* Takes the client's answer to one of our elicitations (a late one, to a
 * call no longer waiting, is dropped). */
static void flow_own_response(proxy *px, const json_t *msg)
{
    proxy_job *j = px->head;
    const json_t *id = pmsg_id(msg);
    if (j == NULL || j->step != STEP_ELICIT ||
        strcmp(json_string_value(id), j->elicit_id) != 0) {
        proxy_log("dropped a response to no pending request of the proxy");
        return;
    }
    char err[300];
    char note[700];
    switch (pmsg_elicit_answer(msg, err, sizeof err)) {
    case PMSG_ANSWER_ACCEPT: {
        const json_t *audit = json_object_get(j->result, "audit_id");
        json_t *params =
            json_pack("{s:O}", "audit_id", audit != NULL ? audit : json_null());
        char why[512];
        if (params == NULL) {
            px->fatal = true;
            return;
        }
        if (proxy_daemon_send(px, "consent.grant", params, why, sizeof why) !=
            0) {
            snprintf(note, sizeof note,
                     "The user accepted, but trine could not record the "
                     "grant (%s), so the call was not made.",
                     why);
            job_decision(px, j, note);
            break;
        }
        j->step = STEP_GRANT;
        break;
    }
    case PMSG_ANSWER_DECLINE:
        job_decision(px, j, "The user declined, so the call was not made.");
        break;
    case PMSG_ANSWER_CANCEL:
        job_decision(px, j,
                     "The user dismissed the request, so the call was not "
                     "made.");
        break;
    default:
        snprintf(note, sizeof note,
                 "The client could not ask the user (%s), so the call was "
                 "not made.",
                 err);
        job_decision(px, j, note);
        break;
    }
    flow_advance(px);
}

/* Takes a notifications/cancelled aimed at the call the head line waits
 * on; returns false when it is not (it then queues like any message). */
static bool flow_cancel(proxy *px, const json_t *msg)
{
    proxy_job *j = px->head;
    if (j == NULL || j->line.batch || j->cur >= j->line.n ||
        job_item(j)->kind != PMSG_CALL || j->step == STEP_NEXT)
        return false;
    const json_t *target =
        json_object_get(json_object_get(msg, "params"), "requestId");
    if (target == NULL || !json_equal(target, pmsg_id(job_item(j)->msg)))
        return false;
    if (j->step != STEP_ELICIT) {
        /* The daemon's answer is still to come: it will be dropped. */
        j->cancelled = true;
        return true;
    }
    json_t *note =
        json_pack("{s:s, s:s, s:{s:s, s:s}}", "jsonrpc", "2.0", "method",
                  "notifications/cancelled", "params", "requestId",
                  j->elicit_id, "reason", "the tool call was cancelled");
    if (note == NULL) {
        px->fatal = true;
        return true;
    }
    proxy_to_client(px, note);
    item_done(j, false);
    flow_advance(px);
    return true;
}

/* Answers every request of a line the queue cannot take. */
static void flow_refuse(proxy *px, const pmsg_line *pl)
{
    /* A batch is answered with an array, as JSON-RPC wants. */
    json_t *answers = json_array();
    size_t dropped = 0;
    for (size_t i = 0; i < pl->n && answers != NULL; i++) {
        const json_t *m = pl->items[i].msg;
        const json_t *id = pmsg_id(m);
        if (id == NULL || json_object_get(m, "method") == NULL) {
            dropped++;
            continue;
        }
        if (json_array_append_new(
                answers, pmsg_rpc_error(id, PMSG_INTERNAL_ERROR,
                                        "the proxy holds too many messages "
                                        "behind a call waiting for consent; "
                                        "send it again later")) != 0) {
            json_decref(answers);
            answers = NULL;
        }
    }
    if (answers == NULL) {
        px->fatal = true;
        return;
    }
    if (dropped > 0)
        proxy_log("dropped %zu message%s that cannot be answered (the queue "
                  "behind a call waiting for consent is full)",
                  dropped, dropped == 1 ? "" : "s");
    size_t n = json_array_size(answers);
    if (n > 0 && pl->batch)
        proxy_to_client(px, answers);
    else if (n > 0)
        proxy_to_client(px, json_incref(json_array_get(answers, 0)));
    if (n == 0 || !pl->batch)
        json_decref(answers);
}

/* Queues a parsed line (taken) and decides what can be decided. */
static void flow_enqueue(proxy *px, pmsg_line *pl, const char *line, size_t len)
{
    proxy_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        pmsg_line_free(pl);
        px->fatal = true;
        return;
    }
    j->line = *pl;
    memset(pl, 0, sizeof *pl);
    j->raw = malloc(len + 1);
    j->keep = calloc(j->line.n > 0 ? j->line.n : 1, sizeof *j->keep);
    j->replies = json_array();
    if (j->raw == NULL || j->keep == NULL || j->replies == NULL) {
        job_free(j);
        px->fatal = true;
        return;
    }
    memcpy(j->raw, line, len);
    j->raw[len] = '\n';
    j->rawlen = len + 1;
    if (px->tail != NULL)
        px->tail->next = j;
    else
        px->head = j;
    px->tail = j;
    px->queued_bytes += j->rawlen;
    flow_advance(px);
}

/* The most bytes of client lines held behind a waiting call. */
static size_t flow_queue_cap(const proxy *px)
{
    size_t floor = 64u * 1024u * 1024u;
    size_t cap = px->max_message * 4;
    return cap > floor ? cap : floor;
}

/* A response that looks like the proxy's own (PMSG_OWN_ID_PREFIX) is the
 * proxy's only when its id carries this run's nonce, which the server
 * never sees; any other is the server's (a server may pick ids like
 * those). Turns the latter into PMSG_RESPONSE. */
static void flow_claim_own(const proxy *px, pmsg_line *pl)
{
    size_t nn = strlen(px->nonce);
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->items[i].kind != PMSG_OWN_RESPONSE)
            continue;
        const json_t *id = pmsg_id(pl->items[i].msg);
        const char *s = json_string_value(id);
        size_t n = json_string_length(id);
        bool ours = n > nn && s[n - nn - 1] == '-' &&
                    memcmp(s + n - nn, px->nonce, nn) == 0;
        if (!ours)
            pl->items[i].kind = PMSG_RESPONSE;
    }
}

void proxy_client_line(proxy *px, const char *line, size_t len)
{
    pmsg_line pl;
    char err[256];
    int rc = pmsg_parse_line(line, len, &pl, err, sizeof err);
    if (rc == TRINE_ENOMEM) {
        px->fatal = true;
        return;
    }
    if (rc != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "parse error: %s", err);
        proxy_to_client(px, pmsg_rpc_error(NULL, PMSG_PARSE_ERROR, msg));
        return;
    }
    if (pl.batch && pl.n == 0) {
        /* JSON-RPC answers an empty batch with one error, and so does the
         * proxy: there is nothing to forward. */
        proxy_to_client(px, pmsg_rpc_error(NULL, PMSG_INVALID_REQUEST,
                                           "invalid request: an empty batch"));
        pmsg_line_free(&pl);
        return;
    }
    flow_claim_own(px, &pl);
    if (!pl.batch) {
        pmsg_kind k = pl.items[0].kind;
        bool direct =
            k == PMSG_RESPONSE || (px->head == NULL && k == PMSG_OTHER);
        if (direct) {
            proxy_to_server(px, line, len);
            proxy_to_server(px, "\n", 1);
        } else if (k == PMSG_OWN_RESPONSE) {
            flow_own_response(px, pl.items[0].msg);
        } else if (k == PMSG_CANCEL && flow_cancel(px, pl.items[0].msg)) {
            /* Taken: the server never saw the call. */
        } else {
            goto queue;
        }
        pmsg_line_free(&pl);
        return;
    }
    /* A batch: answers to our elicitations are taken now; a batch of
     * responses only is forwarded now. */
    bool responses = pl.n > 0;
    size_t own = 0;
    for (size_t i = 0; i < pl.n; i++) {
        if (pl.items[i].kind == PMSG_OWN_RESPONSE) {
            flow_own_response(px, pl.items[i].msg);
            own++;
        } else if (pl.items[i].kind != PMSG_RESPONSE) {
            responses = false;
        }
    }
    if (responses && own == 0) {
        proxy_to_server(px, line, len);
        proxy_to_server(px, "\n", 1);
    } else if (responses) {
        json_t *arr = json_array();
        for (size_t i = 0; i < pl.n && arr != NULL; i++) {
            if (pl.items[i].kind == PMSG_RESPONSE &&
                json_array_append(arr, pl.items[i].msg) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        size_t n = 0;
        char *text = arr != NULL ? pmsg_dump(arr, &n) : NULL;
        if (text == NULL)
            px->fatal = true;
        else if (json_array_size(arr) > 0)
            proxy_to_server(px, text, n);
        free(text);
        json_decref(arr);
    } else {
        goto queue;
    }
    pmsg_line_free(&pl);
    return;
queue:
    if (px->queued_bytes + len > flow_queue_cap(px)) {
        flow_refuse(px, &pl);
        pmsg_line_free(&pl);
        return;
    }
    flow_enqueue(px, &pl, line, len);
}

void proxy_client_oversize(proxy *px)
{
    char msg[160];
    snprintf(msg, sizeof msg,
             "invalid request: the message exceeds --max-message (%zu "
             "bytes); nothing was forwarded",
             px->max_message);
    proxy_to_client(px, pmsg_rpc_error(NULL, PMSG_INVALID_REQUEST, msg));
}

void proxy_client_gone(proxy *px)
{
    proxy_job *j = px->head;
    if (j != NULL && j->step == STEP_ELICIT) {
        job_decision(px, j,
                     "The client closed its input before answering, so the "
                     "call was not made.");
        flow_advance(px);
    }
}

/* ---- Server lines ------------------------------------------------------- */

/* Filters msg when it answers a pending tools/list. Returns true when it
 * changed. */
static bool flow_filter(proxy *px, json_t *msg)
{
    if (!json_is_object(msg) || json_object_get(msg, "method") != NULL)
        return false;
    const json_t *id = json_object_get(msg, "id");
    if (id == NULL)
        return false;
    for (size_t i = 0; i < px->nlists; i++) {
        proxy_list *l = &px->lists[i];
        if (!json_equal(l->id, id))
            continue;
        long removed = pmsg_filter_tools(msg, l->tools, l->wildcard);
        json_decref(l->id);
        json_decref(l->tools);
        px->lists[i] = px->lists[--px->nlists];
        return removed > 0;
    }
    return false;
}

void proxy_server_line(proxy *px, const char *line, size_t len)
{
    json_t *v = NULL;
    if (px->nlists > 0) {
        json_error_t e;
        /* As lenient as the client's parser: the last of duplicate keys
         * wins there, and here. */
        v = json_loadb(line, len, JSON_DECODE_ANY, &e);
    }
    bool changed = false;
    if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            changed = flow_filter(px, m) || changed;
        }
    } else if (v != NULL) {
        changed = flow_filter(px, v);
    }
    if (changed) {
        proxy_to_client(px, v);
        return;
    }
    json_decref(v);
    proxy_to_client_raw(px, line, len);
    proxy_to_client_raw(px, "\n", 1);
}

void proxy_flow_free(proxy *px)
{
    while (px->head != NULL) {
        proxy_job *j = px->head;
        px->head = j->next;
        job_free(j);
    }
    px->tail = NULL;
    for (size_t i = 0; i < px->nlists; i++) {
        json_decref(px->lists[i].id);
        json_decref(px->lists[i].tools);
    }
    px->nlists = 0;
    proxy_daemon_close(px);
    proxy_buf_free(&px->d.out);
    proxy_reader_free(&px->d.in);
    json_decref(px->d.reply);
    px->d.reply = NULL;
}
