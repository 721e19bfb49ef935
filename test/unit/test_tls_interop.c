/*
 * test_tls_interop.c: mp_tls_transport over real loopback sockets against
 * other TLS implementations run as processes: curl as an mTLS client of our
 * server, and `openssl s_server` as the mTLS server of our client. Each peer
 * is a child process with a bounded run time, killed by pid at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxy/buffer.h"
#include "proxy/mp_common.h"
#include "proxy/tls_context.h"
#include "proxy/tls_transport.h"
#include "test_tls_util.h"
#include "xds/xds_translate_tls.h"

extern char **environ;

static char g_dir[64];
static int g_have_certs;

static int group_setup(void **state)
{
    g_have_certs = tls_test_make_certs(g_dir) == 0;
    return 0;
}

static int group_teardown(void **state)
{
    tls_test_remove_certs(g_dir);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int have_program(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static pid_t spawn(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    return pid;
}

/* Waits up to secs for pid; kills it (by pid) when it overstays. Returns its exit status. */
static int reap(pid_t pid, double secs)
{
    double end = now() + secs;
    int st = 0;
    while (now() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static struct mp_tls_context *make_ctx(int server, const char *cert, const char *ca,
                                       const char *san, int require)
{
    static const char *const alpn[] = {"h2", "http/1.1", NULL};
    struct pb_tls p;
    pb_tls_init(&p, g_dir, cert, ca, san, alpn);
    if (require)
        pb_tls_require_client_cert(&p);
    struct mp_tls_config *cfg = NULL;
    char *err = NULL;
    int rc = server ? mp_xds_translate_downstream_tls(&p.down, &cfg, &err)
                    : mp_xds_translate_upstream_tls(&p.up, &cfg, &err);
    if (rc != 0)
        fail_msg("translate: %s", err);
    struct mp_tls_context *ctx = NULL;
    if (mp_tls_context_new(cfg, NULL, NULL, &ctx, &err) != 0)
        fail_msg("context: %s", err);
    mp_tls_config_unref(cfg);
    return ctx;
}

/* One TLS connection driven over a non-blocking socket. */
struct drive {
    int fd;
    struct mp_tls_transport *t;
    struct mp_buffer in, out, plain;
    int eof;
};

/* Sends pending ciphertext, waits up to 50 ms for more, feeds what came. */
static void io_step(struct drive *d)
{
    assert_true(mp_tls_transport_take_output(d->t, &d->out) >= 0);
    while (mp_buffer_len(&d->out) > 0) {
        ssize_t w = mp_buffer_write_fd(&d->out, d->fd);
        if (w == MP_ERR_AGAIN) {
            struct pollfd pw = {d->fd, POLLOUT, 0};
            poll(&pw, 1, 50);
            continue;
        }
        if (w < 0) {
            mp_buffer_clear(&d->out);
            break;
        }
    }
    struct pollfd pr = {d->fd, POLLIN, 0};
    if (d->eof || poll(&pr, 1, 50) <= 0)
        return;
    ssize_t n = mp_buffer_read_fd(&d->in, d->fd, 0);
    if (n > 0)
        assert_int_equal(mp_tls_transport_feed(d->t, &d->in), 0);
    else if (n == MP_ERR_CLOSED || n == MP_ERR_IO) {
        d->eof = 1;
        mp_tls_transport_feed_eof(d->t);
    }
}

static void drive_done(struct drive *d)
{
    mp_tls_transport_free(d->t);
    mp_buffer_clear(&d->in);
    mp_buffer_clear(&d->out);
    mp_buffer_clear(&d->plain);
    close(d->fd);
}

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/*
 * Serves one HTTPS request from curl: the response body is the peer's URI
 * SAN, the ALPN and the version. Returns the server handshake result.
 */
static int serve_curl(struct mp_tls_context *sctx, int with_cert, char *body, size_t cap)
{
    uint16_t port;
    int lfd = listen_any(&port);
    char url[96], resolve[96], out[128], cacert[128], cert[128], key[128];
    snprintf(url, sizeof(url), "https://web.default.svc:%u/", port);
    snprintf(resolve, sizeof(resolve), "web.default.svc:%u:127.0.0.1", port);
    snprintf(out, sizeof(out), "%s/curl.out", g_dir);
    snprintf(cacert, sizeof(cacert), "%s/ca.crt", g_dir);
    snprintf(cert, sizeof(cert), "%s/api.crt", g_dir);
    snprintf(key, sizeof(key), "%s/api.key", g_dir);
    char *argv_cert[] = {"curl",     "-sS",       "--http1.1", "--max-time", "10",
                         "--cacert", cacert,      "--cert",    cert,         "--key",
                         key,        "--resolve", resolve,     url,          NULL};
    char *argv_nocert[] = {"curl", "-sS",       "--http1.1", "--max-time", "10", "--cacert",
                           cacert, "--resolve", resolve,     url,          NULL};
    pid_t pid = spawn(with_cert ? argv_cert : argv_nocert, out);

    struct drive d = {.fd = -1};
    double end = now() + 10;
    while (d.fd < 0 && now() < end) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0)
            d.fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    }
    close(lfd);
    assert_true(d.fd >= 0);
    assert_int_equal(mp_tls_transport_new(sctx, NULL, &d.t), 0);
    int hs = MP_ERR_AGAIN, responded = 0;
    while (now() < end) {
        io_step(&d);
        if (hs == MP_ERR_AGAIN)
            hs = mp_tls_transport_handshake(d.t);
        if (hs == MP_ERR_PROTO) {
            io_step(&d); /* send the alert */
            break;
        }
        if (hs != 0)
            continue;
        ssize_t r = mp_tls_transport_read(d.t, &d.plain);
        if (r == MP_ERR_PROTO || r == MP_ERR_CLOSED)
            break;
        if (!responded && mp_buffer_len(&d.plain) > 0) {
            char req[4096] = {0};
            mp_buffer_copy_out(&d.plain, 0, req, sizeof(req) - 1);
            if (strstr(req, "\r\n\r\n") == NULL)
                continue;
            const char *san = mp_tls_transport_peer_uri_san(d.t);
            char text[512];
            int n = snprintf(text, sizeof(text), "%s|%s|%s", san ? san : "-",
                             mp_tls_transport_alpn(d.t) ? mp_tls_transport_alpn(d.t) : "-",
                             mp_tls_transport_version(d.t));
            char resp[768];
            int rl = snprintf(
                resp, sizeof(resp),
                "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", n, text);
            assert_int_equal(mp_tls_transport_write_bytes(d.t, resp, (size_t)rl), rl);
            assert_int_equal(mp_tls_transport_shutdown(d.t), 0);
            responded = 1;
        }
        if (responded && mp_tls_transport_pending_output(d.t) == 0) {
            io_step(&d);
            break;
        }
    }
    drive_done(&d);
    int status = reap(pid, 10);
    body[0] = 0;
    char *got = tls_test_slurp(g_dir, "curl.out");
    if (got != NULL) {
        snprintf(body, cap, "%s", got);
        free(got);
    }
    return status == 0 ? hs : (hs == 0 ? MP_ERR_IO : hs);
}

static void test_curl_mtls_client(void **state)
{
    if (!have_program("curl"))
        skip();
    assert_true(g_have_certs);
    struct mp_tls_context *sctx = make_ctx(1, "web", "ca", SPIFFE_API, 1);
    char body[512];
    assert_int_equal(serve_curl(sctx, 1, body, sizeof(body)), 0);
    assert_string_equal(body, SPIFFE_API "|http/1.1|TLSv1.3");
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(sctx), 0), 1);

    /* curl without a client certificate is refused and counted */
    assert_int_equal(serve_curl(sctx, 0, body, sizeof(body)), MP_ERR_PROTO);
    assert_int_equal(mp_tls_stats_get(mp_tls_context_stats(sctx), 5), 1); /* fail_verify_no_cert */
    mp_tls_context_unref(sctx);
}

static void test_openssl_server(void **state)
{
    assert_true(g_have_certs);
    /* a free port for s_server */
    uint16_t port;
    close(listen_any(&port));
    char accept[32], cert[128], key[128], ca[128], out[128];
    snprintf(accept, sizeof(accept), "127.0.0.1:%u", port);
    snprintf(cert, sizeof(cert), "%s/web.crt", g_dir);
    snprintf(key, sizeof(key), "%s/web.key", g_dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", g_dir);
    snprintf(out, sizeof(out), "%s/s_server.out", g_dir);
    char *argv[] = {"openssl", "s_server",    "-accept",
                    accept,    "-naccept",    "1",
                    "-cert",   cert,          "-key",
                    key,       "-CAfile",     ca,
                    "-Verify", "2",           "-verify_return_error",
                    "-alpn",   "h2,http/1.1", "-www",
                    NULL};
    pid_t pid = spawn(argv, out);

    struct mp_tls_context *cctx = make_ctx(0, "api", "ca", SPIFFE_WEB, 0);
    struct drive d = {.fd = -1};
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    double end = now() + 10;
    while (now() < end) {
        d.fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(d.fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            break;
        close(d.fd);
        d.fd = -1;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(d.fd >= 0);
    fcntl(d.fd, F_SETFL, O_NONBLOCK);
    struct mp_tls_transport_opts o = {.sni = "web.default.svc"};
    assert_int_equal(mp_tls_transport_new(cctx, &o, &d.t), 0);
    int hs = MP_ERR_AGAIN, sent = 0, closed = 0;
    while (now() < end && !closed) {
        io_step(&d);
        if (hs == MP_ERR_AGAIN)
            hs = mp_tls_transport_handshake(d.t);
        if (hs == MP_ERR_PROTO)
            break;
        if (hs != 0)
            continue;
        if (!sent) {
            const char *req = "GET / HTTP/1.0\r\n\r\n";
            assert_int_equal(mp_tls_transport_write_bytes(d.t, req, strlen(req)),
                             (ssize_t)strlen(req));
            sent = 1;
        }
        ssize_t r = mp_tls_transport_read(d.t, &d.plain);
        closed = r == MP_ERR_CLOSED || r == MP_ERR_PROTO || d.eof;
    }
    assert_int_equal(hs, 0);
    assert_string_equal(mp_tls_transport_peer_uri_san(d.t), SPIFFE_WEB);
    assert_true(mp_tls_transport_peer(d.t)->verified);
    assert_string_equal(mp_tls_transport_alpn(d.t), "h2");
    char resp[64] = {0};
    mp_buffer_copy_out(&d.plain, 0, resp, sizeof(resp) - 1);
    assert_memory_equal(resp, "HTTP/1.0 200 ok", 15);
    drive_done(&d);
    reap(pid, 5);
    mp_tls_context_unref(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_mtls_client),
        cmocka_unit_test(test_openssl_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
