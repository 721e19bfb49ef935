"""Test authorization and rate limit servers for test_filters_extauthz.py.

One process serves, on 127.0.0.1:
  - gRPC (GRPC_PORT): envoy.service.auth.v3.Authorization/Check and
    envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, with the
    messages built at run time from a FileDescriptorSet (protoc
    --descriptor_set_out --include_imports of the Envoy service protos), so
    no generated Python modules are needed;
  - HTTP (HTTP_PORT): an ext_authz http_service server.
Each request is logged as a JSON line to LOG_DIR/{check,rls,http}.jsonl.

Policy: "x-authz-delay-ms: N" delays the Check answer by N ms; a request
carrying "x-authz: deny" is denied (403, header
x-denied-by: test-authz, body "denied by policy"); otherwise it is allowed
and gets x-authz-user added upstream. A descriptor entry ("path",
"/limited") is OVER_LIMIT; everything else is OK.

Usage: authz_servers.py GRPC_PORT HTTP_PORT LOG_DIR DESCRIPTOR_SET
"""
import json
import os
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import descriptor_pb2, json_format, message_factory

LOCK = threading.Lock()


def log(name, obj):
    with LOCK:
        with open(os.path.join(sys.argv[3], name + ".jsonl"), "a") as f:
            f.write(json.dumps(obj) + "\n")


def load_messages(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return message_factory.GetMessages(list(fds.file))


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    msgs = load_messages(sys.argv[4])
    CheckRequest = msgs["envoy.service.auth.v3.CheckRequest"]
    CheckResponse = msgs["envoy.service.auth.v3.CheckResponse"]
    RateLimitRequest = msgs["envoy.service.ratelimit.v3.RateLimitRequest"]
    RateLimitResponse = msgs["envoy.service.ratelimit.v3.RateLimitResponse"]

    def check(req, ctx):
        log("check", json_format.MessageToDict(req, preserving_proto_field_name=True))
        headers = req.attributes.request.http.headers
        if "x-authz-delay-ms" in headers:
            time.sleep(int(headers["x-authz-delay-ms"]) / 1000.0)
        resp = CheckResponse()
        if headers.get("x-authz") == "deny":
            resp.status.code = 7  # PERMISSION_DENIED
            resp.denied_response.status.code = 403
            h = resp.denied_response.headers.add()
            h.header.key = "x-denied-by"
            h.header.value = "test-authz"
            resp.denied_response.body = "denied by policy"
        else:
            resp.status.code = 0
            h = resp.ok_response.headers.add()
            h.header.key = "x-authz-user"
            h.header.value = "alice"
            h.append.value = False
            r = resp.ok_response.response_headers_to_add.add()
            r.header.key = "x-authz-checked"
            r.header.value = "yes"
            resp.ok_response.headers_to_remove.append("x-remove-me")
        return resp

    def should_rate_limit(req, ctx):
        log("rls", json_format.MessageToDict(req, preserving_proto_field_name=True))
        over = any(e.key == "path" and e.value == "/limited"
                   for d in req.descriptors for e in d.entries)
        resp = RateLimitResponse()
        resp.overall_code = 2 if over else 1
        if over:
            h = resp.response_headers_to_add.add()
            h.key = "x-ratelimit-reason"
            h.value = "test"
        return resp

    def unary(fn, req_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_type.FromString,
            response_serializer=lambda m: m.SerializeToString())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(
            "envoy.service.auth.v3.Authorization", {"Check": unary(check, CheckRequest)}),
        grpc.method_handlers_generic_handler(
            "envoy.service.ratelimit.v3.RateLimitService",
            {"ShouldRateLimit": unary(should_rate_limit, RateLimitRequest)}),
    ))
    server.add_insecure_port("127.0.0.1:%d" % grpc_port)
    server.start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _handle(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            if n:
                self.rfile.read(n)
            log("http", {"method": self.command, "path": self.path,
                         "headers": {k.lower(): v for k, v in self.headers.items()}})
            if self.headers.get("x-authz-delay-ms"):
                time.sleep(int(self.headers["x-authz-delay-ms"]) / 1000.0)
            if self.headers.get("x-authz") == "deny":
                body = b"denied over http"
                self.send_response(401)
                self.send_header("x-denied-by", "http-authz")
            else:
                body = b""
                self.send_response(200)
                self.send_header("x-authz-user", "bob")
                self.send_header("x-not-forwarded", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    httpd.daemon_threads = True
    httpd.serve_forever()


if __name__ == "__main__":
    main()
