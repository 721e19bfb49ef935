/* Unit tests for xds/server/xds_store.c: folders of resource files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "proxy/mp_common.h"
#include "xds/server/xds_store.h"
#include "xds/xds_client.h"

static char root[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    /* make parent folders */
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/mp-xds-store-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const struct mp_xds_store_type *type_of(const struct mp_xds_store *s, const char *url)
{
    const struct mp_xds_store_type *t = mp_xds_store_type(s, url);
    assert_non_null(t);
    return t;
}

static void types_from_at_type_file_and_folder_names(void **state)
{
    (void)state;
    put("cds/a/b.json", "[{\"name\": \"c1\", \"connect_timeout\": \"2s\"}]");
    put("clusters.yaml", "name: c0\n");
    put("misc/everything.yaml",
        "resources:\n"
        "- '@type': type.googleapis.com/envoy.config.route.v3.RouteConfiguration\n"
        "  name: r1\n"
        "- '@type': type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n"
        "  cluster_name: c1\n");
    put("listeners/l.yml", "- {name: l1, address: {socket_address: {address: 0.0.0.0, "
                           "port_value: 80}}}\n");
    put("listeners/.editor-swap.yaml", "not: [valid\n");
    put("listeners/notes.txt", "ignored");
    put("empty.yaml", "");
    struct mp_xds_store *s = NULL;
    char *err = NULL;
    int rc = mp_xds_store_load(root, NULL, &s, &err);
    if (rc)
        fail_msg("%s", err);
    const struct mp_xds_store_type *c = type_of(s, MP_XDS_TYPE_CLUSTER);
    assert_int_equal(c->n, 2);
    assert_string_equal(c->res[0].name, "c0");
    assert_string_equal(c->res[1].name, "c1");
    assert_string_equal(c->version, "1");
    Envoy__Config__Cluster__V3__Cluster *c1 =
        envoy__config__cluster__v3__cluster__unpack(NULL, c->res[1].len, c->res[1].data);
    assert_non_null(c1);
    assert_int_equal(c1->connect_timeout->seconds, 2);
    protobuf_c_message_free_unpacked(&c1->base, NULL);
    assert_non_null(mp_xds_store_find(type_of(s, MP_XDS_TYPE_ROUTE), "r1"));
    assert_non_null(mp_xds_store_find(type_of(s, MP_XDS_TYPE_ENDPOINT), "c1"));
    assert_non_null(mp_xds_store_find(type_of(s, MP_XDS_TYPE_LISTENER), "l1"));
    assert_null(mp_xds_store_find(type_of(s, MP_XDS_TYPE_LISTENER), "l2"));
    assert_int_equal(type_of(s, MP_XDS_TYPE_SECRET)->n, 0);
    assert_null(mp_xds_store_type(s, "type.googleapis.com/foo.Bar"));

    /* reload: unchanged types keep their version, changed ones take the
     * new generation; per-resource versions follow the bytes */
    char *c0_version = strdup(c->res[0].version);
    put("clusters.yaml", "name: c0\nconnect_timeout: 5s\n");
    struct mp_xds_store *s2 = NULL;
    assert_int_equal(mp_xds_store_load(root, s, &s2, &err), 0);
    assert_int_equal(s2->generation, 2);
    assert_string_equal(type_of(s2, MP_XDS_TYPE_CLUSTER)->version, "2");
    assert_string_equal(type_of(s2, MP_XDS_TYPE_ROUTE)->version, "1");
    assert_string_not_equal(type_of(s2, MP_XDS_TYPE_CLUSTER)->res[0].version, c0_version);
    assert_string_equal(type_of(s2, MP_XDS_TYPE_CLUSTER)->res[1].version,
                        type_of(s, MP_XDS_TYPE_CLUSTER)->res[1].version);
    assert_false(mp_xds_store_equal(s, s2));
    free(c0_version);
    mp_xds_store_unref(s);
    mp_xds_store_unref(s2);
}

static void errors_name_file_and_field(void **state)
{
    (void)state;
    struct mp_xds_store *s = NULL;
    char *err = NULL;
    put("x.yaml", "name: no-type\n");
    assert_int_equal(mp_xds_store_load(root, NULL, &s, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "x.yaml"));
    assert_non_null(strstr(err, "@type"));
    free(err);
    err = NULL;
    unlink(strcat(strcpy((char[128]){0}, root), "/x.yaml"));

    put("clusters/a.yaml", "- {name: dup}\n- {name: dup}\n");
    assert_int_equal(mp_xds_store_load(root, NULL, &s, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "clusters/a.yaml: [1]: Cluster \"dup\" is defined twice"));
    free(err);
    err = NULL;

    put("clusters/a.yaml", "- {name: c, connect_timeout: abc}\n");
    assert_int_equal(mp_xds_store_load(root, NULL, &s, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "clusters/a.yaml: [0]: "));
    assert_non_null(strstr(err, "connect_timeout"));
    free(err);
    err = NULL;

    put("clusters/a.yaml", "- '@type': type.googleapis.com/google.protobuf.Duration\n"
                           "  value: 1s\n");
    assert_int_equal(mp_xds_store_load(root, NULL, &s, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "not an xDS resource type"));
    free(err);
    err = NULL;

    put("clusters/a.yaml", "[unclosed\n");
    assert_int_equal(mp_xds_store_load(root, NULL, &s, &err), MP_ERR_PARSE);
    assert_non_null(strstr(err, "clusters/a.yaml: line"));
    free(err);
    err = NULL;

    assert_int_equal(mp_xds_store_load("/nonexistent-mp-dir", NULL, &s, &err), MP_ERR_IO);
    free(err);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(types_from_at_type_file_and_folder_names, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_name_file_and_field, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
