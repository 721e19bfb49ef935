/*
 * ads_session_int.h: the session's types, shared by ads_session.c (the
 * bookkeeping) and the two wire variants ads_sotw.c and ads_delta.c. Not
 * for use outside xds/ads_*.
 */
#ifndef MP_ADS_SESSION_INT_H
#define MP_ADS_SESSION_INT_H

#include "ads_names.h"
#include "ads_session.h"
#include "google/protobuf/any.pb-c.h"

/* An accepted resource. */
struct ads_held {
    char *name;
    char *version;
    struct mp_ads_names deps; /* names it refers to in the child type */
};

struct ads_type {
    char *type_url;
    bool wildcard;
    int child;  /* index of the type this one's resources name, or -1 */
    int parent; /* index of the type whose resources name this one's, or -1 */
    struct mp_ads_names explicit_names;
    struct mp_ads_names wanted; /* explicit + derived from the parent's held */
    struct ads_held *held;      /* sorted by name */
    size_t n_held, cap_held;
    char *version;            /* SotW: last accepted version_info */
    char *nonce;              /* last response nonce of this stream */
    bool sent;                /* a request went out on this stream */
    struct mp_ads_names told; /* delta: names the server has from us */
    bool requested_ever;
    bool received_ever;
};

struct ads_msg {
    struct ads_msg *next;
    size_t len;
    uint8_t buf[];
};

struct mp_ads_session {
    enum mp_xds_mode mode;
    ProtobufCMessage *node; /* Envoy__Config__Core__V3__Node, unpacked copy */
    bool node_sent;
    bool streaming;
    struct ads_type *types;
    size_t n_types;
    struct ads_msg *q_head;
    struct ads_msg **q_tail;
    const struct mp_xds_watcher_ops *ops;
    void *ctx;
};

/* A decoded resource with what it takes to free it. */
struct ads_decoded {
    struct mp_xds_resource *res; /* n entries */
    ProtobufCMessage **msgs;     /* unpacked messages to free (n entries, may be NULL) */
    ProtobufCMessage **wrappers; /* unpacked Resource wrappers (SotW), may be NULL */
    struct mp_ads_names *deps;   /* per resource */
    size_t n;
};

struct ads_type *mp_ads_type_find(struct mp_ads_session *s, const char *type_url);
struct ads_held *mp_ads_held_find(const struct ads_type *t, const char *name);

/* Packs req and appends it to the send queue. 0 or MP_ERR_NOMEM. */
int mp_ads_queue_push(struct mp_ads_session *s, const ProtobufCMessage *req);

/* Queues the next request for t: an ACK/NACK of nonce when nonce is not
 * NULL (error NULL = ACK), else a subscription request. */
int mp_ads_queue_request(struct mp_ads_session *s, struct ads_type *t, const char *nonce,
                         const char *error);

/* Allocates room for n decoded resources. 0 or MP_ERR_NOMEM. */
int mp_ads_decoded_init(struct ads_decoded *d, size_t n);
void mp_ads_decoded_free(struct ads_decoded *d);

/* Decodes resource index i of a response of type t from any into d->res[i]
 * (name from the message unless name_hint is non-empty). On failure
 * returns an error and sets *err to a message naming resources[i]. */
int mp_ads_decode_any(struct ads_type *t, const Google__Protobuf__Any *any, const char *name_hint,
                      const char *version, struct ads_decoded *d, size_t i, char **err);

/* Checks that no name appears twice in d. 0, or MP_ERR_INVAL with *err. */
int mp_ads_check_duplicates(const struct ads_decoded *d, char **err);

/* Records an accepted resource (copies name, version; takes *deps). */
int mp_ads_held_put(struct ads_type *t, const char *name, const char *version,
                    struct mp_ads_names *deps);
void mp_ads_held_remove(struct ads_type *t, const char *name);

/* After t's held set changed: recomputes the child's wanted names and
 * queues what follows. 0 or MP_ERR_NOMEM. */
int mp_ads_update_child(struct mp_ads_session *s, struct ads_type *t);

#endif
