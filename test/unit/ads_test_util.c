/*
 * ads_test_util.c: helpers shared by the xDS session unit tests (see
 * ads_test_util.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ads_test_util.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

char *join_names(const char *const *v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, v[i]);
    }
    return out;
}

static int rec_on_update(void *ctx, const struct mp_xds_update *up, char **err)
{
    struct rec *r = ctx;
    int i = r->calls++;
    if (up->kind == MP_XDS_UPDATE_UNSUBSCRIBED)
        r->unsubscribed_calls++;
    if (i >= MAX_SEEN)
        return 0;
    const char *names[32];
    const char *versions[32];
    for (size_t k = 0; k < up->n_resources && k < 32; k++) {
        names[k] = up->resources[k].name;
        versions[k] = up->resources[k].version;
        /* the decoded message matches the type and the bytes */
        if (!up->resources[k].msg || up->resources[k].len == 0)
            return mp_set_err(err, "test: resource without message");
    }
    r->kind[i] = up->kind;
    r->complete[i] = up->complete;
    r->type_url[i] = strdup(up->type_url);
    r->names[i] = join_names(names, up->n_resources < 32 ? up->n_resources : 32);
    r->versions[i] = join_names(versions, up->n_resources < 32 ? up->n_resources : 32);
    r->removed[i] = join_names(up->removed, up->n_removed);
    if (r->nack_with && up->kind == MP_XDS_UPDATE_RESPONSE) {
        const char *m = r->nack_with;
        r->nack_with = NULL;
        return mp_set_err(err, "%s", m);
    }
    return 0;
}

void rec_free(struct rec *r)
{
    for (int i = 0; i < MAX_SEEN && i < r->calls; i++) {
        free(r->type_url[i]);
        free(r->names[i]);
        free(r->removed[i]);
        free(r->versions[i]);
    }
    memset(r, 0, sizeof(*r));
}

const struct mp_xds_watcher_ops rec_ops = {.on_update = rec_on_update};

/* ---- resources ---- */

Google__Protobuf__Any *pack_any(const ProtobufCMessage *m, const char *type_url)
{
    Google__Protobuf__Any *a = malloc(sizeof(*a));
    google__protobuf__any__init(a);
    a->type_url = strdup(type_url);
    a->value.len = protobuf_c_message_get_packed_size(m);
    a->value.data = malloc(a->value.len + 1);
    protobuf_c_message_pack(m, a->value.data);
    return a;
}

void any_free(Google__Protobuf__Any *a)
{
    free(a->type_url);
    free(a->value.data);
    free(a);
}

/* A Cluster; type EDS when eds, with service_name svc (may be NULL). */
Google__Protobuf__Any *make_cluster(const char *name, int eds, const char *svc)
{
    Envoy__Config__Cluster__V3__Cluster c;
    envoy__config__cluster__v3__cluster__init(&c);
    Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig ecc;
    envoy__config__cluster__v3__cluster__eds_cluster_config__init(&ecc);
    c.name = (char *)name;
    c.cluster_discovery_type_case =
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c.type = eds ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS
                 : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
    if (svc) {
        ecc.service_name = (char *)svc;
        c.eds_cluster_config = &ecc;
    }
    return pack_any(&c.base, MP_XDS_TYPE_CLUSTER);
}

Google__Protobuf__Any *make_cla(const char *name)
{
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla;
    envoy__config__endpoint__v3__cluster_load_assignment__init(&cla);
    cla.cluster_name = (char *)name;
    return pack_any(&cla.base, MP_XDS_TYPE_ENDPOINT);
}

Google__Protobuf__Any *make_route(const char *name)
{
    Envoy__Config__Route__V3__RouteConfiguration rc;
    envoy__config__route__v3__route_configuration__init(&rc);
    rc.name = (char *)name;
    return pack_any(&rc.base, MP_XDS_TYPE_ROUTE);
}

/* A Listener with one filter chain whose HCM uses RDS route rds. */
Google__Protobuf__Any *make_listener(const char *name, const char *rds)
{
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager hcm;
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__init(
        &hcm);
    Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds r;
    envoy__extensions__filters__network__http_connection_manager__v3__rds__init(&r);
    hcm.stat_prefix = "t";
    r.route_config_name = (char *)rds;
    hcm.route_specifier_case =
        ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
    hcm.rds = &r;
    Google__Protobuf__Any *hany = pack_any(
        &hcm.base,
        "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    Envoy__Config__Listener__V3__Filter f;
    envoy__config__listener__v3__filter__init(&f);
    f.name = "envoy.filters.network.http_connection_manager";
    f.config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
    f.typed_config = hany;
    Envoy__Config__Listener__V3__Filter *fp = &f;
    Envoy__Config__Listener__V3__FilterChain fc;
    envoy__config__listener__v3__filter_chain__init(&fc);
    fc.n_filters = 1;
    fc.filters = &fp;
    Envoy__Config__Listener__V3__FilterChain *fcp = &fc;
    Envoy__Config__Listener__V3__Listener l;
    envoy__config__listener__v3__listener__init(&l);
    l.name = (char *)name;
    l.n_filter_chains = 1;
    l.filter_chains = &fcp;
    Google__Protobuf__Any *out = pack_any(&l.base, MP_XDS_TYPE_LISTENER);
    any_free(hany);
    return out;
}

/* ---- responses (anys are consumed) ---- */

/* Packs response r, frees anys[0..n) (which r refers to) and feeds s the bytes. */
static int feed_packed(struct mp_ads_session *s, const ProtobufCMessage *r,
                       Google__Protobuf__Any **anys, size_t n)
{
    size_t len = protobuf_c_message_get_packed_size(r);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(r, buf);
    for (size_t i = 0; i < n; i++)
        any_free(anys[i]);
    int rc = mp_ads_session_on_message(s, buf, len);
    free(buf);
    return rc;
}

int feed_sotw(struct mp_ads_session *s, const char *type_url, const char *version,
              const char *nonce, Google__Protobuf__Any **anys, size_t n)
{
    Envoy__Service__Discovery__V3__DiscoveryResponse r;
    envoy__service__discovery__v3__discovery_response__init(&r);
    r.type_url = (char *)type_url;
    r.version_info = (char *)version;
    r.nonce = (char *)nonce;
    r.n_resources = n;
    r.resources = anys;
    return feed_packed(s, &r.base, anys, n);
}

/* versions[i] is resource i's version; removed may be NULL. */
int feed_delta(struct mp_ads_session *s, const char *type_url, const char *nonce,
               Google__Protobuf__Any **anys, const char *const *versions, size_t n,
               const char *const *removed, size_t n_removed)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse r;
    envoy__service__discovery__v3__delta_discovery_response__init(&r);
    Envoy__Service__Discovery__V3__Resource res[8];
    Envoy__Service__Discovery__V3__Resource *rp[8];
    for (size_t i = 0; i < n; i++) {
        envoy__service__discovery__v3__resource__init(&res[i]);
        res[i].version = (char *)versions[i];
        res[i].resource = anys[i];
        rp[i] = &res[i];
    }
    r.type_url = (char *)type_url;
    r.nonce = (char *)nonce;
    r.system_version_info = "sys";
    r.n_resources = n;
    r.resources = rp;
    r.n_removed_resources = n_removed;
    r.removed_resources = (char **)removed;
    return feed_packed(s, &r.base, anys, n);
}

/* ---- requests ---- */

/* The next queued request, decoded with desc; NULL when none is queued. */
static void *pop_unpacked(struct mp_ads_session *s, const ProtobufCMessageDescriptor *desc)
{
    uint8_t *buf;
    size_t len;
    if (mp_ads_session_next_request(s, &buf, &len) != 0)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, buf);
    free(buf);
    return m;
}

Envoy__Service__Discovery__V3__DiscoveryRequest *pop_sotw(struct mp_ads_session *s)
{
    return pop_unpacked(s, &envoy__service__discovery__v3__discovery_request__descriptor);
}

Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *pop_delta(struct mp_ads_session *s)
{
    return pop_unpacked(s, &envoy__service__discovery__v3__delta_discovery_request__descriptor);
}

void req_free(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

char *joined(char **v, size_t n)
{
    return join_names((const char *const *)v, n);
}

/* ---- session fixtures ---- */

const char *const ads_test_types4[4] = {MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_ENDPOINT,
                                        MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE};

struct mp_ads_session *ads_test_session_new(enum mp_xds_mode mode, const char *node_id,
                                            const char *node_cluster, struct rec *r)
{
    Envoy__Config__Core__V3__Node node;
    envoy__config__core__v3__node__init(&node);
    node.id = (char *)node_id;
    if (node_cluster != NULL)
        node.cluster = (char *)node_cluster;
    struct mp_ads_session_config cfg = {
        .mode = mode,
        .node = &node,
        .type_urls = ads_test_types4,
        .n_type_urls = 4,
        .ops = &rec_ops,
        .ctx = r,
    };
    struct mp_ads_session *s = NULL;
    char *err = NULL;
    assert_int_equal(mp_ads_session_new(&cfg, &s, &err), 0);
    assert_null(err);
    return s;
}

void ads_test_drain(struct mp_ads_session *s)
{
    while (mp_ads_session_has_request(s)) {
        uint8_t *buf;
        size_t len;
        if (mp_ads_session_next_request(s, &buf, &len) != 0)
            break;
        free(buf);
    }
}

void ads_test_expect_node_and_error(const Envoy__Config__Core__V3__Node *node,
                                    const Google__Rpc__Status *error_detail, const char *node_id,
                                    const char *error)
{
    if (node_id != NULL) {
        assert_non_null(node);
        assert_string_equal(node->id, node_id);
    } else {
        assert_null(node);
    }
    if (error != NULL) {
        assert_non_null(error_detail);
        assert_int_equal(error_detail->code, 3); /* INVALID_ARGUMENT */
        assert_non_null(strstr(error_detail->message, error));
    } else {
        assert_null(error_detail);
    }
}
