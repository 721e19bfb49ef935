/*
 * stats_priv.h: the registry's insides, shared by stats.c and stats_render.c
 * only. Other files use stats.h.
 */
#ifndef MP_STATS_PRIV_H
#define MP_STATS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/stats.h"
#include "proxy/stats_tags.h"

enum mp_stat_kind {
    MP_STAT_COUNTER = 0,
    MP_STAT_GAUGE = 1,
    MP_STAT_HISTOGRAM = 2,
};

struct mp_stat_entry {
    char *name;
    enum mp_stat_kind kind;
    mp_stats_value_fn fn; /* non-NULL: a computed counter/gauge (no handle) */
    void *fn_arg;
    struct mp_stat_tags tags;
    union {
        struct mp_counter *counter;
        struct mp_gauge *gauge;
        struct mp_histogram *hist;
    } h;
    uint64_t *flushed;  /* histogram: merged log buckets at the last flush */
    uint64_t *interval; /* histogram: log buckets between the last two flushes */
};

/* A histogram summed over slots. */
struct mp_hist_merged {
    uint64_t count, sum, min, max; /* min/max valid when count > 0 */
    uint64_t prom[MP_HIST_PROM_BOUNDS + 1];
    uint64_t log[MP_HIST_BUCKETS];
};

/*
 * An entry's name, kind and handle never change once registered, and entries
 * live until mp_stats_free. Its tags, fn and interval change only under the
 * read lock, which readers hold while they look at them.
 */

/** Takes the readers' lock (render and flush; tag changes wait for it). */
void mp_stats_read_lock(struct mp_stats *stats);

/** Releases the readers' lock. */
void mp_stats_read_unlock(struct mp_stats *stats);

/**
 * Returns a malloc'd copy of the entry pointers (registration order), their
 * count in *n; the caller frees the array. NULL when memory runs out.
 */
struct mp_stat_entry **mp_stats_entries_copy(struct mp_stats *stats, size_t *n);

/** Returns a counter entry's merged value (calls fn for computed ones). */
uint64_t mp_stat_entry_counter(const struct mp_stat_entry *e);

/** Returns a gauge entry's merged value. */
int64_t mp_stat_entry_gauge(const struct mp_stat_entry *e);

/** Sums histogram h over its slots into *m. */
void mp_histogram_merge(const struct mp_histogram *h, struct mp_hist_merged *m);

/**
 * Quantiles of log-linear bucket counts `log` (total values `count`) into
 * out, in recorded units; clamped to [min, max] when have_minmax.
 */
void mp_hist_log_quantiles(const uint64_t *log, uint64_t count, bool have_minmax, uint64_t min,
                           uint64_t max, const double *q, size_t n, double *out);

/** Returns recorded units per shown unit (1000 for MP_HIST_MS_FROM_US): shown = recorded / div. */
double mp_hist_unit_div(enum mp_hist_unit unit);

/** Envoy's default Prometheus bucket bounds, in shown units. */
extern const double mp_hist_prom_bounds[MP_HIST_PROM_BOUNDS];

#endif
