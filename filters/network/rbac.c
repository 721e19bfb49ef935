/*
 * rbac.c (network): envoy.filters.network.rbac at connection start.
 */
#include "rbac.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "proxy/rbac.h"
#include "proxy/stats.h"
#include "proxy/tls_transport.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

typedef Envoy__Extensions__Filters__Network__Rbac__V3__RBAC NetRbacPb;

struct net_rbac_stats {
    struct mp_counter *allowed, *denied, *shadow_allowed, *shadow_denied;
};

struct net_rbac_config {
    struct mp_rbac *rules;  /* NULL: nothing enforced */
    struct mp_rbac *shadow; /* NULL: none */
    char *prefix;           /* "<stat_prefix>.rbac." */
    char *shadow_prefix;
    _Atomic(struct net_rbac_stats *) stats; /* resolved on first use */
};

static void net_rbac_free(void *p)
{
    struct net_rbac_config *c = p;
    if (!c)
        return;
    mp_rbac_free(c->rules);
    mp_rbac_free(c->shadow);
    free(c->prefix);
    free(c->shadow_prefix);
    free(atomic_load(&c->stats));
    free(c);
}

static int translate(const NetRbacPb *pb, struct net_rbac_config *c, char **err)
{
    if (!pb->stat_prefix || !*pb->stat_prefix)
        return mp_set_err(err, "stat_prefix: must not be empty");
    if (pb->matcher)
        return mp_set_err(err, "matcher: the RBAC matcher API is not supported by meshproxy; use "
                               "rules");
    if (pb->shadow_matcher)
        return mp_set_err(err, "shadow_matcher: the RBAC matcher API is not supported by "
                               "meshproxy; use shadow_rules");
    int rc;
    if (pb->rules) {
        rc = mp_rbac_from_proto(pb->rules, &c->rules, err);
        if (rc < 0) {
            mp_err_prefix(err, "rules");
            return rc;
        }
    }
    if (pb->shadow_rules) {
        rc = mp_rbac_from_proto(pb->shadow_rules, &c->shadow, err);
        if (rc < 0) {
            mp_err_prefix(err, "shadow_rules");
            return rc;
        }
    }
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

static const struct net_rbac_stats *config_stats(const struct net_rbac_config *cc,
                                                 const struct mp_conn *conn)
{
    struct net_rbac_config *c = (struct net_rbac_config *)cc; /* the stats cache only */
    struct net_rbac_stats *st = atomic_load_explicit(&c->stats, memory_order_acquire);
    if (st || !conn->w || !conn->w->stats)
        return st;
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    struct mp_stats *reg = conn->w->stats;
    st->allowed = mp_stats_counterf(reg, "%sallowed", c->prefix);
    st->denied = mp_stats_counterf(reg, "%sdenied", c->prefix);
    st->shadow_allowed = mp_stats_counterf(reg, "%s%sshadow_allowed", c->prefix, c->shadow_prefix);
    st->shadow_denied = mp_stats_counterf(reg, "%s%sshadow_denied", c->prefix, c->shadow_prefix);
    struct net_rbac_stats *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->stats, &expected, st)) {
        free(st); /* another worker registered the same handles first */
        return expected;
    }
    return st;
}

static int evaluate(const struct net_rbac_config *c, struct mp_conn *conn)
{
    const struct net_rbac_stats *st = config_stats(c, conn);
    unsigned slot = conn->w ? conn->w->index : 0;
    struct mp_rbac_request rq = {
        .direct_remote = (const struct sockaddr *)&conn->src,
        .local = (const struct sockaddr *)&conn->dst,
        .sni = conn->tls ? mp_tls_transport_sni(conn->tls) : NULL,
        .peer = conn->tls ? mp_tls_transport_peer(conn->tls) : NULL,
    };
    struct mp_rbac_result res;
    if (c->shadow) {
        mp_rbac_evaluate(c->shadow, &rq, &res);
        if (st)
            mp_counter_inc(res.allowed ? st->shadow_allowed : st->shadow_denied, slot, 1);
    }
    if (!c->rules)
        return MP_NETWORK_FILTER_CONTINUE;
    mp_rbac_evaluate(c->rules, &rq, &res);
    if (st)
        mp_counter_inc(res.allowed ? st->allowed : st->denied, slot, 1);
    if (res.allowed)
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
