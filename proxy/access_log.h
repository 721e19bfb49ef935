/*
 * access_log.h: Envoy's file access log (envoy.access_loggers.file).
 *
 * A format string ("[%START_TIME%] \"%REQ(:METHOD)% ...\"\n") is parsed once
 * into a list of literal and command parts. Workers format a line when a
 * stream ends and append it to their own lock-free ring (single producer,
 * single consumer); the main thread drains every worker's ring into the files
 * on a timer (--file-flush-interval-msec) or when a ring fills past half. No
 * worker ever calls write() on the request path.
 */
#ifndef MP_ACCESS_LOG_H
#define MP_ACCESS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_headers.h"

/* Envoy's default format, without the trailing newline that is added. */
#define MP_ACCESS_LOG_DEFAULT_FORMAT                                                               \
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "             \
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "                   \
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "      \
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

enum mp_al_part_kind {
    MP_AL_LITERAL,
    MP_AL_REQ,     /* %REQ(name?alt):len% */
    MP_AL_RESP,    /* %RESP(name?alt):len% */
    MP_AL_TRAILER, /* %TRAILER(name)% (response trailers) */
    MP_AL_START_TIME,
    MP_AL_METHOD_PROTOCOL, /* %PROTOCOL% */
    MP_AL_RESPONSE_CODE,
    MP_AL_RESPONSE_FLAGS,
    MP_AL_BYTES_RECEIVED,
    MP_AL_BYTES_SENT,
    MP_AL_DURATION,
    MP_AL_UPSTREAM_HOST,
    MP_AL_UPSTREAM_CLUSTER,
    MP_AL_DOWNSTREAM_REMOTE_ADDRESS,
    MP_AL_DOWNSTREAM_REMOTE_ADDRESS_NO_PORT,
    MP_AL_DOWNSTREAM_LOCAL_ADDRESS,
    MP_AL_REQUEST_DURATION,
    MP_AL_RESPONSE_DURATION,
    MP_AL_UPSTREAM_TRANSPORT_FAILURE_REASON,
    MP_AL_ROUTE_NAME,
    MP_AL_GRPC_STATUS,
    MP_AL_DOWNSTREAM_PEER_URI_SAN, /* the client certificate's URI SAN (mTLS) */
    MP_AL_REQUESTED_SERVER_NAME,   /* the SNI of a TLS connection this proxy terminates */
};

struct mp_al_part {
    enum mp_al_part_kind kind;
    char *text;     /* literal text, or the header name */
    char *alt;      /* header name after '?' */
    size_t max_len; /* ":N" truncation; 0 = none */
};

struct mp_al_format {
    struct mp_al_part *parts;
    size_t n_parts;
    /* json_format: one JSON object a line, key -> value rendered from its own
     * format (numbers stay numbers, a missing value is null) */
    char **json_keys;
    struct mp_al_format **json_values;
    size_t n_json;
};

/**
 * Parses an Envoy format string. Returns 0 and a new format in *out (free
 * with mp_al_format_free), or MP_ERR_PARSE with *err naming the position and
 * the unknown command.
 */
int mp_al_format_parse(const char *fmt, struct mp_al_format **out, char **err);

/**
 * Builds a json_format (SubstitutionFormatString.json_format): keys[i] is
 * rendered with the format values[i]. Returns 0 and *out, or MP_ERR_PARSE
 * with *err naming the key, or MP_ERR_NOMEM.
 */
int mp_al_format_parse_json(const char *const *keys, const char *const *values, size_t n,
                            struct mp_al_format **out, char **err);

/** Frees a format; NULL is a no-op. */
void mp_al_format_free(struct mp_al_format *f);

/** What one finished request/response exchange looked like, for formatting. */
struct mp_al_record {
    const struct mp_headers *req;      /* may be NULL */
    const struct mp_headers *resp;     /* may be NULL */
    const struct mp_headers *trailers; /* response trailers; may be NULL */
    int64_t start_us;                  /* wall clock (CLOCK_REALTIME) at start */
    int64_t duration_us;               /* start to last byte sent */
    int64_t request_duration_us;       /* -1 when unknown */
    int64_t response_duration_us;      /* -1 when unknown */
    int response_code;                 /* 0 when none was sent */
    const char *protocol;              /* "HTTP/1.1", "HTTP/2" */
    const char *response_flags;        /* "-" when none */
    uint64_t bytes_received;
    uint64_t bytes_sent;
    const char *upstream_host;     /* "ip:port" or NULL */
    const char *upstream_cluster;  /* or NULL */
    const char *downstream_remote; /* "ip:port" or NULL */
    const char *downstream_local;  /* "ip:port" or NULL */
    const char *route_name;
    const char *downstream_peer_uri_san; /* TLS peer certificate's URI SAN, or NULL */
    const char *requested_server_name;   /* downstream TLS SNI, or NULL */
};

/**
 * Formats rec with f into out (at most cap bytes, always NUL-terminated when
 * cap > 0; missing values print "-"). Returns the length written (truncated
 * at cap - 1).
 */
size_t mp_al_format_render(const struct mp_al_format *f, const struct mp_al_record *rec, char *out,
                           size_t cap);

/** An open log file, shared by every worker; refcounted. */
struct mp_access_log_file;

/** A configured access log: a file and a format. Immutable once built. */
struct mp_access_log {
    struct mp_access_log_file *file;
    struct mp_al_format *format;
};

/**
 * Builds an access log for path with format (NULL = Envoy's default). The
 * file is opened (O_APPEND|O_CREAT) through a process-wide table so several
 * logs naming one path share one fd. Returns 0 and *out, or a negative
 * MP_ERR_* with *err set.
 */
int mp_access_log_new(const char *path, const char *format, struct mp_access_log **out, char **err);

/**
 * Same as mp_access_log_new with a format already built; takes fmt over
 * (freed on failure too).
 */
int mp_access_log_new_with_format(const char *path, struct mp_al_format *fmt,
                                  struct mp_access_log **out, char **err);

/** Frees an access log (closes the file when its last user goes). NULL is a no-op. */
void mp_access_log_free(struct mp_access_log *al);

/**
 * Formats rec and queues the line on the calling worker's ring (see
 * mp_access_log_ring_*). Lines that do not fit in a full ring are dropped and
 * counted. Never blocks, never writes to the file.
 */
void mp_access_log_emit(const struct mp_access_log *al, const struct mp_al_record *rec);

/** A per-thread single-producer single-consumer ring of pending lines. */
struct mp_access_log_ring;

/**
 * Makes the calling thread's ring (capacity bytes, rounded up to 16) and
 * registers it for flushing. Returns 0 or MP_ERR_NOMEM. Threads without a
 * ring (the main thread) write lines directly.
 */
int mp_access_log_thread_init(size_t capacity);

/**
 * Sets the function producers call (from their thread) when a ring passes
 * half full, so the flusher can run early (e.g. ev_async_send to the main
 * loop). fn may be NULL. Call before workers start.
 */
void mp_access_log_set_wakeup(void (*fn)(void *arg), void *arg);

/** Unregisters the calling thread's ring after flushing it. */
void mp_access_log_thread_exit(void);

/**
 * Writes every queued line of every registered ring to its file (one write
 * per file per ring drain). Called on the main thread. Returns lines written.
 */
size_t mp_access_log_flush_all(void);

/** Lines dropped because a ring was full (process-wide). */
uint64_t mp_access_log_dropped(void);

#endif
