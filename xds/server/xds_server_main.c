/*
 * xds_server_main.c: meshproxy-xds, a file-driven xDS control plane.
 *
 *   meshproxy-xds --dir PATH (--port N | --listen ADDR) [--sotw-only |
 *                 --delta-only] [-l LEVEL]
 *
 * Serves the resources under PATH over ADS (SotW and delta), watches PATH
 * with inotify and pushes new versions when files change. SIGINT/SIGTERM
 * stop it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "grpc_thread.h"
#include "mp_common.h"
#include "xds_server.h"
#include "log.h"

/* Files are often written in several steps: wait for quiet. */
#define DEBOUNCE_MS 100

static void usage(FILE *f)
{
    fprintf(f, "usage: meshproxy-xds --dir PATH (--port N | --listen ADDR)\n"
               "                     [--sotw-only | --delta-only] [-l LEVEL]\n"
               "  --dir PATH      folder of Envoy resources (YAML/JSON), see README.md\n"
               "  --port N        listen on 0.0.0.0:N (TCP)\n"
               "  --listen ADDR   host:port, [v6]:port or unix:/path\n"
               "  --sotw-only     serve only state-of-the-world methods\n"
               "  --delta-only    serve only delta (incremental) methods\n"
               "  -l LEVEL        trace, debug, info (default), warning, error, off\n");
}

/* Watches dir and every folder below it (inotify is not recursive). New
 * folders are picked up on the next call. */
static void watch_tree(int fd, const char *dir, int depth)
{
    if (depth > 16)
        return;
    inotify_add_watch(fd, dir,
                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                          IN_MODIFY | IN_ATTRIB);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(fd, path, depth + 1);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},    {"port", required_argument, NULL, 'p'},
        {"listen", required_argument, NULL, 'L'}, {"sotw-only", no_argument, NULL, 's'},
        {"delta-only", no_argument, NULL, 'D'},   {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    char listen[PATH_MAX + 16] = "";
    bool sotw = true, delta = true;
    int c;
    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'p': {
            char *end;
            long port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "meshproxy-xds: --port: invalid port \"%s\"\n", optarg);
                return 2;
            }
            snprintf(listen, sizeof(listen), "0.0.0.0:%ld", port);
            break;
        }
        case 'L': snprintf(listen, sizeof(listen), "%s", optarg); break;
        case 's': delta = false; break;
        case 'D': sotw = false; break;
        case 'l': {
            enum mp_log_level level;
            if (mp_log_level_parse(optarg, &level) != 0) {
                fprintf(stderr, "meshproxy-xds: -l: unknown level \"%s\"\n", optarg);
                return 2;
            }
            mp_log_set_level(level);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || !listen[0] || (!sotw && !delta) || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Block the stop signals before any thread starts, so that they all
     * inherit the mask and only the signalfd sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (sfd < 0 || ifd < 0) {
        fprintf(stderr, "meshproxy-xds: %s\n", strerror(errno));
        return 1;
    }
    watch_tree(ifd, dir, 0);

    struct mp_grpc_thread *gt = NULL;
    if (mp_grpc_thread_new(&gt) != 0) {
        fprintf(stderr, "meshproxy-xds: cannot start the grpc thread\n");
        return 1;
    }
    struct mp_xds_server_config cfg = {.listen = listen, .dir = dir, .sotw = sotw, .delta = delta};
    struct mp_xds_server *srv = NULL;
    char *err = NULL;
    int rc = mp_xds_server_new(gt, &cfg, &srv, &err);
    if (rc) {
        fprintf(stderr, "meshproxy-xds: %s\n", err ? err : mp_strerror(rc));
        free(err);
        mp_grpc_thread_free(gt);
        return 1;
    }
    MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "serving %s on %s (port %d)%s%s", dir, listen,
           mp_xds_server_port(srv), sotw ? " sotw" : "", delta ? " delta" : "");

    bool pending = false;
    for (;;) {
        struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ifd, .events = POLLIN}};
        int n = poll(fds, 2, pending ? DEBOUNCE_MS : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (fds[0].revents & POLLIN))
            break;
        if (n > 0 && (fds[1].revents & POLLIN)) {
            char buf[16384];
            while (read(ifd, buf, sizeof(buf)) > 0) {
            }
            pending = true;
            continue;
        }
        if (n == 0 && pending) {
            pending = false;
            watch_tree(ifd, dir, 0);
            rc = mp_xds_server_reload(srv, &err);
            if (rc) {
                MP_LOG(MP_LOG_XDS, MP_LOG_ERROR,
                       "reload failed, still serving the previous "
                       "resources: %s",
                       err ? err : mp_strerror(rc));
                free(err);
                err = NULL;
            }
        }
    }
    MP_LOG(MP_LOG_XDS, MP_LOG_INFO, "shutting down");
    mp_xds_server_free(srv);
    mp_grpc_thread_free(gt);
    close(ifd);
    close(sfd);
    return 0;
}
