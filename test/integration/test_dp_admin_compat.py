"""The admin endpoint in the shapes Envoy's tools read: istioctl proxy-config
(/config_dump with resource/mask/name_regex/include_eds, /clusters?format=json,
/listeners?format=json, /logging, /certs), pilot-agent (/ready, /stats?usedonly,
/stats/prometheus, /quitquitquit, /drain_listeners), Prometheus and curl.
A static bootstrap with a TLS listener and a static secret, and one case
configured over ADS by meshproxy-xds."""
import json
import os
import subprocess

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy,
                     python_upstream, wait_port)
from test_dp_tls import tls_cluster, tls_listener
from test_xds_live import BOOTSTRAP as XDS_BOOTSTRAP, wait_ready, write_resources
from xds_util import XdsServer

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: up}
"""

SECRET = """
  secrets:
  - name: server_cert
    tls_certificate:
      certificate_chain: {filename: %s/cert.pem}
      private_key: {inline_string: "%s"}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "30", "-subj", "/CN=localhost",
                    "-set_serial", "0x1234abcd",
                    "-addext", "subjectAltName=DNS:localhost,URI:spiffe://cluster.local/ns/a/sa/b"],
                   check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture
def setup(tmp_path, certs):
    port, tls_port = free_port(), free_port()
    key = (certs / "key.pem").read_text().replace("\n", "\\n")
    with python_upstream(tmp_path) as (up_port, _):
        cfg = bootstrap(listener_yaml(port, ROUTES) + tls_listener(tls_port, certs, "up"),
                        cluster_yaml("up", up_port) + tls_cluster("tls_up", up_port, certs, False))
        cfg = cfg.replace("\n  clusters:", SECRET % (certs, key) + "  clusters:", 1)
        with meshproxy(tmp_path, cfg, [port, tls_port]) as proxy:
            yield port, tls_port, up_port, proxy


def get_json(proxy, path):
    status, headers, body = proxy.admin(path)
    assert status == 200, (path, body)
    assert headers.get("content-type", "").startswith("application/json")
    return json.loads(body)


def test_clusters_json(setup):
    port, _, up_port, proxy = setup
    assert http_get("http://127.0.0.1:%d/x" % port)[0] == 200
    doc = get_json(proxy, "/clusters?format=json")
    up = [c for c in doc["cluster_statuses"] if c["name"] == "up"][0]
    assert "added_via_api" not in up  # static: false is omitted, as proto3 JSON does
    host = up["host_statuses"][0]
    assert host["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": up_port}}
    stats = {s["name"]: s for s in host["stats"]}
    assert int(stats["rq_total"]["value"]) >= 1 and int(stats["cx_total"]["value"]) >= 1
    assert stats["cx_active"]["type"] == "GAUGE" and "type" not in stats["rq_total"]
    assert host["health_status"] == {"eds_health_status": "HEALTHY"}
    assert host["weight"] == 1
    # the text form is still there
    assert b"up::added_via_api::false" in proxy.admin("/clusters")[2]


def test_listeners_text_and_json(setup):
    port, tls_port, _, proxy = setup
    assert b"listener_0::127.0.0.1:%d" % port in proxy.admin("/listeners")[2]
    doc = get_json(proxy, "/listeners?format=json")
    by_name = {l["name"]: l for l in doc["listener_statuses"]}
    assert by_name["listener_0"]["local_address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": port}}
    assert by_name["tls_in"]["local_address"]["socket_address"]["port_value"] == tls_port


def test_config_dump_queries_and_secrets(setup, certs):
    proxy = setup[3]
    full = get_json(proxy, "/config_dump")
    types = [c["@type"].rsplit(".", 1)[1] for c in full["configs"]]
    assert types[:4] == ["BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump",
                         "SecretsConfigDump"]
    assert "EndpointsConfigDump" not in types
    secrets = [c for c in full["configs"] if c["@type"].endswith("SecretsConfigDump")][0]
    s = secrets["static_secrets"][0]
    assert s["name"] == "server_cert" and s["last_updated"].endswith("Z")
    tc = s["secret"]["tls_certificate"]
    assert tc["private_key"] == {"inline_string": "[redacted]"}
    assert tc["certificate_chain"] == {"filename": "%s/cert.pem" % certs}
    # the key is redacted in the bootstrap too, and nowhere in the dump
    assert b"PRIVATE KEY" not in proxy.admin("/config_dump")[2]

    doc = get_json(proxy, "/config_dump?resource=static_clusters")
    assert {c["@type"] for c in doc["configs"]} == {
        "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"}
    assert [c["cluster"]["name"] for c in doc["configs"]] == ["up", "tls_up"]
    doc = get_json(proxy, "/config_dump?resource=static_listeners&name_regex=^tls")
    assert [c["listener"]["name"] for c in doc["configs"]] == ["tls_in"]
    doc = get_json(proxy, "/config_dump?resource=static_listeners&mask=listener.name")
    assert sorted(c["listener"]["name"] for c in doc["configs"]) == ["listener_0", "tls_in"]
    assert all(set(c["listener"]) == {"@type", "name"} for c in doc["configs"])
    assert all(set(c) == {"@type", "listener"} for c in doc["configs"])
    doc = get_json(proxy, "/config_dump?mask=static_clusters.cluster.name&name_regex=^up$")
    clusters = [c for c in doc["configs"] if c["@type"].endswith("ClustersConfigDump")][0]
    assert clusters["static_clusters"] == [
        {"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "up"}}]
    status, _, body = proxy.admin("/config_dump?resource=no_such_field")
    assert status == 404 and b"no_such_field" in body
    assert proxy.admin("/config_dump?name_regex=(")[0] == 400


def test_certs(setup):
    proxy = setup[3]
    doc = get_json(proxy, "/certs")
    chains = [c for cert in doc["certificates"] for c in cert["cert_chain"]]
    assert chains, doc
    leaf = chains[0]
    assert leaf["serial_number"] == "1234abcd"
    assert {"dns": "localhost"} in leaf["subject_alt_names"]
    assert {"uri": "spiffe://cluster.local/ns/a/sa/b"} in leaf["subject_alt_names"]
    assert 28 <= int(leaf["days_until_expiration"]) <= 30
    assert leaf["valid_from"].endswith("Z") and leaf["expiration_time"] > leaf["valid_from"]
    assert leaf["path"].endswith("cert.pem")
    # the upstream context's trust store shows as ca_cert
    cas = [c for cert in doc["certificates"] for c in cert["ca_cert"]]
    assert cas and cas[0]["serial_number"] == "1234abcd" and cas[0]["path"].endswith("cert.pem")


def test_logging_get_and_post(setup):
    proxy = setup[3]
    status, _, body = proxy.admin("/logging")
    assert status == 200 and body.startswith(b"active loggers:\n")
    assert b"  upstream: " in body
    # changes need POST, as Envoy requires
    status, _, body = proxy.admin("/logging?level=debug")
    assert status == 405 and b"POST" in body
    status, _, body = proxy.admin("/logging?level=debug", method="POST")
    assert status == 200
    assert all(l.endswith(": debug") for l in body.decode().splitlines()[1:])
    status, _, body = proxy.admin("/logging?upstream=trace", method="POST")
    assert status == 200 and b"  upstream: trace\n" in body and b"  router: debug\n" in body
    status, _, body = proxy.admin("/logging?paths=router:error,http:warning", method="POST")
    assert b"  router: error\n" in body and b"  http: warning\n" in body
    status, _, body = proxy.admin("/logging?nosuch=debug", method="POST")
    assert status == 400 and b"nosuch" in body
    status, _, body = proxy.admin("/logging?level=loud", method="POST")
    assert status == 400 and b"loud" in body
    # the change is real: debug lines appear in the log, and stop again
    proxy.admin("/logging?level=debug", method="POST")
    proxy.admin("/ready")
    assert "[debug][admin]" in proxy.log() and "GET /ready: 200" in proxy.log()
    proxy.admin("/logging?level=info", method="POST")
    proxy.admin("/server_info")
    assert "GET /server_info" not in proxy.log()


def test_stats_runtime_memory_misc(setup):
    port, _, _, proxy = setup
    assert http_get("http://127.0.0.1:%d/x" % port)[0] == 200
    doc = get_json(proxy, "/stats?format=json")
    names = {s["name"]: s.get("value") for s in doc["stats"] if "name" in s}
    assert names["cluster.up.upstream_rq_total"] >= 1
    assert any("histograms" in s for s in doc["stats"])
    status, _, body = proxy.admin("/stats?filter=^cluster\\.up\\.upstream_rq_total$")
    assert status == 200 and body.decode().strip().startswith("cluster.up.upstream_rq_total: ")
    assert len(body.decode().strip().splitlines()) == 1
    _, _, used = proxy.admin("/stats?usedonly")
    assert b"cluster.up.upstream_rq_total" in used and b": 0\n" not in used
    assert proxy.admin("/stats?filter=(")[0] == 400
    assert get_json(proxy, "/runtime") == {"entries": {}, "layers": []}
    mem = get_json(proxy, "/memory")
    assert int(mem["allocated"]) > 0 and int(mem["heap_size"]) >= int(mem["allocated"]) // 2
    assert proxy.admin("/hot_restart_version")[2] == b"disabled\n"
    info = get_json(proxy, "/server_info")
    assert info["command_line_options"]["concurrency"] == 2
    assert "node" in info
    for p in ("/reset_counters", "/drain_listeners?inboundonly&graceful", "/healthcheck/ok",
              "/healthcheck/fail", "/quitquitquit"):
        status, _, body = proxy.admin(p)
        assert status == 405 and body == b"Method not allowed, POST required.\n", p
    assert proxy.admin("/healthcheck/ok", method="POST")[0] == 200
    assert proxy.admin("/ready")[0] == 200
    # counters go back to zero; gauges stay
    assert proxy.stats()["cluster.up.upstream_rq_total"] >= 1
    assert proxy.admin("/reset_counters", method="POST")[:3:2] == (200, b"OK\n")
    st = proxy.stats()
    assert st["cluster.up.upstream_rq_total"] == 0
    assert http_get("http://127.0.0.1:%d/x" % port)[0] == 200
    assert proxy.stats()["cluster.up.upstream_rq_total"] == 1


def test_xds_config_dump_and_clusters(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    listen = free_port()
    with python_upstream(tmp_path, "a") as up_a, python_upstream(tmp_path, "b") as up_b:
        write_resources(str(res), 1, listen, [up_a[0], up_b[0]])
        xds = XdsServer(str(res), extra=["--sotw-only"])
        try:
            boot = XDS_BOOTSTRAP.format(api_type="GRPC", xds_port=xds.port)
            with meshproxy(tmp_path, boot) as proxy:
                wait_ready(proxy)
                wait_port(listen, proc=proxy.proc)
                assert http_get("http://127.0.0.1:%d/" % listen)[0] == 200
                doc = get_json(proxy, "/config_dump?resource=dynamic_active_clusters")
                assert {c["@type"] for c in doc["configs"]} == {
                    "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster"}
                assert sorted(c["cluster"]["name"] for c in doc["configs"]) == ["svc-0", "svc-1"]
                doc = get_json(proxy,
                               "/config_dump?resource=dynamic_active_clusters&name_regex=svc-1")
                assert [c["cluster"]["name"] for c in doc["configs"]] == ["svc-1"]
                # endpoints only with include_eds
                plain = get_json(proxy, "/config_dump")
                assert not any(c["@type"].endswith("EndpointsConfigDump")
                               for c in plain["configs"])
                eds = get_json(proxy, "/config_dump?include_eds")
                ep = [c for c in eds["configs"] if c["@type"].endswith("EndpointsConfigDump")][0]
                names = sorted(e["endpoint_config"]["cluster_name"]
                               for e in ep["dynamic_endpoint_configs"])
                assert names == ["svc-0", "svc-1"]
                # one SecretsConfigDump, even with static and dynamic parts
                assert sum(c["@type"].endswith("SecretsConfigDump")
                           for c in eds["configs"]) == 1
                cl = get_json(proxy, "/clusters?format=json")
                svc0 = [c for c in cl["cluster_statuses"] if c["name"] == "svc-0"][0]
                assert svc0["added_via_api"] is True
                addr = svc0["host_statuses"][0]["address"]["socket_address"]
                assert addr == {"address": "127.0.0.1", "port_value": up_a[0]}
                lst = get_json(proxy, "/listeners?format=json")
                assert lst["listener_statuses"][0]["name"] == "http"
        finally:
            xds.stop()
