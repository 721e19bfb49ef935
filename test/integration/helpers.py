"""Shared helpers for integration tests: processes by pid, free ports,
waiting for ports, and a meshproxy launcher with its bootstrap inline.

Every process started here is stopped by pid in a finally/fixture teardown;
every wait is bounded in time; everything listens on 127.0.0.1 only.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MESHPROXY_BIN = os.environ.get(
    "MESHPROXY_BIN", os.path.join(HERE, "..", "..", "build", "proxy", "meshproxy"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, and never handed
    out before in this test run: the kernel may give the same port to two
    back-to-back binds of port 0, and two servers of one test would then
    collide."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port")


def wait_port(port, timeout=10.0, proc=None):
    """Waits until 127.0.0.1:port accepts connections; raises on timeout or
    when proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before port %d opened" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("port %d did not open in %.1fs" % (port, timeout))


def start_process(args, log_path=None, env=None):
    """Starts args in its own process group; output goes to log_path."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    finally:
        if log_path:
            out.close()


def stop_process(proc, timeout=10.0):
    """Stops proc by pid: SIGTERM, then SIGKILL after timeout. Returns its exit code."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return proc.poll()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)


def http_get(url, timeout=10.0, method="GET", data=None, headers=None):
    """Returns (status, headers dict lower-cased, body bytes) without raising on 4xx/5xx."""
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Proxy:
    """A running meshproxy: .port(name) gives listener ports, .admin(path) queries admin."""

    def __init__(self, proc, admin_port, log_path):
        self.proc = proc
        self.admin_port = admin_port
        self.log_path = log_path

    def admin(self, path, method="GET"):
        return http_get("http://127.0.0.1:%d%s" % (self.admin_port, path), method=method)

    def stats(self):
        """/stats as a dict of counters and gauges (histograms skipped)."""
        _, _, body = self.admin("/stats")
        out = {}
        for line in body.decode().splitlines():
            name, _, value = line.partition(": ")
            try:
                out[name] = int(value)
            except ValueError:
                pass
        return out

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


@contextlib.contextmanager
def meshproxy(tmp_path, bootstrap_yaml, listen_ports=(), extra_args=(), concurrency=2):
    """Writes bootstrap_yaml (which must use admin port ADMIN_PORT placeholder
    '{admin}') and runs meshproxy until the block ends."""
    admin_port = free_port()
    cfg = tmp_path / "bootstrap.yaml"
    cfg.write_text(bootstrap_yaml.replace("{admin}", str(admin_port)))
    log = str(tmp_path / "meshproxy.log")
    proc = start_process([MESHPROXY_BIN, "-c", str(cfg), "--concurrency", str(concurrency),
                          "--file-flush-interval-msec", "100", *extra_args], log)
    try:
        wait_port(admin_port, proc=proc)
        for p in listen_ports:
            wait_port(p, proc=proc)
        yield Proxy(proc, admin_port, log)
    finally:
        stop_process(proc)


@contextlib.contextmanager
def python_upstream(tmp_path, name="up"):
    """Runs upstream_http1.py (HTTP/1.1 keep-alive, logs each request as a
    JSON line). Yields (port, log_path)."""
    port = free_port()
    log = str(tmp_path / ("%s.requests" % name))
    proc = start_process([PYTHON, os.path.join(HERE, "upstream_http1.py"), str(port), log],
                         str(tmp_path / ("%s.out" % name)))
    try:
        wait_port(port, proc=proc)
        yield port, log
    finally:
        stop_process(proc)


def read_requests(log_path):
    """The requests an upstream_http1.py saw, as dicts."""
    if not os.path.exists(log_path):
        return []
    with open(log_path) as f:
        return [json.loads(l) for l in f if l.strip()]


@contextlib.contextmanager
def nghttpd(tmp_path, docroot):
    """Runs nghttpd --no-tls serving docroot. Yields its port."""
    port = free_port()
    proc = start_process(["nghttpd", "--no-tls", "-d", str(docroot), str(port)],
                         str(tmp_path / "nghttpd.out"))
    try:
        wait_port(port, proc=proc)
        yield port
    finally:
        stop_process(proc)


def cluster_yaml(name, port, http2=False, connect_timeout="1s"):
    """A STATIC cluster on 127.0.0.1:port (HTTP/2 upstream when http2)."""
    h2 = ""
    if http2:
        h2 = """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}"""
    return """
  - name: %s
    connect_timeout: %s
    type: STATIC%s
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
""" % (name, connect_timeout, h2, name, port)


def listener_yaml(port, routes, codec="AUTO", extra_hcm="", name="listener_0", stat_prefix="ingress"):
    """A listener with one HCM whose virtual host '*' has the given routes (YAML list text)."""
    return """
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          codec_type: %s
%s
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
%s
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (name, port, stat_prefix, codec, extra_hcm, routes)


def bootstrap(listeners, clusters):
    return """
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: {admin}}}
static_resources:
  listeners:
%s
  clusters:
%s
""" % (listeners, clusters)


def wait_stat(proxy, name, at_least, timeout=5.0):
    """Polls proxy's /stats until counter name reaches at_least (or timeout
    seconds pass); returns the last stats dict."""
    deadline = time.monotonic() + timeout
    while True:
        st = proxy.stats()
        if st.get(name, 0) >= at_least or time.monotonic() > deadline:
            return st
        time.sleep(0.05)
