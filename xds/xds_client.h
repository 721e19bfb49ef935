/*
 * xds_client.h: the xDS client: one gRPC stream to a control plane (ADS, or
 * a per-type stream such as SDS from an api_config_source), speaking state
 * of the world (SotW) or delta, exactly as Envoy does.
 *
 * The client owns the protocol: node on the first request, per-type
 * version_info / nonce / subscribed names, ACK and NACK, removal, reconnect
 * with jittered exponential backoff, versions resent on reconnect,
 * initial_fetch_timeout. It hands decoded resources to a consumer through
 * struct mp_xds_watcher_ops; the consumer validates the whole update and
 * returns 0 (ACK) or an error with text (NACK; the text becomes the NACK's
 * error_detail.message). Everything here, decoding included, runs on the
 * grpc thread (xds/grpc_thread.h); never on a worker.
 *
 * Subscriptions: LDS and CDS are wildcard. RDS and EDS names follow the
 * accepted resources: the route_config_name of every HCM using rds in the
 * accepted Listeners, and the EDS service name (eds_cluster_config.
 * service_name, else the cluster name) of every accepted EDS Cluster. More
 * names (SDS secrets, for one) are added with mp_xds_client_subscribe.
 */
#ifndef MP_XDS_CLIENT_H
#define MP_XDS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "envoy/config/core/v3/base.pb-c.h"

struct mp_grpc_thread;
struct mp_xds_client;

#define MP_XDS_TYPE_PREFIX   "type.googleapis.com/"
#define MP_XDS_TYPE_LISTENER "type.googleapis.com/envoy.config.listener.v3.Listener"
#define MP_XDS_TYPE_ROUTE    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
#define MP_XDS_TYPE_CLUSTER  "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define MP_XDS_TYPE_ENDPOINT "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define MP_XDS_TYPE_SECRET   "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

#define MP_XDS_ADS_SOTW_METHOD                                                                     \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MP_XDS_ADS_DELTA_METHOD                                                                    \
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define MP_XDS_SDS_SOTW_METHOD  "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets"
#define MP_XDS_SDS_DELTA_METHOD "/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets"

/* What the client reports as node.user_agent_name. */
#define MP_XDS_USER_AGENT_NAME "meshproxy"

enum mp_xds_mode {
    MP_XDS_SOTW = 0,  /* DiscoveryRequest / DiscoveryResponse */
    MP_XDS_DELTA = 1, /* DeltaDiscoveryRequest / DeltaDiscoveryResponse */
};

/* One resource of an update. Everything is owned by the client and valid
 * only during on_update: copy what you keep. */
struct mp_xds_resource {
    const char *name;
    const char *version;  /* SotW: the response's version_info; delta: the resource's */
    const char *type_url; /* always the update's type_url */
    const uint8_t *data;  /* serialized message (the Any's value) */
    size_t len;
    const ProtobufCMessage *msg; /* data unpacked with the type registry's descriptor */
};

enum mp_xds_update_kind {
    /* A response from the server: the return value of on_update is the ACK
     * (0) or NACK (negative, with *err_out). */
    MP_XDS_UPDATE_RESPONSE = 0,
    /* Names dropped by the client itself because nothing refers to them any
     * more (SotW RDS/EDS, or unsubscribed names): resources is empty and the
     * return value is ignored. */
    MP_XDS_UPDATE_UNSUBSCRIBED = 1,
};

struct mp_xds_update {
    const char *type_url;
    enum mp_xds_update_kind kind;
    enum mp_xds_mode mode;
    const char *version_info; /* SotW version_info; delta system_version_info */
    const char *nonce;
    /* Added or changed resources. For SotW LDS/CDS this is the full set. */
    const struct mp_xds_resource *resources;
    size_t n_resources;
    /* Names removed: delta removed_resources that the client held, or (SotW
     * LDS/CDS) held names absent from the response. */
    const char *const *removed;
    size_t n_removed;
    /* True when resources is the complete set of the type (SotW LDS/CDS and
     * other wildcard types): anything not in it and not in removed is gone
     * too. False for delta and for named (RDS/EDS/SDS) responses. */
    bool complete;
};

struct mp_xds_watcher_ops {
    /*
     * Validates and applies one update of one type. Runs on the grpc thread.
     * Return 0 to ACK, or a negative MP_ERR_* and set *err_out to a malloc'd
     * message naming the resource and field (freed by the client) to NACK;
     * on NACK the client keeps its previous version and resources for the
     * type. Required.
     */
    int (*on_update)(void *ctx, const struct mp_xds_update *up, char **err_out);
    /* initial_fetch_timeout passed before the first response of type_url
     * arrived: stop waiting for it (Envoy marks the type initialised).
     * Optional. */
    void (*on_fetch_timeout)(void *ctx, const char *type_url);
    /* The stream came up (first response received) or went down. Optional. */
    void (*on_connection)(void *ctx, bool connected);
};

struct mp_xds_client_config {
    const char *target; /* "host:port" or "unix:/path" (copied) */
    const char *method; /* gRPC method path; NULL = the ADS method for mode */
    enum mp_xds_mode mode;
    /* Node sent on the first request of each stream (copied; NULL = empty
     * node). user_agent_name, user_agent_version and client_features are
     * set by the client. */
    const Envoy__Config__Core__V3__Node *node;
    /* Types to subscribe, in the order their first requests go out. NULL =
     * CDS, EDS, LDS, RDS (the make-before-break order). */
    const char *const *type_urls;
    size_t n_type_urls;
    /* Per type: explicitly named, not wildcard (true for RDS, EDS and SDS
     * by default; ignored when NULL). Same length as type_urls. */
    const bool *named_only;
    int64_t initial_fetch_timeout_ms; /* 0 = wait forever (Istio's setting) */
    int64_t backoff_base_ms;          /* 0 = 500 */
    int64_t backoff_max_ms;           /* 0 = 30000 */
    const struct mp_xds_watcher_ops *ops;
    void *ctx;
};

/**
 * Creates a client (not yet connected) bound to grpc thread gt. Copies cfg.
 * *out is freed with mp_xds_client_free. Returns 0, MP_ERR_NOMEM, or
 * MP_ERR_INVAL with *err naming the bad field.
 */
int mp_xds_client_new(struct mp_grpc_thread *gt, const struct mp_xds_client_config *cfg,
                      struct mp_xds_client **out, char **err);

/**
 * Opens the stream (on the grpc thread) and keeps it open, reconnecting
 * with backoff, until mp_xds_client_free. Any thread. Returns 0 or the
 * error of mp_grpc_thread_post.
 */
int mp_xds_client_start(struct mp_xds_client *c);

/**
 * Cancels the stream, waits for grpc to release it and frees the client.
 * Any thread except the grpc thread; must come before mp_grpc_thread_free.
 * NULL is a no-op.
 */
void mp_xds_client_free(struct mp_xds_client *c);

/**
 * Sets the explicitly wanted names of type_url (replacing earlier explicit
 * names; names derived from accepted resources stay). The names are copied
 * and a request goes out if the set changed. Any thread. Returns 0,
 * MP_ERR_NOMEM, MP_ERR_NOTFOUND (type not configured) or MP_ERR_CLOSED.
 */
int mp_xds_client_subscribe(struct mp_xds_client *c, const char *type_url, const char *const *names,
                            size_t n);

/**
 * Names of type_url that are subscribed but have not arrived yet (what the
 * consumer is still warming on). *names is a malloc'd array of malloc'd
 * strings, freed with mp_xds_names_free. Grpc thread only (e.g. from
 * on_update). Returns 0, MP_ERR_NOMEM or MP_ERR_NOTFOUND.
 */
int mp_xds_client_pending_names(struct mp_xds_client *c, const char *type_url, char ***names,
                                size_t *n);

/** Frees an array returned by mp_xds_client_pending_names. */
void mp_xds_names_free(char **names, size_t n);

/**
 * Copies the last accepted version_info of type_url into buf (empty when
 * none), for admin and tests. Grpc thread only. Returns 0 or
 * MP_ERR_NOTFOUND.
 */
int mp_xds_client_version(struct mp_xds_client *c, const char *type_url, char *buf, size_t buflen);

/**
 * The gRPC method for a per-type (non-aggregated) stream of type_url, e.g.
 * the SDS StreamSecrets/DeltaSecrets method for an api_config_source.
 * Returns a static string, or NULL for an unknown type.
 */
const char *mp_xds_method_for_type(const char *type_url, enum mp_xds_mode mode);

#endif
