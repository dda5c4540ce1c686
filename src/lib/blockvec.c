/*
 * blockvec.c - a deduplicating list of blocks (see blockvec.h).
 */
#include "lib/blockvec.h"

#include "trine.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void bv_init(blockvec *b)
{
    b->v = b->inl;
    b->n = 0;
    b->cap = BV_INLINE;
    b->set = NULL;
    b->setcap = 0;
}

void bv_free(blockvec *b)
{
    if (b->v != b->inl)
        free(b->v);
    free(b->set);
}

static size_t bv_slot(const cpl_block *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 17) & (cap - 1);
}

/* Inserts p into the set; returns true when it was new. */
static bool bv_set_insert(const cpl_block **set, size_t cap, const cpl_block *p)
{
    for (size_t i = bv_slot(p, cap);; i = (i + 1) & (cap - 1)) {
        if (set[i] == p)
            return false;
        if (set[i] == NULL) {
            set[i] = p;
            return true;
        }
    }
}

static int bv_rehash(blockvec *b)
{
    size_t cap = b->setcap ? b->setcap * 2 : 128;
    const cpl_block **set = calloc(cap, sizeof *set);
    if (set == NULL)
        return TRINE_ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        bv_set_insert(set, cap, b->v[i]);
    free(b->set);
    b->set = set;
    b->setcap = cap;
    return 0;
}

int bv_add(blockvec *b, const cpl_block *p)
{
    if (p == NULL)
        return 0;
    if (b->set == NULL) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->v[i] == p)
                return 0;
        }
        if (b->n >= BV_LINEAR && bv_rehash(b) != 0)
            return TRINE_ENOMEM;
    }
    if (b->set != NULL) {
        if ((b->n + 1) * 2 > b->setcap && bv_rehash(b) != 0)
            return TRINE_ENOMEM;
        if (!bv_set_insert(b->set, b->setcap, p))
            return 0;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap * 2;
        const cpl_block **v = malloc(cap * sizeof *v);
        if (v == NULL)
            return TRINE_ENOMEM;
        memcpy(v, b->v, b->n * sizeof *v);
        if (b->v != b->inl)
            free(b->v);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = p;
    return 0;
}
