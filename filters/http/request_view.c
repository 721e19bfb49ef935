/*
 * request_view.c: a zero-copy mp_route_request over a stream's headers.
 */
#include "request_view.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"
#include "proxy/snapshot.h"
#include "xds/xds_translate_listener.h"

int mp_request_view_init(struct mp_request_view *v, const struct mp_headers *h)
{
    struct mp_header_view *views = v->views;
    v->heap = NULL;
    if (h->n > MP_ARRAY_LEN(v->views)) {
        views = v->heap = malloc(h->n * sizeof(*views));
        if (!views)
            return MP_ERR_NOMEM;
    }
    const char *auth = NULL, *path = NULL, *method = NULL, *scheme = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const struct mp_header *e = &h->v[i];
        views[i] = (struct mp_header_view){e->name, e->name_len, e->value, e->value_len};
        if (e->name[0] != ':')
            continue;
        if (!auth && strcmp(e->name, ":authority") == 0)
            auth = e->value;
        else if (!path && strcmp(e->name, ":path") == 0)
            path = e->value;
        else if (!method && strcmp(e->name, ":method") == 0)
            method = e->value;
        else if (!scheme && strcmp(e->name, ":scheme") == 0)
            scheme = e->value;
    }
    v->rq = (struct mp_route_request){
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
    };
    return 0;
}

void mp_request_view_clear(struct mp_request_view *v)
{
    free(v->heap);
    v->heap = NULL;
}

const struct mp_route_config *mp_request_view_route_config(const struct mp_http_stream *s)
{
    if (s->hcm->route_config)
        return s->hcm->route_config;
    if (s->hcm->rds_name && s->snap)
        return mp_snapshot_find_route_config(s->snap, s->hcm->rds_name);
    return NULL;
}

const struct mp_route *mp_request_view_route(const struct mp_http_stream *s,
                                             const struct mp_request_view *v,
                                             const struct mp_route_config **rcp)
{
    const struct mp_route_config *rc = mp_request_view_route_config(s);
    if (!rc)
        return NULL;
    if (rcp)
        *rcp = rc;
    return mp_route_config_match(rc, &v->rq);
}

const struct mp_typed_config *mp_request_view_filter_config(const struct mp_http_stream *s,
                                                            const struct mp_request_view *v,
                                                            const char *filter_name)
{
    const struct mp_route_config *rc = NULL;
    const struct mp_route *r = mp_request_view_route(s, v, &rc);
    if (!r)
        return NULL;
    return mp_route_find_filter_config(rc, r, NULL, filter_name);
}

const struct mp_typed_config *mp_request_view_own_config(const struct mp_http_stream *s,
                                                         const struct mp_request_view *v,
                                                         const char *name, const char *canon)
{
    const struct mp_typed_config *tc = mp_request_view_filter_config(s, v, name);
    if (!tc && strcmp(name, canon) != 0)
        tc = mp_request_view_filter_config(s, v, canon);
    return tc;
}

bool mp_typed_config_type_is(const struct mp_typed_config *tc, const char *type)
{
    if (!tc->type_url)
        return false;
    const char *slash = strrchr(tc->type_url, '/');
    return strcmp(slash ? slash + 1 : tc->type_url, type) == 0;
}
