"""The plugin's commands: ADD, DEL, CHECK, GC, STATUS for a bridge + veth + built-in host-local network.

`cmd_*` coroutines take the parsed env/config and a Store; netlink work goes through `netlink`, ipMasq through
`nat`. ADD undoes what it did when a later step fails; DEL treats "already gone" as success; GC removes every
allocation, veth and masquerade element that is not a valid attachment.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any, Callable, TypeVar

from . import nat, netlink
from .config import Attachment, Env, IPAddress, IPNetwork, NetConf, compute_container_mac, parse_version
from .errors import CheckFailed, CNIError, IncompatibleVersion, InvalidConfig, NotAvailable
from .ipam import Allocation, compute_allocations, parse_requested_ips
from .naming import HOST_VETH_RE as _HOST_VETH_RE
from .naming import compute_host_veth_name, parse_alias, render_alias
from .store import DiskStore, LockBusy, Store, release_owner

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_AT_ENV = "NODELET_CNI_TEST_STOP_AT"  # test hook: SIGSTOP ourselves at a named ADD step (crash tests)


def _checkpoint(step: str) -> None:
    if os.environ.get(STOP_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGSTOP)


def make_store(conf: NetConf) -> DiskStore:
    return DiskStore(conf.store_dir)


# --- pure planning -------------------------------------------------------------------------------------------
def compute_routes(conf: NetConf, allocs: Sequence[Allocation]) -> list[tuple[IPNetwork, IPAddress | None, bool]]:
    """(dst, gw to program, gw shown in the result) for the container: ipam routes (gw defaulting to the
    range gateway of that family) plus a default route per family when isDefaultGateway."""
    assert conf.ipam is not None
    gws = {a.address.version: a.range.gateway for a in allocs}
    out: list[tuple[IPNetwork, IPAddress | None, bool]] = []
    seen: set[IPNetwork] = set()
    if conf.is_default_gateway:
        for version, gw in sorted(gws.items()):
            dst = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
            out.append((dst, gw, True))
            seen.add(dst)
    for r in conf.ipam.routes:
        if r.dst in seen or r.dst.version not in gws:
            continue
        seen.add(r.dst)
        out.append((r.dst, r.gw or gws[r.dst.version], r.gw is not None))
    return out


def render_result(conf: NetConf, *, env: Env, allocs: Sequence[Allocation], bridge: tuple[str, str],
                  host: tuple[str, str], container: str) -> dict[str, Any]:
    """The ADD result; bridge/host are (name, mac), container is the container interface's mac."""
    old = parse_version(conf.cni_version) < (1, 0, 0)
    ips = []
    for a in allocs:
        ip: dict[str, Any] = {"address": a.cidr, "gateway": str(a.range.gateway), "interface": 2}
        if old:
            ip = {"version": str(a.address.version), **ip}
        ips.append(ip)
    routes = []
    for dst, gw, show in compute_routes(conf, allocs):
        routes.append({"dst": str(dst), "gw": str(gw)} if show and gw is not None else {"dst": str(dst)})
    container_if: dict[str, Any] = {"name": env.ifname, "mac": container, "sandbox": env.netns}
    if conf.mtu:
        container_if["mtu"] = conf.mtu
    return {"cniVersion": conf.cni_version,
            "interfaces": [{"name": bridge[0], "mac": bridge[1]}, {"name": host[0], "mac": host[1]}, container_if],
            "ips": ips, "routes": routes, "dns": dict(conf.dns)}


def _prev_ips(conf: NetConf) -> list[IPAddress]:
    out = []
    for ip in (conf.prev_result or {}).get("ips", []) or []:
        try:
            out.append(ipaddress.ip_interface(ip["address"]).ip)
        except (KeyError, TypeError, ValueError):
            continue
    return out


# --- IPAM (synchronous critical sections under the store lock) ------------------------------------------------
async def _locked(fn: Callable[..., T], *args: Any) -> T:
    """Run a store critical section: straight away when the lock is free (no await inside, so requests in
    one event loop never interleave), in a thread when another process holds it (the loop keeps serving)."""
    try:
        return fn(*args, wait=False)
    except LockBusy:
        return await asyncio.to_thread(fn, *args)


def allocate(conf: NetConf, env: Env, store: Store, *, wait: bool = True) -> list[Allocation]:
    assert conf.ipam is not None
    owner = Attachment(container_id=env.container_id, ifname=env.ifname)
    requested = parse_requested_ips(env.args.get("IP", ""), conf.runtime_ips)
    with store.lock(wait):
        for _ in range(3):  # a foreign writer (e.g. host-local on the same dir) may win a race on a file
            reserved = store.reserved()
            last = [store.last_reserved(i) for i in range(len(conf.ipam.range_sets))]
            allocs = compute_allocations(conf.ipam, reserved=reserved, last_reserved=last, requested=requested)
            done: list[Allocation] = []
            for a in allocs:
                if not store.reserve(a.address, owner, a.range_set):
                    break
                done.append(a)
            else:
                return allocs
            for a in done:
                store.release(a.address)
    raise CNIError("allocation kept colliding with another writer of the data dir", code=11)


def release(store: Store, owner: Attachment, *, wait: bool = True) -> list[IPAddress]:
    """Release every address owned by `owner` (DEL)."""
    return release_owner(store, owner, wait=wait)


def release_ips(store: Store, owner: Attachment, ips: Sequence[IPAddress]) -> None:
    """Release exactly `ips` if still owned by `owner` (ADD rollback)."""
    with store.lock():
        current = store.list()
        for ip in ips:
            if current.get(ip) == owner:
                store.release(ip)


# --- commands ------------------------------------------------------------------------------------------------
async def cmd_add(env: Env, conf: NetConf, store: Store) -> dict[str, Any]:
    assert conf.ipam is not None
    owner = Attachment(container_id=env.container_id, ifname=env.ifname)
    mac = compute_container_mac(env, conf)  # before anything is created: a bad MAC changes nothing
    ns_fd = netlink.open_netns(env.netns)
    allocs: list[Allocation] = []
    host_name = compute_host_veth_name(conf.name, env.container_id, env.ifname)
    created = False
    masq_task: asyncio.Task[None] | None = None
    try:
        allocs = await _locked(allocate, conf, env, store)
        _checkpoint("allocated")
        if conf.ip_masq:  # the nft exec only needs the addresses: let it run while netlink does the rest
            masq_task = asyncio.ensure_future(nat.apply_add(
                network=conf.name, subnets=compute_nomasq_subnets([a.range.subnet for a in allocs], conf.ip_masq_exempt), addresses=[a.address for a in allocs],
                owner=owner))
        async with netlink.host() as ipr:
            br = await netlink.ensure_bridge(ipr, name=conf.bridge, mtu=conf.mtu, promisc=conf.promisc_mode)
            if conf.is_gateway:
                for a in allocs:
                    await netlink.ensure_address(ipr, link=br, address=a.range.gateway,
                                                 prefixlen=a.range.subnet.prefixlen, force=conf.force_address)
                    netlink.ensure_forwarding(a.address.version)
            host_mac, cont_mac = await netlink.create_veth(
                ipr, host_name=host_name, peer_name=env.ifname, ns_fd=ns_fd, bridge=br, mtu=conf.mtu,
                alias=render_alias(conf.name, owner), hairpin=conf.hairpin_mode, peer_mac=mac or None)
            created = True
            _checkpoint("veth")
            async with netlink.in_netns(ns_fd, env.netns) as cipr:
                await netlink.configure_container(
                    cipr, ifname=env.ifname, addresses=[(a.address, a.range.subnet.prefixlen) for a in allocs],
                    routes=[(dst, gw) for dst, gw, _ in compute_routes(conf, allocs)])
        if masq_task is not None:
            await masq_task
            _checkpoint("masq")
        log.info("added net=%s container=%s ifname=%s ips=%s", conf.name, env.container_id, env.ifname,
                 ",".join(a.cidr for a in allocs))
        return render_result(conf, env=env, allocs=allocs, bridge=(br.name, br.mac), host=(host_name, host_mac),
                             container=cont_mac)
    except BaseException:
        if masq_task is not None:  # let a running nft finish so the rollback's delete comes after its add
            await asyncio.gather(masq_task, return_exceptions=True)
        await _rollback(conf, store, owner, host_name, [a.address for a in allocs], created, masq_task is not None)
        raise
    finally:
        os.close(ns_fd)


async def _rollback(conf: NetConf, store: Store, owner: Attachment, host_name: str, ips: list[IPAddress],
                    created: bool, masq: bool) -> None:
    log.warning("rolling back ADD net=%s container=%s ifname=%s", conf.name, owner.container_id, owner.ifname)
    try:
        if masq:
            await nat.apply_del(network=conf.name, addresses=ips)
        if created:
            async with netlink.host() as ipr:
                await netlink.delete_link(ipr, host_name)
        if ips:
            release_ips(store, owner, ips)
    except Exception:  # the original error matters more; GC will finish the job
        log.exception("rollback incomplete net=%s container=%s", conf.name, owner.container_id)


async def cmd_del(env: Env, conf: NetConf, store: Store) -> None:
    owner = Attachment(container_id=env.container_id, ifname=env.ifname)
    # The addresses are released last: killed half-way (the daemon's server dies with the agent), the
    # runtime's retry still finds them owned by this attachment and removes their NAT elements (found by
    # bench/chaos.py: released first, a kill before the nft run leaked the element for good).
    mine = [ip for ip, o in store.list().items() if o == owner]
    host_name = compute_host_veth_name(conf.name, env.container_id, env.ifname)
    masq_task = None
    if conf.ip_masq:  # nft runs while the kernel tears the veth down
        # prevResult's addresses too (an allocation lost in a crash), unless now handed to someone else
        current = store.reserved()
        addresses = [*mine, *(ip for ip in _prev_ips(conf) if ip not in current)]
        masq_task = asyncio.ensure_future(nat.apply_del(network=conf.name, addresses=addresses))
    try:
        async with netlink.host() as ipr:
            link = await netlink.get_link(ipr, host_name)
            # ours: labelled by us, or unlabelled (killed between creating and labelling it)
            if link is not None and (parse_alias(link.alias) is not None or not link.alias):
                await netlink.delete_link(ipr, host_name)  # takes the container end with it
    finally:
        if masq_task is not None:
            await masq_task
    released = await _locked(release, store, owner)
    if conf.ip_masq and released:
        await _drop_masq_if_unused(conf, store)
    log.info("deleted net=%s container=%s ifname=%s released=%s", conf.name, env.container_id, env.ifname,
             ",".join(map(str, released)) or "-")


async def _drop_masq_if_unused(conf: NetConf, store: Store) -> None:
    """The network's last attachment is gone: remove its masquerade chain and set (and our table once empty).
    Under the store lock, so no ADD allocates meanwhile (ADD allocates before it adds its set element). When
    another request holds the lock (concurrent DELs: that one may have checked before our release), wait for it
    in a thread, never in the event loop; a lock that stays busy leaves it to GC."""
    if store.reserved():
        return
    lock = store.lock(wait=False)
    try:
        try:
            lock.__enter__()
        except LockBusy:
            lock = store.lock(wait=True)
            await asyncio.to_thread(lock.__enter__)
    except CNIError:  # still busy after the store's lock timeout: GC finishes the job
        return
    try:
        if store.reserved():
            return
        removed = await nat.apply_gc(network=conf.name, valid=())
        log.info("last attachment gone, masquerade objects removed net=%s stale_elements=%d", conf.name,
                 len(removed))
    finally:
        lock.__exit__(None, None, None)


async def cmd_check(env: Env, conf: NetConf, store: Store) -> None:
    if parse_version(conf.cni_version) < (0, 4, 0):
        raise IncompatibleVersion(f"cniVersion: CHECK is not supported by config version {conf.cni_version}")
    prev = conf.prev_result
    if not prev:
        raise InvalidConfig("prevResult: required for CHECK")
    owner = Attachment(container_id=env.container_id, ifname=env.ifname)
    want_ips = [str(ip["address"]) for ip in prev.get("ips", []) or [] if isinstance(ip, dict)]
    mine = {str(ip) for ip, o in store.list().items() if o == owner}
    for cidr in want_ips:
        if str(ipaddress.ip_interface(cidr).ip) not in mine:
            raise CheckFailed(f"ipam: {cidr} is not allocated to container {env.container_id} ifname {env.ifname}")
    host_name = compute_host_veth_name(conf.name, env.container_id, env.ifname)
    async with netlink.host() as ipr:
        br = await netlink.get_link(ipr, conf.bridge)
        if br is None or br.kind != "bridge":
            raise CheckFailed(f"bridge {conf.bridge!r} not found")
        hl = await netlink.get_link(ipr, host_name)
        if hl is None or hl.master != br.index:
            raise CheckFailed(f"host veth {host_name} missing or not attached to bridge {conf.bridge}")
    ns_fd = netlink.open_netns(env.netns)
    try:
        async with netlink.in_netns(ns_fd, env.netns) as cipr:
            link = await netlink.get_link(cipr, env.ifname)
            if link is None:
                raise CheckFailed(f"interface {env.ifname} not found in netns {env.netns}")
            for itf in prev.get("interfaces", []) or []:
                if isinstance(itf, dict) and itf.get("name") == env.ifname and itf.get("sandbox") \
                        and itf.get("mac") and itf["mac"].lower() != link.mac.lower():
                    raise CheckFailed(f"interface {env.ifname} has mac {link.mac}, prevResult says {itf['mac']}")
            have = await netlink.container_addresses(cipr, link.index)
            for cidr in want_ips:
                if cidr not in have:
                    raise CheckFailed(f"interface {env.ifname} in netns {env.netns} lacks address {cidr}")
    finally:
        os.close(ns_fd)


async def cmd_gc(conf: NetConf, store: Store) -> dict[str, int]:
    valid = set(conf.valid_attachments or ())
    with store.lock():
        stale = [(ip, o) for ip, o in store.list().items() if o is None or o not in valid]
        for ip, o in stale:
            store.release(ip)
            log.info("gc released ip=%s owner=%s", ip, o or "corrupted-file")
        temp = store.cleanup_temp()
    links = 0
    keep = {compute_host_veth_name(conf.name, a.container_id, a.ifname) for a in valid}
    async with netlink.host() as ipr:
        br = await netlink.get_link(ipr, conf.bridge)
        for link in await netlink.list_links(ipr):
            parsed = parse_alias(link.alias)
            ours = parsed is not None and parsed[0] == conf.name and parsed[1] not in valid
            # killed between creating the veth and labelling it: unlabelled veth<8 hex> on our bridge
            unlabelled = (not link.alias and br is not None and link.master == br.index
                          and _HOST_VETH_RE.match(link.name) is not None and link.name not in keep)
            if ours or unlabelled:
                if await netlink.delete_link(ipr, link.name):
                    links += 1
                    log.info("gc deleted link=%s owner=%s", link.name, parsed[1] if parsed else "unlabelled")
    removed = await nat.apply_gc(network=conf.name, valid=valid)
    return {"ips": len(stale), "links": links, "masq": len(removed), "temp": temp}


async def cmd_status(conf: NetConf, store: Store) -> None:
    if isinstance(store, DiskStore) and (why := store.check_usable()):
        raise NotAvailable(f"plugin not available: {why}")
    async with netlink.host() as ipr:
        br = await netlink.get_link(ipr, conf.bridge)
    if br is not None and br.kind != "bridge":
        raise NotAvailable(f"plugin not available: bridge {conf.bridge!r} exists and is a {br.kind or 'non-bridge'} "
                           "link")
    if conf.ip_masq and nat.nft_path() == "nft":
        raise NotAvailable("plugin not available: ipMasq needs the nft binary, not found")


def compute_nomasq_subnets(pod_subnets: list[Any], exempt: tuple[Any, ...]) -> list[Any]:
    """The pod subnets plus the configured exemptions, collapsed (nft refuses overlapping intervals in one set)."""
    out: list[Any] = []
    for version in (4, 6):
        nets = [n for n in [*pod_subnets, *exempt] if n.version == version]
        out.extend(ipaddress.collapse_addresses(nets))
    return out
