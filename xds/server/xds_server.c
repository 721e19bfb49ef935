/*
 * xds_server.c: accepting calls and keeping the served store current.
 *
 * The grpc server shares the grpc thread's completion queue. One
 * grpc_server_request_call is outstanding at any time; each accepted call
 * becomes a stream (xds_server_stream.c) if its method is an xDS stream.
 * Reloads build a new store on the caller's thread and hand it to the grpc
 * thread, which swaps it in and pushes.
 */
#include "xds_server.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc_thread.h"
#include "mp_common.h"
#include "xds_client.h"
#include "log.h"
#include "xds_server_stream.h"
#include "xds_store.h"

struct mp_xds_server {
    struct mp_grpc_thread *gt;
    grpc_server *server;
    char *dir;
    int port;
    bool sotw, delta;

    /* grpc thread */
    struct mp_xds_store *store;
    struct mp_xds_sstream *streams;
    struct mp_xds_sstream_host host;
    bool stopping;
    /* the one outstanding request_call */
    struct mp_grpc_tag accept_tag;
    bool accept_pending;
    grpc_call *new_call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    struct mp_grpc_tag shutdown_tag;

    /* reloads (any thread), and shutdown handshake */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mp_xds_store *latest; /* under lock: newest loaded store */
    bool shutdown_done;
};

/* xDS stream methods: (service, protocol). */
static const struct {
    const char *method;
    enum mp_xds_mode mode;
} methods[] = {
    {MP_XDS_ADS_SOTW_METHOD, MP_XDS_SOTW},
    {MP_XDS_ADS_DELTA_METHOD, MP_XDS_DELTA},
    {MP_XDS_SDS_SOTW_METHOD, MP_XDS_SOTW},
    {MP_XDS_SDS_DELTA_METHOD, MP_XDS_DELTA},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners", MP_XDS_SOTW},
    {"/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners", MP_XDS_DELTA},
    {"/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes", MP_XDS_SOTW},
    {"/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes", MP_XDS_DELTA},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters", MP_XDS_SOTW},
    {"/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters", MP_XDS_DELTA},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints", MP_XDS_SOTW},
    {"/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints", MP_XDS_DELTA},
};

static struct mp_xds_store *host_store(void *ctx)
{
    return ((struct mp_xds_server *)ctx)->store;
}

static void host_closed(void *ctx, struct mp_xds_sstream *st)
{
    struct mp_xds_server *s = ctx;
    for (struct mp_xds_sstream **p = &s->streams; *p; p = mp_xds_sstream_next(*p))
        if (*p == st) {
            *p = *mp_xds_sstream_next(st);
            break;
        }
}

static void request_next(struct mp_xds_server *s);

static void on_accept(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_server *s = MP_CONTAINER_OF(tag, struct mp_xds_server, accept_tag);
    s->accept_pending = false;
    if (ok && s->new_call) {
        char *method = grpc_slice_to_c_string(s->details.method);
        enum mp_xds_mode mode = MP_XDS_SOTW;
        bool supported = false;
        for (size_t i = 0; i < MP_ARRAY_LEN(methods); i++)
            if (strcmp(methods[i].method, method) == 0) {
                mode = methods[i].mode;
                supported = mode == MP_XDS_DELTA ? s->delta : s->sotw;
            }
        struct mp_xds_sstream *st =
            mp_xds_sstream_start(&s->host, s->new_call, method, mode, supported);
        if (st) {
            *mp_xds_sstream_next(st) = s->streams;
            s->streams = st;
        }
        gpr_free(method);
    }
    s->new_call = NULL;
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->request_md);
    if (!s->stopping)
        request_next(s);
}

static void request_next(struct mp_xds_server *s)
{
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->request_md);
    grpc_completion_queue *cq = mp_grpc_thread_cq(s->gt);
    if (grpc_server_request_call(s->server, &s->new_call, &s->details, &s->request_md, cq, cq,
                                 &s->accept_tag) == GRPC_CALL_OK) {
        s->accept_pending = true;
    } else {
        grpc_call_details_destroy(&s->details);
        grpc_metadata_array_destroy(&s->request_md);
        MP_LOG(MP_LOG_XDS, MP_LOG_ERROR, "cannot accept calls any more");
    }
}

struct start_args {
    struct mp_xds_server *s;
    const char *listen;
    int rc;
    char **err;
};

static void start_on_thread(void *arg)
{
    struct start_args *a = arg;
    struct mp_xds_server *s = a->s;
    s->server = grpc_server_create(NULL, NULL);
    if (!s->server) {
        a->rc = MP_ERR_NOMEM;
        return;
    }
    grpc_server_register_completion_queue(s->server, mp_grpc_thread_cq(s->gt), NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, a->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        mp_set_err(a->err, "cannot listen on %s", a->listen);
        a->rc = MP_ERR_IO;
        grpc_server_destroy(s->server);
        s->server = NULL;
        return;
    }
    if (strncmp(a->listen, "unix:", 5) == 0)
        s->port = 0; /* grpc reports 1 for a Unix socket */
    grpc_server_start(s->server);
    request_next(s);
    a->rc = 0;
}

static void free_fields(struct mp_xds_server *s)
{
    mp_xds_store_unref(s->store);
    mp_xds_store_unref(s->latest);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}

int mp_xds_server_new(struct mp_grpc_thread *gt, const struct mp_xds_server_config *cfg,
                      struct mp_xds_server **out, char **err)
{
    if (!cfg->listen || !cfg->dir)
        return mp_set_err(err, "meshproxy-xds: need a listen address and a folder");
    struct mp_xds_server *s = calloc(1, sizeof(*s));
    if (!s)
        return MP_ERR_NOMEM;
    s->gt = gt;
    s->sotw = cfg->sotw;
    s->delta = cfg->delta;
    s->host = (struct mp_xds_sstream_host){
        .gt = gt, .store = host_store, .on_closed = host_closed, .ctx = s};
    s->accept_tag.on_done = on_accept;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->dir = strdup(cfg->dir);
    if (!s->dir) {
        free_fields(s);
        return MP_ERR_NOMEM;
    }
    int rc = mp_xds_store_load(cfg->dir, NULL, &s->store, err);
    if (rc) {
        free_fields(s);
        return rc;
    }
    s->latest = mp_xds_store_ref(s->store);
    struct start_args a = {.s = s, .listen = cfg->listen, .rc = MP_ERR_CLOSED, .err = err};
    rc = mp_grpc_thread_run_sync(gt, start_on_thread, &a);
    if (rc || a.rc) {
        free_fields(s);
        return rc ? rc : a.rc;
    }
    *out = s;
    return 0;
}

int mp_xds_server_port(const struct mp_xds_server *s)
{
    return s->port;
}

struct swap_args {
    struct mp_xds_server *s;
    struct mp_xds_store *store; /* one reference, moved to the server */
};

static void swap_on_thread(void *arg)
{
    struct swap_args *a = arg;
    struct mp_xds_server *s = a->s;
    mp_xds_store_unref(s->store);
    s->store = a->store;
    if (!s->stopping)
        for (struct mp_xds_sstream *st = s->streams; st; st = *mp_xds_sstream_next(st))
            mp_xds_sstream_push(st);
}

int mp_xds_server_reload(struct mp_xds_server *s, char **err)
{
    pthread_mutex_lock(&s->lock);
    struct mp_xds_store *next = NULL;
    int rc = mp_xds_store_load(s->dir, s->latest, &next, err);
    if (rc) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    if (mp_xds_store_equal(next, s->latest)) {
        mp_xds_store_unref(next);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    mp_xds_store_unref(s->latest);
    s->latest = next;
    pthread_mutex_unlock(&s->lock);
    /* The grpc thread gets its own reference. */
    struct swap_args a = {.s = s, .store = mp_xds_store_ref(next)};
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++)
        MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "serving %s version %s (%zu resources)",
               next->types[i].type_url, next->types[i].version, next->types[i].n);
    rc = mp_grpc_thread_run_sync(s->gt, swap_on_thread, &a);
    if (rc)
        mp_xds_store_unref(a.store);
    return rc;
}

static void on_shutdown(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_xds_server *s = MP_CONTAINER_OF(tag, struct mp_xds_server, shutdown_tag);
    (void)ok;
    pthread_mutex_lock(&s->lock);
    s->shutdown_done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void stop_on_thread(void *arg)
{
    struct mp_xds_server *s = arg;
    s->stopping = true;
    s->shutdown_tag.on_done = on_shutdown;
    grpc_server_shutdown_and_notify(s->server, mp_grpc_thread_cq(s->gt), &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->server);
    for (struct mp_xds_sstream *st = s->streams; st; st = *mp_xds_sstream_next(st))
        mp_xds_sstream_cancel(st);
}

struct drained_args {
    struct mp_xds_server *s;
    bool drained;
};

static void check_drained(void *arg)
{
    struct drained_args *a = arg;
    a->drained = a->s->streams == NULL && !a->s->accept_pending;
}

void mp_xds_server_free(struct mp_xds_server *s)
{
    if (!s)
        return;
    if (mp_grpc_thread_run_sync(s->gt, stop_on_thread, s) == 0) {
        pthread_mutex_lock(&s->lock);
        while (!s->shutdown_done)
            pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
        /* Streams end after the shutdown tag; wait for the last one. */
        for (int i = 0; i < 5000; i++) {
            struct drained_args a = {.s = s};
            mp_grpc_thread_run_sync(s->gt, check_drained, &a);
            if (a.drained)
                break;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (s->server)
        grpc_server_destroy(s->server);
    free_fields(s);
}
