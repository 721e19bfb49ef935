/* lb_hosts.c: the host list of the simple load-balancing policies. */
#include "lb_hosts.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "mp_common.h"

int mp_lb_hosts_copy(struct mp_host *const *hosts, size_t n, struct mp_host ***out)
{
    struct mp_host **v = malloc(n * sizeof(*v));
    if (v == NULL)
        return MP_ERR_NOMEM;
    memcpy(v, hosts, n * sizeof(*v));
    *out = v;
    return 0;
}

bool mp_lb_hosts_weighted(struct mp_host *const *hosts, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (hosts[i]->weight != hosts[0]->weight)
            return true;
    return false;
}
