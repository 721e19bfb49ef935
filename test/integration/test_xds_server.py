"""meshproxy-xds against a python grpcio ADS client: SotW ACK/NACK, delta,
and pushes when files change."""
import os
import textwrap
import time

import pytest

import xds_util as x

CLUSTERS = textwrap.dedent("""\
    - name: svc-a
      type: EDS
      connect_timeout: 1s
      eds_cluster_config: {eds_config: {ads: {}}}
    - name: svc-b
      type: STATIC
      connect_timeout: 0.5s
    """)
ENDPOINTS = textwrap.dedent("""\
    resources:
    - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
      cluster_name: svc-a
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 5000}}}
    """)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


@pytest.fixture
def server(tmp_path):
    res = tmp_path / "res"
    write(str(res / "clusters" / "c.yaml"), CLUSTERS)
    write(str(res / "eds.yaml"), ENDPOINTS)
    s = x.XdsServer(str(res))
    yield s
    assert s.stop() == 0, s.text()


def test_sotw_ack_nack_and_push(server):
    m = x.messages()
    Cluster = m["envoy.config.cluster.v3.Cluster"]
    st = x.Stream(server.port)
    try:
        st.send(node="node-sotw", type_url=x.CLUSTER)
        r = st.recv()
        assert r.type_url == x.CLUSTER
        assert sorted(x.names(r, Cluster)) == ["svc-a", "svc-b"]
        v1, n1 = r.version_info, r.nonce
        assert v1 and n1
        # ACK
        st.send(type_url=x.CLUSTER, version_info=v1, response_nonce=n1)
        server.wait_log("ACK node=node-sotw type=%s version=%s nonce=%s" % (x.CLUSTER, v1, n1))
        st.expect_nothing()

        # a file change pushes a new version with the new content
        write(os.path.join(server.dir, "clusters", "c.yaml"),
              CLUSTERS + "- {name: svc-c, type: STATIC, connect_timeout: 2s}\n")
        r2 = st.recv()
        assert r2.version_info != v1
        assert sorted(x.names(r2, Cluster)) == ["svc-a", "svc-b", "svc-c"]
        # NACK: the last good version, the nonce, and error_detail
        req = st.Request(type_url=x.CLUSTER, version_info=v1, response_nonce=r2.nonce)
        req.error_detail.code = 3
        req.error_detail.message = 'Cluster "svc-c": bad connect_timeout'
        st.out.put(req)
        server.wait_log('NACK node=node-sotw type=%s version=%s nonce=%s error_detail=Cluster '
                        '"svc-c": bad connect_timeout' % (x.CLUSTER, v1, r2.nonce))
        st.expect_nothing()  # a NACK alone does not resend the same config

        # EDS by name: only what is asked for (and exists)
        st.send(type_url=x.ENDPOINT, resource_names=["svc-a", "missing"])
        e = st.recv()
        assert e.type_url == x.ENDPOINT
        assert x.names(e, m["envoy.config.endpoint.v3.ClusterLoadAssignment"]) == ["svc-a"]
        st.send(type_url=x.ENDPOINT, resource_names=["svc-a", "missing"],
                version_info=e.version_info, response_nonce=e.nonce)
        server.wait_log("ACK node=node-sotw type=%s" % x.ENDPOINT)
        # a stale nonce is ignored
        st.send(type_url=x.CLUSTER, version_info=v1, response_nonce="999")
        st.expect_nothing()
    finally:
        st.close()


def test_sotw_removal_by_absence(server):
    Cluster = x.messages()["envoy.config.cluster.v3.Cluster"]
    st = x.Stream(server.port)
    try:
        st.send(node="node-rm", type_url=x.CLUSTER)
        r = st.recv()
        st.send(type_url=x.CLUSTER, version_info=r.version_info, response_nonce=r.nonce)
        os.unlink(os.path.join(server.dir, "clusters", "c.yaml"))
        r2 = st.recv()
        assert x.names(r2, Cluster) == []
        assert r2.version_info != r.version_info
    finally:
        st.close()


def test_delta_subscribe_ack_and_removal(server):
    m = x.messages()
    st = x.Stream(server.port, delta=True)
    try:
        st.send(node="node-delta", type_url=x.CLUSTER)
        r = st.recv()
        assert r.type_url == x.CLUSTER
        got = {res.name: res.version for res in r.resources}
        assert sorted(got) == ["svc-a", "svc-b"]
        assert all(got.values())
        st.send(type_url=x.CLUSTER, response_nonce=r.nonce)
        server.wait_log("ACK node=node-delta type=%s version=%s nonce=%s"
                        % (x.CLUSTER, r.system_version_info, r.nonce))

        # only the changed resource comes back
        write(os.path.join(server.dir, "clusters", "c.yaml"),
              CLUSTERS.replace("connect_timeout: 0.5s", "connect_timeout: 3s"))
        r2 = st.recv()
        assert [res.name for res in r2.resources] == ["svc-b"]
        assert r2.resources[0].version != got["svc-b"]
        assert list(r2.removed_resources) == []
        c = m["envoy.config.cluster.v3.Cluster"].FromString(r2.resources[0].resource.value)
        assert c.connect_timeout.seconds == 3
        req = st.Request(type_url=x.CLUSTER, response_nonce=r2.nonce)
        req.error_detail.code = 3
        req.error_detail.message = "svc-b: rejected"
        st.out.put(req)
        server.wait_log("NACK node=node-delta type=%s version=%s nonce=%s error_detail=svc-b: "
                        "rejected" % (x.CLUSTER, r2.system_version_info, r2.nonce))

        # removal
        write(os.path.join(server.dir, "clusters", "c.yaml"), CLUSTERS.split("- name: svc-b")[0])
        r3 = st.recv()
        assert list(r3.removed_resources) == ["svc-b"]
        assert len(r3.resources) == 0

        # named EDS: a subscribed name that does not exist is reported removed
        st.send(type_url=x.ENDPOINT, resource_names_subscribe=["svc-a", "nope"])
        e = st.recv()
        assert [res.name for res in e.resources] == ["svc-a"]
        assert list(e.removed_resources) == ["nope"]
    finally:
        st.close()


def test_delta_reconnect_with_initial_versions(server):
    st = x.Stream(server.port, delta=True)
    try:
        st.send(node="node-re", type_url=x.CLUSTER)
        r = st.recv()
        versions = {res.name: res.version for res in r.resources}
    finally:
        st.close()
    st = x.Stream(server.port, delta=True)
    try:
        # the client already has svc-a at its version and an old svc-b
        st.send(node="node-re", type_url=x.CLUSTER,
                initial_resource_versions={"svc-a": versions["svc-a"], "svc-b": "old",
                                           "gone": "1"})
        r = st.recv()
        assert [res.name for res in r.resources] == ["svc-b"]
        assert list(r.removed_resources) == ["gone"]
    finally:
        st.close()


def test_bad_file_keeps_serving_previous(server):
    Cluster = x.messages()["envoy.config.cluster.v3.Cluster"]
    st = x.Stream(server.port)
    try:
        st.send(node="node-bad", type_url=x.CLUSTER)
        r = st.recv()
        st.send(type_url=x.CLUSTER, version_info=r.version_info, response_nonce=r.nonce)
        write(os.path.join(server.dir, "clusters", "bad.yaml"),
              "- name: svc-z\n  connect_timeout: abc\n")
        server.wait_log("reload failed")
        assert "connect_timeout" in server.text()
        st.expect_nothing()
        os.unlink(os.path.join(server.dir, "clusters", "bad.yaml"))
        write(os.path.join(server.dir, "clusters", "d.yaml"),
              "- {name: svc-d, type: STATIC, connect_timeout: 1s}\n")
        r2 = st.recv()
        assert "svc-d" in x.names(r2, Cluster)
    finally:
        st.close()


def test_sotw_only_refuses_delta(tmp_path):
    res = tmp_path / "res"
    write(str(res / "clusters.yaml"), CLUSTERS)
    s = x.XdsServer(str(res), extra=["--sotw-only"])
    try:
        st = x.Stream(s.port, delta=True)
        st.send(node="n", type_url=x.CLUSTER)
        with pytest.raises(Exception) as e:
            st.recv()
        assert "UNIMPLEMENTED" in str(e.value)
        st.close()
    finally:
        assert s.stop() == 0


def test_bad_folder_is_reported(tmp_path):
    res = tmp_path / "res"
    write(str(res / "x.yaml"), "name: no-type\n")
    p = x.subprocess.run([x.XDS_BIN, "--dir", str(res), "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "x.yaml" in p.stderr and "@type" in p.stderr
