"""Phase, conditions and container states, as the kubelet computes them."""
from __future__ import annotations

import pytest

from kubelet.lifecycle.status import StatusInputs, compute_pod_status, is_ready, render_pod_status
from kubelet.testing import EXITED, RUNNING, cinfo, pod, rt, sandbox

NOW = 1_700_000_200.0


def status(p, r, **kw):  # type: ignore[no-untyped-def]
    return render_pod_status(compute_pod_status(p, r, StatusInputs(host_ip="192.0.2.10", now=NOW, **kw)))


def cond(st, type_):  # type: ignore[no-untyped-def]
    return next(c for c in st["conditions"] if c["type"] == type_)


def test_running_pod_is_ready_with_ip() -> None:
    st = status(pod("a"), rt(cinfo("a")))
    assert st["phase"] == "Running" and is_ready(st)
    assert st["podIP"] == "10.244.0.2" and st["podIPs"] == [{"ip": "10.244.0.2"}] and st["hostIP"] == "192.0.2.10"
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and "running" in cs["state"] and cs["containerID"] == "containerd://a-0"
    assert st["qosClass"] == "BestEffort"


def test_new_pod_is_pending_container_creating() -> None:
    st = status(pod("a"), rt(sandboxes=()))
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cond(st, "PodReadyToStartContainers")["status"] == "False"
    assert "podIP" not in st


def test_crashloop_shows_waiting_and_last_state() -> None:
    r = rt(cinfo("a", EXITED, exit_code=3, restarts=4))
    msg = "back-off 40s restarting failed container=a pod=web-node1_default(uid1)"
    st = status(pod("a"), r, waiting={"a": ("CrashLoopBackOff", msg)})
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["restartCount"] == 4 and st["phase"] == "Running"
    assert cond(st, "Ready") == {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [a]", "lastProbeTime": None, "lastTransitionTime": "2023-11-14T22:16:40Z"}


@pytest.mark.parametrize(
    "policy,codes,phase",
    [
        ("Never", (0, 0), "Succeeded"),
        ("Never", (0, 1), "Failed"),
        ("OnFailure", (0, 0), "Succeeded"),
        ("Always", (0, 0), "Running"),
    ],
)
def test_terminal_phases(policy: str, codes: tuple[int, int], phase: str) -> None:
    r = rt(cinfo("a", EXITED, exit_code=codes[0]), cinfo("b", EXITED, exit_code=codes[1]), sandboxes=(sandbox(ready=False),))
    st = status(pod("a", "b", restart_policy=policy), r)
    assert st["phase"] == phase
    if phase in ("Succeeded", "Failed"):
        assert cond(st, "Ready")["reason"] == "PodCompleted"
        assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == ("Completed" if codes[0] == 0 else "Error")


def test_terminal_phase_is_never_left() -> None:
    p = pod("a", restart_policy="Never")
    first = compute_pod_status(p, rt(cinfo("a", EXITED, exit_code=0), sandboxes=(sandbox(ready=False),)), StatusInputs(host_ip="192.0.2.10", now=NOW))
    assert render_pod_status(first)["phase"] == "Succeeded"
    again = render_pod_status(compute_pod_status(p, rt(sandboxes=()), StatusInputs(now=NOW), previous=first))
    assert again["phase"] == "Succeeded"


def test_init_phase_and_conditions() -> None:
    p = pod("a", init=("i1", "i2"))
    st = status(p, rt(cinfo("i1", EXITED, init=True), cinfo("i2", RUNNING, init=True)))
    assert st["phase"] == "Pending"
    assert cond(st, "Initialized") | {} == {
        "type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [i2]", "lastProbeTime": None, "lastTransitionTime": "2023-11-14T22:16:40Z",
    }
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_init_failure_under_never_fails_the_pod() -> None:
    p = pod("a", init=("i1",), restart_policy="Never")
    st = status(p, rt(cinfo("i1", EXITED, exit_code=2, init=True)))
    assert st["phase"] == "Failed"


def test_readiness_probe_gates_ready() -> None:
    p = pod(containers=(__import__("kubelet.testing", fromlist=["container"]).container("a", readiness_probe=object()),))
    typed = compute_pod_status(p, rt(cinfo("a")), StatusInputs(now=NOW, readiness=lambda n, cid: False))
    st = render_pod_status(typed)
    assert not is_ready(st) and st["containerStatuses"][0]["ready"] is False
    st2 = render_pod_status(compute_pod_status(p, rt(cinfo("a")), StatusInputs(now=NOW + 5, readiness=lambda n, cid: True), previous=typed))
    assert is_ready(st2)
    assert cond(st2, "Ready")["lastTransitionTime"] == "2023-11-14T22:16:45Z"
    assert cond(st2, "PodScheduled")["lastTransitionTime"] == cond(st, "PodScheduled")["lastTransitionTime"]


def test_host_network_pod_ip_is_host_ip() -> None:
    st = status(pod("a", host_network=True), rt(cinfo("a"), sandboxes=(sandbox(ip="", host_network=True),)))
    assert st["podIP"] == "192.0.2.10" and st["phase"] == "Running"


def test_image_pull_error_is_shown() -> None:
    st = status(pod("a"), rt(), waiting={"a": ("ErrImagePull", 'Failed to pull image "x": nope')})
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull" and st["phase"] == "Pending"
