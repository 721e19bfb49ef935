/*
 * test_splice_pump.c: the splice pump state machine over real sockets
 * (socketpairs, and loopback TCP where splice's socket paths matter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buffer.h"
#include "mp_common.h"
#include "splice_pump.h"

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A connected loopback TCP pair: a[0] client, a[1] accepted. */
static void tcp_pair(int a[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    a[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(a[0], (struct sockaddr *)&sa, len), 0);
    a[1] = accept(l, NULL, NULL);
    assert_true(a[1] >= 0);
    close(l);
    nonblock(a[0]);
    nonblock(a[1]);
}

/* src pair: write into s[0], pump reads s[1]; dst pair: pump writes d[0], read d[1]. */
static void test_moves_bytes_and_eof(void **state)
{
    (void)state;
    int s[2], d[2];
    tcp_pair(s);
    tcp_pair(d);
    struct mp_splice_pump p;
    assert_int_equal(mp_splice_pump_init(&p, s[1], d[0], 100000), 0);
    assert_true(p.pipe_cap >= 65536);
    uint64_t in, out;
    /* nothing to read yet */
    assert_int_equal(mp_splice_pump_run(&p, 0, &in, &out), MP_SPLICE_WANT_READ);
    assert_int_equal(in, 0);
    char msg[5000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)('a' + i % 26);
    assert_int_equal(write(s[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    uint64_t tin = 0, tout = 0;
    for (int i = 0; i < 100 && tout < sizeof(msg); i++) {
        int rc = mp_splice_pump_run(&p, 0, &in, &out);
        assert_true(rc == MP_SPLICE_WANT_READ || rc == MP_SPLICE_WANT_WRITE);
        tin += in;
        tout += out;
        if (tout < sizeof(msg))
            usleep(1000);
    }
    assert_int_equal(tin, sizeof(msg));
    assert_int_equal(tout, sizeof(msg));
    char got[sizeof(msg)];
    size_t have = 0;
    for (int i = 0; i < 100 && have < sizeof(got); i++) {
        ssize_t n = read(d[1], got + have, sizeof(got) - have);
        if (n > 0)
            have += (size_t)n;
        else
            usleep(1000);
    }
    assert_int_equal(have, sizeof(msg));
    assert_memory_equal(got, msg, sizeof(msg));
    /* the source's FIN ends the pump once the pipe is drained */
    shutdown(s[0], SHUT_WR);
    int rc = MP_SPLICE_WANT_READ;
    for (int i = 0; i < 100 && rc == MP_SPLICE_WANT_READ; i++) {
        rc = mp_splice_pump_run(&p, 0, &in, &out);
        if (rc == MP_SPLICE_WANT_READ)
            usleep(1000);
    }
    assert_int_equal(rc, MP_SPLICE_DONE);
    assert_true(p.src_eof);
    mp_splice_pump_close(&p);
    mp_splice_pump_close(&p); /* idempotent */
    assert_int_equal(p.pipe_r, -1);
    close(s[0]);
    close(s[1]);
    close(d[0]);
    close(d[1]);
}

/* A destination that does not read: the pump stops reading (pipe full) and
 * asks for writability; everything arrives once the reader drains. */
static void test_backpressure(void **state)
{
    (void)state;
    int s[2], d[2];
    tcp_pair(s);
    tcp_pair(d);
    /* small, but not so small that TCP falls into zero-window probing */
    int small = 65536;
    setsockopt(d[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(d[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct mp_splice_pump p;
    assert_int_equal(mp_splice_pump_init(&p, s[1], d[0], 65536), 0);
    size_t total = 16u << 20;
    unsigned char *data = malloc(total), *got = malloc(total);
    assert_non_null(data);
    assert_non_null(got);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 12));
    size_t sent = 0, recvd = 0;
    uint64_t tin = 0, tout = 0, in, out;
    bool saw_want_write = false;
    /* phase 1: nobody reads d[1] */
    for (int i = 0; i < 200; i++) {
        ssize_t n = write(s[0], data + sent, total - sent);
        if (n > 0)
            sent += (size_t)n;
        int rc = mp_splice_pump_run(&p, 0, &in, &out);
        assert_true(rc >= 0);
        tin += in;
        tout += out;
        if (rc == MP_SPLICE_WANT_WRITE)
            saw_want_write = true;
    }
    assert_true(saw_want_write);
    /* bounded: at most the pipe plus the socket buffers were taken in */
    assert_true(tin <= tout + p.pipe_cap);
    /* phase 2: drain everything */
    for (int i = 0; i < 2000000 && recvd < total; i++) {
        if (sent < total) {
            ssize_t n = write(s[0], data + sent, total - sent);
            if (n > 0)
                sent += (size_t)n;
            if (sent == total)
                shutdown(s[0], SHUT_WR);
        }
        int rc = mp_splice_pump_run(&p, 256 * 1024, &in, &out);
        assert_true(rc >= 0);
        tin += in;
        tout += out;
        ssize_t n = read(d[1], got + recvd, total - recvd);
        if (n > 0)
            recvd += (size_t)n;
        else if (in == 0 && out == 0)
            usleep(100); /* bounded: the loop ends after ~2M turns at worst */
    }
    assert_int_equal(recvd, total);
    assert_memory_equal(got, data, total);
    assert_int_equal(tin, total);
    assert_int_equal(tout, total);
    uint64_t in2, out2;
    int rc = MP_SPLICE_WANT_READ;
    for (int i = 0; i < 100 && rc != MP_SPLICE_DONE; i++) {
        rc = mp_splice_pump_run(&p, 0, &in2, &out2);
        if (rc != MP_SPLICE_DONE)
            usleep(1000);
    }
    assert_int_equal(rc, MP_SPLICE_DONE);
    mp_splice_pump_close(&p);
    free(data);
    free(got);
    close(s[0]);
    close(s[1]);
    close(d[0]);
    close(d[1]);
}

/* A budget stops the pump after about that many bytes, with more waiting. */
static void test_budget(void **state)
{
    (void)state;
    int s[2], d[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, d), 0);
    nonblock(s[1]);
    nonblock(d[0]);
    struct mp_splice_pump p;
    assert_int_equal(mp_splice_pump_init(&p, s[1], d[0], 65536), 0);
    char buf[1000];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 10; i++)
        assert_int_equal(write(s[0], buf, 100), 100);
    uint64_t in, out;
    int rc = mp_splice_pump_run(&p, 1, &in, &out);
    assert_int_equal(rc, MP_SPLICE_WANT_READ);
    assert_true(in >= 1);
    assert_int_equal(in, out);
    mp_splice_pump_close(&p);
    close(s[0]);
    close(s[1]);
    close(d[0]);
    close(d[1]);
}

/* A reset destination is an error, not a hang. */
static void test_dst_reset(void **state)
{
    (void)state;
    int s[2], d[2];
    tcp_pair(s);
    tcp_pair(d);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(d[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(d[1]); /* RST */
    usleep(20000);
    struct mp_splice_pump p;
    assert_int_equal(mp_splice_pump_init(&p, s[1], d[0], 65536), 0);
    assert_int_equal(write(s[0], "hello", 5), 5);
    usleep(10000);
    uint64_t in, out;
    int rc = 0;
    for (int i = 0; i < 10 && rc >= 0; i++)
        rc = mp_splice_pump_run(&p, 0, &in, &out);
    assert_int_equal(rc, MP_ERR_IO);
    mp_splice_pump_close(&p);
    close(s[0]);
    close(s[1]);
    close(d[0]);
}

/* Files splice to pipes, but a regular file is no socket destination for a
 * socket: use a fd splice refuses (an eventfd-like pipe pair in the wrong
 * direction) and check the pump reports UNSUPPORTED and the bytes survive. */
static void test_unsupported_and_take(void **state)
{
    (void)state;
    int s[2];
    tcp_pair(s);
    /* O_APPEND files make splice fail with EINVAL */
    char path[] = "/tmp/mp_splice_testXXXXXX";
    int f = mkstemp(path);
    assert_true(f >= 0);
    unlink(path);
    fcntl(f, F_SETFL, O_APPEND);
    struct mp_splice_pump p;
    assert_int_equal(mp_splice_pump_init(&p, s[1], f, 65536), 0);
    assert_int_equal(write(s[0], "abcdef", 6), 6);
    usleep(10000);
    uint64_t in, out;
    int rc = mp_splice_pump_run(&p, 0, &in, &out);
    assert_int_equal(rc, MP_SPLICE_UNSUPPORTED);
    assert_int_equal(in, 6);
    assert_int_equal(out, 0);
    struct mp_buffer b;
    mp_buffer_init(&b);
    assert_int_equal(mp_splice_pump_take(&p, &b), 6);
    assert_int_equal(mp_buffer_len(&b), 6);
    char got[6];
    mp_buffer_copy_out(&b, 0, got, 6);
    assert_memory_equal(got, "abcdef", 6);
    assert_int_equal(p.in_pipe, 0);
    mp_buffer_clear(&b);
    uint64_t before = mp_splice_pump_fallbacks();
    mp_splice_pump_count_fallback();
    assert_int_equal(mp_splice_pump_fallbacks(), before + 1);
    mp_splice_pump_close(&p);
    close(f);
    close(s[0]);
    close(s[1]);
}

static void test_enabled_env(void **state)
{
    (void)state;
    unsetenv("MESHPROXY_NO_SPLICE");
    assert_true(mp_splice_pump_enabled());
    setenv("MESHPROXY_NO_SPLICE", "0", 1);
    assert_true(mp_splice_pump_enabled());
    setenv("MESHPROXY_NO_SPLICE", "1", 1);
    assert_false(mp_splice_pump_enabled());
    unsetenv("MESHPROXY_NO_SPLICE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves_bytes_and_eof),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_dst_reset),
        cmocka_unit_test(test_unsupported_and_take),
        cmocka_unit_test(test_enabled_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
