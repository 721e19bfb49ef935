/*
 * test_tls_filter_chain_match.c: FilterChainMatch translation and Envoy's
 * selection order (port, destination IP, SNI exact/wildcard, transport, ALPN,
 * source type / IP / port).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxy/filter_chain_match.h"
#include "proxy/mp_common.h"

typedef Envoy__Config__Listener__V3__FilterChainMatch FCM;

/* Builds a FilterChainMatch proto from a compact description. */
struct spec {
    uint32_t port;
    const char *prefix; /* "10.0.0.0/8" or NULL */
    const char *sni[3];
    const char *transport;
    const char *alpn[3];
    int source_type;
    const char *src_prefix;
    uint32_t src_port;
};

static int count(const char *const *v, int max)
{
    int n = 0;
    while (n < max && v[n] != NULL)
        n++;
    return n;
}

static struct mp_fc_match *translate(const struct spec *sp)
{
    FCM pb = ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT;
    Google__Protobuf__UInt32Value port = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    Envoy__Config__Core__V3__CidrRange cr = ENVOY__CONFIG__CORE__V3__CIDR_RANGE__INIT,
                                       scr = ENVOY__CONFIG__CORE__V3__CIDR_RANGE__INIT;
    Envoy__Config__Core__V3__CidrRange *crs[1] = {&cr}, *scrs[1] = {&scr};
    Google__Protobuf__UInt32Value plen = GOOGLE__PROTOBUF__UINT32_VALUE__INIT,
                                  splen = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    char addr[64], saddr[64];
    uint32_t sport = sp->src_port;
    if (sp->port) {
        port.value = sp->port;
        pb.destination_port = &port;
    }
    if (sp->prefix) {
        snprintf(addr, sizeof(addr), "%s", sp->prefix);
        char *slash = strchr(addr, '/');
        *slash = 0;
        plen.value = (uint32_t)atoi(slash + 1);
        cr.address_prefix = addr;
        cr.prefix_len = &plen;
        pb.prefix_ranges = crs;
        pb.n_prefix_ranges = 1;
    }
    if (sp->src_prefix) {
        snprintf(saddr, sizeof(saddr), "%s", sp->src_prefix);
        char *slash = strchr(saddr, '/');
        *slash = 0;
        splen.value = (uint32_t)atoi(slash + 1);
        scr.address_prefix = saddr;
        scr.prefix_len = &splen;
        pb.source_prefix_ranges = scrs;
        pb.n_source_prefix_ranges = 1;
    }
    pb.server_names = (char **)sp->sni;
    pb.n_server_names = (size_t)count(sp->sni, 3);
    pb.application_protocols = (char **)sp->alpn;
    pb.n_application_protocols = (size_t)count(sp->alpn, 3);
    if (sp->transport)
        pb.transport_protocol = (char *)sp->transport;
    pb.source_type = sp->source_type;
    if (sport) {
        pb.source_ports = &sport;
        pb.n_source_ports = 1;
    }
    struct mp_fc_match *m = calloc(1, sizeof(*m));
    char *err = NULL;
    int rc = mp_fc_match_translate(&pb, m, &err);
    if (rc != 0)
        fail_msg("translate: %s", err);
    return m;
}

static const struct spec chains[] = {
    /* 0 */ {.port = 8080, .transport = "tls", .alpn = {"istio-http/1.1", "istio-h2"}},
    /* 1 */ {.port = 8080, .transport = "raw_buffer"},
    /* 2 */ {.port = 8080, .transport = "tls"},
    /* 3 */ {.prefix = "0.0.0.0/0"},
    /* 4 */ {.port = 9090, .sni = {"api.example.com"}},
    /* 5 */ {.port = 9090, .sni = {"*.example.com"}},
    /* 6 */ {.port = 9090, .sni = {"*.b.example.com", "other.test"}},
    /* 7 */ {.port = 9090},
    /* 8 */ {.port = 7000, .prefix = "10.0.0.0/8"},
    /* 9 */ {.port = 7000, .prefix = "10.1.0.0/16"},
    /* 10 */ {.port = 6000, .source_type = 1 /* SAME_IP_OR_LOOPBACK */},
    /* 11 */ {.port = 6000, .source_type = 2 /* EXTERNAL */, .src_prefix = "192.168.0.0/16"},
    /* 12 */ {.port = 6000, .source_type = 2, .src_prefix = "192.168.7.0/24"},
    /* 13 */ {.port = 6000, .source_type = 2, .src_prefix = "192.168.7.0/24", .src_port = 5555},
    /* 14 */ {.port = 443, .prefix = "::/0"},
};
#define N_CHAINS (sizeof(chains) / sizeof(chains[0]))

static struct mp_fc_match *g_m[N_CHAINS];

static int setup(void **state)
{
    for (size_t i = 0; i < N_CHAINS; i++)
        g_m[i] = translate(&chains[i]);
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < N_CHAINS; i++) {
        mp_fc_match_clear(g_m[i]);
        free(g_m[i]);
    }
    return 0;
}

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin = (struct sockaddr_in6 *)&ss;
    sin->sin6_family = AF_INET6;
    sin->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin->sin6_addr), 1);
    return ss;
}

static ssize_t pick(const char *dst_ip, uint16_t port, const char *sni, const char *transport,
                    const char *alpn, const char *src_ip, uint16_t src_port)
{
    struct sockaddr_storage d = strchr(dst_ip, ':') ? v6(dst_ip, port) : v4(dst_ip, port);
    struct sockaddr_storage s = v4(src_ip != NULL ? src_ip : "10.9.9.9", src_port);
    const char *alpns[1] = {alpn};
    struct mp_fc_conn c = {
        .dst = (struct sockaddr *)&d,
        .src = (struct sockaddr *)&s,
        .sni = sni,
        .transport = transport,
        .alpn = alpns,
        .n_alpn = alpn != NULL ? 1 : 0,
    };
    return mp_fc_select((const struct mp_fc_match *const *)g_m, N_CHAINS, &c);
}

static void test_port_transport_alpn(void **state)
{
    assert_int_equal(pick("10.0.0.1", 8080, NULL, "tls", "istio-h2", NULL, 1), 0);
    assert_int_equal(pick("10.0.0.1", 8080, NULL, "tls", "h2", NULL, 1), 2);
    assert_int_equal(pick("10.0.0.1", 8080, NULL, "tls", NULL, NULL, 1), 2);
    assert_int_equal(pick("10.0.0.1", 8080, NULL, "raw_buffer", NULL, NULL, 1), 1);
    assert_int_equal(pick("10.0.0.1", 8080, NULL, NULL, NULL, NULL, 1), 1); /* default raw */
    /* a port no chain names: the port-less chains */
    assert_int_equal(pick("10.0.0.1", 1234, NULL, "tls", "h2", NULL, 1), 3);
    /* ... whose 0.0.0.0/0 does not hold an IPv6 destination */
    assert_int_equal(pick("2001:db8::1", 1234, NULL, NULL, NULL, NULL, 1), -1);
    assert_int_equal(pick("2001:db8::1", 443, NULL, NULL, NULL, NULL, 1), 14);
    /* v4-mapped v6 counts as v4 */
    assert_int_equal(pick("::ffff:10.0.0.1", 1234, NULL, NULL, NULL, NULL, 1), 3);
}

static void test_server_names(void **state)
{
    assert_int_equal(pick("10.0.0.1", 9090, "api.example.com", "tls", NULL, NULL, 1), 4);
    assert_int_equal(pick("10.0.0.1", 9090, "web.example.com", "tls", NULL, NULL, 1), 5);
    assert_int_equal(pick("10.0.0.1", 9090, "x.b.example.com", "tls", NULL, NULL, 1), 6);
    /* the longest wildcard suffix wins, across several labels */
    assert_int_equal(pick("10.0.0.1", 9090, "a.x.b.example.com", "tls", NULL, NULL, 1), 6);
    assert_int_equal(pick("10.0.0.1", 9090, "other.test", "tls", NULL, NULL, 1), 6);
    /* a wildcard needs a label in front */
    assert_int_equal(pick("10.0.0.1", 9090, "example.com", "tls", NULL, NULL, 1), 7);
    assert_int_equal(pick("10.0.0.1", 9090, NULL, "tls", NULL, NULL, 1), 7);
    assert_int_equal(pick("10.0.0.1", 9090, "", "raw_buffer", NULL, NULL, 1), 7);
}

static void test_destination_prefix(void **state)
{
    assert_int_equal(pick("10.1.2.3", 7000, NULL, NULL, NULL, NULL, 1), 9);
    assert_int_equal(pick("10.2.0.1", 7000, NULL, NULL, NULL, NULL, 1), 8);
    /* the port matched, so Envoy does not fall back to port-less chains */
    assert_int_equal(pick("11.0.0.1", 7000, NULL, NULL, NULL, NULL, 1), -1);
}

static void test_source(void **state)
{
    /* from loopback, or from the destination's own IP: SAME_IP_OR_LOOPBACK */
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "127.0.0.1", 1), 10);
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "10.0.0.1", 1), 10);
    /* external: the longest source prefix, then the source port */
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "192.168.1.1", 1), 11);
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "192.168.7.1", 1), 12);
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "192.168.7.1", 5555), 13);
    assert_int_equal(pick("10.0.0.1", 6000, NULL, NULL, NULL, "172.16.0.1", 1), -1);
}

static void test_port_beats_server_name(void **state)
{
    /* Port is looked at before SNI: a chain on the port without SNI wins over
     * a port-less chain that names the SNI. */
    const struct spec s[] = {{.sni = {"x.test"}}, {.port = 443}};
    struct mp_fc_match *m[2] = {translate(&s[0]), translate(&s[1])};
    struct sockaddr_storage d = v4("1.2.3.4", 443), src = v4("5.6.7.8", 1000);
    struct mp_fc_conn c = {.dst = (struct sockaddr *)&d,
                           .src = (struct sockaddr *)&src,
                           .sni = "x.test",
                           .transport = "tls"};
    assert_int_equal(mp_fc_select((const struct mp_fc_match *const *)m, 2, &c), 1);
    d = v4("1.2.3.4", 444);
    assert_int_equal(mp_fc_select((const struct mp_fc_match *const *)m, 2, &c), 0);
    c.sni = "y.test";
    assert_int_equal(mp_fc_select((const struct mp_fc_match *const *)m, 2, &c), -1);
    assert_int_equal(mp_fc_select((const struct mp_fc_match *const *)m, 0, &c), -1);
    for (int i = 0; i < 2; i++) {
        mp_fc_match_clear(m[i]);
        free(m[i]);
    }
}

static void test_unique(void **state)
{
    char *err = NULL;
    assert_int_equal(mp_fc_check_unique((const struct mp_fc_match *const *)g_m, N_CHAINS, &err), 0);
    const struct spec s[] = {{.port = 80, .sni = {"a", "b"}}, {.port = 80, .sni = {"b", "a"}}};
    struct mp_fc_match *m[2] = {translate(&s[0]), translate(&s[1])};
    assert_int_equal(mp_fc_check_unique((const struct mp_fc_match *const *)m, 2, &err),
                     MP_ERR_INVAL);
    assert_string_equal(err, "filter_chains[1]: has the same filter_chain_match as "
                             "filter_chains[0]");
    free(err);
    for (int i = 0; i < 2; i++) {
        mp_fc_match_clear(m[i]);
        free(m[i]);
    }
}

static void expect_error(FCM *pb, const char *msg)
{
    struct mp_fc_match m;
    char *err = NULL;
    assert_int_equal(mp_fc_match_translate(pb, &m, &err), MP_ERR_INVAL);
    assert_string_equal(err, msg);
    free(err);
    /* cleared on failure */
    assert_null(m.prefix_ranges);
    assert_null(m.server_names);
}

static void test_translate_errors(void **state)
{
    FCM pb = ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT;
    Google__Protobuf__UInt32Value port = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    port.value = 70000;
    pb.destination_port = &port;
    expect_error(&pb, "destination_port: 70000 is not in 1..65535");
    pb.destination_port = NULL;

    Envoy__Config__Core__V3__CidrRange ok = ENVOY__CONFIG__CORE__V3__CIDR_RANGE__INIT,
                                       bad = ENVOY__CONFIG__CORE__V3__CIDR_RANGE__INIT;
    Google__Protobuf__UInt32Value len = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    ok.address_prefix = "10.0.0.0";
    bad.address_prefix = "10.0.0.300";
    Envoy__Config__Core__V3__CidrRange *v[2] = {&ok, &bad};
    pb.prefix_ranges = v;
    pb.n_prefix_ranges = 2;
    expect_error(&pb, "prefix_ranges[1].address_prefix: invalid IP address \"10.0.0.300\"");
    bad.address_prefix = "10.0.0.0";
    len.value = 33;
    bad.prefix_len = &len;
    expect_error(&pb, "prefix_ranges[1].prefix_len: 33 is too long for 10.0.0.0");
    pb.n_prefix_ranges = 0;

    char *names[] = {"good.test", "a.*.test"};
    pb.server_names = names;
    pb.n_server_names = 2;
    expect_error(&pb, "server_names[1]: invalid server name \"a.*.test\"");
    names[1] = "*x.test";
    expect_error(&pb, "server_names[1]: invalid server name \"*x.test\"");
    pb.n_server_names = 0;

    uint32_t sp = 0;
    pb.source_ports = &sp;
    pb.n_source_ports = 1;
    expect_error(&pb, "source_ports[0]: 0 is not in 1..65535");

    /* NULL matches everything */
    struct mp_fc_match m;
    assert_int_equal(mp_fc_match_translate(NULL, &m, NULL), 0);
    assert_int_equal(m.destination_port, 0);
}

static void test_cidr(void **state)
{
    struct mp_cidr c;
    assert_int_equal(mp_cidr_parse("10.1.2.3", 8, &c), 0);
    assert_int_equal(c.addr[1], 0); /* host bits cleared */
    struct sockaddr_storage a = v4("10.200.0.1", 0);
    assert_true(mp_cidr_contains(&c, (struct sockaddr *)&a));
    assert_int_equal(mp_cidr_parse("10.0.0.0", 33, &c), MP_ERR_INVAL);
    assert_int_equal(mp_cidr_parse("fd00::", 7, &c), 0);
    struct sockaddr_storage b = v6("fc01::1", 0), d = v6("fe80::1", 0);
    assert_true(mp_cidr_contains(&c, (struct sockaddr *)&b));
    assert_false(mp_cidr_contains(&c, (struct sockaddr *)&d));
    assert_int_equal(mp_cidr_parse("nonsense", 1, &c), MP_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_transport_alpn),    cmocka_unit_test(test_server_names),
        cmocka_unit_test(test_destination_prefix),     cmocka_unit_test(test_source),
        cmocka_unit_test(test_port_beats_server_name), cmocka_unit_test(test_unique),
        cmocka_unit_test(test_translate_errors),       cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
