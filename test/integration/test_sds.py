"""SDS end to end, with real processes: meshproxy configured over ADS by
meshproxy-xds, its TLS certificates delivered as Secret resources.

(a) SDS over ADS: a listener's DownstreamTlsContext names its certificate and
    its validation context with sds_config {ads: {}}; the listener (and /ready)
    waits for the secrets, then serves mTLS.
(b) Istio style: a static cluster "sds-grpc" on a Unix socket, secrets
    "default" and "ROOTCA" named with an api_config_source; a second
    meshproxy-xds on unix:<tmp>/sds.sock serves them on its own StreamSecrets
    stream, to an inbound TLS listener and to an upstream mTLS cluster.
(c) Rotation under load: "default" replaced by a certificate with another
    serial and subject while h2load runs over TLS (and over the mTLS
    cluster); new connections see the new certificate within a bounded time,
    the upstream sees the proxy's new client certificate, nothing fails.

Every process is started here and stopped by pid; every wait is bounded."""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from helpers import (PYTHON, free_port, meshproxy, python_upstream, read_requests, start_process,
                     stop_process, wait_port)
from pki import make_ca
from pki import make_leaf as pki_leaf
from xds_util import XDS_BIN, XdsServer

SECRET_T = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3." \
      "HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
H2_OPTIONS = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}}}}

# ---- certificates (openssl CLI) -------------------------------------------------------


def make_leaf(d, name, serial):
    """A leaf signed by ca.pem for localhost/127.0.0.1, usable as server and client."""
    pki_leaf(d, name, "DNS:localhost,IP:127.0.0.1", serial=serial,
             ext="extendedKeyUsage=serverAuth,clientAuth\n")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca", cn="sds-test-ca")
    make_leaf(d, "workload-v1", 0x1001)   # "default" before rotation
    make_leaf(d, "workload-v2", 0x2002)   # "default" after rotation
    make_leaf(d, "client", 0x3003)        # curl's client certificate
    make_leaf(d, "backend", 0x4004)       # the TLS upstream's server certificate
    return d


def pem(pki, name):
    return (pki / name).read_text()


def cert_secret(name, pki, leaf):
    return {"@type": SECRET_T, "name": name, "tls_certificate": {
        "certificate_chain": {"inline_string": pem(pki, leaf + ".pem")},
        "private_key": {"inline_string": pem(pki, leaf + ".key")}}}


def ca_secret(name, pki):
    return {"@type": SECRET_T, "name": name,
            "validation_context": {"trusted_ca": {"inline_string": pem(pki, "ca.pem")}}}


def write_json(path, obj):
    """Replaces a file in one rename, so meshproxy-xds never reads half of it."""
    tmp = os.path.join(os.path.dirname(str(path)), "." + os.path.basename(str(path)) + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, str(path))


# ---- resources ---------------------------------------------------------------------


def sds_ref(name, source):
    """An SdsSecretConfig: over ADS (source None) or from an SDS cluster, as Istio writes it."""
    if source is None:
        return {"name": name, "sds_config": {"ads": {}, "resource_api_version": "V3"}}
    return {"name": name, "sds_config": {
        "api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                              "set_node_on_first_message_only": True,
                              "grpc_services": [{"envoy_grpc": {"cluster_name": source}}]},
        "initial_fetch_timeout": "0s", "resource_api_version": "V3"}}


def tls_listener(name, port, cert, ca, source, cluster, require_client=False):
    ctx = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "DownstreamTlsContext",
           "require_client_certificate": require_client,
           "common_tls_context": {
               "alpn_protocols": ["h2", "http/1.1"],
               "tls_certificate_sds_secret_configs": [sds_ref(cert, source)],
               "combined_validation_context": {
                   "default_validation_context": {},
                   "validation_context_sds_secret_config": sds_ref(ca, source)}}}
    return {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": ctx},
                "filters": [hcm(name, cluster)]}]}


def plain_listener(name, port, cluster):
    return {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [hcm(name, cluster)]}]}


def hcm(prefix, cluster):
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": HCM, "stat_prefix": prefix,
        "route_config": {"name": prefix, "virtual_hosts": [{
            "name": "all", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
        "http_filters": [ROUTER]}}


def static_cluster(name, port, tls=None):
    c = {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": name,
         "type": "STATIC", "connect_timeout": "1s",
         "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
             {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                          "port_value": port}}}}]}]}}
    if tls:
        c["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": tls}
    return c


def upstream_mtls(cert, ca, source):
    return {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                     "UpstreamTlsContext",
            "sni": "localhost",
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [sds_ref(cert, source)],
                "combined_validation_context": {
                    "default_validation_context": {"match_subject_alt_names": [
                        {"exact": "localhost"}]},
                    "validation_context_sds_secret_config": sds_ref(ca, source)}}}


def bootstrap(xds_port, sds_sock=None, api_type="GRPC"):
    sds = ""
    if sds_sock:
        sds = """
  - name: sds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options: %s
    load_assignment:
      cluster_name: sds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: {path: "%s"}}}}]}]
""" % (json.dumps(H2_OPTIONS), sds_sock)
    return """
node: {id: "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local", cluster: app.default}
dynamic_resources:
  ads_config:
    api_type: %s
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds-grpc}}]
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options: %s
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]
%s
admin: {address: {socket_address: {address: 127.0.0.1, port_value: {admin}}}}
""" % (api_type, json.dumps(H2_OPTIONS), xds_port, sds)


# ---- processes ---------------------------------------------------------------------


class UnixXdsServer(XdsServer):
    """meshproxy-xds listening on unix:sock (as Istio's agent serves SDS)."""

    def __init__(self, dir, sock):
        self.dir = dir
        self.port = 0
        self.sock = sock
        self.log_path = os.path.join(dir, "..", "xds-sds.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([XDS_BIN, "--dir", dir, "--listen", "unix:" + sock,
                                      "-l", "debug"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("meshproxy-xds exited: " + self.text())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("meshproxy-xds did not listen: " + self.text())


TLS_UPSTREAM = r'''
import http.server, json, ssl, sys
port, log, cert, key, ca = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        peer = self.connection.getpeercert()
        serial = peer.get("serialNumber", "") if peer else ""
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "client_serial": serial}) + "\n")
        body = serial.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.send_header("connection", "close")  # every request: a new TLS connection
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H)
srv.daemon_threads = True
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
'''


def tls_upstream(tmp, pki):
    """A Python HTTPS upstream that requires a client certificate from ca.pem and
    logs its serial per request. Returns (proc, port, log path)."""
    port = free_port()
    script = tmp / "tls_upstream.py"
    script.write_text(TLS_UPSTREAM)
    log = str(tmp / "tls_upstream.requests")
    proc = start_process([PYTHON, str(script), str(port), log, str(pki / "backend.pem"),
                          str(pki / "backend.key"), str(pki / "ca.pem")],
                         str(tmp / "tls_upstream.out"))
    wait_port(port, proc=proc)
    return proc, port, log


def wait_until(fn, timeout, what, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("%s within %.0fs\n%s" % (what, timeout, log()[-4000:]))


def ready(proxy):
    return proxy.admin("/ready")[0] == 200


def ssl_ctx(pki):
    return ssl.create_default_context(cafile=str(pki / "ca.pem"))


def peer_cert(port, pki):
    """The certificate a new TLS connection to port is served (verified against ca.pem)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ssl_ctx(pki).wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert()


def peer_cert_client(port, pki):
    """As peer_cert, presenting client.pem (the listener requires a client certificate)."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert()


def subject_cn(cert):
    return dict(x[0] for x in cert["subject"])["commonName"]


def curl(*args):
    return subprocess.run(["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, timeout=20).stdout


def h2load_start(out, url, seconds, clients, rps):
    f = open(str(out), "w")
    try:
        return subprocess.Popen(["h2load", "-D", str(seconds), "-c", str(clients), "--rps",
                                 str(rps), "-m", "1", "-t", "1", url],
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        f.close()


def h2load_result(proc, out):
    try:
        proc.wait(timeout=60)
    finally:
        stop_process(proc)
    text = open(str(out)).read()
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    assert m and codes, text
    total, done, ok, failed, errored = [int(x) for x in m.groups()]
    c2, c3, c4, c5 = [int(x) for x in codes.groups()]
    assert done > 0 and failed == 0 and errored == 0 and c2 == done == ok, text
    return done


# ---- (a) SDS over ADS --------------------------------------------------------------


@pytest.mark.parametrize("api_type", ["GRPC", "DELTA_GRPC"])
def test_sds_over_ads_listener_waits_for_secrets(tmp_path, pki, api_type):
    res = tmp_path / "res"
    res.mkdir()
    tls_port = free_port()
    with python_upstream(tmp_path, "app") as (app_port, app_log):
        write_json(res / "listeners.json", [tls_listener("tls_in", tls_port, "server_cert",
                                                         "validation", None, "app",
                                                         require_client=True)])
        write_json(res / "clusters.json", [static_cluster("app", app_port)])
        xds = XdsServer(str(res), extra=["--sotw-only" if api_type == "GRPC" else "--delta-only"])
        try:
            with meshproxy(tmp_path, bootstrap(xds.port, api_type=api_type)) as proxy:
                # the listener and the secrets it names are in, the secrets are not
                xds.wait_log("ACK node=sidecar~127.0.0.1~app-1.default~default.svc.cluster.local "
                             "type=type.googleapis.com/envoy.config.listener.v3.Listener")
                time.sleep(0.5)
                assert proxy.admin("/ready")[0] == 503, proxy.log()
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                # the secrets arrive over ADS: the listener warms, /ready turns 200
                write_json(res / "secrets.json", [cert_secret("server_cert", pki, "workload-v1"),
                                                  ca_secret("validation", pki)])
                wait_until(lambda: ready(proxy), 10, "not ready after the secrets came",
                           proxy.log)
                xds.wait_log("ACK node=sidecar~127.0.0.1~app-1.default~default.svc.cluster.local "
                             "type=%s" % SECRET_T)
                wait_port(tls_port, proc=proxy.proc)
                url = "https://localhost:%d/via-sds" % tls_port
                resolve = "localhost:%d:127.0.0.1" % tls_port
                out = curl("--cacert", str(pki / "ca.pem"), "--resolve", resolve,
                           "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"),
                           url)
                assert out.endswith("\n200"), out + proxy.log()[-3000:]
                assert any(r["path"] == "/via-sds" for r in read_requests(app_log))
                assert subject_cn(peer_cert_client(tls_port, pki)) == "workload-v1"
                # the validation secret is in force: no client certificate, no request
                out = curl("--cacert", str(pki / "ca.pem"), "--resolve", resolve, url)
                assert out.endswith("\n000"), out
                # rotated over ADS (or delta ADS) too
                write_json(res / "secrets.json", [cert_secret("server_cert", pki, "workload-v2"),
                                                  ca_secret("validation", pki)])
                wait_until(lambda: peer_cert_client(tls_port, pki)["serialNumber"] == "2002", 5,
                           "the rotated certificate never served", proxy.log)
                assert not [l for l in xds.text().splitlines() if "NACK" in l], xds.text()
        finally:
            xds.stop()


# ---- (b) and (c): Istio's sds-grpc over a Unix socket ---------------------------------


@pytest.fixture(scope="module")
def istio(tmp_path_factory, pki):
    """meshproxy with ADS from xds (TCP) and SDS from sds (unix socket):
    inbound TLS listener -> app; outbound plain listener -> mTLS cluster -> TLS upstream.
    Yields a dict of ports, paths and processes."""
    tmp = tmp_path_factory.mktemp("istio")
    sock_dir = tempfile.mkdtemp(prefix="sds-", dir="/tmp")  # short: sun_path is 108 bytes
    sock = os.path.join(sock_dir, "sds.sock")
    res, sec = tmp / "res", tmp / "sds"
    res.mkdir()
    sec.mkdir()
    inbound, outbound = free_port(), free_port()
    tls_proc = xds = sds = None
    try:
        with python_upstream(tmp, "app") as (app_port, app_log):
            tls_proc, tls_port, tls_log = tls_upstream(tmp, pki)
            write_json(res / "listeners.json", [
                tls_listener("inbound", inbound, "default", "ROOTCA", "sds-grpc", "app"),
                plain_listener("outbound", outbound, "backend")])
            write_json(res / "clusters.json", [
                static_cluster("app", app_port),
                static_cluster("backend", tls_port, upstream_mtls("default", "ROOTCA",
                                                                  "sds-grpc"))])
            write_json(sec / "secrets.json", [cert_secret("default", pki, "workload-v1"),
                                              ca_secret("ROOTCA", pki)])
            xds = XdsServer(str(res))
            sds = UnixXdsServer(str(sec), sock)
            with meshproxy(tmp, bootstrap(xds.port, sock)) as proxy:
                wait_until(lambda: ready(proxy), 10, "never ready", proxy.log)
                wait_port(inbound, proc=proxy.proc)
                wait_port(outbound, proc=proxy.proc)
                yield {"tmp": tmp, "inbound": inbound, "outbound": outbound, "app_log": app_log,
                       "tls_log": tls_log, "sec": sec, "xds": xds, "sds": sds, "proxy": proxy}
    finally:
        for s in (sds, xds):
            if s:
                s.stop()
        stop_process(tls_proc)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_istio_sds_grpc_unix_socket(istio, pki):
    sds, xds, proxy = istio["sds"], istio["xds"], istio["proxy"]
    # the secrets came on their own stream, from the second server, and were ACKed
    text = sds.text()
    assert "method=/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets" in text, text
    assert re.search(r"ACK node=\S+ type=%s version=1 " % re.escape(SECRET_T), text), text
    assert "NACK" not in text, text
    # ... and not over ADS: the ADS server was never asked for them
    assert "type=%s" % SECRET_T not in xds.text()
    # inbound: TLS with the "default" certificate, verified against the CA
    port = istio["inbound"]
    out = curl("--cacert", str(pki / "ca.pem"), "--resolve", "localhost:%d:127.0.0.1" % port,
               "https://localhost:%d/inbound" % port)
    assert out.endswith("\n200"), out + proxy.log()[-3000:]
    assert any(r["path"] == "/inbound" for r in read_requests(istio["app_log"]))
    cert = peer_cert(port, pki)
    assert subject_cn(cert) == "workload-v1" and cert["serialNumber"] == "1001"
    # outbound: the mTLS cluster presents "default" and verifies with "ROOTCA"
    out = curl("http://127.0.0.1:%d/outbound" % istio["outbound"])
    assert out == "1001\n200", out + proxy.log()[-3000:]


def test_rotation_under_load(istio, pki):
    tmp, sec, proxy = istio["tmp"], istio["sec"], istio["proxy"]
    inbound, outbound = istio["inbound"], istio["outbound"]
    assert subject_cn(peer_cert(inbound, pki)) == "workload-v1"
    # a keep-alive HTTP/1.1 connection opened before the rotation
    kept = http.client.HTTPSConnection("127.0.0.1", inbound, timeout=5, context=ssl_ctx(pki))
    kept.request("GET", "/before")
    r = kept.getresponse()
    assert r.status == 200 and r.getheader("connection") != "close"
    r.read()
    kept_sock = kept.sock
    tls_load = h2load_start(tmp / "h2load-tls.out", "https://127.0.0.1:%d/load" % inbound,
                            8, 4, 25)
    up_load = h2load_start(tmp / "h2load-up.out", "http://127.0.0.1:%d/load" % outbound,
                           8, 2, 10)
    try:
        time.sleep(1.5)
        assert tls_load.poll() is None and up_load.poll() is None
        t0 = time.monotonic()
        write_json(sec / "secrets.json", [cert_secret("default", pki, "workload-v2"),
                                          ca_secret("ROOTCA", pki)])
        # new downstream connections get the new certificate
        cert = wait_until(lambda: (lambda c: c if c["serialNumber"] == "2002" else None)(
            peer_cert(inbound, pki)), 5, "inbound never served the new certificate", proxy.log)
        assert subject_cn(cert) == "workload-v2"
        lag = time.monotonic() - t0
        # new upstream connections present the new client certificate
        wait_until(lambda: curl("http://127.0.0.1:%d/after" % outbound) == "2002\n200", 5,
                   "upstream never saw the new client certificate", proxy.log)
        assert lag < 5, lag
        assert istio["sds"].wait_log("type=%s version=2 " % SECRET_T)
        assert tls_load.poll() is None, "h2load ended before the rotation was seen"
        # the connection from before keeps its certificate and is not drained
        kept.request("GET", "/kept")
        r = kept.getresponse()
        assert r.status == 200 and r.getheader("connection") != "close", r.getheaders()
        r.read()
        assert kept.sock is kept_sock and kept_sock.getpeercert()["serialNumber"] == "1001"
        kept.close()
    finally:
        tls_done = h2load_result(tls_load, tmp / "h2load-tls.out")
        up_done = h2load_result(up_load, tmp / "h2load-up.out")
    # every client ran to the end: none was cut off (drained) by the rotation
    assert tls_done >= 0.75 * 4 * 25 * 8 and up_done >= 0.75 * 2 * 10 * 8, (tls_done, up_done)
    serials = [r["client_serial"] for r in read_requests(istio["tls_log"])]
    assert serials[0] == "1001" and serials[-1] == "2002", serials[:3] + serials[-3:]
    assert "NACK" not in istio["sds"].text()
    assert proxy.proc.poll() is None


def test_sds_server_restart(istio, pki):
    """The SDS server (Istio's agent) restarts on the same socket with another
    certificate: meshproxy reconnects, subscribes again and serves it; the
    last secrets keep serving meanwhile."""
    sds, sec, proxy, inbound = istio["sds"], istio["sec"], istio["proxy"], istio["inbound"]
    before = peer_cert(inbound, pki)["serialNumber"]
    sds.proc.kill()
    sds.proc.wait(timeout=5)
    sds.log.close()
    os.unlink(sds.sock)
    # while it is away the certificate in force keeps serving
    assert peer_cert(inbound, pki)["serialNumber"] == before
    wanted = "1001" if before == "2002" else "2002"
    write_json(sec / "secrets.json", [cert_secret("default", pki, "workload-v%s" % wanted[0]),
                                      ca_secret("ROOTCA", pki)])
    os.rename(sds.log_path, sds.log_path + ".1")
    again = UnixXdsServer(str(sec), sds.sock)
    try:
        wait_until(lambda: peer_cert(inbound, pki)["serialNumber"] == wanted, 20,
                   "the restarted SDS server's certificate never served", proxy.log)
        again.wait_log("ACK node=sidecar~127.0.0.1~app-1.default~default.svc.cluster.local "
                       "type=%s" % SECRET_T)
        out = curl("http://127.0.0.1:%d/restarted" % istio["outbound"])
        assert out == wanted + "\n200", out
    finally:
        again.stop()
