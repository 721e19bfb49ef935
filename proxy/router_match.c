/*
 * router_match.c: request -> virtual host -> route, with Envoy's semantics
 * (config_impl.cc, header_utility.cc), reading only the immutable config.
 */
#include "proxy/router_match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/route_index.h"
#include "proxy/route_regex.h"

#define NPOS ((size_t)-1)

static inline unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* a[0..n) equals b[0..n), b already lowercase when ci. */
static bool eq_ci(const char *a, const char *b, size_t n, bool ci)
{
    if (!ci)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return false;
    return true;
}

static bool contains_ci(const char *s, size_t n, const char *pat, size_t m, bool ci)
{
    if (m == 0)
        return true;
    if (m > n)
        return false;
    if (!ci)
        return memmem(s, n, pat, m) != NULL;
    for (size_t i = 0; i + m <= n; i++)
        if (eq_ci(s + i, pat, m, true))
            return true;
    return false;
}

/* Length of path before its query or fragment (Envoy's removeQueryAndFragment). */
static size_t path_only_len(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (path[i] == '?' || path[i] == '#')
            return i;
    return len;
}

bool mp_string_match_eval(const struct mp_string_match *m, const char *s, size_t len)
{
    if (s == NULL)
        s = "";
    bool ci = m->ignore_case;
    switch (m->kind) {
    case MP_STRING_MATCH_EXACT: return len == m->value_len && eq_ci(s, m->value, len, ci);
    case MP_STRING_MATCH_PREFIX: return len >= m->value_len && eq_ci(s, m->value, m->value_len, ci);
    case MP_STRING_MATCH_SUFFIX:
        return len >= m->value_len && eq_ci(s + len - m->value_len, m->value, m->value_len, ci);
    case MP_STRING_MATCH_CONTAINS: return contains_ci(s, len, m->value, m->value_len, ci);
    case MP_STRING_MATCH_REGEX: return mp_regex_match(m->regex, s, len);
    }
    return false;
}

/* ---- request headers ---------------------------------------------------- */

/* A header's value as matchers see it: all values joined with ",". */
struct joined {
    const char *p;
    size_t n;
    char *heap;
    char stack[512];
};

static bool pseudo_value(const struct mp_route_request *req, const char *name, size_t nlen,
                         const char **v, size_t *vlen)
{
#define PSEUDO(lit, field)                                                                         \
    if (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0) {                                 \
        if (req->field == NULL)                                                                    \
            return false;                                                                          \
        *v = req->field;                                                                           \
        *vlen = req->field##_len;                                                                  \
        return true;                                                                               \
    }
    PSEUDO(":authority", authority)
    PSEUDO(":path", path)
    PSEUDO(":method", method)
    PSEUDO(":scheme", scheme)
#undef PSEUDO
    return false;
}

static bool name_is(const struct mp_header_view *h, const char *name, size_t nlen)
{
    return h->name_len == nlen && memcmp(h->name, name, nlen) == 0;
}

/* Finds the first value of a header. */
static bool header_first(const struct mp_route_request *req, const char *name, size_t nlen,
                         const char **v, size_t *vlen)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (name_is(&req->headers[i], name, nlen)) {
            *v = req->headers[i].value;
            *vlen = req->headers[i].value_len;
            return true;
        }
    }
    return nlen > 0 && name[0] == ':' && pseudo_value(req, name, nlen, v, vlen);
}

/* Returns false when the header is absent; j->heap must be freed after. */
static bool header_joined(const struct mp_route_request *req, const char *name, size_t nlen,
                          struct joined *j)
{
    j->heap = NULL;
    size_t count = 0, total = 0, first = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (name_is(&req->headers[i], name, nlen)) {
            if (count++ == 0)
                first = i;
            total += req->headers[i].value_len + 1;
        }
    }
    if (count == 0)
        return nlen > 0 && name[0] == ':' && pseudo_value(req, name, nlen, &j->p, &j->n);
    if (count == 1) {
        j->p = req->headers[first].value;
        j->n = req->headers[first].value_len;
        return true;
    }
    char *buf = j->stack;
    if (total > sizeof(j->stack)) {
        /* Rare (many long repeated headers): a failed allocation matches
         * against the first value only rather than failing the request. */
        buf = j->heap = malloc(total);
        if (buf == NULL) {
            j->p = req->headers[first].value;
            j->n = req->headers[first].value_len;
            return true;
        }
    }
    size_t o = 0;
    for (size_t i = first; i < req->n_headers; i++) {
        if (!name_is(&req->headers[i], name, nlen))
            continue;
        if (o > 0)
            buf[o++] = ',';
        memcpy(buf + o, req->headers[i].value, req->headers[i].value_len);
        o += req->headers[i].value_len;
    }
    j->p = buf;
    j->n = o;
    return true;
}

/* absl::SimpleAtoi: optional surrounding whitespace and sign, decimal. */
static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' ||
                     s[i] == '\f'))
        i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' ||
                     s[n - 1] == '\v' || s[n - 1] == '\f'))
        n--;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool mp_header_match_eval(const struct mp_header_match *m, const struct mp_route_request *req)
{
    struct joined j;
    bool found = header_joined(req, m->name, m->name_len, &j);
    if (!found && !m->treat_missing_as_empty) {
        /* Envoy: a missing header only satisfies present_match: false (or,
         * inverted, present_match: true). */
        bool present_kind = m->kind == MP_HEADER_MATCH_PRESENT;
        return m->invert ? (present_kind && m->present) : (present_kind && !m->present);
    }
    if (!found) {
        j.p = "";
        j.n = 0;
    }
    bool match = false;
    switch (m->kind) {
    case MP_HEADER_MATCH_STRING: match = mp_string_match_eval(&m->str, j.p, j.n); break;
    case MP_HEADER_MATCH_RANGE: {
        int64_t v;
        match = parse_int64(j.p, j.n, &v) && v >= m->range_start && v < m->range_end;
        break;
    }
    case MP_HEADER_MATCH_PRESENT: match = m->present; break;
    }
    free(j.heap);
    return match != m->invert;
}

bool mp_query_match_eval(const struct mp_query_match *m, const char *path, size_t path_len)
{
    const char *q = path != NULL ? memchr(path, '?', path_len) : NULL;
    if (q == NULL)
        return false;
    const char *end = path + path_len;
    const char *hash = memchr(q, '#', (size_t)(end - q));
    if (hash != NULL)
        end = hash;
    const char *p = q + 1;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq != NULL ? eq : pe;
        if ((size_t)(ke - p) == m->name_len && memcmp(p, m->name, m->name_len) == 0) {
            /* Envoy looks at the first value only. */
            if (m->present_only)
                return true;
            const char *v = eq != NULL ? eq + 1 : pe;
            return mp_string_match_eval(&m->str, v, (size_t)(pe - v));
        }
        p = pe + 1;
    }
    return false;
}

static bool is_grpc(const struct mp_route_request *req)
{
    const char *v;
    size_t n;
    static const char ct[] = "application/grpc";
    const size_t ctn = sizeof(ct) - 1;
    if (!header_first(req, "content-type", 12, &v, &n) || n < ctn || memcmp(v, ct, ctn) != 0)
        return false;
    return n == ctn || v[ctn] == '+' || v[ctn] == ';';
}

static bool path_matches(const struct mp_route_match *m, const struct mp_route_request *req)
{
    const char *path = req->path != NULL ? req->path : "";
    size_t len = req->path != NULL ? req->path_len : 0;
    bool ci = !m->case_sensitive;
    switch (m->kind) {
    case MP_PATH_PREFIX:
        /* Envoy compares a prefix against the whole :path, query included. */
        return len >= m->path_len && eq_ci(path, m->path, m->path_len, ci);
    case MP_PATH_EXACT: {
        size_t pl = path_only_len(path, len);
        return pl == m->path_len && eq_ci(path, m->path, pl, ci);
    }
    case MP_PATH_REGEX: return mp_regex_match(m->regex, path, path_only_len(path, len));
    case MP_PATH_SEPARATED_PREFIX: {
        size_t pl = path_only_len(path, len);
        return pl >= m->path_len && eq_ci(path, m->path, m->path_len, ci) &&
               (pl == m->path_len || path[m->path_len] == '/');
    }
    case MP_PATH_CONNECT:
        return req->method_len == 7 && req->method != NULL &&
               memcmp(req->method, "CONNECT", 7) == 0;
    }
    return false;
}

bool mp_route_matches(const struct mp_route *r, const struct mp_route_request *req)
{
    const struct mp_route_match *m = &r->match;
    if (!path_matches(m, req))
        return false;
    if (m->has_runtime_fraction && !(m->fraction_denominator > 0 &&
                                     req->random % m->fraction_denominator < m->fraction_numerator))
        return false;
    if (m->grpc && !is_grpc(req))
        return false;
    for (size_t i = 0; i < m->n_headers; i++)
        if (!mp_header_match_eval(&m->headers[i], req))
            return false;
    for (size_t i = 0; i < m->n_query_params; i++)
        if (!mp_query_match_eval(&m->query_params[i], req->path, req->path_len))
            return false;
    return true;
}

/* ---- virtual hosts -------------------------------------------------------- */

/* Orders host[0..n) (compared lowercased) against a lowercase key, the
 * same byte order the translation sorted keys with. */
static int host_cmp(const char *host, size_t n, const char *key, size_t kn)
{
    size_t m = n < kn ? n : kn;
    for (size_t i = 0; i < m; i++) {
        int d = (int)lc((unsigned char)host[i]) - (int)(unsigned char)key[i];
        if (d != 0)
            return d;
    }
    return n < kn ? -1 : n > kn ? 1 : 0;
}

static const struct mp_domain_entry *find_key(const struct mp_domain_entry *e, size_t n,
                                              const char *s, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = host_cmp(s, len, e[mid].key, e[mid].key_len);
        if (c == 0)
            return &e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Wildcards grouped by key length, longest first; a wildcard must cover at
 * least one character, so only keys shorter than the host count. */
static const struct mp_vhost *find_wildcard(const struct mp_domain_entry *e, size_t n,
                                            const char *host, size_t len, bool suffix)
{
    size_t i = 0;
    while (i < n) {
        size_t kl = e[i].key_len, j = i;
        while (j < n && e[j].key_len == kl)
            j++;
        if (kl < len) {
            const char *s = suffix ? host + len - kl : host;
            const struct mp_domain_entry *hit = find_key(e + i, j - i, s, kl);
            if (hit != NULL)
                return hit->vhost;
        }
        i = j;
    }
    return NULL;
}

static const struct mp_vhost *find_domain(const struct mp_route_config *cfg, const char *host,
                                          size_t len)
{
    const struct mp_domain_entry *e = find_key(cfg->exact, cfg->n_exact, host, len);
    if (e != NULL)
        return e->vhost;
    const struct mp_vhost *vh = find_wildcard(cfg->suffix, cfg->n_suffix, host, len, true);
    if (vh == NULL)
        vh = find_wildcard(cfg->prefix, cfg->n_prefix, host, len, false);
    return vh;
}

/* Envoy's HeaderUtility::getPortStart: the last ':' unless inside "[v6]". */
static size_t port_start(const char *host, size_t len)
{
    size_t colon = NPOS, bracket = NPOS;
    for (size_t i = len; i-- > 0;) {
        if (colon == NPOS && host[i] == ':')
            colon = i;
        if (host[i] == ']') {
            bracket = i;
            break;
        }
    }
    if (colon == NPOS)
        return NPOS;
    if (bracket == NPOS || bracket < colon)
        return colon;
    return NPOS;
}

const struct mp_vhost *mp_route_config_find_vhost(const struct mp_route_config *cfg,
                                                  const char *authority, size_t len)
{
    if (authority == NULL)
        len = 0;
    if (cfg->n_exact == 0 && cfg->n_suffix == 0 && cfg->n_prefix == 0)
        return cfg->default_vhost;
    size_t ps = port_start(authority, len);
    if (!cfg->ignore_port_in_host_matching || ps == NPOS) {
        const struct mp_vhost *vh = find_domain(cfg, authority, len);
        if (vh != NULL)
            return vh;
    }
    if (ps != NPOS) {
        const struct mp_vhost *vh = find_domain(cfg, authority, ps);
        if (vh != NULL)
            return vh;
    }
    return cfg->default_vhost;
}

/* ---- routes --------------------------------------------------------------- */

const struct mp_route *mp_vhost_match_linear(const struct mp_vhost *vh,
                                             const struct mp_route_request *req)
{
    for (size_t i = 0; i < vh->n_routes; i++)
        if (mp_route_matches(&vh->routes[i], req))
            return &vh->routes[i];
    return NULL;
}

const struct mp_route *mp_vhost_match(const struct mp_vhost *vh, const struct mp_route_request *req)
{
    const struct mp_route_index *idx = vh->index;
    if (idx == NULL)
        return mp_vhost_match_linear(vh, req);
    const uint32_t *keyed = NULL;
    size_t nk = 0;
    const char *seg;
    size_t seg_len;
    if (mp_route_index_request_segment(req->path, req->path_len, &seg, &seg_len))
        mp_route_index_lookup(idx, seg, seg_len, &keyed, &nk);
    /* Merge the segment's bucket with the wild routes, in route order. */
    size_t a = 0, b = 0;
    while (a < nk || b < idx->n_wild) {
        uint32_t i;
        if (b >= idx->n_wild || (a < nk && keyed[a] < idx->wild[b]))
            i = keyed[a++];
        else
            i = idx->wild[b++];
        if (mp_route_matches(&vh->routes[i], req))
            return &vh->routes[i];
    }
    return NULL;
}

const struct mp_route *mp_route_config_match(const struct mp_route_config *cfg,
                                             const struct mp_route_request *req)
{
    const struct mp_vhost *vh = mp_route_config_find_vhost(cfg, req->authority, req->authority_len);
    return vh != NULL ? mp_vhost_match(vh, req) : NULL;
}

const struct mp_weighted_cluster *mp_route_pick_weighted(const struct mp_route *r, uint64_t random)
{
    if (r->action_kind != MP_ROUTE_ACTION_ROUTE || r->route.cluster_kind != MP_CLUSTER_WEIGHTED ||
        r->route.total_weight == 0)
        return NULL;
    uint64_t v = random % r->route.total_weight, end = 0;
    for (size_t i = 0; i < r->route.n_weighted; i++) {
        end += r->route.weighted[i].weight;
        if (v < end)
            return &r->route.weighted[i];
    }
    return NULL;
}

static int cluster_from_header(const struct mp_route_request *req, const char *hname,
                               const char **name, size_t *len)
{
    const char *v;
    size_t n;
    if (!header_first(req, hname, strlen(hname), &v, &n) || n == 0)
        return MP_ERR_NOTFOUND;
    *name = v;
    *len = n;
    return 0;
}

int mp_route_pick_cluster(const struct mp_route *r, const struct mp_route_request *req,
                          uint64_t random, const char **name, size_t *len)
{
    if (r->action_kind != MP_ROUTE_ACTION_ROUTE)
        return MP_ERR_INVAL;
    switch (r->route.cluster_kind) {
    case MP_CLUSTER_NAME:
        *name = r->route.cluster;
        *len = strlen(r->route.cluster);
        return 0;
    case MP_CLUSTER_HEADER: return cluster_from_header(req, r->route.cluster_header, name, len);
    case MP_CLUSTER_WEIGHTED: {
        const struct mp_weighted_cluster *wc = mp_route_pick_weighted(r, random);
        if (wc == NULL)
            return MP_ERR_NOTFOUND;
        if (wc->name != NULL) {
            *name = wc->name;
            *len = strlen(wc->name);
            return 0;
        }
        return cluster_from_header(req, wc->cluster_header, name, len);
    }
    }
    return MP_ERR_INVAL;
}

/* ---- rewrites --------------------------------------------------------------- */

/* Output that counts the length it would need once out of room. */
struct wbuf {
    char *p;
    size_t cap;
    size_t len;
};

static void w_put(struct wbuf *w, const char *s, size_t n)
{
    if (w->len + n < w->cap)
        memcpy(w->p + w->len, s, n);
    w->len += n;
}

static int w_regex(struct wbuf *w, const struct mp_regex *re, const char *subst, const char *s,
                   size_t n)
{
    char dummy[1];
    bool room = w->len < w->cap;
    size_t got = 0;
    int rc = mp_regex_replace_all(re, subst, s, n, room ? w->p + w->len : dummy,
                                  room ? w->cap - w->len : 0, &got);
    if (rc == MP_ERR_INVAL)
        return rc;
    w->len += got;
    if (rc == MP_ERR_LIMIT && w->len < w->cap)
        w->len = w->cap; /* keep "does not fit" even if got under-counts */
    return 0;
}

static int w_finish(struct wbuf *w, size_t *out_len)
{
    *out_len = w->len;
    if (w->len >= w->cap)
        return MP_ERR_LIMIT;
    w->p[w->len] = '\0';
    return 0;
}

/* Length of the part of path the route's path condition matched. */
static size_t matched_len(const struct mp_route *r, const char *path, size_t len)
{
    switch (r->match.kind) {
    case MP_PATH_PREFIX:
    case MP_PATH_SEPARATED_PREFIX: return r->match.path_len <= len ? r->match.path_len : len;
    case MP_PATH_EXACT:
    case MP_PATH_REGEX: return path_only_len(path, len);
    case MP_PATH_CONNECT: return 0;
    }
    return 0;
}

/* Envoy's currentUrlPathAfterRewriteWithMatchedPath. */
static int rewrite_into(struct wbuf *w, const struct mp_route *r, const char *prefix_rewrite,
                        const struct mp_regex *re, const char *subst, const char *path, size_t len)
{
    if (prefix_rewrite != NULL) {
        size_t ml = matched_len(r, path, len);
        w_put(w, prefix_rewrite, strlen(prefix_rewrite));
        w_put(w, path + ml, len - ml);
        return 0;
    }
    size_t pl = path_only_len(path, len);
    int rc = w_regex(w, re, subst, path, pl);
    if (rc != 0)
        return rc;
    w_put(w, path + pl, len - pl);
    return 0;
}

int mp_route_rewrite_path(const struct mp_route *r, const char *path, size_t path_len, char *out,
                          size_t cap, size_t *out_len)
{
    if (r->action_kind != MP_ROUTE_ACTION_ROUTE ||
        (r->route.prefix_rewrite == NULL && r->route.regex_rewrite == NULL))
        return MP_ERR_NOTFOUND;
    if (path == NULL)
        path_len = 0;
    struct wbuf w = {out, cap, 0};
    int rc = rewrite_into(&w, r, r->route.prefix_rewrite, r->route.regex_rewrite,
                          r->route.regex_rewrite_subst, path != NULL ? path : "", path_len);
    return rc != 0 ? rc : w_finish(&w, out_len);
}

static bool str_eq(const char *a, size_t an, const char *b)
{
    return a != NULL && an == strlen(b) && memcmp(a, b, an) == 0;
}

int mp_route_redirect_location(const struct mp_route *r, const struct mp_route_request *req,
                               char *out, size_t cap, size_t *out_len)
{
    if (r->action_kind != MP_ROUTE_ACTION_REDIRECT)
        return MP_ERR_INVAL;
    const struct mp_redirect_action *rd = &r->redirect;
    struct wbuf w = {out, cap, 0};

    const char *req_scheme = req->scheme != NULL ? req->scheme : "http";
    size_t req_scheme_len = req->scheme != NULL ? req->scheme_len : 4;
    const char *scheme = rd->scheme != NULL ? rd->scheme : req_scheme;
    size_t scheme_len = rd->scheme != NULL ? strlen(rd->scheme) : req_scheme_len;
    w_put(&w, scheme, scheme_len);
    w_put(&w, "://", 3);

    if (rd->host != NULL) {
        w_put(&w, rd->host, strlen(rd->host));
    } else {
        /* Envoy's processRequestHost: the request's port goes when a port
         * is configured, or when the scheme changes away from the request
         * scheme's default port. */
        const char *h = req->authority != NULL ? req->authority : "";
        size_t hl = req->authority != NULL ? req->authority_len : 0;
        size_t ps = port_start(h, hl);
        if (ps != NPOS) {
            bool drop = rd->port != 0;
            bool same = scheme_len == req_scheme_len && memcmp(scheme, req_scheme, scheme_len) == 0;
            if (!same) {
                drop |=
                    str_eq(req_scheme, req_scheme_len, "https") && str_eq(h + ps, hl - ps, ":443");
                drop |=
                    str_eq(req_scheme, req_scheme_len, "http") && str_eq(h + ps, hl - ps, ":80");
            }
            if (drop)
                hl = ps;
        }
        w_put(&w, h, hl);
    }
    if (rd->port != 0) {
        char port[16];
        int n = snprintf(port, sizeof(port), ":%u", (unsigned)rd->port);
        w_put(&w, port, (size_t)n);
    }

    const char *path = req->path != NULL ? req->path : "";
    size_t len = req->path != NULL ? req->path_len : 0;
    size_t path_start = w.len;
    bool redirect_has_query = false;
    if (rd->path != NULL) {
        w_put(&w, rd->path, strlen(rd->path));
        redirect_has_query = strchr(rd->path, '?') != NULL;
        /* A path_redirect without a query keeps the request's query. */
        const char *q = memchr(path, '?', len);
        if (!redirect_has_query && q != NULL)
            w_put(&w, q, (size_t)(path + len - q));
    } else if (rd->prefix_rewrite != NULL || rd->regex_rewrite != NULL) {
        int rc = rewrite_into(&w, r, rd->prefix_rewrite, rd->regex_rewrite, rd->regex_rewrite_subst,
                              path, len);
        if (rc != 0)
            return rc;
    } else {
        w_put(&w, path, len);
    }
    if (rd->strip_query && !redirect_has_query && w.len < w.cap) {
        char *q = memchr(w.p + path_start, '?', w.len - path_start);
        if (q != NULL)
            w.len = (size_t)(q - w.p);
    }
    return w_finish(&w, out_len);
}

static const struct mp_typed_config *find_typed(const struct mp_typed_configs *tc, const char *name)
{
    for (size_t i = 0; i < tc->n; i++)
        if (strcmp(tc->items[i].filter_name, name) == 0)
            return &tc->items[i];
    return NULL;
}

const struct mp_typed_config *mp_route_find_filter_config(const struct mp_route_config *cfg,
                                                          const struct mp_route *r,
                                                          const struct mp_weighted_cluster *wc,
                                                          const char *filter_name)
{
    const struct mp_typed_config *t = NULL;
    if (wc != NULL)
        t = find_typed(&wc->per_filter, filter_name);
    if (t == NULL && r != NULL)
        t = find_typed(&r->per_filter, filter_name);
    if (t == NULL && r != NULL && r->vhost != NULL)
        t = find_typed(&r->vhost->per_filter, filter_name);
    if (t == NULL && cfg != NULL)
        t = find_typed(&cfg->per_filter, filter_name);
    return t;
}
