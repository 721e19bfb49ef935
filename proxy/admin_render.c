/*
 * admin_render.c: admin output in Envoy's shapes, with no server state, so
 * that unit tests can check it byte for byte.
 */
#include "admin_render.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* jemalloc is linked into the meshproxy binary only (not sanitizer builds,
 * not unit tests): a weak reference says at run time whether it is there. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
/* Under ASan the sanitizer's allocator serves malloc and mallinfo2 reads 0;
 * its own counters are the real ones then. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
extern size_t __sanitizer_get_heap_size(void) __attribute__((weak));
extern size_t __sanitizer_get_free_bytes(void) __attribute__((weak));
extern size_t __sanitizer_get_unmapped_bytes(void) __attribute__((weak));

#include "cluster.h"
#include "log.h"
#include "mp_common.h"

int mp_admin_json_str(struct mp_buffer *b, const char *s)
{
    int rc = mp_buffer_appendf(b, "\"");
    for (; rc == 0 && s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            rc = mp_buffer_appendf(b, "\\%c", ch);
        else if (ch < 0x20)
            rc = mp_buffer_appendf(b, "\\u%04x", ch);
        else
            rc = mp_buffer_appendf(b, "%c", ch);
    }
    return rc ? rc : mp_buffer_appendf(b, "\"");
}

int mp_admin_render_address_json(struct mp_buffer *b, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        /* An abstract socket starts with NUL; Envoy shows it as "@name". */
        char path[sizeof(un->sun_path) + 1];
        if (un->sun_path[0] == '\0' && un->sun_path[1] != '\0')
            snprintf(path, sizeof(path), "@%s", un->sun_path + 1);
        else
            snprintf(path, sizeof(path), "%.*s", (int)sizeof(un->sun_path), un->sun_path);
        int rc = mp_buffer_appendf(b, "{\"pipe\":{\"path\":");
        if (rc == 0)
            rc = mp_admin_json_str(b, path);
        return rc ? rc : mp_buffer_appendf(b, "}}");
    }
    return mp_buffer_appendf(b, "{\"socket_address\":{\"address\":\"%s\",\"port_value\":%u}}", ip,
                             port);
}

/* envoy.config.core.v3.HealthStatus names; a host EDS left UNKNOWN counts as
 * healthy, and Envoy's admin shows it so. */
static const char *eds_health_name(uint32_t v)
{
    static const char *const names[] = {"HEALTHY",  "HEALTHY", "UNHEALTHY",
                                        "DRAINING", "TIMEOUT", "DEGRADED"};
    return v < MP_ARRAY_LEN(names) ? names[v] : "HEALTHY";
}

int mp_admin_render_host_json(struct mp_buffer *b, const struct mp_host *h,
                              const struct mp_locality *loc, const struct mp_admin_host_stats *st)
{
    static const char *const names[] = {"cx_connect_fail", "cx_total", "rq_error",  "rq_success",
                                        "rq_timeout",      "rq_total", "cx_active", "rq_active"};
    const uint64_t vals[] = {st->cx_connect_fail, st->cx_total, st->rq_error,  st->rq_success,
                             st->rq_timeout,      st->rq_total, st->cx_active, st->rq_active};
    int rc = mp_buffer_appendf(b, "{\"address\":");
    if (rc == 0)
        rc = mp_admin_render_address_json(b, (const struct sockaddr *)&h->addr);
    if (rc == 0)
        rc = mp_buffer_appendf(b, ",\"stats\":[");
    for (size_t k = 0; rc == 0 && k < MP_ARRAY_LEN(names); k++)
        rc = mp_buffer_appendf(b, "%s{\"name\":\"%s\",\"value\":\"%" PRIu64 "\"%s}", k ? "," : "",
                               names[k], vals[k], k >= 6 ? ",\"type\":\"GAUGE\"" : "");
    if (rc == 0)
        rc = mp_buffer_appendf(b, "],\"health_status\":{\"eds_health_status\":\"%s\"%s}",
                               eds_health_name(h->eds_health),
                               h->health == MP_HOST_UNHEALTHY && h->eds_health <= 1
                                   ? ",\"failed_active_health_check\":true"
                                   : "");
    if (rc == 0)
        rc = mp_buffer_appendf(b, ",\"weight\":%u", h->weight);
    if (rc == 0 && h->hostname && h->hostname[0]) {
        rc = mp_buffer_appendf(b, ",\"hostname\":");
        if (rc == 0)
            rc = mp_admin_json_str(b, h->hostname);
    }
    if (rc == 0 && h->priority)
        rc = mp_buffer_appendf(b, ",\"priority\":%u", h->priority);
    if (rc == 0 && loc && (loc->region[0] || loc->zone[0] || loc->sub_zone[0])) {
        const char *keys[] = {"region", "zone", "sub_zone"};
        const char *vs[] = {loc->region, loc->zone, loc->sub_zone};
        bool first = true;
        rc = mp_buffer_appendf(b, ",\"locality\":{");
        for (size_t k = 0; rc == 0 && k < 3; k++) {
            if (!vs[k][0])
                continue;
            rc = mp_buffer_appendf(b, "%s\"%s\":", first ? "" : ",", keys[k]);
            if (rc == 0)
                rc = mp_admin_json_str(b, vs[k]);
            first = false;
        }
        if (rc == 0)
            rc = mp_buffer_appendf(b, "}");
    }
    return rc ? rc : mp_buffer_appendf(b, "}");
}

static enum mp_log_level current_level(enum mp_log_component c)
{
    for (int l = MP_LOG_TRACE; l < MP_LOG_OFF; l++)
        if (mp_log_enabled(c, (enum mp_log_level)l))
            return (enum mp_log_level)l;
    return MP_LOG_OFF;
}

static int by_component_name(const void *a, const void *b)
{
    return strcmp(mp_log_component_name(*(const enum mp_log_component *)a),
                  mp_log_component_name(*(const enum mp_log_component *)b));
}

int mp_admin_render_logging(struct mp_buffer *b)
{
    enum mp_log_component order[MP_LOG_COMPONENT_COUNT];
    for (int i = 0; i < MP_LOG_COMPONENT_COUNT; i++)
        order[i] = (enum mp_log_component)i;
    qsort(order, MP_LOG_COMPONENT_COUNT, sizeof(order[0]), by_component_name);
    int rc = mp_buffer_appendf(b, "active loggers:\n");
    for (int i = 0; rc == 0 && i < MP_LOG_COMPONENT_COUNT; i++)
        rc = mp_buffer_appendf(b, "  %s: %s\n", mp_log_component_name(order[i]),
                               mp_log_level_name(current_level(order[i])));
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..n) into dst (cap bytes, NUL terminated). */
static void pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (src[i] == '%' && i + 2 < n + 0 && hexval(src[i + 1]) >= 0 && hexval(src[i + 2]) >= 0) {
            dst[o++] = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            i += 2;
        } else if (src[i] == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = src[i];
        }
    }
    if (cap)
        dst[o] = '\0';
}

bool mp_admin_query_get(const char *query, const char *key, char *val, size_t cap)
{
    if (!query)
        return false;
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= kl && strncmp(p, key, kl) == 0 && (len == kl || p[kl] == '=')) {
            if (val && cap)
                pct_decode(p + kl + (len > kl), len - kl - (len > kl), val, cap);
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

int mp_admin_logging_apply(const char *query, char **err)
{
    if (!query || !*query || strchr(query, '&'))
        return mp_set_err(err, "usage: /logging?<name>=<level> (change single level), "
                               "/logging?paths=<name>:<level>,... (change multiple levels), "
                               "/logging?level=<level> (change all levels)");
    const char *eq = strchr(query, '=');
    char name[64], value[512];
    if (!eq || (size_t)(eq - query) >= sizeof(name))
        return mp_set_err(err, "/logging: \"%s\" is not <name>=<level>", query);
    pct_decode(query, (size_t)(eq - query), name, sizeof(name));
    pct_decode(eq + 1, strlen(eq + 1), value, sizeof(value));
    if (strcmp(name, "level") == 0) {
        enum mp_log_level lvl;
        if (mp_log_level_parse(value, &lvl) != 0)
            return mp_set_err(err, "/logging: unknown level \"%s\"", value);
        mp_log_set_level(lvl);
        return 0;
    }
    char spec[600];
    if (strcmp(name, "paths") == 0)
        snprintf(spec, sizeof(spec), "%s", value);
    else
        snprintf(spec, sizeof(spec), "%s:%s", name, value);
    char *e = NULL;
    int rc = mp_log_set_component_levels(spec, &e);
    if (rc != 0) {
        /* Say /logging, not the command-line flag the parser names. */
        const char *msg = e ? e : "invalid";
        const char *flag = "--component-log-level: ";
        if (strncmp(msg, flag, strlen(flag)) == 0)
            msg += strlen(flag);
        rc = mp_set_err(err, "/logging: %s", msg);
        free(e);
    }
    return rc;
}

int mp_admin_render_memory(struct mp_buffer *b)
{
    uint64_t allocated = 0, heap = 0, unmapped = 0, pfree = 0, tcache = 0, physical = 0;
    if (mallctl) {
        /* jemalloc's stats are a snapshot refreshed by writing "epoch". */
        uint64_t epoch = 1;
        size_t sz = sizeof(epoch);
        mallctl("epoch", &epoch, &sz, &epoch, sz);
        size_t v = 0;
        sz = sizeof(v);
        if (mallctl("stats.allocated", &v, &sz, NULL, 0) == 0)
            allocated = v;
        sz = sizeof(v);
        if (mallctl("stats.mapped", &v, &sz, NULL, 0) == 0)
            heap = v;
        sz = sizeof(v);
        if (mallctl("stats.retained", &v, &sz, NULL, 0) == 0)
            unmapped = v;
        sz = sizeof(v);
        size_t active = 0;
        if (mallctl("stats.active", &active, &sz, NULL, 0) == 0 && heap > active)
            pfree = heap - active;
        sz = sizeof(v);
        if (mallctl("stats.resident", &v, &sz, NULL, 0) == 0)
            physical = v;
    } else if (__sanitizer_get_current_allocated_bytes && __sanitizer_get_heap_size) {
        allocated = __sanitizer_get_current_allocated_bytes();
        heap = __sanitizer_get_heap_size();
        pfree = __sanitizer_get_free_bytes ? __sanitizer_get_free_bytes() : 0;
        unmapped = __sanitizer_get_unmapped_bytes ? __sanitizer_get_unmapped_bytes() : 0;
        physical = heap;
    } else {
        struct mallinfo2 mi = mallinfo2();
        allocated = mi.uordblks + mi.hblkhd;
        heap = mi.arena + mi.hblkhd;
        pfree = mi.fordblks;
        physical = heap;
    }
    return mp_buffer_appendf(b,
                             "{\"allocated\":\"%" PRIu64 "\",\"heap_size\":\"%" PRIu64
                             "\",\"pageheap_unmapped\":\"%" PRIu64 "\",\"pageheap_free\":\"%" PRIu64
                             "\",\"total_thread_cache\":\"%" PRIu64
                             "\",\"total_physical_bytes\":\"%" PRIu64 "\"}\n",
                             allocated, heap, unmapped, pfree, tcache, physical);
}

bool mp_admin_method_allowed(const char *method, const char *path, const char *query,
                             const char **msg)
{
    static const char *const mutating[] = {"/quitquitquit",   "/healthcheck/fail",
                                           "/healthcheck/ok", "/drain_listeners",
                                           "/reset_counters", "/runtime_modify"};
    bool needs_post = false;
    for (size_t i = 0; i < MP_ARRAY_LEN(mutating); i++)
        if (strcmp(path, mutating[i]) == 0)
            needs_post = true;
    if (strcmp(path, "/logging") == 0 && query && *query)
        needs_post = true;
    if (!needs_post || strcmp(method, "POST") == 0)
        return true;
    if (msg)
        *msg = "Method not allowed, POST required.\n";
    return false;
}

/* ASN1_TIME as seconds since the epoch; 0 when unparsable. */
static int64_t asn1_time_epoch(const ASN1_TIME *t)
{
    /* BoringSSL here has no ASN1_TIME_to_posix: the difference from now. */
    int days = 0, secs = 0;
    if (!t || !ASN1_TIME_diff(&days, &secs, NULL, t))
        return 0;
    return (int64_t)time(NULL) + (int64_t)days * 86400 + secs;
}

static int put_time(struct mp_buffer *b, const char *key, int64_t epoch)
{
    char buf[40] = "";
    time_t tt = (time_t)epoch;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return mp_buffer_appendf(b, ",\"%s\":\"%s\"", key, buf);
}

static int put_sans(struct mp_buffer *b, X509 *x)
{
    int rc = mp_buffer_appendf(b, ",\"subject_alt_names\":[");
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool first = true;
    for (size_t i = 0; rc == 0 && names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const char *kind = NULL;
        char val[256] = "";
        if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
            const ASN1_IA5STRING *s = g->d.ia5;
            kind = g->type == GEN_DNS ? "dns" : g->type == GEN_URI ? "uri" : "email";
            snprintf(val, sizeof(val), "%.*s", (int)ASN1_STRING_length(s),
                     (const char *)ASN1_STRING_get0_data(s));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.ip;
            int n = ASN1_STRING_length(s);
            kind = "ip_address";
            if (n == 4 || n == 16)
                inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), val, sizeof(val));
        }
        if (!kind)
            continue;
        rc = mp_buffer_appendf(b, "%s{\"%s\":", first ? "" : ",", kind);
        if (rc == 0)
            rc = mp_admin_json_str(b, val);
        if (rc == 0)
            rc = mp_buffer_appendf(b, "}");
        first = false;
    }
    GENERAL_NAMES_free(names);
    return rc ? rc : mp_buffer_appendf(b, "]");
}

static int put_cert(struct mp_buffer *b, X509 *x, const char *path, int64_t now, bool first)
{
    char serial[130] = "";
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex) {
        size_t k = 0;
        for (const char *p = hex; *p && k + 1 < sizeof(serial); p++)
            serial[k++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        serial[k] = '\0';
    }
    OPENSSL_free(hex);
    BN_free(bn);
    int64_t from = asn1_time_epoch(X509_get0_notBefore(x));
    int64_t until = asn1_time_epoch(X509_get0_notAfter(x));
    int64_t days = until > now ? (until - now) / 86400 : 0;
    int rc = mp_buffer_appendf(b, "%s{\"path\":", first ? "" : ",");
    if (rc == 0)
        rc = mp_admin_json_str(b, path ? path : "<inline>");
    if (rc == 0)
        rc = mp_buffer_appendf(b, ",\"serial_number\":\"%s\"", serial);
    if (rc == 0)
        rc = put_sans(b, x);
    if (rc == 0)
        rc = mp_buffer_appendf(b, ",\"days_until_expiration\":\"%lld\"", (long long)days);
    if (rc == 0)
        rc = put_time(b, "valid_from", from);
    if (rc == 0)
        rc = put_time(b, "expiration_time", until);
    return rc ? rc : mp_buffer_appendf(b, "}");
}

int mp_admin_render_certificate(struct mp_buffer *b, struct ssl_ctx_st *ctx, const char *ca_path,
                                const char *cert_path, int64_t now)
{
    int rc = mp_buffer_appendf(b, "{\"ca_cert\":[");
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_OBJECT) *objs = store ? X509_STORE_get0_objects(store) : NULL;
    bool first = true;
    for (size_t i = 0; rc == 0 && objs && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (!x)
            continue;
        rc = put_cert(b, x, ca_path, now, first);
        first = false;
    }
    if (rc == 0)
        rc = mp_buffer_appendf(b, "],\"cert_chain\":[");
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (rc == 0 && leaf) {
        rc = put_cert(b, leaf, cert_path, now, true);
        STACK_OF(X509) *chain = NULL;
        if (rc == 0 && SSL_CTX_get0_chain_certs(ctx, &chain) && chain)
            for (size_t i = 0; rc == 0 && i < sk_X509_num(chain); i++)
                rc = put_cert(b, sk_X509_value(chain, i), cert_path, now, false);
    }
    return rc ? rc : mp_buffer_appendf(b, "]}");
}
