"""Every downstream/upstream protocol pair (HTTP/1.1 and HTTP/2 on each side)
under h2load -n 10000 with no failures; HTTP/2 <-> HTTP/2 moves 1 MiB bodies
without copying them (bytes_copied / bytes_proxied < 0.05)."""
import re
import subprocess

import pytest

from helpers import (bootstrap, cluster_yaml, free_port, http_get, listener_yaml, meshproxy,
                     nghttpd, python_upstream)

ROUTES = """
              - match: {prefix: "/h1/"}
                route: {cluster: up_h1, prefix_rewrite: "/"}
              - match: {prefix: "/"}
                route: {cluster: up_h2}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("protocols")
    docroot = tmp / "www"
    docroot.mkdir()
    (docroot / "small.txt").write_bytes(b"s" * 100)
    (docroot / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    port = free_port()
    with python_upstream(tmp) as (h1_port, _), nghttpd(tmp, docroot) as h2_port:
        cfg = bootstrap(listener_yaml(port, ROUTES),
                        cluster_yaml("up_h1", h1_port) + cluster_yaml("up_h2", h2_port, http2=True))
        with meshproxy(tmp, cfg, [port]) as proxy:
            yield port, proxy, docroot


def h2load(args):
    r = subprocess.run(["h2load", *args], capture_output=True, text=True, timeout=240)
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", r.stdout)
    assert m, r.stdout + r.stderr
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", r.stdout)
    return [int(x) for x in m.groups()], [int(x) for x in codes.groups()], r.stdout


@pytest.mark.parametrize("down", ["h1", "h2"])
@pytest.mark.parametrize("up", ["h1", "h2"])
def test_h2load_10000_no_failures(setup, down, up):
    port, proxy, _ = setup
    path = "/h1/ok" if up == "h1" else "/small.txt"
    args = ["-n", "10000", "-c", "8", "-t", "1"]
    args += ["--h1", "-m", "1"] if down == "h1" else ["-m", "8"]
    (total, done, ok, failed, errored), (c2, c3, c4, c5), out = h2load(
        args + ["http://127.0.0.1:%d%s" % (port, path)])
    assert (total, done, ok, failed, errored) == (10000, 10000, 10000, 0, 0), out
    assert c2 == 10000, out


def test_h2_to_h2_1mib_bodies_zero_copy(setup, tmp_path):
    port, proxy, docroot = setup
    before = proxy.stats()
    # responses: 1 MiB downloads
    out = h2load(["-n", "20", "-c", "2", "-m", "2", "http://127.0.0.1:%d/big.bin" % port])
    assert out[0][2] == 20, out[2]
    # requests: 1 MiB uploads (nghttpd answers a POST with the file)
    body = tmp_path / "up.bin"
    body.write_bytes(b"u" * (1 << 20))
    out = h2load(["-n", "20", "-c", "2", "-m", "2", "-d", str(body),
                  "http://127.0.0.1:%d/small.txt" % port])
    assert out[0][2] == 20, out[2]
    after = proxy.stats()
    copied = after["meshproxy.bytes_copied"] - before.get("meshproxy.bytes_copied", 0)
    proxied = after["meshproxy.bytes_proxied"] - before.get("meshproxy.bytes_proxied", 0)
    assert proxied >= 40 * (1 << 20)
    assert copied / proxied < 0.05, (copied, proxied)


def test_downloads_are_byte_exact_in_every_direction(setup, tmp_path):
    port, _, docroot = setup
    want = (docroot / "big.bin").read_bytes()
    for extra in ([], ["--http2-prior-knowledge"]):
        out = tmp_path / "o.bin"
        subprocess.run(["curl", "-s", *extra, "-o", str(out), "http://127.0.0.1:%d/big.bin" % port],
                       check=True, timeout=30)
        assert out.read_bytes() == want
        r = subprocess.run(["curl", "-s", *extra, "--data-binary", "@" + str(docroot / "big.bin"),
                            "http://127.0.0.1:%d/h1/echo" % port], capture_output=True, timeout=30)
        assert r.stdout == want
