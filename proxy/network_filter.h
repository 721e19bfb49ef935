/*
 * network_filter.h: the non-terminal network filter interface.
 *
 * A listener filter chain runs zero or more non-terminal network filters
 * (envoy.filters.network.local_ratelimit, envoy.filters.network.rbac, ...)
 * and then exactly one terminal filter (http_connection_manager or
 * tcp_proxy, see xds/xds_translate_listener.h). A network filter is a
 * `const struct mp_network_filter_ops` registered by its Envoy extension name
 * in filters/network_registry.c (one line a filter). Its config is parsed
 * once from the typed_config Any bytes into an immutable struct shared by all
 * workers (anything it mutates at run time, such as a token bucket, must be
 * atomic: no locks on the data path).
 *
 * on_new_connection runs on the worker, in configuration order, when a
 * connection has been matched to its filter chain (after the listener filters,
 * before TLS and before the terminal filter starts). A filter returns
 * MP_NETWORK_FILTER_CONTINUE to let the next one run, or
 * MP_NETWORK_FILTER_CLOSE to close the connection at once (nothing is sent;
 * the terminal filter never starts).
 */
#ifndef MP_NETWORK_FILTER_H
#define MP_NETWORK_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_conn; /* proxy/conn.h: c->w (worker, stats slot c->w->index, c->w->stats),
                   c->src / c->dst (peer / local address), c->remote, c->local */

enum mp_network_filter_status {
    MP_NETWORK_FILTER_CONTINUE = 0,
    MP_NETWORK_FILTER_CLOSE = 1,
};

struct mp_network_filter_ops {
    const char *name; /* "envoy.filters.network.local_ratelimit" */
    /* full message name: "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit" */
    const char *config_type;
    /*
     * Turns typed_config's Any value bytes into *config (owned by the caller,
     * freed with config_free). NULL data with len 0 means "no typed_config".
     * Returns 0, or a negative MP_ERR_* with *err set to a message (the
     * caller prefixes the field path).
     */
    int (*parse)(const uint8_t *data, size_t len, void **config, char **err);
    void (*config_free)(void *config);
    /*
     * A new connection on a chain that lists this filter (worker thread).
     * config is what parse made. Returns MP_NETWORK_FILTER_CONTINUE or
     * MP_NETWORK_FILTER_CLOSE.
     */
    int (*on_new_connection)(const void *config, struct mp_conn *c);
    /*
     * Optional. On a TLS filter chain, runs once the handshake has completed
     * and before the first decrypted byte reaches the terminal filter: the
     * verified peer (mp_tls_transport_peer(c->tls)) and the SNI are known.
     * Returns MP_NETWORK_FILTER_CONTINUE or MP_NETWORK_FILTER_CLOSE.
     */
    int (*on_tls_established)(const void *config, struct mp_conn *c);
};

/** One configured non-terminal network filter of a filter chain. */
struct mp_network_filter_config {
    const struct mp_network_filter_ops *ops;
    void *config; /* owned; freed with ops->config_free */
    char *name;   /* the name the user gave (filters[i].name) */
};

/**
 * Finds a registered network filter by typed_config type URL / full message
 * name (which decides, as in Envoy) or else by extension name. Returns a
 * static table entry, or NULL.
 */
const struct mp_network_filter_ops *mp_network_filter_find(const char *name, const char *type_url);

/** Number of network filters in the registry (filters/network_registry.c). */
size_t mp_network_filter_registry_size(void);

/** Returns registry entry i, or NULL when i >= mp_network_filter_registry_size(). */
const struct mp_network_filter_ops *mp_network_filter_registry_at(size_t i);

/**
 * Runs on_new_connection of filters[0..n) in order on c. Returns
 * MP_NETWORK_FILTER_CONTINUE when all continue, or MP_NETWORK_FILTER_CLOSE
 * as soon as one asks to close (the caller closes c).
 */
int mp_network_filters_on_new_connection(const struct mp_network_filter_config *filters, size_t n,
                                         struct mp_conn *c);

/**
 * Runs on_tls_established of filters[0..n) in order on c (TLS chains, after
 * the handshake). Returns as mp_network_filters_on_new_connection.
 */
int mp_network_filters_on_tls_established(const struct mp_network_filter_config *filters, size_t n,
                                          struct mp_conn *c);

/** Frees filters[0..n) (configs and names) and the array; NULL is a no-op. */
void mp_network_filters_free(struct mp_network_filter_config *filters, size_t n);

#endif
