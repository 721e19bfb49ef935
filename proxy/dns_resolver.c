/*
 * dns_resolver.c: periodic getaddrinfo() on one helper thread.
 *
 * The thread sleeps on a condition variable until the earliest query is
 * due, resolves it with the lock released, queues the answer and calls the
 * owner's notify function. getaddrinfo has no timeout; the helper thread is
 * the only one that ever waits on it.
 */
#include "dns_resolver.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mp_common.h"

struct query {
    struct query *next;
    uint64_t id;
    char *hostname;
    uint16_t port;
    enum mp_dns_family family;
    uint64_t refresh_ms;
    uint64_t due_ms; /* monotonic; UINT64_MAX = never again */
};

struct answer_node {
    struct answer_node *next;
    struct mp_dns_answer a;
};

struct mp_dns_resolver {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct query *queries;
    uint64_t next_id;
    uint64_t busy_id; /* query being resolved with the lock released, 0 if none */
    struct answer_node *head, *tail;
    mp_dns_notify_fn notify;
    void *notify_arg;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void mp_dns_answer_clear(struct mp_dns_answer *a)
{
    free(a->addrs);
    free(a->addr_lens);
    a->addrs = NULL;
    a->addr_lens = NULL;
    a->n_addrs = 0;
}

static bool keep_family(enum mp_dns_family fam, int af, bool have_v4, bool have_v6)
{
    switch (fam) {
    case MP_DNS_V4_ONLY: return af == AF_INET;
    case MP_DNS_V6_ONLY: return af == AF_INET6;
    case MP_DNS_AUTO: return have_v6 ? af == AF_INET6 : af == AF_INET;
    case MP_DNS_V4_PREFERRED: return have_v4 ? af == AF_INET : af == AF_INET6;
    case MP_DNS_ALL: return af == AF_INET || af == AF_INET6;
    }
    return false;
}

int mp_dns_resolve(const char *hostname, uint16_t port, enum mp_dns_family family,
                   struct mp_dns_answer *answer)
{
    memset(answer, 0, sizeof(*answer));
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = family == MP_DNS_V4_ONLY   ? AF_INET
                      : family == MP_DNS_V6_ONLY ? AF_INET6
                                                 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(hostname, NULL, &hints, &res);
    if (rc != 0) {
        answer->status = (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY)
                             ? MP_ERR_NOTFOUND
                             : MP_ERR_IO;
        answer->error = gai_strerror(rc);
        return answer->status;
    }
    size_t n = 0;
    bool have_v4 = false, have_v6 = false;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        n++;
        have_v4 |= ai->ai_family == AF_INET;
        have_v6 |= ai->ai_family == AF_INET6;
    }
    answer->addrs = calloc(n ? n : 1, sizeof(*answer->addrs));
    answer->addr_lens = calloc(n ? n : 1, sizeof(*answer->addr_lens));
    if (answer->addrs == NULL || answer->addr_lens == NULL) {
        freeaddrinfo(res);
        mp_dns_answer_clear(answer);
        answer->status = MP_ERR_NOMEM;
        answer->error = "out of memory";
        return answer->status;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (!keep_family(family, ai->ai_family, have_v4, have_v6) ||
            ai->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        /* getaddrinfo repeats an address when /etc/hosts lists it twice. */
        bool dup = false;
        for (size_t i = 0; i < answer->n_addrs && !dup; i++)
            dup = answer->addr_lens[i] == ai->ai_addrlen &&
                  memcmp(&answer->addrs[i], &ss, ai->ai_addrlen) == 0;
        if (dup)
            continue;
        answer->addrs[answer->n_addrs] = ss;
        answer->addr_lens[answer->n_addrs] = ai->ai_addrlen;
        answer->n_addrs++;
    }
    freeaddrinfo(res);
    if (answer->n_addrs == 0) {
        answer->status = MP_ERR_NOTFOUND;
        answer->error = "no address of the requested family";
    }
    return answer->status;
}

static struct query *earliest(struct mp_dns_resolver *r)
{
    struct query *best = NULL;
    for (struct query *q = r->queries; q != NULL; q = q->next)
        if (best == NULL || q->due_ms < best->due_ms)
            best = q;
    return best;
}

static struct query *find(struct mp_dns_resolver *r, uint64_t id)
{
    for (struct query *q = r->queries; q != NULL; q = q->next)
        if (q->id == id)
            return q;
    return NULL;
}

static void *resolver_main(void *arg)
{
    struct mp_dns_resolver *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct query *q = earliest(r);
        uint64_t now = now_ms();
        if (q == NULL || q->due_ms == UINT64_MAX) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        if (q->due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = q->due_ms - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            continue;
        }
        /* Copy what we need: the query may be removed while we resolve. */
        uint64_t id = q->id;
        char *name = strdup(q->hostname);
        uint16_t port = q->port;
        enum mp_dns_family fam = q->family;
        q->due_ms = q->refresh_ms ? now + q->refresh_ms : UINT64_MAX;
        r->busy_id = id;
        pthread_mutex_unlock(&r->mu);

        struct answer_node *node = calloc(1, sizeof(*node));
        if (node != NULL && name != NULL)
            mp_dns_resolve(name, port, fam, &node->a);
        else if (node != NULL)
            node->a.status = MP_ERR_NOMEM;
        free(name);

        pthread_mutex_lock(&r->mu);
        r->busy_id = 0;
        bool notify = false;
        if (node != NULL && find(r, id) != NULL) {
            node->a.query_id = id;
            if (r->tail != NULL)
                r->tail->next = node;
            else
                r->head = node;
            r->tail = node;
            notify = true;
        } else if (node != NULL) {
            mp_dns_answer_clear(&node->a);
            free(node);
        }
        if (notify && r->notify != NULL) {
            /* Notify without the lock so the owner may drain from inside notify. */
            pthread_mutex_unlock(&r->mu);
            r->notify(r->notify_arg);
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int mp_dns_resolver_new(mp_dns_notify_fn notify, void *arg, struct mp_dns_resolver **out)
{
    struct mp_dns_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MP_ERR_NOMEM;
    r->notify = notify;
    r->notify_arg = arg;
    r->next_id = 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(r);
        return MP_ERR_NOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return MP_ERR_IO;
    }
    *out = r;
    return 0;
}

void mp_dns_resolver_free(struct mp_dns_resolver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    while (r->queries != NULL) {
        struct query *q = r->queries;
        r->queries = q->next;
        free(q->hostname);
        free(q);
    }
    while (r->head != NULL) {
        struct answer_node *n = r->head;
        r->head = n->next;
        mp_dns_answer_clear(&n->a);
        free(n);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int mp_dns_resolver_add(struct mp_dns_resolver *r, const char *hostname, uint16_t port,
                        enum mp_dns_family family, uint64_t refresh_ms, uint64_t *id)
{
    if (hostname == NULL || hostname[0] == '\0')
        return MP_ERR_INVAL;
    struct query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return MP_ERR_NOMEM;
    q->hostname = strdup(hostname);
    if (q->hostname == NULL) {
        free(q);
        return MP_ERR_NOMEM;
    }
    q->port = port;
    q->family = family;
    q->refresh_ms = refresh_ms;
    q->due_ms = 0; /* resolve at once */
    pthread_mutex_lock(&r->mu);
    q->id = r->next_id++;
    q->next = r->queries;
    r->queries = q;
    if (id != NULL)
        *id = q->id;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int mp_dns_resolver_remove(struct mp_dns_resolver *r, uint64_t id)
{
    int rc = MP_ERR_NOTFOUND;
    pthread_mutex_lock(&r->mu);
    for (struct query **pp = &r->queries; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct query *q = *pp;
            *pp = q->next;
            free(q->hostname);
            free(q);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

size_t mp_dns_resolver_drain(struct mp_dns_resolver *r, mp_dns_answer_fn cb, void *arg)
{
    pthread_mutex_lock(&r->mu);
    struct answer_node *list = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    size_t n = 0;
    while (list != NULL) {
        struct answer_node *node = list;
        list = node->next;
        /* A query removed after its answer was queued gets no callback. */
        pthread_mutex_lock(&r->mu);
        bool live = find(r, node->a.query_id) != NULL;
        pthread_mutex_unlock(&r->mu);
        if (live && cb != NULL) {
            cb(arg, &node->a);
            n++;
        }
        mp_dns_answer_clear(&node->a);
        free(node);
    }
    return n;
}
