/*
 * grpc_call.c: unary gRPC calls from worker threads (see grpc_call.h).
 *
 * Ownership: a call has two references, the starter's handle and the
 * grpc-thread side. The starter drops its reference when done has run or
 * when it cancels; the grpc side drops its own after handing the answer to
 * the worker queue (the worker then drops it) or, when the queue is closed,
 * on the grpc thread. So a reset stream never sees its callback, and
 * nothing is freed twice whatever the order.
 */
#include "grpc_call.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "proxy/mp_common.h"
#include "xds/grpc_thread.h"

#define CHANNEL_IDLE_MS 60000

/* ---- per-thread answer queue ---------------------------------------------- */

struct answer_queue {
    pthread_mutex_t mu; /* the grpc thread's push vs close; never taken by the worker */
    bool closed;        /* under mu */
    _Atomic(struct mp_grpc_call *) head; /* LIFO of answers; the worker takes all at once */
    struct ev_loop *loop;
    ev_async async;
    atomic_uint refs; /* the owning thread + one per call */
};

struct channel_entry;

struct mp_grpc_call {
    atomic_uint refs;
    bool cancelled; /* starter's thread only */
    struct answer_queue *q;
    struct mp_grpc_thread *gt;
    struct channel_entry *ch; /* grpc thread only */
    mp_grpc_call_done_fn done;
    void *arg;
    const char *method;
    char *target;
    uint8_t *req;
    size_t req_len;
    int64_t timeout_ms;
    /* the answer, filled on the grpc thread */
    int status;
    char *message;
    uint8_t *resp;
    size_t resp_len;
    struct mp_grpc_call *next; /* queue link */
};

static pthread_key_t queue_key;
static pthread_once_t queue_key_once = PTHREAD_ONCE_INIT;
static __thread struct answer_queue *thread_queue;

static void queue_unref(struct answer_queue *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void call_unref(struct mp_grpc_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->q)
        queue_unref(c->q);
    free(c->target);
    free(c->req);
    free(c->message);
    free(c->resp);
    free(c);
}

/* Runs the answers that arrived, oldest first. Worker thread. */
static void queue_drain(struct answer_queue *q, bool deliver)
{
    struct mp_grpc_call *list = atomic_exchange(&q->head, NULL);
    struct mp_grpc_call *fifo = NULL;
    while (list) {
        struct mp_grpc_call *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct mp_grpc_call *c = fifo;
        fifo = c->next;
        if (deliver && !c->cancelled) {
            /* the starter's reference ends with its callback */
            c->cancelled = true;
            c->done(c->arg, c->status, c->message ? c->message : "", c->resp, c->resp_len);
            call_unref(c);
        }
        call_unref(c); /* the grpc side's reference */
    }
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    queue_drain(w->data, true);
}

void mp_grpc_call_thread_exit(void)
{
    struct answer_queue *q = thread_queue;
    if (!q)
        return;
    thread_queue = NULL;
    pthread_setspecific(queue_key, NULL);
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_mutex_unlock(&q->mu);
    ev_async_stop(q->loop, &q->async);
    /* answers already queued belong to streams that are gone by now */
    queue_drain(q, false);
    queue_unref(q);
}

static void queue_key_destructor(void *arg)
{
    (void)arg;
    mp_grpc_call_thread_exit();
}

static void queue_key_make(void)
{
    pthread_key_create(&queue_key, queue_key_destructor);
}

static struct answer_queue *queue_get(struct ev_loop *loop)
{
    if (thread_queue)
        return thread_queue;
    pthread_once(&queue_key_once, queue_key_make);
    struct answer_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    atomic_init(&q->head, NULL);
    atomic_init(&q->refs, 1);
    q->loop = loop;
    ev_async_init(&q->async, async_cb);
    q->async.data = q;
    ev_async_start(loop, &q->async);
    thread_queue = q;
    /* the destructor runs when the worker thread returns, after its loop ended */
    pthread_setspecific(queue_key, q);
    return q;
}

/* Grpc thread: hands c's answer to its thread, or drops it when that
 * thread has stopped taking answers. */
static void queue_push(struct mp_grpc_call *c)
{
    struct answer_queue *q = c->q;
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        call_unref(c);
        return;
    }
    struct mp_grpc_call *head = atomic_load(&q->head);
    do {
        c->next = head;
    } while (!atomic_compare_exchange_weak(&q->head, &head, c));
    ev_async_send(q->loop, &q->async);
    pthread_mutex_unlock(&q->mu);
}

/* ---- channel cache (grpc thread) ------------------------------------------ */

struct channel_entry {
    struct channel_entry *next;
    struct channel_cache *cache;
    char *target;
    grpc_channel *channel;
    unsigned inflight;
    int64_t last_used_ms;
};

struct channel_cache {
    struct channel_cache *next;
    struct mp_grpc_thread *gt;
    struct channel_entry *entries;
    struct mp_grpc_timer idle_timer;
};

/* Caches of every grpc thread (tests make several); each is touched only on
 * its own grpc thread, the list itself under caches_mu. */
static pthread_mutex_t caches_mu = PTHREAD_MUTEX_INITIALIZER;
static struct channel_cache *caches;

static struct channel_cache *cache_for(struct mp_grpc_thread *gt, bool create)
{
    pthread_mutex_lock(&caches_mu);
    struct channel_cache *cc = caches;
    while (cc && cc->gt != gt)
        cc = cc->next;
    if (!cc && create) {
        cc = calloc(1, sizeof(*cc));
        if (cc) {
            cc->gt = gt;
            cc->next = caches;
            caches = cc;
        }
    }
    pthread_mutex_unlock(&caches_mu);
    return cc;
}

static void entry_free(struct channel_entry *e)
{
    grpc_channel_destroy(e->channel);
    free(e->target);
    free(e);
}

static void idle_sweep(struct mp_grpc_timer *t)
{
    struct channel_cache *cc = MP_CONTAINER_OF(t, struct channel_cache, idle_timer);
    int64_t now = mp_grpc_now_ms();
    bool left = false;
    for (struct channel_entry **p = &cc->entries; *p;) {
        struct channel_entry *e = *p;
        if (e->inflight == 0 && now - e->last_used_ms >= CHANNEL_IDLE_MS) {
            *p = e->next;
            entry_free(e);
            continue;
        }
        left = true;
        p = &e->next;
    }
    if (left)
        mp_grpc_timer_arm(cc->gt, &cc->idle_timer, CHANNEL_IDLE_MS);
}

static struct channel_entry *channel_get(struct mp_grpc_thread *gt, const char *target)
{
    struct channel_cache *cc = cache_for(gt, true);
    if (!cc)
        return NULL;
    for (struct channel_entry *e = cc->entries; e; e = e->next)
        if (strcmp(e->target, target) == 0)
            return e;
    struct channel_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->target = strdup(target);
    e->channel = e->target ? mp_grpc_channel_new(target, NULL) : NULL;
    if (!e->channel) {
        free(e->target);
        free(e);
        return NULL;
    }
    e->cache = cc;
    e->next = cc->entries;
    cc->entries = e;
    if (!cc->idle_timer.armed) {
        cc->idle_timer.fn = idle_sweep;
        mp_grpc_timer_arm(gt, &cc->idle_timer, CHANNEL_IDLE_MS);
    }
    return e;
}

struct release_arg {
    struct mp_grpc_thread *gt;
};

static void release_on_grpc_thread(void *arg)
{
    struct release_arg *ra = arg;
    struct channel_cache *cc = cache_for(ra->gt, false);
    if (!cc)
        return;
    mp_grpc_timer_cancel(ra->gt, &cc->idle_timer);
    /* calls still running keep their channel's stack alive inside grpc */
    while (cc->entries) {
        struct channel_entry *e = cc->entries;
        cc->entries = e->next;
        entry_free(e);
    }
}

void mp_grpc_call_channels_release(struct mp_grpc_thread *gt)
{
    if (!gt)
        return;
    struct release_arg ra = {.gt = gt};
    if (mp_grpc_thread_run_sync(gt, release_on_grpc_thread, &ra) != 0)
        return;
    pthread_mutex_lock(&caches_mu);
    for (struct channel_cache **p = &caches; *p; p = &(*p)->next)
        if ((*p)->gt == gt) {
            struct channel_cache *cc = *p;
            *p = cc->next;
            free(cc);
            break;
        }
    pthread_mutex_unlock(&caches_mu);
}

/* ---- the call ---------------------------------------------------------- */

static void finish(struct mp_grpc_call *c, int status, const char *message, const uint8_t *resp,
                   size_t len)
{
    c->status = status;
    c->message = strdup(message ? message : "");
    if (resp && status == GRPC_STATUS_OK) {
        c->resp = malloc(len ? len : 1);
        if (c->resp) {
            memcpy(c->resp, resp, len);
            c->resp_len = len;
        } else {
            c->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
    }
    queue_push(c);
}

static void unary_done(void *ctx, int status, const char *message, const uint8_t *resp, size_t len)
{
    struct mp_grpc_call *c = ctx;
    if (c->ch) {
        c->ch->inflight--;
        c->ch->last_used_ms = mp_grpc_now_ms();
        c->ch = NULL;
    }
    finish(c, status, message, resp, len);
}

static void call_begin(void *arg)
{
    struct mp_grpc_call *c = arg;
    struct channel_entry *e = channel_get(c->gt, c->target);
    if (!e) {
        finish(c, GRPC_STATUS_UNAVAILABLE, "no channel to the grpc target", NULL, 0);
        return;
    }
    e->inflight++;
    e->last_used_ms = mp_grpc_now_ms();
    c->ch = e;
    int rc = mp_grpc_unary_start(c->gt, e->channel, c->method, c->req, c->req_len, c->timeout_ms,
                                 unary_done, c);
    if (rc) {
        e->inflight--;
        c->ch = NULL;
        finish(c, rc == MP_ERR_NOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAVAILABLE,
               "cannot start the call", NULL, 0);
    }
}

int mp_grpc_call_start(struct ev_loop *loop, struct mp_grpc_thread *gt, const char *target,
                       const char *method, const uint8_t *req, size_t len, int64_t timeout_ms,
                       mp_grpc_call_done_fn done, void *arg, struct mp_grpc_call **out)
{
    if (!gt || mp_grpc_thread_stopping(gt))
        return MP_ERR_CLOSED;
    struct answer_queue *q = queue_get(loop);
    if (!q)
        return MP_ERR_NOMEM;
    struct mp_grpc_call *c = calloc(1, sizeof(*c));
    if (!c)
        return MP_ERR_NOMEM;
    atomic_init(&c->refs, 2);
    c->gt = gt;
    c->done = done;
    c->arg = arg;
    c->method = method;
    c->timeout_ms = timeout_ms;
    c->target = strdup(target);
    c->req = malloc(len ? len : 1);
    if (!c->target || !c->req) {
        free(c->target);
        free(c->req);
        free(c);
        return MP_ERR_NOMEM;
    }
    memcpy(c->req, req, len);
    c->req_len = len;
    atomic_fetch_add(&q->refs, 1);
    c->q = q;
    int rc = mp_grpc_thread_post(gt, call_begin, c);
    if (rc) {
        atomic_store(&c->refs, 1);
        call_unref(c);
        return rc;
    }
    *out = c;
    return 0;
}

void mp_grpc_call_cancel(struct mp_grpc_call *call)
{
    if (!call || call->cancelled)
        return;
    call->cancelled = true;
    call_unref(call);
}
