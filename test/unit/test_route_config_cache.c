/* Unit tests for filters/http/route_config_cache.c: per-route configs are
 * parsed once per distinct bytes, failures are remembered, a full cache says
 * so, and racing workers all end up with the one published entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "filters/http/route_config_cache.h"
#include "proxy/mp_common.h"
#include "proxy/route_table.h"

static _Atomic int g_parsed, g_freed;

/* "ok..." parses into a copy of the bytes; anything else fails. */
static int parse(const uint8_t *data, size_t len, void **out)
{
    atomic_fetch_add(&g_parsed, 1);
    if (len < 2 || memcmp(data, "ok", 2) != 0)
        return MP_ERR_INVAL;
    char *s = calloc(1, len + 1);
    if (!s)
        return MP_ERR_NOMEM;
    memcpy(s, data, len);
    *out = s;
    return 0;
}

static void cfg_free(void *p)
{
    atomic_fetch_add(&g_freed, 1);
    free(p);
}

static struct mp_typed_config tc_of(const char *s)
{
    return (struct mp_typed_config){
        .filter_name = "f", .type_url = "t", .value = (const uint8_t *)s, .value_len = strlen(s)};
}

static void test_parse_once_by_bytes(void **state)
{
    (void)state;
    g_parsed = g_freed = 0;
    struct mp_route_config_cache *c = mp_route_config_cache_new(4, parse, cfg_free);
    assert_non_null(c);
    char a1[] = "ok-a", a2[] = "ok-a"; /* same bytes, other entries */
    struct mp_typed_config t1 = tc_of(a1), t2 = tc_of(a2), tb = tc_of("ok-b"), bad = tc_of("x");
    void *p1 = NULL, *p2 = NULL, *pb = NULL, *px = (void *)1;
    assert_int_equal(mp_route_config_cache_get(c, &t1, &p1), 0);
    assert_string_equal(p1, "ok-a");
    assert_int_equal(mp_route_config_cache_get(c, &t2, &p2), 0);
    assert_ptr_equal(p1, p2);
    assert_int_equal(mp_route_config_cache_get(c, &tb, &pb), 0);
    assert_string_equal(pb, "ok-b");
    assert_int_equal(g_parsed, 2);
    /* a failure is remembered too */
    assert_int_equal(mp_route_config_cache_get(c, &bad, &px), 0);
    assert_null(px);
    px = (void *)1;
    assert_int_equal(mp_route_config_cache_get(c, &bad, &px), 0);
    assert_null(px);
    assert_int_equal(g_parsed, 3);
    /* four slots: one more fits, then the cache is full */
    struct mp_typed_config t4 = tc_of("ok-4"), t5 = tc_of("ok-5");
    void *p = NULL;
    assert_int_equal(mp_route_config_cache_get(c, &t4, &p), 0);
    assert_int_equal(mp_route_config_cache_get(c, &t5, &p), MP_ERR_LIMIT);
    assert_int_equal(g_parsed, 4); /* a full cache parses nothing */
    /* the full cache still finds what it has */
    assert_int_equal(mp_route_config_cache_get(c, &tb, &p), 0);
    assert_ptr_equal(p, pb);
    mp_route_config_cache_free(c);
    assert_int_equal(g_freed, 3); /* a, b and 4 (x never parsed) */
}

static struct mp_route_config_cache *g_cache;
static void *g_seen[8];

static void *worker(void *arg)
{
    size_t i = (size_t)arg;
    struct mp_typed_config t = tc_of("ok-shared");
    for (int k = 0; k < 1000; k++) {
        void *p = NULL;
        if (mp_route_config_cache_get(g_cache, &t, &p) != 0 || (g_seen[i] && g_seen[i] != p))
            return (void *)1;
        g_seen[i] = p;
    }
    return NULL;
}

static void test_racing_workers_share_one(void **state)
{
    (void)state;
    g_parsed = g_freed = 0;
    g_cache = mp_route_config_cache_new(16, parse, cfg_free);
    pthread_t th[8];
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (size_t i = 0; i < 8; i++) {
        void *r = (void *)1;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    for (size_t i = 1; i < 8; i++)
        assert_ptr_equal(g_seen[i], g_seen[0]);
    /* losers of a race free what they parsed */
    assert_int_equal(g_freed, g_parsed - 1);
    mp_route_config_cache_free(g_cache);
    assert_int_equal(g_freed, g_parsed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_once_by_bytes),
        cmocka_unit_test(test_racing_workers_share_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
