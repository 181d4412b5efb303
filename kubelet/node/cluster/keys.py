"""The key layout under the prefix (default `/nodelet`) and the parsing of what is stored there (pure).

    <prefix>/nodes/<node>                        v1 Node (JSON)                    node lease
    <prefix>/subnets/<a.b.c.d>-<len>             {"node", "podCIDR", "internalIP"} subnet lease (24 h, flannel's)
    <prefix>/services/<ns>/<name>                v1 Service with spec.clusterIP   no lease (like the API server's)
    <prefix>/clusterips/<ip>                     "<ns>/<name>"                    no lease; allocated with the Service
    <prefix>/endpointslices/<node>/<ns>/<name>   discovery.k8s.io/v1 EndpointSlice node lease
    <prefix>/pods/<node>/<ns>/<name>             mirror v1 Pod                    node lease

A node writes only its own nodes/, subnets/ (its subnet), endpointslices/<node>/ and pods/<node>/ keys, plus the
Services its manifest directory declares (and their clusterips/ key). Keys of other kinds under the prefix are
reported and ignored; nothing outside the prefix is read or written.
"""
from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NewType

NodeName = NewType("NodeName", str)
DEFAULT_PREFIX = "/nodelet"
Kind = Literal["node", "subnet", "service", "clusterip", "endpointslice", "pod"]
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EXPECTED = {"node": ("v1", "Node"), "service": ("v1", "Service"), "endpointslice": ("discovery.k8s.io/v1", "EndpointSlice"),
             "pod": ("v1", "Pod")}


class ClusterError(Exception):
    """One bad input (key or file, field, reason); the rest of the cluster is still served."""

    def __init__(self, source: str, field_path: str, reason: str) -> None:
        super().__init__(f"{source}: {field_path}: {reason}" if field_path else f"{source}: {reason}")
        self.source, self.field, self.reason = source, field_path, reason


@dataclass(frozen=True, kw_only=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    @property
    def root(self) -> str:
        return self.prefix.rstrip("/") + "/"

    def node(self, name: str) -> str:
        return f"{self.root}nodes/{name}"

    def subnet(self, cidr: str) -> str:
        return f"{self.root}subnets/{cidr.replace('/', '-')}"

    def service(self, namespace: str, name: str) -> str:
        return f"{self.root}services/{namespace}/{name}"

    def cluster_ip(self, ip: str) -> str:
        return f"{self.root}clusterips/{ip}"

    def endpoint_slice(self, node: str, namespace: str, name: str) -> str:
        return f"{self.root}endpointslices/{node}/{namespace}/{name}"

    def pod(self, node: str, namespace: str, name: str) -> str:
        return f"{self.root}pods/{node}/{namespace}/{name}"

    def owned_prefixes(self, node: str) -> tuple[str, ...]:
        return (f"{self.root}endpointslices/{node}/", f"{self.root}pods/{node}/")


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One parsed value under the prefix."""

    key: str
    kind: Kind
    node: str = ""  # the node the key belongs to (nodes/, subnets/ value, endpointslices/, pods/)
    name: str = ""
    namespace: str = ""
    doc: Any = None  # the decoded JSON (dict) or the clusterips/ value (str)
    lease: int = 0
    mod_revision: int = 0


def _name_ok(v: str) -> bool:
    return bool(v) and len(v) <= 253 and bool(_DNS1123_SUBDOMAIN.match(v))


def parse_entry(keys: Keys, key: str, value: bytes, *, lease: int = 0, mod_revision: int = 0) -> Entry:
    """Key + value → Entry, or ClusterError naming the key, the field and the reason."""
    if not key.startswith(keys.root):
        raise ClusterError(key, "", f"outside the prefix {keys.root}")
    parts = key[len(keys.root):].split("/")
    top = parts[0]
    shapes = {"nodes": 2, "subnets": 2, "services": 3, "clusterips": 2, "endpointslices": 4, "pods": 4}
    if top not in shapes:
        raise ClusterError(key, "", f"unknown kind of key {top!r} (nodes, subnets, services, clusterips, endpointslices, pods)")
    if len(parts) != shapes[top] or not all(parts):
        raise ClusterError(key, "", f"malformed {top} key (expected {shapes[top] - 1} path segments after {top}/)")
    try:
        text = value.decode()
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError) as e:
        raise ClusterError(key, "", f"value is not valid JSON: {e}") from None
    common: dict[str, Any] = {"key": key, "lease": lease, "mod_revision": mod_revision}
    if top == "clusterips":
        try:
            ipaddress.ip_address(parts[1])
        except ValueError:
            raise ClusterError(key, "", f"{parts[1]!r} is not an IP address") from None
        if not isinstance(doc, str) or doc.count("/") != 1:
            raise ClusterError(key, "", f'value must be the JSON string "<namespace>/<name>", got {text[:80]!r}')
        return Entry(kind="clusterip", name=parts[1], doc=doc, **common)
    if not isinstance(doc, Mapping):
        raise ClusterError(key, "", f"value must be a JSON object, got {type(doc).__name__}")
    if top == "subnets":
        try:
            net = ipaddress.IPv4Network(parts[1].replace("-", "/"), strict=True)
        except ValueError as e:
            raise ClusterError(key, "", f"{parts[1]!r} is not a subnet key (a.b.c.d-len): {e}") from None
        node, ip = doc.get("node"), doc.get("internalIP", "")
        if not isinstance(node, str) or not _name_ok(node):
            raise ClusterError(key, "node", f"must be a node name, got {node!r}")
        return Entry(kind="subnet", node=node, name=str(net), doc=dict(doc), **common)
    kind: Kind = {"nodes": "node", "services": "service", "endpointslices": "endpointslice", "pods": "pod"}[top]  # type: ignore[assignment]
    api, k = _EXPECTED[kind]
    if doc.get("kind") != k:
        raise ClusterError(key, "kind", f"must be {k!r} under {top}/, got {doc.get('kind')!r}")
    if doc.get("apiVersion") != api:
        raise ClusterError(key, "apiVersion", f"must be {api!r}, got {doc.get('apiVersion')!r}")
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        raise ClusterError(key, "metadata", "required")
    name = meta.get("name")
    if kind == "node":
        if name != parts[1]:
            raise ClusterError(key, "metadata.name", f"must be {parts[1]!r} (the key), got {name!r}")
        return Entry(kind="node", node=parts[1], name=parts[1], doc=dict(doc), **common)
    ns = meta.get("namespace", "default")
    key_ns, key_name = (parts[1], parts[2]) if kind == "service" else (parts[2], parts[3])
    if name != key_name or ns != key_ns:
        raise ClusterError(key, "metadata", f"namespace/name must be {key_ns}/{key_name} (the key), got {ns}/{name}")
    return Entry(kind=kind, node="" if kind == "service" else parts[1], name=key_name, namespace=key_ns, doc=dict(doc), **common)


def parse_node_network(entry: Entry) -> tuple[str, str]:
    """(InternalIP, podCIDR) of a node entry, or ClusterError."""
    doc = entry.doc
    spec = doc.get("spec") or {}
    cidr = spec.get("podCIDR") if isinstance(spec, Mapping) else None
    if not cidr:
        raise ClusterError(entry.key, "spec.podCIDR", "required for a route to the node's pods")
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except (ValueError, TypeError) as e:
        raise ClusterError(entry.key, "spec.podCIDR", f"must be an IPv4 CIDR, got {cidr!r} ({e})") from None
    status = doc.get("status") or {}
    addrs = status.get("addresses") if isinstance(status, Mapping) else None
    for i, a in enumerate(addrs if isinstance(addrs, list) else []):
        if isinstance(a, Mapping) and a.get("type") == "InternalIP":
            try:
                return str(ipaddress.IPv4Address(a.get("address"))), str(net)
            except ValueError:
                raise ClusterError(entry.key, f"status.addresses[{i}].address", f"must be an IPv4 address, got {a.get('address')!r}") from None
    raise ClusterError(entry.key, "status.addresses", "no entry with type: InternalIP")


def node_ready(entry: Entry) -> bool:
    conds = (entry.doc.get("status") or {}).get("conditions") or []
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


__all__ = ["ClusterError", "DEFAULT_PREFIX", "Entry", "Keys", "NodeName", "node_ready", "parse_entry", "parse_node_network"]
