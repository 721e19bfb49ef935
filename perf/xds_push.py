#!/usr/bin/python3
"""xDS pushes under load: latency with and without a large push, push-to-ACK time, memory.

meshproxy is configured over ADS by meshproxy-xds (a listener, its route and
one EDS cluster "backend" whose endpoint is an nghttpd, HTTP/2 upstream).
h2load drives it at a fixed open-loop rate (--rate over --clients
connections, h2load --rps) for the whole run; every request's start time and
duration come from h2load's --log-file.

Part 1 (latency): in each of --cycles cycles, a quiet window of --quiet
seconds with no push, then a push adding --clusters EDS clusters and as many
ClusterLoadAssignments (one file, one reload of meshproxy-xds), then a quiet
pause, then a push removing them again. A push window runs from the file
write to the last ACK of that push in meshproxy-xds's log plus --tail
seconds (the workers swap snapshots and free the old one just after
publication). Requests are binned by start time; p50/p99 of the quiet
windows and of the push windows are printed, with their ratio.

Part 2 (figures, no load): push --small clusters + endpoint sets, then
remove them; for each push the time from the file write to meshproxy-xds's
first send, to the Cluster ACK and to the last ACK (the ClusterLoadAssignment
with every endpoint set, after which nothing more is sent), read from
meshproxy-xds's log (-l debug: one "send" line per response, one "ACK" line
per ACK); plus meshproxy's own "<Type> version N accepted ... in X ms" (decode,
translate, build and publish on meshproxy's side). VmRSS of meshproxy
(/proc/pid/status) idle with the base config, with --small clusters loaded,
with --clusters loaded, and after they are removed again.

With ENVOY_BIN set, part 2 runs against Envoy as well (same bootstrap, same
control plane; Envoy's figures come from meshproxy-xds's log only).

meshproxy-xds stands in for a control plane that runs on another machine:
it runs at a lower priority than the data path (see --sched) so that its
YAML parsing does not show up as the proxy's latency.

Figures are printed, never asserted.

usage: perf/xds_push.py [--rate R] [--clients C] [--clusters N] [--small N]
           [--cycles K] [--quiet S] [--tail S] [--workers N] [--mode sotw|delta]
           [--sched fifo|nice|none] [--skip-load] [--skip-figures]
Env: MESHPROXY_BIN (default build/proxy/meshproxy), MESHPROXY_XDS_BIN (default
build/xds/server/meshproxy-xds), ENVOY_BIN (optional).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_util import free_port, percentile, rss_kib, wait_port  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = "type.googleapis.com/envoy.config."
CLUSTER_T = T + "cluster.v3.Cluster"
CLA_T = T + "endpoint.v3.ClusterLoadAssignment"










def write(path, text):
    """Replaces a file in one rename, so meshproxy-xds never reads half of it."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---- resources ---------------------------------------------------------------------------

BASE = """resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: http
  address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ingress
        rds: {route_config_name: local, config_source: {ads: {}}}
        http_filters:
        - name: envoy.filters.http.router
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: local
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {prefix: "/"}
      route: {cluster: backend}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: backend
  type: EDS
  connect_timeout: 1s
  eds_cluster_config: {eds_config: {ads: {}}}
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http2_protocol_options: {}}
- "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
  cluster_name: backend
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(up)d}}}
"""


def bulk(n):
    """n EDS clusters svc-<i> and their endpoint sets (one host each, distinct
    addresses, never connected to), in one file: one reload, one push."""
    out = ["resources:\n"]
    for i in range(n):
        out.append('- {"@type": %s, name: svc-%05d, type: EDS, connect_timeout: 1s, '
                   "eds_cluster_config: {eds_config: {ads: {}}}}\n" % (CLUSTER_T, i))
    for i in range(n):
        out.append('- {"@type": %s, cluster_name: svc-%05d, endpoints: [{lb_endpoints: '
                   "[{endpoint: {address: {socket_address: {address: 10.%d.%d.%d, "
                   "port_value: 8080}}}}]}]}\n" % (CLA_T, i, i >> 16, (i >> 8) & 255, i & 255))
    return "".join(out)


BOOTSTRAP = """
node: {id: sidecar-1, cluster: perf}
dynamic_resources:
  ads_config:
    api_type: %(api)s
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds}}]
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(xds)d}}}}]}]
admin: {address: {socket_address: {address: 127.0.0.1, port_value: %(admin)d}}}
"""

# ---- logs ----------------------------------------------------------------------------------

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3})\]")
SEND = re.compile(r"\bsend node=\S+ type=(\S+) version=(\S+) nonce=(\S+) resources=(\d+)")
ACK = re.compile(r"\b(N?ACK) node=\S+ type=(\S+) version=(\S+) nonce=(\S+)")
SERVING = re.compile(r"\bserving \S+ version (\S+)")
ACCEPTED = re.compile(r"\b(\w+) version (\S+) accepted \((\d+) resources, (\d+) removed\) in (\d+) ms")


def stamp(line):
    """Epoch seconds of a meshproxy log line (local time, ms), or None."""
    m = STAMP.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000.0


class Log:
    """A growing log file read from an offset."""

    def __init__(self, path):
        self.path = path

    def size(self):
        return os.path.getsize(self.path)

    def lines_from(self, offset):
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read()
        # only whole lines
        cut = data.rfind(b"\n")
        return data[:cut + 1].decode(errors="replace").splitlines() if cut >= 0 else []


def wait_push(xlog, offset, t_write, quiet=0.5, timeout=120.0):
    """Follows meshproxy-xds's log from offset until the push is over: a
    reload was served, every response sent since was ACKed (or NACKed), and
    nothing was sent for `quiet` seconds. Returns a dict of times (seconds
    after t_write) and counts."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        served, sends, acks, nacks = False, [], {}, 0
        for line in xlog.lines_from(offset):
            t = stamp(line)
            if SERVING.search(line):
                served = True
            m = SEND.search(line)
            if m and served:
                sends.append((t, m.group(1), m.group(3), int(m.group(4))))
            m = ACK.search(line)
            if m and served:
                acks[m.group(4)] = (t, m.group(2))
                nacks += m.group(1) == "NACK"
        if served and sends and all(s[2] in acks for s in sends):
            last = max(a[0] for a in acks.values())
            if time.time() - max(last, sends[-1][0]) >= quiet:
                cds_acks = [acks[s[2]][0] for s in sends if s[1] == "Cluster"]
                return {
                    "send": sends[0][0] - t_write,
                    "cds_ack": (max(cds_acks) - t_write) if cds_acks else float("nan"),
                    "last_ack": last - t_write,
                    "t_done": last,
                    "sends": len(sends),
                    "nacks": nacks,
                }
        time.sleep(0.05)
    raise RuntimeError("push not ACKed within %ds" % timeout)


def accepted_ms(plog, offset):
    """meshproxy's "<Type> version N accepted (...) in X ms" lines since offset:
    {type: [X, ...]}."""
    out = {}
    for line in plog.lines_from(offset):
        m = ACCEPTED.search(line)
        if m:
            out.setdefault(m.group(1), []).append(int(m.group(5)))
    return out


# ---- processes ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args, work):
        self.args, self.work, self.procs = args, work, []

    def prio(self, offset=0):
        """preexec_fn: SCHED_FIFO at --rt-prio + offset, or nice, or nothing."""
        args = self.args

        def set_prio():
            try:
                if args.sched == "fifo":
                    os.sched_setscheduler(0, os.SCHED_FIFO,
                                          os.sched_param(max(1, args.rt_prio + offset)))
                elif args.sched == "nice":
                    os.setpriority(os.PRIO_PROCESS, 0, -20 if offset >= 0 else 0)
            except OSError:
                pass
        return set_prio

    def start(self, cmd, log, prio_offset=0):
        out = open(os.path.join(self.work, log), "wb")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=self.prio(prio_offset))
        out.close()
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


class AdminProbe(threading.Thread):
    """GET /ready on the admin port every 10 ms; keeps the slowest answer (s)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.worst, self.stop = port, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ready" % self.port,
                                            timeout=30) as r:
                    r.read()
            except OSError:
                pass
            self.worst = max(self.worst, time.monotonic() - t)
            self.stop.wait(0.01)


class Setup:
    """nghttpd + meshproxy-xds serving res/ + the proxy under test."""

    def __init__(self, bench, proxy, up_port):
        args, work = bench.args, bench.work
        self.bench, self.proxy = bench, proxy
        self.res = tempfile.mkdtemp(prefix="res-%s-" % proxy, dir=work)
        self.port = free_port()
        write(os.path.join(self.res, "base.yaml"), BASE % dict(port=self.port, up=up_port))
        self.xds_port = free_port()
        xds_bin = os.environ.get("MESHPROXY_XDS_BIN",
                                 os.path.join(TOP, "build/xds/server/meshproxy-xds"))
        # the control plane stands for another machine: below the data path
        tag = os.path.basename(self.res)
        self.xds = bench.start([xds_bin, "--dir", self.res, "--port", str(self.xds_port),
                                "--%s-only" % args.mode, "-l", "debug"],
                               "xds-%s.log" % tag, prio_offset=-1)
        self.xlog = Log(os.path.join(work, "xds-%s.log" % tag))
        wait_port(self.xds_port, self.xds, timeout=20.0)
        self.admin = free_port()
        boot = os.path.join(work, tag + ".yaml")
        with open(boot, "w") as f:
            f.write(BOOTSTRAP % dict(api="GRPC" if args.mode == "sotw" else "DELTA_GRPC",
                                     xds=self.xds_port, admin=self.admin))
        if proxy == "meshproxy":
            binary = os.environ.get("MESHPROXY_BIN", os.path.join(TOP, "build/proxy/meshproxy"))
        else:
            binary = os.environ["ENVOY_BIN"]
        self.proc = bench.start([binary, "-c", boot, "--concurrency", str(args.workers),
                                 "-l", "info"], "%s.log" % tag)
        self.plog = Log(os.path.join(work, "%s.log" % tag))
        wait_port(self.port, self.proc, timeout=20.0)
        self.wait_ready()
        self.bulk = os.path.join(self.res, "bulk.yaml")

    def wait_ready(self, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ready" % self.admin, timeout=2) as r:
                    if r.status == 200:
                        # and the route works end to end
                        with urllib.request.urlopen("http://127.0.0.1:%d/" % self.port,
                                                    timeout=2) as r2:
                            if r2.status == 200:
                                return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s never ready" % self.proxy)

    def push(self, n):
        """Writes (n > 0) or removes (n == 0) the bulk file; returns the
        push's times, with meshproxy's own accepted lines and the slowest
        admin answer while it ran (the main thread serves admin)."""
        xoff, poff = self.xlog.size(), self.plog.size()
        text = bulk(n) if n else None
        probe = AdminProbe(self.admin)
        probe.start()
        t_write = time.time()
        try:
            if text:
                write(self.bulk, text)
            else:
                os.unlink(self.bulk)
            r = wait_push(self.xlog, xoff, t_write)
        finally:
            probe.stop.set()
            probe.join()
        r["admin_max"] = probe.worst
        r["t_write"] = t_write
        r["accepted"] = accepted_ms(self.plog, poff) if self.proxy == "meshproxy" else {}
        return r

    def rss(self):
        return rss_kib(self.proc.pid)

    def close(self):
        self.bench.stop(self.proc)
        self.bench.stop(self.xds)


# ---- part 1: latency under load -------------------------------------------------------------


def h2load_start(bench, port, seconds, log):
    a = bench.args
    cmd = ["h2load", "-D", str(seconds), "-c", str(a.clients), "-m", "1", "-t", "1",
           "--rps", str(a.rate // a.clients), "--log-file", log,
           "http://127.0.0.1:%d/index.html" % port]
    return bench.start(cmd, "h2load.out")


def read_h2load_log(path):
    """[(start s, duration us, ok)] from h2load's --log-file."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 3:
                out.append((int(p[0]) / 1e6, int(p[2]), p[1].startswith("2")))
    return out


def in_windows(reqs, windows):
    d = sorted(r[1] for r in reqs if any(a <= r[0] < b for a, b in windows))
    failed = sum(1 for r in reqs if not r[2] and any(a <= r[0] < b for a, b in windows))
    return d, failed


def part_load(bench, up_port):
    a = bench.args
    s = Setup(bench, "meshproxy", up_port)
    try:
        per_cycle = a.quiet + 2 * (a.push_budget + a.quiet)
        total = int(a.warmup + a.cycles * per_cycle + 5)
        log = os.path.join(bench.work, "h2load.log")
        load = h2load_start(bench, s.port, total, log)
        time.sleep(a.warmup)
        quiet, pushing, pushes = [], [], []
        for _ in range(a.cycles):
            for n in (a.clusters, 0):
                t0 = time.time()
                time.sleep(a.quiet)
                quiet.append((t0, time.time()))
                r = s.push(n)
                pushing.append((r["t_write"], r["t_done"] + a.tail))
                r["n"] = n
                pushes.append(r)
                # the push is over; let its tail pass before the next quiet window
                time.sleep(max(0.0, r["t_done"] + a.tail - time.time()))
            if load.poll() is not None:
                raise RuntimeError("h2load ended before the pushes did: raise --push-budget")
        end_pushes = time.time()
        load.wait(total + 60)
        bench.procs.remove(load)
        reqs = read_h2load_log(log)
        # the last quiet window: after the pushes, while h2load still runs
        quiet.append((end_pushes + a.tail, min(end_pushes + a.tail + a.quiet,
                                               max(r[0] for r in reqs))))
        qd, qf = in_windows(reqs, quiet)
        pd, pf = in_windows(reqs, pushing)
        total_failed = sum(1 for r in reqs if not r[2])
        print("\n## Latency at %d rps (%d connections), quiet windows vs windows with a push of "
              "%d clusters + %d ClusterLoadAssignments (added, then removed), %d cycles" % (
                  a.rate, a.clients, a.clusters, a.clusters, a.cycles))
        print("push windows: file write -> last ACK + %.2fs tail; %.1fs of pushing in all, "
              "%.1fs quiet" % (a.tail, sum(b - x for x, b in pushing), sum(b - x for x, b in quiet)))
        for r, w in zip(pushes, pushing):
            d, _ = in_windows(reqs, [w])
            r["window"] = "%d requests, p50 %d us, p99 %d us, max %d us" % (
                len(d), percentile(d, 50), percentile(d, 99), d[-1] if d else 0)
        for r in pushes:
            acc = ", ".join("%s %s ms" % (k, "/".join(str(v) for v in vs))
                            for k, vs in sorted(r["accepted"].items()))
            print("  %s %5d: write->send %4.0f ms, ->CDS ACK %5.0f ms, ->last ACK %5.0f ms "
                  "(%d responses, %d NACKs); slowest admin answer %.0f ms; meshproxy: %s" % (
                      "add   " if r["n"] else "remove", a.clusters, r["send"] * 1e3,
                      r["cds_ack"] * 1e3, r["last_ack"] * 1e3, r["sends"], r["nacks"],
                      r["admin_max"] * 1e3, acc))
            print("         window: %s" % r["window"])
        head = "| %-12s | %9s | %8s | %8s | %6s |"
        print(head % ("window", "requests", "p50 us", "p99 us", "failed"))
        print(head % ("---", "---:", "---:", "---:", "---:"))
        row = "| %-12s | %9d | %8d | %8d | %6d |"
        print(row % ("quiet", len(qd), percentile(qd, 50), percentile(qd, 99), qf))
        print(row % ("during push", len(pd), percentile(pd, 50), percentile(pd, 99), pf))
        q50, q99 = percentile(qd, 50), percentile(qd, 99)
        p50, p99 = percentile(pd, 50), percentile(pd, 99)
        print("ratio push/quiet: p50 %.3f, p99 %.3f (p99 %+.1f%%; target < +10%%); max during "
              "push %d us, quiet %d us; %d failed requests in the whole run" % (
                  p50 / q50, p99 / q99, (p99 / q99 - 1) * 100, pd[-1] if pd else 0,
                  qd[-1] if qd else 0, total_failed))
    finally:
        s.close()


# ---- part 2: push-to-ACK and memory ---------------------------------------------------------


def part_figures(bench, up_port, proxy):
    a = bench.args
    s = Setup(bench, proxy, up_port)
    try:
        time.sleep(1)
        rows = []
        rss = {"idle": s.rss()}
        for n, label in ((a.small, "small"), (0, None), (a.clusters, "large"), (0, None)):
            r = s.push(n)
            r["n"] = n
            rows.append(r)
            time.sleep(1)
            if label:
                rss[label] = s.rss()
        rss["after"] = s.rss()
        print("\n## %s: push to ACK (no load; %s)" % (proxy, a.mode))
        print("| push | write->first send ms | write->CDS ACK ms | write->last ACK ms | responses "
              "| slowest admin answer ms | meshproxy accepted (ms per update) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        sizes = [a.small, a.small, a.clusters, a.clusters]
        for r, size in zip(rows, sizes):
            acc = "; ".join("%s %s" % (k, "/".join(str(v) for v in vs))
                            for k, vs in sorted(r["accepted"].items())) or "-"
            print("| %s %d clusters + %d CLAs | %.0f | %.0f | %.0f | %d | %.0f | %s |" % (
                "add" if r["n"] else "remove", size, size, r["send"] * 1e3, r["cds_ack"] * 1e3,
                r["last_ack"] * 1e3, r["sends"], r["admin_max"] * 1e3, acc))
        print("%s VmRSS: idle %.1f MiB, %d clusters %.1f MiB, %d clusters %.1f MiB, "
              "all removed again %.1f MiB" % (proxy, rss["idle"] / 1024.0, a.small,
                                              rss["small"] / 1024.0, a.clusters,
                                              rss["large"] / 1024.0, rss["after"] / 1024.0))
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=1000, help="requests per second (default 1000)")
    ap.add_argument("--clients", type=int, default=4, help="connections (default 4)")
    ap.add_argument("--clusters", type=int, default=10000, help="clusters in the large push")
    ap.add_argument("--small", type=int, default=1000, help="clusters in the small push (part 2)")
    ap.add_argument("--cycles", type=int, default=3, help="add+remove cycles under load")
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds of each quiet window")
    ap.add_argument("--tail", type=float, default=0.25,
                    help="seconds after the last ACK still counted as the push window")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    ap.add_argument("--push-budget", type=float, default=15.0,
                    help="seconds allowed per push when sizing the h2load run")
    ap.add_argument("--workers", type=int, default=1, help="meshproxy worker threads")
    ap.add_argument("--mode", choices=("sotw", "delta"), default="sotw", help="ADS variant")
    ap.add_argument("--sched", choices=("fifo", "nice", "none"),
                    default="fifo" if os.geteuid() == 0 else "none",
                    help="priority of the benchmark's processes: SCHED_FIFO (default as root; "
                         "meshproxy-xds one below the rest), nice -20 (meshproxy-xds not "
                         "raised), or as started")
    ap.add_argument("--rt-prio", type=int, default=10)
    ap.add_argument("--body", type=int, default=1024, help="response body bytes")
    ap.add_argument("--skip-load", action="store_true", help="only part 2")
    ap.add_argument("--skip-figures", action="store_true", help="only part 1")
    args = ap.parse_args()
    if args.rate % args.clients:
        ap.error("--rate must be a multiple of --clients")
    work = tempfile.mkdtemp(prefix="mp-xdsperf-")
    bench = Bench(args, work)
    # this script (log follower, admin probe) runs below everything it measures
    bench.prio(-2)()
    try:
        docroot = os.path.join(work, "www")
        os.makedirs(docroot)
        with open(os.path.join(docroot, "index.html"), "wb") as f:
            f.write(b"x" * args.body)
        up = free_port()
        ng = bench.start(["nghttpd", "--no-tls", "-d", docroot, str(up)], "nghttpd.log")
        wait_port(up, ng)
        print("%s; %d cores; load average %.1f; meshproxy %d worker(s); ADS %s; sched %s" % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(),
            os.getloadavg()[0], args.workers, args.mode, args.sched))
        if not args.skip_figures:
            part_figures(bench, up, "meshproxy")
            if os.environ.get("ENVOY_BIN"):
                part_figures(bench, up, "envoy")
        if not args.skip_load:
            part_load(bench, up)
    finally:
        bench.stop_all()
        if os.environ.get("XDSPERF_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
