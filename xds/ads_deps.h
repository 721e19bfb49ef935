/*
 * ads_deps.h: the names one xDS resource makes the client subscribe to:
 * a Listener's HCMs name RouteConfigurations (rds.route_config_name), an
 * EDS Cluster names a ClusterLoadAssignment.
 */
#ifndef MP_ADS_DEPS_H
#define MP_ADS_DEPS_H

#include <protobuf-c/protobuf-c.h>

#include "ads_names.h"

/**
 * The type URL whose names resources of type_url refer to (Listener ->
 * RouteConfiguration, Cluster -> ClusterLoadAssignment), or NULL.
 */
const char *mp_ads_deps_child_type(const char *type_url);

/**
 * Adds to out the names that msg (a decoded resource of type_url) refers
 * to in its child type. A Listener filter whose typed_config is not an HCM
 * or does not unpack contributes nothing (the consumer's validation
 * reports that). Returns 0 or MP_ERR_NOMEM.
 */
int mp_ads_deps_collect(const char *type_url, const ProtobufCMessage *msg,
                        struct mp_ads_names *out);

#endif
