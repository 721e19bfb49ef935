/*
 * lb_priority.h: Envoy's priority load, panic mode and priority choice.
 *
 * Each priority's health is min(100, overprovisioning_factor * healthy /
 * total); load is handed out from P0 down until 100% is spent, so P0 keeps
 * all traffic until fewer than 1/1.4 (~71%) of its hosts are healthy, then
 * the remainder fails over to P1, P2, ... Degraded hosts take what healthy
 * ones leave. A priority whose healthy+degraded share is below the panic
 * threshold balances over all its hosts; if no priority has any available
 * host, load is split by host count and every level panics.
 */
#ifndef MP_LB_PRIORITY_H
#define MP_LB_PRIORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_host_set;

struct mp_priority_load {
    size_t n;           /* number of priority levels (>= 1) */
    uint32_t *healthy;  /* percent of traffic to level i's healthy hosts */
    uint32_t *degraded; /* percent of traffic to level i's degraded hosts */
    bool *panic;        /* level i balances over all its hosts */
    bool total_panic;   /* no level has an available host */
};

/**
 * Computes the priority load of hs with the given panic threshold
 * (percent; 0 disables panic). Fills *out (free with
 * mp_lb_priority_load_clear). healthy[] + degraded[] sum to 100. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_lb_priority_load_compute(const struct mp_host_set *hs, uint32_t panic_threshold,
                                struct mp_priority_load *out);

/** Frees the arrays of l and zeroes it. */
void mp_lb_priority_load_clear(struct mp_priority_load *l);

/**
 * Chooses a priority for a hash (random or the request's hash key):
 * hash % 100 walks the healthy loads, then the degraded ones. Sets
 * *degraded when the pick falls in a degraded share. Returns the level.
 */
uint32_t mp_lb_priority_choose(const struct mp_priority_load *l, uint64_t hash, bool *degraded);

#endif
