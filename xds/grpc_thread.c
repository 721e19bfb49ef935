/*
 * grpc_thread.c: the grpc thread. It blocks in grpc_completion_queue_next
 * with a deadline equal to its earliest timer, runs completions, timers and
 * posted work, and owns every call. Posting wakes it with a connectivity
 * watch on a private, never-connected channel whose deadline is already
 * past: grpc completes that at once on our queue (a completion queue has no
 * fd to poke, and grpc core has no public alarm in C).
 */
#include "grpc_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "mp_common.h"

struct work {
    struct work *next;
    mp_grpc_work_fn fn;
    void *arg;
};

struct tracked {
    grpc_call *call;
    struct tracked *next;
};

struct mp_grpc_thread {
    pthread_t thread;
    grpc_completion_queue *cq;
    grpc_channel *nudge_channel;
    struct mp_grpc_tag nudge_tag;
    bool nudge_pending; /* under lock */
    bool stopping;      /* under lock (read unlocked as a hint) */
    bool shut_down;     /* under lock: no more work is taken */
    pthread_mutex_t lock;
    struct work *head, **tail;    /* under lock */
    struct mp_grpc_timer *timers; /* grpc thread only, sorted by deadline */
    struct tracked *calls;        /* grpc thread only */
};

int64_t mp_grpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gpr_timespec deadline_ms(int64_t delay_ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(delay_ms, GPR_TIMESPAN));
}

static void nudge_done(struct mp_grpc_tag *tag, bool ok)
{
    struct mp_grpc_thread *gt = MP_CONTAINER_OF(tag, struct mp_grpc_thread, nudge_tag);
    (void)ok;
    pthread_mutex_lock(&gt->lock);
    gt->nudge_pending = false;
    pthread_mutex_unlock(&gt->lock);
}

/* Called with gt->lock held. */
static void nudge_locked(struct mp_grpc_thread *gt)
{
    if (gt->nudge_pending || !gt->nudge_channel)
        return;
    gt->nudge_pending = true;
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(gt->nudge_channel, 0);
    grpc_channel_watch_connectivity_state(gt->nudge_channel, st, gpr_now(GPR_CLOCK_MONOTONIC),
                                          gt->cq, &gt->nudge_tag);
}

static __thread const struct mp_grpc_thread *current_thread;

bool mp_grpc_thread_is_current(const struct mp_grpc_thread *gt)
{
    return current_thread == gt;
}

bool mp_grpc_thread_stopping(const struct mp_grpc_thread *gt)
{
    return __atomic_load_n(&gt->stopping, __ATOMIC_ACQUIRE);
}

grpc_completion_queue *mp_grpc_thread_cq(struct mp_grpc_thread *gt)
{
    return gt->cq;
}

void mp_grpc_timer_cancel(struct mp_grpc_thread *gt, struct mp_grpc_timer *t)
{
    if (!t->armed)
        return;
    for (struct mp_grpc_timer **p = &gt->timers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    t->armed = false;
    t->next = NULL;
}

void mp_grpc_timer_arm(struct mp_grpc_thread *gt, struct mp_grpc_timer *t, int64_t delay_ms)
{
    mp_grpc_timer_cancel(gt, t);
    t->deadline_ms = mp_grpc_now_ms() + (delay_ms > 0 ? delay_ms : 0);
    struct mp_grpc_timer **p = &gt->timers;
    while (*p && (*p)->deadline_ms <= t->deadline_ms)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    t->armed = true;
}

static void run_timers(struct mp_grpc_thread *gt)
{
    int64_t now = mp_grpc_now_ms();
    while (gt->timers && gt->timers->deadline_ms <= now) {
        struct mp_grpc_timer *t = gt->timers;
        gt->timers = t->next;
        t->next = NULL;
        t->armed = false;
        t->fn(t);
    }
}

/* Runs everything posted so far (not what those functions post). */
static void run_work(struct mp_grpc_thread *gt)
{
    pthread_mutex_lock(&gt->lock);
    struct work *w = gt->head;
    gt->head = NULL;
    gt->tail = &gt->head;
    pthread_mutex_unlock(&gt->lock);
    while (w) {
        struct work *next = w->next;
        w->fn(w->arg);
        free(w);
        w = next;
    }
}

int mp_grpc_thread_call_track(struct mp_grpc_thread *gt, grpc_call *call)
{
    struct tracked *t = malloc(sizeof(*t));
    if (!t)
        return MP_ERR_NOMEM;
    t->call = call;
    t->next = gt->calls;
    gt->calls = t;
    return 0;
}

void mp_grpc_thread_call_untrack(struct mp_grpc_thread *gt, grpc_call *call)
{
    for (struct tracked **p = &gt->calls; *p; p = &(*p)->next)
        if ((*p)->call == call) {
            struct tracked *t = *p;
            *p = t->next;
            free(t);
            return;
        }
}

/* Stop requested: cancel every call; once none is left, shut the queue. */
static void stop_step(struct mp_grpc_thread *gt)
{
    if (gt->shut_down)
        return;
    for (struct tracked *t = gt->calls; t; t = t->next)
        grpc_call_cancel(t->call, NULL);
    if (gt->calls)
        return;
    /* Checked and set under one lock so that work posted meanwhile is
     * either run first or refused, never dropped. */
    pthread_mutex_lock(&gt->lock);
    if (gt->head) {
        pthread_mutex_unlock(&gt->lock);
        return;
    }
    gt->shut_down = true;
    /* Destroying the channel completes a pending nudge watch. */
    grpc_channel *ch = gt->nudge_channel;
    gt->nudge_channel = NULL;
    pthread_mutex_unlock(&gt->lock);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(gt->cq);
}

static void *thread_main(void *arg)
{
    struct mp_grpc_thread *gt = arg;
    current_thread = gt;
    for (;;) {
        gpr_timespec deadline = gt->timers ? deadline_ms(gt->timers->deadline_ms - mp_grpc_now_ms())
                                           : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        /* While stopping, wake often enough to notice calls draining. */
        if (mp_grpc_thread_stopping(gt) && !gt->shut_down)
            deadline = deadline_ms(10);
        grpc_event ev = grpc_completion_queue_next(gt->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            struct mp_grpc_tag *tag = ev.tag;
            tag->on_done(tag, ev.success != 0);
        }
        run_work(gt);
        run_timers(gt);
        if (mp_grpc_thread_stopping(gt))
            stop_step(gt);
    }
    return NULL;
}

int mp_grpc_thread_new(struct mp_grpc_thread **out)
{
    struct mp_grpc_thread *gt = calloc(1, sizeof(*gt));
    if (!gt)
        return MP_ERR_NOMEM;
    grpc_init();
    pthread_mutex_init(&gt->lock, NULL);
    gt->tail = &gt->head;
    gt->nudge_tag.on_done = nudge_done;
    gt->cq = grpc_completion_queue_create_for_next(NULL);
    /* Never connected: a channel stays IDLE until asked to connect. */
    gt->nudge_channel = mp_grpc_channel_new("unix:/nonexistent/meshproxy-grpc-nudge", NULL);
    int rc = MP_ERR_NOMEM;
    if (!gt->cq || !gt->nudge_channel)
        goto fail;
    if (pthread_create(&gt->thread, NULL, thread_main, gt) != 0) {
        rc = MP_ERR_IO;
        goto fail;
    }
    *out = gt;
    return 0;
fail:
    if (gt->nudge_channel)
        grpc_channel_destroy(gt->nudge_channel);
    if (gt->cq) {
        grpc_completion_queue_shutdown(gt->cq);
        while (grpc_completion_queue_next(gt->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(gt->cq);
    }
    pthread_mutex_destroy(&gt->lock);
    free(gt);
    grpc_shutdown();
    return rc;
}

int mp_grpc_thread_post(struct mp_grpc_thread *gt, mp_grpc_work_fn fn, void *arg)
{
    struct work *w = malloc(sizeof(*w));
    if (!w)
        return MP_ERR_NOMEM;
    w->fn = fn;
    w->arg = arg;
    w->next = NULL;
    pthread_mutex_lock(&gt->lock);
    if (gt->shut_down) {
        pthread_mutex_unlock(&gt->lock);
        free(w);
        return MP_ERR_CLOSED;
    }
    *gt->tail = w;
    gt->tail = &w->next;
    nudge_locked(gt);
    pthread_mutex_unlock(&gt->lock);
    return 0;
}

struct sync_work {
    mp_grpc_work_fn fn;
    void *arg;
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void sync_run(void *arg)
{
    struct sync_work *sw = arg;
    sw->fn(sw->arg);
    pthread_mutex_lock(&sw->lock);
    sw->done = true;
    pthread_cond_signal(&sw->cond);
    pthread_mutex_unlock(&sw->lock);
}

int mp_grpc_thread_run_sync(struct mp_grpc_thread *gt, mp_grpc_work_fn fn, void *arg)
{
    if (mp_grpc_thread_is_current(gt)) {
        fn(arg);
        return 0;
    }
    struct sync_work sw = {.fn = fn, .arg = arg};
    pthread_mutex_init(&sw.lock, NULL);
    pthread_cond_init(&sw.cond, NULL);
    int rc = mp_grpc_thread_post(gt, sync_run, &sw);
    if (!rc) {
        pthread_mutex_lock(&sw.lock);
        while (!sw.done)
            pthread_cond_wait(&sw.cond, &sw.lock);
        pthread_mutex_unlock(&sw.lock);
    }
    pthread_cond_destroy(&sw.cond);
    pthread_mutex_destroy(&sw.lock);
    return rc;
}

static void stop_begin(void *arg)
{
    stop_step(arg);
}

void mp_grpc_thread_free(struct mp_grpc_thread *gt)
{
    if (!gt)
        return;
    __atomic_store_n(&gt->stopping, true, __ATOMIC_RELEASE);
    /* Wake the thread; if the post fails for memory, the 10 ms stop poll
     * is not armed yet, so fall back to a blocking nudge. */
    if (mp_grpc_thread_post(gt, stop_begin, gt) != 0) {
        pthread_mutex_lock(&gt->lock);
        nudge_locked(gt);
        pthread_mutex_unlock(&gt->lock);
    }
    pthread_join(gt->thread, NULL);
    /* Anything posted after the queue shut down never ran: release it. */
    while (gt->head) {
        struct work *w = gt->head;
        gt->head = w->next;
        free(w);
    }
    while (gt->calls) {
        struct tracked *t = gt->calls;
        gt->calls = t->next;
        free(t);
    }
    grpc_completion_queue_destroy(gt->cq);
    pthread_mutex_destroy(&gt->lock);
    free(gt);
    grpc_shutdown();
}

grpc_channel *mp_grpc_channel_new(const char *target, char **err)
{
    if (!target || !target[0]) {
        mp_set_err(err, "grpc target is empty");
        return NULL;
    }
    char *owned = NULL;
    if (target[0] == '/') {
        size_t len = strlen(target) + sizeof("unix:");
        owned = malloc(len);
        if (!owned) {
            mp_set_err(err, "out of memory");
            return NULL;
        }
        snprintf(owned, len, "unix:%s", target);
        target = owned;
    }
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    /* xDS streams live for hours: keepalive finds dead peers behind NATs. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 300000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 20000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = 256 * 1024 * 1024},
    };
    grpc_channel_args cargs = {.num_args = MP_ARRAY_LEN(args), .args = args};
    grpc_channel *ch = creds ? grpc_channel_create(target, creds, &cargs) : NULL;
    if (creds)
        grpc_channel_credentials_release(creds);
    if (!ch)
        mp_set_err(err, "cannot create grpc channel to %s", target);
    free(owned);
    return ch;
}

int mp_grpc_buffer_flatten(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return MP_ERR_PROTO;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t n = GRPC_SLICE_LENGTH(all);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        grpc_slice_unref(all);
        return MP_ERR_NOMEM;
    }
    memcpy(buf, GRPC_SLICE_START_PTR(all), n);
    grpc_slice_unref(all);
    *out = buf;
    *len = n;
    return 0;
}

/* ---- unary calls ---- */

struct unary {
    struct mp_grpc_tag tag;
    struct mp_grpc_thread *gt;
    grpc_channel *channel;
    grpc_call *call;
    char *method;
    uint8_t *req;
    size_t req_len;
    int64_t timeout_ms;
    mp_grpc_unary_done_fn done;
    void *ctx;
    grpc_metadata_array md_initial, md_trailing;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_status_code status;
    grpc_slice details;
};

static void unary_free(struct unary *u)
{
    if (u->call) {
        mp_grpc_thread_call_untrack(u->gt, u->call);
        grpc_call_unref(u->call);
    }
    grpc_metadata_array_destroy(&u->md_initial);
    grpc_metadata_array_destroy(&u->md_trailing);
    if (u->send_bb)
        grpc_byte_buffer_destroy(u->send_bb);
    if (u->recv_bb)
        grpc_byte_buffer_destroy(u->recv_bb);
    grpc_slice_unref(u->details);
    free(u->method);
    free(u->req);
    free(u);
}

static void unary_finish(struct unary *u, int status, const char *msg)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    if (status == GRPC_STATUS_OK) {
        if (!u->recv_bb) {
            status = GRPC_STATUS_INTERNAL;
            msg = "no response message";
        } else if (mp_grpc_buffer_flatten(u->recv_bb, &resp, &resp_len) != 0) {
            status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            msg = "out of memory";
        }
    }
    u->done(u->ctx, status, msg ? msg : "", resp, resp_len);
    free(resp);
    unary_free(u);
}

static void unary_done(struct mp_grpc_tag *tag, bool ok)
{
    struct unary *u = MP_CONTAINER_OF(tag, struct unary, tag);
    if (!ok) {
        unary_finish(u, GRPC_STATUS_INTERNAL, "batch failed");
        return;
    }
    char *msg = grpc_slice_to_c_string(u->details);
    unary_finish(u, u->status, msg);
    gpr_free(msg);
}

static void unary_begin(void *arg)
{
    struct unary *u = arg;
    if (mp_grpc_thread_stopping(u->gt)) {
        unary_finish(u, GRPC_STATUS_CANCELLED, "grpc thread stopping");
        return;
    }
    grpc_slice method = grpc_slice_from_copied_string(u->method);
    gpr_timespec deadline = deadline_ms(u->timeout_ms);
    u->call = grpc_channel_create_call(u->channel, NULL, GRPC_PROPAGATE_DEFAULTS, u->gt->cq, method,
                                       NULL, deadline, NULL);
    grpc_slice_unref(method);
    if (!u->call || mp_grpc_thread_call_track(u->gt, u->call) != 0) {
        if (u->call)
            grpc_call_unref(u->call);
        u->call = NULL;
        unary_finish(u, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot create call");
        return;
    }
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)u->req, u->req_len);
    u->send_bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->md_trailing;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    if (grpc_call_start_batch(u->call, ops, MP_ARRAY_LEN(ops), &u->tag, NULL) != GRPC_CALL_OK)
        unary_finish(u, GRPC_STATUS_INTERNAL, "cannot start call");
}

int mp_grpc_unary_start(struct mp_grpc_thread *gt, grpc_channel *channel, const char *method,
                        const uint8_t *req, size_t req_len, int64_t timeout_ms,
                        mp_grpc_unary_done_fn done, void *ctx)
{
    struct unary *u = calloc(1, sizeof(*u));
    if (!u)
        return MP_ERR_NOMEM;
    u->tag.on_done = unary_done;
    u->gt = gt;
    u->channel = channel;
    u->timeout_ms = timeout_ms;
    u->done = done;
    u->ctx = ctx;
    u->details = grpc_empty_slice();
    grpc_metadata_array_init(&u->md_initial);
    grpc_metadata_array_init(&u->md_trailing);
    u->method = strdup(method);
    u->req = malloc(req_len ? req_len : 1);
    if (!u->method || !u->req) {
        unary_free(u);
        return MP_ERR_NOMEM;
    }
    memcpy(u->req, req, req_len);
    u->req_len = req_len;
    int rc = mp_grpc_thread_post(gt, unary_begin, u);
    if (rc)
        unary_free(u);
    return rc;
}
