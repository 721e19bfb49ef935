/*
 * test_tls_listener_filters.c: listener_filters translation (Istio's inbound
 * shape: original_dst, tls_inspector and http_inspector with filter_disabled
 * port predicates) and the HTTP/1 / h2c inspector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "filters/listener/http_inspector.h"
#include "filters/listener/listener_filters.h"
#include "proxy/mp_common.h"

/* protobuf-c's __INIT macros fill deprecated fields too; clang warns on each use. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

typedef Envoy__Config__Listener__V3__ListenerFilterChainMatchPredicate Pred;
typedef Envoy__Config__Listener__V3__ListenerFilter LF;

static Pred port_range(Envoy__Type__V3__Int32Range *r, int32_t start, int32_t end)
{
    Pred p = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__INIT;
    *r = (Envoy__Type__V3__Int32Range)ENVOY__TYPE__V3__INT32_RANGE__INIT;
    r->start = start;
    r->end = end;
    p.rule_case =
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_DESTINATION_PORT_RANGE;
    p.destination_port_range = r;
    return p;
}

static void test_istio_inbound_shape(void **state)
{
    Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
    LF od = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__INIT, ti = od, hi = od;
    od.name = "envoy.filters.listener.original_dst";
    ti.name = "envoy.filters.listener.tls_inspector";
    hi.name = "envoy.filters.listener.http_inspector";

    /* tls_inspector with its typed_config: initial_read_buffer_size */
    Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector tic =
        ENVOY__EXTENSIONS__FILTERS__LISTENER__TLS_INSPECTOR__V3__TLS_INSPECTOR__INIT;
    Google__Protobuf__UInt32Value irb = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    irb.value = 4096;
    tic.initial_read_buffer_size = &irb;
    uint8_t buf[64];
    size_t n =
        envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__pack(&tic, buf);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/"
                   "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
    any.value.data = buf;
    any.value.len = n;
    ti.config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    ti.typed_config = &any;

    /* http_inspector disabled on 3306 and on 15000..15099, as Istio does for
     * server-first protocols: or_match of two port ranges */
    Envoy__Type__V3__Int32Range r1, r2;
    Pred p1 = port_range(&r1, 3306, 3307), p2 = port_range(&r2, 15000, 15100);
    Pred *rules[] = {&p1, &p2};
    Envoy__Config__Listener__V3__ListenerFilterChainMatchPredicate__MatchSet set =
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__MATCH_SET__INIT;
    set.rules = rules;
    set.n_rules = 2;
    Pred orp = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__INIT;
    orp.rule_case =
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_OR_MATCH;
    orp.or_match = &set;
    hi.filter_disabled = &orp;

    /* tls_inspector disabled everywhere but 9080: not(port 9080) */
    Envoy__Type__V3__Int32Range r3;
    Pred p3 = port_range(&r3, 9080, 9081);
    Pred notp = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__INIT;
    notp.rule_case =
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_NOT_MATCH;
    notp.not_match = &p3;
    ti.filter_disabled = &notp;

    LF *filters[] = {&od, &ti, &hi};
    l.listener_filters = filters;
    l.n_listener_filters = 3;
    Google__Protobuf__Duration to = GOOGLE__PROTOBUF__DURATION__INIT;
    to.seconds = 0;
    to.nanos = 500000000;
    l.listener_filters_timeout = &to;
    l.continue_on_listener_filters_timeout = 1;

    struct mp_listener_filters lf;
    char *err = NULL;
    int rc = mp_listener_filters_translate(&l, &lf, &err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(lf.n, 3);
    assert_int_equal(lf.timeout_ms, 500);
    assert_true(lf.continue_on_timeout);
    assert_int_equal(lf.v[0].kind, MP_LF_ORIGINAL_DST);
    assert_int_equal(lf.v[1].kind, MP_LF_TLS_INSPECTOR);
    assert_int_equal(lf.v[1].initial_read_buffer, 4096);
    assert_int_equal(lf.v[2].kind, MP_LF_HTTP_INSPECTOR);
    assert_ptr_equal(mp_listener_filters_find(&lf, MP_LF_HTTP_INSPECTOR), &lf.v[2]);

    assert_true(mp_listener_filter_enabled(&lf.v[0], 3306));
    assert_false(mp_listener_filter_enabled(&lf.v[2], 3306));
    assert_true(mp_listener_filter_enabled(&lf.v[2], 3307));
    assert_false(mp_listener_filter_enabled(&lf.v[2], 15021));
    assert_true(mp_listener_filter_enabled(&lf.v[2], 8080));
    assert_true(mp_listener_filter_enabled(&lf.v[1], 9080));
    assert_false(mp_listener_filter_enabled(&lf.v[1], 9081));
    mp_listener_filters_clear(&lf);

    /* errors carry the path */
    set.n_rules = 1;
    assert_int_equal(mp_listener_filters_translate(&l, &lf, &err), MP_ERR_INVAL);
    assert_string_equal(err, "listener_filters[2].filter_disabled.or_match.rules: needs at "
                             "least 2 rules");
    free(err);
    err = NULL;
    set.n_rules = 2;
    r2.end = 15000;
    assert_int_equal(mp_listener_filters_translate(&l, &lf, &err), MP_ERR_INVAL);
    assert_string_equal(err, "listener_filters[2].filter_disabled.or_match.rules[1]."
                             "destination_port_range: start 15000 must be below end 15000");
    free(err);
    err = NULL;
    r2.end = 15100;
    irb.value = 10;
    any.value.len =
        envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__pack(&tic, buf);
    assert_int_equal(mp_listener_filters_translate(&l, &lf, &err), MP_ERR_INVAL);
    assert_string_equal(err, "listener_filters[1].typed_config.initial_read_buffer_size: 10 is "
                             "not in 256..65536");
    free(err);
    err = NULL;
    irb.value = 4096;
    any.value.len =
        envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__pack(&tic, buf);
    hi.name = "envoy.filters.listener.proxy_protocol";
    hi.filter_disabled = NULL;
    assert_int_equal(mp_listener_filters_translate(&l, &lf, &err), MP_ERR_UNSUPPORTED);
    assert_string_equal(err, "listener_filters[2]: unknown listener filter "
                             "\"envoy.filters.listener.proxy_protocol\"");
    free(err);
    err = NULL;
    /* the typed_config type decides over the name, as in Envoy */
    ti.name = "whatever";
    od.name = "envoy.filters.listener.tls_inspector";
    od.config_type_case = ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG;
    od.typed_config = &any;
    l.n_listener_filters = 2;
    assert_int_equal(mp_listener_filters_translate(&l, &lf, &err), 0);
    assert_int_equal(lf.v[0].kind, MP_LF_TLS_INSPECTOR);
    assert_int_equal(lf.v[1].kind, MP_LF_TLS_INSPECTOR);
    mp_listener_filters_clear(&lf);
}

static void test_no_filters_defaults(void **state)
{
    Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
    struct mp_listener_filters lf;
    assert_int_equal(mp_listener_filters_translate(&l, &lf, NULL), 0);
    assert_int_equal(lf.n, 0);
    assert_int_equal(lf.timeout_ms, 15000);
    assert_false(lf.continue_on_timeout);
    assert_null(mp_listener_filters_find(&lf, MP_LF_TLS_INSPECTOR));
    mp_listener_filters_clear(&lf);
}

static int inspect(const char *s, size_t len, const char **proto)
{
    return mp_http_inspect((const uint8_t *)s, len, proto);
}

static void test_http_inspector(void **state)
{
    const char *p;
    const char *get = "GET /productpage HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(inspect(get, strlen(get), &p), 0);
    assert_string_equal(p, "http/1.1");
    const char *old = "POST /a?b=c HTTP/1.0\r\n";
    assert_int_equal(inspect(old, strlen(old), &p), 0);
    assert_string_equal(p, "http/1.0");
    const char *pre = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
    assert_int_equal(inspect(pre, 28, &p), 0);
    assert_string_equal(p, "h2c");
    /* every prefix of the preface or of a request line waits */
    for (size_t i = 0; i < 24; i++)
        assert_int_equal(inspect(pre, i, &p), MP_ERR_AGAIN);
    for (size_t i = 0; i < strlen("GET /productpage HTTP/1.1\r"); i++)
        assert_int_equal(inspect(get, i, &p), MP_ERR_AGAIN);
    /* not HTTP: decided as early as possible, no protocol */
    const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00};
    assert_int_equal(mp_http_inspect(tls, sizeof(tls), &p), 0);
    assert_null(p);
    assert_int_equal(inspect("SSH-2.0-OpenSSH_9.2\r\n", 21, &p), 0);
    assert_null(p);
    assert_int_equal(inspect("GET / HTTP/2.0\r\n", 16, &p), 0);
    assert_null(p);
    assert_int_equal(inspect("GET /\r\n", 7, &p), 0);
    assert_null(p);
    assert_int_equal(inspect("GET  / HTTP/1.1\r\n", 17, &p), 0);
    assert_null(p);
    assert_int_equal(inspect("G{T / HTTP/1.1\r\n", 16, &p), 0);
    assert_null(p);
    assert_int_equal(inspect("GET / HTTP/1.1\n", 15, &p), 0);
    assert_string_equal(p, "http/1.1");
    assert_int_equal(inspect("GET / HTTP/1.1\r\r\n", 17, &p), 0);
    assert_null(p);
    /* a request line longer than the inspection window: given up on */
    size_t big = MP_HTTP_INSPECTOR_MAX + 10;
    char *long_line = malloc(big);
    memset(long_line, 'a', big);
    memcpy(long_line, "GET /", 5);
    assert_int_equal(inspect(long_line, big - 100, &p), MP_ERR_AGAIN);
    assert_int_equal(inspect(long_line, big, &p), 0);
    assert_null(p);
    free(long_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_istio_inbound_shape),
        cmocka_unit_test(test_no_filters_defaults),
        cmocka_unit_test(test_http_inspector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
