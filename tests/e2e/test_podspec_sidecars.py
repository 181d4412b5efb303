"""Sidecar containers (init containers with restartPolicy Always, KEP-753) on real containerd: started in order with
startup-probe gating, counted in readiness, restarted with back-off while the pod runs (also under restartPolicy
Never), liveness-restarted, stopped after the regular containers in reverse order with preStop hooks, not keeping
Job-like pods alive, and adopted (not restarted) after the agent is killed with SIGKILL."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.server.printers import compute_pod_cells
from kubelet.testing import AgentProcess, cstatus, runtime_pods, wait_until
from kubelet.testing_podspec import BUSYBOX, container_id, events_for, module_agent, pod_yaml, sh, teardown_pod, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

# A shell loop that logs its start and its SIGTERM to /out/order and exits at once on SIGTERM.
LOOP = "echo {n}-start >> /out/order; trap 'echo {n}-term >> /out/order; exit 0' TERM; while true; do sleep 0.1; done"


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("sidecars"))


def cond(pod: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in pod["status"]["conditions"] if c["type"] == type_)


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def test_start_order_startup_gating_readiness_and_termination_order(agent: AgentProcess, containerd: Any, tmp_path: Path) -> None:
    order = tmp_path / "order"
    agent.write("order.yaml", pod_yaml("order", f"""  volumes: [{{name: out, hostPath: {{path: {tmp_path}}}}}]
  initContainers:
  - name: log
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "(sleep 2; touch /tmp/up; echo log-up >> /out/order) & {LOOP.format(n='log')}"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    startupProbe: {{exec: {{command: ["test", "-f", "/tmp/up"]}}, periodSeconds: 1}}
    readinessProbe: {{exec: {{command: ["sh", "-c", "test ! -f /tmp/unready"]}}, periodSeconds: 1}}
    lifecycle: {{preStop: {{exec: {{command: ["sh", "-c", "echo log-prestop >> /out/order"]}}}}}}
  - name: init
    image: {BUSYBOX}
    command: ["sh", "-c", "echo init >> /out/order"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: proxy
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "{LOOP.format(n='proxy')}"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "echo main-start >> /out/order; trap 'sleep 1; echo main-term >> /out/order; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
""", grace=6))
    pod = wait_pod(agent, "order", lambda p: cond(p, "Ready")["status"] == "True", what="pod ready")
    uid = pod["metadata"]["uid"]
    # the plain init container waited for the sidecar's startup probe, the regular container for both sidecars
    assert lines(order) == ["log-start", "log-up", "init", "proxy-start", "main-start"]
    assert pod["status"]["phase"] == "Running"
    log, init, proxy = (cstatus(pod, n) for n in ("log", "init", "proxy"))
    assert log["started"] and log["ready"] and "running" in log["state"] and proxy["ready"]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["ready"]
    assert [s["name"] for s in pod["status"]["initContainerStatuses"]] == ["log", "init", "proxy"]
    now = datetime.now(timezone.utc)
    assert compute_pod_cells(pod, now=now)[1:3] == ("3/3", "Running")  # kubectl's READY counts sidecars

    # an unready sidecar makes the pod unready, and ready again
    assert sh(containerd, pod, "log", "touch /tmp/unready")[0] == 0
    pod = wait_pod(agent, "order", lambda p: cond(p, "Ready")["status"] == "False", timeout=15, what="pod unready")
    assert cond(pod, "Ready")["message"] == "containers with unready status: [log]" and not cstatus(pod, "log")["ready"]
    assert compute_pod_cells(pod, now=now)[1] == "2/3"
    assert sh(containerd, pod, "log", "rm /tmp/unready")[0] == 0
    wait_pod(agent, "order", lambda p: cond(p, "Ready")["status"] == "True", timeout=15, what="pod ready again")

    # termination: preStop hooks at once, the regular container first, then the sidecars last-declared first
    teardown_pod(agent, containerd, "order.yaml", uid)
    assert lines(order)[5:] == ["log-prestop", "main-term", "proxy-term", "log-term"]


def test_crashing_sidecar_restarts_with_backoff_in_a_never_pod(agent: AgentProcess, containerd: Any) -> None:
    agent.write("crash.yaml", pod_yaml("crash", f"""  initContainers:
  - name: side
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "sleep 2; exit 3"]
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
""", restart="Never", grace=1))
    pod = wait_pod(agent, "crash", lambda p: cstatus(p, "side")["restartCount"] >= 1
                   and cstatus(p, "side")["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                   timeout=30, what="sidecar restarted and in back-off")
    uid = pod["metadata"]["uid"]
    side, main = cstatus(pod, "side"), cstatus(pod, "main")
    assert side["lastState"]["terminated"]["exitCode"] == 3
    assert "back-off 10s restarting failed container=side" in side["state"]["waiting"]["message"]
    assert "running" in main["state"] and main["restartCount"] == 0
    assert pod["status"]["phase"] == "Running" and cond(pod, "Initialized")["status"] == "True"
    assert events_for(agent, uid, "BackOff")
    teardown_pod(agent, containerd, "crash.yaml", uid)


def test_sidecar_liveness_failure_restarts_only_the_sidecar(agent: AgentProcess, containerd: Any) -> None:
    agent.write("live.yaml", pod_yaml("live", f"""  initContainers:
  - name: side
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    livenessProbe: {{exec: {{command: ["sh", "-c", "test ! -f /tmp/dead"]}}, periodSeconds: 1, failureThreshold: 1}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
""", grace=1))
    pod = wait_pod(agent, "live", lambda p: cond(p, "Ready")["status"] == "True", what="pod ready")
    uid = pod["metadata"]["uid"]
    first = container_id(pod, "side")
    assert sh(containerd, pod, "side", "touch /tmp/dead")[0] == 0
    pod = wait_pod(agent, "live", lambda p: cstatus(p, "side")["restartCount"] == 1 and "running" in cstatus(p, "side")["state"],
                   timeout=30, what="sidecar restarted by its liveness probe")
    assert container_id(pod, "side") != first and cstatus(pod, "main")["restartCount"] == 0
    killing = events_for(agent, uid, "Killing")
    assert any(e["message"] == "Init container side failed liveness probe, will be restarted" for e in killing), killing
    teardown_pod(agent, containerd, "live.yaml", uid)


def test_sidecar_failing_its_startup_probe_is_restarted_and_holds_the_pod_in_init(agent: AgentProcess, containerd: Any) -> None:
    agent.write("nostart.yaml", pod_yaml("nostart", f"""  initContainers:
  - name: side
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    startupProbe: {{exec: {{command: ["false"]}}, periodSeconds: 1, failureThreshold: 2}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
""", grace=1))
    pod = wait_pod(agent, "nostart", lambda p: cstatus(p, "side")["restartCount"] >= 1, timeout=30,
                   what="sidecar restarted by its startup probe")
    uid = pod["metadata"]["uid"]
    assert cstatus(pod, "main")["state"] == {"waiting": {"reason": "PodInitializing"}}  # never started
    assert pod["status"]["phase"] == "Pending" and cond(pod, "Initialized")["status"] == "False"
    assert compute_pod_cells(pod, now=datetime.now(timezone.utc))[1:3] == ("0/2", "Init:0/1")
    killing = events_for(agent, uid, "Killing")
    assert any(e["message"] == "Init container side failed startup probe, will be restarted" for e in killing), killing
    teardown_pod(agent, containerd, "nostart.yaml", uid)


@pytest.mark.parametrize("code,phase", [(0, "Succeeded"), (1, "Failed")])
def test_sidecars_do_not_block_job_like_pods(agent: AgentProcess, containerd: Any, code: int, phase: str) -> None:
    name = f"job{code}"
    agent.write(f"{name}.yaml", pod_yaml(name, f"""  initContainers:
  - name: side
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "sleep 1; exit {code}"]
""", restart="Never", grace=1))
    pod = wait_pod(agent, name, lambda p: p["status"]["phase"] in ("Succeeded", "Failed"), timeout=30, what="pod completed")
    assert pod["status"]["phase"] == phase
    side = cstatus(pod, "side")
    assert "terminated" in side["state"] and side["restartCount"] == 0  # stopped, not restarted
    assert cstatus(pod, "main")["state"]["terminated"]["exitCode"] == code
    uid = pod["metadata"]["uid"]
    assert not [c for c in runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]["containers"] if c.state == 1]
    teardown_pod(agent, containerd, f"{name}.yaml", uid)


def test_running_sidecar_is_adopted_after_kill9(agent: AgentProcess, containerd: Any) -> None:
    # last in the module: it restarts the module's agent
    agent.write("adopt.yaml", pod_yaml("adopt", f"""  initContainers:
  - name: side
    image: {BUSYBOX}
    restartPolicy: Always
    command: ["sh", "-c", "touch /tmp/up; trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    startupProbe: {{exec: {{command: ["test", "-f", "/tmp/up"]}}, periodSeconds: 1}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
""", grace=1))
    pod = wait_pod(agent, "adopt", lambda p: cond(p, "Ready")["status"] == "True", what="pod ready")
    uid = pod["metadata"]["uid"]
    before = {c.id for c in runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]["containers"]}
    ids = (container_id(pod, "side"), container_id(pod, "main"))
    agent.kill9()
    agent.start()
    # the restarted agent probes the sidecar afresh and finds it started, without touching it
    pod = wait_pod(agent, "adopt", lambda p: cond(p, "Ready")["status"] == "True" and cstatus(p, "side")["started"],
                   timeout=30, what="pod ready after restart")
    assert (container_id(pod, "side"), container_id(pod, "main")) == ids
    assert cstatus(pod, "side")["restartCount"] == 0 and cstatus(pod, "main")["restartCount"] == 0
    assert {c.id for c in runtime_pods(containerd.endpoint, agent.config["nodeName"])[uid]["containers"]} == before
    teardown_pod(agent, containerd, "adopt.yaml", uid)
