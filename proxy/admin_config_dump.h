/*
 * admin_config_dump.h: Envoy's /config_dump query parameters (resource,
 * mask, name_regex, include_eds) and secret redaction, applied to the full
 * dump that the server and the xDS runtime write.
 */
#ifndef MP_ADMIN_CONFIG_DUMP_H
#define MP_ADMIN_CONFIG_DUMP_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/buffer.h"

struct mp_admin_dump_query {
    const char
        *resource;    /* a repeated field of a *ConfigDump ("dynamic_active_clusters"), or NULL */
    const char *mask; /* FieldMask paths "a.b,c", or NULL */
    const char *name_regex; /* PCRE2 on resource names, or NULL */
    bool include_eds;       /* keep EndpointsConfigDump (Envoy drops it unless asked) */
};

/**
 * Rewrites dump, the JSON text {"configs":[...]}, as Envoy's admin answers
 * /config_dump with q: configs of the same @type merged into one;
 * EndpointsConfigDump dropped unless include_eds; with resource, the items
 * of that field from every config, each with its own "@type" (e.g.
 * "...ClustersConfigDump.DynamicCluster"); with name_regex, only resources
 * whose name (cluster, listener, route config, secret, endpoint cluster)
 * matches; with mask, only the listed fields of each config or resource
 * ("@type" is kept). Everywhere, DataSources under private_key, password,
 * generic secrets and session ticket keys become
 * {"inline_string":"[redacted]"} as in Envoy. Appends to out. Returns 0;
 * MP_ERR_NOTFOUND with *err when resource names no field in the dump (Envoy
 * answers 404); MP_ERR_INVAL with *err for a bad regex or mask, or when dump
 * is not JSON; MP_ERR_NOMEM. On failure out may hold a partial answer (the
 * caller discards it).
 */
int mp_admin_config_dump_filter(const char *dump, size_t len, const struct mp_admin_dump_query *q,
                                struct mp_buffer *out, char **err);

#endif
