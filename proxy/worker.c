/*
 * worker.c: worker threads, their listening sockets, deferred frees and
 * per-worker load-balancer state.
 */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "conn.h"
#include "lb_core.h"
#include "log.h"
#include "mp_common.h"
#include "slice.h"
#include "snapshot.h"
#include "splice_pump.h"
#include "tracing_export.h"
#include "upstream.h"
#include "xds_translate_listener.h"

struct mp_worker_listener {
    struct mp_worker_listener *next;
    struct mp_worker *w;
    const struct mp_listener_config *l;
    int fd;
    ev_io io;
};

struct mp_worker_lb {
    struct mp_lb *lb;
    struct mp_lb_worker *lbw;
};

enum msg_kind { MSG_SNAPSHOT, MSG_DRAIN };

struct mp_worker_msg {
    struct mp_worker_msg *next;
    enum msg_kind kind;
    struct mp_snapshot *snap;
    struct mp_listen_fd *fds;
    size_t n_fds;
    bool inbound_only;
};

static _Thread_local struct mp_worker *current_worker;

struct mp_worker *mp_worker_current(void)
{
    return current_worker;
}

/* ---- deferred work ------------------------------------------------------------ */

void mp_worker_defer(struct mp_worker *w, struct mp_deferred *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->next = NULL;
    *w->deferred_tail = d;
    w->deferred_tail = &d->next;
}

void mp_worker_undefer(struct mp_worker *w, struct mp_deferred *d)
{
    if (!d->queued)
        return;
    struct mp_deferred **pp = &w->deferred;
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp == d) {
        *pp = d->next;
        if (w->deferred_tail == &d->next)
            w->deferred_tail = pp;
    }
    d->queued = false;
    d->next = NULL;
}

void mp_worker_run_deferred(struct mp_worker *w)
{
    /* items queued while running are run too; bounded against livelock */
    for (int guard = 0; guard < 1000000 && w->deferred; guard++) {
        struct mp_deferred *d = w->deferred;
        w->deferred = d->next;
        if (!w->deferred)
            w->deferred_tail = &w->deferred;
        d->queued = false;
        d->next = NULL;
        d->fn(d->arg);
    }
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_worker *w = p->data;
    mp_worker_run_deferred(w);
    atomic_store_explicit(&w->conn_count, w->n_conns, memory_order_relaxed);
}

/* ---- LB state ------------------------------------------------------------------ */

struct mp_lb_worker *mp_worker_lb(struct mp_worker *w, struct mp_lb *lb)
{
    for (size_t i = 0; i < w->n_lbs; i++)
        if (w->lbs[i].lb == lb)
            return w->lbs[i].lbw;
    struct mp_worker_lb *v = realloc(w->lbs, (w->n_lbs + 1) * sizeof(*v));
    if (!v)
        return NULL;
    w->lbs = v;
    struct mp_lb_worker *lbw;
    uint64_t seed = ((uint64_t)w->index << 32) ^ (uint64_t)(uintptr_t)lb ^ (uint64_t)time(NULL);
    if (mp_lb_worker_new(lb, seed, &lbw) < 0)
        return NULL;
    v[w->n_lbs].lb = lb;
    v[w->n_lbs].lbw = lbw;
    w->n_lbs++;
    return lbw;
}

/* Drops LB state for LBs the new snapshot no longer has (requests that still
 * use one hold their own reference). */
static void lbs_prune(struct mp_worker *w, const struct mp_snapshot *snap)
{
    size_t k = 0;
    for (size_t i = 0; i < w->n_lbs; i++) {
        bool keep = false;
        for (size_t j = 0; snap && j < snap->n_clusters && !keep; j++)
            keep = snap->clusters[j].lb == (void *)w->lbs[i].lb;
        if (keep)
            w->lbs[k++] = w->lbs[i];
        else
            mp_lb_worker_unref(w->lbs[i].lbw);
    }
    w->n_lbs = k;
}

/* ---- listeners ------------------------------------------------------------------ */

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_worker_listener *wl = io->data;
    struct mp_worker *w = wl->w;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(wl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!w->snap) {
            close(fd);
            continue;
        }
        mp_conn_start(w, fd, wl->l, w->snap);
    }
}

static void listener_close(struct mp_worker *w, struct mp_worker_listener *wl)
{
    ev_io_stop(w->loop, &wl->io);
    close(wl->fd);
    free(wl);
}

static void apply_listeners(struct mp_worker *w, const struct mp_listen_fd *fds, size_t n)
{
    /* keep or close what we have */
    struct mp_worker_listener **pp = &w->listeners;
    while (*pp) {
        struct mp_worker_listener *wl = *pp;
        const struct mp_listen_fd *found = NULL;
        for (size_t i = 0; i < n && !found; i++)
            if (fds[i].fd == wl->fd)
                found = &fds[i];
        if (found) {
            wl->l = found->l;
            pp = &wl->next;
        } else {
            *pp = wl->next;
            listener_close(w, wl);
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (struct mp_worker_listener *wl = w->listeners; wl && !have; wl = wl->next)
            have = wl->fd == fds[i].fd;
        if (have)
            continue;
        struct mp_worker_listener *wl = calloc(1, sizeof(*wl));
        if (!wl) {
            close(fds[i].fd);
            continue;
        }
        wl->w = w;
        wl->l = fds[i].l;
        wl->fd = fds[i].fd;
        ev_io_init(&wl->io, accept_cb, wl->fd, EV_READ);
        wl->io.data = wl;
        if (!w->draining)
            ev_io_start(w->loop, &wl->io);
        wl->next = w->listeners;
        w->listeners = wl;
    }
}

/* ---- control messages ------------------------------------------------------------- */

static void msg_free(struct mp_worker_msg *m)
{
    mp_snapshot_unref(m->snap);
    free(m->fds);
    free(m);
}

static void handle_msgs(struct mp_worker *w)
{
    pthread_mutex_lock(&w->mu);
    struct mp_worker_msg *m = w->msgs;
    w->msgs = NULL;
    pthread_mutex_unlock(&w->mu);
    /* the queue was built newest-first: reverse to apply in order */
    struct mp_worker_msg *rev = NULL;
    while (m) {
        struct mp_worker_msg *next = m->next;
        m->next = rev;
        rev = m;
        m = next;
    }
    while (rev) {
        m = rev;
        rev = m->next;
        if (m->kind == MSG_SNAPSHOT) {
            struct mp_snapshot *old = w->snap;
            w->snap = m->snap;
            m->snap = NULL;
            apply_listeners(w, m->fds, m->n_fds);
            mp_conn_drain_stale(w, w->snap);
            lbs_prune(w, w->snap);
            mp_snapshot_unref(old);
        } else if (m->kind == MSG_DRAIN) {
            struct mp_worker_listener **pp = &w->listeners;
            while (*pp) {
                struct mp_worker_listener *wl = *pp;
                if (!m->inbound_only || wl->l->direction == MP_TRAFFIC_INBOUND) {
                    *pp = wl->next;
                    listener_close(w, wl);
                } else {
                    pp = &wl->next;
                }
            }
            w->draining = true;
            mp_conn_drain_all(w);
        }
        msg_free(m);
    }
}

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct mp_worker *w = a->data;
    if (atomic_load(&w->stop_requested)) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    handle_msgs(w);
}

static void post(struct mp_worker *w, struct mp_worker_msg *m)
{
    pthread_mutex_lock(&w->mu);
    m->next = w->msgs;
    w->msgs = m;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wake);
}

int mp_worker_post_snapshot(struct mp_worker *w, struct mp_snapshot *snap,
                            const struct mp_listen_fd *fds, size_t n)
{
    struct mp_worker_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        mp_snapshot_unref(snap);
        return MP_ERR_NOMEM;
    }
    if (n) {
        m->fds = malloc(n * sizeof(*fds));
        if (!m->fds) {
            free(m);
            mp_snapshot_unref(snap);
            return MP_ERR_NOMEM;
        }
        memcpy(m->fds, fds, n * sizeof(*fds));
    }
    m->kind = MSG_SNAPSHOT;
    m->snap = snap;
    m->n_fds = n;
    post(w, m);
    return 0;
}

void mp_worker_post_drain(struct mp_worker *w, bool inbound_only)
{
    struct mp_worker_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->kind = MSG_DRAIN;
    m->inbound_only = inbound_only;
    post(w, m);
}

uint64_t mp_worker_conn_count(const struct mp_worker *w)
{
    return atomic_load_explicit(&w->conn_count, memory_order_relaxed);
}

/* ---- thread ---------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct mp_worker *w = arg;
    current_worker = w;
    /* a superseded snapshot may hold thousands of clusters: the main
     * thread frees it, not this loop */
    if (w->server)
        mp_snapshot_set_release_hook(mp_server_release_snapshot, w->server);
    char name[16];
    snprintf(name, sizeof(name), "mp-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    mp_access_log_thread_init(1u << 20);
    handle_msgs(w);
    ev_run(w->loop, 0);
    /* shutdown: everything goes */
    mp_conn_close_all(w);
    mp_worker_run_deferred(w);
    mp_upstream_pools_free(w);
    mp_worker_run_deferred(w);
    while (w->listeners) {
        struct mp_worker_listener *wl = w->listeners;
        w->listeners = wl->next;
        listener_close(w, wl);
    }
    lbs_prune(w, NULL);
    mp_access_log_thread_exit();
    mp_tracing_thread_exit(); /* flush buffered spans while the loop exists */
    mp_slice_cache_trim();
    return NULL;
}

struct mp_worker *mp_worker_new(struct mp_server *server, unsigned index, struct mp_stats *stats)
{
    struct mp_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (!w->loop) {
        free(w);
        return NULL;
    }
    w->server = server;
    w->index = index;
    w->stats = stats;
    /* meshproxy.splice_fallback (tcp_proxy); registering again is harmless */
    if (stats)
        mp_splice_pump_register_stats(stats);
    w->deferred_tail = &w->deferred;
    pthread_mutex_init(&w->mu, NULL);
    ev_async_init(&w->wake, async_cb);
    w->wake.data = w;
    ev_async_start(w->loop, &w->wake);
    ev_prepare_init(&w->prepare, prepare_cb);
    w->prepare.data = w;
    ev_prepare_start(w->loop, &w->prepare);
    return w;
}

int mp_worker_start(struct mp_worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return MP_ERR_IO;
    return 0;
}

void mp_worker_stop_and_free(struct mp_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop_requested, true);
    ev_async_send(w->loop, &w->wake);
    pthread_join(w->thread, NULL);
    struct mp_worker_msg *m = w->msgs;
    while (m) {
        struct mp_worker_msg *next = m->next;
        msg_free(m);
        m = next;
    }
    mp_snapshot_unref(w->snap);
    free(w->lbs);
    pthread_mutex_destroy(&w->mu);
    ev_loop_destroy(w->loop);
    free(w);
}
