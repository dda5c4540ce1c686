/*
 * test_blockvec.c - the deduplicating list of blocks: first-seen order,
 * each block once, NULL ignored, on both sides of the switch from a linear
 * scan to the hash set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/blockvec.h"

#include <stdlib.h>

#define MANY 10000

/* Adds blocks[0..n) in order, then again in reverse, and checks that the
 * list holds each once, in the first order. */
static void add_twice_and_check(size_t n)
{
    cpl_block *blocks = calloc(n, sizeof *blocks);
    assert_non_null(blocks);
    blockvec b;
    bv_init(&b);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bv_add(&b, &blocks[i]), 0);
    for (size_t i = n; i-- > 0;)
        assert_int_equal(bv_add(&b, &blocks[i]), 0);
    assert_int_equal(b.n, n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(b.v[i], &blocks[i]);
    bv_free(&b);
    free(blocks);
}

static void test_sizes_around_each_threshold(void **state)
{
    (void)state;
    size_t sizes[] = {0,
                      1,
                      BV_INLINE - 1,
                      BV_INLINE,
                      BV_INLINE + 1,
                      BV_LINEAR,
                      BV_LINEAR + 1,
                      200,
                      MANY};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        add_twice_and_check(sizes[i]);
}

static void test_null_is_ignored(void **state)
{
    (void)state;
    cpl_block one;
    blockvec b;
    bv_init(&b);
    assert_int_equal(bv_add(&b, NULL), 0);
    assert_int_equal(bv_add(&b, &one), 0);
    assert_int_equal(bv_add(&b, NULL), 0);
    assert_int_equal(b.n, 1);
    assert_ptr_equal(b.v[0], &one);
    bv_free(&b);
}

/* Interleaved repeats, as roles reached through several groups are. */
static void test_repeats_interleaved(void **state)
{
    (void)state;
    cpl_block blocks[100];
    blockvec b;
    bv_init(&b);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 100; i += (size_t)round + 1)
            assert_int_equal(bv_add(&b, &blocks[i]), 0);
    }
    /* Round 0 added all 100 in order; the others only repeated. */
    assert_int_equal(b.n, 100);
    for (size_t i = 0; i < 100; i++)
        assert_ptr_equal(b.v[i], &blocks[i]);
    bv_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_around_each_threshold),
        cmocka_unit_test(test_null_is_ignored),
        cmocka_unit_test(test_repeats_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
