/*
 * filter_registry.c: every HTTP filter meshproxy knows, one line each.
 * Adding a filter: write filters/http/<name>.c exporting its ops table and
 * add it below.
 */
#include <stddef.h>

#include "filters/filter_lookup.h"
#include "proxy/http_filter.h"
#include "proxy/mp_common.h"

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
    ptrdiff_t i = mp_filter_lookup((const void *const *)registry, MP_ARRAY_LEN(registry),
                                   offsetof(struct mp_http_filter_ops, name),
                                   offsetof(struct mp_http_filter_ops, config_type), name, type_url);
    return i < 0 ? NULL : registry[i];
}

size_t mp_http_filter_registry_size(void)
{
    return sizeof(registry) / sizeof(registry[0]);
}

const struct mp_http_filter_ops *mp_http_filter_registry_at(size_t i)
{
    return i < mp_http_filter_registry_size() ? registry[i] : NULL;
}
