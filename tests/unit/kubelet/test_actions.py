"""compute_pod_actions tables: every sandbox rule and restart-policy row of the kubelet's computePodActions."""
from __future__ import annotations

import pytest

from kubelet.lifecycle.actions import ProbeKill, compute_pod_actions, compute_sandbox_changed, should_restart
from kubelet.testing import CREATED, EXITED, RUNNING, UNKNOWN, cinfo, container, pod, rt, sandbox


@pytest.mark.parametrize(
    "policy,code,expected",
    [("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 2, True), ("Never", 0, False), ("Never", 1, False)],
)
def test_should_restart(policy: str, code: int, expected: bool) -> None:
    assert should_restart(policy, code) is expected


@pytest.mark.parametrize(
    "sandboxes,host_network,changed,attempt,reason",
    [
        ((), False, True, 0, "no sandbox"),
        ((sandbox("s2", attempt=1), sandbox("s1")), False, True, 2, "2 ready sandboxes"),
        ((sandbox(ready=False),), False, True, 1, "sandbox not ready"),
        ((sandbox(host_network=False),), True, True, 1, "network namespace mode changed"),
        ((sandbox(ip=""),), False, True, 1, "sandbox has no IP"),
        ((sandbox(ip="", host_network=True),), True, False, 0, ""),
        ((sandbox(attempt=3),), False, False, 3, ""),
    ],
)
def test_sandbox_changed(sandboxes, host_network, changed, attempt, reason) -> None:  # type: ignore[no-untyped-def]
    p = pod("a", host_network=host_network)
    got = compute_sandbox_changed(p, rt(sandboxes=sandboxes))
    assert got[0] is changed and got[1] == attempt and got[3] == reason


def test_new_pod_creates_sandbox_and_starts_all() -> None:
    a = compute_pod_actions(pod("a", "b"), rt(sandboxes=()))
    assert a.create_sandbox and a.kill_pod and a.attempt == 0 and a.containers_to_start == ("a", "b")


def test_new_pod_with_init_starts_first_init_only() -> None:
    a = compute_pod_actions(pod("a", init=("i1", "i2")), rt(sandboxes=()))
    assert a.create_sandbox and a.init_container_to_start == "i1" and a.containers_to_start == ()


def test_dead_sandbox_is_recreated_with_next_attempt() -> None:
    a = compute_pod_actions(pod("a"), rt(cinfo("a", EXITED, exit_code=137), sandboxes=(sandbox(ready=False, attempt=2),)))
    assert a.create_sandbox and a.attempt == 3 and a.containers_to_start == ("a",)


def test_never_pod_that_ran_gets_no_new_sandbox() -> None:
    a = compute_pod_actions(pod("a", restart_policy="Never"), rt(cinfo("a", EXITED, exit_code=1), sandboxes=(sandbox(ready=False),)))
    assert not a.create_sandbox and a.noop


def test_onfailure_all_succeeded_gets_no_new_sandbox() -> None:
    a = compute_pod_actions(pod("a", restart_policy="OnFailure"), rt(cinfo("a", EXITED, exit_code=0), sandboxes=(sandbox(ready=False),)))
    assert a.noop


def test_onfailure_sandbox_lost_restarts_only_failed() -> None:
    p = pod("a", "b", restart_policy="OnFailure")
    a = compute_pod_actions(p, rt(cinfo("a", EXITED, exit_code=0), cinfo("b", EXITED, exit_code=1), sandboxes=(sandbox(ready=False),)))
    assert a.create_sandbox and a.containers_to_start == ("b",)


def test_running_container_is_kept() -> None:
    assert compute_pod_actions(pod("a"), rt(cinfo("a"))).noop


@pytest.mark.parametrize(
    "policy,code,start",
    [("Always", 0, True), ("Always", 1, True), ("OnFailure", 1, True), ("OnFailure", 0, False), ("Never", 1, False), ("Never", 0, False)],
)
def test_exited_container_restart_policy(policy: str, code: int, start: bool) -> None:
    p = pod("a", "b", restart_policy=policy)
    a = compute_pod_actions(p, rt(cinfo("a", EXITED, exit_code=code), cinfo("b")))
    assert (a.containers_to_start == ("a",)) is start
    assert not a.kill_pod  # b still runs


def test_all_done_pod_stops_its_sandbox() -> None:
    p = pod("a", restart_policy="Never")
    a = compute_pod_actions(p, rt(cinfo("a", EXITED, exit_code=0)))
    assert a.kill_pod and not a.create_sandbox and a.containers_to_start == ()


def test_backoff_holds_a_restart_and_requeues() -> None:
    p = pod("a")
    a = compute_pod_actions(p, rt(cinfo("a", EXITED, exit_code=1, restarts=2)), backoff_left=lambda c, i: 7.5, backoff_delay=lambda c: 20.0)
    assert a.containers_to_start == () and a.requeue_after == 7.5 and not a.kill_pod
    reason, message = a.waiting["a"]
    assert reason == "CrashLoopBackOff"
    assert message == "back-off 20s restarting failed container=a pod=web-node1_default(uid1)"


def test_backoff_message_minutes() -> None:
    a = compute_pod_actions(pod("a"), rt(cinfo("a", EXITED, exit_code=1)), backoff_left=lambda c, i: 1, backoff_delay=lambda c: 300.0)
    assert "back-off 5m0s restarting" in a.waiting["a"][1]


def test_hash_change_restarts_even_under_never() -> None:
    p = pod(containers=(container("a", hash="h2"),), restart_policy="Never")
    a = compute_pod_actions(p, rt(cinfo("a", hash="h1")))
    assert [k.container_id for k in a.containers_to_kill] == ["a-0"]
    assert a.containers_to_kill[0].message == "Container a definition changed, will be restarted"
    assert a.containers_to_start == ("a",)


def test_liveness_failure_kills_with_probe_grace_and_restarts_per_policy() -> None:
    kill = ProbeKill(reason="Liveness", message="Container a failed liveness probe", grace_seconds=3)
    a = compute_pod_actions(pod("a"), rt(cinfo("a")), probe_kill=lambda c, i: kill)
    assert a.containers_to_kill[0].grace_seconds == 3 and a.containers_to_start == ("a",)
    assert a.containers_to_kill[0].message.endswith(", will be restarted")
    a = compute_pod_actions(pod("a", restart_policy="Never"), rt(cinfo("a")), probe_kill=lambda c, i: kill)
    assert a.containers_to_kill and a.containers_to_start == ()


@pytest.mark.parametrize("state", [CREATED, UNKNOWN])
def test_created_or_unknown_container_is_replaced(state) -> None:  # type: ignore[no-untyped-def]
    a = compute_pod_actions(pod("a"), rt(cinfo("a", state)))
    assert [k.name for k in a.containers_to_kill] == ["a"] and a.containers_to_start == ("a",)


def test_container_not_in_spec_is_killed() -> None:
    a = compute_pod_actions(pod("a"), rt(cinfo("a"), cinfo("stray")))
    assert [k.name for k in a.containers_to_kill] == ["stray"]


def test_init_containers_run_in_order() -> None:
    p = pod("a", init=("i1", "i2"))
    a = compute_pod_actions(p, rt(cinfo("i1", RUNNING, init=True)))
    assert a.noop  # wait for i1
    a = compute_pod_actions(p, rt(cinfo("i1", EXITED, exit_code=0, init=True)))
    assert a.init_container_to_start == "i2" and a.containers_to_start == ()
    a = compute_pod_actions(p, rt(cinfo("i1", EXITED, init=True), cinfo("i2", EXITED, init=True)))
    assert a.init_container_to_start is None and a.containers_to_start == ("a",)


def test_failed_init_restarts_with_backoff_or_fails_the_pod_under_never() -> None:
    p = pod("a", init=("i1",))
    a = compute_pod_actions(p, rt(cinfo("i1", EXITED, exit_code=1, init=True)))
    assert a.init_container_to_start == "i1"
    a = compute_pod_actions(p, rt(cinfo("i1", EXITED, exit_code=1, init=True)), backoff_left=lambda c, i: 5)
    assert a.init_container_to_start is None and a.waiting["i1"][0] == "CrashLoopBackOff"
    a = compute_pod_actions(pod("a", init=("i1",), restart_policy="Never"), rt(cinfo("i1", EXITED, exit_code=1, init=True)))
    assert a.kill_pod and a.init_container_to_start is None


def test_init_done_once_regular_containers_ran() -> None:
    p = pod("a", init=("i1",))
    # The init container instance was garbage-collected, but "a" has run: initialization is over.
    a = compute_pod_actions(p, rt(cinfo("a", EXITED, exit_code=1)))
    assert a.containers_to_start == ("a",) and a.init_container_to_start is None
