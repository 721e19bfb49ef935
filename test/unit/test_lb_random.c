/* Unit tests for lb_random.c: every host is reached, roughly evenly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lb_test_hosts.h"
#include "proxy/lb_core.h"

static void covers_all_hosts_evenly(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RANDOM);
    struct mp_host_set *hs = test_host_set(5, NULL);
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 5, &w), 0);
    size_t counts[5] = {0};
    for (int i = 0; i < 10000; i++)
        counts[mp_lb_pick(w, NULL)->index]++;
    for (int i = 0; i < 5; i++)
        assert_in_range(counts[i], 1700, 2300);
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

static void workers_draw_different_sequences(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RANDOM);
    struct mp_host_set *hs = test_host_set(100, NULL);
    struct mp_lb *lb;
    struct mp_lb_worker *a, *b;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 1, &a), 0);
    assert_int_equal(mp_lb_worker_new(lb, 2, &b), 0);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += mp_lb_pick(a, NULL) == mp_lb_pick(b, NULL);
    assert_true(same < 10);
    mp_lb_worker_unref(a);
    mp_lb_worker_unref(b);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(covers_all_hosts_evenly),
        cmocka_unit_test(workers_draw_different_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
