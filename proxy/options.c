/* options.c: Envoy-compatible command line parsing. */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp_common.h"

#ifndef MP_VERSION
#define MP_VERSION "0.0.0"
#endif

const char *mp_version(void)
{
    return MP_VERSION;
}

const char *mp_mode_name(enum mp_mode mode)
{
    switch (mode) {
    case MP_MODE_SERVE: return "serve";
    case MP_MODE_VALIDATE: return "validate";
    case MP_MODE_INIT_ONLY: return "init_only";
    }
    return "?";
}

void mp_options_init(struct mp_options *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = MP_MODE_SERVE;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    o->concurrency = n > 0 ? (unsigned)n : 1;
    o->log_level = MP_LOG_INFO;
    o->drain_time_s = 600;
    o->parent_shutdown_time_s = 900;
    o->drain_strategy = MP_DRAIN_GRADUAL;
    o->local_address_ip_version = MP_IP_V4;
    o->file_flush_interval_msec = 10000;
}

static const char usage[] =
    "USAGE: meshproxy [options]\n"
    "\n"
    "A service-mesh sidecar proxy that takes Envoy v3 configuration.\n"
    "\n"
    "  -c, --config-path <path>          bootstrap file (.yaml, .yml, .json, .pb)\n"
    "      --config-yaml <yaml>          YAML merged over the bootstrap file\n"
    "      --mode <serve|validate|init_only>\n"
    "                                    validate: check the config and exit\n"
    "      --concurrency <n>             worker threads (default: cores)\n"
    "  -l, --log-level <level>           trace|debug|info|warning|warn|error|critical|off\n"
    "      --component-log-level <c:l,...>  e.g. upstream:debug,connection:trace\n"
    "      --log-format <format>         log line format (%Y %m %d %T %e %t %l %n %v ...)\n"
    "      --log-format-escaped          escape control characters in log messages\n"
    "      --log-path <path>             log to a file instead of stderr\n"
    "      --drain-time-s <s>            drain time (default 600)\n"
    "      --parent-shutdown-time-s <s>  accepted for compatibility (default 900)\n"
    "      --drain-strategy <gradual|immediate>\n"
    "      --service-node <id>           node.id\n"
    "      --service-cluster <name>      node.cluster\n"
    "      --service-zone <zone>         node.locality.zone\n"
    "      --base-id <n>                 accepted for compatibility (no hot restart)\n"
    "      --restart-epoch <0>           accepted for compatibility (must be 0)\n"
    "      --disable-hot-restart         accepted (hot restart does not exist here)\n"
    "      --allow-unknown-static-fields ignore unknown fields in the bootstrap\n"
    "      --local-address-ip-version <v4|v6>\n"
    "      --file-flush-interval-msec <ms>  access log flush interval (default 10000)\n"
    "      --help                        this text\n"
    "      --version                     print the version\n";

enum opt_kind { OPT_FLAG, OPT_STRING, OPT_U32 };

struct opt_def {
    const char *long_name;
    char short_name;
    enum opt_kind kind;
    int id;
};

enum {
    O_CONFIG_PATH,
    O_CONFIG_YAML,
    O_MODE,
    O_CONCURRENCY,
    O_LOG_LEVEL,
    O_COMPONENT_LOG_LEVEL,
    O_LOG_FORMAT,
    O_LOG_FORMAT_ESCAPED,
    O_LOG_PATH,
    O_DRAIN_TIME,
    O_PARENT_SHUTDOWN,
    O_DRAIN_STRATEGY,
    O_SERVICE_NODE,
    O_SERVICE_CLUSTER,
    O_SERVICE_ZONE,
    O_BASE_ID,
    O_RESTART_EPOCH,
    O_DISABLE_HOT_RESTART,
    O_ALLOW_UNKNOWN,
    O_IP_VERSION,
    O_FLUSH_INTERVAL,
    O_HELP,
    O_VERSION,
};

static const struct opt_def opts_table[] = {
    {"config-path", 'c', OPT_STRING, O_CONFIG_PATH},
    {"config-yaml", 0, OPT_STRING, O_CONFIG_YAML},
    {"mode", 0, OPT_STRING, O_MODE},
    {"concurrency", 0, OPT_U32, O_CONCURRENCY},
    {"log-level", 'l', OPT_STRING, O_LOG_LEVEL},
    {"component-log-level", 0, OPT_STRING, O_COMPONENT_LOG_LEVEL},
    {"log-format", 0, OPT_STRING, O_LOG_FORMAT},
    {"log-format-escaped", 0, OPT_FLAG, O_LOG_FORMAT_ESCAPED},
    {"log-path", 0, OPT_STRING, O_LOG_PATH},
    {"drain-time-s", 0, OPT_U32, O_DRAIN_TIME},
    {"parent-shutdown-time-s", 0, OPT_U32, O_PARENT_SHUTDOWN},
    {"drain-strategy", 0, OPT_STRING, O_DRAIN_STRATEGY},
    {"service-node", 0, OPT_STRING, O_SERVICE_NODE},
    {"service-cluster", 0, OPT_STRING, O_SERVICE_CLUSTER},
    {"service-zone", 0, OPT_STRING, O_SERVICE_ZONE},
    {"base-id", 0, OPT_U32, O_BASE_ID},
    {"restart-epoch", 0, OPT_U32, O_RESTART_EPOCH},
    {"disable-hot-restart", 0, OPT_FLAG, O_DISABLE_HOT_RESTART},
    {"allow-unknown-static-fields", 0, OPT_FLAG, O_ALLOW_UNKNOWN},
    {"local-address-ip-version", 0, OPT_STRING, O_IP_VERSION},
    {"file-flush-interval-msec", 0, OPT_U32, O_FLUSH_INTERVAL},
    {"help", 'h', OPT_FLAG, O_HELP},
    {"version", 0, OPT_FLAG, O_VERSION},
};

static int parse_u32(const char *s, uint32_t *out)
{
    if (s[0] < '0' || s[0] > '9')
        return MP_ERR_INVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return MP_ERR_INVAL;
    *out = (uint32_t)v;
    return 0;
}

static const struct opt_def *find_opt(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        for (size_t i = 0; i < MP_ARRAY_LEN(opts_table); i++) {
            if (strlen(opts_table[i].long_name) == len &&
                strncmp(opts_table[i].long_name, name, len) == 0) {
                if (eq != NULL)
                    *inline_value = eq + 1;
                return &opts_table[i];
            }
        }
        return NULL;
    }
    if (arg[0] == '-' && arg[1] != '\0' && arg[1] != '-') {
        for (size_t i = 0; i < MP_ARRAY_LEN(opts_table); i++) {
            if (opts_table[i].short_name == arg[1]) {
                if (arg[2] != '\0')
                    *inline_value = arg[2] == '=' ? arg + 3 : arg + 2;
                return &opts_table[i];
            }
        }
    }
    return NULL;
}

static int apply(struct mp_options *o, const struct opt_def *d, const char *v, uint32_t u,
                 char **err)
{
    switch (d->id) {
    case O_CONFIG_PATH: o->config_path = v; break;
    case O_CONFIG_YAML: o->config_yaml = v; break;
    case O_MODE:
        if (strcmp(v, "serve") == 0)
            o->mode = MP_MODE_SERVE;
        else if (strcmp(v, "validate") == 0)
            o->mode = MP_MODE_VALIDATE;
        else if (strcmp(v, "init_only") == 0)
            o->mode = MP_MODE_INIT_ONLY;
        else
            return mp_set_err(err, "--mode: \"%s\" is not one of serve, validate, init_only", v);
        break;
    case O_CONCURRENCY:
        if (u == 0)
            return mp_set_err(err, "--concurrency: must be at least 1");
        o->concurrency = u;
        break;
    case O_LOG_LEVEL:
        if (mp_log_level_parse(v, &o->log_level) != 0)
            return mp_set_err(err,
                              "--log-level: \"%s\" is not one of trace, debug, info, warning, "
                              "warn, error, critical, off",
                              v);
        break;
    case O_COMPONENT_LOG_LEVEL: o->component_log_level = v; break;
    case O_LOG_FORMAT: o->log_format = v; break;
    case O_LOG_FORMAT_ESCAPED: o->log_format_escaped = true; break;
    case O_LOG_PATH: o->log_path = v; break;
    case O_DRAIN_TIME: o->drain_time_s = u; break;
    case O_PARENT_SHUTDOWN: o->parent_shutdown_time_s = u; break;
    case O_DRAIN_STRATEGY:
        if (strcmp(v, "gradual") == 0)
            o->drain_strategy = MP_DRAIN_GRADUAL;
        else if (strcmp(v, "immediate") == 0)
            o->drain_strategy = MP_DRAIN_IMMEDIATE;
        else
            return mp_set_err(err, "--drain-strategy: \"%s\" is not gradual or immediate", v);
        break;
    case O_SERVICE_NODE: o->service_node = v; break;
    case O_SERVICE_CLUSTER: o->service_cluster = v; break;
    case O_SERVICE_ZONE: o->service_zone = v; break;
    case O_BASE_ID: o->base_id = u; break;
    case O_RESTART_EPOCH:
        if (u != 0)
            return mp_set_err(err, "--restart-epoch: hot restart is not supported; use 0");
        break;
    case O_DISABLE_HOT_RESTART: o->disable_hot_restart = true; break;
    case O_ALLOW_UNKNOWN: o->allow_unknown_static_fields = true; break;
    case O_IP_VERSION:
        if (strcmp(v, "v4") == 0)
            o->local_address_ip_version = MP_IP_V4;
        else if (strcmp(v, "v6") == 0)
            o->local_address_ip_version = MP_IP_V6;
        else
            return mp_set_err(err, "--local-address-ip-version: \"%s\" is not v4 or v6", v);
        break;
    case O_FLUSH_INTERVAL: o->file_flush_interval_msec = u; break;
    }
    return 0;
}

int mp_options_parse(struct mp_options *o, int argc, char **argv, char **err)
{
    mp_options_init(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v;
        const struct opt_def *d = find_opt(arg, &v);
        if (d == NULL) {
            if (arg[0] == '-')
                return mp_set_err(err, "unknown flag \"%s\" (see --help)", arg);
            return mp_set_err(err, "unexpected argument \"%s\" (see --help)", arg);
        }
        if (d->kind == OPT_FLAG) {
            if (v != NULL)
                return mp_set_err(err, "--%s takes no value", d->long_name);
            if (d->id == O_HELP) {
                fputs(usage, stdout);
                return MP_OPTIONS_EXIT_OK;
            }
            if (d->id == O_VERSION) {
                printf("meshproxy version: %s\n", mp_version());
                return MP_OPTIONS_EXIT_OK;
            }
            apply(o, d, NULL, 0, err);
            continue;
        }
        if (v == NULL) {
            if (i + 1 >= argc)
                return mp_set_err(err, "--%s needs a value", d->long_name);
            v = argv[++i];
        }
        uint32_t u = 0;
        if (d->kind == OPT_U32 && parse_u32(v, &u) != 0)
            return mp_set_err(err, "--%s: \"%s\" is not a non-negative 32-bit integer",
                              d->long_name, v);
        int rc = apply(o, d, v, u, err);
        if (rc != 0)
            return rc;
    }
    return MP_OPTIONS_RUN;
}
