/*
 * fuzz_template.c - a libFuzzer target for `needs` templates, argument
 * constraints and consent prompts filled with hostile argument values.
 *
 * The bytes are decoded into the arguments of a check (see decode_args:
 * the first byte picks one of the tools of a fixed policy, the second a few
 * request flags, the rest one value per argument slot, taken raw: invalid
 * UTF-8, NUL, control characters, "..", "/", "*" and the like). The check
 * goes through trine_check, the public entry point.
 *
 * Beside crashes and sanitizer reports, it checks the outcome against a
 * model of DESIGN §2.4 written here independently of the evaluator: its
 * own strict UTF-8 decoder, its own template safety rules and its own glob
 * matcher. Above all, no value that §2.4 step 3 calls unsafe may ever reach
 * an allow (or a consent prompt); beyond that, the decision, the primary
 * reason and the arguments named in an argument_invalid deny must be what
 * the model says, and the result and audit texts (trine_decision_write at
 * any buffer size, trine_decision_arguments, trine_decision_args_hash) must
 * be well-formed JSON that says the same.
 *
 * Build with CC=clang and -DTRINE_FUZZ=ON. With the environment variable
 * TRINE_FUZZ_SEEDS set to a directory, the target writes its seed inputs
 * there (one per interesting case, in the input format below) and exits;
 * scripts/fuzz does that before a run.
 */
#include "fuzz_check.h"
#include "safety_model.h"
#include "trine.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_src[] =
    "server \"fs\" { }\n"
    "scope \"fs\" { allow files.* on \"*\" }\n"
    "role reader {\n"
    "  allow files.read, files.list on \"file:*\", \"path:*\", "
    "\"repo:acme/*\", \"n:*\"\n"
    "  deny files.read on \"path:/etc/shadow\"\n"
    "}\n"
    "user * { roles reader }\n"
    "agent * {\n"
    "  allow * on \"*\"\n"
    "  deny files.read on \"repo:*/prod-*\"\n"
    "}\n"
    "forbid files.read on \"path:/root/*\", \"file:secret?\"\n"
    "tool \"fs\" \"one\" { needs files.read on \"file:{p}\" }\n"
    "tool \"fs\" \"rest\" { needs files.read on \"path:{p...}\" }\n"
    "tool \"fs\" \"repo\" { needs files.read on \"repo:{owner}/{repo}\" }\n"
    "tool \"fs\" \"nested\" {\n"
    "  needs files.list on \"n:{a.b}\"\n"
    "  needs files.read on \"path:{a.c...}/{p}\"\n"
    "}\n"
    "tool \"fs\" \"checked\" {\n"
    "  needs files.read on \"path:{p...}\"\n"
    "  arg p matches /[A-Za-z0-9._\\/-]*/\n"
    "  arg p max_length 12\n"
    "  arg n < 10\n"
    "  arg n required\n"
    "  arg mode in [\"r\", \"rw\", 1]\n"
    "}\n"
    "tool \"fs\" \"prompted\" {\n"
    "  needs files.read on \"file:{p}\"\n"
    "  consent session \"Open {p} with {q} ({a.b}) for {agent}?\"\n"
    "  redact q, a.b\n"
    "}\n";

/* ---- The model's tools --------------------------------------------------- */

/* One placeholder: the argument path (dotted) and whether it is {p...}. */
typedef struct ph {
    const char *path;
    bool rest;
} ph;

/* One needs line: its action, the template as literal text around up to
 * two placeholders (lit[0] ph[0] lit[1] ph[1] lit[2]). */
typedef struct need {
    const char *action;
    const char *lit[3];
    ph ph[2];
    int nph;
} need;

typedef struct tool {
    const char *name;
    need needs[2];
    int nneeds;
} tool;

static const tool tools[] = {
    {"one", {{"files.read", {"file:", "", ""}, {{"p", false}}, 1}}, 1},
    {"rest", {{"files.read", {"path:", "", ""}, {{"p", true}}, 1}}, 1},
    {"repo",
     {{"files.read",
       {"repo:", "/", ""},
       {{"owner", false}, {"repo", false}},
       2}},
     1},
    {"nested",
     {{"files.list", {"n:", "", ""}, {{"a.b", false}}, 1},
      {"files.read", {"path:", "/", ""}, {{"a.c", true}, {"p", false}}, 2}},
     2},
    {"checked", {{"files.read", {"path:", "", ""}, {{"p", true}}, 1}}, 1},
    {"prompted", {{"files.read", {"file:", "", ""}, {{"p", false}}, 1}}, 1},
};
#define NTOOLS (sizeof tools / sizeof tools[0])

/* ---- Decoding the input -------------------------------------------------- */

/* The argument slots, in the order values are read. a.b and a.c live in
 * the object "a". */
enum { S_P, S_Q, S_OWNER, S_REPO, S_N, S_MODE, S_AB, S_AC, NSLOTS };
static const char *const slot_names[NSLOTS] = {"p", "q",    "owner", "repo",
                                               "n", "mode", "a.b",   "a.c"};

/* Pieces the fuzzer can join into a string with one byte each: the path
 * steps, wildcards, controls and encodings the safety rules are about.
 * Among them: C1 controls (U+0080, U+0085 NEL, U+009F), characters that
 * are not controls (U+00A0, U+202E, U+FFFD, an emoji), an overlong '/' and
 * '.', a surrogate, and stray bytes. */
static const char *const pieces[] = {".",
                                     "..",
                                     "/",
                                     "*",
                                     "?",
                                     "",
                                     "\x00",
                                     "\x01",
                                     "\x1f",
                                     "\x7f",
                                     "\xc2\x80",
                                     "\xc2\x85",
                                     "\xc2\x9f",
                                     "\xc2\xa0",
                                     "\xe2\x80\xae",
                                     "\xef\xbf\xbd",
                                     "\xf0\x9f\x98\x80",
                                     "\xc0\xaf",
                                     "\xe0\x80\xae",
                                     "\xed\xa0\x80",
                                     "\xff",
                                     "\xc3",
                                     "acme",
                                     "prod-",
                                     "etc",
                                     "shadow",
                                     "root",
                                     "secret",
                                     "a",
                                     "\\",
                                     "%2e",
                                     "-",
                                     "0",
                                     " ",
                                     "~",
                                     "\xc3\xa9"};
#define NPIECES (sizeof pieces / sizeof pieces[0])
#define PIECE_LEN(i) ((i) == 6 ? 1 : strlen(pieces[i]))

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static bool take(input *in, uint8_t *b)
{
    if (in->n == 0)
        return false;
    *b = *in->p++;
    in->n--;
    return true;
}

static uint64_t take_u64(input *in)
{
    uint64_t v = 0;
    uint8_t b;
    for (int i = 0; i < 8 && take(in, &b); i++)
        v = (v << 8) | b;
    return v;
}

/* Makes a string value of n bytes: checked by jansson unless nocheck (the
 * library must hold up even for a caller who skipped the check). NULL when
 * jansson refuses the bytes (the slot is then absent). */
static json_t *make_string(const char *s, size_t n, bool nocheck)
{
    return nocheck ? json_stringn_nocheck(s, n) : json_stringn(s, n);
}

/* Reads one value. *absent is set when the slot has none. */
static json_t *decode_value(input *in, bool nocheck, bool *absent)
{
    uint8_t h;
    *absent = true;
    if (!take(in, &h))
        return NULL;
    *absent = false;
    switch (h & 7) {
    case 0:
        *absent = true;
        return NULL;
    case 1: { /* raw bytes */
        size_t len = h >> 3;
        uint8_t b;
        if (len == 31 && take(in, &b))
            len += b;
        if (len > in->n)
            len = in->n;
        json_t *v = make_string((const char *)in->p, len, nocheck);
        in->p += len;
        in->n -= len;
        return v;
    }
    case 2: {             /* pieces */
        char buf[16 * 8]; /* 16 pieces of at most 8 bytes */
        size_t len = 0;
        size_t count = ((h >> 3) & 15) + 1;
        uint8_t b;
        for (size_t i = 0; i < count && take(in, &b); i++) {
            size_t k = b % NPIECES;
            memcpy(buf + len, pieces[k], PIECE_LEN(k));
            len += PIECE_LEN(k);
        }
        return make_string(buf, len, nocheck);
    }
    case 3: { /* an integer */
        uint8_t b = 0;
        if (h & 8)
            return json_integer((json_int_t)take_u64(in));
        (void)take(in, &b);
        return json_integer((int8_t)b);
    }
    case 4: { /* a real */
        if (h & 8) {
            uint64_t bits = take_u64(in);
            double d;
            memcpy(&d, &bits, sizeof d);
            return json_real(d); /* NULL for NaN and infinities */
        }
        uint8_t b = 0;
        (void)take(in, &b);
        return json_real((int8_t)b / 4.0);
    }
    case 5:
        return (h & 8) ? json_true() : json_false();
    case 6:
        return json_null();
    default:
        return (h & 8) ? json_array() : json_pack("{s:s}", "x", "y");
    }
}

/* Builds the arguments object: every slot in order, a.b and a.c inside
 * "a" (or "a" a string when a_scalar). Returns NULL on OOM. */
static json_t *decode_args(input *in, bool nocheck, bool a_scalar,
                           json_t *vals[NSLOTS])
{
    json_t *args = json_object();
    json_t *a = a_scalar ? json_string("a") : json_object();
    if (args == NULL || a == NULL) {
        json_decref(args);
        json_decref(a);
        return NULL;
    }
    for (int i = 0; i < NSLOTS; i++) {
        bool absent;
        vals[i] = decode_value(in, nocheck, &absent);
        if (vals[i] == NULL)
            continue;
        const char *key = slot_names[i];
        json_t *dst = args;
        if (i == S_AB || i == S_AC) {
            key = i == S_AB ? "b" : "c";
            dst = a;
        }
        if (json_is_object(dst))
            json_object_set(dst, key, vals[i]);
        else {
            json_decref(vals[i]);
            vals[i] = NULL;
        }
    }
    if (a_scalar || json_object_size(a) > 0)
        json_object_set(args, "a", a);
    json_decref(a);
    return args;
}

/* ---- The model ----------------------------------------------------------- */

/* The value at a dotted slot path, or NULL (absent or null). */
static const json_t *model_lookup(const json_t *args, const char *path)
{
    const json_t *v;
    if (strcmp(path, "a.b") == 0 || strcmp(path, "a.c") == 0) {
        v = json_object_get(args, "a");
        v = json_is_object(v) ? json_object_get(v, path + 2) : NULL;
    } else {
        v = json_object_get(args, path);
    }
    return json_is_null(v) ? NULL : v;
}

/* The text a safe template value stands for. */
static size_t model_text(const json_t *v, char *buf, size_t cap)
{
    if (json_is_integer(v))
        return (size_t)snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
                                json_integer_value(v));
    size_t n = json_string_length(v);
    if (n > cap)
        abort();
    memcpy(buf, json_string_value(v), n);
    return n;
}

/* The `in ["r", "rw", 1]` constraint. */
static bool model_in(const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        return (n == 1 && s[0] == 'r') || (n == 2 && memcmp(s, "rw", 2) == 0);
    }
    if (json_is_integer(v))
        return json_integer_value(v) == 1;
    return json_is_real(v) && json_real_value(v) == 1.0;
}

static bool model_number_lt10(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) < 10;
    return json_is_real(v) && json_real_value(v) < 10.0;
}

/* The `matches /[A-Za-z0-9._\/-]*\/` constraint. */
static bool model_matches(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' ||
              c == '-'))
            return false;
    }
    return true;
}

static size_t model_cps(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

#define MAX_RES 4
#define RES_CAP 4096

/* What the model expects of one check. */
typedef struct expect {
    const char *kind;
    const char *reason;
    unsigned bad; /* argument_invalid: bit i for the argument slot_names[i] */
    int nres;
    char res[MAX_RES][RES_CAP];
    size_t rlen[MAX_RES];
    const char *act[MAX_RES];
} expect;

static int slot_of(const char *path)
{
    for (int i = 0; i < NSLOTS; i++) {
        if (strcmp(slot_names[i], path) == 0)
            return i;
    }
    abort();
}

/* Steps 3 to 7 of §2.4 for tool t (the token always passes step 1). */
static void model(const tool *t, const json_t *args, bool scoped, bool granted,
                  expect *e)
{
    memset(e, 0, sizeof *e);
    if (strcmp(t->name, "checked") == 0) {
        const json_t *p = model_lookup(args, "p");
        const json_t *n = model_lookup(args, "n");
        const json_t *mode = model_lookup(args, "mode");
        if (p != NULL && (!model_matches(p) || model_cps(p) > 12))
            e->bad |= 1u << S_P;
        if (n == NULL || !model_number_lt10(n))
            e->bad |= 1u << S_N;
        if (mode != NULL && !model_in(mode))
            e->bad |= 1u << S_MODE;
    }
    for (int i = 0; i < t->nneeds; i++) {
        const need *nd = &t->needs[i];
        char *r = e->res[e->nres];
        size_t len = strlen(nd->lit[0]);
        bool ok = true;
        memcpy(r, nd->lit[0], len);
        for (int k = 0; k < nd->nph; k++) {
            const json_t *v = model_lookup(args, nd->ph[k].path);
            if (!model_safe(v, nd->ph[k].rest)) {
                e->bad |= 1u << slot_of(nd->ph[k].path);
                ok = false;
                continue;
            }
            len += model_text(v, r + len, RES_CAP - 64 - len);
            size_t ll = strlen(nd->lit[k + 1]);
            memcpy(r + len, nd->lit[k + 1], ll);
            len += ll;
        }
        if (ok) {
            e->rlen[e->nres] = len;
            e->act[e->nres] = nd->action;
            e->nres++;
        }
    }
    if (e->bad != 0) {
        e->kind = "deny";
        e->reason = "argument_invalid";
        return;
    }
    bool forbidden = false, user_fail = false, agent_fail = false;
    for (int i = 0; i < e->nres; i++) {
        const char *r = e->res[i];
        size_t n = e->rlen[i];
        bool read = strcmp(e->act[i], "files.read") == 0;
        if (read && (model_glob("path:/root/*", r, n) ||
                     model_glob("file:secret?", r, n)))
            forbidden = true;
        bool u_allow =
            model_glob("file:*", r, n) || model_glob("path:*", r, n) ||
            model_glob("repo:acme/*", r, n) || model_glob("n:*", r, n);
        bool u_deny = read && model_glob("path:/etc/shadow", r, n);
        user_fail |= !u_allow || u_deny;
        agent_fail |= read && model_glob("repo:*/prod-*", r, n);
    }
    e->kind = "deny";
    if (forbidden)
        e->reason = "forbidden";
    else if (user_fail)
        e->reason = "user_denied";
    else if (agent_fail)
        e->reason = "agent_denied";
    else if (!scoped)
        e->reason = "scope_missing";
    else if (strcmp(t->name, "prompted") == 0 && !granted) {
        e->kind = "consent_required";
        e->reason = "consent_required";
    } else {
        e->kind = "allow";
        e->reason = "allow";
    }
}

/* ---- The checks ---------------------------------------------------------- */

static trine_policy *policy;

static int grant_all(void *ctx, const trine_consent_query *q, int64_t *id)
{
    CHECK(strcmp(q->user, "alice") == 0 && strcmp(q->agent, "agent1") == 0 &&
              strcmp(q->server, "fs") == 0 &&
              strcmp(q->tool, "prompted") == 0 &&
              q->mode == TRINE_CONSENT_SESSION && q->session != NULL &&
              strcmp(q->session, "s1") == 0,
          "the consent query names the check");
    *id = 7;
    return *(const bool *)ctx ? 1 : 0;
}

/* The written result at every buffer size is the prefix of the whole text,
 * and the whole text is JSON. Returns the parsed result. */
static json_t *check_written(const trine_decision *d)
{
    size_t n = trine_decision_write(d, 42, NULL, 0);
    char *full = malloc(n + 1);
    CHECK(full != NULL, "out of memory");
    CHECK(trine_decision_write(d, 42, full, n + 1) == n, "length is stable");
    CHECK(strlen(full) == n, "no NUL inside the text");
    static const size_t caps[] = {1, 2, 17, 100, 1000};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char small[1000];
        size_t cap = caps[i];
        CHECK(trine_decision_write(d, 42, small, cap) == n, "length at cap");
        size_t keep = n < cap - 1 ? n : cap - 1;
        CHECK(memcmp(small, full, keep) == 0 && small[keep] == '\0',
              "a short buffer holds a prefix");
    }
    json_error_t err;
    json_t *r = json_loadb(full, n, JSON_ALLOW_NUL, &err);
    if (r == NULL)
        fprintf(stderr, "%s\n%s\n", err.text, full);
    CHECK(r != NULL, "the result is JSON");
    free(full);
    json_t *again = trine_decision_result(d);
    CHECK(again != NULL, "trine_decision_result");
    CHECK(json_object_del(r, "audit_id") == 0, "audit_id is written");
    CHECK(json_equal(r, again), "result agrees with the written text");
    json_decref(again);
    return r;
}

/* A new copy of v in the value form the arguments hash is over (DESIGN
 * §2.5: a null argument is absent, numbers compare by value): object
 * members whose value is null dropped, integral reals made integers. */
static json_t *value_form(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        size_t klen;
        json_t *m;
        void *tmp;
        json_object_keylen_foreach_safe((json_t *)v, tmp, k, klen, m)
        {
            if (!json_is_null(m))
                json_object_setn_new(o, k, klen, value_form(m));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, value_form(json_array_get(v, i)));
        return a;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x > -9.2e18 && x < 9.2e18 && x == (double)(json_int_t)x)
            return json_integer((json_int_t)x);
    }
    return json_deep_copy(v);
}

/* The audit columns: the redacted arguments are canonical JSON with the
 * redacted paths replaced, and the hash is over the unredacted ones. */
static void check_audit(const trine_decision *d, const json_t *args, bool valid)
{
    const char *text = trine_decision_arguments(d);
    const char *hash = trine_decision_args_hash(d);
    if (!valid)
        return; /* only no crash: canonical JSON needs UTF-8 */
    CHECK(text != NULL && hash != NULL, "audit columns are there");
    json_t *a = json_loads(text, JSON_ALLOW_NUL, NULL);
    CHECK(a != NULL, "the audit arguments are JSON");
    json_t *copy = json_deep_copy(args);
    CHECK(copy != NULL, "out of memory");
    if (strcmp(trine_decision_tool(d), "prompted") == 0) {
        json_t *red = json_string("[redacted]");
        if (json_object_get(copy, "q") != NULL)
            json_object_set(copy, "q", red);
        json_t *obj = json_object_get(copy, "a");
        if (json_is_object(obj) && json_object_get(obj, "b") != NULL)
            json_object_set(obj, "b", red);
        json_decref(red);
    }
    CHECK(json_equal(a, copy), "audit arguments equal the redacted request");
    json_decref(copy);
    json_decref(a);

    char *canon = NULL;
    size_t clen = 0;
    char hex[65];
    json_t *values = value_form(args);
    CHECK(values != NULL, "out of memory");
    CHECK(trine_json_canonical(values, &canon, &clen) == 0, "canonical JSON");
    json_decref(values);
    trine_sha256_hex(canon, clen, hex);
    trine_free(canon);
    CHECK(strcmp(hex, hash) == 0,
          "args hash is over the canonical JSON of the value form");
}

/* Compares the decision with the model; prints both on a mismatch. */
static void check_decision(const trine_decision *d, const json_t *result,
                           const expect *e, const json_t *args)
{
    const char *kind = trine_decision_kind(d);
    const char *reason = trine_decision_reason(d);
    unsigned named = 0;
    const json_t *reasons = json_object_get(result, "reasons");
    size_t i;
    const json_t *r;
    json_array_foreach(reasons, i, r)
    {
        const json_t *arg = json_object_get(r, "argument");
        if (json_is_string(arg))
            named |= 1u << slot_of(json_string_value(arg));
    }
    bool ok = strcmp(kind, e->kind) == 0 && strcmp(reason, e->reason) == 0 &&
              (strcmp(e->reason, "argument_invalid") != 0 || named == e->bad);
    if (!ok) {
        char *a = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
        char *t = json_dumps(result, JSON_COMPACT);
        fprintf(stderr,
                "fuzz_template: got %s/%s, the model says %s/%s "
                "(bad arguments %#x, named %#x)\nargs %s\nresult %s\n",
                kind, reason, e->kind, e->reason, e->bad, named, a ? a : "?",
                t ? t : "?");
        free(a);
        free(t);
        abort();
    }
    /* The safety property, said on its own: nothing unsafe gets past
     * step 3. */
    if (strcmp(kind, "deny") != 0 || strcmp(reason, "argument_invalid") != 0)
        CHECK(e->bad == 0, "an unsafe or invalid value got past step 3");
}

/* The prompt of a consent_required decision, filled from the arguments. */
static void check_prompt(const json_t *result, const json_t *args)
{
    const json_t *c = json_object_get(result, "consent");
    const json_t *pr = json_object_get(c, "prompt");
    CHECK(json_is_string(pr), "consent_required has a prompt");
    const char *vals[2] = {"q", "a.b"};
    char want[RES_CAP * 3];
    char p[RES_CAP];
    size_t plen = model_text(model_lookup(args, "p"), p, sizeof p);
    int n = snprintf(want, sizeof want, "Open %.*s with ", (int)plen, p);
    size_t at = (size_t)n;
    for (int k = 0; k < 2; k++) {
        const json_t *v = model_lookup(args, vals[k]);
        if (json_is_real(v))
            return; /* shortest round-trip text: not modelled here */
        if (json_is_string(v) || json_is_integer(v))
            at += model_text(v, want + at, RES_CAP);
        const char *lit = k == 0 ? " (" : ") for agent1?";
        memcpy(want + at, lit, strlen(lit));
        at += strlen(lit);
    }
    CHECK(json_string_length(pr) == at &&
              memcmp(json_string_value(pr), want, at) == 0,
          "the prompt is filled with the argument values");
}

static bool all_utf8(const json_t *v)
{
    if (json_is_string(v))
        return model_is_utf8(json_string_value(v), json_string_length(v));
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, m)
        {
            if (!all_utf8(m))
                return false;
        }
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if (!all_utf8(m))
                return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (policy == NULL) {
        trine_source src = {"tmpl.trine", policy_src, sizeof policy_src - 1};
        trine_diag *diag = trine_diag_new();
        if (trine_policy_load_sources(&src, 1, diag, &policy) != 0) {
            trine_diag_print(diag, stderr);
            abort();
        }
        trine_diag_free(diag);
    }
    input in = {data, size};
    uint8_t tsel = 0, flags = 0;
    (void)take(&in, &tsel);
    (void)take(&in, &flags);
    const tool *t = &tools[tsel % NTOOLS];
    bool scoped = !(flags & 1);
    bool a_scalar = flags & 2;
    bool nocheck = flags & 4;
    bool granted = flags & 8;

    json_t *vals[NSLOTS];
    json_t *args = decode_args(&in, nocheck, a_scalar, vals);
    json_t *params = json_pack(
        "{s:s, s:s, s:O, s:s, s:{s:s, s:s, s:s}}", "server", "fs", "tool",
        t->name, "arguments", args, "session", "s1", "token", "sub", "alice",
        "scope", scoped ? "fs" : "other", "client_id", "agent1");
    if (params == NULL) {
        json_decref(args);
        for (int i = 0; i < NSLOTS; i++)
            json_decref(vals[i]);
        return 0;
    }
    trine_check_opts opts = {1767225600000, grant_all, &granted};
    trine_decision *d = NULL;
    char err[256] = "";
    int rc = trine_check(policy, params, &opts, &d, err, sizeof err);
    if (rc == TRINE_ENOMEM)
        goto done;
    if (rc != 0)
        fprintf(stderr, "trine_check: %s\n", err);
    CHECK(rc == 0, "a well-formed request is decided");

    expect *e = malloc(sizeof *e);
    CHECK(e != NULL, "out of memory");
    model(t, args, scoped, granted, e);
    json_t *result = check_written(d);
    if (getenv("FUZZ_TEMPLATE_TRACE") != NULL) {
        /* One line per input, to see what a corpus reaches. */
        char *a = json_dumps(args, JSON_COMPACT);
        fprintf(stderr, "trace %s %s/%s %s\n", t->name, e->kind, e->reason,
                a != NULL ? a : "?");
        free(a);
    }
    check_decision(d, result, e, args);
    /* A string that is not UTF-8 is written with U+FFFD in its place. */
    bool utf8 = all_utf8(args);
    if (strcmp(e->kind, "consent_required") == 0 && utf8)
        check_prompt(result, args);
    check_audit(d, args, utf8);
    json_decref(result);
    free(e);
done:
    trine_decision_free(d);
    json_decref(params);
    json_decref(args);
    for (int i = 0; i < NSLOTS; i++)
        json_decref(vals[i]);
    return 0;
}

/* ---- Seeds --------------------------------------------------------------- */

/* One seed: a tool, the flags byte, and up to NSLOTS values, each given
 * as a raw string ("s:..."), an integer ("i:..."), or absent (NULL). */
typedef struct seed {
    const char *name;
    int tool;
    uint8_t flags;
    const char *vals[NSLOTS];
} seed;

/* Tool indexes in tools[]. */
enum { T_ONE, T_REST, T_REPO, T_NESTED, T_CHECKED, T_PROMPTED };

static const seed seeds[] = {
    {"one-allow", T_ONE, 0, {"s:readme"}},
    {"one-int", T_ONE, 0, {"i:42"}},
    {"one-forbidden", T_ONE, 0, {"s:secret1"}},
    {"one-dotdot", T_ONE, 0, {"s:.."}},
    {"one-slash", T_ONE, 0, {"s:a/b"}},
    {"one-empty", T_ONE, 0, {"s:"}},
    {"one-star", T_ONE, 0, {"s:*"}},
    {"one-nul", T_ONE, 0, {"s:a\\0b"}},
    {"one-c1", T_ONE, 4, {"s:a\xc2\x85"}},
    {"one-overlong", T_ONE, 4, {"s:\xc0\xae\xc0\xae"}},
    {"rest-allow", T_REST, 0, {"s:/etc/passwd"}},
    {"rest-user", T_REST, 0, {"s:/etc/shadow"}},
    {"rest-forbidden", T_REST, 0, {"s:/root/.ssh/id"}},
    {"rest-dotdot", T_REST, 0, {"s:/srv/../root"}},
    {"rest-dot", T_REST, 0, {"s:a/./b"}},
    {"rest-empty-seg", T_REST, 0, {"s:a//b"}},
    {"rest-root", T_REST, 0, {"s:/"}},
    {"rest-trailing", T_REST, 1, {"s:/srv/"}},
    {"repo-allow", T_REPO, 0, {NULL, NULL, "s:acme", "s:widgets"}},
    {"repo-agent", T_REPO, 0, {NULL, NULL, "s:acme", "s:prod-db"}},
    {"repo-user", T_REPO, 0, {NULL, NULL, "s:evil", "s:widgets"}},
    {"repo-int", T_REPO, 0, {NULL, NULL, "s:acme", "i:-7"}},
    {"nested-allow",
     T_NESTED,
     0,
     {"s:f", NULL, NULL, NULL, NULL, NULL, "s:x", "s:/srv/data"}},
    {"nested-scalar", T_NESTED, 2, {"s:f", NULL, NULL, NULL, NULL, NULL}},
    {"checked-allow",
     T_CHECKED,
     0,
     {"s:docs/a.txt", NULL, NULL, NULL, "i:3", "s:r"}},
    {"checked-bad",
     T_CHECKED,
     0,
     {"s:docs/a b.txt", NULL, NULL, NULL, "i:11", "s:x"}},
    {"checked-long",
     T_CHECKED,
     0,
     {"s:abcdefghijklm", NULL, NULL, NULL, "i:-1", "i:1"}},
    {"prompted",
     T_PROMPTED,
     0,
     {"s:f", "s:hello\\0", NULL, NULL, NULL, NULL, "s:\xc2\x85"}},
    {"prompted-granted", T_PROMPTED, 8, {"s:f", "i:5"}},
    {"prompted-unscoped", T_PROMPTED, 1, {"s:f"}},
};

/* Appends one value in the input format; returns the new length. */
static size_t encode_value(uint8_t *out, size_t at, const char *v)
{
    if (v == NULL) {
        out[at++] = 0;
        return at;
    }
    if (v[0] == 'i') {
        long long x = strtoll(v + 2, NULL, 10);
        out[at++] = 3 | 8;
        for (int i = 7; i >= 0; i--)
            out[at++] = (uint8_t)((unsigned long long)x >> (8 * i));
        return at;
    }
    /* A raw string; "\\0" in the text stands for a NUL byte. */
    char buf[64];
    size_t n = 0;
    for (const char *p = v + 2; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] == '0') {
            buf[n++] = '\0';
            p++;
        } else {
            buf[n++] = *p;
        }
    }
    out[at++] = (uint8_t)((n << 3) | 1);
    memcpy(out + at, buf, n);
    return at + n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("TRINE_FUZZ_SEEDS");
    if (dir == NULL)
        return 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        const seed *sd = &seeds[i];
        uint8_t buf[1024];
        size_t n = 0;
        buf[n++] = (uint8_t)sd->tool;
        buf[n++] = sd->flags;
        int last = NSLOTS - 1;
        while (last >= 0 && sd->vals[last] == NULL)
            last--;
        for (int k = 0; k <= last; k++)
            n = encode_value(buf, n, sd->vals[k]);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, sd->name);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
            perror(path);
            exit(1);
        }
    }
    exit(0);
}
