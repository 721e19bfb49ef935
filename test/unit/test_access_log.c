/* Unit tests for access_log.c: format parsing, rendering, the ring and the file writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/access_log.h"
#include "proxy/http_headers.h"
#include "proxy/mp_common.h"

static struct mp_headers req, resp;

static struct mp_al_record record(void)
{
    mp_headers_clear(&req);
    mp_headers_clear(&resp);
    mp_headers_add_cstr(&req, ":method", "POST");
    mp_headers_add_cstr(&req, ":path", "/api/v1?x=1");
    mp_headers_add_cstr(&req, ":authority", "svc.local");
    mp_headers_add_cstr(&req, "user-agent", "curl/8");
    mp_headers_add_cstr(&req, "x-request-id", "rid-1");
    mp_headers_add_cstr(&resp, ":status", "503");
    mp_headers_add_cstr(&resp, "x-envoy-upstream-service-time", "12");
    struct mp_al_record r = {
        .req = &req,
        .resp = &resp,
        .start_us = 1764108000123456, /* 2025-11-25T22:00:00.123Z */
        .duration_us = 15999,
        .request_duration_us = -1,
        .response_code = 503,
        .protocol = "HTTP/2",
        .response_flags = "UF",
        .bytes_received = 10,
        .bytes_sent = 91,
        .upstream_host = "10.0.0.1:80",
        .downstream_remote = "[::1]:5555",
    };
    return r;
}

static void test_default_format(void **state)
{
    (void)state;
    struct mp_al_format *f = NULL;
    char *err = NULL;
    assert_int_equal(mp_al_format_parse(MP_ACCESS_LOG_DEFAULT_FORMAT, &f, &err), 0);
    struct mp_al_record r = record();
    char line[1024];
    mp_al_format_render(f, &r, line, sizeof(line));
    assert_string_equal(line,
                        "[2025-11-25T22:00:00.123Z] \"POST /api/v1?x=1 HTTP/2\" 503 UF 10 91 15 12 "
                        "\"-\" \"curl/8\" \"rid-1\" \"svc.local\" \"10.0.0.1:80\"\n");
    /* X-ENVOY-ORIGINAL-PATH wins over :path when present */
    mp_headers_add_cstr(&req, "x-envoy-original-path", "/orig");
    mp_al_format_render(f, &r, line, sizeof(line));
    assert_non_null(strstr(line, "\"POST /orig HTTP/2\""));
    mp_al_format_free(f);
}

static void test_peer_uri_san(void **state)
{
    (void)state;
    struct mp_al_format *f = NULL;
    char *err = NULL;
    assert_int_equal(mp_al_format_parse(
                         "%DOWNSTREAM_PEER_URI_SAN% %PROTOCOL% %REQUESTED_SERVER_NAME%", &f, &err),
                     0);
    struct mp_al_record r = record();
    char line[256];
    mp_al_format_render(f, &r, line, sizeof(line));
    assert_string_equal(line, "- HTTP/2 -"); /* plaintext, or no client certificate */
    r.downstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/web";
    r.requested_server_name = "api.default.svc";
    mp_al_format_render(f, &r, line, sizeof(line));
    assert_string_equal(line, "spiffe://cluster.local/ns/default/sa/web HTTP/2 api.default.svc");
    mp_al_format_free(f);
}

static void test_custom_commands(void **state)
{
    (void)state;
    struct mp_al_format *f = NULL;
    char *err = NULL;
    assert_int_equal(
        mp_al_format_parse("%REQ(USER-AGENT):3%|%RESP(X-NONE)%|%DURATION%|"
                           "%DOWNSTREAM_REMOTE_ADDRESS%|%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|"
                           "%START_TIME(%Y/%m/%d %E3S)%|%REQUEST_DURATION%|100% sure",
                           &f, &err),
        0);
    struct mp_al_record r = record();
    char line[512];
    size_t n = mp_al_format_render(f, &r, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "cur|-|15|[::1]:5555|::1|2025/11/25 00.123|-|100% sure");
    /* truncation never overflows */
    char small[8];
    assert_int_equal(mp_al_format_render(f, &r, small, sizeof(small)), 7);
    mp_al_format_free(f);
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct mp_al_format *f = NULL;
    char *err = NULL;
    assert_int_equal(mp_al_format_parse("%NO_SUCH_THING%", &f, &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "NO_SUCH_THING"));
    free(err);
    err = NULL;
    assert_true(mp_al_format_parse("%REQ(:path%", &f, &err) < 0);
    free(err);
    err = NULL;
    assert_true(mp_al_format_parse("%REQ%", &f, &err) < 0);
    free(err);
    err = NULL;
    assert_true(mp_al_format_parse("%DURATION", &f, &err) < 0);
    free(err);
}

static void test_ring_and_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mp_al_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct mp_access_log *al = NULL;
    char *err = NULL;
    assert_int_equal(mp_access_log_new(path, "%RESPONSE_CODE% %REQ(:PATH)%\n", &al, &err), 0);
    assert_int_equal(mp_access_log_thread_init(4096), 0);
    struct mp_al_record r = record();
    /* nothing reaches the file until the flusher runs */
    for (int i = 0; i < 10; i++)
        mp_access_log_emit(al, &r);
    FILE *fp = fopen(path, "r");
    fseek(fp, 0, SEEK_END);
    assert_int_equal(ftell(fp), 0);
    assert_int_equal(mp_access_log_flush_all(), 10);
    /* wrap around the ring many times; overflow is dropped, never blocks */
    uint64_t dropped0 = mp_access_log_dropped();
    for (int i = 0; i < 1000; i++)
        mp_access_log_emit(al, &r);
    size_t flushed = mp_access_log_flush_all();
    assert_int_equal(flushed + (mp_access_log_dropped() - dropped0), 1000);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 20; i++)
            mp_access_log_emit(al, &r);
        assert_int_equal(mp_access_log_flush_all(), 20);
    }
    mp_access_log_thread_exit();
    mp_access_log_flush_all();
    fseek(fp, 0, SEEK_SET);
    char line[128];
    size_t lines = 0;
    while (fgets(line, sizeof(line), fp)) {
        assert_string_equal(line, "503 /api/v1?x=1\n");
        lines++;
    }
    assert_int_equal(lines, 10 + flushed + 1000);
    fclose(fp);
    mp_access_log_free(al);
    unlink(path);
    /* an unwritable path is a config error naming the path */
    assert_int_equal(mp_access_log_new("/nonexistent-dir/x.log", NULL, &al, &err), MP_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
    free(err);
    mp_headers_clear(&req);
    mp_headers_clear(&resp);
}

int main(void)
{
    mp_headers_init(&req);
    mp_headers_init(&resp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_format),
        cmocka_unit_test(test_custom_commands),
        cmocka_unit_test(test_peer_uri_san),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_ring_and_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
