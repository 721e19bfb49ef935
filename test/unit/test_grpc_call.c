/*
 * test_grpc_call.c: unary calls from an event-loop thread through the grpc
 * thread (filters/http/grpc_call.c) against a real grpc core server on
 * 127.0.0.1: answers arrive on the caller's loop, errors and deadlines are
 * reported, a cancelled call never calls back, and nothing leaks (ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>

#include "filters/http/grpc_call.h"
#include "proxy/mp_common.h"
#include "xds/grpc_thread.h"

/* ---- a serial echo server on its own completion queue ---------------------- */

struct echo_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int port;
    _Atomic int served; /* counted before answering */
};

static void *tag(intptr_t n)
{
    return (void *)n;
}

static grpc_event next(grpc_completion_queue *cq)
{
    return grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

/* Echoes each request; a request starting with "sleep" is answered after
 * 300 ms, one starting with "deny" gets PERMISSION_DENIED. */
static void *echo_main(void *arg)
{
    struct echo_server *es = arg;
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details details;
        grpc_metadata_array md;
        grpc_call_details_init(&details);
        grpc_metadata_array_init(&md);
        if (grpc_server_request_call(es->server, &call, &details, &md, es->cq, es->cq, tag(1)) !=
            GRPC_CALL_OK)
            break;
        grpc_event ev = next(es->cq);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag != tag(1) || !ev.success) {
            grpc_call_details_destroy(&details);
            grpc_metadata_array_destroy(&md);
            if (call)
                grpc_call_unref(call);
            break; /* shutting down */
        }
        grpc_byte_buffer *req = NULL;
        grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
        op.data.recv_message.recv_message = &req;
        grpc_call_start_batch(call, &op, 1, tag(2), NULL);
        next(es->cq);
        uint8_t *data = NULL;
        size_t len = 0;
        if (req)
            mp_grpc_buffer_flatten(req, &data, &len);
        if (len >= 5 && memcmp(data, "sleep", 5) == 0)
            usleep(300000);
        bool deny = len >= 4 && memcmp(data, "deny", 4) == 0;
        es->served++;
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        grpc_byte_buffer *resp = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        int cancelled = 0;
        grpc_slice msg = grpc_slice_from_static_string(deny ? "nope" : "");
        grpc_op ops[4];
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = resp;
        ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[2].data.send_status_from_server.status =
            deny ? GRPC_STATUS_PERMISSION_DENIED : GRPC_STATUS_OK;
        ops[2].data.send_status_from_server.status_details = &msg;
        ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[3].data.recv_close_on_server.cancelled = &cancelled;
        grpc_call_start_batch(call, ops, deny ? 1 : 2, tag(3), NULL);
        next(es->cq);
        grpc_call_start_batch(call, ops + 2, 2, tag(4), NULL);
        next(es->cq);
        grpc_byte_buffer_destroy(resp);
        if (req)
            grpc_byte_buffer_destroy(req);
        free(data);
        grpc_call_unref(call);
        grpc_call_details_destroy(&details);
        grpc_metadata_array_destroy(&md);
    }
    return NULL;
}

static struct echo_server *echo_start(void)
{
    struct echo_server *es = calloc(1, sizeof(*es));
    assert_non_null(es);
    es->cq = grpc_completion_queue_create_for_next(NULL);
    es->server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(es->server, es->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    es->port = grpc_server_add_http2_port(es->server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    assert_true(es->port > 0);
    grpc_server_start(es->server);
    assert_int_equal(pthread_create(&es->thread, NULL, echo_main, es), 0);
    return es;
}

static void echo_stop(struct echo_server *es)
{
    grpc_server_shutdown_and_notify(es->server, es->cq, tag(9));
    grpc_server_cancel_all_calls(es->server);
    pthread_join(es->thread, NULL);
    grpc_server_destroy(es->server);
    grpc_completion_queue_shutdown(es->cq);
    while (next(es->cq).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(es->cq);
    free(es);
}

/* ---- the caller's side ----------------------------------------------------- */

struct fixture {
    struct mp_grpc_thread *gt;
    struct echo_server *es;
    struct ev_loop *loop;
    char target[64];
};

struct result {
    int calls;
    int status;
    char message[64];
    char resp[64];
    size_t len;
    struct ev_loop *loop;
    int *pending;
};

static void on_done(void *arg, int status, const char *message, const uint8_t *resp, size_t len)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%s", message);
    r->len = len;
    if (resp && len < sizeof(r->resp)) {
        memcpy(r->resp, resp, len);
        r->resp[len] = '\0';
    }
    if (r->pending && --*r->pending == 0)
        ev_break(r->loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until pending reaches 0 or ms pass. */
static void run_for(struct fixture *fx, int ms)
{
    ev_timer guard;
    ev_timer_init(&guard, guard_cb, ms / 1000.0, 0.0);
    ev_timer_start(fx->loop, &guard);
    ev_run(fx->loop, 0);
    ev_timer_stop(fx->loop, &guard);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx || mp_grpc_thread_new(&fx->gt) != 0)
        return -1;
    fx->es = echo_start();
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(fx->target, sizeof(fx->target), "127.0.0.1:%d", fx->es->port);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mp_grpc_call_thread_exit();
    mp_grpc_call_channels_release(fx->gt);
    echo_stop(fx->es);
    mp_grpc_thread_free(fx->gt);
    ev_loop_destroy(fx->loop);
    free(fx);
    return 0;
}

#define METHOD "/test.Echo/Call"

static void test_answers_on_the_loop(void **state)
{
    struct fixture *fx = *state;
    int pending = 20;
    struct result r[20];
    memset(r, 0, sizeof(r));
    struct mp_grpc_call *calls[20];
    for (int i = 0; i < 20; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "hello-%d", i);
        r[i].loop = fx->loop;
        r[i].pending = &pending;
        assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                            (const uint8_t *)msg, (size_t)n, 5000, on_done, &r[i],
                                            &calls[i]),
                         0);
    }
    run_for(fx, 10000);
    assert_int_equal(pending, 0);
    for (int i = 0; i < 20; i++) {
        char want[16];
        snprintf(want, sizeof(want), "hello-%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, GRPC_STATUS_OK);
        assert_string_equal(r[i].resp, want);
    }
    assert_int_equal(fx->es->served, 20);

    /* a non-OK status carries its message and no response */
    struct result d = {.loop = fx->loop, .pending = &pending};
    pending = 1;
    struct mp_grpc_call *c;
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                        (const uint8_t *)"deny", 4, 5000, on_done, &d, &c),
                     0);
    run_for(fx, 10000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, GRPC_STATUS_PERMISSION_DENIED);
    assert_string_equal(d.message, "nope");
    assert_int_equal(d.len, 0);
}

static void test_deadline_and_unavailable(void **state)
{
    struct fixture *fx = *state;
    int pending = 2;
    struct result slow = {.loop = fx->loop, .pending = &pending};
    struct result dead = {.loop = fx->loop, .pending = &pending};
    struct mp_grpc_call *c1, *c2;
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                        (const uint8_t *)"sleep", 5, 50, on_done, &slow, &c1),
                     0);
    /* port 1 on loopback: connection refused */
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, "127.0.0.1:1", METHOD,
                                        (const uint8_t *)"x", 1, 2000, on_done, &dead, &c2),
                     0);
    run_for(fx, 10000);
    assert_int_equal(pending, 0);
    assert_int_equal(slow.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(dead.status, GRPC_STATUS_UNAVAILABLE);
    usleep(350000); /* let the server finish the slow call before teardown */
}

static void test_cancel_drops_the_answer(void **state)
{
    struct fixture *fx = *state;
    struct result r = {.loop = fx->loop};
    struct mp_grpc_call *c;
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                        (const uint8_t *)"sleep", 5, 5000, on_done, &r, &c),
                     0);
    mp_grpc_call_cancel(c);
    /* a fast one after it proves the loop keeps delivering */
    int pending = 1;
    struct result fast = {.loop = fx->loop, .pending = &pending};
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                        (const uint8_t *)"fast", 4, 5000, on_done, &fast, &c),
                     0);
    run_for(fx, 10000);
    assert_int_equal(fast.calls, 1);
    /* the cancelled call's answer comes (the server sleeps 300 ms) and is dropped */
    run_for(fx, 700);
    assert_int_equal(r.calls, 0);
    assert_int_equal(fx->es->served, 2);

    /* cancel while still queued for the grpc thread, then the thread goes away */
    struct mp_grpc_call *c2;
    assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                        (const uint8_t *)"sleep", 5, 5000, on_done, &r, &c2),
                     0);
    mp_grpc_call_cancel(c2);
    mp_grpc_call_cancel(NULL);
    usleep(400000);
    assert_int_equal(r.calls, 0);
}

static void test_release_and_reuse(void **state)
{
    struct fixture *fx = *state;
    for (int round = 0; round < 2; round++) {
        int pending = 1;
        struct result r = {.loop = fx->loop, .pending = &pending};
        struct mp_grpc_call *c;
        assert_int_equal(mp_grpc_call_start(fx->loop, fx->gt, fx->target, METHOD,
                                            (const uint8_t *)"again", 5, 5000, on_done, &r, &c),
                         0);
        run_for(fx, 5000);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_string_equal(r.resp, "again");
        /* channels go; the next round makes a fresh one */
        mp_grpc_call_channels_release(fx->gt);
    }
    mp_grpc_call_channels_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_on_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_and_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_drops_the_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_and_reuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
