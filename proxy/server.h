/*
 * server.h: the process runtime: main thread (admin, signals, drain, snapshot
 * publication) and the worker threads.
 */
#ifndef MP_SERVER_H
#define MP_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"

struct mp_options; /* proxy/options.h */
struct mp_server;
struct mp_snapshot;

/** Server lifecycle, as /server_info and /ready report it. */
enum mp_server_state {
    MP_SERVER_INITIALIZING = 0,
    MP_SERVER_LIVE = 1,
    MP_SERVER_DRAINING = 2,
    MP_SERVER_PRE_INITIALIZING = 3,
};

/**
 * Runs the proxy until told to stop: builds the first snapshot from the
 * bootstrap's static_resources, opens the admin listener, starts
 * opts->concurrency workers (nproc when 0), and runs the main loop. SIGTERM
 * and SIGINT drain (stop accepting, GOAWAY / close idle connections) and exit
 * when the connections are done or the drain time passes. The bootstrap stays
 * owned by the caller and must outlive the call. Returns 0 on a clean exit, or
 * a negative MP_ERR_* when start-up fails (the reason is printed to stderr).
 */
int mp_server_run(const struct mp_options *opts,
                  Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap);

/** The server's libev main loop (for the xDS client and other main-thread code). */
struct ev_loop *mp_server_loop(struct mp_server *server);

/** Current lifecycle state (any thread). */
enum mp_server_state mp_server_state(const struct mp_server *server);

/**
 * Starts draining (main thread): listeners stop accepting, HTTP/2 connections
 * get GOAWAY, idle HTTP/1 connections close, busy ones close after their
 * response. With exit_when_drained, the process exits when no connection is
 * left or the drain time passes. inbound_only limits it to listeners whose
 * traffic_direction is INBOUND.
 */
void mp_server_drain(struct mp_server *server, bool inbound_only, bool exit_when_drained);

/** Asks the main loop to exit cleanly (any thread). */
void mp_server_stop(struct mp_server *server);

/** The stats registry (main-thread slot: mp_stats_main_slot). */
struct mp_stats *mp_server_stats(struct mp_server *server);

struct mp_grpc_thread; /* xds/grpc_thread.h */
/**
 * The process's one grpc thread (xds/grpc_thread.h), started on first use:
 * xDS streams, ext_authz and rate limit calls all run on it. Any thread; the
 * server owns it and stops it after the workers at exit. NULL when it cannot
 * be started (out of memory, thread creation failed).
 */
struct mp_grpc_thread *mp_server_grpc_thread(struct mp_server *server);
/**
 * Registers fn(arg) to run on the main thread when the main loop has ended,
 * before the workers and the grpc thread stop (in reverse order of
 * registration): components started by mp_server_on_start stop here.
 * Returns 0 or MP_ERR_NOMEM.
 */
int mp_server_add_stop_hook(struct mp_server *server, void (*fn)(void *arg), void *arg);
/**
 * Keeps the server INITIALIZING (/ready 503) after start-up until
 * mp_server_init_done: the xDS client holds it until the first complete
 * CDS/EDS/LDS/RDS set is in force. Main thread, from mp_server_on_start.
 */
void mp_server_init_hold(struct mp_server *server);
/** Ends mp_server_init_hold: the server turns LIVE (unless draining). Main thread. */
void mp_server_init_done(struct mp_server *server);
/** Number of worker threads. */
unsigned mp_server_worker_count(const struct mp_server *server);

/**
 * Called with the server once it is built and before the main loop runs
 * (e.g. main.c starts the xDS client here). Set before mp_server_run; the
 * hook may call mp_snapshot_publish. A negative return aborts start-up.
 */
extern int (*mp_server_on_start)(struct mp_server *server, void *arg);
extern void *mp_server_on_start_arg;

struct mp_buffer;
struct mp_tls_secret;

/**
 * Registers where TLS contexts find SDS secrets by name when a snapshot is
 * published (the xDS client's SDS store); the bootstrap's static secrets are
 * searched first. fn runs on the main thread and returns a borrowed secret or
 * NULL. A chain or cluster whose secret is missing stays warming: its
 * connections are refused until a snapshot published later has it.
 */
void mp_server_set_secret_lookup(struct mp_server *server,
                                 const struct mp_tls_secret *(*fn)(void *arg, const char *name),
                                 void *arg);

/**
 * Tells the server that secrets behind the lookup changed (SDS rotation):
 * the next publication builds new cluster TLS contexts instead of sharing
 * the ones in force. Main thread.
 */
void mp_server_secrets_changed(struct mp_server *server);
/**
 * Registers a function that appends more entries (JSON objects, each
 * preceded by a comma) to /config_dump's "configs" array: dynamic resources.
 */
void mp_server_set_config_dump(struct mp_server *server,
                               void (*fn)(void *arg, struct mp_buffer *out), void *arg);

#endif
