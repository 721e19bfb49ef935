#!/usr/bin/python3
"""A sample HTTP/1.1 service for the demo and tests.

Answers every request with a small JSON document naming the service, the
request's method, path and the headers the proxy added, so one can see the
mesh at work. usage: sample_service.py NAME PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self):
        length = int(self.headers.get("content-length") or 0)
        body_in = self.rfile.read(length) if length else b""
        doc = {
            "service": self.server.name,
            "method": self.command,
            "path": self.path,
            "received_bytes": len(body_in),
            "x-request-id": self.headers.get("x-request-id"),
            "x-forwarded-proto": self.headers.get("x-forwarded-proto"),
        }
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _reply

    def log_message(self, fmt, *args):
        pass


def main():
    name, port = sys.argv[1], int(sys.argv[2])
    ThreadingHTTPServer.request_queue_size = 1024  # the default 5 drops SYNs under h2load
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.name = name
    srv.serve_forever()


if __name__ == "__main__":
    main()
