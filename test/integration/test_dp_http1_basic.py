"""HTTP/1.1 end to end: curl -> meshproxy -> python upstream, and the
router's local answers (direct_response, redirect, 404), header rules and
rewrites."""
import json
import subprocess

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy,
                     python_upstream, read_requests)

ROUTES = """
              - match: {prefix: "/direct"}
                direct_response: {status: 201, body: {inline_string: "hello direct\\n"}}
              - match: {prefix: "/moved"}
                redirect: {path_redirect: "/new", response_code: PERMANENT_REDIRECT}
              - match: {prefix: "/rewrite/"}
                route: {cluster: up, prefix_rewrite: "/headers/", host_rewrite_literal: "rewritten.example"}
              - match: {prefix: "/hdrs"}
                route: {cluster: up, prefix_rewrite: "/headers"}
                request_headers_to_add:
                - header: {key: x-added, value: "yes"}
                request_headers_to_remove: ["x-remove-me"]
                response_headers_to_add:
                - header: {key: x-resp-added, value: "r1"}
              - match: {prefix: "/"}
                route: {cluster: up}
"""


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    with python_upstream(tmp_path) as (up_port, up_log):
        cfg = bootstrap(listener_yaml(port, ROUTES, extra_hcm="          use_remote_address: true"),
                        cluster_yaml("up", up_port))
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            yield port, up_log, proxy


def curl(*args):
    r = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, timeout=20)
    return r.stdout


def test_proxies_get_and_keeps_alive(setup):
    port, up_log, proxy = setup
    url = "http://127.0.0.1:%d/a" % port
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\\n",
                          url, url], capture_output=True, text=True, timeout=20).stdout.split()
    assert out == ["200", "1", "200", "0"]  # the second request reused the connection
    status, headers, body = http_get(url)
    assert status == 200 and body == b"ok /a\n"
    assert headers["server"] == "meshproxy"
    assert "x-envoy-upstream-service-time" in headers
    st = proxy.stats()
    assert st["http.ingress.downstream_rq_2xx"] >= 3
    assert st["cluster.up.upstream_rq_total"] >= 3
    assert st["listener.127.0.0.1_%d.downstream_cx_total" % port] >= 2


def test_request_headers_as_envoy(setup):
    port, up_log, _ = setup
    raw = curl("-H", "Connection: keep-alive, x-hop", "-H", "x-hop: 1", "-H", "keep-alive: 5",
               "-H", "x-forwarded-for: 10.1.1.1", "http://127.0.0.1:%d/headers" % port)
    seen = json.loads(raw)
    assert "x-hop" not in seen and "keep-alive" not in seen
    assert seen.get("connection", "keep-alive").lower() != "x-hop"
    assert seen["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    rid = seen["x-request-id"]
    assert len(rid) == 36 and rid[14] == "4"
    assert seen["host"] == "127.0.0.1:%d" % port
    # a request id the client sent is kept
    seen = json.loads(curl("-H", "x-request-id: abc", "http://127.0.0.1:%d/headers" % port))
    assert seen["x-request-id"] == "abc"


def test_post_bodies_content_length_and_chunked(setup):
    port, up_log, _ = setup
    body = b"z" * 300000
    status, _, got = http_get("http://127.0.0.1:%d/echo" % port, method="POST", data=body)
    assert status == 200 and got == body
    out = subprocess.run(["curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                          "http://127.0.0.1:%d/echo" % port], input=b"q" * 70000,
                         capture_output=True, timeout=20).stdout
    assert out == b"q" * 70000


def test_expect_100_continue(setup):
    port, up_log, _ = setup
    out = subprocess.run(["curl", "-s", "-H", "Expect: 100-continue", "--data-binary", "@-",
                          "http://127.0.0.1:%d/echo" % port], input=b"e" * 5000,
                         capture_output=True, timeout=20).stdout
    assert out == b"e" * 5000
    assert "expect" not in read_requests(up_log)[-1]["headers"]


def test_direct_response_redirect_and_no_route(setup, tmp_path):
    port, _, proxy = setup
    status, headers, body = http_get("http://127.0.0.1:%d/direct" % port)
    assert status == 201 and body == b"hello direct\n"
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          "http://127.0.0.1:%d/moved?x=1" % port], capture_output=True, text=True,
                         timeout=20).stdout
    assert out.startswith("308 http://127.0.0.1:%d/new" % port)
    assert proxy.stats()["http.ingress.rq_direct_response"] >= 1


def test_rewrites_and_header_mutations(setup):
    port, up_log, _ = setup
    seen = json.loads(curl("http://127.0.0.1:%d/rewrite/x" % port))
    assert seen["host"] == "rewritten.example"
    req = read_requests(up_log)[-1]
    assert req["path"] == "/headers/x"
    assert req["headers"]["x-envoy-original-path"] == "/rewrite/x"
    raw = subprocess.run(["curl", "-s", "-i", "-H", "x-remove-me: 1",
                          "http://127.0.0.1:%d/hdrs" % port], capture_output=True,
                         timeout=20).stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    seen = json.loads(body)
    assert seen["x-added"] == "yes" and "x-remove-me" not in seen
    assert b"x-resp-added: r1" in head.lower()


def test_http10_and_head(setup):
    port, _, _ = setup
    out = subprocess.run(["curl", "-s", "-0", "-i", "http://127.0.0.1:%d/h10" % port],
                         capture_output=True, text=True, timeout=20).stdout
    assert out.startswith("HTTP/1.0 200")
    assert out.endswith("ok /h10\n")
    out = subprocess.run(["curl", "-s", "-I", "http://127.0.0.1:%d/bytes/100" % port],
                         capture_output=True, text=True, timeout=20).stdout
    assert out.startswith("HTTP/1.1 200") and "content-length: 100" in out.lower()
