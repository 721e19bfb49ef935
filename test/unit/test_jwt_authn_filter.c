/*
 * test_jwt_authn_filter.c: the filter's request callback on a minimal stream
 * (no route configuration, no worker): forwarded payload and claim headers,
 * the token header removed (forward: false), and the dynamic metadata later
 * filters read through mp_jwt_authn_metadata(): the payload (with
 * normalize_payload_in_metadata), the JWT header, and failed_status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "envoy/extensions/filters/http/jwt_authn/v3/config.pb-c.h"
#include "filters/http/jwt_authn.h"
#include "filters/http/jwt_authn_config.h"
#include "jwt_test_keys.h"
#include "proxy/http_stream.h"
#include "proxy/json.h"
#include "proxy/pb_yaml.h"
#include "xds/xds_translate_listener.h"

static struct tkey rsa;
static void *g_config;

struct fake {
    struct mp_http_stream s;
    struct mp_hcm_config hcm;
    struct mp_http_filter_config fc;
    struct mp_http_filter_ctx ctx;
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->fc.ops = &mp_http_filter_jwt_authn;
    f->fc.config = g_config;
    f->fc.name = "envoy.filters.http.jwt_authn";
    f->hcm.filters = &f->fc;
    f->hcm.n_filters = 1;
    f->hcm.stat_prefix = "t";
    f->s.hcm = &f->hcm;
    f->s.filters = &f->ctx;
    f->s.n_filters = 1;
    f->ctx.stream = &f->s;
    f->ctx.config = g_config;
    f->ctx.state = tk_xmalloc(mp_http_filter_jwt_authn.state_size);
    memset(f->ctx.state, 0, mp_http_filter_jwt_authn.state_size);
    mp_headers_init(&f->s.req);
}

static void fake_free(struct fake *f)
{
    mp_http_filter_jwt_authn.destroy(&f->ctx);
    free(f->ctx.state);
    mp_headers_clear(&f->s.req);
}

static int run(struct fake *f, const char *payload)
{
    char *tok = tk_token(&rsa, "RS256", NULL, payload);
    char *bearer = tk_xmalloc(strlen(tok) + 8);
    sprintf(bearer, "Bearer %s", tok);
    mp_headers_add_cstr(&f->s.req, ":method", "GET");
    mp_headers_add_cstr(&f->s.req, ":path", "/x");
    mp_headers_add_cstr(&f->s.req, ":authority", "svc");
    mp_headers_add_cstr(&f->s.req, "authorization", bearer);
    free(bearer);
    free(tok);
    return mp_http_filter_jwt_authn.on_request_headers(&f->ctx, &f->s.req, true);
}

static int setup(void **st)
{
    (void)st;
    tk_rsa(&rsa);
    char *jwk = tk_jwk(&rsa, NULL, NULL);
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             "providers:\n"
             "  p:\n"
             "    issuer: iss\n"
             "    subjects: {prefix: 'user-'}\n"
             "    local_jwks: {inline_string: '{\"keys\":[%s]}'}\n"
             "    forward_payload_header: x-jwt-payload\n"
             "    pad_forward_payload_header: true\n"
             "    payload_in_metadata: iss-key\n"
             "    header_in_metadata: hdr\n"
             "    failed_status_in_metadata: fail\n"
             "    normalize_payload_in_metadata: {space_delimited_claims: [scope]}\n"
             "    claim_to_headers:\n"
             "    - {header_name: x-sub, claim_name: sub}\n"
             "    - {header_name: x-role, claim_name: realm.role}\n"
             "    - {header_name: x-n, claim_name: n}\n"
             "rules:\n"
             "- match: {prefix: /}\n"
             "  requires: {allow_missing_or_failed: {}}\n",
             jwk);
    free(jwk);
    ProtobufCMessage *m = NULL;
    char *err = NULL;
    if (mp_pb_from_yaml(
            yaml, strlen(yaml),
            &envoy__extensions__filters__http__jwt_authn__v3__jwt_authentication__descriptor, 0, &m,
            &err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = tk_xmalloc(n);
    protobuf_c_message_pack(m, buf);
    protobuf_c_message_free_unpacked(m, NULL);
    int rc = mp_http_filter_jwt_authn.parse(buf, n, &g_config, &err);
    free(buf);
    if (rc < 0)
        fprintf(stderr, "%s\n", err);
    free(err);
    return rc;
}

static int teardown(void **st)
{
    (void)st;
    mp_http_filter_jwt_authn.config_free(g_config);
    tk_free(&rsa);
    return 0;
}

static void test_outputs_and_metadata(void **st)
{
    (void)st;
    struct fake f;
    fake_init(&f);
    const char *payload = "{\"iss\":\"iss\",\"sub\":\"user-1\",\"scope\":\"read  write\","
                          "\"realm\":{\"role\":\"admin\"},\"n\":42}";
    assert_int_equal(run(&f, payload), MP_FILTER_CONTINUE);
    assert_null(mp_headers_value(&f.s.req, "authorization"));
    assert_string_equal(mp_headers_value(&f.s.req, "x-sub"), "user-1");
    assert_string_equal(mp_headers_value(&f.s.req, "x-role"), "admin");
    assert_string_equal(mp_headers_value(&f.s.req, "x-n"), "42");
    const char *fp = mp_headers_value(&f.s.req, "x-jwt-payload");
    assert_non_null(fp);
    assert_int_equal(strlen(fp) % 4, 0); /* padded */
    uint8_t *raw;
    size_t len;
    assert_int_equal(mp_base64url_decode(fp, strlen(fp), &raw, &len), 0);
    assert_int_equal(len, strlen(payload));
    assert_memory_equal(raw, payload, len);
    free(raw);

    const struct mp_json *md = mp_jwt_authn_metadata(&f.s, "iss-key");
    assert_non_null(md);
    const struct mp_json *scope = mp_json_object_get(md, "scope");
    assert_non_null(scope);
    assert_int_equal(scope->type, MP_JSON_ARRAY);
    assert_int_equal(scope->u.arr.n, 2);
    assert_string_equal(scope->u.arr.items[0]->u.str.s, "read");
    assert_string_equal(scope->u.arr.items[1]->u.str.s, "write");
    const char *path[] = {"realm", "role"};
    const struct mp_json *role = mp_jwt_authn_metadata_path(&f.s, "iss-key", path, 2);
    assert_non_null(role);
    assert_string_equal(role->u.str.s, "admin");
    const struct mp_json *alg = mp_jwt_authn_metadata_path(&f.s, "hdr", (const char *[]){"alg"}, 1);
    assert_non_null(alg);
    assert_string_equal(alg->u.str.s, "RS256");
    assert_null(mp_jwt_authn_metadata(&f.s, "fail"));
    assert_null(mp_jwt_authn_metadata(&f.s, "nope"));
    fake_free(&f);
}

static void test_failed_status_metadata(void **st)
{
    (void)st;
    struct fake f;
    fake_init(&f);
    /* subjects: prefix user- does not match: allow_missing_or_failed lets it through */
    assert_int_equal(run(&f, "{\"iss\":\"iss\",\"sub\":\"root\"}"), MP_FILTER_CONTINUE);
    assert_non_null(mp_headers_value(&f.s.req, "authorization")); /* not verified: kept */
    assert_null(mp_headers_value(&f.s.req, "x-jwt-payload"));
    assert_null(mp_jwt_authn_metadata(&f.s, "iss-key"));
    const struct mp_json *fail = mp_jwt_authn_metadata(&f.s, "fail");
    assert_non_null(fail);
    const struct mp_json *code = mp_json_object_get(fail, "code");
    const struct mp_json *msg = mp_json_object_get(fail, "message");
    assert_non_null(code);
    assert_int_equal(atoi(code->u.str.s), MP_JWT_SUBJECT_NOT_ALLOWED);
    assert_string_equal(msg->u.str.s, "Jwt subject is not allowed");
    fake_free(&f);

    /* a stream without the filter has no metadata */
    struct mp_http_stream bare = {0};
    assert_null(mp_jwt_authn_metadata(&bare, "iss-key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_and_metadata),
        cmocka_unit_test(test_failed_status_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
