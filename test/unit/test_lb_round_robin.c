/* Unit tests for lb_round_robin.c (through lb_core.c, as the data path uses it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lb_test_hosts.h"
#include "proxy/lb_core.h"

struct fixture {
    struct mp_host_set *hs;
    struct mp_lb *lb;
    struct mp_lb_worker *w;
};

static void setup_lb(struct fixture *f, size_t n, const struct test_host_spec *specs, uint64_t seed)
{
    struct mp_lb_config cfg = test_lb_config(MP_LB_ROUND_ROBIN);
    f->hs = test_host_set(n, specs);
    assert_non_null(f->hs);
    char *err = NULL;
    assert_int_equal(mp_lb_new(&cfg, f->hs, &f->lb, &err), 0);
    assert_null(err);
    assert_int_equal(mp_lb_worker_new(f->lb, seed, &f->w), 0);
}

static void teardown_lb(struct fixture *f)
{
    mp_lb_worker_unref(f->w);
    mp_lb_unref(f->lb);
    mp_host_set_free(f->hs);
}

static void equal_weights_rotate(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 3, NULL, 7);
    size_t counts[3] = {0};
    struct mp_host *prev = NULL;
    for (int i = 0; i < 300; i++) {
        struct mp_host *h = mp_lb_pick(f.w, NULL);
        assert_non_null(h);
        assert_ptr_not_equal(h, prev); /* strict rotation never repeats with 3 hosts */
        prev = h;
        counts[h->index]++;
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(counts[i], 100);
    teardown_lb(&f);
}

static void weights_shape_distribution(void **state)
{
    (void)state;
    const struct test_host_spec specs[] = {{1, 0, MP_HOST_HEALTHY},
                                           {2, 0, MP_HOST_HEALTHY},
                                           {3, 0, MP_HOST_HEALTHY},
                                           {4, 0, MP_HOST_HEALTHY}};
    struct fixture f;
    setup_lb(&f, 4, specs, 11);
    size_t counts[4] = {0};
    for (int i = 0; i < 10000; i++)
        counts[mp_lb_pick(f.w, NULL)->index]++;
    /* EDF is exact to within one pick per host over any window. */
    for (int i = 0; i < 4; i++) {
        size_t want = 1000 * f.hs->hosts[i].weight;
        assert_in_range(counts[i], want - 2, want + 2);
    }
    /* Smooth: the heaviest host (weight 4 of 10) never runs three in a row. */
    int run = 0, max_run = 0;
    struct mp_host *prev = NULL;
    for (int i = 0; i < 1000; i++) {
        struct mp_host *h = mp_lb_pick(f.w, NULL);
        run = h == prev ? run + 1 : 1;
        max_run = run > max_run ? run : max_run;
        prev = h;
    }
    assert_true(max_run <= 2);
    teardown_lb(&f);
}

static void workers_start_at_different_hosts(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 16, NULL, 1);
    /* Several workers on one shared lb: their first picks should not all agree. */
    size_t distinct = 0;
    bool seen[16] = {false};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct mp_lb_worker *w;
        assert_int_equal(mp_lb_worker_new(f.lb, seed * 7919, &w), 0);
        struct mp_host *h = mp_lb_pick(w, NULL);
        if (!seen[h->index]) {
            seen[h->index] = true;
            distinct++;
        }
        mp_lb_worker_unref(w);
    }
    assert_true(distinct >= 3);
    teardown_lb(&f);
}

static void retry_avoids_previous_host(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 2, NULL, 3);
    for (int i = 0; i < 50; i++) {
        const struct mp_host *prev = mp_lb_pick(f.w, NULL);
        struct mp_lb_context ctx = {.avoid = &prev, .n_avoid = 1};
        assert_ptr_not_equal(mp_lb_pick(f.w, &ctx), prev);
    }
    teardown_lb(&f);
}

static void empty_host_set_picks_nothing(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 0, NULL, 3);
    assert_null(mp_lb_pick(f.w, NULL));
    teardown_lb(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equal_weights_rotate),
        cmocka_unit_test(weights_shape_distribution),
        cmocka_unit_test(workers_start_at_different_hosts),
        cmocka_unit_test(retry_avoids_previous_host),
        cmocka_unit_test(empty_host_set_picks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
