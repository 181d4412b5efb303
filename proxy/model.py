"""Services, endpoints and local pods as frozen values, parsed from manifest documents.

``parse_*`` are pure: a document (a dict decoded from YAML/JSON) and the file it came from in, a frozen value or a
:class:`~proxy.errors.ServiceSpecError` naming file, field path and reason out. Validation follows the API server's
(``pkg/apis/core/validation``) for the fields nodelet uses.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NewType

from proxy.errors import ServiceSpecError
from proxy.labels import DNS1035_LABEL_RE, DNS1123_LABEL_RE

Protocol = NewType("Protocol", str)
PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_AFFINITY_TIMEOUT = 10800  # ClientIPConfig.timeoutSeconds default (pkg/apis/core/v1/defaults.go)
MAX_AFFINITY_TIMEOUT = 86400
DEFAULT_NODE_PORT_RANGE = (30000, 32767)

_DNS1123_LABEL = DNS1123_LABEL_RE
_DNS1035_LABEL = DNS1035_LABEL_RE
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class ManifestDoc:
    """One decoded document and the file it came from (what the daemon hands to the proxier)."""

    source: str
    doc: Mapping[str, Any]
    # The document already parsed (a Service, or EndpointSets) when its manifest was read, so updates reuse it.
    parsed: Any = None


@dataclass(frozen=True, kw_only=True, order=True)
class ServicePortName:
    """``ns/name:port`` — kube-proxy's ServicePortName; the key of everything per service port."""

    namespace: str
    name: str
    port: str = ""

    def sort_key(self) -> tuple[str, str, str]:
        """Sorting by this tuple is several times faster than the dataclass' generated ``__lt__``."""
        return (self.namespace, self.name, self.port)

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True, kw_only=True)
class ServicePort:
    name: str
    protocol: Protocol
    port: int
    target_port: int | str
    node_port: int | None = None


@dataclass(frozen=True, kw_only=True)
class Service:
    namespace: str
    name: str
    source: str
    type: str = "ClusterIP"
    cluster_ip: str = ""  # "" = allocate from serviceCIDR; "None" = headless (no rules)
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] | None = None  # None: endpoints come from EndpointSlice/Endpoints docs
    affinity_timeout: int | None = None  # seconds when sessionAffinity is ClientIP
    external_ips: tuple[str, ...] = ()
    publish_not_ready: bool = False
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_local: bool = False  # externalTrafficPolicy: Local

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


@dataclass(frozen=True, kw_only=True)
class EndpointPort:
    name: str
    port: int
    protocol: Protocol


@dataclass(frozen=True, kw_only=True)
class EndpointAddress:
    ip: str
    ready: bool = True
    node_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class EndpointSet:
    """Addresses × ports for one service, from one EndpointSlice or one Endpoints subset."""

    namespace: str
    service: str
    source: str
    ports: tuple[EndpointPort, ...]
    addresses: tuple[EndpointAddress, ...]


@dataclass(frozen=True, kw_only=True)
class ContainerPort:
    name: str
    port: int
    protocol: Protocol = Protocol("TCP")


@dataclass(frozen=True, kw_only=True)
class PodInfo:
    """A pod running on this node, as the daemon knows it (readiness from probes)."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    ready: bool
    ports: tuple[ContainerPort, ...] = ()
    node_name: str = ""


@dataclass(frozen=True, kw_only=True, order=True)
class Endpoint:
    ip: str
    port: int
    local: bool = False

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ServicePortInfo:
    """A service port with its cluster IP decided and its endpoints resolved: the unit rules are rendered from."""

    name: ServicePortName
    protocol: Protocol
    cluster_ip: str
    port: int
    node_port: int | None = None
    external_ips: tuple[str, ...] = ()
    affinity_timeout: int | None = None
    internal_local: bool = False
    external_local: bool = False
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def local_endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.local)


# ---------------------------------------------------------------------------------------------------------------
# parsing helpers


class _Ctx:
    def __init__(self, source: str, obj: str) -> None:
        self.source = source
        self.obj = obj

    def err(self, field_path: str, reason: str) -> ServiceSpecError:
        return ServiceSpecError(self.source, field_path, reason, obj=self.obj)


def _ipv4(ctx: _Ctx, path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ctx.err(path, f"must be an IPv4 address string, got {value!r}")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ctx.err(path, f"invalid IP address {value!r}") from None
    if ip.version != 4:
        raise ctx.err(path, f"only IPv4 is supported, got {value!r}")
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local:
        raise ctx.err(path, f"{value!r} is not a usable unicast address")
    return str(ip)


def _port(ctx: _Ctx, path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.err(path, f"must be an integer, got {value!r}")
    if not 1 <= value <= 65535:
        raise ctx.err(path, f"must be between 1 and 65535, got {value}")
    return value


def _protocol(ctx: _Ctx, path: str, value: Any) -> Protocol:
    if value is None:
        return Protocol("TCP")
    if value not in PROTOCOLS:
        raise ctx.err(path, f"unsupported protocol {value!r} (supported: TCP, UDP, SCTP)")
    return Protocol(value)


def _mapping(ctx: _Ctx, path: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ctx.err(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _bool(ctx: _Ctx, path: str, value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ctx.err(path, f"must be a boolean, got {value!r}")
    return value


def _meta(doc: Mapping[str, Any], source: str, kind: str) -> tuple[str, str, _Ctx]:
    ctx = _Ctx(source, kind)
    if not isinstance(doc, Mapping):
        raise ctx.err("", f"document must be a mapping, got {type(doc).__name__}")
    meta = _mapping(ctx, "metadata", doc.get("metadata"))
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ctx.err("metadata.name", "required")
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str) or not _DNS1123_LABEL.match(namespace) or len(namespace) > 63:
        raise ctx.err("metadata.namespace", f"invalid namespace {namespace!r} (must be a DNS-1123 label)")
    ctx.obj = f"{kind} {namespace}/{name}"
    return namespace, name, ctx


# ---------------------------------------------------------------------------------------------------------------
# Service


def parse_service(
    doc: Mapping[str, Any],
    *,
    source: str,
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE,
) -> Service:
    """Validate and convert one ``kind: Service`` document."""
    namespace, name, ctx = _meta(doc, source, "Service")
    if doc.get("kind", "Service") != "Service":
        raise ctx.err("kind", f"expected Service, got {doc.get('kind')!r}")
    if not _DNS1035_LABEL.match(name) or len(name) > 63:
        raise ctx.err("metadata.name", f"invalid name {name!r} (must be a DNS-1035 label)")
    spec = _mapping(ctx, "spec", doc.get("spec"))

    svc_type = spec.get("type") or "ClusterIP"
    if svc_type not in ("ClusterIP", "NodePort"):
        if svc_type in ("LoadBalancer", "ExternalName"):
            raise ctx.err("spec.type", f"type {svc_type} is not supported by nodelet (use ClusterIP or NodePort)")
        raise ctx.err("spec.type", f"unsupported value {svc_type!r} (supported: ClusterIP, NodePort)")

    raw_ip = spec.get("clusterIP")
    cluster_ip = ""
    if raw_ip == "None":
        if svc_type != "ClusterIP":
            raise ctx.err("spec.clusterIP", "may be 'None' only when type is ClusterIP")
        cluster_ip = "None"
    elif raw_ip not in (None, ""):
        cluster_ip = _ipv4(ctx, "spec.clusterIP", raw_ip)

    raw_ports = spec.get("ports")
    if raw_ports is None:
        raw_ports = []
    if not isinstance(raw_ports, Sequence) or isinstance(raw_ports, str):
        raise ctx.err("spec.ports", "must be a list")
    if not raw_ports and cluster_ip != "None":
        raise ctx.err("spec.ports", "required: at least one port")
    ports: list[ServicePort] = []
    seen_names: dict[str, int] = {}
    seen_ports: dict[tuple[int, str], int] = {}
    for i, raw in enumerate(raw_ports):
        path = f"spec.ports[{i}]"
        raw = _mapping(ctx, path, raw)
        pname = raw.get("name") or ""
        if not isinstance(pname, str):
            raise ctx.err(f"{path}.name", f"must be a string, got {pname!r}")
        if len(raw_ports) > 1 and not pname:
            raise ctx.err(f"{path}.name", "required when the service has more than one port")
        if pname and (not _DNS1123_LABEL.match(pname) or len(pname) > 63):
            raise ctx.err(f"{path}.name", f"invalid port name {pname!r} (must be a DNS-1123 label)")
        if pname in seen_names:
            raise ctx.err(f"{path}.name", f"duplicate port name {pname!r} (also spec.ports[{seen_names[pname]}])")
        seen_names[pname] = i
        protocol = _protocol(ctx, f"{path}.protocol", raw.get("protocol"))
        port = _port(ctx, f"{path}.port", raw.get("port"))
        if (port, protocol) in seen_ports:
            raise ctx.err(
                f"{path}.port", f"duplicate port {port}/{protocol} (also spec.ports[{seen_ports[(port, protocol)]}])"
            )
        seen_ports[(port, protocol)] = i
        target = raw.get("targetPort")
        target_port: int | str
        if target is None or target == "" or target == 0:
            target_port = port
        elif isinstance(target, str) and not target.isdigit():
            if len(target) > 15 or not _IANA_SVC_NAME.match(target) or "--" in target or target.isdigit():
                raise ctx.err(f"{path}.targetPort", f"invalid port name {target!r} (must be an IANA_SVC_NAME)")
            target_port = target
        else:
            target_port = _port(ctx, f"{path}.targetPort", int(target) if isinstance(target, str) else target)
        node_port = raw.get("nodePort")
        if node_port in (None, 0):
            node_port = None
        else:
            if svc_type != "NodePort":
                raise ctx.err(f"{path}.nodePort", f"may not be set when type is {svc_type}")
            node_port = _port(ctx, f"{path}.nodePort", node_port)
            lo, hi = node_port_range
            if not lo <= node_port <= hi:
                raise ctx.err(f"{path}.nodePort", f"{node_port} is outside the node port range {lo}-{hi}")
        ports.append(
            ServicePort(name=pname, protocol=protocol, port=port, target_port=target_port, node_port=node_port)
        )

    raw_sel = spec.get("selector")
    selector: tuple[tuple[str, str], ...] | None = None
    if raw_sel:
        sel = _mapping(ctx, "spec.selector", raw_sel)
        for k, v in sel.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ctx.err(f"spec.selector.{k}", f"label keys and values must be strings, got {v!r}")
        selector = tuple(sorted(sel.items()))

    affinity = spec.get("sessionAffinity") or "None"
    affinity_timeout: int | None = None
    if affinity == "ClientIP":
        cfg = _mapping(ctx, "spec.sessionAffinityConfig", spec.get("sessionAffinityConfig"))
        client = _mapping(ctx, "spec.sessionAffinityConfig.clientIP", cfg.get("clientIP"))
        t = client.get("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT)
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= MAX_AFFINITY_TIMEOUT:
            raise ctx.err(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                f"must be between 1 and {MAX_AFFINITY_TIMEOUT}, got {t!r}",
            )
        affinity_timeout = t
    elif affinity != "None":
        raise ctx.err("spec.sessionAffinity", f"unsupported value {affinity!r} (supported: None, ClientIP)")

    raw_ext = spec.get("externalIPs") or []
    if not isinstance(raw_ext, Sequence) or isinstance(raw_ext, str):
        raise ctx.err("spec.externalIPs", "must be a list")
    external_ips = tuple(_ipv4(ctx, f"spec.externalIPs[{i}]", v) for i, v in enumerate(raw_ext))
    if len(set(external_ips)) != len(external_ips):
        raise ctx.err("spec.externalIPs", "duplicate address")

    itp = spec.get("internalTrafficPolicy") or "Cluster"
    if itp not in ("Cluster", "Local"):
        raise ctx.err("spec.internalTrafficPolicy", f"unsupported value {itp!r} (supported: Cluster, Local)")
    etp = spec.get("externalTrafficPolicy") or "Cluster"
    if etp not in ("Cluster", "Local"):
        raise ctx.err("spec.externalTrafficPolicy", f"unsupported value {etp!r} (supported: Cluster, Local)")
    if etp == "Local" and svc_type != "NodePort" and not external_ips:
        raise ctx.err("spec.externalTrafficPolicy", "may only be Local for NodePort services or with externalIPs")

    return Service(
        namespace=namespace,
        name=name,
        source=source,
        type=svc_type,
        cluster_ip=cluster_ip,
        ports=tuple(ports),
        selector=selector,
        affinity_timeout=affinity_timeout,
        external_ips=external_ips,
        publish_not_ready=_bool(ctx, "spec.publishNotReadyAddresses", spec.get("publishNotReadyAddresses")),
        internal_local=itp == "Local",
        external_local=etp == "Local",
    )


# ---------------------------------------------------------------------------------------------------------------
# EndpointSlice / Endpoints


def _endpoint_ports(ctx: _Ctx, path: str, raw_ports: Any, *, protocol_required: bool = False) -> tuple[EndpointPort, ...]:
    if raw_ports is None:
        return ()
    if not isinstance(raw_ports, Sequence) or isinstance(raw_ports, str):
        raise ctx.err(path, "must be a list")
    ports = []
    names: set[str] = set()
    for i, raw in enumerate(raw_ports):
        p = f"{path}[{i}]"
        raw = _mapping(ctx, p, raw)
        name = raw.get("name") or ""
        if not isinstance(name, str):
            raise ctx.err(f"{p}.name", f"must be a string, got {name!r}")
        if name in names:
            raise ctx.err(f"{p}.name", f"duplicate port name {name!r}")
        names.add(name)
        ports.append(
            EndpointPort(
                name=name,
                port=_port(ctx, f"{p}.port", raw.get("port")),
                protocol=_protocol(ctx, f"{p}.protocol", raw.get("protocol")),
            )
        )
    return tuple(ports)


def parse_endpoint_slice(doc: Mapping[str, Any], *, source: str) -> EndpointSet:
    """``kind: EndpointSlice`` (discovery.k8s.io/v1); the service is the ``kubernetes.io/service-name`` label."""
    namespace, name, ctx = _meta(doc, source, "EndpointSlice")
    labels = _mapping(ctx, "metadata.labels", doc["metadata"].get("labels"))
    service = labels.get("kubernetes.io/service-name")
    if not isinstance(service, str) or not service:
        raise ctx.err("metadata.labels", "the label kubernetes.io/service-name is required")
    addr_type = doc.get("addressType", "IPv4")
    if addr_type != "IPv4":
        raise ctx.err("addressType", f"only IPv4 is supported, got {addr_type!r}")
    ports = _endpoint_ports(ctx, "ports", doc.get("ports"))
    raw_eps = doc.get("endpoints") or []
    if not isinstance(raw_eps, Sequence) or isinstance(raw_eps, str):
        raise ctx.err("endpoints", "must be a list")
    addresses = []
    for i, raw in enumerate(raw_eps):
        p = f"endpoints[{i}]"
        raw = _mapping(ctx, p, raw)
        addrs = raw.get("addresses")
        if not isinstance(addrs, Sequence) or isinstance(addrs, str) or not addrs:
            raise ctx.err(f"{p}.addresses", "required: at least one address")
        cond = _mapping(ctx, f"{p}.conditions", raw.get("conditions"))
        # API semantics: a nil ready condition means ready.
        ready = _bool(ctx, f"{p}.conditions.ready", cond.get("ready"), default=True)
        node = raw.get("nodeName")
        if node is not None and not isinstance(node, str):
            raise ctx.err(f"{p}.nodeName", f"must be a string, got {node!r}")
        for j, a in enumerate(addrs):
            addresses.append(EndpointAddress(ip=_ipv4(ctx, f"{p}.addresses[{j}]", a), ready=ready, node_name=node))
    return EndpointSet(namespace=namespace, service=service, source=source, ports=ports, addresses=tuple(addresses))


def parse_endpoints(doc: Mapping[str, Any], *, source: str) -> tuple[EndpointSet, ...]:
    """``kind: Endpoints`` (core/v1): one :class:`EndpointSet` per subset; the service is the object's name."""
    namespace, name, ctx = _meta(doc, source, "Endpoints")
    subsets = doc.get("subsets") or []
    if not isinstance(subsets, Sequence) or isinstance(subsets, str):
        raise ctx.err("subsets", "must be a list")
    out = []
    for i, raw in enumerate(subsets):
        p = f"subsets[{i}]"
        raw = _mapping(ctx, p, raw)
        ports = _endpoint_ports(ctx, f"{p}.ports", raw.get("ports"))
        addresses = []
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for j, a in enumerate(raw.get(key) or []):
                a = _mapping(ctx, f"{p}.{key}[{j}]", a)
                node = a.get("nodeName")
                addresses.append(
                    EndpointAddress(ip=_ipv4(ctx, f"{p}.{key}[{j}].ip", a.get("ip")), ready=ready, node_name=node)
                )
        out.append(EndpointSet(namespace=namespace, service=name, source=source, ports=ports, addresses=tuple(addresses)))
    return tuple(out)


def parse_endpoint_doc(doc: Mapping[str, Any], *, source: str) -> tuple[EndpointSet, ...]:
    """Dispatch on ``kind``: EndpointSlice or Endpoints."""
    kind = doc.get("kind") if isinstance(doc, Mapping) else None
    if kind == "EndpointSlice":
        return (parse_endpoint_slice(doc, source=source),)
    if kind == "Endpoints":
        return parse_endpoints(doc, source=source)
    raise ServiceSpecError(source, "kind", f"expected EndpointSlice or Endpoints, got {kind!r}")
