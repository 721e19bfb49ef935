/*
 * test_tls_config.c: SAN string matching, DownstreamTlsContext /
 * UpstreamTlsContext / Secret translation and its error messages (with field
 * paths), and context-level checks (combined validation merge, insecure SAN
 * checks without a CA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/core/v3/grpc_service.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/tls_context.h"
#include "test_tls_util.h"
#include "xds/xds_translate_tls.h"

static char g_dir[64];

static int group_setup(void **state)
{
    if (tls_test_make_certs(g_dir) != 0)
        fprintf(stderr, "openssl CLI could not make certificates\n");
    return 0;
}

static int group_teardown(void **state)
{
    tls_test_remove_certs(g_dir);
    return 0;
}

/* ---- string / SAN matching ------------------------------------------------ */

static bool m(enum mp_tls_str_kind k, bool ic, const char *pat, const char *v)
{
    struct mp_tls_str_matcher sm;
    char *err = NULL;
    assert_int_equal(mp_tls_str_matcher_init(&sm, k, ic, pat, &err), 0);
    bool r = mp_tls_str_match(&sm, v, strlen(v));
    mp_tls_str_matcher_clear(&sm);
    return r;
}

static void test_string_matchers(void **state)
{
    assert_true(m(MP_TLS_STR_EXACT, false, SPIFFE_WEB, SPIFFE_WEB));
    assert_false(m(MP_TLS_STR_EXACT, false, SPIFFE_WEB, SPIFFE_WEB "x"));
    assert_false(m(MP_TLS_STR_EXACT, false, "spiffe://A", "spiffe://a"));
    assert_true(m(MP_TLS_STR_EXACT, true, "spiffe://A", "spiffe://a"));
    assert_true(m(MP_TLS_STR_PREFIX, false, "spiffe://cluster.local/ns/default/", SPIFFE_API));
    assert_false(m(MP_TLS_STR_PREFIX, false, "spiffe://cluster.local/ns/prod/", SPIFFE_API));
    assert_true(m(MP_TLS_STR_SUFFIX, false, "/sa/api", SPIFFE_API));
    assert_true(m(MP_TLS_STR_SUFFIX, true, "/SA/API", SPIFFE_API));
    assert_false(m(MP_TLS_STR_SUFFIX, false, "/sa/api", "pi"));
    assert_true(m(MP_TLS_STR_CONTAINS, false, "/ns/default/", SPIFFE_API));
    assert_true(m(MP_TLS_STR_CONTAINS, true, "/NS/Default/", SPIFFE_API));
    assert_false(m(MP_TLS_STR_CONTAINS, false, "/ns/prod/", SPIFFE_API));
    /* safe_regex is a full match, as RE2 FullMatch */
    assert_true(
        m(MP_TLS_STR_REGEX, false, "spiffe://cluster\\.local/ns/[^/]+/sa/(web|api)", SPIFFE_API));
    assert_false(m(MP_TLS_STR_REGEX, false, "sa/api", SPIFFE_API));
    assert_false(m(MP_TLS_STR_REGEX, false, "spiffe://.*/sa/web", SPIFFE_API));

    /* an embedded NUL never matches (the "www.good.com\0.evil.com" trick) */
    struct mp_tls_str_matcher sm;
    assert_int_equal(mp_tls_str_matcher_init(&sm, MP_TLS_STR_PREFIX, false, "good", NULL), 0);
    assert_false(mp_tls_str_match(&sm, "good\0.evil", 10));
    assert_true(mp_tls_str_match(&sm, "good.evil", 9));
    mp_tls_str_matcher_clear(&sm);

    char *err = NULL;
    assert_int_equal(mp_tls_str_matcher_init(&sm, MP_TLS_STR_REGEX, false, "(", &err),
                     MP_ERR_INVAL);
    assert_non_null(strstr(err, "invalid regex \"(\""));
    free(err);
}

static void test_san_types(void **state)
{
    struct mp_tls_validation v = {0};
    struct mp_tls_san_matcher sans[2];
    assert_true(mp_tls_san_accept(&v, MP_TLS_SAN_DNS, "x", 1)); /* no matchers: anything */
    sans[0].type = MP_TLS_SAN_URI;
    assert_int_equal(
        mp_tls_str_matcher_init(&sans[0].str, MP_TLS_STR_EXACT, false, SPIFFE_WEB, NULL), 0);
    sans[1].type = MP_TLS_SAN_ANY;
    assert_int_equal(
        mp_tls_str_matcher_init(&sans[1].str, MP_TLS_STR_SUFFIX, false, ".default.svc", NULL), 0);
    v.sans = sans;
    v.n_sans = 1;
    assert_true(mp_tls_san_accept(&v, MP_TLS_SAN_URI, SPIFFE_WEB, strlen(SPIFFE_WEB)));
    /* the same text as a DNS SAN does not pass a URI matcher */
    assert_false(mp_tls_san_accept(&v, MP_TLS_SAN_DNS, SPIFFE_WEB, strlen(SPIFFE_WEB)));
    v.n_sans = 2;
    assert_true(mp_tls_san_accept(&v, MP_TLS_SAN_DNS, "web.default.svc", 15));
    assert_true(mp_tls_san_accept(&v, MP_TLS_SAN_EMAIL, "a@b.default.svc", 15));
    assert_false(mp_tls_san_accept(&v, MP_TLS_SAN_IP, "10.0.0.1", 8));
    mp_tls_str_matcher_clear(&sans[0].str);
    mp_tls_str_matcher_clear(&sans[1].str);
}

/* ---- translation ---------------------------------------------------------- */

static void expect_down_error(struct pb_tls *p, const char *msg)
{
    struct mp_tls_config *cfg = (void *)1;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p->down, &cfg, &err), MP_ERR_INVAL);
    assert_null(cfg);
    assert_non_null(err);
    if (strcmp(err, msg) != 0)
        fail_msg("got  \"%s\"\nwant \"%s\"", err, msg);
    free(err);
}

static void test_file_errors(void **state)
{
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    p.key.filename = "/nonexistent/key.pem";
    expect_down_error(&p, "common_tls_context.tls_certificates[0].private_key: cannot read file "
                          "\"/nonexistent/key.pem\": No such file or directory");
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    p.chain.filename = "/tmp";
    expect_down_error(&p, "common_tls_context.tls_certificates[0].certificate_chain: cannot read "
                          "file \"/tmp\": not a regular file");
    /* inline, not PEM */
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    p.chain.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    p.chain.inline_string = "not a certificate";
    expect_down_error(&p, "common_tls_context.tls_certificates[0].certificate_chain: no PEM "
                          "certificate in <inline>");
    /* unset */
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    p.cert.private_key = NULL;
    expect_down_error(&p, "common_tls_context.tls_certificates[0].private_key: is empty or not "
                          "set");
    /* key of another certificate */
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    char other_key[128], msg[512];
    snprintf(other_key, sizeof(other_key), "%s/api.key", g_dir);
    p.key.filename = other_key;
    snprintf(msg, sizeof(msg),
             "common_tls_context.tls_certificates[0].private_key: does not match the "
             "certificate in %s/web.crt",
             g_dir);
    expect_down_error(&p, msg);
    /* CA bundle that is not PEM */
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    p.ca.filename = p.paths[1]; /* the key file */
    snprintf(msg, sizeof(msg),
             "common_tls_context.validation_context.trusted_ca: no PEM certificate in %s/web.key",
             g_dir);
    expect_down_error(&p, msg);
}

static void test_param_errors(void **state)
{
    struct pb_tls p;
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters tp =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__INIT;
    char *ciphers[] = {"ECDHE-ECDSA-AES128-GCM-SHA256", "NOPE"};
    char *curves[] = {"X25519", "P-999"};
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    p.common.tls_params = &tp;
    tp.cipher_suites = ciphers;
    tp.n_cipher_suites = 2;
    expect_down_error(&p, "common_tls_context.tls_params.cipher_suites[1]: unknown cipher suite "
                          "\"NOPE\"");
    tp.n_cipher_suites = 1;
    tp.ecdh_curves = curves;
    tp.n_ecdh_curves = 2;
    expect_down_error(&p, "common_tls_context.tls_params.ecdh_curves[1]: unknown curve "
                          "\"P-999\"");
    tp.n_ecdh_curves = 1;
    tp.tls_minimum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3;
    tp.tls_maximum_protocol_version =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2;
    expect_down_error(&p, "common_tls_context.tls_params.tls_minimum_protocol_version: higher "
                          "than tls_maximum_protocol_version");
    tp.tls_maximum_protocol_version = 0; /* server default max: 1.3 */
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->min_version, 0x0304);
    assert_int_equal(cfg->max_version, 0x0304);
    assert_string_equal(cfg->cipher_suites, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(cfg->ecdh_curves, "X25519");
    struct mp_tls_context *ctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &ctx, &err), 0);
    mp_tls_context_unref(ctx);
    mp_tls_config_unref(cfg);
}

static void test_validation_errors(void **state)
{
    struct pb_tls p;
    char msg[256];
    pb_tls_init(&p, g_dir, "web", "ca", SPIFFE_API, NULL);
    p.sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
    Envoy__Type__Matcher__V3__RegexMatcher re = ENVOY__TYPE__MATCHER__V3__REGEX_MATCHER__INIT;
    re.regex = "spiffe://(";
    p.sm.safe_regex = &re;
    snprintf(msg, sizeof(msg), "%s",
             "common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher."
             "safe_regex.regex: invalid regex \"spiffe://(\" at offset 10: missing closing "
             "parenthesis");
    expect_down_error(&p, msg);

    pb_tls_init(&p, g_dir, "web", "ca", SPIFFE_API, NULL);
    p.san.san_type =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__OTHER_NAME;
    expect_down_error(&p, "common_tls_context.validation_context.match_typed_subject_alt_names[0]"
                          ".san_type: OTHER_NAME is not supported");
    p.san.san_type = 0;
    expect_down_error(&p, "common_tls_context.validation_context.match_typed_subject_alt_names[0]"
                          ".san_type: must be one of EMAIL, DNS, URI, IP_ADDRESS");

    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    char *hashes[] = {"DF:6F:F7:2F:E9:11:65:21:26:8F:6F:2D:D4:96:6F:51:DF:47:98:83:FE:70:37:B3:"
                      "9F:75:91:6A:C3:04:9D:1A",
                      "abc"};
    p.val.verify_certificate_hash = hashes;
    p.val.n_verify_certificate_hash = 2;
    expect_down_error(&p, "common_tls_context.validation_context.verify_certificate_hash[1]: "
                          "\"abc\" is not a hex SHA-256");
    p.val.n_verify_certificate_hash = 1;
    char *spki[] = {"NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A=", "!!"};
    p.val.verify_certificate_spki = spki;
    p.val.n_verify_certificate_spki = 2;
    expect_down_error(&p, "common_tls_context.validation_context.verify_certificate_spki[1]: "
                          "\"!!\" is not a base64 SHA-256");
    p.val.n_verify_certificate_spki = 1;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->validation->n_cert_hashes, 1);
    assert_int_equal(cfg->validation->cert_hashes[0][0], 0xdf);
    assert_int_equal(cfg->validation->cert_hashes[0][31], 0x1a);
    assert_int_equal(cfg->validation->n_spki_hashes, 1);
    assert_int_equal(cfg->validation->spki_hashes[0][0], 0x36);
    mp_tls_config_unref(cfg);

    /* server without any certificate; mTLS without a validation context */
    pb_tls_init(&p, g_dir, NULL, NULL, NULL, NULL);
    expect_down_error(&p, "common_tls_context: a server needs tls_certificates or "
                          "tls_certificate_sds_secret_configs");
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    pb_tls_require_client_cert(&p);
    expect_down_error(&p, "require_client_certificate: needs a validation context");
}

static void test_deprecated_san_and_session_settings(void **state)
{
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", NULL, (const char *const[]){"h2", "http/1.1", NULL});
    Envoy__Type__Matcher__V3__StringMatcher sm = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT;
    sm.match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
    sm.prefix = "spiffe://cluster.local/";
    Envoy__Type__Matcher__V3__StringMatcher *sms[] = {&sm};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    p.val.match_subject_alt_names = sms;
    p.val.n_match_subject_alt_names = 1;
#pragma GCC diagnostic pop
    p.down.disable_stateful_session_resumption = 1;
    p.down.session_ticket_keys_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION;
    p.down.disable_stateless_session_resumption = 1;
    Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
    timeout.seconds = 600;
    p.down.session_timeout = &timeout;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->validation->n_sans, 1);
    assert_int_equal(cfg->validation->sans[0].type, MP_TLS_SAN_ANY);
    assert_false(cfg->session_cache);
    assert_false(cfg->session_tickets);
    assert_int_equal(cfg->session_timeout_s, 600);
    assert_int_equal(cfg->n_alpn, 2);
    assert_string_equal(cfg->alpn[1], "http/1.1");
    assert_int_equal(cfg->side, MP_TLS_SERVER);
    mp_tls_config_unref(cfg);
}

static void test_ticket_keys(void **state)
{
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", NULL, NULL, NULL);
    Envoy__Extensions__TransportSockets__Tls__V3__TlsSessionTicketKeys tk =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_SESSION_TICKET_KEYS__INIT;
    Envoy__Config__Core__V3__DataSource k = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    Envoy__Config__Core__V3__DataSource *keys[] = {&k};
    uint8_t raw[80];
    for (int i = 0; i < 80; i++)
        raw[i] = (uint8_t)i;
    k.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
    k.inline_bytes.data = raw;
    k.inline_bytes.len = 10;
    tk.keys = keys;
    tk.n_keys = 1;
    p.down.session_ticket_keys_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS;
    p.down.session_ticket_keys = &tk;
    expect_down_error(&p, "session_ticket_keys.keys[0]: must be 80 bytes (got 10)");
    k.inline_bytes.len = 80;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->n_ticket_keys, 1);
    assert_int_equal(cfg->ticket_keys[0][79], 79);
    struct mp_tls_context *ctx;
    assert_int_equal(mp_tls_context_new(cfg, NULL, NULL, &ctx, &err), 0);
    mp_tls_context_unref(ctx);
    mp_tls_config_unref(cfg);
}

static void test_upstream_and_sds_refs(void **state)
{
    struct pb_tls p;
    pb_tls_init(&p, g_dir, NULL, NULL, NULL, NULL);
    /* api_config_source naming the SDS cluster (Istio's sds-grpc) */
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc eg =
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    eg.cluster_name = "sds-grpc";
    Envoy__Config__Core__V3__GrpcService gs = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    gs.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    gs.envoy_grpc = &eg;
    Envoy__Config__Core__V3__GrpcService *gss[] = {&gs};
    Envoy__Config__Core__V3__ApiConfigSource api = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__INIT;
    api.api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api.grpc_services = gss;
    api.n_grpc_services = 1;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs.api_config_source = &api;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig ref =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT;
    ref.name = "default";
    ref.sds_config = &cs;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *refs[] = {&ref};
    p.common.tls_certificate_sds_secret_configs = refs;
    p.common.n_tls_certificate_sds_secret_configs = 1;
    p.up.sni = "outbound_.9080_._.reviews.default.svc.cluster.local";
    Google__Protobuf__UInt32Value msk = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
    msk.value = 4;
    p.up.max_session_keys = &msk;
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_upstream_tls(&p.up, &cfg, &err), 0);
    assert_int_equal(cfg->side, MP_TLS_CLIENT);
    assert_int_equal(cfg->max_version, 0x0303); /* Envoy's client default */
    assert_string_equal(cfg->sni, "outbound_.9080_._.reviews.default.svc.cluster.local");
    assert_int_equal(cfg->max_session_keys, 4);
    assert_int_equal(cfg->n_cert_sds, 1);
    assert_false(cfg->cert_sds[0].ads);
    assert_string_equal(cfg->cert_sds[0].cluster, "sds-grpc");
    mp_tls_config_unref(cfg);

    /* an empty SDS name, and a config source we do not speak */
    ref.name = "";
    struct mp_tls_config *bad = NULL;
    assert_int_equal(mp_xds_translate_upstream_tls(&p.up, &bad, &err), MP_ERR_INVAL);
    assert_string_equal(err, "common_tls_context.tls_certificate_sds_secret_configs[0].name: "
                             "must not be empty");
    free(err);
    err = NULL;
    ref.name = "default";
    Envoy__Config__Core__V3__PathConfigSource pcs =
        ENVOY__CONFIG__CORE__V3__PATH_CONFIG_SOURCE__INIT;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH_CONFIG_SOURCE;
    cs.path_config_source = &pcs;
    assert_int_equal(mp_xds_translate_upstream_tls(&p.up, &bad, &err), MP_ERR_INVAL);
    assert_string_equal(err, "common_tls_context.tls_certificate_sds_secret_configs[0]."
                             "sds_config: only ads or api_config_source are supported");
    free(err);
}

static void test_any_and_env(void **state)
{
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    /* the CA from an environment variable, as inline PEM */
    char *ca = tls_test_slurp(g_dir, "ca.crt");
    assert_non_null(ca);
    setenv("MP_TEST_TLS_CA", ca, 1);
    free(ca);
    p.ca.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE;
    p.ca.environment_variable = "MP_TEST_TLS_CA";
    size_t len =
        envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__get_packed_size(
            &p.down);
    uint8_t *buf = malloc(len);
    envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__pack(&p.down, buf);
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(
        mp_xds_translate_tls_any(MP_TLS_DOWNSTREAM_TYPE_URL, buf, len, MP_TLS_SERVER, &cfg, &err),
        0);
    assert_non_null(cfg->validation);
    assert_string_equal(cfg->validation->trusted_ca.origin, "MP_TEST_TLS_CA");
    mp_tls_config_unref(cfg);
    assert_int_equal(
        mp_xds_translate_tls_any(MP_TLS_DOWNSTREAM_TYPE_URL, buf, len, MP_TLS_CLIENT, &cfg, &err),
        MP_ERR_INVAL);
    assert_string_equal(err, "type_url: expected \"" MP_TLS_UPSTREAM_TYPE_URL
                             "\", got \"" MP_TLS_DOWNSTREAM_TYPE_URL "\"");
    free(err);
    err = NULL;
    unsetenv("MP_TEST_TLS_CA");
    assert_int_equal(
        mp_xds_translate_tls_any(MP_TLS_DOWNSTREAM_TYPE_URL, buf, len, MP_TLS_SERVER, &cfg, &err),
        MP_ERR_INVAL);
    assert_string_equal(err, "common_tls_context.validation_context.trusted_ca: environment "
                             "variable \"MP_TEST_TLS_CA\" is not set");
    free(err);
    err = NULL;

    /* the same bytes inside a TransportSocket, as a filter chain carries them */
    setenv("MP_TEST_TLS_CA", "x", 1); /* not PEM now: a config error with its path */
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = MP_TLS_DOWNSTREAM_TYPE_URL;
    any.value.data = buf;
    any.value.len = len;
    Envoy__Config__Core__V3__TransportSocket ts = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
    ts.name = "envoy.transport_sockets.tls";
    ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts.typed_config = &any;
    assert_int_equal(mp_xds_translate_transport_socket(&ts, MP_TLS_SERVER, &cfg, &err),
                     MP_ERR_INVAL);
    assert_string_equal(err, "typed_config.common_tls_context.validation_context.trusted_ca: no "
                             "PEM certificate in MP_TEST_TLS_CA");
    free(err);
    err = NULL;
    unsetenv("MP_TEST_TLS_CA");
    p.common.validation_context_type_case = 0;
    len = envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__pack(&p.down, buf);
    any.value.len = len;
    assert_int_equal(mp_xds_translate_transport_socket(&ts, MP_TLS_SERVER, &cfg, &err), 0);
    assert_non_null(cfg);
    assert_null(cfg->validation);
    mp_tls_config_unref(cfg);
    assert_int_equal(mp_xds_translate_transport_socket(&ts, MP_TLS_CLIENT, &cfg, &err),
                     MP_ERR_INVAL);
    assert_non_null(strstr(err, "typed_config.type_url: expected"));
    free(err);
    err = NULL;
    ts.name = "envoy.transport_sockets.raw_buffer";
    ts.config_type_case = 0;
    assert_int_equal(mp_xds_translate_transport_socket(&ts, MP_TLS_SERVER, &cfg, &err), 0);
    assert_null(cfg);
    assert_int_equal(mp_xds_translate_transport_socket(NULL, MP_TLS_SERVER, &cfg, &err), 0);
    ts.name = "envoy.transport_sockets.alts";
    assert_int_equal(mp_xds_translate_transport_socket(&ts, MP_TLS_SERVER, &cfg, &err),
                     MP_ERR_UNSUPPORTED);
    assert_string_equal(err, "name: transport socket \"envoy.transport_sockets.alts\" is not "
                             "supported");
    free(err);
    free(buf);
}

static void test_secrets(void **state)
{
    Envoy__Extensions__TransportSockets__Tls__V3__Secret sec =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    struct mp_tls_secret *s = NULL;
    char *err = NULL;
    sec.name = "x";
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), MP_ERR_INVAL);
    assert_string_equal(err, "no secret type set");
    free(err);
    err = NULL;
    sec.name = "";
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), MP_ERR_INVAL);
    assert_string_equal(err, "name: must not be empty");
    free(err);
    err = NULL;

    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", NULL, NULL);
    p.key.filename = "/nonexistent";
    sec.name = "default";
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    sec.tls_certificate = &p.cert;
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), MP_ERR_INVAL);
    assert_string_equal(err, "tls_certificate.private_key: cannot read file \"/nonexistent\": No "
                             "such file or directory");
    free(err);
    err = NULL;

    Envoy__Extensions__TransportSockets__Tls__V3__GenericSecret gen =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__GENERIC_SECRET__INIT;
    Envoy__Config__Core__V3__DataSource ds = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    ds.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    ds.inline_string = "token";
    gen.secret = &ds;
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_GENERIC_SECRET;
    sec.generic_secret = &gen;
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), 0);
    assert_int_equal(s->kind, MP_TLS_SECRET_GENERIC);
    assert_string_equal((char *)s->generic.data, "token");
    assert_ptr_equal(mp_tls_secret_ref(s), s);
    mp_tls_secret_unref(s);
    mp_tls_secret_unref(s);
}

/* ---- context-level checks -------------------------------------------------- */

static const struct mp_tls_secret *one_secret(void *arg, const char *name)
{
    struct mp_tls_secret *s = arg;
    return strcmp(s->name, name) == 0 ? s : NULL;
}

static void test_combined_validation_merge(void **state)
{
    /* default context: SAN matcher only; SDS context: the CA */
    struct pb_tls p;
    pb_tls_init(&p, g_dir, "web", "ca", SPIFFE_API, NULL);
    p.val.trusted_ca = NULL;
    p.val.allow_expired_certificate = 1;
    Envoy__Config__Core__V3__AggregatedConfigSource ads =
        ENVOY__CONFIG__CORE__V3__AGGREGATED_CONFIG_SOURCE__INIT;
    Envoy__Config__Core__V3__ConfigSource cs = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__INIT;
    cs.config_source_specifier_case =
        ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
    cs.ads = &ads;
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig ref =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SDS_SECRET_CONFIG__INIT;
    ref.name = "ROOTCA";
    ref.sds_config = &cs;
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
        comb =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__COMBINED_CERTIFICATE_VALIDATION_CONTEXT__INIT;
    comb.default_validation_context = &p.val;
    comb.validation_context_sds_secret_config = &ref;
    p.common.validation_context_type_case =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
    p.common.combined_validation_context = &comb;
    pb_tls_require_client_cert(&p);
    struct mp_tls_config *cfg;
    char *err = NULL;
    assert_int_equal(mp_xds_translate_downstream_tls(&p.down, &cfg, &err), 0);
    assert_int_equal(cfg->validation->n_sans, 1);
    assert_int_equal(cfg->validation->trusted_ca.len, 0);

    /* the SAN check without any CA would be insecure: refused */
    struct mp_tls_context *ctx = NULL;
    struct pb_tls q;
    pb_tls_init(&q, g_dir, NULL, "ca", NULL, NULL);
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext empty =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
    Envoy__Extensions__TransportSockets__Tls__V3__Secret sec =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    sec.name = "ROOTCA";
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
    sec.validation_context = &empty;
    struct mp_tls_secret *s;
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), 0);
    assert_int_equal(mp_tls_context_new(cfg, one_secret, s, &ctx, &err), MP_ERR_INVAL);
    assert_string_equal(err, "validation_context: SAN or client certificate verification "
                             "without trusted_ca is insecure and not allowed");
    free(err);
    err = NULL;
    mp_tls_secret_unref(s);

    /* with the CA from SDS, the merged context has both */
    sec.validation_context = &q.val;
    assert_int_equal(mp_xds_translate_secret(&sec, &s, &err), 0);
    assert_int_equal(mp_tls_context_new(cfg, one_secret, s, &ctx, &err), 0);
    assert_true(mp_tls_context_is_server(ctx));
    assert_ptr_equal(mp_tls_context_config(ctx), cfg);
    assert_non_null(mp_tls_context_ssl_ctx(ctx));
    mp_tls_context_unref(ctx);

    /* a secret of the wrong kind */
    s->kind = MP_TLS_SECRET_GENERIC;
    assert_int_equal(mp_tls_context_new(cfg, one_secret, s, &ctx, &err), MP_ERR_INVAL);
    assert_string_equal(err, "validation_context_sds_secret_config: secret \"ROOTCA\" is of the "
                             "wrong kind");
    free(err);
    s->kind = MP_TLS_SECRET_VALIDATION;
    mp_tls_secret_unref(s);
    mp_tls_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_matchers),
        cmocka_unit_test(test_san_types),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_deprecated_san_and_session_settings),
        cmocka_unit_test(test_ticket_keys),
        cmocka_unit_test(test_upstream_and_sds_refs),
        cmocka_unit_test(test_any_and_env),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_combined_validation_merge),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
