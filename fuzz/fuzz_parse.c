/*
 * fuzz_parse.c - a libFuzzer target for the policy source: any bytes go to
 * parse_source and trine_format.
 *
 * A source that parses is also loaded (compiled: regexes, templates, the
 * merge rules of §2.5), linted, and asked a few check requests; so is its
 * formatted text.
 *
 * Besides crashes and sanitizer reports, it checks what must hold for every
 * input: a failed parse reports at least one error and returns no tree; a
 * source formats exactly when it parses; the formatted text parses to as
 * many statements, and formatting it again changes nothing; a failed load
 * reports an error; and formatting never changes what a policy means: the
 * formatted text loads exactly when the source does, with the same block
 * counts, and decides every request the same way.
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON; scripts/fuzz seeds it with the
 * .trine files of the repository and the policy sources of the unit tests
 * (fuzz/make_seeds.py).
 */
#include "lib/ast.h"
#include "lib/parser.h"
#include "trine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_statements(const char *text, size_t len, int *rc)
{
    trine_source src = {"fuzz.trine", text, len};
    ast_file *f = NULL;
    *rc = parse_source(&src, NULL, &f);
    size_t n = f != NULL ? f->nstmts : 0;
    ast_free(f);
    return n;
}

/* Requests asked of every policy that loads: the §3.1 request, one with a
 * delegation chain, and one for an unknown server. */
static const char *const requests[] = {
    "{\"server\":\"github\",\"tool\":\"create_issue\",\"arguments\":"
    "{\"owner\":\"acme\",\"repo\":\"widgets\",\"title\":\"x\",\"p\":"
    "\"a/b\"},\"session\":\"s1\",\"token\":{\"sub\":\"alice\",\"scope\":"
    "\"repo:read repo:write admin\",\"client_id\":\"claude-desktop\","
    "\"aud\":\"https://mcp.example.com/github\",\"groups\":[\"acme-eng\"]}}",
    "{\"server\":\"fs\",\"tool\":\"read\",\"arguments\":{\"path\":"
    "\"/srv/x\"},\"token\":{\"sub\":\"bob\",\"scp\":[\"files\"],\"azp\":"
    "\"ci-bot\",\"roles\":\"admin\",\"act\":{\"sub\":\"svc\",\"act\":"
    "{\"client_id\":\"ci-bot\"}}}}",
    "{\"server\":\"x\",\"tool\":\"y\",\"arguments\":{},\"token\":{}}",
};
#define NREQUESTS (sizeof requests / sizeof requests[0])

/* Loads n bytes of source as one file. Returns 0 with *out, or the error
 * (a failure without TRINE_ENOMEM must say why in diag). */
static int load(const char *text, size_t n, trine_policy **out)
{
    trine_source src = {"fuzz.trine", text, n};
    trine_diag *diag = trine_diag_new();
    if (diag == NULL)
        return TRINE_ENOMEM;
    int rc = trine_policy_load_sources(&src, 1, diag, out);
    if (rc == TRINE_EPOLICY && trine_diag_errors(diag) == 0)
        abort();
    if ((rc == 0) != (*out != NULL))
        abort();
    if (rc == 0)
        (void)trine_policy_lint(*out, diag);
    trine_diag_free(diag);
    return rc;
}

/* Decides request i on p into kind and reason (static strings). Returns 0
 * or a TRINE_E* code. */
static int decide(const trine_policy *p, size_t i, const char **kind,
                  const char **reason)
{
    json_t *params = json_loads(requests[i], 0, NULL);
    if (params == NULL)
        return TRINE_ENOMEM;
    trine_check_opts opts = {1767225600000, NULL, NULL};
    trine_decision *d = NULL;
    int rc = trine_check(p, params, &opts, &d, NULL, 0);
    if (rc == 0) {
        *kind = trine_decision_kind(d);
        *reason = trine_decision_reason(d);
        /* The result is JSON, whatever the policy's strings hold. */
        json_t *r = trine_decision_result(d);
        if (r == NULL)
            abort();
        json_decref(r);
    }
    trine_decision_free(d);
    json_decref(params);
    return rc;
}

/* The meaning of a source survives formatting: both load or neither, with
 * the same counts of blocks and rules, and every request gets the same
 * decision. */
static void check_same_meaning(const char *text, size_t n, const char *out,
                               size_t outlen)
{
    trine_policy *a = NULL;
    trine_policy *b = NULL;
    int ra = load(text, n, &a);
    int rb = load(out, outlen, &b);
    if (ra == TRINE_ENOMEM || rb == TRINE_ENOMEM)
        goto done;
    if ((ra == 0) != (rb == 0))
        abort();
    if (ra != 0)
        goto done;
    json_t *sa = trine_policy_status(a);
    json_t *sb = trine_policy_status(b);
    if (sa == NULL || sb == NULL ||
        !json_equal(json_object_get(sa, "counts"),
                    json_object_get(sb, "counts")))
        abort();
    json_decref(sa);
    json_decref(sb);
    for (size_t i = 0; i < NREQUESTS; i++) {
        const char *ka = NULL, *rea = NULL, *kb = NULL, *reb = NULL;
        int ca = decide(a, i, &ka, &rea);
        int cb = decide(b, i, &kb, &reb);
        if (ca == TRINE_ENOMEM || cb == TRINE_ENOMEM)
            continue;
        if (ca != 0 || cb != 0 || strcmp(ka, kb) != 0 || strcmp(rea, reb) != 0)
            abort();
    }
done:
    trine_policy_release(a);
    trine_policy_release(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trine_source src = {"fuzz.trine", (const char *)data, size};
    trine_diag *diag = trine_diag_new();
    if (diag == NULL)
        return 0;
    ast_file *f = NULL;
    int rc = parse_source(&src, diag, &f);
    if ((rc == 0) != (f != NULL))
        abort();
    if (rc == TRINE_ESYNTAX && trine_diag_errors(diag) == 0)
        abort();
    size_t nstmts = f != NULL ? f->nstmts : 0;
    ast_free(f);
    trine_diag_free(diag);

    char *out = NULL;
    size_t outlen = 0;
    int frc = trine_format(&src, NULL, &out, &outlen);
    if (rc == TRINE_ENOMEM || frc == TRINE_ENOMEM) {
        free(out);
        return 0;
    }
    if ((frc == 0) != (rc == 0))
        abort();
    if (frc != 0)
        return 0;
    if (strlen(out) != outlen)
        abort();

    int rc2;
    if (count_statements(out, outlen, &rc2) != nstmts || rc2 != 0)
        abort();
    trine_source again = {"fuzz.trine", out, outlen};
    char *out2 = NULL;
    size_t outlen2 = 0;
    if (trine_format(&again, NULL, &out2, &outlen2) == 0 &&
        (outlen2 != outlen || memcmp(out, out2, outlen) != 0))
        abort();
    free(out2);
    check_same_meaning((const char *)data, size, out, outlen);
    free(out);
    return 0;
}
