/*
 * tracing_export.c: per-worker span buffers and their flush (Zipkin HTTP POST
 * on the worker's loop, OTLP through the grpc thread).
 */
#include "tracing_export.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "filters/http/filter_route.h"
#include "filters/http/grpc_call.h"
#include "http_stream.h"
#include "mp_common.h"
#include "server.h"
#include "stats.h"
#include "tracing_otel.h"
#include "tracing_zipkin.h"
#include "worker.h"

#define MAX_INFLIGHT       8    /* per thread; more flushes drop their spans */
#define EXPORT_TIMEOUT_S   5.0  /* a collector slower than this loses the batch */
#define MAX_BUFFERED_SPANS 1000 /* a collector that cannot keep up loses spans */

/* One collector's buffer on this thread. */
struct sink {
    struct sink *next;
    enum mp_tracing_provider provider;
    char *cluster;
    char *endpoint; /* zipkin */
    char *hostname; /* zipkin */
    char *service;  /* otel */
    uint64_t timeout_ms;
    struct mp_trace_buf body; /* zipkin: span objects joined by ','; otel: framed Spans */
    size_t n_spans;
    char target[300]; /* a collector host as last resolved ("ip:port") */
};

/* One Zipkin POST in flight. */
struct post {
    struct post *next;
    int fd;
    ev_io io;
    ev_timer timer;
    char *req;
    size_t len, off;
    char head[16]; /* the answer's first bytes: "HTTP/1.1 202" */
    size_t head_len;
};

/* Envoy's tracer stats (tracing.zipkin.*, tracing.opentelemetry.*), per provider. */
enum {
    ST_SPANS_SENT,
    ST_TIMER_FLUSHED,
    ST_REPORTS_SENT,
    ST_REPORTS_DROPPED,
    ST_REPORTS_FAILED,
    ST_SKIPPED_NO_CLUSTER,
    ST_N
};

/* One OTLP call in flight. */
struct call {
    struct call *next;
    struct mp_grpc_call *handle;
};

struct tstate {
    struct ev_loop *loop;
    struct mp_worker *worker;
    ev_timer flush;
    bool timer_ready;
    struct sink *sinks;
    struct post *posts;
    struct call *calls;
    size_t n_inflight;
    uint64_t dropped;
    struct mp_counter *stats[2][ST_N]; /* [provider - 1] */
    bool stats_ready;
};

static _Thread_local struct tstate T;

static void count(enum mp_tracing_provider p, int which, uint64_t n)
{
    if (T.stats_ready && T.worker)
        mp_counter_inc(T.stats[p - 1][which], T.worker->index, n);
}

static void stats_init(void)
{
    static const char *const prov[] = {"zipkin", "opentelemetry"};
    static const char *const names[] = {"spans_sent",     "timer_flushed",
                                        "reports_sent",   "reports_dropped",
                                        "reports_failed", "reports_skipped_no_cluster"};
    if (T.stats_ready || !T.worker || !T.worker->stats)
        return;
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < ST_N; i++)
            T.stats[p][i] = mp_stats_counterf(T.worker->stats, "tracing.%s.%s", prov[p], names[i]);
    T.stats_ready = true;
}

uint64_t mp_tracing_thread_dropped(void)
{
    return T.dropped;
}

int mp_tracing_zipkin_request(const char *endpoint, const char *host, const char *body,
                              size_t body_len, char **out, size_t *len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     endpoint, host, body_len + 2);
    if (n < 0 || (size_t)n >= sizeof(head))
        return MP_ERR_INVAL;
    char *r = malloc((size_t)n + body_len + 3);
    if (!r)
        return MP_ERR_NOMEM;
    memcpy(r, head, (size_t)n);
    r[n] = '[';
    memcpy(r + n + 1, body, body_len);
    r[(size_t)n + 1 + body_len] = ']';
    r[(size_t)n + 2 + body_len] = '\0';
    *out = r;
    *len = (size_t)n + body_len + 2;
    return 0;
}

static void sink_free(struct sink *k)
{
    free(k->cluster);
    free(k->endpoint);
    free(k->hostname);
    free(k->service);
    mp_trace_buf_free(&k->body);
    free(k);
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static struct sink *sink_for(const struct mp_tracing_config *cfg)
{
    for (struct sink *k = T.sinks; k; k = k->next)
        if (k->provider == cfg->provider && same(k->cluster, cfg->collector_cluster) &&
            same(k->endpoint, cfg->collector_endpoint) &&
            same(k->hostname, cfg->collector_hostname) && same(k->service, cfg->service_name))
            return k;
    struct sink *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    bool oom = false;
    k->provider = cfg->provider;
    k->cluster = dup_or_null(cfg->collector_cluster, &oom);
    k->endpoint = dup_or_null(cfg->collector_endpoint, &oom);
    k->hostname = dup_or_null(cfg->collector_hostname, &oom);
    k->service = dup_or_null(cfg->service_name, &oom);
    k->timeout_ms = cfg->timeout_ms;
    if (oom) {
        sink_free(k);
        return NULL;
    }
    k->next = T.sinks;
    T.sinks = k;
    return k;
}

/* ---- Zipkin POST ----------------------------------------------------------- */

static void post_free(struct post *p)
{
    if (T.loop) {
        ev_io_stop(T.loop, &p->io);
        ev_timer_stop(T.loop, &p->timer);
    }
    if (p->fd >= 0)
        close(p->fd);
    for (struct post **pp = &T.posts; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            T.n_inflight--;
            break;
        }
    }
    free(p->req);
    free(p);
}

/* The POST is over: Envoy counts a 2xx answer as sent, another as dropped. */
static void post_done(struct post *p)
{
    if (p->head_len >= 10 && memcmp(p->head, "HTTP/1.", 7) == 0)
        count(MP_TRACING_ZIPKIN, p->head[9] == '2' ? ST_REPORTS_SENT : ST_REPORTS_DROPPED, 1);
    else
        count(MP_TRACING_ZIPKIN, ST_REPORTS_FAILED, 1);
    post_free(p);
}

static void post_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct post *p = w->data;
    if (p->off < p->len) {
        ssize_t n = send(p->fd, p->req + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            post_done(p);
            return;
        }
        p->off += (size_t)n;
        if (p->off == p->len) {
            /* read the answer to its end, so the collector is not reset mid-reply */
            ev_io_stop(loop, &p->io);
            ev_io_set(&p->io, p->fd, EV_READ);
            ev_io_start(loop, &p->io);
        }
        return;
    }
    char buf[1024];
    ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0 && p->head_len < sizeof(p->head)) {
        size_t take = MP_MIN((size_t)n, sizeof(p->head) - p->head_len);
        memcpy(p->head + p->head_len, buf, take);
        p->head_len += take;
    }
    if (n <= 0)
        post_done(p); /* answer complete (Connection: close) or failed: either way done */
}

static void post_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    post_done(t->data);
}

static int zipkin_start_post(struct sink *k)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (mp_parse_ip_port(k->target, &ss, &sl) < 0)
        return MP_ERR_NOTFOUND;
    struct post *p = calloc(1, sizeof(*p));
    if (!p)
        return MP_ERR_NOMEM;
    p->fd = -1;
    int rc = mp_tracing_zipkin_request(k->endpoint, k->hostname, k->body.p, k->body.len, &p->req,
                                       &p->len);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0 || (connect(p->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
        if (p->fd >= 0)
            close(p->fd);
        free(p->req);
        free(p);
        return MP_ERR_IO;
    }
    ev_io_init(&p->io, post_io_cb, p->fd, EV_WRITE);
    p->io.data = p;
    ev_timer_init(&p->timer, post_timeout_cb, EXPORT_TIMEOUT_S, 0);
    p->timer.data = p;
    ev_io_start(T.loop, &p->io);
    ev_timer_start(T.loop, &p->timer);
    p->next = T.posts;
    T.posts = p;
    T.n_inflight++;
    return 0;
}

/* Blocking send for worker exit: the loop will not run again. */
static void zipkin_post_blocking(struct sink *k)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char *req;
    size_t len;
    if (mp_parse_ip_port(k->target, &ss, &sl) < 0 ||
        mp_tracing_zipkin_request(k->endpoint, k->hostname, k->body.p, k->body.len, &req, &len) < 0)
        return;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int64_t deadline = mp_now_us() + 1000000;
    if (fd >= 0 && (connect(fd, (struct sockaddr *)&ss, sl) == 0 || errno == EINPROGRESS)) {
        size_t off = 0;
        bool sent = false;
        while (mp_now_us() < deadline) {
            struct pollfd pfd = {.fd = fd, .events = sent ? POLLIN : POLLOUT};
            int left = (int)((deadline - mp_now_us()) / 1000);
            if (poll(&pfd, 1, left > 0 ? left : 1) <= 0)
                continue;
            if (!sent) {
                ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0)
                    break;
                off += (size_t)n;
                sent = off == len;
            } else {
                char buf[512];
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0)
                    break;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    free(req);
}

/* ---- OTLP call ------------------------------------------------------------- */

static void call_done(void *arg, int status, const char *message, const uint8_t *resp, size_t len)
{
    (void)message;
    (void)resp;
    (void)len;
    count(MP_TRACING_OTEL, status == 0 ? ST_REPORTS_SENT : ST_REPORTS_FAILED, 1);
    struct call *c = arg;
    for (struct call **pp = &T.calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            T.n_inflight--;
            break;
        }
    }
    free(c);
}

static int otel_start_call(struct sink *k)
{
    if (!T.worker)
        return MP_ERR_NOTFOUND;
    struct mp_trace_buf req;
    int rc = mp_otel_export_request(&k->body, k->service ? k->service : mp_tracing_local_service(),
                                    &req);
    if (rc < 0)
        return rc;
    struct call *c = calloc(1, sizeof(*c));
    if (!c) {
        mp_trace_buf_free(&req);
        return MP_ERR_NOMEM;
    }
    struct mp_grpc_thread *gt = mp_server_grpc_thread(T.worker->server);
    rc = gt ? mp_grpc_call_start(T.loop, gt, k->target, MP_OTLP_EXPORT_METHOD,
                                 (const uint8_t *)req.p, req.len, (int64_t)k->timeout_ms, call_done,
                                 c, &c->handle)
            : MP_ERR_NOTFOUND;
    mp_trace_buf_free(&req);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->next = T.calls;
    T.calls = c;
    T.n_inflight++;
    return 0;
}

/* ---- flush ----------------------------------------------------------------- */

/* The collector's address from the worker's configuration (one pick of the
 * cluster's load balancer per flush); a google_grpc target_uri is used as it
 * is. On failure the last address stays. */
static void resolve(struct sink *k, const struct mp_snapshot *snap)
{
    char target[sizeof(k->target)];
    if (T.worker && snap &&
        mp_filter_cluster_target(T.worker, snap, k->cluster, target, sizeof(target)) == 0)
        memcpy(k->target, target, sizeof(target));
    else if (k->provider == MP_TRACING_OTEL && strlen(k->cluster) < sizeof(target))
        strcpy(k->target, k->cluster);
}

static void sink_flush(struct sink *k)
{
    if (k->n_spans == 0)
        return;
    resolve(k, T.worker ? T.worker->snap : NULL);
    int rc = MP_ERR_LIMIT;
    if (!k->target[0])
        rc = MP_ERR_NOTFOUND;
    else if (!k->body.oom && T.n_inflight < MAX_INFLIGHT && T.loop)
        rc = k->provider == MP_TRACING_ZIPKIN ? zipkin_start_post(k) : otel_start_call(k);
    if (rc == 0) {
        count(k->provider, ST_SPANS_SENT, k->n_spans);
    } else {
        T.dropped += k->n_spans;
        count(k->provider, rc == MP_ERR_NOTFOUND ? ST_SKIPPED_NO_CLUSTER : ST_REPORTS_FAILED, 1);
    }
    k->n_spans = 0;
    k->body.len = 0;
    k->body.oom = false;
}

static void flush_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    for (struct sink *k = T.sinks; k; k = k->next) {
        if (k->n_spans)
            count(k->provider, ST_TIMER_FLUSHED, 1);
        sink_flush(k);
    }
}

void mp_tracing_export_span(struct mp_http_stream *s, struct mp_span *sp)
{
    const struct mp_tracing_config *cfg = sp->cfg;
    struct sink *k = s->worker ? sink_for(cfg) : NULL;
    if (!k) {
        T.dropped++;
        mp_span_free(sp);
        return;
    }
    if (!T.loop) {
        T.loop = s->worker->loop;
        T.worker = s->worker;
        stats_init();
    }
    if (!T.timer_ready) {
        ev_timer_init(&T.flush, flush_cb, MP_TRACING_FLUSH_INTERVAL_MS / 1000.0,
                      MP_TRACING_FLUSH_INTERVAL_MS / 1000.0);
        ev_timer_start(T.loop, &T.flush);
        ev_unref(T.loop); /* the flush timer alone does not keep the loop alive */
        T.timer_ready = true;
    }
    if (!k->target[0])
        resolve(k, s->snap);
    if (k->n_spans >= MAX_BUFFERED_SPANS) {
        T.dropped++;
        mp_span_free(sp);
        return;
    }
    size_t before = k->body.len;
    if (cfg->provider == MP_TRACING_ZIPKIN) {
        if (k->n_spans)
            mp_trace_buf_append(&k->body, ",", 1);
        mp_zipkin_encode_span(sp, mp_tracing_local_service(), &k->body);
    } else {
        mp_otel_encode_span(sp, &k->body);
    }
    mp_span_free(sp);
    if (k->body.oom) {
        /* drop this span only: cut back to what was there */
        k->body.oom = false;
        k->body.len = before;
        if (k->body.p)
            k->body.p[before] = '\0';
        T.dropped++;
        return;
    }
    if (++k->n_spans >= MP_TRACING_MIN_FLUSH_SPANS)
        sink_flush(k);
}

void mp_tracing_thread_exit(void)
{
    while (T.sinks) {
        struct sink *k = T.sinks;
        T.sinks = k->next;
        if (k->n_spans && k->provider == MP_TRACING_ZIPKIN && !k->body.oom && k->target[0])
            zipkin_post_blocking(k);
        else if (k->n_spans && k->provider == MP_TRACING_OTEL && !k->body.oom && k->target[0] &&
                 otel_start_call(k) == 0)
            ; /* the grpc thread sends it; its answer is dropped with this thread's calls below */
        else
            T.dropped += k->n_spans;
        sink_free(k);
    }
    while (T.posts)
        post_free(T.posts);
    while (T.calls) {
        struct call *c = T.calls;
        T.calls = c->next;
        mp_grpc_call_cancel(c->handle);
        free(c);
    }
    T.n_inflight = 0;
    if (T.timer_ready && T.loop) {
        ev_ref(T.loop);
        ev_timer_stop(T.loop, &T.flush);
    }
    T.timer_ready = false;
    T.stats_ready = false;
    T.loop = NULL;
    T.worker = NULL;
    mp_tracing_stats_thread_exit();
}
