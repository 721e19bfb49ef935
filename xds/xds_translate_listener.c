/*
 * xds_translate_listener.c: Listener -> struct mp_listener_config.
 */
#include "xds_translate_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "envoy/config/accesslog/v3/accesslog.pb-c.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb-c.h"
#include "filters/istio_ext.h"
#include "proxy/access_log.h"
#include "proxy/mp_common.h"
#include "proxy/network_filter.h"
#include "proxy/route_table.h"
#include "proxy/tls_config.h"
#include "proxy/tls_context.h"
#include "proxy/tls_xfcc.h"
#include "proxy/tracing.h"
#include "xds_translate_route.h"
#include "xds_translate_tls.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;

#define HCM_TYPE       "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TCP_PROXY_TYPE "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define FILE_AL_TYPE   "envoy.extensions.access_loggers.file.v3.FileAccessLog"
#define STDOUT_AL_TYPE "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
#define STDERR_AL_TYPE "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"

static uint64_t duration_ms(const Google__Protobuf__Duration *d, uint64_t dflt)
{
    if (!d)
        return dflt;
    if (d->seconds < 0 || d->nanos < 0)
        return 0;
    return (uint64_t)d->seconds * 1000u + (uint64_t)d->nanos / 1000000u;
}

static const char *type_name(const char *type_url)
{
    const char *slash = strrchr(type_url ? type_url : "", '/');
    return slash ? slash + 1 : (type_url ? type_url : "");
}

static void access_logs_free(struct mp_access_log **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_access_log_free(v[i]);
    free(v);
}

/* Translates access_log entries; only the file logger is supported. The
 * deprecated format fields are still what many configs use. */
/* An access log whose format is a SubstitutionFormatString (NULL: Envoy's
 * default): text_format (deprecated in the API, still common), an inline
 * text_format_source, or json_format with string values. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int access_log_with(const char *path, const Envoy__Config__Core__V3__SubstitutionFormatString *sf,
                           struct mp_access_log **out, char **err)
{
    if (!sf || sf->format_case == ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT__NOT_SET)
        return mp_access_log_new(path, NULL, out, err);
    if (sf->format_case == ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT)
        return mp_access_log_new(path, *sf->text_format ? sf->text_format : NULL, out, err);
    if (sf->format_case ==
            ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE &&
        sf->text_format_source &&
        sf->text_format_source->specifier_case ==
            ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
        return mp_access_log_new(path, sf->text_format_source->inline_string, out, err);
    if (sf->format_case != ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT ||
        !sf->json_format)
        return mp_set_err(err, "log_format: only text_format, an inline text_format_source and "
                               "json_format are supported");
    const Google__Protobuf__Struct *js = sf->json_format;
    size_t n = js->n_fields;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char **vals = calloc(n ? n : 1, sizeof(*vals));
    int rc = keys && vals ? 0 : MP_ERR_NOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Google__Protobuf__Value *val = js->fields[i]->value;
        if (!val || val->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
            rc = mp_set_err(err, "log_format.json_format[\"%s\"]: only string values (format "
                                 "strings) are supported",
                            js->fields[i]->key);
        keys[i] = js->fields[i]->key;
        vals[i] = rc == 0 ? val->string_value : NULL;
    }
    struct mp_al_format *fmt = NULL;
    if (rc == 0)
        rc = mp_al_format_parse_json(keys, vals, n, &fmt, err);
    free(keys);
    free(vals);
    if (rc == 0)
        rc = mp_access_log_new_with_format(path, fmt, out, err);
    if (rc < 0)
        mp_err_prefix(err, "log_format");
    return rc;
}
#pragma GCC diagnostic pop

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int translate_access_logs(Envoy__Config__Accesslog__V3__AccessLog **pb, size_t n,
                                 struct mp_access_log ***out, size_t *n_out, char **err)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    struct mp_access_log **v = calloc(n, sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Envoy__Config__Accesslog__V3__AccessLog *al = pb[i];
        if (al->config_type_case !=
                ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG ||
            !al->typed_config) {
            mp_set_err(err, "access_log[%zu]: typed_config is required", i);
            goto fail;
        }
        const char *t = type_name(al->typed_config->type_url);
        const uint8_t *data = al->typed_config->value.data;
        size_t len = al->typed_config->value.len;
        int rc;
        if (strcmp(t, FILE_AL_TYPE) == 0) {
            Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog *f =
                envoy__extensions__access_loggers__file__v3__file_access_log__unpack(NULL, len,
                                                                                    data);
            if (!f) {
                mp_set_err(err, "access_log[%zu].typed_config: cannot decode FileAccessLog", i);
                goto fail;
            }
            if (f->access_log_format_case ==
                ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_FORMAT)
                rc = mp_access_log_new(f->path, f->format && *f->format ? f->format : NULL, &v[k],
                                       err);
            else
                rc = access_log_with(f->path, f->log_format, &v[k], err);
            envoy__extensions__access_loggers__file__v3__file_access_log__free_unpacked(f, NULL);
        } else if (strcmp(t, STDOUT_AL_TYPE) == 0 || strcmp(t, STDERR_AL_TYPE) == 0) {
            /* same wire layout for both: one log_format */
            Envoy__Extensions__AccessLoggers__Stream__V3__StdoutAccessLog *so =
                envoy__extensions__access_loggers__stream__v3__stdout_access_log__unpack(NULL, len,
                                                                                        data);
            if (!so) {
                mp_set_err(err, "access_log[%zu].typed_config: cannot decode %s", i, t);
                goto fail;
            }
            rc = access_log_with(strcmp(t, STDOUT_AL_TYPE) == 0 ? "/dev/stdout" : "/dev/stderr",
                                 so->log_format, &v[k], err);
            envoy__extensions__access_loggers__stream__v3__stdout_access_log__free_unpacked(so,
                                                                                           NULL);
        } else {
            mp_set_err(err, "access_log[%zu].typed_config: unsupported access logger %s", i, t);
            goto fail;
        }
        if (rc < 0) {
            mp_err_prefix(err, "access_log[%zu].typed_config", i);
            goto fail;
        }
        k++;
    }
    *out = v;
    *n_out = k;
    return 0;
fail:
    access_logs_free(v, k);
    return MP_ERR_INVAL;
}
#pragma GCC diagnostic pop

static void hcm_free(struct mp_hcm_config *h)
{
    if (!h)
        return;
    free(h->stat_prefix);
    free(h->rds_name);
    free(h->server_name);
    free(h->via);
    mp_route_config_free(h->route_config);
    for (size_t i = 0; i < h->n_filters; i++) {
        if (h->filters[i].ops->config_free && h->filters[i].config)
            h->filters[i].ops->config_free(h->filters[i].config);
        free(h->filters[i].name);
    }
    free(h->filters);
    access_logs_free(h->access_logs, h->n_access_logs);
    mp_tracing_config_free(h->tracing);
    free(h);
}

static int translate_http_filters(const Hcm *pb, struct mp_hcm_config *h, char **err)
{
    h->filters = calloc(pb->n_http_filters ? pb->n_http_filters : 1, sizeof(*h->filters));
    if (!h->filters)
        return MP_ERR_NOMEM;
    bool have_router = false;
    for (size_t i = 0; i < pb->n_http_filters; i++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *f =
            pb->http_filters[i];
        if (f->disabled)
            continue;
        const Google__Protobuf__Any *any = NULL;
        if (f->config_type_case ==
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG)
            any = f->typed_config;
        /* A TypedStruct names the extension's type inside it (Istio wraps
         * some of its filters so) */
        char *wrapped = NULL;
        int ws = any ? mp_istio_ext_typed_struct_type(any->type_url, any->value.data,
                                                      any->value.len, &wrapped, err)
                     : 0;
        if (ws < 0) {
            mp_err_prefix(err, "http_filters[%zu].typed_config", i);
            return ws;
        }
        const struct mp_http_filter_ops *ops = mp_http_filter_find(f->name, wrapped ? wrapped
                                                                            : any   ? any->type_url
                                                                                    : NULL);
        if (!ops) {
            if (f->is_optional) {
                free(wrapped);
                continue;
            }
            int rc = mp_set_err(err, "http_filters[%zu]: unknown filter %s%s%s", i, f->name,
                                any ? " of type " : "",
                                wrapped ? type_name(wrapped)
                                : any   ? type_name(any->type_url)
                                        : "");
            free(wrapped);
            return rc;
        }
        free(wrapped);
        if (ws > 0) {
            if (!mp_istio_ext_takes_typed_struct(ops->config_type))
                return mp_set_err(err,
                                  "http_filters[%zu].typed_config: %s takes its own config type "
                                  "%s, not a TypedStruct",
                                  i, f->name, ops->config_type ? ops->config_type : "");
            any = NULL; /* the filter reads no config: parse it as absent */
        }
        if (have_router)
            return mp_set_err(err, "http_filters[%zu]: %s comes after the terminal router filter",
                              i, f->name);
        struct mp_http_filter_config *fc = &h->filters[h->n_filters];
        fc->ops = ops;
        fc->name = strdup(f->name);
        if (!fc->name)
            return MP_ERR_NOMEM;
        if (ops->parse) {
            int rc = ops->parse(any ? any->value.data : NULL, any ? any->value.len : 0, &fc->config,
                                err);
            if (rc < 0) {
                free(fc->name);
                fc->name = NULL;
                mp_err_prefix(err, "http_filters[%zu].typed_config", i);
                return rc;
            }
        }
        h->n_filters++;
        if (strcmp(ops->name, "envoy.filters.http.router") == 0)
            have_router = true;
    }
    if (!have_router)
        return mp_set_err(err, "http_filters: the last filter must be envoy.filters.http.router");
    return 0;
}

static int translate_hcm(const Google__Protobuf__Any *any, struct mp_hcm_config **out, char **err)
{
    Hcm *pb =
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
            NULL, any->value.len, any->value.data);
    if (!pb)
        return mp_set_err(err, "cannot decode HttpConnectionManager");
    int rc = MP_ERR_NOMEM;
    struct mp_hcm_config *h = calloc(1, sizeof(*h));
    if (!h)
        goto done;
    switch (pb->codec_type) {
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__AUTO:
        h->codec = MP_CODEC_AUTO;
        break;
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP1:
        h->codec = MP_CODEC_HTTP1;
        break;
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2:
        h->codec = MP_CODEC_HTTP2;
        break;
    default: rc = mp_set_err(err, "codec_type: HTTP3 is not supported"); goto done;
    }
    if (!pb->stat_prefix || !*pb->stat_prefix) {
        rc = mp_set_err(err, "stat_prefix: must not be empty");
        goto done;
    }
    h->stat_prefix = strdup(pb->stat_prefix);
    h->server_name = strdup(pb->server_name && *pb->server_name ? pb->server_name : "meshproxy");
    if (!h->stat_prefix || !h->server_name)
        goto done;
    if (pb->via && *pb->via && !(h->via = strdup(pb->via)))
        goto done;
    h->use_remote_address = pb->use_remote_address && pb->use_remote_address->value;
    h->xff_num_trusted_hops = pb->xff_num_trusted_hops;
    h->generate_request_id = !pb->generate_request_id || pb->generate_request_id->value;
    if ((unsigned)pb->forward_client_cert_details > MP_XFCC_ALWAYS_FORWARD_ONLY) {
        rc = mp_set_err(err, "forward_client_cert_details: unknown value %d",
                        (int)pb->forward_client_cert_details);
        goto done;
    }
    h->xfcc_mode = (uint8_t)pb->forward_client_cert_details;
    if (pb->set_current_client_cert_details) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__SetCurrentClientCertDetails
            *d = pb->set_current_client_cert_details;
        h->xfcc_details = (uint8_t)((d->subject && d->subject->value ? MP_XFCC_SUBJECT : 0) |
                                    (d->cert ? MP_XFCC_CERT : 0) | (d->chain ? MP_XFCC_CHAIN : 0) |
                                    (d->dns ? MP_XFCC_DNS : 0) | (d->uri ? MP_XFCC_URI : 0));
    }
    h->max_request_headers_kb = pb->max_request_headers_kb ? pb->max_request_headers_kb->value : 60;
    if (h->max_request_headers_kb == 0 || h->max_request_headers_kb > 8192) {
        rc = mp_set_err(err, "max_request_headers_kb: must be in 1..8192");
        goto done;
    }
    h->max_headers_count = 100;
    h->idle_timeout_ms = 3600000;
    if (pb->common_http_protocol_options) {
        const Envoy__Config__Core__V3__HttpProtocolOptions *o = pb->common_http_protocol_options;
        h->idle_timeout_ms = duration_ms(o->idle_timeout, 3600000);
        if (o->max_headers_count)
            h->max_headers_count = o->max_headers_count->value;
    }
    h->stream_idle_timeout_ms = duration_ms(pb->stream_idle_timeout, 300000);
    h->request_timeout_ms = duration_ms(pb->request_timeout, 0);
    h->drain_timeout_ms = duration_ms(pb->drain_timeout, 5000);
    h->h2_max_concurrent_streams = 2147483647u;
    h->h2_initial_stream_window = 268435456u;
    h->h2_initial_connection_window = 268435456u;
    if (pb->http2_protocol_options) {
        const Envoy__Config__Core__V3__Http2ProtocolOptions *o = pb->http2_protocol_options;
        if (o->max_concurrent_streams)
            h->h2_max_concurrent_streams = o->max_concurrent_streams->value;
        if (o->initial_stream_window_size) {
            h->h2_initial_stream_window = o->initial_stream_window_size->value;
            if (h->h2_initial_stream_window < 65535) {
                rc = mp_set_err(
                    err, "http2_protocol_options.initial_stream_window_size: must be >= 65535");
                goto done;
            }
        }
        if (o->initial_connection_window_size) {
            h->h2_initial_connection_window = o->initial_connection_window_size->value;
            if (h->h2_initial_connection_window < 65535) {
                rc = mp_set_err(
                    err, "http2_protocol_options.initial_connection_window_size: must be >= 65535");
                goto done;
            }
        }
    }
    switch (pb->route_specifier_case) {
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS:
        if (!pb->rds || !pb->rds->route_config_name || !*pb->rds->route_config_name) {
            rc = mp_set_err(err, "rds.route_config_name: must not be empty");
            goto done;
        }
        if (!(h->rds_name = strdup(pb->rds->route_config_name)))
            goto done;
        break;
    case ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG:
        rc = mp_route_config_from_proto(pb->route_config, &h->route_config, err);
        if (rc < 0) {
            mp_err_prefix(err, "route_config");
            goto done;
        }
        break;
    default:
        rc = mp_set_err(err, "route_specifier: one of rds or route_config is required");
        goto done;
    }
    rc = translate_http_filters(pb, h, err);
    if (rc < 0)
        goto done;
    rc = translate_access_logs(pb->access_log, pb->n_access_log, &h->access_logs, &h->n_access_logs,
                               err);
    if (rc < 0)
        goto done;
    /* span kind (egress) is set from the listener's traffic_direction afterwards */
    rc = mp_tracing_config_from_pb(pb->tracing, mp_tracing_bootstrap_provider(), false, &h->tracing,
                                   err);
    if (rc < 0) {
        mp_err_prefix(err, "tracing");
        goto done;
    }
    *out = h;
    h = NULL;
    rc = 0;
done:
    hcm_free(h);
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
        pb, NULL);
    return rc;
}

static void tcp_proxy_free(struct mp_tcp_proxy_config *t)
{
    if (!t)
        return;
    free(t->stat_prefix);
    free(t->cluster);
    for (size_t i = 0; i < t->n_weighted_clusters; i++)
        free(t->weighted_clusters[i].name);
    free(t->weighted_clusters);
    access_logs_free(t->access_logs, t->n_access_logs);
    free(t);
}

/* weighted_clusters: Envoy requires at least one entry, each with a name and weight >= 1. */
static int translate_tcp_weighted(
    const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc,
    struct mp_tcp_proxy_config *t, char **err)
{
    if (!wc || wc->n_clusters == 0)
        return mp_set_err(err, "weighted_clusters.clusters: at least one cluster is required");
    t->weighted_clusters = calloc(wc->n_clusters, sizeof(*t->weighted_clusters));
    if (!t->weighted_clusters)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < wc->n_clusters; i++) {
        const char *name = wc->clusters[i]->name;
        if (!name || !*name)
            return mp_set_err(err, "weighted_clusters.clusters[%zu].name: must not be empty", i);
        if (wc->clusters[i]->weight == 0)
            return mp_set_err(err, "weighted_clusters.clusters[%zu].weight: must be at least 1",
                              i);
        if (wc->clusters[i]->metadata_match)
            return mp_set_err(err, "weighted_clusters.clusters[%zu].metadata_match: unsupported",
                              i);
        struct mp_tcp_weighted_cluster *e = &t->weighted_clusters[i];
        if (!(e->name = strdup(name)))
            return MP_ERR_NOMEM;
        e->weight = wc->clusters[i]->weight;
        t->n_weighted_clusters++;
        t->total_weight += e->weight;
    }
    return 0;
}

const char *mp_tcp_proxy_pick_cluster(const struct mp_tcp_proxy_config *t, uint64_t random)
{
    if (t->cluster || t->n_weighted_clusters == 0)
        return t->cluster;
    uint64_t r = random % t->total_weight;
    for (size_t i = 0; i < t->n_weighted_clusters; i++) {
        if (r < t->weighted_clusters[i].weight)
            return t->weighted_clusters[i].name;
        r -= t->weighted_clusters[i].weight;
    }
    return t->weighted_clusters[t->n_weighted_clusters - 1].name; /* not reached */
}

static int translate_tcp_proxy(const Google__Protobuf__Any *any, struct mp_tcp_proxy_config **out,
                               char **err)
{
    TcpProxy *pb = envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__unpack(
        NULL, any->value.len, any->value.data);
    if (!pb)
        return mp_set_err(err, "cannot decode TcpProxy");
    int rc = MP_ERR_NOMEM;
    struct mp_tcp_proxy_config *t = calloc(1, sizeof(*t));
    if (!t)
        goto done;
    if (!pb->stat_prefix || !*pb->stat_prefix) {
        rc = mp_set_err(err, "stat_prefix: must not be empty");
        goto done;
    }
    t->stat_prefix = strdup(pb->stat_prefix);
    if (!t->stat_prefix)
        goto done;
    if (pb->cluster_specifier_case ==
        ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
        rc = translate_tcp_weighted(pb->weighted_clusters, t, err);
        if (rc < 0)
            goto done;
        rc = MP_ERR_NOMEM;
    } else if (pb->cluster_specifier_case ==
                   ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER &&
               pb->cluster) {
        t->cluster = strdup(pb->cluster);
        if (!t->cluster)
            goto done;
    } else {
        rc = mp_set_err(err, "cluster: one of cluster or weighted_clusters is required");
        goto done;
    }
    t->idle_timeout_ms = duration_ms(pb->idle_timeout, 3600000);
    rc = translate_access_logs(pb->access_log, pb->n_access_log, &t->access_logs, &t->n_access_logs,
                               err);
    if (rc < 0)
        goto done;
    *out = t;
    t = NULL;
    rc = 0;
done:
    tcp_proxy_free(t);
    envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__free_unpacked(pb, NULL);
    return rc;
}

/* A non-terminal network filter (proxy/network_filter.h), appended to c's list. */
static int translate_network_filter(const struct mp_network_filter_ops *nf,
                                    const Envoy__Config__Listener__V3__Filter *f,
                                    const Google__Protobuf__Any *any, size_t n_filters,
                                    struct mp_filter_chain *c, char **err)
{
    if (!c->network_filters) {
        /* room for every filter the chain lists; the terminal one is not stored here */
        c->network_filters = calloc(n_filters, sizeof(*c->network_filters));
        if (!c->network_filters)
            return MP_ERR_NOMEM;
    }
    struct mp_network_filter_config *fc = &c->network_filters[c->n_network_filters];
    fc->ops = nf;
    if (f->name && *f->name && !(fc->name = strdup(f->name)))
        return MP_ERR_NOMEM;
    int rc = nf->parse(any ? any->value.data : NULL, any ? any->value.len : 0, &fc->config, err);
    if (rc < 0) {
        free(fc->name);
        memset(fc, 0, sizeof(*fc));
        mp_err_prefix(err, "typed_config");
        return rc;
    }
    c->n_network_filters++;
    return 0;
}

static void chain_clear(struct mp_filter_chain *c)
{
    free(c->name);
    mp_fc_match_clear(&c->match);
    mp_tls_context_unref(c->tls);
    mp_tls_config_unref(c->tls_config);
    mp_network_filters_free(c->network_filters, c->n_network_filters);
    hcm_free(c->hcm);
    tcp_proxy_free(c->tcp_proxy);
    memset(c, 0, sizeof(*c));
}

static int translate_chain(const Envoy__Config__Listener__V3__FilterChain *pb,
                           struct mp_filter_chain *c, char **err)
{
    int rc;
    if (pb->transport_socket) {
        struct mp_tls_config *tc = NULL;
        rc = mp_xds_translate_transport_socket(pb->transport_socket, MP_TLS_SERVER, &tc, err);
        if (rc == 0 && tc) {
            c->tls_config = tc;
            /* a context that names SDS secrets is built at publication, where the
             * secrets are known; files and inline data are checked now */
            rc = mp_tls_context_new(tc, NULL, NULL, &c->tls, err);
            if (rc == MP_ERR_NOTFOUND) {
                free(*err);
                *err = NULL;
                rc = 0;
            }
        }
        if (rc < 0) {
            mp_err_prefix(err, "transport_socket");
            return rc;
        }
    }
    if (pb->name && *pb->name && !(c->name = strdup(pb->name)))
        return MP_ERR_NOMEM;
    rc = mp_fc_match_translate(pb->filter_chain_match, &c->match, err);
    if (rc < 0) {
        mp_err_prefix(err, "filter_chain_match");
        return rc;
    }
    for (size_t i = 0; i < pb->n_filters; i++) {
        const Envoy__Config__Listener__V3__Filter *f = pb->filters[i];
        const Google__Protobuf__Any *any =
            f->config_type_case == ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG
                ? f->typed_config
                : NULL;
        const char *t = any ? type_name(any->type_url) : "";
        bool is_hcm =
            strcmp(t, HCM_TYPE) == 0 ||
            (!any && strcmp(f->name, "envoy.filters.network.http_connection_manager") == 0);
        bool is_tcp = strcmp(t, TCP_PROXY_TYPE) == 0 ||
                      (!any && strcmp(f->name, "envoy.filters.network.tcp_proxy") == 0);
        if ((is_hcm || is_tcp) && !any)
            return mp_set_err(err, "filters[%zu].typed_config: required", i);
        if (is_hcm || is_tcp) {
            if (c->hcm || c->tcp_proxy)
                return mp_set_err(err, "filters[%zu]: only one terminal filter is allowed", i);
            if (i != pb->n_filters - 1)
                return mp_set_err(err, "filters[%zu]: %s must be the last filter", i, f->name);
            rc = is_hcm ? translate_hcm(any, &c->hcm, err)
                        : translate_tcp_proxy(any, &c->tcp_proxy, err);
            if (rc < 0) {
                mp_err_prefix(err, "filters[%zu].typed_config", i);
                return rc;
            }
            continue;
        }
        char *wrapped = NULL;
        rc = any ? mp_istio_ext_typed_struct_type(any->type_url, any->value.data, any->value.len,
                                                  &wrapped, err)
                 : 0;
        if (rc < 0) {
            mp_err_prefix(err, "filters[%zu].typed_config", i);
            return rc;
        }
        const struct mp_network_filter_ops *nf =
            mp_network_filter_find(f->name, wrapped ? wrapped
                                            : any   ? any->type_url
                                                    : NULL);
        free(wrapped);
        if (nf && rc > 0) {
            if (!mp_istio_ext_takes_typed_struct(nf->config_type))
                return mp_set_err(err,
                                  "filters[%zu].typed_config: %s takes its own config type %s, "
                                  "not a TypedStruct",
                                  i, f->name, nf->config_type ? nf->config_type : "");
            any = NULL; /* the filter reads no config */
        }
        if (nf) {
            rc = translate_network_filter(nf, f, any, pb->n_filters, c, err);
            if (rc < 0) {
                mp_err_prefix(err, "filters[%zu]", i);
                return rc;
            }
            continue;
        }
        return mp_set_err(err, "filters[%zu]: unsupported network filter %s%s%s", i, f->name,
                          *t ? " of type " : "", t);
    }
    if (!c->hcm && !c->tcp_proxy)
        return mp_set_err(err, "filters: a http_connection_manager or tcp_proxy is required");
    return 0;
}

static int translate_address(const Envoy__Config__Core__V3__Address *a,
                             struct mp_listener_config *l, char **err)
{
    if (!a || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
        !a->socket_address)
        return mp_set_err(err, "address: a socket_address is required");
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
        return mp_set_err(err, "address.socket_address.protocol: only TCP is supported");
    if (sa->port_specifier_case !=
            ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE ||
        sa->port_value > 65535)
        return mp_set_err(err, "address.socket_address.port_value: a port in 0..65535 is required");
    memset(&l->addr, 0, sizeof(l->addr));
    struct sockaddr_in *in = (struct sockaddr_in *)&l->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->addr;
    char buf[128];
    if (inet_pton(AF_INET, sa->address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)sa->port_value);
        l->addr_len = sizeof(*in);
        snprintf(buf, sizeof(buf), "%s_%u", sa->address, sa->port_value);
    } else if (inet_pton(AF_INET6, sa->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)sa->port_value);
        l->addr_len = sizeof(*in6);
        snprintf(buf, sizeof(buf), "[%s]_%u", sa->address, sa->port_value);
    } else {
        return mp_set_err(err, "address.socket_address.address: \"%s\" is not an IP address",
                          sa->address);
    }
    l->stat_name = strdup(buf);
    return l->stat_name ? 0 : MP_ERR_NOMEM;
}

struct mp_listener_config *mp_listener_config_ref(struct mp_listener_config *l)
{
    atomic_fetch_add_explicit(&l->extra_refs, 1, memory_order_relaxed);
    return l;
}

void mp_listener_config_free(struct mp_listener_config *l)
{
    if (!l)
        return;
    /* extra_refs counts references beyond the first, so a fresh calloc'd
     * translation needs no initialisation */
    uint32_t n = atomic_load_explicit(&l->extra_refs, memory_order_acquire);
    while (n > 0) {
        if (atomic_compare_exchange_weak_explicit(&l->extra_refs, &n, n - 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return;
    }
    for (size_t i = 0; i < l->n_chains; i++)
        chain_clear(&l->chains[i]);
    free(l->chains);
    if (l->default_chain) {
        chain_clear(l->default_chain);
        free(l->default_chain);
    }
    mp_listener_filters_clear(&l->filters);
    free(l->name);
    free(l->stat_name);
    free(l);
}

int mp_xds_translate_listener(const Envoy__Config__Listener__V3__Listener *pb,
                              struct mp_listener_config **out, char **err)
{
    int rc = MP_ERR_NOMEM;
    struct mp_listener_config *l = calloc(1, sizeof(*l));
    if (!l)
        return MP_ERR_NOMEM;
    if (!pb->name || !*pb->name) {
        rc = mp_set_err(err, "name: must not be empty");
        goto fail;
    }
    if (!(l->name = strdup(pb->name)))
        goto fail;
    rc = translate_address(pb->address, l, err);
    if (rc < 0)
        goto fail;
    l->direction = pb->traffic_direction == ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__INBOUND
                       ? MP_TRAFFIC_INBOUND
                   : pb->traffic_direction == ENVOY__CONFIG__CORE__V3__TRAFFIC_DIRECTION__OUTBOUND
                       ? MP_TRAFFIC_OUTBOUND
                       : MP_TRAFFIC_UNSPECIFIED;
    l->bind_to_port = !pb->bind_to_port || pb->bind_to_port->value;
    l->use_original_dst = pb->use_original_dst && pb->use_original_dst->value;
    l->per_connection_buffer_limit = pb->per_connection_buffer_limit_bytes
                                         ? pb->per_connection_buffer_limit_bytes->value
                                         : 1024 * 1024;
    rc = mp_listener_filters_translate(pb, &l->filters, err);
    if (rc < 0)
        goto fail;
    if (pb->n_filter_chains == 0 && !pb->default_filter_chain) {
        rc = mp_set_err(err, "filter_chains: at least one filter chain is required");
        goto fail;
    }
    l->chains = calloc(pb->n_filter_chains ? pb->n_filter_chains : 1, sizeof(*l->chains));
    if (!l->chains) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < pb->n_filter_chains; i++) {
        rc = translate_chain(pb->filter_chains[i], &l->chains[i], err);
        l->n_chains = i + 1;
        if (rc < 0) {
            mp_err_prefix(err, "filter_chains[%zu]", i);
            goto fail;
        }
    }
    if (l->n_chains > 1) {
        const struct mp_fc_match **m = calloc(l->n_chains, sizeof(*m));
        if (!m) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < l->n_chains; i++)
            m[i] = &l->chains[i].match;
        rc = mp_fc_check_unique(m, l->n_chains, err);
        free(m);
        if (rc < 0) {
            mp_err_prefix(err, "filter_chains");
            goto fail;
        }
    }
    if (pb->default_filter_chain) {
        l->default_chain = calloc(1, sizeof(*l->default_chain));
        if (!l->default_chain) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        rc = translate_chain(pb->default_filter_chain, l->default_chain, err);
        if (rc < 0) {
            mp_err_prefix(err, "default_filter_chain");
            goto fail;
        }
    }
    /* Envoy: an OUTBOUND listener's HCM traces egress (CLIENT spans) */
    for (size_t i = 0; i <= l->n_chains; i++) {
        struct mp_filter_chain *c = i < l->n_chains ? &l->chains[i] : l->default_chain;
        if (c && c->hcm && c->hcm->tracing)
            c->hcm->tracing->egress = l->direction == MP_TRAFFIC_OUTBOUND;
    }
    *out = l;
    return 0;
fail:
    mp_listener_config_free(l);
    return rc;
}

const struct mp_filter_chain *mp_listener_match_chain(const struct mp_listener_config *l,
                                                      const struct mp_fc_conn *conn)
{
    if (l->n_chains > 0) {
        const struct mp_fc_match *stack[16] = {0};
        const struct mp_fc_match **m = stack;
        if (l->n_chains > MP_ARRAY_LEN(stack)) {
            m = malloc(l->n_chains * sizeof(*m));
            if (!m)
                return NULL;
        }
        for (size_t i = 0; i < l->n_chains; i++)
            m[i] = &l->chains[i].match;
        ssize_t idx = mp_fc_select(m, l->n_chains, conn);
        if (m != stack)
            free(m);
        if (idx >= 0)
            return &l->chains[idx];
    }
    return l->default_chain;
}
