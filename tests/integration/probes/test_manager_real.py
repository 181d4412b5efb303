"""ProbeManager with the real prober, the real clock and real servers: readiness both ways, liveness kill, exec
probes that time out without piling up, and a hung server that does not delay other probes."""
from __future__ import annotations

import asyncio
import os
import time

from probes import (
    ContainerId, ContainerProbes, ExecAction, HTTPGetAction, PodKey, PodUID, ProbeEventType, ProbeKind, ProbeManager,
    ProbeResult, ProbeSpec, TCPSocketAction,
)
from probes.testing import EventLog, HTTPTestServer, SubprocessExecRunner, wait_until

R, L = ProbeKind.READINESS, ProbeKind.LIVENESS
E = ProbeEventType


def http(kind: ProbeKind, port: int, **kw) -> ProbeSpec:  # type: ignore[no-untyped-def]
    return ProbeSpec(kind=kind, handler=HTTPGetAction(scheme="HTTP", host=None, port=port, path="/", headers=()),
                     period_seconds=1, **kw)


def add(manager: ProbeManager, name: str, probes: ContainerProbes, cid: str = "c1") -> None:
    manager.update_container(pod_key=PodKey("default/p"), pod_uid=PodUID("u1"), container_name=name,
                             container_id=ContainerId(f"{name}-{cid}"), started_at=time.time() - 60, running=True,
                             pod_ip="127.0.0.1", host_ip="127.0.0.1", host_network=False, probes=probes)


async def test_readiness_follows_the_server_both_ways() -> None:
    events = EventLog()
    manager = ProbeManager(exec_runner=None, on_result=events)
    try:
        async with HTTPTestServer() as srv:
            add(manager, "web", ContainerProbes(readiness=http(R, srv.port, failure_threshold=1)))
            await wait_until(lambda: manager.is_ready(PodKey("default/p"), "web"), timeout=3, what="ready")
            srv.status = 500
            await wait_until(lambda: not manager.is_ready(PodKey("default/p"), "web"), timeout=3, what="unready")
            srv.status = 200
            await wait_until(lambda: manager.is_ready(PodKey("default/p"), "web"), timeout=3, what="ready again")
        assert [e.value for e in events.of(E.READY_CHANGED)] == [False, True, False, True]
        assert any(e.message == "Readiness probe failed: HTTP probe failed with statuscode: 500"
                   for e in events.of(E.UNHEALTHY))
    finally:
        await manager.aclose()


async def test_liveness_failure_asks_for_a_kill_with_the_probe_grace() -> None:
    events = EventLog()
    manager = ProbeManager(exec_runner=None, on_result=events)
    try:
        async with HTTPTestServer() as srv:
            srv.status = 500
            t0 = time.monotonic()
            add(manager, "web", ContainerProbes(liveness=http(L, srv.port, failure_threshold=2,
                                                              termination_grace_period_seconds=3)))
            await wait_until(lambda: events.of(E.KILL_CONTAINER), timeout=4, what="kill")
            assert 0.9 < time.monotonic() - t0 < 2.5  # two failures, one period apart
            (kill,) = events.of(E.KILL_CONTAINER)
            assert (kill.container_id, kill.grace_period_seconds) == ("web-c1", 3)
            assert kill.probe_message == "Liveness probe failed: HTTP probe failed with statuscode: 500"
            n = len(srv.requests)
            await asyncio.sleep(1.5)  # a negative check: the hold must keep the worker quiet this long
            assert len(srv.requests) == n
    finally:
        await manager.aclose()


async def test_exec_probe_timeouts_do_not_accumulate() -> None:
    runner = SubprocessExecRunner()
    events = EventLog()
    manager = ProbeManager(exec_runner=runner, on_result=events)
    spec = ProbeSpec(kind=R, handler=ExecAction(command=("sleep", "30")), period_seconds=1, timeout_seconds=1)
    try:
        add(manager, "slow", ContainerProbes(readiness=spec))
        await wait_until(lambda: len(events.of(E.UNHEALTHY)) >= 3, timeout=6, what="three timed-out probes")
        assert events.of(E.UNHEALTHY)[0].message == 'Readiness probe failed: command "sleep 30" timed out'
        live = [p for p in runner.started_pids if os.path.exists(f"/proc/{p}")]
        assert len(live) <= 1, live  # at most the one in flight
    finally:
        await manager.aclose()
    await wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in runner.started_pids), timeout=3,
                     what="children gone after close")


async def test_a_hung_server_does_not_delay_other_probes() -> None:
    lateness: list[float] = []
    manager = ProbeManager(exec_runner=None, on_result=lambda e: None, on_probe_started=lateness.append)
    try:
        async with HTTPTestServer() as hung, HTTPTestServer() as fine:
            hung.hang = True
            for i in range(5):
                add(manager, f"hung{i}", ContainerProbes(readiness=http(R, hung.port)))
            spec = ProbeSpec(kind=R, handler=TCPSocketAction(host=None, port=fine.port), period_seconds=1)
            add(manager, "fine", ContainerProbes(readiness=spec))
            await wait_until(lambda: len(lateness) >= 20, timeout=6, what="20 probe starts")
            await asyncio.sleep(0)
            assert manager.is_ready(PodKey("default/p"), "fine")
            assert not manager.is_ready(PodKey("default/p"), "hung0")
            assert sorted(lateness)[int(len(lateness) * 0.99) - 1] < 0.05, lateness
            states = {s.container_name: s for s in manager.snapshot()}
            assert states["hung0"].last_probe_result in (None, ProbeResult.FAILURE)
    finally:
        await manager.aclose()
