/*
 * server_int.h: the server's state, shared by server.c and admin.c only.
 */
#ifndef MP_SERVER_INT_H
#define MP_SERVER_INT_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server.h"
#include "worker.h"

struct mp_stats;
struct mp_admin;
struct mp_tls_secret;

/* One listener's sockets: one SO_REUSEPORT socket per worker. */
struct mp_srv_listener {
    char *name;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int *fds; /* n_workers; owned by the workers once posted */
    int direction;
};

/** Appends dynamic resources to /config_dump (the xDS client registers it). */
typedef void (*mp_config_dump_fn)(void *arg, struct mp_buffer *out);

struct mp_server {
    const struct mp_options *opts;
    Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap;
    struct ev_loop *loop;
    unsigned n_workers;
    struct mp_worker **workers;
    struct mp_stats *stats;
    struct mp_snapshot *current;
    uint64_t version;
    struct mp_srv_listener *listeners;
    size_t n_listeners;
    _Atomic int state;
    int64_t start_wall_us;
    bool healthcheck_failed;
    bool exit_when_drained;
    int64_t drain_deadline_us;
    ev_signal sigterm, sigint, sigpipe_dummy;
    ev_timer flush_timer;
    ev_timer stats_timer;
    ev_timer drain_timer;
    ev_async wake;
    struct mp_admin *admin;
    struct mp_tls_secret **secrets; /* bootstrap static_resources.secrets */
    size_t n_secrets;
    const struct mp_tls_secret *(*secret_lookup)(void *arg, const char *name); /* SDS, or NULL */
    void *secret_lookup_arg;
    uint64_t secrets_gen;         /* bumped when SDS secrets change */
    uint64_t current_secrets_gen; /* secrets_gen when current was published */
    mp_config_dump_fn dump_fn;
    void *dump_arg;
    struct mp_counter *log_dropped;
    pthread_mutex_t grpc_mu; /* guards the first start of grpc only */
    struct mp_grpc_thread *_Atomic grpc;
    struct mp_srv_hook *stop_hooks; /* newest first */
    struct mp_server_dns *dns;      /* DNS refresh (server_dns.h), or NULL */
    bool init_held;
    struct mp_snapshot *_Atomic released; /* from workers, freed here (release_next list) */
};

struct mp_srv_hook {
    void (*fn)(void *arg);
    void *arg;
    struct mp_srv_hook *next;
};

#endif
