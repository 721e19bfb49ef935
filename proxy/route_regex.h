/*
 * route_regex.h: safe_regex for routes and header matchers, on pcre2 with
 * JIT and match limits (Envoy uses RE2; a pattern that backtracks badly here
 * hits the limit and fails to match instead of stalling a worker).
 */
#ifndef MP_ROUTE_REGEX_H
#define MP_ROUTE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/route_table.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Match limit per match call (pcre2_set_match_limit). */
#define MP_REGEX_MATCH_LIMIT 100000

struct mp_regex {
    pcre2_code *code;
    const char *pattern;
    bool full;             /* compiled anchored at both ends (FullMatch semantics) */
    struct mp_regex *next; /* the config's list, for freeing */
};

/**
 * Compiles pattern into cfg (freed with the config). full=true anchors it at
 * both ends (a match must cover the whole subject, as RE2 FullMatch); false
 * finds matches anywhere (for rewrites). JIT-compiles when JIT is available.
 * Returns the regex, or NULL with *err = `invalid regex "<pattern>": <pcre2
 * message>` (or "out of memory").
 */
const struct mp_regex *mp_regex_compile(struct mp_route_config *cfg, const char *pattern, bool full,
                                        char **err);

/**
 * Whether re matches s[0..len) (the whole of it when compiled full). Uses a
 * per-thread match data block. A match-limit failure counts as no match.
 */
bool mp_regex_match(const struct mp_regex *re, const char *s, size_t len);

/**
 * Replaces every match of re in s[0..len) with subst (pcre2 syntax, "$1")
 * into out[0..cap) with a NUL. *out_len gets the result length, or the needed
 * length when cap is too small. Returns 0, MP_ERR_LIMIT (cap too small) or
 * MP_ERR_INVAL (pcre2 failure).
 */
int mp_regex_replace_all(const struct mp_regex *re, const char *subst, const char *s, size_t len,
                         char *out, size_t cap, size_t *out_len);

/**
 * Converts an RE2 substitution ("\1", "\\") into pcre2's ("${1}", "$$").
 * Returns a string in cfg's arena, or NULL with *err set (bad escape, or
 * out of memory).
 */
char *mp_regex_subst_from_re2(struct mp_route_config *cfg, const char *re2, char **err);

/** Frees the calling thread's cached match data (call at worker exit). */
void mp_regex_thread_cleanup(void);

/** Frees every regex on a config's list (mp_route_config_free uses it). */
void mp_regex_free_list(struct mp_regex *list);

#endif
