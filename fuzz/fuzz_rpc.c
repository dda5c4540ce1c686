/*
 * fuzz_rpc.c - a libFuzzer target for what a client sends trined: any bytes
 * go through the line framer of a connection (with a small --max-line, so
 * oversized lines are reached too) and every line through rpc_handle, the
 * request validation, method dispatch and evaluation the workers run. The
 * policy (DESIGN §2.3, and a server with a delegation chain rule) is loaded
 * once, and the consent cache holds a session and an `always` grant, so
 * checks reach every decision. Bearer tokens are verified too: the token
 * verifier's authorization server is a stand-in in this process that
 * serves a fixed key set (the test keys of fuzz_keys.h) and answers
 * introspection, so both the local path and the token threads' path
 * (rpc_handle_token) run without a network.
 *
 * A check that reaches the writer is finished as the writer finishes it,
 * without the database: its audit id goes in, its audit row is hashed
 * (audit_hash_row, what the store appends), and its reply is completed.
 *
 * Besides crashes and sanitizer reports, it checks what must hold for every
 * line: a line answered at once gets exactly one reply line that parses as
 * a JSON-RPC 2.0 response; a check's audit row has its columns, its detail
 * is the result object with the audit id, decision and reason of the row,
 * its arguments and chain columns are JSON; and whatever the fast request
 * reader returns is exactly what jansson returns for the same line; and a
 * bearer token never shows in a reply or an audit row (DESIGN §5).
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON; scripts/fuzz seeds it with the
 * requests of policy-examples/ (fuzz/make_seeds.py), and with the bearer
 * requests the target writes itself when TRINE_FUZZ_SEEDS names a
 * directory (signed tokens need its keys).
 */
#define _GNU_SOURCE /* memmem */

#include "fuzz_keys.h"

#include "daemon/conn.h"
#include "daemon/consents.h"
#include "daemon/rpc.h"
#include "daemon/rpcjson.h"
#include "daemon/snapshot.h"
#include "daemon/token.h"
#include "daemon/writer.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The longest line taken; longer ones get the oversize error. */
#define FUZZ_MAX_LINE 2048

static const char policy_src[] =
    "server \"github\" {\n"
    "  audience \"https://mcp.example.com/github\"\n"
    "  resource_metadata \"https://mcp.example.com/.well-known/rm\"\n"
    "}\n"
    "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*\" }\n"
    "scope \"repo:write\" { allow repo.read, repo.write, issues.* on "
    "\"repo:*\" }\n"
    "scope \"admin\"      { allow repo.* on \"repo:*\" }\n"
    "role maintainer {\n"
    "  allow repo.*, issues.* on \"repo:acme/*\"\n"
    "  deny  repo.delete      on \"repo:acme/prod-*\"\n"
    "}\n"
    "role reader { allow repo.read, issues.read on \"repo:acme/*\" }\n"
    "user \"alice\"     { roles maintainer }\n"
    "group \"acme-eng\" { roles reader }\n"
    "user *           { roles reader }\n"
    "agent \"claude-desktop\" { allow repo.read, repo.write, issues.read, "
    "issues.create on \"repo:*\" }\n"
    "agent \"ops-console\"    { allow repo.*, issues.* on \"repo:*\" }\n"
    "agent \"ci-bot\"         { allow repo.read on \"repo:*\" }\n"
    "agent *                { deny repo.delete on \"repo:*/prod-*\" }\n"
    "tool \"github\" \"get_issue\" {\n"
    "  needs issues.read on \"repo:{owner}/{repo}\"\n"
    "}\n"
    "tool \"github\" \"create_issue\" {\n"
    "  needs issues.create on \"repo:{owner}/{repo}\"\n"
    "  arg owner matches /[A-Za-z0-9-]{1,39}/\n"
    "  arg title max_length 256\n"
    "  arg title required\n"
    "  consent session \"Let {agent} open issues in {owner}/{repo} for this "
    "session?\"\n"
    "  redact body\n"
    "}\n"
    "tool \"github\" \"delete_repo\" {\n"
    "  needs repo.delete on \"repo:{owner}/{repo}\"\n"
    "  consent always \"Delete {owner}/{repo}? This cannot be undone.\"\n"
    "}\n"
    "forbid * on \"repo:acme/secrets\"\n"
    "server \"fs\" { delegation full_chain }\n"
    "scope \"files\" { allow files.* on \"path:*\" }\n"
    "role reader { allow files.read on \"path:/srv/*\" }\n"
    "agent \"ci-bot\" { allow files.* on \"path:*\" }\n"
    "tool \"fs\" * {\n"
    "  needs files.read on \"path:{path...}\"\n"
    "  arg depth <= 3\n"
    "  arg mode in [\"r\", 1, true]\n"
    "  consent once for 1h\n"
    "  redact secret.value\n"
    "}\n";

static daemon_ctx ctx;
static trined_config cfg;

#define ISSUER "https://issuer.example"
#define AUDIENCE "https://mcp.example.com/github"

/* The authorization server's key set: one key of each type. */
static const char *const key_pems[] = {fuzz_rsa_pem, fuzz_ec_pem, fuzz_ed_pem};
static const char *const key_algs[] = {"RS256", "ES256", "EdDSA"};
static const char *const key_kids[] = {"rsa1", "ec1", "ed1"};
#define NKEYS 3
static EVP_PKEY *keys[NKEYS];
static char *jwks_doc;

/* The stand-in authorization server: GET serves the key set, POST is
 * introspection, which knows one active opaque token. */
static int as_get(void *c, http_client *h, const char *url, http_response *r,
                  char *err, size_t errlen)
{
    r->status = 200;
    r->max_age_s = -1;
    sb_puts(&r->body, jwks_doc);
    return r->body.oom ? TRINE_ENOMEM : 0;
}

static int as_post(void *c, http_client *h, const char *url, const char *body,
                   size_t len, const char *authorization, http_response *r,
                   char *err, size_t errlen)
{
    static const char good[] = "token=opaque-good-0123456789&";
    bool active =
        len >= sizeof good - 1 && memcmp(body, good, sizeof good - 1) == 0;
    r->status = 200;
    r->max_age_s = -1;
    sb_puts(&r->body, active
                          ? "{\"active\":true,\"sub\":\"alice\",\"scope\":"
                            "\"repo:write\",\"client_id\":\"claude-desktop\","
                            "\"aud\":\"" AUDIENCE "\",\"exp\":4102444800}"
                          : "{\"active\":false}");
    return r->body.oom ? TRINE_ENOMEM : 0;
}

/* Loads the keys and makes the key set document. */
static void fuzz_keys_init(void)
{
    char *jwk[NKEYS];
    for (size_t i = 0; i < NKEYS; i++) {
        keys[i] = fuzz_key_load(key_pems[i]);
        jwk[i] = keys[i] != NULL ? fx_jwk(keys[i], key_kids[i], NULL) : NULL;
        if (jwk[i] == NULL)
            abort();
    }
    jwks_doc = fx_printf("{\"keys\":[%s,%s,%s]}", jwk[0], jwk[1], jwk[2]);
    if (jwks_doc == NULL)
        abort();
    for (size_t i = 0; i < NKEYS; i++)
        free(jwk[i]);
}

/* Makes the token verifier, with its key set already fetched. */
static void fuzz_tokens_init(void)
{
    token_settings s = {.issuer = ISSUER,
                        .jwks_url = "https://as.example/jwks",
                        .introspection_url = "https://as.example/introspect",
                        .client_id = "trine",
                        .client_secret = "secret",
                        .http_timeout_ms = 1000,
                        .connect_timeout_ms = 1000};
    token_verifier *v = NULL;
    if (token_verifier_new(&s, &v) != 0)
        abort();
    token_transport t = {as_get, as_post, NULL};
    token_set_transport(v, &t);
    token_prefetch(v, NULL, log_now_ms());
    ctx.tokens = v;
}

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
    /* A session grant for the §3.1 request, and a single-use grant bound
     * to the arguments {"owner":"acme","repo":"widgets"}. */
    static const char args[] = "{\"owner\":\"acme\",\"repo\":\"widgets\"}";
    char hex[65];
    trine_sha256_hex(args, sizeof args - 1, hex);
    consent_row rows[] = {
        {.id = 1,
         .user = "alice",
         .agent = "claude-desktop",
         .server = "github",
         .tool = "create_issue",
         .mode = "session",
         .session = "mcp-session-4f2a",
         .granted_ms = 1,
         .expires_ms = -1,
         .revoked_ms = -1,
         .used_ms = -1,
         .decision_id = -1},
        {.id = 2,
         .user = "alice",
         .agent = "ops-console",
         .server = "github",
         .tool = "delete_repo",
         .mode = "always",
         .args_sha256 = hex,
         .granted_ms = 1,
         .expires_ms = -1,
         .revoked_ms = -1,
         .used_ms = -1,
         .decision_id = -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (consents_add(grants, &rows[i]) != 0)
            abort();
    }
    fuzz_keys_init();
    fuzz_tokens_init();
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
    json_t *ref = json_loadb(
        line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
        NULL);
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

/* Parses a column that holds JSON text (NULL passes). */
static json_t *fuzz_json_col(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (v == NULL) {
        fprintf(stderr, "fuzz_rpc: not JSON (%s): %s\n", e.text, text);
        abort();
    }
    return v;
}

static bool fuzz_col_is(const job *j, job_col k, const json_t *v)
{
    const char *t = job_col_text(j, k);
    return t != NULL && json_is_string(v) &&
           strcmp(json_string_value(v), t) == 0;
}

/* Finishes a check as the audit writer does, without the database: puts
 * audit id 42 in its place, hashes the row, completes the reply and gives
 * back a single-use grant it claimed (so every input starts from the same
 * cache). Checks the row on the way. */
static void fuzz_finish_check(job *j)
{
    audit_row row;
    if (writer_row(j, 42, &row) != 0)
        abort();
    unsigned char hash[32];
    if (row.server == NULL || row.tool == NULL || row.reason == NULL ||
        audit_hash_row(&row, hash) != 0)
        abort();
    if (row.args_sha256 != NULL && strlen(row.args_sha256) != 64)
        abort();

    json_t *detail = fuzz_json_col(row.detail);
    json_t *id = json_object_get(detail, "audit_id");
    if (!json_is_integer(id) || json_integer_value(id) != 42 ||
        !fuzz_col_is(j, JCOL_DECISION, json_object_get(detail, "decision")) ||
        !fuzz_col_is(j, JCOL_REASON, json_object_get(detail, "reason")) ||
        !fuzz_col_is(j, JCOL_POLICY_REV,
                     json_object_get(detail, "policy_revision")))
        abort();
    json_decref(detail);
    if (row.arguments != NULL)
        json_decref(fuzz_json_col(row.arguments));
    if (row.chain != NULL) {
        json_t *chain = fuzz_json_col(row.chain);
        if (!json_is_array(chain))
            abort();
        json_decref(chain);
    }

    sb_puts(&j->out, "}\n");
    if (j->claimed >= 0)
        consents_release(ctx.grants, j->claimed);
    j->kind = JOB_REPLY;
}

/* The bearer token of a request line, when it has one long enough to look
 * for, that occurs once in the line as it is: copied into a new string. */
static char *fuzz_bearer_of(const char *line, size_t len)
{
    json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    const json_t *b = json_object_get(json_object_get(req, "params"), "bearer");
    char *out = NULL;
    if (json_is_string(b) && json_string_length(b) >= 16 &&
        strlen(json_string_value(b)) == json_string_length(b)) {
        const char *t = json_string_value(b);
        size_t n = strlen(t);
        const char *at = memmem(line, len, t, n);
        if (at != NULL &&
            memmem(at + 1, len - (size_t)(at + 1 - line), t, n) == NULL)
            out = strdup(t);
    }
    json_decref(req);
    return out;
}

/* The token must not be in the reply, nor in any audit column. */
static void fuzz_check_no_token(const job *j, const char *token)
{
    if (token == NULL)
        return;
    size_t n = strlen(token);
    if (memmem(j->out.data, j->out.len, token, n) != NULL)
        abort();
    if (j->kind != JOB_CHECK)
        return;
    for (int k = 0; k < JCOL_COUNT; k++) {
        const char *t = job_col_text(j, (job_col)k);
        if (t != NULL && strstr(t, token) != NULL)
            abort();
    }
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
    /* Strings may hold \u0000, as in requests (an echoed id, say). */
    json_t *r = json_loadb(out, n - 1, JSON_ALLOW_NUL, &e);
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
    conn *c = conn_new(fds[0], 1, FUZZ_MAX_LINE);
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
                char *token =
                    fuzz_bearer_of(j->in.data ? j->in.data : "", j->in.len);
                rpc_handle(&ctx, j);
                if (j->kind == JOB_TOKEN) {
                    /* What a token thread does, with the stand-in
                     * server. */
                    rpc_handle_token(&ctx, j, NULL);
                }
                fuzz_check_job(j);
                fuzz_check_no_token(j, token);
                if (j->kind == JOB_CHECK) {
                    fuzz_finish_check(j);
                    fuzz_check_job(j);
                    fuzz_check_no_token(j, token);
                }
                free(token);
                if (getenv("FUZZ_RPC_TRACE") != NULL)
                    fprintf(stderr, "reply: %.*s", (int)j->out.len,
                            j->out.data);
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

/* ---- Seeds --------------------------------------------------------------- */

/* Writes one request line with a bearer token into dir. */
static void fuzz_write_bearer(const char *dir, const char *name,
                              const char *bearer)
{
    char *line = fx_printf(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"check\",\"params\":{"
        "\"server\":\"github\",\"tool\":\"create_issue\",\"arguments\":{"
        "\"owner\":\"acme\",\"repo\":\"widgets\",\"title\":\"t\"},"
        "\"session\":\"mcp-session-4f2a\",\"bearer\":\"%s\"}}\n",
        bearer);
    char *path = fx_printf("%s/%s", dir, name);
    FILE *f = path != NULL ? fopen(path, "wb") : NULL;
    if (line == NULL || f == NULL || fputs(line, f) == EOF || fclose(f) != 0)
        abort();
    free(line);
    free(path);
}

/* Writes bearer check requests: good tokens of every key, and tokens that
 * fail each way (expired, audience, issuer, typ, an unknown kid that makes
 * the verifier refetch), and opaque ones for introspection. */
static void fuzz_write_seeds(const char *dir)
{
    static const char *const payloads[] = {
        "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\",\"aud\":\"" AUDIENCE "\","
        "\"scope\":\"repo:write\",\"client_id\":\"claude-desktop\","
        "\"exp\":4102444800,\"jti\":\"j1\"}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\",\"aud\":\"" AUDIENCE "\","
        "\"exp\":1000}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"alice\",\"aud\":\"https://x\","
        "\"exp\":4102444800}",
        "{\"iss\":\"https://evil\",\"sub\":\"alice\",\"exp\":4102444800}",
        "{\"iss\":\"" ISSUER "\",\"aud\":[\"" AUDIENCE "\"],"
        "\"exp\":4102444800,\"act\":{\"sub\":\"ci-bot\"}}",
    };
    char name[64];
    for (size_t i = 0; i < NKEYS; i++) {
        for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
            const char *kid = k == 4 && i == 0 ? "rotated" : key_kids[i];
            char *h = fx_printf("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":"
                                "\"at+jwt\"}",
                                key_algs[i], kid);
            char *t = h != NULL ? fx_token(keys[i], h, payloads[k]) : NULL;
            if (t == NULL)
                abort();
            snprintf(name, sizeof name, "bearer-%s-%zu", key_kids[i], k);
            fuzz_write_bearer(dir, name, t);
            free(h);
            free(t);
        }
    }
    fuzz_write_bearer(dir, "bearer-opaque-good", "opaque-good-0123456789");
    fuzz_write_bearer(dir, "bearer-opaque-bad", "opaque-bad-0123456789");
    fuzz_write_bearer(dir, "bearer-none", "eyJhbGciOiJub25lIn0.e30.");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("TRINE_FUZZ_SEEDS");
    if (dir == NULL)
        return 0;
    fuzz_keys_init();
    fuzz_write_seeds(dir);
    exit(0);
}
