/*
 * test_snapshot_release.c: mp_snapshot_set_release_hook, by which worker
 * threads hand the snapshots whose last reference they drop to the main
 * thread (snapshot.c).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "snapshot.h"

struct taken {
    struct mp_snapshot *v[4];
    int n;
};

static void take(void *arg, struct mp_snapshot *snap)
{
    struct taken *t = arg;
    assert_true(t->n < 4);
    t->v[t->n++] = snap;
}

static void *worker_like(void *arg)
{
    struct taken *t = arg;
    mp_snapshot_set_release_hook(take, t);
    struct mp_snapshot *a = mp_snapshot_new();
    assert_non_null(a);
    mp_snapshot_ref(a);
    mp_snapshot_unref(a); /* not the last: nothing handed over */
    assert_int_equal(t->n, 0);
    mp_snapshot_unref(a); /* the last: handed over, not freed */
    assert_int_equal(t->n, 1);
    assert_ptr_equal(t->v[0], a);
    mp_snapshot_unref(NULL);
    assert_int_equal(t->n, 1);
    return NULL;
}

static void hook_takes_last_reference(void **state)
{
    (void)state;
    struct taken t = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, worker_like, &t), 0);
    pthread_join(th, NULL);
    assert_int_equal(t.n, 1);
    /* this thread has no hook: the receiver frees (ASan: nothing leaks) */
    mp_snapshot_free(t.v[0]);
    struct mp_snapshot *b = mp_snapshot_new();
    assert_non_null(b);
    mp_snapshot_unref(b); /* freed in place */
    assert_int_equal(t.n, 1);
    /* a hook set and cleared again: freed in place */
    mp_snapshot_set_release_hook(take, &t);
    mp_snapshot_set_release_hook(NULL, NULL);
    mp_snapshot_unref(mp_snapshot_new());
    assert_int_equal(t.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hook_takes_last_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
