/*
 * Failing-allocator run over the config module: every allocation in turn
 * fails, and each time the call must return an error (never crash) and
 * leave nothing allocated.
 *
 * malloc/calloc/realloc/free are replaced in this executable and forward to
 * glibc's __libc_* entry points; glibc routes its own internal allocations
 * (strdup, libyaml, protobuf-c) through the replacement too. Sanitizers
 * bring their own allocator, so the test skips itself under them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config_corpus.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "proxy/bootstrap.h"
#include "proxy/json.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_yaml.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#if !UNDER_SANITIZER
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long fail_at = -1; /* index of the allocation to fail; -1: none */
static long n_allocs;     /* allocations seen since arming */
static long live;         /* blocks allocated and not yet freed */

static int should_fail(void)
{
    if (fail_at < 0)
        return 0;
    return n_allocs++ == fail_at;
}

void *malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __libc_malloc(n);
    if (p != NULL)
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void *calloc(size_t a, size_t b)
{
    if (should_fail())
        return NULL;
    void *p = __libc_calloc(a, b);
    if (p != NULL)
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void *realloc(void *old, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __libc_realloc(old, n);
    if (old == NULL && p != NULL)
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    else if (old != NULL && n == 0 && p == NULL)
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void free(void *p)
{
    if (p != NULL)
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}
#endif

/* One round of everything the config module does with a bootstrap. */
__attribute__((unused)) static int work(const char *yaml, size_t len)
{
    Envoy__Config__Bootstrap__V3__Bootstrap *b = NULL, *o = NULL;
    char *err = NULL, *js = NULL;
    int rc = mp_bootstrap_load_yaml(yaml, len, 0, &b, &err);
    if (rc == 0)
        rc = mp_bootstrap_validate(b, &err);
    if (rc == 0)
        rc = mp_pb_to_json(&b->base, MP_PB_JSON_PRETTY, &js, NULL, &err);
    if (rc == 0)
        rc = mp_bootstrap_load_yaml(js, strlen(js), 0, &o, &err);
    if (rc == 0)
        rc = mp_bootstrap_merge(&b, o, &err);
    free(js);
    free(err);
    mp_bootstrap_free(b);
    mp_bootstrap_free(o);
    return rc;
}

static void every_allocation_failure_is_handled(void **state)
{
    (void)state;
    if (UNDER_SANITIZER)
        skip();
#if !UNDER_SANITIZER
    char path[4200];
    snprintf(path, sizeof(path), "%s/good/anchors.yaml", corpus_dir());
    size_t len = 0;
    char *yaml = read_all(path, &len);
    assert_non_null(yaml);
    assert_int_equal(work(yaml, len), 0); /* warm-up: lazily allocated libc state */
    long rounds = 0;
    for (long k = 0;; k++) {
        long before = live;
        n_allocs = 0;
        fail_at = k;
        int rc = work(yaml, len);
        fail_at = -1;
        if (live != before)
            fail_msg("allocation %ld failing leaked %ld blocks (rc %d)", k, live - before, rc);
        if (n_allocs <= k) { /* nothing failed: the whole run fitted */
            assert_int_equal(rc, 0);
            break;
        }
        if (rc == 0)
            fail_msg("allocation %ld failed but work() reported success", k);
        rounds++;
    }
    assert_true(rounds > 100);
    free(yaml);
#endif
}

static void json_parser_failures(void **state)
{
    (void)state;
    if (UNDER_SANITIZER)
        skip();
#if !UNDER_SANITIZER
    const char *text = "{\"a\":[1,2,{\"b\":\"c\\u00e9\"}],\"d\":{\"e\":null,\"f\":true}}";
    for (long k = 0;; k++) {
        long before = live;
        struct mp_json_doc *doc = NULL;
        char *err = NULL;
        n_allocs = 0;
        fail_at = k;
        int rc = mp_json_parse(text, strlen(text), NULL, &doc, &err);
        fail_at = -1;
        mp_json_doc_free(doc);
        free(err);
        assert_int_equal(live, before);
        if (n_allocs <= k) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_not_equal(rc, 0);
    }
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_handled),
        cmocka_unit_test(json_parser_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
