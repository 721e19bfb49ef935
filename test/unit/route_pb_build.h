/*
 * route_pb_build.h: small builders for envoy.config.route.v3 protobuf-c
 * messages, shared by the router unit tests. Everything they allocate is
 * tracked and released by tb_free_all().
 */
#ifndef MP_TEST_ROUTE_PB_BUILD_H
#define MP_TEST_ROUTE_PB_BUILD_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/route/v3/route.pb-c.h"

typedef Envoy__Config__Route__V3__RouteConfiguration PbConfig;
typedef Envoy__Config__Route__V3__VirtualHost PbVhost;
typedef Envoy__Config__Route__V3__Route PbRoute;
typedef Envoy__Config__Route__V3__RouteMatch PbMatch;
typedef Envoy__Config__Route__V3__RouteAction PbAction;
typedef Envoy__Config__Route__V3__HeaderMatcher PbHeader;
typedef Envoy__Config__Route__V3__QueryParameterMatcher PbQuery;
typedef Envoy__Type__Matcher__V3__StringMatcher PbString;
typedef Envoy__Type__Matcher__V3__RegexMatcher PbRegex;

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#pragma GCC diagnostic ignored "-Wunused-function"

struct tb_node {
    struct tb_node *next;
    max_align_t data[];
};
static struct tb_node *tb_list;

static void *tb_alloc(size_t n)
{
    struct tb_node *node = calloc(1, sizeof(*node) + n);
    if (node == NULL)
        abort();
    node->next = tb_list;
    tb_list = node;
    return node->data;
}

static void tb_free_all(void)
{
    while (tb_list != NULL) {
        struct tb_node *n = tb_list->next;
        free(tb_list);
        tb_list = n;
    }
}

static char *tb_str(const char *s)
{
    char *d = tb_alloc(strlen(s) + 1);
    memcpy(d, s, strlen(s) + 1);
    return d;
}

/* Appends item to a protobuf-c repeated field (array + count). */
#define TB_PUSH(arr, n, item)                                                                      \
    do {                                                                                           \
        void *na_ = tb_alloc(((n) + 1) * sizeof(*(arr)));                                          \
        if ((n) > 0)                                                                               \
            memcpy(na_, (arr), (n) * sizeof(*(arr)));                                              \
        (arr) = na_;                                                                               \
        (arr)[(n)++] = (item);                                                                     \
    } while (0)

static PbRegex *tb_regex(const char *re)
{
    PbRegex *r = tb_alloc(sizeof(*r));
    envoy__type__matcher__v3__regex_matcher__init(r);
    r->regex = tb_str(re);
    return r;
}

static PbMatch *tb_match(int kind, const char *v)
{
    PbMatch *m = tb_alloc(sizeof(*m));
    envoy__config__route__v3__route_match__init(m);
    m->path_specifier_case = kind;
    switch (kind) {
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX: m->prefix = tb_str(v); break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH: m->path = tb_str(v); break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
        m->safe_regex = tb_regex(v);
        break;
    case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX:
        m->path_separated_prefix = tb_str(v);
        break;
    }
    return m;
}
#define TB_PREFIX(v) tb_match(ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX, v)
#define TB_PATH(v)   tb_match(ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH, v)
#define TB_REGEX(v)  tb_match(ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX, v)
#define TB_SEP(v)                                                                                  \
    tb_match(ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX, v)

static void tb_case_insensitive(PbMatch *m)
{
    Google__Protobuf__BoolValue *b = tb_alloc(sizeof(*b));
    google__protobuf__bool_value__init(b);
    b->value = 0;
    m->case_sensitive = b;
}

static PbHeader *tb_header(const char *name)
{
    PbHeader *h = tb_alloc(sizeof(*h));
    envoy__config__route__v3__header_matcher__init(h);
    h->name = tb_str(name);
    return h;
}

static PbString *tb_string_match(int kind, const char *v, int ignore_case)
{
    PbString *s = tb_alloc(sizeof(*s));
    envoy__type__matcher__v3__string_matcher__init(s);
    s->match_pattern_case = kind;
    s->ignore_case = ignore_case;
    switch (kind) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT: s->exact = tb_str(v); break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        s->prefix = tb_str(v);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        s->suffix = tb_str(v);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        s->contains = tb_str(v);
        break;
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
        s->safe_regex = tb_regex(v);
        break;
    }
    return s;
}
#define TB_SM_EXACT    ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT
#define TB_SM_PREFIX   ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX
#define TB_SM_SUFFIX   ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX
#define TB_SM_CONTAINS ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS
#define TB_SM_REGEX    ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX

static PbQuery *tb_query(const char *name, PbString *sm)
{
    PbQuery *q = tb_alloc(sizeof(*q));
    envoy__config__route__v3__query_parameter_matcher__init(q);
    q->name = tb_str(name);
    if (sm != NULL) {
        q->query_parameter_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
        q->string_match = sm;
    } else {
        q->query_parameter_match_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH;
        q->present_match = 1;
    }
    return q;
}

static PbRoute *tb_route(PbMatch *m)
{
    PbRoute *r = tb_alloc(sizeof(*r));
    envoy__config__route__v3__route__init(r);
    r->match = m;
    return r;
}

static PbAction *tb_action(PbRoute *r)
{
    PbAction *a = tb_alloc(sizeof(*a));
    envoy__config__route__v3__route_action__init(a);
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
    r->route = a;
    return a;
}

static PbRoute *tb_route_cluster(PbMatch *m, const char *cluster)
{
    PbRoute *r = tb_route(m);
    PbAction *a = tb_action(r);
    a->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
    a->cluster = tb_str(cluster);
    return r;
}

static void tb_weighted(PbAction *a, const char *name, uint32_t weight)
{
    if (a->cluster_specifier_case !=
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
        a->cluster_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
        a->weighted_clusters = tb_alloc(sizeof(*a->weighted_clusters));
        envoy__config__route__v3__weighted_cluster__init(a->weighted_clusters);
    }
    Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *c = tb_alloc(sizeof(*c));
    envoy__config__route__v3__weighted_cluster__cluster_weight__init(c);
    c->name = tb_str(name);
    c->weight = tb_alloc(sizeof(*c->weight));
    google__protobuf__uint32_value__init(c->weight);
    c->weight->value = weight;
    TB_PUSH(a->weighted_clusters->clusters, a->weighted_clusters->n_clusters, c);
}

static PbRoute *tb_route_direct(PbMatch *m, uint32_t status, const char *body)
{
    PbRoute *r = tb_route(m);
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
    r->direct_response = tb_alloc(sizeof(*r->direct_response));
    envoy__config__route__v3__direct_response_action__init(r->direct_response);
    r->direct_response->status = status;
    if (body != NULL) {
        r->direct_response->body = tb_alloc(sizeof(*r->direct_response->body));
        envoy__config__core__v3__data_source__init(r->direct_response->body);
        r->direct_response->body->specifier_case =
            ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
        r->direct_response->body->inline_string = tb_str(body);
    }
    return r;
}

static Envoy__Config__Route__V3__RedirectAction *tb_route_redirect(PbRoute *r)
{
    r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
    r->redirect = tb_alloc(sizeof(*r->redirect));
    envoy__config__route__v3__redirect_action__init(r->redirect);
    return r->redirect;
}

static PbVhost *tb_vhost(const char *name, const char *domains)
{
    PbVhost *v = tb_alloc(sizeof(*v));
    envoy__config__route__v3__virtual_host__init(v);
    v->name = tb_str(name);
    /* domains: space-separated */
    char *d = tb_str(domains);
    for (char *tok = strtok(d, " "); tok != NULL; tok = strtok(NULL, " "))
        TB_PUSH(v->domains, v->n_domains, tok);
    return v;
}

static PbConfig *tb_config(const char *name)
{
    PbConfig *c = tb_alloc(sizeof(*c));
    envoy__config__route__v3__route_configuration__init(c);
    c->name = tb_str(name);
    return c;
}

#define TB_ADD_ROUTE(vh, r) TB_PUSH((vh)->routes, (vh)->n_routes, (r))
#define TB_ADD_VHOST(c, vh) TB_PUSH((c)->virtual_hosts, (c)->n_virtual_hosts, (vh))
#define TB_ADD_HEADER(m, h) TB_PUSH((m)->headers, (m)->n_headers, (h))
#define TB_ADD_QUERY(m, q)  TB_PUSH((m)->query_parameters, (m)->n_query_parameters, (q))

#endif
