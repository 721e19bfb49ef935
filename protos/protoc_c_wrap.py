#!/usr/bin/python3
"""Runs protoc-c on one .proto file and renames colliding C members.

protobuf-c names every message's header member `base`; a proto field called
`base` (Envoy's Runtime.base) becomes a second struct member of that name.
The field's C member is renamed to `base_`; its descriptor keeps the proto
name "base", so the JSON/YAML spelling is unchanged.

usage: protoc_c_wrap.py PROTOC_C PROTO_PATH OUT_DIR FILE.proto
"""
import os
import re
import subprocess
import sys


def main():
    protoc_c, proto_path, out_dir, src = sys.argv[1:5]
    out_dir = os.path.abspath(out_dir)
    rel = os.path.relpath(src, proto_path)
    subprocess.run([protoc_c, "--proto_path=" + proto_path, "--c_out=" + out_dir, rel],
                   cwd=proto_path, check=True)
    stem = os.path.join(out_dir, rel[:-len(".proto")])
    h, c = stem + ".pb-c.h", stem + ".pb-c.c"
    with open(h) as f:
        text = f.read()
    fixed = re.sub(r"^(\s+)(?!ProtobufCMessage\b|ProtobufCService\b)(\w+ \*?)base;$", r"\1\2base_;", text, flags=re.M)
    if fixed != text:
        with open(h, "w") as f:
            f.write(fixed)
        with open(c) as f:
            ctext = f.read()
        with open(c, "w") as f:
            f.write(re.sub(r"offsetof\((\w+), base\)", r"offsetof(\1, base_)", ctext))


if __name__ == "__main__":
    main()
