/*
 * xds_server_stream.c: serving one xDS stream.
 *
 * SotW: a type is wildcard when its first request names nothing (or names
 * "*"). A response goes out on the first request of a type, when the
 * requested names change, and when the type's version moves past what
 * this stream last sent; a NACK alone sends nothing (the client keeps its
 * last good config and resending the same bad one would loop). Requests
 * whose nonce is not the last one sent are stale and ignored.
 *
 * Delta: the stream tracks, per type, the resource versions the client
 * has (seeded from initial_resource_versions) and sends only differences,
 * plus removed_resources for deleted resources and for newly subscribed
 * names that do not exist.
 *
 * Every ACK and NACK is logged, one line with node, type, version, nonce
 * (and the NACK's error_detail).
 */
#include "xds_server_stream.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "ads_names.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpc_thread.h"
#include "mp_common.h"
#include "log.h"

/* A resource version the client has (delta). */
struct sent {
    char *name;
    char *version;
};

struct stype {
    bool active; /* the client asked for this type on this stream */
    bool wildcard;
    struct mp_ads_names names;
    char *sent_version;  /* SotW: version of the last response */
    char *last_nonce;    /* nonce of the last response */
    char *nonce_version; /* version sent with last_nonce (for the log) */
    struct sent *sent;   /* delta: sorted by name */
    size_t n_sent, cap_sent;
};

struct out_msg {
    struct out_msg *next;
    grpc_byte_buffer *bb;
};

struct op {
    struct mp_grpc_tag tag;
    struct mp_xds_sstream *st;
};

struct mp_xds_sstream {
    struct mp_xds_sstream_host host;
    struct mp_xds_sstream *next; /* server's list */
    grpc_call *call;
    char *method;
    enum mp_xds_mode mode;
    bool supported;
    char *node_id;
    struct stype types[MP_XDS_STORE_NTYPES];
    struct mp_xds_store *store; /* what the responses so far came from */
    uint64_t nonce_counter;
    struct out_msg *q_head, **q_tail;
    grpc_byte_buffer *sending_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array md;
    int cancelled;
    int ops_pending;
    bool sending;
    bool sent_metadata;
    bool finishing; /* status sent or being sent */
    bool closed;    /* RECV_CLOSE_ON_SERVER completed */
    struct op op_meta, op_send, op_recv, op_close, op_status;
};

static const char *node_id(const struct mp_xds_sstream *st)
{
    return st->node_id ? st->node_id : "";
}

static const char *short_type(const char *type_url)
{
    const char *dot = strrchr(type_url, '.');
    return dot ? dot + 1 : type_url;
}

static void stype_free(struct stype *t)
{
    mp_ads_names_clear(&t->names);
    free(t->sent_version);
    free(t->last_nonce);
    free(t->nonce_version);
    for (size_t i = 0; i < t->n_sent; i++) {
        free(t->sent[i].name);
        free(t->sent[i].version);
    }
    free(t->sent);
}

static void stream_free(struct mp_xds_sstream *st)
{
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++)
        stype_free(&st->types[i]);
    while (st->q_head) {
        struct out_msg *m = st->q_head;
        st->q_head = m->next;
        grpc_byte_buffer_destroy(m->bb);
        free(m);
    }
    if (st->sending_bb)
        grpc_byte_buffer_destroy(st->sending_bb);
    if (st->recv_bb)
        grpc_byte_buffer_destroy(st->recv_bb);
    grpc_metadata_array_destroy(&st->md);
    mp_xds_store_unref(st->store);
    free(st->node_id);
    free(st->method);
    free(st);
}

/* Releases the call once everything on it has come back. */
static void maybe_release(struct mp_xds_sstream *st)
{
    if (!st->closed || st->ops_pending > 0)
        return;
    mp_grpc_thread_call_untrack(st->host.gt, st->call);
    grpc_call_unref(st->call);
    MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "stream closed: node=%s method=%s", node_id(st), st->method);
    st->host.on_closed(st->host.ctx, st);
    stream_free(st);
}

static void finish(struct mp_xds_sstream *st, grpc_status_code code, const char *msg)
{
    if (st->finishing)
        return;
    st->finishing = true;
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!st->sent_metadata) {
        st->sent_metadata = true;
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &details;
    if (grpc_call_start_batch(st->call, ops, n, &st->op_status.tag, NULL) == GRPC_CALL_OK)
        st->ops_pending++;
    else
        grpc_call_cancel(st->call, NULL);
    grpc_slice_unref(details);
}

/* ---- sending ---- */

static void pump(struct mp_xds_sstream *st)
{
    if (st->sending || st->finishing || st->closed || !st->q_head)
        return;
    struct out_msg *m = st->q_head;
    st->q_head = m->next;
    if (!st->q_head)
        st->q_tail = &st->q_head;
    st->sending_bb = m->bb;
    free(m);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = st->sending_bb;
    if (grpc_call_start_batch(st->call, &op, 1, &st->op_send.tag, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(st->call, NULL);
        return;
    }
    st->sending = true;
    st->ops_pending++;
}

static int enqueue(struct mp_xds_sstream *st, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    struct out_msg *m = malloc(sizeof(*m));
    if (!buf || !m) {
        free(buf);
        free(m);
        return MP_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    m->bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    m->next = NULL;
    *st->q_tail = m;
    st->q_tail = &m->next;
    pump(st);
    return 0;
}

static void on_send(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_sstream *st = ((struct op *)tag)->st;
    st->ops_pending--;
    st->sending = false;
    grpc_byte_buffer_destroy(st->sending_bb);
    st->sending_bb = NULL;
    if (ok)
        pump(st);
    maybe_release(st);
}

static int set_str(char **dst, const char *v)
{
    char *c = strdup(v);
    if (!c)
        return MP_ERR_NOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

static int next_nonce(struct mp_xds_sstream *st, struct stype *t, const char *version, char *buf,
                      size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)++st->nonce_counter);
    if (set_str(&t->last_nonce, buf) || set_str(&t->nonce_version, version))
        return MP_ERR_NOMEM;
    return 0;
}

/* ---- SotW ---- */

static int sotw_respond(struct mp_xds_sstream *st, int ti)
{
    struct stype *t = &st->types[ti];
    const struct mp_xds_store_type *rt = &st->store->types[ti];
    Google__Protobuf__Any *anys = calloc(rt->n ? rt->n : 1, sizeof(*anys));
    Google__Protobuf__Any **ptrs = calloc(rt->n ? rt->n : 1, sizeof(*ptrs));
    int rc = MP_ERR_NOMEM;
    if (!anys || !ptrs)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < rt->n; i++) {
        const struct mp_xds_store_res *r = &rt->res[i];
        if (!t->wildcard && !mp_ads_names_has(&t->names, r->name))
            continue;
        google__protobuf__any__init(&anys[n]);
        anys[n].type_url = (char *)rt->type_url;
        anys[n].value.data = r->data;
        anys[n].value.len = r->len;
        ptrs[n] = &anys[n];
        n++;
    }
    char nonce[32];
    if ((rc = next_nonce(st, t, rt->version, nonce, sizeof(nonce))) != 0 ||
        (rc = set_str(&t->sent_version, rt->version)) != 0)
        goto out;
    Envoy__Service__Discovery__V3__DiscoveryResponse resp;
    envoy__service__discovery__v3__discovery_response__init(&resp);
    resp.version_info = rt->version;
    resp.type_url = (char *)rt->type_url;
    resp.nonce = nonce;
    resp.n_resources = n;
    resp.resources = ptrs;
    rc = enqueue(st, &resp.base);
    if (!rc)
        MP_LOG(MP_LOG_XDS, MP_LOG_DEBUG, "send node=%s type=%s version=%s nonce=%s resources=%zu",
               node_id(st), short_type(rt->type_url), rt->version, nonce, n);
out:
    free(anys);
    free(ptrs);
    return rc;
}

static int store_type_index(const char *type_url)
{
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++) {
        const char *a = strrchr(type_url, '/');
        static const char *const urls[] = {MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE,
                                           MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_ENDPOINT,
                                           MP_XDS_TYPE_SECRET};
        if (strcmp(a ? a + 1 : type_url, strrchr(urls[i], '/') + 1) == 0)
            return i;
    }
    return -1;
}

static void log_ack(struct mp_xds_sstream *st, const char *type_url, const char *version,
                    const char *nonce, const Google__Rpc__Status *error)
{
    if (error)
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "NACK node=%s type=%s version=%s nonce=%s error_detail=%s",
               node_id(st), type_url, version, nonce, error->message);
    else
        MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "ACK node=%s type=%s version=%s nonce=%s", node_id(st),
               type_url, version, nonce);
}

static void take_node(struct mp_xds_sstream *st, const Envoy__Config__Core__V3__Node *node)
{
    if (st->node_id || !node)
        return;
    st->node_id = strdup(node->id);
    MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "stream opened: node=%s cluster=%s user_agent=%s method=%s",
           node->id, node->cluster, node->user_agent_name, st->method);
}

static int sotw_request(struct mp_xds_sstream *st, const uint8_t *buf, size_t len)
{
    Envoy__Service__Discovery__V3__DiscoveryRequest *req =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, len, buf);
    if (!req)
        return MP_ERR_PROTO;
    take_node(st, req->node);
    int rc = 0;
    int ti = store_type_index(req->type_url);
    if (ti < 0) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "node=%s asked for type %s, which is not served",
               node_id(st), req->type_url);
        goto out;
    }
    struct stype *t = &st->types[ti];
    if (req->response_nonce[0]) {
        if (!t->last_nonce || strcmp(req->response_nonce, t->last_nonce) != 0) {
            MP_LOG(MP_LOG_XDS, MP_LOG_DEBUG, "stale request node=%s type=%s nonce=%s", node_id(st),
                   req->type_url, req->response_nonce);
            goto out;
        }
        log_ack(st, req->type_url, req->version_info, req->response_nonce, req->error_detail);
    }
    struct mp_ads_names names = MP_ADS_NAMES_INIT;
    bool star = false;
    for (size_t i = 0; i < req->n_resource_names; i++) {
        if (strcmp(req->resource_names[i], "*") == 0)
            star = true;
        else if ((rc = mp_ads_names_add(&names, req->resource_names[i])) != 0) {
            mp_ads_names_clear(&names);
            goto out;
        }
    }
    bool first = !t->active;
    bool wildcard =
        star || (first ? req->n_resource_names == 0 : (t->wildcard && req->n_resource_names == 0));
    bool changed = first || wildcard != t->wildcard || !mp_ads_names_equal(&names, &t->names);
    t->active = true;
    t->wildcard = wildcard;
    mp_ads_names_clear(&t->names);
    t->names = names;
    if (changed || !t->sent_version || strcmp(t->sent_version, st->store->types[ti].version) != 0)
        rc = sotw_respond(st, ti);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return rc;
}

/* ---- delta ---- */

static size_t sent_index(const struct stype *t, const char *name, bool *found)
{
    return mp_ads_names_search(t->sent, t->n_sent, sizeof(*t->sent), offsetof(struct sent, name),
                               name, found);
}

static const char *sent_version(const struct stype *t, const char *name)
{
    bool found;
    size_t i = sent_index(t, name, &found);
    return found ? t->sent[i].version : NULL;
}

static int sent_put(struct stype *t, const char *name, const char *version)
{
    bool found;
    size_t at = sent_index(t, name, &found);
    if (found)
        return set_str(&t->sent[at].version, version);
    if (t->n_sent == t->cap_sent) {
        size_t cap = t->cap_sent ? t->cap_sent * 2 : 16;
        struct sent *ns = realloc(t->sent, cap * sizeof(*ns));
        if (!ns)
            return MP_ERR_NOMEM;
        t->sent = ns;
        t->cap_sent = cap;
    }
    struct sent e = {strdup(name), strdup(version)};
    if (!e.name || !e.version) {
        free(e.name);
        free(e.version);
        return MP_ERR_NOMEM;
    }
    memmove(t->sent + at + 1, t->sent + at, (t->n_sent - at) * sizeof(*t->sent));
    t->sent[at] = e;
    t->n_sent++;
    return 0;
}

static void sent_drop(struct stype *t, const char *name)
{
    bool found;
    size_t at = sent_index(t, name, &found);
    if (!found)
        return;
    free(t->sent[at].name);
    free(t->sent[at].version);
    memmove(t->sent + at, t->sent + at + 1, (t->n_sent - at - 1) * sizeof(*t->sent));
    t->n_sent--;
}

/* Sends what type ti's client lacks; missing (may be NULL) are newly
 * subscribed names that do not exist. With force, sends even when empty. */
static int delta_respond(struct mp_xds_sstream *st, int ti, const struct mp_ads_names *missing,
                         bool force)
{
    struct stype *t = &st->types[ti];
    const struct mp_xds_store_type *rt = &st->store->types[ti];
    size_t cap = rt->n + 1;
    Envoy__Service__Discovery__V3__Resource *res = calloc(cap, sizeof(*res));
    Envoy__Service__Discovery__V3__Resource **rptr = calloc(cap, sizeof(*rptr));
    Google__Protobuf__Any *anys = calloc(cap, sizeof(*anys));
    struct mp_ads_names removed = MP_ADS_NAMES_INIT;
    int rc = MP_ERR_NOMEM;
    if (!res || !rptr || !anys)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < rt->n; i++) {
        const struct mp_xds_store_res *r = &rt->res[i];
        if (!t->wildcard && !mp_ads_names_has(&t->names, r->name))
            continue;
        const char *have = sent_version(t, r->name);
        if (have && strcmp(have, r->version) == 0)
            continue;
        google__protobuf__any__init(&anys[n]);
        anys[n].type_url = (char *)rt->type_url;
        anys[n].value.data = r->data;
        anys[n].value.len = r->len;
        envoy__service__discovery__v3__resource__init(&res[n]);
        res[n].name = r->name;
        res[n].version = r->version;
        res[n].resource = &anys[n];
        rptr[n] = &res[n];
        n++;
    }
    rc = 0;
    for (size_t i = 0; i < t->n_sent && !rc; i++) {
        const char *name = t->sent[i].name;
        bool in_scope = t->wildcard || mp_ads_names_has(&t->names, name);
        if (!in_scope || !mp_xds_store_find(rt, name))
            rc = mp_ads_names_add(&removed, name);
    }
    if (missing)
        for (size_t i = 0; i < missing->n && !rc; i++)
            rc = mp_ads_names_add(&removed, missing->v[i]);
    if (rc || (!force && n == 0 && removed.n == 0))
        goto out;
    char sysver[32], nonce[32];
    snprintf(sysver, sizeof(sysver), "%llu", (unsigned long long)st->store->generation);
    if ((rc = next_nonce(st, t, sysver, nonce, sizeof(nonce))) != 0)
        goto out;
    Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp;
    envoy__service__discovery__v3__delta_discovery_response__init(&resp);
    resp.system_version_info = sysver;
    resp.type_url = (char *)rt->type_url;
    resp.nonce = nonce;
    resp.n_resources = n;
    resp.resources = rptr;
    resp.n_removed_resources = removed.n;
    resp.removed_resources = removed.v;
    if ((rc = enqueue(st, &resp.base)) != 0)
        goto out;
    MP_LOG(MP_LOG_XDS, MP_LOG_DEBUG,
           "send node=%s type=%s version=%s nonce=%s resources=%zu removed=%zu", node_id(st),
           short_type(rt->type_url), sysver, nonce, n, removed.n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = sent_put(t, res[i].name, res[i].version);
    for (size_t i = 0; i < removed.n; i++)
        sent_drop(t, removed.v[i]);
out:
    mp_ads_names_clear(&removed);
    free(res);
    free(rptr);
    free(anys);
    return rc;
}

static int delta_request(struct mp_xds_sstream *st, const uint8_t *buf, size_t len)
{
    Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req =
        envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, buf);
    if (!req)
        return MP_ERR_PROTO;
    take_node(st, req->node);
    struct mp_ads_names missing = MP_ADS_NAMES_INIT;
    int rc = 0;
    int ti = store_type_index(req->type_url);
    if (ti < 0) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "node=%s asked for type %s, which is not served",
               node_id(st), req->type_url);
        goto out;
    }
    struct stype *t = &st->types[ti];
    if (req->response_nonce[0]) {
        if (t->last_nonce && strcmp(req->response_nonce, t->last_nonce) == 0)
            log_ack(st, req->type_url, t->nonce_version, req->response_nonce, req->error_detail);
        else
            MP_LOG(MP_LOG_XDS, MP_LOG_DEBUG, "stale nonce node=%s type=%s nonce=%s", node_id(st),
                   req->type_url, req->response_nonce);
    }
    bool first = !t->active;
    t->active = true;
    if (first) {
        for (size_t i = 0; i < req->n_initial_resource_versions && !rc; i++)
            rc = sent_put(t, req->initial_resource_versions[i]->key,
                          req->initial_resource_versions[i]->value);
        if (req->n_resource_names_subscribe == 0)
            t->wildcard = true; /* the legacy wildcard form */
    }
    const struct mp_xds_store_type *rt = &st->store->types[ti];
    for (size_t i = 0; i < req->n_resource_names_subscribe && !rc; i++) {
        const char *n = req->resource_names_subscribe[i];
        if (strcmp(n, "*") == 0) {
            t->wildcard = true;
            continue;
        }
        rc = mp_ads_names_add(&t->names, n);
        /* A subscribed name is always answered, even if the client has it. */
        if (!first)
            sent_drop(t, n);
        if (!rc && !mp_xds_store_find(rt, n) && !sent_version(t, n))
            rc = mp_ads_names_add(&missing, n);
    }
    for (size_t i = 0; i < req->n_resource_names_unsubscribe && !rc; i++) {
        const char *n = req->resource_names_unsubscribe[i];
        if (strcmp(n, "*") == 0) {
            t->wildcard = false;
            continue;
        }
        mp_ads_names_remove(&t->names, n);
        if (!t->wildcard)
            sent_drop(t, n);
    }
    if (!rc)
        rc = delta_respond(st, ti, &missing, first);
out:
    mp_ads_names_clear(&missing);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return rc;
}

/* ---- receiving ---- */

static void start_recv(struct mp_xds_sstream *st)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &st->recv_bb;
    if (grpc_call_start_batch(st->call, &op, 1, &st->op_recv.tag, NULL) == GRPC_CALL_OK)
        st->ops_pending++;
    else
        grpc_call_cancel(st->call, NULL);
}

static void on_recv(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_sstream *st = ((struct op *)tag)->st;
    st->ops_pending--;
    if (!ok || !st->recv_bb) {
        /* the client half-closed: answer with OK */
        if (ok)
            finish(st, GRPC_STATUS_OK, "");
        maybe_release(st);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mp_grpc_buffer_flatten(st->recv_bb, &buf, &len);
    grpc_byte_buffer_destroy(st->recv_bb);
    st->recv_bb = NULL;
    if (!rc) {
        /* Serve from the newest store: the first request of a stream, or a
         * subscription change, sees what is on disk now. */
        struct mp_xds_store *cur = st->host.store(st->host.ctx);
        if (cur != st->store) {
            mp_xds_store_unref(st->store);
            st->store = mp_xds_store_ref(cur);
        }
        rc = st->mode == MP_XDS_DELTA ? delta_request(st, buf, len) : sotw_request(st, buf, len);
    }
    free(buf);
    if (rc == MP_ERR_PROTO)
        finish(st, GRPC_STATUS_INVALID_ARGUMENT, "request does not decode");
    else if (rc)
        finish(st, GRPC_STATUS_RESOURCE_EXHAUSTED, mp_strerror(rc));
    else if (!st->finishing)
        start_recv(st);
    maybe_release(st);
}

static void on_meta(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_sstream *st = ((struct op *)tag)->st;
    (void)ok;
    st->ops_pending--;
    maybe_release(st);
}

static void on_status(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_sstream *st = ((struct op *)tag)->st;
    (void)ok;
    st->ops_pending--;
    maybe_release(st);
}

static void on_close(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_sstream *st = ((struct op *)tag)->st;
    (void)ok;
    st->ops_pending--;
    st->closed = true;
    /* Make sure nothing waits forever on a call that is over. */
    grpc_call_cancel(st->call, NULL);
    maybe_release(st);
}

/* ---- public ---- */

void mp_xds_sstream_push(struct mp_xds_sstream *st)
{
    if (st->finishing || st->closed || !st->supported)
        return;
    struct mp_xds_store *cur = st->host.store(st->host.ctx);
    if (cur == st->store)
        return;
    mp_xds_store_unref(st->store);
    st->store = mp_xds_store_ref(cur);
    int rc = 0;
    for (int i = 0; i < MP_XDS_STORE_NTYPES && !rc; i++) {
        struct stype *t = &st->types[i];
        if (!t->active)
            continue;
        if (st->mode == MP_XDS_DELTA)
            rc = delta_respond(st, i, NULL, false);
        else if (!t->sent_version || strcmp(t->sent_version, cur->types[i].version) != 0)
            rc = sotw_respond(st, i);
    }
    if (rc)
        finish(st, GRPC_STATUS_RESOURCE_EXHAUSTED, mp_strerror(rc));
}

void mp_xds_sstream_cancel(struct mp_xds_sstream *st)
{
    if (!st->closed)
        grpc_call_cancel(st->call, NULL);
}

struct mp_xds_sstream **mp_xds_sstream_next(struct mp_xds_sstream *st)
{
    return &st->next;
}

struct mp_xds_sstream *mp_xds_sstream_start(const struct mp_xds_sstream_host *host, grpc_call *call,
                                            const char *method, enum mp_xds_mode mode,
                                            bool supported)
{
    struct mp_xds_sstream *st = calloc(1, sizeof(*st));
    if (st)
        st->method = strdup(method);
    if (!st || !st->method || mp_grpc_thread_call_track(host->gt, call) != 0) {
        if (st)
            free(st->method);
        free(st);
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        return NULL;
    }
    st->host = *host;
    st->call = call;
    st->mode = mode;
    st->supported = supported;
    st->q_tail = &st->q_head;
    st->store = mp_xds_store_ref(host->store(host->ctx));
    grpc_metadata_array_init(&st->md);
    struct op *ops[] = {&st->op_meta, &st->op_send, &st->op_recv, &st->op_close, &st->op_status};
    void (*fns[])(struct mp_grpc_tag *, bool) = {on_meta, on_send, on_recv, on_close, on_status};
    for (size_t i = 0; i < MP_ARRAY_LEN(ops); i++) {
        ops[i]->tag.on_done = fns[i];
        ops[i]->st = st;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &st->cancelled;
    if (grpc_call_start_batch(call, &op, 1, &st->op_close.tag, NULL) == GRPC_CALL_OK)
        st->ops_pending++;
    else
        st->closed = true;
    if (!supported) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "method %s is not served", method);
        finish(st, GRPC_STATUS_UNIMPLEMENTED, "method not served by meshproxy-xds");
        return st;
    }
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    st->sent_metadata = true;
    if (grpc_call_start_batch(call, &op, 1, &st->op_meta.tag, NULL) == GRPC_CALL_OK)
        st->ops_pending++;
    start_recv(st);
    return st;
}
