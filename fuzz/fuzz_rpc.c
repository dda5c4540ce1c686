/*
 * fuzz_rpc.c - a libFuzzer target for what a client sends trined: any bytes
 * go through the line framer of a connection (with a small --max-line, so
 * oversized lines are reached too) and every line through rpc_handle, the
 * request validation and method dispatch the workers run.
 *
 * Besides crashes and sanitizer reports, it checks what must hold for every
 * line: a line answered at once gets exactly one reply line that parses as
 * a JSON-RPC 2.0 response; a check that reaches the writer carries its
 * audit row and the start of its reply; and whatever the fast request
 * reader returns is exactly what jansson returns for the same line.
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON; seed it with request lines, e.g.
 * the §3.1 example of DESIGN.md.
 */
#include "daemon/conn.h"
#include "daemon/consents.h"
#include "daemon/rpc.h"
#include "daemon/rpcjson.h"
#include "daemon/snapshot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_src[] =
    "server \"github\" { audience \"https://mcp.example.com/github\" }\n"
    "scope \"repo:write\" { allow repo.read, issues.* on \"repo:*\" }\n"
    "role maintainer { allow issues.* on \"repo:acme/*\" }\n"
    "user \"alice\" { roles maintainer }\n"
    "agent \"claude-desktop\" { allow issues.create on \"repo:*\" }\n"
    "tool \"github\" \"create_issue\" {\n"
    "  needs issues.create on \"repo:{owner}/{repo}\"\n"
    "  arg title max_length 256\n"
    "  consent session \"Let {agent} open issues in {owner}/{repo}?\"\n"
    "}\n";

static daemon_ctx ctx;
static trined_config cfg;

static void fuzz_init(void)
{
    trine_source src = {"github.trine", policy_src, sizeof policy_src - 1};
    trine_policy *p = NULL;
    snapshot *snap = NULL;
    consents *grants = NULL;
    if (trine_policy_load_sources(&src, 1, NULL, &p) != 0 ||
        snapshot_new(p, "/nonexistent", &snap) != 0 ||
        consents_new(&grants) != 0 || config_init(&cfg) != 0)
        abort();
    ctx.cfg = &cfg;
    ctx.snap = snap;
    ctx.grants = grants;
}

/* Checks the fast reader against jansson on one line: what it takes must
 * pass the prescan and be what jansson makes of it, key order included. */
static void fuzz_check_reader(const char *line, size_t len)
{
    json_t *fast = rpc_json_read(line, len);
    if (fast == NULL)
        return;
    char err[128];
    json_t *ref =
        json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;
    char *a = json_dumps(fast, flags);
    char *b = ref != NULL ? json_dumps(ref, flags) : NULL;
    if (rpc_prescan(line, len, err, sizeof err) != 0 || ref == NULL ||
        !json_equal(fast, ref) || a == NULL || b == NULL || strcmp(a, b) != 0)
        abort();
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
}

/* Checks one answered job. */
static void fuzz_check_job(job *j)
{
    if (j->kind != JOB_REPLY) {
        if (j->kind == JOB_CHECK &&
            (job_col_text(j, JCOL_DECISION) == NULL ||
             job_col_text(j, JCOL_POLICY_REV) == NULL ||
             j->id_off <= j->prefix_len ||
             memcmp(j->out.data + j->id_off, RPC_AUDIT_ID_PLACEHOLDER,
                    sizeof RPC_AUDIT_ID_PLACEHOLDER - 1) != 0))
            abort();
        return;
    }
    const char *out = j->out.data;
    size_t n = j->out.len;
    if (n == 0 || out[n - 1] != '\n' || memchr(out, '\n', n) != out + n - 1)
        abort();
    json_error_t e;
    json_t *r = json_loadb(out, n - 1, 0, &e);
    if (r == NULL || !json_is_string(json_object_get(r, "jsonrpc")) ||
        json_object_get(r, "id") == NULL ||
        (json_object_get(r, "result") == NULL) ==
            (json_object_get(r, "error") == NULL))
        abort();
    json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ctx.snap == NULL)
        fuzz_init();
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0)
        return 0;
    conn *c = conn_new(fds[0], 1, 512);
    jobpool pool = {.max = 8};
    if (c == NULL) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    /* The input arrives in one write (a socketpair holds far more than
     * libFuzzer's default input size). */
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fds[1], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fds[1], SHUT_WR);
    for (int round = 0; round < 64 && !c->eof; round++) {
        jobq batch = {0};
        conn_read(c, &pool, &batch, 1 << 20);
        jobq next = {0};
        while (batch.head != NULL) {
            for (job *j = jobq_pop(&batch); j != NULL; j = jobq_pop(&batch)) {
                fuzz_check_reader(j->in.data ? j->in.data : "", j->in.len);
                rpc_handle(&ctx, j);
                fuzz_check_job(j);
                /* No writer here: a check or a consent change is done as
                 * it is. */
                conn_job_done(c, j, &next);
            }
            jobq_append(&batch, &next);
        }
        conn_collect(c, &pool);
        conn_update_pause(c);
    }
    /* Lines still held (the rounds ran out) are dropped unanswered. */
    for (job *j = c->fifo_head; j != NULL; j = j->conn_next)
        j->done = true;
    memset(&c->held, 0, sizeof c->held);
    c->barrier = NULL;
    c->closing = true;
    conn_collect(c, &pool);
    conn_free(c);
    close(fds[1]);
    jobpool_free(&pool);
    return 0;
}
