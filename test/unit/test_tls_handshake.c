/*
 * test_tls_handshake.c: full TLS/mTLS handshakes between two mp_tls_transport
 * objects in memory, with certificates made by the openssl CLI: a good pair
 * exposes the peer URI SAN and ALPN; a wrong CA, an expired certificate, a
 * wrong SAN and a missing client certificate are refused and counted;
 * session resumption, rotation, SDS secrets and close_notify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/base64.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/stats_render.h"
#include "proxy/tls_context.h"
#include "proxy/tls_transport.h"
#include "proxy/tls_xfcc.h"
#include "test_tls_util.h"
#include "xds/xds_translate_tls.h"

/* Under ASan, also report string functions that read past a buffer's length
 * (the peer subject and XFCC text come from non-NUL-terminated BIO bytes;
 * strndup on them was reported). Ignored in builds without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "strict_string_checks=1";
}

static char g_dir[64];
static int g_have_certs;

static int group_setup(void **state)
{
    g_have_certs = tls_test_make_certs(g_dir) == 0;
    if (!g_have_certs)
        fprintf(stderr, "openssl CLI could not make certificates: tests will fail\n");
    return 0;
}

static int group_teardown(void **state)
{
    tls_test_remove_certs(g_dir);
    return 0;
}

static const char *const h2_h1[] = {"h2", "http/1.1", NULL};
static const char *const h1_only[] = {"http/1.1", NULL};

/* A server context: cert `name`, CA `ca` (or NULL), client SAN `san` (or NULL). */
static struct mp_tls_context *server_ctx(const char *name, const char *ca, const char *san,
                                         int require, const char *const *alpn)
{
    assert_true(g_have_certs);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, name, ca, san, alpn);
    if (require)
        pb_tls_require_client_cert(&p);
    struct mp_tls_config *cfg = NULL;
    char *err = NULL;
    int rc = mp_xds_translate_downstream_tls(&p.down, &cfg, &err);
    if (rc != 0)
        fail_msg("translate: %s", err);
    struct mp_tls_context *ctx = NULL;
    rc = mp_tls_context_new(cfg, NULL, NULL, &ctx, &err);
    if (rc != 0)
        fail_msg("context: %s", err);
    mp_tls_config_unref(cfg);
    return ctx;
}

static struct mp_tls_context *client_ctx(const char *name, const char *ca, const char *san,
                                         const char *const *alpn)
{
    assert_true(g_have_certs);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, name, ca, san, alpn);
    p.up.sni = "web.default.svc";
    struct mp_tls_config *cfg = NULL;
    char *err = NULL;
    int rc = mp_xds_translate_upstream_tls(&p.up, &cfg, &err);
    if (rc != 0)
        fail_msg("translate: %s", err);
    struct mp_tls_context *ctx = NULL;
    rc = mp_tls_context_new(cfg, NULL, NULL, &ctx, &err);
    if (rc != 0)
        fail_msg("context: %s", err);
    mp_tls_config_unref(cfg);
    return ctx;
}

/* Moves ciphertext both ways until neither side has anything to say.
 * Returns the handshake results in *rc_c / *rc_s. */
static void pump(struct mp_tls_transport *c, struct mp_tls_transport *s, int *rc_c, int *rc_s)
{
    struct mp_buffer wire = MP_BUFFER_INIT;
    *rc_c = *rc_s = MP_ERR_AGAIN;
    for (int round = 0; round < 20; round++) {
        if (*rc_c == MP_ERR_AGAIN)
            *rc_c = mp_tls_transport_handshake(c);
        assert_true(mp_tls_transport_take_output(c, &wire) >= 0);
        size_t moved = mp_buffer_len(&wire);
        assert_int_equal(mp_tls_transport_feed(s, &wire), 0);
        if (*rc_s == MP_ERR_AGAIN)
            *rc_s = mp_tls_transport_handshake(s);
        assert_true(mp_tls_transport_take_output(s, &wire) >= 0);
        moved += mp_buffer_len(&wire);
        assert_int_equal(mp_tls_transport_feed(c, &wire), 0);
        if (moved == 0 && *rc_c != MP_ERR_AGAIN && *rc_s != MP_ERR_AGAIN)
            break;
    }
    mp_buffer_clear(&wire);
}

/* Sends msg from a to b through the wire and checks b decrypts it. */
static void send_and_check(struct mp_tls_transport *a, struct mp_tls_transport *b, const char *msg)
{
    struct mp_buffer plain = MP_BUFFER_INIT, wire = MP_BUFFER_INIT, got = MP_BUFFER_INIT;
    assert_int_equal(mp_buffer_append_copy(&plain, msg, strlen(msg)), 0);
    assert_int_equal(mp_tls_transport_write(a, &plain), (ssize_t)strlen(msg));
    assert_int_equal(mp_buffer_len(&plain), 0);
    assert_true(mp_tls_transport_take_output(a, &wire) > (ssize_t)strlen(msg));
    assert_int_equal(mp_tls_transport_feed(b, &wire), 0);
    ssize_t n = mp_tls_transport_read(b, &got);
    assert_int_equal(n, (ssize_t)strlen(msg));
    char buf[256] = {0};
    mp_buffer_copy_out(&got, 0, buf, sizeof(buf) - 1);
    assert_string_equal(buf, msg);
    /* b may answer post-handshake messages (tickets are consumed by a's read) */
    assert_true(mp_tls_transport_take_output(b, &wire) >= 0);
    assert_int_equal(mp_tls_transport_feed(a, &wire), 0);
    assert_int_equal(mp_tls_transport_read(a, &got), MP_ERR_AGAIN);
    mp_buffer_clear(&plain);
    mp_buffer_clear(&wire);
    mp_buffer_clear(&got);
}

static void test_mtls_good_pair(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", "ca", SPIFFE_API, 1, h2_h1);
    struct mp_tls_context *cctx = client_ctx("api", "ca", SPIFFE_WEB, h2_h1);
    struct mp_tls_stats cstats = {0};
    struct mp_tls_transport_opts copts = {.stats = &cstats};
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, &copts, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    assert_true(mp_tls_transport_handshake_done(s));

    /* identity both ways */
    const struct mp_tls_peer *peer = mp_tls_transport_peer(s);
    assert_non_null(peer);
    assert_true(peer->presented);
    assert_true(peer->verified);
    assert_int_equal(peer->n_uri_sans, 1);
    assert_string_equal(peer->uri_sans[0], SPIFFE_API);
    assert_string_equal(mp_tls_transport_peer_uri_san(s), SPIFFE_API);
    assert_int_equal(peer->n_dns_sans, 1);
    assert_string_equal(peer->dns_sans[0], "api.default.svc");
    assert_string_equal(peer->subject, "O=mesh,CN=api");
    assert_string_equal(peer->issuer, "CN=ca");
    assert_int_equal(strlen(peer->sha256), 64);
    assert_string_equal(mp_tls_transport_peer_uri_san(c), SPIFFE_WEB);

    /* negotiated parameters */
    assert_string_equal(mp_tls_transport_alpn(s), "h2");
    assert_string_equal(mp_tls_transport_alpn(c), "h2");
    assert_string_equal(mp_tls_transport_sni(s), "web.default.svc");
    assert_string_equal(mp_tls_transport_sni(c), "web.default.svc");
    assert_string_equal(mp_tls_transport_version(s), "TLSv1.2"); /* client max defaults to 1.2 */
    assert_non_null(mp_tls_transport_cipher(s));

    /* data both ways, then close_notify */
    send_and_check(c, s, "GET / HTTP/1.1\r\n\r\n");
    send_and_check(s, c, "HTTP/1.1 200 OK\r\n\r\n");
    assert_int_equal(mp_tls_transport_shutdown(c), 0);
    struct mp_buffer wire = MP_BUFFER_INIT, got = MP_BUFFER_INIT;
    assert_true(mp_tls_transport_take_output(c, &wire) > 0);
    assert_int_equal(mp_tls_transport_feed(s, &wire), 0);
    assert_int_equal(mp_tls_transport_read(s, &got), MP_ERR_CLOSED);
    assert_true(mp_tls_transport_peer_closed(s));
    assert_int_equal(mp_tls_transport_write_bytes(c, "x", 1), MP_ERR_CLOSED);

    /* counters */
    struct mp_tls_stats *ss = mp_tls_context_stats(sctx);
    assert_int_equal(mp_tls_stats_get(ss, 0), 1);      /* handshake */
    assert_int_equal(mp_tls_stats_get(ss, 1), 0);      /* connection_error */
    assert_int_equal(mp_tls_stats_get(&cstats, 0), 1); /* the client counted in its own struct */
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 0), 0);
    struct mp_tls_stats sum = {0};
    mp_tls_stats_merge(&sum, ss);
    mp_tls_stats_merge(&sum, &cstats);
    assert_int_equal(mp_tls_stats_get(&sum, 0), 2);

    /* published as Envoy's names */
    struct mp_stats *reg = mp_stats_new(1);
    assert_int_equal(mp_tls_stats_register(reg, "listener.0.0.0.0_15006.", ss), 0);
    char *text = mp_stats_render_string(reg, MP_STATS_FORMAT_TEXT, NULL, NULL, NULL);
    assert_non_null(strstr(text, "listener.0.0.0.0_15006.ssl.handshake: 1\n"));
    assert_non_null(strstr(text, "listener.0.0.0.0_15006.ssl.connection_error: 0\n"));
    assert_non_null(strstr(text, "listener.0.0.0.0_15006.ssl.fail_verify_san: 0\n"));
    free(text);
    mp_stats_free(reg);

    mp_buffer_clear(&wire);
    mp_buffer_clear(&got);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

/* Runs a handshake that the server must refuse; returns the server's stats. */
static void refused(const char *client_cert, const char *server_san, unsigned counter,
                    const char *reason)
{
    struct mp_tls_context *sctx = server_ctx("web", "ca", server_san, 1, h1_only);
    struct mp_tls_context *cctx = client_ctx(client_cert, "ca", NULL, h1_only);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, MP_ERR_PROTO);
    assert_false(mp_tls_transport_handshake_done(s));
    assert_null(mp_tls_transport_peer(s));
    assert_string_equal(mp_tls_transport_error(s), reason);
    /* The client learns from the server's alert (at its handshake or first read). */
    struct mp_buffer got = MP_BUFFER_INIT;
    if (rc_c == 0)
        assert_int_equal(mp_tls_transport_read(c, &got), MP_ERR_PROTO);
    else
        assert_int_equal(rc_c, MP_ERR_PROTO);
    struct mp_tls_stats *ss = mp_tls_context_stats(sctx);
    assert_int_equal(mp_tls_stats_get(ss, 0), 0); /* handshake */
    /* a counted refusal is not also a connection_error (Envoy) */
    assert_int_equal(mp_tls_stats_get(ss, 1), 0); /* connection_error */
    assert_int_equal(mp_tls_stats_get(ss, counter), 1);
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 1), 1);
    mp_buffer_clear(&got);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

static void test_refuse_wrong_ca(void **state)
{
    refused("foreign", SPIFFE_API, 2 /* fail_verify_error */,
            "peer certificate failed chain verification");
}

static void test_refuse_expired(void **state)
{
    refused("expired", SPIFFE_API, 2 /* fail_verify_error */,
            "peer certificate failed chain verification");
}

static void test_refuse_wrong_san(void **state)
{
    /* sa/web is a valid identity, just not the one this server admits. */
    refused("web", SPIFFE_API, 3 /* fail_verify_san */, "peer certificate SAN did not match");
}

static void test_refuse_no_client_cert(void **state)
{
    refused(NULL, SPIFFE_API, 5 /* fail_verify_no_cert */,
            "peer did not send a required certificate");
}

static void test_client_refuses_server_san(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", SPIFFE_API, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_c, MP_ERR_PROTO);
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 3), 1); /* fail_verify_san */
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 1), 0); /* not also an error */
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(sctx), 1), 1); /* server: alert */
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

/* x-forwarded-client-cert: this hop's element for an mTLS client, in
 * Envoy's order; the URL-encoded PEM of Cert holds no raw separators. */
static void test_xfcc_element(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", "ca", SPIFFE_API, 1, h2_h1);
    struct mp_tls_context *cctx = client_ctx("api", "ca", SPIFFE_WEB, h2_h1);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    const struct mp_tls_peer *peer = mp_tls_transport_peer(s);
    char want[512], *got = NULL;
    assert_int_equal(mp_tls_xfcc_build(s, 0, &got), 0);
    snprintf(want, sizeof(want), "By=%s;Hash=%s", SPIFFE_WEB, peer->sha256);
    assert_string_equal(got, want);
    free(got);
    assert_int_equal(mp_tls_xfcc_build(s, MP_XFCC_SUBJECT | MP_XFCC_URI | MP_XFCC_DNS, &got), 0);
    snprintf(want, sizeof(want),
             "By=%s;Hash=%s;Subject=\"O=mesh,CN=api\";URI=%s;DNS=api.default.svc", SPIFFE_WEB,
             peer->sha256, SPIFFE_API);
    assert_string_equal(got, want);
    free(got);
    assert_int_equal(mp_tls_xfcc_build(s, MP_XFCC_CERT | MP_XFCC_CHAIN, &got), 0);
    const char *cert = strstr(got, ";Cert=\"-----BEGIN%20CERTIFICATE-----%0A");
    assert_non_null(cert);
    const char *chain = strstr(got, "\";Chain=\"-----BEGIN%20CERTIFICATE-----%0A");
    assert_non_null(chain);
    /* the Cert value (up to its closing quote) carries no raw separators */
    const char *end = strchr(cert + 7, '"');
    assert_non_null(end);
    assert_true(end == chain);
    for (const char *q = cert + 7; q < end; q++)
        assert_null(strchr("\n =,;+/", *q));
    free(got);
    /* without a client certificate there is no element */
    struct mp_tls_context *sctx2 = server_ctx("web", NULL, NULL, 0, h2_h1);
    struct mp_tls_context *cctx2 = client_ctx(NULL, "ca", NULL, h2_h1);
    struct mp_tls_transport *c2, *s2;
    assert_int_equal(mp_tls_transport_new(cctx2, NULL, &c2), 0);
    assert_int_equal(mp_tls_transport_new(sctx2, NULL, &s2), 0);
    pump(c2, s2, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    assert_int_equal(mp_tls_xfcc_build(s2, MP_XFCC_URI, &got), MP_ERR_NOTFOUND);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_transport_free(c2);
    mp_tls_transport_free(s2);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
    mp_tls_context_unref(sctx2);
    mp_tls_context_unref(cctx2);
}

/* A TCP probe (connect, close) or a client that leaves mid-handshake is not a
 * TLS error; a ClientHello that is garbage is. */
static void test_eof_during_handshake_is_not_an_error(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_context *cctx = client_ctx(NULL, NULL, NULL, NULL);
    struct mp_tls_transport *s, *s2, *c;
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    mp_tls_transport_feed_eof(s);
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_PROTO);
    assert_string_equal(mp_tls_transport_error(s), "connection closed during the TLS handshake");
    /* half a ClientHello, then FIN */
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s2), 0);
    assert_int_equal(mp_tls_transport_handshake(c), MP_ERR_AGAIN);
    struct mp_buffer wire = MP_BUFFER_INIT;
    assert_true(mp_tls_transport_take_output(c, &wire) > 20);
    uint8_t head[20];
    mp_buffer_copy_out(&wire, 0, head, sizeof(head));
    assert_int_equal(mp_tls_transport_feed_bytes(s2, head, sizeof(head)), 0);
    assert_int_equal(mp_tls_transport_handshake(s2), MP_ERR_AGAIN);
    mp_tls_transport_feed_eof(s2);
    assert_int_equal(mp_tls_transport_handshake(s2), MP_ERR_PROTO);
    struct mp_tls_stats *ss = mp_tls_context_stats(sctx);
    assert_int_equal(mp_tls_stats_get(ss, 1), 0); /* connection_error */
    /* not TLS at all: counted */
    mp_tls_transport_free(s);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(mp_tls_transport_feed_bytes(s, junk, sizeof(junk) - 1), 0);
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_PROTO);
    assert_int_equal(mp_tls_stats_get(ss, 1), 1);
    mp_buffer_clear(&wire);
    mp_tls_transport_free(s);
    mp_tls_transport_free(s2);
    mp_tls_transport_free(c);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

static void test_allow_expired_and_no_alpn_overlap(void **state)
{
    assert_true(g_have_certs);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", SPIFFE_API, h2_h1);
    pb_tls_require_client_cert(&p);
    p.val.allow_expired_certificate = 1;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    struct mp_tls_context *sctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &sctx, &err), 0);
    mp_tls_config_unref(cfg);
    static const char *const other[] = {"istio-peer-exchange", NULL};
    struct mp_tls_context *cctx = client_ctx("expired", "ca", NULL, other);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    assert_int_equal(rc_c, 0);
    assert_string_equal(mp_tls_transport_peer_uri_san(s), SPIFFE_API);
    assert_null(mp_tls_transport_alpn(s)); /* no common protocol: no ALPN, as Envoy */
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

static void test_tls13_resumption_and_alpn_override(void **state)
{
    assert_true(g_have_certs);
    struct mp_tls_context *sctx = server_ctx("web", "ca", NULL, 1, h2_h1);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "api", "ca", SPIFFE_WEB, h2_h1);
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters params =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__INIT;
    params.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    p.common.tls_params = &params;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_upstream_tls(&p.up, &cfg, &err), 0);
    struct mp_tls_context *cctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &cctx, &err), 0);
    mp_tls_config_unref(cfg);
    struct mp_tls_session_cache *cache = mp_tls_session_cache_new(1);
    static const char *const h1[] = {"http/1.1"};
    struct mp_tls_transport_opts o = {.sessions = cache, .alpn = h1, .n_alpn = 1};
    for (int i = 0; i < 2; i++) {
        struct mp_tls_transport *c, *s;
        assert_int_equal(mp_tls_transport_new(cctx, &o, &c), 0);
        assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
        int rc_c, rc_s;
        pump(c, s, &rc_c, &rc_s);
        assert_int_equal(rc_c, 0);
        assert_int_equal(rc_s, 0);
        assert_string_equal(mp_tls_transport_version(c), "TLSv1.3");
        assert_string_equal(mp_tls_transport_alpn(s), "http/1.1");
        assert_int_equal(mp_tls_transport_session_reused(c), i == 1);
        /* The ticket arrives after the handshake; the client's read stores it. */
        send_and_check(s, c, "ping");
        /* On resumption the certificate is not sent again, but the identity stays. */
        assert_string_equal(mp_tls_transport_peer_uri_san(s), SPIFFE_API);
        mp_tls_transport_free(c);
        mp_tls_transport_free(s);
    }
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 7), 1); /* session_reused */
    mp_tls_session_cache_free(cache);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

static void test_rotation_keeps_old_connections(void **state)
{
    struct mp_tls_context *old = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", SPIFFE_WEB, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(old, NULL, &s), 0);
    /* Swap: the listener now hands out a new context; the old one's last
     * reference belongs to the live connection. */
    struct mp_tls_context *fresh = server_ctx("api", NULL, NULL, 0, NULL);
    mp_tls_context_unref(old);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_c, 0);
    assert_int_equal(rc_s, 0);
    send_and_check(c, s, "still old cert");
    mp_tls_transport_free(c);
    mp_tls_transport_free(s); /* frees the old context */
    assert_true(mp_tls_context_cert_expiry(fresh) > 0);
    mp_tls_context_unref(fresh);
    mp_tls_context_unref(cctx);
}

/* ---- SDS ------------------------------------------------------------------ */

struct secrets {
    struct mp_tls_secret *s[2];
};

static const struct mp_tls_secret *lookup(void *arg, const char *name)
{
    struct secrets *ss = arg;
    for (int i = 0; i < 2; i++)
        if (ss->s[i] != NULL && strcmp(ss->s[i]->name, name) == 0)
            return ss->s[i];
    return NULL;
}

static void test_sds_secrets(void **state)
{
    assert_true(g_have_certs);
    /* Istio's shape: cert "default" and CA "ROOTCA" over SDS (ADS here). */
    Envoy__Config__Core__V3__AggregatedConfigSource ads =
        ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs.ads = &ads;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig cert_ref =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig ca_ref = cert_ref;
    cert_ref.name = "default";
    cert_ref.sds_config = &cs;
    ca_ref.name = "ROOTCA";
    ca_ref.sds_config = &cs;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *refs[] = {&cert_ref};
    struct pb_tls p;
    pb_tls_init(&p, g_dir, NULL, NULL, NULL, NULL);
    p.common.tls_certificate_sds_secret_configs = refs;
    p.common.n_tls_certificate_sds_secret_configs = 1;
    p.common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
    p.common.validation_context_sds_secret_config = &ca_ref;
    pb_tls_require_client_cert(&p);
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->n_cert_sds, 1);
    assert_string_equal(cfg->cert_sds[0].name, "default");
    assert_true(cfg->cert_sds[0].ads);
    assert_string_equal(cfg->validation_sds->name, "ROOTCA");

    /* secrets not there yet: the listener keeps warming */
    struct secrets ss = {{NULL, NULL}};
    struct mp_tls_context *ctx = NULL;
    assert_int_equal(mp_tls_context_new(cfg, lookup, &ss, &ctx, &err), MP_ERR_NOTFOUND);
    assert_string_equal(err, "tls_certificate_sds_secret_configs[0]: secret \"default\" is not "
                             "available yet");
    free(err);
    err = NULL;

    /* the Secret resources, translated from protos */
    struct pb_tls sp;
    pb_tls_init(&sp, g_dir, "web", "ca", NULL, NULL);
    Envoy__Extensions__TransportSockets__Tls__V3__Secret sec =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    sec.name = "default";
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    sec.tls_certificate = &sp.cert;
    assert_int_equal(mp_xds_translate_secret(&sec, &ss.s[0], &err), 0);
    assert_int_equal(ss.s[0]->kind, MP_TLS_SECRET_CERT);
    sec.name = "ROOTCA";
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    sec.validation_context = &sp.val;
    assert_int_equal(mp_xds_translate_secret(&sec, &ss.s[1], &err), 0);
    assert_int_equal(ss.s[1]->kind, MP_TLS_SECRET_VALIDATION);

    assert_int_equal(mp_tls_context_new(cfg, lookup, &ss, &ctx, &err), 0);
    mp_tls_config_unref(cfg);
    /* The context copied what it needs: the secrets may go (rotation). */
    mp_tls_secret_unref(ss.s[0]);
    mp_tls_secret_unref(ss.s[1]);

    struct mp_tls_context *cctx = client_ctx("api", "ca", SPIFFE_WEB, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(ctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    assert_string_equal(mp_tls_transport_peer_uri_san(s), SPIFFE_API);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(ctx);
    mp_tls_context_unref(cctx);
}

static void test_garbage_input_fails_cleanly(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_transport *s;
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    assert_int_equal(mp_tls_transport_feed_bytes(s, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_PROTO);
    assert_non_null(mp_tls_transport_error(s));
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_PROTO);
    struct mp_buffer got = MP_BUFFER_INIT;
    assert_int_equal(mp_tls_transport_read(s, &got), MP_ERR_PROTO);
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(sctx), 1), 1);
    mp_tls_transport_free(s);

    /* EOF in the middle of a handshake */
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_AGAIN);
    mp_tls_transport_feed_eof(s);
    assert_int_equal(mp_tls_transport_handshake(s), MP_ERR_PROTO);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
}

static void test_large_transfer_by_slices(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", NULL, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    enum { N = 300000 };
    uint8_t *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    struct mp_buffer plain = MP_BUFFER_INIT, wire = MP_BUFFER_INIT, got = MP_BUFFER_INIT;
    assert_int_equal(mp_buffer_append_copy(&plain, data, N), 0);
    /* From here on the transport moves slices; no counted payload copies. */
    uint64_t copied = mp_buffer_thread_bytes_copied();
    assert_int_equal(mp_tls_transport_write(c, &plain), N);
    assert_true(mp_tls_transport_pending_output(c) > N);
    assert_true(mp_tls_transport_take_output(c, &wire) > N);
    /* feed in odd-sized pieces, as a socket would deliver them */
    size_t total = 0;
    while (mp_buffer_len(&wire) > 0) {
        struct mp_buffer piece = MP_BUFFER_INIT;
        assert_int_equal(mp_buffer_move_n(&piece, &wire, 1000), 0);
        assert_int_equal(mp_tls_transport_feed(s, &piece), 0);
        ssize_t n = mp_tls_transport_read(s, &got);
        assert_true(n > 0 || n == MP_ERR_AGAIN);
        if (n > 0)
            total += (size_t)n;
        mp_buffer_clear(&piece);
    }
    assert_int_equal(total, N);
    assert_int_equal(mp_buffer_len(&got), N);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    uint8_t *back = malloc(N);
    mp_buffer_copy_out(&got, 0, back, N);
    assert_memory_equal(back, data, N);
    free(back);
    free(data);
    mp_buffer_clear(&plain);
    mp_buffer_clear(&wire);
    mp_buffer_clear(&got);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

/* Two certificates on one server: the SNI picks one (Envoy's multi-cert selection). */
static void test_sni_selects_certificate(void **state)
{
    assert_true(g_have_certs);
    struct pb_tls a, b;
    pb_tls_init(&a, g_dir, "web", NULL, NULL, NULL);
    pb_tls_init(&b, g_dir, "api", NULL, NULL, NULL);
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *two[] = {&a.cert, &b.cert};
    a.common.tls_certificates = two;
    a.common.n_tls_certificates = 2;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&a.down, &cfg, &err), 0);
    struct mp_tls_context *sctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &sctx, &err), 0);
    mp_tls_config_unref(cfg);
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", NULL, NULL);
    const char *snis[] = {"api.default.svc", "web.default.svc", "unknown.test", "API.default.svc"};
    const char *want[] = {SPIFFE_API, SPIFFE_WEB, SPIFFE_WEB, SPIFFE_API};
    for (int i = 0; i < 4; i++) {
        struct mp_tls_transport_opts o = {.sni = snis[i]};
        struct mp_tls_transport *c, *s;
        assert_int_equal(mp_tls_transport_new(cctx, &o, &c), 0);
        assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
        int rc_c, rc_s;
        pump(c, s, &rc_c, &rc_s);
        assert_int_equal(rc_c, 0);
        assert_string_equal(mp_tls_transport_peer_uri_san(c), want[i]);
        assert_string_equal(mp_tls_transport_sni(s), snis[i]);
        mp_tls_transport_free(c);
        mp_tls_transport_free(s);
    }
    assert_true(mp_tls_context_cert_expiry(sctx) > 0);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

/* Configured session ticket keys: a ticket from one server context resumes on
 * another built from the same keys (another worker, another host). */
static void test_shared_ticket_keys(void **state)
{
    assert_true(g_have_certs);
    uint8_t raw[2][80];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 80; i++)
            raw[k][i] = (uint8_t)(i * 3 + k * 101);
    Envoy__Config__Core__V3__DataSource ks[2] = {ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT,
                                                 ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT};
    Envoy__Config__Core__V3__DataSource *kp[2] = {&ks[0], &ks[1]};
    for (int k = 0; k < 2; k++) {
        ks[k].specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
        ks[k].inline_bytes.data = raw[k];
        ks[k].inline_bytes.len = 80;
    }
    Envoy__Extensions__TransportSockets__Tls__V3__TlsSessionTicketKeys tk =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_SESSION_TICKET_KEYS__INIT;
    tk.keys = kp;
    struct mp_tls_context *sctx[3];
    /* [0] and [1]: keys {A, B}; [2]: keys {B, A} (rotated: still decrypts A) */
    for (int i = 0; i < 3; i++) {
        if (i == 2) {
            kp[0] = &ks[1];
            kp[1] = &ks[0];
        }
        tk.n_keys = 2;
        struct pb_tls p;
        pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
        p.down.session_ticket_keys_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS;
        p.down.session_ticket_keys = &tk;
        struct mp_tls_config *cfg;
        char *err = NULL;
        assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
        assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &sctx[i], &err), 0);
        mp_tls_config_unref(cfg);
    }
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", SPIFFE_WEB, NULL);
    struct mp_tls_session_cache *cache = mp_tls_session_cache_new(2);
    struct mp_tls_transport_opts o = {.sessions = cache};
    for (int i = 0; i < 3; i++) {
        struct mp_tls_transport *c, *s;
        assert_int_equal(mp_tls_transport_new(cctx, &o, &c), 0);
        assert_int_equal(mp_tls_transport_new(sctx[i], NULL, &s), 0);
        int rc_c, rc_s;
        pump(c, s, &rc_c, &rc_s);
        assert_int_equal(rc_s, 0);
        assert_int_equal(mp_tls_transport_session_reused(s), i > 0);
        /* the verified identity survives resumption */
        assert_true(mp_tls_transport_peer(c)->verified);
        assert_string_equal(mp_tls_transport_peer_uri_san(c), SPIFFE_WEB);
        send_and_check(s, c, "ticket");
        mp_tls_transport_free(c);
        mp_tls_transport_free(s);
    }
    mp_tls_session_cache_free(cache);
    for (int i = 0; i < 3; i++)
        mp_tls_context_unref(sctx[i]);
    mp_tls_context_unref(cctx);
}

/* verify_certificate_spki pins the server key; a different key is refused. */
static void test_spki_pinning(void **state)
{
    assert_true(g_have_certs);
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    /* The pin of web's key, computed here the way `openssl pkey -pubout | dgst` would. */
    char *pem = tls_test_slurp(g_dir, "web.crt");
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    EVP_PKEY *pk = X509_get_pubkey(x);
    uint8_t *der = NULL, md[32];
    int len = i2d_PUBKEY(pk, &der);
    SHA256(der, (size_t)len, md);
    char b64[64];
    EVP_EncodeBlock((uint8_t *)b64, md, 32);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    X509_free(x);
    BIO_free(b);
    free(pem);
    for (int round = 0; round < 2; round++) {
        struct pb_tls p;
        pb_tls_init(&p, g_dir, NULL, "ca", NULL, NULL);
        char other[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        char *pins[] = {round == 0 ? b64 : other};
        p.val.verify_certificate_spki = pins;
        p.val.n_verify_certificate_spki = 1;
        struct mp_tls_config *cfg;
        char *err = NULL;
        assert_int_equal(mp_xds_translate_upstream_tls(&p.up, &cfg, &err), 0);
        struct mp_tls_context *cctx;
        assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &cctx, &err), 0);
        mp_tls_config_unref(cfg);
        struct mp_tls_transport *c, *s;
        assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
        assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
        int rc_c, rc_s;
        pump(c, s, &rc_c, &rc_s);
        if (round == 0) {
            assert_int_equal(rc_c, 0);
        } else {
            assert_int_equal(rc_c, MP_ERR_PROTO);
            assert_string_equal(mp_tls_transport_error(c), "peer certificate hash did not match");
            assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(cctx), 4), 1);
        }
        mp_tls_transport_free(c);
        mp_tls_transport_free(s);
        mp_tls_context_unref(cctx);
    }
    mp_tls_context_unref(sctx);
}

/* Many small views (HTTP/2 frames) go out in one record, not one record each. */
static void test_small_writes_coalesce(void **state)
{
    struct mp_tls_context *sctx = server_ctx("web", NULL, NULL, 0, NULL);
    struct mp_tls_context *cctx = client_ctx(NULL, "ca", NULL, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    struct mp_buffer plain = MP_BUFFER_INIT, wire = MP_BUFFER_INIT, got = MP_BUFFER_INIT;
    char expect[1000];
    for (int i = 0; i < 100; i++) {
        struct mp_buffer piece = MP_BUFFER_INIT;
        char frame[11];
        snprintf(frame, sizeof(frame), "frame-%03d|", i);
        memcpy(expect + i * 10, frame, 10);
        assert_int_equal(mp_buffer_append_copy(&piece, frame, 10), 0);
        assert_int_equal(mp_buffer_move(&plain, &piece), 0);
        mp_buffer_clear(&piece);
    }
    assert_true(mp_buffer_view_count(&plain) >= 50);
    assert_int_equal(mp_tls_transport_write(c, &plain), 1000);
    ssize_t out = mp_tls_transport_take_output(c, &wire);
    if (!(out > 1000 && out < 1100))
        fail_msg("ciphertext %zd bytes for 1000 in %zu views", out, mp_buffer_view_count(&wire));
    /* one record: 1000 bytes + header + tag */
    assert_int_equal(mp_tls_transport_feed(s, &wire), 0);
    assert_int_equal(mp_tls_transport_read(s, &got), 1000);
    char back[1000];
    mp_buffer_copy_out(&got, 0, back, 1000);
    assert_memory_equal(back, expect, 1000);
    mp_buffer_clear(&plain);
    mp_buffer_clear(&wire);
    mp_buffer_clear(&got);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

/* A CRL in the validation context refuses the revoked certificate only. */
static void test_crl(void **state)
{
    assert_true(g_have_certs);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    pb_tls_require_client_cert(&p);
    Envoy__Config__Core__V3__DataSource crl = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    char path[128];
    snprintf(path, sizeof(path), "%s/ca.crl", g_dir);
    crl.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
    crl.filename = path;
    p.val.crl = &crl;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    struct mp_tls_context *sctx;
    if (mp_tls_context_new(cfg, NULL, NULL, &sctx, &err) != 0)
        fail_msg("%s", err);
    mp_tls_config_unref(cfg);
    const char *certs[] = {"api", "revoked"};
    for (int i = 0; i < 2; i++) {
        struct mp_tls_context *cctx = client_ctx(certs[i], "ca", NULL, NULL);
        struct mp_tls_transport *c, *s;
        assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
        assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
        int rc_c, rc_s;
        pump(c, s, &rc_c, &rc_s);
        assert_int_equal(rc_s, i == 0 ? 0 : MP_ERR_PROTO);
        mp_tls_transport_free(c);
        mp_tls_transport_free(s);
        mp_tls_context_unref(cctx);
    }
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(sctx), 2), 1); /* fail_verify_error */
    mp_tls_context_unref(sctx);

    /* a CRL file that holds no CRL is a config error */
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    snprintf(path, sizeof(path), "%s/ca.crt", g_dir);
    p.val.crl = &crl;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), MP_ERR_INVAL);
    char want[200];
    snprintf(want, sizeof(want),
             "common_tls_context.validation_context.crl: no PEM CRL in %s/ca.crt", g_dir);
    assert_string_equal(err, want);
    free(err);
}

/* max_verify_depth 1 admits a leaf signed directly by the trusted CA. */
static void test_verify_depth(void **state)
{
    assert_true(g_have_certs);
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    pb_tls_require_client_cert(&p);
    Google__Protobuf__UInt32Value depth = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    depth.value = 1;
    p.val.max_verify_depth = &depth;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->validation->max_verify_depth, 1);
    struct mp_tls_context *sctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &sctx, &err), 0);
    mp_tls_config_unref(cfg);
    struct mp_tls_context *cctx = client_ctx("api", "ca", NULL, NULL);
    struct mp_tls_transport *c, *s;
    assert_int_equal(mp_tls_transport_new(cctx, NULL, &c), 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &s), 0);
    int rc_c, rc_s;
    pump(c, s, &rc_c, &rc_s);
    assert_int_equal(rc_s, 0);
    mp_tls_transport_free(c);
    mp_tls_transport_free(s);
    mp_tls_context_unref(sctx);
    mp_tls_context_unref(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_good_pair),
        cmocka_unit_test(test_refuse_wrong_ca),
        cmocka_unit_test(test_refuse_expired),
        cmocka_unit_test(test_refuse_wrong_san),
        cmocka_unit_test(test_refuse_no_client_cert),
        cmocka_unit_test(test_client_refuses_server_san),
        cmocka_unit_test(test_allow_expired_and_no_alpn_overlap),
        cmocka_unit_test(test_tls13_resumption_and_alpn_override),
        cmocka_unit_test(test_rotation_keeps_old_connections),
        cmocka_unit_test(test_sds_secrets),
        cmocka_unit_test(test_garbage_input_fails_cleanly),
        cmocka_unit_test(test_large_transfer_by_slices),
        cmocka_unit_test(test_sni_selects_certificate),
        cmocka_unit_test(test_shared_ticket_keys),
        cmocka_unit_test(test_spki_pinning),
        cmocka_unit_test(test_small_writes_coalesce),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_verify_depth),
        cmocka_unit_test(test_eof_during_handshake_is_not_an_error),
        cmocka_unit_test(test_xfcc_element),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
