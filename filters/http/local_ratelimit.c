/*
 * local_ratelimit.c (HTTP): a token per request from a bucket every worker
 * shares; a local 429 when there is none.
 */
#include "local_ratelimit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb-c.h"
#include "filters/http/request_view.h"
#include "filters/http/router.h"
#include "proxy/http_stream.h"
#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "proxy/rand.h"
#include "proxy/route_table.h"
#include "proxy/router_match.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"
#include "proxy/token_bucket_pb.h"
#include "proxy/worker.h"
#include "xds/xds_translate_listener.h"

typedef Envoy__Extensions__Filters__Http__LocalRatelimit__V3__LocalRateLimit LocalRateLimit;
typedef Envoy__Config__Core__V3__HeaderValueOption HeaderValueOption;

#define CONFIG_TYPE "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
#define PPM         1000000u /* fractions are kept in parts per million */
/* per-route configs one listener-level config remembers (open addressing) */
#define ROUTE_CACHE_SLOTS 128u

struct hlrl_stats {
    struct mp_counter *enabled, *enforced, *rate_limited, *ok;
};

struct route_entry;

struct hlrl_config {
    char *stat_prefix;
    bool has_bucket;
    struct mp_token_bucket bucket;
    uint32_t enabled_ppm; /* filter_enabled; 0 when unset */
    uint32_t enforced_ppm;
    int status;
    bool x_ratelimit_headers;      /* enable_x_ratelimit_headers: DRAFT_VERSION_03 */
    struct mp_header_ops resp_ops; /* response_add: response_headers_to_add */
    struct mp_header_ops req_ops;  /* request_add: request_headers_to_add_when_not_enforced */
    /* registered by the first worker that needs them */
    _Atomic(struct hlrl_stats *) stats;
    /* listener-level configs only: parsed typed_per_filter_config entries */
    _Atomic(struct route_entry *) *route_cache;
};

/* Per stream: the config whose bucket decided, for the x-ratelimit-* headers. */
struct hlrl_state {
    struct hlrl_config *used;
};

/* A per-route config, remembered by the route entry it came from and its bytes. */
struct route_entry {
    const struct mp_typed_config *key; /* identity hint only; bytes decide */
    uint8_t *bytes;
    size_t len;
    struct hlrl_config *cfg; /* NULL: the bytes did not parse (the listener config applies) */
};

static mp_token_bucket_clock_fn bucket_clock;
static void *bucket_clock_arg;

void mp_http_local_ratelimit_set_clock(mp_token_bucket_clock_fn clock, void *arg)
{
    bucket_clock = clock;
    bucket_clock_arg = arg;
}

/* A RuntimeFractionalPercent's default_value in parts per million. */
static int fraction_ppm(const Envoy__Config__Core__V3__RuntimeFractionalPercent *rf, uint32_t *out,
                        char **err)
{
    const Envoy__Type__V3__FractionalPercent *fp = rf->default_value;
    if (!fp)
        return mp_set_err(err, "default_value: is required");
    uint64_t scale;
    switch (fp->denominator) {
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__HUNDRED: scale = 10000; break;
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND: scale = 100; break;
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION: scale = 1; break;
    default: return mp_set_err(err, "default_value.denominator: unknown value %d", fp->denominator);
    }
    /* as in Envoy, a numerator above the denominator means 100% */
    uint64_t ppm = (uint64_t)fp->numerator * scale;
    *out = ppm > PPM ? PPM : (uint32_t)ppm;
    return 0;
}

static bool fraction_hit(uint32_t ppm)
{
    return ppm >= PPM || (ppm > 0 && mp_rand_u64() % PPM < ppm);
}

static void header_adds_free(const struct mp_header_add *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)a[i].name);
        free((char *)a[i].value);
    }
    free((void *)a);
}

/* HeaderValueOption list -> mp_header_add array (malloc'ed, names lowercase). */
static int header_adds(HeaderValueOption **pb, size_t n, const char *field,
                       const struct mp_header_add **out, size_t *n_out, char **err)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    struct mp_header_add *a = calloc(n, sizeof(*a));
    if (!a)
        return MP_ERR_NOMEM;
    int rc = MP_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        const HeaderValueOption *o = pb[i];
        if (!o->header || !o->header->key || !*o->header->key) {
            mp_set_err(err, "%s[%zu].header.key: must not be empty", field, i);
            goto fail;
        }
        const char *k = o->header->key;
        if (k[0] == ':' || strcasecmp(k, "host") == 0) {
            mp_set_err(err, "%s[%zu].header.key: ':'-prefixed or host headers may not be modified",
                       field, i);
            goto fail;
        }
        const char *v = o->header->value ? o->header->value : "";
        size_t vl = strlen(v);
        if (vl == 0 && o->header->raw_value.len > 0) {
            v = (const char *)o->header->raw_value.data;
            vl = o->header->raw_value.len;
        }
        char *name = strdup(k);
        char *value = malloc(vl + 1);
        if (!name || !value) {
            free(name);
            free(value);
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        memcpy(value, v, vl);
        value[vl] = '\0';
        a[i].name = name;
        a[i].name_len = strlen(name);
        a[i].value = value;
        a[i].value_len = vl;
        a[i].keep_empty_value = o->keep_empty_value;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        if (o->append) {
            if (o->append_action !=
                ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD) {
                mp_set_err(err, "%s[%zu]: both append and append_action are set", field, i);
                goto fail;
            }
            a[i].append = o->append->value ? MP_HEADER_APPEND_IF_EXISTS_OR_ADD
                                           : MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD;
        } else {
            a[i].append = (enum mp_header_append)o->append_action;
        }
#pragma GCC diagnostic pop
    }
    *out = a;
    *n_out = n;
    return 0;
fail:
    header_adds_free(a, n); /* calloc'ed: entries not reached are NULL */
    return rc;
}

static void route_entry_free(struct route_entry *e);

static void hlrl_free(void *p)
{
    struct hlrl_config *cfg = p;
    if (!cfg)
        return;
    if (cfg->route_cache) {
        for (size_t i = 0; i < ROUTE_CACHE_SLOTS; i++)
            route_entry_free(atomic_load(&cfg->route_cache[i]));
        free((void *)cfg->route_cache);
    }
    free(atomic_load(&cfg->stats));
    header_adds_free(cfg->resp_ops.response_add, cfg->resp_ops.n_response_add);
    header_adds_free(cfg->req_ops.request_add, cfg->req_ops.n_request_add);
    free(cfg->stat_prefix);
    free(cfg);
}

static void route_entry_free(struct route_entry *e)
{
    if (!e)
        return;
    hlrl_free(e->cfg);
    free(e->bytes);
    free(e);
}

/*
 * Parses a LocalRateLimit; with_cache for listener-level configs. A per-route
 * one (!with_cache) must have a token_bucket, as Envoy requires.
 */
static int parse_config(const uint8_t *data, size_t len, bool with_cache, struct hlrl_config **out,
                        char **err)
{
    *out = NULL;
    LocalRateLimit *pb =
        envoy__extensions__filters__http__local_ratelimit__v3__local_rate_limit__unpack(NULL, len,
                                                                                        data);
    if (!pb)
        return mp_set_err(err, "invalid LocalRateLimit");
    int rc = MP_ERR_INVAL;
    struct hlrl_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    atomic_init(&cfg->stats, NULL);
    if (!pb->stat_prefix || !*pb->stat_prefix) {
        mp_set_err(err, "stat_prefix: must not be empty");
        goto out;
    }
    if (pb->n_descriptors) {
        mp_set_err(err, "descriptors: unsupported (only the default token_bucket is)");
        goto out;
    }
    if (pb->local_rate_limit_per_downstream_connection) {
        mp_set_err(err, "local_rate_limit_per_downstream_connection: unsupported");
        goto out;
    }
    if (pb->local_cluster_rate_limit) {
        mp_set_err(err, "local_cluster_rate_limit: unsupported");
        goto out;
    }
    if (!with_cache && !pb->token_bucket) {
        mp_set_err(err, "token_bucket: is required in a per-route config");
        goto out;
    }
    if (pb->token_bucket) {
        if (mp_token_bucket_from_proto(&cfg->bucket, pb->token_bucket, bucket_clock,
                                       bucket_clock_arg, err) < 0) {
            mp_err_prefix(err, "token_bucket");
            goto out;
        }
        cfg->has_bucket = true;
    }
    if (pb->filter_enabled && fraction_ppm(pb->filter_enabled, &cfg->enabled_ppm, err) < 0) {
        mp_err_prefix(err, "filter_enabled");
        goto out;
    }
    if (pb->filter_enforced && fraction_ppm(pb->filter_enforced, &cfg->enforced_ppm, err) < 0) {
        mp_err_prefix(err, "filter_enforced");
        goto out;
    }
    cfg->x_ratelimit_headers =
        pb->enable_x_ratelimit_headers ==
        ENVOY__EXTENSIONS__COMMON__RATELIMIT__V3__XRATE_LIMIT_HEADERS_RFCVERSION__DRAFT_VERSION_03;
    cfg->status = 429;
    if (pb->status) {
        if (pb->status->code <= 0 || pb->status->code > 599) {
            mp_set_err(err, "status.code: must be an HTTP status, got %d", pb->status->code);
            goto out;
        }
        /* as Envoy: a code below 400 would not be an error, so 429 is sent instead */
        if (pb->status->code >= 400)
            cfg->status = pb->status->code;
    }
    rc = header_adds(pb->response_headers_to_add, pb->n_response_headers_to_add,
                     "response_headers_to_add", &cfg->resp_ops.response_add,
                     &cfg->resp_ops.n_response_add, err);
    if (rc < 0)
        goto out;
    rc = header_adds(pb->request_headers_to_add_when_not_enforced,
                     pb->n_request_headers_to_add_when_not_enforced,
                     "request_headers_to_add_when_not_enforced", &cfg->req_ops.request_add,
                     &cfg->req_ops.n_request_add, err);
    if (rc < 0)
        goto out;
    rc = MP_ERR_NOMEM;
    cfg->stat_prefix = strdup(pb->stat_prefix);
    if (!cfg->stat_prefix)
        goto out;
    if (with_cache) {
        cfg->route_cache = calloc(ROUTE_CACHE_SLOTS, sizeof(*cfg->route_cache));
        if (!cfg->route_cache)
            goto out;
    }
    *out = cfg;
    cfg = NULL;
    rc = 0;
out:
    if (rc == MP_ERR_NOMEM)
        mp_set_err(err, "out of memory");
    hlrl_free(cfg);
    envoy__extensions__filters__http__local_ratelimit__v3__local_rate_limit__free_unpacked(pb,
                                                                                           NULL);
    return rc;
}

static int hlrl_parse(const uint8_t *data, size_t len, void **config, char **err)
{
    if (!data && len == 0) {
        *config = NULL;
        return mp_set_err(err, "typed_config is required (stat_prefix)");
    }
    struct hlrl_config *cfg = NULL;
    int rc = parse_config(data, len, true, &cfg, err);
    *config = cfg;
    return rc;
}

/* ---- per-request ------------------------------------------------------------------ */

static struct hlrl_stats *get_stats(struct hlrl_config *cfg, struct mp_worker *w)
{
    struct hlrl_stats *st = atomic_load_explicit(&cfg->stats, memory_order_acquire);
    if (st || !w || !w->stats)
        return st;
    /* once per config: registering takes the registry's short mutex */
    struct hlrl_stats *n = malloc(sizeof(*n));
    if (!n)
        return NULL;
    const char *p = cfg->stat_prefix;
    n->enabled = mp_stats_counterf(w->stats, "%s.http_local_rate_limit.enabled", p);
    n->enforced = mp_stats_counterf(w->stats, "%s.http_local_rate_limit.enforced", p);
    n->rate_limited = mp_stats_counterf(w->stats, "%s.http_local_rate_limit.rate_limited", p);
    n->ok = mp_stats_counterf(w->stats, "%s.http_local_rate_limit.ok", p);
    struct hlrl_stats *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&cfg->stats, &expected, n, memory_order_acq_rel,
                                                memory_order_acquire))
        return n;
    free(n); /* another worker got there first; its handles are the same */
    return expected;
}

static void count(struct mp_counter *c, struct mp_worker *w)
{
    if (c && w)
        mp_counter_inc(c, w->index, 1);
}

static bool entry_matches(const struct route_entry *e, const struct mp_typed_config *tc)
{
    return e->len == tc->value_len && (e->len == 0 || memcmp(e->bytes, tc->value, e->len) == 0);
}

/*
 * The parsed config of a per-route entry: found in the listener config's
 * cache, or parsed now and published there with one compare-and-swap (so
 * every worker ends up with the same bucket). Returns NULL when the entry
 * does not parse or the cache is full (the caller uses the listener config).
 */
static struct hlrl_config *route_config(struct hlrl_config *top, const struct mp_typed_config *tc)
{
    uintptr_t h = (uintptr_t)tc;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15ull;
    size_t start = (size_t)(h >> 32) % ROUTE_CACHE_SLOTS;
    struct route_entry *mine = NULL;
    for (size_t i = 0; i < ROUTE_CACHE_SLOTS; i++) {
        _Atomic(struct route_entry *) *slot = &top->route_cache[(start + i) % ROUTE_CACHE_SLOTS];
        struct route_entry *e = atomic_load_explicit(slot, memory_order_acquire);
        while (!e) {
            if (!mine) {
                mine = calloc(1, sizeof(*mine));
                if (!mine)
                    return NULL;
                mine->key = tc;
                mine->len = tc->value_len;
                mine->bytes = malloc(tc->value_len ? tc->value_len : 1);
                if (!mine->bytes) {
                    free(mine);
                    return NULL;
                }
                if (tc->value_len)
                    memcpy(mine->bytes, tc->value, tc->value_len);
                char *err = NULL;
                if (parse_config(tc->value, tc->value_len, false, &mine->cfg, &err) < 0)
                    MP_LOG(MP_LOG_FILTER, MP_LOG_WARN,
                           "local_ratelimit: typed_per_filter_config[\"%s\"]: %s (the listener's "
                           "config applies)",
                           tc->filter_name, err ? err : "invalid");
                free(err);
            }
            if (atomic_compare_exchange_strong_explicit(slot, &e, mine, memory_order_acq_rel,
                                                        memory_order_acquire))
                return mine->cfg;
            /* lost the race: e is the winner's entry; look at it below */
        }
        if (entry_matches(e, tc)) {
            route_entry_free(mine);
            return e->cfg;
        }
    }
    route_entry_free(mine);
    static _Atomic bool warned;
    if (!atomic_exchange(&warned, true))
        MP_LOG(MP_LOG_FILTER, MP_LOG_WARN,
               "local_ratelimit: more than %u per-route configs; the listener's config applies "
               "to the rest",
               ROUTE_CACHE_SLOTS);
    return NULL;
}

/*
 * The typed_per_filter_config entry for this filter on the request's route
 * (route, then virtual host, then route configuration), or NULL. The route is
 * matched here as the router will match it: the same config, the same headers.
 */
static const struct mp_typed_config *find_per_route(struct mp_http_filter_ctx *f,
                                                    const struct mp_headers *h)
{
    const struct mp_http_stream *s = f->stream;
    if (f->index >= s->hcm->n_filters)
        return NULL;
    const char *name = s->hcm->filters[f->index].name;
    if (!name)
        return NULL;
    struct mp_request_view v;
    if (mp_request_view_init(&v, h))
        return NULL;
    /* runtime_fraction route matches draw from this, as the router's do */
    v.rq.random = mp_rand_u64();
    const struct mp_typed_config *tc = mp_request_view_filter_config(s, &v, name);
    mp_request_view_clear(&v);
    return tc;
}

/*
 * x-ratelimit-limit / -remaining / -reset (draft 03, as Envoy writes them):
 * the bucket's size, the tokens left now, and the whole seconds until the
 * next fill.
 */
static int add_x_ratelimit(struct mp_headers *h, struct hlrl_config *cfg)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)cfg->bucket.max_tokens);
    int rc = mp_headers_set_cstr(h, "x-ratelimit-limit", num);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)mp_token_bucket_available(&cfg->bucket));
    rc = rc ? rc : mp_headers_set_cstr(h, "x-ratelimit-remaining", num);
    uint64_t ns = mp_token_bucket_next_fill_ns(&cfg->bucket);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)((ns + 999999999u) / 1000000000u));
    return rc ? rc : mp_headers_set_cstr(h, "x-ratelimit-reset", num);
}

/* The rate-limited reply: through the response filters before this one, then the codec. */
static int send_limited(struct mp_http_filter_ctx *f, struct hlrl_config *cfg)
{
    struct mp_http_stream *s = f->stream;
    s->response_flags |= MP_RF_RATE_LIMITED;
    if (s->resp_headers_sent) {
        mp_http_stream_reset(s, MP_RF_RATE_LIMITED);
        return MP_FILTER_LOCAL_REPLY;
    }
    static const char body[] = "local_rate_limited";
    struct mp_headers h;
    mp_headers_init(&h);
    char num[24];
    snprintf(num, sizeof(num), "%d", cfg->status);
    int rc = mp_headers_add_cstr(&h, ":status", num);
    rc = rc ? rc : mp_headers_add_cstr(&h, "content-type", "text/plain");
    snprintf(num, sizeof(num), "%zu", sizeof(body) - 1);
    rc = rc ? rc : mp_headers_add_cstr(&h, "content-length", num);
    rc = rc ? rc : mp_headers_add_cstr(&h, "x-envoy-ratelimited", "true");
    rc = rc ? rc : mp_router_apply_header_ops(&h, &cfg->resp_ops, false);
    if (rc == 0 && cfg->x_ratelimit_headers)
        rc = add_x_ratelimit(&h, cfg);
    if (rc < 0) {
        mp_headers_clear(&h);
        mp_http_stream_send_local_reply(s, 500, "out of memory", MP_RF_RATE_LIMITED);
        return MP_FILTER_LOCAL_REPLY;
    }
    s->local_reply = true;
    mp_http_stream_encode_headers(s, f->index, &h, false);
    mp_headers_clear(&h);
    struct mp_buffer b = MP_BUFFER_INIT;
    if (mp_buffer_append_copy(&b, body, sizeof(body) - 1) == 0)
        mp_http_stream_encode_data(s, f->index, &b, true);
    else
        mp_http_stream_reset(s, MP_RF_RATE_LIMITED);
    mp_buffer_clear(&b);
    return MP_FILTER_LOCAL_REPLY;
}

static int hlrl_on_request_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                   bool end_stream)
{
    (void)end_stream;
    /* the config is immutable apart from its atomics (bucket, stats, cache) */
    struct hlrl_config *cfg = (struct hlrl_config *)f->config;
    struct mp_worker *w = f->stream->worker;
    const struct mp_typed_config *tc = find_per_route(f, headers);
    if (tc) {
        if (tc->disabled)
            return MP_FILTER_CONTINUE;
        if (mp_typed_config_type_is(tc, CONFIG_TYPE)) {
            struct hlrl_config *rcfg = route_config(cfg, tc);
            if (rcfg)
                cfg = rcfg;
        }
    }
    if (!fraction_hit(cfg->enabled_ppm))
        return MP_FILTER_CONTINUE;
    struct hlrl_stats *st = get_stats(cfg, w);
    count(st ? st->enabled : NULL, w);
    if (cfg->has_bucket && cfg->x_ratelimit_headers)
        ((struct hlrl_state *)f->state)->used = cfg;
    if (!cfg->has_bucket || mp_token_bucket_try_take(&cfg->bucket, 1)) {
        count(st ? st->ok : NULL, w);
        return MP_FILTER_CONTINUE;
    }
    count(st ? st->rate_limited : NULL, w);
    if (!fraction_hit(cfg->enforced_ppm)) {
        if (mp_router_apply_header_ops(headers, &cfg->req_ops, true) < 0)
            MP_LOG(MP_LOG_FILTER, MP_LOG_WARN, "local_ratelimit: out of memory adding headers");
        return MP_FILTER_CONTINUE;
    }
    count(st ? st->enforced : NULL, w);
    return send_limited(f, cfg);
}

static int hlrl_on_response_headers(struct mp_http_filter_ctx *f, struct mp_headers *headers,
                                    bool end_stream)
{
    (void)end_stream;
    struct hlrl_state *st = f->state;
    if (st->used && add_x_ratelimit(headers, st->used) < 0)
        MP_LOG(MP_LOG_FILTER, MP_LOG_WARN, "local_ratelimit: out of memory adding headers");
    return MP_FILTER_CONTINUE;
}

const struct mp_http_filter_ops mp_http_filter_local_ratelimit = {
    .name = "envoy.filters.http.local_ratelimit",
    .config_type = CONFIG_TYPE,
    .parse = hlrl_parse,
    .config_free = hlrl_free,
    .state_size = sizeof(struct hlrl_state),
    .on_request_headers = hlrl_on_request_headers,
    .on_response_headers = hlrl_on_response_headers,
};
