"""HCM tracing with the Zipkin tracer, end to end: curl -> meshproxy ->
python upstream (which echoes the headers it got), and a python Zipkin
collector receiving POST /api/v2/spans. Checks B3 propagation (shared span
context on ingress, a child upstream span on egress with
spawn_upstream_span), Envoy's tags, sampling (0% sends nothing unless
x-envoy-force-trace) and the flush of buffered spans at shutdown."""
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import bootstrap, cluster_yaml, free_port, listener_yaml, meshproxy, python_upstream

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: up}
"""

ZIPKIN = """
            provider:
              name: envoy.tracers.zipkin
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
                collector_cluster: zipkin
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_JSON"""

INGRESS_TRACING = """          tracing:
            random_sampling: {value: 100}
            max_path_tag_length: 12
            verbose: true
            custom_tags:
            - tag: lit
              literal: {value: "v1"}
            - tag: tenant
              request_header: {name: x-tenant, default_value: none}
            - tag: envtag
              environment: {name: MP_TRACING_TEST_ENV, default_value: dflt}""" + ZIPKIN

EGRESS_TRACING = """          tracing:
            random_sampling: {value: 0}
            spawn_upstream_span: true""" + ZIPKIN


class Collector:
    """A Zipkin collector: keeps every span POSTed to /api/v2/spans."""

    def __init__(self):
        self.spans = []
        self.posts = 0
        self.lock = threading.Lock()
        coll = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ok = self.path == "/api/v2/spans" and \
                    self.headers.get("Content-Type") == "application/json"
                if ok:
                    with coll.lock:
                        coll.spans.extend(json.loads(body))
                        coll.posts += 1
                self.send_response(202 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, pred, count=1, timeout=9.0):
        """Spans matching pred, once at least count arrived (the proxy flushes every 5 s)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = [s for s in self.spans if pred(s)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def curl_headers(port, *headers, path="/headers"):
    args = ["curl", "-s", "--max-time", "10"]
    for h in headers:
        args += ["-H", h]
    r = subprocess.run(args + ["http://127.0.0.1:%d%s" % (port, path)], capture_output=True,
                       timeout=20)
    return json.loads(r.stdout) if path.startswith("/headers") else r.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tracing")
    coll = Collector()
    ingress, egress = free_port(), free_port()
    os.environ["MP_TRACING_TEST_ENV"] = "from-env"
    try:
        with python_upstream(tmp) as (up_port, _):
            out = listener_yaml(egress, ROUTES, extra_hcm=EGRESS_TRACING, name="egress",
                                stat_prefix="egress")
            out = out.replace("    address:", "    traffic_direction: OUTBOUND\n    address:", 1)
            cfg = bootstrap(listener_yaml(ingress, ROUTES, extra_hcm=INGRESS_TRACING) + out,
                            cluster_yaml("up", up_port) + cluster_yaml("zipkin", coll.port))
            with meshproxy(tmp, cfg, [ingress, egress], concurrency=1) as proxy:
                yield {"ingress": ingress, "egress": egress, "coll": coll, "proxy": proxy,
                       "tmp": tmp, "cfg": cfg}
    finally:
        os.environ.pop("MP_TRACING_TEST_ENV", None)
        coll.close()


def test_new_trace_ingress(env):
    seen = curl_headers(env["ingress"], "x-tenant: acme", "User-Agent: tracer-test",
                        path="/headers/a/long/path")
    tid, sid = seen["x-b3-traceid"], seen["x-b3-spanid"]
    assert len(tid) == 16 and len(sid) == 16
    assert seen["x-b3-sampled"] == "1"
    assert "x-b3-parentspanid" not in seen
    rid = seen["x-request-id"]
    assert rid[14] == "9"  # the sampling decision travels in the request id
    spans = env["coll"].wait_for(lambda s: s["traceId"] == tid)
    assert len(spans) == 1
    s = spans[0]
    assert s["id"] == sid and "parentId" not in s
    assert s["kind"] == "SERVER"
    assert s["name"] == "127.0.0.1:%d" % env["ingress"]
    assert s["localEndpoint"]["serviceName"]
    assert s["remoteEndpoint"]["ipv4"] == "127.0.0.1"
    assert s["duration"] > 0 and s["timestamp"] > 1.6e15
    t = s["tags"]
    assert t["http.method"] == "GET"
    assert t["http.status_code"] == "200"
    assert t["http.url"] == "http://127.0.0.1:%d/headers/a/l" % env["ingress"]  # 12 chars of path
    assert t["http.protocol"] == "HTTP/1.1"
    assert t["upstream_cluster"] == "up"
    assert t["component"] == "proxy"
    assert t["guid:x-request-id"] == rid
    assert t["response_flags"] == "-"
    assert t["user_agent"] == "tracer-test"
    assert t["downstream_cluster"] == "-"
    assert t["peer.address"] == "127.0.0.1"
    assert int(t["response_size"]) > 0 and t["request_size"] == "0"
    assert t["lit"] == "v1" and t["tenant"] == "acme" and t["envtag"] == "from-env"
    assert "error" not in t
    # verbose: Envoy's span logs as Zipkin annotations, in order within the span
    ann = [a["value"] for a in s["annotations"]]
    assert ann == ["last_downstream_rx_byte_received", "first_downstream_tx_byte_sent",
                   "last_downstream_tx_byte_sent"]
    assert all(s["timestamp"] <= a["timestamp"] <= s["timestamp"] + s["duration"] + 1
               for a in s["annotations"])


def test_incoming_b3_shared_span(env):
    curl_headers(env["ingress"], "x-b3-traceid: 463ac35c9f6413ad48485a3953bb6124",
                        "x-b3-spanid: a2fb4a1d1a96d312", "x-b3-parentspanid: 0020000000000001",
                        "x-b3-sampled: 1", path="/status/503")
    # ingress with shared span context: the proxy's span is the caller's span
    spans = env["coll"].wait_for(lambda s: s["traceId"] == "463ac35c9f6413ad48485a3953bb6124")
    assert len(spans) == 1
    s = spans[0]
    assert s["id"] == "a2fb4a1d1a96d312" and s["parentId"] == "0020000000000001"
    assert s.get("shared") is True and s["kind"] == "SERVER"
    assert s["tags"]["http.status_code"] == "503" and s["tags"]["error"] == "true"
    assert s["tags"]["tenant"] == "none" and s["tags"]["envtag"] == "from-env"
    # what the upstream saw
    seen = curl_headers(env["ingress"], "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
    assert seen["x-b3-traceid"] == "80f198ee56343ba864fe8b2a57d3eff7"
    assert seen["x-b3-spanid"] == "e457b5a2e4d86bd1"
    assert seen["x-b3-sampled"] == "1"
    assert "b3" not in seen


def test_egress_child_span_and_sampling(env):
    coll = env["coll"]
    port = env["egress"]
    # 0%: no trace, but the decision still propagates
    seen = curl_headers(port)
    unsampled_tid = seen["x-b3-traceid"]
    assert seen["x-b3-sampled"] == "0"
    assert seen["x-request-id"][14] == "4"
    # forced
    forced = curl_headers(port, "x-envoy-force-trace: true")
    assert forced["x-b3-sampled"] == "1" and forced["x-request-id"][14] == "a"
    # an incoming sampled context is honoured at 0% too; the upstream sees a
    # new span id whose parent is the proxy's span
    seen = curl_headers(port, "x-b3-traceid: 00000000000000aa", "x-b3-spanid: 00000000000000bb",
                        "x-b3-sampled: 1")
    assert seen["x-b3-traceid"] == "00000000000000aa"
    child_id, proxy_id = seen["x-b3-spanid"], seen["x-b3-parentspanid"]
    assert child_id not in ("00000000000000bb", proxy_id)
    spans = coll.wait_for(lambda s: s["traceId"] == "00000000000000aa", count=2)
    by_id = {s["id"]: s for s in spans}
    assert set(by_id) == {proxy_id, child_id}
    assert by_id[proxy_id]["parentId"] == "00000000000000bb"
    assert by_id[proxy_id]["kind"] == "CLIENT" and "shared" not in by_id[proxy_id]
    assert by_id[child_id]["parentId"] == proxy_id and by_id[child_id]["kind"] == "CLIENT"
    assert by_id[child_id]["tags"]["upstream_address"].startswith("127.0.0.1:")
    assert coll.wait_for(lambda s: s["traceId"] == forced["x-b3-traceid"], count=2)
    # by now the unsampled request's flush window has passed
    assert coll.wait_for(lambda s: s["traceId"] == unsampled_tid, timeout=0.5) == []
    # Envoy's tracing stats
    deadline = time.monotonic() + 3
    while True:
        st = env["proxy"].stats()
        if st.get("tracing.zipkin.reports_sent", 0) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert st["http.egress.tracing.not_traceable"] >= 2  # the unsampled and the B3-sampled one
    assert st["http.egress.tracing.service_forced"] == 1
    assert st["http.ingress.tracing.random_sampling"] >= 3
    assert st["tracing.zipkin.spans_sent"] >= 6
    assert st["tracing.zipkin.reports_sent"] >= 2
    assert st["tracing.zipkin.timer_flushed"] >= 2
    assert st.get("tracing.zipkin.reports_failed", 0) == 0


def test_spans_flushed_at_shutdown(tmp_path):
    coll = Collector()
    port = free_port()
    try:
        with python_upstream(tmp_path) as (up_port, _):
            cfg = bootstrap(listener_yaml(port, ROUTES, extra_hcm=INGRESS_TRACING),
                            cluster_yaml("up", up_port) + cluster_yaml("zipkin", coll.port))
            with meshproxy(tmp_path, cfg, [port], concurrency=1):
                seen = curl_headers(port)
                t0 = time.monotonic()
            # the proxy stopped well before its 5 s flush timer
            assert time.monotonic() - t0 < 4.5
            spans = coll.wait_for(lambda s: s["traceId"] == seen["x-b3-traceid"], timeout=2)
            assert len(spans) == 1
    finally:
        coll.close()


OTEL_TRACING = """          tracing:
            random_sampling: {value: 100}
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                service_name: otel-svc
                grpc_service:
                  envoy_grpc: {cluster_name: otel}
                  timeout: 2s"""


def test_opentelemetry_otlp_export(tmp_path):
    """W3C traceparent propagation and an OTLP ExportTraceServiceRequest to a
    gRPC collector (raw bytes checked: the OTLP protos are not compiled here)."""
    import binascii
    from concurrent import futures

    import grpc

    got = []

    def export(req, ctx):
        got.append(req)
        return b""  # an empty ExportTraceServiceResponse

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)}),))
    gport = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port = free_port()
    try:
        with python_upstream(tmp_path) as (up_port, _):
            cfg = bootstrap(listener_yaml(port, ROUTES, extra_hcm=OTEL_TRACING),
                            cluster_yaml("up", up_port) + cluster_yaml("otel", gport, http2=True))
            with meshproxy(tmp_path, cfg, [port], concurrency=1):
                tid = "0af7651916cd43dd8448eb211c80319c"
                seen = curl_headers(port, "traceparent: 00-%s-b7ad6b7169203331-01" % tid,
                                    "tracestate: k=v")
                ver, t, sid, flags = seen["traceparent"].split("-")
                assert (ver, t, flags) == ("00", tid, "01")
                assert sid != "b7ad6b7169203331" and len(sid) == 16
                assert seen["tracestate"] == "k=v"
                deadline = time.monotonic() + 9
                while not got and time.monotonic() < deadline:
                    time.sleep(0.1)
        assert got, "no OTLP export arrived"
        body = b"".join(got)
        assert binascii.unhexlify(tid) in body
        assert binascii.unhexlify(sid) in body  # the proxy's span
        assert binascii.unhexlify("b7ad6b7169203331") in body  # its parent
        assert b"service.name" in body and b"otel-svc" in body
        assert b"http.status_code" in body and b"ingress" in body
    finally:
        server.stop(0)
