/*
 * lb_hosts.h: the host list that the simple load-balancing policies (round
 * robin, least request, random) keep as their shared state.
 */
#ifndef MP_LB_HOSTS_H
#define MP_LB_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

struct mp_host;

/**
 * Copies the pointers hosts[0..n) into a new array, *out; the caller owns it
 * and frees it with free() (the hosts themselves are not copied). Returns 0,
 * or MP_ERR_NOMEM with *out untouched.
 */
int mp_lb_hosts_copy(struct mp_host *const *hosts, size_t n, struct mp_host ***out);

/** True when not all of hosts[0..n) have the same weight (the policy must weigh its picks). */
bool mp_lb_hosts_weighted(struct mp_host *const *hosts, size_t n);

#endif
