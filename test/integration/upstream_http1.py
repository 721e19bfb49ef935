"""HTTP/1.1 test upstream: keep-alive, a deep accept backlog, and a JSON line
per request in the log file so tests can tell what reached the upstream.

Paths: /echo (body back), /bytes/N (N bytes), /delay/MS, /status/CODE,
anything else: 200 "ok <path>".
Usage: upstream_http1.py PORT LOGFILE [BIND_ADDRESS]
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one write per response and no Nagle: otherwise every response waits
    # for the proxy's delayed ACK (40 ms)
    wbufsize = 65536
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            for _ in range(100000):
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        body = self._body()
        with LOCK:
            with open(sys.argv[2], "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body_len": len(body),
                                    "peer": self.client_address[0]}) + "\n")
        path = self.path
        status, payload, ctype = 200, ("ok %s\n" % path).encode(), "text/plain"
        if path.startswith("/echo"):
            payload, ctype = body, self.headers.get("Content-Type", "application/octet-stream")
        elif path.startswith("/bytes/"):
            payload = b"x" * int(path.split("/")[2])
        elif path.startswith("/delay/"):
            time.sleep(int(path.split("/")[2]) / 1000.0)
        elif path.startswith("/status/"):
            status = int(path.split("/")[2])
        elif path.startswith("/headers"):
            payload = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            ctype = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


if __name__ == "__main__":
    # optional third argument: the address to bind (default 127.0.0.1)
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    Server((host, int(sys.argv[1])), Handler).serve_forever()
