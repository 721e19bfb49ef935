/*
 * admin.c: the admin endpoint. One request per connection (answers carry
 * "connection: close"), served on the main loop.
 */
#include "admin.h"
#include "admin_config_dump.h"
#include "admin_render.h"

#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
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
#include "tls_config.h"
#include "tls_context.h"
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
            const struct mp_circuit_breakers *cb = &c->circuit_breakers[0];
            mp_buffer_appendf(b, "%s{\"name\":", i ? "," : "");
            json_str(b, c->name);
            mp_buffer_appendf(b, ",\"observability_name\":");
            json_str(b, c->name);
            if (c->added_via_api)
                mp_buffer_appendf(b, ",\"added_via_api\":true");
            mp_buffer_appendf(b,
                              ",\"circuit_breakers\":{\"thresholds\":[{\"max_connections\":%u,"
                              "\"max_pending_requests\":%u,\"max_requests\":%u,"
                              "\"max_retries\":%u}]}",
                              cb->max_connections, cb->max_pending_requests, cb->max_requests,
                              cb->max_retries);
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
                const struct mp_admin_host_stats st = {.cx_active = v[0],
                                                       .cx_connect_fail = v[1],
                                                       .cx_total = v[2],
                                                       .rq_active = v[3],
                                                       .rq_error = v[4],
                                                       .rq_success = v[5],
                                                       .rq_timeout = v[6],
                                                       .rq_total = v[7]};
                const struct mp_locality *loc =
                    h->locality_index < e->hosts->n_localities
                        ? &e->hosts->localities[h->locality_index].locality
                        : NULL;
                if (j)
                    mp_buffer_appendf(b, ",");
                mp_admin_render_host_json(b, h, loc, &st);
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

/* Wall-clock microseconds as protobuf's Timestamp JSON ("...T..Z"). */
static void format_time(int64_t wall_us, char *buf, size_t cap)
{
    time_t t = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(wall_us / 1000 % 1000));
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
    /* Static secrets; their private keys are redacted by the filter that
     * every answer goes through. last_updated is when the server started,
     * as bootstrap secrets never change. */
    char started[40];
    format_time(s->start_wall_us, started, sizeof(started));
    mp_buffer_appendf(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\","
                         "\"static_secrets\":[");
    for (size_t i = 0; sr && i < sr->n_secrets; i++) {
        mp_buffer_appendf(b, "%s{\"name\":", i ? "," : "");
        json_str(b, sr->secrets[i]->name);
        mp_buffer_appendf(b, ",\"last_updated\":\"%s\",\"secret\":", started);
        any_json(b, &sr->secrets[i]->base, "envoy.extensions.transport_sockets.tls.v3.Secret");
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

static void render_listeners(struct mp_server *s, struct mp_buffer *b, bool json)
{
    struct mp_snapshot *snap = s->current;
    if (json) {
        mp_buffer_appendf(b, "{\"listener_statuses\":[");
        for (size_t i = 0; snap && i < snap->n_listeners; i++) {
            mp_buffer_appendf(b, "%s{\"name\":", i ? "," : "");
            json_str(b, snap->listeners[i]->name);
            mp_buffer_appendf(b, ",\"local_address\":");
            mp_admin_render_address_json(b, (const struct sockaddr *)&snap->listeners[i]->addr);
            mp_buffer_appendf(b, "}");
        }
        mp_buffer_appendf(b, "]}\n");
        return;
    }
    for (size_t i = 0; snap && i < snap->n_listeners; i++) {
        char addr[80];
        mp_sockaddr_format((const struct sockaddr *)&snap->listeners[i]->addr, addr, sizeof(addr));
        mp_buffer_appendf(b, "%s::%s\n", snap->listeners[i]->name, addr);
    }
}

/* One /certs entry per TLS context in force (listener filter chains and
 * cluster transport sockets), each context once. */
static void render_one_cert(struct mp_buffer *b, struct mp_tls_context *ctx,
                            struct mp_tls_context **seen, size_t *n_seen, size_t cap, int64_t now)
{
    if (!ctx)
        return;
    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i] == ctx)
            return;
    if (*n_seen < cap)
        seen[(*n_seen)++] = ctx;
    const struct mp_tls_config *cfg = mp_tls_context_config(ctx);
    const char *cert_path = NULL, *ca_path = NULL;
    if (cfg && cfg->n_certs)
        cert_path = cfg->certs[0].chain.origin;
    else if (cfg && cfg->n_cert_sds)
        cert_path = cfg->cert_sds[0].name;
    if (cfg && cfg->validation && cfg->validation->trusted_ca.len)
        ca_path = cfg->validation->trusted_ca.origin;
    else if (cfg && cfg->validation_sds)
        ca_path = cfg->validation_sds->name;
    if (*n_seen > 1)
        mp_buffer_appendf(b, ",");
    mp_admin_render_certificate(b, mp_tls_context_ssl_ctx(ctx), ca_path, cert_path, now);
}

static void render_certs(struct mp_server *s, struct mp_buffer *b)
{
    struct mp_snapshot *snap = s->current;
    struct mp_tls_context *seen[256];
    size_t n_seen = 0;
    int64_t now = mp_wall_us() / 1000000;
    mp_buffer_appendf(b, "{\"certificates\":[");
    for (size_t i = 0; snap && i < snap->n_listeners; i++) {
        const struct mp_listener_config *l = snap->listeners[i];
        for (size_t j = 0; j < l->n_chains; j++)
            render_one_cert(b, l->chains[j].tls, seen, &n_seen, MP_ARRAY_LEN(seen), now);
        if (l->default_chain)
            render_one_cert(b, l->default_chain->tls, seen, &n_seen, MP_ARRAY_LEN(seen), now);
    }
    for (size_t i = 0; snap && i < snap->n_clusters; i++) {
        const struct mp_snapshot_cluster *e = &snap->clusters[i];
        render_one_cert(b, e->tls, seen, &n_seen, MP_ARRAY_LEN(seen), now);
        for (size_t j = 0; e->match_tls && j < e->cluster->n_transport_socket_matches; j++)
            render_one_cert(b, e->match_tls[j], seen, &n_seen, MP_ARRAY_LEN(seen), now);
    }
    mp_buffer_appendf(b, "]}\n");
}

static const char *const endpoints[][2] = {
    {"/", "this list"},
    {"/certs", "print certs on machine"},
    {"/clusters", "upstream cluster status (?format=json)"},
    {"/config_dump", "dump current Envoy configs"},
    {"/drain_listeners", "drain listeners (POST; ?graceful, ?inboundonly)"},
    {"/healthcheck/fail", "cause the server to fail health checks (POST)"},
    {"/healthcheck/ok", "cause the server to pass health checks (POST)"},
    {"/hot_restart_version", "print the hot restart compatibility version"},
    {"/listeners", "print listener info (?format=json)"},
    {"/logging", "query/change logging levels (POST ?level=, ?<component>=)"},
    {"/memory", "print current allocation/heap usage"},
    {"/quitquitquit", "exit the server (POST)"},
    {"/ready", "print server state, return 200 if LIVE, otherwise return 503"},
    {"/reset_counters", "reset all counters to zero (POST)"},
    {"/runtime", "print runtime values"},
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
    const char *deny = NULL;

    if (!mp_admin_method_allowed(method, path, query, &deny)) {
        /* Envoy refuses a state change by GET so that a crawler or a stray
         * browser prefetch cannot stop or drain the proxy. */
        status = 405;
        mp_buffer_appendf(&b, "%s", deny);
    } else if (strcmp(path, "/logging") == 0) {
        char *err = NULL;
        if (query && *query && mp_admin_logging_apply(query, &err) != 0) {
            status = 400;
            mp_buffer_appendf(&b, "%s\n", err ? err : "bad request");
        }
        free(err);
        mp_admin_render_logging(&b);
    } else if (strcmp(path, "/reset_counters") == 0) {
        if (mp_stats_reset_counters(s->stats) == 0) {
            mp_buffer_appendf(&b, "OK\n");
        } else {
            status = 500;
            mp_buffer_appendf(&b, "out of memory\n");
        }
    } else if (strcmp(path, "/memory") == 0) {
        mp_admin_render_memory(&b);
        ctype = "application/json";
    } else if (strcmp(path, "/runtime") == 0) {
        /* meshproxy has no runtime layers (no layered_runtime support). */
        mp_buffer_appendf(&b, "{\"entries\":{},\"layers\":[]}\n");
        ctype = "application/json";
    } else if (strcmp(path, "/hot_restart_version") == 0) {
        /* Hot restart is not implemented; Envoy built without it says this. */
        mp_buffer_appendf(&b, "disabled\n");
    } else if (strncmp(path, "/stats", 6) == 0 &&
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
        char fmt[16] = "";
        bool json =
            mp_admin_query_get(query, "format", fmt, sizeof(fmt)) && strcmp(fmt, "json") == 0;
        render_clusters(s, &b, json);
        if (json)
            ctype = "application/json";
    } else if (strcmp(path, "/config_dump") == 0) {
        struct mp_buffer full = MP_BUFFER_INIT;
        render_config_dump(s, &full);
        char resource[128], mask[512], regex[512];
        struct mp_admin_dump_query q = {
            .resource =
                mp_admin_query_get(query, "resource", resource, sizeof(resource)) ? resource : NULL,
            .mask = mp_admin_query_get(query, "mask", mask, sizeof(mask)) ? mask : NULL,
            .name_regex =
                mp_admin_query_get(query, "name_regex", regex, sizeof(regex)) ? regex : NULL,
            .include_eds = query_has(query, "include_eds"),
        };
        size_t len = mp_buffer_len(&full);
        const char *text = len ? mp_buffer_linearize(&full, len) : NULL;
        char *err = NULL;
        int rc = text ? mp_admin_config_dump_filter(text, len, &q, &b, &err) : MP_ERR_NOMEM;
        if (rc != 0) {
            mp_buffer_clear(&b);
            status = rc == MP_ERR_NOTFOUND ? 404 : rc == MP_ERR_INVAL ? 400 : 500;
            mp_buffer_appendf(&b, "%s\n", err ? err : "config dump failed");
        } else {
            ctype = "application/json";
        }
        free(err);
        mp_buffer_clear(&full);
    } else if (strcmp(path, "/certs") == 0) {
        render_certs(s, &b);
        ctype = "application/json";
    } else if (strcmp(path, "/ready") == 0) {
        enum mp_server_state st = mp_server_state(s);
        mp_buffer_appendf(&b, "%s\n", state_name(st));
        status = st == MP_SERVER_LIVE && !s->healthcheck_failed ? 200 : 503;
    } else if (strcmp(path, "/server_info") == 0) {
        render_server_info(s, &b);
        ctype = "application/json";
    } else if (strcmp(path, "/listeners") == 0) {
        char fmt[16] = "";
        bool json =
            mp_admin_query_get(query, "format", fmt, sizeof(fmt)) && strcmp(fmt, "json") == 0;
        render_listeners(s, &b, json);
        if (json)
            ctype = "application/json";
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
    MP_LOG(MP_LOG_ADMIN, MP_LOG_DEBUG, "admin: %s %s: %d", method, target, status);
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
