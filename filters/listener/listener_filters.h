/*
 * listener_filters.h: a Listener's listener_filters, translated.
 *
 * Supported: envoy.filters.listener.tls_inspector (proxy/tls_inspector.h),
 * envoy.filters.listener.http_inspector (filters/listener/http_inspector.h)
 * and envoy.filters.listener.original_dst (the connection code reads
 * SO_ORIGINAL_DST), each with filter_disabled (the predicate Istio uses to
 * skip inspection on server-first ports), plus listener_filters_timeout and
 * continue_on_listener_filters_timeout. The order is the user's.
 */
#ifndef MP_LISTENER_FILTERS_H
#define MP_LISTENER_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envoy/config/listener/v3/listener.pb-c.h"

enum mp_lf_kind {
    MP_LF_TLS_INSPECTOR = 1,
    MP_LF_HTTP_INSPECTOR = 2,
    MP_LF_ORIGINAL_DST = 3,
};

/* ListenerFilterChainMatchPredicate. */
enum mp_lf_pred_kind {
    MP_LF_PRED_ANY,        /* any_match */
    MP_LF_PRED_OR,         /* or_match */
    MP_LF_PRED_AND,        /* and_match */
    MP_LF_PRED_NOT,        /* not_match: sub[0] */
    MP_LF_PRED_PORT_RANGE, /* destination_port_range [start, end) */
};

struct mp_lf_pred {
    enum mp_lf_pred_kind kind;
    struct mp_lf_pred *sub;
    size_t n_sub;
    int32_t start, end;
};

struct mp_listener_filter {
    enum mp_lf_kind kind;
    const char *name;             /* static: the Envoy extension name */
    struct mp_lf_pred *disabled;  /* filter_disabled, or NULL (always runs) */
    uint32_t initial_read_buffer; /* tls_inspector: initial_read_buffer_size (default 64 KiB) */
};

struct mp_listener_filters {
    struct mp_listener_filter *v;
    size_t n;
    uint64_t timeout_ms;      /* listener_filters_timeout; default 15000; 0 = none */
    bool continue_on_timeout; /* continue_on_listener_filters_timeout */
};

/**
 * Translates l's listener_filters into out (caller-provided; release with
 * mp_listener_filters_clear). Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL /
 * MP_ERR_UNSUPPORTED with *err naming the field ("listener_filters[1]:
 * unknown listener filter \"x\""). out is cleared on failure.
 */
int mp_listener_filters_translate(const Envoy__Config__Listener__V3__Listener *l,
                                  struct mp_listener_filters *out, char **err);

/** Releases what lf holds and zeroes it. */
void mp_listener_filters_clear(struct mp_listener_filters *lf);

/** Returns true when filter f runs for a connection to dst_port (its filter_disabled does not
 * match). */
bool mp_listener_filter_enabled(const struct mp_listener_filter *f, uint16_t dst_port);

/** Returns the filter of kind k in lf, or NULL when the listener does not have it. */
const struct mp_listener_filter *mp_listener_filters_find(const struct mp_listener_filters *lf,
                                                          enum mp_lf_kind k);

#endif
