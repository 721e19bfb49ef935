/*
 * type_registry.h: type URL -> protobuf-c descriptor, for google.protobuf.Any.
 */
#ifndef MP_TYPE_REGISTRY_H
#define MP_TYPE_REGISTRY_H

#include <protobuf-c/protobuf-c.h>

/**
 * Finds the descriptor for a type URL ("type.googleapis.com/envoy.config.
 * cluster.v3.Cluster") or a bare full name ("envoy.config.cluster.v3.Cluster").
 * Anything up to the last '/' is ignored, as the proto3 JSON mapping says.
 * Returns a static descriptor, or NULL when the type is not compiled in.
 */
const ProtobufCMessageDescriptor *mp_type_registry_find(const char *type_url);

/** Number of message types known (for tests and diagnostics). */
size_t mp_type_registry_size(void);

#endif
