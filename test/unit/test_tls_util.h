/*
 * test_tls_util.h: certificates made by the openssl CLI in a temp dir, and
 * TLS context protos pointing at them, for the tls unit tests.
 *
 * Made per test run (never committed): a CA, a second CA, workload certs with
 * SPIFFE URI SANs for sa/web and sa/api signed by the CA, an expired sa/api
 * cert, a revoked sa/api cert with the CA's CRL (ca.crl), and an sa/api cert
 * signed by the other CA.
 */
#ifndef MP_TEST_TLS_UTIL_H
#define MP_TEST_TLS_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "read_all.h"

/* protobuf-c's __INIT macros fill deprecated fields too; clang warns on each use. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define SPIFFE_WEB "spiffe://cluster.local/ns/default/sa/web"
#define SPIFFE_API "spiffe://cluster.local/ns/default/sa/api"

static const char cert_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "q() { \"$@\" >/dev/null 2>&1; }\n"
    "ca() { q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
    "  -keyout $1.key -out $1.crt -days 3650 -subj /CN=$1 "
    "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }\n"
    "ext() { printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
    "extendedKeyUsage=serverAuth,clientAuth\\nsubjectAltName=URI:%s,DNS:%s.default.svc\\n' "
    "  \"$2\" \"$1\" > $1.ext; }\n"
    "csr() { q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
    "  -keyout $1.key -out $1.csr -subj /CN=$2/O=mesh; }\n"
    "leaf() { csr $1 $2; ext $1 $3; q openssl x509 -req -in $1.csr -CA $4.crt -CAkey $4.key "
    "  -set_serial 0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n') -days 365 -extfile $1.ext "
    "  -out $1.crt; }\n"
    "ca ca\n"
    "ca otherca\n"
    "leaf web web " SPIFFE_WEB " ca\n"
    "leaf api api " SPIFFE_API " ca\n"
    "leaf foreign api " SPIFFE_API " otherca\n"
    /* The expired one needs explicit dates: only `openssl ca` takes them in OpenSSL 3.0. */
    "csr expired api; ext expired " SPIFFE_API "\n"
    ": > index.txt; echo 1000 > serial\n"
    "printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\nserial=serial\\n"
    "unique_subject=no\\nnew_certs_dir=.\\ncertificate=ca.crt\\nprivate_key=ca.key\\ndefault_md="
    "sha256\\n"
    "policy=p\\n[p]\\ncommonName=supplied\\norganizationName=optional\\n' > ca.cnf\n"
    "q openssl ca -batch -config ca.cnf -in expired.csr -out expired.crt -notext "
    "  -startdate 20200101000000Z -enddate 20200201000000Z -extfile expired.ext\n"
    /* one more, revoked, and the CA's CRL listing it */
    "csr revoked api; ext revoked " SPIFFE_API "\n"
    "q openssl ca -batch -config ca.cnf -in revoked.csr -out revoked.crt -notext -days 365 "
    "  -extfile revoked.ext\n"
    "q openssl ca -config ca.cnf -revoke revoked.crt\n"
    "q openssl ca -config ca.cnf -gencrl -crldays 30 -out ca.crl\n"
    "rm -f *.csr *.ext ca.cnf index.txt* serial* ./*.pem\n";

/* Makes the certificates in a new temp dir (path written to dir). Returns 0
 * or -1 (openssl missing or failing). */
__attribute__((unused)) static int tls_test_make_certs(char dir[64])
{
    snprintf(dir, 64, "/tmp/mp_tls_test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char script[128];
    snprintf(script, sizeof(script), "%s/make.sh", dir);
    FILE *f = fopen(script, "w");
    if (f == NULL)
        return -1;
    fputs(cert_script, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "sh %s %s", script, dir);
    return system(cmd) == 0 ? 0 : -1;
}

__attribute__((unused)) static void tls_test_remove_certs(const char *dir)
{
    char cmd[128];
    if (strncmp(dir, "/tmp/mp_tls_test.", 17) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Reads a whole file into a NUL-terminated malloc'd string (or NULL). */
__attribute__((unused)) static char *tls_test_slurp(const char *dir, const char *name)
{
    char path[128];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return read_all(path, &len);
}

/* A CommonTlsContext and its parts, in one struct so a test needs no frees. */
struct pb_tls {
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext down;
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext up;
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext common;
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate cert;
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *certs[1];
    Envoy__Config__Core__V3__DataSource chain, key, ca;
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext val;
    Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher san;
    Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *sans[1];
    Envoy__Type__Matcher__V3__StringMatcher sm;
    Google__Protobuf__BoolValue require;
    char *alpn[4];
    char paths[3][128];
};

static void pb_tls_file(Envoy__Config__Core__V3__DataSource *ds, char *buf, const char *dir,
                        const char *name)
{
    *ds = (Envoy__Config__Core__V3__DataSource)ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    snprintf(buf, 128, "%s/%s", dir, name);
    ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
    ds->filename = buf;
}

/*
 * Fills p: certificate <name>.crt/<name>.key (name may be NULL), trusted CA
 * <ca>.crt (NULL: no validation context), one URI SAN matcher exact san
 * (NULL: none), and ALPN list alpn (NULL-terminated, may be NULL).
 */
__attribute__((unused)) static void pb_tls_init(struct pb_tls *p, const char *dir, const char *name,
                                                const char *ca, const char *san,
                                                const char *const *alpn)
{
    memset(p, 0, sizeof(*p));
    p->down = (Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext)
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__INIT;
    p->up = (Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext)
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT;
    p->common = (Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext)
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__INIT;
    p->down.common_tls_context = &p->common;
    p->up.common_tls_context = &p->common;
    if (name != NULL) {
        char crt[64], key[64];
        snprintf(crt, sizeof(crt), "%s.crt", name);
        snprintf(key, sizeof(key), "%s.key", name);
        p->cert = (Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate)
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT;
        pb_tls_file(&p->chain, p->paths[0], dir, crt);
        pb_tls_file(&p->key, p->paths[1], dir, key);
        p->cert.certificate_chain = &p->chain;
        p->cert.private_key = &p->key;
        p->certs[0] = &p->cert;
        p->common.tls_certificates = p->certs;
        p->common.n_tls_certificates = 1;
    }
    if (ca != NULL) {
        char crt[64];
        snprintf(crt, sizeof(crt), "%s.crt", ca);
        p->val = (Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext)
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__INIT;
        pb_tls_file(&p->ca, p->paths[2], dir, crt);
        p->val.trusted_ca = &p->ca;
        p->common.validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
        p->common.validation_context = &p->val;
        if (san != NULL) {
            p->san = (Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher)
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__INIT;
            p->sm = (Envoy__Type__Matcher__V3__StringMatcher)
                ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__INIT;
            p->sm.match_pattern_case =
                ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
            p->sm.exact = (char *)san;
            p->san.san_type =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI;
            p->san.matcher = &p->sm;
            p->sans[0] = &p->san;
            p->val.match_typed_subject_alt_names = p->sans;
            p->val.n_match_typed_subject_alt_names = 1;
        }
    }
    size_t n = 0;
    while (alpn != NULL && alpn[n] != NULL && n < 4) {
        p->alpn[n] = (char *)alpn[n];
        n++;
    }
    p->common.alpn_protocols = p->alpn;
    p->common.n_alpn_protocols = n;
    p->require = (Google__Protobuf__BoolValue)GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
}

/* Makes p's DownstreamTlsContext require a client certificate. */
__attribute__((unused)) static void pb_tls_require_client_cert(struct pb_tls *p)
{
    p->require.value = 1;
    p->down.require_client_certificate = &p->require;
}

#endif
