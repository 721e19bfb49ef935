/* Unit tests for router_match.c (and route_index.c, route_regex.c): every
 * matcher kind, virtual host selection, weighted picks, rewrites, redirects,
 * and the path index against the linear scan on random inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/mp_common.h"
#include "proxy/route_hash.h"
#include "proxy/route_index.h"
#include "proxy/route_regex.h"
#include "proxy/router_match.h"
#include "test/unit/route_pb_build.h"
#include "xds/xds_translate_route.h"

/* ---- helpers ---------------------------------------------------------------- */

static struct mp_header_view g_hdrs[32];

/* A request; varargs are header name/value pairs, then NULL. */
static struct mp_route_request req_make(const char *host, const char *path, ...)
{
    struct mp_route_request r = {0};
    r.authority = host;
    r.authority_len = host != NULL ? strlen(host) : 0;
    r.path = path;
    r.path_len = path != NULL ? strlen(path) : 0;
    r.method = "GET";
    r.method_len = 3;
    va_list ap;
    va_start(ap, path);
    size_t n = 0;
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL && n < 32) {
        const char *value = va_arg(ap, const char *);
        g_hdrs[n++] = (struct mp_header_view){name, strlen(name), value, strlen(value)};
    }
    va_end(ap);
    r.headers = g_hdrs;
    r.n_headers = n;
    return r;
}

static struct mp_route_config *translate(PbConfig *pb)
{
    struct mp_route_config *cfg = NULL;
    char *err = NULL;
    int rc = mp_route_config_from_proto(pb, &cfg, &err);
    if (rc != 0)
        fail_msg("translation failed: %s", err ? err : "?");
    free(err);
    return cfg;
}

/* One vhost "*" with the given routes; returns the matched route's name. */
static const char *match_name(const struct mp_route_config *cfg, struct mp_route_request r)
{
    const struct mp_route *rt = mp_route_config_match(cfg, &r);
    const struct mp_route *lin = rt != NULL ? mp_vhost_match_linear(rt->vhost, &r) : NULL;
    assert_ptr_equal(rt, lin);
    return rt != NULL ? rt->name : "(none)";
}

static PbRoute *named(PbRoute *r, const char *name)
{
    r->name = tb_str(name);
    return r;
}

static int teardown(void **state)
{
    (void)state;
    tb_free_all();
    mp_regex_thread_cleanup();
    return 0;
}

/* ---- path matchers ----------------------------------------------------------- */

static void path_matchers(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    TB_ADD_ROUTE(vh, named(tb_route_cluster(TB_PATH("/exact"), "c"), "path"));
    TB_ADD_ROUTE(vh, named(tb_route_cluster(TB_SEP("/sep"), "c"), "sep"));
    TB_ADD_ROUTE(vh, named(tb_route_cluster(TB_REGEX("/re/[0-9]+"), "c"), "regex"));
    PbMatch *ci = TB_PREFIX("/CaSe/");
    tb_case_insensitive(ci);
    TB_ADD_ROUTE(vh, named(tb_route_cluster(ci, "c"), "ci"));
    PbMatch *cip = TB_PATH("/Upper");
    tb_case_insensitive(cip);
    TB_ADD_ROUTE(vh, named(tb_route_cluster(cip, "c"), "ci-path"));
    TB_ADD_ROUTE(vh, named(tb_route_cluster(TB_PREFIX("/api/"), "c"), "api"));
    TB_ADD_ROUTE(vh, named(tb_route_cluster(TB_PREFIX("/"), "c"), "root"));
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);

    assert_string_equal(match_name(cfg, req_make("h", "/exact", NULL)), "path");
    assert_string_equal(match_name(cfg, req_make("h", "/exact?q=1", NULL)), "path");
    assert_string_equal(match_name(cfg, req_make("h", "/exact#frag", NULL)), "path");
    assert_string_equal(match_name(cfg, req_make("h", "/exact/", NULL)), "root");
    assert_string_equal(match_name(cfg, req_make("h", "/EXACT", NULL)), "root");

    assert_string_equal(match_name(cfg, req_make("h", "/sep", NULL)), "sep");
    assert_string_equal(match_name(cfg, req_make("h", "/sep/x", NULL)), "sep");
    assert_string_equal(match_name(cfg, req_make("h", "/sep?x=/", NULL)), "sep");
    assert_string_equal(match_name(cfg, req_make("h", "/separate", NULL)), "root");

    /* safe_regex is a full match on the path without the query */
    assert_string_equal(match_name(cfg, req_make("h", "/re/123", NULL)), "regex");
    assert_string_equal(match_name(cfg, req_make("h", "/re/123?a=b", NULL)), "regex");
    assert_string_equal(match_name(cfg, req_make("h", "/re/123x", NULL)), "root");
    assert_string_equal(match_name(cfg, req_make("h", "/x/re/123", NULL)), "root");

    assert_string_equal(match_name(cfg, req_make("h", "/case/a", NULL)), "ci");
    assert_string_equal(match_name(cfg, req_make("h", "/CASE/a", NULL)), "ci");
    assert_string_equal(match_name(cfg, req_make("h", "/upper", NULL)), "ci-path");
    assert_string_equal(match_name(cfg, req_make("h", "/API/x", NULL)), "root");
    assert_string_equal(match_name(cfg, req_make("h", "/api/x", NULL)), "api");
    assert_string_equal(match_name(cfg, req_make("h", "*", NULL)), "(none)");
    mp_route_config_free(cfg);
}

/* ---- header matchers --------------------------------------------------------- */

static PbHeader *hm(const char *name, int kind, const char *v)
{
    PbHeader *h = tb_header(name);
    h->header_match_specifier_case = kind;
    switch (kind) {
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
        h->exact_match = tb_str(v);
        break;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
        h->prefix_match = tb_str(v);
        break;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH:
        h->suffix_match = tb_str(v);
        break;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_CONTAINS_MATCH:
        h->contains_match = tb_str(v);
        break;
    case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH:
        h->safe_regex_match = tb_regex(v);
        break;
    }
    return h;
}
#define HM_EXACT    ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH
#define HM_PREFIX   ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH
#define HM_SUFFIX   ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH
#define HM_CONTAINS ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_CONTAINS_MATCH
#define HM_REGEX    ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH

/* Adds a route "/<name>" requiring header matcher h. */
static void add_header_route(PbVhost *vh, const char *name, PbHeader *h)
{
    char path[64];
    snprintf(path, sizeof(path), "/%s", name);
    PbMatch *m = TB_PATH(path);
    TB_ADD_HEADER(m, h);
    TB_ADD_ROUTE(vh, named(tb_route_cluster(m, "c"), name));
}

static void header_matchers(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    add_header_route(vh, "exact", hm("X-Env", HM_EXACT, "prod"));
    add_header_route(vh, "prefix", hm("x-env", HM_PREFIX, "pr"));
    add_header_route(vh, "suffix", hm("x-env", HM_SUFFIX, "od"));
    add_header_route(vh, "contains", hm("x-env", HM_CONTAINS, "ro"));
    add_header_route(vh, "regex", hm("x-env", HM_REGEX, "p.*d"));
    PbHeader *inv = hm("x-env", HM_EXACT, "prod");
    inv->invert_match = 1;
    add_header_route(vh, "invert", inv);
    PbHeader *pres = tb_header("x-env");
    pres->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
    pres->present_match = 1;
    add_header_route(vh, "present", pres);
    PbHeader *absent = tb_header("x-env");
    absent->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
    absent->present_match = 0;
    add_header_route(vh, "absent", absent);
    PbHeader *invpres = tb_header("x-env");
    invpres->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
    invpres->present_match = 1;
    invpres->invert_match = 1;
    add_header_route(vh, "invpresent", invpres);
    add_header_route(vh, "nospec", tb_header("x-env"));
    PbHeader *range = tb_header("x-n");
    range->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH;
    range->range_match = tb_alloc(sizeof(*range->range_match));
    envoy__type__v3__int64_range__init(range->range_match);
    range->range_match->start = -10;
    range->range_match->end = 10;
    add_header_route(vh, "range", range);
    PbHeader *sm = tb_header("x-env");
    sm->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    sm->string_match = tb_string_match(TB_SM_EXACT, "PROD", 1);
    add_header_route(vh, "sm-ci", sm);
    PbHeader *smr = tb_header("x-env");
    smr->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    smr->string_match = tb_string_match(TB_SM_REGEX, "[a-z]+,[a-z]+", 0);
    add_header_route(vh, "sm-joined", smr);
    PbHeader *empty = tb_header("x-env");
    empty->header_match_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
    empty->string_match = tb_string_match(TB_SM_EXACT, "", 0);
    empty->treat_missing_header_as_empty = 1;
    add_header_route(vh, "missing-empty", empty);
    add_header_route(vh, "method", hm(":method", HM_EXACT, "POST"));
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);

    struct {
        const char *path, *hname, *hval, *want;
    } cases[] = {
        {"/exact", "x-env", "prod", "exact"},
        {"/exact", "x-env", "Prod", "(none)"},
        {"/exact", "x-other", "prod", "(none)"},
        {"/prefix", "x-env", "prod", "prefix"},
        {"/prefix", "x-env", "dev", "(none)"},
        {"/suffix", "x-env", "prod", "suffix"},
        {"/suffix", "x-env", "proD", "(none)"},
        {"/contains", "x-env", "prod", "contains"},
        {"/contains", "x-env", "dev", "(none)"},
        {"/regex", "x-env", "pod", "regex"},
        {"/regex", "x-env", "xpod", "(none)"},
        {"/invert", "x-env", "prod", "(none)"},
        {"/invert", "x-env", "dev", "invert"},
        {"/invert", "x-other", "v", "(none)"}, /* missing header fails even inverted */
        {"/present", "x-env", "", "present"},
        {"/present", "x-other", "v", "(none)"},
        {"/absent", "x-other", "v", "absent"},
        {"/absent", "x-env", "v", "(none)"},
        {"/invpresent", "x-other", "v", "invpresent"},
        {"/invpresent", "x-env", "v", "(none)"},
        {"/nospec", "x-env", "v", "nospec"},
        {"/nospec", "x-other", "v", "(none)"},
        {"/range", "x-n", "9", "range"},
        {"/range", "x-n", "-10", "range"},
        {"/range", "x-n", "10", "(none)"},
        {"/range", "x-n", "1.5", "(none)"},
        {"/range", "x-n", "abc", "(none)"},
        {"/sm-ci", "x-env", "pRoD", "sm-ci"},
        {"/sm-ci", "x-env", "prodx", "(none)"},
        {"/missing-empty", "x-other", "v", "missing-empty"},
        {"/missing-empty", "x-env", "v", "(none)"},
        {"/method", "x", "y", "(none)"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        const char *got =
            match_name(cfg, req_make("h", cases[i].path, cases[i].hname, cases[i].hval, NULL));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: %s %s=%s: got %s want %s", i, cases[i].path, cases[i].hname,
                     cases[i].hval, got, cases[i].want);
    }
    /* Repeated headers are joined with ',' before matching. */
    assert_string_equal(match_name(cfg, req_make("h", "/sm-joined", "x-env", "ab", "x-y", "z",
                                                 "x-env", "cd", NULL)),
                        "sm-joined");
    assert_string_equal(match_name(cfg, req_make("h", "/sm-joined", "x-env", "ab", NULL)),
                        "(none)");
    /* Pseudo-headers come from the request fields when not in headers[]. */
    struct mp_route_request r = req_make("h", "/method", NULL);
    r.method = "POST";
    r.method_len = 4;
    assert_string_equal(match_name(cfg, r), "method");
    mp_route_config_free(cfg);
}

/* Joining many long repeated headers goes past the stack buffer. */
static void header_join_long(void **state)
{
    (void)state;
    struct mp_route_config *cfg = mp_route_config_new();
    assert_non_null(cfg);
    char *err = NULL;
    const struct mp_regex *re = mp_regex_compile(cfg, "(a{100},){9}a{100}", true, &err);
    assert_non_null(re);
    struct mp_header_match m = {.name = "x",
                                .name_len = 1,
                                .kind = MP_HEADER_MATCH_STRING,
                                .str = {.kind = MP_STRING_MATCH_REGEX, .regex = re}};
    char val[101];
    memset(val, 'a', 100);
    val[100] = '\0';
    struct mp_header_view h[10];
    for (int i = 0; i < 10; i++)
        h[i] = (struct mp_header_view){"x", 1, val, 100};
    struct mp_route_request r = {.headers = h, .n_headers = 10};
    assert_true(mp_header_match_eval(&m, &r));
    r.n_headers = 9;
    assert_false(mp_header_match_eval(&m, &r));
    mp_route_config_free(cfg);
}

/* ---- query parameters ---------------------------------------------------------- */

static void query_matchers(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    struct {
        const char *name;
        PbQuery *q;
    } qs[] = {
        {"exact", tb_query("v", tb_string_match(TB_SM_EXACT, "1", 0))},
        {"prefix", tb_query("v", tb_string_match(TB_SM_PREFIX, "ab", 0))},
        {"suffix", tb_query("v", tb_string_match(TB_SM_SUFFIX, "yz", 0))},
        {"contains", tb_query("v", tb_string_match(TB_SM_CONTAINS, "MID", 1))},
        {"regex", tb_query("v", tb_string_match(TB_SM_REGEX, "[0-9]{3}", 0))},
        {"present", tb_query("debug", NULL)},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(qs); i++) {
        char path[32];
        snprintf(path, sizeof(path), "/%s", qs[i].name);
        PbMatch *m = TB_PATH(path);
        TB_ADD_QUERY(m, qs[i].q);
        TB_ADD_ROUTE(vh, named(tb_route_cluster(m, "c"), qs[i].name));
    }
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    struct {
        const char *path, *want;
    } cases[] = {
        {"/exact?v=1", "exact"},           {"/exact?a=b&v=1", "exact"},
        {"/exact?v=1&v=2", "exact"},       {"/exact?v=2&v=1", "(none)"}, /* first value only */
        {"/exact?v=10", "(none)"},         {"/exact", "(none)"},
        {"/exact?v=1#frag", "exact"},      {"/prefix?v=abc", "prefix"},
        {"/prefix?v=xab", "(none)"},       {"/suffix?v=xyz", "suffix"},
        {"/contains?v=amidb", "contains"}, {"/contains?v=ab", "(none)"},
        {"/regex?v=123", "regex"},         {"/regex?v=1234", "(none)"},
        {"/present?debug", "present"},     {"/present?x=1&debug=", "present"},
        {"/present?debugx=1", "(none)"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        const char *got = match_name(cfg, req_make("h", cases[i].path, NULL));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: %s: got %s want %s", i, cases[i].path, got, cases[i].want);
    }
    mp_route_config_free(cfg);
}

/* ---- grpc, runtime_fraction ------------------------------------------------------- */

static void grpc_and_fraction(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    PbMatch *g = TB_PREFIX("/g");
    g->grpc = tb_alloc(sizeof(*g->grpc));
    envoy__config__route__v3__route_match__grpc_route_match_options__init(g->grpc);
    TB_ADD_ROUTE(vh, named(tb_route_cluster(g, "c"), "grpc"));
    PbMatch *f = TB_PREFIX("/f");
    f->runtime_fraction = tb_alloc(sizeof(*f->runtime_fraction));
    envoy__config__core__v3__runtime_fractional_percent__init(f->runtime_fraction);
    f->runtime_fraction->default_value = tb_alloc(sizeof(Envoy__Type__V3__FractionalPercent));
    envoy__type__v3__fractional_percent__init(f->runtime_fraction->default_value);
    f->runtime_fraction->default_value->numerator = 25;
    TB_ADD_ROUTE(vh, named(tb_route_cluster(f, "c"), "fraction"));
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    assert_string_equal(
        match_name(cfg, req_make("h", "/g", "content-type", "application/grpc", NULL)), "grpc");
    assert_string_equal(
        match_name(cfg, req_make("h", "/g", "content-type", "application/grpc+proto", NULL)),
        "grpc");
    assert_string_equal(
        match_name(cfg, req_make("h", "/g", "content-type", "application/grpcx", NULL)), "(none)");
    assert_string_equal(match_name(cfg, req_make("h", "/g", NULL)), "(none)");
    int hits = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        struct mp_route_request r = req_make("h", "/f", NULL);
        r.random = i;
        hits += mp_route_config_match(cfg, &r) != NULL;
    }
    assert_int_equal(hits, 250);
    mp_route_config_free(cfg);
}

/* ---- virtual host selection ------------------------------------------------------- */

static void vhost_selection(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    const char *vhs[][2] = {
        {"exact", "www.example.com"},
        {"exact-port", "api.example.com:8080"},
        {"suffix-short", "*.com"},
        {"suffix-long", "*.example.com"},
        {"suffix-dash", "*-bar.example.com"},
        {"prefix-short", "foo*"},
        {"prefix-long", "foo.bar.*"},
        {"v6", "[::1]"},
        {"default", "*"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(vhs); i++) {
        PbVhost *vh = tb_vhost(vhs[i][0], vhs[i][1]);
        TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/"), vhs[i][0]));
        TB_ADD_VHOST(pb, vh);
    }
    struct mp_route_config *cfg = translate(pb);
    struct {
        const char *host, *want;
    } cases[] = {
        {"www.example.com", "exact"},
        {"WWW.Example.COM", "exact"},
        {"www.example.com:80", "exact"}, /* port stripped after no match */
        {"api.example.com:8080", "exact-port"},
        {"api.example.com", "suffix-long"},
        {"api.example.com:9090", "suffix-long"},
        {"x.example.com", "suffix-long"},
        {"a-bar.example.com", "suffix-dash"}, /* longest suffix wins */
        {"-bar.example.com", "suffix-long"},  /* '*' must cover one char */
        {"example.com", "suffix-short"},
        {".com", "default"},
        {"foo.bar.baz", "prefix-long"},
        {"foo.bar.", "prefix-short"},
        {"food", "prefix-short"},
        {"foo.com", "suffix-short"}, /* suffix wildcards before prefix */
        {"[::1]", "v6"},
        {"[::1]:443", "v6"},
        {"other", "default"},
        {"", "default"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        const struct mp_vhost *vh =
            mp_route_config_find_vhost(cfg, cases[i].host, strlen(cases[i].host));
        assert_non_null(vh);
        if (strcmp(vh->name, cases[i].want) != 0)
            fail_msg("host %s: got %s want %s", cases[i].host, vh->name, cases[i].want);
    }
    mp_route_config_free(cfg);

    /* ignore_port_in_host_matching: only the port-less host is tried; no "*". */
    PbConfig *pb2 = tb_config("rc2");
    pb2->ignore_port_in_host_matching = 1;
    PbVhost *a = tb_vhost("a", "a.com:8080");
    TB_ADD_ROUTE(a, tb_route_cluster(TB_PREFIX("/"), "a"));
    PbVhost *b = tb_vhost("b", "b.com");
    TB_ADD_ROUTE(b, tb_route_cluster(TB_PREFIX("/"), "b"));
    TB_ADD_VHOST(pb2, a);
    TB_ADD_VHOST(pb2, b);
    cfg = translate(pb2);
    assert_null(mp_route_config_find_vhost(cfg, "a.com:8080", 10));
    assert_string_equal(mp_route_config_find_vhost(cfg, "b.com:1", 7)->name, "b");
    assert_string_equal(mp_route_config_find_vhost(cfg, "b.com", 5)->name, "b");
    assert_null(mp_route_config_find_vhost(cfg, "c.com", 5));
    struct mp_route_request r = req_make("c.com", "/", NULL);
    assert_null(mp_route_config_match(cfg, &r));
    mp_route_config_free(cfg);
}

/* ---- actions ------------------------------------------------------------------------ */

static void weighted_clusters(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    PbRoute *rt = tb_route(TB_PREFIX("/"));
    PbAction *a = tb_action(rt);
    tb_weighted(a, "a", 10);
    tb_weighted(a, "b", 0);
    tb_weighted(a, "c", 30);
    tb_weighted(a, "d", 60);
    TB_ADD_ROUTE(vh, rt);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    struct mp_route_request req = req_make("h", "/x", NULL);
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    assert_non_null(r);
    assert_int_equal(r->route.total_weight, 100);
    /* Every residue maps to exactly its weight's share, in config order. */
    int count[4] = {0};
    for (uint64_t i = 0; i < 1000; i++) {
        const struct mp_weighted_cluster *wc = mp_route_pick_weighted(r, i * 7919 + 13);
        count[wc - r->route.weighted]++;
    }
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], 300);
    assert_int_equal(count[3], 600);
    assert_string_equal(mp_route_pick_weighted(r, 0)->name, "a");
    assert_string_equal(mp_route_pick_weighted(r, 9)->name, "a");
    assert_string_equal(mp_route_pick_weighted(r, 10)->name, "c");
    assert_string_equal(mp_route_pick_weighted(r, 40)->name, "d");
    assert_string_equal(mp_route_pick_weighted(r, 199)->name, "d");
    /* Random numbers: roughly proportional. */
    srand(42);
    int rc[4] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t rnd = ((uint64_t)rand() << 31) ^ (uint64_t)rand();
        rc[mp_route_pick_weighted(r, rnd) - r->route.weighted]++;
    }
    assert_true(rc[0] > 9000 && rc[0] < 11000);
    assert_int_equal(rc[1], 0);
    assert_true(rc[2] > 28500 && rc[2] < 31500);
    const char *name;
    size_t len;
    assert_int_equal(mp_route_pick_cluster(r, &req, 50, &name, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(name, "d", 1);
    mp_route_config_free(cfg);
}

static void cluster_header(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    PbRoute *rt = tb_route(TB_PREFIX("/"));
    PbAction *a = tb_action(rt);
    a->cluster_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER;
    a->cluster_header = tb_str("X-Cluster");
    TB_ADD_ROUTE(vh, rt);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    struct mp_route_request req = req_make("h", "/", "x-cluster", "backend", NULL);
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    const char *name;
    size_t len;
    assert_int_equal(mp_route_pick_cluster(r, &req, 0, &name, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(name, "backend", 7);
    req = req_make("h", "/", NULL);
    assert_int_equal(mp_route_pick_cluster(r, &req, 0, &name, &len), MP_ERR_NOTFOUND);
    assert_int_equal(r->route.cluster_not_found_code, 503);
    mp_route_config_free(cfg);
}

static void direct_and_redirect(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    TB_ADD_ROUTE(vh, named(tb_route_direct(TB_PATH("/health"), 200, "ok\n"), "direct"));
    PbRoute *https = named(tb_route(TB_PREFIX("/secure/")), "https");
    tb_route_redirect(https)->https_redirect = 1;
    https->redirect->scheme_rewrite_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT;
    TB_ADD_ROUTE(vh, https);
    PbRoute *moved = named(tb_route(TB_PREFIX("/old/")), "moved");
    Envoy__Config__Route__V3__RedirectAction *ra = tb_route_redirect(moved);
    ra->host_redirect = tb_str("new.example.com");
    ra->port_redirect = 8443;
    ra->path_rewrite_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE;
    ra->prefix_rewrite = tb_str("/new/");
    ra->response_code =
        ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT;
    TB_ADD_ROUTE(vh, moved);
    PbRoute *strip = named(tb_route(TB_PREFIX("/strip")), "strip");
    Envoy__Config__Route__V3__RedirectAction *rs = tb_route_redirect(strip);
    rs->strip_query = 1;
    rs->path_rewrite_specifier_case =
        ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT;
    rs->path_redirect = tb_str("/landing");
    TB_ADD_ROUTE(vh, strip);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);

    struct mp_route_request req = req_make("h", "/health", NULL);
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    assert_int_equal(r->action_kind, MP_ROUTE_ACTION_DIRECT_RESPONSE);
    assert_int_equal(r->direct.status, 200);
    assert_int_equal(r->direct.body_len, 3);
    assert_memory_equal(r->direct.body, "ok\n", 3);

    char out[256];
    size_t len;
    req = req_make("shop.com:80", "/secure/cart?id=1", NULL);
    r = mp_route_config_match(cfg, &req);
    assert_int_equal(r->action_kind, MP_ROUTE_ACTION_REDIRECT);
    assert_int_equal(r->redirect.response_code, 301);
    assert_int_equal(mp_route_redirect_location(r, &req, out, sizeof(out), &len), 0);
    assert_string_equal(out, "https://shop.com/secure/cart?id=1"); /* :80 dropped */
    assert_int_equal(len, strlen(out));
    req = req_make("shop.com:8080", "/secure/x", NULL);
    assert_int_equal(mp_route_redirect_location(r, &req, out, sizeof(out), &len), 0);
    assert_string_equal(out, "https://shop.com:8080/secure/x");

    req = req_make("shop.com", "/old/a/b?q", NULL);
    r = mp_route_config_match(cfg, &req);
    assert_int_equal(r->redirect.response_code, 308);
    assert_int_equal(mp_route_redirect_location(r, &req, out, sizeof(out), &len), 0);
    assert_string_equal(out, "http://new.example.com:8443/new/a/b?q");
    /* Too small: reports a length that fits, writes nothing past cap. */
    char small[10];
    assert_int_equal(mp_route_redirect_location(r, &req, small, sizeof(small), &len), MP_ERR_LIMIT);
    assert_true(len >= strlen("http://new.example.com:8443/new/a/b?q"));

    req = req_make("shop.com", "/strip?a=1", NULL);
    r = mp_route_config_match(cfg, &req);
    assert_int_equal(mp_route_redirect_location(r, &req, out, sizeof(out), &len), 0);
    assert_string_equal(out, "http://shop.com/landing");
    mp_route_config_free(cfg);
}

static void path_rewrites(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    PbRoute *p = tb_route_cluster(TB_PREFIX("/api/v1/"), "c");
    p->route->prefix_rewrite = tb_str("/");
    TB_ADD_ROUTE(vh, p);
    PbRoute *ex = tb_route_cluster(TB_PATH("/exact"), "c");
    ex->route->prefix_rewrite = tb_str("/other");
    TB_ADD_ROUTE(vh, ex);
    PbRoute *re = tb_route_cluster(TB_PREFIX("/re/"), "c");
    re->route->regex_rewrite = tb_alloc(sizeof(*re->route->regex_rewrite));
    envoy__type__matcher__v3__regex_match_and_substitute__init(re->route->regex_rewrite);
    re->route->regex_rewrite->pattern = tb_regex("^/re/([a-z]+)/([0-9]+)");
    re->route->regex_rewrite->substitution = tb_str("/\\2/\\1$");
    TB_ADD_ROUTE(vh, re);
    TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX("/"), "c"));
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    char out[128];
    size_t len;
    struct {
        const char *in, *want;
    } cases[] = {
        {"/api/v1/users?x=1", "/users?x=1"},
        {"/exact?q", "/other?q"},
        {"/re/abc/123/tail?k=v", "/123/abc$/tail?k=v"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        struct mp_route_request req = req_make("h", cases[i].in, NULL);
        const struct mp_route *r = mp_route_config_match(cfg, &req);
        assert_non_null(r);
        assert_int_equal(mp_route_rewrite_path(r, req.path, req.path_len, out, sizeof(out), &len),
                         0);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(len, strlen(cases[i].want));
        /* A buffer one byte short reports the exact size needed. */
        size_t need = 0;
        char tiny[128];
        assert_int_equal(mp_route_rewrite_path(r, req.path, req.path_len, tiny, len, &need),
                         MP_ERR_LIMIT);
        assert_true(need >= len);
    }
    struct mp_route_request req = req_make("h", "/plain", NULL);
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    assert_int_equal(mp_route_rewrite_path(r, req.path, req.path_len, out, sizeof(out), &len),
                     MP_ERR_NOTFOUND);
    mp_route_config_free(cfg);
}

/* ---- index vs linear ------------------------------------------------------------------ */

static const char *const segs[] = {"api", "v1", "users", "a", "b", "static", "x", ""};

static void rand_path(char *buf, size_t cap, unsigned *seed)
{
    size_t o = 0;
    int n = rand_r(seed) % 4;
    if (n == 0) {
        snprintf(buf, cap, "/");
        return;
    }
    for (int i = 0; i < n && o + 12 < cap; i++) {
        const char *s = segs[rand_r(seed) % MP_ARRAY_LEN(segs)];
        o += (size_t)snprintf(buf + o, cap - o, "/%s", s);
        if (s[0] != '\0' && rand_r(seed) % 5 == 0)
            buf[o - 1] = (char)('A' + rand_r(seed) % 3); /* vary last char */
    }
    if (rand_r(seed) % 4 == 0)
        o += (size_t)snprintf(buf + o, cap - o, "/");
    if (rand_r(seed) % 4 == 0)
        snprintf(buf + o, cap - o, "?q=%d", rand_r(seed) % 3);
}

static void index_equals_linear(void **state)
{
    (void)state;
    unsigned seed = 12345;
    PbConfig *pb = tb_config("big");
    PbVhost *vh = tb_vhost("all", "*");
    for (int i = 0; i < 1000; i++) {
        char p[96];
        rand_path(p, sizeof(p), &seed);
        PbMatch *m;
        switch (rand_r(&seed) % 6) {
        case 0:
        case 1: m = TB_PREFIX(p); break;
        case 2: m = TB_PATH(strchr(p, '?') ? "/x" : p); break;
        case 3: {
            char *q = strchr(p, '?');
            if (q)
                *q = '\0';
            size_t l = strlen(p);
            while (l > 0 && p[l - 1] == '/')
                p[--l] = '\0';
            m = TB_SEP(l >= 2 ? p : "/x");
            break;
        }
        case 4: {
            char re[128];
            snprintf(re, sizeof(re), "/%s/.*", segs[rand_r(&seed) % 6]);
            m = TB_REGEX(re);
            break;
        }
        default:
            m = TB_PREFIX(p);
            tb_case_insensitive(m);
            break;
        }
        if (rand_r(&seed) % 8 == 0)
            TB_ADD_HEADER(m, hm("x-v", HM_EXACT, rand_r(&seed) % 2 ? "1" : "2"));
        if (rand_r(&seed) % 10 == 0)
            TB_ADD_QUERY(m, tb_query("q", tb_string_match(TB_SM_EXACT, "1", 0)));
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        TB_ADD_ROUTE(vh, named(tb_route_cluster(m, "c"), name));
    }
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    const struct mp_vhost *v = &cfg->vhosts[0];
    assert_non_null(v->index);
    assert_true(v->index->n_wild < 1000); /* the index does bucket routes */
    int matched = 0;
    for (int i = 0; i < 20000; i++) {
        char p[96];
        rand_path(p, sizeof(p), &seed);
        struct mp_route_request r = req_make("h", p, "x-v", rand_r(&seed) % 2 ? "1" : "2", NULL);
        const struct mp_route *a = mp_vhost_match(v, &r);
        const struct mp_route *b = mp_vhost_match_linear(v, &r);
        if (a != b)
            fail_msg("path %s: index %s, linear %s", p, a ? a->name : "-", b ? b->name : "-");
        matched += a != NULL;
    }
    assert_true(matched > 1000);
    mp_route_config_free(cfg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1,000 service prefixes: the index finds the last one without trying the
 * 999 before it, so it is much faster than the scan. */
static void index_is_fast(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("svc");
    PbVhost *vh = tb_vhost("all", "*");
    for (int i = 0; i < 1000; i++) {
        char p[32];
        snprintf(p, sizeof(p), "/svc%d/", i);
        TB_ADD_ROUTE(vh, tb_route_cluster(TB_PREFIX(p), p));
    }
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    const struct mp_vhost *v = &cfg->vhosts[0];
    assert_int_equal(v->index->n_wild, 0);
    struct mp_route_request r = req_make("h", "/svc999/items?x=1", NULL);
    const int n = 2000;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        assert_ptr_equal(mp_vhost_match(v, &r), &v->routes[999]);
    double t1 = now_s();
    for (int i = 0; i < n; i++)
        assert_ptr_equal(mp_vhost_match_linear(v, &r), &v->routes[999]);
    double t2 = now_s();
    assert_true((t1 - t0) * 5 < (t2 - t1));
    mp_route_config_free(cfg);
}

/* ---- hash policies ------------------------------------------------------------------ */

static uint64_t fnv(const void *data, size_t len, uint64_t seed)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= ((const unsigned char *)data)[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void hash_policies(void **state)
{
    (void)state;
    struct mp_hash_policy hp[4] = {
        {.kind = MP_HASH_HEADER, .name = "x-user", .name_len = 6},
        {.kind = MP_HASH_COOKIE, .name = "sid", .name_len = 3, .cookie_ttl_ms = -1},
        {.kind = MP_HASH_QUERY_PARAMETER, .name = "k", .name_len = 1},
        {.kind = MP_HASH_SOURCE_IP},
    };
    struct mp_route r = {.action_kind = MP_ROUTE_ACTION_ROUTE};
    r.route.hash_policies = hp;
    r.route.n_hash_policies = 4;
    uint64_t h1, h2;

    /* Nothing to hash. */
    struct mp_route_request q = req_make("h", "/", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, NULL, 0, fnv, &h1), MP_ERR_NOTFOUND);

    /* One header only: the plain hash of its value. */
    q = req_make("h", "/", "x-user", "alice", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, NULL, 0, fnv, &h1), 0);
    assert_true(h1 == fnv("alice", 5, 0));

    /* Repeated header values in either order hash alike. */
    q = req_make("h", "/", "x-user", "b", "x-user", "a", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, NULL, 0, fnv, &h1), 0);
    q = req_make("h", "/", "x-user", "a", "x-user", "b", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, NULL, 0, fnv, &h2), 0);
    assert_true(h1 == h2 && h1 == fnv("ab", 2, 0));

    /* Header, cookie, query and source ip fold together. */
    q = req_make("h", "/p?a=1&k=v9", "x-user", "alice", "cookie", "x=1; sid=\"s1\"", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, "10.0.0.1", 8, fnv, &h1), 0);
    uint64_t want = fnv("alice", 5, 0);
    want = ((want << 1) | (want >> 63)) ^ fnv("s1", 2, 0);
    want = ((want << 1) | (want >> 63)) ^ fnv("v9", 2, 0);
    want = ((want << 1) | (want >> 63)) ^ fnv("10.0.0.1", 8, 0);
    assert_true(h1 == want);

    /* A terminal policy that hashed ends the list. */
    hp[0].terminal = true;
    assert_int_equal(mp_route_hash_request(&r, &q, "10.0.0.1", 8, fnv, &h1), 0);
    assert_true(h1 == fnv("alice", 5, 0));
    /* ... but not when it found nothing. */
    q = req_make("h", "/", NULL);
    assert_int_equal(mp_route_hash_request(&r, &q, "10.0.0.1", 8, fnv, &h1), 0);
    assert_true(h1 == fnv("10.0.0.1", 8, 0));

    const char *v;
    size_t vl;
    assert_true(mp_route_cookie_find("a=1;b=2", 7, "b", 1, &v, &vl));
    assert_int_equal(vl, 1);
    assert_memory_equal(v, "2", 1);
    assert_false(mp_route_cookie_find("ab=1", 4, "b", 1, &v, &vl));
}

/* ---- per-filter config, threads ----------------------------------------------------------- */

static void filter_config_lookup(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    PbRoute *rt = tb_route_cluster(TB_PREFIX("/"), "c");
    Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry *e = tb_alloc(sizeof(*e));
    envoy__config__route__v3__route__typed_per_filter_config_entry__init(e);
    e->key = tb_str("envoy.filters.http.fault");
    e->value = tb_alloc(sizeof(*e->value));
    google__protobuf__any__init(e->value);
    e->value->type_url = tb_str("type.googleapis.com/x.Y");
    static uint8_t bytes[] = {1, 2, 3};
    e->value->value.data = bytes;
    e->value->value.len = 3;
    TB_PUSH(rt->typed_per_filter_config, rt->n_typed_per_filter_config, e);
    TB_ADD_ROUTE(vh, rt);
    Envoy__Config__Route__V3__VirtualHost__TypedPerFilterConfigEntry *ve = tb_alloc(sizeof(*ve));
    envoy__config__route__v3__virtual_host__typed_per_filter_config_entry__init(ve);
    ve->key = tb_str("envoy.filters.http.rbac");
    /* Wrapped in envoy.config.route.v3.FilterConfig, which is unwrapped. */
    Envoy__Config__Route__V3__FilterConfig fc = ENVOY__CONFIG__ROUTE__V3__FILTER_CONFIG__INIT;
    fc.config = e->value;
    fc.disabled = 1;
    size_t fcn = envoy__config__route__v3__filter_config__get_packed_size(&fc);
    uint8_t *fcb = tb_alloc(fcn);
    envoy__config__route__v3__filter_config__pack(&fc, fcb);
    ve->value = tb_alloc(sizeof(*ve->value));
    google__protobuf__any__init(ve->value);
    ve->value->type_url = tb_str("type.googleapis.com/envoy.config.route.v3.FilterConfig");
    ve->value->value.data = fcb;
    ve->value->value.len = fcn;
    TB_PUSH(vh->typed_per_filter_config, vh->n_typed_per_filter_config, ve);
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    struct mp_route_request req = req_make("h", "/", NULL);
    const struct mp_route *r = mp_route_config_match(cfg, &req);
    const struct mp_typed_config *t =
        mp_route_find_filter_config(cfg, r, NULL, "envoy.filters.http.fault");
    assert_non_null(t);
    assert_string_equal(t->type_url, "type.googleapis.com/x.Y");
    assert_int_equal(t->value_len, 3);
    assert_memory_equal(t->value, bytes, 3);
    assert_ptr_not_equal(t->value, bytes); /* copied */
    t = mp_route_find_filter_config(cfg, r, NULL, "envoy.filters.http.rbac");
    assert_non_null(t);
    assert_true(t->disabled);
    assert_false(t->is_optional);
    assert_string_equal(t->type_url, "type.googleapis.com/x.Y");
    assert_int_equal(t->value_len, 3);
    assert_memory_equal(t->value, bytes, 3);
    assert_null(mp_route_find_filter_config(cfg, r, NULL, "envoy.filters.http.cors"));
    mp_route_config_free(cfg);
}

struct thread_arg {
    const struct mp_route_config *cfg;
    int ok;
};

static void *match_thread(void *p)
{
    struct thread_arg *a = p;
    struct mp_header_view h = {"x-env", 5, "pod", 3};
    for (int i = 0; i < 20000; i++) {
        struct mp_route_request r = {.authority = "h",
                                     .authority_len = 1,
                                     .path = "/regex",
                                     .path_len = 6,
                                     .headers = &h,
                                     .n_headers = 1};
        const struct mp_route *rt = mp_route_config_match(a->cfg, &r);
        a->ok += rt != NULL && strcmp(rt->name, "regex") == 0;
    }
    mp_regex_thread_cleanup();
    return NULL;
}

/* One config, four threads matching regexes at once (per-thread match data). */
static void shared_between_threads(void **state)
{
    (void)state;
    PbConfig *pb = tb_config("rc");
    PbVhost *vh = tb_vhost("all", "*");
    add_header_route(vh, "regex", hm("x-env", HM_REGEX, "p.*d"));
    TB_ADD_VHOST(pb, vh);
    struct mp_route_config *cfg = translate(pb);
    pthread_t t[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){cfg, 0};
        assert_int_equal(pthread_create(&t[i], NULL, match_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].ok, 20000);
    }
    mp_route_config_free(cfg);
}

/* A catastrophic pattern hits the match limit instead of hanging. */
static void regex_match_limit(void **state)
{
    (void)state;
    struct mp_route_config *cfg = mp_route_config_new();
    char *err = NULL;
    const struct mp_regex *re = mp_regex_compile(cfg, "(a|a|aa)*(b|c)", true, &err);
    assert_non_null(re);
    char subject[64];
    memset(subject, 'a', sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    assert_false(mp_regex_match(re, subject, strlen(subject)));
    assert_true(mp_regex_match(re, "aab", 3));
    mp_route_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(path_matchers, teardown),
        cmocka_unit_test_teardown(header_matchers, teardown),
        cmocka_unit_test_teardown(header_join_long, teardown),
        cmocka_unit_test_teardown(query_matchers, teardown),
        cmocka_unit_test_teardown(grpc_and_fraction, teardown),
        cmocka_unit_test_teardown(vhost_selection, teardown),
        cmocka_unit_test_teardown(weighted_clusters, teardown),
        cmocka_unit_test_teardown(cluster_header, teardown),
        cmocka_unit_test_teardown(direct_and_redirect, teardown),
        cmocka_unit_test_teardown(path_rewrites, teardown),
        cmocka_unit_test_teardown(index_equals_linear, teardown),
        cmocka_unit_test_teardown(index_is_fast, teardown),
        cmocka_unit_test_teardown(hash_policies, teardown),
        cmocka_unit_test_teardown(filter_config_lookup, teardown),
        cmocka_unit_test_teardown(shared_between_threads, teardown),
        cmocka_unit_test_teardown(regex_match_limit, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
