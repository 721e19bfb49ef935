"""Helpers for the xDS integration tests: Envoy message classes compiled at
test time (protoc --descriptor_set_out, no generated stubs), a running
meshproxy-xds, and a python grpcio ADS stream (generic stream_stream call)."""
import os
import queue
import socket
import subprocess
import tempfile
import threading
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("MESHPROXY_BUILD", os.path.join(TOP, "build"))
XDS_BIN = os.environ.get("MESHPROXY_XDS_BIN", os.path.join(BUILD, "xds", "server", "meshproxy-xds"))
PROTO_SRC = os.path.join(BUILD, "protos", "src")

ADS_SOTW = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
ADS_DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
T = "type.googleapis.com/"
LISTENER = T + "envoy.config.listener.v3.Listener"
ROUTE = T + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = T + "envoy.config.cluster.v3.Cluster"
ENDPOINT = T + "envoy.config.endpoint.v3.ClusterLoadAssignment"

_ROOTS = [
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/route/v3/route.proto",
]
_classes = {}


def messages():
    """Returns {full_name: class} for the Envoy messages the tests use."""
    if _classes:
        return _classes
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "envoy.pb")
        subprocess.run(["protoc", "-I", PROTO_SRC, "-I", "/usr/include", "--include_imports",
                        "--descriptor_set_out=" + out] + _ROOTS, check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)
    for name in ["envoy.service.discovery.v3.DiscoveryRequest",
                 "envoy.service.discovery.v3.DiscoveryResponse",
                 "envoy.service.discovery.v3.DeltaDiscoveryRequest",
                 "envoy.service.discovery.v3.DeltaDiscoveryResponse",
                 "envoy.config.cluster.v3.Cluster",
                 "envoy.config.listener.v3.Listener",
                 "envoy.config.endpoint.v3.ClusterLoadAssignment",
                 "envoy.config.route.v3.RouteConfiguration"]:
        _classes[name] = factory.GetPrototype(pool.FindMessageTypeByName(name))
    return _classes


def free_port():
    """helpers.free_port: never the same port twice in one run."""
    from helpers import free_port as _free_port
    return _free_port()


class XdsServer:
    """meshproxy-xds on 127.0.0.1 serving folder `dir`; log lines in self.log_path."""

    def __init__(self, dir, extra=(), port=None):
        self.dir = dir
        self.port = port or free_port()
        self.log_path = os.path.join(dir, "..", "xds-%d.log" % self.port)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [XDS_BIN, "--dir", dir, "--listen", "127.0.0.1:%d" % self.port, "-l", "debug"]
            + list(extra), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("meshproxy-xds exited: " + self.text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("meshproxy-xds did not listen: " + self.text())

    def text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        raise AssertionError("log never showed %r:\n%s" % (needle, self.text()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Stream:
    """One ADS stream through grpcio's generic stream_stream."""

    def __init__(self, port, delta=False):
        m = messages()
        self.delta = delta
        req = m["envoy.service.discovery.v3.DeltaDiscoveryRequest" if delta
                else "envoy.service.discovery.v3.DiscoveryRequest"]
        resp = m["envoy.service.discovery.v3.DeltaDiscoveryResponse" if delta
                 else "envoy.service.discovery.v3.DiscoveryResponse"]
        self.Request = req
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        call = self.channel.stream_stream(ADS_DELTA if delta else ADS_SOTW,
                                          request_serializer=lambda x: x.SerializeToString(),
                                          response_deserializer=resp.FromString)
        self.out = queue.Queue()
        self.responses = queue.Queue()
        self.it = call(iter(self.out.get, None))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for r in self.it:
                self.responses.put(r)
        except grpc.RpcError as e:
            self.responses.put(e)

    def send(self, **fields):
        node = fields.pop("node", None)
        msg = self.Request(**fields)
        if node:
            msg.node.id = node
            msg.node.cluster = "test-cluster"
        self.out.put(msg)
        return msg

    def recv(self, timeout=10):
        r = self.responses.get(timeout=timeout)
        if isinstance(r, Exception):
            raise r
        return r

    def expect_nothing(self, wait=0.5):
        try:
            r = self.responses.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError("unexpected response: %s" % r)

    def close(self):
        self.out.put(None)
        self.it.cancel()
        self.channel.close()


def names(resp, cls):
    """Resource names of a SotW response, decoded with message class cls."""
    out = []
    for any_ in resp.resources:
        msg = cls.FromString(any_.value)
        out.append(getattr(msg, "name", "") or getattr(msg, "cluster_name", ""))
    return out
