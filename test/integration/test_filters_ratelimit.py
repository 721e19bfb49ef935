"""Local rate limiting and tcp_proxy weighted clusters, end to end.

- envoy.filters.http.local_ratelimit: 429 with x-envoy-ratelimited once the
  bucket is empty, 200 again after fill_interval, per-route override.
- envoy.filters.network.local_ratelimit: connections over the limit are
  closed at once, before the tcp_proxy connects anywhere.
- tcp_proxy weighted_clusters: connections spread between two upstreams by
  weight.

Real processes: meshproxy with a static bootstrap, upstream_http1.py
upstreams. Every loop is bounded in count and time.
"""
import socket
import time

from helpers import (bootstrap, cluster_yaml, free_port, http_get, meshproxy, python_upstream,
                     read_requests, wait_port)

LRL_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"


def http_listener(port):
    return """
  - name: http_limited
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: limited
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/expensive"}
                route: {cluster: backend}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": %s
                    stat_prefix: expensive
                    token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s}
                    filter_enabled: {runtime_key: e, default_value: {numerator: 100, denominator: HUNDRED}}
                    filter_enforced: {runtime_key: f, default_value: {numerator: 100, denominator: HUNDRED}}
              - match: {prefix: "/"}
                route: {cluster: backend}
          http_filters:
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": %s
              stat_prefix: http_local_rate_limiter
              token_bucket: {max_tokens: 3, tokens_per_fill: 3, fill_interval: 1s}
              filter_enabled: {runtime_key: a, default_value: {numerator: 100, denominator: HUNDRED}}
              filter_enforced: {runtime_key: b, default_value: {numerator: 100, denominator: HUNDRED}}
              response_headers_to_add:
              - append_action: OVERWRITE_IF_EXISTS_OR_ADD
                header: {key: x-local-rate-limit, value: "true"}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
""" % (port, LRL_TYPE, LRL_TYPE)


def tcp_listener(port, name, specifier, network_filters=""):
    return """
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:%s
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %s
%s
""" % (name, port, network_filters, name, specifier)


NETWORK_LRL = """
      - name: envoy.filters.network.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit
          stat_prefix: conn_limit
          token_bucket: {max_tokens: %d, tokens_per_fill: 1, fill_interval: 3600s}"""


def test_http_local_ratelimit(tmp_path):
    port = free_port()
    with python_upstream(tmp_path) as (up_port, up_log):
        cfg = bootstrap(http_listener(port), cluster_yaml("backend", up_port))
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            url = "http://127.0.0.1:%d" % port
            # Drain the bucket. A fill (every second) may land inside the loop,
            # so up to 3 + 3 requests can pass before the first 429.
            passed, limited = 0, None
            deadline = time.monotonic() + 20
            for _ in range(30):
                assert time.monotonic() < deadline
                status, headers, body = http_get(url + "/a")
                if status == 429:
                    limited = (headers, body)
                    break
                assert status == 200, (status, body)
                passed += 1
            assert limited is not None, "never rate limited"
            assert 3 <= passed <= 6, passed
            headers, body = limited
            assert headers.get("x-envoy-ratelimited") == "true"
            assert headers.get("x-local-rate-limit") == "true"
            assert body == b"local_rate_limited"
            # the upstream saw only the requests that passed
            assert len(read_requests(up_log)) == passed

            # after fill_interval the bucket has tokens again
            time.sleep(1.2)
            status, headers, _ = http_get(url + "/a")
            assert status == 200
            assert "x-envoy-ratelimited" not in headers

            # per-route: /expensive has its own bucket of one token a minute
            assert http_get(url + "/expensive")[0] == 200
            for _ in range(3):
                status, headers, body = http_get(url + "/expensive")
                assert status == 429
                assert body == b"local_rate_limited"

            stats = {}
            for _ in range(50):  # stats are flushed from the workers periodically
                stats = proxy.stats()
                if stats.get("expensive.http_local_rate_limit.rate_limited", 0) >= 3:
                    break
                time.sleep(0.1)
            assert stats.get("expensive.http_local_rate_limit.rate_limited") == 3
            assert stats.get("expensive.http_local_rate_limit.ok") == 1
            assert stats.get("http_local_rate_limiter.http_local_rate_limit.rate_limited", 0) >= 1
            assert stats.get("http_local_rate_limiter.http_local_rate_limit.enforced", 0) >= 1
            assert stats.get("http_local_rate_limiter.http_local_rate_limit.ok", 0) >= passed + 1


def try_connection(port, payload):
    """Connects, sends payload, reads until close. Returns the bytes read, or
    None when the proxy closed the connection without a reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        try:
            s.sendall(payload)
            data = b""
            while len(data) < 65536:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return None
        return data or None


REQUEST = b"GET /conn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_network_local_ratelimit_closes_connections(tmp_path):
    port, other = free_port(), free_port()
    limit = 4
    with python_upstream(tmp_path) as (up_port, up_log):
        listeners = (tcp_listener(port, "tcp_limited", "          cluster: backend",
                                  NETWORK_LRL % limit) +
                     tcp_listener(other, "tcp_open", "          cluster: backend"))
        cfg = bootstrap(listeners, cluster_yaml("backend", up_port))
        # wait on the unlimited listener: a probe of the limited one would take a token
        with meshproxy(tmp_path, cfg, [other]) as proxy:
            time.sleep(0.2)
            results = [try_connection(port, REQUEST) for _ in range(10)]
            served = [r for r in results if r is not None]
            assert len(served) == limit, results
            assert all(r.startswith(b"HTTP/1.1 200") for r in served)
            # the first `limit` connections got the tokens; the rest were closed
            assert all(r is not None for r in results[:limit])
            assert all(r is None for r in results[limit:])
            # refused connections never reached the upstream
            assert len(read_requests(up_log)) == limit
            # the other listener has no limit
            for _ in range(6):
                assert try_connection(other, REQUEST).startswith(b"HTTP/1.1 200")
            stats = {}
            for _ in range(50):
                stats = proxy.stats()
                if stats.get("local_rate_limit.conn_limit.rate_limited", 0) >= 10 - limit:
                    break
                time.sleep(0.1)
            assert stats.get("local_rate_limit.conn_limit.rate_limited") == 10 - limit


def test_tcp_proxy_weighted_clusters(tmp_path):
    port = free_port()
    with python_upstream(tmp_path, "heavy") as (heavy_port, heavy_log), \
            python_upstream(tmp_path, "light") as (light_port, light_log):
        spec = """          weighted_clusters:
            clusters:
            - {name: heavy, weight: 80}
            - {name: light, weight: 20}"""
        cfg = bootstrap(tcp_listener(port, "weighted", spec),
                        cluster_yaml("heavy", heavy_port) + cluster_yaml("light", light_port))
        with meshproxy(tmp_path, cfg, []) as proxy:
            wait_port(port, proc=proxy.proc)
            total = 200
            deadline = time.monotonic() + 30
            for _ in range(total):
                assert time.monotonic() < deadline
                reply = try_connection(port, REQUEST)
                assert reply is not None and reply.startswith(b"HTTP/1.1 200"), reply
            heavy, light = len(read_requests(heavy_log)), len(read_requests(light_log))
            assert heavy + light == total
            # expected 160 / 40 (sd ~5.7): wide bounds, both must be used
            assert 125 <= heavy <= 190, (heavy, light)
            assert light >= 10, (heavy, light)
