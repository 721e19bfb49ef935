/*
 * Unit tests for lb_core.c: one immutable mp_lb shared by worker threads,
 * each with its own mp_lb_worker; reference lifetimes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lb_test_hosts.h"
#include "proxy/lb_core.h"
#include "proxy/lb_hash.h"
#include "proxy/mp_common.h"

#define N_THREADS 4
#define N_PICKS   50000

struct thread_arg {
    struct mp_lb *lb;
    uint64_t seed;
    size_t counts[8];
    int failed;
};

/* A worker thread: its own state, picks, counts requests in and out. */
static void *worker_main(void *p)
{
    struct thread_arg *a = p;
    struct mp_lb_worker *w;
    if (mp_lb_worker_new(a->lb, a->seed, &w) != 0) {
        a->failed = 1;
        return NULL;
    }
    for (int i = 0; i < N_PICKS; i++) {
        uint64_t key = (uint64_t)i;
        struct mp_lb_context ctx = {.has_hash = (i & 1) != 0,
                                    .hash = mp_lb_xxhash64(&key, sizeof(key), 0)};
        struct mp_host *h = mp_lb_pick(w, &ctx);
        if (h == NULL) {
            a->failed = 1;
            break;
        }
        mp_lb_worker_rq_start(w, h);
        a->counts[h->index]++;
        mp_lb_worker_rq_done(w, h);
    }
    mp_lb_worker_unref(w);
    return NULL;
}

static void shared_lb_across_threads(void **state)
{
    (void)state;
    const enum mp_lb_policy policies[] = {MP_LB_ROUND_ROBIN, MP_LB_LEAST_REQUEST, MP_LB_RANDOM,
                                          MP_LB_RING_HASH, MP_LB_MAGLEV};
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        struct mp_lb_config cfg = test_lb_config(policies[p]);
        struct mp_host_set *hs = test_host_set(8, NULL);
        struct mp_lb *lb;
        assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
        mp_host_set_free(hs); /* the lb keeps the host set alive */
        pthread_t th[N_THREADS];
        struct thread_arg args[N_THREADS] = {{0}};
        for (int i = 0; i < N_THREADS; i++) {
            args[i].lb = lb;
            args[i].seed = (uint64_t)i + 1;
            assert_int_equal(pthread_create(&th[i], NULL, worker_main, &args[i]), 0);
        }
        for (int i = 0; i < N_THREADS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(args[i].failed, 0);
            for (int k = 0; k < 8; k++)
                assert_true(args[i].counts[k] > N_PICKS / 8 / 2); /* every host serves */
        }
        mp_lb_unref(lb);
    }
}

static void worker_keeps_lb_and_hosts_alive(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_ROUND_ROBIN);
    struct mp_host_set *hs = test_host_set(3, NULL);
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 1, &w), 0);
    /* The config owner lets go (a new snapshot arrived) ... */
    mp_lb_unref(lb);
    mp_host_set_free(hs);
    /* ... while a request still holds the worker state and its host. */
    struct mp_lb_worker *req = mp_lb_worker_ref(w);
    struct mp_host *h = mp_lb_pick(req, NULL);
    mp_lb_worker_rq_start(req, h);
    mp_lb_worker_unref(w);        /* the worker drops its map entry */
    assert_non_null(h->addr_str); /* still valid: ASan would flag a use after free */
    assert_int_equal(mp_lb_worker_rq_active(req, h), 1);
    assert_ptr_equal(mp_lb_host_set(mp_lb_worker_lb(req))->hosts + h->index, h);
    mp_lb_worker_rq_done(req, h);
    mp_lb_worker_unref(req); /* last reference: everything goes */
}

static void cluster_provided_has_no_balancer(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_CLUSTER_PROVIDED);
    struct mp_host_set *hs = test_host_set(1, NULL);
    struct mp_lb *lb = NULL;
    char *err = NULL;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, &err), MP_ERR_UNSUPPORTED);
    assert_null(lb);
    assert_string_equal(err, "lb_policy: CLUSTER_PROVIDED has no load balancer");
    free(err);
    mp_host_set_free(hs);
    assert_string_equal(mp_lb_policy_name(MP_LB_MAGLEV), "MAGLEV");
    assert_string_equal(mp_lb_ops_get(MP_LB_RING_HASH)->name, "RING_HASH");
}

/* Two localities (weights wa, wb); hosts [0, split) in A, the rest in B. */
static struct mp_host_set *two_localities(size_t n, size_t split, uint32_t wa, uint32_t wb,
                                          const struct test_host_spec *specs)
{
    struct mp_host_set *hs = test_host_set(n, specs);
    struct mp_host_locality *l = realloc(hs->localities, 2 * sizeof(*l));
    assert_non_null(l);
    hs->localities = l;
    l[1].locality.region = strdup("r");
    l[1].locality.zone = strdup("b");
    l[1].locality.sub_zone = strdup("");
    l[0].weight = wa;
    l[1].weight = wb;
    hs->n_localities = 2;
    for (size_t i = 0; i < n; i++)
        hs->hosts[i].locality_index = i < split ? 0 : 1;
    return hs;
}

static void locality_weights_split_traffic(void **state)
{
    (void)state;
    const enum mp_lb_policy policies[] = {MP_LB_ROUND_ROBIN, MP_LB_LEAST_REQUEST, MP_LB_RANDOM};
    for (size_t p = 0; p < 3; p++) {
        struct mp_lb_config cfg = test_lb_config(policies[p]);
        cfg.locality_weighted = true;
        /* A: 3 hosts, weight 1; B: 1 host, weight 3 -> B gets 75% despite fewer hosts. */
        struct mp_host_set *hs = two_localities(4, 3, 1, 3, NULL);
        struct mp_lb *lb;
        struct mp_lb_worker *w;
        assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
        assert_int_equal(mp_lb_worker_new(lb, 5, &w), 0);
        int in_b = 0;
        for (int i = 0; i < 4000; i++)
            in_b += mp_lb_pick(w, NULL)->locality_index == 1;
        assert_in_range(in_b, 2900, 3100);
        mp_lb_worker_unref(w);
        mp_lb_unref(lb);

        /* Without locality weighting the same hosts share evenly: B gets 25%. */
        cfg.locality_weighted = false;
        assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
        assert_int_equal(mp_lb_worker_new(lb, 5, &w), 0);
        in_b = 0;
        for (int i = 0; i < 4000; i++)
            in_b += mp_lb_pick(w, NULL)->locality_index == 1;
        assert_in_range(in_b, 850, 1150);
        mp_lb_worker_unref(w);
        mp_lb_unref(lb);
        mp_host_set_free(hs);
    }
}

static void locality_weight_follows_availability(void **state)
{
    (void)state;
    struct mp_lb_config cfg = test_lb_config(MP_LB_ROUND_ROBIN);
    cfg.locality_weighted = true;
    /* A: 2 healthy hosts, weight 1. B: 1 of 2 healthy, weight 3: 3 * min(1, 1.4 * 0.5) = 2.1. */
    struct test_host_spec specs[4] = {{1, 0, MP_HOST_HEALTHY},
                                      {1, 0, MP_HOST_HEALTHY},
                                      {1, 0, MP_HOST_HEALTHY},
                                      {1, 0, MP_HOST_UNHEALTHY}};
    struct mp_host_set *hs = two_localities(4, 2, 1, 3, specs);
    struct mp_lb *lb;
    struct mp_lb_worker *w;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 5, &w), 0);
    int in_b = 0;
    for (int i = 0; i < 3100; i++) {
        struct mp_host *h = mp_lb_pick(w, NULL);
        assert_int_equal(h->health, MP_HOST_HEALTHY);
        in_b += h->locality_index == 1;
    }
    assert_in_range(in_b, 2050, 2150); /* 2.1 / 3.1 of 3100 = 2100 */
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);

    /* No locality has a weight: localities are ignored, as in Envoy. */
    hs->localities[0].weight = hs->localities[1].weight = 0;
    assert_int_equal(mp_lb_new(&cfg, hs, &lb, NULL), 0);
    assert_int_equal(mp_lb_worker_new(lb, 5, &w), 0);
    in_b = 0;
    for (int i = 0; i < 300; i++)
        in_b += mp_lb_pick(w, NULL)->locality_index == 1;
    assert_int_equal(in_b, 100); /* 1 of 3 healthy hosts, strict rotation */
    mp_lb_worker_unref(w);
    mp_lb_unref(lb);
    mp_host_set_free(hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_lb_across_threads),
        cmocka_unit_test(worker_keeps_lb_and_hosts_alive),
        cmocka_unit_test(cluster_provided_has_no_balancer),
        cmocka_unit_test(locality_weights_split_traffic),
        cmocka_unit_test(locality_weight_follows_availability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
