"""Probe sockets: non-blocking, SO_LINGER 0 (closed with RST, no TIME-WAIT pile-up), Go-shaped error text."""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct

__all__ = ["join_host_port", "open_probe_socket", "close_probe_socket", "render_dial_error", "DialError"]

_LINGER_ZERO = struct.pack("ii", 1, 0)
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ECONNRESET: "connection reset by peer",
    errno.ETIMEDOUT: "connection timed out",
    errno.EADDRNOTAVAIL: "cannot assign requested address",
}


class DialError(OSError):
    """A connect that failed, with the text Go's ``net.Dial`` would give (``dial tcp 1.2.3.4:80: connect: ...``)."""


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip_family(host: str) -> int | None:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def open_probe_socket(host: str, port: int) -> socket.socket:
    """Connect a non-blocking TCP socket with SO_LINGER 0. Cancellation (a timeout) closes it."""
    loop = asyncio.get_running_loop()
    family = _ip_family(host)
    if family is None:  # a DNS name: resolve (the loop's resolver); IP literals never touch it
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise DialError(f"dial tcp: lookup {host}: {e.strerror or 'no such host'}") from e
        family, _, _, _, sockaddr = infos[0]
        addr: tuple[object, ...] = sockaddr
    else:
        addr = (host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, addr)
    except OSError as e:
        sock.close()
        raise DialError(render_dial_error(host, port, e)) from e
    except BaseException:
        sock.close()
        raise
    return sock


def close_probe_socket(sock: socket.socket) -> None:
    """Close at once; with SO_LINGER 0 the kernel sends RST and keeps no TIME-WAIT entry."""
    try:
        sock.close()
    except OSError:
        pass


def render_dial_error(host: str, port: int, e: OSError) -> str:
    code = e.errno
    text = _ERRNO_TEXT.get(code) if code is not None else None
    if text is None:
        text = os.strerror(code).lower() if code else (str(e) or type(e).__name__)
    return f"dial tcp {join_host_port(host, port)}: connect: {text}"
