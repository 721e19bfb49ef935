/*
 * stats_tags.h: Envoy's tag extraction, turning a flat stat name into a
 * tag-extracted name plus tags (Prometheus labels).
 *
 * Each extractor is a regex applied, in order, to the name left by the ones
 * before it. Its first capture group is cut out of the name; its second (or
 * the first, when it has one) is the tag's value. So with Envoy's defaults
 * `http.ingress.downstream_rq_2xx` becomes `http.downstream_rq_xx` with
 * envoy.response_code_class="2" and envoy.http_conn_manager_prefix="ingress",
 * and Prometheus shows
 * `envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress"}`.
 * As in Envoy, every extractor matches the original name (the cuts are
 * applied together at the end), and a custom extractor replaces the default
 * one of the same tag name. Fixed tags come first, then extracted ones in
 * extractor order.
 */
#ifndef MP_STATS_TAGS_H
#define MP_STATS_TAGS_H

#include <stdbool.h>
#include <stddef.h>

struct mp_stats_tagger;

struct mp_stat_tag {
    char *name; /* Envoy tag name, e.g. "envoy.cluster_name" */
    char *value;
};

/* A stat name after extraction. Owned by whoever called mp_stats_tagger_extract. */
struct mp_stat_tags {
    char *extracted_name; /* e.g. "cluster.upstream_rq_total" */
    struct mp_stat_tag *tags;
    size_t n_tags;
};

/**
 * Makes a tagger; with_defaults turns on Envoy's default extractors (cluster
 * name, HTTP connection manager prefix, listener address, response code and
 * class, virtual host/cluster, tcp/ratelimit prefixes, ssl ciphers, user
 * agent, fault downstream cluster, rds route config, worker id). Returns NULL
 * when memory runs out. Free with mp_stats_tagger_free.
 */
struct mp_stats_tagger *mp_stats_tagger_new(bool with_defaults);

/** Frees t. NULL is a no-op. */
void mp_stats_tagger_free(struct mp_stats_tagger *t);

/**
 * Adds an extractor that runs before the default ones (custom stats_tags come
 * first in Envoy too), after earlier custom ones. Returns 0, MP_ERR_NOMEM, or
 * MP_ERR_INVAL with *err set (caller frees) when the regex does not compile
 * or has no capture group.
 */
int mp_stats_tagger_add_regex(struct mp_stats_tagger *t, const char *tag_name, const char *regex,
                              char **err);

/** Adds a tag with a fixed value put on every stat. Returns 0, MP_ERR_NOMEM or MP_ERR_INVAL. */
int mp_stats_tagger_add_fixed(struct mp_stats_tagger *t, const char *tag_name, const char *value);

/** Turns the default extractors on or off (stats_config.use_all_default_tags). */
void mp_stats_tagger_use_defaults(struct mp_stats_tagger *t, bool on);

/**
 * Extracts tags from name into *out (which the caller clears with
 * mp_stat_tags_clear). Returns 0 or MP_ERR_NOMEM (out is then empty).
 */
int mp_stats_tagger_extract(const struct mp_stats_tagger *t, const char *name,
                            struct mp_stat_tags *out);

/** Frees what *tags holds and zeroes it. */
void mp_stat_tags_clear(struct mp_stat_tags *tags);

/**
 * Writes the Prometheus form of a name or label name into dst (size dstlen,
 * always NUL-terminated): every character outside [a-zA-Z0-9_] becomes '_',
 * with `prefix` (e.g. "envoy_", or "" for labels) in front. Returns the
 * length the full result needs (like snprintf).
 */
size_t mp_stats_prom_sanitize(char *dst, size_t dstlen, const char *prefix, const char *name);

#endif
