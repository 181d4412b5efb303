"""The worker's rules as pure functions, in tables (upstream worker.go doProbe)."""
from __future__ import annotations

import pytest

from probes import ContainerId, ProbeKind, ProbeResult, ProbeTarget
from probes.testing import make_spec
from probes.worker import ContainerView, TickAction, WorkerState, compute_initial_result, compute_record, compute_tick

S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNKNOWN
L, R, ST = ProbeKind.LIVENESS, ProbeKind.READINESS, ProbeKind.STARTUP
NOW = 1_700_000_100.0
C1, C2 = ContainerId("c1"), ContainerId("c2")


def view(cid=C1, *, running=True, started_at=NOW - 100, terminated=False, policy="Always"):  # type: ignore[no-untyped-def]
    return ContainerView(container_id=cid, running=running, started_at=started_at, terminated=terminated,
                         restart_policy=policy, target=ProbeTarget(container_id=cid, pod_ip="10.0.0.2", host_ip=None))


@pytest.mark.parametrize("kind, initial", [(R, F), (L, S), (ST, U)])
def test_initial_results(kind, initial) -> None:  # type: ignore[no-untyped-def]
    assert compute_initial_result(kind) is initial
    plan = compute_tick(WorkerState(), view(), spec=make_spec(kind), started=kind is not ST, now_wall=NOW)
    assert plan.state.result is initial and plan.state.container_id == C1


SEEN = WorkerState(container_id=C1, result=S)
TICKS = [
    # (name, state, view, kind, started, initial delay, expected action, expected reason)
    ("no container", WorkerState(), None, L, True, 0, TickAction.WAIT, "no container yet"),
    ("no container id", WorkerState(), view(cid=None), L, True, 0, TickAction.WAIT, "no container yet"),
    ("probe a running started container", SEEN, view(), L, True, 0, TickAction.PROBE, ""),
    ("hold", WorkerState(container_id=C1, result=F, on_hold=True), view(), L, True, 0, TickAction.WAIT,
     "on hold until a new container"),
    ("a new container ends the hold", WorkerState(container_id=C1, result=F, on_hold=True), view(cid=C2), L, True,
     0, TickAction.PROBE, ""),
    ("not running yet", SEEN, view(running=False), L, False, 0, TickAction.WAIT, "container not running"),
    ("exited, will restart", SEEN, view(running=False, terminated=True), R, False, 0, TickAction.WAIT,
     "container not running"),
    ("exited, Never restarted", SEEN, view(running=False, terminated=True, policy="Never"), R, False, 0,
     TickAction.STOP, "container terminated, never restarted"),
    ("exited, OnFailure", SEEN, view(running=False, terminated=True, policy="OnFailure"), R, False, 0,
     TickAction.WAIT, "container not running"),
    ("inside initial delay", SEEN, view(started_at=NOW - 4.5), L, True, 5, TickAction.WAIT,
     "initialDelaySeconds not over"),
    ("initial delay over", SEEN, view(started_at=NOW - 5.0), L, True, 5, TickAction.PROBE, ""),
    ("liveness waits for startup", SEEN, view(), L, False, 0, TickAction.WAIT, "container not started"),
    ("readiness waits for startup", SEEN, view(), R, False, 0, TickAction.WAIT, "container not started"),
    ("startup probes until started", SEEN, view(), ST, False, 0, TickAction.PROBE, ""),
    ("startup idles once started", SEEN, view(), ST, True, 0, TickAction.WAIT, "container started"),
    ("startup respects initial delay", SEEN, view(started_at=NOW - 1), ST, False, 3, TickAction.WAIT,
     "initialDelaySeconds not over"),
]


@pytest.mark.parametrize("name, state, v, kind, started, delay, action, reason", TICKS, ids=[t[0] for t in TICKS])
def test_tick(name, state, v, kind, started, delay, action, reason) -> None:  # type: ignore[no-untyped-def]
    plan = compute_tick(state, v, spec=make_spec(kind, initial_delay_seconds=delay), started=started, now_wall=NOW)
    assert (plan.action, plan.reason) == (action, reason)


def test_non_running_container_reads_failure() -> None:
    plan = compute_tick(WorkerState(container_id=C1, result=S), view(running=False), spec=make_spec(L),
                        started=False, now_wall=NOW)
    assert plan.state.result is F


def test_new_container_resets_to_initial_and_clears_hold() -> None:
    state = WorkerState(container_id=C1, result=F, last_result=F, result_run=0, on_hold=True)
    plan = compute_tick(state, view(cid=C2), spec=make_spec(L), started=True, now_wall=NOW)
    assert plan.state == WorkerState(container_id=C2, result=S)


def run(kind, results, *, success=1, failure=3, start=None):  # type: ignore[no-untyped-def]
    """Fold results in; return the list of effects and the final state."""
    spec = make_spec(kind, success_threshold=success, failure_threshold=failure)
    state = start or WorkerState(container_id=C1, result=compute_initial_result(kind))
    effects = []
    for r in results:
        state, effect = compute_record(state, r, spec=spec)
        effects.append(effect)
    return effects, state


RECORDS = [
    # (name, kind, success thr, failure thr, attempts, effects, final result, hold)
    ("readiness first success takes effect", R, 1, 3, [S], [S], S, False),
    ("readiness needs successThreshold in a row", R, 3, 3, [S, S, F, S, S, S], [None, None, None, None, None, S],
     S, False),
    ("readiness failures below threshold change nothing", R, 1, 3, [S, F, F], [S, None, None], S, False),
    ("readiness third failure takes effect", R, 1, 3, [S, F, F, F], [S, None, None, F], F, False),
    ("readiness keeps probing after failure", R, 1, 2, [F, F, F, S], [None, F, F, S], S, False),
    ("a success breaks a failure run", R, 1, 3, [F, F, S, F, F], [None, None, S, None, None], S, False),
    ("liveness failureThreshold 1", L, 1, 1, [F], [F], F, True),
    ("liveness third failure takes effect and holds", L, 1, 3, [F, F, F], [None, None, F], F, True),
    ("liveness success resets the run", L, 1, 3, [F, F, S, F, F], [None, None, S, None, None], S, False),
    ("startup success", ST, 1, 3, [F, F, S], [None, None, S], S, False),
    ("startup failure takes effect and holds", ST, 1, 2, [F, F], [None, F], F, True),
    ("unknown is thrown away", R, 1, 2, [F, U, F], [None, None, F], F, False),
    ("unknown does not break a run", L, 1, 2, [F, U, F], [None, None, F], F, True),
]


@pytest.mark.parametrize("name, kind, succ, fail, attempts, effects, final, hold", RECORDS,
                         ids=[t[0] for t in RECORDS])
def test_record(name, kind, succ, fail, attempts, effects, final, hold) -> None:  # type: ignore[no-untyped-def]
    got, state = run(kind, attempts, success=succ, failure=fail)
    assert got == effects
    assert state.result is final
    assert state.on_hold is hold


def test_hold_resets_the_run() -> None:
    _, state = run(L, [F, F, F])
    assert state.result_run == 0 and state.on_hold
