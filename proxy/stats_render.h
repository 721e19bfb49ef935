/*
 * stats_render.h: the registry as Envoy's admin shows it: /stats text,
 * /stats?format=json and /stats/prometheus.
 */
#ifndef MP_STATS_RENDER_H
#define MP_STATS_RENDER_H

#include <stdbool.h>

#include "proxy/buffer.h"
#include "proxy/stats.h"

enum mp_stats_format {
    MP_STATS_FORMAT_TEXT = 0,   /* "name: value", sorted; histograms as P0(i,c) P25(i,c) ... */
    MP_STATS_FORMAT_JSON,       /* {"stats":[...]} as Envoy's /stats?format=json */
    MP_STATS_FORMAT_PROMETHEUS, /* text exposition format 0.0.4 */
};

struct mp_stats_render_opts {
    const char *filter; /* PCRE2 regex on the full stat name, or NULL for all */
    bool used_only;     /* only stats that were ever written (non-zero / recorded) */
};

/**
 * Appends the registry's stats in the given format to out. opts may be NULL.
 * Returns 0; MP_ERR_INVAL with *err set (caller frees) when opts->filter is
 * not a valid regex; MP_ERR_NOMEM (out may then hold part of the output).
 */
int mp_stats_render(struct mp_stats *stats, enum mp_stats_format fmt,
                    const struct mp_stats_render_opts *opts, struct mp_buffer *out, char **err);

/**
 * Like mp_stats_render into a NUL-terminated malloc'd string (caller frees),
 * its length in *len_out when len_out is not NULL. Returns NULL on error
 * (*err set for a bad filter).
 */
char *mp_stats_render_string(struct mp_stats *stats, enum mp_stats_format fmt,
                             const struct mp_stats_render_opts *opts, size_t *len_out, char **err);

/**
 * Serves an admin stats path: `/stats`, `/stats?format=json`,
 * `/stats?format=prometheus`, `/stats/prometheus`, with `filter=<regex>`
 * (percent-decoded) and `usedonly` query parameters. Appends the body to out
 * and sets *content_type to a static string. Returns 0; MP_ERR_NOTFOUND when
 * the path is not a stats path; MP_ERR_INVAL with *err set for a bad query
 * (unknown format, bad regex), to answer 400; MP_ERR_NOMEM.
 */
int mp_stats_admin_handle(struct mp_stats *stats, const char *path_and_query, struct mp_buffer *out,
                          const char **content_type, char **err);

/**
 * Sets every counter of the registry to zero (admin POST /reset_counters;
 * computed counters, gauges and histograms are left alone). Each writer
 * slot is stored to once: an increment racing the reset on a worker may keep
 * that slot's pre-reset value (no lock is taken on the data path, so the
 * reset is as exact as a plain store allows). Returns 0 or MP_ERR_NOMEM.
 */
int mp_stats_reset_counters(struct mp_stats *stats);

#endif
