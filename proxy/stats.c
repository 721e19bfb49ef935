/*
 * stats.c: the stats registry and per-slot storage.
 *
 * Storage: each writer slot has its own arena of 64-byte-aligned chunks of
 * cells. A counter or gauge takes one cell from every slot's arena when it is
 * registered; its handle points at those cells. So a worker's updates only
 * touch memory no other writer touches, and chunks never move, so a handle
 * stays valid while the registry grows. A histogram's cells (4.4 KB a slot)
 * are allocated by each slot's writer when it first records a value.
 */
#include "proxy/stats.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/stats_priv.h"
#include "proxy/stats_tags.h"

#define CHUNK_CELLS 4096u
#define MAX_WORKERS 4096u

const double mp_hist_prom_bounds[MP_HIST_PROM_BOUNDS] = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
};

struct arena {
    _Atomic uint64_t **chunks;
    size_t n_chunks;
    size_t used; /* cells used in the last chunk */
};

/*
 * Two locks, neither on the update path. reg_lock guards the name table and
 * the entry array, and is held only briefly, so a worker that registers a stat
 * lazily (e.g. a new response code) never waits for a render. read_lock
 * serialises readers (render, flush) with tag changes; it is always taken
 * before reg_lock.
 */
struct mp_stats {
    pthread_mutex_t reg_lock;
    pthread_mutex_t read_lock;
    unsigned n_workers;
    unsigned n_slots;
    struct arena *arenas; /* one per slot */
    struct mp_stat_entry **entries;
    size_t n_entries, cap_entries;
    uint32_t *table; /* open addressing: entry index + 1, 0 = empty */
    size_t table_cap;
    struct mp_stats_tagger *tagger;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Returns n cells (zeroed) from a slot's arena, or NULL. */
static _Atomic uint64_t *arena_take(struct arena *a, size_t n)
{
    if (a->n_chunks == 0 || a->used + n > CHUNK_CELLS) {
        _Atomic uint64_t **c = realloc(a->chunks, (a->n_chunks + 1) * sizeof(*c));
        if (!c)
            return NULL;
        a->chunks = c;
        _Atomic uint64_t *chunk = aligned_alloc(64, CHUNK_CELLS * sizeof(uint64_t));
        if (!chunk)
            return NULL;
        memset(chunk, 0, CHUNK_CELLS * sizeof(uint64_t));
        a->chunks[a->n_chunks++] = chunk;
        a->used = 0;
    }
    _Atomic uint64_t *p = a->chunks[a->n_chunks - 1] + a->used;
    a->used += n;
    return p;
}

static void entry_free(struct mp_stat_entry *e)
{
    if (!e)
        return;
    free(e->name);
    mp_stat_tags_clear(&e->tags);
    if (e->kind == MP_STAT_HISTOGRAM && e->h.hist)
        for (unsigned s = 0; s < e->h.hist->n_slots; s++)
            free(atomic_load_explicit(&e->h.hist->cell[s], memory_order_relaxed));
    free(e->h.counter); /* all three handle types are one malloc */
    free(e->flushed);
    free(e->interval);
    free(e);
}

void mp_stats_free(struct mp_stats *stats)
{
    if (!stats)
        return;
    for (size_t i = 0; i < stats->n_entries; i++)
        entry_free(stats->entries[i]);
    free(stats->entries);
    free(stats->table);
    if (stats->arenas) {
        for (unsigned s = 0; s < stats->n_slots; s++) {
            for (size_t c = 0; c < stats->arenas[s].n_chunks; c++)
                free(stats->arenas[s].chunks[c]);
            free(stats->arenas[s].chunks);
        }
        free(stats->arenas);
    }
    mp_stats_tagger_free(stats->tagger);
    pthread_mutex_destroy(&stats->reg_lock);
    pthread_mutex_destroy(&stats->read_lock);
    free(stats);
}

static uint64_t bytes_copied_fn(void *arg)
{
    (void)arg;
    return mp_buffer_bytes_copied();
}

static uint64_t bytes_proxied_fn(void *arg)
{
    (void)arg;
    return mp_buffer_bytes_proxied();
}

struct mp_stats *mp_stats_new(unsigned n_workers)
{
    if (n_workers == 0 || n_workers > MAX_WORKERS)
        return NULL;
    struct mp_stats *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    if (pthread_mutex_init(&st->reg_lock, NULL) != 0) {
        free(st);
        return NULL;
    }
    if (pthread_mutex_init(&st->read_lock, NULL) != 0) {
        pthread_mutex_destroy(&st->reg_lock);
        free(st);
        return NULL;
    }
    st->n_workers = n_workers;
    st->n_slots = n_workers + 2;
    st->arenas = calloc(st->n_slots, sizeof(*st->arenas));
    st->tagger = mp_stats_tagger_new(true);
    if (!st->arenas || !st->tagger)
        goto fail;
    if (mp_stats_register_fn(st, "meshproxy.bytes_copied", false, bytes_copied_fn, NULL) != 0 ||
        mp_stats_register_fn(st, "meshproxy.bytes_proxied", false, bytes_proxied_fn, NULL) != 0)
        goto fail;
    return st;
fail:
    mp_stats_free(st);
    return NULL;
}

unsigned mp_stats_slots(const struct mp_stats *stats)
{
    return stats->n_slots;
}

unsigned mp_stats_main_slot(const struct mp_stats *stats)
{
    return stats->n_workers;
}

unsigned mp_stats_aux_slot(const struct mp_stats *stats)
{
    return stats->n_workers + 1;
}

static void reg_lock(struct mp_stats *stats)
{
    pthread_mutex_lock(&stats->reg_lock);
}

static void reg_unlock(struct mp_stats *stats)
{
    pthread_mutex_unlock(&stats->reg_lock);
}

void mp_stats_read_lock(struct mp_stats *stats)
{
    pthread_mutex_lock(&stats->read_lock);
}

void mp_stats_read_unlock(struct mp_stats *stats)
{
    pthread_mutex_unlock(&stats->read_lock);
}

struct mp_stat_entry **mp_stats_entries_copy(struct mp_stats *stats, size_t *n)
{
    reg_lock(stats);
    size_t count = stats->n_entries;
    struct mp_stat_entry **v = malloc((count ? count : 1) * sizeof(*v));
    if (v && count)
        memcpy(v, stats->entries, count * sizeof(*v));
    reg_unlock(stats);
    *n = v ? count : 0;
    return v;
}

/* Finds name; returns the entry or NULL. reg_lock held. */
static struct mp_stat_entry *lookup(struct mp_stats *st, const char *name)
{
    if (!st->table_cap)
        return NULL;
    size_t mask = st->table_cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = st->table[i];
        if (!v)
            return NULL;
        if (strcmp(st->entries[v - 1]->name, name) == 0)
            return st->entries[v - 1];
    }
}

static int table_grow(struct mp_stats *st)
{
    size_t cap = st->table_cap ? st->table_cap * 2 : 64;
    uint32_t *t = calloc(cap, sizeof(*t));
    if (!t)
        return MP_ERR_NOMEM;
    for (size_t e = 0; e < st->n_entries; e++) {
        size_t i = hash_name(st->entries[e]->name) & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = (uint32_t)(e + 1);
    }
    free(st->table);
    st->table = t;
    st->table_cap = cap;
    return 0;
}

/* Adds e to the entry list and the table. reg_lock held. */
static int insert(struct mp_stats *st, struct mp_stat_entry *e)
{
    if ((st->n_entries + 1) * 2 > st->table_cap && table_grow(st) != 0)
        return MP_ERR_NOMEM;
    if (st->n_entries == st->cap_entries) {
        size_t cap = st->cap_entries ? st->cap_entries * 2 : 64;
        struct mp_stat_entry **n = realloc(st->entries, cap * sizeof(*n));
        if (!n)
            return MP_ERR_NOMEM;
        st->entries = n;
        st->cap_entries = cap;
    }
    size_t i = hash_name(e->name) & (st->table_cap - 1);
    while (st->table[i])
        i = (i + 1) & (st->table_cap - 1);
    st->entries[st->n_entries++] = e;
    st->table[i] = (uint32_t)st->n_entries;
    return 0;
}

/* Envoy replaces ':' (from addresses) in stat names with '_'. */
static char *normalize_name(const char *name)
{
    if (!name || !*name)
        return NULL;
    char *n = strdup(name);
    if (n)
        for (char *p = n; *p; p++)
            if (*p == ':')
                *p = '_';
    return n;
}

/* Makes an entry of kind with tags; cells are taken by the caller. reg_lock held. */
static struct mp_stat_entry *entry_new(struct mp_stats *st, char *name, enum mp_stat_kind kind)
{
    struct mp_stat_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->name = name;
    e->kind = kind;
    if (mp_stats_tagger_extract(st->tagger, name, &e->tags) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

/*
 * Finds or registers a stat of `kind`; handle_size is the size of the handle
 * struct before its cell[] array, cells the number of cells per slot.
 */
static struct mp_stat_entry *find_or_add(struct mp_stats *st, const char *raw_name,
                                         enum mp_stat_kind kind, size_t handle_size, size_t cells,
                                         enum mp_hist_unit unit)
{
    char *name = normalize_name(raw_name);
    if (!name)
        return NULL;
    reg_lock(st);
    struct mp_stat_entry *e = lookup(st, name);
    if (e) {
        free(name);
        if (e->kind != kind || e->fn || (kind == MP_STAT_HISTOGRAM && e->h.hist->unit != unit))
            e = NULL;
        reg_unlock(st);
        return e;
    }
    e = entry_new(st, name, kind);
    if (!e) {
        free(name);
        goto out;
    }
    /* Every handle type is {n_slots, ..., cell[n_slots]}; allocate the largest form. */
    struct mp_counter *h = calloc(1, handle_size + st->n_slots * sizeof(_Atomic uint64_t *));
    if (!h)
        goto fail;
    e->h.counter = h;
    if (kind == MP_STAT_HISTOGRAM) {
        /* cell[] stays NULL until each slot's first record. */
        struct mp_histogram *hist = e->h.hist;
        hist->n_slots = st->n_slots;
        hist->unit = unit;
        for (size_t i = 0; i < MP_HIST_PROM_BOUNDS; i++)
            hist->prom_bound[i] = (uint64_t)floor(mp_hist_prom_bounds[i] * mp_hist_unit_div(unit));
    } else {
        h->n_slots = st->n_slots;
        for (unsigned s = 0; s < st->n_slots; s++) {
            h->cell[s] = arena_take(&st->arenas[s], cells);
            if (!h->cell[s])
                goto fail;
        }
    }
    if (insert(st, e) != 0)
        goto fail;
    goto out;
fail:
    /* Cells already taken stay in the arenas (freed with the registry). */
    entry_free(e);
    e = NULL;
out:
    reg_unlock(st);
    return e;
}

struct mp_counter *mp_stats_counter(struct mp_stats *stats, const char *name)
{
    struct mp_stat_entry *e =
        find_or_add(stats, name, MP_STAT_COUNTER, offsetof(struct mp_counter, cell), 1, 0);
    return e ? e->h.counter : NULL;
}

struct mp_gauge *mp_stats_gauge(struct mp_stats *stats, const char *name)
{
    struct mp_stat_entry *e =
        find_or_add(stats, name, MP_STAT_GAUGE, offsetof(struct mp_gauge, cell), 1, 0);
    return e ? e->h.gauge : NULL;
}

struct mp_histogram *mp_stats_histogram(struct mp_stats *stats, const char *name,
                                        enum mp_hist_unit unit)
{
    if (unit != MP_HIST_MS_FROM_US && unit != MP_HIST_PLAIN)
        return NULL;
    struct mp_stat_entry *e =
        find_or_add(stats, name, MP_STAT_HISTOGRAM, offsetof(struct mp_histogram, cell), 0, unit);
    return e ? e->h.hist : NULL;
}

/* vsnprintf into a malloc'd string. */
static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

struct mp_counter *mp_stats_counterf(struct mp_stats *stats, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *name = vformat(fmt, ap);
    va_end(ap);
    struct mp_counter *c = name ? mp_stats_counter(stats, name) : NULL;
    free(name);
    return c;
}

struct mp_gauge *mp_stats_gaugef(struct mp_stats *stats, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *name = vformat(fmt, ap);
    va_end(ap);
    struct mp_gauge *g = name ? mp_stats_gauge(stats, name) : NULL;
    free(name);
    return g;
}

struct mp_histogram *mp_stats_histogramf(struct mp_stats *stats, enum mp_hist_unit unit,
                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *name = vformat(fmt, ap);
    va_end(ap);
    struct mp_histogram *h = name ? mp_stats_histogram(stats, name, unit) : NULL;
    free(name);
    return h;
}

int mp_stats_register_fn(struct mp_stats *stats, const char *raw_name, bool is_gauge,
                         mp_stats_value_fn fn, void *arg)
{
    if (!fn)
        return MP_ERR_INVAL;
    char *name = normalize_name(raw_name);
    if (!name)
        return raw_name && *raw_name ? MP_ERR_NOMEM : MP_ERR_INVAL;
    enum mp_stat_kind kind = is_gauge ? MP_STAT_GAUGE : MP_STAT_COUNTER;
    int rc = 0;
    /* Both locks: a render may be calling the old fn. */
    mp_stats_read_lock(stats);
    reg_lock(stats);
    struct mp_stat_entry *e = lookup(stats, name);
    if (e) {
        free(name);
        if (e->kind != kind || !e->fn) {
            rc = MP_ERR_INVAL;
        } else {
            e->fn = fn;
            e->fn_arg = arg;
        }
        goto out;
    }
    e = entry_new(stats, name, kind);
    if (!e) {
        free(name);
        rc = MP_ERR_NOMEM;
        goto out;
    }
    e->fn = fn;
    e->fn_arg = arg;
    rc = insert(stats, e);
    if (rc != 0)
        entry_free(e);
out:
    reg_unlock(stats);
    mp_stats_read_unlock(stats);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

uint64_t mp_counter_value(const struct mp_counter *c)
{
    uint64_t v = 0;
    if (!c)
        return 0;
    for (unsigned s = 0; s < c->n_slots; s++)
        v += atomic_load_explicit(c->cell[s], memory_order_relaxed);
    return v;
}

int64_t mp_gauge_value(const struct mp_gauge *g)
{
    uint64_t v = 0;
    if (!g)
        return 0;
    /* Slots hold two's-complement deltas; their wrapping sum is the value. */
    for (unsigned s = 0; s < g->n_slots; s++)
        v += atomic_load_explicit(g->cell[s], memory_order_relaxed);
    return (int64_t)v;
}

uint64_t mp_stat_entry_counter(const struct mp_stat_entry *e)
{
    return e->fn ? e->fn(e->fn_arg) : mp_counter_value(e->h.counter);
}

int64_t mp_stat_entry_gauge(const struct mp_stat_entry *e)
{
    return e->fn ? (int64_t)e->fn(e->fn_arg) : mp_gauge_value(e->h.gauge);
}

/* ---- histograms --------------------------------------------------------- */

#define SUB_COUNT (1u << MP_HIST_SUB_BITS)
/* Rounded up to whole cache lines for aligned_alloc. */
#define MP_HIST_CELLS_BYTES ((MP_HIST_CELLS * sizeof(uint64_t) + 63) & ~(size_t)63)

static inline unsigned bucket_index(uint64_t v)
{
    if (v < SUB_COUNT)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e >= MP_HIST_MAX_EXP)
        return MP_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (e - MP_HIST_SUB_BITS)) & (SUB_COUNT - 1);
    return ((e - MP_HIST_SUB_BITS + 1) << MP_HIST_SUB_BITS) + sub;
}

/* Lower bound and width of bucket i, in recorded units. */
static void bucket_range(unsigned i, double *lo, double *width)
{
    if (i < SUB_COUNT) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned e = (i >> MP_HIST_SUB_BITS) + MP_HIST_SUB_BITS - 1;
    unsigned sub = i & (SUB_COUNT - 1);
    *width = ldexp(1.0, (int)(e - MP_HIST_SUB_BITS));
    *lo = (SUB_COUNT + sub) * *width;
}

static inline void cell_add(_Atomic uint64_t *p, uint64_t n)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void mp_histogram_record(struct mp_histogram *h, unsigned slot, uint64_t v)
{
    if (!h)
        return;
    assert(slot < h->n_slots);
    _Atomic uint64_t *c = atomic_load_explicit(&h->cell[slot], memory_order_acquire);
    if (!c) {
        /* First value from this slot. Only this slot's writer stores the
         * pointer; release publishes the zeroed cells to readers. */
        c = aligned_alloc(64, MP_HIST_CELLS_BYTES);
        if (!c)
            return; /* the sample is lost, the process goes on */
        memset(c, 0, MP_HIST_CELLS_BYTES);
        atomic_store_explicit(&h->cell[slot], c, memory_order_release);
    }
    if (v > (UINT64_MAX >> 2))
        v = UINT64_MAX >> 2; /* keeps min's +1 and the sum from wrapping at once */
    cell_add(&c[MP_HIST_CELL_SUM], v);
    uint64_t mn = atomic_load_explicit(&c[MP_HIST_CELL_MIN], memory_order_relaxed);
    if (mn == 0 || v + 1 < mn)
        atomic_store_explicit(&c[MP_HIST_CELL_MIN], v + 1, memory_order_relaxed);
    if (v > atomic_load_explicit(&c[MP_HIST_CELL_MAX], memory_order_relaxed))
        atomic_store_explicit(&c[MP_HIST_CELL_MAX], v, memory_order_relaxed);
    unsigned p = 0;
    while (p < MP_HIST_PROM_BOUNDS && v > h->prom_bound[p])
        p++;
    cell_add(&c[MP_HIST_CELL_PROM + p], 1);
    cell_add(&c[MP_HIST_CELL_LOG + bucket_index(v)], 1);
}

void mp_histogram_merge(const struct mp_histogram *h, struct mp_hist_merged *m)
{
    memset(m, 0, sizeof(*m));
    uint64_t mn = 0;
    for (unsigned s = 0; s < h->n_slots; s++) {
        _Atomic uint64_t *c = atomic_load_explicit(&h->cell[s], memory_order_acquire);
        if (!c)
            continue;
        m->sum += atomic_load_explicit(&c[MP_HIST_CELL_SUM], memory_order_relaxed);
        uint64_t smin = atomic_load_explicit(&c[MP_HIST_CELL_MIN], memory_order_relaxed);
        if (smin && (!mn || smin < mn))
            mn = smin;
        uint64_t smax = atomic_load_explicit(&c[MP_HIST_CELL_MAX], memory_order_relaxed);
        if (smax > m->max)
            m->max = smax;
        for (unsigned i = 0; i <= MP_HIST_PROM_BOUNDS; i++)
            m->prom[i] += atomic_load_explicit(&c[MP_HIST_CELL_PROM + i], memory_order_relaxed);
        for (unsigned i = 0; i < MP_HIST_BUCKETS; i++)
            m->log[i] += atomic_load_explicit(&c[MP_HIST_CELL_LOG + i], memory_order_relaxed);
    }
    m->min = mn ? mn - 1 : 0;
    /* The count is the buckets' sum, so _count always equals the +Inf bucket
     * even while writers are mid-update. */
    for (unsigned i = 0; i <= MP_HIST_PROM_BOUNDS; i++)
        m->count += m->prom[i];
}

void mp_hist_log_quantiles(const uint64_t *log, uint64_t count, bool have_minmax, uint64_t min,
                           uint64_t max, const double *q, size_t n, double *out)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < MP_HIST_BUCKETS; i++)
        total += log[i];
    (void)count;
    for (size_t k = 0; k < n; k++) {
        double qq = q[k] < 0 ? 0 : q[k] > 1 ? 1 : q[k];
        double target = qq * (double)total, cum = 0, v = 0;
        for (unsigned i = 0; i < MP_HIST_BUCKETS; i++) {
            if (!log[i])
                continue;
            double lo, width;
            bucket_range(i, &lo, &width);
            if (cum + (double)log[i] >= target) {
                /* Spread the bucket's values evenly over its width. */
                v = lo + width * (target - cum) / (double)log[i];
                break;
            }
            cum += (double)log[i];
            v = lo + width;
        }
        if (have_minmax) {
            if (v < (double)min || qq == 0)
                v = (double)min;
            if (v > (double)max || qq == 1)
                v = (double)max;
        }
        out[k] = v;
    }
}

double mp_hist_unit_div(enum mp_hist_unit unit)
{
    return unit == MP_HIST_MS_FROM_US ? 1000.0 : 1.0;
}

uint64_t mp_histogram_count(const struct mp_histogram *h)
{
    uint64_t n = 0;
    if (!h)
        return 0;
    for (unsigned s = 0; s < h->n_slots; s++) {
        _Atomic uint64_t *c = atomic_load_explicit(&h->cell[s], memory_order_acquire);
        for (unsigned i = 0; c && i <= MP_HIST_PROM_BOUNDS; i++)
            n += atomic_load_explicit(&c[MP_HIST_CELL_PROM + i], memory_order_relaxed);
    }
    return n;
}

uint64_t mp_histogram_sum(const struct mp_histogram *h)
{
    uint64_t n = 0;
    if (!h)
        return 0;
    for (unsigned s = 0; s < h->n_slots; s++) {
        _Atomic uint64_t *c = atomic_load_explicit(&h->cell[s], memory_order_acquire);
        if (c)
            n += atomic_load_explicit(&c[MP_HIST_CELL_SUM], memory_order_relaxed);
    }
    return n;
}

int mp_histogram_quantiles(const struct mp_histogram *h, const double *q, size_t n, double *out)
{
    if (!h)
        return MP_ERR_NOTFOUND;
    struct mp_hist_merged *m = malloc(sizeof(*m));
    if (!m)
        return MP_ERR_NOMEM;
    mp_histogram_merge(h, m);
    int rc = MP_ERR_NOTFOUND;
    if (m->count) {
        mp_hist_log_quantiles(m->log, m->count, true, m->min, m->max, q, n, out);
        double div = mp_hist_unit_div(h->unit);
        for (size_t k = 0; k < n; k++)
            out[k] /= div;
        rc = 0;
    }
    free(m);
    return rc;
}

/* Whether any slot ever recorded into h (its cells are made on first record). */
static bool hist_written(const struct mp_histogram *h)
{
    for (unsigned s = 0; s < h->n_slots; s++)
        if (atomic_load_explicit(&h->cell[s], memory_order_acquire))
            return true;
    return false;
}

int mp_stats_flush(struct mp_stats *stats)
{
    int rc = 0;
    struct mp_hist_merged *m = malloc(sizeof(*m));
    if (!m)
        return MP_ERR_NOMEM;
    mp_stats_read_lock(stats);
    size_t n;
    struct mp_stat_entry **all = mp_stats_entries_copy(stats, &n);
    if (!all)
        rc = MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        struct mp_stat_entry *e = all[i];
        if (e->kind != MP_STAT_HISTOGRAM)
            continue;
        /* never recorded (most clusters of a large mesh): its interval is
         * empty, and 2 x MP_HIST_BUCKETS words a histogram would cost 17 KiB
         * of memory per idle cluster */
        if (!e->flushed && !hist_written(e->h.hist))
            continue;
        if (!e->flushed) {
            e->flushed = calloc(MP_HIST_BUCKETS, sizeof(uint64_t));
            e->interval = calloc(MP_HIST_BUCKETS, sizeof(uint64_t));
            if (!e->flushed || !e->interval) {
                free(e->flushed);
                free(e->interval);
                e->flushed = e->interval = NULL;
                rc = MP_ERR_NOMEM;
                continue;
            }
        }
        mp_histogram_merge(e->h.hist, m);
        for (unsigned b = 0; b < MP_HIST_BUCKETS; b++) {
            e->interval[b] = m->log[b] - e->flushed[b];
            e->flushed[b] = m->log[b];
        }
    }
    mp_stats_read_unlock(stats);
    free(all);
    free(m);
    return rc;
}

/* ---- tags --------------------------------------------------------------- */

/* Recomputes every entry's tags after the extractors changed. Both locks held. */
static int retag_all(struct mp_stats *st)
{
    int rc = 0;
    for (size_t i = 0; i < st->n_entries; i++) {
        struct mp_stat_tags t;
        if (mp_stats_tagger_extract(st->tagger, st->entries[i]->name, &t) != 0) {
            rc = MP_ERR_NOMEM;
            continue;
        }
        mp_stat_tags_clear(&st->entries[i]->tags);
        st->entries[i]->tags = t;
    }
    return rc;
}

int mp_stats_add_tag_regex(struct mp_stats *stats, const char *tag_name, const char *regex,
                           char **err)
{
    mp_stats_read_lock(stats);
    reg_lock(stats);
    int rc = mp_stats_tagger_add_regex(stats->tagger, tag_name, regex, err);
    if (rc == 0)
        rc = retag_all(stats);
    reg_unlock(stats);
    mp_stats_read_unlock(stats);
    return rc;
}

int mp_stats_add_fixed_tag(struct mp_stats *stats, const char *tag_name, const char *value)
{
    mp_stats_read_lock(stats);
    reg_lock(stats);
    int rc = mp_stats_tagger_add_fixed(stats->tagger, tag_name, value);
    if (rc == 0)
        rc = retag_all(stats);
    reg_unlock(stats);
    mp_stats_read_unlock(stats);
    return rc;
}

int mp_stats_use_default_tags(struct mp_stats *stats, bool on)
{
    mp_stats_read_lock(stats);
    reg_lock(stats);
    mp_stats_tagger_use_defaults(stats->tagger, on);
    int rc = retag_all(stats);
    reg_unlock(stats);
    mp_stats_read_unlock(stats);
    return rc;
}
