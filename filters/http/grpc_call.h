/*
 * grpc_call.h: unary gRPC calls made by HTTP filters (ext_authz, ratelimit)
 * from a worker thread, answered on that worker's own loop.
 *
 * The call itself runs on the process's one grpc thread (xds/grpc_thread.h):
 * the worker posts it there (a short mutex inside mp_grpc_thread_post), the
 * grpc thread finds or makes the channel for the target in its per-target
 * cache and starts the call, and the answer comes back through a per-worker
 * lock-free queue and an ev_async on the worker's loop. The filter that
 * started a call can cancel it at any time (stream reset): its callback then
 * never runs, and the result is dropped when it arrives.
 *
 * Cached channels idle for a minute are destroyed on the grpc thread, so
 * endpoint churn does not pile them up.
 */
#ifndef MP_FILTER_GRPC_CALL_H
#define MP_FILTER_GRPC_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct mp_grpc_thread;
struct mp_grpc_call;

/*
 * The answer of a call, on the thread and loop that started it. status is the
 * gRPC status (0 = OK; GRPC_STATUS_UNAVAILABLE when no channel could be made,
 * GRPC_STATUS_DEADLINE_EXCEEDED on timeout), message the status message (never
 * NULL), resp/len the serialized response (NULL unless status is 0). All are
 * valid only during the callback.
 */
typedef void (*mp_grpc_call_done_fn)(void *arg, int status, const char *message,
                                     const uint8_t *resp, size_t len);

/**
 * Starts a unary call of method ("/pkg.Service/Method", a string that
 * outlives the call, e.g. a literal) to target ("ip:port", "[v6]:port",
 * "unix:/path" or "/path") with the serialized request req[0..len) (copied),
 * timeout_ms from now. Must be called on the thread that runs loop (a worker);
 * done(arg, ...) later runs there, from loop, exactly once unless the call is
 * cancelled first. *out receives the handle, valid until done runs or
 * mp_grpc_call_cancel. Returns 0, MP_ERR_NOMEM, or MP_ERR_CLOSED when the grpc
 * thread is stopping (done is then never called).
 */
int mp_grpc_call_start(struct ev_loop *loop, struct mp_grpc_thread *gt, const char *target,
                       const char *method, const uint8_t *req, size_t len, int64_t timeout_ms,
                       mp_grpc_call_done_fn done, void *arg, struct mp_grpc_call **out);

/**
 * Abandons call (from the thread that started it, before its done ran): done
 * will not be called; the result is freed when it arrives. NULL is a no-op.
 */
void mp_grpc_call_cancel(struct mp_grpc_call *call);

/**
 * Ends this thread's use of grpc calls: the per-thread answer queue is closed
 * (answers still to come are dropped on the grpc thread) and its watcher
 * stopped. Runs by itself when a worker thread exits; call it explicitly on
 * a thread that does not exit (tests, main thread) before destroying its loop.
 */
void mp_grpc_call_thread_exit(void);

/**
 * Destroys every channel cached for gt (calls still running finish: grpc
 * keeps what they use alive). Call once the workers have stopped and before
 * mp_grpc_thread_free, so no channel outlives grpc_shutdown; a call started
 * later would make a fresh channel, which only another release frees. From
 * any thread but gt's own (it waits for the grpc thread). NULL is a no-op.
 */
void mp_grpc_call_channels_release(struct mp_grpc_thread *gt);

#endif
