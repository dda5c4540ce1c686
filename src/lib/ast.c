/*
 * ast.c - releasing syntax trees. The parser may hand over a tree that it
 * stopped building half-way (on an error or out of memory), so every free
 * here tolerates NULL members and trusts only the counts.
 */
#include "lib/ast.h"

#include <stdlib.h>

static void free_actions(ast_action *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i].text);
    free(a);
}

static void free_patterns(ast_pattern *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].text);
    free(p);
}

static void free_names(ast_name *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
}

static void free_stmt(ast_stmt *s)
{
    free(s->name);
    free(s->tool);
    for (size_t i = 0; i < s->nrules; i++) {
        free_actions(s->rules[i].actions, s->rules[i].nactions);
        free_patterns(s->rules[i].patterns, s->rules[i].npatterns);
    }
    free(s->rules);
    free_names(s->roles, s->nroles);
    free_names(s->audiences, s->naudiences);
    free_names(s->resource_metadata, s->nresource_metadata);
    free(s->delegations);
    free(s->delegation_at);
    for (size_t i = 0; i < s->nneeds; i++) {
        free_actions(s->needs[i].actions, s->needs[i].nactions);
        free(s->needs[i].tmpl);
    }
    free(s->needs);
    for (size_t i = 0; i < s->nargs; i++) {
        ast_arg *a = &s->args[i];
        free(a->path);
        free(a->regex.text);
        for (size_t k = 0; k < a->nliterals; k++)
            json_decref(a->literals[k]);
        free(a->literals);
    }
    free(s->args);
    for (size_t i = 0; i < s->nconsents; i++)
        free(s->consents[i].prompt);
    free(s->consents);
    free_names(s->redacts, s->nredacts);
}

/* Frees f, every statement and every string below it. NULL is a no-op. */
void ast_free(ast_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nstmts; i++)
        free_stmt(&f->stmts[i]);
    free(f->stmts);
    free(f->name);
    free(f);
}
