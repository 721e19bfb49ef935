/*
 * istio_ext.h: the Istio-specific extensions istiod puts on every sidecar,
 * which an Envoy-compatible proxy must accept.
 *
 * HTTP filters (config type -> behaviour):
 *   istio.metadata_exchange  io.istio.http.peer_metadata.Config
 *       consumes the peer-metadata headers (x-envoy-peer-metadata,
 *       x-envoy-peer-metadata-id) on requests and responses so the
 *       application never sees them; propagates none (telemetry identity only)
 *   istio.stats              stats.PluginConfig                 telemetry: no-op
 *   envoy.filters.http.grpc_stats
 *                            envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
 *                                                               telemetry: no-op
 *   istio.alpn               istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig
 *       validated; the upstream ALPN override is not applied (see istio_ext.c)
 * Network filters:
 *   istio.stats              stats.PluginConfig                 telemetry: no-op
 *   istio.metadata_exchange  envoy.tcp.metadataexchange.config.MetadataExchange
 *       no-op: meshproxy never negotiates the "istio-peer-exchange" ALPN the
 *       in-band exchange needs (xds_translate_* drop it from ALPN lists), so
 *       the peer never starts the exchange
 * Each no-op logs one line (per process) when its config is first accepted.
 */
#ifndef MP_FILTERS_ISTIO_EXT_H
#define MP_FILTERS_ISTIO_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http_filter.h"
#include "proxy/network_filter.h"

extern const struct mp_http_filter_ops mp_http_filter_istio_metadata_exchange;
extern const struct mp_http_filter_ops mp_http_filter_istio_stats;
extern const struct mp_http_filter_ops mp_http_filter_grpc_stats;
extern const struct mp_http_filter_ops mp_http_filter_istio_alpn;
extern const struct mp_network_filter_ops mp_network_filter_istio_stats;
extern const struct mp_network_filter_ops mp_network_filter_istio_metadata_exchange;

/** The ALPN token of Istio's in-band TCP metadata exchange. */
#define MP_ISTIO_PEER_EXCHANGE_ALPN "istio-peer-exchange"

/**
 * True when a filter's config may arrive wrapped in a TypedStruct (udpa or
 * xds): the filter does not read its config, so the Struct form loses
 * nothing. Other filters must get their own proto type.
 */
bool mp_istio_ext_takes_typed_struct(const char *config_type);

/**
 * If type_url names a TypedStruct (udpa.type.v1 or xds.type.v3), reads the
 * type_url it wraps from the Any value bytes. Returns 1 and points *inner at
 * a malloc'd string (caller frees), 0 when type_url is not a TypedStruct, or
 * a negative MP_ERR_* (MP_ERR_INVAL: the bytes do not decode; *err set).
 */
int mp_istio_ext_typed_struct_type(const char *type_url, const uint8_t *data, size_t len,
                                   char **inner, char **err);

#endif
