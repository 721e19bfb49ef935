/*
 * server.c: the main thread: start-up from the bootstrap, snapshot
 * publication, signals, drain and shutdown.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "admin.h"
#include "cluster.h"
#include "cluster_dns.h"
#include "dns_resolver.h"
#include "http_stats.h"
#include "http_stream.h"
#include "lb_core.h"
#include "log.h"
#include "mp_common.h"
#include "options.h"
#include "server_int.h"
#include "snapshot.h"
#include "stats.h"
#include "tls_config.h"
#include "tls_context.h"
#include "xds_translate_tls.h"
#include "xds_translate_cluster.h"
#include "xds_translate_listener.h"
#include "grpc_thread.h"
#include "server_dns.h"
#include "filters/http/grpc_call.h"

int (*mp_server_on_start)(struct mp_server *server, void *arg);
void *mp_server_on_start_arg;

struct ev_loop *mp_server_loop(struct mp_server *server)
{
    return server->loop;
}

enum mp_server_state mp_server_state(const struct mp_server *server)
{
    return (enum mp_server_state)atomic_load(&server->state);
}

struct mp_stats *mp_server_stats(struct mp_server *server)
{
    return server->stats;
}

unsigned mp_server_worker_count(const struct mp_server *server)
{
    return server->n_workers;
}

void mp_server_set_config_dump(struct mp_server *server,
                               void (*fn)(void *arg, struct mp_buffer *out), void *arg)
{
    server->dump_fn = fn;
    server->dump_arg = arg;
}

void mp_server_stop(struct mp_server *server)
{
    ev_async_send(server->loop, &server->wake);
    server->exit_when_drained = true;
    server->drain_deadline_us = 0; /* read by the async handler: exit now */
}

struct mp_grpc_thread *mp_server_grpc_thread(struct mp_server *server)
{
    struct mp_grpc_thread *gt = atomic_load(&server->grpc);
    if (gt)
        return gt;
    pthread_mutex_lock(&server->grpc_mu);
    gt = atomic_load(&server->grpc);
    if (!gt && mp_grpc_thread_new(&gt) == 0)
        atomic_store(&server->grpc, gt);
    pthread_mutex_unlock(&server->grpc_mu);
    return gt;
}

int mp_server_add_stop_hook(struct mp_server *server, void (*fn)(void *arg), void *arg)
{
    struct mp_srv_hook *h = malloc(sizeof(*h));
    if (!h)
        return MP_ERR_NOMEM;
    h->fn = fn;
    h->arg = arg;
    h->next = server->stop_hooks;
    server->stop_hooks = h;
    return 0;
}

void mp_server_init_hold(struct mp_server *server)
{
    server->init_held = true;
}

void mp_server_init_done(struct mp_server *server)
{
    if (!server->init_held)
        return;
    server->init_held = false;
    int expected = MP_SERVER_INITIALIZING;
    atomic_compare_exchange_strong(&server->state, &expected, MP_SERVER_LIVE);
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "initialization complete: serving");
}

/* ---- TLS secrets ----------------------------------------------------------------- */

void mp_server_set_secret_lookup(struct mp_server *server,
                                 const struct mp_tls_secret *(*fn)(void *arg, const char *name),
                                 void *arg)
{
    server->secret_lookup = fn;
    server->secret_lookup_arg = arg;
    server->secrets_gen++;
}

void mp_server_secrets_changed(struct mp_server *server)
{
    server->secrets_gen++;
}

static const struct mp_tls_secret *secret_lookup(void *arg, const char *name)
{
    struct mp_server *s = arg;
    for (size_t i = 0; i < s->n_secrets; i++)
        if (s->secrets[i]->name && strcmp(s->secrets[i]->name, name) == 0)
            return s->secrets[i];
    return s->secret_lookup ? s->secret_lookup(s->secret_lookup_arg, name) : NULL;
}

static int load_static_secrets(struct mp_server *s, char **err)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr =
        s->bootstrap->static_resources;
    if (!sr || sr->n_secrets == 0)
        return 0;
    s->secrets = calloc(sr->n_secrets, sizeof(*s->secrets));
    if (!s->secrets)
        return MP_ERR_NOMEM;
    for (size_t i = 0; i < sr->n_secrets; i++) {
        int rc = mp_xds_translate_secret(sr->secrets[i], &s->secrets[i], err);
        if (rc < 0) {
            mp_err_prefix(err, "static_resources.secrets[%zu]", i);
            return rc;
        }
        s->n_secrets = i + 1;
    }
    return 0;
}

/* ---- listening sockets --------------------------------------------------------- */

static int open_listen_socket(const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (addr->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static struct mp_srv_listener *find_srv_listener(struct mp_server *s, const char *name)
{
    for (size_t i = 0; i < s->n_listeners; i++)
        if (strcmp(s->listeners[i].name, name) == 0)
            return &s->listeners[i];
    return NULL;
}

static void srv_listener_clear(struct mp_srv_listener *l)
{
    free(l->name);
    free(l->fds);
    memset(l, 0, sizeof(*l));
}

/* ---- publication ------------------------------------------------------------------ */

/* The client TLS context of one transport socket of cluster c (plaintext:
 * nothing). A failure is logged and recorded: the hosts using it get 503s,
 * never plaintext. */
static void build_cluster_tls(struct mp_server *s, const struct mp_cluster *c,
                              const struct mp_transport_socket *ts, struct mp_tls_context **out,
                              int *error)
{
    const char *t = ts->typed_config.type_url;
    if ((!ts->name && !t) || (ts->name && strcmp(ts->name, "envoy.transport_sockets.raw_buffer") == 0) ||
        (t && strstr(t, "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer")))
        return;
    char *terr = NULL;
    struct mp_tls_config *tc = NULL;
    int rc = mp_xds_translate_tls_any(ts->typed_config.type_url, ts->typed_config.data,
                                      ts->typed_config.len, MP_TLS_CLIENT, &tc, &terr);
    if (rc == 0 && tc)
        rc = mp_tls_context_new(tc, secret_lookup, s, out, &terr);
    mp_tls_config_unref(tc);
    if (rc < 0 || !*out) {
        *error = rc < 0 ? rc : MP_ERR_INVAL;
        MP_LOG(MP_LOG_UPSTREAM, MP_LOG_WARN, "cluster %s: transport_socket %s: %s", c->name,
               ts->name, terr ? terr : "failed");
    }
    free(terr);
}

static void resolve_stats(struct mp_server *s, struct mp_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_listeners; i++) {
        struct mp_listener_config *l = snap->listeners[i];
        /* a listener shared with the snapshot in force is resolved already:
         * workers read it, so it is not written again */
        if (l->stats)
            continue;
        l->stats = mp_http_stats_listener(s->stats, l->stat_name);
        for (size_t j = 0; j <= l->n_chains; j++) {
            struct mp_filter_chain *c = j < l->n_chains ? &l->chains[j] : l->default_chain;
            if (c && c->hcm)
                c->hcm->stats = mp_http_stats_hcm(s->stats, c->hcm->stat_prefix);
            if (c && c->tcp_proxy)
                c->tcp_proxy->stats = mp_http_stats_tcp(s->stats, c->tcp_proxy->stat_prefix);
            if (c && c->tls_config && !c->tls) {
                char *terr = NULL;
                if (mp_tls_context_new(c->tls_config, secret_lookup, s, &c->tls, &terr) < 0)
                    MP_LOG(MP_LOG_CONFIG, MP_LOG_WARN, "listener %s: transport_socket: %s", l->name,
                           terr ? terr : "failed");
                free(terr);
            }
        }
    }
    for (size_t i = 0; i < snap->n_clusters; i++) {
        struct mp_snapshot_cluster *e = &snap->clusters[i];
        /* same cluster and endpoints as in force: share the LB (its
         * per-worker state survives the swap) and, while no secret changed,
         * the TLS context */
        const struct mp_snapshot_cluster *prev =
            s->current ? mp_snapshot_find_cluster_entry(s->current, e->cluster->name,
                                                        strlen(e->cluster->name))
                       : NULL;
        if (prev && prev->cluster == e->cluster) {
            if (prev->hosts == e->hosts && prev->lb && !e->lb)
                e->lb = mp_lb_ref(prev->lb);
            if (s->secrets_gen == s->current_secrets_gen && prev->tls && !e->tls)
                e->tls = mp_tls_context_ref(prev->tls);
        }
        /* the same cluster has the same stat name: no lookup under the
         * stats mutex for the clusters a push did not touch */
        const char *name = e->cluster->alt_stat_name && *e->cluster->alt_stat_name
                               ? e->cluster->alt_stat_name
                               : e->cluster->name;
        if (!e->stats)
            e->stats = prev && prev->cluster == e->cluster && prev->stats
                           ? prev->stats
                           : mp_http_stats_cluster(s->stats, name);
        if (!e->tls && !e->tls_error)
            build_cluster_tls(s, e->cluster, &e->cluster->transport_socket, &e->tls,
                              &e->tls_error);
        size_t nm = e->cluster->n_transport_socket_matches;
        if (nm && !e->match_tls) {
            e->match_tls = calloc(nm, sizeof(*e->match_tls));
            e->match_tls_error = calloc(nm, sizeof(*e->match_tls_error));
            for (size_t k = 0; k < nm && e->match_tls && e->match_tls_error; k++) {
                bool share = prev && prev->cluster == e->cluster && prev->match_tls &&
                             s->secrets_gen == s->current_secrets_gen;
                if (share && prev->match_tls[k])
                    e->match_tls[k] = mp_tls_context_ref(prev->match_tls[k]);
                else
                    build_cluster_tls(s, e->cluster, &e->cluster->transport_socket_matches[k].socket,
                                      &e->match_tls[k], &e->match_tls_error[k]);
            }
        }
        if (!e->lb && e->hosts && e->hosts->n_hosts > 0) {
            char *err = NULL;
            struct mp_lb *lb = NULL;
            if (mp_lb_new(&e->cluster->lb, e->hosts, &lb, &err) == 0)
                e->lb = lb;
            else
                MP_LOG(MP_LOG_UPSTREAM, MP_LOG_WARN, "cluster %s: load balancer: %s",
                       e->cluster->name, err ? err : "failed");
            free(err);
        }
    }
}

void mp_snapshot_prepare_stats(struct mp_server *s, struct mp_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_clusters; i++) {
        struct mp_snapshot_cluster *e = &snap->clusters[i];
        const char *name = e->cluster->alt_stat_name && *e->cluster->alt_stat_name
                               ? e->cluster->alt_stat_name
                               : e->cluster->name;
        if (!e->stats)
            e->stats = mp_http_stats_cluster(s->stats, name);
    }
}

int mp_snapshot_publish(struct mp_server *s, struct mp_snapshot *snap, char **err)
{
    int rc = 0;
    mp_snapshot_seal(snap);
    if (mp_server_dns_sync(s, &s->dns, snap) < 0)
        MP_LOG(MP_LOG_UPSTREAM, MP_LOG_WARN, "out of memory: DNS refresh not running");
    resolve_stats(s, snap);
    /* open sockets for listeners that are new or moved */
    size_t n = snap->n_listeners;
    struct mp_srv_listener *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) {
        mp_snapshot_unref(snap);
        return MP_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct mp_listener_config *l = snap->listeners[i];
        if (!l->bind_to_port)
            continue;
        struct mp_srv_listener *old = find_srv_listener(s, l->name);
        struct mp_srv_listener *nl = &next[k];
        nl->name = strdup(l->name);
        nl->addr = l->addr;
        nl->addr_len = l->addr_len;
        nl->direction = l->direction;
        nl->fds = calloc(s->n_workers, sizeof(int));
        if (!nl->name || !nl->fds) {
            rc = MP_ERR_NOMEM;
            k++;
            goto fail;
        }
        k++;
        if (old && old->addr_len == l->addr_len && memcmp(&old->addr, &l->addr, l->addr_len) == 0) {
            memcpy(nl->fds, old->fds, s->n_workers * sizeof(int));
            continue;
        }
        for (unsigned w = 0; w < s->n_workers; w++)
            nl->fds[w] = -1;
        for (unsigned w = 0; w < s->n_workers; w++) {
            nl->fds[w] = open_listen_socket(&l->addr, l->addr_len);
            if (nl->fds[w] < 0) {
                rc = mp_set_err(err, "listener %s: cannot listen on %s: %s", l->name, l->stat_name,
                                strerror(errno));
                rc = MP_ERR_IO;
                goto fail;
            }
        }
    }
    /* hand it over */
    for (unsigned w = 0; w < s->n_workers; w++) {
        struct mp_listen_fd *fds = calloc(k ? k : 1, sizeof(*fds));
        if (!fds) {
            rc = MP_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < k; i++) {
            fds[i].l = mp_snapshot_find_listener(snap, next[i].name);
            fds[i].fd = next[i].fds[w];
        }
        mp_worker_post_snapshot(s->workers[w], mp_snapshot_ref(snap), fds, k);
        free(fds);
    }
    for (size_t i = 0; i < s->n_listeners; i++)
        srv_listener_clear(&s->listeners[i]);
    free(s->listeners);
    s->listeners = next;
    s->n_listeners = k;
    mp_snapshot_unref(s->current);
    s->current = snap;
    s->current_secrets_gen = s->secrets_gen;
    snap->version = ++s->version;
    return 0;
fail:
    /* close only the sockets this call opened */
    for (size_t i = 0; i < k; i++) {
        struct mp_srv_listener *old = next[i].name ? find_srv_listener(s, next[i].name) : NULL;
        bool reused = old && next[i].fds && old->fds && old->fds[0] == next[i].fds[0];
        if (!reused && next[i].fds)
            for (unsigned w = 0; w < s->n_workers; w++)
                if (next[i].fds[w] > 0)
                    close(next[i].fds[w]);
        srv_listener_clear(&next[i]);
    }
    free(next);
    mp_snapshot_unref(snap);
    return rc;
}

struct mp_snapshot *mp_server_current_snapshot(struct mp_server *s)
{
    return s->current ? mp_snapshot_ref(s->current) : NULL;
}

/* ---- the first snapshot --------------------------------------------------------------- */

/* STRICT_DNS / LOGICAL_DNS clusters of the bootstrap are resolved once here. */
static int resolve_dns_cluster(struct mp_snapshot *snap, struct mp_cluster *c)
{
    struct mp_host_set *hs = NULL;
    size_t failed = 0;
    int rc = mp_cluster_dns_resolve_now(c, &hs, &failed);
    if (failed)
        MP_LOG(MP_LOG_UPSTREAM, MP_LOG_WARN, "cluster %s: %zu of %zu DNS names did not resolve",
               c->name, failed, c->n_dns_targets);
    return rc < 0 ? rc : mp_snapshot_set_hosts(snap, c->name, hs);
}

static int build_static_snapshot(struct mp_server *s, struct mp_snapshot **out, char **err)
{
    struct mp_snapshot *snap = mp_snapshot_new();
    if (!snap)
        return MP_ERR_NOMEM;
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr =
        s->bootstrap->static_resources;
    int rc = 0;
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        struct mp_cluster *c = NULL;
        rc = mp_cluster_from_proto(sr->clusters[i], &c, err);
        if (rc < 0) {
            mp_err_prefix(err, "static_resources.clusters[%zu]", i);
            goto fail;
        }
        rc = mp_snapshot_add_cluster(snap, c);
        if (rc < 0) {
            rc = mp_set_err(err, "static_resources.clusters[%zu]: duplicate cluster name", i);
            goto fail;
        }
        const struct mp_cluster *added = snap->clusters[snap->n_clusters - 1].cluster;
        if (added->type == MP_CLUSTER_STRICT_DNS || added->type == MP_CLUSTER_LOGICAL_DNS)
            resolve_dns_cluster(snap, (struct mp_cluster *)added);
    }
    for (size_t i = 0; sr && i < sr->n_listeners; i++) {
        struct mp_listener_config *l = NULL;
        rc = mp_xds_translate_listener(sr->listeners[i], &l, err);
        if (rc < 0) {
            mp_err_prefix(err, "static_resources.listeners[%zu]", i);
            goto fail;
        }
        rc = mp_snapshot_add_listener(snap, l);
        if (rc < 0) {
            rc = mp_set_err(err, "static_resources.listeners[%zu]: duplicate listener name", i);
            goto fail;
        }
    }
    *out = snap;
    return 0;
fail:
    mp_snapshot_unref(snap);
    return rc < 0 ? rc : MP_ERR_INVAL;
}

/* ---- main loop events ------------------------------------------------------------------ */

static void flush_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    mp_access_log_flush_all();
}

static void stats_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_server *s = t->data;
    mp_stats_flush(s->stats);
}

static uint64_t total_conns(struct mp_server *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < s->n_workers; i++)
        n += mp_worker_conn_count(s->workers[i]);
    return n;
}

static void drain_check_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct mp_server *s = t->data;
    if (!s->exit_when_drained)
        return;
    if (total_conns(s) == 0 || mp_now_us() >= s->drain_deadline_us)
        ev_break(loop, EVBREAK_ALL);
}

void mp_server_release_snapshot(void *arg, struct mp_snapshot *snap)
{
    struct mp_server *s = arg;
    struct mp_snapshot *head = atomic_load_explicit(&s->released, memory_order_relaxed);
    do
        snap->release_next = head;
    while (!atomic_compare_exchange_weak_explicit(&s->released, &head, snap, memory_order_release,
                                                  memory_order_relaxed));
    ev_async_send(s->loop, &s->wake);
}

/* The main thread takes the whole list at once, so pushes never race a pop. */
static void free_released(struct mp_server *s)
{
    struct mp_snapshot *snap = atomic_exchange_explicit(&s->released, NULL, memory_order_acquire);
    while (snap) {
        struct mp_snapshot *next = snap->release_next;
        mp_snapshot_free(snap);
        snap = next;
    }
}

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct mp_server *s = a->data;
    free_released(s);
    mp_access_log_flush_all();
    if (s->exit_when_drained && s->drain_deadline_us == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void wake_main(void *arg)
{
    struct mp_server *s = arg;
    ev_async_send(s->loop, &s->wake);
}

void mp_server_drain(struct mp_server *s, bool inbound_only, bool exit_when_drained)
{
    atomic_store(&s->state, MP_SERVER_DRAINING);
    for (unsigned i = 0; i < s->n_workers; i++)
        mp_worker_post_drain(s->workers[i], inbound_only);
    /* the workers close the sockets of drained listeners: forget them */
    size_t k = 0;
    for (size_t i = 0; i < s->n_listeners; i++) {
        if (!inbound_only || s->listeners[i].direction == MP_TRAFFIC_INBOUND)
            srv_listener_clear(&s->listeners[i]);
        else
            s->listeners[k++] = s->listeners[i];
    }
    s->n_listeners = k;
    if (exit_when_drained && !s->exit_when_drained) {
        s->exit_when_drained = true;
        uint32_t secs = s->opts ? s->opts->drain_time_s : 600;
        s->drain_deadline_us = mp_now_us() + (int64_t)secs * 1000000;
        ev_timer_init(&s->drain_timer, drain_check_cb, 0.05, 0.05);
        s->drain_timer.data = s;
        ev_timer_start(s->loop, &s->drain_timer);
    }
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_server *s = w->data;
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "caught signal %d: draining", w->signum);
    if (s->exit_when_drained) {
        /* a second signal: stop now */
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    mp_server_drain(s, false, true);
}

/* Server gauges Envoy publishes and Istio's agent polls (server.state, ...). */
static uint64_t stat_state(void *arg)
{
    /* Envoy's numbering: LIVE 0, DRAINING 1, PRE_INITIALIZING 2, INITIALIZING 3 */
    switch (mp_server_state(arg)) {
    case MP_SERVER_LIVE: return 0;
    case MP_SERVER_DRAINING: return 1;
    case MP_SERVER_PRE_INITIALIZING: return 2;
    default: return 3;
    }
}

static uint64_t stat_live(void *arg)
{
    return mp_server_state(arg) == MP_SERVER_LIVE;
}

static uint64_t stat_uptime(void *arg)
{
    struct mp_server *s = arg;
    return (uint64_t)((mp_wall_us() - s->start_wall_us) / 1000000);
}

static uint64_t stat_concurrency(void *arg)
{
    return ((struct mp_server *)arg)->n_workers;
}

static uint64_t stat_workers_started(void *arg)
{
    return mp_server_state(arg) != MP_SERVER_INITIALIZING;
}

static uint64_t stat_connections(void *arg)
{
    return total_conns(arg);
}

static void register_server_stats(struct mp_server *s)
{
    mp_stats_register_fn(s->stats, "server.state", true, stat_state, s);
    mp_stats_register_fn(s->stats, "server.live", true, stat_live, s);
    mp_stats_register_fn(s->stats, "server.uptime", true, stat_uptime, s);
    mp_stats_register_fn(s->stats, "server.concurrency", true, stat_concurrency, s);
    mp_stats_register_fn(s->stats, "server.total_connections", true, stat_connections, s);
    mp_stats_register_fn(s->stats, "listener_manager.workers_started", true, stat_workers_started,
                         s);
}

static int admin_address(const Envoy__Config__Bootstrap__V3__Bootstrap *b,
                         struct sockaddr_storage *ss, socklen_t *len)
{
    if (!b->admin || !b->admin->address ||
        b->admin->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
        return MP_ERR_NOTFOUND;
    const Envoy__Config__Core__V3__SocketAddress *sa = b->admin->address->socket_address;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, sa->address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)sa->port_value);
        *len = sizeof(*in);
    } else if (inet_pton(AF_INET6, sa->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)sa->port_value);
        *len = sizeof(*in6);
    } else {
        return MP_ERR_INVAL;
    }
    return 0;
}

int mp_server_run(const struct mp_options *opts, Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap)
{
    struct mp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return MP_ERR_NOMEM;
    int rc = 0;
    char *err = NULL;
    s->opts = opts;
    s->bootstrap = bootstrap;
    s->start_wall_us = mp_wall_us();
    pthread_mutex_init(&s->grpc_mu, NULL);
    atomic_init(&s->state, MP_SERVER_INITIALIZING);
    signal(SIGPIPE, SIG_IGN);
    s->loop = ev_default_loop(EVFLAG_AUTO);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    s->n_workers =
        opts && opts->concurrency ? opts->concurrency : (unsigned)(nproc > 0 ? nproc : 1);
    s->stats = mp_stats_new(s->n_workers);
    s->workers = calloc(s->n_workers, sizeof(*s->workers));
    if (!s->stats || !s->workers) {
        rc = MP_ERR_NOMEM;
        goto out;
    }
    register_server_stats(s);
    ev_async_init(&s->wake, async_cb);
    s->wake.data = s;
    ev_async_start(s->loop, &s->wake);
    mp_access_log_set_wakeup(wake_main, s);
    for (unsigned i = 0; i < s->n_workers; i++) {
        s->workers[i] = mp_worker_new(s, i, s->stats);
        if (!s->workers[i] || mp_worker_start(s->workers[i]) < 0) {
            /* only started workers are joined at the end */
            s->n_workers = i;
            rc = MP_ERR_NOMEM;
            goto out;
        }
    }
    struct mp_snapshot *snap = NULL;
    rc = load_static_secrets(s, &err);
    if (rc < 0) {
        fprintf(stderr, "meshproxy: %s\n", err ? err : mp_strerror(rc));
        goto out;
    }
    rc = build_static_snapshot(s, &snap, &err);
    if (rc < 0) {
        fprintf(stderr, "meshproxy: %s\n", err ? err : mp_strerror(rc));
        goto out;
    }
    rc = mp_snapshot_publish(s, snap, &err);
    if (rc < 0) {
        fprintf(stderr, "meshproxy: %s\n", err ? err : mp_strerror(rc));
        goto out;
    }
    struct sockaddr_storage aa;
    socklen_t alen;
    if (admin_address(bootstrap, &aa, &alen) == 0) {
        rc = mp_admin_start(s, (struct sockaddr *)&aa, alen, &s->admin, &err);
        if (rc < 0) {
            fprintf(stderr, "meshproxy: admin: %s\n", err ? err : mp_strerror(rc));
            goto out;
        }
    }
    if (mp_server_on_start) {
        rc = mp_server_on_start(s, mp_server_on_start_arg);
        if (rc < 0)
            goto out;
    }
    ev_signal_init(&s->sigterm, signal_cb, SIGTERM);
    ev_signal_init(&s->sigint, signal_cb, SIGINT);
    s->sigterm.data = s->sigint.data = s;
    ev_signal_start(s->loop, &s->sigterm);
    ev_signal_start(s->loop, &s->sigint);
    double flush =
        (opts && opts->file_flush_interval_msec ? opts->file_flush_interval_msec : 10000) / 1000.0;
    ev_timer_init(&s->flush_timer, flush_cb, flush, flush);
    ev_timer_start(s->loop, &s->flush_timer);
    double sflush = 5.0;
    if (bootstrap->stats_flush_interval)
        sflush = (double)bootstrap->stats_flush_interval->seconds +
                 bootstrap->stats_flush_interval->nanos / 1e9;
    if (sflush <= 0)
        sflush = 5.0;
    ev_timer_init(&s->stats_timer, stats_cb, sflush, sflush);
    s->stats_timer.data = s;
    ev_timer_start(s->loop, &s->stats_timer);
    if (!s->init_held)
        atomic_store(&s->state, MP_SERVER_LIVE);
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "meshproxy started: %u workers", s->n_workers);
    ev_run(s->loop, 0);
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "meshproxy exiting");
    rc = 0;
out:
    free(err);
    while (s->stop_hooks) {
        struct mp_srv_hook *h = s->stop_hooks;
        s->stop_hooks = h->next;
        h->fn(h->arg);
        free(h);
    }
    if (s->admin)
        mp_admin_free(s->admin);
    for (unsigned i = 0; s->workers && i < s->n_workers; i++)
        mp_worker_stop_and_free(s->workers[i]);
    free_released(s);
    /* after the workers: their filters may have had calls on it */
    if (atomic_load(&s->grpc))
        mp_grpc_call_channels_release(atomic_load(&s->grpc));
    mp_grpc_thread_free(atomic_load(&s->grpc));
    mp_access_log_flush_all();
    mp_access_log_set_wakeup(NULL, NULL);
    for (size_t i = 0; i < s->n_listeners; i++) {
        /* sockets of a listener never handed to a worker are ours to close */
        srv_listener_clear(&s->listeners[i]);
    }
    free(s->listeners);
    mp_server_dns_free(s->dns);
    mp_snapshot_unref(s->current);
    free_released(s);
    free(s->workers);
    for (size_t i = 0; i < s->n_secrets; i++)
        mp_tls_secret_unref(s->secrets[i]);
    free(s->secrets);
    mp_http_stats_free_all();
    mp_stats_free(s->stats);
    ev_loop_destroy(s->loop);
    pthread_mutex_destroy(&s->grpc_mu);
    free(s);
    return rc;
}
