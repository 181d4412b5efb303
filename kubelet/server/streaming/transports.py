"""Byte transports a SPDY session runs over, and the dial to the runtime's streaming server.

- `UpgradedTransport`: an aiohttp request upgraded to `SPDY/3.1` (kubectl's plain-SPDY fall-back). Its bytes come
  through `RequestHandler.set_parser` — aiohttp's own hook for upgraded protocols, the one its WebSocket uses.
- `WebSocketTransport`: the binary messages of a WebSocket carry the SPDY byte stream
  (`SPDY/3.1+portforward.k8s.io`, client-go `tools/portforward/tunneling_connection.go`).
- `dial_runtime`: `POST <url>` with `Upgrade: SPDY/3.1` to the URL CRI Exec/Attach/PortForward returned.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from kubelet.server.streaming.spdy import SpdySession, StreamPairTransport

log = logging.getLogger(__name__)

__all__ = ["RuntimeDialError", "UpgradedTransport", "WebSocketTransport", "dial_runtime"]

HEADER_PROTOCOL_VERSION = "X-Stream-Protocol-Version"


class RuntimeDialError(Exception):
    pass


class _Feed:
    """The parser aiohttp feeds an upgraded connection's bytes to."""

    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class UpgradedTransport:
    """`upgrade()` hooks the parser before the 101 goes out, so no early byte reaches aiohttp's HTTP parser."""

    def __init__(self, request: web.BaseRequest) -> None:
        self.request = request
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._eof = False
        self.response: web.StreamResponse | None = None

    async def upgrade(self, headers: dict[str, str]) -> None:
        """Take the connection's bytes, then send the 101."""
        self.request.protocol.set_parser(_Feed(self.queue))  # type: ignore[arg-type]
        self.response = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1", **headers})
        await self.response.prepare(self.request)

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self.queue.get()
        if not data:
            self._eof = True
        return data

    async def write(self, data: bytes) -> None:
        if self.response is None:
            raise ConnectionResetError("upgrade not sent")
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client connection closed")
        await self.response.write(data)  # a 101 response's body is the raw connection; write() drains

    async def close(self) -> None:
        transport = self.request.transport
        if transport is not None and not transport.is_closing():
            transport.close()


class WebSocketTransport:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type == WSMsgType.TEXT:
                continue
            return b""  # CLOSE, CLOSING, CLOSED, ERROR

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("WebSocket closed")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()


async def dial_runtime(url: str, protocols: Sequence[str], *, timeout: float = 10.0,
                       name: str = "runtime") -> tuple[SpdySession, str]:
    """Upgrade to SPDY/3.1 at the runtime's streaming URL; returns the (unstarted) client session and the protocol
    version the runtime chose."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https"):
        raise RuntimeDialError(f"unsupported streaming URL {url!r}")
    host, port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
    ssl = None
    if u.scheme == "https":
        import ssl as ssl_mod
        ssl = ssl_mod.create_default_context()
        ssl.check_hostname = False
        ssl.verify_mode = ssl_mod.CERT_NONE  # the runtime's self-signed streaming cert on loopback
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        raise RuntimeDialError(f"cannot reach the runtime's streaming server at {host}:{port}: {e}") from None
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    req = [f"POST {path} HTTP/1.1", f"Host: {hostport}", "Connection: Upgrade", "Upgrade: SPDY/3.1", "Content-Length: 0"]
    req += [f"{HEADER_PROTOCOL_VERSION}: {p}" for p in protocols]
    writer.write(("\r\n".join(req) + "\r\n\r\n").encode())
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = await asyncio.wait_for(reader.read(4096), timeout)
            if not chunk:
                raise RuntimeDialError("the runtime's streaming server closed the connection during the upgrade")
            buf += chunk
            if len(buf) > 65536:
                raise RuntimeDialError("the runtime's streaming server sent an over-long reply")
    except (asyncio.TimeoutError, OSError) as e:
        writer.close()
        raise RuntimeDialError(f"no upgrade reply from the runtime's streaming server: {e}") from None
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[1] != "101":
        writer.close()
        body = rest[:300].decode(errors="replace").strip()
        raise RuntimeDialError(f"the runtime refused the stream upgrade: {lines[0]} {body}".strip())
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    chosen = headers.get(HEADER_PROTOCOL_VERSION.lower(), "")
    return SpdySession(StreamPairTransport(reader, writer, initial=rest), client=True, name=name), chosen
