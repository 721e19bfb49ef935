/*
 * xds_translate_cluster.h: CDS Cluster and EDS ClusterLoadAssignment protos
 * -> struct mp_cluster / struct mp_host_set (proxy/cluster.h).
 *
 * Validation follows Envoy: what Envoy rejects is rejected here, with a
 * message that starts with the field path inside the resource, e.g.
 * "load_assignment.endpoints[0].lb_endpoints[1].endpoint.address.
 * socket_address.port_value: port 70000 out of range". Callers prefix the
 * resource's own position ("clusters[2]") with mp_err_prefix.
 */
#ifndef MP_XDS_TRANSLATE_CLUSTER_H
#define MP_XDS_TRANSLATE_CLUSTER_H

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "proxy/cluster.h"

/**
 * Translates a Cluster. On success *out holds a new cluster with one
 * reference (mp_cluster_free); the proto is not referenced afterwards.
 * STATIC clusters get their hosts in (*out)->static_hosts; STRICT_DNS and
 * LOGICAL_DNS their names in dns_targets. Returns 0, MP_ERR_NOMEM, or
 * MP_ERR_INVAL with *err (caller frees) naming the field.
 */
int mp_cluster_from_proto(const Envoy__Config__Cluster__V3__Cluster *pb, struct mp_cluster **out,
                          char **err);

/**
 * Translates a ClusterLoadAssignment (from EDS, or a cluster's inline
 * load_assignment) whose addresses must all be IP literals or pipes. On
 * success *out holds a host set with one reference (mp_host_set_free).
 * Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL with *err naming the field.
 */
int mp_host_set_from_cla(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *pb,
                         struct mp_host_set **out, char **err);

#endif
