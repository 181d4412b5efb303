"""Probe sockets: non-blocking, SO_LINGER 1 s as the kubelet's probe dialer (``pkg/probe/dialer_others.go``), Go-shaped
error text.

Upstream chose 1 s over 0 on purpose: linger 0 aborts the connection with an RST (the probed app logs "connection
reset by peer" and loses pending data); with linger on and 1 s the close sends a FIN and waits at most 1 s for the
peer's ACK. That wait is a blocking close, so it runs on a worker thread, never on the event loop. The price, as
upstream: the side that closes first keeps a TIME-WAIT entry for the kernel's 60 s."""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct

__all__ = ["join_host_port", "open_probe_socket", "close_probe_socket", "render_dial_error", "DialError"]

PROBE_LINGER_S = 1  # upstream: syscall.Linger{Onoff: 1, Linger: 1}
_LINGER = struct.pack("ii", 1, PROBE_LINGER_S)
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
    """Connect a non-blocking TCP socket with SO_LINGER 1 s. Cancellation (a timeout) closes it."""
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
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, addr)
    except OSError as e:
        close_probe_socket(sock)
        raise DialError(render_dial_error(host, port, e)) from e
    except BaseException:
        close_probe_socket(sock)
        raise
    return sock


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def close_probe_socket(sock: socket.socket) -> None:
    """Close with a FIN: the lingering close (up to 1 s if the peer does not ACK) runs on a worker thread when an
    event loop is running, so a frozen container never stalls the agent."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _close(sock)
        return
    loop.run_in_executor(None, _close, sock)


def render_dial_error(host: str, port: int, e: OSError) -> str:
    code = e.errno
    text = _ERRNO_TEXT.get(code) if code is not None else None
    if text is None:
        text = os.strerror(code).lower() if code else (str(e) or type(e).__name__)
    return f"dial tcp {join_host_port(host, port)}: connect: {text}"
