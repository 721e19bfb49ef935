/*
 * filter_registry.c: every HTTP filter meshproxy knows, one line each.
 * Adding a filter: write filters/http/<name>.c exporting its ops table and
 * add it below.
 */
#include <string.h>

#include "proxy/http_filter.h"

extern const struct mp_http_filter_ops mp_http_filter_router;
extern const struct mp_http_filter_ops mp_http_filter_local_ratelimit;
extern const struct mp_http_filter_ops mp_http_filter_rbac;
extern const struct mp_http_filter_ops mp_http_filter_ext_authz;
extern const struct mp_http_filter_ops mp_http_filter_ratelimit;
extern const struct mp_http_filter_ops mp_http_filter_fault;
extern const struct mp_http_filter_ops mp_http_filter_jwt_authn;
extern const struct mp_http_filter_ops mp_http_filter_istio_metadata_exchange;
extern const struct mp_http_filter_ops mp_http_filter_istio_stats;
extern const struct mp_http_filter_ops mp_http_filter_grpc_stats;
extern const struct mp_http_filter_ops mp_http_filter_istio_alpn;
extern const struct mp_http_filter_ops mp_http_filter_cors;

static const struct mp_http_filter_ops *const registry[] = {
    &mp_http_filter_router,
    &mp_http_filter_local_ratelimit,
    &mp_http_filter_rbac,
    &mp_http_filter_ext_authz,
    &mp_http_filter_ratelimit,
    &mp_http_filter_fault,
    &mp_http_filter_jwt_authn,
    &mp_http_filter_istio_metadata_exchange, /* filters/istio_ext.c */
    &mp_http_filter_istio_stats,
    &mp_http_filter_grpc_stats,
    &mp_http_filter_istio_alpn,
    &mp_http_filter_cors, /* filters/http/cors.c */
};

const struct mp_http_filter_ops *mp_http_filter_find(const char *name, const char *type_url)
{
    const char *type = NULL;
    if (type_url && *type_url) {
        const char *slash = strrchr(type_url, '/');
        type = slash ? slash + 1 : type_url;
    }
    /* the typed_config type decides, as in Envoy; the name is a fallback */
    if (type) {
        for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
            if (registry[i]->config_type && strcmp(registry[i]->config_type, type) == 0)
                return registry[i];
    }
    if (name) {
        for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
            if (strcmp(registry[i]->name, name) == 0)
                return registry[i];
    }
    return NULL;
}

size_t mp_http_filter_registry_size(void)
{
    return sizeof(registry) / sizeof(registry[0]);
}

const struct mp_http_filter_ops *mp_http_filter_registry_at(size_t i)
{
    return i < mp_http_filter_registry_size() ? registry[i] : NULL;
}
