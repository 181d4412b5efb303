"""What the keys under the prefix say, minus what is invalid (pure): `compute_view(entries) -> ClusterView`."""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.model import ManifestDoc

from .keys import ClusterError, Entry, Keys, parse_entry, parse_node_network

ANN_DECLARED_BY = "nodelet.io/declared-by"  # the node whose manifest directory declared the Service first
ANN_SOURCE = "nodelet.io/source"  # the file it was declared in


@dataclass(frozen=True, kw_only=True)
class ClusterNode:
    name: str
    internal_ip: str
    pod_cidr: str
    entry: Entry


@dataclass(frozen=True, kw_only=True)
class ClusterView:
    nodes: tuple[ClusterNode, ...] = ()  # live nodes (their lease holds) with a usable network
    node_docs: tuple[dict[str, Any], ...] = ()  # every live node's v1 Node
    services: tuple[ManifestDoc, ...] = ()  # every cluster Service, clusterIP allocated
    endpoint_docs: tuple[ManifestDoc, ...] = ()  # live nodes' EndpointSlices (this node's excepted)
    endpoint_slices: tuple[dict[str, Any], ...] = ()  # every live node's EndpointSlices (this node's too)
    pods: tuple[dict[str, Any], ...] = ()  # live nodes' mirror pods
    subnets: Mapping[str, Entry] = field(default_factory=dict)  # podCIDR -> subnets/ entry
    cluster_ips: Mapping[str, str] = field(default_factory=dict)  # ip -> ns/name
    errors: tuple[ClusterError, ...] = ()


def parse_all(keys: Keys, kvs: Iterable[Any]) -> tuple[dict[str, Entry], dict[str, ClusterError]]:
    """KeyValues → valid entries by key, and one error per invalid key."""
    entries: dict[str, Entry] = {}
    bad: dict[str, ClusterError] = {}
    for kv in kvs:
        try:
            entries[kv.key] = parse_entry(keys, kv.key, kv.value, lease=kv.lease, mod_revision=kv.mod_revision)
        except ClusterError as e:
            bad[kv.key] = e
    return entries, bad


def compute_view(entries: Mapping[str, Entry], bad: Mapping[str, ClusterError], *, self_name: str) -> ClusterView:
    errors = list(bad.values())
    live: dict[str, Entry] = {e.node: e for e in entries.values() if e.kind == "node"}
    nodes: list[ClusterNode] = []
    for name, e in sorted(live.items()):
        try:
            ip, cidr = parse_node_network(e)
        except ClusterError as err:
            if name != self_name:
                errors.append(err)
            continue
        nodes.append(ClusterNode(name=name, internal_ip=ip, pod_cidr=cidr, entry=e))
    services, endpoint_docs, slices, pods = [], [], [], []
    subnets: dict[str, Entry] = {}
    ips: dict[str, str] = {}
    for key, e in sorted(entries.items()):
        if e.kind == "service":
            ann = (e.doc.get("metadata") or {}).get("annotations") or {}
            src = f"{ann.get(ANN_SOURCE, '?')} (declared by node {ann.get(ANN_DECLARED_BY, '?')}, etcd {key})"
            services.append(ManifestDoc(source=src, doc=e.doc))
        elif e.kind == "endpointslice" and e.node in live:
            slices.append(e.doc)
            if e.node != self_name:
                endpoint_docs.append(ManifestDoc(source=f"etcd {key}", doc=e.doc))
        elif e.kind == "pod" and e.node in live:
            pods.append(e.doc)
        elif e.kind == "subnet":
            subnets[e.name] = e
        elif e.kind == "clusterip":
            ips[e.name] = e.doc
    return ClusterView(nodes=tuple(nodes), node_docs=tuple(live[n].doc for n in sorted(live)), services=tuple(services),
                       endpoint_docs=tuple(endpoint_docs), endpoint_slices=tuple(slices), pods=tuple(pods),
                       subnets=subnets, cluster_ips=ips, errors=tuple(errors))


def compute_first_difference(a: Any, b: Any, path: str = "spec") -> tuple[str, Any, Any] | None:
    """The first field (dotted path, list indexes) where `a` and `b` differ, with both values; None if equal."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            d = compute_first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            d = compute_first_difference(a[i] if i < len(a) else None, b[i] if i < len(b) else None, f"{path}[{i}]")
            if d is not None:
                return d
        return None
    return None if a == b else (path, a, b)


def render_declared_service(doc: Mapping[str, Any], *, node_name: str, source: str) -> dict[str, Any]:
    """A Service document as declared by this node, normalised for etcd: name/namespace/labels/annotations,
    the spec, and who declared it where (annotations)."""
    meta = doc.get("metadata") or {}
    ann = {k: v for k, v in (meta.get("annotations") or {}).items()} | {ANN_DECLARED_BY: node_name, ANN_SOURCE: source}
    out_meta: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace") or "default", "annotations": ann}
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": out_meta, "spec": copy.deepcopy(dict(doc.get("spec") or {}))}


def compute_spec_difference(declared: Mapping[str, Any], stored: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """Does a declaration differ from the stored Service? clusterIP(s) count only when the declaration sets them."""
    a = dict(declared.get("spec") or {})
    b = dict(stored.get("spec") or {})
    if not a.get("clusterIP"):
        b.pop("clusterIP", None)
        b.pop("clusterIPs", None)
    a.pop("clusterIPs", None)
    b.pop("clusterIPs", None)
    return compute_first_difference(a, b)


__all__ = ["ANN_DECLARED_BY", "ANN_SOURCE", "ClusterNode", "ClusterView", "compute_first_difference",
           "compute_spec_difference", "compute_view", "parse_all", "render_declared_service"]
