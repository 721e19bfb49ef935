/*
 * stats_tags.c: Envoy's tag extraction with PCRE2.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "proxy/stats_tags.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"

struct extractor {
    char *tag_name;
    pcre2_code *re;
    uint32_t captures;
    /* Cheap pre-checks (defaults only): a name that does not start with
     * `prefix` or lacks `substr` cannot match, so the regex is skipped. With
     * 10^5 stats in a big mesh this keeps registration fast. */
    const char *prefix;
    const char *substr;
};

struct fixed_tag {
    char *name;
    char *value;
};

struct mp_stats_tagger {
    struct extractor *custom;
    size_t n_custom;
    struct extractor *defaults;
    size_t n_defaults;
    struct fixed_tag *fixed;
    size_t n_fixed;
    bool use_defaults;
};

/*
 * Envoy's default extractors (source/common/config/well_known_names.cc), in
 * Envoy's order. Envoy writes some as "tokenized" patterns (`cluster.$.**`:
 * the one dot-free token after `cluster.`); they are spelled here as the
 * equivalent regexes with [^.]+.
 */
static const struct {
    const char *name;
    const char *regex;
    const char *prefix; /* the name must start with this (NULL: any) */
    const char *substr; /* and contain this (NULL: anything) */
} default_tags[] = {
    /* *_rq(_<response_code>) */
    {"envoy.response_code", "_rq(_(\\d{3}))$", NULL, "_rq_"},
    /* *_rq_(<response_code_class>)xx */
    {"envoy.response_code_class", "_rq_(\\d)xx$", NULL, "_rq_"},
    /* http.[<stat_prefix>.]user_agent.(<user_agent>.)<base_stat> */
    {"envoy.http_user_agent", "^http(?=\\.).*?\\.user_agent\\.((.*?)\\.)\\w+?$", "http.",
     ".user_agent."},
    /* vhost.[<virtual host name>.]vcluster.(<virtual_cluster_name>.)<base_stat> */
    {"envoy.virtual_cluster_name", "^vhost\\.[^.]+\\.vcluster\\.(([^.]+)\\.)", "vhost.",
     ".vcluster."},
    /* http.[<stat_prefix>.]fault.(<downstream_cluster>.)<base_stat> */
    {"envoy.fault_downstream_cluster", "^http\\.[^.]+\\.fault\\.(([^.]+)\\.)", "http.", ".fault."},
    /* listener.[<address>.]ssl.cipher.(<cipher>) */
    {"envoy.ssl_cipher", "^listener\\..*?\\.ssl\\.cipher(\\.([^.]*))$", "listener.",
     ".ssl.cipher."},
    /* cluster.[<cluster_name>.]ssl.ciphers.(<cipher>) */
    {"envoy.ssl_cipher_suite", "^cluster\\.[^.]+\\.ssl\\.ciphers(\\.([^.]*))$", "cluster.",
     ".ssl.ciphers."},
    /* cluster.[<route_target_cluster>.]grpc.[<grpc_service>.](<grpc_method>.)<base_stat> */
    {"envoy.grpc_bridge_method", "^cluster\\.[^.]+\\.grpc\\.[^.]+\\.(([^.]+)\\.)", "cluster.",
     ".grpc."},
    /* cluster.[<route_target_cluster>.]grpc.(<grpc_service>.)* */
    {"envoy.grpc_bridge_service", "^cluster\\.[^.]+\\.grpc\\.(([^.]+)\\.)", "cluster.", ".grpc."},
    /* tcp.(<stat_prefix>.)<base_stat> */
    {"envoy.tcp_prefix", "^tcp\\.(([^.]+)\\.)", "tcp.", NULL},
    /* udp.(<stat_prefix>.)<base_stat> */
    {"envoy.udp_prefix", "^udp\\.(([^.]+)\\.)", "udp.", NULL},
    /* auth.clientssl.(<stat_prefix>.)<base_stat> */
    {"envoy.clientssl_prefix", "^auth\\.clientssl\\.(([^.]+)\\.)", "auth.clientssl.", NULL},
    /* ratelimit.(<stat_prefix>.)<base_stat> */
    {"envoy.ratelimit_prefix", "^ratelimit\\.(([^.]+)\\.)", "ratelimit.", NULL},
    /* cluster.(<cluster_name>.)* */
    {"envoy.cluster_name", "^cluster\\.(([^.]+)\\.)", "cluster.", NULL},
    /* listener.[<address>.]http.(<stat_prefix>.)* */
    {"envoy.http_conn_manager_prefix", "^listener\\..*?\\.http\\.(([^.]+)\\.)", "listener.",
     ".http."},
    /* http.(<stat_prefix>.)* */
    {"envoy.http_conn_manager_prefix", "^http\\.(([^.]+)\\.)", "http.", NULL},
    /* listener.(<address>.)*: an IPv4 or bracketed IPv6 address with _port */
    {"envoy.listener_address",
     "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)", "listener.", NULL},
    /* vhost.(<virtual host name>.)* */
    {"envoy.virtual_host", "^vhost\\.(([^.]+)\\.)", "vhost.", NULL},
    /* mongo.(<stat_prefix>.)* */
    {"envoy.mongo_prefix", "^mongo\\.(([^.]+)\\.)", "mongo.", NULL},
    /* http.[<stat_prefix>.]rds.(<route_config_name>.)<base_stat> */
    {"envoy.rds_route_config", "^http\\.[^.]+\\.rds\\.(([^.]+)\\.)\\w+?$", "http.", ".rds."},
    /* listener_manager.(worker_<id>.)* */
    {"envoy.worker_id", "^listener_manager\\.((worker_\\d+)\\.)", "listener_manager.", NULL},
};

static int compile(struct extractor *e, const char *tag_name, const char *regex, char **err)
{
    int code;
    PCRE2_SIZE off;
    e->tag_name = NULL;
    e->prefix = NULL;
    e->substr = NULL;
    e->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!e->re && code == PCRE2_ERROR_HEAP_FAILED)
        return MP_ERR_NOMEM;
    if (!e->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return mp_set_err(err, "stats tag \"%s\": regex \"%s\": %s at offset %zu", tag_name, regex,
                          (char *)msg, (size_t)off);
    }
    pcre2_pattern_info(e->re, PCRE2_INFO_CAPTURECOUNT, &e->captures);
    if (e->captures == 0) {
        pcre2_code_free(e->re);
        e->re = NULL;
        return mp_set_err(err, "stats tag \"%s\": regex \"%s\" has no capture group", tag_name,
                          regex);
    }
    /* JIT is an optimisation only: without it matching still works. */
    (void)pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE);
    e->tag_name = strdup(tag_name);
    if (!e->tag_name) {
        pcre2_code_free(e->re);
        e->re = NULL;
        return MP_ERR_NOMEM;
    }
    return 0;
}

static void extractor_free(struct extractor *e)
{
    free(e->tag_name);
    pcre2_code_free(e->re);
}

void mp_stats_tagger_free(struct mp_stats_tagger *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_custom; i++)
        extractor_free(&t->custom[i]);
    for (size_t i = 0; i < t->n_defaults; i++)
        extractor_free(&t->defaults[i]);
    for (size_t i = 0; i < t->n_fixed; i++) {
        free(t->fixed[i].name);
        free(t->fixed[i].value);
    }
    free(t->custom);
    free(t->defaults);
    free(t->fixed);
    free(t);
}

struct mp_stats_tagger *mp_stats_tagger_new(bool with_defaults)
{
    struct mp_stats_tagger *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->use_defaults = with_defaults;
    /* Always compiled, so use_defaults can switch them on later. */
    t->defaults = calloc(MP_ARRAY_LEN(default_tags), sizeof(*t->defaults));
    if (!t->defaults)
        goto fail;
    for (size_t i = 0; i < MP_ARRAY_LEN(default_tags); i++) {
        if (compile(&t->defaults[i], default_tags[i].name, default_tags[i].regex, NULL) != 0)
            goto fail;
        t->defaults[i].prefix = default_tags[i].prefix;
        t->defaults[i].substr = default_tags[i].substr;
        t->n_defaults++;
    }
    return t;
fail:
    mp_stats_tagger_free(t);
    return NULL;
}

int mp_stats_tagger_add_regex(struct mp_stats_tagger *t, const char *tag_name, const char *regex,
                              char **err)
{
    if (!tag_name || !*tag_name || !regex)
        return mp_set_err(err, "stats tag: tag_name and regex are required");
    struct extractor *n = realloc(t->custom, (t->n_custom + 1) * sizeof(*n));
    if (!n)
        return MP_ERR_NOMEM;
    t->custom = n;
    int rc = compile(&t->custom[t->n_custom], tag_name, regex, err);
    if (rc != 0)
        return rc;
    t->n_custom++;
    return 0;
}

int mp_stats_tagger_add_fixed(struct mp_stats_tagger *t, const char *tag_name, const char *value)
{
    if (!tag_name || !*tag_name || !value)
        return MP_ERR_INVAL;
    struct fixed_tag *n = realloc(t->fixed, (t->n_fixed + 1) * sizeof(*n));
    if (!n)
        return MP_ERR_NOMEM;
    t->fixed = n;
    struct fixed_tag *f = &t->fixed[t->n_fixed];
    f->name = strdup(tag_name);
    f->value = strdup(value);
    if (!f->name || !f->value) {
        free(f->name);
        free(f->value);
        return MP_ERR_NOMEM;
    }
    t->n_fixed++;
    return 0;
}

void mp_stats_tagger_use_defaults(struct mp_stats_tagger *t, bool on)
{
    t->use_defaults = on;
}

void mp_stat_tags_clear(struct mp_stat_tags *tags)
{
    for (size_t i = 0; i < tags->n_tags; i++) {
        free(tags->tags[i].name);
        free(tags->tags[i].value);
    }
    free(tags->tags);
    free(tags->extracted_name);
    memset(tags, 0, sizeof(*tags));
}

static int add_tag(struct mp_stat_tags *out, const char *name, const char *value, size_t vlen)
{
    struct mp_stat_tag *n = realloc(out->tags, (out->n_tags + 1) * sizeof(*n));
    if (!n)
        return MP_ERR_NOMEM;
    out->tags = n;
    n[out->n_tags].name = strdup(name);
    n[out->n_tags].value = strndup(value, vlen);
    if (!n[out->n_tags].name || !n[out->n_tags].value) {
        free(n[out->n_tags].name);
        free(n[out->n_tags].value);
        return MP_ERR_NOMEM;
    }
    out->n_tags++;
    return 0;
}

/* Runs one extractor on the original name; marks what it cuts in `cut`. */
static int apply(const struct extractor *e, const char *name, size_t len, uint8_t *cut,
                 struct mp_stat_tags *out)
{
    if (e->prefix && strncmp(name, e->prefix, strlen(e->prefix)) != 0)
        return 0;
    if (e->substr && !strstr(name, e->substr))
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(e->re, NULL);
    if (!md)
        return MP_ERR_NOMEM;
    int rc = 0;
    int m = pcre2_match(e->re, (PCRE2_SPTR)name, len, 0, 0, md, NULL);
    if (m == PCRE2_ERROR_NOMEMORY)
        rc = MP_ERR_NOMEM;
    if (m < 0)
        goto out;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    /* Group 1 is cut from the name; group 2 (when the regex has one) is the value. */
    if (ov[2] == PCRE2_UNSET)
        goto out;
    size_t vs = ov[2], ve = ov[3];
    if (e->captures >= 2 && ov[4] != PCRE2_UNSET) {
        vs = ov[4];
        ve = ov[5];
    }
    rc = add_tag(out, e->tag_name, name + vs, ve - vs);
    if (rc == 0)
        memset(cut + ov[2], 1, ov[3] - ov[2]);
out:
    pcre2_match_data_free(md);
    return rc;
}

static bool shadowed(const struct mp_stats_tagger *t, const char *tag_name)
{
    for (size_t i = 0; i < t->n_custom; i++)
        if (strcmp(t->custom[i].tag_name, tag_name) == 0)
            return true;
    return false;
}

int mp_stats_tagger_extract(const struct mp_stats_tagger *t, const char *name,
                            struct mp_stat_tags *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(name);
    uint8_t *cut = calloc(len + 1, 1);
    if (!cut)
        return MP_ERR_NOMEM;
    int rc = 0;
    for (size_t i = 0; i < t->n_fixed && rc == 0; i++)
        rc = add_tag(out, t->fixed[i].name, t->fixed[i].value, strlen(t->fixed[i].value));
    for (size_t i = 0; i < t->n_custom && rc == 0; i++)
        rc = apply(&t->custom[i], name, len, cut, out);
    for (size_t i = 0; t->use_defaults && i < t->n_defaults && rc == 0; i++)
        if (!shadowed(t, t->defaults[i].tag_name))
            rc = apply(&t->defaults[i], name, len, cut, out);
    if (rc == 0) {
        out->extracted_name = malloc(len + 1);
        if (!out->extracted_name) {
            rc = MP_ERR_NOMEM;
        } else {
            size_t j = 0;
            for (size_t i = 0; i < len; i++)
                if (!cut[i])
                    out->extracted_name[j++] = name[i];
            out->extracted_name[j] = 0;
        }
    }
    free(cut);
    if (rc != 0)
        mp_stat_tags_clear(out);
    return rc;
}

size_t mp_stats_prom_sanitize(char *dst, size_t dstlen, const char *prefix, const char *name)
{
    size_t plen = strlen(prefix), nlen = strlen(name), need = plen + nlen;
    if (dstlen == 0)
        return need;
    size_t j = 0;
    for (size_t i = 0; i < plen && j + 1 < dstlen; i++)
        dst[j++] = prefix[i];
    for (size_t i = 0; i < nlen && j + 1 < dstlen; i++) {
        char c = name[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        /* A name may not start with a digit. */
        if (ok && j == 0 && c >= '0' && c <= '9')
            ok = false;
        dst[j++] = ok ? c : '_';
    }
    dst[j] = 0;
    return need;
}
