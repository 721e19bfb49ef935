/*
 * lb_test_hosts.h: builds host sets for the load-balancer unit tests.
 * Header-only so each test file stays one file; every function is static.
 */
#ifndef MP_LB_TEST_HOSTS_H
#define MP_LB_TEST_HOSTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"

struct test_host_spec {
    uint32_t weight; /* 0 -> 1 */
    uint32_t priority;
    enum mp_host_health health;
};

/*
 * Makes a host set of n hosts 10.0.<i/250>.<i%250+1>:8080 (so addresses are
 * stable per index), with specs[i] when specs is non-NULL.
 */
static inline struct mp_host_set *test_host_set(size_t n, const struct test_host_spec *specs)
{
    struct mp_host_set *hs = mp_host_set_new();
    if (hs == NULL)
        return NULL;
    hs->hosts = calloc(n ? n : 1, sizeof(*hs->hosts));
    hs->localities = calloc(1, sizeof(*hs->localities));
    hs->localities[0].locality.region = strdup("");
    hs->localities[0].locality.zone = strdup("");
    hs->localities[0].locality.sub_zone = strdup("");
    hs->n_localities = 1;
    for (size_t i = 0; i < n; i++) {
        struct mp_host *h = &hs->hosts[hs->n_hosts++];
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->addr;
        char ip[32], buf[64];
        snprintf(ip, sizeof(ip), "10.0.%zu.%zu", i / 250, i % 250 + 1);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(8080);
        inet_pton(AF_INET, ip, &sin->sin_addr);
        h->addr_len = sizeof(*sin);
        h->addr_str = strdup(mp_host_addr_format(&h->addr, buf, sizeof(buf)));
        h->hostname = strdup("");
        h->weight = specs != NULL && specs[i].weight ? specs[i].weight : 1;
        h->priority = specs != NULL ? specs[i].priority : 0;
        h->health = specs != NULL ? specs[i].health : MP_HOST_HEALTHY;
    }
    mp_host_set_finish(hs);
    return hs;
}

/* Removes host i from a not-yet-shared host set (addresses of the rest are kept). */
static inline void test_host_set_remove(struct mp_host_set *hs, size_t i)
{
    free(hs->hosts[i].addr_str);
    free(hs->hosts[i].hostname);
    memmove(&hs->hosts[i], &hs->hosts[i + 1], (hs->n_hosts - i - 1) * sizeof(hs->hosts[0]));
    hs->n_hosts--;
    mp_host_set_finish(hs);
}

/* Default LB config for a policy (what mp_cluster_new would give). */
static inline struct mp_lb_config test_lb_config(enum mp_lb_policy policy)
{
    struct mp_cluster *c = mp_cluster_new("t");
    struct mp_lb_config cfg = c->lb;
    mp_cluster_free(c);
    cfg.policy = policy;
    return cfg;
}

/* Finds a host by its address string, or NULL. */
static inline const struct mp_host *test_find_host(const struct mp_host_set *hs, const char *addr)
{
    for (size_t i = 0; i < hs->n_hosts; i++)
        if (strcmp(hs->hosts[i].addr_str, addr) == 0)
            return &hs->hosts[i];
    return NULL;
}

#endif
