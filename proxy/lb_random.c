/* lb_random.c: uniformly random host from the worker's own RNG. */
#include "lb_random.h"

#include <stdlib.h>

#include "lb_hash.h"
#include "lb_hosts.h"
#include "mp_common.h"

struct random_shared {
    struct mp_host **hosts;
    size_t n;
};

static int random_create(struct mp_host *const *hosts, size_t n, const struct mp_lb_config *cfg,
                         void **shared, char **err)
{
    (void)cfg;
    (void)err;
    struct random_shared *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MP_ERR_NOMEM;
    if (mp_lb_hosts_copy(hosts, n, &s->hosts) != 0) {
        free(s);
        return MP_ERR_NOMEM;
    }
    s->n = n;
    *shared = s;
    return 0;
}

static void random_destroy(void *shared)
{
    struct random_shared *s = shared;
    if (s == NULL)
        return;
    free(s->hosts);
    free(s);
}

static int random_worker_new(const void *shared, struct mp_lb_worker_env *env, void **state)
{
    (void)shared;
    (void)env;
    *state = NULL; /* the worker's RNG in env is all it needs */
    return 0;
}

static void random_worker_free(void *state)
{
    (void)state;
}

static struct mp_host *random_pick(const void *shared, void *state, struct mp_lb_worker_env *env,
                                   const struct mp_lb_context *ctx, uint32_t attempt)
{
    (void)state;
    (void)ctx;
    (void)attempt;
    const struct random_shared *s = shared;
    return s->hosts[mp_lb_random_u64(env->rng) % s->n];
}

const struct mp_lb_ops mp_lb_random_ops = {
    .name = "RANDOM",
    .create = random_create,
    .destroy = random_destroy,
    .worker_new = random_worker_new,
    .worker_free = random_worker_free,
    .pick = random_pick,
};
