"""ORIGINAL_DST clusters: the upstream is the address in
x-envoy-original-dst-host (use_http_header), as Istio's passthrough does with
the connection's original destination."""
import pytest

from helpers import bootstrap, free_port, http_get, listener_yaml, meshproxy, python_upstream, read_requests

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: passthrough}
"""

CLUSTER = """
  - name: passthrough
    connect_timeout: 1s
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    original_dst_lb_config: {use_http_header: true}
"""


@pytest.fixture
def setup(tmp_path):
    port = free_port()
    with python_upstream(tmp_path, "a") as (a_port, a_log), python_upstream(tmp_path, "b") as (b_port, b_log):
        with meshproxy(tmp_path, bootstrap(listener_yaml(port, ROUTES), CLUSTER), [port]) as proxy:
            yield port, (a_port, a_log), (b_port, b_log), proxy


def test_header_picks_the_upstream(setup):
    port, (a_port, a_log), (b_port, b_log), proxy = setup
    for target, log in ((a_port, a_log), (b_port, b_log), (a_port, a_log)):
        status, _, body = http_get("http://127.0.0.1:%d/od" % port,
                                   headers={"x-envoy-original-dst-host": "127.0.0.1:%d" % target})
        assert status == 200 and body == b"ok /od\n"
    assert len(read_requests(a_log)) == 2 and len(read_requests(b_log)) == 1
    assert proxy.stats()["cluster.passthrough.upstream_rq_2xx"] == 3


def test_bad_or_missing_header_is_503(setup):
    port, _, _, _ = setup
    assert http_get("http://127.0.0.1:%d/od" % port)[0] == 503
    assert http_get("http://127.0.0.1:%d/od" % port,
                    headers={"x-envoy-original-dst-host": "not-an-ip"})[0] == 503
