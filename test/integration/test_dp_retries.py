"""Route retry_policy: connect failures and 5xx are retried (with the
request body replayed), up to num_retries, on another host when
previous_hosts is set."""
import pytest

from helpers import bootstrap, free_port, http_get, listener_yaml, meshproxy, python_upstream, read_requests

ROUTES = """
              - match: {prefix: "/"}
                route:
                  cluster: pair
                  retry_policy:
                    retry_on: "connect-failure,refused-stream,5xx"
                    num_retries: 2
                    retry_host_predicate:
                    - name: envoy.retry_host_predicates.previous_hosts
                    host_selection_retry_max_attempts: 3
"""


def pair_cluster(live, dead):
    return """
  - name: pair
    connect_timeout: 1s
    type: STATIC
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: pair
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
""" % (dead, live)


@pytest.fixture
def setup(tmp_path):
    port, dead = free_port(), free_port()
    with python_upstream(tmp_path) as (live, log):
        with meshproxy(tmp_path, bootstrap(listener_yaml(port, ROUTES), pair_cluster(live, dead)),
                       [port]) as proxy:
            yield port, log, proxy


def test_connect_failures_are_retried(setup):
    port, log, proxy = setup
    for i in range(10):
        status, _, body = http_get("http://127.0.0.1:%d/r%d" % (port, i), method="POST", data=b"x" * 1000)
        assert status == 200, body
    reqs = [r for r in read_requests(log) if r["path"].startswith("/r")]
    assert len(reqs) == 10 and all(r["body_len"] == 1000 for r in reqs)
    st = proxy.stats()
    assert st["cluster.pair.upstream_rq_retry"] >= 1
    assert st["cluster.pair.upstream_cx_connect_fail"] >= 1


def test_5xx_retried_until_exhausted(setup):
    port, log, proxy = setup
    status, _, _ = http_get("http://127.0.0.1:%d/status/503" % port)
    assert status == 503
    seen = [r for r in read_requests(log) if r["path"] == "/status/503"]
    # 1 try + 2 retries; tries on the dead host never reach the upstream
    assert 1 <= len(seen) <= 3
    assert proxy.stats()["cluster.pair.upstream_rq_retry"] >= 2
