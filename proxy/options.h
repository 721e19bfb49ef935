/*
 * options.h: the command line, mirroring Envoy's flags.
 */
#ifndef MP_OPTIONS_H
#define MP_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

enum mp_mode {
    MP_MODE_SERVE,
    MP_MODE_VALIDATE,
    MP_MODE_INIT_ONLY,
};

enum mp_drain_strategy {
    MP_DRAIN_GRADUAL,
    MP_DRAIN_IMMEDIATE,
};

enum mp_ip_version {
    MP_IP_V4,
    MP_IP_V6,
};

struct mp_options {
    const char *config_path;               /* -c/--config-path; NULL when absent */
    const char *config_yaml;               /* --config-yaml, merged over the file */
    enum mp_mode mode;                     /* --mode; default serve */
    unsigned concurrency;                  /* --concurrency; default: number of cores */
    enum mp_log_level log_level;           /* -l/--log-level; default info */
    const char *component_log_level;       /* --component-log-level, as given */
    const char *log_format;                /* --log-format; NULL = default */
    const char *log_path;                  /* --log-path; NULL = stderr */
    bool log_format_escaped;               /* --log-format-escaped */
    uint32_t drain_time_s;                 /* --drain-time-s; default 600 */
    uint32_t parent_shutdown_time_s;       /* --parent-shutdown-time-s; default 900 */
    enum mp_drain_strategy drain_strategy; /* --drain-strategy; default gradual */
    const char *service_node;              /* --service-node (node.id) */
    const char *service_cluster;           /* --service-cluster (node.cluster) */
    const char *service_zone;              /* --service-zone (node.locality.zone) */
    uint32_t base_id;                      /* --base-id; accepted, no hot restart */
    /* --restart-epoch is accepted when 0 (Istio passes it); not stored. */
    bool disable_hot_restart;                    /* --disable-hot-restart */
    bool allow_unknown_static_fields;            /* --allow-unknown-static-fields */
    enum mp_ip_version local_address_ip_version; /* --local-address-ip-version v4|v6 */
    uint32_t file_flush_interval_msec;           /* --file-flush-interval-msec; default 10000 */
};

/* What mp_options_parse asks the caller to do. */
enum mp_options_result {
    MP_OPTIONS_RUN = 0,     /* options parsed: go on */
    MP_OPTIONS_EXIT_OK = 1, /* --help or --version was printed: exit 0 */
};

/**
 * Fills *opts with defaults, then parses argv (argv[0] is the program name).
 * Accepts "--flag value" and "--flag=value". Strings in *opts point into argv.
 * --help prints the usage and --version prints "meshproxy version: <ver>",
 * both to stdout, and return MP_OPTIONS_EXIT_OK. Returns MP_OPTIONS_RUN on
 * success, or MP_ERR_INVAL with a malloc'd message in *err for an unknown
 * flag, a missing or bad value.
 */
int mp_options_parse(struct mp_options *opts, int argc, char **argv, char **err);

/** Sets every option to its default. */
void mp_options_init(struct mp_options *opts);

/** The version string ("0.1.0"). */
const char *mp_version(void);

/** Name of a mode ("validate"). */
const char *mp_mode_name(enum mp_mode mode);

#endif
