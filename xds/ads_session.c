/*
 * ads_session.c: the bookkeeping both xDS variants share: types and their
 * subscriptions, accepted resources, the request queue, and decoding of
 * resources with the checks Envoy makes before the consumer sees them.
 */
#include "ads_session.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ads_delta.h"
#include "ads_deps.h"
#include "ads_session_int.h"
#include "ads_sotw.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "mp_common.h"
#include "type_registry.h"

#define RESOURCE_WRAPPER "envoy.service.discovery.v3.Resource"

static const char *full_name(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    return slash ? slash + 1 : type_url;
}

static bool default_named(const char *type_url)
{
    return strcmp(type_url, MP_XDS_TYPE_ROUTE) == 0 ||
           strcmp(type_url, MP_XDS_TYPE_ENDPOINT) == 0 || strcmp(type_url, MP_XDS_TYPE_SECRET) == 0;
}

struct ads_type *mp_ads_type_find(struct mp_ads_session *s, const char *type_url)
{
    for (size_t i = 0; i < s->n_types; i++)
        if (strcmp(s->types[i].type_url, type_url) == 0)
            return &s->types[i];
    return NULL;
}

static const struct ads_type *type_find_const(const struct mp_ads_session *s, const char *type_url)
{
    return mp_ads_type_find((struct mp_ads_session *)s, type_url);
}

/* ---- accepted resources (sorted by name) ---- */

static size_t held_index(const struct ads_type *t, const char *name, bool *found)
{
    return mp_ads_names_search(t->held, t->n_held, sizeof(*t->held),
                               offsetof(struct ads_held, name), name, found);
}

struct ads_held *mp_ads_held_find(const struct ads_type *t, const char *name)
{
    bool found;
    size_t i = held_index(t, name, &found);
    return found ? &t->held[i] : NULL;
}

int mp_ads_held_put(struct ads_type *t, const char *name, const char *version,
                    struct mp_ads_names *deps)
{
    char *v = strdup(version ? version : "");
    if (!v)
        return MP_ERR_NOMEM;
    bool found;
    size_t at = held_index(t, name, &found);
    if (found) {
        struct ads_held *h = &t->held[at];
        free(h->version);
        h->version = v;
        mp_ads_names_clear(&h->deps);
        h->deps = *deps;
        *deps = (struct mp_ads_names)MP_ADS_NAMES_INIT;
        return 0;
    }
    if (t->n_held == t->cap_held) {
        size_t cap = t->cap_held ? t->cap_held * 2 : 8;
        struct ads_held *nh = realloc(t->held, cap * sizeof(*nh));
        if (!nh) {
            free(v);
            return MP_ERR_NOMEM;
        }
        t->held = nh;
        t->cap_held = cap;
    }
    char *n = strdup(name);
    if (!n) {
        free(v);
        return MP_ERR_NOMEM;
    }
    memmove(t->held + at + 1, t->held + at, (t->n_held - at) * sizeof(*t->held));
    t->held[at].name = n;
    t->held[at].version = v;
    t->held[at].deps = *deps;
    *deps = (struct mp_ads_names)MP_ADS_NAMES_INIT;
    t->n_held++;
    return 0;
}

static void held_free(struct ads_held *h)
{
    free(h->name);
    free(h->version);
    mp_ads_names_clear(&h->deps);
}

void mp_ads_held_remove(struct ads_type *t, const char *name)
{
    bool found;
    size_t at = held_index(t, name, &found);
    if (!found)
        return;
    held_free(&t->held[at]);
    memmove(t->held + at, t->held + at + 1, (t->n_held - at - 1) * sizeof(*t->held));
    t->n_held--;
}

/* ---- send queue ---- */

int mp_ads_queue_push(struct mp_ads_session *s, const ProtobufCMessage *req)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    struct ads_msg *m = malloc(sizeof(*m) + (len ? len : 1));
    if (!m)
        return MP_ERR_NOMEM;
    m->len = protobuf_c_message_pack(req, m->buf);
    m->next = NULL;
    *s->q_tail = m;
    s->q_tail = &m->next;
    return 0;
}

static void queue_clear(struct mp_ads_session *s)
{
    while (s->q_head) {
        struct ads_msg *m = s->q_head;
        s->q_head = m->next;
        free(m);
    }
    s->q_tail = &s->q_head;
}

int mp_ads_queue_request(struct mp_ads_session *s, struct ads_type *t, const char *nonce,
                         const char *error)
{
    if (s->mode == MP_XDS_DELTA)
        return mp_ads_delta_request(s, t, nonce, error);
    return mp_ads_sotw_request(s, t, error);
}

int mp_ads_session_next_request(struct mp_ads_session *s, uint8_t **buf, size_t *len)
{
    struct ads_msg *m = s->q_head;
    if (!m)
        return MP_ERR_NOTFOUND;
    uint8_t *out = malloc(m->len ? m->len : 1);
    if (!out)
        return MP_ERR_NOMEM;
    memcpy(out, m->buf, m->len);
    *buf = out;
    *len = m->len;
    s->q_head = m->next;
    if (!s->q_head)
        s->q_tail = &s->q_head;
    free(m);
    return 0;
}

bool mp_ads_session_has_request(const struct mp_ads_session *s)
{
    return s->q_head != NULL;
}

/* ---- decoding ---- */

int mp_ads_decoded_init(struct ads_decoded *d, size_t n)
{
    memset(d, 0, sizeof(*d));
    size_t k = n ? n : 1;
    d->res = calloc(k, sizeof(*d->res));
    d->msgs = calloc(k, sizeof(*d->msgs));
    d->wrappers = calloc(k, sizeof(*d->wrappers));
    d->deps = calloc(k, sizeof(*d->deps));
    d->n = n;
    if (!d->res || !d->msgs || !d->wrappers || !d->deps) {
        mp_ads_decoded_free(d);
        return MP_ERR_NOMEM;
    }
    return 0;
}

void mp_ads_decoded_free(struct ads_decoded *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->msgs && d->msgs[i])
            protobuf_c_message_free_unpacked(d->msgs[i], NULL);
        if (d->wrappers && d->wrappers[i])
            protobuf_c_message_free_unpacked(d->wrappers[i], NULL);
        if (d->deps)
            mp_ads_names_clear(&d->deps[i]);
    }
    free(d->res);
    free(d->msgs);
    free(d->wrappers);
    free(d->deps);
    memset(d, 0, sizeof(*d));
}

int mp_ads_decode_any(struct ads_type *t, const Google__Protobuf__Any *any, const char *name_hint,
                      const char *version, struct ads_decoded *d, size_t i, char **err)
{
    if (!any)
        return mp_set_err(err, "resources[%zu]: no resource", i);
    if (strcmp(full_name(any->type_url), RESOURCE_WRAPPER) == 0) {
        /* SotW may wrap each resource in a Resource (xds.config.resource-in-sotw). */
        Envoy__Service__Discovery__V3__Resource *w =
            envoy__service__discovery__v3__resource__unpack(NULL, any->value.len, any->value.data);
        if (!w)
            return mp_set_err(err, "resources[%zu]: malformed %s", i, RESOURCE_WRAPPER);
        d->wrappers[i] = &w->base;
        if (!w->resource)
            return mp_set_err(err, "resources[%zu]: Resource \"%s\" has no resource", i, w->name);
        any = w->resource;
        if (w->name[0])
            name_hint = w->name;
        if (w->version[0])
            version = w->version;
    }
    if (strcmp(full_name(any->type_url), full_name(t->type_url)) != 0)
        return mp_set_err(err, "resources[%zu]: type_url \"%s\" in a response of type \"%s\"", i,
                          any->type_url, t->type_url);
    const ProtobufCMessageDescriptor *desc = mp_type_registry_find(t->type_url);
    if (!desc) {
        mp_set_err(err, "resources[%zu]: type %s is not supported", i, t->type_url);
        return MP_ERR_UNSUPPORTED;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data);
    if (!msg) {
        mp_set_err(err, "resources[%zu]: malformed %s (protobuf decoding failed)", i, desc->name);
        return MP_ERR_PARSE;
    }
    d->msgs[i] = msg;
    const char *name = name_hint && name_hint[0] ? name_hint : mp_ads_message_name(msg);
    if (!name || !name[0])
        return mp_set_err(err, "resources[%zu]: %s has no name", i, desc->name);
    if (mp_ads_deps_collect(t->type_url, msg, &d->deps[i]))
        return MP_ERR_NOMEM;
    struct mp_xds_resource *r = &d->res[i];
    r->name = name;
    r->version = version ? version : "";
    r->type_url = t->type_url;
    r->data = any->value.data;
    r->len = any->value.len;
    r->msg = msg;
    return 0;
}

int mp_ads_check_duplicates(const struct ads_decoded *d, char **err)
{
    struct mp_ads_names seen = MP_ADS_NAMES_INIT;
    int rc = 0;
    for (size_t i = 0; i < d->n && !rc; i++) {
        if (mp_ads_names_has(&seen, d->res[i].name))
            rc = mp_set_err(err, "resources[%zu]: duplicate resource name \"%s\" in one response",
                            i, d->res[i].name);
        else if (mp_ads_names_add(&seen, d->res[i].name))
            rc = MP_ERR_NOMEM;
    }
    mp_ads_names_clear(&seen);
    return rc;
}

/* ---- subscriptions ---- */

/* Installs new wanted names for t (taking *wanted): drops held resources
 * no longer wanted (telling the watcher) and queues a request. */
static int set_wanted(struct mp_ads_session *s, struct ads_type *t, struct mp_ads_names *wanted)
{
    if (mp_ads_names_equal(&t->wanted, wanted)) {
        mp_ads_names_clear(wanted);
        return 0;
    }
    mp_ads_names_clear(&t->wanted);
    t->wanted = *wanted;
    *wanted = (struct mp_ads_names)MP_ADS_NAMES_INIT;
    if (t->wildcard)
        return 0; /* a wildcard type already gets everything */

    struct mp_ads_names gone = MP_ADS_NAMES_INIT;
    for (size_t i = 0; i < t->n_held; i++)
        if (!mp_ads_names_has(&t->wanted, t->held[i].name) &&
            mp_ads_names_add(&gone, t->held[i].name)) {
            mp_ads_names_clear(&gone);
            return MP_ERR_NOMEM;
        }
    if (gone.n) {
        struct mp_xds_update up = {
            .type_url = t->type_url,
            .kind = MP_XDS_UPDATE_UNSUBSCRIBED,
            .mode = s->mode,
            .version_info = t->version ? t->version : "",
            .nonce = "",
            .removed = (const char *const *)gone.v,
            .n_removed = gone.n,
        };
        char *ignored = NULL;
        s->ops->on_update(s->ctx, &up, &ignored);
        free(ignored);
        for (size_t i = 0; i < gone.n; i++)
            mp_ads_held_remove(t, gone.v[i]);
    }
    mp_ads_names_clear(&gone);
    if (s->streaming && (t->sent || t->wanted.n))
        return mp_ads_queue_request(s, t, NULL, NULL);
    return 0;
}

/* explicit names of t plus the names t's parent's held resources refer to */
static int compute_wanted(const struct mp_ads_session *s, const struct ads_type *t,
                          struct mp_ads_names *out)
{
    int rc = mp_ads_names_copy(out, &t->explicit_names);
    if (rc || t->parent < 0)
        return rc;
    const struct ads_type *p = &s->types[t->parent];
    for (size_t i = 0; i < p->n_held && !rc; i++)
        rc = mp_ads_names_union(out, &p->held[i].deps);
    if (rc)
        mp_ads_names_clear(out);
    return rc;
}

int mp_ads_update_child(struct mp_ads_session *s, struct ads_type *t)
{
    if (t->child < 0)
        return 0;
    struct ads_type *c = &s->types[t->child];
    struct mp_ads_names w = MP_ADS_NAMES_INIT;
    int rc = compute_wanted(s, c, &w);
    if (rc)
        return rc;
    rc = set_wanted(s, c, &w);
    mp_ads_names_clear(&w);
    return rc;
}

int mp_ads_session_set_names(struct mp_ads_session *s, const char *type_url,
                             const char *const *names, size_t n)
{
    struct ads_type *t = mp_ads_type_find(s, type_url);
    if (!t)
        return MP_ERR_NOTFOUND;
    struct mp_ads_names ex = MP_ADS_NAMES_INIT;
    for (size_t i = 0; i < n; i++)
        if (mp_ads_names_add(&ex, names[i])) {
            mp_ads_names_clear(&ex);
            return MP_ERR_NOMEM;
        }
    mp_ads_names_clear(&t->explicit_names);
    t->explicit_names = ex;
    struct mp_ads_names w = MP_ADS_NAMES_INIT;
    int rc = compute_wanted(s, t, &w);
    if (!rc)
        rc = set_wanted(s, t, &w);
    mp_ads_names_clear(&w);
    return rc;
}

/* ---- session lifecycle ---- */

static void type_free(struct ads_type *t)
{
    free(t->type_url);
    mp_ads_names_clear(&t->explicit_names);
    mp_ads_names_clear(&t->wanted);
    mp_ads_names_clear(&t->told);
    for (size_t i = 0; i < t->n_held; i++)
        held_free(&t->held[i]);
    free(t->held);
    free(t->version);
    free(t->nonce);
}

void mp_ads_session_free(struct mp_ads_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_types; i++)
        type_free(&s->types[i]);
    free(s->types);
    queue_clear(s);
    if (s->node)
        protobuf_c_message_free_unpacked(s->node, NULL);
    free(s);
}

static ProtobufCMessage *node_copy(const Envoy__Config__Core__V3__Node *node)
{
    if (!node)
        return protobuf_c_message_unpack(&envoy__config__core__v3__node__descriptor, NULL, 0,
                                         (const uint8_t *)"");
    size_t len = protobuf_c_message_get_packed_size(&node->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(&node->base, buf);
    ProtobufCMessage *copy =
        protobuf_c_message_unpack(&envoy__config__core__v3__node__descriptor, NULL, len, buf);
    free(buf);
    return copy;
}

int mp_ads_session_new(const struct mp_ads_session_config *cfg, struct mp_ads_session **out,
                       char **err)
{
    if (!cfg->ops || !cfg->ops->on_update)
        return mp_set_err(err, "xds client: no watcher on_update");
    if (cfg->n_type_urls == 0)
        return mp_set_err(err, "xds client: no resource types to subscribe");
    for (size_t i = 0; i < cfg->n_type_urls; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->type_urls[i], cfg->type_urls[j]) == 0)
                return mp_set_err(err, "xds client: type %s listed twice", cfg->type_urls[i]);

    struct mp_ads_session *s = calloc(1, sizeof(*s));
    if (!s)
        return MP_ERR_NOMEM;
    s->mode = cfg->mode;
    s->ops = cfg->ops;
    s->ctx = cfg->ctx;
    s->q_tail = &s->q_head;
    s->node = node_copy(cfg->node);
    s->types = calloc(cfg->n_type_urls, sizeof(*s->types));
    if (!s->node || !s->types)
        goto nomem;
    for (size_t i = 0; i < cfg->n_type_urls; i++) {
        struct ads_type *t = &s->types[i];
        t->child = t->parent = -1;
        t->type_url = strdup(cfg->type_urls[i]);
        s->n_types++;
        if (!t->type_url)
            goto nomem;
        t->wildcard = cfg->named_only ? !cfg->named_only[i] : !default_named(t->type_url);
    }
    for (size_t i = 0; i < s->n_types; i++) {
        const char *child = mp_ads_deps_child_type(s->types[i].type_url);
        struct ads_type *c = child ? mp_ads_type_find(s, child) : NULL;
        if (c) {
            s->types[i].child = (int)(c - s->types);
            c->parent = (int)i;
        }
    }
    *out = s;
    return 0;
nomem:
    mp_ads_session_free(s);
    return MP_ERR_NOMEM;
}

int mp_ads_session_stream_start(struct mp_ads_session *s)
{
    queue_clear(s);
    s->streaming = true;
    s->node_sent = false;
    for (size_t i = 0; i < s->n_types; i++) {
        struct ads_type *t = &s->types[i];
        free(t->nonce);
        t->nonce = NULL;
        t->sent = false;
        mp_ads_names_clear(&t->told);
    }
    for (size_t i = 0; i < s->n_types; i++) {
        struct ads_type *t = &s->types[i];
        if (!t->wildcard && t->wanted.n == 0)
            continue;
        int rc = mp_ads_queue_request(s, t, NULL, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

void mp_ads_session_stream_end(struct mp_ads_session *s)
{
    s->streaming = false;
    queue_clear(s);
}

int mp_ads_session_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len)
{
    if (s->mode == MP_XDS_DELTA)
        return mp_ads_delta_on_message(s, buf, len);
    return mp_ads_sotw_on_message(s, buf, len);
}

/* ---- queries ---- */

int mp_ads_session_pending_names(const struct mp_ads_session *s, const char *type_url,
                                 char ***names, size_t *n)
{
    const struct ads_type *t = type_find_const(s, type_url);
    if (!t)
        return MP_ERR_NOTFOUND;
    char **v = calloc(t->wanted.n ? t->wanted.n : 1, sizeof(*v));
    if (!v)
        return MP_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->wanted.n; i++) {
        if (mp_ads_held_find(t, t->wanted.v[i]))
            continue;
        v[k] = strdup(t->wanted.v[i]);
        if (!v[k]) {
            mp_xds_names_free(v, k);
            return MP_ERR_NOMEM;
        }
        k++;
    }
    *names = v;
    *n = k;
    return 0;
}

void mp_xds_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

const char *mp_ads_session_version(const struct mp_ads_session *s, const char *type_url)
{
    const struct ads_type *t = type_find_const(s, type_url);
    if (!t)
        return NULL;
    return t->version ? t->version : "";
}

const char *mp_ads_session_held_version(const struct mp_ads_session *s, const char *type_url,
                                        const char *name)
{
    const struct ads_type *t = type_find_const(s, type_url);
    const struct ads_held *h = t ? mp_ads_held_find(t, name) : NULL;
    return h ? h->version : NULL;
}

size_t mp_ads_session_held_count(const struct mp_ads_session *s, const char *type_url)
{
    const struct ads_type *t = type_find_const(s, type_url);
    return t ? t->n_held : 0;
}

size_t mp_ads_session_n_types(const struct mp_ads_session *s)
{
    return s->n_types;
}

const char *mp_ads_session_type_url(const struct mp_ads_session *s, size_t i)
{
    return i < s->n_types ? s->types[i].type_url : NULL;
}

bool mp_ads_session_type_waiting(const struct mp_ads_session *s, size_t i)
{
    return i < s->n_types && s->types[i].requested_ever && !s->types[i].received_ever;
}
