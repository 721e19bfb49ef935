/*
 * nomem_alloc.c: the failing allocator of nomem_alloc.h. The replacements
 * forward to glibc's __libc_* entry points and count the blocks that are
 * live, so a check compares the count before and after a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "nomem_alloc.h"

#if !NOMEM_SANITIZED
static long fail_at = -1; /* index of the allocation to fail; -1: none */
static bool sticky;       /* every allocation from fail_at on fails */
static long seen;         /* allocations seen since arming */
static long live;         /* blocks allocated and not yet freed */

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t a, size_t n);
void __libc_free(void *p);

static bool fail_now(void)
{
    if (fail_at < 0)
        return false;
    long i = seen++;
    return i == fail_at || (sticky && i > fail_at);
}

static void *counted(void *p)
{
    if (p != NULL)
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void *malloc(size_t n)
{
    return fail_now() ? NULL : counted(__libc_malloc(n));
}

void *calloc(size_t n, size_t m)
{
    return fail_now() ? NULL : counted(__libc_calloc(n, m));
}

void *realloc(void *old, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = __libc_realloc(old, n);
    if (old == NULL)
        counted(p);
    else if (n == 0 && p == NULL) /* glibc freed old */
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void *aligned_alloc(size_t a, size_t n)
{
    return fail_now() ? NULL : counted(__libc_memalign(a, n));
}

void free(void *p)
{
    if (p != NULL)
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}

void nomem_arm(long k, bool sticky_)
{
    seen = 0;
    sticky = sticky_;
    fail_at = k;
}

long nomem_seen(void)
{
    return seen;
}

long nomem_live(void)
{
    return __atomic_load_n(&live, __ATOMIC_RELAXED);
}
#else
void nomem_arm(long k, bool sticky_)
{
    (void)k;
    (void)sticky_;
}

long nomem_seen(void)
{
    return 0;
}

long nomem_live(void)
{
    return 0;
}
#endif

int nomem_check_every_failure(bool (*scenario)(void), void (*settle)(void), int max_runs,
                              int min_failures)
{
    if (NOMEM_SANITIZED)
        return 0;
    int failures = 0;
    for (int k = 0; k < max_runs; k++) {
        long before = nomem_live();
        nomem_arm(k, true);
        bool ok = scenario();
        /* Every allocation from the k-th on failed; none did when the run
         * made fewer than k + 1. */
        bool injected = nomem_seen() > k;
        nomem_arm(-1, false);
        if (settle != NULL)
            settle();
        long left = nomem_live() - before;
        if (left != 0)
            fail_msg("failing allocation %d: %ld allocation(s) left behind", k, left);
        if (!injected) {
            assert_true(ok);
            break;
        }
        failures++;
    }
    /* Every allocation of the scenario was made to fail once, and then it worked. */
    assert_true(failures > min_failures);
    print_message("%d allocation failures handled\n", failures);
    return failures;
}
