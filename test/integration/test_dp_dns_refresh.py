"""STRICT_DNS clusters are re-resolved every dns_refresh_rate: when the name's
address changes, traffic moves to the new address without a restart.

The name is added to /etc/hosts for the test (and removed after), so the test
needs to be able to write it (root on the CI machine); it is skipped
otherwise."""
import os
import time

import pytest

from helpers import (HERE, PYTHON, bootstrap, free_port, http_get, listener_yaml, meshproxy,
                     read_requests, start_process, stop_process, wait_port)

HOSTS = "/etc/hosts"
NAME = "mp-dns-refresh-test.internal"


def set_hosts_entry(ip):
    with open(HOSTS) as f:
        lines = [l for l in f.read().splitlines() if NAME not in l]
    if ip:
        lines.append("%s %s" % (ip, NAME))
    with open(HOSTS, "w") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.skipif(not os.access(HOSTS, os.W_OK), reason="needs a writable /etc/hosts")
def test_strict_dns_follows_address_change(tmp_path):
    port = free_port()
    listen = free_port()
    ups = []
    set_hosts_entry("127.0.0.1")
    try:
        for ip, name in (("127.0.0.1", "a"), ("127.0.0.2", "b")):
            log = str(tmp_path / (name + ".requests"))
            proc = start_process([PYTHON, os.path.join(HERE, "upstream_http1.py"), str(port), log,
                                  ip], str(tmp_path / (name + ".out")))
            ups.append((proc, log))
        wait_port(port, proc=ups[0][0])
        cluster = """
  - name: dns
    type: STRICT_DNS
    connect_timeout: 1s
    dns_refresh_rate: 0.2s
    dns_lookup_family: V4_ONLY
    load_assignment:
      cluster_name: dns
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %d}}}}]}]
""" % (NAME, port)
        routes = '              - {match: {prefix: "/"}, route: {cluster: dns}}'
        cfg = bootstrap(listener_yaml(listen, routes), cluster)
        with meshproxy(tmp_path, cfg, [listen]) as proxy:
            assert http_get("http://127.0.0.1:%d/first" % listen)[0] == 200
            assert any(r["path"] == "/first" for r in read_requests(ups[0][1]))
            set_hosts_entry("127.0.0.2")
            deadline = time.monotonic() + 10
            moved = False
            i = 0
            while time.monotonic() < deadline and not moved:
                i += 1
                assert http_get("http://127.0.0.1:%d/after/%d" % (listen, i))[0] == 200
                moved = any(r["path"].startswith("/after/") for r in read_requests(ups[1][1]))
                time.sleep(0.05)
            assert moved, proxy.log()[-2000:]
            assert "DNS answer changed" in proxy.log()
    finally:
        set_hosts_entry(None)
        for proc, _ in ups:
            stop_process(proc)
