/*
 * log.h: leveled, per-component logging, Envoy-style.
 *
 * Each line is "[2026-11-25 22:05:08.123][tid][level][component] message\n"
 * written with one write(2), so lines from many threads never interleave and
 * no lock is taken. Levels and the output fd are set once at start-up (from
 * the command line) and only read afterwards.
 */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stdbool.h>

enum mp_log_level {
    MP_LOG_TRACE,
    MP_LOG_DEBUG,
    MP_LOG_INFO,
    MP_LOG_WARN,
    MP_LOG_ERROR,
    MP_LOG_CRITICAL,
    MP_LOG_OFF,
};

/* Components, named as Envoy names its loggers. */
enum mp_log_component {
    MP_LOG_MAIN,
    MP_LOG_CONFIG,
    MP_LOG_UPSTREAM,
    MP_LOG_CONNECTION,
    MP_LOG_HTTP,
    MP_LOG_HTTP2,
    MP_LOG_ROUTER,
    MP_LOG_POOL,
    MP_LOG_FILTER,
    MP_LOG_XDS,
    MP_LOG_ADMIN,
    MP_LOG_DNS,
    MP_LOG_HEALTH,
    MP_LOG_RUNTIME,
    MP_LOG_TLS,
    MP_LOG_COMPONENT_COUNT,
};

/**
 * Parses a level name: trace, debug, info, warning|warn, error, critical,
 * off. Returns 0 and stores it in *level, or MP_ERR_INVAL.
 */
int mp_log_level_parse(const char *name, enum mp_log_level *level);

/** Name of a level ("info"). */
const char *mp_log_level_name(enum mp_log_level level);

/** Name of a component ("upstream"). */
const char *mp_log_component_name(enum mp_log_component c);

/** Sets the level of every component. */
void mp_log_set_level(enum mp_log_level level);

/**
 * Applies "upstream:debug,connection:trace". Envoy's other logger names are
 * accepted too (misc, hc, rbac, grpc, ...): mapped onto the nearest
 * component, or ignored when meshproxy has no such code. Returns 0, or
 * MP_ERR_INVAL with a malloc'd message in *err naming the bad component or
 * level (nothing is changed then).
 */
int mp_log_set_component_levels(const char *spec, char **err);

/**
 * Sends log lines to path (opened O_APPEND|O_CREAT) instead of stderr.
 * Returns 0 or MP_ERR_IO (errno set).
 */
int mp_log_open_path(const char *path);

/** Closes a file opened by mp_log_open_path and returns to stderr. */
void mp_log_close(void);

/** True when a message at level for component would be written. */
bool mp_log_enabled(enum mp_log_component c, enum mp_log_level level);

/**
 * Sets the line format, Envoy's --log-format subset: %Y %m %d %H %M %S %T
 * %F (date), %e (ms) %f (us) %n (component) %l (level) %L (level letter)
 * %t (thread id) %P (pid) %g (source file) %# (source line) %v (message)
 * %j (message, JSON-escaped) %%. NULL restores the default
 * "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v". The string is copied.
 * Returns 0 or MP_ERR_NOMEM. Call at start-up, before threads log.
 */
int mp_log_set_format(const char *fmt);

/** With escape set, newlines and control characters in messages are escaped
 * (--log-format-escaped). */
void mp_log_set_escape(bool escape);

/**
 * Writes one line (no trailing newline needed); file/line name the caller
 * (use MP_LOG). Thread-safe and lock-free: one write(2) per line.
 */
void mp_log_write(enum mp_log_component c, enum mp_log_level level, const char *file, int line,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The usual entry point: the arguments are not evaluated when disabled. */
#define MP_LOG(comp, lvl, ...)                                                                     \
    do {                                                                                           \
        if (mp_log_enabled((comp), (lvl)))                                                         \
            mp_log_write((comp), (lvl), __FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)

#define MP_LOG_TRACE_(c, ...) MP_LOG(c, MP_LOG_TRACE, __VA_ARGS__)
#define MP_LOG_DEBUG_(c, ...) MP_LOG(c, MP_LOG_DEBUG, __VA_ARGS__)
#define MP_LOG_INFO_(c, ...)  MP_LOG(c, MP_LOG_INFO, __VA_ARGS__)
#define MP_LOG_WARN_(c, ...)  MP_LOG(c, MP_LOG_WARN, __VA_ARGS__)
#define MP_LOG_ERROR_(c, ...) MP_LOG(c, MP_LOG_ERROR, __VA_ARGS__)

#endif
