#!/usr/bin/python3
"""Added latency and CPU per request: meshproxy vs nghttpx vs haproxy (vs Envoy).

Every proxy forwards HTTP/2 (h2c) to the same nghttpd. h2load drives each one
at the same fixed rate (--rps per client), writing one line per request with
--log-file; the script takes p50/p99 of those durations, subtracts the same
figures measured straight against nghttpd, and reads each proxy's CPU time
(utime+stime from /proc) before and after to give CPU microseconds per request.
The figures are ratios within one run on one machine; they are not asserted.

usage: perf/proxy_latency.py [--requests N] [--rps R] [--clients C]
Env: MESHPROXY_BIN (default build/proxy/meshproxy), ENVOY_BIN (optional).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


def cpu_seconds(pid):
    """utime+stime of a process and its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def h2load(port, args, workdir, tag):
    log = os.path.join(workdir, "h2load-%s.log" % tag)
    cmd = ["h2load", "-n", str(args.requests), "-c", str(args.clients), "-m", "1",
           "--rps", str(args.rps), "--log-file", log, "http://127.0.0.1:%d/index.html" % port]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    durations = []
    failed = 0
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                if not parts[1].startswith("2"):
                    failed += 1
                durations.append(int(parts[2]))
    durations.sort()
    ok_line = [l for l in out.splitlines() if l.startswith("requests:")]
    return durations, failed, ok_line[0] if ok_line else out[-300:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rps", type=int, default=500, help="requests per second per client")
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="mp-perf-")
    docroot = os.path.join(work, "www")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "index.html"), "wb") as f:
        f.write(b"x" * 1024)
    procs = []

    def start(cmd, port, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "%d.err" % port), "w"), **kw)
        procs.append(p)
        wait_port(port)
        return p

    try:
        up = free_port()
        start(["nghttpd", "--no-tls", "-d", docroot, str(up)], up)

        proxies = []
        mp_port = free_port()
        mp_admin = free_port()
        boot = os.path.join(work, "meshproxy.yaml")
        with open(boot, "w") as f:
            f.write(BOOTSTRAP % dict(port=mp_port, admin=mp_admin, up=up))
        mp_bin = os.environ.get("MESHPROXY_BIN", os.path.join(TOP, "build/proxy/meshproxy"))
        proxies.append(("meshproxy", mp_port, start([mp_bin, "-c", boot, "--concurrency", "1", "-l", "error"], mp_port)))

        nx_port = free_port()
        proxies.append(("nghttpx", nx_port, start(
            ["nghttpx", "--frontend=127.0.0.1,%d;no-tls" % nx_port,
             "--backend=127.0.0.1,%d;;proto=h2" % up, "--workers=1", "--no-ocsp",
             "--conf=/dev/null", "--log-level=ERROR", "--accesslog-file=/dev/null",
             "--errorlog-file=" + os.path.join(work, "nghttpx.log")], nx_port)))

        hp_port = free_port()
        hcfg = os.path.join(work, "haproxy.cfg")
        with open(hcfg, "w") as f:
            f.write(HAPROXY % dict(port=hp_port, up=up))
        proxies.append(("haproxy", hp_port, start(["haproxy", "-f", hcfg, "-db"], hp_port)))

        envoy = os.environ.get("ENVOY_BIN")
        if envoy:
            ev_port = free_port()
            ecfg = os.path.join(work, "envoy.yaml")
            with open(ecfg, "w") as f:
                f.write(BOOTSTRAP % dict(port=ev_port, admin=free_port(), up=up))
            proxies.append(("envoy", ev_port, start([envoy, "-c", ecfg, "--concurrency", "1", "-l", "error"], ev_port)))

        base, bfail, _ = h2load(up, args, work, "direct")
        b50, b99 = percentile(base, 50), percentile(base, 99)
        print("direct to nghttpd: p50 %d us, p99 %d us (%d requests, %d rps x %d clients, %d non-2xx)"
              % (b50, b99, len(base), args.rps, args.clients, bfail))
        print("%-10s %14s %14s %16s %8s" % ("proxy", "added p50 us", "added p99 us", "cpu us/request", "failed"))
        for name, port, proc in proxies:
            c0 = cpu_seconds(proc.pid)
            d, fail, _ = h2load(port, args, work, name)
            c1 = cpu_seconds(proc.pid)
            cpu = (c1 - c0) * 1e6 / max(1, len(d))
            print("%-10s %14d %14d %16.1f %8d" % (name, percentile(d, 50) - b50, percentile(d, 99) - b99, cpu, fail + args.requests - len(d)))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


BOOTSTRAP = """
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: %(admin)d}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: backend}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(up)d}}}
"""

HAPROXY = """
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:%(port)d proto h2
    default_backend be
backend be
    server up 127.0.0.1:%(up)d proto h2
"""

if __name__ == "__main__":
    sys.exit(main())
