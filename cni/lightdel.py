"""The no-server DEL, import-light: what the installed client runs (`python -I -S`) when the daemon is not
answering and the command is DEL — no asyncio, no pyroute2, so a pod's teardown during an agent restart costs
an interpreter start plus the work (2 netlink messages, one nft run with ipMasq), not ~0.2 s of imports.

Same behaviour as `bridge.cmd_del` (which the full plugin and the server run): release the attachment's
addresses, remove its masquerade elements (its prevResult's too, unless re-allocated), delete the host veth
when it is ours (labelled by us, or unlabelled), treat "already gone" as success; the network's last attachment
included (its masquerade chain and set go too). Every other command execs the full plugin instead.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: this path imports no more than it must
    from typing import Any

import errno
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Mapping

from .config import Attachment, LATEST_VERSION, SUPPORTED_VERSIONS, parse_env, parse_netconf
from .errors import CNIError, FirewallFailure, NetlinkFailure
from .naming import compute_host_veth_name, parse_alias
from .store import DiskStore, release_owner

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
IFLA_IFNAME, IFLA_IFALIAS = 3, 20
_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")


class FullPlugin(Exception):
    """This request needs the full plugin."""


def render_link_request(msg_type: int, flags: int, *, name: str = "", index: int = 0, seq: int = 1) -> bytes:
    attrs = b""
    if name:
        data = name.encode() + b"\0"
        attrs = struct.pack("=HH", 4 + len(data), IFLA_IFNAME) + data + b"\0" * (-len(data) % 4)
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), msg_type, flags, seq, 0) + body


def parse_link_reply(data: bytes) -> tuple[int, int, dict[int, bytes]]:
    """One reply → (errno (0: none), link index, attributes) for RTM_NEWLINK or NLMSG_ERROR."""
    length, msg_type, _, _, _ = _NLMSG.unpack_from(data)
    if msg_type == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", data, _NLMSG.size)
        return -err, 0, {}
    if msg_type != RTM_NEWLINK:
        raise NetlinkFailure(f"unexpected netlink reply type {msg_type}")
    _, _, index, _, _ = _IFINFO.unpack_from(data, _NLMSG.size)
    attrs: dict[int, bytes] = {}
    off = _NLMSG.size + _IFINFO.size
    while off + 4 <= length:
        alen, atype = struct.unpack_from("=HH", data, off)
        if alen < 4:
            break
        attrs[atype & 0x3FFF] = data[off + 4:off + alen]
        off += (alen + 3) & ~3
    return 0, index, attrs


def _request(sock: socket.socket, msg: bytes) -> tuple[int, int, dict[int, bytes]]:
    sock.send(msg)
    return parse_link_reply(sock.recv(65536))


def delete_host_veth(name: str) -> bool:
    """Delete our host veth `name` (labelled by us or unlabelled); False when it is absent or not ours."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as s:
        s.settimeout(10)
        err, index, attrs = _request(s, render_link_request(RTM_GETLINK, NLM_F_REQUEST, name=name))
        if err in (errno.ENODEV, errno.ENOENT):
            return False
        if err:
            raise NetlinkFailure(f"get link {name}: {os.strerror(err)}")
        alias = attrs.get(IFLA_IFALIAS, b"").rstrip(b"\0").decode(errors="replace")
        if alias and parse_alias(alias) is None:
            return False  # someone else's link that happens to have the name
        err, _, _ = _request(s, render_link_request(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, index=index, seq=2))
        if err in (errno.ENODEV, errno.ENOENT):
            return False
        if err:
            raise NetlinkFailure(f"delete link {name}: {os.strerror(err)}")
        return True


def run_nft(script: str) -> None:
    from .nat import nft_path

    p = subprocess.run([nft_path(), "-f", "-"], input=script.encode(), capture_output=True)
    if p.returncode != 0:
        raise FirewallFailure(f"nft failed (exit {p.returncode}): {p.stderr.decode(errors='replace').strip()}",
                              details=script)


def _prev_ips(prev: Mapping[str, Any] | None) -> list[Any]:
    import ipaddress

    out: list[Any] = []
    for ip in (prev or {}).get("ips", []) or []:
        try:
            out.append(ipaddress.ip_interface(ip["address"]).ip)
        except (KeyError, TypeError, ValueError):
            continue
    return out


def run_del(environ: Mapping[str, str], stdin: bytes) -> None:
    env = parse_env(environ)
    if env.command != "DEL":
        raise FullPlugin()
    conf = parse_netconf(stdin, command="DEL")
    store = DiskStore(conf.store_dir)
    owner = Attachment(container_id=env.container_id, ifname=env.ifname)
    mine = [ip for ip, o in store.list().items() if o == owner]  # released last, as bridge.cmd_del
    if conf.ip_masq:
        from .nat import render_del

        current = store.reserved()
        script = render_del(network=conf.name, addresses=[*mine, *(ip for ip in _prev_ips(conf.prev_result)
                                                                     if ip not in current)])
        if script:
            run_nft(script)
    delete_host_veth(compute_host_veth_name(conf.name, env.container_id, env.ifname))
    released = release_owner(store, owner)
    if conf.ip_masq and released:
        drop_masq_if_unused(conf.name, store)


def drop_masq_if_unused(network: str, store: DiskStore) -> None:
    """As bridge._drop_masq_if_unused: the last attachment gone, the network's chain/set (and our table once
    empty) go, under the store lock so no ADD allocates meanwhile."""
    from .nat import TABLE, compute_gc, nft_path
    from .store import LockBusy

    try:
        with store.lock(wait=True):  # our own process: waiting here blocks no one
            if store.reserved():
                return
            for version, fam in ((4, "ip"), (6, "ip6")):
                p = subprocess.run([nft_path(), "-j", "list", "table", fam, TABLE], capture_output=True)
                if p.returncode != 0:
                    continue  # no table of that family
                script, _ = compute_gc(json.loads(p.stdout), network=network, version=version, valid=())
                if script:
                    run_nft(script)
    except (LockBusy, CNIError):  # still busy after the lock timeout: GC finishes the job
        return


def _config_version(stdin: bytes) -> str:
    try:
        v = json.loads(stdin).get("cniVersion")
    except Exception:
        return LATEST_VERSION
    return v if isinstance(v, str) and v in SUPPORTED_VERSIONS else LATEST_VERSION


def main(pkg_parent: str, stdin: bytes | None = None) -> None:
    """Entry of the client's no-server path: DEL here, everything else by
    re-exec'ing the full plugin with site-packages (pyroute2) enabled, stdin handed over unchanged."""
    if stdin is None:
        stdin = sys.stdin.buffer.read()
    try:
        run_del(os.environ, stdin)
    except FullPlugin:
        fd = os.memfd_create("nodelet-cni-stdin")
        os.write(fd, stdin)
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-I", "-c",
                                  f"import sys; sys.path.append({pkg_parent!r}); from cni.__main__ import main; main()"])
    except CNIError as e:
        sys.stdout.write(json.dumps(e.to_json(_config_version(stdin)), indent=4) + "\n")
        sys.exit(1)
    sys.exit(0)
