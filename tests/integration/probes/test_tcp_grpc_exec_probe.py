"""tcpSocket, grpc and exec probes against real listeners, a real gRPC health server and real processes."""
from __future__ import annotations

import asyncio
import os
import socket
import time

import grpc

from probes import ContainerId, ExecAction, GRPCAction, ProbeResult, TCPSocketAction
from probes.runners import run_exec_probe, run_grpc_probe, run_tcp_probe
from probes.testing import GRPCHealthServer, SubprocessExecRunner, TCPAcceptServer

S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNKNOWN


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_open_and_closed_port() -> None:
    async with TCPAcceptServer() as srv:
        out = await run_tcp_probe(TCPSocketAction(host=None, port=srv.port), default_host="127.0.0.1", timeout_s=1)
        assert (out.result, out.message) == (S, "")
    port = closed_port()
    out = await run_tcp_probe(TCPSocketAction(host=None, port=port), default_host="127.0.0.1", timeout_s=1)
    assert (out.result, out.message) == (F, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_grpc_serving_then_not_serving() -> None:
    async with GRPCHealthServer() as srv:
        act = GRPCAction(port=srv.port)
        out = await run_grpc_probe(act, host="127.0.0.1", timeout_s=1)
        assert (out.result, out.message) == (S, "service healthy")
        await srv.set("", serving=False)
        out = await run_grpc_probe(act, host="127.0.0.1", timeout_s=1)
        assert (out.result, out.message) == (F, 'service unhealthy (responded with "NOT_SERVING")')
        await srv.set("", serving=True)
        assert (await run_grpc_probe(act, host="127.0.0.1", timeout_s=1)).result is S


async def test_grpc_named_service() -> None:
    async with GRPCHealthServer() as srv:
        await srv.set("shop.Cart", serving=True)
        out = await run_grpc_probe(GRPCAction(port=srv.port, service="shop.Cart"), host="127.0.0.1", timeout_s=1)
        assert out.result is S
        out = await run_grpc_probe(GRPCAction(port=srv.port, service="shop.Other"), host="127.0.0.1", timeout_s=1)
        assert out.result is F
        assert out.message == "error: health rpc probe failed: rpc error: code = NotFound desc = "


async def test_grpc_without_health_service() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        out = await run_grpc_probe(GRPCAction(port=port), host="127.0.0.1", timeout_s=1)
        assert out.result is F
        assert out.message.startswith("error: this server does not implement the grpc health protocol "
                                      "(grpc.health.v1.Health)")
    finally:
        await server.stop(None)


async def test_grpc_closed_port_times_out_within_timeout() -> None:
    port = closed_port()
    t0 = time.monotonic()
    out = await run_grpc_probe(GRPCAction(port=port), host="127.0.0.1", timeout_s=1)
    assert out.result is F
    assert out.message == (f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: '
                           f"context deadline exceeded")
    assert time.monotonic() - t0 < 1.5


async def test_grpc_hung_server_does_not_block_other_probes() -> None:
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepts at the kernel level, never speaks HTTP/2
    try:
        async with GRPCHealthServer() as srv:
            t0 = time.monotonic()
            slow = asyncio.create_task(run_grpc_probe(GRPCAction(port=hung.getsockname()[1]), host="127.0.0.1",
                                                      timeout_s=1))
            for _ in range(5):
                assert (await run_grpc_probe(GRPCAction(port=srv.port), host="127.0.0.1", timeout_s=1)).result is S
            assert time.monotonic() - t0 < 0.9
            out = await slow
            assert out.result is F and out.message.startswith("timeout: ")
            assert time.monotonic() - t0 < 1.5
    finally:
        hung.close()


async def exec_probe(cmd, timeout=1.0):  # type: ignore[no-untyped-def]
    runner = SubprocessExecRunner()
    out = await run_exec_probe(ExecAction(command=tuple(cmd)), runner=runner, container_id=ContainerId("c1"),
                               timeout_s=timeout)
    return out, runner


async def test_exec_exit_codes_and_output() -> None:
    out, _ = await exec_probe(["true"])
    assert (out.result, out.message) == (S, "")
    out, _ = await exec_probe(["sh", "-c", "echo not healthy; echo oops >&2; exit 3"])
    assert (out.result, out.message) == (F, "not healthy\noops\n")


async def test_exec_output_is_capped() -> None:
    out, _ = await exec_probe(["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 1"])
    assert out.result is F and len(out.message) == 10 * 1024


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


async def test_exec_timeout_is_a_failure_and_the_child_is_killed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    out, runner = await exec_probe(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - t0 < 1.5
    assert out.result is F
    assert out.message == f'command "sh -c sleep 30 & echo $! > {pidfile}; wait" timed out'
    assert not alive(runner.started_pids[0])
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while alive(grandchild) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not alive(grandchild)


class IgnoringRunner:
    """A broken runtime that ignores the timeout: the probe still ends (timeout + grace) and cancels the call."""

    def __init__(self) -> None:
        self.cancelled = 0

    async def exec_sync(self, container_id, cmd, timeout_s):  # type: ignore[no-untyped-def]
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_exec_runner_ignoring_its_timeout_is_cut_off() -> None:
    runner = IgnoringRunner()
    t0 = time.monotonic()
    out = await run_exec_probe(ExecAction(command=("sleep", "9")), runner=runner, container_id=ContainerId("c"),
                               timeout_s=0.2)
    assert out.result is F and out.message == 'command "sleep 9" timed out'
    assert runner.cancelled == 1
    assert time.monotonic() - t0 < 1.6


async def test_exec_runner_error_is_unknown() -> None:
    class Broken:
        async def exec_sync(self, container_id, cmd, timeout_s):  # type: ignore[no-untyped-def]
            raise RuntimeError("container not found")

    out = await run_exec_probe(ExecAction(command=("true",)), runner=Broken(), container_id=ContainerId("c"),
                               timeout_s=1)
    assert (out.result, out.message) == (U, "exec probe errored: container not found")


async def test_grpc_against_an_http1_server_fails_as_a_connect_timeout() -> None:
    from probes.testing import HTTPTestServer

    async with HTTPTestServer() as srv:
        out = await run_grpc_probe(GRPCAction(port=srv.port), host="127.0.0.1", timeout_s=1)
        assert out.result is F
        assert out.message == (f'timeout: failed to connect service "127.0.0.1:{srv.port}" within 1s: '
                               f"context deadline exceeded")


async def test_grpc_sends_kube_probe_user_agent() -> None:
    seen: list[str] = []

    class Capture(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
            seen.append(dict(details.invocation_metadata).get("user-agent", ""))
            return await continuation(details)

    from grpc_health.v1 import health, health_pb2_grpc
    server = grpc.aio.server(interceptors=[Capture()])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        out = await run_grpc_probe(GRPCAction(port=port), host="127.0.0.1", timeout_s=1)
        assert out.result is S
        assert seen and seen[0].startswith("kube-probe/1.31")
    finally:
        await server.stop(None)
