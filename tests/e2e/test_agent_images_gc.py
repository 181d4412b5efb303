"""Image pull policies, garbage collection of dead containers, health and metrics of the real daemon."""
from __future__ import annotations

import socket
import urllib.request
import uuid
from pathlib import Path

import pytest

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def agent(containerd, tmp_path_factory):  # type: ignore[no-untyped-def]
    port = free_port()
    a = AgentProcess(Path(tmp_path_factory.mktemp("agent")), endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd, extra={"healthzPort": port})
    a.healthz_port = port  # type: ignore[attr-defined]
    a.start()
    yield a
    for f in a.manifests.iterdir():
        f.unlink()
    try:
        wait_until(lambda: not runtime_pods(containerd.endpoint, a.config["nodeName"]), timeout=60, what="teardown")
    finally:
        a.stop()


def waiting(agent: AgentProcess, pod: str, container: str) -> dict:  # type: ignore[type-arg]
    p = agent.pod(pod)
    return cstatus(p, container).get("state", {}).get("waiting", {}) if p else {}


def test_pull_policies(agent: AgentProcess) -> None:
    node = agent.config["nodeName"]
    agent.write(
        "images.yaml",
        f"""apiVersion: v1
kind: Pod
metadata: {{name: never}}
spec:
  containers:
  - {{name: c, image: localhost/nodelet/absent:1, imagePullPolicy: Never}}
---
apiVersion: v1
kind: Pod
metadata: {{name: missing}}
spec:
  containers:
  - {{name: c, image: localhost/nodelet/absent:1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: always}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {BUSYBOX}, imagePullPolicy: Always, command: [sleep, "3600"]}}
""",
    )
    w = wait_until(lambda: waiting(agent, f"never-{node}", "c").get("reason") == "ErrImageNeverPull" and waiting(agent, f"never-{node}", "c"), timeout=30)
    assert w["message"] == 'Container image "localhost/nodelet/absent:1" is not present with pull policy of Never'
    w = wait_until(lambda: waiting(agent, f"missing-{node}", "c").get("reason") in ("ErrImagePull", "ImagePullBackOff") and waiting(agent, f"missing-{node}", "c"), timeout=30)
    assert "localhost/nodelet/absent:1" in w["message"]
    # after a failed pull the next attempt waits: ImagePullBackOff
    wait_until(lambda: waiting(agent, f"missing-{node}", "c").get("reason") == "ImagePullBackOff", timeout=30, what="ImagePullBackOff")
    # Always with no registry for a local image: it still runs, and an event says the pull failed
    wait_until(lambda: (p := agent.pod(f"always-{node}")) and p["status"]["phase"] == "Running", timeout=30, what="Always policy on a local image")
    msgs = [e["message"] for e in agent.events() if e["reason"] == "Pulled" and e["involvedObject"]["name"] == f"always-{node}"]
    assert msgs and "using the image already present on the node" in msgs[0]
    assert any(e["reason"] == "Pulling" and e["message"] == 'Pulling image "localhost/nodelet/absent:1"' for e in agent.events())


def test_dead_containers_are_garbage_collected(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    node = agent.config["nodeName"]
    agent.write("crash.yaml", f"apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: c, image: {BUSYBOX}, command: [sh, -c, 'exit 2']}}\n")
    p = wait_until(lambda: (p := agent.pod(f"crash-{node}")) and cstatus(p, "c")["restartCount"] >= 2 and p, timeout=60, what="two restarts")
    uid = p["metadata"]["uid"]
    # Keep one dead instance per container (the newest), as upstream: never more than newest + previous.
    wait_until(lambda: len(runtime_pods(containerd.endpoint, node)[uid]["containers"]) <= 2, timeout=20, what="dead instances removed")
    restarts = {c.annotations["io.kubernetes.container.restartCount"] for c in runtime_pods(containerd.endpoint, node)[uid]["containers"]}
    assert str(cstatus(agent.pod(f"crash-{node}"), "c")["restartCount"]) in restarts


def test_healthz_and_metrics(agent: AgentProcess) -> None:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"http://127.0.0.1:{agent.healthz_port}/healthz", timeout=5) as r:  # type: ignore[attr-defined]
        assert r.status == 200 and r.read() == b"ok"
    metrics = agent.get("/metrics")
    assert "# TYPE kubelet_pod_worker_duration_seconds histogram" in metrics
    assert 'kubelet_runtime_operations_total{operation_type="run_podsandbox"}' in metrics
    assert 'nodelet_pods{phase="Running"}' in metrics
    assert "# TYPE process_cpu_seconds_total counter" in metrics
    node = agent.get("/api/v1/node")
    assert node["name"] == agent.config["nodeName"] and node["runtimeVersion"].startswith("containerd://")
