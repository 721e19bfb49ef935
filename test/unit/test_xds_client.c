/* Unit tests for xds_client.c and grpc_thread.c against a real
 * meshproxy-xds server (xds/server, in-process) on 127.0.0.1 and on a Unix
 * socket: SotW and delta, ACK/NACK, pushes, removal, reconnect,
 * initial_fetch_timeout, unary calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy/mp_common.h"
#include "xds/grpc_thread.h"
#include "xds/server/xds_server.h"
#include "xds/xds_client.h"

#define WAIT_MS 10000

struct seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int updates[5]; /* per type: LDS RDS CDS EDS SDS responses */
    int accepted[5];
    char last_names[5][256];
    char last_removed[5][256];
    char last_version[5][64];
    int connects, disconnects, fetch_timeouts;
    char reject[64]; /* a Cluster with this name is NACKed */
    int unary_status;
    int unary_done;
};

static int type_slot(const char *type_url)
{
    static const char *const t[] = {MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE, MP_XDS_TYPE_CLUSTER,
                                    MP_XDS_TYPE_ENDPOINT, MP_XDS_TYPE_SECRET};
    for (int i = 0; i < 5; i++)
        if (strcmp(t[i], type_url) == 0)
            return i;
    return 0;
}

static int on_update(void *ctx, const struct mp_xds_update *up, char **err)
{
    struct seen *s = ctx;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    int k = type_slot(up->type_url);
    if (up->kind == MP_XDS_UPDATE_RESPONSE) {
        s->updates[k]++;
        s->last_names[k][0] = '\0';
        for (size_t i = 0; i < up->n_resources; i++) {
            if (s->reject[0] && strcmp(up->resources[i].name, s->reject) == 0)
                rc = mp_set_err(err, "Cluster \"%s\": rejected by the test", s->reject);
            strncat(s->last_names[k], up->resources[i].name, 200);
            strcat(s->last_names[k], ",");
        }
        s->last_removed[k][0] = '\0';
        for (size_t i = 0; i < up->n_removed; i++) {
            strncat(s->last_removed[k], up->removed[i], 200);
            strcat(s->last_removed[k], ",");
        }
        if (!rc) {
            s->accepted[k]++;
            snprintf(s->last_version[k], sizeof(s->last_version[k]), "%s", up->version_info);
        }
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void on_connection(void *ctx, bool up)
{
    struct seen *s = ctx;
    pthread_mutex_lock(&s->lock);
    if (up)
        s->connects++;
    else
        s->disconnects++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void on_fetch_timeout(void *ctx, const char *type_url)
{
    struct seen *s = ctx;
    (void)type_url;
    pthread_mutex_lock(&s->lock);
    s->fetch_timeouts++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static const struct mp_xds_watcher_ops ops = {
    .on_update = on_update, .on_connection = on_connection, .on_fetch_timeout = on_fetch_timeout};

/* Waits until *counter >= want (under s->lock). */
static int wait_for(struct seen *s, const int *counter, int want)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(&s->cond, &s->lock, &dl);
    int ok = *counter >= want;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
}

static void seen_destroy(struct seen *s)
{
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static const char *const CLUSTERS =
    "- {name: svc-a, type: EDS, connect_timeout: 1s, eds_cluster_config: {eds_config: {ads: {}}}}\n"
    "- {name: svc-b, type: STATIC, connect_timeout: 1s}\n";
static const char *const ENDPOINTS =
    "cluster_name: svc-a\n"
    "endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, "
    "port_value: 1}}}}]}]\n";
static const char *const LISTENERS =
    "name: l1\n"
    "address: {socket_address: {address: 127.0.0.1, port_value: 15001}}\n"
    "filter_chains:\n"
    "- filters:\n"
    "  - name: envoy.filters.network.http_connection_manager\n"
    "    typed_config:\n"
    "      \"@type\": "
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
    "      stat_prefix: l1\n"
    "      rds: {route_config_name: r1, config_source: {ads: {}}}\n";
static const char *const ROUTES = "name: r1\nvirtual_hosts: [{name: v, domains: ['*']}]\n";

struct fixture {
    char dir[128];
    char listen[192];
    struct mp_grpc_thread *gt;
    struct mp_xds_server *srv;
    struct seen seen;
    struct mp_xds_client *client;
};

static void make_dir(struct fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/mp-xds-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/clusters", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(f->dir, "clusters/c.yaml", CLUSTERS);
    write_file(f->dir, "endpoints.yaml", ENDPOINTS);
    write_file(f->dir, "listeners.yaml", LISTENERS);
    write_file(f->dir, "routes.yaml", ROUTES);
}

static void start_server(struct fixture *f, const char *listen)
{
    struct mp_xds_server_config cfg = {
        .listen = listen, .dir = f->dir, .sotw = true, .delta = true};
    char *err = NULL;
    int rc = mp_xds_server_new(f->gt, &cfg, &f->srv, &err);
    if (rc)
        fail_msg("server: %s", err ? err : mp_strerror(rc));
    if (strncmp(listen, "unix:", 5) == 0)
        snprintf(f->listen, sizeof(f->listen), "%s", listen);
    else
        snprintf(f->listen, sizeof(f->listen), "127.0.0.1:%d", mp_xds_server_port(f->srv));
}

static void start_client(struct fixture *f, enum mp_xds_mode mode, int64_t fetch_timeout_ms)
{
    Envoy__Config__Core__V3__Node node;
    envoy__config__core__v3__node__init(&node);
    node.id = "c-client";
    struct mp_xds_client_config cfg = {
        .target = f->listen,
        .mode = mode,
        .node = &node,
        .initial_fetch_timeout_ms = fetch_timeout_ms,
        .backoff_base_ms = 50,
        .backoff_max_ms = 200,
        .ops = &ops,
        .ctx = &f->seen,
    };
    char *err = NULL;
    assert_int_equal(mp_xds_client_new(f->gt, &cfg, &f->client, &err), 0);
    assert_int_equal(mp_xds_client_start(f->client), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    seen_init(&f->seen);
    make_dir(f);
    assert_int_equal(mp_grpc_thread_new(&f->gt), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mp_xds_client_free(f->client);
    mp_xds_server_free(f->srv);
    mp_grpc_thread_free(f->gt);
    seen_destroy(&f->seen);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

struct version_query {
    struct mp_xds_client *c;
    const char *type_url;
    char buf[64];
    char pending[256];
};

static void query_version(void *arg)
{
    struct version_query *q = arg;
    mp_xds_client_version(q->c, q->type_url, q->buf, sizeof(q->buf));
    char **names;
    size_t n;
    q->pending[0] = '\0';
    if (mp_xds_client_pending_names(q->c, q->type_url, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            strcat(q->pending, names[i]);
            strcat(q->pending, ",");
        }
        mp_xds_names_free(names, n);
    }
}

static void client_version(struct fixture *f, const char *type_url, char *out, size_t len)
{
    struct version_query q = {.c = f->client, .type_url = type_url};
    assert_int_equal(mp_grpc_thread_run_sync(f->gt, query_version, &q), 0);
    snprintf(out, len, "%s", q.buf);
}

static void full_flow(struct fixture *f, enum mp_xds_mode mode)
{
    start_server(f, "127.0.0.1:0");
    start_client(f, mode, 0);
    struct seen *s = &f->seen;
    /* CDS -> EDS (svc-a), LDS -> RDS (r1) */
    assert_true(wait_for(s, &s->accepted[2], 1));
    assert_true(wait_for(s, &s->accepted[3], 1));
    assert_true(wait_for(s, &s->accepted[0], 1));
    assert_true(wait_for(s, &s->accepted[1], 1));
    assert_true(wait_for(s, &s->connects, 1));
    pthread_mutex_lock(&s->lock);
    assert_string_equal(s->last_names[2], "svc-a,svc-b,");
    assert_string_equal(s->last_names[3], "svc-a,");
    assert_string_equal(s->last_names[1], "r1,");
    pthread_mutex_unlock(&s->lock);
    char v1[64];
    client_version(f, MP_XDS_TYPE_CLUSTER, v1, sizeof(v1));
    if (mode == MP_XDS_SOTW)
        assert_string_equal(v1, "1");

    /* a rejected cluster: NACK, the client keeps the old version */
    snprintf(s->reject, sizeof(s->reject), "svc-bad");
    write_file(f->dir, "clusters/bad.yaml",
               "- {name: svc-bad, type: STATIC, connect_timeout: 1s}\n");
    char *err = NULL;
    assert_int_equal(mp_xds_server_reload(f->srv, &err), 0);
    assert_true(wait_for(s, &s->updates[2], 2));
    assert_int_equal(s->accepted[2], 1);
    char v2[64];
    client_version(f, MP_XDS_TYPE_CLUSTER, v2, sizeof(v2));
    assert_string_equal(v1, v2);

    /* fixed on disk: the next push is accepted; the removed one goes */
    char bad[256];
    snprintf(bad, sizeof(bad), "%s/clusters/bad.yaml", f->dir);
    assert_int_equal(unlink(bad), 0);
    write_file(f->dir, "clusters/c.yaml", "- {name: svc-b, type: STATIC, connect_timeout: 2s}\n");
    assert_int_equal(mp_xds_server_reload(f->srv, &err), 0);
    assert_true(wait_for(s, &s->accepted[2], 2));
    /* SotW: svc-a is absent from the full set; delta: removed_resources.
     * Either way the watcher sees the same thing. */
    pthread_mutex_lock(&s->lock);
    assert_string_equal(s->last_names[2], "svc-b,");
    assert_string_equal(s->last_removed[2], "svc-a,");
    pthread_mutex_unlock(&s->lock);
    client_version(f, MP_XDS_TYPE_CLUSTER, v2, sizeof(v2));
    if (mode == MP_XDS_SOTW)
        assert_string_not_equal(v1, v2);
}

static void sotw_against_server(void **state)
{
    full_flow(*state, MP_XDS_SOTW);
}

static void delta_against_server(void **state)
{
    full_flow(*state, MP_XDS_DELTA);
}

static void reconnects_after_server_restart(void **state)
{
    struct fixture *f = *state;
    char listen[200];
    snprintf(listen, sizeof(listen), "unix:%s/xds.sock", f->dir);
    start_server(f, listen);
    start_client(f, MP_XDS_DELTA, 0);
    struct seen *s = &f->seen;
    assert_true(wait_for(s, &s->accepted[1], 1));
    mp_xds_server_free(f->srv);
    f->srv = NULL;
    assert_true(wait_for(s, &s->disconnects, 1));
    unlink(listen + 5);
    start_server(f, listen);
    assert_true(wait_for(s, &s->connects, 2));
    /* the new server learns what the client has from
     * initial_resource_versions and sends nothing it already holds, but the
     * subscriptions are all there again: a change comes through */
    write_file(f->dir, "routes.yaml", "name: r1\nvirtual_hosts: [{name: w, domains: ['*']}]\n");
    char *err = NULL;
    assert_int_equal(mp_xds_server_reload(f->srv, &err), 0);
    assert_true(wait_for(s, &s->accepted[1], 2));
}

static void fetch_timeout_without_server(void **state)
{
    struct fixture *f = *state;
    snprintf(f->listen, sizeof(f->listen), "unix:%s/nobody.sock", f->dir);
    start_client(f, MP_XDS_SOTW, 100);
    struct seen *s = &f->seen;
    /* CDS and LDS were requested and never answered */
    assert_true(wait_for(s, &s->fetch_timeouts, 2));
    assert_int_equal(s->connects, 0);
}

static void unary_done(void *ctx, int status, const char *message, const uint8_t *resp, size_t len)
{
    struct seen *s = ctx;
    (void)message;
    (void)resp;
    (void)len;
    pthread_mutex_lock(&s->lock);
    s->unary_status = status;
    s->unary_done++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void unary_call_gets_status(void **state)
{
    struct fixture *f = *state;
    start_server(f, "127.0.0.1:0");
    grpc_channel *ch = mp_grpc_channel_new(f->listen, NULL);
    assert_non_null(ch);
    struct seen *s = &f->seen;
    const uint8_t req[] = {0x0a, 0x01, 0x41};
    assert_int_equal(
        mp_grpc_unary_start(f->gt, ch, "/no.Such/Method", req, sizeof(req), 5000, unary_done, s),
        0);
    assert_true(wait_for(s, &s->unary_done, 1));
    assert_int_equal(s->unary_status, GRPC_STATUS_UNIMPLEMENTED);
    mp_xds_server_free(f->srv);
    f->srv = NULL;
    grpc_channel_destroy(ch);
}

static void sds_stream_by_name(void **state)
{
    struct fixture *f = *state;
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/secrets", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(f->dir, "secrets/default.yaml",
               "name: default\n"
               "tls_certificate:\n"
               "  certificate_chain: {inline_string: CERT}\n"
               "  private_key: {inline_string: KEY}\n");
    start_server(f, "127.0.0.1:0");
    for (int mode = MP_XDS_SOTW; mode <= MP_XDS_DELTA; mode++) {
        struct seen *s = &f->seen;
        const char *types[] = {MP_XDS_TYPE_SECRET};
        struct mp_xds_client_config cfg = {
            .target = f->listen,
            .method = mp_xds_method_for_type(MP_XDS_TYPE_SECRET, (enum mp_xds_mode)mode),
            .mode = (enum mp_xds_mode)mode,
            .type_urls = types,
            .n_type_urls = 1,
            .ops = &ops,
            .ctx = s,
        };
        assert_string_equal(cfg.method, mode == MP_XDS_SOTW ? MP_XDS_SDS_SOTW_METHOD
                                                            : MP_XDS_SDS_DELTA_METHOD);
        assert_int_equal(mp_xds_client_new(f->gt, &cfg, &f->client, NULL), 0);
        assert_int_equal(mp_xds_client_start(f->client), 0);
        const char *names[] = {"default", "ROOTCA"};
        assert_int_equal(mp_xds_client_subscribe(f->client, MP_XDS_TYPE_SECRET, names, 2), 0);
        assert_int_equal(mp_xds_client_subscribe(f->client, MP_XDS_TYPE_CLUSTER, names, 2),
                         MP_ERR_NOTFOUND);
        assert_true(wait_for(s, &s->accepted[4], mode + 1));
        pthread_mutex_lock(&s->lock);
        assert_string_equal(s->last_names[4], "default,");
        pthread_mutex_unlock(&s->lock);
        struct version_query q = {.c = f->client, .type_url = MP_XDS_TYPE_SECRET};
        assert_int_equal(mp_grpc_thread_run_sync(f->gt, query_version, &q), 0);
        assert_string_equal(q.pending, "ROOTCA,");
        mp_xds_client_free(f->client);
        f->client = NULL;
    }
}

struct post_item {
    struct fixture *f;
    int i;
};

static int post_order[100];
static int post_count;
static int post_on_thread;

static void post_run(void *arg)
{
    struct post_item *it = arg;
    struct seen *s = &it->f->seen;
    pthread_mutex_lock(&s->lock);
    post_order[post_count++] = it->i;
    post_on_thread += mp_grpc_thread_is_current(it->f->gt);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void posting_runs_in_order_on_the_thread(void **state)
{
    struct fixture *f = *state;
    struct post_item items[100];
    post_count = post_on_thread = 0;
    assert_false(mp_grpc_thread_is_current(f->gt));
    for (int i = 0; i < 100; i++) {
        items[i] = (struct post_item){f, i};
        assert_int_equal(mp_grpc_thread_post(f->gt, post_run, &items[i]), 0);
    }
    assert_true(wait_for(&f->seen, &post_count, 100));
    for (int i = 0; i < 100; i++)
        assert_int_equal(post_order[i], i);
    assert_int_equal(post_on_thread, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sotw_against_server, setup, teardown),
        cmocka_unit_test_setup_teardown(delta_against_server, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnects_after_server_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(fetch_timeout_without_server, setup, teardown),
        cmocka_unit_test_setup_teardown(unary_call_gets_status, setup, teardown),
        cmocka_unit_test_setup_teardown(posting_runs_in_order_on_the_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(sds_stream_by_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
