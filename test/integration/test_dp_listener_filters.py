"""Listener filters pick the filter chain: http_inspector (ALPN h2c /
http/1.1) and tls_inspector (transport_protocol tls vs raw_buffer)."""
import socket
import ssl
import subprocess

import pytest

from helpers import bootstrap, free_port, http_get, meshproxy


def chain(match, body):
    return """
    - filter_chain_match: %s
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "%s"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (match, body, body)


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    listener = """
  - name: inspected
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    - name: envoy.filters.listener.http_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
    filter_chains:%s%s
""" % (port, chain('{application_protocols: ["h2c"]}', "chain-h2c"),
       chain('{application_protocols: ["http/1.1", "http/1.0"]}', "chain-h1"))
    with meshproxy(tmp_path, bootstrap(listener, ""), [port]) as proxy:
        yield port, proxy


def test_http_inspector_selects_chain(setup):
    port, proxy = setup
    assert http_get("http://127.0.0.1:%d/" % port)[2] == b"chain-h1"
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "http://127.0.0.1:%d/" % port],
                         capture_output=True, timeout=20).stdout
    assert out == b"chain-h2c"
    st = proxy.stats()
    assert st["http.chain-h1.downstream_rq_total"] == 1
    assert st["http.chain-h2c.downstream_rq_total"] == 1


def test_tls_without_matching_chain_is_closed(setup):
    port, proxy = setup
    # a real ClientHello, made by Python's TLS stack into memory
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["istio-peer-exchange"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="svc.local")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(hello)
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    assert proxy.stats()["listener.127.0.0.1_%d.no_filter_chain_match" % port] >= 1
