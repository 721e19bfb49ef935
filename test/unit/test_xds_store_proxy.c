/*
 * Unit tests for the proxy's xDS resource store (xds/xds_store.c,
 * xds/xds_store_out.c): translation per update, all-or-nothing NACK, SotW and
 * delta removal, make-before-break warming, SDS names and re-translation,
 * initialisation, and the snapshots built from it. No network: each update
 * is made here from real Envoy protos, serialized with protobuf-c and
 * unpacked again, as the xDS client hands them over.
 *
 * (test_xds_store.c tests the control plane's xds/server/xds_store.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/mp_common.h"
#include "proxy/tls_config.h"
#include "xds/xds_store.h"
#include "xds_store_pb_build.h"

/* ---- applying updates ---------------------------------------------------------- */

static bool wildcard(const char *type_url)
{
    return strcmp(type_url, MP_XDS_TYPE_CLUSTER) == 0 ||
           strcmp(type_url, MP_XDS_TYPE_LISTENER) == 0;
}

static int apply_ex(struct mp_xds_store *st, struct batch *b, enum mp_xds_mode mode,
                    const char *version, bool complete, const char *const *removed,
                    size_t n_removed, char **err)
{
    for (size_t i = 0; i < b->n; i++)
        b->r[i].version = version;
    struct mp_xds_update up = {
        .type_url = b->type_url,
        .kind = MP_XDS_UPDATE_RESPONSE,
        .mode = mode,
        .version_info = version,
        .nonce = "n",
        .resources = b->r,
        .n_resources = b->n,
        .removed = removed,
        .n_removed = n_removed,
        .complete = complete,
    };
    *err = NULL;
    int rc = mp_xds_store_apply(st, &up, err);
    if (rc >= 0)
        assert_null(*err);
    else
        assert_non_null(*err);
    return rc;
}

/* A SotW response: complete for the wildcard types. Frees the batch. Fails
 * the test on a NACK. */
static int sotw(struct mp_xds_store *st, struct batch *b, const char *version)
{
    char *err = NULL;
    int rc = apply_ex(st, b, MP_XDS_SOTW, version, wildcard(b->type_url), NULL, 0, &err);
    if (rc < 0)
        fail_msg("%s v%s rejected: %s", b->type_url, version, err);
    batch_free(b);
    return rc;
}

/* A SotW response expected to be NACKed: returns the error (caller frees). */
static char *sotw_nack(struct mp_xds_store *st, struct batch *b, const char *version)
{
    char *err = NULL;
    int rc = apply_ex(st, b, MP_XDS_SOTW, version, wildcard(b->type_url), NULL, 0, &err);
    assert_true(rc < 0);
    batch_free(b);
    return err;
}

static int unsubscribed(struct mp_xds_store *st, const char *type_url, const char *const *names,
                        size_t n)
{
    struct mp_xds_update up = {
        .type_url = type_url,
        .kind = MP_XDS_UPDATE_UNSUBSCRIBED,
        .removed = names,
        .n_removed = n,
    };
    char *err = NULL;
    int rc = mp_xds_store_apply(st, &up, &err);
    assert_null(err);
    return rc;
}

/* ---- stores, snapshots ------------------------------------------------------------ */

static struct mp_xds_store *store_new(bool with_base, bool want_cds, bool want_lds)
{
    struct mp_snapshot *base = with_base ? base_snapshot() : NULL;
    struct mp_xds_store_config cfg = {.base = base, .want_cds = want_cds, .want_lds = want_lds};
    struct mp_xds_store *st = NULL;
    assert_int_equal(mp_xds_store_new(&cfg, &st), 0);
    mp_snapshot_unref(base); /* the store holds its own references */
    return st;
}

static struct mp_snapshot *build(struct mp_xds_store *st)
{
    struct mp_snapshot *snap = NULL;
    assert_int_equal(mp_xds_store_build(st, &snap), 0);
    assert_non_null(snap);
    assert_true(snap->sealed);
    return snap;
}

static struct mp_xds_store_counts counts(struct mp_xds_store *st)
{
    struct mp_xds_store_counts n;
    mp_xds_store_counts(st, &n);
    return n;
}

static const struct mp_snapshot_cluster *cluster_in(const struct mp_snapshot *s, const char *name)
{
    return mp_snapshot_find_cluster_entry(s, name, strlen(name));
}

static uint16_t first_port(const struct mp_host_set *hs)
{
    assert_non_null(hs);
    assert_true(hs->n_hosts > 0);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&hs->hosts[0].addr;
    return ntohs(in->sin_port);
}

/* Two builds hold the very same translated objects. */
static void assert_same_build(const struct mp_snapshot *a, const struct mp_snapshot *b)
{
    assert_int_equal(a->n_clusters, b->n_clusters);
    assert_int_equal(a->n_listeners, b->n_listeners);
    assert_int_equal(a->n_routes, b->n_routes);
    for (size_t i = 0; i < a->n_clusters; i++) {
        const struct mp_snapshot_cluster *o = cluster_in(b, a->clusters[i].cluster->name);
        assert_non_null(o);
        assert_ptr_equal(o->cluster, a->clusters[i].cluster);
        assert_ptr_equal(o->hosts, a->clusters[i].hosts);
    }
    for (size_t i = 0; i < a->n_routes; i++)
        assert_ptr_equal(mp_snapshot_find_route_config(b, a->routes[i].name), a->routes[i].config);
    for (size_t i = 0; i < a->n_listeners; i++)
        assert_ptr_equal(mp_snapshot_find_listener(b, a->listeners[i]->name), a->listeners[i]);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names as one sorted, comma-joined string, for easy comparison. */
static void joined(char **names, size_t n, char *out, size_t outlen)
{
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        strncat(out, names[i], outlen - strlen(out) - 1);
    }
    mp_xds_names_free(names, n);
}

static void secret_names(struct mp_xds_store *st, const char *source, char *out, size_t outlen)
{
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(mp_xds_store_secret_names(st, source, &names, &n), 0);
    joined(names, n, out, outlen);
}

static void assert_err_has(const char *err, const char *part)
{
    if (!err || !strstr(err, part))
        fail_msg("error \"%s\" lacks \"%s\"", err ? err : "(null)", part);
}

/* ---- tests ------------------------------------------------------------------------ */

/* An EDS cluster is not in any build until its ClusterLoadAssignment has
 * arrived; a new version of an active cluster warms while the old one serves. */
static void test_eds_cluster_warms_until_cla(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, false);
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.clusters, 1); /* the bootstrap's xds-grpc */
    assert_int_equal(n.listeners, 1);

    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", NULL);
    add_static_cluster(&b, "db", 5432, 1);
    assert_int_equal(sotw(st, &b, "1"), 1);
    n = counts(st);
    assert_int_equal(n.clusters, 2); /* xds-grpc, db */
    assert_int_equal(n.clusters_warming, 1);
    assert_int_equal(n.endpoints, 0);
    assert_false(mp_xds_store_initialized(st));
    struct mp_snapshot *s1 = build(st);
    assert_int_equal(s1->n_clusters, 2);
    assert_null(cluster_in(s1, "web"));
    assert_non_null(cluster_in(s1, "db"));
    assert_non_null(cluster_in(s1, "xds-grpc"));
    assert_non_null(mp_snapshot_find_listener(s1, "static-in"));
    /* /config_dump lists web as warming */
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    assert_non_null(d);
    assert_int_equal(d->n, 2);
    for (size_t i = 0; i < d->n; i++) {
        assert_string_equal(d->blobs[i]->type_url, MP_XDS_TYPE_CLUSTER);
        assert_string_equal(d->blobs[i]->version, "1");
        assert_int_equal(d->warming[i], strcmp(d->blobs[i]->name, "web") == 0);
        /* the resource exactly as received */
        Envoy__Config__Cluster__V3__Cluster *pb =
            envoy__config__cluster__v3__cluster__unpack(NULL, d->blobs[i]->len, d->blobs[i]->data);
        assert_non_null(pb);
        assert_string_equal(pb->name, d->blobs[i]->name);
        envoy__config__cluster__v3__cluster__free_unpacked(pb, NULL);
    }
    assert_string_equal(d->versions[0], "1");
    assert_null(d->versions[1]);
    mp_xds_dump_unref(d);

    /* an unrelated CLA does not warm it */
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "other", "10.0.0.9", 9);
    sotw(st, &b, "e1");
    assert_int_equal(counts(st).clusters_warming, 1);

    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web", "10.0.0.1", 8080);
    assert_int_equal(sotw(st, &b, "e2"), 1);
    n = counts(st);
    assert_int_equal(n.clusters, 3);
    assert_int_equal(n.clusters_warming, 0);
    assert_int_equal(n.endpoints, 2);
    assert_true(mp_xds_store_initialized(st));
    struct mp_snapshot *s2 = build(st);
    const struct mp_snapshot_cluster *web = cluster_in(s2, "web");
    assert_non_null(web);
    assert_int_equal(web->cluster->type, MP_CLUSTER_EDS);
    assert_int_equal(first_port(web->hosts), 8080);
    struct mp_cluster *web_v1 = web->cluster;
    struct mp_host_set *web_v1_hosts = web->hosts;

    /* v2 of web reads another CLA, not here yet: v1 keeps serving */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", "web-v2");
    add_static_cluster(&b, "db", 5432, 1);
    sotw(st, &b, "2");
    n = counts(st);
    assert_int_equal(n.clusters, 3);
    assert_int_equal(n.clusters_warming, 1);
    struct mp_snapshot *s3 = build(st);
    web = cluster_in(s3, "web");
    assert_non_null(web);
    assert_ptr_equal(web->cluster, web_v1);
    assert_ptr_equal(web->hosts, web_v1_hosts);
    d = mp_xds_store_dump(st);
    size_t warming = 0;
    for (size_t i = 0; i < d->n; i++)
        warming += d->warming[i];
    assert_int_equal(warming, 1);
    mp_xds_dump_unref(d);

    /* the server goes back to v1: the warming v2 is dropped, v1 serves */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", NULL);
    add_static_cluster(&b, "db", 5432, 1);
    sotw(st, &b, "3");
    assert_int_equal(counts(st).clusters_warming, 0);
    struct mp_snapshot *s_back = build(st);
    assert_string_equal(cluster_in(s_back, "web")->cluster->eds_service_name, "web");
    assert_ptr_equal(cluster_in(s_back, "web")->hosts, web_v1_hosts);
    mp_snapshot_unref(s_back);
    /* and forth again */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", "web-v2");
    add_static_cluster(&b, "db", 5432, 1);
    sotw(st, &b, "4");
    assert_int_equal(counts(st).clusters_warming, 1);

    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web-v2", "10.0.0.2", 9090);
    sotw(st, &b, "e3");
    n = counts(st);
    assert_int_equal(n.clusters, 3);
    assert_int_equal(n.clusters_warming, 0);
    struct mp_snapshot *s4 = build(st);
    web = cluster_in(s4, "web");
    assert_non_null(web);
    assert_ptr_not_equal(web->cluster, web_v1);
    assert_string_equal(web->cluster->eds_service_name, "web-v2");
    assert_int_equal(first_port(web->hosts), 9090);

    /* endpoints of an active cluster change in place: same cluster, new hosts */
    struct mp_cluster *web_v2 = web->cluster;
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web-v2", "10.0.0.3", 9191);
    sotw(st, &b, "e4");
    struct mp_snapshot *s5 = build(st);
    assert_ptr_equal(cluster_in(s5, "web")->cluster, web_v2);
    assert_int_equal(first_port(cluster_in(s5, "web")->hosts), 9191);
    /* the snapshots already built are immutable */
    assert_int_equal(first_port(cluster_in(s4, "web")->hosts), 9090);

    mp_snapshot_unref(s1);
    mp_snapshot_unref(s2);
    mp_snapshot_unref(s3);
    mp_snapshot_unref(s4);
    mp_xds_store_free(st); /* s5 outlives the store */
    assert_int_equal(first_port(cluster_in(s5, "web")->hosts), 9191);
    mp_snapshot_unref(s5);
}

/* A listener whose HCM uses RDS is active only once its RouteConfiguration
 * is in; a new version naming another route warms while the old serves. */
static void test_listener_waits_for_routes(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, false, true);
    struct batch b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r1", NULL);
    add_listener(&b, "plain", 8081, NULL, NULL); /* inline routes: nothing to wait for */
    assert_int_equal(sotw(st, &b, "1"), 1);
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.listeners, 2); /* static-in, plain */
    assert_int_equal(n.listeners_warming, 1);
    assert_false(mp_xds_store_initialized(st));
    struct mp_snapshot *s1 = build(st);
    assert_null(mp_snapshot_find_listener(s1, "in"));
    assert_non_null(mp_snapshot_find_listener(s1, "plain"));
    assert_non_null(mp_snapshot_find_listener(s1, "static-in"));
    assert_int_equal(s1->n_routes, 0);

    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r1", "web", NULL);
    assert_int_equal(sotw(st, &b, "r1"), 1);
    n = counts(st);
    assert_int_equal(n.listeners, 3);
    assert_int_equal(n.listeners_warming, 0);
    assert_int_equal(n.routes, 1);
    assert_true(mp_xds_store_initialized(st));
    struct mp_snapshot *s2 = build(st);
    struct mp_listener_config *in_v1 = mp_snapshot_find_listener(s2, "in");
    assert_non_null(in_v1);
    assert_string_equal(in_v1->chains[0].hcm->rds_name, "r1");
    assert_non_null(mp_snapshot_find_route_config(s2, "r1"));

    /* v2 of "in" needs r2: v1 stays in force meanwhile */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r2", NULL);
    add_listener(&b, "plain", 8081, NULL, NULL);
    sotw(st, &b, "2");
    n = counts(st);
    assert_int_equal(n.listeners, 3);
    assert_int_equal(n.listeners_warming, 1);
    struct mp_snapshot *s3 = build(st);
    assert_ptr_equal(mp_snapshot_find_listener(s3, "in"), in_v1);

    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r2", "web", NULL);
    sotw(st, &b, "r2");
    assert_int_equal(counts(st).listeners_warming, 0);
    struct mp_snapshot *s4 = build(st);
    struct mp_listener_config *in_v2 = mp_snapshot_find_listener(s4, "in");
    assert_non_null(in_v2);
    assert_ptr_not_equal(in_v2, in_v1);
    assert_string_equal(in_v2->chains[0].hcm->rds_name, "r2");
    assert_non_null(mp_snapshot_find_route_config(s4, "r1"));
    assert_non_null(mp_snapshot_find_route_config(s4, "r2"));

    mp_snapshot_unref(s1);
    mp_snapshot_unref(s2);
    mp_snapshot_unref(s3);
    mp_snapshot_unref(s4);
    mp_xds_store_free(st);
}

/* One bad RouteConfiguration NACKs the whole update: the error names the
 * resource and the field, and nothing of the update is kept. */
static void test_bad_route_rejected(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    struct batch b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r1", NULL);
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r1", "web", NULL);
    sotw(st, &b, "1");
    struct mp_snapshot *before = build(st);
    struct mp_xds_store_counts n0 = counts(st);

    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r1", "api", "^/v[0-9]+/.*"); /* a valid change to r1 ... */
    add_route(&b, "bad", "web", "(");           /* ... and an invalid regex */
    char *err = sotw_nack(st, &b, "2");
    assert_err_has(err, "RouteConfiguration \"bad\"");
    assert_err_has(err, "virtual_hosts[0].routes[0].match.safe_regex");
    assert_err_has(err, "invalid regex \"(\"");
    free(err);

    struct mp_xds_store_counts n1 = counts(st);
    assert_memory_equal(&n0, &n1, sizeof(n0));
    struct mp_snapshot *after = build(st);
    assert_same_build(before, after);
    assert_same_build(after, before);
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    assert_string_equal(d->versions[3], "1"); /* RDS version unchanged */
    mp_xds_dump_unref(d);

    /* the same with a bad listener among good ones */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r1", NULL);
    add_listener(&b, "new", 8082, NULL, NULL);
    Envoy__Config__Listener__V3__Listener *l = listener_msg("broken", 8083, "r1", NULL);
    l->filter_chains[0]->filters[0]->typed_config->type_url = S("type.googleapis.com/nope.Nope");
    batch_add(&b, "broken", &l->base);
    err = sotw_nack(st, &b, "2");
    assert_err_has(err, "Listener \"broken\"");
    assert_err_has(err, "filter_chains[0].filters[0]");
    free(err);
    mp_snapshot_unref(after);
    after = build(st);
    assert_same_build(before, after);

    /* a resource listed twice, or one that did not decode, is refused too */
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r1", "web", NULL);
    add_route(&b, "r1", "api", NULL);
    err = sotw_nack(st, &b, "3");
    assert_err_has(err, "RouteConfiguration \"r1\": listed twice");
    free(err);
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r9", "web", NULL);
    protobuf_c_message_free_unpacked((ProtobufCMessage *)b.r[0].msg, NULL);
    b.r[0].msg = NULL;
    err = sotw_nack(st, &b, "3");
    assert_err_has(err, "RouteConfiguration \"r9\": does not decode");
    free(err);
    /* a resource whose own name differs from the name it was sent under */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    batch_add(&b, "alias", &static_cluster_msg("real", 1, 1)->base);
    err = sotw_nack(st, &b, "3");
    assert_err_has(err, "Cluster \"alias\": name: \"real\" differs");
    free(err);
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    batch_add(&b, "svc-a", &cla_msg("svc-b", "10.0.0.1", 80)->base);
    err = sotw_nack(st, &b, "3");
    assert_err_has(err, "ClusterLoadAssignment \"svc-a\": cluster_name: \"svc-b\" differs");
    free(err);

    mp_snapshot_unref(after);
    after = build(st);
    assert_same_build(before, after);
    mp_snapshot_unref(before);
    mp_snapshot_unref(after);
    mp_xds_store_free(st);
}

/* A dynamic cluster may not take the name of a bootstrap static cluster. */
static void test_static_cluster_name_rejected(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    struct mp_snapshot *before = build(st);
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "ok", 80, 1);
    add_static_cluster(&b, "xds-grpc", 9999, 1);
    char *err = sotw_nack(st, &b, "1");
    assert_err_has(err, "Cluster \"xds-grpc\"");
    assert_err_has(err, "static cluster");
    free(err);
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.clusters, 1);
    assert_int_equal(n.clusters_warming, 0);
    assert_false(mp_xds_store_initialized(st)); /* a NACK is not a response received */
    struct mp_snapshot *after = build(st);
    assert_same_build(before, after);
    assert_null(cluster_in(after, "ok"));
    mp_snapshot_unref(after);

    /* likewise a dynamic listener named like a static listener: it could
     * never be built into a snapshot beside it */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "static-in", 9000, NULL, NULL);
    err = sotw_nack(st, &b, "1");
    assert_err_has(err, "Listener \"static-in\"");
    assert_err_has(err, "static listener");
    free(err);
    assert_int_equal(counts(st).listeners, 1);
    after = build(st);
    assert_same_build(before, after);
    mp_snapshot_unref(after);
    mp_snapshot_unref(before);
    mp_xds_store_free(st);
}

/* SotW: a complete response drops what it no longer lists (active and
 * warming); delta: only the removed names go; UNSUBSCRIBED: the client's own
 * removals of named types. */
static void test_removal_sotw_delta_unsubscribed(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    add_static_cluster(&b, "b", 1002, 1);
    add_static_cluster(&b, "c", 1003, 1);
    add_eds_cluster(&b, "w", NULL); /* warming */
    sotw(st, &b, "1");
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.clusters, 4);
    assert_int_equal(n.clusters_warming, 1);

    /* SotW complete: b and the warming w are gone */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    add_static_cluster(&b, "c", 1003, 1);
    assert_int_equal(sotw(st, &b, "2"), 1);
    n = counts(st);
    assert_int_equal(n.clusters, 3);
    assert_int_equal(n.clusters_warming, 0);
    struct mp_snapshot *s = build(st);
    assert_null(cluster_in(s, "b"));
    assert_non_null(cluster_in(s, "a"));
    assert_non_null(cluster_in(s, "c"));
    assert_non_null(cluster_in(s, "xds-grpc")); /* static: never removed */
    mp_snapshot_unref(s);

    /* SotW as the client also reports it: absent names in removed */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    static const char *const gone_c[] = {"c"};
    char *err = NULL;
    assert_int_equal(apply_ex(st, &b, MP_XDS_SOTW, "3", true, gone_c, 1, &err), 1);
    batch_free(&b);
    assert_int_equal(counts(st).clusters, 2);

    /* delta: new d, removed a; nothing else touched */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "d", 1004, 1);
    add_static_cluster(&b, "e", 1005, 1);
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, NULL, 0, &err), 1);
    batch_free(&b);
    assert_int_equal(counts(st).clusters, 4); /* xds-grpc, a, d, e */
    static const char *const gone_a[] = {"a"};
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, gone_a, 1, &err), 1);
    s = build(st);
    assert_null(cluster_in(s, "a"));
    assert_non_null(cluster_in(s, "d"));
    assert_non_null(cluster_in(s, "e"));
    assert_int_equal(s->n_clusters, 3);
    mp_snapshot_unref(s);
    /* removing a name not held changes nothing */
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, gone_a, 1, &err), 0);
    static const char *const gone_static[] = {"xds-grpc"};
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, gone_static, 1, &err), 0);
    assert_int_equal(counts(st).clusters, 3);

    /* delta removal of a listener, in the same update as an addition */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "l1", 9001, NULL, NULL);
    add_listener(&b, "l2", 9002, "rr", NULL); /* warming */
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, NULL, 0, &err), 1);
    batch_free(&b);
    n = counts(st);
    assert_int_equal(n.listeners, 2);
    assert_int_equal(n.listeners_warming, 1);
    static const char *const gone_l2[] = {"l2"};
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "l3", 9003, NULL, NULL);
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, gone_l2, 1, &err), 1);
    batch_free(&b);
    n = counts(st);
    assert_int_equal(n.listeners, 3); /* static-in, l1, l3 */
    assert_int_equal(n.listeners_warming, 0);

    /* SotW LDS with nothing: every dynamic listener goes, the static stays */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    assert_int_equal(sotw(st, &b, "9"), 1);
    s = build(st);
    assert_int_equal(s->n_listeners, 1);
    assert_non_null(mp_snapshot_find_listener(s, "static-in"));
    mp_snapshot_unref(s);

    /* UNSUBSCRIBED: EDS and RDS names the client no longer wants */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "e1", NULL);
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, NULL, 0, &err), 1);
    batch_free(&b);
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "e1", "10.1.0.1", 80);
    add_cla(&b, "e2", "10.1.0.2", 80);
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "rr", "e1", NULL);
    sotw(st, &b, "1");
    n = counts(st);
    assert_int_equal(n.endpoints, 2);
    assert_int_equal(n.routes, 1);
    static const char *const eds_gone[] = {"e1", "e2"};
    assert_int_equal(unsubscribed(st, MP_XDS_TYPE_ENDPOINT, eds_gone, 2), 1);
    assert_int_equal(unsubscribed(st, MP_XDS_TYPE_ENDPOINT, eds_gone, 2), 0);
    static const char *const rds_gone[] = {"rr"};
    assert_int_equal(unsubscribed(st, MP_XDS_TYPE_ROUTE, rds_gone, 1), 1);
    n = counts(st);
    assert_int_equal(n.endpoints, 0);
    assert_int_equal(n.routes, 0);
    s = build(st);
    /* the cluster stays, now without endpoints */
    assert_non_null(cluster_in(s, "e1"));
    assert_null(cluster_in(s, "e1")->hosts);
    assert_int_equal(s->n_routes, 0);
    mp_snapshot_unref(s);
    /* an unknown type is refused */
    struct mp_xds_update up = {.type_url = "type.googleapis.com/nope.Nope"};
    assert_true(mp_xds_store_apply(st, &up, &err) < 0);
    assert_err_has(err, "not supported");
    free(err);
    mp_xds_store_free(st);
}

/* SotW resends everything: what did not change keeps its translation (the
 * same objects in consecutive builds), what changed gets a new one. */
static void test_unchanged_keep_translation(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(false, true, true);
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    add_static_cluster(&b, "b", 1002, 1);
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "l", 9000, NULL, NULL);
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r", "a", NULL);
    sotw(st, &b, "1");
    struct mp_snapshot *s1 = build(st);

    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    add_static_cluster(&b, "b", 1002, 1);
    assert_int_equal(sotw(st, &b, "2"), 0); /* nothing a build holds changed */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "l", 9000, NULL, NULL);
    assert_int_equal(sotw(st, &b, "2"), 0);
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r", "a", NULL);
    assert_int_equal(sotw(st, &b, "2"), 0);
    struct mp_snapshot *s2 = build(st);
    assert_same_build(s1, s2);
    assert_ptr_equal(cluster_in(s2, "a")->cluster, cluster_in(s1, "a")->cluster);
    /* the version accepted is the new one, though */
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    assert_string_equal(d->versions[0], "2");
    assert_string_equal(d->versions[2], "2");
    mp_xds_dump_unref(d);

    /* only b changes */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    add_static_cluster(&b, "b", 1002, 2);
    assert_int_equal(sotw(st, &b, "3"), 1);
    struct mp_snapshot *s3 = build(st);
    assert_ptr_equal(cluster_in(s3, "a")->cluster, cluster_in(s1, "a")->cluster);
    assert_ptr_not_equal(cluster_in(s3, "b")->cluster, cluster_in(s1, "b")->cluster);
    assert_int_equal(cluster_in(s3, "b")->cluster->connect_timeout_ms, 2000);
    assert_ptr_equal(mp_snapshot_find_listener(s3, "l"), mp_snapshot_find_listener(s1, "l"));
    assert_ptr_equal(mp_snapshot_find_route_config(s3, "r"),
                     mp_snapshot_find_route_config(s1, "r"));

    /* delta: a resent unchanged resource is a no-op as well */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1001, 1);
    char *err = NULL;
    assert_int_equal(apply_ex(st, &b, MP_XDS_DELTA, "", false, NULL, 0, &err), 0);
    batch_free(&b);
    struct mp_snapshot *s4 = build(st);
    assert_same_build(s3, s4);

    mp_snapshot_unref(s1);
    mp_snapshot_unref(s2);
    mp_snapshot_unref(s3);
    mp_snapshot_unref(s4);
    mp_xds_store_free(st);
}

/* Initialised once CDS and its EDS, then LDS and its RDS, are in. */
static void test_initialization_order(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    assert_false(mp_xds_store_initialized(st));
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", NULL);
    sotw(st, &b, "1");
    assert_false(mp_xds_store_initialized(st));
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web", "10.0.0.1", 80);
    sotw(st, &b, "1");
    assert_false(mp_xds_store_initialized(st)); /* LDS still to come */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r", NULL);
    sotw(st, &b, "1");
    assert_false(mp_xds_store_initialized(st)); /* its routes too */
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r", "web", NULL);
    sotw(st, &b, "1");
    assert_true(mp_xds_store_initialized(st));
    /* it stays: later warming or a NACK do not undo it */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", NULL);
    add_eds_cluster(&b, "late", NULL);
    sotw(st, &b, "2");
    assert_int_equal(counts(st).clusters_warming, 1);
    assert_true(mp_xds_store_initialized(st));
    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r", "web", "[");
    free(sotw_nack(st, &b, "2"));
    assert_true(mp_xds_store_initialized(st));
    mp_xds_store_free(st);

    /* types not subscribed count as done: CDS only */
    st = store_new(false, true, false);
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_static_cluster(&b, "a", 1, 1);
    sotw(st, &b, "1");
    assert_true(mp_xds_store_initialized(st));
    mp_xds_store_free(st);
    /* an empty first response counts */
    st = store_new(false, true, true);
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    sotw(st, &b, "1");
    assert_false(mp_xds_store_initialized(st));
    b = BATCH(MP_XDS_TYPE_LISTENER);
    sotw(st, &b, "1");
    assert_true(mp_xds_store_initialized(st));
    mp_xds_store_free(st);
}

/* The initial fetch timeout stops initialisation (and warming) waiting. */
static void test_fetch_timeout_unblocks(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", NULL);
    sotw(st, &b, "1");
    assert_int_equal(counts(st).clusters_warming, 1);
    /* EDS times out: web goes active without endpoints (1: build and
     * publish it), though LDS is still missing */
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_ENDPOINT), 1);
    assert_int_equal(counts(st).clusters_warming, 0);
    struct mp_snapshot *s = build(st);
    assert_non_null(cluster_in(s, "web"));
    assert_null(cluster_in(s, "web")->hosts);
    mp_snapshot_unref(s);
    assert_false(mp_xds_store_initialized(st));
    /* LDS times out: that completes initialisation (reported once) */
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_LISTENER), 1);
    assert_true(mp_xds_store_initialized(st));
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_ROUTE), 0);   /* nothing waits */
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_CLUSTER), 0); /* received */
    assert_int_equal(mp_xds_store_fetch_timeout(st, "type.googleapis.com/nope.Nope"), 0);
    /* the CLA arriving later fills the active cluster */
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web", "10.0.0.1", 8080);
    sotw(st, &b, "1");
    s = build(st);
    assert_int_equal(first_port(cluster_in(s, "web")->hosts), 8080);
    struct mp_cluster *web_v1 = cluster_in(s, "web")->cluster;
    mp_snapshot_unref(s);
    /* the timeout let through what waited then, not what comes later: a new
     * version of web reading another CLA warms while v1 serves, and so does
     * a new EDS cluster */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_eds_cluster(&b, "web", "web-v2");
    add_eds_cluster(&b, "late", NULL);
    sotw(st, &b, "2");
    assert_int_equal(counts(st).clusters_warming, 2);
    s = build(st);
    assert_ptr_equal(cluster_in(s, "web")->cluster, web_v1);
    assert_int_equal(first_port(cluster_in(s, "web")->hosts), 8080);
    assert_null(cluster_in(s, "late"));
    mp_snapshot_unref(s);
    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    add_cla(&b, "web-v2", "10.0.0.2", 9090);
    add_cla(&b, "late", "10.0.0.3", 7070);
    sotw(st, &b, "2");
    assert_int_equal(counts(st).clusters_warming, 0);
    s = build(st);
    assert_int_equal(first_port(cluster_in(s, "web")->hosts), 9090);
    assert_int_equal(first_port(cluster_in(s, "late")->hosts), 7070);
    mp_snapshot_unref(s);
    mp_xds_store_free(st);

    /* RDS times out while a listener waits for it */
    st = store_new(false, true, true);
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "in", 8080, "r", NULL);
    sotw(st, &b, "1");
    assert_false(mp_xds_store_initialized(st));
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_ROUTE), 1);
    assert_true(mp_xds_store_initialized(st));
    assert_int_equal(counts(st).listeners, 1);
    s = build(st);
    assert_non_null(mp_snapshot_find_listener(s, "in"));
    assert_null(mp_snapshot_find_route_config(s, "r"));
    mp_snapshot_unref(s);
    mp_xds_store_free(st);

    /* CDS never answers */
    st = store_new(false, true, false);
    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_CLUSTER), 1);
    assert_true(mp_xds_store_initialized(st));
    mp_xds_store_free(st);
}

/* SDS: secret names per source (ADS or an api_config_source cluster); a
 * listener or cluster warms until the secrets it names are in; a listener is
 * translated again when a secret it uses changes (its TLS context is built
 * anew; the resource keeps its config_id, so its connections are not
 * drained). */
static void test_sds_names_and_retranslation(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(true, true, true);
    struct tls_refs istio = {
        .cert = "default", .cert_source = "sds-grpc", .ca = "ROOTCA", .ca_source = "sds-grpc"};
    struct tls_refs over_ads = {.cert = "in-cert", .ca = "in-ca"};
    struct batch b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "mtls", 15006, NULL, &istio);
    add_listener(&b, "edge", 8443, NULL, &over_ads);
    add_listener(&b, "plain", 8080, NULL, NULL);
    add_listener(&b, "waiting", 8081, "r", &(struct tls_refs){.cert = "w-cert"});
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_tls_cluster(&b, "up", "client-cert", NULL);
    add_tls_cluster(&b, "up2", "default", "sds-grpc");
    sotw(st, &b, "1");

    char names[256];
    secret_names(st, NULL, names, sizeof(names));
    assert_string_equal(names, "client-cert,in-ca,in-cert,w-cert"); /* warming ones too */
    secret_names(st, "sds-grpc", names, sizeof(names));
    assert_string_equal(names, "ROOTCA,default");
    secret_names(st, "other", names, sizeof(names));
    assert_string_equal(names, "");
    char **src = NULL;
    size_t n_src = 0;
    assert_int_equal(mp_xds_store_secret_sources(st, &src, &n_src), 0);
    joined(src, n_src, names, sizeof(names));
    assert_string_equal(names, "sds-grpc");

    /* everything with TLS waits for its secrets */
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.listeners, 2); /* static-in, plain */
    assert_int_equal(n.listeners_warming, 3);
    assert_int_equal(n.clusters, 1); /* xds-grpc */
    assert_int_equal(n.clusters_warming, 2);
    assert_false(mp_xds_store_initialized(st));
    struct mp_snapshot *s0 = build(st);
    assert_null(mp_snapshot_find_listener(s0, "mtls"));
    assert_null(cluster_in(s0, "up2"));
    struct mp_listener_config *plain = mp_snapshot_find_listener(s0, "plain");
    assert_non_null(plain);

    /* "default" arrives on the sds-grpc stream: up2 has all it needs, mtls
     * still waits for ROOTCA */
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "default", pem[A_CRT], pem[A_KEY]);
    assert_int_equal(sotw(st, &b, "s1"), 1);
    n = counts(st);
    assert_int_equal(n.secrets, 1);
    assert_int_equal(n.clusters_warming, 1);
    assert_int_equal(n.listeners_warming, 3);
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "default", pem[A_CRT], pem[A_KEY]); /* SotW: resent as it was */
    add_ca_secret(&b, "ROOTCA", pem[A_CRT]);
    assert_int_equal(sotw(st, &b, "s2"), 1);
    n = counts(st);
    assert_int_equal(n.listeners, 3);
    assert_int_equal(n.listeners_warming, 2);
    struct mp_snapshot *s1 = build(st);
    struct mp_listener_config *mtls1 = mp_snapshot_find_listener(s1, "mtls");
    assert_non_null(mtls1);
    assert_non_null(mtls1->chains[0].tls_config);
    assert_non_null(cluster_in(s1, "up2"));
    assert_ptr_equal(mp_snapshot_find_listener(s1, "plain"), plain);
    uint64_t mtls_id = mtls1->config_id;
    assert_true(mtls_id > 0);

    /* the secret set for the TLS context builds */
    struct mp_xds_secret_set *set = mp_xds_store_secrets(st);
    assert_non_null(set);
    assert_int_equal(set->n, 2);
    assert_string_equal(set->names[0], "ROOTCA"); /* sorted */
    assert_string_equal(set->names[1], "default");
    assert_int_equal(mp_xds_secret_set_find(set, "default")->kind, MP_TLS_SECRET_CERT);
    assert_int_equal(mp_xds_secret_set_find(set, "ROOTCA")->kind, MP_TLS_SECRET_VALIDATION);
    assert_null(mp_xds_secret_set_find(set, "in-cert"));
    const struct mp_tls_secret *default_a = mp_xds_secret_set_find(set, "default");

    /* the same secrets again: nothing changes */
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "default", pem[A_CRT], pem[A_KEY]);
    add_ca_secret(&b, "ROOTCA", pem[A_CRT]);
    assert_int_equal(sotw(st, &b, "s3"), 0);
    struct mp_snapshot *s2 = build(st);
    assert_same_build(s1, s2);

    /* "default" rotated: mtls is translated again, same resource id; the
     * listeners and clusters that do not use it keep their objects */
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "default", pem[B_CRT], pem[B_KEY]);
    add_ca_secret(&b, "ROOTCA", pem[A_CRT]);
    assert_int_equal(sotw(st, &b, "s4"), 1);
    struct mp_snapshot *s3 = build(st);
    struct mp_listener_config *mtls3 = mp_snapshot_find_listener(s3, "mtls");
    assert_non_null(mtls3);
    assert_ptr_not_equal(mtls3, mtls1);
    assert_int_equal(mtls3->config_id, mtls_id);
    assert_ptr_equal(mp_snapshot_find_listener(s3, "plain"), plain);
    assert_ptr_equal(cluster_in(s3, "up2")->cluster, cluster_in(s1, "up2")->cluster);
    /* the set taken before is a snapshot: it still has the old secret */
    assert_ptr_equal(mp_xds_secret_set_find(set, "default"), default_a);
    mp_xds_secret_set_unref(set);
    set = mp_xds_store_secrets(st);
    const struct mp_tls_secret *default_b = mp_xds_secret_set_find(set, "default");
    assert_ptr_not_equal(default_b, default_a);

    /* a bad secret is NACKed with its name and field; nothing changes */
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "default", pem[A_CRT], pem[B_KEY]); /* key of another cert */
    char *err = sotw_nack(st, &b, "s5");
    assert_err_has(err, "Secret \"default\": tls_certificate.private_key");
    free(err);
    struct mp_snapshot *s4 = build(st);
    assert_same_build(s3, s4);
    struct mp_xds_secret_set *set2 = mp_xds_store_secrets(st);
    assert_ptr_equal(mp_xds_secret_set_find(set2, "default"), default_b);
    mp_xds_secret_set_unref(set2);
    mp_xds_secret_set_unref(set);

    /* secrets never appear in /config_dump */
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    for (size_t i = 0; i < d->n; i++)
        assert_string_not_equal(d->blobs[i]->type_url, MP_XDS_TYPE_SECRET);
    assert_string_equal(d->versions[4], "s4");
    mp_xds_dump_unref(d);

    /* in-cert and in-ca over ADS: edge goes active */
    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "in-cert", pem[A_CRT], pem[A_KEY]);
    add_ca_secret(&b, "in-ca", pem[B_CRT]);
    assert_int_equal(sotw(st, &b, "a1"), 1);
    struct mp_snapshot *s5 = build(st);
    assert_non_null(mp_snapshot_find_listener(s5, "edge"));
    assert_ptr_equal(mp_snapshot_find_listener(s5, "mtls"), mtls3);
    assert_null(mp_snapshot_find_listener(s5, "waiting")); /* routes and w-cert missing */
    assert_false(mp_xds_store_initialized(st));

    /* once no listener or cluster names a source, it has no names */
    b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "plain", 8080, NULL, NULL);
    sotw(st, &b, "2");
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    sotw(st, &b, "2");
    secret_names(st, "sds-grpc", names, sizeof(names));
    assert_string_equal(names, "");
    secret_names(st, NULL, names, sizeof(names));
    assert_string_equal(names, "");
    assert_int_equal(mp_xds_store_secret_sources(st, &src, &n_src), 0);
    assert_int_equal(n_src, 0);
    mp_xds_names_free(src, n_src);

    mp_snapshot_unref(s0);
    mp_snapshot_unref(s1);
    mp_snapshot_unref(s2);
    mp_snapshot_unref(s3);
    mp_snapshot_unref(s4);
    mp_snapshot_unref(s5);
    mp_xds_store_free(st);
}

/* The SDS initial fetch times out: what waited only for secrets goes ahead
 * without them, and a secret arriving later re-translates the active
 * listener that uses it (its TLS context was built without it). */
static void test_sds_fetch_timeout(void **state)
{
    (void)state;
    struct mp_xds_store *st = store_new(false, true, true);
    struct batch b = BATCH(MP_XDS_TYPE_LISTENER);
    add_listener(&b, "edge", 8443, NULL, &(struct tls_refs){.cert = "in-cert"});
    add_listener(&b, "waiting", 8081, "r", &(struct tls_refs){.cert = "w-cert"});
    sotw(st, &b, "1");
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    add_tls_cluster(&b, "up", "client-cert", NULL);
    sotw(st, &b, "1");
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.listeners_warming, 2);
    assert_int_equal(n.clusters_warming, 1);
    assert_false(mp_xds_store_initialized(st));

    assert_int_equal(mp_xds_store_fetch_timeout(st, MP_XDS_TYPE_SECRET), 1); /* edge and up */
    n = counts(st);
    assert_int_equal(n.listeners, 1); /* edge; "waiting" still needs its routes */
    assert_int_equal(n.listeners_warming, 1);
    assert_int_equal(n.clusters, 1);
    assert_int_equal(n.clusters_warming, 0);
    assert_false(mp_xds_store_initialized(st));
    struct mp_snapshot *s1 = build(st);
    struct mp_listener_config *edge1 = mp_snapshot_find_listener(s1, "edge");
    assert_non_null(edge1);
    assert_null(edge1->chains[0].tls); /* no certificate: the chain refuses connections */
    assert_non_null(cluster_in(s1, "up"));

    b = BATCH(MP_XDS_TYPE_ROUTE);
    add_route(&b, "r", "up", NULL);
    sotw(st, &b, "1");
    assert_true(mp_xds_store_initialized(st));
    assert_int_equal(counts(st).listeners_warming, 0);
    struct mp_snapshot *s_routes = build(st);

    b = BATCH(MP_XDS_TYPE_SECRET);
    add_cert_secret(&b, "in-cert", pem[A_CRT], pem[A_KEY]);
    assert_int_equal(sotw(st, &b, "1"), 1);
    struct mp_snapshot *s2 = build(st);
    struct mp_listener_config *edge2 = mp_snapshot_find_listener(s2, "edge");
    assert_non_null(edge2);
    assert_ptr_not_equal(edge2, edge1);
    assert_int_equal(edge2->config_id, edge1->config_id);
    /* "waiting" does not use in-cert: untouched */
    struct mp_listener_config *waiting = mp_snapshot_find_listener(s2, "waiting");
    assert_non_null(waiting);
    assert_ptr_equal(waiting, mp_snapshot_find_listener(s_routes, "waiting"));
    mp_snapshot_unref(s1);
    mp_snapshot_unref(s_routes);
    mp_snapshot_unref(s2);
    mp_xds_store_free(st);
}

/* 10,000 EDS clusters and their CLAs: applied, warmed, built, resent
 * unchanged, then halved by a complete response. */
static void test_ten_thousand_clusters(void **state)
{
    (void)state;
    enum { N = 10000 };
    struct mp_xds_store *st = store_new(true, true, false);
    char name[64];
    struct batch b = BATCH(MP_XDS_TYPE_CLUSTER);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "outbound|8080||svc-%d.ns.svc.cluster.local", i);
        add_eds_cluster(&b, name, NULL);
    }
    assert_int_equal(sotw(st, &b, "1"), 1);
    struct mp_xds_store_counts n = counts(st);
    assert_int_equal(n.clusters, 1);
    assert_int_equal(n.clusters_warming, N);

    b = BATCH(MP_XDS_TYPE_ENDPOINT);
    for (int i = 0; i < N; i++) {
        char ip[32];
        snprintf(name, sizeof(name), "outbound|8080||svc-%d.ns.svc.cluster.local", i);
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        add_cla(&b, name, ip, 8080);
    }
    assert_int_equal(sotw(st, &b, "1"), 1);
    n = counts(st);
    assert_int_equal(n.clusters, N + 1);
    assert_int_equal(n.clusters_warming, 0);
    assert_int_equal(n.endpoints, N);
    assert_true(mp_xds_store_initialized(st));
    struct mp_snapshot *s1 = build(st);
    assert_int_equal(s1->n_clusters, N + 1);
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof(name), "outbound|8080||svc-%d.ns.svc.cluster.local", i);
        const struct mp_snapshot_cluster *c = cluster_in(s1, name);
        assert_non_null(c);
        assert_string_equal(c->cluster->name, name);
        assert_int_equal(c->hosts->n_hosts, 1);
    }

    /* resent unchanged: nothing to do, same translations */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "outbound|8080||svc-%d.ns.svc.cluster.local", i);
        add_eds_cluster(&b, name, NULL);
    }
    assert_int_equal(sotw(st, &b, "2"), 0);
    struct mp_snapshot *s2 = build(st);
    assert_same_build(s1, s2);

    /* the even half only */
    b = BATCH(MP_XDS_TYPE_CLUSTER);
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "outbound|8080||svc-%d.ns.svc.cluster.local", i);
        add_eds_cluster(&b, name, NULL);
    }
    assert_int_equal(sotw(st, &b, "3"), 1);
    assert_int_equal(counts(st).clusters, N / 2 + 1);
    struct mp_snapshot *s3 = build(st);
    assert_int_equal(s3->n_clusters, N / 2 + 1);
    assert_null(cluster_in(s3, "outbound|8080||svc-1.ns.svc.cluster.local"));
    assert_ptr_equal(cluster_in(s3, "outbound|8080||svc-2.ns.svc.cluster.local")->cluster,
                     cluster_in(s1, "outbound|8080||svc-2.ns.svc.cluster.local")->cluster);
    struct mp_xds_dump *d = mp_xds_store_dump(st);
    assert_int_equal(d->n, N / 2 + N); /* clusters + CLAs */
    mp_xds_dump_unref(d);

    mp_snapshot_unref(s1);
    mp_snapshot_unref(s2);
    mp_snapshot_unref(s3);
    mp_xds_store_free(st);
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
        cmocka_unit_test(test_eds_cluster_warms_until_cla),
        cmocka_unit_test(test_listener_waits_for_routes),
        cmocka_unit_test(test_bad_route_rejected),
        cmocka_unit_test(test_static_cluster_name_rejected),
        cmocka_unit_test(test_removal_sotw_delta_unsubscribed),
        cmocka_unit_test(test_unchanged_keep_translation),
        cmocka_unit_test(test_initialization_order),
        cmocka_unit_test(test_fetch_timeout_unblocks),
        cmocka_unit_test(test_sds_names_and_retranslation),
        cmocka_unit_test(test_sds_fetch_timeout),
        cmocka_unit_test(test_ten_thousand_clusters),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
