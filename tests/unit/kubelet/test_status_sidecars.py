"""Pod status with sidecar containers: getPhase, the Initialized/Ready conditions and initContainerStatuses
(started/ready) as the kubelet computes them (kubelet_pods.go, status/generate.go, prober_manager.UpdatePodStatus)."""
from __future__ import annotations

import dataclasses

import pytest

from kubelet.lifecycle.status import StatusInputs, compute_pod_status, is_ready, render_pod_status
from kubelet.testing import EXITED, cinfo, container, pod, rt, sandbox
from kubelet.types import Pod

NOW = 1_700_000_200.0


def spod(policy: str = "Always", *, plain_init: bool = False) -> Pod:
    p = pod("a", restart_policy=policy)
    inits = ((container("i"),) if plain_init else ()) + (container("s", restart_policy="Always"),)
    return dataclasses.replace(p, spec=dataclasses.replace(p.spec, init_containers=inits))


def status(p, r, **kw):  # type: ignore[no-untyped-def]
    return render_pod_status(compute_pod_status(p, r, StatusInputs(host_ip="192.0.2.10", now=NOW, **kw)))


def cond(st, type_):  # type: ignore[no-untyped-def]
    return next(c for c in st["conditions"] if c["type"] == type_)


def init_status(st, name):  # type: ignore[no-untyped-def]
    return next(s for s in st["initContainerStatuses"] if s["name"] == name)


def test_running_sidecar_and_container_ready() -> None:
    st = status(spod(plain_init=True), rt(cinfo("i", EXITED, init=True), cinfo("s", init=True), cinfo("a")))
    assert st["phase"] == "Running" and is_ready(st)
    s, i = init_status(st, "s"), init_status(st, "i")
    assert s["started"] is True and s["ready"] is True and "running" in s["state"]
    assert i["ready"] is True and i["started"] is False  # a completed plain init container is ready, not started
    assert cond(st, "Initialized")["status"] == "True"


def test_unready_sidecar_makes_the_pod_unready_and_is_listed_first() -> None:
    st = status(spod(), rt(cinfo("s", init=True), cinfo("a")), readiness=lambda name, cid: name == "a" and False)
    assert not is_ready(st)
    assert cond(st, "Ready")["message"] == "containers with unready status: [s a]"
    st = status(spod(), rt(cinfo("s", init=True), cinfo("a")), readiness=lambda name, cid: name != "s")
    assert cond(st, "ContainersReady")["message"] == "containers with unready status: [s]"


def test_sidecar_waiting_for_startup_probe_keeps_the_pod_pending_and_uninitialized() -> None:
    st = status(spod(), rt(cinfo("s", init=True)), started=lambda name, cid: False)
    assert st["phase"] == "Pending"
    assert init_status(st, "s")["started"] is False and init_status(st, "s")["ready"] is False
    init = cond(st, "Initialized")
    assert init["status"] == "False" and init["message"] == "containers with incomplete status: [s]"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_started_sidecar_initializes_the_pod() -> None:
    st = status(spod(), rt(cinfo("s", init=True)))
    assert cond(st, "Initialized")["status"] == "True"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_restarting_sidecar_after_initialization_keeps_running_phase() -> None:
    msg = "back-off 10s restarting failed container=s pod=web-node1_default(uid1)"
    st = status(spod(), rt(cinfo("s", EXITED, exit_code=1, init=True), cinfo("a")), waiting={"s": ("CrashLoopBackOff", msg)})
    assert st["phase"] == "Running" and not is_ready(st)
    assert cond(st, "Initialized")["status"] == "True"
    assert init_status(st, "s")["state"]["waiting"]["reason"] == "CrashLoopBackOff"


@pytest.mark.parametrize("policy,code,phase", [("Never", 0, "Succeeded"), ("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded")])
def test_job_like_pod_phase_is_decided_by_regular_containers(policy: str, code: int, phase: str) -> None:
    # while the sidecar still runs the pod is Running; once stopped (exit 137 from the kill) the regular container decides
    st = status(spod(policy), rt(cinfo("s", init=True), cinfo("a", EXITED, exit_code=code)))
    assert st["phase"] == "Running"
    down = rt(cinfo("s", EXITED, exit_code=137, init=True), cinfo("a", EXITED, exit_code=code), sandboxes=(sandbox(ready=False),))
    st = status(spod(policy), down)
    assert st["phase"] == phase
    assert cond(st, "Ready")["reason"] == "PodCompleted"
