/*
 * tracing_config.c: HttpConnectionManager.Tracing (and its provider) ->
 * struct mp_tracing_config; the process-wide node identity and bootstrap
 * provider spans use.
 */
#include "tracing.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "mp_common.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing
    hcm_tracing_pb;

#define ZIPKIN_TYPE "envoy.config.trace.v3.ZipkinConfig"
#define OTEL_TYPE   "envoy.config.trace.v3.OpenTelemetryConfig"

/* Set on the main thread before workers start; read-only afterwards. */
static Envoy__Config__Trace__V3__Tracing__Http *bootstrap_http;

void mp_tracing_config_free(struct mp_tracing_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_custom_tags; i++) {
        free(cfg->custom_tags[i].tag);
        free(cfg->custom_tags[i].value);
        free(cfg->custom_tags[i].default_value);
        free(cfg->custom_tags[i].env_value);
    }
    free(cfg->custom_tags);
    free(cfg->collector_cluster);
    free(cfg->collector_endpoint);
    free(cfg->collector_hostname);
    free(cfg->service_name);
    free(cfg);
}

/* Envoy: PROTOBUF_PERCENT_TO_ROUNDED_INTEGER_OR_DEFAULT(.., 10000, 10000). */
static int percent(const Envoy__Type__V3__Percent *p, const char *field, uint32_t *out, char **err)
{
    if (!p) {
        *out = 10000;
        return 0;
    }
    if (!(p->value >= 0.0 && p->value <= 100.0))
        return mp_set_err(err, "%s.value: %g is not within [0, 100]", field, p->value);
    *out = (uint32_t)llround(p->value / 100.0 * 10000.0);
    return 0;
}

static const char *type_name(const char *url)
{
    const char *slash = strrchr(url, '/');
    return slash ? slash + 1 : url;
}

static char *dup_nonempty(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int zipkin(struct mp_tracing_config *c, const Envoy__Config__Trace__V3__ZipkinConfig *z,
                  char **err)
{
    if (!z->collector_cluster || !*z->collector_cluster)
        return mp_set_err(err, "collector_cluster: must be set");
    if (!z->collector_endpoint || !*z->collector_endpoint)
        return mp_set_err(err, "collector_endpoint: must be set");
    if (z->collector_endpoint_version !=
        ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_JSON)
        return mp_set_err(err, "collector_endpoint_version: only HTTP_JSON is supported (got %d)",
                          (int)z->collector_endpoint_version);
    c->provider = MP_TRACING_ZIPKIN;
    c->collector_cluster = strdup(z->collector_cluster);
    c->collector_endpoint = strdup(z->collector_endpoint);
    c->collector_hostname =
        strdup(*z->collector_hostname ? z->collector_hostname : z->collector_cluster);
    c->trace_id_128bit = z->trace_id_128bit;
    c->shared_span_context = z->shared_span_context ? z->shared_span_context->value : true;
    if (!c->collector_cluster || !c->collector_endpoint || !c->collector_hostname)
        return MP_ERR_NOMEM;
    return 0;
}

static int otel(struct mp_tracing_config *c, const Envoy__Config__Trace__V3__OpenTelemetryConfig *o,
                char **err)
{
    const Envoy__Config__Core__V3__GrpcService *g = o->grpc_service;
    if (!g)
        return mp_set_err(err, "grpc_service: must be set (http_service is not supported)");
    if (g->target_specifier_case ==
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC)
        c->collector_cluster = dup_nonempty(g->envoy_grpc->cluster_name);
    else if (g->target_specifier_case ==
             ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC)
        c->collector_cluster = dup_nonempty(g->google_grpc->target_uri);
    if (!c->collector_cluster)
        return mp_set_err(err, "grpc_service: envoy_grpc.cluster_name or google_grpc.target_uri "
                               "must be set");
    if (g->timeout)
        c->timeout_ms =
            (uint64_t)g->timeout->seconds * 1000 + (uint64_t)g->timeout->nanos / 1000000;
    c->provider = MP_TRACING_OTEL;
    c->service_name = strdup(*o->service_name ? o->service_name : "unknown_service:meshproxy");
    return c->service_name ? 0 : MP_ERR_NOMEM;
}

static int provider(struct mp_tracing_config *c,
                    const Envoy__Config__Trace__V3__Tracing__Http *http, char **err)
{
    if (http->config_type_case !=
            ENVOY__CONFIG__TRACE__V3__TRACING__HTTP__CONFIG_TYPE_TYPED_CONFIG ||
        !http->typed_config)
        return mp_set_err(err, "typed_config: must be set for tracer \"%s\"", http->name);
    const Google__Protobuf__Any *any = http->typed_config;
    const char *t = type_name(any->type_url);
    int rc;
    if (strcmp(t, ZIPKIN_TYPE) == 0) {
        Envoy__Config__Trace__V3__ZipkinConfig *z =
            envoy__config__trace__v3__zipkin_config__unpack(NULL, any->value.len, any->value.data);
        if (!z)
            return mp_set_err(err, "typed_config: cannot decode %s", ZIPKIN_TYPE);
        rc = zipkin(c, z, err);
        envoy__config__trace__v3__zipkin_config__free_unpacked(z, NULL);
    } else if (strcmp(t, OTEL_TYPE) == 0) {
        Envoy__Config__Trace__V3__OpenTelemetryConfig *o =
            envoy__config__trace__v3__open_telemetry_config__unpack(NULL, any->value.len,
                                                                    any->value.data);
        if (!o)
            return mp_set_err(err, "typed_config: cannot decode %s", OTEL_TYPE);
        rc = otel(c, o, err);
        envoy__config__trace__v3__open_telemetry_config__free_unpacked(o, NULL);
    } else {
        return mp_set_err(err,
                          "typed_config: unsupported tracer type %s (supported: " ZIPKIN_TYPE
                          ", " OTEL_TYPE ")",
                          t);
    }
    if (rc < 0)
        mp_err_prefix(err, "typed_config");
    return rc;
}

/* Returns 0, 1 when the tag is skipped (metadata), or a negative MP_ERR_*. */
static int custom_tag(struct mp_tracing_custom_tag *t,
                      const Envoy__Type__Tracing__V3__CustomTag *pb, char **err)
{
    if (!pb->tag || !*pb->tag)
        return mp_set_err(err, "tag: must be set");
    const char *value = NULL, *def = NULL;
    switch (pb->type_case) {
    case ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_LITERAL:
        t->kind = MP_TRACING_TAG_LITERAL;
        value = pb->literal->value;
        break;
    case ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_ENVIRONMENT:
        t->kind = MP_TRACING_TAG_ENV;
        value = pb->environment->name;
        def = pb->environment->default_value;
        break;
    case ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_REQUEST_HEADER:
        t->kind = MP_TRACING_TAG_HEADER;
        value = pb->request_header->name;
        def = pb->request_header->default_value;
        break;
    case ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_METADATA:
        /* no metadata reaches spans here yet: skipped rather than refusing the
         * whole listener for one tag */
        return 1;
    default:
        return mp_set_err(err, "type: one of literal, environment, request_header or metadata "
                               "is required");
    }
    if (t->kind != MP_TRACING_TAG_LITERAL && (!value || !*value))
        return mp_set_err(err, "name: must be set");
    t->tag = strdup(pb->tag);
    t->value = strdup(value ? value : "");
    t->default_value = dup_nonempty(def);
    if (!t->tag || !t->value || (def && *def && !t->default_value))
        return MP_ERR_NOMEM;
    if (t->kind == MP_TRACING_TAG_ENV) {
        const char *e = getenv(t->value); /* once, here: not on the request path */
        if (e && !(t->env_value = strdup(e)))
            return MP_ERR_NOMEM;
    }
    if (t->kind == MP_TRACING_TAG_HEADER)
        for (char *p = t->value; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return 0;
}

int mp_tracing_config_from_pb(const hcm_tracing_pb *pb,
                              const Envoy__Config__Trace__V3__Tracing__Http *bootstrap, bool egress,
                              struct mp_tracing_config **out, char **err)
{
    *out = NULL;
    const Envoy__Config__Trace__V3__Tracing__Http *http =
        pb && pb->provider ? pb->provider : bootstrap;
    if (!pb || !http)
        return 0; /* Envoy: tracing without a provider traces nothing */
    struct mp_tracing_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    int rc;
    c->egress = egress;
    c->verbose = pb->verbose;
    c->max_path_tag_length = pb->max_path_tag_length ? pb->max_path_tag_length->value : 256;
    c->spawn_upstream_span = pb->spawn_upstream_span ? pb->spawn_upstream_span->value : false;
    c->timeout_ms = 5000;
    if ((rc = percent(pb->client_sampling, "client_sampling", &c->client_sampling, err)) < 0 ||
        (rc = percent(pb->random_sampling, "random_sampling", &c->random_sampling, err)) < 0 ||
        (rc = percent(pb->overall_sampling, "overall_sampling", &c->overall_sampling, err)) < 0)
        goto fail;
    if (pb->n_custom_tags) {
        c->custom_tags = calloc(pb->n_custom_tags, sizeof(*c->custom_tags));
        if (!c->custom_tags) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < pb->n_custom_tags; i++) {
            size_t n = c->n_custom_tags++; /* counted first: a half-made entry is freed too */
            rc = custom_tag(&c->custom_tags[n], pb->custom_tags[i], err);
            if (rc < 0) {
                mp_err_prefix(err, "custom_tags[%zu]", i);
                goto fail;
            }
            if (rc == 1)
                c->n_custom_tags = n; /* skipped; the entry is still all zero */
        }
    }
    if ((rc = provider(c, http, err)) < 0) {
        mp_err_prefix(err, pb->provider ? "provider" : "bootstrap tracing.http");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    mp_tracing_config_free(c);
    return rc;
}

int mp_tracing_set_bootstrap_provider(const Envoy__Config__Trace__V3__Tracing__Http *http)
{
    Envoy__Config__Trace__V3__Tracing__Http *copy = NULL;
    if (http) {
        size_t len = protobuf_c_message_get_packed_size(&http->base);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
            return MP_ERR_NOMEM;
        protobuf_c_message_pack(&http->base, buf);
        copy = (Envoy__Config__Trace__V3__Tracing__Http *)protobuf_c_message_unpack(
            &envoy__config__trace__v3__tracing__http__descriptor, NULL, len, buf);
        free(buf);
        if (!copy)
            return MP_ERR_NOMEM;
    }
    if (bootstrap_http)
        protobuf_c_message_free_unpacked(&bootstrap_http->base, NULL);
    bootstrap_http = copy;
    return 0;
}

const Envoy__Config__Trace__V3__Tracing__Http *mp_tracing_bootstrap_provider(void)
{
    return bootstrap_http;
}
