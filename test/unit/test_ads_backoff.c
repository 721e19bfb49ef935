/* Unit tests for ads_backoff.c and ads_names.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "xds/ads_backoff.h"
#include "xds/ads_names.h"

static void delays_stay_within_jitter_bounds(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed < 200; seed++) {
        struct mp_backoff b;
        mp_backoff_init(&b, 500, 30000, seed);
        int64_t ceiling = 500;
        for (int i = 0; i < 12; i++) {
            int64_t d = mp_backoff_next(&b);
            assert_true(d >= ceiling / 2);
            assert_true(d <= ceiling);
            ceiling = ceiling * 2 > 30000 ? 30000 : ceiling * 2;
        }
        mp_backoff_reset(&b);
        int64_t d = mp_backoff_next(&b);
        assert_true(d >= 250 && d <= 500);
    }
}

static void delays_are_jittered(void **state)
{
    (void)state;
    struct mp_backoff b;
    mp_backoff_init(&b, 1000, 1000, 42);
    int64_t first = mp_backoff_next(&b);
    int differ = 0;
    for (int i = 0; i < 50; i++)
        differ |= mp_backoff_next(&b) != first;
    assert_true(differ);
}

static void defaults(void **state)
{
    (void)state;
    struct mp_backoff b;
    mp_backoff_init(&b, 0, 0, 7);
    assert_int_equal(b.base_ms, 500);
    assert_int_equal(b.max_ms, 30000);
    mp_backoff_init(&b, 60000, 0, 7);
    assert_int_equal(b.max_ms, 60000);
    for (int i = 0; i < 5; i++) {
        int64_t d = mp_backoff_next(&b);
        assert_true(d >= 30000 && d <= 60000);
    }
}

static void names_set_operations(void **state)
{
    (void)state;
    struct mp_ads_names a = MP_ADS_NAMES_INIT, b = MP_ADS_NAMES_INIT, d = MP_ADS_NAMES_INIT;
    const char *in[] = {"m", "c", "x", "a", "c"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(mp_ads_names_add(&a, in[i]), 0);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.v[0], "a");
    assert_string_equal(a.v[3], "x");
    assert_true(mp_ads_names_has(&a, "m"));
    assert_false(mp_ads_names_has(&a, "b"));
    mp_ads_names_add(&b, "c");
    mp_ads_names_add(&b, "z");
    assert_int_equal(mp_ads_names_minus(&d, &a, &b), 0);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.v[1], "m");
    assert_int_equal(mp_ads_names_union(&b, &a), 0);
    assert_int_equal(b.n, 5);
    assert_true(mp_ads_names_remove(&b, "z"));
    assert_false(mp_ads_names_remove(&b, "z"));
    assert_true(mp_ads_names_equal(&a, &b));
    assert_int_equal(mp_ads_names_copy(&d, &a), 0);
    assert_true(mp_ads_names_equal(&a, &d));
    mp_ads_names_clear(&a);
    mp_ads_names_clear(&b);
    mp_ads_names_clear(&d);
    assert_int_equal(a.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delays_stay_within_jitter_bounds),
        cmocka_unit_test(delays_are_jittered),
        cmocka_unit_test(defaults),
        cmocka_unit_test(names_set_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
