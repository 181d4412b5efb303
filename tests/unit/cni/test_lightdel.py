"""The no-server DEL path: import-light (no asyncio, no pyroute2, no site) and its netlink encoding."""
from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

from cni.lightdel import IFLA_IFALIAS, IFLA_IFNAME, NLMSG_ERROR, RTM_GETLINK, RTM_NEWLINK, parse_link_reply, \
    render_link_request

ROOT = str(Path(__file__).resolve().parents[3])


def test_del_path_imports_neither_asyncio_nor_pyroute2() -> None:
    code = (f"import sys; sys.path.append({ROOT!r}); import cni.lightdel, cni.nat; "
            "print(sorted(m for m in ('asyncio', 'pyroute2', 'site') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_link_request_encoding() -> None:
    msg = render_link_request(RTM_GETLINK, 1, name="veth0011aabb", seq=7)
    length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", msg)
    assert (length, mtype, flags, seq) == (len(msg), RTM_GETLINK, 1, 7)
    alen, atype = struct.unpack_from("=HH", msg, 32)
    assert atype == IFLA_IFNAME and msg[36:36 + alen - 4] == b"veth0011aabb\0" and len(msg) % 4 == 0


def _attr(t: int, data: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(data), t) + data + b"\0" * (-len(data) % 4)


def test_link_reply_parsing() -> None:
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, 42, 0, 0) + _attr(IFLA_IFNAME, b"veth1\0") + \
        _attr(IFLA_IFALIAS, b"nodelet-cni net=n id=c if=eth0\0")
    msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, 0, 1, 0) + body
    err, index, attrs = parse_link_reply(msg)
    assert (err, index, attrs[IFLA_IFNAME]) == (0, 42, b"veth1\0")
    assert attrs[IFLA_IFALIAS].rstrip(b"\0") == b"nodelet-cni net=n id=c if=eth0"
    nack = struct.pack("=IHHII", 36, NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -19) + b"\0" * 16
    assert parse_link_reply(nack)[0] == 19  # ENODEV
