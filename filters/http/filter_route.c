/*
 * filter_route.c: route lookup for filters that run before the router (see
 * filter_route.h).
 */
#include "filter_route.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/http_stream.h"
#include "proxy/lb_core.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

/* The route matcher reads a view of the headers; calls fn with it. */
static int with_request(struct mp_http_stream *s, uint64_t random,
                        int (*fn)(void *arg, const struct mp_route_request *rq), void *arg)
{
    const struct mp_headers *h = &s->req;
    struct mp_header_view stackv[32];
    struct mp_header_view *views = stackv;
    if (h->n > MP_ARRAY_LEN(stackv)) {
        views = malloc(h->n * sizeof(*views));
        if (!views)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < h->n; i++) {
        views[i].name = h->v[i].name;
        views[i].name_len = h->v[i].name_len;
        views[i].value = h->v[i].value;
        views[i].value_len = h->v[i].value_len;
    }
    const char *auth = mp_headers_value(h, ":authority");
    const char *path = mp_headers_value(h, ":path");
    const char *method = mp_headers_value(h, ":method");
    const char *scheme = mp_headers_value(h, ":scheme");
    struct mp_route_request rq = {
        .authority = auth ? auth : "",
        .authority_len = auth ? strlen(auth) : 0,
        .path = path ? path : "",
        .path_len = path ? strlen(path) : 0,
        .method = method ? method : "",
        .method_len = method ? strlen(method) : 0,
        .scheme = scheme,
        .scheme_len = scheme ? strlen(scheme) : 0,
        .headers = views,
        .n_headers = h->n,
        .random = random,
    };
    int rc = fn(arg, &rq);
    if (views != stackv)
        free(views);
    return rc;
}

struct match_arg {
    const struct mp_route_config *rc;
    const struct mp_route *route;
};

static int do_match(void *arg, const struct mp_route_request *rq)
{
    struct match_arg *m = arg;
    m->route = mp_route_config_match(m->rc, rq);
    return 0;
}

const struct mp_route *mp_filter_route_match(struct mp_http_stream *s,
                                             const struct mp_route_config **rcp)
{
    const struct mp_route_config *rc = s->hcm->route_config;
    if (!rc && s->hcm->rds_name && s->snap)
        rc = mp_snapshot_find_route_config(s->snap, s->hcm->rds_name);
    if (rcp)
        *rcp = rc;
    if (!rc)
        return NULL;
    struct match_arg m = {.rc = rc};
    if (with_request(s, 0, do_match, &m))
        return NULL;
    return m.route;
}

static const struct mp_typed_config *find_in(const struct mp_typed_configs *tc, const char *name)
{
    for (size_t i = 0; i < tc->n; i++)
        if (strcmp(tc->items[i].filter_name, name) == 0)
            return &tc->items[i];
    return NULL;
}

const struct mp_typed_config *mp_filter_route_config(const struct mp_route *r,
                                                     const struct mp_route_config *rc,
                                                     const char *filter_name)
{
    const struct mp_typed_config *t = NULL;
    if (r)
        t = find_in(&r->per_filter, filter_name);
    if (!t && r && r->vhost)
        t = find_in(&r->vhost->per_filter, filter_name);
    if (!t && rc)
        t = find_in(&rc->per_filter, filter_name);
    return t;
}

struct cluster_arg {
    const struct mp_route *r;
    char *out;
    size_t cap;
};

static int do_cluster(void *arg, const struct mp_route_request *rq)
{
    struct cluster_arg *c = arg;
    const char *name;
    size_t len;
    if (mp_route_pick_cluster(c->r, rq, rq->random, &name, &len) < 0 || len >= c->cap)
        return MP_ERR_NOTFOUND;
    memcpy(c->out, name, len);
    c->out[len] = '\0';
    return 0;
}

int mp_filter_route_cluster(const struct mp_route *r, struct mp_http_stream *s, uint64_t random,
                            char *out, size_t cap)
{
    if (!r || r->action_kind != MP_ROUTE_ACTION_ROUTE || cap == 0)
        return MP_ERR_NOTFOUND;
    struct cluster_arg c = {.r = r, .out = out, .cap = cap};
    return with_request(s, random, do_cluster, &c);
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
