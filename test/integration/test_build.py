"""The built binary links BoringSSL, never OpenSSL, and reports its version."""
import os
import subprocess

BIN = os.environ.get("MESHPROXY_BIN", os.path.join(os.path.dirname(__file__), "../../build/proxy/meshproxy"))


def ldd_lines():
    out = subprocess.run(["ldd", BIN], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_no_openssl_linked():
    lines = ldd_lines()
    assert not [l for l in lines if "libssl.so.3" in l or "libcrypto.so.3" in l], lines


def test_boringssl_linked_from_android_dir():
    lines = ldd_lines()
    ssl = [l for l in lines if "libssl.so" in l]
    assert ssl and all("/android/" in l for l in ssl), lines


def test_core_libraries_linked():
    text = "\n".join(ldd_lines())
    for lib in ("libnghttp2", "libprotobuf-c", "libev", "libhttp_parser", "libyaml", "libpcre2-8", "libjemalloc",
                "libgrpc_unsecure"):
        assert lib in text, lib
