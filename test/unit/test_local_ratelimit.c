/*
 * Unit tests for the local rate limit filters (filters/http/local_ratelimit.c,
 * filters/network/local_ratelimit.c), the network filter registry and their
 * translation in xds_translate_listener.c, and tcp_proxy weighted_clusters.
 * Listeners are written in YAML and translated as xDS would; HTTP requests run
 * through a real stream and filter chain (local_ratelimit, then the router
 * answering with a direct_response), time comes from a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "filters/http/local_ratelimit.h"
#include "filters/network/local_ratelimit.h"
#include "proxy/buffer.h"
#include "proxy/conn.h"
#include "proxy/http_stream.h"
#include "proxy/mp_common.h"
#include "proxy/network_filter.h"
#include "proxy/pb_yaml.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

#define S 1000000000ull

static _Atomic uint64_t clock_ns;

static uint64_t fake_now(void *arg)
{
    (void)arg;
    return atomic_load(&clock_ns);
}

struct fixture {
    struct mp_worker w;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->w.stats = mp_stats_new(1);
    assert_non_null(fx->w.stats);
    fx->w.loop = ev_loop_new(0);
    assert_non_null(fx->w.loop);
    atomic_store(&clock_ns, 1000 * S);
    mp_http_local_ratelimit_set_clock(fake_now, NULL);
    mp_network_local_ratelimit_set_clock(fake_now, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mp_http_local_ratelimit_set_clock(NULL, NULL);
    mp_network_local_ratelimit_set_clock(NULL, NULL);
    ev_loop_destroy(fx->w.loop);
    mp_stats_free(fx->w.stats);
    free(fx);
    return 0;
}

static uint64_t counter(struct fixture *fx, const char *name)
{
    return mp_counter_value(mp_stats_counter(fx->w.stats, name));
}

static int translate(const char *yaml, struct mp_listener_config **out, char **err)
{
    ProtobufCMessage *msg = NULL;
    char *perr = NULL;
    int rc = mp_pb_from_yaml(yaml, strlen(yaml), &envoy__config__listener__v3__listener__descriptor,
                             0, &msg, &perr);
    if (rc < 0)
        fail_msg("bad test yaml: %s", perr ? perr : "?");
    rc = mp_xds_translate_listener((Envoy__Config__Listener__V3__Listener *)msg, out, err);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

static struct mp_listener_config *must_translate(const char *yaml)
{
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    if (translate(yaml, &l, &err) < 0)
        fail_msg("translate: %s", err ? err : "?");
    return l;
}

/* Translation must fail with a message containing want. */
static void expect_error(const char *yaml, const char *want)
{
    struct mp_listener_config *l = NULL;
    char *err = NULL;
    assert_true(translate(yaml, &l, &err) < 0);
    assert_null(l);
    assert_non_null(err);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    free(err);
}

/* ---- network local_ratelimit ------------------------------------------------------ */

#define L4_HEAD                                                                                    \
    "name: l4\n"                                                                                   \
    "address: {socket_address: {address: 127.0.0.1, port_value: 9000}}\n"                          \
    "filter_chains:\n"

#define NLRL(prefix, extra)                                                                        \
    "  - name: envoy.filters.network.local_ratelimit\n"                                            \
    "    typed_config:\n"                                                                          \
    "      '@type': type.googleapis.com/"                                                          \
    "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit\n"                         \
    "      stat_prefix: " prefix "\n" extra

#define TCP_PROXY                                                                                  \
    "  - name: envoy.filters.network.tcp_proxy\n"                                                  \
    "    typed_config:\n"                                                                          \
    "      '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"  \
    "      stat_prefix: tcp\n"                                                                     \
    "      cluster: backend\n"

static int on_conn(const struct mp_filter_chain *fc, struct mp_worker *w)
{
    struct mp_conn c;
    memset(&c, 0, sizeof(c));
    c.w = w;
    return mp_network_filters_on_new_connection(fc->network_filters, fc->n_network_filters, &c);
}

static void network_limits_new_connections(void **state)
{
    struct fixture *fx = *state;
    struct mp_listener_config *l = must_translate(L4_HEAD "- filters:\n" NLRL(
        "conns", "      token_bucket: {max_tokens: 2, tokens_per_fill: 1, "
                 "fill_interval: 1s}\n") TCP_PROXY);
    assert_int_equal(l->n_chains, 1);
    const struct mp_filter_chain *fc = &l->chains[0];
    assert_int_equal(fc->n_network_filters, 1);
    assert_non_null(fc->tcp_proxy);
    assert_string_equal(fc->network_filters[0].ops->name, "envoy.filters.network.local_ratelimit");
    assert_string_equal(fc->network_filters[0].name, "envoy.filters.network.local_ratelimit");

    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CLOSE);
    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CLOSE);
    /* Envoy's stat name: local_rate_limit.<stat_prefix>.rate_limited */
    assert_int_equal(counter(fx, "local_rate_limit.conns.rate_limited"), 2);
    /* one fill adds one connection */
    atomic_fetch_add(&clock_ns, 1 * S);
    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(fc, &fx->w), MP_NETWORK_FILTER_CLOSE);
    assert_int_equal(counter(fx, "local_rate_limit.conns.rate_limited"), 3);
    mp_listener_config_free(l);
}

static void network_runtime_disabled_and_shared(void **state)
{
    struct fixture *fx = *state;
    /* runtime_enabled false: the filter lets everything through */
    struct mp_listener_config *l = must_translate(L4_HEAD "- filters:\n" NLRL(
        "off", "      token_bucket: {max_tokens: 1, fill_interval: 60s}\n"
               "      runtime_enabled: {default_value: false, "
               "runtime_key: k}\n") TCP_PROXY);
    for (int i = 0; i < 5; i++)
        assert_int_equal(on_conn(&l->chains[0], &fx->w), MP_NETWORK_FILTER_CONTINUE);
    mp_listener_config_free(l);

    /* two chains with one share_key draw on one bucket; without it, each has its own */
    const char *shared = L4_HEAD
        "- filter_chain_match: {destination_port: 1}\n"
        "  filters:\n" NLRL("a", "      share_key: k1\n"
                                 "      token_bucket: {max_tokens: 3, fill_interval: 60s}\n")
            TCP_PROXY "- filter_chain_match: {destination_port: 2}\n"
                      "  filters:\n" NLRL("b", "      share_key: k1\n"
                                               "      token_bucket: {max_tokens: 3, "
                                               "fill_interval: 60s}\n") TCP_PROXY;
    l = must_translate(shared);
    assert_int_equal(l->n_chains, 2);
    assert_int_equal(on_conn(&l->chains[0], &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(&l->chains[1], &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(&l->chains[0], &fx->w), MP_NETWORK_FILTER_CONTINUE);
    assert_int_equal(on_conn(&l->chains[1], &fx->w), MP_NETWORK_FILTER_CLOSE);
    assert_int_equal(on_conn(&l->chains[0], &fx->w), MP_NETWORK_FILTER_CLOSE);
    /* a new translation with the same key and bucket (a config update) keeps the bucket */
    struct mp_listener_config *l2 = must_translate(shared);
    assert_int_equal(on_conn(&l2->chains[0], &fx->w), MP_NETWORK_FILTER_CLOSE);
    mp_listener_config_free(l);
    mp_listener_config_free(l2);
    /* once every user is gone the bucket goes too: a fresh one is full */
    l = must_translate(shared);
    assert_int_equal(on_conn(&l->chains[0], &fx->w), MP_NETWORK_FILTER_CONTINUE);
    mp_listener_config_free(l);
}

static void network_errors(void **state)
{
    (void)state;
    expect_error(L4_HEAD "- filters:\n" NLRL("x", "") TCP_PROXY,
                 "filter_chains[0].filters[0].typed_config.token_bucket: is required");
    expect_error(L4_HEAD "- filters:\n" NLRL("x", "      token_bucket: {max_tokens: 0, "
                                                  "fill_interval: 1s}\n") TCP_PROXY,
                 "filters[0].typed_config.token_bucket.max_tokens: must be greater than 0");
    expect_error(L4_HEAD "- filters:\n" NLRL("x", "      token_bucket: {max_tokens: 1}\n")
                     TCP_PROXY,
                 "token_bucket.fill_interval: is required");
    expect_error(L4_HEAD "- filters:\n" NLRL("x", "      token_bucket: {max_tokens: 1, "
                                                  "tokens_per_fill: 0, fill_interval: 1s}\n")
                     TCP_PROXY,
                 "token_bucket.tokens_per_fill: must be greater than 0");
    expect_error(L4_HEAD "- filters:\n" NLRL("''", "      token_bucket: {max_tokens: 1, "
                                                   "fill_interval: 1s}\n") TCP_PROXY,
                 "stat_prefix: must not be empty");
    /* a rate limit alone is not a chain */
    expect_error(L4_HEAD "- filters:\n" NLRL("x", "      token_bucket: {max_tokens: 1, "
                                                  "fill_interval: 1s}\n"),
                 "a http_connection_manager or tcp_proxy is required");
    /* the terminal filter must still come last */
    expect_error(L4_HEAD "- filters:\n" TCP_PROXY NLRL("x", "      token_bucket: {max_tokens: 1, "
                                                            "fill_interval: 1s}\n"),
                 "must be the last filter");
    /* unknown network filters are still refused */
    expect_error(
        L4_HEAD
        "- filters:\n"
        "  - name: envoy.filters.network.nope\n"
        "    typed_config: {'@type': type.googleapis.com/google.protobuf.Empty}\n" TCP_PROXY,
        "filters[0]: unsupported network filter envoy.filters.network.nope");
}

static void network_registry_lookup(void **state)
{
    (void)state;
    assert_true(mp_network_filter_registry_size() >= 1);
    const struct mp_network_filter_ops *ops = mp_network_filter_find(
        "whatever",
        "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit");
    assert_ptr_equal(ops, &mp_network_filter_local_ratelimit);
    assert_ptr_equal(mp_network_filter_find("envoy.filters.network.local_ratelimit", NULL),
                     &mp_network_filter_local_ratelimit);
    assert_null(mp_network_filter_find("envoy.filters.network.unknown", NULL));
    assert_null(mp_network_filter_registry_at(mp_network_filter_registry_size()));
    /* an empty list continues */
    assert_int_equal(mp_network_filters_on_new_connection(NULL, 0, NULL),
                     MP_NETWORK_FILTER_CONTINUE);
    mp_network_filters_free(NULL, 0);
}

/* ---- tcp_proxy weighted_clusters --------------------------------------------------- */

#define TCP_WEIGHTED(clusters)                                                                     \
    L4_HEAD "- filters:\n"                                                                         \
            "  - name: envoy.filters.network.tcp_proxy\n"                                          \
            "    typed_config:\n"                                                                  \
            "      '@type': type.googleapis.com/"                                                  \
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n"                             \
            "      stat_prefix: canary\n"                                                          \
            "      weighted_clusters: {clusters: " clusters "}\n"

static void tcp_weighted_clusters(void **state)
{
    (void)state;
    struct mp_listener_config *l =
        must_translate(TCP_WEIGHTED("[{name: stable, weight: 90}, {name: canary, weight: 10}]"));
    const struct mp_tcp_proxy_config *t = l->chains[0].tcp_proxy;
    assert_non_null(t);
    assert_null(t->cluster);
    assert_int_equal(t->n_weighted_clusters, 2);
    assert_int_equal(t->total_weight, 100);
    /* every residue of the total maps to exactly one cluster, in proportion */
    int stable = 0, canary = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        const char *c = mp_tcp_proxy_pick_cluster(t, r * 7919u);
        if (strcmp(c, "stable") == 0)
            stable++;
        else if (strcmp(c, "canary") == 0)
            canary++;
        else
            fail_msg("unexpected cluster %s", c);
    }
    assert_int_equal(stable, 900);
    assert_int_equal(canary, 100);
    assert_string_equal(mp_tcp_proxy_pick_cluster(t, 89), "stable");
    assert_string_equal(mp_tcp_proxy_pick_cluster(t, 90), "canary");
    assert_string_equal(mp_tcp_proxy_pick_cluster(t, UINT64_MAX), "stable"); /* % 100 = 15 */
    mp_listener_config_free(l);

    /* a plain cluster is picked every time */
    l = must_translate(L4_HEAD "- filters:\n" TCP_PROXY);
    assert_string_equal(mp_tcp_proxy_pick_cluster(l->chains[0].tcp_proxy, 12345), "backend");
    mp_listener_config_free(l);

    expect_error(TCP_WEIGHTED("[]"), "weighted_clusters.clusters: at least one cluster");
    expect_error(TCP_WEIGHTED("[{name: a, weight: 1}, {name: b, weight: 0}]"),
                 "weighted_clusters.clusters[1].weight: must be at least 1");
    expect_error(TCP_WEIGHTED("[{name: '', weight: 1}]"),
                 "weighted_clusters.clusters[0].name: must not be empty");
}

/* ---- HTTP local_ratelimit ----------------------------------------------------------- */

#define HCM_HEAD                                                                                   \
    "name: l7\n"                                                                                   \
    "address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"                          \
    "filter_chains:\n"                                                                             \
    "- filters:\n"                                                                                 \
    "  - name: envoy.filters.network.http_connection_manager\n"                                    \
    "    typed_config:\n"                                                                          \
    "      '@type': type.googleapis.com/"                                                          \
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"          \
    "      stat_prefix: ingress\n"                                                                 \
    "      stream_idle_timeout: 0s\n"                                                              \
    "      generate_request_id: false\n"

#define LRL_TYPE                                                                                   \
    "'@type': type.googleapis.com/"                                                                \
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

/* Routes: /limited (per-route bucket of 1), /off (filter disabled), / (the listener's). */
#define ROUTES                                                                                     \
    "      route_config:\n"                                                                        \
    "        virtual_hosts:\n"                                                                     \
    "        - name: vh\n"                                                                         \
    "          domains: ['*']\n"                                                                   \
    "          routes:\n"                                                                          \
    "          - match: {prefix: /limited}\n"                                                      \
    "            direct_response: {status: 200}\n"                                                 \
    "            typed_per_filter_config:\n"                                                       \
    "              lrl:\n"                                                                         \
    "                " LRL_TYPE "\n"                                                               \
    "                stat_prefix: per_route\n"                                                     \
    "                token_bucket: {max_tokens: 1, fill_interval: 10s}\n"                          \
    "                filter_enabled: {default_value: {numerator: 100}}\n"                          \
    "                filter_enforced: {default_value: {numerator: 100}}\n"                         \
    "                status: {code: 503}\n"                                                        \
    "          - match: {prefix: /off}\n"                                                          \
    "            direct_response: {status: 200}\n"                                                 \
    "            typed_per_filter_config:\n"                                                       \
    "              lrl:\n"                                                                         \
    "                '@type': type.googleapis.com/envoy.config.route.v3.FilterConfig\n"            \
    "                disabled: true\n"                                                             \
    "          - match: {prefix: /nobucket}\n"                                                     \
    "            direct_response: {status: 200}\n"                                                 \
    "            typed_per_filter_config:\n"                                                       \
    "              lrl:\n"                                                                         \
    "                " LRL_TYPE "\n"                                                               \
    "                stat_prefix: nobucket\n"                                                      \
    "          - match: {prefix: /}\n"                                                             \
    "            direct_response: {status: 200}\n"

#define HTTP_FILTERS(lrl_body)                                                                     \
    "      http_filters:\n"                                                                        \
    "      - name: lrl\n"                                                                          \
    "        typed_config:\n"                                                                      \
    "          " LRL_TYPE "\n" lrl_body "      - name: envoy.filters.http.router\n"                \
    "        typed_config: {'@type': "                                                             \
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"

/* What the codec was asked to send. */
struct capture {
    int status;
    struct mp_headers h;
    char body[128];
    size_t body_len;
    bool ended;
};

static int cap_headers(void *conn, struct mp_http_stream *s, struct mp_headers *h, bool end)
{
    (void)s;
    struct capture *c = conn;
    const char *st = mp_headers_value(h, ":status");
    c->status = st ? atoi(st) : -1;
    mp_headers_clear(&c->h);
    assert_int_equal(mp_headers_copy(&c->h, h), 0);
    c->ended = end;
    return 0;
}

static int cap_data(void *conn, struct mp_http_stream *s, struct mp_buffer *data, bool end)
{
    (void)s;
    struct capture *c = conn;
    size_t n = mp_buffer_len(data);
    if (n > sizeof(c->body) - c->body_len)
        n = sizeof(c->body) - c->body_len;
    c->body_len += mp_buffer_copy_out(data, 0, c->body + c->body_len, n);
    mp_buffer_clear(data);
    c->ended = end;
    return 0;
}

static int cap_trailers(void *conn, struct mp_http_stream *s, struct mp_headers *t)
{
    (void)conn;
    (void)s;
    (void)t;
    return 0;
}

static void cap_reset(void *conn, struct mp_http_stream *s)
{
    (void)s;
    ((struct capture *)conn)->status = -2;
}

static void cap_read_disable(void *conn, struct mp_http_stream *s, bool disable)
{
    (void)conn;
    (void)s;
    (void)disable;
}

static const struct mp_http_codec_ops cap_codec = {
    .encode_headers = cap_headers,
    .encode_data = cap_data,
    .encode_trailers = cap_trailers,
    .reset = cap_reset,
    .read_disable = cap_read_disable,
};

/*
 * Runs one GET for path through the chain. Returns the status sent; *out
 * (optional) gets the response and req_hdr (optional) the value of the
 * request header req_name as the chain left it.
 */
static int request(struct fixture *fx, const struct mp_hcm_config *hcm, const char *path,
                   struct capture *out, const char *req_name, char *req_val, size_t cap)
{
    struct capture local;
    struct capture *c = out ? out : &local;
    memset(c, 0, sizeof(*c));
    mp_headers_init(&c->h);
    struct mp_http_stream *s = mp_http_stream_new(&fx->w, c, &cap_codec, hcm, NULL, 1);
    assert_non_null(s);
    assert_int_equal(mp_headers_add_cstr(&s->req, ":method", "GET"), 0);
    assert_int_equal(mp_headers_add_cstr(&s->req, ":scheme", "http"), 0);
    assert_int_equal(mp_headers_add_cstr(&s->req, ":authority", "example.com"), 0);
    assert_int_equal(mp_headers_add_cstr(&s->req, ":path", path), 0);
    mp_http_stream_decode_headers(s, true);
    if (req_name) {
        const char *v = mp_headers_value(&s->req, req_name);
        snprintf(req_val, cap, "%s", v ? v : "");
    }
    int status = c->status;
    mp_http_stream_free(s);
    if (!out)
        mp_headers_clear(&c->h);
    return status;
}

static const struct mp_hcm_config *hcm_of(const struct mp_listener_config *l)
{
    assert_int_equal(l->n_chains, 1);
    assert_non_null(l->chains[0].hcm);
    return l->chains[0].hcm;
}

static void http_limits_and_refills(void **state)
{
    struct fixture *fx = *state;
    struct mp_listener_config *l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: http_lrl\n"
        "          token_bucket: {max_tokens: 3, tokens_per_fill: 2, "
        "fill_interval: 5s}\n"
        "          filter_enabled: {runtime_key: a, default_value: "
        "{numerator: 100, denominator: HUNDRED}}\n"
        "          filter_enforced: {runtime_key: b, default_value: "
        "{numerator: 1000000, denominator: MILLION}}\n"
        "          response_headers_to_add:\n"
        "          - append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
        "            header: {key: X-Local-Rate-Limit, value: 'yes'}\n"));
    const struct mp_hcm_config *hcm = hcm_of(l);
    assert_int_equal(hcm->n_filters, 2);
    assert_ptr_equal(hcm->filters[0].ops, &mp_http_filter_local_ratelimit);

    for (int i = 0; i < 3; i++)
        assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 200);
    struct capture c;
    assert_int_equal(request(fx, hcm, "/", &c, NULL, NULL, 0), 429);
    assert_string_equal(mp_headers_value(&c.h, "x-envoy-ratelimited"), "true");
    assert_string_equal(mp_headers_value(&c.h, "x-local-rate-limit"), "yes");
    assert_int_equal(c.body_len, strlen("local_rate_limited"));
    assert_memory_equal(c.body, "local_rate_limited", c.body_len);
    assert_true(c.ended);
    mp_headers_clear(&c.h);
    /* the headers are for rate-limited responses only */
    atomic_fetch_add(&clock_ns, 5 * S);
    assert_int_equal(request(fx, hcm, "/", &c, NULL, NULL, 0), 200);
    assert_null(mp_headers_value(&c.h, "x-local-rate-limit"));
    assert_null(mp_headers_value(&c.h, "x-envoy-ratelimited"));
    mp_headers_clear(&c.h);
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 429);

    assert_int_equal(counter(fx, "http_lrl.http_local_rate_limit.enabled"), 7);
    assert_int_equal(counter(fx, "http_lrl.http_local_rate_limit.ok"), 5);
    assert_int_equal(counter(fx, "http_lrl.http_local_rate_limit.rate_limited"), 2);
    assert_int_equal(counter(fx, "http_lrl.http_local_rate_limit.enforced"), 2);
    mp_listener_config_free(l);
}

static void http_per_route_override(void **state)
{
    struct fixture *fx = *state;
    struct mp_listener_config *l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: top\n"
        "          token_bucket: {max_tokens: 2, fill_interval: 60s}\n"
        "          filter_enabled: {default_value: {numerator: 100}}\n"
        "          filter_enforced: {default_value: {numerator: 100}}\n"));
    const struct mp_hcm_config *hcm = hcm_of(l);
    /* /limited has its own bucket of one and its own status */
    assert_int_equal(request(fx, hcm, "/limited", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm, "/limited/x", NULL, NULL, NULL, 0), 503);
    assert_int_equal(request(fx, hcm, "/limited", NULL, NULL, NULL, 0), 503);
    assert_int_equal(counter(fx, "per_route.http_local_rate_limit.rate_limited"), 2);
    /* the listener's bucket was not touched by them */
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 429);
    /* FilterConfig disabled: no limit at all on /off */
    for (int i = 0; i < 5; i++)
        assert_int_equal(request(fx, hcm, "/off", NULL, NULL, NULL, 0), 200);
    assert_int_equal(counter(fx, "top.http_local_rate_limit.enabled"), 3);
    /* a per-route config without token_bucket is invalid (Envoy rejects it): the
     * listener's config applies there */
    assert_int_equal(request(fx, hcm, "/nobucket", NULL, NULL, NULL, 0), 429);
    assert_int_equal(counter(fx, "top.http_local_rate_limit.enabled"), 4);
    /* the per-route bucket refills on its own schedule */
    atomic_fetch_add(&clock_ns, 10 * S);
    assert_int_equal(request(fx, hcm, "/limited", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm, "/", NULL, NULL, NULL, 0), 429);
    mp_listener_config_free(l);
}

static void http_not_enabled_or_not_enforced(void **state)
{
    struct fixture *fx = *state;
    /* no filter_enabled: Envoy treats the filter as 0% enabled */
    struct mp_listener_config *l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: idle\n"
        "          token_bucket: {max_tokens: 1, fill_interval: 60s}\n"));
    for (int i = 0; i < 4; i++)
        assert_int_equal(request(fx, hcm_of(l), "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(counter(fx, "idle.http_local_rate_limit.enabled"), 0);
    mp_listener_config_free(l);

    /* enabled, not enforced: counted, request headers added, passed on */
    l = must_translate(
        HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: shadow\n"
                                     "          token_bucket: {max_tokens: 1, fill_interval: 60s}\n"
                                     "          filter_enabled: {default_value: {numerator: 100}}\n"
                                     "          filter_enforced: {default_value: {numerator: 0}}\n"
                                     "          request_headers_to_add_when_not_enforced:\n"
                                     "          - header: {key: x-would-limit, value: '1'}\n"));
    char v[32];
    assert_int_equal(request(fx, hcm_of(l), "/", NULL, "x-would-limit", v, sizeof(v)), 200);
    assert_string_equal(v, "");
    assert_int_equal(request(fx, hcm_of(l), "/", NULL, "x-would-limit", v, sizeof(v)), 200);
    assert_string_equal(v, "1");
    assert_int_equal(counter(fx, "shadow.http_local_rate_limit.rate_limited"), 1);
    assert_int_equal(counter(fx, "shadow.http_local_rate_limit.enforced"), 0);
    mp_listener_config_free(l);

    /* a status below 400 is sent as 429, as Envoy does */
    l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: low\n"
        "          status: {code: 200}\n"
        "          token_bucket: {max_tokens: 1, fill_interval: 60s}\n"
        "          filter_enabled: {default_value: {numerator: 100}}\n"
        "          filter_enforced: {default_value: {numerator: 100}}\n"));
    assert_int_equal(request(fx, hcm_of(l), "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(request(fx, hcm_of(l), "/", NULL, NULL, NULL, 0), 429);
    mp_listener_config_free(l);

    /* no token_bucket: every request is allowed */
    l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: nobucket\n"
        "          filter_enabled: {default_value: {numerator: 100}}\n"
        "          filter_enforced: {default_value: {numerator: 100}}\n"));
    for (int i = 0; i < 3; i++)
        assert_int_equal(request(fx, hcm_of(l), "/", NULL, NULL, NULL, 0), 200);
    assert_int_equal(counter(fx, "nobucket.http_local_rate_limit.ok"), 3);
    mp_listener_config_free(l);
}

static void http_x_ratelimit_headers(void **state)
{
    struct fixture *fx = *state;
    struct mp_listener_config *l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: xrl\n"
        "          enable_x_ratelimit_headers: DRAFT_VERSION_03\n"
        "          token_bucket: {max_tokens: 2, fill_interval: 10s}\n"
        "          filter_enabled: {default_value: {numerator: 100}}\n"
        "          filter_enforced: {default_value: {numerator: 100}}\n"));
    struct capture c;
    assert_int_equal(request(fx, hcm_of(l), "/", &c, NULL, NULL, 0), 200);
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-limit"), "2");
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-remaining"), "1");
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-reset"), "10");
    mp_headers_clear(&c.h);
    atomic_fetch_add(&clock_ns, 2500000000ull); /* 7.5 s to the next fill: shown as 8 */
    assert_int_equal(request(fx, hcm_of(l), "/", &c, NULL, NULL, 0), 200);
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-remaining"), "0");
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-reset"), "8");
    mp_headers_clear(&c.h);
    assert_int_equal(request(fx, hcm_of(l), "/", &c, NULL, NULL, 0), 429);
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-limit"), "2");
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-remaining"), "0");
    assert_string_equal(mp_headers_value(&c.h, "x-ratelimit-reset"), "8");
    mp_headers_clear(&c.h);
    mp_listener_config_free(l);

    /* off by default */
    l = must_translate(HCM_HEAD ROUTES HTTP_FILTERS(
        "          stat_prefix: noxrl\n"
        "          token_bucket: {max_tokens: 2, fill_interval: 10s}\n"
        "          filter_enabled: {default_value: {numerator: 100}}\n"));
    assert_int_equal(request(fx, hcm_of(l), "/", &c, NULL, NULL, 0), 200);
    assert_null(mp_headers_value(&c.h, "x-ratelimit-limit"));
    mp_headers_clear(&c.h);
    mp_listener_config_free(l);
}

static void http_errors(void **state)
{
    (void)state;
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          token_bucket: {max_tokens: 1, "
                                              "fill_interval: 1s}\n"),
                 "http_filters[0].typed_config.stat_prefix: must not be empty");
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: x\n"
                                              "          token_bucket: {max_tokens: 1}\n"),
                 "token_bucket.fill_interval: is required");
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: x\n"
                                              "          status: {}\n"),
                 "status.code: must be an HTTP status");
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: x\n"
                                              "          descriptors: [{entries: [{key: k, value: "
                                              "v}], token_bucket: {max_tokens: 1, "
                                              "fill_interval: 1s}}]\n"),
                 "descriptors: unsupported");
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: x\n"
                                              "          filter_enabled: {runtime_key: k}\n"),
                 "filter_enabled.default_value: is required");
    expect_error(HCM_HEAD ROUTES HTTP_FILTERS("          stat_prefix: x\n"
                                              "          response_headers_to_add:\n"
                                              "          - header: {key: ':status', value: '1'}\n"),
                 "response_headers_to_add[0].header.key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(network_limits_new_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(network_runtime_disabled_and_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(network_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(network_registry_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(tcp_weighted_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(http_limits_and_refills, setup, teardown),
        cmocka_unit_test_setup_teardown(http_per_route_override, setup, teardown),
        cmocka_unit_test_setup_teardown(http_not_enabled_or_not_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(http_x_ratelimit_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(http_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
