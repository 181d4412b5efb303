"""This agent's CNI network: its name and IPAM directory (derived from the config, so two agents on one host never
share allocation files, masquerade sets or veth labels), and the CNI GC the daemon runs itself.

containerd 1.6 never calls CNI GC, so an address leaked by a crash at the wrong moment (the plugin killed between
allocating and answering, a sandbox the runtime lost) would stay reserved forever. The daemon runs GC at start and
every `interval` seconds with every sandbox the runtime knows (any state: a NotReady sandbox still gets its DEL from
the runtime) as the valid set, plus allocations younger than `grace` (an ADD in flight whose sandbox is not listed
yet). GC only ever touches this network's objects (its data dir, veths labelled with its name, its nft set).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_ROOT_DIR = "/var/lib/nodelet"
DEFAULT_NETWORK = "nodelet"
GC_INTERVAL = 300.0
GC_GRACE = 120.0


@dataclass(frozen=True, kw_only=True)
class CNINetwork:
    name: str
    data_dir: str | None  # None: host-local's default, /var/lib/cni/networks (allocations under <data_dir>/<name>)


def compute_cni_network(*, root_dir: str) -> CNINetwork:
    """The default agent keeps the established `nodelet` in /var/lib/cni/networks/nodelet (running pods' allocations
    survive an upgrade); any other rootDir gets `nodelet-<8 hex of the rootDir>` with its IPAM under the rootDir."""
    root = os.path.normpath(root_dir)
    if root == DEFAULT_ROOT_DIR:
        return CNINetwork(name=DEFAULT_NETWORK, data_dir=None)
    h = hashlib.sha256(root.encode()).hexdigest()[:8]
    return CNINetwork(name=f"{DEFAULT_NETWORK}-{h}", data_dir=os.path.join(root, "cni", "networks"))


def compute_young_owners(entries: Iterable[tuple[bytes, float]], *, now: float, grace: float) -> set[tuple[str, str]]:
    """(container id, ifname) of allocation files (content, mtime) written less than `grace` seconds ago."""
    from cni.store import parse_owner

    out: set[tuple[str, str]] = set()
    for data, mtime in entries:
        if now - mtime < grace:
            owner = parse_owner(data)
            if owner is not None:
                out.add((owner.container_id, owner.ifname))
    return out


def _read_allocations(store_dir: str) -> list[tuple[bytes, float]]:
    out = []
    try:
        names = os.listdir(store_dir)
    except FileNotFoundError:
        return []
    for name in names:
        if name == "lock" or name.startswith("last_reserved_ip") or name.startswith("."):
            continue
        path = os.path.join(store_dir, name)
        try:
            with open(path, "rb") as f:
                out.append((f.read(), os.fstat(f.fileno()).st_mtime))
        except OSError:
            continue
    return out


class CNIGarbageCollector:
    """Runs the plugin's GC in-process for `plugin_conf` (our conflist's nodelet-cni entry, with name/cniVersion)."""

    def __init__(self, *, plugin_conf: Mapping[str, Any], list_sandbox_ids: Callable[[], Awaitable[Iterable[str]]],
                 interval: float = GC_INTERVAL, grace: float = GC_GRACE, ifname: str = "eth0") -> None:
        self.plugin_conf = dict(plugin_conf)
        self.list_sandbox_ids = list_sandbox_ids
        self.interval = interval
        self.grace = grace
        self.ifname = ifname
        self.last_result: dict[str, int] | None = None

    async def run_once(self) -> dict[str, int]:
        from cni import bridge
        from cni.config import parse_netconf

        ids = set(await self.list_sandbox_ids())  # a runtime error propagates: never GC against an unknown set
        probe = parse_netconf(json.dumps(self.plugin_conf).encode())
        young = await asyncio.to_thread(lambda: compute_young_owners(
            _read_allocations(probe.store_dir), now=time.time(), grace=self.grace))
        valid = [{"containerID": i, "ifname": self.ifname} for i in sorted(ids)]
        valid += [{"containerID": c, "ifname": i} for c, i in sorted(young) if c not in ids]
        conf = parse_netconf(json.dumps({**self.plugin_conf, "cni.dev/valid-attachments": valid}).encode(),
                             command="GC")
        result = await bridge.cmd_gc(conf, bridge.make_store(conf))
        self.last_result = result
        if any(result.values()):
            log.info("cni gc network=%s sandboxes=%d released_ips=%d links=%d masq=%d", conf.name, len(ids),
                     result["ips"], result["links"], result["masq"])
        return result

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the runtime down, nft missing...: try again next time, never crash the agent
                log.warning("cni gc failed network=%s err=%s", self.plugin_conf.get("name"), err)
            await asyncio.sleep(self.interval)
