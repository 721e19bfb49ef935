/*
 * ads_session.h: the xDS protocol state of one stream's session, without
 * the network: per-type versions, nonces, subscriptions and accepted
 * resources; responses in, requests out. xds_client.c moves the bytes;
 * the unit tests drive it directly.
 *
 * Usage: mp_ads_session_stream_start() when a stream opens, then feed each
 * received message to mp_ads_session_on_message() and send whatever
 * mp_ads_session_next_request() gives, in order, until it has nothing.
 * Not thread-safe: one thread (the grpc thread) owns a session.
 */
#ifndef MP_ADS_SESSION_H
#define MP_ADS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xds_client.h"

struct mp_ads_session;

struct mp_ads_session_config {
    enum mp_xds_mode mode;
    const Envoy__Config__Core__V3__Node *node; /* copied; sent as given */
    const char *const *type_urls;              /* subscription order; at least one */
    size_t n_type_urls;
    const bool *named_only; /* NULL: RDS, EDS and Secret named, others wildcard */
    const struct mp_xds_watcher_ops *ops;
    void *ctx;
};

/**
 * Creates a session. Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL with *err
 * (no types, duplicate type, missing ops). *out is freed with
 * mp_ads_session_free.
 */
int mp_ads_session_new(const struct mp_ads_session_config *cfg, struct mp_ads_session **out,
                       char **err);

/** Frees the session and everything queued in it. NULL is a no-op. */
void mp_ads_session_free(struct mp_ads_session *s);

/**
 * A new stream is open: forgets the old stream's nonces, queues the node
 * and the first request of each type that has something to ask (SotW with
 * the accepted version_info; delta with initial_resource_versions).
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_ads_session_stream_start(struct mp_ads_session *s);

/** The stream closed: drops unsent requests. */
void mp_ads_session_stream_end(struct mp_ads_session *s);

/**
 * Processes one serialized DiscoveryResponse (SotW) or
 * DeltaDiscoveryResponse (delta): decodes, hands the update to the watcher
 * and queues the ACK or NACK, then any subscription changes that follow
 * from what was accepted. A response for a type not configured is ignored.
 * Returns 0, MP_ERR_NOMEM, or MP_ERR_PROTO when the message does not
 * decode (the stream should be reset).
 */
int mp_ads_session_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len);

/**
 * Pops the next request to send: *buf (malloc'd, the caller frees it) and
 * *len. Returns 0, or MP_ERR_NOTFOUND when nothing is queued.
 */
int mp_ads_session_next_request(struct mp_ads_session *s, uint8_t **buf, size_t *len);

/** True when a request is queued. */
bool mp_ads_session_has_request(const struct mp_ads_session *s);

/**
 * Sets the explicit names of type_url (see mp_xds_client_subscribe); queues
 * a request when the subscription changed and a stream is open. Returns 0,
 * MP_ERR_NOMEM or MP_ERR_NOTFOUND.
 */
int mp_ads_session_set_names(struct mp_ads_session *s, const char *type_url,
                             const char *const *names, size_t n);

/**
 * Subscribed names of type_url not received yet; *names malloc'd array of
 * malloc'd strings (free with mp_xds_names_free). Returns 0, MP_ERR_NOMEM
 * or MP_ERR_NOTFOUND.
 */
int mp_ads_session_pending_names(const struct mp_ads_session *s, const char *type_url,
                                 char ***names, size_t *n);

/**
 * The accepted SotW version_info of type_url ("" before any), or NULL for
 * an unknown type. Owned by the session.
 */
const char *mp_ads_session_version(const struct mp_ads_session *s, const char *type_url);

/**
 * The version of accepted resource name of type_url, or NULL when not
 * held. Owned by the session.
 */
const char *mp_ads_session_held_version(const struct mp_ads_session *s, const char *type_url,
                                        const char *name);

/** Number of resources of type_url held (accepted and not removed). */
size_t mp_ads_session_held_count(const struct mp_ads_session *s, const char *type_url);

/** Number of configured types. */
size_t mp_ads_session_n_types(const struct mp_ads_session *s);

/** Type URL of configured type i (owned by the session). */
const char *mp_ads_session_type_url(const struct mp_ads_session *s, size_t i);

/** True when type i has been requested but no response for it ever came. */
bool mp_ads_session_type_waiting(const struct mp_ads_session *s, size_t i);

#endif
