/*
 * blockvec.h - a deduplicating list of policy blocks, in first-seen order:
 * the roles a user holds through its bindings, the scopes a token names.
 * The evaluator fills one per check, so small lists stay inline and
 * allocate nothing.
 */
#ifndef TRINE_LIB_BLOCKVEC_H
#define TRINE_LIB_BLOCKVEC_H

#include "lib/policy.h"

#include <stddef.h>

#define BV_INLINE 16
#define BV_LINEAR 32

/* Blocks in first-seen order, each once. Small lists dedupe by a linear
 * scan; past BV_LINEAR entries an open-addressing pointer set takes over,
 * so a token with a huge groups or scope claim costs linear time. */
typedef struct blockvec {
    const cpl_block **v;
    size_t n;
    size_t cap;
    const cpl_block **set;
    size_t setcap;
    const cpl_block *inl[BV_INLINE];
} blockvec;

/* Makes b empty. */
void bv_init(blockvec *b);

/* Frees what b allocated (b stays usable after bv_init). */
void bv_free(blockvec *b);

/* Adds p unless it is NULL or already in b. Returns 0 or TRINE_ENOMEM. */
int bv_add(blockvec *b, const cpl_block *p);

#endif /* TRINE_LIB_BLOCKVEC_H */
