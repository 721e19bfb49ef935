/*
 * xds_source.h: where an xDS client connects, read from the bootstrap the
 * way Envoy reads it: dynamic_resources.ads_config (or any
 * api_config_source, such as an SDS sds_config) names a gRPC service whose
 * envoy_grpc cluster is a static cluster with one endpoint (Istio: a Unix
 * socket pipe), or a google_grpc target_uri.
 */
#ifndef MP_XDS_SOURCE_H
#define MP_XDS_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "xds_client.h"

struct mp_xds_source {
    char *target;                     /* "host:port", "[v6]:port" or "unix:path" (malloc'd) */
    enum mp_xds_mode mode;            /* from api_type: *DELTA_GRPC = delta */
    bool aggregated;                  /* AGGREGATED_GRPC / AGGREGATED_DELTA_GRPC */
    int64_t initial_fetch_timeout_ms; /* from the ConfigSource; Envoy's default 15 s */
};

/**
 * Fills *out from api (an ApiConfigSource of bootstrap b) and, when cs is
 * not NULL, the ConfigSource around it (its initial_fetch_timeout). Returns
 * 0, MP_ERR_NOMEM, MP_ERR_UNSUPPORTED (REST) or MP_ERR_INVAL with *err naming
 * the field ("grpc_services[0].envoy_grpc.cluster_name: no static cluster
 * \"xds-grpc\""). Free with mp_xds_source_clear.
 */
int mp_xds_source_from_api(const Envoy__Config__Bootstrap__V3__Bootstrap *b,
                           const Envoy__Config__Core__V3__ApiConfigSource *api,
                           const Envoy__Config__Core__V3__ConfigSource *cs,
                           struct mp_xds_source *out, char **err);

/**
 * The ADS source of bootstrap b: dynamic_resources.ads_config, with the
 * initial_fetch_timeout of cds_config (else lds_config). Returns
 * MP_ERR_NOTFOUND when the bootstrap has no ads_config, else as
 * mp_xds_source_from_api (errors prefixed "dynamic_resources.ads_config").
 */
int mp_xds_source_ads(const Envoy__Config__Bootstrap__V3__Bootstrap *b, struct mp_xds_source *out,
                      char **err);

/** Frees what *src holds and zeroes it. */
void mp_xds_source_clear(struct mp_xds_source *src);

#endif
