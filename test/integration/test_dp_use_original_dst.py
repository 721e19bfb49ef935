"""Istio's outbound capture: iptables REDIRECTs a connection to the
virtualOutbound listener (use_original_dst: true), which hands it to the
listener of the connection's original destination (bind_to_port: false).

The test adds one nat OUTPUT rule for one loopback port (and removes it), so
it needs root and a kernel with the nat table; it is skipped otherwise."""
import os
import shutil
import subprocess

import pytest

from helpers import free_port, http_get, meshproxy, python_upstream, read_requests

HCM = """
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %(prefix)s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: %(cluster)s}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"""

BOOT = """
admin: {address: {socket_address: {address: 127.0.0.1, port_value: {admin}}}}
static_resources:
  listeners:
  - name: virtualOutbound
    address: {socket_address: {address: 127.0.0.1, port_value: %(capture)d}}
    use_original_dst: true
    filter_chains:
%(passthrough)s
  - name: 0.0.0.0_%(svc)d
    address: {socket_address: {address: 0.0.0.0, port_value: %(svc)d}}
    bind_to_port: false
    filter_chains:
%(service)s
  clusters:
  - name: svc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: svc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(up)d}}}}]}]
  - name: other
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: other
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(other)d}}}}]}]
"""


def iptables(*args):
    return subprocess.run(["iptables", "-t", "nat", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def redirect():
    """Redirects locally made connections to 127.0.0.1:svc to the capture port."""
    if os.geteuid() != 0 or not shutil.which("iptables"):
        pytest.skip("needs root and iptables")
    if iptables("-L", "OUTPUT", "-n").returncode != 0:
        pytest.skip("no nat table here")
    capture, svc = free_port(), free_port()
    rule = ["OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(svc), "-j", "REDIRECT",
            "--to-ports", str(capture)]
    r = iptables("-A", *rule)
    if r.returncode != 0:
        pytest.skip("cannot add a nat rule: " + r.stderr.strip())
    try:
        yield capture, svc
    finally:
        iptables("-D", *rule)


def test_virtual_outbound_hands_off_to_the_original_destination_listener(tmp_path, redirect):
    capture, svc = redirect
    with python_upstream(tmp_path, "svc") as (up, up_log), \
            python_upstream(tmp_path, "other") as (other, other_log):
        cfg = BOOT % dict(capture=capture, svc=svc, up=up, other=other,
                          passthrough=HCM % dict(prefix="passthrough", cluster="other"),
                          service=HCM % dict(prefix="svc_%d" % svc, cluster="svc"))
        with meshproxy(tmp_path, cfg, [capture]) as proxy:
            # the app dials the service's address; iptables sends it to the proxy
            status, _, body = http_get("http://127.0.0.1:%d/hello" % svc)
            assert (status, body) == (200, b"ok /hello\n")
            assert [r["path"] for r in read_requests(up_log)] == ["/hello"]
            assert read_requests(other_log) == []
            st = proxy.stats()
            assert st.get("http.svc_%d.downstream_rq_total" % svc, 0) == 1
            assert st.get("http.passthrough.downstream_rq_total", 0) == 0
            # a destination with no listener of its own stays on virtualOutbound
            status, _, body = http_get("http://127.0.0.1:%d/direct" % capture)
            assert status == 200 and read_requests(other_log)[-1]["path"] == "/direct"
