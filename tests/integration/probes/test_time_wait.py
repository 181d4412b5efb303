"""Probe sockets close as upstream's probe dialer does (SO_LINGER on, 1 s): the probed app sees a clean FIN, never a
reset, and the agent's event loop is never blocked by the lingering close. A control shows the check can fail."""
from __future__ import annotations

import asyncio
import socket
import struct

from probes import GRPCAction, HTTPGetAction, ProbeResult, TCPSocketAction
from probes._net import PROBE_LINGER_S, open_probe_socket
from probes.http import run_http_probe
from probes.runners import run_grpc_probe, run_tcp_probe
from probes.testing import GRPCHealthServer


class EOFWatcher:
    """Accepts connections, optionally answers, then records how each peer closed: "fin" (recv → b"") or "rst"."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.closes: list[str] = []
        self.accepted = 0
        self.port = 0

    async def __aenter__(self) -> "EOFWatcher":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            if self.reply:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.reply)
                await writer.drain()
            while await reader.read(65536):
                pass
            self.closes.append("fin")
        except (ConnectionResetError, asyncio.IncompleteReadError):
            self.closes.append("rst")
        finally:
            writer.close()

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[str]:
        await poll(lambda: len(self.closes) >= n, timeout)
        return self.closes


async def poll(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond() and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_probe_socket_lingers_one_second_like_upstream() -> None:
    async with EOFWatcher() as srv:
        sock = await open_probe_socket("127.0.0.1", srv.port)
        try:
            onoff, seconds = struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
        finally:
            sock.close()
        assert (onoff, seconds) == (1, PROBE_LINGER_S) == (1, 1)


async def test_tcp_and_http_probes_close_with_fin_not_reset() -> None:
    async with EOFWatcher() as srv:
        for _ in range(20):
            out = await run_tcp_probe(TCPSocketAction(host=None, port=srv.port), default_host="127.0.0.1", timeout_s=1)
            assert out.result is ProbeResult.SUCCESS
        assert await srv.wait_for(20) == ["fin"] * 20
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with EOFWatcher(reply=reply) as srv:
        act = HTTPGetAction(scheme="HTTP", host=None, port=srv.port, path="/", headers=())
        for _ in range(20):
            out = await run_http_probe(act, default_host="127.0.0.1", timeout_s=1)
            assert out.result is ProbeResult.SUCCESS, out.message
        assert await srv.wait_for(20) == ["fin"] * 20


async def test_control_a_linger_zero_close_is_seen_as_reset() -> None:
    """Shows the check above can fail: nodelet's old SO_LINGER 0 close reaches the app as a reset."""
    async with EOFWatcher() as srv:
        for i in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await poll(lambda: srv.accepted > i)  # the server is reading (a reset before accept is not seen)
            s.close()
        assert await srv.wait_for(5) == ["rst"] * 5


async def test_grpc_probes_on_h2_succeed_repeatedly() -> None:
    async with GRPCHealthServer() as srv:
        for _ in range(50):
            out = await run_grpc_probe(GRPCAction(port=srv.port), host="127.0.0.1", timeout_s=1)
            assert out.result is ProbeResult.SUCCESS, out.message
