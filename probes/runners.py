"""The four probe handlers as asyncio coroutines, and :class:`Prober`, which picks one for a :class:`ProbeSpec`.

Every attempt returns a :class:`ProbeOutcome` (never raises for the container's faults): SUCCESS, FAILURE, or
UNKNOWN when the prober itself could not run the probe (the worker then throws the attempt away, as upstream does
with a prober error). Messages are upstream's (``pkg/probe/{http,tcp,grpc,exec}``), including Go's error shapes.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from grpc_health.v1 import health_pb2

from probes.grpc_call import ConnectPhaseError, GRPCCallError, grpc_unary_call
from probes._net import DialError, close_probe_socket, join_host_port, open_probe_socket
from probes.errors import ExecTimeoutError
from probes.http import run_http_probe
from probes.compat import timeout
from probes.types import (
    KUBE_PROBE_VERSION, ContainerId, ExecAction, ExecRunner, GRPCAction, HTTPGetAction, ProbeOutcome, ProbeResult,
    ProbeSpec, ProbeTarget, TCPSocketAction,
)

__all__ = ["Prober", "run_tcp_probe", "run_grpc_probe", "run_exec_probe", "run_http_probe", "render_go_duration",
           "MAX_EXEC_OUTPUT_BYTES", "EXEC_HARD_GRACE_S"]

log = logging.getLogger(__name__)

MAX_EXEC_OUTPUT_BYTES = 10 * 1024
#: how long past timeoutSeconds an ExecRunner may take to report its own timeout before the call is cancelled
EXEC_HARD_GRACE_S = 1.0

_SERVING = health_pb2.HealthCheckResponse.SERVING
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def render_go_duration(seconds: float) -> str:
    """``time.Duration.String()`` for whole and fractional seconds: ``1s``, ``1.5s``, ``500ms``."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


async def run_tcp_probe(action: TCPSocketAction, *, default_host: str, timeout_s: float) -> ProbeOutcome:
    host = action.host or default_host
    try:
        async with timeout(timeout_s):
            sock = await open_probe_socket(host, action.port)
    except asyncio.TimeoutError:
        return ProbeOutcome(result=ProbeResult.FAILURE,
                            message=f"dial tcp {join_host_port(host, action.port)}: i/o timeout")
    except DialError as e:
        return ProbeOutcome(result=ProbeResult.FAILURE, message=str(e))
    close_probe_socket(sock)
    return ProbeOutcome(result=ProbeResult.SUCCESS)


async def run_grpc_probe(action: GRPCAction, *, host: str, timeout_s: float) -> ProbeOutcome:
    """``grpc.health.v1.Health/Check`` on host:port, plaintext; only SERVING succeeds (upstream ``pkg/probe/grpc``).

    Like grpc-go's blocking dial, a refused or broken connection is retried until the timeout. The call runs on a
    probe socket (SO_LINGER 1 s, as upstream's probe dialer) through probes/grpc_call.py (the h2 library)."""
    addr = join_host_port(host, action.port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    dur = render_go_duration(timeout_s)
    request = health_pb2.HealthCheckRequest(service=action.service).SerializeToString()
    ready = False

    def mark_ready() -> None:
        nonlocal ready
        ready = True

    try:
        async with timeout(timeout_s):
            backoff = 0.05
            while True:
                try:
                    sock = await open_probe_socket(host, action.port)
                except DialError:
                    await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0.0)))
                    backoff *= 2
                    continue
                try:
                    reply = await grpc_unary_call(
                        sock, authority=addr, path=_HEALTH_CHECK, message=request,
                        user_agent=f"kube-probe/{KUBE_PROBE_VERSION}",
                        timeout_ms=int((deadline - loop.time()) * 1000), on_ready=mark_ready)
                    break
                except ConnectPhaseError:
                    await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0.0)))
                    backoff *= 2
                finally:
                    close_probe_socket(sock)
    except asyncio.TimeoutError:
        if not ready:
            return ProbeOutcome(result=ProbeResult.FAILURE,
                                message=f'timeout: failed to connect service "{addr}" within {dur}: '
                                        f"context deadline exceeded")
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f"timeout: health rpc did not complete within {dur}")
    except GRPCCallError as e:
        if e.code_name == "Unimplemented":
            return ProbeOutcome(result=ProbeResult.FAILURE,
                                message="error: this server does not implement the grpc health protocol "
                                        f"(grpc.health.v1.Health): {e.message}")
        if e.code_name == "DeadlineExceeded":
            return ProbeOutcome(result=ProbeResult.FAILURE, message=f"timeout: health rpc did not complete within {dur}")
        return ProbeOutcome(result=ProbeResult.FAILURE,
                            message=f"error: health rpc probe failed: rpc error: code = {e.code_name} "
                                    f"desc = {e.message}")
    resp = health_pb2.HealthCheckResponse()
    try:
        resp.ParseFromString(reply.message)
    except Exception as e:  # protobuf's DecodeError
        return ProbeOutcome(result=ProbeResult.FAILURE,
                            message=f"error: health rpc probe failed: rpc error: code = Internal desc = {e}")
    if resp.status != _SERVING:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f'service unhealthy (responded with "{name}")')
    return ProbeOutcome(result=ProbeResult.SUCCESS, message="service healthy")


async def run_exec_probe(action: ExecAction, *, runner: ExecRunner, container_id: ContainerId,
                         timeout_s: float) -> ProbeOutcome:
    """CRI ExecSync with timeout = timeoutSeconds; exit 0 succeeds; a timeout is a failure. The runner's call is
    cancelled if it has not returned ``EXEC_HARD_GRACE_S`` after the timeout, so nothing piles up."""
    cmd: Sequence[str] = action.command
    try:
        async with timeout(timeout_s + EXEC_HARD_GRACE_S):
            res = await runner.exec_sync(container_id, cmd, timeout_s)
    except (ExecTimeoutError, asyncio.TimeoutError):
        return ProbeOutcome(result=ProbeResult.FAILURE, message=f'command "{" ".join(cmd)}" timed out')
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the runtime's failure, not the container's: thrown away like upstream's prober error
        log.warning("exec probe errored container=%s err=%s", container_id, e)
        return ProbeOutcome(result=ProbeResult.UNKNOWN, message=f"exec probe errored: {e}")
    output = (res.stdout + res.stderr)[:MAX_EXEC_OUTPUT_BYTES].decode("utf-8", errors="replace")
    return ProbeOutcome(result=ProbeResult.SUCCESS if res.exit_code == 0 else ProbeResult.FAILURE, message=output)


class Prober:
    """Runs one attempt of a probe against a target. Stateless apart from the injected exec runner."""

    def __init__(self, *, exec_runner: ExecRunner | None) -> None:
        self._exec_runner = exec_runner

    async def probe(self, spec: ProbeSpec, target: ProbeTarget) -> ProbeOutcome:
        h = spec.handler
        timeout = float(spec.timeout_seconds)
        if isinstance(h, ExecAction):
            if self._exec_runner is None:
                return ProbeOutcome(result=ProbeResult.UNKNOWN, message="exec probe errored: no exec runner")
            return await run_exec_probe(h, runner=self._exec_runner, container_id=target.container_id,
                                        timeout_s=timeout)
        explicit = h.host if isinstance(h, (HTTPGetAction, TCPSocketAction)) else None
        host = explicit or target.address
        if not host:
            return ProbeOutcome(result=ProbeResult.UNKNOWN, message="no pod IP to probe yet")
        if isinstance(h, HTTPGetAction):
            return await run_http_probe(h, default_host=host, timeout_s=timeout)
        if isinstance(h, TCPSocketAction):
            return await run_tcp_probe(h, default_host=host, timeout_s=timeout)
        return await run_grpc_probe(h, host=host, timeout_s=timeout)
