/* Unit tests for lb_least_request.c: picks follow this worker's in-flight counts. */
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

static void setup_lb(struct fixture *f, size_t n, const struct test_host_spec *specs,
                     uint32_t choices)
{
    struct mp_lb_config cfg = test_lb_config(MP_LB_LEAST_REQUEST);
    if (choices)
        cfg.least_request.choice_count = choices;
    f->hs = test_host_set(n, specs);
    assert_int_equal(mp_lb_new(&cfg, f->hs, &f->lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(f->lb, 42, &f->w), 0);
}

static void teardown_lb(struct fixture *f)
{
    mp_lb_worker_unref(f->w);
    mp_lb_unref(f->lb);
    mp_host_set_free(f->hs);
}

static void busy_host_is_avoided(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 4, NULL, 0);
    const struct mp_host *busy = &f.hs->hosts[0];
    for (int i = 0; i < 10; i++)
        mp_lb_worker_rq_start(f.w, busy);
    assert_int_equal(mp_lb_worker_rq_active(f.w, busy), 10);
    size_t counts[4] = {0};
    for (int i = 0; i < 4000; i++)
        counts[mp_lb_pick(f.w, NULL)->index]++;
    /* Two choices: the busy host wins only when both samples hit it (1/16). */
    assert_in_range(counts[0], 150, 350);
    for (int i = 1; i < 4; i++)
        assert_in_range(counts[i], 1050, 1300);
    teardown_lb(&f);
}

static void outstanding_requests_stay_balanced(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 5, NULL, 0);
    /* Requests that never finish: least request keeps the counts level. */
    for (int i = 0; i < 500; i++)
        mp_lb_worker_rq_start(f.w, mp_lb_pick(f.w, NULL));
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < 5; i++) {
        uint32_t a = mp_lb_worker_rq_active(f.w, &f.hs->hosts[i]);
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
    }
    assert_true(hi - lo <= 6);
    /* Finishing requests lowers the count again. */
    const struct mp_host *h = &f.hs->hosts[2];
    uint32_t before = mp_lb_worker_rq_active(f.w, h);
    mp_lb_worker_rq_done(f.w, h);
    assert_int_equal(mp_lb_worker_rq_active(f.w, h), before - 1);
    teardown_lb(&f);
}

static void more_choices_pick_the_idle_host(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 3, NULL, 50);
    for (size_t i = 0; i < 3; i++)
        if (i != 1)
            mp_lb_worker_rq_start(f.w, &f.hs->hosts[i]);
    /* With 50 samples over 3 hosts the idle one is all but certain to be seen. */
    int idle = 0;
    for (int i = 0; i < 100; i++)
        idle += mp_lb_pick(f.w, NULL) == &f.hs->hosts[1];
    assert_true(idle >= 99);
    teardown_lb(&f);
}

static void weighted_hosts_use_weight_over_load(void **state)
{
    (void)state;
    const struct test_host_spec specs[] = {{1, 0, MP_HOST_HEALTHY}, {3, 0, MP_HOST_HEALTHY}};
    struct fixture f;
    setup_lb(&f, 2, specs, 0);
    size_t counts[2] = {0};
    for (int i = 0; i < 4000; i++)
        counts[mp_lb_pick(f.w, NULL)->index]++;
    /* Idle hosts: picks follow weights 1:3. */
    assert_in_range(counts[1], 2800, 3200);

    /* Load the heavy host: weight / (active + 1) now favours the light one. */
    for (int i = 0; i < 11; i++)
        mp_lb_worker_rq_start(f.w, &f.hs->hosts[1]);
    counts[0] = counts[1] = 0;
    for (int i = 0; i < 4000; i++)
        counts[mp_lb_pick(f.w, NULL)->index]++;
    assert_true(counts[0] > counts[1]);
    teardown_lb(&f);
}

static void other_workers_counts_are_separate(void **state)
{
    (void)state;
    struct fixture f;
    setup_lb(&f, 2, NULL, 0);
    struct mp_lb_worker *w2;
    assert_int_equal(mp_lb_worker_new(f.lb, 99, &w2), 0);
    mp_lb_worker_rq_start(f.w, &f.hs->hosts[0]);
    assert_int_equal(mp_lb_worker_rq_active(f.w, &f.hs->hosts[0]), 1);
    assert_int_equal(mp_lb_worker_rq_active(w2, &f.hs->hosts[0]), 0);
    /* A host from another host set is ignored rather than corrupting counts. */
    struct mp_host_set *other = test_host_set(2, NULL);
    mp_lb_worker_rq_start(w2, &other->hosts[0]);
    assert_int_equal(mp_lb_worker_rq_active(w2, &f.hs->hosts[0]), 0);
    mp_host_set_free(other);
    mp_lb_worker_unref(w2);
    teardown_lb(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busy_host_is_avoided),
        cmocka_unit_test(outstanding_requests_stay_balanced),
        cmocka_unit_test(more_choices_pick_the_idle_host),
        cmocka_unit_test(weighted_hosts_use_weight_over_load),
        cmocka_unit_test(other_workers_counts_are_separate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
