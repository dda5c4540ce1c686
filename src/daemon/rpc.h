/*
 * rpc.h - JSON-RPC 2.0 over lines (DESIGN §3): parsing and validating one
 * request line, writing replies and errors, and answering each method on a
 * worker thread.
 */
#ifndef TRINED_RPC_H
#define TRINED_RPC_H

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/job.h"
#include "lib/util.h"

#include <jansson.h>
#include <stddef.h>

/* JSON-RPC 2.0 error codes. */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603
};

/* The deepest nesting of arrays and objects a request may have. */
#define RPC_MAX_DEPTH 64

/* The message of a -32602 for a check carrying "bearer" when no verifier is
 * configured (no --jwks-url, no --introspection-url). */
#define RPC_BEARER_MSG                                                         \
    "params.bearer: bearer verification is not configured on this daemon; "    \
    "pass validated claims in params.token"

/* The audit id a worker writes into a check's result in place of the real
 * one, which only the writer knows: INT64_MAX has the most digits an id can
 * have, so the writer's id always fits in its place. */
#define RPC_AUDIT_ID_PLACEHOLDER "9223372036854775807"

/* A parsed, validated request. id, method and params point into root. */
typedef struct rpc_request {
    json_t *root;     /* owned */
    const json_t *id; /* NULL when the reply's id must be null */
    const char *method;
    const json_t *params; /* NULL when absent */
} rpc_request;

/* Checks that len bytes at line are valid UTF-8 and nest arrays and objects
 * at most RPC_MAX_DEPTH deep, before any JSON parser sees them. Returns 0,
 * or RPC_PARSE_ERROR with a message in err. */
int rpc_prescan(const char *line, size_t len, char *err, size_t errlen);

/* Parses and validates one request line. Returns 0 with req filled (free
 * with rpc_request_free), or an error code (RPC_PARSE_ERROR,
 * RPC_INVALID_REQUEST) with a message in err; req->id is then the id to
 * echo (NULL: null) and req must still be freed. */
int rpc_parse(const char *line, size_t len, rpc_request *req, char *err,
              size_t errlen);

void rpc_request_free(rpc_request *req);

/* Appends {"jsonrpc":"2.0","id":ID, -- the start every reply shares. */
void rpc_write_head(strbuf *out, const json_t *id);

/* After rpc_write_head: appends "error":{"code":C,"message":M}}\n. */
void rpc_write_error_tail(strbuf *out, int code, const char *msg);

/* Appends a whole error reply line. */
void rpc_write_error(strbuf *out, const json_t *id, int code, const char *msg);

/* Answers j->in on a worker thread. Either j->out then holds the whole
 * reply (j->kind JOB_REPLY), or the job is made ready for the audit writer:
 * JOB_CHECK (with its decision, policy reference and the reply up to the
 * result), JOB_GRANT or JOB_REVOKE (with the parsed request), or, for a
 * bearer check that needs the network, for the token threads: JOB_TOKEN
 * (with the parsed request). */
void rpc_handle(daemon_ctx *ctx, job *j);

/* Finishes a JOB_TOKEN check on a token thread: verifies its bearer token
 * through h (fetching keys or introspecting as needed), then evaluates and
 * renders it as rpc_handle does. The job leaves as JOB_CHECK or JOB_REPLY,
 * its request freed and its request line overwritten. */
void rpc_handle_token(daemon_ctx *ctx, job *j, http_client *h);

#endif /* TRINED_RPC_H */
