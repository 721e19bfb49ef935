/* Unit tests for xds_translate_route.c: RouteConfiguration protos (built in
 * C, some sent through protobuf-c bytes) to mp_route_config, and the exact
 * field-path errors for what Envoy rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proxy/mp_common.h"
#include "proxy/route_regex.h"
#include "proxy/route_retry.h"
#include "proxy/router_match.h"
#include "test/unit/route_pb_build.h"
#include "xds/xds_translate_route.h"

static int teardown(void **state)
{
    (void)state;
    tb_free_all();
    mp_regex_thread_cleanup();
    return 0;
}

static Google__Protobuf__Duration *dur(int64_t s, int32_t nanos)
{
    Google__Protobuf__Duration *d = tb_alloc(sizeof(*d));
    google__protobuf__duration__init(d);
    d->seconds = s;
    d->nanos = nanos;
    return d;
}

static Envoy__Config__Core__V3__HeaderValueOption *hvo(const char *k, const char *v, int action)
{
    Envoy__Config__Core__V3__HeaderValueOption *o = tb_alloc(sizeof(*o));
    envoy__config__core__v3__header_value_option__init(o);
    o->header = tb_alloc(sizeof(*o->header));
    envoy__config__core__v3__header_value__init(o->header);
    o->header->key = tb_str(k);
    o->header->value = tb_str(v);
    o->append_action = action;
    return o;
}

static PbHeader *hm_string(const char *name, int kind, const char *v)
{
    PbHeader *h = tb_header(name);
    h->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    h->string_match = tb_string_match(kind, v, 0);
    return h;
}

/* Packs pb to bytes and translates those, as the xDS client does. */
static int from_bytes(PbConfig *pb, struct mp_route_config **cfg, char **err)
{
    size_t n = envoy__config__route__v3__route_configuration__get_packed_size(pb);
    uint8_t *buf = tb_alloc(n + 1);
    assert_int_equal(envoy__config__route__v3__route_configuration__pack(pb, buf), n);
    return mp_route_config_from_bytes(buf, n, cfg, err);
}

static void full_translation(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("outbound|80");
    TB_PUSH(pb->response_headers_to_add, pb->n_response_headers_to_add,
            hvo("X-Mesh", "meshproxy", 0));
    TB_PUSH(pb->internal_only_headers, pb->n_internal_only_headers, tb_str("X-Internal"));

    PbVhost *vh = tb_vhost("reviews", "reviews reviews:9080 Reviews.NS.svc.cluster.local");
    vh->retry_policy = tb_alloc(sizeof(*vh->retry_policy));
    envoy__config__route__v3__retry_policy__init(vh->retry_policy);
    vh->retry_policy->retry_on = tb_str("connect-failure,refused-stream,retriable-status-codes");
    vh->retry_policy->num_retries = tb_alloc(sizeof(Google__Protobuf__UInt32Value));
    google__protobuf__uint32_value__init(vh->retry_policy->num_retries);
    vh->retry_policy->num_retries->value = 2;
    static uint32_t codes[] = {503};
    vh->retry_policy->retriable_status_codes = codes;
    vh->retry_policy->n_retriable_status_codes = 1;
    vh->retry_policy->per_try_timeout = dur(0, 250000000);
    Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *pred = tb_alloc(sizeof(*pred));
    envoy__config__route__v3__retry_policy__retry_host_predicate__init(pred);
    pred->name = tb_str("envoy.retry_host_predicates.previous_hosts");
    TB_PUSH(vh->retry_policy->retry_host_predicate, vh->retry_policy->n_retry_host_predicate, pred);
    TB_PUSH(vh->request_headers_to_remove, vh->n_request_headers_to_remove, tb_str("X-Debug"));

    /* route 0: defaults + inherited retry policy + hash policies */
    PbRoute *r0 = tb_route_cluster(TB_PREFIX("/"), "outbound|9080||reviews");
    r0->name = tb_str("default");
    Envoy__Config__Route__V3__RouteAction__HashPolicy *hp = tb_alloc(sizeof(*hp));
    envoy__config__route__v3__route_action__hash_policy__init(hp);
    hp->policy_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER;
    hp->header = tb_alloc(sizeof(*hp->header));
    envoy__config__route__v3__route_action__hash_policy__header__init(hp->header);
    hp->header->header_name = tb_str("X-User");
    TB_PUSH(r0->route->hash_policy, r0->route->n_hash_policy, hp);
    Envoy__Config__Route__V3__RouteAction__HashPolicy *hc = tb_alloc(sizeof(*hc));
    envoy__config__route__v3__route_action__hash_policy__init(hc);
    hc->terminal = 1;
    hc->policy_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE;
    hc->cookie = tb_alloc(sizeof(*hc->cookie));
    envoy__config__route__v3__route_action__hash_policy__cookie__init(hc->cookie);
    hc->cookie->name = tb_str("session");
    hc->cookie->ttl = dur(60, 0);
    TB_PUSH(r0->route->hash_policy, r0->route->n_hash_policy, hc);
    Envoy__Config__Route__V3__RouteAction__HashPolicy *hs = tb_alloc(sizeof(*hs));
    envoy__config__route__v3__route_action__hash_policy__init(hs);
    hs->policy_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES;
    hs->connection_properties = tb_alloc(sizeof(*hs->connection_properties));
    envoy__config__route__v3__route_action__hash_policy__connection_properties__init(
        hs->connection_properties);
    hs->connection_properties->source_ip = 1;
    TB_PUSH(r0->route->hash_policy, r0->route->n_hash_policy, hs);
    Envoy__Config__Route__V3__RouteAction__UpgradeConfig *up = tb_alloc(sizeof(*up));
    envoy__config__route__v3__route_action__upgrade_config__init(up);
    up->upgrade_type = tb_str("WebSocket");
    TB_PUSH(r0->route->upgrade_configs, r0->route->n_upgrade_configs, up);

    /* route 1: own timeouts, own retry policy, host rewrite, header ops */
    PbRoute *r1 = tb_route_cluster(TB_PATH("/slow"), "slow");
    r1->route->timeout = dur(30, 500000000);
    r1->route->idle_timeout = dur(5, 0);
    r1->route->host_rewrite_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
    r1->route->host_rewrite_literal = tb_str("slow.internal");
    r1->route->retry_policy = tb_alloc(sizeof(*r1->route->retry_policy));
    envoy__config__route__v3__retry_policy__init(r1->route->retry_policy);
    r1->route->retry_policy->retry_on = tb_str("5xx");
    r1->route->max_stream_duration = tb_alloc(sizeof(*r1->route->max_stream_duration));
    envoy__config__route__v3__route_action__max_stream_duration__init(
        r1->route->max_stream_duration);
    r1->route->max_stream_duration->grpc_timeout_header_max = dur(0, 0);
    TB_PUSH(
        r1->request_headers_to_add, r1->n_request_headers_to_add,
        hvo("X-Route", "slow",
            ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD));
    Envoy__Config__Core__V3__HeaderValueOption *legacy = hvo("x-legacy", "1", 0);
    legacy->append = tb_alloc(sizeof(*legacy->append));
    google__protobuf__bool_value__init(legacy->append);
    legacy->append->value = 0;
    TB_PUSH(r1->response_headers_to_add, r1->n_response_headers_to_add, legacy);
    TB_PUSH(r1->response_headers_to_remove, r1->n_response_headers_to_remove, tb_str("Server"));

    TB_ADD_ROUTE(vh, r1);
    TB_ADD_ROUTE(vh, r0);
    TB_ADD_VHOST(pb, vh);

    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    assert_int_equal(from_bytes(pb, &cfg, &err), 0);
    assert_null(err);
    assert_string_equal(cfg->name, "outbound|80");
    assert_int_equal(cfg->headers.n_response_add, 1);
    assert_string_equal(cfg->headers.response_add[0].name, "x-mesh");
    assert_string_equal(cfg->internal_only_headers[0], "x-internal");
    assert_int_equal(cfg->n_vhosts, 1);
    const struct mp_vhost *v = &cfg->vhosts[0];
    assert_string_equal(v->name, "reviews");
    assert_int_equal(v->n_domains, 3);
    assert_string_equal(v->domains[2], "reviews.ns.svc.cluster.local");
    assert_string_equal(v->headers.request_remove[0], "x-debug");
    assert_int_equal(cfg->n_exact, 3);
    assert_ptr_equal(mp_route_config_find_vhost(cfg, "reviews.ns.svc.cluster.local:9080", 33), v);

    const struct mp_route *slow = &v->routes[0];
    assert_int_equal(slow->route.timeout_ms, 30500);
    assert_int_equal(slow->route.idle_timeout_ms, 5000);
    assert_string_equal(slow->route.host_rewrite_literal, "slow.internal");
    assert_true(slow->route.has_retry_policy);
    assert_string_equal(slow->route.retry.retry_on, "5xx");
    assert_int_equal(slow->route.retry.num_retries, 1); /* default when unset */
    assert_int_equal(slow->route.retry.per_try_timeout_ms, -1);
    assert_int_equal(slow->route.grpc_timeout_header_max_ms, 0);
    assert_int_equal(slow->route.max_stream_duration_ms, -1);
    assert_int_equal(slow->headers.request_add[0].append, MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD);
    assert_int_equal(slow->headers.response_add[0].append, MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD);
    assert_string_equal(slow->headers.response_remove[0], "server");
    assert_ptr_equal(slow->vhost, v);

    const struct mp_route *def = &v->routes[1];
    assert_string_equal(def->name, "default");
    assert_int_equal(def->route.cluster_kind, MP_CLUSTER_NAME);
    assert_string_equal(def->route.cluster, "outbound|9080||reviews");
    assert_int_equal(def->route.timeout_ms, 15000);
    assert_int_equal(def->route.idle_timeout_ms, -1);
    assert_true(def->route.has_retry_policy); /* inherited from the vhost */
    assert_int_equal(def->route.retry.num_retries, 2);
    assert_int_equal(def->route.retry.retry_on_flags, MP_RETRY_ON_CONNECT_FAILURE |
                                                          MP_RETRY_ON_REFUSED_STREAM |
                                                          MP_RETRY_ON_RETRIABLE_STATUS_CODES);
    assert_int_equal(def->route.retry.per_try_timeout_ms, 250);
    assert_int_equal(def->route.retry.n_retriable_status_codes, 1);
    assert_int_equal(def->route.retry.retriable_status_codes[0], 503);
    assert_true(def->route.retry.previous_hosts);
    assert_int_equal(def->route.retry.backoff_base_ms, 25);
    assert_int_equal(def->route.retry.backoff_max_ms, 250);
    assert_int_equal(def->route.n_hash_policies, 3);
    assert_int_equal(def->route.hash_policies[0].kind, MP_HASH_HEADER);
    assert_string_equal(def->route.hash_policies[0].name, "x-user");
    assert_int_equal(def->route.hash_policies[1].kind, MP_HASH_COOKIE);
    assert_int_equal(def->route.hash_policies[1].cookie_ttl_ms, 60000);
    assert_true(def->route.hash_policies[1].terminal);
    assert_int_equal(def->route.hash_policies[2].kind, MP_HASH_SOURCE_IP);
    assert_int_equal(def->route.n_upgrades, 1);
    assert_string_equal(def->route.upgrades[0].upgrade_type, "websocket");
    assert_true(def->route.upgrades[0].enabled);
    mp_route_config_free(cfg);
}

static void bad_bytes(void **state)
{
    (void)state;
    struct mp_route_config *cfg = (void *)1;
    char *err = NULL;
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
    assert_int_equal(mp_route_config_from_bytes(junk, sizeof(junk), &cfg, &err), MP_ERR_PARSE);
    assert_null(cfg);
    assert_string_equal(err, "RouteConfiguration: could not decode protobuf");
    free(err);
}

/* ---- errors ------------------------------------------------------------------- */

static void expect_error(PbConfig *pb, const char *want)
{
    struct mp_route_config *cfg = (void *)1;
    char *err = NULL;
    int rc = mp_route_config_from_proto(pb, &cfg, &err);
    assert_int_equal(rc, MP_ERR_INVAL);
    assert_null(cfg);
    assert_non_null(err);
    if (strcmp(err, want) != 0)
        fail_msg("error\n got: %s\nwant: %s", err, want);
    free(err);
    /* The same through bytes. */
    err = NULL;
    assert_int_equal(from_bytes(pb, &cfg, &err), MP_ERR_INVAL);
    assert_string_equal(err, want);
    free(err);
}

static PbVhost *simple_vhost(const char *name, const char *domains)
{
    PbVhost *vh = tb_vhost(name, domains);
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/"), "c"));
    return vh;
}

static void error_invalid_regex(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/a"), "c"));
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/b"), "c"));
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_REGEX("/ok/.*"), "c"));
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_REGEX("("), "c"));
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[3].match.safe_regex.regex: invalid regex \"(\": "
                     "missing closing parenthesis");
}

static void error_header_regex(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    TB_ADD_VHOST(pb, simple_vhost("a", "a.com"));
    PbVhost *vh = tb_vhost("b", "b.com");
    PbMatch *m = TB_PREFIX("/");
    TB_ADD_HEADER(m, tb_header("x-ok"));
    PbHeader *h = tb_header("x-bad");
    h->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    h->string_match = tb_string_match(TB_SM_REGEX, "a{2,1}", 0);
    TB_ADD_HEADER(m, h);
    TB_ADD_ROUTE(vh, tb_route_cluster(m, "c"));
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[1].routes[0].match.headers[1].string_match.safe_regex.regex: "
                     "invalid regex \"a{2,1}\": numbers out of order in {} quantifier");
}

static void error_duplicate_vhost_name(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    TB_ADD_VHOST(pb, simple_vhost("a", "a.com"));
    TB_ADD_VHOST(pb, simple_vhost("b", "b.com"));
    TB_ADD_VHOST(pb, simple_vhost("a", "c.com"));
    expect_error(pb, "virtual_hosts[2].name: duplicate virtual host name \"a\" (also "
                     "virtual_hosts[0])");
}

static void error_duplicate_domain(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    TB_ADD_VHOST(pb, simple_vhost("a", "x.com y.com"));
    TB_ADD_VHOST(pb, simple_vhost("b", "z.com X.COM"));
    expect_error(pb, "virtual_hosts[1].domains[1]: duplicate domain \"x.com\" (also in "
                     "virtual_hosts[0].domains[0])");

    PbConfig *pb2 = tb_config("rc");
    TB_ADD_VHOST(pb2, simple_vhost("a", "*.x.com foo.*"));
    TB_ADD_VHOST(pb2, simple_vhost("b", "x.com *.x.com"));
    expect_error(pb2, "virtual_hosts[1].domains[1]: duplicate domain \"*.x.com\" (also in "
                      "virtual_hosts[0].domains[0])");

    PbConfig *pb3 = tb_config("rc");
    TB_ADD_VHOST(pb3, simple_vhost("a", "*"));
    TB_ADD_VHOST(pb3, simple_vhost("b", "b.com *"));
    expect_error(pb3, "virtual_hosts[1].domains[1]: only a single wildcard domain \"*\" is "
                      "permitted (also in virtual_hosts[0].domains[0])");

    /* The same text as exact and as wildcard is not a duplicate. */
    PbConfig *ok = tb_config("rc");
    TB_ADD_VHOST(ok, simple_vhost("a", "x.com *x.com x.com*"));
    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    assert_int_equal(mp_route_config_from_proto(ok, &cfg, &err), 0);
    mp_route_config_free(cfg);
}

static void error_weights_zero(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    PbRoute *r = tb_route(TB_PREFIX("/"));
    PbAction *a = tb_action(r);
    tb_weighted(a, "a", 0);
    tb_weighted(a, "b", 0);
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].route.weighted_clusters.clusters: sum of weights "
                     "must be greater than 0");
}

static void error_no_action(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/a"), "c"));
    TB_ADD_ROUTE(vh, tb_route(TB_PREFIX("/b")));
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[1]: route has no action (one of route, redirect or "
                     "direct_response is required)");
}

static void error_misc(void **state)
{
    (void)state;
    /* no cluster specifier */
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    PbRoute *r = tb_route(TB_PREFIX("/"));
    tb_action(r);
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].route: one of cluster, cluster_header or "
                     "weighted_clusters is required");

    /* no path specifier */
    pb = tb_config("rc");
    vh = tb_vhost("v", "*");
    PbMatch *m = tb_alloc(sizeof(*m));
    envoy__config__route__v3__route_match__init(m);
    TB_ADD_ROUTE(vh, tb_route_cluster(m, "c"));
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].match: one of prefix, path, safe_regex, "
                     "path_separated_prefix or connect_matcher is required");

    /* pseudo-header mutation */
    pb = tb_config("rc");
    vh = tb_vhost("v", "*");
    r = tb_route_cluster(TB_PREFIX("/"), "c");
    TB_PUSH(r->request_headers_to_add, r->n_request_headers_to_add, hvo(":path", "/x", 0));
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: "
                     "':'-prefixed or host headers may not be modified");

    /* config-level remove of host */
    pb = tb_config("rc");
    TB_ADD_VHOST(pb, simple_vhost("v", "*"));
    TB_PUSH(pb->request_headers_to_remove, pb->n_request_headers_to_remove, tb_str("Host"));
    expect_error(pb, "request_headers_to_remove[0]: ':'-prefixed or host headers may not be "
                     "removed");

    /* bad RE2 substitution */
    pb = tb_config("rc");
    vh = tb_vhost("v", "*");
    r = tb_route_cluster(TB_PREFIX("/"), "c");
    r->route->regex_rewrite = tb_alloc(sizeof(*r->route->regex_rewrite));
    envoy__type__matcher__v3__regex_match_and_substitute__init(r->route->regex_rewrite);
    r->route->regex_rewrite->pattern = tb_regex("/(.*)");
    r->route->regex_rewrite->substitution = tb_str("/\\x");
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].route.regex_rewrite.substitution: invalid "
                     "substitution \"/\\x\": '\\' must be followed by a digit or '\\'");

    /* direct response body over the limit */
    pb = tb_config("rc");
    Google__Protobuf__UInt32Value *max = tb_alloc(sizeof(*max));
    google__protobuf__uint32_value__init(max);
    max->value = 4;
    pb->max_direct_response_body_size_bytes = max;
    vh = tb_vhost("v", "*");
    TB_ADD_ROUTE(vh, tb_route_direct(TB_PREFIX("/"), 200, "hello"));
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].direct_response.body: response body size is 5 "
                     "bytes; maximum is 4");

    /* vhost without domains */
    pb = tb_config("rc");
    vh = tb_vhost("v", "");
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].domains: at least one domain is required");

    /* negative timeout */
    pb = tb_config("rc");
    vh = tb_vhost("v", "*");
    r = tb_route_cluster(TB_PREFIX("/"), "c");
    r->route->timeout = dur(-1, 0);
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    expect_error(pb, "virtual_hosts[0].routes[0].route.timeout: invalid duration (must be >= 0)");
}

static void direct_body_from_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mp_route_body_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from file", 9), 9);
    close(fd);
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    PbRoute *r = tb_route_direct(TB_PREFIX("/"), 503, NULL);
    r->direct_response->body = tb_alloc(sizeof(*r->direct_response->body));
    envoy__config__core__v3__data_source__init(r->direct_response->body);
    r->direct_response->body->specifier_case =
        ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
    r->direct_response->body->filename = tb_str(path);
    TB_ADD_ROUTE(vh, r);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    assert_int_equal(mp_route_config_from_proto(pb, &cfg, &err), 0);
    assert_int_equal(cfg->vhosts[0].routes[0].direct.status, 503);
    assert_int_equal(cfg->vhosts[0].routes[0].direct.body_len, 9);
    assert_string_equal(cfg->vhosts[0].routes[0].direct.body, "from file");
    mp_route_config_free(cfg);
    /* Over max_direct_response_body_size_bytes. */
    Google__Protobuf__UInt32Value *max = tb_alloc(sizeof(*max));
    google__protobuf__uint32_value__init(max);
    max->value = 8;
    pb->max_direct_response_body_size_bytes = max;
    assert_int_equal(mp_route_config_from_proto(pb, &cfg, &err), MP_ERR_INVAL);
    char want[256];
    snprintf(want, sizeof(want),
             "virtual_hosts[0].routes[0].direct_response.body: response body in \"%s\" is larger "
             "than the maximum 8 bytes",
             path);
    assert_string_equal(err, want);
    free(err);
    err = NULL;
    max->value = 9;
    assert_int_equal(mp_route_config_from_proto(pb, &cfg, &err), 0);
    mp_route_config_free(cfg);
    unlink(path);
    r->direct_response->body->filename = tb_str("/nonexistent/mp-body");
    assert_int_equal(mp_route_config_from_proto(pb, &cfg, &err), MP_ERR_INVAL);
    assert_string_equal(err, "virtual_hosts[0].routes[0].direct_response.body.filename: cannot "
                             "open \"/nonexistent/mp-body\": No such file or directory");
    free(err);
}

static Envoy__Config__Route__V3__RateLimit__Action *rl_action(int kind)
{
    Envoy__Config__Route__V3__RateLimit__Action *a = tb_alloc(sizeof(*a));
    envoy__config__route__v3__rate_limit__action__init(a);
    a->action_specifier_case = kind;
    return a;
}

static void rate_limits(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    PbRoute *r = tb_route_cluster(TB_PREFIX("/"), "c");
    Envoy__Config__Route__V3__RateLimit *rl = tb_alloc(sizeof(*rl));
    envoy__config__route__v3__rate_limit__init(rl);
    Envoy__Config__Route__V3__RateLimit__Action *a1 =
        rl_action(ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REQUEST_HEADERS);
    a1->request_headers = tb_alloc(sizeof(*a1->request_headers));
    envoy__config__route__v3__rate_limit__action__request_headers__init(a1->request_headers);
    a1->request_headers->header_name = tb_str("X-Tenant");
    a1->request_headers->descriptor_key = tb_str("tenant");
    TB_PUSH(rl->actions, rl->n_actions, a1);
    Envoy__Config__Route__V3__RateLimit__Action *a2 =
        rl_action(ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_GENERIC_KEY);
    a2->generic_key = tb_alloc(sizeof(*a2->generic_key));
    envoy__config__route__v3__rate_limit__action__generic_key__init(a2->generic_key);
    a2->generic_key->descriptor_value = tb_str("api");
    TB_PUSH(rl->actions, rl->n_actions, a2);
    Envoy__Config__Route__V3__RateLimit__Action *a3 = rl_action(
        ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_HEADER_VALUE_MATCH);
    a3->header_value_match = tb_alloc(sizeof(*a3->header_value_match));
    envoy__config__route__v3__rate_limit__action__header_value_match__init(a3->header_value_match);
    a3->header_value_match->descriptor_value = tb_str("post");
    PbHeader *h = tb_header(":method");
    h->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    h->string_match = tb_string_match(TB_SM_EXACT, "POST", 0);
    TB_PUSH(a3->header_value_match->headers, a3->header_value_match->n_headers, h);
    TB_PUSH(rl->actions, rl->n_actions, a3);
    Envoy__Config__Route__V3__RateLimit__Action *a4 =
        rl_action(ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REMOTE_ADDRESS);
    a4->remote_address = tb_alloc(sizeof(*a4->remote_address));
    envoy__config__route__v3__rate_limit__action__remote_address__init(a4->remote_address);
    TB_PUSH(rl->actions, rl->n_actions, a4);
    TB_PUSH(r->route->rate_limits, r->route->n_rate_limits, rl);
    TB_ADD_ROUTE(vh, r);
    TB_PUSH(vh->rate_limits, vh->n_rate_limits, rl);
    TB_ADD_VHOST(pb, vh);

    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    int rc = from_bytes(pb, &cfg, &err);
    if (rc != 0)
        fail_msg("%s", err);
    const struct mp_route *rt = &cfg->vhosts[0].routes[0];
    assert_int_equal(rt->route.n_rate_limits, 1);
    assert_int_equal(cfg->vhosts[0].n_rate_limits, 1);
    const struct mp_rate_limit_action *a = rt->route.rate_limits[0].actions;
    assert_int_equal(rt->route.rate_limits[0].n_actions, 4);
    assert_int_equal(a[0].kind, MP_RL_REQUEST_HEADERS);
    assert_string_equal(a[0].header_name, "x-tenant");
    assert_string_equal(a[0].descriptor_key, "tenant");
    assert_int_equal(a[1].kind, MP_RL_GENERIC_KEY);
    assert_string_equal(a[1].descriptor_key, "generic_key");
    assert_string_equal(a[1].descriptor_value, "api");
    assert_int_equal(a[2].kind, MP_RL_HEADER_VALUE_MATCH);
    assert_string_equal(a[2].descriptor_key, "header_match");
    assert_true(a[2].expect_match);
    assert_int_equal(a[2].n_headers, 1);
    struct mp_route_request req = {.method = "POST", .method_len = 4};
    assert_true(mp_header_match_eval(&a[2].headers[0], &req));
    assert_int_equal(a[3].kind, MP_RL_REMOTE_ADDRESS);
    assert_string_equal(a[3].descriptor_key, "remote_address");
    mp_route_config_free(cfg);

    a2->generic_key->descriptor_value = tb_str("");
    expect_error(pb, "virtual_hosts[0].routes[0].route.rate_limits[0].actions[1].generic_key."
                     "descriptor_value: must not be empty");
}

/* connect_matcher and non_forwarding_action; references. */
static void connect_and_refs(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "*");
    PbMatch *m = tb_alloc(sizeof(*m));
    envoy__config__route__v3__route_match__init(m);
    m->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_CONNECT_MATCHER;
    m->connect_matcher = tb_alloc(sizeof(*m->connect_matcher));
    envoy__config__route__v3__route_match__connect_matcher__init(m->connect_matcher);
    TB_ADD_ROUTE(vh, tb_route_cluster(m, "tunnel"));
    PbRoute *nf = tb_route(TB_PREFIX("/"));
    nf->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION;
    nf->non_forwarding_action = tb_alloc(sizeof(*nf->non_forwarding_action));
    envoy__config__route__v3__non_forwarding_action__init(nf->non_forwarding_action);
    TB_ADD_ROUTE(vh, nf);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    assert_int_equal(from_bytes(pb, &cfg, &err), 0);
    struct mp_route_request req = {.authority = "h:443",
                                   .authority_len = 5,
                                   .path = "/",
                                   .path_len = 1,
                                   .method = "CONNECT",
                                   .method_len = 7};
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    assert_ptr_equal(r, &cfg->vhosts[0].routes[0]);
    assert_string_equal(r->route.cluster, "tunnel");
    req.method = "GET";
    req.method_len = 3;
    r = mp_route_config_match(cfg, &req);
    assert_int_equal(r->action_kind, MP_ROUTE_ACTION_NON_FORWARDING);
    /* Two holders: the first unref keeps it alive (ASan would see a use
     * after free below otherwise), the second frees it. */
    assert_ptr_equal(mp_route_config_ref(cfg), cfg);
    mp_route_config_unref(cfg);
    assert_string_equal(cfg->vhosts[0].name, "v");
    mp_route_config_unref(cfg);
}

static void retry_on_names(void **state)
{
    (void)state;
    bool known = false;
    const char *s = "5xx, gateway-error,reset,unavailable , cancelled";
    assert_int_equal(mp_retry_on_parse(s, strlen(s), &known),
                     MP_RETRY_ON_5XX | MP_RETRY_ON_GATEWAY_ERROR | MP_RETRY_ON_RESET |
                         MP_RETRY_ON_GRPC_UNAVAILABLE | MP_RETRY_ON_GRPC_CANCELLED);
    assert_true(known);
    s = "5xx,bogus,,";
    assert_int_equal(mp_retry_on_parse(s, strlen(s), &known), MP_RETRY_ON_5XX);
    assert_false(known);
    assert_int_equal(mp_retry_on_parse("", 0, NULL), 0);
    /* Only the first len bytes count. */
    assert_int_equal(mp_retry_on_parse("reset-before-request", 5, NULL), MP_RETRY_ON_RESET);
}

/* Mutated bytes of a valid config: every outcome is a clean success or a
 * clean error (ASan checks nothing leaks or is read out of bounds). */
static void mutated_bytes(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("v", "a.com *.b.com c.* *");
    PbMatch *m = TB_REGEX("/r/[a-z]+");
    TB_ADD_HEADER(m, hm_string("x-a", TB_SM_PREFIX, "p"));
    TB_ADD_QUERY(m, tb_query("q", tb_string_match(TB_SM_REGEX, "v.*", 0)));
    TB_ADD_ROUTE(vh, tb_route_cluster(m, "c1"));
    PbRoute *w = tb_route(TB_SEP("/w"));
    PbAction *a = tb_action(w);
    tb_weighted(a, "x", 1);
    tb_weighted(a, "y", 2);
    a->timeout = dur(3, 0);
    TB_ADD_ROUTE(vh, w);
    TB_ADD_ROUTE(vh, tb_route_direct(TB_PATH("/d"), 418, "teapot"));
    TB_ADD_VHOST(pb, vh);
    size_t n = envoy__config__route__v3__route_configuration__get_packed_size(pb);
    uint8_t *orig = tb_alloc(n);
    uint8_t *buf = tb_alloc(n);
    envoy__config__route__v3__route_configuration__pack(pb, orig);
    unsigned seed = 7;
    int ok = 0, bad = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, orig, n);
        int flips = 1 + rand_r(&seed) % 4;
        for (int f = 0; f < flips; f++)
            buf[rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
        size_t len = (i % 10 == 0) ? (size_t)rand_r(&seed) % n : n;
        struct mp_route_config *cfg = NULL;
        char *err = NULL;
        int rc = mp_route_config_from_bytes(buf, len, &cfg, &err);
        if (rc == 0) {
            assert_non_null(cfg);
            assert_null(err);
            struct mp_route_request req = {
                .authority = "a.com", .authority_len = 5, .path = "/r/abc?q=v1", .path_len = 11};
            (void)mp_route_config_match(cfg, &req);
            mp_route_config_free(cfg);
            ok++;
        } else {
            assert_null(cfg);
            assert_non_null(err);
            free(err);
            bad++;
        }
    }
    assert_true(ok > 0 && bad > 0);
}

/* The matcher translators on their own, with a config as arena holder. */
static void matchers_standalone(void **state)
{
    (void)state;
    struct mp_route_config *owner = mp_route_config_new();
    assert_non_null(owner);
    struct mp_string_match sm;
    char *err = NULL;
    assert_int_equal(
        mp_string_match_from_proto(owner, tb_string_match(TB_SM_PREFIX, "/API", 1), &sm, &err), 0);
    assert_true(mp_string_match_eval(&sm, "/api/x", 6));
    assert_true(mp_string_match_eval(&sm, "/Api/x", 6));
    assert_false(mp_string_match_eval(&sm, "/ap", 3));
    assert_int_equal(
        mp_string_match_from_proto(owner, tb_string_match(TB_SM_REGEX, "x++)", 0), &sm, &err),
        MP_ERR_INVAL);
    assert_string_equal(err, "safe_regex.regex: invalid regex \"x++)\": unmatched closing "
                             "parenthesis");
    free(err);
    err = NULL;
    assert_int_equal(
        mp_string_match_from_proto(owner, tb_string_match(TB_SM_SUFFIX, "", 0), &sm, &err),
        MP_ERR_INVAL);
    assert_string_equal(err, "suffix: must not be empty");
    free(err);
    struct mp_header_match h;
    err = NULL;
    assert_int_equal(
        mp_header_match_from_proto(owner, hm_string("X-A", TB_SM_CONTAINS, "b"), &h, &err), 0);
    struct mp_header_view v = {"x-a", 3, "abc", 3};
    struct mp_route_request req = {.headers = &v, .n_headers = 1};
    assert_true(mp_header_match_eval(&h, &req));
    mp_route_config_unref(owner);
}

static Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *mirror(const char *cluster,
                                                                          uint32_t pct)
{
    Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *m = tb_alloc(sizeof(*m));
    envoy__config__route__v3__route_action__request_mirror_policy__init(m);
    m->cluster = tb_str(cluster);
    if (pct != 100) {
        m->runtime_fraction = tb_alloc(sizeof(*m->runtime_fraction));
        envoy__config__core__v3__runtime_fractional_percent__init(m->runtime_fraction);
        m->runtime_fraction->default_value = tb_alloc(sizeof(Envoy__Type__V3__FractionalPercent));
        envoy__type__v3__fractional_percent__init(m->runtime_fraction->default_value);
        m->runtime_fraction->default_value->numerator = pct;
    }
    return m;
}

/* request_mirror_policies: the most specific level that has any wins. */
static void mirror_policies(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    TB_PUSH(pb->request_mirror_policies, pb->n_request_mirror_policies, mirror("cfg-shadow", 100));
    PbVhost *a = tb_vhost("a", "a.com");
    TB_ADD_ROUTE(a, tb_route_cluster(TB_PREFIX("/own"), "c"));
    PbRoute *own = a->routes[0];
    TB_PUSH(own->route->request_mirror_policies, own->route->n_request_mirror_policies,
            mirror("route-shadow", 10));
    TB_ADD_ROUTE(a, tb_route_cluster(TB_PREFIX("/"), "c"));
    TB_ADD_VHOST(pb, a);
    PbVhost *b = tb_vhost("b", "b.com");
    TB_PUSH(b->request_mirror_policies, b->n_request_mirror_policies, mirror("vh-shadow", 50));
    TB_ADD_ROUTE(b, tb_route_cluster(TB_PREFIX("/"), "c"));
    TB_ADD_VHOST(pb, b);
    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    assert_int_equal(from_bytes(pb, &cfg, &err), 0);
    const struct mp_route_action *r0 = &cfg->vhosts[0].routes[0].route;
    assert_int_equal(r0->n_mirrors, 1);
    assert_string_equal(r0->mirrors[0].cluster, "route-shadow");
    assert_int_equal(r0->mirrors[0].numerator, 10);
    assert_int_equal(r0->mirrors[0].denominator, 100);
    const struct mp_route_action *r1 = &cfg->vhosts[0].routes[1].route;
    assert_int_equal(r1->n_mirrors, 1);
    assert_string_equal(r1->mirrors[0].cluster, "cfg-shadow");
    assert_int_equal(r1->mirrors[0].numerator, 100);
    const struct mp_route_action *r2 = &cfg->vhosts[1].routes[0].route;
    assert_string_equal(r2->mirrors[0].cluster, "vh-shadow");
    assert_int_equal(r2->mirrors[0].numerator, 50);
    mp_route_config_free(cfg);

    b->request_mirror_policies[0]->cluster = tb_str("");
    expect_error(pb, "virtual_hosts[1].request_mirror_policies[0]: one of cluster or "
                     "cluster_header is required");
}

/* mp_vhost_from_proto on its own: errors relative to the virtual host. */
static void vhost_alone(void **state)
{
    (void)state;
    struct mp_route_config *cfg = mp_route_config_new();
    assert_non_null(cfg);
    PbVhost *vh = tb_vhost("v", "v.com");
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PATH("/a"), "a"));
    struct mp_vhost out = {0};
    char *err = NULL;
    assert_int_equal(mp_vhost_from_proto(cfg, vh, &out, &err), 0);
    assert_int_equal(out.n_routes, 1);
    struct mp_route_request req = {.path = "/a", .path_len = 2};
    assert_ptr_equal(mp_vhost_match(&out, &req), &out.routes[0]);
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_REGEX("a)"), "a"));
    struct mp_vhost out2 = {0};
    assert_int_equal(mp_vhost_from_proto(cfg, vh, &out2, &err), MP_ERR_INVAL);
    assert_string_equal(err, "routes[1].match.safe_regex.regex: invalid regex \"a)\": "
                             "unmatched closing parenthesis");
    free(err);
    mp_route_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(full_translation, teardown),
        cmocka_unit_test_teardown(bad_bytes, teardown),
        cmocka_unit_test_teardown(error_invalid_regex, teardown),
        cmocka_unit_test_teardown(error_header_regex, teardown),
        cmocka_unit_test_teardown(error_duplicate_vhost_name, teardown),
        cmocka_unit_test_teardown(error_duplicate_domain, teardown),
        cmocka_unit_test_teardown(error_weights_zero, teardown),
        cmocka_unit_test_teardown(error_no_action, teardown),
        cmocka_unit_test_teardown(error_misc, teardown),
        cmocka_unit_test_teardown(direct_body_from_file, teardown),
        cmocka_unit_test_teardown(rate_limits, teardown),
        cmocka_unit_test_teardown(connect_and_refs, teardown),
        cmocka_unit_test_teardown(retry_on_names, teardown),
        cmocka_unit_test_teardown(mutated_bytes, teardown),
        cmocka_unit_test_teardown(matchers_standalone, teardown),
        cmocka_unit_test_teardown(mirror_policies, teardown),
        cmocka_unit_test_teardown(vhost_alone, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
