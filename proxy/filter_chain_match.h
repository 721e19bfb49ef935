/*
 * filter_chain_match.h: Envoy's FilterChainMatch and its selection order.
 *
 * A listener with several filter chains picks one per connection by narrowing
 * the candidates one criterion at a time, in Envoy's order:
 *   1. destination_port       (exact port, else chains with none)
 *   2. prefix_ranges          (longest prefix holding the destination IP, else none)
 *   3. server_names           (exact SNI, then the longest wildcard `*.suffix`, else none)
 *   4. transport_protocol     (exact, else none)
 *   5. application_protocols  (one of the connection's ALPN, else none)
 *   6. direct_source_prefix_ranges (longest, else none)
 *   7. source_type            (LOCAL/EXTERNAL as it applies, else ANY)
 *   8. source_prefix_ranges   (longest, else none)
 *   9. source_ports           (exact, else none)
 * A criterion that leaves no candidate means no chain matches (the
 * listener's default_filter_chain is then used, if any).
 */
#ifndef MP_FILTER_CHAIN_MATCH_H
#define MP_FILTER_CHAIN_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "envoy/config/listener/v3/listener_components.pb-c.h"

/** An address prefix (CidrRange). */
struct mp_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; bits past len are zero */
    uint8_t len;      /* prefix length in bits */
};

enum mp_fc_source_type {
    MP_FC_SOURCE_ANY = 0,
    MP_FC_SOURCE_LOCAL = 1, /* SAME_IP_OR_LOOPBACK */
    MP_FC_SOURCE_EXTERNAL = 2,
};

/** FilterChainMatch, translated. Empty fields match anything. */
struct mp_fc_match {
    uint32_t destination_port; /* 0 = any */
    struct mp_cidr *prefix_ranges;
    size_t n_prefix_ranges;
    char **server_names; /* lowercased; "*.example.com" for wildcards */
    size_t n_server_names;
    char *transport_protocol; /* NULL = any */
    char **application_protocols;
    size_t n_application_protocols;
    struct mp_cidr *direct_source_prefix_ranges;
    size_t n_direct_source_prefix_ranges;
    enum mp_fc_source_type source_type;
    struct mp_cidr *source_prefix_ranges;
    size_t n_source_prefix_ranges;
    uint32_t *source_ports;
    size_t n_source_ports;
};

/** What is known about a connection when its chain is chosen; NULL/0 = unknown. */
struct mp_fc_conn {
    const struct sockaddr *dst;        /* local (or original destination) address */
    const struct sockaddr *src;        /* remote address (after PROXY protocol) */
    const struct sockaddr *direct_src; /* remote address of the socket; NULL = src */
    const char *sni;                   /* from tls_inspector; NULL or "" = none */
    const char *transport;             /* "tls" / "raw_buffer"; NULL = "raw_buffer" */
    const char *const *alpn;           /* offered ALPN (tls_inspector / http_inspector) */
    size_t n_alpn;
};

/**
 * Translates pb (may be NULL: matches everything) into out, which the caller
 * provides and later releases with mp_fc_match_clear. Returns 0, MP_ERR_NOMEM,
 * or MP_ERR_INVAL with *err naming the field ("prefix_ranges[1].address_prefix:
 * invalid IP address \"x\""). out is cleared on failure.
 */
int mp_fc_match_translate(const Envoy__Config__Listener__V3__FilterChainMatch *pb,
                          struct mp_fc_match *out, char **err);

/** Releases what m holds and zeroes it. */
void mp_fc_match_clear(struct mp_fc_match *m);

/** Parses "10.0.0.0" + len into c. Returns 0 or MP_ERR_INVAL (bad address or length). */
int mp_cidr_parse(const char *addr, uint32_t len, struct mp_cidr *c);

/** Returns true when sa (AF_INET/AF_INET6; v4-mapped v6 counts as v4) lies in c. */
bool mp_cidr_contains(const struct mp_cidr *c, const struct sockaddr *sa);

/**
 * Chooses among n chains (matches[i] describes chain i) for conn with the
 * order above. Returns the index of the chosen chain, or -1 when none
 * matches. When several remain after every criterion (Envoy refuses such a
 * listener), the first of them is returned.
 */
ssize_t mp_fc_select(const struct mp_fc_match *const *matches, size_t n,
                     const struct mp_fc_conn *conn);

/**
 * Checks that no two chains have the same match (Envoy refuses such a
 * listener: "multiple filter chains with the same matching rules"). Returns 0,
 * or MP_ERR_INVAL with *err naming the two chains by index.
 */
int mp_fc_check_unique(const struct mp_fc_match *const *matches, size_t n, char **err);

#endif
