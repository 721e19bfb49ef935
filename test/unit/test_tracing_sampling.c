/*
 * Unit tests: HCM tracing translation (proxy/tracing_config.c), Envoy's
 * sampling decision and the stream span hooks (proxy/tracing.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envoy/config/trace/v3/opentelemetry.pb-c.h"
#include "envoy/config/trace/v3/zipkin.pb-c.h"
#include "proxy/http_headers.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/tracing.h"
#include "proxy/tracing_context.h"
#include "xds/xds_translate_listener.h"

/* ZipkinConfig's INIT macro sets its deprecated split_spans_for_request field */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__Tracing
    tracing_pb;

/* A Tracing message with a zipkin provider; the caller frees with free_pb. */
struct pb_holder {
    tracing_pb t;
    Envoy__Config__Trace__V3__Tracing__Http http;
    Google__Protobuf__Any any;
    Envoy__Type__V3__Percent random, overall;
    uint8_t buf[512];
};

static void make_zipkin(struct pb_holder *p, bool shared)
{
    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__tracing__init(
        &p->t);
    envoy__config__trace__v3__tracing__http__init(&p->http);
    google__protobuf__any__init(&p->any);
    Envoy__Config__Trace__V3__ZipkinConfig z = ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__INIT;
    Google__Protobuf__BoolValue b = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    z.collector_cluster = "zipkin";
    z.collector_endpoint = "/api/v2/spans";
    z.collector_endpoint_version =
        ENVOY__CONFIG__TRACE__V3__ZIPKIN_CONFIG__COLLECTOR_ENDPOINT_VERSION__HTTP_JSON;
    b.value = shared;
    z.shared_span_context = &b;
    size_t n = envoy__config__trace__v3__zipkin_config__pack(&z, p->buf);
    p->any.type_url = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";
    p->any.value.data = p->buf;
    p->any.value.len = n;
    p->http.name = "envoy.tracers.zipkin";
    p->http.config_type_case = ENVOY__CONFIG__TRACE__V3__TRACING__HTTP__CONFIG_TYPE_TYPED_CONFIG;
    p->http.typed_config = &p->any;
    p->t.provider = &p->http;
}

static void config_zipkin(void **st)
{
    (void)st;
    struct pb_holder p;
    make_zipkin(&p, true);
    envoy__type__v3__percent__init(&p.random);
    p.random.value = 12.5;
    p.t.random_sampling = &p.random;
    Envoy__Type__Tracing__V3__CustomTag tag = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__INIT;
    Envoy__Type__Tracing__V3__CustomTag__Header hdr =
        ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__HEADER__INIT;
    hdr.name = "X-Tenant";
    hdr.default_value = "none";
    tag.tag = "tenant";
    tag.type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_REQUEST_HEADER;
    tag.request_header = &hdr;
    Envoy__Type__Tracing__V3__CustomTag meta = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__INIT;
    Envoy__Type__Tracing__V3__CustomTag__Metadata md =
        ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__METADATA__INIT;
    meta.tag = "skipped";
    meta.type_case = ENVOY__TYPE__TRACING__V3__CUSTOM_TAG__TYPE_METADATA;
    meta.metadata = &md;
    Envoy__Type__Tracing__V3__CustomTag *tags[] = {&meta, &tag};
    p.t.custom_tags = tags;
    p.t.n_custom_tags = 2;
    struct mp_tracing_config *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, true, &c, &err), 0);
    assert_non_null(c);
    assert_int_equal(c->provider, MP_TRACING_ZIPKIN);
    assert_int_equal(c->random_sampling, 1250);
    assert_int_equal(c->client_sampling, 10000);
    assert_int_equal(c->overall_sampling, 10000);
    assert_int_equal(c->max_path_tag_length, 256);
    assert_string_equal(c->collector_cluster, "zipkin");
    assert_string_equal(c->collector_hostname, "zipkin");
    assert_true(c->shared_span_context);
    assert_true(c->egress);
    assert_int_equal(c->n_custom_tags, 1);
    assert_string_equal(c->custom_tags[0].value, "x-tenant");
    assert_string_equal(c->custom_tags[0].default_value, "none");
    mp_tracing_config_free(c);

    /* out of range percent and unknown provider type name the field */
    p.random.value = 101;
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, false, &c, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "random_sampling"));
    free(err);
    err = NULL;
    p.random.value = 5;
    p.any.type_url = "type.googleapis.com/envoy.config.trace.v3.DatadogConfig";
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, false, &c, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "provider.typed_config"));
    free(err);
    err = NULL;

    /* no provider anywhere: no tracing; the bootstrap's provider is the fallback */
    p.any.type_url = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";
    p.t.provider = NULL;
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, false, &c, &err), 0);
    assert_null(c);
    assert_int_equal(mp_tracing_set_bootstrap_provider(&p.http), 0);
    assert_int_equal(
        mp_tracing_config_from_pb(&p.t, mp_tracing_bootstrap_provider(), false, &c, &err), 0);
    assert_non_null(c);
    assert_string_equal(c->collector_endpoint, "/api/v2/spans");
    mp_tracing_config_free(c);
    assert_int_equal(mp_tracing_set_bootstrap_provider(NULL), 0);
    assert_null(mp_tracing_bootstrap_provider());
}

static void config_otel(void **st)
{
    (void)st;
    struct pb_holder p;
    make_zipkin(&p, true);
    Envoy__Config__Trace__V3__OpenTelemetryConfig o =
        ENVOY__CONFIG__TRACE__V3__OPEN_TELEMETRY_CONFIG__INIT;
    Envoy__Config__Core__V3__GrpcService g = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__INIT;
    Envoy__Config__Core__V3__GrpcService__EnvoyGrpc eg =
        ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__ENVOY_GRPC__INIT;
    eg.cluster_name = "otel-collector";
    g.target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
    g.envoy_grpc = &eg;
    o.grpc_service = &g;
    o.service_name = "reviews";
    p.any.value.len = envoy__config__trace__v3__open_telemetry_config__pack(&o, p.buf);
    p.any.type_url = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig";
    struct mp_tracing_config *c = NULL;
    char *err = NULL;
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, false, &c, &err), 0);
    assert_int_equal(c->provider, MP_TRACING_OTEL);
    assert_string_equal(c->collector_cluster, "otel-collector");
    assert_string_equal(c->service_name, "reviews");
    assert_int_equal(c->timeout_ms, 5000);
    mp_tracing_config_free(c);
    o.grpc_service = NULL;
    p.any.value.len = envoy__config__trace__v3__open_telemetry_config__pack(&o, p.buf);
    assert_int_equal(mp_tracing_config_from_pb(&p.t, NULL, false, &c, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "grpc_service"));
    free(err);
}

static struct mp_tracing_config base_cfg(void)
{
    struct mp_tracing_config c = {.provider = MP_TRACING_ZIPKIN,
                                  .client_sampling = 10000,
                                  .random_sampling = 10000,
                                  .overall_sampling = 10000,
                                  .max_path_tag_length = 256,
                                  .shared_span_context = true};
    return c;
}

static void decide(void **st)
{
    (void)st;
    struct mp_tracing_config c = base_cfg();
    struct mp_headers h;
    mp_headers_init(&h);
    /* no request id: no trace */
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_NO_TRACE);
    /* random 100%: sampled, and the decision is written into the id ('9') */
    mp_headers_add_cstr(&h, "x-request-id", "00000063-1234-4abc-8def-0123456789ab");
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_SAMPLED);
    assert_string_equal(mp_headers_value(&h, "x-request-id"),
                        "00000063-1234-9abc-8def-0123456789ab");
    /* a later hop keeps the decision even at 0% */
    c.random_sampling = 0;
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_SAMPLED);
    /* id 0x63 = 99: 1% samples (99 >= 100? no: 99 < 100) */
    mp_headers_set_cstr(&h, "x-request-id", "00000063-1234-4abc-8def-0123456789ab");
    c.random_sampling = 100;
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_SAMPLED);
    mp_headers_set_cstr(&h, "x-request-id", "00000064-1234-4abc-8def-0123456789ab");
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_NO_TRACE);
    assert_string_equal(mp_headers_value(&h, "x-request-id"),
                        "00000064-1234-4abc-8def-0123456789ab");
    /* force trace wins over random 0% */
    c.random_sampling = 0;
    mp_headers_add_cstr(&h, "x-envoy-force-trace", "true");
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_FORCED);
    assert_int_equal(mp_headers_value(&h, "x-request-id")[14], 'a');
    /* ...but not over overall_sampling */
    mp_headers_set_cstr(&h, "x-request-id", "00000064-1234-4abc-8def-0123456789ab");
    c.overall_sampling = 0;
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_NO_TRACE);
    assert_int_equal(mp_headers_value(&h, "x-request-id")[14], '4');
    /* client trace id with client_sampling 100% */
    c.overall_sampling = 10000;
    mp_headers_remove(&h, "x-envoy-force-trace");
    mp_headers_add_cstr(&h, "x-client-trace-id", "abc");
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_CLIENT);
    assert_int_equal(mp_headers_value(&h, "x-request-id")[14], 'b');
    /* client_sampling 0%: not traced */
    c.client_sampling = 0;
    mp_headers_set_cstr(&h, "x-request-id", "00000064-1234-4abc-8def-0123456789ab");
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_NO_TRACE);
    /* a non-UUID id: sampling by its first 8 hex digits, decision not stored */
    mp_headers_remove(&h, "x-client-trace-id");
    mp_headers_set_cstr(&h, "x-request-id", "00000001abc");
    c.random_sampling = 10000;
    assert_int_equal(mp_tracing_decide(&c, &h), MP_TRACE_SAMPLED);
    assert_string_equal(mp_headers_value(&h, "x-request-id"), "00000001abc");
    mp_headers_clear(&h);
}

/* A stream with just what the tracing hooks read. */
static struct mp_http_stream *stream_new(struct mp_hcm_config *hcm)
{
    struct mp_http_stream *s = calloc(1, sizeof(*s));
    s->hcm = hcm;
    s->protocol = 1;
    mp_headers_init(&s->req);
    mp_headers_add_cstr(&s->req, ":method", "GET");
    mp_headers_add_cstr(&s->req, ":path", "/a");
    mp_headers_add_cstr(&s->req, ":authority", "svc");
    mp_headers_add_cstr(&s->req, "x-request-id", "00000001-1234-4abc-8def-0123456789ab");
    return s;
}

static void stream_free(struct mp_http_stream *s)
{
    mp_tracing_stream_finish(s);
    mp_headers_clear(&s->req);
    free(s);
}

static void span_shared_ingress(void **st)
{
    (void)st;
    struct mp_tracing_config c = base_cfg();
    struct mp_hcm_config hcm = {.tracing = &c};
    struct mp_http_stream *s = stream_new(&hcm);
    mp_headers_add_cstr(&s->req, "x-b3-traceid", "0000000000000007");
    mp_headers_add_cstr(&s->req, "x-b3-spanid", "0000000000000008");
    mp_headers_add_cstr(&s->req, "x-b3-parentspanid", "0000000000000009");
    mp_headers_add_cstr(&s->req, "x-envoy-decorator-operation", "from-downstream");
    mp_tracing_stream_start(s);
    /* ingress: the downstream's decorator wins over this route's */
    assert_string_equal(s->span->name, "from-downstream");
    mp_tracing_stream_set_operation(s, "local-route", true);
    assert_string_equal(s->span->name, "from-downstream");
    assert_non_null(s->span);
    /* shared span context on ingress: the client's span id is the proxy's */
    assert_true(s->span->shared);
    assert_true(s->span->sampled);
    assert_true(s->span->ctx.span_id == 8 && s->span->ctx.parent_id == 9);
    assert_int_equal(s->span->kind, MP_SPAN_SERVER);
    struct mp_headers up;
    mp_headers_init(&up);
    mp_tracing_stream_inject(s, &up);
    assert_null(mp_headers_get(&up, "x-envoy-decorator-operation"));
    assert_string_equal(mp_headers_value(&up, "x-b3-traceid"), "0000000000000007");
    assert_string_equal(mp_headers_value(&up, "x-b3-spanid"), "0000000000000008");
    assert_string_equal(mp_headers_value(&up, "x-b3-parentspanid"), "0000000000000009");
    assert_string_equal(mp_headers_value(&up, "x-b3-sampled"), "1");
    mp_headers_clear(&up);
    stream_free(s);
}

static void span_egress_spawn(void **st)
{
    (void)st;
    struct mp_tracing_config c = base_cfg();
    c.egress = true;
    c.spawn_upstream_span = true;
    c.random_sampling = 0;
    struct mp_hcm_config hcm = {.tracing = &c};
    struct mp_http_stream *s = stream_new(&hcm);
    mp_headers_add_cstr(&s->req, "b3", "0000000000000007-0000000000000008-1");
    mp_headers_add_cstr(&s->req, "x-envoy-decorator-operation", "ignored on egress");
    mp_tracing_stream_start(s);
    assert_string_equal(s->span->name, "svc");
    mp_tracing_stream_set_operation(s, "reviews:9080/*", true);
    assert_string_equal(s->span->name, "reviews:9080/*");
    /* the B3 sampled flag wins over random 0%; egress spans get a new id */
    assert_true(s->span->sampled);
    assert_false(s->span->shared);
    assert_int_equal(s->span->kind, MP_SPAN_CLIENT);
    assert_true(s->span->ctx.parent_id == 8 && s->span->ctx.span_id != 8);
    struct mp_headers up;
    mp_headers_init(&up);
    mp_tracing_stream_inject(s, &up);
    assert_non_null(s->span->child);
    char want[17];
    mp_trace_hex64(s->span->child->ctx.span_id, want);
    assert_string_equal(mp_headers_value(&up, "x-b3-spanid"), want);
    mp_trace_hex64(s->span->ctx.span_id, want);
    assert_string_equal(mp_headers_value(&up, "x-b3-parentspanid"), want);
    assert_string_equal(mp_headers_value(&up, "x-b3-traceid"), "0000000000000007");
    assert_string_equal(mp_headers_value(&up, "x-envoy-decorator-operation"), "reviews:9080/*");
    mp_headers_clear(&up);
    stream_free(s);
}

static void span_new_trace_unsampled(void **st)
{
    (void)st;
    struct mp_tracing_config c = base_cfg();
    c.random_sampling = 0;
    c.trace_id_128bit = true;
    struct mp_hcm_config hcm = {.tracing = &c};
    struct mp_http_stream *s = stream_new(&hcm);
    mp_tracing_stream_start(s);
    assert_false(s->span->sampled);
    assert_false(s->span->ctx.has_parent);
    assert_true(s->span->ctx.trace_id_high != 0);
    struct mp_headers up;
    mp_headers_init(&up);
    mp_tracing_stream_inject(s, &up);
    /* the decision not to sample still travels */
    assert_string_equal(mp_headers_value(&up, "x-b3-sampled"), "0");
    assert_int_equal(strlen(mp_headers_value(&up, "x-b3-traceid")), 32);
    mp_headers_clear(&up);
    stream_free(s);
    /* no tracing config: no span */
    struct mp_hcm_config plain = {0};
    s = stream_new(&plain);
    mp_tracing_stream_start(s);
    assert_null(s->span);
    stream_free(s);
}

static void span_otel_w3c(void **st)
{
    (void)st;
    struct mp_tracing_config c = base_cfg();
    c.provider = MP_TRACING_OTEL;
    struct mp_hcm_config hcm = {.tracing = &c};
    struct mp_http_stream *s = stream_new(&hcm);
    mp_headers_add_cstr(&s->req, "traceparent",
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    mp_tracing_stream_start(s);
    assert_false(s->span->sampled); /* parent-based */
    assert_true(s->span->ctx.parent_id == 0xb7ad6b7169203331ull);
    struct mp_headers up;
    mp_headers_init(&up);
    mp_tracing_stream_inject(s, &up);
    const char *tp = mp_headers_value(&up, "traceparent");
    assert_non_null(tp);
    assert_memory_equal(tp, "00-0af7651916cd43dd8448eb211c80319c-", 36);
    assert_string_equal(tp + 52, "-00");
    assert_null(mp_headers_get(&up, "x-b3-traceid"));
    mp_headers_clear(&up);
    stream_free(s);
}

static void span_tags(void **st)
{
    (void)st;
    struct mp_span sp = {0};
    assert_int_equal(mp_span_set_tag_cstr(&sp, "a", "1"), 0);
    assert_int_equal(mp_span_set_tag_cstr(&sp, "b", "2"), 0);
    assert_int_equal(mp_span_set_tag_cstr(&sp, "a", "3"), 0);
    assert_int_equal(sp.n_tags, 2);
    assert_string_equal(mp_span_tag(&sp, "a"), "3");
    assert_null(mp_span_tag(&sp, "c"));
    for (size_t i = 0; i < sp.n_tags; i++) {
        free(sp.tags[i].key);
        free(sp.tags[i].value);
    }
    free(sp.tags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_zipkin),
        cmocka_unit_test(config_otel),
        cmocka_unit_test(decide),
        cmocka_unit_test(span_shared_ingress),
        cmocka_unit_test(span_egress_spawn),
        cmocka_unit_test(span_new_trace_unsampled),
        cmocka_unit_test(span_otel_w3c),
        cmocka_unit_test(span_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
