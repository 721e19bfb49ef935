/* Failing-allocator run over the authz engines: every allocation of an RBAC
 * translation (policies, nested sets, header and regex matchers) and of an
 * HTTPFault translation fails in turn; each run must free all it took and
 * report the failure, and the run with no failure must give a working engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "filters/http/fault_config.h"
#include "nomem_alloc.h"
#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"
#include "proxy/rbac.h"
#include "proxy/route_regex.h"
#include "proxy/route_table.h"

static const char RBAC_YAML[] =
    "action: ALLOW\n"
    "policies:\n"
    "  b-policy:\n"
    "    permissions:\n"
    "    - and_rules: { rules: [ { header: { name: ':method', string_match: { exact: GET } } },\n"
    "                            { url_path: { path: { safe_regex: { regex: '/api/v[0-9]+/.*' } } "
    "} } "
    "] }\n"
    "    - not_rule: { destination_port_range: { start: 1, end: 1024 } }\n"
    "    principals:\n"
    "    - or_ids: { ids: [ { authenticated: { principal_name: { prefix: 'spiffe://' } } },\n"
    "                       { remote_ip: { address_prefix: 10.0.0.0, prefix_len: 8 } } ] }\n"
    "  a-policy:\n"
    "    permissions: [ { requested_server_name: { suffix: .svc } } ]\n"
    "    principals: [ { header: { name: x-user, string_match: { contains: adm } } } ]\n";

static const char FAULT_YAML[] =
    "abort: { http_status: 503, percentage: { numerator: 10 } }\n"
    "delay: { fixed_delay: 0.2s, percentage: { numerator: 5 } }\n"
    "headers:\n- { name: x-canary, safe_regex_match: { regex: 'y.*' } }\n"
    "downstream_nodes: [ a, b ]\n"
    "upstream_cluster: backend\n";

static ProtobufCMessage *g_rbac_pb, *g_fault_pb;

static ProtobufCMessage *decode(const char *yaml, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    assert_int_equal(mp_pb_from_yaml(yaml, strlen(yaml), d, 0, &m, &err), 0);
    free(err);
    return m;
}

static bool rbac_scenario(void)
{
    struct mp_rbac *r = NULL;
    char *err = NULL;
    int rc = mp_rbac_from_proto((const Envoy__Config__Rbac__V3__RBAC *)g_rbac_pb, &r, &err);
    free(err);
    if (rc < 0) {
        assert_null(r);
        return false;
    }
    struct mp_header_view hv[] = {{":method", 7, "GET", 3}, {":path", 5, "/api/v2/x", 9}};
    struct mp_route_request http = {.path = "/api/v2/x",
                                    .path_len = 9,
                                    .method = "GET",
                                    .method_len = 3,
                                    .headers = hv,
                                    .n_headers = 2};
    struct sockaddr_in peer = {.sin_family = AF_INET}, local = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.1.1", &peer.sin_addr);
    local.sin_port = htons(8080);
    struct mp_rbac_request rq = {.http = &http,
                                 .direct_remote = (struct sockaddr *)&peer,
                                 .local = (struct sockaddr *)&local};
    struct mp_rbac_result res;
    bool ok = mp_rbac_evaluate(r, &rq, &res) && strcmp(res.policy, "b-policy") == 0;
    mp_rbac_free(r);
    return ok;
}

static bool fault_scenario(void)
{
    struct mp_fault_config *c = NULL;
    char *err = NULL;
    int rc = mp_fault_config_from_proto(
        (const Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *)g_fault_pb, &c, &err);
    free(err);
    if (rc < 0) {
        assert_null(c);
        return false;
    }
    bool ok = c->abort == MP_FAULT_ABORT_HTTP && c->n_headers == 1 && c->n_downstream_nodes == 2;
    mp_fault_config_free(c);
    return ok;
}

static void test_rbac_every_failure(void **state)
{
    (void)state;
    g_rbac_pb = decode(RBAC_YAML, &envoy__config__rbac__v3__rbac__descriptor);
    assert_true(rbac_scenario());
    mp_regex_thread_cleanup(); /* the match data cached by that run is not the scenario's */
    nomem_check_every_failure(rbac_scenario, mp_regex_thread_cleanup, 2000, 10);
    protobuf_c_message_free_unpacked(g_rbac_pb, NULL);
    mp_regex_thread_cleanup();
}

static void test_fault_every_failure(void **state)
{
    (void)state;
    g_fault_pb =
        decode(FAULT_YAML, &envoy__extensions__filters__http__fault__v3__httpfault__descriptor);
    assert_true(fault_scenario());
    nomem_check_every_failure(fault_scenario, mp_regex_thread_cleanup, 2000, 5);
    protobuf_c_message_free_unpacked(g_fault_pb, NULL);
    mp_regex_thread_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rbac_every_failure),
        cmocka_unit_test(test_fault_every_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
