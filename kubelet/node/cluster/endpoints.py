"""This node's pods as the proxy and the cluster see them (pure): pod infos, EndpointSlices, mirror pods."""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelet.types import ANN_CONFIG_HASH
from proxy.model import ContainerPort, PodInfo, Protocol, Service

MANAGED_BY = "nodelet.io/cluster"  # endpointslice.kubernetes.io/managed-by of the slices nodelet publishes
ANN_CONFIG_MIRROR = "kubernetes.io/config.mirror"


@dataclass(frozen=True, kw_only=True)
class SlicePod:
    info: PodInfo
    serving: bool  # ready as the probes say, whether or not the pod is terminating
    terminating: bool


def compute_slice_pods(pod_objects: Iterable[Mapping[str, Any]], *, node_name: str) -> list[SlicePod]:
    """The agent's v1 Pod objects → IP, labels, readiness (EndpointConditions) and container ports."""
    out = []
    for p in pod_objects:
        meta, spec, status = p.get("metadata", {}), p.get("spec", {}), p.get("status", {})
        ip = status.get("podIP") or ""
        if not ip:
            continue
        serving = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        terminating = bool(meta.get("deletionTimestamp"))
        ports = tuple(
            ContainerPort(name=cp.get("name", ""), port=int(cp["containerPort"]), protocol=Protocol(cp.get("protocol", "TCP")))
            for c in spec.get("containers", []) for cp in c.get("ports", []) or [] if "containerPort" in cp
        )
        info = PodInfo(namespace=meta.get("namespace", "default"), name=meta.get("name", ""), labels=dict(meta.get("labels") or {}),
                       ip=ip, ready=serving and not terminating, ports=ports, node_name=node_name)
        out.append(SlicePod(info=info, serving=serving, terminating=terminating))
    return out


def compute_pod_infos(pod_objects: Iterable[Mapping[str, Any]], *, node_name: str) -> list[PodInfo]:
    """What the service proxy needs of this node's pods."""
    return [s.info for s in compute_slice_pods(pod_objects, node_name=node_name)]


def _selected(svc: Service, pod: PodInfo) -> bool:
    return svc.selector is not None and bool(svc.selector) and pod.namespace == svc.namespace and all(pod.labels.get(k) == v for k, v in svc.selector)


def render_endpoint_slices(*, node_name: str, services: Iterable[Service], pods: Iterable[SlicePod]) -> list[dict[str, Any]]:
    """EndpointSlices (discovery.k8s.io/v1) of this node's pods for the cluster's selector Services. Pure, sorted.

    One slice per Service and node (named `<service>-<node>`); as the EndpointSlice controller does, pods whose
    named targetPorts resolve to different numbers go to different slices (a slice has one port list)."""
    pods = sorted(pods, key=lambda p: (p.info.namespace, p.info.name))
    slices: list[dict[str, Any]] = []
    for svc in sorted(services, key=lambda s: s.key):
        if svc.headless and not svc.selector:
            continue
        groups: dict[tuple[tuple[str, int, str], ...], list[SlicePod]] = {}
        for sp in pods:
            pod = sp.info
            if not _selected(svc, pod):
                continue
            ports = []
            for port in svc.ports:
                if isinstance(port.target_port, int):
                    ports.append((port.name, port.target_port, str(port.protocol)))
                else:
                    num = next((c.port for c in pod.ports if c.name == port.target_port and c.protocol == port.protocol), None)
                    if num is not None:
                        ports.append((port.name, num, str(port.protocol)))
            if ports:
                groups.setdefault(tuple(ports), []).append(sp)
        for i, (ports_key, members) in enumerate(sorted(groups.items())):
            name = f"{svc.name}-{node_name}" + (f"-{i}" if i else "")
            slices.append({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": name[:253], "namespace": svc.namespace,
                             "labels": {"kubernetes.io/service-name": svc.name, "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
                "addressType": "IPv4",
                "ports": [{"name": n, "port": port, "protocol": proto} for n, port, proto in ports_key],
                "endpoints": [
                    {"addresses": [p.info.ip],
                     "conditions": {"ready": p.info.ready, "serving": p.serving, "terminating": p.terminating},
                     "nodeName": node_name,
                     "targetRef": {"kind": "Pod", "namespace": p.info.namespace, "name": p.info.name}}
                    for p in members
                ],
            })
    return slices


def render_mirror_pod(pod: Mapping[str, Any], *, node_name: str, node_uid: str = "") -> dict[str, Any]:
    """The kubelet's mirror pod of a static pod (pkg/kubelet/pod/mirror_client.go): the pod with its status,
    `kubernetes.io/config.mirror` = its config hash, owned by the Node."""
    doc = copy.deepcopy(dict(pod))
    meta = dict(doc.get("metadata") or {})
    ann = dict(meta.get("annotations") or {})
    ann[ANN_CONFIG_MIRROR] = ann.get(ANN_CONFIG_HASH, "")
    meta["annotations"] = ann
    ref: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "name": node_name, "controller": True}
    if node_uid:
        ref["uid"] = node_uid
    meta["ownerReferences"] = [ref]
    meta.setdefault("namespace", "default")
    doc["metadata"] = meta
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Pod")
    spec = dict(doc.get("spec") or {})
    spec["nodeName"] = node_name
    doc["spec"] = spec
    return doc


__all__ = ["ANN_CONFIG_MIRROR", "MANAGED_BY", "SlicePod", "compute_pod_infos", "compute_slice_pods",
           "render_endpoint_slices", "render_mirror_pod"]
