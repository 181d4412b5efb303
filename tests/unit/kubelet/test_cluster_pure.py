"""kubelet.node.cluster's pure parts: key parsing, the view, subnet/ClusterIP pickers, routes, slices, nodes table,
the CNI masquerade exemption."""
from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timezone

import pytest

from cni.bridge import compute_nomasq_subnets
from cni.config import parse_netconf, render_conflist
from kubelet.cli.cluster import render_nodes_table
from kubelet.lifecycle.nodestatus import NodeFacts, NodeHealth, compute_node_object
from kubelet.node.cluster.allocate import AllocationError, compute_cluster_ip_candidates, compute_subnet_candidates
from kubelet.node.cluster.endpoints import compute_slice_pods, render_endpoint_slices, render_mirror_pod
from kubelet.node.cluster.keys import ClusterError, Keys, parse_entry
from kubelet.node.cluster.routes import compute_routes
from kubelet.node.cluster.testing import pod, service
from kubelet.node.cluster.view import compute_first_difference, compute_spec_difference, compute_view, parse_all
from proxy.model import parse_service

K = Keys()


class KV:
    def __init__(self, key: str, value: object, lease: int = 0) -> None:
        self.key, self.value, self.lease, self.mod_revision = key, value if isinstance(value, bytes) else json.dumps(value).encode(), lease, 1


def node_doc(name: str, ip: str, cidr: str) -> dict:
    return compute_node_object(NodeFacts(name=name, internal_ip=ip, pod_cidr=cidr), NodeHealth(ready=True), heartbeat="2026-01-01T00:00:00Z")


@pytest.mark.parametrize("key,value,msg", [
    ("/nodelet/nodes/a", b"{", "/nodelet/nodes/a: value is not valid JSON"),
    ("/nodelet/nodes/a", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}, "/nodelet/nodes/a: kind: must be 'Node'"),
    ("/nodelet/nodes/a", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "b"}}, "/nodelet/nodes/a: metadata.name: must be 'a'"),
    ("/nodelet/services/default", {}, "/nodelet/services/default: malformed services key"),
    ("/nodelet/clusterips/x", "default/web", "/nodelet/clusterips/x: 'x' is not an IP address"),
    ("/nodelet/subnets/10.1.0.0-24", {"node": "Bad_Name"}, "/nodelet/subnets/10.1.0.0-24: node: must be a node name"),
    ("/nodelet/foo/bar", {}, "/nodelet/foo/bar: unknown kind of key 'foo'"),
    ("/nodelet/nodes/a", [1], "/nodelet/nodes/a: value must be a JSON object, got list"),
])
def test_bad_values_name_key_field_and_reason(key: str, value: object, msg: str) -> None:
    with pytest.raises(ClusterError) as e:
        kv = KV(key, value)
        parse_entry(K, kv.key, kv.value)
    assert str(e.value).startswith(msg)


def test_view_live_nodes_own_slices_apart_and_errors_kept() -> None:
    slice_b = render_endpoint_slices(node_name="b", services=[parse_service(service("web"), source="s")],
                                     pods=compute_slice_pods([pod("web-b", "10.244.2.5")], node_name="b"))[0]
    slice_gone = dict(slice_b, metadata={**slice_b["metadata"], "name": "web-c"})
    entries, bad = parse_all(K, [KV(K.node("a"), node_doc("a", "10.0.0.1", "10.244.1.0/24")),
                                 KV(K.node("b"), node_doc("b", "10.0.0.2", "10.244.2.0/24")),
                                 KV(K.endpoint_slice("b", "default", "web-b"), slice_b),
                                 KV(K.endpoint_slice("c", "default", "web-c"), slice_gone),  # c has no node: dead
                                 KV("/nodelet/nodes/x", b"garbage")])
    v = compute_view(entries, bad, self_name="a")
    assert [n.name for n in v.nodes] == ["a", "b"] and len(v.errors) == 1
    assert [d.doc["metadata"]["name"] for d in v.endpoint_docs] == ["web-b"]
    assert len(compute_view(entries, bad, self_name="b").endpoint_docs) == 0  # own slices reach the proxy directly


def test_slices_have_kubernetes_conditions() -> None:
    p = pod("web-a", "10.244.1.5")
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    s = render_endpoint_slices(node_name="a", services=[parse_service(service("web", target="http"), source="s")],
                               pods=compute_slice_pods([p], node_name="a"))[0]
    assert s["apiVersion"] == "discovery.k8s.io/v1" and s["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert s["endpoints"][0]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_mirror_pod() -> None:
    m = render_mirror_pod(pod("web-a", "10.244.1.5"), node_name="a", node_uid="u")
    assert m["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "h-web-a"
    assert m["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "a", "controller": True, "uid": "u"}]
    assert m["spec"]["nodeName"] == "a"


def test_subnet_candidates_skip_taken_and_differ_per_name() -> None:
    a = compute_subnet_candidates("10.244.0.0/16", 24, taken={"10.244.5.0/24"}, name="a", limit=300)
    assert len(a) == 255 and "10.244.5.0/24" not in a
    assert compute_subnet_candidates("10.244.0.0/16", 24, taken=(), name="a")[0] != compute_subnet_candidates("10.244.0.0/16", 24, taken=(), name="b")[0]
    assert compute_subnet_candidates("10.244.0.0/30", 30, taken={"10.244.0.0/30"}, name="a") == []
    with pytest.raises(AllocationError):
        compute_subnet_candidates("10.244.0.0/16", 12, taken=(), name="a")


def test_cluster_ip_candidates_never_the_network_first_or_broadcast() -> None:
    ips = compute_cluster_ip_candidates("10.96.0.0/29", taken={"10.96.0.3"}, key="default/web", limit=10)
    assert sorted(ips, key=ipaddress.ip_address) == ["10.96.0.2", "10.96.0.4", "10.96.0.5", "10.96.0.6"]


def test_routes_refuse_overlaps() -> None:
    routes, problems = compute_routes([("a", "10.0.0.1", "10.244.1.0/24"), ("b", "10.0.0.2", "10.244.2.0/24"),
                                       ("c", "10.0.0.3", "10.244.1.0/25"), ("d", "10.0.0.4", "10.244.2.0/23")],
                                      self_name="a", self_pod_cidr="10.244.1.0/24")
    assert routes == {"10.244.2.0/24": "10.0.0.2"}
    assert problems == ["node c: podCIDR 10.244.1.0/25 overlaps this node's podCIDR 10.244.1.0/24: no route",
                        "node d: podCIDR 10.244.2.0/23 overlaps 10.244.2.0/24 of node b: no route"]


def test_spec_difference_names_the_field_and_ignores_an_allocated_ip() -> None:
    stored = {"spec": {"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 80}], "selector": {"app": "web"}}}
    assert compute_spec_difference({"spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}, stored) is None
    assert compute_spec_difference({"spec": {"ports": [{"port": 81}], "selector": {"app": "web"}}}, stored) == ("spec.ports[0].port", 81, 80)
    assert compute_spec_difference({"spec": {"clusterIP": "10.96.0.8", "ports": [{"port": 80}], "selector": {"app": "web"}}}, stored) == \
        ("spec.clusterIP", "10.96.0.8", "10.96.0.9")
    assert compute_first_difference({"a": [1]}, {"a": [1, 2]}) == ("spec.a[1]", None, 2)


def test_nodes_table() -> None:
    n = node_doc("a", "10.0.0.1", "10.244.1.0/24")
    n["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    n["metadata"]["labels"]["node-role.kubernetes.io/worker"] = ""
    now = datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc)
    assert render_nodes_table([n], now=now).splitlines() == [
        "NAME   STATUS   ROLES    AGE   VERSION   INTERNAL-IP", "a      Ready    worker   5m              10.0.0.1"]
    assert render_nodes_table([n], now=now, wide=True).splitlines()[1].split()[5] == "10.244.1.0/24"


def test_conflist_exempts_the_cluster_cidr_from_masquerade() -> None:
    cl = render_conflist(pod_cidr="10.244.1.0/24", ip_masq_exempt=("10.244.0.0/16",))
    conf = parse_netconf(json.dumps({"cniVersion": cl["cniVersion"], "name": cl["name"], **cl["plugins"][0]}).encode())
    assert conf.ip_masq_exempt == (ipaddress.ip_network("10.244.0.0/16"),)
    assert compute_nomasq_subnets([ipaddress.ip_network("10.244.1.0/24")], conf.ip_masq_exempt) == [ipaddress.ip_network("10.244.0.0/16")]
    assert "ipMasqExempt" not in render_conflist(pod_cidr="10.244.1.0/24")["plugins"][0]


def test_doctor_etcd_check() -> None:
    from kubelet.node.doctor import FAIL, PASS, WARN, HostFacts, check_etcd, compute_checks

    assert check_etcd(HostFacts()) is None and all(c.name != "etcd" for c in compute_checks(HostFacts()))
    down = check_etcd(HostFacts(cluster={"connected": False, "endpoints": ["https://e:2379"], "lastError": "etcd Range on https://e:2379: refused"}))
    assert down is not None and down.status == FAIL and "etcd unreachable (https://e:2379): etcd Range on https://e:2379: refused" in down.message
    bad = check_etcd(HostFacts(cluster={"connected": True, "errors": ["/nodelet/nodes/x: value is not valid JSON"]}))
    assert bad is not None and bad.status == WARN and "/nodelet/nodes/x" in bad.message
    ok = check_etcd(HostFacts(cluster={"connected": True, "detail": "etcd ok (https://e:2379, revision 9, 3 nodes)"}))
    assert ok is not None and ok.status == PASS and ok.message.startswith("etcd ok")
