"""meshproxy configured entirely over ADS by meshproxy-xds, in both protocol
variants (state of the world and delta): start-up from an ADS-only bootstrap,
pushes under steady h2load traffic with no failed request, a bad resource
NACKed while the old config keeps serving, and the control plane killed and
restarted under load.

Every process is started here and stopped by pid; every loop is bounded."""
import http.client
import os
import re
import subprocess
import time

import pytest

from helpers import (free_port, http_get, meshproxy, python_upstream, read_requests,
                     start_process, stop_process, wait_port)
from xds_util import XDS_BIN, XdsServer

ROUTE_T = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

BOOTSTRAP = """
node: {{id: sidecar-1, cluster: test}}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds}}}}]
  lds_config: {{ads: {{}}}}
  cds_config: {{ads: {{}}}}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {xds_port}}}}}}}}}]}}]
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin}}}}}}}}
"""


def write(path, text):
    """Replaces a file in one rename, so meshproxy-xds never reads half of it."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def write_resources(d, gen, listen_port, up_ports, route_cluster="svc-0", extra_clusters=(),
                    regex=None, ep_shift=0, stat_prefix="ingress"):
    """The listener, its route (tagged with x-cfg: gen), clusters svc-0/svc-1
    (EDS) plus extra_clusters, and endpoints (svc-N -> up_ports[(N+ep_shift)%2])."""
    clusters = ["svc-0", "svc-1", *extra_clusters]
    write(os.path.join(d, "clusters.yaml"), "".join(
        "- name: %s\n  type: EDS\n  connect_timeout: 1s\n"
        "  eds_cluster_config: {eds_config: {ads: {}}}\n" % c for c in clusters))
    write(os.path.join(d, "endpoints.yaml"), "".join(
        "- cluster_name: %s\n  endpoints:\n  - lb_endpoints:\n    - endpoint: {address: "
        "{socket_address: {address: 127.0.0.1, port_value: %d}}}\n"
        % (c, up_ports[(i + ep_shift) % 2]) for i, c in enumerate(clusters)))
    match = ('{safe_regex: {regex: "%s"}}' % regex) if regex else '{prefix: "/"}'
    write(os.path.join(d, "routes.yaml"), """
- name: local
  virtual_hosts:
  - name: all
    domains: ["*"]
    response_headers_to_add: [{header: {key: x-cfg, value: "%d"}}]
    routes:
    - match: %s
      route: {cluster: %s}
""" % (gen, match, route_cluster))
    write(os.path.join(d, "listeners.yaml"), """
- name: http
  address: {socket_address: {address: 127.0.0.1, port_value: %d}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: %s
        rds: {route_config_name: local, config_source: {ads: {}}}
        http_filters:
        - name: envoy.filters.http.router
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
""" % (listen_port, stat_prefix))


def wait_ready(proxy, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, _ = proxy.admin("/ready")
        if status == 200:
            return
        time.sleep(0.05)
    raise AssertionError("never ready:\n" + proxy.log())


def acked(xds, gen):
    return "type=%s version=%d " % (ROUTE_T, gen) in xds.text()


def wait_ack(xds, gen, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if acked(xds, gen):
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError("route version %d never ACKed:\n%s" % (gen, xds.text()[-3000:]))


def cfg_of(port, path="/"):
    status, headers, _ = http_get("http://127.0.0.1:%d%s" % (port, path), timeout=5)
    return status, headers.get("x-cfg")


@pytest.fixture(params=["sotw", "delta"])
def mesh(request, tmp_path):
    """(mode, listen port, upstream (port, log) pairs, res dir, xds, proxy)."""
    mode = request.param
    res = tmp_path / "res"
    res.mkdir()
    listen = free_port()
    with python_upstream(tmp_path, "a") as up_a, python_upstream(tmp_path, "b") as up_b:
        write_resources(str(res), 1, listen, [up_a[0], up_b[0]])
        xds = XdsServer(str(res), extra=["--sotw-only" if mode == "sotw" else "--delta-only"])
        try:
            boot = BOOTSTRAP.format(api_type="GRPC" if mode == "sotw" else "DELTA_GRPC",
                                    xds_port=xds.port)
            with meshproxy(tmp_path, boot) as proxy:
                wait_ready(proxy)
                wait_port(listen, proc=proxy.proc)
                yield mode, listen, [up_a, up_b], str(res), xds, proxy
        finally:
            xds.stop()


def test_ads_only_startup_serves_traffic(mesh):
    mode, listen, ups, res, xds, proxy = mesh
    status, cfg = cfg_of(listen, "/hello")
    assert (status, cfg) == (200, "1")
    assert any(r["path"] == "/hello" for r in read_requests(ups[0][1]))
    # the dynamic resources show in /config_dump as Envoy shows them
    _, _, body = proxy.admin("/config_dump")
    dump = body.decode()
    assert '"dynamic_active_clusters"' in dump and '"name":"svc-0"' in dump
    assert '"dynamic_listeners"' in dump and '"active_state"' in dump
    assert '"dynamic_route_configs"' in dump and '"name":"local"' in dump
    # the node was sent as Envoy sends it
    assert "node=sidecar-1" in xds.text() and "user_agent=meshproxy" in xds.text()
    expected = "DeltaAggregatedResources" if mode == "delta" else "StreamAggregatedResources"
    assert expected in xds.text()


def test_bad_resource_nacked_old_config_serves(mesh):
    mode, listen, ups, res, xds, proxy = mesh
    ports = [ups[0][0], ups[1][0]]
    write_resources(res, 2, listen, ports, regex="(unclosed")
    xds.wait_log("NACK")
    nack = [l for l in xds.text().splitlines() if "NACK" in l][-1]
    assert 'RouteConfiguration \\"local\\"' in nack or 'RouteConfiguration "local"' in nack, nack
    assert "regex" in nack, nack
    # the previous configuration keeps serving
    for _ in range(20):
        assert cfg_of(listen) == (200, "1")
    # the next good push is ACKed and in force
    write_resources(res, 3, listen, ports, route_cluster="svc-1")
    wait_ack(xds, 3)
    assert cfg_of(listen) == (200, "3")
    assert proxy.proc.poll() is None


def h2load_start(tmp_path, port, seconds, name):
    out = open(str(tmp_path / name), "w")
    proc = subprocess.Popen(
        ["h2load", "-D", str(seconds), "-c", "4", "--rps", "50", "-m", "1", "-t", "1",
         "http://127.0.0.1:%d/load" % port], stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True)
    out.close()
    return proc


def h2load_result(tmp_path, proc, name, timeout):
    try:
        proc.wait(timeout=timeout)
    finally:
        stop_process(proc)
    text = open(str(tmp_path / name)).read()
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    assert m and codes, text
    return [int(x) for x in m.groups()], [int(x) for x in codes.groups()], text


def test_100_pushes_under_load_no_failures(mesh, tmp_path):
    mode, listen, ups, res, xds, proxy = mesh
    ports = [ups[0][0], ups[1][0]]
    load = h2load_start(tmp_path, listen, 40, "h2load.out")
    lags = []
    try:
        time.sleep(0.5)
        for i in range(100):
            gen = i + 2
            extra = ["extra-%d" % (gen % 3)] if gen % 2 else []   # clusters added and removed
            write_resources(res, gen, listen, ports, route_cluster="svc-%d" % (gen % 2),
                            extra_clusters=extra, ep_shift=gen // 3)  # endpoints move
            t_ack = wait_ack(xds, gen)
            # traffic follows the change as soon as it is ACKed
            for _ in range(100):
                status, cfg = cfg_of(listen)
                assert status == 200
                if cfg == str(gen):
                    break
                time.sleep(0.001)
            lags.append(time.monotonic() - t_ack)
            assert cfg == str(gen), "push %d not in force after its ACK" % gen
            assert load.poll() is None, "h2load ended before the pushes did"
    finally:
        (total, done, ok, failed, errored), (c2, c3, c4, c5), text = h2load_result(
            tmp_path, load, "h2load.out", 60)
    assert total > 1000 and failed == 0 and errored == 0 and c4 == 0 and c5 == 0, text
    assert c2 == done, text
    # seen in force by the first request after each ACK (bounded by 100 ms)
    assert max(lags) < 0.1, lags
    assert proxy.proc.poll() is None


def test_control_plane_restart_under_load(mesh, tmp_path):
    mode, listen, ups, res, xds, proxy = mesh
    ports = [ups[0][0], ups[1][0]]
    load = h2load_start(tmp_path, listen, 8, "h2load-restart.out")
    try:
        time.sleep(1)
        xds.proc.kill()
        xds.proc.wait(timeout=5)
        xds.log.close()
        # the last configuration keeps serving while the control plane is away
        for _ in range(10):
            assert cfg_of(listen) == (200, "1")
            time.sleep(0.1)
        write_resources(res, 2, listen, ports, route_cluster="svc-1")
        xds2 = XdsServer(res, extra=["--sotw-only" if mode == "sotw" else "--delta-only"],
                         port=xds.port)
        try:
            # reconnect with backoff, then resync (the new server's versions
            # restart at 1: the proxy goes by content, not by version)
            deadline = time.monotonic() + 40
            while cfg_of(listen) != (200, "2") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert cfg_of(listen) == (200, "2"), proxy.log()[-3000:]
            assert "ACK node=sidecar-1" in xds2.text()
        finally:
            xds2.stop()
    finally:
        (total, done, ok, failed, errored), (c2, c3, c4, c5), text = h2load_result(
            tmp_path, load, "h2load-restart.out", 60)
    assert total > 100 and failed == 0 and errored == 0 and c5 == 0 and c2 == done, text
    assert "xDS stream lost" in proxy.log()


def test_listener_update_drains_old_connections(mesh):
    mode, listen, ups, res, xds, proxy = mesh
    ports = [ups[0][0], ups[1][0]]
    conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
    try:
        conn.request("GET", "/one")
        r = conn.getresponse()
        r.read()
        assert r.status == 200 and r.getheader("connection", "").lower() != "close"
        write_resources(res, 2, listen, ports, stat_prefix="ingress2")
        xds.wait_log("type=type.googleapis.com/envoy.config.listener.v3.Listener version=2 ")
        # the connection of the old listener finishes its next response and closes
        conn.request("GET", "/two")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        assert r.getheader("connection", "").lower() == "close"
    finally:
        conn.close()
    # new connections are served by the new listener
    assert cfg_of(listen) == (200, "2")
    assert proxy.stats().get("http.ingress2.downstream_rq_total", 0) >= 1


def test_ads_over_unix_socket(tmp_path):
    """Istio's agent serves xDS on a Unix socket: the bootstrap's xds cluster
    has a pipe address."""
    res = tmp_path / "res"
    res.mkdir()
    sock = str(tmp_path / "xds.sock")
    listen = free_port()
    with python_upstream(tmp_path, "a") as up_a:
        write_resources(str(res), 1, listen, [up_a[0], up_a[0]])
        log = str(tmp_path / "xds-unix.log")
        xds = start_process([XDS_BIN, "--dir", str(res), "--listen", "unix:" + sock], log)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock) and time.monotonic() < deadline:
                time.sleep(0.05)
            boot = BOOTSTRAP.format(api_type="GRPC", xds_port=0).replace(
                "{socket_address: {address: 127.0.0.1, port_value: 0}}", "{pipe: {path: %s}}" % sock)
            with meshproxy(tmp_path, boot) as proxy:
                wait_ready(proxy)
                wait_port(listen, proc=proxy.proc)
                assert cfg_of(listen) == (200, "1")
        finally:
            stop_process(xds)


PER_TYPE_BOOTSTRAP = """
node: {{id: sidecar-2, cluster: test}}
dynamic_resources:
  lds_config:
    resource_api_version: V3
    api_config_source:
      api_type: {api_type}
      transport_api_version: V3
      grpc_services: [{{envoy_grpc: {{cluster_name: xds}}}}]
  cds_config:
    resource_api_version: V3
    api_config_source:
      api_type: {api_type}
      transport_api_version: V3
      grpc_services: [{{envoy_grpc: {{cluster_name: xds}}}}]
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {xds_port}}}}}}}}}]}}]
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin}}}}}}}}
"""


@pytest.mark.parametrize("api_type", ["GRPC", "DELTA_GRPC"])
def test_per_type_streams_without_ads(tmp_path, api_type):
    """lds_config/cds_config with their own api_config_source: four
    per-type streams (CDS, EDS, LDS, RDS), EDS and RDS names asked for as
    clusters and listeners arrive."""
    res = tmp_path / "res"
    res.mkdir()
    listen = free_port()
    with python_upstream(tmp_path, "a") as up_a:
        write_resources(str(res), 1, listen, [up_a[0], up_a[0]])
        xds = XdsServer(str(res))
        try:
            boot = PER_TYPE_BOOTSTRAP.format(api_type=api_type, xds_port=xds.port)
            with meshproxy(tmp_path, boot) as proxy:
                wait_ready(proxy)
                wait_port(listen, proc=proxy.proc)
                assert cfg_of(listen) == (200, "1")
                log = xds.text()
                prefix = "Delta" if api_type == "DELTA_GRPC" else "Stream"
                for m in ("ClusterDiscoveryService/%sClusters", "EndpointDiscoveryService/%sEndpoints",
                          "ListenerDiscoveryService/%sListeners", "RouteDiscoveryService/%sRoutes"):
                    assert m % prefix in log, m
                assert "AggregatedDiscoveryService" not in log
                # a route change on the RDS stream is followed
                write_resources(str(res), 2, listen, [up_a[0], up_a[0]], route_cluster="svc-1")
                deadline = time.monotonic() + 10
                while cfg_of(listen) != (200, "2") and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert cfg_of(listen) == (200, "2")
        finally:
            xds.stop()
