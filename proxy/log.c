/*
 * log.c: Envoy-style log lines, one write(2) each.
 *
 * Levels are atomics (the admin /logging endpoint may change them while
 * workers log); the fd and the format are set at start-up only.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mp_common.h"

#define LINE_MAX_BYTES 4096
#define DEFAULT_FORMAT "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v"

static const char *const level_names[] = {"trace", "debug",    "info", "warning",
                                          "error", "critical", "off"};
static const char level_letters[] = "TDIWECO";

static const char *const component_names[MP_LOG_COMPONENT_COUNT] = {
    [MP_LOG_MAIN] = "main",         [MP_LOG_CONFIG] = "config",
    [MP_LOG_UPSTREAM] = "upstream", [MP_LOG_CONNECTION] = "connection",
    [MP_LOG_HTTP] = "http",         [MP_LOG_HTTP2] = "http2",
    [MP_LOG_ROUTER] = "router",     [MP_LOG_POOL] = "pool",
    [MP_LOG_FILTER] = "filter",     [MP_LOG_XDS] = "xds",
    [MP_LOG_ADMIN] = "admin",       [MP_LOG_DNS] = "dns",
    [MP_LOG_HEALTH] = "health",     [MP_LOG_RUNTIME] = "runtime",
    [MP_LOG_TLS] = "tls",
};

/* Envoy's other logger names, so Envoy command lines (Istio passes
 * "--component-log-level misc:error") work: some map onto a component here,
 * the rest (-1) name code meshproxy does not have and are accepted as no-ops. */
static const struct {
    const char *name;
    int component;
} envoy_aliases[] = {
    {"misc", MP_LOG_MAIN},
    {"assert", MP_LOG_MAIN},
    {"backtrace", MP_LOG_MAIN},
    {"envoy_bug", MP_LOG_MAIN},
    {"init", MP_LOG_CONFIG},
    {"rds", MP_LOG_CONFIG},
    {"secret", MP_LOG_CONFIG},
    {"grpc", MP_LOG_XDS},
    {"conn_handler", MP_LOG_CONNECTION},
    {"hc", MP_LOG_HEALTH},
    {"health_checker", MP_LOG_HEALTH},
    {"rbac", MP_LOG_FILTER},
    {"ext_authz", MP_LOG_FILTER},
    {"jwt", MP_LOG_FILTER},
    {"lua", MP_LOG_FILTER},
    {"client", -1},
    {"file", -1},
    {"io", -1},
    {"matcher", -1},
    {"quic", -1},
    {"quic_stream", -1},
    {"stats", -1},
    {"tracing", -1},
    {"udp", -1},
    {"wasm", -1},
    {"aws", -1},
    {"decompression", -1},
    {"compression", -1},
    {"forward_proxy", -1},
    {"happy_eyeballs", -1},
    {"hystrix", -1},
    {"kafka", -1},
    {"key_value_store", -1},
    {"mongo", -1},
    {"multi_connection", -1},
    {"oauth2", -1},
    {"rate_limit_quota", -1},
    {"redis", -1},
    {"tap", -1},
    {"testing", -1},
    {"thrift", -1},
    {"websocket", -1},
    {"golang", -1},
    {"dubbo", -1},
    {"rocketmq", -1},
    {"ext_proc", -1},
    {"alternate_protocols_cache", -1},
    {"cache_filter", -1},
};

static _Atomic int levels[MP_LOG_COMPONENT_COUNT] = {
    [0 ... MP_LOG_COMPONENT_COUNT - 1] = MP_LOG_INFO,
};
static int log_fd = STDERR_FILENO;
static bool log_fd_owned;
static char *log_format;
static bool log_escape;

int mp_log_level_parse(const char *name, enum mp_log_level *level)
{
    if (name == NULL)
        return MP_ERR_INVAL;
    if (strcmp(name, "warn") == 0) {
        *level = MP_LOG_WARN;
        return 0;
    }
    for (size_t i = 0; i < MP_ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum mp_log_level)i;
            return 0;
        }
    }
    return MP_ERR_INVAL;
}

const char *mp_log_level_name(enum mp_log_level level)
{
    return (unsigned)level < MP_ARRAY_LEN(level_names) ? level_names[level] : "?";
}

const char *mp_log_component_name(enum mp_log_component c)
{
    return (unsigned)c < MP_LOG_COMPONENT_COUNT ? component_names[c] : "?";
}

void mp_log_set_level(enum mp_log_level level)
{
    for (int i = 0; i < MP_LOG_COMPONENT_COUNT; i++)
        atomic_store_explicit(&levels[i], (int)level, memory_order_relaxed);
}

int mp_log_set_component_levels(const char *spec, char **err)
{
    int pending[MP_LOG_COMPONENT_COUNT];
    for (int i = 0; i < MP_LOG_COMPONENT_COUNT; i++)
        pending[i] = -1;
    char *copy = strdup(spec);
    if (copy == NULL)
        return MP_ERR_NOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        if (colon == NULL) {
            rc = mp_set_err(err, "--component-log-level: \"%s\" is not <component>:<level>", item);
            break;
        }
        *colon = '\0';
        enum mp_log_level lvl;
        if (mp_log_level_parse(colon + 1, &lvl) != 0) {
            rc = mp_set_err(err, "--component-log-level: unknown level \"%s\" for \"%s\"",
                            colon + 1, item);
            break;
        }
        int found = -1;
        bool known = false;
        for (int i = 0; i < MP_LOG_COMPONENT_COUNT; i++)
            if (strcmp(item, component_names[i]) == 0)
                found = i;
        for (size_t i = 0; found < 0 && !known && i < MP_ARRAY_LEN(envoy_aliases); i++)
            if (strcmp(item, envoy_aliases[i].name) == 0) {
                found = envoy_aliases[i].component;
                known = true;
            }
        if (found < 0 && !known) {
            rc = mp_set_err(err, "--component-log-level: unknown component \"%s\"", item);
            break;
        }
        if (found >= 0)
            pending[found] = (int)lvl;
    }
    free(copy);
    if (rc != 0)
        return rc;
    /* Applied only when the whole spec is good. */
    for (int i = 0; i < MP_LOG_COMPONENT_COUNT; i++)
        if (pending[i] >= 0)
            atomic_store_explicit(&levels[i], pending[i], memory_order_relaxed);
    return 0;
}

int mp_log_open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return MP_ERR_IO;
    mp_log_close();
    log_fd = fd;
    log_fd_owned = true;
    return 0;
}

void mp_log_close(void)
{
    if (log_fd_owned)
        close(log_fd);
    log_fd = STDERR_FILENO;
    log_fd_owned = false;
}

int mp_log_set_format(const char *fmt)
{
    char *copy = NULL;
    if (fmt != NULL && (copy = strdup(fmt)) == NULL)
        return MP_ERR_NOMEM;
    free(log_format);
    log_format = copy;
    return 0;
}

void mp_log_set_escape(bool escape)
{
    log_escape = escape;
}

bool mp_log_enabled(enum mp_log_component c, enum mp_log_level level)
{
    if ((unsigned)c >= MP_LOG_COMPONENT_COUNT || level >= MP_LOG_OFF)
        return false;
    return (int)level >= atomic_load_explicit(&levels[c], memory_order_relaxed);
}

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static void add(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 1 - l->len; /* keep one byte for '\n' */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void addf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void addf(struct line *l, const char *fmt, ...)
{
    size_t room = sizeof(l->buf) - 1 - l->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room;
}

/* Message text, optionally with control characters escaped (a message
 * must never forge a second log line) or JSON-escaped for %j. */
static void add_message(struct line *l, const char *msg, bool json)
{
    for (const char *p = msg; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (json && (c == '"' || c == '\\')) {
            add(l, "\\", 1);
            add(l, p, 1);
        } else if ((json || log_escape) && c < 0x20) {
            if (c == '\n')
                add(l, "\\n", 2);
            else if (c == '\t')
                add(l, "\\t", 2);
            else if (c == '\r')
                add(l, "\\r", 2);
            else
                addf(l, "\\u%04x", c);
        } else {
            add(l, p, 1);
        }
    }
}

void mp_log_write(enum mp_log_component c, enum mp_log_level level, const char *file, int line_no,
                  const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* localtime_r takes glibc's time zone lock: do it once a second per
     * thread, not once a line. */
    static _Thread_local time_t tm_sec = -1;
    static _Thread_local struct tm tm_cached;
    if (ts.tv_sec != tm_sec) {
        localtime_r(&ts.tv_sec, &tm_cached);
        tm_sec = ts.tv_sec;
    }
    const struct tm tm = tm_cached;
    const char *base = file != NULL ? strrchr(file, '/') : NULL;
    base = base != NULL ? base + 1 : (file != NULL ? file : "");

    struct line l;
    l.len = 0;
    const char *f = log_format != NULL ? log_format : DEFAULT_FORMAT;
    for (; *f != '\0'; f++) {
        if (*f != '%' || f[1] == '\0') {
            add(&l, f, 1);
            continue;
        }
        switch (*++f) {
        case 'Y': addf(&l, "%04d", tm.tm_year + 1900); break;
        case 'm': addf(&l, "%02d", tm.tm_mon + 1); break;
        case 'd': addf(&l, "%02d", tm.tm_mday); break;
        case 'H': addf(&l, "%02d", tm.tm_hour); break;
        case 'M': addf(&l, "%02d", tm.tm_min); break;
        case 'S': addf(&l, "%02d", tm.tm_sec); break;
        case 'T': addf(&l, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec); break;
        case 'F': addf(&l, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday); break;
        case 'e': addf(&l, "%03ld", ts.tv_nsec / 1000000); break;
        case 'f': addf(&l, "%06ld", ts.tv_nsec / 1000); break;
        case 'n': add(&l, mp_log_component_name(c), strlen(mp_log_component_name(c))); break;
        case 'l': add(&l, mp_log_level_name(level), strlen(mp_log_level_name(level))); break;
        case 'L': add(&l, &level_letters[level < MP_LOG_OFF ? level : MP_LOG_OFF], 1); break;
        case 't': addf(&l, "%ld", (long)syscall(SYS_gettid)); break;
        case 'P': addf(&l, "%ld", (long)getpid()); break;
        case 'g': add(&l, base, strlen(base)); break;
        case '#': addf(&l, "%d", line_no); break;
        case 'v': add_message(&l, msg, false); break;
        case 'j': add_message(&l, msg, true); break;
        case '%': add(&l, "%", 1); break;
        default: add(&l, f - 1, 2); break;
        }
    }
    l.buf[l.len++] = '\n';
    /* One write: O_APPEND files and pipes keep lines whole. A short write
     * or EINTR is retried for the rest; there is nothing better to do with
     * a log line that cannot be written. */
    size_t off = 0;
    while (off < l.len) {
        ssize_t n = write(log_fd, l.buf + off, l.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}
