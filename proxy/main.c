/*
 * main.c: meshproxy's entry point. Parses the Envoy-style command line, sets
 * up logging, loads and checks the bootstrap, then validates (--mode
 * validate), stops after initialisation (--mode init_only) or serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "log.h"
#include "mp_common.h"
#include "options.h"
#include "server.h"
#include "xds/xds_translate_cluster.h"
#include "xds/xds_translate_listener.h"
#include "xds/xds_translate_route.h"
#include "xds/xds_runtime.h"
#include "proxy/tracing.h"

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

#define HCM_TYPE                                                                                   \
    "type.googleapis.com/"                                                                         \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

/* Prefixes *err with a path: "static_resources.clusters[2]" + "x: bad". */
static int with_path(int rc, char **err, const char *fmt, size_t a, size_t b, size_t c)
{
    char path[160];
    snprintf(path, sizeof(path), fmt, a, b, c);
    if (*err == NULL)
        mp_set_err(err, "%s: %s", path, mp_strerror(rc));
    else
        mp_err_prefix(err, "%s", path);
    return rc;
}

/* Inline route tables of static HCMs through the route translator, which
 * rejects what Envoy rejects (bad regexes, duplicate domains...). */
static int deep_check_routes(const Bootstrap *b, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    for (size_t i = 0; sr != NULL && i < sr->n_listeners; i++) {
        const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];
        for (size_t c = 0; c < l->n_filter_chains; c++) {
            const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[c];
            for (size_t f = 0; f < fc->n_filters; f++) {
                const Envoy__Config__Listener__V3__Filter *filter = fc->filters[f];
                if (filter->config_type_case !=
                        ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
                    strcmp(filter->typed_config->type_url, HCM_TYPE) != 0)
                    continue;
                Hcm *h = (Hcm *)protobuf_c_message_unpack(
                    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
                    NULL, filter->typed_config->value.len, filter->typed_config->value.data);
                if (h == NULL)
                    continue; /* mp_bootstrap_validate reported it already */
                int rc = 0;
                if (h->route_specifier_case ==
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG) {
                    struct mp_route_config *cfg = NULL;
                    rc = mp_route_config_from_proto(h->route_config, &cfg, err);
                    if (rc == 0)
                        mp_route_config_free(cfg);
                }
                protobuf_c_message_free_unpacked(&h->base, NULL);
                if (rc != 0)
                    return with_path(rc, err,
                                     "static_resources.listeners[%zu].filter_chains[%zu]."
                                     "filters[%zu].typed_config.route_config",
                                     i, c, f);
            }
        }
    }
    return 0;
}

/* What the translation modules say about the static resources. */
static int deep_check(const Bootstrap *b, char **err)
{
    int rc = deep_check_routes(b, err);
    if (rc != 0)
        return rc;
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
    for (size_t i = 0; sr != NULL && i < sr->n_clusters; i++) {
        struct mp_cluster *c = NULL;
        rc = mp_cluster_from_proto(sr->clusters[i], &c, err);
        if (rc != 0)
            return with_path(rc, err, "static_resources.clusters[%zu]", i, 0, 0);
        mp_cluster_free(c);
    }
    for (size_t i = 0; b->static_resources != NULL && i < b->static_resources->n_listeners; i++) {
        struct mp_listener_config *l = NULL;
        rc = mp_xds_translate_listener(b->static_resources->listeners[i], &l, err);
        if (rc != 0)
            return with_path(rc, err, "static_resources.listeners[%zu]", i, 0, 0);
        mp_listener_config_free(l);
    }
    return 0;
}

/* Span tags (node_id, zone) and the provider HCMs without one fall back
 * to: both come from the bootstrap and must be set before any listener is
 * translated. */
static int set_tracing_identity(const Bootstrap *b)
{
    const Envoy__Config__Core__V3__Node *n = b->node;
    int rc = mp_tracing_set_local_node(n ? n->id : NULL, n ? n->cluster : NULL,
                                       n && n->locality ? n->locality->zone : NULL);
    /* Bootstrap.tracing is deprecated in the API but older Istio bootstraps
     * still carry their Zipkin provider there */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (rc == 0)
        rc = mp_tracing_set_bootstrap_provider(b->tracing ? b->tracing->http : NULL);
#pragma GCC diagnostic pop
    return rc;
}

static int setup_logging(const struct mp_options *o, char **err)
{
    mp_log_set_level(o->log_level);
    if (o->component_log_level != NULL &&
        mp_log_set_component_levels(o->component_log_level, err) != 0)
        return MP_ERR_INVAL;
    if (o->log_format != NULL && mp_log_set_format(o->log_format) != 0)
        return mp_set_err(err, "out of memory");
    mp_log_set_escape(o->log_format_escaped);
    if (o->log_path != NULL && mp_log_open_path(o->log_path) != 0)
        return mp_set_err(err, "--log-path: cannot open '%s'", o->log_path);
    return 0;
}

int main(int argc, char **argv)
{
    struct mp_options opts;
    char *err = NULL;
    Bootstrap *bootstrap = NULL;
    int status = 1;

    int rc = mp_options_parse(&opts, argc, argv, &err);
    if (rc == MP_OPTIONS_EXIT_OK)
        return 0;
    if (rc != MP_OPTIONS_RUN) {
        fprintf(stderr, "meshproxy: %s\n", err != NULL ? err : mp_strerror(rc));
        free(err);
        return 1;
    }
    if (setup_logging(&opts, &err) != 0) {
        fprintf(stderr, "meshproxy: %s\n", err != NULL ? err : "bad logging options");
        goto out;
    }
    const char *what = opts.config_path != NULL ? opts.config_path : "--config-yaml";
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "meshproxy %s starting (mode %s, config '%s')", mp_version(),
           mp_mode_name(opts.mode), what);

    rc = mp_bootstrap_from_options(&opts, &bootstrap, &err);
    if (rc == 0)
        rc = mp_bootstrap_validate(bootstrap, &err);
    if (rc == 0)
        rc = set_tracing_identity(bootstrap);
    if (rc == 0 && opts.mode != MP_MODE_SERVE)
        rc = deep_check(bootstrap, &err);
    if (rc != 0) {
        const char *msg = err != NULL ? err : mp_strerror(rc);
        if (opts.mode == MP_MODE_VALIDATE) {
            /* Like `envoy --mode validate`: the reason on stderr, exit 1. */
            fprintf(stderr, "error initializing configuration '%s': %s\n", what, msg);
        } else {
            MP_LOG(MP_LOG_CONFIG, MP_LOG_CRITICAL, "error initializing configuration '%s': %s",
                   what, msg);
            if (!mp_log_enabled(MP_LOG_CONFIG, MP_LOG_CRITICAL))
                fprintf(stderr, "error initializing configuration '%s': %s\n", what, msg);
        }
        goto out;
    }

    switch (opts.mode) {
    case MP_MODE_VALIDATE:
        printf("configuration '%s' OK\n", what);
        status = 0;
        break;
    case MP_MODE_INIT_ONLY:
        MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "init_only: configuration loaded, exiting");
        status = 0;
        break;
    case MP_MODE_SERVE:
        if (mp_xds_runtime_wanted(bootstrap)) {
            mp_server_on_start = mp_xds_runtime_start;
            mp_server_on_start_arg = bootstrap;
        }
        status = mp_server_run(&opts, bootstrap) == 0 ? 0 : 1;
        break;
    }
out:
    mp_bootstrap_free(bootstrap);
    free(err);
    mp_log_close();
    return status;
}
