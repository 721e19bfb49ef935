"""Access logs in Istio's JSON encoding (log_format.json_format) and the
stdout logger: one JSON object a line, numbers as numbers, missing values
as null."""
import json
import time

from helpers import bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy, python_upstream

ROUTES = """
              - match: {prefix: "/"}
                route: {cluster: up}
"""


def test_json_format_lines(tmp_path):
    port = free_port()
    log = tmp_path / "access.json"
    extra = """          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format:
                json_format:
                  method: "%%REQ(:METHOD)%%"
                  path: "%%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%%"
                  status: "%%RESPONSE_CODE%%"
                  bytes: "%%BYTES_SENT%%"
                  agent: "%%REQ(USER-AGENT)%%"
                  missing: "%%REQ(X-NOT-THERE)%%"
                  upstream: "%%UPSTREAM_CLUSTER%%"
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
""" % log
    with python_upstream(tmp_path) as (up, _):
        cfg = bootstrap(listener_yaml(port, ROUTES, extra_hcm=extra), cluster_yaml("up", up))
        with meshproxy(tmp_path, cfg, [port]) as proxy:
            status, _, _ = http_get("http://127.0.0.1:%d/a?b=\"q\"" % port,
                                    headers={"User-Agent": 'say "hi"\\'})
            assert status == 200
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (log.exists() and log.read_text()):
                time.sleep(0.05)
            lines = log.read_text().splitlines()
            assert len(lines) == 1, lines
            rec = json.loads(lines[0])
            assert rec == {"method": "GET", "path": '/a?b="q"', "status": 200,
                           "bytes": rec["bytes"], "agent": 'say "hi"\\', "missing": None,
                           "upstream": "up"}
            assert isinstance(rec["bytes"], int) and rec["bytes"] > 0
            # the stdout logger writes Envoy's default line to the process output
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and '"GET /a?b=' not in proxy.log():
                time.sleep(0.05)
            assert '"GET /a?b=' in proxy.log() and '" 200 ' in proxy.log()
