"""Transparent capture end to end, as in a pod: inside a fresh network
namespace, deploy/iptables/meshproxy-iptables applies its rules, meshproxy
runs as UID 1337 with Istio's virtualOutbound (use_original_dst) on 15001,
and an app (curl, as root) dialling a service address is captured, handed
to the service's listener (bind_to_port: false) and routed to the upstream;
the proxy's own upstream connection is not captured again.

Needs root, `ip netns` and iptables with the nat table; skipped otherwise.
The namespace and everything in it are removed at the end."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from helpers import HERE, MESHPROXY_BIN, PYTHON

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(TOP, "deploy", "iptables", "meshproxy-iptables")

HCM = """
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: %s}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"""

BOOT = """
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 15000}}}
static_resources:
  listeners:
  - name: virtualOutbound
    address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
    use_original_dst: true
    filter_chains:
%s
  - name: 0.0.0.0_9080
    address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
    bind_to_port: false
    filter_chains:
%s
  clusters:
  - name: reviews
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: reviews
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18080}}}}]}]
  - name: PassthroughCluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: PassthroughCluster
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18081}}}}]}]
""" % (HCM % ("passthrough", "PassthroughCluster"), HCM % ("outbound_9080", "reviews"))


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, **kw)


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables-restore"):
        pytest.skip("needs root, iproute2 and iptables")
    name = "mptest%d" % os.getpid()
    if run("ip", "netns", "add", name).returncode != 0:
        pytest.skip("cannot create a network namespace")
    try:
        ex = ["ip", "netns", "exec", name]
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "add", "pod0", "type", "veth", "peer", "name", "peer0"],
                    ["ip", "addr", "add", "10.77.0.1/16", "dev", "pod0"],
                    ["ip", "link", "set", "pod0", "up"],
                    ["ip", "link", "set", "peer0", "up"]):
            r = run(*ex, *cmd)
            if r.returncode != 0:
                pytest.skip("cannot set up the namespace: " + r.stderr.strip())
        if run(*ex, "iptables", "-t", "nat", "-L", "-n").returncode != 0:
            pytest.skip("no nat table")
        yield ex
    finally:
        run("ip", "netns", "pids", name)
        for pid in run("ip", "netns", "pids", name).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        run("ip", "netns", "del", name)


def test_app_traffic_is_captured_and_routed(netns, tmp_path):
    ex = netns
    r = run(*ex, SCRIPT)
    assert r.returncode == 0, r.stderr
    assert "MESHPROXY_OUTPUT" in run(*ex, "iptables", "-t", "nat", "-S").stdout
    # uid 1337 cannot enter pytest's private tmp dir: the bootstrap goes to one it can read
    pub = tempfile.mkdtemp(prefix="meshproxy-capture-")
    os.chmod(pub, 0o755)
    boot = os.path.join(pub, "boot.yaml")
    with open(boot, "w") as f:
        f.write(BOOT)
    os.chmod(boot, 0o644)
    as_proxy = ["setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups"]
    if run(*ex, *as_proxy, MESHPROXY_BIN, "--version").returncode != 0:
        shutil.rmtree(pub, ignore_errors=True)
        pytest.skip("uid 1337 cannot run %s (a private parent directory?)" % MESHPROXY_BIN)
    procs = []
    try:
        for port, name in ((18080, "reviews"), (18081, "passthrough")):
            log = str(tmp_path / (name + ".requests"))
            procs.append(subprocess.Popen(
                [*ex, PYTHON, os.path.join(HERE, "upstream_http1.py"), str(port), log],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # the proxy runs as 1337, whose traffic the rules leave alone
        procs.append(subprocess.Popen(
            [*ex, *as_proxy, MESHPROXY_BIN, "-c", boot, "--concurrency", "1"],
            stdout=open(str(tmp_path / "proxy.log"), "w"), stderr=subprocess.STDOUT))
        for url in ("http://127.0.0.1:18080/up", "http://127.0.0.1:18081/up",
                    "http://127.0.0.1:15000/ready"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if run(*ex, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       url).stdout == "200":
                    break
                time.sleep(0.1)
        # the app dials the reviews service address; nothing listens on 9080
        r = run(*ex, "curl", "-s", "--max-time", "5", "http://10.77.0.9:9080/reviews/1")
        assert r.stdout == "ok /reviews/1\n", (r.stdout, r.stderr,
                                                open(str(tmp_path / "proxy.log")).read()[-2000:])
        # any other destination goes through virtualOutbound's passthrough
        r = run(*ex, "curl", "-s", "--max-time", "5", "http://10.77.0.9:7777/other")
        assert r.stdout == "ok /other\n", r.stdout
        stats = run(*ex, "curl", "-s", "http://127.0.0.1:15000/stats").stdout
        assert "http.outbound_9080.downstream_rq_total: 1" in stats
        assert "http.passthrough.downstream_rq_total: 1" in stats
        # cleanup removes every rule the script made
        assert run(*ex, SCRIPT, "--cleanup").returncode == 0
        assert "MESHPROXY" not in run(*ex, "iptables", "-t", "nat", "-S").stdout
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
        shutil.rmtree(pub, ignore_errors=True)
