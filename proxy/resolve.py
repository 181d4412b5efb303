"""From documents and local pods to the per-service-port state the rules are rendered from (pure).

``compute_service_ports`` does what the endpoints controller and kube-proxy's service/endpoint caches do together:
selector services get the matching local pods that are Ready (all of them with publishNotReadyAddresses), with the
targetPort resolved by number or by container port name; EndpointSlice/Endpoints documents add addresses elsewhere.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.errors import ServiceSpecError
from proxy.ipalloc import Allocations, compute_allocations
from proxy.labels import match_labels
from proxy.model import (
    DEFAULT_NODE_PORT_RANGE,
    Endpoint,
    EndpointSet,
    ManifestDoc,
    PodInfo,
    Service,
    ServicePortInfo,
    ServicePortName,
    parse_endpoint_doc,
    parse_service,
)

log = logging.getLogger(__name__)

ServiceState = Mapping[ServicePortName, ServicePortInfo]


@dataclass(frozen=True, kw_only=True)
class ResolvedState:
    ports: dict[ServicePortName, ServicePortInfo]
    services: tuple[Service, ...]
    allocations: Allocations
    errors: tuple[ServiceSpecError, ...]


def _ip_key(e: Endpoint) -> tuple[int, int]:
    return int(ipaddress.ip_address(e.ip)), e.port


def compute_service_ports(
    services: Iterable[Service],
    endpoint_sets: Iterable[EndpointSet],
    pods: Iterable[PodInfo],
    *,
    node_name: str = "",
) -> dict[ServicePortName, ServicePortInfo]:
    """Services (with cluster IPs and nodePorts already decided) × endpoints → one entry per service port."""
    by_service: dict[tuple[str, str], list[EndpointSet]] = {}
    for es in endpoint_sets:
        by_service.setdefault((es.namespace, es.service), []).append(es)
    pods_by_ns: dict[str, list[PodInfo]] = {}
    for pod in pods:
        if pod.ip:
            pods_by_ns.setdefault(pod.namespace, []).append(pod)

    out: dict[ServicePortName, ServicePortInfo] = {}
    for svc in services:
        if svc.headless or not svc.cluster_ip:
            continue
        for sp in svc.ports:
            eps: dict[tuple[str, int], Endpoint] = {}
            if svc.selector:
                for pod in pods_by_ns.get(svc.namespace, ()):
                    if not (pod.ready or svc.publish_not_ready) or not match_labels(svc.selector, pod.labels):
                        continue
                    if isinstance(sp.target_port, int):
                        port: int | None = sp.target_port
                    else:
                        port = next(
                            (c.port for c in pod.ports if c.name == sp.target_port and c.protocol == sp.protocol),
                            None,
                        )
                    if port is None:
                        continue  # the pod has no such named port: not an endpoint (as upstream)
                    local = not pod.node_name or not node_name or pod.node_name == node_name
                    eps[(pod.ip, port)] = Endpoint(ip=pod.ip, port=port, local=local)
            for es in by_service.get((svc.namespace, svc.name), ()):
                eport = next((p for p in es.ports if p.name == sp.name and p.protocol == sp.protocol), None)
                if eport is None:
                    continue
                for a in es.addresses:
                    if not (a.ready or svc.publish_not_ready):
                        continue
                    local = bool(node_name) and a.node_name == node_name
                    eps.setdefault((a.ip, eport.port), Endpoint(ip=a.ip, port=eport.port, local=local))
            name = ServicePortName(namespace=svc.namespace, name=svc.name, port=sp.name)
            out[name] = ServicePortInfo(
                name=name,
                protocol=sp.protocol,
                cluster_ip=svc.cluster_ip,
                port=sp.port,
                node_port=sp.node_port,
                external_ips=svc.external_ips,
                affinity_timeout=svc.affinity_timeout,
                internal_local=svc.internal_local,
                external_local=svc.external_local,
                endpoints=tuple(sorted(eps.values(), key=_ip_key)),
            )
    return out


def _doc_key(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return ""
    ns = meta.get("namespace") or "default"
    return f"{ns}/{meta['name']}" if isinstance(ns, str) else ""


def compute_state(
    *,
    services: Sequence[ManifestDoc],
    endpoint_docs: Sequence[ManifestDoc],
    pods: Iterable[PodInfo],
    previous: Allocations,
    node_name: str = "",
    service_cidr: str,
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE,
) -> ResolvedState:
    """Parse, allocate and resolve. Every bad document becomes one error; the rest is served."""
    errors: list[ServiceSpecError] = []
    parsed: list[Service] = []
    invalid: set[str] = set()
    lo, hi = node_port_range
    for d in services:
        pre = d.parsed
        if isinstance(pre, Service) and all(p.node_port is None or lo <= p.node_port <= hi for p in pre.ports):
            parsed.append(pre)  # parsed when its manifest was read; only the nodePort range is this proxy's
            continue
        try:
            parsed.append(parse_service(d.doc, source=d.source, node_port_range=node_port_range))
        except ServiceSpecError as e:
            errors.append(e)
            key = _doc_key(d.doc)
            if key:
                invalid.add(key)
    sets: list[EndpointSet] = []
    for d in endpoint_docs:
        if isinstance(d.parsed, tuple) and all(isinstance(s, EndpointSet) for s in d.parsed):
            sets.extend(d.parsed)
            continue
        try:
            sets.extend(parse_endpoint_doc(d.doc, source=d.source))
        except ServiceSpecError as e:
            errors.append(e)
    good, allocs, alloc_errors = compute_allocations(
        parsed, previous, service_cidr=service_cidr, node_port_range=node_port_range,
        reserved=invalid - {s.key for s in parsed},
    )
    errors.extend(alloc_errors)
    ports = compute_service_ports(good, sets, pods, node_name=node_name)
    return ResolvedState(ports=ports, services=tuple(good), allocations=allocs, errors=tuple(errors))
