"""Lifecycle hooks: postStart and preStop with exec, httpGet, tcpSocket (deprecated, accepted) and sleep.

Upstream: ``pkg/kubelet/lifecycle/handlers.go`` (``HandlerRunner.Run``) and ``kuberuntime_container.go``
(``executePreStopHook``: run within the grace period, whatever is left after it — at least 2 s — goes to
StopContainer). The handler grammar is the probes' one, parsed by :mod:`probes.spec`; HTTP and TCP go through the
probe runners. An exec hook's output is part of its error message, as upstream.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

import cri
from kubelet.errors import PermanentError

log = logging.getLogger(__name__)

__all__ = ["HookError", "run_hook", "describe_hook"]


class HookError(PermanentError):
    """A lifecycle hook failed (FailedPostStartHook / FailedPreStopHook)."""


def describe_hook(handler: Mapping[str, Any]) -> str:
    return next((k for k in ("exec", "httpGet", "tcpSocket", "sleep") if handler.get(k) is not None), "unknown")


async def run_hook(handler: Mapping[str, Any], *, client: cri.RuntimeClient, container_id: str, ctr: Mapping[str, Any],
                   pod_ip: str, timeout: float) -> None:
    """Run one hook handler to completion within ``timeout`` seconds; HookError says why it failed."""
    from probes.spec import _parse_handler
    from probes.types import ExecAction, HTTPGetAction, ProbeResult, TCPSocketAction

    from kubelet.manifest.fields import container_port_refs

    if handler.get("sleep") is not None:
        await asyncio.sleep(min(float(handler["sleep"].get("seconds", 0)), max(timeout, 0)))
        return
    action = _parse_handler(handler, field="lifecycle", container_ports=container_port_refs(ctr))
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
