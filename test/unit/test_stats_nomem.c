/*
 * Failing-allocator run for the stats module (stats.c, stats_tags.c,
 * stats_render.c): the n-th allocation fails, for every n until a run
 * succeeds; each run must fail cleanly and leave no allocation behind.
 *
 * The failing allocator is nomem_alloc.c's (glibc sends its own and
 * libpcre2's calls to it too). Sanitizers bring their own allocator, so under
 * them this test only runs the scenario once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nomem_alloc.h"
#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/stats_render.h"

/* Builds, uses, renders and frees a registry. Returns true when every step
 * worked; on any failure it still frees everything. */
static bool scenario(void)
{
    bool ok = true;
    struct mp_stats *st = mp_stats_new(2);
    if (!st)
        return false;
    struct mp_counter *c = mp_stats_counter(st, "cluster.foo.upstream_rq_total");
    struct mp_counter *c2 = mp_stats_counterf(st, "http.%s.downstream_rq_2xx", "ingress");
    struct mp_gauge *g = mp_stats_gauge(st, "listener.0.0.0.0:8080.downstream_cx_active");
    struct mp_histogram *h =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_MS_FROM_US);
    ok = c && c2 && g && h;
    /* NULL handles are no-ops, so a failed registration cannot crash the data path. */
    mp_counter_inc(c, 0, 1);
    mp_counter_inc(c2, 1, 2);
    mp_gauge_add(g, 0, 3);
    mp_histogram_record(h, 0, 1500);
    mp_histogram_record(h, 1, 2500);
    if (mp_stats_flush(st) != 0)
        ok = false;
    char *err = NULL;
    int rc = mp_stats_add_tag_regex(st, "cluster_name", "^cluster\\.(([^.]+)\\.)", &err);
    free(err);
    if (rc != 0)
        ok = false;
    if (mp_stats_add_fixed_tag(st, "mesh", "m") != 0)
        ok = false;
    static const enum mp_stats_format fmts[] = {MP_STATS_FORMAT_TEXT, MP_STATS_FORMAT_JSON,
                                                MP_STATS_FORMAT_PROMETHEUS};
    for (size_t i = 0; i < 3; i++) {
        struct mp_stats_render_opts o = {.filter = i == 2 ? "cluster" : NULL};
        struct mp_buffer out = MP_BUFFER_INIT;
        err = NULL;
        rc = mp_stats_render(st, fmts[i], &o, &out, &err);
        if (rc != 0) {
            ok = false;
            assert_int_equal(rc, MP_ERR_NOMEM); /* the filter is valid: only NOMEM */
        } else {
            assert_true(mp_buffer_len(&out) > 0);
        }
        free(err);
        mp_buffer_clear(&out);
    }
    const char *ct;
    struct mp_buffer out = MP_BUFFER_INIT;
    err = NULL;
    rc = mp_stats_admin_handle(st, "/stats?usedonly&filter=%5Ecluster", &out, &ct, &err);
    if (rc != 0) {
        ok = false;
        assert_int_equal(rc, MP_ERR_NOMEM);
    }
    free(err);
    mp_buffer_clear(&out);
    mp_stats_free(st);
    return ok;
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    /* Warm up once: thread-local blocks (buffer counters, slice cache) are
     * made on first use and live as long as the thread. */
    assert_true(scenario());
    mp_slice_cache_trim();
    /* Under sanitizers the run above (checked for leaks by LeakSanitizer) is
     * all this build does. */
    nomem_check_every_failure(scenario, mp_slice_cache_trim, 5000, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
