/*
 * compile_tool.c - compiles `server` and `tool` statements: servers merged
 * by name (audiences gathered, single-valued settings checked), tools merged
 * by server and name (needs with their templates, argument constraints, one
 * consent, redacted paths).
 */
#include "lib/compile.h"
#include "lib/number.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A merged server while it is being built. */
typedef struct compile_server {
    cpl_server s;
    size_t aud_cap;
    bool has_rm;
    ast_loc rm_at; /* the first resource_metadata */
    ast_delegation deleg;
    ast_loc deleg_at; /* the first delegation */
    struct compile_tool *wild;
} compile_server;

/* A merged tool while it is being built. */
typedef struct compile_tool {
    cpl_tool t;
    compile_server *srv;
    ast_loc at; /* the first declaration */
    size_t needs_cap, args_cap, redacts_cap;
    const ast_consent *consent; /* the first consent (borrowed from the
                                   tree, during compilation only) */
} compile_tool;

/* Appends `tool "<server>" "<name>"` (or `*`) to b, for messages. */
static void tool_label(strbuf *b, const compile_tool *ct)
{
    sb_puts(b, "tool ");
    compile_quote(b, ct->t.server);
    sb_putc(b, ' ');
    if (ct->t.name != NULL)
        compile_quote(b, ct->t.name);
    else
        sb_putc(b, '*');
}

static bool tool_ident_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool tool_ident_char(char ch)
{
    return tool_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '-';
}

/* Returns the length of the identifier at s, 0 when none starts there. */
static size_t tool_ident(const char *s)
{
    if (!tool_ident_start(s[0]))
        return 0;
    size_t n = 1;
    while (tool_ident_char(s[n]))
        n++;
    return n;
}

/* Splits a dotted path (IDENT { "." IDENT }) into arena segments. Returns 0
 * with *seg and *nseg set, 1 when the path is malformed, or TRINE_ENOMEM. */
static int tool_split_path(compile_ctx *c, const char *text, size_t len,
                           const char ***seg, size_t *nseg)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '.';
    const char **out = compile_alloc(c->a, n * sizeof *out);
    if (out == NULL)
        return TRINE_ENOMEM;
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        size_t id = tool_ident(text + start);
        if (id != i - start)
            return 1;
        out[k] = compile_strndup(c->a, text + start, i - start);
        if (out[k++] == NULL)
            return TRINE_ENOMEM;
        start = i + 1;
    }
    *seg = out;
    *nseg = n;
    return 0;
}

/* Records that a path (an arg or a redact) is malformed. */
static void tool_bad_path(compile_ctx *c, const ast_loc *at, const char *p)
{
    strbuf b;
    sb_init(&b);
    compile_quote(&b, p);
    compile_error(c, at,
                  "invalid argument path %s: expected names joined "
                  "by dots, such as opts.limit",
                  b.data ? b.data : "");
    sb_free(&b);
}

/* ---- Templates --------------------------------------------------------- */

/* Matches a placeholder at s[0] == '{': IDENT { "." IDENT } ["..."] "}".
 * Returns its length (through the '}') or 0; *plen is the path's length,
 * *rest whether it ends in "...". */
static size_t tmpl_placeholder(const char *s, size_t *plen, bool *rest)
{
    size_t j = 1;
    *rest = false;
    for (;;) {
        size_t id = tool_ident(s + j);
        if (id == 0)
            return 0;
        j += id;
        if (s[j] == '.' && s[j + 1] != '.') {
            j++;
            continue;
        }
        break;
    }
    *plen = j - 1;
    if (strncmp(s + j, "...", 3) == 0) {
        *rest = true;
        j += 3;
    }
    return s[j] == '}' ? j + 1 : 0;
}

/* Parses a needs template or a consent prompt into literal parts and
 * placeholders. A brace that is not part of a placeholder is an error at
 * the template's position (what is "template" or "prompt"). */
static int tool_template(compile_ctx *c, const char *src, const ast_loc *at,
                         const char *what, cpl_template *out)
{
    size_t n = strlen(src), braces = 0;
    for (size_t i = 0; i < n; i++)
        braces += src[i] == '{';
    out->src = compile_strndup(c->a, src, n);
    out->parts = compile_alloc(c->a, (2 * braces + 1) * sizeof *out->parts);
    if (out->src == NULL || out->parts == NULL)
        return TRINE_ENOMEM;
    size_t i = 0, lit = 0;
    while (i < n) {
        if (src[i] != '{' && src[i] != '}') {
            i++;
            continue;
        }
        size_t plen = 0;
        bool rest = false;
        size_t len =
            src[i] == '{' ? tmpl_placeholder(src + i, &plen, &rest) : 0;
        if (len == 0) {
            strbuf b;
            sb_init(&b);
            compile_quote(&b, src);
            if (src[i] == '{')
                compile_error(c, at,
                              "invalid %s %s: \"{\" must open a "
                              "placeholder {name} or {name...}; a literal "
                              "\"{\" is not allowed",
                              what, b.data ? b.data : "");
            else
                compile_error(c, at,
                              "invalid %s %s: \"}\" closes no "
                              "placeholder; a literal \"}\" is not allowed",
                              what, b.data ? b.data : "");
            sb_free(&b);
            out->nparts = 0;
            return 0;
        }
        if (i > lit) {
            tmpl_part *lp = &out->parts[out->nparts++];
            lp->text = compile_strndup(c->a, src + lit, i - lit);
            if (lp->text == NULL)
                return TRINE_ENOMEM;
            lp->len = i - lit;
        }
        tmpl_part *pp = &out->parts[out->nparts++];
        pp->is_ph = true;
        pp->rest = rest;
        pp->text = compile_strndup(c->a, src + i + 1, plen);
        if (pp->text == NULL)
            return TRINE_ENOMEM;
        pp->len = plen;
        int rc = tool_split_path(c, pp->text, plen, &pp->path, &pp->npath);
        if (rc < 0)
            return rc;
        i += len;
        lit = i;
    }
    if (n > lit) {
        tmpl_part *lp = &out->parts[out->nparts++];
        lp->text = compile_strndup(c->a, src + lit, n - lit);
        if (lp->text == NULL)
            return TRINE_ENOMEM;
        lp->len = n - lit;
    }
    return 0;
}

/* ---- Servers ----------------------------------------------------------- */

/* Finds or creates the server named name; a new server is declared only
 * when a server statement creates it. */
static int tool_server_get(compile_ctx *c, const ast_stmt *s,
                           compile_server **out)
{
    compile_server *cs = strmap_get(&c->p->servers, s->name);
    if (cs == NULL) {
        cs = compile_alloc(c->a, sizeof *cs);
        if (cs == NULL)
            return TRINE_ENOMEM;
        cs->s.name = compile_strdup(c->a, s->name);
        if (cs->s.name == NULL || compile_keep_map(c->a, &cs->s.tools) != 0 ||
            strmap_put(&c->p->servers, cs->s.name, cs) != 0 ||
            pv_push(&c->servers, cs) != 0)
            return TRINE_ENOMEM;
        cs->s.file = c->file;
        cs->s.line = s->at.line;
        cs->s.col = s->at.col;
    }
    if (s->kind == AST_SERVER && !cs->s.declared) {
        cs->s.declared = true;
        cs->s.file = c->file;
        cs->s.line = s->at.line;
        cs->s.col = s->at.col;
    }
    *out = cs;
    return 0;
}

static const char *deleg_name(ast_delegation d)
{
    return d == AST_DELEG_FULL_CHAIN ? "full_chain" : "current_actor";
}

static int tool_server_fill(compile_ctx *c, compile_server *cs,
                            const ast_stmt *s)
{
    if (cs->s.audiences == NULL && cs->aud_cap > 0) {
        cs->s.audiences =
            compile_alloc(c->a, cs->aud_cap * sizeof *cs->s.audiences);
        if (cs->s.audiences == NULL)
            return TRINE_ENOMEM;
    }
    for (size_t i = 0; i < s->naudiences; i++) {
        const char *aud = s->audiences[i].text;
        bool seen = false;
        for (size_t k = 0; k < cs->s.naudiences && !seen; k++)
            seen = strcmp(cs->s.audiences[k], aud) == 0;
        if (seen || cs->s.naudiences >= cs->aud_cap)
            continue;
        cs->s.audiences[cs->s.naudiences] = compile_strdup(c->a, aud);
        if (cs->s.audiences[cs->s.naudiences++] == NULL)
            return TRINE_ENOMEM;
    }
    char where[512];
    for (size_t i = 0; i < s->nresource_metadata; i++) {
        const ast_name *rm = &s->resource_metadata[i];
        if (!cs->has_rm) {
            cs->has_rm = true;
            cs->rm_at = rm->at;
            cs->s.resource_metadata = compile_strdup(c->a, rm->text);
            if (cs->s.resource_metadata == NULL)
                return TRINE_ENOMEM;
        } else if (strcmp(cs->s.resource_metadata, rm->text) != 0) {
            strbuf b;
            sb_init(&b);
            compile_quote(&b, cs->s.name);
            sb_puts(&b, " has two resource_metadata values: ");
            compile_quote(&b, rm->text);
            sb_puts(&b, " here and ");
            compile_quote(&b, cs->s.resource_metadata);
            compile_where(where, sizeof where, &cs->rm_at);
            compile_error(c, &rm->at, "server %s at %s", b.data ? b.data : "",
                          where);
            sb_free(&b);
        }
    }
    for (size_t i = 0; i < s->ndelegations; i++) {
        ast_delegation d = s->delegations[i];
        const ast_loc *at = &s->delegation_at[i];
        if (cs->deleg == AST_DELEG_UNSET) {
            cs->deleg = d;
            cs->deleg_at = *at;
            cs->s.full_chain = d == AST_DELEG_FULL_CHAIN;
        } else if (cs->deleg != d) {
            strbuf b;
            sb_init(&b);
            compile_quote(&b, cs->s.name);
            compile_where(where, sizeof where, &cs->deleg_at);
            compile_error(c, at,
                          "server %s has two delegation values: %s "
                          "here and %s at %s",
                          b.data ? b.data : "", deleg_name(d),
                          deleg_name(cs->deleg), where);
            sb_free(&b);
        }
    }
    return 0;
}

/* ---- Tools ------------------------------------------------------------- */

static int tool_get(compile_ctx *c, const ast_stmt *s, bool create,
                    compile_tool **out)
{
    compile_server *cs;
    int rc = tool_server_get(c, s, &cs);
    if (rc != 0)
        return rc;
    compile_tool *ct =
        s->tool == NULL ? cs->wild : strmap_get(&cs->s.tools, s->tool);
    if (ct != NULL || !create) {
        *out = ct;
        return 0;
    }
    ct = compile_alloc(c->a, sizeof *ct);
    if (ct == NULL || pv_push(&c->tools, ct) != 0)
        return TRINE_ENOMEM;
    ct->srv = cs;
    ct->at = s->at;
    ct->t.server = cs->s.name;
    ct->t.file = c->file;
    ct->t.line = s->at.line;
    ct->t.col = s->at.col;
    ct->t.consent = TRINE_CONSENT_NONE;
    ct->t.consent_duration_s = -1;
    if (s->tool == NULL) {
        cs->wild = ct;
    } else {
        ct->t.name = compile_strdup(c->a, s->tool);
        if (ct->t.name == NULL ||
            strmap_put(&cs->s.tools, ct->t.name, &ct->t) != 0)
            return TRINE_ENOMEM;
    }
    *out = ct;
    return 0;
}

int compile_tool_count(compile_ctx *c, const ast_stmt *s)
{
    if (s->kind == AST_SERVER) {
        compile_server *cs;
        int rc = tool_server_get(c, s, &cs);
        if (rc == 0)
            cs->aud_cap += s->naudiences;
        return rc;
    }
    compile_tool *ct;
    int rc = tool_get(c, s, true, &ct);
    if (rc != 0)
        return rc;
    ct->needs_cap += s->nneeds;
    ct->args_cap += s->nargs;
    ct->redacts_cap += s->nredacts;
    return 0;
}

static int tool_needs(compile_ctx *c, compile_tool *ct, const ast_needs *an)
{
    cpl_needs *nd = &ct->t.needs[ct->t.nneeds++];
    nd->file = c->file;
    nd->line = an->at.line;
    nd->col = an->at.col;
    nd->actions = compile_alloc(c->a, an->nactions * sizeof *nd->actions);
    nd->action_lens =
        compile_alloc(c->a, an->nactions * sizeof *nd->action_lens);
    if (nd->actions == NULL || nd->action_lens == NULL)
        return TRINE_ENOMEM;
    for (size_t i = 0; i < an->nactions; i++) {
        cpl_action a;
        int rc = compile_action(c, &an->actions[i], &a);
        if (rc != 0)
            return rc;
        if (a.len > 0 && a.kind != ACT_EXACT) {
            strbuf b;
            sb_init(&b);
            compile_quote(&b, an->actions[i].text);
            compile_error(c, &an->actions[i].at,
                          "a tool needs exact "
                          "actions, not the wildcard %s: list each action "
                          "the tool performs",
                          b.data ? b.data : "");
            sb_free(&b);
        }
        nd->actions[nd->nactions] =
            an->actions[i].text ? compile_strdup(c->a, an->actions[i].text)
                                : "";
        if (nd->actions[nd->nactions] == NULL)
            return TRINE_ENOMEM;
        nd->action_lens[nd->nactions] = strlen(nd->actions[nd->nactions]);
        nd->nactions++;
    }
    return tool_template(c, an->tmpl ? an->tmpl : "", &an->tmpl_at, "template",
                         &nd->tmpl);
}

/* Appends a number as written: an integer exactly, a real in the shortest
 * decimal form that reads back the same. */
static void tool_number(strbuf *b, const ast_number *v)
{
    if (v->is_int) {
        sb_printf(b, "%" PRId64, v->i);
        return;
    }
    char buf[NUM_BUF];
    sb_putn(b, buf, num_shortest(v->d, buf));
}

/* Writes the constraint as a policy author wrote it, for reasons. */
static void tool_constraint_text(strbuf *b, const ast_arg *aa)
{
    static const char *const ops[] = {[AST_C_LT] = "<",
                                      [AST_C_LE] = "<=",
                                      [AST_C_GT] = ">",
                                      [AST_C_GE] = ">="};
    switch (aa->kind) {
    case AST_C_MATCHES: {
        sb_puts(b, "matches /");
        for (const char *p = aa->regex.text ? aa->regex.text : ""; *p; p++) {
            if (*p == '/')
                sb_putc(b, '\\');
            sb_putc(b, *p);
        }
        sb_puts(b, aa->regex.icase ? "/i" : "/");
        break;
    }
    case AST_C_IN:
        sb_puts(b, "in [");
        for (size_t i = 0; i < aa->nliterals; i++) {
            char *t =
                json_dumps(aa->literals[i], JSON_ENCODE_ANY | JSON_COMPACT);
            if (t == NULL) {
                b->oom = true;
                return;
            }
            sb_puts(b, i > 0 ? ", " : "");
            sb_puts(b, t);
            free(t);
        }
        sb_putc(b, ']');
        break;
    case AST_C_LT:
    case AST_C_LE:
    case AST_C_GT:
    case AST_C_GE:
        sb_printf(b, "%s ", ops[aa->kind]);
        tool_number(b, &aa->number);
        break;
    case AST_C_MAX_LENGTH:
        sb_puts(b, "max_length ");
        tool_number(b, &aa->number);
        break;
    case AST_C_REQUIRED:
        sb_puts(b, "required");
        break;
    }
}

static int tool_arg(compile_ctx *c, compile_tool *ct, const ast_arg *aa)
{
    cpl_arg *a = &ct->t.args[ct->t.nargs++];
    const char *path = aa->path ? aa->path : "";
    a->path_text = compile_strdup(c->a, path);
    if (a->path_text == NULL)
        return TRINE_ENOMEM;
    int rc = tool_split_path(c, path, strlen(path), &a->path, &a->npath);
    if (rc < 0)
        return rc;
    if (rc > 0)
        tool_bad_path(c, &aa->at, path);
    a->kind = aa->kind;
    a->number = aa->number;
    a->file = c->file;
    a->line = aa->at.line;
    if (aa->kind == AST_C_MATCHES) {
        rc = compile_pattern(c, &aa->regex, &a->regex);
        if (rc != 0)
            return rc;
    }
    if (aa->kind == AST_C_MAX_LENGTH &&
        !(aa->number.is_int && aa->number.i >= 0)) {
        strbuf b;
        sb_init(&b);
        tool_number(&b, &aa->number);
        compile_error(c, &aa->at,
                      "max_length must be a non-negative "
                      "integer, not %s",
                      b.data ? b.data : "");
        sb_free(&b);
    }
    if (aa->kind == AST_C_IN && aa->nliterals > 0) {
        a->literals = compile_alloc(c->a, aa->nliterals * sizeof *a->literals);
        if (a->literals == NULL)
            return TRINE_ENOMEM;
        for (size_t i = 0; i < aa->nliterals; i++) {
            /* A copy of its own: the tree is freed after compilation. */
            json_t *v = json_deep_copy(aa->literals[i]);
            if (v == NULL || compile_keep_json(c->a, v) != 0)
                return TRINE_ENOMEM;
            a->literals[a->nliterals++] = v;
        }
    }
    strbuf b;
    sb_init(&b);
    tool_constraint_text(&b, aa);
    a->text = b.oom ? NULL : compile_strdup(c->a, b.data ? b.data : "");
    sb_free(&b);
    return a->text == NULL ? TRINE_ENOMEM : 0;
}

static trine_consent_mode tool_consent_mode(ast_consent_mode m)
{
    switch (m) {
    case AST_CONSENT_ALWAYS:
        return TRINE_CONSENT_ALWAYS;
    case AST_CONSENT_SESSION:
        return TRINE_CONSENT_SESSION;
    case AST_CONSENT_ONCE:
        return TRINE_CONSENT_ONCE;
    }
    return TRINE_CONSENT_NONE;
}

static bool tool_same_consent(const ast_consent *a, const ast_consent *b)
{
    if (a->mode != b->mode)
        return false;
    if (a->mode == AST_CONSENT_ONCE && a->duration_s != b->duration_s)
        return false;
    if ((a->prompt == NULL) != (b->prompt == NULL))
        return false;
    return a->prompt == NULL || strcmp(a->prompt, b->prompt) == 0;
}

static int tool_consent(compile_ctx *c, compile_tool *ct, const ast_consent *co)
{
    if (ct->consent != NULL) {
        if (!tool_same_consent(ct->consent, co)) {
            strbuf b;
            sb_init(&b);
            tool_label(&b, ct);
            char where[512];
            compile_where(where, sizeof where, &ct->consent->at);
            compile_error(c, &co->at,
                          "%s has two different consents: this "
                          "one and the one at %s; a tool has one consent",
                          b.data ? b.data : "", where);
            sb_free(&b);
        }
        return 0;
    }
    ct->consent = co;
    ct->t.consent = tool_consent_mode(co->mode);
    ct->t.consent_duration_s =
        co->mode == AST_CONSENT_ONCE && co->duration_s >= 0 ? co->duration_s
                                                            : -1;
    ct->t.consent_file = c->file;
    ct->t.consent_line = co->at.line;
    if (co->prompt == NULL)
        return 0;
    ct->t.has_prompt = true;
    return tool_template(c, co->prompt, &co->at, "prompt", &ct->t.prompt);
}

static int tool_redact(compile_ctx *c, compile_tool *ct, const ast_name *r)
{
    const char *text = r->text ? r->text : "";
    for (size_t i = 0; i < ct->t.nredacts; i++) {
        if (strcmp(ct->t.redacts[i].text, text) == 0)
            return 0;
    }
    cpl_path *p = &ct->t.redacts[ct->t.nredacts];
    int rc = tool_split_path(c, text, strlen(text), &p->seg, &p->nseg);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        tool_bad_path(c, &r->at, text);
        return 0;
    }
    p->text = compile_strdup(c->a, text);
    if (p->text == NULL)
        return TRINE_ENOMEM;
    ct->t.nredacts++;
    return 0;
}

/* Allocates a tool's arrays at the sizes the first pass counted. */
static int tool_alloc(compile_ctx *c, compile_tool *ct)
{
    cpl_tool *t = &ct->t;
    if (t->needs != NULL || t->args != NULL || t->redacts != NULL)
        return 0;
    t->needs = compile_alloc(c->a, ct->needs_cap * sizeof *t->needs);
    t->args = compile_alloc(c->a, ct->args_cap * sizeof *t->args);
    t->redacts = compile_alloc(c->a, ct->redacts_cap * sizeof *t->redacts);
    return t->needs && t->args && t->redacts ? 0 : TRINE_ENOMEM;
}

int compile_tool_fill(compile_ctx *c, const ast_stmt *s)
{
    if (s->kind == AST_SERVER) {
        compile_server *cs;
        int rc = tool_server_get(c, s, &cs);
        return rc != 0 ? rc : tool_server_fill(c, cs, s);
    }
    compile_tool *ct;
    int rc = tool_get(c, s, false, &ct);
    if (rc == 0 && ct == NULL)
        rc = TRINE_ENOMEM; /* the first pass created it: cannot happen */
    if (rc == 0)
        rc = tool_alloc(c, ct);
    for (size_t i = 0; rc == 0 && i < s->nneeds; i++)
        rc = tool_needs(c, ct, &s->needs[i]);
    for (size_t i = 0; rc == 0 && i < s->nargs; i++)
        rc = tool_arg(c, ct, &s->args[i]);
    for (size_t i = 0; rc == 0 && i < s->nconsents; i++)
        rc = tool_consent(c, ct, &s->consents[i]);
    for (size_t i = 0; rc == 0 && i < s->nredacts; i++)
        rc = tool_redact(c, ct, &s->redacts[i]);
    return rc;
}

/* True when one of the n redact paths is the placeholder's path or a
 * prefix of it: the placeholder's value lies inside a redacted value. */
static bool tool_covered(const cpl_path *redacts, size_t n, const tmpl_part *ph)
{
    for (size_t i = 0; i < n; i++) {
        const cpl_path *r = &redacts[i];
        if (r->nseg > ph->npath)
            continue;
        size_t k = 0;
        while (k < r->nseg && strcmp(r->seg[k], ph->path[k]) == 0)
            k++;
        if (k == r->nseg)
            return true;
    }
    return false;
}

/* Marks the placeholders of tm whose values the tool redacts, so that the
 * decision keeps a copy of the filled text for the audit log without them:
 * `redact` promises the value never reaches the log, and a resource or a
 * prompt would otherwise carry it there. */
static void tool_mark_redacted(const cpl_tool *t, cpl_template *tm)
{
    for (size_t i = 0; i < tm->nparts; i++) {
        tmpl_part *ph = &tm->parts[i];
        if (ph->is_ph && tool_covered(t->redacts, t->nredacts, ph)) {
            ph->redacted = true;
            tm->any_redacted = true;
        }
    }
}

int compile_tool_finish(compile_ctx *c)
{
    trine_policy *p = c->p;
    for (size_t i = 0; i < c->tools.len; i++) {
        compile_tool *ct = c->tools.items[i];
        ct->consent = NULL; /* the tree is about to go */
        for (size_t k = 0; k < ct->t.nneeds; k++)
            tool_mark_redacted(&ct->t, &ct->t.needs[k].tmpl);
        if (ct->t.has_prompt)
            tool_mark_redacted(&ct->t, &ct->t.prompt);
        if (ct->t.nneeds > 0)
            continue;
        strbuf b;
        sb_init(&b);
        tool_label(&b, ct);
        compile_error(c, &ct->at,
                      "%s has no needs: say which actions it "
                      "needs with \"needs ACTION on TEMPLATE\"",
                      b.data ? b.data : "");
        sb_free(&b);
    }
    p->server_list =
        compile_alloc(c->a, (c->servers.len + 1) * sizeof *p->server_list);
    if (p->server_list == NULL)
        return TRINE_ENOMEM;
    for (size_t i = 0; i < c->servers.len; i++) {
        compile_server *cs = c->servers.items[i];
        p->server_list[p->nservers++] = &cs->s;
        p->counts.server += cs->s.declared;
        cs->s.wildcard = cs->wild ? &cs->wild->t : NULL;
        cs->s.tool_list = compile_alloc(c->a, (cs->s.tools.count + 1) *
                                                  sizeof *cs->s.tool_list);
        if (cs->s.tool_list == NULL)
            return TRINE_ENOMEM;
    }
    for (size_t i = 0; i < c->tools.len; i++) {
        compile_tool *ct = c->tools.items[i];
        cpl_server *s = &ct->srv->s;
        p->counts.tool++;
        if (ct->t.name != NULL && s->ntools < s->tools.count)
            s->tool_list[s->ntools++] = &ct->t;
    }
    return 0;
}
