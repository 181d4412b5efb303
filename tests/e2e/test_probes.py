"""Probes driving restarts and readiness, on real containerd with the busybox image (and a real gRPC server)."""
from __future__ import annotations

import socket
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kubelet.testing import BUSYBOX, AgentProcess, cstatus, exec_in, runtime_pods, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture
def agent(containerd, tmp_path: Path):  # type: ignore[no-untyped-def]
    a = AgentProcess(tmp_path, endpoint=containerd.endpoint, node_name=f"e2e-{uuid.uuid4().hex[:8]}", runtime=containerd, extra={"nodeIP": "127.0.0.1"})
    a.start()
    yield a
    for f in a.manifests.iterdir():
        f.unlink()
    try:
        wait_until(lambda: not runtime_pods(containerd.endpoint, a.config["nodeName"]), timeout=60, what="teardown")
    finally:
        a.stop()


def pod_yaml(name: str, container: str, *, restart: str = "Always", host_network: bool = False) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  hostNetwork: {str(host_network).lower()}
  terminationGracePeriodSeconds: 2
  containers:
{container}"""


def ready(p: dict) -> bool:  # type: ignore[type-arg]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])


def events_for(agent: AgentProcess, uid: str, reason: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in agent.events() if e["involvedObject"].get("uid") == uid and e["reason"] == reason]


def test_http_liveness_failure_restarts_the_container(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    agent.write("web.yaml", pod_yaml("web", f"""  - name: httpd
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: [{{name: http, containerPort: 8080}}]
    livenessProbe:
      httpGet: {{path: /index.html, port: http}}
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
"""))
    node = agent.config["nodeName"]
    pod = wait_until(lambda: (p := agent.pod(f"web-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
    cid = cstatus(pod, "httpd")["containerID"].split("://")[1]
    assert exec_in(containerd.endpoint, cid, ["rm", "/var/www/index.html"]).exit_code == 0
    t0 = time.monotonic()
    pod = wait_until(lambda: (p := agent.pod(f"web-{node}")) and cstatus(p, "httpd")["restartCount"] == 1 and "running" in cstatus(p, "httpd")["state"] and p, timeout=30, what="restart after liveness failure")
    # periodSeconds × failureThreshold + probe grace + restart, with slack for a loaded machine
    assert time.monotonic() - t0 < 1 * 2 + 1 + 8
    uid = pod["metadata"]["uid"]
    unhealthy = events_for(agent, uid, "Unhealthy")
    assert unhealthy and unhealthy[0]["message"] == "Liveness probe failed: HTTP probe failed with statuscode: 404"
    assert any(e["message"] == "Container httpd failed liveness probe, will be restarted" for e in events_for(agent, uid, "Killing"))
    probes = agent.get("/api/v1/extra/probes")
    mine = [p for p in probes if p["podUID"] == uid]
    assert mine and mine[0]["probe"] == "liveness" and mine[0]["handler"] == "httpGet" and mine[0]["container"] == "httpd"
    assert mine[0]["lastLatencyMs"] is not None and mine[0]["consecutiveSuccesses"] + mine[0]["consecutiveFailures"] >= 1


def test_readiness_flips_the_ready_condition_both_ways(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    agent.write("r.yaml", pod_yaml("r", f"""  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do sleep 1; done"]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
"""))
    node = agent.config["nodeName"]
    pod = wait_until(lambda: (p := agent.pod(f"r-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
    assert not ready(pod) and cstatus(pod, "app")["ready"] is False
    cid = cstatus(pod, "app")["containerID"].split("://")[1]
    exec_in(containerd.endpoint, cid, ["touch", "/tmp/ready"])
    wait_until(lambda: ready(agent.pod(f"r-{node}")), timeout=10, what="Ready=True")
    exec_in(containerd.endpoint, cid, ["rm", "/tmp/ready"])
    p = wait_until(lambda: (p := agent.pod(f"r-{node}")) and not ready(p) and p, timeout=10, what="Ready=False")
    assert cstatus(p, "app")["restartCount"] == 0  # readiness never restarts


def test_exec_timeout_and_tcp_closed_port_fail(agent: AgentProcess) -> None:
    agent.write("t.yaml", pod_yaml("t", f"""  - name: slow
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do sleep 1; done"]
    livenessProbe:
      exec: {{command: ["sleep", "30"]}}
      timeoutSeconds: 1
      periodSeconds: 2
      failureThreshold: 1
  - name: closed
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do sleep 1; done"]
    readinessProbe:
      tcpSocket: {{port: 9999}}
      periodSeconds: 1
"""))
    node = agent.config["nodeName"]
    p = wait_until(lambda: (p := agent.pod(f"t-{node}")) and cstatus(p, "slow")["restartCount"] >= 1 and p, timeout=40, what="exec timeout restart")
    uid = p["metadata"]["uid"]
    msgs = [e["message"] for e in events_for(agent, uid, "Unhealthy")]
    assert 'Liveness probe failed: command "sleep 30" timed out' in msgs, msgs
    assert any(m.startswith("Readiness probe failed:") and "9999" in m for m in msgs), msgs
    assert cstatus(p, "closed")["ready"] is False and cstatus(p, "closed")["restartCount"] == 0


def test_startup_probe_holds_back_liveness(agent: AgentProcess, containerd) -> None:  # type: ignore[no-untyped-def]
    agent.write("s.yaml", pod_yaml("s", f"""  - name: slow-starter
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do sleep 1; done"]
    startupProbe:
      exec: {{command: ["test", "-f", "/tmp/started"]}}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec: {{command: ["false"]}}
      periodSeconds: 1
      failureThreshold: 1
"""))
    node = agent.config["nodeName"]
    pod = wait_until(lambda: (p := agent.pod(f"s-{node}")) and p["status"]["phase"] == "Running" and p, timeout=60)
    cid = cstatus(pod, "slow-starter")["containerID"].split("://")[1]
    # Not started yet: the always-failing liveness probe must not run. Give it several periods to prove it.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        p = agent.pod(f"s-{node}")
        assert cstatus(p, "slow-starter")["restartCount"] == 0 and cstatus(p, "slow-starter")["started"] is False
        time.sleep(0.5)
    exec_in(containerd.endpoint, cid, ["touch", "/tmp/started"])
    wait_until(lambda: cstatus(agent.pod(f"s-{node}"), "slow-starter")["restartCount"] >= 1, timeout=20, what="liveness after start")


def test_grpc_probe_on_a_host_network_pod(agent: AgentProcess) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        agent.write("g.yaml", pod_yaml("g", f"""  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do sleep 1; done"]
    readinessProbe:
      grpc: {{port: {port}}}
      periodSeconds: 1
""", host_network=True))
        node = agent.config["nodeName"]
        p = wait_until(lambda: (p := agent.pod(f"g-{node}")) and ready(p) and p, timeout=60, what="gRPC SERVING → Ready")
        assert p["status"]["podIP"] == "127.0.0.1"  # hostNetwork pods are probed on the node IP
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        wait_until(lambda: not ready(agent.pod(f"g-{node}")), timeout=10, what="NOT_SERVING → not Ready")
    finally:
        server.stop(None)
