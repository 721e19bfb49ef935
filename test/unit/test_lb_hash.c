/* Unit tests for lb_hash.c: hashes match Envoy's published test vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lb_hash.h"

static uint64_t xx(const char *s)
{
    return mp_lb_xxhash64(s, strlen(s), 0);
}

static uint64_t mm(const char *s)
{
    return mp_lb_murmur2_64(s, strlen(s), MP_MURMUR2_STD_SEED);
}

/* Values from Envoy's test/common/common/hash_test.cc. */
static void xxhash64_matches_envoy(void **state)
{
    (void)state;
    assert_true(xx("foo") == 3728699739546630719ULL);
    assert_true(xx("bar") == 5234164152756840025ULL);
    assert_true(xx("foo\nbar") == 8917841378505826757ULL);
    assert_true(xx("lyft") == 4400747396090729504ULL);
    assert_true(xx("") == 17241709254077376921ULL);
}

static void xxhash64_long_inputs_use_all_bytes(void **state)
{
    (void)state;
    char a[100], b[100];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[99] = 'y';
    assert_true(mp_lb_xxhash64(a, sizeof(a), 0) != mp_lb_xxhash64(b, sizeof(b), 0));
    b[99] = 'x';
    b[3] = 'y';
    assert_true(mp_lb_xxhash64(a, sizeof(a), 0) != mp_lb_xxhash64(b, sizeof(b), 0));
    assert_true(mp_lb_xxhash64(a, sizeof(a), 0) != mp_lb_xxhash64(a, sizeof(a), 1));
}

static void murmur2_matches_envoy(void **state)
{
    (void)state;
    assert_true(mm("foo") == 9631199822919835226ULL);
    assert_true(mm("bar") == 11474628671133349555ULL);
    assert_true(mm("foo\nbar") == 16306510975912980159ULL);
    assert_true(mm("lyft") == 12847078931730529320ULL);
    assert_true(mm("") == 6142509188972423790ULL);
}

static void rng_is_seeded_and_varies(void **state)
{
    (void)state;
    uint64_t a[2], b[2], c[2];
    mp_lb_rng_seed(a, 1);
    mp_lb_rng_seed(b, 1);
    mp_lb_rng_seed(c, 2);
    uint64_t x = mp_lb_random_u64(a);
    assert_true(x == mp_lb_random_u64(b));
    assert_true(x != mp_lb_random_u64(c));
    /* Low bits must vary too: they pick hosts via % n. */
    int odd = 0;
    for (int i = 0; i < 1000; i++)
        odd += (int)(mp_lb_random_u64(a) & 1);
    assert_in_range(odd, 400, 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xxhash64_matches_envoy),
        cmocka_unit_test(xxhash64_long_inputs_use_all_bytes),
        cmocka_unit_test(murmur2_matches_envoy),
        cmocka_unit_test(rng_is_seeded_and_varies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
