"""An xDS client nobody here wrote: @grpc/grpc-js-xds (node) resolves
xds:///echo through meshproxy-xds (Listener with an ApiListener HCM and an
inline route, an EDS Cluster, a ClusterLoadAssignment) and makes a unary
call to a python gRPC server at the endpoint."""
import json
import os
import shutil
import subprocess
import textwrap
from concurrent import futures

import grpc
import pytest

import xds_util as x

GRPC_JS_XDS = "1.14.1"
GRPC_JS = "~1.14.5"  # the peer dependency of grpc-js-xds 1.14.1
CACHE = os.path.join(x.TOP, ".cache", "grpc-js-xds-node")

CLIENT_JS = textwrap.dedent("""\
    const grpc = require('@grpc/grpc-js');
    require('@grpc/grpc-js-xds').register();
    const client = new grpc.Client('xds:///echo', grpc.credentials.createInsecure());
    const deadline = new Date(Date.now() + 20000);
    client.makeUnaryRequest('/test.Echo/Say', (b) => b, (b) => b, Buffer.from('ping'),
      {deadline}, (err, resp) => {
        if (err) { console.error('call failed: ' + err.code + ' ' + err.details); process.exit(1); }
        console.log('reply: ' + resp.toString());
        process.exit(0);
      });
    """)


def ensure_grpc_js():
    if os.path.isdir(os.path.join(CACHE, "node_modules", "@grpc", "grpc-js-xds")):
        return
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("node/npm not installed")
    os.makedirs(CACHE, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                    "@grpc/grpc-js-xds@" + GRPC_JS_XDS, "@grpc/grpc-js@" + GRPC_JS],
                   cwd=CACHE, check=True, timeout=600)


def resources(backend_port):
    return textwrap.dedent("""\
        resources:
        - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
          name: echo
          api_listener:
            api_listener:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: echo
              route_config:
                name: echo-route
                virtual_hosts:
                - name: echo
                  domains: ["*"]
                  routes:
                  - match: {prefix: ""}
                    route: {cluster: echo-cluster}
              http_filters:
              - name: envoy.filters.http.router
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
          name: echo-cluster
          type: EDS
          eds_cluster_config: {eds_config: {ads: {}}}
          lb_policy: ROUND_ROBIN
        - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
          cluster_name: echo-cluster
          endpoints:
          - locality: {region: local}
            load_balancing_weight: 1
            lb_endpoints:
            - endpoint:
                address: {socket_address: {address: 127.0.0.1, port_value: %d}}
        """ % backend_port)


def test_grpc_js_xds_resolves_and_calls(tmp_path):
    ensure_grpc_js()
    # the backend: a python gRPC server answering /test.Echo/Say
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"pong:" + req)})
    server.add_generic_rpc_handlers((handler,))
    backend_port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    res = tmp_path / "res"
    res.mkdir()
    (res / "echo.yaml").write_text(resources(backend_port))
    xds = x.XdsServer(str(res), extra=["--sotw-only"])
    try:
        bootstrap = tmp_path / "bootstrap.json"
        bootstrap.write_text(json.dumps({
            "xds_servers": [{"server_uri": "127.0.0.1:%d" % xds.port,
                             "channel_creds": [{"type": "insecure"}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": "grpc-js-client", "cluster": "test",
                     "locality": {"region": "local"}},
        }))
        script = tmp_path / "client.js"
        script.write_text(CLIENT_JS)
        env = dict(os.environ, GRPC_XDS_BOOTSTRAP=str(bootstrap),
                   NODE_PATH=os.path.join(CACHE, "node_modules"))
        p = subprocess.run(["node", str(script)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr + xds.text()
        assert "reply: pong:ping" in p.stdout
        # every type the client asked for was ACKed, by its node id
        log = xds.text()
        for t in (x.LISTENER, x.CLUSTER, x.ENDPOINT):
            assert "ACK node=grpc-js-client type=%s" % t in log, log
        assert "NACK" not in log, log
    finally:
        assert xds.stop() == 0
        server.stop(None)
