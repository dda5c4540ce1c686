/*
 * store_fixture.h - the cmocka fixture the store's tests share: a store
 * opened on a fresh database file in its own temporary directory, removed
 * (with its WAL files) afterwards. Included by one test program each.
 */
#ifndef TRINE_TEST_STORE_FIXTURE_H
#define TRINE_TEST_STORE_FIXTURE_H

#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct fixture {
    char dir[64];
    char path[128];
    store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/trine-store-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/audit.db", f->dir);
    if (store_open(f->path, NULL, &f->s, NULL, 0) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

#endif /* TRINE_TEST_STORE_FIXTURE_H */
