"""Local answers for upstream trouble (503 connect failure, 503 no healthy
host, 504 route timeout), the access log (default and custom formats,
written off the request path) and SIGTERM."""
import re
import time

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy,
                     python_upstream, stop_process)

DEFAULT_LINE = re.compile(
    r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /slow/delay/2000 HTTP/1.1" 504 UT 0 24 \d+ - '
    r'"-" "[^"]*" "[0-9a-f-]{36}" "127.0.0.1:\d+" "127.0.0.1:\d+"$')


def routes(tmp_path):
    return """
              - match: {prefix: "/slow/"}
                route: {cluster: up, timeout: 0.3s, prefix_rewrite: "/"}
              - match: {prefix: "/dead/"}
                route: {cluster: dead}
              - match: {prefix: "/empty/"}
                route: {cluster: empty}
              - match: {prefix: "/"}
                route: {cluster: up}
"""


def access_logs(tmp_path):
    fmt = ("%REQ(:METHOD)% %REQ(X-CUSTOM?USER-AGENT):5% %RESPONSE_CODE% %UPSTREAM_HOST% "
           "%PROTOCOL% %DOWNSTREAM_REMOTE_ADDRESS% %RESP(CONTENT-TYPE)%\\n")
    return """          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: TMP/default.log
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: TMP/custom.log
              log_format:
                text_format_source:
                  inline_string: "FMT"
""".replace("TMP", str(tmp_path)).replace("FMT", fmt)


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    dead_port = free_port()
    with python_upstream(tmp_path) as (up_port, _):
        empty = """
  - name: empty
    connect_timeout: 1s
    type: STATIC
    load_assignment: {cluster_name: empty}
"""
        cfg = bootstrap(listener_yaml(port, routes(tmp_path), extra_hcm=access_logs(tmp_path)),
                        cluster_yaml("up", up_port) + cluster_yaml("dead", dead_port) + empty)
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            yield port, up_port, proxy


def read_lines(path, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lines = open(path).read().splitlines()
            if len(lines) >= n:
                return lines
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError("no %d lines in %s" % (n, path))


def test_connect_failure_503(setup):
    port, _, proxy = setup
    status, headers, body = http_get("http://127.0.0.1:%d/dead/x" % port)
    assert status == 503
    assert b"connection failure" in body
    st = proxy.stats()
    assert st["cluster.dead.upstream_cx_connect_fail"] >= 1
    assert st["cluster.dead.upstream_rq_5xx"] >= 1


def test_no_healthy_upstream(setup):
    port, _, proxy = setup
    status, _, body = http_get("http://127.0.0.1:%d/empty/x" % port)
    assert (status, body) == (503, b"no healthy upstream")
    assert proxy.stats()["cluster.empty.upstream_cx_none_healthy"] >= 1


def test_route_timeout_504_and_default_access_log(setup, tmp_path):
    port, up_port, proxy = setup
    t0 = time.monotonic()
    status, _, body = http_get("http://127.0.0.1:%d/slow/delay/2000" % port)
    assert status == 504 and body == b"upstream request timeout"
    assert time.monotonic() - t0 < 1.5
    assert proxy.stats()["cluster.up.upstream_rq_timeout"] >= 1
    line = read_lines(str(tmp_path / "default.log"), 1)[-1]
    assert DEFAULT_LINE.match(line), line
    assert line.endswith('"127.0.0.1:%d"' % up_port)


def test_custom_access_log_format(setup, tmp_path):
    port, up_port, _ = setup
    http_get("http://127.0.0.1:%d/a" % port, headers={"User-Agent": "abcdefghij"})
    http_get("http://127.0.0.1:%d/b" % port, headers={"X-Custom": "xy", "User-Agent": "zz"})
    # each worker has its own ring: lines of different workers may come in any order
    lines = sorted(read_lines(str(tmp_path / "custom.log"), 2))
    assert re.match(r"^GET abcde 200 127\.0\.0\.1:%d HTTP/1\.1 127\.0\.0\.1:\d+ text/plain$" % up_port,
                    lines[0]), lines
    assert lines[1].startswith("GET xy 200 "), lines


def test_sigterm_exits_cleanly(setup):
    port, _, proxy = setup
    assert http_get("http://127.0.0.1:%d/a" % port)[0] == 200
    assert stop_process(proxy.proc) == 0
