/*
 * stats.h: Envoy-style counters, gauges and histograms, written per thread
 * without locks and merged when read.
 *
 * A registry has one writer slot per worker plus a slot for the main thread
 * and one for an auxiliary thread (grpc). Each stat keeps one cell (or, for a
 * histogram, one run of cells, allocated by the slot's first record) per
 * slot, in per-slot memory, so a worker only
 * ever writes its own cache lines: an increment is a relaxed load and store
 * with no lock and no read-modify-write. Readers (the admin thread) sum the
 * slots with relaxed loads.
 *
 * Stats are registered by name at configuration time; registering a name
 * again returns the same handle, so handles survive configuration swaps and
 * counts carry on. Handles stay valid until mp_stats_free. Registration takes
 * a short mutex (a worker may register lazily, e.g. a new response code, and
 * does not wait for a render in progress); rendering and flushing take a
 * separate readers' mutex. The update functions below never lock.
 *
 * Names follow Envoy (`cluster.<name>.upstream_rq_total`,
 * `http.<stat_prefix>.downstream_rq_2xx`, `listener.<addr>.downstream_cx_active`);
 * Envoy's default tag extraction turns them into Prometheus families with
 * labels (see stats_tags.h). A ':' in a name is replaced by '_' as Envoy does.
 *
 * Histograms record integers. A histogram of unit MP_HIST_MS_FROM_US records
 * microseconds and is shown in milliseconds (Envoy's unit for *_time stats);
 * MP_HIST_PLAIN values are shown as recorded (bytes, counts).
 */
#ifndef MP_STATS_H
#define MP_STATS_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_stats;

enum mp_hist_unit {
    MP_HIST_MS_FROM_US = 0, /* record microseconds, show milliseconds */
    MP_HIST_PLAIN = 1,      /* show values as recorded */
};

/* Log-linear histogram layout: values below 16 exact, then 16 linear
 * sub-buckets per power of two (bucket width <= 1/16 of its value), up to
 * 2^36 (about 19 hours in microseconds); larger values land in the last bucket. */
#define MP_HIST_SUB_BITS 4u
#define MP_HIST_MAX_EXP  36u
#define MP_HIST_BUCKETS  ((MP_HIST_MAX_EXP - MP_HIST_SUB_BITS + 1u) << MP_HIST_SUB_BITS)

/* Envoy's default Prometheus bucket bounds (in shown units), plus +Inf. */
#define MP_HIST_PROM_BOUNDS 19u

/* Per-slot cells of a histogram, in order. */
enum {
    MP_HIST_CELL_SUM = 0,
    MP_HIST_CELL_MIN = 1, /* stored as value + 1 so 0 means "none yet" */
    MP_HIST_CELL_MAX = 2,
    MP_HIST_CELL_PROM = 3, /* MP_HIST_PROM_BOUNDS + 1 non-cumulative counts */
    MP_HIST_CELL_LOG = MP_HIST_CELL_PROM + MP_HIST_PROM_BOUNDS + 1,
    MP_HIST_CELLS = MP_HIST_CELL_LOG + MP_HIST_BUCKETS,
};

/* Handles: one cell pointer per slot. Fields are read by the inline updaters only. */
struct mp_counter {
    unsigned n_slots;
    _Atomic uint64_t *cell[];
};

struct mp_gauge {
    unsigned n_slots;
    _Atomic uint64_t *cell[]; /* int64 deltas stored as uint64 */
};

struct mp_histogram {
    unsigned n_slots;
    enum mp_hist_unit unit;
    uint64_t prom_bound[MP_HIST_PROM_BOUNDS]; /* upper bounds in recorded units */
    /* MP_HIST_CELLS each, allocated by the slot's writer on its first record
     * (most histograms are never written by most workers: a sidecar knows
     * every cluster in the mesh but talks to few). */
    _Atomic uint64_t *_Atomic cell[];
};

/**
 * Makes a registry with n_workers worker slots (0 .. n_workers-1) plus the
 * main-thread and aux slots. Also registers the meshproxy.bytes_copied and
 * meshproxy.bytes_proxied counters read from buffer.h. Returns NULL when
 * memory runs out or n_workers is 0 or above 4096. Free with mp_stats_free.
 */
struct mp_stats *mp_stats_new(unsigned n_workers);

/** Frees the registry and every handle it gave out. NULL is a no-op. */
void mp_stats_free(struct mp_stats *stats);

/** Returns the number of writer slots (n_workers + 2). */
unsigned mp_stats_slots(const struct mp_stats *stats);

/** Returns the slot the main thread writes with (n_workers). */
unsigned mp_stats_main_slot(const struct mp_stats *stats);

/** Returns the slot an auxiliary thread (grpc) writes with (n_workers + 1). */
unsigned mp_stats_aux_slot(const struct mp_stats *stats);

/**
 * Returns the counter called name, registering it (at 0) when new. The same
 * name always gives the same handle. Returns NULL when memory runs out or the
 * name is empty or already registered as another kind. The registry owns the
 * handle.
 */
struct mp_counter *mp_stats_counter(struct mp_stats *stats, const char *name);

/** mp_stats_counter with a printf-formatted name. */
struct mp_counter *mp_stats_counterf(struct mp_stats *stats, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Like mp_stats_counter, for gauges. */
struct mp_gauge *mp_stats_gauge(struct mp_stats *stats, const char *name);

/** mp_stats_gauge with a printf-formatted name. */
struct mp_gauge *mp_stats_gaugef(struct mp_stats *stats, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Like mp_stats_counter, for histograms. Registering an existing histogram
 * with another unit returns NULL.
 */
struct mp_histogram *mp_stats_histogram(struct mp_stats *stats, const char *name,
                                        enum mp_hist_unit unit);

/** mp_stats_histogram with a printf-formatted name. */
struct mp_histogram *mp_stats_histogramf(struct mp_stats *stats, enum mp_hist_unit unit,
                                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A value computed when stats are read (e.g. totals kept elsewhere). */
typedef uint64_t (*mp_stats_value_fn)(void *arg);

/**
 * Registers a counter (is_gauge false) or gauge whose value is fn(arg), called
 * on the reading thread at render time with the readers' mutex held (fn must
 * not render, flush or change tags). Registering the name again replaces
 * fn/arg. Returns 0, MP_ERR_NOMEM, or MP_ERR_INVAL (empty name, or the name is
 * a stat of another kind).
 */
int mp_stats_register_fn(struct mp_stats *stats, const char *name, bool is_gauge,
                         mp_stats_value_fn fn, void *arg);

/** Adds n to counter c from writer slot `slot`. A NULL counter is a no-op. */
static inline void mp_counter_inc(struct mp_counter *c, unsigned slot, uint64_t n)
{
    if (!c)
        return;
    assert(slot < c->n_slots);
    /* One writer per slot: a plain load + store, no locked RMW. */
    _Atomic uint64_t *p = c->cell[slot];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/** Adds n to gauge g from writer slot `slot`. A NULL gauge is a no-op. */
static inline void mp_gauge_add(struct mp_gauge *g, unsigned slot, int64_t n)
{
    if (!g)
        return;
    assert(slot < g->n_slots);
    _Atomic uint64_t *p = g->cell[slot];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + (uint64_t)n,
                          memory_order_relaxed);
}

/** Subtracts n from gauge g from writer slot `slot`. */
static inline void mp_gauge_sub(struct mp_gauge *g, unsigned slot, int64_t n)
{
    mp_gauge_add(g, slot, -n);
}

/**
 * Sets slot `slot`'s part of gauge g to v. The gauge's value is the sum over
 * slots, so a gauge that is set (rather than added to) should be written from
 * one slot only, usually the main slot.
 */
static inline void mp_gauge_set(struct mp_gauge *g, unsigned slot, int64_t v)
{
    if (!g)
        return;
    assert(slot < g->n_slots);
    atomic_store_explicit(g->cell[slot], (uint64_t)v, memory_order_relaxed);
}

/**
 * Records one value (microseconds for MP_HIST_MS_FROM_US) from slot `slot`.
 * A slot's first record allocates its cells (4.4 KB, once); if that fails the
 * value is dropped. NULL is a no-op.
 */
void mp_histogram_record(struct mp_histogram *h, unsigned slot, uint64_t value);

/** Returns counter c summed over all slots (0 for NULL). */
uint64_t mp_counter_value(const struct mp_counter *c);

/** Returns gauge g summed over all slots (0 for NULL). */
int64_t mp_gauge_value(const struct mp_gauge *g);

/** Returns the number of values histogram h has recorded, over all slots. */
uint64_t mp_histogram_count(const struct mp_histogram *h);

/** Returns the sum of values histogram h has recorded, in recorded units. */
uint64_t mp_histogram_sum(const struct mp_histogram *h);

/**
 * Computes quantiles q[0..n) (each in [0, 1]) of everything h has recorded,
 * into out[0..n), in shown units (ms for MP_HIST_MS_FROM_US). Values are
 * interpolated inside log-linear buckets and clamped to the exact minimum and
 * maximum seen (so q = 0 and q = 1 are exact). Returns 0, or MP_ERR_NOTFOUND
 * when nothing was recorded (out untouched).
 */
int mp_histogram_quantiles(const struct mp_histogram *h, const double *q, size_t n, double *out);

/**
 * Closes a stats interval, as Envoy's stats flush does: each histogram's
 * "interval" values (shown by the /stats renderer beside the cumulative ones)
 * become what was recorded between the previous flush and this one. Call from
 * the main thread on a timer (Envoy's default is every 5 s). Returns 0 or
 * MP_ERR_NOMEM (intervals then keep their old values).
 */
int mp_stats_flush(struct mp_stats *stats);

/**
 * Adds a custom tag extractor, as bootstrap stats_config.stats_tags does:
 * `regex` (PCRE2) is applied to stat names before the default extractors;
 * its first capture group is removed from the name and its second (or the
 * first, when there is one group) becomes the value of tag `tag_name`.
 * Tags of stats already registered are recomputed. Returns 0, or
 * MP_ERR_INVAL with *err set (caller frees) when the regex does not compile,
 * MP_ERR_NOMEM.
 */
int mp_stats_add_tag_regex(struct mp_stats *stats, const char *tag_name, const char *regex,
                           char **err);

/**
 * Adds a fixed tag (stats_config.stats_tags with fixed_value) put on every
 * stat. Returns 0 or MP_ERR_NOMEM/MP_ERR_INVAL.
 */
int mp_stats_add_fixed_tag(struct mp_stats *stats, const char *tag_name, const char *value);

/**
 * Turns Envoy's default tag extractors on or off (stats_config.use_all_default_tags,
 * default on). Returns 0 or MP_ERR_NOMEM (tags left as they were).
 */
int mp_stats_use_default_tags(struct mp_stats *stats, bool on);

#endif
