/*
 * admin.c: the admin endpoint. One request per connection (answers carry
 * "connection: close"), served on the main loop.
 */
#include "admin.h"

#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buffer.h"
#include "cluster.h"
#include "conn.h"
#include "http1_parse.h"
#include "http_stats.h"
#include "http_stream.h"
#include "mp_common.h"
#include "log.h"
#include "options.h"
#include "pb_json.h"
#include "server_int.h"
#include "snapshot.h"
#include "stats_render.h"
#include "xds_translate_listener.h"

struct admin_conn;

struct mp_admin {
    struct mp_server *server;
    int fd;
    ev_io io;
    struct admin_conn *conns;
};

struct admin_conn {
    struct admin_conn *next, *prev;
    struct mp_admin *a;
    int fd;
    ev_io rio, wio;
    ev_timer timer;
    struct mp_buffer in, out;
    struct mp_http1_parser parser;
    bool quit_after;
};

static void conn_free(struct admin_conn *c)
{
    struct mp_admin *a = c->a;
    ev_io_stop(a->server->loop, &c->rio);
    ev_io_stop(a->server->loop, &c->wio);
    ev_timer_stop(a->server->loop, &c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    mp_buffer_clear(&c->in);
    mp_buffer_clear(&c->out);
    mp_http1_parser_free(&c->parser);
    bool quit = c->quit_after;
    struct mp_server *s = a->server;
    free(c);
    if (quit)
        mp_server_stop(s);
}

static void respond(struct admin_conn *c, int status, const char *ctype, struct mp_buffer *body)
{
    mp_buffer_appendf(&c->out,
                      "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                      "cache-control: no-cache, max-age=0\r\nx-content-type-options: nosniff\r\n"
                      "server: meshproxy\r\nconnection: close\r\n\r\n",
                      status, mp_http_reason(status), ctype, mp_buffer_len(body));
    mp_buffer_move(&c->out, body);
}

static const char *state_name(enum mp_server_state st)
{
    switch (st) {
    case MP_SERVER_LIVE: return "LIVE";
    case MP_SERVER_DRAINING: return "DRAINING";
    case MP_SERVER_PRE_INITIALIZING: return "PRE_INITIALIZING";
    default: return "INITIALIZING";
    }
}

static bool query_has(const char *query, const char *key)
{
    if (!query)
        return false;
    size_t kl = strlen(key);
    const char *p = query;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && (p[kl] == '\0' || p[kl] == '&' || p[kl] == '='))
            return true;
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return false;
}

static void json_str(struct mp_buffer *b, const char *s)
{
    mp_buffer_appendf(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            mp_buffer_appendf(b, "\\%c", ch);
        else if (ch < 0x20)
            mp_buffer_appendf(b, "\\u%04x", ch);
        else
            mp_buffer_appendf(b, "%c", ch);
    }
    mp_buffer_appendf(b, "\"");
}

static void render_clusters(struct mp_server *s, struct mp_buffer *b, bool json)
{
    struct mp_snapshot *snap = s->current;
    if (json)
        mp_buffer_appendf(b, "{\"cluster_statuses\":[");
    for (size_t i = 0; snap && i < snap->n_clusters; i++) {
        const struct mp_snapshot_cluster *e = &snap->clusters[i];
        const struct mp_cluster *c = e->cluster;
        if (json) {
            mp_buffer_appendf(b, "%s{\"name\":", i ? "," : "");
            json_str(b, c->name);
            mp_buffer_appendf(b, ",\"host_statuses\":[");
        } else {
            const struct mp_circuit_breakers *cb = &c->circuit_breakers[0];
            mp_buffer_appendf(b, "%s::observability_name::%s\n", c->name, c->name);
            mp_buffer_appendf(b, "%s::default_priority::max_connections::%u\n", c->name,
                              cb->max_connections);
            mp_buffer_appendf(b, "%s::default_priority::max_pending_requests::%u\n", c->name,
                              cb->max_pending_requests);
            mp_buffer_appendf(b, "%s::default_priority::max_requests::%u\n", c->name,
                              cb->max_requests);
            mp_buffer_appendf(b, "%s::default_priority::max_retries::%u\n", c->name,
                              cb->max_retries);
            mp_buffer_appendf(b, "%s::added_via_api::%s\n", c->name,
                              c->added_via_api ? "true" : "false");
        }
        for (size_t j = 0; e->hosts && j < e->hosts->n_hosts; j++) {
            const struct mp_host *h = &e->hosts->hosts[j];
            struct mp_host_stats *hs = mp_http_stats_host_find(c->name, h->addr_str);
            uint64_t v[8] = {0};
            if (hs) {
                v[0] = atomic_load(&hs->cx_active);
                v[1] = atomic_load(&hs->cx_connect_fail);
                v[2] = atomic_load(&hs->cx_total);
                v[3] = atomic_load(&hs->rq_active);
                v[4] = atomic_load(&hs->rq_error);
                v[5] = atomic_load(&hs->rq_success);
                v[6] = atomic_load(&hs->rq_timeout);
                v[7] = atomic_load(&hs->rq_total);
            }
            const char *health = h->health == MP_HOST_HEALTHY    ? "healthy"
                                 : h->health == MP_HOST_DEGRADED ? "/degraded"
                                                                 : "/eds_health_unhealthy";
            if (json) {
                mp_buffer_appendf(b, "%s{\"address\":", j ? "," : "");
                json_str(b, h->addr_str);
                mp_buffer_appendf(
                    b,
                    ",\"stats\":{\"cx_active\":%" PRIu64 ",\"cx_connect_fail\":%" PRIu64
                    ",\"cx_total\":%" PRIu64 ",\"rq_active\":%" PRIu64 ",\"rq_error\":%" PRIu64
                    ",\"rq_success\":%" PRIu64 ",\"rq_timeout\":%" PRIu64 ",\"rq_total\":%" PRIu64
                    "},\"health_status\":\"%s\",\"weight\":%u,\"priority\":%u}",
                    v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                    h->health == MP_HOST_HEALTHY ? "HEALTHY" : "UNHEALTHY", h->weight, h->priority);
                continue;
            }
            static const char *const names[] = {"cx_active",  "cx_connect_fail", "cx_total",
                                                "rq_active",  "rq_error",        "rq_success",
                                                "rq_timeout", "rq_total"};
            for (size_t k = 0; k < 8; k++)
                mp_buffer_appendf(b, "%s::%s::%s::%" PRIu64 "\n", c->name, h->addr_str, names[k],
                                  v[k]);
            mp_buffer_appendf(b, "%s::%s::hostname::%s\n", c->name, h->addr_str,
                              h->hostname ? h->hostname : "");
            mp_buffer_appendf(b, "%s::%s::health_flags::%s\n", c->name, h->addr_str, health);
            mp_buffer_appendf(b, "%s::%s::weight::%u\n", c->name, h->addr_str, h->weight);
            mp_buffer_appendf(b, "%s::%s::priority::%u\n", c->name, h->addr_str, h->priority);
            mp_buffer_appendf(b, "%s::%s::success_rate::-1\n", c->name, h->addr_str);
            mp_buffer_appendf(b, "%s::%s::local_origin_success_rate::-1\n", c->name, h->addr_str);
        }
        if (json)
            mp_buffer_appendf(b, "]}");
    }
    if (json)
        mp_buffer_appendf(b, "]}");
}

/* Appends pb as JSON with "@type" first (Envoy dumps resources as Any). */
static void any_json(struct mp_buffer *b, const ProtobufCMessage *pb, const char *type)
{
    char *js = NULL, *err = NULL;
    size_t len = 0;
    if (mp_pb_to_json(pb, 0, &js, &len, &err) == 0 && len >= 2 && js[0] == '{') {
        mp_buffer_appendf(b, "{\"@type\":\"type.googleapis.com/%s\"%s%s", type, len > 2 ? "," : "",
                          js + 1);
    } else {
        mp_buffer_appendf(b, "{\"@type\":\"type.googleapis.com/%s\"}", type);
    }
    free(js);
    free(err);
}

static void render_config_dump(struct mp_server *s, struct mp_buffer *b)
{
    const Envoy__Config__Bootstrap__V3__Bootstrap *bs = s->bootstrap;
    mp_buffer_appendf(b, "{\"configs\":[");
    mp_buffer_appendf(b, "{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\","
                         "\"bootstrap\":");
    char *js = NULL, *err = NULL;
    if (mp_pb_to_json(&bs->base, 0, &js, NULL, &err) == 0)
        mp_buffer_appendf(b, "%s", js);
    else
        mp_buffer_appendf(b, "{}");
    free(js);
    free(err);
    mp_buffer_appendf(b, "}");
    const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = bs->static_resources;
    mp_buffer_appendf(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\","
                         "\"static_clusters\":[");
    for (size_t i = 0; sr && i < sr->n_clusters; i++) {
        mp_buffer_appendf(b, "%s{\"cluster\":", i ? "," : "");
        any_json(b, &sr->clusters[i]->base, "envoy.config.cluster.v3.Cluster");
        mp_buffer_appendf(b, "}");
    }
    mp_buffer_appendf(b, "]}");
    mp_buffer_appendf(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\","
                         "\"static_listeners\":[");
    for (size_t i = 0; sr && i < sr->n_listeners; i++) {
        mp_buffer_appendf(b, "%s{\"listener\":", i ? "," : "");
        any_json(b, &sr->listeners[i]->base, "envoy.config.listener.v3.Listener");
        mp_buffer_appendf(b, "}");
    }
    mp_buffer_appendf(b, "]}");
    if (s->dump_fn)
        s->dump_fn(s->dump_arg, b);
    mp_buffer_appendf(b, "]}\n");
}

static void render_server_info(struct mp_server *s, struct mp_buffer *b)
{
    int64_t up = (mp_wall_us() - s->start_wall_us) / 1000000;
    const struct mp_options *o = s->opts;
    mp_buffer_appendf(
        b,
        "{\"version\":\"meshproxy/%s\",\"state\":\"%s\",\"uptime_current_epoch\":\"%llds\","
        "\"uptime_all_epochs\":\"%llds\",\"hot_restart_version\":\"disabled\",",
        o ? mp_version() : "0", state_name(mp_server_state(s)), (long long)up, (long long)up);
    mp_buffer_appendf(b, "\"command_line_options\":{");
    if (o) {
        mp_buffer_appendf(b, "\"base_id\":\"%u\",\"concurrency\":%u,\"config_path\":", o->base_id,
                          s->n_workers);
        json_str(b, o->config_path ? o->config_path : "");
        mp_buffer_appendf(b, ",\"config_yaml\":");
        json_str(b, o->config_yaml ? o->config_yaml : "");
        mp_buffer_appendf(
            b,
            ",\"log_level\":\"%s\",\"drain_time\":\"%us\",\"parent_shutdown_time\":\"%us\","
            "\"mode\":\"%s\",\"disable_hot_restart\":%s,\"drain_strategy\":\"%s\","
            "\"file_flush_interval\":\"%.3fs\",\"service_node\":",
            mp_log_level_name(o->log_level), o->drain_time_s, o->parent_shutdown_time_s,
            mp_mode_name(o->mode), o->disable_hot_restart ? "true" : "false",
            o->drain_strategy == MP_DRAIN_IMMEDIATE ? "Immediate" : "Gradual",
            o->file_flush_interval_msec / 1000.0);
        json_str(b, o->service_node ? o->service_node : "");
        mp_buffer_appendf(b, ",\"service_cluster\":");
        json_str(b, o->service_cluster ? o->service_cluster : "");
    }
    mp_buffer_appendf(b, "},\"node\":{");
    if (s->bootstrap->node) {
        mp_buffer_appendf(b, "\"id\":");
        json_str(b, s->bootstrap->node->id);
        mp_buffer_appendf(b, ",\"cluster\":");
        json_str(b, s->bootstrap->node->cluster);
    }
    mp_buffer_appendf(b, "}}\n");
}

static void render_listeners(struct mp_server *s, struct mp_buffer *b)
{
    struct mp_snapshot *snap = s->current;
    for (size_t i = 0; snap && i < snap->n_listeners; i++) {
        char addr[80];
        mp_sockaddr_format((const struct sockaddr *)&snap->listeners[i]->addr, addr, sizeof(addr));
        mp_buffer_appendf(b, "%s::%s\n", snap->listeners[i]->name, addr);
    }
}

static const char *const endpoints[][2] = {
    {"/", "this list"},
    {"/clusters", "upstream cluster status"},
    {"/config_dump", "dump current Envoy configs"},
    {"/drain_listeners", "drain listeners (POST; ?graceful, ?inboundonly)"},
    {"/healthcheck/fail", "cause the server to fail health checks (POST)"},
    {"/healthcheck/ok", "cause the server to pass health checks (POST)"},
    {"/listeners", "print listener info"},
    {"/quitquitquit", "exit the server (POST)"},
    {"/ready", "print server state, return 200 if LIVE, otherwise return 503"},
    {"/server_info", "print server version/status information"},
    {"/stats", "print server stats"},
    {"/stats/prometheus", "print server stats in prometheus format"},
};

static void handle(struct admin_conn *c)
{
    struct mp_server *s = c->a->server;
    const char *method = mp_headers_value(&c->parser.headers, ":method");
    const char *target = mp_headers_value(&c->parser.headers, ":path");
    if (!method || !target) {
        struct mp_buffer b = MP_BUFFER_INIT;
        respond(c, 400, "text/plain", &b);
        return;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s", target);
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    bool post = strcmp(method, "POST") == 0;
    struct mp_buffer b = MP_BUFFER_INIT;
    int status = 200;
    const char *ctype = "text/plain; charset=UTF-8";

    if (strncmp(path, "/stats", 6) == 0 &&
        (path[6] == '\0' || strcmp(path + 6, "/prometheus") == 0)) {
        const char *ct = NULL;
        char *err = NULL;
        int rc = mp_stats_admin_handle(s->stats, target, &b, &ct, &err);
        if (rc == MP_ERR_INVAL) {
            mp_buffer_clear(&b);
            mp_buffer_appendf(&b, "%s\n", err ? err : "bad request");
            status = 400;
        } else if (rc < 0) {
            status = 500;
        } else if (ct) {
            ctype = ct;
        }
        free(err);
    } else if (strcmp(path, "/clusters") == 0) {
        bool json = query && strstr(query, "format=json");
        render_clusters(s, &b, json);
        if (json)
            ctype = "application/json";
    } else if (strcmp(path, "/config_dump") == 0) {
        render_config_dump(s, &b);
        ctype = "application/json";
    } else if (strcmp(path, "/ready") == 0) {
        enum mp_server_state st = mp_server_state(s);
        mp_buffer_appendf(&b, "%s\n", state_name(st));
        status = st == MP_SERVER_LIVE && !s->healthcheck_failed ? 200 : 503;
    } else if (strcmp(path, "/server_info") == 0) {
        render_server_info(s, &b);
        ctype = "application/json";
    } else if (strcmp(path, "/listeners") == 0) {
        render_listeners(s, &b);
    } else if (strcmp(path, "/quitquitquit") == 0) {
        if (!post) {
            status = 405;
            mp_buffer_appendf(&b, "This endpoint requires POST\n");
        } else {
            mp_buffer_appendf(&b, "OK\n");
            c->quit_after = true;
        }
    } else if (strcmp(path, "/healthcheck/fail") == 0 || strcmp(path, "/healthcheck/ok") == 0) {
        if (!post) {
            status = 405;
            mp_buffer_appendf(&b, "This endpoint requires POST\n");
        } else {
            s->healthcheck_failed = strcmp(path, "/healthcheck/fail") == 0;
            mp_buffer_appendf(&b, "OK\n");
        }
    } else if (strcmp(path, "/drain_listeners") == 0) {
        if (!post) {
            status = 405;
            mp_buffer_appendf(&b, "This endpoint requires POST\n");
        } else {
            bool inbound = query_has(query, "inboundonly");
            bool graceful = query_has(query, "graceful");
            /* graceful: connections finish what they do, then the process
             * exits when none is left or at --drain-time-s */
            mp_server_drain(s, inbound, graceful);
            mp_buffer_appendf(&b, "OK\n");
        }
    } else if (strcmp(path, "/") == 0) {
        mp_buffer_appendf(&b, "admin commands are:\n");
        for (size_t i = 0; i < MP_ARRAY_LEN(endpoints); i++)
            mp_buffer_appendf(&b, "  %s: %s\n", endpoints[i][0], endpoints[i][1]);
    } else {
        status = 404;
        mp_buffer_appendf(&b, "invalid path. admin commands are:\n");
        for (size_t i = 0; i < MP_ARRAY_LEN(endpoints); i++)
            mp_buffer_appendf(&b, "  %s: %s\n", endpoints[i][0], endpoints[i][1]);
    }
    respond(c, status, ctype, &b);
    mp_buffer_clear(&b);
}

static void try_write(struct admin_conn *c)
{
    while (mp_buffer_len(&c->out) > 0) {
        ssize_t n = mp_buffer_write_fd(&c->out, c->fd);
        if (n == MP_ERR_AGAIN) {
            ev_io_start(c->a->server->loop, &c->wio);
            return;
        }
        if (n < 0)
            break;
    }
    conn_free(c);
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    try_write(io->data);
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct admin_conn *c = io->data;
    ssize_t n = mp_buffer_read_fd(&c->in, c->fd, 0);
    if (n == MP_ERR_AGAIN)
        return;
    if (n < 0 && n != MP_ERR_CLOSED) {
        conn_free(c);
        return;
    }
    unsigned ev = 0;
    int rc = n == MP_ERR_CLOSED ? mp_http1_parser_eof(&c->parser, &ev)
                                : mp_http1_parser_execute(&c->parser, &c->in, &ev);
    if (rc < 0 || (n == MP_ERR_CLOSED && !(ev & MP_H1_EV_DONE))) {
        if (rc == MP_ERR_PROTO) {
            struct mp_buffer b = MP_BUFFER_INIT;
            mp_buffer_appendf(&b, "%s\n",
                              c->parser.error_text ? c->parser.error_text : "bad request");
            respond(c, c->parser.error_status ? c->parser.error_status : 400, "text/plain", &b);
            mp_buffer_clear(&b);
            ev_io_stop(c->a->server->loop, &c->rio);
            try_write(c);
            return;
        }
        conn_free(c);
        return;
    }
    if (ev & MP_H1_EV_DONE) {
        ev_io_stop(c->a->server->loop, &c->rio);
        handle(c);
        try_write(c);
    }
}

static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    conn_free(t->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct mp_admin *a = io->data;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct admin_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->a = a;
        c->fd = fd;
        mp_buffer_init(&c->in);
        mp_buffer_init(&c->out);
        mp_http1_parser_init(&c->parser, true);
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_timer_init(&c->timer, timeout_cb, 30., 0.);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
        ev_io_start(loop, &c->rio);
        c->next = a->conns;
        if (a->conns)
            a->conns->prev = c;
        a->conns = c;
    }
}

int mp_admin_start(struct mp_server *server, const struct sockaddr *addr, socklen_t len,
                   struct mp_admin **out, char **err)
{
    struct mp_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return MP_ERR_NOMEM;
    a->server = server;
    a->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    char name[80];
    mp_sockaddr_format(addr, name, sizeof(name));
    if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(a->fd, addr, len) < 0 || listen(a->fd, 128) < 0) {
        mp_set_err(err, "address %s: %s", name, strerror(errno));
        if (a->fd >= 0)
            close(a->fd);
        free(a);
        return MP_ERR_IO;
    }
    ev_io_init(&a->io, accept_cb, a->fd, EV_READ);
    a->io.data = a;
    ev_io_start(server->loop, &a->io);
    *out = a;
    return 0;
}

void mp_admin_free(struct mp_admin *a)
{
    if (!a)
        return;
    while (a->conns) {
        a->conns->quit_after = false;
        conn_free(a->conns);
    }
    ev_io_stop(a->server->loop, &a->io);
    close(a->fd);
    free(a);
}
