/*
 * xds_runtime.c: the xDS clients, the store and the hand-off of snapshots
 * from the grpc thread to the main thread.
 *
 * Threads: the watcher callbacks and the store run on the grpc thread. The
 * hand-off is one slot under a mutex (grpc thread and main thread only, never
 * a worker) plus an ev_async on the main loop; the main thread keeps only the
 * newest snapshot when several arrive between two turns of its loop.
 */
#include "xds_runtime.h"

#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buffer.h"
#include "grpc_thread.h"
#include "log.h"
#include "mp_common.h"
#include "pb_json.h"
#include "server.h"
#include "snapshot.h"
#include "type_registry.h"
#include "xds_client.h"
#include "xds_source.h"
#include "xds_store.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

struct sds_source {
    char *cluster;
    struct mp_xds_client *client;
};

struct mp_xds_runtime {
    struct mp_server *server;
    const Bootstrap *b;
    struct mp_grpc_thread *gt;
    struct mp_xds_client *ads; /* set before start, read-only after */
    /* per-type streams from an api_config_source (not ADS), or NULL */
    struct mp_xds_client *cds, *eds, *lds, *rds;

    /* grpc thread only */
    struct mp_xds_store *store;
    struct sds_source *sds;
    size_t n_sds;
    bool init_reported;
    bool secrets_dirty;

    /* hand-off slot (mu) */
    pthread_mutex_t mu;
    struct mp_snapshot *next_snap;
    struct mp_xds_secret_set *next_secrets;
    struct mp_xds_dump *next_dump;
    bool next_init_done;
    uint64_t next_seq;      /* hand-offs made (grpc thread writes) */
    uint64_t published_seq; /* hand-offs the main thread has put in force */
    bool stopping;
    pthread_cond_t published; /* signalled with published_seq */
    ev_async wake;

    /* main thread only */
    struct mp_xds_secret_set *secrets;
    struct mp_xds_dump *dump;
};

/* ---- grpc thread: hand-off ------------------------------------------------------- */

static void handoff(struct mp_xds_runtime *rt, bool build)
{
    struct mp_snapshot *snap = NULL;
    struct mp_xds_secret_set *secrets = NULL;
    struct mp_xds_dump *dump = NULL;
    if (build) {
        if (mp_xds_store_build(rt->store, &snap) < 0) {
            MP_LOG(MP_LOG_XDS, MP_LOG_ERROR, "out of memory building a snapshot: update not applied");
            return;
        }
        /* here, so a push of many new clusters does not hold the main loop */
        mp_snapshot_prepare_stats(rt->server, snap);
        dump = mp_xds_store_dump(rt->store);
        if (rt->secrets_dirty) {
            secrets = mp_xds_store_secrets(rt->store);
            if (secrets)
                rt->secrets_dirty = false;
        }
    }
    bool init_done = !rt->init_reported && mp_xds_store_initialized(rt->store);
    if (init_done)
        rt->init_reported = true;
    pthread_mutex_lock(&rt->mu);
    if (snap) {
        mp_snapshot_unref(rt->next_snap);
        rt->next_snap = snap;
    }
    if (secrets) {
        mp_xds_secret_set_unref(rt->next_secrets);
        rt->next_secrets = secrets;
    }
    if (dump) {
        mp_xds_dump_unref(rt->next_dump);
        rt->next_dump = dump;
    }
    rt->next_init_done |= init_done;
    uint64_t seq = ++rt->next_seq;
    ev_async_send(mp_server_loop(rt->server), &rt->wake);
    /* The ACK goes out when on_update returns: wait until the main thread has
     * published, so an ACKed version is the one in force (as in Envoy). The
     * wait is bounded so a stuck main loop cannot stall the xDS stream. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    while (rt->published_seq < seq && !rt->stopping)
        if (pthread_cond_timedwait(&rt->published, &rt->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&rt->mu);
}

/* ---- grpc thread: SDS sources ------------------------------------------------------ */

static const struct mp_xds_watcher_ops watcher_ops;

static const char *short_type(const char *type_url)
{
    const char *dot = strrchr(type_url, '.');
    return dot ? dot + 1 : type_url;
}

/* One per-type stream from the api_config_source of cs, as Envoy opens when
 * a type is not on ADS: CDS, EDS, LDS, RDS, or SDS for a source cluster.
 * named: the names come from the store (EDS from clusters, RDS from
 * listeners, secrets from TLS contexts). */
static int start_type_client(struct mp_xds_runtime *rt, const Envoy__Config__Core__V3__ConfigSource *cs,
                             const char *type, bool named, struct mp_xds_client **out, char **err)
{
    struct mp_xds_source src;
    int rc = mp_xds_source_from_api(rt->b, cs->api_config_source, cs, &src, err);
    if (rc < 0)
        return rc;
    const char *types[1] = {type};
    bool named_v[1] = {named};
    struct mp_xds_client_config cfg = {
        .target = src.target,
        .method = mp_xds_method_for_type(type, src.mode),
        .mode = src.mode,
        .node = rt->b->node,
        .type_urls = types,
        .n_type_urls = 1,
        .named_only = named_v,
        .initial_fetch_timeout_ms = src.initial_fetch_timeout_ms,
        .ops = &watcher_ops,
        .ctx = rt,
    };
    rc = mp_xds_client_new(rt->gt, &cfg, out, err);
    if (rc == 0 && (rc = mp_xds_client_start(*out)) < 0) {
        mp_xds_client_free(*out);
        *out = NULL;
    }
    if (rc == 0)
        MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "%s stream (%s) to %s", short_type(type),
               src.mode == MP_XDS_DELTA ? "delta" : "state of the world", src.target);
    mp_xds_source_clear(&src);
    return rc;
}

/* The SDS stream to a source cluster named by sds_secret_configs (Istio's
 * sds-grpc): SotW StreamSecrets without an initial fetch timeout. */
static struct mp_xds_client *sds_client_new(struct mp_xds_runtime *rt, const char *cluster)
{
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc eg =
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    Envoy__Config__Core__V3__GrpcService gs = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    Envoy__Config__Core__V3__ApiConfigSource api =
        ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT;
    /* the INIT macro sets ConfigSource's deprecated path field */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
#pragma GCC diagnostic pop
    Google__Protobuf__Duration no_timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    Envoy__Config__Core__V3__GrpcService *gsp = &gs;
    eg.cluster_name = (char *)cluster;
    gs.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs.envoy_grpc = &eg;
    api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api.n_grpc_services = 1;
    api.grpc_services = &gsp;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs.api_config_source = &api;
    cs.initial_fetch_timeout = &no_timeout;
    char *err = NULL;
    struct mp_xds_client *c = NULL;
    int rc = start_type_client(rt, &cs, MP_XDS_TYPE_SECRET, true, &c, &err);
    if (rc < 0)
        MP_LOG(MP_LOG_XDS, MP_LOG_ERROR, "SDS source cluster %s: %s", cluster,
               err ? err : mp_strerror(rc));
    free(err);
    return c;
}

static void subscribe_secrets(struct mp_xds_runtime *rt, struct mp_xds_client *c,
                              const char *cluster)
{
    char **names = NULL;
    size_t n = 0;
    if (!c || mp_xds_store_secret_names(rt->store, cluster, &names, &n) < 0)
        return;
    int rc = mp_xds_client_subscribe(c, MP_XDS_TYPE_SECRET, (const char *const *)names, n);
    if (rc < 0 && rc != MP_ERR_NOTFOUND)
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "subscribing secrets: %s", mp_strerror(rc));
    mp_xds_names_free(names, n);
}

/* The secrets the accepted resources name, per source: over ADS, or a new
 * SDS stream for each source cluster seen for the first time. */
static void sync_secret_subscriptions(struct mp_xds_runtime *rt)
{
    char **sources = NULL;
    size_t n = 0;
    if (mp_xds_store_secret_sources(rt->store, &sources, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < rt->n_sds && strcmp(rt->sds[j].cluster, sources[i]) != 0)
            j++;
        if (j == rt->n_sds) {
            struct sds_source *v = realloc(rt->sds, (rt->n_sds + 1) * sizeof(*v));
            if (!v)
                break;
            rt->sds = v;
            v[j].cluster = strdup(sources[i]);
            v[j].client = v[j].cluster ? sds_client_new(rt, sources[i]) : NULL;
            rt->n_sds++;
        }
    }
    mp_xds_names_free(sources, n);
    subscribe_secrets(rt, rt->ads, NULL);
    for (size_t j = 0; j < rt->n_sds; j++)
        subscribe_secrets(rt, rt->sds[j].client, rt->sds[j].cluster);
}

/* On per-type streams nothing derives EDS and RDS names from accepted
 * clusters and listeners (ADS does it itself): ask for them explicitly. */
static void sync_child_names(struct mp_xds_runtime *rt, const char *parent_type)
{
    bool cds = strcmp(parent_type, MP_XDS_TYPE_CLUSTER) == 0;
    struct mp_xds_client *c = cds ? rt->eds : rt->rds;
    if (!c)
        return;
    char **names = NULL;
    size_t n = 0;
    int rc = cds ? mp_xds_store_eds_names(rt->store, &names, &n)
                 : mp_xds_store_rds_names(rt->store, &names, &n);
    if (rc == 0)
        rc = mp_xds_client_subscribe(c, cds ? MP_XDS_TYPE_ENDPOINT : MP_XDS_TYPE_ROUTE,
                                     (const char *const *)names, n);
    if (rc < 0)
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "subscribing %s names: %s", cds ? "EDS" : "RDS",
               mp_strerror(rc));
    mp_xds_names_free(names, n);
}

/* ---- grpc thread: watcher ---------------------------------------------------------- */


static int on_update(void *ctx, const struct mp_xds_update *up, char **err_out)
{
    struct mp_xds_runtime *rt = ctx;
    int64_t t0 = mp_grpc_now_ms();
    int rc = mp_xds_store_apply(rt->store, up, err_out);
    if (up->kind == MP_XDS_UPDATE_UNSUBSCRIBED) {
        if (rc > 0)
            handoff(rt, true);
        return 0;
    }
    if (rc < 0) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "%s version %s rejected (NACK): %s", short_type(up->type_url),
               up->version_info ? up->version_info : "", *err_out ? *err_out : mp_strerror(rc));
        return rc;
    }
    if (strcmp(up->type_url, MP_XDS_TYPE_SECRET) == 0 && rc > 0)
        rt->secrets_dirty = true;
    handoff(rt, rc > 0);
    if (strcmp(up->type_url, MP_XDS_TYPE_CLUSTER) == 0 ||
        strcmp(up->type_url, MP_XDS_TYPE_LISTENER) == 0) {
        sync_secret_subscriptions(rt);
        sync_child_names(rt, up->type_url);
    }
    struct mp_xds_store_counts n;
    mp_xds_store_counts(rt->store, &n);
    MP_LOG(MP_LOG_XDS, MP_LOG_INFO,
           "%s version %s accepted (%zu resources, %zu removed) in %lld ms: clusters %zu (+%zu "
           "warming), endpoints %zu, listeners %zu (+%zu warming), routes %zu, secrets %zu",
           short_type(up->type_url), up->version_info ? up->version_info : "", up->n_resources,
           up->n_removed, (long long)(mp_grpc_now_ms() - t0), n.clusters, n.clusters_warming,
           n.endpoints, n.listeners, n.listeners_warming, n.routes, n.secrets);
    return 0;
}

static void on_fetch_timeout(void *ctx, const char *type_url)
{
    struct mp_xds_runtime *rt = ctx;
    if (mp_xds_store_fetch_timeout(rt->store, type_url) > 0)
        handoff(rt, true);
}

static void on_connection(void *ctx, bool connected)
{
    (void)ctx;
    MP_LOG(MP_LOG_XDS, connected ? MP_LOG_INFO : MP_LOG_WARN, "xDS stream %s",
           connected ? "connected" : "lost: serving the last configuration, reconnecting");
}

static const struct mp_xds_watcher_ops watcher_ops = {
    .on_update = on_update,
    .on_fetch_timeout = on_fetch_timeout,
    .on_connection = on_connection,
};

/* ---- main thread ------------------------------------------------------------------ */

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_xds_runtime *rt = a->data;
    pthread_mutex_lock(&rt->mu);
    struct mp_snapshot *snap = rt->next_snap;
    struct mp_xds_secret_set *secrets = rt->next_secrets;
    struct mp_xds_dump *dump = rt->next_dump;
    bool init_done = rt->next_init_done;
    uint64_t seq = rt->next_seq;
    rt->next_snap = NULL;
    rt->next_secrets = NULL;
    rt->next_dump = NULL;
    rt->next_init_done = false;
    pthread_mutex_unlock(&rt->mu);
    if (secrets) {
        mp_xds_secret_set_unref(rt->secrets);
        rt->secrets = secrets;
        mp_server_secrets_changed(rt->server);
    }
    if (dump) {
        mp_xds_dump_unref(rt->dump);
        rt->dump = dump;
    }
    if (snap) {
        char *err = NULL;
        if (mp_snapshot_publish(rt->server, snap, &err) < 0)
            MP_LOG(MP_LOG_XDS, MP_LOG_ERROR, "publishing the xDS configuration: %s",
                   err ? err : "failed");
        free(err);
    }
    if (init_done)
        mp_server_init_done(rt->server);
    pthread_mutex_lock(&rt->mu);
    rt->published_seq = seq;
    pthread_cond_broadcast(&rt->published);
    pthread_mutex_unlock(&rt->mu);
}

static const struct mp_tls_secret *secret_lookup(void *arg, const char *name)
{
    struct mp_xds_runtime *rt = arg;
    return mp_xds_secret_set_find(rt->secrets, name);
}

/* /config_dump: the dynamic resources, as Envoy's *ConfigDump messages. */
static void dump_resource(struct mp_buffer *out, const struct mp_xds_blob *b)
{
    const ProtobufCMessageDescriptor *d = mp_type_registry_find(b->type_url);
    ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, b->len, b->data) : NULL;
    char *js = NULL, *err = NULL;
    size_t len = 0;
    if (m && mp_pb_to_json(m, 0, &js, &len, &err) == 0 && len >= 2 && js[0] == '{')
        mp_buffer_appendf(out, "{\"@type\":\"%s\"%s%s", b->type_url, len > 2 ? "," : "", js + 1);
    else
        mp_buffer_appendf(out, "{\"@type\":\"%s\"}", b->type_url);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(js);
    free(err);
}

static void dump_list(struct mp_buffer *out, const struct mp_xds_dump *d, const char *type,
                      int warming, const char *field)
{
    bool first = true;
    for (size_t i = 0; i < d->n; i++) {
        const struct mp_xds_blob *b = d->blobs[i];
        if (strcmp(b->type_url, type) != 0 || (warming >= 0 && d->warming[i] != (warming == 1)))
            continue;
        mp_buffer_appendf(out, "%s{\"version_info\":\"%s\",\"%s\":", first ? "" : ",", b->version,
                          field);
        first = false;
        dump_resource(out, b);
        mp_buffer_appendf(out, "}");
    }
}

static void dump_listeners(struct mp_buffer *out, const struct mp_xds_dump *d)
{
    bool first = true;
    for (size_t i = 0; i < d->n; i++) {
        const struct mp_xds_blob *b = d->blobs[i];
        if (strcmp(b->type_url, MP_XDS_TYPE_LISTENER) != 0)
            continue;
        mp_buffer_appendf(out, "%s{\"name\":\"%s\",\"%s\":{\"version_info\":\"%s\",\"listener\":",
                          first ? "" : ",", b->name, d->warming[i] ? "warming_state" : "active_state",
                          b->version);
        first = false;
        dump_resource(out, b);
        mp_buffer_appendf(out, "}}");
    }
}

static void config_dump(void *arg, struct mp_buffer *out)
{
    struct mp_xds_runtime *rt = arg;
    const struct mp_xds_dump *d = rt->dump;
    if (!d)
        return;
#define V(i) (d->versions[i] ? d->versions[i] : "")
    mp_buffer_appendf(out,
                      ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\","
                      "\"version_info\":\"%s\",\"dynamic_active_clusters\":[",
                      V(0));
    dump_list(out, d, MP_XDS_TYPE_CLUSTER, 0, "cluster");
    mp_buffer_appendf(out, "],\"dynamic_warming_clusters\":[");
    dump_list(out, d, MP_XDS_TYPE_CLUSTER, 1, "cluster");
    mp_buffer_appendf(out, "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3."
                           "ListenersConfigDump\",\"version_info\":\"%s\",\"dynamic_listeners\":[",
                      V(2));
    dump_listeners(out, d);
    mp_buffer_appendf(out, "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\","
                           "\"dynamic_route_configs\":[");
    dump_list(out, d, MP_XDS_TYPE_ROUTE, -1, "route_config");
    mp_buffer_appendf(out, "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3."
                           "EndpointsConfigDump\",\"dynamic_endpoint_configs\":[");
    dump_list(out, d, MP_XDS_TYPE_ENDPOINT, -1, "endpoint_config");
    /* Secrets as Envoy's SecretsConfigDump.DynamicSecret; the admin's dump
     * filter redacts their private keys (it merges this with the static
     * secrets' SecretsConfigDump). */
    mp_buffer_appendf(out, "]},{\"@type\":\"type.googleapis.com/envoy.admin.v3."
                           "SecretsConfigDump\"");
    for (int warming = 0; warming < 2; warming++) {
        mp_buffer_appendf(out, ",\"%s\":[",
                          warming ? "dynamic_warming_secrets" : "dynamic_active_secrets");
        bool first = true;
        for (size_t i = 0; i < d->n; i++) {
            const struct mp_xds_blob *b = d->blobs[i];
            if (strcmp(b->type_url, MP_XDS_TYPE_SECRET) != 0 || d->warming[i] != (warming == 1))
                continue;
            char when[40] = "";
            time_t t = (time_t)(b->last_updated_wall_us / 1000000);
            struct tm tm;
            if (gmtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            mp_buffer_appendf(out,
                              "%s{\"name\":\"%s\",\"version_info\":\"%s\","
                              "\"last_updated\":\"%s\",\"secret\":",
                              first ? "" : ",", b->name, b->version, when);
            first = false;
            dump_resource(out, b);
            mp_buffer_appendf(out, "}");
        }
        mp_buffer_appendf(out, "]");
    }
    mp_buffer_appendf(out, "}");
#undef V
}

static void runtime_stop(void *arg)
{
    struct mp_xds_runtime *rt = arg;
    pthread_mutex_lock(&rt->mu);
    rt->stopping = true;
    pthread_cond_broadcast(&rt->published);
    pthread_mutex_unlock(&rt->mu);
    /* clients first: once freed no callback runs, so the grpc-thread state
     * (store, SDS list) is ours */
    mp_xds_client_free(rt->ads);
    mp_xds_client_free(rt->cds);
    mp_xds_client_free(rt->eds);
    mp_xds_client_free(rt->lds);
    mp_xds_client_free(rt->rds);
    for (size_t i = 0; i < rt->n_sds; i++) {
        mp_xds_client_free(rt->sds[i].client);
        free(rt->sds[i].cluster);
    }
    free(rt->sds);
    mp_xds_store_free(rt->store);
    ev_async_stop(mp_server_loop(rt->server), &rt->wake);
    mp_server_set_secret_lookup(rt->server, NULL, NULL);
    mp_server_set_config_dump(rt->server, NULL, NULL);
    mp_snapshot_unref(rt->next_snap);
    mp_xds_secret_set_unref(rt->next_secrets);
    mp_xds_dump_unref(rt->next_dump);
    mp_xds_secret_set_unref(rt->secrets);
    mp_xds_dump_unref(rt->dump);
    pthread_cond_destroy(&rt->published);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
}

static bool via_ads(const Envoy__Config__Core__V3__ConfigSource *cs)
{
    return cs && cs->config_source_specifier_case ==
                     ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
}

static bool via_api(const Envoy__Config__Core__V3__ConfigSource *cs)
{
    return cs && cs->config_source_specifier_case ==
                     ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE &&
           cs->api_config_source;
}

bool mp_xds_runtime_wanted(const Bootstrap *b)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *d = b->dynamic_resources;
    return d && (d->ads_config || via_api(d->cds_config) || via_api(d->lds_config));
}

/* Non-ADS CDS and LDS streams, each with its child type (EDS, RDS) on a
 * stream of the same source. */
static int start_type_clients(struct mp_xds_runtime *rt, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *d = rt->b->dynamic_resources;
    int rc = 0;
    if (via_api(d->cds_config)) {
        rc = start_type_client(rt, d->cds_config, MP_XDS_TYPE_CLUSTER, false, &rt->cds, err);
        if (rc == 0)
            rc = start_type_client(rt, d->cds_config, MP_XDS_TYPE_ENDPOINT, true, &rt->eds, err);
        if (rc < 0)
            mp_err_prefix(err, "dynamic_resources.cds_config.api_config_source");
    }
    if (rc == 0 && via_api(d->lds_config)) {
        rc = start_type_client(rt, d->lds_config, MP_XDS_TYPE_LISTENER, false, &rt->lds, err);
        if (rc == 0)
            rc = start_type_client(rt, d->lds_config, MP_XDS_TYPE_ROUTE, true, &rt->rds, err);
        if (rc < 0)
            mp_err_prefix(err, "dynamic_resources.lds_config.api_config_source");
    }
    return rc;
}

/* The ADS client: the types the bootstrap asks for, in make-before-break
 * order, plus Secret for SDS over ADS (named, so silent until needed). */
static int start_ads(struct mp_xds_runtime *rt, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *d = rt->b->dynamic_resources;
    struct mp_xds_source src;
    int rc = mp_xds_source_ads(rt->b, &src, err);
    if (rc < 0)
        return rc;
    const char *types[5];
    bool named[5];
    size_t n = 0;
    if (via_ads(d->cds_config)) {
        types[n] = MP_XDS_TYPE_CLUSTER, named[n++] = false;
        types[n] = MP_XDS_TYPE_ENDPOINT, named[n++] = true;
    }
    if (via_ads(d->lds_config)) {
        types[n] = MP_XDS_TYPE_LISTENER, named[n++] = false;
        types[n] = MP_XDS_TYPE_ROUTE, named[n++] = true;
    }
    types[n] = MP_XDS_TYPE_SECRET, named[n++] = true;
    struct mp_xds_client_config cfg = {
        .target = src.target,
        .mode = src.mode,
        .node = rt->b->node,
        .type_urls = types,
        .n_type_urls = n,
        .named_only = named,
        .initial_fetch_timeout_ms = src.initial_fetch_timeout_ms,
        .ops = &watcher_ops,
        .ctx = rt,
    };
    rc = mp_xds_client_new(rt->gt, &cfg, &rt->ads, err);
    if (rc == 0)
        rc = mp_xds_client_start(rt->ads);
    if (rc == 0)
        MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "ADS (%s) to %s",
               src.mode == MP_XDS_DELTA ? "delta" : "state of the world", src.target);
    mp_xds_source_clear(&src);
    return rc;
}

int mp_xds_runtime_start(struct mp_server *server, void *bootstrap)
{
    const Bootstrap *b = bootstrap;
    if (!mp_xds_runtime_wanted(b))
        return 0;
    struct mp_xds_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return MP_ERR_NOMEM;
    rt->server = server;
    rt->b = b;
    pthread_mutex_init(&rt->mu, NULL);
    pthread_cond_init(&rt->published, NULL);
    ev_async_init(&rt->wake, wake_cb);
    rt->wake.data = rt;
    ev_async_start(mp_server_loop(server), &rt->wake);
    char *err = NULL;
    int rc = MP_ERR_NOMEM;
    struct mp_snapshot *base = mp_server_current_snapshot(server);
    struct mp_xds_store_config scfg = {
        .base = base,
        .want_cds = b->dynamic_resources->cds_config != NULL,
        .want_lds = b->dynamic_resources->lds_config != NULL,
    };
    rc = mp_xds_store_new(&scfg, &rt->store);
    mp_snapshot_unref(base);
    if (rc < 0)
        goto fail;
    rt->gt = mp_server_grpc_thread(server);
    if (!rt->gt) {
        rc = MP_ERR_IO;
        goto fail;
    }
    rc = mp_server_add_stop_hook(server, runtime_stop, rt);
    if (rc < 0)
        goto fail;
    mp_server_set_secret_lookup(server, secret_lookup, rt);
    mp_server_set_config_dump(server, config_dump, rt);
    mp_server_init_hold(server);
    rc = rt->b->dynamic_resources->ads_config ? start_ads(rt, &err) : 0;
    if (rc == 0)
        rc = start_type_clients(rt, &err);
    if (rc < 0) {
        /* the stop hook frees rt */
        fprintf(stderr, "meshproxy: %s\n", err ? err : mp_strerror(rc));
        free(err);
        return rc;
    }
    return 0;
fail:
    fprintf(stderr, "meshproxy: xDS: %s\n", err ? err : mp_strerror(rc));
    free(err);
    mp_xds_store_free(rt->store);
    ev_async_stop(mp_server_loop(server), &rt->wake);
    pthread_cond_destroy(&rt->published);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
    return rc;
}
