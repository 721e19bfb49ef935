/* Unit tests for lb_ring_hash.c: consistency, minimal disruption, weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lb_test_hosts.h"
#include "proxy/lb_core.h"
#include "proxy/lb_hash.h"
#include "proxy/mp_common.h"

#define N_HOSTS 10
#define N_KEYS  10000

struct ring {
    struct mp_host_set *hs;
    struct mp_lb *lb;
    struct mp_lb_worker *w;
};

static void ring_open(struct ring *r, struct mp_host_set *hs, const struct mp_lb_config *cfg)
{
    char *err = NULL;
    r->hs = hs;
    assert_int_equal(mp_lb_new(cfg, hs, &r->lb, &err), 0);
    assert_int_equal(mp_lb_worker_new(r->lb, 1, &r->w), 0);
}

static void ring_close(struct ring *r)
{
    mp_lb_worker_unref(r->w);
    mp_lb_unref(r->lb);
    mp_host_set_free(r->hs);
}

static const struct mp_host *pick_key(struct ring *r, int key)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "key-%d", key);
    struct mp_lb_context ctx = {.has_hash = true, .hash = mp_lb_xxhash64(buf, (size_t)n, 0)};
    return mp_lb_pick(r->w, &ctx);
}

static void removal_moves_only_the_removed_hosts_keys(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    struct ring before, after;
    ring_open(&before, test_host_set(N_HOSTS, NULL), &cfg);
    struct mp_host_set *hs2 = test_host_set(N_HOSTS, NULL);
    test_host_set_remove(hs2, 3);
    ring_open(&after, hs2, &cfg);
    const char *removed = before.hs->hosts[3].addr_str;

    int moved = 0, on_removed = 0;
    for (int k = 0; k < N_KEYS; k++) {
        const struct mp_host *a = pick_key(&before, k), *b = pick_key(&after, k);
        bool was_removed = strcmp(a->addr_str, removed) == 0;
        on_removed += was_removed;
        if (strcmp(a->addr_str, b->addr_str) != 0) {
            moved++;
            assert_true(was_removed); /* only the removed host's keys move */
        }
    }
    assert_int_equal(moved, on_removed);
    assert_true(moved <= N_KEYS / N_HOSTS * 3 / 2); /* about 1/N of the keys */
    assert_true(moved > 0);
    ring_close(&before);
    ring_close(&after);
}

static void same_key_same_host_across_workers_and_builds(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    struct ring a, b;
    ring_open(&a, test_host_set(N_HOSTS, NULL), &cfg);
    ring_open(&b, test_host_set(N_HOSTS, NULL), &cfg);
    struct mp_lb_worker *w2;
    assert_int_equal(mp_lb_worker_new(a.lb, 77, &w2), 0);
    size_t counts[N_HOSTS] = {0};
    for (int k = 0; k < N_KEYS; k++) {
        const struct mp_host *h = pick_key(&a, k);
        assert_string_equal(h->addr_str, pick_key(&b, k)->addr_str);
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "key-%d", k);
        struct mp_lb_context ctx = {.has_hash = true, .hash = mp_lb_xxhash64(buf, (size_t)n, 0)};
        assert_ptr_equal(mp_lb_pick(w2, &ctx), h);
        counts[h->index]++;
    }
    /* 1024 ring entries over 10 hosts: each gets a fair share, loosely. */
    for (int i = 0; i < N_HOSTS; i++)
        assert_in_range(counts[i], N_KEYS / N_HOSTS / 2, N_KEYS / N_HOSTS * 2);
    mp_lb_worker_unref(w2);
    ring_close(&a);
    ring_close(&b);
}

static void weight_scales_share(void **state)
{
    (void)state;
    struct test_host_spec specs[4] = {{1, 0, MP_HOST_HEALTHY},
                                      {1, 0, MP_HOST_HEALTHY},
                                      {1, 0, MP_HOST_HEALTHY},
                                      {3, 0, MP_HOST_HEALTHY}};
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    struct ring r;
    ring_open(&r, test_host_set(4, specs), &cfg);
    size_t counts[4] = {0};
    for (int k = 0; k < N_KEYS; k++)
        counts[pick_key(&r, k)->index]++;
    /* Host 3 holds half the ring. */
    assert_in_range(counts[3], N_KEYS * 40 / 100, N_KEYS * 60 / 100);
    ring_close(&r);
}

static void retry_steps_off_the_first_host(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    struct ring r;
    ring_open(&r, test_host_set(N_HOSTS, NULL), &cfg);
    int differ = 0;
    for (int k = 0; k < 200; k++) {
        const struct mp_host *first = pick_key(&r, k);
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "key-%d", k);
        struct mp_lb_context ctx = {.has_hash = true,
                                    .hash = mp_lb_xxhash64(buf, (size_t)n, 0),
                                    .avoid = &first,
                                    .n_avoid = 1,
                                    .max_attempts = 5};
        differ += mp_lb_pick(r.w, &ctx) != first;
    }
    assert_true(differ >= 195);
    ring_close(&r);
}

static void murmur_ring_and_size_limits(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    cfg.ring_hash.hash_function = MP_HASH_MURMUR2;
    cfg.ring_hash.min_ring_size = 64;
    cfg.ring_hash.max_ring_size = 64;
    struct ring r;
    ring_open(&r, test_host_set(N_HOSTS, NULL), &cfg);
    size_t counts[N_HOSTS] = {0};
    for (int k = 0; k < N_KEYS; k++)
        counts[pick_key(&r, k)->index]++;
    for (int i = 0; i < N_HOSTS; i++)
        assert_true(counts[i] > 0);
    ring_close(&r);

    /* min > max is refused by the policy itself too. */
    cfg.ring_hash.min_ring_size = 2048;
    cfg.ring_hash.max_ring_size = 1024;
    struct mp_host_set *hs = test_host_set(2, NULL);
    struct mp_lb *lb = NULL;
    char *err = NULL;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, &err), MP_ERR_INVAL);
    assert_string_equal(err,
                        "ring_hash_lb_config: minimum_ring_size (2048) > maximum_ring_size (1024)");
    free(err);
    mp_host_set_free(hs);
}

static void no_hash_key_spreads_randomly(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_RING_HASH);
    struct ring r;
    ring_open(&r, test_host_set(4, NULL), &cfg);
    size_t counts[4] = {0};
    for (int i = 0; i < 4000; i++)
        counts[mp_lb_pick(r.w, NULL)->index]++;
    for (int i = 0; i < 4; i++)
        assert_true(counts[i] > 400);
    ring_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(removal_moves_only_the_removed_hosts_keys),
        cmocka_unit_test(same_key_same_host_across_workers_and_builds),
        cmocka_unit_test(weight_scales_share),
        cmocka_unit_test(retry_steps_off_the_first_host),
        cmocka_unit_test(murmur_ring_and_size_limits),
        cmocka_unit_test(no_hash_key_spreads_randomly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
