/*
 * ext_authz_check.h: the messages of envoy.service.auth.v3.Authorization:
 * building a CheckRequest from a request's attributes, and reading a
 * CheckResponse into the header edits and the reply the filter applies.
 * Pure functions of their inputs (no stream, no I/O), so they are tested on
 * their own.
 */
#ifndef MP_FILTER_EXT_AUTHZ_CHECK_H
#define MP_FILTER_EXT_AUTHZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http_headers.h"
#include "proxy/route_table.h"

/* Which request headers go to the authorization server (ListStringMatcher). */
struct mp_ext_authz_header_filter {
    const struct mp_string_match *allowed; /* allowed_headers; has_allowed false = all */
    size_t n_allowed;
    bool has_allowed;
    const struct mp_string_match *disallowed; /* disallowed_headers: wins over allowed */
    size_t n_disallowed;
};

/** What the CheckRequest says about one downstream request. */
struct mp_ext_authz_attrs {
    const struct mp_headers *headers; /* the request headers, pseudo-headers included */
    const char *source;               /* downstream remote "ip:port"; may be NULL */
    const char *destination;          /* downstream local "ip:port"; may be NULL */
    const char *source_principal;     /* TLS peer URI SAN (else subject); may be NULL */
    const char *sni;                  /* TLS SNI, when include_tls_session; may be NULL */
    const char *protocol;             /* "HTTP/1.1", "HTTP/2" */
    int64_t time_us;                  /* wall clock of the request start */
    const struct mp_ext_authz_header_filter *filter; /* NULL: every header */
    const char *const *context_extensions; /* key, value pairs (CheckSettings); may be NULL */
    size_t n_context_extensions;
    /* with_request_body: the buffered body (or its first max_request_bytes) */
    bool with_body;
    const char *body;
    size_t body_len;
    bool body_partial;  /* sent as header x-envoy-auth-partial-body: true|false */
    bool body_as_bytes; /* pack_as_bytes: raw_body instead of body */
};

/**
 * True when header name[0..len) (lower case) passes filter: it matches
 * allowed (or allowed is unset) and matches no disallowed entry.
 */
bool mp_ext_authz_header_allowed(const struct mp_ext_authz_header_filter *filter, const char *name,
                                 size_t len);

/**
 * Serializes an envoy.service.auth.v3.CheckRequest for a: attributes.source /
 * destination (socket addresses and the source principal), request.time,
 * request.http (id from x-request-id, method, path, host, scheme, query and
 * fragment split off the path, size from content-length or -1, protocol, the
 * allowed headers with repeated names joined by ","), tls_session.sni,
 * context_extensions and, with with_body, body or raw_body plus the
 * x-envoy-auth-partial-body header. *out is malloc'd (freed by the caller). Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_ext_authz_check_request_pack(const struct mp_ext_authz_attrs *a, uint8_t **out, size_t *len);

enum mp_ext_authz_verdict {
    MP_EXT_AUTHZ_OK = 0,
    MP_EXT_AUTHZ_DENIED = 1,
    MP_EXT_AUTHZ_ERROR = 2, /* the answer could not be read */
};

/* HeaderValueOption actions, as Envoy applies them to the upstream request. */
enum mp_ext_authz_header_action {
    MP_EXT_AUTHZ_APPEND = 0,        /* APPEND_IF_EXISTS_OR_ADD, or append: true */
    MP_EXT_AUTHZ_ADD_IF_ABSENT = 1, /* ADD_IF_ABSENT */
    MP_EXT_AUTHZ_SET = 2,           /* OVERWRITE_IF_EXISTS_OR_ADD, or append: false */
    MP_EXT_AUTHZ_SET_IF_EXISTS = 3, /* OVERWRITE_IF_EXISTS */
    MP_EXT_AUTHZ_N_ACTIONS = 4,
};

/** A CheckResponse, read. Owns everything it points to. */
struct mp_ext_authz_result {
    enum mp_ext_authz_verdict verdict;
    int grpc_code;   /* CheckResponse.status.code */
    int http_status; /* DENIED: denied_response.status (0 = unset: 403) */
    struct mp_headers upstream[MP_EXT_AUTHZ_N_ACTIONS]; /* OK: request header edits */
    struct mp_headers remove; /* OK: headers_to_remove (names; values empty) */
    struct mp_headers client; /* DENIED: reply headers; OK: response_headers_to_add */
    char *body;               /* DENIED: reply body; NULL when none */
};

/** Makes r empty (no allocation). */
void mp_ext_authz_result_init(struct mp_ext_authz_result *r);

/** Frees what r holds; r is empty afterwards. */
void mp_ext_authz_result_clear(struct mp_ext_authz_result *r);

/**
 * Reads a serialized CheckResponse into r (initialised by the caller):
 * status.code 0 is OK (ok_response header edits), anything else DENIED
 * (denied_response status, headers, body). Returns 0, MP_ERR_PARSE when the
 * bytes do not decode (r->verdict is then ERROR), or MP_ERR_NOMEM.
 */
int mp_ext_authz_check_response_parse(const uint8_t *data, size_t len,
                                      struct mp_ext_authz_result *r);

/**
 * Applies r's OK edits to the upstream request headers h: removals, then
 * set / append / add-if-absent / set-if-exists. Pseudo-headers are never
 * removed (Envoy forbids it). Returns 0 or MP_ERR_NOMEM.
 */
int mp_ext_authz_apply_upstream(const struct mp_ext_authz_result *r, struct mp_headers *h);

#endif
