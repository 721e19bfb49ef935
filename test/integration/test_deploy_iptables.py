"""deploy/iptables/meshproxy-iptables --dry-run: the exact iptables-restore
input for several option sets, line by line, and the option checks.

Nothing is ever applied here: every run has --dry-run.
"""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(ROOT, "deploy", "iptables", "meshproxy-iptables")
SHELLS = [s for s in ("/bin/sh", "/usr/bin/dash", "/bin/bash") if os.path.exists(s)]

HEAD = [
    "* nat",
    ":MESHPROXY_INBOUND - [0:0]",
    ":MESHPROXY_REDIRECT - [0:0]",
    ":MESHPROXY_IN_REDIRECT - [0:0]",
    ":MESHPROXY_OUTPUT - [0:0]",
    "-A MESHPROXY_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
    "-A MESHPROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
]


def owner_rules(kind, ident, loopback="127.0.0.1/32"):
    return [
        f"-A MESHPROXY_OUTPUT -o lo ! -d {loopback} -m owner --{kind}-owner {ident} -j MESHPROXY_IN_REDIRECT",
        f"-A MESHPROXY_OUTPUT -o lo -m owner ! --{kind}-owner {ident} -j RETURN",
        f"-A MESHPROXY_OUTPUT -m owner --{kind}-owner {ident} -j RETURN",
    ]


DEFAULT_V4 = ["# iptables-restore --noflush", *HEAD,
              "-A PREROUTING -p tcp -j MESHPROXY_INBOUND",
              "-A MESHPROXY_INBOUND -p tcp --dport 15090 -j RETURN",
              "-A MESHPROXY_INBOUND -p tcp --dport 15021 -j RETURN",
              "-A MESHPROXY_INBOUND -p tcp --dport 15020 -j RETURN",
              "-A MESHPROXY_INBOUND -p tcp -j MESHPROXY_IN_REDIRECT",
              "-A OUTPUT -p tcp -j MESHPROXY_OUTPUT",
              "-A MESHPROXY_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
              *owner_rules("uid", 1337), *owner_rules("gid", 1337),
              "-A MESHPROXY_OUTPUT -d 127.0.0.1/32 -j RETURN",
              "-A MESHPROXY_OUTPUT -j MESHPROXY_REDIRECT",
              "COMMIT"]


def dry_run(*args, shell="/bin/sh", ok=True):
    r = subprocess.run([shell, SCRIPT, "--dry-run", *args], capture_output=True, text=True, timeout=30)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def lines(*args, shell="/bin/sh"):
    return dry_run(*args, shell=shell).stdout.splitlines()


@pytest.mark.parametrize("shell", SHELLS)
def test_defaults_match_istio_layout(shell):
    assert lines(shell=shell) == DEFAULT_V4


def test_exclusions_and_cidrs_v4():
    got = lines("--exclude-inbound-ports", "22,15021,8080", "--exclude-outbound-ports=3306",
                "--exclude-outbound-cidrs", "10.0.0.0/8,169.254.169.254",
                "--include-outbound-cidrs", "10.96.0.0/12,fd00::/8",
                "--proxy-uid", "1337,1338", "--proxy-gid", "2000")
    assert got == ["# iptables-restore --noflush", *HEAD,
                   "-A PREROUTING -p tcp -j MESHPROXY_INBOUND",
                   "-A MESHPROXY_INBOUND -p tcp --dport 15090 -j RETURN",
                   "-A MESHPROXY_INBOUND -p tcp --dport 15021 -j RETURN",
                   "-A MESHPROXY_INBOUND -p tcp --dport 15020 -j RETURN",
                   "-A MESHPROXY_INBOUND -p tcp --dport 22 -j RETURN",
                   "-A MESHPROXY_INBOUND -p tcp --dport 8080 -j RETURN",
                   "-A MESHPROXY_INBOUND -p tcp -j MESHPROXY_IN_REDIRECT",
                   "-A OUTPUT -p tcp -j MESHPROXY_OUTPUT",
                   "-A MESHPROXY_OUTPUT -p tcp --dport 3306 -j RETURN",
                   "-A MESHPROXY_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
                   *owner_rules("uid", 1337), *owner_rules("uid", 1338), *owner_rules("gid", 2000),
                   "-A MESHPROXY_OUTPUT -d 127.0.0.1/32 -j RETURN",
                   "-A MESHPROXY_OUTPUT -d 10.0.0.0/8 -j RETURN",
                   "-A MESHPROXY_OUTPUT -d 169.254.169.254/32 -j RETURN",
                   "-A MESHPROXY_OUTPUT -d 10.96.0.0/12 -j MESHPROXY_REDIRECT",
                   "-A MESHPROXY_OUTPUT -j RETURN",
                   "COMMIT"]


def test_ipv6_gets_its_own_table_with_v6_cidrs_only():
    got = lines("--ipv6", "-p", "15101", "-z", "15106",
                "-x", "10.0.0.0/8,fd00::/8", "-i", "2001:db8::/32,10.1.0.0/16")
    split = got.index("# ip6tables-restore --noflush")
    v4, v6 = got[:split], got[split:]
    assert v4[0] == "# iptables-restore --noflush"
    assert "-A MESHPROXY_REDIRECT -p tcp -j REDIRECT --to-ports 15101" in v4
    assert "-A MESHPROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15106" in v6
    assert v4[-5:] == ["-A MESHPROXY_OUTPUT -d 127.0.0.1/32 -j RETURN",
                       "-A MESHPROXY_OUTPUT -d 10.0.0.0/8 -j RETURN",
                       "-A MESHPROXY_OUTPUT -d 10.1.0.0/16 -j MESHPROXY_REDIRECT",
                       "-A MESHPROXY_OUTPUT -j RETURN", "COMMIT"]
    assert v6[1:8] == ["* nat", ":MESHPROXY_INBOUND - [0:0]", ":MESHPROXY_REDIRECT - [0:0]",
                       ":MESHPROXY_IN_REDIRECT - [0:0]", ":MESHPROXY_OUTPUT - [0:0]",
                       "-A MESHPROXY_REDIRECT -p tcp -j REDIRECT --to-ports 15101",
                       "-A MESHPROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15106"]
    assert "-A MESHPROXY_OUTPUT -o lo -s ::6/128 -j RETURN" in v6
    for rule in owner_rules("uid", 1337, "::1/128") + owner_rules("gid", 1337, "::1/128"):
        assert rule in v6
    assert v6[-5:] == ["-A MESHPROXY_OUTPUT -d ::1/128 -j RETURN",
                       "-A MESHPROXY_OUTPUT -d fd00::/8 -j RETURN",
                       "-A MESHPROXY_OUTPUT -d 2001:db8::/32 -j MESHPROXY_REDIRECT",
                       "-A MESHPROXY_OUTPUT -j RETURN", "COMMIT"]
    assert not any("127.0.0" in line or "10.0.0.0" in line for line in v6)
    assert not any("::" in line for line in v4)


def test_listed_inbound_ports_and_no_outbound_capture():
    got = lines("--inbound-ports", "80,15021,443,80", "--include-outbound-cidrs", "")
    assert got == ["# iptables-restore --noflush", *HEAD,
                   "-A PREROUTING -p tcp -j MESHPROXY_INBOUND",
                   # 15021 is the proxy's own health port: never captured.
                   "-A MESHPROXY_INBOUND -p tcp --dport 80 -j MESHPROXY_IN_REDIRECT",
                   "-A MESHPROXY_INBOUND -p tcp --dport 443 -j MESHPROXY_IN_REDIRECT",
                   "-A OUTPUT -p tcp -j MESHPROXY_OUTPUT",
                   "-A MESHPROXY_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
                   *owner_rules("uid", 1337), *owner_rules("gid", 1337),
                   "-A MESHPROXY_OUTPUT -d 127.0.0.1/32 -j RETURN",
                   "COMMIT"]


def test_blanks_in_lists_are_ignored():
    assert lines("-d", "22, 8080", "-x", " 10.0.0.0/8 ,fd00::/8") == \
        lines("-d", "22,8080", "-x", "10.0.0.0/8,fd00::/8")


def test_no_inbound_capture():
    got = lines("--inbound-ports", "")
    assert not any("PREROUTING" in line or line.startswith("-A MESHPROXY_INBOUND") for line in got)
    assert "-A MESHPROXY_OUTPUT -j MESHPROXY_REDIRECT" in got


@pytest.mark.parametrize("args,message", [
    (["--proxy-port", "0"], "proxy-port: not a port: '0'"),
    (["-z", "70000"], "inbound-capture-port: not a port"),
    (["--exclude-inbound-ports", "22,x"], "exclude-inbound-ports: not a port: 'x'"),
    (["--proxy-uid", "istio"], "proxy-uid: not a numeric id"),
    (["--exclude-outbound-cidrs", "10.0.0.0/33"], "bad prefix length"),
    (["--exclude-outbound-cidrs", "10.0.0/8"], "not a CIDR"),
    (["--include-outbound-cidrs", "256.0.0.1"], "not a CIDR"),
    (["--include-outbound-cidrs", "fz::/8"], "not a CIDR"),
    (["--include-outbound-cidrs", "fd00::/129"], "bad prefix length"),
    (["--no-such-option"], "unknown option"),
    (["--proxy-port"], "needs a value"),
])
def test_bad_options_fail_without_output(args, message):
    r = dry_run(*args, ok=False)
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stdout == ""


def test_help():
    r = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--exclude-outbound-cidrs" in r.stdout


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_shellcheck_clean():
    r = subprocess.run(["shellcheck", "-s", "sh", SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def test_backend_picks_the_restore_command():
    got = lines("--backend", "legacy", "--ipv6")
    assert [line for line in got if line.startswith("# ")] == [
        "# iptables-legacy-restore --noflush", "# ip6tables-legacy-restore --noflush"]
    r = dry_run("--backend", "xtables", ok=False)
    assert r.returncode == 2 and "backend" in r.stderr


# --- cleanup and apply, against stand-in iptables commands on PATH that only
# record what they are asked (nothing reaches the kernel) ---

SAVED_NAT = """# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MESHPROXY_INBOUND - [0:0]
:MESHPROXY_IN_REDIRECT - [0:0]
:MESHPROXY_OUTPUT - [0:0]
:MESHPROXY_REDIRECT - [0:0]
:OTHER - [0:0]
-A PREROUTING -p tcp -j MESHPROXY_INBOUND
-A PREROUTING -p udp -j OTHER
-A OUTPUT -p tcp -j MESHPROXY_OUTPUT
-A MESHPROXY_INBOUND -p tcp -j MESHPROXY_IN_REDIRECT
COMMIT
"""


@pytest.fixture
def fake_tools(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "calls"
    (tmp_path / "saved").write_text(SAVED_NAT)
    scripts = {
        "iptables-save": 'echo "iptables-save $*" >> %s; cat %s\n' % (record, tmp_path / "saved"),
        "iptables": 'echo "iptables $*" >> %s\n' % record,
        "iptables-restore": 'echo "iptables-restore $*" >> %s; cat > %s\n' % (record, tmp_path / "restored"),
    }
    for name, body in scripts.items():
        p = bindir / name
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(0o755)
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % bindir)
    return env, record, tmp_path / "restored"


def test_cleanup_dry_run_lists_the_removal_commands(fake_tools):
    env, _, _ = fake_tools
    r = subprocess.run(["/bin/sh", SCRIPT, "--cleanup", "--dry-run"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "iptables -t nat -D PREROUTING -p tcp -j MESHPROXY_INBOUND",
        "iptables -t nat -D OUTPUT -p tcp -j MESHPROXY_OUTPUT",
        "iptables -t nat -F MESHPROXY_INBOUND",
        "iptables -t nat -F MESHPROXY_IN_REDIRECT",
        "iptables -t nat -F MESHPROXY_OUTPUT",
        "iptables -t nat -F MESHPROXY_REDIRECT",
        "iptables -t nat -X MESHPROXY_INBOUND",
        "iptables -t nat -X MESHPROXY_IN_REDIRECT",
        "iptables -t nat -X MESHPROXY_OUTPUT",
        "iptables -t nat -X MESHPROXY_REDIRECT",
    ]


def test_apply_removes_old_rules_then_restores_without_flushing(fake_tools):
    env, record, restored = fake_tools
    r = subprocess.run(["/bin/sh", SCRIPT, "-x", "10.0.0.0/8"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    calls = record.read_text().splitlines()
    assert calls[0] == "iptables-save -t nat"
    assert calls[1:3] == ["iptables -t nat -D PREROUTING -p tcp -j MESHPROXY_INBOUND",
                          "iptables -t nat -D OUTPUT -p tcp -j MESHPROXY_OUTPUT"]
    assert calls[-1] == "iptables-restore --noflush"
    expected = dry_run("-x", "10.0.0.0/8").stdout.splitlines()[1:]  # without the comment line
    assert restored.read_text().splitlines() == expected
