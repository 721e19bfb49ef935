/* tls_config.c: lifetime of TLS configs and secrets, and SAN string matching. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "proxy/tls_config.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/mp_common.h"

/* Regexes in SAN matchers run on attacker-chosen names: bound their work. */
#define SAN_REGEX_MATCH_LIMIT 100000u

struct mp_tls_config *mp_tls_config_new(enum mp_tls_side side)
{
    struct mp_tls_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    atomic_init(&cfg->refs, 1);
    cfg->side = side;
    cfg->min_version = 0x0303;
    cfg->max_version = side == MP_TLS_SERVER ? 0x0304 : 0x0303;
    cfg->session_tickets = true;
    cfg->session_cache = true;
    cfg->max_session_keys = 1;
    return cfg;
}

struct mp_tls_config *mp_tls_config_ref(struct mp_tls_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void mp_tls_data_clear(struct mp_tls_data *d)
{
    if (d->data != NULL) {
        /* Keys pass through here: do not leave them in freed memory. */
        volatile uint8_t *p = d->data;
        for (size_t i = 0; i < d->len; i++)
            p[i] = 0;
        free(d->data);
    }
    free(d->origin);
    memset(d, 0, sizeof(*d));
}

static void cert_clear(struct mp_tls_cert *c)
{
    mp_tls_data_clear(&c->chain);
    mp_tls_data_clear(&c->key);
    mp_tls_data_clear(&c->password);
}

static void sds_ref_clear(struct mp_tls_sds_ref *r)
{
    free(r->name);
    free(r->cluster);
    memset(r, 0, sizeof(*r));
}

static void wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    volatile uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        b[i] = 0;
    free(p);
}

void mp_tls_str_matcher_clear(struct mp_tls_str_matcher *m)
{
    free(m->value);
    if (m->regex != NULL)
        pcre2_code_free(m->regex);
    memset(m, 0, sizeof(*m));
}

void mp_tls_validation_free(struct mp_tls_validation *v)
{
    if (v == NULL)
        return;
    mp_tls_data_clear(&v->trusted_ca);
    mp_tls_data_clear(&v->crl);
    for (size_t i = 0; i < v->n_sans; i++)
        mp_tls_str_matcher_clear(&v->sans[i].str);
    free(v->sans);
    free(v->cert_hashes);
    free(v->spki_hashes);
    free(v);
}

void mp_tls_config_unref(struct mp_tls_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(cfg->cipher_suites);
    free(cfg->ecdh_curves);
    free(cfg->sigalgs);
    for (size_t i = 0; i < cfg->n_alpn; i++)
        free(cfg->alpn[i]);
    free(cfg->alpn);
    free(cfg->sni);
    for (size_t i = 0; i < cfg->n_certs; i++)
        cert_clear(&cfg->certs[i]);
    free(cfg->certs);
    for (size_t i = 0; i < cfg->n_cert_sds; i++)
        sds_ref_clear(&cfg->cert_sds[i]);
    free(cfg->cert_sds);
    mp_tls_validation_free(cfg->validation);
    if (cfg->validation_sds != NULL) {
        sds_ref_clear(cfg->validation_sds);
        free(cfg->validation_sds);
    }
    wipe_free(cfg->ticket_keys, cfg->n_ticket_keys * 80);
    if (cfg->ticket_keys_sds != NULL) {
        sds_ref_clear(cfg->ticket_keys_sds);
        free(cfg->ticket_keys_sds);
    }
    free(cfg);
}

struct mp_tls_secret *mp_tls_secret_new(void)
{
    struct mp_tls_secret *s = calloc(1, sizeof(*s));
    if (s != NULL)
        atomic_init(&s->refs, 1);
    return s;
}

struct mp_tls_secret *mp_tls_secret_ref(struct mp_tls_secret *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void mp_tls_secret_unref(struct mp_tls_secret *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(s->name);
    cert_clear(&s->cert);
    mp_tls_validation_free(s->validation);
    wipe_free(s->ticket_keys, s->n_ticket_keys * 80);
    mp_tls_data_clear(&s->generic);
    free(s);
}

int mp_tls_str_matcher_init(struct mp_tls_str_matcher *m, enum mp_tls_str_kind kind,
                            bool ignore_case, const char *pattern, char **err)
{
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->ignore_case = kind != MP_TLS_STR_REGEX && ignore_case;
    m->value = strdup(pattern);
    if (m->value == NULL)
        return MP_ERR_NOMEM;
    if (kind != MP_TLS_STR_REGEX)
        return 0;
    int code;
    PCRE2_SIZE off;
    /* ANCHORED + ENDANCHORED: Envoy's safe_regex is a full match. */
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                      PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &code, &off, NULL);
    if (re == NULL) {
        char msg[160];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
        free(m->value);
        m->value = NULL;
        return mp_set_err(err, ": invalid regex \"%s\" at offset %zu: %s", pattern, (size_t)off,
                          msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    m->regex = re;
    return 0;
}

static bool contains_nocase(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return true;
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (strncasecmp(hay + i, needle, nlen) == 0)
            return true;
    return false;
}

bool mp_tls_str_match(const struct mp_tls_str_matcher *m, const char *value, size_t len)
{
    size_t plen = m->value != NULL ? strlen(m->value) : 0;
    int (*cmp)(const char *, const char *, size_t) = m->ignore_case ? strncasecmp : strncmp;
    /* SANs may hold NUL bytes (a classic spoofing trick): compare lengths, not C strings. */
    if (memchr(value, 0, len) != NULL)
        return false;
    switch (m->kind) {
    case MP_TLS_STR_EXACT: return len == plen && cmp(value, m->value, plen) == 0;
    case MP_TLS_STR_PREFIX: return len >= plen && cmp(value, m->value, plen) == 0;
    case MP_TLS_STR_SUFFIX: return len >= plen && cmp(value + len - plen, m->value, plen) == 0;
    case MP_TLS_STR_CONTAINS:
        if (m->ignore_case)
            return contains_nocase(value, len, m->value, plen);
        return memmem(value, len, m->value, plen) != NULL;
    case MP_TLS_STR_REGEX: {
        if (m->regex == NULL)
            return false;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        bool ok = false;
        if (md != NULL && mc != NULL) {
            pcre2_set_match_limit(mc, SAN_REGEX_MATCH_LIMIT);
            ok = pcre2_match(m->regex, (PCRE2_SPTR)value, len, 0, 0, md, mc) >= 0;
        }
        pcre2_match_context_free(mc);
        pcre2_match_data_free(md);
        return ok;
    }
    }
    return false;
}

bool mp_tls_san_accept(const struct mp_tls_validation *v, enum mp_tls_san_type type,
                       const char *value, size_t len)
{
    if (v == NULL || v->n_sans == 0)
        return true;
    for (size_t i = 0; i < v->n_sans; i++) {
        const struct mp_tls_san_matcher *sm = &v->sans[i];
        if (sm->type != MP_TLS_SAN_ANY && sm->type != type)
            continue;
        if (mp_tls_str_match(&sm->str, value, len))
            return true;
    }
    return false;
}

static int data_dup(struct mp_tls_data *dst, const struct mp_tls_data *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->data == NULL)
        return 0;
    dst->data = malloc(src->len + 1);
    dst->origin = src->origin != NULL ? strdup(src->origin) : NULL;
    if (dst->data == NULL || (src->origin != NULL && dst->origin == NULL)) {
        mp_tls_data_clear(dst);
        return MP_ERR_NOMEM;
    }
    memcpy(dst->data, src->data, src->len);
    dst->data[src->len] = 0;
    dst->len = src->len;
    return 0;
}

static void *dup_array(const void *src, size_t n, size_t size, int *rc)
{
    if (n == 0)
        return NULL;
    void *p = malloc(n * size);
    if (p == NULL)
        *rc = MP_ERR_NOMEM;
    else
        memcpy(p, src, n * size);
    return p;
}

struct mp_tls_validation *mp_tls_validation_dup(const struct mp_tls_validation *v)
{
    struct mp_tls_validation *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    int rc = 0;
    d->only_verify_leaf_cert_crl = v->only_verify_leaf_cert_crl;
    d->allow_expired = v->allow_expired;
    d->accept_untrusted = v->accept_untrusted;
    d->max_verify_depth = v->max_verify_depth;
    if (data_dup(&d->trusted_ca, &v->trusted_ca) != 0 || data_dup(&d->crl, &v->crl) != 0)
        goto fail;
    d->cert_hashes = dup_array(v->cert_hashes, v->n_cert_hashes, 32, &rc);
    d->n_cert_hashes = d->cert_hashes != NULL ? v->n_cert_hashes : 0;
    d->spki_hashes = dup_array(v->spki_hashes, v->n_spki_hashes, 32, &rc);
    d->n_spki_hashes = d->spki_hashes != NULL ? v->n_spki_hashes : 0;
    if (rc != 0)
        goto fail;
    if (v->n_sans > 0) {
        d->sans = calloc(v->n_sans, sizeof(*d->sans));
        if (d->sans == NULL)
            goto fail;
        for (size_t i = 0; i < v->n_sans; i++) {
            const struct mp_tls_san_matcher *s = &v->sans[i];
            char *err = NULL;
            d->sans[i].type = s->type;
            rc = mp_tls_str_matcher_init(&d->sans[i].str, s->str.kind, s->str.ignore_case,
                                         s->str.value, &err);
            free(err);
            if (rc != 0)
                goto fail;
            d->n_sans = i + 1;
        }
    }
    return d;
fail:
    mp_tls_validation_free(d);
    return NULL;
}
