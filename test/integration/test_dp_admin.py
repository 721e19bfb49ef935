"""The admin endpoint: /, /stats, /stats/prometheus, /clusters, /config_dump,
/ready, /server_info, /listeners, /healthcheck/*, /drain_listeners and
/quitquitquit."""
import json
import socket
import time

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy,
                     python_upstream)

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: up}
"""


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    with python_upstream(tmp_path) as (up_port, _):
        cfg = bootstrap(listener_yaml(port, ROUTES), cluster_yaml("up", up_port))
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            yield port, up_port, proxy


def test_index_stats_and_prometheus(setup):
    port, up_port, proxy = setup
    assert http_get("http://127.0.0.1:%d/x" % port)[0] == 200
    status, _, body = proxy.admin("/")
    assert status == 200 and b"/stats/prometheus" in body and b"/quitquitquit" in body
    st = proxy.stats()
    assert st["http.ingress.downstream_rq_total"] >= 1
    assert st["cluster.up.upstream_rq_2xx"] >= 1
    assert st["cluster.up.upstream_cx_total"] >= 1
    assert "http.ingress.downstream_cx_active" in st
    status, headers, body = proxy.admin("/stats/prometheus")
    assert status == 200
    text = body.decode()
    assert "envoy_cluster_upstream_rq_total" in text or "cluster_upstream_rq_total" in text
    assert 'envoy_cluster_name="up"' in text or "up" in text
    assert proxy.admin("/nope")[0] == 404


def test_clusters_text(setup):
    port, up_port, proxy = setup
    http_get("http://127.0.0.1:%d/x" % port)
    _, _, body = proxy.admin("/clusters")
    lines = body.decode().splitlines()
    host = "up::127.0.0.1:%d" % up_port
    assert "%s::cx_total::1" % host in lines or any(l.startswith(host + "::cx_total::") for l in lines)
    assert any(l.startswith(host + "::cx_active::") for l in lines)
    assert host + "::health_flags::healthy" in lines
    assert "up::default_priority::max_connections::1024" in lines
    assert any(l == host + "::rq_total::1" for l in lines), lines


def test_config_dump_server_info_ready(setup):
    port, _, proxy = setup
    status, _, body = proxy.admin("/config_dump")
    assert status == 200
    dump = json.loads(body)
    types = [c["@type"] for c in dump["configs"]]
    assert "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump" in types
    listeners = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]
    assert listeners["static_listeners"][0]["listener"]["name"] == "listener_0"
    status, _, body = proxy.admin("/server_info")
    info = json.loads(body)
    assert info["state"] == "LIVE"
    assert info["command_line_options"]["concurrency"] == 2
    assert "version" in info
    assert proxy.admin("/ready") == (200, proxy.admin("/ready")[1], b"LIVE\n")
    assert b"listener_0::127.0.0.1:%d" % port in proxy.admin("/listeners")[2]


def test_healthcheck_fail_and_ok(setup):
    _, _, proxy = setup
    assert proxy.admin("/healthcheck/fail")[0] == 405  # needs POST
    assert proxy.admin("/healthcheck/fail", method="POST")[0] == 200
    assert proxy.admin("/ready")[0] == 503
    assert proxy.admin("/healthcheck/ok", method="POST")[0] == 200
    assert proxy.admin("/ready")[0] == 200


def test_drain_listeners_graceful_exits(setup):
    port, _, proxy = setup
    # an idle keep-alive connection does not hold the drain up
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /k HTTP/1.1\r\nHost: a\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    assert proxy.admin("/drain_listeners?graceful", method="POST")[0] == 200
    assert proxy.proc.wait(timeout=10) == 0
    s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_drain_listeners_stops_accepting(setup):
    port, _, proxy = setup
    assert proxy.admin("/drain_listeners", method="POST")[0] == 200
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            refused = True
    assert refused
    assert proxy.admin("/ready")[0] == 503  # DRAINING
    assert proxy.proc.poll() is None  # not graceful: keeps running


def test_quitquitquit(setup):
    _, _, proxy = setup
    assert proxy.admin("/quitquitquit")[0] == 405
    assert proxy.admin("/quitquitquit", method="POST")[0] == 200
    assert proxy.proc.wait(timeout=10) == 0
