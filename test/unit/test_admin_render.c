/* Unit tests for admin_render.c and admin_config_dump.c: Envoy's admin
 * output shapes, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "proxy/admin_config_dump.h"
#include "proxy/admin_render.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/mp_common.h"

/* The buffer's bytes as a malloc'd string; the buffer is emptied. */
static char *take(struct mp_buffer *b)
{
    size_t n = mp_buffer_len(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    mp_buffer_copy_out(b, 0, s, n);
    s[n] = '\0';
    mp_buffer_clear(b);
    return s;
}

static void address_json(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
    assert_int_equal(mp_admin_render_address_json(&b, (struct sockaddr *)&in), 0);
    char *s = take(&b);
    assert_string_equal(s, "{\"socket_address\":{\"address\":\"10.1.2.3\",\"port_value\":8080}}");
    free(s);
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    mp_admin_render_address_json(&b, (struct sockaddr *)&in6);
    s = take(&b);
    assert_string_equal(s, "{\"socket_address\":{\"address\":\"::1\",\"port_value\":443}}");
    free(s);
    struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/x\"y.sock"};
    mp_admin_render_address_json(&b, (struct sockaddr *)&un);
    s = take(&b);
    assert_string_equal(s, "{\"pipe\":{\"path\":\"/run/x\\\"y.sock\"}}");
    free(s);
}

static void host_json(void **state)
{
    (void)state;
    struct mp_buffer b = MP_BUFFER_INIT;
    struct mp_host h = {.weight = 3,
                        .priority = 1,
                        .hostname = "svc.local",
                        .eds_health = 0,
                        .health = MP_HOST_HEALTHY};
    struct sockaddr_in *in = (struct sockaddr_in *)&h.addr;
    in->sin_family = AF_INET;
    in->sin_port = htons(80);
    inet_pton(AF_INET, "127.0.0.1", &in->sin_addr);
    struct mp_locality loc = {.region = "r1", .zone = "", .sub_zone = "s1"};
    struct mp_admin_host_stats st = {.cx_active = 2, .cx_total = 5, .rq_total = 7, .rq_active = 1};
    assert_int_equal(mp_admin_render_host_json(&b, &h, &loc, &st), 0);
    char *s = take(&b);
    assert_string_equal(
        s, "{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\",\"port_value\":80}},"
           "\"stats\":[{\"name\":\"cx_connect_fail\",\"value\":\"0\"},"
           "{\"name\":\"cx_total\",\"value\":\"5\"},{\"name\":\"rq_error\",\"value\":\"0\"},"
           "{\"name\":\"rq_success\",\"value\":\"0\"},{\"name\":\"rq_timeout\",\"value\":\"0\"},"
           "{\"name\":\"rq_total\",\"value\":\"7\"},"
           "{\"name\":\"cx_active\",\"value\":\"2\",\"type\":\"GAUGE\"},"
           "{\"name\":\"rq_active\",\"value\":\"1\",\"type\":\"GAUGE\"}],"
           "\"health_status\":{\"eds_health_status\":\"HEALTHY\"},\"weight\":3,"
           "\"hostname\":\"svc.local\",\"priority\":1,"
           "\"locality\":{\"region\":\"r1\",\"sub_zone\":\"s1\"}}");
    free(s);
    /* EDS said DRAINING; a host failed by health checks says so */
    h.eds_health = 3;
    h.hostname = "";
    h.priority = 0;
    mp_admin_render_host_json(&b, &h, NULL, &st);
    s = take(&b);
    assert_non_null(
        strstr(s, "\"health_status\":{\"eds_health_status\":\"DRAINING\"},\"weight\":3}"));
    free(s);
    h.eds_health = 1;
    h.health = MP_HOST_UNHEALTHY;
    mp_admin_render_host_json(&b, &h, NULL, &st);
    s = take(&b);
    assert_non_null(
        strstr(s, "{\"eds_health_status\":\"HEALTHY\",\"failed_active_health_check\":true}"));
    free(s);
}

static void logging(void **state)
{
    (void)state;
    mp_log_set_level(MP_LOG_INFO);
    struct mp_buffer b = MP_BUFFER_INIT;
    assert_int_equal(mp_admin_render_logging(&b), 0);
    char *s = take(&b);
    const char *head = "active loggers:\n  admin: info\n  config: info\n  connection: info\n";
    assert_true(strncmp(s, head, strlen(head)) == 0);
    free(s);
    char *err = NULL;
    assert_int_equal(mp_admin_logging_apply("upstream=debug", &err), 0);
    assert_true(mp_log_enabled(MP_LOG_UPSTREAM, MP_LOG_DEBUG));
    assert_false(mp_log_enabled(MP_LOG_ROUTER, MP_LOG_DEBUG));
    assert_int_equal(mp_admin_logging_apply("level=warning", &err), 0);
    assert_false(mp_log_enabled(MP_LOG_UPSTREAM, MP_LOG_INFO));
    assert_int_equal(mp_admin_logging_apply("paths=router%3Atrace,hc:error", &err), 0);
    assert_true(mp_log_enabled(MP_LOG_ROUTER, MP_LOG_TRACE));
    assert_false(mp_log_enabled(MP_LOG_HEALTH, MP_LOG_WARN));
    /* Envoy's "misc" logger maps onto main */
    assert_int_equal(mp_admin_logging_apply("misc=critical", &err), 0);
    assert_false(mp_log_enabled(MP_LOG_MAIN, MP_LOG_ERROR));
    assert_int_equal(mp_admin_logging_apply("nosuch=debug", &err), MP_ERR_INVAL);
    assert_string_equal(err, "/logging: unknown component \"nosuch\"");
    free(err);
    err = NULL;
    assert_int_equal(mp_admin_logging_apply("level=loud", &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "loud"));
    free(err);
    err = NULL;
    assert_int_equal(mp_admin_logging_apply("level=debug&upstream=info", &err), MP_ERR_INVAL);
    free(err);
    mp_log_set_level(MP_LOG_INFO);
}

static void methods_and_query(void **state)
{
    (void)state;
    const char *msg = NULL;
    assert_true(mp_admin_method_allowed("GET", "/stats", NULL, &msg));
    assert_true(mp_admin_method_allowed("GET", "/logging", NULL, &msg));
    assert_false(mp_admin_method_allowed("GET", "/logging", "level=debug", &msg));
    assert_string_equal(msg, "Method not allowed, POST required.\n");
    assert_true(mp_admin_method_allowed("POST", "/logging", "level=debug", &msg));
    static const char *const mutating[] = {"/quitquitquit", "/healthcheck/fail", "/healthcheck/ok",
                                           "/drain_listeners", "/reset_counters"};
    for (size_t i = 0; i < MP_ARRAY_LEN(mutating); i++) {
        assert_false(mp_admin_method_allowed("GET", mutating[i], NULL, &msg));
        assert_false(mp_admin_method_allowed("PUT", mutating[i], NULL, &msg));
        assert_true(mp_admin_method_allowed("POST", mutating[i], NULL, &msg));
    }
    char v[32];
    assert_true(mp_admin_query_get("a=1&format=json&b", "format", v, sizeof(v)));
    assert_string_equal(v, "json");
    assert_true(mp_admin_query_get("a=1&b", "b", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_false(mp_admin_query_get("formatx=json", "format", v, sizeof(v)));
    assert_true(mp_admin_query_get("filter=%5Ecluster%2E+x", "filter", v, sizeof(v)));
    assert_string_equal(v, "^cluster. x");
    assert_false(mp_admin_query_get(NULL, "a", v, sizeof(v)));
}

static void memory(void **state)
{
    (void)state;
    void *p = malloc(100000);
    assert_non_null(p);
    struct mp_buffer b = MP_BUFFER_INIT;
    assert_int_equal(mp_admin_render_memory(&b), 0);
    char *s = take(&b);
    unsigned long long alloc = 0, heap = 0;
    assert_int_equal(sscanf(s, "{\"allocated\":\"%llu\",\"heap_size\":\"%llu\"", &alloc, &heap), 2);
    assert_true(alloc >= 100000);
    assert_non_null(strstr(s, "\"total_physical_bytes\":\""));
    free(s);
    free(p);
}

static const char DUMP[] =
    "{\"configs\":["
    "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\","
    "\"static_clusters\":[{\"cluster\":{\"@type\":\"C\",\"name\":\"a\",\"connect_timeout\":\"1s\"}}"
    "],"
    "\"dynamic_active_clusters\":[{\"version_info\":\"3\",\"cluster\":{\"@type\":\"C\",\"name\":"
    "\"b1\"}},"
    "{\"version_info\":\"3\",\"cluster\":{\"@type\":\"C\",\"name\":\"c\"}}]},"
    "{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\","
    "\"dynamic_endpoint_configs\":[{\"endpoint_config\":{\"cluster_name\":\"b1\"}}]},"
    "{\"@type\":\"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\",\"static_secrets\":"
    "[{\"name\":\"s\",\"secret\":{\"tls_certificate\":{\"private_key\":{\"inline_bytes\":\"QUJD\"},"
    "\"certificate_chain\":{\"filename\":\"/c.pem\"}}}}]},"
    "{\"@type\":\"type.googleapis.com/"
    "envoy.admin.v3.SecretsConfigDump\",\"dynamic_active_secrets\":"
    "[{\"name\":\"d\",\"secret\":{\"generic_secret\":{\"secret\":{\"inline_string\":\"pw\"}}}}]}"
    "]}";

static char *filter(const struct mp_admin_dump_query *q, int want_rc)
{
    struct mp_buffer b = MP_BUFFER_INIT;
    char *err = NULL;
    int rc = mp_admin_config_dump_filter(DUMP, strlen(DUMP), q, &b, &err);
    assert_int_equal(rc, want_rc);
    if (rc != 0) {
        mp_buffer_clear(&b);
        return err;
    }
    assert_null(err);
    return take(&b);
}

static void config_dump_filter(void **state)
{
    (void)state;
    /* merged secrets, redacted; endpoints dropped */
    struct mp_admin_dump_query q = {0};
    char *s = filter(&q, 0);
    assert_null(strstr(s, "EndpointsConfigDump"));
    assert_null(strstr(s, "QUJD"));
    assert_null(strstr(s, "\"pw\""));
    assert_non_null(strstr(
        s, "{\"@type\":\"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\",\"static_secrets\":"
           "[{\"name\":\"s\",\"secret\":{\"tls_certificate\":{\"private_key\":{\"inline_string\":"
           "\"[redacted]\"},\"certificate_chain\":{\"filename\":\"/c.pem\"}}}}],"
           "\"dynamic_active_secrets\":[{\"name\":\"d\",\"secret\":{\"generic_secret\":{\"secret\":"
           "{\"inline_string\":\"[redacted]\"}}}}]}]}"));
    free(s);
    q.include_eds = true;
    s = filter(&q, 0);
    assert_non_null(strstr(s, "EndpointsConfigDump"));
    free(s);
    /* one resource field, each item typed */
    q = (struct mp_admin_dump_query){.resource = "dynamic_active_clusters"};
    s = filter(&q, 0);
    assert_string_equal(
        s, "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump."
           "DynamicCluster\",\"version_info\":\"3\",\"cluster\":{\"@type\":\"C\",\"name\":\"b1\"}},"
           "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster\","
           "\"version_info\":\"3\",\"cluster\":{\"@type\":\"C\",\"name\":\"c\"}}]}\n");
    free(s);
    q.name_regex = "^b";
    q.mask = "cluster.name";
    s = filter(&q, 0);
    assert_string_equal(
        s, "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump."
           "DynamicCluster\",\"cluster\":{\"@type\":\"C\",\"name\":\"b1\"}}]}\n");
    free(s);
    /* name_regex over every config, mask on configs */
    q = (struct mp_admin_dump_query){.name_regex = "^(a|s)$",
                                     .mask = "static_clusters,static_secrets.name"};
    s = filter(&q, 0);
    assert_string_equal(
        s, "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\","
           "\"static_clusters\":[{\"cluster\":{\"@type\":\"C\",\"name\":\"a\","
           "\"connect_timeout\":\"1s\"}}]},"
           "{\"@type\":\"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\","
           "\"static_secrets\":[{\"name\":\"s\"}]}]}\n");
    free(s);
    /* errors */
    q = (struct mp_admin_dump_query){.resource = "nope"};
    s = filter(&q, MP_ERR_NOTFOUND);
    assert_string_equal(s, "resource nope not found in config dump");
    free(s);
    q = (struct mp_admin_dump_query){.name_regex = "("};
    s = filter(&q, MP_ERR_INVAL);
    assert_non_null(strstr(s, "name_regex"));
    free(s);
    struct mp_buffer b = MP_BUFFER_INIT;
    char *err = NULL;
    q = (struct mp_admin_dump_query){0};
    assert_int_equal(mp_admin_config_dump_filter("{nope", 5, &q, &b, &err), MP_ERR_INVAL);
    assert_non_null(err);
    free(err);
    mp_buffer_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(address_json), cmocka_unit_test(host_json),
        cmocka_unit_test(logging),      cmocka_unit_test(methods_and_query),
        cmocka_unit_test(memory),       cmocka_unit_test(config_dump_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
