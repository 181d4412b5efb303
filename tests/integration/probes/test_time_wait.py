"""Probe sockets leave no TIME-WAIT behind (SO_LINGER 0), checked with ss, next to a control that does."""
from __future__ import annotations

import asyncio
import subprocess

from probes import HTTPGetAction, ProbeResult, TCPSocketAction
from probes.http import run_http_probe
from probes.runners import run_tcp_probe
from probes.testing import HTTPTestServer, TCPAcceptServer


def time_wait_count(port: int) -> int:
    out = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( sport = :{port} or dport = :{port} )"],
                         check=True, capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


async def test_200_http_probes_leave_no_time_wait() -> None:
    async with HTTPTestServer() as srv:
        act = HTTPGetAction(scheme="HTTP", host=None, port=srv.port, path="/", headers=())
        for _ in range(200):
            out = await run_http_probe(act, default_host="127.0.0.1", timeout_s=1)
            assert out.result is ProbeResult.SUCCESS
        assert len(srv.requests) == 200
        assert time_wait_count(srv.port) <= 2


async def test_200_tcp_probes_leave_no_time_wait() -> None:
    async with TCPAcceptServer() as srv:
        act = TCPSocketAction(host=None, port=srv.port)
        for _ in range(200):
            assert (await run_tcp_probe(act, default_host="127.0.0.1", timeout_s=1)).result is ProbeResult.SUCCESS
        assert time_wait_count(srv.port) <= 2


async def test_control_an_ordinary_client_does_pile_up_time_wait() -> None:
    """Shows the check above can fail: plain closes leave one TIME-WAIT entry per connection."""
    async with HTTPTestServer() as srv:
        for _ in range(50):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await reader.read()
            writer.close()
            await writer.wait_closed()
        assert time_wait_count(srv.port) >= 40


async def test_100_grpc_probes_leave_no_time_wait() -> None:
    from probes import GRPCAction
    from probes.runners import run_grpc_probe
    from probes.testing import GRPCHealthServer

    async with GRPCHealthServer() as srv:
        for _ in range(100):
            out = await run_grpc_probe(GRPCAction(port=srv.port), host="127.0.0.1", timeout_s=1)
            assert out.result is ProbeResult.SUCCESS, out.message
        assert time_wait_count(srv.port) <= 2
