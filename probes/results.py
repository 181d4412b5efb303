"""Probe state as the local API shows it (pure rendering)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.types import ProbeState

__all__ = ["render_probe_state", "render_probe_states"]


def render_probe_state(s: ProbeState) -> dict[str, Any]:
    """One probe as JSON-ready data; keys in the API's camelCase, times in seconds (latency in milliseconds)."""
    return {
        "pod": s.pod_key,
        "podUID": s.pod_uid,
        "container": s.container_name,
        "containerID": s.container_id,
        "probe": s.kind.value,
        "handler": s.handler,
        "result": s.result.value,
        "lastProbeResult": s.last_probe_result.value if s.last_probe_result is not None else None,
        "consecutiveSuccesses": s.consecutive_successes,
        "consecutiveFailures": s.consecutive_failures,
        "lastMessage": s.last_message,
        "lastLatencyMs": round(s.last_latency_s * 1000, 3) if s.last_latency_s is not None else None,
        "lastProbeTime": s.last_probe_time,
        "onHold": s.on_hold,
    }


def render_probe_states(states: Iterable[ProbeState]) -> list[dict[str, Any]]:
    """Sorted by pod, container and probe kind, so the output is stable."""
    order = {"startup": 0, "liveness": 1, "readiness": 2}
    return [render_probe_state(s) for s in sorted(
        states, key=lambda s: (s.pod_key, s.container_name, order[s.kind.value]))]
