/*
 * xds_translate_listener.h: Listener proto -> immutable struct mp_listener_config.
 *
 * Supported: socket_address (IPv4/IPv6), filter_chains with filter_chain_match
 * (destination_port, server_names, transport_protocol, application_protocols),
 * default_filter_chain, traffic_direction, and in each chain the
 * non-terminal network filters of filters/network_registry.c followed by one
 * terminal network filter: envoy.filters.network.http_connection_manager or
 * envoy.filters.network.tcp_proxy (cluster or weighted_clusters). Errors name the field path
 * ("filter_chains[0].filters[0].typed_config.http_filters[1]: unknown filter ...").
 */
#ifndef MP_XDS_TRANSLATE_LISTENER_H
#define MP_XDS_TRANSLATE_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "filters/listener/listener_filters.h"
#include "proxy/filter_chain_match.h"
#include "proxy/http_filter.h"
#include "proxy/network_filter.h"

struct mp_route_config;
struct mp_tls_context;
struct mp_tls_config;
struct mp_access_log;
struct mp_hcm_stats;
struct mp_tracing_config;
struct mp_tcp_stats;
struct mp_listener_stats;

enum mp_codec_type {
    MP_CODEC_AUTO = 0,
    MP_CODEC_HTTP1 = 1,
    MP_CODEC_HTTP2 = 2,
};

/** An http_connection_manager, translated. */
struct mp_hcm_config {
    enum mp_codec_type codec;
    char *stat_prefix;
    struct mp_route_config *route_config;  /* inline route_config (one ref), or NULL */
    char *rds_name;                        /* rds.route_config_name, or NULL */
    struct mp_http_filter_config *filters; /* in order; the router is last */
    size_t n_filters;
    char *server_name; /* "server" response header value; default "meshproxy" */
    bool use_remote_address;
    uint32_t xff_num_trusted_hops;
    bool generate_request_id;              /* default true */
    uint8_t xfcc_mode;    /* forward_client_cert_details: enum mp_xfcc_mode (proxy/tls_xfcc.h) */
    uint8_t xfcc_details; /* set_current_client_cert_details: MP_XFCC_* bits */
    char *via;                             /* appended to Via when set */
    uint32_t max_request_headers_kb;       /* default 60 */
    uint32_t max_headers_count;            /* default 100 */
    uint64_t idle_timeout_ms;              /* connection idle; default 3600000; 0 = none */
    uint64_t stream_idle_timeout_ms;       /* default 300000; 0 = none */
    uint64_t request_timeout_ms;           /* 0 = none */
    uint64_t drain_timeout_ms;             /* default 5000 */
    uint32_t h2_max_concurrent_streams;    /* default 2147483647 */
    uint32_t h2_initial_stream_window;     /* default 268435456 */
    uint32_t h2_initial_connection_window; /* default 268435456 */
    struct mp_access_log **access_logs;
    size_t n_access_logs;
    struct mp_hcm_stats *stats; /* resolved at publication (proxy/http_stats.h) */
    struct mp_tracing_config *tracing; /* HCM tracing (proxy/tracing.h), or NULL: no tracing */
};

/** One entry of tcp_proxy weighted_clusters. */
struct mp_tcp_weighted_cluster {
    char *name;
    uint32_t weight; /* >= 1 */
};

/** A tcp_proxy, translated. */
struct mp_tcp_proxy_config {
    char *stat_prefix;
    char *cluster; /* cluster; NULL when weighted_clusters is used */
    struct mp_tcp_weighted_cluster *weighted_clusters; /* picked per connection by weight */
    size_t n_weighted_clusters;
    uint64_t total_weight;
    uint64_t idle_timeout_ms; /* default 3600000 */
    struct mp_access_log **access_logs;
    size_t n_access_logs;
    struct mp_tcp_stats *stats; /* resolved at publication (proxy/http_stats.h) */
};

struct mp_filter_chain {
    char *name;
    struct mp_fc_match match;         /* filter_chain_match (proxy/filter_chain_match.h) */
    struct mp_tls_config *tls_config; /* transport_socket TLS (server side), or NULL: plaintext */
    struct mp_tls_context *tls;       /* built from tls_config; NULL while an SDS secret is missing
                                         (the chain is warming and refuses connections) */
    /* non-terminal network filters (local_ratelimit, rbac, ...), in order,
       run at connection start before the terminal one (proxy/network_filter.h) */
    struct mp_network_filter_config *network_filters;
    size_t n_network_filters;
    /* the terminal network filter: exactly one of these */
    struct mp_hcm_config *hcm;
    struct mp_tcp_proxy_config *tcp_proxy;
};

enum mp_traffic_direction {
    MP_TRAFFIC_UNSPECIFIED = 0,
    MP_TRAFFIC_INBOUND = 1,
    MP_TRAFFIC_OUTBOUND = 2,
};

struct mp_listener_config {
    char *name;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *stat_name; /* "127.0.0.1_10000", as Envoy names listener stats */
    enum mp_traffic_direction direction;
    bool bind_to_port; /* default true */
    bool use_original_dst; /* hand connections to the listener of their original destination */
    struct mp_filter_chain *chains;
    size_t n_chains;
    struct mp_filter_chain *default_chain; /* or NULL */
    uint32_t per_connection_buffer_limit;  /* default 1 MiB */
    struct mp_listener_filters filters;    /* listener_filters (tls/http inspector, original_dst) */
    struct mp_listener_stats *stats;       /* resolved at publication (proxy/http_stats.h) */
    _Atomic uint32_t extra_refs; /* mp_listener_config_ref: snapshots sharing one translation */
    /* Which version of the resource this is (set by the xDS store; 0 for
     * static listeners). A translation redone only to pick up new SDS secrets
     * keeps the id, so connections of the one it replaces are not drained:
     * they keep their certificate, new connections get the new one (Envoy). */
    uint64_t config_id;
};

/**
 * Translates a Listener. Returns 0 and *out (free with
 * mp_listener_config_free), or a negative MP_ERR_* with *err set to a message
 * carrying the field path. Unsupported filters with is_optional are skipped.
 */
int mp_xds_translate_listener(const Envoy__Config__Listener__V3__Listener *l,
                              struct mp_listener_config **out, char **err);

/**
 * Drops one reference to a listener config (a fresh translation holds one);
 * the last frees it. NULL is a no-op.
 */
void mp_listener_config_free(struct mp_listener_config *l);

/**
 * Picks the cluster name of a tcp_proxy for one connection: cluster, or a
 * weighted_clusters entry chosen with probability weight / total_weight from
 * random (any 64-bit value). Returns a name owned by t.
 */
const char *mp_tcp_proxy_pick_cluster(const struct mp_tcp_proxy_config *t, uint64_t random);

/** Takes one more reference (any thread) and returns l. */
struct mp_listener_config *mp_listener_config_ref(struct mp_listener_config *l);

/**
 * Picks the filter chain for a connection with Envoy's match order
 * (mp_fc_select), falling back to default_chain. Returns NULL when none matches.
 */
const struct mp_filter_chain *mp_listener_match_chain(const struct mp_listener_config *l,
                                                      const struct mp_fc_conn *conn);

#endif
