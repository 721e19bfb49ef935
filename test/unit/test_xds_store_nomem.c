/*
 * The xDS resource store (xds/xds_store.c, xds_store_out.c) under a failing
 * allocator: a whole life (CDS with warming, EDS, LDS waiting for RDS and
 * SDS, RDS, secrets arriving and rotating, removal, fetch timeout, builds,
 * dumps, secret sets and names) is run with its k-th allocation failing,
 * for every k. Each failure must come back as an error, never a crash, and
 * leave nothing allocated once the store is freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "nomem_alloc.h"
#include "proxy/mp_common.h"
#include "xds/xds_store.h"
#include "xds_store_pb_build.h"

/* The updates, made once before any allocation is made to fail. */
static struct mp_snapshot *base;
static struct batch cds1, eds1, lds1, rds1, sds1, sds2, cds2;

static void make_updates(void)
{
    base = base_snapshot();
    cds1 = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&cds1, "web", NULL);
    add_static_cluster(&cds1, "db", 5432, 1);
    add_tls_cluster(&cds1, "up", "default", "sds-grpc");
    eds1 = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&eds1, "web", "10.0.0.1", 8080);
    lds1 = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&lds1, "in", 8080, "r1", NULL);
    add_listener(&lds1, "mtls", 15006, NULL,
                 &(struct tls_refs){.cert = "default", .cert_source = "sds-grpc", .ca = "ROOTCA"});
    add_listener(&lds1, "lonely", 9000, "never", NULL); /* goes with the RDS timeout */
    rds1 = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&rds1, "r1", "web", "^/api/v[0-9]+");
    sds1 = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&sds1, "default", pem[A_CRT], pem[A_KEY]);
    add_ca_secret(&sds1, "ROOTCA", pem[B_CRT]);
    sds2 = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&sds2, "default", pem[B_CRT], pem[B_KEY]);
    cds2 = BATCH(MP_XDS_TYPE_CLUSTER); /* db gone */
    add_eds_cluster(&cds2, "web", NULL);
    add_tls_cluster(&cds2, "up", "default", "sds-grpc");
}

static void free_updates(void)
{
    struct batch *all[] = {&cds1, &eds1, &lds1, &rds1, &sds1, &sds2, &cds2};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        batch_free(all[i]);
    mp_snapshot_unref(base);
}

static bool apply(struct mp_xds_store *st, const struct batch *b, bool complete)
{
    struct mp_xds_update up = {
        .type_url = b->type_url,
        .version_info = "1",
        .resources = b->r,
        .n_resources = b->n,
        .complete = complete,
    };
    char *err = NULL;
    int rc = mp_xds_store_apply(st, &up, &err);
    /* a NACK always explains itself, out of memory included */
    bool explained = rc >= 0 || err != NULL;
    free(err);
    return rc >= 0 && explained;
}

static bool outputs(struct mp_xds_store *st)
{
    struct mp_snapshot *snap = NULL;
    if (mp_xds_store_build(st, &snap) < 0)
        return false;
    bool ok = snap->n_clusters > 0;
    mp_snapshot_unref(snap);
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    ok = ok && d != NULL;
    mp_xds_dump_unref(d);
    struct mp_xds_secret_set *set = mp_xds_store_secrets(st);
    ok = ok && set != NULL;
    mp_xds_secret_set_unref(set);
    char **names = NULL;
    size_t n = 0;
    if (ok && mp_xds_store_secret_names(st, "sds-grpc", &names, &n) == 0)
        mp_xds_names_free(names, n);
    else
        ok = false;
    if (ok && mp_xds_store_secret_sources(st, &names, &n) == 0)
        mp_xds_names_free(names, n);
    else
        ok = false;
    return ok;
}

static bool scenario(void)
{
    struct mp_xds_store_config cfg = {.base = base, .want_cds = true, .want_lds = true};
    struct mp_xds_store *st = NULL;
    if (mp_xds_store_new(&cfg, &st) < 0)
        return false;
    bool ok =
        apply(st, &cds1, true) && outputs(st) && apply(st, &eds1, false) && apply(st, &lds1, true);
    if (ok)
        mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_ROUTE);
    ok = ok && apply(st, &rds1, false) && outputs(st) && apply(st, &sds1, false) && outputs(st) &&
         apply(st, &sds2, false) && apply(st, &cds2, true);
    if (ok) {
        static const char *const gone[] = {"r1"};
        struct mp_xds_update up = {.type_url = MP_XDS_TYPE_ROUTE,
                                   .kind = MP_XDS_UPDATE_UNSUBSCRIBED,
                                   .removed = gone,
                                   .n_removed = 1};
        ok = mp_xds_store_apply(st, &up, NULL) == 1 && outputs(st);
    }
    /* the run that meets no failure ends initialised, with all warm */
    if (ok) {
        struct mp_xds_store_counts n;
        mp_xds_store_counts(st, &n);
        ok = mp_xds_store_initialized(st) && n.clusters == 3 && n.clusters_warming == 0 &&
             n.listeners == 4 && n.listeners_warming == 0 && n.secrets == 2;
    }
    mp_xds_store_free(st);
    return ok;
}

static void test_store_every_allocation_failure(void **state)
{
    (void)state;
    make_updates();
    /* First runs uncounted: BoringSSL's and PCRE2's one-time state. */
    assert_true(scenario());
    assert_true(scenario());
    nomem_check_every_failure(scenario, NULL, 100000, 500);
    free_updates();
}

static int group_setup(void **state)
{
    (void)state;
    return pem_setup();
}

static int group_teardown(void **state)
{
    (void)state;
    pem_teardown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
