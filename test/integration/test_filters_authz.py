"""Authorization and fault injection, end to end with real processes:
curl / sockets -> meshproxy (static bootstrap) -> python upstream.

  - envoy.filters.http.rbac: ALLOW by method + url_path and by header,
    403 "RBAC: access denied", shadow rules counted apart, stats as Envoy;
  - envoy.filters.http.fault: header-controlled abort and delay, an Istio-style
    per-route HTTPFault (typed_per_filter_config), gRPC abort, max_active_faults;
  - envoy.filters.network.rbac: a DENY by source_ip closes the connection
    before tcp_proxy connects anywhere; an unmatched policy lets bytes through;
  - mTLS: authenticated.principal_name against the client's SPIFFE URI SAN.
"""
import socket
import subprocess
import threading
import time

import pytest

from helpers import (MESHPROXY_BIN, bootstrap, cluster_yaml, free_port, meshproxy, python_upstream,
                     read_requests, wait_stat)
from pki import make_ca, make_leaf

SPIFFE = "spiffe://cluster.local/ns/default/sa/"

HCM = """
  - name: %(name)s
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - %(transport)sfilters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %(prefix)s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
%(routes)s
          http_filters:
%(filters)s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""

RBAC_FILTERS = """
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  get-public:
                    permissions:
                    - and_rules:
                        rules:
                        - header: {name: ":method", string_match: {exact: GET}}
                        - url_path: {path: {prefix: /public/}}
                    principals: [{any: true}]
                  admins:
                    permissions: [{any: true}]
                    principals:
                    - header: {name: x-admin, present_match: true}
                  xff-clients:
                    permissions: [{any: true}]
                    principals:
                    - remote_ip: {address_prefix: 10.9.0.0, prefix_len: 16}
              shadow_rules:
                action: DENY
                policies:
                  no-secrets:
                    permissions: [{url_path: {path: {prefix: /public/secret}}}]
                    principals: [{any: true}]
              shadow_rules_stat_prefix: shadow_"""

FAULT_FILTERS = """
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {header_abort: {}, percentage: {numerator: 100}}
              delay: {header_delay: {}, percentage: {numerator: 100}}
              max_active_faults: 1"""

FAULT_ROUTES = """              - match: {prefix: "/istio-abort"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {http_status: 418, percentage: {numerator: 100}}
              - match: {prefix: "/istio-delay"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    delay: {fixed_delay: 0.3s, percentage: {numerator: 100}}
              - match: {prefix: "/"}
                route: {cluster: up}"""

TCP = """
  - name: %(name)s
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
          stat_prefix: %(prefix)s
          rules:
            action: DENY
            policies:
              deny-src:
                permissions: [{any: true}]
                principals: [{source_ip: {address_prefix: %(deny)s, prefix_len: %(len)d}}]
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %(name)s
          cluster: up
"""

MTLS_TRANSPORT = """transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: %(d)s/server.pem}
              private_key: {filename: %(d)s/server.key}
            validation_context:
              trusted_ca: {filename: %(d)s/ca.pem}
      """

MTLS_FILTERS = """
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  ns[default]-policy[web-only]-rule[0]:
                    permissions: [{any: true}]
                    principals:
                    - authenticated:
                        principal_name: {exact: "%sweb"}""" % SPIFFE

ROUTE_ALL = """              - match: {prefix: "/"}
                route: {cluster: up}"""

RBAC_ROUTES = """              - match: {prefix: "/open/"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.rbac:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
              - match: {prefix: "/strict/"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.rbac:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
                    rbac:
                      rules:
                        action: DENY
                        policies:
                          no-get:
                            permissions: [{header: {name: ":method", string_match: {exact: GET}}}]
                            principals: [{any: true}]
""" + ROUTE_ALL


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("authz_pki")
    make_ca(d, "ca", cn="mesh-ca")
    make_leaf(d, "server", "DNS:localhost,IP:127.0.0.1", serial=2)
    make_leaf(d, "web", "URI:%sweb" % SPIFFE, serial=3)
    make_leaf(d, "api", "URI:%sapi,DNS:api.default.svc" % SPIFFE, serial=4)
    return d


@pytest.fixture(scope="module")
def env(tmp_path_factory, certs):
    tmp = tmp_path_factory.mktemp("authz")
    ports = {k: free_port() for k in ("rbac", "fault", "tcp_deny", "tcp_ok", "mtls")}
    with python_upstream(tmp) as (up_port, up_log):
        listeners = "".join([
            HCM % dict(name="rbac", port=ports["rbac"], transport="", prefix="authz",
                       routes=RBAC_ROUTES, filters=RBAC_FILTERS),
            HCM % dict(name="fault", port=ports["fault"], transport="", prefix="faults",
                       routes=FAULT_ROUTES, filters=FAULT_FILTERS),
            TCP % dict(name="tcp_deny", port=ports["tcp_deny"], prefix="tcpdeny.",
                       deny="127.0.0.0", len=8),
            TCP % dict(name="tcp_ok", port=ports["tcp_ok"], prefix="tcpok", deny="10.0.0.0",
                       len=8),
            HCM % dict(name="mtls", port=ports["mtls"], transport=MTLS_TRANSPORT % dict(d=certs),
                       prefix="mtls", routes=ROUTE_ALL, filters=MTLS_FILTERS),
        ])
        cfg = bootstrap(listeners, cluster_yaml("up", up_port))
        with meshproxy(tmp, cfg, list(ports.values())) as proxy:
            yield ports, up_log, proxy


def curl(*args, timeout=10):
    """Returns (http code, body without its final newline, seconds) of one curl request."""
    r = subprocess.run(["curl", "-s", "--max-time", str(timeout), "-w", "\n%{http_code} %{time_total}",
                        *args], capture_output=True, text=True, timeout=timeout + 10)
    body, _, tail = r.stdout.rpartition("\n")
    code, secs = tail.split()
    return int(code), body[:-1] if body.endswith("\n") else body, float(secs)


# ---- HTTP RBAC ----------------------------------------------------------------

def test_rbac_allow_and_deny_by_method_path_and_header(env):
    ports, up_log, proxy = env
    base = "http://127.0.0.1:%d" % ports["rbac"]
    before = proxy.stats()
    code, body, _ = curl(base + "/public/index.html?x=1")
    assert code == 200 and body == "ok /public/index.html?x=1"
    code, body, _ = curl(base + "/private")
    assert code == 403 and body == "RBAC: access denied"
    code, body, _ = curl("-X", "POST", "-d", "x", base + "/public/form")
    assert code == 403
    code, body, _ = curl("-H", "x-admin: yes", base + "/private")
    assert code == 200 and body == "ok /private"
    # a denied request never reaches the upstream
    assert "/private" in [r["path"] for r in read_requests(up_log)]
    assert sum(1 for r in read_requests(up_log) if r["path"] == "/public/form") == 0
    st = wait_stat(proxy, "http.authz.rbac.denied", before.get("http.authz.rbac.denied", 0) + 2)
    assert st["http.authz.rbac.allowed"] - before.get("http.authz.rbac.allowed", 0) == 2
    assert st["http.authz.rbac.denied"] - before.get("http.authz.rbac.denied", 0) == 2
    assert st["http.authz.downstream_rq_4xx"] >= 2


def test_rbac_remote_ip_from_x_forwarded_for_and_http2(env):
    ports, _, _ = env
    base = "http://127.0.0.1:%d" % ports["rbac"]
    # use_remote_address is false: the remote address is the last x-forwarded-for entry
    code, _, _ = curl("-H", "x-forwarded-for: 10.9.1.1", base + "/private")
    assert code == 200
    code, _, _ = curl("-H", "x-forwarded-for: 10.9.1.1, 192.0.2.7", base + "/private")
    assert code == 403
    code, body, _ = curl("--http2-prior-knowledge", base + "/private")
    assert code == 403 and body == "RBAC: access denied"
    code, _, _ = curl("--http2-prior-knowledge", base + "/public/h2")
    assert code == 200


def test_rbac_per_route_override(env):
    ports, _, _ = env
    base = "http://127.0.0.1:%d" % ports["rbac"]
    code, _, _ = curl(base + "/open/x")  # an empty RBACPerRoute turns the filter off
    assert code == 200
    code, _, _ = curl(base + "/strict/x")  # its own rules replace the filter's
    assert code == 403
    code, _, _ = curl("-X", "POST", "-d", "x", base + "/strict/x")
    assert code == 200


def test_rbac_shadow_rules_only_count(env):
    ports, _, proxy = env
    base = "http://127.0.0.1:%d" % ports["rbac"]
    before = proxy.stats()
    code, _, _ = curl(base + "/public/secret")  # shadow DENY matches, enforced ALLOW lets it in
    assert code == 200
    code, _, _ = curl(base + "/public/ok")
    assert code == 200
    name = "http.authz.rbac.shadow_shadow_denied"
    st = wait_stat(proxy, name, before.get(name, 0) + 1)
    assert st[name] - before.get(name, 0) == 1
    name = "http.authz.rbac.shadow_shadow_allowed"
    assert st[name] - before.get(name, 0) == 1


# ---- fault --------------------------------------------------------------------

def test_fault_header_abort(env):
    ports, up_log, proxy = env
    base = "http://127.0.0.1:%d" % ports["fault"]
    before = proxy.stats().get("http.faults.fault.aborts_injected", 0)
    n_up = len(read_requests(up_log))
    code, body, _ = curl("-H", "x-envoy-fault-abort-request: 503", base + "/a")
    assert code == 503 and body == "fault filter abort"
    assert len(read_requests(up_log)) == n_up  # the upstream never saw it
    # the percentage header can turn it off
    code, body, _ = curl("-H", "x-envoy-fault-abort-request: 503",
                         "-H", "x-envoy-fault-abort-request-percentage: 0", base + "/b")
    assert code == 200 and body == "ok /b"
    code, _, _ = curl(base + "/c")  # no header: no fault
    assert code == 200
    st = wait_stat(proxy, "http.faults.fault.aborts_injected", before + 1)
    assert st["http.faults.fault.aborts_injected"] == before + 1


def test_fault_header_delay_is_measurable_and_bounded(env):
    ports, _, proxy = env
    base = "http://127.0.0.1:%d" % ports["fault"]
    before = proxy.stats().get("http.faults.fault.delays_injected", 0)
    code, body, secs = curl("-H", "x-envoy-fault-delay-request: 400", base + "/slow")
    assert code == 200 and body == "ok /slow"
    assert 0.38 <= secs < 3.0
    code, _, secs = curl(base + "/fast")
    assert code == 200 and secs < 0.35
    st = wait_stat(proxy, "http.faults.fault.delays_injected", before + 1)
    assert st["http.faults.fault.delays_injected"] == before + 1
    # a request body waits with the request and goes on after the delay
    body = b"b" * 200000
    r = subprocess.run(["curl", "-s", "--max-time", "10", "-H", "x-envoy-fault-delay-request: 150",
                        "--data-binary", "@-", base + "/echo"], input=body, capture_output=True,
                       timeout=20)
    assert r.stdout == body
    # the delay, then the abort decision
    code, body, secs = curl("-H", "x-envoy-fault-delay-request: 200",
                            "-H", "x-envoy-fault-abort-request: 429", base + "/both")
    assert code == 429 and body == "fault filter abort" and secs >= 0.18


def test_fault_per_route_as_istio_writes_it(env):
    ports, up_log, _ = env
    base = "http://127.0.0.1:%d" % ports["fault"]
    code, body, _ = curl(base + "/istio-abort/x")
    assert code == 418 and body == "fault filter abort"
    # the route's config replaces the filter's: header faults do not apply there
    code, body, secs = curl("-H", "x-envoy-fault-abort-request: 500", base + "/istio-delay/y")
    assert code == 200 and body == "ok /istio-delay/y" and 0.28 <= secs < 3.0


def test_fault_grpc_abort_is_trailers_only(env):
    ports, _, _ = env
    r = subprocess.run(["curl", "-s", "-i", "--max-time", "10", "--http2-prior-knowledge",
                        "-H", "content-type: application/grpc", "-H", "te: trailers",
                        "-H", "x-envoy-fault-abort-grpc-request: 14", "-d", "",
                        "http://127.0.0.1:%d/pkg.Svc/Call" % ports["fault"]],
                       capture_output=True, text=True, timeout=20)
    head = r.stdout.lower()
    assert head.startswith("http/2 200")
    assert "grpc-status: 14" in head
    assert "grpc-message: fault filter abort" in head


def test_fault_max_active_faults(env):
    ports, _, proxy = env
    base = "http://127.0.0.1:%d" % ports["fault"]
    before = proxy.stats().get("http.faults.fault.faults_overflow", 0)
    slow = {}

    def first():
        slow["r"] = curl("-H", "x-envoy-fault-delay-request: 1500", base + "/held")

    t = threading.Thread(target=first)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while proxy.stats().get("http.faults.fault.active_faults", 0) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # max_active_faults 1: a second fault is refused, the request goes through at once
        code, _, secs = curl("-H", "x-envoy-fault-delay-request: 1500", base + "/second")
        assert code == 200 and secs < 1.0
    finally:
        t.join(timeout=15)
    assert slow["r"][0] == 200 and slow["r"][2] >= 1.4
    st = wait_stat(proxy, "http.faults.fault.faults_overflow", before + 1)
    assert st["http.faults.fault.faults_overflow"] == before + 1
    deadline = time.monotonic() + 5
    while proxy.stats().get("http.faults.fault.active_faults", 0) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_fault_client_gone_during_delay(env):
    ports, up_log, proxy = env
    base = "http://127.0.0.1:%d" % ports["fault"]
    n_up = len(read_requests(up_log))
    for extra in ([], ["--http2-prior-knowledge"]):
        r = subprocess.run(["curl", "-s", "--max-time", "0.3", *extra, "-H",
                            "x-envoy-fault-delay-request: 2000", base + "/gone"],
                           capture_output=True, timeout=20)
        assert r.returncode == 28  # curl timed out: the client went away mid-delay
    # the timer went with the stream: nothing reached the upstream, no fault stays active
    deadline = time.monotonic() + 5
    while proxy.stats().get("http.faults.fault.active_faults", 0) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(2.0)
    assert len(read_requests(up_log)) == n_up
    code, _, _ = curl(base + "/after")
    assert code == 200


# ---- network RBAC -------------------------------------------------------------

def raw_exchange(port, payload, timeout=5.0):
    """Sends payload and reads until the peer closes; returns the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        try:
            s.sendall(payload)
        except OSError:
            return b""
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data


def test_network_rbac_deny_by_source_ip_closes(env):
    ports, up_log, proxy = env
    n_up = len(read_requests(up_log))
    req = b"GET /tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert raw_exchange(ports["tcp_deny"], req) == b""
    assert len(read_requests(up_log)) == n_up
    st = wait_stat(proxy, "tcpdeny.rbac.denied", 1)
    assert st["tcpdeny.rbac.denied"] >= 1
    assert st.get("tcpdeny.rbac.allowed", 0) == 0
    # a policy that does not match this peer lets the bytes through
    out = raw_exchange(ports["tcp_ok"], req)
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok /tcp\n")
    st = wait_stat(proxy, "tcpok.rbac.allowed", 1)
    assert st["tcpok.rbac.allowed"] >= 1


# ---- mTLS principal -----------------------------------------------------------

def test_mtls_principal_from_spiffe_uri_san(env, certs):
    ports, _, proxy = env
    url = "https://localhost:%d/who" % ports["mtls"]
    common = ["--cacert", str(certs / "ca.pem"), "--resolve",
              "localhost:%d:127.0.0.1" % ports["mtls"]]
    code, body, _ = curl(*common, "--cert", str(certs / "web.pem"), "--key", str(certs / "web.key"),
                         url)
    assert code == 200 and body == "ok /who"
    code, body, _ = curl(*common, "--cert", str(certs / "api.pem"), "--key", str(certs / "api.key"),
                         url)
    assert code == 403 and body == "RBAC: access denied"
    st = wait_stat(proxy, "http.mtls.rbac.denied", 1)
    assert st["http.mtls.rbac.allowed"] >= 1 and st["http.mtls.rbac.denied"] >= 1


# ---- configuration errors name the field ----------------------------------------

BAD = [
    (HCM % dict(name="l", port=1, transport="", prefix="p", routes=ROUTE_ALL, filters="""
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  p:
                    permissions: [{any: true}]
                    principals: [{remote_ip: {address_prefix: 10.0.0.0, prefix_len: 33}}]"""),
     'http_filters[0].typed_config.rules.policies["p"].principals[0].remote_ip.prefix_len: '
     '33 is more than 32 for an IPv4 address'),
    (HCM % dict(name="l", port=1, transport="", prefix="p", routes=ROUTE_ALL, filters="""
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {http_status: 700, percentage: {numerator: 100}}"""),
     "http_filters[0].typed_config.abort.http_status: 700 is not in [200, 600)"),
    ((TCP % dict(name="t", port=1, prefix="tcp.", deny="10.0.0.0", len=8)).replace(
        "[{source_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]",
        "[{metadata: {filter: istio_authn, path: [{key: request.auth.principal}], "
        "value: {string_match: {exact: a}}}}]"),
     'filters[0].typed_config.rules.policies["deny-src"].principals[0].metadata: '
     "metadata matchers are not supported by meshproxy"),
]


@pytest.mark.parametrize("listener,want", BAD, ids=["rbac_cidr", "fault_status", "net_metadata"])
def test_validate_rejects_with_field_path(tmp_path, listener, want):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bootstrap(listener, cluster_yaml("up", 1)).replace("{admin}", "0"))
    r = subprocess.run([MESHPROXY_BIN, "--mode", "validate", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert want in r.stderr


# ---- network RBAC by TLS principal (Istio's TCP AuthorizationPolicy) ------------

TCP_MTLS = """
  - name: tcp_mtls
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - %(transport)sfilters:
      - name: envoy.filters.network.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
          stat_prefix: tcp.
          rules:
            action: ALLOW
            policies:
              ns[default]-policy[web-only]-rule[0]:
                permissions: [{any: true}]
                principals: [{authenticated: {principal_name: {exact: "%(spiffe)sweb"}}}]
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_mtls
          cluster: up
"""


def test_network_rbac_by_tls_principal(tmp_path, certs):
    port = free_port()
    with python_upstream(tmp_path) as (up_port, up_log):
        listener = TCP_MTLS % dict(port=port, transport=MTLS_TRANSPORT % dict(d=certs),
                                   spiffe=SPIFFE)
        with meshproxy(tmp_path, bootstrap(listener, cluster_yaml("up", up_port)), [port]) as proxy:
            url = "https://localhost:%d/tcp" % port
            common = ["--cacert", str(certs / "ca.pem"), "--resolve", "localhost:%d:127.0.0.1" % port]
            code, body, _ = curl(*common, "--cert", str(certs / "web.pem"), "--key",
                                 str(certs / "web.key"), url)
            assert (code, body) == (200, "ok /tcp")
            n_up = len(read_requests(up_log))
            code, _, _ = curl(*common, "--cert", str(certs / "api.pem"), "--key",
                              str(certs / "api.key"), url)
            assert code == 0  # closed after the handshake, before any byte went upstream
            assert len(read_requests(up_log)) == n_up
            st = wait_stat(proxy, "tcp.rbac.denied", 1)
            assert st["tcp.rbac.allowed"] >= 1 and st["tcp.rbac.denied"] >= 1
