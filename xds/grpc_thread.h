/*
 * grpc_thread.h: the one thread that runs grpc core's completion queue.
 *
 * Every gRPC conversation in the proxy (ADS and SDS streams, ratelimit,
 * ext_authz, trace export) runs on this thread: it blocks in
 * grpc_completion_queue_next and owns every grpc_call. Other threads never
 * touch a call; they post work with mp_grpc_thread_post() and get results
 * back through a callback they supply, which runs on the grpc thread (a
 * worker wraps it in ev_async_send to get back onto its own loop).
 *
 * A completion queue has no pollable fd, so posting wakes the thread with a
 * connectivity watch whose deadline has already passed on a private idle
 * channel: grpc completes it at once on our queue.
 */
#ifndef MP_GRPC_THREAD_H
#define MP_GRPC_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

struct mp_grpc_thread;

/*
 * Everything placed on the thread's completion queue carries a pointer to
 * one of these as its tag; the thread calls on_done(tag, ok) with the
 * event's success flag. Embed it in your own struct and use
 * MP_CONTAINER_OF to get back.
 */
struct mp_grpc_tag {
    void (*on_done)(struct mp_grpc_tag *tag, bool ok);
};

/*
 * A one-shot timer run by the grpc thread. Arm and cancel only on the grpc
 * thread. The struct is owned by the caller and must stay alive while armed.
 */
struct mp_grpc_timer {
    void (*fn)(struct mp_grpc_timer *t);
    int64_t deadline_ms; /* CLOCK_MONOTONIC milliseconds; set by arm */
    bool armed;
    struct mp_grpc_timer *next; /* internal list link */
};

typedef void (*mp_grpc_work_fn)(void *arg);

/**
 * Starts the grpc thread (calls grpc_init). *out receives the handle, freed
 * with mp_grpc_thread_free(). Returns 0, MP_ERR_NOMEM, or MP_ERR_IO when the
 * thread cannot be created.
 */
int mp_grpc_thread_new(struct mp_grpc_thread **out);

/**
 * Stops the thread: cancels every call still registered (see
 * mp_grpc_thread_call_track), waits for their completions, shuts the queue
 * down, joins the thread and calls grpc_shutdown. Stream owners (the xDS
 * client) must be freed before this. NULL is a no-op. Not from the grpc
 * thread itself.
 */
void mp_grpc_thread_free(struct mp_grpc_thread *gt);

/**
 * Queues fn(arg) to run on the grpc thread, in posting order, and wakes the
 * thread. Safe from any thread (also from the grpc thread itself: fn then
 * runs on the next turn of the loop). Returns 0, MP_ERR_NOMEM, or
 * MP_ERR_CLOSED when the thread is stopping (fn will not run; the caller
 * still owns arg).
 */
int mp_grpc_thread_post(struct mp_grpc_thread *gt, mp_grpc_work_fn fn, void *arg);

/**
 * Runs fn(arg) on the grpc thread and waits until it has returned. From the
 * grpc thread itself fn runs at once. Returns 0 or the error of
 * mp_grpc_thread_post.
 */
int mp_grpc_thread_run_sync(struct mp_grpc_thread *gt, mp_grpc_work_fn fn, void *arg);

/** The completion queue (for grpc_channel_create_call). Grpc thread only. */
grpc_completion_queue *mp_grpc_thread_cq(struct mp_grpc_thread *gt);

/** True when called on the grpc thread of gt. */
bool mp_grpc_thread_is_current(const struct mp_grpc_thread *gt);

/** True once mp_grpc_thread_free has begun: owners must not start new calls. */
bool mp_grpc_thread_stopping(const struct mp_grpc_thread *gt);

/** Arms (or re-arms) t to fire after delay_ms. Grpc thread only. */
void mp_grpc_timer_arm(struct mp_grpc_thread *gt, struct mp_grpc_timer *t, int64_t delay_ms);

/** Disarms t if armed. Grpc thread only. */
void mp_grpc_timer_cancel(struct mp_grpc_thread *gt, struct mp_grpc_timer *t);

/** Current CLOCK_MONOTONIC time in milliseconds. */
int64_t mp_grpc_now_ms(void);

/**
 * Records that call is live so that mp_grpc_thread_free can cancel it.
 * Pair with mp_grpc_thread_call_untrack before grpc_call_unref. Grpc thread
 * only. Returns 0 or MP_ERR_NOMEM.
 */
int mp_grpc_thread_call_track(struct mp_grpc_thread *gt, grpc_call *call);

/** Forgets a call recorded by mp_grpc_thread_call_track. Grpc thread only. */
void mp_grpc_thread_call_untrack(struct mp_grpc_thread *gt, grpc_call *call);

/**
 * Creates an insecure channel to target: "host:port", "[v6]:port",
 * "unix:/path" or "unix-abstract:name" (grpc core target syntax; a bare
 * "/path" is taken as "unix:/path"). The caller destroys it with
 * grpc_channel_destroy. Any thread. Returns NULL and sets *err (when err is
 * not NULL) on failure.
 */
grpc_channel *mp_grpc_channel_new(const char *target, char **err);

/*
 * Unary calls for request/response services (ratelimit, ext_authz).
 * done runs on the grpc thread with the gRPC status code (GRPC_STATUS_OK = 0,
 * GRPC_STATUS_DEADLINE_EXCEEDED, ...), the status message (may be empty,
 * valid only during the callback) and the serialized response (NULL unless
 * status is OK; valid only during the callback).
 */
typedef void (*mp_grpc_unary_done_fn)(void *ctx, int status, const char *message,
                                      const uint8_t *resp, size_t resp_len);

/**
 * Starts a unary call of method ("/pkg.Service/Method") on channel with the
 * serialized request (copied), deadline timeout_ms from now. Safe from any
 * thread; the call itself is made on the grpc thread. done is called exactly
 * once when 0 is returned (with GRPC_STATUS_CANCELLED if the thread stops
 * first). The channel must outlive the call. Returns 0, MP_ERR_NOMEM or
 * MP_ERR_CLOSED (done is then not called).
 */
int mp_grpc_unary_start(struct mp_grpc_thread *gt, grpc_channel *channel, const char *method,
                        const uint8_t *req, size_t req_len, int64_t timeout_ms,
                        mp_grpc_unary_done_fn done, void *ctx);

/**
 * Copies a received grpc_byte_buffer into one malloc'd block (*out, freed by
 * the caller; an empty message gives a non-NULL 1-byte block and *len 0).
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_grpc_buffer_flatten(grpc_byte_buffer *bb, uint8_t **out, size_t *len);

#endif
