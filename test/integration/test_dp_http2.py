"""Downstream HTTP/2 specifics: SETTINGS from http2_protocol_options, the
header list size limit, multiplexing, GOAWAY when draining, and weighted
clusters."""
import re
import subprocess
import threading
import time

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy, python_upstream,
                     read_requests)

ROUTES = """
              - match: {prefix: "/split"}
                route:
                  weighted_clusters:
                    clusters:
                    - {name: a, weight: 30}
                    - {name: b, weight: 70}
              - match: {prefix: "/"}
                route: {cluster: a}
"""

H2OPTS = """          max_request_headers_kb: 8
          http2_protocol_options:
            max_concurrent_streams: 7
            initial_stream_window_size: 131072
            initial_connection_window_size: 1048576"""


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    with python_upstream(tmp_path, "a") as (a_port, a_log), python_upstream(tmp_path, "b") as (b_port, b_log):
        cfg = bootstrap(listener_yaml(port, ROUTES, codec="HTTP2", extra_hcm=H2OPTS),
                        cluster_yaml("a", a_port) + cluster_yaml("b", b_port))
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            yield port, a_log, b_log, proxy


def nghttp(*args, timeout=20):
    return subprocess.run(["nghttp", *args], capture_output=True, text=True, timeout=timeout)


def test_settings_from_config(setup):
    port, _, _, _ = setup
    out = nghttp("-v", "http://127.0.0.1:%d/x" % port).stdout
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7]" in out
    assert "[SETTINGS_INITIAL_WINDOW_SIZE(0x04):131072]" in out
    assert "[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):8192]" in out
    # the connection window grows to 1 MiB
    m = re.search(r"recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\s+\(window_size_increment=(\d+)\)", out)
    assert m and int(m.group(1)) == 1048576 - 65535
    assert ":status: 200" in out


def test_multiplexed_streams(setup):
    port, _, _, _ = setup
    # within max_concurrent_streams (7): all run at once on one connection
    urls = ["http://127.0.0.1:%d/m%d" % (port, i) for i in range(6)]
    out = nghttp("-ns", *urls).stdout
    assert len(re.findall(r" 200 ", out)) == 6, out


def test_oversized_headers_refused(setup):
    port, a_log, _, _ = setup
    r = nghttp("-v", "-H", "x-big: " + "v" * 10000, "http://127.0.0.1:%d/big-headers" % port)
    assert "RST_STREAM" in r.stdout or "GOAWAY" in r.stdout or r.returncode != 0
    assert not any(q["path"] == "/big-headers" for q in read_requests(a_log))


def test_goaway_on_drain(setup):
    port, _, _, proxy = setup
    result = {}

    def slow():
        result["out"] = nghttp("-v", "http://127.0.0.1:%d/delay/800" % port).stdout

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    assert proxy.admin("/drain_listeners?graceful", method="POST")[0] == 200
    t.join(timeout=20)
    out = result["out"]
    assert "recv GOAWAY frame" in out
    assert ":status: 200" in out  # the stream in flight finished
    assert proxy.proc.wait(timeout=10) == 0


def test_weighted_clusters(setup):
    port, a_log, b_log, _ = setup
    urls = ["http://127.0.0.1:%d/split%d" % (port, i) for i in range(200)]
    for i in range(0, 200, 5):
        nghttp("-n", *urls[i:i + 5])
    a = sum(1 for r in read_requests(a_log) if r["path"].startswith("/split"))
    b = sum(1 for r in read_requests(b_log) if r["path"].startswith("/split"))
    assert a + b == 200
    assert 20 <= a <= 100, (a, b)  # 30% of 200 = 60
