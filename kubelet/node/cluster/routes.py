"""host-gw routes to the other nodes' pod subnets (flannel's host-gw backend), marked `proto 201`.

Routes are marked with route protocol 201 ("nodelet"): only those are ever listed, replaced or deleted, so a route
someone else made is never touched. `compute_routes` is pure; `RouteTable.apply_routes` makes the kernel match it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

ROUTE_PROTO = 201  # `ip route ... proto 201`: nodelet's host-gw routes, and only those, are ever changed


class RouteError(Exception):
    pass


def compute_routes(nodes: Iterable[tuple[str, str, str]], *, self_name: str, self_pod_cidr: str = "") -> tuple[dict[str, str], list[str]]:
    """(name, InternalIP, podCIDR) of live nodes → {podCIDR: gateway} for the others. A CIDR overlapping our own
    or an earlier node's is refused (second value: one problem each)."""
    routes: dict[str, str] = {}
    problems: list[str] = []
    own = ipaddress.ip_network(self_pod_cidr, strict=False) if self_pod_cidr else None
    taken: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for name, ip, cidr in sorted(nodes):
        if name == self_name:
            continue
        net = ipaddress.ip_network(cidr, strict=False)
        if own is not None and own.overlaps(net):
            problems.append(f"node {name}: podCIDR {cidr} overlaps this node's podCIDR {own}: no route")
            continue
        clash = next((n for n, _ in taken if n.overlaps(net)), None)
        if clash is not None:
            problems.append(f"node {name}: podCIDR {cidr} overlaps {clash} of node {dict((str(n), o) for n, o in taken)[str(clash)]}: no route")
            continue
        taken.append((net, name))
        routes[str(net)] = ip
    return routes, problems


class RouteTable:
    """nodelet's host-gw routes (protocol 201) in the main table of this netns or of a named one (`ip -n NAME`)."""

    def __init__(self, *, netns: str | None = None, proto: int = ROUTE_PROTO) -> None:
        self.netns, self.proto = netns, proto

    async def _ip(self, *args: str) -> str:
        argv = ["ip", *(["-n", self.netns] if self.netns else []), *args]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RouteError(f"`{' '.join(argv)}` failed: {err.decode().strip()}")
        return out.decode()

    async def list_routes(self) -> dict[str, str]:
        raw = await self._ip("-j", "-4", "route", "show", "proto", str(self.proto))
        out = {}
        for r in json.loads(raw or "[]"):
            if "gateway" in r:
                dst = r["dst"] if "/" in r["dst"] else f"{r['dst']}/32"
                out[dst] = r["gateway"]
        return out

    async def apply_routes(self, desired: Mapping[str, str]) -> tuple[int, list[str]]:
        """Make our routes exactly `desired` (cidr -> gateway). Returns (routes changed, per-route errors)."""
        current = await self.list_routes()
        changed, problems = 0, []
        for dst in sorted(set(current) - set(desired)):
            try:
                await self._ip("route", "del", dst, "proto", str(self.proto))
                changed += 1
                log.info("host-gw route removed dst=%s", dst)
            except RouteError as e:
                problems.append(str(e))
        for dst, gw in sorted(desired.items()):
            if current.get(dst) == gw:
                continue
            try:
                await self._ip("route", "replace", dst, "via", gw, "proto", str(self.proto))
                changed += 1
                log.info("host-gw route set dst=%s via=%s", dst, gw)
            except RouteError as e:
                problems.append(f"{e} (host-gw needs {gw} on a directly connected network)")
        return changed, problems
