"""deploy/k8s: the manifests parse, every bootstrap passes
`meshproxy --mode validate` (also with the exact per-pod command line the
injector writes), the control plane's resources are served by meshproxy-xds
and ACKed by a meshproxy running the sidecar bootstrap (whose :15021
/healthz/ready and :15090 /stats/prometheus listeners answer), and inject.py
adds the sidecar idempotently without touching the app's containers.

Nothing here needs a cluster: Kubernetes' own parts (the kubelet's $(VAR)
expansion, the ConfigMap volume) are reproduced the way Kubernetes does them.
"""
import copy
import glob
import os
import re
import subprocess
import time

import pytest
import yaml

from helpers import free_port, http_get, start_process, stop_process, wait_port, MESHPROXY_BIN, PYTHON

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
INJECT = os.path.join(K8S, "inject.py")
IPTABLES = os.path.join(ROOT, "deploy", "iptables", "meshproxy-iptables")
XDS_BIN = os.environ.get("MESHPROXY_XDS_BIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(MESHPROXY_BIN))), "xds", "server", "meshproxy-xds"))
MANIFESTS = sorted(glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True))


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def docs_of(kind, name=None):
    return [d for p in MANIFESTS for d in load(p)
            if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def configmap(name):
    (cm,) = docs_of("ConfigMap", name)
    return cm


def bootstraps():
    """(ConfigMap name, key, text) of every bootstrap in the manifests."""
    return [(cm["metadata"]["name"], key, text) for cm in docs_of("ConfigMap")
            for key, text in (cm.get("data") or {}).items() if "bootstrap" in key]


def inject(text, *args):
    r = subprocess.run([PYTHON, INJECT, *args], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def validate(path, *args):
    return subprocess.run([MESHPROXY_BIN, "--mode", "validate", "-c", str(path), "-l", "error", *args],
                          capture_output=True, text=True, timeout=30)


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


# --- manifests ---

def test_manifests_exist():
    names = {os.path.relpath(p, K8S) for p in MANIFESTS}
    assert {"meshproxy-bootstrap.yaml", "meshproxy-xds.yaml", "example/hello.yaml",
            "example/hello-injected.yaml"} <= names, names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: os.path.relpath(p, K8S))
def test_manifest_parses_as_kubernetes_objects(path):
    docs = load(path)
    assert docs
    for d in docs:
        assert isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), d
        assert d["metadata"]["name"]
        for key, text in (d.get("data") or {}).items() if d["kind"] == "ConfigMap" else ():
            if key.endswith((".yaml", ".yml")):
                assert yaml.safe_load(text) is not None, key


def test_bootstrap_points_at_the_control_plane_service():
    (svc,) = docs_of("Service", "meshproxy-xds")
    (dep,) = docs_of("Deployment", "meshproxy-xds")
    port = svc["spec"]["ports"][0]["port"]
    assert port == 18000
    assert "18000" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    host = "%s.%s.svc.cluster.local" % (svc["metadata"]["name"], svc["metadata"]["namespace"])
    for _, _, text in bootstraps():
        boot = yaml.safe_load(text)
        (xds,) = [c for c in boot["static_resources"]["clusters"] if c["name"] == "xds-grpc"]
        addr = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        assert (addr["address"], addr["port_value"]) == (host, port)
    # The resources volume is the ConfigMap the manifests define.
    vols = dep["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["configMap"]["name"] == configmap("meshproxy-xds-resources")["metadata"]["name"]


@pytest.mark.parametrize("cm,key,text", bootstraps(), ids=["%s/%s" % (b[0], b[1]) for b in bootstraps()])
def test_bootstrap_validates(tmp_path, cm, key, text):
    path = tmp_path / key
    path.write_text(text)
    r = validate(path)
    assert r.returncode == 0, r.stderr
    assert "configuration '%s' OK" % path in r.stdout


def kubelet_expand(args, env):
    """$(VAR) -> env[VAR], as the kubelet expands a container's args."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in args]


def test_injected_command_line_validates(tmp_path):
    (_, _, text) = [b for b in bootstraps() if b[0] == "meshproxy-bootstrap"][0]
    boot = tmp_path / "bootstrap.yaml"
    boot.write_text(text)
    deps = [d for d in load(os.path.join(K8S, "example", "hello-injected.yaml")) if d["kind"] == "Deployment"]
    proxy = [c for c in pod_spec(deps[0])["initContainers"] if c["name"] == "meshproxy"][0]
    env = {"POD_NAME": "hello-5d9c7b-x2x7q", "POD_NAMESPACE": "default", "INSTANCE_IP": "10.244.1.7",
           "SERVICE_ACCOUNT": "default", "NODE_NAME": "node-1"}
    assert {e["name"] for e in proxy["env"]} == set(env)
    args = kubelet_expand(proxy["args"], env)
    assert not any("$(" in a for a in args), args
    args[args.index("--config-path") + 1] = str(boot)
    r = subprocess.run([MESHPROXY_BIN, "--mode", "validate", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "sidecar~10.244.1.7~hello-5d9c7b-x2x7q.default~default.svc.cluster.local" in args


# --- the control plane and the sidecar bootstrap, run for real on 127.0.0.1 ---

def configmap_volume(cm, root):
    """Writes cm's data the way the kubelet lays out a ConfigMap volume:
    files in a timestamped folder, ..data -> it, and one symlink per key."""
    stamp = root / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, text in cm["data"].items():
        (stamp / key).write_text(text)
    os.symlink(stamp.name, root / "..data")
    for key in cm["data"]:
        os.symlink(os.path.join("..data", key), root / key)


@pytest.mark.skipif(not os.path.exists(XDS_BIN), reason="meshproxy-xds not built")
def test_control_plane_resources_are_acked_and_sidecar_becomes_ready(tmp_path):
    ports = {name: free_port() for name in ("xds", "admin", "health", "prom", "outbound", "inbound")}
    res = copy.deepcopy(configmap("meshproxy-xds-resources"))
    res["data"]["listeners.yaml"] = (res["data"]["listeners.yaml"]
                                     .replace("port_value: 15001", "port_value: %d" % ports["outbound"])
                                     .replace("port_value: 15006", "port_value: %d" % ports["inbound"])
                                     .replace("address: 0.0.0.0", "address: 127.0.0.1"))
    configmap_volume(res, tmp_path / "xds")
    (_, _, text) = [b for b in bootstraps() if b[0] == "meshproxy-bootstrap"][0]
    text = (text.replace("port_value: 15000", "port_value: %d" % ports["admin"])
                .replace("port_value: 15021", "port_value: %d" % ports["health"])
                .replace("port_value: 15090", "port_value: %d" % ports["prom"])
                .replace("port_value: 18000", "port_value: %d" % ports["xds"])
                .replace("address: 0.0.0.0", "address: 127.0.0.1")
                .replace("meshproxy-xds.meshproxy-system.svc.cluster.local", "127.0.0.1"))
    boot = tmp_path / "bootstrap.yaml"
    boot.write_text(text)

    xds_log = tmp_path / "xds.log"
    xds = start_process([XDS_BIN, "--dir", str(tmp_path / "xds"), "--listen", "127.0.0.1:%d" % ports["xds"],
                         "-l", "info"], str(xds_log))
    proxy = None
    try:
        wait_port(ports["xds"], proc=xds)
        # Not ready before the control plane's configuration is in.
        proxy = start_process([MESHPROXY_BIN, "-c", str(boot), "--concurrency", "1", "-l", "info",
                               "--service-node", "sidecar~127.0.0.1~hello-1.default~default.svc.cluster.local",
                               "--service-cluster", "hello.default"], str(tmp_path / "proxy.log"))
        wait_port(ports["health"], proc=proxy)
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            status, _, body = http_get("http://127.0.0.1:%d/healthz/ready" % ports["health"], timeout=5)
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, (xds_log.read_text(), (tmp_path / "proxy.log").read_text())
        assert body.strip() == b"LIVE"
        wait_port(ports["outbound"], proc=proxy)
        wait_port(ports["inbound"], proc=proxy)

        status, _, body = http_get("http://127.0.0.1:%d/stats/prometheus" % ports["prom"])
        assert status == 200 and b"# TYPE" in body
        assert http_get("http://127.0.0.1:%d/other" % ports["health"])[0] == 404
        assert http_get("http://127.0.0.1:%d/other" % ports["prom"])[0] == 404

        log = xds_log.read_text()
        for t in ("Listener", "RouteConfiguration", "Cluster"):
            assert re.search(r"\bACK node=sidecar~127.0.0.1~hello-1\S* type=\S*\.%s " % t, log), log
        assert "NACK" not in log, log
    finally:
        stop_process(proxy)
        stop_process(xds)


# --- inject.py ---

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: prod}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata:
      labels: {app: shop}
      annotations:
        meshproxy.io/exclude-inbound-ports: "22"
        meshproxy.io/exclude-outbound-cidrs: "10.0.0.0/8,fd00::/8"
    spec:
      initContainers:
      - {name: migrate, image: shop:1, command: [./migrate]}
      containers:
      - name: shop
        image: shop:1
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: prod}]
      - {name: worker, image: shop-worker:1}
      volumes:
      - {name: data, emptyDir: {}}
"""


def test_inject_adds_init_and_native_sidecar():
    src = yaml.safe_load(APP)
    out = yaml.safe_load(inject(APP, "--image", "registry.example/meshproxy:1.0"))
    spec = pod_spec(out)
    assert [c["name"] for c in spec["initContainers"]] == ["meshproxy-init", "meshproxy", "migrate"]
    init, proxy, migrate = spec["initContainers"]
    # The app's containers, its own init container and volumes are unchanged.
    assert spec["containers"] == pod_spec(src)["containers"]
    assert migrate == pod_spec(src)["initContainers"][0]
    assert spec["volumes"][0] == {"name": "data", "emptyDir": {}}
    assert {"name": "meshproxy-bootstrap", "configMap": {"name": "meshproxy-bootstrap"}} in spec["volumes"]

    assert init["image"] == proxy["image"] == "registry.example/meshproxy:1.0"
    assert "restartPolicy" not in init
    assert set(init["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    assert init["securityContext"]["runAsUser"] == 0

    assert proxy["restartPolicy"] == "Always"
    assert proxy["securityContext"]["runAsUser"] == 1337 and proxy["securityContext"]["runAsNonRoot"]
    assert proxy["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    for probe in ("startupProbe", "readinessProbe"):
        assert proxy[probe]["httpGet"] == {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"}
    assert {p["containerPort"] for p in proxy["ports"]} == {15021, 15090}
    assert proxy["volumeMounts"] == [{"name": "meshproxy-bootstrap", "mountPath": "/etc/meshproxy",
                                      "readOnly": True}]
    assert "shop.$(POD_NAMESPACE)" in proxy["args"]
    assert out["spec"]["template"]["metadata"]["annotations"]["meshproxy.io/status"] == "injected"

    # The annotations reach the iptables init container, whose arguments the
    # real script accepts and turns into the rules they ask for.
    r = subprocess.run([IPTABLES, "--dry-run", *init["args"]], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rules = r.stdout.splitlines()
    assert "-A MESHPROXY_INBOUND -p tcp --dport 22 -j RETURN" in rules
    assert "-A MESHPROXY_OUTPUT -d 10.0.0.0/8 -j RETURN" in rules
    assert "-A MESHPROXY_OUTPUT -m owner --uid-owner 1337 -j RETURN" in rules


def test_inject_is_idempotent():
    once = inject(APP)
    assert inject(once) == once
    assert inject(inject(once, "--image", "x:2"), "--image", "x:2") == inject(once, "--image", "x:2")
    spec = pod_spec(yaml.safe_load(inject(inject(once))))
    assert [c["name"] for c in spec["initContainers"]].count("meshproxy") == 1
    assert [v["name"] for v in spec["volumes"]].count("meshproxy-bootstrap") == 1


def test_inject_kinds_and_skips():
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: a, image: a}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "* * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: b, image: b}]}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec: {hostNetwork: true, containers: [{name: c, image: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: optout, annotations: {meshproxy.io/inject: "false"}}
spec: {containers: [{name: d, image: d}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: inlist}, spec: {containers: [{name: e, image: e}]}}
"""
    src = list(yaml.safe_load_all(text))
    out = list(yaml.safe_load_all(inject(text)))
    assert len(out) == len(src)
    pod, cron, hostnet, optout, cm, lst = out
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["meshproxy-init", "meshproxy"]
    cron_spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in cron_spec["initContainers"]] == ["meshproxy-init", "meshproxy"]
    assert hostnet == src[2] and optout == src[3] and cm == src[4]
    assert [c["name"] for c in lst["items"][0]["spec"]["initContainers"]] == ["meshproxy-init", "meshproxy"]


def test_inject_rejects_bad_input():
    r = subprocess.run([PYTHON, INJECT], input="a: [b\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "not YAML" in r.stderr


def test_example_injected_file_is_current():
    with open(os.path.join(K8S, "example", "hello.yaml"), encoding="utf-8") as f:
        fresh = list(yaml.safe_load_all(inject(f.read())))
    assert fresh == load(os.path.join(K8S, "example", "hello-injected.yaml")), \
        "regenerate: deploy/k8s/inject.py < deploy/k8s/example/hello.yaml > deploy/k8s/example/hello-injected.yaml"
