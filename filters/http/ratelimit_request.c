/*
 * ratelimit_request.c: descriptors, RateLimitRequest, RateLimitResponse (see
 * ratelimit_request.h).
 */
#include "ratelimit_request.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/ratelimit/v3/rls.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/router_match.h"

/* ---- descriptors --------------------------------------------------------- */

static void descriptor_clear(struct mp_rl_descriptor *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->entries[i].key);
        free(d->entries[i].value);
    }
    free(d->entries);
    d->entries = NULL;
    d->n = 0;
}

void mp_rl_descriptors_clear(struct mp_rl_descriptors *d)
{
    for (size_t i = 0; i < d->n; i++)
        descriptor_clear(&d->v[i]);
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

static int entry_add(struct mp_rl_descriptor *d, size_t cap, const char *key, const char *value,
                     size_t value_len)
{
    if (d->n >= cap)
        return MP_ERR_INVAL;
    char *k = strdup(key);
    char *v = strndup(value, value_len);
    if (!k || !v) {
        free(k);
        free(v);
        return MP_ERR_NOMEM;
    }
    d->entries[d->n].key = k;
    d->entries[d->n].value = v;
    d->n++;
    return 0;
}

/* ip/len of addr masked to its prefix ("10.1.0.0/16"); false when addr is
 * not an IP literal. */
static bool mask_address(const char *addr, uint32_t v4_len, uint32_t v6_len, char *out, size_t cap)
{
    unsigned char b[16];
    int family, bits, bytes;
    uint32_t len;
    if (inet_pton(AF_INET, addr, b) == 1) {
        family = AF_INET;
        bytes = 4;
        len = v4_len;
    } else if (inet_pton(AF_INET6, addr, b) == 1) {
        family = AF_INET6;
        bytes = 16;
        len = v6_len;
    } else {
        return false;
    }
    bits = (int)len;
    for (int i = 0; i < bytes; i++) {
        int keep = bits >= 8 ? 8 : bits > 0 ? bits : 0;
        b[i] &= (unsigned char)(0xff00u >> keep);
        bits -= 8;
    }
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(family, b, ip, sizeof(ip)))
        return false;
    return snprintf(out, cap, "%s/%u", ip, len) < (int)cap;
}

/*
 * Runs the actions of one rate limit into d. Returns 1 when the descriptor
 * is complete, 0 when an action could not yield (the descriptor is dropped),
 * or MP_ERR_NOMEM.
 */
static int run_actions(const struct mp_rate_limit *rl, const struct mp_rl_request_info *info,
                       const struct mp_route_request *rq, struct mp_rl_descriptor *d)
{
    d->entries = calloc(rl->n_actions ? rl->n_actions : 1, sizeof(*d->entries));
    if (!d->entries)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < rl->n_actions; i++) {
        const struct mp_rate_limit_action *a = &rl->actions[i];
        const char *v = NULL;
        size_t vn = 0;
        char masked[INET6_ADDRSTRLEN + 8];
        switch (a->kind) {
        case MP_RL_SOURCE_CLUSTER: v = info->source_cluster; break;
        case MP_RL_DESTINATION_CLUSTER: v = info->destination_cluster; break;
        case MP_RL_REQUEST_HEADERS: {
            const struct mp_header *h =
                info->headers ? mp_headers_get(info->headers, a->header_name) : NULL;
            if (!h) {
                if (a->skip_if_absent)
                    continue;
                return 0;
            }
            v = h->value;
            vn = h->value_len;
            break;
        }
        case MP_RL_REMOTE_ADDRESS: v = info->remote_address; break;
        case MP_RL_MASKED_REMOTE_ADDRESS:
            if (info->remote_address && mask_address(info->remote_address, a->v4_prefix_len,
                                                     a->v6_prefix_len, masked, sizeof(masked)))
                v = masked;
            break;
        case MP_RL_GENERIC_KEY: v = a->descriptor_value; break;
        case MP_RL_HEADER_VALUE_MATCH: {
            bool all = true;
            for (size_t j = 0; j < a->n_headers && all; j++)
                all = mp_header_match_eval(&a->headers[j], rq);
            if (all != a->expect_match)
                return 0;
            v = a->descriptor_value;
            break;
        }
        case MP_RL_QUERY_PARAMETER_VALUE_MATCH: {
            bool all = true;
            for (size_t j = 0; j < a->n_query_params && all; j++)
                all = mp_query_match_eval(&a->query_params[j], rq->path, rq->path_len);
            if (all != a->expect_match)
                return 0;
            v = a->descriptor_value;
            break;
        }
        }
        if (!v)
            return 0;
        if (!vn)
            vn = strlen(v);
        int rc = entry_add(d, rl->n_actions, a->descriptor_key, v, vn);
        if (rc)
            return rc;
    }
    /* every action skipped (all absent headers): nothing to ask about */
    return d->n > 0 ? 1 : 0;
}

int mp_rl_descriptors_build(const struct mp_rate_limit *limits, size_t n, uint32_t stage,
                            const struct mp_rl_request_info *info, struct mp_rl_descriptors *out)
{
    if (n == 0)
        return 0;
    const struct mp_headers *h = info->headers;
    size_t nh = h ? h->n : 0;
    struct mp_header_view stackv[32];
    struct mp_header_view *views = stackv;
    if (nh > MP_ARRAY_LEN(stackv)) {
        views = malloc(nh * sizeof(*views));
        if (!views)
            return MP_ERR_NOMEM;
    }
    for (size_t i = 0; i < nh; i++) {
        views[i].name = h->v[i].name;
        views[i].name_len = h->v[i].name_len;
        views[i].value = h->v[i].value;
        views[i].value_len = h->v[i].value_len;
    }
    const char *path = h ? mp_headers_value(h, ":path") : NULL;
    const char *method = h ? mp_headers_value(h, ":method") : NULL;
    const char *auth = h ? mp_headers_value(h, ":authority") : NULL;
    struct mp_route_request rq = {
        .authority = auth ? auth : "",
        .authority_len = auth ? strlen(auth) : 0,
        .path = path ? path : "",
        .path_len = path ? strlen(path) : 0,
        .method = method ? method : "",
        .method_len = method ? strlen(method) : 0,
        .headers = views,
        .n_headers = nh,
    };
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (limits[i].stage != stage)
            continue;
        struct mp_rl_descriptor d = {0};
        int r = run_actions(&limits[i], info, &rq, &d);
        if (r <= 0) {
            descriptor_clear(&d);
            rc = r;
            continue;
        }
        struct mp_rl_descriptor *nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
        if (!nv) {
            descriptor_clear(&d);
            rc = MP_ERR_NOMEM;
            break;
        }
        out->v = nv;
        out->v[out->n++] = d;
    }
    if (views != stackv)
        free(views);
    return rc;
}

/* ---- request ------------------------------------------------------------- */

int mp_rl_request_pack(const char *domain, const struct mp_rl_descriptors *d, uint8_t **out,
                       size_t *len)
{
    Envoy__Service__Ratelimit__V3__RateLimitRequest req =
        ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_REQUEST__INIT;
    req.domain = (char *)(domain ? domain : "");
    size_t n_entries = 0;
    for (size_t i = 0; i < d->n; i++)
        n_entries += d->v[i].n;
    int rc = MP_ERR_NOMEM;
    Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor *descs =
        calloc(d->n ? d->n : 1, sizeof(*descs));
    Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor **descp =
        calloc(d->n ? d->n : 1, sizeof(*descp));
    Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor__Entry *ents =
        calloc(n_entries ? n_entries : 1, sizeof(*ents));
    Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor__Entry **entp =
        calloc(n_entries ? n_entries : 1, sizeof(*entp));
    if (!descs || !descp || !ents || !entp)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor init =
            ENVOY__EXTENSIONS__COMMON__RATELIMIT__V3__RATE_LIMIT_DESCRIPTOR__INIT;
        descs[i] = init;
        descs[i].entries = &entp[k];
        descs[i].n_entries = d->v[i].n;
        for (size_t j = 0; j < d->v[i].n; j++, k++) {
            Envoy__Extensions__Common__Ratelimit__V3__RateLimitDescriptor__Entry e =
                ENVOY__EXTENSIONS__COMMON__RATELIMIT__V3__RATE_LIMIT_DESCRIPTOR__ENTRY__INIT;
            e.key = d->v[i].entries[j].key;
            e.value = d->v[i].entries[j].value;
            ents[k] = e;
            entp[k] = &ents[k];
        }
        descp[i] = &descs[i];
    }
    req.descriptors = descp;
    req.n_descriptors = d->n;
    size_t n = envoy__service__ratelimit__v3__rate_limit_request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        goto out;
    *len = envoy__service__ratelimit__v3__rate_limit_request__pack(&req, buf);
    *out = buf;
    rc = 0;
out:
    free(descs);
    free(descp);
    free(ents);
    free(entp);
    return rc;
}

/* ---- response ------------------------------------------------------------ */

void mp_rl_result_init(struct mp_rl_result *r)
{
    r->code = MP_RL_UNKNOWN;
    mp_headers_init(&r->response_headers);
    mp_headers_init(&r->request_headers);
}

void mp_rl_result_clear(struct mp_rl_result *r)
{
    mp_headers_clear(&r->response_headers);
    mp_headers_clear(&r->request_headers);
    mp_rl_result_init(r);
}

static int copy_headers(struct mp_headers *dst, Envoy__Config__Core__V3__HeaderValue *const *hv,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!hv[i]->key || !hv[i]->key[0])
            continue;
        const char *v = hv[i]->value ? hv[i]->value : "";
        size_t vn = strlen(v);
        if (hv[i]->raw_value.len) {
            v = (const char *)hv[i]->raw_value.data;
            vn = hv[i]->raw_value.len;
        }
        int rc = mp_headers_add(dst, hv[i]->key, strlen(hv[i]->key), v, vn);
        if (rc)
            return rc;
    }
    return 0;
}

int mp_rl_response_parse(const uint8_t *data, size_t len, struct mp_rl_result *r)
{
    Envoy__Service__Ratelimit__V3__RateLimitResponse *resp =
        envoy__service__ratelimit__v3__rate_limit_response__unpack(NULL, len, data);
    if (!resp)
        return MP_ERR_PARSE;
    switch (resp->overall_code) {
    case ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_RESPONSE__CODE__OK: r->code = MP_RL_OK; break;
    case ENVOY__SERVICE__RATELIMIT__V3__RATE_LIMIT_RESPONSE__CODE__OVER_LIMIT:
        r->code = MP_RL_OVER_LIMIT;
        break;
    default: r->code = MP_RL_UNKNOWN; break;
    }
    int rc = copy_headers(&r->response_headers, resp->response_headers_to_add,
                          resp->n_response_headers_to_add);
    if (!rc)
        rc = copy_headers(&r->request_headers, resp->request_headers_to_add,
                          resp->n_request_headers_to_add);
    envoy__service__ratelimit__v3__rate_limit_response__free_unpacked(resp, NULL);
    return rc;
}
