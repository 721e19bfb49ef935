/*
 * stats_render.c: /stats text and JSON, /stats/prometheus.
 *
 * Output is formatted into one malloc'd string (open_memstream), which is
 * then handed to the caller's buffer as an external slice, so the rendered
 * text is never copied again.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "proxy/stats_render.h"

#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/stats_priv.h"
#include "proxy/stats_tags.h"

/* Envoy's /stats quantiles and their labels. */
static const double quantiles[] = {0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1};
static const char *const quantile_names[] = {"0",  "25", "50",   "75",   "90",
                                             "95", "99", "99.5", "99.9", "100"};
#define NQ (sizeof(quantiles) / sizeof(quantiles[0]))

struct selection {
    struct mp_stat_entry **v;
    size_t n;
};

/* Picks the entries that pass the filter and used-only test. Read lock held. */
static int select_entries(struct mp_stats *stats, const struct mp_stats_render_opts *opts,
                          struct selection *sel, char **err)
{
    size_t n;
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    sel->n = 0;
    /* Filtered in place: the copy becomes the selection. */
    struct mp_stat_entry **all = mp_stats_entries_copy(stats, &n);
    sel->v = all;
    if (!sel->v)
        return MP_ERR_NOMEM;
    if (opts && opts->filter && *opts->filter) {
        int code;
        PCRE2_SIZE off;
        re = pcre2_compile((PCRE2_SPTR)opts->filter, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
        if (!re && code == PCRE2_ERROR_HEAP_FAILED) {
            free(sel->v);
            sel->v = NULL;
            return MP_ERR_NOMEM;
        }
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof(msg));
            free(sel->v);
            sel->v = NULL;
            return mp_set_err(err, "filter: invalid regex \"%s\": %s at offset %zu", opts->filter,
                              (char *)msg, (size_t)off);
        }
        md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) {
            pcre2_code_free(re);
            free(sel->v);
            sel->v = NULL;
            return MP_ERR_NOMEM;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct mp_stat_entry *e = all[i];
        if (re) {
            int m = pcre2_match(re, (PCRE2_SPTR)e->name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
            if (m == PCRE2_ERROR_NOMEMORY) {
                rc = MP_ERR_NOMEM;
                break;
            }
            if (m < 0)
                continue;
        }
        if (opts && opts->used_only) {
            bool used = e->kind == MP_STAT_COUNTER ? mp_stat_entry_counter(e) != 0
                        : e->kind == MP_STAT_GAUGE ? mp_stat_entry_gauge(e) != 0
                                                   : mp_histogram_count(e->h.hist) != 0;
            if (!used)
                continue;
        }
        sel->v[sel->n++] = e;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc != 0) {
        free(sel->v);
        sel->v = NULL;
        sel->n = 0;
    }
    return rc;
}

static int by_name(const void *a, const void *b)
{
    const struct mp_stat_entry *x = *(struct mp_stat_entry *const *)a;
    const struct mp_stat_entry *y = *(struct mp_stat_entry *const *)b;
    /* Counters and gauges first, then histograms, each sorted by name. */
    int hx = x->kind == MP_STAT_HISTOGRAM, hy = y->kind == MP_STAT_HISTOGRAM;
    if (hx != hy)
        return hx - hy;
    return strcmp(x->name, y->name);
}

/* Quantiles of one histogram: cumulative always, interval when flushed. */
struct hist_q {
    uint64_t count;
    bool have_interval;
    double cum[NQ];
    double interval[NQ];
};

static int hist_quantiles(const struct mp_stat_entry *e, struct hist_q *hq)
{
    struct mp_hist_merged *m = malloc(sizeof(*m));
    if (!m)
        return MP_ERR_NOMEM;
    mp_histogram_merge(e->h.hist, m);
    double div = mp_hist_unit_div(e->h.hist->unit);
    hq->count = m->count;
    hq->have_interval = false;
    if (m->count)
        mp_hist_log_quantiles(m->log, m->count, true, m->min, m->max, quantiles, NQ, hq->cum);
    if (e->interval) {
        uint64_t n = 0;
        for (unsigned i = 0; i < MP_HIST_BUCKETS; i++)
            n += e->interval[i];
        if (n) {
            mp_hist_log_quantiles(e->interval, n, false, 0, 0, quantiles, NQ, hq->interval);
            /* Interval values are among all values: keep them inside the
             * all-time exact range (a bucket's edge may lie outside it). */
            for (size_t k = 0; k < NQ; k++) {
                if (hq->interval[k] < (double)m->min)
                    hq->interval[k] = (double)m->min;
                if (hq->interval[k] > (double)m->max)
                    hq->interval[k] = (double)m->max;
            }
            hq->have_interval = true;
        }
    }
    for (size_t k = 0; k < NQ; k++) {
        hq->cum[k] /= div;
        hq->interval[k] /= div;
    }
    free(m);
    return 0;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int render_text(struct selection *sel, FILE *f)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct mp_stat_entry *e = sel->v[i];
        if (e->kind == MP_STAT_COUNTER) {
            fprintf(f, "%s: %" PRIu64 "\n", e->name, mp_stat_entry_counter(e));
        } else if (e->kind == MP_STAT_GAUGE) {
            fprintf(f, "%s: %" PRId64 "\n", e->name, mp_stat_entry_gauge(e));
        } else {
            struct hist_q hq;
            if (hist_quantiles(e, &hq) != 0)
                return MP_ERR_NOMEM;
            if (!hq.count) {
                fprintf(f, "%s: No recorded values\n", e->name);
                continue;
            }
            fprintf(f, "%s:", e->name);
            for (size_t k = 0; k < NQ; k++) {
                fprintf(f, " P%s(", quantile_names[k]);
                if (hq.have_interval)
                    fprintf(f, "%.6g", hq.interval[k]);
                else
                    fputs("nan", f);
                fprintf(f, ",%.6g)", hq.cum[k]);
            }
            fputc('\n', f);
        }
    }
    return 0;
}

static int render_json(struct selection *sel, FILE *f)
{
    fputs("{\"stats\":[", f);
    bool first = true;
    size_t nhist = 0;
    for (size_t i = 0; i < sel->n; i++) {
        const struct mp_stat_entry *e = sel->v[i];
        if (e->kind == MP_STAT_HISTOGRAM) {
            nhist++;
            continue;
        }
        fputs(first ? "{\"name\":" : ",{\"name\":", f);
        first = false;
        json_string(f, e->name);
        if (e->kind == MP_STAT_COUNTER)
            fprintf(f, ",\"value\":%" PRIu64 "}", mp_stat_entry_counter(e));
        else
            fprintf(f, ",\"value\":%" PRId64 "}", mp_stat_entry_gauge(e));
    }
    if (nhist) {
        fputs(first ? "{\"histograms\":{\"supported_quantiles\":["
                    : ",{\"histograms\":{\"supported_quantiles\":[",
              f);
        for (size_t k = 0; k < NQ; k++)
            fprintf(f, "%s%s", k ? "," : "", quantile_names[k]);
        fputs("],\"computed_quantiles\":[", f);
        bool hfirst = true;
        for (size_t i = 0; i < sel->n; i++) {
            const struct mp_stat_entry *e = sel->v[i];
            if (e->kind != MP_STAT_HISTOGRAM)
                continue;
            struct hist_q hq;
            if (hist_quantiles(e, &hq) != 0)
                return MP_ERR_NOMEM;
            fputs(hfirst ? "{\"name\":" : ",{\"name\":", f);
            hfirst = false;
            json_string(f, e->name);
            fputs(",\"values\":[", f);
            for (size_t k = 0; k < NQ; k++) {
                fputs(k ? ",{\"interval\":" : "{\"interval\":", f);
                if (hq.have_interval)
                    fprintf(f, "%.6g", hq.interval[k]);
                else
                    fputs("null", f);
                fputs(",\"cumulative\":", f);
                if (hq.count)
                    fprintf(f, "%.6g}", hq.cum[k]);
                else
                    fputs("null}", f);
            }
            fputs("]}", f);
        }
        fputs("]}}", f);
    }
    fputs("]}\n", f);
    return 0;
}

/* ---- Prometheus --------------------------------------------------------- */

struct prom_row {
    const struct mp_stat_entry *e;
    char *family; /* "envoy_" + sanitized tag-extracted name */
    char *labels; /* `a="x",b="y"` or "" */
};

static int by_family(const void *a, const void *b)
{
    const struct prom_row *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    return c ? c : strcmp(x->labels, y->labels);
}

static char *sanitize(const char *prefix, const char *name)
{
    size_t need = mp_stats_prom_sanitize(NULL, 0, prefix, name);
    char *s = malloc(need + 1);
    if (s)
        mp_stats_prom_sanitize(s, need + 1, prefix, name);
    return s;
}

/* Label set `name="value",...` with values escaped as the format requires. */
static char *label_string(const struct mp_stat_tags *t)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < t->n_tags; i++) {
        char *ln = sanitize("", t->tags[i].name);
        if (!ln) {
            fclose(f);
            free(out);
            return NULL;
        }
        fprintf(f, "%s%s=\"", i ? "," : "", ln);
        free(ln);
        for (const char *p = t->tags[i].value; *p; p++) {
            if (*p == '\\')
                fputs("\\\\", f);
            else if (*p == '"')
                fputs("\\\"", f);
            else if (*p == '\n')
                fputs("\\n", f);
            else
                fputc(*p, f);
        }
        fputc('"', f);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static const char *prom_type(enum mp_stat_kind k)
{
    return k == MP_STAT_COUNTER ? "counter" : k == MP_STAT_GAUGE ? "gauge" : "histogram";
}

static int prom_histogram(FILE *f, const struct prom_row *r)
{
    struct mp_hist_merged *m = malloc(sizeof(*m));
    if (!m)
        return MP_ERR_NOMEM;
    mp_histogram_merge(r->e->h.hist, m);
    double div = mp_hist_unit_div(r->e->h.hist->unit);
    const char *sep = *r->labels ? "," : "";
    uint64_t cum = 0;
    for (unsigned i = 0; i < MP_HIST_PROM_BOUNDS; i++) {
        cum += m->prom[i];
        fprintf(f, "%s_bucket{%s%sle=\"%.15g\"} %" PRIu64 "\n", r->family, r->labels, sep,
                mp_hist_prom_bounds[i], cum);
    }
    cum += m->prom[MP_HIST_PROM_BOUNDS];
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", r->family, r->labels, sep, cum);
    if (*r->labels) {
        fprintf(f, "%s_sum{%s} %.15g\n", r->family, r->labels, (double)m->sum / div);
        fprintf(f, "%s_count{%s} %" PRIu64 "\n", r->family, r->labels, cum);
    } else {
        fprintf(f, "%s_sum %.15g\n", r->family, (double)m->sum / div);
        fprintf(f, "%s_count %" PRIu64 "\n", r->family, cum);
    }
    free(m);
    return 0;
}

static int render_prometheus(struct selection *sel, FILE *f)
{
    struct prom_row *rows = calloc(sel->n ? sel->n : 1, sizeof(*rows));
    if (!rows)
        return MP_ERR_NOMEM;
    int rc = 0;
    size_t n = 0;
    for (; n < sel->n; n++) {
        rows[n].e = sel->v[n];
        rows[n].family = sanitize("envoy_", sel->v[n]->tags.extracted_name);
        rows[n].labels = label_string(&sel->v[n]->tags);
        if (!rows[n].family || !rows[n].labels) {
            n++;
            rc = MP_ERR_NOMEM;
            goto out;
        }
    }
    qsort(rows, n, sizeof(*rows), by_family);
    for (size_t i = 0; i < n;) {
        /* One family: one # TYPE line, then its samples. Rows of the family
         * with another kind (a name clash after sanitizing) would make the
         * exposition invalid, so they are left out. */
        size_t j = i;
        enum mp_stat_kind kind = rows[i].e->kind;
        fprintf(f, "# TYPE %s %s\n", rows[i].family, prom_type(kind));
        for (; j < n && strcmp(rows[j].family, rows[i].family) == 0; j++) {
            const struct prom_row *r = &rows[j];
            if (r->e->kind != kind)
                continue;
            if (j > i && strcmp(r->labels, rows[j - 1].labels) == 0)
                continue; /* two names, one series: keep the first */
            const char *lo = *r->labels ? "{" : "", *lc = *r->labels ? "}" : "";
            if (kind == MP_STAT_COUNTER)
                fprintf(f, "%s%s%s%s %" PRIu64 "\n", r->family, lo, r->labels, lc,
                        mp_stat_entry_counter(r->e));
            else if (kind == MP_STAT_GAUGE)
                fprintf(f, "%s%s%s%s %" PRId64 "\n", r->family, lo, r->labels, lc,
                        mp_stat_entry_gauge(r->e));
            else if ((rc = prom_histogram(f, r)) != 0)
                goto out;
        }
        i = j;
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].family);
        free(rows[i].labels);
    }
    free(rows);
    return rc;
}

char *mp_stats_render_string(struct mp_stats *stats, enum mp_stats_format fmt,
                             const struct mp_stats_render_opts *opts, size_t *len_out, char **err)
{
    char *out = NULL;
    size_t len = 0;
    struct selection sel = {0};
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    /* Only readers wait on this lock: workers registering stats do not. */
    mp_stats_read_lock(stats);
    int rc = select_entries(stats, opts, &sel, err);
    if (rc == 0) {
        qsort(sel.v, sel.n, sizeof(*sel.v), by_name);
        if (fmt == MP_STATS_FORMAT_JSON)
            rc = render_json(&sel, f);
        else if (fmt == MP_STATS_FORMAT_PROMETHEUS)
            rc = render_prometheus(&sel, f);
        else
            rc = render_text(&sel, f);
    }
    mp_stats_read_unlock(stats);
    free(sel.v);
    if (ferror(f))
        rc = MP_ERR_NOMEM;
    if (fclose(f) != 0 && rc == 0)
        rc = MP_ERR_NOMEM;
    if (rc != 0) {
        free(out);
        return NULL;
    }
    if (len_out)
        *len_out = len;
    return out;
}

static void free_rendered(void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free(data);
}

int mp_stats_render(struct mp_stats *stats, enum mp_stats_format fmt,
                    const struct mp_stats_render_opts *opts, struct mp_buffer *out, char **err)
{
    size_t len;
    char *err_local = NULL;
    char *s = mp_stats_render_string(stats, fmt, opts, &len, &err_local);
    if (!s) {
        int rc = err_local ? MP_ERR_INVAL : MP_ERR_NOMEM;
        if (err)
            *err = err_local;
        else
            free(err_local);
        return rc;
    }
    if (len == 0) {
        free(s);
        return 0;
    }
    /* Hand the string over as a slice: no copy into the buffer. */
    struct mp_slice *sl = mp_slice_new_external(s, len, free_rendered, NULL);
    if (!sl) {
        free(s);
        return MP_ERR_NOMEM;
    }
    int rc = mp_buffer_append_ref(out, sl, 0, len);
    mp_slice_unref(sl);
    return rc;
}

/* ---- admin -------------------------------------------------------------- */

/* Percent-decodes [s, s+n) into a new string ('+' stays '+': it is a regex operator). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && mp_hex_value(s[i + 1]) >= 0 &&
            mp_hex_value(s[i + 2]) >= 0) {
            *o++ = (char)(mp_hex_value(s[i + 1]) * 16 + mp_hex_value(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

int mp_stats_admin_handle(struct mp_stats *stats, const char *path_and_query, struct mp_buffer *out,
                          const char **content_type, char **err)
{
    const char *q = strchr(path_and_query, '?');
    size_t plen = q ? (size_t)(q - path_and_query) : strlen(path_and_query);
    enum mp_stats_format fmt;
    if (plen == 6 && memcmp(path_and_query, "/stats", 6) == 0)
        fmt = MP_STATS_FORMAT_TEXT;
    else if (plen == 17 && memcmp(path_and_query, "/stats/prometheus", 17) == 0)
        fmt = MP_STATS_FORMAT_PROMETHEUS;
    else
        return MP_ERR_NOTFOUND;
    struct mp_stats_render_opts opts = {0};
    char *filter = NULL;
    int rc = 0;
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : p + n;
        size_t vlen = (size_t)(p + n - v);
        if (klen == 6 && memcmp(p, "format", 6) == 0) {
            if (vlen == 4 && memcmp(v, "json", 4) == 0)
                fmt = MP_STATS_FORMAT_JSON;
            else if (vlen == 10 && memcmp(v, "prometheus", 10) == 0)
                fmt = MP_STATS_FORMAT_PROMETHEUS;
            else if (vlen == 4 && memcmp(v, "text", 4) == 0)
                fmt = MP_STATS_FORMAT_TEXT;
            else {
                rc = mp_set_err(err, "format: unsupported value \"%.*s\"", (int)vlen, v);
                goto out;
            }
        } else if (klen == 6 && memcmp(p, "filter", 6) == 0) {
            free(filter);
            filter = pct_decode(v, vlen);
            if (!filter) {
                rc = MP_ERR_NOMEM;
                goto out;
            }
            opts.filter = filter;
        } else if (klen == 8 && memcmp(p, "usedonly", 8) == 0) {
            opts.used_only = true;
        }
        /* Other parameters (type=, histogram_buckets=) are accepted and ignored. */
        p = amp ? amp + 1 : NULL;
    }
    rc = mp_stats_render(stats, fmt, &opts, out, err);
    if (rc == 0)
        *content_type = fmt == MP_STATS_FORMAT_JSON ? "application/json"
                        : fmt == MP_STATS_FORMAT_PROMETHEUS
                            ? "text/plain; version=0.0.4; charset=utf-8"
                            : "text/plain; charset=utf-8";
out:
    free(filter);
    return rc;
}

int mp_stats_reset_counters(struct mp_stats *stats)
{
    mp_stats_read_lock(stats);
    size_t n = 0;
    struct mp_stat_entry **es = mp_stats_entries_copy(stats, &n);
    if (!es) {
        mp_stats_read_unlock(stats);
        return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mp_stat_entry *e = es[i];
        if (e->kind != MP_STAT_COUNTER || e->fn || !e->h.counter)
            continue;
        for (unsigned k = 0; k < e->h.counter->n_slots; k++)
            if (e->h.counter->cell[k])
                atomic_store_explicit(e->h.counter->cell[k], 0, memory_order_relaxed);
    }
    free(es);
    mp_stats_read_unlock(stats);
    return 0;
}
