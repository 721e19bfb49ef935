/* listener_filters.c: Listener.listener_filters -> struct mp_listener_filters. */
#include "filters/listener/listener_filters.h"

#include <stdlib.h>
#include <string.h>

#include "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.pb-c.h"
#include "proxy/mp_common.h"
#include "proxy/tls_inspector.h"

#define TYPE_PREFIX "type.googleapis.com/"

static const struct {
    enum mp_lf_kind kind;
    const char *name;
    const char *type; /* typed_config message */
} known[] = {
    {MP_LF_TLS_INSPECTOR, "envoy.filters.listener.tls_inspector",
     "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
    {MP_LF_HTTP_INSPECTOR, "envoy.filters.listener.http_inspector",
     "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"},
    {MP_LF_ORIGINAL_DST, "envoy.filters.listener.original_dst",
     "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"},
};

/* Predicates nest; Istio's are two levels deep. Deeper is refused, so a
 * hostile config cannot blow the stack. */
#define MAX_PRED_DEPTH 16

static void pred_clear(struct mp_lf_pred *p)
{
    for (size_t i = 0; i < p->n_sub; i++)
        pred_clear(&p->sub[i]);
    free(p->sub);
    memset(p, 0, sizeof(*p));
}

static int pred_translate(const Envoy__Config__Listener__V3__ListenerFilterChainMatchPredicate *pb,
                          struct mp_lf_pred *out, int depth, char **err)
{
    memset(out, 0, sizeof(*out));
    if (depth > MAX_PRED_DEPTH)
        return mp_set_err(err, ": nested deeper than %d", MAX_PRED_DEPTH);
    Envoy__Config__Listener__V3__ListenerFilterChainMatchPredicate__MatchSet *set = NULL;
    const char *field = NULL;
    switch (pb->rule_case) {
    case ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_ANY_MATCH:
        out->kind = MP_LF_PRED_ANY;
        return 0;
    case ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_DESTINATION_PORT_RANGE:
        out->kind = MP_LF_PRED_PORT_RANGE;
        out->start = pb->destination_port_range->start;
        out->end = pb->destination_port_range->end;
        if (out->start >= out->end)
            return mp_set_err(err, "destination_port_range: start %d must be below end %d",
                              out->start, out->end);
        return 0;
    case ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_NOT_MATCH: {
        out->kind = MP_LF_PRED_NOT;
        out->sub = calloc(1, sizeof(*out->sub));
        if (out->sub == NULL)
            return MP_ERR_NOMEM;
        out->n_sub = 1;
        int rc = pred_translate(pb->not_match, out->sub, depth + 1, err);
        if (rc != 0) {
            mp_err_prefix(err, "not_match");
            pred_clear(out);
        }
        return rc;
    }
    case ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_OR_MATCH:
        out->kind = MP_LF_PRED_OR;
        set = pb->or_match;
        field = "or_match";
        break;
    case ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER_CHAIN_MATCH_PREDICATE__RULE_AND_MATCH:
        out->kind = MP_LF_PRED_AND;
        set = pb->and_match;
        field = "and_match";
        break;
    default: return mp_set_err(err, ": no rule set");
    }
    if (set->n_rules < 2)
        return mp_set_err(err, "%s.rules: needs at least 2 rules", field);
    out->sub = calloc(set->n_rules, sizeof(*out->sub));
    if (out->sub == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < set->n_rules; i++) {
        int rc = pred_translate(set->rules[i], &out->sub[i], depth + 1, err);
        out->n_sub = i + 1;
        if (rc != 0) {
            mp_err_prefix(err, "%s.rules[%zu]", field, i);
            pred_clear(out);
            return rc;
        }
    }
    return 0;
}

static bool pred_match(const struct mp_lf_pred *p, uint16_t port)
{
    switch (p->kind) {
    case MP_LF_PRED_ANY: return true;
    case MP_LF_PRED_PORT_RANGE: return port >= p->start && port < p->end;
    case MP_LF_PRED_NOT: return !pred_match(&p->sub[0], port);
    case MP_LF_PRED_OR:
        for (size_t i = 0; i < p->n_sub; i++)
            if (pred_match(&p->sub[i], port))
                return true;
        return false;
    case MP_LF_PRED_AND:
        for (size_t i = 0; i < p->n_sub; i++)
            if (!pred_match(&p->sub[i], port))
                return false;
        return true;
    }
    return false;
}

bool mp_listener_filter_enabled(const struct mp_listener_filter *f, uint16_t dst_port)
{
    return f->disabled == NULL || !pred_match(f->disabled, dst_port);
}

const struct mp_listener_filter *mp_listener_filters_find(const struct mp_listener_filters *lf,
                                                          enum mp_lf_kind k)
{
    for (size_t i = 0; i < lf->n; i++)
        if (lf->v[i].kind == k)
            return &lf->v[i];
    return NULL;
}

void mp_listener_filters_clear(struct mp_listener_filters *lf)
{
    for (size_t i = 0; i < lf->n; i++) {
        if (lf->v[i].disabled != NULL) {
            pred_clear(lf->v[i].disabled);
            free(lf->v[i].disabled);
        }
    }
    free(lf->v);
    memset(lf, 0, sizeof(*lf));
}

static int translate_one(const Envoy__Config__Listener__V3__ListenerFilter *pb,
                         struct mp_listener_filter *f, char **err)
{
    const Google__Protobuf__Any *any =
        pb->config_type_case ==
                ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG
            ? pb->typed_config
            : NULL;
    if (pb->config_type_case ==
        ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY)
        return mp_set_err(err, "config_discovery: not supported");
    const char *name = pb->name != NULL ? pb->name : "";
    const char *type = any != NULL && any->type_url != NULL ? any->type_url : "";
    if (strncmp(type, TYPE_PREFIX, strlen(TYPE_PREFIX)) == 0)
        type += strlen(TYPE_PREFIX);
    /* Envoy finds the extension by typed_config type first, then by name. */
    size_t k = MP_ARRAY_LEN(known);
    for (size_t i = 0; i < MP_ARRAY_LEN(known) && k == MP_ARRAY_LEN(known); i++)
        if (strcmp(type, known[i].type) == 0)
            k = i;
    for (size_t i = 0; i < MP_ARRAY_LEN(known) && k == MP_ARRAY_LEN(known); i++)
        if (type[0] == 0 && strcmp(name, known[i].name) == 0)
            k = i;
    if (k == MP_ARRAY_LEN(known)) {
        mp_set_err(err, ": unknown listener filter \"%s\"%s%s", name, type[0] ? " of type " : "",
                   type);
        return MP_ERR_UNSUPPORTED;
    }
    f->kind = known[k].kind;
    f->name = known[k].name;
    f->initial_read_buffer = MP_TLS_INSPECTOR_MAX_HELLO;
    if (f->kind == MP_LF_TLS_INSPECTOR && any != NULL && any->value.len > 0) {
        Envoy__Extensions__Filters__Listener__TlsInspector__V3__TlsInspector *ti =
            envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__unpack(
                NULL, any->value.len, any->value.data);
        if (ti == NULL)
            return mp_set_err(err, "typed_config: cannot decode TlsInspector");
        int rc = 0;
        if (ti->initial_read_buffer_size != NULL) {
            uint32_t v = ti->initial_read_buffer_size->value;
            if (v < 256 || v > MP_TLS_INSPECTOR_MAX_HELLO)
                rc = mp_set_err(err, "typed_config.initial_read_buffer_size: %u is not in 256..%u",
                                v, MP_TLS_INSPECTOR_MAX_HELLO);
            else
                f->initial_read_buffer = v;
        }
        envoy__extensions__filters__listener__tls_inspector__v3__tls_inspector__free_unpacked(ti,
                                                                                              NULL);
        if (rc != 0)
            return rc;
    }
    if (pb->filter_disabled != NULL) {
        f->disabled = calloc(1, sizeof(*f->disabled));
        if (f->disabled == NULL)
            return MP_ERR_NOMEM;
        int rc = pred_translate(pb->filter_disabled, f->disabled, 0, err);
        if (rc != 0) {
            mp_err_prefix(err, "filter_disabled");
            free(f->disabled);
            f->disabled = NULL;
            return rc;
        }
    }
    return 0;
}

int mp_listener_filters_translate(const Envoy__Config__Listener__V3__Listener *l,
                                  struct mp_listener_filters *out, char **err)
{
    memset(out, 0, sizeof(*out));
    out->timeout_ms = 15000;
    if (l->listener_filters_timeout != NULL) {
        const Google__Protobuf__Duration *d = l->listener_filters_timeout;
        if (d->seconds < 0 || d->nanos < 0 || d->seconds > 315576000000)
            return mp_set_err(err, "listener_filters_timeout: out of range");
        out->timeout_ms = (uint64_t)d->seconds * 1000 + (uint64_t)d->nanos / 1000000;
    }
    out->continue_on_timeout = l->continue_on_listener_filters_timeout;
    if (l->n_listener_filters == 0)
        return 0;
    out->v = calloc(l->n_listener_filters, sizeof(*out->v));
    if (out->v == NULL)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < l->n_listener_filters; i++) {
        int rc = translate_one(l->listener_filters[i], &out->v[i], err);
        out->n = i + 1;
        if (rc != 0) {
            if (rc == MP_ERR_NOMEM && err != NULL && *err == NULL)
                mp_set_err(err, ": out of memory");
            mp_err_prefix(err, "listener_filters[%zu]", i);
            mp_listener_filters_clear(out);
            return rc;
        }
    }
    return 0;
}
