"""Termination order with sidecars: regular containers first, then sidecars last-declared first (pure rules and the
asyncio ordering used by KubeRuntime.kill_pod, against the stateful FakeRuntime)."""
from __future__ import annotations

import asyncio
import dataclasses

from kubelet.clock import RealClock
from kubelet.kuberuntime.ordering import TerminationOrdering, compute_termination_order
from kubelet.testing import container, pod
from kubelet.types import Pod


def sidecar_pod() -> Pod:
    p = pod("a", "b")
    inits = (container("s1", restart_policy="Always"), container("i"), container("s2", restart_policy="Always"))
    return dataclasses.replace(p, spec=dataclasses.replace(p.spec, init_containers=inits))


def test_order_regular_then_sidecars_in_reverse() -> None:
    assert compute_termination_order(sidecar_pod(), ["a", "b", "s1", "s2"]) == {"s2": ("a", "b"), "s1": ("a", "b", "s2")}


def test_order_skips_containers_that_do_not_run() -> None:
    assert compute_termination_order(sidecar_pod(), ["b", "s1"]) == {"s1": ("b",)}
    assert compute_termination_order(sidecar_pod(), ["a", "b"]) == {}


def test_ordering_waits_then_releases_in_order() -> None:
    async def run() -> list[str]:
        o = TerminationOrdering(compute_termination_order(sidecar_pod(), ["a", "s1", "s2"]), clock=RealClock())
        stopped: list[str] = []

        async def kill(name: str, delay: float) -> None:
            await o.wait_for_turn(name, 5)
            await asyncio.sleep(delay)  # the container taking its time to exit (not synchronisation)
            stopped.append(name)
            o.terminated(name)

        await asyncio.gather(kill("s1", 0), kill("s2", 0), kill("a", 0.05))
        return stopped

    assert asyncio.run(run()) == ["a", "s2", "s1"]


def test_ordering_wait_is_bounded_by_the_grace_period() -> None:
    async def run() -> float:
        o = TerminationOrdering({"s": ("a",)}, clock=RealClock())
        return await o.wait_for_turn("s", 0.1)  # "a" never stops

    assert 0.09 <= asyncio.run(run()) < 1.0
