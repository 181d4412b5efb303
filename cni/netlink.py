"""All netlink work, and the only module that imports pyroute2.

Async (AsyncIPRoute) so that the long-lived server can run many requests in one event loop; the exec'ed
fallback runs the same coroutines under asyncio.run. Sockets in a container's netns are opened by switching
this thread into the netns for the socket() call only (setns), which is much cheaper than pyroute2's
fork-based `netns=` helper. pyroute2's NetlinkError is translated to the package's error tree here.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .config import IPAddress, IPNetwork
from .errors import BridgeConflict, CNIError, InterfaceExists, InvalidEnvironment, NetlinkFailure

log = logging.getLogger(__name__)
CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, kw_only=True)
class LinkInfo:
    index: int
    name: str
    mac: str
    kind: str
    master: int
    alias: str
    mtu: int
    up: bool


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_netns(path: str) -> int:
    """An fd for the netns at `path`; InvalidEnvironment (CNI_NETNS) if it does not exist or is not a netns."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidEnvironment(f"CNI_NETNS: cannot open netns {path!r}: {e.strerror}") from None
    return fd


def netns_socket(ns_fd: int, path: str = "") -> socket.socket:
    """A NETLINK_ROUTE socket living in the netns `ns_fd` (this thread switches in and straight back)."""
    cur = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(ns_fd)
        except OSError as e:
            raise InvalidEnvironment(f"CNI_NETNS: {path!r} is not a network namespace: {e.strerror}") from None
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
        finally:
            _setns(cur)
    finally:
        os.close(cur)


_shared_host: AsyncIPRoute | None = None
# The kernel runs one dump at a time per netlink socket (EBUSY otherwise): dumps on the shared socket queue here.
_dump_lock: asyncio.Lock | None = None


def _dumps() -> asyncio.Lock:
    global _dump_lock
    if _dump_lock is None:
        _dump_lock = asyncio.Lock()
    return _dump_lock


async def open_shared_host() -> None:
    """Long-lived processes (the server): keep one host netlink socket, set up once, shared by all requests
    (pyroute2's async core matches replies to requests by sequence number)."""
    global _shared_host
    if _shared_host is None:
        ipr = AsyncIPRoute()
        await ipr.setup_endpoint()
        _shared_host = ipr


def close_shared_host() -> None:
    global _shared_host
    if _shared_host is not None:
        _shared_host.close()
        _shared_host = None


@contextlib.asynccontextmanager
async def host() -> AsyncIterator[AsyncIPRoute]:
    if _shared_host is not None:
        yield _shared_host
        return
    ipr = AsyncIPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.asynccontextmanager
async def in_netns(ns_fd: int, path: str = "") -> AsyncIterator[AsyncIPRoute]:
    sock = netns_socket(ns_fd, path)
    try:
        ipr = AsyncIPRoute(use_socket=sock)
        try:
            yield ipr
        finally:
            ipr.close()
    finally:
        sock.close()  # pyroute2 leaves a borrowed socket open; it would pin the pod's netns (and its veth)


def _fail(what: str, e: NetlinkError) -> CNIError:
    return NetlinkFailure(f"{what}: {os.strerror(e.code) if e.code > 0 else e}")


def _info(msg: object) -> LinkInfo:
    get = msg.get  # type: ignore[attr-defined]
    linkinfo = get("IFLA_LINKINFO")
    kind = linkinfo.get("IFLA_INFO_KIND") if linkinfo is not None else ""
    return LinkInfo(index=msg["index"], name=get("IFLA_IFNAME"), mac=get("IFLA_ADDRESS") or "",  # type: ignore
                    kind=kind or "", master=get("IFLA_MASTER") or 0, alias=get("IFLA_IFALIAS") or "",
                    mtu=get("IFLA_MTU") or 0, up=bool(msg["flags"] & 1))  # type: ignore[index]


async def get_link(ipr: AsyncIPRoute, name: str) -> LinkInfo | None:
    try:
        msgs = await ipr.link("get", ifname=name)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise _fail(f"get link {name}", e) from None
    for m in msgs:
        return _info(m)
    return None


async def list_links(ipr: AsyncIPRoute) -> list[LinkInfo]:
    try:
        async with _dumps():
            return [_info(m) async for m in await ipr.link("dump")]
    except NetlinkError as e:
        raise _fail("list links", e) from None


async def ensure_bridge(ipr: AsyncIPRoute, *, name: str, mtu: int, promisc: bool) -> LinkInfo:
    """The bridge, created and up if missing; BridgeConflict if `name` is taken by something else."""
    link = await get_link(ipr, name)
    if link is None:
        kw: dict[str, object] = {"ifname": name, "kind": "bridge", "state": "up"}
        if mtu:
            kw["mtu"] = mtu
        try:
            await ipr.link("add", **kw)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise _fail(f"create bridge {name}", e) from None
        link = await get_link(ipr, name)
        if link is None:
            raise NetlinkFailure(f"bridge {name} vanished right after creation")
    if link.kind != "bridge":
        raise BridgeConflict(f"bridge: {name!r} already exists and is a {link.kind or 'non-bridge'} link")
    if not link.up or promisc:
        kw = {"index": link.index, "state": "up"}
        if promisc:
            kw["flags"] = 0x100  # IFF_PROMISC
            kw["change"] = 0x100
        try:
            await ipr.link("set", **kw)
        except NetlinkError as e:
            raise _fail(f"set bridge {name} up", e) from None
    return link


async def ensure_address(ipr: AsyncIPRoute, *, link: LinkInfo, address: IPAddress, prefixlen: int,
                         force: bool) -> None:
    """The gateway address on the bridge (reference ensureAddr semantics incl. forceAddress)."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    want = ipaddress.ip_interface(f"{address}/{prefixlen}")
    try:
        async with _dumps():
            current = [ipaddress.ip_interface(f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}")
                       async for m in await ipr.addr("dump", index=link.index, family=family)]
    except NetlinkError as e:
        raise _fail(f"list addresses of bridge {link.name}", e) from None
    for have in current:
        if have.ip.is_link_local:
            continue
        if have == want:
            return
        if address.version == 4 or want.ip in have.network or have.ip in want.network:
            if not force:
                raise BridgeConflict(f"bridge {link.name!r} already has an IP address {have} different from "
                                     f"{want} (set forceAddress to replace it)")
            with contextlib.suppress(NetlinkError):
                await ipr.addr("del", index=link.index, address=str(have.ip), prefixlen=have.network.prefixlen)
    try:
        await ipr.addr("add", index=link.index, address=str(address), prefixlen=prefixlen,
                       **({"flags": IFA_F_NODAD} if address.version == 6 else {}))
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise _fail(f"add {want} to bridge {link.name}", e) from None


def random_mac() -> str:
    """A random locally administered unicast MAC (what the kernel would pick), chosen here so ADD needs no
    extra round trip to learn it."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


async def create_veth(ipr: AsyncIPRoute, *, host_name: str, peer_name: str, ns_fd: int, bridge: LinkInfo,
                      mtu: int, alias: str, hairpin: bool, peer_mac: str | None = None) -> tuple[str, str]:
    """veth pair whose peer is created directly inside the container netns, host end on the bridge and up,
    labelled with `alias` (and hairpin on); the peer gets `peer_mac` (else a random one). Returns (host mac,
    container mac)."""
    host_mac, peer_mac = random_mac(), peer_mac or random_mac()
    peer: dict[str, object] = {"ifname": peer_name, "net_ns_fd": ns_fd, "address": peer_mac}
    kw: dict[str, object] = {"ifname": host_name, "kind": "veth", "peer": peer, "master": bridge.index,
                             "state": "up", "address": host_mac}
    if mtu:
        kw["mtu"] = mtu
        peer["mtu"] = mtu
    try:
        await ipr.link("add", **kw)
    except NetlinkError as e:
        if e.code == errno.EEXIST:
            if await get_link(ipr, host_name) is not None:
                raise InterfaceExists(f"host veth {host_name} already exists (DEL the attachment first)") from None
            raise InterfaceExists(f"CNI_IFNAME: interface {peer_name!r} already exists in the container netns") \
                from None
        raise _fail(f"create veth {host_name}/{peer_name}", e) from None
    # the kernel takes IFLA_IFALIAS only on an existing link; hairpin (bridge port mode) goes in the same message
    kw = {"ifname": host_name, "ifalias": alias}
    if hairpin:
        kw.update(kind="bridge_slave", mode=1)
    try:
        await ipr.link("set", **kw)
    except NetlinkError as e:
        raise _fail(f"label/configure host veth {host_name}", e) from None
    return host_mac, peer_mac


async def configure_container(ipr: AsyncIPRoute, *, ifname: str, addresses: Sequence[tuple[IPAddress, int]],
                              routes: Sequence[tuple[IPNetwork, IPAddress | None]]) -> None:
    links = await ipr.link_lookup(ifname=ifname)
    if not links:
        raise NetlinkFailure(f"container interface {ifname} not found after creation")
    link = LinkInfo(index=links[0], name=ifname, mac="", kind="veth", master=0, alias="", mtu=0, up=False)
    try:
        # addresses and link-up are independent: one round trip instead of several; routes need both
        await asyncio.gather(
            ipr.link("set", index=link.index, state="up"),
            *(ipr.addr("add", index=link.index, address=str(addr), prefixlen=plen,
                       **({"flags": IFA_F_NODAD} if addr.version == 6 else {}))  # usable at once, like the
              for addr, plen in addresses))                                        # reference (enabledad=false)
        for dst, gw in routes:
            kw: dict[str, object] = {"dst": str(dst), "oif": link.index}
            if gw is not None:
                kw["gateway"] = str(gw)
            try:
                await ipr.route("add", **kw)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
    except NetlinkError as e:
        raise _fail(f"configure {ifname} in the container", e) from None


async def container_addresses(ipr: AsyncIPRoute, index: int) -> set[str]:
    return {f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" async for m in await ipr.addr("dump", index=index)}


async def delete_link(ipr: AsyncIPRoute, name: str) -> bool:
    """Delete link `name`; False if it was already gone."""
    try:
        await ipr.link("del", ifname=name)
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise _fail(f"delete link {name}", e) from None
    return True


def ensure_forwarding(version: int) -> None:
    path = "/proc/sys/net/ipv4/ip_forward" if version == 4 else "/proc/sys/net/ipv6/conf/all/forwarding"
    try:
        with open(path, "r+b") as f:
            if f.read(1) != b"1":
                f.seek(0)
                f.write(b"1")
    except OSError as e:
        raise NetlinkFailure(f"cannot enable forwarding ({path}): {e.strerror}") from None
