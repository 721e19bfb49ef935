/* rbac_engines.c: the RBAC filters' shared engines, counters and verdict
 * order (see rbac_engines.h). */
#include "rbac_engines.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/mp_common.h"
#include "proxy/stats.h"

int mp_rbac_engines_from_proto(struct mp_rbac_engines *e, const Envoy__Config__Rbac__V3__RBAC *rules,
                               const Envoy__Config__Rbac__V3__RBAC *shadow, bool has_matcher,
                               bool has_shadow_matcher, char **err)
{
    if (has_matcher)
        return mp_set_err(err, "matcher: the RBAC matcher API is not supported by meshproxy; use "
                               "rules");
    if (has_shadow_matcher)
        return mp_set_err(err, "shadow_matcher: the RBAC matcher API is not supported by "
                               "meshproxy; use shadow_rules");
    int rc;
    if (rules) {
        rc = mp_rbac_from_proto(rules, &e->rules, err);
        if (rc < 0) {
            mp_err_prefix(err, "rules");
            return rc;
        }
    }
    if (shadow) {
        rc = mp_rbac_from_proto(shadow, &e->shadow, err);
        if (rc < 0) {
            mp_err_prefix(err, "shadow_rules");
            return rc;
        }
    }
    return 0;
}

void mp_rbac_engines_clear(struct mp_rbac_engines *e)
{
    mp_rbac_free(e->rules);
    mp_rbac_free(e->shadow);
    e->rules = e->shadow = NULL;
}

const struct mp_rbac_counters *mp_rbac_counters_get(_Atomic(struct mp_rbac_counters *) *slot,
                                                    struct mp_stats *reg, const char *rules_prefix,
                                                    const char *shadow_prefix,
                                                    const char *head_fmt, ...)
{
    struct mp_rbac_counters *st = atomic_load_explicit(slot, memory_order_acquire);
    if (st || !reg)
        return st;
    va_list ap;
    va_start(ap, head_fmt);
    char *head = NULL;
    int n = vasprintf(&head, head_fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    st = calloc(1, sizeof(*st));
    if (!st) {
        free(head);
        return NULL;
    }
    st->allowed = mp_stats_counterf(reg, "%s%sallowed", head, rules_prefix);
    st->denied = mp_stats_counterf(reg, "%s%sdenied", head, rules_prefix);
    st->shadow_allowed = mp_stats_counterf(reg, "%s%sshadow_allowed", head, shadow_prefix);
    st->shadow_denied = mp_stats_counterf(reg, "%s%sshadow_denied", head, shadow_prefix);
    free(head);
    struct mp_rbac_counters *expected = NULL;
    if (!atomic_compare_exchange_strong(slot, &expected, st)) {
        free(st); /* another worker registered the same handles first */
        return expected;
    }
    return st;
}

bool mp_rbac_engines_evaluate(const struct mp_rbac_engines *e, const struct mp_rbac_counters *st,
                              unsigned slot, const struct mp_rbac_request *rq,
                              struct mp_rbac_result *res)
{
    if (e->shadow) {
        struct mp_rbac_result sr;
        mp_rbac_evaluate(e->shadow, rq, &sr);
        if (st)
            mp_counter_inc(sr.allowed ? st->shadow_allowed : st->shadow_denied, slot, 1);
    }
    if (!e->rules)
        return true;
    mp_rbac_evaluate(e->rules, rq, res);
    if (st)
        mp_counter_inc(res->allowed ? st->allowed : st->denied, slot, 1);
    return res->allowed;
}
