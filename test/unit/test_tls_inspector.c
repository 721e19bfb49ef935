/*
 * test_tls_inspector.c: the ClientHello parser on real ClientHellos made by
 * BoringSSL clients over memory BIOs, on the same hello cut short, split
 * over several records and corrupted, and on plaintext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "proxy/mp_common.h"
#include "proxy/tls_inspector.h"

/* Runs a BoringSSL client until it waits for the server and returns its first
 * flight (the ClientHello record), malloc'd, length in *len. */
static uint8_t *client_hello(const char *sni, const char *const *alpn, size_t n_alpn,
                             uint16_t max_version, size_t *len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    assert_true(SSL_CTX_set_max_proto_version(ctx, max_version));
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    if (sni != NULL)
        assert_true(SSL_set_tlsext_host_name(ssl, sni));
    uint8_t wire[2048];
    size_t wl = 0;
    for (size_t i = 0; i < n_alpn; i++) {
        size_t l = strlen(alpn[i]);
        wire[wl++] = (uint8_t)l;
        memcpy(wire + wl, alpn[i], l);
        wl += l;
    }
    if (wl > 0)
        assert_int_equal(SSL_set_alpn_protos(ssl, wire, wl), 0);
    int r = SSL_do_handshake(ssl);
    assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
    const uint8_t *p;
    size_t n;
    assert_true(BIO_mem_contents(wb, &p, &n));
    uint8_t *out = malloc(n);
    memcpy(out, p, n);
    *len = n;
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

static const char *const h2_h1[] = {"h2", "http/1.1"};

static void test_real_hello(void **state)
{
    size_t n;
    uint8_t *h = client_hello("Web.Default.SVC", h2_h1, 2, TLS1_3_VERSION, &n);
    struct mp_client_hello ch;
    assert_int_equal(mp_tls_inspect(h, n, &ch), 0);
    assert_true(ch.is_tls);
    assert_string_equal(ch.transport, "tls");
    assert_string_equal(ch.sni, "web.default.svc"); /* lowercased */
    assert_int_equal(ch.n_alpn, 2);
    assert_string_equal(ch.alpn[0], "h2");
    assert_string_equal(ch.alpn[1], "http/1.1");
    assert_true(mp_client_hello_has_alpn(&ch, "http/1.1"));
    assert_false(mp_client_hello_has_alpn(&ch, "h2c"));
    assert_true(ch.offers_tls13);
    assert_int_equal(ch.legacy_version, 0x0303);
    assert_int_equal(ch.hello_len + 5, n);

    struct mp_tls_inspector_stats st = {0};
    mp_tls_inspector_count(&st, 0, &ch);
    mp_tls_inspector_count(&st, MP_ERR_AGAIN, &ch);
    mp_tls_inspector_count(&st, MP_ERR_LIMIT, &ch);
    assert_int_equal(st.tls_found, 1);
    assert_int_equal(st.sni_found, 1);
    assert_int_equal(st.alpn_found, 1);
    assert_int_equal(st.client_hello_too_large, 1);
    assert_int_equal(st.tls_not_found, 0);

    /* Every shorter prefix asks for more bytes and claims nothing yet. */
    for (size_t len = 0; len < n; len++) {
        assert_int_equal(mp_tls_inspect(h, len, &ch), MP_ERR_AGAIN);
        assert_false(ch.is_tls);
    }
    /* Bytes after the hello (a client that does not wait) change nothing. */
    uint8_t *more = malloc(n + 100);
    memcpy(more, h, n);
    memset(more + n, 0x17, 100);
    assert_int_equal(mp_tls_inspect(more, n + 100, &ch), 0);
    assert_true(ch.is_tls);
    free(more);
    free(h);
}

static void test_no_sni_no_alpn_tls12(void **state)
{
    size_t n;
    uint8_t *h = client_hello(NULL, NULL, 0, TLS1_2_VERSION, &n);
    struct mp_client_hello ch;
    assert_int_equal(mp_tls_inspect(h, n, &ch), 0);
    assert_true(ch.is_tls);
    assert_string_equal(ch.sni, "");
    assert_int_equal(ch.n_alpn, 0);
    assert_false(ch.offers_tls13);
    free(h);
}

/* Re-frames the handshake message of a one-record hello into records of at
 * most frag bytes, as a client with a large hello (or a middlebox) would. */
static uint8_t *fragment(const uint8_t *h, size_t n, size_t frag, size_t *out_len)
{
    size_t body = n - 5, recs = (body + frag - 1) / frag;
    uint8_t *out = malloc(body + 5 * recs), *p = out;
    for (size_t off = 0; off < body; off += frag) {
        size_t l = body - off < frag ? body - off : frag;
        *p++ = 0x16;
        *p++ = h[1];
        *p++ = h[2];
        *p++ = (uint8_t)(l >> 8);
        *p++ = (uint8_t)l;
        memcpy(p, h + 5 + off, l);
        p += l;
    }
    *out_len = (size_t)(p - out);
    return out;
}

static void test_hello_over_several_records(void **state)
{
    size_t n, fn;
    uint8_t *h = client_hello("api.mesh.local", h2_h1, 2, TLS1_3_VERSION, &n);
    const size_t frags[] = {1, 7, 64, 100, 150};
    for (size_t k = 0; k < MP_ARRAY_LEN(frags); k++) {
        uint8_t *f = fragment(h, n, frags[k], &fn);
        struct mp_client_hello ch;
        assert_int_equal(mp_tls_inspect(f, fn, &ch), 0);
        assert_true(ch.is_tls);
        assert_string_equal(ch.sni, "api.mesh.local");
        assert_int_equal(ch.n_alpn, 2);
        for (size_t len = 0; len < fn; len += 13)
            assert_int_equal(mp_tls_inspect(f, len, &ch), MP_ERR_AGAIN);
        free(f);
    }
    free(h);
}

static void test_plaintext_and_garbage(void **state)
{
    struct mp_client_hello ch;
    const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    /* One byte is enough to know plaintext is not TLS. */
    assert_int_equal(mp_tls_inspect((const uint8_t *)get, 1, &ch), 0);
    assert_false(ch.is_tls);
    assert_string_equal(ch.transport, "raw_buffer");
    const uint8_t h2c[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_int_equal(mp_tls_inspect(h2c, sizeof(h2c) - 1, &ch), 0);
    assert_false(ch.is_tls);

    /* a handshake record that is not a ClientHello (ServerHello type 2) */
    const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00};
    assert_int_equal(mp_tls_inspect(sh, sizeof(sh), &ch), 0);
    assert_false(ch.is_tls);
    /* an SSLv2-looking record version */
    const uint8_t v2[] = {0x16, 0x02, 0x00};
    assert_int_equal(mp_tls_inspect(v2, sizeof(v2), &ch), 0);
    assert_false(ch.is_tls);
    /* zero-length record */
    const uint8_t z[] = {0x16, 0x03, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10};
    assert_int_equal(mp_tls_inspect(z, sizeof(z), &ch), 0);
    assert_false(ch.is_tls);

    /* a real hello with a broken extensions length: parsed as not TLS */
    size_t n;
    uint8_t *h = client_hello("x.example", h2_h1, 2, TLS1_3_VERSION, &n);
    size_t ext_len_off = 5 + 4 + 2 + 32;
    ext_len_off += 1 + h[ext_len_off];                                     /* session id */
    ext_len_off += 2 + ((size_t)h[ext_len_off] << 8 | h[ext_len_off + 1]); /* suites */
    ext_len_off += 1 + h[ext_len_off];                                     /* compression */
    h[ext_len_off] ^= 0x40;
    assert_int_equal(mp_tls_inspect(h, n, &ch), 0);
    assert_false(ch.is_tls);
    assert_string_equal(ch.sni, "");
    free(h);
}

static void test_too_large(void **state)
{
    struct mp_client_hello ch;
    /* a handshake header announcing 70000 bytes */
    const uint8_t big[] = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x11, 0x70};
    assert_int_equal(mp_tls_inspect(big, sizeof(big), &ch), MP_ERR_LIMIT);
    /* just under the limit is still waited for */
    const uint8_t ok[] = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0xff, 0x00};
    assert_int_equal(mp_tls_inspect(ok, sizeof(ok), &ch), MP_ERR_AGAIN);

    /* 1-byte records: 6 raw bytes per hello byte, beyond the peek window */
    size_t hs = 20000, n = 0;
    uint8_t *buf = malloc(MP_TLS_INSPECTOR_MAX_HELLO + 16);
    const uint8_t hdr[4] = {0x01, (uint8_t)(hs >> 16), (uint8_t)(hs >> 8), (uint8_t)hs};
    for (size_t i = 0; n + 6 <= MP_TLS_INSPECTOR_MAX_HELLO; i++) {
        uint8_t rec[6] = {0x16, 0x03, 0x01, 0x00, 0x01, i < 4 ? hdr[i] : 0};
        memcpy(buf + n, rec, 6);
        n += 6;
    }
    assert_int_equal(mp_tls_inspect(buf, n, &ch), MP_ERR_LIMIT);
    free(buf);
}

static void test_many_alpn(void **state)
{
    const char *alpn[24];
    char names[24][8];
    for (int i = 0; i < 24; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        alpn[i] = names[i];
    }
    size_t n;
    uint8_t *h = client_hello("a.b", alpn, 24, TLS1_3_VERSION, &n);
    struct mp_client_hello ch;
    assert_int_equal(mp_tls_inspect(h, n, &ch), 0);
    assert_true(ch.is_tls);
    assert_int_equal(ch.n_alpn, MP_TLS_INSPECTOR_MAX_ALPN);
    assert_int_equal(ch.n_alpn_dropped, 24 - MP_TLS_INSPECTOR_MAX_ALPN);
    assert_string_equal(ch.alpn[15], "p15");
    free(h);
}

/* Random corruption of a real hello: never crashes, always a defined answer. */
static void test_mutations(void **state)
{
    size_t n;
    uint8_t *h = client_hello("mutate.example.com", h2_h1, 2, TLS1_3_VERSION, &n);
    uint8_t *m = malloc(n);
    srand(12345);
    for (int round = 0; round < 20000; round++) {
        memcpy(m, h, n);
        int flips = 1 + rand() % 4;
        for (int i = 0; i < flips; i++)
            m[rand() % n] = (uint8_t)rand();
        size_t len = (size_t)rand() % (n + 1);
        struct mp_client_hello ch;
        int rc = mp_tls_inspect(m, len, &ch);
        assert_true(rc == 0 || rc == MP_ERR_AGAIN || rc == MP_ERR_LIMIT);
        assert_true(strlen(ch.sni) < sizeof(ch.sni));
        assert_true(ch.n_alpn <= MP_TLS_INSPECTOR_MAX_ALPN);
    }
    free(m);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_hello),
        cmocka_unit_test(test_no_sni_no_alpn_tls12),
        cmocka_unit_test(test_hello_over_several_records),
        cmocka_unit_test(test_plaintext_and_garbage),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_many_alpn),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
