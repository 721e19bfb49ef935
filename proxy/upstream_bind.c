/*
 * upstream_bind.c: upstream_bind_config. Istio binds the sidecar's inbound
 * connections to the application to 127.0.0.6 so that its iptables rules can
 * tell them from the application's own traffic (they would otherwise be
 * captured again and loop through the sidecar).
 */
#include "upstream_bind.h"

#include <netinet/in.h>

#include "mp_common.h"

int mp_upstream_bind_source(int fd, const struct sockaddr_storage *src, socklen_t src_len,
                            const struct sockaddr_storage *dst)
{
    if (src_len == 0 || src->ss_family != dst->ss_family)
        return 0;
    if (src->ss_family == AF_INET) {
        /* several connections from one source address: the port comes from
         * connect(), not bind(), so the 4-tuple decides uniqueness */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    return bind(fd, (const struct sockaddr *)src, src_len) < 0 ? MP_ERR_IO : 0;
}
