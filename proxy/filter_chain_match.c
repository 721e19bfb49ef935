/* filter_chain_match.c: FilterChainMatch translation and Envoy's selection order. */
#include "proxy/filter_chain_match.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/mp_common.h"

/* ---- CIDR ------------------------------------------------------------------ */

int mp_cidr_parse(const char *addr, uint32_t len, struct mp_cidr *c)
{
    memset(c, 0, sizeof(*c));
    if (addr == NULL)
        return MP_ERR_INVAL;
    uint32_t max;
    if (inet_pton(AF_INET, addr, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return MP_ERR_INVAL;
    }
    if (len > max)
        return MP_ERR_INVAL;
    c->len = (uint8_t)len;
    /* Clear host bits so "10.1.2.3/8" compares as 10.0.0.0/8 (Envoy does the same). */
    for (uint32_t bit = len; bit < max; bit++)
        c->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

/* Gives the address bytes of sa, mapping ::ffff:a.b.c.d to IPv4. */
static int sa_bytes(const struct sockaddr *sa, const uint8_t **p)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        *p = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, 12) == 0) {
            *p = a + 12;
            return AF_INET;
        }
        *p = a;
        return AF_INET6;
    }
    return 0;
}

static uint16_t sa_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

bool mp_cidr_contains(const struct mp_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *a = NULL;
    if (sa_bytes(sa, &a) != c->family)
        return false;
    size_t full = c->len / 8;
    if (memcmp(a, c->addr, full) != 0)
        return false;
    unsigned rest = c->len % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a[full] & mask) == c->addr[full];
}

static bool is_local(const struct sockaddr *src, const struct sockaddr *dst)
{
    const uint8_t *s = NULL, *d = NULL;
    int fs = sa_bytes(src, &s);
    if (fs == AF_INET && s[0] == 127)
        return true;
    if (fs == AF_INET6) {
        static const uint8_t loop6[16] = {[15] = 1};
        if (memcmp(s, loop6, 16) == 0)
            return true;
    }
    int fd = sa_bytes(dst, &d);
    return fs != 0 && fs == fd && memcmp(s, d, fs == AF_INET ? 4 : 16) == 0;
}

/* ---- translation --------------------------------------------------------- */

void mp_fc_match_clear(struct mp_fc_match *m)
{
    free(m->prefix_ranges);
    for (size_t i = 0; i < m->n_server_names; i++)
        free(m->server_names[i]);
    free(m->server_names);
    free(m->transport_protocol);
    for (size_t i = 0; i < m->n_application_protocols; i++)
        free(m->application_protocols[i]);
    free(m->application_protocols);
    free(m->direct_source_prefix_ranges);
    free(m->source_prefix_ranges);
    free(m->source_ports);
    memset(m, 0, sizeof(*m));
}

static int cidrs(Envoy__Config__Core__V3__CidrRange **pb, size_t n, const char *field,
                 struct mp_cidr **out, size_t *n_out, char **err)
{
    if (n == 0)
        return 0;
    struct mp_cidr *v = calloc(n, sizeof(*v));
    if (v == NULL)
        return MP_ERR_NOMEM;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        const char *a = pb[i]->address_prefix != NULL ? pb[i]->address_prefix : "";
        struct mp_cidr probe;
        /* An unset prefix_len is 0, as Envoy reads it (the wrapper's default). */
        uint32_t len = pb[i]->prefix_len != NULL ? pb[i]->prefix_len->value : 0;
        if (mp_cidr_parse(a, 0, &probe) != 0)
            return mp_set_err(err, "%s[%zu].address_prefix: invalid IP address \"%s\"", field, i,
                              a);
        if (mp_cidr_parse(a, len, &v[i]) != 0)
            return mp_set_err(err, "%s[%zu].prefix_len: %u is too long for %s", field, i, len, a);
        *n_out = i + 1;
    }
    return 0;
}

static int strv(char **src, size_t n, bool lower, char ***out, size_t *n_out)
{
    if (n == 0)
        return 0;
    char **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return MP_ERR_NOMEM;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        if ((v[i] = strdup(src[i])) == NULL)
            return MP_ERR_NOMEM;
        *n_out = i + 1;
        for (char *c = v[i]; lower && *c != 0; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
    return 0;
}

int mp_fc_match_translate(const Envoy__Config__Listener__V3__FilterChainMatch *pb,
                          struct mp_fc_match *out, char **err)
{
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return 0;
    int rc = 0;
    if (pb->destination_port != NULL) {
        if (pb->destination_port->value < 1 || pb->destination_port->value > 65535) {
            rc = mp_set_err(err, "destination_port: %u is not in 1..65535",
                            pb->destination_port->value);
            goto fail;
        }
        out->destination_port = pb->destination_port->value;
    }
    if (pb->address_suffix != NULL && pb->address_suffix[0] != 0) {
        rc = mp_set_err(err, "address_suffix: not supported");
        goto fail;
    }
    if ((rc = cidrs(pb->prefix_ranges, pb->n_prefix_ranges, "prefix_ranges", &out->prefix_ranges,
                    &out->n_prefix_ranges, err)) != 0 ||
        (rc = cidrs(pb->direct_source_prefix_ranges, pb->n_direct_source_prefix_ranges,
                    "direct_source_prefix_ranges", &out->direct_source_prefix_ranges,
                    &out->n_direct_source_prefix_ranges, err)) != 0 ||
        (rc = cidrs(pb->source_prefix_ranges, pb->n_source_prefix_ranges, "source_prefix_ranges",
                    &out->source_prefix_ranges, &out->n_source_prefix_ranges, err)) != 0)
        goto fail;
    for (size_t i = 0; i < pb->n_server_names; i++) {
        const char *s = pb->server_names[i];
        /* Envoy accepts "*.example.com" but not "*example.com" or "a.*.com". */
        const char *star = strchr(s, '*');
        if (s[0] == 0 || (star != NULL && (star != s || s[1] != '.' || strchr(s + 1, '*')))) {
            rc = mp_set_err(err, "server_names[%zu]: invalid server name \"%s\"", i, s);
            goto fail;
        }
    }
    if ((rc = strv(pb->server_names, pb->n_server_names, true, &out->server_names,
                   &out->n_server_names)) != 0 ||
        (rc = strv(pb->application_protocols, pb->n_application_protocols, false,
                   &out->application_protocols, &out->n_application_protocols)) != 0)
        goto fail;
    if (pb->transport_protocol != NULL && pb->transport_protocol[0] != 0 &&
        (out->transport_protocol = strdup(pb->transport_protocol)) == NULL) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    switch (pb->source_type) {
    case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__ANY:
        out->source_type = MP_FC_SOURCE_ANY;
        break;
    case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__SAME_IP_OR_LOOPBACK:
        out->source_type = MP_FC_SOURCE_LOCAL;
        break;
    case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__EXTERNAL:
        out->source_type = MP_FC_SOURCE_EXTERNAL;
        break;
    default: rc = mp_set_err(err, "source_type: unknown value %d", pb->source_type); goto fail;
    }
    if (pb->n_source_ports > 0) {
        out->source_ports = calloc(pb->n_source_ports, sizeof(*out->source_ports));
        if (out->source_ports == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < pb->n_source_ports; i++) {
            if (pb->source_ports[i] < 1 || pb->source_ports[i] > 65535) {
                rc = mp_set_err(err, "source_ports[%zu]: %u is not in 1..65535", i,
                                pb->source_ports[i]);
                goto fail;
            }
            out->source_ports[i] = pb->source_ports[i];
        }
        out->n_source_ports = pb->n_source_ports;
    }
    return 0;
fail:
    if (rc == MP_ERR_NOMEM && err != NULL && *err == NULL)
        mp_set_err(err, "out of memory");
    mp_fc_match_clear(out);
    return rc;
}

/* ---- selection ----------------------------------------------------------- */

/*
 * Each criterion scores a chain: -1 = excluded, 0 = the chain does not set
 * this field (matches anything, lowest rank), higher = more specific match.
 * Candidates with the best score go on to the next criterion.
 */
typedef long (*score_fn)(const struct mp_fc_match *m, const struct mp_fc_conn *c);

static long score_dst_port(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->destination_port == 0)
        return 0;
    return m->destination_port == sa_port(c->dst) ? 1 : -1;
}

static long longest_prefix(const struct mp_cidr *v, size_t n, const struct sockaddr *sa)
{
    if (n == 0)
        return 0;
    long best = -1;
    for (size_t i = 0; i < n; i++)
        if (mp_cidr_contains(&v[i], sa) && v[i].len + 1 > best)
            best = v[i].len + 1;
    return best;
}

static long score_dst_ip(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    return longest_prefix(m->prefix_ranges, m->n_prefix_ranges, c->dst);
}

static long score_server_name(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->n_server_names == 0)
        return 0;
    const char *sni = c->sni;
    if (sni == NULL || sni[0] == 0)
        return -1;
    size_t sni_len = strlen(sni);
    long best = -1;
    for (size_t i = 0; i < m->n_server_names; i++) {
        const char *p = m->server_names[i];
        if (p[0] != '*') {
            if (strcasecmp(p, sni) == 0)
                return 1L << 20; /* exact beats any wildcard */
            continue;
        }
        /* "*.b.example.com" beats "*.example.com": rank by suffix length.
         * Like Envoy, a wildcard covers one or more leading labels. */
        size_t sl = strlen(p + 1); /* ".example.com" */
        if (sni_len > sl && strcasecmp(sni + sni_len - sl, p + 1) == 0 && (long)sl + 1 > best)
            best = (long)sl + 1;
    }
    return best;
}

static long score_transport(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->transport_protocol == NULL)
        return 0;
    const char *t = c->transport != NULL ? c->transport : "raw_buffer";
    return strcmp(m->transport_protocol, t) == 0 ? 1 : -1;
}

static long score_alpn(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->n_application_protocols == 0)
        return 0;
    for (size_t i = 0; i < m->n_application_protocols; i++)
        for (size_t j = 0; j < c->n_alpn; j++)
            if (strcmp(m->application_protocols[i], c->alpn[j]) == 0)
                return 1;
    return -1;
}

static long score_direct_src(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    return longest_prefix(m->direct_source_prefix_ranges, m->n_direct_source_prefix_ranges,
                          c->direct_src != NULL ? c->direct_src : c->src);
}

static long score_source_type(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->source_type == MP_FC_SOURCE_ANY)
        return 0;
    bool local = is_local(c->src, c->dst);
    return (m->source_type == MP_FC_SOURCE_LOCAL) == local ? 1 : -1;
}

static long score_src_ip(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    return longest_prefix(m->source_prefix_ranges, m->n_source_prefix_ranges, c->src);
}

static long score_src_port(const struct mp_fc_match *m, const struct mp_fc_conn *c)
{
    if (m->n_source_ports == 0)
        return 0;
    uint16_t p = sa_port(c->src);
    for (size_t i = 0; i < m->n_source_ports; i++)
        if (m->source_ports[i] == p)
            return 1;
    return -1;
}

static const score_fn criteria[] = {
    score_dst_port,   score_dst_ip,      score_server_name, score_transport, score_alpn,
    score_direct_src, score_source_type, score_src_ip,      score_src_port,
};

ssize_t mp_fc_select(const struct mp_fc_match *const *matches, size_t n,
                     const struct mp_fc_conn *conn)
{
    if (n == 0)
        return -1;
    /* Candidate indexes live on the stack for usual listeners. */
    size_t small[64], *cand = n <= 64 ? small : malloc(n * sizeof(*cand));
    if (cand == NULL)
        return -1;
    size_t nc = n;
    for (size_t i = 0; i < n; i++)
        cand[i] = i;
    for (size_t k = 0; k < MP_ARRAY_LEN(criteria) && nc > 0; k++) {
        long best = -1;
        for (size_t i = 0; i < nc; i++) {
            long s = criteria[k](matches[cand[i]], conn);
            if (s > best)
                best = s;
        }
        size_t kept = 0;
        if (best >= 0)
            for (size_t i = 0; i < nc; i++)
                if (criteria[k](matches[cand[i]], conn) == best)
                    cand[kept++] = cand[i];
        nc = kept;
    }
    ssize_t r = nc > 0 ? (ssize_t)cand[0] : -1;
    if (cand != small)
        free(cand);
    return r;
}

/* ---- duplicate detection ------------------------------------------------- */

static bool cidr_set_eq(const struct mp_cidr *a, size_t na, const struct mp_cidr *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = a[i].family == b[j].family && a[i].len == b[j].len &&
                    memcmp(a[i].addr, b[j].addr, 16) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool str_set_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = strcmp(a[i], b[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool match_eq(const struct mp_fc_match *a, const struct mp_fc_match *b)
{
    if (a->destination_port != b->destination_port || a->source_type != b->source_type)
        return false;
    if ((a->transport_protocol == NULL) != (b->transport_protocol == NULL) ||
        (a->transport_protocol != NULL &&
         strcmp(a->transport_protocol, b->transport_protocol) != 0))
        return false;
    if (a->n_source_ports != b->n_source_ports)
        return false;
    for (size_t i = 0; i < a->n_source_ports; i++) {
        bool found = false;
        for (size_t j = 0; j < b->n_source_ports && !found; j++)
            found = a->source_ports[i] == b->source_ports[j];
        if (!found)
            return false;
    }
    return cidr_set_eq(a->prefix_ranges, a->n_prefix_ranges, b->prefix_ranges,
                       b->n_prefix_ranges) &&
           cidr_set_eq(a->direct_source_prefix_ranges, a->n_direct_source_prefix_ranges,
                       b->direct_source_prefix_ranges, b->n_direct_source_prefix_ranges) &&
           cidr_set_eq(a->source_prefix_ranges, a->n_source_prefix_ranges, b->source_prefix_ranges,
                       b->n_source_prefix_ranges) &&
           str_set_eq(a->server_names, a->n_server_names, b->server_names, b->n_server_names) &&
           str_set_eq(a->application_protocols, a->n_application_protocols,
                      b->application_protocols, b->n_application_protocols);
}

int mp_fc_check_unique(const struct mp_fc_match *const *matches, size_t n, char **err)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (match_eq(matches[i], matches[j]))
                return mp_set_err(err,
                                  "filter_chains[%zu]: has the same filter_chain_match as "
                                  "filter_chains[%zu]",
                                  j, i);
    return 0;
}
