"""ClusterIP and nodePort allocation: deterministic, persisted, conflicts are errors naming both services.

``compute_allocations`` is pure: the services, the previous allocations and the ranges in; the new allocations and
one error per service that cannot be served out. A service keeps whatever it was given before (so an IP never
changes across restarts); a new service without ``clusterIP`` gets the first free address probing from
``sha256(ns/name)`` in ``serviceCIDR``, so the same set of manifests yields the same IPs on every node.
:class:`AllocationStore` persists the result atomically (write, fsync, rename) in the state dir.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cni.fsutil import write_atomic
from proxy.errors import AllocationError
from proxy.model import Service

log = logging.getLogger(__name__)

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
STATE_FILE = "allocations.json"


@dataclass(frozen=True, kw_only=True)
class Allocations:
    cluster_ips: Mapping[str, str] = field(default_factory=dict)  # "ns/name" -> ip
    node_ports: Mapping[str, int] = field(default_factory=dict)  # "ns/name:port/PROTO" -> nodePort


def _port_key(svc: Service, port_name: str, protocol: str) -> str:
    return f"{svc.key}:{port_name}/{protocol}"


def _hash_start(key: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % size


def compute_allocations(
    services: Iterable[Service],
    previous: Allocations,
    *,
    service_cidr: str = DEFAULT_SERVICE_CIDR,
    node_port_range: tuple[int, int] = (30000, 32767),
    reserved: Collection[str] = (),
) -> tuple[list[Service], Allocations, list[AllocationError]]:
    """Give every service its ClusterIP and nodePorts. Returns (services with them filled in, allocations, errors).

    A service with an error is left out of the returned list; the others are unaffected. Allocations of services
    no longer present are released, except those in ``reserved`` ("ns/name" of services whose document is
    currently invalid): they keep their addresses so that fixing the file brings them back unchanged.
    """
    net = ipaddress.ip_network(service_cidr)
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1  # network/broadcast never handed out
    size = last - first + 1
    # Deterministic order: services that held an allocation before go first, then by source and name.
    svcs = sorted(services, key=lambda s: (s.key not in previous.cluster_ips, s.source, s.key))
    errors: list[AllocationError] = []
    bad: set[str] = set()
    ip_owner: dict[str, str] = {}  # ip -> "Service ns/name (source)"
    new_ips: dict[str, str] = {}
    reserved = set(reserved)
    for key in sorted(reserved):
        if key in previous.cluster_ips:
            ip_owner[previous.cluster_ips[key]] = f"Service {key} (invalid now, its address is kept)"

    def fail(svc: Service, field_path: str, reason: str) -> None:
        errors.append(AllocationError(svc.source, field_path, reason, obj=f"Service {svc.key}"))
        bad.add(svc.key)

    # duplicate objects (same ns/name in two files)
    seen: dict[str, Service] = {}
    for svc in svcs:
        if svc.key in seen:
            fail(svc, "metadata.name", f"Service {svc.key} is also defined in {seen[svc.key].source}")
        else:
            seen[svc.key] = svc
    svcs = [s for s in svcs if s.key not in bad or seen.get(s.key) is s]
    bad.clear()

    # pass 1: explicit IPs, and kept previous allocations
    for svc in svcs:
        if svc.headless:
            continue
        want = svc.cluster_ip or previous.cluster_ips.get(svc.key, "")
        if not want:
            continue
        if ipaddress.ip_address(want) not in net or not first <= int(ipaddress.ip_address(want)) <= last:
            if svc.cluster_ip:
                fail(svc, "spec.clusterIP", f"{want} is not in the service CIDR {service_cidr}")
            continue  # a remembered IP from another CIDR: allocate anew below
        if want in ip_owner:
            if svc.cluster_ip:
                fail(svc, "spec.clusterIP", f"{want} is already allocated to {ip_owner[want]}")
            continue
        ip_owner[want] = f"Service {svc.key} ({svc.source})"
        new_ips[svc.key] = want

    # pass 2: new services without an IP
    for svc in svcs:
        if svc.headless or svc.key in bad or svc.key in new_ips or svc.cluster_ip:
            continue
        start = _hash_start(svc.key, size)
        for i in range(size):
            cand = str(ipaddress.ip_address(first + (start + i) % size))
            if cand not in ip_owner:
                ip_owner[cand] = f"Service {svc.key} ({svc.source})"
                new_ips[svc.key] = cand
                break
        else:
            fail(svc, "spec.clusterIP", f"the service CIDR {service_cidr} is full")

    # nodePorts: explicit and remembered first, then deterministic allocation
    lo, hi = node_port_range
    np_owner: dict[tuple[int, str], str] = {}
    new_nps: dict[str, int] = {}
    for key, port in previous.node_ports.items():
        if key.split(":", 1)[0] in reserved:
            np_owner[(port, key.rsplit("/", 1)[1])] = f"Service {key.split(':', 1)[0]} (invalid now, its port is kept)"
    wanted: list[tuple[Service, int, str, int | None]] = []
    for svc in svcs:
        if svc.key in bad or svc.type != "NodePort":
            continue
        for i, p in enumerate(svc.ports):
            key = _port_key(svc, p.name, p.protocol)
            wanted.append((svc, i, key, p.node_port or previous.node_ports.get(key)))
    for svc, i, key, node_port in wanted:
        if node_port is None:
            continue
        explicit = svc.ports[i].node_port is not None
        if not lo <= node_port <= hi:
            continue  # only a remembered port can be out of range (explicit ones fail parsing)
        if (node_port, svc.ports[i].protocol) in np_owner:
            if explicit:
                owner = np_owner[(node_port, svc.ports[i].protocol)]
                fail(svc, f"spec.ports[{i}].nodePort", f"{node_port}/{svc.ports[i].protocol} is already allocated to {owner}")
            continue
        np_owner[(node_port, svc.ports[i].protocol)] = f"Service {svc.key} ({svc.source})"
        new_nps[key] = node_port
    for svc, i, key, _ in wanted:
        if svc.key in bad or key in new_nps:
            continue
        proto = svc.ports[i].protocol
        n = hi - lo + 1
        start = _hash_start(key, n)
        for j in range(n):
            free_port = lo + (start + j) % n
            if (free_port, proto) not in np_owner:
                np_owner[(free_port, proto)] = f"Service {svc.key} ({svc.source})"
                new_nps[key] = free_port
                break
        else:
            fail(svc, f"spec.ports[{i}].nodePort", f"no free node port in {lo}-{hi}")

    # externalIP:port clashes between services
    ext_owner: dict[tuple[str, int, str], Service] = {}
    for svc in svcs:
        if svc.key in bad:
            continue
        for i, p in enumerate(svc.ports):
            for ip in svc.external_ips:
                k = (ip, p.port, p.protocol)
                if k in ext_owner and ext_owner[k].key != svc.key:
                    other = ext_owner[k]
                    fail(svc, "spec.externalIPs", f"{ip}:{p.port}/{p.protocol} is already used by Service {other.key} ({other.source})")
                ext_owner.setdefault(k, svc)

    out: list[Service] = []
    for svc in svcs:
        if svc.key in bad:
            continue
        ports = tuple(
            replace(p, node_port=new_nps[_port_key(svc, p.name, p.protocol)]) if svc.type == "NodePort" else p
            for p in svc.ports
        )
        out.append(replace(svc, cluster_ip=svc.cluster_ip if svc.headless else new_ips[svc.key], ports=ports))
    good = {s.key for s in out}
    allocs = Allocations(
        cluster_ips={k: v for k, v in sorted(new_ips.items()) if k in good},
        node_ports={k: v for k, v in sorted(new_nps.items()) if k.split(":", 1)[0] in good},
    )
    # Keep the allocations of services that failed this time (e.g. a file mid-edit) so they do not move.
    keep = bad | reserved
    keep_ips = {k: v for k, v in previous.cluster_ips.items() if k in keep and v not in allocs.cluster_ips.values()}
    keep_nps = {k: v for k, v in previous.node_ports.items() if k.split(":", 1)[0] in keep and k not in allocs.node_ports}
    if keep_ips or keep_nps:
        allocs = Allocations(
            cluster_ips=dict(sorted({**allocs.cluster_ips, **keep_ips}.items())),
            node_ports=dict(sorted({**allocs.node_ports, **keep_nps}.items())),
        )
    out.sort(key=lambda s: s.key)
    return out, allocs, errors


class AllocationStore:
    """``<state_dir>/allocations.json``, replaced atomically. ``state_dir=None`` keeps it in memory only."""

    def __init__(self, state_dir: str | os.PathLike[str] | None) -> None:
        self.path = Path(state_dir) / STATE_FILE if state_dir is not None else None
        self._current = Allocations()
        if self.path is not None and self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                self._current = Allocations(
                    cluster_ips=dict(raw.get("clusterIPs", {})), node_ports=dict(raw.get("nodePorts", {}))
                )
            except (OSError, ValueError, AttributeError) as e:
                log.error("unreadable allocation state, starting empty path=%s error=%s", self.path, e)

    @property
    def current(self) -> Allocations:
        return self._current

    def save(self, allocs: Allocations) -> None:
        if allocs == self._current:
            return
        self._current = allocs
        if self.path is None:
            return
        data = json.dumps(
            {"clusterIPs": dict(allocs.cluster_ips), "nodePorts": dict(allocs.node_ports)}, indent=1, sort_keys=True
        )
        write_atomic(self.path, data, mode=None, sync_dir=True, mkdir=True, tmp_prefix=".allocations.")
