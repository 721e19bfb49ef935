/* route_regex.c: pcre2 (JIT, match limits) behind the route table's regexes. */
#include "proxy/route_regex.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"

/* One match context for every regex: it only carries limits, and pcre2 only
 * reads it during a match, so sharing it between threads is safe. */
static pcre2_match_context *match_ctx;
static pthread_once_t match_ctx_once = PTHREAD_ONCE_INIT;

static void match_ctx_init(void)
{
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx != NULL) {
        pcre2_set_match_limit(match_ctx, MP_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(match_ctx, MP_REGEX_MATCH_LIMIT / 10);
    }
}

/* Match data is written by every match, so each thread has its own. Only the
 * whole-match offsets are used; a pattern with more groups still matches
 * (pcre2_match returns 0 for "ovector too small"). */
static _Thread_local pcre2_match_data *tl_match_data;

static pcre2_match_data *thread_match_data(void)
{
    if (tl_match_data == NULL)
        tl_match_data = pcre2_match_data_create(4, NULL);
    return tl_match_data;
}

void mp_regex_thread_cleanup(void)
{
    pcre2_match_data_free(tl_match_data);
    tl_match_data = NULL;
}

const struct mp_regex *mp_regex_compile(struct mp_route_config *cfg, const char *pattern, bool full,
                                        char **err)
{
    pthread_once(&match_ctx_once, match_ctx_init);
    if (match_ctx == NULL) {
        mp_set_err(err, "out of memory");
        return NULL;
    }
    /* UTF-8 like RE2, but a request with invalid UTF-8 must still be matched
     * (as not matching), not rejected with an error. */
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (full)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    int code_err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code_err, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code_err);
        mp_set_err(err, "invalid regex \"%s\": %s", pattern, (const char *)msg);
        return NULL;
    }
    /* JIT is an optimisation: without it (no JIT support) matching still
     * works through the interpreter with the same limits. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    struct mp_regex *re = mp_route_arena_alloc(cfg, sizeof(*re));
    const char *pat = re ? mp_route_arena_strndup(cfg, pattern, strlen(pattern), false) : NULL;
    if (pat == NULL) {
        pcre2_code_free(code);
        mp_set_err(err, "out of memory");
        return NULL;
    }
    re->code = code;
    re->pattern = pat;
    re->full = full;
    re->next = cfg->regexes;
    cfg->regexes = re;
    return re;
}

bool mp_regex_match(const struct mp_regex *re, const char *s, size_t len)
{
    pcre2_match_data *md = thread_match_data();
    if (md == NULL)
        return false;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0, 0, md, match_ctx);
    return rc >= 0;
}

int mp_regex_replace_all(const struct mp_regex *re, const char *subst, const char *s, size_t len,
                         char *out, size_t cap, size_t *out_len)
{
    PCRE2_SIZE n = cap;
    int rc = pcre2_substitute(re->code, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL,
                              match_ctx, (PCRE2_SPTR)subst, PCRE2_ZERO_TERMINATED,
                              (PCRE2_UCHAR *)out, &n);
    if (rc == PCRE2_ERROR_NOMEMORY) {
        /* With OVERFLOW_LENGTH, n is the size needed including the NUL. */
        *out_len = n > 0 ? n - 1 : 0;
        return MP_ERR_LIMIT;
    }
    if (rc < 0)
        return MP_ERR_INVAL;
    *out_len = n;
    return 0;
}

char *mp_regex_subst_from_re2(struct mp_route_config *cfg, const char *re2, char **err)
{
    size_t len = strlen(re2);
    /* Worst case: each '$' becomes "$$", each "\N" becomes "${N}". */
    char *out = mp_route_arena_alloc(cfg, len * 2 + 1);
    if (out == NULL) {
        mp_set_err(err, "out of memory");
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = re2[i];
        if (c == '$') {
            out[o++] = '$';
            out[o++] = '$';
        } else if (c == '\\') {
            char d = re2[i + 1];
            if (d >= '0' && d <= '9') {
                out[o++] = '$';
                out[o++] = '{';
                out[o++] = d;
                out[o++] = '}';
                i++;
            } else if (d == '\\') {
                out[o++] = '\\';
                i++;
            } else {
                mp_set_err(err,
                           "invalid substitution \"%s\": '\\' must be followed by a digit or '\\'",
                           re2);
                return NULL;
            }
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

void mp_regex_free_list(struct mp_regex *list)
{
    for (struct mp_regex *re = list; re != NULL; re = re->next)
        pcre2_code_free(re->code);
}
