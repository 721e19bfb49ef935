#!/usr/bin/python3
"""Added latency, CPU per request and memory: meshproxy vs nghttpx vs haproxy (vs Envoy).

Every proxy forwards to the same nghttpd over HTTP/2 (h2c, one kept-alive
upstream connection per worker). h2load drives each proxy with the same
open-loop load: the same total rate (--rate, split evenly over --clients
connections with h2load --rps), the same number of connections and the same
stream concurrency per connection (--streams, h2load -m), over HTTP/1.1
(h2load --h1) and HTTP/2 (h2c prior knowledge) downstream. Every request's
duration comes from h2load's --log-file (one line per request); the script
takes p50/p99 of those and subtracts the same percentiles measured straight
against nghttpd in the same round. nghttpd has no plain HTTP/1.1, so the
direct baseline is HTTP/2 for both downstream variants; the upstream leg is
HTTP/2 in every case.

CPU per request: utime+stime of every process of the proxy (its own pid and
its descendants, so nghttpx's worker process counts) from /proc/<pid>/stat,
read just before and just after the measured h2load run, divided by the
requests completed in it. Memory: VmRSS from /proc/<pid>/status, summed over
the same processes, once idle after start-up and sampled every 50 ms during
the measured runs (the maximum is shown).

Each proxy gets the same worker count (--workers: meshproxy/Envoy
--concurrency, nghttpx --workers, haproxy nbthread), no access or error
logging on the request path, and a warm-up run before each measured run.
The order of the targets rotates from round to round (many short rounds, so
that bursts of other work on the machine fall on every proxy alike); the
latencies shown are medians over --rounds of each round's percentiles, the
CPU figure is all rounds' CPU time over all their requests. As root, every
process of the benchmark (proxies, h2load, nghttpd) runs SCHED_FIFO at one
priority (--sched): on a machine shared with other work the latencies then
measure the proxies, not the run queue. The load is light (well under one
core), so nothing else starves.

The figures compare proxies within one run on one machine; they are printed,
never asserted.

usage: perf/proxy_latency.py [--duration S] [--rate R] [--clients C]
           [--streams M] [--rounds K] [--workers N] [--proto h1,h2]
           [--proxies meshproxy,nghttpx,haproxy] [--body BYTES] [--pin] [--sched fifo|nice|none]
Env: MESHPROXY_BIN (default build/proxy/meshproxy), ENVOY_BIN (optional:
adds Envoy to the proxies).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_util import free_port, percentile, rss_kib, wait_port  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")






def proc_tree(pid):
    """pid and all its live descendants."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return tree


def cpu_ticks(pids):
    """utime+stime (clock ticks) of processes, each with all its threads."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total




class RssSampler(threading.Thread):
    """Maximum summed VmRSS of some processes while it runs."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop = pids, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pids))
            self.stop.wait(0.05)




def prio(args):
    """preexec_fn: every process of the benchmark runs at one priority (see --sched)."""
    def set_prio():
        try:
            if args.sched == "fifo":
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_prio))
            elif args.sched == "nice":
                os.setpriority(os.PRIO_PROCESS, 0, -20)
        except OSError:
            pass
    return set_prio


def h2load(port, proto, args, seconds, workdir, tag, pin):
    """Runs h2load at the configured load; returns (sorted durations us, failures)."""
    log = os.path.join(workdir, "h2load-%s.log" % tag)
    n = int(args.rate * seconds)
    cmd = ["h2load", "-n", str(n), "-c", str(args.clients), "-m", str(args.streams), "-t", "1",
           "--rps", str(args.rate // args.clients), "--log-file", log]
    if proto == "h1":
        cmd.append("--h1")
    cmd.append("http://127.0.0.1:%d/index.html" % port)
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=int(seconds * 5) + 60,
                         preexec_fn=prio(args))
    durations, failed = [], 0
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                if not parts[1].startswith("2"):
                    failed += 1
                durations.append(int(parts[2]))
    os.unlink(log)
    durations.sort()
    failed += n - len(durations)
    if res.returncode != 0 or failed:
        sys.stderr.write("h2load %s: rc %d, %d failed\n%s\n" % (tag, res.returncode, failed,
                                                              res.stdout[-600:]))
    return durations, failed


class Target:
    def __init__(self, name, port, proc):
        self.name, self.port, self.proc = name, port, proc
        self.pids = proc_tree(proc.pid)
        self.rss_idle = rss_kib(self.pids)
        self.rss_load = 0
        self.runs = {}  # proto -> list of (p50, p99, cpu ticks, requests, failed)


def measure(t, proto, args, work, rnd):
    """One warm-up and one measured run of target t; records the figures."""
    h2load(t.port, proto, args, args.warmup, work, "%s-%s-warm" % (t.name, proto), args.pin)
    t.pids = proc_tree(t.proc.pid)
    sampler = RssSampler(t.pids)
    sampler.start()
    c0 = cpu_ticks(t.pids)
    d, failed = h2load(t.port, proto, args, args.duration, work, "%s-%s-%d" % (t.name, proto, rnd),
                       args.pin)
    c1 = cpu_ticks(t.pids)
    sampler.stop.set()
    sampler.join()
    t.rss_load = max(t.rss_load, sampler.peak)
    t.runs.setdefault(proto, []).append(
        (percentile(d, 50), percentile(d, 99), c1 - c0, len(d), failed))


def summary(t, proto):
    """Latencies: medians over the rounds, so that a round other work on the
    machine disturbed moves them little. CPU: all rounds' CPU over all their
    requests (one round's few clock ticks would quantize it coarsely)."""
    runs = t.runs[proto]
    p50 = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    reqs = sum(r[3] for r in runs)
    cpu_us = sum(r[2] for r in runs) * 1e6 / CLK_TCK / max(1, reqs)
    return p50, p99, cpu_us, reqs, sum(r[4] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=2,
                    help="seconds per measured run (default 2)")
    ap.add_argument("--warmup", type=float, default=0.5,
                    help="seconds of warm-up before each run (default 0.5)")
    ap.add_argument("--rate", type=int, default=2000,
                    help="total requests per second, split over the clients (default 2000)")
    ap.add_argument("--clients", type=int, default=4, help="downstream connections (default 4)")
    ap.add_argument("--streams", type=int, default=1,
                    help="max concurrent streams per connection, h2load -m (default 1)")
    ap.add_argument("--rounds", type=int, default=8,
                    help="rounds, each running every target once in a rotated order; the "
                         "latencies shown are medians over rounds (default 8)")
    ap.add_argument("--workers", type=int, default=1, help="worker threads per proxy (default 1)")
    ap.add_argument("--proto", default="h1,h2", help="downstream protocols (default h1,h2)")
    ap.add_argument("--proxies", default="meshproxy,nghttpx,haproxy",
                    help="proxies to compare (envoy is added when ENVOY_BIN is set)")
    ap.add_argument("--body", type=int, default=1024, help="response body bytes (default 1024)")
    ap.add_argument("--pin", action="store_true",
                    help="pin proxies to CPU 1, h2load and nghttpd to CPU 0")
    ap.add_argument("--sched", choices=("fifo", "nice", "none"),
                    default="fifo" if os.geteuid() == 0 else "none",
                    help="scheduling of every process of the benchmark, proxies, h2load and "
                         "nghttpd alike: SCHED_FIFO (default as root), nice -20, or as started. "
                         "On a shared machine the first keeps other work from showing up as "
                         "latency; the load itself is light (well under one core)")
    ap.add_argument("--rt-prio", type=int, default=10, help="SCHED_FIFO priority (default 10)")
    args = ap.parse_args()
    if args.rate % args.clients:
        ap.error("--rate must be a multiple of --clients")
    protos = [p for p in args.proto.split(",") if p]
    names = [p for p in args.proxies.split(",") if p]
    if os.environ.get("ENVOY_BIN") and "envoy" not in names:
        names.append("envoy")

    work = tempfile.mkdtemp(prefix="mp-perf-")
    docroot = os.path.join(work, "www")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "index.html"), "wb") as f:
        f.write(b"x" * args.body)
    procs = []

    def start(cmd, port, cpu):
        if args.pin:
            cmd = ["taskset", "-c", cpu] + cmd
        err = open(os.path.join(work, "%d.err" % port), "w")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=prio(args))
        procs.append(p)
        wait_port(port, p)
        return p

    try:
        up = free_port()
        direct = Target("direct", up, start(["nghttpd", "--no-tls", "-d", docroot, str(up)], up, "0"))
        targets = []
        for name in names:
            port = free_port()
            if name in ("meshproxy", "envoy"):
                boot = os.path.join(work, name + ".yaml")
                with open(boot, "w") as f:
                    f.write(BOOTSTRAP % dict(port=port, admin=free_port(), up=up))
                binary = (os.environ.get("MESHPROXY_BIN", os.path.join(TOP, "build/proxy/meshproxy"))
                          if name == "meshproxy" else os.environ["ENVOY_BIN"])
                cmd = [binary, "-c", boot, "--concurrency", str(args.workers), "-l", "error"]
            elif name == "nghttpx":
                # No --accesslog-file: nghttpx writes no access log without one.
                cmd = ["nghttpx", "--frontend=127.0.0.1,%d;no-tls" % port,
                       "--backend=127.0.0.1,%d;;proto=h2" % up, "--workers=%d" % args.workers,
                       "--no-ocsp", "--conf=/dev/null", "--log-level=ERROR",
                       "--errorlog-file=" + os.path.join(work, "nghttpx.log")]
            elif name == "haproxy":
                cfg = os.path.join(work, "haproxy.cfg")
                with open(cfg, "w") as f:
                    f.write(HAPROXY % dict(port=port, up=up, threads=args.workers))
                cmd = ["haproxy", "-f", cfg, "-db"]
            else:
                ap.error("unknown proxy %s" % name)
            targets.append(Target(name, port, start(cmd, port, "1")))

        print("%s; %d cores; load average %.1f; %d rps over %d connections x %d streams; "
              "%gs runs x %d rounds; %d worker(s) per proxy; %d-byte responses; sched %s" % (
                  time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
                  os.getloadavg()[0], args.rate, args.clients, args.streams, args.duration,
                  args.rounds, args.workers, args.body, args.sched))
        for rnd in range(args.rounds):
            for proto in protos:
                if proto == protos[0]:
                    measure(direct, "h2", args, work, rnd)
                order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
                for t in order:
                    measure(t, proto, args, work, rnd)

        b50, b99, _, breqs, bfail = summary(direct, "h2")
        print("direct to nghttpd (h2): p50 %d us, p99 %d us (%d requests, %d failed)"
              % (b50, b99, breqs, bfail))
        head = "| %-10s | %-5s | %12s | %12s | %14s | %13s | %13s | %6s |"
        print(head % ("proxy", "down", "added p50 us", "added p99 us", "CPU us/req",
                      "RSS idle MiB", "RSS load MiB", "failed"))
        print(head % ("---", "---", "---:", "---:", "---:", "---:", "---:", "---:"))
        for proto in protos:
            for t in targets:
                p50, p99, cpu, reqs, failed = summary(t, proto)
                print("| %-10s | %-5s | %12d | %12d | %14.1f | %13.1f | %13.1f | %6d |" % (
                    t.name, proto, p50 - b50, p99 - b99, cpu, t.rss_idle / 1024.0,
                    t.rss_load / 1024.0, failed))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
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

# No "log" line: haproxy logs nothing. The bind has no "proto h2" so that it
# takes HTTP/1.1 and h2c prior knowledge (detected from the preface) alike.
# "http-reuse always" shares the kept-alive HTTP/2 upstream connection as the
# other proxies do. haproxy 2.6 turns nghttpd's HTTP/2 200 into "HTTP/1.1 200 "
# with no reason phrase, on which h2load records no status (so every request
# would count as failed): set-status gives it one.
HAPROXY = """
global
    nbthread %(threads)d
defaults
    mode http
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:%(port)d
    default_backend be
backend be
    http-response set-status 200 reason OK if { status 200 }
    server up 127.0.0.1:%(up)d proto h2
"""

if __name__ == "__main__":
    sys.exit(main())
