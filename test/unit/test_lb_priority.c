/* Unit tests for lb_priority.c and the priority path of lb_core.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lb_test_hosts.h"
#include "proxy/lb_core.h"
#include "proxy/lb_priority.h"
#include "proxy/mp_common.h"

/* n0 hosts at P0 (h0 healthy), n1 at P1 (h1 healthy); the rest unhealthy. */
static struct mp_host_set *two_levels(size_t n0, size_t h0, size_t n1, size_t h1)
{
    struct test_host_spec specs[64];
    assert_true(n0 + n1 <= 64);
    for (size_t i = 0; i < n0 + n1; i++) {
        bool p1 = i >= n0;
        size_t k = p1 ? i - n0 : i;
        specs[i].weight = 1;
        specs[i].priority = p1 ? 1 : 0;
        specs[i].health = k < (p1 ? h1 : h0) ? MP_HOST_HEALTHY : MP_HOST_UNHEALTHY;
    }
    return test_host_set(n0 + n1, specs);
}

static void load_of(struct mp_host_set *hs, uint32_t panic, uint32_t *p0, uint32_t *p1,
                    struct mp_priority_load *out)
{
    assert_int_equal(mp_lb_priority_load_compute(hs, panic, out), 0);
    *p0 = out->healthy[0];
    *p1 = out->n > 1 ? out->healthy[1] : 0;
}

static void overprovisioning_keeps_p0_until_71_percent(void **state)
{
    (void)state;
    struct {
        size_t h0;
        uint32_t p0, p1;
    } cases[] = {
        {10, 100, 0}, /* all healthy */
        {8, 100, 0},  /* 8/10 * 1.4 = 112% -> still all of it */
        {7, 98, 2},   /* 7/10 * 1.4 = 98% */
        {5, 70, 30},  /* 5/10 * 1.4 = 70% */
        {0, 0, 100},  /* P0 gone: P1 takes everything */
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        struct mp_host_set *hs = two_levels(10, cases[i].h0, 10, 10);
        struct mp_priority_load l;
        uint32_t p0, p1;
        load_of(hs, 50, &p0, &p1, &l);
        assert_int_equal(p0, cases[i].p0);
        assert_int_equal(p1, cases[i].p1);
        assert_false(l.total_panic);
        mp_lb_priority_load_clear(&l);
        mp_host_set_free(hs);
    }
}

static void custom_overprovisioning_factor(void **state)
{
    (void)state;
    struct mp_host_set *hs = two_levels(10, 8, 10, 10);
    hs->overprovisioning_factor = 100; /* no headroom: 80% healthy -> 80% load */
    struct mp_priority_load l;
    uint32_t p0, p1;
    load_of(hs, 50, &p0, &p1, &l);
    assert_int_equal(p0, 80);
    assert_int_equal(p1, 20);
    mp_lb_priority_load_clear(&l);
    mp_host_set_free(hs);
}

static void panic_and_total_panic(void **state)
{
    (void)state;
    /* P0 4/10 healthy: below the 50% panic threshold, gets 56% and balances over all. */
    struct mp_host_set *hs = two_levels(10, 4, 10, 10);
    struct mp_priority_load l;
    uint32_t p0, p1;
    load_of(hs, 50, &p0, &p1, &l);
    assert_int_equal(p0, 56);
    assert_int_equal(p1, 44);
    assert_true(l.panic[0]);
    assert_false(l.panic[1]);
    mp_lb_priority_load_clear(&l);
    mp_host_set_free(hs);

    /* Nothing healthy anywhere: split by host count, every level panics. */
    hs = two_levels(6, 0, 2, 0);
    load_of(hs, 50, &p0, &p1, &l);
    assert_true(l.total_panic);
    assert_int_equal(p0, 75);
    assert_int_equal(p1, 25);
    assert_true(l.panic[0] && l.panic[1]);
    mp_lb_priority_load_clear(&l);

    /* Panic disabled (Istio sets healthy_panic_threshold 0): P0 gets 100% and no host. */
    load_of(hs, 0, &p0, &p1, &l);
    assert_int_equal(p0, 100);
    assert_false(l.panic[0]);
    mp_lb_priority_load_clear(&l);
    mp_host_set_free(hs);
}

static void degraded_hosts_take_the_remainder(void **state)
{
    (void)state;
    /* P0: 2 healthy + 8 degraded of 10 -> 28% healthy, degraded share takes the rest. */
    struct test_host_spec specs[10];
    for (int i = 0; i < 10; i++)
        specs[i] = (struct test_host_spec){1, 0, i < 2 ? MP_HOST_HEALTHY : MP_HOST_DEGRADED};
    struct mp_host_set *hs = test_host_set(10, specs);
    struct mp_priority_load l;
    assert_int_equal(mp_lb_priority_load_compute(hs, 50, &l), 0);
    assert_int_equal(l.healthy[0], 28);
    assert_int_equal(l.degraded[0], 72);
    bool degraded;
    assert_int_equal(mp_lb_priority_choose(&l, 27, &degraded), 0);
    assert_false(degraded);
    assert_int_equal(mp_lb_priority_choose(&l, 28, &degraded), 0);
    assert_true(degraded);
    mp_lb_priority_load_clear(&l);
    mp_host_set_free(hs);
}

static void picks_fail_over_to_p1(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_ROUND_ROBIN);
    /* P0 entirely unhealthy: every pick lands on a healthy P1 host. */
    struct mp_host_set *hs = two_levels(3, 0, 3, 3);
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 9, &w), 0);
    for (int i = 0; i < 300; i++) {
        struct mp_host *h = mp_lb_pick(w, NULL);
        assert_int_equal(h->priority, 1);
        assert_int_equal(h->health, MP_HOST_HEALTHY);
    }
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);

    /* P0 half healthy: ~70% to P0's healthy hosts, ~30% to P1, none to sick hosts. */
    hs = two_levels(10, 5, 10, 10);
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 9, &w), 0);
    int p0 = 0;
    for (int i = 0; i < 10000; i++) {
        struct mp_host *h = mp_lb_pick(w, NULL);
        assert_int_equal(h->health, MP_HOST_HEALTHY);
        p0 += h->priority == 0;
    }
    assert_in_range(p0, 6700, 7300);
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

static void no_healthy_host_with_panic_disabled_picks_nothing(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_LEAST_REQUEST);
    cfg.healthy_panic_threshold = 0;
    struct mp_host_set *hs = two_levels(3, 0, 0, 0);
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 9, &w), 0);
    assert_null(mp_lb_pick(w, NULL));
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);

    /* With panic on, the same hosts are used anyway (Envoy's panic mode). */
    cfg.healthy_panic_threshold = 50;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 9, &w), 0);
    assert_non_null(mp_lb_pick(w, NULL));
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

static void hash_key_chooses_priority_deterministically(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_MAGLEV);
    cfg.maglev.table_size = 1009;
    struct mp_host_set *hs = two_levels(10, 5, 10, 10); /* 70 / 30 */
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 9, &w), 0);
    struct mp_lb_context ctx = {.has_hash = true, .hash = 169}; /* 169 % 100 = 69 -> P0 */
    assert_int_equal(mp_lb_pick(w, &ctx)->priority, 0);
    ctx.hash = 170; /* 70 -> P1 */
    assert_int_equal(mp_lb_pick(w, &ctx)->priority, 1);
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overprovisioning_keeps_p0_until_71_percent),
        cmocka_unit_test(custom_overprovisioning_factor),
        cmocka_unit_test(panic_and_total_panic),
        cmocka_unit_test(degraded_hosts_take_the_remainder),
        cmocka_unit_test(picks_fail_over_to_p1),
        cmocka_unit_test(no_healthy_host_with_panic_disabled_picks_nothing),
        cmocka_unit_test(hash_key_chooses_priority_deterministically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
