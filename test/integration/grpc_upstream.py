"""gRPC test server with raw-bytes methods (no generated code):
/test.Echo/Unary echoes, /test.Echo/Bidi echoes each message of a stream,
/test.Echo/Fail aborts with NOT_FOUND "no such thing", and every call sets
trailing metadata x-trailer: done.
Usage: grpc_upstream.py PORT
"""
import sys
import time
from concurrent import futures

import grpc


def ident(b):
    return b


def unary(req, ctx):
    ctx.set_trailing_metadata((("x-trailer", "done"),))
    return req


def bidi(it, ctx):
    ctx.set_trailing_metadata((("x-trailer", "done"),))
    for msg in it:
        yield msg


def fail(req, ctx):
    ctx.set_trailing_metadata((("x-trailer", "done"),))
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
}

if __name__ == "__main__":
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", HANDLERS),))
    server.add_insecure_port("127.0.0.1:%s" % sys.argv[1])
    server.start()
    while True:
        time.sleep(3600)
