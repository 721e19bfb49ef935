/*
 * route_table.h: the immutable route table (envoy.config.route.v3) that
 * xds_translate_route.c builds from a RouteConfiguration and router_match.c
 * matches requests against.
 *
 * Everything here is built once, on the main thread, and then only read: one
 * mp_route_config is shared by all worker threads without locks. All of its
 * memory (strings, arrays, the path index) lives in one arena owned by the
 * config, released when its last reference goes (mp_route_config_unref(), or
 * mp_route_config_free() which is the same). Strings are NUL-terminated
 * and also carry their length. Durations are milliseconds; -1 means "not set".
 */
#ifndef MP_ROUTE_TABLE_H
#define MP_ROUTE_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_regex;       /* compiled pcre2 pattern (route_regex.h) */
struct mp_route_index; /* per-vhost path index (route_index.h) */
struct mp_route_arena; /* bump allocator owning the config's memory */
struct mp_vhost;

/* ---- the request as the router sees it ---------------------------------- */

/** One request header; names are lowercase. Not NUL-terminated. */
struct mp_header_view {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/**
 * What route matching reads from a request. It does not depend on the data
 * path's header map: the caller points at its own bytes. Pseudo-headers
 * (":authority", ":path", ":method", ":scheme") may also appear in headers[];
 * when they do not, header matchers on them use the fields below.
 */
struct mp_route_request {
    const char *authority; /* :authority, or Host for HTTP/1 */
    size_t authority_len;
    const char *path; /* :path including the query string */
    size_t path_len;
    const char *method;
    size_t method_len;
    const char *scheme; /* "http" / "https"; may be NULL */
    size_t scheme_len;
    const struct mp_header_view *headers;
    size_t n_headers;
    uint64_t random; /* for runtime_fraction matches (Envoy's random value) */
};

/* ---- matchers ------------------------------------------------------------ */

/** envoy.type.matcher.v3.StringMatcher. */
enum mp_string_match_kind {
    MP_STRING_MATCH_EXACT,
    MP_STRING_MATCH_PREFIX,
    MP_STRING_MATCH_SUFFIX,
    MP_STRING_MATCH_CONTAINS,
    MP_STRING_MATCH_REGEX, /* whole-string match, as RE2 FullMatch */
};

struct mp_string_match {
    enum mp_string_match_kind kind;
    bool ignore_case;  /* not applied to REGEX, as in Envoy */
    const char *value; /* lowercased when ignore_case */
    size_t value_len;
    const struct mp_regex *regex; /* REGEX only */
};

enum mp_header_match_kind {
    MP_HEADER_MATCH_STRING,  /* exact/prefix/suffix/contains/safe_regex/string_match */
    MP_HEADER_MATCH_RANGE,   /* value parses as int64 in [start, end) */
    MP_HEADER_MATCH_PRESENT, /* present_match (or no specifier: present) */
};

/** envoy.config.route.v3.HeaderMatcher. */
struct mp_header_match {
    const char *name; /* lowercase */
    size_t name_len;
    enum mp_header_match_kind kind;
    struct mp_string_match str;     /* STRING */
    int64_t range_start, range_end; /* RANGE */
    bool present;                   /* PRESENT: true = must be present, false = must be absent */
    bool invert;
    bool treat_missing_as_empty;
};

/** envoy.config.route.v3.QueryParameterMatcher. */
struct mp_query_match {
    const char *name;
    size_t name_len;
    bool present_only; /* present_match, or no string_match */
    struct mp_string_match str;
};

enum mp_path_match_kind {
    MP_PATH_PREFIX,
    MP_PATH_EXACT,
    MP_PATH_REGEX,
    MP_PATH_SEPARATED_PREFIX,
    MP_PATH_CONNECT, /* connect_matcher: method CONNECT */
};

struct mp_route_match {
    enum mp_path_match_kind kind;
    const char *path; /* prefix / exact path / separated prefix */
    size_t path_len;
    const struct mp_regex *regex; /* MP_PATH_REGEX */
    bool case_sensitive;          /* default true */
    bool grpc;                    /* match.grpc: content-type is application/grpc* */
    bool has_runtime_fraction;
    uint32_t fraction_numerator;   /* runtime_fraction.default_value */
    uint32_t fraction_denominator; /* 100, 10000 or 1000000 */
    const struct mp_header_match *headers;
    size_t n_headers;
    const struct mp_query_match *query_params;
    size_t n_query_params;
};

/* ---- per-route (and vhost, config) decorations -------------------------- */

/** HeaderValueOption.append_action (Envoy's enum values). */
enum mp_header_append {
    MP_HEADER_APPEND_IF_EXISTS_OR_ADD = 0,
    MP_HEADER_ADD_IF_ABSENT = 1,
    MP_HEADER_OVERWRITE_IF_EXISTS_OR_ADD = 2,
    MP_HEADER_OVERWRITE_IF_EXISTS = 3,
};

/**
 * One header to add. The value is kept as written: Envoy's %...% substitution
 * formatters (e.g. %DOWNSTREAM_REMOTE_ADDRESS%) are expanded by the data path.
 */
struct mp_header_add {
    const char *name; /* lowercase */
    size_t name_len;
    const char *value;
    size_t value_len;
    enum mp_header_append append;
    bool keep_empty_value;
};

/** request/response headers_to_add/_remove at one level. */
struct mp_header_ops {
    const struct mp_header_add *request_add;
    size_t n_request_add;
    const char *const *request_remove; /* lowercase */
    size_t n_request_remove;
    const struct mp_header_add *response_add;
    size_t n_response_add;
    const char *const *response_remove;
    size_t n_response_remove;
};

/**
 * typed_per_filter_config entry, kept raw for the filter to parse: the key
 * is the filter name ("envoy.filters.http.fault"), type_url/value the Any.
 * An envoy.config.route.v3.FilterConfig wrapper is unwrapped: type_url and
 * value are its inner config ("" / empty when it has none) and its flags
 * are kept.
 */
struct mp_typed_config {
    const char *filter_name;
    const char *type_url;
    const uint8_t *value;
    size_t value_len;
    bool disabled;    /* FilterConfig.disabled: the filter is off here */
    bool is_optional; /* FilterConfig.is_optional */
};

struct mp_typed_configs {
    const struct mp_typed_config *items;
    size_t n;
};

/** retry_on conditions (Envoy's names in comments); see route_retry.h. */
enum mp_retry_on {
    MP_RETRY_ON_5XX = 1u << 0,                         /* 5xx */
    MP_RETRY_ON_GATEWAY_ERROR = 1u << 1,               /* gateway-error */
    MP_RETRY_ON_RESET = 1u << 2,                       /* reset */
    MP_RETRY_ON_CONNECT_FAILURE = 1u << 3,             /* connect-failure */
    MP_RETRY_ON_RETRIABLE_4XX = 1u << 4,               /* retriable-4xx */
    MP_RETRY_ON_REFUSED_STREAM = 1u << 5,              /* refused-stream */
    MP_RETRY_ON_RETRIABLE_STATUS_CODES = 1u << 6,      /* retriable-status-codes */
    MP_RETRY_ON_RETRIABLE_HEADERS = 1u << 7,           /* retriable-headers */
    MP_RETRY_ON_ENVOY_RATELIMITED = 1u << 8,           /* envoy-ratelimited */
    MP_RETRY_ON_RESET_BEFORE_REQUEST = 1u << 9,        /* reset-before-request */
    MP_RETRY_ON_HTTP3_POST_CONNECT_FAILURE = 1u << 10, /* http3-post-connect-failure */
    MP_RETRY_ON_GRPC_CANCELLED = 1u << 16,             /* cancelled */
    MP_RETRY_ON_GRPC_DEADLINE_EXCEEDED = 1u << 17,     /* deadline-exceeded */
    MP_RETRY_ON_GRPC_RESOURCE_EXHAUSTED = 1u << 18,    /* resource-exhausted */
    MP_RETRY_ON_GRPC_UNAVAILABLE = 1u << 19,           /* unavailable */
    MP_RETRY_ON_GRPC_INTERNAL = 1u << 20,              /* internal */
};

/** envoy.config.route.v3.RetryPolicy, as the router filter needs it. */
struct mp_retry_policy {
    const char *retry_on;       /* comma-separated, as configured; "" when unset */
    uint32_t retry_on_flags;    /* enum mp_retry_on bits parsed from retry_on */
    uint32_t num_retries;       /* default 1 when a policy is present */
    int64_t per_try_timeout_ms; /* -1 = unset (global timeout applies) */
    int64_t per_try_idle_timeout_ms;
    const uint32_t *retriable_status_codes;
    size_t n_retriable_status_codes;
    bool previous_hosts; /* retry_host_predicate envoy.retry_host_predicates.previous_hosts */
    int64_t host_selection_retry_max_attempts;
    int64_t backoff_base_ms; /* default 25 */
    int64_t backoff_max_ms;  /* default 10 * base */
};

enum mp_hash_policy_kind {
    MP_HASH_HEADER,
    MP_HASH_COOKIE,
    MP_HASH_SOURCE_IP,
    MP_HASH_QUERY_PARAMETER,
};

/** RouteAction.HashPolicy for ring_hash / maglev. */
struct mp_hash_policy {
    enum mp_hash_policy_kind kind;
    const char *name; /* header (lowercase), cookie or query parameter name */
    size_t name_len;
    bool terminal;
    int64_t cookie_ttl_ms;   /* -1 = unset (do not generate a cookie) */
    const char *cookie_path; /* may be NULL */
};

enum mp_rate_limit_action_kind {
    MP_RL_SOURCE_CLUSTER,              /* ("source_cluster", local cluster name) */
    MP_RL_DESTINATION_CLUSTER,         /* ("destination_cluster", routed cluster) */
    MP_RL_REQUEST_HEADERS,             /* (descriptor_key, value of header_name) */
    MP_RL_REMOTE_ADDRESS,              /* ("remote_address", downstream ip) */
    MP_RL_MASKED_REMOTE_ADDRESS,       /* ("masked_remote_address", ip/mask) */
    MP_RL_GENERIC_KEY,                 /* (descriptor_key, descriptor_value) */
    MP_RL_HEADER_VALUE_MATCH,          /* (descriptor_key, descriptor_value) if headers match */
    MP_RL_QUERY_PARAMETER_VALUE_MATCH, /* same, on query_params */
};

/** RateLimit.Action: one descriptor entry (the ratelimit filters build them). */
struct mp_rate_limit_action {
    enum mp_rate_limit_action_kind kind;
    const char
        *descriptor_key; /* Envoy's defaults filled in ("generic_key", "header_match", ...) */
    const char *descriptor_value;
    const char *header_name; /* REQUEST_HEADERS, lowercase */
    size_t header_name_len;
    bool skip_if_absent;                   /* REQUEST_HEADERS */
    bool expect_match;                     /* *_VALUE_MATCH; default true */
    const struct mp_header_match *headers; /* HEADER_VALUE_MATCH */
    size_t n_headers;
    const struct mp_query_match *query_params; /* QUERY_PARAMETER_VALUE_MATCH */
    size_t n_query_params;
    uint32_t v4_prefix_len, v6_prefix_len; /* MASKED: default 32 / 128 */
};

/** envoy.config.route.v3.RateLimit: one descriptor (all actions must yield). */
struct mp_rate_limit {
    uint32_t stage;
    const char *disable_key; /* "" when unset */
    const struct mp_rate_limit_action *actions;
    size_t n_actions;
};

/** One entry of weighted_clusters. */
struct mp_weighted_cluster {
    const char *name;           /* NULL when cluster_header is used */
    const char *cluster_header; /* lowercase; may be NULL */
    uint32_t weight;
    const char *host_rewrite_literal; /* may be NULL */
    struct mp_header_ops headers;
    struct mp_typed_configs per_filter;
};

/** RouteAction.RequestMirrorPolicy: shadow a copy of the request. */
struct mp_mirror_policy {
    const char *cluster;                    /* NULL when cluster_header is used */
    const char *cluster_header;             /* lowercase; may be NULL */
    uint32_t numerator;                     /* sample numerator/denominator of requests; */
    uint32_t denominator;                   /* 100/100 when runtime_fraction is unset */
    bool disable_shadow_host_suffix_append; /* else "-shadow" goes on the host */
};

enum mp_cluster_kind {
    MP_CLUSTER_NAME,     /* route.cluster */
    MP_CLUSTER_WEIGHTED, /* route.weighted_clusters */
    MP_CLUSTER_HEADER,   /* route.cluster_header */
};

struct mp_upgrade_config {
    const char *upgrade_type; /* lowercase, e.g. "websocket" */
    bool enabled;
};

/** RouteAction: forward upstream. */
struct mp_route_action {
    enum mp_cluster_kind cluster_kind;
    const char *cluster;                        /* NAME */
    const char *cluster_header;                 /* HEADER, lowercase */
    const struct mp_weighted_cluster *weighted; /* WEIGHTED */
    size_t n_weighted;
    uint64_t total_weight;           /* sum of weights, > 0 */
    uint16_t cluster_not_found_code; /* 503 (default), 404 or 500 */

    const char *prefix_rewrite; /* NULL = none */
    size_t prefix_rewrite_len;
    const struct mp_regex *regex_rewrite; /* NULL = none */
    const char *regex_rewrite_subst;      /* translated to pcre2 syntax ($1) */

    const char *host_rewrite_literal; /* NULL = none */
    bool auto_host_rewrite;
    const char *host_rewrite_header; /* lowercase; NULL = none */

    int64_t timeout_ms;                    /* default 15000; 0 = no timeout */
    int64_t idle_timeout_ms;               /* -1 = unset (HCM stream_idle_timeout) */
    int64_t max_stream_duration_ms;        /* -1 = unset */
    int64_t grpc_timeout_header_max_ms;    /* -1 = unset, 0 = no cap */
    int64_t grpc_timeout_header_offset_ms; /* -1 = unset */

    bool has_retry_policy; /* own, or inherited from the virtual host */
    struct mp_retry_policy retry;

    const struct mp_hash_policy *hash_policies;
    size_t n_hash_policies;
    const struct mp_upgrade_config *upgrades;
    size_t n_upgrades;
    const struct mp_rate_limit *rate_limits;
    size_t n_rate_limits;
    bool include_vh_rate_limits;
    /* Own request_mirror_policies, else the virtual host's, else the route
     * config's (the most specific level that has any wins, as Envoy). */
    const struct mp_mirror_policy *mirrors;
    size_t n_mirrors; /* deprecated flag, kept for the filter */
};

/** RedirectAction; NULL / 0 fields keep the request's value. */
struct mp_redirect_action {
    const char *scheme; /* "https" for https_redirect */
    const char *host;
    uint32_t port;              /* 0 = keep */
    const char *path;           /* path_redirect: replaces the path (may carry a query) */
    const char *prefix_rewrite; /* replaces the matched prefix */
    const struct mp_regex *regex_rewrite;
    const char *regex_rewrite_subst;
    uint16_t response_code; /* 301 (default), 302, 303, 307, 308 */
    bool strip_query;
};

/** DirectResponseAction; the body was read from its DataSource. */
struct mp_direct_response {
    uint16_t status;
    const char *body; /* may be NULL (no body) */
    size_t body_len;
};

enum mp_route_action_kind {
    MP_ROUTE_ACTION_ROUTE,
    MP_ROUTE_ACTION_REDIRECT,
    MP_ROUTE_ACTION_DIRECT_RESPONSE,
    MP_ROUTE_ACTION_NON_FORWARDING,
};

struct mp_route {
    const char *name;             /* "" when unnamed */
    size_t index;                 /* position in its virtual host */
    const struct mp_vhost *vhost; /* back pointer to the owner */
    struct mp_route_match match;
    enum mp_route_action_kind action_kind;
    union {
        struct mp_route_action route;
        struct mp_redirect_action redirect;
        struct mp_direct_response direct;
    };
    struct mp_header_ops headers;
    struct mp_typed_configs per_filter;
};

enum mp_vhost_tls {
    MP_VHOST_TLS_NONE = 0,
    MP_VHOST_TLS_EXTERNAL_ONLY = 1,
    MP_VHOST_TLS_ALL = 2,
};

struct mp_vhost {
    const char *name;
    const char *const *domains; /* lowercase, as configured */
    size_t n_domains;
    const struct mp_route *routes; /* in configured (first-match) order */
    size_t n_routes;
    const struct mp_route_index *index;
    struct mp_header_ops headers;
    struct mp_typed_configs per_filter;
    const struct mp_rate_limit *rate_limits;
    size_t n_rate_limits;
    enum mp_vhost_tls require_tls;
    bool include_request_attempt_count;
};

/** A domain -> virtual host entry of the lookup tables. */
struct mp_domain_entry {
    const char *key; /* lowercase: whole domain, or the part beside the '*' */
    size_t key_len;
    const struct mp_vhost *vhost;
};

/** envoy.config.route.v3.RouteConfiguration, translated. Immutable. */
struct mp_route_config {
    const char *name;
    const struct mp_vhost *vhosts;
    size_t n_vhosts;
    struct mp_header_ops headers;
    const char *const *internal_only_headers;
    size_t n_internal_only_headers;
    struct mp_typed_configs per_filter;
    bool ignore_port_in_host_matching;
    bool most_specific_header_mutations_wins;
    uint32_t max_direct_response_body;      /* bytes; default 4096 */
    const struct mp_mirror_policy *mirrors; /* config-level request_mirror_policies */
    size_t n_mirrors;

    /* Virtual host lookup tables, built by the translation. exact: sorted by
     * key; suffix ("*.foo.com" -> ".foo.com") and prefix ("foo.*" ->
     * "foo.") sorted by key length descending, then key. */
    const struct mp_domain_entry *exact;
    size_t n_exact;
    const struct mp_domain_entry *suffix;
    size_t n_suffix;
    const struct mp_domain_entry *prefix;
    size_t n_prefix;
    const struct mp_vhost *default_vhost; /* domain "*", or NULL */

    /* Ownership (private to the route module). */
    _Atomic uint32_t refs; /* snapshots sharing this config */
    struct mp_route_arena *arena;
    struct mp_regex *regexes; /* list of compiled patterns to free */
};

/**
 * Takes one more reference to cfg (a new snapshot keeping an unchanged
 * RouteConfiguration). Thread-safe. Returns cfg.
 */
struct mp_route_config *mp_route_config_ref(struct mp_route_config *cfg);

/**
 * Drops one reference; the last one frees the config and everything it owns
 * (all strings, tables, compiled regexes). NULL is allowed. A config from
 * mp_route_config_from_proto() or mp_route_config_new() starts with one.
 */
void mp_route_config_unref(struct mp_route_config *cfg);

/** Same as mp_route_config_unref() (the name translation callers use). */
void mp_route_config_free(struct mp_route_config *cfg);

/* ---- arena (used by the route module's translation) ---------------------- */

/**
 * Creates an empty config with its arena. Returns NULL when out of memory.
 * Free with mp_route_config_free().
 */
struct mp_route_config *mp_route_config_new(void);

/**
 * Allocates n zeroed bytes (aligned for any type) from cfg's arena; lives
 * until mp_route_config_free(). Returns NULL when out of memory.
 */
void *mp_route_arena_alloc(struct mp_route_config *cfg, size_t n);

/**
 * Copies len bytes of s into cfg's arena and NUL-terminates them; lowercases
 * ASCII when lower is true. Returns NULL when out of memory.
 */
char *mp_route_arena_strndup(struct mp_route_config *cfg, const char *s, size_t len, bool lower);

#endif
