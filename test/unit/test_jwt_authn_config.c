/*
 * test_jwt_authn_config.c: JwtAuthentication translation (from YAML, as a
 * user writes it) and requirement evaluation on real signed tokens:
 * provider_name, provider_and_audiences, requires_any/all, allow_missing,
 * allow_missing_or_failed, issuer/audience/expiry failures, token
 * locations, rules and config errors (remote_jwks refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "filters/http/jwt_authn_config.h"
#include "jwt_test_keys.h"
#include "proxy/http_headers.h"
#include "proxy/jwt_jwks.h"
#include "proxy/mp_common.h"
#include "proxy/pb_yaml.h"

#include <unistd.h>

#define NOW 1700000000ull

static struct tkey rsa, ec;
static char *jwks_rsa, *jwks_ec;

static int setup(void **st)
{
    (void)st;
    tk_rsa(&rsa);
    tk_ec(&ec, NID_X9_62_prime256v1);
    char *a = tk_jwk(&rsa, "r1", "RS256"), *b = tk_jwk(&ec, "e1", NULL);
    jwks_rsa = tk_xmalloc(strlen(a) + 20);
    sprintf(jwks_rsa, "{\"keys\":[%s]}", a);
    jwks_ec = tk_xmalloc(strlen(b) + 20);
    sprintf(jwks_ec, "{\"keys\":[%s]}", b);
    free(a);
    free(b);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tk_free(&rsa);
    tk_free(&ec);
    free(jwks_rsa);
    free(jwks_ec);
    return 0;
}

/* YAML with %s placeholders for the two JWKS (as JSON strings) -> config. */
static int parse_cfg(const char *yaml_fmt, struct mp_jwt_authn_config **out, char **err)
{
    char yaml[16384];
    snprintf(yaml, sizeof(yaml), yaml_fmt, jwks_rsa, jwks_ec);
    ProtobufCMessage *msg = NULL;
    int rc = mp_pb_from_yaml(
        yaml, strlen(yaml),
        &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor, 0, &msg,
        err);
    if (rc < 0)
        return rc;
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = tk_xmalloc(n ? n : 1);
    protobuf_c_message_pack(msg, buf);
    protobuf_c_message_free_unpacked(msg, NULL);
    rc = mp_jwt_authn_config_parse(buf, n, out, err);
    free(buf);
    return rc;
}

static struct mp_jwt_authn_config *cfg_ok(const char *yaml)
{
    struct mp_jwt_authn_config *c = NULL;
    char *err = NULL;
    int rc = parse_cfg(yaml, &c, &err);
    if (rc != 0)
        fprintf(stderr, "config: %s\n", err ? err : "?");
    free(err);
    assert_int_equal(rc, 0);
    return c;
}

/* The YAML's JWKS go in as single-quoted strings (the JSON has no quote). */
static const char *PROVIDERS = "providers:\n"
                               "  rsa:\n"
                               "    issuer: https://rsa.example\n"
                               "    audiences: [svc]\n"
                               "    local_jwks: {inline_string: '%s'}\n"
                               "    forward_payload_header: x-jwt-payload\n"
                               "  ec:\n"
                               "    issuer: ec-issuer\n"
                               "    from_headers: [{name: x-ec-token}]\n"
                               "    from_params: [tok]\n"
                               "    local_jwks: {inline_string: '%s'}\n";

static char *cfg_text(const char *rest)
{
    char *s = tk_xmalloc(strlen(PROVIDERS) + strlen(rest) + 1);
    sprintf(s, "%s%s", PROVIDERS, rest);
    return s;
}

static enum mp_jwt_status eval(const struct mp_jwt_authn_config *c, const struct mp_jwt_req *r,
                               struct mp_headers *h, size_t *n_ok)
{
    struct mp_jwt_eval e = {.headers = h, .now = NOW};
    enum mp_jwt_status st = mp_jwt_req_eval(r, c, &e);
    if (n_ok)
        *n_ok = e.n_ok;
    mp_jwt_eval_clear(&e);
    return st;
}

static void headers_with(struct mp_headers *h, const char *path, const char *name,
                         const char *value)
{
    mp_headers_init(h);
    mp_headers_add_cstr(h, ":method", "GET");
    mp_headers_add_cstr(h, ":path", path);
    mp_headers_add_cstr(h, ":authority", "svc");
    if (name)
        mp_headers_add_cstr(h, name, value);
}

static void test_provider_requirement(void **st)
{
    (void)st;
    char *y = cfg_text("requirement_map:\n"
                       "  r: {provider_name: rsa}\n"
                       "  e: {provider_name: ec}\n");
    struct mp_jwt_authn_config *c = cfg_ok(y);
    free(y);
    const struct mp_jwt_req *r = mp_jwt_authn_config_find_req(c, "r");
    const struct mp_jwt_req *e = mp_jwt_authn_config_find_req(c, "e");
    assert_non_null(r);
    assert_non_null(e);
    assert_null(mp_jwt_authn_config_find_req(c, "x"));

    const char *good = "{\"iss\":\"https://rsa.example\",\"aud\":\"svc\",\"exp\":1700003600}";
    char *tok = tk_token(&rsa, "RS256", "r1", good);
    char bearer[4096];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    struct mp_headers h;
    size_t n_ok;

    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, r, &h, &n_ok), MP_JWT_OK);
    assert_int_equal(n_ok, 1);
    /* the token is not at the ec provider's locations */
    assert_int_equal(eval(c, e, &h, NULL), MP_JWT_MISSED);
    mp_headers_clear(&h);

    /* the token is the run of JWT characters after the prefix */
    char padded[4200];
    snprintf(padded, sizeof(padded), "Basic xyz, Bearer %s, more", tok);
    headers_with(&h, "/", "authorization", padded);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);

    /* missing, and a header without the Bearer prefix */
    headers_with(&h, "/", NULL, NULL);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_MISSED);
    mp_headers_clear(&h);
    headers_with(&h, "/", "authorization", tok);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_MISSED);
    mp_headers_clear(&h);
    /* default location: ?access_token= */
    char path[4096];
    snprintf(path, sizeof(path), "/p?a=1&access_token=%s", tok);
    headers_with(&h, path, NULL, NULL);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);
    free(tok);

    struct {
        const char *payload;
        enum mp_jwt_status want;
    } cases[] = {
        {"{\"iss\":\"https://other\",\"aud\":\"svc\"}", MP_JWT_UNKNOWN_ISSUER},
        {"{\"iss\":\"https://rsa.example\",\"aud\":\"nope\"}", MP_JWT_AUDIENCE_NOT_ALLOWED},
        {"{\"iss\":\"https://rsa.example\",\"aud\":\"svc\",\"exp\":1699990000}", MP_JWT_EXPIRED},
        {"{\"iss\":\"https://rsa.example\",\"aud\":\"svc\",\"nbf\":1700009000}",
         MP_JWT_NOT_YET_VALID},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        tok = tk_token(&rsa, "RS256", "r1", cases[i].payload);
        snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
        headers_with(&h, "/", "authorization", bearer);
        assert_int_equal(eval(c, r, &h, NULL), cases[i].want);
        mp_headers_clear(&h);
        free(tok);
    }
    /* signed by the wrong key, and with an unknown kid */
    tok = tk_token(&ec, "ES256", NULL, good);
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_JWKS_KID_ALG_MISMATCH);
    mp_headers_clear(&h);
    free(tok);
    struct tkey other;
    tk_rsa(&other);
    tok = tk_token(&other, "RS256", "r1", good);
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, r, &h, NULL), MP_JWT_VERIFICATION_FAIL);
    mp_headers_clear(&h);
    free(tok);
    tk_free(&other);

    /* the ec provider: custom header (no prefix) and query parameter */
    tok = tk_token(&ec, "ES256", "e1", "{\"iss\":\"ec-issuer\"}");
    headers_with(&h, "/", "x-ec-token", tok);
    assert_int_equal(eval(c, e, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);
    snprintf(path, sizeof(path), "/p?tok=%s", tok);
    headers_with(&h, path, NULL, NULL);
    assert_int_equal(eval(c, e, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);
    free(tok);
    mp_jwt_authn_config_free(c);
}

static void test_any_all_allow(void **st)
{
    (void)st;
    char *y = cfg_text("requirement_map:\n"
                       "  any: {requires_any: {requirements: [{provider_name: rsa}, "
                       "{provider_name: ec}]}}\n"
                       "  all: {requires_all: {requirements: [{provider_name: rsa}, "
                       "{provider_name: ec}]}}\n"
                       "  istio: {requires_any: {requirements: [{provider_name: rsa}, "
                       "{allow_missing: {}}]}}\n"
                       "  lax: {allow_missing_or_failed: {}}\n"
                       "  aud: {provider_and_audiences: {provider_name: rsa, audiences: [x]}}\n");
    struct mp_jwt_authn_config *c = cfg_ok(y);
    free(y);
    const struct mp_jwt_req *any = mp_jwt_authn_config_find_req(c, "any");
    const struct mp_jwt_req *all = mp_jwt_authn_config_find_req(c, "all");
    const struct mp_jwt_req *istio = mp_jwt_authn_config_find_req(c, "istio");
    const struct mp_jwt_req *lax = mp_jwt_authn_config_find_req(c, "lax");
    const struct mp_jwt_req *aud = mp_jwt_authn_config_find_req(c, "aud");

    char *rt =
        tk_token(&rsa, "RS256", "r1", "{\"iss\":\"https://rsa.example\",\"aud\":[\"svc\",\"x\"]}");
    char *et = tk_token(&ec, "ES256", "e1", "{\"iss\":\"ec-issuer\"}");
    char *expired = tk_token(&rsa, "RS256", "r1",
                             "{\"iss\":\"https://rsa.example\",\"aud\":\"svc\",\"exp\":5}");
    char bearer[4096];
    struct mp_headers h;
    size_t n_ok;

    /* nothing */
    headers_with(&h, "/", NULL, NULL);
    assert_int_equal(eval(c, any, &h, NULL), MP_JWT_MISSED);
    assert_int_equal(eval(c, all, &h, NULL), MP_JWT_MISSED);
    assert_int_equal(eval(c, istio, &h, NULL), MP_JWT_OK);
    assert_int_equal(eval(c, lax, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);

    /* only the ec token */
    headers_with(&h, "/", "x-ec-token", et);
    assert_int_equal(eval(c, any, &h, NULL), MP_JWT_OK);
    assert_int_equal(eval(c, all, &h, NULL), MP_JWT_MISSED);
    /* allow_missing checks the token with its issuer's provider */
    assert_int_equal(eval(c, istio, &h, &n_ok), MP_JWT_OK);
    assert_int_equal(n_ok, 1);
    /* both tokens */
    snprintf(bearer, sizeof(bearer), "Bearer %s", rt);
    mp_headers_add_cstr(&h, "authorization", bearer);
    assert_int_equal(eval(c, all, &h, &n_ok), MP_JWT_OK);
    assert_int_equal(n_ok, 2);
    assert_int_equal(eval(c, aud, &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);

    /* an expired token: any reports it (not "missing"); allow_missing rejects it;
     * allow_missing_or_failed lets it through without output */
    snprintf(bearer, sizeof(bearer), "Bearer %s", expired);
    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, any, &h, NULL), MP_JWT_EXPIRED);
    assert_int_equal(eval(c, istio, &h, NULL), MP_JWT_EXPIRED);
    assert_int_equal(eval(c, lax, &h, &n_ok), MP_JWT_OK);
    assert_int_equal(n_ok, 0);
    /* expiry is checked before audiences, as Envoy does */
    assert_int_equal(eval(c, aud, &h, NULL), MP_JWT_EXPIRED);
    mp_headers_clear(&h);
    /* provider_and_audiences replaces the provider's audiences */
    char *svc_only =
        tk_token(&rsa, "RS256", "r1", "{\"iss\":\"https://rsa.example\",\"aud\":\"svc\"}");
    snprintf(bearer, sizeof(bearer), "Bearer %s", svc_only);
    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, any, &h, NULL), MP_JWT_OK);
    assert_int_equal(eval(c, aud, &h, NULL), MP_JWT_AUDIENCE_NOT_ALLOWED);
    mp_headers_clear(&h);
    free(svc_only);

    free(rt);
    free(et);
    free(expired);
    mp_jwt_authn_config_free(c);
}

static void test_rules(void **st)
{
    (void)st;
    char *y = cfg_text("requirement_map:\n"
                       "  r: {provider_name: rsa}\n"
                       "rules:\n"
                       "- match: {prefix: /health}\n"
                       "- match: {safe_regex: {regex: '/api/v[0-9]+/.*'}}\n"
                       "  requires: {provider_name: ec}\n"
                       "- match: {path: /exact, headers: [{name: x-mode, "
                       "string_match: {exact: strict}}]}\n"
                       "  requirement_name: r\n"
                       "- match: {prefix: /}\n"
                       "  requires: {provider_name: rsa}\n");
    struct mp_jwt_authn_config *c = cfg_ok(y);
    free(y);
    struct mp_route_request rq = {.path = "/health/live", .method = "GET", .authority = "a"};
    rq.path_len = strlen(rq.path);
    assert_null(mp_jwt_authn_config_match(c, &rq));
    rq.path = "/api/v2/x";
    rq.path_len = strlen(rq.path);
    const struct mp_jwt_req *r = mp_jwt_authn_config_match(c, &rq);
    assert_non_null(r);
    assert_string_equal(r->provider->name, "ec");
    rq.path = "/exact";
    rq.path_len = strlen(rq.path);
    struct mp_header_view hv = {"x-mode", 6, "strict", 6};
    rq.headers = &hv;
    rq.n_headers = 1;
    assert_ptr_equal(mp_jwt_authn_config_match(c, &rq), mp_jwt_authn_config_find_req(c, "r"));
    rq.n_headers = 0;
    r = mp_jwt_authn_config_match(c, &rq);
    assert_non_null(r);
    assert_string_equal(r->provider->name, "rsa");
    mp_jwt_authn_config_free(c);
}

static void test_config_errors(void **st)
{
    (void)st;
    struct {
        const char *yaml;
        const char *want; /* substring of the error */
    } cases[] = {
        {"providers:\n  p:\n    remote_jwks: {http_uri: {uri: 'https://x/jwks', cluster: c, "
         "timeout: 1s}}\n",
         "providers[\"p\"].remote_jwks: fetching JWKS over HTTP is not supported"},
        {"providers:\n  p:\n    local_jwks: {inline_string: 'nope'}\n",
         "providers[\"p\"].local_jwks: JWKS is not valid JSON"},
        {"providers:\n  p:\n    local_jwks: {filename: /nonexistent/jwks.json}\n",
         "providers[\"p\"].local_jwks.filename: cannot open"},
        {"providers:\n  p:\n    local_jwks: {inline_string: '{\"keys\":[]}'}\n",
         "Jwks doesn't have any valid public key"},
        {"requirement_map:\n  r: {provider_name: ghost}\n",
         "requirement_map[\"r\"].provider_name: unknown provider \"ghost\""},
        {"rules:\n- match: {prefix: /}\n  requirement_name: ghost\n",
         "rules[0].requirement_name: \"ghost\" is not in requirement_map"},
        {"rules:\n- match: {safe_regex: {regex: '('}}\n", "rules[0].match.safe_regex"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        struct mp_jwt_authn_config *c = NULL;
        char *err = NULL;
        int rc = parse_cfg(cases[i].yaml, &c, &err);
        assert_true(rc < 0);
        assert_null(c);
        assert_non_null(err);
        if (!strstr(err, cases[i].want))
            fprintf(stderr, "case %zu: got \"%s\"\n", i, err);
        assert_non_null(strstr(err, cases[i].want));
        free(err);
    }
}

static void test_jwks_file_and_pem(void **st)
{
    (void)st;
    char path[] = "/tmp/mp_jwks_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *pem = tk_pem(&rsa);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    char y[1024];
    snprintf(y, sizeof(y),
             "providers:\n  p:\n    local_jwks: {filename: %s}\n"
             "requirement_map:\n  r: {provider_name: p}\n",
             path);
    struct mp_jwt_authn_config *c = cfg_ok(y);
    unlink(path);
    free(pem);
    char *tok = tk_token(&rsa, "RS256", NULL, "{\"sub\":\"x\"}");
    char bearer[4096];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    struct mp_headers h;
    headers_with(&h, "/", "authorization", bearer);
    assert_int_equal(eval(c, mp_jwt_authn_config_find_req(c, "r"), &h, NULL), MP_JWT_OK);
    mp_headers_clear(&h);
    free(tok);
    mp_jwt_authn_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_requirement),
        cmocka_unit_test(test_any_all_allow),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_jwks_file_and_pem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
