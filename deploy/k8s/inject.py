#!/usr/bin/python3
"""inject.py: adds the meshproxy sidecar to Kubernetes workloads.

    deploy/k8s/inject.py [--image IMAGE] < app.yaml > app-injected.yaml
    kubectl apply -f <(deploy/k8s/inject.py < app.yaml)

Reads YAML documents (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
Job, CronJob, or a List of them) on stdin and writes them to stdout with, at
the front of the pod's initContainers:

  meshproxy-init  runs meshproxy-iptables (NET_ADMIN, NET_RAW) to redirect
                  the pod's TCP traffic to the proxy, as istio-init does;
  meshproxy       the proxy as a native sidecar (restartPolicy: Always, so it
                  starts before the app containers, stays up beside them, and
                  is stopped after them), UID 1337, startup and readiness
                  probes on :15021/healthz/ready.

plus the bootstrap volume (ConfigMap meshproxy-bootstrap, see
meshproxy-bootstrap.yaml). The app's own containers are not changed.
Injecting again gives the same output (what a previous run added is replaced,
never duplicated). Other documents pass through unchanged. A pod is skipped
when it has annotation meshproxy.io/inject: "false" or hostNetwork: true
(capture rules would then apply to the node itself).

Pod annotations, as Istio's traffic.sidecar.istio.io/* ones:
  meshproxy.io/exclude-inbound-ports    e.g. "22,9000"
  meshproxy.io/exclude-outbound-ports   e.g. "3306"
  meshproxy.io/exclude-outbound-cidrs   e.g. "169.254.169.254/32"
  meshproxy.io/include-outbound-cidrs   default "*"
  meshproxy.io/include-inbound-ports    default "*"
"""
import argparse
import sys

import yaml

INIT_NAME = "meshproxy-init"
PROXY_NAME = "meshproxy"
VOLUME_NAME = "meshproxy-bootstrap"
PROXY_UID = 1337
ANNOTATION = "meshproxy.io/"
STATUS_ANNOTATION = ANNOTATION + "status"

# Workload kind -> path of keys from the document to its PodSpec's parent
# (the object holding "metadata" and "spec" of the pod).
POD_TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def iptables_args(annotations):
    """meshproxy-iptables arguments for the pod's annotations."""
    def ann(key, default):
        return str(annotations.get(ANNOTATION + key, default))
    return [
        "--proxy-port", "15001",
        "--inbound-capture-port", "15006",
        "--proxy-uid", str(PROXY_UID),
        "--inbound-ports", ann("include-inbound-ports", "*"),
        "--exclude-inbound-ports", ann("exclude-inbound-ports", ""),
        "--exclude-outbound-ports", ann("exclude-outbound-ports", ""),
        "--include-outbound-cidrs", ann("include-outbound-cidrs", "*"),
        "--exclude-outbound-cidrs", ann("exclude-outbound-cidrs", ""),
    ]


def init_container(image, annotations):
    return {
        "name": INIT_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/local/bin/meshproxy-iptables"],
        "args": iptables_args(annotations),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": {
            # iptables needs root in the pod's network namespace; nothing else.
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }


def field_env(name, path):
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def proxy_container(image, concurrency, workload):
    # The kubelet expands $(VAR) in args from the container's env, so each
    # pod's node id and metadata carry its own name, namespace and IP (what
    # Istio's agent writes into the bootstrap it generates).
    node_id = "sidecar~$(INSTANCE_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local"
    metadata = ('{node: {metadata: {NAME: "$(POD_NAME)", NAMESPACE: "$(POD_NAMESPACE)", '
                'INSTANCE_IPS: "$(INSTANCE_IP)", SERVICE_ACCOUNT: "$(SERVICE_ACCOUNT)", '
                'NODE_NAME: "$(NODE_NAME)", WORKLOAD_NAME: "%s", '
                'INTERCEPTION_MODE: REDIRECT}}}' % workload)
    probe = {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"}}
    return {
        "name": PROXY_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # Native sidecar: an init container that keeps running.
        "restartPolicy": "Always",
        "command": ["/usr/local/bin/meshproxy"],
        "args": [
            "--config-path", "/etc/meshproxy/bootstrap.yaml",
            "--service-node", node_id,
            "--service-cluster", workload + ".$(POD_NAMESPACE)",
            "--config-yaml", metadata,
            "--concurrency", str(concurrency),
            "--drain-time-s", "45",
            "--drain-strategy", "immediate",
            "--local-address-ip-version", "v4",
            "--file-flush-interval-msec", "1000",
            "-l", "warning",
        ],
        "env": [
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("INSTANCE_IP", "status.podIP"),
            field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
            field_env("NODE_NAME", "spec.nodeName"),
        ],
        "ports": [
            {"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"},
            {"name": "health", "containerPort": 15021, "protocol": "TCP"},
        ],
        # Until the first configuration from the control plane is applied the
        # app containers do not start (native sidecars gate them on the
        # startup probe), so the app never sends traffic to a proxy that has
        # no routes yet.
        "startupProbe": dict(probe, periodSeconds=1, timeoutSeconds=3, failureThreshold=600),
        "readinessProbe": dict(probe, periodSeconds=15, timeoutSeconds=3, failureThreshold=4),
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": True,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": VOLUME_NAME, "mountPath": "/etc/meshproxy", "readOnly": True}],
    }


def pod_template(doc):
    """The {metadata, spec} of the pod doc describes, or None."""
    if not isinstance(doc, dict):
        return None
    path = POD_TEMPLATE_PATHS.get(doc.get("kind"))
    if path is None:
        return None
    node = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node if isinstance(node, dict) and isinstance(node.get("spec"), dict) else None


def workload_name(doc, template):
    """The name node.cluster and WORKLOAD_NAME carry: the workload's name,
    else the pod's app label, else its name."""
    for meta in (doc.get("metadata"), template.get("metadata")):
        if isinstance(meta, dict):
            name = meta.get("name") or (meta.get("labels") or {}).get("app")
            if name:
                return str(name)
    return "unknown"


def inject_pod(template, image, concurrency, workload):
    """Adds the sidecar to the pod template in place; returns whether it did."""
    meta = template.setdefault("metadata", {}) or {}
    template["metadata"] = meta
    annotations = meta.get("annotations") or {}
    spec = template["spec"]
    if str(annotations.get(ANNOTATION + "inject", "true")).lower() == "false":
        return False
    if spec.get("hostNetwork"):
        return False

    inits = [c for c in spec.get("initContainers") or [] if c.get("name") not in (INIT_NAME, PROXY_NAME)]
    spec["initContainers"] = [init_container(image, annotations),
                               proxy_container(image, concurrency, workload)] + inits

    volumes = [v for v in spec.get("volumes") or [] if v.get("name") != VOLUME_NAME]
    volumes.append({"name": VOLUME_NAME, "configMap": {"name": "meshproxy-bootstrap"}})
    spec["volumes"] = volumes

    annotations[STATUS_ANNOTATION] = "injected"
    # Prometheus discovers the proxy's metrics the way it does Istio's.
    annotations.setdefault("prometheus.io/scrape", "true")
    annotations.setdefault("prometheus.io/port", "15090")
    annotations.setdefault("prometheus.io/path", "/stats/prometheus")
    meta["annotations"] = annotations
    return True


def inject(doc, image, concurrency):
    """Injects every pod in doc (a List's items too); returns doc."""
    if isinstance(doc, dict) and doc.get("kind") == "List":
        for item in doc.get("items") or []:
            inject(item, image, concurrency)
        return doc
    template = pod_template(doc)
    if template is not None:
        inject_pod(template, image, concurrency, workload_name(doc, template))
    return doc


def main(argv=None):
    ap = argparse.ArgumentParser(description="Adds the meshproxy native sidecar to Kubernetes workloads "
                                             "(YAML on stdin, YAML on stdout).")
    ap.add_argument("--image", default="meshproxy:dev", help="image with meshproxy and meshproxy-iptables")
    ap.add_argument("--concurrency", type=int, default=2, help="proxy worker threads (default 2)")
    args = ap.parse_args(argv)
    if args.concurrency < 1:
        ap.error("--concurrency must be at least 1")
    try:
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
    except yaml.YAMLError as e:
        print("inject.py: stdin is not YAML: %s" % e, file=sys.stderr)
        return 1
    out = [inject(d, args.image, args.concurrency) for d in docs]
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False, default_flow_style=False, width=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
