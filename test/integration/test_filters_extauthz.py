"""ext_authz (gRPC and HTTP services) and the global ratelimit filter, with
real processes: a Python grpcio authorization + rate limit server
(authz_servers.py), a Python HTTP upstream, meshproxy from a static
bootstrap, and curl as the client.
"""
import os
import socket
import subprocess
import time

import pytest

from helpers import (HERE, MESHPROXY_BIN, PYTHON, bootstrap, cluster_yaml, free_port, meshproxy,
                     python_upstream, read_requests, start_process, stop_process, wait_port)

PROTO_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(MESHPROXY_BIN))),
                         "protos", "src")
ROOTS = ["envoy/service/auth/v3/external_auth.proto", "envoy/service/ratelimit/v3/rls.proto"]


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory):
    if not os.path.isdir(PROTO_SRC):
        pytest.skip("no extracted protos next to %s" % MESHPROXY_BIN)
    out = str(tmp_path_factory.mktemp("protos") / "services.pb")
    subprocess.run(["protoc", "-I", PROTO_SRC, "--include_imports", "--descriptor_set_out=" + out]
                   + ROOTS, check=True, timeout=60)
    return out


@pytest.fixture
def servers(tmp_path, descriptor_set):
    grpc_port, http_port = free_port(), free_port()
    logdir = tmp_path / "authz"
    logdir.mkdir()
    proc = start_process([PYTHON, os.path.join(HERE, "authz_servers.py"), str(grpc_port),
                          str(http_port), str(logdir), descriptor_set],
                         str(tmp_path / "authz.out"))
    try:
        wait_port(grpc_port, proc=proc)
        wait_port(http_port, proc=proc)
        yield grpc_port, http_port, logdir
    finally:
        stop_process(proc)


def curl(port, path, headers=(), host=None, extra=()):
    """GET with curl; returns (status, headers dict lower-cased, body text)."""
    args = ["curl", "-s", "-S", "-m", "10", "-D", "-", "http://127.0.0.1:%d%s" % (port, path),
            *extra]
    for h in headers:
        args += ["-H", h]
    if host:
        args += ["-H", "Host: " + host]
    out = subprocess.run(args, capture_output=True, timeout=20, check=True).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    while lines[0].split()[1] == "100":  # Expect: 100-continue interim answer
        head, _, body = body.partition("\r\n\r\n")
        lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def hcm(port, prefix, filters, rate_limits=True):
    rl = """
              rate_limits:
              - actions:
                - request_headers: {header_name: ":path", descriptor_key: path}
                - remote_address: {}
                - generic_key: {descriptor_value: meshproxy}""" if rate_limits else ""
    return """
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]%s
              routes:
              - match: {prefix: "/open"}
                route: {cluster: app}
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    disabled: true
              - match: {prefix: "/"}
                route: {cluster: app}
          http_filters:%s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (prefix, port, prefix, rl, filters)


def grpc_authz(cluster, failure_mode_allow=False, timeout="1s"):
    return """
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: %s
              failure_mode_allow_header_add: true
              grpc_service:
                envoy_grpc: {cluster_name: %s}
                timeout: %s""" % ("true" if failure_mode_allow else "false", cluster, timeout)


HTTP_AUTHZ = """
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              allowed_headers:
                patterns: [{exact: x-authz}]
              http_service:
                server_uri: {uri: "http://authz.local", cluster: authz_http, timeout: 1s}
                path_prefix: /check
                authorization_response:
                  allowed_upstream_headers:
                    patterns: [{exact: x-authz-user}]"""

RATELIMIT = """
          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: test
              timeout: 1s
              rate_limit_service:
                transport_api_version: V3
                grpc_service:
                  envoy_grpc: {cluster_name: rls}"""


def grpc_cluster(name, port):
    return cluster_yaml(name, port, http2=True)


def test_grpc_authz_and_ratelimit(tmp_path, servers):
    grpc_port, _, logdir = servers
    port = free_port()
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(port, "guarded", grpc_authz("authz") + RATELIMIT),
                        cluster_yaml("app", app_port) + grpc_cluster("authz", grpc_port) +
                        grpc_cluster("rls", grpc_port))
        with meshproxy(tmp_path, cfg, listen_ports=[port]) as mp:
            # allowed: the server's header reaches the upstream, its response
            # header reaches the client, headers_to_remove is applied
            st, h, body = curl(port, "/hello?q=1", ["x-remove-me: 1", "x-custom: a"])
            assert st == 200, (st, h, body, mp.log())
            assert h.get("x-authz-checked") == "yes"
            seen = read_requests(app_log)[-1]
            assert seen["path"] == "/hello?q=1"
            assert seen["headers"].get("x-authz-user") == "alice"
            assert "x-remove-me" not in seen["headers"]

            # what the authorization server was told
            chk = read_requests(str(logdir / "check.jsonl"))[-1]["attributes"]
            http = chk["request"]["http"]
            assert http["method"] == "GET"
            assert http["path"] == "/hello?q=1"
            assert http["host"] == "127.0.0.1:%d" % port
            assert http["headers"]["x-custom"] == "a"
            assert http["protocol"] == "HTTP/1.1"
            assert chk["source"]["address"]["socket_address"]["address"] == "127.0.0.1"
            assert chk["destination"]["address"]["socket_address"]["port_value"] == port

            # the rate limit service got the route's descriptor
            rls = read_requests(str(logdir / "rls.jsonl"))[-1]
            assert rls["domain"] == "test"
            entries = {e["key"]: e["value"] for e in rls["descriptors"][0]["entries"]}
            assert entries == {"path": "/hello?q=1", "remote_address": "127.0.0.1",
                               "generic_key": "meshproxy"}

            # denied: the server's status, header and body go to the client
            n_up = len(read_requests(app_log))
            st, h, body = curl(port, "/secret", ["x-authz: deny"])
            assert st == 403
            assert h.get("x-denied-by") == "test-authz"
            assert body == "denied by policy"
            assert len(read_requests(app_log)) == n_up

            # per-route disabled: no check
            n_chk = len(read_requests(str(logdir / "check.jsonl")))
            st, _, _ = curl(port, "/open", ["x-authz: deny"])
            assert st == 200
            assert len(read_requests(str(logdir / "check.jsonl"))) == n_chk

            # over limit: 429 with x-envoy-ratelimited, never upstream
            st, h, _ = curl(port, "/limited")
            assert st == 429
            assert h.get("x-envoy-ratelimited") == "true"
            assert h.get("x-ratelimit-reason") == "test"
            assert len(read_requests(app_log)) == n_up + 1

            stats = mp.stats()
            assert stats.get("http.guarded.ext_authz.ok", 0) >= 2, stats
            assert stats.get("http.guarded.ext_authz.denied") == 1
            assert stats.get("cluster.app.ratelimit.over_limit") == 1
            assert stats.get("cluster.app.ratelimit.ok", 0) >= 2


def test_authz_server_down(tmp_path, servers):
    grpc_port, _, _ = servers
    dead = free_port()  # nothing listens there
    allow_port, deny_port = free_port(), free_port()
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(
            hcm(allow_port, "allow", grpc_authz("dead", failure_mode_allow=True) + RATELIMIT) +
            hcm(deny_port, "deny", grpc_authz("dead", failure_mode_allow=False), rate_limits=False),
            cluster_yaml("app", app_port) + grpc_cluster("dead", dead) +
            grpc_cluster("rls", grpc_port))
        with meshproxy(tmp_path, cfg, listen_ports=[allow_port, deny_port]) as mp:
            st, _, _ = curl(allow_port, "/a")
            assert st == 200
            seen = read_requests(app_log)[-1]
            assert seen["headers"].get("x-envoy-auth-failure-mode-allowed") == "true"
            st, _, _ = curl(deny_port, "/b")
            assert st == 403
            stats = mp.stats()
            assert stats.get("http.allow.ext_authz.error") == 1
            assert stats.get("http.allow.ext_authz.failure_mode_allowed") == 1
            assert stats.get("http.deny.ext_authz.error") == 1
            assert len(read_requests(app_log)) == 1


def test_ratelimit_service_down(tmp_path):
    dead = free_port()
    port, deny_port = free_port(), free_port()
    deny = RATELIMIT.replace("domain: test", "domain: test\n              failure_mode_deny: true")
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(port, "open", RATELIMIT) + hcm(deny_port, "closed", deny),
                        cluster_yaml("app", app_port) + grpc_cluster("rls", dead))
        with meshproxy(tmp_path, cfg, listen_ports=[port, deny_port]) as mp:
            st, _, _ = curl(port, "/x")
            assert st == 200
            st, _, _ = curl(deny_port, "/x")
            assert st == 500
            stats = mp.stats()
            assert stats.get("cluster.app.ratelimit.error") == 2
            assert stats.get("cluster.app.ratelimit.failure_mode_allowed") == 1


def test_http_service(tmp_path, servers):
    _, http_port, logdir = servers
    port = free_port()
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(port, "httpauthz", HTTP_AUTHZ, rate_limits=False),
                        cluster_yaml("app", app_port) + cluster_yaml("authz_http", http_port))
        with meshproxy(tmp_path, cfg, listen_ports=[port]) as mp:
            st, _, _ = curl(port, "/doc", ["x-authz: allow", "authorization: Bearer t",
                                           "x-other: no"])
            assert st == 200, mp.log()
            asked = read_requests(str(logdir / "http.jsonl"))[-1]
            assert asked["path"] == "/check/doc"
            assert asked["headers"]["authorization"] == "Bearer t"
            assert asked["headers"]["x-authz"] == "allow"
            assert "x-other" not in asked["headers"]
            seen = read_requests(app_log)[-1]
            assert seen["headers"].get("x-authz-user") == "bob"
            assert "x-not-forwarded" not in seen["headers"]

            st, h, body = curl(port, "/doc", ["x-authz: deny"])
            assert st == 401
            assert h.get("x-denied-by") == "http-authz"
            assert body == "denied over http"
            assert len(read_requests(app_log)) == 1
            stats = mp.stats()
            assert stats.get("http.httpauthz.ext_authz.ok") == 1
            assert stats.get("http.httpauthz.ext_authz.denied") == 1


def test_body_http2_and_client_abort(tmp_path, servers):
    """A request body waits while the check runs; HTTP/2 downstream works the
    same; a client that goes away mid-check leaves the proxy healthy (the
    late answer is dropped, not delivered to a freed stream)."""
    grpc_port, _, logdir = servers
    port = free_port()
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(port, "guarded", grpc_authz("authz") + RATELIMIT),
                        cluster_yaml("app", app_port) + grpc_cluster("authz", grpc_port) +
                        grpc_cluster("rls", grpc_port))
        with meshproxy(tmp_path, cfg, listen_ports=[port]) as mp:
            payload = "x" * 70000
            st, _, body = curl(port, "/echo", ["x-authz-delay-ms: 100"],
                               extra=["--data-binary", payload])
            assert st == 200
            assert body == payload
            assert read_requests(app_log)[-1]["headers"].get("x-authz-user") == "alice"

            st, h, body = curl(port, "/h2", extra=["--http2-prior-knowledge"])
            assert st == 200
            assert h.get("x-authz-checked") == "yes"
            st, h, body = curl(port, "/h2", ["x-authz: deny"], extra=["--http2-prior-knowledge"])
            assert st == 403 and body == "denied by policy"
            st, h, _ = curl(port, "/limited", extra=["--http2-prior-knowledge"])
            assert st == 429 and h.get("x-envoy-ratelimited") == "true"

            # clients that give up while their check is in flight
            n_up = len(read_requests(app_log))
            for proto in ([], ["--http2-prior-knowledge"]):
                r = subprocess.run(["curl", "-s", "-m", "0.2", *proto, "-H",
                                    "x-authz-delay-ms: 600",
                                    "http://127.0.0.1:%d/gone" % port],
                                   capture_output=True, timeout=20)
                assert r.returncode == 28  # curl: timed out
            time.sleep(1.0)  # the late answers arrive and are dropped
            assert len(read_requests(app_log)) == n_up
            st, _, _ = curl(port, "/after")
            assert st == 200
            assert mp.proc.poll() is None


def test_concurrent_requests(tmp_path, servers):
    """Many streams on several connections at once, each with a check and a
    rate limit call in flight: every one is answered, counted once."""
    grpc_port, _, _ = servers
    port = free_port()
    with python_upstream(tmp_path) as (app_port, _):
        cfg = bootstrap(hcm(port, "load", grpc_authz("authz") + RATELIMIT),
                        cluster_yaml("app", app_port) + grpc_cluster("authz", grpc_port) +
                        grpc_cluster("rls", grpc_port))
        with meshproxy(tmp_path, cfg, listen_ports=[port]) as mp:
            r = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "16",
                                "http://127.0.0.1:%d/load" % port],
                               capture_output=True, timeout=60)
            out = r.stdout.decode()
            assert "400 succeeded" in out, out
            assert "status codes: 400 2xx" in out, out
            stats = mp.stats()
            assert stats.get("http.load.ext_authz.ok") == 400
            assert stats.get("cluster.app.ratelimit.ok") == 400


def test_route_rate_limits_and_filter_enabled(tmp_path, servers):
    """Route-level rate_limits replace the virtual host's unless
    include_vh_rate_limits; filter_enabled at 0% skips the check."""
    grpc_port, _, logdir = servers
    port = free_port()
    listener = """
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: routes
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              rate_limits:
              - actions: [{generic_key: {descriptor_value: vh}}]
              routes:
              - match: {prefix: "/own"}
                route:
                  cluster: app
                  rate_limits:
                  - actions: [{generic_key: {descriptor_value: own}}]
              - match: {prefix: "/both"}
                route:
                  cluster: app
                  include_vh_rate_limits: true
                  rate_limits:
                  - actions: [{destination_cluster: {}}]
              - match: {prefix: "/"}
                route: {cluster: app}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              filter_enabled: {default_value: {numerator: 0}}
              grpc_service: {envoy_grpc: {cluster_name: authz}}%s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (port, RATELIMIT)
    with python_upstream(tmp_path) as (app_port, _):
        cfg = bootstrap(listener, cluster_yaml("app", app_port) +
                        grpc_cluster("authz", grpc_port) + grpc_cluster("rls", grpc_port))
        with meshproxy(tmp_path, cfg, listen_ports=[port]) as mp:
            got = []
            for path in ("/plain", "/own", "/both"):
                st, _, _ = curl(port, path, ["x-authz: deny"])
                assert st == 200  # never checked
                rls = read_requests(str(logdir / "rls.jsonl"))[-1]
                got.append([{e["key"]: e["value"] for e in d["entries"]}
                            for d in rls["descriptors"]])
            assert got == [[{"generic_key": "vh"}],
                           [{"generic_key": "own"}],
                           [{"destination_cluster": "app"}, {"generic_key": "vh"}]]
            assert not os.path.exists(str(logdir / "check.jsonl"))
            assert mp.stats().get("http.routes.ext_authz.ok", 0) == 0


@pytest.mark.parametrize("filters,want", [
    (RATELIMIT.replace("domain: test", 'domain: ""'),
     "http_filters[0].typed_config.domain: must not be empty"),
    (grpc_authz("authz").replace("failure_mode_allow: false",
                                 'allowed_headers: {patterns: [{safe_regex: {regex: "(x-"}}]}'),
     "http_filters[0].typed_config.allowed_headers.patterns[0].safe_regex.regex: invalid regex"),
    (HTTP_AUTHZ.replace(", timeout: 1s", ""),
     "http_filters[0].typed_config.http_service.server_uri.timeout: is required"),
])
def test_validate_names_the_field(tmp_path, filters, want):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bootstrap(hcm(free_port(), "bad", filters, rate_limits=False),
                             cluster_yaml("app", 1)).replace("{admin}", "1"))
    r = subprocess.run([MESHPROXY_BIN, "--mode", "validate", "-c", str(cfg), "-l", "error"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    assert want in r.stderr.decode(), r.stderr


def test_with_request_body(tmp_path, servers):
    grpc_port, http_port, logdir = servers
    whole, partial, http = free_port(), free_port(), free_port()
    body_cfg = "\n              with_request_body: {max_request_bytes: 16%s}"
    whole_f = grpc_authz("authz") + body_cfg % ""
    partial_f = grpc_authz("authz") + body_cfg % ", allow_partial_message: true"
    http_f = HTTP_AUTHZ + body_cfg % ""
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(whole, "whole", whole_f, rate_limits=False) +
                        hcm(partial, "partial", partial_f, rate_limits=False) +
                        hcm(http, "http", http_f, rate_limits=False),
                        cluster_yaml("app", app_port) + grpc_cluster("authz", grpc_port) +
                        cluster_yaml("authz_http", http_port))
        with meshproxy(tmp_path, cfg, listen_ports=[whole, partial, http]) as mp:
            st, _, body = curl(whole, "/echo", extra=["--data-binary", "0123456789"])
            assert st == 200 and body == "0123456789"
            http_attr = read_requests(str(logdir / "check.jsonl"))[-1]["attributes"]["request"]["http"]
            assert http_attr["body"] == "0123456789"
            assert http_attr["headers"]["x-envoy-auth-partial-body"] == "false"

            st, _, body = curl(whole, "/echo", extra=["--data-binary", "x" * 100])
            assert st == 413, body
            n_checks = len(read_requests(str(logdir / "check.jsonl")))

            st, _, body = curl(partial, "/echo", extra=["--data-binary", "y" * 100])
            assert st == 200 and body == "y" * 100  # the whole body still goes upstream
            http_attr = read_requests(str(logdir / "check.jsonl"))[-1]["attributes"]["request"]["http"]
            assert http_attr["body"] == "y" * 16
            assert http_attr["headers"]["x-envoy-auth-partial-body"] == "true"
            assert len(read_requests(str(logdir / "check.jsonl"))) == n_checks + 1

            # a body sent slowly, in pieces, is awaited
            with socket.create_connection(("127.0.0.1", whole), timeout=10) as sk:
                sk.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
                time.sleep(0.3)
                sk.sendall(b"def")
                resp = b""
                while not resp.endswith(b"abcdef"):
                    chunk = sk.recv(4096)
                    if not chunk:
                        break
                    resp += chunk
            assert resp.startswith(b"HTTP/1.1 200"), resp
            assert read_requests(str(logdir / "check.jsonl"))[-1]["attributes"]["request"]["http"][
                "body"] == "abcdef"

            st, _, _ = curl(http, "/echo", ["x-authz: allow"], extra=["--data-binary", "hi"])
            assert st == 200
            asked = read_requests(str(logdir / "http.jsonl"))[-1]
            assert asked["headers"]["content-length"] == "2"
            assert asked["headers"]["x-envoy-auth-partial-body"] == "false"
            assert mp.proc.poll() is None


def test_http_service_errors(tmp_path, servers):
    """HTTP authorization server too slow (timeout) or unreachable:
    status_on_error, counted as errors."""
    _, http_port, _ = servers
    slow, dead = free_port(), free_port()
    slow_f = (HTTP_AUTHZ.replace("timeout: 1s", "timeout: 0.2s")
              .replace("patterns: [{exact: x-authz}]", "patterns: [{prefix: x-authz}]") +
              "\n              status_on_error: {code: 503}")
    dead_f = HTTP_AUTHZ.replace("cluster: authz_http", "cluster: nobody")
    with python_upstream(tmp_path) as (app_port, app_log):
        cfg = bootstrap(hcm(slow, "slow", slow_f, rate_limits=False) +
                        hcm(dead, "dead", dead_f, rate_limits=False),
                        cluster_yaml("app", app_port) + cluster_yaml("authz_http", http_port) +
                        cluster_yaml("nobody", free_port()))
        with meshproxy(tmp_path, cfg, listen_ports=[slow, dead]) as mp:
            st, _, _ = curl(slow, "/x", ["x-authz-delay-ms: 600"])
            assert st == 503
            st, _, _ = curl(slow, "/x")
            assert st == 200
            st, _, _ = curl(dead, "/x")
            assert st == 403
            stats = mp.stats()
            assert stats.get("http.slow.ext_authz.error") == 1
            assert stats.get("http.slow.ext_authz.ok") == 1
            assert stats.get("http.dead.ext_authz.error") == 1
            assert len(read_requests(app_log)) == 1
            time.sleep(0.6)  # the late answer of the slow server lands nowhere
            assert mp.proc.poll() is None
