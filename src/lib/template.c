/*
 * template.c - the arguments of a check: `arg` constraints, filling `needs`
 * templates, and filling consent prompts.
 *
 * A needs template turns arguments into the resource a rule is matched
 * against, so its values are hostile: they must not smuggle in a wildcard,
 * a control character, or a path step that escapes the intended place
 * (DESIGN §2.4 step 3, §2.5). A prompt is only shown to a person, so it takes
 * any string or number as it is.
 */
#include "lib/decision.h"
#include "lib/number.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char tmpl_default_prompt[] =
    "Allow {agent} to call {tool} on {server} for {user}?";

/* The default prompt, pre-split. Never written. */
static const char *ph_agent[] = {"agent"};
static const char *ph_tool[] = {"tool"};
static const char *ph_server[] = {"server"};
static const char *ph_user[] = {"user"};

static tmpl_part default_parts[] = {
    {false, "Allow ", 6, NULL, 0, false, false},
    {true, "agent", 5, ph_agent, 1, false, false},
    {false, " to call ", 9, NULL, 0, false, false},
    {true, "tool", 4, ph_tool, 1, false, false},
    {false, " on ", 4, NULL, 0, false, false},
    {true, "server", 6, ph_server, 1, false, false},
    {false, " for ", 5, NULL, 0, false, false},
    {true, "user", 4, ph_user, 1, false, false},
    {false, "?", 1, NULL, 0, false, false},
};

static const cpl_template default_prompt = {
    tmpl_default_prompt, default_parts,
    sizeof default_parts / sizeof default_parts[0], false};

const json_t *tmpl_lookup(const json_t *args, const char *const *path,
                          size_t npath)
{
    const json_t *v = args;
    for (size_t i = 0; i < npath; i++) {
        if (!json_is_object(v))
            return NULL;
        v = json_object_get(v, path[i]);
    }
    if (v == NULL || json_is_null(v) || npath == 0)
        return NULL;
    return v;
}

/* Checks one {p...} segment (len bytes at s). */
static bool dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') ||
           (len == 2 && s[0] == '.' && s[1] == '.');
}

const char *tmpl_value_problem(const json_t *v, bool rest)
{
    if (v == NULL)
        return "is missing";
    if (json_is_integer(v))
        return NULL; /* digits and a sign: always safe */
    if (!json_is_string(v))
        return "must be a string or an integer";

    const char *s = json_string_value(v);
    const unsigned char *u = (const unsigned char *)s;
    size_t n = json_string_length(v);
    if (n == 0)
        return "must not be empty";
    bool slash = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c < 0x80) {
            /* Cc in ASCII: U+0000-U+001F and U+007F. */
            if (c < 0x20 || c == 0x7f)
                return "must not contain a control character";
            if (c == '*' || c == '?')
                return "must not contain '*' or '?'";
            slash |= c == '/';
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (len > n - i || utf8_check(s + i, len) != len)
            return "must be valid UTF-8";
        /* Cc past ASCII: U+0080-U+009F, encoded C2 80 to C2 9F. */
        if (c == 0xc2 && u[i + 1] <= 0x9f)
            return "must not contain a control character";
        i += len - 1;
    }
    if (!rest) {
        if (slash)
            return "must not contain '/'";
        if (dot_segment(s, n))
            return "must not be '.' or '..'";
        return NULL;
    }
    /* {p...}: segments between slashes; the first and the last may be empty
     * (a leading or trailing slash), an inner one may not. */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '/')
            continue;
        size_t len = i - start;
        if (dot_segment(s + start, len))
            return "must not contain a '.' or '..' segment";
        if (len == 0 && start != 0 && i != n)
            return "must not contain an empty segment";
        start = i + 1;
    }
    return NULL;
}

/* The text of a safe value: a string's bytes, or an integer's digits in
 * numbuf. */
static void value_text(const json_t *v, char numbuf[32], const char **s,
                       size_t *len)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
        return;
    }
    int n =
        snprintf(numbuf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    *s = numbuf;
    *len = n > 0 ? (size_t)n : 0;
}

/* The text that stands for a redacted value in the audit log. */
static const char redacted_text[] = "[redacted]";

/* With mask set and p redacted, points *s and *len at redacted_text and
 * returns true (the audit log's copy); else returns false. */
static bool masked_text(const tmpl_part *p, bool mask, const char **s,
                        size_t *len)
{
    if (!mask || !p->redacted)
        return false;
    *s = redacted_text;
    *len = sizeof redacted_text - 1;
    return true;
}

/* The text placeholder p is filled with: v's, or its masked text. */
static void part_text(const tmpl_part *p, const json_t *v, bool mask,
                      char numbuf[32], const char **s, size_t *len)
{
    if (!masked_text(p, mask, s, len))
        value_text(v, numbuf, s, len);
}

int tmpl_fill_values(trine_decision *d, const cpl_template *t,
                     const json_t *const *vals, bool mask, const char **out,
                     size_t *len)
{
    /* Measure, then copy, so the arena holds exactly the filled text. An
     * integer is formatted twice; that is cheaper than a scratch buffer. */
    size_t total = 0;
    char numbuf[32];
    for (size_t i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        if (!p->is_ph) {
            total += p->len;
            continue;
        }
        if (!json_is_string(vals[i]) && !json_is_integer(vals[i]))
            return TRINE_EINVAL;
        const char *s;
        size_t n;
        part_text(p, vals[i], mask, numbuf, &s, &n);
        total += n;
    }
    char *buf = dec_alloc(d, total + 1);
    if (buf == NULL)
        return TRINE_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        const char *s = p->text;
        size_t n = p->len;
        if (p->is_ph)
            part_text(p, vals[i], mask, numbuf, &s, &n);
        memcpy(buf + at, s, n);
        at += n;
    }
    buf[at] = '\0';
    *out = buf;
    *len = at;
    return 0;
}

int tmpl_fill_needs(trine_decision *d, const cpl_template *t,
                    const json_t *args, const char **out, size_t *len)
{
    const json_t **vals = dec_alloc(d, (t->nparts + 1) * sizeof *vals);
    if (vals == NULL)
        return TRINE_ENOMEM;
    for (size_t i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        vals[i] = NULL;
        if (!p->is_ph)
            continue;
        vals[i] = tmpl_lookup(args, p->path, p->npath);
        if (tmpl_value_problem(vals[i], p->rest) != NULL)
            return TRINE_EINVAL;
    }
    return tmpl_fill_values(d, t, vals, false, out, len);
}

/* The text a prompt placeholder stands for, in *s and *len (numbuf holds a
 * number's text). */
static void prompt_value(const tmpl_part *p, const json_t *args,
                         const tmpl_vars *vars, bool mask, char numbuf[32],
                         const char **s, size_t *len)
{
    *s = "";
    *len = 0;
    if (p->npath == 1 && !p->rest) {
        const char *name = p->path[0];
        const char *reserved = NULL;
        bool is_reserved = true;
        if (strcmp(name, "agent") == 0)
            reserved = vars->agent;
        else if (strcmp(name, "user") == 0)
            reserved = vars->user;
        else if (strcmp(name, "server") == 0)
            reserved = vars->server;
        else if (strcmp(name, "tool") == 0)
            reserved = vars->tool;
        else
            is_reserved = false;
        if (is_reserved) {
            if (reserved != NULL) {
                *s = reserved;
                *len = strlen(reserved);
            }
            return;
        }
    }
    if (masked_text(p, mask, s, len))
        return;
    const json_t *v = tmpl_lookup(args, p->path, p->npath);
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
    } else if (json_is_integer(v)) {
        value_text(v, numbuf, s, len);
    } else if (json_is_real(v)) {
        *len = canon_real(json_real_value(v), numbuf);
        *s = numbuf;
    }
}

int tmpl_fill_prompt(trine_decision *d, const cpl_template *t,
                     const json_t *args, const tmpl_vars *vars, bool mask,
                     const char **out, size_t *len)
{
    if (t == NULL)
        t = &default_prompt;
    size_t total = 0;
    char numbuf[32];
    for (size_t i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        const char *s = p->text;
        size_t n = p->len;
        if (p->is_ph)
            prompt_value(p, args, vars, mask, numbuf, &s, &n);
        if (n > SIZE_MAX / 2 - total)
            return TRINE_ENOMEM;
        total += n;
    }
    char *buf = dec_alloc(d, total + 1);
    if (buf == NULL)
        return TRINE_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < t->nparts; i++) {
        const tmpl_part *p = &t->parts[i];
        const char *s = p->text;
        size_t n = p->len;
        if (p->is_ph)
            prompt_value(p, args, vars, mask, numbuf, &s, &n);
        memcpy(buf + at, s, n);
        at += n;
    }
    buf[at] = '\0';
    *out = buf;
    *len = at;
    return 0;
}

/* ---- Argument constraints ---------------------------------------------- */

/* Formats a policy number into buf and returns buf, for use as a message
 * argument: an integer exactly, a real in its shortest exact form. */
static const char *num_text(const ast_number *v, char buf[NUM_BUF])
{
    if (v->is_int)
        snprintf(buf, NUM_BUF, "%" PRId64, v->i);
    else
        num_readable(v->d, buf);
    return buf;
}

/* A JSON number or a policy number, exactly: two integers compare as
 * integers (a double would round them past 2^53); otherwise both as long
 * double, which holds every int64 and every double exactly on the
 * platforms trine supports. */
typedef struct exact_num {
    bool is_int;
    int64_t i;
    long double x;
} exact_num;

static exact_num json_num(const json_t *v)
{
    exact_num n = {.is_int = json_is_integer(v)};
    if (n.is_int) {
        n.i = json_integer_value(v);
        n.x = (long double)n.i;
    } else {
        n.x = (long double)json_real_value(v);
    }
    return n;
}

static exact_num policy_num(const ast_number *v)
{
    exact_num n = {.is_int = v->is_int, .i = v->i};
    n.x = v->is_int ? (long double)v->i : (long double)v->d;
    return n;
}

/* -1, 0 or 1 as a is below, equal to or above b. */
static int num_cmp(exact_num a, exact_num b)
{
    if (a.is_int && b.is_int)
        return (a.i > b.i) - (a.i < b.i);
    return (a.x > b.x) - (a.x < b.x);
}

/* Compares two JSON values the way `in` does: numbers by value (1 equals
 * 1.0), strings by their bytes, and a boolean never equals a number. */
static bool json_value_eq(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(json_num(a), json_num(b)) == 0;
    if (json_is_string(a) && json_is_string(b)) {
        size_t n = json_string_length(a);
        return n == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), n) == 0;
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    return json_equal((json_t *)a, (json_t *)b) != 0;
}

/* Counts the code points of n bytes of UTF-8. */
static size_t count_cps(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            k++;
    }
    return k;
}

int eval_check_arg(trine_decision *d, const cpl_arg *a, const json_t *v,
                   const char **why)
{
    const char *path = a->path_text;
    const char *w = NULL;
    bool fail = false;
    char num[NUM_BUF]; /* the bound, formatted only for a message */

    if (v == NULL) {
        /* Only `required` applies to an absent argument. */
        if (a->kind != AST_C_REQUIRED)
            return 0;
        fail = true;
        w = dec_printf(d, "%s is required", path);
    } else if (a->kind == AST_C_MATCHES) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        /* The regex as written, "\/" and flag included: a->text is
         * "matches /.../". */
        const char *re = a->text + strlen("matches ");
        if (!json_is_string(v)) {
            fail = true;
            w = dec_printf(d, "%s must be a string to match %s", path, re);
        } else if (utf8_check(s, n) != n || !pattern_match(&a->regex, s, n)) {
            fail = true;
            w = dec_printf(d, "%s does not match %s", path, re);
        }
    } else if (a->kind == AST_C_MAX_LENGTH) {
        if (!json_is_string(v)) {
            fail = true;
            w = dec_printf(d, "%s must be a string (max_length %s)", path,
                           num_text(&a->number, num));
        } else if ((uint64_t)count_cps(json_string_value(v),
                                       json_string_length(v)) >
                   (uint64_t)a->number.i) {
            fail = true;
            w = dec_printf(d, "%s is longer than %s code points", path,
                           num_text(&a->number, num));
        }
    } else if (a->kind >= AST_C_LT && a->kind <= AST_C_GE) {
        static const char *const ops[] = {"<", "<=", ">", ">="};
        const char *op = ops[a->kind - AST_C_LT];
        if (!json_is_number(v)) {
            fail = true;
            w = dec_printf(d, "%s must be a number (%s %s)", path, op,
                           num_text(&a->number, num));
        } else {
            int c = num_cmp(json_num(v), policy_num(&a->number));
            bool ok = a->kind == AST_C_LT   ? c < 0
                      : a->kind == AST_C_LE ? c <= 0
                      : a->kind == AST_C_GT ? c > 0
                                            : c >= 0;
            if (!ok) {
                fail = true;
                w = dec_printf(d, "%s must be %s %s", path, op,
                               num_text(&a->number, num));
            }
        }
    } else if (a->kind == AST_C_IN) {
        bool found = false;
        for (size_t i = 0; i < a->nliterals && !found; i++)
            found = json_value_eq(v, a->literals[i]);
        if (!found) {
            fail = true;
            w = dec_printf(d, "%s is not one of the allowed values", path);
        }
    }
    if (!fail)
        return 0;
    if (w == NULL)
        return TRINE_ENOMEM;
    *why = w;
    return 1;
}
