"""Termination order of a pod with sidecar containers (KEP-753): regular containers stop first, all at once; each
sidecar waits until every regular container and every sidecar declared after it has stopped.

Upstream: ``pkg/kubelet/kuberuntime/kuberuntime_termination_order.go`` (newTerminationOrdering, waitForTurn). The
wait is bounded by the container's remaining grace period; preStop hooks run before the wait, all at once.
"""
from __future__ import annotations

import asyncio
from typing import Iterable, Mapping

from kubelet.clock import Clock
from kubelet.types import Pod

__all__ = ["compute_termination_order", "TerminationOrdering"]


def compute_termination_order(pod: Pod, running: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Container name → the running containers it must wait for before it is stopped. Pure."""
    live = set(running)
    regular = tuple(c.name for c in pod.spec.containers if c.name in live)
    order: dict[str, tuple[str, ...]] = {}
    later: str | None = None  # the next sidecar in declaration order that is still running
    for c in reversed(pod.spec.init_containers):
        if not c.is_sidecar:
            continue
        if c.name in live:
            order[c.name] = regular + ((later,) if later else ())
            later = c.name
    return order


class TerminationOrdering:
    """Shared by the concurrent kills of one pod: ``wait_for_turn`` blocks until the prerequisites have stopped."""

    def __init__(self, prereqs: Mapping[str, tuple[str, ...]], *, clock: Clock) -> None:
        self.prereqs = dict(prereqs)
        self.clock = clock
        self._done: dict[str, asyncio.Event] = {}

    def _event(self, name: str) -> asyncio.Event:
        return self._done.setdefault(name, asyncio.Event())

    async def wait_for_turn(self, name: str, timeout: float) -> float:
        """Wait (at most ``timeout`` s) for the containers ``name`` depends on; the seconds spent waiting."""
        waits = [self._event(p).wait() for p in self.prereqs.get(name, ())]
        if not waits:
            return 0.0
        t0 = self.clock.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except asyncio.TimeoutError:
            pass
        return self.clock.monotonic() - t0

    def terminated(self, name: str) -> None:
        self._event(name).set()
