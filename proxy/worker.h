/*
 * worker.h: one worker thread = one libev loop that owns its connections.
 *
 * Each worker opens its own SO_REUSEPORT socket per listener, so the kernel
 * spreads connections and no lock is taken to accept. The main thread hands
 * a new snapshot over with mp_worker_post_snapshot (an atomic pointer and an
 * ev_async); the worker swaps its current pointer between events. Objects
 * that must not be freed while a callback of theirs is on the stack are
 * queued with mp_worker_defer and freed in the loop's prepare phase.
 */
#ifndef MP_WORKER_H
#define MP_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct mp_server;
struct mp_snapshot;
struct mp_stats;
struct mp_cluster;
struct mp_listener_config;

/** A deferred action: run fn(arg) at the next safe point (prepare phase). */
struct mp_deferred {
    struct mp_deferred *next;
    void (*fn)(void *arg);
    void *arg;
    bool queued;
};

struct mp_worker_listener; /* worker.c: one socket of one listener */
struct mp_pool_set;        /* upstream pools of this worker (upstream.c) */
struct mp_worker_lb;
struct mp_conn;
struct mp_worker_msg;

struct mp_worker {
    struct mp_server *server;
    unsigned index; /* also the stats slot */
    struct ev_loop *loop;
    pthread_t thread;
    struct mp_stats *stats;

    struct mp_snapshot *snap; /* current; the worker holds one reference */
    ev_async wake;
    pthread_mutex_t mu; /* guards the control message queue only (never the request path) */
    struct mp_worker_msg *msgs;
    _Atomic bool stop_requested;
    _Atomic uint64_t conn_count; /* for other threads to read */
    bool draining;

    struct mp_worker_listener *listeners; /* list */
    struct mp_conn *conns;                /* downstream connections (list) */
    uint64_t n_conns;
    struct mp_pool_set *pools;
    struct mp_worker_lb *lbs; /* per-LB state of this worker (worker.c) */
    size_t n_lbs;

    ev_prepare prepare;
    struct mp_deferred *deferred;
    struct mp_deferred **deferred_tail;
    uint64_t next_stream_id;
};

/** Makes worker index (not started). Returns NULL on NOMEM. */
struct mp_worker *mp_worker_new(struct mp_server *server, unsigned index, struct mp_stats *stats);

/** Starts the worker's thread. Returns 0 or MP_ERR_IO. */
int mp_worker_start(struct mp_worker *w);

/** One listening socket handed to a worker: the listener config it serves and its fd. */
struct mp_listen_fd {
    const struct mp_listener_config *l; /* lives in the snapshot posted with it */
    int fd;
};

/**
 * Hands snap to the worker (main thread; takes over one reference) with the
 * listening sockets it must serve from now on (fds[0..n), copied). The
 * worker starts accepting on fds it does not have, closes the ones it has
 * that are not listed, and uses snap for new connections and requests.
 * Returns 0 or MP_ERR_NOMEM (then nothing changes and snap is released).
 */
int mp_worker_post_snapshot(struct mp_worker *w, struct mp_snapshot *snap,
                            const struct mp_listen_fd *fds, size_t n);

/** Asks the worker to drain (stop accepting, GOAWAY / close idle connections). Any thread. */
void mp_worker_post_drain(struct mp_worker *w, bool inbound_only);

/** Asks the worker to stop, waits for its thread, frees it. Main thread. */
void mp_worker_stop_and_free(struct mp_worker *w);

/** Number of open downstream connections (read from any thread; approximate). */
uint64_t mp_worker_conn_count(const struct mp_worker *w);

/** Queues d to run at the worker's next prepare phase (once, even if queued twice). */
void mp_worker_defer(struct mp_worker *w, struct mp_deferred *d);

/** Runs everything queued with mp_worker_defer now (shutdown paths). */
void mp_worker_run_deferred(struct mp_worker *w);

/** Removes d from the deferred queue if it is queued (before freeing its owner). */
void mp_worker_undefer(struct mp_worker *w, struct mp_deferred *d);

struct mp_lb;
struct mp_lb_worker;

/**
 * Returns this worker's load-balancer state for lb (created on first use,
 * owned by the worker; take a reference with mp_lb_worker_ref to keep it
 * past the next snapshot swap). NULL on NOMEM.
 */
struct mp_lb_worker *mp_worker_lb(struct mp_worker *w, struct mp_lb *lb);

/** Returns the worker running on the calling thread, or NULL on other threads. */
struct mp_worker *mp_worker_current(void);

#endif
