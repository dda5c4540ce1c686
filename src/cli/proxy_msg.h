/*
 * proxy_msg.h - the messages of `trine proxy`, without any I/O: reading a
 * line of MCP traffic (newline-delimited JSON-RPC 2.0), building the
 * daemon's check parameters for a tools/call, and building what the proxy
 * answers by itself (isError results, JSON-RPC errors, elicitation
 * requests), and filtering a tools/list result.
 *
 * Everything here works on one message at a time and keeps no state, so it
 * can be unit-tested and fuzzed alone; src/cli/proxy.c owns the processes,
 * the sockets and the order of events.
 */
#ifndef TRINE_CLI_PROXY_MSG_H
#define TRINE_CLI_PROXY_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* JSON-RPC 2.0 error codes the proxy answers with. */
enum {
    PMSG_PARSE_ERROR = -32700,
    PMSG_INVALID_REQUEST = -32600,
    PMSG_INVALID_PARAMS = -32602,
    PMSG_INTERNAL_ERROR = -32603
};

/* The ids of the proxy's own requests to the client start with this; a
 * response with such an id is never forwarded to the server. */
#define PMSG_OWN_ID_PREFIX "trine-proxy-"

/* What one message of a line is. */
typedef enum pmsg_kind {
    PMSG_OTHER,        /* any other request or notification: forwarded */
    PMSG_CALL,         /* a tools/call request (with an id) */
    PMSG_CALL_NOTIFY,  /* a tools/call without an id: never forwarded */
    PMSG_LIST,         /* a tools/list request (with an id) */
    PMSG_INITIALIZE,   /* an initialize request */
    PMSG_CANCEL,       /* a notifications/cancelled notification */
    PMSG_RESPONSE,     /* a response (result or error) to the server */
    PMSG_OWN_RESPONSE, /* a response to one of the proxy's own requests */
    PMSG_INVALID       /* not a JSON-RPC message: answered with -32600 */
} pmsg_kind;

/* One message of a line. msg is borrowed from the line's root. */
typedef struct pmsg_item {
    pmsg_kind kind;
    json_t *msg;
} pmsg_item;

/* A parsed line: one message, or a batch (a JSON array) of them. */
typedef struct pmsg_line {
    json_t *root; /* owned */
    bool batch;
    size_t n;
    pmsg_item *items; /* owned; n entries (0 for an empty batch) */
} pmsg_line;

/* Parses one line from the client (len bytes, no newline) and classifies
 * each message. Duplicate object keys, and a carriage return anywhere but
 * at the very end, are refused: the proxy and the server must read the
 * same requests. Returns 0 with *out filled (release
 * with pmsg_line_free), PMSG_PARSE_ERROR with a message in err when the
 * line is not JSON, or TRINE_ENOMEM. A JSON value that is neither an
 * object nor an array is one PMSG_INVALID item. */
int pmsg_parse_line(const char *buf, size_t len, pmsg_line *out, char *err,
                    size_t errlen);

/* Releases what pmsg_parse_line filled; the line may be zeroed or freed
 * twice safely. */
void pmsg_line_free(pmsg_line *line);

/* Classifies one message (a JSON value) as pmsg_parse_line does. */
pmsg_kind pmsg_classify(const json_t *msg);

/* Returns the id of a message (borrowed), or NULL when it has none. */
const json_t *pmsg_id(const json_t *msg);

/* True when a tools/call or tools/list id is one the proxy can answer: a
 * string or an integer (JSON-RPC also allows other numbers; MCP does not). */
bool pmsg_valid_id(const json_t *id);

/* The identity a check carries: token claims (a JSON object), or a bearer
 * access token for the daemon to verify. Exactly one is set. */
typedef struct pmsg_ident {
    const json_t *claims;
    const char *bearer;
} pmsg_ident;

/* Builds the params of the daemon's `check` for a tools/call message:
 * {server, tool: params.name, arguments: params.arguments (absent or null
 * -> {}), token | bearer, session}. Returns 0 with *out (a new reference),
 * PMSG_INVALID_PARAMS with a message in err naming the field when the
 * call's params are malformed, or TRINE_ENOMEM. */
int pmsg_check_params(const json_t *call, const char *server,
                      const pmsg_ident *who, const char *session, json_t **out,
                      char *err, size_t errlen);

/* Returns params.name of a tools/call (borrowed), or NULL. */
const char *pmsg_call_tool(const json_t *call);

/* Builds a JSON-RPC response for id whose result is a tool result
 * {"content":[{"type":"text","text":TEXT}],"isError":true}. Returns a new
 * reference, or NULL when out of memory. */
json_t *pmsg_tool_error(const json_t *id, const char *text);

/* Builds a JSON-RPC error response {"jsonrpc":"2.0","id":ID,"error":
 * {"code":CODE,"message":MESSAGE}}; a NULL id is written as null. Returns a
 * new reference, or NULL when out of memory. */
json_t *pmsg_rpc_error(const json_t *id, int code, const char *message);

/* Serializes msg as one compact line ending in '\n'. Returns a malloc'd
 * buffer with *len (caller frees), or NULL when out of memory. */
char *pmsg_dump(const json_t *msg, size_t *len);

/* Builds the text of an isError result for a check result that is not an
 * allow: the reason code, the first reason's detail, and what would fix it
 * (for scope_missing: the required scopes and the www_authenticate value;
 * for consent_required: the prompt and, when the client could not be
 * asked, how to grant it by hand). server and tool name the call.
 * `consent_note` is appended when given (why consent was not obtained).
 * Returns a malloc'd string, or NULL when out of memory. */
char *pmsg_decision_text(const json_t *result, const char *server,
                         const char *tool, const char *consent_note);

/* Builds the text for a call that could not be decided because the daemon
 * could not be asked or did not answer ("authorization unavailable:
 * WHY ..."). Returns a malloc'd string, or NULL when out of memory. */
char *pmsg_unavailable_text(const char *why);

/* True when an initialize request declares the elicitation capability in
 * a form the proxy can use (form mode: an empty `elicitation` object, or
 * one with `form`). */
bool pmsg_client_elicits(const json_t *initialize);

/* Builds the proxy's elicitation/create request with string id `id`,
 * whose message is the policy's consent `prompt`. The requested schema is
 * an object with no properties: accepting is the approval, and there is
 * nothing to fill in. Returns a new reference, or NULL when out of
 * memory. */
json_t *pmsg_elicit_request(const char *id, const char *prompt);

/* The outcome of an elicitation, read from the client's response. */
typedef enum pmsg_answer {
    PMSG_ANSWER_ACCEPT,
    PMSG_ANSWER_DECLINE,
    PMSG_ANSWER_CANCEL,
    PMSG_ANSWER_ERROR /* an error response, or a result that is malformed */
} pmsg_answer;

/* Reads the client's response to an elicitation; for PMSG_ANSWER_ERROR,
 * a short description goes into err. */
pmsg_answer pmsg_elicit_answer(const json_t *response, char *err,
                               size_t errlen);

/* Reads a daemon reply line. Returns 0 with *out (a new reference to the
 * whole reply object), or -1 with a message in err (not JSON, not an
 * object). */
int pmsg_parse_reply(const char *buf, size_t len, json_t **out, char *err,
                     size_t errlen);

/* Filters the result of a tools/list response in place: removes every tool
 * whose name is not in `tools` (a JSON array of strings, from the daemon's
 * policy.tools) unless `wildcard`. Returns the number of tools removed
 * (0: the message is unchanged and may be forwarded as it came), or -1 when
 * the response carries no tools array (it is left as it is). */
long pmsg_filter_tools(json_t *response, const json_t *tools, bool wildcard);

#endif /* TRINE_CLI_PROXY_MSG_H */
