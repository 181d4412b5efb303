"""Pod subnets and ClusterIPs picked from what etcd holds (pure); the etcd transaction makes the pick safe.

Both pickers are deterministic per name (probing from sha256(name)), so ten nodes starting at once mostly pick
different candidates and the create-if-absent transaction rarely has to retry.
"""
from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Collection
from typing import Any


class AllocationError(Exception):
    pass


def _start(name: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % size if size else 0


def compute_subnet_candidates(cluster_cidr: str, prefix_len: int, *, taken: Collection[str], name: str, limit: int = 8) -> list[str]:
    """Up to `limit` free /prefix_len subnets of cluster_cidr, starting at the node name's hash."""
    net = ipaddress.IPv4Network(cluster_cidr, strict=True)
    if prefix_len < net.prefixlen or prefix_len > 30:
        raise AllocationError(f"nodeSubnetSize /{prefix_len} does not fit clusterCIDR {net} (must be /{net.prefixlen}../30)")
    count = 1 << (prefix_len - net.prefixlen)
    taken_nets = [ipaddress.ip_network(t, strict=False) for t in taken]
    base, step = int(net.network_address), 1 << (32 - prefix_len)
    out: list[str] = []
    first = _start(name, count)
    for i in range(count):
        idx = (first + i) % count
        cand = ipaddress.IPv4Network((base + idx * step, prefix_len))
        if any(cand.overlaps(t) for t in taken_nets):
            continue
        out.append(str(cand))
        if len(out) >= limit:
            break
    return out


def compute_cluster_ip_candidates(service_cidr: str, *, taken: Collection[str], key: str, limit: int = 8) -> list[str]:
    """Free addresses of service_cidr for Service `key` (ns/name). The network address and the first host (the
    `kubernetes` Service's, by Kubernetes' convention) are never handed out, nor the broadcast address."""
    net: Any = ipaddress.ip_network(service_cidr, strict=True)
    first_host = int(net.network_address) + 2
    last = int(net.broadcast_address) - 1 if net.version == 4 else int(net.broadcast_address)
    size = max(0, last - first_host + 1)
    out: list[str] = []
    start = _start(key, size)
    for i in range(size):
        ip = str(ipaddress.ip_address(first_host + (start + i) % size))
        if ip not in taken:
            out.append(ip)
            if len(out) >= limit:
                break
    return out
