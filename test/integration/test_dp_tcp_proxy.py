"""tcp_proxy: bytes both ways, half-close, connect failure, stats and access log."""
import socket
import threading
import time

import pytest

from helpers import bootstrap, cluster_yaml, free_port, http_get, meshproxy, python_upstream


def tcp_listener(port, cluster, tmp_path, name="tcp"):
    return """
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %s
          cluster: %s
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s/tcp.log
              log_format:
                text_format_source:
                  inline_string: "%%UPSTREAM_HOST%% %%BYTES_RECEIVED%% %%BYTES_SENT%% %%RESPONSE_FLAGS%%\\n"
""" % (name, port, name, cluster, tmp_path)


class EchoServer:
    """A TCP echo server that closes its side after the client half-closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            conn.settimeout(10)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def setup(tmp_path):
    echo = EchoServer()
    port, dead_port = free_port(), free_port()
    bad_port = free_port()
    try:
        cfg = bootstrap(tcp_listener(port, "echo", tmp_path) + tcp_listener(bad_port, "dead", tmp_path, "tcpdead"),
                        cluster_yaml("echo", echo.port) + cluster_yaml("dead", dead_port))
        with meshproxy(tmp_path, cfg, [port, bad_port]) as proxy:
            yield port, bad_port, proxy
    finally:
        echo.close()


def test_bytes_both_ways_with_half_close(setup, tmp_path):
    port, _, proxy = setup
    payload = bytes(range(256)) * 8192  # 2 MiB
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        got = bytearray()

        def reader():
            while True:
                d = s.recv(65536)
                if not d:
                    return
                got.extend(d)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # the echo server closes after our FIN
        t.join(timeout=20)
    assert bytes(got) == payload
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = proxy.stats()
        if st.get("tcp.tcp.downstream_cx_rx_bytes_total") == len(payload):
            break
        time.sleep(0.05)
    assert st["tcp.tcp.downstream_cx_total"] >= 1
    assert st["tcp.tcp.downstream_cx_rx_bytes_total"] == len(payload)
    assert st["tcp.tcp.downstream_cx_tx_bytes_total"] == len(payload)
    assert st["cluster.echo.upstream_cx_total"] >= 1
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline and str(len(payload)) not in text:
        time.sleep(0.05)
        try:
            text = open(str(tmp_path / "tcp.log")).read()
        except FileNotFoundError:
            pass
    assert " %d %d -" % (len(payload), len(payload)) in text


def test_connect_failure_closes(setup):
    _, bad_port, proxy = setup
    with socket.create_connection(("127.0.0.1", bad_port), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(10) == b""
    assert proxy.stats()["cluster.dead.upstream_cx_connect_fail"] >= 1
