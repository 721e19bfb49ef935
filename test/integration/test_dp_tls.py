"""TLS on both sides: a listener filter chain with a DownstreamTlsContext
(HTTP/1.1 and h2 by ALPN), and clusters with an UpstreamTlsContext that
verify the upstream's certificate."""
import subprocess

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy, nghttpd,
                     python_upstream)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return d


def tls_listener(port, certs, cluster):
    return """
  - name: tls_in
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: ["h2", "http/1.1"]
            tls_certificates:
            - certificate_chain: {filename: %s/cert.pem}
              private_key: {filename: %s/key.pem}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tls_in
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: %s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (port, certs, certs, cluster)


def tls_cluster(name, port, certs, http2, ca=True):
    h2 = ""
    if http2:
        h2 = """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}"""
    validation = ""
    if ca:
        validation = """
        common_tls_context:
          validation_context:
            trusted_ca: {filename: %s/cert.pem}""" % certs
    return """
  - name: %s
    connect_timeout: 1s
    type: STATIC%s
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost%s
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
""" % (name, h2, validation, name, port)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, certs):
    """plain :front -> (TLS, h2 or h1) -> :tls_in (TLS listener) -> nghttpd."""
    tmp = tmp_path_factory.mktemp("tls")
    www = tmp / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(bytes(range(256)) * 2048)
    (www / "a.txt").write_bytes(b"hello tls\n")
    tls_port, front = free_port(), free_port()
    with nghttpd(tmp, www) as ng:
        back_cfg = bootstrap(tls_listener(tls_port, certs, "origin"), cluster_yaml("origin", ng, http2=True))
        back_dir = tmp / "back"
        back_dir.mkdir()
        with meshproxy(back_dir, back_cfg, [tls_port]) as back:
            routes = """
              - match: {prefix: "/h1/"}
                route: {cluster: tls_h1, prefix_rewrite: "/"}
              - match: {prefix: "/"}
                route: {cluster: tls_h2}
"""
            front_cfg = bootstrap(listener_yaml(front, routes),
                                  tls_cluster("tls_h2", tls_port, certs, True) +
                                  tls_cluster("tls_h1", tls_port, certs, False, ca=False))
            front_dir = tmp / "front"
            front_dir.mkdir()
            with meshproxy(front_dir, front_cfg, [front]) as fp:
                yield front, tls_port, www, back, fp


def curl(*args):
    return subprocess.run(["curl", "-s", "--max-time", "20", *args], capture_output=True, timeout=30).stdout


def test_downstream_tls_h1_and_h2(chain, certs):
    _, tls_port, www, back, _ = chain
    url = "https://localhost:%d/a.txt" % tls_port
    resolve = "localhost:%d:127.0.0.1" % tls_port
    assert curl("--cacert", str(certs / "cert.pem"), "--resolve", resolve, "--http1.1", url) == b"hello tls\n"
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version}", "--cacert",
                          str(certs / "cert.pem"), "--resolve", resolve, url],
                         capture_output=True, text=True, timeout=30).stdout
    assert out == "2"  # ALPN chose h2
    assert curl("--cacert", str(certs / "cert.pem"), "--resolve", resolve,
                "https://localhost:%d/big.bin" % tls_port) == (www / "big.bin").read_bytes()


def test_upstream_tls_both_protocols(chain):
    front, _, www, _, fp = chain
    assert curl("http://127.0.0.1:%d/a.txt" % front) == b"hello tls\n"
    assert curl("http://127.0.0.1:%d/h1/a.txt" % front) == b"hello tls\n"
    assert curl("http://127.0.0.1:%d/big.bin" % front) == (www / "big.bin").read_bytes()
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "4", "http://127.0.0.1:%d/a.txt" % front],
                       capture_output=True, text=True, timeout=120).stdout
    assert "2000 succeeded, 0 failed" in r, r
    st = fp.stats()
    assert st["cluster.tls_h2.upstream_rq_2xx"] >= 2000
    assert st["cluster.tls_h1.upstream_rq_2xx"] >= 1


def test_plaintext_client_on_tls_port_is_closed(chain):
    _, tls_port, _, _, _ = chain
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://127.0.0.1:%d/a.txt" % tls_port], capture_output=True, text=True, timeout=30)
    assert r.stdout == "000"


def test_listener_certificate_from_static_sds_secret(tmp_path, certs):
    port = free_port()
    listener = tls_listener(port, certs, "none").replace(
        """            tls_certificates:
            - certificate_chain: {filename: %s/cert.pem}
              private_key: {filename: %s/key.pem}""" % (certs, certs),
        """            tls_certificate_sds_secret_configs:
            - name: server_cert""")
    listener = listener.replace("route: {cluster: none}",
                                "direct_response: {status: 200, body: {inline_string: sds}}")
    cfg = bootstrap(listener, "").replace("static_resources:\n", """static_resources:
  secrets:
  - name: server_cert
    tls_certificate:
      certificate_chain: {filename: %s/cert.pem}
      private_key: {filename: %s/key.pem}
""" % (certs, certs), 1)
    with meshproxy(tmp_path, cfg, [port]):
        out = curl("--cacert", str(certs / "cert.pem"), "--resolve", "localhost:%d:127.0.0.1" % port,
                   "https://localhost:%d/" % port)
        assert out == b"sds"


def test_transport_socket_matches_pick_tls_per_endpoint(tmp_path, certs):
    """Istio's auto mTLS: endpoints whose metadata says tlsMode: istio get the
    matching TLS socket; the others get the plaintext one."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.txt").write_bytes(b"hello\n")
    tls_port, front = free_port(), free_port()
    with nghttpd(tmp_path, www) as ng, python_upstream(tmp_path) as (plain, _):
        back_dir = tmp_path / "back"
        back_dir.mkdir()
        back_cfg = bootstrap(tls_listener(tls_port, certs, "origin"),
                             cluster_yaml("origin", ng, http2=True))
        with meshproxy(back_dir, back_cfg, [tls_port]) as back:
            cluster = """
  - name: mixed
    connect_timeout: 1s
    type: STATIC
    transport_socket_matches:
    - name: tlsMode-istio
      match: {tlsMode: istio}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: localhost
          common_tls_context:
            validation_context: {trusted_ca: {filename: %s/cert.pem}}
    - name: tlsMode-disabled
      match: {}
      transport_socket:
        name: envoy.transport_sockets.raw_buffer
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer
    load_assignment:
      cluster_name: mixed
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
          metadata: {filter_metadata: {envoy.transport_socket_match: {tlsMode: istio}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
""" % (certs, tls_port, plain)
            routes = """
              - match: {prefix: "/"}
                route: {cluster: mixed}
"""
            front_dir = tmp_path / "front"
            front_dir.mkdir()
            with meshproxy(front_dir, bootstrap(listener_yaml(front, routes), cluster), [front]) as fp:
                seen = set()
                for _ in range(20):
                    seen.add(curl("http://127.0.0.1:%d/a.txt" % front))
                # both endpoints served: the TLS one through the TLS listener
                assert seen == {b"hello\n", b"ok /a.txt\n"}, seen
                assert back.stats().get("listener.127.0.0.1_%d.downstream_cx_total" % tls_port, 0) >= 1
                st = fp.stats()
                assert st.get("cluster.mixed.upstream_rq_2xx", 0) == 20
