/*
 * test_http_stats.c: the name -> stats caches of http_stats.c at the size of
 * a large mesh (10,000 clusters resolved at one publication), and the stats
 * flush leaving never-recorded histograms alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_stats.h"
#include "stats.h"
#include "stats_render.h"

#define N_CLUSTERS 10000

static void cluster_cache_many(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(1);
    assert_non_null(st);
    struct mp_cluster_stats **v = calloc(N_CLUSTERS, sizeof(*v));
    assert_non_null(v);
    char name[32];
    for (int i = 0; i < N_CLUSTERS; i++) {
        snprintf(name, sizeof(name), "svc-%05d", i);
        v[i] = mp_http_stats_cluster(st, name);
        assert_non_null(v[i]);
        assert_non_null(v[i]->rq_total);
    }
    /* the same name gives the same handles, other names other ones */
    for (int i = 0; i < N_CLUSTERS; i++) {
        snprintf(name, sizeof(name), "svc-%05d", i);
        assert_ptr_equal(mp_http_stats_cluster(st, name), v[i]);
    }
    assert_ptr_not_equal(v[0], v[1]);
    assert_ptr_not_equal(v[0]->rq_total, v[1]->rq_total);
    mp_counter_inc(v[42]->rq_total, 0, 1);
    assert_int_equal(mp_counter_value(mp_stats_counter(st, "cluster.svc-00042.upstream_rq_total")),
                     1);
    assert_int_equal(mp_counter_value(mp_stats_counter(st, "cluster.svc-00043.upstream_rq_total")),
                     0);
    /* kinds are apart: a listener and a cluster of one name are two entries */
    struct mp_listener_stats *l = mp_http_stats_listener(st, "svc-00007");
    assert_non_null(l);
    assert_ptr_not_equal((void *)l, (void *)v[7]);
    assert_ptr_equal(mp_http_stats_listener(st, "svc-00007"), l);
    /* host stats: created once, found after */
    assert_null(mp_http_stats_host_find("svc-00001", "10.0.0.1:80"));
    struct mp_host_stats *h = mp_http_stats_host("svc-00001", "10.0.0.1:80");
    assert_non_null(h);
    assert_ptr_equal(mp_http_stats_host_find("svc-00001", "10.0.0.1:80"), h);
    assert_null(mp_http_stats_host_find("svc-00002", "10.0.0.1:80"));
    free(v);
    /* emptied, the cache starts over */
    mp_http_stats_free_all();
    assert_null(mp_http_stats_host_find("svc-00001", "10.0.0.1:80"));
    assert_non_null(mp_http_stats_cluster(st, "svc-00001"));
    mp_http_stats_free_all();
    mp_stats_free(st);
}

static void flush_skips_unrecorded_histograms(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(1);
    assert_non_null(st);
    struct mp_histogram *h = mp_stats_histogram(st, "cluster.a.upstream_rq_time", MP_HIST_PLAIN);
    assert_non_null(h);
    /* flushed while empty, then recorded: the next interval has the value */
    assert_int_equal(mp_stats_flush(st), 0);
    assert_int_equal(mp_stats_flush(st), 0);
    mp_histogram_record(h, 0, 7);
    assert_int_equal(mp_stats_flush(st), 0);
    struct mp_stats_render_opts opts = {.filter = "upstream_rq_time"};
    char *err = NULL;
    char *text = mp_stats_render_string(st, MP_STATS_FORMAT_JSON, &opts, NULL, &err);
    assert_null(err);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"interval\":7,\"cumulative\":7"));
    free(text);
    mp_stats_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cluster_cache_many),
        cmocka_unit_test(flush_skips_unrecorded_histograms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
