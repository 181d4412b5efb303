"""ipMasq through nftables, in nodelet's own table: `table ip nodelet-cni` (and `ip6 nodelet-cni`).

Per network (h = 8 hex of sha256(network name)):
  set   pods-<h>  the pod addresses to masquerade, each element commented `id=<containerID> if=<ifname>`
  chain masq-<h>  nat postrouting: `ip saddr @pods-<h> ip daddr != {<pod subnets>} ip daddr != 224.0.0.0/4 masquerade`
ADD adds an element (a pure add: no rule is deleted, so the kernel commit needs no RCU grace period), DEL removes
it (add+delete in one transaction, so a missing element is not an error), GC removes elements not in the valid
attachments and drops the chain/set/table when nothing is left. The chain and its rule are verified (listed, and
rewritten only when missing or different) once per process per TTL. Nothing outside our table is ever read or
modified; nft's own nat hook works next to iptables-nft and iptables-legacy alike, so no backend detection.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import shutil
import time
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


def _nomasq(version: int, subnets: Sequence[IPNetwork]) -> str:
    return ", ".join([*(str(n) for n in subnets if n.version == version), "224.0.0.0/4" if version == 4 else "ff00::/8"])


def render_rule_comment(network: str, version: int, subnets: Sequence[IPNetwork]) -> str:
    return f"nodelet-cni network={network} nomasq={_nomasq(version, subnets).replace(' ', '')}"


def _render_sets(network: str, version: int) -> list[str]:
    fam, h = _family(version), compute_net_hash(network)
    addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
    return [f"add table {fam} {TABLE}",
            f'add set {fam} {TABLE} pods-{h} {{ type {addr_type}; comment "nodelet-cni network={network}"; }}']


def render_chain(*, network: str, version: int, subnets: Sequence[IPNetwork]) -> str:
    """The per-network chain and its one rule (flushed and rewritten: only when missing or different)."""
    fam, h = _family(version), compute_net_hash(network)
    return "\n".join([
        *_render_sets(network, version),
        f"add chain {fam} {TABLE} masq-{h} {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"flush chain {fam} {TABLE} masq-{h}",
        f"add rule {fam} {TABLE} masq-{h} {fam} saddr @pods-{h} {fam} daddr != {{ {_nomasq(version, subnets)} }} "
        f'masquerade comment "{render_rule_comment(network, version, subnets)}"',
    ]) + "\n"


def render_add(*, network: str, addresses: Sequence[IPAddress], owner: Attachment) -> str:
    """The per-ADD transaction: only adds (idempotent), cheap to commit."""
    lines: list[str] = []
    h = compute_net_hash(network)
    for version in sorted({a.version for a in addresses}):
        lines += _render_sets(network, version)
        for a in addresses:
            if a.version == version:
                lines.append(f'add element {_family(version)} {TABLE} pods-{h} '
                             f'{{ {a} comment "{render_owner_comment(owner)}" }}')
    return "\n".join(lines) + "\n"


def compute_chain_ok(chain_json: dict[str, Any] | None, *, network: str, version: int,
                     subnets: Sequence[IPNetwork]) -> bool:
    """Does `nft -j list chain` show exactly our one rule, for these subnets?"""
    if chain_json is None:
        return False
    rules = [next(iter(o.values())) for o in chain_json.get("nftables", []) if isinstance(o, dict) and "rule" in o]
    return len(rules) == 1 and rules[0].get("comment") == render_rule_comment(network, version, subnets)


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


def nft_path() -> str:
    return shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), "nft")


async def run_nft(script: str, *args: str) -> bytes:
    import asyncio  # here, not at the top: the no-server DEL path renders with this module but never awaits

    proc = await asyncio.create_subprocess_exec(
        nft_path(), *args, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise FirewallFailure(f"nft failed (exit {proc.returncode}): {err.decode(errors='replace').strip()}",
                              details=script)
    return out


async def _list(*what: str) -> dict[str, Any] | None:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        nft_path(), "-j", "list", *what, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        if b"No such file or directory" in err:
            return None
        raise FirewallFailure(f"nft list {' '.join(what)} failed: {err.decode(errors='replace').strip()}")
    result: dict[str, Any] = json.loads(out)
    return result


async def list_table(version: int) -> dict[str, Any] | None:
    return await _list("table", _family(version), TABLE)


CHAIN_VERIFY_TTL = 30.0
_verified: dict[tuple[str, int, str], float] = {}


async def ensure_chain(*, network: str, version: int, subnets: Sequence[IPNetwork]) -> None:
    """The network's masquerade chain+rule exist and match `subnets` (re-verified at most every TTL seconds)."""
    key = (network, version, render_rule_comment(network, version, subnets))
    now = time.monotonic()
    if now - _verified.get(key, -CHAIN_VERIFY_TTL) < CHAIN_VERIFY_TTL:
        return
    chain = await _list("chain", _family(version), TABLE, f"masq-{compute_net_hash(network)}")
    if not compute_chain_ok(chain, network=network, version=version, subnets=subnets):
        await run_nft(render_chain(network=network, version=version, subnets=subnets))
    _verified[key] = now


def forget_verified(network: str) -> None:
    for key in [k for k in _verified if k[0] == network]:
        del _verified[key]


async def apply_add(*, network: str, subnets: Sequence[IPNetwork], addresses: Sequence[IPAddress],
                    owner: Attachment) -> None:
    await run_nft(render_add(network=network, addresses=addresses, owner=owner))
    for version in sorted({a.version for a in addresses}):
        await ensure_chain(network=network, version=version, subnets=subnets)


async def apply_del(*, network: str, addresses: Iterable[IPAddress]) -> None:
    script = render_del(network=network, addresses=addresses)
    if script:
        await run_nft(script)


async def apply_gc(*, network: str, valid: Collection[Attachment]) -> list[tuple[IPAddress | str, Attachment | None]]:
    removed_all: list[tuple[IPAddress | str, Attachment | None]] = []
    forget_verified(network)
    for version in (4, 6):
        ruleset = await list_table(version)
        if ruleset is None:
            continue
        script, removed = compute_gc(ruleset, network=network, version=version, valid=valid)
        if script:
            await run_nft(script)
        removed_all += removed
    return removed_all
