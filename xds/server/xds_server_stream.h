/*
 * xds_server_stream.h: one client stream of meshproxy-xds (SotW or delta
 * ADS, or a per-type xDS service such as SDS), served from a store. Runs on
 * the grpc thread only.
 */
#ifndef MP_XDS_SERVER_STREAM_H
#define MP_XDS_SERVER_STREAM_H

#include <stdbool.h>

#include <grpc/grpc.h>

#include "xds_client.h"
#include "xds_store.h"

struct mp_grpc_thread;
struct mp_xds_sstream;

/* What a stream needs from its server. */
struct mp_xds_sstream_host {
    struct mp_grpc_thread *gt;
    /* the store to serve now (not referenced: the stream refs it) */
    struct mp_xds_store *(*store)(void *ctx);
    /* the stream is gone; called once, after which st is freed */
    void (*on_closed)(void *ctx, struct mp_xds_sstream *st);
    void *ctx;
};

/**
 * Serves an accepted call. mode is the protocol the method speaks; a
 * method that is not an xDS stream is answered with UNIMPLEMENTED
 * (pass supported = false). Takes ownership of call. Returns the stream
 * (freed by itself after host->on_closed), or NULL when out of memory (the
 * call is then cancelled and released).
 */
struct mp_xds_sstream *mp_xds_sstream_start(const struct mp_xds_sstream_host *host, grpc_call *call,
                                            const char *method, enum mp_xds_mode mode,
                                            bool supported);

/** The store changed: sends what each subscribed type now lacks. */
void mp_xds_sstream_push(struct mp_xds_sstream *st);

/** Cancels the stream (server shutdown); it closes asynchronously. */
void mp_xds_sstream_cancel(struct mp_xds_sstream *st);

/** Stream list links, for the server (NULL-initialised by start). */
struct mp_xds_sstream **mp_xds_sstream_next(struct mp_xds_sstream *st);

#endif
