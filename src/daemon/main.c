/*
 * main.c - trined: flags and configuration, startup and shutdown.
 *
 * Startup order matters: the socket is claimed before the audit log is
 * opened (a second daemon must fail before touching the first one's log),
 * and signals are blocked before any thread starts, so that only the event
 * loop's signalfd ever sees them.
 */
#include "daemon/config.h"
#include "daemon/consents.h"
#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/secret.h"
#include "daemon/server.h"
#include "daemon/snapshot.h"
#include "daemon/token.h"
#include "daemon/workers.h"
#include "daemon/writer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_WORKERS 64
/* Threads that verify bearer tokens needing the authorization server. */
#define TOKEN_THREADS 4

/* Lets 1,000 and more clients connect: the soft descriptor limit is often
 * 1024, the hard one much higher. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        logline l;
        if (log_begin(&l, LOG_WARN, "nofile_limit")) {
            log_uint(&l, "soft", old);
            log_str(&l, "error", strerror(errno));
            log_end(&l);
        }
    }
}

static int startup_failed(const char *msg)
{
    fprintf(stderr, "trined: %s\n", msg);
    logline l;
    if (log_begin(&l, LOG_ERROR, "startup_failed")) {
        log_str(&l, "error", msg);
        log_end(&l);
    }
    return 1;
}

/* Loads the policy at startup, printing every error. */
static int load_policy(const char *dir, trine_policy **out)
{
    trine_diag *diag = trine_diag_new();
    if (diag == NULL)
        return startup_failed("out of memory");
    int rc = trine_policy_load_dir(dir, diag, out);
    if (rc != 0) {
        if (trine_diag_count(diag) > 0)
            trine_diag_print(diag, stderr);
        char msg[512];
        snprintf(msg, sizeof msg, "cannot load policy %s: %s", dir,
                 trine_strerror(rc));
        trine_diag_free(diag);
        return startup_failed(msg);
    }
    trine_diag_free(diag);
    return 0;
}

/* Makes the bearer token verifier when the configuration asks for one:
 * reads the client secret (warning when others may read its file). Returns
 * 0 with *out (NULL when nothing is configured), or 1 after reporting why
 * it cannot start. */
static int tokens_setup(const trined_config *cfg, token_verifier **out)
{
    *out = NULL;
    if (cfg->jwks_url == NULL && cfg->introspection_url == NULL)
        return 0;
    char *secret = NULL;
    if (cfg->client_secret_file != NULL) {
        char err[512];
        bool world = false;
        int rc = secret_read_file(cfg->client_secret_file, &secret, &world, err,
                                  sizeof err);
        if (rc != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "--client-secret-file %s",
                     rc == TRINE_ENOMEM ? "out of memory" : err);
            return startup_failed(msg);
        }
        logline l;
        if (world && log_begin(&l, LOG_WARN, "client_secret_readable")) {
            log_str(&l, "file", cfg->client_secret_file);
            log_str(&l, "hint", "the file can be read by every user");
            log_end(&l);
        }
    }
    int connect_ms = cfg->http_timeout_ms < HTTP_CONNECT_TIMEOUT_MS
                         ? cfg->http_timeout_ms
                         : HTTP_CONNECT_TIMEOUT_MS;
    token_settings ts = {
        .issuer = cfg->issuer,
        .jwks_url = cfg->jwks_url,
        .introspection_url = cfg->introspection_url,
        .client_id = cfg->client_id,
        .client_secret = secret,
        .http_timeout_ms = cfg->http_timeout_ms,
        .connect_timeout_ms = connect_ms,
        .cache_ttl_s = cfg->token_cache_ttl_s,
        .cache_max = 0,
    };
    int rc = token_verifier_new(&ts, out);
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    if (rc != 0)
        return startup_failed("out of memory");
    logline l;
    if (log_begin(&l, LOG_INFO, "bearer_verification")) {
        log_str(&l, "jwks_url", cfg->jwks_url);
        log_str(&l, "issuer", cfg->issuer);
        log_str(&l, "introspection_url", cfg->introspection_url);
        log_int(&l, "http_timeout_ms", cfg->http_timeout_ms);
        log_int(&l, "token_cache_ttl", cfg->token_cache_ttl_s);
        log_end(&l);
    }
    return 0;
}

static int workers_wanted(const trined_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

static int run(const trined_config *cfg)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    trine_policy *policy = NULL;
    if (load_policy(cfg->policy, &policy) != 0)
        return 1;

    char err[1024] = "";
    int status = 1;
    daemon_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = cfg;
    atomic_init(&ctx.evaluating, 0);
    server *srv = NULL;
    snapshot *snap = NULL;
    workers *pool = NULL;
    workers *token_pool = NULL;
    bool doneq_ready = false;

    if (server_open(cfg, &srv, err, sizeof err) != 0) {
        trine_policy_release(policy);
        return startup_failed(err);
    }
    if (doneq_init(&ctx.done) != 0) {
        startup_failed("cannot create an eventfd");
        goto out;
    }
    doneq_ready = true;
    if (consents_new(&ctx.grants) != 0) {
        startup_failed("out of memory");
        goto out;
    }
    if (snapshot_new(policy, cfg->policy, &snap) != 0) {
        startup_failed("out of memory");
        goto out;
    }
    policy = NULL;
    ctx.snap = snap;
    if (writer_start(&ctx, &ctx.writer, err, sizeof err) != 0) {
        startup_failed(err);
        goto out;
    }
    if (snapshot_start_reloader(snap) != 0) {
        startup_failed("cannot start the reload thread");
        goto out;
    }
    if (tokens_setup(cfg, &ctx.tokens) != 0)
        goto out;
    if (ctx.tokens != NULL &&
        token_workers_start(&ctx, TOKEN_THREADS, &token_pool) != 0) {
        startup_failed("cannot start the token threads");
        goto out;
    }
    ctx.token_pool = token_pool;
    int nworkers = workers_wanted(cfg);
    if (workers_start(&ctx, nworkers, &pool) != 0) {
        startup_failed("cannot start the worker threads");
        goto out;
    }

    trine_policy *p = snapshot_acquire(snap);
    logline l;
    if (log_begin(&l, LOG_INFO, "listening")) {
        log_str(&l, "socket",
                server_activated(srv) ? "systemd:3" : cfg->socket);
        log_str(&l, "policy", cfg->policy);
        log_str(&l, "revision", trine_policy_revision(p));
        log_str(&l, "audit", cfg->audit);
        log_int(&l, "workers", nworkers);
        log_uint(&l, "consents", consents_count(ctx.grants));
        log_end(&l);
    }
    trine_policy_release(p);

    status = server_run(srv, &ctx, pool, snap) == 0 ? 0 : 1;

out:
    /* Order: no new work (loop ended), let the workers finish what they
     * hold, then the token threads (whose transfers and waits give up at
     * once now), then the writer commits the last rows and releases their
     * replies; only then can the connections and the queues go. */
    if (ctx.tokens != NULL)
        token_stop(ctx.tokens);
    workers_stop(pool);
    workers_stop(token_pool);
    writer_stop(ctx.writer);
    if (srv != NULL)
        server_free(srv, doneq_ready ? &ctx : NULL);
    snapshot_free(snap);
    trine_policy_release(policy);
    consents_free(ctx.grants);
    token_verifier_free(ctx.tokens);
    if (doneq_ready)
        doneq_destroy(&ctx.done);
    if (status == 0 && log_begin(&l, LOG_INFO, "stopped"))
        log_end(&l);
    return status;
}

int main(int argc, char **argv)
{
    trined_config cfg;
    if (config_init(&cfg) != 0) {
        fputs("trined: out of memory\n", stderr);
        return 1;
    }
    char err[512] = "";
    int rc = config_parse_args(&cfg, argc, argv, err, sizeof err);
    if (rc == 0 && cfg.help) {
        config_usage(stdout);
        config_free(&cfg);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "trined: %s\n",
                rc == TRINE_ENOMEM ? "out of memory" : err);
        if (rc == CONFIG_EUSAGE)
            config_usage(stderr);
        config_free(&cfg);
        return rc == CONFIG_EUSAGE ? 2 : 1;
    }
    log_set_level(cfg.log_level);
    if (http_global_init() != 0) {
        rc = startup_failed("cannot initialise libcurl");
        config_free(&cfg);
        return rc;
    }
    rc = run(&cfg);
    config_free(&cfg);
    http_global_cleanup();
    return rc;
}
