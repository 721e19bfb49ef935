/* xds_translate_tls.c: DownstreamTlsContext / UpstreamTlsContext / Secret -> mp_tls_*. */
#include "xds/xds_translate_tls.h"

/* match_subject_alt_names is deprecated in the API but Istio still sends it. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/base64.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/core/v3/grpc_service.pb-c.h"
#include "proxy/mp_common.h"

/* Shorter names for the generated types used here. */
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTls;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters TlsParams;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate TlsCert;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext ValCtx;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig SdsConfig;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher SanMatcher;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsSessionTicketKeys TicketKeys;
typedef Envoy__Config__Core__V3__DataSource DataSource;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;

/* Certificates, keys and CA bundles above this size are refused (a typo'd path
 * to a log file should not be read into memory whole). */
#define MAX_DATA_SOURCE (4u << 20)

/* ---- DataSource ------------------------------------------------------------ */

static int read_file(const char *path, struct mp_tls_data *out, char **err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return mp_set_err(err, ": cannot read file \"%s\": %s", path, strerror(errno));
    int rc = 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = mp_set_err(err, ": cannot read file \"%s\": not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_DATA_SOURCE) {
        rc = mp_set_err(err, ": file \"%s\" is larger than %u bytes", path, MAX_DATA_SOURCE);
        goto out;
    }
    out->data = malloc((size_t)st.st_size + 1);
    out->origin = strdup(path);
    if (out->data == NULL || out->origin == NULL) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    out->len = fread(out->data, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        rc = mp_set_err(err, ": cannot read file \"%s\": %s", path, strerror(errno));
        goto out;
    }
    out->data[out->len] = 0;
out:
    fclose(f);
    if (rc != 0)
        mp_tls_data_clear(out);
    return rc;
}

static int copy_bytes(const void *p, size_t len, const char *origin, struct mp_tls_data *out)
{
    out->data = malloc(len + 1);
    out->origin = strdup(origin);
    if (out->data == NULL || out->origin == NULL) {
        mp_tls_data_clear(out);
        return MP_ERR_NOMEM;
    }
    if (len > 0)
        memcpy(out->data, p, len);
    out->data[len] = 0;
    out->len = len;
    return 0;
}

/* Loads a DataSource; a NULL or unset one gives an empty out (callers decide
 * whether that is an error). */
static int load_data(const DataSource *ds, struct mp_tls_data *out, char **err)
{
    memset(out, 0, sizeof(*out));
    if (ds == NULL)
        return 0;
    switch (ds->specifier_case) {
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
        return read_file(ds->filename, out, err);
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
        return copy_bytes(ds->inline_bytes.data, ds->inline_bytes.len, "<inline>", out);
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
        return copy_bytes(ds->inline_string, strlen(ds->inline_string), "<inline>", out);
    case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE: {
        const char *v = getenv(ds->environment_variable);
        if (v == NULL)
            return mp_set_err(err, ": environment variable \"%s\" is not set",
                              ds->environment_variable);
        return copy_bytes(v, strlen(v), ds->environment_variable, out);
    }
    default: return 0;
    }
}

static int load_required(const DataSource *ds, const char *field, struct mp_tls_data *out,
                         char **err)
{
    int rc = load_data(ds, out, err);
    if (rc == 0 && out->len == 0)
        rc = mp_set_err(err, ": is empty or not set");
    if (rc != 0)
        mp_err_prefix(err, "%s", field);
    return rc;
}

/* ---- small helpers ------------------------------------------------------- */

static char *join(char **items, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    char *s = malloc(len), *p = s;
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i > 0 ? ":" : "", items[i]);
    *p = 0;
    return s;
}

/* Istio lists "istio-peer-exchange" (its in-band TCP metadata exchange) in
 * the ALPN of sidecar TLS contexts. meshproxy does not speak that protocol,
 * so it neither offers nor accepts the token: a peer that would otherwise
 * send its exchange preamble as stream data skips the exchange instead. */
static void drop_peer_exchange_alpn(struct mp_tls_config *cfg)
{
    size_t out = 0;
    for (size_t i = 0; i < cfg->n_alpn; i++) {
        if (strcmp(cfg->alpn[i], "istio-peer-exchange") == 0)
            free(cfg->alpn[i]);
        else
            cfg->alpn[out++] = cfg->alpn[i];
    }
    cfg->n_alpn = out;
    if (out == 0) {
        free(cfg->alpn);
        cfg->alpn = NULL;
    }
}

static int strv_dup(char **src, size_t n, char ***dst, size_t *n_dst)
{
    *dst = NULL;
    *n_dst = 0;
    if (n == 0)
        return 0;
    char **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(src[i]);
        if (v[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return MP_ERR_NOMEM;
        }
    }
    *dst = v;
    *n_dst = n;
    return 0;
}

/* "df6f..." or "DF:6F:..." -> 32 bytes. */
static int parse_sha256_hex(const char *s, uint8_t out[32])
{
    size_t n = 0;
    for (const char *p = s; *p != 0;) {
        if (*p == ':') {
            p++;
            continue;
        }
        int hi = mp_hex_value(p[0]), lo = p[1] != 0 ? mp_hex_value(p[1]) : -1;
        if (hi < 0 || lo < 0 || n == 32)
            return MP_ERR_INVAL;
        out[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    return n == 32 ? 0 : MP_ERR_INVAL;
}

static int parse_sha256_b64(const char *s, uint8_t out[32])
{
    uint8_t buf[64];
    size_t n = 0;
    if (strlen(s) > 64 || !EVP_DecodeBase64(buf, &n, sizeof(buf), (const uint8_t *)s, strlen(s)))
        return MP_ERR_INVAL;
    if (n != 32)
        return MP_ERR_INVAL;
    memcpy(out, buf, 32);
    return 0;
}

static uint16_t tls_version(int v)
{
    switch (v) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_0:
        return TLS1_VERSION;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_1:
        return TLS1_1_VERSION;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_2:
        return TLS1_2_VERSION;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3:
        return TLS1_3_VERSION;
    default: return 0;
    }
}

/* ---- TlsParameters ------------------------------------------------------- */

static int translate_params(const TlsParams *p, struct mp_tls_config *cfg, char **err)
{
    if (p == NULL)
        return 0;
    uint16_t v;
    if (p->tls_minimum_protocol_version != 0) {
        if ((v = tls_version(p->tls_minimum_protocol_version)) == 0)
            return mp_set_err(err, "tls_minimum_protocol_version: unknown value %d",
                              p->tls_minimum_protocol_version);
        cfg->min_version = v;
    }
    if (p->tls_maximum_protocol_version != 0) {
        if ((v = tls_version(p->tls_maximum_protocol_version)) == 0)
            return mp_set_err(err, "tls_maximum_protocol_version: unknown value %d",
                              p->tls_maximum_protocol_version);
        cfg->max_version = v;
    }
    if (cfg->min_version > cfg->max_version)
        return mp_set_err(err,
                          "tls_minimum_protocol_version: higher than tls_maximum_protocol_version");

    /* Check cipher and curve names now, against a scratch SSL_CTX, so a typo
     * is a NACK with a field path instead of a handshake failure later. */
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    if (probe == NULL)
        return MP_ERR_NOMEM;
    int rc = 0;
    if (p->n_cipher_suites > 0) {
        cfg->cipher_suites = join(p->cipher_suites, p->n_cipher_suites);
        if (cfg->cipher_suites == NULL) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < p->n_cipher_suites; i++) {
            if (!SSL_CTX_set_strict_cipher_list(probe, p->cipher_suites[i])) {
                rc = mp_set_err(err, "cipher_suites[%zu]: unknown cipher suite \"%s\"", i,
                                p->cipher_suites[i]);
                goto out;
            }
        }
        if (!SSL_CTX_set_strict_cipher_list(probe, cfg->cipher_suites)) {
            rc = mp_set_err(err, "cipher_suites: invalid list \"%s\"", cfg->cipher_suites);
            goto out;
        }
    }
    if (p->n_ecdh_curves > 0) {
        cfg->ecdh_curves = join(p->ecdh_curves, p->n_ecdh_curves);
        if (cfg->ecdh_curves == NULL) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < p->n_ecdh_curves; i++) {
            if (!SSL_CTX_set1_curves_list(probe, p->ecdh_curves[i])) {
                rc =
                    mp_set_err(err, "ecdh_curves[%zu]: unknown curve \"%s\"", i, p->ecdh_curves[i]);
                goto out;
            }
        }
    }
    if (p->n_signature_algorithms > 0) {
        cfg->sigalgs = join(p->signature_algorithms, p->n_signature_algorithms);
        if (cfg->sigalgs == NULL) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        if (!SSL_CTX_set1_sigalgs_list(probe, cfg->sigalgs)) {
            rc = mp_set_err(err, "signature_algorithms: invalid list \"%s\"", cfg->sigalgs);
            goto out;
        }
    }
out:
    SSL_CTX_free(probe);
    ERR_clear_error();
    return rc;
}

/* ---- TlsCertificate ------------------------------------------------------ */

static int translate_cert(const TlsCert *pb, struct mp_tls_cert *c, char **err)
{
    memset(c, 0, sizeof(*c));
    int rc;
    if (pb->pkcs12 != NULL)
        return mp_set_err(err, "pkcs12: not supported (use certificate_chain and private_key)");
    if (pb->private_key_provider != NULL)
        return mp_set_err(err, "private_key_provider: not supported");
    if ((rc = load_required(pb->certificate_chain, "certificate_chain", &c->chain, err)) != 0 ||
        (rc = load_required(pb->private_key, "private_key", &c->key, err)) != 0)
        goto fail;
    if ((rc = load_data(pb->password, &c->password, err)) != 0) {
        mp_err_prefix(err, "password");
        goto fail;
    }
    /* Catch a certificate that is not PEM, or a key that does not belong to
     * it, here rather than at the first handshake. */
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    if (probe == NULL) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    BIO *b = BIO_new_mem_buf(c->chain.data, (int)c->chain.len);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    b = BIO_new_mem_buf(c->key.data, (int)c->key.len);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL,
                                                      c->password.len > 0 ? c->password.data : NULL)
                            : NULL;
    BIO_free(b);
    if (x == NULL)
        rc = mp_set_err(err, "certificate_chain: no PEM certificate in %s", c->chain.origin);
    else if (k == NULL)
        rc = mp_set_err(err, "private_key: no PEM private key in %s (or wrong password)",
                        c->key.origin);
    else if (!SSL_CTX_use_certificate(probe, x) || !SSL_CTX_use_PrivateKey(probe, k) ||
             !SSL_CTX_check_private_key(probe))
        rc = mp_set_err(err, "private_key: does not match the certificate in %s", c->chain.origin);
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_CTX_free(probe);
    ERR_clear_error();
    if (rc == 0)
        return 0;
fail:
    mp_tls_data_clear(&c->chain);
    mp_tls_data_clear(&c->key);
    mp_tls_data_clear(&c->password);
    return rc;
}

/* ---- CertificateValidationContext ---------------------------------------- */

static int translate_string_matcher(const StringMatcher *sm, struct mp_tls_str_matcher *out,
                                    char **err)
{
    if (sm == NULL)
        return mp_set_err(err, ": is required");
    switch (sm->match_pattern_case) {
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
        return mp_tls_str_matcher_init(out, MP_TLS_STR_EXACT, sm->ignore_case, sm->exact, err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
        if (sm->prefix[0] == 0)
            return mp_set_err(err, "prefix: must not be empty");
        return mp_tls_str_matcher_init(out, MP_TLS_STR_PREFIX, sm->ignore_case, sm->prefix, err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
        if (sm->suffix[0] == 0)
            return mp_set_err(err, "suffix: must not be empty");
        return mp_tls_str_matcher_init(out, MP_TLS_STR_SUFFIX, sm->ignore_case, sm->suffix, err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
        if (sm->contains[0] == 0)
            return mp_set_err(err, "contains: must not be empty");
        return mp_tls_str_matcher_init(out, MP_TLS_STR_CONTAINS, sm->ignore_case, sm->contains,
                                       err);
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX: {
        if (sm->safe_regex == NULL || sm->safe_regex->regex == NULL)
            return mp_set_err(err, "safe_regex.regex: is required");
        int rc = mp_tls_str_matcher_init(out, MP_TLS_STR_REGEX, false, sm->safe_regex->regex, err);
        if (rc != 0)
            mp_err_prefix(err, "safe_regex.regex");
        return rc;
    }
    case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CUSTOM:
        return mp_set_err(err, "custom: not supported");
    default: return mp_set_err(err, ": no match pattern set");
    }
}

static bool pem_has_cert(BIO *b)
{
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509_free(x);
    return x != NULL;
}

static bool pem_has_crl(BIO *b)
{
    X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    X509_CRL_free(crl);
    return crl != NULL;
}

/* Loads a PEM DataSource (trusted_ca, crl); when it is set, at least one
 * object of its kind (what) must parse, or nothing could ever verify
 * against it. Errors are prefixed with field. */
static int load_pem(const DataSource *ds, const char *field, bool (*parses)(BIO *),
                    const char *what, struct mp_tls_data *out, char **err)
{
    int rc = load_data(ds, out, err);
    if (rc != 0) {
        mp_err_prefix(err, "%s", field);
        return rc;
    }
    if (out->len == 0)
        return 0;
    BIO *b = BIO_new_mem_buf(out->data, (int)out->len);
    bool ok = b != NULL && parses(b);
    BIO_free(b);
    ERR_clear_error();
    if (!ok)
        return mp_set_err(err, "%s: no PEM %s in %s", field, what, out->origin);
    return 0;
}

static int translate_validation(const ValCtx *pb, struct mp_tls_validation **out, char **err)
{
    *out = NULL;
    struct mp_tls_validation *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return MP_ERR_NOMEM;
    int rc;
    if (pb->custom_validator_config != NULL) {
        rc = mp_set_err(err, "custom_validator_config: not supported");
        goto fail;
    }
    if (pb->ca_certificate_provider_instance != NULL) {
        rc = mp_set_err(err, "ca_certificate_provider_instance: not supported");
        goto fail;
    }
    if (pb->system_root_certs != NULL) {
        rc = mp_set_err(err, "system_root_certs: not supported (set trusted_ca)");
        goto fail;
    }
    if ((rc = load_pem(pb->trusted_ca, "trusted_ca", pem_has_cert, "certificate", &v->trusted_ca,
                       err)) != 0 ||
        (rc = load_pem(pb->crl, "crl", pem_has_crl, "CRL", &v->crl, err)) != 0)
        goto fail;
    v->only_verify_leaf_cert_crl = pb->only_verify_leaf_cert_crl;
    v->allow_expired = pb->allow_expired_certificate;
    v->accept_untrusted =
        pb->trust_chain_verification ==
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__ACCEPT_UNTRUSTED;
    if (pb->max_verify_depth != NULL)
        v->max_verify_depth = pb->max_verify_depth->value;

    /* typed SAN matchers win; the deprecated list is used only when they are absent. */
    size_t n = pb->n_match_typed_subject_alt_names > 0 ? pb->n_match_typed_subject_alt_names
                                                       : pb->n_match_subject_alt_names;
    if (n > 0) {
        v->sans = calloc(n, sizeof(*v->sans));
        if (v->sans == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
    }
    for (size_t i = 0; i < pb->n_match_typed_subject_alt_names; i++) {
        const SanMatcher *sm = pb->match_typed_subject_alt_names[i];
        struct mp_tls_san_matcher *m = &v->sans[i];
        switch ((int)sm->san_type) {
        case MP_TLS_SAN_EMAIL:
        case MP_TLS_SAN_DNS:
        case MP_TLS_SAN_URI:
        case MP_TLS_SAN_IP: m->type = (enum mp_tls_san_type)sm->san_type; break;
        case 5:
            rc = mp_set_err(err,
                            "match_typed_subject_alt_names[%zu].san_type: OTHER_NAME is not "
                            "supported",
                            i);
            goto fail;
        default:
            rc = mp_set_err(err,
                            "match_typed_subject_alt_names[%zu].san_type: must be one of "
                            "EMAIL, DNS, URI, IP_ADDRESS",
                            i);
            goto fail;
        }
        if ((rc = translate_string_matcher(sm->matcher, &m->str, err)) != 0) {
            mp_err_prefix(err, "match_typed_subject_alt_names[%zu].matcher", i);
            goto fail;
        }
        v->n_sans = i + 1;
    }
    if (pb->n_match_typed_subject_alt_names == 0) {
        for (size_t i = 0; i < pb->n_match_subject_alt_names; i++) {
            v->sans[i].type = MP_TLS_SAN_ANY;
            if ((rc = translate_string_matcher(pb->match_subject_alt_names[i], &v->sans[i].str,
                                               err)) != 0) {
                mp_err_prefix(err, "match_subject_alt_names[%zu]", i);
                goto fail;
            }
            v->n_sans = i + 1;
        }
    }
    if (pb->n_verify_certificate_hash > 0) {
        v->cert_hashes = calloc(pb->n_verify_certificate_hash, 32);
        if (v->cert_hashes == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < pb->n_verify_certificate_hash; i++) {
            if (parse_sha256_hex(pb->verify_certificate_hash[i], v->cert_hashes[i]) != 0) {
                rc = mp_set_err(err, "verify_certificate_hash[%zu]: \"%s\" is not a hex SHA-256", i,
                                pb->verify_certificate_hash[i]);
                goto fail;
            }
        }
        v->n_cert_hashes = pb->n_verify_certificate_hash;
    }
    if (pb->n_verify_certificate_spki > 0) {
        v->spki_hashes = calloc(pb->n_verify_certificate_spki, 32);
        if (v->spki_hashes == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < pb->n_verify_certificate_spki; i++) {
            if (parse_sha256_b64(pb->verify_certificate_spki[i], v->spki_hashes[i]) != 0) {
                rc = mp_set_err(err, "verify_certificate_spki[%zu]: \"%s\" is not a base64 SHA-256",
                                i, pb->verify_certificate_spki[i]);
                goto fail;
            }
        }
        v->n_spki_hashes = pb->n_verify_certificate_spki;
    }
    *out = v;
    return 0;
fail:
    mp_tls_validation_free(v);
    return rc;
}

/* ---- SdsSecretConfig ----------------------------------------------------- */

static int translate_sds(const SdsConfig *pb, struct mp_tls_sds_ref *r, char **err)
{
    memset(r, 0, sizeof(*r));
    if (pb->name == NULL || pb->name[0] == 0)
        return mp_set_err(err, "name: must not be empty");
    const Envoy__Config__Core__V3__ConfigSource *cs = pb->sds_config;
    if (cs == NULL) {
        r->is_static = true;
    } else {
        switch (cs->config_source_specifier_case) {
        case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS:
            r->ads = true;
            break;
        case ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE: {
            const Envoy__Config__Core__V3__ApiConfigSource *api = cs->api_config_source;
            const char *cluster = NULL;
            if (api->n_grpc_services > 0 &&
                api->grpc_services[0]->target_specifier_case ==
                    ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC)
                cluster = api->grpc_services[0]->envoy_grpc->cluster_name;
            else if (api->n_cluster_names > 0)
                cluster = api->cluster_names[0];
            if (cluster == NULL || cluster[0] == 0)
                return mp_set_err(err, "sds_config.api_config_source: needs "
                                       "grpc_services[0].envoy_grpc.cluster_name");
            r->cluster = strdup(cluster);
            if (r->cluster == NULL)
                return MP_ERR_NOMEM;
            break;
        }
        default: return mp_set_err(err, "sds_config: only ads or api_config_source are supported");
        }
    }
    r->name = strdup(pb->name);
    if (r->name == NULL) {
        free(r->cluster);
        r->cluster = NULL;
        return MP_ERR_NOMEM;
    }
    return 0;
}

static int translate_sds_one(const SdsConfig *pb, struct mp_tls_sds_ref **out, const char *field,
                             char **err)
{
    struct mp_tls_sds_ref *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MP_ERR_NOMEM;
    int rc = translate_sds(pb, r, err);
    if (rc != 0) {
        free(r);
        mp_err_prefix(err, "%s", field);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- ticket keys --------------------------------------------------------- */

static int translate_ticket_keys(const TicketKeys *pb, uint8_t (**keys)[80], size_t *n_keys,
                                 char **err)
{
    if (pb->n_keys == 0)
        return mp_set_err(err, "keys: at least one key is required");
    uint8_t(*k)[80] = calloc(pb->n_keys, 80);
    if (k == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < pb->n_keys; i++) {
        struct mp_tls_data d;
        int rc = load_data(pb->keys[i], &d, err);
        if (rc == 0 && d.len != 80)
            rc = mp_set_err(err, ": must be 80 bytes (got %zu)", d.len);
        if (rc == 0)
            memcpy(k[i], d.data, 80);
        mp_tls_data_clear(&d);
        if (rc != 0) {
            mp_err_prefix(err, "keys[%zu]", i);
            memset(k, 0, pb->n_keys * 80);
            free(k);
            return rc;
        }
    }
    *keys = k;
    *n_keys = pb->n_keys;
    return 0;
}

/* ---- CommonTlsContext ---------------------------------------------------- */

static int translate_common(const CommonTls *pb, struct mp_tls_config *cfg, char **err)
{
    int rc;
    if (pb == NULL)
        return 0;
    if ((rc = translate_params(pb->tls_params, cfg, err)) != 0) {
        mp_err_prefix(err, "tls_params");
        return rc;
    }
    if (pb->tls_certificate_provider_instance != NULL)
        return mp_set_err(err, "tls_certificate_provider_instance: not supported");
    if (pb->custom_handshaker != NULL)
        return mp_set_err(err, "custom_handshaker: not supported");
    if (pb->n_tls_certificates > 0) {
        if (cfg->side == MP_TLS_CLIENT && pb->n_tls_certificates > 1)
            return mp_set_err(err, "tls_certificates: a client context takes one certificate");
        cfg->certs = calloc(pb->n_tls_certificates, sizeof(*cfg->certs));
        if (cfg->certs == NULL)
            return MP_ERR_NOMEM;
        for (size_t i = 0; i < pb->n_tls_certificates; i++) {
            if ((rc = translate_cert(pb->tls_certificates[i], &cfg->certs[i], err)) != 0) {
                mp_err_prefix(err, "tls_certificates[%zu]", i);
                return rc;
            }
            cfg->n_certs = i + 1;
        }
    } else if (pb->n_tls_certificate_sds_secret_configs > 0) {
        /* Envoy ignores the SDS list when inline certificates are given. */
        size_t n = pb->n_tls_certificate_sds_secret_configs;
        cfg->cert_sds = calloc(n, sizeof(*cfg->cert_sds));
        if (cfg->cert_sds == NULL)
            return MP_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            if ((rc = translate_sds(pb->tls_certificate_sds_secret_configs[i], &cfg->cert_sds[i],
                                    err)) != 0) {
                mp_err_prefix(err, "tls_certificate_sds_secret_configs[%zu]", i);
                return rc;
            }
            cfg->n_cert_sds = i + 1;
        }
    }
    if ((rc = strv_dup(pb->alpn_protocols, pb->n_alpn_protocols, &cfg->alpn, &cfg->n_alpn)) != 0)
        return rc;
    for (size_t i = 0; i < cfg->n_alpn; i++) {
        size_t len = strlen(cfg->alpn[i]);
        if (len == 0 || len > 255)
            return mp_set_err(err, "alpn_protocols[%zu]: must be 1 to 255 bytes", i);
    }
    drop_peer_exchange_alpn(cfg);
    switch (pb->validation_context_type_case) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT:
        if ((rc = translate_validation(pb->validation_context, &cfg->validation, err)) != 0) {
            mp_err_prefix(err, "validation_context");
            return rc;
        }
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG:
        if ((rc = translate_sds_one(pb->validation_context_sds_secret_config, &cfg->validation_sds,
                                    "validation_context_sds_secret_config", err)) != 0)
            return rc;
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT: {
        const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
            *c = pb->combined_validation_context;
        if (c->default_validation_context != NULL &&
            (rc = translate_validation(c->default_validation_context, &cfg->validation, err)) !=
                0) {
            mp_err_prefix(err, "combined_validation_context.default_validation_context");
            return rc;
        }
        if (c->validation_context_sds_secret_config == NULL)
            return mp_set_err(err, "combined_validation_context.validation_context_sds_secret_"
                                   "config: is required");
        if ((rc = translate_sds_one(c->validation_context_sds_secret_config, &cfg->validation_sds,
                                    "combined_validation_context.validation_context_sds_secret_"
                                    "config",
                                    err)) != 0)
            return rc;
        break;
    }
    case 0: break;
    default: return mp_set_err(err, "validation_context_certificate_provider: not supported");
    }
    return 0;
}

static int finish(struct mp_tls_config *cfg, int rc, struct mp_tls_config **out, char **err)
{
    if (rc != 0) {
        if (rc == MP_ERR_NOMEM && err != NULL && *err == NULL)
            mp_set_err(err, "out of memory");
        mp_tls_config_unref(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* Sets *out to NULL and makes *cfg, a config of side with common translated.
 * On failure returns the error, having freed the config (as finish() does). */
static int start_config(enum mp_tls_side side, const CommonTls *common, struct mp_tls_config **cfg,
                        struct mp_tls_config **out, char **err)
{
    *out = NULL;
    *cfg = mp_tls_config_new(side);
    if (*cfg == NULL)
        return MP_ERR_NOMEM;
    int rc = translate_common(common, *cfg, err);
    if (rc != 0) {
        mp_err_prefix(err, "common_tls_context");
        return finish(*cfg, rc, out, err);
    }
    return 0;
}

int mp_xds_translate_downstream_tls(
    const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *pb,
    struct mp_tls_config **out, char **err)
{
    struct mp_tls_config *cfg;
    int rc = start_config(MP_TLS_SERVER, pb->common_tls_context, &cfg, out, err);
    if (rc != 0)
        return rc;
    if (cfg->n_certs == 0 && cfg->n_cert_sds == 0)
        return finish(cfg,
                      mp_set_err(err, "common_tls_context: a server needs tls_certificates or "
                                      "tls_certificate_sds_secret_configs"),
                      out, err);
    cfg->require_client_certificate =
        pb->require_client_certificate != NULL && pb->require_client_certificate->value;
    if (cfg->require_client_certificate && cfg->validation == NULL && cfg->validation_sds == NULL)
        return finish(cfg,
                      mp_set_err(err, "require_client_certificate: needs a validation context"),
                      out, err);
    cfg->session_cache = !pb->disable_stateful_session_resumption;
    if (pb->session_timeout != NULL) {
        if (pb->session_timeout->seconds < 0 || pb->session_timeout->seconds > UINT32_MAX)
            return finish(cfg, mp_set_err(err, "session_timeout: out of range"), out, err);
        cfg->session_timeout_s = (uint32_t)pb->session_timeout->seconds;
    }
    switch (pb->session_ticket_keys_type_case) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS:
        rc = translate_ticket_keys(pb->session_ticket_keys, &cfg->ticket_keys, &cfg->n_ticket_keys,
                                   err);
        if (rc != 0)
            mp_err_prefix(err, "session_ticket_keys");
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS_SDS_SECRET_CONFIG:
        rc = translate_sds_one(pb->session_ticket_keys_sds_secret_config, &cfg->ticket_keys_sds,
                               "session_ticket_keys_sds_secret_config", err);
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION:
        cfg->session_tickets = !pb->disable_stateless_session_resumption;
        break;
    default: break;
    }
    return finish(cfg, rc, out, err);
}

int mp_xds_translate_upstream_tls(
    const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *pb,
    struct mp_tls_config **out, char **err)
{
    struct mp_tls_config *cfg;
    int rc = start_config(MP_TLS_CLIENT, pb->common_tls_context, &cfg, out, err);
    if (rc != 0)
        return rc;
    if (pb->sni != NULL && pb->sni[0] != 0) {
        if (strlen(pb->sni) > 255)
            return finish(cfg, mp_set_err(err, "sni: longer than 255 bytes"), out, err);
        if ((cfg->sni = strdup(pb->sni)) == NULL)
            return finish(cfg, MP_ERR_NOMEM, out, err);
    }
    cfg->allow_renegotiation = pb->allow_renegotiation;
    if (pb->max_session_keys != NULL)
        cfg->max_session_keys = pb->max_session_keys->value;
    cfg->session_tickets = cfg->max_session_keys > 0;
    cfg->session_cache = false;
    return finish(cfg, 0, out, err);
}

int mp_xds_translate_tls_any(const char *type_url, const uint8_t *value, size_t len,
                             enum mp_tls_side side, struct mp_tls_config **out, char **err)
{
    *out = NULL;
    const char *want =
        side == MP_TLS_SERVER ? MP_TLS_DOWNSTREAM_TYPE_URL : MP_TLS_UPSTREAM_TYPE_URL;
    if (type_url == NULL || strcmp(type_url, want) != 0)
        return mp_set_err(err, "type_url: expected \"%s\", got \"%s\"", want,
                          type_url != NULL ? type_url : "");
    int rc;
    if (side == MP_TLS_SERVER) {
        Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *pb =
            envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__unpack(NULL, len,
                                                                                          value);
        if (pb == NULL)
            return mp_set_err(err, "value: cannot decode DownstreamTlsContext");
        rc = mp_xds_translate_downstream_tls(pb, out, err);
        envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__free_unpacked(pb,
                                                                                             NULL);
    } else {
        Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *pb =
            envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__unpack(NULL, len,
                                                                                        value);
        if (pb == NULL)
            return mp_set_err(err, "value: cannot decode UpstreamTlsContext");
        rc = mp_xds_translate_upstream_tls(pb, out, err);
        envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__free_unpacked(pb,
                                                                                           NULL);
    }
    return rc;
}

int mp_xds_translate_transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts,
                                      enum mp_tls_side side, struct mp_tls_config **out, char **err)
{
    *out = NULL;
    if (ts == NULL)
        return 0;
    const char *name = ts->name != NULL ? ts->name : "";
    const Google__Protobuf__Any *any =
        ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG
            ? ts->typed_config
            : NULL;
    const char *type_url = any != NULL && any->type_url != NULL ? any->type_url : "";
    bool tls_type = strcmp(type_url, MP_TLS_DOWNSTREAM_TYPE_URL) == 0 ||
                    strcmp(type_url, MP_TLS_UPSTREAM_TYPE_URL) == 0;
    if (!tls_type && (strcmp(name, "envoy.transport_sockets.raw_buffer") == 0 ||
                      strcmp(name, "raw_buffer") == 0))
        return 0;
    if (!tls_type && strcmp(name, "envoy.transport_sockets.tls") != 0 && strcmp(name, "tls") != 0) {
        mp_set_err(err, "name: transport socket \"%s\" is not supported", name);
        return MP_ERR_UNSUPPORTED;
    }
    if (any == NULL)
        return mp_set_err(err, "typed_config: is required for \"%s\"", name);
    int rc = mp_xds_translate_tls_any(type_url, any->value.data, any->value.len, side, out, err);
    if (rc != 0)
        mp_err_prefix(err, "typed_config");
    return rc;
}

int mp_xds_translate_secret(const Envoy__Extensions__TransportSockets__Tls__V3__Secret *pb,
                            struct mp_tls_secret **out, char **err)
{
    *out = NULL;
    if (pb->name == NULL || pb->name[0] == 0)
        return mp_set_err(err, "name: must not be empty");
    struct mp_tls_secret *s = mp_tls_secret_new();
    if (s == NULL || (s->name = strdup(pb->name)) == NULL) {
        mp_tls_secret_unref(s);
        return MP_ERR_NOMEM;
    }
    int rc;
    switch (pb->type_case) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE:
        s->kind = MP_TLS_SECRET_CERT;
        if ((rc = translate_cert(pb->tls_certificate, &s->cert, err)) != 0)
            mp_err_prefix(err, "tls_certificate");
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT:
        s->kind = MP_TLS_SECRET_VALIDATION;
        if ((rc = translate_validation(pb->validation_context, &s->validation, err)) != 0)
            mp_err_prefix(err, "validation_context");
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_SESSION_TICKET_KEYS:
        s->kind = MP_TLS_SECRET_TICKET_KEYS;
        if ((rc = translate_ticket_keys(pb->session_ticket_keys, &s->ticket_keys, &s->n_ticket_keys,
                                        err)) != 0)
            mp_err_prefix(err, "session_ticket_keys");
        break;
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_GENERIC_SECRET:
        s->kind = MP_TLS_SECRET_GENERIC;
        if ((rc = load_data(pb->generic_secret->secret, &s->generic, err)) != 0)
            mp_err_prefix(err, "generic_secret.secret");
        break;
    default: rc = mp_set_err(err, "no secret type set"); break;
    }
    if (rc != 0) {
        if (rc == MP_ERR_NOMEM && err != NULL && *err == NULL)
            mp_set_err(err, "out of memory");
        mp_tls_secret_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}
