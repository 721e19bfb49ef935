#!/usr/bin/python3
"""Extract the Envoy API .proto closure that meshproxy compiles.

Fetches the pinned npm package @grpc/grpc-js-xds (it ships Envoy's data-plane
API under deps/) into a cache folder, copies the import closure of the roots
listed in roots.txt into OUT, replaces validate/validate.proto with a copy that
accepts every option the Envoy files use, and prints the closure, one path
relative to OUT per line. Well-known types come from libprotobuf-dev.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile

PACKAGE = "@grpc/grpc-js-xds"
VERSION = "1.14.1"
TARBALL = "grpc-grpc-js-xds-%s.tgz" % VERSION
# Folders of the package's deps/ that are proto roots, in lookup order.
PKG_ROOTS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"]
SYSTEM_ROOT = "/usr/include"   # google/protobuf/*.proto

IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.M)


def fetch(cache):
    """Returns the unpacked package folder, downloading it once."""
    unpacked = os.path.join(cache, "grpc-js-xds-" + VERSION)
    if os.path.isdir(os.path.join(unpacked, "package", "deps")):
        return os.path.join(unpacked, "package")
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, TARBALL)
    if not os.path.exists(tgz):
        subprocess.run(["npm", "pack", "--silent", "%s@%s" % (PACKAGE, VERSION)],
                       cwd=cache, check=True, stdout=subprocess.DEVNULL)
    tmp = unpacked + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz) as t:
        members = [m for m in t.getmembers()
                   if m.name.startswith("package/deps/") and m.name.endswith(".proto")]
        t.extractall(tmp, members=members)
    shutil.rmtree(unpacked, ignore_errors=True)
    os.rename(tmp, unpacked)
    return os.path.join(unpacked, "package")


def locate(pkg, rel):
    for root in PKG_ROOTS:
        p = os.path.join(pkg, "deps", root, rel)
        if os.path.exists(p):
            return p
    p = os.path.join(SYSTEM_ROOT, rel)
    if os.path.exists(p):
        return p
    sys.exit("extract.py: %s not found in %s or %s" % (rel, pkg, SYSTEM_ROOT))


def patch_validate(text):
    """The package's validate.proto predates Envoy's use of ignore_empty."""
    def add(m):
        body = m.group(0)
        if "ignore_empty" in body:
            return body
        return body[:-1] + "    optional bool ignore_empty = 1026;\n}"
    return re.sub(r"message (?:String|Bytes|Repeated|Map|Double|Float|[SU]?Int(?:32|64)|S?Fixed(?:32|64))Rules \{.*?\n\}",
                  add, text, flags=re.S)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()

    pkg = fetch(args.cache)
    with open(args.roots) as f:
        roots = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    seen, order, todo = set(), [], list(roots)
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        order.append(rel)
        with open(locate(pkg, rel)) as f:
            todo.extend(IMPORT_RE.findall(f.read()))

    for rel in sorted(order):
        src = locate(pkg, rel)
        dst = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src) as f:
            text = f.read()
        if rel == "validate/validate.proto":
            text = patch_validate(text)
        old = None
        if os.path.exists(dst):
            with open(dst) as f:
                old = f.read()
        if old != text:   # keep mtimes stable so ninja does not rebuild
            with open(dst, "w") as f:
                f.write(text)
        print(rel)


if __name__ == "__main__":
    main()
