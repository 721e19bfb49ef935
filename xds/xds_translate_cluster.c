/*
 * xds_translate_cluster.c: Cluster / ClusterLoadAssignment -> mp_cluster / mp_host_set.
 *
 * Every error names the field path within the resource; nested helpers set
 * the message for their own field and callers prepend their part with
 * mp_err_prefix, so the path is built from the inside out.
 */
#include "xds_translate_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "proxy/mp_common.h"

#define HTTP_PROTOCOL_OPTIONS_KEY "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define MAX_PRIORITY              127 /* sanity bound; Envoy has none but levels are arrays here */
#define MAX_DURATION_SECONDS      315576000000LL

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;

/* ------------------------------------------------------------------ */
/* Small value helpers                                                 */

/* Duration -> milliseconds; *err names only the problem, callers prefix the field. */
static int duration_ms(const Google__Protobuf__Duration *d, uint64_t *ms, char **err)
{
    if (d->seconds < 0 || d->nanos < 0)
        return mp_set_err(err, ": must not be negative");
    if (d->seconds > MAX_DURATION_SECONDS || d->nanos > 999999999)
        return mp_set_err(err, ": duration out of range");
    *ms = (uint64_t)d->seconds * 1000 + (uint64_t)d->nanos / 1000000;
    return 0;
}

/* A positive duration (validate rule gt: {}). */
static int positive_duration_ms(const Google__Protobuf__Duration *d, uint64_t *ms, char **err)
{
    if (duration_ms(d, ms, err) != 0)
        return MP_ERR_INVAL;
    if (d->seconds == 0 && d->nanos == 0)
        return mp_set_err(err, ": must be greater than 0s");
    if (*ms == 0)
        *ms = 1; /* sub-millisecond: round up rather than mean "none" */
    return 0;
}

static char *dup_str(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static int copy_any(const Google__Protobuf__Any *a, struct mp_raw_any *out)
{
    memset(out, 0, sizeof(*out));
    if (a == NULL)
        return 0;
    out->type_url = dup_str(a->type_url);
    out->data = malloc(a->value.len ? a->value.len : 1);
    if (out->type_url == NULL || out->data == NULL)
        return MP_ERR_NOMEM;
    if (a->value.len)
        memcpy(out->data, a->value.data, a->value.len);
    out->len = a->value.len;
    return 0;
}

/* Canonical text for a metadata value (see struct mp_kv). */
static char *value_text(const Google__Protobuf__Value *v)
{
    char buf[64];
    const char *s = buf;
    char *out;
    switch (v != NULL ? v->kind_case : GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: {
        size_t n = strlen(v->string_value) + 3;
        out = malloc(n);
        if (out != NULL)
            snprintf(out, n, "s:%s", v->string_value);
        return out;
    }
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE: s = v->bool_value ? "b:true" : "b:false"; break;
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        snprintf(buf, sizeof(buf), "n:%.17g", v->number_value);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        snprintf(buf, sizeof(buf), "x:%zu", v->struct_value ? v->struct_value->n_fields : 0);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        snprintf(buf, sizeof(buf), "x:%zu", v->list_value ? v->list_value->n_values : 0);
        break;
    default: s = "null"; break;
    }
    return strdup(s);
}

/* Appends the fields of one Struct as (filter, key, value) triples. */
static int kv_append(struct mp_kv **kv, size_t *n, const char *filter,
                     const Google__Protobuf__Struct *st)
{
    if (st == NULL || st->n_fields == 0)
        return 0;
    struct mp_kv *grown = realloc(*kv, (*n + st->n_fields) * sizeof(**kv));
    if (grown == NULL)
        return MP_ERR_NOMEM;
    *kv = grown;
    for (size_t i = 0; i < st->n_fields; i++) {
        struct mp_kv *e = &grown[(*n)++];
        e->filter = dup_str(filter);
        e->key = dup_str(st->fields[i]->key);
        e->value = value_text(st->fields[i]->value);
        if (e->filter == NULL || e->key == NULL || e->value == NULL)
            return MP_ERR_NOMEM;
    }
    return 0;
}

static int metadata_flatten(const Envoy__Config__Core__V3__Metadata *md, struct mp_kv **kv,
                            size_t *n)
{
    if (md == NULL)
        return 0;
    for (size_t i = 0; i < md->n_filter_metadata; i++) {
        int rc = kv_append(kv, n, md->filter_metadata[i]->key, md->filter_metadata[i]->value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int locality_copy(struct mp_locality *dst, const Envoy__Config__Core__V3__Locality *src)
{
    dst->region = dup_str(src != NULL ? src->region : NULL);
    dst->zone = dup_str(src != NULL ? src->zone : NULL);
    dst->sub_zone = dup_str(src != NULL ? src->sub_zone : NULL);
    return dst->region && dst->zone && dst->sub_zone ? 0 : MP_ERR_NOMEM;
}

static enum mp_host_health health_of(Envoy__Config__Core__V3__HealthStatus s)
{
    switch (s) {
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNKNOWN:
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY: return MP_HOST_HEALTHY;
    case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DEGRADED: return MP_HOST_DEGRADED;
    default: return MP_HOST_UNHEALTHY; /* UNHEALTHY, DRAINING, TIMEOUT */
    }
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

/*
 * Resolves an Address that must be an IP literal or a pipe. On error *err
 * is relative to the Address ("socket_address.port_value: ...").
 */
static int address_to_sockaddr(const Envoy__Config__Core__V3__Address *a,
                               struct sockaddr_storage *ss, socklen_t *len, char **err)
{
    memset(ss, 0, sizeof(*ss));
    switch (a->address_case) {
    case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS: {
        const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
        if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
            return mp_set_err(err, "socket_address.protocol: only TCP is supported upstream");
        if (sa->resolver_name != NULL && sa->resolver_name[0] != '\0')
            return mp_set_err(err, "socket_address.resolver_name: unknown resolver \"%s\"",
                              sa->resolver_name);
        if (sa->port_specifier_case ==
            ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_NAMED_PORT)
            return mp_set_err(err, "socket_address.named_port: named ports are not supported");
        if (sa->port_value > 65535)
            return mp_set_err(err, "socket_address.port_value: port %u out of range",
                              sa->port_value);
        const char *ip = sa->address != NULL ? sa->address : "";
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)sa->port_value);
            *len = sizeof(*sin);
        } else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)sa->port_value);
            *len = sizeof(*sin6);
        } else {
            return mp_set_err(err,
                              "socket_address.address: malformed IP address: %s. Consider "
                              "setting resolver_name or setting cluster type to 'STRICT_DNS' "
                              "or 'LOGICAL_DNS'",
                              ip);
        }
        return 0;
    }
    case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE: {
        const char *path = a->pipe->path != NULL ? a->pipe->path : "";
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        size_t n = strlen(path);
        if (n == 0)
            return mp_set_err(err, "pipe.path: must not be empty");
        if (n >= sizeof(sun->sun_path))
            return mp_set_err(err, "pipe.path: longer than %zu bytes", sizeof(sun->sun_path) - 1);
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, path, n);
        /* "@name" is Linux's abstract namespace, as in Envoy. */
        if (path[0] == '@')
            sun->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
        return 0;
    }
    case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_ENVOY_INTERNAL_ADDRESS:
        return mp_set_err(err, "envoy_internal_address: internal listeners are not supported");
    default: return mp_set_err(err, ": address must be set");
    }
}

/* ------------------------------------------------------------------ */
/* ClusterLoadAssignment                                               */

enum cla_mode {
    CLA_IP,  /* STATIC / EDS: every address an IP literal or pipe */
    CLA_DNS, /* STRICT_DNS / LOGICAL_DNS: socket addresses name hosts to resolve */
};

struct cla_out {
    struct mp_host_set *hs;        /* CLA_IP */
    struct mp_dns_target *targets; /* CLA_DNS */
    size_t n_targets;
    uint32_t overprovisioning_factor;
};

static void targets_free(struct mp_dns_target *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].hostname);
        free(t[i].locality.region);
        free(t[i].locality.zone);
        free(t[i].locality.sub_zone);
    }
    free(t);
}

/* One LbEndpoint; *err relative to the LbEndpoint. */
static int lb_endpoint_ip(const Envoy__Config__Endpoint__V3__LbEndpoint *le, uint32_t priority,
                          uint32_t locality_index, struct mp_host *h, char **err)
{
    if (le->host_identifier_case ==
        ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT_NAME)
        return mp_set_err(err, "endpoint_name: named endpoints are not supported");
    if (le->host_identifier_case !=
            ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
        le->endpoint == NULL || le->endpoint->address == NULL)
        return mp_set_err(err, "endpoint.address: must be set");
    int rc = address_to_sockaddr(le->endpoint->address, &h->addr, &h->addr_len, err);
    if (rc != 0) {
        mp_err_prefix(err, "endpoint.address");
        return rc;
    }
    char buf[160];
    h->addr_str = strdup(mp_host_addr_format(&h->addr, buf, sizeof(buf)));
    h->hostname = dup_str(le->endpoint->hostname);
    if (h->addr_str == NULL || h->hostname == NULL)
        return MP_ERR_NOMEM;
    h->weight = le->load_balancing_weight != NULL ? le->load_balancing_weight->value : 1;
    h->eds_health = (uint32_t)le->health_status;
    h->health = health_of(le->health_status);
    h->priority = priority;
    h->locality_index = locality_index;
    return metadata_flatten(le->metadata, &h->metadata, &h->n_metadata);
}

static int lb_endpoint_dns(const Envoy__Config__Endpoint__V3__LbEndpoint *le, uint32_t priority,
                           const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle,
                           struct mp_dns_target *t, char **err)
{
    if (le->host_identifier_case !=
            ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
        le->endpoint == NULL || le->endpoint->address == NULL)
        return mp_set_err(err, "endpoint.address: must be set");
    const Envoy__Config__Core__V3__Address *a = le->endpoint->address;
    if (a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
        return mp_set_err(err,
                          "endpoint.address.socket_address: DNS clusters need a socket address");
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    if (sa->port_specifier_case ==
        ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_NAMED_PORT)
        return mp_set_err(
            err, "endpoint.address.socket_address.named_port: named ports are not supported");
    if (sa->port_value > 65535)
        return mp_set_err(err, "endpoint.address.socket_address.port_value: port %u out of range",
                          sa->port_value);
    if (sa->address == NULL || sa->address[0] == '\0')
        return mp_set_err(err, "endpoint.address.socket_address.address: must not be empty");
    t->hostname = strdup(sa->address);
    if (t->hostname == NULL || locality_copy(&t->locality, lle->locality) != 0)
        return MP_ERR_NOMEM;
    t->port = (uint16_t)sa->port_value;
    t->weight = le->load_balancing_weight != NULL ? le->load_balancing_weight->value : 1;
    t->priority = priority;
    t->locality_weight = lle->load_balancing_weight != NULL ? lle->load_balancing_weight->value : 0;
    t->health = health_of(le->health_status);
    return 0;
}

/* Checks what the validate rules of the CLA say; *err relative to the CLA. */
static int cla_validate(const Cla *pb, size_t *n_endpoints, char **err)
{
    *n_endpoints = 0;
    if (pb->policy != NULL && pb->policy->overprovisioning_factor != NULL &&
        pb->policy->overprovisioning_factor->value == 0)
        return mp_set_err(err, "policy.overprovisioning_factor: value must be greater than 0");
    if (pb->n_named_endpoints != 0)
        return mp_set_err(err, "named_endpoints: named endpoints are not supported");
    for (size_t i = 0; i < pb->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = pb->endpoints[i];
        if (lle->priority > MAX_PRIORITY)
            return mp_set_err(err, "endpoints[%zu].priority: %u exceeds the maximum of %d", i,
                              lle->priority, MAX_PRIORITY);
        if (lle->load_balancing_weight != NULL && lle->load_balancing_weight->value < 1)
            return mp_set_err(err,
                              "endpoints[%zu].load_balancing_weight: value must be greater than "
                              "or equal to 1",
                              i);
        if (lle->lb_config_case !=
            ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__LB_CONFIG__NOT_SET)
            return mp_set_err(
                err, "endpoints[%zu]: LEDS and load_balancer_endpoints are not supported", i);
        uint64_t sum = 0;
        for (size_t k = 0; k < lle->n_lb_endpoints; k++) {
            const Envoy__Config__Endpoint__V3__LbEndpoint *le = lle->lb_endpoints[k];
            uint32_t w = le->load_balancing_weight != NULL ? le->load_balancing_weight->value : 1;
            if (w < 1)
                return mp_set_err(err,
                                  "endpoints[%zu].lb_endpoints[%zu].load_balancing_weight: value "
                                  "must be greater than or equal to 1",
                                  i, k);
            sum += w;
        }
        if (sum > UINT32_MAX)
            return mp_set_err(err,
                              "endpoints[%zu]: the sum of weights of all upstream hosts in a "
                              "locality exceeds %u",
                              i, UINT32_MAX);
        *n_endpoints += lle->n_lb_endpoints;
    }
    return 0;
}

static int cla_translate(const Cla *pb, enum cla_mode mode, struct cla_out *out, char **err)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    int rc = cla_validate(pb, &n, err);
    if (rc != 0)
        return rc;
    out->overprovisioning_factor = pb->policy != NULL && pb->policy->overprovisioning_factor != NULL
                                       ? pb->policy->overprovisioning_factor->value
                                       : 140;
    if (mode == CLA_DNS) {
        out->targets = calloc(n ? n : 1, sizeof(*out->targets));
        if (out->targets == NULL)
            return MP_ERR_NOMEM;
        for (size_t i = 0; i < pb->n_endpoints; i++) {
            const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = pb->endpoints[i];
            for (size_t k = 0; k < lle->n_lb_endpoints; k++) {
                rc = lb_endpoint_dns(lle->lb_endpoints[k], lle->priority, lle,
                                     &out->targets[out->n_targets++], err);
                if (rc != 0) {
                    mp_err_prefix(err, "endpoints[%zu].lb_endpoints[%zu]", i, k);
                    goto fail;
                }
            }
        }
        return 0;
    }

    struct mp_host_set *hs = mp_host_set_new();
    out->hs = hs;
    rc = MP_ERR_NOMEM;
    if (hs == NULL)
        goto fail;
    hs->overprovisioning_factor = out->overprovisioning_factor;
    hs->weighted_priority_health = pb->policy != NULL && pb->policy->weighted_priority_health;
    hs->hosts = calloc(n ? n : 1, sizeof(*hs->hosts));
    hs->localities = calloc(pb->n_endpoints ? pb->n_endpoints : 1, sizeof(*hs->localities));
    if (hs->hosts == NULL || hs->localities == NULL)
        goto fail;
    for (size_t i = 0; i < pb->n_endpoints; i++) {
        const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = pb->endpoints[i];
        struct mp_host_locality *loc = &hs->localities[hs->n_localities++];
        if (locality_copy(&loc->locality, lle->locality) != 0) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        loc->weight = lle->load_balancing_weight != NULL ? lle->load_balancing_weight->value : 0;
        loc->priority = lle->priority;
        for (size_t k = 0; k < lle->n_lb_endpoints; k++) {
            rc = lb_endpoint_ip(lle->lb_endpoints[k], lle->priority, (uint32_t)i,
                                &hs->hosts[hs->n_hosts++], err);
            if (rc != 0) {
                mp_err_prefix(err, "endpoints[%zu].lb_endpoints[%zu]", i, k);
                goto fail;
            }
        }
    }
    rc = mp_host_set_finish(hs);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    mp_host_set_free(out->hs);
    out->hs = NULL;
    targets_free(out->targets, out->n_targets);
    out->targets = NULL;
    out->n_targets = 0;
    return rc;
}

int mp_host_set_from_cla(const Cla *pb, struct mp_host_set **out, char **err)
{
    struct cla_out co;
    int rc = cla_translate(pb, CLA_IP, &co, err);
    if (rc == 0)
        *out = co.hs;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Cluster pieces                                                      */

static int http2_settings(const Envoy__Config__Core__V3__Http2ProtocolOptions *o,
                          struct mp_http2_settings *s, char **err)
{
    if (o == NULL)
        return 0;
    if (o->hpack_table_size != NULL)
        s->hpack_table_size = o->hpack_table_size->value;
    if (o->max_concurrent_streams != NULL) {
        uint32_t v = o->max_concurrent_streams->value;
        if (v < 1 || v > 2147483647u)
            return mp_set_err(err, "max_concurrent_streams: %u out of range [1, 2147483647]", v);
        s->max_concurrent_streams = v;
    }
    if (o->initial_stream_window_size != NULL) {
        uint32_t v = o->initial_stream_window_size->value;
        if (v < 65535 || v > 2147483647u)
            return mp_set_err(err,
                              "initial_stream_window_size: %u out of range [65535, 2147483647]", v);
        s->initial_stream_window_size = v;
    }
    if (o->initial_connection_window_size != NULL) {
        uint32_t v = o->initial_connection_window_size->value;
        if (v < 65535 || v > 2147483647u)
            return mp_set_err(
                err, "initial_connection_window_size: %u out of range [65535, 2147483647]", v);
        s->initial_connection_window_size = v;
    }
    s->allow_connect = o->allow_connect;
    return 0;
}

static int common_http_options(const Envoy__Config__Core__V3__HttpProtocolOptions *o,
                               struct mp_cluster *c, char **err)
{
    if (o == NULL)
        return 0;
    if (o->idle_timeout != NULL && duration_ms(o->idle_timeout, &c->idle_timeout_ms, err) != 0) {
        mp_err_prefix(err, "idle_timeout");
        return MP_ERR_INVAL;
    }
    if (o->max_connection_duration != NULL &&
        duration_ms(o->max_connection_duration, &c->max_connection_duration_ms, err) != 0) {
        mp_err_prefix(err, "max_connection_duration");
        return MP_ERR_INVAL;
    }
    if (o->max_stream_duration != NULL &&
        duration_ms(o->max_stream_duration, &c->max_stream_duration_ms, err) != 0) {
        mp_err_prefix(err, "max_stream_duration");
        return MP_ERR_INVAL;
    }
    if (o->max_headers_count != NULL) {
        if (o->max_headers_count->value < 1)
            return mp_set_err(err, "max_headers_count: value must be greater than or equal to 1");
        c->max_headers_count = o->max_headers_count->value;
    }
    if (o->max_requests_per_connection != NULL)
        c->max_requests_per_connection = o->max_requests_per_connection->value;
    return 0;
}

/* typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]. */
static int upstream_http_options(const Google__Protobuf__Any *any, struct mp_cluster *c, char **err)
{
    static const char want[] = "type.googleapis.com/" HTTP_PROTOCOL_OPTIONS_KEY;
    if (any == NULL)
        return mp_set_err(err, ": value must be set");
    const char *slash = any->type_url != NULL ? strrchr(any->type_url, '/') : NULL;
    if (slash == NULL || strcmp(slash + 1, HTTP_PROTOCOL_OPTIONS_KEY) != 0)
        return mp_set_err(err, ".type_url: expected %s, got \"%s\"", want,
                          any->type_url != NULL ? any->type_url : "");
    Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *o =
        envoy__extensions__upstreams__http__v3__http_protocol_options__unpack(NULL, any->value.len,
                                                                              any->value.data);
    if (o == NULL)
        return mp_set_err(err, ": cannot decode HttpProtocolOptions");
    int rc = 0;
    switch (o->upstream_protocol_options_case) {
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG: {
        const Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig *e =
            o->explicit_http_config;
        switch (e->protocol_config_case) {
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS:
            c->upstream_protocol = MP_UPSTREAM_HTTP1;
            break;
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS:
            c->upstream_protocol = MP_UPSTREAM_HTTP2;
            rc = http2_settings(e->http2_protocol_options, &c->http2, err);
            if (rc != 0)
                mp_err_prefix(err, ".explicit_http_config.http2_protocol_options");
            break;
        case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP3_PROTOCOL_OPTIONS:
            rc = mp_set_err(
                err,
                ".explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not supported");
            break;
        default: rc = mp_set_err(err, ".explicit_http_config: a protocol must be set"); break;
        }
        break;
    }
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG:
        c->upstream_protocol = MP_UPSTREAM_USE_DOWNSTREAM;
        rc = http2_settings(o->use_downstream_protocol_config->http2_protocol_options, &c->http2,
                            err);
        if (rc != 0)
            mp_err_prefix(err, ".use_downstream_protocol_config.http2_protocol_options");
        break;
    case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_AUTO_CONFIG:
        c->upstream_protocol = MP_UPSTREAM_AUTO;
        rc = http2_settings(o->auto_config->http2_protocol_options, &c->http2, err);
        if (rc != 0)
            mp_err_prefix(err, ".auto_config.http2_protocol_options");
        break;
    default: rc = mp_set_err(err, ": upstream_protocol_options must be set"); break;
    }
    if (rc == 0) {
        rc = common_http_options(o->common_http_protocol_options, c, err);
        if (rc != 0)
            mp_err_prefix(err, ".common_http_protocol_options");
    }
    protobuf_c_message_free_unpacked(&o->base, NULL);
    return rc;
}

/*
 * Envoy's protocol choice: the typed extension options, or the legacy fields; not both.
 * The legacy fields are deprecated but still honoured by Envoy (and sent by older
 * control planes), so reading them is deliberate.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int protocol_options(const Cluster *pb, struct mp_cluster *c, char **err)
{
    bool typed = false;
    for (size_t i = 0; i < pb->n_typed_extension_protocol_options; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
            pb->typed_extension_protocol_options[i];
        if (strcmp(e->key, HTTP_PROTOCOL_OPTIONS_KEY) != 0)
            return mp_set_err(err,
                              "typed_extension_protocol_options[\"%s\"]: no protocol options "
                              "implementation for this name",
                              e->key);
        int rc = upstream_http_options(e->value, c, err);
        if (rc != 0) {
            /* The helper's message starts with "." or ":"; attach it without a dot. */
            if (err != NULL && *err != NULL && (*err)[0] == '.')
                memmove(*err, *err + 1, strlen(*err));
            mp_err_prefix(err, "typed_extension_protocol_options[\"%s\"]", e->key);
            return rc;
        }
        typed = true;
    }
    const bool legacy = pb->http2_protocol_options != NULL || pb->http_protocol_options != NULL ||
                        pb->common_http_protocol_options != NULL;
    if (typed && legacy)
        return mp_set_err(err, "typed_extension_protocol_options: cannot be combined with the "
                               "deprecated http_protocol_options, http2_protocol_options or "
                               "common_http_protocol_options fields");
    if (pb->http2_protocol_options != NULL) {
        c->upstream_protocol = MP_UPSTREAM_HTTP2;
        int rc = http2_settings(pb->http2_protocol_options, &c->http2, err);
        if (rc != 0) {
            mp_err_prefix(err, "http2_protocol_options");
            return rc;
        }
    }
    if (pb->protocol_selection ==
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_PROTOCOL_SELECTION__USE_DOWNSTREAM_PROTOCOL)
        c->upstream_protocol = MP_UPSTREAM_USE_DOWNSTREAM;
    if (pb->common_http_protocol_options != NULL) {
        int rc = common_http_options(pb->common_http_protocol_options, c, err);
        if (rc != 0) {
            mp_err_prefix(err, "common_http_protocol_options");
            return rc;
        }
    }
    if (pb->max_requests_per_connection != NULL)
        c->max_requests_per_connection = pb->max_requests_per_connection->value;
    return 0;
}
#pragma GCC diagnostic pop

static bool is_prime(uint64_t n)
{
    if (n < 2)
        return false;
    for (uint64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* Maps a LoadBalancingPolicy extension to a built-in policy (defaults only). */
static int lb_policy_extension(const Envoy__Config__Cluster__V3__LoadBalancingPolicy *lbp,
                               struct mp_cluster *c, char **err)
{
    static const struct {
        const char *type;
        enum mp_lb_policy policy;
    } known[] = {
        {"envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin", MP_LB_ROUND_ROBIN},
        {"envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
         MP_LB_LEAST_REQUEST},
        {"envoy.extensions.load_balancing_policies.random.v3.Random", MP_LB_RANDOM},
        {"envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", MP_LB_RING_HASH},
        {"envoy.extensions.load_balancing_policies.maglev.v3.Maglev", MP_LB_MAGLEV},
        {"envoy.extensions.load_balancing_policies.cluster_provided.v3.ClusterProvided",
         MP_LB_CLUSTER_PROVIDED},
    };
    /* As in Envoy, the first policy this build knows wins. */
    for (size_t i = 0; i < lbp->n_policies; i++) {
        const Envoy__Config__Core__V3__TypedExtensionConfig *tec =
            lbp->policies[i]->typed_extension_config;
        if (tec == NULL || tec->typed_config == NULL || tec->typed_config->type_url == NULL)
            continue;
        const char *slash = strrchr(tec->typed_config->type_url, '/');
        const char *type = slash != NULL ? slash + 1 : tec->typed_config->type_url;
        for (size_t k = 0; k < MP_ARRAY_LEN(known); k++) {
            if (strcmp(type, known[k].type) == 0) {
                c->lb.policy = known[k].policy;
                return 0;
            }
        }
    }
    return mp_set_err(err, "load_balancing_policy: no supported policy found");
}

static int lb_settings(const Cluster *pb, struct mp_cluster *c, char **err)
{
    switch (pb->lb_policy) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN:
        c->lb.policy = MP_LB_ROUND_ROBIN;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST:
        c->lb.policy = MP_LB_LEAST_REQUEST;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH:
        c->lb.policy = MP_LB_RING_HASH;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM: c->lb.policy = MP_LB_RANDOM; break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV: c->lb.policy = MP_LB_MAGLEV; break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED:
        c->lb.policy = MP_LB_CLUSTER_PROVIDED;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LOAD_BALANCING_POLICY_CONFIG:
        if (pb->load_balancing_policy == NULL)
            return mp_set_err(err, "load_balancing_policy: must be set when lb_policy is "
                                   "LOAD_BALANCING_POLICY_CONFIG");
        break;
    default:
        return mp_set_err(err, "lb_policy: unknown load balancing policy %d", (int)pb->lb_policy);
    }
    if (pb->load_balancing_policy != NULL) {
        int rc = lb_policy_extension(pb->load_balancing_policy, c, err);
        if (rc != 0)
            return rc;
    }

    switch (pb->lb_config_case) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG: {
        const Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig *r = pb->ring_hash_lb_config;
        struct mp_ring_hash_config *rc = &c->lb.ring_hash;
        if (r->minimum_ring_size != NULL)
            rc->min_ring_size = r->minimum_ring_size->value;
        if (r->maximum_ring_size != NULL)
            rc->max_ring_size = r->maximum_ring_size->value;
        if (rc->min_ring_size > 8388608)
            return mp_set_err(err, "ring_hash_lb_config.minimum_ring_size: value must be less than "
                                   "or equal to 8388608");
        if (rc->max_ring_size > 8388608)
            return mp_set_err(err, "ring_hash_lb_config.maximum_ring_size: value must be less than "
                                   "or equal to 8388608");
        if (rc->min_ring_size > rc->max_ring_size)
            return mp_set_err(
                err, "ring_hash_lb_config: minimum_ring_size (%llu) > maximum_ring_size (%llu)",
                (unsigned long long)rc->min_ring_size, (unsigned long long)rc->max_ring_size);
        if (r->hash_function ==
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__RING_HASH_LB_CONFIG__HASH_FUNCTION__MURMUR_HASH_2)
            rc->hash_function = MP_HASH_MURMUR2;
        else if (r->hash_function ==
                 ENVOY__CONFIG__CLUSTER__V3__CLUSTER__RING_HASH_LB_CONFIG__HASH_FUNCTION__XX_HASH)
            rc->hash_function = MP_HASH_XX;
        else
            return mp_set_err(err, "ring_hash_lb_config.hash_function: unknown hash function %d",
                              (int)r->hash_function);
        break;
    }
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG: {
        const Envoy__Config__Cluster__V3__Cluster__MaglevLbConfig *m = pb->maglev_lb_config;
        if (m->table_size != NULL) {
            uint64_t v = m->table_size->value;
            if (v > 5000011)
                return mp_set_err(
                    err,
                    "maglev_lb_config.table_size: value must be less than or equal to 5000011");
            if (!is_prime(v))
                return mp_set_err(err,
                                  "maglev_lb_config.table_size: the table size of maglev must be "
                                  "prime number, got %llu",
                                  (unsigned long long)v);
            c->lb.maglev.table_size = v;
        }
        break;
    }
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG: {
        const Envoy__Config__Cluster__V3__Cluster__LeastRequestLbConfig *l =
            pb->least_request_lb_config;
        if (l->choice_count != NULL) {
            if (l->choice_count->value < 2)
                return mp_set_err(err, "least_request_lb_config.choice_count: value must be "
                                       "greater than or equal to 2");
            c->lb.least_request.choice_count = l->choice_count->value;
        }
        if (l->active_request_bias != NULL) {
            double b = l->active_request_bias->default_value;
            if (!(b >= 0.0) || b != b)
                return mp_set_err(err,
                                  "least_request_lb_config.active_request_bias: invalid active "
                                  "request bias %g (must be >= 0)",
                                  b);
            c->lb.least_request.active_request_bias = b;
        }
        break;
    }
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_ORIGINAL_DST_LB_CONFIG: {
        const Envoy__Config__Cluster__V3__Cluster__OriginalDstLbConfig *o =
            pb->original_dst_lb_config;
        c->original_dst_use_http_header = o->use_http_header;
        if (o->http_header_name != NULL && o->http_header_name[0] != '\0') {
            char *h = strdup(o->http_header_name);
            if (h == NULL)
                return MP_ERR_NOMEM;
            free(c->original_dst_http_header_name);
            c->original_dst_http_header_name = h;
        }
        if (o->upstream_port_override != NULL) {
            if (o->upstream_port_override->value > 65535)
                return mp_set_err(
                    err, "original_dst_lb_config.upstream_port_override: port %u out of range",
                    o->upstream_port_override->value);
            c->original_dst_port_override = o->upstream_port_override->value;
        }
        break;
    }
    default: break;
    }

    const Envoy__Config__Cluster__V3__Cluster__CommonLbConfig *cl = pb->common_lb_config;
    if (cl != NULL) {
        if (cl->healthy_panic_threshold != NULL) {
            double v = cl->healthy_panic_threshold->value;
            if (!(v >= 0.0 && v <= 100.0))
                return mp_set_err(
                    err, "common_lb_config.healthy_panic_threshold.value: %g out of range [0, 100]",
                    v);
            c->lb.healthy_panic_threshold = (uint32_t)v;
        }
        c->lb.locality_weighted =
            cl->locality_config_specifier_case ==
            ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__LOCALITY_CONFIG_SPECIFIER_LOCALITY_WEIGHTED_LB_CONFIG;
        if (cl->consistent_hashing_lb_config != NULL)
            c->lb.use_hostname_for_hashing =
                cl->consistent_hashing_lb_config->use_hostname_for_hashing;
    }
    return 0;
}

static int circuit_breakers(const Envoy__Config__Cluster__V3__CircuitBreakers *cb,
                            struct mp_cluster *c, char **err)
{
    if (cb == NULL)
        return 0;
    for (size_t i = 0; i < cb->n_thresholds; i++) {
        const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = cb->thresholds[i];
        if ((unsigned)t->priority >= MP_ROUTING_PRIORITIES)
            return mp_set_err(err, "circuit_breakers.thresholds[%zu].priority: unknown priority %d",
                              i, (int)t->priority);
        struct mp_circuit_breakers *o = &c->circuit_breakers[t->priority];
        if (t->max_connections != NULL)
            o->max_connections = t->max_connections->value;
        if (t->max_pending_requests != NULL)
            o->max_pending_requests = t->max_pending_requests->value;
        if (t->max_requests != NULL)
            o->max_requests = t->max_requests->value;
        if (t->max_retries != NULL)
            o->max_retries = t->max_retries->value;
        o->track_remaining = t->track_remaining;
    }
    return 0;
}

static int percent_field(const Google__Protobuf__UInt32Value *v, uint32_t *out, const char *name,
                         char **err)
{
    if (v == NULL)
        return 0;
    if (v->value > 100)
        return mp_set_err(err, "outlier_detection.%s: value must be less than or equal to 100",
                          name);
    *out = v->value;
    return 0;
}

static int outlier_detection(const Envoy__Config__Cluster__V3__OutlierDetection *od,
                             struct mp_outlier_detection *o, char **err)
{
    if (od == NULL)
        return 0;
    o->enabled = true;
#define U32(f)                                                                                     \
    do {                                                                                           \
        if (od->f != NULL)                                                                         \
            o->f = od->f->value;                                                                   \
    } while (0)
#define PCT(f)                                                                                     \
    do {                                                                                           \
        if (percent_field(od->f, &o->f, #f, err) != 0)                                             \
            return MP_ERR_INVAL;                                                                   \
    } while (0)
#define DUR(f, dst)                                                                                \
    do {                                                                                           \
        if (od->f != NULL && positive_duration_ms(od->f, &o->dst, err) != 0) {                     \
            mp_err_prefix(err, "outlier_detection." #f);                                           \
            return MP_ERR_INVAL;                                                                   \
        }                                                                                          \
    } while (0)
    U32(consecutive_5xx);
    DUR(interval, interval_ms);
    DUR(base_ejection_time, base_ejection_time_ms);
    DUR(max_ejection_time, max_ejection_time_ms);
    PCT(max_ejection_percent);
    PCT(enforcing_consecutive_5xx);
    PCT(enforcing_success_rate);
    U32(success_rate_minimum_hosts);
    U32(success_rate_request_volume);
    U32(success_rate_stdev_factor);
    U32(consecutive_gateway_failure);
    PCT(enforcing_consecutive_gateway_failure);
    o->split_external_local_origin_errors = od->split_external_local_origin_errors;
    U32(consecutive_local_origin_failure);
    PCT(failure_percentage_threshold);
    PCT(enforcing_failure_percentage);
    U32(failure_percentage_minimum_hosts);
    U32(failure_percentage_request_volume);
#undef U32
#undef PCT
#undef DUR
    return 0;
}

static int transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts,
                            struct mp_transport_socket *out, char **err)
{
    if (ts == NULL)
        return 0;
    if (ts->name == NULL || ts->name[0] == '\0')
        return mp_set_err(err, "name: value length must be at least 1 characters");
    /* raw_buffer is plaintext: leave name NULL so users test one thing. */
    if (strcmp(ts->name, "envoy.transport_sockets.raw_buffer") == 0 ||
        (ts->config_type_case ==
             ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG &&
         ts->typed_config != NULL && ts->typed_config->type_url != NULL &&
         strstr(ts->typed_config->type_url, "envoy.extensions.transport_sockets.raw_buffer.") !=
             NULL))
        return 0;
    out->name = strdup(ts->name);
    if (out->name == NULL)
        return MP_ERR_NOMEM;
    if (ts->config_type_case == ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG)
        return copy_any(ts->typed_config, &out->typed_config);
    return 0;
}

static int transport_sockets(const Cluster *pb, struct mp_cluster *c, char **err)
{
    int rc = transport_socket(pb->transport_socket, &c->transport_socket, err);
    if (rc != 0) {
        mp_err_prefix(err, "transport_socket");
        return rc;
    }
    if (pb->n_transport_socket_matches == 0)
        return 0;
    c->transport_socket_matches =
        calloc(pb->n_transport_socket_matches, sizeof(*c->transport_socket_matches));
    if (c->transport_socket_matches == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < pb->n_transport_socket_matches; i++) {
        const Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *m =
            pb->transport_socket_matches[i];
        struct mp_transport_socket_match *o = &c->transport_socket_matches[i];
        c->n_transport_socket_matches++;
        if (m->name == NULL || m->name[0] == '\0')
            return mp_set_err(
                err,
                "transport_socket_matches[%zu].name: value length must be at least 1 characters",
                i);
        o->name = strdup(m->name);
        if (o->name == NULL)
            return MP_ERR_NOMEM;
        rc = kv_append(&o->match, &o->n_match, "envoy.transport_socket_match", m->match);
        if (rc != 0)
            return rc;
        rc = transport_socket(m->transport_socket, &o->socket, err);
        if (rc != 0) {
            mp_err_prefix(err, "transport_socket_matches[%zu].transport_socket", i);
            return rc;
        }
    }
    return 0;
}

static int discovery_type(const Cluster *pb, struct mp_cluster *c, char **err)
{
    if (pb->cluster_discovery_type_case ==
        ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE)
        return mp_set_err(
            err, "cluster_type: custom cluster type \"%s\" is not supported",
            pb->cluster_type != NULL && pb->cluster_type->name ? pb->cluster_type->name : "");
    switch (pb->type) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC:
        c->type = MP_CLUSTER_STATIC;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS:
        c->type = MP_CLUSTER_STRICT_DNS;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS:
        c->type = MP_CLUSTER_LOGICAL_DNS;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS: c->type = MP_CLUSTER_EDS; break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST:
        c->type = MP_CLUSTER_ORIGINAL_DST;
        break;
    default: return mp_set_err(err, "type: unknown discovery type %d", (int)pb->type);
    }
    if (c->type == MP_CLUSTER_EDS) {
        if (pb->eds_cluster_config == NULL)
            return mp_set_err(
                err, "eds_cluster_config: cannot create an EDS cluster without an EDS config");
        const char *svc = pb->eds_cluster_config->service_name;
        char *s = strdup(svc != NULL && svc[0] != '\0' ? svc : c->name);
        if (s == NULL)
            return MP_ERR_NOMEM;
        free(c->eds_service_name);
        c->eds_service_name = s;
    }
    return 0;
}

static const char *type_name(enum mp_cluster_type t)
{
    static const char *names[] = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"};
    return (unsigned)t < MP_ARRAY_LEN(names) ? names[t] : "UNKNOWN";
}

/* Policy / type pairs Envoy refuses. */
static int check_policy_type(const Cluster *pb, const struct mp_cluster *c, char **err)
{
    if (c->type == MP_CLUSTER_ORIGINAL_DST && c->lb.policy != MP_LB_CLUSTER_PROVIDED)
        return mp_set_err(err,
                          "lb_policy: LB policy %s is not valid for Cluster type ORIGINAL_DST. "
                          "Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'",
                          mp_lb_policy_name(c->lb.policy));
    if (c->type != MP_CLUSTER_ORIGINAL_DST && c->lb.policy == MP_LB_CLUSTER_PROVIDED)
        return mp_set_err(err,
                          "lb_policy: LB policy CLUSTER_PROVIDED is not valid for Cluster type %s. "
                          "'CLUSTER_PROVIDED' is allowed only with cluster type 'ORIGINAL_DST'",
                          type_name(c->type));
    if (c->type == MP_CLUSTER_ORIGINAL_DST && pb->load_assignment != NULL)
        return mp_set_err(
            err, "load_assignment: ORIGINAL_DST clusters must have no load assignment configured");
    return 0;
}

static int endpoints(const Cluster *pb, struct mp_cluster *c, char **err)
{
    if (pb->load_assignment == NULL || c->type == MP_CLUSTER_EDS ||
        c->type == MP_CLUSTER_ORIGINAL_DST) {
        /* EDS clusters take their hosts from EDS; an inline assignment is ignored, as in Envoy. */
        if (c->type == MP_CLUSTER_STATIC) {
            c->static_hosts = mp_host_set_new();
            if (c->static_hosts == NULL || mp_host_set_finish(c->static_hosts) != 0)
                return MP_ERR_NOMEM;
        }
        return 0;
    }
    const bool dns = c->type == MP_CLUSTER_STRICT_DNS || c->type == MP_CLUSTER_LOGICAL_DNS;
    struct cla_out co;
    int rc = cla_translate(pb->load_assignment, dns ? CLA_DNS : CLA_IP, &co, err);
    if (rc != 0) {
        mp_err_prefix(err, "load_assignment");
        return rc;
    }
    c->overprovisioning_factor = co.overprovisioning_factor;
    if (!dns) {
        c->static_hosts = co.hs;
        return 0;
    }
    c->dns_targets = co.targets;
    c->n_dns_targets = co.n_targets;
    if (c->type == MP_CLUSTER_LOGICAL_DNS &&
        (pb->load_assignment->n_endpoints != 1 || c->n_dns_targets != 1))
        return mp_set_err(err, "load_assignment: LOGICAL_DNS clusters must have a single "
                               "locality_lb_endpoint and a single lb_endpoint");
    return 0;
}

static int dns_settings(const Cluster *pb, struct mp_cluster *c, char **err)
{
    if (pb->dns_refresh_rate != NULL) {
        const Google__Protobuf__Duration *d = pb->dns_refresh_rate;
        if (duration_ms(d, &c->dns_refresh_ms, err) != 0) {
            mp_err_prefix(err, "dns_refresh_rate");
            return MP_ERR_INVAL;
        }
        if (d->seconds == 0 && d->nanos <= 1000000)
            return mp_set_err(err, "dns_refresh_rate: must be greater than 1ms");
    }
    c->respect_dns_ttl = pb->respect_dns_ttl;
    switch (pb->dns_lookup_family) {
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__AUTO:
        c->dns_family = MP_DNS_AUTO;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY:
        c->dns_family = MP_DNS_V4_ONLY;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V6_ONLY:
        c->dns_family = MP_DNS_V6_ONLY;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_PREFERRED:
        c->dns_family = MP_DNS_V4_PREFERRED;
        break;
    case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__ALL:
        c->dns_family = MP_DNS_ALL;
        break;
    default:
        return mp_set_err(err, "dns_lookup_family: unknown value %d", (int)pb->dns_lookup_family);
    }
    if (pb->cleanup_interval != NULL &&
        positive_duration_ms(pb->cleanup_interval, &c->cleanup_interval_ms, err) != 0) {
        mp_err_prefix(err, "cleanup_interval");
        return MP_ERR_INVAL;
    }
    return 0;
}

/* upstream_bind_config: the source address of upstream connections (Istio
 * sends 127.0.0.6 on inbound clusters). Options meshproxy does not apply are
 * refused rather than ignored. */
static int bind_config(const Envoy__Config__Core__V3__BindConfig *pb, struct mp_cluster *c,
                       char **err)
{
    if (pb == NULL)
        return 0;
    if ((pb->freebind && pb->freebind->value) || pb->n_socket_options ||
        pb->n_extra_source_addresses || pb->local_address_selector)
        return mp_set_err(err, "upstream_bind_config: only source_address is supported");
    const Envoy__Config__Core__V3__SocketAddress *sa = pb->source_address;
    if (sa == NULL || sa->address == NULL)
        return mp_set_err(err, "upstream_bind_config.source_address: required");
    if (sa->port_specifier_case !=
            ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE &&
        sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER__NOT_SET)
        return mp_set_err(err,
                          "upstream_bind_config.source_address: named ports are not supported");
    if (sa->port_value > 65535)
        return mp_set_err(err, "upstream_bind_config.source_address.port_value: %u is not a port",
                          sa->port_value);
    struct sockaddr_in *in = (struct sockaddr_in *)&c->source_addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->source_addr;
    memset(&c->source_addr, 0, sizeof(c->source_addr));
    if (inet_pton(AF_INET, sa->address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)sa->port_value);
        c->source_addr_len = sizeof(*in);
    } else if (inet_pton(AF_INET6, sa->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)sa->port_value);
        c->source_addr_len = sizeof(*in6);
    } else {
        return mp_set_err(err,
                          "upstream_bind_config.source_address.address: \"%s\" is not an IP "
                          "address",
                          sa->address);
    }
    return 0;
}

/* Upstream network filters (Cluster.filters). The only one meshproxy knows is
 * Istio's client-side metadata exchange, which acts only on connections
 * whose TLS ALPN is "istio-peer-exchange"; meshproxy never offers that
 * token (xds_translate_tls.c), so the filter has nothing to do. Any other
 * filter would change the bytes sent upstream: refused, not ignored. */
static int upstream_filters(const Cluster *pb, char **err)
{
    for (size_t i = 0; i < pb->n_filters; i++) {
        const Envoy__Config__Cluster__V3__Filter *f = pb->filters[i];
        const char *t =
            f->typed_config && f->typed_config->type_url ? f->typed_config->type_url : "";
        const char *slash = strrchr(t, '/');
        t = slash ? slash + 1 : t;
        bool typed_struct =
            strcmp(t, "udpa.type.v1.TypedStruct") == 0 || strcmp(t, "xds.type.v3.TypedStruct") == 0;
        if (strcmp(t, "envoy.tcp.metadataexchange.config.MetadataExchange") == 0 ||
            ((!*t || typed_struct) && f->name && strcmp(f->name, "istio.metadata_exchange") == 0))
            continue;
        return mp_set_err(err, "filters[%zu]: unsupported upstream network filter %s%s%s", i,
                          f->name ? f->name : "", *t ? " of type " : "", t);
    }
    return 0;
}

int mp_cluster_from_proto(const Cluster *pb, struct mp_cluster **out, char **err)
{
    if (pb->name == NULL || pb->name[0] == '\0')
        return mp_set_err(err, "name: value length must be at least 1 characters");
    struct mp_cluster *c = mp_cluster_new(pb->name);
    if (c == NULL)
        return MP_ERR_NOMEM;
    int rc = 0;
    if (pb->alt_stat_name != NULL && pb->alt_stat_name[0] != '\0') {
        free(c->alt_stat_name);
        c->alt_stat_name = strdup(pb->alt_stat_name);
        if (c->alt_stat_name == NULL) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
    }
    rc = discovery_type(pb, c, err);
    if (rc != 0)
        goto fail;
    if (pb->connect_timeout != NULL) {
        rc = positive_duration_ms(pb->connect_timeout, &c->connect_timeout_ms, err);
        if (rc != 0) {
            mp_err_prefix(err, "connect_timeout");
            goto fail;
        }
    }
    if (pb->per_connection_buffer_limit_bytes != NULL)
        c->per_connection_buffer_limit = pb->per_connection_buffer_limit_bytes->value;
    if ((rc = lb_settings(pb, c, err)) != 0 || (rc = check_policy_type(pb, c, err)) != 0 ||
        (rc = protocol_options(pb, c, err)) != 0 ||
        (rc = circuit_breakers(pb->circuit_breakers, c, err)) != 0 ||
        (rc = outlier_detection(pb->outlier_detection, &c->outlier, err)) != 0 ||
        (rc = transport_sockets(pb, c, err)) != 0 || (rc = dns_settings(pb, c, err)) != 0 ||
        (rc = endpoints(pb, c, err)) != 0 || (rc = upstream_filters(pb, err)) != 0 ||
        (rc = bind_config(pb->upstream_bind_config, c, err)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    mp_cluster_free(c);
    return rc;
}
