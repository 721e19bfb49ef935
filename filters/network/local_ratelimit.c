/*
 * local_ratelimit.c (network): a token per new connection; close when none.
 */
#include "local_ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.pb-c.h"
#include "proxy/conn.h"
#include "proxy/mp_common.h"
#include "proxy/stats.h"
#include "proxy/token_bucket_pb.h"

typedef Envoy__Extensions__Filters__Network__LocalRatelimit__V3__LocalRateLimit LocalRateLimit;

/*
 * Buckets named by share_key live in a process-wide list, keyed by the key
 * and the bucket's parameters, and counted by the configs that use them. The
 * list is touched only when configs are parsed and freed (never per
 * connection), so a mutex is fine here.
 */
struct shared_bucket {
    struct shared_bucket *next;
    char *key;
    uint64_t max_tokens, tokens_per_fill, fill_interval_ns;
    unsigned refs;
    struct mp_token_bucket bucket;
};

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared_bucket *shared_list;

static mp_token_bucket_clock_fn bucket_clock;
static void *bucket_clock_arg;

struct nlrl_config {
    char *stat_prefix;
    bool enabled; /* runtime_enabled.default_value; true when unset */
    struct mp_token_bucket own;
    struct shared_bucket *shared; /* share_key set: the bucket in use; else NULL */
    struct mp_token_bucket *bucket;
    /* registered on the first connection, by whichever worker sees it */
    _Atomic(struct mp_counter *) rate_limited;
};

void mp_network_local_ratelimit_set_clock(mp_token_bucket_clock_fn clock, void *arg)
{
    bucket_clock = clock;
    bucket_clock_arg = arg;
}

/* Finds or makes the shared bucket for key with proto's parameters (one reference). */
static struct shared_bucket *shared_get(const char *key, const struct mp_token_bucket *params)
{
    pthread_mutex_lock(&shared_mu);
    struct shared_bucket *sb = shared_list;
    for (; sb; sb = sb->next)
        if (strcmp(sb->key, key) == 0 && sb->max_tokens == params->max_tokens &&
            sb->tokens_per_fill == params->tokens_per_fill &&
            sb->fill_interval_ns == params->fill_interval_ns)
            break;
    if (sb) {
        sb->refs++;
    } else if ((sb = calloc(1, sizeof(*sb))) && (sb->key = strdup(key))) {
        sb->max_tokens = params->max_tokens;
        sb->tokens_per_fill = params->tokens_per_fill;
        sb->fill_interval_ns = params->fill_interval_ns;
        sb->refs = 1;
        /* a new full bucket with the same parameters and clock */
        mp_token_bucket_init(&sb->bucket, params->max_tokens, params->tokens_per_fill,
                             params->fill_interval_ns, params->clock, params->clock_arg);
        sb->next = shared_list;
        shared_list = sb;
    } else {
        free(sb);
        sb = NULL;
    }
    pthread_mutex_unlock(&shared_mu);
    return sb;
}

static void shared_put(struct shared_bucket *sb)
{
    if (!sb)
        return;
    pthread_mutex_lock(&shared_mu);
    if (--sb->refs == 0) {
        struct shared_bucket **pp = &shared_list;
        while (*pp != sb)
            pp = &(*pp)->next;
        *pp = sb->next;
        free(sb->key);
        free(sb);
    }
    pthread_mutex_unlock(&shared_mu);
}

static void nlrl_free(void *p)
{
    struct nlrl_config *cfg = p;
    if (!cfg)
        return;
    shared_put(cfg->shared);
    free(cfg->stat_prefix);
    free(cfg);
}

static int nlrl_parse(const uint8_t *data, size_t len, void **out, char **err)
{
    *out = NULL;
    if (!data && len == 0)
        return mp_set_err(err, "typed_config is required");
    LocalRateLimit *pb =
        envoy__extensions__filters__network__local_ratelimit__v3__local_rate_limit__unpack(
            NULL, len, data);
    if (!pb)
        return mp_set_err(err, "invalid LocalRateLimit");
    int rc = MP_ERR_INVAL;
    struct nlrl_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    if (!pb->stat_prefix || !*pb->stat_prefix) {
        mp_set_err(err, "stat_prefix: must not be empty");
        goto out;
    }
    if (!pb->token_bucket) {
        mp_set_err(err, "token_bucket: is required");
        goto out;
    }
    if (mp_token_bucket_from_proto(&cfg->own, pb->token_bucket, bucket_clock, bucket_clock_arg,
                                   err) < 0) {
        mp_err_prefix(err, "token_bucket");
        goto out;
    }
    cfg->enabled = true;
    if (pb->runtime_enabled) {
        if (!pb->runtime_enabled->default_value) {
            mp_set_err(err, "runtime_enabled.default_value: is required");
            goto out;
        }
        cfg->enabled = pb->runtime_enabled->default_value->value;
    }
    cfg->stat_prefix = strdup(pb->stat_prefix);
    if (!cfg->stat_prefix) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    cfg->bucket = &cfg->own;
    if (pb->share_key && *pb->share_key) {
        cfg->shared = shared_get(pb->share_key, &cfg->own);
        if (!cfg->shared) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        cfg->bucket = &cfg->shared->bucket;
    }
    atomic_init(&cfg->rate_limited, NULL);
    *out = cfg;
    cfg = NULL;
    rc = 0;
out:
    if (rc == MP_ERR_NOMEM)
        mp_set_err(err, "out of memory");
    nlrl_free(cfg);
    envoy__extensions__filters__network__local_ratelimit__v3__local_rate_limit__free_unpacked(pb,
                                                                                              NULL);
    return rc;
}

static struct mp_counter *rate_limited_counter(struct nlrl_config *cfg, struct mp_conn *c)
{
    struct mp_counter *ctr = atomic_load_explicit(&cfg->rate_limited, memory_order_acquire);
    if (!ctr && c->w && c->w->stats) {
        /* registering a name twice returns the same handle, so a race is harmless */
        ctr = mp_stats_counterf(c->w->stats, "local_rate_limit.%s.rate_limited", cfg->stat_prefix);
        atomic_store_explicit(&cfg->rate_limited, ctr, memory_order_release);
    }
    return ctr;
}

static int nlrl_on_new_connection(const void *config, struct mp_conn *c)
{
    /* the config is shared and immutable except for its atomics */
    struct nlrl_config *cfg = (struct nlrl_config *)config;
    struct mp_counter *ctr = rate_limited_counter(cfg, c);
    if (!cfg->enabled || mp_token_bucket_try_take(cfg->bucket, 1))
        return MP_NETWORK_FILTER_CONTINUE;
    if (ctr && c->w)
        mp_counter_inc(ctr, c->w->index, 1);
    return MP_NETWORK_FILTER_CLOSE;
}

const struct mp_network_filter_ops mp_network_filter_local_ratelimit = {
    .name = "envoy.filters.network.local_ratelimit",
    .config_type = "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
    .parse = nlrl_parse,
    .config_free = nlrl_free,
    .on_new_connection = nlrl_on_new_connection,
};
