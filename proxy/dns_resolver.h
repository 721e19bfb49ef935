/*
 * dns_resolver.h: blocking getaddrinfo() kept off the workers.
 *
 * One helper thread owns every query. A query (host name, port, family,
 * refresh interval) is resolved at once and then every refresh interval;
 * each answer is queued under a mutex and the owner's notify function is
 * called on the helper thread (typically ev_async_send on the main loop).
 * The owner then calls mp_dns_resolver_drain on its own thread, which runs
 * its callback for each queued answer. The mutex is on the control path
 * only: workers never touch the resolver.
 */
#ifndef MP_DNS_RESOLVER_H
#define MP_DNS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cluster.h" /* enum mp_dns_family */

struct mp_dns_resolver;

/* One resolution result. */
struct mp_dns_answer {
    uint64_t query_id;
    int status;        /* 0, or MP_ERR_NOTFOUND (no such name / no address), MP_ERR_IO */
    const char *error; /* gai_strerror text when status != 0 */
    struct sockaddr_storage *addrs; /* port already set to the query's port */
    socklen_t *addr_lens;
    size_t n_addrs;
};

/* Called on the resolver thread after an answer is queued. Must not block. */
typedef void (*mp_dns_notify_fn)(void *arg);

/* Called by mp_dns_resolver_drain for each answer; the answer is freed after it returns. */
typedef void (*mp_dns_answer_fn)(void *arg, const struct mp_dns_answer *answer);

/**
 * Starts the resolver thread. notify (may be NULL) is called from that
 * thread whenever answers are waiting. *out is owned by the caller (free with
 * mp_dns_resolver_free). Returns 0, MP_ERR_NOMEM or MP_ERR_IO.
 */
int mp_dns_resolver_new(mp_dns_notify_fn notify, void *arg, struct mp_dns_resolver **out);

/**
 * Stops the thread (waiting for an in-flight getaddrinfo to return), frees
 * queries and undrained answers. NULL is fine.
 */
void mp_dns_resolver_free(struct mp_dns_resolver *r);

/**
 * Adds a query resolved now and every refresh_ms (0 = once). hostname is
 * copied. *id receives an id (never 0) that answers carry. Returns 0,
 * MP_ERR_NOMEM or MP_ERR_INVAL (empty name).
 */
int mp_dns_resolver_add(struct mp_dns_resolver *r, const char *hostname, uint16_t port,
                        enum mp_dns_family family, uint64_t refresh_ms, uint64_t *id);

/**
 * Removes a query; queued answers for it are dropped at drain. Returns 0 or
 * MP_ERR_NOTFOUND.
 */
int mp_dns_resolver_remove(struct mp_dns_resolver *r, uint64_t id);

/**
 * Runs cb for each queued answer, in arrival order, on the calling thread,
 * and frees them. Returns the number of answers delivered.
 */
size_t mp_dns_resolver_drain(struct mp_dns_resolver *r, mp_dns_answer_fn cb, void *arg);

/**
 * Resolves once, synchronously, on the calling thread (helper for the
 * resolver thread and tests; never call it on a worker). *answer is filled
 * and must be released with mp_dns_answer_clear. Returns answer->status.
 */
int mp_dns_resolve(const char *hostname, uint16_t port, enum mp_dns_family family,
                   struct mp_dns_answer *answer);

/** Frees the address arrays of an answer filled by mp_dns_resolve. */
void mp_dns_answer_clear(struct mp_dns_answer *answer);

#endif
