/*
 * admin.h: the admin HTTP endpoint on the main thread (bootstrap admin.address).
 *
 * Serves /, /stats, /stats/prometheus, /clusters, /config_dump, /ready,
 * /server_info, /listeners, /quitquitquit (POST), /healthcheck/fail,
 * /healthcheck/ok, /drain_listeners (POST, ?graceful, ?inboundonly).
 */
#ifndef MP_ADMIN_H
#define MP_ADMIN_H

#include <sys/socket.h>

struct mp_server;
struct mp_admin;

/**
 * Opens the admin listener on addr and serves it on the server's main loop.
 * Returns 0 and *out (free with mp_admin_free), or MP_ERR_IO with *err
 * naming the address.
 */
int mp_admin_start(struct mp_server *server, const struct sockaddr *addr, socklen_t len,
                   struct mp_admin **out, char **err);

/** Closes the admin listener and its connections. NULL is a no-op. */
void mp_admin_free(struct mp_admin *a);

#endif
