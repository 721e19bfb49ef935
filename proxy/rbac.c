/*
 * rbac.c: translation of envoy.config.rbac.v3.RBAC into a tree of matchers,
 * and its evaluation. All of an engine's memory lives in the arena of an
 * mp_route_config (the route module's matchers are built there, regexes
 * included), so one free releases everything.
 */
#include "rbac.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/route_table.h"
#include "proxy/router_match.h"
#include "proxy/tls_transport.h"
#include "xds/xds_translate_route.h"

typedef Envoy__Config__Rbac__V3__Permission Permission;
typedef Envoy__Config__Rbac__V3__Principal Principal;
typedef Envoy__Config__Core__V3__CidrRange CidrRange;

/* Deeper and/or/not nesting than this is refused: evaluation recurses. */
#define MAX_DEPTH 32

enum node_kind {
    N_ANY,
    N_AND,
    N_OR,
    N_NOT,
    N_HEADER,
    N_URL_PATH,
    N_DST_IP,
    N_DST_PORT_RANGE, /* destination_port is a range of one */
    N_SNI,
    N_AUTHENTICATED,
    N_DIRECT_REMOTE_IP, /* also the deprecated source_ip (Envoy: the connection's peer) */
    N_REMOTE_IP,
};

struct cidr {
    int family; /* AF_INET / AF_INET6 */
    uint8_t addr[16];
    unsigned prefix_len;
};

struct node {
    enum node_kind kind;
    union {
        struct {
            const struct node **kids;
            size_t n;
        } set;
        const struct node * not ;
        struct mp_header_match header;
        struct {
            bool any; /* authenticated without principal_name */
            struct mp_string_match m;
        } str;
        struct cidr cidr;
        struct {
            uint32_t lo, hi; /* [lo, hi) */
        } ports;
    };
};

struct policy {
    const char *name;
    const struct node **perms;
    size_t n_perms;
    const struct node **princs;
    size_t n_princs;
};

struct mp_rbac {
    enum mp_rbac_action action;
    struct mp_route_config *arena; /* owns every node, string and regex */
    struct policy *policies;       /* sorted by name */
    size_t n_policies;
};

/* ---- translation ------------------------------------------------------------ */

static int nomem(char **err)
{
    mp_set_err(err, "out of memory");
    return MP_ERR_NOMEM;
}

static struct node *node_new(struct mp_route_config *a, enum node_kind kind)
{
    struct node *n = mp_route_arena_alloc(a, sizeof(*n));
    if (n)
        n->kind = kind;
    return n;
}

static int cidr_from_proto(const CidrRange *pb, struct cidr *out, char **err)
{
    if (!pb || !pb->address_prefix || !*pb->address_prefix)
        return mp_set_err(err, "address_prefix: must not be empty");
    unsigned len = pb->prefix_len ? pb->prefix_len->value : 0;
    if (inet_pton(AF_INET, pb->address_prefix, out->addr) == 1) {
        out->family = AF_INET;
        if (len > 32)
            return mp_set_err(err, "prefix_len: %u is more than 32 for an IPv4 address", len);
    } else if (inet_pton(AF_INET6, pb->address_prefix, out->addr) == 1) {
        out->family = AF_INET6;
        if (len > 128)
            return mp_set_err(err, "prefix_len: %u is more than 128 for an IPv6 address", len);
    } else {
        return mp_set_err(err, "address_prefix: \"%s\" is not an IP address", pb->address_prefix);
    }
    out->prefix_len = len;
    return 0;
}

static int string_from_proto(struct mp_route_config *a,
                             const Envoy__Type__Matcher__V3__StringMatcher *pb,
                             struct mp_string_match *out, const char *field, char **err)
{
    if (!pb)
        return mp_set_err(err, "%s: required", field);
    int rc = mp_string_match_from_proto(a, pb, out, err);
    if (rc < 0)
        mp_err_prefix(err, "%s", field);
    return rc;
}

static int path_from_proto(struct mp_route_config *a,
                           const Envoy__Type__Matcher__V3__PathMatcher *pb, struct node *n,
                           char **err)
{
    if (!pb || pb->rule_case != ENVOY__TYPE__MATCHER__V3__PATH_MATCHER__RULE_PATH)
        return mp_set_err(err, "url_path.path: required");
    return string_from_proto(a, pb->path, &n->str.m, "url_path.path", err);
}

static int header_from_proto(struct mp_route_config *a,
                             const Envoy__Config__Route__V3__HeaderMatcher *pb, struct node *n,
                             char **err)
{
    int rc = mp_header_match_from_proto(a, pb, &n->header, err);
    if (rc < 0)
        mp_err_prefix(err, "header");
    return rc;
}

static int permission_from_proto(struct mp_route_config *a, const Permission *pb, int depth,
                                 const struct node **out, char **err);

static int perm_set(struct mp_route_config *a, const Envoy__Config__Rbac__V3__Permission__Set *pb,
                    enum node_kind kind, int depth, struct node *n, const char *field, char **err)
{
    if (!pb || pb->n_rules == 0)
        return mp_set_err(err, "%s.rules: at least one rule is required", field);
    n->kind = kind;
    n->set.kids = mp_route_arena_alloc(a, pb->n_rules * sizeof(*n->set.kids));
    if (!n->set.kids)
        return nomem(err);
    for (size_t i = 0; i < pb->n_rules; i++) {
        int rc = permission_from_proto(a, pb->rules[i], depth + 1, &n->set.kids[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "%s.rules[%zu]", field, i);
            return rc;
        }
    }
    n->set.n = pb->n_rules;
    return 0;
}

static int permission_from_proto(struct mp_route_config *a, const Permission *pb, int depth,
                                 const struct node **out, char **err)
{
    if (depth > MAX_DEPTH)
        return mp_set_err(err, ": rules nest deeper than %d levels", MAX_DEPTH);
    struct node *n = node_new(a, N_ANY);
    if (!n)
        return nomem(err);
    int rc = 0;
    switch (pb->rule_case) {
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY:
        if (!pb->any)
            return mp_set_err(err, "any: must be true");
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_AND_RULES:
        rc = perm_set(a, pb->and_rules, N_AND, depth, n, "and_rules", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_OR_RULES:
        rc = perm_set(a, pb->or_rules, N_OR, depth, n, "or_rules", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_NOT_RULE:
        n->kind = N_NOT;
        rc = permission_from_proto(a, pb->not_rule, depth + 1, &n->not, err);
        if (rc < 0)
            mp_err_prefix(err, "not_rule");
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_HEADER:
        n->kind = N_HEADER;
        rc = header_from_proto(a, pb->header, n, err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URL_PATH:
        n->kind = N_URL_PATH;
        rc = path_from_proto(a, pb->url_path, n, err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_IP:
        n->kind = N_DST_IP;
        rc = cidr_from_proto(pb->destination_ip, &n->cidr, err);
        if (rc < 0)
            mp_err_prefix(err, "destination_ip");
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_PORT:
        if (pb->destination_port > 65535)
            return mp_set_err(err, "destination_port: %u is not a port", pb->destination_port);
        n->kind = N_DST_PORT_RANGE;
        n->ports.lo = pb->destination_port;
        n->ports.hi = pb->destination_port + 1;
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_DESTINATION_PORT_RANGE: {
        const Envoy__Type__V3__Int32Range *r = pb->destination_port_range;
        if (!r || r->start < 0 || r->start > 65535 || r->end < 0 || r->end > 65536)
            return mp_set_err(err, "destination_port_range: start/end out of bounds");
        if (r->start >= r->end)
            return mp_set_err(err, "destination_port_range: start %d is not below end %d", r->start,
                              r->end);
        n->kind = N_DST_PORT_RANGE;
        n->ports.lo = (uint32_t)r->start;
        n->ports.hi = (uint32_t)r->end;
        break;
    }
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_REQUESTED_SERVER_NAME:
        n->kind = N_SNI;
        rc = string_from_proto(a, pb->requested_server_name, &n->str.m, "requested_server_name",
                               err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_METADATA:
        return mp_set_err(err, "metadata: metadata matchers are not supported by meshproxy");
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_MATCHER:
        return mp_set_err(err, "matcher: custom RBAC matchers are not supported by meshproxy");
    case ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_URI_TEMPLATE:
        return mp_set_err(err, "uri_template: URI template matching is not supported by meshproxy");
    default:
        return mp_set_err(err, ": one of any, and_rules, or_rules, not_rule, header, url_path, "
                               "destination_ip, destination_port, destination_port_range, "
                               "requested_server_name is required");
    }
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

static int principal_from_proto(struct mp_route_config *a, const Principal *pb, int depth,
                                const struct node **out, char **err);

static int princ_set(struct mp_route_config *a, const Envoy__Config__Rbac__V3__Principal__Set *pb,
                     enum node_kind kind, int depth, struct node *n, const char *field, char **err)
{
    if (!pb || pb->n_ids == 0)
        return mp_set_err(err, "%s.ids: at least one id is required", field);
    n->kind = kind;
    n->set.kids = mp_route_arena_alloc(a, pb->n_ids * sizeof(*n->set.kids));
    if (!n->set.kids)
        return nomem(err);
    for (size_t i = 0; i < pb->n_ids; i++) {
        int rc = principal_from_proto(a, pb->ids[i], depth + 1, &n->set.kids[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "%s.ids[%zu]", field, i);
            return rc;
        }
    }
    n->set.n = pb->n_ids;
    return 0;
}

static int ip_node(const CidrRange *pb, enum node_kind kind, struct node *n, const char *field,
                   char **err)
{
    n->kind = kind;
    int rc = cidr_from_proto(pb, &n->cidr, err);
    if (rc < 0)
        mp_err_prefix(err, "%s", field);
    return rc;
}

static int principal_from_proto(struct mp_route_config *a, const Principal *pb, int depth,
                                const struct node **out, char **err)
{
    if (depth > MAX_DEPTH)
        return mp_set_err(err, ": ids nest deeper than %d levels", MAX_DEPTH);
    struct node *n = node_new(a, N_ANY);
    if (!n)
        return nomem(err);
    int rc = 0;
    switch (pb->identifier_case) {
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY:
        if (!pb->any)
            return mp_set_err(err, "any: must be true");
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AND_IDS:
        rc = princ_set(a, pb->and_ids, N_AND, depth, n, "and_ids", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS:
        rc = princ_set(a, pb->or_ids, N_OR, depth, n, "or_ids", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_NOT_ID:
        n->kind = N_NOT;
        rc = principal_from_proto(a, pb->not_id, depth + 1, &n->not, err);
        if (rc < 0)
            mp_err_prefix(err, "not_id");
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED:
        n->kind = N_AUTHENTICATED;
        if (!pb->authenticated || !pb->authenticated->principal_name) {
            n->str.any = true;
            break;
        }
        rc = string_from_proto(a, pb->authenticated->principal_name, &n->str.m,
                               "authenticated.principal_name", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_SOURCE_IP:
/* source_ip is deprecated in the API but Istio-era configs still carry it */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        rc = ip_node(pb->source_ip, N_DIRECT_REMOTE_IP, n, "source_ip", err);
#pragma GCC diagnostic pop
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_DIRECT_REMOTE_IP:
        rc = ip_node(pb->direct_remote_ip, N_DIRECT_REMOTE_IP, n, "direct_remote_ip", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_REMOTE_IP:
        rc = ip_node(pb->remote_ip, N_REMOTE_IP, n, "remote_ip", err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_HEADER:
        n->kind = N_HEADER;
        rc = header_from_proto(a, pb->header, n, err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_URL_PATH:
        n->kind = N_URL_PATH;
        rc = path_from_proto(a, pb->url_path, n, err);
        break;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_METADATA:
        return mp_set_err(err, "metadata: metadata matchers are not supported by meshproxy");
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_FILTER_STATE:
        return mp_set_err(err,
                          "filter_state: filter state matchers are not supported by meshproxy");
    default:
        return mp_set_err(err, ": one of any, and_ids, or_ids, not_id, authenticated, source_ip, "
                               "direct_remote_ip, remote_ip, header, url_path is required");
    }
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

static int policy_from_proto(struct mp_route_config *a, const Envoy__Config__Rbac__V3__Policy *pb,
                             struct policy *p, char **err)
{
    if (!pb)
        return mp_set_err(err, ": policy must not be empty");
    if (pb->condition || pb->checked_condition)
        return mp_set_err(err, "%s: CEL conditions are not supported by meshproxy",
                          pb->condition ? "condition" : "checked_condition");
    if (pb->n_permissions == 0)
        return mp_set_err(err, "permissions: at least one permission is required");
    if (pb->n_principals == 0)
        return mp_set_err(err, "principals: at least one principal is required");
    p->perms = mp_route_arena_alloc(a, pb->n_permissions * sizeof(*p->perms));
    p->princs = mp_route_arena_alloc(a, pb->n_principals * sizeof(*p->princs));
    if (!p->perms || !p->princs)
        return nomem(err);
    for (size_t i = 0; i < pb->n_permissions; i++) {
        int rc = permission_from_proto(a, pb->permissions[i], 0, &p->perms[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "permissions[%zu]", i);
            return rc;
        }
    }
    p->n_perms = pb->n_permissions;
    for (size_t i = 0; i < pb->n_principals; i++) {
        int rc = principal_from_proto(a, pb->principals[i], 0, &p->princs[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "principals[%zu]", i);
            return rc;
        }
    }
    p->n_princs = pb->n_principals;
    return 0;
}

static int policy_cmp(const void *x, const void *y)
{
    const struct policy *a = x, *b = y;
    return strcmp(a->name, b->name);
}

int mp_rbac_from_proto(const Envoy__Config__Rbac__V3__RBAC *pb, struct mp_rbac **out, char **err)
{
    int rc = MP_ERR_NOMEM;
    struct mp_rbac *r = calloc(1, sizeof(*r));
    if (!r)
        return nomem(err);
    r->arena = mp_route_config_new();
    if (!r->arena) {
        nomem(err);
        goto fail;
    }
    switch (pb->action) {
    case ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW: r->action = MP_RBAC_ALLOW; break;
    case ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__DENY: r->action = MP_RBAC_DENY; break;
    case ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__LOG: r->action = MP_RBAC_LOG; break;
    default: rc = mp_set_err(err, "action: unknown action %d", (int)pb->action); goto fail;
    }
    if (pb->n_policies) {
        r->policies = mp_route_arena_alloc(r->arena, pb->n_policies * sizeof(*r->policies));
        if (!r->policies) {
            rc = nomem(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < pb->n_policies; i++) {
        const Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *e = pb->policies[i];
        const char *key = e->key ? e->key : "";
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->policies[j].name, key) == 0) {
                rc = mp_set_err(err, "policies[\"%s\"]: policy named twice", key);
                goto fail;
            }
        }
        struct policy *p = &r->policies[i];
        p->name = mp_route_arena_strndup(r->arena, key, strlen(key), false);
        if (!p->name) {
            rc = nomem(err);
            goto fail;
        }
        rc = policy_from_proto(r->arena, e->value, p, err);
        if (rc < 0) {
            mp_err_prefix(err, "policies[\"%s\"]", key);
            goto fail;
        }
        r->n_policies++;
    }
    /* Envoy evaluates policies in lexicographic order of their names */
    if (r->n_policies > 1)
        qsort(r->policies, r->n_policies, sizeof(*r->policies), policy_cmp);
    *out = r;
    return 0;
fail:
    mp_rbac_free(r);
    return rc < 0 ? rc : MP_ERR_INVAL;
}

void mp_rbac_free(struct mp_rbac *r)
{
    if (!r)
        return;
    mp_route_config_free(r->arena);
    free(r);
}

enum mp_rbac_action mp_rbac_action(const struct mp_rbac *r)
{
    return r->action;
}

size_t mp_rbac_policy_count(const struct mp_rbac *r)
{
    return r->n_policies;
}

static bool node_uses_identity(const struct node *n)
{
    switch (n->kind) {
    case N_AND:
    case N_OR:
        for (size_t i = 0; i < n->set.n; i++)
            if (node_uses_identity(n->set.kids[i]))
                return true;
        return false;
    case N_NOT: return node_uses_identity(n->not );
    case N_SNI:
    case N_AUTHENTICATED: return true;
    default: return false;
    }
}

bool mp_rbac_uses_tls_identity(const struct mp_rbac *r)
{
    for (size_t i = 0; i < r->n_policies; i++) {
        const struct policy *p = &r->policies[i];
        for (size_t j = 0; j < p->n_perms; j++)
            if (node_uses_identity(p->perms[j]))
                return true;
        for (size_t j = 0; j < p->n_princs; j++)
            if (node_uses_identity(p->princs[j]))
                return true;
    }
    return false;
}

/* ---- evaluation ------------------------------------------------------------- */

static bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
    if (!sa)
        return false;
    const uint8_t *a;
    if (sa->sa_family == AF_INET && c->family == AF_INET)
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6 && c->family == AF_INET6)
        a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    else
        return false; /* Envoy's CidrRange never matches across IP versions */
    unsigned full = c->prefix_len / 8, rest = c->prefix_len % 8;
    if (memcmp(a, c->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (c->addr[full] & mask);
}

static int sockaddr_port(const struct sockaddr *sa)
{
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return -1;
}

static bool str_match(const struct mp_string_match *m, const char *s)
{
    return mp_string_match_eval(m, s ? s : "", s ? strlen(s) : 0);
}

/* Envoy's AuthenticatedMatcher: any URI SAN, then any DNS SAN, then the subject. */
static bool authenticated_match(const struct node *n, const struct mp_tls_peer *peer)
{
    if (!peer)
        return false; /* not a TLS connection */
    if (n->str.any)
        return true;
    for (size_t i = 0; i < peer->n_uri_sans; i++)
        if (str_match(&n->str.m, peer->uri_sans[i]))
            return true;
    for (size_t i = 0; i < peer->n_dns_sans; i++)
        if (str_match(&n->str.m, peer->dns_sans[i]))
            return true;
    return str_match(&n->str.m, peer->subject);
}

static const struct mp_route_request no_http = {.authority = "", .path = "", .method = ""};

static bool url_path_match(const struct node *n, const struct mp_route_request *http)
{
    if (!http || !http->path || http->path_len == 0)
        return false;
    /* the path without its query and fragment */
    size_t len = 0;
    while (len < http->path_len && http->path[len] != '?' && http->path[len] != '#')
        len++;
    return mp_string_match_eval(&n->str.m, http->path, len);
}

static bool node_match(const struct node *n, const struct mp_rbac_request *rq)
{
    switch (n->kind) {
    case N_ANY: return true;
    case N_AND:
        for (size_t i = 0; i < n->set.n; i++)
            if (!node_match(n->set.kids[i], rq))
                return false;
        return true;
    case N_OR:
        for (size_t i = 0; i < n->set.n; i++)
            if (node_match(n->set.kids[i], rq))
                return true;
        return false;
    case N_NOT: return !node_match(n->not, rq);
    case N_HEADER: return mp_header_match_eval(&n->header, rq->http ? rq->http : &no_http);
    case N_URL_PATH: return url_path_match(n, rq->http);
    case N_DST_IP: return cidr_match(&n->cidr, rq->local);
    case N_DST_PORT_RANGE: {
        int port = sockaddr_port(rq->local);
        return port >= 0 && (uint32_t)port >= n->ports.lo && (uint32_t)port < n->ports.hi;
    }
    case N_SNI: return str_match(&n->str.m, rq->sni);
    case N_AUTHENTICATED: return authenticated_match(n, rq->peer);
    case N_DIRECT_REMOTE_IP: return cidr_match(&n->cidr, rq->direct_remote);
    case N_REMOTE_IP: return cidr_match(&n->cidr, rq->remote ? rq->remote : rq->direct_remote);
    }
    return false;
}

static bool any_match(const struct node *const *v, size_t n, const struct mp_rbac_request *rq)
{
    for (size_t i = 0; i < n; i++)
        if (node_match(v[i], rq))
            return true;
    return false;
}

bool mp_rbac_evaluate(const struct mp_rbac *r, const struct mp_rbac_request *req,
                      struct mp_rbac_result *res)
{
    res->matched = false;
    res->policy = NULL;
    for (size_t i = 0; i < r->n_policies; i++) {
        const struct policy *p = &r->policies[i];
        if (any_match(p->perms, p->n_perms, req) && any_match(p->princs, p->n_princs, req)) {
            res->matched = true;
            res->policy = p->name;
            break;
        }
    }
    switch (r->action) {
    case MP_RBAC_ALLOW: res->allowed = res->matched; break;
    case MP_RBAC_DENY: res->allowed = !res->matched; break;
    default: res->allowed = true; break;
    }
    return res->allowed;
}

int mp_rbac_stat_prefix_join(const char *prefix, const char *suffix, char *out, size_t cap)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    const char *sep = (pl == 0 || prefix[pl - 1] == '.') ? "" : ".";
    int n = snprintf(out, cap, "%s%s%s", prefix ? prefix : "", sep, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= cap)
        return MP_ERR_LIMIT;
    return n;
}
