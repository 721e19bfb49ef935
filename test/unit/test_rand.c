/* Unit tests for proxy/rand.c: values are never 0, vary, and each thread
 * has its own state (two threads do not replay one sequence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "proxy/rand.h"

#define N 64

static void test_nonzero_and_varying(void **state)
{
    (void)state;
    uint64_t prev = mp_rand_u64();
    int same = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = mp_rand_u64();
        assert_true(v != 0);
        same += v == prev;
        prev = v;
    }
    assert_int_equal(same, 0);
}

/* Both halves of the word are used: a percentage taken modulo 100 over many
 * draws lands in every bucket. */
static void test_spread(void **state)
{
    (void)state;
    int hits[100] = {0};
    for (int i = 0; i < 100000; i++)
        hits[mp_rand_u64() % 100]++;
    for (int i = 0; i < 100; i++)
        assert_in_range(hits[i], 700, 1300);
}

static void *draw(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < N; i++)
        out[i] = mp_rand_u64();
    return NULL;
}

static void test_threads_have_own_state(void **state)
{
    (void)state;
    uint64_t a[N], b[N];
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, draw, a), 0);
    assert_int_equal(pthread_create(&tb, NULL, draw, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int equal = 0;
    for (int i = 0; i < N; i++)
        equal += a[i] == b[i];
    assert_true(equal < N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonzero_and_varying),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_threads_have_own_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
