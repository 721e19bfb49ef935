/*
 * istio_ext.c: the Istio extensions istiod configures on every sidecar (see
 * istio_ext.h for what each one does here and why that is enough).
 *
 * Why no-ops are acceptable: istio.stats and grpc_stats only produce
 * telemetry (Prometheus series, filter state for access logs); they never
 * change a request, a response or the upstream chosen. The metadata exchange
 * only carries the peer's identity for that telemetry. None of them is
 * dropped silently: each logs once that it is accepted without effect.
 */
#include "filters/istio_ext.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "udpa/type/v1/typed_struct.pb-c.h"
#include "xds/type/v3/typed_struct.pb-c.h"

/* ---- shared ------------------------------------------------------------- */

/* One line per extension per process: the config is parsed again on every
 * push, the note matters once. */
static void note_once(atomic_bool *said, const char *name, const char *what)
{
    if (!atomic_exchange_explicit(said, true, memory_order_relaxed))
        MP_LOG_INFO_(MP_LOG_CONFIG, "%s: accepted, %s", name, what);
}

/* A filter without config state still needs a non-NULL config pointer for
 * chains that test it; a static byte serves every instance. */
static char no_config;

static void no_free(void *config)
{
    (void)config;
}

/* ---- istio.stats / grpc_stats (HTTP and network): telemetry ------------- */

static atomic_bool said_stats, said_grpc_stats, said_net_stats, said_mx, said_net_mx;

static int stats_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err;
    note_once(&said_stats, "istio.stats",
              "no-op: Istio's telemetry filter never changes traffic; meshproxy's own "
              "Envoy-named stats are served on /stats and /stats/prometheus");
    *config = &no_config;
    return 0;
}

const struct mp_http_filter_ops mp_http_filter_istio_stats = {
    .name = "istio.stats",
    .config_type = "stats.PluginConfig",
    .parse = stats_parse,
    .config_free = no_free,
};

static int grpc_stats_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err;
    note_once(&said_grpc_stats, "envoy.filters.http.grpc_stats",
              "no-op: per-method gRPC counters and filter state only, never traffic");
    *config = &no_config;
    return 0;
}

const struct mp_http_filter_ops mp_http_filter_grpc_stats = {
    .name = "envoy.filters.http.grpc_stats",
    .config_type = "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
    .parse = grpc_stats_parse,
    .config_free = no_free,
};

static int net_stats_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err;
    note_once(&said_net_stats, "istio.stats (network)",
              "no-op: Istio's TCP telemetry never changes traffic");
    *config = &no_config;
    return 0;
}

static int net_continue(const void *config, struct mp_conn *c)
{
    (void)config, (void)c;
    return MP_NETWORK_FILTER_CONTINUE;
}

const struct mp_network_filter_ops mp_network_filter_istio_stats = {
    .name = "istio.stats",
    .config_type = "stats.PluginConfig",
    .parse = net_stats_parse,
    .config_free = no_free,
    .on_new_connection = net_continue,
};

/* ---- istio.metadata_exchange (network) ---------------------------------- */

static int net_mx_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err;
    note_once(&said_net_mx, "istio.metadata_exchange (network)",
              "no-op: the \"" MP_ISTIO_PEER_EXCHANGE_ALPN "\" ALPN is never negotiated, so "
              "peers never start the in-band exchange (peer identity for telemetry only)");
    *config = &no_config;
    return 0;
}

const struct mp_network_filter_ops mp_network_filter_istio_metadata_exchange = {
    .name = "istio.metadata_exchange",
    .config_type = "envoy.tcp.metadataexchange.config.MetadataExchange",
    .parse = net_mx_parse,
    .config_free = no_free,
    .on_new_connection = net_continue,
};

/* ---- istio.metadata_exchange (HTTP) ------------------------------------- */

/* Istio's istio_headers discovery method reads the peer's identity from
 * these and removes them, so the application never sees mesh internals. */
static const char *const peer_headers[] = {"x-envoy-peer-metadata", "x-envoy-peer-metadata-id"};

static int mx_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    (void)data, (void)len, (void)err;
    note_once(&said_mx, "istio.metadata_exchange",
              "peer-metadata headers are consumed (removed), none propagated: they carry "
              "workload identity for telemetry only");
    *config = &no_config;
    return 0;
}

static int mx_strip(struct mp_http_filter_ctx *f, struct mp_headers *headers, bool end_stream)
{
    (void)f, (void)end_stream;
    for (size_t i = 0; i < MP_ARRAY_LEN(peer_headers); i++)
        mp_headers_remove(headers, peer_headers[i]);
    return MP_FILTER_CONTINUE;
}

const struct mp_http_filter_ops mp_http_filter_istio_metadata_exchange = {
    .name = "istio.metadata_exchange",
    .config_type = "io.istio.http.peer_metadata.Config",
    .parse = mx_parse,
    .config_free = no_free,
    .on_request_headers = mx_strip,
    .on_response_headers = mx_strip,
};

/* ---- istio.alpn ---------------------------------------------------------- */

/* istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig has no C type
 * here (its .proto is Istio's, not Envoy's), so its two small messages are
 * read off the wire:
 *   FilterConfig { repeated AlpnOverride alpn_override = 1; }
 *   AlpnOverride { Protocol upstream_protocol = 1; repeated string alpn_override = 2; } */

struct wire {
    const uint8_t *p, *end;
};

static int wire_varint(struct wire *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return MP_ERR_INVAL;
}

/* Reads one field: its number, wire type, and (length-delimited) bytes or
 * (varint) value. Unknown wire types 1 and 5 are skipped as proto3 does. */
static int wire_field(struct wire *w, uint32_t *num, int *type, struct wire *sub, uint64_t *val)
{
    uint64_t key;
    if (wire_varint(w, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return MP_ERR_INVAL;
    *num = (uint32_t)(key >> 3);
    *type = (int)(key & 7);
    switch (*type) {
    case 0: return wire_varint(w, val);
    case 1:
    case 5: {
        size_t n = *type == 1 ? 8 : 4;
        if ((size_t)(w->end - w->p) < n)
            return MP_ERR_INVAL;
        w->p += n;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (wire_varint(w, &n) < 0 || n > (uint64_t)(w->end - w->p))
            return MP_ERR_INVAL;
        sub->p = w->p;
        sub->end = w->p + n;
        w->p += n;
        return 0;
    }
    default: return MP_ERR_INVAL;
    }
}

static int alpn_check_override(struct wire o, size_t i, size_t *n_alpn, char **err)
{
    while (o.p < o.end) {
        uint32_t num;
        int type;
        struct wire sub = {0};
        uint64_t val = 0;
        if (wire_field(&o, &num, &type, &sub, &val) < 0)
            return mp_set_err(err, "alpn_override[%zu]: malformed", i);
        if (num == 1 && (type != 0 || val > 2))
            return mp_set_err(err, "alpn_override[%zu].upstream_protocol: unknown value", i);
        if (num == 2) {
            if (type != 2 || sub.p == sub.end)
                return mp_set_err(err, "alpn_override[%zu].alpn_override: empty protocol", i);
            (*n_alpn)++;
        }
    }
    return 0;
}

static atomic_bool said_alpn;

static int alpn_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    struct wire w = {data, data + len};
    size_t n = 0, n_alpn = 0;
    while (data && w.p < w.end) {
        uint32_t num;
        int type;
        struct wire sub = {0};
        uint64_t val = 0;
        if (wire_field(&w, &num, &type, &sub, &val) < 0)
            return mp_set_err(err, "cannot decode istio.alpn FilterConfig");
        if (num != 1)
            continue;
        if (type != 2)
            return mp_set_err(err, "alpn_override[%zu]: malformed", n);
        int rc = alpn_check_override(sub, n, &n_alpn, err);
        if (rc < 0)
            return rc;
        n++;
    }
    /* The override picks the TLS ALPN offered upstream by HTTP version, so
     * a peer sidecar can choose a filter chain by it. meshproxy offers the
     * cluster's alpn_protocols instead (istiod: "istio", minus
     * "istio-peer-exchange"); a peer's chains for declared HTTP ports match
     * on port and TLS only, so only its protocol-sniffing chains for
     * undeclared ports see the difference. Said aloud, not hidden. */
    if (!atomic_exchange_explicit(&said_alpn, true, memory_order_relaxed))
        MP_LOG_WARN_(MP_LOG_CONFIG,
                     "istio.alpn: accepted (%zu overrides, %zu protocols); the per-HTTP-version "
                     "upstream ALPN override is not applied: the cluster's alpn_protocols are "
                     "offered",
                     n, n_alpn);
    *config = &no_config;
    return 0;
}

const struct mp_http_filter_ops mp_http_filter_istio_alpn = {
    .name = "istio.alpn",
    .config_type = "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
    .parse = alpn_parse,
    .config_free = no_free,
};

/* ---- TypedStruct --------------------------------------------------------- */

bool mp_istio_ext_takes_typed_struct(const char *config_type)
{
    static const char *const types[] = {
        "stats.PluginConfig",
        "io.istio.http.peer_metadata.Config",
        "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
        "envoy.tcp.metadataexchange.config.MetadataExchange",
        "envoy.extensions.filters.http.cors.v3.Cors",
    };
    if (!config_type)
        return false;
    for (size_t i = 0; i < MP_ARRAY_LEN(types); i++)
        if (strcmp(types[i], config_type) == 0)
            return true;
    return false;
}

int mp_istio_ext_typed_struct_type(const char *type_url, const uint8_t *data, size_t len,
                                   char **inner, char **err)
{
    *inner = NULL;
    if (!type_url)
        return 0;
    const char *slash = strrchr(type_url, '/');
    const char *t = slash ? slash + 1 : type_url;
    bool have = false;
    if (strcmp(t, "udpa.type.v1.TypedStruct") == 0) {
        Udpa__Type__V1__TypedStruct *ts = udpa__type__v1__typed_struct__unpack(NULL, len, data);
        if (!ts)
            return mp_set_err(err, "cannot decode udpa.type.v1.TypedStruct");
        have = ts->type_url && *ts->type_url;
        *inner = have ? strdup(ts->type_url) : NULL;
        udpa__type__v1__typed_struct__free_unpacked(ts, NULL);
    } else if (strcmp(t, "xds.type.v3.TypedStruct") == 0) {
        Xds__Type__V3__TypedStruct *ts = xds__type__v3__typed_struct__unpack(NULL, len, data);
        if (!ts)
            return mp_set_err(err, "cannot decode xds.type.v3.TypedStruct");
        have = ts->type_url && *ts->type_url;
        *inner = have ? strdup(ts->type_url) : NULL;
        xds__type__v3__typed_struct__free_unpacked(ts, NULL);
    } else {
        return 0;
    }
    if (!have)
        return mp_set_err(err, "TypedStruct: type_url is required");
    return *inner ? 1 : MP_ERR_NOMEM;
}
