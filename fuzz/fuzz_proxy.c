/*
 * fuzz_proxy.c - a libFuzzer target for what an MCP client (or server)
 * sends `trine proxy`: any bytes are one line of MCP traffic, read and
 * classified by src/cli/proxy_msg.c, and every message in it goes through
 * what the proxy would do with it: the check params of a tools/call, the
 * isError texts built from it (read as a daemon result), the elicitation
 * answer read from it, the capability test of an initialize, and the
 * tools/list filter (read as a server response).
 *
 * Besides crashes and sanitizer reports, it checks what must hold for every
 * input: each answer the proxy builds serializes to exactly one line; the
 * check params of a call carry the server, the tool and an arguments object;
 * the filter removes exactly the tools it says it removed.
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON; seed it with MCP lines, e.g. an
 * initialize request, a tools/call and a tools/list result.
 */
#include "cli/proxy_msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Serializes msg as the proxy would send it and checks it is one line. */
static void check_line(json_t *msg)
{
    if (msg == NULL)
        return; /* out of memory is the only way to get NULL here */
    size_t len = 0;
    char *line = pmsg_dump(msg, &len);
    if (line != NULL) {
        if (len == 0 || line[len - 1] != '\n' ||
            memchr(line, '\n', len - 1) != NULL || strlen(line) != len)
            abort();
        free(line);
    }
    json_decref(msg);
}

/* Everything the proxy derives from one message. */
static void fuzz_message(const json_t *msg, pmsg_kind kind)
{
    static const char *const notes[] = {NULL, "The user declined."};
    const json_t *id = pmsg_id(msg);
    const json_t *claims = json_object_get(msg, "params");
    pmsg_ident who = {.claims = json_is_object(claims) ? claims : NULL};
    if (who.claims == NULL)
        who.bearer = "token";
    json_t *params = NULL;
    char err[256];
    int rc = pmsg_check_params(msg, "srv", &who, "session", &params, err,
                               sizeof err);
    if (rc == 0) {
        if (!json_is_string(json_object_get(params, "tool")) ||
            !json_is_object(json_object_get(params, "arguments")) ||
            strcmp(json_string_value(json_object_get(params, "server")),
                   "srv") != 0)
            abort();
        json_decref(params);
    } else if (params != NULL || strlen(err) == 0) {
        abort();
    }
    if (kind == PMSG_CALL && !pmsg_valid_id(id))
        abort();

    const char *tool = pmsg_call_tool(msg);
    for (size_t i = 0; i < 2; i++) {
        char *text =
            pmsg_decision_text(msg, "srv", tool ? tool : "?", notes[i]);
        if (text != NULL) {
            check_line(pmsg_tool_error(id, text));
            free(text);
        }
    }
    check_line(pmsg_rpc_error(pmsg_valid_id(id) ? id : NULL,
                              PMSG_INVALID_REQUEST, "invalid request"));
    (void)pmsg_client_elicits(msg);
    pmsg_answer a = pmsg_elicit_answer(msg, err, sizeof err);
    if (a > PMSG_ANSWER_ERROR)
        abort();

    /* As a tools/list response, filtered by a list taken from itself. */
    json_t *copy = json_deep_copy(msg);
    if (copy == NULL)
        return;
    json_t *tools = json_pack("[s, s]", "read", tool ? tool : "x");
    const json_t *list =
        json_object_get(json_object_get(copy, "result"), "tools");
    size_t before = json_array_size(list);
    long removed = tools ? pmsg_filter_tools(copy, tools, false) : 0;
    if (removed >= 0 && json_array_size(json_object_get(
                            json_object_get(copy, "result"), "tools")) +
                                (size_t)removed !=
                            before)
        abort();
    json_decref(tools);
    check_line(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pmsg_line pl;
    char err[256];
    int rc = pmsg_parse_line((const char *)data, size, &pl, err, sizeof err);
    if (rc == PMSG_PARSE_ERROR) {
        check_line(pmsg_rpc_error(NULL, PMSG_PARSE_ERROR, err));
    } else if (rc == 0) {
        /* What reaches the server holds no line break a reader could split
         * on: a CR only as the last byte (of a CRLF line). */
        const uint8_t *cr = memchr(data, '\r', size);
        if (cr != NULL && cr != data + size - 1)
            abort();
        if (pl.batch != json_is_array(pl.root) ||
            (pl.batch && pl.n != json_array_size(pl.root)) ||
            (!pl.batch && pl.n != 1))
            abort();
        for (size_t i = 0; i < pl.n; i++) {
            if (pl.items[i].kind != pmsg_classify(pl.items[i].msg))
                abort();
            fuzz_message(pl.items[i].msg, pl.items[i].kind);
        }
        pmsg_line_free(&pl);
    }
    /* The same bytes as a reply from the daemon. */
    json_t *reply = NULL;
    if (pmsg_parse_reply((const char *)data, size, &reply, err, sizeof err) ==
        0)
        json_decref(reply);
    return 0;
}
