"""deploy/container/Dockerfile, checked without docker: every shared library
the built binaries load (ldd) belongs to a Debian package (dpkg -S) that the
runtime stage installs, BoringSSL is found through the binary's RUNPATH, and
the stages are what they claim (Debian 12, deploy/deps, non-root 1337)."""
import os
import re
import shutil
import subprocess

import pytest

from helpers import MESHPROXY_BIN

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DOCKERFILE = os.path.join(ROOT, "deploy", "container", "Dockerfile")
XDS_BIN = os.environ.get("MESHPROXY_XDS_BIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(MESHPROXY_BIN))), "xds", "server", "meshproxy-xds"))
BINARIES = [b for b in (MESHPROXY_BIN, XDS_BIN) if os.path.exists(b)]
ANDROID_LIBDIR = "/usr/lib/x86_64-linux-gnu/android"

pytestmark = pytest.mark.skipif(not shutil.which("dpkg") or not shutil.which("ldd"),
                                reason="needs dpkg and ldd (a Debian system)")


def dockerfile():
    with open(DOCKERFILE, encoding="utf-8") as f:
        return f.read()


def runtime_packages():
    """The packages between the RUNTIME_PACKAGES markers' apt-get install."""
    text = dockerfile()
    block = text[text.index("# RUNTIME_PACKAGES"):text.index("# END RUNTIME_PACKAGES")]
    install = block[block.index("--no-install-recommends") + len("--no-install-recommends"):]
    install = install[:install.index("&&")]
    return set(install.replace("\\", " ").split())


def ldd_paths(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "not found" not in out, out
    paths = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            paths.append(m.group(1))
    return paths


def owners(paths):
    """{path: the Debian package that ships it}, from one or two dpkg -S runs
    (it reads every package's file list, so paths go in batches). A path not
    in any list is tried as its symlink's target and under the other half of
    Debian 12's merged /usr (/lib is /usr/lib)."""
    def dpkg_s(candidates):
        r = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True, timeout=120)
        found = {}
        for line in r.stdout.splitlines():
            pkg, _, path = line.partition(": ")
            found[path.strip()] = pkg.split(":", 1)[0].strip()
        return found

    def alternatives(path):
        real = os.path.realpath(path)
        out = []
        for p in (real, path):
            out.append(p)
            out.append(p.replace("/usr/lib/", "/lib/", 1) if p.startswith("/usr/lib/") else "/usr" + p)
        return out

    result = {}
    found = dpkg_s(sorted(set(paths)))
    rest = [p for p in set(paths) if p not in found]
    for p in set(paths) - set(rest):
        result[p] = found[p]
    if rest:
        found = dpkg_s(sorted({a for p in rest for a in alternatives(p)}))
        for p in rest:
            hits = [found[a] for a in alternatives(p) if a in found]
            assert hits, "no package ships %s" % p
            result[p] = hits[0]
    return result


def owner(path):
    return owners([path])[path]


@pytest.mark.skipif(not BINARIES, reason="meshproxy not built")
@pytest.mark.parametrize("binary", BINARIES, ids=os.path.basename)
def test_every_runtime_library_is_installed_by_the_runtime_stage(binary):
    pkgs = runtime_packages()
    missing = {path: pkg for path, pkg in owners(ldd_paths(binary)).items() if pkg not in pkgs}
    assert not missing, "add to the runtime stage: %s" % missing


@pytest.mark.skipif(not os.path.exists(MESHPROXY_BIN), reason="meshproxy not built")
def test_boringssl_comes_from_the_android_dir_through_runpath():
    paths = ldd_paths(MESHPROXY_BIN)
    ssl = [p for p in paths if re.search(r"/lib(ssl|crypto)\.so", p)]
    assert ssl and all(p.startswith(ANDROID_LIBDIR + "/") for p in ssl), ssl
    dyn = subprocess.run(["readelf", "-d", MESHPROXY_BIN], capture_output=True, text=True, timeout=30).stdout
    assert re.search(r"\((RUNPATH|RPATH)\).*\[[^\]]*%s" % re.escape(ANDROID_LIBDIR), dyn), dyn
    assert owner(ssl[0]) == "android-libboringssl"
    # OpenSSL must never be in the proxy (symbol clash with BoringSSL).
    assert not any("libssl.so.3" in p or "libcrypto.so.3" in p for p in paths), paths


def test_runtime_packages_are_runtime_only_and_known_to_apt():
    pkgs = runtime_packages()
    assert "iptables" in pkgs  # the init container runs meshproxy-iptables from this image
    assert not [p for p in pkgs if p.endswith("-dev")], pkgs
    if shutil.which("apt-cache"):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", *sorted(pkgs)], capture_output=True,
                           text=True, timeout=60)
        if not r.stdout:
            pytest.skip("apt lists not available: " + r.stderr.strip())
        known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
        assert pkgs <= known, (sorted(pkgs - known), r.stderr)


def test_stages():
    text = dockerfile()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert [f[0] for f in froms] == ["debian:12", "debian:12-slim"], froms
    assert froms[0][1] == "build"
    # The build stage installs with the developers' own script and builds with meson.
    assert "RUN /src/deploy/deps" in text
    assert "meson setup" in text and "meson install" in text
    for name in ("meshproxy", "meshproxy-xds", "meshproxy-iptables"):
        assert "/usr/local/bin/" + name in text or name in text
    # Runtime: non-root, UID/GID 1337 (the UID meshproxy-iptables exempts).
    runtime = text[text.rindex("FROM "):]
    assert re.search(r"^USER 1337:1337$", runtime, re.M)
    assert "--uid 1337" in runtime and "--gid 1337" in runtime
    assert "COPY --from=build /out/usr/local/bin/ /usr/local/bin/" in runtime


def test_deps_script_lists_python3_yaml():
    # deploy/k8s/inject.py and these tests read YAML with Debian's python3-yaml.
    with open(os.path.join(ROOT, "deploy", "deps"), encoding="utf-8") as f:
        assert "python3-yaml" in f.read().split()
