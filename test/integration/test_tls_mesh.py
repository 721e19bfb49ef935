"""Mesh mTLS between two meshproxy sidecars, with certificates made here by
the openssl CLI (a CA, SPIFFE workload certificates for sa/web and sa/api, an
expired one, one with an identity nobody admits, one from a foreign CA).

    curl -> A (plaintext listener) -> mTLS (h2 or http/1.1 by ALPN) -> B (TLS
    listener, client certificate required, SAN sa/web) -> python upstream

and the same with tcp_proxy on both sides. B's access log shows the caller's
%DOWNSTREAM_PEER_URI_SAN% and %REQUESTED_SERVER_NAME%, and the upstream gets
B's x-forwarded-client-cert element. Refusals (wrong CA, expired, wrong SAN,
no certificate) are checked in Envoy's ssl.* counters through /stats on the
side that refused. Also: ALPN seen by openssl s_client and curl,
tls_inspector picking TLS/SNI/plaintext chains on one port, session
resumption (downstream with s_client, upstream between the sidecars), and the
BoringSSL-only link.
"""
import hashlib
import os
import re
import subprocess
import time

import pytest

from helpers import (MESHPROXY_BIN, bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy,
                     python_upstream, read_requests, wait_stat)
from pki import EC, make_ca, make_leaf, openssl

SPIFFE = "spiffe://cluster.local/ns/default/sa/"

CA_CNF = """[ca]
default_ca = mesh
[mesh]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
"""


def cert_sha256(path):
    """Hex SHA-256 of a PEM certificate's DER form (XFCC's Hash)."""
    der = subprocess.run(["openssl", "x509", "-in", str(path), "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_leaf(d, "web", "URI:%sweb" % SPIFFE, serial=2)
    make_leaf(d, "api", "URI:%sapi,DNS:api.default.svc" % SPIFFE, serial=3)
    make_leaf(d, "evil", "URI:%sevil" % SPIFFE, serial=4)
    make_leaf(d, "foreign", "URI:%sweb" % SPIFFE, ca="otherca", serial=5)
    make_leaf(d, "site", "DNS:a.example,DNS:b.example,DNS:localhost", serial=6)
    # expired: sa/web's identity, from the right CA, valid for one day in 2020
    (d / "newcerts").mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("10\n")
    (d / "ca.cnf").write_text(CA_CNF)
    openssl(d, "req", *EC, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired")
    openssl(d, "ca", "-batch", "-notext", "-config", "ca.cnf", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-extfile", "web.ext", "-in", "expired.csr",
            "-out", "expired.pem")
    return d


def curl(*args, timeout=20):
    """Runs curl; returns (exit code, stdout bytes)."""
    r = subprocess.run(["curl", "-s", "--max-time", str(timeout), *args], capture_output=True,
                       timeout=timeout + 10)
    return r.returncode, r.stdout


def hcm(stat_prefix, routes, access_log=""):
    return """
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s%s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
%s
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (stat_prefix, access_log, routes)


def route_to(cluster, prefix="/"):
    return """              - match: {prefix: "%s"}
                route: {cluster: %s}
""" % (prefix, cluster)


def direct(body):
    return """              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "%s"}}
""" % body


def downstream_tls(d, cert, require_client=False, ca=None, san=None):
    """A transport_socket with a DownstreamTlsContext (ALPN h2, http/1.1)."""
    validation = ""
    if ca:
        validation = """
            validation_context:
              trusted_ca: {filename: %s/%s.pem}""" % (d, ca)
        if san:
            validation += """
              match_typed_subject_alt_names:
              - san_type: URI
                matcher: {exact: "%s"}""" % san
    return """
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: %s
          common_tls_context:
            alpn_protocols: ["h2", "http/1.1"]
            tls_certificates:
            - certificate_chain: {filename: %s/%s.pem}
              private_key: {filename: %s/%s.key}%s""" % (
        "true" if require_client else "false", d, cert, d, cert, validation)


def mtls_cluster(name, port, d, cert="web", ca="ca", san=SPIFFE + "api", http2=False,
                 one_request=False):
    """A cluster to B presenting cert, trusting ca, admitting only san
    (one_request: a new connection for every request)."""
    h2 = "\n    max_requests_per_connection: 1" if one_request else ""
    if http2:
        h2 += """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}"""
    return """
  - name: %s
    connect_timeout: 2s
    type: STATIC%s
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: api.default.svc
        common_tls_context:
          tls_certificates:
          - certificate_chain: {filename: %s/%s.pem}
            private_key: {filename: %s/%s.key}
          validation_context:
            trusted_ca: {filename: %s/%s.pem}
            match_typed_subject_alt_names:
            - san_type: URI
              matcher: {exact: "%s"}
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
""" % (name, h2, d, cert, d, cert, d, ca, san, name, port)


def tcp_proxy(stat_prefix, cluster, access_log=""):
    return """
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %s
          cluster: %s%s
""" % (stat_prefix, cluster, access_log)


# Istio's inbound settings: append this hop's element (the caller's identity)
XFCC = """
          forward_client_cert_details: APPEND_FORWARD
          set_current_client_cert_details: {subject: true, dns: true, uri: true}"""

ACCESS_LOG = """
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format:
                text_format_source:
                  inline_string: "%%DOWNSTREAM_PEER_URI_SAN%% %%PROTOCOL%% %%REQ(:PATH)%% %%REQUESTED_SERVER_NAME%%\\n"
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, certs):
    """Yields a dict: a_port, b_port, sidecars a and b, the upstream log, B's access log."""
    tmp = tmp_path_factory.mktemp("mesh")
    b_port, a_port, b_tcp, a_tcp, a_tcp_bad = (free_port() for _ in range(5))
    access = tmp / "b_access.log"
    tcp_access = tmp / "b_tcp_access.log"
    with python_upstream(tmp, "app") as (app_port, app_log):
        # the chain matches A's SNI only (tls_inspector reads it), as Istio's inbound does
        b_listener = """
  - name: inbound
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
    - filter_chain_match: {server_names: ["api.default.svc"]}
      %s
      filters:%s""" % (b_port, downstream_tls(certs, "api", True, "ca", SPIFFE + "web").lstrip(),
                       hcm("inbound", route_to("app"), XFCC + ACCESS_LOG % access))
        b_listener += """
  - name: inbound_tcp
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - %s
      filters:%s""" % (b_tcp, downstream_tls(certs, "api", True, "ca", SPIFFE + "web").lstrip(),
                       tcp_proxy("inbound_tcp", "app", ACCESS_LOG % tcp_access))
        b_dir = tmp / "b"
        b_dir.mkdir()
        with meshproxy(b_dir, bootstrap(b_listener, cluster_yaml("app", app_port)),
                       [b_port, b_tcp]) as b:
            routes = (route_to("b_h1", "/h1/") + route_to("b_badsan", "/badsan/") +
                      route_to("b_wrongca", "/wrongca/") + route_to("b_expired", "/expired/") +
                      route_to("b_evil", "/evil/") + route_to("b_foreign", "/foreign/") +
                      route_to("b_resume", "/resume/") + route_to("b_h2", "/"))
            clusters = (mtls_cluster("b_h2", b_port, certs, http2=True) +
                        mtls_cluster("b_h1", b_port, certs) +
                        mtls_cluster("b_badsan", b_port, certs, san=SPIFFE + "reviews") +
                        mtls_cluster("b_wrongca", b_port, certs, ca="otherca") +
                        mtls_cluster("b_expired", b_port, certs, cert="expired") +
                        mtls_cluster("b_evil", b_port, certs, cert="evil") +
                        mtls_cluster("b_foreign", b_port, certs, cert="foreign") +
                        mtls_cluster("b_resume", b_port, certs, one_request=True) +
                        mtls_cluster("b_tcp", b_tcp, certs) +
                        mtls_cluster("b_tcp_badsan", b_tcp, certs, san=SPIFFE + "reviews"))
            a_listeners = listener_yaml(a_port, routes, stat_prefix="outbound") + """
  - name: outbound_tcp
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:%s
  - name: outbound_tcp_badsan
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:%s""" % (a_tcp, tcp_proxy("outbound_tcp", "b_tcp"), a_tcp_bad,
                       tcp_proxy("outbound_tcp_badsan", "b_tcp_badsan"))
            a_dir = tmp / "a"
            a_dir.mkdir()
            with meshproxy(a_dir, bootstrap(a_listeners, clusters),
                           [a_port, a_tcp, a_tcp_bad]) as a:
                yield dict(a_port=a_port, b_port=b_port, a_tcp=a_tcp, b_tcp=b_tcp,
                           web_hash=cert_sha256(certs / "web.pem"),
                           a_tcp_bad=a_tcp_bad, a=a, b=b,
                           app_log=app_log, access=access, tcp_access=tcp_access)


def access_lines(path, n, timeout=5.0):
    """Waits until B's access log has at least n lines (flushed every 100 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def b_ssl(m, name):
    return "listener.127.0.0.1_%d.ssl.%s" % (m["b_port"], name)


def test_mesh_mtls_h2_and_h1(mesh):
    m = mesh
    url = "http://127.0.0.1:%d" % m["a_port"]
    # HTTP/1.1 and HTTP/2 from curl to A; h2 (by ALPN) or http/1.1 over the mTLS hop
    # a client's own XFCC never passes A (forward_client_cert_details defaults to SANITIZE)
    assert curl("--http1.1", "-H", "X-Forwarded-Client-Cert: URI=spiffe://evil", url + "/one") == \
        (0, b"ok /one\n")
    assert curl("--http2-prior-knowledge", url + "/two") == (0, b"ok /two\n")
    assert curl(url + "/h1/three") == (0, b"ok /h1/three\n")
    reqs = read_requests(m["app_log"])
    assert [r["path"] for r in reqs[:3]] == ["/one", "/two", "/h1/three"]
    # B vouches for the caller: one XFCC element (A, as Envoy's default, sends none on)
    xfcc = 'By=%sapi;Hash=%s;Subject="CN=web";URI=%sweb' % (SPIFFE, m["web_hash"], SPIFFE)
    assert [r["headers"].get("x-forwarded-client-cert") for r in reqs[:3]] == [xfcc] * 3
    # each worker flushes its own lines: the order across connections may vary
    lines = access_lines(m["access"], 3)
    # A sent SNI api.default.svc
    assert sorted(lines) == [SPIFFE + "web HTTP/1.1 /h1/three api.default.svc",
                             SPIFFE + "web HTTP/2 /one api.default.svc",
                             SPIFFE + "web HTTP/2 /two api.default.svc"]
    a, b = m["a"].stats(), m["b"].stats()
    assert a["cluster.b_h2.upstream_cx_http2_total"] >= 1
    assert a["cluster.b_h2.upstream_rq_2xx"] == 2
    assert a["cluster.b_h1.upstream_rq_2xx"] == 1
    assert a["cluster.b_h2.ssl.handshake"] >= 1
    assert a["cluster.b_h1.ssl.handshake"] >= 1
    assert b["http.inbound.downstream_cx_http2_total"] >= 1
    assert b["http.inbound.downstream_cx_http1_total"] >= 1
    assert b[b_ssl(m, "handshake")] >= 2
    assert b[b_ssl(m, "no_certificate")] == 0
    # the start-up port checks (connect, close) are not TLS errors
    assert b[b_ssl(m, "connection_error")] == 0
    # A sent SNI api.default.svc, the only name B's chain accepts
    assert b["listener.127.0.0.1_%d.no_filter_chain_match" % m["b_port"]] == 0


def test_mesh_mtls_h2_load(mesh):
    """Many streams on few h2 connections through both sidecars."""
    m = mesh
    r = subprocess.run(["h2load", "-n", "600", "-c", "4", "-m", "8",
                        "http://127.0.0.1:%d/load" % m["a_port"]],
                       capture_output=True, text=True, timeout=60)
    assert "600 succeeded, 0 failed" in r.stdout, r.stdout + r.stderr
    a = m["a"].stats()
    assert a["cluster.b_h2.upstream_rq_2xx"] >= 600
    assert a["cluster.b_h2.ssl.connection_error"] == 0


def test_mesh_mtls_tcp_proxy(mesh):
    """tcp_proxy on both sides: A wraps the byte stream in mTLS to B, which
    unwraps it (never plaintext on the hop), and logs web's identity."""
    m = mesh
    before = m["b"].stats()["listener.127.0.0.1_%d.ssl.handshake" % m["b_tcp"]]
    # the start-up port checks on A's tcp listener may have made a handshake too
    a_before = m["a"].stats().get("cluster.b_tcp.ssl.handshake", 0)
    big = bytes(range(256)) * 4096  # 1 MiB each way
    (m["access"].parent / "big.bin").write_bytes(big)
    code, out = curl("--http1.1", "-H", "Content-Type: application/octet-stream",
                     "--data-binary", "@" + str(m["access"].parent / "big.bin"),
                     "http://127.0.0.1:%d/echo" % m["a_tcp"])
    assert code == 0 and out == big
    assert curl("http://127.0.0.1:%d/tcp" % m["a_tcp"]) == (0, b"ok /tcp\n")
    a = m["a"].stats()
    assert a["cluster.b_tcp.ssl.handshake"] == a_before + 2
    assert a["cluster.b_tcp.ssl.connection_error"] == 0
    b = wait_stat(m["b"], "listener.127.0.0.1_%d.ssl.handshake" % m["b_tcp"], before + 2)
    assert b["listener.127.0.0.1_%d.ssl.handshake" % m["b_tcp"]] == before + 2
    assert b["tcp.inbound_tcp.downstream_cx_total"] >= 2  # + the start-up port checks
    # a line when each connection ends; the start-up port checks (at A, they
    # reach B too) had no client certificate
    deadline = time.monotonic() + 5
    while access_lines(m["tcp_access"], 0).count(SPIFFE + "web - - api.default.svc") < 2:
        assert time.monotonic() < deadline, access_lines(m["tcp_access"], 0)
        time.sleep(0.05)
    others = [l for l in access_lines(m["tcp_access"], 0) if not l.startswith(SPIFFE + "web ")]
    assert all(l.startswith("- - - ") for l in others), others


def test_mesh_tcp_proxy_refuses_wrong_san(mesh):
    """tcp_proxy to a cluster whose server has the wrong identity: closed, no byte passes."""
    m = mesh
    before = len(read_requests(m["app_log"]))
    code, out = curl("http://127.0.0.1:%d/never" % m["a_tcp_bad"])
    assert code != 0 and out == b""
    a = wait_stat(m["a"], "cluster.b_tcp_badsan.ssl.fail_verify_san", 1)
    assert a["cluster.b_tcp_badsan.ssl.fail_verify_san"] >= 1
    assert a["cluster.b_tcp_badsan.ssl.handshake"] == 0
    assert a["cluster.b_tcp_badsan.upstream_cx_connect_fail"] >= 1
    assert len(read_requests(m["app_log"])) == before


def test_upstream_session_resumption(mesh):
    """A resumes its TLS sessions with B (max_session_keys defaults to 1); the
    resumed connections still carry web's identity."""
    m = mesh
    before = m["b"].stats()[b_ssl(m, "session_reused")]
    # one connection per request; two workers in A, so one of them resumes at least twice
    for i in range(5):
        got = curl("http://127.0.0.1:%d/resume/%d" % (m["a_port"], i))
        assert got == (0, b"ok /resume/%d\n" % i)
    a = m["a"].stats()
    assert a["cluster.b_resume.ssl.handshake"] == 5
    assert a["cluster.b_resume.ssl.session_reused"] >= 3
    b = wait_stat(m["b"], b_ssl(m, "session_reused"), before + 3)
    assert b[b_ssl(m, "session_reused")] >= before + 3
    deadline = time.monotonic() + 5
    while sum("/resume/" in l for l in access_lines(m["access"], 1)) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    resumed = [l for l in access_lines(m["access"], 1) if "/resume/" in l]
    assert all(l.startswith(SPIFFE + "web ") for l in resumed), resumed


def test_client_refuses_wrong_san_and_wrong_ca(mesh):
    """A refuses B's certificate: a SAN it does not expect, or a CA it does not trust."""
    m = mesh
    url = "http://127.0.0.1:%d" % m["a_port"]
    before = m["b"].stats()[b_ssl(m, "connection_error")]
    code, body = curl("-w", "\n%{http_code}", url + "/badsan/x")
    assert body.endswith(b"\n503"), body
    code, body = curl("-w", "\n%{http_code}", url + "/wrongca/x")
    assert body.endswith(b"\n503"), body
    a = wait_stat(m["a"], "cluster.b_wrongca.ssl.fail_verify_error", 1)
    assert a["cluster.b_badsan.ssl.fail_verify_san"] >= 1
    assert a["cluster.b_badsan.ssl.handshake"] == 0
    assert a["cluster.b_wrongca.ssl.fail_verify_error"] >= 1
    assert a["cluster.b_wrongca.ssl.fail_verify_san"] == 0
    # Envoy: connection_error does not count failed verifications
    assert a["cluster.b_badsan.ssl.connection_error"] == 0
    assert a["cluster.b_wrongca.ssl.connection_error"] == 0
    # ...but B, which got A's alert, counts a connection error for each
    b = wait_stat(m["b"], b_ssl(m, "connection_error"), before + 2)
    assert b[b_ssl(m, "connection_error")] >= before + 2
    assert not any("/badsan/" in r["path"] or "/wrongca/" in r["path"]
                   for r in read_requests(m["app_log"]))


def test_server_refuses_bad_client_certs(mesh):
    """B refuses A's client certificate: expired, wrong identity, foreign CA."""
    m = mesh
    url = "http://127.0.0.1:%d" % m["a_port"]
    before = m["b"].stats()
    for path in ("/expired/x", "/evil/x", "/foreign/x"):
        code, body = curl("-w", "\n%{http_code}", url + path)
        assert body.endswith(b"\n503"), (path, body)
    wait_stat(m["b"], b_ssl(m, "fail_verify_san"), before[b_ssl(m, "fail_verify_san")] + 1)
    b = wait_stat(m["b"], b_ssl(m, "fail_verify_error"), before[b_ssl(m, "fail_verify_error")] + 2)
    # expired and foreign fail the chain, evil fails the SAN
    assert b[b_ssl(m, "fail_verify_error")] - before[b_ssl(m, "fail_verify_error")] >= 2
    assert b[b_ssl(m, "fail_verify_san")] - before[b_ssl(m, "fail_verify_san")] >= 1
    assert b[b_ssl(m, "handshake")] == before[b_ssl(m, "handshake")]
    # A saw B's alert: a connection error on each of those clusters
    a = wait_stat(m["a"], "cluster.b_foreign.ssl.connection_error", 1)
    for c in ("b_expired", "b_evil", "b_foreign"):
        assert a["cluster.%s.ssl.connection_error" % c] >= 1, c
        assert a["cluster.%s.upstream_rq_2xx" % c] == 0, c
    assert not any(r["path"] in ("/expired/x", "/evil/x", "/foreign/x")
                   for r in read_requests(m["app_log"]))


def test_server_direct_client_certs(mesh, certs):
    """curl straight to B: the right certificate works, no certificate is refused."""
    m = mesh
    url = "https://api.default.svc:%d/direct" % m["b_port"]
    base = ["--resolve", "api.default.svc:%d:127.0.0.1" % m["b_port"], "--cacert",
            str(certs / "ca.pem")]
    before = m["b"].stats()
    assert curl(*base, "--cert", str(certs / "web.pem"), "--key", str(certs / "web.key"),
                "-H", "X-Forwarded-Client-Cert: By=spiffe://x;URI=spiffe://y", url) == \
        (0, b"ok /direct\n")
    got = [r for r in read_requests(m["app_log"]) if r["path"] == "/direct"][0]["headers"]
    # APPEND_FORWARD keeps what the (verified) client sent and adds its element
    assert got["x-forwarded-client-cert"] == (
        'By=spiffe://x;URI=spiffe://y,By=%sapi;Hash=%s;Subject="CN=web";URI=%sweb'
        % (SPIFFE, m["web_hash"], SPIFFE))
    assert got["x-forwarded-proto"] == "https"
    code, _ = curl(*base, url)
    assert code != 0
    code, _ = curl(*base, "--cert", str(certs / "expired.pem"), "--key",
                   str(certs / "expired.key"), url)
    assert code != 0
    wait_stat(m["b"], b_ssl(m, "fail_verify_no_cert"), before[b_ssl(m, "fail_verify_no_cert")] + 1)
    b = wait_stat(m["b"], b_ssl(m, "fail_verify_error"), before[b_ssl(m, "fail_verify_error")] + 1)
    assert b[b_ssl(m, "fail_verify_no_cert")] == before[b_ssl(m, "fail_verify_no_cert")] + 1
    assert b[b_ssl(m, "fail_verify_error")] == before[b_ssl(m, "fail_verify_error")] + 1
    assert b[b_ssl(m, "handshake")] == before[b_ssl(m, "handshake")] + 1
    deadline = time.monotonic() + 5
    while SPIFFE + "web HTTP/2 /direct api.default.svc" not in access_lines(m["access"], 1):
        assert time.monotonic() < deadline, access_lines(m["access"], 1)
        time.sleep(0.05)


# ---- one port, tls_inspector: TLS chains by SNI, plaintext default ---------------------------

@pytest.fixture(scope="module")
def inspected(tmp_path_factory, certs):
    tmp = tmp_path_factory.mktemp("inspect")
    port = free_port()
    with python_upstream(tmp, "up_a") as (pa, la), python_upstream(tmp, "up_b") as (pb, lb), \
            python_upstream(tmp, "up_plain") as (pp, lp):
        site = downstream_tls(certs, "site")
        listener = """
  - name: shared
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
    - filter_chain_match: {transport_protocol: tls, server_names: ["a.example"]}%s
      filters:%s
    - filter_chain_match: {transport_protocol: tls, server_names: ["b.example"]}%s
      filters:%s
    - filters:%s
""" % (port, site, hcm("tls_a", route_to("up_a")), site, hcm("tls_b", route_to("up_b")),
            hcm("plain", route_to("up_plain")))
        clusters = cluster_yaml("up_a", pa) + cluster_yaml("up_b", pb) + cluster_yaml("up_plain", pp)
        with meshproxy(tmp, bootstrap(listener, clusters), [port]) as proxy:
            yield dict(port=port, proxy=proxy, logs={"a": la, "b": lb, "plain": lp})


def test_tls_inspector_splits_one_port(inspected, certs):
    m = inspected
    port = m["port"]

    def tls(host, path, *extra):
        return curl("--cacert", str(certs / "ca.pem"), "--resolve", "%s:%d:127.0.0.1" % (host, port),
                    *extra, "https://%s:%d%s" % (host, port, path))

    assert curl("http://127.0.0.1:%d/plain" % port) == (0, b"ok /plain\n")
    assert tls("a.example", "/to-a") == (0, b"ok /to-a\n")
    assert tls("b.example", "/to-b", "--http1.1") == (0, b"ok /to-b\n")
    seen = {k: [r["path"] for r in read_requests(v)] for k, v in m["logs"].items()}
    assert seen == {"a": ["/to-a"], "b": ["/to-b"], "plain": ["/plain"]}
    st = m["proxy"].stats()
    assert st["http.tls_a.downstream_rq_total"] == 1
    assert st["http.tls_b.downstream_rq_total"] == 1
    assert st["http.plain.downstream_rq_total"] == 1
    assert st["listener.127.0.0.1_%d.ssl.handshake" % port] == 2


def test_alpn_seen_by_clients(inspected, certs):
    port = inspected["port"]
    for proto in ("h2", "http/1.1"):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", "a.example", "-alpn", proto, "-CAfile",
                            str(certs / "ca.pem")], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=20)
        assert "ALPN protocol: %s" % proto in r.stdout, r.stdout + r.stderr
        assert "Verify return code: 0 (ok)" in r.stdout
    # curl offers both: the server's order (h2 first) decides
    for flag, want in (("--http2", "2"), ("--http1.1", "1.1")):
        code, out = curl("-o", "/dev/null", "-w", "%{http_version}", flag, "--cacert",
                         str(certs / "ca.pem"), "--resolve", "a.example:%d:127.0.0.1" % port,
                         "https://a.example:%d/alpn" % port)
        assert (code, out) == (0, want.encode())


def test_session_resumption(inspected, certs, tmp_path):
    port = inspected["port"]
    sess = str(tmp_path / "sess.pem")
    before = inspected["proxy"].stats().get("listener.127.0.0.1_%d.ssl.session_reused" % port, 0)
    outs = []
    for flag in ("-sess_out", "-sess_in"):
        # a request and its response make sure the TLS 1.3 ticket has arrived before the exit
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                            "a.example", "-CAfile", str(certs / "ca.pem"), "-alpn", "http/1.1",
                            "-ign_eof", flag, sess],
                           input="GET /resume HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
                           capture_output=True, text=True, timeout=20)
        outs.append(r.stdout)
    assert "New, TLSv1.3" in outs[0], outs[0]
    assert "Reused, TLSv1.3" in outs[1], outs[1]
    assert "ok /resume" in outs[1]
    st = inspected["proxy"].stats()
    assert st["listener.127.0.0.1_%d.ssl.session_reused" % port] == before + 1


def test_links_boringssl_not_openssl():
    out = subprocess.run(["ldd", MESHPROXY_BIN], capture_output=True, text=True, timeout=20,
                         check=True).stdout
    assert "libssl.so.3" not in out and "libcrypto.so.3" not in out, out
    for lib in re.findall(r"^\s*(lib(?:ssl|crypto)\S*) => (\S+)", out, re.M):
        assert os.path.dirname(lib[1]) == "/usr/lib/x86_64-linux-gnu/android", out
