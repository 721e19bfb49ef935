/* Unit tests for proxy/token_bucket.c: fills, bursts, the cap, and concurrent takers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "proxy/mp_common.h"
#include "proxy/token_bucket.h"

#define MS 1000000ull

/* A clock the test moves by hand; atomic so threads may read it while it moves. */
struct fake_clock {
    _Atomic uint64_t now;
};

static uint64_t fake_now(void *arg)
{
    return atomic_load(&((struct fake_clock *)arg)->now);
}

static void advance(struct fake_clock *c, uint64_t ns)
{
    atomic_fetch_add(&c->now, ns);
}

/* Takes single tokens until refused; returns how many were taken. */
static uint64_t drain(struct mp_token_bucket *b)
{
    uint64_t n = 0;
    while (mp_token_bucket_try_take(b, 1))
        n++;
    return n;
}

static void init_rejects_bad_params(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {1000};
    assert_int_equal(mp_token_bucket_init(&b, 0, 1, MS, fake_now, &c), MP_ERR_INVAL);
    assert_int_equal(mp_token_bucket_init(&b, 1, 0, MS, fake_now, &c), MP_ERR_INVAL);
    assert_int_equal(mp_token_bucket_init(&b, 1, 1, 0, fake_now, &c), MP_ERR_INVAL);
    assert_int_equal(mp_token_bucket_init(&b, ((uint64_t)1 << 32) + 1, 1, MS, fake_now, &c),
                     MP_ERR_INVAL);
    assert_int_equal(mp_token_bucket_init(&b, (uint64_t)1 << 32, 1, MS, fake_now, &c), 0);
    assert_int_equal(mp_token_bucket_available(&b), (uint64_t)1 << 32);
}

static void starts_full_and_bursts(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {5 * MS};
    assert_int_equal(mp_token_bucket_init(&b, 10, 2, 100 * MS, fake_now, &c), 0);
    assert_int_equal(mp_token_bucket_available(&b), 10);
    /* the whole burst is available at once, then nothing */
    assert_int_equal(drain(&b), 10);
    assert_int_equal(mp_token_bucket_available(&b), 0);
    assert_false(mp_token_bucket_try_take(&b, 1));
}

static void refills_per_interval(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {0};
    assert_int_equal(mp_token_bucket_init(&b, 10, 3, 100 * MS, fake_now, &c), 0);
    assert_int_equal(drain(&b), 10);
    /* just before the interval ends nothing has come back */
    advance(&c, 99 * MS);
    assert_false(mp_token_bucket_try_take(&b, 1));
    advance(&c, 1 * MS);
    assert_int_equal(mp_token_bucket_available(&b), 3);
    assert_int_equal(drain(&b), 3);
    /* two intervals at once add two fills */
    advance(&c, 200 * MS);
    assert_int_equal(drain(&b), 6);
    /* fills are counted from creation, not from the last take */
    advance(&c, 50 * MS); /* t = 350 ms */
    assert_int_equal(drain(&b), 0);
    advance(&c, 50 * MS); /* t = 400 ms */
    assert_int_equal(drain(&b), 3);
}

static void never_above_max(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {0};
    assert_int_equal(mp_token_bucket_init(&b, 5, 2, 10 * MS, fake_now, &c), 0);
    /* a long idle period does not store more than max_tokens */
    advance(&c, 10000 * MS);
    assert_int_equal(mp_token_bucket_available(&b), 5);
    assert_int_equal(drain(&b), 5);
    /* partial drain, then many fills: still capped */
    advance(&c, 10 * MS);
    assert_true(mp_token_bucket_try_take(&b, 1));
    advance(&c, 1000 * MS);
    assert_int_equal(mp_token_bucket_available(&b), 5);
    assert_int_equal(drain(&b), 5);
    /* tokens_per_fill above max_tokens fills to max only */
    assert_int_equal(mp_token_bucket_init(&b, 4, 100, 10 * MS, fake_now, &c), 0);
    assert_int_equal(drain(&b), 4);
    advance(&c, 10 * MS);
    assert_int_equal(mp_token_bucket_available(&b), 4);
    assert_int_equal(drain(&b), 4);
}

static void take_n_all_or_nothing(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {0};
    assert_int_equal(mp_token_bucket_init(&b, 10, 10, 10 * MS, fake_now, &c), 0);
    assert_false(mp_token_bucket_try_take(&b, 0));
    assert_false(mp_token_bucket_try_take(&b, 11));
    assert_true(mp_token_bucket_try_take(&b, 7));
    /* 3 left: asking for 4 takes nothing */
    assert_false(mp_token_bucket_try_take(&b, 4));
    assert_int_equal(mp_token_bucket_available(&b), 3);
    assert_true(mp_token_bucket_try_take(&b, 3));
    assert_int_equal(mp_token_bucket_available(&b), 0);
}

static void clock_before_start_and_next_fill(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {1000 * MS};
    assert_int_equal(mp_token_bucket_init(&b, 2, 1, 100 * MS, fake_now, &c), 0);
    assert_int_equal(mp_token_bucket_next_fill_ns(&b), 100 * MS);
    advance(&c, 30 * MS);
    assert_int_equal(mp_token_bucket_next_fill_ns(&b), 70 * MS);
    assert_int_equal(drain(&b), 2);
    /* a clock that steps back (another thread's older reading) adds nothing */
    atomic_store(&c.now, 900 * MS);
    assert_int_equal(mp_token_bucket_available(&b), 0);
    assert_false(mp_token_bucket_try_take(&b, 1));
    atomic_store(&c.now, 1100 * MS);
    assert_int_equal(drain(&b), 1);
}

static void huge_elapsed_time_saturates(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    struct fake_clock c = {0};
    assert_int_equal(
        mp_token_bucket_init(&b, (uint64_t)1 << 32, (uint64_t)1 << 32, 1, fake_now, &c), 0);
    atomic_store(&c.now, UINT64_MAX);
    assert_int_equal(mp_token_bucket_available(&b), (uint64_t)1 << 32);
    assert_true(mp_token_bucket_try_take(&b, (uint64_t)1 << 31));
    assert_int_equal(mp_token_bucket_available(&b), (uint64_t)1 << 31);
}

static void real_clock_default(void **state)
{
    (void)state;
    struct mp_token_bucket b;
    uint64_t t0 = mp_token_bucket_monotonic_ns(NULL);
    assert_int_equal(mp_token_bucket_init(&b, 3, 1, 3600ull * 1000 * MS, NULL, NULL), 0);
    assert_true(b.start_ns >= t0);
    assert_int_equal(drain(&b), 3);
    assert_true(mp_token_bucket_monotonic_ns(NULL) >= b.start_ns);
}

/* ---- concurrency ---------------------------------------------------------- */

#define THREADS 8

struct taker {
    struct mp_token_bucket *b;
    struct fake_clock *clock;
    _Atomic int *go;
    _Atomic int *stop;
    uint64_t taken;
    uint64_t batch; /* tokens asked for per take */
    bool ticker;    /* moves the clock while the others take */
    uint64_t ticks;
};

static void *taker_main(void *arg)
{
    struct taker *t = arg;
    while (!atomic_load(t->go))
        ;
    if (t->ticker) {
        for (uint64_t i = 0; i < t->ticks; i++) {
            advance(t->clock, 10 * MS);
            for (volatile int spin = 0; spin < 2000; spin++)
                ;
        }
        atomic_store(t->stop, 1);
        return NULL;
    }
    for (;;) {
        bool stopping = atomic_load(t->stop);
        if (mp_token_bucket_try_take(t->b, t->batch))
            t->taken += t->batch;
        else if (stopping)
            break;
    }
    return NULL;
}

static void run_threads(struct taker *tk, size_t n, _Atomic int *go)
{
    pthread_t th[THREADS + 1];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, taker_main, &tk[i]), 0);
    atomic_store(go, 1);
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* With the clock stopped, threads together take exactly the bucket's content. */
static void concurrent_takers_exact(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct mp_token_bucket b;
        struct fake_clock c = {0};
        assert_int_equal(mp_token_bucket_init(&b, 100000, 1, 1000 * MS, fake_now, &c), 0);
        _Atomic int go = 0, stop = 1;
        struct taker tk[THREADS];
        for (int i = 0; i < THREADS; i++)
            tk[i] = (struct taker){.b = &b, .clock = &c, .go = &go, .stop = &stop, .batch = 1};
        run_threads(tk, THREADS, &go);
        uint64_t total = 0;
        for (int i = 0; i < THREADS; i++)
            total += tk[i].taken;
        assert_int_equal(total, 100000);
        assert_int_equal(mp_token_bucket_available(&b), 0);
    }
}

/* While the clock moves, takers never get more than the start plus the fills. */
static void concurrent_takers_with_refill(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        struct mp_token_bucket b;
        struct fake_clock c = {0};
        const uint64_t max = 50, per_fill = 7, ticks = 2000;
        assert_int_equal(mp_token_bucket_init(&b, max, per_fill, 10 * MS, fake_now, &c), 0);
        _Atomic int go = 0, stop = 0;
        struct taker tk[THREADS + 1];
        for (int i = 0; i < THREADS; i++)
            tk[i] = (struct taker){
                .b = &b, .clock = &c, .go = &go, .stop = &stop, .batch = (uint64_t)(i % 3) + 1};
        tk[THREADS] = (struct taker){
            .b = &b, .clock = &c, .go = &go, .stop = &stop, .ticker = true, .ticks = ticks};
        run_threads(tk, THREADS + 1, &go);
        uint64_t total = 0;
        for (int i = 0; i < THREADS; i++)
            total += tk[i].taken;
        /* upper bound: what was ever put in */
        assert_true(total <= max + ticks * per_fill);
        /* what is left plus what was taken never exceeds the supply either */
        assert_true(total + mp_token_bucket_available(&b) <= max + ticks * per_fill);
        /* the takers keep up with the fills, so most of it was taken */
        assert_true(total >= max);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_rejects_bad_params),
        cmocka_unit_test(starts_full_and_bursts),
        cmocka_unit_test(refills_per_interval),
        cmocka_unit_test(never_above_max),
        cmocka_unit_test(take_n_all_or_nothing),
        cmocka_unit_test(clock_before_start_and_next_fill),
        cmocka_unit_test(huge_elapsed_time_saturates),
        cmocka_unit_test(real_clock_default),
        cmocka_unit_test(concurrent_takers_exact),
        cmocka_unit_test(concurrent_takers_with_refill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
