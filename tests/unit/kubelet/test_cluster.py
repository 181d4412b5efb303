"""kubelet.node.cluster's pure parts: Node parsing, the cluster view, host-gw routes, pod infos, published slices."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelet.node.cluster import (
    ClusterError,
    compute_cluster_view,
    compute_pod_infos,
    compute_routes,
    ensure_endpoints_published,
    parse_node,
    read_directory,
    render_endpoint_slices,
    write_if_changed,
)
from proxy.model import ContainerPort, ManifestDoc, PodInfo, Protocol


def node(name: str, ip: str, cidr: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]}}


SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
       "spec": {"clusterIP": "10.96.0.80", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def test_parse_node() -> None:
    n = parse_node(node("node2", "192.168.56.12", "10.244.2.0/24"), source="nodes/node2.yaml")
    assert (n.name, n.internal_ip, n.pod_cidr) == ("node2", "192.168.56.12", "10.244.2.0/24")
    doc = node("n", "10.0.0.1", "x")
    del doc["spec"]["podCIDR"]
    doc["spec"]["podCIDRs"] = ["10.244.9.0/24"]
    assert parse_node(doc, source="f").pod_cidr == "10.244.9.0/24"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["metadata"].update(name="Node_1"), "f: metadata.name: must be a lowercase RFC 1123 subdomain, got 'Node_1'"),
        (lambda d: d["spec"].pop("podCIDR"), "f (Node n1): spec.podCIDR: required (the node's pod network, e.g. 10.244.1.0/24)"),
        (lambda d: d["spec"].update(podCIDR="10.244.1.5/24"), "f (Node n1): spec.podCIDR: must be an IPv4 CIDR with no host bits set, got '10.244.1.5/24' (10.244.1.5/24 has host bits set)"),
        (lambda d: d["status"].update(addresses=[{"type": "Hostname", "address": "n1"}]), "f (Node n1): status.addresses: no entry with type: InternalIP"),
        (lambda d: d["status"]["addresses"][1].update(address="300.1.1.1"), "f (Node n1): status.addresses[1].address: must be an IPv4 address, got '300.1.1.1'"),
        (lambda d: d.pop("status"), "f (Node n1): status.addresses: required: a list with an InternalIP entry"),
    ],
)
def test_parse_node_errors(mutate: Any, message: str) -> None:
    doc = node("n1", "10.0.0.1", "10.244.1.0/24")
    mutate(doc)
    with pytest.raises(ClusterError) as e:
        parse_node(doc, source="f")
    assert str(e.value) == message


def test_view_duplicates_overlaps_kinds_and_removed_nodes() -> None:
    files = {
        "nodes/a.yaml": [node("a", "10.0.0.1", "10.244.1.0/24")],
        "nodes/b.yaml": [node("b", "10.0.0.2", "10.244.2.0/24")],
        "nodes/b2.yaml": [node("b", "10.0.0.9", "10.244.9.0/24")],
        "nodes/c.yaml": [node("c", "10.0.0.3", "10.244.0.0/16")],
        "services/web.yaml": [SVC, {"kind": "ConfigMap", "metadata": {"name": "x"}}],
        "broken.yaml": ClusterError("broken.yaml", "", "invalid YAML: x"),
    }
    published = {"a": [{"kind": "EndpointSlice", "n": "a"}], "b": [{"kind": "EndpointSlice", "n": "b"}],
                 "gone": [{"kind": "EndpointSlice", "n": "gone"}]}
    v = compute_cluster_view(files, published, self_name="a")
    assert [n.name for n in v.nodes] == ["a", "b"]
    assert [d.source for d in v.services] == ["services/web.yaml#0"]
    # our own slices come to the proxy as pods; a node without a document has no endpoints
    assert [d.doc["n"] for d in v.endpoint_docs] == ["b"]
    assert [str(e) for e in v.errors] == [
        "nodes/b2.yaml: metadata.name: Duplicate value: 'b': already declared in nodes/b.yaml",
        "nodes/c.yaml: spec.podCIDR: 10.244.0.0/16 overlaps 10.244.1.0/24 of node a (nodes/a.yaml)",
        "services/web.yaml#1: kind: 'ConfigMap' is not read from the cluster directory (Node, Service, Endpoints, EndpointSlice)",
        "broken.yaml: invalid YAML: x",
    ]


def test_routes_to_other_nodes_only() -> None:
    nodes = compute_cluster_view({"n": [node("a", "10.0.0.1", "10.244.1.0/24"), node("b", "10.0.0.2", "10.244.2.0/24")]}, {}, self_name="a").nodes
    assert compute_routes(nodes, self_name="a", self_pod_cidr="10.244.1.0/24") == ({"10.244.2.0/24": "10.0.0.2"}, [])
    routes, problems = compute_routes(nodes, self_name="x", self_pod_cidr="10.244.2.0/23")
    assert routes == {"10.244.1.0/24": "10.0.0.1"} and problems == [
        "n#1: spec.podCIDR: 10.244.2.0/24 of node b overlaps this node's podCIDR 10.244.2.0/23: no route"]


def pod_object(name: str, ip: str, *, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_pod_infos() -> None:
    infos = compute_pod_infos([pod_object("a", "10.244.1.2"), pod_object("b", "10.244.1.3", ready=False),
                               pod_object("c", "10.244.1.4", deleting=True), {"metadata": {"name": "d"}, "spec": {}, "status": {}}], node_name="n1")
    assert [(p.name, p.ready) for p in infos] == [("a", True), ("b", False), ("c", False)]
    assert infos[0].ports == (ContainerPort(name="http", port=8080, protocol=Protocol("TCP")),) and infos[0].node_name == "n1"


def test_slices_group_by_resolved_ports_and_keep_readiness() -> None:
    def pod(name: str, port: int, ready: bool = True, labels: dict[str, str] | None = None) -> PodInfo:
        return PodInfo(namespace="default", name=name, labels=labels or {"app": "web"}, ip=f"10.244.1.{port % 100}", ready=ready,
                       ports=(ContainerPort(name="http", port=port, protocol=Protocol("TCP")),), node_name="n1")

    slices = render_endpoint_slices(node_name="n1", services=[ManifestDoc(source="s", doc=SVC)],
                                    pods=[pod("a", 8080), pod("b", 8081, ready=False), pod("c", 8080), pod("x", 8080, labels={"app": "db"})])
    assert [(s["metadata"]["name"], s["ports"][0]["port"], [e["targetRef"]["name"] for e in s["endpoints"]]) for s in slices] == [
        ("web-n1", 8080, ["a", "c"]), ("web-n1-1", 8081, ["b"])]
    assert slices[1]["endpoints"][0]["conditions"] == {"ready": False}
    assert slices[0]["metadata"]["labels"] == {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "nodelet.io/cluster"}
    # what is published parses as the proxy reads it
    from proxy.model import parse_endpoint_slice

    es = parse_endpoint_slice(slices[0], source="endpoints/n1")
    assert es.service == "web" and [a.node_name for a in es.addresses] == ["n1", "n1"]


def test_publish_is_atomic_and_idempotent(tmp_path: Path) -> None:
    assert ensure_endpoints_published(tmp_path, node_name="n1", slices=[]) is True
    p = tmp_path / "endpoints" / "n1.yaml"
    st = p.stat()
    assert ensure_endpoints_published(tmp_path, node_name="n1", slices=[]) is False
    assert p.stat().st_mtime_ns == st.st_mtime_ns and p.stat().st_ino == st.st_ino
    assert write_if_changed(p, "x\n") is True and p.stat().st_ino != st.st_ino  # replaced by rename, never rewritten in place
    assert [q.name for q in p.parent.iterdir()] == ["n1.yaml"]


def test_read_directory_layout(tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "a.yaml").write_text("apiVersion: v1\nkind: List\nitems:\n- {kind: Node, metadata: {name: a}}\n")
    (tmp_path / "nodes" / ".a.yaml.swp").write_text("junk")
    (tmp_path / "nodes" / "notes.txt").write_text("junk")
    (tmp_path / "top.json").write_text('{"kind": "Service"}')
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    (tmp_path / "endpoints").mkdir()
    (tmp_path / "endpoints" / "b.yaml").write_text("kind: List\nitems: [{kind: EndpointSlice}]\n")
    files, published = read_directory(tmp_path)
    assert sorted(os.path.relpath(k, tmp_path) for k in files) == ["bad.yaml", "nodes/a.yaml", "top.json"]
    assert files[str(tmp_path / "nodes" / "a.yaml")] == [{"kind": "Node", "metadata": {"name": "a"}}]
    assert isinstance(files[str(tmp_path / "bad.yaml")], ClusterError) and "invalid YAML" in str(files[str(tmp_path / "bad.yaml")])
    assert published == {"b": [{"kind": "EndpointSlice"}]}


async def test_unlistable_directory_keeps_the_last_state(tmp_path: Path) -> None:
    """A shared folder that vanishes is "don't know": no routes withdrawn, no endpoints dropped, the error logged."""
    from kubelet.node.cluster import ClusterSync

    class Routes:  # the route boundary (real routes: tests/integration/cluster)
        def __init__(self) -> None:
            self.applied: list[dict[str, str]] = []

        async def apply_routes(self, desired: dict[str, str]) -> tuple[int, list[str]]:
            self.applied.append(dict(desired))
            return 0, []

    cdir = tmp_path / "cluster"
    (cdir / "nodes").mkdir(parents=True)
    (cdir / "nodes" / "b.yaml").write_text(yaml.safe_dump(node("b", "10.0.0.2", "10.244.2.0/24")))
    sync = ClusterSync(cluster_dir=cdir, node_name="a", pod_cidr="10.244.1.0/24")
    sync.routes = Routes()  # type: ignore[assignment]
    first = await sync.sync_once()
    assert first.routes == {"10.244.2.0/24": "10.0.0.2"}
    cdir.rename(tmp_path / "gone")
    with pytest.raises(ClusterError, match="cannot list the cluster directory"):
        await sync.sync_once()
    assert sync.state is first and sync.routes.applied == [{"10.244.2.0/24": "10.0.0.2"}]  # type: ignore[attr-defined]


async def test_a_missing_cluster_dir_is_waited_for_not_created(tmp_path: Path) -> None:
    import asyncio

    from kubelet.node.cluster import ClusterSync

    class Routes:
        async def apply_routes(self, desired: dict[str, str]) -> tuple[int, list[str]]:
            return 0, []

    cdir = tmp_path / "mnt" / "cluster"  # the shared folder is not mounted yet
    sync = ClusterSync(cluster_dir=cdir, node_name="a", node_ip="10.0.0.1", pod_cidr="10.244.1.0/24", poll_interval=0.05)
    sync.routes = Routes()  # type: ignore[assignment]
    task = asyncio.create_task(sync.run())
    try:
        await asyncio.sleep(0.3)
        assert not cdir.exists() and sync.state is None
        cdir.mkdir(parents=True)  # mounted
        for _ in range(100):
            if (cdir / "nodes" / "a.yaml").exists() and sync.state is not None:
                break
            await asyncio.sleep(0.05)
        assert yaml.safe_load((cdir / "nodes" / "a.yaml").read_text())["spec"]["podCIDR"] == "10.244.1.0/24"
        assert [n.name for n in sync.state.view.nodes] == ["a"]  # type: ignore[union-attr]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
