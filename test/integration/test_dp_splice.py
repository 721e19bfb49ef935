"""tcp_proxy with splice(2): plain TCP on both sides moves bytes through a
pipe per direction, never through user space. Checks big transfers both ways
(sha256), half-close, many connections, listener-filter bytes sent first,
idle timeout, stats and access log, and the MESHPROXY_NO_SPLICE=1 switch."""
import errno
import hashlib
import os
import random
import socket
import struct
import threading
import time

import shutil
import subprocess

import pytest

import helpers
from helpers import bootstrap, cluster_yaml, free_port, meshproxy

MiB = 1 << 20
BLOCK = random.Random(1234).randbytes(MiB)  # payload: a random MiB repeated


def splice_works():
    """(True, "") when splice moves bytes between TCP sockets here, else (False, why)."""
    if not hasattr(os, "splice"):
        return False, "python has no os.splice to probe the kernel"
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    a = socket.create_connection(lsock.getsockname())
    b, _ = lsock.accept()
    r, w = os.pipe()
    try:
        a.sendall(b"probe")
        time.sleep(0.05)
        try:
            n = os.splice(b.fileno(), w, 5)
            m = os.splice(r, a.fileno(), n)
        except OSError as e:
            return False, "splice between TCP sockets failed: %s" % errno.errorcode.get(e.errno, e.errno)
        return (n == 5 and m == 5), "splice moved %d/%d bytes" % (n, m)
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()
        lsock.close()


SPLICE_OK, SPLICE_WHY = splice_works()


def payload(n):
    """n bytes of the repeated random block."""
    reps, rest = divmod(n, MiB)
    return BLOCK * reps + BLOCK[:rest]


def send_payload(sock, n):
    sent = 0
    view = memoryview(BLOCK)
    while sent < n:
        k = min(MiB, n - sent)
        sock.sendall(view[:k])
        sent += k


class Server:
    """Upstream. A client sends a header (u64 size, u8 mode) then data until
    its FIN. Mode 0: the server sends size bytes while reading, then after the
    client's FIN the sha256 of what it read. Mode 1 (half-close): nothing
    until the client's FIN, then the sha256 and size bytes. Then it closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.errors = []
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
        try:
            with conn:
                conn.settimeout(30)
                head = b""
                while len(head) < 9:
                    d = conn.recv(9 - len(head))
                    if not d:
                        return
                    head += d
                size, mode = struct.unpack("!QB", head)
                sender = None
                if mode == 0:
                    sender = threading.Thread(target=send_payload, args=(conn, size), daemon=True)
                    sender.start()
                h = hashlib.sha256()
                while True:
                    d = conn.recv(MiB)
                    if not d:
                        break
                    h.update(d)
                if sender:
                    sender.join(timeout=30)
                    conn.sendall(h.digest())
                else:
                    conn.sendall(h.digest())
                    send_payload(conn, size)
        except OSError as e:
            self.errors.append(repr(e))

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


def tcp_listener(port, tmp_path, name, listener_filters="", idle=""):
    return """
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
%s    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %s
          cluster: up
%s          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s/%s.log
              log_format:
                text_format_source:
                  inline_string: "%%BYTES_RECEIVED%% %%BYTES_SENT%% %%RESPONSE_FLAGS%%\\n"
""" % (name, port, listener_filters, name, idle, tmp_path, name)


INSPECT = """    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
"""


def run_proxy(tmp_path, server):
    ports = {"plain": free_port(), "inspected": free_port(), "idle": free_port()}
    cfg = bootstrap(tcp_listener(ports["plain"], tmp_path, "plain")
                    + tcp_listener(ports["inspected"], tmp_path, "inspected", INSPECT)
                    + tcp_listener(ports["idle"], tmp_path, "idle", idle="          idle_timeout: 1s\n"),
                    cluster_yaml("up", server.port))
    return ports, meshproxy(tmp_path, cfg, list(ports.values()))


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def proxied(tmp_path, server):
    ports, ctx = run_proxy(tmp_path, server)
    with ctx as proxy:
        yield ports, proxy


@pytest.fixture
def proxied_no_splice(tmp_path, server, monkeypatch):
    monkeypatch.setenv("MESHPROXY_NO_SPLICE", "1")
    ports, ctx = run_proxy(tmp_path, server)
    with ctx as proxy:
        yield ports, proxy


@pytest.fixture
def proxied_splice_denied(tmp_path, server, monkeypatch):
    """meshproxy under a seccomp filter that fails every splice with EINVAL."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to build the seccomp helper")
    helper = tmp_path / "splice_deny"
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splice_deny.c")
    subprocess.run([cc, "-O1", "-o", str(helper), src], check=True, timeout=60)
    wrapper = tmp_path / "meshproxy_denied"
    wrapper.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (helper, helpers.MESHPROXY_BIN))
    wrapper.chmod(0o755)
    monkeypatch.setattr(helpers, "MESHPROXY_BIN", str(wrapper))
    ports, ctx = run_proxy(tmp_path, server)
    with ctx as proxy:
        yield ports, proxy


def exchange(port, up_size, down_size, mode=0, timeout=60):
    """Sends the header and up_size bytes, half-closes, reads to EOF. Returns
    (bytes sent upstream, server's sha256 of them, sha256 of the down payload
    received, bytes received in total)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        got = hashlib.sha256()
        tail = bytearray()
        total = [0]

        def reader():
            while True:
                d = s.recv(MiB)
                if not d:
                    return
                total[0] += len(d)
                tail.extend(d)
                # keep the last 32 bytes aside (the digest, mode 0) or the
                # first 32 (mode 1): hash the rest as it comes
                if mode == 0 and len(tail) > 32:
                    got.update(tail[:-32])
                    del tail[:-32]

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(struct.pack("!QB", down_size, mode))
        send_payload(s, up_size)
        s.shutdown(socket.SHUT_WR)
        t.join(timeout=timeout)
        assert not t.is_alive(), "no EOF from the proxy"
    if mode == 0:
        digest = bytes(tail)
    else:
        digest = bytes(tail[:32])
        got.update(tail[32:])
    return 9 + up_size, digest, got.digest(), total[0]


def wait_stat(proxy, name, want, timeout=5):
    deadline = time.monotonic() + timeout
    st = proxy.stats()
    while time.monotonic() < deadline and st.get(name) != want:
        time.sleep(0.05)
        st = proxy.stats()
    return st


def wait_log(path, needle, timeout=5):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = open(str(path)).read()
        except FileNotFoundError:
            text = ""
        if needle in text:
            break
        time.sleep(0.05)
    return text


def settle(proxy, timeout=5):
    """Waits until no tcp_proxy connection is open (wait_port's probes end too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = proxy.stats()
        if all(v == 0 for k, v in st.items() if k.startswith("tcp.") and k.endswith(".downstream_cx_active")):
            return
        time.sleep(0.05)


def pipes_of(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:"):
                n += 1
        except OSError:
            pass
    return n


def test_50mib_each_way(proxied, tmp_path):
    ports, proxy = proxied
    size = 50 * MiB
    sent, server_digest, got_digest, total = exchange(ports["plain"], size, size)
    assert total == size + 32
    # the server hashes what followed the header
    assert server_digest == hashlib.sha256(payload(size)).digest()
    assert got_digest == hashlib.sha256(payload(size)).digest()
    st = wait_stat(proxy, "tcp.plain.downstream_cx_rx_bytes_total", sent)
    assert st["tcp.plain.downstream_cx_rx_bytes_total"] == sent
    assert st["tcp.plain.downstream_cx_tx_bytes_total"] == size + 32
    assert st.get("meshproxy.splice_fallback", 0) == 0
    text = wait_log(tmp_path / "plain.log", "%d %d -" % (sent, size + 32))
    assert "%d %d -" % (sent, size + 32) in text
    assert st["meshproxy.bytes_proxied"] >= sent + size
    if not SPLICE_OK:
        pytest.skip("splice(2) unsupported on this kernel (%s): ratio not checked" % SPLICE_WHY)
    assert st["meshproxy.bytes_copied"] / st["meshproxy.bytes_proxied"] < 0.01


def test_half_close(proxied):
    """The client half-closes first; the server answers only after that FIN."""
    ports, _ = proxied
    sent, server_digest, got_digest, total = exchange(ports["plain"], 3 * MiB + 17, 5 * MiB + 3, mode=1)
    assert server_digest == hashlib.sha256(payload(3 * MiB + 17)).digest()
    assert got_digest == hashlib.sha256(payload(5 * MiB + 3)).digest()
    assert total == 5 * MiB + 3 + 32


def test_many_connections(proxied):
    ports, proxy = proxied
    n, size = 48, 256 * 1024
    results, errors = [], []

    def one(i):
        try:
            results.append(exchange(ports["plain"], size + i, size - i, mode=i % 2, timeout=30))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(results) == n
    ups = {hashlib.sha256(payload(size + i)).digest() for i in range(n)}
    downs = {hashlib.sha256(payload(size - i)).digest() for i in range(n)}
    for _, server_digest, got_digest, _ in results:
        assert server_digest in ups
        assert got_digest in downs
    # every connection ended: no pipes left behind
    st = wait_stat(proxy, "tcp.plain.downstream_cx_active", 0)
    assert st["tcp.plain.downstream_cx_active"] == 0


def test_inspected_bytes_first(proxied, tmp_path):
    """tls_inspector reads the first bytes: they go upstream first, then splice."""
    ports, _ = proxied
    size = 8 * MiB + 5
    sent, server_digest, got_digest, total = exchange(ports["inspected"], size, size)
    assert server_digest == hashlib.sha256(payload(size)).digest()
    assert got_digest == hashlib.sha256(payload(size)).digest()
    text = wait_log(tmp_path / "inspected.log", "%d %d -" % (sent, size + 32))
    assert "%d %d -" % (sent, size + 32) in text


def test_splices_with_pipes_and_idle_timeout(proxied):
    """An open plain connection holds two pipes (four fds) in the proxy while
    it is spliced; idle_timeout still closes a spliced connection."""
    ports, proxy = proxied
    if not SPLICE_OK:
        pytest.skip("splice(2) unsupported on this kernel (%s)" % SPLICE_WHY)
    settle(proxy)
    base = pipes_of(proxy.proc.pid)
    with socket.create_connection(("127.0.0.1", ports["idle"]), timeout=10) as s:
        s.sendall(struct.pack("!QB", 0, 1) + b"x" * 100)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pipes_of(proxy.proc.pid) < base + 4:
            time.sleep(0.05)
        assert pipes_of(proxy.proc.pid) == base + 4
        # traffic keeps it open past the idle timeout (1s)
        for _ in range(5):
            time.sleep(0.4)
            s.sendall(b"y")
        # then silence: the proxy closes it
        t0 = time.monotonic()
        s.settimeout(5)
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < 4
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pipes_of(proxy.proc.pid) != base:
        time.sleep(0.05)
    assert pipes_of(proxy.proc.pid) == base


def test_no_splice_env(proxied_no_splice, tmp_path):
    """MESHPROXY_NO_SPLICE=1: the buffered path, no pipes, same bytes."""
    ports, proxy = proxied_no_splice
    settle(proxy)
    base = pipes_of(proxy.proc.pid)
    with socket.create_connection(("127.0.0.1", ports["plain"]), timeout=10) as s:
        s.sendall(struct.pack("!QB", 0, 1) + b"x")
        time.sleep(0.3)
        assert pipes_of(proxy.proc.pid) == base
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(100)
            if not d:
                break
            got += d
        assert got == hashlib.sha256(b"x").digest()
    size = 4 * MiB
    sent, server_digest, got_digest, total = exchange(ports["plain"], size, size)
    assert server_digest == hashlib.sha256(payload(size)).digest()
    assert got_digest == hashlib.sha256(payload(size)).digest()
    st = wait_stat(proxy, "tcp.plain.downstream_cx_tx_bytes_total", size + 32 + 32)
    assert st["tcp.plain.downstream_cx_tx_bytes_total"] == size + 32 + 32
    assert st.get("meshproxy.splice_fallback", 0) == 0


def test_fallback_when_splice_refused(proxied_splice_denied, tmp_path):
    """splice fails with EINVAL at run time: each connection goes on with
    buffers, counted in meshproxy.splice_fallback, and no byte is lost."""
    ports, proxy = proxied_splice_denied
    size = 6 * MiB + 1
    sent, server_digest, got_digest, total = exchange(ports["plain"], size, size)
    assert server_digest == hashlib.sha256(payload(size)).digest()
    assert got_digest == hashlib.sha256(payload(size)).digest()
    sent2, server_digest, got_digest, _ = exchange(ports["plain"], 1000, 2 * MiB, mode=1)
    assert server_digest == hashlib.sha256(payload(1000)).digest()
    assert got_digest == hashlib.sha256(payload(2 * MiB)).digest()
    st = wait_stat(proxy, "tcp.plain.downstream_cx_rx_bytes_total", sent + sent2)
    assert st["tcp.plain.downstream_cx_rx_bytes_total"] == sent + sent2
    assert st["tcp.plain.downstream_cx_tx_bytes_total"] == size + 32 + 2 * MiB + 32
    # wait_port's probe connections may have fallen back too
    assert st["meshproxy.splice_fallback"] >= 2
    settle(proxy)
    before = proxy.stats()["meshproxy.splice_fallback"]
    base = pipes_of(proxy.proc.pid)
    with socket.create_connection(("127.0.0.1", ports["plain"]), timeout=10) as s:
        s.sendall(struct.pack("!QB", 0, 1) + b"x")
        time.sleep(0.3)
        # the first splice, on the next bytes, fails: the pipes go with the fallback
        s.sendall(b"y")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pipes_of(proxy.proc.pid) != base:
            time.sleep(0.05)
        assert pipes_of(proxy.proc.pid) == base
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        got = b""
        while True:
            d = s.recv(100)
            if not d:
                break
            got += d
        assert got == hashlib.sha256(b"xy").digest()
    # one fallback for the connection, never a second try
    time.sleep(0.2)
    assert proxy.stats()["meshproxy.splice_fallback"] == before + 1
