"""Test certificates made with the openssl CLI: a CA and leaves it signs,
P-256 keys, written into a directory the caller owns (a pytest tmp dir).
Files are named <name>.key / <name>.pem (and <name>.csr, <name>.ext)."""
import subprocess

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(d, *args, data=None):
    """Runs `openssl args...` in directory d (stdin: data); returns its stdout bytes."""
    return subprocess.run(["openssl", *args], cwd=str(d), input=data, check=True,
                          capture_output=True, timeout=30).stdout


def make_ca(d, name="ca", cn=None):
    """A self-signed CA <name>.pem / <name>.key (subject CN=cn, default name), valid three days."""
    openssl(d, "req", "-x509", *EC, "-keyout", name + ".key", "-out", name + ".pem", "-days", "3",
            "-subj", "/CN=" + (cn or name), "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_leaf(d, name, sans, ca="ca", serial=2, ext=""):
    """A leaf <name>.pem / <name>.key (CN=name) signed by ca, with the given
    subjectAltName text, valid two days; ext: extra extension lines
    ("extendedKeyUsage=serverAuth\\n") put before the subjectAltName."""
    (d / (name + ".ext")).write_text("basicConstraints=CA:FALSE\n%ssubjectAltName=%s\n" % (ext, sans))
    openssl(d, "req", *EC, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-set_serial", str(serial), "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")
