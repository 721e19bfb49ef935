/*
 * xds_server.h: meshproxy-xds's gRPC server: serves SotW and delta ADS
 * (and the per-type xDS services, SDS among them) from a directory of
 * resource files, and pushes changes when the directory is reloaded.
 */
#ifndef MP_XDS_SERVER_H
#define MP_XDS_SERVER_H

#include <stdbool.h>

struct mp_grpc_thread;
struct mp_xds_server;

struct mp_xds_server_config {
    const char *listen; /* "127.0.0.1:18000", "[::]:18000", "unix:/path"; port 0 = any */
    const char *dir;    /* resource folder (see README.md) */
    bool sotw;          /* serve the StreamX (state of the world) methods */
    bool delta;         /* serve the DeltaX methods */
};

/**
 * Loads cfg->dir, binds cfg->listen and starts serving on grpc thread gt.
 * Returns 0, MP_ERR_NOMEM, MP_ERR_IO (cannot bind) or a load error, with
 * *err saying what went wrong. *out is freed with mp_xds_server_free.
 */
int mp_xds_server_new(struct mp_grpc_thread *gt, const struct mp_xds_server_config *cfg,
                      struct mp_xds_server **out, char **err);

/** The TCP port bound (useful with port 0), or 0 for a Unix socket. */
int mp_xds_server_port(const struct mp_xds_server *s);

/**
 * Re-reads the folder. If anything changed, bumps the versions of the
 * types that changed and pushes them to every stream. Keeps serving the
 * previous resources when the folder does not load. Any thread but the
 * grpc thread. Returns 0 (also when nothing changed) or the load error
 * with *err.
 */
int mp_xds_server_reload(struct mp_xds_server *s, char **err);

/**
 * Stops accepting, cancels every stream, waits until grpc has released
 * them, frees the server. Before mp_grpc_thread_free. NULL is a no-op.
 */
void mp_xds_server_free(struct mp_xds_server *s);

#endif
