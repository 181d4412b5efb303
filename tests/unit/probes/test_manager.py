"""ProbeManager + ProbeWorker driven by a fake clock and a scripted prober (timing, gating, hold, events)."""
from __future__ import annotations

import pytest

from probes import (
    ContainerId, ContainerProbes, ProbeEventType, ProbeKind, ProbeManager, ProbeResult,
)
from probes.testing import POD, UID, EventLog, FakeClock, ScriptedProber, make_spec

S, F = ProbeResult.SUCCESS, ProbeResult.FAILURE
L, R, ST = ProbeKind.LIVENESS, ProbeKind.READINESS, ProbeKind.STARTUP
E = ProbeEventType


class Rig:
    def __init__(self, *, rng: float = 0.0, agent_age: float = 1000.0) -> None:
        self.clock = FakeClock()
        self.prober = ScriptedProber(self.clock)
        self.events = EventLog()
        self.lateness: list[float] = []
        # jitter applies only when the agent started less than a period ago: age the manager by default
        self.manager = ProbeManager(exec_runner=None, on_result=self.events, clock=self.clock, prober=self.prober,
                                    rng=lambda: rng, on_probe_started=self.lateness.append)
        self.manager._start -= agent_age  # noqa: SLF001 - the manager's start instant, moved back in time

    def update(self, probes: ContainerProbes, *, cid: str | None = "c1", running: bool = True,
               started_ago: float = 100.0, terminated: bool = False, policy: str = "Always",
               host_network: bool = False) -> None:
        self.manager.update_container(
            pod_key=POD, pod_uid=UID, container_name="web", container_id=ContainerId(cid) if cid else None,
            started_at=self.clock.time() - started_ago, running=running, pod_ip="10.0.0.2", host_ip="192.168.1.5",
            host_network=host_network, probes=probes, terminated=terminated, restart_policy=policy)

    def ready(self) -> bool:
        return self.manager.is_ready(POD, "web")

    def started(self) -> bool:
        return self.manager.is_started(POD, "web")


@pytest.fixture
async def rig():  # type: ignore[no-untyped-def]
    r = Rig()
    yield r
    await r.manager.aclose()


async def test_initial_results_before_any_probe(rig: Rig) -> None:
    rig.update(ContainerProbes(liveness=make_spec(L, initial_delay_seconds=30),
                               readiness=make_spec(R, initial_delay_seconds=30)))
    rig.update(ContainerProbes(liveness=make_spec(L, initial_delay_seconds=30),
                               readiness=make_spec(R, initial_delay_seconds=30)), started_ago=0)
    await rig.clock.advance(0)
    assert rig.manager.result(POD, "web", L) is S
    assert rig.manager.result(POD, "web", R) is F
    assert rig.started() and not rig.ready()
    assert rig.prober.calls == []


async def test_startup_initial_unknown_and_gates_the_others(rig: Rig) -> None:
    rig.prober.set(ST, F, "not yet")
    probes = ContainerProbes(liveness=make_spec(L, period_seconds=1), readiness=make_spec(R, period_seconds=1),
                             startup=make_spec(ST, period_seconds=1, failure_threshold=30))
    rig.update(probes)
    await rig.clock.advance(0)
    assert rig.manager.result(POD, "web", ST) is ProbeResult.UNKNOWN
    await rig.clock.advance(5)
    assert rig.prober.count(ST) == 6 and rig.prober.count(L) == 0 and rig.prober.count(R) == 0
    assert not rig.started() and not rig.ready()
    rig.prober.set(ST, S)
    await rig.clock.advance(1)
    assert rig.started()
    # readiness is probed at once after startup succeeded (manual trigger), liveness at its next tick
    assert rig.prober.count(R) == 1 and rig.ready()
    n_startup = rig.prober.count(ST)
    await rig.clock.advance(3)
    assert rig.prober.count(ST) == n_startup  # startup stops probing once started
    assert rig.prober.count(L) >= 3
    started = [e.value for e in rig.events.of(E.STARTED_CHANGED)]
    ready = [e.value for e in rig.events.of(E.READY_CHANGED)]
    assert started == [False, True] and ready == [False, True]


async def test_nothing_before_initial_delay(rig: Rig) -> None:
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1, initial_delay_seconds=5)), started_ago=0)
    await rig.clock.advance(4.5)
    assert rig.prober.count(R) == 0
    await rig.clock.advance(1)
    assert rig.prober.count(R) == 1 and rig.ready()


async def test_period_and_lateness(rig: Rig) -> None:
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=3)))
    await rig.clock.advance(9.5)
    times = [c.at - rig.prober.calls[0].at for c in rig.prober.calls]
    assert times == [0, 3, 6, 9]
    assert rig.lateness == [0, 0, 0, 0]


async def test_first_probe_jitter_only_when_the_agent_just_started() -> None:
    young = Rig(rng=0.5, agent_age=0)
    try:
        young.update(ContainerProbes(readiness=make_spec(R, period_seconds=10)))
        await young.clock.advance(4.9)
        assert young.prober.count(R) == 0
        await young.clock.advance(0.2)
        assert young.prober.count(R) == 1
    finally:
        await young.manager.aclose()
    old = Rig(rng=0.5, agent_age=10)
    try:
        old.update(ContainerProbes(readiness=make_spec(R, period_seconds=10)))
        await old.clock.advance(0)
        assert old.prober.count(R) == 1
    finally:
        await old.manager.aclose()


@pytest.mark.parametrize("kind, threshold", [(L, 3), (L, 1), (ST, 2)])
async def test_liveness_and_startup_failure_kill_then_hold_until_new_container(rig: Rig, kind, threshold) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(kind, period_seconds=2, failure_threshold=threshold, termination_grace_period_seconds=7)
    probes = ContainerProbes(liveness=spec) if kind is L else ContainerProbes(startup=spec)
    rig.prober.set(kind, F, "HTTP probe failed with statuscode: 500")
    rig.update(probes)
    await rig.clock.advance(0)
    for _ in range(threshold - 1):
        assert rig.events.of(E.KILL_CONTAINER) == []
        await rig.clock.advance(2)
    kills = rig.events.of(E.KILL_CONTAINER)
    assert len(kills) == 1
    k = kills[0]
    assert (k.container_id, k.kind, k.grace_period_seconds) == ("c1", kind, 7)
    assert k.message == f"Container web failed {kind.value} probe, will be restarted"
    assert k.probe_message == f"{kind.title} probe failed: HTTP probe failed with statuscode: 500"
    unhealthy = rig.events.of(E.UNHEALTHY)
    assert len(unhealthy) == threshold
    assert unhealthy[0].message == f"{kind.title} probe failed: HTTP probe failed with statuscode: 500"
    calls = rig.prober.count(kind)
    await rig.clock.advance(20)  # on hold: no probing of the doomed container
    assert rig.prober.count(kind) == calls
    assert len(rig.events.of(E.KILL_CONTAINER)) == 1
    # the daemon restarted it: a new container ID resumes probing from the initial result
    rig.prober.set(kind, S)
    rig.update(probes, cid="c2", started_ago=0)
    await rig.clock.advance(2)
    assert rig.prober.count(kind) > calls
    assert rig.manager.result(POD, "web", kind) is S
    assert rig.prober.calls[-1].container_id == "c2"


async def test_readiness_flips_both_ways_with_thresholds(rig: Rig) -> None:
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1, success_threshold=2, failure_threshold=2)))
    await rig.clock.advance(0)
    assert not rig.ready()
    await rig.clock.advance(1)
    assert rig.ready()
    rig.prober.set(R, F, "boom")
    await rig.clock.advance(1)
    assert rig.ready()
    await rig.clock.advance(1)
    assert not rig.ready()
    rig.prober.set(R, S)
    await rig.clock.advance(1)
    assert not rig.ready()
    await rig.clock.advance(1)
    assert rig.ready()
    assert [e.value for e in rig.events.of(E.READY_CHANGED)] == [False, True, False, True]
    assert rig.events.of(E.KILL_CONTAINER) == []  # readiness never kills


async def test_no_probes_means_ready_and_started_while_running(rig: Rig) -> None:
    rig.update(ContainerProbes())
    assert rig.ready() and rig.started()
    rig.update(ContainerProbes(), running=False, terminated=True)
    assert not rig.ready() and not rig.started()
    assert [e.value for e in rig.events.of(E.READY_CHANGED)] == [True, False]


async def test_container_stopping_makes_it_unready_and_never_kills(rig: Rig) -> None:
    probes = ContainerProbes(liveness=make_spec(L, period_seconds=1), readiness=make_spec(R, period_seconds=1))
    rig.update(probes)
    await rig.clock.advance(1)
    assert rig.ready()
    rig.update(probes, running=False, terminated=True)
    assert not rig.ready()
    await rig.clock.advance(5)
    assert rig.events.of(E.KILL_CONTAINER) == []
    assert rig.manager.result(POD, "web", L) is F  # non-running reads failure, but takes no kill


async def test_workers_stop_for_terminated_never_restarted_container(rig: Rig) -> None:
    probes = ContainerProbes(readiness=make_spec(R, period_seconds=1))
    rig.update(probes, policy="Never")
    await rig.clock.advance(1)
    rig.update(probes, running=False, terminated=True, policy="Never")
    await rig.clock.advance(2)
    assert rig.manager.snapshot() == []
    calls = rig.prober.count(R)
    await rig.clock.advance(5)
    assert rig.prober.count(R) == calls


async def test_remove_pod_stops_every_worker(rig: Rig) -> None:
    rig.update(ContainerProbes(liveness=make_spec(L, period_seconds=1), readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(1)
    rig.manager.remove_pod(POD)
    calls = len(rig.prober.calls)
    await rig.clock.advance(5)
    assert len(rig.prober.calls) == calls
    assert rig.manager.snapshot() == [] and not rig.ready()


async def test_spec_change_replaces_the_worker(rig: Rig) -> None:
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=10)))
    await rig.clock.advance(1)
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(3)
    assert rig.prober.count(R) >= 4


async def test_host_network_pods_are_probed_on_the_host_ip(rig: Rig) -> None:
    seen = []

    async def probe(spec, target):  # type: ignore[no-untyped-def]
        seen.append(target.address)
        from probes import ProbeOutcome
        return ProbeOutcome(result=S)

    rig.prober.probe = probe  # type: ignore[method-assign]
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1)), host_network=True)
    await rig.clock.advance(0)
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1)), cid="c2")
    rig.manager.update_container(pod_key=POD, pod_uid=UID, container_name="side", container_id=ContainerId("c3"),
                                 started_at=rig.clock.time() - 50, running=True, pod_ip="10.0.0.2",
                                 host_ip="192.168.1.5", host_network=False,
                                 probes=ContainerProbes(readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(1)
    assert seen[0] == "192.168.1.5"
    assert "10.0.0.2" in seen


async def test_snapshot_shows_counts_message_latency(rig: Rig) -> None:
    rig.prober.set(L, F, "dial tcp 10.0.0.2:80: connect: connection refused")
    rig.update(ContainerProbes(liveness=make_spec(L, period_seconds=1, failure_threshold=5),
                               readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(2)
    states = {s.kind: s for s in rig.manager.snapshot()}
    live, ready = states[L], states[R]
    assert (live.result, live.last_probe_result, live.consecutive_failures, live.consecutive_successes) == (S, F, 3, 0)
    assert live.last_message == "dial tcp 10.0.0.2:80: connect: connection refused"
    assert live.handler == "tcpSocket" and live.container_id == "c1" and not live.on_hold
    assert live.last_latency_s == 0 and live.last_probe_time == rig.clock.time()
    assert (ready.result, ready.consecutive_successes) == (S, 3)


async def test_redirect_warning_is_a_success_with_an_event(rig: Rig) -> None:
    rig.prober.set(R, S, "Probe terminated redirects, Response body: moved", warning=True)
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(0)
    assert rig.ready()
    (w,) = rig.events.of(E.PROBE_WARNING)
    assert w.message == "Readiness probe warning: Probe terminated redirects, Response body: moved"


async def test_a_failing_callback_does_not_stop_probing(rig: Rig) -> None:
    def boom(event):  # type: ignore[no-untyped-def]
        raise RuntimeError("daemon bug")

    rig.manager._on_result = boom  # noqa: SLF001
    rig.update(ContainerProbes(readiness=make_spec(R, period_seconds=1)))
    await rig.clock.advance(3)
    assert rig.prober.count(R) == 4


async def test_pod_uid_change_restarts_workers(rig: Rig) -> None:
    rig.update(ContainerProbes(liveness=make_spec(L, period_seconds=1)))
    await rig.clock.advance(0)
    old = rig.manager._containers[(POD, "web")].workers[L]  # noqa: SLF001
    rig.manager.update_container(pod_key=POD, pod_uid=UID.replace("0", "1"), container_name="web",
                                 container_id=ContainerId("c9"), started_at=rig.clock.time() - 100, running=True,
                                 pod_ip="10.0.0.2", host_ip=None, host_network=False,
                                 probes=ContainerProbes(liveness=make_spec(L, period_seconds=1)))
    await rig.clock.advance(0)
    assert old.task is not None and old.task.done()
    assert [s.pod_uid for s in rig.manager.snapshot()] == [UID.replace("0", "1")]
