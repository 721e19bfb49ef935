/*
 * fault_config.c: HTTPFault translation and the fault decisions.
 */
#include "fault_config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/mp_common.h"
#include "proxy/route_table.h"
#include "proxy/router_match.h"
#include "xds/xds_translate_route.h"

typedef Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault HTTPFault;

#define H_DELAY         "x-envoy-fault-delay-request"
#define H_DELAY_PERCENT "x-envoy-fault-delay-request-percentage"
#define H_ABORT         "x-envoy-fault-abort-request"
#define H_ABORT_GRPC    "x-envoy-fault-abort-grpc-request"
#define H_ABORT_PERCENT "x-envoy-fault-abort-request-percentage"
#define H_NODE          "x-envoy-downstream-service-node"

static struct mp_fault_percent percent_from_proto(const Envoy__Type__V3__FractionalPercent *pb)
{
    struct mp_fault_percent p = {0, 100};
    if (!pb)
        return p; /* unset: 0%, as Envoy */
    p.numerator = pb->numerator;
    switch (pb->denominator) {
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND:
        p.denominator = 10000;
        break;
    case ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION:
        p.denominator = 1000000;
        break;
    default: p.denominator = 100; break;
    }
    return p;
}

static int delay_from_proto(const Envoy__Extensions__Filters__Common__Fault__V3__FaultDelay *pb,
                            struct mp_fault_config *c, char **err)
{
    c->delay_percent = percent_from_proto(pb->percentage);
    switch (pb->fault_delay_secifier_case) {
    case ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY: {
        const Google__Protobuf__Duration *d = pb->fixed_delay;
        if (!d || d->seconds < 0 || d->nanos < 0 || (d->seconds == 0 && d->nanos == 0))
            return mp_set_err(err, "fixed_delay: must be greater than 0");
        if (d->seconds > (int64_t)(UINT64_MAX / 2000))
            return mp_set_err(err, "fixed_delay: too large");
        c->delay = MP_FAULT_DELAY_FIXED;
        c->delay_ms = (uint64_t)d->seconds * 1000 + (uint64_t)d->nanos / 1000000;
        if (c->delay_ms == 0)
            c->delay_ms = 1; /* sub-millisecond delays still delay */
        return 0;
    }
    case ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_HEADER_DELAY:
        c->delay = MP_FAULT_DELAY_HEADER;
        return 0;
    default: return mp_set_err(err, ": one of fixed_delay, header_delay is required");
    }
}

static int abort_from_proto(const Envoy__Extensions__Filters__Http__Fault__V3__FaultAbort *pb,
                            struct mp_fault_config *c, char **err)
{
    c->abort_percent = percent_from_proto(pb->percentage);
    switch (pb->error_type_case) {
    case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS:
        if (pb->http_status < 200 || pb->http_status >= 600)
            return mp_set_err(err, "http_status: %u is not in [200, 600)", pb->http_status);
        c->abort = MP_FAULT_ABORT_HTTP;
        c->http_status = pb->http_status;
        return 0;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_GRPC_STATUS:
        c->abort = MP_FAULT_ABORT_GRPC;
        c->grpc_status = pb->grpc_status;
        return 0;
    case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HEADER_ABORT:
        c->abort = MP_FAULT_ABORT_HEADER;
        return 0;
    default: return mp_set_err(err, ": one of http_status, grpc_status, header_abort is required");
    }
}

int mp_fault_config_from_proto(const HTTPFault *pb, struct mp_fault_config **out, char **err)
{
    int rc = MP_ERR_NOMEM;
    struct mp_fault_config *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    c->arena = mp_route_config_new();
    if (!c->arena)
        goto fail;
    if (pb->response_rate_limit) {
        rc = mp_set_err(err, "response_rate_limit: not supported by meshproxy");
        goto fail;
    }
    if (pb->delay) {
        rc = delay_from_proto(pb->delay, c, err);
        if (rc < 0) {
            mp_err_prefix(err, "delay");
            goto fail;
        }
    }
    if (pb->abort) {
        rc = abort_from_proto(pb->abort, c, err);
        if (rc < 0) {
            mp_err_prefix(err, "abort");
            goto fail;
        }
    }
    rc = MP_ERR_NOMEM;
    if (pb->upstream_cluster && *pb->upstream_cluster) {
        c->upstream_cluster = mp_route_arena_strndup(c->arena, pb->upstream_cluster,
                                                     strlen(pb->upstream_cluster), false);
        if (!c->upstream_cluster)
            goto fail;
    }
    if (pb->n_headers) {
        struct mp_header_match *hm = mp_route_arena_alloc(c->arena, pb->n_headers * sizeof(*hm));
        if (!hm)
            goto fail;
        for (size_t i = 0; i < pb->n_headers; i++) {
            rc = mp_header_match_from_proto(c->arena, pb->headers[i], &hm[i], err);
            if (rc < 0) {
                mp_err_prefix(err, "headers[%zu]", i);
                goto fail;
            }
        }
        c->headers = hm;
        c->n_headers = pb->n_headers;
    }
    rc = MP_ERR_NOMEM;
    if (pb->n_downstream_nodes) {
        const char **nodes =
            mp_route_arena_alloc(c->arena, pb->n_downstream_nodes * sizeof(*nodes));
        if (!nodes)
            goto fail;
        for (size_t i = 0; i < pb->n_downstream_nodes; i++) {
            const char *n = pb->downstream_nodes[i] ? pb->downstream_nodes[i] : "";
            nodes[i] = mp_route_arena_strndup(c->arena, n, strlen(n), false);
            if (!nodes[i])
                goto fail;
        }
        c->downstream_nodes = nodes;
        c->n_downstream_nodes = pb->n_downstream_nodes;
    }
    if (pb->max_active_faults) {
        c->has_max_active = true;
        c->max_active_faults = pb->max_active_faults->value;
    }
    *out = c;
    return 0;
fail:
    if (rc == MP_ERR_NOMEM)
        mp_set_err(err, "out of memory");
    mp_fault_config_free(c);
    return rc;
}

int mp_fault_config_from_bytes(const uint8_t *data, size_t len, struct mp_fault_config **out,
                               char **err)
{
    HTTPFault *pb = envoy__extensions__filters__http__fault__v3__httpfault__unpack(NULL, len, data);
    if (!pb) {
        mp_set_err(err, ": cannot decode envoy.extensions.filters.http.fault.v3.HTTPFault");
        return MP_ERR_PARSE;
    }
    int rc = mp_fault_config_from_proto(pb, out, err);
    protobuf_c_message_free_unpacked(&pb->base, NULL);
    return rc;
}

void mp_fault_config_free(struct mp_fault_config *c)
{
    if (!c)
        return;
    mp_route_config_free(c->arena);
    free(c);
}

bool mp_fault_percent_hit(struct mp_fault_percent p, uint64_t random)
{
    if (p.denominator == 0 || p.numerator == 0)
        return false;
    return random % p.denominator < p.numerator;
}

/* Whole-string unsigned decimal (as absl::SimpleAtoi for uint32, no sign, no spaces). */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

struct mp_fault_percent mp_fault_header_percent(struct mp_fault_percent cfg, const char *header)
{
    uint64_t v;
    if (!parse_u64(header, UINT32_MAX, &v))
        return cfg;
    struct mp_fault_percent p = cfg;
    if (v < p.numerator)
        p.numerator = (uint32_t)v;
    return p;
}

const char *mp_fault_header(const struct mp_route_request *rq, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < rq->n_headers; i++) {
        const struct mp_header_view *h = &rq->headers[i];
        if (h->name_len == n && memcmp(h->name, name, n) == 0)
            return h->value;
    }
    return NULL;
}

bool mp_fault_request_qualifies(const struct mp_fault_config *c, const struct mp_route_request *rq)
{
    for (size_t i = 0; i < c->n_headers; i++)
        if (!mp_header_match_eval(&c->headers[i], rq))
            return false;
    if (c->n_downstream_nodes == 0)
        return true;
    const char *node = mp_fault_header(rq, H_NODE);
    if (!node)
        return false;
    for (size_t i = 0; i < c->n_downstream_nodes; i++)
        if (strcmp(c->downstream_nodes[i], node) == 0)
            return true;
    return false;
}

bool mp_fault_decide_delay(const struct mp_fault_config *c, const struct mp_route_request *rq,
                           uint64_t random, uint64_t *ms)
{
    uint64_t d;
    struct mp_fault_percent p;
    switch (c->delay) {
    case MP_FAULT_DELAY_FIXED:
        d = c->delay_ms;
        p = c->delay_percent;
        break;
    case MP_FAULT_DELAY_HEADER:
        /* no (valid) header: no delay */
        if (!parse_u64(mp_fault_header(rq, H_DELAY), UINT64_MAX / 1000, &d))
            return false;
        p = mp_fault_header_percent(c->delay_percent, mp_fault_header(rq, H_DELAY_PERCENT));
        break;
    default: return false;
    }
    if (d == 0 || !mp_fault_percent_hit(p, random))
        return false;
    *ms = d;
    return true;
}

bool mp_fault_decide_abort(const struct mp_fault_config *c, const struct mp_route_request *rq,
                           uint64_t random, struct mp_fault_abort *a)
{
    struct mp_fault_abort r = {0};
    struct mp_fault_percent p = c->abort_percent;
    uint64_t v;
    switch (c->abort) {
    case MP_FAULT_ABORT_HTTP: r.http_status = c->http_status; break;
    case MP_FAULT_ABORT_GRPC:
        r.has_grpc = true;
        r.grpc_status = c->grpc_status;
        break;
    case MP_FAULT_ABORT_HEADER:
        if (parse_u64(mp_fault_header(rq, H_ABORT), UINT32_MAX, &v) && v >= 200 && v < 600)
            r.http_status = (uint32_t)v;
        if (parse_u64(mp_fault_header(rq, H_ABORT_GRPC), UINT32_MAX, &v)) {
            r.has_grpc = true;
            r.grpc_status = (uint32_t)v;
        }
        if (!r.http_status && !r.has_grpc)
            return false;
        p = mp_fault_header_percent(c->abort_percent, mp_fault_header(rq, H_ABORT_PERCENT));
        break;
    default: return false;
    }
    if (!mp_fault_percent_hit(p, random))
        return false;
    *a = r;
    return true;
}
