/*
 * ads_test_util.h: helpers shared by the xDS session unit tests
 * (test_ads_sotw.c, test_ads_delta.c): build resources and responses, record
 * watcher calls, make sessions, pop and decode requests and check them.
 * ads_test_util.c is compiled into each of those tests (test/unit/meson.build).
 * Helpers that check use cmocka's assertions, so they fail the calling test.
 */
#ifndef MP_ADS_TEST_UTIL_H
#define MP_ADS_TEST_UTIL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xds/ads_session.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "proxy/mp_common.h"

#define MAX_SEEN 16

/* What the watcher saw, and what it should answer next. */
struct rec {
    int calls;
    int unsubscribed_calls;
    enum mp_xds_update_kind kind[MAX_SEEN];
    char *type_url[MAX_SEEN];
    char *names[MAX_SEEN];   /* resource names joined with ',' */
    char *removed[MAX_SEEN]; /* removed names joined with ',' */
    char *versions[MAX_SEEN];
    bool complete[MAX_SEEN];
    const char *nack_with; /* when set, the next update is NACKed with it */
};

/** Joins v[0..n) with ','; the caller frees the result. */
char *join_names(const char *const *v, size_t n);

/** The same for a char ** vector (a decoded request's names). */
char *joined(char **v, size_t n);

/** Watcher callbacks recording into the struct rec given as ctx. */
extern const struct mp_xds_watcher_ops rec_ops;

/** Frees what r recorded and zeroes it. */
void rec_free(struct rec *r);

/* ---- resources: each returns an Any the caller owns (any_free) ---- */

/** Packs m into a new Any of type_url. */
Google__Protobuf__Any *pack_any(const ProtobufCMessage *m, const char *type_url);

/** Frees an Any from pack_any or make_*. */
void any_free(Google__Protobuf__Any *a);

/** A Cluster; type EDS when eds, with service_name svc (may be NULL). */
Google__Protobuf__Any *make_cluster(const char *name, int eds, const char *svc);

/** A ClusterLoadAssignment for cluster name. */
Google__Protobuf__Any *make_cla(const char *name);

/** A RouteConfiguration called name. */
Google__Protobuf__Any *make_route(const char *name);

/** A Listener with one filter chain whose HCM uses RDS route rds. */
Google__Protobuf__Any *make_listener(const char *name, const char *rds);

/* ---- responses (anys are consumed); return mp_ads_session_on_message's code ---- */

/** Feeds s a DiscoveryResponse of the n anys. */
int feed_sotw(struct mp_ads_session *s, const char *type_url, const char *version,
              const char *nonce, Google__Protobuf__Any **anys, size_t n);

/** Feeds s a DeltaDiscoveryResponse; versions[i] is resource i's version
 * (n is at most 8); removed may be NULL. */
int feed_delta(struct mp_ads_session *s, const char *type_url, const char *nonce,
               Google__Protobuf__Any **anys, const char *const *versions, size_t n,
               const char *const *removed, size_t n_removed);

/* ---- requests ---- */

/** The next queued request decoded (free with req_free), or NULL when none. */
Envoy__Service__Discovery__V3__DiscoveryRequest *pop_sotw(struct mp_ads_session *s);

/** The same for a delta session. */
Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *pop_delta(struct mp_ads_session *s);

/** Frees a request from pop_sotw/pop_delta; NULL is a no-op. */
void req_free(void *m);

/** Discards every queued request of s. */
void ads_test_drain(struct mp_ads_session *s);

/* ---- sessions ---- */

/** CDS, EDS, LDS, RDS: the types the session tests subscribe to. */
extern const char *const ads_test_types4[4];

/**
 * A new session of mode for ads_test_types4, recording into r, whose node has
 * node_id and (when not NULL) node_cluster; fails the test when it cannot be
 * made. The caller frees it (mp_ads_session_free).
 */
struct mp_ads_session *ads_test_session_new(enum mp_xds_mode mode, const char *node_id,
                                            const char *node_cluster, struct rec *r);

/**
 * Checks the node and error_detail of a request: the node is present with
 * node_id when node_id is not NULL, absent otherwise; error_detail is an
 * INVALID_ARGUMENT whose message contains error when error is not NULL,
 * absent otherwise.
 */
void ads_test_expect_node_and_error(const Envoy__Config__Core__V3__Node *node,
                                    const Google__Rpc__Status *error_detail, const char *node_id,
                                    const char *error);

#endif
