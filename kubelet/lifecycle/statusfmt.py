"""Container states as the v1 API shows them, from a CRI container (the agent's ContainerInfo or a CRI
ContainerStatus: both have id, exit_code, reason, message, started_at, finished_at in ns). Pure and light: the
daemon's status (lifecycle/status.py) and the CLI's daemon-down fallback (cli/fallback.py) share it, and the CLI
must not import the runtime client to use it."""
from __future__ import annotations

from typing import Any

from kubelet.clock import rfc3339


def render_time(ts_ns: int) -> str | None:
    """RFC 3339 (seconds) from nanoseconds since the epoch; None for 0 (not happened)."""
    return rfc3339(ts_ns / 1e9) if ts_ns else None


def render_terminated(c: Any, runtime: str, message: str = "") -> dict[str, Any]:
    """``state.terminated`` of an exited container. containerd reports an OOM kill as reason "OOMKilled" (exit code
    137): kept as the kubelet shows it; no reason → Completed (exit 0) or Error."""
    d: dict[str, Any] = {
        "exitCode": c.exit_code,
        "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
        "startedAt": render_time(c.started_at),
        "finishedAt": render_time(c.finished_at),
        "containerID": f"{runtime}://{c.id}",
    }
    text = message or getattr(c, "message", "")
    if text:
        d["message"] = text
    return d


def render_running(c: Any) -> dict[str, Any]:
    return {"running": {"startedAt": render_time(c.started_at)}}


__all__ = ["render_running", "render_terminated", "render_time"]
