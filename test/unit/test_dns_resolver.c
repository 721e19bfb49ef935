/* Unit tests for dns_resolver.c and cluster_dns.c: real getaddrinfo on "localhost". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/cluster_dns.h"
#include "proxy/dns_resolver.h"
#include "proxy/mp_common.h"

static void resolves_localhost_synchronously(void **state)
{
    (void)state;
    struct mp_dns_answer a;
    assert_int_equal(mp_dns_resolve("localhost", 8080, MP_DNS_V4_ONLY, &a), 0);
    assert_true(a.n_addrs >= 1);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.addrs[0];
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    mp_dns_answer_clear(&a);

    /* IP literals resolve to themselves, with no DNS traffic. */
    assert_int_equal(mp_dns_resolve("::1", 443, MP_DNS_ALL, &a), 0);
    assert_int_equal(a.n_addrs, 1);
    assert_int_equal(a.addrs[0].ss_family, AF_INET6);
    mp_dns_answer_clear(&a);

    /* A v4 literal has no v6 address: V6_ONLY finds nothing. */
    assert_int_not_equal(mp_dns_resolve("127.0.0.1", 1, MP_DNS_V6_ONLY, &a), 0);
    assert_int_equal(a.n_addrs, 0);
    assert_non_null(a.error);
    mp_dns_answer_clear(&a);
}

struct collected {
    int n;
    uint64_t ids[8];
    int status[8];
    char first_addr[8][64];
};

static void on_answer(void *arg, const struct mp_dns_answer *a)
{
    struct collected *c = arg;
    if (c->n >= 8)
        return;
    c->ids[c->n] = a->query_id;
    c->status[c->n] = a->status;
    if (a->n_addrs > 0)
        mp_host_addr_format(&a->addrs[0], c->first_addr[c->n], sizeof(c->first_addr[0]));
    c->n++;
}

static void notify_pipe(void *arg)
{
    int fd = *(int *)arg;
    char b = 1;
    /* Non-fatal if the pipe is full: the reader drains everything at once. */
    if (write(fd, &b, 1) < 0) {
    }
}

/* Waits (bounded) for a notify, then drains. */
static void wait_and_drain(struct mp_dns_resolver *r, int rfd, struct collected *c, int want)
{
    for (int tries = 0; tries < 50 && c->n < want; tries++) {
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            char buf[16];
            if (read(rfd, buf, sizeof(buf)) < 0) {
            }
        }
        mp_dns_resolver_drain(r, on_answer, c);
    }
}

static void resolver_thread_delivers_and_refreshes(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct mp_dns_resolver *r;
    assert_int_equal(mp_dns_resolver_new(notify_pipe, &fds[1], &r), 0);
    uint64_t id;
    assert_int_equal(mp_dns_resolver_add(r, "localhost", 9000, MP_DNS_V4_ONLY, 100, &id), 0);
    assert_true(id != 0);

    struct collected c = {0};
    wait_and_drain(r, fds[0], &c, 1);
    assert_true(c.n >= 1);
    assert_true(c.ids[0] == id);
    assert_int_equal(c.status[0], 0);
    assert_string_equal(c.first_addr[0], "127.0.0.1:9000");

    /* The 100 ms refresh brings another answer without asking. */
    wait_and_drain(r, fds[0], &c, 2);
    assert_true(c.n >= 2);
    assert_true(c.ids[1] == id);

    /* After removal no more answers for it are delivered. */
    assert_int_equal(mp_dns_resolver_remove(r, id), 0);
    assert_int_equal(mp_dns_resolver_remove(r, id), MP_ERR_NOTFOUND);
    int before = c.n;
    usleep(250 * 1000);
    mp_dns_resolver_drain(r, on_answer, &c);
    assert_int_equal(c.n, before);

    assert_int_equal(mp_dns_resolver_add(r, "", 1, MP_DNS_AUTO, 0, &id), MP_ERR_INVAL);
    mp_dns_resolver_free(r);
    close(fds[0]);
    close(fds[1]);
}

static void free_with_pending_queries_and_answers(void **state)
{
    (void)state;
    struct mp_dns_resolver *r;
    assert_int_equal(mp_dns_resolver_new(NULL, NULL, &r), 0);
    uint64_t id;
    assert_int_equal(mp_dns_resolver_add(r, "localhost", 1, MP_DNS_V4_ONLY, 10, &id), 0);
    assert_int_equal(mp_dns_resolver_add(r, "127.0.0.1", 2, MP_DNS_V4_ONLY, 0, &id), 0);
    usleep(50 * 1000);
    mp_dns_resolver_free(r); /* must not leak undrained answers (ASan checks) */
}

static void answers_become_a_host_set(void **state)
{
    (void)state;
    struct mp_cluster *c = mp_cluster_new("dns");
    c->type = MP_CLUSTER_STRICT_DNS;
    c->n_dns_targets = 2;
    c->dns_targets = calloc(2, sizeof(*c->dns_targets));
    for (int i = 0; i < 2; i++) {
        c->dns_targets[i].hostname = strdup(i == 0 ? "localhost" : "127.0.0.1");
        c->dns_targets[i].port = (uint16_t)(80 + i);
        c->dns_targets[i].weight = 2;
        c->dns_targets[i].priority = (uint32_t)i;
        c->dns_targets[i].locality.region = strdup("r");
        c->dns_targets[i].locality.zone = strdup("z");
        c->dns_targets[i].locality.sub_zone = strdup("");
    }
    struct mp_dns_answer a0, a1;
    assert_int_equal(mp_dns_resolve("localhost", 80, MP_DNS_V4_ONLY, &a0), 0);
    assert_int_equal(mp_dns_resolve("127.0.0.1", 81, MP_DNS_V4_ONLY, &a1), 0);
    const struct mp_dns_answer *answers[2] = {&a0, &a1};
    struct mp_host_set *hs;
    assert_int_equal(mp_host_set_from_dns(c, answers, &hs), 0);
    assert_true(hs->n_hosts >= 2);
    assert_int_equal(hs->n_priorities, 2);
    assert_string_equal(hs->hosts[0].addr_str, "127.0.0.1:80");
    assert_string_equal(hs->hosts[0].hostname, "localhost");
    assert_int_equal(hs->hosts[0].weight, 2);
    assert_string_equal(hs->priorities[1].hosts[0].addr_str, "127.0.0.1:81");
    mp_host_set_free(hs);

    /* A failed target contributes no hosts; the rest still do. */
    const struct mp_dns_answer *partial[2] = {NULL, &a1};
    assert_int_equal(mp_host_set_from_dns(c, partial, &hs), 0);
    assert_int_equal(hs->n_hosts, 1);
    mp_host_set_free(hs);
    mp_dns_answer_clear(&a0);
    mp_dns_answer_clear(&a1);
    mp_cluster_free(c);
}

struct updates {
    int n;
    size_t last_hosts;
    char first[64];
};

static void on_update(void *arg, struct mp_cluster *c, struct mp_host_set *hs)
{
    struct updates *u = arg;
    assert_string_equal(c->name, "dnscl");
    u->n++;
    u->last_hosts = hs->n_hosts;
    if (hs->n_hosts > 0)
        snprintf(u->first, sizeof(u->first), "%s", hs->hosts[0].addr_str);
    mp_host_set_free(hs);
}

static struct mp_cluster_dns *dispatch_target;

static void dispatch(void *arg, const struct mp_dns_answer *a)
{
    (void)arg;
    assert_true(mp_cluster_dns_on_answer(dispatch_target, a));
}

static void dns_cluster_publishes_on_change_only(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct mp_dns_resolver *r;
    assert_int_equal(mp_dns_resolver_new(notify_pipe, &fds[1], &r), 0);

    struct mp_cluster *c = mp_cluster_new("dnscl");
    c->type = MP_CLUSTER_STRICT_DNS;
    c->dns_family = MP_DNS_V4_ONLY;
    c->dns_refresh_ms = 50;
    c->n_dns_targets = 2;
    c->dns_targets = calloc(2, sizeof(*c->dns_targets));
    for (int i = 0; i < 2; i++) {
        c->dns_targets[i].hostname = strdup(i == 0 ? "localhost" : "127.0.0.2");
        c->dns_targets[i].port = 7000;
        c->dns_targets[i].weight = 1;
        c->dns_targets[i].locality.region = strdup("");
        c->dns_targets[i].locality.zone = strdup("");
        c->dns_targets[i].locality.sub_zone = strdup("");
    }
    struct updates u = {0};
    struct mp_cluster_dns *d;
    assert_int_equal(mp_cluster_dns_new(r, c, on_update, &u, &d), 0);
    mp_cluster_unref(c); /* d holds its own reference */
    dispatch_target = d;
    assert_false(mp_cluster_dns_ready(d));

    /* Wait up to 2 s for both targets, then several refresh rounds. */
    for (int i = 0; i < 40 && !(mp_cluster_dns_ready(d) && u.n >= 1); i++) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        char buf[64];
        if (poll(&p, 1, 50) > 0 && read(fds[0], buf, sizeof(buf)) < 0) {
        }
        mp_dns_resolver_drain(r, dispatch, NULL);
    }
    assert_true(mp_cluster_dns_ready(d));
    assert_int_equal(u.n, 1);
    assert_true(u.last_hosts >= 2);
    assert_string_equal(u.first, "127.0.0.1:7000");
    usleep(300 * 1000); /* ~6 refreshes of unchanged addresses */
    mp_dns_resolver_drain(r, dispatch, NULL);
    assert_int_equal(u.n, 1);

    mp_cluster_dns_free(d);
    mp_dns_resolver_free(r);
    close(fds[0]);
    close(fds[1]);

    struct mp_cluster *st = mp_cluster_new("static");
    assert_int_equal(mp_cluster_dns_new(NULL, st, on_update, &u, &d), MP_ERR_INVAL);
    mp_cluster_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolves_localhost_synchronously),
        cmocka_unit_test(resolver_thread_delivers_and_refreshes),
        cmocka_unit_test(free_with_pending_queries_and_answers),
        cmocka_unit_test(answers_become_a_host_set),
        cmocka_unit_test(dns_cluster_publishes_on_change_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
