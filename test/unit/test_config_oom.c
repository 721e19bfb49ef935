/*
 * Failing-allocator run over the config module: every allocation in turn
 * fails, and each time the call must return an error (never crash) and
 * leave nothing allocated.
 *
 * The failing allocator is nomem_alloc.c's, compiled into this executable;
 * glibc routes its own internal allocations (strdup, libyaml, protobuf-c)
 * through it too. Only the k-th allocation fails (not every one after it):
 * the code must also recover when later allocations work again. Sanitizers
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
#include "nomem_alloc.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "proxy/bootstrap.h"
#include "proxy/json.h"
#include "proxy/mp_common.h"
#include "proxy/pb_json.h"
#include "proxy/pb_yaml.h"

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
    if (NOMEM_SANITIZED)
        skip();
#if !NOMEM_SANITIZED
    char path[4200];
    snprintf(path, sizeof(path), "%s/good/anchors.yaml", corpus_dir());
    size_t len = 0;
    char *yaml = read_all(path, &len);
    assert_non_null(yaml);
    assert_int_equal(work(yaml, len), 0); /* warm-up: lazily allocated libc state */
    long rounds = 0;
    for (long k = 0;; k++) {
        long before = nomem_live();
        nomem_arm(k, false);
        int rc = work(yaml, len);
        long seen = nomem_seen();
        nomem_arm(-1, false);
        if (nomem_live() != before)
            fail_msg("allocation %ld failing leaked %ld blocks (rc %d)", k, nomem_live() - before,
                     rc);
        if (seen <= k) { /* nothing failed: the whole run fitted */
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
    if (NOMEM_SANITIZED)
        skip();
#if !NOMEM_SANITIZED
    const char *text = "{\"a\":[1,2,{\"b\":\"c\\u00e9\"}],\"d\":{\"e\":null,\"f\":true}}";
    for (long k = 0;; k++) {
        long before = nomem_live();
        struct mp_json_doc *doc = NULL;
        char *err = NULL;
        nomem_arm(k, false);
        int rc = mp_json_parse(text, strlen(text), NULL, &doc, &err);
        long seen = nomem_seen();
        nomem_arm(-1, false);
        mp_json_doc_free(doc);
        free(err);
        assert_int_equal(nomem_live(), before);
        if (seen <= k) {
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
