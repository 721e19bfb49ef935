"""gRPC through meshproxy (HTTP/2 both sides): unary, bidirectional
streaming with messages flowing before either side ends, a non-OK status,
and trailers kept intact."""
import os
import threading
import queue

import grpc
import pytest

from helpers import (HERE, PYTHON, bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy,
                     start_process, stop_process, wait_port)

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: grpc_up, timeout: 0s}
"""


def ident(b):
    return b


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpc")
    up_port, port = free_port(), free_port()
    up = start_process([PYTHON, os.path.join(HERE, "grpc_upstream.py"), str(up_port)],
                       str(tmp / "grpc_up.out"))
    try:
        wait_port(up_port, proc=up)
        cfg = bootstrap(listener_yaml(port, ROUTES), cluster_yaml("grpc_up", up_port, http2=True))
        with meshproxy(tmp, cfg, [port]) as proxy:
            ch = grpc.insecure_channel("127.0.0.1:%d" % port)
            try:
                yield ch, proxy
            finally:
                ch.close()
    finally:
        stop_process(up)


def test_unary_with_trailers(channel):
    ch, _ = channel
    call = ch.unary_unary("/test.Echo/Unary", request_serializer=ident, response_deserializer=ident)
    resp, c = call.with_call(b"hello grpc", timeout=10)
    assert resp == b"hello grpc"
    assert c.code() == grpc.StatusCode.OK
    assert ("x-trailer", "done") in tuple(c.trailing_metadata())


def test_large_unary(channel):
    ch, _ = channel
    call = ch.unary_unary("/test.Echo/Unary", request_serializer=ident, response_deserializer=ident)
    payload = os.urandom(3 * 1024 * 1024)
    assert call(payload, timeout=20) == payload


def test_non_ok_status_passes_through(channel):
    ch, _ = channel
    call = ch.unary_unary("/test.Echo/Fail", request_serializer=ident, response_deserializer=ident)
    with pytest.raises(grpc.RpcError) as e:
        call(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing"
    assert ("x-trailer", "done") in tuple(e.value.trailing_metadata())


def test_bidi_streaming_is_not_buffered(channel):
    ch, _ = channel
    call = ch.stream_stream("/test.Echo/Bidi", request_serializer=ident, response_deserializer=ident)
    outbox = queue.Queue()

    def requests():
        for _ in range(20):
            item = outbox.get(timeout=10)
            if item is None:
                return
            yield item

    responses = call(requests(), timeout=30)
    # each reply must arrive while the request stream is still open
    for i in range(5):
        msg = b"msg-%d" % i
        outbox.put(msg)
        assert next(responses) == msg
    outbox.put(None)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK
    assert ("x-trailer", "done") in tuple(responses.trailing_metadata())


def test_concurrent_unary_calls(channel):
    ch, proxy = channel
    call = ch.unary_unary("/test.Echo/Unary", request_serializer=ident, response_deserializer=ident)
    errors = []

    def run(n):
        try:
            for i in range(50):
                data = b"%d-%d" % (n, i)
                assert call(data, timeout=10) == data
        except Exception as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert proxy.stats()["cluster.grpc_up.upstream_rq_2xx"] >= 200
