/*
 * filter_route.c: route lookup for filters that run before the router (see
 * filter_route.h).
 */
#include "filter_route.h"

#include <stdlib.h>
#include <string.h>

#include "filters/http/request_view.h"
#include "proxy/cluster.h"
#include "proxy/http_stream.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

const struct mp_route *mp_filter_route_match(struct mp_http_stream *s,
                                             const struct mp_route_config **rcp)
{
    const struct mp_route_config *rc = mp_request_view_route_config(s);
    if (rcp)
        *rcp = rc;
    if (!rc)
        return NULL;
    struct mp_request_view v;
    if (mp_request_view_init(&v, &s->req))
        return NULL;
    const struct mp_route *r = mp_route_config_match(rc, &v.rq);
    mp_request_view_clear(&v);
    return r;
}

const struct mp_typed_config *mp_filter_route_config(const struct mp_route *r,
                                                     const struct mp_route_config *rc,
                                                     const char *filter_name)
{
    return mp_route_find_filter_config(rc, r, NULL, filter_name);
}

int mp_filter_route_cluster(const struct mp_route *r, struct mp_http_stream *s, uint64_t random,
                            char *out, size_t cap)
{
    if (!r || r->action_kind != MP_ROUTE_ACTION_ROUTE || cap == 0)
        return MP_ERR_NOTFOUND;
    struct mp_request_view v;
    int rc = mp_request_view_init(&v, &s->req);
    if (rc)
        return rc;
    v.rq.random = random;
    const char *name;
    size_t len;
    if (mp_route_pick_cluster(r, &v.rq, random, &name, &len) < 0 || len >= cap) {
        rc = MP_ERR_NOTFOUND;
    } else {
        memcpy(out, name, len);
        out[len] = '\0';
    }
    mp_request_view_clear(&v);
    return rc;
}

int mp_filter_cluster_target(struct mp_worker *w, const struct mp_snapshot *snap,
                             const char *cluster, char *out, size_t cap)
{
    if (!snap || !cluster)
        return MP_ERR_NOTFOUND;
    const struct mp_snapshot_cluster *ce =
        mp_snapshot_find_cluster_entry(snap, cluster, strlen(cluster));
    if (!ce || !ce->lb)
        return MP_ERR_NOTFOUND;
    struct mp_lb_worker *lbw = mp_worker_lb(w, ce->lb);
    struct mp_lb_context ctx = {0};
    const struct mp_host *h = lbw ? mp_lb_pick(lbw, &ctx) : NULL;
    if (!h || !h->addr_str)
        return MP_ERR_NOTFOUND;
    size_t n = strlen(h->addr_str);
    if (n >= cap)
        return MP_ERR_INVAL;
    memcpy(out, h->addr_str, n + 1);
    return 0;
}
