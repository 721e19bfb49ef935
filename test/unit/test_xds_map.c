/* Unit tests for xds/xds_map.c: the string-keyed hash map of the xDS store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xds/xds_map.h"

/* Values are plain tags: the map never looks at them. */
#define TAG(i) ((void *)(uintptr_t)((i) + 1))

static void test_empty_map(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    assert_null(mp_xds_map_get(&m, "a"));
    assert_null(mp_xds_map_del(&m, "a"));
    assert_int_equal(m.count, 0);
    mp_xds_map_clear(&m); /* never grown: nothing to free */
    assert_null(m.buckets);
}

static void test_put_get_del(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    void *old = TAG(99);
    assert_int_equal(mp_xds_map_put(&m, "outbound|80||web", TAG(1), &old), 0);
    assert_null(old); /* a new key reports no previous value */
    assert_int_equal(mp_xds_map_put(&m, "outbound|80||api", TAG(2), NULL), 0);
    assert_int_equal(m.count, 2);
    assert_ptr_equal(mp_xds_map_get(&m, "outbound|80||web"), TAG(1));
    assert_ptr_equal(mp_xds_map_get(&m, "outbound|80||api"), TAG(2));
    assert_null(mp_xds_map_get(&m, "outbound|80||db"));
    assert_null(mp_xds_map_get(&m, "")); /* the empty key is an ordinary, absent key */

    assert_ptr_equal(mp_xds_map_del(&m, "outbound|80||web"), TAG(1));
    assert_int_equal(m.count, 1);
    assert_null(mp_xds_map_get(&m, "outbound|80||web"));
    assert_null(mp_xds_map_del(&m, "outbound|80||web")); /* second delete: absent */
    assert_ptr_equal(mp_xds_map_get(&m, "outbound|80||api"), TAG(2));

    /* a deleted key can come back */
    assert_int_equal(mp_xds_map_put(&m, "outbound|80||web", TAG(3), &old), 0);
    assert_null(old);
    assert_ptr_equal(mp_xds_map_get(&m, "outbound|80||web"), TAG(3));
    mp_xds_map_clear(&m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.n_buckets, 0);
}

static void test_replace_returns_old(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    void *old = NULL;
    assert_int_equal(mp_xds_map_put(&m, "k", TAG(1), &old), 0);
    assert_int_equal(mp_xds_map_put(&m, "k", TAG(2), &old), 0);
    assert_ptr_equal(old, TAG(1));
    assert_int_equal(m.count, 1); /* replaced, not added */
    assert_ptr_equal(mp_xds_map_get(&m, "k"), TAG(2));
    /* replacing without asking for the old value */
    assert_int_equal(mp_xds_map_put(&m, "k", TAG(3), NULL), 0);
    assert_ptr_equal(mp_xds_map_get(&m, "k"), TAG(3));
    /* a NULL value is stored (get cannot tell it from absent; del and count can) */
    assert_int_equal(mp_xds_map_put(&m, "n", NULL, &old), 0);
    assert_int_equal(m.count, 2);
    assert_int_equal(mp_xds_map_put(&m, "n", TAG(4), &old), 0);
    assert_null(old);
    assert_int_equal(m.count, 2);
    mp_xds_map_clear(&m);
}

static void test_keys_are_copied(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    char key[16];
    strcpy(key, "route-a");
    assert_int_equal(mp_xds_map_put(&m, key, TAG(1), NULL), 0);
    strcpy(key, "route-b"); /* the caller's buffer changes; the map's key does not */
    assert_null(mp_xds_map_get(&m, "route-b"));
    assert_ptr_equal(mp_xds_map_get(&m, "route-a"), TAG(1));
    mp_xds_map_clear(&m);
}

struct seen {
    unsigned char *hits; /* per index */
    size_t n;
    size_t calls;
    int bad;
};

static void mark(void *arg, const char *key, void *value)
{
    struct seen *s = arg;
    unsigned long i = 0;
    s->calls++;
    if (sscanf(key, "cluster-%lu", &i) != 1 || i >= s->n || value != TAG(i)) {
        s->bad++;
        return;
    }
    s->hits[i]++;
}

/* 20,000 keys: the map doubles many times and every key stays reachable. */
static void test_grow_to_20000(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct mp_xds_map m = {0};
    char key[32];
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "cluster-%zu", i);
        assert_int_equal(mp_xds_map_put(&m, key, TAG(i), NULL), 0);
        /* load factor at most 1 after every put, buckets a power of two */
        assert_true(m.count <= m.n_buckets);
        assert_int_equal(m.n_buckets & (m.n_buckets - 1), 0);
    }
    assert_int_equal(m.count, N);
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "cluster-%zu", i);
        assert_ptr_equal(mp_xds_map_get(&m, key), TAG(i));
    }
    snprintf(key, sizeof(key), "cluster-%d", N);
    assert_null(mp_xds_map_get(&m, key));

    /* each visits every entry exactly once */
    struct seen s = {.hits = calloc(N, 1), .n = N};
    assert_non_null(s.hits);
    mp_xds_map_each(&m, mark, &s);
    assert_int_equal(s.calls, N);
    assert_int_equal(s.bad, 0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(s.hits[i], 1);

    /* delete the odd half; the even half stays, each sees only it */
    for (size_t i = 1; i < N; i += 2) {
        snprintf(key, sizeof(key), "cluster-%zu", i);
        assert_ptr_equal(mp_xds_map_del(&m, key), TAG(i));
    }
    assert_int_equal(m.count, N / 2);
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "cluster-%zu", i);
        if (i % 2)
            assert_null(mp_xds_map_get(&m, key));
        else
            assert_ptr_equal(mp_xds_map_get(&m, key), TAG(i));
    }
    memset(s.hits, 0, N);
    s.calls = 0;
    mp_xds_map_each(&m, mark, &s);
    assert_int_equal(s.calls, N / 2);
    assert_int_equal(s.bad, 0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(s.hits[i], i % 2 ? 0 : 1);
    free(s.hits);

    /* clear frees everything (ASan's leak check) and leaves a usable map */
    mp_xds_map_clear(&m);
    assert_int_equal(m.count, 0);
    assert_null(mp_xds_map_get(&m, "cluster-0"));
    assert_int_equal(mp_xds_map_put(&m, "cluster-0", TAG(0), NULL), 0);
    assert_ptr_equal(mp_xds_map_get(&m, "cluster-0"), TAG(0));
    mp_xds_map_clear(&m);
}

static void count_cb(void *arg, const char *key, void *value)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
}

static void test_each_on_empty_and_cleared(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    size_t n = 0;
    mp_xds_map_each(&m, count_cb, &n);
    assert_int_equal(n, 0);
    assert_int_equal(mp_xds_map_put(&m, "a", TAG(0), NULL), 0);
    assert_ptr_equal(mp_xds_map_del(&m, "a"), TAG(0));
    mp_xds_map_each(&m, count_cb, &n); /* grown, now empty */
    assert_int_equal(n, 0);
    mp_xds_map_clear(&m);
    mp_xds_map_each(&m, count_cb, &n);
    assert_int_equal(n, 0);
}

/* Keys that collide in the low bits share a bucket chain: deleting from the
 * head, middle and tail of a chain keeps the others. */
static void test_chain_deletes(void **state)
{
    (void)state;
    struct mp_xds_map m = {0};
    char key[32];
    /* 16 buckets until the 17th put: 16 keys give chains of several entries */
    for (size_t i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        assert_int_equal(mp_xds_map_put(&m, key, TAG(i), NULL), 0);
    }
    assert_int_equal(m.n_buckets, 16);
    size_t longest = 0;
    for (size_t b = 0; b < m.n_buckets; b++) {
        size_t len = 0;
        for (struct mp_xds_map_entry *e = m.buckets[b]; e; e = e->next)
            len++;
        if (len > longest)
            longest = len;
    }
    assert_true(longest >= 2); /* pigeonhole would not prove it; FNV on these keys does */
    for (size_t i = 0; i < 16; i += 3) {
        snprintf(key, sizeof(key), "k%zu", i);
        assert_ptr_equal(mp_xds_map_del(&m, key), TAG(i));
    }
    for (size_t i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        if (i % 3 == 0)
            assert_null(mp_xds_map_get(&m, key));
        else
            assert_ptr_equal(mp_xds_map_get(&m, key), TAG(i));
    }
    mp_xds_map_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_replace_returns_old),
        cmocka_unit_test(test_keys_are_copied),
        cmocka_unit_test(test_grow_to_20000),
        cmocka_unit_test(test_each_on_empty_and_cleared),
        cmocka_unit_test(test_chain_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
