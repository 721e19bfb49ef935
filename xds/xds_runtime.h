/*
 * xds_runtime.h: xDS wired into the running server.
 *
 * From the bootstrap's dynamic_resources it starts the ADS client (SotW or
 * delta) on the server's grpc thread, plus one SDS client per SDS source
 * cluster the accepted resources name (Istio's "sds-grpc" Unix socket).
 * Every update goes into an xDS store (xds_store.h) on the grpc thread; each
 * change builds a snapshot there and hands it to the main thread, which
 * publishes it (mp_snapshot_publish) with the accepted secrets. The server
 * stays INITIALIZING (/ready 503) until the first complete CDS/EDS/LDS/RDS
 * set is in force. While the control plane is away the last snapshot keeps
 * serving; the client reconnects with backoff.
 */
#ifndef MP_XDS_RUNTIME_H
#define MP_XDS_RUNTIME_H

#include <stdbool.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"

struct mp_server;

/** True when the bootstrap asks for xDS (dynamic_resources with ads_config). */
bool mp_xds_runtime_wanted(const Envoy__Config__Bootstrap__V3__Bootstrap *b);

/**
 * mp_server_on_start hook: arg is the bootstrap (which outlives the
 * server). Starts the clients and registers the stop hook, the secret
 * lookup and the /config_dump extension. Main thread. Returns 0, or a
 * negative MP_ERR_* after printing why to stderr.
 */
int mp_xds_runtime_start(struct mp_server *server, void *bootstrap);

#endif
