/* route_hash.c: hash_policy evaluation (Envoy's HashPolicyImpl). */
#include "proxy/route_hash.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"

bool mp_route_cookie_find(const char *header, size_t header_len, const char *name, size_t name_len,
                          const char **value, size_t *len)
{
    const char *p = header, *end = header + header_len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi != NULL ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq != NULL && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *v = eq + 1;
            size_t vl = (size_t)(pe - v);
            /* A quoted cookie value hashes without its quotes. */
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            *value = v;
            *len = vl;
            return true;
        }
        p = pe;
    }
    return false;
}

struct sv {
    const char *p;
    size_t n;
};

static int sv_cmp(const void *a, const void *b)
{
    const struct sv *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    return c != 0 ? c : (x->n < y->n ? -1 : x->n > y->n ? 1 : 0);
}

/* All values of a header, sorted and hashed as one byte string, so the
 * order the client sent them in does not move the request. */
static bool hash_header(const struct mp_route_request *req, const char *name, size_t nlen,
                        mp_route_hash_fn hash, uint64_t *h)
{
    struct sv stack[8];
    struct sv *vals = stack;
    size_t n = 0, total = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i].name_len == nlen && memcmp(req->headers[i].name, name, nlen) == 0)
            n++;
    if (n == 0)
        return false;
    if (n > MP_ARRAY_LEN(stack) && (vals = malloc(n * sizeof(*vals))) == NULL)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->headers[i].name_len == nlen && memcmp(req->headers[i].name, name, nlen) == 0) {
            vals[k++] = (struct sv){req->headers[i].value, req->headers[i].value_len};
            total += req->headers[i].value_len;
        }
    }
    bool ok = true;
    if (n == 1) {
        *h = hash(vals[0].p, vals[0].n, 0);
    } else {
        qsort(vals, n, sizeof(*vals), sv_cmp);
        char *buf = malloc(total + 1);
        if (buf == NULL) {
            ok = false;
        } else {
            size_t o = 0;
            for (size_t i = 0; i < n; i++) {
                memcpy(buf + o, vals[i].p, vals[i].n);
                o += vals[i].n;
            }
            *h = hash(buf, o, 0);
            free(buf);
        }
    }
    if (vals != stack)
        free(vals);
    return ok;
}

static bool hash_cookie(const struct mp_route_request *req, const char *name, size_t nlen,
                        mp_route_hash_fn hash, uint64_t *h)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct mp_header_view *hv = &req->headers[i];
        const char *v;
        size_t vl;
        if (hv->name_len == 6 && memcmp(hv->name, "cookie", 6) == 0 &&
            mp_route_cookie_find(hv->value, hv->value_len, name, nlen, &v, &vl)) {
            *h = hash(v, vl, 0);
            return true;
        }
    }
    return false;
}

static bool hash_query(const struct mp_route_request *req, const char *name, size_t nlen,
                       mp_route_hash_fn hash, uint64_t *h)
{
    if (req->path == NULL)
        return false;
    const char *q = memchr(req->path, '?', req->path_len);
    if (q == NULL)
        return false;
    const char *end = req->path + req->path_len;
    const char *frag = memchr(q, '#', (size_t)(end - q));
    if (frag != NULL)
        end = frag;
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq != NULL ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq != NULL ? eq + 1 : pe;
            *h = hash(v, (size_t)(pe - v), 0);
            return true;
        }
        p = pe + 1;
    }
    return false;
}

int mp_route_hash_request(const struct mp_route *r, const struct mp_route_request *req,
                          const char *source_ip, size_t source_ip_len, mp_route_hash_fn hash,
                          uint64_t *out)
{
    if (r == NULL || r->action_kind != MP_ROUTE_ACTION_ROUTE)
        return MP_ERR_NOTFOUND;
    bool have = false;
    uint64_t acc = 0;
    for (size_t i = 0; i < r->route.n_hash_policies; i++) {
        const struct mp_hash_policy *p = &r->route.hash_policies[i];
        uint64_t h = 0;
        bool got = false;
        switch (p->kind) {
        case MP_HASH_HEADER: got = hash_header(req, p->name, p->name_len, hash, &h); break;
        case MP_HASH_COOKIE: got = hash_cookie(req, p->name, p->name_len, hash, &h); break;
        case MP_HASH_SOURCE_IP:
            got = source_ip != NULL && source_ip_len > 0;
            if (got)
                h = hash(source_ip, source_ip_len, 0);
            break;
        case MP_HASH_QUERY_PARAMETER: got = hash_query(req, p->name, p->name_len, hash, &h); break;
        }
        if (got) {
            acc = have ? (((acc << 1) | (acc >> 63)) ^ h) : h;
            have = true;
        }
        if (p->terminal && have)
            break;
    }
    if (!have)
        return MP_ERR_NOTFOUND;
    *out = acc;
    return 0;
}
