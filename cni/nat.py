"""ipMasq through nftables, in nodelet's own table: `table ip nodelet-cni` (and `ip6 nodelet-cni`).

Per network (h = 8 hex of sha256(network name)):
  set   pods-<h>  the pod addresses to masquerade, each element commented `id=<containerID> if=<ifname>`
  chain masq-<h>  nat postrouting: `ip saddr @pods-<h> ip daddr != {<pod subnets>} ip daddr != 224.0.0.0/4 masquerade`
ADD adds an element, DEL removes it (add+delete in one transaction, so a missing element is not an error), GC
removes elements not in the valid attachments and drops the chain/set/table when nothing is left. One `nft -f -`
exec per call; nothing outside our table is ever read-modified. nft's own nat hook works next to iptables-nft and
iptables-legacy alike, so no backend detection is needed.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import shutil
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from .config import Attachment, ContainerId, IPAddress, IPNetwork
from .errors import FirewallFailure

log = logging.getLogger(__name__)
TABLE = "nodelet-cni"


def compute_net_hash(network: str) -> str:
    return hashlib.sha256(network.encode()).hexdigest()[:8]


def _family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def render_owner_comment(owner: Attachment) -> str:
    return f"id={owner.container_id} if={owner.ifname}"


def parse_owner_comment(comment: str) -> Attachment | None:
    parts = dict(p.split("=", 1) for p in comment.split() if "=" in p)
    if "id" not in parts:
        return None
    return Attachment(container_id=ContainerId(parts["id"]), ifname=parts.get("if", ""))


def _render_base(network: str, version: int, subnets: Sequence[IPNetwork]) -> list[str]:
    fam, h = _family(version), compute_net_hash(network)
    addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
    mcast = "224.0.0.0/4" if version == 4 else "ff00::/8"
    nets = ", ".join(str(s) for s in subnets)
    return [
        f"add table {fam} {TABLE}",
        f'add set {fam} {TABLE} pods-{h} {{ type {addr_type}; comment "nodelet-cni network={network}"; }}',
        f"add chain {fam} {TABLE} masq-{h} {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"flush chain {fam} {TABLE} masq-{h}",
        f"add rule {fam} {TABLE} masq-{h} {fam} saddr @pods-{h} {fam} daddr != {{ {nets} }} "
        f'{fam} daddr != {mcast} masquerade comment "nodelet-cni network={network}"',
    ]


def render_add(*, network: str, subnets: Sequence[IPNetwork], addresses: Sequence[IPAddress],
               owner: Attachment) -> str:
    lines: list[str] = []
    for version in sorted({a.version for a in addresses}):
        fam, h = _family(version), compute_net_hash(network)
        lines += _render_base(network, version, [s for s in subnets if s.version == version])
        for a in addresses:
            if a.version == version:
                lines.append(f'add element {fam} {TABLE} pods-{h} {{ {a} comment "{render_owner_comment(owner)}" }}')
    return "\n".join(lines) + "\n"


def render_del(*, network: str, addresses: Iterable[IPAddress]) -> str:
    """Remove elements; add-then-delete in one transaction makes it a no-op for absent ones."""
    lines: list[str] = []
    h = compute_net_hash(network)
    addrs = sorted(set(addresses), key=lambda a: (a.version, int(a)))
    for version in sorted({a.version for a in addrs}):
        fam = _family(version)
        addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
        lines += [f"add table {fam} {TABLE}",
                  f'add set {fam} {TABLE} pods-{h} {{ type {addr_type}; comment "nodelet-cni network={network}"; }}']
        for a in addrs:
            if a.version == version:
                lines += [f"add element {fam} {TABLE} pods-{h} {{ {a} }}",
                          f"delete element {fam} {TABLE} pods-{h} {{ {a} }}"]
    return "\n".join(lines) + "\n" if lines else ""


def compute_gc(ruleset: dict[str, Any], *, network: str, version: int,
               valid: Collection[Attachment]) -> tuple[str, list[tuple[IPAddress | str, Attachment | None]]]:
    """From `nft -j list table` output: the script removing elements not owned by a valid attachment (and the
    network's chain/set, and the table, once empty), plus what was removed."""
    fam, h = _family(version), compute_net_hash(network)
    items = [next(iter(o.items())) for o in ruleset.get("nftables", []) if isinstance(o, dict)]
    sets = [v for k, v in items if k == "set"]
    chains = [v for k, v in items if k == "chain"]
    ours = next((s for s in sets if s.get("name") == f"pods-{h}"), None)
    lines: list[str] = []
    removed: list[tuple[IPAddress | str, Attachment | None]] = []
    kept = 0
    if ours is not None:
        for e in ours.get("elem", []) or []:
            val, comment = (e["elem"].get("val"), e["elem"].get("comment", "")) if isinstance(e, dict) and "elem" in e \
                else (e, "")
            owner = parse_owner_comment(comment)
            if owner is not None and owner in valid:
                kept += 1
                continue
            lines.append(f"delete element {fam} {TABLE} pods-{h} {{ {val} }}")
            removed.append((ipaddress.ip_address(val) if isinstance(val, str) else str(val), owner))
        if kept == 0:
            if any(c.get("name") == f"masq-{h}" for c in chains):
                lines.append(f"delete chain {fam} {TABLE} masq-{h}")
            lines.append(f"delete set {fam} {TABLE} pods-{h}")
            others = [c for c in chains if c.get("name") != f"masq-{h}"] + [s for s in sets if s is not ours]
            if not others:
                lines = [f"delete table {fam} {TABLE}"]
    return ("\n".join(lines) + "\n" if lines else ""), removed


def _nft() -> str:
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), "nft")


async def run_nft(script: str, *args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        _nft(), *args, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise FirewallFailure(f"nft failed (exit {proc.returncode}): {err.decode(errors='replace').strip()}",
                              details=script)
    return out


async def list_table(version: int) -> dict[str, Any] | None:
    proc = await asyncio.create_subprocess_exec(
        _nft(), "-j", "list", "table", _family(version), TABLE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        if b"No such file or directory" in err:
            return None
        raise FirewallFailure(f"nft list table failed: {err.decode(errors='replace').strip()}")
    return json.loads(out)


async def apply_add(*, network: str, subnets: Sequence[IPNetwork], addresses: Sequence[IPAddress],
                    owner: Attachment) -> None:
    await run_nft(render_add(network=network, subnets=subnets, addresses=addresses, owner=owner))


async def apply_del(*, network: str, addresses: Iterable[IPAddress]) -> None:
    script = render_del(network=network, addresses=addresses)
    if script:
        await run_nft(script)


async def apply_gc(*, network: str, valid: Collection[Attachment]) -> list[tuple[IPAddress | str, Attachment | None]]:
    removed_all: list[tuple[IPAddress | str, Attachment | None]] = []
    for version in (4, 6):
        ruleset = await list_table(version)
        if ruleset is None:
            continue
        script, removed = compute_gc(ruleset, network=network, version=version, valid=valid)
        if script:
            await run_nft(script)
        removed_all += removed
    return removed_all
