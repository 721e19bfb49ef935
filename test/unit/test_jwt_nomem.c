/* Failing-allocator run over jwt_authn: every allocation of a
 * JwtAuthentication translation (providers, JWKS of every key type, rules,
 * requirements) and of a token verification fails in turn; each run must
 * free all it took and fail cleanly, and the run with no failure must
 * verify the tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "filters/http/jwt_authn_config.h"
#include "jwt_test_keys.h"
#include "nomem_alloc.h"
#include "proxy/http_headers.h"
#include "proxy/jwt_jwks.h"
#include "proxy/pb_yaml.h"

#define NOW 1700000000ull

static uint8_t *g_cfg;
static size_t g_cfg_len;
static char *g_bearer, *g_ec_tok;

static bool scenario(void)
{
    struct mp_jwt_authn_config *c = NULL;
    char *err = NULL;
    int rc = mp_jwt_authn_config_parse(g_cfg, g_cfg_len, &c, &err);
    free(err);
    if (rc < 0) {
        assert_null(c);
        return false;
    }
    struct mp_headers h;
    mp_headers_init(&h);
    bool ok = mp_headers_add_cstr(&h, ":path", "/api/x") == 0 &&
              mp_headers_add_cstr(&h, "authorization", g_bearer) == 0 &&
              mp_headers_add_cstr(&h, "x-ec", g_ec_tok) == 0;
    if (ok) {
        struct mp_route_request rq = {
            .path = "/api/x", .path_len = 6, .method = "GET", .method_len = 3};
        const struct mp_jwt_req *r = mp_jwt_authn_config_match(c, &rq);
        assert_non_null(r);
        struct mp_jwt_eval e = {.headers = &h, .now = NOW};
        ok = mp_jwt_req_eval(r, c, &e) == MP_JWT_OK && e.n_ok == 2;
        mp_jwt_eval_clear(&e);
    }
    mp_headers_clear(&h);
    mp_jwt_authn_config_free(c);
    return ok;
}

static void settle(void)
{
    ERR_clear_error();
}

static void test_every_allocation_failure(void **st)
{
    (void)st;
    nomem_check_every_failure(scenario, settle, 20000, 30);
}

static int setup(void **st)
{
    (void)st;
    struct tkey rsa, ec, oct, ed;
    tk_rsa(&rsa);
    tk_ec(&ec, NID_secp384r1);
    tk_oct(&oct);
    tk_ed(&ed);
    char *j[4] = {tk_jwk(&rsa, "r", NULL), tk_jwk(&oct, "o", "HS256"), tk_jwk(&ed, NULL, NULL),
                  tk_jwk(&ec, "e", "ES384")};
    char *yaml = tk_xmalloc(32768);
    snprintf(yaml, 32768,
             "providers:\n"
             "  a: {issuer: ia, audiences: [x, y], local_jwks: {inline_string: "
             "'{\"keys\":[%s,%s,%s]}'},\n"
             "      forward_payload_header: x-p, claim_to_headers: [{header_name: x-s, "
             "claim_name: sub}]}\n"
             "  b: {issuer: ib, from_headers: [{name: x-ec}], local_jwks: {inline_string: "
             "'{\"keys\":[%s]}'}}\n"
             "requirement_map:\n"
             "  both: {requires_all: {requirements: [{provider_name: a}, "
             "{requires_any: {requirements: [{provider_name: b}, {allow_missing: {}}]}}]}}\n"
             "rules:\n"
             "- match: {prefix: /health}\n"
             "- match: {safe_regex: {regex: '/api/.*'}, headers: [{name: x-no, present_match: "
             "false}]}\n"
             "  requirement_name: both\n",
             j[0], j[1], j[2], j[3]);
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    if (mp_pb_from_yaml(
            yaml, strlen(yaml),
            &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor, 0, &m,
            &err) < 0) {
        fprintf(stderr, "yaml: %s\n", err);
        return -1;
    }
    g_cfg_len = protobuf_c_message_get_packed_size(m);
    g_cfg = tk_xmalloc(g_cfg_len);
    protobuf_c_message_pack(m, g_cfg);
    protobuf_c_message_free_unpacked(m, NULL);
    char *t = tk_token(&rsa, "RS256", "r",
                       "{\"iss\":\"ia\",\"aud\":\"y\",\"sub\":\"s\",\"exp\":1700000100}");
    g_bearer = tk_xmalloc(strlen(t) + 8);
    sprintf(g_bearer, "Bearer %s", t);
    free(t);
    g_ec_tok = tk_token(&ec, "ES384", "e", "{\"iss\":\"ib\"}");
    for (int i = 0; i < 4; i++)
        free(j[i]);
    free(yaml);
    tk_free(&rsa);
    tk_free(&ec);
    /* warm BoringSSL's one-time state (error queue, method tables) before counting */
    if (!scenario())
        return -1;
    settle();
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    free(g_cfg);
    free(g_bearer);
    free(g_ec_tok);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
