/* Unit tests for options.c: Envoy's command line flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/log.h"
#include "proxy/mp_common.h"
#include "proxy/options.h"

static int parse(struct mp_options *o, char **err, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "meshproxy";
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return mp_options_parse(o, argc, argv, err);
}

static void defaults(void **state)
{
    (void)state;
    struct mp_options o;
    assert_int_equal(parse(&o, NULL, NULL), MP_OPTIONS_RUN);
    assert_int_equal(o.mode, MP_MODE_SERVE);
    assert_int_equal(o.log_level, MP_LOG_INFO);
    assert_true(o.concurrency >= 1);
    assert_int_equal(o.drain_time_s, 600);
    assert_int_equal(o.parent_shutdown_time_s, 900);
    assert_int_equal(o.drain_strategy, MP_DRAIN_GRADUAL);
    assert_int_equal(o.file_flush_interval_msec, 10000);
    assert_null(o.config_path);
}

static void istio_agent_command_line(void **state)
{
    (void)state;
    struct mp_options o;
    char *err = NULL;
    int rc = parse(&o, &err, "-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45",
                   "--drain-strategy", "immediate", "--local-address-ip-version", "v4",
                   "--file-flush-interval-msec", "1000", "--disable-hot-restart",
                   "--allow-unknown-static-fields", "--log-format",
                   "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t", "-l", "warning",
                   "--component-log-level", "misc:error", "--concurrency", "2",
                   "--service-cluster=productpage.default", "--service-node", "sidecar~1",
                   "--parent-shutdown-time-s", "60", "--restart-epoch", "0", "--base-id", "7",
                   "--mode=validate", "--config-yaml", "admin: {}", "--log-path", "/dev/null",
                   "--service-zone", "z", NULL);
    if (rc != MP_OPTIONS_RUN)
        fail_msg("%s", err);
    assert_string_equal(o.config_path, "etc/istio/proxy/envoy-rev.json");
    assert_int_equal(o.drain_time_s, 45);
    assert_int_equal(o.drain_strategy, MP_DRAIN_IMMEDIATE);
    assert_int_equal(o.local_address_ip_version, MP_IP_V4);
    assert_int_equal(o.file_flush_interval_msec, 1000);
    assert_true(o.disable_hot_restart);
    assert_true(o.allow_unknown_static_fields);
    assert_int_equal(o.log_level, MP_LOG_WARN);
    assert_string_equal(o.component_log_level, "misc:error");
    assert_int_equal(o.concurrency, 2);
    assert_string_equal(o.service_cluster, "productpage.default");
    assert_string_equal(o.service_node, "sidecar~1");
    assert_string_equal(o.service_zone, "z");
    assert_int_equal(o.parent_shutdown_time_s, 60);
    assert_int_equal(o.base_id, 7);
    assert_int_equal(o.mode, MP_MODE_VALIDATE);
    assert_string_equal(o.config_yaml, "admin: {}");
    assert_string_equal(o.log_path, "/dev/null");
    assert_non_null(strstr(o.log_format, "thread=%t"));
}

static void bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--bogus", NULL, "unknown flag \"--bogus\""},
        {"-x", NULL, "unknown flag \"-x\""},
        {"stray", NULL, "unexpected argument \"stray\""},
        {"--mode", "serve2", "--mode: \"serve2\""},
        {"--mode", NULL, "--mode needs a value"},
        {"--log-level", "loud", "--log-level: \"loud\""},
        {"--concurrency", "0", "at least 1"},
        {"--concurrency", "-3", "not a non-negative 32-bit integer"},
        {"--drain-time-s", "4294967296", "not a non-negative 32-bit integer"},
        {"--drain-strategy", "slow", "--drain-strategy"},
        {"--local-address-ip-version", "v5", "v4 or v6"},
        {"--restart-epoch", "1", "hot restart is not supported"},
        {"--disable-hot-restart=yes", NULL, "takes no value"},
    };
    for (size_t i = 0; i < MP_ARRAY_LEN(cases); i++) {
        struct mp_options o;
        char *err = NULL;
        int rc = cases[i].b ? parse(&o, &err, cases[i].a, cases[i].b, NULL)
                            : parse(&o, &err, cases[i].a, NULL);
        assert_int_equal(rc, MP_ERR_INVAL);
        if (err == NULL || strstr(err, cases[i].want) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].a, err, cases[i].want);
        free(err);
    }
}

static void version_string(void **state)
{
    (void)state;
    assert_true(strlen(mp_version()) > 0);
    assert_string_equal(mp_mode_name(MP_MODE_INIT_ONLY), "init_only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(istio_agent_command_line),
        cmocka_unit_test(bad_flags),
        cmocka_unit_test(version_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
