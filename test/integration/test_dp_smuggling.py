"""Request smuggling defenses: malformed framing gets 400 (501 for an
unsupported transfer coding), the connection closes, and the upstream never
sees the request."""
import socket
import time

import pytest

from helpers import bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy, python_upstream, read_requests

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: up}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("smuggling")
    port = free_port()
    with python_upstream(tmp_path) as (up_port, up_log):
        with meshproxy(tmp_path, bootstrap(listener_yaml(port, ROUTES), cluster_yaml("up", up_port)),
                       [port]) as proxy:
            yield port, up_log, proxy


def exchange(port, raw, timeout=5.0):
    """Sends raw bytes, returns everything the proxy answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        return data


CASES = [
    ("cl_and_te", b"POST /smuggle1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("te_and_cl", b"POST /smuggle2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 4\r\n\r\n0\r\n\r\n", 400),
    ("duplicate_cl", b"POST /smuggle3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                     b"Content-Length: 3\r\n\r\nabc", 400),
    ("conflicting_cl", b"POST /smuggle4 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       b"Content-Length: 7\r\n\r\nabcdefg", 400),
    ("cl_list", b"POST /smuggle5 HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    ("bad_chunk_size", b"POST /smuggle6 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nabc\r\n0\r\n\r\n", 400),
    ("te_not_chunked", b"POST /smuggle7 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501),
    ("te_chunked_then_identity", b"POST /smuggle8 HTTP/1.1\r\nHost: a\r\n"
                                 b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501),
    ("space_before_colon", b"POST /smuggle9 HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", 400),
    ("missing_host", b"GET /smuggle10 HTTP/1.1\r\n\r\n", 400),
    ("negative_cl", b"POST /smuggle11 HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
]


@pytest.mark.parametrize("name,raw,status", CASES, ids=[c[0] for c in CASES])
def test_rejected_and_never_forwarded(setup, name, raw, status):
    port, up_log, _ = setup
    answer = exchange(port, raw)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert b"connection: close" in answer.lower()
    # only one response: nothing smuggled behind the bad request was answered
    assert answer.count(b"HTTP/1.1 ") == 1
    time.sleep(0.1)
    paths = [r["path"] for r in read_requests(up_log)]
    assert not any(p.startswith("/smuggle") for p in paths), paths


def test_pipelined_requests_answered_in_order(setup):
    port, up_log, _ = setup
    raw = b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    raw += b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    answer = exchange(port, raw)
    bodies = [seg for seg in answer.split(b"\r\n\r\n") if seg.startswith(b"ok ")]
    order = [b.split(b"\n")[0] for b in bodies]
    assert order == [b"ok /p0", b"ok /p1", b"ok /p2", b"ok /p3", b"ok /p4", b"ok /last"], answer
