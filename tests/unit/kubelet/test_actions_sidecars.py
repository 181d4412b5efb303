"""Sidecar containers (init containers with restartPolicy Always, KEP-753) in compute_pod_actions: one row per rule
of the kubelet's computeInitContainerActions and the Job-like completion rule of computePodActions."""
from __future__ import annotations

import dataclasses

import pytest

from kubelet.lifecycle.actions import ProbeKill, compute_pod_actions
from kubelet.testing import CREATED, EXITED, RUNNING, UNKNOWN, cinfo, container, pod, rt, sandbox
from kubelet.types import ContainerSpec, Pod

STARTUP = object()  # any non-None startup probe spec: the planner only asks whether one is set


def side(name: str, *, startup: bool = False, hash: str = "h1") -> ContainerSpec:
    return container(name, restart_policy="Always", startup_probe=STARTUP if startup else None, hash=hash)


def with_inits(p: Pod, *inits: ContainerSpec) -> Pod:
    return dataclasses.replace(p, spec=dataclasses.replace(p.spec, init_containers=inits))


def spod(*inits: ContainerSpec, policy: str = "Always", regular: tuple[str, ...] = ("a",)) -> Pod:
    return with_inits(pod(*regular, restart_policy=policy), *inits)


def init(name: str) -> ContainerSpec:
    return container(name)


def test_sidecar_is_a_typed_field() -> None:
    assert side("s").is_sidecar and not init("i").is_sidecar
    assert spod(side("s"), init("i")).spec.sidecars == (side("s"),)


def test_new_pod_starts_the_first_init_container_only() -> None:
    a = compute_pod_actions(spod(side("s"), init("i")), rt(sandboxes=()))
    assert a.create_sandbox and a.init_containers_to_start == ("s",) and a.containers_to_start == ()


# (init containers, runtime state, started(name) result, expected init_containers_to_start, expected regular starts)
ORDER = [
    pytest.param((side("s"), init("i")), (cinfo("s", init=True),), True, ("i",), (), id="started-sidecar-then-next-init"),
    pytest.param((side("s", startup=True), init("i")), (cinfo("s", init=True),), False, (), (), id="startup-probe-gates-next"),
    pytest.param((side("s", startup=True), init("i")), (cinfo("s", init=True),), True, ("i",), (), id="startup-probe-passed"),
    pytest.param((side("s"), init("i")), (cinfo("s", init=True), cinfo("i", init=True)), True, (), (), id="wait-for-plain-init"),
    pytest.param((side("s"), init("i")), (cinfo("s", init=True), cinfo("i", EXITED, init=True)), True, (), ("a",),
                 id="all-initialized-regular-start"),
    pytest.param((init("i"), side("s")), (cinfo("i", EXITED, init=True),), True, ("s",), (), id="plain-init-then-sidecar"),
    pytest.param((init("i"), side("s")), (cinfo("i", EXITED, init=True), cinfo("s", init=True)), True, (), ("a",),
                 id="last-sidecar-started-initializes"),
    pytest.param((init("i"), side("s", startup=True)), (cinfo("i", EXITED, init=True), cinfo("s", init=True)), False, (), (),
                 id="last-sidecar-not-started-yet"),
    pytest.param((side("s1"), side("s2")), (cinfo("s1", init=True),), True, ("s2",), (), id="sidecars-in-order"),
    # s1 crashed while s2 is being started: s1 restarts (no gating backwards), s2 is waited for
    pytest.param((side("s1"), side("s2", startup=True), init("i")),
                 (cinfo("s1", EXITED, exit_code=1, init=True), cinfo("s2", init=True)), False, ("s1",), (),
                 id="earlier-sidecar-restarts-while-later-starts"),
    # initialized pod: the sidecar exited → restarted whatever the pod's policy; regular container keeps running
    pytest.param((side("s"), init("i")), (cinfo("s", EXITED, exit_code=0, init=True), cinfo("i", EXITED, init=True), cinfo("a")),
                 True, ("s",), (), id="exited-sidecar-restarts"),
    # the sidecar's instance is gone (GC) but the pod ran: start it again, never the plain init container
    pytest.param((side("s"), init("i")), (cinfo("a"),), True, ("s",), (), id="lost-sidecar-after-init-restarts"),
]


@pytest.mark.parametrize("inits,state,started,init_start,regular_start", ORDER)
def test_sidecar_ordering(inits, state, started, init_start, regular_start) -> None:  # type: ignore[no-untyped-def]
    a = compute_pod_actions(spod(*inits), rt(*state), started=lambda c, info: started)
    assert a.init_containers_to_start == init_start
    assert a.containers_to_start == regular_start
    assert not a.kill_pod


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_crashed_sidecar_restarts_under_every_policy_with_backoff(policy: str) -> None:
    p = spod(side("s"), policy=policy)
    state = rt(cinfo("s", EXITED, exit_code=1, restarts=3, init=True), cinfo("a"))
    a = compute_pod_actions(p, state)
    assert a.init_containers_to_start == ("s",) and not a.kill_pod
    a = compute_pod_actions(p, state, backoff_left=lambda c, i: 8.0, backoff_delay=lambda c: 40.0)
    assert a.init_containers_to_start == () and a.requeue_after == 8.0 and not a.kill_pod
    assert a.waiting["s"] == ("CrashLoopBackOff", "back-off 40s restarting failed container=s pod=web-node1_default(uid1)")


def test_crashed_sidecar_during_init_does_not_fail_a_never_pod() -> None:
    a = compute_pod_actions(spod(side("s"), init("i"), policy="Never"), rt(cinfo("s", EXITED, exit_code=1, init=True)))
    assert not a.kill_pod and a.init_containers_to_start == ("s",)


def test_failed_plain_init_after_sidecar_fails_a_never_pod() -> None:
    p = spod(side("s"), init("i"), policy="Never")
    a = compute_pod_actions(p, rt(cinfo("s", init=True), cinfo("i", EXITED, exit_code=1, init=True)))
    assert a.kill_pod and a.init_containers_to_start == ()


@pytest.mark.parametrize("reason,expect_next", [("Startup", False), ("Liveness", True)])
def test_probe_failure_kills_and_restarts_the_sidecar(reason: str, expect_next: bool) -> None:
    kill = ProbeKill(reason=reason, message="x", grace_seconds=4)
    p = spod(side("s"), init("i"))
    a = compute_pod_actions(p, rt(cinfo("s", init=True)), probe_kill=lambda c, i: kill if c.name == "s" else None)
    assert [(k.name, k.grace_seconds) for k in a.containers_to_kill] == [("s", 4)]
    assert a.containers_to_kill[0].message == f"Init container s failed {reason.lower()} probe, will be restarted"
    assert a.init_containers_to_start == (("s", "i") if expect_next else ("s",))


def test_liveness_failure_restarts_sidecar_of_running_never_pod() -> None:
    kill = ProbeKill(reason="Liveness", message="x")
    a = compute_pod_actions(spod(side("s"), policy="Never"), rt(cinfo("s", init=True), cinfo("a")), probe_kill=lambda c, i: kill if c.name == "s" else None)
    assert [k.name for k in a.containers_to_kill] == ["s"] and a.init_containers_to_start == ("s",) and not a.kill_pod


def test_changed_sidecar_definition_restarts_it() -> None:
    a = compute_pod_actions(spod(side("s", hash="h2")), rt(cinfo("s", hash="h1", init=True), cinfo("a")))
    assert a.containers_to_kill[0].message == "Init container s definition changed, will be restarted"
    assert a.init_containers_to_start == ("s",)


@pytest.mark.parametrize("state", [CREATED, UNKNOWN])
def test_created_or_unknown_sidecar_is_replaced(state) -> None:  # type: ignore[no-untyped-def]
    a = compute_pod_actions(spod(side("s")), rt(cinfo("s", state, init=True), cinfo("a")))
    assert [k.name for k in a.containers_to_kill] == ["s"] and a.init_containers_to_start == ("s",)


@pytest.mark.parametrize("policy,code", [("Never", 0), ("Never", 1), ("OnFailure", 0)])
def test_sidecars_do_not_keep_a_job_like_pod_alive(policy: str, code: int) -> None:
    p = spod(side("s1"), side("s2"), policy=policy)
    a = compute_pod_actions(p, rt(cinfo("s1", init=True), cinfo("s2", init=True), cinfo("a", EXITED, exit_code=code)))
    assert a.kill_pod and a.init_containers_to_start == () and a.containers_to_start == ()


def test_job_like_pod_done_while_sidecar_in_backoff_is_killed_not_restarted() -> None:
    p = spod(side("s"), policy="Never")
    a = compute_pod_actions(p, rt(cinfo("s", EXITED, exit_code=1, init=True), cinfo("a", EXITED)), backoff_left=lambda c, i: 5.0)
    assert a.kill_pod and a.init_containers_to_start == () and "s" not in a.waiting


def test_stopped_job_like_pod_stays_down() -> None:
    p = spod(side("s"), policy="Never")
    down = rt(cinfo("s", EXITED, exit_code=137, init=True), cinfo("a", EXITED), sandboxes=(sandbox(ready=False),))
    assert compute_pod_actions(p, down).noop


def test_always_pod_regular_exit_restarts_it_and_keeps_sidecar() -> None:
    a = compute_pod_actions(spod(side("s")), rt(cinfo("s", init=True), cinfo("a", EXITED, exit_code=0)))
    assert a.containers_to_start == ("a",) and not a.kill_pod and a.init_containers_to_start == ()


def test_running_sidecar_and_regular_is_noop() -> None:
    assert compute_pod_actions(spod(side("s"), init("i")), rt(cinfo("s", init=True), cinfo("i", EXITED, init=True), cinfo("a"))).noop


def test_regular_container_from_an_old_sandbox_does_not_skip_initialization() -> None:
    # after a sandbox change the old instances are exited and in another sandbox: run the init containers again
    p = spod(init("i1"), init("i2"))
    state = rt(cinfo("i1", RUNNING, init=True, restarts=1, sandbox_id="s2"), cinfo("i2", EXITED, init=True),
               cinfo("a", EXITED, exit_code=137), sandboxes=(sandbox("s2", attempt=1),))
    a = compute_pod_actions(p, state)
    assert a.containers_to_start == () and a.init_containers_to_start == ()
