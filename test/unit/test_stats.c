/* Unit tests for stats.c, stats_tags.c and stats_render.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/stats_render.h"
#include "proxy/stats_tags.h"

/* ---- helpers ------------------------------------------------------------- */

static char *render(struct mp_stats *st, enum mp_stats_format fmt, const char *filter,
                    bool used_only)
{
    struct mp_stats_render_opts o = {.filter = filter, .used_only = used_only};
    char *err = NULL;
    char *s = mp_stats_render_string(st, fmt, &o, NULL, &err);
    assert_null(err);
    assert_non_null(s);
    return s;
}

/* True when `line` is one whole line of text. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
            return true;
    return false;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line <%s> in:\n%s", line, text);
}

/* ---- a checker for the Prometheus text exposition format ------------------ */

struct series {
    char *key; /* name + '{' + labels without le */
    double le;
    double value;
};

static bool is_name_char(char c, bool first, bool colon)
{
    return isalpha((unsigned char)c) || c == '_' || (colon && c == ':') ||
           (!first && isdigit((unsigned char)c));
}

/* Parses `{a="x",b="y"}` at *p; returns false on a syntax error. Copies the
 * label set without `le` into labels_out and le's value into *le. */
static bool parse_labels(const char **pp, char *labels_out, size_t cap, double *le, bool *has_le)
{
    const char *p = *pp;
    size_t o = 0;
    *has_le = false;
    labels_out[0] = 0;
    if (*p != '{')
        return true;
    p++;
    while (*p != '}') {
        const char *ns = p;
        if (!is_name_char(*p, true, false))
            return false;
        while (is_name_char(*p, false, false))
            p++;
        size_t nlen = (size_t)(p - ns);
        if (*p++ != '=' || *p++ != '"')
            return false;
        char val[512];
        size_t vl = 0;
        while (*p != '"') {
            if (!*p || *p == '\n' || vl + 2 >= sizeof(val))
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            }
            val[vl++] = *p++;
        }
        val[vl] = 0;
        p++;
        if (nlen == 2 && memcmp(ns, "le", 2) == 0) {
            *has_le = true;
            *le = strcmp(val, "+Inf") == 0 ? INFINITY : strtod(val, NULL);
        } else {
            o += (size_t)snprintf(labels_out + o, cap - o, "%.*s=%s;", (int)nlen, ns, val);
        }
        if (*p == ',')
            p++;
        else if (*p != '}')
            return false;
    }
    *pp = p + 1;
    return true;
}

/* Checks the rules of the format. Returns true when text follows them,
 * otherwise false with the broken rule and line in why. */
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        ok = false;                                                                                \
        goto done;                                                                                 \
    } while (0)
static bool prom_valid(const char *text, char *why, size_t whylen)
{
    bool ok = true;
    char family[256] = "", type[32] = "";
    char **families = NULL;
    size_t nfam = 0;
    struct series *ser = NULL;
    size_t nser = 0;
    /* For the current histogram series: last le and cumulative count. */
    char hist_key[1300] = "";
    double last_le = -INFINITY, last_cum = 0, inf_count = -1;
    if (*text && text[strlen(text) - 1] != '\n')
        BAD("no final newline");
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        char buf[2048];
        size_t len = nl ? (size_t)(nl - line) : 0;
        if (!nl || len >= sizeof(buf))
            BAD("unterminated or long line");
        memcpy(buf, line, len);
        buf[len] = 0;
        line = nl + 1;
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char name[256], t[32], extra[8];
            if (sscanf(buf + 7, "%255s %31s %7s", name, t, extra) != 2)
                BAD("bad TYPE line <%.200s>", buf);
            if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                strcmp(t, "summary") && strcmp(t, "untyped"))
                BAD("bad type <%.200s>", buf);
            for (size_t i = 0; i < nfam; i++)
                if (strcmp(families[i], name) == 0)
                    BAD("TYPE for %.200s given twice", name);
            families = realloc(families, (nfam + 1) * sizeof(*families));
            families[nfam++] = strdup(name);
            snprintf(family, sizeof(family), "%s", name);
            snprintf(type, sizeof(type), "%s", t);
            continue;
        }
        if (buf[0] == '#')
            continue;
        const char *p = buf;
        if (!is_name_char(*p, true, true))
            BAD("bad metric name in <%.200s>", buf);
        while (is_name_char(*p, false, true))
            p++;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(p - buf), buf);
        char labels[1024];
        double le = 0;
        bool has_le;
        if (!parse_labels(&p, labels, sizeof(labels), &le, &has_le))
            BAD("bad labels in <%.200s>", buf);
        if (*p++ != ' ')
            BAD("no space before value in <%.200s>", buf);
        char *end;
        double v = strtod(p, &end);
        if (end == p || *end)
            BAD("bad value in <%.200s>", buf);
        /* The sample must belong to the family of the last TYPE line. */
        size_t fl = strlen(family);
        const char *suffix = strncmp(name, family, fl) == 0 ? name + fl : NULL;
        if (!suffix)
            BAD("sample <%.200s> outside its family %.200s", buf, family);
        if (strcmp(type, "histogram") == 0) {
            char key[1300];
            snprintf(key, sizeof(key), "%s{%s}", family, labels);
            if (strcmp(suffix, "_bucket") == 0) {
                if (!has_le)
                    BAD("bucket without le <%.200s>", buf);
                if (strcmp(key, hist_key) != 0) {
                    snprintf(hist_key, sizeof(hist_key), "%s", key);
                    last_le = -INFINITY;
                    last_cum = 0;
                    inf_count = -1;
                }
                if (!(le > last_le) || v < last_cum)
                    BAD("buckets not cumulative/ascending at <%.200s>", buf);
                last_le = le;
                last_cum = v;
                if (isinf(le))
                    inf_count = v;
            } else if (strcmp(suffix, "_count") == 0) {
                if (strcmp(key, hist_key) != 0 || inf_count != v)
                    BAD("_count differs from the +Inf bucket at <%.200s>", buf);
            } else if (strcmp(suffix, "_sum") != 0) {
                BAD("bad histogram sample <%.200s>", buf);
            }
            if (strcmp(suffix, "_bucket") != 0 && has_le)
                BAD("le outside a bucket <%.200s>", buf);
        } else if (*suffix) {
            BAD("sample <%.200s> is not family %.200s", buf, family);
        }
        char key[1300];
        snprintf(key, sizeof(key), "%s{%s}", name, labels);
        for (size_t i = 0; i < nser; i++)
            if (strcmp(ser[i].key, key) == 0 && ser[i].le == le)
                BAD("duplicate series <%.200s>", buf);
        ser = realloc(ser, (nser + 1) * sizeof(*ser));
        ser[nser].key = strdup(key);
        ser[nser].le = le;
        ser[nser].value = v;
        nser++;
    }
done:
    for (size_t i = 0; i < nfam; i++)
        free(families[i]);
    free(families);
    for (size_t i = 0; i < nser; i++)
        free(ser[i].key);
    free(ser);
    return ok;
}

static void check_prometheus(const char *text)
{
    char why[2300];
    if (!prom_valid(text, why, sizeof(why)))
        fail_msg("invalid Prometheus text: %s\n%s", why, text);
}

/* ---- registry ------------------------------------------------------------ */

static void register_same_name_same_handle(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(2);
    assert_non_null(st);
    assert_int_equal(mp_stats_slots(st), 4);
    assert_int_equal(mp_stats_main_slot(st), 2);
    assert_int_equal(mp_stats_aux_slot(st), 3);
    struct mp_counter *c = mp_stats_counter(st, "cluster.foo.upstream_rq_total");
    assert_non_null(c);
    mp_counter_inc(c, 0, 3);
    /* A "config swap": the same name again gives the same handle and count. */
    assert_ptr_equal(mp_stats_counter(st, "cluster.foo.upstream_rq_total"), c);
    assert_ptr_equal(mp_stats_counterf(st, "cluster.%s.upstream_rq_total", "foo"), c);
    assert_int_equal(mp_counter_value(c), 3);
    /* Another kind under the same name is refused. */
    assert_null(mp_stats_gauge(st, "cluster.foo.upstream_rq_total"));
    assert_null(mp_stats_histogram(st, "cluster.foo.upstream_rq_total", MP_HIST_MS_FROM_US));
    assert_null(mp_stats_counter(st, ""));
    assert_null(mp_stats_counter(st, NULL));
    struct mp_histogram *h =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_MS_FROM_US);
    assert_non_null(h);
    assert_null(mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_PLAIN));
    assert_ptr_equal(
        mp_stats_histogramf(st, MP_HIST_MS_FROM_US, "cluster.%s.upstream_rq_time", "foo"), h);
    /* ':' becomes '_' as in Envoy. */
    struct mp_gauge *g = mp_stats_gauge(st, "listener.0.0.0.0:8080.downstream_cx_active");
    assert_ptr_equal(mp_stats_gaugef(st, "listener.%s_%d.downstream_cx_active", "0.0.0.0", 8080),
                     g);
    /* Many stats: the table and the arenas grow, old handles stay put. */
    for (int i = 0; i < 3000; i++)
        assert_non_null(mp_stats_counterf(st, "cluster.c%d.upstream_rq_total", i));
    assert_ptr_equal(mp_stats_counter(st, "cluster.foo.upstream_rq_total"), c);
    assert_int_equal(mp_counter_value(c), 3);
    assert_null(mp_stats_new(0));
    mp_stats_free(st);
    mp_stats_free(NULL);
    mp_counter_inc(NULL, 0, 1); /* no-ops */
    mp_histogram_record(NULL, 0, 1);
}

struct worker_arg {
    struct mp_counter *c;
    struct mp_gauge *g;
    struct mp_histogram *h;
    unsigned slot;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < 100000; i++) {
        mp_counter_inc(a->c, a->slot, 1);
        mp_gauge_add(a->g, a->slot, 1);
        if (i % 2)
            mp_gauge_sub(a->g, a->slot, 1);
        mp_histogram_record(a->h, a->slot, (uint64_t)(a->slot + 1) * 1000);
    }
    return NULL;
}

static void per_worker_increments_merge(void **state)
{
    (void)state;
    enum { W = 4 };
    struct mp_stats *st = mp_stats_new(W);
    struct worker_arg args[W];
    pthread_t t[W];
    struct mp_counter *c = mp_stats_counter(st, "http.ingress.downstream_rq_total");
    struct mp_gauge *g = mp_stats_gauge(st, "http.ingress.downstream_rq_active");
    struct mp_histogram *h =
        mp_stats_histogram(st, "http.ingress.downstream_rq_time", MP_HIST_MS_FROM_US);
    for (unsigned i = 0; i < W; i++) {
        args[i] = (struct worker_arg){c, g, h, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    /* Reading while workers write is allowed (relaxed loads, no lock). */
    uint64_t mid = mp_counter_value(c);
    assert_true(mid <= W * 100000);
    for (unsigned i = 0; i < W; i++)
        pthread_join(t[i], NULL);
    mp_counter_inc(c, mp_stats_main_slot(st), 7);
    assert_int_equal(mp_counter_value(c), W * 100000 + 7);
    assert_int_equal(mp_gauge_value(g), W * 50000);
    assert_int_equal(mp_histogram_count(h), W * 100000);
    assert_int_equal(mp_histogram_sum(h), 100000ull * 1000 * (1 + 2 + 3 + 4));
    double q[] = {0, 1};
    double out[2];
    assert_int_equal(mp_histogram_quantiles(h, q, 2, out), 0);
    assert_true(fabs(out[0] - 1.0) < 1e-9); /* 1000 us = 1 ms, exact min */
    assert_true(fabs(out[1] - 4.0) < 1e-9);
    mp_stats_free(st);
}

static void gauges(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(2);
    struct mp_gauge *g = mp_stats_gauge(st, "cluster.foo.upstream_cx_active");
    assert_int_equal(mp_gauge_value(g), 0);
    mp_gauge_add(g, 0, 5);
    mp_gauge_add(g, 1, 2);
    mp_gauge_sub(g, 1, 4); /* a slot may go below zero; the sum is what counts */
    assert_int_equal(mp_gauge_value(g), 3);
    mp_gauge_set(g, mp_stats_main_slot(st), 10);
    assert_int_equal(mp_gauge_value(g), 13);
    mp_gauge_set(g, mp_stats_main_slot(st), -20);
    assert_int_equal(mp_gauge_value(g), -17);
    mp_gauge_add(NULL, 0, 1);
    assert_int_equal(mp_gauge_value(NULL), 0);
    char *text = render(st, MP_STATS_FORMAT_TEXT, "upstream_cx", false);
    expect_line(text, "cluster.foo.upstream_cx_active: -17");
    free(text);
    mp_stats_free(st);
}

static void histogram_percentiles(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(3);
    struct mp_histogram *h =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_MS_FROM_US);
    double q[] = {0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1};
    double out[10];
    assert_int_equal(mp_histogram_quantiles(h, q, 10, out), MP_ERR_NOTFOUND);
    /* 1..1000 ms, spread over the workers. */
    for (unsigned v = 1; v <= 1000; v++)
        mp_histogram_record(h, v % 3, (uint64_t)v * 1000);
    assert_int_equal(mp_histogram_count(h), 1000);
    assert_int_equal(mp_histogram_quantiles(h, q, 10, out), 0);
    assert_true(out[0] == 1.0);
    assert_true(out[9] == 1000.0);
    /* Log-linear buckets are at most 1/16 of their value wide. */
    for (int i = 1; i < 9; i++) {
        double want = q[i] * 1000;
        if (fabs(out[i] - want) > want / 16)
            fail_msg("q%g: got %g want %g", q[i], out[i], want);
        assert_true(out[i] >= out[i - 1]);
    }

    /* Small plain values are exact. */
    struct mp_histogram *p =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_headers_size", MP_HIST_PLAIN);
    for (int i = 0; i < 4; i++)
        mp_histogram_record(p, 0, 7);
    double med;
    double half = 0.5;
    assert_int_equal(mp_histogram_quantiles(p, &half, 1, &med), 0);
    assert_true(med == 7.0);
    /* Huge values land in the last bucket and stay ordered. */
    mp_histogram_record(p, 1, UINT64_MAX);
    double top, one = 1;
    assert_int_equal(mp_histogram_quantiles(p, &one, 1, &top), 0);
    assert_true(top >= ldexp(1, 36));
    mp_stats_free(st);
}

/* ---- tags ------------------------------------------------------------- */

static void check_tags(struct mp_stats_tagger *t, const char *name, const char *extracted,
                       const char *want_tags)
{
    struct mp_stat_tags tags;
    assert_int_equal(mp_stats_tagger_extract(t, name, &tags), 0);
    char got[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < tags.n_tags; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s", i ? "," : "", tags.tags[i].name,
                              tags.tags[i].value);
    if (strcmp(tags.extracted_name, extracted) != 0 || strcmp(got, want_tags) != 0)
        fail_msg("%s: got %s [%s], want %s [%s]", name, tags.extracted_name, got, extracted,
                 want_tags);
    mp_stat_tags_clear(&tags);
}

static void tag_extraction(void **state)
{
    (void)state;
    struct mp_stats_tagger *t = mp_stats_tagger_new(true);
    assert_non_null(t);
    check_tags(t, "cluster.foo.upstream_rq_total", "cluster.upstream_rq_total",
               "envoy.cluster_name=foo");
    check_tags(t, "cluster.foo.upstream_rq_503", "cluster.upstream_rq",
               "envoy.response_code=503,envoy.cluster_name=foo");
    check_tags(t, "cluster.foo.upstream_rq_5xx", "cluster.upstream_rq_xx",
               "envoy.response_code_class=5,envoy.cluster_name=foo");
    check_tags(t, "http.ingress.downstream_rq_2xx", "http.downstream_rq_xx",
               "envoy.response_code_class=2,envoy.http_conn_manager_prefix=ingress");
    check_tags(t, "http.ingress_http.downstream_cx_active", "http.downstream_cx_active",
               "envoy.http_conn_manager_prefix=ingress_http");
    check_tags(t, "listener.0.0.0.0_8080.downstream_cx_total", "listener.downstream_cx_total",
               "envoy.listener_address=0.0.0.0_8080");
    check_tags(t, "listener.[__1]_15001.downstream_cx_active", "listener.downstream_cx_active",
               "envoy.listener_address=[__1]_15001");
    check_tags(t, "listener.0.0.0.0_8080.http.ingress.downstream_rq_2xx",
               "listener.http.downstream_rq_xx",
               "envoy.response_code_class=2,envoy.http_conn_manager_prefix=ingress,"
               "envoy.listener_address=0.0.0.0_8080");
    /* Named listeners (admin) are not addresses: no tag, as in Envoy. */
    check_tags(t, "listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", "");
    check_tags(t, "tcp.inbound.downstream_cx_total", "tcp.downstream_cx_total",
               "envoy.tcp_prefix=inbound");
    check_tags(t, "vhost.web.vcluster.api.upstream_rq_200", "vhost.vcluster.upstream_rq",
               "envoy.response_code=200,envoy.virtual_cluster_name=api,envoy.virtual_host=web");
    check_tags(t, "cluster.foo.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256", "cluster.ssl.ciphers",
               "envoy.ssl_cipher_suite=ECDHE-RSA-AES128-GCM-SHA256,envoy.cluster_name=foo");
    check_tags(t, "server.live", "server.live", "");
    check_tags(t, "meshproxy.bytes_copied", "meshproxy.bytes_copied", "");

    /* Istio's bootstrap: its own cluster_name regex (names with dots), and
     * use_all_default_tags false; otherwise Envoy's default extractor would
     * add envoy.cluster_name from the first token as well. */
    char *err = NULL;
    struct mp_stats_tagger *istio = mp_stats_tagger_new(false);
    assert_int_equal(
        mp_stats_tagger_add_regex(istio, "cluster_name",
                                  "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)", &err),
        0);
    check_tags(istio, "cluster.outbound|80||web.default.svc.cluster.local.upstream_rq_total",
               "cluster.upstream_rq_total",
               "cluster_name=outbound|80||web.default.svc.cluster.local");
    check_tags(istio, "cluster.xds-grpc.upstream_rq_total", "cluster.upstream_rq_total",
               "cluster_name=xds-grpc");
    mp_stats_tagger_use_defaults(istio, true);
    check_tags(istio, "cluster.outbound|80||web.default.svc.cluster.local.upstream_rq_total",
               "cluster.upstream_rq_total",
               "cluster_name=outbound|80||web.default.svc.cluster.local,"
               "envoy.cluster_name=outbound|80||web");
    mp_stats_tagger_free(istio);
    /* A custom tag with a default's name replaces the default. */
    assert_int_equal(mp_stats_tagger_add_regex(t, "envoy.tcp_prefix", "^tcp\\.((.*)\\.)", &err), 0);
    check_tags(t, "tcp.a.b.downstream_cx_total", "tcp.downstream_cx_total", "envoy.tcp_prefix=a.b");
    assert_int_equal(mp_stats_tagger_add_regex(t, "x", "([", &err), MP_ERR_INVAL);
    assert_non_null(err);
    assert_non_null(strstr(err, "stats tag \"x\""));
    free(err);
    err = NULL;
    assert_int_equal(mp_stats_tagger_add_regex(t, "x", "abc", &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "no capture group"));
    free(err);
    assert_int_equal(mp_stats_tagger_add_fixed(t, "mesh", "m1"), 0);
    check_tags(t, "server.live", "server.live", "mesh=m1");
    mp_stats_tagger_use_defaults(t, false);
    check_tags(t, "cluster.foo.upstream_rq_2xx", "cluster.foo.upstream_rq_2xx", "mesh=m1");
    mp_stats_tagger_free(t);

    char buf[64];
    assert_int_equal(mp_stats_prom_sanitize(buf, sizeof(buf), "envoy_", "cluster.upstream-rq"), 25);
    assert_string_equal(buf, "envoy_cluster_upstream_rq");
    mp_stats_prom_sanitize(buf, sizeof(buf), "", "9lives");
    assert_string_equal(buf, "_lives");
    mp_stats_prom_sanitize(buf, 4, "", "abcdef");
    assert_string_equal(buf, "abc");
}

/* ---- rendering ------------------------------------------------------------ */

static struct mp_stats *sample_registry(void)
{
    struct mp_stats *st = mp_stats_new(2);
    mp_counter_inc(mp_stats_counter(st, "cluster.foo.upstream_rq_total"), 0, 3);
    mp_counter_inc(mp_stats_counter(st, "cluster.bar.upstream_rq_total"), 1, 5);
    mp_counter_inc(mp_stats_counter(st, "http.ingress.downstream_rq_2xx"), 0, 7);
    mp_counter_inc(mp_stats_counter(st, "http.ingress.downstream_rq_5xx"), 1, 1);
    mp_counter_inc(mp_stats_counter(st, "listener.0.0.0.0_8080.downstream_cx_total"), 0, 11);
    mp_stats_counter(st, "cluster.foo.upstream_rq_timeout"); /* never used */
    mp_gauge_add(mp_stats_gauge(st, "listener.0.0.0.0_8080.downstream_cx_active"), 1, 2);
    mp_gauge_set(mp_stats_gauge(st, "server.live"), mp_stats_main_slot(st), 1);
    struct mp_histogram *h =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_MS_FROM_US);
    mp_histogram_record(h, 0, 300);  /* 0.3 ms */
    mp_histogram_record(h, 1, 4000); /* 4 ms */
    mp_histogram_record(h, 0, 4000);
    mp_histogram_record(h, 1, 7000000); /* 7 s */
    mp_stats_histogram(st, "cluster.bar.upstream_rq_time", MP_HIST_MS_FROM_US);
    /* A label value that needs escaping. */
    mp_counter_inc(mp_stats_counter(st, "tcp.we\"ird\\x.downstream_cx_total"), 0, 1);
    return st;
}

static void prometheus_output(void **state)
{
    (void)state;
    struct mp_stats *st = sample_registry();
    char *text = render(st, MP_STATS_FORMAT_PROMETHEUS, NULL, false);
    check_prometheus(text);
    expect_line(text, "# TYPE envoy_cluster_upstream_rq_total counter");
    expect_line(text, "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"bar\"} 5");
    expect_line(text, "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"foo\"} 3");
    expect_line(text, "# TYPE envoy_http_downstream_rq_xx counter");
    expect_line(text, "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\","
                      "envoy_http_conn_manager_prefix=\"ingress\"} 7");
    expect_line(text, "envoy_http_downstream_rq_xx{envoy_response_code_class=\"5\","
                      "envoy_http_conn_manager_prefix=\"ingress\"} 1");
    expect_line(text,
                "envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_8080\"} 11");
    expect_line(text, "# TYPE envoy_listener_downstream_cx_active gauge");
    expect_line(text,
                "envoy_listener_downstream_cx_active{envoy_listener_address=\"0.0.0.0_8080\"} 2");
    expect_line(text, "# TYPE envoy_server_live gauge");
    expect_line(text, "envoy_server_live 1");
    expect_line(text, "# TYPE envoy_meshproxy_bytes_copied counter");
    expect_line(text, "envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"we\\\"ird\\\\x\"} 1");
    expect_line(text, "# TYPE envoy_cluster_upstream_rq_time histogram");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"0.5\"} 1");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"1\"} 1");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"5\"} 3");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"5000\"} 3");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"10000\"} 4");
    expect_line(
        text, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"3600000\"} 4");
    expect_line(text,
                "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"foo\",le=\"+Inf\"} 4");
    expect_line(text, "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"foo\"} 7008.3");
    expect_line(text, "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"foo\"} 4");
    expect_line(text, "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"bar\"} 0");
    /* One TYPE line per family even with two clusters in it. */
    const char *first = strstr(text, "# TYPE envoy_cluster_upstream_rq_total counter");
    assert_null(strstr(first + 1, "# TYPE envoy_cluster_upstream_rq_total counter"));
    free(text);

    /* The checker itself rejects broken input. */
    mp_stats_free(st);
}

static void prometheus_checker_rejects(void **state)
{
    (void)state;
    char why[2300];
    check_prometheus("# TYPE a counter\na 1\na{x=\"1\"} 2\n"
                     "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                     "h_sum 3\nh_count 2\n");
    check_prometheus("");
    static const char *const bad[] = {
        "# TYPE a counter\na 1",                                   /* no final newline */
        "# TYPE a counter\na 1\n# TYPE a counter\na{x=\"1\"} 1\n", /* TYPE twice */
        "# TYPE a counter\nb 1\n",                                 /* outside its family */
        "# TYPE a counter\na{x=\"1} 1\n",                          /* unterminated label */
        "# TYPE a counter\na{1x=\"1\"} 1\n",                       /* bad label name */
        "# TYPE a counter\na{x=\"\\q\"} 1\n",                      /* bad escape */
        "# TYPE a counter\na one\n",                               /* bad value */
        "# TYPE a counter\na 1\na 2\n",                            /* duplicate series */
        "# TYPE a.b counter\na.b 1\n",                             /* bad name */
        "# TYPE a counter\n# TYPE b counter\na 1\n",               /* family not contiguous */
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n",    /* unsorted */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n", /* not cumulative */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",            /* count != +Inf */
        "# TYPE a gauge\na_total 1\n", /* suffix on a gauge */
        "# TYPE a flavour\na 1\n",     /* unknown type */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (prom_valid(bad[i], why, sizeof(why)))
            fail_msg("checker accepted case %zu:\n%s", i, bad[i]);
}

static void text_and_json_output(void **state)
{
    (void)state;
    struct mp_stats *st = sample_registry();
    char *text = render(st, MP_STATS_FORMAT_TEXT, NULL, false);
    expect_line(text, "cluster.foo.upstream_rq_total: 3");
    expect_line(text, "cluster.foo.upstream_rq_timeout: 0");
    expect_line(text, "listener.0.0.0.0_8080.downstream_cx_active: 2");
    expect_line(text, "cluster.bar.upstream_rq_time: No recorded values");
    assert_non_null(strstr(text, "cluster.foo.upstream_rq_time: P0(nan,0.3) P25(nan,"));
    assert_non_null(strstr(text, " P100(nan,7000)\n"));
    /* Sorted: counters and gauges by name, then histograms. */
    const char *a = strstr(text, "cluster.bar.upstream_rq_total");
    const char *b = strstr(text, "cluster.foo.upstream_rq_total");
    const char *c = strstr(text, "server.live");
    const char *d = strstr(text, "cluster.bar.upstream_rq_time:");
    assert_true(a && b && c && d && a < b && b < c && c < d);
    free(text);

    /* After a flush, the interval shows what came in since the previous one. */
    assert_int_equal(mp_stats_flush(st), 0);
    struct mp_histogram *h =
        mp_stats_histogram(st, "cluster.foo.upstream_rq_time", MP_HIST_MS_FROM_US);
    assert_int_equal(mp_stats_flush(st), 0);
    mp_histogram_record(h, 0, 2000);
    assert_int_equal(mp_stats_flush(st), 0);
    text = render(st, MP_STATS_FORMAT_TEXT, "upstream_rq_time", false);
    /* Intervals have no exact min/max: P0 is the lower bound of 2 ms's
     * bucket (1984 us, buckets are 1/16 of their value wide). */
    assert_non_null(strstr(text, "cluster.foo.upstream_rq_time: P0(1.984,0.3) P25(2,"));
    expect_line(text, "cluster.bar.upstream_rq_time: No recorded values");
    assert_null(strstr(text, "upstream_rq_total"));
    expect_line(text, "cluster.foo.upstream_rq_timeout: 0"); /* the regex matches it too */
    free(text);

    text = render(st, MP_STATS_FORMAT_JSON, "^cluster\\.foo\\.", false);
    assert_non_null(
        strstr(text, "{\"stats\":[{\"name\":\"cluster.foo.upstream_rq_timeout\",\"value\":0}"));
    assert_non_null(strstr(text, "{\"name\":\"cluster.foo.upstream_rq_total\",\"value\":3}"));
    assert_non_null(strstr(text, "\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,100]"));
    assert_non_null(strstr(text, "{\"name\":\"cluster.foo.upstream_rq_time\",\"values\":[{"
                                 "\"interval\":1.984,\"cumulative\":0.3}"));
    assert_null(strstr(text, "cluster.bar"));
    free(text);

    text = render(st, MP_STATS_FORMAT_TEXT, NULL, true);
    assert_null(strstr(text, "upstream_rq_timeout"));
    assert_null(strstr(text, "cluster.bar.upstream_rq_time"));
    expect_line(text, "cluster.foo.upstream_rq_total: 3");
    free(text);

    struct mp_stats_render_opts bad = {.filter = "(unclosed"};
    char *err = NULL;
    struct mp_buffer out = MP_BUFFER_INIT;
    assert_int_equal(mp_stats_render(st, MP_STATS_FORMAT_TEXT, &bad, &out, &err), MP_ERR_INVAL);
    assert_non_null(err);
    assert_non_null(strstr(err, "filter"));
    free(err);
    assert_int_equal(mp_buffer_len(&out), 0);

    /* Into a buffer: one external slice, no bytes copied. */
    uint64_t copied = mp_buffer_thread_bytes_copied();
    assert_int_equal(mp_stats_render(st, MP_STATS_FORMAT_PROMETHEUS, NULL, &out, NULL), 0);
    assert_int_equal(mp_buffer_thread_bytes_copied(), copied);
    assert_int_equal(mp_buffer_view_count(&out), 1);
    assert_true(mp_buffer_len(&out) > 100);
    mp_buffer_clear(&out);
    mp_stats_free(st);
}

static void admin_paths(void **state)
{
    (void)state;
    struct mp_stats *st = sample_registry();
    struct mp_buffer out = MP_BUFFER_INIT;
    const char *ct = NULL;
    char *err = NULL;
    assert_int_equal(mp_stats_admin_handle(st,
                                           "/stats?filter=cluster%5C.foo%5C.upstream_rq_t&usedonly",
                                           &out, &ct, &err),
                     0);
    assert_string_equal(ct, "text/plain; charset=utf-8");
    size_t n = mp_buffer_len(&out);
    char *s = calloc(1, n + 1);
    mp_buffer_copy_out(&out, 0, s, n);
    /* The filter was percent-decoded: only the two cluster.foo.upstream_rq_t* stats in use. */
    assert_non_null(
        strstr(s, "cluster.foo.upstream_rq_total: 3\ncluster.foo.upstream_rq_time: P0(nan,0.3) "));
    assert_non_null(strstr(s, " P100(nan,7000)\n"));
    assert_int_equal(strchr(strchr(s, '\n') + 1, '\n')[1], 0); /* two lines */
    free(s);
    mp_buffer_clear(&out);

    assert_int_equal(mp_stats_admin_handle(st, "/stats/prometheus", &out, &ct, &err), 0);
    assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
    mp_buffer_clear(&out);
    assert_int_equal(
        mp_stats_admin_handle(st, "/stats?format=prometheus&usedonly", &out, &ct, &err), 0);
    n = mp_buffer_len(&out);
    s = calloc(1, n + 1);
    mp_buffer_copy_out(&out, 0, s, n);
    check_prometheus(s);
    assert_null(strstr(s, "upstream_rq_timeout"));
    free(s);
    mp_buffer_clear(&out);
    assert_int_equal(mp_stats_admin_handle(st, "/stats?format=json", &out, &ct, &err), 0);
    assert_string_equal(ct, "application/json");
    mp_buffer_clear(&out);
    assert_int_equal(mp_stats_admin_handle(st, "/stats?format=xml", &out, &ct, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "format"));
    free(err);
    err = NULL;
    assert_int_equal(mp_stats_admin_handle(st, "/stats?filter=%28", &out, &ct, &err), MP_ERR_INVAL);
    free(err);
    err = NULL;
    assert_int_equal(mp_stats_admin_handle(st, "/statsx", &out, &ct, &err), MP_ERR_NOTFOUND);
    assert_int_equal(mp_stats_admin_handle(st, "/clusters", &out, &ct, &err), MP_ERR_NOTFOUND);
    assert_int_equal(mp_buffer_len(&out), 0);
    mp_stats_free(st);
}

static uint64_t forty_two(void *arg)
{
    return *(uint64_t *)arg;
}

static void computed_stats_and_custom_tags(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(1);
    uint64_t before = mp_buffer_bytes_copied();
    mp_buffer_count_copied(1234);
    mp_buffer_count_proxied(99);
    char *text = render(st, MP_STATS_FORMAT_TEXT, "^meshproxy", false);
    char line[128];
    snprintf(line, sizeof(line), "meshproxy.bytes_copied: %llu",
             (unsigned long long)(before + 1234));
    expect_line(text, line);
    free(text);

    uint64_t v = 42;
    assert_int_equal(mp_stats_register_fn(st, "server.uptime", true, forty_two, &v), 0);
    assert_int_equal(mp_stats_register_fn(st, "server.uptime", false, forty_two, &v), MP_ERR_INVAL);
    assert_int_equal(mp_stats_register_fn(st, "", true, forty_two, &v), MP_ERR_INVAL);
    assert_null(mp_stats_gauge(st, "server.uptime"));
    v = 43;
    text = render(st, MP_STATS_FORMAT_TEXT, "uptime", false);
    expect_line(text, "server.uptime: 43");
    free(text);

    /* Tags set after registration apply to stats already there. */
    mp_counter_inc(
        mp_stats_counter(st, "cluster.outbound|80||web.ns.svc.cluster.local.upstream_rq_total"), 0,
        2);
    char *err = NULL;
    assert_int_equal(mp_stats_use_default_tags(st, false), 0);
    assert_int_equal(
        mp_stats_add_tag_regex(st, "cluster_name",
                               "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)", &err),
        0);
    assert_int_equal(mp_stats_add_fixed_tag(st, "mesh_id", "m1"), 0);
    text = render(st, MP_STATS_FORMAT_PROMETHEUS, "upstream_rq_total", false);
    check_prometheus(text);
    expect_line(text, "envoy_cluster_upstream_rq_total{mesh_id=\"m1\","
                      "cluster_name=\"outbound|80||web.ns.svc.cluster.local\"} 2");
    free(text);
    assert_int_equal(mp_stats_add_tag_regex(st, "bad", "(", &err), MP_ERR_INVAL);
    free(err);
    mp_counter_inc(mp_stats_counter(st, "cluster.foo.upstream_rq_2xx"), 0, 1);
    text = render(st, MP_STATS_FORMAT_PROMETHEUS, "cluster\\.foo", false);
    expect_line(text, "envoy_cluster_upstream_rq_2xx{mesh_id=\"m1\",cluster_name=\"foo\"} 1");
    free(text);
    /* Back to Envoy's defaults as well. */
    assert_int_equal(mp_stats_use_default_tags(st, true), 0);
    text = render(st, MP_STATS_FORMAT_PROMETHEUS, "cluster\\.foo", false);
    expect_line(text, "envoy_cluster_upstream_rq_xx{mesh_id=\"m1\",cluster_name=\"foo\","
                      "envoy_response_code_class=\"2\",envoy_cluster_name=\"foo\"} 1");
    free(text);
    mp_stats_free(st);
}

struct reg_arg {
    struct mp_stats *st;
    unsigned slot;
};

/* A worker that registers stats lazily (as for a new response code) while
 * the admin thread renders. */
static void *lazy_registrar(void *p)
{
    struct reg_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        struct mp_counter *c =
            mp_stats_counterf(a->st, "cluster.c%d.upstream_rq_%d", i % 50, 200 + i % 40);
        mp_counter_inc(c, a->slot, 1);
    }
    return NULL;
}

static void register_while_rendering(void **state)
{
    (void)state;
    struct mp_stats *st = mp_stats_new(2);
    struct reg_arg args[2] = {{st, 0}, {st, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, lazy_registrar, &args[i]), 0);
    for (int i = 0; i < 20; i++) {
        char *text = render(st, MP_STATS_FORMAT_PROMETHEUS, NULL, false);
        check_prometheus(text);
        free(text);
        assert_int_equal(mp_stats_flush(st), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    uint64_t total = 0;
    for (int c = 0; c < 50; c++)
        for (int code = 200; code < 240; code++) {
            char name[64];
            snprintf(name, sizeof(name), "cluster.c%d.upstream_rq_%d", c, code);
            total += mp_counter_value(mp_stats_counter(st, name));
        }
    assert_int_equal(total, 4000);
    mp_stats_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(register_same_name_same_handle),
        cmocka_unit_test(per_worker_increments_merge),
        cmocka_unit_test(gauges),
        cmocka_unit_test(histogram_percentiles),
        cmocka_unit_test(tag_extraction),
        cmocka_unit_test(prometheus_output),
        cmocka_unit_test(prometheus_checker_rejects),
        cmocka_unit_test(text_and_json_output),
        cmocka_unit_test(admin_paths),
        cmocka_unit_test(computed_stats_and_custom_tags),
        cmocka_unit_test(register_while_rendering),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mp_slice_cache_trim();
    return rc;
}
