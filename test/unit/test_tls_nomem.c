/*
 * Failing-allocator run for the tls module: translation of a mTLS server and
 * client config (files read), context builds, a full handshake with data and
 * close_notify, a ClientHello split over records, and filter chain matching.
 * The n-th allocation fails, for every n until a run succeeds; each run must
 * fail cleanly (an error code, never a crash) and leave no allocation behind.
 * BoringSSL allocates through malloc too, so its failures are covered. Under
 * sanitizers the scenario runs once (LeakSanitizer checks it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/buffer.h"
#include "proxy/filter_chain_match.h"
#include "proxy/mp_common.h"
#include "proxy/tls_context.h"
#include "proxy/tls_inspector.h"
#include "proxy/tls_transport.h"
#include "nomem_alloc.h"
#include "test_tls_util.h"
#include "xds/xds_translate_tls.h"

static char g_dir[64];
static struct pb_tls g_server, g_client;
static uint8_t *g_hello;
static size_t g_hello_len;

/* A ClientHello re-framed into 100-byte records (the inspector's allocating path). */
static void make_fragmented_hello(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "api.mesh.local");
    SSL_do_handshake(ssl);
    const uint8_t *p;
    size_t n;
    BIO_mem_contents(wb, &p, &n);
    size_t body = n - 5;
    g_hello = malloc(body + 5 * (body / 100 + 1));
    uint8_t *o = g_hello;
    for (size_t off = 0; off < body; off += 100) {
        size_t l = body - off < 100 ? body - off : 100;
        const uint8_t h[5] = {0x16, 0x03, 0x01, (uint8_t)(l >> 8), (uint8_t)l};
        memcpy(o, h, 5);
        memcpy(o + 5, p + 5 + off, l);
        o += 5 + l;
    }
    g_hello_len = (size_t)(o - g_hello);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

static bool allowed(int rc)
{
    return rc == MP_ERR_NOMEM || rc == MP_ERR_INVAL || rc == MP_ERR_PROTO;
}

static bool handshake_and_data(struct mp_tls_context *sctx, struct mp_tls_context *cctx)
{
    struct mp_tls_transport *c = NULL, *s = NULL;
    struct mp_buffer wire = MP_BUFFER_INIT, plain = MP_BUFFER_INIT, got = MP_BUFFER_INIT;
    bool ok = false;
    int rc = mp_tls_transport_new(cctx, NULL, &c);
    if (rc == 0)
        rc = mp_tls_transport_new(sctx, NULL, &s);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_NOMEM);
        goto out;
    }
    int rc_c = MP_ERR_AGAIN, rc_s = MP_ERR_AGAIN;
    for (int round = 0; round < 10; round++) {
        if (rc_c == MP_ERR_AGAIN)
            rc_c = mp_tls_transport_handshake(c);
        if (mp_tls_transport_take_output(c, &wire) < 0 || mp_tls_transport_feed(s, &wire) != 0)
            goto out;
        if (rc_s == MP_ERR_AGAIN)
            rc_s = mp_tls_transport_handshake(s);
        if (mp_tls_transport_take_output(s, &wire) < 0 || mp_tls_transport_feed(c, &wire) != 0)
            goto out;
    }
    if (rc_c != 0 || rc_s != 0) {
        assert_true(allowed(rc_c) || rc_c == 0 || rc_c == MP_ERR_AGAIN);
        assert_true(allowed(rc_s) || rc_s == 0 || rc_s == MP_ERR_AGAIN);
        goto out;
    }
    if (mp_buffer_append_copy(&plain, "hello", 5) != 0)
        goto out;
    ssize_t n = mp_tls_transport_write(c, &plain);
    if (n != 5) {
        assert_true(allowed((int)n));
        goto out;
    }
    if (mp_tls_transport_shutdown(c) != 0 || mp_tls_transport_take_output(c, &wire) < 0 ||
        mp_tls_transport_feed(s, &wire) != 0)
        goto out;
    n = mp_tls_transport_read(s, &got);
    if (n != 5) {
        assert_true(allowed((int)n));
        goto out;
    }
    n = mp_tls_transport_read(s, &got);
    if (n != MP_ERR_CLOSED) {
        assert_true(allowed((int)n));
        goto out;
    }
    assert_string_equal(mp_tls_transport_peer_uri_san(s), SPIFFE_API);
    ok = true;
out:
    mp_buffer_clear(&wire);
    mp_buffer_clear(&plain);
    mp_buffer_clear(&got);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    return ok;
}

static bool tls_part(void)
{
    struct mp_tls_config *scfg = NULL, *ccfg = NULL;
    struct mp_tls_context *sctx = NULL, *cctx = NULL;
    char *err = NULL;
    bool ok = false;
    int rc = mp_xds_translate_downstream_tls(&g_server.down, &scfg, &err);
    if (rc == 0)
        rc = mp_xds_translate_upstream_tls(&g_client.up, &ccfg, &err);
    if (rc == 0)
        rc = mp_tls_context_new(scfg, NULL, NULL, &sctx, &err);
    if (rc == 0)
        rc = mp_tls_context_new(ccfg, NULL, NULL, &cctx, &err);
    free(err);
    if (rc != 0) {
        /* a failed fopen or a BoringSSL parse under memory pressure reads as INVAL */
        assert_true(rc == MP_ERR_NOMEM || rc == MP_ERR_INVAL);
        goto out;
    }
    ok = handshake_and_data(sctx, cctx);
out:
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
    mp_tls_config_unref(scfg);
    mp_tls_config_unref(ccfg);
    return ok;
}

static bool match_part(void)
{
    struct mp_client_hello ch;
    int rc = mp_tls_inspect(g_hello, g_hello_len, &ch);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_AGAIN); /* the inspector's answer to no memory */
        return false;
    }
    assert_string_equal(ch.sni, "api.mesh.local");

    Envoy__Config__Listener__V3__FilterChainMatch pb =
        ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__INIT;
    Envoy__Config__Core__V3__CidrRange cr = ENVOY__CONFIG__CORE__V3__CIDR_RANGE__INIT;
    Envoy__Config__Core__V3__CidrRange *crs[] = {&cr};
    cr.address_prefix = "10.0.0.0";
    char *names[] = {"*.mesh.local", "x.test"};
    char *alpn[] = {"istio-h2"};
    pb.prefix_ranges = crs;
    pb.n_prefix_ranges = 1;
    pb.server_names = names;
    pb.n_server_names = 2;
    pb.application_protocols = alpn;
    pb.n_application_protocols = 1;
    pb.transport_protocol = "tls";
    struct mp_fc_match m;
    char *err = NULL;
    rc = mp_fc_match_translate(&pb, &m, &err);
    free(err);
    if (rc != 0) {
        assert_int_equal(rc, MP_ERR_NOMEM);
        return false;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000001)};
    const char *offered[] = {"istio-h2"};
    struct mp_fc_conn c = {.dst = (struct sockaddr *)&dst,
                           .src = (struct sockaddr *)&dst,
                           .sni = ch.sni,
                           .transport = ch.transport,
                           .alpn = offered,
                           .n_alpn = 1};
    const struct mp_fc_match *ms[] = {&m};
    assert_int_equal(mp_fc_select(ms, 1, &c), 0);
    mp_fc_match_clear(&m);
    return true;
}

static bool scenario(void)
{
    bool a = tls_part();
    bool b = match_part();
    ERR_clear_error(); /* error strings BoringSSL queued are freed here */
    return a && b;
}

static int group_setup(void **state)
{
    return tls_test_make_certs(g_dir) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    tls_test_remove_certs(g_dir);
    return 0;
}

static void every_allocation_failure_is_clean(void **state)
{
    static const char *const alpn[] = {"h2", NULL};
    pb_tls_init(&g_server, g_dir, "web", "ca", SPIFFE_API, alpn);
    pb_tls_require_client_cert(&g_server);
    pb_tls_init(&g_client, g_dir, "api", "ca", SPIFFE_WEB, alpn);
    make_fragmented_hello();
    /* First run uncounted: BoringSSL's one-time tables and thread state. */
    assert_true(scenario());
    assert_true(scenario());
    nomem_check_every_failure(scenario, NULL, 50000, 100);
    free(g_hello);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
