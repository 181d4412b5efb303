"""Lifecycle hooks: postStart and preStop with exec, httpGet, tcpSocket (deprecated, accepted) and sleep.

Upstream: ``pkg/kubelet/lifecycle/handlers.go`` (``HandlerRunner.Run``) and ``kuberuntime_container.go``
(``executePreStopHook``: run within the grace period, whatever is left after it — at least 2 s — goes to
StopContainer). The handler grammar is the probes' one, parsed by :mod:`probes.spec`; HTTP and TCP go through the
probe runners. An exec hook's output is part of its error message, as upstream.
"""
from __future__ import annotations

import asyncio
import logging

import cri
from kubelet.errors import PermanentError
from kubelet.types import LifecycleHandler, SleepAction

log = logging.getLogger(__name__)

__all__ = ["HookError", "run_hook", "describe_hook"]


class HookError(PermanentError):
    """A lifecycle hook failed (FailedPostStartHook / FailedPreStopHook)."""


def describe_hook(handler: LifecycleHandler) -> str:
    """The handler's kind as the manifest names it (exec, httpGet, tcpSocket, sleep)."""
    from probes.types import ExecAction, HTTPGetAction, TCPSocketAction

    for cls, name in ((ExecAction, "exec"), (HTTPGetAction, "httpGet"), (TCPSocketAction, "tcpSocket"), (SleepAction, "sleep")):
        if isinstance(handler, cls):
            return name
    return "unknown"


async def run_hook(handler: LifecycleHandler, *, client: cri.RuntimeClient, container_id: str, pod_ip: str,
                   timeout: float) -> None:
    """Run one hook handler (parsed with the pod) to completion within ``timeout`` seconds; HookError says why it
    failed."""
    from probes.types import ExecAction, HTTPGetAction, ProbeResult, TCPSocketAction

    if isinstance(handler, SleepAction):
        await asyncio.sleep(min(float(handler.seconds), max(timeout, 0)))
        return
    action = handler
    timeout = max(timeout, 1.0)
    if isinstance(action, ExecAction):
        try:
            result = await client.exec_sync(container_id, list(action.command), timeout=timeout)
        except cri.CRIError as err:
            raise HookError(f"Exec lifecycle hook ({list(action.command)}) failed - error: {err.message}") from None
        if result.exit_code != 0:
            out = (result.stdout + result.stderr).decode(errors="replace")
            raise HookError(f"Exec lifecycle hook ({list(action.command)}) failed - error: command "
                            f"'{' '.join(action.command)}' exited with {result.exit_code}: {out}, message: {out!r}")
        return
    if isinstance(action, HTTPGetAction):
        from probes.http import run_http_probe
        outcome = await run_http_probe(action, default_host=pod_ip or "127.0.0.1", timeout_s=timeout)
        if outcome.result != ProbeResult.SUCCESS:
            raise HookError(f"HTTP lifecycle hook ({action.path}) failed - error: {outcome.message}")
        return
    if isinstance(action, TCPSocketAction):
        from probes.runners import run_tcp_probe
        outcome = await run_tcp_probe(action, default_host=pod_ip or "127.0.0.1", timeout_s=timeout)
        if outcome.result != ProbeResult.SUCCESS:
            raise HookError(f"TCP lifecycle hook (port {action.port}) failed - error: {outcome.message}")
        return
    raise HookError(f"invalid lifecycle hook handler: {describe_hook(handler)}")
