/*
 * upstream_bind.h: a cluster's upstream_bind_config applied to an upstream
 * socket before it connects.
 */
#ifndef MP_UPSTREAM_BIND_H
#define MP_UPSTREAM_BIND_H

#include <sys/socket.h>

/**
 * Binds fd to src (src_len bytes; 0 = nothing to do) when src has the family
 * of dst, the address the socket will connect to: a source of the other
 * family is skipped, as Envoy does when a cluster reaches hosts of both
 * families. Returns 0, or MP_ERR_IO when bind fails (errno kept; the caller
 * closes fd).
 */
int mp_upstream_bind_source(int fd, const struct sockaddr_storage *src, socklen_t src_len,
                            const struct sockaddr_storage *dst);

#endif
