/*
 * test_ext_authz_check.c: CheckRequest building and CheckResponse reading
 * (filters/http/ext_authz_check.c), checked by decoding what is built with
 * the same generated protobuf-c code a server would use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "filters/http/ext_authz_check.h"
#include "proxy/mp_common.h"

typedef Envoy__Service__Auth__V3__CheckRequest CheckRequest;
typedef Envoy__Service__Auth__V3__CheckResponse CheckResponse;

static struct mp_string_match exact(const char *v)
{
    struct mp_string_match m = {.kind = MP_STRING_MATCH_EXACT, .value = v, .value_len = strlen(v)};
    return m;
}

static struct mp_string_match prefix(const char *v)
{
    struct mp_string_match m = {.kind = MP_STRING_MATCH_PREFIX, .value = v, .value_len = strlen(v)};
    return m;
}

static void request_headers(struct mp_headers *h)
{
    mp_headers_init(h);
    assert_int_equal(mp_headers_add_cstr(h, ":method", "POST"), 0);
    assert_int_equal(mp_headers_add_cstr(h, ":path", "/api/v1?x=1"), 0);
    assert_int_equal(mp_headers_add_cstr(h, ":authority", "shop.example:8080"), 0);
    assert_int_equal(mp_headers_add_cstr(h, ":scheme", "http"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "x-request-id", "rid-1"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "content-length", "42"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "cookie", "a=1"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "x-tag", "one"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "x-tag", "two"), 0);
    assert_int_equal(mp_headers_add_cstr(h, "x-secret", "s3"), 0);
}

static const char *map_get(Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http,
                           const char *key)
{
    for (size_t i = 0; i < http->n_headers; i++)
        if (strcmp(http->headers[i]->key, key) == 0)
            return http->headers[i]->value;
    return NULL;
}

static CheckRequest *pack_and_decode(const struct mp_ext_authz_attrs *a)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(mp_ext_authz_check_request_pack(a, &buf, &len), 0);
    CheckRequest *req = envoy__service__auth__v3__check_request__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(req);
    return req;
}

static void test_request_attributes(void **state)
{
    (void)state;
    struct mp_headers h;
    request_headers(&h);
    const char *ext[] = {"tenant", "blue", "zone", "a"};
    struct mp_ext_authz_attrs a = {
        .headers = &h,
        .source = "10.1.2.3:5555",
        .destination = "[::1]:8443",
        .source_principal = "spiffe://cluster.local/ns/default/sa/web",
        .sni = "shop.example",
        .protocol = "HTTP/2",
        .time_us = 1700000000123456,
        .context_extensions = ext,
        .n_context_extensions = 2,
    };
    CheckRequest *req = pack_and_decode(&a);
    Envoy__Service__Auth__V3__AttributeContext *ac = req->attributes;
    assert_non_null(ac);
    assert_string_equal(ac->source->address->socket_address->address, "10.1.2.3");
    assert_int_equal(ac->source->address->socket_address->port_value, 5555);
    assert_string_equal(ac->source->principal, "spiffe://cluster.local/ns/default/sa/web");
    assert_string_equal(ac->destination->address->socket_address->address, "::1");
    assert_int_equal(ac->destination->address->socket_address->port_value, 8443);
    assert_string_equal(ac->tls_session->sni, "shop.example");
    assert_int_equal(ac->request->time->seconds, 1700000000);
    assert_int_equal(ac->request->time->nanos, 123456000);
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http = ac->request->http;
    assert_string_equal(http->method, "POST");
    assert_string_equal(http->path, "/api/v1?x=1");
    assert_string_equal(http->host, "shop.example:8080");
    assert_string_equal(http->scheme, "http");
    assert_string_equal(http->id, "rid-1");
    assert_string_equal(http->protocol, "HTTP/2");
    assert_string_equal(http->query, "");
    assert_int_equal(http->size, 42);
    /* repeated headers joined, pseudo-headers not in the map */
    assert_string_equal(map_get(http, "x-tag"), "one,two");
    assert_string_equal(map_get(http, "cookie"), "a=1");
    assert_null(map_get(http, ":path"));
    assert_int_equal(http->n_headers, 5); /* x-request-id content-length cookie x-tag x-secret */
    assert_int_equal(ac->n_context_extensions, 2);
    assert_string_equal(ac->context_extensions[0]->key, "tenant");
    assert_string_equal(ac->context_extensions[0]->value, "blue");
    assert_string_equal(ac->context_extensions[1]->key, "zone");
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);
    mp_headers_clear(&h);
}

static void test_request_header_filter(void **state)
{
    (void)state;
    struct mp_headers h;
    request_headers(&h);
    struct mp_string_match allowed[] = {prefix("x-"), exact("cookie")};
    struct mp_string_match disallowed[] = {exact("x-secret")};
    struct mp_ext_authz_header_filter f = {
        .allowed = allowed,
        .n_allowed = 2,
        .has_allowed = true,
        .disallowed = disallowed,
        .n_disallowed = 1,
    };
    assert_true(mp_ext_authz_header_allowed(&f, "x-tag", 5));
    assert_false(mp_ext_authz_header_allowed(&f, "x-secret", 8));
    assert_false(mp_ext_authz_header_allowed(&f, "content-length", 14));
    assert_true(mp_ext_authz_header_allowed(NULL, "anything", 8));
    struct mp_ext_authz_attrs a = {.headers = &h, .filter = &f};
    CheckRequest *req = pack_and_decode(&a);
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http = req->attributes->request->http;
    assert_int_equal(http->n_headers, 3); /* x-request-id, cookie, x-tag */
    assert_non_null(map_get(http, "x-request-id"));
    assert_non_null(map_get(http, "cookie"));
    assert_null(map_get(http, "x-secret"));
    assert_null(map_get(http, "content-length"));
    /* no address known: no peer address, size still from content-length */
    assert_null(req->attributes->source->address);
    assert_int_equal(http->size, 42);
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);

    /* an empty allowed list (set, no patterns) sends no headers */
    struct mp_ext_authz_header_filter none = {.has_allowed = true};
    a.filter = &none;
    req = pack_and_decode(&a);
    assert_int_equal(req->attributes->request->http->n_headers, 0);
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);
    mp_headers_clear(&h);
}

static void test_request_body(void **state)
{
    (void)state;
    struct mp_headers h;
    request_headers(&h);
    static const char data[] = {'a', '\0', 'b', 'c'};
    struct mp_ext_authz_attrs a = {
        .headers = &h, .with_body = true, .body = "hello", .body_len = 5, .body_partial = true};
    CheckRequest *req = pack_and_decode(&a);
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http = req->attributes->request->http;
    assert_string_equal(http->body, "hello");
    assert_int_equal(http->raw_body.len, 0);
    assert_string_equal(map_get(http, "x-envoy-auth-partial-body"), "true");
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);

    /* pack_as_bytes: raw bytes, NULs included */
    a.body = data;
    a.body_len = sizeof(data);
    a.body_as_bytes = true;
    a.body_partial = false;
    req = pack_and_decode(&a);
    http = req->attributes->request->http;
    assert_string_equal(http->body, "");
    assert_int_equal(http->raw_body.len, 4);
    assert_memory_equal(http->raw_body.data, data, 4);
    assert_string_equal(map_get(http, "x-envoy-auth-partial-body"), "false");
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);

    /* without with_body: neither body nor the partial header */
    a.with_body = false;
    req = pack_and_decode(&a);
    http = req->attributes->request->http;
    assert_int_equal(http->raw_body.len, 0);
    assert_null(map_get(http, "x-envoy-auth-partial-body"));
    envoy__service__auth__v3__check_request__free_unpacked(req, NULL);
    mp_headers_clear(&h);
}

static uint8_t *pack_response(const CheckResponse *r, size_t *len)
{
    *len = envoy__service__auth__v3__check_response__get_packed_size(r);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    envoy__service__auth__v3__check_response__pack(r, buf);
    return buf;
}

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static void test_response_ok_edits(void **state)
{
    (void)state;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__OkHttpResponse ok = ENVOY__SERVICE__AUTH__V3__OK_HTTP_RESPONSE__INIT;
    Envoy__Config__Core__V3__HeaderValue hv[5];
    Envoy__Config__Core__V3__HeaderValueOption o[5], *op[5];
    Google__Protobuf__BoolValue f = GOOGLE__PROTOBUF__BOOL_VALUE__INIT, t = f;
    t.value = 1;
    const char *kv[5][2] = {{"x-user", "alice"},
                            {"x-tag", "three"},
                            {"x-new", "1"},
                            {"x-tag", "ignored"},
                            {"x-missing", "no"}};
    for (int i = 0; i < 5; i++) {
        Envoy__Config__Core__V3__HeaderValue hi = ENVOY__CONFIG__CORE__V3__HEADER_VALUE__INIT;
        Envoy__Config__Core__V3__HeaderValueOption oi =
            ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__INIT;
        hv[i] = hi;
        hv[i].key = (char *)kv[i][0];
        hv[i].value = (char *)kv[i][1];
        o[i] = oi;
        o[i].header = &hv[i];
        op[i] = &o[i];
    }
    o[0].append = &f; /* set */
    o[1].append = &t; /* append */
    o[2].append_action =
        ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__ADD_IF_ABSENT;
    o[3].append_action =
        ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__ADD_IF_ABSENT;
    o[4].append_action =
        ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS;
    char *remove[] = {"x-drop", ":path"};
    ok.headers = op;
    ok.n_headers = 5;
    ok.headers_to_remove = remove;
    ok.n_headers_to_remove = 2;
    ok.response_headers_to_add = op; /* reuse: 5 response headers */
    ok.n_response_headers_to_add = 1;
    CheckResponse r = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    r.status = &st;
    r.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE;
    r.ok_response = &ok;
    size_t len;
    uint8_t *buf = pack_response(&r, &len);

    struct mp_ext_authz_result res;
    mp_ext_authz_result_init(&res);
    assert_int_equal(mp_ext_authz_check_response_parse(buf, len, &res), 0);
    free(buf);
    assert_int_equal(res.verdict, MP_EXT_AUTHZ_OK);

    struct mp_headers h;
    mp_headers_init(&h);
    mp_headers_add_cstr(&h, ":path", "/p");
    mp_headers_add_cstr(&h, "x-user", "mallory");
    mp_headers_add_cstr(&h, "x-user", "eve");
    mp_headers_add_cstr(&h, "x-tag", "one");
    mp_headers_add_cstr(&h, "x-drop", "gone");
    assert_int_equal(mp_ext_authz_apply_upstream(&res, &h), 0);
    assert_int_equal(mp_headers_count(&h, "x-user"), 1);
    assert_string_equal(mp_headers_value(&h, "x-user"), "alice");
    assert_int_equal(mp_headers_count(&h, "x-tag"), 2); /* appended, add-if-absent skipped */
    assert_string_equal(mp_headers_value(&h, "x-new"), "1");
    assert_null(mp_headers_get(&h, "x-missing")); /* overwrite-if-exists: absent */
    assert_null(mp_headers_get(&h, "x-drop"));
    assert_string_equal(mp_headers_value(&h, ":path"), "/p"); /* pseudo-headers stay */
    assert_int_equal(res.client.n, 1);
    assert_string_equal(mp_headers_value(&res.client, "x-user"), "alice");
    mp_headers_clear(&h);
    mp_ext_authz_result_clear(&res);
}

static void test_response_denied(void **state)
{
    (void)state;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 7;
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    hs.code = ENVOY__TYPE__V3__STATUS_CODE__Unauthorized;
    Envoy__Config__Core__V3__HeaderValue hv = ENVOY__CONFIG__CORE__V3__HEADER_VALUE__INIT;
    hv.key = "www-authenticate";
    hv.value = "Bearer";
    Envoy__Config__Core__V3__HeaderValueOption
        o = ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__INIT,
        *op = &o;
    o.header = &hv;
    Envoy__Service__Auth__V3__DeniedHttpResponse d =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    d.status = &hs;
    d.headers = &op;
    d.n_headers = 1;
    d.body = "go away";
    CheckResponse r = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    r.status = &st;
    r.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    r.denied_response = &d;
    size_t len;
    uint8_t *buf = pack_response(&r, &len);
    struct mp_ext_authz_result res;
    mp_ext_authz_result_init(&res);
    assert_int_equal(mp_ext_authz_check_response_parse(buf, len, &res), 0);
    free(buf);
    assert_int_equal(res.verdict, MP_EXT_AUTHZ_DENIED);
    assert_int_equal(res.grpc_code, 7);
    assert_int_equal(res.http_status, 401);
    assert_string_equal(mp_headers_value(&res.client, "www-authenticate"), "Bearer");
    assert_string_equal(res.body, "go away");
    mp_ext_authz_result_clear(&res);

    /* a bare non-OK status: denied with Envoy's default (the caller's 403) */
    CheckResponse bare = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    bare.status = &st;
    buf = pack_response(&bare, &len);
    assert_int_equal(mp_ext_authz_check_response_parse(buf, len, &res), 0);
    free(buf);
    assert_int_equal(res.verdict, MP_EXT_AUTHZ_DENIED);
    assert_int_equal(res.http_status, 0);
    assert_null(res.body);
    mp_ext_authz_result_clear(&res);

    /* no status at all is OK (code 0) */
    CheckResponse empty = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    buf = pack_response(&empty, &len);
    assert_int_equal(mp_ext_authz_check_response_parse(buf, len, &res), 0);
    free(buf);
    assert_int_equal(res.verdict, MP_EXT_AUTHZ_OK);
    mp_ext_authz_result_clear(&res);
}

static void test_response_garbage(void **state)
{
    (void)state;
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    struct mp_ext_authz_result res;
    mp_ext_authz_result_init(&res);
    assert_int_equal(mp_ext_authz_check_response_parse(junk, sizeof(junk), &res), MP_ERR_PARSE);
    assert_int_equal(res.verdict, MP_EXT_AUTHZ_ERROR);
    mp_ext_authz_result_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_attributes),
        cmocka_unit_test(test_request_header_filter),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_response_ok_edits),
        cmocka_unit_test(test_response_denied),
        cmocka_unit_test(test_response_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
