/*
 * server_dns.c: the main thread's DNS refresh of DNS clusters.
 */
#include "server_dns.h"

#include <ev.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_dns.h"
#include "dns_resolver.h"
#include "log.h"
#include "mp_common.h"
#include "server.h"
#include "snapshot.h"

/* One refreshed cluster: the cluster object it follows and its latest hosts. */
struct dns_entry {
    struct mp_cluster_dns *d;
    const struct mp_cluster *c; /* identity only; d holds the reference */
    struct mp_host_set *hosts;  /* latest refreshed set, or NULL before the first */
    bool seen;                  /* in the snapshot being synced */
};

struct mp_server_dns {
    struct mp_server *server;
    struct mp_dns_resolver *r;
    ev_async wake;
    struct dns_entry *v;
    size_t n;
    bool republish;
};

static void on_hosts(void *arg, struct mp_cluster *c, struct mp_host_set *hs)
{
    struct mp_server_dns *dns = arg;
    for (size_t i = 0; i < dns->n; i++) {
        if (dns->v[i].c == c) {
            mp_host_set_unref(dns->v[i].hosts);
            dns->v[i].hosts = hs;
            dns->republish = true;
            MP_LOG(MP_LOG_UPSTREAM, MP_LOG_INFO, "cluster %s: DNS answer changed: %zu hosts",
                   c->name, hs ? hs->n_hosts : 0);
            return;
        }
    }
    mp_host_set_unref(hs);
}

static void on_answer(void *arg, const struct mp_dns_answer *a)
{
    struct mp_server_dns *dns = arg;
    for (size_t i = 0; i < dns->n; i++)
        if (mp_cluster_dns_on_answer(dns->v[i].d, a))
            return;
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct mp_server_dns *dns = w->data;
    mp_dns_resolver_drain(dns->r, on_answer, dns);
    if (!dns->republish)
        return;
    dns->republish = false;
    /* the configuration in force again, with the refreshed hosts (set by
     * mp_server_dns_sync during publication) */
    struct mp_snapshot *cur = mp_server_current_snapshot(dns->server);
    struct mp_snapshot *next = cur ? mp_snapshot_clone(cur) : NULL;
    mp_snapshot_unref(cur);
    char *err = NULL;
    if (next && mp_snapshot_publish(dns->server, next, &err) < 0)
        MP_LOG(MP_LOG_UPSTREAM, MP_LOG_WARN, "publishing refreshed DNS hosts: %s",
               err ? err : "failed");
    free(err);
}

static void notify(void *arg)
{
    struct mp_server_dns *dns = arg;
    ev_async_send(mp_server_loop(dns->server), &dns->wake);
}

static int dns_new(struct mp_server *server, struct mp_server_dns **out)
{
    struct mp_server_dns *dns = calloc(1, sizeof(*dns));
    if (!dns)
        return MP_ERR_NOMEM;
    dns->server = server;
    ev_async_init(&dns->wake, wake_cb);
    dns->wake.data = dns;
    ev_async_start(mp_server_loop(server), &dns->wake);
    int rc = mp_dns_resolver_new(notify, dns, &dns->r);
    if (rc < 0) {
        ev_async_stop(mp_server_loop(server), &dns->wake);
        free(dns);
        return rc;
    }
    *out = dns;
    return 0;
}

static bool is_dns(const struct mp_cluster *c)
{
    return (c->type == MP_CLUSTER_STRICT_DNS || c->type == MP_CLUSTER_LOGICAL_DNS) &&
           c->n_dns_targets > 0 && c->dns_refresh_ms > 0;
}

int mp_server_dns_sync(struct mp_server *server, struct mp_server_dns **pdns,
                       struct mp_snapshot *snap)
{
    struct mp_server_dns *dns = *pdns;
    for (size_t i = 0; dns && i < dns->n; i++)
        dns->v[i].seen = false;
    int rc = 0;
    for (size_t k = 0; k < snap->n_clusters; k++) {
        struct mp_snapshot_cluster *e = &snap->clusters[k];
        if (!is_dns(e->cluster))
            continue;
        if (!dns) {
            if ((rc = dns_new(server, pdns)) < 0)
                return rc;
            dns = *pdns;
        }
        size_t i = 0;
        while (i < dns->n && dns->v[i].c != e->cluster)
            i++;
        if (i == dns->n) {
            struct dns_entry *v = realloc(dns->v, (dns->n + 1) * sizeof(*v));
            if (!v)
                return MP_ERR_NOMEM;
            dns->v = v;
            memset(&v[i], 0, sizeof(v[i]));
            v[i].c = e->cluster;
            /* entries are appended before the resolver can answer, so on_hosts finds it */
            dns->n++;
            rc = mp_cluster_dns_new(dns->r, e->cluster, on_hosts, dns, &v[i].d);
            if (rc < 0) {
                dns->n--;
                return rc;
            }
        }
        dns->v[i].seen = true;
        if (dns->v[i].hosts && e->hosts != dns->v[i].hosts) {
            mp_host_set_unref(e->hosts);
            e->hosts = mp_host_set_ref(dns->v[i].hosts);
        }
    }
    /* clusters no longer in force stop refreshing */
    size_t k = 0;
    for (size_t i = 0; dns && i < dns->n; i++) {
        if (dns->v[i].seen) {
            dns->v[k++] = dns->v[i];
        } else {
            mp_cluster_dns_free(dns->v[i].d);
            mp_host_set_unref(dns->v[i].hosts);
        }
    }
    if (dns)
        dns->n = k;
    return 0;
}

void mp_server_dns_free(struct mp_server_dns *dns)
{
    if (!dns)
        return;
    for (size_t i = 0; i < dns->n; i++) {
        mp_cluster_dns_free(dns->v[i].d);
        mp_host_set_unref(dns->v[i].hosts);
    }
    free(dns->v);
    mp_dns_resolver_free(dns->r);
    ev_async_stop(mp_server_loop(dns->server), &dns->wake);
    free(dns);
}
