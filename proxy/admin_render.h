/*
 * admin_render.h: the pure parts of the admin endpoint, in Envoy's output
 * shapes: address and host JSON for /clusters?format=json and /listeners,
 * /logging listing and changes, /memory, /runtime, and the POST rule for
 * endpoints that change server state.
 */
#ifndef MP_ADMIN_RENDER_H
#define MP_ADMIN_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/buffer.h"

struct mp_host;
struct mp_locality;

/** A host's counters and gauges as /clusters shows them. */
struct mp_admin_host_stats {
    uint64_t cx_active, cx_connect_fail, cx_total;
    uint64_t rq_active, rq_error, rq_success, rq_timeout, rq_total;
};

/**
 * Appends envoy.config.core.v3.Address JSON for sa:
 * {"socket_address":{"address":"127.0.0.1","port_value":80}} or
 * {"pipe":{"path":"/x.sock"}}. Returns 0 or MP_ERR_NOMEM.
 */
int mp_admin_render_address_json(struct mp_buffer *b, const struct sockaddr *sa);

/**
 * Appends one envoy.admin.v3.HostStatus as JSON: address, stats (SimpleMetric
 * list: counters without "type", gauges with "type":"GAUGE", values as
 * strings as proto3 JSON writes uint64), health_status (eds_health_status
 * and the failed_* flags), weight, hostname, priority, locality (omitted
 * when loc is NULL or empty). Returns 0 or MP_ERR_NOMEM.
 */
int mp_admin_render_host_json(struct mp_buffer *b, const struct mp_host *h,
                              const struct mp_locality *loc, const struct mp_admin_host_stats *st);

struct ssl_ctx_st;

/**
 * Appends one envoy.admin.v3.Certificate JSON object for an SSL_CTX in force:
 * {"ca_cert":[...],"cert_chain":[...]}, each a CertificateDetails with path
 * (ca_path / cert_path, "<inline>" when NULL), serial_number (lower-case
 * hex), subject_alt_names ({"dns"|"uri"|"ip_address":...}),
 * days_until_expiration (a string, as proto3 JSON writes uint64),
 * valid_from and expiration_time (RFC 3339). ca_cert comes from the
 * context's trust store, cert_chain from its leaf and chain certificates;
 * now is seconds since the epoch. Returns 0 or MP_ERR_NOMEM.
 */
int mp_admin_render_certificate(struct mp_buffer *b, struct ssl_ctx_st *ctx, const char *ca_path,
                                const char *cert_path, int64_t now);

/** Appends s as a JSON string literal (quotes and escapes). Returns 0 or MP_ERR_NOMEM. */
int mp_admin_json_str(struct mp_buffer *b, const char *s);

/**
 * Appends Envoy's /logging listing: "active loggers:\n  admin: info\n ...",
 * one line per component, sorted by name. Returns 0 or MP_ERR_NOMEM.
 */
int mp_admin_render_logging(struct mp_buffer *b);

/**
 * Applies a /logging query: "level=<level>" sets every component,
 * "<component>=<level>" one (Envoy's logger names are accepted as
 * mp_log_set_component_levels maps them), "paths=a:l,b:l" several. Query
 * must hold exactly one such parameter, as Envoy requires. Returns 0;
 * MP_ERR_INVAL with *err (caller frees) for an unknown component or level
 * or a malformed query (nothing is changed then).
 */
int mp_admin_logging_apply(const char *query, char **err);

/**
 * Appends Envoy's /memory JSON (envoy.admin.v3.Memory: allocated, heap_size,
 * pageheap_unmapped, pageheap_free, total_thread_cache, total_physical_bytes,
 * uint64 as strings), from jemalloc's mallctl("stats.*") when linked with
 * jemalloc, from the sanitizer allocator's counters under ASan, else from
 * mallinfo2(). Returns 0 or MP_ERR_NOMEM.
 */
int mp_admin_render_memory(struct mp_buffer *b);

/**
 * True when method may serve path. Endpoints that change server state
 * (/quitquitquit, /healthcheck/fail, /healthcheck/ok, /drain_listeners,
 * /reset_counters, /runtime_modify, and /logging with a query) need POST,
 * as Envoy's admin requires; a GET of /logging with no query only lists.
 * When false, *msg is the static body to answer with 405.
 */
bool mp_admin_method_allowed(const char *method, const char *path, const char *query,
                             const char **msg);

/**
 * Finds parameter key in a query string ("a=1&b&c=x"); copies its
 * percent-decoded value (empty for a bare key) into val (cap bytes, NUL
 * terminated, truncated). Returns true when key is present.
 */
bool mp_admin_query_get(const char *query, const char *key, char *val, size_t cap);

#endif
