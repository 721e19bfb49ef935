/*
 * http_stream.c: per-request state and the HTTP filter chain.
 *
 * Request callbacks run in configuration order, response callbacks in
 * reverse. When a filter stops iteration, later body and trailers are held
 * by the stream and handed, on continue, to the filters after the one that
 * stopped (see http_filter.h).
 */
#include "http_stream.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "access_log.h"
#include "http_stats.h"
#include "mp_common.h"
#include "snapshot.h"
#include "tls_transport.h"
#include "tls_xfcc.h"
#include "tracing.h"
#include "worker.h"
#include "xds_translate_listener.h"

int mp_parse_ip_port(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return MP_ERR_INVAL;
    size_t hl = (size_t)(colon - text);
    const char *h = text;
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']')
            return MP_ERR_INVAL;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return MP_ERR_INVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535 || colon[1] == '\0')
        return MP_ERR_INVAL;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return 0;
    }
    return MP_ERR_INVAL;
}

int64_t mp_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mp_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Per-thread xorshift state seeded from getrandom: request ids need to be
 * unique, not secret, and a syscall per request would cost more than the id. */
static _Thread_local uint64_t rng_state[2];

static uint64_t rng_next(void)
{
    if (rng_state[0] == 0 && rng_state[1] == 0) {
        if (getrandom(rng_state, sizeof(rng_state), 0) != sizeof(rng_state)) {
            rng_state[0] = (uint64_t)mp_wall_us() | 1;
            rng_state[1] = (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15ull;
        }
    }
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_state[1] + s0;
}

void mp_uuid4(char out[37])
{
    uint8_t b[16];
    uint64_t a = rng_next(), c = rng_next();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

const char *mp_http_response_flags_str(uint32_t flags, char *buf, size_t cap)
{
    static const char *const names[] = {"UH",  "UF",  "UT", "NR", "UR", "DR",   "LR", "NC",
                                        "DPE", "UPE", "SI", "UO", "RL", "UAEX", "FI"};
    size_t o = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < MP_ARRAY_LEN(names); i++) {
        if (!(flags & (1u << i)))
            continue;
        int n = snprintf(buf + o, cap - o, "%s%s", o ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, cap, "-");
    return buf;
}

static void idle_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_http_stream *s = t->data;
    if (s->hcm->stats && s->worker)
        mp_counter_inc(s->hcm->stats->rq_timeout, s->worker->index, 1);
    if (!s->resp_headers_sent)
        mp_http_stream_send_local_reply(s, 408, "stream timeout", MP_RF_STREAM_IDLE_TIMEOUT);
    else
        mp_http_stream_reset(s, MP_RF_STREAM_IDLE_TIMEOUT);
}

/* Activity on the stream: push the idle deadline out. */
static void touch(struct mp_http_stream *s)
{
    if (s->hcm->stream_idle_timeout_ms && s->worker && ev_is_active(&s->idle_timer))
        ev_timer_again(s->worker->loop, &s->idle_timer);
}

struct mp_http_stream *mp_http_stream_new(struct mp_worker *w, void *conn,
                                          const struct mp_http_codec_ops *codec,
                                          const struct mp_hcm_config *hcm, struct mp_snapshot *snap,
                                          int protocol)
{
    struct mp_http_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->n_filters = (uint32_t)hcm->n_filters;
    size_t state_total = 0;
    for (size_t i = 0; i < hcm->n_filters; i++)
        state_total += (hcm->filters[i].ops->state_size + 15) & ~(size_t)15;
    /* One allocation for the filter contexts and their states. */
    s->filters = calloc(1, s->n_filters * sizeof(*s->filters) + state_total + 16);
    if (!s->filters) {
        free(s);
        return NULL;
    }
    char *state = (char *)(s->filters + s->n_filters);
    state = (char *)(((uintptr_t)state + 15) & ~(uintptr_t)15);
    for (uint32_t i = 0; i < s->n_filters; i++) {
        struct mp_http_filter_ctx *f = &s->filters[i];
        f->stream = s;
        f->config = hcm->filters[i].config;
        f->index = i;
        size_t sz = (hcm->filters[i].ops->state_size + 15) & ~(size_t)15;
        f->state = sz ? state : NULL;
        state += sz;
    }
    s->worker = w;
    s->conn = conn;
    s->codec = codec;
    s->hcm = hcm;
    s->snap = snap ? mp_snapshot_ref(snap) : NULL;
    s->protocol = protocol;
    s->id = w ? ++w->next_stream_id : 0;
    mp_headers_init(&s->req);
    mp_headers_init(&s->req_trailers);
    mp_headers_init(&s->resp);
    mp_headers_init(&s->resp_trailers);
    mp_buffer_init(&s->req_held);
    mp_buffer_init(&s->resp_held);
    s->start_mono_us = mp_now_us();
    s->start_wall_us = mp_wall_us();
    s->req_done_us = -1;
    s->first_resp_us = -1;
    ev_init(&s->idle_timer, idle_timeout_cb);
    s->idle_timer.data = s;
    if (hcm->stream_idle_timeout_ms && w) {
        s->idle_timer.repeat = (double)hcm->stream_idle_timeout_ms / 1000.0;
        ev_timer_again(w->loop, &s->idle_timer);
    }
    if (hcm->stats && w) {
        mp_counter_inc(hcm->stats->rq_total, w->index, 1);
        mp_counter_inc(protocol == 2 ? hcm->stats->rq_http2_total : hcm->stats->rq_http1_total,
                       w->index, 1);
        mp_gauge_add(hcm->stats->rq_active, w->index, 1);
    }
    return s;
}

static const char *protocol_name(int p)
{
    return p == 2 ? "HTTP/2" : p == 10 ? "HTTP/1.0" : "HTTP/1.1";
}

static void stream_log(struct mp_http_stream *s)
{
    if (s->logged)
        return;
    s->logged = true;
    mp_tracing_stream_finish(s);
    int64_t now = mp_now_us();
    unsigned slot = s->worker ? s->worker->index : 0;
    if (s->hcm->stats && s->worker) {
        int cls = mp_http_status_class(s->status);
        if (cls)
            mp_counter_inc(s->hcm->stats->rq_xx[cls], slot, 1);
        mp_histogram_record(s->hcm->stats->rq_time, slot, (uint64_t)(now - s->start_mono_us));
        mp_gauge_sub(s->hcm->stats->rq_active, slot, 1);
        if (s->reset && !s->resp_complete)
            mp_counter_inc(s->hcm->stats->rx_reset, slot, 1);
    }
    if (s->hcm->n_access_logs == 0)
        return;
    char flags[64];
    struct mp_al_record rec = {
        .req = &s->req,
        .resp = s->resp_headers_sent ? &s->resp : NULL,
        .trailers = &s->resp_trailers,
        .start_us = s->start_wall_us,
        .duration_us = now - s->start_mono_us,
        .request_duration_us = s->req_done_us >= 0 ? s->req_done_us - s->start_mono_us : -1,
        .response_duration_us = s->first_resp_us >= 0 ? s->first_resp_us - s->start_mono_us : -1,
        .response_code = s->status,
        .protocol = protocol_name(s->protocol),
        .response_flags = mp_http_response_flags_str(s->response_flags, flags, sizeof(flags)),
        .bytes_received = s->bytes_received,
        .bytes_sent = s->bytes_sent,
        .upstream_host = s->upstream_host[0] ? s->upstream_host : NULL,
        .upstream_cluster = s->cluster_name,
        .downstream_remote = s->downstream_remote,
        .downstream_local = s->downstream_local,
        .route_name = s->route_name,
        .downstream_peer_uri_san = s->downstream_peer_uri_san,
        .requested_server_name = s->requested_server_name,
    };
    for (size_t i = 0; i < s->hcm->n_access_logs; i++)
        mp_access_log_emit(s->hcm->access_logs[i], &rec);
}

void mp_http_stream_free(struct mp_http_stream *s)
{
    if (!s)
        return;
    stream_log(s);
    if (s->worker)
        ev_timer_stop(s->worker->loop, &s->idle_timer);
    for (uint32_t i = 0; i < s->n_filters; i++) {
        const struct mp_http_filter_ops *ops = s->hcm->filters[i].ops;
        if (ops->destroy)
            ops->destroy(&s->filters[i]);
    }
    free(s->filters);
    mp_headers_clear(&s->req);
    mp_headers_clear(&s->req_trailers);
    mp_headers_clear(&s->resp);
    mp_headers_clear(&s->resp_trailers);
    mp_buffer_clear(&s->req_held);
    mp_buffer_clear(&s->resp_held);
    mp_snapshot_unref(s->snap);
    free(s);
}

/* ---- request direction ---------------------------------------------------- */

static void run_request(struct mp_http_stream *s, uint32_t from, int stage, struct mp_buffer *data,
                        bool end_stream);

static void deliver_held_request(struct mp_http_stream *s, uint32_t from)
{
    if (s->req_stopped_at || s->local_reply || s->reset)
        return;
    if (mp_buffer_len(&s->req_held) > 0 || s->req_held_end) {
        struct mp_buffer tmp = MP_BUFFER_INIT;
        mp_buffer_move(&tmp, &s->req_held);
        bool end = s->req_held_end && !s->req_held_trailers;
        s->req_held_end = false;
        bool trailers = s->req_held_trailers;
        s->req_held_trailers = false;
        run_request(s, from, 1, &tmp, end);
        mp_buffer_clear(&tmp);
        if (trailers) {
            if (s->req_stopped_at) {
                s->req_held_trailers = true;
                s->req_held_end = true;
            } else {
                run_request(s, from, 2, NULL, true);
            }
        }
    } else if (s->req_held_trailers) {
        s->req_held_trailers = false;
        run_request(s, from, 2, NULL, true);
    }
}

/*
 * Runs request callbacks of `stage` (0 headers, 1 body, 2 trailers) from
 * filter `from` on. A STOP records where iteration stopped; anything that
 * arrives later is held until continue.
 */
static void run_request(struct mp_http_stream *s, uint32_t from, int stage, struct mp_buffer *data,
                        bool end_stream)
{
    for (uint32_t i = from; i < s->n_filters; i++) {
        if (s->local_reply || s->reset)
            return;
        struct mp_http_filter_ctx *f = &s->filters[i];
        const struct mp_http_filter_ops *ops = s->hcm->filters[i].ops;
        int rc = MP_FILTER_CONTINUE;
        if (stage == 0 && ops->on_request_headers)
            rc = ops->on_request_headers(f, &s->req, end_stream);
        else if (stage == 1 && ops->on_request_body)
            rc = ops->on_request_body(f, data, end_stream);
        else if (stage == 2 && ops->on_request_trailers)
            rc = ops->on_request_trailers(f, &s->req_trailers);
        if (rc == MP_FILTER_LOCAL_REPLY)
            return;
        if (rc == MP_FILTER_STOP) {
            s->req_stopped_at = i + 1;
            s->req_stop_stage = (uint8_t)stage;
            if (stage == 1 && data) {
                /* the stopped chunk waits with what comes after it */
                struct mp_buffer tmp = MP_BUFFER_INIT;
                mp_buffer_move(&tmp, &s->req_held);
                mp_buffer_move(&s->req_held, data);
                mp_buffer_move(&s->req_held, &tmp);
                mp_buffer_clear(&tmp);
                if (end_stream)
                    s->req_held_end = true;
            }
            if (stage == 2) {
                s->req_held_trailers = true;
                s->req_held_end = true;
            }
            return;
        }
    }
}

void mp_http_filter_continue_request(struct mp_http_filter_ctx *f)
{
    struct mp_http_stream *s = f->stream;
    if (s->req_stopped_at != f->index + 1)
        return;
    int stage = s->req_stop_stage;
    s->req_stopped_at = 0;
    if (stage == 0) {
        bool end = s->req_complete && mp_buffer_len(&s->req_held) == 0 && !s->req_held_trailers;
        if (end)
            s->req_held_end = false;
        run_request(s, f->index + 1, 0, NULL, end);
    } else if (stage == 2) {
        s->req_held_trailers = false;
        s->req_held_end = false;
        run_request(s, f->index + 1, 2, NULL, true);
        return;
    }
    deliver_held_request(s, f->index + 1);
}

/* forward_client_cert_details: what an untrusted client sent never reaches
 * the upstream as a verified identity (Envoy's ConnectionManagerUtility). */
static void apply_xfcc(struct mp_http_stream *s)
{
    static const char name[] = "x-forwarded-client-cert";
    enum mp_xfcc_mode mode = (enum mp_xfcc_mode)s->hcm->xfcc_mode;
    const struct mp_tls_peer *peer =
        s->downstream_tls ? mp_tls_transport_peer(s->downstream_tls) : NULL;
    if (mode == MP_XFCC_ALWAYS_FORWARD_ONLY)
        return;
    if (!peer || !peer->presented || mode == MP_XFCC_SANITIZE) {
        mp_headers_remove(&s->req, name);
        return;
    }
    if (mode == MP_XFCC_FORWARD_ONLY)
        return;
    char *mine = NULL;
    if (mp_tls_xfcc_build(s->downstream_tls, s->hcm->xfcc_details, &mine) < 0) {
        mp_headers_remove(&s->req, name); /* no memory: send nothing rather than the client's */
        return;
    }
    const char *prev = mode == MP_XFCC_APPEND_FORWARD ? mp_headers_value(&s->req, name) : NULL;
    char *joined = NULL;
    if (prev && *prev) {
        size_t l = strlen(prev) + strlen(mine) + 2;
        if ((joined = malloc(l)) != NULL)
            snprintf(joined, l, "%s,%s", prev, mine);
    }
    if (prev && *prev && !joined)
        mp_headers_remove(&s->req, name);
    else
        mp_headers_set_cstr(&s->req, name, joined ? joined : mine);
    free(joined);
    free(mine);
}

static void apply_request_header_rules(struct mp_http_stream *s)
{
    const struct mp_hcm_config *hcm = s->hcm;
    /* x-forwarded-proto tells the upstream how the client reached us */
    const char *scheme = s->downstream_tls ? "https" : "http";
    mp_headers_strip_hop_by_hop(&s->req);
    apply_xfcc(s);
    /* Envoy-internal headers from outside are not trusted. */
    if (hcm->use_remote_address) {
        const char *remote = s->downstream_remote;
        if (remote) {
            /* strip the port: "1.2.3.4:5678" / "[::1]:5678" */
            char ip[64];
            size_t n = strlen(remote);
            const char *colon = strrchr(remote, ':');
            if (colon)
                n = (size_t)(colon - remote);
            if (n > 0 && remote[0] == '[') {
                remote++;
                n -= 2;
            }
            if (n >= sizeof(ip))
                n = sizeof(ip) - 1;
            memcpy(ip, remote, n);
            ip[n] = '\0';
            const char *xff = mp_headers_value(&s->req, "x-forwarded-for");
            if (xff) {
                size_t l = strlen(xff) + n + 3;
                char *v = malloc(l);
                if (v) {
                    snprintf(v, l, "%s, %s", xff, ip);
                    mp_headers_set_cstr(&s->req, "x-forwarded-for", v);
                    free(v);
                }
            } else {
                mp_headers_set_cstr(&s->req, "x-forwarded-for", ip);
            }
        }
        mp_headers_set_cstr(&s->req, "x-forwarded-proto", scheme);
        mp_headers_remove(&s->req, "x-envoy-internal");
    } else if (!mp_headers_get(&s->req, "x-forwarded-proto")) {
        mp_headers_set_cstr(&s->req, "x-forwarded-proto", scheme);
    }
    if (hcm->generate_request_id && !mp_headers_get(&s->req, "x-request-id")) {
        char id[37];
        mp_uuid4(id);
        mp_headers_add_cstr(&s->req, "x-request-id", id);
    }
    if (hcm->via) {
        const char *via = mp_headers_value(&s->req, "via");
        if (via) {
            size_t l = strlen(via) + strlen(hcm->via) + 3;
            char *v = malloc(l);
            if (v) {
                snprintf(v, l, "%s, %s", via, hcm->via);
                mp_headers_set_cstr(&s->req, "via", v);
                free(v);
            }
        } else {
            mp_headers_add_cstr(&s->req, "via", hcm->via);
        }
    }
}

void mp_http_stream_decode_headers(struct mp_http_stream *s, bool end_stream)
{
    s->req_headers_done = true;
    if (end_stream) {
        s->req_complete = true;
        s->req_done_us = mp_now_us();
    }
    apply_request_header_rules(s);
    mp_tracing_stream_start(s);
    run_request(s, 0, 0, NULL, end_stream);
}

void mp_http_stream_decode_data(struct mp_http_stream *s, struct mp_buffer *data, bool end_stream)
{
    touch(s);
    s->bytes_received += mp_buffer_len(data);
    if (end_stream) {
        s->req_complete = true;
        s->req_done_us = mp_now_us();
    }
    if (s->local_reply || s->reset) {
        mp_buffer_clear(data);
        return;
    }
    if (s->req_stopped_at) {
        mp_buffer_move(&s->req_held, data);
        if (end_stream)
            s->req_held_end = true;
        return;
    }
    run_request(s, 0, 1, data, end_stream);
}

void mp_http_stream_decode_trailers(struct mp_http_stream *s)
{
    s->req_complete = true;
    s->req_done_us = mp_now_us();
    if (s->local_reply || s->reset)
        return;
    if (s->req_stopped_at) {
        s->req_held_trailers = true;
        s->req_held_end = true;
        return;
    }
    run_request(s, 0, 2, NULL, true);
}

/* ---- response direction --------------------------------------------------- */

static void add_response_headers(struct mp_http_stream *s, struct mp_headers *h)
{
    mp_headers_strip_hop_by_hop(h);
    mp_headers_set_cstr(h, "server", s->hcm->server_name ? s->hcm->server_name : "meshproxy");
    if (s->hcm->via) {
        const char *via = mp_headers_value(h, "via");
        if (!via)
            mp_headers_add_cstr(h, "via", s->hcm->via);
    }
    mp_headers_pseudo_first(h);
}

static void codec_headers(struct mp_http_stream *s, bool end_stream)
{
    /* one response per stream: a late upstream answer after a local reply is dropped */
    if (s->reset || s->resp_headers_sent)
        return;
    touch(s);
    const char *st = mp_headers_value(&s->resp, ":status");
    /* three digits (every response) without atoi's strtol */
    if (st && st[0] >= '0' && st[0] <= '9' && st[1] >= '0' && st[1] <= '9' && st[2] >= '0' &&
        st[2] <= '9' && st[3] == '\0')
        s->status = (st[0] - '0') * 100 + (st[1] - '0') * 10 + (st[2] - '0');
    else
        s->status = st ? atoi(st) : 0;
    if (s->first_resp_us < 0)
        s->first_resp_us = mp_now_us();
    add_response_headers(s, &s->resp);
    s->resp_headers_sent = true;
    if (end_stream)
        s->resp_complete = true;
    s->codec->encode_headers(s->conn, s, &s->resp, end_stream);
}

static void codec_data(struct mp_http_stream *s, struct mp_buffer *data, bool end_stream)
{
    touch(s);
    if (s->reset || s->resp_complete || !s->resp_headers_sent) {
        mp_buffer_clear(data);
        return;
    }
    size_t n = mp_buffer_len(data);
    s->bytes_sent += n;
    mp_buffer_count_proxied(n);
    if (end_stream)
        s->resp_complete = true;
    s->codec->encode_data(s->conn, s, data, end_stream);
}

static void codec_trailers(struct mp_http_stream *s)
{
    if (s->reset || s->resp_complete || !s->resp_headers_sent)
        return;
    s->resp_complete = true;
    s->codec->encode_trailers(s->conn, s, &s->resp_trailers);
}

/* Response callbacks from filter index `from` - 1 down to 0, then the codec. */
static void run_response(struct mp_http_stream *s, uint32_t from, int stage, struct mp_buffer *data,
                         bool end_stream)
{
    for (uint32_t i = from; i-- > 0;) {
        if (s->reset)
            return;
        struct mp_http_filter_ctx *f = &s->filters[i];
        const struct mp_http_filter_ops *ops = s->hcm->filters[i].ops;
        int rc = MP_FILTER_CONTINUE;
        if (stage == 0 && ops->on_response_headers)
            rc = ops->on_response_headers(f, &s->resp, end_stream);
        else if (stage == 1 && ops->on_response_body)
            rc = ops->on_response_body(f, data, end_stream);
        else if (stage == 2 && ops->on_response_trailers)
            rc = ops->on_response_trailers(f, &s->resp_trailers);
        if (rc == MP_FILTER_LOCAL_REPLY)
            return;
        if (rc == MP_FILTER_STOP) {
            s->resp_stopped_at = i + 1;
            s->resp_stop_stage = (uint8_t)stage;
            if (stage == 1 && data) {
                struct mp_buffer tmp = MP_BUFFER_INIT;
                mp_buffer_move(&tmp, &s->resp_held);
                mp_buffer_move(&s->resp_held, data);
                mp_buffer_move(&s->resp_held, &tmp);
                mp_buffer_clear(&tmp);
                if (end_stream)
                    s->resp_held_end = true;
            }
            if (stage == 0 && end_stream)
                s->resp_held_end = true;
            if (stage == 2)
                s->resp_held_trailers = true;
            return;
        }
    }
    if (stage == 0)
        codec_headers(s, end_stream);
    else if (stage == 1)
        codec_data(s, data, end_stream);
    else
        codec_trailers(s);
}

void mp_http_filter_continue_response(struct mp_http_filter_ctx *f)
{
    struct mp_http_stream *s = f->stream;
    if (s->resp_stopped_at != f->index + 1)
        return;
    int stage = s->resp_stop_stage;
    s->resp_stopped_at = 0;
    if (stage == 0) {
        bool end = s->resp_held_end && mp_buffer_len(&s->resp_held) == 0 && !s->resp_held_trailers;
        run_response(s, f->index, 0, NULL, end);
        if (end)
            return;
    } else if (stage == 2) {
        s->resp_held_trailers = false;
        run_response(s, f->index, 2, NULL, true);
        return;
    }
    if (s->resp_stopped_at)
        return;
    if (mp_buffer_len(&s->resp_held) > 0 || (s->resp_held_end && !s->resp_held_trailers)) {
        struct mp_buffer tmp = MP_BUFFER_INIT;
        mp_buffer_move(&tmp, &s->resp_held);
        bool end = s->resp_held_end && !s->resp_held_trailers;
        run_response(s, f->index, 1, &tmp, end);
        mp_buffer_clear(&tmp);
    }
    if (s->resp_held_trailers && !s->resp_stopped_at) {
        s->resp_held_trailers = false;
        run_response(s, f->index, 2, NULL, true);
    }
}

void mp_http_stream_encode_headers(struct mp_http_stream *s, uint32_t from,
                                   struct mp_headers *headers, bool end_stream)
{
    if (headers != &s->resp) {
        mp_headers_clear(&s->resp);
        s->resp = *headers;
        mp_headers_init(headers);
    }
    if (s->resp_stopped_at) {
        return;
    }
    run_response(s, from, 0, NULL, end_stream);
}

void mp_http_stream_encode_data(struct mp_http_stream *s, uint32_t from, struct mp_buffer *data,
                                bool end_stream)
{
    if (s->resp_stopped_at) {
        mp_buffer_move(&s->resp_held, data);
        if (end_stream)
            s->resp_held_end = true;
        return;
    }
    run_response(s, from, 1, data, end_stream);
}

void mp_http_stream_encode_trailers(struct mp_http_stream *s, uint32_t from,
                                    struct mp_headers *trailers)
{
    if (trailers != &s->resp_trailers) {
        mp_headers_clear(&s->resp_trailers);
        s->resp_trailers = *trailers;
        mp_headers_init(trailers);
    }
    if (s->resp_stopped_at) {
        s->resp_held_trailers = true;
        s->resp_held_end = true;
        return;
    }
    run_response(s, from, 2, NULL, true);
}

void mp_http_stream_send_local_reply(struct mp_http_stream *s, int status, const char *body,
                                     uint32_t response_flag)
{
    s->response_flags |= response_flag;
    if (s->reset)
        return;
    if (s->resp_headers_sent) {
        /* too late for a clean reply: the downstream sees the stream fail */
        mp_http_stream_reset(s, response_flag);
        return;
    }
    s->local_reply = true;
    struct mp_headers h;
    mp_headers_init(&h);
    char num[24];
    snprintf(num, sizeof(num), "%d", status);
    size_t blen = body ? strlen(body) : 0;
    mp_headers_add_cstr(&h, ":status", num);
    if (blen) {
        mp_headers_add_cstr(&h, "content-type", "text/plain");
    }
    snprintf(num, sizeof(num), "%zu", blen);
    mp_headers_add_cstr(&h, "content-length", num);
    if (s->req_stopped_at == 0 && !s->req_complete) {
        /* the rest of the request body is dropped */
    }
    mp_headers_clear(&s->resp);
    s->resp = h;
    codec_headers(s, blen == 0);
    if (blen) {
        struct mp_buffer b = MP_BUFFER_INIT;
        if (mp_buffer_append_copy(&b, body, blen) == 0)
            codec_data(s, &b, true);
        mp_buffer_clear(&b);
    }
}

int mp_http_filter_local_reply(struct mp_http_filter_ctx *f, int status, const char *body,
                               const char *details)
{
    (void)details;
    mp_http_stream_send_local_reply(f->stream, status, body, 0);
    return MP_FILTER_LOCAL_REPLY;
}

void mp_http_stream_reset(struct mp_http_stream *s, uint32_t response_flag)
{
    s->response_flags |= response_flag;
    if (s->reset)
        return;
    s->reset = true;
    if (s->hcm->stats && s->worker)
        mp_counter_inc(s->hcm->stats->tx_reset, s->worker->index, 1);
    s->codec->reset(s->conn, s);
}

void mp_http_stream_on_downstream_reset(struct mp_http_stream *s)
{
    if (s->reset)
        return;
    s->reset = true;
    if (!s->resp_complete)
        s->response_flags |= MP_RF_DOWNSTREAM_RESET;
    /* Filters (the router) learn through destroy, called when the codec
     * frees the stream; the router's destroy resets its upstream request. */
}

void mp_http_stream_on_downstream_watermark(struct mp_http_stream *s, bool above)
{
    if (s->downstream_above == above)
        return;
    s->downstream_above = above;
    if (s->watermark_cb)
        s->watermark_cb(s->watermark_arg, above);
}

void mp_http_stream_read_disable(struct mp_http_stream *s, bool disable)
{
    if (!s->reset && s->codec->read_disable)
        s->codec->read_disable(s->conn, s, disable);
}
