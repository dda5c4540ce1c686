/*
 * compile.c - turns the syntax trees of a policy's files into one compiled,
 * immutable trine_policy (policy.h): blocks merged by name across repeats
 * and files, each block's rules indexed by action, roles resolved for every
 * user and group binding. Servers and tools are compiled in compile_tool.c.
 *
 * Compilation makes two passes over the trees. The first creates every
 * merged block and counts what it will hold; the second fills it. The
 * counts let every block keep its rules in one array in declaration order,
 * which block_match relies on (pointer order is declaration order).
 *
 * Every allocation of a compiled policy comes from one arena, so releasing
 * the policy frees it at once; regexes, JSON literals and hash maps, which
 * have their own allocators, are listed in the arena and freed with it.
 */
#include "lib/compile.h"

#include "lib/diag.h"
#include "lib/lexer.h"

#include <openssl/evp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- The arena --------------------------------------------------------- */

#define ARENA_CHUNK 16384
#define ARENA_BIG 2048

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    max_align_t data[];
} arena_chunk;

struct compile_arena {
    arena_chunk *head;
    ptrvec codes; /* pcre2_code* */
    ptrvec jsons; /* json_t* (one reference each) */
    ptrvec maps;  /* strmap* */
};

compile_arena *compile_arena_new(void)
{
    return calloc(1, sizeof(compile_arena));
}

void compile_arena_free(compile_arena *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->maps.len; i++)
        strmap_free(a->maps.items[i]);
    for (size_t i = 0; i < a->codes.len; i++)
        pcre2_code_free(a->codes.items[i]);
    for (size_t i = 0; i < a->jsons.len; i++)
        json_decref(a->jsons.items[i]);
    pv_free(&a->maps);
    pv_free(&a->codes);
    pv_free(&a->jsons);
    arena_chunk *ch = a->head;
    while (ch != NULL) {
        arena_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    free(a);
}

static arena_chunk *arena_chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(arena_chunk))
        return NULL;
    arena_chunk *ch = calloc(1, sizeof(arena_chunk) + cap);
    if (ch != NULL)
        ch->cap = cap;
    return ch;
}

void *compile_alloc(compile_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n >= ARENA_BIG) {
        /* A big block gets a chunk of its own, behind the current one, so
         * the current chunk's free space is not wasted. */
        arena_chunk *ch = arena_chunk_new(n);
        if (ch == NULL)
            return NULL;
        ch->used = n;
        if (a->head != NULL) {
            ch->next = a->head->next;
            a->head->next = ch;
        } else {
            a->head = ch;
        }
        return ch->data;
    }
    if (a->head == NULL || a->head->cap - a->head->used < n) {
        arena_chunk *ch = arena_chunk_new(ARENA_CHUNK);
        if (ch == NULL)
            return NULL;
        ch->next = a->head;
        a->head = ch;
    }
    void *p = (unsigned char *)a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

char *compile_strndup(compile_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = compile_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *compile_strdup(compile_arena *a, const char *s)
{
    return compile_strndup(a, s, strlen(s));
}

int compile_keep_code(compile_arena *a, pcre2_code *re)
{
    if (pv_push(&a->codes, re) != 0) {
        pcre2_code_free(re);
        return TRINE_ENOMEM;
    }
    return 0;
}

int compile_keep_json(compile_arena *a, json_t *v)
{
    if (pv_push(&a->jsons, v) != 0) {
        json_decref(v);
        return TRINE_ENOMEM;
    }
    return 0;
}

int compile_keep_map(compile_arena *a, strmap *m)
{
    return pv_push(&a->maps, m) != 0 ? TRINE_ENOMEM : 0;
}

void compile_policy_free(trine_policy *p)
{
    if (p == NULL)
        return;
    compile_arena_free(p->arena);
    free(p);
}

/* ---- Diagnostics ------------------------------------------------------- */

void compile_error(compile_ctx *c, const ast_loc *at, const char *fmt, ...)
{
    c->nerrors++;
    strbuf b;
    sb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    /* On OOM the error still counts (the load fails); only its text is
     * lost. */
    if (!b.oom)
        diag_add(c->diag, TRINE_DIAG_ERROR, at->file, at->line, at->col, "%s",
                 b.data ? b.data : "");
    sb_free(&b);
}

void compile_quote(strbuf *b, const char *s)
{
    sb_json_str(b, s, strlen(s));
}

void compile_where(char *buf, size_t len, const ast_loc *at)
{
    snprintf(buf, len, "%s:%u:%u", at->file ? at->file : "", at->line, at->col);
}

/* ---- Actions and patterns ---------------------------------------------- */

static bool compile_seg_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

/* True when t is dot-separated segments of [A-Za-z0-9_-]+, the last of
 * which may be `*` (after at least one other), or t is `*`. */
static bool compile_action_valid(const char *t, size_t n)
{
    if (n == 1 && t[0] == '*')
        return true;
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.') {
            if (seg == 0)
                return false;
            seg = 0;
        } else if (t[i] == '*') {
            if (i + 1 != n || i == 0 || t[i - 1] != '.')
                return false;
            return true;
        } else if (compile_seg_char(t[i])) {
            seg++;
        } else {
            return false;
        }
    }
    return seg > 0;
}

int compile_action(compile_ctx *c, const ast_action *in, cpl_action *out)
{
    const char *t = in->text ? in->text : "";
    size_t n = strlen(t);
    *out = (cpl_action){ACT_EXACT, "", 0};
    if (!compile_action_valid(t, n)) {
        strbuf b;
        sb_init(&b);
        compile_quote(&b, t);
        compile_error(c, &in->at, "invalid action %s; " LEX_ACTION_FORM,
                      b.data ? b.data : "");
        sb_free(&b);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        out->kind = ACT_ANY;
        n = 1;
    } else if (t[n - 1] == '*') {
        out->kind = ACT_PREFIX;
        n--; /* keep the dot: "issues." */
    }
    char *text = compile_strndup(c->a, t, n);
    if (text == NULL)
        return TRINE_ENOMEM;
    out->text = text;
    out->len = n;
    return 0;
}

int compile_pattern(compile_ctx *c, const ast_pattern *in, cpl_pattern *out)
{
    const char *t = in->text ? in->text : "";
    size_t n = strlen(t);
    memset(out, 0, sizeof *out);
    out->kind = in->is_regex ? PAT_REGEX : PAT_GLOB;
    out->text = compile_strndup(c->a, t, n);
    if (out->text == NULL)
        return TRINE_ENOMEM;
    out->len = n;
    if (!in->is_regex) {
        out->literal = strpbrk(t, "*?") == NULL;
        return 0;
    }
    char msg[256];
    size_t off;
    pcre2_code *re =
        match_compile_regex(t, n, in->icase, msg, sizeof msg, &off);
    if (re == NULL && off == MATCH_NOMEM)
        return TRINE_ENOMEM;
    if (re == NULL) {
        compile_error(c, &in->at, "regex does not compile: %s (at offset %zu)",
                      msg, off);
        return 0;
    }
    out->re = re;
    return compile_keep_code(c->a, re);
}

/* ---- Blocks ------------------------------------------------------------ */

/* A merged scope, role, agent or forbid block while it is being built. The
 * cpl_block comes first, so the policy can point at it. */
typedef struct compile_block {
    cpl_block b;
    cpl_rule *arr; /* the rules, declaration order */
    size_t cap;    /* rules counted by the first pass */
    size_t any_cap;
} compile_block;

/* An index bucket while it grows. */
typedef struct compile_bucket {
    rule_list l;
    size_t cap;
} compile_bucket;

/* A merged user or group binding while it is being built. */
typedef struct compile_bind {
    cpl_binding b;
    size_t cap;
} compile_bind;

static compile_block *compile_block_new(compile_ctx *c, blk_kind kind,
                                        const char *name, const ast_stmt *s,
                                        unsigned order)
{
    compile_block *cb = compile_alloc(c->a, sizeof *cb);
    if (cb == NULL)
        return NULL;
    cb->b.kind = kind;
    if (name != NULL) {
        cb->b.name = compile_strdup(c->a, name);
        if (cb->b.name == NULL)
            return NULL;
    }
    cb->b.file = c->file;
    cb->b.line = s->at.line;
    cb->b.col = s->at.col;
    cb->b.order = order;
    if (compile_keep_map(c->a, &cb->b.exact) != 0 ||
        compile_keep_map(c->a, &cb->b.prefix) != 0 ||
        pv_push(&c->blocks, cb) != 0)
        return NULL;
    return cb;
}

/* Finds the merged block a statement belongs to, creating it (when create
 * is true) on its first declaration. Sets *out (NULL only when not found
 * and not created). Returns 0 or TRINE_ENOMEM. */
static int compile_block_get(compile_ctx *c, const ast_stmt *s, bool create,
                             compile_block **out)
{
    trine_policy *p = c->p;
    compile_block **slot = NULL;
    strmap *map = NULL;
    ptrvec *list = NULL;
    blk_kind kind = BLK_SCOPE;
    const char *name = s->name;

    switch (s->kind) {
    case AST_SCOPE:
        map = &p->scope_by_name;
        list = &c->scopes;
        break;
    case AST_ROLE:
        map = &p->roles;
        list = &c->roles;
        kind = BLK_ROLE;
        break;
    case AST_AGENT:
        kind = BLK_AGENT;
        if (name == NULL)
            slot = &c->agent_any;
        else
            map = &p->agents;
        break;
    default:
        kind = BLK_FORBID;
        slot = &c->forbid;
        name = NULL;
        break;
    }
    compile_block *cb =
        slot != NULL ? *slot : strmap_get(map, name ? name : "");
    if (cb != NULL || !create) {
        *out = cb;
        return 0;
    }
    unsigned order = list != NULL ? (unsigned)list->len : 0;
    if (kind == BLK_AGENT)
        order = c->nagents++;
    cb = compile_block_new(c, kind, name, s, order);
    if (cb == NULL)
        return TRINE_ENOMEM;
    if (slot != NULL)
        *slot = cb;
    else if (strmap_put(map, cb->b.name, cb) != 0)
        return TRINE_ENOMEM;
    if (list != NULL && pv_push(list, &cb->b) != 0)
        return TRINE_ENOMEM;
    *out = cb;
    return 0;
}

/* Compiles one rule into the next slot of its block. */
static int compile_rule(compile_ctx *c, compile_block *cb, const ast_rule *ar,
                        bool forbid)
{
    if (cb->arr == NULL) {
        cb->arr = compile_alloc(c->a, cb->cap * sizeof *cb->arr);
        cb->b.rules = compile_alloc(c->a, cb->cap * sizeof *cb->b.rules);
        if (cb->arr == NULL || cb->b.rules == NULL)
            return TRINE_ENOMEM;
    }
    if (cb->b.nrules >= cb->cap)
        return TRINE_ENOMEM; /* the two passes disagree: cannot happen */
    cpl_rule *r = &cb->arr[cb->b.nrules];
    cb->b.rules[cb->b.nrules++] = r;
    r->deny = forbid || ar->deny;
    r->file = c->file;
    r->line = ar->at.line;
    r->col = ar->at.col;
    r->block = &cb->b;
    r->actions = compile_alloc(c->a, ar->nactions * sizeof *r->actions);
    r->patterns = compile_alloc(c->a, ar->npatterns * sizeof *r->patterns);
    if (r->actions == NULL || r->patterns == NULL)
        return TRINE_ENOMEM;
    r->nactions = ar->nactions;
    r->npatterns = ar->npatterns;
    for (size_t i = 0; i < ar->nactions; i++) {
        int rc = compile_action(c, &ar->actions[i], &r->actions[i]);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < ar->npatterns; i++) {
        int rc = compile_pattern(c, &ar->patterns[i], &r->patterns[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Appends r to a bucket unless it is already its last rule (a rule that
 * names one action twice is listed once). */
static int compile_bucket_add(compile_ctx *c, rule_list *l, size_t *cap,
                              const cpl_rule *r)
{
    if (l->len > 0 && l->rules[l->len - 1] == r)
        return 0;
    if (l->len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        const cpl_rule **rules = compile_alloc(c->a, ncap * sizeof *rules);
        if (rules == NULL)
            return TRINE_ENOMEM;
        if (l->len > 0)
            memcpy(rules, l->rules, l->len * sizeof *rules);
        l->rules = rules;
        *cap = ncap;
    }
    l->rules[l->len++] = r;
    return 0;
}

/* Builds a block's action index from its rules. */
static int compile_index(compile_ctx *c, compile_block *cb)
{
    for (size_t i = 0; i < cb->b.nrules; i++) {
        const cpl_rule *r = cb->b.rules[i];
        for (size_t k = 0; k < r->nactions; k++) {
            const cpl_action *a = &r->actions[k];
            int rc;
            if (a->kind == ACT_ANY) {
                rc = compile_bucket_add(c, &cb->b.any, &cb->any_cap, r);
            } else {
                strmap *m = a->kind == ACT_EXACT ? &cb->b.exact : &cb->b.prefix;
                compile_bucket *bk = strmap_getn(m, a->text, a->len);
                if (bk == NULL) {
                    bk = compile_alloc(c->a, sizeof *bk);
                    if (bk == NULL ||
                        strmap_putn(m, a->text, a->len, &bk->l) != 0)
                        return TRINE_ENOMEM;
                }
                rc = compile_bucket_add(c, &bk->l, &bk->cap, r);
            }
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* ---- Bindings ---------------------------------------------------------- */

static int compile_bind_get(compile_ctx *c, const ast_stmt *s, bool create,
                            compile_bind **out)
{
    trine_policy *p = c->p;
    bool any = s->kind == AST_USER && s->name == NULL;
    strmap *map = s->kind == AST_USER ? &p->users : &p->groups;
    compile_bind *cb = any ? c->user_any : strmap_get(map, s->name);
    if (cb != NULL || !create) {
        *out = cb;
        return 0;
    }
    cb = compile_alloc(c->a, sizeof *cb);
    if (cb == NULL || pv_push(&c->binds, cb) != 0)
        return TRINE_ENOMEM;
    cb->b.file = c->file;
    cb->b.line = s->at.line;
    cb->b.col = s->at.col;
    if (any) {
        c->user_any = cb;
    } else {
        char *name = compile_strdup(c->a, s->name);
        if (name == NULL || strmap_put(map, name, cb) != 0)
            return TRINE_ENOMEM;
        cb->b.name = name;
    }
    *out = cb;
    return 0;
}

/* Resolves the roles a user or group statement binds. */
static int compile_bind_fill(compile_ctx *c, compile_bind *cb,
                             const ast_stmt *s)
{
    if (cb->b.roles == NULL && cb->cap > 0) {
        cb->b.roles = compile_alloc(c->a, cb->cap * sizeof *cb->b.roles);
        if (cb->b.roles == NULL)
            return TRINE_ENOMEM;
    }
    for (size_t i = 0; i < s->nroles; i++) {
        const ast_name *n = &s->roles[i];
        const cpl_block *role = strmap_get(&c->p->roles, n->text);
        if (role == NULL) {
            strbuf b;
            sb_init(&b);
            compile_quote(&b, n->text);
            compile_error(c, &n->at, "role %s is not defined by any role block",
                          b.data ? b.data : "");
            sb_free(&b);
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < cb->b.nroles && !seen; k++)
            seen = cb->b.roles[k] == role;
        if (!seen && cb->b.nroles < cb->cap)
            cb->b.roles[cb->b.nroles++] = role;
    }
    return 0;
}

/* ---- The passes -------------------------------------------------------- */

/* First pass: creates every merged block and binding and counts what each
 * will hold. */
static int compile_count(compile_ctx *c, const ast_stmt *s)
{
    int rc = 0;
    switch (s->kind) {
    case AST_SCOPE:
    case AST_ROLE:
    case AST_AGENT:
    case AST_FORBID: {
        compile_block *cb;
        rc = compile_block_get(c, s, true, &cb);
        if (rc == 0)
            cb->cap += s->nrules;
        break;
    }
    case AST_USER:
    case AST_GROUP: {
        compile_bind *cb;
        rc = compile_bind_get(c, s, true, &cb);
        if (rc == 0)
            cb->cap += s->nroles;
        break;
    }
    case AST_SERVER:
    case AST_TOOL:
        rc = compile_tool_count(c, s);
        break;
    }
    return rc;
}

/* Second pass: fills what the first pass created. */
static int compile_fill(compile_ctx *c, const ast_stmt *s)
{
    switch (s->kind) {
    case AST_SCOPE:
    case AST_ROLE:
    case AST_AGENT:
    case AST_FORBID: {
        compile_block *cb;
        int rc = compile_block_get(c, s, false, &cb);
        for (size_t i = 0; rc == 0 && cb != NULL && i < s->nrules; i++)
            rc = compile_rule(c, cb, &s->rules[i], s->kind == AST_FORBID);
        return rc;
    }
    case AST_USER:
    case AST_GROUP: {
        compile_bind *cb;
        int rc = compile_bind_get(c, s, false, &cb);
        if (rc == 0 && cb != NULL)
            rc = compile_bind_fill(c, cb, s);
        return rc;
    }
    case AST_SERVER:
    case AST_TOOL:
        return compile_tool_fill(c, s);
    }
    return 0;
}

/* Copies a list of pointers into the arena. */
static const void **compile_list(compile_ctx *c, const ptrvec *v)
{
    const void **out = compile_alloc(c->a, (v->len ? v->len : 1) * sizeof *out);
    if (out != NULL && v->len > 0)
        memcpy(out, v->items, v->len * sizeof *out);
    return out;
}

/* Last step: indexes every block, lays out the policy's lists and counts. */
static int compile_finish(compile_ctx *c)
{
    trine_policy *p = c->p;
    policy_counts *n = &p->counts;
    for (size_t i = 0; i < c->blocks.len; i++) {
        compile_block *cb = c->blocks.items[i];
        int rc = compile_index(c, cb);
        if (rc != 0)
            return rc;
        n->rules += (unsigned)cb->b.nrules;
        if (cb->b.kind == BLK_FORBID)
            n->forbid += (unsigned)cb->b.nrules;
    }
    p->scopes = (const cpl_block **)compile_list(c, &c->scopes);
    p->role_list = (const cpl_block **)compile_list(c, &c->roles);
    if (p->scopes == NULL || p->role_list == NULL)
        return TRINE_ENOMEM;
    p->nscopes = c->scopes.len;
    p->nroles = c->roles.len;
    p->agent_any = c->agent_any ? &c->agent_any->b : NULL;
    p->forbids = c->forbid ? &c->forbid->b : NULL;
    p->user_any = c->user_any ? &c->user_any->b : NULL;
    n->scope = (unsigned)p->nscopes;
    n->role = (unsigned)p->nroles;
    n->user = (unsigned)p->users.count + (p->user_any != NULL);
    n->group = (unsigned)p->groups.count;
    n->agent = (unsigned)p->agents.count + (p->agent_any != NULL);
    return 0;
}

/* Feeds n bytes to md, preceded by n as 8 big-endian bytes. */
static int digest_framed(EVP_MD_CTX *md, const void *data, size_t n)
{
    unsigned char len[8];
    uint64_t v = n;
    for (int i = 7; i >= 0; i--, v >>= 8)
        len[i] = (unsigned char)(v & 0xff);
    return EVP_DigestUpdate(md, len, sizeof len) &&
           EVP_DigestUpdate(md, data, n);
}

/* Names the files and computes the revision (SHA-256 over each file's name
 * and bytes, in load order, as DESIGN §2 says) and the sources digest (the
 * same, each piece preceded by its length). */
static int compile_revision(compile_ctx *c, const trine_source *srcs, size_t n)
{
    trine_policy *p = c->p;
    p->files = compile_alloc(c->a, (n ? n : 1) * sizeof *p->files);
    if (p->files == NULL)
        return TRINE_ENOMEM;
    p->nfiles = n;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_MD_CTX *framed = EVP_MD_CTX_new();
    int ok = md != NULL && framed != NULL &&
             EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestInit_ex(framed, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        const char *name = srcs[i].name ? srcs[i].name : "";
        p->files[i] = compile_strdup(c->a, name);
        ok = p->files[i] != NULL && EVP_DigestUpdate(md, name, strlen(name)) &&
             EVP_DigestUpdate(md, srcs[i].data, srcs[i].len) &&
             digest_framed(framed, name, strlen(name)) &&
             digest_framed(framed, srcs[i].data, srcs[i].len);
    }
    unsigned char h[EVP_MAX_MD_SIZE], f[EVP_MAX_MD_SIZE];
    unsigned hlen = 0, flen = 0;
    ok = ok && EVP_DigestFinal_ex(md, h, &hlen) &&
         EVP_DigestFinal_ex(framed, f, &flen);
    EVP_MD_CTX_free(md);
    EVP_MD_CTX_free(framed);
    if (!ok || hlen != 32 || flen != 32)
        return TRINE_ENOMEM;
    static const char hex[] = "0123456789abcdef";
    memcpy(p->revision, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        p->revision[7 + 2 * i] = hex[h[i] >> 4];
        p->revision[8 + 2 * i] = hex[h[i] & 15];
    }
    p->revision[71] = '\0';
    memcpy(p->sources_digest, f, sizeof p->sources_digest);
    return 0;
}

static int compile_run(compile_ctx *c, ast_file *const *files,
                       const trine_source *srcs, size_t n)
{
    trine_policy *p = c->p;
    strmap *maps[] = {&p->servers, &p->scope_by_name, &p->roles,
                      &p->users,   &p->groups,        &p->agents};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        if (compile_keep_map(c->a, maps[i]) != 0)
            return TRINE_ENOMEM;
    }
    int rc = compile_revision(c, srcs, n);
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t f = 0; f < n && rc == 0; f++) {
            c->file = p->files[f];
            for (size_t i = 0; i < files[f]->nstmts && rc == 0; i++) {
                const ast_stmt *s = &files[f]->stmts[i];
                rc = pass == 0 ? compile_count(c, s) : compile_fill(c, s);
            }
        }
    }
    if (rc == 0)
        rc = compile_tool_finish(c);
    /* A policy with errors is never used: skip building its index. */
    if (rc == 0 && c->nerrors == 0)
        rc = compile_finish(c);
    return rc;
}

int compile_policy(ast_file *const *files, const trine_source *srcs, size_t n,
                   trine_diag *diag, trine_policy **out)
{
    *out = NULL;
    trine_policy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return TRINE_ENOMEM;
    atomic_init(&p->refs, 1);
    p->arena = compile_arena_new();
    if (p->arena == NULL) {
        free(p);
        return TRINE_ENOMEM;
    }
    compile_ctx c = {.p = p, .a = p->arena, .diag = diag};
    int rc = compile_run(&c, files, srcs, n);
    pv_free(&c.blocks);
    pv_free(&c.binds);
    pv_free(&c.servers);
    pv_free(&c.tools);
    pv_free(&c.scopes);
    pv_free(&c.roles);
    if (rc == 0 && c.nerrors > 0)
        rc = TRINE_EPOLICY;
    if (rc != 0) {
        compile_policy_free(p);
        return rc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->loaded_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    *out = p;
    return 0;
}
