/*
 * rbac_engines.h: what the HTTP and network RBAC filters share: an enforced
 * and a shadow engine built from a filter's rules / shadow_rules, their four
 * counters (registered once, on first use, and cached with an atomic
 * pointer so later requests take no lock), and the evaluation order (shadow
 * first, counted; then the enforced rules, counted, which decide).
 */
#ifndef MP_FILTER_RBAC_ENGINES_H
#define MP_FILTER_RBAC_ENGINES_H

#include <stdbool.h>

#include "proxy/rbac.h"

struct mp_stats;
struct mp_counter;

struct mp_rbac_engines {
    struct mp_rbac *rules;  /* NULL: nothing enforced */
    struct mp_rbac *shadow; /* NULL: no shadow rules */
};

struct mp_rbac_counters {
    struct mp_counter *allowed, *denied, *shadow_allowed, *shadow_denied;
};

/**
 * Builds e (zeroed by the caller) from a filter's rules and shadow_rules
 * (either may be NULL). has_matcher / has_shadow_matcher say whether the
 * filter set matcher / shadow_matcher, which meshproxy refuses. Returns 0,
 * or < 0 with *err naming the field; e then holds what was built and is
 * freed with mp_rbac_engines_clear.
 */
int mp_rbac_engines_from_proto(struct mp_rbac_engines *e, const Envoy__Config__Rbac__V3__RBAC *rules,
                               const Envoy__Config__Rbac__V3__RBAC *shadow, bool has_matcher,
                               bool has_shadow_matcher, char **err);

/** Frees both engines of e and zeroes it. */
void mp_rbac_engines_clear(struct mp_rbac_engines *e);

/**
 * The counters cached in *slot, registered in reg on the first call:
 * "<head><rules_prefix>allowed" / "denied" and
 * "<head><shadow_prefix>shadow_allowed" / "shadow_denied", head being
 * head_fmt formatted. Safe from any worker: the first to register wins, the
 * others' copies are dropped (they name the same counters). The result is
 * owned by *slot (free(*slot) at config teardown). Returns NULL when reg is
 * NULL or memory runs out (the request then goes uncounted).
 */
const struct mp_rbac_counters *mp_rbac_counters_get(_Atomic(struct mp_rbac_counters *) *slot,
                                                    struct mp_stats *reg, const char *rules_prefix,
                                                    const char *shadow_prefix,
                                                    const char *head_fmt, ...)
    __attribute__((format(printf, 5, 6)));

/**
 * Evaluates rq against e's shadow engine (counted only) and then its
 * enforced one (counted), on stats slot `slot`; st may be NULL (uncounted).
 * Returns whether the request is allowed: true when e enforces nothing. *res
 * gets the enforced engine's result (the denying policy), or is left alone
 * when there is none.
 */
bool mp_rbac_engines_evaluate(const struct mp_rbac_engines *e, const struct mp_rbac_counters *st,
                              unsigned slot, const struct mp_rbac_request *rq,
                              struct mp_rbac_result *res);

#endif
