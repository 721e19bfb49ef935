/* Unit tests for proxy/rbac.c: every permission and principal kind, the
 * three actions, policy order, and the translation errors. Configs are
 * written in YAML and decoded with the config module, as a user writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"
#include "proxy/rbac.h"
#include "proxy/route_table.h"
#include "proxy/tls_transport.h"

/* ---- helpers ---------------------------------------------------------------- */

static int decode(const char *yaml, Envoy__Config__Rbac__V3__RBAC **pb)
{
    char *err = NULL;
    ProtobufCMessage *m = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml), &envoy__config__rbac__v3__rbac__descriptor, 0, &m,
                             &err);
    if (rc != 0)
        fprintf(stderr, "yaml: %s\n", err ? err : "?");
    free(err);
    *pb = (Envoy__Config__Rbac__V3__RBAC *)m;
    return rc;
}

static struct mp_rbac *load(const char *yaml)
{
    Envoy__Config__Rbac__V3__RBAC *pb = NULL;
    assert_int_equal(decode(yaml, &pb), 0);
    struct mp_rbac *r = NULL;
    char *err = NULL;
    int rc = mp_rbac_from_proto(pb, &r, &err);
    if (rc != 0)
        fprintf(stderr, "rbac: %s\n", err ? err : "?");
    assert_int_equal(rc, 0);
    free(err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    return r;
}

static void expect_error(const char *yaml, const char *needle)
{
    Envoy__Config__Rbac__V3__RBAC *pb = NULL;
    assert_int_equal(decode(yaml, &pb), 0);
    struct mp_rbac *r = NULL;
    char *err = NULL;
    int rc = mp_rbac_from_proto(pb, &r, &err);
    assert_true(rc < 0);
    assert_null(r);
    assert_non_null(err);
    if (!strstr(err, needle))
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, needle);
    assert_non_null(strstr(err, needle));
    free(err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
}

/* A request context with its storage. */
struct ctx {
    struct mp_header_view hv[16];
    struct mp_route_request http;
    struct sockaddr_storage direct, remote, local;
    struct mp_rbac_request rq;
    struct mp_tls_peer peer;
};

static void set_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
    }
}

/* HTTP request from 10.1.2.3:5555 to 127.0.0.1:8080; varargs: header name/value pairs, NULL. */
static void ctx_http(struct ctx *c, const char *method, const char *path, ...)
{
    memset(c, 0, sizeof(*c));
    size_t n = 0;
    c->hv[n++] = (struct mp_header_view){":method", 7, method, strlen(method)};
    c->hv[n++] = (struct mp_header_view){":path", 5, path, strlen(path)};
    va_list ap;
    va_start(ap, path);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        c->hv[n++] = (struct mp_header_view){name, strlen(name), value, strlen(value)};
    }
    va_end(ap);
    c->http = (struct mp_route_request){.authority = "svc",
                                        .authority_len = 3,
                                        .path = path,
                                        .path_len = strlen(path),
                                        .method = method,
                                        .method_len = strlen(method),
                                        .headers = c->hv,
                                        .n_headers = n};
    set_addr(&c->direct, "10.1.2.3", 5555);
    set_addr(&c->local, "127.0.0.1", 8080);
    c->rq.http = &c->http;
    c->rq.direct_remote = (struct sockaddr *)&c->direct;
    c->rq.local = (struct sockaddr *)&c->local;
}

static bool allowed(const struct mp_rbac *r, const struct ctx *c)
{
    struct mp_rbac_result res;
    return mp_rbac_evaluate(r, &c->rq, &res);
}

/* ALLOW with one policy: principals any, the given permission. */
#define PERM(p)                                                                                    \
    "action: ALLOW\npolicies:\n  p:\n    permissions:\n    - " p                                   \
    "\n    principals:\n    - any: true\n"
/* ALLOW with one policy: permissions any, the given principal. */
#define PRINC(p)                                                                                   \
    "action: ALLOW\npolicies:\n  p:\n    permissions:\n    - any: true\n    principals:\n    - " p \
    "\n"

/* ---- actions ---------------------------------------------------------------- */

static void test_actions(void **state)
{
    (void)state;
    struct ctx c;
    ctx_http(&c, "GET", "/a", NULL);
    struct mp_rbac_result res;

    struct mp_rbac *r = load(PERM("header: { name: ':method', string_match: { exact: GET } }"));
    assert_int_equal(mp_rbac_action(r), MP_RBAC_ALLOW);
    assert_true(mp_rbac_evaluate(r, &c.rq, &res));
    assert_true(res.matched);
    assert_string_equal(res.policy, "p");
    ctx_http(&c, "POST", "/a", NULL);
    assert_false(mp_rbac_evaluate(r, &c.rq, &res));
    assert_false(res.matched);
    assert_null(res.policy);
    mp_rbac_free(r);

    r = load("action: DENY\npolicies:\n  p:\n    permissions:\n    - header: { name: ':method', "
             "string_match: { exact: POST } }\n    principals:\n    - any: true\n");
    assert_int_equal(mp_rbac_action(r), MP_RBAC_DENY);
    assert_false(mp_rbac_evaluate(r, &c.rq, &res));
    assert_string_equal(res.policy, "p");
    ctx_http(&c, "GET", "/a", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);

    r = load("action: LOG\npolicies:\n  p:\n    permissions:\n    - any: true\n    principals:\n "
             "   - any: true\n");
    assert_int_equal(mp_rbac_action(r), MP_RBAC_LOG);
    assert_true(mp_rbac_evaluate(r, &c.rq, &res));
    assert_true(res.matched);
    mp_rbac_free(r);

    /* no policies: ALLOW denies everything, DENY allows everything */
    r = load("action: ALLOW\n");
    assert_int_equal(mp_rbac_policy_count(r), 0);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
    r = load("action: DENY\n");
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_policy_order(void **state)
{
    (void)state;
    /* both match; the lexicographically first name is reported */
    struct mp_rbac *r =
        load("action: DENY\npolicies:\n"
             "  zeta:\n    permissions: [{any: true}]\n    principals: [{any: true}]\n"
             "  alpha:\n    permissions: [{any: true}]\n    principals: [{any: true}]\n");
    assert_int_equal(mp_rbac_policy_count(r), 2);
    struct ctx c;
    ctx_http(&c, "GET", "/", NULL);
    struct mp_rbac_result res;
    assert_false(mp_rbac_evaluate(r, &c.rq, &res));
    assert_string_equal(res.policy, "alpha");
    mp_rbac_free(r);

    /* a policy needs a permission AND a principal */
    r = load("action: ALLOW\npolicies:\n  p:\n    permissions: [{any: true}]\n    principals:\n"
             "    - header: { name: x-user, string_match: { exact: bob } }\n");
    ctx_http(&c, "GET", "/", "x-user", "alice", NULL);
    assert_false(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-user", "bob", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

/* ---- permissions ------------------------------------------------------------ */

static void test_perm_header(void **state)
{
    (void)state;
    struct ctx c;
    struct mp_rbac *r = load(PERM("header: { name: X-Env, string_match: { prefix: prod } }"));
    ctx_http(&c, "GET", "/", "x-env", "prod-eu", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-env", "staging", NULL);
    assert_false(allowed(r, &c));
    ctx_http(&c, "GET", "/", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* present_match: false matches a missing header */
    r = load(PERM("header: { name: x-debug, present_match: false }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-debug", "1", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* :path includes the query; safe_regex is a full match; repeated headers join with "," */
    r = load(PERM("header: { name: ':path', safe_regex_match: { regex: '/api/v[0-9]+\\?x=1' } }"));
    ctx_http(&c, "GET", "/api/v2?x=1", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/api/v2", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
    r = load(PERM("header: { name: x-a, exact_match: '1,2' }"));
    ctx_http(&c, "GET", "/", "x-a", "1", "x-a", "2", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);

    /* network use (no HTTP): header matchers see no headers */
    r = load(PERM("header: { name: x-debug, present_match: false }"));
    ctx_http(&c, "GET", "/", "x-debug", "1", NULL);
    c.rq.http = NULL;
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_perm_url_path(void **state)
{
    (void)state;
    struct ctx c;
    struct mp_rbac *r = load(PERM("url_path: { path: { exact: /admin } }"));
    ctx_http(&c, "GET", "/admin?user=x", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/admin#frag", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/admin/x", NULL);
    assert_false(allowed(r, &c));
    c.rq.http = NULL; /* network: never matches */
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("url_path: { path: { prefix: /Public/, ignore_case: true } }"));
    ctx_http(&c, "GET", "/public/x", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/private/x", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("url_path: { path: { suffix: .json } }"));
    ctx_http(&c, "GET", "/a/b.json?q=.html", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_perm_destination(void **state)
{
    (void)state;
    struct ctx c;
    ctx_http(&c, "GET", "/", NULL); /* local 127.0.0.1:8080 */
    struct mp_rbac *r = load(PERM("destination_ip: { address_prefix: 127.0.0.0, prefix_len: 8 }"));
    assert_true(allowed(r, &c));
    set_addr(&c.local, "10.0.0.1", 8080);
    assert_false(allowed(r, &c));
    set_addr(&c.local, "::1", 8080); /* other IP version never matches */
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("destination_ip: { address_prefix: 'fd00::', prefix_len: 12 }"));
    set_addr(&c.local, "fd0f::5", 80);
    assert_true(allowed(r, &c));
    set_addr(&c.local, "fd10::5", 80);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* prefix_len not on a byte boundary */
    r = load(PERM("destination_ip: { address_prefix: 192.168.0.0, prefix_len: 20 }"));
    set_addr(&c.local, "192.168.15.255", 1);
    assert_true(allowed(r, &c));
    set_addr(&c.local, "192.168.16.0", 1);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    ctx_http(&c, "GET", "/", NULL);
    r = load(PERM("destination_port: 8080"));
    assert_true(allowed(r, &c));
    set_addr(&c.local, "127.0.0.1", 8081);
    assert_false(allowed(r, &c));
    c.rq.local = NULL;
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("destination_port_range: { start: 8000, end: 8081 }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    set_addr(&c.local, "127.0.0.1", 8081); /* end is exclusive */
    assert_false(allowed(r, &c));
    set_addr(&c.local, "127.0.0.1", 8000);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_perm_sni(void **state)
{
    (void)state;
    struct ctx c;
    ctx_http(&c, "GET", "/", NULL);
    struct mp_rbac *r = load(PERM("requested_server_name: { suffix: .example.com }"));
    assert_false(allowed(r, &c)); /* no SNI: "" */
    c.rq.sni = "api.example.com";
    assert_true(allowed(r, &c));
    c.rq.sni = "api.example.org";
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_perm_sets(void **state)
{
    (void)state;
    struct ctx c;
    struct mp_rbac *r =
        load(PERM("and_rules: { rules: [ { header: { name: ':method', string_match: { exact: GET "
                  "} } }, { url_path: { path: { prefix: /public/ } } } ] }"));
    ctx_http(&c, "GET", "/public/a", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "POST", "/public/a", NULL);
    assert_false(allowed(r, &c));
    ctx_http(&c, "GET", "/private", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("or_rules: { rules: [ { destination_port: 1 }, { url_path: { path: { exact: / "
                  "} } } ] }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/x", NULL);
    assert_false(allowed(r, &c));
    set_addr(&c.local, "127.0.0.1", 1);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PERM("not_rule: { url_path: { path: { prefix: /admin } } }"));
    ctx_http(&c, "GET", "/admin/x", NULL);
    assert_false(allowed(r, &c));
    ctx_http(&c, "GET", "/x", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);

    /* several permissions are ORed */
    r = load("action: ALLOW\npolicies:\n  p:\n    permissions:\n    - destination_port: 1\n    - "
             "destination_port: 8080\n    principals: [{any: true}]\n");
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

/* ---- principals ------------------------------------------------------------- */

static void test_princ_authenticated(void **state)
{
    (void)state;
    struct ctx c;
    ctx_http(&c, "GET", "/", NULL);
    char *uris[] = {"spiffe://cluster.local/ns/default/sa/web",
                    "spiffe://cluster.local/ns/default/sa/frontend"};
    char *dns[] = {"frontend.default.svc"};
    c.peer.presented = true;
    c.peer.verified = true;
    c.peer.uri_sans = uris;
    c.peer.n_uri_sans = 2;
    c.peer.dns_sans = dns;
    c.peer.n_dns_sans = 1;
    c.peer.subject = "CN=frontend,O=mesh";

    struct mp_rbac *r = load(PRINC(
        "authenticated: { principal_name: { exact: spiffe://cluster.local/ns/default/sa/frontend "
        "} }"));
    assert_false(allowed(r, &c)); /* no TLS */
    c.rq.peer = &c.peer;
    assert_true(allowed(r, &c)); /* any URI SAN */
    c.peer.n_uri_sans = 1;
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* DNS SAN, then subject */
    r = load(PRINC("authenticated: { principal_name: { exact: frontend.default.svc } }"));
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
    r = load(PRINC("authenticated: { principal_name: { prefix: 'CN=frontend' } }"));
    assert_true(allowed(r, &c));
    c.peer.subject = NULL;
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
    r = load(PRINC("authenticated: { principal_name: { safe_regex: { regex: "
                   "'spiffe://cluster\\.local/ns/default/sa/.*' } } }"));
    assert_true(allowed(r, &c));
    mp_rbac_free(r);

    /* no principal_name: any TLS connection */
    r = load(PRINC("authenticated: {}"));
    assert_true(allowed(r, &c));
    c.rq.peer = NULL;
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_princ_ips(void **state)
{
    (void)state;
    struct ctx c;
    ctx_http(&c, "GET", "/", NULL); /* direct 10.1.2.3 */
    struct mp_rbac *r =
        load(PRINC("direct_remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 }"));
    assert_true(allowed(r, &c));
    set_addr(&c.direct, "11.1.2.3", 1);
    assert_false(allowed(r, &c));
    c.rq.direct_remote = NULL;
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("source_ip: { address_prefix: 10.1.2.3, prefix_len: 32 }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    set_addr(&c.direct, "10.1.2.4", 1);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* remote_ip uses the remote address when given (x-forwarded-for), else the peer */
    r = load(PRINC("remote_ip: { address_prefix: 192.168.1.0, prefix_len: 24 }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_false(allowed(r, &c));
    set_addr(&c.remote, "192.168.1.77", 0);
    c.rq.remote = (struct sockaddr *)&c.remote;
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
    /* ... while direct_remote_ip keeps looking at the peer */
    r = load(PRINC("direct_remote_ip: { address_prefix: 192.168.1.0, prefix_len: 24 }"));
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    /* prefix_len 0 matches every address of that version */
    r = load(PRINC("remote_ip: { address_prefix: 0.0.0.0 }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_princ_http(void **state)
{
    (void)state;
    struct ctx c;
    struct mp_rbac *r = load(PRINC("header: { name: x-admin, present_match: true }"));
    ctx_http(&c, "GET", "/", "x-admin", "", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("header: { name: x-user, string_match: { exact: bob }, invert_match: true }"));
    ctx_http(&c, "GET", "/", "x-user", "alice", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-user", "bob", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("url_path: { path: { contains: /v1/ } }"));
    ctx_http(&c, "GET", "/api/v1/x?a=/v1/", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/api/v2/x?a=/v1/", NULL); /* the query is not part of url_path */
    assert_false(allowed(r, &c));
    mp_rbac_free(r);
}

static void test_princ_sets(void **state)
{
    (void)state;
    struct ctx c;
    struct mp_rbac *r =
        load(PRINC("and_ids: { ids: [ { direct_remote_ip: { address_prefix: 10.0.0.0, prefix_len: "
                   "8 } }, { header: { name: x-team, string_match: { exact: a } } } ] }"));
    ctx_http(&c, "GET", "/", "x-team", "a", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-team", "b", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("or_ids: { ids: [ { header: { name: x-a, present_match: true } }, { header: { "
                   "name: x-b, present_match: true } } ] }"));
    ctx_http(&c, "GET", "/", "x-b", "1", NULL);
    assert_true(allowed(r, &c));
    ctx_http(&c, "GET", "/", "x-c", "1", NULL);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("not_id: { direct_remote_ip: { address_prefix: 127.0.0.1, prefix_len: 32 } }"));
    ctx_http(&c, "GET", "/", NULL);
    assert_true(allowed(r, &c));
    set_addr(&c.direct, "127.0.0.1", 1);
    assert_false(allowed(r, &c));
    mp_rbac_free(r);

    r = load(PRINC("any: true"));
    assert_true(allowed(r, &c));
    mp_rbac_free(r);
}

/* ---- translation errors ----------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    expect_error(PERM("metadata: { filter: f, path: [{key: k}], value: { present_match: true } }"),
                 "policies[\"p\"].permissions[0].metadata: metadata matchers are not supported");
    expect_error(PRINC("metadata: { filter: f, path: [{key: k}], value: { present_match: true } }"),
                 "policies[\"p\"].principals[0].metadata: metadata matchers are not supported");
    expect_error(PRINC("filter_state: { key: k, string_match: { exact: v } }"),
                 "principals[0].filter_state: filter state matchers are not supported");
    expect_error(PERM("destination_ip: { address_prefix: 10.0.0.0, prefix_len: 33 }"),
                 "permissions[0].destination_ip.prefix_len: 33 is more than 32");
    expect_error(PRINC("remote_ip: { address_prefix: not-an-ip, prefix_len: 8 }"),
                 "principals[0].remote_ip.address_prefix: \"not-an-ip\" is not an IP address");
    expect_error(PERM("destination_port: 70000"), "destination_port: 70000 is not a port");
    expect_error(PERM("destination_port_range: { start: 10, end: 10 }"),
                 "destination_port_range: start 10 is not below end 10");
    expect_error(PERM("and_rules: { rules: [ { not_rule: { header: { name: '' } } } ] }"),
                 "permissions[0].and_rules.rules[0].not_rule.header.name: must not be empty");
    expect_error(PRINC("or_ids: { ids: [] }"), "principals[0].or_ids.ids: at least one id");
    expect_error(PERM("url_path: { path: { safe_regex: { regex: '(' } } }"),
                 "permissions[0].url_path.path.safe_regex.regex");
    expect_error("action: ALLOW\npolicies:\n  p:\n    permissions: [{any: true}]\n",
                 "policies[\"p\"].principals: at least one principal is required");
    expect_error("action: ALLOW\npolicies:\n  p:\n    permissions: [{any: true}]\n    principals: "
                 "[{any: true}]\n    condition: { const_expr: { bool_value: true } }\n",
                 "policies[\"p\"].condition: CEL conditions are not supported");
    expect_error(PERM("{}"), "permissions[0]: one of any");

    /* nesting is bounded */
    char yaml[8192];
    char inner[4096] = "any: true";
    for (int i = 0; i < 40; i++) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "not_rule: { %s }", inner);
        memcpy(inner, tmp, sizeof(inner));
    }
    snprintf(yaml, sizeof(yaml), PERM("%s"), inner);
    expect_error(yaml, "nest deeper");
}

static void test_uses_tls_identity(void **state)
{
    (void)state;
    struct mp_rbac *r = load(PRINC("remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 }"));
    assert_false(mp_rbac_uses_tls_identity(r));
    mp_rbac_free(r);
    r = load(PRINC("not_id: { or_ids: { ids: [ { any: true }, { authenticated: {} } ] } }"));
    assert_true(mp_rbac_uses_tls_identity(r));
    mp_rbac_free(r);
    r = load(PERM("and_rules: { rules: [ { requested_server_name: { exact: a } } ] }"));
    assert_true(mp_rbac_uses_tls_identity(r));
    mp_rbac_free(r);
}

static void test_stat_prefix_join(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(mp_rbac_stat_prefix_join("tcp.", "rbac.", buf, sizeof(buf)), 9);
    assert_string_equal(buf, "tcp.rbac.");
    mp_rbac_stat_prefix_join("tcp", "rbac.", buf, sizeof(buf));
    assert_string_equal(buf, "tcp.rbac.");
    mp_rbac_stat_prefix_join("", "rbac.", buf, sizeof(buf));
    assert_string_equal(buf, "rbac.");
    assert_int_equal(mp_rbac_stat_prefix_join("abcdef", "rbac.", buf, 8), MP_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions),           cmocka_unit_test(test_policy_order),
        cmocka_unit_test(test_perm_header),       cmocka_unit_test(test_perm_url_path),
        cmocka_unit_test(test_perm_destination),  cmocka_unit_test(test_perm_sni),
        cmocka_unit_test(test_perm_sets),         cmocka_unit_test(test_princ_authenticated),
        cmocka_unit_test(test_princ_ips),         cmocka_unit_test(test_princ_http),
        cmocka_unit_test(test_princ_sets),        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_uses_tls_identity), cmocka_unit_test(test_stat_prefix_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
