/*
 * xds_client.c: moves an ads_session's requests and responses over one
 * bidirectional gRPC stream, on the grpc thread, and keeps the stream up:
 * jittered exponential backoff between attempts, reset once the server
 * answers; initial_fetch_timeout per type.
 */
#include "xds_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "ads_backoff.h"
#include "ads_session.h"
#include "grpc_thread.h"
#include "log.h"
#include "mp_common.h"

#define USER_AGENT_VERSION "0.1.0"

struct stream_op {
    struct mp_grpc_tag tag;
    struct mp_xds_client *c;
};

struct mp_xds_client {
    struct mp_grpc_thread *gt;
    char *target;
    char *method;
    grpc_channel *channel;
    struct mp_ads_session *session;
    const struct mp_xds_watcher_ops *ops;
    void *ctx;
    int64_t fetch_timeout_ms;
    int64_t *first_request_ms; /* per type; 0 = not requested yet */
    bool *fetch_timed_out;     /* per type */
    struct mp_backoff backoff;
    struct mp_grpc_timer retry_timer;
    struct mp_grpc_timer fetch_timer;

    /* the current stream; grpc thread only */
    grpc_call *call;
    int ops_pending;
    bool sending;
    bool connected;
    struct stream_op op_meta, op_send, op_recv, op_status;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array md_initial;
    grpc_metadata_array md_trailing;
    grpc_status_code status;
    grpc_slice details;

    /* teardown handshake with mp_xds_client_free */
    bool stopping;
    bool call_gone;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void open_stream(struct mp_xds_client *c);

const char *mp_xds_method_for_type(const char *type_url, enum mp_xds_mode mode)
{
    static const struct {
        const char *type_url, *sotw, *delta;
    } methods[] = {
        {MP_XDS_TYPE_LISTENER,
         "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
         "/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners"},
        {MP_XDS_TYPE_ROUTE, "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes",
         "/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes"},
        {MP_XDS_TYPE_CLUSTER, "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
         "/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters"},
        {MP_XDS_TYPE_ENDPOINT,
         "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints",
         "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints"},
        {MP_XDS_TYPE_SECRET, MP_XDS_SDS_SOTW_METHOD, MP_XDS_SDS_DELTA_METHOD},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(methods); i++)
        if (strcmp(methods[i].type_url, type_url) == 0)
            return mode == MP_XDS_DELTA ? methods[i].delta : methods[i].sotw;
    return NULL;
}

/* ---- initial_fetch_timeout ---- */

static void fetch_timer_update(struct mp_xds_client *c)
{
    if (c->fetch_timeout_ms <= 0)
        return;
    int64_t now = mp_grpc_now_ms(), next = 0;
    size_t n = mp_ads_session_n_types(c->session);
    for (size_t i = 0; i < n; i++) {
        if (!mp_ads_session_type_waiting(c->session, i) || c->fetch_timed_out[i])
            continue;
        if (c->first_request_ms[i] == 0)
            c->first_request_ms[i] = now;
        int64_t due = c->first_request_ms[i] + c->fetch_timeout_ms;
        if (next == 0 || due < next)
            next = due;
    }
    if (next)
        mp_grpc_timer_arm(c->gt, &c->fetch_timer, next - now);
    else
        mp_grpc_timer_cancel(c->gt, &c->fetch_timer);
}

static void fetch_timer_fired(struct mp_grpc_timer *t)
{
    struct mp_xds_client *c = MP_CONTAINER_OF(t, struct mp_xds_client, fetch_timer);
    int64_t now = mp_grpc_now_ms();
    size_t n = mp_ads_session_n_types(c->session);
    for (size_t i = 0; i < n; i++) {
        if (!mp_ads_session_type_waiting(c->session, i) || c->fetch_timed_out[i] ||
            c->first_request_ms[i] == 0 || now < c->first_request_ms[i] + c->fetch_timeout_ms)
            continue;
        c->fetch_timed_out[i] = true;
        const char *type_url = mp_ads_session_type_url(c->session, i);
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds %s %s: initial fetch of %s timed out after %lld ms",
               c->target, c->method, type_url, (long long)c->fetch_timeout_ms);
        if (c->ops->on_fetch_timeout)
            c->ops->on_fetch_timeout(c->ctx, type_url);
    }
    fetch_timer_update(c);
}

/* ---- the stream ---- */

static void op_begin(struct mp_xds_client *c)
{
    c->ops_pending++;
}

static void close_stream_if_done(struct mp_xds_client *c);

/* Sends the next queued request when no send is in flight. */
static void pump_send(struct mp_xds_client *c)
{
    if (!c->call || c->sending || c->stopping)
        return;
    uint8_t *buf;
    size_t len;
    if (mp_ads_session_next_request(c->session, &buf, &len) != 0)
        return;
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    c->send_bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->send_bb;
    if (grpc_call_start_batch(c->call, &op, 1, &c->op_send.tag, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
        grpc_call_cancel(c->call, NULL);
        return;
    }
    c->sending = true;
    op_begin(c);
    fetch_timer_update(c);
}

static void start_recv(struct mp_xds_client *c, bool with_metadata)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (with_metadata) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->md_initial;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->recv_bb;
    if (grpc_call_start_batch(c->call, ops, n, &c->op_recv.tag, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(c->call, NULL);
        return;
    }
    op_begin(c);
}

static void on_send_done(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_client *c = ((struct stream_op *)tag)->c;
    c->ops_pending--;
    c->sending = false;
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
    if (ok)
        pump_send(c);
    close_stream_if_done(c);
}

static void on_meta_done(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_client *c = ((struct stream_op *)tag)->c;
    (void)ok;
    c->ops_pending--;
    close_stream_if_done(c);
}

static void on_recv_done(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_client *c = ((struct stream_op *)tag)->c;
    c->ops_pending--;
    if (!ok || !c->recv_bb) {
        /* The server half-closed or the call failed: the status follows. */
        close_stream_if_done(c);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = mp_grpc_buffer_flatten(c->recv_bb, &buf, &len);
    grpc_byte_buffer_destroy(c->recv_bb);
    c->recv_bb = NULL;
    if (!rc && !c->stopping)
        rc = mp_ads_session_on_message(c->session, buf, len);
    free(buf);
    if (rc) {
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds %s %s: dropping the stream: %s", c->target, c->method,
               rc == MP_ERR_PROTO ? "undecodable response" : mp_strerror(rc));
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL,
                                     "client could not process response", NULL);
        close_stream_if_done(c);
        return;
    }
    if (!c->connected) {
        c->connected = true;
        mp_backoff_reset(&c->backoff);
        if (c->ops->on_connection)
            c->ops->on_connection(c->ctx, true);
    }
    pump_send(c);
    fetch_timer_update(c);
    if (!c->stopping)
        start_recv(c, false);
    close_stream_if_done(c);
}

static void on_status_done(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_client *c = ((struct stream_op *)tag)->c;
    (void)ok;
    c->ops_pending--;
    if (!c->stopping) {
        char *msg = grpc_slice_to_c_string(c->details);
        MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds %s %s: stream closed: grpc status %d%s%s", c->target,
               c->method, (int)c->status, msg[0] ? ": " : "", msg);
        gpr_free(msg);
    }
    close_stream_if_done(c);
}

static void retry_fired(struct mp_grpc_timer *t)
{
    open_stream(MP_CONTAINER_OF(t, struct mp_xds_client, retry_timer));
}

/* Once every operation of a finished call has come back, release it and
 * schedule the next attempt. */
static void close_stream_if_done(struct mp_xds_client *c)
{
    if (!c->call || c->ops_pending > 0)
        return;
    mp_grpc_thread_call_untrack(c->gt, c->call);
    grpc_call_unref(c->call);
    c->call = NULL;
    grpc_metadata_array_destroy(&c->md_initial);
    grpc_metadata_array_destroy(&c->md_trailing);
    grpc_slice_unref(c->details);
    c->details = grpc_empty_slice();
    mp_ads_session_stream_end(c->session);
    if (c->connected) {
        c->connected = false;
        if (c->ops->on_connection)
            c->ops->on_connection(c->ctx, false);
    }
    if (c->stopping || mp_grpc_thread_stopping(c->gt)) {
        pthread_mutex_lock(&c->lock);
        c->call_gone = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    int64_t delay = mp_backoff_next(&c->backoff);
    mp_grpc_timer_arm(c->gt, &c->retry_timer, delay);
}

static void retry_later(struct mp_xds_client *c, const char *why)
{
    int64_t delay = mp_backoff_next(&c->backoff);
    MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds %s %s: %s; retrying in %lld ms", c->target, c->method, why,
           (long long)delay);
    mp_grpc_timer_arm(c->gt, &c->retry_timer, delay);
}

static void open_stream(struct mp_xds_client *c)
{
    if (c->stopping || c->call || mp_grpc_thread_stopping(c->gt))
        return;
    if (!c->channel) {
        char *err = NULL;
        c->channel = mp_grpc_channel_new(c->target, &err);
        if (!c->channel) {
            retry_later(c, err ? err : "cannot create channel");
            free(err);
            return;
        }
    }
    grpc_slice method = grpc_slice_from_copied_string(c->method);
    c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                       mp_grpc_thread_cq(c->gt), method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(method);
    if (!c->call) {
        retry_later(c, "cannot create call");
        return;
    }
    if (mp_grpc_thread_call_track(c->gt, c->call) != 0 ||
        mp_ads_session_stream_start(c->session) != 0) {
        mp_grpc_thread_call_untrack(c->gt, c->call);
        grpc_call_unref(c->call);
        c->call = NULL;
        mp_ads_session_stream_end(c->session);
        retry_later(c, "out of memory opening the stream");
        return;
    }
    grpc_metadata_array_init(&c->md_initial);
    grpc_metadata_array_init(&c->md_trailing);
    c->details = grpc_empty_slice();
    c->status = GRPC_STATUS_OK;

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    if (grpc_call_start_batch(c->call, &op, 1, &c->op_meta.tag, NULL) == GRPC_CALL_OK)
        op_begin(c);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &c->md_trailing;
    op.data.recv_status_on_client.status = &c->status;
    op.data.recv_status_on_client.status_details = &c->details;
    if (grpc_call_start_batch(c->call, &op, 1, &c->op_status.tag, NULL) == GRPC_CALL_OK)
        op_begin(c);
    else
        grpc_call_cancel(c->call, NULL);
    start_recv(c, true);
    pump_send(c);
    close_stream_if_done(c);
}

/* ---- public ---- */

/* Frees what mp_xds_client_new made, for its failure path and
 * mp_xds_client_free. */
static void client_release(struct mp_xds_client *c)
{
    mp_ads_session_free(c->session);
    free(c->first_request_ms);
    free(c->fetch_timed_out);
    free(c->target);
    free(c->method);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int mp_xds_client_new(struct mp_grpc_thread *gt, const struct mp_xds_client_config *cfg,
                      struct mp_xds_client **out, char **err)
{
    static const char *const default_types[] = {MP_XDS_TYPE_CLUSTER, MP_XDS_TYPE_ENDPOINT,
                                                MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE};
    if (!cfg->target || !cfg->target[0])
        return mp_set_err(err, "xds client: target is empty");
    if (!cfg->ops || !cfg->ops->on_update)
        return mp_set_err(err, "xds client: watcher has no on_update");

    struct mp_xds_client *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    c->gt = gt;
    c->ops = cfg->ops;
    c->ctx = cfg->ctx;
    c->fetch_timeout_ms = cfg->initial_fetch_timeout_ms;
    c->details = grpc_empty_slice();
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    mp_backoff_init(&c->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms, 0);
    c->retry_timer.fn = retry_fired;
    c->fetch_timer.fn = fetch_timer_fired;
    struct stream_op *ops[] = {&c->op_meta, &c->op_send, &c->op_recv, &c->op_status};
    void (*fns[])(struct mp_grpc_tag *, bool) = {on_meta_done, on_send_done, on_recv_done,
                                                 on_status_done};
    for (size_t i = 0; i < MP_ARRAY_LEN(ops); i++) {
        ops[i]->tag.on_done = fns[i];
        ops[i]->c = c;
    }
    const char *method = cfg->method                 ? cfg->method
                         : cfg->mode == MP_XDS_DELTA ? MP_XDS_ADS_DELTA_METHOD
                                                     : MP_XDS_ADS_SOTW_METHOD;
    c->target = strdup(cfg->target);
    c->method = strdup(method);

    /* The node as given, plus who we are. */
    Envoy__Config__Core__V3__Node node;
    envoy__config__core__v3__node__init(&node);
    if (cfg->node)
        node = *cfg->node;
    static char *features[] = {"xds.config.resource-in-sotw"};
    node.user_agent_name = MP_XDS_USER_AGENT_NAME;
    node.user_agent_version_type_case =
        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
    node.user_agent_version = USER_AGENT_VERSION;
    node.n_client_features = MP_ARRAY_LEN(features);
    node.client_features = features;

    struct mp_ads_session_config scfg = {
        .mode = cfg->mode,
        .node = &node,
        .type_urls = cfg->type_urls ? cfg->type_urls : default_types,
        .n_type_urls = cfg->type_urls ? cfg->n_type_urls : MP_ARRAY_LEN(default_types),
        .named_only = cfg->type_urls ? cfg->named_only : NULL,
        .ops = cfg->ops,
        .ctx = cfg->ctx,
    };
    int rc = MP_ERR_NOMEM;
    if (!c->target || !c->method)
        goto fail;
    rc = mp_ads_session_new(&scfg, &c->session, err);
    if (rc)
        goto fail;
    size_t n = mp_ads_session_n_types(c->session);
    c->first_request_ms = calloc(n, sizeof(*c->first_request_ms));
    c->fetch_timed_out = calloc(n, sizeof(*c->fetch_timed_out));
    if (!c->first_request_ms || !c->fetch_timed_out) {
        rc = MP_ERR_NOMEM;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    client_release(c);
    return rc;
}

static void start_work(void *arg)
{
    open_stream(arg);
}

int mp_xds_client_start(struct mp_xds_client *c)
{
    return mp_grpc_thread_post(c->gt, start_work, c);
}

static void stop_work(void *arg)
{
    struct mp_xds_client *c = arg;
    c->stopping = true;
    mp_grpc_timer_cancel(c->gt, &c->retry_timer);
    mp_grpc_timer_cancel(c->gt, &c->fetch_timer);
    if (c->call) {
        grpc_call_cancel(c->call, NULL);
        return; /* close_stream_if_done signals once the ops are back */
    }
    pthread_mutex_lock(&c->lock);
    c->call_gone = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void mp_xds_client_free(struct mp_xds_client *c)
{
    if (!c)
        return;
    if (mp_grpc_thread_run_sync(c->gt, stop_work, c) == 0) {
        pthread_mutex_lock(&c->lock);
        while (!c->call_gone)
            pthread_cond_wait(&c->cond, &c->lock);
        pthread_mutex_unlock(&c->lock);
    }
    if (c->channel)
        grpc_channel_destroy(c->channel);
    grpc_slice_unref(c->details);
    client_release(c);
}

struct subscribe_work {
    struct mp_xds_client *c;
    char *type_url;
    char **names;
    size_t n;
};

static void subscribe_work_free(struct subscribe_work *w)
{
    mp_xds_names_free(w->names, w->n);
    free(w->type_url);
    free(w);
}

static void subscribe_run(void *arg)
{
    struct subscribe_work *w = arg;
    struct mp_xds_client *c = w->c;
    if (!c->stopping) {
        int rc =
            mp_ads_session_set_names(c->session, w->type_url, (const char *const *)w->names, w->n);
        if (rc)
            MP_LOG(MP_LOG_XDS, MP_LOG_WARN, "xds %s %s: cannot update the %s subscription: %s",
                   c->target, c->method, w->type_url, mp_strerror(rc));
        pump_send(c);
    }
    subscribe_work_free(w);
}

int mp_xds_client_subscribe(struct mp_xds_client *c, const char *type_url, const char *const *names,
                            size_t n)
{
    /* The type list is fixed at creation, so reading it here is safe. */
    bool known = false;
    for (size_t i = 0; i < mp_ads_session_n_types(c->session); i++)
        known |= strcmp(mp_ads_session_type_url(c->session, i), type_url) == 0;
    if (!known)
        return MP_ERR_NOTFOUND;
    struct subscribe_work *w = calloc(1, sizeof(*w));
    if (!w)
        return MP_ERR_NOMEM;
    w->c = c;
    w->type_url = strdup(type_url);
    w->names = calloc(n ? n : 1, sizeof(*w->names));
    if (!w->type_url || !w->names) {
        subscribe_work_free(w);
        return MP_ERR_NOMEM;
    }
    for (; w->n < n; w->n++) {
        w->names[w->n] = strdup(names[w->n]);
        if (!w->names[w->n]) {
            subscribe_work_free(w);
            return MP_ERR_NOMEM;
        }
    }
    int rc = mp_grpc_thread_post(c->gt, subscribe_run, w);
    if (rc)
        subscribe_work_free(w);
    return rc;
}

int mp_xds_client_pending_names(struct mp_xds_client *c, const char *type_url, char ***names,
                                size_t *n)
{
    return mp_ads_session_pending_names(c->session, type_url, names, n);
}

int mp_xds_client_version(struct mp_xds_client *c, const char *type_url, char *buf, size_t buflen)
{
    const char *v = mp_ads_session_version(c->session, type_url);
    if (!v)
        return MP_ERR_NOTFOUND;
    if (buflen)
        snprintf(buf, buflen, "%s", v);
    return 0;
}
