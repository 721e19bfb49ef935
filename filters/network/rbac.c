/*
 * rbac.c (network): envoy.filters.network.rbac at connection start.
 */
#include "rbac.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "filters/rbac_engines.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "proxy/rbac.h"
#include "proxy/stats.h"
#include "proxy/tls_transport.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

typedef Envoy__Extensions__Filters__Network__Rbac__V3__RBAC NetRbacPb;

struct net_rbac_config {
    struct mp_rbac_engines engines;
    char *prefix; /* "<stat_prefix>.rbac." */
    char *shadow_prefix;
    _Atomic(struct mp_rbac_counters *) stats; /* resolved on first use */
};

static void net_rbac_free(void *p)
{
    struct net_rbac_config *c = p;
    if (!c)
        return;
    mp_rbac_engines_clear(&c->engines);
    free(c->prefix);
    free(c->shadow_prefix);
    free(atomic_load(&c->stats));
    free(c);
}

static int translate(const NetRbacPb *pb, struct net_rbac_config *c, char **err)
{
    if (!pb->stat_prefix || !*pb->stat_prefix)
        return mp_set_err(err, "stat_prefix: must not be empty");
    int rc = mp_rbac_engines_from_proto(&c->engines, pb->rules, pb->shadow_rules, pb->matcher != NULL,
                                        pb->shadow_matcher != NULL, err);
    if (rc < 0)
        return rc;
    size_t cap = strlen(pb->stat_prefix) + sizeof(".rbac.");
    c->prefix = malloc(cap);
    c->shadow_prefix = strdup(pb->shadow_rules_stat_prefix ? pb->shadow_rules_stat_prefix : "");
    if (!c->prefix || !c->shadow_prefix)
        return MP_ERR_NOMEM;
    if (mp_rbac_stat_prefix_join(pb->stat_prefix, "rbac.", c->prefix, cap) < 0)
        return MP_ERR_NOMEM; /* cannot happen: cap fits both */
    return 0;
}

static int net_rbac_parse(const uint8_t *data, size_t len, void **out, char **err)
{
    NetRbacPb *pb = envoy__extensions__filters__network__rbac__v3__rbac__unpack(NULL, len, data);
    if (!pb)
        return mp_set_err(err, ": cannot decode envoy.extensions.filters.network.rbac.v3.RBAC");
    int rc = MP_ERR_NOMEM;
    struct net_rbac_config *c = calloc(1, sizeof(*c));
    if (c)
        rc = translate(pb, c, err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    if (rc < 0) {
        net_rbac_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int evaluate(const struct net_rbac_config *c, struct mp_conn *conn)
{
    struct net_rbac_config *mc = (struct net_rbac_config *)c; /* the stats cache only */
    const struct mp_rbac_counters *st =
        mp_rbac_counters_get(&mc->stats, conn->w ? conn->w->stats : NULL, "", c->shadow_prefix,
                             "%s", c->prefix);
    unsigned slot = conn->w ? conn->w->index : 0;
    struct mp_rbac_request rq = {
        .direct_remote = (const struct sockaddr *)&conn->src,
        .local = (const struct sockaddr *)&conn->dst,
        .sni = conn->tls ? mp_tls_transport_sni(conn->tls) : NULL,
        .peer = conn->tls ? mp_tls_transport_peer(conn->tls) : NULL,
    };
    struct mp_rbac_result res;
    if (mp_rbac_engines_evaluate(&c->engines, st, slot, &rq, &res))
        return MP_NETWORK_FILTER_CONTINUE;
    MP_LOG(MP_LOG_FILTER, MP_LOG_DEBUG, "rbac: connection from %s denied (policy %s)", conn->remote,
           res.policy ? res.policy : "none");
    return MP_NETWORK_FILTER_CLOSE;
}

/* A plaintext chain is judged at once; a TLS chain once its handshake has
 * told who the peer is (as Envoy judges on the first decrypted data). */
static int net_rbac_on_new_connection(const void *config, struct mp_conn *conn)
{
    if (conn->chain && conn->chain->tls_config)
        return MP_NETWORK_FILTER_CONTINUE;
    return evaluate(config, conn);
}

static int net_rbac_on_tls_established(const void *config, struct mp_conn *conn)
{
    return evaluate(config, conn);
}

const struct mp_network_filter_ops mp_network_filter_rbac = {
    .name = "envoy.filters.network.rbac",
    .config_type = "envoy.extensions.filters.network.rbac.v3.RBAC",
    .parse = net_rbac_parse,
    .config_free = net_rbac_free,
    .on_new_connection = net_rbac_on_new_connection,
    .on_tls_established = net_rbac_on_tls_established,
};
