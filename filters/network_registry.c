/*
 * network_registry.c: every non-terminal network filter meshproxy knows, one
 * line each (the terminal ones, http_connection_manager and tcp_proxy, are
 * translated by xds/xds_translate_listener.c). Adding a filter: write
 * filters/network/<name>.c exporting its ops table and add it below.
 */
#include <stddef.h>
#include <stdlib.h>

#include "filters/filter_lookup.h"
#include "proxy/mp_common.h"
#include "proxy/network_filter.h"

extern const struct mp_network_filter_ops mp_network_filter_local_ratelimit;
extern const struct mp_network_filter_ops mp_network_filter_rbac;
extern const struct mp_network_filter_ops mp_network_filter_istio_stats;
extern const struct mp_network_filter_ops mp_network_filter_istio_metadata_exchange;

static const struct mp_network_filter_ops *const registry[] = {
    &mp_network_filter_local_ratelimit,
    &mp_network_filter_rbac,
    &mp_network_filter_istio_stats, /* filters/istio_ext.c */
    &mp_network_filter_istio_metadata_exchange,
};

const struct mp_network_filter_ops *mp_network_filter_find(const char *name, const char *type_url)
{
    ptrdiff_t i = mp_filter_lookup((const void *const *)registry, MP_ARRAY_LEN(registry),
                                   offsetof(struct mp_network_filter_ops, name),
                                   offsetof(struct mp_network_filter_ops, config_type), name, type_url);
    return i < 0 ? NULL : registry[i];
}

size_t mp_network_filter_registry_size(void)
{
    return sizeof(registry) / sizeof(registry[0]);
}

const struct mp_network_filter_ops *mp_network_filter_registry_at(size_t i)
{
    return i < mp_network_filter_registry_size() ? registry[i] : NULL;
}

int mp_network_filters_on_new_connection(const struct mp_network_filter_config *filters, size_t n,
                                         struct mp_conn *c)
{
    for (size_t i = 0; i < n; i++) {
        const struct mp_network_filter_ops *ops = filters[i].ops;
        if (ops->on_new_connection &&
            ops->on_new_connection(filters[i].config, c) != MP_NETWORK_FILTER_CONTINUE)
            return MP_NETWORK_FILTER_CLOSE;
    }
    return MP_NETWORK_FILTER_CONTINUE;
}

int mp_network_filters_on_tls_established(const struct mp_network_filter_config *filters, size_t n,
                                          struct mp_conn *c)
{
    for (size_t i = 0; i < n; i++) {
        const struct mp_network_filter_ops *ops = filters[i].ops;
        if (ops->on_tls_established &&
            ops->on_tls_established(filters[i].config, c) != MP_NETWORK_FILTER_CONTINUE)
            return MP_NETWORK_FILTER_CLOSE;
    }
    return MP_NETWORK_FILTER_CONTINUE;
}

void mp_network_filters_free(struct mp_network_filter_config *filters, size_t n)
{
    if (!filters)
        return;
    for (size_t i = 0; i < n; i++) {
        if (filters[i].ops && filters[i].ops->config_free && filters[i].config)
            filters[i].ops->config_free(filters[i].config);
        free(filters[i].name);
    }
    free(filters);
}
