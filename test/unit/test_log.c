/* Unit tests for log.c: levels, components, formats, whole lines from threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/log.h"
#include "proxy/mp_common.h"

static void levels_and_components(void **state)
{
    (void)state;
    static const char *const names[] = {"trace", "debug", "info",     "warning",
                                        "warn",  "error", "critical", "off"};
    static const enum mp_log_level want[] = {MP_LOG_TRACE,    MP_LOG_DEBUG, MP_LOG_INFO,
                                             MP_LOG_WARN,     MP_LOG_WARN,  MP_LOG_ERROR,
                                             MP_LOG_CRITICAL, MP_LOG_OFF};
    for (size_t i = 0; i < MP_ARRAY_LEN(names); i++) {
        enum mp_log_level l;
        assert_int_equal(mp_log_level_parse(names[i], &l), 0);
        assert_int_equal(l, want[i]);
    }
    enum mp_log_level l;
    assert_int_equal(mp_log_level_parse("WARN", &l), MP_ERR_INVAL);

    mp_log_set_level(MP_LOG_WARN);
    assert_false(mp_log_enabled(MP_LOG_UPSTREAM, MP_LOG_INFO));
    assert_true(mp_log_enabled(MP_LOG_UPSTREAM, MP_LOG_ERROR));
    char *err = NULL;
    assert_int_equal(mp_log_set_component_levels("upstream:debug,connection:trace", &err), 0);
    assert_true(mp_log_enabled(MP_LOG_UPSTREAM, MP_LOG_DEBUG));
    assert_true(mp_log_enabled(MP_LOG_CONNECTION, MP_LOG_TRACE));
    assert_false(mp_log_enabled(MP_LOG_HTTP, MP_LOG_INFO));
    /* A bad spec changes nothing. */
    assert_int_equal(mp_log_set_component_levels("http:debug,nosuch:info", &err), MP_ERR_INVAL);
    assert_non_null(strstr(err, "unknown component \"nosuch\""));
    free(err);
    err = NULL;
    assert_false(mp_log_enabled(MP_LOG_HTTP, MP_LOG_DEBUG));
    /* Envoy's logger names: mapped (hc -> health) or accepted as no-ops. */
    assert_int_equal(mp_log_set_component_levels("misc:error,hc:debug,wasm:trace", &err), 0);
    assert_true(mp_log_enabled(MP_LOG_HEALTH, MP_LOG_DEBUG));
    assert_false(mp_log_enabled(MP_LOG_MAIN, MP_LOG_WARN));
    assert_int_equal(mp_log_set_component_levels("http:loud", &err), MP_ERR_INVAL);
    free(err);
    err = NULL;
    assert_int_equal(mp_log_set_component_levels("http", &err), MP_ERR_INVAL);
    free(err);
    mp_log_set_level(MP_LOG_OFF);
    assert_false(mp_log_enabled(MP_LOG_MAIN, MP_LOG_CRITICAL));
}

static void lines_go_to_the_log_path(void **state)
{
    (void)state;
    char path[] = "/tmp/mp_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mp_log_open_path(path), 0);
    mp_log_set_level(MP_LOG_INFO);
    assert_int_equal(mp_log_set_format("%l|%n|%L|%v|%j|%%|%g:%#"), 0);
    MP_LOG(MP_LOG_ROUTER, MP_LOG_WARN, "hello \"%s\"", "world");
    MP_LOG(MP_LOG_ROUTER, MP_LOG_DEBUG, "not written");
    mp_log_set_escape(true);
    MP_LOG(MP_LOG_XDS, MP_LOG_ERROR, "two\nlines");
    assert_int_equal(mp_log_set_format(NULL), 0);
    mp_log_set_escape(false);
    MP_LOG(MP_LOG_MAIN, MP_LOG_INFO, "default format");
    mp_log_close();
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    char *l1 = buf, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_memory_equal(
        l1, "warning|router|W|hello \"world\"|hello \\\"world\\\"|%|test_log.c:",
        strlen("warning|router|W|hello \"world\"|hello \\\"world\\\"|%|test_log.c:"));
    assert_memory_equal(l2, "error|xds|E|two\\nlines|", strlen("error|xds|E|two\\nlines|"));
    /* "[2026-11-25 22:05:08.123][tid][info][main] [test_log.c:N] default format" */
    assert_int_equal(l3[0], '[');
    assert_int_equal(l3[11], ' ');
    assert_int_equal(l3[20], '.');
    assert_non_null(strstr(l3, "][info][main] [test_log.c:"));
    assert_non_null(strstr(l3, "] default format\n"));
    assert_null(strstr(buf, "not written"));
    assert_int_equal(mp_log_open_path("/nonexistent/dir/log"), MP_ERR_IO);
}

static void *log_thread(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 2000; i++)
        MP_LOG(MP_LOG_CONNECTION, MP_LOG_INFO, "thread %ld line %d %s", id, i,
               "padding padding padding padding padding padding padding padding padding");
    return NULL;
}

/* Lines from many threads stay whole: one write(2) per line, O_APPEND. */
static void lines_from_threads_do_not_interleave(void **state)
{
    (void)state;
    char path[] = "/tmp/mp_log_mt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mp_log_open_path(path), 0);
    mp_log_set_level(MP_LOG_INFO);
    assert_int_equal(mp_log_set_format("<%v>"), 0);
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    mp_log_close();
    mp_log_set_format(NULL);
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0, per[4] = {0};
    while (fgets(line, sizeof(line), f) != NULL) {
        long id;
        int k;
        if (sscanf(line, "<thread %ld line %d padding", &id, &k) != 2 || id < 0 || id > 3 ||
            line[strlen(line) - 2] != '>')
            fail_msg("torn line: %s", line);
        assert_int_equal(k, per[id]); /* each thread's lines in order */
        per[id]++;
        n++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, 8000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_and_components),
        cmocka_unit_test(lines_go_to_the_log_path),
        cmocka_unit_test(lines_from_threads_do_not_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
