/*
 * parser.h - the policy parser: one source in, one syntax tree out.
 */
#ifndef TRINE_PARSER_H
#define TRINE_PARSER_H

#include "lib/ast.h"
#include "trine.h"

/* Parses one source into a syntax tree. Returns 0 with *out set; or
 * TRINE_ESYNTAX with every error (up to the cap) in diag and *out NULL; or
 * TRINE_ENOMEM. The tree names its file src->name. */
int parse_source(const trine_source *src, trine_diag *diag, ast_file **out);

#endif /* TRINE_PARSER_H */
