/*
 * test_format.c - trine_format: golden inputs to exact outputs, comments
 * kept, the one-line rule at exactly 80 columns, canonical strings,
 * idempotence, meaning preserved, and refusal of broken sources.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/ast.h"
#include "lib/parser.h"
#include "lib/util.h"
#include "trine.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats len bytes of src; returns the caller-owned text. */
static char *format_n(const char *src, size_t len)
{
    trine_source s = {"f.trine", src, len};
    trine_diag *d = trine_diag_new();
    assert_non_null(d);
    char *out = NULL;
    size_t outlen = 0;
    int rc = trine_format(&s, d, &out, &outlen);
    if (rc != 0)
        trine_diag_print(d, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(trine_diag_count(d), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), outlen);
    trine_diag_free(d);
    return out;
}

static char *format(const char *src)
{
    return format_n(src, strlen(src));
}

/* ---- Meaning: the formatted source parses to the same tree. ---------- */

static void assert_names_equal(const ast_name *a, size_t na, const ast_name *b,
                               size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i].text, b[i].text);
}

static void assert_actions_equal(const ast_action *a, size_t na,
                                 const ast_action *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i].text, b[i].text);
}

static void assert_pattern_equal(const ast_pattern *a, const ast_pattern *b)
{
    assert_int_equal(a->is_regex, b->is_regex);
    assert_int_equal(a->icase, b->icase);
    if (a->text == NULL || b->text == NULL)
        assert_ptr_equal(a->text, b->text);
    else
        assert_string_equal(a->text, b->text);
}

static void assert_opt_str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_stmt_equal(const ast_stmt *a, const ast_stmt *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_opt_str_equal(a->name, b->name);
    assert_opt_str_equal(a->tool, b->tool);
    assert_int_equal(a->nrules, b->nrules);
    for (size_t i = 0; i < a->nrules; i++) {
        const ast_rule *x = &a->rules[i], *y = &b->rules[i];
        assert_int_equal(x->deny, y->deny);
        assert_actions_equal(x->actions, x->nactions, y->actions, y->nactions);
        assert_int_equal(x->npatterns, y->npatterns);
        for (size_t k = 0; k < x->npatterns; k++)
            assert_pattern_equal(&x->patterns[k], &y->patterns[k]);
    }
    assert_names_equal(a->roles, a->nroles, b->roles, b->nroles);
    assert_names_equal(a->audiences, a->naudiences, b->audiences,
                       b->naudiences);
    assert_names_equal(a->resource_metadata, a->nresource_metadata,
                       b->resource_metadata, b->nresource_metadata);
    assert_int_equal(a->ndelegations, b->ndelegations);
    for (size_t i = 0; i < a->ndelegations; i++)
        assert_int_equal(a->delegations[i], b->delegations[i]);
    assert_int_equal(a->nneeds, b->nneeds);
    for (size_t i = 0; i < a->nneeds; i++) {
        assert_actions_equal(a->needs[i].actions, a->needs[i].nactions,
                             b->needs[i].actions, b->needs[i].nactions);
        assert_string_equal(a->needs[i].tmpl, b->needs[i].tmpl);
    }
    assert_int_equal(a->nargs, b->nargs);
    for (size_t i = 0; i < a->nargs; i++) {
        const ast_arg *x = &a->args[i], *y = &b->args[i];
        assert_string_equal(x->path, y->path);
        assert_int_equal(x->kind, y->kind);
        assert_pattern_equal(&x->regex, &y->regex);
        assert_int_equal(x->number.is_int, y->number.is_int);
        assert_true(x->number.i == y->number.i);
        assert_true(x->number.d == y->number.d);
        assert_int_equal(x->nliterals, y->nliterals);
        for (size_t k = 0; k < x->nliterals; k++)
            assert_true(json_equal(x->literals[k], y->literals[k]));
    }
    assert_int_equal(a->nconsents, b->nconsents);
    for (size_t i = 0; i < a->nconsents; i++) {
        assert_int_equal(a->consents[i].mode, b->consents[i].mode);
        assert_int_equal(a->consents[i].duration_s, b->consents[i].duration_s);
        assert_opt_str_equal(a->consents[i].prompt, b->consents[i].prompt);
    }
    assert_names_equal(a->redacts, a->nredacts, b->redacts, b->nredacts);
}

static ast_file *parse_n(const char *src, size_t len)
{
    trine_source s = {"f.trine", src, len};
    ast_file *f = NULL;
    assert_int_equal(parse_source(&s, NULL, &f), 0);
    return f;
}

/* Formats src and checks: the output is idempotent, parses to the same
 * tree as src, and (when want is given) equals want exactly. */
static void check_n(const char *src, size_t len, const char *want)
{
    char *out = format_n(src, len);
    if (want != NULL && strcmp(out, want) != 0)
        fprintf(stderr, "--- got:\n%s--- want:\n%s---\n", out, want);
    if (want != NULL)
        assert_string_equal(out, want);
    char *again = format(out);
    assert_string_equal(again, out);

    ast_file *a = parse_n(src, len);
    ast_file *b = parse_n(out, strlen(out));
    assert_int_equal(a->nstmts, b->nstmts);
    for (size_t i = 0; i < a->nstmts; i++)
        assert_stmt_equal(&a->stmts[i], &b->stmts[i]);
    ast_free(a);
    ast_free(b);
    free(again);
    free(out);
}

static void check(const char *src, const char *want)
{
    check_n(src, strlen(src), want);
}

/* ---- Golden cases ---------------------------------------------------- */

static void test_design_example(void **state)
{
    (void)state;
    check(
        "server \"github\" {\n"
        "  audience \"https://mcp.example.com/github\"\n"
        "  resource_metadata \"https://mcp.example.com/.well-known/"
        "oauth-protected-resource\"\n"
        "}\n"
        "\n"
        "# S: what each OAuth scope grants\n"
        "scope \"repo:read\"  { allow repo.read, issues.read on \"repo:*\" }\n"
        "scope \"admin\"      { allow repo.* on \"repo:*\" }\n"
        "\n"
        "role maintainer {\n"
        "  allow repo.*, issues.* on \"repo:acme/*\"\n"
        "  deny  repo.delete      on \"repo:acme/prod-*\"\n"
        "}\n"
        "role reader { allow repo.read, issues.read on \"repo:acme/*\" }\n"
        "user \"alice\"     { roles maintainer }\n"
        "user *           { roles reader }\n"
        "agent \"desktop-app\" { allow repo.read, repo.write, "
        "issues.read, issues.create on \"repo:*\" }\n"
        "tool \"github\" \"get_issue\" {\n"
        "  needs issues.read on \"repo:{owner}/{repo}\"\n"
        "}\n"
        "tool \"github\" \"create_issue\" {\n"
        "  needs issues.create on \"repo:{owner}/{repo}\"\n"
        "  arg owner matches /[A-Za-z0-9-]{1,39}/\n"
        "  consent session \"Let {agent} open issues?\"\n"
        "}\n"
        "forbid * on \"repo:acme/secrets\"\n",
        /* want */
        "server \"github\" {\n"
        "  audience \"https://mcp.example.com/github\"\n"
        "  resource_metadata \"https://mcp.example.com/.well-known/"
        "oauth-protected-resource\"\n"
        "}\n"
        "\n"
        "# S: what each OAuth scope grants\n"
        "scope \"repo:read\" { allow repo.read, issues.read on \"repo:*\" }\n"
        "scope \"admin\" { allow repo.* on \"repo:*\" }\n"
        "\n"
        "role maintainer {\n"
        "  allow repo.*, issues.* on \"repo:acme/*\"\n"
        "  deny repo.delete on \"repo:acme/prod-*\"\n"
        "}\n"
        "role reader { allow repo.read, issues.read on \"repo:acme/*\" }\n"
        "user \"alice\" { roles maintainer }\n"
        "user * { roles reader }\n"
        "agent \"desktop-app\" {\n"
        "  allow repo.read, repo.write, issues.read, issues.create on "
        "\"repo:*\"\n"
        "}\n"
        "tool \"github\" \"get_issue\" { needs issues.read on "
        "\"repo:{owner}/{repo}\" }\n"
        "tool \"github\" \"create_issue\" {\n"
        "  needs issues.create on \"repo:{owner}/{repo}\"\n"
        "  arg owner matches /[A-Za-z0-9-]{1,39}/\n"
        "  consent session \"Let {agent} open issues?\"\n"
        "}\n"
        "forbid * on \"repo:acme/secrets\"\n");
}

static void test_spacing(void **state)
{
    (void)state;
    check("tool   \"s\"*{arg  a in[1,\"x\" ,true,null,-2.5]arg b<-1 arg c<=2\n"
          "arg d>0 arg e>=1.5 arg f max_length 3 arg g required\n"
          "consent once for 30m\"ok?\" redact a,b.c}"
          "forbid a.*,b\non\"x\",/y/i",
          "tool \"s\" * {\n"
          "  arg a in [1, \"x\", true, null, -2.5]\n"
          "  arg b < -1\n"
          "  arg c <= 2\n"
          "  arg d > 0\n"
          "  arg e >= 1.5\n"
          "  arg f max_length 3\n"
          "  arg g required\n"
          "  consent once for 30m \"ok?\"\n"
          "  redact a, b.c\n"
          "}\n"
          "forbid a.*, b on \"x\", /y/i\n");
    /* Blocks: empty, and a single item on one line. */
    check("scope \"e\" {\n\n}\nrole r {\n  allow a on \"b\"\n}\n"
          "user \"u\" {roles a\nroles b}\ngroup \"g\" { roles a, b }\n"
          "server \"s\" {delegation full_chain}\n",
          "scope \"e\" {}\n"
          "role r { allow a on \"b\" }\n"
          "user \"u\" {\n"
          "  roles a\n"
          "  roles b\n"
          "}\n"
          "group \"g\" { roles a, b }\n"
          "server \"s\" { delegation full_chain }\n");
}

static void test_width(void **state)
{
    (void)state;
    /* Exactly 80 columns stays on one line; 81 does not. */
    char x53[54], x54[55];
    memset(x53, 'x', 53);
    x53[53] = '\0';
    memset(x54, 'x', 54);
    x54[54] = '\0';
    char src[256], want[256];
    snprintf(src, sizeof src, "scope \"s\" { allow a on \"%s\" }\n", x53);
    assert_int_equal(strlen(src), 81);
    check(src, src);
    snprintf(src, sizeof src, "scope \"s\" { allow a on \"%s\" }\n", x54);
    snprintf(want, sizeof want, "scope \"s\" {\n  allow a on \"%s\"\n}\n", x54);
    check(src, want);
    /* Columns count characters, not bytes. */
    snprintf(src, sizeof src,
             "scope \"s\" { allow a on \"\xc3\xa9\xc3\xa9\xc3\xa9%s\" }\n",
             x53 + 3);
    check(src, src);
    /* Two items never share a line, however short. */
    check("tool \"s\" \"t\" { needs a on \"x\" consent once }",
          "tool \"s\" \"t\" {\n  needs a on \"x\"\n  consent once\n}\n");
}

static void test_strings(void **state)
{
    (void)state;
    check("scope \"\\u0041\\u00e9\\\"\\\\\\n\\t\\u0001\\u007f\\u0085\\u00a0"
          "\\uD83D\\uDE00\traw\" {}",
          "scope \"A\xc3\xa9\\\"\\\\\\n\\t\\u0001\\u007F\\u0085\xc2\xa0"
          "\xf0\x9f\x98\x80\\traw\" {}\n");
    /* Regexes are kept as written. */
    check("scope \"r\" { allow a on /a\\/b\\d+/i, /\\\\/ }",
          "scope \"r\" { allow a on /a\\/b\\d+/i, /\\\\/ }\n");
}

static void test_comments(void **state)
{
    (void)state;
    check("   # header\n"
          "\n\n\n"
          "scope \"a\"   {allow x,y on \"b\"}   # trailing   \n"
          "scope \"b\" { # after brace\n"
          "  allow x on \"y\"\n"
          "}\n"
          "role r {\n"
          "\n"
          "  # own line\n"
          "  allow a,   # mid\n"
          "  b on \"x\" , /y\\/z/i\n"
          "\n\n\n"
          "  deny c on \"q\"\n"
          "    # before close\n"
          "\n"
          "}\n"
          "scope \"c\" { allow a on \"b\" # inside\n"
          "}\n"
          "scope \"d\" {\n"
          "# only a comment\n"
          "}\n"
          "scope \"e\" { allow a,\n"
          "# own line inside an item\n"
          "b on \"x\" }\n"
          "forbid * on \"x\"#tight\n"
          "tool # after keyword\n"
          "\"s\" \"t\" { needs a on \"x\" }\n"
          "#end\n"
          "\n\n",
          "# header\n"
          "\n"
          "scope \"a\" { allow x, y on \"b\" } # trailing\n"
          "scope \"b\" { # after brace\n"
          "  allow x on \"y\"\n"
          "}\n"
          "role r {\n"
          "  # own line\n"
          "  allow a, # mid\n"
          "      b on \"x\", /y\\/z/i\n"
          "\n"
          "  deny c on \"q\"\n"
          "  # before close\n"
          "}\n"
          "scope \"c\" {\n"
          "  allow a on \"b\" # inside\n"
          "}\n"
          "scope \"d\" {\n"
          "  # only a comment\n"
          "}\n"
          "scope \"e\" {\n"
          "  allow a,\n"
          "      # own line inside an item\n"
          "      b on \"x\"\n"
          "}\n"
          "forbid * on \"x\" #tight\n"
          "tool # after keyword\n"
          "    \"s\" \"t\" { needs a on \"x\" }\n"
          "#end\n");
    /* Only comments; a blank line between two comments is kept. */
    check("# a\n\n\n# b\n# c", "# a\n\n# b\n# c\n");
}

static void test_blank_lines_and_endings(void **state)
{
    (void)state;
    check("\n\n\nscope \"a\" {}\n\n\n\nscope \"b\" {}\nscope \"c\" {}\n\n\n",
          "scope \"a\" {}\n\nscope \"b\" {}\nscope \"c\" {}\n");
    /* CRLF line ends and a byte-order mark. */
    check("\xef\xbb\xbfrole r {\r\n  allow a on \"b\" # c\r\n\r\n\r\n"
          "  deny d on \"e\"\r\n}\r\n",
          "role r {\n  allow a on \"b\" # c\n\n  deny d on \"e\"\n}\n");
    /* No final newline in, exactly one out. */
    check("forbid * on \"x\"", "forbid * on \"x\"\n");
    /* An empty policy stays empty. */
    char *out = format("");
    assert_string_equal(out, "");
    free(out);
    out = format(" \n\n\t\n");
    assert_string_equal(out, "");
    free(out);
}

/* Every policy example of the repository: idempotent, same meaning. */
static void test_examples(void **state)
{
    (void)state;
    const char *root = TRINE_SOURCE_DIR "/policy-examples";
    DIR *top = opendir(root);
    if (top == NULL)
        skip();
    size_t seen = 0;
    for (struct dirent *e = readdir(top); e != NULL; e = readdir(top)) {
        if (e->d_name[0] == '.')
            continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        DIR *sub = opendir(dir);
        if (sub == NULL)
            continue;
        for (struct dirent *g = readdir(sub); g != NULL; g = readdir(sub)) {
            size_t n = strlen(g->d_name);
            if (n < 7 || strcmp(g->d_name + n - 6, ".trine") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, g->d_name);
            FILE *fp = fopen(path, "rb");
            assert_non_null(fp);
            strbuf b;
            sb_init(&b);
            char chunk[4096];
            for (size_t k = fread(chunk, 1, sizeof chunk, fp); k > 0;
                 k = fread(chunk, 1, sizeof chunk, fp))
                sb_putn(&b, chunk, k);
            fclose(fp);
            check_n(b.data != NULL ? b.data : "", b.len, NULL);
            sb_free(&b);
            seen++;
        }
        closedir(sub);
    }
    closedir(top);
    assert_true(seen > 0);
}

static void test_refusal(void **state)
{
    (void)state;
    const char *src = "scope \"a\" { allow issues. on \"x\" }\nrol x {}\n";
    trine_source s = {"f.trine", src, strlen(src)};
    trine_diag *d = trine_diag_new();
    char *out = (char *)1;
    size_t outlen = 7;
    assert_int_equal(trine_format(&s, d, &out, &outlen), TRINE_ESYNTAX);
    assert_null(out);
    assert_int_equal(outlen, 0);
    assert_int_equal(trine_diag_count(d), 2);
    const trine_diag_item *it = trine_diag_at(d, 0);
    assert_string_equal(it->file, "f.trine");
    assert_int_equal(it->line, 1);
    assert_int_equal(it->col, 19);
    assert_string_equal(
        it->message,
        "invalid action \"issues.\"; expected segments of letters, digits, "
        "\"_\" and \"-\" joined by \".\", the last of which may be \"*\"");
    it = trine_diag_at(d, 1);
    assert_int_equal(it->line, 2);
    assert_int_equal(it->col, 1);
    trine_diag_free(d);

    /* Bad bytes, and no diag at all. */
    s = (trine_source){"f.trine", "scope \"\xff\" {}", 12};
    assert_int_equal(trine_format(&s, NULL, &out, NULL), TRINE_ESYNTAX);
    assert_null(out);

    /* Bad arguments. */
    assert_int_equal(trine_format(NULL, NULL, &out, NULL), TRINE_EINVAL);
    assert_int_equal(trine_format(&s, NULL, NULL, NULL), TRINE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_spacing),
        cmocka_unit_test(test_width),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_blank_lines_and_endings),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
